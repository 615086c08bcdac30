/*
 * test_pool_lifecycle.c — a pool's life: create/destroy many times with 1..16 workers (with and
 * without work, from several threads at once); destroy while another thread's long loop runs
 * waits for that loop, which completes correctly; calls that start after destroy began fail with
 * BATON_ECLOSED; an idle pool of 16 workers uses (almost) no CPU; workers wake up for work after
 * being idle, again and again.
 */
#include "support/bt_common.h"

static int cover_fn(size_t begin, size_t end, void *ctx)
{
    atomic_uchar *hits = ctx;
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add_explicit(&hits[i], 1, memory_order_relaxed);
    return 0;
}

static bool covers(baton_pool *pool, size_t n, size_t grain)
{
    atomic_uchar *hits = calloc(n, 1);
    if (hits == NULL)
        return false;
    bool ok = baton_parallel_for(pool, 0, n, grain, cover_fn, hits) == 0;
    for (size_t i = 0; i < n && ok; i++)
        ok = atomic_load(&hits[i]) == 1;
    free(hits);
    return ok;
}

/* ---- create / destroy ------------------------------------------------------------------------ */

static void test_create_destroy_many_times(void **state)
{
    (void)state;
    size_t rounds = bt_scaled(200, 20);
    for (size_t r = 0; r < rounds; r++) {
        unsigned workers = (unsigned)(r % 16) + 1;
        unsigned flags = r % 3 == 2 ? BATON_POOL_NO_EXTERNAL_SLOTS : 0;
        baton_pool *pool = bt_pool_create_ex(workers, flags, (unsigned)(r % 5));
        if (r % 2 == 1 && !covers(pool, 1000 + r, r % 4))
            fail_msg("round %zu (%u workers): loop wrong", r, workers);
        bt_pool_destroy(pool);
    }
}

static void *create_destroy_thread(void *arg)
{
    size_t rounds = *(size_t *)arg;
    for (size_t r = 0; r < rounds; r++) {
        baton_pool_config config = bt_pool_config((unsigned)(r % 4) + 1, 0, 0);
        baton_pool *pool = NULL;
        int rc = baton_pool_create(&config, &pool);
        BT_CHECK_MSG(rc == 0, "create: %s", baton_err_name(rc));
        if (rc != 0)
            continue;
        BT_CHECK(covers(pool, 500, 0));
        rc = baton_pool_destroy(pool);
        BT_CHECK_MSG(rc == 0, "destroy: %s", baton_err_name(rc));
    }
    return NULL;
}

static void test_create_destroy_from_many_threads(void **state)
{
    (void)state;
    size_t rounds = bt_scaled(25, 5);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, create_destroy_thread, &rounds), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    bt_assert_no_thread_failures();
}

static void test_destroy_right_after_create(void **state)
{
    (void)state;
    /* Workers may not even have started. */
    for (int i = 0; i < 20; i++)
        bt_pool_destroy(bt_pool_create(16));
}

static void test_two_pools_at_once(void **state)
{
    (void)state;
    baton_pool *a = bt_pool_create(3);
    baton_pool *b = bt_pool_create(5);
    for (int i = 0; i < 10; i++) {
        assert_true(covers(a, 20000, 0));
        assert_true(covers(b, 20000, 1));
    }
    bt_pool_destroy(a);
    assert_true(covers(b, 20000, 0));
    bt_pool_destroy(b);
}

/* ---- destroy while busy ---------------------------------------------------------------------- */

typedef struct busy_ctx {
    baton_pool *pool;
    size_t n;
    atomic_uchar *hits;
    atomic_size_t done;   /* pieces finished */
    atomic_int started;   /* the loop is running */
    int rc;               /* the loop's return value, read after joining its thread */
} busy_ctx;

