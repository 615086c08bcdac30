/*
 * mpsc.c — the bounded multi-producer single-consumer ring.
 *
 * DESIGN (Vyukov's bounded queue, single-consumer side simplified)
 *  - Producers claim positions with a CAS on tail, then fill the cell and publish it by storing
 *    its seq (see baton__cell in ring.h). A producer that is slow between claim and publish holds
 *    up only the consumer's view of its own cell.
 *  - The consumer owns head: it reads cells in order and frees each by storing seq for the next
 *    lap; no read-modify-write on its side. It frees cells strictly in position order, which is
 *    what lets push_n claim a run of positions with one CAS: if head says position p was freed,
 *    every position before it was too.
 *  - head is stored with release after the cells it freed, so a producer that acquires head may
 *    write every cell below head + capacity.
 */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "queue/ring.h"
#include "queue/testing.h"

struct baton_mpsc {
    BATON_CACHELINE_ALIGNED _Atomic uint64_t tail; /* claimed by producers */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t head; /* written by the consumer only */
    BATON_CACHELINE_ALIGNED baton__cell *cells;
    uint64_t mask;
    _Atomic uint32_t closed;
    baton__waitpoint not_empty;
    baton__waitpoint not_full;
};

int baton_mpsc_create(size_t capacity, baton_mpsc **out)
{
    uint64_t cap;
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_mpsc_create: out is NULL");
    int rc = baton__ring_capacity("baton_mpsc_create:", capacity, &cap);
    if (rc != 0)
        return rc;
    baton_mpsc *q = baton__aligned_alloc(BATON_CACHELINE, sizeof *q);
    baton__cell *cells = baton__cells_create(cap, 0);
    if (q == NULL || cells == NULL) {
        baton__free(q);
        baton__free(cells);
        return baton__error(BATON_ENOMEM, "baton_mpsc_create: no memory for %llu cells",
                            (unsigned long long)cap);
    }
    memset(q, 0, sizeof *q);
    atomic_init(&q->tail, 0);
    atomic_init(&q->head, 0);
    atomic_init(&q->closed, 0);
    q->cells = cells;
    q->mask = cap - 1;
    baton__waitpoint_global_init();
    baton__waitpoint_init(&q->not_empty);
    baton__waitpoint_init(&q->not_full);
    *out = q;
    return 0;
}

void baton_mpsc_destroy(baton_mpsc *q)
{
    if (q == NULL)
        return;
    baton__free(q->cells);
    baton__free(q);
}

size_t baton_mpsc_capacity(const baton_mpsc *q)
{
    return (size_t)q->mask + 1;
}

size_t baton_mpsc_size(const baton_mpsc *q)
{
    uint64_t head = baton__load_relaxed((_Atomic uint64_t *)&q->head);
    uint64_t tail = baton__load_relaxed((_Atomic uint64_t *)&q->tail);
    int64_t n = (int64_t)(tail - head);
    if (n < 0)
        return 0;
    return (uint64_t)n > q->mask + 1 ? (size_t)q->mask + 1 : (size_t)n;
}

int baton_mpsc_try_push(baton_mpsc *q, void *item)
{
    /* Relaxed: close is ordered with pushes by the caller (see queue.h). */
    if (baton__load_relaxed(&q->closed))
        return BATON_ECLOSED;
    uint64_t pos = baton__load_relaxed(&q->tail);
    baton__cell *cell;
    for (;;) {
        cell = &q->cells[pos & q->mask];
        /* Acquire pairs with the consumer's release store of seq: it has read the old item. */
        uint64_t seq = baton__load_acquire(&cell->seq);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            /* Relaxed: the claim orders nothing; the cell's seq store publishes the item. */
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (dif < 0) {
            /* The cell still holds last lap's item: full, unless tail moved on meanwhile. */
            uint64_t now = baton__load_relaxed(&q->tail);
            if (now == pos)
                return BATON_EAGAIN;
            pos = now;
        } else {
            pos = baton__load_relaxed(&q->tail);
        }
    }
    cell->item = item;
    /* Release pairs with the consumer's acquire load of seq. */
    baton__store_release(&cell->seq, pos + 1);
    baton__waitpoint_notify(&q->not_empty, false);
    return 0;
}

