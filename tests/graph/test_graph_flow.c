/*
 * test_graph_flow.c — items through graphs that complete, at one pool size (--workers N; CTest
 * runs 1, 2, 4, 8 and 16, oversubscribed on 2 cores):
 *  - a fanout into two branches joined again (examples/graph_seed.c's pipeline): 0, 1, 2 ->
 *    fanout to (x -> (2x, x) -> 2x - x) and (x -> -x) -> sum; the sum is 0, from six items;
 *  - a 4-stage pipeline (source, three maps, sink) where every item arrives exactly once; the
 *    10^7-item run is its own CTest entry (test_pipeline_10m), scaled down under sanitizers;
 *  - several producers into one merge, and into a sink directly; a source that produces nothing;
 *  - a fanout of 3 with a copy function (every copy freed exactly once, each branch sees each
 *    item once) and by reference (each successor gets the same word);
 *  - priorities (high, low, negative, mixed along a path) do not change the result.
 * Each checks the node statistics it can know exactly (items in and out of every node).
 */
#include "support/bt_common.h"

#include "support/bt_graph.h"

BT_DEFINE_POOL_GROUP()

/* ---- a fanout and two branches into one sum -------------------------------------------------- */

typedef struct seed_data {
    const int64_t *values;
    size_t n, next;
} seed_data;

static int seed_each(void *state, baton_emitter *out)
{
    seed_data *d = state;
    if (d->next == d->n)
        return BATON_GRAPH_END;
    return baton_emit(out, baton_item_int(d->values[d->next++]));
}

/* (2x, x) as one word: two 32-bit halves. */
static int seed_pair(void *ctx, baton_item x, baton_emitter *out)
{
    (void)ctx;
    uint64_t pair = (uint64_t)(uint32_t)(int32_t)(2 * x.i) << 32 | (uint32_t)(int32_t)x.i;
    return baton_emit(out, (baton_item){.u = pair});
}

static int seed_diff(void *ctx, baton_item pair, baton_emitter *out)
{
    (void)ctx;
    int64_t x2 = (int32_t)(uint32_t)(pair.u >> 32), x = (int32_t)(uint32_t)pair.u;
    return baton_emit(out, baton_item_int(x2 - x));
}

static int seed_negate(void *ctx, baton_item x, baton_emitter *out)
{
    (void)ctx;
    return baton_emit(out, baton_item_int(-x.i));
}

typedef struct seed_sum {
    int64_t sum;
    unsigned count;
    unsigned seen_by_value[5]; /* value + 2: -2 .. 2 */
} seed_sum;

static int seed_add(void *state, baton_item x)
{
    seed_sum *s = state;
    s->sum += x.i;
    s->count++;
    if (x.i >= -2 && x.i <= 2)
        s->seen_by_value[x.i + 2]++;
    else
        BT_CHECK_MSG(false, "the sum got %lld", (long long)x.i);
    return 0;
}

static void test_seed_example(void **state)
{
    (void)state;
    const int64_t data[] = {0, 1, 2};
    seed_data source = {data, 3, 0};
    seed_sum sum = {0, 0, {0}};

    baton_graph *g = NULL;
    bt_assert_rc(baton_graph_create(NULL, &g), 0);
    int src = baton_graph_source(g, "data", seed_each, &source);
    int fan = baton_graph_fanout(g, "fanout", NULL, NULL);
    int pair = baton_graph_map(g, "(2x, x)", seed_pair, NULL);
    int diff = baton_graph_map(g, "2x - x", seed_diff, NULL);
    int neg = baton_graph_map(g, "-x", seed_negate, NULL);
    int add = baton_graph_sink(g, "sum", seed_add, &sum);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, fan, pair, diff, add}, 5), 0);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){fan, neg, add}, 3), 0);
    bt_graph_run_ok(g, g_pool, "seed example");

    assert_int_equal(sum.sum, 0);
    assert_int_equal(sum.count, 6);
    /* 2x - x gives 0, 1, 2; -x gives 0, -1, -2. */
    const unsigned expected[5] = {1, 1, 2, 1, 1};
    for (int v = 0; v < 5; v++)
        assert_int_equal(sum.seen_by_value[v], expected[v]);
    /* What the fanout itself counted is test_graph_emit.c's business. */
    assert_int_equal(bt_node_stats(g, fan).items_out, 6);
    assert_int_equal(bt_node_stats(g, add).items_in, 6);
    baton_graph_destroy(g);
}

