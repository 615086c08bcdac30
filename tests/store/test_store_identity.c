/*
 * test_store_identity.c — a queued rewrite names entities, not ids: store.h says "A rewrite
 * whose footprint names an id removed since it was submitted fails with BATON_ENOTFOUND", and
 * baton_store_remove "Queued rewrites that name it fail with BATON_ENOTFOUND when their tick
 * comes", so an id removed and inserted again is a different entity to a rewrite queued before.
 * At one pool size (--workers N; CTest runs 1, 2, 4, 8 and 16), under every configuration of
 * bt_store_rewrite.h, with 2 and 256 shards:
 *  - a write footprint, a read footprint: the id removed and inserted again before the tick,
 *    the rewrite fails with BATON_ENOTFOUND naming it, its rule never runs, the new entity keeps
 *    the payload it was inserted with (and the read-only case's written entity is untouched);
 *  - a deferred rewrite (it lost a conflict in tick 1) whose id is removed and inserted again
 *    before tick 2 fails with BATON_ENOTFOUND and is not deferred again;
 *  - in one tick window: a rewrite submitted before the remove and re-insert fails, one
 *    submitted after them (naming the new entity) runs, and the failed one takes no part in
 *    conflicts;
 *  - the id removed and inserted many times, while other ids of its shard come and go (moving it
 *    around its shard's arrays, and back to the position the rewrite saw): still BATON_ENOTFOUND;
 *  - no false alarm: other entities of the id's shard removed and inserted again (moving the
 *    id, without removing it) and a compaction leave the rewrite running on the id, queued or
 *    deferred.
 */
#include "support/bt_store_rewrite.h"

enum { X = 1001, Y = 1002, Z = 1003 };

/* n ids other than `id` in id's shard, from 5000 up. */
static void same_shard_ids(baton_store *store, uint64_t id, uint64_t *out, size_t n)
{
    unsigned shard = baton_store_shard_of(store, id);
    uint64_t candidate = 5000;
    for (size_t k = 0; k < n; candidate++)
        if (candidate != id && baton_store_shard_of(store, candidate) == shard)
            out[k++] = candidate;
}

static void reinsert(bt_scenario *sc, uint64_t id, uint64_t value)
{
    bt_assert_rc(baton_store_remove(sc->store, id), 0);
    assert_false(baton_store_contains(sc->store, id));
    bt_sc_entity(sc, id, value);
}

/* A written id, then a read id, removed and inserted again before the tick. */
static void write_and_read(const bt_sc_mode *mode, unsigned bits)
{
    bt_scenario sc;
    bt_sc_open(&sc, mode, bits, BATON_STORE_DEFER, 1);
    bt_sc_entity(&sc, X, 10);
    bt_sc_entity(&sc, Y, 20);
    bt_sc_entity(&sc, Z, 30);
    bt_sc_submit(&sc, 0, X, NULL, BT_IDS(X), 0);   /* seq0: writes X */
    bt_sc_submit(&sc, 0, Y, BT_IDS(Y), BT_IDS(Z), 0); /* seq1: reads Y, writes Z */
    reinsert(&sc, X, 50);
    reinsert(&sc, Y, 60);
    bt_sc_tick(&sc, NULL, 0);
    bt_sc_report(&sc, 0, 2, 0, 0, 0, 2, 0);
    bt_sc_outcome(&sc, 0, 0, BATON_ENOTFOUND, false, X, 0);
    bt_sc_outcome(&sc, 1, 1, BATON_ENOTFOUND, false, Y, 0);
    bt_sc_expect(&sc, X, 50, 0);
    bt_sc_expect(&sc, Y, 60, 0);
    bt_sc_expect(&sc, Z, 30, 0);
    assert_int_equal(baton_store_pending(sc.store), 0);
    /* The new entities are ordinary: a rewrite naming them now runs. */
    bt_sc_submit(&sc, 0, X, BT_IDS(Y), BT_IDS(X), 0); /* seq2 */
    bt_sc_tick(&sc, BT_IDS(2), 1);
    bt_sc_report(&sc, 1, 1, 1, 0, 0, 0, 1);
    bt_sc_expect(&sc, X, 50 + 60 + 1, 3);
    baton_store_destroy(sc.store);
}

