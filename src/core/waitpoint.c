/*
 * waitpoint.c — the cold half of the waitpoint: announcing, sleeping and waking. See
 * waitpoint.h for the protocol.
 */
#include <limits.h>
#include <pthread.h>

#include "core/atomic.h"
#include "core/os.h"
#include "core/waitpoint.h"

/* Spin iterations (pause each) and yields before a waiter sleeps. The spin covers a partner that
 * is running on another core and about to publish; the yields cover one that is runnable on ours
 * (oversubscription), without the cost of a futex round trip or of the wake-up preemption that
 * follows it: with 3 threads on 2 cores, 4 yields gave mpsc2 4.2e7 items/s and 64 gave 4.9e7.
 * On an idle machine a yield returns at once, so the whole phase is a few tens of microseconds
 * before the waiter sleeps. */
#define BATON__WAIT_SPINS 128
#define BATON__WAIT_YIELDS 64

bool baton__waitpoint_asymmetric;
static pthread_once_t baton__waitpoint_once = PTHREAD_ONCE_INIT;

static void baton__waitpoint_decide(void)
{
    baton__waitpoint_asymmetric = baton__process_barrier_init();
}

void baton__waitpoint_global_init(void)
{
    /* pthread_once publishes the flag to every thread that calls this; threads that only get a
     * queue from such a thread see it through that hand-over. */
    pthread_once(&baton__waitpoint_once, baton__waitpoint_decide);
}

void baton__waitpoint_init(baton__waitpoint *wp)
{
    atomic_init(&wp->waiters, 0);
    atomic_init(&wp->epoch, 0);
    atomic_init(&wp->waking, 0);
}

uint64_t baton__deadline_after(uint64_t timeout_ns)
{
    if (timeout_ns == UINT64_MAX)
        return UINT64_MAX;
    uint64_t now = baton__monotonic_ns();
    return timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
}

void baton__waitpoint_wake(baton__waitpoint *wp, bool all)
{
    /* Relaxed: waking only saves system calls; the epoch protocol alone keeps wake-ups from
     * being lost (a waiter clears waking before it sleeps, so a sleeper is always woken by the
     * next notify). */
    if (!all && (baton__load_relaxed(&wp->waking) != 0 ||
                 atomic_exchange_explicit(&wp->waking, 1, memory_order_relaxed) != 0))
        return;
    /* Release pairs with the acquire load of epoch in the waiter: a waiter that reads the new
     * epoch has seen what the notifier published before it. */
    atomic_fetch_add_explicit(&wp->epoch, 1, memory_order_release);
    baton__futex_wake(&wp->epoch, all ? INT_MAX : 1);
}

/* A waiter is done waiting (woken, ready or timed out): it no longer counts, and it has run, so
 * a wake-one still marked on its way is not. */
static void baton__waitpoint_leave(baton__waitpoint *wp)
{
    baton__fetch_sub_relaxed(&wp->waiters, 1);
    baton__store_relaxed(&wp->waking, 0);
}

void baton__waitpoint_heavy_barrier(void)
{
    if (baton__waitpoint_asymmetric)
        baton__process_barrier();
    else
        baton__waitpoint_light_barrier(); /* the fence fallback: both sides fence */
}

int baton__waitpoint_wait(baton__waitpoint *wp, bool (*ready)(void *arg), void *arg,
                          uint64_t deadline_ns)
{
    return baton__waitpoint_wait_yielding(wp, ready, arg, deadline_ns, BATON__WAIT_YIELDS);
}

int baton__waitpoint_wait_yielding(baton__waitpoint *wp, bool (*ready)(void *arg), void *arg,
                                   uint64_t deadline_ns, int yields)
{
    for (int i = 0; i < BATON__WAIT_SPINS; i++) {
        if (ready(arg))
            return 0;
        baton__cpu_relax();
    }
    for (int i = 0; i < yields; i++) {
        if (ready(arg))
            return 0;
        baton__thread_yield();
    }
    for (;;) {
        /* seq_cst: the announcement must be ordered before the re-check below; the barrier that
         * follows makes the notifier's side of the pair (see waitpoint.h). */
        atomic_fetch_add_explicit(&wp->waiters, 1, memory_order_seq_cst);
        /* Acquire pairs with the release increment in baton__waitpoint_wake. */
        uint32_t epoch = atomic_load_explicit(&wp->epoch, memory_order_acquire);
        baton__waitpoint_heavy_barrier();
        if (ready(arg)) {
            baton__waitpoint_leave(wp);
            return 0;
        }
        uint64_t timeout = 0; /* 0: no limit for baton__futex_wait */
        if (deadline_ns != UINT64_MAX) {
            uint64_t now = baton__monotonic_ns();
            if (now >= deadline_ns) {
                baton__waitpoint_leave(wp);
                return BATON_ETIMEDOUT;
            }
            timeout = deadline_ns - now;
        }
        /* A wake-one sent before we read epoch was meant for someone who has run since (or for
         * us, and then the epoch differs and the wait returns at once): let the next notify wake
         * us. Relaxed: at worst a notify makes one system call too many. */
        baton__store_relaxed(&wp->waking, 0);
        baton__futex_wait(&wp->epoch, epoch, timeout);
        baton__waitpoint_leave(wp);
        if (ready(arg))
            return 0;
    }
}
