/*
 * test_graph_memory.c — bounded edges keep memory bounded, at one pool size (--workers N; CTest
 * runs 1, 2, 4, 8 and 16, oversubscribed on 2 cores).
 *
 * Every item here is a heap block made by the test (bt_graph.h's tracker): the live count goes
 * up before a producer emits and down when a consumer frees, and its peak over the run must not
 * exceed the sum of the capacities of all edges (graph.h: "at any instant the items alive in a
 * run number at most the sum of the capacities of all edges"). The test measures it itself; it
 * does not ask the library.
 *  - a slow sink behind tiny edges (capacity 1 and 2) with a fanout, a stateful node and a merge
 *    on the way: the bound holds and the run does not deadlock;
 *  - shapes that push on the bound: a source emitting many per call, a flat map emitting four
 *    per item, several sources into one slow sink; random capacities and batch sizes from a
 *    fixed seed (printed);
 *  - ordered sinks behind maps that make a new block before freeing their input (both alive in
 *    the call): random shapes, and one where the first item stays 20 ms in the second map while
 *    the others overtake it into the sink's reorder buffer.
 */
#include "support/bt_common.h"

#include "support/bt_graph.h"

BT_DEFINE_POOL_GROUP()

/* ---- nodes over tracked items ---------------------------------------------------------------- */

typedef struct mem_ctx {
    bt_tracker *tracker;
    unsigned fan; /* flat map: items emitted per item */
    uint64_t work_ns;
} mem_ctx;

/* Replaces the item with a new block (so both are alive inside the call), then frees the old. */
static int transform_map(void *ctx, baton_item item, baton_emitter *out)
{
    mem_ctx *m = ctx;
    bt_payload *p = item.p;
    if (!bt_item_valid(m->tracker, p))
        return BATON_EINVAL;
    bt_payload *q = bt_item_new_derived(m->tracker, p, p->value + 1);
    if (q == NULL)
        return BATON_ENOMEM;
    if (m->work_ns)
        bt_busy_ns(baton_mix64(p->origin) % 4 == 0 ? m->work_ns * 4 : m->work_ns);
    bt_item_free(m->tracker, p);
    int rc = baton_emit(out, baton_item_ptr(q));
    if (rc != 0)
        bt_item_free(m->tracker, q);
    return rc;
}

static int flat_map(void *ctx, baton_item item, baton_emitter *out)
{
    mem_ctx *m = ctx;
    bt_payload *p = item.p;
    if (!bt_item_valid(m->tracker, p))
        return BATON_EINVAL;
    for (unsigned k = 0; k < m->fan; k++) {
        bt_payload *q = bt_item_new_derived(m->tracker, p, (int64_t)k);
        if (q == NULL)
            return BATON_ENOMEM;
        int rc = baton_emit(out, baton_item_ptr(q));
        if (rc != 0) {
            BT_CHECK_MSG(false, "flat map emit %u of %u: %s", k + 1, m->fan, baton_err_name(rc));
            bt_item_free(m->tracker, q);
            bt_item_free(m->tracker, p);
            return rc;
        }
    }
    bt_item_free(m->tracker, p);
    return 0;
}

static int pass_actor(void *ctx, baton_item item, baton_emitter *out)
{
    mem_ctx *m = ctx;
    if (!bt_item_valid(m->tracker, item.p))
        return BATON_EINVAL;
    return baton_emit(out, item);
}

typedef struct mem_sink {
    bt_tracker *tracker;
    uint64_t work_ns;
    uint64_t received;
    uint64_t *per_origin; /* NULL: not counted */
    uint64_t n_origins;
} mem_sink;

static int mem_sink_fn(void *state, baton_item item)
{
    mem_sink *s = state;
    bt_payload *p = item.p;
    if (!bt_item_valid(s->tracker, p))
        return BATON_EINVAL;
    if (s->per_origin != NULL && p->origin < s->n_origins)
        s->per_origin[p->origin]++;
    s->received++;
    if (s->work_ns)
        bt_busy_ns(s->work_ns);
    bt_item_free(s->tracker, p);
    return 0;
}

/* Connects and adds the capacity to the run's bound. */
static void mem_connect(baton_graph *g, int from, int to, size_t capacity, size_t *bound)
{
    bt_graph_connect(g, from, to, capacity);
    *bound += capacity;
}

static void assert_bound(bt_tracker *t, size_t bound, const char *what)
{
    long peak = atomic_load(&t->peak);
    printf("# %s: peak %ld items alive, bound %zu\n", what, peak, bound);
    if (peak > (long)bound)
        fail_msg("%s: %ld items were alive at once, more than the sum of the edge capacities "
                 "(%zu)",
                 what, peak, bound);
}

