/*
 * test_graph_cancel.c — a node that fails cancels the run cleanly, at one pool size (--workers N;
 * CTest runs 1, 2, 4, 8 and 16, oversubscribed on 2 cores).
 *
 * The graph: source -> map (variable time) -> fanout (copies) -> actor -> sink 1
 *                                                          \-> map -> sink 2
 * with one node failing from a given item on (a source, a map, the actor, the copy function, a
 * sink), and an ordered variant (source -> map -> map -> ordered sink) whose window holds items
 * when the failure comes. For each (graph.h, baton_graph_run):
 *  - the run returns the failing node's own (negative) result, a custom code included;
 *  - every item is freed exactly once: by a sink, by the node that failed holding it, or by the
 *    graph's release function (tracked blocks: made = freed, no double free);
 *  - no source is polled again: the source, which has far more to give, stops early;
 *  - no node function runs after baton_graph_run has returned;
 *  - the graph runs again afterwards (its sources from where they were) and completes.
 */
#include "support/bt_common.h"

#include "support/bt_graph.h"

BT_DEFINE_POOL_GROUP()

/* Set once baton_graph_run has returned; any node function called after that is a failure. */
static atomic_int g_returned;

#define CHECK_NOT_RETURNED(what)                                                                 \
    BT_CHECK_MSG(atomic_load(&g_returned) == 0, "%s called after baton_graph_run returned", what)

typedef enum fail_where {
    FAIL_NONE,
    FAIL_SOURCE,
    FAIL_MAP,
    FAIL_ACTOR,
    FAIL_COPY,
    FAIL_SINK,
} fail_where;

static const char *const where_names[] = {"nothing", "source", "map", "actor", "copy", "sink"};

typedef struct cancel_run {
    bt_tracker tracker;
    fail_where where;
    int code;
    uint64_t at;          /* items from this origin on make the failing node fail */
    uint64_t next, n;     /* the source: plain, it is serial */
    unsigned per_call;
    atomic_ulong failures; /* calls that returned the error */
    uint64_t sink1_count, sink2_count;
    unsigned char *sink1_seen, *sink2_seen;
    atomic_int in_actor;
} cancel_run;

static bool fails_here(cancel_run *r, fail_where where, const bt_payload *p)
{
    return r->where == where && p->origin >= r->at;
}

static int cancel_source(void *state, baton_emitter *out)
{
    cancel_run *r = state;
    CHECK_NOT_RETURNED("the source");
    for (unsigned k = 0; k < r->per_call && r->next < r->n; k++) {
        if (r->where == FAIL_SOURCE && r->next >= r->at && k > 0) {
            /* Fails after emitting some: those are the graph's now. */
            atomic_fetch_add(&r->failures, 1);
            return r->code;
        }
        bt_payload *p = bt_item_new(&r->tracker, r->next, 0);
        if (p == NULL)
            return BATON_ENOMEM;
        int rc = baton_emit(out, baton_item_ptr(p));
        if (rc != 0) {
            BT_CHECK_MSG(false, "source emit: %s", baton_err_name(rc));
            bt_item_free(&r->tracker, p);
            return rc;
        }
        r->next++;
    }
    return r->next >= r->n ? BATON_GRAPH_END : 0;
}

static int cancel_map(void *ctx, baton_item item, baton_emitter *out)
{
    cancel_run *r = ctx;
    CHECK_NOT_RETURNED("a map");
    bt_payload *p = item.p;
    if (!bt_item_valid(&r->tracker, p))
        return BATON_EINVAL;
    if (baton_mix64(p->origin) % 16 == 0)
        bt_busy_ns(10000);
    if (fails_here(r, FAIL_MAP, p)) {
        /* The item we hold when we fail is ours to free. */
        bt_item_free(&r->tracker, p);
        atomic_fetch_add(&r->failures, 1);
        return r->code;
    }
    p->value++;
    return baton_emit(out, item);
}

static int cancel_copy(void *ctx, baton_item item, baton_item *copy)
{
    cancel_run *r = ctx;
    CHECK_NOT_RETURNED("the copy function");
    bt_payload *p = item.p;
    if (!bt_item_valid(&r->tracker, p))
        return BATON_EINVAL;
    if (fails_here(r, FAIL_COPY, p)) {
        /* Nothing made; the item stays with the graph (graph.h), which must release it. */
        atomic_fetch_add(&r->failures, 1);
        return r->code;
    }
    return bt_item_copy(&r->tracker, item, copy);
}

