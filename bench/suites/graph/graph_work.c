/*
 * graph_work.c — what the graph suite measures inside this process: the pipelines of
 * bench/common/graph_workloads.h on baton's graph, as a hand-written pthread pipeline, and as one
 * serial loop; and the calibration of work4's rounds.
 *
 * baton: a pool of W workers, created with its threads before anything is timed. The run makes
 * W scheduler loops; the measuring thread waits in baton_graph_run on one of the pool's external
 * slots, so it may run one of those loops itself, as the oneTBB peer's main thread takes one of
 * its arena's W slots. The graph is built with the shorthands and their defaults:
 * baton_graph_source (one item per call, as oneTBB's input_node), three baton_graph_map nodes
 * (unlimited concurrency), a baton_graph_sink (serial), connected with the default capacities. As
 * the oneTBB peer does, an untimed warm-up graph runs over GRAPH_WARMUP_ITEMS items first; then a
 * fresh graph's baton_graph_run is timed. Graphs are built and destroyed outside the timed region,
 * the pool before the measurement returns.
 *
 * pthread_queues: what a C programmer writes without a runtime: one thread per stage, joined by
 * bounded FIFO queues of GRAPH_PTHREAD_QUEUE_CAPACITY items, each a mutex and two condition
 * variables, one item per lock operation. The measuring thread is the source; closing a queue is
 * the end-of-stream signal, passed down stage by stage. Thread creation is inside the timed
 * region (a few tens of microseconds against runs of a tenth of a second or more).
 *
 * serial: one loop doing every stage of an item, then the next item.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "graph_work.h"
#include "graph_workloads.h"

/* ---- baton ---------------------------------------------------------------------------------- */

enum { NODE_SOURCE, NODE_MAP1, NODE_MAP2, NODE_MAP3, NODE_SINK, N_NODES };

typedef struct source_state {
    uint64_t next, end;
} source_state;

typedef struct sink_state {
    uint64_t sum, count, rounds;
} sink_state;

static int source_next(void *state, baton_emitter *out)
{
    source_state *s = state;
    int rc;

    if (s->next == s->end)
        return BATON_GRAPH_END;
    rc = baton_emit(out, baton_item_int((int64_t)s->next));
    if (rc != 0)
        return rc;
    s->next++;
    /* Ending with the last item saves the graph one more call just to hear that it is over. */
    return s->next == s->end ? BATON_GRAPH_END : 0;
}

static int trivial_map1(void *ctx, baton_item item, baton_emitter *out)
{
    (void)ctx;
    item.u = graph_stage1(item.u);
    return baton_emit(out, item);
}

static int trivial_map2(void *ctx, baton_item item, baton_emitter *out)
{
    (void)ctx;
    item.u = graph_stage2(item.u);
    return baton_emit(out, item);
}

static int trivial_map3(void *ctx, baton_item item, baton_emitter *out)
{
    (void)ctx;
    item.u = graph_stage3(item.u);
    return baton_emit(out, item);
}

static int trivial_sink(void *state, baton_item item)
{
    sink_state *s = state;
    s->sum += item.u;
    s->count++;
    return 0;
}

/* work4's nodes: ctx is the case's rounds (const uint64_t *). */
static int work_map1(void *ctx, baton_item item, baton_emitter *out)
{
    item.u = graph_work_stage1(item.u, *(const uint64_t *)ctx);
    return baton_emit(out, item);
}

static int work_map2(void *ctx, baton_item item, baton_emitter *out)
{
    item.u = graph_work_stage2(item.u, *(const uint64_t *)ctx);
    return baton_emit(out, item);
}

static int work_map3(void *ctx, baton_item item, baton_emitter *out)
{
    item.u = graph_work_stage3(item.u, *(const uint64_t *)ctx);
    return baton_emit(out, item);
}

static int work_sink(void *state, baton_item item)
{
    sink_state *s = state;
    s->sum += graph_work_sink_value(item.u, s->rounds);
    s->count++;
    return 0;
}

