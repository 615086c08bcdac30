/*
 * test_pool_basic.c — creating and configuring pools: NULL and zeroed configs give one worker
 * per CPU this process may use; explicit worker counts; invalid configs are rejected with
 * BATON_EINVAL and leave *out_pool untouched, struct_size among them (larger than this header's,
 * or shorter than a size_t; an older header's shorter struct takes defaults past its end);
 * BATON_POOL_PIN pins each worker to one CPU and the pool works; thread names carry the
 * configured prefix; baton_pool_current_worker is -1 outside and the worker's index inside;
 * destroy(NULL) and destroy from inside the pool are refused (EINVAL / EDEADLK) and the pool
 * keeps working; baton_join's B, forked while every worker was busy, is taken by a worker that
 * goes idle once A forks again; worker statistics.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "support/bt_common.h"

#include <sys/prctl.h>

static unsigned allowed_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    return (unsigned)CPU_COUNT(&set);
}

static int cover_fn(size_t begin, size_t end, void *ctx)
{
    atomic_uint *hits = ctx;
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add_explicit(&hits[i], 1, memory_order_relaxed);
    return 0;
}

/* A parallel_for over [0, n) that must cover every index once. */
static void assert_covers(baton_pool *pool, size_t n, size_t grain)
{
    atomic_uint *hits = calloc(n ? n : 1, sizeof *hits);
    assert_non_null(hits);
    bt_assert_rc(baton_parallel_for(pool, 0, n, grain, cover_fn, hits), 0);
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&hits[i]) != 1)
            fail_msg("index %zu of %zu ran %u times", i, n, atomic_load(&hits[i]));
    free(hits);
}

/* ---- run something on a worker thread -------------------------------------------------------- *
 * baton_join from the main thread runs A on the caller (which holds an external slot) and offers
 * B to the workers. A waits (bounded, nudging the pool so that B is handed out) until B has
 * started elsewhere, so B runs on a worker; if no worker takes it within the bound, B runs on
 * the caller afterwards and the returned index says so (-1).
 */
typedef void (*worker_probe_fn)(baton_pool *pool, void *ctx);

typedef struct on_worker_ctx {
    baton_pool *pool;
    worker_probe_fn probe;
    void *probe_ctx;
    atomic_int b_started;
    int b_worker; /* baton_pool_current_worker seen by B */
} on_worker_ctx;

static int on_worker_a(void *arg)
{
    on_worker_ctx *ctx = arg;
    (void)bt_wait_flag_nudging(ctx->pool, &ctx->b_started, 20000);
    return 0;
}

static int on_worker_b(void *arg)
{
    on_worker_ctx *ctx = arg;
    ctx->b_worker = baton_pool_current_worker(ctx->pool);
    if (ctx->b_worker >= 0 && ctx->probe != NULL)
        ctx->probe(ctx->pool, ctx->probe_ctx);
    atomic_store(&ctx->b_started, 1);
    return 0;
}

/* Returns the index of the worker that ran the probe (-1: no worker took it). */
static int run_on_worker(baton_pool *pool, worker_probe_fn probe, void *probe_ctx)
{
    on_worker_ctx ctx = {.pool = pool, .probe = probe, .probe_ctx = probe_ctx, .b_worker = -2};
    atomic_init(&ctx.b_started, 0);
    bt_assert_rc(baton_join(pool, on_worker_a, &ctx, on_worker_b, &ctx), 0);
    bt_assert_no_thread_failures();
    return ctx.b_worker;
}

/* ---- creation -------------------------------------------------------------------------------- */

static void test_create_null_config(void **state)
{
    (void)state;
    baton_pool *pool = NULL;
    bt_assert_rc(baton_pool_create(NULL, &pool), 0);
    assert_non_null(pool);
    unsigned workers = baton_pool_workers(pool);
    assert_true(workers >= 1);
    unsigned cpus = allowed_cpus();
    if (cpus != 0 && workers != cpus)
        fail_msg("default pool has %u workers, this process may run on %u CPUs", workers, cpus);
    assert_covers(pool, 10000, 0);
    bt_pool_destroy(pool);
}

