/*
 * test_store_determinism.c — a mixed workload of rewrites, checked after every tick against a
 * serial oracle written here from the semantics documented in store.h, at one pool size
 * (--workers N; CTest runs 1, 2, 4, 8 and 16, oversubscribed on 2 cores on purpose).
 *
 * The workload (the same, from a fixed seed, for every configuration): a dense one, 48 entities
 * and some 40 new rewrites a tick (times BATON_TEST_SCALE), where most rewrites conflict, and a
 * wide one, 4096 entities and some 1500 rewrites a tick, where the workers overlap in every
 * phase. Five rules, random scopes (some above 2^63, many equal) and random footprints of up to
 * 3 reads and 2 writes (ids repeat, some are both read and written), so most rewrites touch
 * entities of other shards than their scope's. Rule 0 writes a function of what it reads;
 * rule 1 fails with an error for a third of its args after opening its writes; rule 2 reads
 * back what it wrote and gets BATON_EPERM writing a read-only id and reading an id outside its
 * footprint; rule 3 moves values between its ids; rule 4 gets BATON_EPERM writing an id outside
 * its write set and, for odd args, returns that error. Every written entity's counter goes up by
 * one. Between ticks the driving thread changes a payload in place, runs a bulk update (every
 * third tick), inserts and removes entities that no rewrite names, and submits a rewrite naming
 * a fresh entity that it then removes before the tick (BATON_ENOTFOUND). After 10 such ticks,
 * ticks run until nothing is pending.
 *
 * The oracle: key = (rule, scope, seq); a queued rewrite runs iff no queued rewrite with a
 * smaller key conflicts with it (one writes an id the other reads or writes); each running rule
 * sees the state of the tick's start (and its own writes), its writes are applied only if it
 * returns 0; losers stay queued with their key (DEFER) or are dropped (REJECT); rewrites naming
 * a removed id fail with BATON_ENOTFOUND. After every tick the test checks that the store's
 * fingerprint and every entity equal the oracle's, that the outcomes (in key order: status,
 * deferred, conflict_id = the smallest contested id, winner_seq = the smallest-key rewrite that
 * conflicts on it) and the tick report equal the oracle's, that exactly the oracle's winners
 * ran (once each), that the pending count agrees, and that the entities' counters add up to the
 * writes of committed rewrites: nothing lost or applied twice.
 *
 * Configurations: shard_bits 0 (the default, 256 shards), 1, 3 and 10 (the wide workload: 3
 * and 8), ids mixed or used as hashes; DYNAMIC, STATIC and DEDICATED with the pool, DYNAMIC and DEDICATED without it, and the
 * policy switched every tick; DEFER and REJECT. Since every configuration must equal the oracle,
 * they all equal each other, for any worker count; the final fingerprints are printed.
 */
#include "support/bt_store_oracle.h"

BT_DEFINE_POOL_GROUP()

/* ---- the driver ------------------------------------------------------------------------------ */

typedef struct mode {
    const char *name;
    baton_store_policy policy;
    bool with_pool;
    bool rotate; /* switch the policy every tick */
} mode;

static const mode modes[] = {
    {"dynamic", BATON_STORE_DYNAMIC, true, false},
    {"static", BATON_STORE_STATIC, true, false},
    {"dedicated", BATON_STORE_DEDICATED, true, false},
    {"dynamic/no pool", BATON_STORE_DYNAMIC, false, false},
    {"dedicated/no pool", BATON_STORE_DEDICATED, false, false},
    {"rotating", BATON_STORE_DYNAMIC, true, true},
};
#define N_MODES (sizeof modes / sizeof modes[0])

typedef struct recorder {
    baton_rewrite_outcome *out;
    size_t n, cap;
} recorder;

static void record(const baton_rewrite_outcome *outcome, void *ctx)
{
    recorder *r = ctx;
    if (r->n < r->cap)
        r->out[r->n] = *outcome;
    r->n++;
}

static const uint64_t scopes[] = {0, 1, 7, 42, UINT64_C(0x8000000000000000), UINT64_MAX};

