/*
 * validate.c — what baton_graph_run checks before it starts, and the plan it derives from the
 * graph's shape: each node's rank and activation limit, and each ordered sink's path, window
 * and gate on its source.
 */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "graph/internal.h"

static const char *run_prefix = "baton_graph_run";

/* Counts the paths from sources to every node, saturating at 2, in topological order (Kahn). */
static int count_paths(const baton_graph *graph, uint8_t *paths)
{
    uint32_t *order = baton__malloc(graph->n_nodes * sizeof *order);
    uint32_t *waiting = baton__calloc(graph->n_nodes, sizeof *waiting);
    if (order == NULL || waiting == NULL) {
        baton__free(order);
        baton__free(waiting);
        return BATON_ENOMEM;
    }
    uint32_t n_order = 0;
    for (uint32_t n = 0; n < graph->n_nodes; n++) {
        waiting[n] = graph->nodes[n].n_in;
        paths[n] = graph->nodes[n].kind == BATON_NODE_SOURCE ? 1 : 0;
        if (waiting[n] == 0)
            order[n_order++] = n;
    }
    for (uint32_t i = 0; i < n_order; i++) {
        const baton__gnode *node = &graph->nodes[order[i]];
        for (uint32_t k = 0; k < node->n_out; k++) {
            uint32_t next = graph->edges[node->out_edges[k]].to;
            unsigned sum = paths[next] + paths[order[i]];
            paths[next] = (uint8_t)(sum > 2 ? 2 : sum);
            if (--waiting[next] == 0)
                order[n_order++] = next;
        }
    }
    baton__free(order);
    baton__free(waiting);
    return 0;
}

/* The checks of an ordered sink: one path from one source, one item per item on the way. */
static int check_ordered(const baton_graph *graph, uint32_t sink, const uint8_t *paths)
{
    const baton__gnode *node = &graph->nodes[sink];
    if (paths[sink] != 1)
        return baton__error(BATON_EINVAL,
                            "%s: ordered sink '%s' is reached by more than one path from the "
                            "sources; source order is defined only along one path",
                            run_prefix, node->name);
    for (uint32_t at = sink; graph->nodes[at].kind != BATON_NODE_SOURCE;) {
        const baton__gnode *step = &graph->nodes[at];
        /* One path in means one predecessor: every node is reached from some source. */
        at = graph->edges[step->in_edges[0]].from;
        const baton__gnode *producer = &graph->nodes[at];
        if (producer->kind != BATON_NODE_SOURCE && producer->kind != BATON_NODE_FANOUT &&
            producer->max_emit > 1)
            return baton__error(BATON_EINVAL,
                                "%s: node '%s' (max_emit = %u) is on the path to ordered sink "
                                "'%s'; nodes there may emit at most one item per item",
                                run_prefix, producer->name, (unsigned)producer->max_emit,
                                node->name);
    }
    return 0;
}

int baton__graph_validate(baton_graph *graph)
{
    uint32_t sources = 0;
    for (uint32_t n = 0; n < graph->n_nodes; n++) {
        const baton__gnode *node = &graph->nodes[n];
        if (node->kind == BATON_NODE_SOURCE)
            sources++;
        else if (node->n_in == 0)
            return baton__error(BATON_EINVAL, "%s: node '%s' has no predecessor", run_prefix,
                                node->name);
        if (node->kind != BATON_NODE_SINK && node->n_out == 0)
            return baton__error(BATON_EINVAL,
                                "%s: node '%s' has no successor; what it emits would be lost",
                                run_prefix, node->name);
        if (node->kind == BATON_NODE_FANOUT && node->copy == NULL && graph->release != NULL)
            return baton__error(BATON_EINVAL,
                                "%s: fanout '%s' passes items by reference, but the graph has a "
                                "release function, which could then free an item twice; give "
                                "the fanout a copy function",
                                run_prefix, node->name);
    }
    if (sources == 0)
        return baton__error(BATON_EINVAL, "%s: the graph has no source", run_prefix);
    uint8_t *paths = baton__malloc(graph->n_nodes);
    if (paths == NULL || count_paths(graph, paths) != 0) {
        baton__free(paths);
        return baton__error(BATON_ENOMEM, "%s: out of memory", run_prefix);
    }
    int rc = 0;
    for (uint32_t n = 0; n < graph->n_nodes && rc == 0; n++)
        if (graph->nodes[n].flags & BATON_NODE_ORDERED)
            rc = check_ordered(graph, n, paths);
    baton__free(paths);
    return rc;
}