/* A rewrite deferred in tick 1, its id removed and inserted again before tick 2. */
static void deferred(const bt_sc_mode *mode, unsigned bits)
{
    bt_scenario sc;
    bt_sc_open(&sc, mode, bits, BATON_STORE_DEFER, 1);
    bt_sc_entity(&sc, X, 10);
    bt_sc_entity(&sc, Y, 20);
    bt_sc_submit(&sc, 0, 1, NULL, BT_IDS(X), 0);   /* seq0: writes X, wins */
    bt_sc_submit(&sc, 0, 2, BT_IDS(Y), BT_IDS(X), 0); /* seq1: writes X, loses, deferred */
    bt_sc_submit(&sc, 0, 3, BT_IDS(X), BT_IDS(Y), 0); /* seq2: reads X, loses to seq0, deferred */
    bt_sc_tick(&sc, BT_IDS(0), 1);
    bt_sc_report(&sc, 0, 3, 1, 2, 0, 0, 1);
    bt_sc_outcome(&sc, 0, 1, BATON_ECONFLICT, true, X, 0);
    bt_sc_outcome(&sc, 1, 2, BATON_ECONFLICT, true, X, 0);
    bt_sc_expect(&sc, X, 11, 1);
    reinsert(&sc, X, 70);
    bt_sc_tick(&sc, NULL, 0);
    bt_sc_report(&sc, 1, 2, 0, 0, 0, 2, 0);
    bt_sc_outcome(&sc, 0, 1, BATON_ENOTFOUND, false, X, 0);
    bt_sc_outcome(&sc, 1, 2, BATON_ENOTFOUND, false, X, 0);
    bt_sc_expect(&sc, X, 70, 0);
    bt_sc_expect(&sc, Y, 20, 0);
    assert_int_equal(baton_store_pending(sc.store), 0);
    baton_store_destroy(sc.store);
}

/* One tick window: submit, remove, insert, submit again. */
static void same_window(const bt_sc_mode *mode, unsigned bits)
{
    bt_scenario sc;
    bt_sc_open(&sc, mode, bits, BATON_STORE_DEFER, 1);
    bt_sc_entity(&sc, X, 10);
    bt_sc_entity(&sc, Y, 20);
    bt_sc_submit(&sc, 0, 1, NULL, BT_IDS(X), 0);   /* seq0: the old X; smallest key */
    bt_sc_submit(&sc, 0, 1, BT_IDS(X), BT_IDS(Y), 0); /* seq1: reads the old X */
    reinsert(&sc, X, 40);
    bt_sc_submit(&sc, 0, 2, BT_IDS(Y), BT_IDS(X), 0); /* seq2: writes the new X */
    /* seq0 and seq1 fail and take no part in conflicts: seq2 would lose to seq0 (X) and to
     * seq1 (Y), but runs. */
    bt_sc_tick(&sc, BT_IDS(2), 1);
    bt_sc_report(&sc, 0, 3, 1, 0, 0, 2, 1);
    bt_sc_outcome(&sc, 0, 0, BATON_ENOTFOUND, false, X, 0);
    bt_sc_outcome(&sc, 1, 1, BATON_ENOTFOUND, false, X, 0);
    bt_sc_expect(&sc, X, 40 + 20 + 1, 3);
    bt_sc_expect(&sc, Y, 20, 0);
    baton_store_destroy(sc.store);
}

enum { OTHERS = 6 };

/* X removed and inserted `rounds` times while others of its shard come and go, ending where it
 * began in its shard's arrays. */
static void many_times(const bt_sc_mode *mode, unsigned bits, int rounds)
{
    bt_scenario sc;
    uint64_t others[OTHERS];
    bt_sc_open(&sc, mode, bits, BATON_STORE_DEFER, 1);
    same_shard_ids(sc.store, X, others, OTHERS);
    bt_sc_entity(&sc, X, 10); /* position 0 of its shard */
    for (size_t k = 0; k < OTHERS; k++)
        bt_sc_entity(&sc, others[k], 100 + k);
    bt_sc_submit(&sc, 0, 1, NULL, BT_IDS(X), 0);
    for (int r = 0; r < rounds; r++) {
        reinsert(&sc, X, 1000 + (uint64_t)r);
        reinsert(&sc, others[(size_t)r % OTHERS], 100 + (size_t)r % OTHERS);
    }
    /* Put X back at position 0 of its shard, where submit found it: take everything out and
     * insert X first. */
    bt_assert_rc(baton_store_remove(sc.store, X), 0);
    for (size_t k = 0; k < OTHERS; k++)
        bt_assert_rc(baton_store_remove(sc.store, others[k]), 0);
    assert_int_equal(baton_store_shard_size(sc.store, baton_store_shard_of(sc.store, X)), 0);
    bt_sc_entity(&sc, X, 90);
    for (size_t k = 0; k < OTHERS; k++)
        bt_sc_entity(&sc, others[k], 100 + k);
    if (rounds % 2 == 0)
        bt_assert_rc(baton_store_compact(sc.store), 0);
    bt_sc_tick(&sc, NULL, 0);
    bt_sc_report(&sc, 0, 1, 0, 0, 0, 1, 0);
    bt_sc_outcome(&sc, 0, 0, BATON_ENOTFOUND, false, X, 0);
    bt_sc_expect(&sc, X, 90, 0);
    baton_store_destroy(sc.store);
}