int baton_mpsc_push_n(baton_mpsc *q, void *const *items, size_t n, size_t *pushed)
{
    if (pushed != NULL)
        *pushed = 0;
    if (baton__load_relaxed(&q->closed))
        return BATON_ECLOSED;
    if (n == 0)
        return 0;
    uint64_t cap = q->mask + 1;
    uint64_t pos = baton__load_relaxed(&q->tail);
    uint64_t k;
    for (;;) {
        /* Acquire pairs with the consumer's release store of head: every cell below head has
         * been read and freed. */
        uint64_t head = baton__load_acquire(&q->head);
        int64_t used = (int64_t)(pos - head);
        if (used < 0) { /* our tail is older than the consumer's head: reload */
            pos = baton__load_relaxed(&q->tail);
            continue;
        }
        uint64_t room = (uint64_t)used >= cap ? 0 : cap - (uint64_t)used;
        if (room == 0) {
            uint64_t now = baton__load_relaxed(&q->tail);
            if (now == pos)
                return BATON_EAGAIN;
            pos = now;
            continue;
        }
        k = room < n ? room : n;
        /* Relaxed: as in try_push, the cells' seq stores publish. */
        if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + k, memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    for (uint64_t i = 0; i < k; i++) {
        baton__cell *cell = &q->cells[(pos + i) & q->mask];
        cell->item = items[i];
        /* Release pairs with the consumer's acquire load of seq. */
        baton__store_release(&cell->seq, pos + i + 1);
    }
    baton__waitpoint_notify(&q->not_empty, false);
    if (pushed != NULL)
        *pushed = (size_t)k;
    return 0;
}

/* The cell at head holds no item: BATON_EEOF once closed, else BATON_EAGAIN. */
static int baton__mpsc_empty(baton_mpsc *q, baton__cell *cell, uint64_t head)
{
    /* Acquire pairs with the release store in baton_mpsc_close: pushes that returned before close
     * are visible, so a cell still empty now stays empty. */
    if (!baton__load_acquire(&q->closed))
        return BATON_EAGAIN;
    /* Acquire pairs with the producer's release store of seq. */
    return baton__load_acquire(&cell->seq) == head + 1 ? BATON_EAGAIN : BATON_EEOF;
}

int baton_mpsc_pop_n(baton_mpsc *q, void **items, size_t max, size_t *popped)
{
    if (popped != NULL)
        *popped = 0;
    if (max == 0)
        return 0;
    uint64_t cap = q->mask + 1;
    uint64_t head = baton__load_relaxed(&q->head);
    size_t k = 0;
    while (k < max) {
        baton__cell *cell = &q->cells[(head + k) & q->mask];
        /* Acquire pairs with the producer's release store of seq: the item is written. */
        if (baton__load_acquire(&cell->seq) != head + k + 1) {
            if (k == 0)
                return baton__mpsc_empty(q, cell, head);
            break;
        }
        items[k] = cell->item;
        /* Release pairs with the producers' acquire load of seq: the cell is free. */
        baton__store_release(&cell->seq, head + k + cap);
        k++;
    }
    /* Release pairs with push_n's acquire load of head. */
    baton__store_release(&q->head, head + k);
    baton__waitpoint_notify(&q->not_full, k > 1);
    if (popped != NULL)
        *popped = k;
    return 0;
}

int baton_mpsc_try_pop(baton_mpsc *q, void **item)
{
    return baton_mpsc_pop_n(q, item, 1, NULL);
}

static bool baton__mpsc_can_push(void *arg)
{
    baton_mpsc *q = arg;
    uint64_t tail = baton__load_relaxed(&q->tail);
    return baton__load_relaxed(&q->closed) ||
           baton__load_relaxed(&q->cells[tail & q->mask].seq) == tail;
}

bool baton__mpsc_can_pop(void *arg)
{
    baton_mpsc *q = arg;
    uint64_t head = baton__load_relaxed(&q->head);
    return baton__load_relaxed(&q->closed) ||
           baton__load_relaxed(&q->cells[head & q->mask].seq) == head + 1;
}

static int baton__mpsc_push_op(void *q, void *arg)
{
    return baton_mpsc_try_push(q, *(void **)arg);
}

static int baton__mpsc_pop_op(void *q, void *arg)
{
    return baton_mpsc_try_pop(q, arg);
}

int baton_mpsc_push(baton_mpsc *q, void *item, uint64_t timeout_ns)
{
    int rc = baton_mpsc_try_push(q, item); /* the common case, without an indirect call */
    if (rc != BATON_EAGAIN)
        return rc;
    return baton__ring_wait_op(&q->not_full, baton__mpsc_push_op, baton__mpsc_can_push, q, &item,
                               timeout_ns);
}

int baton_mpsc_pop(baton_mpsc *q, void **item, uint64_t timeout_ns)
{
    int rc = baton_mpsc_try_pop(q, item);
    if (rc != BATON_EAGAIN)
        return rc;
    return baton__ring_wait_op(&q->not_empty, baton__mpsc_pop_op, baton__mpsc_can_pop, q, item,
                               timeout_ns);
}

void baton_mpsc_close(baton_mpsc *q)
{
    /* Release pairs with the acquire load in baton__mpsc_empty. */
    baton__store_release(&q->closed, 1);
    baton__waitpoint_notify(&q->not_empty, true);
    baton__waitpoint_notify(&q->not_full, true);
}

void baton__mpsc_set_position(baton_mpsc *q, uint64_t pos)
{
    baton__store_relaxed(&q->tail, pos);
    baton__store_relaxed(&q->head, pos);
    baton__cells_renumber(q->cells, q->mask + 1, pos);
}

baton__waitpoint *baton__mpsc_consumer_waitpoint(baton_mpsc *q)
{
    return &q->not_empty;
}
