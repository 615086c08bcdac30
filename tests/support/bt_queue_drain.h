/*
 * bt_queue_drain.h — what the parallel drain tests share (test_queue_drain.c,
 * test_queue_drain_failures.c): item values and the simulated work, the test's drain context and
 * its callbacks (which check with BT_CHECK only: they run on pool workers), producer threads, a
 * drain on a thread of its own, and the report check. Inline (not in baton_test_support): it
 * defines the test program's pool group (BT_DEFINE_POOL_GROUP), whose size the default window
 * reads.
 */
#ifndef BT_SUPPORT_QUEUE_DRAIN_H
#define BT_SUPPORT_QUEUE_DRAIN_H

#include "support/bt_common.h"

#include "baton/queue.h"

BT_DEFINE_POOL_GROUP()

enum { BT_DRAIN_WATCHDOG_S = 120, BT_MAX_UNDELIVERED = 1 << 16 };

static inline void *bt_drain_item(uint64_t v)
{
    return (void *)(uintptr_t)v;
}

static inline uint64_t bt_drain_value(void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static inline uint64_t bt_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

#define BT_RESULT_KEY UINT64_C(0x5a5a000000000001)

/* The result process gives for item value v. */
static inline void *bt_result_of(uint64_t v)
{
    return bt_drain_item(v ^ BT_RESULT_KEY);
}

/* A few hundred ns of work. */
static inline void bt_small_work(uint64_t v)
{
    uint64_t h = v;
    for (unsigned i = 0; i < 24; i++)
        h = bt_mix(h + i);
    volatile uint64_t sink = h;
    (void)sink;
}

/* About one item in a thousand is slow: 50-200 us. */
static inline uint64_t bt_slow_ns(uint64_t v)
{
    uint64_t h = bt_mix(v ^ UINT64_C(0x123456789));
    return h % 1000 == 0 ? 50000 + (h >> 20) % 150000 : 0;
}

/* ---- the test's drain context ------------------------------------------------------------------ */

typedef struct bt_undelivered_rec {
    uint64_t seq;
    void *item;
    void *result;
    int status;
} bt_undelivered_rec;

typedef struct bt_dctx {
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
    bt_undelivered_rec *u;
    size_t u_n;
    /* Nested parallel_for in process. */
    bool nested_for;
} bt_dctx;

static inline void bt_dctx_init(bt_dctx *c, baton_pool *pool, uint64_t n, bool ordered)
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
    c->u = calloc(BT_MAX_UNDELIVERED, sizeof *c->u);
    assert_non_null(c->u);
    c->fail_process_seq[0] = c->fail_process_seq[1] = UINT64_MAX;
    c->fail_deliver_seq = UINT64_MAX;
    c->block_seq = UINT64_MAX;
}

/* Starts the next drain on the same context: seq 0 is item `base`. */
static inline void bt_dctx_next_drain(bt_dctx *c, uint64_t base)
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

static inline void bt_dctx_free(bt_dctx *c)
{
    free(c->processed_hits);
    free(c->delivered_hits);
    free(c->u);
}

static inline int bt_nested_fn(size_t begin, size_t end, void *ctx)
{
    atomic_uint_fast64_t *sum = ctx;
    uint64_t s = 0;
    for (size_t i = begin; i < end; i++)
        s += i;
    atomic_fetch_add_explicit(sum, s, memory_order_relaxed);
    return 0;
}

static inline int bt_d_process(void *ctx, void *item, void **result)
{
    bt_dctx *c = ctx;
    uint64_t v = bt_drain_value(item);
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
            *result = bt_drain_item(0xfa11);
            return c->fail_process_rc[i];
        }
    }
    bt_small_work(v);
    if (c->slow) {
        uint64_t ns = bt_slow_ns(v);
        if (ns != 0)
            bt_busy_ns(ns);
    }
    if (c->nested_for) {
        atomic_uint_fast64_t sum;
        atomic_init(&sum, 0);
        int rc = baton_parallel_for(c->pool, 0, 64, 4, bt_nested_fn, &sum);
        BT_CHECK_MSG(rc == 0, "nested parallel_for: %s", baton_err_name(rc));
        BT_CHECK(atomic_load(&sum) == 64 * 63 / 2);
    }
    *result = bt_result_of(v);
    atomic_fetch_add(&c->processed, 1);
    return 0;
}