/* No false alarm: X itself stays, its shard-mates move it around; queued and deferred. */
static void neighbours_move(const bt_sc_mode *mode, unsigned bits)
{
    bt_scenario sc;
    uint64_t others[OTHERS];
    bt_sc_open(&sc, mode, bits, BATON_STORE_DEFER, 1);
    same_shard_ids(sc.store, X, others, OTHERS);
    for (size_t k = 0; k < OTHERS / 2; k++)
        bt_sc_entity(&sc, others[k], 100 + k);
    bt_sc_entity(&sc, X, 10);
    for (size_t k = OTHERS / 2; k < OTHERS; k++)
        bt_sc_entity(&sc, others[k], 100 + k);
    bt_sc_submit(&sc, 0, 1, NULL, BT_IDS(X), 0); /* seq0: wins */
    bt_sc_submit(&sc, 0, 2, NULL, BT_IDS(X), 0); /* seq1: deferred */
    bt_sc_entity(&sc, Z, 30);
    bt_sc_submit(&sc, 0, 3, BT_IDS(X), BT_IDS(Z), 0); /* seq2: reads X, deferred */
    /* Removing the shard-mates in front of X moves it (swap with the last); putting them back
     * changes the shard again. */
    for (size_t k = 0; k < OTHERS / 2; k++)
        reinsert(&sc, others[k], 100 + k);
    bt_assert_rc(baton_store_compact(sc.store), 0);
    bt_sc_tick(&sc, BT_IDS(0), 1);
    bt_sc_report(&sc, 0, 3, 1, 2, 0, 0, 1);
    bt_sc_expect(&sc, X, 11, 1);
    for (size_t k = 0; k < OTHERS; k++)
        reinsert(&sc, others[k], 100 + k);
    bt_sc_tick(&sc, BT_IDS(1), 1);
    bt_sc_report(&sc, 1, 2, 1, 1, 0, 0, 1);
    bt_sc_expect(&sc, X, 12, 1 * 64 + 2);
    bt_sc_tick(&sc, BT_IDS(2), 1);
    bt_sc_report(&sc, 2, 1, 1, 0, 0, 0, 1);
    bt_sc_expect(&sc, Z, 30 + 12 + 1, 3);
    baton_store_destroy(sc.store);
}

static const unsigned g_bits[] = {1, 8};

#define FOR_EACH_CONFIG(call)                                                                      \
    for (size_t m = 0; m < BT_SC_N_MODES; m++)                                                     \
        for (size_t b = 0; b < 2; b++) {                                                           \
            const bt_sc_mode *mode = &bt_sc_modes[m];                                              \
            unsigned bits = g_bits[b];                                                             \
            call;                                                                                  \
        }

static void test_write_and_read(void **state)
{
    (void)state;
    FOR_EACH_CONFIG(write_and_read(mode, bits))
}

static void test_deferred(void **state)
{
    (void)state;
    FOR_EACH_CONFIG(deferred(mode, bits))
}

static void test_same_window(void **state)
{
    (void)state;
    FOR_EACH_CONFIG(same_window(mode, bits))
}

static void test_many_times(void **state)
{
    (void)state;
    FOR_EACH_CONFIG(many_times(mode, bits, 1); many_times(mode, bits, 2);
                    many_times(mode, bits, (int)bt_scaled(257, 3)))
}

static void test_neighbours_move(void **state)
{
    (void)state;
    FOR_EACH_CONFIG(neighbours_move(mode, bits))
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_and_read),  cmocka_unit_test(test_deferred),
        cmocka_unit_test(test_same_window),     cmocka_unit_test(test_many_times),
        cmocka_unit_test(test_neighbours_move),
    };
    return cmocka_run_group_tests_name("store/identity", tests, group_setup, group_teardown);
}
