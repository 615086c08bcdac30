/*
 * drain.c — baton_workqueue_drain_parallel: receive, process on the pool, deliver in order.
 *
 * DESIGN
 *  - The calling thread becomes a worker of the pool (baton__call: an external slot, or itself
 *    when it already is one) and is the dispatcher: it alone receives, numbering items 0, 1, 2...
 *    in the order they were sent.
 *  - A window of slots, slot s & mask for item s, holds each accepted item until it is
 *    delivered: the item, its result, its status, and a job header. The window is allocated once
 *    per drain; nothing is allocated per item. The dispatcher takes a new item only when its slot
 *    is free, so memory stays bounded however slow one item is.
 *  - The dispatcher receives items in batches and publishes each batch as one range job on its
 *    deque. A range job splits itself in halves while the pool has idle workers (lazy binary
 *    splitting, using the slot of the midpoint as the new job's header), so a batch spreads over
 *    the pool when that pays and stays one job when it does not.
 *  - In-order delivery goes through a token (oneTBB's serial_in_order filter): a worker that
 *    finished a range takes the token if it is free, delivers every finished item from the next
 *    undelivered one on, and gives the token back; then it looks once more, because an item may
 *    have finished between its last look and the give-back. A worker that finds the token taken
 *    just leaves: nobody ever waits for it. Taking and giving back are exchanges (acq_rel), so the
 *    giver sees every result stored by a worker that failed to take it.
 *  - Stopping. The first error (lowest sequence number) wins stop_seq. Items after it that have
 *    not started are not processed; items before it still are, and are delivered, so in order
 *    mode what gets delivered does not depend on timing. The dispatcher stops receiving, waits
 *    for the jobs in flight, and hands every accepted, undelivered item to ops->undelivered.
 *  - Waiting. Whenever the dispatcher would wait (window full, queue empty, end), it first runs
 *    jobs of the pool; only when there are none does it sleep, on the drain's waitpoint or on the
 *    receiver's. So the drain also works from inside a task of the pool, on a pool of one.
 */
#include <stddef.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/os.h"
#include "core/waitpoint.h"
#include "pool/sched.h"
#include "queue/workqueue.h"

/* Items received and published as one job, at most. */
#define BATON__DRAIN_BATCH 256
/* The smallest piece a range job splits off (see range_exec). */
#ifndef BATON__DRAIN_MIN_SPLIT
#define BATON__DRAIN_MIN_SPLIT 8
#endif
/* How often a dispatcher waiting while items are in flight looks for jobs to help with. */
#define BATON__DRAIN_HELP_POLL_NS 1000000u
/* The window when ops->window is 0: 256 per worker, at least 1024. A small window makes the
 * dispatcher wait for room often, and each wait costs a sleep and a wake-up. */
#define BATON__DRAIN_WINDOW_PER_WORKER 256
#define BATON__DRAIN_WINDOW_MIN 1024

enum {
    BATON__SLOT_FREE = 0,    /* not in use (delivered, or never used) */
    BATON__SLOT_PENDING = 1, /* accepted, not finished */
    BATON__SLOT_DONE = 2,    /* processed, ready to deliver */
    BATON__SLOT_FAILED = 3,  /* process or deliver failed: status says how */
    BATON__SLOT_SKIPPED = 4, /* not processed because the drain stopped */
};

typedef struct baton__drain baton__drain;

typedef struct baton__drain_slot {
    baton__job job;     /* when this slot starts a range job */
    baton__drain *drain;
    uint64_t seq;
    uint64_t range_end; /* the range job's end (one past its last seq) */
    void *item;
    void *result;
    int status; /* process's or deliver's error; 0 */
    _Atomic uint32_t state;
} baton__drain_slot;

struct baton__drain {
    baton_workqueue_receiver *receiver;
    baton_pool *pool;
    const _Atomic uint32_t *idle_workers; /* the pool's (baton__pool_idle_workers) */
    baton_drain_ops ops;
    void *ctx;
    bool ordered;
    baton__drain_slot *slots;
    uint64_t mask;
    uint64_t accepted; /* the dispatcher's */

