/*
 * bt_common.h — helpers shared by baton's cmocka tests (header-only).
 *
 *  - sizes: BATON_TEST_SCALE (a float, default 1.0) multiplies iteration counts, so CI can run
 *    the suite small and a developer huge; bt_scaled() applies it with a floor.
 *  - argv: `--workers N` (or `-w N`) picks the pool size of a parameterised test;
 *    `--filter PATTERN` / `--skip PATTERN` select cmocka tests by name.
 *  - a tiny xorshift64* RNG, so a run is reproducible from its printed seed.
 *  - BT_CHECK: cmocka's assert_* longjmp to the main thread's test frame, so they must never run
 *    on another thread (a pool worker, a helper pthread) or inside a callback baton runs.
 *    Those record failures with BT_CHECK instead; the test asserts bt_assert_no_thread_failures()
 *    on the main thread once the work is done.
 *  - a watchdog thread that ends the process with a precise message when something that should
 *    finish does not (a lost wake-up, a deadlock), instead of a silent CTest timeout.
 *  - pool creation helpers that assert success and print the library's detail message if not.
 *  - return codes: bt_assert_rc checks one; bt_expect_error also checks that the detail message
 *    names what it should.
 *
 * Every test file includes this header first; it defines _POSIX_C_SOURCE when the file has not
 * asked for more.
 */
#ifndef BT_SUPPORT_COMMON_H
#define BT_SUPPORT_COMMON_H

#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "baton/pool.h"

/* ---------------------------------------------------------------------------------------------
 * Scale
 */

/* BATON_TEST_SCALE, parsed once. Invalid values are reported and ignored (1.0). */
static inline double bt_scale(void)
{
    static double cached = -1.0; /* Read and written by the main thread before threads start. */
    if (cached > 0.0)
        return cached;
    double value = 1.0;
    const char *text = getenv("BATON_TEST_SCALE");
    if (text != NULL && text[0] != '\0') {
        char *end = NULL;
        errno = 0;
        double parsed = strtod(text, &end);
        if (errno != 0 || end == text || *end != '\0' || !(parsed > 0.0) || parsed > 1e6)
            fprintf(stderr, "bt_common: ignoring BATON_TEST_SCALE=\"%s\" (want a float > 0)\n",
                    text);
        else
            value = parsed;
    }
    cached = value;
    return value;
}

/* base * scale, at least `floor` (and at least 1). */
static inline size_t bt_scaled(double base, size_t floor)
{
    double value = base * bt_scale();
    if (floor < 1)
        floor = 1;
    if (!(value >= (double)floor))
        return floor;
    if (value > (double)(SIZE_MAX / 4))
        return SIZE_MAX / 4;
    return (size_t)value;
}

/* ---------------------------------------------------------------------------------------------
 * Command line
 */

static inline unsigned bt__parse_unsigned(const char *text, const char *what)
{
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value > 100000) {
        fprintf(stderr, "bt_common: bad %s \"%s\"\n", what, text);
        exit(2);
    }
    return (unsigned)value;
}

/*
 * Parses the test's command line: `--workers N` / `--workers=N` / `-w N` (returned; `fallback`
 * when absent), `--filter PATTERN`, `--skip PATTERN` (cmocka name patterns with * and ?).
 * Also makes stdout unbuffered so that CTest shows how far a test got if it is killed.
 */
static inline unsigned bt_init(int argc, char **argv, unsigned fallback)
{
    unsigned workers = fallback;
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if ((strcmp(arg, "--workers") == 0 || strcmp(arg, "-w") == 0) && i + 1 < argc) {
            workers = bt__parse_unsigned(argv[++i], "worker count");
        } else if (strncmp(arg, "--workers=", 10) == 0) {
            workers = bt__parse_unsigned(arg + 10, "worker count");
        } else if (strcmp(arg, "--filter") == 0 && i + 1 < argc) {
            cmocka_set_test_filter(argv[++i]);
        } else if (strcmp(arg, "--skip") == 0 && i + 1 < argc) {
            cmocka_set_skip_filter(argv[++i]);
        } else {
            fprintf(stderr,
                    "usage: %s [--workers N] [--filter PATTERN] [--skip PATTERN]\n"
                    "environment: BATON_TEST_SCALE (float, default 1.0)\n",
                    argv[0]);
            exit(2);
        }
    }
    if (workers == 0 || workers > BATON_POOL_MAX_WORKERS) {
        fprintf(stderr, "bt_common: worker count %u out of range\n", workers);
        exit(2);
    }
    printf("# %s: workers=%u scale=%g\n", argv[0], workers, bt_scale());
    return workers;
}