/* ---- a 4-stage pipeline: every item arrives exactly once ------------------------------------- */

#define PIPE_KEY UINT64_C(0x5bd1e9955bd1e995)

static int pipe_stage1(void *ctx, baton_item x, baton_emitter *out)
{
    (void)ctx;
    return baton_emit(out, (baton_item){.u = x.u * 3 + 1});
}

static int pipe_stage2(void *ctx, baton_item x, baton_emitter *out)
{
    (void)ctx;
    return baton_emit(out, (baton_item){.u = x.u ^ PIPE_KEY});
}

static int pipe_stage3(void *ctx, baton_item x, baton_emitter *out)
{
    (void)ctx;
    return baton_emit(out, (baton_item){.u = x.u + 5});
}

/* Undoes the three stages, then counts the source's number. */
static int pipe_sink(void *state, baton_item x)
{
    uint64_t v = ((x.u - 5) ^ PIPE_KEY) - 1;
    BT_CHECK_MSG(v % 3 == 0, "pipeline sink got %#llx, not a transformed number",
                 (unsigned long long)x.u);
    return bt_count_sink_fn(state, (baton_item){.u = v / 3});
}

static void run_pipeline(size_t n)
{
    bt_range_source source;
    bt_range_init(&source, 0, n, 64, 0);
    bt_count_sink sink;
    bt_count_sink_init(&sink, 0, n);

    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int nodes[5];
    nodes[0] = bt_graph_source(g, "numbers", bt_range_source_fn, &source, 64);
    nodes[1] = bt_graph_map(g, "times 3 plus 1", pipe_stage1, NULL, 1);
    nodes[2] = bt_graph_map(g, "xor key", pipe_stage2, NULL, 1);
    nodes[3] = bt_graph_map(g, "plus 5", pipe_stage3, NULL, 1);
    nodes[4] = bt_graph_sink(g, "exactly once", pipe_sink, &sink);
    bt_assert_rc(baton_graph_connect_path(g, nodes, 5), 0);
    uint64_t start = bt_now_ns();
    bt_graph_run_ok(g, g_pool, "4-stage pipeline");
    printf("# %zu items through 4 stages on %u workers in %.3f s\n", n, g_workers,
           (double)(bt_now_ns() - start) / 1e9);
    bt_count_sink_assert_all(&sink);

    assert_int_equal(bt_node_stats(g, nodes[0]).items_in, source.calls);
    assert_int_equal(bt_node_stats(g, nodes[0]).items_out, n);
    for (int i = 1; i < 4; i++) {
        baton_node_stats st = bt_node_stats(g, nodes[i]);
        assert_int_equal(st.items_in, n);
        assert_int_equal(st.items_out, n);
        assert_int_equal(st.rejected, 0);
        assert_true(st.activations >= 1);
    }
    assert_int_equal(bt_node_stats(g, nodes[4]).items_in, n);
    assert_int_equal(bt_node_stats(g, nodes[4]).items_out, 0);
    baton_graph_destroy(g);
    free(sink.seen);
}

static void test_pipeline_small(void **state)
{
    (void)state;
    run_pipeline(bt_scaled(100000, 1000));
}

static void test_pipeline_10m(void **state)
{
    (void)state;
    /* 10^7 at scale 1; sanitizer builds scale it down (bt_common.h). */
    run_pipeline(bt_scaled(1e7, 10000));
}

/* ---- several producers ----------------------------------------------------------------------- */

