/*
 * test_graph_build.c — what building and starting a graph refuses (graph.h), on one pool:
 *  - create: NULL out, struct_size too large, batch and edge_capacity above their maxima
 *    (BATON_EINVAL); the maxima themselves and a NULL config work;
 *  - add: every BATON_EINVAL case of graph.h (NULL arguments, unknown kind, missing or foreign
 *    functions, concurrency of sources and stateful nodes, BATON_NODE_ORDERED misuse, max_emit,
 *    names too long or used twice, unknown flags, struct_size), BATON_ERANGE past
 *    BATON_GRAPH_MAX_NODES; on error the graph is unchanged; ids count up; names are copied,
 *    NULL names are "node<id>";
 *  - connect: bad ids (and the result of a failed add), edges into a source or out of a sink, a
 *    second successor for a node other than a fanout, a repeated edge, capacities out of range
 *    or below max_emit, cycles (the message names the nodes); connect_path stops at the first
 *    error and keeps the edges before it;
 *  - run: BATON_EINVAL with a message naming the node for a graph with no source, a node with
 *    no predecessor or no successor, a by-reference fanout in a graph with a release function,
 *    an ordered sink fed by two paths or through a node that may emit several items per item;
 *    a graph that failed these checks can be completed and run;
 *  - after a run: add and connect are BATON_EPERM; a node function that runs its own graph gets
 *    BATON_EBUSY; statistics and names of ids that are not nodes are refused.
 */
#include "support/bt_common.h"

#include "support/bt_graph.h"

BT_DEFINE_POOL_GROUP()

/* Functions that are never meant to run, or do the least. */
static int noop_source(void *state, baton_emitter *out)
{
    (void)state;
    (void)out;
    return BATON_GRAPH_END;
}

static int noop_map(void *ctx, baton_item item, baton_emitter *out)
{
    (void)ctx;
    return baton_emit(out, item);
}

static int noop_sink(void *state, baton_item item)
{
    (void)state;
    (void)item;
    return 0;
}

static int noop_copy(void *ctx, baton_item item, baton_item *copy)
{
    (void)ctx;
    *copy = item;
    return 0;
}

static void noop_release(void *ctx, baton_item item)
{
    (void)ctx;
    (void)item;
}

/* Expects `call` to fail with `expected` and leave the graph's node count as it was. */
#define expect_add_error(graph, call, expected)                                                  \
    do {                                                                                         \
        unsigned count_before_ = baton_graph_node_count(graph);                                  \
        bt_assert_rc((call), (expected));                                                        \
        assert_int_equal(baton_graph_node_count(graph), count_before_);                          \
    } while (0)

/* ---- create ---------------------------------------------------------------------------------- */

static void test_create_errors(void **state)
{
    (void)state;
    baton_graph *g = (baton_graph *)(uintptr_t)0x1234;
    bt_assert_rc(baton_graph_create(NULL, NULL), BATON_EINVAL);
    baton_graph_config config = bt_graph_config(0, 0, NULL, NULL);
    bt_assert_rc(baton_graph_create(&config, NULL), BATON_EINVAL);

    config.struct_size = sizeof config + 8;
    bt_assert_rc(baton_graph_create(&config, &g), BATON_EINVAL);
    config = bt_graph_config(0, BATON_GRAPH_MAX_BATCH + 1, NULL, NULL);
    bt_assert_rc(baton_graph_create(&config, &g), BATON_EINVAL);
    config = bt_graph_config((size_t)BATON_GRAPH_MAX_CAPACITY + 1, 0, NULL, NULL);
    bt_assert_rc(baton_graph_create(&config, &g), BATON_EINVAL);
    assert_true(g == (baton_graph *)(uintptr_t)0x1234);

    /* The limits themselves, struct_size 0 and a NULL config are fine. */
    config = bt_graph_config((size_t)BATON_GRAPH_MAX_CAPACITY, BATON_GRAPH_MAX_BATCH, NULL, NULL);
    config.struct_size = 0;
    bt_assert_rc(baton_graph_create(&config, &g), 0);
    assert_int_equal(baton_graph_node_count(g), 0);
    baton_graph_destroy(g);
    bt_assert_rc(baton_graph_create(NULL, &g), 0);
    baton_graph_destroy(g);
    baton_graph_destroy(NULL);
    assert_int_equal(baton_graph_node_count(NULL), 0);
    assert_null(baton_graph_node_name(NULL, 0));
}

