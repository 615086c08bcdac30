/*
 * test_graph_reject.c — BATON_INPUT_REJECT, at one pool size (--workers N; CTest runs 1, 2, 4, 8
 * and 16, oversubscribed on 2 cores). Items are tracked blocks (bt_graph.h), so every test
 * also checks that no item is lost or freed twice.
 *  - a source feeding a slow node (concurrency 1) that rejects: baton_emit returns BATON_EBUSY,
 *    the item stays with the source, which drops it (an old video frame); the node's `rejected`
 *    equals what the source was refused, and with two workers or more the source is refused at
 *    least once (it is polled while the node is busy on another worker);
 *  - a source that keeps a refused item and offers it again in its next call gets every item in,
 *    whatever kind the rejecting node is (map, stateful node, sink, ordered sink, fanout): a node
 *    with nothing else to do must not refuse forever;
 *  - a fanout whose successor rejects releases the refused item through the graph's release
 *    function, once, and the successor counts it.
 */
#include "support/bt_common.h"

#include "support/bt_graph.h"

BT_DEFINE_POOL_GROUP()

/* ---- BATON_INPUT_REJECT ---------------------------------------------------------------------- */

typedef struct reject_run {
    bt_tracker tracker;
    uint64_t next, n;
    uint64_t dropped;       /* the source's count of BATON_EBUSY (plain: the source is serial) */
    atomic_int saw_busy;    /* set once the source has been refused */
    atomic_int first_call;  /* the slow node's first call has begun */
    unsigned workers;
    uint64_t sink_count;
} reject_run;

static int reject_source(void *state, baton_emitter *out)
{
    reject_run *r = state;
    if (r->next >= r->n)
        return BATON_GRAPH_END;
    bt_payload *p = bt_item_new(&r->tracker, r->next, (int64_t)r->next);
    if (p == NULL)
        return BATON_ENOMEM;
    r->next++;
    int rc = baton_emit(out, baton_item_ptr(p));
    if (rc == BATON_EBUSY) {
        /* Refused: still ours. Drop it, like an old video frame. */
        r->dropped++;
        atomic_store(&r->saw_busy, 1);
        bt_item_free(&r->tracker, p);
        return 0;
    }
    BT_CHECK_MSG(rc == 0, "emit to a rejecting node: %s", baton_err_name(rc));
    if (rc != 0)
        bt_item_free(&r->tracker, p);
    return rc;
}

static int reject_slow(void *ctx, baton_item item, baton_emitter *out)
{
    reject_run *r = ctx;
    if (!bt_item_valid(&r->tracker, item.p))
        return BATON_EINVAL;
    if (atomic_exchange(&r->first_call, 1) == 0 && r->workers >= 2) {
        /* With another worker free, the source is polled while this call runs, and must be
         * refused: the node is at its limit (1). */
        bool refused = bt_wait_flag(&r->saw_busy, 20000);
        BT_CHECK_MSG(refused, "the source was not refused within 20 s while the rejecting "
                              "node (concurrency 1) was busy on another worker");
    }
    bt_busy_ns(20000);
    return baton_emit(out, item);
}

static int reject_sink(void *state, baton_item item)
{
    reject_run *r = state;
    if (bt_item_valid(&r->tracker, item.p)) {
        r->sink_count++;
        bt_item_free(&r->tracker, item.p);
    }
    return 0;
}

