/*
 * queue_workq.c — the work queue's single-producer default against its multi-producer
 * option (cases sp_1p_100k and mp_4p_100k of `baton-bench queue`).
 *
 * One run: a work queue of capacity QUEUE_RING_CAPACITY; P producer threads and one receiving
 * thread (main only starts, times and joins them). P == 1 uses the queue as created (the
 * single-producer sender, an SPSC ring underneath); P > 1 creates it with
 * BATON_WQ_MULTI_PRODUCER (an MPSC ring) and main makes P - 1 clones of the sender before the
 * clock starts. Producer p sends its items one by one with baton_workqueue_send(...,
 * BATON_WAIT_FOREVER), then closes its sender; the receiver takes items one by one with
 * baton_workqueue_recv(..., BATON_WAIT_FOREVER) until BATON_EEOF, which comes when the last
 * sender is closed.
 *
 * Items are the values of bench/common/queue_workloads.h (producer p's k-th item is
 * queue_item_value(p, k), the ITEMS split by queue_items_of), built into an array before the
 * clock starts, so the producers only load and send them. The receiver checks them with a strict
 * struct queue_order_check (a single receiver sees each producer's items in the order sent), and
 * the run is correct when ITEMS items arrived, every producer's last index arrived, and the
 * wrapping sum is queue_expected_check(P, ITEMS): with strict order, each item exactly once.
 * Start flag, clock and the untimed warm-up run (queue_warmup_items(ITEMS) items) as in the ring
 * cases.
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

/* A receiver that keeps getting an error it should never get gives up after this many. */
#define WQ_MAX_RECV_ERRORS 1000

typedef struct wq_start {
    atomic_uint ready;
    atomic_uint go; /* 0 wait, 1 run, 2 abort */
} wq_start;

typedef struct wq_thread {
    pthread_t tid;
    wq_start *start;
    baton_workqueue_sender *sender;     /* producer */
    baton_workqueue_receiver *receiver; /* consumer */
    void *const *items;                 /* producer: its pre-built items */
    uint64_t n_items;
    struct queue_order_check check; /* consumer */
    bool rejected;
    int error;
} wq_thread;

static bool wq_wait_start(wq_start *s)
{
    struct queue_backoff b;
    unsigned go;
    queue_backoff_reset(&b);
    atomic_fetch_add_explicit(&s->ready, 1, memory_order_acq_rel);
    while ((go = atomic_load_explicit(&s->go, memory_order_acquire)) == 0)
        queue_backoff_snooze(&b);
    return go == 1;
}

static void *wq_producer(void *arg)
{
    wq_thread *t = arg;
    if (wq_wait_start(t->start)) {
        for (uint64_t k = 0; k < t->n_items; k++) {
            int rc = baton_workqueue_send(t->sender, t->items[k], BATON_WAIT_FOREVER);
            if (rc != 0) {
                t->error = rc;
                break;
            }
        }
    }
    /* Always: the last close ends the stream, so the receiver stops. */
    baton_workqueue_sender_close(t->sender);
    return NULL;
}

static void *wq_consumer(void *arg)
{
    wq_thread *t = arg;
    struct queue_order_check check = t->check;
    unsigned errors = 0;

    if (!wq_wait_start(t->start))
        return NULL;
    for (;;) {
        void *item;
        int rc = baton_workqueue_recv(t->receiver, &item, BATON_WAIT_FOREVER);
        if (rc == BATON_EEOF)
            break;
        if (rc != 0) {
            /* Not a documented outcome of a wait without limit: note it and keep receiving,
             * so that producers waiting for room are not stranded, up to a bound. */
            t->error = rc;
            if (++errors == WQ_MAX_RECV_ERRORS)
                break;
            continue;
        }
        if (!queue_order_check_observe(&check, (uint64_t)(uintptr_t)item))
            t->rejected = true;
    }
    t->check = check;
    return NULL;
}

