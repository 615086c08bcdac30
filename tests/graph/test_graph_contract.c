/*
 * test_graph_contract.c — promises of graph.h about building a graph that the other graph tests
 * did not pin down, written from the header's wording:
 *  - names: a NULL name is "node<id>", and names are unique, so no explicit name may take the
 *    form node<N> of another id (or a node added later without a name could not be added); an
 *    empty name is refused;
 *  - configs: an unknown input policy, and BATON_INPUT_REJECT on a source, are refused;
 *    struct_size smaller than this version's (an older caller) is read only that far, one that
 *    cannot even hold struct_size is refused, and so is one larger than this version's, naming
 *    the value; a fanout's max_emit is ignored, and so are a
 *    merge's and a sink's (a merge with max_emit 2 may feed an ordered sink);
 *  - defaults of a zeroed graph_config: edges of 1024 items (connect accepts a max_emit of 1024
 *    at capacity 0, and at most 1024 items wait on such an edge), batches of at most 32 items;
 *  - connect_path with 0 or 1 nodes, and with NULL nodes;
 *  - statistics are all zero before the first run.
 * Runs on a pool of --workers workers.
 */
#include "support/bt_common.h"

#include "support/bt_graph.h"

#include <limits.h>
#include <stddef.h>

BT_DEFINE_POOL_GROUP()

/* ---- names and configurations ---------------------------------------------------------------- */

static void test_default_names_stay_unique(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    /* "node1" is the name of the node of id 1 if it is added without one: no other node may
     * take it, or that node could never be added. */
    bt_assert_rc(baton_graph_merge(g, "node1"), BATON_EINVAL);
    bt_assert_contains(baton_last_error_message(), "node1");
    bt_assert_rc(baton_graph_merge(g, "node007"), BATON_EINVAL);
    bt_assert_rc(baton_graph_merge(g, ""), BATON_EINVAL);
    assert_int_equal(baton_graph_node_count(g), 0);
    /* Its own default name, given explicitly, is the same as none. */
    assert_int_equal(bt_graph_merge(g, "node0"), 0);
    assert_int_equal(baton_graph_merge(g, NULL), 1);
    assert_string_equal(baton_graph_node_name(g, 1), "node1");
    bt_assert_rc(baton_graph_merge(g, "node1"), BATON_EINVAL);
    /* Names that only look alike are names like any other. */
    assert_int_equal(bt_graph_merge(g, "node"), 2);
    assert_int_equal(bt_graph_merge(g, "node1x"), 3);
    assert_int_equal(bt_graph_merge(g, "Node5"), 4);
    assert_int_equal(baton_graph_merge(g, NULL), 5);
    assert_string_equal(baton_graph_node_name(g, 5), "node5");
    baton_graph_destroy(g);
}

static void test_unknown_input_policy(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "odd policy");
    cfg.sink = bt_drop_sink;
    const int policies[] = {2, -1, 100};
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
        cfg.input = (baton_input_policy)policies[i];
        bt_assert_rc(baton_graph_add(g, &cfg), BATON_EINVAL);
        char value[16];
        snprintf(value, sizeof value, "%d", policies[i]);
        bt_assert_contains(baton_last_error_message(), value);
        assert_int_equal(baton_graph_node_count(g), 0);
    }
    cfg.input = BATON_INPUT_REJECT;
    assert_int_equal(bt_graph_add(g, &cfg), 0);
    /* A source has no input to reject. */
    baton_node_config src = bt_node_config(BATON_NODE_SOURCE, "rejecting source");
    src.source = bt_end_source;
    src.input = BATON_INPUT_REJECT;
    bt_assert_rc(baton_graph_add(g, &src), BATON_EINVAL);
    bt_assert_contains(baton_last_error_message(), "rejecting source");
    assert_int_equal(baton_graph_node_count(g), 1);
    baton_graph_destroy(g);
}

