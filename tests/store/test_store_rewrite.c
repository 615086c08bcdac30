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
 *    BATON_ENOTFOUND (the rule never runs); inside a rule, writing an id outside the write set
 *    and reading one outside the footprint are BATON_EPERM, NULL out-pointers BATON_EINVAL,
 *    reading an id after opening it for writing gives the rule's own copy, an id both read and
 *    written counts as written; the accessors give the rewrite's scope, arg, rule, seq;
 *  - submit: unknown rule, NULL footprint arrays, a footprint over BATON_STORE_MAX_FOOTPRINT
 *    are BATON_EINVAL, a missing id BATON_ENOTFOUND naming it; none queues anything or uses up
 *    a seq; a footprint of exactly the maximum works; add_rule's errors;
 *  - calls into the store from an outcome callback (tick, insert, remove, submit, add_rule,
 *    update_all) and tick from inside a rule are BATON_EINVAL; tick reports count ticks.
 */
#include "test_util.h"

#include "store_util.h"

BT_DEFINE_POOL_GROUP()

enum { SP = 16, MAX_SEQ = 64 }; /* payload: value, log (both LE) */

/* What the test submitted, by seq: the rules look their footprint up here (written by the main
 * thread before the tick, read by the workers during it). */
typedef struct sc_rewrite {
    uint32_t rule;
    uint64_t scope;
    uint64_t reads[8], writes[8];
    uint32_t n_reads, n_writes;
    int fail; /* the rule returns this */
} sc_rewrite;

static sc_rewrite g_sc[MAX_SEQ];
static atomic_uint g_runs[MAX_SEQ];
static int g_tags[4]; /* &g_tags[r] is rule r's rule_ctx */

static uint64_t value_of(const void *p)
{
    return st_get64(p, 0);
}

/*
 * The scenarios' rule: reads every read id (the state at tick start), then for each written id
 * appends seq + 1 to its log (log = log * 64 + seq + 1) and adds the sum of the reads plus 1 to
 * its value. Returns the rewrite's `fail`.
 */
static int rule_log(baton_rewrite_ctx *rc, void *rule_ctx)
{
    uint64_t seq = baton_rewrite_seq(rc);
    BT_CHECK_MSG(seq < MAX_SEQ, "seq %llu", (unsigned long long)seq);
    if (seq >= MAX_SEQ)
        return BATON_EINVAL;
    atomic_fetch_add(&g_runs[seq], 1);
    const sc_rewrite *w = &g_sc[seq];
    BT_CHECK(rule_ctx == &g_tags[w->rule]);
    BT_CHECK(baton_rewrite_rule(rc) == w->rule);
    BT_CHECK(baton_rewrite_scope(rc) == w->scope);
    BT_CHECK(baton_rewrite_arg(rc) == seq * 7 + 1);
    BT_CHECK(baton_rewrite_payload_size(rc) == SP);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < w->n_reads; i++) {
        const void *p = NULL;
        int r = baton_rewrite_read(rc, w->reads[i], &p);
        BT_CHECK_MSG(r == 0 && p != NULL, "seq %llu read %#llx: %d", (unsigned long long)seq,
                     (unsigned long long)w->reads[i], r);
        if (r == 0)
            sum += value_of(p);
    }
    for (uint32_t i = 0; i < w->n_writes; i++) {
        void *p = NULL;
        int r = baton_rewrite_write(rc, w->writes[i], &p);
        BT_CHECK_MSG(r == 0 && p != NULL, "seq %llu write %#llx: %d", (unsigned long long)seq,
                     (unsigned long long)w->writes[i], r);
        if (r != 0)
            continue;
        st_put64(p, 8, st_get64(p, 8) * 64 + seq + 1);
        st_put64(p, 0, value_of(p) + sum + 1);
    }
    return w->fail;
}

typedef struct scenario {
    baton_store *store;
    uint64_t next_seq;
    baton_rewrite_outcome out[MAX_SEQ];
    size_t n_out;
    baton_tick_report report;
} scenario;

typedef struct sc_mode {
    const char *name;
    baton_store_policy policy;
    bool with_pool;
} sc_mode;

static const sc_mode sc_modes[] = {
    {"dynamic", BATON_STORE_DYNAMIC, true},
    {"static", BATON_STORE_STATIC, true},
    {"dedicated", BATON_STORE_DEDICATED, true},
    {"no pool", BATON_STORE_DYNAMIC, false},
};
#define N_SC_MODES (sizeof sc_modes / sizeof sc_modes[0])