static void test_create_zeroed_config(void **state)
{
    (void)state;
    baton_pool_config config;
    memset(&config, 0, sizeof config); /* struct_size 0 too: "this header's size" */
    baton_pool *pool = NULL;
    bt_assert_rc(baton_pool_create(&config, &pool), 0);
    assert_non_null(pool);
    unsigned cpus = allowed_cpus();
    assert_true(baton_pool_workers(pool) >= 1);
    if (cpus != 0)
        assert_int_equal(baton_pool_workers(pool), cpus);
    assert_covers(pool, 10000, 0);
    bt_pool_destroy(pool);

    config.struct_size = sizeof config;
    pool = NULL;
    bt_assert_rc(baton_pool_create(&config, &pool), 0);
    assert_non_null(pool);
    assert_true(baton_pool_workers(pool) >= 1);
    bt_pool_destroy(pool);
}

static void test_create_explicit_workers(void **state)
{
    (void)state;
    const unsigned counts[] = {1, 2, 4, 8, 16};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        baton_pool *pool = bt_pool_create(counts[i]);
        assert_int_equal(baton_pool_workers(pool), counts[i]);
        assert_covers(pool, 50000, 0);
        assert_covers(pool, 5000, 1);
        bt_pool_destroy(pool);
    }
}

static void test_create_external_slot_settings(void **state)
{
    (void)state;
    const unsigned slots[] = {1, 2, BATON_POOL_DEFAULT_EXTERNAL_SLOTS,
                              BATON_POOL_MAX_EXTERNAL_SLOTS};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        baton_pool *pool = bt_pool_create_ex(2, 0, slots[i]);
        assert_covers(pool, 20000, 3);
        bt_pool_destroy(pool);
    }
    baton_pool *pool = bt_pool_create_ex(2, BATON_POOL_NO_EXTERNAL_SLOTS, 0);
    assert_covers(pool, 20000, 3);
    bt_pool_destroy(pool);
}

static void expect_invalid(const baton_pool_config *config, const char *what)
{
    baton_pool *pool = (baton_pool *)&pool; /* sentinel */
    baton_pool *const sentinel = pool;
    int rc = baton_pool_create(config, &pool);
    if (rc != BATON_EINVAL) {
        if (rc == 0 && pool != sentinel)
            (void)baton_pool_destroy(pool);
        fail_msg("%s: baton_pool_create returned %s, expected BATON_EINVAL", what,
                 baton_err_name(rc));
    }
    if (pool != sentinel)
        fail_msg("%s: *out_pool was written on error", what);
    if (baton_last_error_message()[0] == '\0')
        fail_msg("%s: no detail message was set", what);
}

static void test_create_invalid_configs(void **state)
{
    (void)state;
    baton_pool_config config = bt_pool_config(2, 0, 0);
    bt_assert_rc(baton_pool_create(&config, NULL), BATON_EINVAL);
    bt_assert_rc(baton_pool_create(NULL, NULL), BATON_EINVAL);

    config = bt_pool_config(2, 0, 0);
    config.struct_size = sizeof config + 1;
    expect_invalid(&config, "struct_size one byte too big");
    config.struct_size = sizeof config + 64;
    expect_invalid(&config, "struct_size 64 bytes too big");
    config.struct_size = SIZE_MAX;
    expect_invalid(&config, "struct_size SIZE_MAX");

    config = bt_pool_config(BATON_POOL_MAX_WORKERS + 1, 0, 0);
    expect_invalid(&config, "n_workers = BATON_POOL_MAX_WORKERS + 1");
    config = bt_pool_config(UINT32_MAX, 0, 0);
    expect_invalid(&config, "n_workers = UINT32_MAX");

    config = bt_pool_config(2, 0, BATON_POOL_MAX_EXTERNAL_SLOTS + 1);
    expect_invalid(&config, "external_slots = BATON_POOL_MAX_EXTERNAL_SLOTS + 1");

    const unsigned bad_flags[] = {1u << 2, 1u << 7, 1u << 31,
                                  BATON_POOL_PIN | BATON_POOL_NO_EXTERNAL_SLOTS | (1u << 3)};
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        config = bt_pool_config(2, bad_flags[i], 0);
        char what[64];
        snprintf(what, sizeof what, "unknown flags %#x", bad_flags[i]);
        expect_invalid(&config, what);
    }
}

