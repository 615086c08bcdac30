/*
 * deque.h — the work-stealing deque of one worker: a Chase-Lev deque with a private end.
 *
 * Jobs in [top, split) are public: thieves take the oldest from the top. Jobs in [split, bottom)
 * are private: only the owner sees them, and pushing or popping them costs no atomic
 * read-modify-write and no fence. The owner makes its private jobs public ("publishes") when it
 * is told that some worker is idle. Holds pointers to jobs; never owns them.
 */
#ifndef BATON_POOL_DEQUE_H
#define BATON_POOL_DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "baton/core.h"

typedef struct baton__job baton__job;

typedef struct baton__deque_array {
    int64_t mask;                       /* capacity - 1; capacity is a power of two */
    struct baton__deque_array *retired; /* older arrays, freed with the deque */
    _Atomic(baton__job *) slots[];
} baton__deque_array;

typedef struct baton__deque {
    /* Thieves CAS top; the owner writes split when it publishes or takes a public job. Separate
     * lines so that a steal does not invalidate the line the owner's next push reads. */
    BATON_CACHELINE_ALIGNED _Atomic int64_t top;
    BATON_CACHELINE_ALIGNED _Atomic int64_t split;
    _Atomic(baton__deque_array *) array;
    /* Owner-only: the end of the private jobs, and the owner's copy of split. */
    int64_t bottom;
    int64_t owner_split;
} baton__deque;

/* capacity: initial number of slots, rounded up to a power of two. Returns 0 or BATON_ENOMEM. */
int baton__deque_init(baton__deque *deque, int64_t capacity);

/* Frees the arrays. No thread may use the deque any more. */
void baton__deque_destroy(baton__deque *deque);

/* Owner only. Pushes job; with publish, every job of the deque is public afterwards (job
 * included), else job stays private. Returns 0, or BATON_ENOMEM when the deque could not grow. */
int baton__deque_push(baton__deque *deque, baton__job *job, bool publish);

/* Owner only. Makes every private job public. */
void baton__deque_publish(baton__deque *deque);

/* Owner only. Returns the most recently pushed job still in the deque, or NULL when empty.
 * Private jobs cost nothing to pop; a public one is raced for with the thieves, as in Chase-Lev.
 */
baton__job *baton__deque_pop(baton__deque *deque);

/* Any thread. Returns the oldest public job, or NULL when there is none or another thread won
 * the race for it (*out_lost_race says which). Lock-free. */
baton__job *baton__deque_steal(baton__deque *deque, bool *out_lost_race);

/* Any thread: true when the deque had public jobs at a recent instant. seq_cst, so that a worker
 * about to sleep and a publisher about to wake it cannot both miss each other. */
static inline bool baton__deque_has_public(baton__deque *deque)
{
    int64_t t = atomic_load_explicit(&deque->top, memory_order_seq_cst);
    int64_t s = atomic_load_explicit(&deque->split, memory_order_seq_cst);
    return s > t;
}

#endif /* BATON_POOL_DEQUE_H */