static void sc_open(scenario *sc, const sc_mode *mode, unsigned shard_bits,
                    baton_store_conflict_policy conflict, unsigned n_rules)
{
    memset(sc, 0, sizeof *sc);
    memset(g_sc, 0, sizeof g_sc);
    for (int i = 0; i < MAX_SEQ; i++)
        atomic_store(&g_runs[i], 0);
    baton_store_config config = st_config(SP, shard_bits, 0, mode->with_pool ? g_pool : NULL,
                                          mode->policy, conflict, 0);
    sc->store = st_create_config(&config);
    for (uint32_t r = 0; r < n_rules; r++) {
        uint32_t number = 99;
        bt_assert_rc(baton_store_add_rule(sc->store, rule_log, &g_tags[r], &number), 0);
        assert_int_equal(number, r);
    }
}

/* Inserts entity id with value `value` and an empty log. */
static void sc_entity(scenario *sc, uint64_t id, uint64_t value)
{
    unsigned char p[SP];
    st_put64(p, 0, value);
    st_put64(p, 8, 0);
    bt_assert_rc(baton_store_insert(sc->store, id, p, SP), 0);
}

static void sc_expect(scenario *sc, uint64_t id, uint64_t value, uint64_t log)
{
    unsigned char p[SP];
    bt_assert_rc(baton_store_get(sc->store, id, p, SP), 0);
    if (value_of(p) != value || st_get64(p, 8) != log)
        fail_msg("entity %#llx: value %llu log %llu, expected value %llu log %llu",
                 (unsigned long long)id, (unsigned long long)value_of(p),
                 (unsigned long long)st_get64(p, 8), (unsigned long long)value,
                 (unsigned long long)log);
}

/* Submits a rewrite (reads and writes end at a 0 entry; no footprint id here is 0) and checks
 * that it got the next seq. */
static uint64_t sc_submit(scenario *sc, uint32_t rule, uint64_t scope, const uint64_t *reads,
                          const uint64_t *writes, int fail)
{
    uint64_t seq_expected = sc->next_seq++;
    assert_true(seq_expected < MAX_SEQ);
    sc_rewrite *w = &g_sc[seq_expected];
    memset(w, 0, sizeof *w);
    w->rule = rule, w->scope = scope, w->fail = fail;
    while (reads && reads[w->n_reads])
        w->reads[w->n_reads] = reads[w->n_reads], w->n_reads++;
    while (writes && writes[w->n_writes])
        w->writes[w->n_writes] = writes[w->n_writes], w->n_writes++;
    baton_rewrite rw = {rule,       scope,   seq_expected * 7 + 1, w->n_reads ? w->reads : NULL,
                        w->n_reads, w->n_writes ? w->writes : NULL, w->n_writes};
    uint64_t seq = UINT64_MAX;
    bt_assert_rc(baton_store_submit(sc->store, &rw, &seq), 0);
    assert_int_equal(seq, seq_expected);
    return seq;
}

static void sc_record(const baton_rewrite_outcome *outcome, void *ctx)
{
    scenario *sc = ctx;
    if (sc->n_out < MAX_SEQ)
        sc->out[sc->n_out] = *outcome;
    sc->n_out++;
}

/* Runs a tick and checks that exactly the rewrites in `ran` ran (each once). */
static void sc_tick(scenario *sc, const uint64_t *ran, size_t n_ran)
{
    for (int i = 0; i < MAX_SEQ; i++)
        atomic_store(&g_runs[i], 0);
    sc->n_out = 0;
    memset(&sc->report, 0xff, sizeof sc->report);
    bt_assert_rc(baton_store_tick(sc->store, &sc->report, sc_record, sc), 0);
    bt_assert_no_thread_failures();
    for (uint64_t s = 0; s < MAX_SEQ; s++) {
        unsigned expect = 0;
        for (size_t k = 0; k < n_ran; k++)
            expect += ran[k] == s;
        if (atomic_load(&g_runs[s]) != expect)
            fail_msg("seq %llu ran %u times in this tick, expected %u", (unsigned long long)s,
                     atomic_load(&g_runs[s]), expect);
    }
}

