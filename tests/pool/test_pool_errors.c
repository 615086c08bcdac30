/*
 * test_pool_errors.c — error propagation at one worker count (--workers N; CTest runs 1, 2, 4,
 * 16): a failing task's code is what baton_scope_run returns; tasks spawned after the failure
 * are refused with BATON_ECANCELED and never run; a failing body; baton_join returns A's error
 * (also when both fail) or else B's; parallel_for returns fn's error and skips pieces that had
 * not started; parallel_reduce returns accumulate's error and leaves out_value untouched;
 * errors cross nested scopes, joins and loops outwards; the pool stays usable after each error.
 */
#include "support/bt_common.h"

BT_DEFINE_POOL_GROUP()

/* ---- scopes ---------------------------------------------------------------------------------- */

typedef struct scope_err_ctx {
    baton_scope *scope;
    atomic_long ran_before;  /* tasks spawned before the failure that ran */
    atomic_long ran_after;   /* tasks whose spawn came after cancellation was seen: must be 0 */
    long spawned_before;
    long refused_after;
    long accepted_after;
    int other_rc;
    bool cancellation_seen;
} scope_err_ctx;

static int fail_42(void *arg)
{
    (void)arg;
    return -42;
}

static int count_before(void *arg)
{
    scope_err_ctx *ctx = arg;
    atomic_fetch_add(&ctx->ran_before, 1);
    return 0;
}

static int count_after(void *arg)
{
    scope_err_ctx *ctx = arg;
    atomic_fetch_add(&ctx->ran_after, 1);
    return 0;
}

static int many_then_fail_body(baton_scope *scope, void *arg)
{
    scope_err_ctx *ctx = arg;
    size_t n = bt_scaled(2e4, 1000);
    for (size_t i = 0; i < n; i++) {
        if (baton_scope_spawn(scope, count_before, ctx) == 0)
            ctx->spawned_before++;
        if (i == n / 10 && baton_scope_spawn(scope, fail_42, NULL) != 0)
            ctx->other_rc = -1;
    }
    /* Wait (bounded) until the failure has cancelled the scope: a worker runs fail_42. */
    uint64_t deadline = bt_now_ns() + 20000000000u;
    while (!baton_scope_cancelled(scope) && bt_now_ns() < deadline) {
        bt_nudge(g_pool);
        sched_yield();
    }
    ctx->cancellation_seen = baton_scope_cancelled(scope);
    for (size_t i = 0; i < n; i++) {
        int rc = baton_scope_spawn(scope, count_after, ctx);
        if (rc == BATON_ECANCELED)
            ctx->refused_after++;
        else if (rc == 0)
            ctx->accepted_after++;
        else
            ctx->other_rc = rc;
    }
    return 0;
}

static void test_scope_task_error_cancels_rest(void **state)
{
    (void)state;
    size_t n = bt_scaled(2e4, 1000);
    scope_err_ctx ctx = {.spawned_before = 0, .refused_after = 0, .accepted_after = 0,
                         .other_rc = 0, .cancellation_seen = false};
    atomic_init(&ctx.ran_before, 0);
    atomic_init(&ctx.ran_after, 0);
    bt_assert_rc(baton_scope_run(g_pool, many_then_fail_body, &ctx), -42);
    assert_int_equal(ctx.other_rc, 0);
    if (!ctx.cancellation_seen)
        fail_msg("%s", "the scope did not report cancellation within 20 s of a task failing");
    /* Spawns after the failure are refused and their tasks never run. */
    assert_int_equal(ctx.accepted_after, 0);
    assert_int_equal(ctx.refused_after, (long)n);
    assert_int_equal(atomic_load(&ctx.ran_after), 0);
    /* Of those spawned before, only the accepted ones may have run: ran < spawned overall. */
    assert_true(atomic_load(&ctx.ran_before) <= ctx.spawned_before);
    assert_true(atomic_load(&ctx.ran_before) + atomic_load(&ctx.ran_after) <
                ctx.spawned_before + (long)n + 1);
    printf("# %ld of %ld tasks spawned before the failure ran\n", atomic_load(&ctx.ran_before),
           ctx.spawned_before);
    bt_assert_pool_usable(g_pool);
}

