/*
 * test_queue_drain_failures.c — baton_workqueue_drain_parallel when things go wrong or get unusual,
 * at one pool size (--workers N; CTest runs 1 to 16): errors in process and deliver (first, middle
 * and last item; the lower seq wins; unordered accounting), with every item delivered, handed back
 * or left in the queue exactly once; drains inside tasks of the pool itself; process calling
 * the pool; deliver NULL; bad arguments, a short struct_size (an older header's struct) and the
 * struct_size rule, and a second drain on the same receiver (BATON_EBUSY). test_queue_drain.c has
 * the ordinary paths; bt_queue_drain.h the shared parts.
 *
 * Callbacks run on pool workers and inside baton: they check with BT_CHECK only.
 */
#include "support/bt_queue_drain.h"

/* ---- errors ---------------------------------------------------------------------------------- */

enum rest_how { REST_BY_RECV, REST_BY_SECOND_DRAIN };

typedef struct fail_case {
    const char *what;
    unsigned flags;
    uint64_t n;
    uint64_t process_seq[2]; /* UINT64_MAX: none */
    int process_rc[2];
    uint64_t process_delay_ns[2];
    uint64_t deliver_seq; /* UINT64_MAX: none */
    int deliver_rc;
    int expect_rc;
    uint64_t expect_failed; /* the seq whose error wins */
    enum rest_how rest;
} fail_case;

/*
 * Sends n items from a producer thread through a 64-slot queue while the drain runs with the
 * case's failures, checks the stop, then takes what the drain left in the queue (by recv or by a
 * second drain) and checks that every item sent was seen exactly once.
 */
