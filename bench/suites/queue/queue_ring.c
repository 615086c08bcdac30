/*
 * queue_ring.c — baton's in-process contender on the ring cases of `baton-bench queue`
 * (spsc*, mpsc*, mpmc*). Same threads, items, start flag, clock, warm-up and checks as the
 * peers (bench/common/queue_workloads.h, bench/peers/queue_peer_common.h):
 *   - producer p sends queue_item_value(p, k) for k < queue_items_of(p, P, ITEMS), the value
 *     carried as the pointer-sized item;
 *   - every consumer checks order with struct queue_order_check (strict in spsc and mpsc) and
 *     the run checks, as queue_peer_verify does, that nothing was rejected, that every
 *     producer's last index arrived, that ITEMS values arrived and that their wrapping sum is
 *     queue_expected_check(P, ITEMS);
 *   - all threads wait at a start flag (spun on with struct queue_backoff); the clock runs from
 *     the flag until main has joined the last consumer; an untimed warm-up run of
 *     queue_warmup_items(ITEMS) items, checked the same way, comes first.
 * What is baton's own, as the protocol allows:
 *   - push and pop are baton_*_push / baton_*_pop with BATON_WAIT_FOREVER: the library's wait (a
 *     bounded spin, a few yields, then a futex) rather than queue_backoff;
 *   - no poison pills: main joins the producers and closes the ring(s) (in spsc, each pair's ring
 *     right after joining its producer), and every consumer stops on BATON_EEOF;
 *   - baton_linked (mpsc only): the unbounded intrusive baton_mpsc_linked. Like the wfcqueue
 *     peer, each producer has its own array of nodes, allocated and written (pages faulted in)
 *     before the clock starts, and fills in the next one for each push.
 * Each producer and consumer loop is specialised per ring at compile time (an always-inlined
 * loop with a constant kind), so no item pays an indirect call.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "baton/queue.h"
#include "bench.h"
#include "queue.h"
#include "queue_workloads.h"

#if defined(__GNUC__) || defined(__clang__)
#define RING_INLINE static inline __attribute__((always_inline))
#else
#define RING_INLINE static inline
#endif

enum ring_kind { RING_SPSC, RING_MPSC, RING_MPMC, RING_LINKED };

typedef struct linked_item {
    baton_mpsc_node node;
    uint64_t value;
} linked_item;

/* go: 0 wait, 1 run, 2 abort (a thread could not be created: everyone leaves at once). */
typedef struct ring_start {
    atomic_uint ready;
    atomic_uint go;
} ring_start;

typedef struct ring_thread {
    pthread_t tid;
    ring_start *start;
    void *queue;
    unsigned index;                 /* producer p or consumer c */
    uint64_t items;                 /* producer: how many it sends */
    linked_item *nodes;             /* producer on RING_LINKED: one per item */
    struct queue_order_check check; /* consumer: set up by main, the result when done */
    bool rejected;                  /* consumer: the check rejected a value */
    uint64_t rejected_value;
    int error; /* a push or pop returned what it should not have; 0 */
} ring_thread;

/* True when the run goes ahead; false when main aborted it. */
static bool wait_start(ring_start *s)
{
    struct queue_backoff b;
    unsigned go;
    queue_backoff_reset(&b);
    atomic_fetch_add_explicit(&s->ready, 1, memory_order_acq_rel);
    while ((go = atomic_load_explicit(&s->go, memory_order_acquire)) == 0)
        queue_backoff_snooze(&b);
    return go == 1;
}

static inline void *item_of(uint64_t v)
{
    return (void *)(uintptr_t)v;
}

RING_INLINE int ring_push(enum ring_kind kind, void *q, void *item)
{
    switch (kind) {
    case RING_SPSC:
        return baton_spsc_push(q, item, BATON_WAIT_FOREVER);
    case RING_MPSC:
        return baton_mpsc_push(q, item, BATON_WAIT_FOREVER);
    case RING_MPMC:
        return baton_mpmc_push(q, item, BATON_WAIT_FOREVER);
    case RING_LINKED:
        return baton_mpsc_linked_push(q, item);
    }
    return BATON_EINVAL;
}