static int pool_try_struct_size(size_t struct_size, bool *created, void *ctx)
{
    (void)ctx;
    baton_pool_config config = bt_pool_config(1, 0, 0);
    config.struct_size = struct_size;
    baton_pool *pool = NULL;
    int rc = baton_pool_create(&config, &pool);
    if (pool != NULL) {
        *created = true;
        bt_pool_destroy(pool);
    }
    return rc;
}

/* pool.h's struct_size sentence: 0 and this header's size work, larger or shorter than a
 * size_t is BATON_EINVAL; an older header's struct ending before flags leaves flags at 0 (an
 * unknown flag past it is not read). */
static void test_create_struct_size_rule(void **state)
{
    (void)state;
    bt_check_struct_size("baton_pool_config", sizeof(baton_pool_config), pool_try_struct_size,
                         NULL);
    baton_pool_config config = bt_pool_config(2, 1u << 30, 0);
    config.struct_size = offsetof(baton_pool_config, flags);
    baton_pool *pool = NULL;
    bt_assert_rc(baton_pool_create(&config, &pool), 0);
    assert_int_equal(baton_pool_workers(pool), 2); /* n_workers, inside the old struct, counts */
    bt_pool_destroy(pool);
}

static void test_pool_workers_reports_count(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create(3);
    assert_int_equal(baton_pool_workers(pool), 3);
    bt_pool_destroy(pool);
}

/* ---- pinning --------------------------------------------------------------------------------- */

typedef struct pin_probe {
    atomic_int cpus_in_mask;
} pin_probe;

static void probe_affinity(baton_pool *pool, void *arg)
{
    (void)pool;
    pin_probe *probe = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        atomic_store(&probe->cpus_in_mask, CPU_COUNT(&set));
}

static void test_pin_creates_and_runs_work(void **state)
{
    (void)state;
    const unsigned counts[] = {1, 2, 5}; /* 5 > CPUs on a 2-core machine: pinning wraps around */
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        baton_pool *pool = bt_pool_create_ex(counts[i], BATON_POOL_PIN, 0);
        assert_covers(pool, 100000, 0);
        assert_covers(pool, 3000, 1);
        pin_probe probe;
        atomic_init(&probe.cpus_in_mask, -1);
        int worker = run_on_worker(pool, probe_affinity, &probe);
        if (worker >= 0) {
            /* "Pin worker i to logical CPU i": a pinned worker may run on exactly one CPU. */
            if (atomic_load(&probe.cpus_in_mask) != 1)
                fail_msg("pinned worker %d may run on %d CPUs", worker,
                         atomic_load(&probe.cpus_in_mask));
        } else {
            fail_msg("no worker of a %u-worker pool took offered work within 20 s", counts[i]);
        }
        bt_pool_destroy(pool);
    }
}

/* ---- thread names ---------------------------------------------------------------------------- */

typedef struct name_probe {
    char name[32];
    int worker;
} name_probe;

static void probe_name(baton_pool *pool, void *arg)
{
    name_probe *probe = arg;
    probe->worker = baton_pool_current_worker(pool);
    char buffer[32] = {0};
    if (prctl(PR_GET_NAME, (unsigned long)buffer, 0, 0, 0) == 0)
        snprintf(probe->name, sizeof probe->name, "%s", buffer);
}

