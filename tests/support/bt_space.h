/*
 * bt_space.h — helpers shared by the space tests: a value or a pattern from text, failing the
 * test with the parser's message when the text does not parse (the texts are the tests' own).
 */
#ifndef BT_SUPPORT_SPACE_H
#define BT_SUPPORT_SPACE_H

#include <string.h>

#include "baton/space.h"
#include "support/bt_common.h"

static inline baton_value *bt_value(const char *text)
{
    baton_value *value = NULL;
    int rc = baton_value_parse(text, strlen(text), &value);
    if (rc != 0)
        fail_msg("baton_value_parse(%s): %s: %s", text, baton_err_name(rc),
                 baton_last_error_message());
    return value;
}

static inline baton_pattern *bt_pattern(const char *text)
{
    baton_pattern *pattern = NULL;
    int rc = baton_pattern_parse(text, strlen(text), &pattern);
    if (rc != 0)
        fail_msg("baton_pattern_parse(%s): %s: %s", text, baton_err_name(rc),
                 baton_last_error_message());
    return pattern;
}

#endif /* BT_SUPPORT_SPACE_H */
