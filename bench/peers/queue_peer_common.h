/*
 * queue_peer_common.h — the command line, threads, timing, checks and output shared by the C and
 * C++ queue benchmark peers (bench/peers/ck_ring, wfcqueue, moodycamel, tbbqueue). Header-only;
 * valid C11 and C++17. Include it first, before any system header (it includes peer_common.h,
 * which makes the POSIX declarations visible under -std=c11). What the cases are, how items are
 * made and checked, who pushes the poison pills and how the clock runs: ../common/queue_workloads.h.
 *
 * Protocol (the driver, `baton-bench queue`, depends on it exactly):
 *
 *     <peer> CASE THREADS ITEMS
 *
 *     CASE     spsc | mpsc | mpmc (a peer that does not support a case rejects it, exit 2)
 *     THREADS  2 .. 64 producer and consumer threads in all (even for spsc and mpmc)
 *     ITEMS    1 .. 10^10 items in all, split among the producers
 *
 * On success exactly one line goes to stdout, `time_s=<%.9g> check=<u64>` (the timed run's
 * seconds and the wrapping sum of every item the consumers received), and the exit status is 0.
 * Bad arguments, an unsupported case, or no memory or threads for the run: a message on stderr,
 * nothing on stdout, exit 2. A wrong result found by the checks (of the warm-up run or the timed
 * one): a message on stderr saying which check failed, nothing on stdout, exit 3.
 *
 * A peer defines the queue_peer_* functions declared below (static, after including this header)
 * and calls queue_peer_main() with a struct queue_peer_info. They are plain static functions
 * rather than pointers in an ops struct so that the producer and consumer loops call them
 * directly and the compiler can inline them: an indirect call per item would be a cost of the
 * harness, paid by every peer but not by baton's in-process contender.
 *
 * Threads are pthreads; the flags are GCC's __atomic builtins, which mean the same in C and C++
 * (C11's <stdatomic.h> cannot be included from C++17) and are what both languages' atomics are
 * built on in gcc and clang. The crossbeam peer (Rust) follows the same steps with std::thread.
 */
#ifndef BATON_BENCH_QUEUE_PEER_COMMON_H
#define BATON_BENCH_QUEUE_PEER_COMMON_H

#include "peer_common.h"

#include <pthread.h>
#include <stdbool.h>

#include "../common/queue_workloads.h"

/* What a peer is, besides its queue functions. */
struct queue_peer_info {
    const char *name;
    unsigned cases; /* QUEUE_CASE_BIT() of every case it supports */
    /* The queue orders items only per producer (moodycamel): in mpsc each producer pushes its own
     * pill after its last item and the consumer stops after one pill per producer, instead of
     * main pushing the pills (queue_workloads.h, "Ends"). Single-consumer cases only. */
    bool producers_push_poison;
};

/*
 * Supplied by the peer. Everything but push and pop runs on the main thread outside the timed
 * section, so setup costs (allocation, tokens, preallocated nodes) are not timed.
 *   create           one queue that `producers` threads push into and `consumers` pop from;
 *                    NULL after a message on stderr
 *   producer_open    per-thread state for a thread that will push exactly `pushes` values (items
 *                    and pills) into `queue`; false after a message. *handle may be NULL.
 *   consumer_open    the same for a thread that pops from `queue`
 *   push             pushes v; when the queue is full, waits (the library's blocking push, or
 *                    retries with struct queue_backoff)
 *   pop              pops a value; when the queue is empty, waits the same way
 */
static void *queue_peer_create(unsigned producers, unsigned consumers);
static void queue_peer_destroy(void *queue);
static bool queue_peer_producer_open(void *queue, uint64_t pushes, void **handle);
static void queue_peer_producer_close(void *queue, void *handle);
static bool queue_peer_consumer_open(void *queue, void **handle);
static void queue_peer_consumer_close(void *queue, void *handle);
static void queue_peer_push(void *queue, void *handle, uint64_t v);
static uint64_t queue_peer_pop(void *queue, void *handle);

#define QUEUE_PEER_MAX_QUEUES (QUEUE_MAX_THREADS / 2)

