/*
 * test_graph_run_contract.c — promises of graph.h about running a graph that the other graph
 * tests did not pin down, written from the header's wording:
 *  - node functions that return a positive value other than a source's BATON_GRAPH_END: the run
 *    fails with BATON_EINVAL naming the node and the value, never with a positive result; a
 *    negative code of the user's own is returned as it is;
 *  - a failed run names the failing node and its value in the calling thread's
 *    baton_last_error_message, and a successful run leaves that thread's message as it was;
 *  - a run that failed in a node can be run again: items are neither lost nor doubled;
 *  - a second run from another thread while one is in progress: BATON_EBUSY;
 *  - a run started from inside a task of the same pool completes;
 *  - node functions run on the pool's workers or the thread that called run;
 *  - busy_ns covers at least the time the node's functions took;
 *  - a run on a pool whose destroy has started: BATON_ECLOSED (the graph's own run, which keeps
 *    the pool alive meanwhile, completes).
 * Runs on a pool of --workers workers.
 */
#include "support/bt_common.h"

#include "support/bt_graph.h"

#include <limits.h>
#include <stddef.h>

BT_DEFINE_POOL_GROUP()

/* ---- what node functions return -------------------------------------------------------------- */

typedef struct returner {
    int code; /* what the function returns at item/call `at` */
    int at;
    atomic_int calls;
} returner;

static int returning_source(void *state, baton_emitter *out)
{
    returner *r = state;
    int k = atomic_fetch_add(&r->calls, 1);
    if (k == r->at)
        return r->code;
    if (k > 1000)
        return BATON_GRAPH_END;
    return baton_emit(out, baton_item_int(k));
}

static int returning_map(void *ctx, baton_item item, baton_emitter *out)
{
    returner *r = ctx;
    if (item.i == r->at)
        return r->code;
    return baton_emit(out, item);
}

static int returning_sink(void *state, baton_item item)
{
    returner *r = state;
    return item.i == r->at ? r->code : 0;
}

static int returning_copy(void *ctx, baton_item item, baton_item *copy)
{
    returner *r = ctx;
    *copy = item;
    return item.i == r->at ? r->code : 0;
}

/* kind: 0 source, 1 map, 2 sink, 3 copy. */
static int run_with_return(int kind, int code, int at)
{
    returner r = {code, at, 0};
    returner quiet = {0, -1, 0};
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "the source", returning_source, kind == 0 ? &r : &quiet, 1);
    int map = bt_graph_map(g, "the map", returning_map, kind == 1 ? &r : &quiet, 1);
    int fan = bt_graph_fanout(g, "the fanout", returning_copy, kind == 3 ? &r : &quiet);
    int sink = bt_graph_sink(g, "the sink", returning_sink, kind == 2 ? &r : &quiet);
    int sink2 = bt_graph_sink(g, "other sink", bt_drop_sink, NULL);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, map, fan, sink}, 4), 0);
    bt_graph_connect(g, fan, sink2, 0);
    int rc = bt_graph_run(g, g_pool, "node returns a code");
    baton_graph_destroy(g);
    return rc;
}

static void test_positive_returns_are_refused(void **state)
{
    (void)state;
    static const char *names[] = {"the source", "the map", "the sink", "the fanout"};
    const int codes[] = {2, 7, INT_MAX};
    for (int kind = 0; kind < 4; kind++)
        for (size_t c = 0; c < sizeof codes / sizeof codes[0]; c++) {
            int rc = run_with_return(kind, codes[c], 10);
            if (rc != BATON_EINVAL)
                fail_msg("%s returned %d: baton_graph_run gave %d (%s), expected BATON_EINVAL",
                         names[kind], codes[c], rc, baton_err_name(rc));
            bt_assert_contains(baton_last_error_message(), names[kind]);
            char value[16];
            snprintf(value, sizeof value, "%d", codes[c]);
            bt_assert_contains(baton_last_error_message(), value);
        }
    /* BATON_GRAPH_END from a map or sink is not "end": it is a positive value too. */
    bt_assert_rc(run_with_return(1, BATON_GRAPH_END, 3), BATON_EINVAL);
    bt_assert_rc(run_with_return(2, BATON_GRAPH_END, 3), BATON_EINVAL);
    /* A negative code of the user's own is returned as it is, naming the node. */
    for (int kind = 0; kind < 4; kind++) {
        bt_assert_rc(run_with_return(kind, -4242, 10), -4242);
        bt_assert_contains(baton_last_error_message(), names[kind]);
    }
    bt_assert_no_thread_failures();
}

