/*
 * ready.h — a worker's queue of ready node activations: a Chase-Lev deque (Lê et al., 2013) of
 * node indices with a fixed capacity. The owner pushes and pops at the bottom (newest first, so
 * an item tends to travel down the pipeline on the worker that made it, while it is in cache);
 * idle workers steal the oldest from the top.
 *
 * The capacity never runs out: a node has at most max_active activations in all queues
 * together, so a queue sized to the sum of max_active over all nodes holds all of them.
 */
#ifndef BATON_GRAPH_READY_H
#define BATON_GRAPH_READY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "baton/core.h"

typedef struct baton__ready {
    BATON_CACHELINE_ALIGNED _Atomic int64_t top;    /* thieves and the owner's last pop */
    BATON_CACHELINE_ALIGNED _Atomic int64_t bottom; /* owner */
    _Atomic uint32_t *slots;
    int64_t mask;
} baton__ready;

/* capacity: rounded up to a power of two. Returns 0 or BATON_ENOMEM. */
int baton__ready_init(baton__ready *queue, uint64_t capacity);
void baton__ready_destroy(baton__ready *queue);

/* Owner only. The caller guarantees room (see above). */
void baton__ready_push(baton__ready *queue, uint32_t node);

/* Owner only. The newest node, or false when empty. */
bool baton__ready_pop(baton__ready *queue, uint32_t *node);

/* Any thread. The oldest node, or false when empty or lost to another thief. */
bool baton__ready_steal(baton__ready *queue, uint32_t *node);

/* Any thread: whether the queue held something at a recent instant. */
static inline bool baton__ready_nonempty(baton__ready *queue)
{
    int64_t top = atomic_load_explicit(&queue->top, memory_order_acquire);
    int64_t bottom = atomic_load_explicit(&queue->bottom, memory_order_acquire);
    return bottom > top;
}

#endif /* BATON_GRAPH_READY_H */