static void test_input_reject(void **state)
{
    (void)state;
    reject_run r;
    memset(&r, 0, sizeof r);
    r.n = bt_scaled(3000, 300);
    r.workers = g_workers;
    bt_tracker_init(&r.tracker, r.n, 0);
    atomic_init(&r.saw_busy, 0);
    atomic_init(&r.first_call, 0);

    baton_graph *g = bt_graph_create(0, 0, bt_item_release, &r.tracker);
    int src = bt_graph_source(g, "frames", reject_source, &r, 1);
    baton_node_config cfg = bt_node_config(BATON_NODE_MAP, "slow, rejecting");
    cfg.map = reject_slow;
    cfg.ctx = &r;
    cfg.concurrency = 1;
    cfg.input = BATON_INPUT_REJECT;
    int slow = bt_graph_add(g, &cfg);
    int sink_id = bt_graph_sink(g, "display", reject_sink, &r);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, slow, sink_id}, 3), 0);
    bt_graph_run_ok(g, g_pool, "input reject");

    baton_node_stats st = bt_node_stats(g, slow);
    printf("# %llu of %llu items refused\n", (unsigned long long)r.dropped,
           (unsigned long long)r.n);
    assert_int_equal(r.dropped + r.sink_count, r.n);
    assert_int_equal(st.rejected, r.dropped);
    assert_int_equal(st.items_in, r.sink_count);
    assert_int_equal(bt_node_stats(g, src).items_out, r.n - r.dropped);
    if (g_workers >= 2)
        assert_true(r.dropped >= 1);
    /* Nothing was cancelled, so the graph released nothing; the source and sink freed all. */
    assert_int_equal(atomic_load(&r.tracker.released), 0);
    bt_assert_all_freed(&r.tracker);
    baton_graph_destroy(g);
    bt_tracker_fini(&r.tracker);
}

/* A source that keeps a refused item and offers it again in its next call (returning 0 in
 * between, so that its batch ends and what it emitted before reaches the node): a node that has
 * nothing else to do must take it sooner or later, whatever kind it is. (Retrying inside one
 * call would wait for nothing: the items a batch emits are published when the batch ends.) */
#define RETRY_LIMIT_NS UINT64_C(3000000000)

typedef struct retry_run {
    bt_tracker tracker;
    uint64_t next, n;
    bt_payload *held;      /* refused, to offer again */
    uint64_t held_since;   /* when it was first refused */
    uint64_t retries, dropped;
    bool gave_up;          /* one item waited RETRY_LIMIT_NS: drop refused items from then on */
    uint64_t sink_count[2];
    uint64_t ordered_next;
} retry_run;

static int retry_source_fn(void *state, baton_emitter *out)
{
    retry_run *r = state;
    bt_payload *p = r->held;
    if (p == NULL) {
        if (r->next >= r->n)
            return BATON_GRAPH_END;
        p = bt_item_new(&r->tracker, r->next, (int64_t)r->next);
        if (p == NULL)
            return BATON_ENOMEM;
        r->next++;
    }
    int rc = baton_emit(out, baton_item_ptr(p));
    if (rc == 0) {
        r->held = NULL;
        return 0;
    }
    BT_CHECK_MSG(rc == BATON_EBUSY, "emit: %s", baton_err_name(rc));
    if (rc != BATON_EBUSY) {
        bt_item_free(&r->tracker, p);
        return rc;
    }
    if (r->gave_up) {
        r->dropped++;
        r->held = NULL;
        bt_item_free(&r->tracker, p);
        return 0;
    }
    if (r->held == NULL) {
        r->held = p;
        r->held_since = bt_now_ns();
    } else if (bt_now_ns() - r->held_since > RETRY_LIMIT_NS) {
        BT_CHECK_MSG(false, "item %llu was refused for 3 s by a node (BATON_INPUT_REJECT, "
                            "concurrency 1) that had nothing else to do",
                     (unsigned long long)p->origin);
        r->gave_up = true;
    }
    r->retries++;
    return 0;
}

/* The rejecting node (a map or an actor) passes items on. */
static int retry_pass(void *ctx, baton_item item, baton_emitter *out)
{
    retry_run *r = ctx;
    if (!bt_item_valid(&r->tracker, item.p))
        return BATON_EINVAL;
    return baton_emit(out, item);
}

static int retry_sink_fn(retry_run *r, int which, baton_item item)
{
    bt_payload *p = item.p;
    if (!bt_item_valid(&r->tracker, p))
        return BATON_EINVAL;
    r->sink_count[which]++;
    bt_item_free(&r->tracker, p);
    return 0;
}

static int retry_sink0(void *state, baton_item item)
{
    return retry_sink_fn(state, 0, item);
}

static int retry_sink1(void *state, baton_item item)
{
    return retry_sink_fn(state, 1, item);
}