/* ---- add ------------------------------------------------------------------------------------- */

static void test_add_errors(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    baton_node_config cfg = bt_node_config(BATON_NODE_MAP, "m");
    cfg.map = noop_map;
    bt_assert_rc(baton_graph_add(NULL, &cfg), BATON_EINVAL);
    expect_add_error(g, baton_graph_add(g, NULL), BATON_EINVAL);

    cfg.kind = (baton_node_kind)99;
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);

    /* The kind's function missing. */
    const baton_node_kind needs_fn[] = {BATON_NODE_SOURCE, BATON_NODE_MAP, BATON_NODE_STATEFUL,
                                        BATON_NODE_SINK};
    for (size_t k = 0; k < 4; k++) {
        cfg = bt_node_config(needs_fn[k], "no function");
        expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);
    }
    /* A function the kind does not use (on top of the one it needs). */
    struct {
        baton_node_kind kind;
        baton_source_fn source;
        baton_map_fn map;
        baton_sink_fn sink;
        baton_copy_fn copy;
    } foreign[] = {
        {BATON_NODE_SOURCE, noop_source, noop_map, NULL, NULL},
        {BATON_NODE_SOURCE, noop_source, NULL, noop_sink, NULL},
        {BATON_NODE_MAP, NULL, noop_map, noop_sink, NULL},
        {BATON_NODE_MAP, noop_source, noop_map, NULL, NULL},
        {BATON_NODE_MAP, NULL, noop_map, NULL, noop_copy},
        {BATON_NODE_STATEFUL, NULL, noop_map, noop_sink, NULL},
        {BATON_NODE_STATEFUL, NULL, noop_map, NULL, noop_copy},
        {BATON_NODE_FANOUT, NULL, noop_map, NULL, noop_copy},
        {BATON_NODE_FANOUT, noop_source, NULL, NULL, NULL},
        {BATON_NODE_MERGE, NULL, noop_map, NULL, NULL},
        {BATON_NODE_MERGE, NULL, NULL, NULL, noop_copy},
        {BATON_NODE_SINK, NULL, noop_map, noop_sink, NULL},
        {BATON_NODE_SINK, NULL, NULL, noop_sink, noop_copy},
    };
    for (size_t k = 0; k < sizeof foreign / sizeof foreign[0]; k++) {
        cfg = bt_node_config(foreign[k].kind, "foreign");
        cfg.source = foreign[k].source;
        cfg.map = foreign[k].map;
        cfg.sink = foreign[k].sink;
        cfg.copy = foreign[k].copy;
        int rc = baton_graph_add(g, &cfg);
        if (rc != BATON_EINVAL)
            fail_msg("case %zu (kind %d with a function it does not use): %s", k,
                     (int)foreign[k].kind, baton_err_name(rc));
        assert_int_equal(baton_graph_node_count(g), 0);
    }

    /* Sources and stateful nodes are serial. */
    cfg = bt_node_config(BATON_NODE_SOURCE, "parallel source");
    cfg.source = noop_source;
    cfg.concurrency = 2;
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);
    cfg.concurrency = BATON_CONCURRENCY_UNLIMITED;
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);
    cfg = bt_node_config(BATON_NODE_STATEFUL, "parallel actor");
    cfg.map = noop_map;
    cfg.concurrency = 2;
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);

    /* BATON_NODE_ORDERED: sinks only, and serial ones. */
    cfg = bt_node_config(BATON_NODE_MAP, "ordered map");
    cfg.map = noop_map;
    cfg.flags = BATON_NODE_ORDERED;
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);
    cfg = bt_node_config(BATON_NODE_SINK, "ordered parallel sink");
    cfg.sink = noop_sink;
    cfg.flags = BATON_NODE_ORDERED;
    cfg.concurrency = 2;
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);
    cfg.concurrency = BATON_CONCURRENCY_UNLIMITED;
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);

    /* max_emit, flags, struct_size. */
    cfg = bt_node_config(BATON_NODE_MAP, "too many");
    cfg.map = noop_map;
    cfg.max_emit = BATON_GRAPH_MAX_EMIT + 1;
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);
    cfg = bt_node_config(BATON_NODE_SINK, "odd flags");
    cfg.sink = noop_sink;
    cfg.flags = 0x2;
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);
    cfg = bt_node_config(BATON_NODE_SINK, "future struct");
    cfg.sink = noop_sink;
    cfg.struct_size = sizeof cfg + 8;
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);

    /* Names: at most 63 bytes, copied, unique. */
    char name[80];
    memset(name, 'n', 64);
    name[64] = '\0';
    cfg = bt_node_config(BATON_NODE_MERGE, name);
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL);
    name[63] = '\0';
    int long_name = bt_graph_add(g, &cfg);
    assert_int_equal(long_name, 0);
    name[0] = 'X'; /* copied: changing the caller's buffer changes nothing */
    assert_int_equal(strlen(baton_graph_node_name(g, long_name)), 63);
    assert_int_equal(baton_graph_node_name(g, long_name)[0], 'n');
    name[0] = 'n';
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EINVAL); /* used */
    expect_add_error(g, baton_graph_merge(g, name), BATON_EINVAL);

    /* What works: the limits, explicit 1, shorthands; ids count on from where errors left. */
    cfg = bt_node_config(BATON_NODE_MAP, "wide");
    cfg.map = noop_map;
    cfg.max_emit = BATON_GRAPH_MAX_EMIT;
    cfg.concurrency = BATON_CONCURRENCY_UNLIMITED;
    assert_int_equal(bt_graph_add(g, &cfg), 1);
    cfg = bt_node_config(BATON_NODE_SOURCE, NULL);
    cfg.source = noop_source;
    cfg.concurrency = 1;
    assert_int_equal(bt_graph_add(g, &cfg), 2);
    assert_string_equal(baton_graph_node_name(g, 2), "node2");
    cfg = bt_node_config(BATON_NODE_SINK, "ordered");
    cfg.sink = noop_sink;
    cfg.flags = BATON_NODE_ORDERED;
    cfg.concurrency = 1;
    assert_int_equal(bt_graph_add(g, &cfg), 3);
    assert_int_equal(baton_graph_fanout(g, "by ref", NULL, NULL), 4);
    assert_int_equal(baton_graph_fanout(g, "copying", noop_copy, NULL), 5);
    assert_int_equal(baton_graph_stateful(g, NULL, noop_map, NULL), 6);
    assert_string_equal(baton_graph_node_name(g, 6), "node6");
    assert_int_equal(baton_graph_node_count(g), 7);

    /* Shorthands check what the full form checks. */
    expect_add_error(g, baton_graph_source(g, "s", NULL, NULL), BATON_EINVAL);
    expect_add_error(g, baton_graph_map(g, "m", NULL, NULL), BATON_EINVAL);
    expect_add_error(g, baton_graph_stateful(g, "a", NULL, NULL), BATON_EINVAL);
    expect_add_error(g, baton_graph_sink(g, "k", NULL, NULL), BATON_EINVAL);
    expect_add_error(g, baton_graph_sink(g, "wide", noop_sink, NULL), BATON_EINVAL);
    bt_assert_rc(baton_graph_merge(NULL, "x"), BATON_EINVAL);
    bt_assert_rc(baton_graph_source(NULL, "x", noop_source, NULL), BATON_EINVAL);

    /* Names of ids that are not nodes. */
    assert_null(baton_graph_node_name(g, -1));
    assert_null(baton_graph_node_name(g, 7));
    assert_null(baton_graph_node_name(g, BATON_EINVAL));
    baton_graph_destroy(g);
}

