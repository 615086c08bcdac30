/*
 * baton/queue.h — the queue layer: bounded lock-free rings (SPSC, MPSC, MPMC), an unbounded
 * linked MPSC queue, the work queue (single-producer sender by default), its parallel drain on a
 * pool, and the reorder buffer that gives results back in submission order.
 *
 * Items. The rings carry pointer-sized values (void *): the queue never dereferences, copies or
 * frees what they point to, so an item may be a pointer to a struct of any size, or an integer
 * cast to a pointer (NULL is an item like any other). The linked MPSC queue is intrusive: the
 * caller embeds a baton_mpsc_node in its own struct, so a push never allocates and never fails
 * for lack of room.
 *
 * Capacity. A bounded ring holds exactly `capacity` items, rounded up to a power of two (so that a
 * position maps to a slot with a mask). Positions are 64-bit counters that wrap modulo 2^64; a
 * ring outlives any realistic number of pushes.
 *
 * Calls. Every ring has the same set of calls, with the prefix of its kind:
 *   try_push / try_pop      never wait: 0, or BATON_EAGAIN (full / empty)
 *   push_n / pop_n          move up to n items in one call (one index update on SPSC and MPSC)
 *   push / pop              wait up to timeout_ns (BATON_WAIT_FOREVER: no limit) for room or an
 *                           item: a short bounded spin, a few yields, then a futex wait. Waiting
 *                           costs no CPU; a push or pop wakes a waiter of the other side, and
 *                           close wakes every waiter.
 *   close                   the end of the stream: pushes after it fail with BATON_ECLOSED; pops
 *                           go on returning what is left, then BATON_EEOF.
 * Close belongs to the producing side's program order: the items whose push returned 0 before
 * close was called are all delivered before BATON_EEOF. A push that runs concurrently with close
 * is a race in the caller (as in Go, where it is a panic): it may be refused, or accepted and
 * then never popped. Close once every producer has made its last push (the work queue below does
 * that for you: its shutdown is the last sender's close).
 *
 * Memory ordering: whatever a producer wrote before pushing an item is visible to the consumer
 * that pops it (release on publish, acquire on take).
 *
 * Waiting and the fast path. A push must learn whether a consumer sleeps, which normally costs a
 * full memory fence per operation. baton puts that cost on the waiter instead: a thread about to
 * sleep issues a process-wide barrier (Linux membarrier), and the fast path needs only a compiler
 * barrier and one load of a line that stays in its cache. Where membarrier is not available, the
 * fast path falls back to a fence.
 */
#ifndef BATON_QUEUE_H
#define BATON_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/core.h"
#include "baton/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* timeout_ns for the waiting calls: wait as long as it takes. */
#define BATON_WAIT_FOREVER UINT64_MAX

/* Largest capacity a bounded ring accepts (after rounding up to a power of two). */
#define BATON_QUEUE_MAX_CAPACITY (UINT64_C(1) << 31)

/* ---------------------------------------------------------------------------------------------
 * SPSC ring: one producer thread and one consumer thread at a time (either role may move to
 * another thread between calls, if the move itself is synchronised). The producer and consumer
 * each keep a cached copy of the other side's index, so in steady state a push or pop touches
 * the other side's cache line only when its cached view runs out.
 */
typedef struct baton_spsc baton_spsc;

/*
 * Creates a ring that holds `capacity` items (rounded up to a power of two). Stores it in *out and
 * returns 0; the caller destroys it with baton_spsc_destroy(). Errors: BATON_EINVAL (NULL out,
 * capacity 0 or above BATON_QUEUE_MAX_CAPACITY), BATON_ENOMEM.
 */
BATON_API int baton_spsc_create(size_t capacity, baton_spsc **out);

/* Frees the ring. Items still inside are dropped without being touched. No thread may be using
 * or waiting on the ring. NULL is ignored. */
BATON_API void baton_spsc_destroy(baton_spsc *q);