/* Pops one value into *v: 0, BATON_EEOF, or an unexpected error. */
RING_INLINE int ring_pop(enum ring_kind kind, void *q, uint64_t *v)
{
    void *item = NULL;
    baton_mpsc_node *node = NULL;
    int rc;
    switch (kind) {
    case RING_SPSC:
        rc = baton_spsc_pop(q, &item, BATON_WAIT_FOREVER);
        break;
    case RING_MPSC:
        rc = baton_mpsc_pop(q, &item, BATON_WAIT_FOREVER);
        break;
    case RING_MPMC:
        rc = baton_mpmc_pop(q, &item, BATON_WAIT_FOREVER);
        break;
    case RING_LINKED:
        rc = baton_mpsc_linked_pop(q, &node, BATON_WAIT_FOREVER);
        if (rc == 0)
            *v = ((linked_item *)(void *)node)->value; /* node is the first member */
        return rc;
    default:
        return BATON_EINVAL;
    }
    if (rc == 0)
        *v = (uint64_t)(uintptr_t)item;
    return rc;
}

static void ring_close(enum ring_kind kind, void *q)
{
    switch (kind) {
    case RING_SPSC:
        baton_spsc_close(q);
        break;
    case RING_MPSC:
        baton_mpsc_close(q);
        break;
    case RING_MPMC:
        baton_mpmc_close(q);
        break;
    case RING_LINKED:
        baton_mpsc_linked_close(q);
        break;
    }
}

RING_INLINE void producer_loop(ring_thread *t, enum ring_kind kind)
{
    void *q = t->queue;
    unsigned p = t->index;
    uint64_t n = t->items;

    if (!wait_start(t->start))
        return;
    for (uint64_t k = 0; k < n; k++) {
        void *item;
        int rc;
        if (kind == RING_LINKED) {
            t->nodes[k].value = queue_item_value(p, k);
            item = &t->nodes[k].node;
        } else {
            item = item_of(queue_item_value(p, k));
        }
        rc = ring_push(kind, q, item);
        if (rc != 0) {
            t->error = rc;
            return;
        }
    }
}