/* The start flag and the count of threads waiting at it. */
struct queue_peer_start {
    unsigned ready;
    unsigned go;
};

/* One producer or consumer thread. The consumer writes its results here once, when done. */
struct queue_peer_thread {
    pthread_t tid;
    struct queue_peer_start *start;
    void *queue;
    void *handle;
    unsigned index;   /* producer p or consumer c */
    uint64_t items;   /* producer: how many items it sends */
    unsigned pills;   /* producer: pills to push after its items; consumer: pills to wait for */
    struct queue_order_check check; /* consumer: set up by main, the result when done */
    bool rejected;                  /* consumer: the check rejected a value */
    uint64_t rejected_value;        /* ... the first one */
};

static inline void queue_peer_wait_start(struct queue_peer_start *s)
{
    struct queue_backoff b;
    queue_backoff_reset(&b);
    __atomic_add_fetch(&s->ready, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(&s->go, __ATOMIC_ACQUIRE) == 0)
        queue_backoff_snooze(&b);
}

static void *queue_peer_producer_main(void *arg)
{
    struct queue_peer_thread *t = (struct queue_peer_thread *)arg;
    void *queue = t->queue, *handle = t->handle;
    unsigned p = t->index;
    uint64_t n = t->items;
    queue_peer_wait_start(t->start);
    for (uint64_t k = 0; k < n; k++)
        queue_peer_push(queue, handle, queue_item_value(p, k));
    for (unsigned i = 0; i < t->pills; i++)
        queue_peer_push(queue, handle, QUEUE_POISON);
    return NULL;
}

static void *queue_peer_consumer_main(void *arg)
{
    struct queue_peer_thread *t = (struct queue_peer_thread *)arg;
    void *queue = t->queue, *handle = t->handle;
    struct queue_order_check check = t->check;
    bool rejected = false;
    uint64_t rejected_value = 0;
    unsigned pills = 0;
    queue_peer_wait_start(t->start);
    for (;;) {
        uint64_t v = queue_peer_pop(queue, handle);
        if (v == QUEUE_POISON) {
            if (++pills == t->pills)
                break;
            continue;
        }
        /* Keep consuming after a rejected value: stopping would leave producers blocked. */
        if (!queue_order_check_observe(&check, v) && !rejected) {
            rejected = true;
            rejected_value = v;
        }
    }
    t->check = check;
    t->rejected = rejected;
    t->rejected_value = rejected_value;
    return NULL;
}

static inline void queue_peer_fail(const char *name, const char *what)
{
    fprintf(stderr, "%s: %s\n", name, what);
    exit(PEER_EXIT_USAGE);
}

static inline void queue_peer_spawn(const char *name, struct queue_peer_thread *t,
                                    void *(*fn)(void *))
{
    int err = pthread_create(&t->tid, NULL, fn, t);
    if (err != 0) {
        /* Threads already started wait at the start flag forever; exit() ends them. */
        fprintf(stderr, "%s: cannot create a thread: %s\n", name, strerror(err));
        exit(PEER_EXIT_USAGE);
    }
}

static inline void queue_peer_join(const char *name, struct queue_peer_thread *t)
{
    int err = pthread_join(t->tid, NULL);
    if (err != 0) {
        fprintf(stderr, "%s: cannot join a thread: %s\n", name, strerror(err));
        exit(PEER_EXIT_USAGE);
    }
}

