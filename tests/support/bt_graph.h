/*
 * bt_graph.h — helpers shared by the graph layer's tests (header-only, include after
 * bt_common.h):
 *
 *  - bt_node_config / bt_graph_create / bt_graph_add / bt_graph_connect: build a graph, failing the
 * running test with the library's detail message when a step that must work does not;
 *  - bt_graph_run: baton_graph_run under a watchdog, so that a deadlock ends the process with a
 * message naming the test instead of a silent CTest timeout;
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

static inline baton_node_config bt_node_config(baton_node_kind kind, const char *name)
{
    baton_node_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.kind = kind;
    config.name = name;
    return config;
}

static inline baton_graph_config bt_graph_config(size_t edge_capacity, unsigned batch,
                                                 baton_release_fn release, void *release_ctx)
{
    baton_graph_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.edge_capacity = edge_capacity;
    config.batch = batch;
    config.release = release;
    config.release_ctx = release_ctx;
    return config;
}

/* Main thread only. */
static inline baton_graph *bt_graph_create(size_t edge_capacity, unsigned batch,
                                     baton_release_fn release, void *release_ctx)
{
    baton_graph_config config = bt_graph_config(edge_capacity, batch, release, release_ctx);
    baton_graph *graph = NULL;
    int rc = baton_graph_create(&config, &graph);
    if (rc != 0)
        fail_msg("baton_graph_create(edge_capacity=%zu, batch=%u) = %s: %s", edge_capacity,
                 batch, baton_err_name(rc), baton_last_error_message());
    assert_non_null(graph);
    return graph;
}

/* Adds a node that must be accepted; returns its id. Main thread only. */
static inline int bt_graph_add(baton_graph *graph, const baton_node_config *config)
{
    unsigned before = baton_graph_node_count(graph);
    int id = baton_graph_add(graph, config);
    if (id < 0)
        fail_msg("baton_graph_add(\"%s\", kind %d) = %s: %s",
                 config->name ? config->name : "(null)", (int)config->kind, baton_err_name(id),
                 baton_last_error_message());
    /* graph.h: ids are 0, 1, 2, ... in order of adding. */
    assert_int_equal(id, (int)before);
    assert_int_equal(baton_graph_node_count(graph), before + 1);
    return id;
}

/* Shorthands that must succeed. */
static inline int bt_graph_source(baton_graph *graph, const char *name, baton_source_fn fn,
                                  void *state, unsigned max_emit)
{
    baton_node_config config = bt_node_config(BATON_NODE_SOURCE, name);
    config.source = fn;
    config.ctx = state;
    config.max_emit = max_emit;
    return bt_graph_add(graph, &config);
}

static inline int bt_graph_map(baton_graph *graph, const char *name, baton_map_fn fn, void *ctx,
                         unsigned max_emit)
{
    baton_node_config config = bt_node_config(BATON_NODE_MAP, name);
    config.map = fn;
    config.ctx = ctx;
    config.max_emit = max_emit;
    return bt_graph_add(graph, &config);
}

static inline int bt_graph_stateful(baton_graph *graph, const char *name, baton_map_fn fn,
                                    void *state, unsigned max_emit)
{
    baton_node_config config = bt_node_config(BATON_NODE_STATEFUL, name);
    config.map = fn;
    config.ctx = state;
    config.max_emit = max_emit;
    return bt_graph_add(graph, &config);
}

static inline int bt_graph_sink(baton_graph *graph, const char *name, baton_sink_fn fn, void *state)
{
    baton_node_config config = bt_node_config(BATON_NODE_SINK, name);
    config.sink = fn;
    config.ctx = state;
    return bt_graph_add(graph, &config);
}

static inline int bt_graph_fanout(baton_graph *graph, const char *name, baton_copy_fn copy,
                                  void *ctx)
{
    baton_node_config config = bt_node_config(BATON_NODE_FANOUT, name);
    config.copy = copy;
    config.ctx = ctx;
    return bt_graph_add(graph, &config);
}

