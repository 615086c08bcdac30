/*
 * ready.c — the ready queue (see ready.h).
 *
 * The owner's pop and a thief's steal race for the last element. Each announces itself (the
 * owner by lowering bottom, the thief by reading top) and then reads the other's index; with both
 * sides sequentially consistent, at least one of them sees the other and the CAS on top decides.
 * The C11 formulation uses seq_cst fences; gcc's ThreadSanitizer does not model fences, so this
 * uses seq_cst accesses on bottom and top instead, which give the same store-load order and which
 * TSan does understand. The slots are relaxed atomics: a thief may read a slot the owner is
 * rewriting, but then its CAS on top fails and it discards what it read.
 */
#include "graph/ready.h"

#include "core/alloc.h"

int baton__ready_init(baton__ready *queue, uint64_t capacity)
{
    uint64_t size = 2;
    while (size < capacity)
        size <<= 1;
    queue->slots = baton__calloc(size, sizeof *queue->slots);
    if (queue->slots == NULL)
        return BATON_ENOMEM;
    queue->mask = (int64_t)size - 1;
    atomic_init(&queue->top, 0);
    atomic_init(&queue->bottom, 0);
    return 0;
}

void baton__ready_destroy(baton__ready *queue)
{
    baton__free((void *)queue->slots);
    queue->slots = NULL;
}

void baton__ready_push(baton__ready *queue, uint32_t node)
{
    int64_t bottom = atomic_load_explicit(&queue->bottom, memory_order_relaxed);
    atomic_store_explicit(&queue->slots[bottom & queue->mask], node, memory_order_relaxed);
    /* Release: pairs with the thief's acquire load of bottom, so the slot is written first. */
    atomic_store_explicit(&queue->bottom, bottom + 1, memory_order_release);
}

bool baton__ready_pop(baton__ready *queue, uint32_t *node)
{
    int64_t bottom = atomic_load_explicit(&queue->bottom, memory_order_relaxed) - 1;
    /* seq_cst store then seq_cst load of top: the Dekker pair with baton__ready_steal. */
    atomic_store_explicit(&queue->bottom, bottom, memory_order_seq_cst);
    int64_t top = atomic_load_explicit(&queue->top, memory_order_seq_cst);
    if (top > bottom) {
        atomic_store_explicit(&queue->bottom, bottom + 1, memory_order_relaxed);
        return false;
    }
    *node = atomic_load_explicit(&queue->slots[bottom & queue->mask], memory_order_relaxed);
    if (top < bottom)
        return true;
    /* The last element: race the thieves for it. seq_cst pairs with their CAS. */
    bool won = atomic_compare_exchange_strong_explicit(&queue->top, &top, top + 1,
                                                       memory_order_seq_cst,
                                                       memory_order_relaxed);
    atomic_store_explicit(&queue->bottom, bottom + 1, memory_order_relaxed);
    return won;
}

bool baton__ready_steal(baton__ready *queue, uint32_t *node)
{
    /* seq_cst load of top, then of bottom: the thief's half of the Dekker pair with pop. */
    int64_t top = atomic_load_explicit(&queue->top, memory_order_seq_cst);
    int64_t bottom = atomic_load_explicit(&queue->bottom, memory_order_seq_cst);
    if (top >= bottom)
        return false;
    uint32_t value = atomic_load_explicit(&queue->slots[top & queue->mask], memory_order_relaxed);
    /* seq_cst: pairs with the owner's CAS on the last element and its seq_cst store of bottom. */
    if (!atomic_compare_exchange_strong_explicit(&queue->top, &top, top + 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return false;
    *node = value;
    return true;
}
