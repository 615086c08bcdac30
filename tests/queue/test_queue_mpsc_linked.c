/*
 * test_queue_mpsc_linked.c — the unbounded, intrusive linked MPSC queue (baton_mpsc_linked):
 *  - items embed a baton_mpsc_node (not as their first member) and are recovered from the
 *    node's address with offsetof; FIFO on one thread; try_pop on an empty queue is
 *    BATON_EAGAIN; a node can be pushed again once popped (one node alone, over and over: the
 *    queue's own stub must come back into play correctly);
 *  - pop_n: partial counts (max above the size), max == 0, NULL count pointer;
 *  - close: pushes after it are BATON_ECLOSED, pops drain what is left and then return
 *    BATON_EEOF again and again (pop with WAIT_FOREVER too), close is idempotent;
 *  - bad arguments: create(NULL), push(NULL node), NULL out pointers on the pops are
 *    BATON_EINVAL; destroy(NULL); destroy with nodes still queued leaves them untouched;
 *  - waiting: a consumer blocked in pop (WAIT_FOREVER, or a long timeout) is woken by a push and
 *    by close (BATON_EEOF); pop with a short timeout on an empty queue is BATON_ETIMEDOUT;
 *  - with `--workers N` (CTest: 1, 2, 4, 8, 16 on 2 cores): N producers push 5*10^5 nodes in
 *    all (BATON_TEST_SCALE) while the consumer pops with try_pop + yield, with blocking pop,
 *    and with a mix of pop_n and timed pops (producers pausing now and then, so that the
 *    consumer often waits): every node arrives once, in order per producer, with the payload
 *    its producer wrote before pushing.
 */
#include "support/bt_common.h"

#include "baton/queue.h"

enum { MAX_PRODUCERS = 16, WATCHDOG_S = 30, SETTLE_MS = 30 };

static unsigned g_producers = 1;

/* An item with its node in the middle, so that recovering the item needs offsetof. */
typedef struct item {
    uint32_t producer;
    baton_mpsc_node node;
    uint64_t seq;
    uint32_t payload; /* written with a plain store before the push */
} item;

static item *item_of_node(baton_mpsc_node *node)
{
    return (item *)(void *)((char *)node - offsetof(item, node));
}

static baton_mpsc_linked *linked_new(void)
{
    baton_mpsc_linked *q = NULL;
    int rc = baton_mpsc_linked_create(&q);
    if (rc != 0)
        fail_msg("baton_mpsc_linked_create = %s: %s", baton_err_name(rc),
                 baton_last_error_message());
    assert_non_null(q);
    return q;
}

static void expect_pop(baton_mpsc_linked *q, item *want)
{
    baton_mpsc_node *node = NULL;
    bt_assert_rc(baton_mpsc_linked_try_pop(q, &node), 0);
    assert_non_null(node);
    assert_ptr_equal(item_of_node(node), want);
}

static void expect_empty(baton_mpsc_linked *q)
{
    baton_mpsc_node *node = NULL;
    bt_assert_rc(baton_mpsc_linked_try_pop(q, &node), BATON_EAGAIN);
    baton_mpsc_node *nodes[2];
    size_t popped = 99;
    bt_assert_rc(baton_mpsc_linked_pop_n(q, nodes, 2, &popped), BATON_EAGAIN);
    assert_int_equal(popped, 0);
}

/* ---- one thread ------------------------------------------------------------------------------- */

static void test_fifo(void **state)
{
    (void)state;
    baton_mpsc_linked *q = linked_new();
    expect_empty(q);
    enum { N = 1000 };
    item *items = calloc(N, sizeof *items);
    assert_non_null(items);
    for (size_t round = 0; round < 20; round++) {
        size_t n = 1 + round * 50;
        for (size_t i = 0; i < n; i++) {
            items[i].seq = round * N + i;
            bt_assert_rc(baton_mpsc_linked_push(q, &items[i].node), 0);
        }
        for (size_t i = 0; i < n; i++) {
            baton_mpsc_node *node = NULL;
            /* Every pop flavour, in turn. */
            if (i % 2 == 0)
                bt_assert_rc(baton_mpsc_linked_try_pop(q, &node), 0);
            else
                bt_assert_rc(baton_mpsc_linked_pop(q, &node, i % 4 == 1 ? 0 : BATON_WAIT_FOREVER),
                             0);
            item *it = item_of_node(node);
            assert_ptr_equal(it, &items[i]);
            assert_int_equal(it->seq, round * N + i);
        }
        expect_empty(q);
    }
    free(items);
    baton_mpsc_linked_destroy(q);
}