/* The thread name must be "<prefix>-<i>" truncated to 15 characters. */
static void check_thread_name(const char *prefix)
{
    baton_pool_config config = bt_pool_config(2, 0, 0);
    config.name = prefix;
    baton_pool *pool = NULL;
    bt_assert_rc(baton_pool_create(&config, &pool), 0);
    name_probe probe = {.name = "", .worker = -1};
    int worker = run_on_worker(pool, probe_name, &probe);
    if (worker < 0)
        fail_msg("%s", "no worker took offered work within 20 s");
    char full[128];
    snprintf(full, sizeof full, "%s-%d", prefix ? prefix : "baton", probe.worker);
    char expected[16] = {0}; /* Linux keeps 15 characters */
    size_t keep = strlen(full) < 15 ? strlen(full) : 15;
    memcpy(expected, full, keep);
    if (strcmp(probe.name, expected) != 0)
        fail_msg("worker %d is named \"%s\", expected \"%s\" (\"%s\" truncated to 15)",
                 probe.worker, probe.name, expected, full);
    bt_pool_destroy(pool);
}

static void test_thread_name_prefix(void **state)
{
    (void)state;
    check_thread_name("btest");
    check_thread_name(NULL); /* default "baton" */
    check_thread_name("a-very-long-thread-name-prefix");
}

/* ---- current worker -------------------------------------------------------------------------- */

typedef struct where_ctx {
    baton_pool *pool;
    baton_pool *other_pool;
    pthread_t main_thread;
    unsigned workers;
    atomic_int on_worker;
    atomic_int on_main;
} where_ctx;

static int where_fn(size_t begin, size_t end, void *arg)
{
    where_ctx *ctx = arg;
    int index = baton_pool_current_worker(ctx->pool);
    bool on_main = pthread_equal(pthread_self(), ctx->main_thread) != 0;
    if (on_main) {
        /* The calling thread holds an external slot but is not a worker. */
        BT_CHECK_MSG(index == -1, "caller thread sees current_worker %d", index);
        atomic_fetch_add(&ctx->on_main, 1);
    } else {
        BT_CHECK_MSG(index >= 0 && (unsigned)index < ctx->workers,
                     "worker thread sees current_worker %d of %u", index, ctx->workers);
        atomic_fetch_add(&ctx->on_worker, 1);
    }
    /* A worker of this pool is not a worker of another pool. */
    BT_CHECK(baton_pool_current_worker(ctx->other_pool) == -1);
    bt_busy_ns((end - begin) * 2000u);
    return 0;
}

static void test_current_worker(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create(4);
    baton_pool *other = bt_pool_create(1);
    assert_int_equal(baton_pool_current_worker(pool), -1);
    assert_int_equal(baton_pool_current_worker(other), -1);
    where_ctx ctx = {.pool = pool, .other_pool = other, .main_thread = pthread_self(),
                     .workers = 4};
    atomic_init(&ctx.on_worker, 0);
    atomic_init(&ctx.on_main, 0);
    bt_assert_rc(baton_parallel_for(pool, 0, 2000, 1, where_fn, &ctx), 0);
    bt_assert_no_thread_failures();
    assert_int_equal(atomic_load(&ctx.on_worker) + atomic_load(&ctx.on_main), 2000);
    printf("# 2000 pieces: %d on workers, %d on the calling thread\n",
           atomic_load(&ctx.on_worker), atomic_load(&ctx.on_main));
    /* At least one piece must have run on a worker for the check to mean anything. */
    int worker = run_on_worker(pool, NULL, NULL);
    assert_true(worker >= 0 && worker < 4);
    assert_int_equal(baton_pool_current_worker(pool), -1);
    bt_pool_destroy(other);
    bt_pool_destroy(pool);
}

/* Every worker index shows up when enough blocking work is offered: each piece waits until
 * W + 1 pieces are running at once (the calling thread runs one), so every worker has to take
 * one. */
typedef struct all_workers_ctx {
    baton_pool *pool;
    unsigned workers;
    atomic_uint running;
    atomic_uint seen_mask;
} all_workers_ctx;