/* The capacity after rounding. Thread-safe. */
BATON_API size_t baton_spsc_capacity(const baton_spsc *q);

/* Items in the ring at some instant during the call (exact when neither side is active).
 * Thread-safe. */
BATON_API size_t baton_spsc_size(const baton_spsc *q);

/* Producer. Returns 0, BATON_EAGAIN when full, BATON_ECLOSED after close. */
BATON_API int baton_spsc_try_push(baton_spsc *q, void *item);

/* Producer. Pushes the first k of n items, k as many as fit, and stores k in *pushed (may be
 * NULL). Returns BATON_ECLOSED after close (whatever n), else 0 when k >= 1 or n == 0, else
 * BATON_EAGAIN (full, k == 0). BATON_EINVAL when items is NULL and n > 0. */
BATON_API int baton_spsc_push_n(baton_spsc *q, void *const *items, size_t n, size_t *pushed);

/* Producer. Waits up to timeout_ns for room. Returns 0, BATON_ETIMEDOUT, BATON_ECLOSED. */
BATON_API int baton_spsc_push(baton_spsc *q, void *item, uint64_t timeout_ns);

/* Consumer. Returns 0 with the item in *item, BATON_EAGAIN when empty, BATON_EEOF when closed
 * and empty. */
BATON_API int baton_spsc_try_pop(baton_spsc *q, void **item);

/* Consumer. Pops up to max items into items[] and stores their number in *popped (may be NULL).
 * Returns 0 when at least one was popped or max == 0, else BATON_EAGAIN or BATON_EEOF.
 * BATON_EINVAL when items is NULL and max > 0 (the single-item pops: when item is NULL). */
BATON_API int baton_spsc_pop_n(baton_spsc *q, void **items, size_t max, size_t *popped);

/* Consumer. Waits up to timeout_ns for an item. Returns 0, BATON_ETIMEDOUT, BATON_EEOF. */
BATON_API int baton_spsc_pop(baton_spsc *q, void **item, uint64_t timeout_ns);

/* Ends the stream (see the top of this file) and wakes every waiter. Idempotent; any thread. */
BATON_API void baton_spsc_close(baton_spsc *q);

/* ---------------------------------------------------------------------------------------------
 * Bounded MPSC ring: any number of producer threads, one consumer at a time. Each slot carries
 * a sequence number (Vyukov's bounded queue): producers claim a position with one CAS on the
 * tail and publish the slot by storing its sequence, so a slow producer delays only the
 * consumer's view of its own slot, and the single consumer needs no atomic read-modify-write at
 * all. The calls mean what they mean for the SPSC ring; push_n claims up to n positions with one
 * CAS.
 */
typedef struct baton_mpsc baton_mpsc;

BATON_API int baton_mpsc_create(size_t capacity, baton_mpsc **out);
BATON_API void baton_mpsc_destroy(baton_mpsc *q);
BATON_API size_t baton_mpsc_capacity(const baton_mpsc *q);
BATON_API size_t baton_mpsc_size(const baton_mpsc *q);
BATON_API int baton_mpsc_try_push(baton_mpsc *q, void *item);
BATON_API int baton_mpsc_push_n(baton_mpsc *q, void *const *items, size_t n, size_t *pushed);
BATON_API int baton_mpsc_push(baton_mpsc *q, void *item, uint64_t timeout_ns);
BATON_API int baton_mpsc_try_pop(baton_mpsc *q, void **item);
BATON_API int baton_mpsc_pop_n(baton_mpsc *q, void **items, size_t max, size_t *popped);
BATON_API int baton_mpsc_pop(baton_mpsc *q, void **item, uint64_t timeout_ns);
BATON_API void baton_mpsc_close(baton_mpsc *q);

