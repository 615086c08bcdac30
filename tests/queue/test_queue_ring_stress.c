/*
 * test_queue_ring_stress.c — the bounded rings under many threads. With `--workers N` (CTest runs
 * N = 1, 2, 4, 8, 16 on purpose on a 2-core machine):
 *    SPSC: N independent pairs, a producer and a consumer per ring;
 *    MPSC: N producers, one consumer;
 *    MPMC: N producers, N consumers.
 * Each item is a producer id and a sequence number in the pointer's bits (producer 0's first
 * item is NULL). Before pushing, the producer also writes a payload word for the item with a
 * plain store; the consumer reads it after the pop, so a missing release/acquire pair is a
 * wrong value here and a data race under ThreadSanitizer. Checked: every item arrives exactly
 * once (a byte per item with several consumers; the exact next sequence number with one), per
 * producer in order (exactly consecutive with one consumer, increasing per consumer with
 * several), and every call returns only what its contract allows.
 *
 * The same run in several styles, each a cmocka case per kind:
 *   blocking      push / pop with BATON_WAIT_FOREVER, capacity 8 (and capacity 1);
 *   try           try_push / try_pop, sched_yield when full / empty, capacity 64;
 *   batch         push_n / pop_n of 1..32 items, partial counts, capacity 256;
 *   mixed         every call at random, short timeouts that expire and are retried, capacity 2.
 * The producers of MPSC and MPMC are joined and then the ring is closed; an SPSC producer closes
 * its own ring after its last push. Consumers end at BATON_EEOF.
 *
 * Sizes: 2*10^5 items per case at BATON_TEST_SCALE=1 (x 15 cases x 5 worker counts). The two
 * big runs, registered apart (--filter '*_10m'), move 10^7 items: one SPSC pair and 4 MPSC
 * producers, blocking calls, capacity 1024.
 *
 * CTest runs each kind in a process of its own (--filter 'spsc_*', ...), so that a hang in one
 * kind (the watchdog ends the process) does not hide the results of the others.
 */
#include "support/bt_common.h"

#include "support/bt_queue_ring.h"

enum { MAX_THREADS = 16, STRESS_WATCHDOG_S = 100, MAX_BATCH = 32 };

static unsigned g_threads = 1;

typedef enum stress_mode { MODE_BLOCKING, MODE_TRY, MODE_BATCH, MODE_MIXED } stress_mode;

static const char *const g_mode_names[] = {"blocking", "try", "batch", "mixed"};

typedef struct stress {
    const bt_ring_ops *ops;
    stress_mode mode;
    size_t cap;
    unsigned n_producers, n_consumers, n_rings;
    void *rings[MAX_THREADS];
    uint64_t per_producer;
    uint32_t *payload;   /* [producer * per_producer + seq], plain stores; NULL: not used */
    atomic_uchar *taken; /* [producer * per_producer + seq]; several consumers only */
    atomic_ulong consumed;
} stress;

typedef struct stress_thread {
    stress *s;
    unsigned id;
    void *ring;
    bt_rng rng;
    uint64_t next[MAX_THREADS]; /* consumer: next expected sequence number per producer */
    pthread_t thread;
} stress_thread;

static uint32_t payload_of(unsigned producer, uint64_t seq)
{
    return (uint32_t)baton_mix64(((uint64_t)producer << 40) ^ seq) | 1u;
}

/* ---- producers -------------------------------------------------------------------------------- */

/* Pushes one item in the style `how` (a mode, or for MODE_MIXED one picked at random). Returns
 * false after recording a failure. */
static bool push_one(stress_thread *self, void *item, stress_mode how)
{
    const bt_ring_ops *ops = self->s->ops;
    int rc;
    switch (how) {
    case MODE_BLOCKING:
        rc = ops->push(self->ring, item, BATON_WAIT_FOREVER);
        break;
    case MODE_TRY:
        while ((rc = ops->try_push(self->ring, item)) == BATON_EAGAIN)
            sched_yield();
        break;
    default: /* MODE_MIXED here: timed, retried */
        while ((rc = ops->push(self->ring, item, bt_rng_below(&self->rng, 50000))) ==
               BATON_ETIMEDOUT) {
        }
        break;
    }
    BT_CHECK_MSG(rc == 0, "%s producer %u: push = %s", ops->name, self->id, baton_err_name(rc));
    return rc == 0;
}

