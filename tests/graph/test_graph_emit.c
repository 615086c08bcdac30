/*
 * test_graph_emit.c — what a node may emit and what the statistics say, at one pool size
 * (--workers N; CTest runs 1, 2, 4, 8 and 16, oversubscribed on 2 cores):
 *  - max_emit: a flat map emitting 0..4 items per item (0 is a filter), a source emitting three
 *    per call; the (max_emit+1)-th emit of a call is BATON_ERANGE and the item stays the
 *    caller's (tracked blocks: freed exactly once); the default (1) refuses a second emit, and
 *    baton_emit(NULL, ...) is BATON_EINVAL; edges of exactly max_emit units suffice;
 *  - node statistics: items_in (sources: calls), items_out and rejected exact for a source, a
 *    filter, a map emitting two per item and a sink; all zero before the first run; from the
 *    last run only, over three runs (the second finds its source ended and moves nothing);
 *    a fanout and a merge count what they receive and hand on; a filter and an actor on the
 *    path to an ordered sink count what they emitted, as they do elsewhere.
 */
#include "support/bt_common.h"

#include "support/bt_graph.h"

BT_DEFINE_POOL_GROUP()

/* ---- max_emit -------------------------------------------------------------------------------- */

/* Emits origin % 5 derived items (0 = a filter), then one more than max_emit allows. */
typedef struct flat_ctx {
    bt_tracker *tracker;
    unsigned max_emit;
    atomic_ulong refused;
} flat_ctx;

static int flat_map(void *ctx, baton_item item, baton_emitter *out)
{
    flat_ctx *f = ctx;
    bt_payload *p = item.p;
    if (!bt_item_valid(f->tracker, p))
        return BATON_EINVAL;
    unsigned k = (unsigned)(p->origin % 5);
    for (unsigned e = 0; e < k; e++) {
        bt_payload *child = bt_item_new_derived(f->tracker, p, (int64_t)e);
        if (child == NULL)
            return BATON_ENOMEM;
        int rc = baton_emit(out, baton_item_ptr(child));
        BT_CHECK_MSG(rc == 0, "flat map emit %u of %u: %s", e + 1, k, baton_err_name(rc));
        if (rc != 0)
            bt_item_free(f->tracker, child);
    }
    if (k == f->max_emit) {
        /* One too many: refused, and the item is still ours. */
        bt_payload *extra = bt_item_new_derived(f->tracker, p, -1);
        if (extra != NULL) {
            int rc = baton_emit(out, baton_item_ptr(extra));
            BT_CHECK_MSG(rc == BATON_ERANGE, "emit beyond max_emit returned %s",
                         baton_err_name(rc));
            if (rc == BATON_ERANGE) {
                atomic_fetch_add(&f->refused, 1);
                bt_item_free(f->tracker, extra);
            }
        }
    }
    bt_item_free(f->tracker, p); /* the input is ours: we consumed it */
    return 0;
}

typedef struct flat_sink {
    bt_tracker *tracker;
    unsigned char *per_origin;
    uint64_t n, received;
} flat_sink;

static int flat_sink_fn(void *state, baton_item item)
{
    flat_sink *s = state;
    bt_payload *p = item.p;
    if (!bt_item_valid(s->tracker, p))
        return BATON_EINVAL;
    BT_CHECK(p->value >= 0 && p->value < 5 && p->origin < s->n);
    if (p->origin < s->n)
        s->per_origin[p->origin]++;
    s->received++;
    bt_item_free(s->tracker, p);
    return 0;
}

/* A source that emits max_emit items per call, then tries one more (a tracked item of its own,
 * which must be refused with BATON_ERANGE and stay the source's to free). */
typedef struct greedy_source {
    bt_tracker *tracker;
    uint64_t next, end;
    unsigned max_emit;
    uint64_t refused;
} greedy_source;

