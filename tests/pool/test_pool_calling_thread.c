/*
 * test_pool_calling_thread.c — pool.h's "who runs what" for calls from outside the pool, with
 * more outside threads than external slots (8, 16 and 64 threads for the default 4 slots, for
 * one slot, and for none made at creation), at one worker count (--workers N):
 *  - baton_scope_run "Runs body(scope, ctx) on the calling thread";
 *  - baton_join: "The calling thread runs A itself";
 *  - baton_parallel_for: the calling thread runs the piece that starts at begin itself;
 *  - baton_parallel_reduce: identity first, and accumulate on the piece that starts at begin,
 *    on the calling thread;
 * each checked by pthread_self() and by a thread-local variable the calling thread set. Then the
 * deadlock that a call waiting for a worker made possible: on a pool of one worker, bodies of
 * several outside callers that wait for each other (all of them inside at once) complete; and
 * the slots made on demand are reused: there are never more than the threads inside at once;
 * without memory for another slot a call fails with BATON_ENOMEM and runs nothing.
 */
#include "support/bt_common.h"

#include "core/alloc.h"
#include "pool/internal.h"

static unsigned g_workers;

/* The calling thread's mark: set by each outside thread to its own number. */
static _Thread_local int t_mark = -1;

typedef struct caller_ctx {
    baton_pool *pool;
    pthread_t self;
    int mark;
    size_t rounds;
    atomic_long wrong; /* callbacks that should have run on this thread and did not */
    atomic_long tasks;
} caller_ctx;

static bool on_caller(const caller_ctx *ctx)
{
    return pthread_equal(pthread_self(), ctx->self) && t_mark == ctx->mark;
}

static int count_task(void *arg)
{
    caller_ctx *ctx = arg;
    atomic_fetch_add(&ctx->tasks, 1);
    return 0;
}

static int body_on_caller(baton_scope *scope, void *arg)
{
    caller_ctx *ctx = arg;
    if (!on_caller(ctx))
        atomic_fetch_add(&ctx->wrong, 1);
    for (int i = 0; i < 4; i++)
        BT_CHECK(baton_scope_spawn(scope, count_task, ctx) == 0);
    return 0;
}

static int a_on_caller(void *arg)
{
    caller_ctx *ctx = arg;
    if (!on_caller(ctx))
        atomic_fetch_add(&ctx->wrong, 1);
    return 0;
}

static int for_first_on_caller(size_t begin, size_t end, void *arg)
{
    (void)end;
    caller_ctx *ctx = arg;
    if (begin == 0 && !on_caller(ctx))
        atomic_fetch_add(&ctx->wrong, 1);
    return 0;
}

static void identity_zero(void *out, void *arg)
{
    (void)arg;
    *(long *)out = 0;
}

static int accumulate_first_on_caller(size_t begin, size_t end, void *inout, void *arg)
{
    caller_ctx *ctx = arg;
    if (begin == 0 && !on_caller(ctx))
        atomic_fetch_add(&ctx->wrong, 1);
    *(long *)inout += (long)(end - begin);
    return 0;
}

static void combine_sum(void *left, const void *right, void *arg)
{
    (void)arg;
    *(long *)left += *(const long *)right;
}

static void *caller_main(void *arg)
{
    caller_ctx *ctx = arg;
    ctx->self = pthread_self();
    t_mark = ctx->mark;
    baton_reduce_ops ops = {.value_size = sizeof(long), .identity = identity_zero,
                            .accumulate = accumulate_first_on_caller, .combine = combine_sum};
    baton_reduce_ops det = ops;
    det.flags = BATON_REDUCE_DETERMINISTIC;
    for (size_t r = 0; r < ctx->rounds; r++) {
        BT_CHECK(baton_scope_run(ctx->pool, body_on_caller, ctx) == 0);
        BT_CHECK(baton_join(ctx->pool, a_on_caller, ctx, count_task, ctx) == 0);
        BT_CHECK(baton_parallel_for(ctx->pool, 0, 64, r % 2 ? 1 : 0, for_first_on_caller, ctx) ==
                 0);
        long sum = -1;
        BT_CHECK(baton_parallel_reduce(ctx->pool, 0, 100, r % 2 ? 3 : 0, &ops, ctx, &sum) == 0);
        BT_CHECK(sum == 100);
        sum = -1;
        BT_CHECK(baton_parallel_reduce(ctx->pool, 0, 100, 7, &det, ctx, &sum) == 0);
        BT_CHECK(sum == 100);
    }
    return NULL;
}

