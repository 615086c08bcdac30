/*
 * test_core_park.c — the parker (baton__park / baton__unpark) and the futex shim under it:
 * an unpark that comes first is kept as a token; a parked thread is woken by another thread and
 * sees what it wrote; tokens do not pile up; timeouts time out, and huge ones (up to UINT64_MAX)
 * do not wrap into the past; a long ping-pong loses no
 * wake-up; unparks racing from many threads are harmless; baton__futex_wait returns at once on
 * a changed value; a wake with no waiters leaves nothing behind; wake(INT32_MAX) wakes every
 * waiter.
 *
 * The same file is built twice: against the library (futex build) and, as test_park_condvar,
 * compiled together with the core sources and -DBATON_PARKING_CONDVAR=1 (the portable path).
 * Anything that could hang is guarded by a watchdog that names what did not finish.
 */
#include "support/bt_common.h"

#include "core/os.h"
#include "core/park.h"

#ifdef BATON_PARKING_CONDVAR
#define GROUP_NAME "core/park (condition-variable build)"
#else
#define GROUP_NAME "core/park"
#endif

enum { WATCHDOG_S = 60 };

/* ---- parker ---------------------------------------------------------------------------------- */

static void test_unpark_before_park_returns_immediately(void **state)
{
    (void)state;
    baton__parker parker;
    baton__parker_init(&parker);
    baton__unpark(&parker);
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "park after unpark (token must be kept)");
    baton__park(&parker);
    bt_watchdog_stop(&dog);

    /* Same with park_timeout: it reports that it consumed the token. */
    baton__unpark(&parker);
    bt_assert_rc(baton__park_timeout(&parker, 10u * 1000000000u), 0);
}

static void test_park_timeout_times_out(void **state)
{
    (void)state;
    baton__parker parker;
    baton__parker_init(&parker);
    const uint64_t timeout = 20000000u; /* 20 ms */
    uint64_t start = bt_now_ns();
    bt_assert_rc(baton__park_timeout(&parker, timeout), BATON_ETIMEDOUT);
    uint64_t elapsed = bt_now_ns() - start;
    /* It gave up after (not before) the timeout; 1 ms of slack for clock granularity. */
    if (elapsed + 1000000u < timeout)
        fail_msg("park_timeout(20 ms) returned ETIMEDOUT after only %llu ns",
                 (unsigned long long)elapsed);
    /* A timeout leaves the parker usable. */
    baton__unpark(&parker);
    bt_assert_rc(baton__park_timeout(&parker, 10u * 1000000000u), 0);
}

static void test_tokens_do_not_accumulate(void **state)
{
    (void)state;
    baton__parker parker;
    baton__parker_init(&parker);
    baton__unpark(&parker);
    baton__unpark(&parker);
    baton__unpark(&parker);
    bt_assert_rc(baton__park_timeout(&parker, 10u * 1000000000u), 0);
    bt_assert_rc(baton__park_timeout(&parker, 20000000u), BATON_ETIMEDOUT);

    baton__unpark(&parker);
    baton__unpark(&parker);
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "park after two unparks");
    baton__park(&parker);
    bt_watchdog_stop(&dog);
    bt_assert_rc(baton__park_timeout(&parker, 20000000u), BATON_ETIMEDOUT);
}

static void test_park_timeout_zero_like_values(void **state)
{
    (void)state;
    baton__parker parker;
    baton__parker_init(&parker);
    /* A 1 ns timeout must not be treated as "forever". */
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "park_timeout(1 ns)");
    bt_assert_rc(baton__park_timeout(&parker, 1), BATON_ETIMEDOUT);
    bt_watchdog_stop(&dog);
}

typedef struct wake_ctx {
    baton__parker *parker;
    atomic_int started;
    int payload; /* plain int: published by unpark (release), read after park (acquire) */
} wake_ctx;

static void *delayed_unparker(void *arg)
{
    wake_ctx *ctx = arg;
    atomic_store(&ctx->started, 1);
    bt_sleep_ms(30); /* let the main thread get into park */
    ctx->payload = 4242;
    baton__unpark(ctx->parker);
    return NULL;
}

static void test_park_then_unpark_from_other_thread(void **state)
{
    (void)state;
    baton__parker parker;
    baton__parker_init(&parker);
    wake_ctx ctx = {.parker = &parker, .payload = 0};
    atomic_init(&ctx.started, 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, delayed_unparker, &ctx), 0);
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "park woken by another thread's unpark");
    baton__park(&parker);
    bt_watchdog_stop(&dog);
    /* Park returns only for a token, and the token comes after the payload. */
    assert_int_equal(ctx.payload, 4242);
    pthread_join(thread, NULL);
}

