/*
 * test_drain.c — baton_workqueue_drain_parallel at one pool size (--workers N; CTest runs it at
 * 1, 2, 4, 8 and 16, oversubscribed on 2 cores on purpose):
 *  - order: 10^6 items (times BATON_TEST_SCALE) sent by a producer thread while the drain runs,
 *    a few hundred ns of work each and about one in a thousand spinning 50-200 us: deliver sees
 *    seq 0, 1, 2... never concurrently, each with its own item and result; the report says
 *    accepted == delivered == processed == N, undelivered 0, failed_seq UINT64_MAX. The default
 *    window (256 per worker, at least 1024) and window 1 (one item at a time) too;
 *  - the window bounds memory: every process call checks that its item is less than `window`
 *    past the number delivered so far, and with one item blocked until the test releases it,
 *    the drain never starts an item `window` or more past it (window 8, and 5 rounded to 8;
 *    ordered and unordered);
 *  - an error stops the drain deterministically: process (or deliver) failing on item k with
 *    BATON_EIO, a custom negative code or a positive one returns that code; items < k are
 *    delivered once, in order; k goes to undelivered with that status; every later accepted item
 *    goes to undelivered, in seq order, with status 0 (and its result) or BATON_ECANCELED (and
 *    NULL); the report adds up; failed_seq == k; what the drain never took is still in the queue
 *    (received afterwards, or by a second drain that numbers from 0 again): every item sent is
 *    seen exactly once. k at the first, a middle and the last item;
 *  - two failing items: the lower seq wins even when the higher one fails first;
 *  - producers pausing and closing while the drain waits (one sender, and several clones):
 *    everything is delivered, in each producer's order, and the drain returns 0;
 *  - an empty stream: 0, a report of zeros, no callback; report NULL is accepted;
 *  - BATON_DRAIN_UNORDERED: every item delivered exactly once (concurrent deliver calls), the
 *    report adds up; with an error, the same accounting without the order;
 *  - a drain inside a task of the pool itself (scope tasks and parallel_for iterations, one of
 *    them hogging a thread) on pools of 1 and 2 workers completes;
 *  - process calling baton_parallel_for on the same pool; deliver NULL (process only);
 *  - bad arguments are BATON_EINVAL and take nothing from the queue; a second drain on a
 *    receiver being drained is BATON_EBUSY; ops->struct_size smaller than the struct works;
 *  - once the drain has returned, no worker touches its state any more: many short drains in a
 *    row, each followed by a stack buffer the test fills and checks. A normal build sees a
 *    stray write only by luck of scheduling; the TSan build reports any late access to the
 *    returned drain's frame as a race on the caller's stack.
 *
 *    (It caught, under TSan, a range job that notified the drain's waitpoint after its last
 *    decrement of the job count, when the dispatcher could already have returned: fixed in
 *    b1cfe89.)
 *
 * Callbacks run on pool workers and inside baton: they check with BT_CHECK only.
 */
#include "test_util.h"

#include "baton/queue.h"

BT_DEFINE_POOL_GROUP()

enum { WATCHDOG_S = 120, MAX_UNDELIVERED = 1 << 16 };

static void *val(uint64_t v)
{
    return (void *)(uintptr_t)v;
}

