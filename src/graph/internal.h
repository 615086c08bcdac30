/*
 * internal.h — the graph layer's types: what a graph is while it is built (nodes and edges as
 * the user declared them) and what a run adds (edge rings, activation counts, the workers'
 * ready queues and scratch buffers).
 *
 * Who owns what during a run:
 *  - An edge's ring is multi-producer (every activation of its producer node) and
 *    multi-consumer (every activation of its consumer node); its `used` counts the units of
 *    capacity held: reserved by producers plus items in the ring plus items being consumed.
 *  - A node's activation count says how many activations (queued in some worker's ready queue
 *    or running) it has; it never exceeds max_active. Whoever raises it pushes the activation.
 *  - A source's next_seq and an ordered sink's reorder buffer belong to the node's single
 *    activation: a serial node has at most one at a time, and the activation count's
 *    acquire/release hands them from one to the next.
 *  - Everything under a graph worker (a slot) belongs to the loop that claimed it.
 */
#ifndef BATON_GRAPH_INTERNAL_H
#define BATON_GRAPH_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "baton/graph.h"
#include "baton/queue.h"
#include "core/waitpoint.h"
#include "graph/ready.h"

#define BATON__GRAPH_NAME_MAX 64
#define BATON__GRAPH_DEFAULT_CAPACITY 1024u
#define BATON__GRAPH_DEFAULT_BATCH 32u

/* A record in an edge: the item and its sequence number from its source. The top bit of seq
 * marks a skip: an item dropped on the way to an ordered sink, which the sink must step over. */
typedef struct baton__record {
    baton_item item;
    uint64_t seq;
} baton__record;

#define BATON__SEQ_SKIP (UINT64_C(1) << 63)

static inline bool baton__record_is_skip(const baton__record *record)
{
    return (record->seq & BATON__SEQ_SKIP) != 0;
}

typedef struct baton__gnode {
    char name[BATON__GRAPH_NAME_MAX];
    baton_node_kind kind;
    baton_source_fn source;
    baton_map_fn map;
    baton_sink_fn sink;
    baton_copy_fn copy;
    void *ctx;
    uint32_t concurrency; /* resolved: 1 .. UINT32_MAX (BATON_CONCURRENCY_UNLIMITED) */
    baton_input_policy input;
    int priority;
    uint32_t max_emit; /* resolved: >= 1 */
    uint32_t flags;
    uint32_t *in_edges, *out_edges; /* edge indices */
    uint32_t n_in, n_out;
    size_t cap_in, cap_out;
    baton_node_stats stats; /* of the last run */
} baton__gnode;

typedef struct baton__gedge {
    uint32_t from, to;
    uint64_t capacity;
} baton__gedge;

struct baton_graph {
    baton__gnode *nodes;
    baton__gedge *edges;
    uint32_t n_nodes, n_edges;
    size_t cap_nodes, cap_edges;
    uint64_t edge_capacity;
    uint32_t batch;
    baton_release_fn release;
    void *release_ctx;
    bool has_run;
    _Atomic uint32_t running;
};

/* ---- run state ---- */

typedef struct baton__slot {
    _Atomic uint64_t turn; /* position + 1 once written; position + ring size once read */
    baton__record record;
} baton__slot;

typedef struct baton__redge {
    BATON_CACHELINE_ALIGNED _Atomic uint64_t tail; /* producers: next position to write */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t head; /* consumers: next position to read */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t used; /* capacity held (see the top comment) */
    uint64_t capacity;
    baton__slot *slots;
    uint64_t mask;
    uint32_t from, to;
} baton__redge;

typedef struct baton__rnode {
    BATON_CACHELINE_ALIGNED _Atomic uint32_t active;
    uint32_t max_active;
    uint32_t rank;
    bool on_ordered_path; /* a drop here must become a skip */
    _Atomic uint32_t accepted;       /* BATON_INPUT_REJECT: items accepted, not yet consumed */
    _Atomic uint64_t blocked_since;  /* monotonic ns when a full edge stopped it; 0: not */
    _Atomic uint32_t in_cursor;      /* which input edge the next batch starts with */
    /* Sources. next_seq is written by the source's activation only; consumers read it to
     * decide whether the source may run again (relaxed: a stale value only delays that). */
    _Atomic uint32_t ended;
    _Atomic uint64_t next_seq;
    uint32_t *gates; /* ordered sinks this source feeds */
    uint32_t n_gates;
    /* Ordered sinks. The reorder buffer holds pointers into held[] (by seq & mask), where the
     * records wait; held_full says which entries hold one, for the release after a cancel. */
    baton_reorder *reorder;
    baton__record *held;
    uint8_t *held_full;
    uint64_t window; /* the input edge's capacity: how far the source may run ahead */
    uint64_t held_mask;
    uint32_t gate_source;
    BATON_CACHELINE_ALIGNED _Atomic uint64_t delivered; /* seqs below it were delivered */
} baton__rnode;