static int retry_ordered_sink(void *state, baton_item item)
{
    retry_run *r = state;
    bt_payload *p = item.p;
    if (bt_item_valid(&r->tracker, p)) {
        BT_CHECK_MSG(p->origin >= r->ordered_next, "ordered sink got %llu after %llu",
                     (unsigned long long)p->origin, (unsigned long long)r->ordered_next);
        r->ordered_next = p->origin + 1;
    }
    return retry_sink_fn(r, 0, item);
}

typedef enum reject_target {
    TARGET_MAP,
    TARGET_ACTOR,
    TARGET_SINK,
    TARGET_ORDERED_SINK,
    TARGET_FANOUT,
} reject_target;

static const char *const target_names[] = {"map", "stateful node", "sink", "ordered sink",
                                           "fanout"};

/* retrying source -> [the rejecting node, concurrency 1] -> ... -> sink(s) */
static void run_reject_retry(reject_target target)
{
    retry_run r;
    memset(&r, 0, sizeof r);
    r.n = bt_scaled(2000, 200);
    bt_tracker_init(&r.tracker, r.n, r.n);

    baton_graph *g = bt_graph_create(8, 0, bt_item_release, &r.tracker);
    int src = bt_graph_source(g, "retrying source", retry_source_fn, &r, 1);
    baton_node_config cfg;
    switch (target) {
    case TARGET_MAP:
    case TARGET_ACTOR:
        cfg = bt_node_config(target == TARGET_MAP ? BATON_NODE_MAP : BATON_NODE_STATEFUL,
                             "rejecting");
        cfg.map = retry_pass;
        cfg.ctx = &r;
        break;
    case TARGET_SINK:
    case TARGET_ORDERED_SINK:
        cfg = bt_node_config(BATON_NODE_SINK, "rejecting");
        cfg.sink = target == TARGET_SINK ? retry_sink0 : retry_ordered_sink;
        cfg.ctx = &r;
        cfg.flags = target == TARGET_SINK ? 0 : BATON_NODE_ORDERED;
        break;
    case TARGET_FANOUT:
        cfg = bt_node_config(BATON_NODE_FANOUT, "rejecting");
        cfg.copy = bt_item_copy;
        cfg.ctx = &r.tracker;
        break;
    }
    cfg.concurrency = 1;
    cfg.input = BATON_INPUT_REJECT;
    int rejecting = bt_graph_add(g, &cfg);
    bt_graph_connect(g, src, rejecting, 0);
    if (target == TARGET_MAP || target == TARGET_ACTOR) {
        bt_graph_connect(g, rejecting, bt_graph_sink(g, "sink", retry_sink0, &r), 0);
    } else if (target == TARGET_FANOUT) {
        bt_graph_connect(g, rejecting, bt_graph_sink(g, "sink 0", retry_sink0, &r), 0);
        bt_graph_connect(g, rejecting, bt_graph_sink(g, "sink 1", retry_sink1, &r), 0);
    }
    char what[64];
    snprintf(what, sizeof what, "reject with retries: %s", target_names[target]);
    bt_graph_run_ok(g, g_pool, what);

    printf("# %s: %llu refusals retried, %llu dropped\n", what, (unsigned long long)r.retries,
           (unsigned long long)r.dropped);
    baton_node_stats st = bt_node_stats(g, rejecting);
    assert_int_equal(r.dropped, 0); /* everything got in, sooner or later */
    assert_int_equal(r.sink_count[0], r.n);
    if (target == TARGET_FANOUT)
        assert_int_equal(r.sink_count[1], r.n);
    assert_int_equal(st.rejected, r.retries + r.dropped);
    assert_int_equal(atomic_load(&r.tracker.released), 0);
    bt_assert_all_freed(&r.tracker);
    baton_graph_destroy(g);
    bt_tracker_fini(&r.tracker);
}

static void test_reject_retry_map(void **state)
{
    (void)state;
    run_reject_retry(TARGET_MAP);
}

static void test_reject_retry_actor(void **state)
{
    (void)state;
    run_reject_retry(TARGET_ACTOR);
}

static void test_reject_retry_sink(void **state)
{
    (void)state;
    run_reject_retry(TARGET_SINK);
}

static void test_reject_retry_ordered_sink(void **state)
{
    (void)state;
    run_reject_retry(TARGET_ORDERED_SINK);
}

