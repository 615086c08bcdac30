/*
 * test_queue_ring_blocking.c — the waiting calls of the bounded rings, against every kind:
 *  - a consumer blocked in pop (BATON_WAIT_FOREVER, and with a long timeout) is woken by a push
 *    and gets the item; a producer blocked in push on a full ring is woken by a pop and its item
 *    goes in after the ones already there;
 *  - close wakes blocked consumers (pop returns BATON_EEOF; several at once on MPMC) and blocked
 *    producers on a full ring (push returns BATON_ECLOSED; several at once on MPSC and MPMC),
 *    and their items never appear;
 *  - pushes wake every blocked consumer that has an item to take (MPMC), pops every blocked
 *    producer that has room (MPSC, MPMC);
 *  - pop on an empty ring and push on a full ring with a timeout return BATON_ETIMEDOUT and
 *    change nothing (no timing is asserted, only printed);
 *  - ping-pong through two capacity-1/2 rings with blocking calls on both sides, many rounds:
 *    every hand-over is a wake-up, so a lost one hangs (the watchdog names it).
 *
 * A helper thread does the blocking call; the main thread sleeps a little to let it block. The
 * sleep only makes it likely that the wake-up path is the one exercised: every outcome checked
 * is the same whether the helper had blocked yet or not.
 */
#include "support/bt_common.h"

#include "support/bt_queue_ring.h"

enum { MAX_WAITERS = 4, SETTLE_MS = 30, WATCHDOG_S = 30 };

typedef enum waiter_op { OP_PUSH, OP_POP } waiter_op;

typedef struct waiter {
    const bt_ring_ops *ops;
    void *q;
    waiter_op op;
    uint64_t timeout_ns;
    void *item; /* pushed, or popped */
    int rc;
    atomic_int started;
    atomic_int done;
    pthread_t thread;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    atomic_store(&w->started, 1);
    if (w->op == OP_PUSH)
        w->rc = w->ops->push(w->q, w->item, w->timeout_ns);
    else
        w->rc = w->ops->pop(w->q, &w->item, w->timeout_ns);
    atomic_store(&w->done, 1);
    return NULL;
}

static void waiter_start(waiter *w, const bt_ring_ops *ops, void *q, waiter_op op, void *item,
                         uint64_t timeout_ns)
{
    w->ops = ops;
    w->q = q;
    w->op = op;
    w->timeout_ns = timeout_ns;
    w->item = item;
    w->rc = 12345;
    atomic_init(&w->started, 0);
    atomic_init(&w->done, 0);
    assert_int_equal(pthread_create(&w->thread, NULL, waiter_main, w), 0);
}

/* Waits until the helpers have started and had time to block, and checks that none of them has
 * returned: nothing they could return is possible yet. */
static void waiters_settle(waiter *w, unsigned n, const char *what)
{
    for (unsigned i = 0; i < n; i++)
        assert_true(bt_wait_flag(&w[i].started, 20000));
    bt_sleep_ms(SETTLE_MS);
    for (unsigned i = 0; i < n; i++)
        if (atomic_load(&w[i].done))
            fail_msg("%s: waiter %u returned %s before anything woke it", what, i,
                     baton_err_name(w[i].rc));
}

static void waiter_join(waiter *w)
{
    pthread_join(w->thread, NULL);
}

/* ---- push wakes pop, pop wakes push --------------------------------------------------------- */

static void pop_woken_by_push(const bt_ring_ops *ops, uint64_t timeout_ns, const char *what)
{
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, what);
    void *q = bt_ring_new(ops, 4);
    for (int round = 0; round < 5; round++) {
        waiter w;
        waiter_start(&w, ops, q, OP_POP, bt_item_of(0xdead), timeout_ns);
        waiters_settle(&w, 1, what);
        void *item = round == 0 ? NULL : bt_item_of(1000 + (uint64_t)round);
        bt_assert_rc(ops->push(q, item, BATON_WAIT_FOREVER), 0);
        waiter_join(&w);
        bt_assert_rc(w.rc, 0);
        assert_ptr_equal(w.item, item);
        assert_int_equal(ops->size(q), 0);
    }
    ops->destroy(q);
    bt_watchdog_stop(&dog);
}