static inline int bt_graph_merge(baton_graph *graph, const char *name)
{
    baton_node_config config = bt_node_config(BATON_NODE_MERGE, name);
    return bt_graph_add(graph, &config);
}

/* Connects an edge that must be accepted. Main thread only. */
static inline void bt_graph_connect(baton_graph *graph, int from, int to, size_t capacity)
{
    int rc = baton_graph_connect(graph, from, to, capacity);
    if (rc != 0)
        fail_msg("baton_graph_connect(%d -> %d, capacity %zu) = %s: %s", from, to, capacity,
                 baton_err_name(rc), baton_last_error_message());
}

/* Runs the graph under a watchdog; returns what baton_graph_run returned. Main thread only. */
static inline int bt_graph_run(baton_graph *graph, baton_pool *pool, const char *what)
{
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_GRAPH_WATCHDOG_S, what);
    int rc = baton_graph_run(graph, pool);
    bt_watchdog_stop(&dog);
    return rc;
}

/* A run that must complete. */
static inline void bt_graph_run_ok(baton_graph *graph, baton_pool *pool, const char *what)
{
    int rc = bt_graph_run(graph, pool, what);
    if (rc != 0)
        fail_msg("%s: baton_graph_run = %s: %s", what, baton_err_name(rc),
                 baton_last_error_message());
    bt_assert_no_thread_failures();
}

static inline baton_node_stats bt_node_stats(const baton_graph *graph, int node)
{
    baton_node_stats stats;
    memset(&stats, 0xa5, sizeof stats);
    int rc = baton_graph_node_stats(graph, node, &stats);
    if (rc != 0)
        fail_msg("baton_graph_node_stats(%d) = %s: %s", node, baton_err_name(rc),
                 baton_last_error_message());
    return stats;
}

