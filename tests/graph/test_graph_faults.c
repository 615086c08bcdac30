/*
 * test_graph_faults.c — the graph layer when allocations fail (baton__alloc_fail_after(n) for
 * n = 0, 1, 2, ... until the call succeeds). A counting allocator, installed before any other
 * baton call, shows that nothing leaks.
 *  - create: BATON_ENOMEM hands out no graph and leaks nothing;
 *  - add (across the growth of the graph's node arrays): BATON_ENOMEM adds nothing (the count
 *    and the next id are unchanged) and the same add then succeeds;
 *  - connect (across the growth of the edge lists): BATON_ENOMEM makes no edge (making it again
 *    succeeds, where a made edge would be refused as a duplicate);
 *  - run (its rings, allocated once per run): BATON_ENOMEM leaks nothing, frees every item made
 *    (by a sink or the release function), and the graph then runs normally.
 * Building happens on the main thread; runs use a pool of two workers, whose allocations, if
 * any, count against the same budget and must surface as the run's BATON_ENOMEM as well.
 */
#include "support/bt_common.h"

#include "core/alloc.h"
#include "support/bt_graph.h"

/* ---- the counting allocator ------------------------------------------------------------------ */

static atomic_long live_blocks;

static void *count_malloc(size_t size)
{
    void *ptr = malloc(size);
    if (ptr != NULL)
        atomic_fetch_add(&live_blocks, 1);
    return ptr;
}

static void *count_aligned_alloc(size_t alignment, size_t size)
{
    void *ptr = aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
    if (ptr != NULL)
        atomic_fetch_add(&live_blocks, 1);
    return ptr;
}

static void count_free(void *ptr)
{
    if (ptr != NULL)
        atomic_fetch_sub(&live_blocks, 1);
    free(ptr);
}

enum { MAX_N = 100000 };

static unsigned g_workers;
static baton_pool *g_pool;

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

static int noop_source(void *state, baton_emitter *out)
{
    (void)state;
    (void)out;
    return BATON_GRAPH_END;
}

/* The pool keeps what its first tasks allocate (its free lists): a first graph run, before
 * blocks are counted, so that what stays is not taken for the graph's. */
static int warm_source(void *state, baton_emitter *out)
{
    int *left = state;
    if (*left == 0)
        return BATON_GRAPH_END;
    (*left)--;
    return baton_emit(out, baton_item_int(*left));
}

static void warm_up_pool(void)
{
    int left = 100;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "warm", warm_source, &left, 1);
    int sink = bt_graph_sink(g, "sink", noop_sink, NULL);
    bt_graph_connect(g, src, sink, 0);
    bt_graph_run_ok(g, g_pool, "warm-up");
    baton_graph_destroy(g);
}

/* ---- create, add, connect -------------------------------------------------------------------- */

static void test_create_faults(void **state)
{
    (void)state;
    long before = atomic_load(&live_blocks);
    int failures = 0;
    for (long n = 0;; n++) {
        assert_true(n < MAX_N);
        baton_graph *g = (baton_graph *)(uintptr_t)0x1234;
        baton__alloc_fail_after(n);
        int rc = baton_graph_create(NULL, &g);
        baton__alloc_fail_after(-1);
        if (rc == 0) {
            baton_graph_destroy(g);
            break;
        }
        bt_assert_rc(rc, BATON_ENOMEM);
        assert_true(g == (baton_graph *)(uintptr_t)0x1234);
        assert_int_equal(atomic_load(&live_blocks), before);
        failures++;
    }
    assert_true(failures >= 1);
    assert_int_equal(atomic_load(&live_blocks), before);
}

