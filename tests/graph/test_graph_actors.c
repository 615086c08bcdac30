/*
 * test_graph_actors.c — who runs where and when, at one pool size (--workers N; CTest runs 1, 2,
 * 4, 8 and 16, oversubscribed on 2 cores):
 *  - a stateful node never runs concurrently with itself (an atomic flag, set on entry and
 *    cleared on exit, must never be found set), and its plain state is handed from worker to
 *    worker without a race (ThreadSanitizer checks that); sources and serial sinks likewise;
 *  - concurrency limits: a map limited to 2 never runs on 3 workers at once, a sink raised to
 *    3 never on 4, and every item still arrives once;
 *  - an ordered sink gets items in source order although parallel maps take variable time and
 *    a filter and a stateful node drop some, with input capacities from 1 to 64; and when its
 *    input capacity is below what one call of its source may emit (its own CTest entry: a hang
 *    there ends the process);
 *  - an ordered sink behind a fanout whose other branch filters gets every item in order;
 *  - two graphs run on one pool at once, from two threads;
 *  - a map, a stateful node and a sink that call baton_parallel_for / baton_join on the pool
 *    that runs the graph finish (no deadlock) with the right results.
 */
#include "support/bt_common.h"

#include "support/bt_graph.h"

BT_DEFINE_POOL_GROUP()

/* Emits next .. end-1 as plain numbers, per_call at a time; checks that it is never re-entered. */
typedef struct num_source {
    uint64_t next, end;
    unsigned per_call;
    uint64_t calls;
    atomic_int in_call;
} num_source;

static void num_source_init(num_source *s, uint64_t begin, uint64_t end, unsigned per_call)
{
    s->next = begin;
    s->end = end;
    s->per_call = per_call;
    s->calls = 0;
    atomic_init(&s->in_call, 0);
}

static int num_source_fn(void *state, baton_emitter *out)
{
    num_source *s = state;
    BT_CHECK_MSG(atomic_exchange(&s->in_call, 1) == 0, "a source ran two calls at once");
    s->calls++;
    int rc = 0;
    for (unsigned k = 0; k < s->per_call && s->next < s->end && rc == 0; k++) {
        rc = baton_emit(out, (baton_item){.u = s->next});
        BT_CHECK_MSG(rc == 0, "emit: %s", baton_err_name(rc));
        if (rc == 0)
            s->next++;
    }
    atomic_store(&s->in_call, 0);
    return rc != 0 ? rc : s->next >= s->end ? BATON_GRAPH_END : 0;
}

/* Simulated work that varies by item: about one item in `one_in` takes `ns`. */
static void vary_work(uint64_t x, unsigned one_in, uint64_t ns)
{
    if (baton_mix64(x) % one_in == 0)
        bt_busy_ns(ns);
}

/* ---- stateful nodes are actors --------------------------------------------------------------- */

typedef struct actor_state {
    atomic_int in_call;
    /* Plain fields: only the one worker that runs the actor at a time touches them. */
    uint64_t count, sum;
    uint64_t history[64];
    uint64_t salt;
} actor_state;

static int actor_fn(void *ctx, baton_item item, baton_emitter *out)
{
    actor_state *a = ctx;
    BT_CHECK_MSG(atomic_exchange(&a->in_call, 1) == 0,
                 "a stateful node ran concurrently with itself");
    a->count++;
    a->sum += item.u;
    a->history[a->count % 64] ^= item.u + a->salt;
    /* Stay inside now and then, so that a second worker that wrongly entered would be seen. */
    vary_work(item.u ^ a->salt, 64, 2000);
    atomic_store(&a->in_call, 0);
    return baton_emit(out, item);
}

static int work_map(void *ctx, baton_item item, baton_emitter *out)
{
    (void)ctx;
    vary_work(item.u, 32, 3000);
    return baton_emit(out, item);
}

