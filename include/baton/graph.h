/*
 * baton/graph.h — the graph layer: dataflow pipelines. A graph is a set of nodes (sources, maps,
 * stateful nodes, fanouts, merges, sinks) joined by bounded edges, run over a baton_pool.
 *
 * Items. An item is one 64-bit word (baton_item): a number, or a pointer to something bigger.
 * Whoever holds an item owns it: a node function owns the item it is called with, and passes
 * ownership on when baton_emit accepts an item (the graph then holds it until the next node's
 * function is called with it). A node that drops an item must release it itself. When a run is
 * cancelled, the graph hands every item it holds to the graph's release function (if any).
 *
 * Nodes.
 *   SOURCE    fn(state, out): emits items (at most max_emit per call); returns 0 to be called
 *             again, BATON_GRAPH_END when it is done (it is never called after that).
 *             Serial: one call at a time.
 *   MAP       fn(ctx, item, out): stateless; runs in parallel on any worker (concurrency limit:
 *             unlimited by default). Emits 0 items (a filter), 1, or up to max_emit.
 *   STATEFUL  fn(state, item, out): one item at a time; owns its state. It runs as an actor: its
 *             items wait in its input, and a worker that finds the actor idle runs a batch of
 *             them; no worker ever waits for it on a lock. The scheduler prefers stateful nodes,
 *             so a busy actor is drained before more work for it is made.
 *   FANOUT    each item goes to every successor: the first successor gets the item, the others
 *             copies made by the copy function; with no copy function every successor gets the
 *             same word (by reference). By-reference items are not owned by the graph: what they
 *             point to must outlive baton_graph_run, and a graph that has a release function
 *             rejects a by-reference fanout (it could not know when to release).
 *   MERGE     forwards every item unchanged; takes any number of predecessors. (Every consuming
 *             node accepts several predecessors; a merge names the junction.)
 *   SINK      fn(state, item): consumes items; serial by default (concurrency may be raised,
 *             except for an ordered sink). With BATON_NODE_ORDERED, items reach it in the order
 *             their source made them.
 *
 * Edges and memory. Each edge has a capacity in items. Before a node runs on a batch it reserves
 * room on every outgoing edge for what the batch may emit (batch × max_emit); when an edge is
 * full its producer is not run (a source is not polled) until the consumer frees room. An item
 * holds one unit of capacity from the moment its producer reserved it until its consumer's
 * function has returned, so at any instant the items alive in a run number at most the sum of
 * the capacities of all edges. An ordered sink's reordering window is its input edge's capacity
 * (or its source's max_emit, if larger), and the source feeding it does not run ahead of the sink
 * by more than that, which keeps the same bound.
 *
 * Concurrency and input policy. A node runs on at most `concurrency` workers at once (1 = serial,
 * N, or BATON_CONCURRENCY_UNLIMITED). When all of it is in use, an item sent to it waits in its
 * input (BATON_INPUT_QUEUE, the default) or is refused (BATON_INPUT_REJECT): baton_emit returns
 * BATON_EBUSY and the item stays with the producer, which may drop it (old video frames, say).
 *
 * Scheduling. baton_graph_run runs one scheduler loop per pool worker. Items wait in their edge
 * (a bounded ring per edge: the per-edge queue of (node, item) records); a worker takes a run of
 * up to `batch` items of one node at a time. What workers exchange are node activations: a
 * worker keeps the nodes it made ready in its own queues, one per priority rank, and an idle
 * worker steals activations from the others, then sleeps (no spinning while idle). Ranks, highest
 * first: user priority, then serial nodes (stateful, sinks) before parallel ones, then sources
 * last, so consumers drain before a source is polled again.
 *
 * Threads. Building a graph (create, add, connect) is single-threaded. A graph runs one run at a
 * time; node functions are called from the pool's workers (or the thread that called run).
 * Nothing in a graph may be changed after its first run.
 */
