/*
 * peer_moodycamel.cpp — the moodycamel contender of `baton-bench queue`: ConcurrentQueue (Debian's
 * libconcurrentqueue-dev, <concurrentqueue/blockingconcurrentqueue.h>), in its blocking wrapper
 * BlockingConcurrentQueue so that the consumer can sleep in wait_dequeue rather than poll. Each
 * producer enqueues through its own ProducerToken (an explicit producer: the library's fast path,
 * a private sub-queue per producer) and the consumer dequeues through a ConsumerToken.
 *
 * mpsc only. The queue keeps items in order per producer but not across producers: a consumer
 * may take a later item of one producer before an earlier item of another, so a pill pushed by
 * main after the producers have joined could be taken while producers' items are still queued.
 * So here each producer pushes its own pill after its last item, through its own token (after
 * its items, by the per-producer order), and the consumer stops after one pill per producer
 * (struct queue_peer_info's producers_push_poison; queue_workloads.h, "Ends"). The same trick
 * does not carry over to several consumers, hence no mpmc.
 *
 * The queue is unbounded: a producer that outruns the consumer makes it allocate blocks. It is
 * created with room for QUEUE_RING_CAPACITY items per producer preallocated (the constructor's
 * minCapacity, per explicit producer), so that up to the bounded contenders' capacity nothing is
 * allocated in the timed section; past that, allocating is the library's own cost.
 *
 * Protocol, threads and timing: bench/peers/queue_peer_common.h.
 */
#include "../queue_peer_common.h"

#include <new>

#include <concurrentqueue/blockingconcurrentqueue.h>

using Queue = moodycamel::BlockingConcurrentQueue<uint64_t>;

static const char *const peer_name = "baton-peer-moodycamel";

static void *queue_peer_create(unsigned producers, unsigned consumers)
{
    (void)consumers;
    try {
        return new Queue(QUEUE_RING_CAPACITY, producers, 0);
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
    (void)pushes;
    auto *token = new (std::nothrow) Queue::producer_token_t(*static_cast<Queue *>(queue));
    if (token == nullptr || !token->valid()) {
        fprintf(stderr, "%s: cannot make a producer token\n", peer_name);
        delete token;
        return false;
    }
    *handle = token;
    return true;
}

static void queue_peer_producer_close(void *queue, void *handle)
{
    (void)queue;
    delete static_cast<Queue::producer_token_t *>(handle);
}

static bool queue_peer_consumer_open(void *queue, void **handle)
{
    auto *token = new (std::nothrow) Queue::consumer_token_t(*static_cast<Queue *>(queue));
    if (token == nullptr) {
        fprintf(stderr, "%s: cannot make a consumer token\n", peer_name);
        return false;
    }
    *handle = token;
    return true;
}

static void queue_peer_consumer_close(void *queue, void *handle)
{
    (void)queue;
    delete static_cast<Queue::consumer_token_t *>(handle);
}

static void queue_peer_push(void *queue, void *handle, uint64_t v)
{
    // False only when a block cannot be allocated.
    if (!static_cast<Queue *>(queue)->enqueue(*static_cast<Queue::producer_token_t *>(handle),
                                              v)) {
        fprintf(stderr, "%s: enqueue failed (out of memory)\n", peer_name);
        exit(PEER_EXIT_USAGE);
    }
}

static uint64_t queue_peer_pop(void *queue, void *handle)
{
    uint64_t v = 0; // pop always assigns it; gcc cannot see that through the library
    static_cast<Queue *>(queue)->wait_dequeue(*static_cast<Queue::consumer_token_t *>(handle), v);
    return v;
}

int main(int argc, char **argv)
{
    queue_peer_info info;
    info.name = peer_name;
    info.cases = QUEUE_CASE_BIT(QUEUE_MPSC);
    info.producers_push_poison = true;
    return queue_peer_main(argc, argv, &info);
}