static void run_fail_case(const fail_case *fc)
{
    const bool ordered = fc->flags == 0;
    const uint64_t n = fc->n, k = fc->expect_failed;
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_DRAIN_WATCHDOG_S, fc->what);
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(64, 0, &tx, &rx), 0);
    bt_dctx c;
    bt_dctx_init(&c, g_pool, n, ordered);
    for (int i = 0; i < 2; i++) {
        c.fail_process_seq[i] = fc->process_seq[i];
        c.fail_process_rc[i] = fc->process_rc[i];
        c.fail_process_delay_ns[i] = fc->process_delay_ns[i];
    }
    c.fail_deliver_seq = fc->deliver_seq;
    c.fail_deliver_rc = fc->deliver_rc;
    bt_producer p = {0};
    bt_producer_start(&p, tx, 0, n);
    baton_drain_ops ops = bt_d_ops(fc->flags, 0);
    baton_drain_report rep;
    memset(&rep, 0xee, sizeof rep);
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep);
    bt_assert_no_thread_failures();
    if (rc != fc->expect_rc)
        fail_msg("%s: the drain returned %d (%s), expected %d (%s)", fc->what, rc,
                 baton_err_name(rc), fc->expect_rc, baton_err_name(fc->expect_rc));
    if (rep.failed_seq != k)
        fail_msg("%s: failed_seq %llu, expected %llu", fc->what,
                 (unsigned long long)rep.failed_seq, (unsigned long long)k);
    if (rep.accepted <= k || rep.accepted > n || rep.delivered + rep.undelivered != rep.accepted)
        fail_msg("%s: report accepted %llu delivered %llu undelivered %llu (n %llu, k %llu)",
                 fc->what, (unsigned long long)rep.accepted, (unsigned long long)rep.delivered,
                 (unsigned long long)rep.undelivered, (unsigned long long)n,
                 (unsigned long long)k);
    assert_int_equal(rep.delivered, atomic_load(&c.delivered));
    assert_int_equal(rep.processed, atomic_load(&c.processed));
    if (c.u_n != rep.undelivered)
        fail_msg("%s: undelivered called %zu times, the report says %llu", fc->what, c.u_n,
                 (unsigned long long)rep.undelivered);

    /* seen[v]: how many times item v was delivered, handed back or found in the queue. */
    unsigned char *seen = calloc((size_t)n, 1);
    assert_non_null(seen);
    for (uint64_t v = 0; v < n; v++)
        seen[v] = atomic_load_explicit(&c.delivered_hits[v], memory_order_relaxed);
    if (ordered) {
        /* Exactly the items before k were delivered. */
        assert_int_equal(rep.delivered, k);
        for (uint64_t v = 0; v < n; v++)
            if (seen[v] != (v < k))
                fail_msg("%s: item %llu delivered %u times (k %llu)", fc->what,
                         (unsigned long long)v, seen[v], (unsigned long long)k);
    }
    uint64_t processed_undelivered = 0;
    bool found_k = false;
    for (size_t i = 0; i < c.u_n; i++) {
        const bt_undelivered_rec *u = &c.u[i];
        uint64_t v = bt_drain_value(u->item);
        if (v != u->seq || v >= n)
            fail_msg("%s: undelivered seq %llu carries item %llu", fc->what,
                     (unsigned long long)u->seq, (unsigned long long)v);
        if (i > 0 && u->seq <= c.u[i - 1].seq)
            fail_msg("%s: undelivered out of seq order: %llu after %llu", fc->what,
                     (unsigned long long)u->seq, (unsigned long long)c.u[i - 1].seq);
        if (ordered && u->seq != k + i)
            fail_msg("%s: undelivered #%zu is seq %llu, expected %llu", fc->what, i,
                     (unsigned long long)u->seq, (unsigned long long)(k + i));
        seen[v]++;
        bool ran = atomic_load_explicit(&c.processed_hits[v], memory_order_relaxed) != 0;
        if (u->seq == k) {
            found_k = true;
            if (u->status != fc->expect_rc)
                fail_msg("%s: the failed item %llu has status %d (%s), expected %d", fc->what,
                         (unsigned long long)k, u->status, baton_err_name(u->status),
                         fc->expect_rc);
            void *want = fc->deliver_seq == k ? bt_result_of(v) : bt_drain_item(0xfa11);
            if (u->result != want)
                fail_msg("%s: the failed item's result is %#llx, expected %#llx", fc->what,
                         (unsigned long long)bt_drain_value(u->result),
                         (unsigned long long)bt_drain_value(want));
            if (fc->deliver_seq == k)
                processed_undelivered++;
            continue;
        }
        bool other_failure = u->seq == fc->process_seq[0] || u->seq == fc->process_seq[1] ||
                             u->seq == fc->deliver_seq;
        if (u->status == 0) {
            processed_undelivered++;
            if (!ran || u->result != bt_result_of(v))
                fail_msg("%s: undelivered item %llu with status 0: processed %d, result %#llx",
                         fc->what, (unsigned long long)v, ran,
                         (unsigned long long)bt_drain_value(u->result));
            if (other_failure && u->seq != fc->deliver_seq)
                fail_msg("%s: item %llu failed in process but has status 0", fc->what,
                         (unsigned long long)v);
        } else if (u->status == BATON_ECANCELED) {
            if (ran || u->result != NULL)
                fail_msg("%s: undelivered item %llu with BATON_ECANCELED: processed %d, "
                         "result %#llx",
                         fc->what, (unsigned long long)v, ran,
                         (unsigned long long)bt_drain_value(u->result));
        } else {
            /* Only another failing item may carry its own error. */
            int own = u->seq == fc->process_seq[0]   ? fc->process_rc[0]
                      : u->seq == fc->process_seq[1] ? fc->process_rc[1]
                      : u->seq == fc->deliver_seq    ? fc->deliver_rc
                                                     : 0;
            if (!other_failure || u->status != own)
                fail_msg("%s: undelivered item %llu has status %d (%s)", fc->what,
                         (unsigned long long)v, u->status, baton_err_name(u->status));
            if (u->seq == fc->deliver_seq)
                processed_undelivered++;
        }
    }
    if (!found_k)
        fail_msg("%s: the failed item %llu was not handed to undelivered", fc->what,
                 (unsigned long long)k);
    if (ordered && rep.processed != k + processed_undelivered)
        fail_msg("%s: processed %llu, expected %llu delivered + %llu processed but undelivered",
                 fc->what, (unsigned long long)rep.processed, (unsigned long long)k,
                 (unsigned long long)processed_undelivered);

    /* What the drain never took is still in the queue, in order. */
    uint64_t accepted = rep.accepted;
    if (fc->rest == REST_BY_RECV) {
        uint64_t expect = accepted;
        for (;;) {
            void *item = NULL;
            int r = baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER);
            if (r == BATON_EEOF)
                break;
            bt_assert_rc(r, 0);
            uint64_t v = bt_drain_value(item);
            if (v != expect)
                fail_msg("%s: after the drain the queue gave item %llu, expected %llu",
                         fc->what, (unsigned long long)v, (unsigned long long)expect);
            seen[v]++;
            expect++;
        }
    } else {
        for (uint64_t v = 0; v < n; v++)
            atomic_store_explicit(&c.delivered_hits[v], 0, memory_order_relaxed);
        bt_dctx_next_drain(&c, accepted);
        c.ordered = true;
        ops = bt_d_ops(0, 0);
        baton_drain_report rep2;
        bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep2), 0);
        bt_assert_no_thread_failures();
        bt_assert_report(&rep2, n - accepted, n - accepted, n - accepted, UINT64_MAX, fc->what);
        for (uint64_t v = accepted; v < n; v++)
            seen[v] += atomic_load_explicit(&c.delivered_hits[v], memory_order_relaxed);
    }
    pthread_join(p.thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    for (uint64_t v = 0; v < n; v++)
        if (seen[v] != 1)
            fail_msg("%s: item %llu seen %u times (delivered, undelivered or left in the "
                     "queue)",
                     fc->what, (unsigned long long)v, seen[v]);
    printf("# %s: accepted %llu, delivered %llu, undelivered %llu, processed %llu\n", fc->what,
           (unsigned long long)rep.accepted, (unsigned long long)rep.delivered,
           (unsigned long long)rep.undelivered, (unsigned long long)rep.processed);
    free(seen);
    baton_workqueue_receiver_destroy(rx);
    bt_dctx_free(&c);
}