static void test_node_pushed_again(void **state)
{
    (void)state;
    baton_mpsc_linked *q = linked_new();
    item a = {0}, b = {0}, c = {0};
    /* One node alone, over and over. */
    for (int i = 0; i < 1000; i++) {
        bt_assert_rc(baton_mpsc_linked_push(q, &a.node), 0);
        expect_pop(q, &a);
        expect_empty(q);
    }
    /* Two and three nodes taking turns, the queue never quite empty. */
    bt_assert_rc(baton_mpsc_linked_push(q, &a.node), 0);
    for (int i = 0; i < 1000; i++) {
        bt_assert_rc(baton_mpsc_linked_push(q, &b.node), 0);
        expect_pop(q, &a);
        bt_assert_rc(baton_mpsc_linked_push(q, &a.node), 0);
        expect_pop(q, &b);
    }
    expect_pop(q, &a);
    expect_empty(q);
    for (int i = 0; i < 1000; i++) {
        bt_assert_rc(baton_mpsc_linked_push(q, &a.node), 0);
        bt_assert_rc(baton_mpsc_linked_push(q, &b.node), 0);
        bt_assert_rc(baton_mpsc_linked_push(q, &c.node), 0);
        if (i % 2 == 0) {
            expect_pop(q, &a);
            expect_pop(q, &b);
            expect_pop(q, &c);
        } else {
            baton_mpsc_node *nodes[4];
            size_t popped = 0;
            bt_assert_rc(baton_mpsc_linked_pop_n(q, nodes, 4, &popped), 0);
            assert_int_equal(popped, 3);
            assert_ptr_equal(nodes[0], &a.node);
            assert_ptr_equal(nodes[1], &b.node);
            assert_ptr_equal(nodes[2], &c.node);
        }
        expect_empty(q);
    }
    baton_mpsc_linked_destroy(q);
}

static void test_pop_n(void **state)
{
    (void)state;
    baton_mpsc_linked *q = linked_new();
    item items[10];
    baton_mpsc_node *nodes[16];
    size_t popped;
    memset(items, 0, sizeof items);

    popped = 99;
    bt_assert_rc(baton_mpsc_linked_pop_n(q, nodes, 0, &popped), 0); /* max == 0, empty */
    assert_int_equal(popped, 0);
    for (size_t i = 0; i < 10; i++)
        bt_assert_rc(baton_mpsc_linked_push(q, &items[i].node), 0);
    popped = 99;
    bt_assert_rc(baton_mpsc_linked_pop_n(q, nodes, 0, &popped), 0); /* max == 0 takes nothing */
    assert_int_equal(popped, 0);
    popped = 99;
    bt_assert_rc(baton_mpsc_linked_pop_n(q, nodes, 4, &popped), 0);
    assert_int_equal(popped, 4);
    for (size_t i = 0; i < 4; i++)
        assert_ptr_equal(nodes[i], &items[i].node);
    popped = 99;
    bt_assert_rc(baton_mpsc_linked_pop_n(q, nodes, 16, &popped), 0); /* more than there are */
    assert_int_equal(popped, 6);
    for (size_t i = 0; i < 6; i++)
        assert_ptr_equal(nodes[i], &items[4 + i].node);
    popped = 99;
    bt_assert_rc(baton_mpsc_linked_pop_n(q, nodes, 16, &popped), BATON_EAGAIN);
    assert_int_equal(popped, 0);

    /* NULL count pointer; one node exactly. */
    bt_assert_rc(baton_mpsc_linked_push(q, &items[0].node), 0);
    bt_assert_rc(baton_mpsc_linked_pop_n(q, nodes, 16, NULL), 0);
    assert_ptr_equal(nodes[0], &items[0].node);
    expect_empty(q);
    baton_mpsc_linked_destroy(q);
}