/* The scheduling class: serial consumers first, then parallel ones, then sources. */
static int node_class(const baton__gnode *node)
{
    if (node->kind == BATON_NODE_SOURCE)
        return 0;
    return node->concurrency == 1 ? 2 : 1;
}

static int compare_keys(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return (*x < *y) - (*x > *y); /* descending */
}

static int64_t rank_key(const baton__gnode *node)
{
    return (int64_t)node->priority * 4 + node_class(node);
}

static int plan_ranks(baton__run *run)
{
    const baton_graph *graph = run->graph;
    int64_t *keys = baton__malloc(graph->n_nodes * sizeof *keys);
    if (keys == NULL)
        return BATON_ENOMEM;
    for (uint32_t n = 0; n < graph->n_nodes; n++)
        keys[n] = rank_key(&graph->nodes[n]);
    qsort(keys, graph->n_nodes, sizeof *keys, compare_keys);
    uint32_t distinct = 0;
    for (uint32_t n = 0; n < graph->n_nodes; n++)
        if (distinct == 0 || keys[distinct - 1] != keys[n])
            keys[distinct++] = keys[n];
    run->n_ranks = distinct;
    for (uint32_t n = 0; n < graph->n_nodes; n++) {
        int64_t key = rank_key(&graph->nodes[n]);
        uint32_t rank = 0;
        while (keys[rank] != key)
            rank++;
        run->nodes[n].rank = rank;
    }
    baton__free(keys);
    return 0;
}

/* An ordered sink's buffer and window, its path's skip duty, and its gate on the source. */
static int plan_ordered(baton__run *run, uint32_t sink)
{
    const baton_graph *graph = run->graph;
    baton__rnode *state = &run->nodes[sink];
    /* The window: the sink's input capacity, so that the items on that edge and in the reorder
     * buffer, one per seq in flight, never outnumber its units (the memory bound). When one call
     * of the source may emit more than that, the window is the source's max_emit instead, or the
     * source could never be called; the excess is then covered by the source's own edge, which
     * holds at least max_emit and is empty of the seqs that have reached the sink. */
    uint32_t at = sink;
    while (graph->nodes[at].kind != BATON_NODE_SOURCE) {
        at = graph->edges[graph->nodes[at].in_edges[0]].from;
        run->nodes[at].on_ordered_path = graph->nodes[at].kind != BATON_NODE_SOURCE;
    }
    state->window = graph->edges[graph->nodes[sink].in_edges[0]].capacity;
    if (state->window < graph->nodes[at].max_emit)
        state->window = graph->nodes[at].max_emit;
    if (baton_reorder_create(state->window, 0, &state->reorder) != 0)
        return BATON_ENOMEM;
    size_t slots = baton_reorder_window(state->reorder);
    state->held_mask = slots - 1;
    state->held = baton__malloc(slots * sizeof *state->held);
    state->held_full = baton__calloc(slots, 1);
    if (state->held == NULL || state->held_full == NULL)
        return BATON_ENOMEM;
    baton__rnode *source = &run->nodes[at];
    uint32_t *gates = baton__malloc((source->n_gates + 1) * sizeof *gates);
    if (gates == NULL)
        return BATON_ENOMEM;
    if (source->n_gates > 0)
        memcpy(gates, source->gates, source->n_gates * sizeof *gates);
    baton__free(source->gates);
    source->gates = gates;
    source->gates[source->n_gates++] = sink;
    state->gate_source = at;
    return 0;
}

int baton__graph_plan(baton__run *run)
{
    const baton_graph *graph = run->graph;
    int rc = plan_ranks(run);
    if (rc != 0)
        return rc;
    for (uint32_t n = 0; n < graph->n_nodes; n++) {
        const baton__gnode *node = &graph->nodes[n];
        baton__rnode *state = &run->nodes[n];
        /* More activations than workers could not run at once anyway. */
        state->max_active = node->concurrency < run->n_workers ? node->concurrency
                                                                : run->n_workers;
        if (node->flags & BATON_NODE_ORDERED) {
            rc = plan_ordered(run, n);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}
