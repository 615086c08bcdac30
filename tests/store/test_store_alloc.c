/*
 * test_store_alloc.c — docs/store.md: "In steady state a tick allocates nothing". A counting
 * allocator (installed before any other baton call) counts every allocation baton makes, on any
 * thread. At one pool size (--workers N; CTest runs 1, 2, 4, 8 and 16), for every policy
 * (DYNAMIC, STATIC, DEDICATED with the pool's size and with 3 executors, and no pool) and 64
 * and 256 shards: after a few warm-up ticks, every one of many identical ticks (the same
 * rewrites submitted, all committing) allocates 0 bytes, and so do the submits between them.
 * The rewrites are spread unevenly over the shards and their rules cost unevenly, so that
 * under DYNAMIC the lanes take different shards from one tick to the next.
 */
#include "support/bt_common.h"

#include "support/bt_store.h"

BT_DEFINE_POOL_GROUP()

static atomic_ullong g_alloc_calls, g_alloc_bytes;

static void *count_malloc(size_t size)
{
    atomic_fetch_add(&g_alloc_calls, 1);
    atomic_fetch_add(&g_alloc_bytes, size);
    return malloc(size);
}

static void *count_aligned_alloc(size_t alignment, size_t size)
{
    atomic_fetch_add(&g_alloc_calls, 1);
    atomic_fetch_add(&g_alloc_bytes, size);
    return aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}

static void count_free(void *ptr)
{
    free(ptr);
}

enum { PAYLOAD = 16, ENTITIES = 4096, REWRITES = 1500, WARMUP = 3 };

/* Writes its one written id: value += sum of the read values + 1. Rewrites whose arg is odd
 * spin for a while first, so that some shards take far longer than others. */
static int rule_sum(baton_rewrite_ctx *rc, void *ctx)
{
    (void)ctx;
    uint64_t arg = baton_rewrite_arg(rc), spin = arg & 1 ? 300 : 0, h = arg;
    for (uint64_t i = 0; i < spin; i++)
        h = baton_mix64(h);
    uint64_t reads[2] = {ENTITIES + arg % ENTITIES, ENTITIES + (arg * 37 + 11) % ENTITIES};
    uint64_t sum = spin != 0 && h == 0; /* keeps the spin; almost always 0 */
    for (int k = 0; k < 2; k++) {
        const void *p = NULL;
        if (baton_rewrite_read(rc, reads[k], &p) != 0)
            return BATON_EINVAL;
        sum += bt_get64(p, 0);
    }
    void *w = NULL;
    if (baton_rewrite_write(rc, arg, &w) != 0)
        return BATON_EINVAL;
    bt_put64(w, 0, bt_get64(w, 0) + sum + 1);
    return 0;
}

/* Rewrite i: writes id i, reads two ids of the read-only half, scoped so that a third of the
 * rewrites crowd into the shard of scope 0. */
static void submit_all(baton_store *store, uint32_t rule)
{
    for (uint64_t i = 0; i < REWRITES; i++) {
        uint64_t reads[2] = {ENTITIES + i % ENTITIES, ENTITIES + (i * 37 + 11) % ENTITIES};
        uint64_t write = i;
        baton_rewrite rw = {rule, i % 3 == 0 ? 0 : i * 7919, i, reads, 2, &write, 1};
        int rc = baton_store_submit(store, &rw, NULL);
        if (rc != 0)
            fail_msg("submit %llu: %s: %s", (unsigned long long)i, baton_err_name(rc),
                     baton_last_error_message());
    }
}

typedef struct mode {
    const char *name;
    baton_store_policy policy;
    bool with_pool;
    unsigned executors;
} mode;

static void steady_state(const mode *m, unsigned bits, unsigned ticks)
{
    baton_store_config config = bt_store_config(PAYLOAD, bits, 0, m->with_pool ? g_pool : NULL,
                                                m->policy, BATON_STORE_DEFER, m->executors);
    baton_store *store = bt_store_create_config(&config);
    uint32_t rule = 0;
    unsigned char p[PAYLOAD] = {0};
    bt_assert_rc(baton_store_add_rule(store, rule_sum, NULL, &rule), 0);
    for (uint64_t id = 0; id < 2 * ENTITIES; id++) {
        bt_put64(p, 0, id);
        bt_assert_rc(baton_store_insert(store, id, p, PAYLOAD), 0);
    }
    for (unsigned t = 0; t < WARMUP + ticks; t++) {
        unsigned long long calls0 = atomic_load(&g_alloc_calls);
        unsigned long long bytes0 = atomic_load(&g_alloc_bytes);
        submit_all(store, rule);
        unsigned long long calls1 = atomic_load(&g_alloc_calls);
        unsigned long long bytes1 = atomic_load(&g_alloc_bytes);
        baton_tick_report report;
        bt_assert_rc(baton_store_tick(store, &report, NULL, NULL), 0);
        unsigned long long calls2 = atomic_load(&g_alloc_calls);
        unsigned long long bytes2 = atomic_load(&g_alloc_bytes);
        assert_int_equal(report.committed, REWRITES);
        assert_int_equal(report.failed + report.deferred + report.rejected, 0);
        if (t < WARMUP)
            continue;
        if (calls1 != calls0)
            fail_msg("%s, %u shards, %u workers: the submits before tick %u allocated %llu "
                     "times (%llu bytes)",
                     m->name, 1u << bits, g_workers, t, calls1 - calls0, bytes1 - bytes0);
        if (calls2 != calls1)
            fail_msg("%s, %u shards, %u workers: tick %u (after %d warm-up ticks) allocated "
                     "%llu times (%llu bytes)",
                     m->name, 1u << bits, g_workers, t, WARMUP, calls2 - calls1, bytes2 - bytes1);
    }
    /* Every write landed: id i was written once per tick. */
    for (uint64_t i = 0; i < REWRITES; i += 97) {
        bt_assert_rc(baton_store_get(store, i, p, PAYLOAD), 0);
        uint64_t per_tick = ENTITIES + i % ENTITIES + ENTITIES + (i * 37 + 11) % ENTITIES + 1;
        assert_int_equal(bt_get64(p, 0), i + per_tick * (WARMUP + ticks));
    }
    baton_store_destroy(store);
}

static void test_steady_state(void **state)
{
    (void)state;
    const mode modes[] = {
        {"dynamic", BATON_STORE_DYNAMIC, true, 0},
        {"static", BATON_STORE_STATIC, true, 0},
        {"dedicated", BATON_STORE_DEDICATED, true, 0},
        {"dedicated, 3 executors", BATON_STORE_DEDICATED, false, 3},
        {"no pool", BATON_STORE_DYNAMIC, false, 0},
    };
    unsigned ticks = (unsigned)bt_scaled(25, 5);
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        steady_state(&modes[m], 6, ticks);
        steady_state(&modes[m], 8, ticks);
    }
}

int main(int argc, char **argv)
{
    static const baton_allocator counting = {count_malloc, count_aligned_alloc, count_free};
    if (baton_set_allocator(&counting) != 0)
        return 1;
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_state),
    };
    return cmocka_run_group_tests_name("store/alloc", tests, group_setup, group_teardown);
}