/* ---- a slow sink behind tiny edges ----------------------------------------------------------- */

static void test_slow_sink_tiny_edges(void **state)
{
    (void)state;
    size_t n = bt_scaled(3000, 300);
    bt_tracker tracker;
    bt_tracker_init(&tracker, n, 4 * n);
    bt_tracked_source source = {&tracker, 0, n, 2};
    mem_ctx transform = {&tracker, 0, 1000}, actor = {&tracker, 0, 0};
    mem_sink sink = {&tracker, 20000, 0, calloc(n, sizeof(uint64_t)), n};
    assert_non_null(sink.per_origin);

    /* source =2=> transform -1-> fanout -1-> actor -1-> merge -1-> slow sink
     *                                  \-2-> transform -2-/                   */
    baton_graph *g = bt_graph_create(1, 0, bt_item_release, &tracker);
    int src = bt_graph_source(g, "fast source", bt_tracked_source_fn, &source, 2);
    int t1 = bt_graph_map(g, "transform", transform_map, &transform, 1);
    int fan = bt_graph_fanout(g, "fanout", bt_item_copy, &tracker);
    int act = bt_graph_stateful(g, "actor", pass_actor, &actor, 1);
    int t2 = bt_graph_map(g, "transform 2", transform_map, &transform, 1);
    int merge = bt_graph_merge(g, "merge");
    int sink_id = bt_graph_sink(g, "slow sink", mem_sink_fn, &sink);
    size_t bound = 0;
    mem_connect(g, src, t1, 2, &bound);
    mem_connect(g, t1, fan, 1, &bound);
    mem_connect(g, fan, act, 1, &bound);
    mem_connect(g, fan, t2, 2, &bound);
    mem_connect(g, act, merge, 1, &bound);
    mem_connect(g, t2, merge, 2, &bound);
    mem_connect(g, merge, sink_id, 1, &bound);
    bt_graph_run_ok(g, g_pool, "slow sink behind tiny edges");

    assert_int_equal(sink.received, 2 * n);
    for (size_t i = 0; i < n; i++)
        if (sink.per_origin[i] != 2)
            fail_msg("origin %zu reached the sink %llu times, expected 2", i,
                     (unsigned long long)sink.per_origin[i]);
    bt_assert_all_freed(&tracker);
    assert_int_equal(atomic_load(&tracker.released), 0);
    assert_bound(&tracker, bound, "tiny edges");
    baton_graph_destroy(g);
    free(sink.per_origin);
    bt_tracker_fini(&tracker);
}

/* ---- shapes that push on the bound, random capacities ---------------------------------------- */

static unsigned pick(bt_rng *rng, unsigned low, unsigned high)
{
    return low + (unsigned)bt_rng_below(rng, (uint64_t)(high - low + 1));
}

/* A source emitting up to 16 per call into a chain of transforms and a slow-ish sink. */
static void run_chain(bt_rng *rng)
{
    size_t n = bt_scaled(8000, 400);
    bt_tracker tracker;
    bt_tracker_init(&tracker, n, 3 * n);
    unsigned per_call = pick(rng, 1, 16);
    bt_tracked_source source = {&tracker, 0, n, per_call};
    mem_ctx transform = {&tracker, 0, pick(rng, 0, 1) * 2000};
    mem_sink sink = {&tracker, pick(rng, 0, 1) * 3000, 0, NULL, 0};
    unsigned batch = pick(rng, 1, 40);
    baton_graph *g = bt_graph_create(4, batch, bt_item_release, &tracker);
    int src = bt_graph_source(g, NULL, bt_tracked_source_fn, &source, per_call);
    int a = bt_graph_map(g, NULL, transform_map, &transform, 1);
    int b = bt_graph_map(g, NULL, transform_map, &transform, 1);
    int sink_id = bt_graph_sink(g, NULL, mem_sink_fn, &sink);
    size_t bound = 0;
    mem_connect(g, src, a, pick(rng, per_call, per_call + 20), &bound);
    mem_connect(g, a, b, pick(rng, 1, 12), &bound);
    mem_connect(g, b, sink_id, pick(rng, 1, 12), &bound);
    bt_graph_run_ok(g, g_pool, "chain");
    assert_int_equal(sink.received, n);
    bt_assert_all_freed(&tracker);
    char what[120];
    snprintf(what, sizeof what, "chain (per_call %u, batch %u)", per_call, batch);
    assert_bound(&tracker, bound, what);
    baton_graph_destroy(g);
    bt_tracker_fini(&tracker);
}

