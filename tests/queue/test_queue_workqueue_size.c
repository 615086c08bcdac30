/*
 * test_queue_workqueue_size.c — queue.h's baton_workqueue_capacity / _sender_capacity and
 * baton_workqueue_size / _sender_size, single- and multi-producer:
 *  - capacity is what create was given rounded up to a power of two, the same through the
 *    receiver, the sender and every clone, and exactly as many items as try_send accepts;
 *  - size is exact when nothing runs concurrently: 0 when new, +1 per send, -1 per receive,
 *    the capacity when full, 0 after recv_n took everything; through the sender 0 once the
 *    receiver is gone; NULL gives 0 for all four;
 *  - NULL handles and out pointers are BATON_EINVAL for every send and receive call;
 *  - under concurrency (--workers N producer threads, a receiving thread, a watching thread)
 *    every size read lies in [0, capacity], and once every sender has closed and the receiver has
 *    taken everything it is 0 again.
 */
#include "support/bt_common.h"

#include "baton/queue.h"

static unsigned g_producers;

static void *val(uint64_t v)
{
    return (void *)(uintptr_t)v;
}

static void check_sizes(baton_workqueue_sender *tx, baton_workqueue_receiver *rx, size_t want)
{
    size_t got_rx = baton_workqueue_size(rx), got_tx = baton_workqueue_sender_size(tx);
    if (got_rx != want || got_tx != want)
        fail_msg("size %zu (receiver) / %zu (sender), expected %zu", got_rx, got_tx, want);
}

static void test_capacity_and_exact_size(void **state)
{
    (void)state;
    static const struct {
        size_t asked, got;
    } cases[] = {{1, 1}, {2, 2}, {3, 4}, {5, 8}, {100, 128}, {1024, 1024}};
    for (int mp = 0; mp < 2; mp++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            baton_workqueue_sender *tx = NULL, *clone = NULL;
            baton_workqueue_receiver *rx = NULL;
            bt_assert_rc(baton_workqueue_create(cases[i].asked, mp ? BATON_WQ_MULTI_PRODUCER : 0,
                                                &tx, &rx),
                         0);
            size_t cap = cases[i].got;
            assert_int_equal(baton_workqueue_capacity(rx), cap);
            assert_int_equal(baton_workqueue_sender_capacity(tx), cap);
            if (mp) {
                bt_assert_rc(baton_workqueue_sender_clone(tx, &clone), 0);
                assert_int_equal(baton_workqueue_sender_capacity(clone), cap);
            }
            check_sizes(tx, rx, 0);
            /* Fill: one more each time, then full at exactly the capacity. */
            for (size_t k = 0; k < cap; k++) {
                bt_assert_rc(baton_workqueue_try_send(clone != NULL && k % 2 ? clone : tx,
                                                      val(k)),
                             0);
                check_sizes(tx, rx, k + 1);
            }
            bt_assert_rc(baton_workqueue_try_send(tx, val(cap)), BATON_EAGAIN);
            check_sizes(tx, rx, cap);
            if (clone != NULL)
                assert_int_equal(baton_workqueue_sender_size(clone), cap);
            /* One fewer per receive, then recv_n takes the rest. */
            void *item = NULL;
            bt_assert_rc(baton_workqueue_try_recv(rx, &item), 0);
            check_sizes(tx, rx, cap - 1);
            void *items[1024];
            size_t got = 0;
            bt_assert_rc(baton_workqueue_recv_n(rx, items, 1024, &got), cap > 1 ? 0 : BATON_EAGAIN);
            assert_int_equal(got, cap - 1);
            check_sizes(tx, rx, 0);
            /* Capacity never changes; after the receiver is gone the sender sees 0 queued. */
            bt_assert_rc(baton_workqueue_try_send(tx, val(1)), 0);
            assert_int_equal(baton_workqueue_sender_size(tx), 1);
            baton_workqueue_receiver_destroy(rx);
            assert_int_equal(baton_workqueue_sender_size(tx), 0);
            assert_int_equal(baton_workqueue_sender_capacity(tx), cap);
            baton_workqueue_sender_close(clone);
            baton_workqueue_sender_close(tx);
        }
    }
    assert_int_equal(baton_workqueue_capacity(NULL), 0);
    assert_int_equal(baton_workqueue_size(NULL), 0);
    assert_int_equal(baton_workqueue_sender_capacity(NULL), 0);
    assert_int_equal(baton_workqueue_sender_size(NULL), 0);
}

/* ---- NULL handles ------------------------------------------------------------------------------ *
 * queue.h: the send and receive calls give BATON_EINVAL for a NULL handle or out pointer, and
 * send nothing / receive nothing.
 */