static void test_add_and_connect_faults(void **state)
{
    (void)state;
    warm_up_pool();
    long before = atomic_load(&live_blocks);
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    enum { N_MAPS = 300 };
    long add_faults = 0, connect_faults = 0;
    char name[32];
    int ids[N_MAPS + 3];
    int n_ids = 0;

    /* A source, a fanout, N_MAPS maps behind it, one sink behind them all: the fanout's
     * successor list and the sink's predecessor list grow with every edge. */
    for (int i = 0; i < N_MAPS + 3; i++) {
        baton_node_config cfg;
        if (i == 0) {
            cfg = bt_node_config(BATON_NODE_SOURCE, "source");
            cfg.source = noop_source;
        } else if (i == 1) {
            cfg = bt_node_config(BATON_NODE_FANOUT, "fanout");
        } else if (i == 2) {
            cfg = bt_node_config(BATON_NODE_SINK, "sink");
            cfg.sink = noop_sink;
        } else {
            snprintf(name, sizeof name, "map %d", i);
            cfg = bt_node_config(BATON_NODE_MAP, i % 2 ? name : NULL);
            cfg.map = noop_map;
        }
        for (long k = 0;; k++) {
            assert_true(k < MAX_N);
            baton__alloc_fail_after(k);
            int id = baton_graph_add(g, &cfg);
            baton__alloc_fail_after(-1);
            if (id >= 0) {
                assert_int_equal(id, i);
                break;
            }
            bt_assert_rc(id, BATON_ENOMEM);
            assert_int_equal(baton_graph_node_count(g), (unsigned)i);
            assert_null(baton_graph_node_name(g, i));
            add_faults++;
        }
        ids[n_ids++] = i;
    }
    for (int i = 3; i < n_ids; i++) {
        int edges[2][2] = {{1, ids[i]}, {ids[i], 2}};
        for (int e = 0; e < 2; e++) {
            for (long k = 0;; k++) {
                assert_true(k < MAX_N);
                baton__alloc_fail_after(k);
                int rc = baton_graph_connect(g, edges[e][0], edges[e][1], 1);
                baton__alloc_fail_after(-1);
                if (rc == 0)
                    break;
                /* BATON_EINVAL here would mean the failed attempt made the edge after all. */
                bt_assert_rc(rc, BATON_ENOMEM);
                connect_faults++;
            }
        }
    }
    for (long k = 0;; k++) {
        assert_true(k < MAX_N);
        baton__alloc_fail_after(k);
        int rc = baton_graph_connect(g, 0, 1, 1);
        baton__alloc_fail_after(-1);
        if (rc == 0)
            break;
        bt_assert_rc(rc, BATON_ENOMEM);
        connect_faults++;
    }
    printf("# %d adds: %ld refused for want of memory; %d connects: %ld refused\n", n_ids,
           add_faults, 2 * N_MAPS + 1, connect_faults);
    assert_true(add_faults >= 1);
    /* The graph is whole: it runs (the source ends at once). */
    bt_graph_run_ok(g, g_pool, "graph built under faults");
    baton_graph_destroy(g);
    assert_int_equal(atomic_load(&live_blocks), before);
}

/* ---- run ------------------------------------------------------------------------------------- */

typedef struct fault_run {
    bt_tracker tracker;
    uint64_t next, n;
    uint64_t calls;
    uint64_t received[2];
} fault_run;

static int fault_source(void *state, baton_emitter *out)
{
    fault_run *r = state;
    r->calls++;
    for (int k = 0; k < 2 && r->next < r->n; k++) {
        bt_payload *p = bt_item_new(&r->tracker, r->next, 0);
        if (p == NULL)
            return BATON_ENOMEM;
        int rc = baton_emit(out, baton_item_ptr(p));
        if (rc != 0) {
            bt_item_free(&r->tracker, p);
            return rc;
        }
        r->next++;
    }
    return r->next >= r->n ? BATON_GRAPH_END : 0;
}

static int fault_sink_fn(fault_run *r, int which, baton_item item)
{
    if (!bt_item_valid(&r->tracker, item.p))
        return BATON_EINVAL;
    r->received[which]++;
    bt_item_free(&r->tracker, item.p);
    return 0;
}

static int fault_sink0(void *state, baton_item item)
{
    return fault_sink_fn(state, 0, item);
}