static void test_pop_forever_woken_by_push(void **state)
{
    pop_woken_by_push(bt_ring_ops_of(state), BATON_WAIT_FOREVER, "pop(WAIT_FOREVER) woken by push");
}

static void test_pop_timed_woken_by_push(void **state)
{
    /* A timeout far beyond the watchdog: a lost wake-up shows as a hang, not as ETIMEDOUT. */
    pop_woken_by_push(bt_ring_ops_of(state), UINT64_C(120) * 1000000000u,
                      "pop(120 s) woken by push");
}

static void push_woken_by_pop(const bt_ring_ops *ops, size_t cap, uint64_t timeout_ns,
                              const char *what)
{
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, what);
    void *q = bt_ring_new(ops, cap);
    uint64_t next = 0, expect = 0;
    for (size_t i = 0; i < cap; i++)
        bt_assert_rc(ops->try_push(q, bt_item_of(next++)), 0);
    for (int round = 0; round < 5; round++) {
        waiter w;
        waiter_start(&w, ops, q, OP_PUSH, bt_item_of(next), timeout_ns);
        waiters_settle(&w, 1, what);
        assert_int_equal(ops->size(q), cap);
        void *got = NULL;
        bt_assert_rc(ops->pop(q, &got, BATON_WAIT_FOREVER), 0);
        assert_int_equal(bt_value_of(got), expect++);
        waiter_join(&w);
        bt_assert_rc(w.rc, 0);
        next++;
        assert_int_equal(ops->size(q), cap);
    }
    /* The blocked items went in behind the others, in order. */
    for (size_t i = 0; i < cap; i++) {
        void *got = NULL;
        bt_assert_rc(ops->try_pop(q, &got), 0);
        assert_int_equal(bt_value_of(got), expect++);
    }
    assert_int_equal(expect, next);
    ops->destroy(q);
    bt_watchdog_stop(&dog);
}

static void test_push_forever_woken_by_pop(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    push_woken_by_pop(ops, 2, BATON_WAIT_FOREVER, "push(WAIT_FOREVER) on a full ring of 2");
    push_woken_by_pop(ops, 1, BATON_WAIT_FOREVER, "push(WAIT_FOREVER) on a full ring of 1");
}

static void test_push_timed_woken_by_pop(void **state)
{
    push_woken_by_pop(bt_ring_ops_of(state), 4, UINT64_C(120) * 1000000000u,
                      "push(120 s) on a full ring of 4");
}

/* ---- close wakes waiters ---------------------------------------------------------------------- */

static void test_close_wakes_blocked_pops(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    unsigned n = ops->multi_consumer ? MAX_WAITERS : 1;
    static const uint64_t timeouts[] = {BATON_WAIT_FOREVER, UINT64_C(120) * 1000000000u};
    for (size_t t = 0; t < 2; t++) {
        const char *what = t == 0 ? "pop(WAIT_FOREVER) woken by close" : "pop(120 s) woken by close";
        bt_watchdog dog;
        bt_watchdog_start(&dog, WATCHDOG_S, what);
        void *q = bt_ring_new(ops, 8);
        waiter w[MAX_WAITERS];
        for (unsigned i = 0; i < n; i++)
            waiter_start(&w[i], ops, q, OP_POP, bt_item_of(0xdead), timeouts[t]);
        waiters_settle(w, n, what);
        ops->close(q);
        for (unsigned i = 0; i < n; i++) {
            waiter_join(&w[i]);
            bt_assert_rc(w[i].rc, BATON_EEOF);
        }
        void *got;
        bt_assert_rc(ops->pop(q, &got, BATON_WAIT_FOREVER), BATON_EEOF);
        ops->destroy(q);
        bt_watchdog_stop(&dog);
    }
}

