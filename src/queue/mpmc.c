/*
 * mpmc.c — the bounded multi-producer multi-consumer ring.
 *
 * DESIGN (Vyukov's bounded MPMC queue; crossbeam's ArrayQueue is the same with a stamp per slot)
 *  - Producers claim a position with a CAS on tail (cellring.h), consumers with a CAS on head;
 *    the cell's seq says whether it is free for this lap, holds this lap's item, or is still in
 *    use by the previous lap. Nobody waits for another thread inside an operation: a CAS that
 *    loses retries with the newer position.
 *  - Consumers free cells out of order, so push_n and pop_n claim one position at a time.
 *  - A baton_mpmc is a baton__cellring; the handle type only keeps the kinds apart.
 */
#include <stdint.h>

#include "core/atomic.h"
#include "queue/cellring.h"
#include "queue/testing.h"

static baton__cellring *baton__mpmc_ring(baton_mpmc *q)
{
    return (baton__cellring *)(void *)q;
}

int baton_mpmc_create(size_t capacity, baton_mpmc **out)
{
    return baton__cellring_create("baton_mpmc_create", capacity, (baton__cellring **)(void *)out);
}

void baton_mpmc_destroy(baton_mpmc *q)
{
    baton__cellring_destroy(baton__mpmc_ring(q));
}

size_t baton_mpmc_capacity(const baton_mpmc *q)
{
    return (size_t)((const baton__cellring *)(const void *)q)->mask + 1;
}

size_t baton_mpmc_size(const baton_mpmc *q)
{
    return baton__cellring_size((const baton__cellring *)(const void *)q);
}

int baton_mpmc_try_push(baton_mpmc *q, void *item)
{
    return baton__cellring_try_push(baton__mpmc_ring(q), item);
}

int baton_mpmc_try_pop(baton_mpmc *q, void **item)
{
    if (item == NULL)
        return baton__ring_null("baton_mpmc_try_pop", "item");
    baton__cellring *r = baton__mpmc_ring(q);
    uint64_t pos = baton__load_relaxed(&r->head);
    baton__cell *cell;
    for (;;) {
        cell = &r->cells[pos & r->mask];
        /* Acquire pairs with the producer's release store of seq: the item is written. */
        uint64_t seq = baton__load_acquire(&cell->seq);
        int64_t dif = (int64_t)(seq - (2 * pos + 1));
        if (dif == 0) {
            /* Relaxed: the claim orders nothing; the acquire load of seq above did. */
            if (atomic_compare_exchange_weak_explicit(&r->head, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (dif < 0) {
            uint64_t now = baton__load_relaxed(&r->head);
            if (now != pos) {
                pos = now;
                continue;
            }
            /* Empty. Acquire pairs with the release store in baton__cellring_close: pushes that
             * returned before close are visible, so the re-check below is final. */
            if (!baton__load_acquire(&r->closed))
                return BATON_EAGAIN;
            if (baton__load_acquire(&cell->seq) == 2 * pos + 1 ||
                baton__load_relaxed(&r->head) != pos)
                continue;
            return BATON_EEOF;
        } else {
            pos = baton__load_relaxed(&r->head);
        }
    }
    *item = cell->item;
    baton__cellring_release(r, cell, pos);
    baton__waitpoint_notify(&r->not_full, false);
    return 0;
}

int baton_mpmc_push_n(baton_mpmc *q, void *const *items, size_t n, size_t *pushed)
{
    if (items == NULL && n != 0)
        return baton__ring_null("baton_mpmc_push_n", "items");
    size_t k = 0;
    int rc = 0;
    while (k < n && (rc = baton_mpmc_try_push(q, items[k])) == 0)
        k++;
    if (pushed != NULL)
        *pushed = k;
    if (n == 0 && baton__load_relaxed(&baton__mpmc_ring(q)->closed))
        return BATON_ECLOSED;
    return k > 0 ? 0 : rc;
}

int baton_mpmc_pop_n(baton_mpmc *q, void **items, size_t max, size_t *popped)
{
    if (items == NULL && max != 0)
        return baton__ring_null("baton_mpmc_pop_n", "items");
    size_t k = 0;
    int rc = 0;
    while (k < max && (rc = baton_mpmc_try_pop(q, &items[k])) == 0)
        k++;
    if (popped != NULL)
        *popped = k;
    return k > 0 ? 0 : rc;
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
    return baton__ring_wait_op(&baton__mpmc_ring(q)->not_full, baton__mpmc_push_op,
                               baton__cellring_can_push, q, &item, timeout_ns);
}

int baton_mpmc_pop(baton_mpmc *q, void **item, uint64_t timeout_ns)
{
    int rc = baton_mpmc_try_pop(q, item);
    if (rc != BATON_EAGAIN)
        return rc;
    return baton__ring_wait_op(&baton__mpmc_ring(q)->not_empty, baton__mpmc_pop_op,
                               baton__cellring_can_pop, q, item, timeout_ns);
}

void baton_mpmc_close(baton_mpmc *q)
{
    baton__cellring_close(baton__mpmc_ring(q));
}

void baton__mpmc_set_position(baton_mpmc *q, uint64_t pos)
{
    baton__cellring_set_position(baton__mpmc_ring(q), pos);
}
