/*
 * mpmc.c — the bounded multi-producer multi-consumer ring.
 *
 * DESIGN (Vyukov's bounded MPMC queue; crossbeam's ArrayQueue is the same with a stamp per slot)
 *  - Producers claim a position with a CAS on tail, consumers with a CAS on head; the cell's seq
 *    says whether it is free for this lap, holds this lap's item, or is still being used by the
 *    previous lap (see baton__cell in ring.h). Nobody ever waits for another thread inside an
 *    operation: a CAS that loses just retries with the newer position.
 *  - Consumers free cells out of order, so push_n and pop_n claim one position at a time.
 *  - head and tail sit on lines of their own; the cells' lines are shared only by the producer
 *    and consumer of neighbouring positions.
 */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "queue/ring.h"
#include "queue/testing.h"

struct baton_mpmc {
    BATON_CACHELINE_ALIGNED _Atomic uint64_t tail;
    BATON_CACHELINE_ALIGNED _Atomic uint64_t head;
    BATON_CACHELINE_ALIGNED baton__cell *cells;
    uint64_t mask;
    _Atomic uint32_t closed;
    baton__waitpoint not_empty;
    baton__waitpoint not_full;
};

int baton_mpmc_create(size_t capacity, baton_mpmc **out)
{
    uint64_t cap;
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_mpmc_create: out is NULL");
    int rc = baton__ring_capacity("baton_mpmc_create:", capacity, &cap);
    if (rc != 0)
        return rc;
    baton_mpmc *q = baton__aligned_alloc(BATON_CACHELINE, sizeof *q);
    baton__cell *cells = baton__cells_create(cap, 0);
    if (q == NULL || cells == NULL) {
        baton__free(q);
        baton__free(cells);
        return baton__error(BATON_ENOMEM, "baton_mpmc_create: no memory for %llu cells",
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

void baton_mpmc_destroy(baton_mpmc *q)
{
    if (q == NULL)
        return;
    baton__free(q->cells);
    baton__free(q);
}

size_t baton_mpmc_capacity(const baton_mpmc *q)
{
    return (size_t)q->mask + 1;
}

size_t baton_mpmc_size(const baton_mpmc *q)
{
    uint64_t head = baton__load_relaxed((_Atomic uint64_t *)&q->head);
    uint64_t tail = baton__load_relaxed((_Atomic uint64_t *)&q->tail);
    int64_t n = (int64_t)(tail - head);
    if (n < 0)
        return 0;
    return (uint64_t)n > q->mask + 1 ? (size_t)q->mask + 1 : (size_t)n;
}

int baton_mpmc_try_push(baton_mpmc *q, void *item)
{
    /* Relaxed: close is ordered with pushes by the caller (see queue.h). */
    if (baton__load_relaxed(&q->closed))
        return BATON_ECLOSED;
    uint64_t pos = baton__load_relaxed(&q->tail);
    baton__cell *cell;
    for (;;) {
        cell = &q->cells[pos & q->mask];
        /* Acquire pairs with a consumer's release store of seq: it has read the old item. */
        uint64_t seq = baton__load_acquire(&cell->seq);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            /* Relaxed: the claim orders nothing; the seq store publishes the item. */
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (dif < 0) {
            uint64_t now = baton__load_relaxed(&q->tail);
            if (now == pos)
                return BATON_EAGAIN; /* full */
            pos = now;
        } else {
            pos = baton__load_relaxed(&q->tail);
        }
    }
    cell->item = item;
    /* Release pairs with a consumer's acquire load of seq. */
    baton__store_release(&cell->seq, pos + 1);
    baton__waitpoint_notify(&q->not_empty, false);
    return 0;
}

int baton_mpmc_try_pop(baton_mpmc *q, void **item)
{
    uint64_t pos = baton__load_relaxed(&q->head);
    baton__cell *cell;
    for (;;) {
        cell = &q->cells[pos & q->mask];
        /* Acquire pairs with the producer's release store of seq: the item is written. */
        uint64_t seq = baton__load_acquire(&cell->seq);
        int64_t dif = (int64_t)(seq - (pos + 1));
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (dif < 0) {
            uint64_t now = baton__load_relaxed(&q->head);
            if (now != pos) {
                pos = now;
                continue;
            }
            /* Empty. Acquire pairs with the release store in baton_mpmc_close: pushes that
             * returned before close are visible, so the re-check below is final. */
            if (!baton__load_acquire(&q->closed))
                return BATON_EAGAIN;
            if (baton__load_acquire(&cell->seq) == pos + 1 ||
                baton__load_relaxed(&q->head) != pos)
                continue;
            return BATON_EEOF;
        } else {
            pos = baton__load_relaxed(&q->head);
        }
    }
    *item = cell->item;
    /* Release pairs with the producers' acquire load of seq: the cell is free for the next lap. */
    baton__store_release(&cell->seq, pos + q->mask + 1);
    baton__waitpoint_notify(&q->not_full, false);
    return 0;
}

int baton_mpmc_push_n(baton_mpmc *q, void *const *items, size_t n, size_t *pushed)
{
    size_t k = 0;
    int rc = 0;
    while (k < n && (rc = baton_mpmc_try_push(q, items[k])) == 0)
        k++;
    if (pushed != NULL)
        *pushed = k;
    if (n == 0 && baton__load_relaxed(&q->closed))
        return BATON_ECLOSED;
    return k > 0 ? 0 : rc;
}

int baton_mpmc_pop_n(baton_mpmc *q, void **items, size_t max, size_t *popped)
{
    size_t k = 0;
    int rc = 0;
    while (k < max && (rc = baton_mpmc_try_pop(q, &items[k])) == 0)
        k++;
    if (popped != NULL)
        *popped = k;
    return k > 0 ? 0 : rc;
}

static bool baton__mpmc_can_push(void *arg)
{
    baton_mpmc *q = arg;
    uint64_t tail = baton__load_relaxed(&q->tail);
    return baton__load_relaxed(&q->closed) ||
           baton__load_relaxed(&q->cells[tail & q->mask].seq) == tail;
}

static bool baton__mpmc_can_pop(void *arg)
{
    baton_mpmc *q = arg;
    uint64_t head = baton__load_relaxed(&q->head);
    return baton__load_relaxed(&q->closed) ||
           baton__load_relaxed(&q->cells[head & q->mask].seq) == head + 1;
}

static int baton__mpmc_push_op(void *q, void *arg)
{
    return baton_mpmc_try_push(q, *(void **)arg);
}

static int baton__mpmc_pop_op(void *q, void *arg)
{
    return baton_mpmc_try_pop(q, arg);
}

int baton_mpmc_push(baton_mpmc *q, void *item, uint64_t timeout_ns)
{
    int rc = baton_mpmc_try_push(q, item); /* the common case, without an indirect call */
    if (rc != BATON_EAGAIN)
        return rc;
    return baton__ring_wait_op(&q->not_full, baton__mpmc_push_op, baton__mpmc_can_push, q, &item,
                               timeout_ns);
}

int baton_mpmc_pop(baton_mpmc *q, void **item, uint64_t timeout_ns)
{
    int rc = baton_mpmc_try_pop(q, item);
    if (rc != BATON_EAGAIN)
        return rc;
    return baton__ring_wait_op(&q->not_empty, baton__mpmc_pop_op, baton__mpmc_can_pop, q, item,
                               timeout_ns);
}

void baton_mpmc_close(baton_mpmc *q)
{
    /* Release pairs with the acquire loads of closed in try_pop. */
    baton__store_release(&q->closed, 1);
    baton__waitpoint_notify(&q->not_empty, true);
    baton__waitpoint_notify(&q->not_full, true);
}

void baton__mpmc_set_position(baton_mpmc *q, uint64_t pos)
{
    baton__store_relaxed(&q->tail, pos);
    baton__store_relaxed(&q->head, pos);
    baton__cells_renumber(q->cells, q->mask + 1, pos);
}
