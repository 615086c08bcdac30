/*
 * test_queue_workqueue.c — the work queue's sender and receiver handles, at one producer-thread
 * count (--workers N; CTest runs it at 1, 2, 4, 8 and 16, oversubscribed on 2 cores on purpose):
 *  - create: NULL out pointers, capacity 0 or too large, unknown flags give BATON_EINVAL and
 *    store nothing; capacity is rounded up to a power of two (seen through try_send);
 *  - single-producer by default: sender_clone is BATON_EINVAL and its message names
 *    BATON_WQ_MULTI_PRODUCER; NULL arguments are BATON_EINVAL;
 *  - multi-producer: N threads, each with its own clone, send interleaved items and close their
 *    clone; the receiver gets every item exactly once, in each producer's order, then BATON_EEOF;
 *  - BATON_EEOF only after the last sender closed: with one sender still open recv times out and
 *    try_recv is BATON_EAGAIN; closing the last one gives BATON_EEOF, and wakes a blocked recv;
 *  - a single-producer stream through a small queue between two threads, NULL items included;
 *  - after receiver_destroy, send, try_send, send_n and sender_clone are BATON_ECLOSED; senders
 *    blocked on a full queue (one per clone) are woken by receiver_destroy with BATON_ECLOSED;
 *  - a blocked recv is woken by a send;
 *  - send_n through a 4-slot queue to a slow receiver delivers everything in order; on a full
 *    queue with no receiver it returns BATON_ETIMEDOUT with *sent telling how many went in;
 *  - try_send on a full queue is BATON_EAGAIN, try_recv / recv_n on an empty one BATON_EAGAIN,
 *    recv with a timeout BATON_ETIMEDOUT, and after the end BATON_EEOF;
 *  - handles freed in either order (receiver first, senders first, clones closed on other
 *    threads), with items left inside: nothing leaks (the ASan build checks).
 *
 * Blocking cases use a helper thread; the main thread sleeps a little to let it block. The sleep
 * only makes the wake-up path likely: every outcome checked is the same either way.
 */
#include "support/bt_common.h"

#include "baton/queue.h"

enum { SETTLE_MS = 30, WATCHDOG_S = 60, MAX_PRODUCERS = 64 };

static unsigned g_producers;

static void *val(uint64_t v)
{
    return (void *)(uintptr_t)v;
}

static uint64_t num(void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static void wq_new(size_t capacity, unsigned flags, baton_workqueue_sender **tx,
                   baton_workqueue_receiver **rx)
{
    *tx = NULL;
    *rx = NULL;
    bt_assert_rc(baton_workqueue_create(capacity, flags, tx, rx), 0);
    assert_non_null(*tx);
    assert_non_null(*rx);
}

/* How many try_sends a fresh queue accepts: its capacity after rounding. */
static size_t fill(baton_workqueue_sender *tx, uint64_t first_value)
{
    size_t n = 0;
    for (;;) {
        int rc = baton_workqueue_try_send(tx, val(first_value + n));
        if (rc == BATON_EAGAIN)
            return n;
        bt_assert_rc(rc, 0);
        n++;
        if (n > 1u << 20)
            fail_msg("try_send never reports a full queue");
    }
}

/* ---- create -------------------------------------------------------------------------------- */

static void test_create_errors(void **state)
{
    (void)state;
    baton_workqueue_sender *const tx_sentinel = (baton_workqueue_sender *)(uintptr_t)0x1111;
    baton_workqueue_receiver *const rx_sentinel = (baton_workqueue_receiver *)(uintptr_t)0x2222;
    baton_workqueue_sender *tx = tx_sentinel;
    baton_workqueue_receiver *rx = rx_sentinel;
    bt_assert_rc(baton_workqueue_create(8, 0, NULL, &rx), BATON_EINVAL);
    assert_ptr_equal(rx, rx_sentinel);
    bt_assert_rc(baton_workqueue_create(8, 0, &tx, NULL), BATON_EINVAL);
    assert_ptr_equal(tx, tx_sentinel);
    bt_assert_rc(baton_workqueue_create(8, 0, NULL, NULL), BATON_EINVAL);
    const struct {
        size_t capacity;
        unsigned flags;
    } bad[] = {
        {0, 0},
        {0, BATON_WQ_MULTI_PRODUCER},
        {(size_t)BATON_QUEUE_MAX_CAPACITY + 1, 0},
        {(size_t)BATON_QUEUE_MAX_CAPACITY + 1, BATON_WQ_MULTI_PRODUCER},
        {SIZE_MAX, 0},
        {8, 1u << 1},
        {8, 1u << 31},
        {8, BATON_WQ_MULTI_PRODUCER | (1u << 5)},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = baton_workqueue_create(bad[i].capacity, bad[i].flags, &tx, &rx);
        if (rc != BATON_EINVAL)
            fail_msg("create(capacity %zu, flags %#x) = %s, expected BATON_EINVAL",
                     bad[i].capacity, bad[i].flags, baton_err_name(rc));
        assert_true(strlen(baton_last_error_message()) > 0);
        assert_ptr_equal(tx, tx_sentinel);
        assert_ptr_equal(rx, rx_sentinel);
    }
}

static void test_capacity_rounding(void **state)
{
    (void)state;
    static const struct {
        size_t asked, got;
    } cases[] = {{1, 1}, {2, 2}, {3, 4}, {5, 8}, {100, 128}};
    for (int mp = 0; mp < 2; mp++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            baton_workqueue_sender *tx;
            baton_workqueue_receiver *rx;
            wq_new(cases[i].asked, mp ? BATON_WQ_MULTI_PRODUCER : 0, &tx, &rx);
            size_t n = fill(tx, 0);
            if (n != cases[i].got)
                fail_msg("%s queue of capacity %zu holds %zu items, expected %zu",
                         mp ? "multi-producer" : "single-producer", cases[i].asked, n,
                         cases[i].got);
            for (size_t k = 0; k < n; k++) {
                void *item = NULL;
                bt_assert_rc(baton_workqueue_try_recv(rx, &item), 0);
                assert_int_equal(num(item), k);
            }
            baton_workqueue_sender_close(tx);
            baton_workqueue_receiver_destroy(rx);
        }
    }
}