static void test_add_too_many(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    for (unsigned i = 0; i < BATON_GRAPH_MAX_NODES; i++) {
        int id = baton_graph_merge(g, NULL);
        if (id != (int)i)
            fail_msg("merge %u: %s: %s", i, baton_err_name(id), baton_last_error_message());
    }
    expect_add_error(g, baton_graph_merge(g, NULL), BATON_ERANGE);
    expect_add_error(g, baton_graph_sink(g, "one more", noop_sink, NULL), BATON_ERANGE);
    assert_int_equal(baton_graph_node_count(g), BATON_GRAPH_MAX_NODES);
    char expected[16];
    snprintf(expected, sizeof expected, "node%u", BATON_GRAPH_MAX_NODES - 1);
    assert_string_equal(baton_graph_node_name(g, (int)BATON_GRAPH_MAX_NODES - 1), expected);
    baton_graph_destroy(g);
}

/* ---- connect --------------------------------------------------------------------------------- */

static void test_connect_errors(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(2, 0, NULL, NULL);
    int src = bt_graph_source(g, "src", noop_source, NULL, 1);
    int src4 = bt_graph_source(g, "src4", noop_source, NULL, 4);
    int map = bt_graph_map(g, "the map", noop_map, NULL, 1);
    int actor = bt_graph_stateful(g, "the actor", noop_map, NULL, 1);
    int fan = bt_graph_fanout(g, "fan", NULL, NULL);
    int merge = bt_graph_merge(g, "the merge");
    int sink = bt_graph_sink(g, "the sink", noop_sink, NULL);
    int sink2 = bt_graph_sink(g, "other sink", noop_sink, NULL);
    int count = (int)baton_graph_node_count(g);

    bt_assert_rc(baton_graph_connect(NULL, src, map, 0), BATON_EINVAL);
    bt_assert_rc(baton_graph_connect(g, -1, map, 0), BATON_EINVAL);
    bt_assert_rc(baton_graph_connect(g, src, count, 0), BATON_EINVAL);
    bt_assert_rc(baton_graph_connect(g, src, 1000000, 0), BATON_EINVAL);
    /* The result of a failed add, passed on unchecked, is reported, not taken for a node. */
    int failed = baton_graph_map(g, "bad", NULL, NULL);
    assert_true(failed < 0);
    int rc = baton_graph_connect(g, src, failed, 0);
    assert_true(rc < 0);
    rc = baton_graph_connect(g, failed, sink, 0);
    assert_true(rc < 0);
    assert_true(baton_last_error_message()[0] != '\0');

    bt_assert_rc(baton_graph_connect(g, map, src, 0), BATON_EINVAL);  /* into a source */
    bt_assert_rc(baton_graph_connect(g, sink, map, 0), BATON_EINVAL); /* out of a sink */
    bt_assert_rc(baton_graph_connect(g, sink, sink2, 0), BATON_EINVAL);

    /* Capacities: above the maximum, below the producer's max_emit (given, or the graph's
     * default of 2 when 0 is given). */
    bt_assert_rc(baton_graph_connect(g, src, map, (size_t)BATON_GRAPH_MAX_CAPACITY + 1),
                 BATON_EINVAL);
    bt_assert_rc(baton_graph_connect(g, src4, merge, 3), BATON_EINVAL);
    bt_assert_contains(baton_last_error_message(), "src4");
    bt_assert_rc(baton_graph_connect(g, src4, merge, 0), BATON_EINVAL);
    bt_graph_connect(g, src4, merge, 4);

    /* One successor for everything but a fanout; no edge twice. */
    bt_graph_connect(g, src, map, 0);
    bt_assert_rc(baton_graph_connect(g, src, sink, 0), BATON_EINVAL);
    bt_assert_contains(baton_last_error_message(), "src");
    bt_graph_connect(g, map, actor, 0);
    bt_assert_rc(baton_graph_connect(g, map, sink, 0), BATON_EINVAL);
    bt_assert_contains(baton_last_error_message(), "the map");
    bt_graph_connect(g, actor, fan, 1);
    bt_assert_rc(baton_graph_connect(g, actor, sink2, 0), BATON_EINVAL);
    bt_assert_contains(baton_last_error_message(), "the actor");
    bt_graph_connect(g, merge, sink, 0);
    bt_assert_rc(baton_graph_connect(g, merge, sink2, 0), BATON_EINVAL);
    bt_assert_contains(baton_last_error_message(), "the merge");
    bt_graph_connect(g, fan, sink, 1);
    bt_graph_connect(g, fan, sink2, 0);
    bt_assert_rc(baton_graph_connect(g, fan, sink, 0), BATON_EINVAL); /* again */

    /* Every error above left the graph as it was: it runs, complete. */
    bt_graph_run_ok(g, g_pool, "graph after connect errors");
    baton_graph_destroy(g);

    /* The largest capacity is accepted (not run: its ring would take gigabytes). */
    g = bt_graph_create(0, 0, NULL, NULL);
    src = bt_graph_source(g, "src", noop_source, NULL, 1);
    sink = bt_graph_sink(g, "sink", noop_sink, NULL);
    bt_graph_connect(g, src, sink, (size_t)BATON_GRAPH_MAX_CAPACITY);
    baton_graph_destroy(g);
}