/* Checks the consumers' results of one run; 0 or PEER_EXIT_WRONG after a message. */
static inline int queue_peer_verify(const struct queue_peer_info *info,
                                    const struct queue_layout *l, uint64_t items,
                                    const struct queue_peer_thread *consumers, const char *run,
                                    uint64_t *check_out)
{
    uint64_t sum = 0, count = 0;
    for (unsigned c = 0; c < l->consumers; c++) {
        const struct queue_peer_thread *t = &consumers[c];
        if (t->rejected) {
            uint64_t v = t->rejected_value;
            fprintf(stderr,
                    "%s: %s run: consumer %u received 0x%016" PRIx64 " (producer %" PRIu64
                    ", index %" PRIu64 "): %s\n",
                    info->name, run, c, v, queue_item_producer(v), queue_item_index(v),
                    t->check.strict ? "not from a producer it serves, or not the next index"
                                    : "not from a producer, or not after the last index seen");
            return PEER_EXIT_WRONG;
        }
        sum += t->check.sum;
        count += t->check.count;
    }
    /* Every producer's last item arrived (single consumer: with strict order, so all of them). */
    for (unsigned p = 0; p < l->producers; p++) {
        uint64_t n = queue_items_of(p, l->producers, items), last = 0;
        for (unsigned c = 0; c < l->consumers; c++)
            if (consumers[c].check.last[p] > last)
                last = consumers[c].check.last[p];
        if (last != n) {
            fprintf(stderr,
                    "%s: %s run: the last item received from producer %u has index %" PRIu64
                    ", expected %" PRIu64 "\n",
                    info->name, run, p, last, n);
            return PEER_EXIT_WRONG;
        }
    }
    if (count != items) {
        fprintf(stderr, "%s: %s run: the consumers received %" PRIu64 " items, expected %" PRIu64 "\n",
                info->name, run, count, items);
        return PEER_EXIT_WRONG;
    }
    uint64_t expected = queue_expected_check(l->producers, items);
    if (sum != expected) {
        fprintf(stderr, "%s: %s run: check sum %" PRIu64 ", expected %" PRIu64 "\n", info->name,
                run, sum, expected);
        return PEER_EXIT_WRONG;
    }
    *check_out = sum;
    return 0;
}

/* One run of the case with `items` items: threads, queues and handles are made and released
 * around the timed section. Returns 0 (with the time and check), or an exit status. */
static inline int queue_peer_run(const struct queue_peer_info *info, const struct queue_layout *l,
                                 uint64_t items, const char *run, double *time_s,
                                 uint64_t *check)
{
    const char *name = info->name;
    bool spsc = l->kind == QUEUE_SPSC;
    bool main_pills = !spsc && !info->producers_push_poison;
    void *queues[QUEUE_PEER_MAX_QUEUES];
    struct queue_peer_start start;
    start.ready = 0;
    start.go = 0;

    struct queue_peer_thread *threads = (struct queue_peer_thread *)calloc(
        l->threads, sizeof *threads);
    if (threads == NULL)
        queue_peer_fail(name, "out of memory for the threads");
    struct queue_peer_thread *producers = threads, *consumers = threads + l->producers;

    for (unsigned q = 0; q < l->queues; q++) {
        queues[q] = queue_peer_create(spsc ? 1 : l->producers, spsc ? 1 : l->consumers);
        if (queues[q] == NULL)
            exit(PEER_EXIT_USAGE);
    }
    for (unsigned p = 0; p < l->producers; p++) {
        struct queue_peer_thread *t = &producers[p];
        t->start = &start;
        t->queue = queues[spsc ? p : 0];
        t->index = p;
        t->items = queue_items_of(p, l->producers, items);
        t->pills = main_pills ? 0 : 1;
        if (!queue_peer_producer_open(t->queue, t->items + t->pills, &t->handle))
            exit(PEER_EXIT_USAGE);
    }
    for (unsigned c = 0; c < l->consumers; c++) {
        struct queue_peer_thread *t = &consumers[c];
        t->start = &start;
        t->queue = queues[spsc ? c : 0];
        t->index = c;
        t->pills = (spsc || main_pills) ? 1 : l->producers;
        if (spsc)
            queue_order_check_init_range(&t->check, c, 1, true);
        else
            queue_order_check_init(&t->check, l->producers, l->kind == QUEUE_MPSC);
        if (!queue_peer_consumer_open(t->queue, &t->handle))
            exit(PEER_EXIT_USAGE);
    }
    void *main_handle = NULL;
    if (main_pills && !queue_peer_producer_open(queues[0], l->consumers, &main_handle))
        exit(PEER_EXIT_USAGE);

    for (unsigned c = 0; c < l->consumers; c++)
        queue_peer_spawn(name, &consumers[c], queue_peer_consumer_main);
    for (unsigned p = 0; p < l->producers; p++)
        queue_peer_spawn(name, &producers[p], queue_peer_producer_main);
    {
        struct queue_backoff b;
        queue_backoff_reset(&b);
        while (__atomic_load_n(&start.ready, __ATOMIC_ACQUIRE) != l->threads)
            queue_backoff_snooze(&b);
    }

    uint64_t t0 = peer_now_ns();
    __atomic_store_n(&start.go, 1, __ATOMIC_RELEASE);
    for (unsigned p = 0; p < l->producers; p++)
        queue_peer_join(name, &producers[p]);
    if (main_pills)
        for (unsigned c = 0; c < l->consumers; c++)
            queue_peer_push(queues[0], main_handle, QUEUE_POISON);
    for (unsigned c = 0; c < l->consumers; c++)
        queue_peer_join(name, &consumers[c]);
    uint64_t t1 = peer_now_ns();

    if (main_pills)
        queue_peer_producer_close(queues[0], main_handle);
    for (unsigned c = 0; c < l->consumers; c++)
        queue_peer_consumer_close(consumers[c].queue, consumers[c].handle);
    for (unsigned p = 0; p < l->producers; p++)
        queue_peer_producer_close(producers[p].queue, producers[p].handle);
    for (unsigned q = 0; q < l->queues; q++)
        queue_peer_destroy(queues[q]);

    int status = queue_peer_verify(info, l, items, consumers, run, check);
    free(threads);
    *time_s = (double)(t1 - t0) / 1e9;
    return status;
}

