/*
 * deque.c — Chase-Lev work-stealing deque (Chase & Lev, SPAA 2005) with the C11 memory orders of
 * Lê, Pop, Cohen and Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak Memory
 * Models" (PPoPP 2013).
 *
 * DESIGN
 *  - top only grows (thieves and the owner's last-item pop CAS it); bottom is written by the
 *    owner only. Items live in [top, bottom).
 *  - The paper's seq_cst fences are expressed here as seq_cst accesses instead: the owner's
 *    store of bottom in pop and its load of top, and the thief's loads of top and bottom, all
 *    take part in the single total order of seq_cst operations, which is what the fences buy
 *    (a thief and the owner racing for the last item cannot both miss each other's update).
 *    ThreadSanitizer understands seq_cst accesses; it does not model standalone fences.
 *  - Growing copies [top, bottom) into an array twice the size and publishes it with a release
 *    store before bottom moves past the old capacity. A thief that still holds the old array
 *    reads a valid item for any index it can win by CAS, because the old array is never written
 *    again and is only freed with the deque ("retire late", as the paper and crossbeam do).
 *    Arrays only grow, so retired memory is at most the size of the live array.
 */
#include "pool/deque.h"

#include "core/alloc.h"
#include "core/atomic.h"

static baton__deque_array *baton__deque_array_new(int64_t capacity)
{
    baton__deque_array *a =
        baton__aligned_alloc(BATON_CACHELINE, sizeof *a + (size_t)capacity * sizeof a->slots[0]);
    if (a == NULL)
        return NULL;
    a->mask = capacity - 1;
    a->retired = NULL;
    for (int64_t i = 0; i < capacity; i++)
        atomic_init(&a->slots[i], NULL);
    return a;
}

int baton__deque_init(baton__deque *deque, int64_t capacity)
{
    int64_t c = 16;
    while (c < capacity)
        c <<= 1;
    baton__deque_array *a = baton__deque_array_new(c);
    if (a == NULL)
        return BATON_ENOMEM;
    atomic_init(&deque->top, 0);
    atomic_init(&deque->bottom, 0);
    atomic_init(&deque->array, a);
    return 0;
}

void baton__deque_destroy(baton__deque *deque)
{
    baton__deque_array *a = baton__load_relaxed(&deque->array);
    while (a != NULL) {
        baton__deque_array *older = a->retired;
        baton__free(a);
        a = older;
    }
    atomic_store_explicit(&deque->array, NULL, memory_order_relaxed);
}

static baton__deque_array *baton__deque_grow(baton__deque *deque, baton__deque_array *old,
                                             int64_t top, int64_t bottom)
{
    baton__deque_array *a = baton__deque_array_new((old->mask + 1) * 2);
    if (a == NULL)
        return NULL;
    for (int64_t i = top; i < bottom; i++)
        baton__store_relaxed(&a->slots[i & a->mask], baton__load_relaxed(&old->slots[i & old->mask]));
    a->retired = old;
    /* Release pairs with the acquire load of array in baton__deque_steal: a thief that sees the
     * new array sees the items copied into it. */
    baton__store_release(&deque->array, a);
    return a;
}

int baton__deque_push(baton__deque *deque, baton__job *job)
{
    int64_t b = baton__load_relaxed(&deque->bottom);
    /* Acquire pairs with the thieves' seq_cst CAS of top: slots they have taken are free. */
    int64_t t = baton__load_acquire(&deque->top);
    baton__deque_array *a = baton__load_relaxed(&deque->array);
    if (b - t > a->mask) {
        a = baton__deque_grow(deque, a, t, b);
        if (a == NULL)
            return BATON_ENOMEM;
    }
    baton__store_relaxed(&a->slots[b & a->mask], job);
    /* Release pairs with the thief's seq_cst load of bottom: the slot and everything the owner
     * wrote into the job before pushing it are visible to whoever steals it. */
    baton__store_release(&deque->bottom, b + 1);
    return 0;
}

baton__job *baton__deque_pop(baton__deque *deque)
{
    int64_t b = baton__load_relaxed(&deque->bottom) - 1;
    baton__deque_array *a = baton__load_relaxed(&deque->array);
    /* seq_cst store then seq_cst load of top: a thief's seq_cst load of bottom either sees the
     * decrement, or this load sees the thief's CAS of top (the paper's fence in take()). */
    baton__store_seq_cst(&deque->bottom, b);
    int64_t t = baton__load_seq_cst(&deque->top);
    if (t > b) {
        /* Empty: restore bottom. */
        baton__store_relaxed(&deque->bottom, b + 1);
        return NULL;
    }
    baton__job *job = baton__load_relaxed(&a->slots[b & a->mask]);
    if (t == b) {
        /* Last item: race the thieves for it through top. */
        if (!baton__cas_strong_seq_cst(&deque->top, &t, t + 1))
            job = NULL;
        baton__store_relaxed(&deque->bottom, b + 1);
    }
    return job;
}

baton__job *baton__deque_steal(baton__deque *deque, bool *out_lost_race)
{
    *out_lost_race = false;
    /* seq_cst loads: see baton__deque_pop. The load of bottom also acquires the owner's release
     * store in push, which makes the job's contents visible. */
    int64_t t = baton__load_seq_cst(&deque->top);
    int64_t b = baton__load_seq_cst(&deque->bottom);
    if (t >= b)
        return NULL;
    /* Acquire pairs with the release store in baton__deque_grow. */
    baton__deque_array *a = baton__load_acquire(&deque->array);
    baton__job *job = baton__load_relaxed(&a->slots[t & a->mask]);
    if (!baton__cas_strong_seq_cst(&deque->top, &t, t + 1)) {
        *out_lost_race = true;
        return NULL;
    }
    return job;
}
