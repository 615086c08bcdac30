/*
 * mpsc_linked.c — the unbounded intrusive MPSC queue.
 *
 * DESIGN (Vyukov's intrusive MPSC node queue; liburcu's wfcqueue is the same idea)
 *  - A push is one exchange on tail, then a link from the previous tail to the new node: wait-
 *    free, and it never allocates. Between the two steps the list is briefly cut; the consumer
 *    sees that as "not linked yet" and waits for that one node (try_pop: BATON_EAGAIN).
 *  - The consumer owns head. A stub node inside the queue keeps the list non-empty so that
 *    neither side ever handles a NULL tail; when the consumer is about to hand out the last node,
 *    it pushes the stub behind it first, so the node it returns is no longer referenced.
 */
#include <stddef.h>
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/os.h"
#include "core/waitpoint.h"
#include "baton/queue.h"

struct baton_mpsc_linked {
    BATON_CACHELINE_ALIGNED _Atomic(baton_mpsc_node *) tail; /* exchanged by producers */
    BATON_CACHELINE_ALIGNED baton_mpsc_node *head;           /* the consumer's */
    baton_mpsc_node stub;
    BATON_CACHELINE_ALIGNED _Atomic uint32_t closed;
    baton__waitpoint not_empty;
};

int baton_mpsc_linked_create(baton_mpsc_linked **out)
{
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_mpsc_linked_create: out is NULL");
    baton_mpsc_linked *q = baton__aligned_alloc(BATON_CACHELINE, sizeof *q);
    if (q == NULL)
        return baton__error(BATON_ENOMEM, "baton_mpsc_linked_create: no memory");
    memset(q, 0, sizeof *q);
    atomic_init(&q->stub.next, NULL);
    atomic_init(&q->tail, &q->stub);
    q->head = &q->stub;
    atomic_init(&q->closed, 0);
    baton__waitpoint_global_init();
    baton__waitpoint_init(&q->not_empty);
    *out = q;
    return 0;
}

void baton_mpsc_linked_destroy(baton_mpsc_linked *q)
{
    baton__free(q);
}

/* Appends node: the exchange orders producers, the link publishes. */
static void baton__linked_append(baton_mpsc_linked *q, baton_mpsc_node *node)
{
    baton__store_relaxed(&node->next, NULL);
    /* acq_rel: release publishes node's reset link to whoever exchanges after us (and links to
     * it); acquire makes prev's own reset link visible before we overwrite it. */
    baton_mpsc_node *prev = baton__exchange_acq_rel(&q->tail, node);
    /* Release pairs with the consumer's acquire load of next: the node (and the caller's item
     * around it) is written. */
    baton__store_release(&prev->next, node);
}

int baton_mpsc_linked_push(baton_mpsc_linked *q, baton_mpsc_node *node)
{
    if (node == NULL)
        return baton__error(BATON_EINVAL, "baton_mpsc_linked_push: node is NULL");
    /* Relaxed: close is ordered with pushes by the caller (see queue.h). */
    if (baton__load_relaxed(&q->closed))
        return BATON_ECLOSED;
    baton__linked_append(q, node);
    baton__waitpoint_notify(&q->not_empty, false);
    return 0;
}

/* Nothing to pop: BATON_EEOF when closed and truly empty, else BATON_EAGAIN. */
static int baton__linked_nothing(baton_mpsc_linked *q)
{
    /* Acquire pairs with the release store in baton_mpsc_linked_close: every push that returned
     * before close is visible in tail now. */
    if (!baton__load_acquire(&q->closed))
        return BATON_EAGAIN;
    baton_mpsc_node *head = q->head;
    bool empty = head == &q->stub && baton__load_acquire(&q->stub.next) == NULL &&
                 baton__load_acquire(&q->tail) == &q->stub;
    return empty ? BATON_EEOF : BATON_EAGAIN;
}

int baton_mpsc_linked_try_pop(baton_mpsc_linked *q, baton_mpsc_node **out)
{
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_mpsc_linked_try_pop: node is NULL");
    baton_mpsc_node *head = q->head;
    /* Acquire pairs with the release store of next in baton__linked_append. */
    baton_mpsc_node *next = baton__load_acquire(&head->next);
    if (head == &q->stub) {
        if (next == NULL)
            return baton__linked_nothing(q);
        q->head = next;
        head = next;
        next = baton__load_acquire(&next->next);
    }
    if (next != NULL) {
        q->head = next;
        *out = head;
        return 0;
    }
    /* head is the last linked node. If it is also the tail, put the stub behind it so that
     * handing head out leaves the list well formed; if not, a producer is between its exchange
     * and its link, and head->next will appear shortly. */
    if (baton__load_acquire(&q->tail) != head)
        return BATON_EAGAIN;
    baton__linked_append(q, &q->stub);
    next = baton__load_acquire(&head->next);
    if (next == NULL)
        return BATON_EAGAIN; /* another producer got in before the stub; its link is coming */
    q->head = next;
    *out = head;
    return 0;
}

int baton_mpsc_linked_pop_n(baton_mpsc_linked *q, baton_mpsc_node **nodes, size_t max,
                            size_t *popped)
{
    if (nodes == NULL && max != 0)
        return baton__error(BATON_EINVAL, "baton_mpsc_linked_pop_n: nodes is NULL");
    size_t k = 0;
    int rc = 0;
    while (k < max && (rc = baton_mpsc_linked_try_pop(q, &nodes[k])) == 0)
        k++;
    if (popped != NULL)
        *popped = k;
    return k > 0 || max == 0 ? 0 : rc;
}

/* True when try_pop would return a node or end-of-stream without waiting for a producer. */
static bool baton__linked_can_pop(void *arg)
{
    baton_mpsc_linked *q = arg;
    if (baton__load_relaxed(&q->closed))
        return true;
    baton_mpsc_node *head = q->head;
    if (baton__load_relaxed(&head->next) != NULL)
        return true;
    return head != &q->stub && baton__load_relaxed(&q->tail) == head;
}

int baton_mpsc_linked_pop(baton_mpsc_linked *q, baton_mpsc_node **node, uint64_t timeout_ns)
{
    int rc = baton_mpsc_linked_try_pop(q, node);
    if (rc != BATON_EAGAIN)
        return rc;
    uint64_t deadline = baton__deadline_after(timeout_ns);
    for (;;) {
        if (baton__waitpoint_wait(&q->not_empty, baton__linked_can_pop, q, deadline) != 0) {
            rc = baton_mpsc_linked_try_pop(q, node);
            return rc == BATON_EAGAIN ? BATON_ETIMEDOUT : rc;
        }
        rc = baton_mpsc_linked_try_pop(q, node);
        if (rc != BATON_EAGAIN)
            return rc;
        /* Closed but a producer is still linking its node (it pushed before close): let it run. */
        baton__thread_yield();
    }
}

void baton_mpsc_linked_close(baton_mpsc_linked *q)
{
    /* Release pairs with the acquire load in baton__linked_nothing. */
    baton__store_release(&q->closed, 1);
    baton__waitpoint_notify(&q->not_empty, true);
}