static uint64_t num(void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

#define RESULT_KEY UINT64_C(0x5a5a000000000001)

/* The result process gives for item value v. */
static void *result_of(uint64_t v)
{
    return val(v ^ RESULT_KEY);
}

/* A few hundred ns of work. */
static void small_work(uint64_t v)
{
    uint64_t h = v;
    for (unsigned i = 0; i < 24; i++)
        h = mix(h + i);
    volatile uint64_t sink = h;
    (void)sink;
}

/* About one item in a thousand is slow: 50-200 us. */
static uint64_t slow_ns(uint64_t v)
{
    uint64_t h = mix(v ^ UINT64_C(0x123456789));
    return h % 1000 == 0 ? 50000 + (h >> 20) % 150000 : 0;
}

/* ---- the test's drain context ------------------------------------------------------------------ */

typedef struct undelivered_rec {
    uint64_t seq;
    void *item;
    void *result;
    int status;
} undelivered_rec;

typedef struct dctx {
    baton_pool *pool;
    uint64_t n;      /* items 0 .. n-1 are sent */
    uint64_t base;   /* value of the item this drain numbers 0 */
    bool ordered;
    bool slow;
    uint64_t window; /* the effective window, for the bound check; 0: no check */
    atomic_uint_fast64_t delivered; /* deliver calls that returned 0 */
    atomic_uint_fast64_t next;      /* ordered: the seq deliver expects */
    atomic_int in_deliver;
    atomic_uint_fast64_t started;   /* process calls */
    atomic_uint_fast64_t processed; /* process calls that returned 0 */
    atomic_uint_fast64_t max_started_plus1;
    atomic_uchar *processed_hits; /* by item value */
    atomic_uchar *delivered_hits; /* by item value */
    /* Failures. */
    uint64_t fail_process_seq[2];
    int fail_process_rc[2];
    uint64_t fail_process_delay_ns[2];
    uint64_t fail_deliver_seq;
    int fail_deliver_rc;
    /* A blocking item. */
    uint64_t block_seq;
    atomic_int blocked, release;
    /* Undelivered, in call order. */
    undelivered_rec *u;
    size_t u_n;
    /* Nested parallel_for in process. */
    bool nested_for;
} dctx;

static void dctx_init(dctx *c, baton_pool *pool, uint64_t n, bool ordered)
{
    memset(c, 0, sizeof *c);
    c->pool = pool;
    c->n = n;
    c->ordered = ordered;
    atomic_init(&c->delivered, 0);
    atomic_init(&c->next, 0);
    atomic_init(&c->in_deliver, 0);
    atomic_init(&c->started, 0);
    atomic_init(&c->processed, 0);
    atomic_init(&c->max_started_plus1, 0);
    atomic_init(&c->blocked, 0);
    atomic_init(&c->release, 0);
    c->processed_hits = calloc((size_t)n + 1, sizeof *c->processed_hits);
    c->delivered_hits = calloc((size_t)n + 1, sizeof *c->delivered_hits);
    assert_non_null(c->processed_hits);
    assert_non_null(c->delivered_hits);
    c->u = calloc(MAX_UNDELIVERED, sizeof *c->u);
    assert_non_null(c->u);
    c->fail_process_seq[0] = c->fail_process_seq[1] = UINT64_MAX;
    c->fail_deliver_seq = UINT64_MAX;
    c->block_seq = UINT64_MAX;
}

/* Starts the next drain on the same context: seq 0 is item `base`. */
static void dctx_next_drain(dctx *c, uint64_t base)
{
    c->base = base;
    atomic_store(&c->next, 0);
    atomic_store(&c->delivered, 0);
    atomic_store(&c->max_started_plus1, 0);
    c->fail_process_seq[0] = c->fail_process_seq[1] = UINT64_MAX;
    c->fail_deliver_seq = UINT64_MAX;
    c->block_seq = UINT64_MAX;
    c->u_n = 0;
}

static void dctx_free(dctx *c)
{
    free(c->processed_hits);
    free(c->delivered_hits);
    free(c->u);
}

static int nested_fn(size_t begin, size_t end, void *ctx)
{
    atomic_uint_fast64_t *sum = ctx;
    uint64_t s = 0;
    for (size_t i = begin; i < end; i++)
        s += i;
    atomic_fetch_add_explicit(sum, s, memory_order_relaxed);
    return 0;
}

static int d_process(void *ctx, void *item, void **result)
{
    dctx *c = ctx;
    uint64_t v = num(item);
    BT_CHECK_MSG(v >= c->base && v < c->n, "process got item %llu (base %llu, n %llu)",
                 (unsigned long long)v, (unsigned long long)c->base, (unsigned long long)c->n);
    if (v >= c->n)
        return 0;
    uint64_t seq = v - c->base;
    BT_CHECK_MSG(atomic_fetch_add(&c->processed_hits[v], 1) == 0, "item %llu processed twice",
                 (unsigned long long)v);
    BT_CHECK_MSG(*result == NULL, "item %llu: *result is %p on entry to process",
                 (unsigned long long)v, *result);
    if (c->window != 0) {
        uint64_t delivered = atomic_load(&c->delivered);
        BT_CHECK_MSG(seq < delivered + c->window,
                     "item %llu started with only %llu delivered: beyond the window of %llu",
                     (unsigned long long)seq, (unsigned long long)delivered,
                     (unsigned long long)c->window);
    }
    atomic_fetch_add(&c->started, 1);
    uint64_t cur = atomic_load(&c->max_started_plus1);
    while (seq + 1 > cur && !atomic_compare_exchange_weak(&c->max_started_plus1, &cur, seq + 1)) {
    }
    if (seq == c->block_seq) {
        atomic_store(&c->blocked, 1);
        BT_CHECK_MSG(bt_wait_flag(&c->release, 60000), "blocked item never released");
    }
    for (int i = 0; i < 2; i++) {
        if (seq == c->fail_process_seq[i]) {
            if (c->fail_process_delay_ns[i] != 0)
                bt_sleep_ns(c->fail_process_delay_ns[i]);
            *result = val(0xfa11);
            return c->fail_process_rc[i];
        }
    }
    small_work(v);
    if (c->slow) {
        uint64_t ns = slow_ns(v);
        if (ns != 0)
            bt_busy_ns(ns);
    }
    if (c->nested_for) {
        atomic_uint_fast64_t sum;
        atomic_init(&sum, 0);
        int rc = baton_parallel_for(c->pool, 0, 64, 4, nested_fn, &sum);
        BT_CHECK_MSG(rc == 0, "nested parallel_for: %s", baton_err_name(rc));
        BT_CHECK(atomic_load(&sum) == 64 * 63 / 2);
    }
    *result = result_of(v);
    atomic_fetch_add(&c->processed, 1);
    return 0;
}

static int d_deliver(void *ctx, uint64_t seq, void *item, void *result)
{
    dctx *c = ctx;
    if (c->ordered)
        BT_CHECK_MSG(atomic_exchange(&c->in_deliver, 1) == 0,
                     "ordered deliver called concurrently (seq %llu)", (unsigned long long)seq);
    uint64_t v = num(item);
    BT_CHECK_MSG(v == c->base + seq, "deliver: seq %llu carries item %llu, expected %llu",
                 (unsigned long long)seq, (unsigned long long)v,
                 (unsigned long long)(c->base + seq));
    BT_CHECK_MSG(result == result_of(v), "deliver: item %llu has result %#llx",
                 (unsigned long long)v, (unsigned long long)num(result));
    if (c->ordered) {
        uint64_t next = atomic_load(&c->next);
        BT_CHECK_MSG(seq == next, "deliver: seq %llu, expected %llu", (unsigned long long)seq,
                     (unsigned long long)next);
        atomic_store(&c->next, seq + 1);
    }
    int rc = 0;
    if (seq == c->fail_deliver_seq) {
        rc = c->fail_deliver_rc;
    } else {
        if (v < c->n)
            BT_CHECK_MSG(atomic_fetch_add(&c->delivered_hits[v], 1) == 0,
                         "item %llu delivered twice", (unsigned long long)v);
        atomic_fetch_add(&c->delivered, 1);
    }
    if (c->ordered)
        atomic_store(&c->in_deliver, 0);
    return rc;
}

static void d_undelivered(void *ctx, uint64_t seq, void *item, void *result, int status)
{
    dctx *c = ctx;
    if (c->u_n >= MAX_UNDELIVERED) {
        BT_CHECK_MSG(false, "more than %d undelivered items", MAX_UNDELIVERED);
        return;
    }
    c->u[c->u_n++] = (undelivered_rec){seq, item, result, status};
}

static baton_drain_ops d_ops(unsigned flags, size_t window)
{
    baton_drain_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.struct_size = sizeof ops;
    ops.process = d_process;
    ops.deliver = d_deliver;
    ops.undelivered = d_undelivered;
    ops.window = window;
    ops.flags = flags;
    return ops;
}

static uint64_t pow2_at_least(uint64_t x)
{
    uint64_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

/* The window a drain uses when ops.window is 0, as queue.h documents it. */
static size_t default_window(void)
{
    size_t want = 256u * g_workers;
    return pow2_at_least(want < 1024 ? 1024 : want);
}

/* ---- producers ---------------------------------------------------------------------------------- */

typedef struct producer {
    baton_workqueue_sender *tx;
    uint64_t first, n;     /* values first .. first+n-1 */
    uint64_t pause_every;  /* 0: never */
    unsigned pause_ms;
    unsigned close_pause_ms; /* pause before the close */
    int rc;
    pthread_t thread;
} producer;

static void *producer_main(void *arg)
{
    producer *p = arg;
    void *batch[32];
    p->rc = 0;
    for (uint64_t i = 0; i < p->n && p->rc == 0;) {
        if (p->pause_every != 0 && i != 0 && i % p->pause_every == 0)
            bt_sleep_ms(p->pause_ms);
        uint64_t v = p->first + i;
        if (i % 64 < 32) {
            p->rc = baton_workqueue_send(p->tx, val(v), BATON_WAIT_FOREVER);
            i++;
        } else {
            size_t k = 32 - (size_t)(i % 32);
            if (k > p->n - i)
                k = (size_t)(p->n - i);
            if (p->pause_every != 0 && k > p->pause_every - i % p->pause_every)
                k = (size_t)(p->pause_every - i % p->pause_every);
            for (size_t j = 0; j < k; j++)
                batch[j] = val(v + j);
            size_t sent = 0;
            p->rc = baton_workqueue_send_n(p->tx, batch, k, BATON_WAIT_FOREVER, &sent);
            BT_CHECK(p->rc != 0 || sent == k);
            i += k;
        }
    }
    BT_CHECK_MSG(p->rc == 0, "producer: %s", baton_err_name(p->rc));
    if (p->close_pause_ms != 0)
        bt_sleep_ms(p->close_pause_ms);
    baton_workqueue_sender_close(p->tx);
    return NULL;
}

static void producer_start(producer *p, baton_workqueue_sender *tx, uint64_t first, uint64_t n)
{
    p->tx = tx;
    p->first = first;
    p->n = n;
    assert_int_equal(pthread_create(&p->thread, NULL, producer_main, p), 0);
}

static baton_workqueue_receiver *wq_preloaded(uint64_t n, unsigned flags)
{
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create((size_t)n + 1, flags, &tx, &rx), 0);
    for (uint64_t i = 0; i < n; i++)
        bt_assert_rc(baton_workqueue_try_send(tx, val(i)), 0);
    baton_workqueue_sender_close(tx);
    return rx;
}

static void assert_report(const baton_drain_report *r, uint64_t accepted, uint64_t delivered,
                          uint64_t processed, uint64_t failed_seq, const char *what)
{
    if (r->accepted != accepted || r->delivered != delivered ||
        r->undelivered != accepted - delivered || r->processed != processed ||
        r->failed_seq != failed_seq)
        fail_msg("%s: report accepted %llu delivered %llu undelivered %llu processed %llu "
                 "failed_seq %llu; expected %llu %llu %llu %llu %llu",
                 what, (unsigned long long)r->accepted, (unsigned long long)r->delivered,
                 (unsigned long long)r->undelivered, (unsigned long long)r->processed,
                 (unsigned long long)r->failed_seq, (unsigned long long)accepted,
                 (unsigned long long)delivered, (unsigned long long)(accepted - delivered),
                 (unsigned long long)processed, (unsigned long long)failed_seq);
}

/* ---- order ---------------------------------------------------------------------------------- */

static void ordered_stream(uint64_t n, size_t window, bool slow, const char *what)
{
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, what);
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(1024, 0, &tx, &rx), 0);
    dctx c;
    dctx_init(&c, g_pool, n, true);
    c.slow = slow;
    c.window = window != 0 ? pow2_at_least(window) : default_window();
    producer p = {0};
    producer_start(&p, tx, 0, n);
    baton_drain_ops ops = d_ops(0, window);
    baton_drain_report rep;
    memset(&rep, 0xee, sizeof rep);
    uint64_t t0 = bt_now_ns();
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep);
    uint64_t took = bt_now_ns() - t0;
    pthread_join(p.thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_assert_rc(rc, 0);
    assert_report(&rep, n, n, n, UINT64_MAX, what);
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
    dctx_free(&c);
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

/* ---- the window -------------------------------------------------------------------------------- */

typedef struct drain_thread {
    baton_workqueue_receiver *rx;
    baton_pool *pool;
    baton_drain_ops ops;
    void *ctx;
    baton_drain_report rep;
    int rc;
    atomic_int done;
    pthread_t thread;
} drain_thread;

static void *drain_thread_main(void *arg)
{
    drain_thread *t = arg;
    t->rc = baton_workqueue_drain_parallel(t->rx, t->pool, &t->ops, t->ctx, &t->rep);
    atomic_store(&t->done, 1);
    return NULL;
}

static void drain_thread_start(drain_thread *t, baton_workqueue_receiver *rx, baton_pool *pool,
                               baton_drain_ops ops, void *ctx)
{
    t->rx = rx;
    t->pool = pool;
    t->ops = ops;
    t->ctx = ctx;
    t->rc = 12345;
    atomic_init(&t->done, 0);
    assert_int_equal(pthread_create(&t->thread, NULL, drain_thread_main, t), 0);
}

static void window_with_blocked_item(unsigned flags, size_t window, uint64_t k)
{
    const uint64_t w = pow2_at_least(window);
    const uint64_t n = 300;
    char what[96];
    snprintf(what, sizeof what, "%s drain, window %zu, item %llu blocked",
             flags ? "unordered" : "ordered", window, (unsigned long long)k);
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, what);
    baton_workqueue_receiver *rx = wq_preloaded(n, 0);
    dctx c;
    dctx_init(&c, g_pool, n, flags == 0);
    c.window = w;
    c.block_seq = k;
    drain_thread t;
    drain_thread_start(&t, rx, g_pool, d_ops(flags, window), &c);
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
    assert_report(&t.rep, n, n, n, UINT64_MAX, what);
    baton_workqueue_receiver_destroy(rx);
    dctx_free(&c);
}