/* ---- the calling thread's error message ------------------------------------------------------ */

static void test_message_of_a_failed_run(void **state)
{
    (void)state;
    for (int kind = 0; kind < 4; kind++) {
        /* Another message first, so that a stale one cannot pass for the right one. */
        baton_graph *g = NULL;
        baton_graph_config bad = bt_graph_config(0, BATON_GRAPH_MAX_BATCH + 1, NULL, NULL);
        bt_assert_rc(baton_graph_create(&bad, &g), BATON_EINVAL);
        bt_assert_rc(run_with_return(kind, -777, 25), -777);
        const char *message = baton_last_error_message();
        static const char *names[] = {"the source", "the map", "the sink", "the fanout"};
        bt_assert_contains(message, names[kind]);
        bt_assert_contains(message, "-777");
    }
}

static void test_successful_run_leaves_message(void **state)
{
    (void)state;
    baton_graph *g = NULL;
    baton_graph_config bad = bt_graph_config(0, BATON_GRAPH_MAX_BATCH + 9, NULL, NULL);
    bt_assert_rc(baton_graph_create(&bad, &g), BATON_EINVAL);
    char before[512];
    snprintf(before, sizeof before, "%s", baton_last_error_message());
    assert_true(before[0] != '\0');
    for (int round = 0; round < 3; round++) {
        assert_int_equal(run_with_return(1, 0, -5), 0);
        assert_string_equal(baton_last_error_message(), before);
    }
}

/* ---- a run after a failed run ---------------------------------------------------------------- */

typedef struct flaky_sink {
    atomic_int fail_at; /* fails once on this value, then never again */
    unsigned char *seen;
    uint64_t n;
    atomic_ullong received;
} flaky_sink;

static int flaky_sink_fn(void *state, baton_item item)
{
    flaky_sink *s = state;
    if (item.i == atomic_load(&s->fail_at)) {
        atomic_store(&s->fail_at, -1);
        return -99; /* the item is the sink's: it is a plain number, nothing to release */
    }
    BT_CHECK(item.u < s->n);
    if (item.u < s->n)
        s->seen[item.u]++;
    atomic_fetch_add(&s->received, 1);
    return 0;
}

typedef struct release_log {
    unsigned char *seen;
    uint64_t n;
} release_log;

static void log_release(void *ctx, baton_item item)
{
    release_log *log = ctx;
    BT_CHECK(item.u < log->n);
    if (item.u < log->n)
        log->seen[item.u]++;
}