typedef struct plain_sink {
    atomic_int in_call;
    uint64_t count, sum;
    unsigned char *seen;
    uint64_t n;
} plain_sink;

static int plain_sink_fn(void *state, baton_item item)
{
    plain_sink *s = state;
    BT_CHECK_MSG(atomic_exchange(&s->in_call, 1) == 0, "a serial sink ran two calls at once");
    s->count++;
    s->sum += item.u;
    if (item.u < s->n && s->seen[item.u]++ != 0)
        BT_CHECK_MSG(false, "sink got %llu twice", (unsigned long long)item.u);
    atomic_store(&s->in_call, 0);
    return 0;
}

static void test_stateful_never_concurrent(void **state)
{
    (void)state;
    size_t n = bt_scaled(30000, 1000);
    /* Three sources feed one actor (through a parallel map), which feeds a second actor. */
    num_source sources[3];
    actor_state first, second;
    memset(&first, 0, sizeof first);
    memset(&second, 0, sizeof second);
    first.salt = 1;
    second.salt = 2;
    plain_sink sink;
    memset(&sink, 0, sizeof sink);
    sink.seen = calloc(n, 1);
    sink.n = n;
    assert_non_null(sink.seen);

    baton_graph *g = bt_graph_create(32, 0, NULL, NULL);
    int map = bt_graph_map(g, "work", work_map, NULL, 1);
    int a1 = bt_graph_stateful(g, "actor 1", actor_fn, &first, 1);
    int a2 = bt_graph_stateful(g, "actor 2", actor_fn, &second, 1);
    int sink_id = bt_graph_sink(g, "sink", plain_sink_fn, &sink);
    for (int s = 0; s < 3; s++) {
        num_source_init(&sources[s], n * (uint64_t)s / 3, n * (uint64_t)(s + 1) / 3,
                        (unsigned)(1 + 3 * s));
        int src = bt_graph_source(g, NULL, num_source_fn, &sources[s], (unsigned)(1 + 3 * s));
        bt_graph_connect(g, src, map, 0);
    }
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){map, a1, a2, sink_id}, 4), 0);
    bt_graph_run_ok(g, g_pool, "stateful never concurrent");

    uint64_t expected_sum = (uint64_t)n * (n - 1) / 2;
    assert_int_equal(first.count, n);
    assert_int_equal(second.count, n);
    assert_int_equal(first.sum, expected_sum);
    assert_int_equal(second.sum, expected_sum);
    assert_int_equal(sink.count, n);
    assert_int_equal(sink.sum, expected_sum);
    for (size_t i = 0; i < n; i++)
        if (sink.seen[i] != 1)
            fail_msg("item %zu arrived %u times", i, (unsigned)sink.seen[i]);
    assert_int_equal(bt_node_stats(g, a1).items_in, n);
    assert_int_equal(bt_node_stats(g, a2).items_out, n);
    baton_graph_destroy(g);
    free(sink.seen);
}

/* ---- concurrency limits ---------------------------------------------------------------------- */

typedef struct limited {
    atomic_int running, most;
    unsigned limit;
} limited;

static void limited_enter(limited *l, const char *what)
{
    int now = atomic_fetch_add(&l->running, 1) + 1;
    int most = atomic_load(&l->most);
    while (now > most && !atomic_compare_exchange_weak(&l->most, &most, now)) {
    }
    BT_CHECK_MSG((unsigned)now <= l->limit, "%s ran on %d workers at once, limit %u", what, now,
                 l->limit);
}

static int limited_map(void *ctx, baton_item item, baton_emitter *out)
{
    limited *l = ctx;
    limited_enter(l, "a map");
    bt_busy_ns(baton_mix64(item.u) % 8 == 0 ? 20000 : 500);
    atomic_fetch_sub(&l->running, 1);
    return baton_emit(out, item);
}

typedef struct limited_sink {
    limited lim;
    atomic_uchar *seen;
    uint64_t n;
} limited_sink;