static void expect_eof(baton_mpsc_linked *q)
{
    for (int i = 0; i < 3; i++) {
        baton_mpsc_node *node = NULL;
        bt_assert_rc(baton_mpsc_linked_try_pop(q, &node), BATON_EEOF);
        bt_assert_rc(baton_mpsc_linked_pop(q, &node, 0), BATON_EEOF);
        bt_assert_rc(baton_mpsc_linked_pop(q, &node, 1000000), BATON_EEOF);
        bt_assert_rc(baton_mpsc_linked_pop(q, &node, BATON_WAIT_FOREVER), BATON_EEOF);
        baton_mpsc_node *nodes[2];
        size_t popped = 99;
        bt_assert_rc(baton_mpsc_linked_pop_n(q, nodes, 2, &popped), BATON_EEOF);
        assert_int_equal(popped, 0);
    }
}

static void test_close(void **state)
{
    (void)state;
    /* Empty: EOF at once. */
    baton_mpsc_linked *q = linked_new();
    item extra = {0};
    baton_mpsc_linked_close(q);
    baton_mpsc_linked_close(q);
    expect_eof(q);
    bt_assert_rc(baton_mpsc_linked_push(q, &extra.node), BATON_ECLOSED);
    expect_eof(q);
    baton_mpsc_linked_destroy(q);

    /* With nodes: they drain, then EOF; pushes after the close are refused. */
    q = linked_new();
    item items[5];
    memset(items, 0, sizeof items);
    for (size_t i = 0; i < 5; i++)
        bt_assert_rc(baton_mpsc_linked_push(q, &items[i].node), 0);
    baton_mpsc_linked_close(q);
    bt_assert_rc(baton_mpsc_linked_push(q, &extra.node), BATON_ECLOSED);
    expect_pop(q, &items[0]);
    baton_mpsc_node *node = NULL;
    bt_assert_rc(baton_mpsc_linked_pop(q, &node, BATON_WAIT_FOREVER), 0);
    assert_ptr_equal(node, &items[1].node);
    baton_mpsc_linked_close(q); /* idempotent, halfway through the drain */
    bt_assert_rc(baton_mpsc_linked_pop(q, &node, 0), 0);
    assert_ptr_equal(node, &items[2].node);
    baton_mpsc_node *nodes[8];
    size_t popped = 0;
    bt_assert_rc(baton_mpsc_linked_pop_n(q, nodes, 8, &popped), 0);
    assert_int_equal(popped, 2);
    assert_ptr_equal(nodes[0], &items[3].node);
    assert_ptr_equal(nodes[1], &items[4].node);
    expect_eof(q);
    bt_assert_rc(baton_mpsc_linked_push(q, &extra.node), BATON_ECLOSED);
    baton_mpsc_linked_close(q);
    expect_eof(q);
    baton_mpsc_linked_destroy(q);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    bt_assert_rc(baton_mpsc_linked_create(NULL), BATON_EINVAL);
    baton_mpsc_linked_destroy(NULL);
    baton_mpsc_linked *q = linked_new();
    bt_assert_rc(baton_mpsc_linked_push(q, NULL), BATON_EINVAL);
    expect_empty(q);
    item a = {0};
    bt_assert_rc(baton_mpsc_linked_push(q, &a.node), 0);
    bt_assert_rc(baton_mpsc_linked_push(q, NULL), BATON_EINVAL);
    expect_pop(q, &a);
    expect_empty(q);
    baton_mpsc_linked_close(q);
    /* After close, a NULL node is still an invalid argument or a closed queue, nothing else. */
    int rc = baton_mpsc_linked_push(q, NULL);
    if (rc != BATON_EINVAL && rc != BATON_ECLOSED)
        fail_msg("push(NULL) after close = %s", baton_err_name(rc));
    baton_mpsc_linked_destroy(q);

    /* Destroy with nodes still queued: they are left alone (they live on this stack). */
    q = linked_new();
    item kept[3];
    memset(kept, 0, sizeof kept);
    for (int i = 0; i < 3; i++) {
        kept[i].seq = 100u + (unsigned)i;
        kept[i].payload = 0xabcd;
        bt_assert_rc(baton_mpsc_linked_push(q, &kept[i].node), 0);
    }
    baton_mpsc_linked_destroy(q);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(kept[i].seq, 100u + (unsigned)i);
        assert_int_equal(kept[i].payload, 0xabcd);
    }
}