/* A flat map emitting four per item: what a batch may emit is reserved up front. */
static void run_flat(bt_rng *rng)
{
    size_t n = bt_scaled(3000, 300);
    bt_tracker tracker;
    bt_tracker_init(&tracker, n, 4 * n);
    bt_tracked_source source = {&tracker, 0, n, 1};
    mem_ctx flat = {&tracker, 4, 0};
    mem_sink sink = {&tracker, 2000, 0, NULL, 0};
    unsigned batch = pick(rng, 1, 32);
    baton_graph *g = bt_graph_create(8, batch, bt_item_release, &tracker);
    int src = bt_graph_source(g, NULL, bt_tracked_source_fn, &source, 1);
    int f = bt_graph_map(g, "times four", flat_map, &flat, 4);
    int sink_id = bt_graph_sink(g, NULL, mem_sink_fn, &sink);
    size_t bound = 0;
    mem_connect(g, src, f, pick(rng, 1, 8), &bound);
    mem_connect(g, f, sink_id, pick(rng, 4, 9), &bound);
    bt_graph_run_ok(g, g_pool, "flat map");
    assert_int_equal(sink.received, 4 * n);
    bt_assert_all_freed(&tracker);
    char what[120];
    snprintf(what, sizeof what, "flat map (batch %u)", batch);
    assert_bound(&tracker, bound, what);
    baton_graph_destroy(g);
    bt_tracker_fini(&tracker);
}

/* Four sources into one slow sink (one of them through a merge). */
static void run_many_sources(bt_rng *rng)
{
    size_t n = bt_scaled(2000, 200);
    bt_tracker tracker;
    bt_tracker_init(&tracker, 4 * n, 0);
    bt_tracked_source sources[4];
    mem_sink sink = {&tracker, 4000, 0, NULL, 0};
    baton_graph *g = bt_graph_create(4, pick(rng, 1, 8), bt_item_release, &tracker);
    int merge = bt_graph_merge(g, NULL);
    int sink_id = bt_graph_sink(g, NULL, mem_sink_fn, &sink);
    size_t bound = 0;
    for (int k = 0; k < 4; k++) {
        unsigned per_call = pick(rng, 1, 6);
        sources[k] =
            (bt_tracked_source){&tracker, (uint64_t)k * n, (uint64_t)(k + 1) * n, per_call};
        int src = bt_graph_source(g, NULL, bt_tracked_source_fn, &sources[k], per_call);
        mem_connect(g, src, k < 2 ? merge : sink_id, pick(rng, per_call, per_call + 4), &bound);
    }
    mem_connect(g, merge, sink_id, pick(rng, 1, 3), &bound);
    bt_graph_run_ok(g, g_pool, "many sources");
    assert_int_equal(sink.received, 4 * n);
    bt_assert_all_freed(&tracker);
    assert_bound(&tracker, bound, "many sources");
    baton_graph_destroy(g);
    bt_tracker_fini(&tracker);
}

/* An ordered sink behind variable-time parallel maps: the reordering window is the sink's input
 * edge, and the source does not run ahead of the sink by more than that. */
typedef struct ordered_mem_sink {
    mem_sink base;
    uint64_t expected;
} ordered_mem_sink;

static int ordered_mem_sink_fn(void *state, baton_item item)
{
    ordered_mem_sink *s = state;
    bt_payload *p = item.p;
    if (bt_item_valid(s->base.tracker, p)) {
        BT_CHECK_MSG(p->origin == s->expected, "ordered sink got origin %llu, expected %llu",
                     (unsigned long long)p->origin, (unsigned long long)s->expected);
        s->expected = p->origin + 1;
    }
    return mem_sink_fn(&s->base, item);
}

static void run_ordered(bt_rng *rng)
{
    size_t n = bt_scaled(3000, 300);
    bt_tracker tracker;
    bt_tracker_init(&tracker, n, 2 * n);
    unsigned per_call = pick(rng, 1, 4);
    bt_tracked_source source = {&tracker, 0, n, per_call};
    mem_ctx transform = {&tracker, 0, 3000};
    ordered_mem_sink sink = {{&tracker, pick(rng, 0, 1) * 2000, 0, NULL, 0}, 0};
    unsigned batch = pick(rng, 1, 16);
    baton_graph *g = bt_graph_create(4, batch, bt_item_release, &tracker);
    int src = bt_graph_source(g, NULL, bt_tracked_source_fn, &source, per_call);
    int a = bt_graph_map(g, NULL, transform_map, &transform, 1);
    int b = bt_graph_map(g, NULL, transform_map, &transform, 1);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "ordered");
    cfg.sink = ordered_mem_sink_fn;
    cfg.ctx = &sink;
    cfg.flags = BATON_NODE_ORDERED;
    int sink_id = bt_graph_add(g, &cfg);
    size_t bound = 0, caps[3];
    caps[0] = pick(rng, per_call, per_call + 8);
    caps[1] = pick(rng, 1, 8);
    caps[2] = pick(rng, 1, 8);
    mem_connect(g, src, a, caps[0], &bound);
    mem_connect(g, a, b, caps[1], &bound);
    mem_connect(g, b, sink_id, caps[2], &bound);
    bt_graph_run_ok(g, g_pool, "ordered");
    assert_int_equal(sink.base.received, n);
    bt_assert_all_freed(&tracker);
    char what[120];
    snprintf(what, sizeof what, "ordered (per_call %u, batch %u, capacities %zu, %zu, %zu)",
             per_call, batch, caps[0], caps[1], caps[2]);
    assert_bound(&tracker, bound, what);
    baton_graph_destroy(g);
    bt_tracker_fini(&tracker);
}