static fail_case fail_case_one(const char *what, unsigned flags, uint64_t n, uint64_t k, int rc,
                               bool in_deliver, enum rest_how rest)
{
    fail_case fc = {.what = what, .flags = flags, .n = n, .expect_rc = rc, .expect_failed = k,
                    .rest = rest};
    fc.process_seq[0] = fc.process_seq[1] = UINT64_MAX;
    fc.deliver_seq = UINT64_MAX;
    if (in_deliver) {
        fc.deliver_seq = k;
        fc.deliver_rc = rc;
    } else {
        fc.process_seq[0] = k;
        fc.process_rc[0] = rc;
    }
    return fc;
}

static void test_process_error_in_the_middle(void **state)
{
    (void)state;
    uint64_t n = bt_scaled(2e4, 3000);
    fail_case fc = fail_case_one("process fails with BATON_EIO in the middle", 0, n, n / 3,
                                 BATON_EIO, false, REST_BY_RECV);
    run_fail_case(&fc);
    fc = fail_case_one("process fails with -1000 in the middle, then a second drain", 0, n,
                       n / 2 + 7, -1000, false, REST_BY_SECOND_DRAIN);
    run_fail_case(&fc);
    fc = fail_case_one("process fails with +42 in the middle", 0, n, 1000, 42, false,
                       REST_BY_RECV);
    run_fail_case(&fc);
}

static void test_process_error_first_and_last_item(void **state)
{
    (void)state;
    uint64_t n = bt_scaled(5000, 1000);
    fail_case fc = fail_case_one("process fails on item 0", 0, n, 0, BATON_EIO, false,
                                 REST_BY_SECOND_DRAIN);
    run_fail_case(&fc);
    fc = fail_case_one("process fails on the last item", 0, n, n - 1, BATON_ENOTFOUND, false,
                       REST_BY_RECV);
    run_fail_case(&fc);
}

