/*
 * test_pool_multi.c — pools used from inside each other's calls:
 *  - a loop on pool A whose pieces run loops on pool B whose pieces join on pool A: every index
 *    of the cross product runs once, with default configs and with plenty of external slots,
 *    from the main thread and from several outside threads;
 *  - baton_pool_current_worker(A) on one of A's workers stays its index while that thread runs
 *    work inside a call into pool B (it is still "one of its workers");
 *  - a worker of A that calls into A again from inside a call into B (A having one worker and
 *    no external slots) must not deadlock;
 *  - baton_pool_destroy(A) from inside a call into A is BATON_EDEADLK even when, in between,
 *    the thread entered a call into pool B.
 *
 * The tests that could hang run under a watchdog that names what did not return. CTest runs
 * each of those in its own process (--filter), so that one hang does not hide the others.
 */
#include "support/bt_common.h"

/* ---- A -> B -> A nesting --------------------------------------------------------------------- */

typedef struct cross_ctx {
    baton_pool *a, *b;
    size_t n_outer, n_inner;
    atomic_uchar *hits; /* hits[i * n_inner + j], counted by the innermost join's two tasks */
    atomic_int errors;
} cross_ctx;

typedef struct cross_cell {
    cross_ctx *ctx;
    size_t i, j;
} cross_cell;

static int cross_mark(void *arg)
{
    cross_cell *cell = arg;
    atomic_fetch_add_explicit(&cell->ctx->hits[cell->i * cell->ctx->n_inner + cell->j], 1,
                              memory_order_relaxed);
    return 0;
}

static int cross_noop(void *arg)
{
    (void)arg;
    return 0;
}

typedef struct cross_row {
    cross_ctx *ctx;
    size_t i;
} cross_row;

static int cross_inner(size_t begin, size_t end, void *arg)
{
    cross_row *row = arg;
    for (size_t j = begin; j < end; j++) {
        cross_cell cell = {row->ctx, row->i, j};
        int rc = baton_join(row->ctx->a, cross_mark, &cell, cross_noop, NULL);
        if (rc != 0) {
            atomic_fetch_add(&row->ctx->errors, 1);
            return rc;
        }
    }
    return 0;
}

static int cross_outer(size_t begin, size_t end, void *arg)
{
    cross_ctx *ctx = arg;
    for (size_t i = begin; i < end; i++) {
        cross_row row = {ctx, i};
        int rc = baton_parallel_for(ctx->b, 0, ctx->n_inner, 1, cross_inner, &row);
        if (rc != 0) {
            atomic_fetch_add(&ctx->errors, 1);
            return rc;
        }
    }
    return 0;
}

static bool run_cross(cross_ctx *ctx)
{
    size_t total = ctx->n_outer * ctx->n_inner;
    for (size_t x = 0; x < total; x++)
        atomic_store(&ctx->hits[x], 0);
    atomic_store(&ctx->errors, 0);
    int rc = baton_parallel_for(ctx->a, 0, ctx->n_outer, 1, cross_outer, ctx);
    BT_CHECK_MSG(rc == 0, "A -> B -> A loop returned %s", baton_err_name(rc));
    BT_CHECK(atomic_load(&ctx->errors) == 0);
    bool ok = rc == 0;
    for (size_t x = 0; x < total && ok; x++)
        if (atomic_load(&ctx->hits[x]) != 1) {
            BT_CHECK_MSG(false, "cell (%zu, %zu) ran %u times", x / ctx->n_inner,
                         x % ctx->n_inner, (unsigned)atomic_load(&ctx->hits[x]));
            ok = false;
        }
    return ok;
}

/*
 * Main thread -> A (3 workers) -> B (2 workers) -> A, with 16 external slots and with default
 * configs (4 external slots each). A worker keeps its identity in A while it is inside a call
 * into B, so it needs no slot of A; a thread that does need one and finds them all taken makes
 * another, so no call ever waits for a worker of a pool whose workers are all inside the other.
 */
static void run_cross_test(unsigned slots, const char *what)
{
    baton_pool *a = bt_pool_create_ex(3, 0, slots);
    baton_pool *b = bt_pool_create_ex(2, 0, slots);
    bt_watchdog dog;
    bt_watchdog_start(&dog, 30, what);
    cross_ctx ctx = {.a = a, .b = b, .n_outer = 40, .n_inner = 50};
    ctx.hits = calloc(ctx.n_outer * ctx.n_inner, 1);
    assert_non_null(ctx.hits);
    atomic_init(&ctx.errors, 0);
    for (size_t r = 0; r < bt_scaled(10, 2); r++)
        assert_true(run_cross(&ctx));
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    free(ctx.hits);
    bt_pool_destroy(b);
    bt_pool_destroy(a);
}