#define TAG_SHIFT 40

static int identity_map(void *ctx, baton_item x, baton_emitter *out)
{
    (void)ctx;
    return baton_emit(out, x);
}

/* Sources of different lengths (one empty, one emitting many per call), tagged by source. */
typedef struct tagged_sink {
    unsigned char *seen[6];
    uint64_t n[6];
    uint64_t received;
} tagged_sink;

static int tagged_sink_fn(void *state, baton_item item)
{
    tagged_sink *s = state;
    uint64_t tag = item.u >> TAG_SHIFT, k = item.u & ((UINT64_C(1) << TAG_SHIFT) - 1);
    s->received++;
    if (tag >= 6 || k >= s->n[tag])
        BT_CHECK_MSG(false, "merge sink got tag %llu index %llu", (unsigned long long)tag,
                     (unsigned long long)k);
    else if (s->seen[tag][k]++ != 0)
        BT_CHECK_MSG(false, "merge sink got tag %llu index %llu twice", (unsigned long long)tag,
                     (unsigned long long)k);
    return 0;
}

static void test_several_producers(void **state)
{
    (void)state;
    size_t base = bt_scaled(20000, 500);
    const uint64_t lengths[6] = {base, base / 3, 0, base * 2, 1, base / 7};
    const unsigned per_call[6] = {1, 7, 1, 32, 1, 3};
    bt_range_source sources[6];
    tagged_sink sink;
    memset(&sink, 0, sizeof sink);
    for (int s = 0; s < 6; s++) {
        bt_range_init(&sources[s], 0, lengths[s], per_call[s], (uint64_t)s << TAG_SHIFT);
        sink.n[s] = lengths[s];
        sink.seen[s] = calloc(lengths[s] + 1, 1);
        assert_non_null(sink.seen[s]);
    }

    /* Sources 0-3 into a merge (then a map), sources 4 and 5 straight into the sink: every
     * consuming node accepts several predecessors. Small capacities make producers wait. */
    baton_graph *g = bt_graph_create(16, 0, NULL, NULL);
    int merge = bt_graph_merge(g, "junction");
    int map = bt_graph_map(g, "pass", identity_map, NULL, 1);
    int sink_id = bt_graph_sink(g, "all", tagged_sink_fn, &sink);
    int ids[6];
    char name[16];
    for (int s = 0; s < 6; s++) {
        snprintf(name, sizeof name, "producer %d", s);
        ids[s] = bt_graph_source(g, name, bt_range_source_fn, &sources[s], per_call[s]);
        bt_graph_connect(g, ids[s], s < 4 ? merge : sink_id, s == 3 ? 32 : 0);
    }
    bt_graph_connect(g, merge, map, 4);
    bt_graph_connect(g, map, sink_id, 1);
    bt_graph_run_ok(g, g_pool, "several producers");

    uint64_t total = 0;
    for (int s = 0; s < 6; s++) {
        total += lengths[s];
        for (uint64_t k = 0; k < lengths[s]; k++)
            if (sink.seen[s][k] != 1)
                fail_msg("producer %d item %llu arrived %u times", s, (unsigned long long)k,
                         (unsigned)sink.seen[s][k]);
        assert_int_equal(bt_node_stats(g, ids[s]).items_out, lengths[s]);
        assert_int_equal(bt_node_stats(g, ids[s]).items_in, sources[s].calls);
    }
    assert_int_equal(sink.received, total);
    uint64_t merged = lengths[0] + lengths[1] + lengths[2] + lengths[3];
    assert_int_equal(bt_node_stats(g, merge).items_in, merged);
    assert_int_equal(bt_node_stats(g, merge).items_out, merged);
    assert_int_equal(bt_node_stats(g, sink_id).items_in, total);
    /* The empty source was called once, said END, and that was all. */
    assert_int_equal(sources[2].calls, 1);
    baton_graph_destroy(g);
    for (int s = 0; s < 6; s++)
        free(sink.seen[s]);
}