static void test_deliver_error_in_the_middle(void **state)
{
    (void)state;
    uint64_t n = bt_scaled(2e4, 3000);
    fail_case fc = fail_case_one("deliver fails with BATON_EIO in the middle", 0, n, n / 3,
                                 BATON_EIO, true, REST_BY_RECV);
    run_fail_case(&fc);
    fc = fail_case_one("deliver fails with -7777 on item 0, then a second drain", 0, n, 0, -7777,
                       true, REST_BY_SECOND_DRAIN);
    run_fail_case(&fc);
    fc = fail_case_one("deliver fails on the last item", 0, n, n - 1, BATON_EIO, true,
                       REST_BY_RECV);
    run_fail_case(&fc);
}

static void test_two_failures_lower_seq_wins(void **state)
{
    (void)state;
    uint64_t n = bt_scaled(2e4, 3000);
    /* The higher one fails at once; the lower one only after 20 ms, so the higher one most likely
     * stops the drain first. */
    fail_case fc = {.what = "two process failures, the lower one late", .n = n,
                    .process_seq = {n / 4, n / 4 + 100},
                    .process_rc = {BATON_EIO, -2000},
                    .process_delay_ns = {20000000, 0},
                    .deliver_seq = UINT64_MAX,
                    .expect_rc = BATON_EIO,
                    .expect_failed = n / 4,
                    .rest = REST_BY_RECV};
    run_fail_case(&fc);
    /* A deliver failure after a process failure that comes later in time. */
    fail_case fc2 = {.what = "process failure on k, deliver failure on k + 1", .n = n,
                     .process_seq = {n / 4, UINT64_MAX},
                     .process_rc = {-3000, 0},
                     .process_delay_ns = {10000000, 0},
                     .deliver_seq = n / 4 + 1,
                     .deliver_rc = BATON_EIO,
                     .expect_rc = -3000,
                     .expect_failed = n / 4,
                     .rest = REST_BY_SECOND_DRAIN};
    run_fail_case(&fc2);
    /* Both adjacent, both immediate. */
    fail_case fc3 = {.what = "two adjacent process failures", .n = n,
                     .process_seq = {n / 2, n / 2 + 1},
                     .process_rc = {-4000, -4001},
                     .deliver_seq = UINT64_MAX,
                     .expect_rc = -4000,
                     .expect_failed = n / 2,
                     .rest = REST_BY_RECV};
    run_fail_case(&fc3);
}

static void test_unordered_error_accounting(void **state)
{
    (void)state;
    uint64_t n = bt_scaled(2e4, 3000);
    fail_case fc = fail_case_one("unordered, process fails in the middle", BATON_DRAIN_UNORDERED,
                                 n, n / 3, BATON_EIO, false, REST_BY_RECV);
    run_fail_case(&fc);
    fc = fail_case_one("unordered, deliver fails in the middle", BATON_DRAIN_UNORDERED, n, n / 2,
                       -1234, true, REST_BY_SECOND_DRAIN);
    run_fail_case(&fc);
}


/* ---- inside the pool ------------------------------------------------------------------------------ */

typedef struct inner_drain {
    baton_pool *pool;
    baton_workqueue_receiver *rx;
    bt_producer prod;
    bt_dctx c;
    unsigned flags;
    int rc;
    baton_drain_report rep;
    int where; /* baton_pool_current_worker during the drain */
} inner_drain;

static inner_drain g_inner[2];
static atomic_int g_inner_started, g_inner_both_started;
static bool g_inner_on_workers; /* the scope body waits until other threads took both drains */

static void inner_drain_run(inner_drain *d)
{
    d->where = baton_pool_current_worker(d->pool);
    baton_drain_ops ops = bt_d_ops(d->flags, 0);
    d->rc = baton_workqueue_drain_parallel(d->rx, d->pool, &ops, &d->c, &d->rep);
    BT_CHECK_MSG(d->rc == 0, "drain inside the pool: %s", baton_err_name(d->rc));
}

static int inner_task(void *ctx)
{
    if (atomic_fetch_add(&g_inner_started, 1) == 1)
        atomic_store(&g_inner_both_started, 1);
    inner_drain_run(ctx);
    return 0;
}