/* Pushes items[0..n) with push_n until all are in. */
static bool push_batch(stress_thread *self, void **items, size_t n)
{
    const bt_ring_ops *ops = self->s->ops;
    size_t done = 0;
    while (done < n) {
        size_t pushed = 12345;
        int rc = ops->push_n(self->ring, items + done, n - done, &pushed);
        if (rc == BATON_EAGAIN) {
            BT_CHECK_MSG(pushed == 0, "push_n = EAGAIN with %zu pushed", pushed);
            sched_yield();
            continue;
        }
        if (rc != 0 || pushed == 0 || pushed > n - done) {
            BT_CHECK_MSG(false, "%s producer %u: push_n(%zu) = %s, pushed %zu", ops->name,
                         self->id, n - done, baton_err_name(rc), pushed);
            return false;
        }
        done += pushed;
    }
    return true;
}

static void *producer_main(void *arg)
{
    stress_thread *self = arg;
    stress *s = self->s;
    void *batch[MAX_BATCH];
    size_t in_batch = 0, batch_target = 0;
    bool ok = true;
    for (uint64_t seq = 0; seq < s->per_producer && ok; seq++) {
        void *item = bt_item_make(self->id, seq);
        if (s->payload != NULL)
            s->payload[self->id * s->per_producer + seq] = payload_of(self->id, seq);
        stress_mode how = s->mode;
        if (how == MODE_MIXED) {
            unsigned pick = (unsigned)bt_rng_below(&self->rng, 4);
            how = pick == 0 ? MODE_BLOCKING : pick == 1 ? MODE_TRY : pick == 2 ? MODE_MIXED
                                                                                : MODE_BATCH;
            if (in_batch > 0)
                how = MODE_BATCH; /* finish the batch being collected */
        }
        if (how != MODE_BATCH) {
            ok = push_one(self, item, how);
            continue;
        }
        if (in_batch == 0)
            batch_target = 1 + (size_t)bt_rng_below(&self->rng, s->mode == MODE_MIXED ? 8 : MAX_BATCH);
        batch[in_batch++] = item;
        if (in_batch == batch_target || seq + 1 == s->per_producer) {
            ok = push_batch(self, batch, in_batch);
            in_batch = 0;
        }
    }
    if (s->ops->kind == BT_RING_SPSC)
        s->ops->close(self->ring); /* after the last push, in this thread's program order */
    return NULL;
}

/* ---- consumers -------------------------------------------------------------------------------- */

static void take(stress_thread *self, void *item)
{
    stress *s = self->s;
    unsigned p = bt_item_producer(item);
    uint64_t seq = bt_item_seq(item);
    if (p >= s->n_producers || seq >= s->per_producer ||
        (s->ops->kind == BT_RING_SPSC && p != self->id)) {
        BT_CHECK_MSG(false, "%s consumer %u: foreign item %p", s->ops->name, self->id, item);
        return;
    }
    uint64_t index = p * s->per_producer + seq;
    if (s->payload != NULL) {
        uint32_t seen = s->payload[index];
        BT_CHECK_MSG(seen == payload_of(p, seq),
                     "%s consumer %u: producer %u seq %llu: payload %#x, written %#x (the "
                     "producer's stores before the push are not visible)",
                     s->ops->name, self->id, p, (unsigned long long)seq, seen,
                     payload_of(p, seq));
    }
    if (s->n_consumers == 1) {
        BT_CHECK_MSG(seq == self->next[p],
                     "%s consumer: producer %u: got seq %llu, expected %llu", s->ops->name, p,
                     (unsigned long long)seq, (unsigned long long)self->next[p]);
    } else {
        BT_CHECK_MSG(seq >= self->next[p],
                     "%s consumer %u: producer %u: got seq %llu after %llu", s->ops->name,
                     self->id, p, (unsigned long long)seq,
                     (unsigned long long)self->next[p] - 1);
        unsigned char before = atomic_fetch_add_explicit(&s->taken[index], 1,
                                                         memory_order_relaxed);
        BT_CHECK_MSG(before == 0, "%s: producer %u seq %llu popped twice", s->ops->name, p,
                     (unsigned long long)seq);
    }
    self->next[p] = seq + 1;
}