/* Many tasks, one fails early; the others are slow enough that most have not started. */
typedef struct slow_ctx {
    atomic_long ran;
    atomic_long started;
} slow_ctx;

static int slow_task(void *arg)
{
    slow_ctx *ctx = arg;
    atomic_fetch_add(&ctx->started, 1);
    bt_busy_ns(200000);
    atomic_fetch_add(&ctx->ran, 1);
    return 0;
}

static int fail_first_body(baton_scope *scope, void *arg)
{
    slow_ctx *ctx = arg;
    int rc = baton_scope_spawn(scope, fail_42, NULL);
    if (rc != 0)
        return rc;
    /* Tasks spawned before the failure is noticed may run; once it is, spawn says ECANCELED. */
    for (int i = 0; i < 5000; i++) {
        rc = baton_scope_spawn(scope, slow_task, ctx);
        if (rc == BATON_ECANCELED)
            break;
        if (rc != 0)
            return -1000;
    }
    return 0;
}

static void test_scope_skips_tasks_not_started(void **state)
{
    (void)state;
    slow_ctx ctx;
    atomic_init(&ctx.ran, 0);
    atomic_init(&ctx.started, 0);
    bt_assert_rc(baton_scope_run(g_pool, fail_first_body, &ctx), -42);
    /* 5000 tasks of 200 us each would take a second of CPU: the failing one was spawned first
     * (thieves take the oldest task), so the scope must have skipped some. */
    printf("# %ld of up to 5000 slow tasks ran\n", atomic_load(&ctx.ran));
    assert_true(atomic_load(&ctx.ran) < 5000);
    assert_int_equal(atomic_load(&ctx.ran), atomic_load(&ctx.started));
    bt_assert_pool_usable(g_pool);
}

static int fail_body_after_spawning(baton_scope *scope, void *arg)
{
    slow_ctx *ctx = arg;
    for (int i = 0; i < 100; i++)
        if (baton_scope_spawn(scope, slow_task, ctx) != 0)
            return -1000;
    return -13;
}

static int fail_body_plain(baton_scope *scope, void *arg)
{
    (void)scope;
    (void)arg;
    return -14;
}

static void test_scope_body_error(void **state)
{
    (void)state;
    bt_assert_rc(baton_scope_run(g_pool, fail_body_plain, NULL), -14);
    slow_ctx ctx;
    atomic_init(&ctx.ran, 0);
    atomic_init(&ctx.started, 0);
    bt_assert_rc(baton_scope_run(g_pool, fail_body_after_spawning, &ctx), -13);
    /* Whatever started finished before scope_run returned. */
    assert_int_equal(atomic_load(&ctx.ran), atomic_load(&ctx.started));
    assert_true(atomic_load(&ctx.ran) <= 100);
    bt_assert_pool_usable(g_pool);
}

/* A positive error code is just as much an error as a negative one. */
static int fail_positive(void *arg)
{
    (void)arg;
    return 7;
}

static int spawn_positive_body(baton_scope *scope, void *arg)
{
    (void)arg;
    return baton_scope_spawn(scope, fail_positive, NULL);
}

static void test_scope_positive_error_code(void **state)
{
    (void)state;
    bt_assert_rc(baton_scope_run(g_pool, spawn_positive_body, NULL), 7);
    bt_assert_pool_usable(g_pool);
}

/* ---- join ------------------------------------------------------------------------------------ */