static int limited_sink_fn(void *state, baton_item item)
{
    limited_sink *s = state;
    limited_enter(&s->lim, "a sink");
    if (item.u < s->n && atomic_fetch_add(&s->seen[item.u], 1) != 0)
        BT_CHECK_MSG(false, "sink got %llu twice", (unsigned long long)item.u);
    bt_busy_ns(500);
    atomic_fetch_sub(&s->lim.running, 1);
    return 0;
}

static void test_concurrency_limits(void **state)
{
    (void)state;
    size_t n = bt_scaled(4000, 400);
    num_source source;
    num_source_init(&source, 0, n, 8);
    limited two = {0, 0, 2}, one = {0, 0, 1};
    limited_sink sink;
    memset(&sink, 0, sizeof sink);
    sink.lim.limit = 3;
    sink.seen = calloc(n, sizeof *sink.seen);
    sink.n = n;
    assert_non_null(sink.seen);

    baton_graph *g = bt_graph_create(0, 4, NULL, NULL);
    int src = bt_graph_source(g, "numbers", num_source_fn, &source, 8);
    baton_node_config cfg = bt_node_config(BATON_NODE_MAP, "at most 2");
    cfg.map = limited_map;
    cfg.ctx = &two;
    cfg.concurrency = 2;
    int m2 = bt_graph_add(g, &cfg);
    cfg = bt_node_config(BATON_NODE_MAP, "serial map");
    cfg.map = limited_map;
    cfg.ctx = &one;
    cfg.concurrency = 1;
    int m1 = bt_graph_add(g, &cfg);
    cfg = bt_node_config(BATON_NODE_SINK, "at most 3");
    cfg.sink = limited_sink_fn;
    cfg.ctx = &sink;
    cfg.concurrency = 3;
    int sink_id = bt_graph_add(g, &cfg);
    /* A wide map before the limited ones, so that there is parallel work to limit. */
    int wide = bt_graph_map(g, "wide", work_map, NULL, 1);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, wide, m2, m1, sink_id}, 5), 0);
    bt_graph_run_ok(g, g_pool, "concurrency limits");
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&sink.seen[i]) != 1)
            fail_msg("item %zu arrived %u times", i, (unsigned)atomic_load(&sink.seen[i]));
    printf("# most at once: map(2) %d, map(1) %d, sink(3) %d\n", atomic_load(&two.most),
           atomic_load(&one.most), atomic_load(&sink.lim.most));
    assert_true(atomic_load(&two.most) <= 2);
    assert_true(atomic_load(&one.most) <= 1);
    assert_true(atomic_load(&sink.lim.most) <= 3);
    baton_graph_destroy(g);
    free(sink.seen);
}

/* ---- ordered sink ---------------------------------------------------------------------------- */

static bool dropped_by_filter(uint64_t x)
{
    return baton_mix64(x ^ 0x77) % 7 == 0;
}

static bool dropped_by_actor(uint64_t x)
{
    return x % 11 == 5;
}

static int slow_some_map(void *ctx, baton_item item, baton_emitter *out)
{
    (void)ctx;
    /* One in 16 takes 20 us, one in 256 takes 300 us: later items overtake earlier ones. */
    vary_work(item.u, 16, 20000);
    vary_work(item.u + 1, 256, 300000);
    return baton_emit(out, item);
}

static int filter_map(void *ctx, baton_item item, baton_emitter *out)
{
    (void)ctx;
    vary_work(item.u + 2, 8, 5000);
    return dropped_by_filter(item.u) ? 0 : baton_emit(out, item);
}

static int dropping_actor(void *ctx, baton_item item, baton_emitter *out)
{
    uint64_t *seen = ctx;
    (*seen)++;
    return dropped_by_actor(item.u) ? 0 : baton_emit(out, item);
}

typedef struct ordered_sink {
    uint64_t next_candidate; /* smallest source number not yet accounted for */
    uint64_t n, received;
    atomic_int in_call;
} ordered_sink;