static int cancel_actor(void *ctx, baton_item item, baton_emitter *out)
{
    cancel_run *r = ctx;
    CHECK_NOT_RETURNED("the actor");
    BT_CHECK(atomic_exchange(&r->in_actor, 1) == 0);
    bt_payload *p = item.p;
    int rc = 0;
    if (!bt_item_valid(&r->tracker, p)) {
        rc = BATON_EINVAL;
    } else if (fails_here(r, FAIL_ACTOR, p)) {
        bt_item_free(&r->tracker, p);
        atomic_fetch_add(&r->failures, 1);
        rc = r->code;
    }
    atomic_store(&r->in_actor, 0);
    return rc != 0 ? rc : baton_emit(out, item);
}

static int cancel_pass(void *ctx, baton_item item, baton_emitter *out)
{
    cancel_run *r = ctx;
    CHECK_NOT_RETURNED("the second map");
    if (!bt_item_valid(&r->tracker, item.p))
        return BATON_EINVAL;
    return baton_emit(out, item);
}

static int cancel_sink1(void *state, baton_item item)
{
    cancel_run *r = state;
    CHECK_NOT_RETURNED("sink 1");
    bt_payload *p = item.p;
    if (!bt_item_valid(&r->tracker, p))
        return BATON_EINVAL;
    if (fails_here(r, FAIL_SINK, p)) {
        bt_item_free(&r->tracker, p);
        atomic_fetch_add(&r->failures, 1);
        return r->code;
    }
    if (r->sink1_seen[p->origin]++ != 0)
        BT_CHECK_MSG(false, "sink 1 got origin %llu twice", (unsigned long long)p->origin);
    r->sink1_count++;
    bt_item_free(&r->tracker, p);
    return 0;
}

static int cancel_sink2(void *state, baton_item item)
{
    cancel_run *r = state;
    CHECK_NOT_RETURNED("sink 2");
    bt_payload *p = item.p;
    if (!bt_item_valid(&r->tracker, p))
        return BATON_EINVAL;
    if (r->sink2_seen[p->origin]++ != 0)
        BT_CHECK_MSG(false, "sink 2 got origin %llu twice", (unsigned long long)p->origin);
    r->sink2_count++;
    bt_item_free(&r->tracker, p);
    return 0;
}

static void cancel_init(cancel_run *r, fail_where where, int code)
{
    memset(r, 0, sizeof *r);
    r->where = where;
    r->code = code;
    r->at = bt_scaled(1000, 100);
    r->n = r->at * 20;
    r->per_call = 4;
    bt_tracker_init(&r->tracker, r->n, r->n);
    atomic_init(&r->failures, 0);
    atomic_init(&r->in_actor, 0);
    r->sink1_seen = calloc(r->n, 1);
    r->sink2_seen = calloc(r->n, 1);
    assert_true(r->sink1_seen && r->sink2_seen);
}

static void cancel_fini(cancel_run *r)
{
    bt_tracker_fini(&r->tracker);
    free(r->sink1_seen);
    free(r->sink2_seen);
}