static void test_struct_size_versions(void **state)
{
    (void)state;
    baton_graph *g = (baton_graph *)(uintptr_t)0x99;
    /* Too small to hold struct_size itself: not a version of the struct. */
    baton_graph_config config = bt_graph_config(0, 0, NULL, NULL);
    config.struct_size = 1;
    bt_assert_rc(baton_graph_create(&config, &g), BATON_EINVAL);
    assert_true(g == (baton_graph *)(uintptr_t)0x99);
    /* An older caller's struct that ends before `batch`: its fields count, the rest default. */
    config = bt_graph_config(16, 7, NULL, NULL);
    config.struct_size = offsetof(baton_graph_config, batch);
    bt_assert_rc(baton_graph_create(&config, &g), 0);
    int src = baton_graph_source(g, "s", bt_end_source, NULL);
    baton_node_config wide = bt_node_config(BATON_NODE_MAP, "wide");
    wide.map = bt_pass_map;
    wide.max_emit = 17;
    int map = bt_graph_add(g, &wide);
    bt_graph_connect(g, src, map, 0);
    int sink = bt_graph_sink(g, "k", bt_drop_sink, NULL);
    /* edge_capacity (16, inside the old struct) applies: max_emit 17 does not fit. */
    bt_assert_rc(baton_graph_connect(g, map, sink, 0), BATON_EINVAL);
    bt_graph_connect(g, map, sink, 17);
    bt_graph_run_ok(g, g_pool, "old graph_config");
    baton_graph_destroy(g);

    g = bt_graph_create(0, 0, NULL, NULL);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "tiny");
    cfg.sink = bt_drop_sink;
    cfg.struct_size = 1;
    bt_assert_rc(baton_graph_add(g, &cfg), BATON_EINVAL);
    assert_int_equal(baton_graph_node_count(g), 0);
    /* An older node_config that ends before `flags`: accepted, flags taken as 0. */
    cfg.struct_size = offsetof(baton_node_config, flags);
    cfg.flags = 0x80; /* outside the caller's struct: must not be read */
    assert_int_equal(bt_graph_add(g, &cfg), 0);
    baton_graph_destroy(g);
}

static int graph_try_struct_size(size_t struct_size, bool *created, void *ctx)
{
    (void)ctx;
    baton_graph_config config = bt_graph_config(0, 0, NULL, NULL);
    config.struct_size = struct_size;
    baton_graph *g = NULL;
    int rc = baton_graph_create(&config, &g);
    if (g != NULL) {
        *created = true;
        baton_graph_destroy(g);
    }
    return rc;
}

/* Adds a sink named by default to the graph ctx; it made something when the node count grew. */
static int node_try_struct_size(size_t struct_size, bool *created, void *ctx)
{
    baton_graph *g = ctx;
    unsigned before = baton_graph_node_count(g);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, NULL);
    cfg.sink = bt_drop_sink;
    cfg.struct_size = struct_size;
    int rc = baton_graph_add(g, &cfg);
    *created = baton_graph_node_count(g) != before;
    return rc < 0 ? rc : 0;
}

/* graph.h's struct_size sentence, for both structs: 0 and this header's size work, larger or
 * shorter than a size_t is BATON_EINVAL with nothing made (test_struct_size_versions: older
 * structs). */
static void test_struct_size_rule(void **state)
{
    (void)state;
    bt_check_struct_size("baton_graph_config", sizeof(baton_graph_config), graph_try_struct_size,
                         NULL);
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    bt_check_struct_size("baton_node_config", sizeof(baton_node_config), node_try_struct_size, g);
    baton_graph_destroy(g);
}