static int greedy_source_fn(void *state, baton_emitter *out)
{
    greedy_source *s = state;
    unsigned emitted = 0;
    for (; emitted < s->max_emit && s->next < s->end; emitted++) {
        bt_payload *p = bt_item_new(s->tracker, s->next, (int64_t)(s->next % 5));
        if (p == NULL)
            return BATON_ENOMEM;
        int rc = baton_emit(out, baton_item_ptr(p));
        BT_CHECK_MSG(rc == 0, "source emit %u of max_emit %u: %s", emitted + 1, s->max_emit,
                     baton_err_name(rc));
        if (rc != 0) {
            bt_item_free(s->tracker, p);
            return rc;
        }
        s->next++;
    }
    if (emitted == s->max_emit) {
        bt_payload extra_origin = {BT_ITEM_MAGIC, 0, UINT64_MAX, 0};
        bt_payload *extra = bt_item_new_derived(s->tracker, &extra_origin, 0);
        if (extra == NULL)
            return BATON_ENOMEM;
        int rc = baton_emit(out, baton_item_ptr(extra));
        BT_CHECK_MSG(rc == BATON_ERANGE, "source emit beyond max_emit %u: %s", s->max_emit,
                     baton_err_name(rc));
        if (rc == BATON_ERANGE) {
            s->refused++;
            bt_item_free(s->tracker, extra);
        }
    }
    return s->next >= s->end ? BATON_GRAPH_END : 0;
}

static void test_max_emit(void **state)
{
    (void)state;
    size_t n = bt_scaled(20000, 500);
    bt_tracker tracker;
    bt_tracker_init(&tracker, n, 3 * n);
    greedy_source source = {&tracker, 0, n, 3, 0};
    flat_ctx flat = {&tracker, 4, 0};
    atomic_init(&flat.refused, 0);
    flat_sink sink = {&tracker, calloc(n, 1), n, 0};
    assert_non_null(sink.per_origin);

    baton_graph *g = bt_graph_create(0, 0, bt_item_release, &tracker);
    int src = bt_graph_source(g, "greedy", greedy_source_fn, &source, 3);
    int flat_id = bt_graph_map(g, "flat map", flat_map, &flat, 4);
    int sink_id = bt_graph_sink(g, "sink", flat_sink_fn, &sink);
    bt_graph_connect(g, src, flat_id, 3);     /* exactly the source's max_emit */
    bt_graph_connect(g, flat_id, sink_id, 4); /* exactly the flat map's max_emit */
    bt_graph_run_ok(g, g_pool, "max_emit");

    uint64_t expected_out = 0;
    for (uint64_t i = 0; i < n; i++) {
        expected_out += i % 5;
        if (sink.per_origin[i] != i % 5)
            fail_msg("origin %llu: %u items, expected %llu", (unsigned long long)i,
                     (unsigned)sink.per_origin[i], (unsigned long long)(i % 5));
    }
    assert_int_equal(sink.received, expected_out);
    /* Origins i % 5 == 4 emit four, then one too many; every full source call tries one more. */
    assert_int_equal(atomic_load(&flat.refused), n / 5);
    assert_int_equal(source.refused, n / 3);
    bt_assert_all_freed(&tracker);
    baton_node_stats fs = bt_node_stats(g, flat_id);
    assert_int_equal(fs.items_in, n);
    assert_int_equal(fs.items_out, expected_out);
    assert_int_equal(bt_node_stats(g, src).items_out, n);
    assert_int_equal(bt_node_stats(g, sink_id).items_in, expected_out);
    baton_graph_destroy(g);
    free(sink.per_origin);
    bt_tracker_fini(&tracker);
}

/* A map with the default max_emit (1): the second emit of a call is BATON_ERANGE. */
static int twice_map(void *ctx, baton_item item, baton_emitter *out)
{
    atomic_ulong *refused = ctx;
    int rc = baton_emit(out, item);
    BT_CHECK_MSG(rc == 0, "first emit: %s", baton_err_name(rc));
    rc = baton_emit(out, item);
    BT_CHECK_MSG(rc == BATON_ERANGE, "second emit with max_emit 1: %s", baton_err_name(rc));
    if (rc == BATON_ERANGE)
        atomic_fetch_add(refused, 1);
    BT_CHECK(baton_emit(NULL, item) == BATON_EINVAL);
    return 0;
}