/* NULL out pointers on the pops are BATON_EINVAL and take nothing. */
static void test_null_out_pointers(void **state)
{
    (void)state;
    baton_mpsc_linked *q = linked_new();
    item a = {0};
    bt_assert_rc(baton_mpsc_linked_push(q, &a.node), 0);
    bt_assert_rc(baton_mpsc_linked_try_pop(q, NULL), BATON_EINVAL);
    bt_assert_rc(baton_mpsc_linked_pop(q, NULL, 0), BATON_EINVAL);
    bt_assert_rc(baton_mpsc_linked_pop(q, NULL, BATON_WAIT_FOREVER), BATON_EINVAL);
    size_t popped = 99;
    bt_assert_rc(baton_mpsc_linked_pop_n(q, NULL, 2, &popped), BATON_EINVAL);
    expect_pop(q, &a);
    expect_empty(q);
    baton_mpsc_linked_destroy(q);
}

/* ---- waiting ---------------------------------------------------------------------------------- */

typedef struct popper {
    baton_mpsc_linked *q;
    uint64_t timeout_ns;
    baton_mpsc_node *node;
    int rc;
    atomic_int started, done;
    pthread_t thread;
} popper;

static void *popper_main(void *arg)
{
    popper *p = arg;
    atomic_store(&p->started, 1);
    p->rc = baton_mpsc_linked_pop(p->q, &p->node, p->timeout_ns);
    atomic_store(&p->done, 1);
    return NULL;
}

static void popper_start(popper *p, baton_mpsc_linked *q, uint64_t timeout_ns, const char *what)
{
    p->q = q;
    p->timeout_ns = timeout_ns;
    p->node = NULL;
    p->rc = 12345;
    atomic_init(&p->started, 0);
    atomic_init(&p->done, 0);
    assert_int_equal(pthread_create(&p->thread, NULL, popper_main, p), 0);
    assert_true(bt_wait_flag(&p->started, 20000));
    bt_sleep_ms(SETTLE_MS); /* likely blocked by now; the checks hold either way */
    if (atomic_load(&p->done))
        fail_msg("%s: pop returned %s before anything woke it", what, baton_err_name(p->rc));
}

static void test_pop_woken_by_push(void **state)
{
    (void)state;
    static const uint64_t timeouts[] = {BATON_WAIT_FOREVER, UINT64_C(120) * 1000000000u};
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "linked: a blocked pop woken by a push");
    baton_mpsc_linked *q = linked_new();
    item items[6];
    memset(items, 0, sizeof items);
    for (int i = 0; i < 6; i++) {
        popper p;
        popper_start(&p, q, timeouts[i % 2], "linked pop woken by push");
        bt_assert_rc(baton_mpsc_linked_push(q, &items[i].node), 0);
        pthread_join(p.thread, NULL);
        bt_assert_rc(p.rc, 0);
        assert_ptr_equal(p.node, &items[i].node);
        expect_empty(q);
    }
    baton_mpsc_linked_destroy(q);
    bt_watchdog_stop(&dog);
}

static void test_pop_woken_by_close(void **state)
{
    (void)state;
    static const uint64_t timeouts[] = {BATON_WAIT_FOREVER, UINT64_C(120) * 1000000000u};
    for (int i = 0; i < 2; i++) {
        bt_watchdog dog;
        bt_watchdog_start(&dog, WATCHDOG_S, "linked: a blocked pop woken by close");
        baton_mpsc_linked *q = linked_new();
        popper p;
        popper_start(&p, q, timeouts[i], "linked pop woken by close");
        baton_mpsc_linked_close(q);
        pthread_join(p.thread, NULL);
        bt_assert_rc(p.rc, BATON_EEOF);
        expect_eof(q);
        baton_mpsc_linked_destroy(q);
        bt_watchdog_stop(&dog);
    }
}

static void test_pop_timeout_on_empty(void **state)
{
    (void)state;
    static const uint64_t timeouts[] = {0, 1, 1000, 100000, 2000000, 20000000};
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "linked: pop with a timeout on an empty queue");
    baton_mpsc_linked *q = linked_new();
    for (size_t t = 0; t < sizeof timeouts / sizeof timeouts[0]; t++) {
        baton_mpsc_node *node = NULL;
        uint64_t start = bt_now_ns();
        bt_assert_rc(baton_mpsc_linked_pop(q, &node, timeouts[t]), BATON_ETIMEDOUT);
        printf("# linked pop(timeout %llu ns) on empty: ETIMEDOUT after %llu ns\n",
               (unsigned long long)timeouts[t], (unsigned long long)(bt_now_ns() - start));
    }
    item a = {0};
    bt_assert_rc(baton_mpsc_linked_push(q, &a.node), 0);
    baton_mpsc_node *node = NULL;
    bt_assert_rc(baton_mpsc_linked_pop(q, &node, 1000), 0);
    assert_ptr_equal(node, &a.node);
    baton_mpsc_linked_destroy(q);
    bt_watchdog_stop(&dog);
}

