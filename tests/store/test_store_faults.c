/*
 * test_store_faults.c — the store when allocations fail (baton__alloc_fail_after(n) for
 * n = 0, 1, 2, ... until the call succeeds), on one thread: the stores here have no pool and the
 * DYNAMIC policy, so every allocation of a call happens on the calling thread, in the same
 * order on every run. A counting allocator (installed before any other baton call) shows that
 * nothing leaks.
 *  - create: BATON_ENOMEM hands out no store and leaks nothing;
 *  - insert (into empty shards, and across the growth of a shard's arrays and index): ENOMEM
 *    leaves the store as it was (count, shard size, the id absent, the other entities and the
 *    fingerprint unchanged), and the same insert then succeeds;
 *  - add_rule and submit: ENOMEM registers and queues nothing and uses up no rule number or seq;
 *  - tick: ENOMEM "did nothing; the queue is as it was": the state, the pending count and the
 *    outcomes are untouched (the callback is not called), and the tick run again without faults
 *    gives exactly what a store that never saw a fault gives (state, report, outcomes);
 *  - fingerprint: ENOMEM, then the right value;
 *  - compact: ENOMEM leaves the store as it was (the same payload pointers, the same state), and
 *    then it packs; update_all on a fresh store: ENOMEM ran nothing (fn never called), then it
 *    runs every shard.
 */
#include "support/bt_common.h"

#include "core/alloc.h"
#include "support/bt_store.h"

/* ---- the counting allocator ------------------------------------------------------------------ */

static long live_blocks; /* one thread allocates through baton here */

static void *count_malloc(size_t size)
{
    void *ptr = malloc(size);
    live_blocks += ptr != NULL;
    return ptr;
}

static void *count_aligned_alloc(size_t alignment, size_t size)
{
    void *ptr = aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
    live_blocks += ptr != NULL;
    return ptr;
}

static void count_free(void *ptr)
{
    live_blocks -= ptr != NULL;
    free(ptr);
}

enum { FP = 16, MAX_N = 10000 };

static baton_store_config no_pool_config(unsigned bits)
{
    return bt_store_config(FP, bits, 0, NULL, BATON_STORE_DYNAMIC, BATON_STORE_DEFER, 0);
}

/* ---- create and insert ----------------------------------------------------------------------- */

static void test_create_faults(void **state)
{
    (void)state;
    long before = live_blocks;
    baton_store_config config = no_pool_config(6);
    int failures = 0;
    for (long n = 0; n < MAX_N; n++) {
        baton_store *store = (baton_store *)(uintptr_t)0x1234;
        baton__alloc_fail_after(n);
        int rc = baton_store_create(&config, &store);
        baton__alloc_fail_after(-1);
        if (rc == 0) {
            assert_int_equal(baton_store_shards(store), 64);
            baton_store_destroy(store);
            break;
        }
        bt_assert_rc(rc, BATON_ENOMEM);
        assert_true(store == NULL || store == (baton_store *)(uintptr_t)0x1234);
        assert_int_equal(live_blocks, before);
        failures++;
    }
    assert_true(failures >= 1);
    assert_int_equal(live_blocks, before);
}

static uint64_t fid(size_t i)
{
    return (uint64_t)i * UINT64_C(0xD6E8FEB86659FD93) + 1;
}

