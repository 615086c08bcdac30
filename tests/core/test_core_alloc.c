/*
 * test_core_alloc.c — the allocator hook and allocation failure handling:
 *  - a counting allocator installed with baton_set_allocator sees every allocation of a pool's
 *    life, and everything is freed by baton_pool_destroy (counts balance, no foreign frees);
 *    aligned requests are powers of two <= 4096 with sizes rounded to a multiple;
 *  - a partial allocator is rejected with BATON_EINVAL and leaves the installed one in place;
 *    an all-NULL allocator and NULL restore the C library's functions; switching while baton
 *    holds memory (from the counting allocator or the C library's) is refused with BATON_EBUSY
 *    and changes nothing;
 *  - fault injection (baton__alloc_fail_after(n), n = 0, 1, 2, ...): baton_pool_create fails
 *    with BATON_ENOMEM, leaves *out_pool alone and leaks nothing, until n is large enough for it
 *    to succeed; baton_scope_spawn reports BATON_ENOMEM and never runs the task it refused.
 *
 * Allocators may only be switched while baton holds no memory, so the tests run in order and
 * every one ends with all its pools destroyed.
 */
#include "support/bt_common.h"

#include "core/alloc.h"

/* ---- the counting allocator ------------------------------------------------------------------ */

static atomic_long live_blocks;   /* allocations not yet freed */
static atomic_long total_blocks;  /* allocations ever made */
static atomic_long aligned_blocks;

static void *count_malloc(size_t size)
{
    void *ptr = malloc(size);
    if (ptr != NULL) {
        atomic_fetch_add(&live_blocks, 1);
        atomic_fetch_add(&total_blocks, 1);
    }
    return ptr;
}

static void *count_aligned_alloc(size_t alignment, size_t size)
{
    BT_CHECK_MSG(alignment != 0 && (alignment & (alignment - 1)) == 0 && alignment <= 4096,
                 "aligned_alloc called with alignment %zu", alignment);
    BT_CHECK_MSG(alignment != 0 && size % alignment == 0,
                 "aligned_alloc(%zu, %zu): size not a multiple of the alignment", alignment, size);
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    void *ptr = NULL;
    if (posix_memalign(&ptr, alignment, size) != 0)
        return NULL;
    atomic_fetch_add(&live_blocks, 1);
    atomic_fetch_add(&total_blocks, 1);
    atomic_fetch_add(&aligned_blocks, 1);
    return ptr;
}

static void count_free(void *ptr)
{
    if (ptr == NULL)
        return;
    long before = atomic_fetch_sub(&live_blocks, 1);
    BT_CHECK_MSG(before > 0, "free(%p) of a block this allocator did not hand out", ptr);
    free(ptr);
}

static const baton_allocator counting = {count_malloc, count_aligned_alloc, count_free};

static void reset_counts(void)
{
    atomic_store(&live_blocks, 0);
    atomic_store(&total_blocks, 0);
    atomic_store(&aligned_blocks, 0);
}

static int group_setup(void **state)
{
    (void)state;
    reset_counts();
    /* The first baton call of the process, as the contract asks. */
    return baton_set_allocator(&counting) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    baton__alloc_fail_after(-1);
    return baton_set_allocator(NULL) == 0 ? 0 : -1;
}

static void assert_no_live_blocks(const char *when)
{
    long live = atomic_load(&live_blocks);
    if (live != 0)
        fail_msg("%ld block(s) still allocated %s", live, when);
    bt_assert_no_thread_failures();
}

/* ---- work to run on a pool so that it allocates what it lazily needs ------------------------- */

static atomic_long task_runs;

static int count_task(void *ctx)
{
    (void)ctx;
    atomic_fetch_add_explicit(&task_runs, 1, memory_order_relaxed);
    return 0;
}

static int spawn_many_body(baton_scope *scope, void *ctx)
{
    size_t n = *(size_t *)ctx;
    for (size_t i = 0; i < n; i++) {
        int rc = baton_scope_spawn(scope, count_task, NULL);
        BT_CHECK(rc == 0);
    }
    return 0;
}