RING_INLINE void consumer_loop(ring_thread *t, enum ring_kind kind)
{
    void *q = t->queue;
    struct queue_order_check check = t->check;
    bool rejected = false;
    uint64_t rejected_value = 0;

    if (!wait_start(t->start))
        return;
    for (;;) {
        uint64_t v = 0;
        int rc = ring_pop(kind, q, &v);
        if (rc == BATON_EEOF)
            break;
        if (rc != 0) {
            /* Close, so that producers waiting for room give up instead of waiting forever. */
            t->error = rc;
            ring_close(kind, q);
            break;
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
}

static void *spsc_producer(void *arg)
{
    producer_loop(arg, RING_SPSC);
    return NULL;
}
static void *spsc_consumer(void *arg)
{
    consumer_loop(arg, RING_SPSC);
    return NULL;
}
static void *mpsc_producer(void *arg)
{
    producer_loop(arg, RING_MPSC);
    return NULL;
}
static void *mpsc_consumer(void *arg)
{
    consumer_loop(arg, RING_MPSC);
    return NULL;
}
static void *mpmc_producer(void *arg)
{
    producer_loop(arg, RING_MPMC);
    return NULL;
}
static void *mpmc_consumer(void *arg)
{
    consumer_loop(arg, RING_MPMC);
    return NULL;
}
static void *linked_producer(void *arg)
{
    producer_loop(arg, RING_LINKED);
    return NULL;
}
static void *linked_consumer(void *arg)
{
    consumer_loop(arg, RING_LINKED);
    return NULL;
}

static void *(*const producer_main[])(void *) = {spsc_producer, mpsc_producer, mpmc_producer,
                                                 linked_producer};
static void *(*const consumer_main[])(void *) = {spsc_consumer, mpsc_consumer, mpmc_consumer,
                                                 linked_consumer};

static int ring_create(enum ring_kind kind, void **out)
{
    switch (kind) {
    case RING_SPSC:
        return baton_spsc_create(QUEUE_RING_CAPACITY, (baton_spsc **)out);
    case RING_MPSC:
        return baton_mpsc_create(QUEUE_RING_CAPACITY, (baton_mpsc **)out);
    case RING_MPMC:
        return baton_mpmc_create(QUEUE_RING_CAPACITY, (baton_mpmc **)out);
    case RING_LINKED:
        return baton_mpsc_linked_create((baton_mpsc_linked **)out);
    }
    return BATON_EINVAL;
}

static void ring_destroy(enum ring_kind kind, void *q)
{
    switch (kind) {
    case RING_SPSC:
        baton_spsc_destroy(q);
        break;
    case RING_MPSC:
        baton_mpsc_destroy(q);
        break;
    case RING_MPMC:
        baton_mpmc_destroy(q);
        break;
    case RING_LINKED:
        baton_mpsc_linked_destroy(q);
        break;
    }
}

/* Checks one run as queue_peer_verify does. Prints why when it is wrong. */
static bool verify(const char *case_name, const char *run, const struct queue_layout *l,
                   uint64_t items, const ring_thread *producers, const ring_thread *consumers)
{
    uint64_t sum = 0, count = 0, expected;

    for (unsigned i = 0; i < l->producers + l->consumers; i++) {
        const ring_thread *t = i < l->producers ? &producers[i] : &consumers[i - l->producers];
        if (t->error != 0) {
            cmdline_note("bench queue: %s: baton %s run: a %s returned %s", case_name, run,
                         i < l->producers ? "push" : "pop", baton_err_name(t->error));
            return false;
        }
    }
    for (unsigned c = 0; c < l->consumers; c++) {
        const ring_thread *t = &consumers[c];
        if (t->rejected) {
            uint64_t v = t->rejected_value;
            cmdline_note("bench queue: %s: baton %s run: consumer %u received 0x%016" PRIx64
                         " (producer %" PRIu64 ", index %" PRIu64 ") out of order or from no "
                         "producer it serves",
                         case_name, run, c, v, queue_item_producer(v), queue_item_index(v));
            return false;
        }
        sum += t->check.sum;
        count += t->check.count;
    }
    for (unsigned p = 0; p < l->producers; p++) {
        uint64_t n = queue_items_of(p, l->producers, items), last = 0;
        for (unsigned c = 0; c < l->consumers; c++)
            if (consumers[c].check.last[p] > last)
                last = consumers[c].check.last[p];
        if (last != n) {
            cmdline_note("bench queue: %s: baton %s run: the last item received from producer %u "
                         "has index %" PRIu64 ", expected %" PRIu64,
                         case_name, run, p, last, n);
            return false;
        }
    }
    expected = queue_expected_check(l->producers, items);
    if (count != items || sum != expected) {
        cmdline_note("bench queue: %s: baton %s run: %" PRIu64 " items with check %" PRIu64
                     ", expected %" PRIu64 " with %" PRIu64,
                     case_name, run, count, sum, items, expected);
        return false;
    }
    return true;
}

/* One run with `items` items. Returns 0 with the seconds and the verdict, or -1 when it could
 * not run (after printing why). */
static int ring_run(const char *case_name, const struct queue_layout *l, enum ring_kind kind,
                    uint64_t items, const char *run, double *out_s, bool *out_correct)
{
    bool spsc = l->kind == QUEUE_SPSC;
    void *queues[QUEUE_MAX_THREADS / 2] = {NULL};
    ring_thread *threads, *producers, *consumers;
    ring_start start;
    unsigned created = 0;
    uint64_t t0 = 0, t1 = 0;
    int rc = 0;

    threads = calloc(l->threads, sizeof *threads);
    if (threads == NULL) {
        cmdline_errorf("bench queue: %s: out of memory", case_name);
        return -1;
    }
    producers = threads;
    consumers = threads + l->producers;
    atomic_init(&start.ready, 0);
    atomic_init(&start.go, 0);

    for (unsigned q = 0; q < l->queues && rc == 0; q++) {
        rc = ring_create(kind, &queues[q]);
        if (rc != 0)
            cmdline_report_error(rc, "creating a ring");
    }
    for (unsigned p = 0; p < l->producers && rc == 0; p++) {
        ring_thread *t = &producers[p];
        t->start = &start;
        t->queue = queues[spsc ? p : 0];
        t->index = p;
        t->items = queue_items_of(p, l->producers, items);
        if (kind == RING_LINKED) {
            /* Written now, so that no page is first touched in the timed section (calloc
             * could hand out untouched zero pages). */
            t->nodes = malloc((t->items ? t->items : 1) * sizeof *t->nodes);
            if (t->nodes == NULL) {
                cmdline_errorf("bench queue: %s: out of memory for %" PRIu64 " nodes", case_name,
                               t->items);
                rc = -1;
            }
            for (uint64_t k = 0; t->nodes != NULL && k < t->items; k++) {
                atomic_init(&t->nodes[k].node.next, NULL);
                t->nodes[k].value = 0;
            }
        }
    }
    for (unsigned c = 0; c < l->consumers && rc == 0; c++) {
        ring_thread *t = &consumers[c];
        t->start = &start;
        t->queue = queues[spsc ? c : 0];
        t->index = c;
        if (spsc)
            queue_order_check_init_range(&t->check, c, 1, true);
        else
            queue_order_check_init(&t->check, l->producers, l->kind == QUEUE_MPSC);
    }

    /* Consumers first, then producers, as the peers start them. */
    for (unsigned i = 0; i < l->threads && rc == 0; i++) {
        unsigned idx = i < l->consumers ? l->producers + i : i - l->consumers;
        bool is_producer = idx < l->producers;
        int err =
            pthread_create(&threads[idx].tid, NULL,
                           is_producer ? producer_main[kind] : consumer_main[kind], &threads[idx]);
        if (err != 0) {
            cmdline_errorf("bench queue: %s: cannot create a thread: %s", case_name, strerror(err));
            rc = -1;
            break;
        }
        created++;
    }
    if (rc == 0) {
        struct queue_backoff b;
        queue_backoff_reset(&b);
        while (atomic_load_explicit(&start.ready, memory_order_acquire) != l->threads)
            queue_backoff_snooze(&b);
        t0 = baton_now_ns();
        atomic_store_explicit(&start.go, 1, memory_order_release);
        for (unsigned p = 0; p < l->producers; p++) {
            pthread_join(producers[p].tid, NULL);
            if (spsc)
                ring_close(kind, queues[p]);
        }
        if (!spsc)
            ring_close(kind, queues[0]);
        for (unsigned c = 0; c < l->consumers; c++)
            pthread_join(consumers[c].tid, NULL);
        t1 = baton_now_ns();
    } else {
        /* Let the threads that were started leave at once, and join them. */
        atomic_store_explicit(&start.go, 2, memory_order_release);
        for (unsigned i = 0; i < created; i++) {
            unsigned idx = i < l->consumers ? l->producers + i : i - l->consumers;
            pthread_join(threads[idx].tid, NULL);
        }
    }

    if (rc == 0) {
        *out_s = (double)(t1 - t0) * 1e-9;
        *out_correct = verify(case_name, run, l, items, producers, consumers);
    }
    for (unsigned p = 0; p < l->producers; p++)
        free(producers[p].nodes);
    for (unsigned q = 0; q < l->queues; q++)
        if (queues[q] != NULL)
            ring_destroy(kind, queues[q]);
    free(threads);
    return rc == 0 ? 0 : -1;
}

int bench_queue_measure_ring(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const bench_queue_ring *rq = ctx;
    struct queue_layout layout;
    enum queue_case base;
    enum ring_kind kind;
    unsigned threads;
    double warm_s, time_s;
    bool warm_ok = false, ok = false;

    (void)workers; /* the case fixes the threads */
    memset(&layout, 0, sizeof layout);
#if UINTPTR_MAX < UINT64_MAX
    cmdline_errorf("bench queue: %s: the items are 64-bit values carried as pointers, which are "
                   "narrower here",
                   rq->case_name);
    return -1;
#endif
    if (queue_bench_case(rq->case_name, &base, &threads) != 0 ||
        queue_layout_init(&layout, base, threads) != 0 || (rq->linked && base != QUEUE_MPSC)) {
        cmdline_errorf("bench queue: %s: not a ring case baton can run%s", rq->case_name,
                       rq->linked ? " on the linked MPSC queue" : "");
        return -1;
    }
    kind = rq->linked           ? RING_LINKED
           : base == QUEUE_SPSC ? RING_SPSC
           : base == QUEUE_MPSC ? RING_MPSC
                                : RING_MPMC;
    if (ring_run(rq->case_name, &layout, kind, queue_warmup_items(rq->items), "warm-up", &warm_s,
                 &warm_ok) != 0)
        return -1;
    if (!warm_ok) {
        *out_value = 0;
        *out_correct = false;
        return 0;
    }
    if (ring_run(rq->case_name, &layout, kind, rq->items, "timed", &time_s, &ok) != 0)
        return -1;
    if (!(time_s > 0)) {
        cmdline_errorf("bench queue: %s: the run took no measurable time", rq->case_name);
        return -1;
    }
    *out_value = (double)rq->items / time_s;
    *out_correct = ok;
    return 0;
}