static int ok_task(void *arg)
{
    if (arg != NULL)
        atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static int fail_21(void *arg)
{
    (void)arg;
    return -21;
}

static int fail_22(void *arg)
{
    (void)arg;
    return -22;
}

static void test_join_errors(void **state)
{
    (void)state;
    atomic_int ran;
    atomic_init(&ran, 0);
    for (int i = 0; i < 50; i++) {
        bt_assert_rc(baton_join(g_pool, fail_21, NULL, ok_task, &ran), -21);
        bt_assert_rc(baton_join(g_pool, ok_task, &ran, fail_22, NULL), -22);
        bt_assert_rc(baton_join(g_pool, fail_21, NULL, fail_22, NULL), -21);
        bt_assert_rc(baton_join(g_pool, ok_task, &ran, ok_task, &ran), 0);
    }
    /* B of the first form may or may not run; A of the second and both of the last always do. */
    assert_true(atomic_load(&ran) >= 150 && atomic_load(&ran) <= 200);
    bt_assert_pool_usable(g_pool);
}

/* Joins inside joins: the error from the bottom of a deep recursion comes out at the top. */
typedef struct deep_ctx {
    unsigned depth;
    unsigned fail_at; /* the leaf index that fails; others succeed */
    unsigned index;
} deep_ctx;

static int deep_task(void *arg)
{
    deep_ctx *ctx = arg;
    if (ctx->depth == 0)
        return ctx->index == ctx->fail_at ? -(int)(1000 + ctx->index) : 0;
    deep_ctx a = {ctx->depth - 1, ctx->fail_at, ctx->index * 2};
    deep_ctx b = {ctx->depth - 1, ctx->fail_at, ctx->index * 2 + 1};
    return baton_join(g_pool, deep_task, &a, deep_task, &b);
}

static void test_join_error_from_deep_leaf(void **state)
{
    (void)state;
    const unsigned depth = 12;
    const unsigned leaves[] = {0, 1, 777, (1u << depth) - 1};
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        deep_ctx root = {depth, leaves[i], 0};
        bt_assert_rc(deep_task(&root), -(int)(1000 + leaves[i]));
    }
    deep_ctx none = {depth, 1u << depth, 0};
    bt_assert_rc(deep_task(&none), 0);
    bt_assert_pool_usable(g_pool);
}

/* ---- parallel_for ---------------------------------------------------------------------------- */

typedef struct for_err_ctx {
    size_t fail_index;
    atomic_size_t ran;
} for_err_ctx;

static int for_fail_fn(size_t begin, size_t end, void *arg)
{
    for_err_ctx *ctx = arg;
    for (size_t i = begin; i < end; i++) {
        if (i == ctx->fail_index)
            return -77;
        atomic_fetch_add_explicit(&ctx->ran, 1, memory_order_relaxed);
        bt_busy_ns(200);
    }
    return 0;
}

static void check_for_error(size_t n, size_t fail_index, size_t grain)
{
    for_err_ctx ctx = {.fail_index = fail_index};
    atomic_init(&ctx.ran, 0);
    int rc = baton_parallel_for(g_pool, 0, n, grain, for_fail_fn, &ctx);
    if (rc != -77)
        fail_msg("parallel_for over %zu, fails at %zu, grain %zu: returned %s, expected -77", n,
                 fail_index, grain, baton_err_name(rc));
    size_t ran = atomic_load(&ctx.ran);
    printf("# parallel_for n=%zu fail at %zu grain %zu: %zu indices ran\n", n, fail_index, grain,
           ran);
    if (ran >= n - 1)
        fail_msg("parallel_for over %zu with a failure at %zu (grain %zu) still ran every other "
                 "index",
                 n, fail_index, grain);
}

static void test_parallel_for_error_skips_rest(void **state)
{
    (void)state;
    size_t n = bt_scaled(2e5, 20000);
    check_for_error(n, n / 2, 1);
    check_for_error(n, 0, 1);
    check_for_error(n, n / 3, 1);
    bt_assert_pool_usable(g_pool);
}

static void test_parallel_for_error_any_grain(void **state)
{
    (void)state;
    const size_t grains[] = {0, 1, 5, 100, 100000};
    for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
        for (size_t fail = 0; fail < 1000; fail += 333) {
            for_err_ctx ctx = {.fail_index = fail};
            atomic_init(&ctx.ran, 0);
            bt_assert_rc(baton_parallel_for(g_pool, 0, 1000, grains[g], for_fail_fn, &ctx), -77);
            assert_true(atomic_load(&ctx.ran) < 1000);
        }
    bt_assert_pool_usable(g_pool);
}