static void random_footprint(bt_rng *rng, bt_wl_rewrite *w)
{
    w->n_reads = (uint32_t)bt_rng_below(rng, 4);
    w->n_writes = (uint32_t)bt_rng_below(rng, 3);
    for (uint32_t i = 0; i < w->n_reads; i++)
        w->reads[i] = bt_wl_main_id((size_t)bt_rng_below(rng, bt_wl_n_ids));
    for (uint32_t i = 0; i < w->n_writes; i++)
        w->writes[i] = bt_wl_main_id((size_t)bt_rng_below(rng, bt_wl_n_ids));
    if (bt_rng_below(rng, 6) == 0 && w->n_writes > 0) /* an id both read and written */
        w->reads[w->n_reads++] = w->writes[0];
    if (bt_rng_below(rng, 6) == 0 && w->n_reads > 0) /* a repeated id */
        w->reads[w->n_reads++] = w->reads[0];
}

/* Fills the distinct lists and submits; the seq must be the next one. */
static void submit(baton_store *store, bt_wl_rewrite *w, uint64_t expect_seq, bt_oracle *o)
{
    w->nw = w->nf = 0;
    for (uint32_t i = 0; i < w->n_writes; i++)
        if (!bt_wl_in_list(w->w, w->nw, w->writes[i]))
            w->w[w->nw++] = w->writes[i];
    for (uint32_t i = 0; i < w->nw; i++)
        w->f[w->nf++] = w->w[i];
    for (uint32_t i = 0; i < w->n_reads; i++)
        if (!bt_wl_in_list(w->f, w->nf, w->reads[i]))
            w->f[w->nf++] = w->reads[i];
    baton_rewrite rw = {w->rule,     w->scope, w->arg, w->n_reads ? w->reads : NULL, w->n_reads,
                        w->n_writes ? w->writes : NULL, w->n_writes};
    uint64_t seq = UINT64_MAX;
    bt_assert_rc(baton_store_submit(store, &rw, &seq), 0);
    assert_int_equal(seq, expect_seq);
    o->queue[o->n_queue++] = seq;
}

static void put_entity(baton_store *store, bt_oracle *o, size_t slot, uint64_t id, uint64_t value)
{
    o->ids[slot] = id;
    o->present[slot] = true;
    bt_put64(o->state[slot], 0, value);
    bt_put64(o->state[slot], 8, 0);
    bt_put64(o->state[slot], 16, UINT64_MAX);
    bt_assert_rc(baton_store_insert(store, id, o->state[slot], BT_WL_PAYLOAD), 0);
}

