/*
 * test_queue_reorder.c — the reorder buffer (baton_reorder_*), at one inserter-thread count
 * (--workers N; CTest runs it at 1, 2, 4, 8 and 16, oversubscribed on 2 cores on purpose):
 *  - create: NULL out, window 0 and above BATON_DRAIN_MAX_WINDOW give BATON_EINVAL and store
 *    nothing; the window is rounded up to a power of two (1 stays 1, the maximum is accepted);
 *  - single thread: values inserted in reverse and in random order come out in sequence order,
 *    with their own seq; pop on a missing next value is BATON_EAGAIN;
 *  - insert at or beyond next + window is BATON_EAGAIN, of a popped seq BATON_ERANGE, of a seq
 *    already in the buffer BATON_EEXIST: each leaves the state as it was (the first value stays);
 *  - a first_seq just below UINT64_MAX: sequence numbers wrap to 0 and still pop in order, and
 *    the window and ERANGE checks hold across the wrap;
 *  - N inserter threads insert disjoint, interleaved seqs (thread t inserts t, t+N, t+2N...),
 *    retrying BATON_EAGAIN with a yield, while the main thread pops 10^6 values (times
 *    BATON_TEST_SCALE) in order; with a large and with a tiny window.
 */
#include "support/bt_common.h"

#include "baton/queue.h"

static unsigned g_threads;

static void *val(uint64_t v)
{
    return (void *)(uintptr_t)v;
}

static uint64_t num(void *p)
{
    return (uint64_t)(uintptr_t)p;
}

/* A value that differs from seq, so that a test sees seq and value were not mixed up. */
static void *value_of(uint64_t seq)
{
    return val((seq * UINT64_C(0x9e3779b97f4a7c15)) | 1u);
}

static baton_reorder *rb_new(size_t window, uint64_t first_seq)
{
    baton_reorder *rb = NULL;
    bt_assert_rc(baton_reorder_create(window, first_seq, &rb), 0);
    assert_non_null(rb);
    return rb;
}

/* ---- create -------------------------------------------------------------------------------- */

static void test_create_errors(void **state)
{
    (void)state;
    bt_assert_rc(baton_reorder_create(8, 0, NULL), BATON_EINVAL);
    baton_reorder *sentinel = (baton_reorder *)(uintptr_t)0x1234;
    baton_reorder *rb = sentinel;
    bt_assert_rc(baton_reorder_create(0, 0, &rb), BATON_EINVAL);
    assert_ptr_equal(rb, sentinel);
    bt_assert_rc(baton_reorder_create((size_t)BATON_DRAIN_MAX_WINDOW + 1, 0, &rb), BATON_EINVAL);
    assert_ptr_equal(rb, sentinel);
    bt_assert_rc(baton_reorder_create(SIZE_MAX, 0, &rb), BATON_EINVAL);
    assert_ptr_equal(rb, sentinel);
    assert_true(strlen(baton_last_error_message()) > 0);
    baton_reorder_destroy(NULL);
}

static void test_window_rounding(void **state)
{
    (void)state;
    static const struct {
        size_t asked, got;
    } cases[] = {{1, 1}, {2, 2}, {3, 4}, {5, 8}, {8, 8}, {9, 16}, {1000, 1024}, {1024, 1024},
                 /* The largest window: 256 MiB of slots, touched once by create (over 1 GiB
                  * with a sanitizer's shadow, so those builds leave it out). */
                 {(size_t)BATON_DRAIN_MAX_WINDOW - 1, (size_t)BATON_DRAIN_MAX_WINDOW}};
    size_t n_cases = sizeof cases / sizeof cases[0];
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    n_cases--;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    n_cases--;
#endif
#endif
    for (size_t i = 0; i < n_cases; i++) {
        baton_reorder *rb = rb_new(cases[i].asked, 7);
        if (baton_reorder_window(rb) != cases[i].got)
            fail_msg("window %zu rounded to %zu, expected %zu", cases[i].asked,
                     baton_reorder_window(rb), cases[i].got);
        assert_int_equal(baton_reorder_next(rb), 7);
        /* The whole rounded window is usable, and not one more. */
        uint64_t last = 7 + cases[i].got - 1;
        bt_assert_rc(baton_reorder_insert(rb, last, val(1)), 0);
        bt_assert_rc(baton_reorder_insert(rb, last + 1, val(2)), BATON_EAGAIN);
        baton_reorder_destroy(rb);
    }
}

/* ---- single thread ------------------------------------------------------------------------- */