static void *consumer_main(void *arg)
{
    stress_thread *self = arg;
    stress *s = self->s;
    const bt_ring_ops *ops = s->ops;
    void *items[MAX_BATCH];
    unsigned long count = 0;
    for (;;) {
        stress_mode how = s->mode;
        if (how == MODE_MIXED) {
            unsigned pick = (unsigned)bt_rng_below(&self->rng, 4);
            how = pick == 0 ? MODE_BLOCKING : pick == 1 ? MODE_TRY : pick == 2 ? MODE_MIXED
                                                                                : MODE_BATCH;
        }
        int rc;
        size_t got = 0;
        switch (how) {
        case MODE_BLOCKING:
            rc = ops->pop(self->ring, &items[0], BATON_WAIT_FOREVER);
            got = rc == 0;
            break;
        case MODE_TRY:
            rc = ops->try_pop(self->ring, &items[0]);
            got = rc == 0;
            break;
        case MODE_BATCH: {
            size_t max = 1 + (size_t)bt_rng_below(&self->rng, MAX_BATCH);
            got = 12345;
            rc = ops->pop_n(self->ring, items, max, &got);
            if ((rc == 0 && (got == 0 || got > max)) || (rc != 0 && got != 0)) {
                BT_CHECK_MSG(false, "%s consumer %u: pop_n(%zu) = %s, popped %zu", ops->name,
                             self->id, max, baton_err_name(rc), got);
                got = 0;
            }
            break;
        }
        default: /* MODE_MIXED here: timed; a timeout is retried */
            rc = ops->pop(self->ring, &items[0], bt_rng_below(&self->rng, 50000));
            got = rc == 0;
            if (rc == BATON_ETIMEDOUT)
                rc = BATON_EAGAIN;
            break;
        }
        if (rc == BATON_EEOF)
            break;
        if (rc == BATON_EAGAIN) {
            sched_yield();
            continue;
        }
        if (rc != 0) {
            BT_CHECK_MSG(false, "%s consumer %u: pop = %s", ops->name, self->id,
                         baton_err_name(rc));
            break;
        }
        for (size_t i = 0; i < got; i++)
            take(self, items[i]);
        count += got;
    }
    atomic_fetch_add(&s->consumed, count);
    return NULL;
}

/* ---- a run ------------------------------------------------------------------------------------ */