static int inner_scope_body(baton_scope *scope, void *ctx)
{
    (void)ctx;
    for (int i = 0; i < 2; i++) {
        int rc = baton_scope_spawn(scope, inner_task, &g_inner[i]);
        if (rc != 0)
            return rc;
    }
    /* Leave both drains to the workers: the first one's dispatcher takes the second while it
     * waits, on a pool of one. */
    if (g_inner_on_workers && !bt_wait_flag(&g_inner_both_started, 60000))
        return BATON_ETIMEDOUT;
    return 0;
}

static int inner_for_body(size_t begin, size_t end, void *ctx)
{
    (void)ctx;
    for (size_t i = begin; i < end; i++)
        inner_drain_run(&g_inner[i]);
    return 0;
}

/*
 * A task that keeps worker 0 busy until the drains are done: a helper thread's scope spawns it
 * and waits until a worker has taken it, so it runs before any drain starts (a task that waits
 * for the drains must not be started by a drain: a dispatcher waiting for items runs jobs of the
 * pool, and would run it under its own frame, never to return to its drain).
 */
typedef struct hog {
    baton_pool *pool;
    atomic_int started, release;
    int where;
    int rc;
    pthread_t thread;
} hog;

static int hog_task(void *ctx)
{
    hog *h = ctx;
    h->where = baton_pool_current_worker(h->pool);
    atomic_store(&h->started, 1);
    BT_CHECK_MSG(bt_wait_flag(&h->release, 90000), "the hog was never released");
    return 0;
}

static int hog_body(baton_scope *scope, void *ctx)
{
    hog *h = ctx;
    int rc = baton_scope_spawn(scope, hog_task, h);
    if (rc != 0)
        return rc;
    BT_CHECK_MSG(bt_wait_flag_nudging(h->pool, &h->started, 60000),
                 "no worker took the hog task");
    return 0;
}

static void *hog_thread(void *arg)
{
    hog *h = arg;
    h->rc = baton_scope_run(h->pool, hog_body, h);
    return NULL;
}

