/*
 * test_store_rewrite.c — rewrites and ticks in small hand-written scenarios whose outcome is
 * worked out in the comments, at one pool size (--workers N; CTest runs 1, 2, 4, 8 and 16), each
 * under DYNAMIC, STATIC and DEDICATED with the pool, DYNAMIC without one, at 2 and 256 shards:
 *  - key order: four rewrites writing one id with different rules, scopes (one above 2^63, so
 *    scopes compare unsigned) and seqs commit one per tick in (rule, scope, seq) order; a later
 *    submission with a smaller key overtakes the deferred ones; every loser's outcome (in key
 *    order) says ECONFLICT, deferred, the id and the winner's seq; with BATON_STORE_REJECT the
 *    losers are dropped;
 *  - what conflicts: readers of one id do not conflict; a writer conflicts with readers and
 *    writers on either side; a rewrite loses to a smaller-key one that itself lost (the rule is
 *    "no conflicting rewrite with a smaller key", not greedy); conflict_id is the smallest
 *    contested id and winner_seq the smallest-key rewrite on it; deferred ones run next tick;
 *  - failures: a rule's error drops all its writes (even ones that were opened), still beats
 *    larger keys, and is reported with its status; a footprint id removed before the tick is
 *    BATON_ENOTFOUND with the smallest missing id (the rule never runs); an empty footprint and
 *    a read-only one commit;
 *  - deferred rewrites meet the state of their tick: one reads an entity that moved (a
 *    swap-remove in its shard, then the shard's growth) and changed in place, and gets its new
 *    value; one names an entity removed since it was deferred and fails with BATON_ENOTFOUND.
 * The errors a rule and a submit can meet are in test_store_rewrite_errors.c.
 */
#include "support/bt_store_rewrite.h"

/* ---- key order ------------------------------------------------------------------------------- */

static const uint64_t S_LOW = 5, S_HIGH = UINT64_C(0x8000000000000000); /* S_HIGH > S_LOW */

static void key_order(const bt_sc_mode *mode, unsigned bits, baton_store_conflict_policy conflict)
{
    bt_scenario sc;
    bt_sc_open(&sc, mode, bits, conflict, 2);
    const uint64_t X = 1000, Y = 2000;
    bt_sc_entity(&sc, X, 1);
    bt_sc_entity(&sc, Y, 50);
    /* Keys: seq0 (1, LOW, 0), seq1 (0, HIGH, 1), seq2 (0, LOW, 2), seq3 (0, LOW, 3).
     * Order: seq2 < seq3 < seq1 < seq0. */
    bt_sc_submit(&sc, 1, S_LOW, NULL, BT_IDS(X), 0);
    bt_sc_submit(&sc, 0, S_HIGH, NULL, BT_IDS(X), 0);
    bt_sc_submit(&sc, 0, S_LOW, NULL, BT_IDS(X), 0);
    bt_sc_submit(&sc, 0, S_LOW, NULL, BT_IDS(X), 0);
    assert_int_equal(baton_store_pending(sc.store), 4);
    bt_sc_tick(&sc, BT_IDS(2), 1);
    bool defer = conflict == BATON_STORE_DEFER;
    bt_sc_report(&sc, 0, 4, 1, defer ? 3 : 0, defer ? 0 : 3, 0, 1);
    bt_sc_outcome(&sc, 0, 3, BATON_ECONFLICT, defer, X, 2);
    bt_sc_outcome(&sc, 1, 1, BATON_ECONFLICT, defer, X, 2);
    bt_sc_outcome(&sc, 2, 0, BATON_ECONFLICT, defer, X, 2);
    bt_sc_expect(&sc, X, 2, 3);
    if (!defer) {
        assert_int_equal(baton_store_pending(sc.store), 0);
        bt_sc_tick(&sc, NULL, 0);
        bt_sc_report(&sc, 1, 0, 0, 0, 0, 0, 0);
        bt_sc_expect(&sc, X, 2, 3);
        baton_store_destroy(sc.store);
        return;
    }
    assert_int_equal(baton_store_pending(sc.store), 3);
    /* seq4 (0, 0, 4) reads X and writes Y: the smallest key now, it overtakes the deferred
     * ones (seq3 writes X, which seq4 reads). It sees X as the tick began: value 2. */
    bt_sc_submit(&sc, 0, 0, BT_IDS(X), BT_IDS(Y), 0);
    bt_sc_tick(&sc, BT_IDS(4), 1);
    bt_sc_report(&sc, 1, 4, 1, 3, 0, 0, 1);
    bt_sc_outcome(&sc, 0, 3, BATON_ECONFLICT, true, X, 4);
    bt_sc_outcome(&sc, 1, 1, BATON_ECONFLICT, true, X, 4);
    bt_sc_outcome(&sc, 2, 0, BATON_ECONFLICT, true, X, 4);
    bt_sc_expect(&sc, Y, 50 + 2 + 1, 5);
    /* Then the deferred ones, one per tick, in key order: seq3, seq1, seq0. */
    bt_sc_tick(&sc, BT_IDS(3), 1);
    bt_sc_report(&sc, 2, 3, 1, 2, 0, 0, 1);
    bt_sc_outcome(&sc, 0, 1, BATON_ECONFLICT, true, X, 3);
    bt_sc_outcome(&sc, 1, 0, BATON_ECONFLICT, true, X, 3);
    bt_sc_tick(&sc, BT_IDS(1), 1);
    bt_sc_report(&sc, 3, 2, 1, 1, 0, 0, 1);
    bt_sc_outcome(&sc, 0, 0, BATON_ECONFLICT, true, X, 1);
    bt_sc_tick(&sc, BT_IDS(0), 1);
    bt_sc_report(&sc, 4, 1, 1, 0, 0, 0, 1);
    assert_int_equal(baton_store_pending(sc.store), 0);
    /* X was written by seq2, seq3, seq1, seq0, in that order, each adding 1. */
    bt_sc_expect(&sc, X, 5, ((3 * 64 + 4) * 64 + 2) * 64 + 1);
    bt_sc_expect(&sc, Y, 53, 5);
    baton_store_destroy(sc.store);
}

