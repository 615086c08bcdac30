/*
 * test_pool_spawn.c — scopes, spawn and join at one worker count (--workers N; CTest runs it at
 * 1, 2, 4, 8 and 16 on purpose on a 2-core machine):
 *  - 10^7 tasks (times BATON_TEST_SCALE) spawned into scopes, as a recursive binary spawn tree
 *    (tasks spawn their children into the same scope) and as flat loops of spawns from the
 *    body: every task runs exactly once (a per-task byte) and the global count is exact;
 *  - several outside threads run spawn trees in their own scopes at once;
 *  - baton_join recursion (fib) from the main thread and from several outside threads;
 *  - nested scopes to depth 20, each level's two tasks opening a scope of their own;
 *  - baton_scope_spawn from a thread outside the pool, and from a worker of another pool,
 *    returns BATON_EPERM and never runs the task; NULL arguments give BATON_EINVAL;
 *  - baton_scope_cancelled turns true once a task failed, and later spawns return
 *    BATON_ECANCELED.
 */
#include "support/bt_common.h"

BT_DEFINE_POOL_GROUP()

/* ---- spawn trees ----------------------------------------------------------------------------- *
 * Node k (heap layout) runs once, marks hits[k], and spawns nodes 2k+1 and 2k+2 into the same
 * scope. A task's ctx points at its own byte in `hits`; the tree it belongs to is found from the
 * address (several trees run at once in the concurrent test), so nothing is allocated per task.
 */
typedef struct spawn_tree {
    baton_scope *scope;
    atomic_uchar *hits;
    size_t n;
    atomic_size_t count;
    atomic_size_t spawn_errors;
} spawn_tree;

enum { MAX_TREES = 8 };
static spawn_tree *g_trees[MAX_TREES];
static unsigned g_n_trees; /* set before any task runs */

static spawn_tree *tree_of(const void *ptr, size_t *out_index)
{
    uintptr_t address = (uintptr_t)ptr;
    for (unsigned i = 0; i < g_n_trees; i++) {
        uintptr_t base = (uintptr_t)g_trees[i]->hits;
        if (address >= base && address < base + g_trees[i]->n * sizeof(atomic_uchar)) {
            *out_index = (address - base) / sizeof(atomic_uchar);
            return g_trees[i];
        }
    }
    return NULL;
}

static int tree_task(void *ctx)
{
    size_t k = 0;
    spawn_tree *tree = tree_of(ctx, &k);
    if (tree == NULL) {
        BT_CHECK_MSG(false, "task got a ctx %p that belongs to no tree", ctx);
        return 0;
    }
    atomic_fetch_add_explicit(&tree->hits[k], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tree->count, 1, memory_order_relaxed);
    for (size_t child = 2 * k + 1; child <= 2 * k + 2 && child < tree->n; child++) {
        int rc = baton_scope_spawn(tree->scope, tree_task, (void *)&tree->hits[child]);
        if (rc != 0) {
            atomic_fetch_add(&tree->spawn_errors, 1);
            BT_CHECK_MSG(rc == 0, "spawn of node %zu: %s", child, baton_err_name(rc));
        }
    }
    return 0;
}

static int tree_body(baton_scope *scope, void *ctx)
{
    spawn_tree *tree = ctx;
    tree->scope = scope;
    return baton_scope_spawn(scope, tree_task, (void *)&tree->hits[0]);
}

static void tree_init(spawn_tree *tree, size_t n)
{
    tree->scope = NULL;
    tree->n = n;
    tree->hits = calloc(n, sizeof *tree->hits);
    assert_non_null(tree->hits);
    atomic_init(&tree->count, 0);
    atomic_init(&tree->spawn_errors, 0);
}

static void tree_check_and_free(spawn_tree *tree, const char *what)
{
    if (atomic_load(&tree->spawn_errors) != 0)
        fail_msg("%s: %zu spawns failed", what, atomic_load(&tree->spawn_errors));
    size_t count = atomic_load(&tree->count);
    if (count != tree->n)
        fail_msg("%s: %zu of %zu tasks ran", what, count, tree->n);
    for (size_t k = 0; k < tree->n; k++)
        if (atomic_load_explicit(&tree->hits[k], memory_order_relaxed) != 1)
            fail_msg("%s: task %zu of %zu ran %u times", what, k, tree->n,
                     (unsigned)atomic_load(&tree->hits[k]));
    free(tree->hits);
    tree->hits = NULL;
}