/* ---- a source that produces nothing ---------------------------------------------------------- */

static int never_called_sink(void *state, baton_item item)
{
    (void)item;
    atomic_fetch_add((atomic_int *)state, 1);
    return 0;
}

static int never_called_map(void *ctx, baton_item item, baton_emitter *out)
{
    (void)item;
    (void)out;
    atomic_fetch_add((atomic_int *)ctx, 1);
    return 0;
}

static void test_empty_source(void **state)
{
    (void)state;
    bt_tracker tracker;
    bt_tracker_init(&tracker, 1, 0);
    bt_range_source source;
    bt_range_init(&source, 0, 0, 1, 0);
    atomic_int calls;
    atomic_init(&calls, 0);
    baton_graph *g = bt_graph_create(0, 0, bt_item_release, &tracker);
    int nodes[4];
    nodes[0] = bt_graph_source(g, "nothing", bt_range_source_fn, &source, 1);
    nodes[1] = bt_graph_map(g, "map", never_called_map, &calls, 1);
    nodes[2] = bt_graph_fanout(g, "fan", bt_item_copy, &tracker);
    nodes[3] = bt_graph_sink(g, "sink", never_called_sink, &calls);
    bt_assert_rc(baton_graph_connect_path(g, nodes, 4), 0);
    int other_sink = bt_graph_sink(g, "other sink", never_called_sink, &calls);
    bt_graph_connect(g, nodes[2], other_sink, 0);
    bt_graph_run_ok(g, g_pool, "empty source");
    assert_int_equal(atomic_load(&calls), 0);
    assert_int_equal(source.calls, 1);
    assert_int_equal(bt_node_stats(g, nodes[0]).items_in, 1);
    assert_int_equal(bt_node_stats(g, nodes[0]).items_out, 0);
    for (int i = 1; i < 4; i++)
        assert_int_equal(bt_node_stats(g, nodes[i]).items_in, 0);
    assert_int_equal(atomic_load(&tracker.released), 0);
    /* Run again: the source is called again from its state (still empty). */
    bt_range_next_run(&source);
    bt_graph_run_ok(g, g_pool, "empty source, again");
    assert_int_equal(source.calls, 1);
    assert_int_equal(atomic_load(&calls), 0);
    baton_graph_destroy(g);
    bt_tracker_fini(&tracker);
}

/* ---- fanout ---------------------------------------------------------------------------------- */

/* Branch b of the fanout marks the item with b (value = origin * 4 + b). */
typedef struct branch_ctx {
    bt_tracker *tracker;
    int64_t branch;
    bool stateful;
    uint64_t stateful_count; /* counted by the STATEFUL branch only: plain, it runs as an actor */
} branch_ctx;

static int branch_mark(void *ctx, baton_item item, baton_emitter *out)
{
    branch_ctx *b = ctx;
    bt_payload *p = item.p;
    if (!bt_item_valid(b->tracker, p))
        return BATON_EINVAL;
    BT_CHECK_MSG(p->value == (int64_t)p->origin, "a copy reached branch %lld already changed",
                 (long long)b->branch);
    p->value = (int64_t)p->origin * 4 + b->branch;
    if (b->stateful)
        b->stateful_count++;
    return baton_emit(out, item);
}

typedef struct branch_sink {
    bt_tracker *tracker;
    unsigned char *seen; /* [origin * 4 + branch] */
    uint64_t n;
} branch_sink;

static int branch_sink_fn(void *state, baton_item item)
{
    branch_sink *s = state;
    bt_payload *p = item.p;
    if (!bt_item_valid(s->tracker, p))
        return BATON_EINVAL;
    uint64_t slot = (uint64_t)p->value;
    BT_CHECK(slot / 4 == p->origin && slot % 4 < 3 && p->origin < s->n);
    if (slot < s->n * 4 && s->seen[slot]++ != 0)
        BT_CHECK_MSG(false, "item %llu came through branch %llu twice",
                     (unsigned long long)p->origin, (unsigned long long)(slot % 4));
    bt_item_free(s->tracker, p);
    return 0;
}