    /* Ordered: the next seq to deliver (written by the token holder). Unordered: how many were
     * delivered. The dispatcher reads it to know which slots are free. */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t delivered;
    _Atomic uint32_t deliver_token;
    BATON_CACHELINE_ALIGNED _Atomic uint64_t stop_seq; /* UINT64_MAX while running */
    /* Range jobs not finished; a futex word. The job whose decrement takes it to zero may be the
     * last thing to touch the drain (which lives on the dispatcher's stack), so after it only a
     * futex wake follows, which reads no memory. At most the window's size, so 32 bits. */
    _Atomic uint32_t jobs;
    _Atomic uint64_t processed;
    baton__waitpoint progress; /* the dispatcher waits here for delivery and job ends */
};

static baton__drain_slot *baton__drain_slot_of(baton__drain *d, uint64_t seq)
{
    return &d->slots[seq & d->mask];
}

/* A quarter of the window: how much room the dispatcher waits for. */
static uint64_t baton__drain_quarter(const baton__drain *d)
{
    uint64_t quarter = (d->mask + 1) / 4;
    return quarter != 0 ? quarter : 1;
}

static bool baton__drain_stopped(baton__drain *d)
{
    return baton__load_relaxed(&d->stop_seq) != UINT64_MAX;
}

/* Lowers stop_seq to seq and wakes the dispatcher wherever it sleeps. */
static void baton__drain_stop_at(baton__drain *d, uint64_t seq)
{
    uint64_t cur = baton__load_relaxed(&d->stop_seq);
    /* Relaxed: stop_seq only steers; the results it refers to are read after the jobs end,
     * which the jobs counter orders. */
    while (seq < cur && !atomic_compare_exchange_weak_explicit(&d->stop_seq, &cur, seq,
                                                                memory_order_relaxed,
                                                                memory_order_relaxed)) {
    }
    baton__waitpoint_notify(&d->progress, true);
    baton__waitpoint_notify(baton__workqueue_recv_waitpoint(d->receiver), true);
}

/* Delivers, in order, every finished item from the next undelivered one on; see DESIGN. */
static void baton__drain_deliver_ready(baton__drain *d)
{
    /* acq_rel: acquire sees what the previous holder and every worker that failed to take the
     * token stored before their exchange; release hands ours on. */
    while (baton__exchange_acq_rel(&d->deliver_token, 1) == 0) {
        uint64_t next = baton__load_relaxed(&d->delivered);
        uint64_t start = next;
        for (;;) {
            if (next >= baton__load_relaxed(&d->stop_seq))
                break;
            baton__drain_slot *slot = baton__drain_slot_of(d, next);
            /* Acquire pairs with the release store of DONE by the worker that processed it. */
            if (baton__load_acquire(&slot->state) != BATON__SLOT_DONE)
                break;
            if (d->ops.deliver != NULL) {
                int rc = d->ops.deliver(d->ctx, next, slot->item, slot->result);
                if (rc != 0) {
                    slot->status = rc;
                    baton__store_relaxed(&slot->state, BATON__SLOT_FAILED);
                    baton__drain_stop_at(d, next);
                    break;
                }
            }
            baton__store_relaxed(&slot->state, BATON__SLOT_FREE);
            next++;
        }
        if (next != start) {
            /* Release pairs with the dispatcher's acquire load: the slots below are free. */
            baton__store_release(&d->delivered, next);
            /* The dispatcher waits for a quarter of the window to free up (see WAIT_ROOM); a
             * notify each time delivery crosses a multiple of a quarter reaches it at most one
             * quarter late, without a wake-up per item. */
            uint64_t quarter = baton__drain_quarter(d);
            if (next / quarter != start / quarter)
                baton__waitpoint_notify(&d->progress, false);
        }
        baton__exchange_acq_rel(&d->deliver_token, 0);
        /* Look once more: an item that finished after our last look found the token taken. Only
         * the state may be read here: without the token, the slot may be delivered and reused
         * under our feet (then the loop above finds out, holding the token again). */
        if (next >= baton__load_relaxed(&d->stop_seq))
            break;
        if (baton__load_acquire(&baton__drain_slot_of(d, next)->state) != BATON__SLOT_DONE)
            break;
    }
}

