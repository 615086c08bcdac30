/*
 * test_store_rewrite_errors.c — what a rule, a submit and a tick refuse, at one pool size
 * (--workers N; CTest runs 1, 2, 4, 8 and 16), under the configurations of bt_store_rewrite.h:
 *  - inside a rule: writing an id outside the write set, and reading or writing one outside the
 *    footprint (or one that does not exist) are BATON_EPERM, NULL arguments BATON_EINVAL;
 *    reading an id after opening it for writing gives the rule's own copy, and opening it again
 *    the same contents; an id both read and written (and ids repeated) count as written, so a
 *    reader of it conflicts; the rule sees the state of the tick's start;
 *  - submit: unknown rule, NULL footprint arrays, a footprint over BATON_STORE_MAX_FOOTPRINT
 *    are BATON_EINVAL, a missing id (read or written) BATON_ENOTFOUND with a message naming it;
 *    none queues anything or uses up a seq; a footprint of exactly the maximum works;
 *    add_rule's errors register nothing; a store destroyed with rewrites queued frees them;
 *  - calls into the store from an outcome callback (tick, insert, remove, submit, add_rule,
 *    update_all, set_policy, compact) and tick from inside a rule are BATON_EINVAL and change
 *    nothing; the store works normally afterwards and the reports go on counting ticks.
 */
#include "support/bt_store_rewrite.h"

/* ---- inside a rule --------------------------------------------------------------------------- */

/* What the probe rule saw (written by the one worker that runs it, read after the tick). */
typedef struct probe_seen {
    int write_read_only, read_outside, write_outside, read_missing, read_null, write_null;
    int read_null_rc, write_null_rc;
    uint64_t x_value, y_value, y_after_write, y_reopened;
    int ran;
} probe_seen;

static probe_seen g_probe;
static const uint64_t PX = 21, PY = 22, PZ = 23, PQ = 24;

/* Footprint: reads X, X, Y; writes Y, Z, Z (repeats allowed; Y counts as written). */
static int rule_probe(baton_rewrite_ctx *rc, void *rule_ctx)
{
    (void)rule_ctx;
    probe_seen *ps = &g_probe;
    ps->ran++;
    const void *r = NULL;
    void *w = NULL;
    ps->write_read_only = baton_rewrite_write(rc, PX, &w);
    ps->read_outside = baton_rewrite_read(rc, PQ, &r);
    ps->write_outside = baton_rewrite_write(rc, PQ, &w);
    ps->read_missing = baton_rewrite_read(rc, 999999, &r);
    ps->read_null = baton_rewrite_read(rc, PX, NULL);
    ps->write_null = baton_rewrite_write(rc, PZ, NULL);
    ps->read_null_rc = baton_rewrite_read(NULL, PX, &r);
    ps->write_null_rc = baton_rewrite_write(NULL, PZ, &w);
    if (baton_rewrite_read(rc, PX, &r) == 0)
        ps->x_value = bt_sc_value_of(r);
    if (baton_rewrite_read(rc, PY, &r) == 0)
        ps->y_value = bt_sc_value_of(r);
    if (baton_rewrite_write(rc, PY, &w) == 0) {
        BT_CHECK(bt_sc_value_of(w) == ps->y_value); /* the copy holds the current value */
        bt_put64(w, 0, 777);
    }
    if (baton_rewrite_read(rc, PY, &r) == 0) /* now its own copy */
        ps->y_after_write = bt_sc_value_of(r);
    if (baton_rewrite_write(rc, PY, &w) == 0) /* the same copy again */
        ps->y_reopened = bt_sc_value_of(w);
    if (baton_rewrite_write(rc, PZ, &w) == 0)
        bt_put64(w, 0, 888);
    return 0;
}