static void test_insert_faults(void **state)
{
    (void)state;
    baton_store_config config = no_pool_config(2);
    baton_store *store = bt_store_create_config(&config);
    size_t n = bt_scaled(3000, 300);
    uint64_t *ids = malloc(n * sizeof *ids);
    unsigned char *payloads = malloc(n * FP);
    assert_true(ids && payloads);
    size_t faults = 0;
    for (size_t i = 0; i < n; i++) {
        ids[i] = fid(i);
        memset(payloads + i * FP, (int)(i % 251), FP);
        bt_put64(payloads + i * FP, 0, ids[i]);
        unsigned shard = baton_store_shard_of(store, ids[i]);
        size_t shard_size = baton_store_shard_size(store, shard);
        for (long k = 0;; k++) {
            assert_true(k < MAX_N);
            baton__alloc_fail_after(k);
            int rc = baton_store_insert(store, ids[i], payloads + i * FP, FP);
            baton__alloc_fail_after(-1);
            if (rc == 0)
                break;
            bt_assert_rc(rc, BATON_ENOMEM);
            faults++;
            /* As it was: checked in full now and then (the fingerprint is a full pass). */
            assert_int_equal(baton_store_count(store), i);
            assert_int_equal(baton_store_shard_size(store, shard), shard_size);
            assert_false(baton_store_contains(store, ids[i]));
            if (faults % 16 == 1) {
                assert_true(bt_store_fingerprint(store) ==
                            bt_model_fingerprint(ids, payloads, NULL, i, FP));
                unsigned char out[FP];
                for (size_t j = 0; j < i; j++) {
                    bt_assert_rc(baton_store_get(store, ids[j], out, FP), 0);
                    assert_memory_equal(out, payloads + j * FP, FP);
                }
            }
        }
    }
    printf("# %zu inserts, %zu refused for want of memory\n", n, faults);
    assert_true(faults >= 8); /* the four shards' first inserts, and growth */
    assert_true(bt_store_fingerprint(store) == bt_model_fingerprint(ids, payloads, NULL, n, FP));
    /* The fingerprint's own allocation. */
    for (long k = 0;; k++) {
        uint64_t fp = 42;
        baton__alloc_fail_after(k);
        int rc = baton_store_fingerprint(store, &fp);
        baton__alloc_fail_after(-1);
        if (rc == 0) {
            assert_true(fp == bt_model_fingerprint(ids, payloads, NULL, n, FP));
            assert_true(k >= 1);
            break;
        }
        bt_assert_rc(rc, BATON_ENOMEM);
    }
    baton_store_destroy(store);
    free(ids);
    free(payloads);
}

/* ---- rules, submits and ticks ---------------------------------------------------------------- */

/* Writes value = value * 3 + (sum of the reads) + seq into each id of arg's pair (arg = a * 64 + b:
 * reads fid(a), writes fid(b)); fails for seqs divisible by 5. */
static int rule_mix(baton_rewrite_ctx *rc, void *rule_ctx)
{
    (void)rule_ctx;
    uint64_t arg = baton_rewrite_arg(rc), seq = baton_rewrite_seq(rc);
    const void *r = NULL;
    void *w = NULL;
    uint64_t sum = 0;
    if (baton_rewrite_read(rc, fid((size_t)(arg / 64)), &r) == 0)
        sum = bt_get64(r, 8);
    if (baton_rewrite_write(rc, fid((size_t)(arg % 64)), &w) == 0)
        bt_put64(w, 8, bt_get64(w, 8) * 3 + sum + seq);
    return seq % 5 == 0 ? BATON_ECANCELED : 0;
}

typedef struct outcomes {
    baton_rewrite_outcome out[256];
    size_t n;
} outcomes;

static void record(const baton_rewrite_outcome *o, void *ctx)
{
    outcomes *r = ctx;
    if (r->n < 256)
        r->out[r->n] = *o;
    r->n++;
}

/* A store with 24 entities and `n_rewrites` queued rewrites over them, many conflicting. Rule
 * registration and submits run under fault sweeps when `sweep` is set. */