/* Pops n values and checks they are first..first+n-1 in order, then that the next is missing. */
static void pop_all_in_order(baton_reorder *rb, uint64_t first, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seq = 0;
        void *v = NULL;
        int rc = baton_reorder_pop(rb, &seq, &v);
        if (rc != 0)
            fail_msg("pop %llu of %llu: %s", (unsigned long long)i, (unsigned long long)n,
                     baton_err_name(rc));
        if (seq != first + i || v != value_of(first + i))
            fail_msg("pop %llu: seq %llu value %#llx, expected seq %llu value %#llx",
                     (unsigned long long)i, (unsigned long long)seq,
                     (unsigned long long)num(v), (unsigned long long)(first + i),
                     (unsigned long long)num(value_of(first + i)));
    }
    void *v = val(0xabc);
    uint64_t seq = 0xdef;
    bt_assert_rc(baton_reorder_pop(rb, &seq, &v), BATON_EAGAIN);
    assert_ptr_equal(v, val(0xabc));
    assert_int_equal(seq, 0xdef);
    assert_int_equal(baton_reorder_next(rb), first + n);
}

static void test_reverse_order(void **state)
{
    (void)state;
    enum { W = 64 };
    baton_reorder *rb = rb_new(W, 0);
    for (int round = 0; round < 5; round++) {
        uint64_t base = (uint64_t)round * W;
        for (uint64_t i = W; i-- > 0;) {
            bt_assert_rc(baton_reorder_insert(rb, base + i, value_of(base + i)), 0);
            if (i != 0) {
                /* Nothing pops until the first one is there. */
                void *v = NULL;
                bt_assert_rc(baton_reorder_pop(rb, NULL, &v), BATON_EAGAIN);
                assert_int_equal(baton_reorder_next(rb), base);
            }
        }
        pop_all_in_order(rb, base, W);
    }
    baton_reorder_destroy(rb);
}

static void test_random_order_with_partial_pops(void **state)
{
    (void)state;
    enum { W = 256 };
    bt_rng rng = bt_rng_seed(0x5eed0001);
    baton_reorder *rb = rb_new(W, 1000);
    uint64_t next = 1000;
    uint64_t inserted_to = 1000; /* one past the highest seq dealt so far */
    uint64_t perm[W];
    for (int round = 0; round < 200; round++) {
        /* Deal a random number of new seqs, shuffled, all inside the window. */
        uint64_t room = next + W - inserted_to;
        uint64_t k = room == 0 ? 0 : 1 + bt_rng_below(&rng, room);
        for (uint64_t i = 0; i < k; i++)
            perm[i] = inserted_to + i;
        for (uint64_t i = k; i > 1; i--) {
            uint64_t j = bt_rng_below(&rng, i);
            uint64_t t = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = t;
        }
        for (uint64_t i = 0; i < k; i++)
            bt_assert_rc(baton_reorder_insert(rb, perm[i], value_of(perm[i])), 0);
        inserted_to += k;
        /* Pop a random number of them, in order. */
        uint64_t pops = bt_rng_below(&rng, inserted_to - next + 1);
        for (uint64_t i = 0; i < pops; i++) {
            uint64_t seq = 0;
            void *v = NULL;
            bt_assert_rc(baton_reorder_pop(rb, &seq, &v), 0);
            assert_int_equal(seq, next);
            assert_ptr_equal(v, value_of(next));
            next++;
        }
        assert_int_equal(baton_reorder_next(rb), next);
    }
    pop_all_in_order(rb, next, inserted_to - next);
    baton_reorder_destroy(rb);
}

static void test_null_values_and_null_seq(void **state)
{
    (void)state;
    baton_reorder *rb = rb_new(4, 0);
    bt_assert_rc(baton_reorder_insert(rb, 1, NULL), 0);
    bt_assert_rc(baton_reorder_insert(rb, 0, NULL), 0);
    void *v = val(1);
    bt_assert_rc(baton_reorder_pop(rb, NULL, &v), 0);
    assert_null(v);
    v = val(1);
    uint64_t seq = 99;
    bt_assert_rc(baton_reorder_pop(rb, &seq, &v), 0);
    assert_null(v);
    assert_int_equal(seq, 1);
    baton_reorder_destroy(rb);
}

/* ---- errors leave the state unchanged -------------------------------------------------------- */

