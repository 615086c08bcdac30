/*
 * bt_space_join.c — the wide-join tests' helpers of bt_space_join.h.
 */
#include "support/bt_common.h"
#include "support/bt_space_join.h"

baton_value *bt_chan_value(baton_value_builder *b, int64_t i)
{
    baton_value *v = NULL;
    bool ok = baton_value_begin_tuple(b) == 0 && baton_value_add_string(b, "j", 1) == 0 &&
              baton_value_add_int(b, i) == 0 && baton_value_end(b) == 0 &&
              baton_value_finish(b, &v) == 0;
    BT_CHECK(ok);
    return v;
}

baton_value *bt_datum_value(baton_value_builder *b, int64_t channel, int64_t serial)
{
    baton_value *v = NULL;
    bool ok = baton_value_begin_tuple(b) == 0 && baton_value_add_int(b, channel) == 0 &&
              baton_value_add_int(b, serial) == 0 && baton_value_end(b) == 0 &&
              baton_value_finish(b, &v) == 0;
    BT_CHECK(ok);
    return v;
}

bool bt_read_datum(baton_value_view v, int64_t *channel, int64_t *serial)
{
    if (baton_view_kind(v) != BATON_VALUE_TUPLE || baton_view_count(v) != 2)
        return false;
    baton_value_view a = baton_view_element(v, 0), b = baton_view_element(v, 1);
    if (baton_view_kind(a) != BATON_VALUE_INT || baton_view_kind(b) != BATON_VALUE_INT)
        return false;
    *channel = baton_view_int(a);
    *serial = baton_view_int(b);
    return true;
}

void bt_shuffle(int *items, size_t n, bt_rng *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)bt_rng_below(rng, i);
        int t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
    }
}

bt_chans bt_chans_make(baton_value_builder *b, size_t n)
{
    bt_chans c = {n, calloc(n, sizeof *c.values), calloc(n, sizeof *c.views)};
    assert_true(c.values != NULL && c.views != NULL);
    for (size_t i = 0; i < n; i++) {
        c.values[i] = bt_chan_value(b, (int64_t)i);
        assert_non_null(c.values[i]);
        c.views[i] = baton_value_as_view(c.values[i]);
    }
    return c;
}

void bt_chans_free(bt_chans *c)
{
    for (size_t i = 0; i < c->n; i++)
        baton_value_destroy(c->values[i]);
    free(c->values);
    free(c->views);
}

void bt_produce_datum(baton_space *space, baton_value_builder *b, const bt_chans *c, int channel,
                      int64_t serial, bool persistent)
{
    baton_value *d = bt_datum_value(b, channel, serial);
    assert_non_null(d);
    bt_assert_rc(baton_space_produce(space, c->views[channel], baton_value_as_view(d), persistent),
                 0);
    baton_value_destroy(d);
}