static void test_fanout_three_with_copies(void **state)
{
    (void)state;
    size_t n = bt_scaled(20000, 500);
    bt_tracker tracker;
    bt_tracker_init(&tracker, n, 2 * n);
    bt_tracked_source source = {&tracker, 0, n, 4};
    branch_ctx branches[3] = {{&tracker, 0, false, 0}, {&tracker, 1, false, 0},
                              {&tracker, 2, true, 0}};
    branch_sink sink = {&tracker, calloc(4 * n, 1), n};
    assert_non_null(sink.seen);

    baton_graph *g = bt_graph_create(0, 0, bt_item_release, &tracker);
    int src = bt_graph_source(g, "tracked", bt_tracked_source_fn, &source, 4);
    int fan = bt_graph_fanout(g, "fan of 3", bt_item_copy, &tracker);
    int b0 = bt_graph_map(g, "branch 0", branch_mark, &branches[0], 1);
    int b1 = bt_graph_map(g, "branch 1", branch_mark, &branches[1], 1);
    int b2 = bt_graph_stateful(g, "branch 2 (stateful)", branch_mark, &branches[2], 1);
    int merge = bt_graph_merge(g, "join");
    int sink_id = bt_graph_sink(g, "check and free", branch_sink_fn, &sink);
    bt_graph_connect(g, src, fan, 8);
    bt_graph_connect(g, fan, b0, 3);
    bt_graph_connect(g, fan, b1, 0);
    bt_graph_connect(g, fan, b2, 1);
    bt_graph_connect(g, b0, merge, 0);
    bt_graph_connect(g, b1, merge, 2);
    bt_graph_connect(g, b2, merge, 0);
    bt_graph_connect(g, merge, sink_id, 0);
    bt_graph_run_ok(g, g_pool, "fanout of 3 with copies");

    for (uint64_t i = 0; i < n; i++)
        for (unsigned b = 0; b < 3; b++)
            if (sink.seen[i * 4 + b] != 1)
                fail_msg("item %llu came through branch %u %u times", (unsigned long long)i, b,
                         (unsigned)sink.seen[i * 4 + b]);
    assert_int_equal(branches[2].stateful_count, n);
    /* One original and two copies per item, each freed once by the sink, none by release. */
    bt_assert_all_freed(&tracker);
    assert_int_equal(atomic_load(&tracker.allocated), 3 * n);
    assert_int_equal(atomic_load(&tracker.released), 0);
    assert_int_equal(bt_node_stats(g, fan).items_out, 3 * n);
    assert_int_equal(bt_node_stats(g, merge).items_in, 3 * n);
    assert_int_equal(bt_node_stats(g, sink_id).items_in, 3 * n);
    baton_graph_destroy(g);
    free(sink.seen);
    bt_tracker_fini(&tracker);
}

/* By reference: every successor gets the same word (a pointer into the test's array). */
typedef struct ref_source {
    int64_t *values;
    size_t n, next;
} ref_source;

static int ref_source_fn(void *state, baton_emitter *out)
{
    ref_source *s = state;
    if (s->next == s->n)
        return BATON_GRAPH_END;
    return baton_emit(out, baton_item_ptr(&s->values[s->next++]));
}

typedef struct ref_sink {
    const int64_t *values;
    size_t n;
    unsigned char *seen;
} ref_sink;

static int ref_sink_fn(void *state, baton_item item)
{
    ref_sink *s = state;
    const int64_t *p = item.p;
    if (p < s->values || p >= s->values + s->n) {
        BT_CHECK_MSG(false, "a by-reference successor got %p, not a pointer into the array",
                     item.p);
        return 0;
    }
    size_t k = (size_t)(p - s->values);
    BT_CHECK(*p == (int64_t)k * 7);
    if (s->seen[k]++ != 0)
        BT_CHECK_MSG(false, "by-reference item %zu arrived twice at one sink", k);
    return 0;
}

