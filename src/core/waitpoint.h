/*
 * waitpoint.h — a place where threads wait for a condition that other threads make true without
 * taking any lock: an event count (Dmitry Vyukov's eventcount; folly's and oneTBB's
 * concurrent_monitor are the same idea) on a futex, with the cost of the "is anyone asleep?"
 * question moved onto the sleeper.
 *
 * DESIGN
 *  - A waiter announces itself (waiters += 1), reads the epoch, re-checks its condition and only
 *    then sleeps on the epoch word. A notifier first publishes its change (the push, the pop),
 *    then reads waiters; if anyone waits it bumps the epoch and wakes. Either the waiter's
 *    re-check sees the change, or the notifier sees the waiter: that needs store-then-load order
 *    on both sides (Dekker), which plain release/acquire does not give.
 *  - The notifier is the hot path (every push and pop), the waiter the cold one (it is about to
 *    make a system call anyway). So the waiter issues a process-wide barrier (membarrier) between
 *    its announcement and its re-check, and the notifier needs only a compiler barrier: if the
 *    notifier's load ran before the waiter's barrier, the barrier drained the notifier's earlier
 *    store and the re-check sees it; if after, the load sees the announcement (folly's
 *    asymmetricLightBarrier / asymmetricHeavyBarrier). Where membarrier is unavailable, both
 *    sides use a sequentially consistent fence instead.
 *  - waiters sits on a line that only waiters write, so in steady state the notifier's load hits
 *    its own cache.
 *  - Wake-ups are throttled (Go's scheduler does the same with its spinning threads): while one
 *    woken waiter has not run yet, another wake-one finds `waking` set and makes no system
 *    call; the waiter, once it runs, clears it, and if what it waited for is still there for
 *    others after it took its share, wakes the next one (the caller's job: baton__ring_wait_op
 *    does it). Without this, a producer pushing to a sleeping
 *    consumer on a busy machine makes a futex call per item until the consumer gets a CPU.
 *  - Waiting spins briefly, yields a few times, then sleeps: a waiter that spins without bound
 *    starves the thread it waits for when there are more threads than cores.
 */
#ifndef BATON_CORE_WAITPOINT_H
#define BATON_CORE_WAITPOINT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "baton/core.h"

typedef struct baton__waitpoint {
    BATON_CACHELINE_ALIGNED _Atomic uint32_t waiters; /* threads between announce and leave */
    _Atomic uint32_t epoch;                           /* the futex word; bumped by each wake */
    /* 1 while a wake-one is on its way and no waiter has run since: further wake-ones skip the
     * system call (a burst of pushes to a sleeping consumer costs one wake-up, not one each).
     * Every waiter clears it before it sleeps and when it leaves, so it never hides a sleeper:
     * see baton__waitpoint_wait. */
    _Atomic uint32_t waking;
} baton__waitpoint;

/* True once baton__waitpoint_global_init() found the process barrier; read on every notify. */
extern bool baton__waitpoint_asymmetric;

/* Sets baton__waitpoint_asymmetric once per process. Call it before the first waitpoint is used
 * (the queue constructors do); later calls cost a pthread_once check. */
void baton__waitpoint_global_init(void);

void baton__waitpoint_init(baton__waitpoint *wp);

/* The notifier's half of the Dekker pair: orders the caller's earlier stores before the load of
 * waiters that follows. */
static inline void baton__waitpoint_light_barrier(void)
{
    if (baton__waitpoint_asymmetric) {
        atomic_signal_fence(memory_order_seq_cst);
    } else {
#if defined(__SANITIZE_THREAD__)
        /* gcc's TSan does not support atomic_thread_fence (-Wtsan); a seq_cst read-modify-write
         * of a shared word orders the same way for this purpose. */
        static _Atomic uint32_t baton__fence_word;
        atomic_fetch_add_explicit(&baton__fence_word, 0, memory_order_seq_cst);
#else
        atomic_thread_fence(memory_order_seq_cst);
#endif
    }
}

/* The other half: a process-wide barrier (membarrier) when the light barrier is only a compiler
 * barrier, else a sequentially consistent fence. With the light barrier between a thread's store
 * and its load of another word, and this between another thread's store to that word and its
 * load of the first, one of the two loads sees the other's store (a Dekker pair whose cost lies
 * on this side). Used by the waiters here and by the space's compaction against its calls. */
void baton__waitpoint_heavy_barrier(void);

/* Wakes waiters (all, or one) if there are any. Call after publishing the change they wait for. */
void baton__waitpoint_wake(baton__waitpoint *wp, bool all);

static inline void baton__waitpoint_notify(baton__waitpoint *wp, bool all)
{
    baton__waitpoint_light_barrier();
    if (atomic_load_explicit(&wp->waiters, memory_order_relaxed) != 0)
        baton__waitpoint_wake(wp, all);
}

/*
 * Waits until ready(arg) returns true or the deadline (baton__monotonic_ns() value; UINT64_MAX:
 * none) passes. ready is called many times and must be cheap and side-effect free. Returns 0 when
 * ready, BATON_ETIMEDOUT otherwise.
 */
int baton__waitpoint_wait(baton__waitpoint *wp, bool (*ready)(void *arg), void *arg,
                          uint64_t deadline_ns);

/*
 * baton__waitpoint_wait with `yields` yields (instead of the default 64) between spinning and
 * sleeping. A waiter whose partners are busy for long (a driver waiting for its executors to
 * finish a pass over memory) passes 0: each yield on a full machine takes a time slice from the
 * very threads it waits for.
 */
int baton__waitpoint_wait_yielding(baton__waitpoint *wp, bool (*ready)(void *arg), void *arg,
                                   uint64_t deadline_ns, int yields);

/* The deadline for a timeout from now, saturating (BATON_WAIT_FOREVER stays UINT64_MAX). */
uint64_t baton__deadline_after(uint64_t timeout_ns);

#endif /* BATON_CORE_WAITPOINT_H */
