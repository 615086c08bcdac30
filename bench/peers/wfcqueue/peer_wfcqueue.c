/*
 * peer_wfcqueue.c — the liburcu contender of `baton-bench queue`: the wait-free concurrent queue
 * (urcu/wfcqueue.h), an unbounded intrusive linked list with a wait-free enqueue (one xchg on the
 * tail) and a dequeue that needs mutual exclusion among dequeuers. mpsc only: several producers
 * enqueue, the one consumer dequeues without a lock (the queue's own synchronisation table says
 * that a single dequeuing thread needs none).
 *
 * Built with _LGPL_SOURCE: every cds_wfcq_* function is then the static inline of
 * urcu/static/wfcqueue.h, so there is nothing to link and no call into the shared library per
 * item (the way liburcu recommends for LGPL-compatible code that wants speed).
 *
 * Dequeue: __cds_wfcq_dequeue_nonblocking on a lock-free head (__cds_wfcq_head), retried after
 * struct queue_backoff's snooze. Why not the other dequeues:
 *   - cds_wfcq_dequeue_blocking locks the head's pthread mutex around every dequeue, a cost that
 *     buys nothing with a single consumer;
 *   - both blocking variants, when they find an enqueue half done (the tail swapped, the link not
 *     yet written, e.g. a producer preempted in between), spin 10 times and then sleep 10 ms in
 *     poll(): with more threads than cores that sleep would dominate the run. The nonblocking
 *     one returns CDS_WFCQ_WOULDBLOCK instead and the consumer waits by the common rule;
 *   - all of them return NULL on an empty queue, so the consumer needs its own wait anyway.
 *
 * Nodes: intrusive, one per push (items and poison pills), allocated and written (so that their
 * pages are faulted in) by producer_open, before the clock starts; a producer takes the next
 * one from its own array for each push. Memory is 16 bytes per item; the peer refuses (exit 2)
 * to hold more nodes than half the machine's physical memory, rather than let malloc overcommit
 * and the kernel's OOM killer end the run (or a neighbour) while the nodes are written.
 *
 * Protocol, threads and timing: bench/peers/queue_peer_common.h.
 */
#include "../queue_peer_common.h"

#include <unistd.h>

#include <urcu/wfcqueue.h>

#define WFQ_CACHE_LINE 64

struct wfq_item {
    struct cds_wfcq_node node; /* first: a node pointer is an item pointer */
    uint64_t value;
};

/* Head (the consumer's end) and tail (the producers' xchg target) on separate cache lines, as
 * the library advises for concurrent enqueue and dequeue. */
struct wfq_queue {
    _Alignas(WFQ_CACHE_LINE) struct __cds_wfcq_head head;
    _Alignas(WFQ_CACHE_LINE) struct cds_wfcq_tail tail;
};

struct wfq_producer {
    struct wfq_item *items;
    uint64_t next;
    uint64_t bytes;
};

/* Bytes of nodes held by all producers (main thread only: open and close run there). */
static uint64_t wfq_bytes_held;

static uint64_t wfq_bytes_allowed(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return UINT64_MAX;
    return (uint64_t)pages * (uint64_t)page / 2;
}

static void *queue_peer_create(unsigned producers, unsigned consumers)
{
    (void)producers;
    (void)consumers;
    struct wfq_queue *q = NULL;
    if (posix_memalign((void **)&q, WFQ_CACHE_LINE, sizeof *q) != 0) {
        fprintf(stderr, "baton-peer-wfcqueue: out of memory for a queue\n");
        return NULL;
    }
    __cds_wfcq_init(&q->head, &q->tail);
    return q;
}

static void queue_peer_destroy(void *queue)
{
    free(queue);
}

static bool queue_peer_producer_open(void *queue, uint64_t pushes, void **handle)
{
    (void)queue;
    struct wfq_producer *p = (struct wfq_producer *)malloc(sizeof *p);
    struct wfq_item *items = NULL;
    uint64_t bytes = pushes * sizeof *items; /* pushes <= 10^10 + 1: no overflow */
    if (p != NULL && wfq_bytes_held + bytes <= wfq_bytes_allowed())
        items = (struct wfq_item *)malloc((size_t)bytes);
    if (items == NULL) {
        fprintf(stderr,
                "baton-peer-wfcqueue: out of memory for %" PRIu64 " nodes (%" PRIu64
                " bytes; at most half the physical memory is used)\n",
                pushes, bytes);
        free(p);
        return false;
    }
    wfq_bytes_held += bytes;
    p->items = items;
    p->bytes = bytes;
    for (uint64_t i = 0; i < pushes; i++) {
        cds_wfcq_node_init(&p->items[i].node);
        p->items[i].value = 0;
    }
    p->next = 0;
    *handle = p;
    return true;
}

static void queue_peer_producer_close(void *queue, void *handle)
{
    (void)queue;
    struct wfq_producer *p = (struct wfq_producer *)handle;
    wfq_bytes_held -= p->bytes;
    free(p->items);
    free(p);
}

static bool queue_peer_consumer_open(void *queue, void **handle)
{
    (void)queue;
    *handle = NULL;
    return true;
}

static void queue_peer_consumer_close(void *queue, void *handle)
{
    (void)queue;
    (void)handle;
}

static void queue_peer_push(void *queue, void *handle, uint64_t v)
{
    struct wfq_queue *q = (struct wfq_queue *)queue;
    struct wfq_producer *p = (struct wfq_producer *)handle;
    struct wfq_item *item = &p->items[p->next++];
    item->value = v;
    cds_wfcq_enqueue(&q->head, &q->tail, &item->node);
}

static uint64_t queue_peer_pop(void *queue, void *handle)
{
    (void)handle;
    struct wfq_queue *q = (struct wfq_queue *)queue;
    struct queue_backoff b;
    struct cds_wfcq_node *node;
    queue_backoff_reset(&b);
    for (;;) {
        node = __cds_wfcq_dequeue_nonblocking(&q->head, &q->tail);
        if (node != NULL && node != CDS_WFCQ_WOULDBLOCK)
            break;
        queue_backoff_snooze(&b);
    }
    return ((struct wfq_item *)node)->value;
}

int main(int argc, char **argv)
{
    struct queue_peer_info info;
    info.name = "baton-peer-wfcqueue";
    info.cases = QUEUE_CASE_BIT(QUEUE_MPSC);
    info.producers_push_poison = false;
    return queue_peer_main(argc, argv, &info);
}