/* Several indices fail with different codes: the result is one of them. */
static int multi_fail_fn(size_t begin, size_t end, void *arg)
{
    (void)arg;
    for (size_t i = begin; i < end; i++)
        if (i % 1000 == 999)
            return -(int)(100 + (i / 1000) % 3);
    return 0;
}

static void test_parallel_for_first_of_many_errors(void **state)
{
    (void)state;
    for (int r = 0; r < 20; r++) {
        int rc = baton_parallel_for(g_pool, 0, 100000, (size_t)r % 3, multi_fail_fn, NULL);
        assert_true(rc == -100 || rc == -101 || rc == -102);
    }
    bt_assert_pool_usable(g_pool);
}

/* ---- parallel_reduce ------------------------------------------------------------------------- */

static void u64_identity(void *out, void *ctx)
{
    (void)ctx;
    *(uint64_t *)out = 0;
}

static int u64_fail_accumulate(size_t begin, size_t end, void *inout, void *ctx)
{
    size_t fail_index = *(size_t *)ctx;
    uint64_t sum = *(uint64_t *)inout;
    for (size_t i = begin; i < end; i++) {
        if (i == fail_index)
            return -55;
        sum += i;
    }
    *(uint64_t *)inout = sum;
    return 0;
}

static void u64_combine(void *left, const void *right, void *ctx)
{
    (void)ctx;
    *(uint64_t *)left += *(const uint64_t *)right;
}

static void test_reduce_error_leaves_out_untouched(void **state)
{
    (void)state;
    const size_t grains[] = {0, 1, 17, 100000};
    const unsigned flag_sets[] = {0, BATON_REDUCE_DETERMINISTIC};
    for (size_t f = 0; f < 2; f++)
        for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
            for (size_t fail = 0; fail < 100000; fail += 33333) {
                baton_reduce_ops ops = {sizeof(uint64_t), u64_identity, u64_fail_accumulate,
                                        u64_combine, flag_sets[f]};
                _Alignas(max_align_t) uint64_t out = UINT64_C(0xdeadbeefcafe);
                int rc = baton_parallel_reduce(g_pool, 0, 100000, grains[g], &ops, &fail, &out);
                if (rc != -55)
                    fail_msg("reduce failing at %zu grain %zu flags %u returned %s", fail,
                             grains[g], flag_sets[f], baton_err_name(rc));
                if (out != UINT64_C(0xdeadbeefcafe))
                    fail_msg("reduce failing at %zu grain %zu flags %u wrote out_value (%#llx)",
                             fail, grains[g], flag_sets[f], (unsigned long long)out);
            }
    /* And a successful reduce afterwards gives the right sum. */
    size_t never = SIZE_MAX;
    baton_reduce_ops ops = {sizeof(uint64_t), u64_identity, u64_fail_accumulate, u64_combine, 0};
    _Alignas(max_align_t) uint64_t out = 0;
    bt_assert_rc(baton_parallel_reduce(g_pool, 0, 100000, 0, &ops, &never, &out), 0);
    assert_true(out == UINT64_C(100000) * 99999 / 2);
    bt_assert_pool_usable(g_pool);
}

/* ---- nesting --------------------------------------------------------------------------------- */

typedef struct nest_err_ctx {
    unsigned depth;
    atomic_int inner_results_wrong;
} nest_err_ctx;

static int inner_fail_body(baton_scope *scope, void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        if (baton_scope_spawn(scope, ok_task, NULL) != 0)
            return -1000;
    return baton_scope_spawn(scope, fail_21, NULL);
}

static int scope_in_task(void *arg)
{
    nest_err_ctx *ctx = arg;
    int rc = baton_scope_run(g_pool, inner_fail_body, NULL);
    if (rc != -21)
        atomic_fetch_add(&ctx->inner_results_wrong, 1);
    return rc;
}