static void test_nested_calls_between_pools(void **state)
{
    (void)state;
    /* Enough slots for everyone whatever the identity of a nested caller. */
    run_cross_test(16, "A -> B -> A nested calls, 16 external slots");
    run_cross_test(0, "A -> B -> A nested calls with default configs (4 external slots): a "
                      "worker of A inside a call into B that calls A again needs no slot of A");
}

/* Several outside threads at once, in both directions (A -> B -> A and B -> A -> B): with
 * slots for every thread that may call in, with one slot each (so calls make slots on demand
 * while every worker of the pool may be inside a call into the other pool: a cycle that once
 * blocked, when such a call waited for a worker), and with none made at creation. */
static void *cross_thread(void *arg)
{
    cross_ctx *ctx = arg;
    for (size_t r = 0; r < bt_scaled(5, 1); r++)
        if (!run_cross(ctx))
            break;
    return NULL;
}

static void run_cross_threads(unsigned flags, unsigned slots, const char *what)
{
    baton_pool *a = bt_pool_create_ex(3, flags, slots);
    baton_pool *b = bt_pool_create_ex(2, flags, slots);
    bt_watchdog dog;
    bt_watchdog_start(&dog, 60, what);
    enum { THREADS = 4 };
    cross_ctx ctxs[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        ctxs[t] = (cross_ctx){.a = t % 2 ? a : b, .b = t % 2 ? b : a, .n_outer = 20,
                              .n_inner = 20};
        ctxs[t].hits = calloc(ctxs[t].n_outer * ctxs[t].n_inner, 1);
        assert_non_null(ctxs[t].hits);
        atomic_init(&ctxs[t].errors, 0);
        assert_int_equal(pthread_create(&threads[t], NULL, cross_thread, &ctxs[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    for (int t = 0; t < THREADS; t++)
        free(ctxs[t].hits);
    bt_pool_destroy(b);
    bt_pool_destroy(a);
}

static void test_nested_calls_between_pools_many_threads(void **state)
{
    (void)state;
    run_cross_threads(0, 16, "A -> B -> A and B -> A -> B from four outside threads, 16 slots");
    run_cross_threads(0, 1, "A -> B -> A and B -> A -> B from four outside threads, 1 slot "
                            "each: calls beyond it must make slots, not wait for a worker");
    run_cross_threads(BATON_POOL_NO_EXTERNAL_SLOTS, 0,
                      "A -> B -> A and B -> A -> B from four outside threads, no slots made "
                      "at creation");
}

/* ---- one of A's workers, inside a call into B ------------------------------------------------ *
 * Runs `probe` on one of A's workers while that thread is inside baton_join(B, ...): join runs
 * its A task on the calling thread, so the probe runs on A's worker thread holding a slot of B.
 * To get onto A's worker, the test hands the outer task to one (bt_run_on_worker).
 */
typedef void (*probe_fn)(void *ctx);

typedef struct inside_b_ctx {
    baton_pool *a, *b;
    probe_fn probe;
    void *probe_ctx;
    int a_index_outside_b; /* current_worker(A) before entering B */
    pthread_t thread_outside_b;
    bool same_thread;      /* the probe ran on the thread that entered B */
} inside_b_ctx;

static int inside_b_task(void *arg)
{
    inside_b_ctx *ctx = arg;
    ctx->same_thread = pthread_equal(pthread_self(), ctx->thread_outside_b) != 0;
    ctx->probe(ctx->probe_ctx);
    return 0;
}

static int inside_b_noop(void *arg)
{
    (void)arg;
    return 0;
}

static int enter_b(void *arg)
{
    inside_b_ctx *ctx = arg;
    ctx->a_index_outside_b = baton_pool_current_worker(ctx->a);
    ctx->thread_outside_b = pthread_self();
    return baton_join(ctx->b, inside_b_task, ctx, inside_b_noop, NULL);
}

/* Returns what enter_b's join returned; the probe has run when this returns. enter_b runs on a
 * worker of A (every call runs on its calling thread, so the test hands it to one). */
static int run_inside_b_on_worker_of_a(inside_b_ctx *ctx)
{
    return bt_run_on_worker(ctx->a, enter_b, ctx, NULL);
}

typedef struct index_probe {
    baton_pool *a;
    int index;
} index_probe;

static void probe_index(void *arg)
{
    index_probe *probe = arg;
    probe->index = baton_pool_current_worker(probe->a);
}

static void test_current_worker_inside_other_pool_call(void **state)
{
    (void)state;
    baton_pool *a = bt_pool_create_ex(2, BATON_POOL_NO_EXTERNAL_SLOTS, 0);
    baton_pool *b = bt_pool_create(2);
    index_probe probe = {a, -2};
    inside_b_ctx ctx = {.a = a, .b = b, .probe = probe_index, .probe_ctx = &probe,
                        .a_index_outside_b = -2};
    bt_assert_rc(run_inside_b_on_worker_of_a(&ctx), 0);
    /* enter_b ran on one of A's workers. */
    assert_true(ctx.a_index_outside_b >= 0 && ctx.a_index_outside_b < 2);
    /* join runs its first task on the calling thread. */
    assert_true(ctx.same_thread);
    if (probe.index != ctx.a_index_outside_b)
        fail_msg("worker %d of pool A reports baton_pool_current_worker(A) = %d while it runs "
                 "work inside a call into pool B (expected %d: it is still one of A's workers)",
                 ctx.a_index_outside_b, probe.index, ctx.a_index_outside_b);
    bt_pool_destroy(b);
    bt_pool_destroy(a);
}

/* A's only worker calls into A again from inside a call into B. */
typedef struct reentry_probe {
    baton_pool *a;
    atomic_int ran;
    int rc;
} reentry_probe;

static int reentry_task(void *arg)
{
    reentry_probe *probe = arg;
    atomic_fetch_add(&probe->ran, 1);
    return 0;
}

static void probe_reentry(void *arg)
{
    reentry_probe *probe = arg;
    probe->rc = baton_join(probe->a, reentry_task, probe, reentry_task, probe);
}

static void test_reentry_into_own_pool_through_other_pool(void **state)
{
    (void)state;
    baton_pool *a = bt_pool_create_ex(1, BATON_POOL_NO_EXTERNAL_SLOTS, 0);
    baton_pool *b = bt_pool_create(2);
    reentry_probe probe = {.a = a, .rc = 12345};
    atomic_init(&probe.ran, 0);
    inside_b_ctx ctx = {.a = a, .b = b, .probe = probe_reentry, .probe_ctx = &probe};
    bt_watchdog dog;
    bt_watchdog_start(&dog, 20,
                      "baton_join(A) from A's only worker inside a call into pool B (the worker "
                      "must go on as itself in A, not wait for a worker of A)");
    bt_assert_rc(run_inside_b_on_worker_of_a(&ctx), 0);
    bt_watchdog_stop(&dog);
    bt_assert_rc(probe.rc, 0);
    assert_int_equal(atomic_load(&probe.ran), 2);
    bt_pool_destroy(b);
    bt_pool_destroy(a);
}

/* destroy(A) from inside a call into A, with a call into B in between. */
typedef struct destroy_probe {
    baton_pool *a;
    int rc;
} destroy_probe;

static void probe_destroy(void *arg)
{
    destroy_probe *probe = arg;
    probe->rc = baton_pool_destroy(probe->a);
}

static int destroy_via_b(void *arg)
{
    inside_b_ctx *ctx = arg;
    ctx->thread_outside_b = pthread_self();
    return baton_join(ctx->b, inside_b_task, ctx, inside_b_noop, NULL);
}

static void test_destroy_inside_other_pool_call_is_edeadlk(void **state)
{
    (void)state;
    baton_pool *a = bt_pool_create(2);
    baton_pool *b = bt_pool_create(2);
    destroy_probe probe = {a, 12345};
    inside_b_ctx ctx = {.a = a, .b = b, .probe = probe_destroy, .probe_ctx = &probe};
    bt_watchdog dog;
    bt_watchdog_start(&dog, 20,
                      "baton_pool_destroy(A) called from inside a call into A (the main "
                      "thread's join on A, then a join on pool B): expected BATON_EDEADLK, it "
                      "waits for the call it is part of");
    /* The main thread holds an external slot of A (join's first task runs on it), then enters
     * B and calls destroy(A) from there: it is "inside a call into this pool". */
    bt_assert_rc(baton_join(a, destroy_via_b, &ctx, inside_b_noop, NULL), 0);
    bt_watchdog_stop(&dog);
    bt_assert_rc(probe.rc, BATON_EDEADLK);
    bt_assert_pool_usable(a);

    /* Same from one of A's workers. */
    baton_pool *a2 = bt_pool_create_ex(2, BATON_POOL_NO_EXTERNAL_SLOTS, 0);
    destroy_probe probe2 = {a2, 12345};
    inside_b_ctx ctx2 = {.a = a2, .b = b, .probe = probe_destroy, .probe_ctx = &probe2};
    bt_watchdog_start(&dog, 20,
                      "baton_pool_destroy(A) from one of A's workers inside a call into pool B: "
                      "expected BATON_EDEADLK");
    bt_assert_rc(run_inside_b_on_worker_of_a(&ctx2), 0);
    bt_watchdog_stop(&dog);
    bt_assert_rc(probe2.rc, BATON_EDEADLK);
    bt_assert_pool_usable(a2);

    bt_pool_destroy(a2);
    bt_pool_destroy(b);
    bt_pool_destroy(a);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_calls_between_pools),
        cmocka_unit_test(test_nested_calls_between_pools_many_threads),
        cmocka_unit_test(test_current_worker_inside_other_pool_call),
        cmocka_unit_test(test_reentry_into_own_pool_through_other_pool),
        cmocka_unit_test(test_destroy_inside_other_pool_call_is_edeadlk),
    };
    return cmocka_run_group_tests_name("pool/multi", tests, NULL, NULL);
}
