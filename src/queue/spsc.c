/*
 * spsc.c — the single-producer single-consumer ring.
 *
 * DESIGN (rigtorp's SPSCQueue, with Concurrency Kit's ck_ring for the fence comments)
 *  - tail is written by the producer only, head by the consumer only; positions are 64-bit and
 *    never reset, so full is tail - head == capacity and empty is tail == head, with no slot
 *    left unused.
 *  - Each side keeps a cached copy of the other's index on its own cache line and reloads it only
 *    when the copy says full (producer) or empty (consumer). In a steady stream a push touches
 *    the consumer's line once per lap, not once per item.
 *  - The slots are plain pointers: the producer writes a slot before its release store of tail,
 *    the consumer reads it after its acquire load of tail, and gives it back with its release
 *    store of head, which the producer acquires before writing the slot again.
 */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "queue/ring.h"
#include "queue/testing.h"

struct baton_spsc {
    /* The producer's line. */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t tail;
    uint64_t head_cache;
    /* The consumer's line. */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t head;
    uint64_t tail_cache;
    /* Read by both, written once (closed: once more). */
    BATON_CACHELINE_ALIGNED void **slots;
    uint64_t mask;
    _Atomic uint32_t closed;
    baton__waitpoint not_empty; /* the consumer waits here */
    baton__waitpoint not_full;  /* the producer waits here */
};

int baton_spsc_create(size_t capacity, baton_spsc **out)
{
    uint64_t cap;
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_spsc_create: out is NULL");
    int rc = baton__ring_capacity("baton_spsc_create", capacity, &cap);
    if (rc != 0)
        return rc;
    baton_spsc *q = baton__aligned_alloc(BATON_CACHELINE, sizeof *q);
    void **slots = baton__calloc((size_t)cap, sizeof *slots);
    if (q == NULL || slots == NULL) {
        baton__free(q);
        baton__free(slots);
        return baton__error(BATON_ENOMEM, "baton_spsc_create: no memory for %llu slots",
                            (unsigned long long)cap);
    }
    memset(q, 0, sizeof *q);
    atomic_init(&q->tail, 0);
    atomic_init(&q->head, 0);
    atomic_init(&q->closed, 0);
    q->slots = slots;
    q->mask = cap - 1;
    baton__waitpoint_global_init();
    baton__waitpoint_init(&q->not_empty);
    baton__waitpoint_init(&q->not_full);
    *out = q;
    return 0;
}

void baton_spsc_destroy(baton_spsc *q)
{
    if (q == NULL)
        return;
    baton__free(q->slots);
    baton__free(q);
}

size_t baton_spsc_capacity(const baton_spsc *q)
{
    return (size_t)q->mask + 1;
}

size_t baton_spsc_size(const baton_spsc *q)
{
    /* Head first: tail only grows, so the difference cannot go negative. */
    uint64_t head = baton__load_acquire((_Atomic uint64_t *)&q->head); /* pairs: pop's release */
    uint64_t tail = baton__load_acquire((_Atomic uint64_t *)&q->tail); /* pairs: push's release */
    uint64_t n = tail - head;
    return n > q->mask + 1 ? (size_t)q->mask + 1 : (size_t)n;
}

/* Room for how many more items, refreshing the cached head only when the cache says too few. */
static inline uint64_t baton__spsc_room(baton_spsc *q, uint64_t tail, uint64_t want)
{
    uint64_t cap = q->mask + 1;
    uint64_t room = cap - (tail - q->head_cache);
    if (room < want) {
        /* Acquire pairs with the consumer's release store of head: it has finished reading the
         * slots we are about to overwrite. */
        q->head_cache = baton__load_acquire(&q->head);
        room = cap - (tail - q->head_cache);
    }
    return room;
}

/* Items available to pop, refreshing the cached tail only when the cache says too few. */
static inline uint64_t baton__spsc_avail(baton_spsc *q, uint64_t head, uint64_t want)
{
    uint64_t avail = q->tail_cache - head;
    if (avail < want) {
        /* Acquire pairs with the producer's release store of tail: the slots are written. */
        q->tail_cache = baton__load_acquire(&q->tail);
        avail = q->tail_cache - head;
    }
    return avail;
}

int baton_spsc_try_push(baton_spsc *q, void *item)
{
    /* Relaxed: close is ordered with pushes by the caller (see queue.h). */
    if (baton__load_relaxed(&q->closed))
        return BATON_ECLOSED;
    uint64_t tail = baton__load_relaxed(&q->tail);
    if (baton__spsc_room(q, tail, 1) == 0)
        return BATON_EAGAIN;
    q->slots[tail & q->mask] = item;
    /* Release pairs with the consumer's acquire load of tail. */
    baton__store_release(&q->tail, tail + 1);
    baton__waitpoint_notify(&q->not_empty, false);
    return 0;
}

