/*
 * test_queue_drain.c — baton_workqueue_drain_parallel at one pool size (--workers N; CTest runs it
 * at 1, 2, 4, 8 and 16, oversubscribed on 2 cores on purpose):
 *  - order: 10^6 items (times BATON_TEST_SCALE) sent by a producer thread while the drain runs,
 *    a few hundred ns of work each and about one in a thousand spinning 50-200 us: deliver sees
 *    seq 0, 1, 2... never concurrently, each with its own item and result; the report says
 *    accepted == delivered == processed == N, undelivered 0, failed_seq UINT64_MAX. The default
 *    window (256 per worker, at least 1024) and window 1 (one item at a time) too;
 *  - the window bounds memory: every process call checks that its item is less than `window`
 *    past the number delivered so far, and with one item blocked until the test releases it,
 *    the drain never starts an item `window` or more past it (window 8, and 5 rounded to 8;
 *    ordered and unordered);
 *  - producers pausing and closing while the drain waits (one sender, and several clones):
 *    everything is delivered, in each producer's order, and the drain returns 0;
 *  - an empty stream: 0, a report of zeros, no callback; report NULL is accepted;
 *  - BATON_DRAIN_UNORDERED: every item delivered exactly once (concurrent deliver calls), the
 *    report adds up; with an error, the same accounting without the order;
 *  - once the drain has returned, no worker touches its state any more: many short drains in a
 *    row, each followed by a stack buffer the test fills and checks. A normal build sees a
 *    stray write only by luck of scheduling; the TSan build reports any late access to the
 *    returned drain's frame as a race on the caller's stack.
 *
 *    (It caught, under TSan, a range job that notified the drain's waitpoint after its last
 *    decrement of the job count, when the dispatcher could already have returned: fixed in
 *    b1cfe89.)
 *
 * Errors, drains inside pool tasks and bad arguments are in test_queue_drain_failures.c; what both
 * share is in bt_queue_drain.h. Callbacks run on pool workers and inside baton: they check with
 * BT_CHECK only.
 */
#include "support/bt_queue_drain.h"

/* ---- order ---------------------------------------------------------------------------------- */

static void ordered_stream(uint64_t n, size_t window, bool slow, const char *what)
{
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_DRAIN_WATCHDOG_S, what);
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(1024, 0, &tx, &rx), 0);
    bt_dctx c;
    bt_dctx_init(&c, g_pool, n, true);
    c.slow = slow;
    c.window = window != 0 ? bt_pow2_at_least(window) : bt_default_window();
    bt_producer p = {0};
    bt_producer_start(&p, tx, 0, n);
    baton_drain_ops ops = bt_d_ops(0, window);
    baton_drain_report rep;
    memset(&rep, 0xee, sizeof rep);
    uint64_t t0 = bt_now_ns();
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep);
    uint64_t took = bt_now_ns() - t0;
    pthread_join(p.thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_assert_rc(rc, 0);
    bt_assert_report(&rep, n, n, n, UINT64_MAX, what);
    assert_int_equal(atomic_load(&c.next), n);
    assert_int_equal(atomic_load(&c.delivered), n);
    assert_int_equal(c.u_n, 0);
    for (uint64_t v = 0; v < n; v++)
        if (atomic_load_explicit(&c.processed_hits[v], memory_order_relaxed) != 1 ||
            atomic_load_explicit(&c.delivered_hits[v], memory_order_relaxed) != 1)
            fail_msg("%s: item %llu processed %u times, delivered %u times", what,
                     (unsigned long long)v, (unsigned)atomic_load(&c.processed_hits[v]),
                     (unsigned)atomic_load(&c.delivered_hits[v]));
    void *item;
    bt_assert_rc(baton_workqueue_try_recv(rx, &item), BATON_EEOF);
    printf("# %s: %llu items, window %llu, %u workers: %.0f ms\n", what, (unsigned long long)n,
           (unsigned long long)c.window, g_workers, took / 1e6);
    baton_workqueue_receiver_destroy(rx);
    bt_dctx_free(&c);
}

static void test_order_1e6_with_slow_items(void **state)
{
    (void)state;
    ordered_stream(bt_scaled(1e6, 20000), 0, true, "ordered drain, slow items");
}

static void test_order_window_1(void **state)
{
    (void)state;
    ordered_stream(bt_scaled(2e4, 2000), 1, false, "ordered drain, window 1");
}