static void test_key_order(void **state)
{
    (void)state;
    for (size_t m = 0; m < BT_SC_N_MODES; m++)
        for (unsigned bits = 1; bits <= 8; bits += 7) {
            key_order(&bt_sc_modes[m], bits, BATON_STORE_DEFER);
            key_order(&bt_sc_modes[m], bits, BATON_STORE_REJECT);
        }
}

/* ---- what conflicts -------------------------------------------------------------------------- */

static void conflicts(const bt_sc_mode *mode, unsigned bits)
{
    bt_scenario sc;
    bt_sc_open(&sc, mode, bits, BATON_STORE_DEFER, 1);
    const uint64_t A = 100, B = 300, C = 200, D = 400, E = 500, F = 600;
    bt_sc_entity(&sc, A, 1);
    bt_sc_entity(&sc, B, 10);
    bt_sc_entity(&sc, C, 100);
    bt_sc_entity(&sc, D, 1000);
    bt_sc_entity(&sc, E, 10000);
    bt_sc_entity(&sc, F, 100000);
    /* All rule 0; scope s for seq s - 1 except seq6 (scope 0), so the key order is
     * seq6 < seq0 < seq1 < ... < seq5. */
    bt_sc_submit(&sc, 0, 1, BT_IDS(A), BT_IDS(B), 0);    /* seq0: reads A, writes B */
    bt_sc_submit(&sc, 0, 2, BT_IDS(A), BT_IDS(C), 0);    /* seq1: reads A, writes C */
    bt_sc_submit(&sc, 0, 3, NULL, BT_IDS(A), 0);      /* seq2: writes A */
    bt_sc_submit(&sc, 0, 4, BT_IDS(A), BT_IDS(D), 0);    /* seq3: reads A, writes D */
    bt_sc_submit(&sc, 0, 5, NULL, BT_IDS(E, B, C), 0); /* seq4: writes E, B, C */
    bt_sc_submit(&sc, 0, 6, NULL, BT_IDS(A), 0);      /* seq5: writes A */
    bt_sc_submit(&sc, 0, 0, BT_IDS(A), BT_IDS(F), 0);    /* seq6: reads A, writes F */
    /* Tick 0: seq6, seq0, seq1 only read A (no conflict among readers) and commit. seq2 writes
     * A, which all three read: it loses to the smallest, seq6. seq3 reads A, which seq2 writes:
     * it loses to seq2, though seq2 lost too. seq4 writes B (seq0's) and C (seq1's): the
     * smallest contested id is C = 200, seq1's. seq5 writes A: loses to seq6. */
    bt_sc_tick(&sc, BT_IDS(6, 0, 1), 3);
    bt_sc_report(&sc, 0, 7, 3, 4, 0, 0, 3);
    bt_sc_outcome(&sc, 0, 2, BATON_ECONFLICT, true, A, 6);
    bt_sc_outcome(&sc, 1, 3, BATON_ECONFLICT, true, A, 2);
    bt_sc_outcome(&sc, 2, 4, BATON_ECONFLICT, true, C, 1);
    bt_sc_outcome(&sc, 3, 5, BATON_ECONFLICT, true, A, 6);
    bt_sc_expect(&sc, F, 100000 + 1 + 1, 7);
    bt_sc_expect(&sc, B, 10 + 1 + 1, 1);
    bt_sc_expect(&sc, C, 100 + 1 + 1, 2);
    /* Tick 1: seq2 (writes A) commits; seq3 reads A: loses to seq2; seq4 is free now; seq5
     * writes A: loses to seq2. */
    bt_sc_tick(&sc, BT_IDS(2, 4), 2);
    bt_sc_report(&sc, 1, 4, 2, 2, 0, 0, 4);
    bt_sc_outcome(&sc, 0, 3, BATON_ECONFLICT, true, A, 2);
    bt_sc_outcome(&sc, 1, 5, BATON_ECONFLICT, true, A, 2);
    bt_sc_expect(&sc, A, 2, 3);
    bt_sc_expect(&sc, E, 10001, 5);
    bt_sc_expect(&sc, B, 13, 1 * 64 + 5);
    bt_sc_expect(&sc, C, 103, 2 * 64 + 5);
    /* Tick 2: seq3 reads A (now 2) and commits; seq5 loses to it. Tick 3: seq5. */
    bt_sc_tick(&sc, BT_IDS(3), 1);
    bt_sc_report(&sc, 2, 2, 1, 1, 0, 0, 1);
    bt_sc_outcome(&sc, 0, 5, BATON_ECONFLICT, true, A, 3);
    bt_sc_expect(&sc, D, 1000 + 2 + 1, 4);
    bt_sc_tick(&sc, BT_IDS(5), 1);
    bt_sc_report(&sc, 3, 1, 1, 0, 0, 0, 1);
    bt_sc_expect(&sc, A, 3, 3 * 64 + 6);
    assert_int_equal(baton_store_pending(sc.store), 0);
    baton_store_destroy(sc.store);
}