static void test_park_timeout_woken_before_timeout(void **state)
{
    (void)state;
    baton__parker parker;
    baton__parker_init(&parker);
    wake_ctx ctx = {.parker = &parker, .payload = 0};
    atomic_init(&ctx.started, 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, delayed_unparker, &ctx), 0);
    /* 30 s: far beyond the 30 ms after which the other thread unparks. */
    int rc = baton__park_timeout(&parker, 30u * 1000000000u);
    pthread_join(thread, NULL);
    bt_assert_rc(rc, 0);
    assert_int_equal(ctx.payload, 4242);
}

/* Timeouts far in the future (up to UINT64_MAX ns, about 584 years) mean "a long time", not a
 * deadline in the past: a deadline computed as now + timeout must not wrap around. */
static void test_park_timeout_huge_values(void **state)
{
    (void)state;
    const uint64_t timeouts[] = {UINT64_MAX, UINT64_MAX - 1000000000u, UINT64_MAX / 2,
                                 UINT64_C(1) << 62};
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        baton__parker parker;
        baton__parker_init(&parker);
        wake_ctx ctx = {.parker = &parker, .payload = 0};
        atomic_init(&ctx.started, 0);
        pthread_t thread;
        assert_int_equal(pthread_create(&thread, NULL, delayed_unparker, &ctx), 0);
        int rc = baton__park_timeout(&parker, timeouts[i]);
        pthread_join(thread, NULL);
        if (rc != 0)
            fail_msg("park_timeout(%llu ns) returned %s before the unpark 30 ms later "
                     "(deadline wrapped around?)",
                     (unsigned long long)timeouts[i], baton_err_name(rc));
        assert_int_equal(ctx.payload, 4242);
    }
}

typedef struct futex_waker_ctx {
    _Atomic uint32_t word;
} futex_waker_ctx;

static void *delayed_futex_waker(void *arg)
{
    futex_waker_ctx *ctx = arg;
    bt_sleep_ms(30);
    atomic_store(&ctx->word, 1);
    baton__futex_wake(&ctx->word, INT32_MAX);
    return NULL;
}

static void test_futex_wait_huge_timeout(void **state)
{
    (void)state;
    const uint64_t timeouts[] = {UINT64_MAX, UINT64_MAX / 2, UINT64_C(1) << 62};
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        futex_waker_ctx ctx;
        atomic_init(&ctx.word, 0);
        pthread_t thread;
        assert_int_equal(pthread_create(&thread, NULL, delayed_futex_waker, &ctx), 0);
        int timeouts_seen = 0;
        while (atomic_load(&ctx.word) == 0) {
            int rc = baton__futex_wait(&ctx.word, 0, timeouts[i]);
            if (rc == BATON_ETIMEDOUT)
                timeouts_seen++;
            else if (rc != 0)
                fail_msg("futex_wait returned %s", baton_err_name(rc));
        }
        pthread_join(thread, NULL);
        if (timeouts_seen != 0)
            fail_msg("futex_wait(timeout %llu ns) reported BATON_ETIMEDOUT %d time(s) within "
                     "30 ms (deadline wrapped around?)",
                     (unsigned long long)timeouts[i], timeouts_seen);
    }
}

/* Two threads pass the turn back and forth; a lost wake-up hangs (the watchdog reports it). */
typedef struct pingpong_ctx {
    baton__parker parkers[2];
    _Atomic uint64_t turn; /* even: side 0 may move; odd: side 1 */
    size_t rounds;
    bool use_timeout;
    atomic_int failures;
} pingpong_ctx;

typedef struct pingpong_side {
    pingpong_ctx *ctx;
    unsigned side;
} pingpong_side;

static void pingpong_wait(pingpong_ctx *ctx, unsigned side, uint64_t want)
{
    while (atomic_load_explicit(&ctx->turn, memory_order_acquire) != want) {
        if (ctx->use_timeout) {
            int rc = baton__park_timeout(&ctx->parkers[side], 100000000u);
            if (rc != 0 && rc != BATON_ETIMEDOUT)
                atomic_fetch_add(&ctx->failures, 1);
        } else {
            baton__park(&ctx->parkers[side]);
        }
    }
}

static void *pingpong_main(void *arg)
{
    pingpong_side *me = arg;
    pingpong_ctx *ctx = me->ctx;
    unsigned side = me->side;
    for (size_t i = 0; i < ctx->rounds; i++) {
        uint64_t want = 2 * i + side;
        pingpong_wait(ctx, side, want);
        /* Strict alternation: nobody else moved the turn while it was ours. */
        if (atomic_load(&ctx->turn) != want)
            atomic_fetch_add(&ctx->failures, 1);
        atomic_store_explicit(&ctx->turn, want + 1, memory_order_release);
        baton__unpark(&ctx->parkers[1 - side]);
    }
    return NULL;
}