static int all_workers_fn(size_t begin, size_t end, void *arg)
{
    (void)begin;
    (void)end;
    all_workers_ctx *ctx = arg;
    int index = baton_pool_current_worker(ctx->pool);
    if (index >= 0)
        atomic_fetch_or(&ctx->seen_mask, 1u << index);
    atomic_fetch_add(&ctx->running, 1);
    uint64_t deadline = bt_now_ns() + 10000000000u;
    while (atomic_load(&ctx->running) < ctx->workers + 1 && bt_now_ns() < deadline) {
        bt_nudge(ctx->pool); /* lets the pieces still in this worker's deque be handed out */
        sched_yield();
    }
    return 0;
}

static void test_every_worker_index_is_used(void **state)
{
    (void)state;
    const unsigned workers = 4;
    baton_pool *pool = bt_pool_create_ex(workers, BATON_POOL_NO_EXTERNAL_SLOTS, 0);
    all_workers_ctx ctx = {.pool = pool, .workers = workers};
    atomic_init(&ctx.running, 0);
    atomic_init(&ctx.seen_mask, 0);
    /* The caller runs the piece at 0 on a slot made on demand; the other W pieces must run on
     * the W workers. */
    bt_assert_rc(baton_parallel_for(pool, 0, workers + 1, 1, all_workers_fn, &ctx), 0);
    assert_int_equal(atomic_load(&ctx.seen_mask), (1u << workers) - 1);
    bt_pool_destroy(pool);
}

/* ---- join offers B to thieves ----------------------------------------------------------------- *
 * pool.h: "The first few levels of nested joins on a thread (the coarse ones) are always
 * stealable." Here the pool's only worker is busy (running T, the outer join's B, which it
 * stole) when the caller forks B2 one level down; then T ends and the worker goes idle while
 * A2 keeps running without forking. The worker must take B2 while A2 still runs; A2 gives up
 * after 5 s, B2 then runs on the caller and the test reports it.
 */
typedef struct late_idle_ctx {
    baton_pool *pool;
    atomic_int t_started, t_release, b2_started;
    int t_worker, b2_worker;
    bool setup_failed;
} late_idle_ctx;

/* The outer join's B: keeps the only worker busy until A2 releases it. */
static int late_t(void *arg)
{
    late_idle_ctx *ctx = arg;
    ctx->t_worker = baton_pool_current_worker(ctx->pool);
    atomic_store(&ctx->t_started, 1);
    BT_CHECK(bt_wait_flag(&ctx->t_release, 20000));
    return 0;
}

static int late_b2(void *arg)
{
    late_idle_ctx *ctx = arg;
    ctx->b2_worker = baton_pool_current_worker(ctx->pool);
    atomic_store(&ctx->b2_started, 1);
    return 0;
}

static int late_a2(void *arg)
{
    late_idle_ctx *ctx = arg;
    atomic_store(&ctx->t_release, 1); /* the worker finishes T and becomes idle */
    (void)bt_wait_flag(&ctx->b2_started, 5000); /* no forking while it waits */
    return 0;
}

static int late_a(void *arg)
{
    late_idle_ctx *ctx = arg;
    if (!bt_wait_flag(&ctx->t_started, 20000)) {
        ctx->setup_failed = true;
        atomic_store(&ctx->t_release, 1);
        return 0;
    }
    return baton_join(ctx->pool, late_a2, ctx, late_b2, ctx);
}