static int busy_fn(size_t begin, size_t end, void *arg)
{
    busy_ctx *ctx = arg;
    atomic_store(&ctx->started, 1);
    for (size_t i = begin; i < end; i++) {
        bt_busy_ns(1000000); /* 1 ms per index */
        atomic_fetch_add_explicit(&ctx->hits[i], 1, memory_order_relaxed);
        atomic_fetch_add(&ctx->done, 1);
    }
    return 0;
}

static void *busy_thread(void *arg)
{
    busy_ctx *ctx = arg;
    ctx->rc = baton_parallel_for(ctx->pool, 0, ctx->n, 1, busy_fn, ctx);
    return NULL;
}

static void test_destroy_waits_for_running_call(void **state)
{
    (void)state;
    busy_ctx ctx = {.pool = bt_pool_create(4), .n = 200, .rc = 12345};
    ctx.hits = calloc(ctx.n, 1);
    assert_non_null(ctx.hits);
    atomic_init(&ctx.done, 0);
    atomic_init(&ctx.started, 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, busy_thread, &ctx), 0);
    assert_true(bt_wait_flag(&ctx.started, 20000));

    bt_pool_destroy(ctx.pool); /* must wait for the loop */
    size_t done_at_return = atomic_load(&ctx.done);

    pthread_join(thread, NULL);
    bt_assert_rc(ctx.rc, 0);
    /* "Calls already running are finished, not cancelled": the whole loop ran before destroy
     * returned. */
    if (done_at_return != ctx.n)
        fail_msg("baton_pool_destroy returned while the loop had done %zu of %zu pieces",
                 done_at_return, ctx.n);
    for (size_t i = 0; i < ctx.n; i++)
        if (atomic_load(&ctx.hits[i]) != 1)
            fail_msg("index %zu ran %u times", i, (unsigned)atomic_load(&ctx.hits[i]));
    free(ctx.hits);
}

/* The same race many times with short loops, so that destroy often meets a call that is just
 * leaving (the moment a careless destroy frees the pool under the leaving caller's feet). */
static void test_destroy_races_with_finishing_call(void **state)
{
    (void)state;
    size_t rounds = bt_scaled(100, 10);
    for (size_t r = 0; r < rounds; r++) {
        busy_ctx ctx = {.pool = bt_pool_create((unsigned)(r % 3) + 1), .n = 1 + r % 4,
                        .rc = 12345};
        ctx.hits = calloc(ctx.n, 1);
        assert_non_null(ctx.hits);
        atomic_init(&ctx.done, 0);
        atomic_init(&ctx.started, 0);
        pthread_t thread;
        assert_int_equal(pthread_create(&thread, NULL, busy_thread, &ctx), 0);
        assert_true(bt_wait_flag(&ctx.started, 20000));
        bt_pool_destroy(ctx.pool);
        size_t done_at_return = atomic_load(&ctx.done);
        pthread_join(thread, NULL);
        bt_assert_rc(ctx.rc, 0);
        if (done_at_return != ctx.n)
            fail_msg("round %zu: destroy returned after %zu of %zu pieces", r, done_at_return,
                     ctx.n);
        free(ctx.hits);
    }
}

/*
 * Calls that start after destroy began get BATON_ECLOSED.
 *
 * The difficulty is that once destroy has returned the handle is gone: a thread that calls into
 * the pool in a loop must stop before that can happen. destroy cannot return while a call is
 * inside, so we keep one call inside until the calling thread has stopped:
 *   - thread L runs a parallel_for whose piece 0 (the "gate") waits until thread C is done;
 *   - thread C calls baton_join in a loop until it gets BATON_ECLOSED (or is told to stop after
 *     a generous bound, which the test then reports as a failure), then sets `caller_done`;
 *   - main waits until L's loop runs and C has made a successful call, then destroys.
 * So C's last call returns before L's loop can finish, L's loop finishes before destroy returns,
 * and main returns from the test only after joining C and L. C never touches a freed pool.
 */