static void baton__drain_range_exec(baton__job *job, baton__worker *w);

/* Makes slots [begin, end) one job on w's deque, or runs it here if the deque cannot grow. */
static void baton__drain_push_range(baton__drain *d, baton__worker *w, uint64_t begin,
                                    uint64_t end)
{
    baton__drain_slot *first = baton__drain_slot_of(d, begin);
    first->job.exec = baton__drain_range_exec;
    first->range_end = end;
    /* Relaxed: the count is read with acquire only once it reaches zero, after every job's
     * release decrement. */
    baton__fetch_add_relaxed(&d->jobs, 1);
    if (baton__publish_job(w, &first->job) != 0)
        baton__execute(w, &first->job);
}

/* What became of one item; the slot may belong to a later item as soon as it is FREE or
 * delivered, so the range job learns the outcome from here and not from the slot. */
enum { BATON__ITEM_SKIPPED, BATON__ITEM_FAILED, BATON__ITEM_PROCESSED, BATON__ITEM_DELIVERED };

/* Runs one item: processes it unless the drain stopped before it; unordered, delivers it. */
static int baton__drain_run_item(baton__drain *d, baton__drain_slot *slot)
{
    uint64_t seq = slot->seq;
    if (seq > baton__load_relaxed(&d->stop_seq)) {
        slot->status = BATON_ECANCELED;
        slot->result = NULL;
        /* Release pairs with the acquire loads of state (delivery, final accounting). */
        baton__store_release(&slot->state, BATON__SLOT_SKIPPED);
        return BATON__ITEM_SKIPPED;
    }
    slot->result = NULL;
    int rc = d->ops.process(d->ctx, slot->item, &slot->result);
    if (rc != 0) {
        slot->status = rc;
        /* Release: as below. A failed slot is never freed before the drain ends. */
        baton__store_release(&slot->state, BATON__SLOT_FAILED);
        baton__drain_stop_at(d, seq);
        return BATON__ITEM_FAILED;
    }
    if (d->ordered) {
        slot->status = 0;
        /* Release pairs with the deliverer's acquire load of state. */
        baton__store_release(&slot->state, BATON__SLOT_DONE);
        return BATON__ITEM_PROCESSED;
    }
    rc = d->ops.deliver != NULL ? d->ops.deliver(d->ctx, seq, slot->item, slot->result) : 0;
    slot->status = rc;
    if (rc != 0) {
        baton__store_release(&slot->state, BATON__SLOT_FAILED);
        baton__drain_stop_at(d, seq);
        return BATON__ITEM_PROCESSED;
    }
    /* Release pairs with the dispatcher's acquire load of state: the slot is free again. */
    baton__store_release(&slot->state, BATON__SLOT_FREE);
    baton__waitpoint_notify(&d->progress, false);
    return BATON__ITEM_DELIVERED;
}

