/*
 * os_linux.c — the OS shim (core/os.h) for Linux and other POSIX systems.
 *
 * DESIGN: blocking is a futex (FUTEX_WAIT_PRIVATE / FUTEX_WAKE_PRIVATE) on Linux. The portable
 * fallback, chosen by BATON_PARKING_CONDVAR or on non-Linux systems, emulates a futex with a
 * fixed table of mutex + condition-variable buckets keyed by address (the parking-lot idea of
 * WebKit and Rust's parking_lot, without the queues): a waiter checks the word under its bucket's
 * mutex before sleeping, and a waker takes the same mutex after changing the word, so a wake-up
 * between the check and the sleep cannot be lost. Waking broadcasts to the bucket; waiters
 * re-check their own word, so sharing a bucket costs spurious wake-ups, never lost ones.
 */
#define _GNU_SOURCE /* pthread_setname_np, syscall */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && !defined(BATON_PARKING_CONDVAR)
#include <linux/futex.h>
#include <sys/syscall.h>
#define BATON__USE_FUTEX 1
#else
#define BATON__USE_FUTEX 0
#endif

#include "core/alloc.h"
#include "core/error.h"
#include "core/os.h"

static struct timespec baton__timespec_from_ns(uint64_t ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    return ts;
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t baton__monotonic_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t baton__process_cpu_ns(void)
{
    return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

uint64_t baton__thread_cpu_ns(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

void baton__sleep_ns(uint64_t ns)
{
    struct timespec ts = baton__timespec_from_ns(ns);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void baton__thread_yield(void)
{
    sched_yield();
}

unsigned baton__cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : (unsigned)n;
}

#if BATON__USE_FUTEX

#include <linux/membarrier.h>

static bool baton__membarrier_ok;
static pthread_once_t baton__membarrier_once = PTHREAD_ONCE_INIT;

static void baton__membarrier_register(void)
{
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
        return;
    baton__membarrier_ok =
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

bool baton__process_barrier_init(void)
{
    /* pthread_once orders the registration before every caller's return. */
    pthread_once(&baton__membarrier_once, baton__membarrier_register);
    return baton__membarrier_ok;
}

void baton__process_barrier(void)
{
    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
}

int baton__futex_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t timeout_ns)
{
    struct timespec ts;
    struct timespec *timeout = NULL;
    if (timeout_ns > 0) {
        ts = baton__timespec_from_ns(timeout_ns);
        timeout = &ts;
    }
    /* The kernel compares *addr with expected atomically with respect to FUTEX_WAKE. */
    long rc = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, timeout, NULL, 0);
    if (rc != 0 && errno == ETIMEDOUT)
        return BATON_ETIMEDOUT;
    return 0; /* woken, value differed (EAGAIN) or interrupted (EINTR): caller re-checks */
}

void baton__futex_wake(_Atomic uint32_t *addr, int n_waiters)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n_waiters, NULL, NULL, 0);
}

#else /* !BATON__USE_FUTEX */

/* The portable build has no process barrier: its users fall back to fences. */
bool baton__process_barrier_init(void)
{
    return false;
}

void baton__process_barrier(void)
{
}

/* The condition-variable emulation of the futex. */

#define BATON__PARK_BUCKETS 64

typedef struct baton__park_bucket {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int initialised;
} baton__park_bucket;

static baton__park_bucket baton__buckets[BATON__PARK_BUCKETS];
static pthread_once_t baton__buckets_once = PTHREAD_ONCE_INIT;

static void baton__buckets_init(void)
{
    for (int i = 0; i < BATON__PARK_BUCKETS; i++) {
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_mutex_init(&baton__buckets[i].mutex, NULL);
        pthread_cond_init(&baton__buckets[i].cond, &attr);
        pthread_condattr_destroy(&attr);
    }
}

static baton__park_bucket *baton__bucket_of(const void *addr)
{
    pthread_once(&baton__buckets_once, baton__buckets_init);
    uintptr_t a = (uintptr_t)addr;
    return &baton__buckets[((a >> 4) ^ (a >> 12)) % BATON__PARK_BUCKETS];
}

int baton__futex_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t timeout_ns)
{
    baton__park_bucket *bucket = baton__bucket_of(addr);
    int rc = 0;
    pthread_mutex_lock(&bucket->mutex);
    /* Relaxed is enough: the mutex orders this load against the waker's store + lock. */
    if (atomic_load_explicit(addr, memory_order_relaxed) == expected) {
        if (timeout_ns == 0) {
            pthread_cond_wait(&bucket->cond, &bucket->mutex);
        } else {
            /* Saturate: a deadline past the clock's range would wrap into the past. time_t
             * holds the largest value baton__timespec_from_ns can produce. */
            uint64_t now = baton__monotonic_ns();
            uint64_t at = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
            struct timespec deadline = baton__timespec_from_ns(at);
            if (pthread_cond_timedwait(&bucket->cond, &bucket->mutex, &deadline) == ETIMEDOUT)
                rc = BATON_ETIMEDOUT;
        }
    }
    pthread_mutex_unlock(&bucket->mutex);
    return rc;
}

void baton__futex_wake(_Atomic uint32_t *addr, int n_waiters)
{
    (void)n_waiters; /* the bucket is shared by addresses, so every waiter re-checks */
    baton__park_bucket *bucket = baton__bucket_of(addr);
    pthread_mutex_lock(&bucket->mutex);
    pthread_cond_broadcast(&bucket->cond);
    pthread_mutex_unlock(&bucket->mutex);
}

#endif /* BATON__USE_FUTEX */

struct baton__thread {
    pthread_t handle;
};

int baton__thread_start(baton__thread **out_thread, baton__thread_fn fn, void *arg,
                        const char *name)
{
    baton__thread *thread = baton__malloc(sizeof *thread);
    if (thread == NULL)
        return baton__error(BATON_ENOMEM, "baton__thread_start: out of memory");
    int rc = pthread_create(&thread->handle, NULL, fn, arg);
    if (rc != 0) {
        baton__free(thread);
        char text[128];
        /* strerror is not thread-safe; the GNU strerror_r returns the text to use. */
        const char *reason = strerror_r(rc, text, sizeof text);
        return baton__error(BATON_ETHREAD, "pthread_create failed: %s (errno %d)", reason, rc);
    }
    if (name != NULL) {
        char short_name[16]; /* Linux keeps 15 characters and the terminator */
        strncpy(short_name, name, sizeof short_name - 1);
        short_name[sizeof short_name - 1] = '\0';
#if defined(__linux__)
        pthread_setname_np(thread->handle, short_name);
#endif
    }
    *out_thread = thread;
    return 0;
}

void baton__thread_join(baton__thread *thread)
{
    pthread_join(thread->handle, NULL);
    baton__free(thread);
}