static void test_default_max_emit(void **state)
{
    (void)state;
    size_t n = bt_scaled(5000, 200);
    bt_range_source source;
    bt_range_init(&source, 0, n, 1, 0);
    bt_count_sink sink;
    bt_count_sink_init(&sink, 0, n);
    atomic_ulong refused;
    atomic_init(&refused, 0);
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int nodes[3];
    nodes[0] = baton_graph_source(g, "one per call", bt_range_source_fn, &source);
    nodes[1] = baton_graph_map(g, "twice", twice_map, &refused);
    nodes[2] = baton_graph_sink(g, "once", bt_count_sink_fn, &sink);
    bt_assert_rc(baton_graph_connect_path(g, nodes, 3), 0);
    bt_graph_run_ok(g, g_pool, "default max_emit");
    bt_count_sink_assert_all(&sink);
    assert_int_equal(atomic_load(&refused), n);
    baton_graph_destroy(g);
    free(sink.seen);
}

/* ---- statistics, running twice, priorities --------------------------------------------------- */

static int drop_odd(void *ctx, baton_item x, baton_emitter *out)
{
    (void)ctx;
    return x.u % 2 ? 0 : baton_emit(out, x);
}

/* Emits x and x + 1 (x even), so the sink sees every number below n again. */
static int split_two(void *ctx, baton_item x, baton_emitter *out)
{
    (void)ctx;
    int rc = baton_emit(out, x);
    return rc != 0 ? rc : baton_emit(out, (baton_item){.u = x.u + 1});
}

static void test_stats_and_rerun(void **state)
{
    (void)state;
    size_t n = bt_scaled(20000, 500) & ~(size_t)1;
    bt_range_source source;
    bt_range_init(&source, 0, n, 5, 0);
    bt_count_sink sink;
    bt_count_sink_init(&sink, 0, n);
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int nodes[4];
    nodes[0] = bt_graph_source(g, "five per call", bt_range_source_fn, &source, 5);
    nodes[1] = bt_graph_map(g, "drop odd", drop_odd, NULL, 1);
    nodes[2] = bt_graph_map(g, "split", split_two, NULL, 2);
    nodes[3] = bt_graph_sink(g, "count", bt_count_sink_fn, &sink);
    bt_assert_rc(baton_graph_connect_path(g, nodes, 4), 0);

    /* Before the first run: all zero. */
    for (int i = 0; i < 4; i++) {
        baton_node_stats st = bt_node_stats(g, i);
        assert_true(st.items_in == 0 && st.items_out == 0 && st.rejected == 0 &&
                    st.activations == 0 && st.busy_ns == 0 && st.blocked_ns == 0);
    }
    for (int round = 0; round < 3; round++) {
        bt_graph_run_ok(g, g_pool, "stats");
        bt_count_sink_assert_all(&sink);
        baton_node_stats st[4];
        for (int i = 0; i < 4; i++)
            st[i] = bt_node_stats(g, nodes[i]);
        /* The last run only: round 1 (nothing, the source already ended) and round 2 (reset)
         * do not add to round 0's counts. */
        uint64_t items = round == 1 ? 0 : n;
        assert_int_equal(st[0].items_in, source.calls);
        assert_int_equal(st[0].items_out, items);
        assert_int_equal(st[1].items_in, items);
        assert_int_equal(st[1].items_out, items / 2);
        assert_int_equal(st[2].items_in, items / 2);
        assert_int_equal(st[2].items_out, items);
        assert_int_equal(st[3].items_in, items);
        assert_int_equal(st[3].items_out, 0);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(st[i].rejected, 0);
            if (st[i].items_in > 0)
                assert_true(st[i].activations >= 1);
        }
        if (round == 0) {
            /* Five per call; the call that emits the last ones returns END. */
            assert_int_equal(source.calls, (n + 4) / 5);
            /* Run again without resetting the source: it is called once more, from its state
             * (at its end), and ends; nothing arrives (the sink's counts stay at one each). */
            bt_range_next_run(&source);
        } else if (round == 1) {
            assert_int_equal(source.calls, 1);
            /* Reset the source and the sink: the third run sees everything again. */
            bt_range_init(&source, 0, n, 5, 0);
            memset(sink.seen, 0, n);
            sink.received = 0;
        }
    }
    baton_graph_destroy(g);
    free(sink.seen);
}

/* What nodes without a function count: a fanout's items_in is the items it received (as a
 * merge's is), its items_out what it handed on (one per successor). */
static int pass_map(void *ctx, baton_item x, baton_emitter *out)
{
    (void)ctx;
    return baton_emit(out, x);
}

static int counting_sink(void *state, baton_item x)
{
    (void)x;
    (*(uint64_t *)state)++;
    return 0;
}