static void run_pingpong(bool use_timeout, size_t rounds)
{
    pingpong_ctx ctx;
    baton__parker_init(&ctx.parkers[0]);
    baton__parker_init(&ctx.parkers[1]);
    atomic_init(&ctx.turn, 0);
    atomic_init(&ctx.failures, 0);
    ctx.rounds = rounds;
    ctx.use_timeout = use_timeout;
    pingpong_side sides[2] = {{&ctx, 0}, {&ctx, 1}};
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S * 2, use_timeout ? "ping-pong with park_timeout"
                                                        : "ping-pong with park (lost wake-up?)");
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, pingpong_main, &sides[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    bt_watchdog_stop(&dog);
    assert_int_equal(atomic_load(&ctx.failures), 0);
    assert_true(atomic_load(&ctx.turn) == 2 * (uint64_t)rounds);
}

static void test_pingpong_no_lost_wakeup(void **state)
{
    (void)state;
    run_pingpong(false, bt_scaled(1e5, 2000));
}

static void test_pingpong_with_timeouts(void **state)
{
    (void)state;
    run_pingpong(true, bt_scaled(3e4, 1000));
}

/* One owner parks again and again while several threads unpark it as fast as they can; every
 * park returns (the unparkers keep going until the owner is done). */
typedef struct storm_ctx {
    baton__parker parker;
    atomic_int done;
    _Atomic uint64_t unparks;
} storm_ctx;

static void *storm_unparker(void *arg)
{
    storm_ctx *ctx = arg;
    while (atomic_load(&ctx->done) == 0) {
        baton__unpark(&ctx->parker);
        atomic_fetch_add_explicit(&ctx->unparks, 1, memory_order_relaxed);
        if (atomic_load_explicit(&ctx->unparks, memory_order_relaxed) % 16 == 0)
            sched_yield();
    }
    return NULL;
}

static void test_unpark_storm_from_many_threads(void **state)
{
    (void)state;
    storm_ctx ctx;
    baton__parker_init(&ctx.parker);
    atomic_init(&ctx.done, 0);
    atomic_init(&ctx.unparks, 0);
    size_t parks = bt_scaled(2e4, 500);
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "parks under an unpark storm");
    pthread_t threads[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, storm_unparker, &ctx), 0);
    for (size_t i = 0; i < parks; i++)
        baton__park(&ctx.parker);
    atomic_store(&ctx.done, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(threads[i], NULL);
    bt_watchdog_stop(&dog);
    /* Each park consumed a token, and tokens are only made by unparks. */
    assert_true(atomic_load(&ctx.unparks) >= parks);
}

/* ---- futex shim ------------------------------------------------------------------------------ */

static void test_futex_wait_returns_when_value_differs(void **state)
{
    (void)state;
    _Atomic uint32_t word;
    atomic_init(&word, 5);
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "futex_wait with a value that differs");
    bt_assert_rc(baton__futex_wait(&word, 4, 0), 0);
    bt_assert_rc(baton__futex_wait(&word, 0, 0), 0);
    bt_assert_rc(baton__futex_wait(&word, UINT32_MAX, 30u * 1000000000u), 0);
    bt_watchdog_stop(&dog);
    assert_int_equal(atomic_load(&word), 5);
}

static void test_futex_wait_times_out(void **state)
{
    (void)state;
    _Atomic uint32_t word;
    atomic_init(&word, 7);
    /* Spurious wake-ups (0) are allowed by the contract; a timeout must show up eventually. */
    int rc = 0;
    for (int attempt = 0; attempt < 5 && rc != BATON_ETIMEDOUT; attempt++) {
        rc = baton__futex_wait(&word, 7, 10000000u);
        assert_true(rc == 0 || rc == BATON_ETIMEDOUT);
    }
    bt_assert_rc(rc, BATON_ETIMEDOUT);
}

static void test_futex_wake_without_waiters_is_harmless(void **state)
{
    (void)state;
    _Atomic uint32_t word;
    atomic_init(&word, 1);
    baton__futex_wake(&word, 1);
    baton__futex_wake(&word, INT32_MAX);
    for (int i = 0; i < 1000; i++)
        baton__futex_wake(&word, 1);
    assert_int_equal(atomic_load(&word), 1);
    /* Those wakes left nothing behind: a later wait still blocks until its timeout (allowing a
     * few spurious returns). */
    int rc = 0;
    for (int attempt = 0; attempt < 5 && rc != BATON_ETIMEDOUT; attempt++)
        rc = baton__futex_wait(&word, 1, 10000000u);
    bt_assert_rc(rc, BATON_ETIMEDOUT);
    /* And a wait on a changed value still returns at once. */
    bt_assert_rc(baton__futex_wait(&word, 2, 0), 0);
}

