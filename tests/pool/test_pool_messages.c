/*
 * test_pool_messages.c — core.h: baton_last_error_message is "the detail of the last error a
 * baton call reported on the calling thread". When a pool call fails with the error of user work
 * (a scope's body or task, a join's half, a loop's fn, a reduction's accumulate), the caller's
 * message belongs to that failure: it names a code of the user's own (4242) or carries the
 * message the failing work's own baton call set, wherever that work ran. It is never an older
 * message of a worker thread (here: worker 0 holds "baton_pool_destroy: called from worker 0")
 * nor the caller's own older one ("out_pool is NULL"). Each case runs on a pool whose calls
 * take an external slot, and on a pool of one worker with BATON_POOL_NO_EXTERNAL_SLOTS.
 */
#include "support/bt_common.h"

static unsigned g_workers;

/* ---- making worker 0's message stale ---------------------------------------------------------- */

typedef struct poison_ctx {
    baton_pool *pool;
    atomic_int done;
} poison_ctx;

static void poison_here(baton_pool *pool)
{
    /* Fails with BATON_EDEADLK and sets this thread's message; the pool stays. */
    BT_CHECK(baton_pool_destroy(pool) == BATON_EDEADLK);
    BT_CHECK(strstr(baton_last_error_message(), "baton_pool_destroy") != NULL);
}

static int poison_task(void *arg)
{
    poison_ctx *ctx = arg;
    if (baton_pool_current_worker(ctx->pool) == 0) {
        poison_here(ctx->pool);
        atomic_store(&ctx->done, 1);
    }
    return 0;
}

static int poison_body(baton_scope *scope, void *arg)
{
    poison_ctx *ctx = arg;
    if (baton_pool_current_worker(ctx->pool) == 0) {
        poison_here(ctx->pool);
        atomic_store(&ctx->done, 1);
        return 0;
    }
    /* The body runs outside the workers: hand worker 0 tasks until one ran there. This body
     * does not run them itself while it waits, so a worker takes them. */
    while (atomic_load(&ctx->done) == 0) {
        BT_CHECK(baton_scope_spawn(scope, poison_task, ctx) == 0);
        if (bt_wait_flag(&ctx->done, 50))
            break;
    }
    return 0;
}

/* Leaves worker 0's thread holding a baton_pool_destroy message. */
static void poison_worker_0(baton_pool *pool)
{
    poison_ctx ctx = {.pool = pool};
    atomic_init(&ctx.done, 0);
    bt_watchdog dog;
    bt_watchdog_start(&dog, 60, "a task on worker 0");
    bt_assert_rc(baton_scope_run(pool, poison_body, &ctx), 0);
    bt_watchdog_stop(&dog);
    assert_int_equal(atomic_load(&ctx.done), 1);
    bt_assert_no_thread_failures();
}

/* Leaves the calling thread holding an unrelated message of its own. */
static void poison_caller(void)
{
    bt_assert_rc(baton_pool_create(NULL, NULL), BATON_EINVAL);
    assert_non_null(strstr(baton_last_error_message(), "out_pool is NULL"));
}

/* The caller's message after a failed call: contains `want`, and neither stale message. */
static void expect_fresh_message(int rc, int expected, const char *want)
{
    bt_assert_rc(rc, expected);
    const char *msg = baton_last_error_message();
    if (strstr(msg, want) == NULL || strstr(msg, "baton_pool_destroy") != NULL ||
        strstr(msg, "out_pool is NULL") != NULL)
        fail_msg("message \"%s\": want \"%s\" and no stale message", msg, want);
}

/* ---- user work that fails --------------------------------------------------------------------- */

static int return_0(void *arg)
{
    (void)arg;
    return 0;
}

static int return_4242(void *arg)
{
    (void)arg;
    return 4242;
}

/* Returns a baton code without any baton call having failed. */
static int return_eio(void *arg)
{
    (void)arg;
    return BATON_EIO;
}

/* Returns the error of a baton call of its own: its message must travel with it. */
static int return_own_einval(void *arg)
{
    baton_pool *pool = arg;
    return baton_parallel_for(pool, 5, 1, 0, NULL, NULL);
}

