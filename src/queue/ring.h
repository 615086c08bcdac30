/*
 * ring.h — what the bounded rings share: capacity rounding, the waiting loops of the blocking
 * calls, and argument checks (ring.c), and what the work queue waits on of the SPSC and MPSC
 * rings. Each ring kind lives in its own file (spsc.c, mpsc.c, mpmc.c); the MPSC and MPMC rings'
 * common core is cellring.h's.
 */
#ifndef BATON_QUEUE_RING_H
#define BATON_QUEUE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/queue.h"
#include "core/waitpoint.h"

/*
 * A slot of the sequence-per-slot rings (MPSC, MPMC; Vyukov's bounded queue). Sequence numbers
 * count in steps of two so that a ring of capacity 1 works (with steps of one, "holds the item of
 * p" and "free for p + 1" would both be p + 1): for position p, seq == 2p means "free, waiting
 * for the producer of p", 2p + 1 "holds the item of p", and the consumer of p stores
 * 2(p + capacity): free for the next lap. Comparing a seq with 2p as a signed 64-bit difference
 * stays right across the wrap of positions and of sequence numbers alike.
 */
typedef struct baton__cell {
    _Atomic uint64_t seq;
    void *item;
} baton__cell;

/* ---- ring.c ---- */

/* Allocates capacity cells, numbered so that the next position is start. */
baton__cell *baton__cells_create(uint64_t capacity, uint64_t start);
/* Re-numbers the cells of an empty ring so that the next position is start. */
void baton__cells_renumber(baton__cell *cells, uint64_t capacity, uint64_t start);

/* The error for a NULL pointer argument: BATON_EINVAL with a message naming the call and the
 * argument. Kept out of line, off the per-item path. */
int baton__ring_null(const char *fn, const char *what);

/* Rounds capacity up to a power of two, or returns BATON_EINVAL (with a message naming `kind`)
 * when it is 0 or above BATON_QUEUE_MAX_CAPACITY. */
int baton__ring_capacity(const char *kind, size_t capacity, uint64_t *rounded);

/*
 * The loop behind every blocking push and pop: try_op(q, arg) until it returns something other
 * than BATON_EAGAIN, waiting on wp for ready(q) between attempts. Returns try_op's result, or
 * BATON_ETIMEDOUT once the deadline passed.
 */
int baton__ring_wait_op(baton__waitpoint *wp, int (*try_op)(void *q, void *arg),
                        bool (*ready)(void *q), void *q, void *arg, uint64_t timeout_ns);

/* For consumers that wait on more than the ring (the parallel drain): the waitpoint a ring's
 * consumer sleeps on, and whether a pop would return without waiting (an item, or the end). */

/* ---- spsc.c ---- */

baton__waitpoint *baton__spsc_consumer_waitpoint(baton_spsc *q);
bool baton__spsc_can_pop(void *q);

/* ---- mpsc.c ---- */

baton__waitpoint *baton__mpsc_consumer_waitpoint(baton_mpsc *q);
bool baton__mpsc_can_pop(void *q);

#endif /* BATON_QUEUE_RING_H */