/* ---- single producer ------------------------------------------------------------------------ */

static void test_single_producer_refuses_clone(void **state)
{
    (void)state;
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    wq_new(8, 0, &tx, &rx);
    baton_workqueue_sender *clone = (baton_workqueue_sender *)(uintptr_t)0x3333;
    bt_assert_rc(baton_workqueue_sender_clone(tx, &clone), BATON_EINVAL);
    assert_ptr_equal(clone, (baton_workqueue_sender *)(uintptr_t)0x3333);
    const char *msg = baton_last_error_message();
    if (strstr(msg, "BATON_WQ_MULTI_PRODUCER") == NULL)
        fail_msg("clone's message does not name BATON_WQ_MULTI_PRODUCER: \"%s\"", msg);
    /* NULL arguments. */
    bt_assert_rc(baton_workqueue_sender_clone(tx, NULL), BATON_EINVAL);
    bt_assert_rc(baton_workqueue_sender_clone(NULL, &clone), BATON_EINVAL);
    assert_ptr_equal(clone, (baton_workqueue_sender *)(uintptr_t)0x3333);
    /* The original sender still works and is still the only one: closing it ends the stream. */
    bt_assert_rc(baton_workqueue_send(tx, val(42), BATON_WAIT_FOREVER), 0);
    baton_workqueue_sender_close(tx);
    void *item = NULL;
    bt_assert_rc(baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER), 0);
    assert_ptr_equal(item, val(42));
    bt_assert_rc(baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER), BATON_EEOF);
    baton_workqueue_receiver_destroy(rx);

    /* A multi-producer queue's clone refuses NULL arguments too. */
    wq_new(8, BATON_WQ_MULTI_PRODUCER, &tx, &rx);
    bt_assert_rc(baton_workqueue_sender_clone(tx, NULL), BATON_EINVAL);
    baton_workqueue_sender_close(tx);
    baton_workqueue_receiver_destroy(rx);
    baton_workqueue_sender_close(NULL);
    baton_workqueue_receiver_destroy(NULL);
}

/* A stream from one producer thread through a small queue; items 0 (NULL) .. n-1. */
typedef struct stream_ctx {
    baton_workqueue_sender *tx;
    uint64_t n;
} stream_ctx;

static void *stream_producer(void *arg)
{
    stream_ctx *ctx = arg;
    for (uint64_t i = 0; i < ctx->n; i++) {
        int rc = (i % 3 == 0) ? baton_workqueue_send(ctx->tx, val(i), BATON_WAIT_FOREVER)
                              : BATON_EAGAIN;
        while (rc == BATON_EAGAIN) {
            rc = baton_workqueue_try_send(ctx->tx, val(i));
            if (rc == BATON_EAGAIN)
                sched_yield();
        }
        BT_CHECK_MSG(rc == 0, "send %llu: %s", (unsigned long long)i, baton_err_name(rc));
    }
    baton_workqueue_sender_close(ctx->tx);
    return NULL;
}

