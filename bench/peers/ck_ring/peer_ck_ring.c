/*
 * peer_ck_ring.c — the Concurrency Kit contender of `baton-bench queue`: ck_ring's
 * single-producer single-consumer ring (ck_ring_enqueue_spsc / ck_ring_dequeue_spsc), one ring
 * and its buffer per producer->consumer pair. spsc only: that is the ring ck tunes for the case
 * (its mpmc variants are a different algorithm, not the one this contender stands for).
 *
 * Capacity: a ck_ring of size N (a power of two) keeps one slot free to tell full from empty, so
 * it holds N - 1 items. The ring is QUEUE_RING_CAPACITY slots, so it holds 1023 items where the
 * other bounded contenders hold 1024: the nearest ck can come (2048 slots would hold 2047), and
 * one slot in a thousand changes nothing measurable.
 *
 * Items travel as void * (from uintptr_t), ck_ring's element type. ck_ring never waits: a full
 * push and an empty pop retry after struct queue_backoff's snooze. Protocol, threads and timing:
 * bench/peers/queue_peer_common.h.
 */
#include "../queue_peer_common.h"

#include <ck_ring.h>

_Static_assert(sizeof(void *) >= sizeof(uint64_t), "items travel as pointers: 64-bit only");

struct ck_queue {
    struct ck_ring ring; /* cache-line padded between the consumer's and the producer's ends */
    struct ck_ring_buffer buffer[QUEUE_RING_CAPACITY];
};

static void *queue_peer_create(unsigned producers, unsigned consumers)
{
    (void)producers;
    (void)consumers;
    struct ck_queue *q = NULL;
    if (posix_memalign((void **)&q, 128, sizeof *q) != 0) {
        fprintf(stderr, "baton-peer-ck_ring: out of memory for a ring\n");
        return NULL;
    }
    ck_ring_init(&q->ring, QUEUE_RING_CAPACITY);
    return q;
}

static void queue_peer_destroy(void *queue)
{
    free(queue);
}

static bool queue_peer_producer_open(void *queue, uint64_t pushes, void **handle)
{
    (void)queue;
    (void)pushes;
    *handle = NULL;
    return true;
}

static void queue_peer_producer_close(void *queue, void *handle)
{
    (void)queue;
    (void)handle;
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
    (void)handle;
    struct ck_queue *q = (struct ck_queue *)queue;
    struct queue_backoff b;
    queue_backoff_reset(&b);
    while (!ck_ring_enqueue_spsc(&q->ring, q->buffer, (void *)(uintptr_t)v))
        queue_backoff_snooze(&b);
}

static uint64_t queue_peer_pop(void *queue, void *handle)
{
    (void)handle;
    struct ck_queue *q = (struct ck_queue *)queue;
    struct queue_backoff b;
    void *item;
    queue_backoff_reset(&b);
    while (!ck_ring_dequeue_spsc(&q->ring, q->buffer, &item))
        queue_backoff_snooze(&b);
    return (uint64_t)(uintptr_t)item;
}

int main(int argc, char **argv)
{
    struct queue_peer_info info;
    info.name = "baton-peer-ck_ring";
    info.cases = QUEUE_CASE_BIT(QUEUE_SPSC);
    info.producers_push_poison = false;
    return queue_peer_main(argc, argv, &info);
}