static inline int bt_d_deliver(void *ctx, uint64_t seq, void *item, void *result)
{
    bt_dctx *c = ctx;
    if (c->ordered)
        BT_CHECK_MSG(atomic_exchange(&c->in_deliver, 1) == 0,
                     "ordered deliver called concurrently (seq %llu)", (unsigned long long)seq);
    uint64_t v = bt_drain_value(item);
    BT_CHECK_MSG(v == c->base + seq, "deliver: seq %llu carries item %llu, expected %llu",
                 (unsigned long long)seq, (unsigned long long)v,
                 (unsigned long long)(c->base + seq));
    BT_CHECK_MSG(result == bt_result_of(v), "deliver: item %llu has result %#llx",
                 (unsigned long long)v, (unsigned long long)bt_drain_value(result));
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

static inline void bt_d_undelivered(void *ctx, uint64_t seq, void *item, void *result, int status)
{
    bt_dctx *c = ctx;
    if (c->u_n >= BT_MAX_UNDELIVERED) {
        BT_CHECK_MSG(false, "more than %d undelivered items", BT_MAX_UNDELIVERED);
        return;
    }
    c->u[c->u_n++] = (bt_undelivered_rec){seq, item, result, status};
}

static inline baton_drain_ops bt_d_ops(unsigned flags, size_t window)
{
    baton_drain_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.struct_size = sizeof ops;
    ops.process = bt_d_process;
    ops.deliver = bt_d_deliver;
    ops.undelivered = bt_d_undelivered;
    ops.window = window;
    ops.flags = flags;
    return ops;
}

static inline uint64_t bt_pow2_at_least(uint64_t x)
{
    uint64_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

/* The window a drain uses when ops.window is 0, as queue.h documents it. */
static inline size_t bt_default_window(void)
{
    size_t want = 256u * g_workers;
    return bt_pow2_at_least(want < 1024 ? 1024 : want);
}

/* ---- producers ---------------------------------------------------------------------------------- */

typedef struct bt_producer {
    baton_workqueue_sender *tx;
    uint64_t first, n;     /* values first .. first+n-1 */
    uint64_t pause_every;  /* 0: never */
    unsigned pause_ms;
    unsigned close_pause_ms; /* pause before the close */
    int rc;
    pthread_t thread;
} bt_producer;

static inline void *bt_producer_main(void *arg)
{
    bt_producer *p = arg;
    void *batch[32];
    p->rc = 0;
    for (uint64_t i = 0; i < p->n && p->rc == 0;) {
        if (p->pause_every != 0 && i != 0 && i % p->pause_every == 0)
            bt_sleep_ms(p->pause_ms);
        uint64_t v = p->first + i;
        if (i % 64 < 32) {
            p->rc = baton_workqueue_send(p->tx, bt_drain_item(v), BATON_WAIT_FOREVER);
            i++;
        } else {
            size_t k = 32 - (size_t)(i % 32);
            if (k > p->n - i)
                k = (size_t)(p->n - i);
            if (p->pause_every != 0 && k > p->pause_every - i % p->pause_every)
                k = (size_t)(p->pause_every - i % p->pause_every);
            for (size_t j = 0; j < k; j++)
                batch[j] = bt_drain_item(v + j);
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

static inline void bt_producer_start(bt_producer *p, baton_workqueue_sender *tx, uint64_t first,
                                     uint64_t n)
{
    p->tx = tx;
    p->first = first;
    p->n = n;
    assert_int_equal(pthread_create(&p->thread, NULL, bt_producer_main, p), 0);
}

static inline baton_workqueue_receiver *bt_wq_preloaded(uint64_t n, unsigned flags)
{
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    bt_assert_rc(baton_workqueue_create((size_t)n + 1, flags, &tx, &rx), 0);
    for (uint64_t i = 0; i < n; i++)
        bt_assert_rc(baton_workqueue_try_send(tx, bt_drain_item(i)), 0);
    baton_workqueue_sender_close(tx);
    return rx;
}

static inline void bt_assert_report(const baton_drain_report *r, uint64_t accepted,
                                    uint64_t delivered, uint64_t processed, uint64_t failed_seq,
                                    const char *what)
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


/* ---- the window -------------------------------------------------------------------------------- */

typedef struct bt_drain_thread {
    baton_workqueue_receiver *rx;
    baton_pool *pool;
    baton_drain_ops ops;
    void *ctx;
    baton_drain_report rep;
    int rc;
    atomic_int done;
    pthread_t thread;
} bt_drain_thread;

static inline void *bt_drain_thread_main(void *arg)
{
    bt_drain_thread *t = arg;
    t->rc = baton_workqueue_drain_parallel(t->rx, t->pool, &t->ops, t->ctx, &t->rep);
    atomic_store(&t->done, 1);
    return NULL;
}

static inline void bt_drain_thread_start(bt_drain_thread *t, baton_workqueue_receiver *rx,
                                         baton_pool *pool, baton_drain_ops ops, void *ctx)
{
    t->rx = rx;
    t->pool = pool;
    t->ops = ops;
    t->ctx = ctx;
    t->rc = 12345;
    atomic_init(&t->done, 0);
    assert_int_equal(pthread_create(&t->thread, NULL, bt_drain_thread_main, t), 0);
}


/* ---- the multi-producer stream's callbacks (also used for argument checks) --------------------- */

enum { BT_MP_MAX = 8 }; /* producers at most in the multi-producer stream */

typedef struct bt_mp_ctx {
    unsigned np;
    atomic_uint_fast64_t next[BT_MP_MAX]; /* per producer: the index deliver expects */
    atomic_uint_fast64_t next_seq;
    atomic_uint_fast64_t total;
} bt_mp_ctx;

static inline int bt_mp_process(void *ctx, void *item, void **result)
{
    (void)ctx;
    bt_small_work(bt_drain_value(item));
    *result = bt_result_of(bt_drain_value(item));
    return 0;
}

static inline int bt_mp_deliver(void *ctx, uint64_t seq, void *item, void *result)
{
    bt_mp_ctx *m = ctx;
    uint64_t v = bt_drain_value(item);
    unsigned p = (unsigned)(v & 0xff);
    uint64_t i = v >> 8;
    BT_CHECK_MSG(result == bt_result_of(v), "item %#llx: wrong result", (unsigned long long)v);
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

#endif /* BT_SUPPORT_QUEUE_DRAIN_H */