/* ---------------------------------------------------------------------------------------------
 * Bounded MPMC ring: any number of producers and consumers (Vyukov's bounded queue, a sequence
 * per slot; the same design as crossbeam's ArrayQueue). push_n and pop_n claim one position at
 * a time, since consumers free slots out of order; they save calls, not atomics.
 */
typedef struct baton_mpmc baton_mpmc;

BATON_API int baton_mpmc_create(size_t capacity, baton_mpmc **out);
BATON_API void baton_mpmc_destroy(baton_mpmc *q);
BATON_API size_t baton_mpmc_capacity(const baton_mpmc *q);
BATON_API size_t baton_mpmc_size(const baton_mpmc *q);
BATON_API int baton_mpmc_try_push(baton_mpmc *q, void *item);
BATON_API int baton_mpmc_push_n(baton_mpmc *q, void *const *items, size_t n, size_t *pushed);
BATON_API int baton_mpmc_push(baton_mpmc *q, void *item, uint64_t timeout_ns);
BATON_API int baton_mpmc_try_pop(baton_mpmc *q, void **item);
BATON_API int baton_mpmc_pop_n(baton_mpmc *q, void **items, size_t max, size_t *popped);
BATON_API int baton_mpmc_pop(baton_mpmc *q, void **item, uint64_t timeout_ns);
BATON_API void baton_mpmc_close(baton_mpmc *q);

/* ---------------------------------------------------------------------------------------------
 * Unbounded linked MPSC queue, intrusive: for producers that must never wait or fail for lack of
 * room. A push is one atomic exchange on the tail (wait-free, as liburcu's wfcqueue); the single
 * consumer walks the links. A producer preempted between its exchange and its link makes the
 * consumer wait for that one node (try_pop returns BATON_EAGAIN meanwhile); nothing is lost.
 *
 * The node belongs to the caller: it must stay valid and untouched from the push until it is
 * popped. Embed it in your item and recover the item from the node's address (offsetof).
 */
typedef struct baton_mpsc_node {
    struct baton_mpsc_node *_Atomic next;
} baton_mpsc_node;

typedef struct baton_mpsc_linked baton_mpsc_linked;

/* Errors: BATON_EINVAL (NULL out), BATON_ENOMEM. */
BATON_API int baton_mpsc_linked_create(baton_mpsc_linked **out);
/* Nodes still queued are dropped without being touched. NULL is ignored. */
BATON_API void baton_mpsc_linked_destroy(baton_mpsc_linked *q);
/* Any thread. Returns 0, BATON_EINVAL (NULL node), BATON_ECLOSED after close. */
BATON_API int baton_mpsc_linked_push(baton_mpsc_linked *q, baton_mpsc_node *node);
/* Consumer. Returns 0 with the node in *node, BATON_EAGAIN (empty, or the next node is still
 * being linked), BATON_EEOF when closed and empty. */
BATON_API int baton_mpsc_linked_try_pop(baton_mpsc_linked *q, baton_mpsc_node **node);
/* Consumer. Pops up to max nodes; as baton_spsc_pop_n. */
BATON_API int baton_mpsc_linked_pop_n(baton_mpsc_linked *q, baton_mpsc_node **nodes, size_t max,
                                      size_t *popped);
/* Consumer. Waits up to timeout_ns for a node. Returns 0, BATON_ETIMEDOUT, BATON_EEOF. */
BATON_API int baton_mpsc_linked_pop(baton_mpsc_linked *q, baton_mpsc_node **node,
                                    uint64_t timeout_ns);
/* Ends the stream and wakes the consumer. Idempotent; any thread. */
BATON_API void baton_mpsc_linked_close(baton_mpsc_linked *q);

/* ---------------------------------------------------------------------------------------------
 * Work queue: a bounded queue split into a sender handle and a receiver handle.
 *
 * The sender is single-producer: one thread sends at a time, and a second producer is never an
 * accident. Only a queue created with BATON_WQ_MULTI_PRODUCER lets baton_workqueue_sender_clone
 * make more senders (then it uses the MPSC ring instead of the SPSC ring). Every sender must be
 * closed; closing the last one is the shutdown signal: the receiver gets what is left, then
 * BATON_EEOF. Destroying the receiver makes later sends fail with BATON_ECLOSED. The queue's
 * memory is freed when the receiver is destroyed and every sender is closed, in any order.
 */