static void baton__drain_range_exec(baton__job *job, baton__worker *w)
{
    baton__drain_slot *first =
        (baton__drain_slot *)(void *)((char *)job - offsetof(baton__drain_slot, job));
    baton__drain *d = first->drain;
    uint64_t seq = first->seq;
    uint64_t end = first->range_end;
    uint64_t processed = 0, delivered = 0;
    while (seq < end) {
        /* Split off the upper half while some worker is idle and could take it, down to pieces
         * of BATON__DRAIN_MIN_SPLIT items: every split may cost a wake-up. */
        while (end - seq >= 2 * BATON__DRAIN_MIN_SPLIT &&
               baton__load_relaxed(d->idle_workers) != 0) {
            uint64_t mid = seq + (end - seq) / 2;
            baton__drain_push_range(d, w, mid, end);
            end = mid;
        }
        int outcome = baton__drain_run_item(d, baton__drain_slot_of(d, seq));
        processed += outcome >= BATON__ITEM_PROCESSED;
        delivered += outcome == BATON__ITEM_DELIVERED;
        seq++;
    }
    if (processed != 0)
        baton__fetch_add_relaxed(&d->processed, processed);
    if (d->ordered)
        baton__drain_deliver_ready(d);
    else if (delivered != 0)
        baton__fetch_add_relaxed(&d->delivered, delivered);
    /* acq_rel: the last decrement is acquired by the dispatcher's wait for zero, which then sees
     * every slot this job wrote. After it, d may be gone: nothing but the wake-up (see jobs). */
    if (baton__fetch_sub_acq_rel(&d->jobs, 1) == 1)
        baton__futex_wake(&d->jobs, 1);
}

/* How many items the dispatcher may accept now (at most `want`). */
static uint64_t baton__drain_room(baton__drain *d, uint64_t want)
{
    uint64_t window = d->mask + 1;
    if (d->ordered) {
        /* Acquire pairs with the deliverer's release store of delivered: those slots are free. */
        uint64_t in_flight = d->accepted - baton__load_acquire(&d->delivered);
        uint64_t room = window - in_flight;
        return room < want ? room : want;
    }
    /* Unordered: slots free up in any order; take the run of free ones from accepted on. */
    uint64_t k = 0;
    while (k < want && k < window &&
           baton__load_acquire(&baton__drain_slot_of(d, d->accepted + k)->state) ==
               BATON__SLOT_FREE) /* acquire pairs with the release store of FREE */
        k++;
    return k;
}

typedef struct baton__drain_wait {
    baton__drain *d;
    enum { BATON__WAIT_ROOM, BATON__WAIT_ITEMS, BATON__WAIT_JOBS } what;
} baton__drain_wait;

static bool baton__drain_wait_ready(void *arg)
{
    baton__drain_wait *wait = arg;
    baton__drain *d = wait->d;
    switch (wait->what) {
    case BATON__WAIT_ROOM: {
        /* Wait for a quarter of the window (or for the end), not for one slot: a dispatcher
         * woken for every delivered item would pay a wake-up per item. */
        uint64_t quarter = baton__drain_quarter(d);
        return baton__drain_stopped(d) || baton__drain_room(d, quarter) == quarter ||
               baton__load_acquire(&d->jobs) == 0;
    }
    case BATON__WAIT_ITEMS:
        return baton__drain_stopped(d) || baton__workqueue_can_recv(d->receiver);
    case BATON__WAIT_JOBS:
    default:
        /* Acquire pairs with the jobs' acq_rel decrements. */
        return baton__load_acquire(&d->jobs) == 0;
    }
}

/* Waits for `what`, running jobs of the pool meanwhile; sleeps only when there are none. */
static void baton__drain_wait_for(baton__drain *d, baton__worker *w, int what)
{
    baton__drain_wait wait = {d, what};
    while (!baton__drain_wait_ready(&wait)) {
        baton__job *job = baton__find_work(w);
        if (job != NULL) {
            baton__execute(w, job);
            continue;
        }
        /* Every job of ours is on some worker now: sleep until one reports. While items are in
         * flight, wake up now and then to help with jobs split onto other deques; an empty queue
         * with nothing in flight sleeps until a sender or the drain's own stop wakes it. */
        uint64_t help_deadline = baton__deadline_after(BATON__DRAIN_HELP_POLL_NS);
        switch (what) {
        case BATON__WAIT_JOBS: {
            /* Every decrement changes the word, so a stale count returns at once, and the one
             * that reaches zero wakes us (see jobs). Acquire pairs with the decrements. */
            uint32_t jobs = baton__load_acquire(&d->jobs);
            if (jobs != 0)
                baton__futex_wait(&d->jobs, jobs, BATON__DRAIN_HELP_POLL_NS);
            break;
        }
        case BATON__WAIT_ITEMS:
            baton__waitpoint_wait(baton__workqueue_recv_waitpoint(d->receiver),
                                  baton__drain_wait_ready, &wait,
                                  baton__load_relaxed(&d->jobs) == 0 ? UINT64_MAX
                                                                     : help_deadline);
            break;
        default:
            baton__waitpoint_wait(&d->progress, baton__drain_wait_ready, &wait, help_deadline);
            break;
        }
    }
}