/* ---- many producers --------------------------------------------------------------------------- */

typedef enum consume_mode { CONSUME_TRY, CONSUME_BLOCKING, CONSUME_MIXED } consume_mode;

static const char *const g_consume_names[] = {"try_pop + yield", "blocking pop",
                                              "pop_n and timed pops"};

typedef struct linked_run {
    baton_mpsc_linked *q;
    item *items; /* [producer * per_producer + seq] */
    uint64_t per_producer;
    unsigned n_producers;
    uint64_t pause_ns; /* producers sleep this long every 1024 pushes; 0: they yield */
} linked_run;

typedef struct linked_producer {
    linked_run *run;
    unsigned id;
    pthread_t thread;
} linked_producer;

static uint32_t payload_of(unsigned producer, uint64_t seq)
{
    return (uint32_t)baton_mix64(((uint64_t)producer << 40) ^ seq) | 1u;
}

static void *linked_producer_main(void *arg)
{
    linked_producer *self = arg;
    linked_run *run = self->run;
    for (uint64_t seq = 0; seq < run->per_producer; seq++) {
        item *it = &run->items[self->id * run->per_producer + seq];
        it->producer = self->id;
        it->seq = seq;
        it->payload = payload_of(self->id, seq);
        int rc = baton_mpsc_linked_push(run->q, &it->node);
        if (rc != 0) {
            BT_CHECK_MSG(rc == 0, "producer %u push %llu: %s", self->id,
                         (unsigned long long)seq, baton_err_name(rc));
            break;
        }
        /* Now and then let the consumer catch up: it finds the queue empty and (with the
         * blocking pop) goes to sleep, to be woken by a later push. */
        if (seq % 1024 == 1023) {
            if (run->pause_ns > 0)
                bt_sleep_ns(run->pause_ns);
            else
                sched_yield();
        }
    }
    return NULL;
}