typedef struct baton_workqueue_sender baton_workqueue_sender;
typedef struct baton_workqueue_receiver baton_workqueue_receiver;

enum {
    /* Allow baton_workqueue_sender_clone (several producer threads). */
    BATON_WQ_MULTI_PRODUCER = 1u << 0,
};

/*
 * Creates a work queue of `capacity` items (rounded up to a power of two) and stores its two ends
 * in *sender and *receiver. Errors: BATON_EINVAL (NULL out pointers, capacity 0 or too large,
 * unknown flags), BATON_ENOMEM. On error nothing is stored.
 */
BATON_API int baton_workqueue_create(size_t capacity, unsigned flags,
                                     baton_workqueue_sender **sender,
                                     baton_workqueue_receiver **receiver);

/*
 * Makes another sender for the same queue, for another producer thread. Returns 0; BATON_EINVAL
 * when the queue was created without BATON_WQ_MULTI_PRODUCER (the message says so) or for NULL
 * arguments; BATON_ECLOSED when the receiver is gone; BATON_ENOMEM. Thread-safe with respect to
 * other senders; the sender being cloned is used by the calling thread.
 */
BATON_API int baton_workqueue_sender_clone(baton_workqueue_sender *sender,
                                           baton_workqueue_sender **clone);

/* Sends one item: waits up to timeout_ns for room. Returns 0, BATON_ETIMEDOUT, BATON_ECLOSED
 * (the receiver is gone), BATON_EINVAL (NULL sender; the send calls below too). */
BATON_API int baton_workqueue_send(baton_workqueue_sender *sender, void *item,
                                   uint64_t timeout_ns);
/* Sends without waiting. Returns 0, BATON_EAGAIN when full, BATON_ECLOSED. */
BATON_API int baton_workqueue_try_send(baton_workqueue_sender *sender, void *item);
/* Sends all n items, waiting for room as needed (up to timeout_ns in all); *sent (may be NULL)
 * tells how many went in when it returns early. Returns 0, BATON_ETIMEDOUT, BATON_ECLOSED,
 * BATON_EINVAL (NULL sender, or items NULL with n > 0: nothing sent). */
BATON_API int baton_workqueue_send_n(baton_workqueue_sender *sender, void *const *items, size_t n,
                                     uint64_t timeout_ns, size_t *sent);
/* Closes this sender and frees the handle. The last close ends the stream. NULL is ignored. */
BATON_API void baton_workqueue_sender_close(baton_workqueue_sender *sender);

/* Receives one item, waiting up to timeout_ns. Returns 0, BATON_ETIMEDOUT, or BATON_EEOF once
 * every sender is closed and nothing is left; BATON_EINVAL for a NULL receiver or item (the
 * receive calls below too, and items NULL with max > 0 for recv_n: nothing is received). One
 * thread at a time. */
BATON_API int baton_workqueue_recv(baton_workqueue_receiver *receiver, void **item,
                                   uint64_t timeout_ns);
/* Receives without waiting: 0, BATON_EAGAIN, BATON_EEOF. */
BATON_API int baton_workqueue_try_recv(baton_workqueue_receiver *receiver, void **item);
/* Receives up to max items without waiting; as baton_spsc_pop_n. */
BATON_API int baton_workqueue_recv_n(baton_workqueue_receiver *receiver, void **items, size_t max,
                                     size_t *received);
/* Destroys the receiver. Items still queued are dropped without being touched; later sends fail
 * with BATON_ECLOSED. NULL is ignored. */
BATON_API void baton_workqueue_receiver_destroy(baton_workqueue_receiver *receiver);