static void test_order_window_3_and_large(void **state)
{
    (void)state;
    ordered_stream(bt_scaled(5e4, 2000), 3, true, "ordered drain, window 3");
    ordered_stream(bt_scaled(5e4, 2000), 4096, false, "ordered drain, window 4096");
}


static void window_with_blocked_item(unsigned flags, size_t window, uint64_t k)
{
    const uint64_t w = bt_pow2_at_least(window);
    const uint64_t n = 300;
    char what[96];
    snprintf(what, sizeof what, "%s drain, window %zu, item %llu blocked",
             flags ? "unordered" : "ordered", window, (unsigned long long)k);
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_DRAIN_WATCHDOG_S, what);
    baton_workqueue_receiver *rx = bt_wq_preloaded(n, 0);
    bt_dctx c;
    bt_dctx_init(&c, g_pool, n, flags == 0);
    c.window = w;
    c.block_seq = k;
    bt_drain_thread t;
    bt_drain_thread_start(&t, rx, g_pool, bt_d_ops(flags, window), &c);
    if (!bt_wait_flag(&c.blocked, 60000))
        fail_msg("%s: item %llu was never started", what, (unsigned long long)k);
    /* Give the drain time to run ahead as far as it would. */
    uint64_t seen = 0;
    for (int i = 0; i < 10; i++) {
        bt_sleep_ms(10);
        seen = atomic_load(&c.max_started_plus1);
        if (seen > k + w)
            break;
    }
    uint64_t started = atomic_load(&c.started);
    uint64_t delivered = atomic_load(&c.delivered);
    bool still_running = atomic_load(&t.done) == 0;
    atomic_store(&c.release, 1);
    pthread_join(t.thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    if (!still_running)
        fail_msg("%s: the drain returned %s while item %llu was blocked", what,
                 baton_err_name(t.rc), (unsigned long long)k);
    if (seen > k + w)
        fail_msg("%s: item %llu started while %llu was blocked: beyond the window of %llu",
                 what, (unsigned long long)(seen - 1), (unsigned long long)k,
                 (unsigned long long)w);
    if (started > k + w)
        fail_msg("%s: %llu items started while %llu was blocked (window %llu)", what,
                 (unsigned long long)started, (unsigned long long)k, (unsigned long long)w);
    if (flags == 0 && delivered > k)
        fail_msg("%s: %llu delivered while item %llu was blocked", what,
                 (unsigned long long)delivered, (unsigned long long)k);
    printf("# %s: while blocked, items up to %llu started, %llu delivered\n", what,
           (unsigned long long)seen - 1, (unsigned long long)delivered);
    bt_assert_rc(t.rc, 0);
    bt_assert_report(&t.rep, n, n, n, UINT64_MAX, what);
    baton_workqueue_receiver_destroy(rx);
    bt_dctx_free(&c);
}

static void test_window_bounds_items_past_a_blocked_one(void **state)
{
    (void)state;
    window_with_blocked_item(0, 8, 20);
    window_with_blocked_item(0, 5, 0);
    window_with_blocked_item(BATON_DRAIN_UNORDERED, 8, 20);
    window_with_blocked_item(BATON_DRAIN_UNORDERED, 5, 3);
}



/* ---- the stream's end --------------------------------------------------------------------------- */

static void test_close_while_draining(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_DRAIN_WATCHDOG_S, "close while draining");
    uint64_t n = bt_scaled(2e4, 2000);
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(128, 0, &tx, &rx), 0);
    bt_dctx c;
    bt_dctx_init(&c, g_pool, n, true);
    c.window = bt_default_window();
    /* Pauses every n/4 items, and once more before the close: the drain waits on an empty
     * queue each time, and is woken by the next send, and at last by the close. */
    bt_producer p = {.pause_every = n / 4, .pause_ms = 20, .close_pause_ms = 40};
    bt_producer_start(&p, tx, 0, n);
    baton_drain_ops ops = bt_d_ops(0, 0);
    baton_drain_report rep;
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep);
    pthread_join(p.thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_assert_rc(rc, 0);
    bt_assert_report(&rep, n, n, n, UINT64_MAX, "close while draining");
    assert_int_equal(atomic_load(&c.next), n);
    baton_workqueue_receiver_destroy(rx);
    bt_dctx_free(&c);
}

/* Several producers, each with its own clone, pausing and closing at different times. */