static int ordered_sink_fn(void *state, baton_item item)
{
    ordered_sink *s = state;
    BT_CHECK_MSG(atomic_exchange(&s->in_call, 1) == 0, "an ordered sink ran two calls at once");
    /* In order: the item is the next one that neither the filter nor the actor dropped. */
    uint64_t expected = s->next_candidate;
    while (expected < s->n && (dropped_by_filter(expected) || dropped_by_actor(expected)))
        expected++;
    BT_CHECK_MSG(item.u == expected, "ordered sink got %llu, expected %llu (after %llu items)",
                 (unsigned long long)item.u, (unsigned long long)expected,
                 (unsigned long long)s->received);
    if (item.u >= expected)
        s->next_candidate = item.u + 1;
    s->received++;
    atomic_store(&s->in_call, 0);
    return 0;
}

/* source -> variable-time map -> filter -> dropping actor -> ordered sink, whose input edge has
 * `capacity` units. */
static void run_ordered(size_t capacity, unsigned batch, unsigned per_call)
{
    size_t n = bt_scaled(20000, 1000);
    num_source source;
    num_source_init(&source, 0, n, per_call);
    ordered_sink sink = {0, n, 0, 0};
    atomic_init(&sink.in_call, 0);
    uint64_t actor_seen = 0;

    baton_graph *g = bt_graph_create(0, batch, NULL, NULL);
    int src = bt_graph_source(g, "numbers", num_source_fn, &source, per_call);
    int slow = bt_graph_map(g, "variable time", slow_some_map, NULL, 1);
    int filter = bt_graph_map(g, "filter", filter_map, NULL, 1);
    int actor = bt_graph_stateful(g, "dropping actor", dropping_actor, &actor_seen, 1);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "in order");
    cfg.sink = ordered_sink_fn;
    cfg.ctx = &sink;
    cfg.flags = BATON_NODE_ORDERED;
    int sink_id = bt_graph_add(g, &cfg);
    bt_graph_connect(g, src, slow, 0);
    bt_graph_connect(g, slow, filter, 0);
    bt_graph_connect(g, filter, actor, 0);
    bt_graph_connect(g, actor, sink_id, capacity);
    char what[64];
    snprintf(what, sizeof what, "ordered sink, input capacity %zu", capacity);
    bt_graph_run_ok(g, g_pool, what);

    uint64_t expected = 0, after_filter = 0;
    for (uint64_t x = 0; x < n; x++) {
        after_filter += !dropped_by_filter(x);
        expected += !dropped_by_filter(x) && !dropped_by_actor(x);
    }
    assert_int_equal(sink.received, expected);
    assert_int_equal(actor_seen, after_filter);
    assert_int_equal(bt_node_stats(g, sink_id).items_in, expected);
    baton_graph_destroy(g);
}

static void test_ordered_sink(void **state)
{
    (void)state;
    const size_t capacities[] = {1, 2, 16, 64};
    for (size_t c = 0; c < sizeof capacities / sizeof capacities[0]; c++)
        run_ordered(capacities[c], c % 2 ? 1 : 0, c == 3 ? 4 : 1);
}

/* The shortest ordered path with parallel maps: no actor, so the checker skips only the
 * filter's drops. */
typedef struct ordered_plain_sink {
    uint64_t last;
    bool any;
    uint64_t received;
} ordered_plain_sink;

static int ordered_plain_fn(void *state, baton_item item)
{
    ordered_plain_sink *s = state;
    uint64_t expected = s->any ? s->last + 1 : 0;
    while (dropped_by_filter(expected))
        expected++;
    BT_CHECK_MSG(item.u == expected, "ordered sink got %llu, expected %llu",
                 (unsigned long long)item.u, (unsigned long long)expected);
    s->last = item.u;
    s->any = true;
    s->received++;
    return 0;
}