static int noop_range(size_t begin, size_t end, void *ctx)
{
    (void)begin;
    (void)end;
    (void)ctx;
    return 0;
}

static void exercise_pool(baton_pool *pool)
{
    size_t n = bt_scaled(2e4, 2000);
    atomic_store(&task_runs, 0);
    bt_assert_rc(baton_scope_run(pool, spawn_many_body, &n), 0);
    assert_int_equal(atomic_load(&task_runs), (long)n);
    bt_assert_rc(baton_parallel_for(pool, 0, 100000, 1, noop_range, NULL), 0);
    bt_assert_rc(baton_join(pool, count_task, NULL, count_task, NULL), 0);
    bt_assert_pool_usable(pool);
    bt_assert_no_thread_failures();
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* Spawning, joining and looping allocate nothing once the pool is warm: task records are reused
 * (they go back to the worker that allocated them), forks and loop pieces live on the stack,
 * and deques only grow to the largest depth seen. Counted with the allocator hook. */
typedef struct fib_ctx {
    baton_pool *pool;
    unsigned n;
    long result;
} fib_ctx;

static int fib_task(void *arg)
{
    fib_ctx *f = arg;
    if (f->n < 2) {
        f->result = f->n;
        return 0;
    }
    fib_ctx a = {f->pool, f->n - 1, 0}, b = {f->pool, f->n - 2, 0};
    int rc = baton_join(f->pool, fib_task, &a, fib_task, &b);
    f->result = a.result + b.result;
    return rc;
}

/* The warm-up: every task waits until all have been spawned, so the records in flight reach
 * their maximum (the n that exercise_pool spawns), which no later round can exceed. */
static atomic_int all_spawned;

static int wait_for_all_spawned(void *ctx)
{
    (void)ctx;
    BT_CHECK(bt_wait_flag(&all_spawned, 20000));
    return 0;
}

static int spawn_all_then_release(baton_scope *scope, void *ctx)
{
    size_t n = *(size_t *)ctx;
    for (size_t i = 0; i < n; i++)
        BT_CHECK(baton_scope_spawn(scope, wait_for_all_spawned, NULL) == 0);
    atomic_store(&all_spawned, 1);
    return 0;
}

static void test_steady_state_allocates_nothing(void **state)
{
    (void)state;
    reset_counts();
    for (unsigned workers = 1; workers <= 4; workers *= 2) {
        baton_pool *pool = bt_pool_create(workers);
        size_t n = bt_scaled(2e4, 2000); /* as exercise_pool */
        atomic_store(&all_spawned, 0);
        bt_assert_rc(baton_scope_run(pool, spawn_all_then_release, &n), 0);
        exercise_pool(pool); /* and the rest of the warm-up: deque arrays */
        long before = atomic_load(&total_blocks);
        for (int round = 0; round < 3; round++) {
            exercise_pool(pool);
            fib_ctx f = {pool, 20, 0};
            bt_assert_rc(fib_task(&f), 0);
            assert_int_equal(f.result, 6765);
        }
        long after = atomic_load(&total_blocks);
        if (after != before)
            fail_msg("%u workers: %ld allocation(s) in steady state", workers, after - before);
        bt_pool_destroy(pool);
    }
    assert_no_live_blocks("after the pools were destroyed");
}


static void test_counting_allocator_sees_and_frees_everything(void **state)
{
    (void)state;
    reset_counts();
    baton_pool *pool = bt_pool_create(4);
    assert_true(atomic_load(&total_blocks) > 0);
    exercise_pool(pool);
    bt_pool_destroy(pool);
    assert_no_live_blocks("after baton_pool_destroy");
    printf("# a 4-worker pool made %ld allocations (%ld aligned)\n", atomic_load(&total_blocks),
           atomic_load(&aligned_blocks));
}

static void test_counting_allocator_many_pools(void **state)
{
    (void)state;
    reset_counts();
    const unsigned workers[] = {1, 2, 3, 8, 16};
    for (size_t i = 0; i < sizeof workers / sizeof workers[0]; i++) {
        baton_pool *pool = bt_pool_create_ex(workers[i], i % 2 ? BATON_POOL_NO_EXTERNAL_SLOTS : 0,
                                             0);
        exercise_pool(pool);
        bt_pool_destroy(pool);
        assert_no_live_blocks("after destroying a pool");
    }
}

static void test_partial_allocator_rejected(void **state)
{
    (void)state;
    assert_int_equal(atomic_load(&live_blocks), 0);
    const baton_allocator partial[] = {
        {count_malloc, NULL, NULL},
        {NULL, count_aligned_alloc, NULL},
        {NULL, NULL, count_free},
        {count_malloc, count_aligned_alloc, NULL},
        {count_malloc, NULL, count_free},
        {NULL, count_aligned_alloc, count_free},
    };
    for (size_t i = 0; i < sizeof partial / sizeof partial[0]; i++) {
        int rc = baton_set_allocator(&partial[i]);
        if (rc != BATON_EINVAL)
            fail_msg("partial allocator #%zu: baton_set_allocator returned %s, expected "
                     "BATON_EINVAL",
                     i, baton_err_name(rc));
    }
    /* The counting allocator is still the one installed. */
    reset_counts();
    baton_pool *pool = bt_pool_create(2);
    assert_true(atomic_load(&total_blocks) > 0);
    bt_pool_destroy(pool);
    assert_no_live_blocks("after a pool created following rejected allocators");
}

static void test_create_fault_injection(unsigned n_workers, unsigned flags)
{
    reset_counts();
    baton_pool_config config = bt_pool_config(n_workers, flags, 0);
    long n;
    int rc = -1;
    for (n = 0; n < 100000; n++) {
        baton_pool *pool = (baton_pool *)&pool; /* sentinel */
        baton_pool *const sentinel = pool;
        baton__alloc_fail_after(n);
        rc = baton_pool_create(&config, &pool);
        baton__alloc_fail_after(-1);
        if (rc == 0) {
            assert_true(pool != sentinel);
            bt_assert_pool_usable(pool);
            bt_pool_destroy(pool);
            assert_no_live_blocks("after destroying the first pool that could be created");
            break;
        }
        if (rc != BATON_ENOMEM)
            fail_msg("%u workers, flags %#x, allocation %ld failing: baton_pool_create returned "
                     "%s (\"%s\"), expected BATON_ENOMEM",
                     n_workers, flags, n, baton_err_name(rc), baton_last_error_message());
        if (pool != sentinel)
            fail_msg("allocation %ld failing: *out_pool was written on error", n);
        long live = atomic_load(&live_blocks);
        if (live != 0)
            fail_msg("%u workers, allocation %ld failing: create failed but leaked %ld block(s)",
                     n_workers, n, live);
        bt_assert_no_thread_failures();
    }
    bt_assert_rc(rc, 0);
    /* Creating a pool allocates at least its own record: n = 0 failed. */
    assert_true(n >= 1);
    printf("# %u workers, flags %#x: create needs %ld allocations\n", n_workers, flags, n);
}

static void test_create_fails_cleanly_1_worker(void **state)
{
    (void)state;
    test_create_fault_injection(1, 0);
}

static void test_create_fails_cleanly_4_workers(void **state)
{
    (void)state;
    test_create_fault_injection(4, 0);
}

static void test_create_fails_cleanly_16_workers(void **state)
{
    (void)state;
    test_create_fault_injection(16, 0);
}

static void test_create_fails_cleanly_no_external_slots(void **state)
{
    (void)state;
    test_create_fault_injection(3, BATON_POOL_NO_EXTERNAL_SLOTS);
}

/* Spawning under fault injection: tasks hold their records (they wait on a gate) so the body
 * must allocate new ones, and the first failing allocation makes spawn return ENOMEM. */
typedef struct spawn_fault_ctx {
    atomic_int gate;
    atomic_long ran;
    long spawned_ok;
    long refused;
    int other_error;
} spawn_fault_ctx;

static int gated_task(void *arg)
{
    spawn_fault_ctx *ctx = arg;
    /* Bounded: if the body never opens the gate the check below reports it. */
    BT_CHECK(bt_wait_flag(&ctx->gate, 60000));
    atomic_fetch_add(&ctx->ran, 1);
    return 0;
}

static int spawn_until_enomem_body(baton_scope *scope, void *arg)
{
    spawn_fault_ctx *ctx = arg;
    baton__alloc_fail_after(0);
    for (long i = 0; i < 1000000; i++) {
        int rc = baton_scope_spawn(scope, gated_task, ctx);
        if (rc == 0) {
            ctx->spawned_ok++;
        } else if (rc == BATON_ENOMEM) {
            ctx->refused++;
            if (ctx->refused >= 3)
                break;
        } else {
            ctx->other_error = rc;
            break;
        }
    }
    baton__alloc_fail_after(-1);
    atomic_store(&ctx->gate, 1);
    return 0;
}

static void test_spawn_reports_enomem(void **state)
{
    (void)state;
    reset_counts();
    baton_pool *pool = bt_pool_create(2);
    spawn_fault_ctx ctx = {.spawned_ok = 0, .refused = 0, .other_error = 0};
    atomic_init(&ctx.gate, 0);
    atomic_init(&ctx.ran, 0);
    int rc = baton_scope_run(pool, spawn_until_enomem_body, &ctx);
    bt_assert_no_thread_failures();
    if (ctx.other_error != 0)
        fail_msg("baton_scope_spawn under fault injection returned %s",
                 baton_err_name(ctx.other_error));
    if (ctx.refused == 0)
        fail_msg("1000000 spawns of blocked tasks under fault injection never returned "
                 "BATON_ENOMEM (%ld succeeded)", ctx.spawned_ok);
    bt_assert_rc(rc, 0);
    /* Every accepted task ran once; the refused ones never did. */
    assert_int_equal(atomic_load(&ctx.ran), ctx.spawned_ok);
    exercise_pool(pool);
    bt_pool_destroy(pool);
    assert_no_live_blocks("after destroying the pool used for spawn fault injection");
}

/* An allocator with every field NULL means "the C library's functions" (not a partial one). */
static void test_all_null_allocator_means_libc(void **state)
{
    (void)state;
    assert_int_equal(atomic_load(&live_blocks), 0);
    const baton_allocator none = {NULL, NULL, NULL};
    bt_assert_rc(baton_set_allocator(&none), 0);
    reset_counts();
    baton_pool *pool = bt_pool_create(2);
    exercise_pool(pool);
    bt_pool_destroy(pool);
    assert_int_equal(atomic_load(&total_blocks), 0);
    bt_assert_rc(baton_set_allocator(&counting), 0);
}

static void test_restore_with_null(void **state)
{
    (void)state;
    assert_int_equal(atomic_load(&live_blocks), 0);
    bt_assert_rc(baton_set_allocator(NULL), 0);
    reset_counts();
    baton_pool *pool = bt_pool_create(2);
    exercise_pool(pool);
    bt_pool_destroy(pool);
    assert_int_equal(atomic_load(&total_blocks), 0);
    /* Back to counting for the tests that follow (and to check it can be installed again). */
    bt_assert_rc(baton_set_allocator(&counting), 0);
    pool = bt_pool_create(1);
    assert_true(atomic_load(&total_blocks) > 0);
    bt_pool_destroy(pool);
    assert_no_live_blocks("after reinstalling the counting allocator");
}

/* core.h: switching while baton holds memory from the allocator in use is refused with
 * BATON_EBUSY (that memory would be freed with the other one), and nothing changes; once every
 * handle is destroyed the switch works. */
static void test_switch_refused_while_memory_is_live(void **state)
{
    (void)state;
    assert_int_equal(atomic_load(&live_blocks), 0);
    reset_counts();
    baton_pool *pool = bt_pool_create(2);
    long live = atomic_load(&live_blocks);
    assert_true(live > 0);
    static const baton_allocator none = {NULL, NULL, NULL};
    const baton_allocator *others[] = {NULL, &none, &counting};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        int rc = baton_set_allocator(others[i]);
        if (rc != BATON_EBUSY)
            fail_msg("switching allocator #%zu with %ld block(s) live: %s, expected BATON_EBUSY",
                     i, live, baton_err_name(rc));
        char count[32];
        snprintf(count, sizeof count, "%ld", live);
        if (strstr(baton_last_error_message(), count) == NULL)
            fail_msg("the message \"%s\" does not give the %s live block(s)",
                     baton_last_error_message(), count);
    }
    /* Still the counting allocator: the pool works, allocates and frees through it. */
    exercise_pool(pool);
    bt_pool_destroy(pool);
    assert_no_live_blocks("after the pool that held memory during the refused switches");
    bt_assert_rc(baton_set_allocator(NULL), 0);
    bt_assert_rc(baton_set_allocator(&counting), 0);
    pool = bt_pool_create(1);
    assert_true(atomic_load(&total_blocks) > 0);
    bt_pool_destroy(pool);
    assert_no_live_blocks("after switching back");
}

