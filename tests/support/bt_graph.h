/*
 * bt_graph.h — helpers shared by the graph layer's tests (defined in bt_graph.c but for the
 * trivial node functions):
 *
 *  - bt_node_config / bt_graph_create / bt_graph_add / bt_graph_connect: build a graph, failing
 *    the running test with the library's detail message when a step that must work does not;
 *  - bt_graph_run: baton_graph_run under a watchdog, so that a deadlock ends the process with a
 *    message naming the test instead of a silent CTest timeout;
 *  - bt_tracker: items that are heap blocks, each with a tracking id, so that a test can tell
 *    that every item was freed exactly once (by a node, by the graph's release function, or by a
 *    producer whose emit was refused), and can measure how many were alive at once (the memory
 *    bound graph.h promises: at most the sum of the edge capacities).
 *
 * Node functions run on pool workers: they check with BT_CHECK, never with cmocka's assert_*.
 */
#ifndef BT_SUPPORT_GRAPH_H
#define BT_SUPPORT_GRAPH_H

#include "baton/graph.h"
#include "support/bt_common.h"

/* Generous (a run that takes this long is stuck, whatever the sanitizer), and below the CTest
 * timeouts of the graph tests, so that a hang is reported by name. */
#define BT_GRAPH_WATCHDOG_S 150u

/* ---- building -------------------------------------------------------------------------------- */

/* Trivial node functions: a map that passes its item on, a sink that drops it, a source that
 * ends at once. */
static inline int bt_pass_map(void *ctx, baton_item item, baton_emitter *out)
{
    (void)ctx;
    return baton_emit(out, item);
}

static inline int bt_drop_sink(void *state, baton_item item)
{
    (void)state;
    (void)item;
    return 0;
}

static inline int bt_end_source(void *state, baton_emitter *out)
{
    (void)state;
    (void)out;
    return BATON_GRAPH_END;
}

baton_node_config bt_node_config(baton_node_kind kind, const char *name);

baton_graph_config bt_graph_config(size_t edge_capacity, unsigned batch, baton_release_fn release,
                                   void *release_ctx);

/* Main thread only. */
baton_graph *bt_graph_create(size_t edge_capacity, unsigned batch, baton_release_fn release,
                             void *release_ctx);

/* Adds a node that must be accepted; returns its id. Main thread only. */
int bt_graph_add(baton_graph *graph, const baton_node_config *config);

/* Shorthands that must succeed. */
int bt_graph_source(baton_graph *graph, const char *name, baton_source_fn fn, void *state,
                    unsigned max_emit);

int bt_graph_map(baton_graph *graph, const char *name, baton_map_fn fn, void *ctx,
                 unsigned max_emit);

int bt_graph_stateful(baton_graph *graph, const char *name, baton_map_fn fn, void *state,
                      unsigned max_emit);

int bt_graph_sink(baton_graph *graph, const char *name, baton_sink_fn fn, void *state);

int bt_graph_fanout(baton_graph *graph, const char *name, baton_copy_fn copy, void *ctx);

int bt_graph_merge(baton_graph *graph, const char *name);

/* Connects an edge that must be accepted. Main thread only. */
void bt_graph_connect(baton_graph *graph, int from, int to, size_t capacity);

/* Runs the graph under a watchdog; returns what baton_graph_run returned. Main thread only. */
int bt_graph_run(baton_graph *graph, baton_pool *pool, const char *what);

/* A run that must complete. */
void bt_graph_run_ok(baton_graph *graph, baton_pool *pool, const char *what);

baton_node_stats bt_node_stats(const baton_graph *graph, int node);

/* Asserts that `text` contains `needle` (a node's name in an error message, say). */
#define bt_assert_contains(text, needle)                                                         \
    do {                                                                                         \
        const char *bt_text_ = (text), *bt_needle_ = (needle);                                   \
        if (bt_text_ == NULL || strstr(bt_text_, bt_needle_) == NULL)                            \
            fail_msg("expected \"%s\" in the message \"%s\"", bt_needle_,                        \
                     bt_text_ ? bt_text_ : "(null)");                                            \
    } while (0)