static void sc_report(const scenario *sc, uint64_t tick, uint64_t considered, uint64_t committed,
                      uint64_t deferred, uint64_t rejected, uint64_t failed, uint64_t writes)
{
    const baton_tick_report *r = &sc->report;
    if (r->tick != tick || r->considered != considered || r->committed != committed ||
        r->deferred != deferred || r->rejected != rejected || r->failed != failed ||
        r->writes != writes)
        fail_msg("report {tick %llu, considered %llu, committed %llu, deferred %llu, rejected "
                 "%llu, failed %llu, writes %llu}, expected {%llu, %llu, %llu, %llu, %llu, %llu, "
                 "%llu}",
                 (unsigned long long)r->tick, (unsigned long long)r->considered,
                 (unsigned long long)r->committed, (unsigned long long)r->deferred,
                 (unsigned long long)r->rejected, (unsigned long long)r->failed,
                 (unsigned long long)r->writes, (unsigned long long)tick,
                 (unsigned long long)considered, (unsigned long long)committed,
                 (unsigned long long)deferred, (unsigned long long)rejected,
                 (unsigned long long)failed, (unsigned long long)writes);
    assert_int_equal(sc->n_out, deferred + rejected + failed);
}

/* Outcome k is seq's, with this status, deferred flag and (for conflicts) id and winner. */
static void sc_outcome(const scenario *sc, size_t k, uint64_t seq, int status, bool deferred,
                       uint64_t conflict_id, uint64_t winner_seq)
{
    if (k >= sc->n_out)
        fail_msg("outcome %zu missing (%zu reported)", k, sc->n_out);
    const baton_rewrite_outcome *o = &sc->out[k];
    bool ok = o->seq == seq && o->status == status && o->deferred == deferred &&
              o->rule == g_sc[seq].rule && o->scope == g_sc[seq].scope;
    if (status == BATON_ECONFLICT || status == BATON_ENOTFOUND)
        ok = ok && o->conflict_id == conflict_id;
    if (status == BATON_ECONFLICT)
        ok = ok && o->winner_seq == winner_seq;
    if (!ok)
        fail_msg("outcome %zu: seq %llu rule %u scope %#llx status %s deferred %d conflict_id "
                 "%#llx winner_seq %llu; expected seq %llu rule %u scope %#llx status %s deferred "
                 "%d conflict_id %#llx winner_seq %llu",
                 k, (unsigned long long)o->seq, o->rule, (unsigned long long)o->scope,
                 baton_err_name(o->status), o->deferred, (unsigned long long)o->conflict_id,
                 (unsigned long long)o->winner_seq, (unsigned long long)seq, g_sc[seq].rule,
                 (unsigned long long)g_sc[seq].scope, baton_err_name(status), deferred,
                 (unsigned long long)conflict_id, (unsigned long long)winner_seq);
}

#define IDS(...) ((const uint64_t[]){__VA_ARGS__, 0})

/* ---- key order ------------------------------------------------------------------------------- */

static const uint64_t S_LOW = 5, S_HIGH = UINT64_C(0x8000000000000000); /* S_HIGH > S_LOW */

