/*
 * build.c — building a graph: create and destroy, adding nodes, connecting them (with the cycle
 * check), and the read-only queries (names, counts, statistics).
 *
 * Every call checks all of its arguments before it changes anything, so a call that fails leaves
 * the graph as it was.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/error.h"
#include "graph/internal.h"

int baton_graph_create(const baton_graph_config *config, baton_graph **out)
{
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_graph_create: out is NULL");
    baton_graph_config copy;
    int rc = baton__config_copy("baton_graph_create", "config", "baton_graph_config", config,
                                &copy, sizeof copy);
    if (rc != 0)
        return rc;
    config = &copy;
    if (config->batch > BATON_GRAPH_MAX_BATCH)
        return baton__error(BATON_EINVAL,
                            "baton_graph_create: batch = %u exceeds BATON_GRAPH_MAX_BATCH (%u)",
                            config->batch, BATON_GRAPH_MAX_BATCH);
    if (config->edge_capacity > BATON_GRAPH_MAX_CAPACITY)
        return baton__error(BATON_EINVAL,
                            "baton_graph_create: edge_capacity = %zu exceeds "
                            "BATON_GRAPH_MAX_CAPACITY (%llu)",
                            config->edge_capacity,
                            (unsigned long long)BATON_GRAPH_MAX_CAPACITY);
    baton_graph *graph = baton__calloc(1, sizeof *graph);
    if (graph == NULL)
        return baton__error(BATON_ENOMEM, "baton_graph_create: out of memory");
    graph->edge_capacity =
        config->edge_capacity != 0 ? config->edge_capacity : BATON__GRAPH_DEFAULT_CAPACITY;
    graph->batch = config->batch != 0 ? config->batch : BATON__GRAPH_DEFAULT_BATCH;
    graph->release = config->release;
    graph->release_ctx = config->release_ctx;
    atomic_init(&graph->running, 0);
    *out = graph;
    return 0;
}

void baton_graph_destroy(baton_graph *graph)
{
    if (graph == NULL)
        return;
    for (uint32_t n = 0; n < graph->n_nodes; n++) {
        baton__free(graph->nodes[n].in_edges);
        baton__free(graph->nodes[n].out_edges);
    }
    baton__free(graph->nodes);
    baton__free(graph->edges);
    baton__free(graph);
}

bool baton__graph_node_valid(const baton_graph *graph, int node)
{
    return graph != NULL && node >= 0 && (uint32_t)node < graph->n_nodes;
}

static const char *kind_name(baton_node_kind kind)
{
    static const char *const names[] = {"SOURCE", "MAP", "STATEFUL", "FANOUT", "MERGE", "SINK"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

/* Checks that exactly the functions `kind` uses are given. */
static int check_functions(const baton_node_config *c, const char *name)
{
    bool source = c->kind == BATON_NODE_SOURCE;
    bool map = c->kind == BATON_NODE_MAP || c->kind == BATON_NODE_STATEFUL;
    bool sink = c->kind == BATON_NODE_SINK;
    bool fanout = c->kind == BATON_NODE_FANOUT;
    if ((c->source != NULL) != source)
        return baton__error(BATON_EINVAL, "baton_graph_add: node '%s' (%s) %s a source function",
                            name, kind_name(c->kind), source ? "needs" : "does not take");
    if ((c->map != NULL) != map)
        return baton__error(BATON_EINVAL, "baton_graph_add: node '%s' (%s) %s a map function",
                            name, kind_name(c->kind), map ? "needs" : "does not take");
    if ((c->sink != NULL) != sink)
        return baton__error(BATON_EINVAL, "baton_graph_add: node '%s' (%s) %s a sink function",
                            name, kind_name(c->kind), sink ? "needs" : "does not take");
    if (c->copy != NULL && !fanout)
        return baton__error(BATON_EINVAL,
                            "baton_graph_add: node '%s' (%s) does not take a copy function", name,
                            kind_name(c->kind));
    return 0;
}