static inline int queue_peer_usage(const struct queue_peer_info *info, const char *why)
{
    const char *prog = info->name;
    fprintf(stderr,
            "%s: %s\n"
            "usage: %s CASE THREADS ITEMS\n"
            "  CASE     %s%s%s(the cases this peer supports)\n"
            "  THREADS  2 to 64 producers and consumers in all, even for spsc and mpmc\n"
            "  ITEMS    1 to 10000000000 items in all\n",
            prog, why, prog, (info->cases & QUEUE_CASE_BIT(QUEUE_SPSC)) ? "spsc " : "",
            (info->cases & QUEUE_CASE_BIT(QUEUE_MPSC)) ? "mpsc " : "",
            (info->cases & QUEUE_CASE_BIT(QUEUE_MPMC)) ? "mpmc " : "");
    return PEER_EXIT_USAGE;
}

/* Parses the command line, runs the warm-up and the timed run; returns the exit status. */
static inline int queue_peer_main(int argc, char **argv, const struct queue_peer_info *info)
{
    if (argc != 4)
        return queue_peer_usage(info, "wrong number of arguments");
    enum queue_case kind;
    if (queue_case_parse(argv[1], &kind) != 0)
        return queue_peer_usage(info, "unknown case");
    if ((info->cases & QUEUE_CASE_BIT(kind)) == 0) {
        char why[64];
        snprintf(why, sizeof why, "case %s is not supported by this peer", queue_case_name(kind));
        return queue_peer_usage(info, why);
    }
    uint64_t threads, items;
    struct queue_layout layout;
    if (peer_parse_u64(argv[2], QUEUE_MIN_THREADS, QUEUE_MAX_THREADS, &threads) != 0 ||
        queue_layout_init(&layout, kind, (unsigned)threads) != 0)
        return queue_peer_usage(info, kind == QUEUE_MPSC
                                          ? "THREADS must be an integer from 2 to 64"
                                          : "THREADS must be an even integer from 2 to 64");
    if (peer_parse_u64(argv[3], 1, QUEUE_MAX_ITEMS, &items) != 0)
        return queue_peer_usage(info, "ITEMS must be an integer from 1 to 10000000000");
    if (info->producers_push_poison && kind == QUEUE_MPMC)
        return queue_peer_usage(info, "internal: per-producer pills need a single consumer");

    double time_s;
    uint64_t check;
    int status = queue_peer_run(info, &layout, queue_warmup_items(items), "warm-up", &time_s,
                                &check);
    if (status != 0)
        return status;
    status = queue_peer_run(info, &layout, items, "timed", &time_s, &check);
    if (status != 0)
        return status;
    peer_print_result(time_s, check);
    return 0;
}

#endif /* BATON_BENCH_QUEUE_PEER_COMMON_H */