static void key_order(const sc_mode *mode, unsigned bits, baton_store_conflict_policy conflict)
{
    scenario sc;
    sc_open(&sc, mode, bits, conflict, 2);
    const uint64_t X = 1000, Y = 2000;
    sc_entity(&sc, X, 1);
    sc_entity(&sc, Y, 50);
    /* Keys: seq0 (1, LOW, 0), seq1 (0, HIGH, 1), seq2 (0, LOW, 2), seq3 (0, LOW, 3).
     * Order: seq2 < seq3 < seq1 < seq0. */
    sc_submit(&sc, 1, S_LOW, NULL, IDS(X), 0);
    sc_submit(&sc, 0, S_HIGH, NULL, IDS(X), 0);
    sc_submit(&sc, 0, S_LOW, NULL, IDS(X), 0);
    sc_submit(&sc, 0, S_LOW, NULL, IDS(X), 0);
    assert_int_equal(baton_store_pending(sc.store), 4);
    sc_tick(&sc, IDS(2), 1);
    bool defer = conflict == BATON_STORE_DEFER;
    sc_report(&sc, 0, 4, 1, defer ? 3 : 0, defer ? 0 : 3, 0, 1);
    sc_outcome(&sc, 0, 3, BATON_ECONFLICT, defer, X, 2);
    sc_outcome(&sc, 1, 1, BATON_ECONFLICT, defer, X, 2);
    sc_outcome(&sc, 2, 0, BATON_ECONFLICT, defer, X, 2);
    sc_expect(&sc, X, 2, 3);
    if (!defer) {
        assert_int_equal(baton_store_pending(sc.store), 0);
        sc_tick(&sc, NULL, 0);
        sc_report(&sc, 1, 0, 0, 0, 0, 0, 0);
        sc_expect(&sc, X, 2, 3);
        baton_store_destroy(sc.store);
        return;
    }
    assert_int_equal(baton_store_pending(sc.store), 3);
    /* seq4 (0, 0, 4) reads X and writes Y: the smallest key now, it overtakes the deferred
     * ones (seq3 writes X, which seq4 reads). It sees X as the tick began: value 2. */
    sc_submit(&sc, 0, 0, IDS(X), IDS(Y), 0);
    sc_tick(&sc, IDS(4), 1);
    sc_report(&sc, 1, 4, 1, 3, 0, 0, 1);
    sc_outcome(&sc, 0, 3, BATON_ECONFLICT, true, X, 4);
    sc_outcome(&sc, 1, 1, BATON_ECONFLICT, true, X, 4);
    sc_outcome(&sc, 2, 0, BATON_ECONFLICT, true, X, 4);
    sc_expect(&sc, Y, 50 + 2 + 1, 5);
    /* Then the deferred ones, one per tick, in key order: seq3, seq1, seq0. */
    sc_tick(&sc, IDS(3), 1);
    sc_report(&sc, 2, 3, 1, 2, 0, 0, 1);
    sc_outcome(&sc, 0, 1, BATON_ECONFLICT, true, X, 3);
    sc_outcome(&sc, 1, 0, BATON_ECONFLICT, true, X, 3);
    sc_tick(&sc, IDS(1), 1);
    sc_report(&sc, 3, 2, 1, 1, 0, 0, 1);
    sc_outcome(&sc, 0, 0, BATON_ECONFLICT, true, X, 1);
    sc_tick(&sc, IDS(0), 1);
    sc_report(&sc, 4, 1, 1, 0, 0, 0, 1);
    assert_int_equal(baton_store_pending(sc.store), 0);
    /* X was written by seq2, seq3, seq1, seq0, in that order, each adding 1. */
    sc_expect(&sc, X, 5, ((3 * 64 + 4) * 64 + 2) * 64 + 1);
    sc_expect(&sc, Y, 53, 5);
    baton_store_destroy(sc.store);
}

static void test_key_order(void **state)
{
    (void)state;
    for (size_t m = 0; m < N_SC_MODES; m++)
        for (unsigned bits = 1; bits <= 8; bits += 7) {
            key_order(&sc_modes[m], bits, BATON_STORE_DEFER);
            key_order(&sc_modes[m], bits, BATON_STORE_REJECT);
        }
}

/* ---- what conflicts -------------------------------------------------------------------------- */