static void test_null_handles(void **state)
{
    (void)state;
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(4, 0, &tx, &rx), 0);
    void *items[2] = {val(1), val(2)};
    size_t n = 99;
    bt_expect_error(baton_workqueue_send(NULL, val(1), 0), BATON_EINVAL, "sender", NULL);
    bt_expect_error(baton_workqueue_try_send(NULL, val(1)), BATON_EINVAL, "sender", NULL);
    bt_expect_error(baton_workqueue_send_n(NULL, items, 2, 0, &n), BATON_EINVAL, "sender", NULL);
    assert_int_equal(n, 0);
    n = 99;
    bt_expect_error(baton_workqueue_send_n(tx, NULL, 2, 0, &n), BATON_EINVAL, "items", NULL);
    assert_int_equal(n, 0);
    check_sizes(tx, rx, 0);
    bt_assert_rc(baton_workqueue_send_n(tx, NULL, 0, 0, &n), 0);
    assert_int_equal(n, 0);
    bt_assert_rc(baton_workqueue_try_send(tx, val(7)), 0);
    void *item = NULL;
    bt_expect_error(baton_workqueue_recv(NULL, &item, 0), BATON_EINVAL, "receiver", NULL);
    bt_expect_error(baton_workqueue_try_recv(NULL, &item), BATON_EINVAL, "receiver", NULL);
    n = 99;
    bt_expect_error(baton_workqueue_recv_n(NULL, items, 2, &n), BATON_EINVAL, "receiver", NULL);
    assert_int_equal(n, 0);
    bt_assert_rc(baton_workqueue_recv(rx, NULL, 0), BATON_EINVAL);
    bt_assert_rc(baton_workqueue_try_recv(rx, NULL), BATON_EINVAL);
    bt_assert_rc(baton_workqueue_recv_n(rx, NULL, 2, &n), BATON_EINVAL);
    /* Nothing was taken by the refused calls. */
    check_sizes(tx, rx, 1);
    bt_assert_rc(baton_workqueue_try_recv(rx, &item), 0);
    assert_ptr_equal(item, val(7));
    baton_workqueue_sender_close(tx);
    baton_workqueue_receiver_destroy(rx);
}

/* ---- under concurrency ------------------------------------------------------------------------ */

typedef struct conc {
    baton_workqueue_receiver *rx;
    baton_workqueue_sender *senders[64];
    size_t per_producer;
    size_t cap;
    atomic_int stop_watch;
    atomic_long bad_reads;
    atomic_long reads;
    size_t received;
} conc;

typedef struct producer_arg {
    conc *c;
    unsigned index;
} producer_arg;

static void *producer_main(void *arg)
{
    producer_arg *p = arg;
    conc *c = p->c;
    baton_workqueue_sender *tx = c->senders[p->index];
    for (size_t i = 0; i < c->per_producer; i++) {
        BT_CHECK(baton_workqueue_send(tx, val(i), BATON_WAIT_FOREVER) == 0);
        size_t n = baton_workqueue_sender_size(tx);
        if (n > c->cap)
            atomic_fetch_add(&c->bad_reads, 1);
    }
    baton_workqueue_sender_close(tx);
    return NULL;
}

static void *receiver_main(void *arg)
{
    conc *c = arg;
    void *item;
    for (;;) {
        int rc = baton_workqueue_recv(c->rx, &item, BATON_WAIT_FOREVER);
        if (rc == BATON_EEOF)
            break;
        BT_CHECK(rc == 0);
        c->received++;
        if (baton_workqueue_size(c->rx) > c->cap)
            atomic_fetch_add(&c->bad_reads, 1);
    }
    return NULL;
}

static void *watcher_main(void *arg)
{
    conc *c = arg;
    while (atomic_load(&c->stop_watch) == 0) {
        size_t n = baton_workqueue_capacity(c->rx) == c->cap ? baton_workqueue_size(c->rx)
                                                             : SIZE_MAX;
        if (n > c->cap)
            atomic_fetch_add(&c->bad_reads, 1);
        atomic_fetch_add(&c->reads, 1);
        if (atomic_load(&c->reads) % 64 == 0)
            sched_yield();
    }
    return NULL;
}

static void run_concurrent(unsigned flags, unsigned producers)
{
    conc c = {.per_producer = bt_scaled(20000.0 / producers, 100)};
    atomic_init(&c.stop_watch, 0);
    atomic_init(&c.bad_reads, 0);
    atomic_init(&c.reads, 0);
    bt_assert_rc(baton_workqueue_create(16, flags, &c.senders[0], &c.rx), 0);
    c.cap = baton_workqueue_capacity(c.rx);
    for (unsigned p = 1; p < producers; p++)
        bt_assert_rc(baton_workqueue_sender_clone(c.senders[0], &c.senders[p]), 0);
    bt_watchdog dog;
    bt_watchdog_start(&dog, 120, "work queue size under concurrency");
    pthread_t watcher, receiver, threads[64];
    producer_arg args[64];
    assert_int_equal(pthread_create(&watcher, NULL, watcher_main, &c), 0);
    assert_int_equal(pthread_create(&receiver, NULL, receiver_main, &c), 0);
    for (unsigned p = 0; p < producers; p++) {
        args[p] = (producer_arg){&c, p};
        assert_int_equal(pthread_create(&threads[p], NULL, producer_main, &args[p]), 0);
    }
    for (unsigned p = 0; p < producers; p++)
        pthread_join(threads[p], NULL);
    pthread_join(receiver, NULL);
    atomic_store(&c.stop_watch, 1);
    pthread_join(watcher, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    assert_int_equal(c.received, c.per_producer * producers);
    assert_int_equal(atomic_load(&c.bad_reads), 0);
    /* Everything sent was received: exactly 0 again. */
    assert_int_equal(baton_workqueue_size(c.rx), 0);
    baton_workqueue_receiver_destroy(c.rx);
}

static void test_size_under_concurrency(void **state)
{
    (void)state;
    run_concurrent(0, 1);
    run_concurrent(BATON_WQ_MULTI_PRODUCER, g_producers);
}

int main(int argc, char **argv)
{
    g_producers = bt_init(argc, argv, 2);
    if (g_producers > 64)
        g_producers = 64;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_and_exact_size),
        cmocka_unit_test(test_null_handles),
        cmocka_unit_test(test_size_under_concurrency),
    };
    return cmocka_run_group_tests_name("queue/workqueue_size", tests, NULL, NULL);
}