static void test_run_again_after_failure(void **state)
{
    (void)state;
    uint64_t n = bt_scaled(5000, 500);
    release_log released = {calloc(n, 1), n};
    flaky_sink sink_state = {n / 3, calloc(n, 1), n, 0};
    bt_range_source src_state;
    bt_range_init(&src_state, 0, n, 3, 0);
    baton_graph *g = bt_graph_create(16, 4, log_release, &released);
    int src = bt_graph_source(g, "src", bt_range_source_fn, &src_state, 3);
    int map = bt_graph_map(g, "map", bt_pass_map, NULL, 1);
    int sink = bt_graph_sink(g, "flaky", flaky_sink_fn, &sink_state);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, map, sink}, 3), 0);
    bt_assert_rc(bt_graph_run(g, g_pool, "failing run"), -99);
    bt_assert_contains(baton_last_error_message(), "flaky");
    bt_assert_no_thread_failures();
    bt_range_next_run(&src_state);
    bt_graph_run_ok(g, g_pool, "run after the failure");
    /* Every value the source made reached the sink once, or was released once, or was the one
     * the sink failed on (its own to drop); none twice. */
    uint64_t missing = 0;
    for (uint64_t k = 0; k < n; k++) {
        unsigned total = sink_state.seen[k] + released.seen[k];
        if (k == n / 3) {
            assert_int_equal(total, 0);
            continue;
        }
        if (total > 1)
            fail_msg("value %llu: %u deliveries, %u releases", (unsigned long long)k,
                     sink_state.seen[k], released.seen[k]);
        missing += total == 0;
    }
    if (missing != 0)
        fail_msg("%llu values were neither delivered nor released", (unsigned long long)missing);
    free(released.seen);
    free(sink_state.seen);
    baton_graph_destroy(g);
}

/* ---- a second run from another thread ---------------------------------------------------------
 */

typedef struct busy_probe {
    baton_graph *graph;
    baton_pool *pool;
    atomic_int started; /* the sink is inside the first run */
    atomic_int answer;  /* what the other thread's run returned, 1 before */
} busy_probe;

static void *second_runner(void *arg)
{
    busy_probe *p = arg;
    BT_CHECK(bt_wait_flag(&p->started, 60000));
    atomic_store(&p->answer, baton_graph_run(p->graph, p->pool));
    return NULL;
}

static int waiting_sink(void *state, baton_item item)
{
    busy_probe *p = state;
    (void)item;
    if (atomic_exchange(&p->started, 1) == 0) {
        /* Hold the run open until the other thread's attempt has answered. */
        uint64_t deadline = bt_now_ns() + UINT64_C(60000000000);
        while (atomic_load(&p->answer) == 1 && bt_now_ns() < deadline)
            bt_sleep_ms(1);
        BT_CHECK(atomic_load(&p->answer) != 1);
    }
    return 0;
}

static void test_run_from_two_threads(void **state)
{
    (void)state;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    busy_probe probe = {g, g_pool, 0, 1};
    bt_range_source src_state;
    bt_range_init(&src_state, 0, 10, 1, 0);
    int src = bt_graph_source(g, "src", bt_range_source_fn, &src_state, 1);
    int sink = bt_graph_sink(g, "waits", waiting_sink, &probe);
    bt_graph_connect(g, src, sink, 0);
    pthread_t other;
    assert_int_equal(pthread_create(&other, NULL, second_runner, &probe), 0);
    bt_graph_run_ok(g, g_pool, "first run");
    pthread_join(other, NULL);
    bt_assert_no_thread_failures();
    assert_int_equal(atomic_load(&probe.answer), BATON_EBUSY);
    baton_graph_destroy(g);
}

/* ---- a run started from a task of the pool ----------------------------------------------------
 */

typedef struct inner_run {
    baton_graph *graph;
    baton_pool *pool;
    atomic_int rc;
} inner_run;

static int run_in_task(void *ctx)
{
    inner_run *r = ctx;
    atomic_store(&r->rc, baton_graph_run(r->graph, r->pool));
    return 0;
}

static int idle_task(void *ctx)
{
    (void)ctx;
    return 0;
}

static void test_run_from_a_pool_task(void **state)
{
    (void)state;
    bt_range_source src_state;
    bt_range_init(&src_state, 0, 1000, 2, 0);
    bt_count_sink sink_state;
    bt_count_sink_init(&sink_state, 0, 1000);
    baton_graph *g = bt_graph_create(8, 0, NULL, NULL);
    int src = bt_graph_source(g, "src", bt_range_source_fn, &src_state, 2);
    int map = bt_graph_map(g, "map", bt_pass_map, NULL, 1);
    int sink = bt_graph_sink(g, "sink", bt_count_sink_fn, &sink_state);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, map, sink}, 3), 0);
    inner_run r = {g, g_pool, 1};
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_GRAPH_WATCHDOG_S, "graph run inside a pool task");
    /* B runs on a worker or the caller; either way the run must finish (or refuse at once). */
    bt_assert_rc(baton_join(g_pool, idle_task, NULL, run_in_task, &r), 0);
    bt_watchdog_stop(&dog);
    int rc = atomic_load(&r.rc);
    if (rc != 0)
        fail_msg("baton_graph_run from a task of its pool: %s: %s", baton_err_name(rc),
                 baton_last_error_message());
    bt_count_sink_assert_all(&sink_state);
    free(sink_state.seen);
    baton_graph_destroy(g);
}