static void inside_rule(const bt_sc_mode *mode, unsigned bits)
{
    bt_scenario sc;
    bt_sc_open(&sc, mode, bits, BATON_STORE_DEFER, 1); /* rule 0: log */
    uint32_t probe = 0;
    bt_assert_rc(baton_store_add_rule(sc.store, rule_probe, NULL, &probe), 0);
    assert_int_equal(probe, 1);
    bt_sc_entity(&sc, PX, 5);
    bt_sc_entity(&sc, PY, 6);
    bt_sc_entity(&sc, PZ, 7);
    bt_sc_entity(&sc, PQ, 8);
    memset(&g_probe, 0, sizeof g_probe);
    const uint64_t reads[] = {PX, PX, PY}, writes[] = {PY, PZ, PZ};
    baton_rewrite rw = {probe, 3, 0, reads, 3, writes, 3};
    bt_sc_submitted[0].rule = probe, bt_sc_submitted[0].scope = 3;
    bt_assert_rc(baton_store_submit(sc.store, &rw, NULL), 0); /* out_seq may be NULL */
    sc.next_seq = 1;
    /* seq1 (rule 0, larger key) reads Y, which the probe writes (it is in both of its lists):
     * a conflict. seq2 reads X, which the probe only reads: none. */
    bt_sc_submit(&sc, 0, 1, BT_IDS(PY), BT_IDS(PQ), 0);
    bt_sc_submit(&sc, 0, 2, BT_IDS(PX), BT_IDS(PQ), 0);
    /* Rule 0 comes first in key order: seq1 (0,1,1) < seq2 (0,2,2) < probe (1,3,0). seq1 and
     * seq2 both write Q, so seq2 loses to seq1; the probe writes Y, which seq1 reads: the probe
     * loses to seq1. So first tick: seq1; second: seq2 and the probe (disjoint writes). */
    bt_sc_tick(&sc, BT_IDS(1), 1);
    bt_sc_report(&sc, 0, 3, 1, 2, 0, 0, 1);
    bt_sc_outcome(&sc, 0, 2, BATON_ECONFLICT, true, PQ, 1);
    bt_sc_outcome(&sc, 1, 0, BATON_ECONFLICT, true, PY, 1);
    assert_int_equal(g_probe.ran, 0);
    bt_sc_expect(&sc, PQ, 8 + 6 + 1, 2);
    bt_sc_tick(&sc, BT_IDS(2), 1);
    bt_sc_report(&sc, 1, 2, 2, 0, 0, 0, 3);
    assert_int_equal(g_probe.ran, 1);
    bt_assert_rc(g_probe.write_read_only, BATON_EPERM);
    bt_assert_rc(g_probe.read_outside, BATON_EPERM);
    bt_assert_rc(g_probe.write_outside, BATON_EPERM);
    bt_assert_rc(g_probe.read_missing, BATON_EPERM);
    bt_assert_rc(g_probe.read_null, BATON_EINVAL);
    bt_assert_rc(g_probe.write_null, BATON_EINVAL);
    bt_assert_rc(g_probe.read_null_rc, BATON_EINVAL);
    bt_assert_rc(g_probe.write_null_rc, BATON_EINVAL);
    assert_int_equal(g_probe.x_value, 5);
    assert_int_equal(g_probe.y_value, 6);
    assert_int_equal(g_probe.y_after_write, 777);
    assert_int_equal(g_probe.y_reopened, 777);
    bt_sc_expect(&sc, PX, 5, 0);
    bt_sc_expect(&sc, PY, 777, 0);
    bt_sc_expect(&sc, PZ, 888, 0);
    bt_sc_expect(&sc, PQ, 15 + 5 + 1, 2 * 64 + 3);
    baton_store_destroy(sc.store);
}

static void test_inside_rule(void **state)
{
    (void)state;
    for (size_t m = 0; m < BT_SC_N_MODES; m++) {
        inside_rule(&bt_sc_modes[m], 1);
        inside_rule(&bt_sc_modes[m], 8);
    }
}

/* ---- submit ---------------------------------------------------------------------------------- */

enum { BIG = BATON_STORE_MAX_FOOTPRINT };
static uint64_t g_big[BIG + 1];

/* Reads g_big[0 .. BIG - 97), writes the rest of g_big[0 .. BIG): each written value becomes
 * the sum of the read ones. */
static int rule_big(baton_rewrite_ctx *rc, void *rule_ctx)
{
    (void)rule_ctx;
    uint64_t sum = 0;
    for (size_t i = 0; i < BIG - 97; i++) {
        const void *p = NULL;
        int r = baton_rewrite_read(rc, g_big[i], &p);
        BT_CHECK(r == 0);
        if (r == 0)
            sum += bt_sc_value_of(p);
    }
    for (size_t i = BIG - 97; i < BIG; i++) {
        void *p = NULL;
        int r = baton_rewrite_write(rc, g_big[i], &p);
        BT_CHECK(r == 0);
        if (r == 0)
            bt_put64(p, 0, sum);
    }
    return 0;
}