static void inner_case(unsigned workers, bool use_for, bool with_hog, bool on_workers)
{
    char what[128];
    snprintf(what, sizeof what, "drains inside %s on a pool of %u%s%s",
             use_for ? "parallel_for iterations" : "scope tasks", workers,
             with_hog ? ", worker 0 busy" : "", on_workers ? ", both taken by workers" : "");
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_DRAIN_WATCHDOG_S, what);
    baton_pool *pool = bt_pool_create(workers);
    g_inner_on_workers = on_workers;
    atomic_store(&g_inner_started, 0);
    atomic_store(&g_inner_both_started, 0);
    hog h = {.pool = pool, .where = -2};
    atomic_init(&h.started, 0);
    atomic_init(&h.release, 0);
    if (with_hog) {
        assert_int_equal(pthread_create(&h.thread, NULL, hog_thread, &h), 0);
        assert_true(bt_wait_flag(&h.started, 60000));
    }
    uint64_t n = bt_scaled(1e4, 1000);
    for (int i = 0; i < 2; i++) {
        inner_drain *d = &g_inner[i];
        memset(d, 0, sizeof *d);
        d->pool = pool;
        d->flags = i == 0 ? 0 : BATON_DRAIN_UNORDERED;
        d->where = -2;
        baton_workqueue_sender *tx;
        bt_assert_rc(baton_workqueue_create(32, 0, &tx, &d->rx), 0);
        bt_dctx_init(&d->c, pool, n, d->flags == 0);
        d->prod = (bt_producer){.pause_every = n / 3, .pause_ms = 5};
        bt_producer_start(&d->prod, tx, 0, n);
    }
    if (use_for)
        bt_assert_rc(baton_parallel_for(pool, 0, 2, 1, inner_for_body, NULL), 0);
    else
        bt_assert_rc(baton_scope_run(pool, inner_scope_body, NULL), 0);
    atomic_store(&h.release, 1);
    if (with_hog) {
        pthread_join(h.thread, NULL);
        bt_assert_rc(h.rc, 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(g_inner[i].prod.thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    for (int i = 0; i < 2; i++) {
        inner_drain *d = &g_inner[i];
        bt_assert_rc(d->rc, 0);
        bt_assert_report(&d->rep, n, n, n, UINT64_MAX, what);
        for (uint64_t v = 0; v < n; v++)
            if (atomic_load(&d->c.delivered_hits[v]) != 1)
                fail_msg("%s: drain %d delivered item %llu %u times", what, i,
                         (unsigned long long)v, (unsigned)atomic_load(&d->c.delivered_hits[v]));
        baton_workqueue_receiver_destroy(d->rx);
        bt_dctx_free(&d->c);
    }
    printf("# %s: the drains ran on workers %d and %d, the hog on %d (-1: an outside thread)\n",
           what, g_inner[0].where, g_inner[1].where, h.where);
    if (on_workers && (g_inner[0].where < 0 || g_inner[1].where < 0))
        fail_msg("%s: a drain ran on an outside thread", what);
    bt_pool_destroy(pool);
}

static void test_drain_inside_pool_task(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        inner_case(workers, false, false, false);
        inner_case(workers, false, false, true);
        inner_case(workers, false, true, false);
        inner_case(workers, true, false, false);
        inner_case(workers, true, true, false);
    }
}


/* ---- process using the pool; deliver NULL ------------------------------------------------------ */

static void test_process_calls_parallel_for(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_DRAIN_WATCHDOG_S, "process calls parallel_for");
    uint64_t n = bt_scaled(5000, 500);
    baton_workqueue_receiver *rx = bt_wq_preloaded(n, 0);
    bt_dctx c;
    bt_dctx_init(&c, g_pool, n, true);
    c.nested_for = true;
    baton_drain_ops ops = bt_d_ops(0, 0);
    baton_drain_report rep;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep), 0);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_assert_report(&rep, n, n, n, UINT64_MAX, "process calls parallel_for");
    assert_int_equal(atomic_load(&c.next), n);
    baton_workqueue_receiver_destroy(rx);
    bt_dctx_free(&c);
}

static void test_deliver_null(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        uint64_t n = bt_scaled(2e4, 2000);
        baton_workqueue_sender *tx;
        baton_workqueue_receiver *rx;
        bt_assert_rc(baton_workqueue_create(64, 0, &tx, &rx), 0);
        bt_dctx c;
        bt_dctx_init(&c, g_pool, n, mode == 0);
        bt_producer p = {0};
        bt_producer_start(&p, tx, 0, n);
        baton_drain_ops ops = bt_d_ops(mode ? BATON_DRAIN_UNORDERED : 0, 0);
        ops.deliver = NULL;
        ops.undelivered = NULL;
        baton_drain_report rep;
        int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep);
        pthread_join(p.thread, NULL);
        bt_assert_no_thread_failures();
        bt_assert_rc(rc, 0);
        bt_assert_report(&rep, n, n, n, UINT64_MAX, "deliver NULL");
        for (uint64_t v = 0; v < n; v++)
            if (atomic_load(&c.processed_hits[v]) != 1)
                fail_msg("deliver NULL: item %llu processed %u times", (unsigned long long)v,
                         (unsigned)atomic_load(&c.processed_hits[v]));
        baton_workqueue_receiver_destroy(rx);
        bt_dctx_free(&c);
    }
    /* And with an error: undelivered NULL, the items are only counted. */
    uint64_t n = 3000;
    baton_workqueue_receiver *rx = bt_wq_preloaded(n, 0);
    bt_dctx c;
    bt_dctx_init(&c, g_pool, n, true);
    c.fail_process_seq[0] = 1000;
    c.fail_process_rc[0] = BATON_EIO;
    baton_drain_ops ops = bt_d_ops(0, 0);
    ops.deliver = NULL;
    ops.undelivered = NULL;
    baton_drain_report rep;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep), BATON_EIO);
    bt_assert_no_thread_failures();
    assert_int_equal(rep.failed_seq, 1000);
    assert_int_equal(rep.delivered, 1000);
    assert_int_equal(rep.accepted, rep.delivered + rep.undelivered);
    assert_int_equal(c.u_n, 0);
    uint64_t left = 0;
    void *item;
    while (baton_workqueue_try_recv(rx, &item) == 0) {
        assert_int_equal(bt_drain_value(item), rep.accepted + left);
        left++;
    }
    assert_int_equal(rep.accepted + left, n);
    baton_workqueue_receiver_destroy(rx);
    bt_dctx_free(&c);
}