static void test_close_wakes_blocked_pushes(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    unsigned n = ops->multi_producer ? MAX_WAITERS : 1;
    static const uint64_t timeouts[] = {BATON_WAIT_FOREVER, UINT64_C(120) * 1000000000u};
    for (size_t t = 0; t < 2; t++) {
        const char *what =
            t == 0 ? "push(WAIT_FOREVER) woken by close" : "push(120 s) woken by close";
        bt_watchdog dog;
        bt_watchdog_start(&dog, WATCHDOG_S, what);
        void *q = bt_ring_new(ops, 2);
        bt_assert_rc(ops->try_push(q, bt_item_of(1)), 0);
        bt_assert_rc(ops->try_push(q, bt_item_of(2)), 0);
        waiter w[MAX_WAITERS];
        for (unsigned i = 0; i < n; i++)
            waiter_start(&w[i], ops, q, OP_PUSH, bt_item_of(100 + i), timeouts[t]);
        waiters_settle(w, n, what);
        ops->close(q);
        for (unsigned i = 0; i < n; i++) {
            waiter_join(&w[i]);
            bt_assert_rc(w[i].rc, BATON_ECLOSED);
        }
        /* Only the two items from before the close come out. */
        void *got = NULL;
        bt_assert_rc(ops->pop(q, &got, BATON_WAIT_FOREVER), 0);
        assert_int_equal(bt_value_of(got), 1);
        bt_assert_rc(ops->pop(q, &got, BATON_WAIT_FOREVER), 0);
        assert_int_equal(bt_value_of(got), 2);
        bt_assert_rc(ops->pop(q, &got, BATON_WAIT_FOREVER), BATON_EEOF);
        ops->destroy(q);
        bt_watchdog_stop(&dog);
    }
}

/* ---- every waiter that can proceed is woken --------------------------------------------------- */

static void test_pushes_wake_every_blocked_pop(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    const char *what = "four blocked pops, four pushes";
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, what);
    void *q = bt_ring_new(ops, 8);
    for (int round = 0; round < 3; round++) {
        waiter w[MAX_WAITERS];
        for (unsigned i = 0; i < MAX_WAITERS; i++)
            waiter_start(&w[i], ops, q, OP_POP, bt_item_of(0xdead), BATON_WAIT_FOREVER);
        waiters_settle(w, MAX_WAITERS, what);
        /* One at a time, or all at once in one push_n. */
        if (round == 1) {
            void *items[MAX_WAITERS];
            for (unsigned i = 0; i < MAX_WAITERS; i++)
                items[i] = bt_item_of(i);
            size_t pushed = 0;
            bt_assert_rc(ops->push_n(q, items, MAX_WAITERS, &pushed), 0);
            assert_int_equal(pushed, MAX_WAITERS);
        } else {
            for (unsigned i = 0; i < MAX_WAITERS; i++)
                bt_assert_rc(ops->push(q, bt_item_of(i), BATON_WAIT_FOREVER), 0);
        }
        unsigned seen = 0;
        for (unsigned i = 0; i < MAX_WAITERS; i++) {
            waiter_join(&w[i]);
            bt_assert_rc(w[i].rc, 0);
            uint64_t v = bt_value_of(w[i].item);
            assert_true(v < MAX_WAITERS);
            assert_false(seen & (1u << v));
            seen |= 1u << v;
        }
    }
    ops->destroy(q);
    bt_watchdog_stop(&dog);
}