static void test_single_producer_stream(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "single-producer stream");
    stream_ctx ctx;
    baton_workqueue_receiver *rx;
    wq_new(16, 0, &ctx.tx, &rx);
    ctx.n = bt_scaled(2e5, 5000);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, stream_producer, &ctx), 0);
    uint64_t expect = 0;
    void *batch[7];
    for (;;) {
        int rc;
        if (expect % 2 == 0) {
            void *item = val(0xdead);
            rc = baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER);
            if (rc == 0) {
                if (num(item) != expect)
                    fail_msg("got %llu, expected %llu", (unsigned long long)num(item),
                             (unsigned long long)expect);
                expect++;
            }
        } else {
            size_t got = 0;
            rc = baton_workqueue_recv_n(rx, batch, 7, &got);
            if (rc == BATON_EAGAIN) {
                sched_yield();
                continue;
            }
            if (rc == 0) {
                assert_true(got >= 1 && got <= 7);
                for (size_t k = 0; k < got; k++, expect++)
                    if (num(batch[k]) != expect)
                        fail_msg("recv_n got %llu, expected %llu",
                                 (unsigned long long)num(batch[k]), (unsigned long long)expect);
            }
        }
        if (rc == BATON_EEOF)
            break;
        bt_assert_rc(rc, 0);
    }
    pthread_join(thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    assert_int_equal(expect, ctx.n);
    void *item = NULL;
    bt_assert_rc(baton_workqueue_try_recv(rx, &item), BATON_EEOF);
    size_t got = 99;
    bt_assert_rc(baton_workqueue_recv_n(rx, batch, 7, &got), BATON_EEOF);
    assert_int_equal(got, 0);
    bt_assert_rc(baton_workqueue_recv(rx, &item, 1000000), BATON_EEOF);
    baton_workqueue_receiver_destroy(rx);
}

/* ---- multi-producer ------------------------------------------------------------------------- */

/* Item of producer p, index i: p in the low byte (1-based, so no item is NULL), i above. */
static void *mp_item(unsigned p, uint64_t i)
{
    return val((i << 8) | (p + 1));
}

typedef struct producer {
    baton_workqueue_sender *tx;
    unsigned index;
    uint64_t n;
    atomic_int *go;
    bool close_at_end;
    pthread_t thread;
} producer;

static void *producer_main(void *arg)
{
    producer *p = arg;
    while (atomic_load(p->go) == 0)
        sched_yield();
    for (uint64_t i = 0; i < p->n; i++) {
        int rc;
        switch (i % 4) {
        case 0: /* one at a time, waiting */
            rc = baton_workqueue_send(p->tx, mp_item(p->index, i), BATON_WAIT_FOREVER);
            break;
        case 1: /* never waiting */
            while ((rc = baton_workqueue_try_send(p->tx, mp_item(p->index, i))) == BATON_EAGAIN)
                sched_yield();
            break;
        default: { /* two in one send_n */
            void *pair[2] = {mp_item(p->index, i), mp_item(p->index, i + 1)};
            size_t sent = 0;
            rc = baton_workqueue_send_n(p->tx, pair, i + 1 < p->n ? 2 : 1, BATON_WAIT_FOREVER,
                                        &sent);
            BT_CHECK(rc != 0 || sent == (i + 1 < p->n ? 2u : 1u));
            i++;
            break;
        }
        }
        BT_CHECK_MSG(rc == 0, "producer %u, item %llu: %s", p->index, (unsigned long long)i,
                     baton_err_name(rc));
        if (rc != 0)
            break;
    }
    if (p->close_at_end)
        baton_workqueue_sender_close(p->tx);
    return NULL;
}

static void test_multi_producer_every_item_once_in_order(void **state)
{
    (void)state;
    unsigned np = g_producers < MAX_PRODUCERS ? g_producers : MAX_PRODUCERS;
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S * 2, "multi-producer stream");
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    wq_new(64, BATON_WQ_MULTI_PRODUCER, &tx, &rx);
    uint64_t per = bt_scaled(4e5, 8000) / np;
    atomic_int go;
    atomic_init(&go, 0);
    producer prod[MAX_PRODUCERS];
    for (unsigned i = 0; i < np; i++) {
        prod[i] = (producer){.index = i, .n = per, .go = &go, .close_at_end = true};
        bt_assert_rc(baton_workqueue_sender_clone(tx, &prod[i].tx), 0);
        assert_non_null(prod[i].tx);
        assert_ptr_not_equal(prod[i].tx, tx);
        assert_int_equal(pthread_create(&prod[i].thread, NULL, producer_main, &prod[i]), 0);
    }
    /* The original is closed before anyone sends: the clones keep the stream open. */
    baton_workqueue_sender_close(tx);
    atomic_store(&go, 1);
    uint64_t next[MAX_PRODUCERS] = {0};
    uint64_t total = 0;
    for (;;) {
        void *item = NULL;
        int rc = baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER);
        if (rc == BATON_EEOF)
            break;
        bt_assert_rc(rc, 0);
        uint64_t v = num(item);
        unsigned p = (unsigned)(v & 0xff);
        uint64_t i = v >> 8;
        if (p == 0 || p > np)
            fail_msg("item %#llx from no producer", (unsigned long long)v);
        if (i != next[p - 1])
            fail_msg("producer %u: got item %llu, expected %llu", p - 1, (unsigned long long)i,
                     (unsigned long long)next[p - 1]);
        next[p - 1]++;
        total++;
    }
    for (unsigned i = 0; i < np; i++)
        pthread_join(prod[i].thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    for (unsigned i = 0; i < np; i++)
        if (next[i] != per)
            fail_msg("producer %u: %llu of %llu items arrived", i, (unsigned long long)next[i],
                     (unsigned long long)per);
    assert_int_equal(total, per * np);
    printf("# %u producers x %llu items\n", np, (unsigned long long)per);
    baton_workqueue_receiver_destroy(rx);
}

