/*
 * test_graph_schedule.c — the scheduling order graph.h promises ("Ranks, highest first: user
 * priority, then serial nodes (stateful, sinks) before parallel ones, then sources last, so
 * consumers drain before a source is polled again"), checked where it is observable without
 * timing: on a pool of one worker, which runs one scheduler loop, so that of two nodes that are
 * ready together the one of the higher rank must run first.
 *
 *  - two sinks behind one fanout: the one with the higher priority consumes every item before
 *    the other does, whichever was added or connected first;
 *  - a serial sink (or a stateful node) and a parallel map behind one fanout, equal priority: the
 *    serial node takes every item first; with a higher priority the map does;
 *  - a source feeding a sink: with equal priority the source is not polled again while the sink
 *    has items, beyond one batch; with a higher priority it runs ahead.
 */
#include "support/bt_common.h"

#include "support/bt_graph.h"

static baton_pool *g_one; /* one worker */

static int group_setup(void **state)
{
    (void)state;
    baton_pool_config config = bt_pool_config(1, 0, 0);
    return baton_pool_create(&config, &g_one) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return baton_pool_destroy(g_one) == 0 ? 0 : -1;
}

/* Each consumer writes, per item, the tick of the shared clock at which it took it. */
typedef struct order_log {
    atomic_ullong *clock;
    uint64_t *tick; /* per item value; 0 = not seen */
    uint64_t n;
} order_log;

static void order_log_init(order_log *log, atomic_ullong *clock, uint64_t n)
{
    log->clock = clock;
    log->tick = calloc(n, sizeof *log->tick);
    assert_non_null(log->tick);
    log->n = n;
}

static void order_log_note(order_log *log, baton_item item)
{
    BT_CHECK(item.u < log->n);
    if (item.u < log->n)
        log->tick[item.u] = atomic_fetch_add(log->clock, 1) + 1;
}

static int log_sink(void *state, baton_item item)
{
    order_log_note(state, item);
    return 0;
}

static int log_map(void *ctx, baton_item item, baton_emitter *out)
{
    order_log_note(ctx, item);
    return baton_emit(out, item);
}

static int drop_sink(void *state, baton_item item)
{
    (void)state;
    (void)item;
    return 0;
}

/* Every item reached both logs, `first` before `second`. */
static void assert_first(const order_log *first, const order_log *second, const char *what)
{
    bt_assert_no_thread_failures();
    for (uint64_t k = 0; k < first->n; k++) {
        if (first->tick[k] == 0 || second->tick[k] == 0)
            fail_msg("%s: item %llu missing", what, (unsigned long long)k);
        if (first->tick[k] > second->tick[k])
            fail_msg("%s: item %llu was taken at tick %llu by the node that should come second, "
                     "at %llu by the one that should come first",
                     what, (unsigned long long)k, (unsigned long long)second->tick[k],
                     (unsigned long long)first->tick[k]);
    }
}

static void run_two_sinks(int priority_a, int priority_b)
{
    uint64_t n = bt_scaled(3000, 400);
    atomic_ullong clock;
    atomic_init(&clock, 0);
    order_log a, b;
    order_log_init(&a, &clock, n);
    order_log_init(&b, &clock, n);
    bt_range_source src_state;
    bt_range_init(&src_state, 0, n, 1, 0);
    baton_graph *g = bt_graph_create(64, 8, NULL, NULL);
    int src = bt_graph_source(g, "src", bt_range_source_fn, &src_state, 1);
    int fan = bt_graph_fanout(g, "fan", NULL, NULL);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "a");
    cfg.sink = log_sink;
    cfg.ctx = &a;
    cfg.priority = priority_a;
    int ka = bt_graph_add(g, &cfg);
    cfg = bt_node_config(BATON_NODE_SINK, "b");
    cfg.sink = log_sink;
    cfg.ctx = &b;
    cfg.priority = priority_b;
    int kb = bt_graph_add(g, &cfg);
    bt_graph_connect(g, src, fan, 0);
    bt_graph_connect(g, fan, ka, 0);
    bt_graph_connect(g, fan, kb, 0);
    bt_graph_run_ok(g, g_one, "two sinks");
    char what[64];
    snprintf(what, sizeof what, "priorities a=%d b=%d", priority_a, priority_b);
    if (priority_a > priority_b)
        assert_first(&a, &b, what);
    else
        assert_first(&b, &a, what);
    free(a.tick);
    free(b.tick);
    baton_graph_destroy(g);
}

static void test_priority_runs_first(void **state)
{
    (void)state;
    run_two_sinks(5, 0);
    run_two_sinks(0, 5);
    run_two_sinks(-3, -10);
    run_two_sinks(-10, -3);
    run_two_sinks(INT32_MAX, INT32_MIN);
    run_two_sinks(INT32_MIN, INT32_MAX);
}