static void test_cycles(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "src", noop_source, NULL, 1);
    int merge = bt_graph_merge(g, "loop head");
    int a = bt_graph_map(g, "loop body", noop_map, NULL, 1);
    int fan = bt_graph_fanout(g, "loop tail", NULL, NULL);
    int sink = bt_graph_sink(g, "sink", noop_sink, NULL);
    int self = bt_graph_merge(g, "self");

    /* A node to itself. */
    bt_assert_rc(baton_graph_connect(g, self, self, 0), BATON_EINVAL);
    bt_assert_contains(baton_last_error_message(), "self");

    /* src -> merge -> map -> fanout -> sink, and fanout -> merge would close a loop. */
    bt_graph_connect(g, src, merge, 0);
    bt_graph_connect(g, merge, a, 0);
    bt_graph_connect(g, a, fan, 0);
    bt_graph_connect(g, fan, sink, 0);
    bt_assert_rc(baton_graph_connect(g, fan, merge, 0), BATON_EINVAL);
    const char *msg = baton_last_error_message();
    bt_assert_contains(msg, "loop head");
    bt_assert_contains(msg, "loop tail");
    bt_assert_rc(baton_graph_connect(g, fan, a, 0), BATON_EINVAL);
    bt_assert_contains(baton_last_error_message(), "loop body");

    /* The refused edges are not there: self is still unconnected, the rest runs once self is
     * fed and drained. */
    int src2 = bt_graph_source(g, "src2", noop_source, NULL, 1);
    bt_graph_connect(g, src2, self, 0);
    bt_graph_connect(g, self, sink, 0);
    bt_graph_run_ok(g, g_pool, "graph after refused cycles");
    baton_graph_destroy(g);
}