/* Clones of clones work too, and a clone made by a producer thread of its own sender. */
static void test_clone_of_clone(void **state)
{
    (void)state;
    baton_workqueue_sender *a, *b, *c;
    baton_workqueue_receiver *rx;
    wq_new(8, BATON_WQ_MULTI_PRODUCER, &a, &rx);
    bt_assert_rc(baton_workqueue_sender_clone(a, &b), 0);
    baton_workqueue_sender_close(a);
    bt_assert_rc(baton_workqueue_sender_clone(b, &c), 0);
    bt_assert_rc(baton_workqueue_send(b, val(1), BATON_WAIT_FOREVER), 0);
    bt_assert_rc(baton_workqueue_send(c, val(2), BATON_WAIT_FOREVER), 0);
    baton_workqueue_sender_close(b);
    void *item = NULL;
    bt_assert_rc(baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER), 0);
    assert_ptr_equal(item, val(1));
    bt_assert_rc(baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER), 0);
    assert_ptr_equal(item, val(2));
    bt_assert_rc(baton_workqueue_recv(rx, &item, 20 * 1000000u), BATON_ETIMEDOUT);
    baton_workqueue_sender_close(c);
    bt_assert_rc(baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER), BATON_EEOF);
    baton_workqueue_receiver_destroy(rx);
}

/* ---- end of stream --------------------------------------------------------------------------- */

typedef struct recv_waiter {
    baton_workqueue_receiver *rx;
    uint64_t timeout_ns;
    void *item;
    int rc;
    atomic_int started, done;
    pthread_t thread;
} recv_waiter;

static void *recv_waiter_main(void *arg)
{
    recv_waiter *w = arg;
    atomic_store(&w->started, 1);
    w->rc = baton_workqueue_recv(w->rx, &w->item, w->timeout_ns);
    atomic_store(&w->done, 1);
    return NULL;
}

static void recv_waiter_start(recv_waiter *w, baton_workqueue_receiver *rx, uint64_t timeout_ns)
{
    w->rx = rx;
    w->timeout_ns = timeout_ns;
    w->item = val(0xdead);
    w->rc = 12345;
    atomic_init(&w->started, 0);
    atomic_init(&w->done, 0);
    assert_int_equal(pthread_create(&w->thread, NULL, recv_waiter_main, w), 0);
    assert_true(bt_wait_flag(&w->started, 20000));
    bt_sleep_ms(SETTLE_MS);
    if (atomic_load(&w->done))
        fail_msg("recv returned %s before anything woke it", baton_err_name(w->rc));
}

static void test_eof_only_after_last_sender_closed(void **state)
{
    (void)state;
    unsigned n = g_producers + 1; /* the original and g_producers clones */
    if (n > MAX_PRODUCERS)
        n = MAX_PRODUCERS;
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "EOF after the last close");
    for (int variant = 0; variant < 2; variant++) {
        baton_workqueue_sender *tx[MAX_PRODUCERS];
        baton_workqueue_receiver *rx;
        wq_new(MAX_PRODUCERS * 2, BATON_WQ_MULTI_PRODUCER, &tx[0], &rx);
        for (unsigned i = 1; i < n; i++)
            bt_assert_rc(baton_workqueue_sender_clone(tx[i - 1], &tx[i]), 0);
        for (unsigned i = 0; i < n; i++)
            bt_assert_rc(baton_workqueue_send(tx[i], val(i + 1), BATON_WAIT_FOREVER), 0);
        /* Close all but one; which one stays open changes with the variant. */
        unsigned keep = variant == 0 ? n - 1 : 0;
        for (unsigned i = 0; i < n; i++)
            if (i != keep)
                baton_workqueue_sender_close(tx[i]);
        for (unsigned i = 0; i < n; i++) {
            void *item = NULL;
            bt_assert_rc(baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER), 0);
            assert_ptr_equal(item, val(i + 1));
        }
        void *item = NULL;
        bt_assert_rc(baton_workqueue_recv(rx, &item, 20 * 1000000u), BATON_ETIMEDOUT);
        bt_assert_rc(baton_workqueue_try_recv(rx, &item), BATON_EAGAIN);
        void *batch[4];
        size_t got = 99;
        bt_assert_rc(baton_workqueue_recv_n(rx, batch, 4, &got), BATON_EAGAIN);
        assert_int_equal(got, 0);
        /* The one still open still sends. */
        bt_assert_rc(baton_workqueue_send(tx[keep], val(777), BATON_WAIT_FOREVER), 0);
        bt_assert_rc(baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER), 0);
        assert_ptr_equal(item, val(777));
        if (variant == 0) {
            /* Closing the last one wakes a recv blocked on the empty queue. */
            recv_waiter w;
            recv_waiter_start(&w, rx, BATON_WAIT_FOREVER);
            baton_workqueue_sender_close(tx[keep]);
            pthread_join(w.thread, NULL);
            bt_assert_rc(w.rc, BATON_EEOF);
        } else {
            /* The last close with an item still queued: the item, then EOF. */
            bt_assert_rc(baton_workqueue_send(tx[keep], val(888), BATON_WAIT_FOREVER), 0);
            baton_workqueue_sender_close(tx[keep]);
            bt_assert_rc(baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER), 0);
            assert_ptr_equal(item, val(888));
        }
        bt_assert_rc(baton_workqueue_recv(rx, &item, BATON_WAIT_FOREVER), BATON_EEOF);
        bt_assert_rc(baton_workqueue_try_recv(rx, &item), BATON_EEOF);
        baton_workqueue_receiver_destroy(rx);
    }
    /* Single-producer: the only sender's close wakes a blocked recv (with a long timeout). */
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    wq_new(4, 0, &tx, &rx);
    recv_waiter w;
    recv_waiter_start(&w, rx, UINT64_C(120) * 1000000000u);
    baton_workqueue_sender_close(tx);
    pthread_join(w.thread, NULL);
    bt_assert_rc(w.rc, BATON_EEOF);
    baton_workqueue_receiver_destroy(rx);
    bt_watchdog_stop(&dog);
}

