/*
 * bt_store_rewrite.h — what the hand-worked rewrite scenarios share (test_store_rewrite.c,
 * test_store_rewrite_errors.c): the payload (a value and a log of the seqs that wrote it), the
 * submitted rewrites by seq, the scenarios' rule (bt_sc_rule_log), the store configurations each
 * scenario runs under, and helpers that submit, tick, and check the report, the outcomes (in key
 * order) and which rewrites ran. Callbacks that run inside the library check with BT_CHECK only.
 * Inline (not in baton_test_support): it defines the test program's pool group and submitted
 * rewrites.
 */
#ifndef BT_SUPPORT_STORE_REWRITE_H
#define BT_SUPPORT_STORE_REWRITE_H

#include "support/bt_common.h"

#include "support/bt_store.h"

BT_DEFINE_POOL_GROUP()

enum { BT_SC_PAYLOAD = 16, BT_SC_MAX_SEQ = 64 }; /* payload: value, log (both LE) */

/* What the test submitted, by seq: the rules look their footprint up here (written by the main
 * thread before the tick, read by the workers during it). */
typedef struct bt_sc_rewrite {
    uint32_t rule;
    uint64_t scope;
    uint64_t reads[8], writes[8];
    uint32_t n_reads, n_writes;
    int fail; /* the rule returns this */
} bt_sc_rewrite;

static bt_sc_rewrite bt_sc_submitted[BT_SC_MAX_SEQ];
static atomic_uint bt_sc_runs[BT_SC_MAX_SEQ];
static int bt_sc_rule_tags[4]; /* &bt_sc_rule_tags[r] is rule r's rule_ctx */

static inline uint64_t bt_sc_value_of(const void *p)
{
    return bt_get64(p, 0);
}

/*
 * The scenarios' rule: reads every read id (the state at tick start), then for each written id
 * appends seq + 1 to its log (log = log * 64 + seq + 1) and adds the sum of the reads plus 1 to
 * its value. Returns the rewrite's `fail`.
 */
static inline int bt_sc_rule_log(baton_rewrite_ctx *rc, void *rule_ctx)
{
    uint64_t seq = baton_rewrite_seq(rc);
    BT_CHECK_MSG(seq < BT_SC_MAX_SEQ, "seq %llu", (unsigned long long)seq);
    if (seq >= BT_SC_MAX_SEQ)
        return BATON_EINVAL;
    atomic_fetch_add(&bt_sc_runs[seq], 1);
    const bt_sc_rewrite *w = &bt_sc_submitted[seq];
    BT_CHECK(rule_ctx == &bt_sc_rule_tags[w->rule]);
    BT_CHECK(baton_rewrite_rule(rc) == w->rule);
    BT_CHECK(baton_rewrite_scope(rc) == w->scope);
    BT_CHECK(baton_rewrite_arg(rc) == seq * 7 + 1);
    BT_CHECK(baton_rewrite_payload_size(rc) == BT_SC_PAYLOAD);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < w->n_reads; i++) {
        const void *p = NULL;
        int r = baton_rewrite_read(rc, w->reads[i], &p);
        BT_CHECK_MSG(r == 0 && p != NULL, "seq %llu read %#llx: %d", (unsigned long long)seq,
                     (unsigned long long)w->reads[i], r);
        if (r == 0)
            sum += bt_sc_value_of(p);
    }
    for (uint32_t i = 0; i < w->n_writes; i++) {
        void *p = NULL;
        int r = baton_rewrite_write(rc, w->writes[i], &p);
        BT_CHECK_MSG(r == 0 && p != NULL, "seq %llu write %#llx: %d", (unsigned long long)seq,
                     (unsigned long long)w->writes[i], r);
        if (r != 0)
            continue;
        bt_put64(p, 8, bt_get64(p, 8) * 64 + seq + 1);
        bt_put64(p, 0, bt_sc_value_of(p) + sum + 1);
    }
    return w->fail;
}

typedef struct bt_scenario {
    baton_store *store;
    uint64_t next_seq;
    baton_rewrite_outcome out[BT_SC_MAX_SEQ];
    size_t n_out;
    baton_tick_report report;
} bt_scenario;

typedef struct bt_sc_mode {
    const char *name;
    baton_store_policy policy;
    bool with_pool;
} bt_sc_mode;

static const bt_sc_mode bt_sc_modes[] = {
    {"dynamic", BATON_STORE_DYNAMIC, true},
    {"static", BATON_STORE_STATIC, true},
    {"dedicated", BATON_STORE_DEDICATED, true},
    {"no pool", BATON_STORE_DYNAMIC, false},
};
#define BT_SC_N_MODES (sizeof bt_sc_modes / sizeof bt_sc_modes[0])