/* "node" and decimal digits: the form of the names given to nodes added without one. */
static bool is_default_name(const char *name)
{
    if (strncmp(name, "node", 4) != 0 || name[4] == '\0')
        return false;
    for (const char *p = name + 4; *p != '\0'; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

static int check_config(const baton_graph *graph, const baton_node_config *c, const char *name,
                        uint32_t *concurrency)
{
    char own_default[BATON__GRAPH_NAME_MAX];
    snprintf(own_default, sizeof own_default, "node%u", (unsigned)graph->n_nodes);
    if ((unsigned)c->kind > BATON_NODE_SINK)
        return baton__error(BATON_EINVAL, "baton_graph_add: kind = %d is not a node kind",
                            (int)c->kind);
    int rc = check_functions(c, name);
    if (rc != 0)
        return rc;
    bool serial_kind = c->kind == BATON_NODE_SOURCE || c->kind == BATON_NODE_STATEFUL;
    if (serial_kind && c->concurrency > 1)
        return baton__error(BATON_EINVAL,
                            "baton_graph_add: node '%s' is a %s, which runs one call at a time; "
                            "concurrency = %u (use 0 or 1)",
                            name, kind_name(c->kind), c->concurrency);
    *concurrency = c->concurrency;
    if (*concurrency == 0)
        *concurrency = serial_kind || c->kind == BATON_NODE_SINK ? 1 : BATON_CONCURRENCY_UNLIMITED;
    if ((unsigned)c->input > BATON_INPUT_REJECT)
        return baton__error(BATON_EINVAL, "baton_graph_add: node '%s': input = %d is not a policy",
                            name, (int)c->input);
    if (c->input == BATON_INPUT_REJECT && c->kind == BATON_NODE_SOURCE)
        return baton__error(BATON_EINVAL,
                            "baton_graph_add: node '%s' is a SOURCE, which has no input to reject",
                            name);
    /* Only sources, maps and stateful nodes emit through baton_emit; the others emit one item
     * per item (or none), whatever max_emit says. */
    bool emits = c->kind == BATON_NODE_SOURCE || c->kind == BATON_NODE_MAP ||
                 c->kind == BATON_NODE_STATEFUL;
    if (emits && c->max_emit > BATON_GRAPH_MAX_EMIT)
        return baton__error(BATON_EINVAL,
                            "baton_graph_add: node '%s': max_emit = %u exceeds "
                            "BATON_GRAPH_MAX_EMIT (%u)",
                            name, c->max_emit, BATON_GRAPH_MAX_EMIT);
    if (c->flags & ~BATON_NODE_ORDERED)
        return baton__error(BATON_EINVAL, "baton_graph_add: node '%s': unknown flags 0x%x", name,
                            c->flags & ~BATON_NODE_ORDERED);
    if ((c->flags & BATON_NODE_ORDERED) && c->kind != BATON_NODE_SINK)
        return baton__error(BATON_EINVAL,
                            "baton_graph_add: node '%s': BATON_NODE_ORDERED is for sinks, not a %s",
                            name, kind_name(c->kind));
    if ((c->flags & BATON_NODE_ORDERED) && *concurrency != 1)
        return baton__error(BATON_EINVAL,
                            "baton_graph_add: ordered sink '%s' must run serially (concurrency = "
                            "%u)",
                            name, c->concurrency);
    if (is_default_name(name) && strcmp(name, own_default) != 0)
        return baton__error(BATON_EINVAL,
                            "baton_graph_add: name '%s' has the form node<N>, kept for the node "
                            "of id N when it is added without a name (this node's id is %u)",
                            name, (unsigned)graph->n_nodes);
    for (uint32_t n = 0; n < graph->n_nodes; n++)
        if (strcmp(graph->nodes[n].name, name) == 0)
            return baton__error(BATON_EINVAL, "baton_graph_add: a node is already named '%s'",
                                name);
    return 0;
}

int baton_graph_add(baton_graph *graph, const baton_node_config *config)
{
    if (graph == NULL || config == NULL)
        return baton__error(BATON_EINVAL, "baton_graph_add: %s is NULL",
                            graph == NULL ? "graph" : "config");
    if (graph->has_run)
        return baton__error(BATON_EPERM, "baton_graph_add: the graph has run; it cannot change");
    if (graph->n_nodes >= BATON_GRAPH_MAX_NODES)
        return baton__error(BATON_ERANGE,
                            "baton_graph_add: the graph already has BATON_GRAPH_MAX_NODES (%u) "
                            "nodes",
                            BATON_GRAPH_MAX_NODES);
    baton_node_config copy;
    int rc = baton__config_copy("baton_graph_add", "config", "baton_node_config", config, &copy,
                                sizeof copy);
    if (rc != 0)
        return rc;
    config = &copy;
    char name[BATON__GRAPH_NAME_MAX];
    if (config->name == NULL) {
        snprintf(name, sizeof name, "node%u", (unsigned)graph->n_nodes);
    } else {
        size_t length = strlen(config->name);
        if (length == 0 || length >= sizeof name)
            return baton__error(BATON_EINVAL,
                                "baton_graph_add: name '%.40s%s' has %zu bytes; 1 to %zu allowed",
                                config->name, length > 40 ? "..." : "", length, sizeof name - 1);
        memcpy(name, config->name, length + 1);
    }
    uint32_t concurrency = 0;
    rc = check_config(graph, config, name, &concurrency);
    if (rc != 0)
        return rc;
    if (!baton__grow_array((void **)&graph->nodes, &graph->cap_nodes, graph->n_nodes + 1,
                           sizeof *graph->nodes))
        return baton__error(BATON_ENOMEM, "baton_graph_add: out of memory");
    baton__gnode *node = &graph->nodes[graph->n_nodes];
    memset(node, 0, sizeof *node);
    memcpy(node->name, name, sizeof name);
    node->kind = config->kind;
    node->source = config->source;
    node->map = config->map;
    node->sink = config->sink;
    node->copy = config->copy;
    node->ctx = config->ctx;
    node->concurrency = concurrency;
    node->input = config->input;
    node->priority = config->priority;
    bool emits = config->kind == BATON_NODE_SOURCE || config->kind == BATON_NODE_MAP ||
                 config->kind == BATON_NODE_STATEFUL;
    node->max_emit = emits && config->max_emit != 0 ? config->max_emit : 1;
    node->flags = config->flags;
    return (int)graph->n_nodes++;
}

static int add_kind(baton_graph *graph, baton_node_kind kind, const char *name,
                    baton_node_config config)
{
    config.struct_size = sizeof config;
    config.kind = kind;
    config.name = name;
    return baton_graph_add(graph, &config);
}

int baton_graph_source(baton_graph *graph, const char *name, baton_source_fn fn, void *state)
{
    return add_kind(graph, BATON_NODE_SOURCE, name,
                    (baton_node_config){.source = fn, .ctx = state});
}

int baton_graph_map(baton_graph *graph, const char *name, baton_map_fn fn, void *ctx)
{
    return add_kind(graph, BATON_NODE_MAP, name, (baton_node_config){.map = fn, .ctx = ctx});
}

int baton_graph_stateful(baton_graph *graph, const char *name, baton_map_fn fn, void *state)
{
    return add_kind(graph, BATON_NODE_STATEFUL, name,
                    (baton_node_config){.map = fn, .ctx = state});
}

int baton_graph_fanout(baton_graph *graph, const char *name, baton_copy_fn copy, void *ctx)
{
    return add_kind(graph, BATON_NODE_FANOUT, name, (baton_node_config){.copy = copy, .ctx = ctx});
}

int baton_graph_merge(baton_graph *graph, const char *name)
{
    return add_kind(graph, BATON_NODE_MERGE, name, (baton_node_config){.ctx = NULL});
}

int baton_graph_sink(baton_graph *graph, const char *name, baton_sink_fn fn, void *state)
{
    return add_kind(graph, BATON_NODE_SINK, name, (baton_node_config){.sink = fn, .ctx = state});
}

/* Whether `to` reaches `target` along edges: depth-first, with an explicit stack. */
static int reaches(const baton_graph *graph, uint32_t from, uint32_t target, bool *found)
{
    *found = false;
    uint32_t *stack = baton__malloc((graph->n_edges + 1) * sizeof *stack);
    uint8_t *seen = baton__calloc(graph->n_nodes, 1);
    if (stack == NULL || seen == NULL) {
        baton__free(stack);
        baton__free(seen);
        return BATON_ENOMEM;
    }
    size_t depth = 0;
    stack[depth++] = from;
    seen[from] = 1;
    while (depth > 0 && !*found) {
        const baton__gnode *node = &graph->nodes[stack[--depth]];
        for (uint32_t i = 0; i < node->n_out; i++) {
            uint32_t next = graph->edges[node->out_edges[i]].to;
            if (next == target)
                *found = true;
            if (!seen[next]) {
                seen[next] = 1;
                stack[depth++] = next;
            }
        }
    }
    baton__free(stack);
    baton__free(seen);
    return 0;
}

static int check_edge(const baton_graph *graph, int from, int to, size_t capacity)
{
    if (!baton__graph_node_valid(graph, from) || !baton__graph_node_valid(graph, to))
        return baton__error(BATON_EINVAL,
                            "baton_graph_connect: %s = %d is not a node (%s)",
                            baton__graph_node_valid(graph, from) ? "to" : "from",
                            baton__graph_node_valid(graph, from) ? to : from,
                            (baton__graph_node_valid(graph, from) ? to : from) < 0
                                ? "did adding it fail?"
                                : "no node has that id");
    const baton__gnode *producer = &graph->nodes[from];
    const baton__gnode *consumer = &graph->nodes[to];
    if (consumer->kind == BATON_NODE_SOURCE)
        return baton__error(BATON_EINVAL,
                            "baton_graph_connect: '%s' -> '%s': '%s' is a SOURCE and takes no "
                            "input",
                            producer->name, consumer->name, consumer->name);
    if (producer->kind == BATON_NODE_SINK)
        return baton__error(BATON_EINVAL,
                            "baton_graph_connect: '%s' -> '%s': '%s' is a SINK and has no output",
                            producer->name, consumer->name, producer->name);
    if (producer->kind != BATON_NODE_FANOUT && producer->n_out > 0)
        return baton__error(BATON_EINVAL,
                            "baton_graph_connect: '%s' -> '%s': '%s' already sends to '%s'; only "
                            "a FANOUT has several successors",
                            producer->name, consumer->name, producer->name,
                            graph->nodes[graph->edges[producer->out_edges[0]].to].name);
    for (uint32_t i = 0; i < producer->n_out; i++)
        if (graph->edges[producer->out_edges[i]].to == (uint32_t)to)
            return baton__error(BATON_EINVAL,
                                "baton_graph_connect: '%s' -> '%s' is already connected",
                                producer->name, consumer->name);
    if (capacity > BATON_GRAPH_MAX_CAPACITY)
        return baton__error(BATON_EINVAL,
                            "baton_graph_connect: '%s' -> '%s': capacity = %zu exceeds "
                            "BATON_GRAPH_MAX_CAPACITY (%llu)",
                            producer->name, consumer->name, capacity,
                            (unsigned long long)BATON_GRAPH_MAX_CAPACITY);
    uint64_t unit = producer->kind == BATON_NODE_FANOUT ? 1 : producer->max_emit;
    if (capacity < unit)
        return baton__error(BATON_EINVAL,
                            "baton_graph_connect: '%s' -> '%s': capacity = %zu is below '%s''s "
                            "max_emit (%u): one call could never run",
                            producer->name, consumer->name, capacity, producer->name,
                            (unsigned)producer->max_emit);
    if (from == to)
        return baton__error(BATON_EINVAL, "baton_graph_connect: '%s' -> '%s' is a cycle",
                            producer->name, consumer->name);
    bool cycle;
    if (reaches(graph, (uint32_t)to, (uint32_t)from, &cycle) != 0)
        return baton__error(BATON_ENOMEM, "baton_graph_connect: out of memory");
    if (cycle)
        return baton__error(BATON_EINVAL,
                            "baton_graph_connect: '%s' -> '%s' would close a cycle: '%s' already "
                            "reaches '%s'",
                            producer->name, consumer->name, consumer->name, producer->name);
    return 0;
}

int baton_graph_connect(baton_graph *graph, int from, int to, size_t capacity)
{
    if (graph == NULL)
        return baton__error(BATON_EINVAL, "baton_graph_connect: graph is NULL");
    if (graph->has_run)
        return baton__error(BATON_EPERM,
                            "baton_graph_connect: the graph has run; it cannot change");
    if (capacity == 0)
        capacity = graph->edge_capacity;
    int rc = check_edge(graph, from, to, capacity);
    if (rc != 0)
        return rc;
    baton__gnode *producer = &graph->nodes[from];
    baton__gnode *consumer = &graph->nodes[to];
    if (!baton__grow_array((void **)&graph->edges, &graph->cap_edges, graph->n_edges + 1,
                           sizeof *graph->edges) ||
        !baton__grow_array((void **)&producer->out_edges, &producer->cap_out, producer->n_out + 1,
                           sizeof *producer->out_edges) ||
        !baton__grow_array((void **)&consumer->in_edges, &consumer->cap_in, consumer->n_in + 1,
                           sizeof *consumer->in_edges))
        return baton__error(BATON_ENOMEM, "baton_graph_connect: out of memory");
    uint32_t edge = graph->n_edges++;
    graph->edges[edge] = (baton__gedge){.from = (uint32_t)from, .to = (uint32_t)to,
                                        .capacity = capacity};
    producer->out_edges[producer->n_out++] = edge;
    consumer->in_edges[consumer->n_in++] = edge;
    return 0;
}

int baton_graph_connect_path(baton_graph *graph, const int *nodes, size_t n)
{
    if (graph == NULL || (nodes == NULL && n > 0))
        return baton__error(BATON_EINVAL, "baton_graph_connect_path: %s is NULL",
                            graph == NULL ? "graph" : "nodes");
    for (size_t i = 1; i < n; i++) {
        int rc = baton_graph_connect(graph, nodes[i - 1], nodes[i], 0);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int baton_graph_node_stats(const baton_graph *graph, int node, baton_node_stats *out)
{
    if (graph == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "baton_graph_node_stats: %s is NULL",
                            graph == NULL ? "graph" : "out");
    if (!baton__graph_node_valid(graph, node))
        return baton__error(BATON_EINVAL, "baton_graph_node_stats: node = %d is not a node", node);
    *out = graph->nodes[node].stats;
    return 0;
}

const char *baton_graph_node_name(const baton_graph *graph, int node)
{
    return baton__graph_node_valid(graph, node) ? graph->nodes[node].name : NULL;
}

unsigned baton_graph_node_count(const baton_graph *graph)
{
    return graph != NULL ? graph->n_nodes : 0;
}
