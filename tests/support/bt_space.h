/*
 * bt_space.h — helpers shared by the space tests: a value or a pattern from text, failing the
 * test with the parser's message when the text does not parse (the texts are the tests' own).
 * Defined in bt_space.c.
 */
#ifndef BT_SUPPORT_SPACE_H
#define BT_SUPPORT_SPACE_H

#include <string.h>

#include "baton/space.h"
#include "support/bt_common.h"

baton_value *bt_value(const char *text);

baton_pattern *bt_pattern(const char *text);

#endif /* BT_SUPPORT_SPACE_H */