#ifndef BATON_GRAPH_H
#define BATON_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/core.h"
#include "baton/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One item: a 64-bit word. */
typedef union baton_item {
    uint64_t u;
    int64_t i;
    double f;
    void *p;
} baton_item;

static inline baton_item baton_item_int(int64_t value)
{
    baton_item item;
    item.i = value;
    return item;
}

static inline baton_item baton_item_ptr(void *pointer)
{
    baton_item item;
    item.u = 0; /* so that the upper half is defined where pointers are narrower */
    item.p = pointer;
    return item;
}

typedef struct baton_graph baton_graph;

/* Handed to node functions; baton_emit sends items through it. Valid during that call only. */
typedef struct baton_emitter baton_emitter;

/* A source returns it when it has no more items (items it emitted in that call still count). */
#define BATON_GRAPH_END 1

/* Concurrency limit meaning "as many workers as the pool has". */
#define BATON_CONCURRENCY_UNLIMITED 0xffffffffu

#define BATON_GRAPH_MAX_NODES 4096u
#define BATON_GRAPH_MAX_CAPACITY (UINT64_C(1) << 30)
#define BATON_GRAPH_MAX_BATCH 1024u
#define BATON_GRAPH_MAX_EMIT 1024u

/*
 * Node functions. A negative result is an error of the caller's choosing: it cancels the run and
 * baton_graph_run returns it. Any other result than the ones listed (a positive value; from a
 * map, stateful node or sink, BATON_GRAPH_END too) is not an error code: it cancels the run,
 * which returns BATON_EINVAL with a message naming the node and the value.
 */
/* Returns 0 to be called again, BATON_GRAPH_END when done, or a negative error (cancels the
 * run). */
typedef int (*baton_source_fn)(void *state, baton_emitter *out);
/* MAP and STATEFUL: owns item; returns 0 or a negative error (cancels the run). */
typedef int (*baton_map_fn)(void *ctx, baton_item item, baton_emitter *out);
/* SINK: owns item; returns 0 or a negative error (cancels the run). */
typedef int (*baton_sink_fn)(void *state, baton_item item);
/* FANOUT: makes *copy from item (item stays with the graph); 0 or a negative error (cancels the
 * run). */
typedef int (*baton_copy_fn)(void *ctx, baton_item item, baton_item *copy);
/* Frees an item the graph holds when the run is cancelled or a fanout's copy is refused. */
typedef void (*baton_release_fn)(void *ctx, baton_item item);

typedef enum baton_node_kind {
    BATON_NODE_SOURCE = 0,
    BATON_NODE_MAP = 1,
    BATON_NODE_STATEFUL = 2,
    BATON_NODE_FANOUT = 3,
    BATON_NODE_MERGE = 4,
    BATON_NODE_SINK = 5,
} baton_node_kind;

typedef enum baton_input_policy {
    BATON_INPUT_QUEUE = 0,  /* wait in the node's input while the node is at its limit */
    BATON_INPUT_REJECT = 1, /* refuse: baton_emit returns BATON_EBUSY to the producer */
} baton_input_policy;

/* Node flags. */
#define BATON_NODE_ORDERED 0x1u /* SINK only: deliver in source order (see baton_graph_add) */

/* Graph options. A zeroed struct means defaults. */
typedef struct baton_graph_config {
    /* sizeof this struct, or 0 for this header's size. A smaller size (a caller built against an
     * older header) leaves the later fields at their defaults, unread; a size larger than this
     * header's, or smaller than sizeof(size_t), is BATON_EINVAL. */
    size_t struct_size;
    size_t edge_capacity;       /* capacity of edges connected with capacity 0; 0: 1024 */
    unsigned batch;             /* most items a node takes per activation; 0: 32 */
    baton_release_fn release;   /* NULL: the graph never frees items (plain values) */
    void *release_ctx;
} baton_graph_config;