static baton_store *tick_setup(unsigned bits, size_t n_rewrites, bool sweep)
{
    baton_store_config config = no_pool_config(bits);
    baton_store *store = bt_store_create_config(&config);
    unsigned char p[FP] = {0};
    for (size_t i = 0; i < 24; i++) {
        bt_put64(p, 0, fid(i));
        bt_put64(p, 8, i * 11);
        bt_assert_rc(baton_store_insert(store, fid(i), p, FP), 0);
    }
    for (uint32_t r = 0; r < 3; r++) {
        uint32_t number = 99;
        for (long k = sweep ? 0 : -1;; k++) {
            baton__alloc_fail_after(k);
            int rc = baton_store_add_rule(store, rule_mix, NULL, &number);
            baton__alloc_fail_after(-1);
            if (rc == 0)
                break;
            bt_assert_rc(rc, BATON_ENOMEM);
            assert_int_equal(number, 99);
        }
        assert_int_equal(number, r);
    }
    bt_rng rng = bt_rng_seed(0xFA117);
    for (size_t i = 0; i < n_rewrites; i++) {
        size_t a = (size_t)bt_rng_below(&rng, 24), b = (size_t)bt_rng_below(&rng, 24);
        uint64_t reads[1] = {fid(a)}, writes[1] = {fid(b)};
        baton_rewrite rw = {(uint32_t)bt_rng_below(&rng, 3), bt_rng_below(&rng, 4),
                            (uint64_t)a * 64 + b, reads, 1, writes, 1};
        uint64_t seq = UINT64_MAX;
        for (long k = sweep ? 0 : -1;; k++) {
            baton__alloc_fail_after(k);
            int rc = baton_store_submit(store, &rw, &seq);
            baton__alloc_fail_after(-1);
            if (rc == 0)
                break;
            bt_assert_rc(rc, BATON_ENOMEM);
            assert_int_equal(baton_store_pending(store), i);
        }
        assert_int_equal(seq, i);
    }
    assert_int_equal(baton_store_pending(store), n_rewrites);
    return store;
}

static void same_outcomes(const outcomes *a, const outcomes *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t k = 0; k < a->n && k < 256; k++) {
        const baton_rewrite_outcome *x = &a->out[k], *y = &b->out[k];
        if (x->seq != y->seq || x->status != y->status || x->deferred != y->deferred ||
            x->conflict_id != y->conflict_id ||
            (x->status == BATON_ECONFLICT && x->winner_seq != y->winner_seq))
            fail_msg("outcome %zu: seq %llu status %d, reference seq %llu status %d", k,
                     (unsigned long long)x->seq, x->status, (unsigned long long)y->seq,
                     y->status);
    }
}

static void test_tick_faults(void **state)
{
    (void)state;
    size_t n_rewrites = 60;
    for (unsigned bits = 1; bits <= 7; bits += 3) {
        /* The reference: no faults anywhere. */
        baton_store *ref = tick_setup(bits, n_rewrites, false);
        uint64_t ref_before = bt_store_fingerprint(ref);
        baton_tick_report ref_report;
        outcomes ref_out = {.n = 0};
        bt_assert_rc(baton_store_tick(ref, &ref_report, record, &ref_out), 0);
        uint64_t ref_after = bt_store_fingerprint(ref);
        assert_true(ref_after != ref_before);
        assert_true(ref_report.committed > 0 && ref_report.deferred > 0);
        size_t ref_pending = baton_store_pending(ref);
        baton_store_destroy(ref);

        long failed_ticks = 0;
        for (long k = 0;; k++) {
            assert_true(k < MAX_N);
            baton_store *store = tick_setup(bits, n_rewrites, k < 8);
            assert_true(bt_store_fingerprint(store) == ref_before);
            outcomes out = {.n = 0};
            baton_tick_report report;
            baton__alloc_fail_after(k);
            int rc = baton_store_tick(store, &report, record, &out);
            baton__alloc_fail_after(-1);
            if (rc == BATON_ENOMEM) {
                failed_ticks++;
                assert_int_equal(out.n, 0);
                assert_int_equal(baton_store_pending(store), n_rewrites);
                assert_true(bt_store_fingerprint(store) == ref_before);
                /* Again, without faults: as if the failed tick had never been. */
                bt_assert_rc(baton_store_tick(store, &report, record, &out), 0);
            } else {
                bt_assert_rc(rc, 0);
            }
            /* None of these rules can fail but by their seq; an allocation failure in the tick
             * must be the tick's BATON_ENOMEM, not a rewrite dropped with that status. */
            for (size_t q = 0; q < out.n && q < 256; q++)
                if (out.out[q].status == BATON_ENOMEM)
                    fail_msg("shard_bits %u, allocation %ld failing: the tick returned %s but "
                             "dropped seq %llu (and maybe more) with status BATON_ENOMEM, though "
                             "its rule returned 0; store.h: a rule that returns 0 commits, and a "
                             "tick that runs out of memory returns BATON_ENOMEM having done "
                             "nothing",
                             bits, k, baton_err_name(rc), (unsigned long long)out.out[q].seq);
            assert_true(bt_store_fingerprint(store) == ref_after);
            assert_int_equal(baton_store_pending(store), ref_pending);
            assert_int_equal(report.considered, ref_report.considered);
            assert_int_equal(report.committed, ref_report.committed);
            assert_int_equal(report.deferred, ref_report.deferred);
            assert_int_equal(report.failed, ref_report.failed);
            assert_int_equal(report.writes, ref_report.writes);
            same_outcomes(&out, &ref_out);
            baton_store_destroy(store);
            if (rc == 0)
                break;
        }
        printf("# shard_bits %u: the tick failed for want of memory %ld times, then worked\n",
               bits, failed_ticks);
        assert_true(failed_ticks >= 1);
    }
}