static void test_spawn_tree_every_task_once(void **state)
{
    (void)state;
    spawn_tree tree;
    tree_init(&tree, bt_scaled(8e6, 20000));
    g_trees[0] = &tree;
    g_n_trees = 1;
    bt_assert_rc(baton_scope_run(g_pool, tree_body, &tree), 0);
    bt_assert_no_thread_failures();
    g_n_trees = 0;
    tree_check_and_free(&tree, "spawn tree");
}

/* Flat: the body spawns every task itself, in a loop. */
typedef struct flat_ctx {
    atomic_uchar *hits;
    size_t n;
    atomic_size_t count;
} flat_ctx;

static flat_ctx g_flat;

static int flat_task(void *ctx)
{
    atomic_uchar *slot = ctx;
    atomic_fetch_add_explicit(slot, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_flat.count, 1, memory_order_relaxed);
    return 0;
}

static int flat_body(baton_scope *scope, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < g_flat.n; i++) {
        int rc = baton_scope_spawn(scope, flat_task, (void *)&g_flat.hits[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void test_spawn_flat_loop_every_task_once(void **state)
{
    (void)state;
    size_t per_scope = bt_scaled(1e5, 5000);
    /* 20 scopes of 10^5 spawns at scale 1; larger scales grow the scopes, not their number. */
    size_t rounds = bt_scaled(20, 2);
    if (rounds > 20)
        rounds = 20;
    g_flat.n = per_scope;
    g_flat.hits = calloc(per_scope, sizeof *g_flat.hits);
    assert_non_null(g_flat.hits);
    for (size_t round = 0; round < rounds; round++) {
        atomic_store(&g_flat.count, 0);
        for (size_t i = 0; i < per_scope; i++)
            atomic_store_explicit(&g_flat.hits[i], 0, memory_order_relaxed);
        bt_assert_rc(baton_scope_run(g_pool, flat_body, NULL), 0);
        assert_int_equal(atomic_load(&g_flat.count), per_scope);
        for (size_t i = 0; i < per_scope; i++)
            if (atomic_load_explicit(&g_flat.hits[i], memory_order_relaxed) != 1)
                fail_msg("round %zu: task %zu ran %u times", round, i,
                         (unsigned)atomic_load(&g_flat.hits[i]));
    }
    free(g_flat.hits);
    g_flat.hits = NULL;
}

/* Several outside threads, each with its own scope and tree, at the same time. With 6 threads
 * and 4 external slots at least two calls make slots on demand. */
typedef struct tree_thread_ctx {
    spawn_tree *tree;
    size_t rounds;
    int rc;
} tree_thread_ctx;

static void *tree_thread(void *arg)
{
    tree_thread_ctx *ctx = arg;
    ctx->rc = 0;
    for (size_t r = 0; r < ctx->rounds && ctx->rc == 0; r++) {
        spawn_tree *tree = ctx->tree;
        for (size_t k = 0; k < tree->n; k++)
            atomic_store_explicit(&tree->hits[k], 0, memory_order_relaxed);
        atomic_store(&tree->count, 0);
        ctx->rc = baton_scope_run(g_pool, tree_body, tree);
        BT_CHECK_MSG(ctx->rc == 0, "scope in outside thread: %s", baton_err_name(ctx->rc));
        BT_CHECK_MSG(atomic_load(&tree->count) == tree->n, "round %zu: %zu of %zu ran", r,
                     atomic_load(&tree->count), tree->n);
        for (size_t k = 0; k < tree->n; k++)
            if (atomic_load_explicit(&tree->hits[k], memory_order_relaxed) != 1) {
                BT_CHECK_MSG(false, "round %zu: node %zu ran %u times", r, k,
                             (unsigned)atomic_load(&tree->hits[k]));
                break;
            }
    }
    return NULL;
}

static void test_spawn_trees_from_many_outside_threads(void **state)
{
    (void)state;
    enum { THREADS = 6 };
    spawn_tree trees[THREADS];
    tree_thread_ctx ctx[THREADS];
    size_t n = bt_scaled(2e4, 1000);
    size_t rounds = bt_scaled(10, 2);
    for (int i = 0; i < THREADS; i++) {
        tree_init(&trees[i], n);
        g_trees[i] = &trees[i];
        ctx[i].tree = &trees[i];
        ctx[i].rounds = rounds;
    }
    g_n_trees = THREADS;
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, tree_thread, &ctx[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    g_n_trees = 0;
    bt_assert_no_thread_failures();
    for (int i = 0; i < THREADS; i++) {
        bt_assert_rc(ctx[i].rc, 0);
        tree_check_and_free(&trees[i], "tree of an outside thread");
    }
}

/* ---- join ------------------------------------------------------------------------------------ */

typedef struct fib_ctx {
    unsigned n;
    uint64_t result; /* plain: written by whichever thread ran the task, read after the join */
} fib_ctx;

static int fib_task(void *arg)
{
    fib_ctx *ctx = arg;
    if (ctx->n < 2) {
        ctx->result = ctx->n;
        return 0;
    }
    fib_ctx a = {ctx->n - 1, 0}, b = {ctx->n - 2, 0};
    int rc = baton_join(g_pool, fib_task, &a, fib_task, &b);
    if (rc != 0)
        return rc;
    ctx->result = a.result + b.result;
    return 0;
}

static uint64_t fib_serial(unsigned n)
{
    uint64_t a = 0, b = 1;
    for (unsigned i = 0; i < n; i++) {
        uint64_t next = a + b;
        a = b;
        b = next;
    }
    return a;
}

static void test_join_fib(void **state)
{
    (void)state;
    fib_ctx ctx = {25, 0};
    bt_assert_rc(fib_task(&ctx), 0);
    assert_int_equal(ctx.result, 75025);
    unsigned big = bt_scale() >= 1.0 ? 27 : 22;
    size_t repeats = bt_scaled(3, 1);
    for (size_t r = 0; r < repeats; r++) {
        ctx.n = big;
        ctx.result = 0;
        bt_assert_rc(fib_task(&ctx), 0);
        assert_int_equal(ctx.result, fib_serial(big));
    }
    /* Trivial joins. */
    for (unsigned n = 0; n < 5; n++) {
        ctx.n = n;
        ctx.result = 99;
        bt_assert_rc(fib_task(&ctx), 0);
        assert_int_equal(ctx.result, fib_serial(n));
    }
}

static void *fib_thread(void *arg)
{
    fib_ctx *ctx = arg;
    int rc = fib_task(ctx);
    BT_CHECK_MSG(rc == 0, "fib from an outside thread: %s", baton_err_name(rc));
    return NULL;
}

static void test_join_from_many_outside_threads(void **state)
{
    (void)state;
    enum { THREADS = 6 };
    fib_ctx ctx[THREADS];
    pthread_t threads[THREADS];
    for (size_t round = 0; round < bt_scaled(4, 1); round++) {
        for (int i = 0; i < THREADS; i++) {
            ctx[i].n = 18 + (unsigned)i % 4;
            ctx[i].result = 0;
            assert_int_equal(pthread_create(&threads[i], NULL, fib_thread, &ctx[i]), 0);
        }
        for (int i = 0; i < THREADS; i++)
            pthread_join(threads[i], NULL);
        bt_assert_no_thread_failures();
        for (int i = 0; i < THREADS; i++)
            assert_int_equal(ctx[i].result, fib_serial(ctx[i].n));
    }
}

/* ---- nested scopes --------------------------------------------------------------------------- *
 * The body at level L spawns two tasks of level L; each task counts itself and, below the last
 * level, opens a scope at level L+1 (waiting for it inside the task). Level L has 2^L tasks.
 */
enum { MAX_DEPTH = 20 };
static unsigned g_depth;
static atomic_size_t g_level_count[MAX_DEPTH + 2];

static int nested_body(baton_scope *scope, void *ctx);

static int nested_task(void *ctx)
{
    unsigned level = (unsigned)(uintptr_t)ctx;
    atomic_fetch_add_explicit(&g_level_count[level], 1, memory_order_relaxed);
    if (level == g_depth)
        return 0;
    int rc = baton_scope_run(g_pool, nested_body, (void *)(uintptr_t)(level + 1));
    BT_CHECK_MSG(rc == 0, "nested scope at level %u: %s", level + 1, baton_err_name(rc));
    return rc;
}

static int nested_body(baton_scope *scope, void *ctx)
{
    for (int i = 0; i < 2; i++) {
        int rc = baton_scope_spawn(scope, nested_task, ctx);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void test_nested_scopes_depth_20(void **state)
{
    (void)state;
    /* Depth 20 at scale 1 (2^21 tasks, 2^20 scopes); smaller scales take off levels. */
    unsigned depth = MAX_DEPTH;
    for (double s = bt_scale(); s < 0.75 && depth > 12; s *= 2)
        depth--;
    g_depth = depth;
    for (unsigned level = 0; level <= MAX_DEPTH + 1; level++)
        atomic_store(&g_level_count[level], 0);
    bt_assert_rc(baton_scope_run(g_pool, nested_body, (void *)(uintptr_t)1), 0);
    bt_assert_no_thread_failures();
    for (unsigned level = 1; level <= depth; level++) {
        size_t count = atomic_load(&g_level_count[level]);
        if (count != ((size_t)1 << level))
            fail_msg("depth %u: level %u ran %zu tasks, expected %zu", depth, level, count,
                     (size_t)1 << level);
    }
    assert_int_equal(atomic_load(&g_level_count[depth + 1]), 0);
}

/* ---- EPERM, EINVAL ---------------------------------------------------------------------------- */

static atomic_int g_never_ran;

static int must_not_run(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&g_never_ran, 1);
    return 0;
}

typedef struct outsider_ctx {
    baton_scope *scope;
    int rc;
} outsider_ctx;

static void *outsider_spawn(void *arg)
{
    outsider_ctx *ctx = arg;
    ctx->rc = baton_scope_spawn(ctx->scope, must_not_run, NULL);
    return NULL;
}

static int eperm_body(baton_scope *scope, void *arg)
{
    outsider_ctx *ctx = arg;
    ctx->scope = scope;
    ctx->rc = 12345;
    /* The scope is alive while the body runs, so the outsider may try to use it. */
    pthread_t thread;
    if (pthread_create(&thread, NULL, outsider_spawn, ctx) != 0)
        return -1000;
    pthread_join(thread, NULL);
    return 0;
}

static void test_spawn_from_outside_thread_is_eperm(void **state)
{
    (void)state;
    atomic_store(&g_never_ran, 0);
    outsider_ctx ctx = {NULL, 0};
    bt_assert_rc(baton_scope_run(g_pool, eperm_body, &ctx), 0);
    bt_assert_rc(ctx.rc, BATON_EPERM);
    assert_int_equal(atomic_load(&g_never_ran), 0);
}

/* A worker of another pool is not inside this scope's pool either. The other pool has no
 * external slots, so the join below runs its tasks on that pool's workers. */
typedef struct foreign_ctx {
    baton_scope *scope;
    baton_pool *other;
    atomic_int rc;
    atomic_int ran_on_other_worker;
} foreign_ctx;

static int foreign_spawn_task(void *arg)
{
    foreign_ctx *ctx = arg;
    if (baton_pool_current_worker(ctx->other) >= 0)
        atomic_store(&ctx->ran_on_other_worker, 1);
    atomic_store(&ctx->rc, baton_scope_spawn(ctx->scope, must_not_run, NULL));
    return 0;
}

static int noop_task(void *arg)
{
    (void)arg;
    return 0;
}

static int foreign_body(baton_scope *scope, void *arg)
{
    foreign_ctx *ctx = arg;
    ctx->scope = scope;
    return bt_run_on_worker(ctx->other, foreign_spawn_task, ctx, NULL);
}

static void test_spawn_from_other_pool_worker_is_eperm(void **state)
{
    (void)state;
    atomic_store(&g_never_ran, 0);
    baton_pool *other = bt_pool_create_ex(1, BATON_POOL_NO_EXTERNAL_SLOTS, 0);
    foreign_ctx ctx = {.scope = NULL, .other = other};
    atomic_init(&ctx.rc, 12345);
    atomic_init(&ctx.ran_on_other_worker, 0);
    bt_assert_rc(baton_scope_run(g_pool, foreign_body, &ctx), 0);
    bt_pool_destroy(other);
    /* Only meaningful if the task did run on the other pool's worker. */
    assert_int_equal(atomic_load(&ctx.ran_on_other_worker), 1);
    bt_assert_rc(atomic_load(&ctx.rc), BATON_EPERM);
    assert_int_equal(atomic_load(&g_never_ran), 0);
}

static int einval_body(baton_scope *scope, void *arg)
{
    int *rcs = arg;
    rcs[0] = baton_scope_spawn(scope, NULL, NULL);
    rcs[1] = baton_scope_spawn(NULL, must_not_run, NULL);
    return 0;
}

static void test_spawn_null_arguments(void **state)
{
    (void)state;
    atomic_store(&g_never_ran, 0);
    int rcs[2] = {0, 0};
    bt_assert_rc(baton_scope_run(g_pool, einval_body, rcs), 0);
    bt_assert_rc(rcs[0], BATON_EINVAL);
    bt_assert_rc(rcs[1], BATON_EINVAL);
    assert_int_equal(atomic_load(&g_never_ran), 0);
}

/* ---- cancellation ---------------------------------------------------------------------------- */

typedef struct cancel_ctx {
    bool cancelled_at_start;
    bool cancelled_seen;
    int spawn_after_rc;
    atomic_int failer_ran;
} cancel_ctx;

static int failing_task(void *arg)
{
    cancel_ctx *ctx = arg;
    atomic_store(&ctx->failer_ran, 1);
    return -5;
}

static int cancel_body(baton_scope *scope, void *arg)
{
    cancel_ctx *ctx = arg;
    ctx->cancelled_at_start = baton_scope_cancelled(scope);
    int rc = baton_scope_spawn(scope, failing_task, ctx);
    if (rc != 0)
        return rc;
    /* A worker takes the failing task (the body does not run tasks while it runs itself);
     * wait for the cancellation to show, bounded so that a bug fails instead of hanging, and
     * nudging the pool so that a sleeping worker is woken for the task. */
    uint64_t deadline = bt_now_ns() + 20000000000u;
    while (!baton_scope_cancelled(scope) && bt_now_ns() < deadline) {
        bt_nudge(g_pool);
        sched_yield();
    }
    ctx->cancelled_seen = baton_scope_cancelled(scope);
    atomic_store(&g_never_ran, 0);
    ctx->spawn_after_rc = baton_scope_spawn(scope, must_not_run, NULL);
    return 0;
}

static void test_scope_cancelled_after_task_error(void **state)
{
    (void)state;
    cancel_ctx ctx = {.cancelled_at_start = true, .cancelled_seen = false, .spawn_after_rc = 0};
    atomic_init(&ctx.failer_ran, 0);
    int rc = baton_scope_run(g_pool, cancel_body, &ctx);
    bt_assert_rc(rc, -5);
    assert_false(ctx.cancelled_at_start);
    assert_int_equal(atomic_load(&ctx.failer_ran), 1);
    if (!ctx.cancelled_seen)
        fail_msg("%s", "baton_scope_cancelled stayed false for 20 s after a task failed "
                       "(or no worker took the task)");
    bt_assert_rc(ctx.spawn_after_rc, BATON_ECANCELED);
    assert_int_equal(atomic_load(&g_never_ran), 0);
    bt_assert_pool_usable(g_pool);
}

static int clean_body(baton_scope *scope, void *arg)
{
    bool *cancelled = arg;
    for (int i = 0; i < 100; i++)
        if (baton_scope_spawn(scope, noop_task, NULL) != 0)
            return -1;
    *cancelled = baton_scope_cancelled(scope);
    return 0;
}

static void test_scope_not_cancelled_without_error(void **state)
{
    (void)state;
    bool cancelled = true;
    bt_assert_rc(baton_scope_run(g_pool, clean_body, &cancelled), 0);
    assert_false(cancelled);
}

/* ---- a pool whose workers park almost at once ------------------------------------------------ *
 * spin_us = 1: idle workers give up searching after a microsecond and park, so nearly every
 * call has to wake someone. Small calls with pauses in between, from the main thread and two
 * outside threads: a lost wake-up shows as a hang (reported by the watchdog).
 */
static baton_pool *g_quick_pool;

static int quick_fib(void *arg)
{
    fib_ctx *ctx = arg;
    if (ctx->n < 2) {
        ctx->result = ctx->n;
        return 0;
    }
    fib_ctx a = {ctx->n - 1, 0}, b = {ctx->n - 2, 0};
    int rc = baton_join(g_quick_pool, quick_fib, &a, quick_fib, &b);
    ctx->result = a.result + b.result;
    return rc;
}

static int quick_count(void *arg)
{
    atomic_fetch_add((atomic_long *)arg, 1);
    return 0;
}

static int quick_body(baton_scope *scope, void *arg)
{
    for (int i = 0; i < 8; i++) {
        int rc = baton_scope_spawn(scope, quick_count, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void *quick_thread(void *arg)
{
    size_t rounds = *(size_t *)arg;
    for (size_t r = 0; r < rounds; r++) {
        fib_ctx ctx = {(unsigned)(8 + r % 5), 0};
        int rc = quick_fib(&ctx);
        BT_CHECK_MSG(rc == 0 && ctx.result == fib_serial(ctx.n), "fib(%u) = %llu, rc %d", ctx.n,
                     (unsigned long long)ctx.result, rc);
        atomic_long count;
        atomic_init(&count, 0);
        rc = baton_scope_run(g_quick_pool, quick_body, &count);
        BT_CHECK_MSG(rc == 0 && atomic_load(&count) == 8, "scope: rc %d, %ld of 8 tasks", rc,
                     atomic_load(&count));
        if (r % 16 == 0)
            bt_sleep_ns(100000 + (r % 7) * 50000); /* long enough for everyone to park */
    }
    return NULL;
}

static void test_quick_parking_pool_loses_no_wakeup(void **state)
{
    (void)state;
    baton_pool_config config = bt_pool_config(g_workers, 0, 0);
    config.spin_us = 1;
    bt_assert_rc(baton_pool_create(&config, &g_quick_pool), 0);
    size_t rounds = bt_scaled(2000, 200);
    bt_watchdog dog;
    bt_watchdog_start(&dog, 90, "calls into a pool with spin_us = 1 (lost wake-up?)");
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, quick_thread, &rounds), 0);
    quick_thread(&rounds);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_pool_destroy(g_quick_pool);
    g_quick_pool = NULL;
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_tree_every_task_once),
        cmocka_unit_test(test_spawn_flat_loop_every_task_once),
        cmocka_unit_test(test_spawn_trees_from_many_outside_threads),
        cmocka_unit_test(test_join_fib),
        cmocka_unit_test(test_join_from_many_outside_threads),
        cmocka_unit_test(test_nested_scopes_depth_20),
        cmocka_unit_test(test_spawn_from_outside_thread_is_eperm),
        cmocka_unit_test(test_spawn_from_other_pool_worker_is_eperm),
        cmocka_unit_test(test_spawn_null_arguments),
        cmocka_unit_test(test_scope_cancelled_after_task_error),
        cmocka_unit_test(test_scope_not_cancelled_without_error),
        cmocka_unit_test(test_quick_parking_pool_loses_no_wakeup),
    };
    return cmocka_run_group_tests_name("pool/spawn", tests, group_setup, group_teardown);
}
