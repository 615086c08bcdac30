/*
 * queue_fanin.c — how the results of a parallel drain come back together: five fan-in
 * strategies on the same items, work and check (cases fanin_<strategy>_<10k|100k>_w<4|8|16> of
 * `baton-bench queue`).
 *
 * Items. N items {seq, value} built once per size (value = baton_mix64(seq + 1)), sent in seq
 * order into a fresh single-producer work queue of capacity >= N whose sender is then closed. The
 * work on an item is BENCH_FANIN_WORK_ROUNDS dependent rounds of baton_mix64 on its value (about
 * 200 ns; the suite prints what it measures here), and its result is the outcome.
 *
 * Strategies. All run on a pool of W workers (baton_pool_create, n_workers = W, default external
 * slots, so the calling thread takes a slot and helps run tasks while it waits).
 *   drain_ordered     baton_workqueue_drain_parallel, default window; process computes the
 *                     result, deliver stores it in out[seq].
 *   drain_unordered   the same with BATON_DRAIN_UNORDERED (deliver runs concurrently).
 * The other three share the receiving side: inside baton_scope_run, the calling thread (the
 * scope's body) receives with baton_workqueue_recv_n into one array of item pointers, fills
 * chunks of BENCH_FANIN_CHUNK items (the drain's own batch size) and spawns one scope task per
 * chunk; a task computes its items' results and hands each one on, one at a time:
 *   sharded_mutex     to one of BENCH_FANIN_SHARDS vectors of {seq, result}, each behind its
 *                     own mutex (locked per result), picked by the worker index of the thread
 *                     running the task (baton_pool_current_worker + 1, so the calling thread's
 *                     -1 picks shard 0), modulo the shard count; at the end the calling thread
 *                     concatenates the shards into one array.
 *   per_thread_concat to the vector of the thread running the task (W workers' vectors plus
 *                     one for the calling thread), without a lock; concatenated at the end.
 *   mpsc              the task stores the result in the item and pushes the item pointer into
 *                     a baton MPSC ring (capacity 1024, baton_mpsc_push with
 *                     BATON_WAIT_FOREVER); the calling thread pops (baton_mpsc_pop_n) between
 *                     spawns and then until every result is in, appending {seq, result} to one
 *                     vector. The bounded ring, not the linked queue: no node to preallocate.
 * Vectors start empty and double as they grow.
 *
 * Clock. Each measurement makes its pool (not timed), fills a queue (not timed) and runs an
 * untimed, checked warm-up on the first N/10 items (at least 1000), then fills a fresh queue with
 * the N items and times from the first receive until the results are in one array (out[] for the
 * drains, the concatenation or the drained vector for the others), every allocation of the
 * strategy included. The value is N / seconds.
 *
 * Check (not timed). Drains: the report says N accepted and N delivered, every deliver saw the
 * item it was given under its own seq, and out[i] is item i's expected result for every i.
 * Others: N results, each seq in [0, N) exactly once with its expected result.
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

/* Items taken from the MPSC ring per pop_n. */
#define FANIN_POP_BATCH 256
/* While waiting for the last results, how often the calling thread looks whether the scope was
 * cancelled (a task failed and its results will never come). */
#define FANIN_POP_TIMEOUT_NS 10000000u
#define FANIN_RING_CAPACITY 1024
#define FANIN_WARMUP_MIN 1000

const char *const bench_fanin_strategy_names[BENCH_FANIN_N_STRATEGIES] = {
    "sharded_mutex", "per_thread_concat", "mpsc", "drain_ordered", "drain_unordered"};

typedef struct fanin_item {
    uint64_t seq;
    uint64_t value;
    uint64_t result; /* the mpsc strategy's way back */
} fanin_item;

struct bench_fanin_data {
    size_t n;
    fanin_item *items;
    void **ptrs;        /* &items[i], what is sent */
    uint64_t *expected; /* the result of item i */
};

typedef struct fanin_result {
    uint64_t seq;
    uint64_t result;
} fanin_result;

typedef struct fanin_vec {
    fanin_result *data;
    size_t n;
    size_t cap;
} fanin_vec;

