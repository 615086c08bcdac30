/*
 * bt_graph.c — the graph tests' helpers of bt_graph.h: building and running graphs that must work,
 * the range source and counting sink, the item tracker.
 */
#include "support/bt_common.h"
#include "support/bt_graph.h"

baton_node_config bt_node_config(baton_node_kind kind, const char *name)
{
    baton_node_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.kind = kind;
    config.name = name;
    return config;
}

baton_graph_config bt_graph_config(size_t edge_capacity, unsigned batch, baton_release_fn release,
                                   void *release_ctx)
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

baton_graph *bt_graph_create(size_t edge_capacity, unsigned batch, baton_release_fn release,
                             void *release_ctx)
{
    baton_graph_config config = bt_graph_config(edge_capacity, batch, release, release_ctx);
    baton_graph *graph = NULL;
    int rc = baton_graph_create(&config, &graph);
    if (rc != 0)
        fail_msg("baton_graph_create(edge_capacity=%zu, batch=%u) = %s: %s", edge_capacity, batch,
                 baton_err_name(rc), baton_last_error_message());
    assert_non_null(graph);
    return graph;
}

int bt_graph_add(baton_graph *graph, const baton_node_config *config)
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

int bt_graph_source(baton_graph *graph, const char *name, baton_source_fn fn, void *state,
                    unsigned max_emit)
{
    baton_node_config config = bt_node_config(BATON_NODE_SOURCE, name);
    config.source = fn;
    config.ctx = state;
    config.max_emit = max_emit;
    return bt_graph_add(graph, &config);
}

int bt_graph_map(baton_graph *graph, const char *name, baton_map_fn fn, void *ctx,
                 unsigned max_emit)
{
    baton_node_config config = bt_node_config(BATON_NODE_MAP, name);
    config.map = fn;
    config.ctx = ctx;
    config.max_emit = max_emit;
    return bt_graph_add(graph, &config);
}

int bt_graph_stateful(baton_graph *graph, const char *name, baton_map_fn fn, void *state,
                      unsigned max_emit)
{
    baton_node_config config = bt_node_config(BATON_NODE_STATEFUL, name);
    config.map = fn;
    config.ctx = state;
    config.max_emit = max_emit;
    return bt_graph_add(graph, &config);
}

int bt_graph_sink(baton_graph *graph, const char *name, baton_sink_fn fn, void *state)
{
    baton_node_config config = bt_node_config(BATON_NODE_SINK, name);
    config.sink = fn;
    config.ctx = state;
    return bt_graph_add(graph, &config);
}

int bt_graph_fanout(baton_graph *graph, const char *name, baton_copy_fn copy, void *ctx)
{
    baton_node_config config = bt_node_config(BATON_NODE_FANOUT, name);
    config.copy = copy;
    config.ctx = ctx;
    return bt_graph_add(graph, &config);
}

int bt_graph_merge(baton_graph *graph, const char *name)
{
    baton_node_config config = bt_node_config(BATON_NODE_MERGE, name);
    return bt_graph_add(graph, &config);
}

void bt_graph_connect(baton_graph *graph, int from, int to, size_t capacity)
{
    int rc = baton_graph_connect(graph, from, to, capacity);
    if (rc != 0)
        fail_msg("baton_graph_connect(%d -> %d, capacity %zu) = %s: %s", from, to, capacity,
                 baton_err_name(rc), baton_last_error_message());
}

int bt_graph_run(baton_graph *graph, baton_pool *pool, const char *what)
{
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_GRAPH_WATCHDOG_S, what);
    int rc = baton_graph_run(graph, pool);
    bt_watchdog_stop(&dog);
    return rc;
}

void bt_graph_run_ok(baton_graph *graph, baton_pool *pool, const char *what)
{
    int rc = bt_graph_run(graph, pool, what);
    if (rc != 0)
        fail_msg("%s: baton_graph_run = %s: %s", what, baton_err_name(rc),
                 baton_last_error_message());
    bt_assert_no_thread_failures();
}

baton_node_stats bt_node_stats(const baton_graph *graph, int node)
{
    baton_node_stats stats;
    memset(&stats, 0xa5, sizeof stats);
    int rc = baton_graph_node_stats(graph, node, &stats);
    if (rc != 0)
        fail_msg("baton_graph_node_stats(%d) = %s: %s", node, baton_err_name(rc),
                 baton_last_error_message());
    return stats;
}