static void test_window_bounds_items_past_a_blocked_one(void **state)
{
    (void)state;
    window_with_blocked_item(0, 8, 20);
    window_with_blocked_item(0, 5, 0);
    window_with_blocked_item(BATON_DRAIN_UNORDERED, 8, 20);
    window_with_blocked_item(BATON_DRAIN_UNORDERED, 5, 3);
}


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
    bt_watchdog_start(&dog, WATCHDOG_S, fc->what);
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(64, 0, &tx, &rx), 0);
    dctx c;
    dctx_init(&c, g_pool, n, ordered);
    for (int i = 0; i < 2; i++) {
        c.fail_process_seq[i] = fc->process_seq[i];
        c.fail_process_rc[i] = fc->process_rc[i];
        c.fail_process_delay_ns[i] = fc->process_delay_ns[i];
    }
    c.fail_deliver_seq = fc->deliver_seq;
    c.fail_deliver_rc = fc->deliver_rc;
    producer p = {0};
    producer_start(&p, tx, 0, n);
    baton_drain_ops ops = d_ops(fc->flags, 0);
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
        const undelivered_rec *u = &c.u[i];
        uint64_t v = num(u->item);
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
            void *want = fc->deliver_seq == k ? result_of(v) : val(0xfa11);
            if (u->result != want)
                fail_msg("%s: the failed item's result is %#llx, expected %#llx", fc->what,
                         (unsigned long long)num(u->result), (unsigned long long)num(want));
            if (fc->deliver_seq == k)
                processed_undelivered++;
            continue;
        }
        bool other_failure = u->seq == fc->process_seq[0] || u->seq == fc->process_seq[1] ||
                             u->seq == fc->deliver_seq;
        if (u->status == 0) {
            processed_undelivered++;
            if (!ran || u->result != result_of(v))
                fail_msg("%s: undelivered item %llu with status 0: processed %d, result %#llx",
                         fc->what, (unsigned long long)v, ran, (unsigned long long)num(u->result));
            if (other_failure && u->seq != fc->deliver_seq)
                fail_msg("%s: item %llu failed in process but has status 0", fc->what,
                         (unsigned long long)v);
        } else if (u->status == BATON_ECANCELED) {
            if (ran || u->result != NULL)
                fail_msg("%s: undelivered item %llu with BATON_ECANCELED: processed %d, "
                         "result %#llx",
                         fc->what, (unsigned long long)v, ran, (unsigned long long)num(u->result));
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
            uint64_t v = num(item);
            if (v != expect)
                fail_msg("%s: after the drain the queue gave item %llu, expected %llu",
                         fc->what, (unsigned long long)v, (unsigned long long)expect);
            seen[v]++;
            expect++;
        }
    } else {
        for (uint64_t v = 0; v < n; v++)
            atomic_store_explicit(&c.delivered_hits[v], 0, memory_order_relaxed);
        dctx_next_drain(&c, accepted);
        c.ordered = true;
        ops = d_ops(0, 0);
        baton_drain_report rep2;
        bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep2), 0);
        bt_assert_no_thread_failures();
        assert_report(&rep2, n - accepted, n - accepted, n - accepted, UINT64_MAX, fc->what);
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
    dctx_free(&c);
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