/* ---- sources and sinks over plain numbers ---------------------------------------------------- */

/* Emits tag | next for next in [next, end), up to per_call items per call; END with the last. */
typedef struct bt_range_source {
    uint64_t next, end;
    unsigned per_call;
    uint64_t tag;
    uint64_t calls;    /* plain: a source runs one call at a time (TSan checks the hand-over) */
    bool ended;        /* it returned BATON_GRAPH_END: another call is a failure */
    atomic_int in_call; /* set while a call runs: two at once is a failure */
} bt_range_source;

void bt_range_init(bt_range_source *s, uint64_t begin, uint64_t end, unsigned per_call,
                   uint64_t tag);

/* Between runs of the same graph: the next run may call the source again, from its state. */
void bt_range_next_run(bt_range_source *s);

int bt_range_source_fn(void *state, baton_emitter *out);

/* Counts arrivals per value (value - base), for "exactly once" checks. */
typedef struct bt_count_sink {
    unsigned char *seen;
    uint64_t base, n;
    uint64_t received;
    int64_t sum;
    atomic_int in_call;
} bt_count_sink;

void bt_count_sink_init(bt_count_sink *s, uint64_t base, uint64_t n);

int bt_count_sink_fn(void *state, baton_item item);

/* Main thread: every value in [base, base + n) arrived exactly once. */
void bt_count_sink_assert_all(const bt_count_sink *s);

/* ---- tracked items ----------------------------------------------------------------------------
 *
 * Each item is a malloc'd bt_payload. Its tracking id indexes the tracker's state array:
 * 0 = never made, 1 = alive, 2 = freed. Items a source makes take their own index as id; copies
 * (a fanout's copy function) and items a node makes take ids from `next_extra`, above the
 * source's range. Freeing an item twice, or one never made, is recorded as a failure (and the
 * block is not freed again, so ASan does not end the test before it reports).
 */

#define BT_ITEM_MAGIC UINT64_C(0x6772617068697465) /* "graphite" */
#define BT_ITEM_DEAD UINT64_C(0xdeaddeaddeaddead)

typedef struct bt_payload {
    uint64_t magic;
    uint64_t id;     /* tracking id */
    uint64_t origin; /* the source index it derives from */
    int64_t value;
} bt_payload;

typedef struct bt_tracker {
    atomic_uchar *state;
    size_t n_ids;
    atomic_ulong next_extra;
    atomic_long allocated, freed, released, live, peak;
} bt_tracker;

/* Main thread only. `n_source` ids for source items, `n_extra` more for copies and the like. */
void bt_tracker_init(bt_tracker *t, size_t n_source, size_t n_extra);

void bt_tracker_fini(bt_tracker *t);

/* Makes an item with tracking id `id`; NULL (and a recorded failure) when that cannot be. */
bt_payload *bt_item_new_id(bt_tracker *t, uint64_t id, uint64_t origin, int64_t value);

/* A source's item number `index`. */
bt_payload *bt_item_new(bt_tracker *t, uint64_t index, int64_t value);

/* An item derived from `from` (a copy, or a node's new item); keeps its origin. */
bt_payload *bt_item_new_derived(bt_tracker *t, const bt_payload *from, int64_t value);

/* Checks that an item the test receives is a live, well-formed one. */
bool bt_item_valid(bt_tracker *t, const bt_payload *p);

void bt_item_free(bt_tracker *t, bt_payload *p);

/* The graph's release function over a tracker (release_ctx). */
void bt_item_release(void *ctx, baton_item item);

/* A fanout's copy function over a tracker (ctx): a new block with the same origin and value. */
int bt_item_copy(void *ctx, baton_item item, baton_item *copy);

/* A source of tracked items with indices [next, end), per_call of them per call. */
typedef struct bt_tracked_source {
    bt_tracker *tracker;
    uint64_t next, end;
    unsigned per_call;
} bt_tracked_source;

int bt_tracked_source_fn(void *state, baton_emitter *out);

/* Main thread only: every item made was freed exactly once, none is alive. */
void bt_assert_all_freed(bt_tracker *t);

#endif /* BT_SUPPORT_GRAPH_H */