/* Builds source -> map1 -> map2 -> map3 -> sink over the given states. */
static int build_graph(graph_case *gc, source_state *source, sink_state *sink,
                       baton_graph **out_graph)
{
    bool work = gc->rounds > 0;
    int nodes[N_NODES];
    baton_graph *graph;
    int rc;

    rc = baton_graph_create(NULL, &graph);
    if (rc != 0) {
        cmdline_report_error(rc, "baton_graph_create");
        return rc;
    }
    /* A failed add returns a negative id, which connect_path reports: one check covers all. */
    nodes[NODE_SOURCE] = baton_graph_source(graph, "source", source_next, source);
    nodes[NODE_MAP1] = baton_graph_map(graph, "map1", work ? work_map1 : trivial_map1, &gc->rounds);
    nodes[NODE_MAP2] = baton_graph_map(graph, "map2", work ? work_map2 : trivial_map2, &gc->rounds);
    nodes[NODE_MAP3] = baton_graph_map(graph, "map3", work ? work_map3 : trivial_map3, &gc->rounds);
    nodes[NODE_SINK] = baton_graph_sink(graph, "sink", work ? work_sink : trivial_sink, sink);
    rc = baton_graph_connect_path(graph, nodes, N_NODES);
    if (rc != 0) {
        cmdline_report_error(rc, "building the graph");
        baton_graph_destroy(graph);
        return rc;
    }
    *out_graph = graph;
    return 0;
}

/* One run of a fresh graph over `items` items on `pool`: its time, sum and item count, and (when
 * stats is not NULL) what each node did. */
static int run_graph_once(graph_case *gc, baton_pool *pool, uint64_t items, double *out_s,
                          sink_state *out_sink, baton_node_stats *stats)
{
    source_state source = {0, items};
    baton_graph *graph;
    double start;
    int rc;

    memset(out_sink, 0, sizeof *out_sink);
    out_sink->rounds = gc->rounds;
    rc = build_graph(gc, &source, out_sink, &graph);
    if (rc != 0)
        return rc;
    start = cmdline_now_s();
    rc = baton_graph_run(graph, pool);
    *out_s = cmdline_now_s() - start;
    if (rc != 0)
        cmdline_report_error(rc, "baton_graph_run");
    for (int n = 0; rc == 0 && stats != NULL && n < N_NODES; n++) {
        rc = baton_graph_node_stats(graph, n, &stats[n]);
        if (rc != 0)
            cmdline_report_error(rc, "baton_graph_node_stats");
    }
    baton_graph_destroy(graph);
    return rc;
}

int graph_measure_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    graph_case *gc = ctx;
    baton_node_stats stats[N_NODES];
    baton_pool *pool;
    sink_state sink;
    double seconds;
    bool warmup_ok;
    int rc;

    if (cmdline_pool_create(workers, 0, &pool) != 0)
        return -1;
    rc = run_graph_once(gc, pool, GRAPH_WARMUP_ITEMS, &seconds, &sink, NULL);
    /* A wrong warm-up makes the measurement wrong too, but the timed run still gives its value. */
    warmup_ok = sink.count == GRAPH_WARMUP_ITEMS &&
                sink.sum == graph_expected_sum(GRAPH_WARMUP_ITEMS, gc->rounds);
    if (rc == 0 && !warmup_ok)
        cmdline_note("bench graph: %s: baton's warm-up (%u workers) summed %" PRIu64
                     " items to %" PRIu64 ", expected %" PRIu64 " items",
                     gc->name, workers, sink.count, sink.sum, GRAPH_WARMUP_ITEMS);
    if (rc == 0)
        rc = run_graph_once(gc, pool, gc->items, &seconds, &sink, stats);
    cmdline_pool_destroy(pool, &rc);
    if (rc != 0)
        return rc;
    *out_value = (double)gc->items / seconds;
    *out_correct = warmup_ok && sink.count == gc->items && sink.sum == gc->expected_sum;
    if (sink.count != gc->items || sink.sum != gc->expected_sum)
        cmdline_note("bench graph: %s: baton (%u workers) summed %" PRIu64 " items to %" PRIu64
                     ", expected %" PRIu64 " items summing to %" PRIu64,
                     gc->name, workers, sink.count, sink.sum, gc->items, gc->expected_sum);
    if (workers >= gc->baton_stats.workers) {
        gc->baton_stats.workers = workers;
        gc->baton_stats.run_s = seconds;
        memcpy(gc->baton_stats.nodes, stats, sizeof stats);
    }
    return 0;
}