static void test_conflicts(void **state)
{
    (void)state;
    for (size_t m = 0; m < BT_SC_N_MODES; m++) {
        conflicts(&bt_sc_modes[m], 1);
        conflicts(&bt_sc_modes[m], 8);
    }
}

/* ---- failures -------------------------------------------------------------------------------- */

static void failures(const bt_sc_mode *mode, unsigned bits)
{
    bt_scenario sc;
    bt_sc_open(&sc, mode, bits, BATON_STORE_DEFER, 2);
    const uint64_t X = 11, Y = 12, Z = 13, V = 14, W = 15, T = 16, U = 17;
    const uint64_t ids[] = {X, Y, Z, V, W, T, U};
    for (int i = 0; i < 7; i++)
        bt_sc_entity(&sc, ids[i], (uint64_t)i + 1);
    bt_sc_submit(&sc, 0, 7, BT_IDS(Y), BT_IDS(X, Y),
                 BATON_EIO);                                  /* seq0: fails after writing X, Y */
    bt_sc_submit(&sc, 0, 8, NULL, BT_IDS(X), 0);              /* seq1: loses to seq0 on X */
    bt_sc_submit(&sc, 1, 1, BT_IDS(V), BT_IDS(W), 0);            /* seq2: reads V, removed below */
    bt_sc_submit(&sc, 1, 2, BT_IDS(Z), BT_IDS(U, T), 0);      /* seq3: writes U, T, removed below */
    bt_sc_submit(&sc, 0, 9, BT_IDS(Z), NULL, 0);              /* seq4: reads Z only: commits */
    bt_sc_submit(&sc, 0, 10, NULL, NULL, 0);               /* seq5: empty footprint: commits */
    bt_assert_rc(baton_store_remove(sc.store, V), 0);
    bt_assert_rc(baton_store_remove(sc.store, U), 0);
    bt_assert_rc(baton_store_remove(sc.store, T), 0);
    /* Key order: seq0, seq1, seq4, seq5 (rule 0), seq2, seq3 (rule 1). seq2 and seq3 name
     * removed ids and fail with ENOTFOUND (conflict_id: the smallest missing one) without
     * running; no other rewrite touches those ids, so whether they would block is moot. seq0's
     * error drops its writes, but seq1 still lost to it. */
    bt_sc_tick(&sc, BT_IDS(0, 4, 5), 3);
    bt_sc_report(&sc, 0, 6, 2, 1, 0, 3, 0);
    bt_sc_outcome(&sc, 0, 0, BATON_EIO, false, 0, 0);
    bt_sc_outcome(&sc, 1, 1, BATON_ECONFLICT, true, X, 0);
    bt_sc_outcome(&sc, 2, 2, BATON_ENOTFOUND, false, V, 0);
    bt_sc_outcome(&sc, 3, 3, BATON_ENOTFOUND, false, T, 0);
    bt_sc_expect(&sc, X, 1, 0);
    bt_sc_expect(&sc, Y, 2, 0);
    bt_sc_expect(&sc, W, 5, 0);
    assert_int_equal(baton_store_count(sc.store), 4);
    /* Tick 1: seq1 commits. */
    bt_sc_tick(&sc, BT_IDS(1), 1);
    bt_sc_report(&sc, 1, 1, 1, 0, 0, 0, 1);
    bt_sc_expect(&sc, X, 2, 2);
    assert_int_equal(baton_store_pending(sc.store), 0);
    baton_store_destroy(sc.store);
}