static void test_fanout_max_emit_ignored(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    bt_range_source src_state;
    bt_range_init(&src_state, 0, 100, 1, 0);
    bt_count_sink a, b;
    bt_count_sink_init(&a, 0, 100);
    bt_count_sink_init(&b, 0, 100);
    int src = bt_graph_source(g, "src", bt_range_source_fn, &src_state, 1);
    baton_node_config cfg = bt_node_config(BATON_NODE_FANOUT, "fan");
    cfg.max_emit = BATON_GRAPH_MAX_EMIT + 1; /* graph.h: "(FANOUT: ignored)" */
    int fan = bt_graph_add(g, &cfg);
    int ka = bt_graph_sink(g, "a", bt_count_sink_fn, &a),
        kb = bt_graph_sink(g, "b", bt_count_sink_fn, &b);
    bt_graph_connect(g, src, fan, 1);
    bt_graph_connect(g, fan, ka, 1); /* a fanout emits one item per item on each edge */
    bt_graph_connect(g, fan, kb, 1);
    bt_graph_run_ok(g, g_pool, "fanout with max_emit above the maximum");
    bt_count_sink_assert_all(&a);
    bt_count_sink_assert_all(&b);
    free(a.seen);
    free(b.seen);
    baton_graph_destroy(g);

    /* A merge forwards one item per item, whatever max_emit says: an ordered sink behind it is
     * fed one item per item, and an edge of capacity 1 is enough. */
    g = bt_graph_create(0, 0, NULL, NULL);
    bt_range_init(&src_state, 0, 100, 1, 0);
    bt_count_sink_init(&a, 0, 100);
    src = bt_graph_source(g, "src", bt_range_source_fn, &src_state, 1);
    cfg = bt_node_config(BATON_NODE_MERGE, "merge");
    cfg.max_emit = 2;
    int merge = bt_graph_add(g, &cfg);
    cfg = bt_node_config(BATON_NODE_SINK, "ordered");
    cfg.sink = bt_count_sink_fn;
    cfg.ctx = &a;
    cfg.flags = BATON_NODE_ORDERED;
    cfg.max_emit = BATON_GRAPH_MAX_EMIT + 1; /* a sink emits nothing: ignored too */
    ka = bt_graph_add(g, &cfg);
    bt_graph_connect(g, src, merge, 1);
    bt_graph_connect(g, merge, ka, 1);
    bt_graph_run_ok(g, g_pool, "merge with max_emit 2 before an ordered sink");
    bt_count_sink_assert_all(&a);
    free(a.seen);
    baton_graph_destroy(g);
}

/* ---- defaults of a zeroed graph_config ------------------------------------------------------- */

typedef struct window_probe {
    atomic_ullong emitted, consumed;
    atomic_ullong worst; /* most items emitted and not yet consumed, seen at any call */
    uint64_t end;
} window_probe;

static int probe_source(void *state, baton_emitter *out)
{
    window_probe *p = state;
    uint64_t next = atomic_load(&p->emitted);
    if (next >= p->end)
        return BATON_GRAPH_END;
    int rc = baton_emit(out, baton_item_int((int64_t)next));
    BT_CHECK(rc == 0);
    atomic_store(&p->emitted, next + 1);
    return 0;
}

static void note_outstanding(window_probe *p)
{
    uint64_t outstanding = atomic_load(&p->emitted) - atomic_load(&p->consumed);
    uint64_t worst = atomic_load(&p->worst);
    while (outstanding > worst && !atomic_compare_exchange_weak(&p->worst, &worst, outstanding)) {
    }
}

static int probe_sink(void *state, baton_item item)
{
    window_probe *p = state;
    (void)item;
    note_outstanding(p);
    atomic_fetch_add(&p->consumed, 1);
    return 0;
}