static void test_join_offers_b_to_worker_idle_later(void **state)
{
    (void)state;
    baton_pool_config cfg = {.struct_size = sizeof cfg, .n_workers = 1, .external_slots = 1};
    baton_pool *pool = NULL;
    bt_assert_rc(baton_pool_create(&cfg, &pool), 0);
    bt_sleep_ms(50); /* the worker has started and gone idle */
    late_idle_ctx ctx = {.pool = pool, .t_worker = -2, .b2_worker = -2, .setup_failed = false};
    atomic_init(&ctx.t_started, 0);
    atomic_init(&ctx.t_release, 0);
    atomic_init(&ctx.b2_started, 0);
    bt_assert_rc(baton_join(pool, late_a, &ctx, late_t, &ctx), 0);
    bt_assert_no_thread_failures();
    if (ctx.setup_failed || ctx.t_worker != 0)
        fail_msg("setup: T did not run on the worker (t_worker %d)", ctx.t_worker);
    assert_int_equal(atomic_load(&ctx.b2_started), 1);
    if (ctx.b2_worker != 0)
        fail_msg("%s", "baton_join's B was not taken by the pool's only worker, idle for 5 s "
                       "while A ran: a shallow fork made while the worker was busy was not "
                       "stealable (it ran on the caller after A)");
    bt_pool_destroy(pool);
}

/* A fork must wake a parked worker: the pool's workers park after 1 us of searching, the test
 * waits until they have, then forks B once and waits (without forking again) for a worker to
 * take it. A lost wake-up shows as B running on the caller after 5 s. */
typedef struct parked_ctx {
    baton_pool *pool;
    atomic_int b_started;
    int b_worker;
} parked_ctx;

static int parked_b(void *arg)
{
    parked_ctx *ctx = arg;
    ctx->b_worker = baton_pool_current_worker(ctx->pool);
    atomic_store(&ctx->b_started, 1);
    return 0;
}

static int parked_a(void *arg)
{
    parked_ctx *ctx = arg;
    (void)bt_wait_flag(&ctx->b_started, 5000);
    return 0;
}

static void test_fork_wakes_parked_worker(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 4; workers *= 2) {
        baton_pool_config cfg = {.struct_size = sizeof cfg, .n_workers = workers, .spin_us = 1};
        baton_pool *pool = NULL;
        bt_assert_rc(baton_pool_create(&cfg, &pool), 0);
        for (int round = 0; round < 10; round++) {
            bt_sleep_ms(20); /* every worker has parked */
            parked_ctx ctx = {.pool = pool, .b_worker = -2};
            atomic_init(&ctx.b_started, 0);
            bt_assert_rc(baton_join(pool, parked_a, &ctx, parked_b, &ctx), 0);
            if (ctx.b_worker < 0)
                fail_msg("round %d, %u workers: B was not taken by a parked worker within 5 s "
                         "(lost wake-up)", round, workers);
        }
        bt_pool_destroy(pool);
    }
}

/* ---- destroy --------------------------------------------------------------------------------- */

static void test_destroy_null(void **state)
{
    (void)state;
    bt_assert_rc(baton_pool_destroy(NULL), BATON_EINVAL);
}

typedef struct destroy_inside_ctx {
    baton_pool *pool;
    atomic_int rc;
} destroy_inside_ctx;

static void probe_destroy(baton_pool *pool, void *arg)
{
    destroy_inside_ctx *ctx = arg;
    atomic_store(&ctx->rc, baton_pool_destroy(pool));
}

static int destroy_from_caller(void *arg)
{
    destroy_inside_ctx *ctx = arg;
    atomic_store(&ctx->rc, baton_pool_destroy(ctx->pool));
    return 0;
}

static int noop_task(void *arg)
{
    (void)arg;
    return 0;
}

static void test_destroy_from_inside_is_edeadlk(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create(2);

    /* From a worker. */
    destroy_inside_ctx ctx = {.pool = pool};
    atomic_init(&ctx.rc, 12345);
    int worker = run_on_worker(pool, probe_destroy, &ctx);
    assert_true(worker >= 0);
    bt_assert_rc(atomic_load(&ctx.rc), BATON_EDEADLK);
    bt_assert_pool_usable(pool);

    /* From the calling thread while it is inside a call into the pool (join's A runs there). */
    atomic_store(&ctx.rc, 12345);
    bt_assert_rc(baton_join(pool, destroy_from_caller, &ctx, noop_task, NULL), 0);
    bt_assert_rc(atomic_load(&ctx.rc), BATON_EDEADLK);
    bt_assert_pool_usable(pool);

    /* Repeatedly, then a clean destroy. */
    for (int i = 0; i < 20; i++) {
        atomic_store(&ctx.rc, 12345);
        (void)run_on_worker(pool, probe_destroy, &ctx);
        bt_assert_rc(atomic_load(&ctx.rc), BATON_EDEADLK);
    }
    bt_assert_pool_usable(pool);
    bt_pool_destroy(pool);
}