/*
 * The queue's capacity: what baton_workqueue_create was given, rounded up to a power of two (the
 * number of items that can be queued at once). The same through any handle of the queue, for its
 * whole life. Any thread, while the handle is open; 0 for NULL.
 */
BATON_API size_t baton_workqueue_capacity(const baton_workqueue_receiver *receiver);
BATON_API size_t baton_workqueue_sender_capacity(const baton_workqueue_sender *sender);

/*
 * How many items are queued: sent and not yet received, at some instant during the call, between
 * 0 and the capacity. Under concurrency it is a snapshot: an item may count from any moment
 * during its send (a send that has not returned yet may already count) until any moment during
 * its receive. Exact when no send or receive runs during the call. Through a sender, 0 once the
 * receiver is gone (what it left will never be received). Any thread, while the handle is open;
 * 0 for NULL. Costs two loads; it never waits.
 */
BATON_API size_t baton_workqueue_size(const baton_workqueue_receiver *receiver);
BATON_API size_t baton_workqueue_sender_size(const baton_workqueue_sender *sender);

/* ---------------------------------------------------------------------------------------------
 * Parallel drain: receives every item of a work queue and processes the items on a pool, many at
 * once, handing the results on in exactly the order the items were sent.
 */

/* Processes one item on some worker of the pool, concurrently with other items. Stores what the
 * deliver step gets in *result. Returns 0, or an error that stops the drain. */
typedef int (*baton_drain_process_fn)(void *ctx, void *item, void **result);
/* Receives results one at a time, never concurrently, in send order (seq counts from 0), on
 * some worker of the pool. Returns 0, or an error that stops the drain. */
typedef int (*baton_drain_deliver_fn)(void *ctx, uint64_t seq, void *item, void *result);
/* Hands back an accepted item that will not be delivered because the drain stopped. status is 0
 * when the item was processed (result is its result), the error of the item that stopped the
 * drain (process or deliver failed on it; result as process left it), or BATON_ECANCELED when it
 * was never processed (result NULL). Called on the draining thread, in seq order. */
typedef void (*baton_drain_undelivered_fn)(void *ctx, uint64_t seq, void *item, void *result,
                                           int status);

enum {
    /* Deliver each result as soon as it is processed: deliver is then called concurrently, from
     * several workers, in any order. */
    BATON_DRAIN_UNORDERED = 1u << 0,
};

/* Largest window the drain accepts. */
#define BATON_DRAIN_MAX_WINDOW (UINT64_C(1) << 24)

typedef struct baton_drain_ops {
    /* sizeof this struct, or 0 for this header's size. A smaller size (a caller built against an
     * older header) leaves the later fields at their defaults, unread; a size larger than this
     * header's, or smaller than sizeof(size_t), is BATON_EINVAL. */
    size_t struct_size;
    baton_drain_process_fn process;       /* required */
    baton_drain_deliver_fn deliver;       /* NULL: results are dropped after processing */
    baton_drain_undelivered_fn undelivered; /* NULL: undelivered items are only counted */
    /* Items accepted but not yet delivered, at most (rounded up to a power of two). When one item
     * is slow, the drain goes on taking new items until the window is full, then waits: memory
     * stays bounded by the window. 0: 256 per worker, at least 1024. At most
     * BATON_DRAIN_MAX_WINDOW. */
    size_t window;
    unsigned flags;                       /* BATON_DRAIN_* */
} baton_drain_ops;

/* What a drain did. Every accepted item is either delivered or undelivered. */
typedef struct baton_drain_report {
    uint64_t accepted;    /* items taken from the queue */
    uint64_t delivered;   /* items delivered */
    uint64_t undelivered; /* accepted - delivered: handed to ops->undelivered */
    uint64_t processed;   /* items whose process step ran and returned 0 */
    uint64_t failed_seq;  /* the item whose error stopped the drain; UINT64_MAX if none */
} baton_drain_report;

