/*
 * test_queue_ring_wrap.c — the bounded rings' 64-bit positions wrapping around. The internal hook
 * baton__<kind>_set_position (src/queue/testing.h) starts an empty ring at any position; from
 * just below 2^32 (where a truncation to 32 bits would show) and just below 2^64 (where the
 * counters themselves wrap), each kind, at capacities 1 to 1024:
 *  - fills the ring completely and drains it, several times, across the wrap;
 *  - moves items one at a time (the ring kept half full) well past the wrap;
 *  - moves them in push_n / pop_n batches of the whole capacity across the wrap;
 *  - runs a random mix of every call against a model FIFO across the wrap;
 *  - with threads (1 producer and 1 consumer for SPSC, 3 producers for MPSC, 3 producers and 3
 *    consumers for MPMC), blocking and non-blocking calls, across the wrap: every item arrives
 *    once, in order per producer.
 */
#include "support/bt_common.h"

#include "support/bt_queue_ring.h"

static const uint64_t g_starts[] = {
    (UINT64_C(1) << 32) - 5,
    UINT64_MAX - 5,
    (UINT64_C(1) << 32) - 1,
    UINT64_MAX,
    UINT64_MAX - 1023,
};
#define N_STARTS (sizeof g_starts / sizeof g_starts[0])

static const size_t g_capacities[] = {1, 2, 4, 8, 16, 1024};
#define N_CAPACITIES (sizeof g_capacities / sizeof g_capacities[0])

static void *ring_at(const bt_ring_ops *ops, size_t capacity, uint64_t start)
{
    void *q = bt_ring_new(ops, capacity);
    ops->set_position(q, start);
    assert_int_equal(ops->size(q), 0);
    assert_int_equal(ops->capacity(q), capacity);
    return q;
}

/* ---- fill and drain completely ---------------------------------------------------------------- */

static void test_wrap_fill_and_drain(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    for (size_t s = 0; s < N_STARTS; s++) {
        for (size_t c = 0; c < N_CAPACITIES; c++) {
            size_t cap = g_capacities[c];
            void *q = ring_at(ops, cap, g_starts[s]);
            bt_ring_model m;
            bt_model_init(&m, cap, 0);
            /* Enough rounds to cross the wrap even from 1023 below it with capacity 1. */
            size_t rounds = 2 + 2048 / cap;
            for (size_t r = 0; r < rounds; r++) {
                void *got;
                bt_assert_rc(ops->try_pop(q, &got), BATON_EAGAIN);
                for (size_t i = 0; i < cap; i++)
                    bt_model_expect_push(ops, q, &m);
                if (ops->size(q) != cap)
                    fail_msg("%s start %#llx cap %zu round %zu: size %zu when full", ops->name,
                             (unsigned long long)g_starts[s], cap, r, ops->size(q));
                bt_assert_rc(ops->try_push(q, bt_item_of(~UINT64_C(0))), BATON_EAGAIN);
                bt_assert_rc(ops->push(q, bt_item_of(~UINT64_C(0)), 0), BATON_ETIMEDOUT);
                for (size_t i = 0; i < cap; i++)
                    bt_model_expect_pop(ops, q, &m);
                assert_int_equal(ops->size(q), 0);
            }
            bt_model_free(&m);
            ops->destroy(q);
        }
    }
}

/* ---- one at a time, half full ----------------------------------------------------------------- */

static void test_wrap_one_at_a_time(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    for (size_t s = 0; s < N_STARTS; s++) {
        for (size_t c = 0; c < N_CAPACITIES; c++) {
            size_t cap = g_capacities[c];
            void *q = ring_at(ops, cap, g_starts[s]);
            bt_ring_model m;
            bt_model_init(&m, cap, 0);
            size_t keep = cap / 2;
            for (size_t i = 0; i < keep; i++)
                bt_model_expect_push(ops, q, &m);
            for (size_t i = 0; i < 2100 + 3 * cap; i++) {
                bt_model_expect_push(ops, q, &m);
                bt_model_expect_pop(ops, q, &m);
                if (ops->size(q) != keep)
                    fail_msg("%s start %#llx cap %zu step %zu: size %zu, expected %zu",
                             ops->name, (unsigned long long)g_starts[s], cap, i, ops->size(q),
                             keep);
            }
            while (m.count > 0)
                bt_model_expect_pop(ops, q, &m);
            bt_model_free(&m);
            ops->destroy(q);
        }
    }
}

/* ---- whole-capacity batches ------------------------------------------------------------------- */