/* ---- the stream's end --------------------------------------------------------------------------- */

static void test_close_while_draining(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "close while draining");
    uint64_t n = bt_scaled(2e4, 2000);
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(128, 0, &tx, &rx), 0);
    dctx c;
    dctx_init(&c, g_pool, n, true);
    c.window = default_window();
    /* Pauses every n/4 items, and once more before the close: the drain waits on an empty
     * queue each time, and is woken by the next send, and at last by the close. */
    producer p = {.pause_every = n / 4, .pause_ms = 20, .close_pause_ms = 40};
    producer_start(&p, tx, 0, n);
    baton_drain_ops ops = d_ops(0, 0);
    baton_drain_report rep;
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep);
    pthread_join(p.thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_assert_rc(rc, 0);
    assert_report(&rep, n, n, n, UINT64_MAX, "close while draining");
    assert_int_equal(atomic_load(&c.next), n);
    baton_workqueue_receiver_destroy(rx);
    dctx_free(&c);
}

/* Several producers, each with its own clone, pausing and closing at different times. */
enum { MP_MAX = 8 };

typedef struct mp_ctx {
    unsigned np;
    atomic_uint_fast64_t next[MP_MAX]; /* per producer: the index deliver expects */
    atomic_uint_fast64_t next_seq;
    atomic_uint_fast64_t total;
} mp_ctx;