/* ---- arguments ---------------------------------------------------------------------------------- */

static int never_process(void *ctx, void *item, void **result)
{
    (void)ctx;
    (void)result;
    BT_CHECK_MSG(false, "process called for item %llu by a drain that should not run",
                 (unsigned long long)bt_drain_value(item));
    return 0;
}

static void test_bad_arguments(void **state)
{
    (void)state;
    const uint64_t n = 10;
    baton_workqueue_receiver *rx = bt_wq_preloaded(n, 0);
    baton_drain_ops good;
    memset(&good, 0, sizeof good);
    good.struct_size = sizeof good;
    good.process = never_process;
    baton_drain_report rep;
    bt_assert_rc(baton_workqueue_drain_parallel(NULL, g_pool, &good, NULL, &rep), BATON_EINVAL);
    bt_assert_rc(baton_workqueue_drain_parallel(rx, NULL, &good, NULL, &rep), BATON_EINVAL);
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, NULL, NULL, &rep), BATON_EINVAL);
    baton_drain_ops bad = good;
    bad.process = NULL;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &bad, NULL, &rep), BATON_EINVAL);
    assert_true(strlen(baton_last_error_message()) > 0);
    bad = good;
    bad.flags = 1u << 1;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &bad, NULL, &rep), BATON_EINVAL);
    bad.flags = BATON_DRAIN_UNORDERED | (1u << 31);
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &bad, NULL, &rep), BATON_EINVAL);
    bad = good;
    bad.window = (size_t)BATON_DRAIN_MAX_WINDOW + 1;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &bad, NULL, &rep), BATON_EINVAL);
    bad.window = SIZE_MAX;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &bad, NULL, &rep), BATON_EINVAL);
    bad = good;
    bad.struct_size = sizeof bad + 1;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &bad, NULL, &rep), BATON_EINVAL);
    bt_assert_no_thread_failures();
    /* Nothing was taken, and the receiver is not left marked as being drained. */
    for (uint64_t i = 0; i < n; i++) {
        void *item = NULL;
        bt_assert_rc(baton_workqueue_try_recv(rx, &item), 0);
        assert_int_equal(bt_drain_value(item), i);
    }
    void *item;
    bt_assert_rc(baton_workqueue_try_recv(rx, &item), BATON_EEOF);
    good.process = bt_mp_process;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &good, NULL, &rep), 0);
    bt_assert_report(&rep, 0, 0, 0, UINT64_MAX, "after bad arguments");
    baton_workqueue_receiver_destroy(rx);
}

/* An older, shorter baton_drain_ops (no window, no flags): the defaults apply. */
static void test_short_struct_size(void **state)
{
    (void)state;
    uint64_t n = 2000;
    baton_workqueue_receiver *rx = bt_wq_preloaded(n, 0);
    bt_dctx c;
    bt_dctx_init(&c, g_pool, n, true);
    baton_drain_ops ops = bt_d_ops(0, 0);
    ops.struct_size = offsetof(baton_drain_ops, window);
    ops.window = 12345678; /* beyond struct_size: ignored */
    ops.flags = 0xff00;    /* likewise */
    baton_drain_report rep;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep), 0);
    bt_assert_no_thread_failures();
    bt_assert_report(&rep, n, n, n, UINT64_MAX, "short struct_size");
    assert_int_equal(atomic_load(&c.next), n);
    baton_workqueue_receiver_destroy(rx);
    bt_dctx_free(&c);
}

/* One drain of 16 preloaded items with ops of that struct_size; it made something when it
 * delivered them, or (refused) when it took any item from the queue. The receiver is checked
 * only after a refusal, by a successful call, so the refusal's message stays the thread's. */
