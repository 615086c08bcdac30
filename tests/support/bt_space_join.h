/*
 * bt_space_join.h — what the wide-join tests share (test_space_join.c, test_space_join_durable.c):
 * channels ("j", i) made once per test, data (channel, serial) that name their own channel, a
 * shuffle. Defined in bt_space_join.c.
 */
#ifndef BT_SUPPORT_SPACE_JOIN_H
#define BT_SUPPORT_SPACE_JOIN_H

#include "support/bt_common.h"

#include <inttypes.h>
#include <stdint.h>

#include "baton/space.h"

/* The channel ("j", i) and the datum (i, serial): a datum names its own channel. */
baton_value *bt_chan_value(baton_value_builder *b, int64_t i);

baton_value *bt_datum_value(baton_value_builder *b, int64_t channel, int64_t serial);

/* Reads a datum (channel, serial); false when it has another shape. */
bool bt_read_datum(baton_value_view v, int64_t *channel, int64_t *serial);

void bt_shuffle(int *items, size_t n, bt_rng *rng);

/* The channels 0..n_channels as values, made once per test. */
typedef struct bt_chans {
    size_t n;
    baton_value **values;
    baton_value_view *views;
} bt_chans;

bt_chans bt_chans_make(baton_value_builder *b, size_t n);

void bt_chans_free(bt_chans *c);

void bt_produce_datum(baton_space *space, baton_value_builder *b, const bt_chans *c, int channel,
                      int64_t serial, bool persistent);

#endif /* BT_SUPPORT_SPACE_JOIN_H */