static int mp_process(void *ctx, void *item, void **result)
{
    (void)ctx;
    small_work(num(item));
    *result = result_of(num(item));
    return 0;
}

static int mp_deliver(void *ctx, uint64_t seq, void *item, void *result)
{
    mp_ctx *m = ctx;
    uint64_t v = num(item);
    unsigned p = (unsigned)(v & 0xff);
    uint64_t i = v >> 8;
    BT_CHECK_MSG(result == result_of(v), "item %#llx: wrong result", (unsigned long long)v);
    BT_CHECK_MSG(seq == atomic_load(&m->next_seq), "seq %llu out of order",
                 (unsigned long long)seq);
    atomic_store(&m->next_seq, seq + 1);
    if (p >= m->np) {
        BT_CHECK_MSG(false, "item %#llx from no producer", (unsigned long long)v);
        return 0;
    }
    uint64_t want = atomic_load(&m->next[p]);
    BT_CHECK_MSG(i == want, "producer %u: item %llu delivered, expected %llu", p,
                 (unsigned long long)i, (unsigned long long)want);
    atomic_store(&m->next[p], i + 1);
    atomic_fetch_add(&m->total, 1);
    return 0;
}

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
        int rc = baton_workqueue_send(p->tx, val((i << 8) | p->index), BATON_WAIT_FOREVER);
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
    bt_watchdog_start(&dog, WATCHDOG_S, "multi-producer close while draining");
    unsigned np = g_workers < MP_MAX ? g_workers : MP_MAX;
    if (np < 2)
        np = 2;
    uint64_t per = bt_scaled(2e4, 2000) / np;
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(64, BATON_WQ_MULTI_PRODUCER, &tx, &rx), 0);
    mp_ctx m;
    m.np = np;
    for (unsigned i = 0; i < MP_MAX; i++)
        atomic_init(&m.next[i], 0);
    atomic_init(&m.next_seq, 0);
    atomic_init(&m.total, 0);
    mp_producer prod[MP_MAX];
    for (unsigned i = 0; i < np; i++) {
        prod[i] = (mp_producer){.index = i, .n = per};
        bt_assert_rc(baton_workqueue_sender_clone(tx, &prod[i].tx), 0);
    }
    baton_workqueue_sender_close(tx);
    for (unsigned i = 0; i < np; i++)
        assert_int_equal(pthread_create(&prod[i].thread, NULL, mp_producer_main, &prod[i]), 0);
    baton_drain_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.process = mp_process;
    ops.deliver = mp_deliver;
    baton_drain_report rep;
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &m, &rep);
    for (unsigned i = 0; i < np; i++)
        pthread_join(prod[i].thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_assert_rc(rc, 0);
    assert_report(&rep, per * np, per * np, per * np, UINT64_MAX, "multi-producer drain");
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
        baton_workqueue_receiver *rx = wq_preloaded(0, 0);
        dctx c;
        dctx_init(&c, g_pool, 1, flags == 0);
        baton_drain_ops ops = d_ops(flags, 0);
        baton_drain_report rep;
        memset(&rep, 0xee, sizeof rep);
        bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep), 0);
        bt_assert_no_thread_failures();
        assert_report(&rep, 0, 0, 0, UINT64_MAX, "empty stream");
        assert_int_equal(atomic_load(&c.started), 0);
        assert_int_equal(atomic_load(&c.delivered), 0);
        assert_int_equal(c.u_n, 0);
        /* Again, on the same ended stream, with no report. */
        bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, NULL), 0);
        assert_int_equal(atomic_load(&c.started), 0);
        baton_workqueue_receiver_destroy(rx);
        dctx_free(&c);
    }
    /* A multi-producer queue whose clones are all closed before the drain. */
    baton_workqueue_sender *tx, *clone;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(4, BATON_WQ_MULTI_PRODUCER, &tx, &rx), 0);
    bt_assert_rc(baton_workqueue_sender_clone(tx, &clone), 0);
    baton_workqueue_sender_close(clone);
    baton_workqueue_sender_close(tx);
    dctx c;
    dctx_init(&c, g_pool, 1, true);
    baton_drain_ops ops = d_ops(0, 0);
    baton_drain_report rep;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep), 0);
    assert_report(&rep, 0, 0, 0, UINT64_MAX, "empty multi-producer stream");
    baton_workqueue_receiver_destroy(rx);
    dctx_free(&c);
}

