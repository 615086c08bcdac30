/*
 * run.c — baton_graph_run: sets up a run (edge rings, node states, one scheduler loop per pool
 * worker), runs the loops on the pool, and tears the run down.
 *
 * DESIGN
 *  - A loop takes activations from its own ready queues (highest rank first, newest first),
 *    else steals the oldest from another loop's queues (highest rank first, victims in a random
 *    order), else waits on the run's waitpoint: it spins briefly, then sleeps on a futex. Every
 *    push of an activation notifies the waitpoint, which costs a load when nobody sleeps.
 *  - The end. `live` counts the records in the graph plus one per source still producing;
 *    producers add what they emit before publishing it, consumers subtract what they consumed
 *    after publishing their own outputs, so it cannot reach 0 while anything is still in flight.
 *    Whoever brings it to 0 stops the run. A failing node stops it too, with its error.
 *  - After the loops have returned, nothing runs any more: the cleanup releases the records left
 *    in edges and reorder buffers (after a failure) and adds up the workers' statistics.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "graph/internal.h"
#include "pool/sched.h"

/* Sets the calling thread's message for a run that a node function failed. */
static int report_failure(const baton__run *run, int error)
{
    const baton__gnode *node = &run->graph->nodes[baton__load_relaxed(&run->failed_node)];
    int returned = atomic_load_explicit(&run->returned, memory_order_relaxed);
    const char *function = node->kind == BATON_NODE_SOURCE   ? "source"
                           : node->kind == BATON_NODE_SINK   ? "sink"
                           : node->kind == BATON_NODE_FANOUT ? "copy"
                                                             : "map";
    if (returned > 0)
        return baton__error(error,
                            "baton_graph_run: node '%s' failed: its %s function returned %d, "
                            "which is not 0%s or a negative error",
                            node->name, function, returned,
                            node->kind == BATON_NODE_SOURCE ? ", BATON_GRAPH_END" : "");
    return baton__error(error,
                        "baton_graph_run: node '%s' failed: its %s function returned %d (%s: %s)",
                        node->name, function, returned, baton_err_name(returned),
                        baton_strerror(returned));
}

static bool find_activation(baton__gworker *worker, uint32_t *node)
{
    baton__run *run = worker->run;
    for (uint32_t r = 0; r < run->n_ranks; r++)
        if (baton__ready_pop(&worker->ready[r], node))
            return true;
    if (run->n_workers == 1)
        return false;
    /* xorshift64: a random first victim, so that thieves do not all line up on worker 0. */
    worker->rng ^= worker->rng << 13;
    worker->rng ^= worker->rng >> 7;
    worker->rng ^= worker->rng << 17;
    unsigned first = (unsigned)(worker->rng % run->n_workers);
    for (uint32_t r = 0; r < run->n_ranks; r++) {
        for (unsigned k = 0; k < run->n_workers; k++) {
            unsigned victim = (first + k) % run->n_workers;
            if (victim != worker->index &&
                baton__ready_steal(&run->workers[victim].ready[r], node))
                return true;
        }
    }
    return false;
}

static bool work_visible(void *arg)
{
    baton__run *run = arg;
    if (baton__load_acquire(&run->stop))
        return true;
    for (unsigned w = 0; w < run->n_workers; w++)
        for (uint32_t r = 0; r < run->n_ranks; r++)
            if (baton__ready_nonempty(&run->workers[w].ready[r]))
                return true;
    return false;
}

/* Claims a free worker slot (its ready queues); false when all are taken. acquire: pairs with
 * the release that freed it, so the queues' owner-side state is handed over. */
static bool claim_slot(baton__run *run, unsigned *index)
{
    for (unsigned i = 0; i < run->n_workers; i++) {
        uint32_t free_slot = 0;
        if (atomic_compare_exchange_strong_explicit(&run->workers[i].claimed, &free_slot, 1,
                                                    memory_order_acquire, memory_order_relaxed)) {
            *index = i;
            return true;
        }
    }
    return false;
}

/*
 * One scheduler loop. With may_sleep it runs until the run stops, sleeping when idle. Without, it
 * returns as soon as it finds nothing to do: that is how a loop runs when the pool started it
 * while another job waits below it on the same thread (a node function's baton_parallel_for
 * helping with other work, say). Such a loop must give the thread back, or the job below could
 * never resume, and the run might wait for that job forever. It hands its slot back when it
 * returns, with its queues empty, so another loop can take it.
 */
