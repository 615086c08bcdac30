/*
 * bt_space_stress.h — what the tuplespace's oracle tests share (test_space_stress.c and
 * test_space_model.c): the pool group and a space on it, the data (thread, serial, tag) and the
 * table of patterns with which tags each matches, the patterns themselves (made by the group's
 * per-test setup), and BT_SEEN_ERROR for the visits that compare the space with an oracle.
 * Inline (not in baton_test_support): it defines the test program's pool group and patterns.
 */
#ifndef BT_SUPPORT_SPACE_STRESS_H
#define BT_SUPPORT_SPACE_STRESS_H

#include "support/bt_common.h"

#include <inttypes.h>
#include <pthread.h>

#include "baton/space.h"
#include "support/bt_space.h"

/* g_workers, g_pool and the group's setup and teardown (one pool for the group). */
BT_DEFINE_POOL_GROUP()

/* A space on the group's pool. */
static inline baton_space *bt_space_new(void)
{
    baton_space *space = NULL;
    baton_space_config config = {.struct_size = sizeof config, .pool = g_pool};
    bt_assert_rc(baton_space_create(&config, &space), 0);
    return space;
}

/* ---- data and patterns ----
 *
 * A datum is (thread, serial, tag). Non-persistent data have tags 0..4, persistent ones the tag
 * "p" (BT_PERSISTENT_TAG here), so that only "_" and "(_, _, String)" see them: a persistent datum
 * at the head of a channel would otherwise serve every later consumer of the channel without being
 * taken. Tag 4 is the food of the stress test's persistent, non-peeking consumers (pattern 8,
 * which nothing else uses): the oldest matching consumer wins a produce, so a persistent consumer
 * of an ordinary tag would starve every later consumer of that tag on its channel.
 */
#define BT_PERSISTENT_TAG 9

enum { BT_NPAT = 9 };
static const char *const bt_pat_text[BT_NPAT] = {
    "(_, _, Int)",    "(_, _, 3)", "(_, _, 0 | 1)", "(t, s, 2)", "(_, _, 2 | 3)",
    "(_, _, String)", "_",         "(_, _, 5)",     "(_, _, 4)",
};
/* Weights out of 100 when a consumer picks a pattern (8 is given to persistent consumers only). */
static const int bt_pat_weight[BT_NPAT] = {12, 16, 24, 18, 20, 5, 4, 1, 0};
#define BT_PERSISTENT_PAT 5
#define BT_NOTHING_PAT 7
#define BT_FOOD_PAT 8
#define BT_FOOD_TAG 4
#define BT_BINDER_PAT 3

static inline bool bt_pat_matches(int pat, int tag)
{
    switch (pat) {
    case 0:
        return tag != BT_PERSISTENT_TAG;
    case 6:
        return true;
    case 1:
        return tag == 3;
    case 2:
        return tag == 0 || tag == 1;
    case 3:
        return tag == 2;
    case 4:
        return tag == 2 || tag == 3;
    case 5:
        return tag == BT_PERSISTENT_TAG;
    case 8:
        return tag == BT_FOOD_TAG;
    default:
        return false;
    }
}

static inline int bt_pick_pattern(bt_rng *rng)
{
    int roll = (int)bt_rng_below(rng, 100);
    for (int p = 0; p < BT_NPAT; p++) {
        if (roll < bt_pat_weight[p])
            return p;
        roll -= bt_pat_weight[p];
    }
    return 0;
}

static baton_pattern *bt_pats[BT_NPAT];

static inline void bt_pats_make(void)
{
    for (int p = 0; p < BT_NPAT; p++)
        bt_pats[p] = bt_pattern(bt_pat_text[p]);
}

static inline void bt_pats_free(void)
{
    for (int p = 0; p < BT_NPAT; p++)
        baton_pattern_destroy(bt_pats[p]);
}

static inline baton_value *bt_make_triple(baton_value_builder *b, int64_t x, int64_t y, int64_t z)
{
    baton_value *v = NULL;
    bool ok = baton_value_begin_tuple(b) == 0 && baton_value_add_int(b, x) == 0 &&
              baton_value_add_int(b, y) == 0 &&
              (z == BT_PERSISTENT_TAG ? baton_value_add_string(b, "p", 1)
                                      : baton_value_add_int(b, z)) == 0 &&
              baton_value_end(b) == 0 && baton_value_finish(b, &v) == 0;
    BT_CHECK(ok);
    return ok ? v : NULL;
}

/* Reads a (thread, serial, tag) datum; false when it does not have that shape. */
static inline bool bt_read_triple(baton_value_view v, int64_t *x, int64_t *y, int64_t *z)
{
    if (baton_view_kind(v) != BATON_VALUE_TUPLE || baton_view_count(v) != 3)
        return false;
    baton_value_view e[3];
    for (size_t i = 0; i < 3; i++) {
        e[i] = baton_view_element(v, i);
        if (baton_view_kind(e[i]) != BATON_VALUE_INT && i < 2)
            return false;
    }
    *x = baton_view_int(e[0]);
    *y = baton_view_int(e[1]);
    size_t size = 0;
    const uint8_t *text = baton_view_bytes(e[2], &size);
    if (baton_view_kind(e[2]) == BATON_VALUE_STRING && size == 1 && text[0] == 'p')
        *z = BT_PERSISTENT_TAG;
    else if (baton_view_kind(e[2]) == BATON_VALUE_INT)
        *z = baton_view_int(e[2]);
    else
        return false;
    return true;
}

/* Reports one difference a visit found (the first ten are printed). */
#define BT_SEEN_ERROR(seen, ...)                                                                   \
    do {                                                                                           \
        if ((seen)->errors++ < 10)                                                                 \
            print_message(__VA_ARGS__);                                                            \
    } while (0)

/* Per-test setup and teardown: the patterns bt_pats. */
static inline int bt_setup_patterns(void **state)
{
    (void)state;
    bt_pats_make();
    return 0;
}

static inline int bt_teardown_patterns(void **state)
{
    (void)state;
    bt_pats_free();
    return 0;
}

#endif /* BT_SUPPORT_SPACE_STRESS_H */