int baton_spsc_push_n(baton_spsc *q, void *const *items, size_t n, size_t *pushed)
{
    if (items == NULL && n != 0)
        return baton__ring_null("baton_spsc_push_n", "items");
    if (pushed != NULL)
        *pushed = 0;
    if (baton__load_relaxed(&q->closed))
        return BATON_ECLOSED;
    if (n == 0)
        return 0;
    uint64_t tail = baton__load_relaxed(&q->tail);
    uint64_t room = baton__spsc_room(q, tail, n);
    if (room == 0)
        return BATON_EAGAIN;
    size_t k = room < n ? (size_t)room : n;
    for (size_t i = 0; i < k; i++)
        q->slots[(tail + i) & q->mask] = items[i];
    /* Release pairs with the consumer's acquire load of tail. */
    baton__store_release(&q->tail, tail + k);
    baton__waitpoint_notify(&q->not_empty, false);
    if (pushed != NULL)
        *pushed = k;
    return 0;
}

/* Empty: BATON_EEOF once closed, else BATON_EAGAIN. */
static int baton__spsc_empty(baton_spsc *q, uint64_t head)
{
    /* Acquire pairs with the release store in baton_spsc_close: every push that returned before
     * close is visible to the reload of tail below. */
    if (!baton__load_acquire(&q->closed))
        return BATON_EAGAIN;
    return baton__spsc_avail(q, head, 1) == 0 ? BATON_EEOF : BATON_EAGAIN;
}

int baton_spsc_try_pop(baton_spsc *q, void **item)
{
    if (item == NULL)
        return baton__ring_null("baton_spsc_try_pop", "item");
    uint64_t head = baton__load_relaxed(&q->head);
    if (baton__spsc_avail(q, head, 1) == 0)
        return baton__spsc_empty(q, head);
    *item = q->slots[head & q->mask];
    /* Release pairs with the producer's acquire load of head: we are done with the slot. */
    baton__store_release(&q->head, head + 1);
    baton__waitpoint_notify(&q->not_full, false);
    return 0;
}

int baton_spsc_pop_n(baton_spsc *q, void **items, size_t max, size_t *popped)
{
    if (items == NULL && max != 0)
        return baton__ring_null("baton_spsc_pop_n", "items");
    if (popped != NULL)
        *popped = 0;
    if (max == 0)
        return 0;
    uint64_t head = baton__load_relaxed(&q->head);
    uint64_t avail = baton__spsc_avail(q, head, max);
    if (avail == 0)
        return baton__spsc_empty(q, head);
    size_t k = avail < max ? (size_t)avail : max;
    for (size_t i = 0; i < k; i++)
        items[i] = q->slots[(head + i) & q->mask];
    /* Release pairs with the producer's acquire load of head. */
    baton__store_release(&q->head, head + k);
    baton__waitpoint_notify(&q->not_full, false);
    if (popped != NULL)
        *popped = k;
    return 0;
}

static bool baton__spsc_can_push(void *arg)
{
    baton_spsc *q = arg;
    return baton__load_relaxed(&q->closed) ||
           baton__load_relaxed(&q->tail) - baton__load_relaxed(&q->head) <= q->mask;
}

bool baton__spsc_can_pop(void *arg)
{
    baton_spsc *q = arg;
    return baton__load_relaxed(&q->closed) ||
           baton__load_relaxed(&q->tail) != baton__load_relaxed(&q->head);
}

static int baton__spsc_push_op(void *q, void *arg)
{
    return baton_spsc_try_push(q, *(void **)arg);
}

static int baton__spsc_pop_op(void *q, void *arg)
{
    return baton_spsc_try_pop(q, arg);
}

int baton_spsc_push(baton_spsc *q, void *item, uint64_t timeout_ns)
{
    int rc = baton_spsc_try_push(q, item); /* the common case, without an indirect call */
    if (rc != BATON_EAGAIN)
        return rc;
    return baton__ring_wait_op(&q->not_full, baton__spsc_push_op, baton__spsc_can_push, q, &item,
                               timeout_ns);
}

int baton_spsc_pop(baton_spsc *q, void **item, uint64_t timeout_ns)
{
    int rc = baton_spsc_try_pop(q, item);
    if (rc != BATON_EAGAIN)
        return rc;
    return baton__ring_wait_op(&q->not_empty, baton__spsc_pop_op, baton__spsc_can_pop, q, item,
                               timeout_ns);
}

void baton_spsc_close(baton_spsc *q)
{
    /* Release pairs with the acquire load in baton__spsc_empty. */
    baton__store_release(&q->closed, 1);
    baton__waitpoint_notify(&q->not_empty, true);
    baton__waitpoint_notify(&q->not_full, true);
}

void baton__spsc_set_position(baton_spsc *q, uint64_t pos)
{
    baton__store_relaxed(&q->tail, pos);
    baton__store_relaxed(&q->head, pos);
    q->head_cache = pos;
    q->tail_cache = pos;
}

baton__waitpoint *baton__spsc_consumer_waitpoint(baton_spsc *q)
{
    return &q->not_empty;
}