static void compare_tick(const char *what, size_t tick, baton_store *store, const bt_oracle *o,
                         const bt_expected_tick *e, const recorder *rec,
                         const baton_tick_report *got)
{
    const baton_tick_report *x = &e->report;
    if (memcmp(got, x, sizeof *got) != 0)
        fail_msg("%s, tick %zu: report {%llu %llu %llu %llu %llu %llu %llu}, oracle {%llu %llu "
                 "%llu %llu %llu %llu %llu} (tick considered committed deferred rejected failed "
                 "writes)",
                 what, tick, (unsigned long long)got->tick, (unsigned long long)got->considered,
                 (unsigned long long)got->committed, (unsigned long long)got->deferred,
                 (unsigned long long)got->rejected, (unsigned long long)got->failed,
                 (unsigned long long)got->writes, (unsigned long long)x->tick,
                 (unsigned long long)x->considered, (unsigned long long)x->committed,
                 (unsigned long long)x->deferred, (unsigned long long)x->rejected,
                 (unsigned long long)x->failed, (unsigned long long)x->writes);
    if (rec->n != e->n_out)
        fail_msg("%s, tick %zu: %zu outcomes, oracle %zu", what, tick, rec->n, e->n_out);
    for (size_t k = 0; k < e->n_out; k++) {
        const baton_rewrite_outcome *a = &rec->out[k], *b = &e->out[k];
        bool ok = a->seq == b->seq && a->rule == b->rule && a->scope == b->scope &&
                  a->status == b->status && a->deferred == b->deferred;
        if (b->status == BATON_ECONFLICT || b->status == BATON_ENOTFOUND)
            ok = ok && a->conflict_id == b->conflict_id;
        if (b->status == BATON_ECONFLICT)
            ok = ok && a->winner_seq == b->winner_seq;
        if (!ok)
            fail_msg("%s, tick %zu, outcome %zu: seq %llu status %d deferred %d id %#llx winner "
                     "%llu; oracle: seq %llu status %d deferred %d id %#llx winner %llu",
                     what, tick, k, (unsigned long long)a->seq, a->status, a->deferred,
                     (unsigned long long)a->conflict_id, (unsigned long long)a->winner_seq,
                     (unsigned long long)b->seq, b->status, b->deferred,
                     (unsigned long long)b->conflict_id, (unsigned long long)b->winner_seq);
    }
    for (size_t s = 0; s < bt_wl_cap; s++)
        if (atomic_load(&bt_wl_runs[s]) != (unsigned)e->ran[s])
            fail_msg("%s, tick %zu: seq %zu ran %u times, oracle %d", what, tick, s,
                     atomic_load(&bt_wl_runs[s]), (int)e->ran[s]);
    unsigned char p[BT_WL_PAYLOAD];
    uint64_t counters = 0;
    for (size_t i = 0; i < BT_WL_SLOTS; i++) {
        if (!o->present[i]) {
            assert_false(baton_store_contains(store, o->ids[i]));
            continue;
        }
        bt_assert_rc(baton_store_get(store, o->ids[i], p, BT_WL_PAYLOAD), 0);
        if (memcmp(p, o->state[i], BT_WL_PAYLOAD) != 0)
            fail_msg("%s, tick %zu: entity %#llx is {%llu, %llu, %llu}, oracle {%llu, %llu, "
                     "%llu}",
                     what, tick, (unsigned long long)o->ids[i],
                     (unsigned long long)bt_get64(p, 0), (unsigned long long)bt_get64(p, 8),
                     (unsigned long long)bt_get64(p, 16),
                     (unsigned long long)bt_get64(o->state[i], 0),
                     (unsigned long long)bt_get64(o->state[i], 8),
                     (unsigned long long)bt_get64(o->state[i], 16));
        counters += bt_get64(p, 8);
    }
    assert_true(bt_store_fingerprint(store) == bt_oracle_fingerprint(o));
    assert_int_equal(baton_store_pending(store), o->n_queue);
    /* Every committed write bumped one counter once: none lost, none applied twice. */
    assert_int_equal(counters, o->total_writes);
}

/* update_all's fn: adds *ctx to every value. */
static int bump_values(const uint64_t *ids, void *payloads, size_t count, unsigned shard,
                       void *ctx)
{
    (void)ids, (void)shard;
    uint64_t delta = *(const uint64_t *)ctx;
    for (size_t i = 0; i < count; i++) {
        unsigned char *p = (unsigned char *)payloads + i * BT_WL_PAYLOAD;
        bt_put64(p, 0, bt_get64(p, 0) + delta);
    }
    return 0;
}

