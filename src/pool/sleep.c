/*
 * sleep.c — how idle workers go to sleep and how new work wakes them, and waiting on latches.
 *
 * DESIGN
 * Each worker has a parker (core/park.h) and a `sleepy` flag; the pool counts sleepy workers in
 * n_sleepy. A worker that searched for its spin time (the configured spin_us, stretched up to
 * BATON__SPIN_STRETCH times while wake-ups keep coming soon after it parks) without finding work:
 *   1. sets sleepy = 1 and increments n_sleepy (seq_cst),
 *   2. re-checks every deque (the overflow slots' too), shutdown and the latch it waits for
 *      (seq_cst loads),
 *   3. parks only if all of that is still empty.
 * A thread that publishes work (a push) then reads n_sleepy and, if non-zero, claims one
 * sleepy worker by exchanging its flag from 1 to 0 and unparks it. Publishing is a store then a
 * load; going to sleep is a store then loads; all seq_cst where it matters, so (Dekker) either
 * the sleeper sees the work or the publisher sees the sleeper. The parker's token makes the
 * unpark count even when it lands before the park.
 *
 * One relaxation, the same rayon makes: publishing into the publisher's own deque is a release
 * store followed by the seq_cst load of n_sleepy, and in the C11 model the two can be reordered,
 * so a worker falling asleep at that instant may be missed. Nothing is lost: the publisher runs
 * its own deque's work itself (join and scope waits pop it back), and the next publication
 * wakes the sleeper. The cost would be a moment of lost parallelism, which is why publishing
 * does not pay for a full fence each time.
 *
 * At most one woken worker is on its way at a time (n_waking): publishers do not wake a second
 * one while it is, which keeps a burst of forks to one wake-up system call.
 *
 * A worker woken up that finds work wakes another sleeper if work remains visible (the chain of
 * Go's scheduler), so a burst of work recruits the pool one worker at a time, without a
 * thundering herd.
 *
 * Waiting on a latch (a join whose second half was stolen, a scope's tasks) runs other work
 * while the latch is unset; with nothing to run it parks after announcing SLEEPING on the latch,
 * and baton__latch_set unparks it. The same parker serves both, so a waiting worker also wakes
 * for new work and helps.
 *
 * The loop that searches, spins and then calls baton__sleep is pool.c's (baton__work_until,
 * beside baton__find_work): this file calls nothing in pool.c, so that finding and publishing
 * work can wake sleepers without the two files calling each other.
 */
#include "baton/core.h"
#include "core/atomic.h"
#include "pool/internal.h"

void baton__latch_set(baton__latch *latch)
{
    /* Read owner first: once the state is SET the waiter may return and its frame, which holds
     * the latch, may be gone. */
    baton__worker *owner = latch->owner;
    /* Release pairs with the acquire load in baton__latch_is_set. */
    if (baton__exchange_acq_rel(&latch->state, BATON__LATCH_SET) == BATON__LATCH_SLEEPING)
        baton__unpark(&owner->parker);
}

static bool baton__work_visible(baton_pool *pool)
{
    /* seq_cst loads here and in baton__deque_has_public: the re-check half of the sleep protocol,
     * ordered after the sleeper's seq_cst announcement (see DESIGN). */
    for (unsigned i = 0; i < pool->n_total; i++) {
        if (baton__deque_has_public(&pool->workers[i].deque))
            return true;
    }
    /* seq_cst pairs with the seq_cst CAS that adds a slot: a slot added after this load was
     * added after our announcement, so its holder's publications see us sleepy. */
    for (baton__worker *slot = baton__load_seq_cst(&pool->overflow); slot != NULL;
         slot = slot->overflow_next) {
        if (baton__deque_has_public(&slot->deque))
            return true;
    }
    return false;
}

/* Claims w if it is sleepy and unparks it; true if it did. */
static bool baton__try_wake(baton_pool *pool, baton__worker *w)
{
    if (baton__load_relaxed(&w->sleepy) == 0)
        return false;
    /* Count the wake-up before claiming, so that the woken worker's decrement can never come
     * first. */
    baton__fetch_add_seq_cst(&pool->n_waking, 1);
    /* acq_rel: claims this sleeper against other wakers; pairs with the sleeper's seq_cst store
     * of sleepy. */
    if (baton__exchange_acq_rel(&w->sleepy, 0) == 1) {
        baton__unpark(&w->parker);
        return true;
    }
    /* Not claimed after all: undo the count (seq_cst like the increment). */
    baton__fetch_sub_seq_cst(&pool->n_waking, 1);
    return false;
}