static int outer_body(baton_scope *scope, void *arg)
{
    for (int i = 0; i < 4; i++) {
        int rc = baton_scope_spawn(scope, scope_in_task, arg);
        if (rc != 0 && rc != BATON_ECANCELED)
            return -1000;
    }
    return 0;
}

static void test_nested_scope_error_propagates(void **state)
{
    (void)state;
    nest_err_ctx ctx;
    atomic_init(&ctx.inner_results_wrong, 0);
    bt_assert_rc(baton_scope_run(g_pool, outer_body, &ctx), -21);
    assert_int_equal(atomic_load(&ctx.inner_results_wrong), 0);
    bt_assert_pool_usable(g_pool);
}

/* Scope -> join -> parallel_for -> failure at one index. */
static int loop_in_join(void *arg)
{
    for_err_ctx *ctx = arg;
    return baton_parallel_for(g_pool, 0, 5000, 3, for_fail_fn, ctx);
}

static int join_in_task(void *arg)
{
    return baton_join(g_pool, ok_task, NULL, loop_in_join, arg);
}

static int mixed_body(baton_scope *scope, void *arg)
{
    return baton_scope_spawn(scope, join_in_task, arg);
}

static void test_error_through_scope_join_loop(void **state)
{
    (void)state;
    for_err_ctx ctx = {.fail_index = 4321};
    atomic_init(&ctx.ran, 0);
    bt_assert_rc(baton_scope_run(g_pool, mixed_body, &ctx), -77);
    bt_assert_pool_usable(g_pool);
}

/* A loop whose pieces run scopes that fail: the loop returns the scope's error. */
static int scope_per_piece(size_t begin, size_t end, void *arg)
{
    (void)arg;
    for (size_t i = begin; i < end; i++) {
        int rc = baton_scope_run(g_pool, i == 37 ? inner_fail_body : fail_body_plain, NULL);
        if (i == 37 && rc != -21)
            return -2000;
        if (i != 37 && rc != -14)
            return -2001;
        if (i == 37)
            return rc;
    }
    return 0;
}

static void test_loop_of_failing_scopes(void **state)
{
    (void)state;
    bt_assert_rc(baton_parallel_for(g_pool, 0, 100, 1, scope_per_piece, NULL), -21);
    bt_assert_pool_usable(g_pool);
}

/* Many errors in a row, from several outside threads at once: the pool stays healthy. */
static void *error_storm_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        BT_CHECK(baton_join(g_pool, fail_21, NULL, ok_task, NULL) == -21);
        BT_CHECK(baton_scope_run(g_pool, spawn_positive_body, NULL) == 7);
        for_err_ctx ctx = {.fail_index = (size_t)i % 50};
        atomic_init(&ctx.ran, 0);
        BT_CHECK(baton_parallel_for(g_pool, 0, 50, 1, for_fail_fn, &ctx) == -77);
    }
    return NULL;
}

static void test_error_storm_from_outside_threads(void **state)
{
    (void)state;
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, error_storm_thread, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    bt_assert_no_thread_failures();
    bt_assert_pool_usable(g_pool);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_task_error_cancels_rest),
        cmocka_unit_test(test_scope_skips_tasks_not_started),
        cmocka_unit_test(test_scope_body_error),
        cmocka_unit_test(test_scope_positive_error_code),
        cmocka_unit_test(test_join_errors),
        cmocka_unit_test(test_join_error_from_deep_leaf),
        cmocka_unit_test(test_parallel_for_error_skips_rest),
        cmocka_unit_test(test_parallel_for_error_any_grain),
        cmocka_unit_test(test_parallel_for_first_of_many_errors),
        cmocka_unit_test(test_reduce_error_leaves_out_untouched),
        cmocka_unit_test(test_nested_scope_error_propagates),
        cmocka_unit_test(test_error_through_scope_join_loop),
        cmocka_unit_test(test_loop_of_failing_scopes),
        cmocka_unit_test(test_error_storm_from_outside_threads),
    };
    return cmocka_run_group_tests_name("pool/errors", tests, group_setup, group_teardown);
}