static void test_connect_path(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "src", noop_source, NULL, 1);
    int a = bt_graph_map(g, "a", noop_map, NULL, 1);
    int src2 = bt_graph_source(g, "src2", noop_source, NULL, 1);
    int b = bt_graph_map(g, "b", noop_map, NULL, 1);
    int sink = bt_graph_sink(g, "sink", noop_sink, NULL);
    bt_assert_rc(baton_graph_connect_path(NULL, (const int[]){src, a}, 2), BATON_EINVAL);
    /* src -> a is made, a -> src2 is refused, b is never reached. */
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, a, src2, b}, 4), BATON_EINVAL);
    bt_assert_rc(baton_graph_connect(g, src, a, 0), BATON_EINVAL); /* exists */
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src2, b, sink}, 3), 0);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){a, sink}, 2), 0);
    bt_graph_run_ok(g, g_pool, "connect_path");
    baton_graph_destroy(g);
}

/* ---- what run checks ------------------------------------------------------------------------- */

static void expect_run_einval(baton_graph *g, const char *name, const char *other_name)
{
    int rc = bt_graph_run(g, g_pool, "validation");
    const char *msg = baton_last_error_message();
    if (rc != BATON_EINVAL)
        fail_msg("run of an invalid graph (%s): %s, message \"%s\"", name, baton_err_name(rc),
                 msg);
    assert_true(msg[0] != '\0');
    if (strstr(msg, name) == NULL && (other_name == NULL || strstr(msg, other_name) == NULL))
        fail_msg("the message \"%s\" names neither \"%s\" nor \"%s\"", msg, name,
                 other_name ? other_name : "-");
    printf("# refused: %s\n", msg);
}