static void test_pops_wake_every_blocked_push(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    const char *what = "four blocked pushes on a full ring, four pops";
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, what);
    void *q = bt_ring_new(ops, 4);
    for (int round = 0; round < 3; round++) {
        for (uint64_t i = 0; i < 4; i++)
            bt_assert_rc(ops->try_push(q, bt_item_of(100 + i)), 0);
        waiter w[MAX_WAITERS];
        for (unsigned i = 0; i < MAX_WAITERS; i++)
            waiter_start(&w[i], ops, q, OP_PUSH, bt_item_of(i), BATON_WAIT_FOREVER);
        waiters_settle(w, MAX_WAITERS, what);
        void *out[4];
        if (round == 1) {
            size_t popped = 0;
            bt_assert_rc(ops->pop_n(q, out, 4, &popped), 0);
            assert_int_equal(popped, 4);
        } else {
            for (unsigned i = 0; i < 4; i++)
                bt_assert_rc(ops->pop(q, &out[i], BATON_WAIT_FOREVER), 0);
        }
        for (uint64_t i = 0; i < 4; i++)
            assert_int_equal(bt_value_of(out[i]), 100 + i);
        for (unsigned i = 0; i < MAX_WAITERS; i++) {
            waiter_join(&w[i]);
            bt_assert_rc(w[i].rc, 0);
        }
        /* The four blocked items are in, each once. */
        unsigned seen = 0;
        for (unsigned i = 0; i < 4; i++) {
            void *got;
            bt_assert_rc(ops->try_pop(q, &got), 0);
            uint64_t v = bt_value_of(got);
            assert_true(v < MAX_WAITERS);
            assert_false(seen & (1u << v));
            seen |= 1u << v;
        }
        void *got;
        bt_assert_rc(ops->try_pop(q, &got), BATON_EAGAIN);
    }
    ops->destroy(q);
    bt_watchdog_stop(&dog);
}

/* ---- timeouts --------------------------------------------------------------------------------- */

static const uint64_t g_timeouts[] = {0, 1, 1000, 100000, 2000000, 20000000};
#define N_TIMEOUTS (sizeof g_timeouts / sizeof g_timeouts[0])

static void test_pop_timeout_on_empty(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "pop with a timeout on an empty ring");
    void *q = bt_ring_new(ops, 4);
    for (size_t t = 0; t < N_TIMEOUTS; t++) {
        void *got = bt_item_of(0xdead);
        uint64_t start = bt_now_ns();
        bt_assert_rc(ops->pop(q, &got, g_timeouts[t]), BATON_ETIMEDOUT);
        uint64_t took = bt_now_ns() - start;
        printf("# %s pop(timeout %llu ns) on empty: ETIMEDOUT after %llu ns\n", ops->name,
               (unsigned long long)g_timeouts[t], (unsigned long long)took);
        assert_int_equal(ops->size(q), 0);
    }
    /* The ring still works, and a pop with a timeout takes an item that is there. */
    bt_assert_rc(ops->try_push(q, bt_item_of(7)), 0);
    void *got = NULL;
    bt_assert_rc(ops->pop(q, &got, 1000), 0);
    assert_int_equal(bt_value_of(got), 7);
    bt_assert_rc(ops->pop(q, &got, 1000), BATON_ETIMEDOUT);
    ops->destroy(q);
    bt_watchdog_stop(&dog);
}

static void test_push_timeout_on_full(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "push with a timeout on a full ring");
    void *q = bt_ring_new(ops, 2);
    bt_assert_rc(ops->try_push(q, bt_item_of(1)), 0);
    bt_assert_rc(ops->try_push(q, bt_item_of(2)), 0);
    for (size_t t = 0; t < N_TIMEOUTS; t++) {
        uint64_t start = bt_now_ns();
        bt_assert_rc(ops->push(q, bt_item_of(99), g_timeouts[t]), BATON_ETIMEDOUT);
        uint64_t took = bt_now_ns() - start;
        printf("# %s push(timeout %llu ns) on full: ETIMEDOUT after %llu ns\n", ops->name,
               (unsigned long long)g_timeouts[t], (unsigned long long)took);
        assert_int_equal(ops->size(q), 2);
    }
    /* Unchanged. */
    void *got = NULL;
    bt_assert_rc(ops->try_pop(q, &got), 0);
    assert_int_equal(bt_value_of(got), 1);
    bt_assert_rc(ops->push(q, bt_item_of(3), 1000), 0);
    bt_assert_rc(ops->try_pop(q, &got), 0);
    assert_int_equal(bt_value_of(got), 2);
    bt_assert_rc(ops->try_pop(q, &got), 0);
    assert_int_equal(bt_value_of(got), 3);
    bt_assert_rc(ops->try_pop(q, &got), BATON_EAGAIN);
    ops->destroy(q);
    bt_watchdog_stop(&dog);
}

/* ---- ping-pong -------------------------------------------------------------------------------- */

