/*
 * os.h — everything baton asks of the operating system, in one place. The rest of the code never
 * tests for an OS; it calls these. Linux implements them in os_linux.c. The blocking primitives
 * (futex wait/wake) have a portable condition-variable implementation selected by
 * BATON_PARKING_CONDVAR, which also lets the tests exercise that path on Linux.
 */
#ifndef BATON_CORE_OS_H
#define BATON_CORE_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A hint that the cache line at p is about to be written (nothing where the compiler has no
 * such builtin): for loops whose misses are independent, so that a batch of them overlaps. */
#if defined(__GNUC__) || defined(__clang__)
#define BATON__PREFETCH_WRITE(p) __builtin_prefetch((p), 1)
#else
#define BATON__PREFETCH_WRITE(p) ((void)(p))
#endif

/*
 * Blocks while *addr == expected, until woken by baton__futex_wake on the same address, a timeout
 * (timeout_ns > 0; 0 waits forever) or a spurious wake-up. Returns 0 when woken or when *addr
 * differed on entry, BATON_ETIMEDOUT on timeout. Callers re-check their condition in a loop.
 */
int baton__futex_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t timeout_ns);

/* Wakes up to n_waiters threads blocked in baton__futex_wait on addr (INT32_MAX: all). */
void baton__futex_wake(_Atomic uint32_t *addr, int n_waiters);

typedef struct baton__thread baton__thread; /* opaque; one per started thread */
typedef void *(*baton__thread_fn)(void *arg);

/* Starts a thread running fn(arg); name (may be NULL) is set as the OS thread name, truncated
 * to what the OS keeps. Returns 0, BATON_ENOMEM or BATON_ETHREAD. */
int baton__thread_start(baton__thread **out_thread, baton__thread_fn fn, void *arg,
                        const char *name);

/* Waits for the thread to end and frees it. */
void baton__thread_join(baton__thread *thread);

/* Gives up the CPU to another runnable thread. */
void baton__thread_yield(void);

/* Sleeps the calling thread for ns nanoseconds (at least). */
void baton__sleep_ns(uint64_t ns);

/* Nanoseconds of a monotonic clock; only differences mean anything. */
uint64_t baton__monotonic_ns(void);

/* CPU time consumed by the whole process, in nanoseconds. */
uint64_t baton__process_cpu_ns(void);

/* CPU time the calling thread has used, in nanoseconds (a system call: not for hot paths). */
uint64_t baton__thread_cpu_ns(void);

/*
 * Process-wide memory barrier (Linux membarrier, private expedited): when it returns, every
 * thread of the process that was running has executed a full memory barrier, and every other one
 * will before it runs again. baton__process_barrier_init() registers the process once and returns
 * true if the barrier is available; when it is not (old kernel, seccomp, the condition-variable
 * build), baton__process_barrier() must not be relied on and callers use ordinary fences.
 */
bool baton__process_barrier_init(void);
void baton__process_barrier(void);

/* Number of CPUs the OS reports online; >= 1. The topology layer (hwloc) is preferred. */
unsigned baton__cpu_count(void);

#endif /* BATON_CORE_OS_H */