/* One run: 0 with the seconds and the verdict, or -1 when it could not run. */
static int wq_run(const char *case_name, unsigned producers, uint64_t items, void *const *built,
                  const char *run, double *out_s, bool *out_correct)
{
    wq_thread threads[QUEUE_MAX_PRODUCERS + 1];
    wq_thread *consumer = &threads[producers];
    baton_workqueue_sender *tx = NULL;
    baton_workqueue_receiver *rx = NULL;
    wq_start start;
    unsigned n_senders = 0, created = 0;
    uint64_t offset = 0, t0 = 0, t1 = 0, count, sum;
    int rc;

    memset(threads, 0, sizeof threads);
    atomic_init(&start.ready, 0);
    atomic_init(&start.go, 0);
    rc = baton_workqueue_create(QUEUE_RING_CAPACITY, producers > 1 ? BATON_WQ_MULTI_PRODUCER : 0,
                                &tx, &rx);
    if (rc != 0) {
        cmdline_report_error(rc, "creating a work queue");
        return -1;
    }
    threads[0].sender = tx;
    n_senders = 1;
    for (unsigned p = 1; p < producers && rc == 0; p++) {
        rc = baton_workqueue_sender_clone(tx, &threads[p].sender);
        if (rc != 0)
            cmdline_report_error(rc, "cloning a work queue sender");
        else
            n_senders++;
    }
    for (unsigned p = 0; p < producers; p++) {
        threads[p].start = &start;
        threads[p].n_items = queue_items_of(p, producers, items);
        threads[p].items = built + offset;
        offset += threads[p].n_items;
    }
    consumer->start = &start;
    consumer->receiver = rx;
    queue_order_check_init(&consumer->check, producers, true);

    /* The receiver first, then the producers; a producer thread owns its sender from here. */
    for (unsigned i = 0; i <= producers && rc == 0; i++) {
        wq_thread *t = i == 0 ? consumer : &threads[i - 1];
        int err = pthread_create(&t->tid, NULL, i == 0 ? wq_consumer : wq_producer, t);
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
        while (atomic_load_explicit(&start.ready, memory_order_acquire) != producers + 1)
            queue_backoff_snooze(&b);
        t0 = baton_now_ns();
        atomic_store_explicit(&start.go, 1, memory_order_release);
        for (unsigned p = 0; p < producers; p++)
            pthread_join(threads[p].tid, NULL);
        pthread_join(consumer->tid, NULL);
        t1 = baton_now_ns();
    } else {
        atomic_store_explicit(&start.go, 2, memory_order_release);
        for (unsigned i = 0; i < created; i++)
            pthread_join(i == 0 ? consumer->tid : threads[i - 1].tid, NULL);
        /* Senders whose thread never started are still open. */
        for (unsigned p = created > 0 ? created - 1 : 0; p < n_senders; p++)
            baton_workqueue_sender_close(threads[p].sender);
    }
    baton_workqueue_receiver_destroy(rx);
    if (rc != 0)
        return -1;

    *out_s = (double)(t1 - t0) * 1e-9;
    *out_correct = true;
    for (unsigned p = 0; p < producers; p++) {
        if (threads[p].error != 0) {
            cmdline_note("bench queue: %s: %s run: producer %u's send returned %s", case_name, run,
                         p, baton_err_name(threads[p].error));
            *out_correct = false;
        }
        if (consumer->check.last[p] != threads[p].n_items) {
            cmdline_note("bench queue: %s: %s run: producer %u's last item received has index "
                         "%" PRIu64 ", expected %" PRIu64,
                         case_name, run, p, consumer->check.last[p], threads[p].n_items);
            *out_correct = false;
        }
    }
    count = consumer->check.count;
    sum = consumer->check.sum;
    if (consumer->error != 0 || consumer->rejected || count != items ||
        sum != queue_expected_check(producers, items)) {
        cmdline_note("bench queue: %s: %s run: received %" PRIu64 " items (check %" PRIu64
                     "), expected %" PRIu64 " (check %" PRIu64 ")%s%s%s",
                     case_name, run, count, sum, items, queue_expected_check(producers, items),
                     consumer->rejected ? "; an item out of order or from no producer" : "",
                     consumer->error != 0 ? "; recv returned " : "",
                     consumer->error != 0 ? baton_err_name(consumer->error) : "");
        *out_correct = false;
    }
    return 0;
}

/* Producer p's items, contiguous, in the order it sends them. */
static void **build_items(unsigned producers, uint64_t items)
{
    void **built = malloc((items ? items : 1) * sizeof *built);
    uint64_t i = 0;
    if (built == NULL)
        return NULL;
    for (unsigned p = 0; p < producers; p++)
        for (uint64_t k = 0, n = queue_items_of(p, producers, items); k < n; k++)
            built[i++] = (void *)(uintptr_t)queue_item_value(p, k);
    return built;
}

int bench_queue_measure_workq(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const bench_queue_workq *wc = ctx;
    uint64_t warm_items = queue_warmup_items(wc->items);
    void **warm, **timed;
    double warm_s = 0, time_s = 0;
    bool warm_ok = false, ok = false;
    int rc;

    (void)workers;
    if (wc->producers == 0 || wc->producers > QUEUE_MAX_PRODUCERS || wc->items == 0) {
        cmdline_errorf("bench queue: %s: bad case (%u producers, %" PRIu64 " items)", wc->case_name,
                       wc->producers, wc->items);
        return -1;
    }
    warm = build_items(wc->producers, warm_items);
    timed = build_items(wc->producers, wc->items);
    if (warm == NULL || timed == NULL) {
        cmdline_errorf("bench queue: %s: out of memory", wc->case_name);
        free(warm);
        free(timed);
        return -1;
    }
    rc = wq_run(wc->case_name, wc->producers, warm_items, warm, "warm-up", &warm_s, &warm_ok);
    if (rc == 0 && warm_ok)
        rc = wq_run(wc->case_name, wc->producers, wc->items, timed, "timed", &time_s, &ok);
    free(warm);
    free(timed);
    if (rc != 0)
        return -1;
    if (warm_ok && !(time_s > 0)) {
        cmdline_errorf("bench queue: %s: the run took no measurable time", wc->case_name);
        return -1;
    }
    *out_value = warm_ok ? (double)wc->items / time_s : 0;
    *out_correct = warm_ok && ok;
    return 0;
}