typedef struct baton_node_config {
    /* sizeof this struct, or 0 for this header's size. A smaller size (a caller built against an
     * older header) leaves the later fields at their defaults, unread; a size larger than this
     * header's, or smaller than sizeof(size_t), is BATON_EINVAL. */
    size_t struct_size;
    baton_node_kind kind;
    const char *name;           /* copied; 1 to 63 bytes; NULL names it "node<id>", a form no
                                   other node may take (see baton_graph_add) */
    baton_source_fn source;     /* SOURCE */
    baton_map_fn map;           /* MAP, STATEFUL */
    baton_sink_fn sink;         /* SINK */
    baton_copy_fn copy;         /* FANOUT (NULL: by reference) */
    void *ctx;                  /* passed to the function: the node's state or context */
    unsigned concurrency;       /* 0: the kind's default (1 for SOURCE, STATEFUL and SINK,
                                   unlimited otherwise); SOURCE and STATEFUL must be 1 */
    baton_input_policy input;   /* BATON_INPUT_QUEUE (default); REJECT not for a SOURCE */
    int priority;               /* higher runs first; default 0 */
    unsigned max_emit;          /* most items one call of a SOURCE, MAP or STATEFUL emits; 0: 1.
                                   Ignored for FANOUT, MERGE and SINK (one item per item, or
                                   none) */
    unsigned flags;             /* BATON_NODE_ORDERED */
} baton_node_config;

/* What a node did in the last run; see baton_graph_node_stats. */
typedef struct baton_node_stats {
    uint64_t items_in;    /* items its function was called with (sources: calls) */
    uint64_t items_out;   /* items it emitted that were accepted */
    uint64_t rejected;    /* items refused at its input (BATON_INPUT_REJECT) */
    uint64_t activations; /* batches it ran */
    uint64_t busy_ns;     /* time spent in its batches, summed over workers */
    uint64_t blocked_ns;  /* time it had work but a full outgoing edge (or window) held it */
} baton_node_stats;

/*
 * Creates an empty graph; config may be NULL (defaults). Errors: BATON_EINVAL (NULL out,
 * struct_size larger than this header's or smaller than sizeof(size_t), batch above
 * BATON_GRAPH_MAX_BATCH, edge_capacity above BATON_GRAPH_MAX_CAPACITY), BATON_ENOMEM.
 */
BATON_API int baton_graph_create(const baton_graph_config *config, baton_graph **out);

/* Frees the graph. Not while it runs. NULL is ignored. Node states belong to the caller. */
BATON_API void baton_graph_destroy(baton_graph *graph);

/*
 * Adds a node; returns its id (0, 1, 2, ... in order of adding) or a negative error:
 * BATON_EINVAL (NULL graph or config, unknown kind, the kind's function missing, a function given
 * that the kind does not use, concurrency other than 1 for SOURCE or STATEFUL, BATON_NODE_ORDERED
 * on a node that is not a SINK or with concurrency above 1, max_emit above BATON_GRAPH_MAX_EMIT on
 * a node that emits, an input policy that is not one, BATON_INPUT_REJECT on a SOURCE, a name that
 * is empty, longer than 63 bytes, already used, or "node" followed by decimal digits other than
 * this node's own default name "node<id>" (so that nodes added without a name always get theirs),
 * unknown flags, struct_size larger than this header's or smaller than sizeof(size_t)),
 * BATON_ERANGE (more than BATON_GRAPH_MAX_NODES nodes), BATON_EPERM (the graph has run),
 * BATON_ENOMEM. On error the graph is unchanged.
 */
BATON_API int baton_graph_add(baton_graph *graph, const baton_node_config *config);

/* Shorthands for baton_graph_add with the kind's defaults. Same returns. */
BATON_API int baton_graph_source(baton_graph *graph, const char *name, baton_source_fn fn,
                                 void *state);
BATON_API int baton_graph_map(baton_graph *graph, const char *name, baton_map_fn fn, void *ctx);
BATON_API int baton_graph_stateful(baton_graph *graph, const char *name, baton_map_fn fn,
                                   void *state);