typedef struct mp_producer {
    baton_workqueue_sender *tx;
    unsigned index;
    uint64_t n;
    pthread_t thread;
} mp_producer;

static void *mp_producer_main(void *arg)
{
    mp_producer *p = arg;
    for (uint64_t i = 0; i < p->n; i++) {
        if (i == p->n / 2)
            bt_sleep_ms(5 + 7 * p->index);
        int rc =
            baton_workqueue_send(p->tx, bt_drain_item((i << 8) | p->index), BATON_WAIT_FOREVER);
        BT_CHECK_MSG(rc == 0, "producer %u: %s", p->index, baton_err_name(rc));
    }
    bt_sleep_ms(3 * p->index);
    baton_workqueue_sender_close(p->tx);
    return NULL;
}

static void test_multi_producer_close_while_draining(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_DRAIN_WATCHDOG_S, "multi-producer close while draining");
    unsigned np = g_workers < BT_MP_MAX ? g_workers : BT_MP_MAX;
    if (np < 2)
        np = 2;
    uint64_t per = bt_scaled(2e4, 2000) / np;
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(64, BATON_WQ_MULTI_PRODUCER, &tx, &rx), 0);
    bt_mp_ctx m;
    m.np = np;
    for (unsigned i = 0; i < BT_MP_MAX; i++)
        atomic_init(&m.next[i], 0);
    atomic_init(&m.next_seq, 0);
    atomic_init(&m.total, 0);
    mp_producer prod[BT_MP_MAX];
    for (unsigned i = 0; i < np; i++) {
        prod[i] = (mp_producer){.index = i, .n = per};
        bt_assert_rc(baton_workqueue_sender_clone(tx, &prod[i].tx), 0);
    }
    baton_workqueue_sender_close(tx);
    for (unsigned i = 0; i < np; i++)
        assert_int_equal(pthread_create(&prod[i].thread, NULL, mp_producer_main, &prod[i]), 0);
    baton_drain_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.process = bt_mp_process;
    ops.deliver = bt_mp_deliver;
    baton_drain_report rep;
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &m, &rep);
    for (unsigned i = 0; i < np; i++)
        pthread_join(prod[i].thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_assert_rc(rc, 0);
    bt_assert_report(&rep, per * np, per * np, per * np, UINT64_MAX, "multi-producer drain");
    for (unsigned i = 0; i < np; i++)
        assert_int_equal(atomic_load(&m.next[i]), per);
    assert_int_equal(atomic_load(&m.total), per * np);
    baton_workqueue_receiver_destroy(rx);
}

static void test_empty_stream(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        unsigned flags = mode ? BATON_DRAIN_UNORDERED : 0;
        baton_workqueue_receiver *rx = bt_wq_preloaded(0, 0);
        bt_dctx c;
        bt_dctx_init(&c, g_pool, 1, flags == 0);
        baton_drain_ops ops = bt_d_ops(flags, 0);
        baton_drain_report rep;
        memset(&rep, 0xee, sizeof rep);
        bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep), 0);
        bt_assert_no_thread_failures();
        bt_assert_report(&rep, 0, 0, 0, UINT64_MAX, "empty stream");
        assert_int_equal(atomic_load(&c.started), 0);
        assert_int_equal(atomic_load(&c.delivered), 0);
        assert_int_equal(c.u_n, 0);
        /* Again, on the same ended stream, with no report. */
        bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, NULL), 0);
        assert_int_equal(atomic_load(&c.started), 0);
        baton_workqueue_receiver_destroy(rx);
        bt_dctx_free(&c);
    }
    /* A multi-producer queue whose clones are all closed before the drain. */
    baton_workqueue_sender *tx, *clone;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(4, BATON_WQ_MULTI_PRODUCER, &tx, &rx), 0);
    bt_assert_rc(baton_workqueue_sender_clone(tx, &clone), 0);
    baton_workqueue_sender_close(clone);
    baton_workqueue_sender_close(tx);
    bt_dctx c;
    bt_dctx_init(&c, g_pool, 1, true);
    baton_drain_ops ops = bt_d_ops(0, 0);
    baton_drain_report rep;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep), 0);
    bt_assert_report(&rep, 0, 0, 0, UINT64_MAX, "empty multi-producer stream");
    baton_workqueue_receiver_destroy(rx);
    bt_dctx_free(&c);
}


/* ---- unordered ---------------------------------------------------------------------------------- */