/* Runs the workload on one configuration; returns the final fingerprint. */
static uint64_t run_workload(const mode *m, unsigned bits, unsigned flags,
                             baton_store_conflict_policy conflict, size_t per_tick,
                             bool print_totals)
{
    char what[128];
    snprintf(what, sizeof what, "%s, shard_bits %u, flags %#x, %s", m->name, bits, flags,
             conflict == BATON_STORE_DEFER ? "defer" : "reject");
    bt_rng rng = bt_rng_seed(conflict == BATON_STORE_DEFER ? 0xDE7E4 : 0x4E7EC7);
    baton_store_config config =
        bt_store_config(BT_WL_PAYLOAD, bits, flags, m->with_pool ? g_pool : NULL, m->policy,
                        conflict, m->with_pool ? 0 : g_workers);
    baton_store *store = bt_store_create_config(&config);
    for (uint32_t r = 0; r < BT_WL_RULES; r++) {
        uint32_t number = UINT32_MAX;
        bt_assert_rc(baton_store_add_rule(store, bt_lib_rule, &bt_wl_rule_tags[r], &number), 0);
        assert_int_equal(number, r);
    }
    bt_wl_cap = BT_WL_TICKS * (2 * per_tick + 2);
    bt_wl_submitted = calloc(bt_wl_cap, sizeof *bt_wl_submitted);
    bt_wl_runs = calloc(bt_wl_cap, sizeof *bt_wl_runs);
    bt_oracle *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->ids = calloc(BT_WL_SLOTS, sizeof *o->ids);
    o->state = calloc(BT_WL_SLOTS, BT_WL_PAYLOAD);
    o->present = calloc(BT_WL_SLOTS, sizeof *o->present);
    assert_true(o->ids && o->state && o->present);
    bt_expected_tick e = {.out = calloc(bt_wl_cap, sizeof *e.out),
                          .ran = calloc(bt_wl_cap, sizeof(bool))};
    recorder rec = {.out = calloc(bt_wl_cap, sizeof *rec.out), .cap = bt_wl_cap};
    assert_true(bt_wl_submitted && bt_wl_runs && o && e.out && e.ran && rec.out);
    o->queue = calloc(bt_wl_cap, sizeof *o->queue);
    assert_non_null(o->queue);
    o->conflict = conflict;
    for (size_t i = 0; i < bt_wl_n_ids; i++)
        put_entity(store, o, i, bt_wl_main_id(i), (uint64_t)i * 1000 + 1);
    uint64_t seq = 0, totals[6] = {0}; /* committed deferred rejected failed writes ticks */
    for (size_t tick = 0;; tick++) {
        if (tick < BT_WL_TICKS) {
            /* Between ticks: a payload changed in place; an entity nobody names comes and one
             * goes; new rewrites, one of which names a fresh entity removed right away. */
            size_t slot = (size_t)bt_rng_below(&rng, bt_wl_n_ids);
            void *ptr = NULL;
            bt_assert_rc(baton_store_lookup(store, bt_wl_main_id(slot), &ptr), 0);
            uint64_t v = bt_get64(ptr, 0) ^ bt_rng_next(&rng);
            bt_put64(ptr, 0, v);
            bt_put64(o->state[slot], 0, v);
            size_t extra = bt_wl_n_ids + tick % BT_WL_EXTRA;
            put_entity(store, o, extra, bt_wl_extra_id(tick), tick);
            size_t old = bt_wl_n_ids + (tick + BT_WL_EXTRA - 3) % BT_WL_EXTRA;
            if (tick >= 3) {
                bt_assert_rc(baton_store_remove(store, o->ids[old]), 0);
                o->present[old] = false;
            }
            if (tick % 3 == 1) { /* a bulk update between ticks, under the store's policy */
                uint64_t delta = tick * 1000003;
                bt_assert_rc(baton_store_update_all(store, bump_values, &delta), 0);
                for (size_t i = 0; i < BT_WL_SLOTS; i++)
                    if (o->present[i])
                        bt_put64(o->state[i], 0, bt_get64(o->state[i], 0) + delta);
            }
            size_t n_new = per_tick / 2 + (size_t)bt_rng_below(&rng, per_tick + 1);
            size_t doomed_at = (size_t)bt_rng_below(&rng, n_new + 1);
            for (size_t k = 0; k <= n_new; k++) {
                bt_wl_rewrite *w = &bt_wl_submitted[seq];
                memset(w, 0, sizeof *w);
                w->rule = (uint32_t)bt_rng_below(&rng, BT_WL_RULES);
                w->scope = bt_rng_below(&rng, 4) == 0
                               ? bt_wl_main_id((size_t)bt_rng_below(&rng, bt_wl_n_ids))
                               : scopes[bt_rng_below(&rng, sizeof scopes / sizeof scopes[0])];
                w->arg = bt_rng_next(&rng) >> 1;
                if (k == doomed_at) {
                    uint64_t fresh = UINT64_C(0xD000000000000000) + seq;
                    unsigned char zero[BT_WL_PAYLOAD] = {0};
                    bt_assert_rc(baton_store_insert(store, fresh, zero, BT_WL_PAYLOAD), 0);
                    if (bt_rng_below(&rng, 2))
                        w->reads[w->n_reads++] = fresh;
                    else
                        w->writes[w->n_writes++] = fresh;
                    submit(store, w, seq++, o);
                    bt_assert_rc(baton_store_remove(store, fresh), 0);
                } else {
                    random_footprint(&rng, w);
                    submit(store, w, seq++, o);
                }
                assert_true(seq < bt_wl_cap);
            }
        } else if (o->n_queue == 0) {
            break;
        }
        assert_true(tick <
                    BT_WL_TICKS + bt_wl_cap); /* each tick commits its smallest key: it ends */
        if (m->rotate)
            bt_assert_rc(baton_store_set_policy(store, (baton_store_policy)(tick % 3)), 0);
        for (size_t s = 0; s < bt_wl_cap; s++)
            atomic_store(&bt_wl_runs[s], 0);
        baton_tick_report report;
        memset(&report, 0xff, sizeof report);
        rec.n = 0;
        bt_assert_rc(baton_store_tick(store, &report, record, &rec), 0);
        bt_assert_no_thread_failures();
        bt_oracle_tick(o, &e);
        bt_assert_no_thread_failures(); /* the oracle's own run of the rules checks too */
        compare_tick(what, tick, store, o, &e, &rec, &report);
        totals[0] += report.committed, totals[1] += report.deferred;
        totals[2] += report.rejected, totals[3] += report.failed;
        totals[4] += report.writes, totals[5]++;
    }
    if (print_totals)
        printf("# %s: %llu rewrites, %llu ticks: %llu committed, %llu deferred, %llu rejected, "
               "%llu failed, %llu writes\n",
               what, (unsigned long long)seq, (unsigned long long)totals[5],
               (unsigned long long)totals[0], (unsigned long long)totals[1],
               (unsigned long long)totals[2], (unsigned long long)totals[3],
               (unsigned long long)totals[4]);
    uint64_t fp = bt_store_fingerprint(store);
    baton_store_destroy(store);
    free(o->queue);
    free(o->ids);
    free(o->state);
    free(o->present);
    free(o);
    free(e.out);
    free(e.ran);
    free(rec.out);
    free(bt_wl_submitted);
    free((void *)bt_wl_runs);
    bt_wl_submitted = NULL;
    bt_wl_runs = NULL;
    return fp;
}