/* identity's first call of a reduction is the calling thread's: tasks counts the calls. */
static void identity_checks(void *out, void *arg)
{
    caller_ctx *ctx = arg;
    if (atomic_fetch_add(&ctx->tasks, 1) == 0 && !on_caller(ctx))
        atomic_fetch_add(&ctx->wrong, 1);
    *(long *)out = 0;
}

static int accumulate_plain(size_t begin, size_t end, void *inout, void *arg)
{
    (void)arg;
    *(long *)inout += (long)(end - begin);
    return 0;
}

static void run_callers(unsigned flags, unsigned slots, unsigned n_threads)
{
    baton_pool *pool = bt_pool_create_ex(g_workers, flags, slots);
    caller_ctx *ctxs = calloc(n_threads, sizeof *ctxs);
    pthread_t *threads = calloc(n_threads, sizeof *threads);
    assert_non_null(ctxs);
    assert_non_null(threads);
    size_t rounds = bt_scaled(3200.0 / n_threads, 4);
    bt_watchdog dog;
    bt_watchdog_start(&dog, 120, "outside callers beyond the external slots");
    for (unsigned t = 0; t < n_threads; t++) {
        ctxs[t].pool = pool;
        ctxs[t].mark = (int)t;
        ctxs[t].rounds = rounds;
        atomic_init(&ctxs[t].wrong, 0);
        atomic_init(&ctxs[t].tasks, 0);
        assert_int_equal(pthread_create(&threads[t], NULL, caller_main, &ctxs[t]), 0);
    }
    long wrong = 0;
    for (unsigned t = 0; t < n_threads; t++) {
        pthread_join(threads[t], NULL);
        wrong += atomic_load(&ctxs[t].wrong);
        /* 4 tasks per scope and one B per join, every one of them ran. */
        if (atomic_load(&ctxs[t].tasks) != (long)(5 * rounds))
            fail_msg("thread %u: %ld tasks ran, expected %zu", t, atomic_load(&ctxs[t].tasks),
                     5 * rounds);
    }
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    if (wrong != 0)
        fail_msg("%u threads, %u slots%s: %ld bodies, A halves or first pieces ran on another "
                 "thread than their caller", n_threads, slots,
                 flags & BATON_POOL_NO_EXTERNAL_SLOTS ? " (none at creation)" : "", wrong);
    /* Slots made on demand are reused: the pool never has more slots than its configured ones
     * or the most outside calls in progress at once (at most n_threads here). */
    unsigned configured = flags & BATON_POOL_NO_EXTERNAL_SLOTS ? 0
                          : slots != 0                       ? slots
                                                             : BATON_POOL_DEFAULT_EXTERNAL_SLOTS;
    unsigned made = atomic_load(&pool->n_overflow);
    if (configured + made > (n_threads > configured ? n_threads : configured))
        fail_msg("%u slots made on demand besides %u configured ones, for %u threads", made,
                 configured, n_threads);

    /* identity runs first on the calling thread (later calls make right halves' accumulators
     * on any thread). */
    caller_ctx main_ctx = {.pool = pool, .self = pthread_self(), .mark = 1000};
    atomic_init(&main_ctx.wrong, 0);
    atomic_init(&main_ctx.tasks, 0);
    t_mark = 1000;
    baton_reduce_ops ops = {.value_size = sizeof(long), .identity = identity_checks,
                            .accumulate = accumulate_plain, .combine = combine_sum};
    long sum = -1;
    bt_assert_rc(baton_parallel_reduce(pool, 0, 0, 0, &ops, &main_ctx, &sum), 0);
    assert_int_equal(sum, 0);
    atomic_store(&main_ctx.tasks, 0);
    bt_assert_rc(baton_parallel_reduce(pool, 0, 1000, 0, &ops, &main_ctx, &sum), 0);
    assert_int_equal(sum, 1000);
    assert_int_equal(atomic_load(&main_ctx.wrong), 0);
    t_mark = -1;
    free(threads);
    free(ctxs);
    bt_pool_destroy(pool);
}

static void test_callers_8_threads_default_slots(void **state)
{
    (void)state;
    run_callers(0, 0, 8);
}

static void test_callers_16_threads_one_slot(void **state)
{
    (void)state;
    run_callers(0, 1, 16);
}

static void test_callers_64_threads_no_slots(void **state)
{
    (void)state;
    run_callers(BATON_POOL_NO_EXTERNAL_SLOTS, 0, 64);
    run_callers(0, 0, 64);
}