/* ---- stats ----------------------------------------------------------------------------------- */

static void test_worker_stats(void **state)
{
    (void)state;
    const unsigned workers = 4;
    baton_pool *pool = bt_pool_create(workers);
    assert_covers(pool, 200000, 1);
    assert_covers(pool, 200000, 0);
    (void)run_on_worker(pool, NULL, NULL); /* something a worker surely ran */

    baton_worker_stats per[4];
    for (unsigned i = 0; i < workers; i++) {
        memset(&per[i], 0xab, sizeof per[i]);
        bt_assert_rc(baton_pool_worker_stats(pool, i, &per[i]), 0);
    }
    baton_worker_stats sum;
    memset(&sum, 0xab, sizeof sum);
    bt_assert_rc(baton_pool_worker_stats(pool, workers, &sum), 0);
    assert_true(sum.tasks_executed > 0);
    /* Counters only grow, and the sum (read later) covers every worker and external slot. */
    uint64_t executed = 0, steals = 0, failures = 0, parks = 0;
    for (unsigned i = 0; i < workers; i++) {
        executed += per[i].tasks_executed;
        steals += per[i].steals;
        failures += per[i].steal_failures;
        parks += per[i].parks;
        /* Sanity: no counter reads as uninitialised garbage. */
        assert_true(per[i].tasks_executed < (UINT64_C(1) << 48));
        assert_true(per[i].parks < (UINT64_C(1) << 48));
    }
    assert_true(sum.tasks_executed >= executed);
    assert_true(sum.steals >= steals);
    assert_true(sum.steal_failures >= failures);
    assert_true(sum.parks >= parks);
    /* Some worker ran something: the work above offered ~400k pieces and a join. */
    assert_true(executed > 0);
    printf("# stats: executed %llu (workers %llu), steals %llu, steal failures %llu, parks %llu\n",
           (unsigned long long)sum.tasks_executed, (unsigned long long)executed,
           (unsigned long long)sum.steals, (unsigned long long)sum.steal_failures,
           (unsigned long long)sum.parks);

    baton_worker_stats out;
    memset(&out, 0x5a, sizeof out);
    baton_worker_stats untouched = out;
    bt_assert_rc(baton_pool_worker_stats(pool, workers + 1, &out), BATON_EINVAL);
    bt_assert_rc(baton_pool_worker_stats(pool, UINT32_MAX, &out), BATON_EINVAL);
    assert_memory_equal(&out, &untouched, sizeof out);
    bt_assert_rc(baton_pool_worker_stats(pool, 0, NULL), BATON_EINVAL);
    bt_assert_rc(baton_pool_worker_stats(NULL, 0, &out), BATON_EINVAL);

    /* Counters keep growing with more work. */
    assert_covers(pool, 100000, 1);
    baton_worker_stats later;
    bt_assert_rc(baton_pool_worker_stats(pool, workers, &later), 0);
    assert_true(later.tasks_executed >= sum.tasks_executed);
    bt_pool_destroy(pool);
}

/* Stats are thread-safe and read as recent snapshots: a thread polling every worker's counters
 * while work runs sees each of them never decrease. */
typedef struct poller_ctx {
    baton_pool *pool;
    unsigned workers;
    atomic_int stop;
    long polls;
} poller_ctx;