static void test_failures(void **state)
{
    (void)state;
    for (size_t m = 0; m < BT_SC_N_MODES; m++) {
        failures(&bt_sc_modes[m], 1);
        failures(&bt_sc_modes[m], 8);
    }
}

/* ---- deferred rewrites when entities move or go ---------------------------------------------- */

/* The first id from `from` on that routes to `shard` in a store of 2^bits shards. */
static uint64_t id_in_shard(unsigned shard, unsigned bits, uint64_t from)
{
    while (baton_store_route(from, bits, 0) != shard)
        from++;
    return from;
}

static void moved(const bt_sc_mode *mode, unsigned bits)
{
    bt_scenario sc;
    bt_sc_open(&sc, mode, bits, BATON_STORE_DEFER, 1);
    /* Q, Y and V in one shard, inserted in that order (so Y and V sit behind Q); X elsewhere or
     * not, it does not matter. */
    const uint64_t X = 5000;
    const uint64_t Q = id_in_shard(0, bits, 6000), Y = id_in_shard(0, bits, Q + 1);
    const uint64_t V = id_in_shard(0, bits, Y + 1);
    bt_sc_entity(&sc, X, 1);
    bt_sc_entity(&sc, Q, 10);
    bt_sc_entity(&sc, Y, 100);
    bt_sc_entity(&sc, V, 1000);
    bt_sc_submit(&sc, 0, 1, NULL, BT_IDS(X), 0);    /* seq0: writes X */
    bt_sc_submit(&sc, 0, 2, BT_IDS(Y), BT_IDS(X), 0);  /* seq1: reads Y, writes X: loses to seq0 */
    bt_sc_submit(&sc, 0, 3, BT_IDS(V), BT_IDS(X), 0);  /* seq2: reads V, writes X: loses to seq0 */
    bt_sc_tick(&sc, BT_IDS(0), 1);
    bt_sc_report(&sc, 0, 3, 1, 2, 0, 0, 1);
    bt_sc_outcome(&sc, 0, 1, BATON_ECONFLICT, true, X, 0);
    bt_sc_outcome(&sc, 1, 2, BATON_ECONFLICT, true, X, 0);
    /* Between ticks: Q goes (the shard's last entity moves into its place), V goes, Y changes
     * in place, and the shard grows with new entities. seq1 must read Y where it is now; seq2
     * names V, which is gone. */
    bt_assert_rc(baton_store_remove(sc.store, Q), 0);
    bt_assert_rc(baton_store_remove(sc.store, V), 0);
    void *ptr = NULL;
    bt_assert_rc(baton_store_lookup(sc.store, Y, &ptr), 0);
    bt_put64(ptr, 0, 300);
    for (uint64_t i = 0, next = V; i < 200; i++)
        bt_sc_entity(&sc, next = id_in_shard(0, bits, next + 1), 7);
    /* Tick 1: seq1 commits (X = 2 + 300 + 1: seq0 made X 2); seq2 fails: V is missing. */
    bt_sc_tick(&sc, BT_IDS(1), 1);
    bt_sc_report(&sc, 1, 2, 1, 0, 0, 1, 1);
    bt_sc_outcome(&sc, 0, 2, BATON_ENOTFOUND, false, V, 0);
    bt_sc_expect(&sc, X, 2 + 300 + 1, 1 * 64 + 2);
    bt_sc_expect(&sc, Y, 300, 0);
    assert_int_equal(baton_store_pending(sc.store), 0);
    baton_store_destroy(sc.store);
}

static void test_deferred_and_moved(void **state)
{
    (void)state;
    for (size_t m = 0; m < BT_SC_N_MODES; m++) {
        moved(&bt_sc_modes[m], 1);
        moved(&bt_sc_modes[m], 8);
    }
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_order),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_deferred_and_moved),
    };
    return cmocka_run_group_tests_name("store/rewrite", tests, group_setup, group_teardown);
}