typedef struct fanin_shard {
    BATON_CACHELINE_ALIGNED pthread_mutex_t lock;
    fanin_vec vec;
} fanin_shard;

typedef struct fanin_bucket {
    BATON_CACHELINE_ALIGNED fanin_vec vec;
} fanin_bucket;

typedef struct fanin_run fanin_run;

typedef struct fanin_chunk {
    fanin_run *run;
    size_t begin, end; /* indices into run->got */
} fanin_chunk;

struct fanin_run {
    unsigned strategy;
    baton_pool *pool;
    unsigned workers;
    baton_workqueue_receiver *rx;
    size_t n;
    /* scope strategies */
    void **got;
    fanin_chunk *chunks;
    fanin_shard *shards;
    fanin_bucket *buckets; /* workers + 1; the last is the calling thread's */
    baton_mpsc *ring;
    fanin_vec collected; /* the one array of results */
    size_t received;
    bool stream_short, stream_long; /* EEOF before N items; more than N items */
    /* drains */
    uint64_t *out;
    atomic_bool seq_mismatch;
    baton_drain_report report;
};

static inline uint64_t fanin_work(uint64_t x)
{
    for (unsigned r = 0; r < BENCH_FANIN_WORK_ROUNDS; r++)
        x = baton_mix64(x + r);
    return x;
}

bench_fanin_data *bench_queue_fanin_data_create(size_t items)
{
    bench_fanin_data *d = calloc(1, sizeof *d);
    if (d != NULL) {
        d->items = malloc(items * sizeof *d->items);
        d->ptrs = malloc(items * sizeof *d->ptrs);
        d->expected = malloc(items * sizeof *d->expected);
    }
    if (d == NULL || d->items == NULL || d->ptrs == NULL || d->expected == NULL) {
        cmdline_errorf("bench queue: out of memory for %zu fan-in items", items);
        bench_queue_fanin_data_destroy(d);
        return NULL;
    }
    d->n = items;
    for (size_t i = 0; i < items; i++) {
        d->items[i].seq = i;
        d->items[i].value = baton_mix64(i + 1);
        d->items[i].result = 0;
        d->ptrs[i] = &d->items[i];
        d->expected[i] = fanin_work(d->items[i].value);
    }
    return d;
}

void bench_queue_fanin_data_destroy(bench_fanin_data *data)
{
    if (data == NULL)
        return;
    free(data->items);
    free(data->ptrs);
    free(data->expected);
    free(data);
}

/* Called through a volatile pointer, and the sum stored in a volatile, so that the loop below is
 * neither hoisted nor dropped. */
static uint64_t (*volatile fanin_work_call)(uint64_t) = fanin_work;
static volatile uint64_t fanin_work_sink;

double bench_queue_fanin_work_ns(void)
{
    enum { N = 20000 };
    uint64_t sink = 0, t0;
    double best = 0;
    for (int pass = 0; pass < 3; pass++) {
        double ns;
        t0 = baton_now_ns();
        for (uint64_t i = 0; i < N; i++)
            sink += fanin_work_call(i);
        ns = (double)(baton_now_ns() - t0) / N;
        if (pass == 0 || ns < best)
            best = ns;
    }
    fanin_work_sink = sink;
    return best;
}

/* ---- the scope strategies ------------------------------------------------------------------- */

static int vec_push(fanin_vec *v, uint64_t seq, uint64_t result)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 1024;
        fanin_result *grown = realloc(v->data, cap * sizeof *grown);
        if (grown == NULL)
            return BATON_ENOMEM;
        v->data = grown;
        v->cap = cap;
    }
    v->data[v->n].seq = seq;
    v->data[v->n].result = result;
    v->n++;
    return 0;
}