typedef struct closed_ctx {
    baton_pool *pool;
    atomic_int loop_started;
    atomic_int caller_done;   /* C has stopped calling */
    atomic_int stop_caller;   /* bound reached: C must stop */
    atomic_long successes;    /* C's calls that returned 0 */
    atomic_int first_error;   /* C's first non-zero result */
    atomic_int gate_timed_out;
    int loop_rc;
    atomic_size_t pieces;
} closed_ctx;

static int closed_noop(void *arg)
{
    (void)arg;
    return 0;
}

static int closed_loop_fn(size_t begin, size_t end, void *arg)
{
    closed_ctx *ctx = arg;
    atomic_store(&ctx->loop_started, 1);
    if (begin == 0) {
        /* The gate: hold this call open until C has stopped calling. */
        if (!bt_wait_flag(&ctx->caller_done, 30000)) {
            atomic_store(&ctx->gate_timed_out, 1);
            atomic_store(&ctx->stop_caller, 1);
            /* C is inside a call or about to check stop_caller: wait for it for real. */
            while (!atomic_load(&ctx->caller_done))
                bt_sleep_ms(1);
        }
    }
    atomic_fetch_add(&ctx->pieces, end - begin);
    return 0;
}

static void *closed_loop_thread(void *arg)
{
    closed_ctx *ctx = arg;
    ctx->loop_rc = baton_parallel_for(ctx->pool, 0, 64, 1, closed_loop_fn, ctx);
    return NULL;
}

static void *closed_caller_thread(void *arg)
{
    closed_ctx *ctx = arg;
    while (!atomic_load(&ctx->stop_caller)) {
        int rc = baton_join(ctx->pool, closed_noop, NULL, closed_noop, NULL);
        if (rc == 0) {
            atomic_fetch_add(&ctx->successes, 1);
            continue;
        }
        atomic_store(&ctx->first_error, rc);
        break;
    }
    atomic_store(&ctx->caller_done, 1);
    return NULL;
}

static void test_calls_after_destroy_began_are_closed(void **state)
{
    (void)state;
    closed_ctx ctx = {.pool = bt_pool_create(4), .loop_rc = 12345};
    atomic_init(&ctx.loop_started, 0);
    atomic_init(&ctx.caller_done, 0);
    atomic_init(&ctx.stop_caller, 0);
    atomic_init(&ctx.successes, 0);
    atomic_init(&ctx.first_error, 0);
    atomic_init(&ctx.gate_timed_out, 0);
    atomic_init(&ctx.pieces, 0);

    pthread_t loop_thread, caller_thread;
    assert_int_equal(pthread_create(&loop_thread, NULL, closed_loop_thread, &ctx), 0);
    assert_true(bt_wait_flag(&ctx.loop_started, 20000));
    assert_int_equal(pthread_create(&caller_thread, NULL, closed_caller_thread, &ctx), 0);
    uint64_t deadline = bt_now_ns() + 20000000000u;
    while (atomic_load(&ctx.successes) == 0 && !atomic_load(&ctx.caller_done) &&
           bt_now_ns() < deadline)
        bt_sleep_ms(1);

    int rc = baton_pool_destroy(ctx.pool);
    size_t pieces_at_return = atomic_load(&ctx.pieces);
    pthread_join(caller_thread, NULL);
    pthread_join(loop_thread, NULL);

    bt_assert_rc(rc, 0);
    assert_true(atomic_load(&ctx.successes) > 0);
    /* The caller kept calling after destroy began until it was refused, with ECLOSED (if calls
     * were never refused, the gate gave up after 30 s). */
    if (atomic_load(&ctx.gate_timed_out))
        fail_msg("%s", "calls made for 30 s after baton_pool_destroy began were never refused");
    bt_assert_rc(atomic_load(&ctx.first_error), BATON_ECLOSED);
    /* The loop that was running was finished, not cancelled, before destroy returned. */
    bt_assert_rc(ctx.loop_rc, 0);
    assert_int_equal(pieces_at_return, 64);
}