static void test_ordered_sink_filter_only(void **state)
{
    (void)state;
    size_t n = bt_scaled(20000, 1000);
    num_source source;
    num_source_init(&source, 0, n, 2);
    ordered_plain_sink sink = {0, false, 0};
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "numbers", num_source_fn, &source, 2);
    int slow = bt_graph_map(g, "variable time", slow_some_map, NULL, 1);
    int filter = bt_graph_map(g, "filter", filter_map, NULL, 1);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "in order");
    cfg.sink = ordered_plain_fn;
    cfg.ctx = &sink;
    cfg.flags = BATON_NODE_ORDERED;
    cfg.concurrency = 1; /* explicit 1 is allowed */
    int sink_id = bt_graph_add(g, &cfg);
    bt_graph_connect(g, src, slow, 0);
    bt_graph_connect(g, slow, filter, 0);
    bt_graph_connect(g, filter, sink_id, 8);
    bt_graph_run_ok(g, g_pool, "ordered sink, filter only");
    uint64_t expected = 0;
    for (uint64_t x = 0; x < n; x++)
        expected += !dropped_by_filter(x);
    assert_int_equal(sink.received, expected);
    baton_graph_destroy(g);
}

static int identity_pass(void *ctx, baton_item item, baton_emitter *out)
{
    (void)ctx;
    return baton_emit(out, item);
}

/* Every number in order, none dropped. */
static int ordered_count_fn(void *state, baton_item item)
{
    ordered_plain_sink *s = state;
    uint64_t expected = s->any ? s->last + 1 : 0;
    BT_CHECK_MSG(item.u == expected, "ordered sink got %llu, expected %llu",
                 (unsigned long long)item.u, (unsigned long long)expected);
    s->last = item.u;
    s->any = true;
    s->received++;
    return 0;
}

/* A fanout on the ordered path: one branch goes to the ordered sink, the other (with a filter)
 * to a plain sink. Only one path reaches the ordered sink, so run accepts it, and it gets every
 * number in order. */
static int plain_count(void *state, baton_item item)
{
    (void)item;
    (*(uint64_t *)state)++;
    return 0;
}

static void test_ordered_sink_behind_fanout(void **state)
{
    (void)state;
    size_t n = bt_scaled(10000, 500);
    num_source source;
    num_source_init(&source, 0, n, 2);
    ordered_plain_sink sink = {0, false, 0};
    uint64_t other = 0;
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "numbers", num_source_fn, &source, 2);
    int slow = bt_graph_map(g, "variable time", slow_some_map, NULL, 1);
    int fan = bt_graph_fanout(g, "fanout", NULL, NULL);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "in order");
    cfg.sink = ordered_count_fn;
    cfg.ctx = &sink;
    cfg.flags = BATON_NODE_ORDERED;
    int ordered = bt_graph_add(g, &cfg);
    int filter = bt_graph_map(g, "filter", filter_map, NULL, 1);
    int plain = bt_graph_sink(g, "other branch", plain_count, &other);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){src, slow, fan, ordered}, 4), 0);
    bt_assert_rc(baton_graph_connect_path(g, (const int[]){fan, filter, plain}, 3), 0);
    bt_graph_run_ok(g, g_pool, "ordered sink behind a fanout");
    uint64_t kept = 0;
    for (uint64_t x = 0; x < n; x++)
        kept += !dropped_by_filter(x);
    assert_int_equal(sink.received, n);
    assert_int_equal(other, kept);
    baton_graph_destroy(g);
}

/* ---- two graphs on one pool at once ---------------------------------------------------------- */

typedef struct graph_thread {
    num_source source;
    plain_sink sink;
    size_t n;
    int rc;
} graph_thread;