/* ---- bodies that wait for each other ----------------------------------------------------------- *
 * N outside threads call baton_scope_run on a pool of ONE worker; each body waits until all N
 * bodies are inside at once, then spawns a task. If a call without a slot waited for the worker
 * to run its body, the first such body would hold the worker while the others could never start.
 */
typedef struct rendezvous {
    baton_pool *pool;
    unsigned n;
    atomic_uint inside;
    atomic_int task_ran;
} rendezvous;

static int mark_task(void *arg)
{
    rendezvous *rv = arg;
    atomic_fetch_add(&rv->task_ran, 1);
    return 0;
}

static int rendezvous_body(baton_scope *scope, void *arg)
{
    rendezvous *rv = arg;
    atomic_fetch_add(&rv->inside, 1);
    uint64_t deadline = bt_now_ns() + 30000000000u;
    while (atomic_load(&rv->inside) < rv->n) {
        if (bt_now_ns() > deadline) {
            BT_CHECK_MSG(false, "%u of %u bodies inside after 30 s: a body did not start while "
                         "others waited", atomic_load(&rv->inside), rv->n);
            return BATON_ETIMEDOUT;
        }
        bt_sleep_ns(100000);
    }
    return baton_scope_spawn(scope, mark_task, rv);
}

static void *rendezvous_main(void *arg)
{
    rendezvous *rv = arg;
    int rc = baton_scope_run(rv->pool, rendezvous_body, rv);
    BT_CHECK_MSG(rc == 0, "scope: %s: %s", baton_err_name(rc), baton_last_error_message());
    return NULL;
}

static void run_rendezvous(unsigned flags, unsigned slots, unsigned n)
{
    baton_pool *pool = bt_pool_create_ex(1, flags, slots);
    rendezvous rv = {.pool = pool, .n = n};
    atomic_init(&rv.inside, 0);
    atomic_init(&rv.task_ran, 0);
    pthread_t threads[16];
    assert_true(n <= 16);
    bt_watchdog dog;
    bt_watchdog_start(&dog, 90, "bodies of outside callers waiting for each other");
    for (unsigned t = 0; t < n; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, rendezvous_main, &rv), 0);
    for (unsigned t = 0; t < n; t++)
        pthread_join(threads[t], NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    assert_int_equal(atomic_load(&rv.task_ran), (int)n);
    bt_pool_destroy(pool);
}

static void test_bodies_wait_for_each_other_on_one_worker(void **state)
{
    (void)state;
    run_rendezvous(BATON_POOL_NO_EXTERNAL_SLOTS, 0, 2);
    run_rendezvous(0, 1, 3);
    run_rendezvous(0, 0, 8);
}

/* ---- no memory for another slot ------------------------------------------------------------- *
 * pool.h: from outside, a call that finds no free slot and no memory for another fails with
 * BATON_ENOMEM and runs nothing (neither A nor B, not the body, not fn); with memory again, the
 * same calls work. The workers are idle meanwhile, so nothing else allocates.
 */
static atomic_int g_nomem_ran;

static int nomem_task(void *arg)
{
    (void)arg;
    atomic_fetch_add(&g_nomem_ran, 1);
    return 0;
}

static int nomem_body(baton_scope *scope, void *arg)
{
    (void)scope;
    return nomem_task(arg);
}

static int nomem_fn(size_t begin, size_t end, void *arg)
{
    (void)begin;
    (void)end;
    return nomem_task(arg);
}

static void nomem_identity(void *out, void *arg)
{
    (void)arg;
    *(long *)out = 0;
}

static int nomem_accumulate(size_t begin, size_t end, void *inout, void *arg)
{
    (void)inout;
    return nomem_fn(begin, end, arg);
}

static void nomem_combine(void *left, const void *right, void *arg)
{
    (void)left;
    (void)right;
    (void)arg;
}