static void test_blocked_recv_woken_by_send(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "recv woken by send");
    for (int mp = 0; mp < 2; mp++) {
        baton_workqueue_sender *tx;
        baton_workqueue_receiver *rx;
        wq_new(2, mp ? BATON_WQ_MULTI_PRODUCER : 0, &tx, &rx);
        for (int round = 0; round < 4; round++) {
            recv_waiter w;
            recv_waiter_start(&w, rx, round % 2 ? UINT64_C(120) * 1000000000u
                                                : BATON_WAIT_FOREVER);
            void *item = round == 0 ? NULL : val(100 + (uint64_t)round);
            if (round == 3) {
                size_t sent = 0;
                bt_assert_rc(baton_workqueue_send_n(tx, &item, 1, BATON_WAIT_FOREVER, &sent), 0);
                assert_int_equal(sent, 1);
            } else if (round == 2) {
                bt_assert_rc(baton_workqueue_try_send(tx, item), 0);
            } else {
                bt_assert_rc(baton_workqueue_send(tx, item, BATON_WAIT_FOREVER), 0);
            }
            pthread_join(w.thread, NULL);
            bt_assert_rc(w.rc, 0);
            assert_ptr_equal(w.item, item);
        }
        baton_workqueue_sender_close(tx);
        baton_workqueue_receiver_destroy(rx);
    }
    bt_watchdog_stop(&dog);
}

/* ---- receiver gone ---------------------------------------------------------------------------- */

static void test_send_after_receiver_destroyed_is_eclosed(void **state)
{
    (void)state;
    for (int mp = 0; mp < 2; mp++) {
        baton_workqueue_sender *tx, *clone = NULL;
        baton_workqueue_receiver *rx;
        wq_new(8, mp ? BATON_WQ_MULTI_PRODUCER : 0, &tx, &rx);
        if (mp)
            bt_assert_rc(baton_workqueue_sender_clone(tx, &clone), 0);
        bt_assert_rc(baton_workqueue_send(tx, val(1), BATON_WAIT_FOREVER), 0);
        baton_workqueue_receiver_destroy(rx);
        bt_assert_rc(baton_workqueue_send(tx, val(2), BATON_WAIT_FOREVER), BATON_ECLOSED);
        assert_true(strlen(baton_last_error_message()) > 0);
        bt_assert_rc(baton_workqueue_send(tx, val(2), 0), BATON_ECLOSED);
        bt_assert_rc(baton_workqueue_try_send(tx, val(3)), BATON_ECLOSED);
        void *items[3] = {val(4), val(5), val(6)};
        size_t sent = 99;
        bt_assert_rc(baton_workqueue_send_n(tx, items, 3, BATON_WAIT_FOREVER, &sent),
                     BATON_ECLOSED);
        assert_int_equal(sent, 0);
        bt_assert_rc(baton_workqueue_send_n(tx, items, 3, BATON_WAIT_FOREVER, NULL),
                     BATON_ECLOSED);
        if (mp) {
            baton_workqueue_sender *another = (baton_workqueue_sender *)(uintptr_t)0x4444;
            bt_assert_rc(baton_workqueue_sender_clone(tx, &another), BATON_ECLOSED);
            assert_ptr_equal(another, (baton_workqueue_sender *)(uintptr_t)0x4444);
            bt_assert_rc(baton_workqueue_try_send(clone, val(7)), BATON_ECLOSED);
            baton_workqueue_sender_close(clone);
        }
        baton_workqueue_sender_close(tx);
    }
}