/* ---- unordered ---------------------------------------------------------------------------------- */

static void test_unordered_every_item_once(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "unordered drain");
    uint64_t n = bt_scaled(2e5, 5000);
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create(256, 0, &tx, &rx), 0);
    dctx c;
    dctx_init(&c, g_pool, n, false);
    c.slow = true;
    c.window = default_window();
    producer p = {0};
    producer_start(&p, tx, 0, n);
    baton_drain_ops ops = d_ops(BATON_DRAIN_UNORDERED, 0);
    baton_drain_report rep;
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep);
    pthread_join(p.thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_assert_rc(rc, 0);
    assert_report(&rep, n, n, n, UINT64_MAX, "unordered drain");
    assert_int_equal(atomic_load(&c.delivered), n);
    assert_int_equal(c.u_n, 0);
    for (uint64_t v = 0; v < n; v++)
        if (atomic_load_explicit(&c.processed_hits[v], memory_order_relaxed) != 1 ||
            atomic_load_explicit(&c.delivered_hits[v], memory_order_relaxed) != 1)
            fail_msg("unordered: item %llu processed %u times, delivered %u times",
                     (unsigned long long)v, (unsigned)atomic_load(&c.processed_hits[v]),
                     (unsigned)atomic_load(&c.delivered_hits[v]));
    baton_workqueue_receiver_destroy(rx);
    dctx_free(&c);
}

