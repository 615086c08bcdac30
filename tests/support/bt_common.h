/*
 * bt_common.h — helpers shared by baton's cmocka tests (defined in bt_common.c and bt_pool.c,
 * linked into every test from the baton_test_support library; the RNG, the clock and the macros
 * are here, inline).
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
double bt_scale(void);

/* base * scale, at least `floor` (and at least 1). */
size_t bt_scaled(double base, size_t floor);

/* ---------------------------------------------------------------------------------------------
 * Command line
 */

/*
 * Parses the test's command line: `--workers N` / `--workers=N` / `-w N` (returned; `fallback`
 * when absent), `--filter PATTERN`, `--skip PATTERN` (cmocka name patterns with * and ?).
 * Also makes stdout unbuffered so that CTest shows how far a test got if it is killed.
 */
unsigned bt_init(int argc, char **argv, unsigned fallback);

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

/* Sleeps ns (or ms), resuming after a signal. */
void bt_sleep_ns(uint64_t ns);
void bt_sleep_ms(unsigned ms);

/* Spins for about `ns` of wall time, yielding now and then: simulated work that stays
 * cheap on an oversubscribed 2-core machine. */
void bt_busy_ns(uint64_t ns);

/* Busy-waits (yielding) until *flag != 0 or `timeout_ms` passed; returns whether it was set. */
bool bt_wait_flag(atomic_int *flag, unsigned timeout_ms);

/* ---------------------------------------------------------------------------------------------
 * Checks from other threads.
 */

/* The failure counter of BT_CHECK and bt_assert_no_thread_failures, one per test program. */
atomic_ulong *bt__thread_failures(void);

void bt__record_failure(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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

/* Starts dog's thread: what names the work in its message (main thread only: asserts). */
void bt_watchdog_start(bt_watchdog *dog, unsigned seconds, const char *what);
/* Stops dog's thread and waits for it. */
void bt_watchdog_stop(bt_watchdog *dog);

/* ---------------------------------------------------------------------------------------------
 * Pools
 */

/* A pool config of n_workers, flags and external_slots (struct_size set, the rest zero). */
baton_pool_config bt_pool_config(unsigned n_workers, unsigned flags, unsigned external_slots);

/* Creates a pool and fails the running test (main thread only) if that does not work. */
baton_pool *bt_pool_create_ex(unsigned n_workers, unsigned flags, unsigned external_slots);

/* bt_pool_create_ex(n_workers, 0, 0). */
baton_pool *bt_pool_create(unsigned n_workers);

/* Destroys a pool and fails the running test (main thread only) if that does not work. */
void bt_pool_destroy(baton_pool *pool);

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
void bt_expect_error(int rc, int expected, ...) __attribute__((sentinel));

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

/* A fork and join of two empty tasks on pool (from inside a call into it). */
void bt_nudge(baton_pool *pool);

/* Like bt_wait_flag, from inside a call into `pool`. */
bool bt_wait_flag_nudging(baton_pool *pool, atomic_int *flag, unsigned timeout_ms);

/* ---------------------------------------------------------------------------------------------
 * Running a task on a worker of a pool. Every call runs on its calling thread (pool.h), so a
 * test that needs a worker hands it over: a join whose A waits until B has run, never popping
 * B back; B was offered to thieves (a thread's first fork is always stealable), so a worker
 * runs it. Returns what fn returned (main thread or any outside thread; the pool needs an idle
 * worker within timeout_ms, else this returns BATON_ETIMEDOUT and fn may still run later).
 */

/* Runs fn(ctx) on a worker of pool; *out_worker (may be NULL) gets the worker's index. */
int bt_run_on_worker(baton_pool *pool, int (*fn)(void *ctx), void *ctx, int *out_worker);

/* ---------------------------------------------------------------------------------------------
 * A quick check that a pool still does its job: a parallel_for that must cover its range.
 */

/* Main thread only. */
void bt_assert_pool_usable(baton_pool *pool);

/* ---------------------------------------------------------------------------------------------
 * struct_size, the first field of every options struct
 */

/*
 * One attempt of bt_check_struct_size: builds the caller's options struct with the given
 * struct_size and otherwise valid fields, passes it to the call under test and returns the call's
 * code; on success sets *created and undoes what the call made (destroys it).
 */
typedef int (*bt_struct_size_try_fn)(size_t struct_size, bool *created, void *ctx);

/*
 * Checks the struct_size rule every public header words the same way, for the struct named
 * `type` of our_size bytes (this header's): 0 and our_size are accepted; our_size + 1 and every
 * size from 1 to sizeof(size_t) - 1 are BATON_EINVAL, with nothing made and a message that names
 * the struct and the value. Main thread only.
 */
void bt_check_struct_size(const char *type, size_t our_size, bt_struct_size_try_fn try_fn,
                          void *ctx);

#endif /* BT_SUPPORT_COMMON_H */