typedef struct send_waiter {
    baton_workqueue_sender *tx;
    int how; /* 0 send, 1 send_n */
    uint64_t timeout_ns;
    int rc;
    size_t sent;
    atomic_int started, done;
    pthread_t thread;
} send_waiter;

static void *send_waiter_main(void *arg)
{
    send_waiter *w = arg;
    atomic_store(&w->started, 1);
    if (w->how == 0) {
        w->rc = baton_workqueue_send(w->tx, val(0xbad), w->timeout_ns);
    } else {
        void *items[3] = {val(0xbad), val(0xbad), val(0xbad)};
        w->rc = baton_workqueue_send_n(w->tx, items, 3, w->timeout_ns, &w->sent);
    }
    atomic_store(&w->done, 1);
    /* Each waiter owns its sender; closing it after the receiver is gone is normal. */
    baton_workqueue_sender_close(w->tx);
    return NULL;
}

static void test_blocked_senders_woken_by_receiver_destroy(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "blocked senders woken by receiver_destroy");
    for (int mp = 0; mp < 2; mp++) {
        unsigned n = mp ? (g_producers < 8 ? g_producers : 8) : 1;
        baton_workqueue_sender *tx;
        baton_workqueue_receiver *rx;
        wq_new(2, mp ? BATON_WQ_MULTI_PRODUCER : 0, &tx, &rx);
        assert_int_equal(fill(tx, 1), 2);
        send_waiter w[8];
        for (unsigned i = 0; i < n; i++) {
            w[i] = (send_waiter){.how = (int)(i % 2),
                                 .timeout_ns = i % 3 == 2 ? UINT64_C(120) * 1000000000u
                                                          : BATON_WAIT_FOREVER,
                                 .rc = 12345};
            if (mp)
                bt_assert_rc(baton_workqueue_sender_clone(tx, &w[i].tx), 0);
            else
                w[i].tx = tx;
            atomic_init(&w[i].started, 0);
            atomic_init(&w[i].done, 0);
        }
        for (unsigned i = 0; i < n; i++)
            assert_int_equal(pthread_create(&w[i].thread, NULL, send_waiter_main, &w[i]), 0);
        for (unsigned i = 0; i < n; i++)
            assert_true(bt_wait_flag(&w[i].started, 20000));
        bt_sleep_ms(SETTLE_MS);
        for (unsigned i = 0; i < n; i++)
            if (atomic_load(&w[i].done))
                fail_msg("sender %u returned %s on a full queue before anything woke it", i,
                         baton_err_name(w[i].rc));
        baton_workqueue_receiver_destroy(rx);
        for (unsigned i = 0; i < n; i++) {
            pthread_join(w[i].thread, NULL);
            if (w[i].rc != BATON_ECLOSED)
                fail_msg("%s sender %u (%s) woke with %s, expected BATON_ECLOSED",
                         mp ? "multi-producer" : "single-producer", i,
                         w[i].how ? "send_n" : "send", baton_err_name(w[i].rc));
            if (w[i].how == 1)
                assert_int_equal(w[i].sent, 0);
        }
        if (mp)
            baton_workqueue_sender_close(tx);
    }
    bt_watchdog_stop(&dog);
}

/* ---- send_n ---------------------------------------------------------------------------------- */

typedef struct slow_receiver {
    baton_workqueue_receiver *rx;
    uint64_t n;
    uint64_t got;
    uint64_t bad;
    pthread_t thread;
} slow_receiver;

static void *slow_receiver_main(void *arg)
{
    slow_receiver *r = arg;
    for (;;) {
        void *item = NULL;
        int rc = baton_workqueue_recv(r->rx, &item, BATON_WAIT_FOREVER);
        if (rc == BATON_EEOF)
            break;
        BT_CHECK_MSG(rc == 0, "recv: %s", baton_err_name(rc));
        if (rc != 0)
            break;
        if (num(item) != r->got + 1 && r->bad++ == 0)
            BT_CHECK_MSG(false, "slow receiver got %llu, expected %llu",
                         (unsigned long long)num(item), (unsigned long long)(r->got + 1));
        r->got++;
        /* Slow: now and then a real sleep, so the sender finds the queue full and waits. */
        if (r->got % 97 == 0)
            bt_sleep_ns(200000);
        else if (r->got % 7 == 0)
            sched_yield();
    }
    return NULL;
}