typedef struct baton__worker_stats {
    uint64_t items_in, items_out, rejected, activations, busy_ns, blocked_ns;
} baton__worker_stats;

typedef struct baton__run baton__run;

typedef struct baton__gworker {
    baton__run *run;
    _Atomic uint32_t claimed; /* 1 while a loop owns this slot */
    unsigned index;
    uint64_t rng;
    baton__ready *ready; /* one per rank, highest first */
    baton__record *in;   /* a batch taken from an edge */
    baton__record *out;  /* what the batch emits: batch x the largest max_emit (x successors) */
    baton__worker_stats *stats; /* per node */
    uint64_t stamp;    /* monotonic ns: the end of the last batch or wait (busy time) */
    uint32_t *counts;  /* records emitted per successor in the current batch */
    uint32_t *pending; /* nodes to schedule once the current batch is published */
    uint32_t n_pending;
} baton__gworker;

struct baton__run {
    baton_graph *graph;
    baton__rnode *nodes;
    baton__redge *edges;
    baton__gworker *workers;
    unsigned n_workers;
    uint32_t n_ranks;
    uint32_t batch;
    /* Records alive (in rings, being processed, waiting in a reorder buffer) plus one per source
     * that has not ended: the run is over when it reaches 0. */
    BATON_CACHELINE_ALIGNED _Atomic int64_t live;
    BATON_CACHELINE_ALIGNED _Atomic uint32_t stop; /* 1: finished or cancelled */
    _Atomic int error;                             /* the first node error */
    _Atomic uint32_t failed_node;
    _Atomic int returned;                          /* what failed_node's function returned */
    baton__waitpoint idle; /* where workers with nothing to do sleep */
};

struct baton_emitter {
    baton__gworker *worker;
    const baton__gnode *node;
    uint32_t target; /* the successor */
    baton__record *out;
    uint32_t count; /* records in out */
    uint32_t limit; /* count may not pass it during this call */
    uint64_t seq;   /* what emitted records carry (non-sources) */
    uint64_t *next_seq; /* sources: number each emitted record */
};

/* ---- build.c ---- */

bool baton__graph_node_valid(const baton_graph *graph, int node);

/* ---- validate.c ---- */

/* Checks the graph; plan fills the run's topology-derived fields (ranks, max_active, ordered
 * paths, gates, windows). Both return 0 or BATON_EINVAL / BATON_ENOMEM with a message. */
int baton__graph_validate(baton_graph *graph);
int baton__graph_plan(baton__run *run);

/* ---- edge.c ---- */

int baton__edge_init(baton__redge *edge, const baton__gedge *declared);
void baton__edge_destroy(baton__redge *edge);
uint64_t baton__edge_reserve(baton__redge *edge, uint64_t want, uint64_t unit);
void baton__edge_unreserve(baton__redge *edge, uint64_t units);
bool baton__edge_has_room(baton__redge *edge, uint64_t units);
void baton__edge_push(baton__redge *edge, const baton__record *records, uint32_t n);
uint32_t baton__edge_pop(baton__redge *edge, baton__record *out, uint32_t max);
bool baton__edge_has_input(baton__redge *edge);

/* ready.c: in graph/ready.h. */

/* ---- activate.c ---- */

/* Hands item to the graph's release function, if it has one. */
void baton__run_release(baton__run *run, baton_item item);
/* Runs batches of node on worker: until it has nothing to do or the run stops (then the
 * activation ends), or until other nodes should go first (then it is queued again). */
void baton__activation_run(baton__gworker *worker, uint32_t node);

/* run.c defines no internal function: baton_graph_run drives the files above. */

#endif /* BATON_GRAPH_INTERNAL_H */