static inline void bt_sc_open(bt_scenario *sc, const bt_sc_mode *mode, unsigned shard_bits,
                    baton_store_conflict_policy conflict, unsigned n_rules)
{
    memset(sc, 0, sizeof *sc);
    memset(bt_sc_submitted, 0, sizeof bt_sc_submitted);
    for (int i = 0; i < BT_SC_MAX_SEQ; i++)
        atomic_store(&bt_sc_runs[i], 0);
    baton_store_config config = bt_store_config(
        BT_SC_PAYLOAD, shard_bits, 0, mode->with_pool ? g_pool : NULL, mode->policy, conflict, 0);
    sc->store = bt_store_create_config(&config);
    for (uint32_t r = 0; r < n_rules; r++) {
        uint32_t number = 99;
        bt_assert_rc(baton_store_add_rule(sc->store, bt_sc_rule_log, &bt_sc_rule_tags[r], &number),
                     0);
        assert_int_equal(number, r);
    }
}

/* Inserts entity id with value `value` and an empty log. */
static inline void bt_sc_entity(bt_scenario *sc, uint64_t id, uint64_t value)
{
    unsigned char p[BT_SC_PAYLOAD];
    bt_put64(p, 0, value);
    bt_put64(p, 8, 0);
    bt_assert_rc(baton_store_insert(sc->store, id, p, BT_SC_PAYLOAD), 0);
}

static inline void bt_sc_expect(bt_scenario *sc, uint64_t id, uint64_t value, uint64_t log)
{
    unsigned char p[BT_SC_PAYLOAD];
    bt_assert_rc(baton_store_get(sc->store, id, p, BT_SC_PAYLOAD), 0);
    if (bt_sc_value_of(p) != value || bt_get64(p, 8) != log)
        fail_msg("entity %#llx: value %llu log %llu, expected value %llu log %llu",
                 (unsigned long long)id, (unsigned long long)bt_sc_value_of(p),
                 (unsigned long long)bt_get64(p, 8), (unsigned long long)value,
                 (unsigned long long)log);
}

/* Submits a rewrite (reads and writes end at a 0 entry; no footprint id here is 0) and checks
 * that it got the next seq. */
static inline uint64_t bt_sc_submit(bt_scenario *sc, uint32_t rule, uint64_t scope,
                                    const uint64_t *reads, const uint64_t *writes, int fail)
{
    uint64_t seq_expected = sc->next_seq++;
    assert_true(seq_expected < BT_SC_MAX_SEQ);
    bt_sc_rewrite *w = &bt_sc_submitted[seq_expected];
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

static inline void bt_sc_record(const baton_rewrite_outcome *outcome, void *ctx)
{
    bt_scenario *sc = ctx;
    if (sc->n_out < BT_SC_MAX_SEQ)
        sc->out[sc->n_out] = *outcome;
    sc->n_out++;
}

/* Runs a tick and checks that exactly the rewrites in `ran` ran (each once). */
static inline void bt_sc_tick(bt_scenario *sc, const uint64_t *ran, size_t n_ran)
{
    for (int i = 0; i < BT_SC_MAX_SEQ; i++)
        atomic_store(&bt_sc_runs[i], 0);
    sc->n_out = 0;
    memset(&sc->report, 0xff, sizeof sc->report);
    bt_assert_rc(baton_store_tick(sc->store, &sc->report, bt_sc_record, sc), 0);
    bt_assert_no_thread_failures();
    for (uint64_t s = 0; s < BT_SC_MAX_SEQ; s++) {
        unsigned expect = 0;
        for (size_t k = 0; k < n_ran; k++)
            expect += ran[k] == s;
        if (atomic_load(&bt_sc_runs[s]) != expect)
            fail_msg("seq %llu ran %u times in this tick, expected %u", (unsigned long long)s,
                     atomic_load(&bt_sc_runs[s]), expect);
    }
}

static inline void bt_sc_report(const bt_scenario *sc, uint64_t tick, uint64_t considered,
                                uint64_t committed, uint64_t deferred, uint64_t rejected,
                                uint64_t failed, uint64_t writes)
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
static inline void bt_sc_outcome(const bt_scenario *sc, size_t k, uint64_t seq, int status,
                                 bool deferred, uint64_t conflict_id, uint64_t winner_seq)
{
    if (k >= sc->n_out)
        fail_msg("outcome %zu missing (%zu reported)", k, sc->n_out);
    const baton_rewrite_outcome *o = &sc->out[k];
    bool ok = o->seq == seq && o->status == status && o->deferred == deferred &&
              o->rule == bt_sc_submitted[seq].rule && o->scope == bt_sc_submitted[seq].scope;
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
                 (unsigned long long)o->winner_seq, (unsigned long long)seq,
                 bt_sc_submitted[seq].rule, (unsigned long long)bt_sc_submitted[seq].scope,
                 baton_err_name(status), deferred, (unsigned long long)conflict_id,
                 (unsigned long long)winner_seq);
}

#define BT_IDS(...) ((const uint64_t[]){__VA_ARGS__, 0})

#endif /* BT_SUPPORT_STORE_REWRITE_H */