/* ---- pthread_queues ------------------------------------------------------------------------- */

typedef struct pthread_queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    uint64_t items[GRAPH_PTHREAD_QUEUE_CAPACITY];
    size_t head, count;
    bool closed;
} pthread_queue;

static int queue_init(pthread_queue *q)
{
    memset(q->items, 0, sizeof q->items);
    q->head = 0;
    q->count = 0;
    q->closed = false;
    if (pthread_mutex_init(&q->lock, NULL) != 0)
        return -1;
    if (pthread_cond_init(&q->not_empty, NULL) != 0) {
        pthread_mutex_destroy(&q->lock);
        return -1;
    }
    if (pthread_cond_init(&q->not_full, NULL) != 0) {
        pthread_cond_destroy(&q->not_empty);
        pthread_mutex_destroy(&q->lock);
        return -1;
    }
    return 0;
}

static void queue_destroy(pthread_queue *q)
{
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    pthread_mutex_destroy(&q->lock);
}

static void queue_push(pthread_queue *q, uint64_t item)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == GRAPH_PTHREAD_QUEUE_CAPACITY)
        pthread_cond_wait(&q->not_full, &q->lock);
    q->items[(q->head + q->count) % GRAPH_PTHREAD_QUEUE_CAPACITY] = item;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

/* Takes the oldest item; false once the queue is closed and empty. */
static bool queue_pop(pthread_queue *q, uint64_t *out_item)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == 0 && !q->closed)
        pthread_cond_wait(&q->not_empty, &q->lock);
    if (q->count == 0) {
        pthread_mutex_unlock(&q->lock);
        return false;
    }
    *out_item = q->items[q->head];
    q->head = (q->head + 1) % GRAPH_PTHREAD_QUEUE_CAPACITY;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->lock);
    return true;
}