static void test_no_memory_for_a_slot(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create_ex(g_workers, BATON_POOL_NO_EXTERNAL_SLOTS, 0);
    baton_reduce_ops ops = {.value_size = sizeof(long), .identity = nomem_identity,
                            .accumulate = nomem_accumulate, .combine = nomem_combine};
    long out = -1;
    atomic_store(&g_nomem_ran, 0);
    baton__alloc_fail_after(0);
    int rcs[4];
    char messages[4][160];
    rcs[0] = baton_join(pool, nomem_task, NULL, nomem_task, NULL);
    snprintf(messages[0], sizeof messages[0], "%s", baton_last_error_message());
    rcs[1] = baton_scope_run(pool, nomem_body, NULL);
    snprintf(messages[1], sizeof messages[1], "%s", baton_last_error_message());
    rcs[2] = baton_parallel_for(pool, 0, 100, 1, nomem_fn, NULL);
    snprintf(messages[2], sizeof messages[2], "%s", baton_last_error_message());
    rcs[3] = baton_parallel_reduce(pool, 0, 100, 1, &ops, NULL, &out);
    snprintf(messages[3], sizeof messages[3], "%s", baton_last_error_message());
    baton__alloc_fail_after(-1);
    for (int i = 0; i < 4; i++) {
        bt_assert_rc(rcs[i], BATON_ENOMEM);
        if (strstr(messages[i], "external slot") == NULL)
            fail_msg("call %d: message \"%s\" does not say what ran out", i, messages[i]);
    }
    assert_int_equal(atomic_load(&g_nomem_ran), 0);
    assert_int_equal(out, -1);
    assert_int_equal(atomic_load(&pool->n_overflow), 0);
    /* Memory again: the same calls run, on a slot made now. */
    bt_assert_rc(baton_join(pool, nomem_task, NULL, nomem_task, NULL), 0);
    bt_assert_rc(baton_scope_run(pool, nomem_body, NULL), 0);
    assert_int_equal(atomic_load(&g_nomem_ran), 3);
    assert_int_equal(atomic_load(&pool->n_overflow), 1);
    bt_pool_destroy(pool);
}

/* ---- counters of slots made on demand ------------------------------------------------------- *
 * pool.h: the total of baton_pool_worker_stats covers external slots "made on demand included".
 * The pool's only worker is held in a blocker (the outer join's B), so the ten inner joins' B
 * halves run on the caller's slot, made on demand: the total exceeds the worker's own count by
 * at least ten.
 */
typedef struct stats_ctx {
    baton_pool *pool;
    atomic_int blocker_started;
    atomic_int release;
    int inner_rc;
} stats_ctx;

static int stats_noop(void *arg)
{
    (void)arg;
    return 0;
}

static int stats_blocker(void *arg)
{
    stats_ctx *ctx = arg;
    atomic_store(&ctx->blocker_started, 1);
    BT_CHECK(bt_wait_flag(&ctx->release, 60000));
    return 0;
}

static int stats_a(void *arg)
{
    stats_ctx *ctx = arg;
    BT_CHECK(bt_wait_flag_nudging(ctx->pool, &ctx->blocker_started, 60000));
    /* From here the worker is held: every inner B runs here. */
    for (int i = 0; i < 10 && ctx->inner_rc == 0; i++)
        ctx->inner_rc = baton_join(ctx->pool, stats_noop, NULL, stats_noop, NULL);
    atomic_store(&ctx->release, 1);
    return 0;
}

static void test_stats_count_slots_made_on_demand(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create_ex(1, BATON_POOL_NO_EXTERNAL_SLOTS, 0);
    stats_ctx ctx = {.pool = pool, .inner_rc = 0};
    atomic_init(&ctx.blocker_started, 0);
    atomic_init(&ctx.release, 0);
    baton_worker_stats before_worker, before_total;
    bt_assert_rc(baton_pool_worker_stats(pool, 0, &before_worker), 0);
    bt_assert_rc(baton_pool_worker_stats(pool, 1, &before_total), 0);
    bt_assert_rc(baton_join(pool, stats_a, &ctx, stats_blocker, &ctx), 0);
    bt_assert_no_thread_failures();
    bt_assert_rc(ctx.inner_rc, 0);
    baton_worker_stats worker, total;
    bt_assert_rc(baton_pool_worker_stats(pool, 0, &worker), 0);
    bt_assert_rc(baton_pool_worker_stats(pool, 1, &total), 0);
    uint64_t slots_before = before_total.tasks_executed - before_worker.tasks_executed;
    uint64_t slots_now = total.tasks_executed - worker.tasks_executed;
    if (slots_now < slots_before + 10)
        fail_msg("the total counts %llu tasks beyond the worker's (%llu before): the ten B "
                 "halves the slot made on demand ran are missing",
                 (unsigned long long)slots_now, (unsigned long long)slots_before);
    bt_pool_destroy(pool);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callers_8_threads_default_slots),
        cmocka_unit_test(test_callers_16_threads_one_slot),
        cmocka_unit_test(test_callers_64_threads_no_slots),
        cmocka_unit_test(test_bodies_wait_for_each_other_on_one_worker),
        cmocka_unit_test(test_no_memory_for_a_slot),
        cmocka_unit_test(test_stats_count_slots_made_on_demand),
    };
    return cmocka_run_group_tests_name("pool/calling_thread", tests, NULL, NULL);
}