static void test_wrap_batches(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    for (size_t s = 0; s < N_STARTS; s++) {
        for (size_t c = 0; c < N_CAPACITIES; c++) {
            size_t cap = g_capacities[c];
            void *q = ring_at(ops, cap, g_starts[s]);
            void **in = calloc(cap + 1, sizeof *in);
            void **out = calloc(cap + 1, sizeof *out);
            assert_non_null(in);
            assert_non_null(out);
            uint64_t next = 0, expect = 0;
            size_t rounds = 2 + 2048 / cap;
            for (size_t r = 0; r < rounds; r++) {
                for (size_t i = 0; i <= cap; i++)
                    in[i] = bt_item_of(next + i);
                size_t count = 0;
                bt_assert_rc(ops->push_n(q, in, cap + 1, &count), 0);
                assert_int_equal(count, cap); /* the one beyond the capacity did not fit */
                next += cap;
                assert_int_equal(ops->size(q), cap);
                count = 0;
                bt_assert_rc(ops->pop_n(q, out, cap + 1, &count), 0);
                assert_int_equal(count, cap);
                for (size_t i = 0; i < cap; i++) {
                    if (bt_value_of(out[i]) != expect)
                        fail_msg("%s start %#llx cap %zu round %zu: item %zu = %llu, "
                                 "expected %llu",
                                 ops->name, (unsigned long long)g_starts[s], cap, r, i,
                                 (unsigned long long)bt_value_of(out[i]),
                                 (unsigned long long)expect);
                    expect++;
                }
                /* Leave the next round at a different offset. */
                if (cap > 1 && r % 3 == 0) {
                    bt_assert_rc(ops->try_push(q, bt_item_of(next++)), 0);
                    void *got;
                    bt_assert_rc(ops->try_pop(q, &got), 0);
                    assert_int_equal(bt_value_of(got), expect++);
                }
            }
            free(in);
            free(out);
            ops->destroy(q);
        }
    }
}

/* ---- random mix ------------------------------------------------------------------------------- */

static void test_wrap_random_mix(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    size_t steps = bt_scaled(20000, 5000);
    for (size_t s = 0; s < N_STARTS; s++) {
        for (size_t c = 0; c < N_CAPACITIES; c++) {
            size_t cap = g_capacities[c];
            void *q = ring_at(ops, cap, g_starts[s]);
            bt_ring_model m;
            bt_model_init(&m, cap, 0);
            bt_rng rng = bt_rng_seed(g_starts[s] ^ cap);
            /* Fill most of a big ring first so that the mix runs across the wrap. */
            for (size_t i = 0; i + 4 < cap; i++)
                bt_model_expect_push(ops, q, &m);
            for (size_t step = 0; step < steps; step++)
                bt_model_random_step(ops, q, &m, &rng);
            while (m.count > 0)
                bt_model_expect_pop(ops, q, &m);
            void *got;
            bt_assert_rc(ops->try_pop(q, &got), BATON_EAGAIN);
            bt_model_free(&m);
            ops->destroy(q);
        }
    }
}

/* ---- threads across the wrap ------------------------------------------------------------------ */

enum { WRAP_MAX_THREADS = 3 };

typedef struct wrap_run {
    const bt_ring_ops *ops;
    void *q;
    uint64_t per_producer;
    bool blocking;
    unsigned n_producers, n_consumers;
    atomic_uchar *taken; /* [producer * per_producer + seq] */
    atomic_ulong consumed;
} wrap_run;

typedef struct wrap_thread {
    wrap_run *run;
    unsigned id;
    pthread_t thread;
} wrap_thread;

static void *wrap_producer(void *arg)
{
    wrap_thread *self = arg;
    wrap_run *run = self->run;
    for (uint64_t seq = 0; seq < run->per_producer; seq++) {
        void *item = bt_item_make(self->id, seq);
        int rc;
        if (run->blocking) {
            rc = run->ops->push(run->q, item, BATON_WAIT_FOREVER);
        } else {
            while ((rc = run->ops->try_push(run->q, item)) == BATON_EAGAIN)
                sched_yield();
        }
        if (rc != 0) {
            BT_CHECK_MSG(rc == 0, "producer %u push %llu: %s", self->id,
                         (unsigned long long)seq, baton_err_name(rc));
            break;
        }
    }
    return NULL;
}

