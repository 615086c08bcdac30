/*
 * deque.h — the Chase-Lev work-stealing deque of one worker: the owner pushes and pops at the
 * bottom, thieves steal from the top. Holds pointers to jobs; never owns them.
 */
#ifndef BATON_POOL_DEQUE_H
#define BATON_POOL_DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "baton/core.h"

typedef struct baton__job baton__job;

typedef struct baton__deque_array {
    int64_t mask;                          /* capacity - 1; capacity is a power of two */
    struct baton__deque_array *retired;    /* older arrays, freed with the deque */
    _Atomic(baton__job *) slots[];
} baton__deque_array;

typedef struct baton__deque {
    /* Thieves CAS top; the owner writes bottom on every push and pop. Keeping them on separate
     * cache lines stops a steal from invalidating the line the owner's next push writes. */
    BATON_CACHELINE_ALIGNED _Atomic int64_t top;
    BATON_CACHELINE_ALIGNED _Atomic int64_t bottom;
    _Atomic(baton__deque_array *) array;
} baton__deque;

/* capacity: initial number of slots, rounded up to a power of two. Returns 0 or BATON_ENOMEM. */
int baton__deque_init(baton__deque *deque, int64_t capacity);

/* Frees the arrays. No thread may use the deque any more. */
void baton__deque_destroy(baton__deque *deque);

/* Owner only. Returns 0, or BATON_ENOMEM when the deque had to grow and could not. */
int baton__deque_push(baton__deque *deque, baton__job *job);

/* Owner only. Returns the most recently pushed job, or NULL when the deque is empty. */
baton__job *baton__deque_pop(baton__deque *deque);

/* Any thread. Returns the oldest job, or NULL when the deque is empty or another thread won the
 * race for it (*out_lost_race says which). Lock-free. */
baton__job *baton__deque_steal(baton__deque *deque, bool *out_lost_race);

/* Any thread: true when the deque looked non-empty at a recent instant. seq_cst, so that a
 * worker about to sleep and a pusher about to wake it cannot both miss each other. */
static inline bool baton__deque_looks_nonempty(baton__deque *deque)
{
    int64_t t = atomic_load_explicit(&deque->top, memory_order_seq_cst);
    int64_t b = atomic_load_explicit(&deque->bottom, memory_order_seq_cst);
    return b > t;
}

#endif /* BATON_POOL_DEQUE_H */
