/*
 * mpsc.c — the bounded multi-producer single-consumer ring.
 *
 * DESIGN (Vyukov's bounded queue, the single consumer simplified; see cellring.h)
 *  - Producers claim a position with a CAS on tail, fill the cell and publish it by storing its
 *    seq. A producer slow between claim and publish holds up only the consumer's view of its own
 *    cell.
 *  - The consumer owns head: it reads cells in order and frees each by storing seq for the next
 *    lap; no read-modify-write on its side. Because it frees cells strictly in position order,
 *    push_n can claim a run of positions with one CAS: if head has passed position p, every cell
 *    before p is free too. head is stored with release after the cells it freed, so a producer
 *    that acquires head may write every cell below head + capacity.
 *  - A baton_mpsc is a baton__cellring; the handle type only keeps the kinds apart.
 */
#include <stdint.h>

#include "core/atomic.h"
#include "queue/cellring.h"
#include "queue/testing.h"

static baton__cellring *baton__mpsc_ring(baton_mpsc *q)
{
    return (baton__cellring *)(void *)q;
}

int baton_mpsc_create(size_t capacity, baton_mpsc **out)
{
    return baton__cellring_create("baton_mpsc_create", capacity, (baton__cellring **)(void *)out);
}

void baton_mpsc_destroy(baton_mpsc *q)
{
    baton__cellring_destroy(baton__mpsc_ring(q));
}

size_t baton_mpsc_capacity(const baton_mpsc *q)
{
    return (size_t)((const baton__cellring *)(const void *)q)->mask + 1;
}

size_t baton_mpsc_size(const baton_mpsc *q)
{
    return baton__cellring_size((const baton__cellring *)(const void *)q);
}

int baton_mpsc_try_push(baton_mpsc *q, void *item)
{
    return baton__cellring_try_push(baton__mpsc_ring(q), item);
}

int baton_mpsc_push_n(baton_mpsc *q, void *const *items, size_t n, size_t *pushed)
{
    if (items == NULL && n != 0)
        return baton__ring_null("baton_mpsc_push_n", "items");
    baton__cellring *r = baton__mpsc_ring(q);
    if (pushed != NULL)
        *pushed = 0;
    if (baton__load_relaxed(&r->closed))
        return BATON_ECLOSED;
    if (n == 0)
        return 0;
    uint64_t cap = r->mask + 1;
    uint64_t pos = baton__load_relaxed(&r->tail);
    uint64_t k;
    for (;;) {
        /* Acquire pairs with the consumer's release store of head: every cell below head has
         * been read and freed. */
        uint64_t head = baton__load_acquire(&r->head);
        int64_t used = (int64_t)(pos - head);
        if (used < 0) { /* our tail is older than the consumer's head: reload */
            pos = baton__load_relaxed(&r->tail);
            continue;
        }
        uint64_t room = (uint64_t)used >= cap ? 0 : cap - (uint64_t)used;
        if (room == 0) {
            uint64_t now = baton__load_relaxed(&r->tail);
            if (now == pos)
                return BATON_EAGAIN;
            pos = now;
            continue;
        }
        k = room < n ? room : n;
        /* Relaxed: as in a single claim, the cells' seq stores publish. */
        if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + k, memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    for (uint64_t i = 0; i < k; i++)
        baton__cellring_publish(r, pos + i, items[i]);
    baton__waitpoint_notify(&r->not_empty, false);
    if (pushed != NULL)
        *pushed = (size_t)k;
    return 0;
}

/* The cell at head holds no item: BATON_EEOF once closed, else BATON_EAGAIN. */
static int baton__mpsc_empty(baton__cellring *r, baton__cell *cell, uint64_t head)
{
    /* Acquire pairs with the release store in baton__cellring_close: pushes that returned before
     * close are visible, so a cell still empty now stays empty. */
    if (!baton__load_acquire(&r->closed))
        return BATON_EAGAIN;
    /* Acquire pairs with the producer's release store of seq. */
    return baton__load_acquire(&cell->seq) == 2 * head + 1 ? BATON_EAGAIN : BATON_EEOF;
}

int baton_mpsc_pop_n(baton_mpsc *q, void **items, size_t max, size_t *popped)
{
    if (items == NULL && max != 0)
        return baton__ring_null("baton_mpsc_pop_n", "items");
    baton__cellring *r = baton__mpsc_ring(q);
    if (popped != NULL)
        *popped = 0;
    if (max == 0)
        return 0;
    uint64_t head = baton__load_relaxed(&r->head);
    size_t k = 0;
    while (k < max) {
        baton__cell *cell = &r->cells[(head + k) & r->mask];
        /* Acquire pairs with the producer's release store of seq: the item is written. */
        if (baton__load_acquire(&cell->seq) != 2 * (head + k) + 1) {
            if (k == 0)
                return baton__mpsc_empty(r, cell, head);
            break;
        }
        items[k] = cell->item;
        baton__cellring_release(r, cell, head + k);
        k++;
    }
    /* Release pairs with push_n's acquire load of head. */
    baton__store_release(&r->head, head + k);
    baton__waitpoint_notify(&r->not_full, k > 1);
    if (popped != NULL)
        *popped = k;
    return 0;
}

int baton_mpsc_try_pop(baton_mpsc *q, void **item)
{
    if (item == NULL)
        return baton__ring_null("baton_mpsc_try_pop", "item");
    return baton_mpsc_pop_n(q, item, 1, NULL);
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
    return baton__ring_wait_op(&baton__mpsc_ring(q)->not_full, baton__mpsc_push_op,
                               baton__cellring_can_push, q, &item, timeout_ns);
}

int baton_mpsc_pop(baton_mpsc *q, void **item, uint64_t timeout_ns)
{
    int rc = baton_mpsc_try_pop(q, item);
    if (rc != BATON_EAGAIN)
        return rc;
    return baton__ring_wait_op(&baton__mpsc_ring(q)->not_empty, baton__mpsc_pop_op,
                               baton__cellring_can_pop, q, item, timeout_ns);
}

void baton_mpsc_close(baton_mpsc *q)
{
    baton__cellring_close(baton__mpsc_ring(q));
}

void baton__mpsc_set_position(baton_mpsc *q, uint64_t pos)
{
    baton__cellring_set_position(baton__mpsc_ring(q), pos);
}

bool baton__mpsc_can_pop(void *q)
{
    return baton__cellring_can_pop(q);
}

baton__waitpoint *baton__mpsc_consumer_waitpoint(baton_mpsc *q)
{
    return &baton__mpsc_ring(q)->not_empty;
}