static int chunk_task(void *ctx)
{
    const fanin_chunk *c = ctx;
    fanin_run *run = c->run;
    void **got = run->got;
    int rc = 0;

    switch (run->strategy) {
    case BENCH_FANIN_SHARDED_MUTEX: {
        int w = baton_pool_current_worker(run->pool);
        fanin_shard *s = &run->shards[(unsigned)(w + 1) % BENCH_FANIN_SHARDS];
        for (size_t i = c->begin; i < c->end && rc == 0; i++) {
            const fanin_item *it = got[i];
            uint64_t r = fanin_work(it->value);
            pthread_mutex_lock(&s->lock);
            rc = vec_push(&s->vec, it->seq, r);
            pthread_mutex_unlock(&s->lock);
        }
        break;
    }
    case BENCH_FANIN_PER_THREAD_CONCAT: {
        int w = baton_pool_current_worker(run->pool);
        fanin_vec *v = &run->buckets[w < 0 ? run->workers : (unsigned)w].vec;
        for (size_t i = c->begin; i < c->end && rc == 0; i++) {
            const fanin_item *it = got[i];
            rc = vec_push(v, it->seq, fanin_work(it->value));
        }
        break;
    }
    case BENCH_FANIN_MPSC:
        for (size_t i = c->begin; i < c->end && rc == 0; i++) {
            fanin_item *it = got[i];
            it->result = fanin_work(it->value);
            rc = baton_mpsc_push(run->ring, it, BATON_WAIT_FOREVER);
        }
        break;
    default:
        rc = BATON_EINVAL;
    }
    return rc;
}

/* mpsc: moves the results the ring holds into run->collected; with wait_ns > 0, waits up to
 * that long for the first one. Returns 0, BATON_ETIMEDOUT, or an error. */
static int collect(fanin_run *run, uint64_t wait_ns)
{
    void *batch[FANIN_POP_BATCH];
    const fanin_item *it;
    int rc;

    if (wait_ns > 0) {
        void *item;
        rc = baton_mpsc_pop(run->ring, &item, wait_ns);
        if (rc != 0)
            return rc;
        it = item;
        if ((rc = vec_push(&run->collected, it->seq, it->result)) != 0)
            return rc;
    }
    for (;;) {
        size_t k = 0;
        rc = baton_mpsc_pop_n(run->ring, batch, FANIN_POP_BATCH, &k);
        if (rc == BATON_EAGAIN)
            return 0;
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < k; i++) {
            it = batch[i];
            if ((rc = vec_push(&run->collected, it->seq, it->result)) != 0)
                return rc;
        }
        if (k < FANIN_POP_BATCH) /* drained for now: back to receiving */
            return 0;
    }
}