/* core.h: baton asks aligned_alloc only for sizes that are multiples of the alignment (the
 * counting allocator checks every request), whatever size its caller needs. */
static void test_aligned_sizes_are_multiples(void **state)
{
    (void)state;
    reset_counts();
    const size_t requests[][2] = {{64, 1}, {64, 100}, {4096, 1}, {4096, 4097}, {8, 0}, {16, 24}};
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
        void *ptr = baton__aligned_alloc(requests[i][0], requests[i][1]);
        assert_non_null(ptr);
        assert_int_equal((uintptr_t)ptr % requests[i][0], 0);
        baton__free(ptr);
    }
    assert_int_equal(atomic_load(&aligned_blocks), 6);
    assert_no_live_blocks("after the aligned requests");
}

/* Memory allocated under the C library's allocator counts too: installing one while it is live
 * is refused as well. */
static void test_install_refused_while_libc_memory_is_live(void **state)
{
    (void)state;
    assert_int_equal(atomic_load(&live_blocks), 0);
    bt_assert_rc(baton_set_allocator(NULL), 0);
    reset_counts();
    baton_pool *pool = bt_pool_create(2);
    bt_assert_rc(baton_set_allocator(&counting), BATON_EBUSY);
    bt_pool_destroy(pool); /* freed with free(), as it was allocated */
    assert_int_equal(atomic_load(&total_blocks), 0);
    bt_assert_rc(baton_set_allocator(&counting), 0);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counting_allocator_sees_and_frees_everything),
        cmocka_unit_test(test_counting_allocator_many_pools),
        cmocka_unit_test(test_partial_allocator_rejected),
        cmocka_unit_test(test_create_fails_cleanly_1_worker),
        cmocka_unit_test(test_create_fails_cleanly_4_workers),
        cmocka_unit_test(test_create_fails_cleanly_16_workers),
        cmocka_unit_test(test_create_fails_cleanly_no_external_slots),
        cmocka_unit_test(test_spawn_reports_enomem),
        cmocka_unit_test(test_steady_state_allocates_nothing),
        cmocka_unit_test(test_all_null_allocator_means_libc),
        cmocka_unit_test(test_restore_with_null),
        cmocka_unit_test(test_aligned_sizes_are_multiples),
        cmocka_unit_test(test_switch_refused_while_memory_is_live),
        cmocka_unit_test(test_install_refused_while_libc_memory_is_live),
    };
    return cmocka_run_group_tests_name("core/alloc", tests, group_setup, group_teardown);
}