static void conflicts(const sc_mode *mode, unsigned bits)
{
    scenario sc;
    sc_open(&sc, mode, bits, BATON_STORE_DEFER, 1);
    const uint64_t A = 100, B = 300, C = 200, D = 400, E = 500, F = 600;
    sc_entity(&sc, A, 1);
    sc_entity(&sc, B, 10);
    sc_entity(&sc, C, 100);
    sc_entity(&sc, D, 1000);
    sc_entity(&sc, E, 10000);
    sc_entity(&sc, F, 100000);
    /* All rule 0; scope s for seq s - 1 except seq6 (scope 0), so the key order is
     * seq6 < seq0 < seq1 < ... < seq5. */
    sc_submit(&sc, 0, 1, IDS(A), IDS(B), 0);    /* seq0: reads A, writes B */
    sc_submit(&sc, 0, 2, IDS(A), IDS(C), 0);    /* seq1: reads A, writes C */
    sc_submit(&sc, 0, 3, NULL, IDS(A), 0);      /* seq2: writes A */
    sc_submit(&sc, 0, 4, IDS(A), IDS(D), 0);    /* seq3: reads A, writes D */
    sc_submit(&sc, 0, 5, NULL, IDS(E, B, C), 0); /* seq4: writes E, B, C */
    sc_submit(&sc, 0, 6, NULL, IDS(A), 0);      /* seq5: writes A */
    sc_submit(&sc, 0, 0, IDS(A), IDS(F), 0);    /* seq6: reads A, writes F */
    /* Tick 0: seq6, seq0, seq1 only read A (no conflict among readers) and commit. seq2 writes
     * A, which all three read: it loses to the smallest, seq6. seq3 reads A, which seq2 writes:
     * it loses to seq2, though seq2 lost too. seq4 writes B (seq0's) and C (seq1's): the
     * smallest contested id is C = 200, seq1's. seq5 writes A: loses to seq6. */
    sc_tick(&sc, IDS(6, 0, 1), 3);
    sc_report(&sc, 0, 7, 3, 4, 0, 0, 3);
    sc_outcome(&sc, 0, 2, BATON_ECONFLICT, true, A, 6);
    sc_outcome(&sc, 1, 3, BATON_ECONFLICT, true, A, 2);
    sc_outcome(&sc, 2, 4, BATON_ECONFLICT, true, C, 1);
    sc_outcome(&sc, 3, 5, BATON_ECONFLICT, true, A, 6);
    sc_expect(&sc, F, 100000 + 1 + 1, 7);
    sc_expect(&sc, B, 10 + 1 + 1, 1);
    sc_expect(&sc, C, 100 + 1 + 1, 2);
    /* Tick 1: seq2 (writes A) commits; seq3 reads A: loses to seq2; seq4 is free now; seq5
     * writes A: loses to seq2. */
    sc_tick(&sc, IDS(2, 4), 2);
    sc_report(&sc, 1, 4, 2, 2, 0, 0, 4);
    sc_outcome(&sc, 0, 3, BATON_ECONFLICT, true, A, 2);
    sc_outcome(&sc, 1, 5, BATON_ECONFLICT, true, A, 2);
    sc_expect(&sc, A, 2, 3);
    sc_expect(&sc, E, 10001, 5);
    sc_expect(&sc, B, 13, 1 * 64 + 5);
    sc_expect(&sc, C, 103, 2 * 64 + 5);
    /* Tick 2: seq3 reads A (now 2) and commits; seq5 loses to it. Tick 3: seq5. */
    sc_tick(&sc, IDS(3), 1);
    sc_report(&sc, 2, 2, 1, 1, 0, 0, 1);
    sc_outcome(&sc, 0, 5, BATON_ECONFLICT, true, A, 3);
    sc_expect(&sc, D, 1000 + 2 + 1, 4);
    sc_tick(&sc, IDS(5), 1);
    sc_report(&sc, 3, 1, 1, 0, 0, 0, 1);
    sc_expect(&sc, A, 3, 3 * 64 + 6);
    assert_int_equal(baton_store_pending(sc.store), 0);
    baton_store_destroy(sc.store);
}

static void test_conflicts(void **state)
{
    (void)state;
    for (size_t m = 0; m < N_SC_MODES; m++) {
        conflicts(&sc_modes[m], 1);
        conflicts(&sc_modes[m], 8);
    }
}

/* ---- failures -------------------------------------------------------------------------------- */