static int body_4242(baton_scope *scope, void *arg)
{
    (void)scope;
    (void)arg;
    return 4242;
}

typedef struct spawn_ctx {
    baton_task_fn fn;
    void *arg;
} spawn_ctx;

static int body_spawns(baton_scope *scope, void *arg)
{
    spawn_ctx *ctx = arg;
    return baton_scope_spawn(scope, ctx->fn, ctx->arg);
}

static int for_4242(size_t begin, size_t end, void *ctx)
{
    (void)ctx;
    return begin <= 7 && 7 < end ? 4242 : 0;
}

static void sum_identity(void *out, void *ctx)
{
    (void)ctx;
    *(long *)out = 0;
}

static int sum_accumulate_4242(size_t begin, size_t end, void *inout, void *ctx)
{
    (void)ctx;
    *(long *)inout += (long)(end - begin);
    return begin <= 7 && 7 < end ? 4242 : 0;
}

static void sum_combine(void *left, const void *right, void *ctx)
{
    (void)ctx;
    *(long *)left += *(const long *)right;
}

/* Every case, each after making both stale messages exist. */
static void check_every_call(baton_pool *pool)
{
    long out = -1;
    baton_reduce_ops ops = {.value_size = sizeof(long), .identity = sum_identity,
                            .accumulate = sum_accumulate_4242, .combine = sum_combine};

    poison_worker_0(pool);
    poison_caller();
    expect_fresh_message(baton_scope_run(pool, body_4242, NULL), 4242, "4242");

    spawn_ctx task_4242 = {return_4242, NULL};
    poison_worker_0(pool);
    poison_caller();
    expect_fresh_message(baton_scope_run(pool, body_spawns, &task_4242), 4242, "4242");

    spawn_ctx task_eio = {return_eio, NULL};
    poison_worker_0(pool);
    poison_caller();
    expect_fresh_message(baton_scope_run(pool, body_spawns, &task_eio), BATON_EIO, "BATON_EIO");

    spawn_ctx task_own = {return_own_einval, pool};
    poison_worker_0(pool);
    poison_caller();
    expect_fresh_message(baton_scope_run(pool, body_spawns, &task_own), BATON_EINVAL,
                         "fn must not be NULL");

    poison_worker_0(pool);
    poison_caller();
    expect_fresh_message(baton_join(pool, return_4242, NULL, return_0, NULL), 4242, "4242");
    poison_worker_0(pool);
    poison_caller();
    expect_fresh_message(baton_join(pool, return_0, NULL, return_4242, NULL), 4242, "4242");
    poison_worker_0(pool);
    poison_caller();
    expect_fresh_message(baton_join(pool, return_0, NULL, return_own_einval, pool), BATON_EINVAL,
                         "fn must not be NULL");

    poison_worker_0(pool);
    poison_caller();
    expect_fresh_message(baton_parallel_for(pool, 0, 100, 1, for_4242, NULL), 4242, "4242");

    poison_worker_0(pool);
    poison_caller();
    expect_fresh_message(baton_parallel_reduce(pool, 0, 100, 1, &ops, NULL, &out), 4242, "4242");
    assert_int_equal(out, -1);
}

static void test_messages_through_external_slots(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create(g_workers);
    check_every_call(pool);
    bt_pool_destroy(pool);
}

static void test_messages_without_external_slots(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create_ex(1, BATON_POOL_NO_EXTERNAL_SLOTS, 0);
    check_every_call(pool);
    bt_pool_destroy(pool);
}

/* A call that succeeds leaves the caller's message as it was (core.h). */
static void test_success_leaves_message(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create(g_workers);
    spawn_ctx task_0 = {return_0, NULL};
    poison_caller();
    bt_assert_rc(baton_scope_run(pool, body_spawns, &task_0), 0);
    bt_assert_rc(baton_join(pool, return_0, NULL, return_0, NULL), 0);
    assert_non_null(strstr(baton_last_error_message(), "out_pool is NULL"));
    bt_pool_destroy(pool);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_through_external_slots),
        cmocka_unit_test(test_messages_without_external_slots),
        cmocka_unit_test(test_success_leaves_message),
    };
    return cmocka_run_group_tests_name("pool/messages", tests, NULL, NULL);
}