static void test_submit_errors(void **state)
{
    (void)state;
    bt_scenario sc;
    bt_sc_open(&sc, &bt_sc_modes[0], 4, BATON_STORE_DEFER, 1);
    baton_store *store = sc.store;
    for (size_t i = 0; i <= BIG; i++) {
        g_big[i] = 1 + i * 3;
        bt_sc_entity(&sc, g_big[i], 1);
    }
    const uint64_t one[] = {g_big[0]};
    baton_rewrite rw = {1, 0, 0, one, 1, NULL, 0}; /* rule 1 does not exist yet */
    uint64_t seq = 12345;
    bt_assert_rc(baton_store_submit(store, &rw, &seq), BATON_EINVAL);
    rw.rule = UINT32_MAX;
    bt_assert_rc(baton_store_submit(store, &rw, &seq), BATON_EINVAL);
    rw = (baton_rewrite){0, 0, 0, NULL, 1, NULL, 0};
    bt_assert_rc(baton_store_submit(store, &rw, &seq), BATON_EINVAL);
    rw = (baton_rewrite){0, 0, 0, NULL, 0, NULL, 1};
    bt_assert_rc(baton_store_submit(store, &rw, &seq), BATON_EINVAL);
    bt_assert_rc(baton_store_submit(store, NULL, &seq), BATON_EINVAL);
    rw = (baton_rewrite){0, 0, 0, one, 1, NULL, 0};
    bt_assert_rc(baton_store_submit(NULL, &rw, &seq), BATON_EINVAL);
    /* One id over the limit (distinct, all present). */
    rw = (baton_rewrite){0, 0, 0, g_big, BIG - 97, g_big + BIG - 97, 98};
    bt_assert_rc(baton_store_submit(store, &rw, &seq), BATON_EINVAL);
    /* A missing id, read or written: ENOTFOUND, and the message names it. */
    const uint64_t missing = UINT64_C(0xABCDEF1234);
    const uint64_t with_missing[] = {g_big[0], missing, g_big[1]};
    rw = (baton_rewrite){0, 0, 0, with_missing, 3, NULL, 0};
    bt_assert_rc(baton_store_submit(store, &rw, &seq), BATON_ENOTFOUND);
    if (!bt_mentions_u64(baton_last_error_message(), missing))
        fail_msg("the message \"%s\" does not name id %#llx", baton_last_error_message(),
                 (unsigned long long)missing);
    rw = (baton_rewrite){0, 0, 0, one, 1, with_missing, 3};
    bt_assert_rc(baton_store_submit(store, &rw, &seq), BATON_ENOTFOUND);
    assert_int_equal(seq, 12345);
    assert_int_equal(baton_store_pending(store), 0);
    /* add_rule's errors register nothing. */
    uint32_t number = 77;
    bt_assert_rc(baton_store_add_rule(NULL, rule_big, NULL, &number), BATON_EINVAL);
    bt_assert_rc(baton_store_add_rule(store, NULL, NULL, &number), BATON_EINVAL);
    bt_assert_rc(baton_store_add_rule(store, rule_big, NULL, NULL), BATON_EINVAL);
    bt_assert_rc(baton_store_add_rule(store, rule_big, NULL, &number), 0);
    assert_int_equal(number, 1);
    /* Exactly the maximum, under the rule just added: no seq was used up by the failures. */
    rw = (baton_rewrite){1, 0, 0, g_big, BIG - 97, g_big + BIG - 97, 97};
    bt_assert_rc(baton_store_submit(store, &rw, &seq), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(baton_store_pending(store), 1);
    bt_assert_rc(baton_store_tick(store, NULL, NULL, NULL), 0);
    bt_assert_no_thread_failures();
    assert_int_equal(baton_store_pending(store), 0);
    for (size_t i = 0; i <= BIG; i++)
        bt_sc_expect(&sc, g_big[i], i < BIG - 97 || i == BIG ? 1 : BIG - 97, 0);
    bt_assert_rc(baton_store_tick(NULL, NULL, NULL, NULL), BATON_EINVAL);
    /* Destroyed with rewrites still queued: they go with it (ASan checks for leaks). */
    rw = (baton_rewrite){0, 0, 0, g_big, 3, g_big + 3, 2};
    for (int i = 0; i < 3; i++)
        bt_assert_rc(baton_store_submit(store, &rw, &seq), 0);
    assert_int_equal(seq, 3);
    assert_int_equal(baton_store_pending(store), 3);
    baton_store_destroy(store);
}

/* ---- calls into the store during a tick ------------------------------------------------------ */

typedef struct reentry {
    baton_store *store;
    int tick, insert, remove, submit, add_rule, update_all, set_policy, compact, calls;
} reentry;

static int update_nothing(const uint64_t *ids, void *payloads, size_t count, unsigned shard,
                          void *ctx)
{
    (void)ids, (void)payloads, (void)count, (void)shard, (void)ctx;
    return 0;
}

static void reenter(const baton_rewrite_outcome *outcome, void *ctx)
{
    (void)outcome;
    reentry *re = ctx;
    unsigned char p[BT_SC_PAYLOAD] = {0};
    const uint64_t one[] = {1};
    baton_rewrite rw = {0, 0, 0, one, 1, NULL, 0};
    uint32_t number;
    re->calls++;
    re->tick = baton_store_tick(re->store, NULL, NULL, NULL);
    re->insert = baton_store_insert(re->store, 424242, p, BT_SC_PAYLOAD);
    re->remove = baton_store_remove(re->store, 1);
    re->submit = baton_store_submit(re->store, &rw, NULL);
    re->add_rule = baton_store_add_rule(re->store, bt_sc_rule_log, NULL, &number);
    re->update_all = baton_store_update_all(re->store, update_nothing, NULL);
    re->set_policy = baton_store_set_policy(re->store, BATON_STORE_STATIC);
    re->compact = baton_store_compact(re->store);
}

static reentry g_rule_reentry;

static int rule_reenter(baton_rewrite_ctx *rc, void *rule_ctx)
{
    (void)rc, (void)rule_ctx;
    g_rule_reentry.calls++;
    g_rule_reentry.tick = baton_store_tick(g_rule_reentry.store, NULL, NULL, NULL);
    return 0;
}

static void test_reentry(void **state)
{
    (void)state;
    for (size_t m = 0; m < BT_SC_N_MODES; m++) {
        bt_scenario sc;
        bt_sc_open(&sc, &bt_sc_modes[m], 3, BATON_STORE_DEFER, 1);
        bt_sc_entity(&sc, 1, 1);
        bt_sc_submit(&sc, 0, 0, NULL, BT_IDS(1), BATON_ECANCELED); /* fails: one outcome */
        reentry re = {.store = sc.store};
        baton_tick_report report;
        bt_assert_rc(baton_store_tick(sc.store, &report, reenter, &re), 0);
        assert_int_equal(re.calls, 1);
        bt_assert_rc(re.tick, BATON_EINVAL);
        bt_assert_rc(re.insert, BATON_EINVAL);
        bt_assert_rc(re.remove, BATON_EINVAL);
        bt_assert_rc(re.submit, BATON_EINVAL);
        bt_assert_rc(re.add_rule, BATON_EINVAL);
        bt_assert_rc(re.update_all, BATON_EINVAL);
        bt_assert_rc(re.set_policy, BATON_EINVAL);
        bt_assert_rc(re.compact, BATON_EINVAL);
        assert_int_equal(report.tick, 0);
        assert_int_equal(report.failed, 1);
        assert_int_equal(baton_store_count(sc.store), 1);
        assert_false(baton_store_contains(sc.store, 424242));
        assert_int_equal(baton_store_pending(sc.store), 0);
        bt_sc_expect(&sc, 1, 1, 0);
        /* The store works normally afterwards, and ticks go on counting. */
        uint32_t number = 0;
        bt_assert_rc(baton_store_add_rule(sc.store, rule_reenter, NULL, &number), 0);
        assert_int_equal(number, 1);
        bt_sc_submit(&sc, 0, 0, NULL, BT_IDS(1), 0);
        bt_sc_tick(&sc, BT_IDS(1), 1);
        bt_sc_report(&sc, 1, 1, 1, 0, 0, 0, 1);
        bt_sc_expect(&sc, 1, 2, 2);
        /* tick from inside a rule, where the rule runs on the calling thread (no pool). */
        if (!bt_sc_modes[m].with_pool) {
            g_rule_reentry = (reentry){.store = sc.store};
            const uint64_t none[] = {0};
            baton_rewrite rw = {number, 0, 0, none, 0, none, 0};
            bt_assert_rc(baton_store_submit(sc.store, &rw, NULL), 0);
            bt_assert_rc(baton_store_tick(sc.store, &report, NULL, NULL), 0);
            assert_int_equal(g_rule_reentry.calls, 1);
            bt_assert_rc(g_rule_reentry.tick, BATON_EINVAL);
            assert_int_equal(report.tick, 2);
            assert_int_equal(report.committed, 1);
        }
        baton_store_destroy(sc.store);
    }
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inside_rule),
        cmocka_unit_test(test_submit_errors),
        cmocka_unit_test(test_reentry),
    };
    return cmocka_run_group_tests_name("store/rewrite_errors", tests, group_setup,
                                       group_teardown);
}