/* Every configuration on one workload size; all must match the oracle, so they match each
 * other. */
static void run_all(baton_store_conflict_policy conflict, size_t nid, size_t per_tick,
                    const unsigned *bits, size_t n_bits)
{
    bt_wl_n_ids = nid;
    uint64_t first = 0;
    for (size_t b = 0; b < n_bits; b++)
        for (size_t m = 0; m < N_MODES; m++) {
            unsigned flags = (b + m) % 2 ? BATON_STORE_IDS_ARE_HASHES : 0;
            uint64_t fp =
                run_workload(&modes[m], bits[b], flags, conflict, per_tick, b == 0 && m == 0);
            if (b == 0 && m == 0)
                first = fp;
            assert_true(fp == first);
        }
    printf("# %s, %zu entities: final fingerprint %#018llx (workers %u, %zu rewrites per tick)\n",
           conflict == BATON_STORE_DEFER ? "defer" : "reject", nid, (unsigned long long)first,
           g_workers, per_tick);
}

/* Dense: 48 entities, so most rewrites conflict. */
static const unsigned dense_bits[] = {0, 1, 3, 10};

static void test_dense_defer(void **state)
{
    (void)state;
    run_all(BATON_STORE_DEFER, 48, bt_scaled(40, 8), dense_bits, 4);
}

static void test_dense_reject(void **state)
{
    (void)state;
    run_all(BATON_STORE_REJECT, 48, bt_scaled(40, 8), dense_bits, 4);
}

/* Wide: thousands of entities and rewrites per tick, so the workers overlap in every phase. */
static const unsigned wide_bits[] = {3, 8};

static void test_wide_defer(void **state)
{
    (void)state;
    run_all(BATON_STORE_DEFER, bt_scaled(4096, 256), bt_scaled(1500, 100), wide_bits, 2);
}

static void test_wide_reject(void **state)
{
    (void)state;
    run_all(BATON_STORE_REJECT, bt_scaled(4096, 256), bt_scaled(1500, 100), wide_bits, 2);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_defer),
        cmocka_unit_test(test_dense_reject),
        cmocka_unit_test(test_wide_defer),
        cmocka_unit_test(test_wide_reject),
    };
    return cmocka_run_group_tests_name("store/determinism", tests, group_setup, group_teardown);
}