static void test_run_validation(void **state)
{
    (void)state;
    /* No source at all. */
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    bt_assert_rc(bt_graph_run(g, g_pool, "empty graph"), BATON_EINVAL);
    assert_true(baton_last_error_message()[0] != '\0');
    int m = bt_graph_map(g, "lonely map", noop_map, NULL, 1);
    int k = bt_graph_sink(g, "lonely sink", noop_sink, NULL);
    bt_graph_connect(g, m, k, 0);
    expect_run_einval(g, "source", "lonely map");
    baton_graph_destroy(g);

    /* A node with no predecessor, then one with no successor; each fixed in turn. */
    g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "src", noop_source, NULL, 1);
    int sink = bt_graph_sink(g, "sink", noop_sink, NULL);
    bt_graph_connect(g, src, sink, 0);
    int orphan = bt_graph_map(g, "orphan map", noop_map, NULL, 1);
    bt_graph_connect(g, orphan, sink, 0);
    expect_run_einval(g, "orphan map", NULL);
    int src2 = bt_graph_source(g, "src2", noop_source, NULL, 1);
    bt_graph_connect(g, src2, orphan, 0);
    int dead_end = bt_graph_map(g, "dead end", noop_map, NULL, 1);
    int src3 = bt_graph_source(g, "src3", noop_source, NULL, 1);
    bt_graph_connect(g, src3, dead_end, 0);
    expect_run_einval(g, "dead end", NULL);
    int fan = bt_graph_fanout(g, "fan", NULL, NULL);
    bt_graph_connect(g, dead_end, fan, 0);
    expect_run_einval(g, "fan", NULL); /* a fanout with no successor */
    baton_graph_destroy(g);

    /* A by-reference fanout where there is a release function. */
    g = bt_graph_create(0, 0, noop_release, NULL);
    src = bt_graph_source(g, "src", noop_source, NULL, 1);
    fan = bt_graph_fanout(g, "shared fan", NULL, NULL);
    int s1 = bt_graph_sink(g, "s1", noop_sink, NULL), s2 = bt_graph_sink(g, "s2", noop_sink, NULL);
    bt_graph_connect(g, src, fan, 0);
    bt_graph_connect(g, fan, s1, 0);
    bt_graph_connect(g, fan, s2, 0);
    expect_run_einval(g, "shared fan", NULL);
    baton_graph_destroy(g);

    /* An ordered sink fed by two paths: through a fanout and a merge, or from two sources. */
    baton_node_config ordered = bt_node_config(BATON_NODE_SINK, "ordered sink");
    ordered.sink = noop_sink;
    ordered.flags = BATON_NODE_ORDERED;
    g = bt_graph_create(0, 0, NULL, NULL);
    src = bt_graph_source(g, "src", noop_source, NULL, 1);
    fan = bt_graph_fanout(g, "fan", noop_copy, NULL);
    int left = bt_graph_map(g, "left", noop_map, NULL, 1),
        right = bt_graph_map(g, "right", noop_map, NULL, 1);
    int merge = bt_graph_merge(g, "merge");
    int osink = bt_graph_add(g, &ordered);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, fan, left, merge, osink}, 5), 0);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){fan, right, merge}, 3), 0);
    expect_run_einval(g, "ordered sink", NULL);
    baton_graph_destroy(g);

    g = bt_graph_create(0, 0, NULL, NULL);
    src = bt_graph_source(g, "src", noop_source, NULL, 1);
    src2 = bt_graph_source(g, "src2", noop_source, NULL, 1);
    osink = bt_graph_add(g, &ordered);
    bt_graph_connect(g, src, osink, 0);
    bt_graph_connect(g, src2, osink, 0);
    expect_run_einval(g, "ordered sink", NULL);
    baton_graph_destroy(g);

    /* An ordered sink behind a node that may emit two items per item. */
    g = bt_graph_create(0, 0, NULL, NULL);
    src = bt_graph_source(g, "src", noop_source, NULL, 1);
    int flat = bt_graph_map(g, "flat map", noop_map, NULL, 2);
    osink = bt_graph_add(g, &ordered);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, flat, osink}, 3), 0);
    expect_run_einval(g, "ordered sink", "flat map");
    baton_graph_destroy(g);
}