static void failures(const sc_mode *mode, unsigned bits)
{
    scenario sc;
    sc_open(&sc, mode, bits, BATON_STORE_DEFER, 2);
    const uint64_t X = 11, Y = 12, Z = 13, V = 14, W = 15, T = 16, U = 17;
    const uint64_t ids[] = {X, Y, Z, V, W, T, U};
    for (int i = 0; i < 7; i++)
        sc_entity(&sc, ids[i], (uint64_t)i + 1);
    sc_submit(&sc, 0, 7, IDS(Y), IDS(X, Y), BATON_EIO); /* seq0: fails after writing X, Y */
    sc_submit(&sc, 0, 8, NULL, IDS(X), 0);              /* seq1: loses to seq0 on X */
    sc_submit(&sc, 1, 1, IDS(V), IDS(W), 0);            /* seq2: reads V, removed below */
    sc_submit(&sc, 1, 2, IDS(Z), IDS(U, T), 0);         /* seq3: writes U, T, removed below */
    sc_submit(&sc, 0, 9, IDS(Z), NULL, 0);              /* seq4: reads Z only: commits */
    sc_submit(&sc, 0, 10, NULL, NULL, 0);               /* seq5: empty footprint: commits */
    bt_assert_rc(baton_store_remove(sc.store, V), 0);
    bt_assert_rc(baton_store_remove(sc.store, U), 0);
    bt_assert_rc(baton_store_remove(sc.store, T), 0);
    /* Key order: seq0, seq1, seq4, seq5 (rule 0), seq2, seq3 (rule 1). seq2 and seq3 name
     * removed ids and fail with ENOTFOUND (conflict_id: the smallest missing one) without
     * running; no other rewrite touches those ids, so whether they would block is moot. seq0's
     * error drops its writes, but seq1 still lost to it. */
    sc_tick(&sc, IDS(0, 4, 5), 3);
    sc_report(&sc, 0, 6, 2, 1, 0, 3, 0);
    sc_outcome(&sc, 0, 0, BATON_EIO, false, 0, 0);
    sc_outcome(&sc, 1, 1, BATON_ECONFLICT, true, X, 0);
    sc_outcome(&sc, 2, 2, BATON_ENOTFOUND, false, V, 0);
    sc_outcome(&sc, 3, 3, BATON_ENOTFOUND, false, T, 0);
    sc_expect(&sc, X, 1, 0);
    sc_expect(&sc, Y, 2, 0);
    sc_expect(&sc, W, 5, 0);
    assert_int_equal(baton_store_count(sc.store), 4);
    /* Tick 1: seq1 commits. */
    sc_tick(&sc, IDS(1), 1);
    sc_report(&sc, 1, 1, 1, 0, 0, 0, 1);
    sc_expect(&sc, X, 2, 2);
    assert_int_equal(baton_store_pending(sc.store), 0);
    baton_store_destroy(sc.store);
}

static void test_failures(void **state)
{
    (void)state;
    for (size_t m = 0; m < N_SC_MODES; m++) {
        failures(&sc_modes[m], 1);
        failures(&sc_modes[m], 8);
    }
}

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
        ps->x_value = value_of(r);
    if (baton_rewrite_read(rc, PY, &r) == 0)
        ps->y_value = value_of(r);
    if (baton_rewrite_write(rc, PY, &w) == 0) {
        BT_CHECK(value_of(w) == ps->y_value); /* the copy holds the current value */
        st_put64(w, 0, 777);
    }
    if (baton_rewrite_read(rc, PY, &r) == 0) /* now its own copy */
        ps->y_after_write = value_of(r);
    if (baton_rewrite_write(rc, PY, &w) == 0) /* the same copy again */
        ps->y_reopened = value_of(w);
    if (baton_rewrite_write(rc, PZ, &w) == 0)
        st_put64(w, 0, 888);
    return 0;
}

static void inside_rule(const sc_mode *mode, unsigned bits)
{
    scenario sc;
    sc_open(&sc, mode, bits, BATON_STORE_DEFER, 1); /* rule 0: log */
    uint32_t probe = 0;
    bt_assert_rc(baton_store_add_rule(sc.store, rule_probe, NULL, &probe), 0);
    assert_int_equal(probe, 1);
    sc_entity(&sc, PX, 5);
    sc_entity(&sc, PY, 6);
    sc_entity(&sc, PZ, 7);
    sc_entity(&sc, PQ, 8);
    memset(&g_probe, 0, sizeof g_probe);
    const uint64_t reads[] = {PX, PX, PY}, writes[] = {PY, PZ, PZ};
    baton_rewrite rw = {probe, 3, 0, reads, 3, writes, 3};
    g_sc[0].rule = probe, g_sc[0].scope = 3;
    bt_assert_rc(baton_store_submit(sc.store, &rw, NULL), 0); /* out_seq may be NULL */
    sc.next_seq = 1;
    /* seq1 (rule 0, larger key) reads Y, which the probe writes (it is in both of its lists):
     * a conflict. seq2 reads X, which the probe only reads: none. */
    sc_submit(&sc, 0, 1, IDS(PY), IDS(PQ), 0);
    sc_submit(&sc, 0, 2, IDS(PX), IDS(PQ), 0);
    /* Rule 0 comes first in key order: seq1 (0,1,1) < seq2 (0,2,2) < probe (1,3,0). seq1 and
     * seq2 both write Q, so seq2 loses to seq1; the probe writes Y, which seq1 reads: the probe
     * loses to seq1. So first tick: seq1; second: seq2 and the probe (disjoint writes). */
    sc_tick(&sc, IDS(1), 1);
    sc_report(&sc, 0, 3, 1, 2, 0, 0, 1);
    sc_outcome(&sc, 0, 2, BATON_ECONFLICT, true, PQ, 1);
    sc_outcome(&sc, 1, 0, BATON_ECONFLICT, true, PY, 1);
    assert_int_equal(g_probe.ran, 0);
    sc_expect(&sc, PQ, 8 + 6 + 1, 2);
    sc_tick(&sc, IDS(2), 1);
    sc_report(&sc, 1, 2, 2, 0, 0, 0, 3);
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
    sc_expect(&sc, PX, 5, 0);
    sc_expect(&sc, PY, 777, 0);
    sc_expect(&sc, PZ, 888, 0);
    sc_expect(&sc, PQ, 15 + 5 + 1, 2 * 64 + 3);
    baton_store_destroy(sc.store);
}