/* Every kind of call is refused while destroy is under way (one call held open as above). */
typedef struct refuse_ctx {
    baton_pool *pool;
    atomic_int loop_started;
    atomic_int prober_done;
    atomic_int destroy_started;
    int rcs[4];
    int loop_rc;
} refuse_ctx;

static int refuse_loop_fn(size_t begin, size_t end, void *arg)
{
    (void)end;
    refuse_ctx *ctx = arg;
    atomic_store(&ctx->loop_started, 1);
    if (begin == 0)
        BT_CHECK(bt_wait_flag(&ctx->prober_done, 30000));
    return 0;
}

static void *refuse_loop_thread(void *arg)
{
    refuse_ctx *ctx = arg;
    ctx->loop_rc = baton_parallel_for(ctx->pool, 0, 8, 1, refuse_loop_fn, ctx);
    return NULL;
}

static int refuse_body(baton_scope *scope, void *arg)
{
    (void)scope;
    (void)arg;
    return 0;
}

static int refuse_range(size_t begin, size_t end, void *arg)
{
    (void)begin;
    (void)end;
    (void)arg;
    return 0;
}

static void refuse_identity(void *out, void *ctx)
{
    (void)ctx;
    memset(out, 0, sizeof(int));
}

static int refuse_accumulate(size_t begin, size_t end, void *inout, void *ctx)
{
    (void)begin;
    (void)end;
    (void)inout;
    (void)ctx;
    return 0;
}

static void refuse_combine(void *left, const void *right, void *ctx)
{
    (void)left;
    (void)right;
    (void)ctx;
}

static void *refuse_prober_thread(void *arg)
{
    refuse_ctx *ctx = arg;
    /* Wait until main is about to destroy; destroy then blocks on the held-open loop, so the
     * pool stays valid until this thread sets prober_done. A call that still succeeds may have
     * begun before destroy did: retry each call (bounded) until it is refused. */
    (void)bt_wait_flag(&ctx->destroy_started, 20000);
    baton_reduce_ops ops = {sizeof(int), refuse_identity, refuse_accumulate, refuse_combine, 0};
    _Alignas(max_align_t) int out = 0;
    for (int call = 0; call < 4; call++) {
        uint64_t deadline = bt_now_ns() + 10000000000u;
        int rc;
        do {
            switch (call) {
            case 0:
                rc = baton_join(ctx->pool, closed_noop, NULL, closed_noop, NULL);
                break;
            case 1:
                rc = baton_scope_run(ctx->pool, refuse_body, NULL);
                break;
            case 2:
                rc = baton_parallel_for(ctx->pool, 0, 100, 0, refuse_range, NULL);
                break;
            default:
                rc = baton_parallel_reduce(ctx->pool, 0, 100, 0, &ops, NULL, &out);
                break;
            }
            if (rc == 0)
                bt_sleep_ms(1);
        } while (rc == 0 && bt_now_ns() < deadline);
        ctx->rcs[call] = rc;
    }
    atomic_store(&ctx->prober_done, 1);
    return NULL;
}

static void test_every_call_refused_during_destroy(void **state)
{
    (void)state;
    refuse_ctx ctx = {.pool = bt_pool_create(2), .loop_rc = 12345};
    atomic_init(&ctx.loop_started, 0);
    atomic_init(&ctx.prober_done, 0);
    atomic_init(&ctx.destroy_started, 0);
    pthread_t loop_thread, prober;
    assert_int_equal(pthread_create(&loop_thread, NULL, refuse_loop_thread, &ctx), 0);
    assert_true(bt_wait_flag(&ctx.loop_started, 20000));
    assert_int_equal(pthread_create(&prober, NULL, refuse_prober_thread, &ctx), 0);
    atomic_store(&ctx.destroy_started, 1);
    int rc = baton_pool_destroy(ctx.pool);
    pthread_join(prober, NULL);
    pthread_join(loop_thread, NULL);
    bt_assert_no_thread_failures();
    bt_assert_rc(rc, 0);
    bt_assert_rc(ctx.loop_rc, 0);
    const char *names[] = {"baton_join", "baton_scope_run", "baton_parallel_for",
                           "baton_parallel_reduce"};
    for (int i = 0; i < 4; i++)
        if (ctx.rcs[i] != BATON_ECLOSED)
            fail_msg("%s during destroy returned %s, expected BATON_ECLOSED", names[i],
                     baton_err_name(ctx.rcs[i]));
}