static void test_send_n_small_ring_slow_receiver(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "send_n to a slow receiver");
    uint64_t n = bt_scaled(2e4, 2000);
    void **items = malloc((size_t)n * sizeof *items);
    assert_non_null(items);
    for (uint64_t i = 0; i < n; i++)
        items[i] = val(i + 1);
    for (int mp = 0; mp < 2; mp++) {
        baton_workqueue_sender *tx;
        baton_workqueue_receiver *rx;
        wq_new(4, mp ? BATON_WQ_MULTI_PRODUCER : 0, &tx, &rx);
        slow_receiver r = {.rx = rx, .n = n};
        assert_int_equal(pthread_create(&r.thread, NULL, slow_receiver_main, &r), 0);
        /* All at once, then in uneven pieces with a finite (generous) timeout. */
        uint64_t half = n / 2;
        size_t sent = 0;
        bt_assert_rc(baton_workqueue_send_n(tx, items, (size_t)half, BATON_WAIT_FOREVER, &sent),
                     0);
        assert_int_equal(sent, half);
        for (uint64_t i = half; i < n;) {
            size_t k = (size_t)(1 + (i * 7919) % 37);
            if (k > n - i)
                k = (size_t)(n - i);
            bt_assert_rc(baton_workqueue_send_n(tx, items + i, k, UINT64_C(60) * 1000000000u,
                                                &sent),
                         0);
            assert_int_equal(sent, k);
            i += k;
        }
        /* n == 0 sends nothing and succeeds. */
        sent = 99;
        bt_assert_rc(baton_workqueue_send_n(tx, items, 0, 0, &sent), 0);
        assert_int_equal(sent, 0);
        baton_workqueue_sender_close(tx);
        pthread_join(r.thread, NULL);
        bt_assert_no_thread_failures();
        assert_int_equal(r.got, n);
        assert_int_equal(r.bad, 0);
        baton_workqueue_receiver_destroy(rx);
    }
    free(items);
    bt_watchdog_stop(&dog);
}

static void test_send_n_times_out_on_full_queue(void **state)
{
    (void)state;
    for (int mp = 0; mp < 2; mp++) {
        baton_workqueue_sender *tx;
        baton_workqueue_receiver *rx;
        wq_new(4, mp ? BATON_WQ_MULTI_PRODUCER : 0, &tx, &rx);
        bt_assert_rc(baton_workqueue_try_send(tx, val(1)), 0);
        void *items[6] = {val(2), val(3), val(4), val(5), val(6), val(7)};
        size_t sent = 99;
        uint64_t t0 = bt_now_ns();
        bt_assert_rc(baton_workqueue_send_n(tx, items, 6, 20 * 1000000u, &sent), BATON_ETIMEDOUT);
        uint64_t took = bt_now_ns() - t0;
        assert_int_equal(sent, 3);
        bt_assert_rc(baton_workqueue_send_n(tx, items + 3, 3, 0, &sent), BATON_ETIMEDOUT);
        assert_int_equal(sent, 0);
        bt_assert_rc(baton_workqueue_send(tx, val(9), 0), BATON_ETIMEDOUT);
        bt_assert_rc(baton_workqueue_send(tx, val(9), 5 * 1000000u), BATON_ETIMEDOUT);
        bt_assert_rc(baton_workqueue_try_send(tx, val(9)), BATON_EAGAIN);
        /* What went in is what comes out, and nothing else. */
        for (uint64_t v = 1; v <= 4; v++) {
            void *item = NULL;
            bt_assert_rc(baton_workqueue_try_recv(rx, &item), 0);
            assert_int_equal(num(item), v);
        }
        void *item = NULL;
        bt_assert_rc(baton_workqueue_try_recv(rx, &item), BATON_EAGAIN);
        printf("# send_n on a full queue timed out after %.1f ms (asked 20)\n", took / 1e6);
        baton_workqueue_sender_close(tx);
        baton_workqueue_receiver_destroy(rx);
    }
}

/* ---- try calls ------------------------------------------------------------------------------- */

static void test_try_calls(void **state)
{
    (void)state;
    for (int mp = 0; mp < 2; mp++) {
        baton_workqueue_sender *tx;
        baton_workqueue_receiver *rx;
        wq_new(8, mp ? BATON_WQ_MULTI_PRODUCER : 0, &tx, &rx);
        void *item = val(0xabc);
        bt_assert_rc(baton_workqueue_try_recv(rx, &item), BATON_EAGAIN);
        assert_ptr_equal(item, val(0xabc));
        bt_assert_rc(baton_workqueue_recv(rx, &item, 0), BATON_ETIMEDOUT);
        bt_assert_rc(baton_workqueue_recv(rx, &item, 10 * 1000000u), BATON_ETIMEDOUT);
        void *batch[16];
        size_t got = 99;
        bt_assert_rc(baton_workqueue_recv_n(rx, batch, 16, &got), BATON_EAGAIN);
        assert_int_equal(got, 0);
        bt_assert_rc(baton_workqueue_recv_n(rx, batch, 0, &got), 0);
        assert_int_equal(got, 0);
        assert_int_equal(fill(tx, 10), 8);
        bt_assert_rc(baton_workqueue_try_send(tx, val(99)), BATON_EAGAIN);
        bt_assert_rc(baton_workqueue_recv_n(rx, batch, 3, &got), 0);
        assert_int_equal(got, 3);
        for (size_t k = 0; k < 3; k++)
            assert_int_equal(num(batch[k]), 10 + k);
        bt_assert_rc(baton_workqueue_recv_n(rx, batch, 16, NULL), 0);
        bt_assert_rc(baton_workqueue_try_recv(rx, &item), BATON_EAGAIN);
        bt_assert_rc(baton_workqueue_try_send(tx, NULL), 0);
        item = val(1);
        bt_assert_rc(baton_workqueue_try_recv(rx, &item), 0);
        assert_null(item);
        baton_workqueue_sender_close(tx);
        bt_assert_rc(baton_workqueue_try_recv(rx, &item), BATON_EEOF);
        bt_assert_rc(baton_workqueue_recv_n(rx, batch, 16, &got), BATON_EEOF);
        bt_assert_rc(baton_workqueue_recv(rx, &item, 0), BATON_EEOF);
        baton_workqueue_receiver_destroy(rx);
    }
}