/* ---- compact and update_all ------------------------------------------------------------------ */

static int count_calls(const uint64_t *ids, void *payloads, size_t count, unsigned shard,
                       void *ctx)
{
    (void)ids, (void)payloads, (void)count, (void)shard;
    ++*(int *)ctx;
    return 0;
}

static void test_compact_and_update_faults(void **state)
{
    (void)state;
    long before = live_blocks;
    baton_store_config config = no_pool_config(3);
    baton_store *store = bt_store_create_config(&config);
    enum { N = 200 };
    uint64_t ids[N];
    unsigned char payloads[N * FP];
    void *where[N];
    for (size_t i = 0; i < N; i++) {
        ids[i] = fid(i);
        memset(payloads + i * FP, (int)(i % 251), FP);
        bt_assert_rc(baton_store_insert(store, ids[i], payloads + i * FP, FP), 0);
    }
    for (size_t i = 0; i < N; i++)
        bt_assert_rc(baton_store_lookup(store, ids[i], &where[i]), 0);
    uint64_t expected = bt_model_fingerprint(ids, payloads, NULL, N, FP);

    /* update_all's first call allocates (its shard cursors). */
    int failures = 0;
    for (long k = 0;; k++) {
        assert_true(k < MAX_N);
        int calls = 0;
        baton__alloc_fail_after(k);
        int rc = baton_store_update_all(store, count_calls, &calls);
        baton__alloc_fail_after(-1);
        if (rc == 0) {
            assert_int_equal(calls, 8);
            break;
        }
        bt_assert_rc(rc, BATON_ENOMEM);
        assert_int_equal(calls, 0); /* nothing ran */
        failures++;
    }
    assert_true(failures >= 1);

    failures = 0;
    for (long k = 0;; k++) {
        assert_true(k < MAX_N);
        baton__alloc_fail_after(k);
        int rc = baton_store_compact(store);
        baton__alloc_fail_after(-1);
        if (rc == 0)
            break;
        bt_assert_rc(rc, BATON_ENOMEM);
        failures++;
        for (size_t i = 0; i < N; i++) {
            void *p = NULL;
            bt_assert_rc(baton_store_lookup(store, ids[i], &p), 0);
            assert_ptr_equal(p, where[i]); /* not moved */
        }
        assert_int_equal(baton_store_count(store), N);
        assert_true(bt_store_fingerprint(store) == expected);
    }
    assert_true(failures >= 1);
    assert_true(bt_store_fingerprint(store) == expected);
    baton_store_destroy(store);
    assert_int_equal(live_blocks, before);
}

static int group_setup(void **state)
{
    (void)state;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    baton__alloc_fail_after(-1);
    return live_blocks == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    /* Before any other baton call, so that every block is counted. */
    baton_allocator counting = {count_malloc, count_aligned_alloc, count_free};
    if (baton_set_allocator(&counting) != 0)
        return 1;
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_faults),
        cmocka_unit_test(test_insert_faults),
        cmocka_unit_test(test_tick_faults),
        cmocka_unit_test(test_compact_and_update_faults),
    };
    return cmocka_run_group_tests_name("store/faults", tests, group_setup, group_teardown);
}