typedef struct waiters_ctx {
    _Atomic uint32_t word;
    atomic_int arrived;
    atomic_int woken;
} waiters_ctx;

static void *futex_waiter(void *arg)
{
    waiters_ctx *ctx = arg;
    atomic_fetch_add(&ctx->arrived, 1);
    while (atomic_load_explicit(&ctx->word, memory_order_acquire) == 0) {
        int rc = baton__futex_wait(&ctx->word, 0, 0);
        BT_CHECK(rc == 0);
    }
    atomic_fetch_add(&ctx->woken, 1);
    return NULL;
}

static void run_wake_all(int n_threads)
{
    waiters_ctx ctx;
    atomic_init(&ctx.word, 0);
    atomic_init(&ctx.arrived, 0);
    atomic_init(&ctx.woken, 0);
    pthread_t threads[16];
    assert_true(n_threads <= 16);
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "futex_wake(INT32_MAX) waking every waiter");
    for (int i = 0; i < n_threads; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, futex_waiter, &ctx), 0);
    while (atomic_load(&ctx.arrived) < n_threads)
        bt_sleep_ms(1);
    bt_sleep_ms(30); /* most of them are asleep in the kernel (or on the condvar) by now */
    assert_int_equal(atomic_load(&ctx.woken), 0);
    atomic_store_explicit(&ctx.word, 1, memory_order_release);
    baton__futex_wake(&ctx.word, INT32_MAX);
    for (int i = 0; i < n_threads; i++)
        pthread_join(threads[i], NULL);
    bt_watchdog_stop(&dog);
    assert_int_equal(atomic_load(&ctx.woken), n_threads);
    bt_assert_no_thread_failures();
}

static void test_futex_wake_all_wakes_every_waiter(void **state)
{
    (void)state;
    run_wake_all(1);
    run_wake_all(8);
    run_wake_all(16);
}

/* wake(1) repeated once per waiter wakes them all, one at a time. */
static void test_futex_wake_one_at_a_time(void **state)
{
    (void)state;
    enum { N = 4 };
    waiters_ctx ctx;
    atomic_init(&ctx.word, 0);
    atomic_init(&ctx.arrived, 0);
    atomic_init(&ctx.woken, 0);
    pthread_t threads[N];
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "futex_wake(1) per waiter");
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, futex_waiter, &ctx), 0);
    while (atomic_load(&ctx.arrived) < N)
        bt_sleep_ms(1);
    bt_sleep_ms(20);
    atomic_store_explicit(&ctx.word, 1, memory_order_release);
    /* Waiters that were not asleep yet see the new value; the others need one wake each. Keep
     * waking one at a time until all are through (a wake(1) that wakes nobody would hang). */
    while (atomic_load(&ctx.woken) < N) {
        baton__futex_wake(&ctx.word, 1);
        bt_sleep_ms(1);
    }
    for (int i = 0; i < N; i++)
        pthread_join(threads[i], NULL);
    bt_watchdog_stop(&dog);
    assert_int_equal(atomic_load(&ctx.woken), N);
    bt_assert_no_thread_failures();
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unpark_before_park_returns_immediately),
        cmocka_unit_test(test_park_timeout_times_out),
        cmocka_unit_test(test_tokens_do_not_accumulate),
        cmocka_unit_test(test_park_timeout_zero_like_values),
        cmocka_unit_test(test_park_then_unpark_from_other_thread),
        cmocka_unit_test(test_park_timeout_woken_before_timeout),
        cmocka_unit_test(test_park_timeout_huge_values),
        cmocka_unit_test(test_pingpong_no_lost_wakeup),
        cmocka_unit_test(test_pingpong_with_timeouts),
        cmocka_unit_test(test_unpark_storm_from_many_threads),
        cmocka_unit_test(test_futex_wait_returns_when_value_differs),
        cmocka_unit_test(test_futex_wait_times_out),
        cmocka_unit_test(test_futex_wait_huge_timeout),
        cmocka_unit_test(test_futex_wake_without_waiters_is_harmless),
        cmocka_unit_test(test_futex_wake_all_wakes_every_waiter),
        cmocka_unit_test(test_futex_wake_one_at_a_time),
    };
    return cmocka_run_group_tests_name(GROUP_NAME, tests, NULL, NULL);
}