static void run_linked(unsigned n_producers, consume_mode mode, uint64_t total)
{
    linked_run run;
    run.q = linked_new();
    run.n_producers = n_producers;
    run.pause_ns = mode == CONSUME_TRY ? 0 : 200000;
    run.per_producer = total / n_producers > 0 ? total / n_producers : 1;
    size_t n_items = (size_t)(run.per_producer * n_producers);
    run.items = calloc(n_items, sizeof *run.items);
    assert_non_null(run.items);

    char what[128];
    snprintf(what, sizeof what, "linked: %u producer(s), %zu nodes, consumer uses %s",
             n_producers, n_items, g_consume_names[mode]);
    bt_watchdog dog;
    bt_watchdog_start(&dog, 100, what);
    uint64_t start = bt_now_ns();

    linked_producer producers[MAX_PRODUCERS];
    for (unsigned i = 0; i < n_producers; i++) {
        producers[i] = (linked_producer){&run, i, 0};
        assert_int_equal(
            pthread_create(&producers[i].thread, NULL, linked_producer_main, &producers[i]), 0);
    }

    /* The consumer, on this thread; checks with BT_CHECK so that the producers are joined. */
    uint64_t next[MAX_PRODUCERS] = {0};
    size_t received = 0, joined = 0;
    bt_rng rng = bt_rng_seed(0x11 + n_producers);
    for (;;) {
        /* Once everything arrived, join the producers (they have made their last push) and
         * close: the next pop, even a blocking one, sees the end. */
        if (joined == 0 && received == n_items) {
            for (unsigned i = 0; i < n_producers; i++)
                pthread_join(producers[i].thread, NULL);
            joined = 1;
            baton_mpsc_linked_close(run.q);
        }
        baton_mpsc_node *nodes[32];
        size_t got = 0;
        int rc;
        unsigned pick = mode == CONSUME_MIXED ? (unsigned)bt_rng_below(&rng, 3) : 0;
        if (mode == CONSUME_TRY || (mode == CONSUME_MIXED && pick == 0)) {
            rc = baton_mpsc_linked_try_pop(run.q, &nodes[0]);
            got = rc == 0;
        } else if (mode == CONSUME_BLOCKING) {
            rc = baton_mpsc_linked_pop(run.q, &nodes[0], BATON_WAIT_FOREVER);
            got = rc == 0;
        } else if (pick == 1) {
            size_t max = 1 + (size_t)bt_rng_below(&rng, 32);
            got = 12345;
            rc = baton_mpsc_linked_pop_n(run.q, nodes, max, &got);
            if ((rc == 0 && (got == 0 || got > max)) || (rc != 0 && got != 0)) {
                BT_CHECK_MSG(false, "pop_n(%zu) = %s, popped %zu", max, baton_err_name(rc),
                             got);
                got = 0;
            }
        } else {
            rc = baton_mpsc_linked_pop(run.q, &nodes[0], bt_rng_below(&rng, 50000));
            got = rc == 0;
            if (rc == BATON_ETIMEDOUT)
                rc = BATON_EAGAIN;
        }
        if (rc == BATON_EEOF)
            break;
        if (rc == BATON_EAGAIN) {
            sched_yield();
            continue;
        }
        if (rc != 0) {
            BT_CHECK_MSG(false, "pop = %s", baton_err_name(rc));
            break;
        }
        for (size_t i = 0; i < got; i++) {
            item *it = item_of_node(nodes[i]);
            if (it < run.items || it >= run.items + n_items) {
                BT_CHECK_MSG(false, "popped a foreign node %p", (void *)nodes[i]);
                continue;
            }
            unsigned p = it->producer;
            uint64_t seq = it->seq;
            BT_CHECK_MSG(p < n_producers && it == &run.items[p * run.per_producer + seq],
                         "node %p says producer %u seq %llu", (void *)nodes[i], p,
                         (unsigned long long)seq);
            if (p >= n_producers)
                continue;
            BT_CHECK_MSG(seq == next[p], "producer %u: got seq %llu, expected %llu", p,
                         (unsigned long long)seq, (unsigned long long)next[p]);
            BT_CHECK_MSG(it->payload == payload_of(p, seq),
                         "producer %u seq %llu: payload %#x (the producer's stores before the "
                         "push are not visible)",
                         p, (unsigned long long)seq, it->payload);
            next[p] = seq + 1;
        }
        received += got;
    }
    if (joined == 0) {
        /* The loop broke early on an error: let the producers finish. */
        for (unsigned i = 0; i < n_producers; i++)
            pthread_join(producers[i].thread, NULL);
    }
    double seconds = (double)(bt_now_ns() - start) / 1e9;
    bt_watchdog_stop(&dog);
    printf("# %s: %.3f s\n", what, seconds);
    bt_assert_no_thread_failures();
    if (received != n_items)
        fail_msg("%s: %zu nodes arrived", what, received);
    for (unsigned p = 0; p < n_producers; p++)
        if (next[p] != run.per_producer)
            fail_msg("%s: producer %u's nodes arrived up to %llu of %llu", what, p,
                     (unsigned long long)next[p], (unsigned long long)run.per_producer);
    baton_mpsc_linked_destroy(run.q);
    free(run.items);
}

static uint64_t linked_items(void)
{
    return bt_scaled(500000, 20000);
}

static void test_stress_try(void **state)
{
    (void)state;
    run_linked(g_producers, CONSUME_TRY, linked_items());
}

static void test_stress_blocking(void **state)
{
    (void)state;
    run_linked(g_producers, CONSUME_BLOCKING, linked_items());
}

static void test_stress_mixed(void **state)
{
    (void)state;
    run_linked(g_producers, CONSUME_MIXED, linked_items());
}

int main(int argc, char **argv)
{
    g_producers = bt_init(argc, argv, 2);
    if (g_producers > MAX_PRODUCERS)
        g_producers = MAX_PRODUCERS;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_node_pushed_again),
        cmocka_unit_test(test_pop_n),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_pop_woken_by_push),
        cmocka_unit_test(test_pop_woken_by_close),
        cmocka_unit_test(test_pop_timeout_on_empty),
        cmocka_unit_test(test_stress_try),
        cmocka_unit_test(test_stress_blocking),
        cmocka_unit_test(test_stress_mixed),
        /* Last: an implementation that does not check these crashes here, and a crash must
         * not hide the results of the other cases. */
        cmocka_unit_test(test_null_out_pointers),
    };
    return cmocka_run_group_tests_name("queue/mpsc_linked", tests, NULL, NULL);
}