static void test_insert_beyond_window_is_eagain(void **state)
{
    (void)state;
    baton_reorder *rb = rb_new(8, 100);
    bt_assert_rc(baton_reorder_insert(rb, 108, val(1)), BATON_EAGAIN);
    bt_assert_rc(baton_reorder_insert(rb, 109, val(1)), BATON_EAGAIN);
    bt_assert_rc(baton_reorder_insert(rb, 100 + 1000000, val(1)), BATON_EAGAIN);
    assert_int_equal(baton_reorder_next(rb), 100);
    /* The refused seqs' slots (108 shares 100's slot) are untouched: 100 is missing still. */
    void *v = NULL;
    bt_assert_rc(baton_reorder_pop(rb, NULL, &v), BATON_EAGAIN);
    for (uint64_t s = 100; s < 108; s++)
        bt_assert_rc(baton_reorder_insert(rb, s, value_of(s)), 0);
    bt_assert_rc(baton_reorder_insert(rb, 108, value_of(108)), BATON_EAGAIN);
    /* After popping one, 108 fits; 109 not yet. */
    uint64_t seq = 0;
    bt_assert_rc(baton_reorder_pop(rb, &seq, &v), 0);
    assert_int_equal(seq, 100);
    assert_ptr_equal(v, value_of(100));
    bt_assert_rc(baton_reorder_insert(rb, 109, value_of(109)), BATON_EAGAIN);
    bt_assert_rc(baton_reorder_insert(rb, 108, value_of(108)), 0);
    pop_all_in_order(rb, 101, 8);
    baton_reorder_destroy(rb);
}

static void test_insert_popped_seq_is_erange(void **state)
{
    (void)state;
    baton_reorder *rb = rb_new(8, 10);
    bt_assert_rc(baton_reorder_insert(rb, 9, val(1)), BATON_ERANGE);
    bt_assert_rc(baton_reorder_insert(rb, 0, val(1)), BATON_ERANGE);
    assert_true(strlen(baton_last_error_message()) > 0);
    for (uint64_t s = 10; s < 13; s++)
        bt_assert_rc(baton_reorder_insert(rb, s, value_of(s)), 0);
    void *v = NULL;
    bt_assert_rc(baton_reorder_pop(rb, NULL, &v), 0);
    bt_assert_rc(baton_reorder_pop(rb, NULL, &v), 0);
    /* 10 and 11 are popped; 11's slot is empty again, but 11 (and 10 + window, its slot-mate
     * 18, is beyond the window) are refused. */
    bt_assert_rc(baton_reorder_insert(rb, 11, val(1)), BATON_ERANGE);
    bt_assert_rc(baton_reorder_insert(rb, 10, val(1)), BATON_ERANGE);
    assert_int_equal(baton_reorder_next(rb), 12);
    pop_all_in_order(rb, 12, 1);
    baton_reorder_destroy(rb);
}

static void test_duplicate_insert_is_eexist(void **state)
{
    (void)state;
    baton_reorder *rb = rb_new(8, 0);
    bt_assert_rc(baton_reorder_insert(rb, 3, value_of(3)), 0);
    bt_assert_rc(baton_reorder_insert(rb, 3, val(0xbad)), BATON_EEXIST);
    assert_true(strlen(baton_last_error_message()) > 0);
    bt_assert_rc(baton_reorder_insert(rb, 0, value_of(0)), 0);
    bt_assert_rc(baton_reorder_insert(rb, 0, val(0xbad)), BATON_EEXIST);
    for (uint64_t s = 1; s < 3; s++)
        bt_assert_rc(baton_reorder_insert(rb, s, value_of(s)), 0);
    /* The first values stay. */
    pop_all_in_order(rb, 0, 4);
    baton_reorder_destroy(rb);
}

/* ---- wrap-around ------------------------------------------------------------------------------ */

static void test_wrap_near_uint64_max(void **state)
{
    (void)state;
    enum { W = 8 };
    uint64_t first = UINT64_MAX - 4; /* MAX-4 .. MAX, then 0, 1, 2 */
    baton_reorder *rb = rb_new(W, first);
    assert_int_equal(baton_reorder_next(rb), first);
    /* first + W wraps to 3: beyond the window. */
    bt_assert_rc(baton_reorder_insert(rb, first + W, val(1)), BATON_EAGAIN);
    /* Just below first: popped already. */
    bt_assert_rc(baton_reorder_insert(rb, first - 1, val(1)), BATON_ERANGE);
    for (uint64_t i = W; i-- > 0;)
        bt_assert_rc(baton_reorder_insert(rb, first + i, value_of(first + i)), 0);
    bt_assert_rc(baton_reorder_insert(rb, 0, val(0xbad)), BATON_EEXIST);
    pop_all_in_order(rb, first, W); /* also checks next == first + W == 3 */
    assert_int_equal(baton_reorder_next(rb), 3);
    bt_assert_rc(baton_reorder_insert(rb, UINT64_MAX, val(1)), BATON_ERANGE);
    bt_assert_rc(baton_reorder_insert(rb, 2, val(1)), BATON_ERANGE);
    bt_assert_rc(baton_reorder_insert(rb, 3 + W, val(1)), BATON_EAGAIN);
    for (uint64_t s = 3; s < 3 + W; s++)
        bt_assert_rc(baton_reorder_insert(rb, s, value_of(s)), 0);
    pop_all_in_order(rb, 3, W);
    baton_reorder_destroy(rb);
}