static int fault_sink1(void *state, baton_item item)
{
    return fault_sink_fn(state, 1, item);
}

static void fault_reset(fault_run *r)
{
    bt_tracker_fini(&r->tracker);
    bt_tracker_init(&r->tracker, r->n, r->n);
    r->next = 0;
    r->calls = 0;
    r->received[0] = r->received[1] = 0;
}

static void test_run_faults(void **state)
{
    (void)state;
    fault_run r;
    memset(&r, 0, sizeof r);
    r.n = 500;
    bt_tracker_init(&r.tracker, r.n, r.n);
    long before = atomic_load(&live_blocks);
    baton_graph *g = bt_graph_create(8, 4, bt_item_release, &r.tracker);
    int src = bt_graph_source(g, "source", fault_source, &r, 2);
    int map = bt_graph_map(g, "map", noop_map, NULL, 1);
    int fan = bt_graph_fanout(g, "fanout", bt_item_copy, &r.tracker);
    int s0 = bt_graph_sink(g, "sink 0", fault_sink0, &r);
    int s1 = bt_graph_sink(g, "sink 1", fault_sink1, &r);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, map, fan, s0}, 4), 0);
    bt_graph_connect(g, fan, s1, 2);
    /* One run without faults first: the pool keeps what its first tasks allocate (its free
     * lists), which is not the graph's to give back. */
    bt_graph_run_ok(g, g_pool, "warm-up run");
    long built = atomic_load(&live_blocks);

    long failures = 0, polled_in_failures = 0;
    for (long k = 0;; k++) {
        assert_true(k < MAX_N);
        fault_reset(&r);
        baton__alloc_fail_after(k);
        int rc = bt_graph_run(g, g_pool, "run under allocation faults");
        baton__alloc_fail_after(-1);
        bt_assert_no_thread_failures();
        bool faulted_run_failed = rc != 0;
        if (rc != 0) {
            bt_assert_rc(rc, BATON_ENOMEM);
            failures++;
            polled_in_failures += r.calls != 0;
            /* Whatever was made was freed, by a sink or by the release function. */
            bt_assert_all_freed(&r.tracker);
            /* The run's own allocations are gone with it. */
            assert_int_equal(atomic_load(&live_blocks), built);
            /* And the graph runs normally right after. */
            fault_reset(&r);
            rc = bt_graph_run(g, g_pool, "run after a failed one");
            if (rc != 0)
                fail_msg("allocation %ld failing: the next run returned %s: %s", k,
                         baton_err_name(rc), baton_last_error_message());
        }
        assert_int_equal(r.received[0], r.n);
        assert_int_equal(r.received[1], r.n);
        bt_assert_all_freed(&r.tracker);
        assert_int_equal(bt_node_stats(g, s1).items_in, r.n);
        /* The sweep goes on until the faulted run itself succeeds. */
        if (!faulted_run_failed)
            break;
    }
    printf("# the run failed for want of memory %ld times (the source polled in %ld of them), "
           "then worked\n",
           failures, polled_in_failures);
    assert_true(failures >= 1);
    baton_graph_destroy(g);
    assert_int_equal(atomic_load(&live_blocks), before);
    bt_tracker_fini(&r.tracker);
}

static int group_setup(void **state)
{
    (void)state;
    baton_pool_config config = bt_pool_config(g_workers, 0, 0);
    return baton_pool_create(&config, &g_pool) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    baton__alloc_fail_after(-1);
    if (baton_pool_destroy(g_pool) != 0)
        return -1;
    return atomic_load(&live_blocks) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    /* Before any other baton call, so that every block is counted. */
    atomic_init(&live_blocks, 0);
    baton_allocator counting = {count_malloc, count_aligned_alloc, count_free};
    if (baton_set_allocator(&counting) != 0)
        return 1;
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_faults),
        cmocka_unit_test(test_add_and_connect_faults),
        cmocka_unit_test(test_run_faults),
    };
    return cmocka_run_group_tests_name("graph/faults", tests, group_setup, group_teardown);
}