/* ---- inside the pool ------------------------------------------------------------------------------ */

typedef struct inner_drain {
    baton_pool *pool;
    baton_workqueue_receiver *rx;
    producer prod;
    dctx c;
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
    baton_drain_ops ops = d_ops(d->flags, 0);
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
    bt_watchdog_start(&dog, WATCHDOG_S, what);
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
        dctx_init(&d->c, pool, n, d->flags == 0);
        d->prod = (producer){.pause_every = n / 3, .pause_ms = 5};
        producer_start(&d->prod, tx, 0, n);
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
        assert_report(&d->rep, n, n, n, UINT64_MAX, what);
        for (uint64_t v = 0; v < n; v++)
            if (atomic_load(&d->c.delivered_hits[v]) != 1)
                fail_msg("%s: drain %d delivered item %llu %u times", what, i,
                         (unsigned long long)v, (unsigned)atomic_load(&d->c.delivered_hits[v]));
        baton_workqueue_receiver_destroy(d->rx);
        dctx_free(&d->c);
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
    bt_watchdog_start(&dog, WATCHDOG_S, "process calls parallel_for");
    uint64_t n = bt_scaled(5000, 500);
    baton_workqueue_receiver *rx = wq_preloaded(n, 0);
    dctx c;
    dctx_init(&c, g_pool, n, true);
    c.nested_for = true;
    baton_drain_ops ops = d_ops(0, 0);
    baton_drain_report rep;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep), 0);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    assert_report(&rep, n, n, n, UINT64_MAX, "process calls parallel_for");
    assert_int_equal(atomic_load(&c.next), n);
    baton_workqueue_receiver_destroy(rx);
    dctx_free(&c);
}

static void test_deliver_null(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        uint64_t n = bt_scaled(2e4, 2000);
        baton_workqueue_sender *tx;
        baton_workqueue_receiver *rx;
        bt_assert_rc(baton_workqueue_create(64, 0, &tx, &rx), 0);
        dctx c;
        dctx_init(&c, g_pool, n, mode == 0);
        producer p = {0};
        producer_start(&p, tx, 0, n);
        baton_drain_ops ops = d_ops(mode ? BATON_DRAIN_UNORDERED : 0, 0);
        ops.deliver = NULL;
        ops.undelivered = NULL;
        baton_drain_report rep;
        int rc = baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep);
        pthread_join(p.thread, NULL);
        bt_assert_no_thread_failures();
        bt_assert_rc(rc, 0);
        assert_report(&rep, n, n, n, UINT64_MAX, "deliver NULL");
        for (uint64_t v = 0; v < n; v++)
            if (atomic_load(&c.processed_hits[v]) != 1)
                fail_msg("deliver NULL: item %llu processed %u times", (unsigned long long)v,
                         (unsigned)atomic_load(&c.processed_hits[v]));
        baton_workqueue_receiver_destroy(rx);
        dctx_free(&c);
    }
    /* And with an error: undelivered NULL, the items are only counted. */
    uint64_t n = 3000;
    baton_workqueue_receiver *rx = wq_preloaded(n, 0);
    dctx c;
    dctx_init(&c, g_pool, n, true);
    c.fail_process_seq[0] = 1000;
    c.fail_process_rc[0] = BATON_EIO;
    baton_drain_ops ops = d_ops(0, 0);
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
        assert_int_equal(num(item), rep.accepted + left);
        left++;
    }
    assert_int_equal(rep.accepted + left, n);
    baton_workqueue_receiver_destroy(rx);
    dctx_free(&c);
}

/* ---- arguments ---------------------------------------------------------------------------------- */