static void test_fanout_and_merge_statistics(void **state)
{
    (void)state;
    size_t n = bt_scaled(10000, 300);
    bt_range_source source;
    bt_range_init(&source, 0, n, 4, 0);
    uint64_t received = 0;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "numbers", bt_range_source_fn, &source, 4);
    int fan = bt_graph_fanout(g, "fan of 3", NULL, NULL);
    int merge = bt_graph_merge(g, "merge");
    int sink = bt_graph_sink(g, "count", counting_sink, &received);
    bt_graph_connect(g, src, fan, 0);
    for (int k = 0; k < 3; k++) {
        char name[16];
        snprintf(name, sizeof name, "branch %d", k);
        int map = bt_graph_map(g, name, pass_map, NULL, 1);
        bt_graph_connect(g, fan, map, 0);
        bt_graph_connect(g, map, merge, 0);
    }
    bt_graph_connect(g, merge, sink, 0);
    bt_graph_run_ok(g, g_pool, "fanout and merge statistics");
    assert_int_equal(received, 3 * n);
    baton_node_stats fs = bt_node_stats(g, fan), ms = bt_node_stats(g, merge);
    printf("# fanout: items_in %llu, items_out %llu; merge: items_in %llu, items_out %llu\n",
           (unsigned long long)fs.items_in, (unsigned long long)fs.items_out,
           (unsigned long long)ms.items_in, (unsigned long long)ms.items_out);
    assert_int_equal(ms.items_in, 3 * n);
    assert_int_equal(ms.items_out, 3 * n);
    assert_int_equal(fs.items_out, 3 * n);
    assert_int_equal(fs.items_in, n);
    assert_true(fs.activations >= 1);
    baton_graph_destroy(g);
}

/* On the path to an ordered sink, what a filter drops is not something it emitted: items_out
 * counts what its function emitted, as it does off that path. */
static int drop_multiples_of_3(void *ctx, baton_item x, baton_emitter *out)
{
    (void)ctx;
    return x.u % 3 == 0 ? 0 : baton_emit(out, x);
}

static void test_stats_on_ordered_path(void **state)
{
    (void)state;
    size_t n = bt_scaled(10000, 300);
    uint64_t kept = n - (n + 2) / 3;
    for (int ordered = 0; ordered < 2; ordered++) {
        bt_range_source source;
        bt_range_init(&source, 0, n, 1, 0);
        uint64_t received = 0;
        baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
        int src = bt_graph_source(g, "numbers", bt_range_source_fn, &source, 1);
        int filter = bt_graph_map(g, "filter", drop_multiples_of_3, NULL, 1);
        int actor = bt_graph_stateful(g, "actor", pass_map, NULL, 1);
        baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "sink");
        cfg.sink = counting_sink;
        cfg.ctx = &received;
        cfg.flags = ordered ? BATON_NODE_ORDERED : 0;
        int sink = bt_graph_add(g, &cfg);
        bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, filter, actor, sink}, 4), 0);
        bt_graph_run_ok(g, g_pool,
                        ordered ? "filter before an ordered sink" : "filter before a sink");
        assert_int_equal(received, kept);
        baton_node_stats fs = bt_node_stats(g, filter), as = bt_node_stats(g, actor),
                         ss = bt_node_stats(g, sink);
        printf("# %s: filter in %llu out %llu, actor in %llu out %llu, sink in %llu\n",
               ordered ? "ordered" : "unordered", (unsigned long long)fs.items_in,
               (unsigned long long)fs.items_out, (unsigned long long)as.items_in,
               (unsigned long long)as.items_out, (unsigned long long)ss.items_in);
        assert_int_equal(fs.items_in, n);
        assert_int_equal(fs.items_out, kept);
        assert_int_equal(as.items_in, kept);
        assert_int_equal(as.items_out, kept);
        assert_int_equal(ss.items_in, kept);
        baton_graph_destroy(g);
    }
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_emit),
        cmocka_unit_test(test_default_max_emit),
        cmocka_unit_test(test_stats_and_rerun),
        cmocka_unit_test(test_fanout_and_merge_statistics),
        cmocka_unit_test(test_stats_on_ordered_path),
    };
    return cmocka_run_group_tests_name("graph/emit", tests, group_setup, group_teardown);
}