static void test_unordered_every_item_once(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_DRAIN_WATCHDOG_S, "unordered drain");
    uint64_t n = bt_scaled(2e5, 5000);
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(256, 0, &tx, &rx), 0);
    bt_dctx c;
    bt_dctx_init(&c, g_pool, n, false);
    c.slow = true;
    c.window = bt_default_window();
    bt_producer p = {0};
    bt_producer_start(&p, tx, 0, n);
    baton_drain_ops ops = bt_d_ops(BATON_DRAIN_UNORDERED, 0);
    baton_drain_report rep;
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep);
    pthread_join(p.thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_assert_rc(rc, 0);
    bt_assert_report(&rep, n, n, n, UINT64_MAX, "unordered drain");
    assert_int_equal(atomic_load(&c.delivered), n);
    assert_int_equal(c.u_n, 0);
    for (uint64_t v = 0; v < n; v++)
        if (atomic_load_explicit(&c.processed_hits[v], memory_order_relaxed) != 1 ||
            atomic_load_explicit(&c.delivered_hits[v], memory_order_relaxed) != 1)
            fail_msg("unordered: item %llu processed %u times, delivered %u times",
                     (unsigned long long)v, (unsigned)atomic_load(&c.processed_hits[v]),
                     (unsigned)atomic_load(&c.delivered_hits[v]));
    baton_workqueue_receiver_destroy(rx);
    bt_dctx_free(&c);
}


/* ---- nothing touched after return ------------------------------------------------------------ */

static int tiny_process(void *ctx, void *item, void **result)
{
    (void)ctx;
    *result = item;
    return 0;
}

/* One drain of a few items; its baton__drain lives in the frame of the call below this one. */
__attribute__((noinline)) static int one_short_drain(uint64_t items, unsigned flags)
{
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    int rc = baton_workqueue_create(8, 0, &tx, &rx);
    if (rc != 0)
        return rc;
    for (uint64_t i = 0; i < items; i++)
        (void)baton_workqueue_try_send(tx, bt_drain_item(i + 1));
    baton_workqueue_sender_close(tx);
    baton_drain_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.process = tiny_process;
    ops.flags = flags;
    baton_drain_report rep;
    rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, NULL, &rep);
    if (rc == 0 && (rep.accepted != items || rep.delivered != items))
        rc = BATON_EMISMATCH;
    baton_workqueue_receiver_destroy(rx);
    return rc;
}

/* Fills the stack where the drain's frame was, lets the workers run, and counts the bytes that
 * changed under it. */
__attribute__((noinline)) static size_t scribble_and_check(void)
{
    volatile unsigned char buf[16384];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0xa5;
    for (int i = 0; i < 3; i++)
        sched_yield();
    size_t changed = 0;
    for (size_t i = 0; i < sizeof buf; i++)
        changed += buf[i] != 0xa5;
    return changed;
}

static void test_nothing_touched_after_return(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, BT_DRAIN_WATCHDOG_S, "short drains in a row");
    size_t rounds = bt_scaled(3000, 300);
    size_t hit_rounds = 0, first_hit = 0, first_bytes = 0;
    for (size_t r = 0; r < rounds; r++) {
        int rc = one_short_drain(1 + r % 5, r % 3 == 2 ? BATON_DRAIN_UNORDERED : 0);
        if (rc != 0)
            fail_msg("short drain %zu: %s", r, baton_err_name(rc));
        size_t changed = scribble_and_check();
        if (changed != 0 && hit_rounds++ == 0) {
            first_hit = r;
            first_bytes = changed;
        }
    }
    bt_watchdog_stop(&dog);
    if (hit_rounds != 0)
        fail_msg("after %zu of %zu drains returned, something wrote to the caller's stack (the "
                 "first time after drain %zu, %zu bytes)",
                 hit_rounds, rounds, first_hit, first_bytes);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_1e6_with_slow_items),
        cmocka_unit_test(test_order_window_1),
        cmocka_unit_test(test_order_window_3_and_large),
        cmocka_unit_test(test_window_bounds_items_past_a_blocked_one),
        cmocka_unit_test(test_close_while_draining),
        cmocka_unit_test(test_multi_producer_close_while_draining),
        cmocka_unit_test(test_empty_stream),
        cmocka_unit_test(test_unordered_every_item_once),
        cmocka_unit_test(test_nothing_touched_after_return),
    };
    return cmocka_run_group_tests_name("queue/drain", tests, group_setup, group_teardown);
}
