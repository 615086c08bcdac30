/*
 * bt_space.c — values and patterns from text (bt_space.h).
 */
#include "support/bt_common.h"
#include "support/bt_space.h"

baton_value *bt_value(const char *text)
{
    baton_value *value = NULL;
    int rc = baton_value_parse(text, strlen(text), &value);
    if (rc != 0)
        fail_msg("baton_value_parse(%s): %s: %s", text, baton_err_name(rc),
                 baton_last_error_message());
    return value;
}

baton_pattern *bt_pattern(const char *text)
{
    baton_pattern *pattern = NULL;
    int rc = baton_pattern_parse(text, strlen(text), &pattern);
    if (rc != 0)
        fail_msg("baton_pattern_parse(%s): %s: %s", text, baton_err_name(rc),
                 baton_last_error_message());
    return pattern;
}