static void test_inside_rule(void **state)
{
    (void)state;
    for (size_t m = 0; m < N_SC_MODES; m++) {
        inside_rule(&sc_modes[m], 1);
        inside_rule(&sc_modes[m], 8);
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
            sum += value_of(p);
    }
    for (size_t i = BIG - 97; i < BIG; i++) {
        void *p = NULL;
        int r = baton_rewrite_write(rc, g_big[i], &p);
        BT_CHECK(r == 0);
        if (r == 0)
            st_put64(p, 0, sum);
    }
    return 0;
}

static void test_submit_errors(void **state)
{
    (void)state;
    scenario sc;
    sc_open(&sc, &sc_modes[0], 4, BATON_STORE_DEFER, 1);
    baton_store *store = sc.store;
    for (size_t i = 0; i <= BIG; i++) {
        g_big[i] = 1 + i * 3;
        sc_entity(&sc, g_big[i], 1);
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
    if (!st_mentions_u64(baton_last_error_message(), missing))
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
        sc_expect(&sc, g_big[i], i < BIG - 97 || i == BIG ? 1 : BIG - 97, 0);
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
    int tick, insert, remove, submit, add_rule, update_all, calls;
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
    unsigned char p[SP] = {0};
    const uint64_t one[] = {1};
    baton_rewrite rw = {0, 0, 0, one, 1, NULL, 0};
    uint32_t number;
    re->calls++;
    re->tick = baton_store_tick(re->store, NULL, NULL, NULL);
    re->insert = baton_store_insert(re->store, 424242, p, SP);
    re->remove = baton_store_remove(re->store, 1);
    re->submit = baton_store_submit(re->store, &rw, NULL);
    re->add_rule = baton_store_add_rule(re->store, rule_log, NULL, &number);
    re->update_all = baton_store_update_all(re->store, update_nothing, NULL);
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
    for (size_t m = 0; m < N_SC_MODES; m++) {
        scenario sc;
        sc_open(&sc, &sc_modes[m], 3, BATON_STORE_DEFER, 1);
        sc_entity(&sc, 1, 1);
        sc_submit(&sc, 0, 0, NULL, IDS(1), BATON_ECANCELED); /* fails: one outcome */
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
        assert_int_equal(report.tick, 0);
        assert_int_equal(report.failed, 1);
        assert_int_equal(baton_store_count(sc.store), 1);
        assert_false(baton_store_contains(sc.store, 424242));
        assert_int_equal(baton_store_pending(sc.store), 0);
        sc_expect(&sc, 1, 1, 0);
        /* The store works normally afterwards, and ticks go on counting. */
        uint32_t number = 0;
        bt_assert_rc(baton_store_add_rule(sc.store, rule_reenter, NULL, &number), 0);
        assert_int_equal(number, 1);
        sc_submit(&sc, 0, 0, NULL, IDS(1), 0);
        sc_tick(&sc, IDS(1), 1);
        sc_report(&sc, 1, 1, 1, 0, 0, 0, 1);
        sc_expect(&sc, 1, 2, 2);
        /* tick from inside a rule, where the rule runs on the calling thread (no pool). */
        if (!sc_modes[m].with_pool) {
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
        cmocka_unit_test(test_key_order),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_inside_rule),
        cmocka_unit_test(test_submit_errors),
        cmocka_unit_test(test_reentry),
    };
    return cmocka_run_group_tests_name("store/rewrite", tests, group_setup, group_teardown);
}