/* ---------------------------------------------------------------------------------------------
 * RNG: xorshift64* (Vigna). Never returns the same stream for two different non-zero seeds.
 */

typedef struct bt_rng {
    uint64_t state;
} bt_rng;

static inline bt_rng bt_rng_seed(uint64_t seed)
{
    bt_rng rng = {seed ? seed : UINT64_C(0x9e3779b97f4a7c15)};
    return rng;
}

static inline uint64_t bt_rng_next(bt_rng *rng)
{
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return x * UINT64_C(0x2545f4914f6cdd1d);
}

/* Uniform-ish in [0, bound) (bound > 0); the modulo bias is irrelevant for tests. */
static inline uint64_t bt_rng_below(bt_rng *rng, uint64_t bound)
{
    return bt_rng_next(rng) % bound;
}

/* ---------------------------------------------------------------------------------------------
 * Time (the test's own clock, independent of baton_now_ns).
 */

static inline uint64_t bt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void bt_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline void bt_sleep_ms(unsigned ms)
{
    bt_sleep_ns((uint64_t)ms * 1000000u);
}

/* Spins for about `ns` of wall time, yielding now and then: simulated work that stays
 * cheap on an oversubscribed 2-core machine. */
static inline void bt_busy_ns(uint64_t ns)
{
    uint64_t start = bt_now_ns();
    unsigned spins = 0;
    while (bt_now_ns() - start < ns) {
        if (++spins % 64 == 0)
            sched_yield();
    }
}