/* The shape that fills an ordered sink's buffer: item 0 stays 20 ms inside the second map,
 * holding its input and its new output there, while the items after it overtake it and wait in
 * the reorder buffer. All of them together must still fit in the edges' capacities. */
static int slow_first_transform(void *ctx, baton_item item, baton_emitter *out)
{
    mem_ctx *m = ctx;
    bt_payload *p = item.p;
    if (bt_item_valid(m->tracker, p) && p->origin == 0) {
        bt_payload *q = bt_item_new_derived(m->tracker, p, p->value + 1);
        if (q == NULL)
            return BATON_ENOMEM;
        bt_sleep_ms(20); /* both alive meanwhile: p on the input edge, q reserved on the output */
        bt_item_free(m->tracker, p);
        int rc = baton_emit(out, baton_item_ptr(q));
        if (rc != 0)
            bt_item_free(m->tracker, q);
        return rc;
    }
    return transform_map(ctx, item, out);
}

static void test_ordered_bound_slow_item(void **state)
{
    (void)state;
    size_t n = 200;
    bt_tracker tracker;
    bt_tracker_init(&tracker, n, 2 * n);
    bt_tracked_source source = {&tracker, 0, n, 1};
    mem_ctx transform = {&tracker, 0, 0};
    ordered_mem_sink sink = {{&tracker, 0, 0, NULL, 0}, 0};
    /* Batches of one, so that no item waits behind item 0 in its batch. */
    baton_graph *g = bt_graph_create(4, 1, bt_item_release, &tracker);
    int src = bt_graph_source(g, "source", bt_tracked_source_fn, &source, 1);
    int a = bt_graph_map(g, "transform", transform_map, &transform, 1);
    int b = bt_graph_map(g, "slow first", slow_first_transform, &transform, 1);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "ordered");
    cfg.sink = ordered_mem_sink_fn;
    cfg.ctx = &sink;
    cfg.flags = BATON_NODE_ORDERED;
    int sink_id = bt_graph_add(g, &cfg);
    size_t bound = 0;
    mem_connect(g, src, a, 2, &bound);
    mem_connect(g, a, b, 2, &bound);
    mem_connect(g, b, sink_id, 2, &bound);
    bt_graph_run_ok(g, g_pool, "ordered, slow first item");
    assert_int_equal(sink.base.received, n);
    bt_assert_all_freed(&tracker);
    assert_bound(&tracker, bound, "ordered, slow first item (capacities 2, 2, 2)");
    baton_graph_destroy(g);
    bt_tracker_fini(&tracker);
}

static void test_bound_shapes(void **state)
{
    (void)state;
    uint64_t seed = UINT64_C(0x6a09e667f3bcc909) ^ g_workers;
    printf("# seed %#llx\n", (unsigned long long)seed);
    bt_rng rng = bt_rng_seed(seed);
    for (int round = 0; round < 3; round++) {
        run_chain(&rng);
        run_flat(&rng);
        run_many_sources(&rng);
    }
}

static void test_bound_shapes_ordered(void **state)
{
    (void)state;
    uint64_t seed = UINT64_C(0xbb67ae8584caa73b) ^ g_workers;
    printf("# seed %#llx\n", (unsigned long long)seed);
    bt_rng rng = bt_rng_seed(seed);
    for (int round = 0; round < 4; round++)
        run_ordered(&rng);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_sink_tiny_edges),
        cmocka_unit_test(test_bound_shapes),
        cmocka_unit_test(test_bound_shapes_ordered),
        cmocka_unit_test(test_ordered_bound_slow_item),
    };
    return cmocka_run_group_tests_name("graph/memory", tests, group_setup, group_teardown);
}