/* ---- which threads run node functions -------------------------------------------------------- */

typedef struct thread_check {
    baton_pool *pool;
    pthread_t caller;
    atomic_ullong calls;
} thread_check;

static void check_thread(thread_check *t)
{
    BT_CHECK_MSG(baton_pool_current_worker(t->pool) >= 0 ||
                     pthread_equal(pthread_self(), t->caller),
                 "a node function ran on a thread that is neither a worker of the pool nor the "
                 "thread that called baton_graph_run");
    atomic_fetch_add(&t->calls, 1);
}

static int checked_source(void *state, baton_emitter *out)
{
    thread_check *t = state;
    check_thread(t);
    uint64_t k = atomic_load(&t->calls);
    return k > 3000 ? BATON_GRAPH_END : baton_emit(out, baton_item_int((int64_t)k));
}

static int checked_map(void *ctx, baton_item item, baton_emitter *out)
{
    check_thread(ctx);
    return baton_emit(out, item);
}

static int checked_sink(void *state, baton_item item)
{
    (void)item;
    check_thread(state);
    return 0;
}

static int checked_copy(void *ctx, baton_item item, baton_item *copy)
{
    check_thread(ctx);
    *copy = item;
    return 0;
}

static void test_node_functions_run_on_workers_or_caller(void **state)
{
    (void)state;
    thread_check t = {g_pool, pthread_self(), 0};
    baton_graph *g = bt_graph_create(4, 2, NULL, NULL);
    int src = bt_graph_source(g, "src", checked_source, &t, 1);
    int map = bt_graph_map(g, "map", checked_map, &t, 1);
    int actor = bt_graph_stateful(g, "actor", checked_map, &t, 1);
    int fan = bt_graph_fanout(g, "fan", checked_copy, &t);
    int sink = bt_graph_sink(g, "sink", checked_sink, &t);
    int sink2 = bt_graph_sink(g, "sink2", checked_sink, &t);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, map, actor, fan, sink}, 5), 0);
    bt_graph_connect(g, fan, sink2, 0);
    bt_graph_run_ok(g, g_pool, "which threads");
    assert_true(atomic_load(&t.calls) > 3000);
    baton_graph_destroy(g);
}

/* ---- busy time ----------------------------------------------------------------------------------
 */

static int spinning_sink(void *state, baton_item item)
{
    (void)state;
    (void)item;
    uint64_t start = baton_now_ns();
    while (baton_now_ns() - start < 2000) {
    }
    return 0;
}

/* busy_ns is the time spent in the node's batches, summed over workers: at least what its
 * function took (a lower bound, whatever the machine's speed). */
static void test_busy_time_covers_the_functions(void **state)
{
    (void)state;
    bt_range_source src_state;
    bt_range_init(&src_state, 0, 200, 1, 0);
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "src", bt_range_source_fn, &src_state, 1);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "spins");
    cfg.sink = spinning_sink;
    cfg.concurrency = BATON_CONCURRENCY_UNLIMITED;
    int sink = bt_graph_add(g, &cfg);
    bt_graph_connect(g, src, sink, 0);
    bt_graph_run_ok(g, g_pool, "busy sink");
    baton_node_stats st = bt_node_stats(g, sink);
    assert_int_equal(st.items_in, 200);
    if (st.busy_ns < 200 * 2000)
        fail_msg("busy_ns = %llu for 200 calls of at least 2000 ns each",
                 (unsigned long long)st.busy_ns);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.items_out, 0);
    baton_graph_destroy(g);
}