/* Runs, expecting the failure; then runs again without it and expects the rest to arrive. */
static void run_case(fail_where where, int code)
{
    cancel_run r;
    cancel_init(&r, where, code);
    baton_graph *g = bt_graph_create(16, 0, bt_item_release, &r.tracker);
    int src = bt_graph_source(g, "source", cancel_source, &r, r.per_call);
    int map = bt_graph_map(g, "map", cancel_map, &r, 1);
    int fan = bt_graph_fanout(g, "fanout", cancel_copy, &r);
    int actor = bt_graph_stateful(g, "actor", cancel_actor, &r, 1);
    int pass = bt_graph_map(g, "second map", cancel_pass, &r, 1);
    int sink1 = bt_graph_sink(g, "sink 1", cancel_sink1, &r);
    int sink2 = bt_graph_sink(g, "sink 2", cancel_sink2, &r);
    bt_graph_connect(g, src, map, 0);
    bt_graph_connect(g, map, fan, 0);
    bt_graph_connect(g, fan, actor, 8);
    bt_graph_connect(g, fan, pass, 0);
    bt_graph_connect(g, actor, sink1, 0);
    bt_graph_connect(g, pass, sink2, 4);

    char what[64];
    snprintf(what, sizeof what, "failure in the %s", where_names[where]);
    atomic_store(&g_returned, 0);
    int rc = bt_graph_run(g, g_pool, what);
    atomic_store(&g_returned, 1);
    if (rc != code)
        fail_msg("%s: baton_graph_run returned %d (%s), expected the node's %d (%s); message "
                 "\"%s\"",
                 what, rc, baton_err_name(rc), code, baton_err_name(code),
                 baton_last_error_message());
    assert_true(atomic_load(&r.failures) >= 1);
    printf("# %s: %llu items made, %ld released by the graph, %llu and %llu reached the sinks\n",
           what, (unsigned long long)r.next, atomic_load(&r.tracker.released),
           (unsigned long long)r.sink1_count, (unsigned long long)r.sink2_count);
    bt_assert_all_freed(&r.tracker);
    /* The source had n items to give; bounded edges and the cancellation stopped it long
     * before. */
    if (r.next >= r.n)
        fail_msg("%s: the source gave all %llu items: the run was not cancelled", what,
                 (unsigned long long)r.n);
    /* Nothing that failed reached a sink; the sinks saw only items below the failing one,
     * except sink 2 when the failure is in sink 1 or the actor (the other branch). */
    if (where == FAIL_MAP || where == FAIL_COPY || where == FAIL_SOURCE)
        for (uint64_t i = r.at + (where == FAIL_SOURCE ? r.per_call : 0); i < r.n; i++)
            if (r.sink1_seen[i] || r.sink2_seen[i])
                fail_msg("%s: origin %llu reached a sink", what, (unsigned long long)i);

    /* Again, without the failure: the source goes on from where it stopped. */
    uint64_t resumed_at = r.next;
    r.where = FAIL_NONE;
    atomic_store(&g_returned, 0);
    rc = bt_graph_run(g, g_pool, "after a failure");
    atomic_store(&g_returned, 1);
    if (rc != 0)
        fail_msg("%s, run again: %s: %s", what, baton_err_name(rc), baton_last_error_message());
    bt_assert_no_thread_failures();
    for (uint64_t i = resumed_at; i < r.n; i++)
        if (r.sink1_seen[i] != 1 || r.sink2_seen[i] != 1)
            fail_msg("%s, run again: origin %llu reached the sinks %u and %u times", what,
                     (unsigned long long)i, (unsigned)r.sink1_seen[i],
                     (unsigned)r.sink2_seen[i]);
    bt_assert_all_freed(&r.tracker);
    assert_int_equal(bt_node_stats(g, src).items_out, r.n - resumed_at);
    assert_int_equal(bt_node_stats(g, sink1).items_in, r.n - resumed_at);
    assert_int_equal(bt_node_stats(g, sink2).items_in, r.n - resumed_at);
    baton_graph_destroy(g);
    cancel_fini(&r);
}

static void test_fail_in_map(void **state)
{
    (void)state;
    run_case(FAIL_MAP, BATON_EIO);
}

static void test_fail_in_actor(void **state)
{
    (void)state;
    run_case(FAIL_ACTOR, BATON_ECONFLICT);
}

static void test_fail_in_copy(void **state)
{
    (void)state;
    run_case(FAIL_COPY, BATON_ENOMEM);
}

static void test_fail_in_sink(void **state)
{
    (void)state;
    /* Not a baton code: graph.h says the first negative result is returned as it is. */
    run_case(FAIL_SINK, -1234);
}

static void test_fail_in_source(void **state)
{
    (void)state;
    run_case(FAIL_SOURCE, BATON_EMISMATCH);
}

/* ---- the ordered variant: items wait in the sink's window when the failure comes ------------- */

typedef struct ordered_run {
    bt_tracker tracker;
    uint64_t next, n, at;
    uint64_t expected, received;
    atomic_ulong failures;
} ordered_run;