/*
 * Receives items until end-of-stream and processes them on `pool`; see baton_drain_ops. The
 * calling thread receives and dispatches; while it would otherwise wait, it runs jobs of the pool
 * (its own items, and whatever else the pool has queued, as every waiting call of baton_pool
 * does), so the drain makes progress even on a pool whose every worker is busy, or from inside a
 * task of `pool` itself. Like any work-while-waiting call, it may thus run an unrelated task of
 * the pool on top of itself: a task that blocks until this drain ends must not be queued on the
 * same pool while the drain waits. Returns 0 once every item has been delivered and the stream
 * has ended.
 *
 * A non-zero result from process or deliver stops the drain: no new item is taken from the queue
 * (what is still queued stays there for the caller), items not yet started are not processed,
 * and the error is returned. In order mode the stop is deterministic: every item sent before the
 * failed one is delivered, the failed one and every later accepted item go to
 * ops->undelivered, in seq order, before this returns. `report` (may be NULL) tells the counts.
 *
 * Errors: the item's error; BATON_EINVAL (NULL receiver, pool or ops->process, bad window, unknown
 * flags, struct_size larger than this header's or smaller than sizeof(size_t)); BATON_EBUSY when
 * another drain is running on the same receiver (one drain per receiver at a time; the running
 * one is not disturbed); BATON_ENOMEM (the window's slots, allocated once per call, or an
 * external slot of the pool); BATON_ECLOSED while the pool is being destroyed. After
 * BATON_EINVAL, BATON_EBUSY or BATON_ENOMEM nothing was received; after BATON_EINVAL or
 * BATON_EBUSY `report` is left untouched.
 */
BATON_API int baton_workqueue_drain_parallel(baton_workqueue_receiver *receiver, baton_pool *pool,
                                             const baton_drain_ops *ops, void *ctx,
                                             baton_drain_report *report);

/* ---------------------------------------------------------------------------------------------
 * Reorder buffer: values inserted by sequence number, in any order, from any number of threads;
 * popped strictly in sequence order by one consumer at a time. The window (capacity) bounds how
 * far ahead of the next value to pop an insert may be. Lock-free: an insert is one store to a
 * slot of its own and a pop is a load and a store.
 */
typedef struct baton_reorder baton_reorder;

/* Creates a buffer whose next expected sequence number is first_seq and that holds values for
 * sequence numbers [next, next + window) (window rounded up to a power of two). Errors:
 * BATON_EINVAL (NULL out, window 0 or above BATON_DRAIN_MAX_WINDOW), BATON_ENOMEM. */
BATON_API int baton_reorder_create(size_t window, uint64_t first_seq, baton_reorder **out);
/* Values still inside are dropped without being touched. NULL is ignored. */
BATON_API void baton_reorder_destroy(baton_reorder *rb);
/* The window after rounding. */
BATON_API size_t baton_reorder_window(const baton_reorder *rb);

/*
 * Stores value for seq. Any thread; each seq inserted once. Returns 0; BATON_EAGAIN when seq is
 * at or beyond next + window (insert it after the consumer has popped more); BATON_ERANGE when
 * seq was already popped (seq < next); BATON_EEXIST when seq is already in the buffer. On error
 * nothing changes.
 */
BATON_API int baton_reorder_insert(baton_reorder *rb, uint64_t seq, void *value);

/* Consumer. Pops the value of the next sequence number if it has been inserted: returns 0 with
 * *seq (may be NULL) and *value set, or BATON_EAGAIN when it has not arrived yet. */
BATON_API int baton_reorder_pop(baton_reorder *rb, uint64_t *seq, void **value);

/* Consumer. The next sequence number to be popped. */
BATON_API uint64_t baton_reorder_next(const baton_reorder *rb);

#ifdef __cplusplus
}
#endif

#endif /* BATON_QUEUE_H */