/* Receives until the chunk has BENCH_FANIN_CHUNK items, N items came, or the stream ended. */
static int fill_chunk(fanin_run *run, size_t *inout_received)
{
    size_t received = *inout_received;
    size_t want = run->n - received < BENCH_FANIN_CHUNK ? run->n - received : BENCH_FANIN_CHUNK;
    size_t end = received + want;
    int rc = 0;

    while (received < end) {
        size_t got = 0;
        rc = baton_workqueue_recv_n(run->rx, run->got + received, end - received, &got);
        if (rc == BATON_EAGAIN) {
            rc = baton_workqueue_recv(run->rx, &run->got[received], BATON_WAIT_FOREVER);
            got = rc == 0 ? 1 : 0;
        }
        if (rc == BATON_EEOF) {
            run->stream_short = true;
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        received += got;
    }
    *inout_received = received;
    return rc;
}

static int scope_body_inner(baton_scope *scope, fanin_run *run)
{
    size_t received = 0, n_chunks = 0;
    void *extra;
    int rc;

    while (received < run->n && !run->stream_short) {
        size_t begin = received;
        rc = fill_chunk(run, &received);
        if (rc != 0) {
            cmdline_report_error(rc, "receiving from the work queue");
            return rc;
        }
        if (received == begin)
            break;
        run->chunks[n_chunks].run = run;
        run->chunks[n_chunks].begin = begin;
        run->chunks[n_chunks].end = received;
        rc = baton_scope_spawn(scope, chunk_task, &run->chunks[n_chunks]);
        if (rc != 0) {
            cmdline_report_error(rc, "baton_scope_spawn");
            return rc;
        }
        n_chunks++;
        if (run->strategy == BENCH_FANIN_MPSC && (rc = collect(run, 0)) != 0)
            return rc;
    }
    run->received = received;
    if (!run->stream_short) {
        rc = baton_workqueue_recv(run->rx, &extra, BATON_WAIT_FOREVER);
        if (rc == 0)
            run->stream_long = true;
        else if (rc != BATON_EEOF) {
            cmdline_report_error(rc, "receiving the end of the work queue");
            return rc;
        }
    }
    while (run->strategy == BENCH_FANIN_MPSC && run->collected.n < received) {
        rc = collect(run, FANIN_POP_TIMEOUT_NS);
        if (rc == BATON_ETIMEDOUT && !baton_scope_cancelled(scope))
            continue;
        if (rc != 0)
            return rc == BATON_ETIMEDOUT ? BATON_ECANCELED : rc;
    }
    return 0;
}

static int scope_body(baton_scope *scope, void *ctx)
{
    fanin_run *run = ctx;
    int rc = scope_body_inner(scope, run);
    /* Tasks waiting for room in the ring would wait forever once the body stops popping. */
    if (rc != 0 && run->ring != NULL)
        baton_mpsc_close(run->ring);
    return rc;
}

/* Joins the shards' or the threads' vectors into run->collected. */
static int concatenate(fanin_run *run)
{
    unsigned n_vecs =
        run->strategy == BENCH_FANIN_SHARDED_MUTEX ? BENCH_FANIN_SHARDS : run->workers + 1;
    size_t total = 0, at = 0;

    for (unsigned i = 0; i < n_vecs; i++)
        total += run->strategy == BENCH_FANIN_SHARDED_MUTEX ? run->shards[i].vec.n
                                                            : run->buckets[i].vec.n;
    run->collected.data = malloc((total ? total : 1) * sizeof *run->collected.data);
    if (run->collected.data == NULL)
        return BATON_ENOMEM;
    run->collected.cap = total;
    for (unsigned i = 0; i < n_vecs; i++) {
        const fanin_vec *v =
            run->strategy == BENCH_FANIN_SHARDED_MUTEX ? &run->shards[i].vec : &run->buckets[i].vec;
        if (v->n > 0)
            memcpy(run->collected.data + at, v->data, v->n * sizeof *v->data);
        at += v->n;
    }
    run->collected.n = total;
    return 0;
}

static void *aligned_calloc(size_t count, size_t size)
{
    size_t bytes = count * size;
    void *p;
    bytes = (bytes + BATON_CACHELINE - 1) / BATON_CACHELINE * BATON_CACHELINE;
    p = aligned_alloc(BATON_CACHELINE, bytes ? bytes : BATON_CACHELINE);
    if (p != NULL)
        memset(p, 0, bytes);
    return p;
}

/* The timed part of a scope strategy. */
static int run_scope_strategy(fanin_run *run)
{
    size_t n_chunks = (run->n + BENCH_FANIN_CHUNK - 1) / BENCH_FANIN_CHUNK;
    int rc = 0;

    run->got = malloc((run->n ? run->n : 1) * sizeof *run->got);
    run->chunks = malloc((n_chunks ? n_chunks : 1) * sizeof *run->chunks);
    if (run->got == NULL || run->chunks == NULL)
        return BATON_ENOMEM;
    if (run->strategy == BENCH_FANIN_SHARDED_MUTEX) {
        run->shards = aligned_calloc(BENCH_FANIN_SHARDS, sizeof *run->shards);
        if (run->shards == NULL)
            return BATON_ENOMEM;
        for (unsigned i = 0; i < BENCH_FANIN_SHARDS; i++)
            pthread_mutex_init(&run->shards[i].lock, NULL);
    } else if (run->strategy == BENCH_FANIN_PER_THREAD_CONCAT) {
        run->buckets = aligned_calloc(run->workers + 1, sizeof *run->buckets);
        if (run->buckets == NULL)
            return BATON_ENOMEM;
    } else {
        rc = baton_mpsc_create(FANIN_RING_CAPACITY, &run->ring);
        if (rc != 0) {
            cmdline_report_error(rc, "creating an MPSC ring");
            return rc;
        }
    }
    rc = baton_scope_run(run->pool, scope_body, run);
    if (rc != 0) {
        cmdline_report_error(rc, "baton_scope_run (fan-in)");
        return rc;
    }
    if (run->strategy != BENCH_FANIN_MPSC)
        rc = concatenate(run);
    return rc;
}

/* ---- the drains ----------------------------------------------------------------------------- */

static int drain_process(void *ctx, void *item, void **result)
{
    const fanin_item *it = item;
    (void)ctx;
    *result = (void *)(uintptr_t)fanin_work(it->value);
    return 0;
}

static int drain_deliver(void *ctx, uint64_t seq, void *item, void *result)
{
    fanin_run *run = ctx;
    const fanin_item *it = item;
    if (seq >= run->n || it->seq != seq) {
        atomic_store_explicit(&run->seq_mismatch, true, memory_order_relaxed);
        return 0;
    }
    run->out[seq] = (uint64_t)(uintptr_t)result;
    return 0;
}

static int run_drain_strategy(fanin_run *run)
{
    baton_drain_ops ops;
    int rc;

    run->out = calloc(run->n ? run->n : 1, sizeof *run->out);
    if (run->out == NULL)
        return BATON_ENOMEM;
    memset(&ops, 0, sizeof ops);
    ops.struct_size = sizeof ops;
    ops.process = drain_process;
    ops.deliver = drain_deliver;
    ops.flags = run->strategy == BENCH_FANIN_DRAIN_UNORDERED ? BATON_DRAIN_UNORDERED : 0;
    rc = baton_workqueue_drain_parallel(run->rx, run->pool, &ops, run, &run->report);
    if (rc != 0)
        cmdline_report_error(rc, "baton_workqueue_drain_parallel");
    return rc;
}

/* ---- one run -------------------------------------------------------------------------------- */

static bool check_run(const fanin_run *run, const bench_fanin_data *data, const char *what)
{
    const char *why = NULL;
    size_t bad = run->n;

    if (run->strategy == BENCH_FANIN_DRAIN_ORDERED ||
        run->strategy == BENCH_FANIN_DRAIN_UNORDERED) {
        if (run->report.accepted != run->n || run->report.delivered != run->n)
            why = "the drain did not accept and deliver every item";
        else if (atomic_load(&run->seq_mismatch))
            why = "deliver saw an item under another seq";
        for (size_t i = 0; why == NULL && i < run->n; i++)
            if (run->out[i] != data->expected[i]) {
                why = "a wrong or missing result";
                bad = i;
            }
    } else if (run->stream_short || run->stream_long) {
        why = run->stream_short ? "the work queue ended before every item came out"
                                : "the work queue gave more items than were sent";
    } else if (run->collected.n != run->n) {
        why = "not one result per item";
    } else {
        unsigned char *seen = calloc(run->n ? run->n : 1, 1);
        if (seen == NULL) {
            cmdline_errorf("bench queue: %s: out of memory for the check", what);
            return false;
        }
        for (size_t i = 0; why == NULL && i < run->n; i++) {
            const fanin_result *r = &run->collected.data[i];
            if (r->seq >= run->n || seen[r->seq] || r->result != data->expected[r->seq]) {
                why = r->seq < run->n && seen[r->seq] ? "a seq came back twice"
                                                      : "a wrong result or an unknown seq";
                bad = (size_t)r->seq;
            } else {
                seen[r->seq] = 1;
            }
        }
        free(seen);
    }
    if (why != NULL) {
        if (bad < run->n)
            cmdline_note("bench queue: %s: %s (item %zu of %zu)", what, why, bad, run->n);
        else
            cmdline_note("bench queue: %s: %s (%zu items)", what, why, run->n);
        return false;
    }
    return true;
}

static void free_run(fanin_run *run)
{
    if (run->shards != NULL) {
        for (unsigned i = 0; i < BENCH_FANIN_SHARDS; i++) {
            free(run->shards[i].vec.data);
            pthread_mutex_destroy(&run->shards[i].lock);
        }
        free(run->shards);
    }
    if (run->buckets != NULL) {
        for (unsigned i = 0; i <= run->workers; i++)
            free(run->buckets[i].vec.data);
        free(run->buckets);
    }
    baton_mpsc_destroy(run->ring);
    free(run->collected.data);
    free(run->got);
    free(run->chunks);
    free(run->out);
}

/* One run on the first n items. Returns 0 with the seconds and the verdict, or -1. */
static int fanin_once(const bench_queue_fanin *fc, baton_pool *pool, unsigned workers, size_t n,
                      const char *what, double *out_s, bool *out_correct)
{
    baton_workqueue_sender *tx;
    fanin_run run;
    size_t sent = 0;
    uint64_t t0, t1;
    int rc;

    memset(&run, 0, sizeof run);
    run.strategy = fc->strategy;
    run.pool = pool;
    run.workers = workers;
    run.n = n;
    atomic_init(&run.seq_mismatch, false);

    rc = baton_workqueue_create(n, 0, &tx, &run.rx);
    if (rc != 0) {
        cmdline_report_error(rc, "creating a work queue");
        return -1;
    }
    rc = baton_workqueue_send_n(tx, fc->data->ptrs, n, BATON_WAIT_FOREVER, &sent);
    baton_workqueue_sender_close(tx);
    if (rc != 0 || sent != n) {
        cmdline_report_error(rc, "filling the work queue");
        baton_workqueue_receiver_destroy(run.rx);
        return -1;
    }

    t0 = baton_now_ns();
    if (fc->strategy == BENCH_FANIN_DRAIN_ORDERED || fc->strategy == BENCH_FANIN_DRAIN_UNORDERED)
        rc = run_drain_strategy(&run);
    else
        rc = run_scope_strategy(&run);
    t1 = baton_now_ns();

    if (rc == BATON_ENOMEM)
        cmdline_errorf("bench queue: %s: out of memory", what);
    if (rc == 0) {
        *out_s = (double)(t1 - t0) * 1e-9;
        *out_correct = check_run(&run, fc->data, what);
    }
    free_run(&run);
    baton_workqueue_receiver_destroy(run.rx);
    return rc == 0 ? 0 : -1;
}

int bench_queue_measure_fanin(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const bench_queue_fanin *fc = ctx;
    size_t n = fc->data->n;
    size_t warm_n = n < FANIN_WARMUP_MIN ? n : FANIN_WARMUP_MIN;
    baton_pool_config config;
    baton_pool *pool;
    double warm_s = 0, time_s = 0;
    bool warm_ok = false, ok = false;
    char what[80];
    int rc, destroy_rc;

    if (n / 10 > warm_n)
        warm_n = n / 10;
    if (fc->strategy >= BENCH_FANIN_N_STRATEGIES) {
        cmdline_errorf("bench queue: unknown fan-in strategy %u", fc->strategy);
        return -1;
    }
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.n_workers = workers;
    config.name = "bench";
    rc = baton_pool_create(&config, &pool);
    if (rc != 0) {
        snprintf(what, sizeof what, "creating a pool of %u workers", workers);
        cmdline_report_error(rc, what);
        return -1;
    }
    snprintf(what, sizeof what, "fanin %s, %zu items, %u workers, warm-up",
             bench_fanin_strategy_names[fc->strategy], warm_n, workers);
    rc = fanin_once(fc, pool, workers, warm_n, what, &warm_s, &warm_ok);
    if (rc == 0 && warm_ok) {
        snprintf(what, sizeof what, "fanin %s, %zu items, %u workers",
                 bench_fanin_strategy_names[fc->strategy], n, workers);
        rc = fanin_once(fc, pool, workers, n, what, &time_s, &ok);
    }
    destroy_rc = baton_pool_destroy(pool);
    if (destroy_rc != 0) {
        cmdline_report_error(destroy_rc, "destroying a pool");
        rc = -1;
    }
    if (rc != 0)
        return -1;
    if (warm_ok && !(time_s > 0)) {
        cmdline_errorf("bench queue: %s: the run took no measurable time", what);
        return -1;
    }
    *out_value = warm_ok ? (double)n / time_s : 0;
    *out_correct = warm_ok && ok;
    return 0;
}