static void queue_close(pthread_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

/* The four stage threads' queues: queues[k] feeds stage k (k = 0, 1, 2 the maps, 3 the sink). */
#define PIPE_STAGES 4

typedef struct pthread_pipeline {
    pthread_queue queues[PIPE_STAGES];
    uint64_t rounds;
    uint64_t sum, count; /* the sink's, read after it is joined */
} pthread_pipeline;

typedef struct stage_arg {
    pthread_pipeline *pipe;
    int stage;
} stage_arg;

/* Stage k's transformation of an item (maps only). */
static uint64_t pipe_map(int stage, uint64_t x, uint64_t rounds)
{
    if (rounds == 0)
        return stage == 0 ? graph_stage1(x) : stage == 1 ? graph_stage2(x) : graph_stage3(x);
    return stage == 0   ? graph_work_stage1(x, rounds)
           : stage == 1 ? graph_work_stage2(x, rounds)
                        : graph_work_stage3(x, rounds);
}

static void *stage_main(void *arg)
{
    stage_arg *a = arg;
    pthread_pipeline *pipe = a->pipe;
    pthread_queue *in = &pipe->queues[a->stage];
    uint64_t x;

    if (a->stage == PIPE_STAGES - 1) {
        uint64_t sum = 0, count = 0;
        while (queue_pop(in, &x)) {
            sum += pipe->rounds == 0 ? x : graph_work_sink_value(x, pipe->rounds);
            count++;
        }
        pipe->sum = sum;
        pipe->count = count;
        return NULL;
    }
    while (queue_pop(in, &x))
        queue_push(&pipe->queues[a->stage + 1], pipe_map(a->stage, x, pipe->rounds));
    queue_close(&pipe->queues[a->stage + 1]);
    return NULL;
}

/* Starts the stage threads, sends items 0 .. items-1 from this thread, joins the stages. */
static int run_pipeline_threads(pthread_pipeline *pipe, uint64_t items, double *out_s)
{
    pthread_t threads[PIPE_STAGES];
    stage_arg args[PIPE_STAGES];
    double start = cmdline_now_s();
    int started, rc = 0;

    for (started = 0; started < PIPE_STAGES; started++) {
        args[started] = (stage_arg){pipe, started};
        if (pthread_create(&threads[started], NULL, stage_main, &args[started]) != 0) {
            cmdline_errorf("bench graph: pthread_queues: cannot start a stage thread");
            rc = -1;
            break;
        }
    }
    if (rc == 0) {
        for (uint64_t x = 0; x < items; x++)
            queue_push(&pipe->queues[0], x);
        queue_close(&pipe->queues[0]);
    } else {
        /* No item was sent; closing every queue ends the stages that did start. */
        for (int k = 0; k < PIPE_STAGES; k++)
            queue_close(&pipe->queues[k]);
    }
    for (int k = 0; k < started; k++)
        pthread_join(threads[k], NULL);
    *out_s = cmdline_now_s() - start;
    return rc;
}

int graph_measure_pthread_queues(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    graph_case *gc = ctx;
    pthread_pipeline *pipe;
    double seconds;
    int made = 0, rc = -1;

    (void)workers;
    /* The queues hold 8 KiB each: on the heap rather than the stack. */
    pipe = calloc(1, sizeof *pipe);
    if (pipe == NULL) {
        cmdline_errorf("bench graph: out of memory");
        return -1;
    }
    pipe->rounds = gc->rounds;
    while (made < PIPE_STAGES && queue_init(&pipe->queues[made]) == 0)
        made++;
    if (made < PIPE_STAGES)
        cmdline_errorf("bench graph: pthread_queues: cannot initialise a queue");
    else
        rc = run_pipeline_threads(pipe, gc->items, &seconds);
    if (rc == 0) {
        *out_value = (double)gc->items / seconds;
        *out_correct = pipe->count == gc->items && pipe->sum == gc->expected_sum;
        if (!*out_correct)
            cmdline_note("bench graph: %s: pthread_queues summed %" PRIu64 " items to %" PRIu64
                         ", expected %" PRIu64 " items summing to %" PRIu64,
                         gc->name, pipe->count, pipe->sum, gc->items, gc->expected_sum);
    }
    for (int k = 0; k < made; k++)
        queue_destroy(&pipe->queues[k]);
    free(pipe);
    return rc;
}

/* ---- serial --------------------------------------------------------------------------------- */

uint64_t graph_reference_sum(uint64_t items, uint64_t rounds)
{
    return graph_expected_sum(items, rounds);
}

int graph_measure_serial(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    graph_case *gc = ctx;
    double start = cmdline_now_s();
    uint64_t sum = graph_expected_sum(gc->items, gc->rounds);
    double seconds = cmdline_now_s() - start;

    (void)workers;
    *out_value = (double)gc->items / seconds;
    *out_correct = sum == gc->expected_sum;
    return 0;
}

/* ---- calibration ---------------------------------------------------------------------------- */

#define CALIBRATION_CHAIN 262144u /* rounds per timed chain: about a millisecond */
#define CALIBRATION_TRIES 21

uint64_t graph_calibrate_rounds(double *out_ns_per_round)
{
    /* volatile: the seed is not a constant the compiler could run the chain on, and the result
     * is used, so every chain is computed. */
    volatile uint64_t seed = 1, result;
    double best = INFINITY, ns;

    for (unsigned t = 0; t < CALIBRATION_TRIES; t++) {
        double start = cmdline_now_s(), elapsed;
        result = graph_spin(seed + t, CALIBRATION_CHAIN);
        elapsed = cmdline_now_s() - start;
        if (elapsed < best)
            best = elapsed;
    }
    (void)result;
    ns = best * 1e9 / CALIBRATION_CHAIN;
    *out_ns_per_round = ns;
    return ns > 0 && GRAPH_STAGE_WORK_NS / ns >= 1 ? (uint64_t)llround(GRAPH_STAGE_WORK_NS / ns)
                                                   : 1;
}