/* Busy-waits (yielding) until *flag != 0 or `timeout_ms` passed; returns whether it was set. */
static inline bool bt_wait_flag(atomic_int *flag, unsigned timeout_ms)
{
    uint64_t deadline = bt_now_ns() + (uint64_t)timeout_ms * 1000000u;
    unsigned spins = 0;
    while (atomic_load(flag) == 0) {
        if (bt_now_ns() > deadline)
            return false;
        if (++spins < 100)
            sched_yield();
        else
            bt_sleep_ns(50000);
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Checks from other threads.
 */

static inline atomic_ulong *bt__thread_failures(void)
{
    static atomic_ulong failures;
    return &failures;
}

static inline void bt__record_failure(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void bt__record_failure(const char *file, int line, const char *fmt, ...)
{
    /* Only the first few are printed: a broken loop can fail a million times. */
    if (atomic_fetch_add(bt__thread_failures(), 1) < 10) {
        char text[512];
        va_list args;
        va_start(args, fmt);
        vsnprintf(text, sizeof text, fmt, args);
        va_end(args);
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, text);
    }
}

/* Records a failure (thread-safe, no longjmp) when cond is false. */
#define BT_CHECK(cond)                                                                           \
    do {                                                                                         \
        if (!(cond))                                                                             \
            bt__record_failure(__FILE__, __LINE__, "%s", #cond);                                 \
    } while (0)

/* Same, with a printf-style explanation. */
#define BT_CHECK_MSG(cond, ...)                                                                  \
    do {                                                                                         \
        if (!(cond))                                                                             \
            bt__record_failure(__FILE__, __LINE__, __VA_ARGS__);                                 \
    } while (0)

/* Main thread only: fails the running cmocka test if any BT_CHECK failed since the last call. */
#define bt_assert_no_thread_failures()                                                           \
    do {                                                                                         \
        unsigned long bt_failures_ = atomic_exchange(bt__thread_failures(), 0);                  \
        if (bt_failures_ != 0)                                                                   \
            fail_msg("%lu check(s) failed off the main test path (details on stderr)",           \
                     bt_failures_);                                                              \
    } while (0)

/* ---------------------------------------------------------------------------------------------
 * Watchdog: ends the process with a message if bt_watchdog_stop is not called in time.
 */

typedef struct bt_watchdog {
    pthread_t thread;
    atomic_int done;
    unsigned seconds;
    const char *what;
} bt_watchdog;

static inline void *bt__watchdog_main(void *arg)
{
    bt_watchdog *dog = arg;
    uint64_t deadline = bt_now_ns() + (uint64_t)dog->seconds * 1000000000u;
    while (atomic_load(&dog->done) == 0) {
        if (bt_now_ns() > deadline) {
            fprintf(stderr, "WATCHDOG: \"%s\" did not finish within %u s "
                            "(lost wake-up or deadlock?)\n",
                    dog->what, dog->seconds);
            fflush(stderr);
            _Exit(3);
        }
        bt_sleep_ns(2000000);
    }
    return NULL;
}

static inline void bt_watchdog_start(bt_watchdog *dog, unsigned seconds, const char *what)
{
    atomic_init(&dog->done, 0);
    dog->seconds = seconds;
    dog->what = what;
    int rc = pthread_create(&dog->thread, NULL, bt__watchdog_main, dog);
    assert_int_equal(rc, 0);
}

static inline void bt_watchdog_stop(bt_watchdog *dog)
{
    atomic_store(&dog->done, 1);
    pthread_join(dog->thread, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Pools
 */

static inline baton_pool_config bt_pool_config(unsigned n_workers, unsigned flags,
                                               unsigned external_slots)
{
    baton_pool_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.n_workers = n_workers;
    config.flags = flags;
    config.external_slots = external_slots;
    return config;
}

/* Creates a pool and fails the running test (main thread only) if that does not work. */
static inline baton_pool *bt_pool_create_ex(unsigned n_workers, unsigned flags,
                                            unsigned external_slots)
{
    baton_pool_config config = bt_pool_config(n_workers, flags, external_slots);
    baton_pool *pool = NULL;
    int rc = baton_pool_create(&config, &pool);
    if (rc != 0)
        fail_msg("baton_pool_create(n_workers=%u, flags=%#x, external_slots=%u) = %s: %s",
                 n_workers, flags, external_slots, baton_err_name(rc),
                 baton_last_error_message());
    assert_non_null(pool);
    assert_int_equal(baton_pool_workers(pool), n_workers);
    return pool;
}

static inline baton_pool *bt_pool_create(unsigned n_workers)
{
    return bt_pool_create_ex(n_workers, 0, 0);
}

static inline void bt_pool_destroy(baton_pool *pool)
{
    int rc = baton_pool_destroy(pool);
    if (rc != 0)
        fail_msg("baton_pool_destroy = %s: %s", baton_err_name(rc), baton_last_error_message());
}

/* Asserts rc == expected, printing both names and the detail message when not. */
#define bt_assert_rc(rc, expected)                                                               \
    do {                                                                                         \
        int bt_rc_ = (rc), bt_expected_ = (expected);                                            \
        if (bt_rc_ != bt_expected_)                                                              \
            fail_msg("%s returned %d (%s), expected %d (%s); last error message: \"%s\"", #rc,   \
                     bt_rc_, baton_err_name(bt_rc_), bt_expected_,                              \
                     baton_err_name(bt_expected_), baton_last_error_message());                 \
    } while (0)

/*
 * Asserts rc == expected (as bt_assert_rc) and that baton_last_error_message() contains every
 * fragment that follows, a NULL-terminated list of strings: bt_expect_error(rc, BATON_EINVAL,
 * "partition 3", "rows [4, 9)", NULL). Main thread only (cmocka asserts).
 */
static inline void bt_expect_error(int rc, int expected, ...) __attribute__((sentinel));

static inline void bt_expect_error(int rc, int expected, ...)
{
    bt_assert_rc(rc, expected);
    const char *msg = baton_last_error_message();
    va_list ap;
    va_start(ap, expected);
    for (const char *frag = va_arg(ap, const char *); frag != NULL; frag = va_arg(ap, const char *))
        if (strstr(msg, frag) == NULL)
            fail_msg("message \"%s\" lacks \"%s\"", msg, frag);
    va_end(ap);
}

/*
 * BT_DEFINE_POOL_GROUP() defines, in a test file, the globals g_workers (set it from bt_init)
 * and g_pool, and the cmocka group setup and teardown that create and destroy one pool of
 * g_workers workers for the whole group.
 */
#define BT_DEFINE_POOL_GROUP()                                                                   \
    static unsigned g_workers;                                                                   \
    static baton_pool *g_pool;                                                                   \
    static int group_setup(void **state)                                                         \
    {                                                                                            \
        (void)state;                                                                             \
        baton_pool_config config = bt_pool_config(g_workers, 0, 0);                              \
        return baton_pool_create(&config, &g_pool) == 0 ? 0 : -1;                               \
    }                                                                                            \
    static int group_teardown(void **state)                                                      \
    {                                                                                            \
        (void)state;                                                                             \
        return baton_pool_destroy(g_pool) == 0 ? 0 : -1;                                         \
    }

/* ---------------------------------------------------------------------------------------------
 * Waiting inside the pool for something another worker must do.
 *
 * A task that busy-waits for work it forked earlier to be taken by another worker must give the
 * pool a chance to hand that work out: a fork may sit in the private part of the caller's deque
 * until the caller's next fork or join. bt_nudge() is such a fork (a join of two empty tasks);
 * bt_wait_flag_nudging() waits for a flag and nudges the pool meanwhile. Tests that check
 * that an idle worker takes offered work *without* such help say so explicitly.
 */

static inline int bt__nudge_noop(void *ctx)
{
    (void)ctx;
    return 0;
}

static inline void bt_nudge(baton_pool *pool)
{
    int rc = baton_join(pool, bt__nudge_noop, NULL, bt__nudge_noop, NULL);
    BT_CHECK_MSG(rc == 0, "nudge join: %s", baton_err_name(rc));
}

/* Like bt_wait_flag, from inside a call into `pool`. */
static inline bool bt_wait_flag_nudging(baton_pool *pool, atomic_int *flag, unsigned timeout_ms)
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

/* ---------------------------------------------------------------------------------------------
 * Running a task on a worker of a pool. Every call runs on its calling thread (pool.h), so a
 * test that needs a worker hands it over: a join whose A waits until B has run, never popping
 * B back; B was offered to thieves (a thread's first fork is always stealable), so a worker
 * runs it. Returns what fn returned (main thread or any outside thread; the pool needs an idle
 * worker within timeout_ms, else this returns BATON_ETIMEDOUT and fn may still run later).
 */

typedef struct bt__on_worker {
    baton_pool *pool;
    int (*fn)(void *ctx);
    void *ctx;
    int rc;
    int worker; /* baton_pool_current_worker where B ran */
    unsigned timeout_ms;
    atomic_int done;
} bt__on_worker;

static inline int bt__on_worker_b(void *arg)
{
    bt__on_worker *w = arg;
    w->worker = baton_pool_current_worker(w->pool);
    w->rc = w->fn(w->ctx);
    atomic_store(&w->done, 1);
    return 0;
}

static inline int bt__on_worker_a(void *arg)
{
    bt__on_worker *w = arg;
    /* Nudging: a worker falling asleep just as B was offered may miss it (see above). */
    return bt_wait_flag_nudging(w->pool, &w->done, w->timeout_ms) ? 0 : BATON_ETIMEDOUT;
}

/* Runs fn(ctx) on a worker of pool; *out_worker (may be NULL) gets the worker's index. */
static inline int bt_run_on_worker(baton_pool *pool, int (*fn)(void *ctx), void *ctx,
                                   int *out_worker)
{
    bt__on_worker w = {.pool = pool, .fn = fn, .ctx = ctx, .rc = 0, .worker = -2,
                       .timeout_ms = 30000};
    atomic_init(&w.done, 0);
    int rc = baton_join(pool, bt__on_worker_a, &w, bt__on_worker_b, &w);
    if (out_worker != NULL)
        *out_worker = w.worker;
    return rc != 0 ? rc : w.rc;
}

/* ---------------------------------------------------------------------------------------------
 * A quick check that a pool still does its job: a parallel_for that must cover its range.
 */

static inline int bt__sanity_fn(size_t begin, size_t end, void *ctx)
{
    atomic_uchar *hits = ctx;
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add_explicit(&hits[i], 1, memory_order_relaxed);
    return 0;
}

/* Main thread only. */
static inline void bt_assert_pool_usable(baton_pool *pool)
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

#endif /* BT_SUPPORT_COMMON_H */