typedef struct pingpong {
    const bt_ring_ops *ops;
    void *there, *back;
    size_t rounds;
    bool timed; /* the echo side uses short timeouts and retries */
} pingpong;

static void *echo_main(void *arg)
{
    pingpong *pp = arg;
    for (size_t i = 0; i < pp->rounds; i++) {
        void *item = NULL;
        int rc;
        if (pp->timed) {
            while ((rc = pp->ops->pop(pp->there, &item, 20000)) == BATON_ETIMEDOUT) {
            }
        } else {
            rc = pp->ops->pop(pp->there, &item, BATON_WAIT_FOREVER);
        }
        if (rc != 0) {
            BT_CHECK_MSG(rc == 0, "echo pop %zu: %s", i, baton_err_name(rc));
            return NULL;
        }
        BT_CHECK_MSG(bt_value_of(item) == i, "echo: round %zu got %llu", i,
                     (unsigned long long)bt_value_of(item));
        if (pp->timed) {
            while ((rc = pp->ops->push(pp->back, item, 20000)) == BATON_ETIMEDOUT) {
            }
        } else {
            rc = pp->ops->push(pp->back, item, BATON_WAIT_FOREVER);
        }
        if (rc != 0) {
            BT_CHECK_MSG(rc == 0, "echo push %zu: %s", i, baton_err_name(rc));
            return NULL;
        }
    }
    return NULL;
}

static void run_pingpong(const bt_ring_ops *ops, size_t cap, bool timed)
{
    char what[128];
    snprintf(what, sizeof what, "%s ping-pong, capacity %zu, %s", ops->name, cap,
             timed ? "timed" : "WAIT_FOREVER");
    bt_watchdog dog;
    bt_watchdog_start(&dog, 60, what);
    pingpong pp = {ops, bt_ring_new(ops, cap), bt_ring_new(ops, cap), bt_scaled(20000, 2000),
                   timed};
    pthread_t echo;
    assert_int_equal(pthread_create(&echo, NULL, echo_main, &pp), 0);
    size_t i;
    for (i = 0; i < pp.rounds; i++) {
        int rc = ops->push(pp.there, bt_item_of(i), BATON_WAIT_FOREVER);
        if (rc != 0)
            break;
        void *item = NULL;
        rc = ops->pop(pp.back, &item, BATON_WAIT_FOREVER);
        if (rc != 0 || bt_value_of(item) != i) {
            BT_CHECK_MSG(false, "round %zu: pop back = %s, item %llu", i, baton_err_name(rc),
                         (unsigned long long)bt_value_of(item));
            break;
        }
    }
    if (i < pp.rounds) {
        /* Let the echo side end instead of waiting forever. */
        ops->close(pp.there);
        ops->close(pp.back);
    }
    pthread_join(echo, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    assert_int_equal(i, pp.rounds);
    ops->destroy(pp.there);
    ops->destroy(pp.back);
}

static void test_pingpong(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    run_pingpong(ops, 1, false);
    run_pingpong(ops, 2, false);
    run_pingpong(ops, 2, true);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        BT_RING_CASES(test_pop_forever_woken_by_push),
        BT_RING_CASES(test_pop_timed_woken_by_push),
        BT_RING_CASES(test_push_forever_woken_by_pop),
        BT_RING_CASES(test_push_timed_woken_by_pop),
        BT_RING_CASES(test_close_wakes_blocked_pops),
        BT_RING_CASES(test_close_wakes_blocked_pushes),
        BT_RING_CASE(MPMC, "mpmc_", test_pushes_wake_every_blocked_pop),
        BT_RING_CASE(MPSC, "mpsc_", test_pops_wake_every_blocked_push),
        BT_RING_CASE(MPMC, "mpmc_", test_pops_wake_every_blocked_push),
        BT_RING_CASES(test_pop_timeout_on_empty),
        BT_RING_CASES(test_push_timeout_on_full),
        BT_RING_CASES(test_pingpong),
    };
    return cmocka_run_group_tests_name("queue/ring_blocking", tests, NULL, NULL);
}