static int drain_try_struct_size(size_t struct_size, bool *created, void *ctx)
{
    (void)ctx;
    const uint64_t n = 16;
    baton_workqueue_receiver *rx = bt_wq_preloaded(n, 0);
    bt_dctx c;
    bt_dctx_init(&c, g_pool, n, true);
    baton_drain_ops ops = bt_d_ops(0, 0);
    ops.struct_size = struct_size;
    baton_drain_report rep;
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep);
    bt_assert_no_thread_failures();
    void *item = NULL;
    if (rc == 0)
        *created = atomic_load(&c.delivered) == n;
    else
        *created = baton_workqueue_try_recv(rx, &item) != 0 || bt_drain_value(item) != 0;
    baton_workqueue_receiver_destroy(rx);
    bt_dctx_free(&c);
    return rc;
}

/* queue.h's struct_size sentence: 0 and this header's size work, larger or shorter than a
 * size_t is BATON_EINVAL with nothing received (test_short_struct_size: an older struct). */
static void test_struct_size_rule(void **state)
{
    (void)state;
    bt_check_struct_size("baton_drain_ops", sizeof(baton_drain_ops), drain_try_struct_size, NULL);
}

static void test_second_concurrent_drain_is_ebusy(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_DRAIN_WATCHDOG_S, "second drain is EBUSY");
    const uint64_t n = 100;
    baton_workqueue_receiver *rx = bt_wq_preloaded(n, 0);
    bt_dctx c;
    bt_dctx_init(&c, g_pool, n, true);
    c.block_seq = 5;
    bt_drain_thread t;
    bt_drain_thread_start(&t, rx, g_pool, bt_d_ops(0, 8), &c);
    assert_true(bt_wait_flag(&c.blocked, 60000));
    baton_drain_ops other;
    memset(&other, 0, sizeof other);
    other.process = never_process;
    baton_drain_report rep;
    memset(&rep, 0xee, sizeof rep);
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &other, NULL, &rep);
    char message[512];
    snprintf(message, sizeof message, "%s", baton_last_error_message());
    int rc_unordered;
    other.flags = BATON_DRAIN_UNORDERED;
    rc_unordered = baton_workqueue_drain_parallel(rx, g_pool, &other, NULL, NULL);
    atomic_store(&c.release, 1);
    pthread_join(t.thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_assert_rc(rc, BATON_EBUSY);
    bt_assert_rc(rc_unordered, BATON_EBUSY);
    /* queue.h: the message says why, and the report is left untouched. */
    if (strstr(message, "another drain") == NULL)
        fail_msg("BATON_EBUSY message \"%s\" does not name the running drain", message);
    baton_drain_report untouched;
    memset(&untouched, 0xee, sizeof untouched);
    assert_memory_equal(&rep, &untouched, sizeof rep);
    bt_assert_rc(t.rc, 0);
    bt_assert_report(&t.rep, n, n, n, UINT64_MAX, "the first drain");
    /* Once the first is over, another drain may run (the stream has ended: nothing to do). */
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &other, NULL, &rep), 0);
    bt_assert_report(&rep, 0, 0, 0, UINT64_MAX, "a later drain");
    baton_workqueue_receiver_destroy(rx);
    bt_dctx_free(&c);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process_error_in_the_middle),
        cmocka_unit_test(test_process_error_first_and_last_item),
        cmocka_unit_test(test_deliver_error_in_the_middle),
        cmocka_unit_test(test_two_failures_lower_seq_wins),
        cmocka_unit_test(test_unordered_error_accounting),
        cmocka_unit_test(test_drain_inside_pool_task),
        cmocka_unit_test(test_process_calls_parallel_for),
        cmocka_unit_test(test_deliver_null),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_short_struct_size),
        cmocka_unit_test(test_struct_size_rule),
        cmocka_unit_test(test_second_concurrent_drain_is_ebusy),
    };
    return cmocka_run_group_tests_name("queue/drain_failures", tests, group_setup, group_teardown);
}
