/*
 * space_util.h — helpers shared by the space tests: a value or a pattern from text, failing the
 * test with the parser's message when the text does not parse (the texts are the tests' own).
 */
#ifndef BATON_TESTS_SPACE_UTIL_H
#define BATON_TESTS_SPACE_UTIL_H

#include <string.h>

#include "baton/space.h"
#include "test_util.h"

static inline baton_value *V(const char *text)
{
    baton_value *value = NULL;
    int rc = baton_value_parse(text, strlen(text), &value);
    if (rc != 0)
        fail_msg("baton_value_parse(%s): %s: %s", text, baton_err_name(rc),
                 baton_last_error_message());
    return value;
}

static inline baton_pattern *P(const char *text)
{
    baton_pattern *pattern = NULL;
    int rc = baton_pattern_parse(text, strlen(text), &pattern);
    if (rc != 0)
        fail_msg("baton_pattern_parse(%s): %s: %s", text, baton_err_name(rc),
                 baton_last_error_message());
    return pattern;
}

#endif /* BATON_TESTS_SPACE_UTIL_H */