static void *stats_poller(void *arg)
{
    poller_ctx *ctx = arg;
    baton_worker_stats last[9];
    memset(last, 0, sizeof last);
    while (!atomic_load(&ctx->stop)) {
        for (unsigned i = 0; i <= ctx->workers; i++) {
            baton_worker_stats now;
            int rc = baton_pool_worker_stats(ctx->pool, i, &now);
            BT_CHECK(rc == 0);
            BT_CHECK_MSG(now.tasks_executed >= last[i].tasks_executed &&
                             now.steals >= last[i].steals &&
                             now.steal_failures >= last[i].steal_failures &&
                             now.parks >= last[i].parks,
                         "stats of %u went backwards", i);
            last[i] = now;
        }
        ctx->polls++;
        sched_yield();
    }
    return NULL;
}

static void test_worker_stats_while_running(void **state)
{
    (void)state;
    const unsigned workers = 8;
    baton_pool *pool = bt_pool_create(workers);
    poller_ctx ctx = {.pool = pool, .workers = workers, .polls = 0};
    atomic_init(&ctx.stop, 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, stats_poller, &ctx), 0);
    for (int r = 0; r < 20; r++) {
        assert_covers(pool, 20000, r % 3);
        if (r % 5 == 0)
            bt_sleep_ms(5); /* let workers park, so parks move too */
    }
    atomic_store(&ctx.stop, 1);
    pthread_join(thread, NULL);
    bt_assert_no_thread_failures();
    assert_true(ctx.polls > 0);
    bt_pool_destroy(pool);
}

/* ---- NULL arguments to the calls ------------------------------------------------------------- */

static int scope_noop(baton_scope *scope, void *ctx)
{
    (void)scope;
    (void)ctx;
    return 0;
}

static void test_calls_reject_null(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create(2);
    bt_assert_rc(baton_join(NULL, noop_task, NULL, noop_task, NULL), BATON_EINVAL);
    bt_assert_rc(baton_join(pool, NULL, NULL, noop_task, NULL), BATON_EINVAL);
    bt_assert_rc(baton_join(pool, noop_task, NULL, NULL, NULL), BATON_EINVAL);
    bt_assert_rc(baton_scope_run(NULL, scope_noop, NULL), BATON_EINVAL);
    bt_assert_rc(baton_scope_run(pool, NULL, NULL), BATON_EINVAL);
    bt_assert_rc(baton_parallel_for(NULL, 0, 10, 1, cover_fn, NULL), BATON_EINVAL);
    bt_assert_rc(baton_parallel_for(pool, 0, 10, 1, NULL, NULL), BATON_EINVAL);
    /* The queries answer NULL without failing. */
    assert_int_equal(baton_pool_workers(NULL), 0);
    assert_int_equal(baton_pool_current_worker(NULL), -1);
    assert_false(baton_scope_cancelled(NULL));
    bt_assert_pool_usable(pool);
    bt_pool_destroy(pool);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_null_config),
        cmocka_unit_test(test_create_zeroed_config),
        cmocka_unit_test(test_create_explicit_workers),
        cmocka_unit_test(test_create_external_slot_settings),
        cmocka_unit_test(test_create_invalid_configs),
        cmocka_unit_test(test_create_struct_size_rule),
        cmocka_unit_test(test_pool_workers_reports_count),
        cmocka_unit_test(test_pin_creates_and_runs_work),
        cmocka_unit_test(test_thread_name_prefix),
        cmocka_unit_test(test_current_worker),
        cmocka_unit_test(test_every_worker_index_is_used),
        cmocka_unit_test(test_join_offers_b_to_worker_idle_later),
        cmocka_unit_test(test_fork_wakes_parked_worker),
        cmocka_unit_test(test_destroy_null),
        cmocka_unit_test(test_destroy_from_inside_is_edeadlk),
        cmocka_unit_test(test_worker_stats),
        cmocka_unit_test(test_worker_stats_while_running),
        cmocka_unit_test(test_calls_reject_null),
    };
    return cmocka_run_group_tests_name("pool/basic", tests, NULL, NULL);
}