/* The dispatcher, running as worker w of the pool. */
static int baton__drain_body(baton__worker *w, void *arg)
{
    baton__drain *d = arg;
    void *items[BATON__DRAIN_BATCH];
    while (!baton__drain_stopped(d)) {
        uint64_t room = baton__drain_room(d, BATON__DRAIN_BATCH);
        if (room == 0) {
            baton__drain_wait_for(d, w, BATON__WAIT_ROOM);
            continue;
        }
        size_t got = 0;
        int rc = baton_workqueue_recv_n(d->receiver, items, (size_t)room, &got);
        if (rc == BATON_EEOF)
            break;
        if (rc == BATON_EAGAIN) {
            baton__drain_wait_for(d, w, BATON__WAIT_ITEMS);
            continue;
        }
        uint64_t begin = d->accepted;
        for (size_t i = 0; i < got; i++) {
            baton__drain_slot *slot = baton__drain_slot_of(d, begin + i);
            slot->seq = begin + i;
            slot->item = items[i];
            slot->result = NULL;
            slot->status = 0;
            baton__store_relaxed(&slot->state, BATON__SLOT_PENDING);
        }
        d->accepted = begin + got;
        /* The deque push publishes the slots to whoever takes the job. */
        baton__drain_push_range(d, w, begin, begin + got);
    }
    baton__drain_wait_for(d, w, BATON__WAIT_JOBS);
    if (d->ordered)
        baton__drain_deliver_ready(d);
    return 0;
}

/* Hands every accepted, undelivered item to ops->undelivered, in seq order. */
static uint64_t baton__drain_account(baton__drain *d)
{
    uint64_t window = d->mask + 1;
    uint64_t from = d->accepted > window ? d->accepted - window : 0;
    uint64_t undelivered = 0;
    for (uint64_t seq = from; seq < d->accepted; seq++) {
        baton__drain_slot *slot = baton__drain_slot_of(d, seq);
        uint32_t state = baton__load_acquire(&slot->state); /* pairs with the jobs' releases */
        if (state == BATON__SLOT_FREE)
            continue;
        undelivered++;
        if (d->ops.undelivered != NULL)
            d->ops.undelivered(d->ctx, seq, slot->item, slot->result, slot->status);
        baton__store_relaxed(&slot->state, BATON__SLOT_FREE);
    }
    return undelivered;
}

static int baton__drain_check(const baton_workqueue_receiver *receiver, const baton_pool *pool,
                              const baton_drain_ops *ops, baton_drain_ops *copy)
{
    const char *fn = "baton_workqueue_drain_parallel";
    if (receiver == NULL || pool == NULL || ops == NULL)
        return baton__error(BATON_EINVAL, "%s: %s is NULL", fn,
                            receiver == NULL ? "receiver" : pool == NULL ? "pool" : "ops");
    int rc = baton__config_copy(fn, "ops", "baton_drain_ops", ops, copy, sizeof *copy);
    if (rc != 0)
        return rc;
    if (copy->process == NULL)
        return baton__error(BATON_EINVAL, "%s: ops->process is NULL", fn);
    if ((copy->flags & ~(unsigned)BATON_DRAIN_UNORDERED) != 0)
        return baton__error(BATON_EINVAL, "%s: unknown flags 0x%x", fn,
                            copy->flags & ~(unsigned)BATON_DRAIN_UNORDERED);
    if (copy->window > BATON_DRAIN_MAX_WINDOW)
        return baton__error(BATON_EINVAL, "%s: window %zu is above %llu", fn, copy->window,
                            (unsigned long long)BATON_DRAIN_MAX_WINDOW);
    return 0;
}