static void *wrap_consumer(void *arg)
{
    wrap_thread *self = arg;
    wrap_run *run = self->run;
    uint64_t next[WRAP_MAX_THREADS] = {0};
    unsigned long mine = 0;
    for (;;) {
        void *item = NULL;
        int rc;
        if (run->blocking) {
            rc = run->ops->pop(run->q, &item, BATON_WAIT_FOREVER);
        } else {
            while ((rc = run->ops->try_pop(run->q, &item)) == BATON_EAGAIN)
                sched_yield();
        }
        if (rc == BATON_EEOF)
            break;
        if (rc != 0) {
            BT_CHECK_MSG(rc == 0, "consumer %u pop: %s", self->id, baton_err_name(rc));
            break;
        }
        unsigned p = bt_item_producer(item);
        uint64_t seq = bt_item_seq(item);
        if (p >= run->n_producers || seq >= run->per_producer) {
            BT_CHECK_MSG(false, "consumer %u popped a foreign item %p", self->id, item);
            continue;
        }
        /* In order per producer: exactly the next one with one consumer, increasing with
         * several. */
        if (run->n_consumers == 1)
            BT_CHECK_MSG(seq == next[p], "producer %u: got seq %llu, expected %llu", p,
                         (unsigned long long)seq, (unsigned long long)next[p]);
        else
            BT_CHECK_MSG(seq >= next[p], "producer %u: got seq %llu after %llu", p,
                         (unsigned long long)seq, (unsigned long long)next[p]);
        next[p] = seq + 1;
        unsigned char before =
            atomic_fetch_add(&run->taken[(uint64_t)p * run->per_producer + seq], 1);
        BT_CHECK_MSG(before == 0, "producer %u seq %llu popped twice", p,
                     (unsigned long long)seq);
        mine++;
    }
    atomic_fetch_add(&run->consumed, mine);
    return NULL;
}

/* Starts the ring half the run's items below `wrap` (2^32, or 0 for 2^64), so that the run
 * crosses it in the middle whatever the scale. */
static void wrap_threads(const bt_ring_ops *ops, uint64_t wrap, size_t cap, bool blocking)
{
    uint64_t total = bt_scaled(60000, 6000);
    uint64_t start = wrap - total / 2;
    wrap_run run;
    run.ops = ops;
    run.q = ring_at(ops, cap, start);
    run.blocking = blocking;
    run.n_producers = ops->multi_producer ? 3 : 1;
    run.n_consumers = ops->multi_consumer ? 3 : 1;
    run.per_producer = total / run.n_producers;
    size_t n_items = (size_t)(run.per_producer * run.n_producers);
    run.taken = calloc(n_items, sizeof *run.taken);
    assert_non_null(run.taken);
    atomic_init(&run.consumed, 0);

    char what[160];
    snprintf(what, sizeof what, "%s: threads across the wrap from %#llx, capacity %zu, %s",
             ops->name, (unsigned long long)start, cap, blocking ? "blocking" : "try + yield");
    bt_watchdog dog;
    bt_watchdog_start(&dog, 60, what);

    wrap_thread producers[WRAP_MAX_THREADS], consumers[WRAP_MAX_THREADS];
    for (unsigned i = 0; i < run.n_consumers; i++) {
        consumers[i] = (wrap_thread){&run, i, 0};
        assert_int_equal(pthread_create(&consumers[i].thread, NULL, wrap_consumer, &consumers[i]),
                         0);
    }
    for (unsigned i = 0; i < run.n_producers; i++) {
        producers[i] = (wrap_thread){&run, i, 0};
        assert_int_equal(pthread_create(&producers[i].thread, NULL, wrap_producer, &producers[i]),
                         0);
    }
    for (unsigned i = 0; i < run.n_producers; i++)
        pthread_join(producers[i].thread, NULL);
    ops->close(run.q);
    for (unsigned i = 0; i < run.n_consumers; i++)
        pthread_join(consumers[i].thread, NULL);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();

    if (atomic_load(&run.consumed) != n_items)
        fail_msg("%s: %lu of %zu items arrived", what, atomic_load(&run.consumed), n_items);
    for (size_t i = 0; i < n_items; i++)
        if (atomic_load(&run.taken[i]) != 1)
            fail_msg("%s: item %zu of producer %zu arrived %u times", what,
                     (size_t)(i % run.per_producer), (size_t)(i / run.per_producer),
                     (unsigned)atomic_load(&run.taken[i]));
    free(run.taken);
    ops->destroy(run.q);
}

static void test_wrap_threads(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    static const uint64_t wraps[] = {UINT64_C(1) << 32, 0};
    for (size_t w = 0; w < 2; w++) {
        wrap_threads(ops, wraps[w], 16, true);
        wrap_threads(ops, wraps[w], 4, false);
    }
    for (size_t w = 0; w < 2; w++)
        wrap_threads(ops, wraps[w], 1, true);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        BT_RING_CASES(test_wrap_fill_and_drain),
        BT_RING_CASES(test_wrap_one_at_a_time),
        BT_RING_CASES(test_wrap_batches),
        BT_RING_CASES(test_wrap_random_mix),
        BT_RING_CASES(test_wrap_threads),
    };
    return cmocka_run_group_tests_name("queue/ring_wrap", tests, NULL, NULL);
}