static void run_loop(baton__run *run, bool may_sleep)
{
    unsigned index;
    if (!claim_slot(run, &index))
        return;
    baton__gworker *worker = &run->workers[index];
    uint32_t node;
    worker->stamp = baton_now_ns();
    while (!baton__load_acquire(&run->stop)) {
        if (find_activation(worker, &node)) {
            baton__activation_run(worker, node);
            continue;
        }
        if (!may_sleep)
            break;
        (void)baton__waitpoint_wait(&run->idle, work_visible, run, UINT64_MAX);
        worker->stamp = baton_now_ns();
    }
    /* Release: pairs with the acquire in claim_slot. */
    baton__store_release(&worker->claimed, 0);
}

static int graph_loop(void *ctx)
{
    run_loop(ctx, baton__execution_depth() <= 1);
    return 0;
}

static int spawn_loops(baton_scope *scope, void *ctx)
{
    baton__run *run = ctx;
    for (unsigned i = 0; i < run->n_workers; i++) {
        int rc = baton_scope_spawn(scope, graph_loop, run);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void free_run(baton__run *run)
{
    baton_graph *graph = run->graph;
    if (run->workers != NULL) {
        for (unsigned w = 0; w < run->n_workers; w++) {
            baton__gworker *worker = &run->workers[w];
            if (worker->ready != NULL)
                for (uint32_t r = 0; r < run->n_ranks; r++)
                    baton__ready_destroy(&worker->ready[r]);
            baton__free(worker->ready);
            baton__free(worker->in);
            baton__free(worker->out);
            baton__free(worker->stats);
            baton__free(worker->counts);
            baton__free(worker->pending);
        }
        baton__free(run->workers);
    }
    if (run->edges != NULL) {
        for (uint32_t e = 0; e < graph->n_edges; e++)
            baton__edge_destroy(&run->edges[e]);
        baton__free(run->edges);
    }
    if (run->nodes != NULL) {
        for (uint32_t n = 0; n < graph->n_nodes; n++) {
            baton__rnode *state = &run->nodes[n];
            baton__free(state->gates);
            baton_reorder_destroy(state->reorder);
            baton__free(state->held);
            baton__free(state->held_full);
        }
        baton__free(run->nodes);
    }
}

/* The widest batch output of any node: what worker->out must hold. */
static size_t output_records(const baton_graph *graph, uint32_t batch)
{
    size_t widest = 1;
    for (uint32_t n = 0; n < graph->n_nodes; n++) {
        const baton__gnode *node = &graph->nodes[n];
        size_t width = node->kind == BATON_NODE_FANOUT ? node->n_out : node->max_emit;
        if (width > widest)
            widest = width;
    }
    return widest * batch;
}

static int init_workers(baton__run *run, uint64_t activations)
{
    baton_graph *graph = run->graph;
    run->workers = baton__calloc(run->n_workers, sizeof *run->workers);
    if (run->workers == NULL)
        return BATON_ENOMEM;
    for (unsigned w = 0; w < run->n_workers; w++) {
        baton__gworker *worker = &run->workers[w];
        worker->run = run;
        worker->index = w;
        worker->rng = baton_mix64(w + 1) | 1;
        worker->in = baton__malloc(run->batch * sizeof *worker->in);
        worker->out = baton__malloc(output_records(graph, run->batch) * sizeof *worker->out);
        worker->stats = baton__calloc(graph->n_nodes, sizeof *worker->stats);
        worker->counts = baton__calloc(graph->n_nodes, sizeof *worker->counts);
        worker->pending = baton__calloc(graph->n_nodes, sizeof *worker->pending);
        worker->ready = baton__calloc(run->n_ranks, sizeof *worker->ready);
        if (worker->in == NULL || worker->out == NULL || worker->stats == NULL ||
            worker->counts == NULL || worker->pending == NULL || worker->ready == NULL)
            return BATON_ENOMEM;
        for (uint32_t r = 0; r < run->n_ranks; r++) {
            if (baton__ready_init(&worker->ready[r], activations) != 0) {
                for (uint32_t k = 0; k < r; k++)
                    baton__ready_destroy(&worker->ready[k]);
                baton__free(worker->ready);
                worker->ready = NULL;
                return BATON_ENOMEM;
            }
        }
    }
    return 0;
}

static int init_run(baton__run *run, baton_graph *graph, baton_pool *pool)
{
    memset(run, 0, sizeof *run);
    run->graph = graph;
    run->n_workers = baton_pool_workers(pool);
    run->batch = graph->batch;
    baton__waitpoint_init(&run->idle);
    /* Each array is zeroed as soon as it exists: free_run walks whatever was allocated. */
    run->nodes = baton__aligned_alloc(BATON_CACHELINE, graph->n_nodes * sizeof *run->nodes);
    if (run->nodes == NULL)
        return BATON_ENOMEM;
    memset(run->nodes, 0, graph->n_nodes * sizeof *run->nodes);
    size_t edges_size = (graph->n_edges > 0 ? graph->n_edges : 1) * sizeof *run->edges;
    run->edges = baton__aligned_alloc(BATON_CACHELINE, edges_size);
    if (run->edges == NULL)
        return BATON_ENOMEM;
    memset(run->edges, 0, edges_size);
    for (uint32_t e = 0; e < graph->n_edges; e++)
        if (baton__edge_init(&run->edges[e], &graph->edges[e]) != 0)
            return BATON_ENOMEM;
    int rc = baton__graph_plan(run);
    if (rc != 0)
        return rc;
    uint64_t activations = 0;
    for (uint32_t n = 0; n < graph->n_nodes; n++)
        activations += run->nodes[n].max_active;
    return init_workers(run, activations);
}

/* After a failure: what is still in an edge or an ordered sink's buffer goes back to the user. */
static void release_leftovers(baton__run *run)
{
    baton_graph *graph = run->graph;
    baton__record records[64];
    for (uint32_t e = 0; e < graph->n_edges; e++) {
        uint32_t n;
        while ((n = baton__edge_pop(&run->edges[e], records, 64)) > 0)
            for (uint32_t i = 0; i < n; i++)
                if (!baton__record_is_skip(&records[i]))
                    baton__run_release(run, records[i].item);
    }
    for (uint32_t n = 0; n < graph->n_nodes; n++) {
        baton__rnode *state = &run->nodes[n];
        if (state->reorder == NULL)
            continue;
        for (uint64_t i = 0; i <= state->held_mask; i++)
            if (state->held_full[i] && !baton__record_is_skip(&state->held[i]))
                baton__run_release(run, state->held[i].item);
    }
}

static void collect_stats(baton__run *run)
{
    baton_graph *graph = run->graph;
    for (uint32_t n = 0; n < graph->n_nodes; n++) {
        baton_node_stats *total = &graph->nodes[n].stats;
        memset(total, 0, sizeof *total);
        for (unsigned w = 0; w < run->n_workers; w++) {
            const baton__worker_stats *part = &run->workers[w].stats[n];
            total->items_in += part->items_in;
            total->items_out += part->items_out;
            total->rejected += part->rejected;
            total->activations += part->activations;
            total->busy_ns += part->busy_ns;
            total->blocked_ns += part->blocked_ns;
        }
        /* A node still held by a full edge when the run stopped. */
        uint64_t since = baton__load_relaxed(&run->nodes[n].blocked_since);
        if (since != 0)
            total->blocked_ns += baton_now_ns() - since;
    }
}

int baton_graph_run(baton_graph *graph, baton_pool *pool)
{
    if (graph == NULL || pool == NULL)
        return baton__error(BATON_EINVAL, "baton_graph_run: %s is NULL",
                            graph == NULL ? "graph" : "pool");
    uint32_t idle = 0;
    /* acquire: pairs with the release that ended the previous run, whose writes we reuse. */
    if (!atomic_compare_exchange_strong_explicit(&graph->running, &idle, 1,
                                                 memory_order_acquire, memory_order_relaxed))
        return baton__error(BATON_EBUSY, "baton_graph_run: the graph is already running");
    baton__run run;
    memset(&run, 0, sizeof run);
    run.graph = graph;
    for (uint32_t n = 0; n < graph->n_nodes; n++) /* a run that fails to start ran nothing */
        memset(&graph->nodes[n].stats, 0, sizeof graph->nodes[n].stats);
    int rc = baton__graph_validate(graph);
    if (rc == 0)
        rc = init_run(&run, graph, pool);
    if (rc == BATON_ENOMEM)
        rc = baton__error(BATON_ENOMEM, "baton_graph_run: out of memory for the run's rings");
    if (rc == 0) {
        graph->has_run = true;
        /* The sources start queued, spread over the workers. */
        unsigned next = 0;
        for (uint32_t n = 0; n < graph->n_nodes; n++) {
            if (graph->nodes[n].kind != BATON_NODE_SOURCE)
                continue;
            atomic_init(&run.nodes[n].active, 1);
            atomic_fetch_add_explicit(&run.live, 1, memory_order_relaxed);
            baton__ready_push(&run.workers[next++ % run.n_workers].ready[run.nodes[n].rank], n);
        }
        rc = baton_scope_run(pool, spawn_loops, &run);
        /* Every loop may have been nested in other work and returned early (see run_loop):
         * then this thread finishes the run. */
        if (rc == 0 && !baton__load_acquire(&run.stop))
            run_loop(&run, true);
        int failure = baton__load_relaxed(&run.error);
        if (failure != 0 || rc != 0)
            release_leftovers(&run);
        if (failure != 0)
            rc = report_failure(&run, failure);
        collect_stats(&run);
    }
    free_run(&run);
    /* release: pairs with the acquire of the next run. */
    baton__store_release(&graph->running, 0);
    return rc;
}