static void test_reject_retry_fanout(void **state)
{
    (void)state;
    run_reject_retry(TARGET_FANOUT);
}

/* A fanout has no code to tell when a successor refuses: it releases the refused copy (graph.h:
 * the release function frees "a fanout's copy [that] is refused") and the successor counts it. */
typedef struct fan_reject {
    bt_tracker tracker;
    uint64_t next, n;
    uint64_t count[2];
} fan_reject;

static int fan_reject_source(void *state, baton_emitter *out)
{
    fan_reject *f = state;
    if (f->next >= f->n)
        return BATON_GRAPH_END;
    bt_payload *p = bt_item_new(&f->tracker, f->next, 0);
    if (p == NULL)
        return BATON_ENOMEM;
    f->next++;
    int rc = baton_emit(out, baton_item_ptr(p));
    if (rc != 0)
        bt_item_free(&f->tracker, p);
    return rc;
}

static int fan_reject_slow(void *ctx, baton_item item, baton_emitter *out)
{
    fan_reject *f = ctx;
    if (!bt_item_valid(&f->tracker, item.p))
        return BATON_EINVAL;
    bt_busy_ns(10000);
    return baton_emit(out, item);
}

static int fan_reject_sink(fan_reject *f, int which, baton_item item)
{
    if (!bt_item_valid(&f->tracker, item.p))
        return BATON_EINVAL;
    f->count[which]++;
    bt_item_free(&f->tracker, item.p);
    return 0;
}

static int fan_reject_sink0(void *state, baton_item item)
{
    return fan_reject_sink(state, 0, item);
}

static int fan_reject_sink1(void *state, baton_item item)
{
    return fan_reject_sink(state, 1, item);
}

static void test_fanout_into_rejecting_node(void **state)
{
    (void)state;
    fan_reject f;
    memset(&f, 0, sizeof f);
    f.n = bt_scaled(2000, 200);
    bt_tracker_init(&f.tracker, f.n, f.n);
    baton_graph *g = bt_graph_create(0, 0, bt_item_release, &f.tracker);
    int src = bt_graph_source(g, "source", fan_reject_source, &f, 1);
    int fan = bt_graph_fanout(g, "fanout", bt_item_copy, &f.tracker);
    /* Successor 0 (it gets the originals) rejects; successor 1 (copies) queues. */
    baton_node_config cfg = bt_node_config(BATON_NODE_MAP, "slow, rejecting");
    cfg.map = fan_reject_slow;
    cfg.ctx = &f;
    cfg.concurrency = 1;
    cfg.input = BATON_INPUT_REJECT;
    int slow = bt_graph_add(g, &cfg);
    int s0 = bt_graph_sink(g, "sink 0", fan_reject_sink0, &f);
    int s1 = bt_graph_sink(g, "sink 1", fan_reject_sink1, &f);
    bt_graph_connect(g, src, fan, 0);
    bt_graph_connect(g, fan, slow, 0);
    bt_graph_connect(g, fan, s1, 0);
    bt_graph_connect(g, slow, s0, 0);
    bt_graph_run_ok(g, g_pool, "fanout into a rejecting node");
    baton_node_stats st = bt_node_stats(g, slow);
    printf("# the rejecting node refused %llu of %llu\n", (unsigned long long)st.rejected,
           (unsigned long long)f.n);
    assert_int_equal(f.count[1], f.n);
    assert_int_equal(f.count[0] + st.rejected, f.n);
    assert_int_equal(st.items_in, f.count[0]);
    /* Each refused item was released by the graph, exactly once. */
    assert_int_equal(atomic_load(&f.tracker.released), st.rejected);
    bt_assert_all_freed(&f.tracker);
    baton_graph_destroy(g);
    bt_tracker_fini(&f.tracker);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_reject),
        cmocka_unit_test(test_reject_retry_map),
        cmocka_unit_test(test_reject_retry_actor),
        cmocka_unit_test(test_reject_retry_sink),
        cmocka_unit_test(test_reject_retry_ordered_sink),
        cmocka_unit_test(test_reject_retry_fanout),
        cmocka_unit_test(test_fanout_into_rejecting_node),
    };
    return cmocka_run_group_tests_name("graph/reject", tests, group_setup, group_teardown);
}
