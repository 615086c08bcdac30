/*
 * peer_tbbqueue.cpp — the oneTBB contender of `baton-bench queue`: tbb::concurrent_bounded_queue,
 * oneTBB's bounded multi-producer multi-consumer FIFO, with set_capacity(QUEUE_RING_CAPACITY) and
 * its blocking push (waits while full) and pop (waits while empty); it spins briefly and then
 * sleeps in its own monitor, so no queue_backoff here. spsc (one queue per pair), mpsc and mpmc.
 * The queue is FIFO across producers, so main's pills after the producers have joined come after
 * every item (queue_workloads.h, "Ends"). No task arena is involved: the threads are the
 * harness's pthreads. Protocol, threads and timing: bench/peers/queue_peer_common.h.
 */
#include "../queue_peer_common.h"

#include <new>

#include <tbb/concurrent_queue.h>

using Queue = tbb::concurrent_bounded_queue<uint64_t>;

static const char *const peer_name = "baton-peer-tbbqueue";

static void *queue_peer_create(unsigned producers, unsigned consumers)
{
    (void)producers;
    (void)consumers;
    try {
        Queue *q = new Queue();
        q->set_capacity(QUEUE_RING_CAPACITY);
        return q;
    } catch (const std::bad_alloc &) {
        fprintf(stderr, "%s: out of memory for a queue\n", peer_name);
        return nullptr;
    }
}

static void queue_peer_destroy(void *queue)
{
    delete static_cast<Queue *>(queue);
}

static bool queue_peer_producer_open(void *queue, uint64_t pushes, void **handle)
{
    (void)queue;
    (void)pushes;
    *handle = nullptr;
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
    *handle = nullptr;
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
    static_cast<Queue *>(queue)->push(v);
}

static uint64_t queue_peer_pop(void *queue, void *handle)
{
    (void)handle;
    uint64_t v = 0; // pop always assigns it; gcc cannot see that through the library
    static_cast<Queue *>(queue)->pop(v);
    return v;
}

int main(int argc, char **argv)
{
    queue_peer_info info;
    info.name = peer_name;
    info.cases = QUEUE_CASE_BIT(QUEUE_SPSC) | QUEUE_CASE_BIT(QUEUE_MPSC) | QUEUE_CASE_BIT(QUEUE_MPMC);
    info.producers_push_poison = false;
    return queue_peer_main(argc, argv, &info);
}