static void run_stress(const bt_ring_ops *ops, stress_mode mode, size_t cap, unsigned threads,
                       uint64_t total, bool with_payload)
{
    stress s;
    memset(&s, 0, sizeof s);
    s.ops = ops;
    s.mode = mode;
    s.cap = cap;
    s.n_producers = threads;
    s.n_consumers = ops->kind == BT_RING_MPSC ? 1 : threads;
    s.n_rings = ops->kind == BT_RING_SPSC ? threads : 1;
    s.per_producer = total / threads > 0 ? total / threads : 1;
    size_t n_items = (size_t)(s.per_producer * s.n_producers);
    for (unsigned r = 0; r < s.n_rings; r++)
        s.rings[r] = bt_ring_new(ops, cap);
    if (with_payload) {
        s.payload = calloc(n_items, sizeof *s.payload);
        assert_non_null(s.payload);
    }
    if (s.n_consumers > 1) {
        s.taken = calloc(n_items, sizeof *s.taken);
        assert_non_null(s.taken);
    }
    atomic_init(&s.consumed, 0);

    char what[160];
    snprintf(what, sizeof what, "%s %s, capacity %zu: %u producer(s), %u consumer(s), %zu items",
             ops->name, g_mode_names[mode], cap, s.n_producers, s.n_consumers, n_items);
    bt_watchdog dog;
    bt_watchdog_start(&dog, STRESS_WATCHDOG_S, what);
    uint64_t start = bt_now_ns();

    stress_thread *producers = calloc(s.n_producers, sizeof *producers);
    stress_thread *consumers = calloc(s.n_consumers, sizeof *consumers);
    assert_non_null(producers);
    assert_non_null(consumers);
    for (unsigned i = 0; i < s.n_consumers; i++) {
        consumers[i].s = &s;
        consumers[i].id = i;
        consumers[i].ring = s.rings[s.n_rings > 1 ? i : 0];
        consumers[i].rng = bt_rng_seed(0xc0 + i);
        assert_int_equal(pthread_create(&consumers[i].thread, NULL, consumer_main, &consumers[i]),
                         0);
    }
    for (unsigned i = 0; i < s.n_producers; i++) {
        producers[i].s = &s;
        producers[i].id = i;
        producers[i].ring = s.rings[s.n_rings > 1 ? i : 0];
        producers[i].rng = bt_rng_seed(0x90 + i);
        assert_int_equal(pthread_create(&producers[i].thread, NULL, producer_main, &producers[i]),
                         0);
    }
    for (unsigned i = 0; i < s.n_producers; i++)
        pthread_join(producers[i].thread, NULL);
    if (ops->kind != BT_RING_SPSC)
        ops->close(s.rings[0]); /* every producer has made its last push */
    for (unsigned i = 0; i < s.n_consumers; i++)
        pthread_join(consumers[i].thread, NULL);

    double seconds = (double)(bt_now_ns() - start) / 1e9;
    bt_watchdog_stop(&dog);
    printf("# %s: %.3f s\n", what, seconds);
    bt_assert_no_thread_failures();

    if (atomic_load(&s.consumed) != n_items)
        fail_msg("%s: %lu items arrived", what, atomic_load(&s.consumed));
    if (s.n_consumers == 1 || ops->kind == BT_RING_SPSC) {
        /* Exact order: each consumer saw each of its producers' items 0..per_producer-1. */
        for (unsigned c = 0; c < s.n_consumers; c++)
            for (unsigned p = 0; p < s.n_producers; p++) {
                if (ops->kind == BT_RING_SPSC && p != c)
                    continue;
                if (consumers[c].next[p] != s.per_producer)
                    fail_msg("%s: consumer %u got producer %u's items up to %llu of %llu", what,
                             c, p, (unsigned long long)consumers[c].next[p],
                             (unsigned long long)s.per_producer);
            }
    } else {
        for (size_t i = 0; i < n_items; i++)
            if (atomic_load(&s.taken[i]) != 1)
                fail_msg("%s: producer %zu seq %zu arrived %u times", what,
                         (size_t)(i / s.per_producer), (size_t)(i % s.per_producer),
                         (unsigned)atomic_load(&s.taken[i]));
    }
    for (unsigned r = 0; r < s.n_rings; r++) {
        assert_int_equal(ops->size(s.rings[r]), 0);
        ops->destroy(s.rings[r]);
    }
    free(producers);
    free(consumers);
    free(s.payload);
    free(s.taken);
}

static uint64_t case_items(void)
{
    return bt_scaled(200000, 20000);
}

static void test_stress_blocking(void **state)
{
    run_stress(bt_ring_ops_of(state), MODE_BLOCKING, 8, g_threads, case_items(), true);
}

static void test_stress_blocking_cap1(void **state)
{
    run_stress(bt_ring_ops_of(state), MODE_BLOCKING, 1, g_threads, case_items() / 2, true);
}

static void test_stress_try(void **state)
{
    run_stress(bt_ring_ops_of(state), MODE_TRY, 64, g_threads, case_items(), true);
}

static void test_stress_batch(void **state)
{
    run_stress(bt_ring_ops_of(state), MODE_BATCH, 256, g_threads, case_items(), true);
}

static void test_stress_mixed(void **state)
{
    run_stress(bt_ring_ops_of(state), MODE_MIXED, 2, g_threads, case_items(), true);
}

/* The two big runs: 10^7 items (scaled), one SPSC pair and four MPSC producers. */
static void test_10m(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    run_stress(ops, MODE_BLOCKING, 1024, ops->kind == BT_RING_SPSC ? 1 : 4, bt_scaled(1e7, 100000),
               false);
}

int main(int argc, char **argv)
{
    g_threads = bt_init(argc, argv, 2);
    if (g_threads > MAX_THREADS)
        g_threads = MAX_THREADS;
    const struct CMUnitTest tests[] = {
        BT_RING_CASES(test_stress_blocking),
        BT_RING_CASES(test_stress_try),
        BT_RING_CASES(test_stress_batch),
        BT_RING_CASES(test_stress_mixed),
        BT_RING_CASES(test_stress_blocking_cap1),
        BT_RING_CASE(SPSC, "spsc_", test_10m),
        BT_RING_CASE(MPSC, "mpsc_", test_10m),
    };
    return cmocka_run_group_tests_name("queue/ring_stress", tests, NULL, NULL);
}