/* Wakes one sleepy worker if there is one and no other is already on its way. */
static void baton__wake_one(baton_pool *pool)
{
    /* seq_cst: pairs with the waking worker's seq_cst decrement before it re-checks for work in
     * baton__sleep; if we see it still on its way, it will see what we published. */
    if (baton__load_seq_cst(&pool->n_waking) != 0)
        return;
    unsigned n = pool->n_total;
    unsigned start = baton__fetch_add_relaxed(&pool->wake_cursor, 1) % n;
    for (unsigned k = 0; k < n; k++) {
        if (baton__try_wake(pool, &pool->workers[(start + k) % n]))
            return;
    }
    /* Holders of slots made on demand, waiting in their calls, help too. Acquire pairs with
     * the CAS that added the slot. */
    for (baton__worker *slot = baton__load_acquire(&pool->overflow); slot != NULL;
         slot = slot->overflow_next) {
        if (baton__try_wake(pool, slot))
            return;
    }
}

void baton__notify_work(baton_pool *pool)
{
    /* seq_cst pairs with the sleeper's seq_cst increment (see the DESIGN note on pushes). */
    if (baton__load_seq_cst(&pool->n_sleepy) != 0)
        baton__wake_one(pool);
}

/* A woken worker is going back to sleep, or found work: it is no longer on its way. */
static void baton__waking_done(baton__worker *w)
{
    if (w->waking) {
        w->waking = false;
        /* seq_cst: see baton__wake_one. */
        baton__fetch_sub_seq_cst(&w->pool->n_waking, 1);
    }
}

void baton__waking_pass_on(baton__worker *w)
{
    if (!w->waking)
        return;
    baton__waking_done(w);
    baton_pool *pool = w->pool;
    if (baton__work_visible(pool))
        baton__notify_work(pool);
}

void baton__sleep(baton__worker *w, baton__latch *latch)
{
    baton_pool *pool = w->pool;
    /* Woken for work and found none: no longer on the way. */
    baton__waking_done(w);
    /* seq_cst: these two stores must precede, in the single total order, the re-check loads
     * below; a publisher's seq_cst load of n_sleepy then either sees us or we see its work. */
    baton__store_seq_cst(&w->sleepy, 1);
    baton__fetch_add_seq_cst(&pool->n_sleepy, 1);

    bool announced_on_latch = false;
    if (latch != NULL) {
        uint32_t expected = BATON__LATCH_UNSET;
        /* seq_cst pairs with the setter's exchange: either it sees SLEEPING and unparks us, or
         * we see SET here. */
        announced_on_latch = atomic_compare_exchange_strong_explicit(
            &latch->state, &expected, BATON__LATCH_SLEEPING, memory_order_seq_cst,
            memory_order_acquire);
    }

    /* seq_cst load of shutdown pairs with the seq_cst store in baton__pool_stop_threads. */
    bool stay_awake = (latch != NULL && !announced_on_latch) ||
                      baton__load_seq_cst(&pool->shutdown) != 0 || baton__work_visible(pool);
    if (!stay_awake) {
        baton__owner_increment(&w->parks);
        uint64_t parked_at = baton__monotonic_ns();
        baton__park(&w->parker);
        /* Adaptive search time: parking pays a wake-up (a system call for the waker and several
         * microseconds before this thread runs again). Work that comes back sooner than the
         * longest search we allow is periodic (a loop of ticks, a stream of small calls), so
         * search twice as long next time; a long sleep means the pool really is idle, so go
         * back to the configured time. An idle pool thus costs at most one stretched search
         * after each burst of work. */
        uint64_t slept = baton__monotonic_ns() - parked_at;
        if (slept < pool->max_spin_ns)
            w->spin_ns = w->spin_ns * 2 < pool->max_spin_ns ? w->spin_ns * 2 : pool->max_spin_ns;
        else
            w->spin_ns = pool->spin_ns;
    }

    /* Withdraw. sleepy already 0 means a waker claimed us and counted us in n_waking. */
    if (baton__exchange_acq_rel(&w->sleepy, 0) == 0)
        w->waking = true;
    baton__fetch_sub_relaxed(&pool->n_sleepy, 1);
    if (announced_on_latch) {
        uint32_t expected = BATON__LATCH_SLEEPING;
        /* If the setter already turned it to SET, leave it; acquire pairs with its release. */
        atomic_compare_exchange_strong_explicit(&latch->state, &expected, BATON__LATCH_UNSET,
                                                memory_order_acquire, memory_order_acquire);
    }
}