BATON_API int baton_graph_fanout(baton_graph *graph, const char *name, baton_copy_fn copy,
                                 void *ctx);
BATON_API int baton_graph_merge(baton_graph *graph, const char *name);
BATON_API int baton_graph_sink(baton_graph *graph, const char *name, baton_sink_fn fn,
                               void *state);

/*
 * Adds the edge from -> to with room for `capacity` items (0: the graph's edge_capacity).
 * Accepts the (negative) result of a failed add as a node id and reports it, so a graph can be
 * built without checking every add. Errors: BATON_EINVAL (NULL graph; a node id that is not a
 * node; `to` a SOURCE or `from` a SINK; a second successor for a node other than a FANOUT; the
 * edge already exists; capacity above BATON_GRAPH_MAX_CAPACITY or below from's max_emit; the edge
 * would close a cycle: the message names the nodes), BATON_EPERM (the graph has run),
 * BATON_ENOMEM. On error the graph is unchanged.
 */
BATON_API int baton_graph_connect(baton_graph *graph, int from, int to, size_t capacity);

/* Connects nodes[0] -> nodes[1] -> ... -> nodes[n-1] with default capacities. Stops at the first
 * error and returns it; the edges made before it stay. n of 0 or 1 makes no edge and returns 0;
 * NULL nodes with n above 0 is BATON_EINVAL. */
BATON_API int baton_graph_connect_path(baton_graph *graph, const int *nodes, size_t n);

/*
 * Runs the graph on pool until every source has ended and every item has been consumed, or until
 * a node fails. It may be called from a task of the same pool. Checks the graph first:
 * BATON_EINVAL when it has no source, a node other than a source has no predecessor, a node
 * other than a sink has no successor, a by-reference fanout sits in a graph with a release
 * function, or an ordered sink is not fed by exactly one path from one source through nodes that
 * each emit at most one item per item (the message says which node and why).
 *
 * The first negative result of any node function is returned; every other node stops at its next
 * batch, no source is polled again, and every item the graph holds is released. Items a node
 * function holds when it fails are its own to release. baton_last_error_message() on the calling
 * thread names the node and the value its function returned. Returns 0 when the run completed
 * (and leaves the calling thread's message as it was).
 * Other errors: BATON_EINVAL (NULL graph or pool), BATON_EBUSY (the graph is already running),
 * BATON_ENOMEM (the run's rings, allocated once per run), BATON_ECLOSED (the pool is closing).
 *
 * The run occupies every worker of the pool while it lasts (idle ones sleep). A graph may be run
 * again: sources are called again from whatever state they are in.
 */
BATON_API int baton_graph_run(baton_graph *graph, baton_pool *pool);

/*
 * Sends item to the node's successor (a SOURCE, MAP or STATEFUL node's only one). Call it only
 * from inside the node function that received `out`. Returns 0 (the graph owns the item now);
 * BATON_EBUSY (the successor uses BATON_INPUT_REJECT and is at its concurrency limit: the item is
 * still the caller's); BATON_ERANGE (this call already emitted max_emit items: the item is still
 * the caller's); BATON_EINVAL (out is NULL). What a call emits is handed on when its batch ends,
 * so retrying a refused item within the same call cannot succeed: keep it and offer it again in a
 * later call, or drop it.
 */
BATON_API int baton_emit(baton_emitter *out, baton_item item);

/* The node's statistics from the last run (all zero before the first). Call it while the graph
 * is not running. Errors: BATON_EINVAL (NULL graph or out, node not a node). */
BATON_API int baton_graph_node_stats(const baton_graph *graph, int node, baton_node_stats *out);

/* The node's name, or NULL when node is not a node. Valid until the graph is destroyed. */
BATON_API const char *baton_graph_node_name(const baton_graph *graph, int node);

/* The number of nodes added so far. 0 for NULL. */
BATON_API unsigned baton_graph_node_count(const baton_graph *graph);

#ifdef __cplusplus
}
#endif

#endif /* BATON_GRAPH_H */