static int ordered_source(void *state, baton_emitter *out)
{
    ordered_run *r = state;
    CHECK_NOT_RETURNED("the ordered source");
    if (r->next >= r->n)
        return BATON_GRAPH_END;
    bt_payload *p = bt_item_new(&r->tracker, r->next, 0);
    if (p == NULL)
        return BATON_ENOMEM;
    int rc = baton_emit(out, baton_item_ptr(p));
    if (rc != 0)
        bt_item_free(&r->tracker, p);
    else
        r->next++;
    return rc;
}

/* Item `at` is very slow and then fails; the ones after it overtake it and wait in the
 * window. */
static int ordered_map(void *ctx, baton_item item, baton_emitter *out)
{
    ordered_run *r = ctx;
    CHECK_NOT_RETURNED("the ordered map");
    bt_payload *p = item.p;
    if (!bt_item_valid(&r->tracker, p))
        return BATON_EINVAL;
    if (p->origin == r->at) {
        bt_busy_ns(2000000);
        bt_item_free(&r->tracker, p);
        atomic_fetch_add(&r->failures, 1);
        return BATON_EIO;
    }
    if (baton_mix64(p->origin) % 8 == 0)
        bt_busy_ns(20000);
    return baton_emit(out, item);
}

static int ordered_pass(void *ctx, baton_item item, baton_emitter *out)
{
    ordered_run *r = ctx;
    CHECK_NOT_RETURNED("the second ordered map");
    if (!bt_item_valid(&r->tracker, item.p))
        return BATON_EINVAL;
    return baton_emit(out, item);
}

static int ordered_sink(void *state, baton_item item)
{
    ordered_run *r = state;
    CHECK_NOT_RETURNED("the ordered sink");
    bt_payload *p = item.p;
    if (!bt_item_valid(&r->tracker, p))
        return BATON_EINVAL;
    BT_CHECK_MSG(p->origin == r->expected && p->origin < r->at,
                 "ordered sink got %llu, expected %llu (failing item %llu)",
                 (unsigned long long)p->origin, (unsigned long long)r->expected,
                 (unsigned long long)r->at);
    r->expected = p->origin + 1;
    r->received++;
    bt_item_free(&r->tracker, p);
    return 0;
}

static void test_fail_with_ordered_window(void **state)
{
    (void)state;
    ordered_run r;
    memset(&r, 0, sizeof r);
    r.at = bt_scaled(500, 50);
    r.n = r.at * 40;
    bt_tracker_init(&r.tracker, r.n, 0);
    atomic_init(&r.failures, 0);
    baton_graph *g = bt_graph_create(0, 0, bt_item_release, &r.tracker);
    int src = bt_graph_source(g, "source", ordered_source, &r, 1);
    int m1 = bt_graph_map(g, "slow then failing", ordered_map, &r, 1);
    int m2 = bt_graph_map(g, "pass", ordered_pass, &r, 1);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "ordered");
    cfg.sink = ordered_sink;
    cfg.ctx = &r;
    cfg.flags = BATON_NODE_ORDERED;
    int sink = bt_graph_add(g, &cfg);
    bt_graph_connect(g, src, m1, 0);
    bt_graph_connect(g, m1, m2, 0);
    bt_graph_connect(g, m2, sink, 64);
    atomic_store(&g_returned, 0);
    int rc = bt_graph_run(g, g_pool, "failure before an ordered sink");
    atomic_store(&g_returned, 1);
    if (rc != BATON_EIO)
        fail_msg("baton_graph_run returned %s, expected the map's BATON_EIO: %s",
                 baton_err_name(rc), baton_last_error_message());
    printf("# ordered: %llu made, %llu delivered in order, %ld released\n",
           (unsigned long long)r.next, (unsigned long long)r.received,
           atomic_load(&r.tracker.released));
    assert_true(r.received <= r.at);
    assert_true(r.next < r.n);
    bt_assert_all_freed(&r.tracker);
    baton_graph_destroy(g);
    bt_tracker_fini(&r.tracker);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    atomic_init(&g_returned, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_in_map),
        cmocka_unit_test(test_fail_in_actor),
        cmocka_unit_test(test_fail_in_copy),
        cmocka_unit_test(test_fail_in_sink),
        cmocka_unit_test(test_fail_in_source),
        cmocka_unit_test(test_fail_with_ordered_window),
    };
    return cmocka_run_group_tests_name("graph/cancel", tests, group_setup, group_teardown);
}