/* Asserts that `text` contains `needle` (a node's name in an error message, say). */
#define bt_assert_contains(text, needle)                                                         \
    do {                                                                                         \
        const char *gu_text_ = (text), *gu_needle_ = (needle);                                   \
        if (gu_text_ == NULL || strstr(gu_text_, gu_needle_) == NULL)                            \
            fail_msg("expected \"%s\" in the message \"%s\"", gu_needle_,                        \
                     gu_text_ ? gu_text_ : "(null)");                                            \
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

static inline void bt_range_init(bt_range_source *s, uint64_t begin, uint64_t end,
                                 unsigned per_call, uint64_t tag)
{
    s->next = begin;
    s->end = end;
    s->per_call = per_call;
    s->tag = tag;
    s->calls = 0;
    s->ended = false;
    atomic_init(&s->in_call, 0);
}

/* Between runs of the same graph: the next run may call the source again, from its state. */
static inline void bt_range_next_run(bt_range_source *s)
{
    s->calls = 0;
    s->ended = false;
}

static inline int bt_range_source_fn(void *state, baton_emitter *out)
{
    bt_range_source *s = state;
    BT_CHECK_MSG(atomic_exchange(&s->in_call, 1) == 0, "a source ran two calls at once");
    BT_CHECK_MSG(!s->ended, "source called again after it returned BATON_GRAPH_END (call %llu)",
                 (unsigned long long)s->calls + 1);
    s->calls++;
    for (unsigned k = 0; k < s->per_call && s->next < s->end; k++) {
        int rc = baton_emit(out, baton_item_int((int64_t)(s->tag | s->next)));
        BT_CHECK_MSG(rc == 0, "source emit %u of %u: %s", k + 1, s->per_call, baton_err_name(rc));
        if (rc != 0)
            break;
        s->next++;
    }
    bool done = s->next >= s->end;
    s->ended = done;
    atomic_store(&s->in_call, 0);
    /* The last items go out with END in the same call: graph.h says they still count. */
    return done ? BATON_GRAPH_END : 0;
}

/* Counts arrivals per value (value - base), for "exactly once" checks. */
typedef struct bt_count_sink {
    unsigned char *seen;
    uint64_t base, n;
    uint64_t received;
    int64_t sum;
    atomic_int in_call;
} bt_count_sink;

static inline void bt_count_sink_init(bt_count_sink *s, uint64_t base, uint64_t n)
{
    s->seen = calloc(n ? n : 1, 1);
    assert_non_null(s->seen);
    s->base = base;
    s->n = n;
    s->received = 0;
    s->sum = 0;
    atomic_init(&s->in_call, 0);
}

static inline int bt_count_sink_fn(void *state, baton_item item)
{
    bt_count_sink *s = state;
    BT_CHECK_MSG(atomic_exchange(&s->in_call, 1) == 0, "a serial sink ran two calls at once");
    s->received++;
    s->sum += item.i;
    uint64_t k = item.u - s->base;
    if (item.u < s->base || k >= s->n)
        BT_CHECK_MSG(false, "sink got %lld, outside [%llu, %llu)", (long long)item.i,
                     (unsigned long long)s->base, (unsigned long long)(s->base + s->n));
    else if (s->seen[k]++ != 0)
        BT_CHECK_MSG(false, "sink got %llu twice", (unsigned long long)item.u);
    atomic_store(&s->in_call, 0);
    return 0;
}

/* Main thread: every value in [base, base + n) arrived exactly once. */
static inline void bt_count_sink_assert_all(const bt_count_sink *s)
{
    bt_assert_no_thread_failures();
    for (uint64_t k = 0; k < s->n; k++)
        if (s->seen[k] != 1)
            fail_msg("value %llu arrived %u times", (unsigned long long)(s->base + k),
                     (unsigned)s->seen[k]);
    assert_int_equal(s->received, s->n);
}

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
static inline void bt_tracker_init(bt_tracker *t, size_t n_source, size_t n_extra)
{
    t->n_ids = n_source + n_extra;
    t->state = calloc(t->n_ids ? t->n_ids : 1, sizeof *t->state);
    assert_non_null(t->state);
    atomic_init(&t->next_extra, n_source);
    atomic_init(&t->allocated, 0);
    atomic_init(&t->freed, 0);
    atomic_init(&t->released, 0);
    atomic_init(&t->live, 0);
    atomic_init(&t->peak, 0);
}

static inline void bt_tracker_fini(bt_tracker *t)
{
    free(t->state);
    t->state = NULL;
}

/* Makes an item with tracking id `id`; NULL (and a recorded failure) when that cannot be. */
static inline bt_payload *bt_item_new_id(bt_tracker *t, uint64_t id, uint64_t origin, int64_t value)
{
    if (id >= t->n_ids) {
        BT_CHECK_MSG(false, "tracker: id %llu out of its %zu ids", (unsigned long long)id,
                     t->n_ids);
        return NULL;
    }
    unsigned char expected = 0;
    if (!atomic_compare_exchange_strong(&t->state[id], &expected, 1)) {
        BT_CHECK_MSG(false, "tracker: item %llu made twice", (unsigned long long)id);
        return NULL;
    }
    bt_payload *p = malloc(sizeof *p);
    BT_CHECK(p != NULL);
    if (p == NULL)
        return NULL;
    p->magic = BT_ITEM_MAGIC;
    p->id = id;
    p->origin = origin;
    p->value = value;
    atomic_fetch_add(&t->allocated, 1);
    /* The live count goes up before the item is emitted and down when it is freed: what is
     * alive at any instant is what the graph's memory bound speaks about. */
    long live = atomic_fetch_add(&t->live, 1) + 1;
    long peak = atomic_load(&t->peak);
    while (live > peak && !atomic_compare_exchange_weak(&t->peak, &peak, live)) {
    }
    return p;
}

/* A source's item number `index`. */
static inline bt_payload *bt_item_new(bt_tracker *t, uint64_t index, int64_t value)
{
    return bt_item_new_id(t, index, index, value);
}

/* An item derived from `from` (a copy, or a node's new item); keeps its origin. */
static inline bt_payload *bt_item_new_derived(bt_tracker *t, const bt_payload *from, int64_t value)
{
    uint64_t id = atomic_fetch_add(&t->next_extra, 1);
    return bt_item_new_id(t, id, from->origin, value);
}

/* Checks that an item the test receives is a live, well-formed one. */
static inline bool bt_item_valid(bt_tracker *t, const bt_payload *p)
{
    if (p == NULL || p->magic != BT_ITEM_MAGIC || p->id >= t->n_ids ||
        atomic_load(&t->state[p->id]) != 1) {
        BT_CHECK_MSG(false, "tracker: item %p is not a live item (magic %#llx)", (const void *)p,
                     p ? (unsigned long long)p->magic : 0ull);
        return false;
    }
    return true;
}

static inline void bt_item_free(bt_tracker *t, bt_payload *p)
{
    if (p == NULL || p->magic != BT_ITEM_MAGIC || p->id >= t->n_ids) {
        BT_CHECK_MSG(false, "tracker: freeing %p, not an item (magic %#llx): double free?",
                     (void *)p, p ? (unsigned long long)p->magic : 0ull);
        return;
    }
    unsigned char expected = 1;
    if (!atomic_compare_exchange_strong(&t->state[p->id], &expected, 2)) {
        BT_CHECK_MSG(false, "tracker: item %llu freed twice (state %u)",
                     (unsigned long long)p->id, (unsigned)expected);
        return;
    }
    p->magic = BT_ITEM_DEAD;
    atomic_fetch_sub(&t->live, 1);
    atomic_fetch_add(&t->freed, 1);
    free(p);
}

/* The graph's release function over a tracker (release_ctx). */
static inline void bt_item_release(void *ctx, baton_item item)
{
    bt_tracker *t = ctx;
    atomic_fetch_add(&t->released, 1);
    bt_item_free(t, item.p);
}

/* A fanout's copy function over a tracker (ctx): a new block with the same origin and value. */
static inline int bt_item_copy(void *ctx, baton_item item, baton_item *copy)
{
    bt_tracker *t = ctx;
    bt_payload *from = item.p;
    if (!bt_item_valid(t, from))
        return BATON_EINVAL;
    bt_payload *p = bt_item_new_derived(t, from, from->value);
    if (p == NULL)
        return BATON_ENOMEM;
    *copy = baton_item_ptr(p);
    return 0;
}

/* A source of tracked items with indices [next, end), per_call of them per call. */
typedef struct bt_tracked_source {
    bt_tracker *tracker;
    uint64_t next, end;
    unsigned per_call;
} bt_tracked_source;

static inline int bt_tracked_source_fn(void *state, baton_emitter *out)
{
    bt_tracked_source *s = state;
    for (unsigned k = 0; k < s->per_call && s->next < s->end; k++) {
        bt_payload *p = bt_item_new(s->tracker, s->next, (int64_t)s->next);
        if (p == NULL)
            return BATON_ENOMEM;
        int rc = baton_emit(out, baton_item_ptr(p));
        if (rc != 0) {
            BT_CHECK_MSG(false, "source emit %u of %u: %s", k + 1, s->per_call,
                         baton_err_name(rc));
            bt_item_free(s->tracker, p);
            return rc;
        }
        s->next++;
    }
    return s->next >= s->end ? BATON_GRAPH_END : 0;
}

/* Main thread only: every item made was freed exactly once, none is alive. */
static inline void bt_assert_all_freed(bt_tracker *t)
{
    bt_assert_no_thread_failures();
    long allocated = atomic_load(&t->allocated), freed = atomic_load(&t->freed);
    if (allocated != freed || atomic_load(&t->live) != 0)
        fail_msg("tracker: %ld items made, %ld freed (%ld by the graph's release function), "
                 "%ld alive",
                 allocated, freed, atomic_load(&t->released), atomic_load(&t->live));
    for (size_t i = 0; i < t->n_ids; i++)
        if (atomic_load(&t->state[i]) == 1)
            fail_msg("tracker: item %zu never freed (leaked)", i);
}

#endif /* BT_SUPPORT_GRAPH_H */