/* A graph refused by run's checks is not frozen: completing it makes it run. */
static void test_refused_graph_can_be_completed(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "src", noop_source, NULL, 1);
    int map = bt_graph_map(g, "unfinished", noop_map, NULL, 1);
    bt_graph_connect(g, src, map, 0);
    expect_run_einval(g, "unfinished", NULL);
    int sink = bt_graph_sink(g, "added after the refusal", noop_sink, NULL);
    bt_graph_connect(g, map, sink, 0);
    bt_graph_run_ok(g, g_pool, "completed graph");
    baton_graph_destroy(g);
}

/* ---- after a run ----------------------------------------------------------------------------- */

typedef struct reentry {
    baton_graph *graph;
    baton_pool *pool;
    atomic_int rc;
    atomic_int calls;
} reentry;

static int reentrant_sink(void *state, baton_item item)
{
    (void)item;
    reentry *r = state;
    if (atomic_fetch_add(&r->calls, 1) == 0)
        atomic_store(&r->rc, baton_graph_run(r->graph, r->pool));
    return 0;
}

typedef struct counter_source {
    int next, end;
} counter_source;

static int counter_source_fn(void *state, baton_emitter *out)
{
    counter_source *s = state;
    if (s->next >= s->end)
        return BATON_GRAPH_END;
    return baton_emit(out, baton_item_int(s->next++));
}

static void test_after_run(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    counter_source source = {0, 10};
    reentry r = {g, g_pool, 1, 0};
    int src = bt_graph_source(g, "src", counter_source_fn, &source, 1);
    int map = bt_graph_map(g, "map", noop_map, NULL, 1);
    int sink = bt_graph_sink(g, "sink", reentrant_sink, &r);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, map, sink}, 3), 0);

    bt_assert_rc(baton_graph_run(NULL, g_pool), BATON_EINVAL);
    bt_assert_rc(baton_graph_run(g, NULL), BATON_EINVAL);
    /* A node function that runs its own graph: BATON_EBUSY, at once. */
    bt_graph_run_ok(g, g_pool, "re-entrant run");
    assert_int_equal(atomic_load(&r.rc), BATON_EBUSY);
    assert_int_equal(atomic_load(&r.calls), 10);

    /* Frozen. */
    baton_node_config cfg = bt_node_config(BATON_NODE_MERGE, "late");
    expect_add_error(g, baton_graph_add(g, &cfg), BATON_EPERM);
    expect_add_error(g, baton_graph_merge(g, "late"), BATON_EPERM);
    expect_add_error(g, baton_graph_sink(g, "late sink", noop_sink, NULL), BATON_EPERM);
    bt_assert_rc(baton_graph_connect(g, src, sink, 0), BATON_EPERM);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, sink}, 2), BATON_EPERM);

    /* Statistics: refused for ids that are not nodes and NULL arguments. */
    baton_node_stats st;
    bt_assert_rc(baton_graph_node_stats(NULL, 0, &st), BATON_EINVAL);
    bt_assert_rc(baton_graph_node_stats(g, 0, NULL), BATON_EINVAL);
    bt_assert_rc(baton_graph_node_stats(g, -1, &st), BATON_EINVAL);
    bt_assert_rc(baton_graph_node_stats(g, 3, &st), BATON_EINVAL);
    st = bt_node_stats(g, sink);
    assert_int_equal(st.items_in, 10);

    /* It runs again (the source has ended: it is called once more and ends). */
    atomic_store(&r.calls, 0);
    bt_graph_run_ok(g, g_pool, "second run");
    assert_int_equal(atomic_load(&r.calls), 0);
    assert_int_equal(bt_node_stats(g, src).items_in, 1);
    assert_int_equal(bt_node_stats(g, sink).items_in, 0);
    baton_graph_destroy(g);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_add_errors),
        cmocka_unit_test(test_add_too_many),
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test(test_cycles),
        cmocka_unit_test(test_connect_path),
        cmocka_unit_test(test_run_validation),
        cmocka_unit_test(test_refused_graph_can_be_completed),
        cmocka_unit_test(test_after_run),
    };
    return cmocka_run_group_tests_name("graph/build", tests, group_setup, group_teardown);
}