/* A window of one across the wrap: each seq fits only once its predecessor is popped. */
static void test_wrap_with_window_one(void **state)
{
    (void)state;
    baton_reorder *rb = rb_new(1, UINT64_MAX - 2);
    for (int i = 0; i < 6; i++) {
        uint64_t s = UINT64_MAX - 2 + (uint64_t)i;
        bt_assert_rc(baton_reorder_insert(rb, s + 1, val(1)), BATON_EAGAIN);
        bt_assert_rc(baton_reorder_insert(rb, s, value_of(s)), 0);
        bt_assert_rc(baton_reorder_insert(rb, s, value_of(s)), BATON_EEXIST);
        pop_all_in_order(rb, s, 1);
    }
    baton_reorder_destroy(rb);
}

/* ---- several inserters ------------------------------------------------------------------------ */

typedef struct inserter {
    baton_reorder *rb;
    uint64_t first, n, index, stride;
    uint64_t eagain;
    pthread_t thread;
} inserter;

static void *inserter_main(void *arg)
{
    inserter *ins = arg;
    for (uint64_t s = ins->index; s < ins->n; s += ins->stride) {
        uint64_t seq = ins->first + s;
        for (;;) {
            int rc = baton_reorder_insert(ins->rb, seq, value_of(seq));
            if (rc == 0)
                break;
            if (rc != BATON_EAGAIN) {
                BT_CHECK_MSG(false, "insert of seq %llu: %s", (unsigned long long)seq,
                             baton_err_name(rc));
                return NULL;
            }
            ins->eagain++;
            sched_yield();
        }
    }
    return NULL;
}

static void run_inserters(size_t window, uint64_t first, uint64_t n, const char *what)
{
    enum { MAX_THREADS = 64 };
    unsigned t = g_threads < MAX_THREADS ? g_threads : MAX_THREADS;
    bt_watchdog dog;
    bt_watchdog_start(&dog, 120, what);
    baton_reorder *rb = rb_new(window, first);
    inserter ins[MAX_THREADS];
    for (unsigned i = 0; i < t; i++) {
        ins[i] = (inserter){.rb = rb, .first = first, .n = n, .index = i, .stride = t};
        assert_int_equal(pthread_create(&ins[i].thread, NULL, inserter_main, &ins[i]), 0);
    }
    uint64_t bad = 0, first_bad = 0;
    uint64_t empty_pops = 0;
    for (uint64_t i = 0; i < n;) {
        uint64_t seq = 0;
        void *v = NULL;
        int rc = baton_reorder_pop(rb, &seq, &v);
        if (rc == BATON_EAGAIN) {
            empty_pops++;
            sched_yield();
            continue;
        }
        if (rc != 0 || seq != first + i || v != value_of(first + i)) {
            if (bad++ == 0)
                first_bad = i;
        }
        i++;
    }
    uint64_t eagain = 0;
    for (unsigned i = 0; i < t; i++) {
        pthread_join(ins[i].thread, NULL);
        eagain += ins[i].eagain;
    }
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    if (bad != 0)
        fail_msg("%s: %llu pops out of order or with a wrong value, the first at %llu", what,
                 (unsigned long long)bad, (unsigned long long)first_bad);
    void *v = NULL;
    bt_assert_rc(baton_reorder_pop(rb, NULL, &v), BATON_EAGAIN);
    assert_int_equal(baton_reorder_next(rb), first + n);
    printf("# %s: %u inserters, window %zu, %llu values; %llu inserts retried, %llu empty pops\n",
           what, t, window, (unsigned long long)n, (unsigned long long)eagain,
           (unsigned long long)empty_pops);
    baton_reorder_destroy(rb);
}

static void test_threads_insert_main_pops(void **state)
{
    (void)state;
    run_inserters(1024, 0, bt_scaled(1e6, 20000), "inserters, window 1024");
}

static void test_threads_insert_small_window_across_wrap(void **state)
{
    (void)state;
    uint64_t n = bt_scaled(2e4, 2000);
    run_inserters(4, UINT64_MAX - n / 2, n, "inserters, window 4, across 2^64");
}

int main(int argc, char **argv)
{
    g_threads = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_window_rounding),
        cmocka_unit_test(test_reverse_order),
        cmocka_unit_test(test_random_order_with_partial_pops),
        cmocka_unit_test(test_null_values_and_null_seq),
        cmocka_unit_test(test_insert_beyond_window_is_eagain),
        cmocka_unit_test(test_insert_popped_seq_is_erange),
        cmocka_unit_test(test_duplicate_insert_is_eexist),
        cmocka_unit_test(test_wrap_near_uint64_max),
        cmocka_unit_test(test_wrap_with_window_one),
        cmocka_unit_test(test_threads_insert_main_pops),
        cmocka_unit_test(test_threads_insert_small_window_across_wrap),
    };
    return cmocka_run_group_tests_name("queue/reorder", tests, NULL, NULL);
}