static void *run_graph_thread(void *arg)
{
    graph_thread *t = arg;
    baton_graph *g = NULL;
    t->rc = baton_graph_create(NULL, &g);
    if (t->rc != 0)
        return NULL;
    int nodes[4];
    nodes[0] = baton_graph_source(g, "numbers", num_source_fn, &t->source);
    nodes[1] = baton_graph_map(g, "work", work_map, NULL);
    nodes[2] = baton_graph_map(g, "work 2", work_map, NULL);
    nodes[3] = baton_graph_sink(g, "sink", plain_sink_fn, &t->sink);
    t->rc = baton_graph_connect_path(g, nodes, 4);
    if (t->rc == 0)
        t->rc = baton_graph_run(g, g_pool);
    baton_graph_destroy(g);
    return NULL;
}

static void test_two_graphs_one_pool(void **state)
{
    (void)state;
    graph_thread threads[2];
    pthread_t ids[2];
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_GRAPH_WATCHDOG_S, "two graphs on one pool");
    for (int k = 0; k < 2; k++) {
        graph_thread *t = &threads[k];
        memset(t, 0, sizeof *t);
        t->n = bt_scaled(20000, 1000);
        num_source_init(&t->source, 0, t->n, 1);
        t->sink.seen = calloc(t->n, 1);
        t->sink.n = t->n;
        assert_non_null(t->sink.seen);
        atomic_init(&t->sink.in_call, 0);
        assert_int_equal(pthread_create(&ids[k], NULL, run_graph_thread, t), 0);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(ids[k], NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    for (int k = 0; k < 2; k++) {
        bt_assert_rc(threads[k].rc, 0);
        assert_int_equal(threads[k].sink.count, threads[k].n);
        assert_int_equal(threads[k].sink.sum, (uint64_t)threads[k].n * (threads[k].n - 1) / 2);
        free(threads[k].sink.seen);
    }
}

/* ---- an ordered sink whose input is smaller than one call of its source ---------------------- */

/* source (max_emit 4) -> map -> ordered sink with an input capacity of 2. Each edge's capacity
 * is at least its producer's max_emit, so connect accepts it; the run must then either complete
 * in order or be refused by run's checks, never hang (its own CTest entry, since a hang ends the
 * process through the watchdog). */
static void test_ordered_window_below_source_emit(void **state)
{
    (void)state;
    size_t n = bt_scaled(2000, 200);
    num_source source;
    num_source_init(&source, 0, n, 4);
    ordered_plain_sink sink = {0, false, 0};
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int src = bt_graph_source(g, "four per call", num_source_fn, &source, 4);
    int map = bt_graph_map(g, "pass", identity_pass, NULL, 1);
    baton_node_config cfg = bt_node_config(BATON_NODE_SINK, "ordered, input 2");
    cfg.sink = ordered_count_fn;
    cfg.ctx = &sink;
    cfg.flags = BATON_NODE_ORDERED;
    int sink_id = bt_graph_add(g, &cfg);
    bt_graph_connect(g, src, map, 4);
    bt_graph_connect(g, map, sink_id, 2);
    bt_watchdog dog;
    bt_watchdog_start(&dog, 30, "ordered sink with an input capacity (2) below its source's "
                                "max_emit (4)");
    int rc = baton_graph_run(g, g_pool);
    bt_watchdog_stop(&dog);
    if (rc == BATON_EINVAL) {
        printf("# refused: %s\n", baton_last_error_message());
        bt_assert_contains(baton_last_error_message(), "ordered, input 2");
    } else {
        bt_assert_rc(rc, 0);
        bt_assert_no_thread_failures();
        assert_int_equal(sink.received, n);
    }
    baton_graph_destroy(g);
}

/* ---- nested parallelism on the graph's own pool ---------------------------------------------- */

static int sum_range(size_t begin, size_t end, void *ctx)
{
    atomic_ullong *sum = ctx;
    unsigned long long local = 0;
    for (size_t i = begin; i < end; i++)
        local += i;
    atomic_fetch_add(sum, local);
    return 0;
}

/* Emits x + sum(0 .. 999), computed with a parallel_for on the same pool. */
static int nested_for_map(void *ctx, baton_item item, baton_emitter *out)
{
    baton_pool *pool = ctx;
    atomic_ullong sum;
    atomic_init(&sum, 0);
    int rc = baton_parallel_for(pool, 0, 1000, item.u % 3 == 0 ? 0 : 64, sum_range, &sum);
    BT_CHECK_MSG(rc == 0, "parallel_for inside a map: %s", baton_err_name(rc));
    if (rc != 0)
        return rc;
    return baton_emit(out, (baton_item){.u = item.u + atomic_load(&sum)});
}

static int join_half(void *ctx)
{
    atomic_ullong *sum = ctx;
    return sum_range(0, 100, sum);
}

typedef struct nested_actor {
    baton_pool *pool;
    uint64_t count;
} nested_actor;

static int nested_join_actor(void *ctx, baton_item item, baton_emitter *out)
{
    nested_actor *a = ctx;
    atomic_ullong sum;
    atomic_init(&sum, 0);
    int rc = baton_join(a->pool, join_half, &sum, join_half, &sum);
    BT_CHECK_MSG(rc == 0 && atomic_load(&sum) == 2 * 4950, "join inside an actor: %s, sum %llu",
                 baton_err_name(rc), (unsigned long long)atomic_load(&sum));
    a->count++;
    return rc != 0 ? rc : baton_emit(out, item);
}

typedef struct nested_sink {
    baton_pool *pool;
    uint64_t n, sum, count;
} nested_sink;

static int nested_sink_fn(void *state, baton_item item)
{
    nested_sink *s = state;
    BT_CHECK(item.u >= 499500 && item.u - 499500 < s->n);
    if (item.u % 16 == 0) {
        atomic_ullong sum;
        atomic_init(&sum, 0);
        int rc = baton_parallel_for(s->pool, 0, 1000, 0, sum_range, &sum);
        BT_CHECK_MSG(rc == 0 && atomic_load(&sum) == 499500, "parallel_for inside a sink: %s",
                     baton_err_name(rc));
    }
    s->sum += item.u - 499500;
    s->count++;
    return 0;
}

static void test_nested_parallel_for(void **state)
{
    (void)state;
    size_t n = bt_scaled(3000, 200);
    num_source source;
    num_source_init(&source, 0, n, 4);
    nested_actor actor = {g_pool, 0};
    nested_sink sink = {g_pool, n, 0, 0};
    baton_graph *g = bt_graph_create(0, 0, NULL, NULL);
    int nodes[4];
    nodes[0] = bt_graph_source(g, "numbers", num_source_fn, &source, 4);
    nodes[1] = bt_graph_map(g, "parallel_for inside", nested_for_map, g_pool, 1);
    nodes[2] = bt_graph_stateful(g, "join inside", nested_join_actor, &actor, 1);
    nodes[3] = bt_graph_sink(g, "parallel_for in sink", nested_sink_fn, &sink);
    bt_assert_rc(baton_graph_connect_path(g, nodes, 4), 0);
    bt_graph_run_ok(g, g_pool, "nested parallel_for");
    assert_int_equal(sink.count, n);
    assert_int_equal(sink.sum, (uint64_t)n * (n - 1) / 2);
    assert_int_equal(actor.count, n);
    baton_graph_destroy(g);
    bt_assert_pool_usable(g_pool);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stateful_never_concurrent),
        cmocka_unit_test(test_concurrency_limits),
        cmocka_unit_test(test_ordered_sink),
        cmocka_unit_test(test_ordered_sink_filter_only),
        cmocka_unit_test(test_ordered_sink_behind_fanout),
        cmocka_unit_test(test_two_graphs_one_pool),
        cmocka_unit_test(test_ordered_window_below_source_emit),
        cmocka_unit_test(test_nested_parallel_for),
    };
    return cmocka_run_group_tests_name("graph/actors", tests, group_setup, group_teardown);
}