static void test_zeroed_config_defaults(void **state)
{
    (void)state;
    baton_graph_config zero;
    memset(&zero, 0, sizeof zero);
    baton_graph *g = NULL;
    bt_assert_rc(baton_graph_create(&zero, &g), 0);
    /* Capacity 0 is the default 1024: enough for a max_emit of 1024. */
    baton_node_config cfg = bt_node_config(BATON_NODE_MAP, "emits 1024");
    cfg.map = bt_pass_map;
    cfg.max_emit = BATON_GRAPH_MAX_EMIT;
    int wide = bt_graph_add(g, &cfg);
    int sink = bt_graph_sink(g, "sink", bt_drop_sink, NULL);
    bt_graph_connect(g, wide, sink, 0);
    baton_graph_destroy(g);

    /* An edge of capacity 0 holds at most 1024 items; batches hold at most 32 items. */
    size_t n = bt_scaled(20000, 3000);
    window_probe probe;
    atomic_init(&probe.emitted, 0);
    atomic_init(&probe.consumed, 0);
    atomic_init(&probe.worst, 0);
    probe.end = n;
    bt_assert_rc(baton_graph_create(&zero, &g), 0);
    int src = bt_graph_source(g, "src", probe_source, &probe, 1);
    sink = bt_graph_sink(g, "sink", probe_sink, &probe);
    bt_graph_connect(g, src, sink, 0);
    bt_graph_run_ok(g, g_pool, "zeroed config");
    assert_int_equal(atomic_load(&probe.consumed), n);
    if (atomic_load(&probe.worst) > 1024)
        fail_msg("%llu items waited on an edge of the default capacity (1024)",
                 (unsigned long long)atomic_load(&probe.worst));
    baton_node_stats st = bt_node_stats(g, sink);
    assert_int_equal(st.items_in, n);
    if (st.activations * 32 < st.items_in)
        fail_msg("%llu items in %llu batches: more than the default 32 per batch",
                 (unsigned long long)st.items_in, (unsigned long long)st.activations);
    baton_graph_destroy(g);

    /* batch = 1: one item per activation. */
    g = bt_graph_create(0, 1, NULL, NULL);
    atomic_store(&probe.emitted, 0);
    atomic_store(&probe.consumed, 0);
    probe.end = 500;
    src = bt_graph_source(g, "src", probe_source, &probe, 1);
    sink = bt_graph_sink(g, "sink", probe_sink, &probe);
    bt_graph_connect(g, src, sink, 0);
    bt_graph_run_ok(g, g_pool, "batch 1");
    st = bt_node_stats(g, sink);
    assert_int_equal(st.items_in, 500);
    assert_int_equal(st.activations, 500);
    baton_graph_destroy(g);
}

/* ---- connect_path's edges ---------------------------------------------------------------------
 */

static void test_connect_path_small(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "src", bt_end_source, NULL, 1);
    int sink = bt_graph_sink(g, "sink", bt_drop_sink, NULL);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src}, 0), 0);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src}, 1), 0);
    bt_assert_rc(baton_graph_connect_path(g, NULL, 0), 0);
    bt_assert_rc(baton_graph_connect_path(g, NULL, 2), BATON_EINVAL);
    bt_assert_rc(baton_graph_connect_path(g, NULL, 1), BATON_EINVAL);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, sink}, 2), 0);
    bt_graph_run_ok(g, g_pool, "path of two");
    baton_graph_destroy(g);
}

/* ---- statistics before a run ----------------------------------------------------------------- */

static void test_stats_zero_before_run(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "src", bt_end_source, NULL, 1);
    int sink = bt_graph_sink(g, "sink", bt_drop_sink, NULL);
    bt_graph_connect(g, src, sink, 0);
    const baton_node_stats zero = {0, 0, 0, 0, 0, 0};
    for (int id = src; id <= sink; id++) {
        baton_node_stats st = bt_node_stats(g, id);
        assert_memory_equal(&st, &zero, sizeof st);
    }
    baton_graph_destroy(g);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_names_stay_unique),
        cmocka_unit_test(test_unknown_input_policy),
        cmocka_unit_test(test_struct_size_versions),
        cmocka_unit_test(test_struct_size_rule),
        cmocka_unit_test(test_fanout_max_emit_ignored),
        cmocka_unit_test(test_zeroed_config_defaults),
        cmocka_unit_test(test_connect_path_small),
        cmocka_unit_test(test_stats_zero_before_run),
    };
    return cmocka_run_group_tests_name("graph/contract", tests, group_setup, group_teardown);
}