static void test_fanout_by_reference(void **state)
{
    (void)state;
    size_t n = bt_scaled(20000, 500);
    int64_t *values = malloc(n * sizeof *values);
    assert_non_null(values);
    for (size_t i = 0; i < n; i++)
        values[i] = (int64_t)i * 7;
    ref_source source = {values, n, 0};
    ref_sink sinks[3];
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "refs", ref_source_fn, &source, 1);
    int fan = bt_graph_fanout(g, "by reference", NULL, NULL);
    bt_graph_connect(g, src, fan, 0);
    for (int k = 0; k < 3; k++) {
        sinks[k] = (ref_sink){values, n, calloc(n, 1)};
        assert_non_null(sinks[k].seen);
        char name[16];
        snprintf(name, sizeof name, "reader %d", k);
        bt_graph_connect(g, fan, bt_graph_sink(g, name, ref_sink_fn, &sinks[k]), (size_t)k + 1);
    }
    bt_graph_run_ok(g, g_pool, "fanout by reference");
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < n; i++)
            if (sinks[k].seen[i] != 1)
                fail_msg("reader %d saw item %zu %u times", k, i, (unsigned)sinks[k].seen[i]);
        free(sinks[k].seen);
    }
    assert_int_equal(bt_node_stats(g, fan).items_out, 3 * n);
    baton_graph_destroy(g);
    free(values);
}

static void test_priorities(void **state)
{
    (void)state;
    size_t n = bt_scaled(10000, 300);
    const int priorities[3][3] = {{10, -5, 3}, {-100, 100, 0}, {0, 0, -1}};
    bt_range_source sources[3];
    bt_count_sink sinks[3];
    baton_graph *g = bt_graph_create(8, 4, NULL, NULL);
    int maps[3];
    for (int c = 0; c < 3; c++) {
        bt_range_init(&sources[c], (uint64_t)c * n, (uint64_t)(c + 1) * n, 2, 0);
        bt_count_sink_init(&sinks[c], (uint64_t)c * n, n);
        char name[24];
        baton_node_config cfg = bt_node_config(BATON_NODE_SOURCE, NULL);
        cfg.source = bt_range_source_fn;
        cfg.ctx = &sources[c];
        cfg.max_emit = 2;
        cfg.priority = priorities[c][0];
        int src = bt_graph_add(g, &cfg);
        snprintf(name, sizeof name, "map %d", c);
        cfg = bt_node_config(BATON_NODE_MAP, name);
        cfg.map = identity_map;
        cfg.priority = priorities[c][1];
        maps[c] = bt_graph_add(g, &cfg);
        snprintf(name, sizeof name, "sink %d", c);
        cfg = bt_node_config(BATON_NODE_SINK, name);
        cfg.sink = bt_count_sink_fn;
        cfg.ctx = &sinks[c];
        cfg.priority = priorities[c][2];
        int sink_id = bt_graph_add(g, &cfg);
        bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, maps[c], sink_id}, 3), 0);
    }
    bt_graph_run_ok(g, g_pool, "priorities");
    for (int c = 0; c < 3; c++) {
        bt_count_sink_assert_all(&sinks[c]);
        assert_int_equal(bt_node_stats(g, maps[c]).items_in, n);
        free(sinks[c].seen);
    }
    baton_graph_destroy(g);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_example),
        cmocka_unit_test(test_pipeline_small),
        cmocka_unit_test(test_pipeline_10m),
        cmocka_unit_test(test_several_producers),
        cmocka_unit_test(test_empty_source),
        cmocka_unit_test(test_fanout_three_with_copies),
        cmocka_unit_test(test_fanout_by_reference),
        cmocka_unit_test(test_priorities),
    };
    return cmocka_run_group_tests_name("graph/flow", tests, group_setup, group_teardown);
}