void bt_range_init(bt_range_source *s, uint64_t begin, uint64_t end, unsigned per_call,
                   uint64_t tag)
{
    s->next = begin;
    s->end = end;
    s->per_call = per_call;
    s->tag = tag;
    s->calls = 0;
    s->ended = false;
    atomic_init(&s->in_call, 0);
}

void bt_range_next_run(bt_range_source *s)
{
    s->calls = 0;
    s->ended = false;
}

int bt_range_source_fn(void *state, baton_emitter *out)
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

void bt_count_sink_init(bt_count_sink *s, uint64_t base, uint64_t n)
{
    s->seen = calloc(n ? n : 1, 1);
    assert_non_null(s->seen);
    s->base = base;
    s->n = n;
    s->received = 0;
    s->sum = 0;
    atomic_init(&s->in_call, 0);
}

int bt_count_sink_fn(void *state, baton_item item)
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

void bt_count_sink_assert_all(const bt_count_sink *s)
{
    bt_assert_no_thread_failures();
    for (uint64_t k = 0; k < s->n; k++)
        if (s->seen[k] != 1)
            fail_msg("value %llu arrived %u times", (unsigned long long)(s->base + k),
                     (unsigned)s->seen[k]);
    assert_int_equal(s->received, s->n);
}

void bt_tracker_init(bt_tracker *t, size_t n_source, size_t n_extra)
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

void bt_tracker_fini(bt_tracker *t)
{
    free(t->state);
    t->state = NULL;
}

bt_payload *bt_item_new_id(bt_tracker *t, uint64_t id, uint64_t origin, int64_t value)
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

bt_payload *bt_item_new(bt_tracker *t, uint64_t index, int64_t value)
{
    return bt_item_new_id(t, index, index, value);
}

bt_payload *bt_item_new_derived(bt_tracker *t, const bt_payload *from, int64_t value)
{
    uint64_t id = atomic_fetch_add(&t->next_extra, 1);
    return bt_item_new_id(t, id, from->origin, value);
}

bool bt_item_valid(bt_tracker *t, const bt_payload *p)
{
    if (p == NULL || p->magic != BT_ITEM_MAGIC || p->id >= t->n_ids ||
        atomic_load(&t->state[p->id]) != 1) {
        BT_CHECK_MSG(false, "tracker: item %p is not a live item (magic %#llx)", (const void *)p,
                     p ? (unsigned long long)p->magic : 0ull);
        return false;
    }
    return true;
}

void bt_item_free(bt_tracker *t, bt_payload *p)
{
    if (p == NULL || p->magic != BT_ITEM_MAGIC || p->id >= t->n_ids) {
        BT_CHECK_MSG(false, "tracker: freeing %p, not an item (magic %#llx): double free?",
                     (void *)p, p ? (unsigned long long)p->magic : 0ull);
        return;
    }
    unsigned char expected = 1;
    if (!atomic_compare_exchange_strong(&t->state[p->id], &expected, 2)) {
        BT_CHECK_MSG(false, "tracker: item %llu freed twice (state %u)", (unsigned long long)p->id,
                     (unsigned)expected);
        return;
    }
    p->magic = BT_ITEM_DEAD;
    atomic_fetch_sub(&t->live, 1);
    atomic_fetch_add(&t->freed, 1);
    free(p);
}

void bt_item_release(void *ctx, baton_item item)
{
    bt_tracker *t = ctx;
    atomic_fetch_add(&t->released, 1);
    bt_item_free(t, item.p);
}

int bt_item_copy(void *ctx, baton_item item, baton_item *copy)
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

int bt_tracked_source_fn(void *state, baton_emitter *out)
{
    bt_tracked_source *s = state;
    for (unsigned k = 0; k < s->per_call && s->next < s->end; k++) {
        bt_payload *p = bt_item_new(s->tracker, s->next, (int64_t)s->next);
        if (p == NULL)
            return BATON_ENOMEM;
        int rc = baton_emit(out, baton_item_ptr(p));
        if (rc != 0) {
            BT_CHECK_MSG(false, "source emit %u of %u: %s", k + 1, s->per_call, baton_err_name(rc));
            bt_item_free(s->tracker, p);
            return rc;
        }
        s->next++;
    }
    return s->next >= s->end ? BATON_GRAPH_END : 0;
}

void bt_assert_all_freed(bt_tracker *t)
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
