/*
 * reorder.c — the reorder buffer: values arrive by sequence number in any order and leave in
 * order.
 *
 * DESIGN
 *  - A ring of `window` slots; sequence number s lives in slot s & mask. Within the accepted
 *    range [next, next + window) each slot belongs to exactly one sequence number, so a slot
 *    needs no tag, only a state: EMPTY, WRITING (an inserter claimed it), FULL.
 *  - An insert claims its slot with a CAS (so two inserts of the same number cannot both
 *    succeed), writes the value and publishes it with a release store. The consumer takes the
 *    slot of next when it is FULL, empties it, and only then advances next (release), so an
 *    inserter that sees the new next also sees the slot empty.
 *  - An insert checks its number against next as the consumer last published it; a stale next
 *    can only make it answer BATON_EAGAIN too early, never accept a number outside the window.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "baton/queue.h"

enum { BATON__RB_EMPTY = 0, BATON__RB_WRITING = 1, BATON__RB_FULL = 2 };

typedef struct baton__reorder_slot {
    _Atomic uint32_t state;
    void *value;
} baton__reorder_slot;

struct baton_reorder {
    BATON_CACHELINE_ALIGNED _Atomic uint64_t next; /* written by the consumer */
    BATON_CACHELINE_ALIGNED baton__reorder_slot *slots;
    uint64_t mask;
};

int baton_reorder_create(size_t window, uint64_t first_seq, baton_reorder **out)
{
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_reorder_create: out is NULL");
    if (window == 0 || window > BATON_DRAIN_MAX_WINDOW)
        return baton__error(BATON_EINVAL, "baton_reorder_create: window %zu is out of range "
                            "[1, %llu]", window, (unsigned long long)BATON_DRAIN_MAX_WINDOW);
    uint64_t cap = 1;
    while (cap < window)
        cap <<= 1;
    baton_reorder *rb = baton__aligned_alloc(BATON_CACHELINE, sizeof *rb);
    baton__reorder_slot *slots = baton__calloc((size_t)cap, sizeof *slots);
    if (rb == NULL || slots == NULL) {
        baton__free(rb);
        baton__free(slots);
        return baton__error(BATON_ENOMEM, "baton_reorder_create: no memory for %llu slots",
                            (unsigned long long)cap);
    }
    memset(rb, 0, sizeof *rb);
    for (uint64_t i = 0; i < cap; i++)
        atomic_init(&slots[i].state, BATON__RB_EMPTY);
    atomic_init(&rb->next, first_seq);
    rb->slots = slots;
    rb->mask = cap - 1;
    *out = rb;
    return 0;
}

void baton_reorder_destroy(baton_reorder *rb)
{
    if (rb == NULL)
        return;
    baton__free(rb->slots);
    baton__free(rb);
}

size_t baton_reorder_window(const baton_reorder *rb)
{
    return (size_t)rb->mask + 1;
}

uint64_t baton_reorder_next(const baton_reorder *rb)
{
    return baton__load_relaxed((_Atomic uint64_t *)&rb->next);
}

int baton_reorder_insert(baton_reorder *rb, uint64_t seq, void *value)
{
    /* Acquire pairs with the release store of next in pop: slots below next are empty. */
    uint64_t next = baton__load_acquire(&rb->next);
    if ((int64_t)(seq - next) < 0)
        return baton__error(BATON_ERANGE, "baton_reorder_insert: seq %llu was already popped "
                            "(next is %llu)", (unsigned long long)seq, (unsigned long long)next);
    if (seq - next > rb->mask)
        return BATON_EAGAIN;
    baton__reorder_slot *slot = &rb->slots[seq & rb->mask];
    uint32_t expected = BATON__RB_EMPTY;
    /* Relaxed: the claim only excludes other inserters; the release store below publishes. */
    if (!atomic_compare_exchange_strong_explicit(&slot->state, &expected, BATON__RB_WRITING,
                                                 memory_order_relaxed, memory_order_relaxed))
        return baton__error(BATON_EEXIST, "baton_reorder_insert: seq %llu is already in the "
                            "buffer", (unsigned long long)seq);
    slot->value = value;
    /* Release pairs with the consumer's acquire load of state: value is written. */
    baton__store_release(&slot->state, BATON__RB_FULL);
    return 0;
}

int baton_reorder_pop(baton_reorder *rb, uint64_t *seq, void **value)
{
    uint64_t next = baton__load_relaxed(&rb->next);
    baton__reorder_slot *slot = &rb->slots[next & rb->mask];
    /* Acquire pairs with the inserter's release store of FULL. */
    if (baton__load_acquire(&slot->state) != BATON__RB_FULL)
        return BATON_EAGAIN;
    *value = slot->value;
    if (seq != NULL)
        *seq = next;
    baton__store_relaxed(&slot->state, BATON__RB_EMPTY);
    /* Release pairs with the inserters' acquire load of next: the slot is empty again. */
    baton__store_release(&rb->next, next + 1);
    return 0;
}