/* ---- lifetimes ------------------------------------------------------------------------------- */

typedef struct closer {
    baton_workqueue_sender *tx;
    uint64_t sends;
    pthread_t thread;
} closer;

static void *closer_main(void *arg)
{
    closer *c = arg;
    for (uint64_t i = 0; i < c->sends; i++) {
        int rc = baton_workqueue_try_send(c->tx, val(i + 1));
        BT_CHECK_MSG(rc == 0 || rc == BATON_EAGAIN || rc == BATON_ECLOSED, "try_send: %s",
                     baton_err_name(rc));
    }
    baton_workqueue_sender_close(c->tx);
    return NULL;
}

static void test_handles_freed_in_either_order(void **state)
{
    (void)state;
    for (int mp = 0; mp < 2; mp++) {
        unsigned flags = mp ? BATON_WQ_MULTI_PRODUCER : 0;
        baton_workqueue_sender *tx;
        baton_workqueue_receiver *rx;
        /* Receiver first, with items left inside. */
        wq_new(16, flags, &tx, &rx);
        bt_assert_rc(baton_workqueue_send(tx, val(1), 0), 0);
        bt_assert_rc(baton_workqueue_send(tx, val(2), 0), 0);
        baton_workqueue_receiver_destroy(rx);
        baton_workqueue_sender_close(tx);
        /* Sender first, with items left inside, the receiver never reading them. */
        wq_new(16, flags, &tx, &rx);
        bt_assert_rc(baton_workqueue_send(tx, val(1), 0), 0);
        baton_workqueue_sender_close(tx);
        baton_workqueue_receiver_destroy(rx);
        /* Nothing ever sent. */
        wq_new(1, flags, &tx, &rx);
        baton_workqueue_sender_close(tx);
        baton_workqueue_receiver_destroy(rx);
        wq_new(1, flags, &tx, &rx);
        baton_workqueue_receiver_destroy(rx);
        baton_workqueue_sender_close(tx);
    }
    /* Clones closed on their own threads while the receiver goes away on this one, many times
     * over: whichever handle is last frees the queue (ASan reports a leak or a double free). */
    unsigned n = g_producers < 8 ? g_producers : 8;
    size_t rounds = bt_scaled(300, 30);
    for (size_t round = 0; round < rounds; round++) {
        baton_workqueue_sender *tx;
        baton_workqueue_receiver *rx;
        wq_new(4, BATON_WQ_MULTI_PRODUCER, &tx, &rx);
        closer c[8];
        for (unsigned i = 0; i < n; i++) {
            c[i] = (closer){.sends = round % 5};
            bt_assert_rc(baton_workqueue_sender_clone(tx, &c[i].tx), 0);
        }
        baton_workqueue_sender_close(tx);
        for (unsigned i = 0; i < n; i++)
            assert_int_equal(pthread_create(&c[i].thread, NULL, closer_main, &c[i]), 0);
        if (round % 2 == 0) {
            void *item;
            (void)baton_workqueue_try_recv(rx, &item);
        }
        baton_workqueue_receiver_destroy(rx);
        for (unsigned i = 0; i < n; i++)
            pthread_join(c[i].thread, NULL);
    }
    bt_assert_no_thread_failures();
}

int main(int argc, char **argv)
{
    g_producers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_capacity_rounding),
        cmocka_unit_test(test_single_producer_refuses_clone),
        cmocka_unit_test(test_single_producer_stream),
        cmocka_unit_test(test_multi_producer_every_item_once_in_order),
        cmocka_unit_test(test_clone_of_clone),
        cmocka_unit_test(test_eof_only_after_last_sender_closed),
        cmocka_unit_test(test_blocked_recv_woken_by_send),
        cmocka_unit_test(test_send_after_receiver_destroyed_is_eclosed),
        cmocka_unit_test(test_blocked_senders_woken_by_receiver_destroy),
        cmocka_unit_test(test_send_n_small_ring_slow_receiver),
        cmocka_unit_test(test_send_n_times_out_on_full_queue),
        cmocka_unit_test(test_try_calls),
        cmocka_unit_test(test_handles_freed_in_either_order),
    };
    return cmocka_run_group_tests_name("queue/workqueue", tests, NULL, NULL);
}
