/*
 * cellring.h — what the MPSC and MPMC rings share: Vyukov's bounded queue with a sequence number
 * per cell (see baton__cell in ring.h), its producer side, and the bookkeeping around it. The two
 * rings differ only in their consumer: mpsc.c owns head outright, mpmc.c claims it by CAS.
 *
 * The producer side is here as static inline functions so that each ring's exported calls
 * compile to straight-line code with no call on the per-item path.
 */
#ifndef BATON_QUEUE_CELLRING_H
#define BATON_QUEUE_CELLRING_H

#include <stdint.h>

#include "core/atomic.h"
#include "queue/ring.h"

typedef struct baton__cellring {
    BATON_CACHELINE_ALIGNED _Atomic uint64_t tail; /* claimed by producers */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t head; /* the consumer's (MPSC) or consumers' (MPMC) */
    BATON_CACHELINE_ALIGNED baton__cell *cells;
    uint64_t mask;
    _Atomic uint32_t closed;
    baton__waitpoint not_empty; /* consumers wait here */
    baton__waitpoint not_full;  /* producers wait here */
} baton__cellring;

/* ---- cellring.c ---- */

/* Allocates a ring; `fn` names the public call in error messages. */
int baton__cellring_create(const char *fn, size_t capacity, baton__cellring **out);
void baton__cellring_destroy(baton__cellring *r);
size_t baton__cellring_size(const baton__cellring *r);
void baton__cellring_close(baton__cellring *r);
void baton__cellring_set_position(baton__cellring *r, uint64_t pos);
/* Waiting conditions: a push / a pop would not wait. */
bool baton__cellring_can_push(void *r);
bool baton__cellring_can_pop(void *r);

/* ---- inline: the producer side, and freeing a consumed cell ---- */

/* Claims the next position whose cell is free. Returns 0 with *pos set, or BATON_EAGAIN. */
static inline int baton__cellring_claim(baton__cellring *r, uint64_t *out_pos)
{
    uint64_t pos = baton__load_relaxed(&r->tail);
    for (;;) {
        baton__cell *cell = &r->cells[pos & r->mask];
        /* Acquire pairs with a consumer's release store of seq: it has read the old item. */
        uint64_t seq = baton__load_acquire(&cell->seq);
        int64_t dif = (int64_t)(seq - 2 * pos);
        if (dif == 0) {
            /* Relaxed: the claim orders nothing; the cell's seq store publishes the item. */
            if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (dif < 0) {
            /* The cell still holds last lap's item: full, unless tail moved on meanwhile. */
            uint64_t now = baton__load_relaxed(&r->tail);
            if (now == pos)
                return BATON_EAGAIN;
            pos = now;
        } else {
            pos = baton__load_relaxed(&r->tail);
        }
    }
    *out_pos = pos;
    return 0;
}

/* Fills the cell of a claimed position and makes it visible to consumers. */
static inline void baton__cellring_publish(baton__cellring *r, uint64_t pos, void *item)
{
    baton__cell *cell = &r->cells[pos & r->mask];
    cell->item = item;
    /* Release pairs with the consumer's acquire load of seq. */
    baton__store_release(&cell->seq, 2 * pos + 1);
}

static inline int baton__cellring_try_push(baton__cellring *r, void *item)
{
    /* Relaxed: close is ordered with pushes by the caller (see queue.h). */
    if (baton__load_relaxed(&r->closed))
        return BATON_ECLOSED;
    uint64_t pos;
    if (baton__cellring_claim(r, &pos) != 0)
        return BATON_EAGAIN;
    baton__cellring_publish(r, pos, item);
    baton__waitpoint_notify(&r->not_empty, false);
    return 0;
}

/* Frees the cell of a consumed position for the next lap. */
static inline void baton__cellring_release(baton__cellring *r, baton__cell *cell, uint64_t pos)
{
    /* Release pairs with the producers' acquire load of seq: the item has been read. */
    baton__store_release(&cell->seq, 2 * (pos + r->mask + 1));
}

#endif /* BATON_QUEUE_CELLRING_H */