/* ---- idle -------------------------------------------------------------------------------------- */

static uint64_t process_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void test_idle_pool_uses_no_cpu(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create(16);
    assert_true(covers(pool, 100000, 0)); /* wake every worker up once */
    bt_sleep_ms(200);                      /* let them search, then park */
    uint64_t cpu_before = process_cpu_ns();
    uint64_t wall_before = bt_now_ns();
    bt_sleep_ms(300);
    uint64_t cpu = process_cpu_ns() - cpu_before;
    uint64_t wall = bt_now_ns() - wall_before;
    printf("# idle 16-worker pool: %.1f ms CPU over %.1f ms\n", (double)cpu / 1e6,
           (double)wall / 1e6);
    /* A correctness check that idle workers sleep, not a speed assertion: spinning workers
     * would burn the whole machine; the bound is half of one core. */
    if (cpu * 2 > wall)
        fail_msg("an idle pool of 16 workers used %.1f ms of CPU in %.1f ms", (double)cpu / 1e6,
                 (double)wall / 1e6);
    bt_pool_destroy(pool);
}

static void test_workers_wake_after_idle(void **state)
{
    (void)state;
    const unsigned counts[] = {1, 4, 16};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        baton_pool *pool = bt_pool_create(counts[c]);
        for (int r = 0; r < 20; r++) {
            bt_sleep_ms(c == 0 ? 50 : 10);
            if (!covers(pool, 10000 + (size_t)r, r % 2 ? 0 : 7))
                fail_msg("%u workers, round %d after idling: loop wrong", counts[c], r);
        }
        bt_pool_destroy(pool);
    }
}

/* After idling, a pool without external slots made at creation (every call runs on a slot made
 * on demand, whose forks must wake parked workers) still answers every call: a lost wake-up
 * would hang here (the watchdog reports it). */
static void test_slot_made_on_demand_wakes_parked_workers(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create_ex(2, BATON_POOL_NO_EXTERNAL_SLOTS, 0);
    bt_watchdog dog;
    bt_watchdog_start(&dog, 90, "calls into an idle pool without external slots");
    for (int r = 0; r < 200; r++) {
        if (r % 20 == 0)
            bt_sleep_ms(20);
        else if (r % 3 == 0)
            bt_sleep_ns(200000);
        if (!covers(pool, 64, 1))
            fail_msg("round %d: loop wrong", r);
    }
    bt_watchdog_stop(&dog);
    bt_pool_destroy(pool);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_destroy_many_times),
        cmocka_unit_test(test_create_destroy_from_many_threads),
        cmocka_unit_test(test_destroy_right_after_create),
        cmocka_unit_test(test_two_pools_at_once),
        cmocka_unit_test(test_destroy_waits_for_running_call),
        cmocka_unit_test(test_destroy_races_with_finishing_call),
        cmocka_unit_test(test_calls_after_destroy_began_are_closed),
        cmocka_unit_test(test_every_call_refused_during_destroy),
        cmocka_unit_test(test_idle_pool_uses_no_cpu),
        cmocka_unit_test(test_workers_wake_after_idle),
        cmocka_unit_test(test_slot_made_on_demand_wakes_parked_workers),
    };
    return cmocka_run_group_tests_name("pool/lifecycle", tests, NULL, NULL);
}