/* The serial node is a sink, or a stateful node (followed by a sink). */
static void run_serial_vs_parallel(int map_priority, bool map_edge_first, bool stateful)
{
    uint64_t n = bt_scaled(3000, 400);
    atomic_ullong clock;
    atomic_init(&clock, 0);
    order_log m, s;
    order_log_init(&m, &clock, n);
    order_log_init(&s, &clock, n);
    bt_range_source src_state;
    bt_range_init(&src_state, 0, n, 1, 0);
    baton_graph *g = bt_graph_create(64, 8, NULL, NULL);
    int src = bt_graph_source(g, "src", bt_range_source_fn, &src_state, 1);
    int fan = bt_graph_fanout(g, "fan", NULL, NULL);
    baton_node_config cfg = bt_node_config(BATON_NODE_MAP, "parallel map");
    cfg.map = log_map;
    cfg.ctx = &m;
    cfg.priority = map_priority;
    int map = bt_graph_add(g, &cfg);
    int after_map = bt_graph_sink(g, "after map", drop_sink, NULL);
    int serial = stateful ? bt_graph_stateful(g, "stateful", log_map, &s, 1)
                          : bt_graph_sink(g, "serial sink", log_sink, &s);
    if (stateful)
        bt_graph_connect(g, serial, bt_graph_sink(g, "after stateful", drop_sink, NULL), 0);
    bt_graph_connect(g, src, fan, 0);
    /* Both orders of the fanout's edges, so that the order they are scheduled in cannot pass
     * for the rank. */
    bt_graph_connect(g, fan, map_edge_first ? map : serial, 0);
    bt_graph_connect(g, fan, map_edge_first ? serial : map, 0);
    bt_graph_connect(g, map, after_map, 0);
    bt_graph_run_ok(g, g_one, "serial and parallel");
    if (map_priority > 0)
        assert_first(&m, &s, "map of higher priority before a serial node");
    else
        assert_first(&s, &m, "serial node before a parallel map of the same priority");
    free(m.tick);
    free(s.tick);
    baton_graph_destroy(g);
}

static void test_serial_before_parallel(void **state)
{
    (void)state;
    for (int stateful = 0; stateful < 2; stateful++) {
        run_serial_vs_parallel(0, true, stateful);
        run_serial_vs_parallel(0, false, stateful);
        run_serial_vs_parallel(1, true, stateful);
        run_serial_vs_parallel(1, false, stateful);
    }
}

typedef struct ahead_probe {
    uint64_t emitted, consumed, end;
    uint64_t worst; /* most items emitted and not consumed when the source was called */
} ahead_probe;

static int ahead_source(void *state, baton_emitter *out)
{
    ahead_probe *p = state;
    if (p->emitted - p->consumed > p->worst)
        p->worst = p->emitted - p->consumed;
    if (p->emitted >= p->end)
        return BATON_GRAPH_END;
    int rc = baton_emit(out, baton_item_int((int64_t)p->emitted));
    BT_CHECK(rc == 0);
    p->emitted++;
    return 0;
}

static int ahead_sink(void *state, baton_item item)
{
    ahead_probe *p = state;
    (void)item;
    p->consumed++;
    return 0;
}

static uint64_t source_lead(int source_priority, unsigned batch)
{
    ahead_probe probe = {0, 0, bt_scaled(5000, 2000), 0};
    baton_graph *g = bt_graph_create(1024, batch, NULL, NULL);
    baton_node_config cfg = bt_node_config(BATON_NODE_SOURCE, "src");
    cfg.source = ahead_source;
    cfg.ctx = &probe;
    cfg.priority = source_priority;
    int src = bt_graph_add(g, &cfg);
    int sink = bt_graph_sink(g, "sink", ahead_sink, &probe);
    bt_graph_connect(g, src, sink, 0);
    bt_graph_run_ok(g, g_one, "source and sink");
    assert_int_equal(probe.consumed, probe.end);
    baton_graph_destroy(g);
    return probe.worst;
}

static void test_source_waits_for_consumers(void **state)
{
    (void)state;
    const unsigned batch = 4;
    uint64_t lead = source_lead(0, batch);
    if (lead > batch)
        fail_msg("the source was called with %llu items waiting for its sink (one batch is %u)",
                 (unsigned long long)lead, batch);
    lead = source_lead(1, batch);
    if (lead <= 8 * batch)
        fail_msg("a source of higher priority than its sink ran only %llu items ahead",
                 (unsigned long long)lead);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_runs_first),
        cmocka_unit_test(test_serial_before_parallel),
        cmocka_unit_test(test_source_waits_for_consumers),
    };
    return cmocka_run_group_tests_name("graph/schedule", tests, group_setup, group_teardown);
}