static int never_process(void *ctx, void *item, void **result)
{
    (void)ctx;
    (void)result;
    BT_CHECK_MSG(false, "process called for item %llu by a drain that should not run",
                 (unsigned long long)num(item));
    return 0;
}

static void test_bad_arguments(void **state)
{
    (void)state;
    const uint64_t n = 10;
    baton_workqueue_receiver *rx = wq_preloaded(n, 0);
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
        assert_int_equal(num(item), i);
    }
    void *item;
    bt_assert_rc(baton_workqueue_try_recv(rx, &item), BATON_EEOF);
    good.process = mp_process;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &good, NULL, &rep), 0);
    assert_report(&rep, 0, 0, 0, UINT64_MAX, "after bad arguments");
    baton_workqueue_receiver_destroy(rx);
}

/* An older, shorter baton_drain_ops (no window, no flags): the defaults apply. */
static void test_short_struct_size(void **state)
{
    (void)state;
    uint64_t n = 2000;
    baton_workqueue_receiver *rx = wq_preloaded(n, 0);
    dctx c;
    dctx_init(&c, g_pool, n, true);
    baton_drain_ops ops = d_ops(0, 0);
    ops.struct_size = offsetof(baton_drain_ops, window);
    ops.window = 12345678; /* beyond struct_size: ignored */
    ops.flags = 0xff00;    /* likewise */
    baton_drain_report rep;
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &ops, &c, &rep), 0);
    bt_assert_no_thread_failures();
    assert_report(&rep, n, n, n, UINT64_MAX, "short struct_size");
    assert_int_equal(atomic_load(&c.next), n);
    baton_workqueue_receiver_destroy(rx);
    dctx_free(&c);
}

static void test_second_concurrent_drain_is_ebusy(void **state)
{
    (void)state;
    bt_watchdog dog;
    bt_watchdog_start(&dog, WATCHDOG_S, "second drain is EBUSY");
    const uint64_t n = 100;
    baton_workqueue_receiver *rx = wq_preloaded(n, 0);
    dctx c;
    dctx_init(&c, g_pool, n, true);
    c.block_seq = 5;
    drain_thread t;
    drain_thread_start(&t, rx, g_pool, d_ops(0, 8), &c);
    assert_true(bt_wait_flag(&c.blocked, 60000));
    baton_drain_ops other;
    memset(&other, 0, sizeof other);
    other.process = never_process;
    baton_drain_report rep;
    memset(&rep, 0xee, sizeof rep);
    int rc = baton_workqueue_drain_parallel(rx, g_pool, &other, NULL, &rep);
    int rc_unordered;
    other.flags = BATON_DRAIN_UNORDERED;
    rc_unordered = baton_workqueue_drain_parallel(rx, g_pool, &other, NULL, NULL);
    atomic_store(&c.release, 1);
    pthread_join(t.thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    bt_assert_rc(rc, BATON_EBUSY);
    bt_assert_rc(rc_unordered, BATON_EBUSY);
    bt_assert_rc(t.rc, 0);
    assert_report(&t.rep, n, n, n, UINT64_MAX, "the first drain");
    /* Once the first is over, another drain may run (the stream has ended: nothing to do). */
    bt_assert_rc(baton_workqueue_drain_parallel(rx, g_pool, &other, NULL, &rep), 0);
    assert_report(&rep, 0, 0, 0, UINT64_MAX, "a later drain");
    baton_workqueue_receiver_destroy(rx);
    dctx_free(&c);
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
        (void)baton_workqueue_try_send(tx, val(i + 1));
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
    bt_watchdog_start(&dog, WATCHDOG_S, "short drains in a row");
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
        cmocka_unit_test(test_process_error_in_the_middle),
        cmocka_unit_test(test_process_error_first_and_last_item),
        cmocka_unit_test(test_deliver_error_in_the_middle),
        cmocka_unit_test(test_two_failures_lower_seq_wins),
        cmocka_unit_test(test_unordered_error_accounting),
        cmocka_unit_test(test_close_while_draining),
        cmocka_unit_test(test_multi_producer_close_while_draining),
        cmocka_unit_test(test_empty_stream),
        cmocka_unit_test(test_unordered_every_item_once),
        cmocka_unit_test(test_drain_inside_pool_task),
        cmocka_unit_test(test_process_calls_parallel_for),
        cmocka_unit_test(test_deliver_null),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_short_struct_size),
        cmocka_unit_test(test_second_concurrent_drain_is_ebusy),
        cmocka_unit_test(test_nothing_touched_after_return),
    };
    return cmocka_run_group_tests_name("queue/drain", tests, group_setup, group_teardown);
}