int baton_workqueue_drain_parallel(baton_workqueue_receiver *receiver, baton_pool *pool,
                                   const baton_drain_ops *ops, void *ctx,
                                   baton_drain_report *report)
{
    baton__drain d;
    memset(&d, 0, sizeof d);
    int rc = baton__drain_check(receiver, pool, ops, &d.ops);
    if (rc != 0)
        return rc;
    uint64_t want = (uint64_t)BATON__DRAIN_WINDOW_PER_WORKER * baton_pool_workers(pool);
    if (want < BATON__DRAIN_WINDOW_MIN)
        want = BATON__DRAIN_WINDOW_MIN;
    if (d.ops.window != 0)
        want = d.ops.window;
    uint64_t window = 1;
    while (window < want)
        window <<= 1;
    if (window > BATON_DRAIN_MAX_WINDOW)
        window = BATON_DRAIN_MAX_WINDOW;
    rc = baton__workqueue_drain_begin(receiver);
    if (rc != 0)
        return rc;
    d.slots = baton__aligned_alloc(BATON_CACHELINE, (size_t)window * sizeof *d.slots);
    if (d.slots == NULL) {
        baton__workqueue_drain_end(receiver);
        return baton__error(BATON_ENOMEM, "baton_workqueue_drain_parallel: no memory for a "
                            "window of %llu", (unsigned long long)window);
    }
    for (uint64_t i = 0; i < window; i++) {
        d.slots[i].drain = &d;
        atomic_init(&d.slots[i].state, BATON__SLOT_FREE);
    }
    d.receiver = receiver;
    d.pool = pool;
    d.idle_workers = baton__pool_idle_workers(pool);
    d.ctx = ctx;
    d.ordered = (d.ops.flags & BATON_DRAIN_UNORDERED) == 0;
    d.mask = window - 1;
    atomic_init(&d.delivered, 0);
    atomic_init(&d.deliver_token, 0);
    atomic_init(&d.stop_seq, UINT64_MAX);
    atomic_init(&d.jobs, 0);
    atomic_init(&d.processed, 0);
    baton__waitpoint_global_init();
    baton__waitpoint_init(&d.progress);

    rc = baton__call(pool, baton__drain_body, &d);
    /* A closed pool ran nothing: nothing was accepted either. */
    uint64_t stop = baton__load_relaxed(&d.stop_seq);
    uint64_t undelivered = baton__drain_account(&d);
    if (rc == 0 && stop != UINT64_MAX) {
        rc = baton__drain_slot_of(&d, stop)->status;
        if (rc == 0) /* cannot happen: a stop always records its error */
            rc = BATON_ECANCELED;
    }
    if (report != NULL) {
        report->accepted = d.accepted;
        report->undelivered = undelivered;
        report->delivered = d.accepted - undelivered;
        report->processed = baton__load_relaxed(&d.processed);
        report->failed_seq = stop;
    }
    baton__free(d.slots);
    baton__workqueue_drain_end(receiver);
    if (rc != 0 && stop != UINT64_MAX && baton__is_error_code(rc))
        return baton__error(rc, "baton_workqueue_drain_parallel: item %llu failed with %s",
                            (unsigned long long)stop, baton_err_name(rc));
    if (rc != 0 && stop != UINT64_MAX)
        return baton__error(rc, "baton_workqueue_drain_parallel: item %llu failed with %d (a "
                            "code of the callback's own)", (unsigned long long)stop, rc);
    return rc;
}