/* ---- a pool that is closing --------------------------------------------------------------------
 */

typedef struct closing {
    baton_pool *pool;
    baton_graph *holder;
    atomic_int inside;     /* the holder's sink is running */
    atomic_int got_closed; /* the main thread saw BATON_ECLOSED: the holder may finish */
    int holder_rc, destroy_rc;
} closing;

static int holding_sink(void *state, baton_item item)
{
    closing *c = state;
    (void)item;
    if (atomic_exchange(&c->inside, 1) == 0)
        BT_CHECK(bt_wait_flag(&c->got_closed, 120000));
    return 0;
}

static void *holder_main(void *arg)
{
    closing *c = arg;
    c->holder_rc = baton_graph_run(c->holder, c->pool);
    return NULL;
}

static void *destroyer_main(void *arg)
{
    closing *c = arg;
    c->destroy_rc = baton_pool_destroy(c->pool);
    return NULL;
}

static void test_run_on_a_closing_pool(void **state)
{
    (void)state;
    closing c;
    memset(&c, 0, sizeof c);
    atomic_init(&c.inside, 0);
    atomic_init(&c.got_closed, 0);
    baton_pool_config config = bt_pool_config(g_workers, 0, 0);
    bt_assert_rc(baton_pool_create(&config, &c.pool), 0);
    bt_range_source src_state;
    bt_range_init(&src_state, 0, 5, 1, 0);
    c.holder = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(c.holder, "src", bt_range_source_fn, &src_state, 1);
    int sink = bt_graph_sink(c.holder, "holds the pool", holding_sink, &c);
    bt_graph_connect(c.holder, src, sink, 0);
    baton_graph *probe = bt_graph_create(0, 0, NULL, NULL);
    int psrc = bt_graph_source(probe, "probe src", bt_end_source, NULL, 1);
    int psink = bt_graph_sink(probe, "probe sink", bt_drop_sink, NULL);
    bt_graph_connect(probe, psrc, psink, 0);

    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_GRAPH_WATCHDOG_S, "run on a closing pool");
    pthread_t holder, destroyer;
    assert_int_equal(pthread_create(&holder, NULL, holder_main, &c), 0);
    assert_true(bt_wait_flag(&c.inside, 120000));
    assert_int_equal(pthread_create(&destroyer, NULL, destroyer_main, &c), 0);
    /* Until destroy has started, a run works; from then on it is refused. The holder's run keeps
     * the pool alive meanwhile (destroy waits for it). */
    int rc = 0;
    uint64_t tries = 0;
    while ((rc = baton_graph_run(probe, c.pool)) == 0 && tries++ < 10000000)
        bt_sleep_ms(1);
    atomic_store(&c.got_closed, 1);
    pthread_join(holder, NULL);
    pthread_join(destroyer, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    if (rc != BATON_ECLOSED)
        fail_msg("a run on a closing pool: %s: %s", baton_err_name(rc), baton_last_error_message());
    assert_int_equal(c.holder_rc, 0);
    assert_int_equal(c.destroy_rc, 0);
    baton_graph_destroy(c.holder);
    baton_graph_destroy(probe);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positive_returns_are_refused),
        cmocka_unit_test(test_message_of_a_failed_run),
        cmocka_unit_test(test_successful_run_leaves_message),
        cmocka_unit_test(test_run_again_after_failure),
        cmocka_unit_test(test_run_from_two_threads),
        cmocka_unit_test(test_run_from_a_pool_task),
        cmocka_unit_test(test_node_functions_run_on_workers_or_caller),
        cmocka_unit_test(test_busy_time_covers_the_functions),
        cmocka_unit_test(test_run_on_a_closing_pool),
    };
    return cmocka_run_group_tests_name("graph/run_contract", tests, group_setup, group_teardown);
}
