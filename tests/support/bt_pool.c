/*
 * bt_pool.c — the pool helpers of bt_common.h: creating and destroying a pool that must work,
 * nudging a pool from inside a call, running a task on a worker, a check that a pool still works.
 */
#include "support/bt_common.h"

/* A task handed to a worker by bt_run_on_worker. */
typedef struct bt__on_worker {
    baton_pool *pool;
    int (*fn)(void *ctx);
    void *ctx;
    int rc;
    int worker; /* baton_pool_current_worker where B ran */
    unsigned timeout_ms;
    atomic_int done;
} bt__on_worker;

static int bt__nudge_noop(void *ctx)
{
    (void)ctx;
    return 0;
}

static int bt__on_worker_b(void *arg)
{
    bt__on_worker *w = arg;
    w->worker = baton_pool_current_worker(w->pool);
    w->rc = w->fn(w->ctx);
    atomic_store(&w->done, 1);
    return 0;
}

static int bt__on_worker_a(void *arg)
{
    bt__on_worker *w = arg;
    /* Nudging: a worker falling asleep just as B was offered may miss it (bt_common.h). */
    return bt_wait_flag_nudging(w->pool, &w->done, w->timeout_ms) ? 0 : BATON_ETIMEDOUT;
}

static int bt__sanity_fn(size_t begin, size_t end, void *ctx)
{
    atomic_uchar *hits = ctx;
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add_explicit(&hits[i], 1, memory_order_relaxed);
    return 0;
}

baton_pool_config bt_pool_config(unsigned n_workers, unsigned flags, unsigned external_slots)
{
    baton_pool_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.n_workers = n_workers;
    config.flags = flags;
    config.external_slots = external_slots;
    return config;
}

baton_pool *bt_pool_create_ex(unsigned n_workers, unsigned flags, unsigned external_slots)
{
    baton_pool_config config = bt_pool_config(n_workers, flags, external_slots);
    baton_pool *pool = NULL;
    int rc = baton_pool_create(&config, &pool);
    if (rc != 0)
        fail_msg("baton_pool_create(n_workers=%u, flags=%#x, external_slots=%u) = %s: %s",
                 n_workers, flags, external_slots, baton_err_name(rc), baton_last_error_message());
    assert_non_null(pool);
    assert_int_equal(baton_pool_workers(pool), n_workers);
    return pool;
}

baton_pool *bt_pool_create(unsigned n_workers)
{
    return bt_pool_create_ex(n_workers, 0, 0);
}

void bt_pool_destroy(baton_pool *pool)
{
    int rc = baton_pool_destroy(pool);
    if (rc != 0)
        fail_msg("baton_pool_destroy = %s: %s", baton_err_name(rc), baton_last_error_message());
}

void bt_nudge(baton_pool *pool)
{
    int rc = baton_join(pool, bt__nudge_noop, NULL, bt__nudge_noop, NULL);
    BT_CHECK_MSG(rc == 0, "nudge join: %s", baton_err_name(rc));
}

bool bt_wait_flag_nudging(baton_pool *pool, atomic_int *flag, unsigned timeout_ms)
{
    uint64_t deadline = bt_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (atomic_load(flag) == 0) {
        if (bt_now_ns() > deadline)
            return false;
        bt_nudge(pool);
        sched_yield();
    }
    return true;
}

int bt_run_on_worker(baton_pool *pool, int (*fn)(void *ctx), void *ctx, int *out_worker)
{
    bt__on_worker w = {
        .pool = pool, .fn = fn, .ctx = ctx, .rc = 0, .worker = -2, .timeout_ms = 30000};
    atomic_init(&w.done, 0);
    int rc = baton_join(pool, bt__on_worker_a, &w, bt__on_worker_b, &w);
    if (out_worker != NULL)
        *out_worker = w.worker;
    return rc != 0 ? rc : w.rc;
}

void bt_assert_pool_usable(baton_pool *pool)
{
    enum { N = 4096 };
    static atomic_uchar hits[N];
    for (size_t i = 0; i < N; i++)
        atomic_store(&hits[i], 0);
    bt_assert_rc(baton_parallel_for(pool, 0, N, 16, bt__sanity_fn, hits), 0);
    for (size_t i = 0; i < N; i++)
        if (atomic_load(&hits[i]) != 1)
            fail_msg("pool not usable: index %zu ran %u times", i, (unsigned)atomic_load(&hits[i]));
}
