/*
 * test_queue_ring_basic.c — the bounded rings (SPSC, MPSC, MPMC) on one thread, each case run
 * against every kind ("spsc_fifo", "mpsc_fifo", "mpmc_fifo", ...):
 *  - FIFO order and size() through pushes and pops of every flavour;
 *  - full and empty: try_push on a full ring is BATON_EAGAIN and changes nothing, try_pop on an
 *    empty ring is BATON_EAGAIN, the timed calls with timeout 0 are BATON_ETIMEDOUT;
 *  - capacity rounding (3 -> 4, 1 -> 1, 1000 -> 1024, ...), 0 and anything above
 *    BATON_QUEUE_MAX_CAPACITY (SIZE_MAX included) are BATON_EINVAL, and a ring holds exactly
 *    its rounded capacity;
 *  - rings of capacity 1 and 2: fill, drain and interleave many times;
 *  - push_n / pop_n: partial counts when n exceeds the room or max the size, n == 0, max == 0,
 *    NULL count pointers, batches across the end of the slot array;
 *  - NULL is an item like any other;
 *  - close: later pushes are BATON_ECLOSED (full ring too), pops drain what is left and then
 *    return BATON_EEOF again and again (WAIT_FOREVER included), close is idempotent;
 *  - bad arguments: create with a NULL out pointer; NULL item / array out pointers on the pops
 *    and push_n; destroy(NULL); destroy with items inside;
 *  - a long random mix of every call against a model FIFO, for several capacities.
 */
#include "support/bt_common.h"

#include "support/bt_queue_ring.h"

/* ---- FIFO and size ---------------------------------------------------------------------------- */

static void test_fifo(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    void *q = bt_ring_new(ops, 8);
    assert_int_equal(ops->capacity(q), 8);
    assert_int_equal(ops->size(q), 0);
    for (uint64_t round = 0; round < 100; round++) {
        size_t n = 1 + (size_t)(round % 8);
        for (size_t i = 0; i < n; i++) {
            bt_assert_rc(ops->try_push(q, bt_item_of(round * 100 + i)), 0);
            assert_int_equal(ops->size(q), i + 1);
        }
        for (size_t i = 0; i < n; i++) {
            void *got = bt_item_of(0xdeadbeef);
            bt_assert_rc(ops->try_pop(q, &got), 0);
            assert_int_equal(bt_value_of(got), round * 100 + i);
            assert_int_equal(ops->size(q), n - i - 1);
        }
    }
    /* The blocking calls with items / room at hand behave the same. */
    for (uint64_t i = 0; i < 8; i++)
        bt_assert_rc(ops->push(q, bt_item_of(i + 1), BATON_WAIT_FOREVER), 0);
    assert_int_equal(ops->size(q), 8);
    for (uint64_t i = 0; i < 8; i++) {
        void *got = NULL;
        bt_assert_rc(ops->pop(q, &got, BATON_WAIT_FOREVER), 0);
        assert_int_equal(bt_value_of(got), i + 1);
    }
    assert_int_equal(ops->size(q), 0);
    ops->destroy(q);
}

/* ---- full and empty --------------------------------------------------------------------------- */

static void test_full_and_empty(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    void *q = bt_ring_new(ops, 4);
    void *got = bt_item_of(77);

    /* Empty. */
    bt_assert_rc(ops->try_pop(q, &got), BATON_EAGAIN);
    bt_assert_rc(ops->pop(q, &got, 0), BATON_ETIMEDOUT);
    size_t popped = 99;
    void *items[8];
    bt_assert_rc(ops->pop_n(q, items, 8, &popped), BATON_EAGAIN);
    assert_int_equal(popped, 0);
    assert_int_equal(ops->size(q), 0);

    /* Full. */
    for (uint64_t i = 0; i < 4; i++)
        bt_assert_rc(ops->try_push(q, bt_item_of(10 + i)), 0);
    assert_int_equal(ops->size(q), 4);
    for (int attempt = 0; attempt < 10; attempt++) {
        bt_assert_rc(ops->try_push(q, bt_item_of(666)), BATON_EAGAIN);
        bt_assert_rc(ops->push(q, bt_item_of(667), 0), BATON_ETIMEDOUT);
        size_t pushed = 99;
        void *more[3] = {bt_item_of(668), bt_item_of(669), bt_item_of(670)};
        bt_assert_rc(ops->push_n(q, more, 3, &pushed), BATON_EAGAIN);
        assert_int_equal(pushed, 0);
        assert_int_equal(ops->size(q), 4);
    }
    /* Unchanged: the same four items come out, and nothing else. */
    for (uint64_t i = 0; i < 4; i++) {
        bt_assert_rc(ops->try_pop(q, &got), 0);
        assert_int_equal(bt_value_of(got), 10 + i);
    }
    bt_assert_rc(ops->try_pop(q, &got), BATON_EAGAIN);
    assert_int_equal(ops->size(q), 0);

    /* Full again after a drain; one pop makes room for exactly one push. */
    for (uint64_t i = 0; i < 4; i++)
        bt_assert_rc(ops->try_push(q, bt_item_of(20 + i)), 0);
    bt_assert_rc(ops->try_push(q, bt_item_of(666)), BATON_EAGAIN);
    bt_assert_rc(ops->try_pop(q, &got), 0);
    assert_int_equal(bt_value_of(got), 20);
    bt_assert_rc(ops->try_push(q, bt_item_of(24)), 0);
    bt_assert_rc(ops->try_push(q, bt_item_of(666)), BATON_EAGAIN);
    for (uint64_t i = 1; i <= 4; i++) {
        bt_assert_rc(ops->try_pop(q, &got), 0);
        assert_int_equal(bt_value_of(got), 20 + i);
    }
    bt_assert_rc(ops->try_pop(q, &got), BATON_EAGAIN);
    ops->destroy(q);
}

/* ---- capacity --------------------------------------------------------------------------------- */

static void test_capacity_rounding(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    static const struct {
        size_t asked, rounded;
    } cases[] = {
        {1, 1},       {2, 2},       {3, 4},       {4, 4},         {5, 8},
        {7, 8},       {8, 8},       {9, 16},      {1000, 1024},   {1024, 1024},
        {1025, 2048}, {4097, 8192}, {65535, 65536}, {65536, 65536}, {(1u << 20) + 1, 1u << 21},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        void *q = bt_ring_new(ops, cases[c].asked);
        if (ops->capacity(q) != cases[c].rounded)
            fail_msg("%s_create(%zu): capacity %zu, expected %zu", ops->name, cases[c].asked,
                     ops->capacity(q), cases[c].rounded);
        /* It holds exactly that many (checked for the smaller ones). */
        if (cases[c].rounded <= 65536) {
            for (size_t i = 0; i < cases[c].rounded; i++)
                bt_assert_rc(ops->try_push(q, bt_item_of(i)), 0);
            bt_assert_rc(ops->try_push(q, bt_item_of(0)), BATON_EAGAIN);
            assert_int_equal(ops->size(q), cases[c].rounded);
            for (size_t i = 0; i < cases[c].rounded; i++) {
                void *got = NULL;
                bt_assert_rc(ops->try_pop(q, &got), 0);
                assert_int_equal(bt_value_of(got), i);
            }
        }
        ops->destroy(q);
    }

    static const size_t invalid[] = {
        0,
        (size_t)BATON_QUEUE_MAX_CAPACITY + 1,
        (size_t)BATON_QUEUE_MAX_CAPACITY * 2,
        (size_t)BATON_QUEUE_MAX_CAPACITY * 2 + 1,
        SIZE_MAX / 2,
        SIZE_MAX / 2 + 1,
        SIZE_MAX / 2 + 2,
        SIZE_MAX - 1,
        SIZE_MAX,
    };
    for (size_t c = 0; c < sizeof invalid / sizeof invalid[0]; c++) {
        void *q = NULL;
        int rc = ops->create(invalid[c], &q);
        if (rc != BATON_EINVAL)
            fail_msg("%s_create(%zu) = %s, expected BATON_EINVAL", ops->name, invalid[c],
                     baton_err_name(rc));
        if (q != NULL) {
            ops->destroy(q);
            fail_msg("%s_create(%zu) failed but stored a ring", ops->name, invalid[c]);
        }
    }
}

static void test_capacity_one(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    void *q = bt_ring_new(ops, 1);
    assert_int_equal(ops->capacity(q), 1);
    void *got;
    size_t rounds = bt_scaled(20000, 1000);
    for (uint64_t i = 0; i < rounds; i++) {
        bt_assert_rc(ops->try_pop(q, &got), BATON_EAGAIN);
        assert_int_equal(ops->size(q), 0);
        /* Alternate the push and pop flavours. */
        switch (i % 3) {
        case 0:
            bt_assert_rc(ops->try_push(q, bt_item_of(i)), 0);
            break;
        case 1:
            bt_assert_rc(ops->push(q, bt_item_of(i), 0), 0);
            break;
        default: {
            void *two[2] = {bt_item_of(i), bt_item_of(~i)};
            size_t pushed = 0;
            bt_assert_rc(ops->push_n(q, two, 2, &pushed), 0);
            assert_int_equal(pushed, 1);
            break;
        }
        }
        assert_int_equal(ops->size(q), 1);
        bt_assert_rc(ops->try_push(q, bt_item_of(~i)), BATON_EAGAIN);
        got = bt_item_of(~i);
        switch ((i / 3) % 3) {
        case 0:
            bt_assert_rc(ops->try_pop(q, &got), 0);
            break;
        case 1:
            bt_assert_rc(ops->pop(q, &got, 0), 0);
            break;
        default: {
            void *two[2];
            size_t popped = 0;
            bt_assert_rc(ops->pop_n(q, two, 2, &popped), 0);
            assert_int_equal(popped, 1);
            got = two[0];
            break;
        }
        }
        if (bt_value_of(got) != i)
            fail_msg("%s capacity 1, round %llu: popped %#llx", ops->name, (unsigned long long)i,
                     (unsigned long long)bt_value_of(got));
    }
    ops->destroy(q);
}

static void test_capacity_two(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    void *q = bt_ring_new(ops, 2);
    assert_int_equal(ops->capacity(q), 2);
    bt_ring_model m;
    bt_model_init(&m, 2, 0);
    size_t rounds = bt_scaled(5000, 500);
    for (size_t r = 0; r < rounds; r++) {
        /* fill, drain */
        bt_model_expect_push(ops, q, &m);
        bt_model_expect_push(ops, q, &m);
        bt_assert_rc(ops->try_push(q, bt_item_of(~UINT64_C(0))), BATON_EAGAIN);
        assert_int_equal(ops->size(q), 2);
        bt_model_expect_pop(ops, q, &m);
        bt_model_expect_pop(ops, q, &m);
        void *got;
        bt_assert_rc(ops->try_pop(q, &got), BATON_EAGAIN);
        /* interleave: one in flight, then two */
        bt_model_expect_push(ops, q, &m);
        bt_model_expect_push(ops, q, &m);
        bt_model_expect_pop(ops, q, &m);
        bt_model_expect_push(ops, q, &m);
        bt_model_expect_pop(ops, q, &m);
        bt_model_expect_push(ops, q, &m);
        assert_int_equal(ops->size(q), 2);
        bt_model_expect_pop(ops, q, &m);
        bt_model_expect_pop(ops, q, &m);
        assert_int_equal(ops->size(q), 0);
    }
    /* And the random mix. */
    bt_rng rng = bt_rng_seed(0x2222);
    for (size_t step = 0; step < bt_scaled(20000, 2000); step++)
        bt_model_random_step(ops, q, &m, &rng);
    bt_model_free(&m);
    ops->destroy(q);
}

/* ---- push_n / pop_n --------------------------------------------------------------------------- */

static void test_push_n_pop_n(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    void *q = bt_ring_new(ops, 8);
    void *in[16], *out[16];
    for (uint64_t i = 0; i < 16; i++)
        in[i] = bt_item_of(100 + i);
    size_t count;

    /* n == 0 on an empty ring, max == 0 on an empty ring. */
    count = 99;
    bt_assert_rc(ops->push_n(q, in, 0, &count), 0);
    assert_int_equal(count, 0);
    count = 99;
    bt_assert_rc(ops->pop_n(q, out, 0, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(ops->size(q), 0);

    /* 5 fit; of the next 5 only 3; then none. */
    count = 99;
    bt_assert_rc(ops->push_n(q, in, 5, &count), 0);
    assert_int_equal(count, 5);
    assert_int_equal(ops->size(q), 5);
    count = 99;
    bt_assert_rc(ops->push_n(q, in + 5, 5, &count), 0);
    assert_int_equal(count, 3);
    assert_int_equal(ops->size(q), 8);
    count = 99;
    bt_assert_rc(ops->push_n(q, in + 8, 5, &count), BATON_EAGAIN);
    assert_int_equal(count, 0);

    /* max == 0 on a full ring takes nothing. */
    count = 99;
    bt_assert_rc(ops->pop_n(q, out, 0, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(ops->size(q), 8);

    /* 3, then the remaining 5 of a request for 16, then none. */
    count = 99;
    bt_assert_rc(ops->pop_n(q, out, 3, &count), 0);
    assert_int_equal(count, 3);
    for (size_t i = 0; i < 3; i++)
        assert_ptr_equal(out[i], in[i]);
    count = 99;
    bt_assert_rc(ops->pop_n(q, out, 16, &count), 0);
    assert_int_equal(count, 5);
    for (size_t i = 0; i < 5; i++)
        assert_ptr_equal(out[i], in[3 + i]);
    count = 99;
    bt_assert_rc(ops->pop_n(q, out, 16, &count), BATON_EAGAIN);
    assert_int_equal(count, 0);
    assert_int_equal(ops->size(q), 0);

    /* NULL count pointers. */
    bt_assert_rc(ops->push_n(q, in, 2, NULL), 0);
    assert_int_equal(ops->size(q), 2);
    bt_assert_rc(ops->pop_n(q, out, 16, NULL), 0);
    assert_int_equal(ops->size(q), 0);
    assert_ptr_equal(out[0], in[0]);
    assert_ptr_equal(out[1], in[1]);
    bt_assert_rc(ops->pop_n(q, out, 16, NULL), BATON_EAGAIN);

    /* Batches that run across the end of the slot array, from every starting offset, with
     * single pushes and pops in between. */
    bt_ring_model m;
    bt_model_init(&m, 8, 1000);
    for (size_t offset = 0; offset < 8; offset++) {
        for (size_t i = 0; i < offset; i++) {
            bt_model_expect_push(ops, q, &m);
            bt_model_expect_pop(ops, q, &m);
        }
        for (size_t n = 1; n <= 10; n++) {
            for (size_t i = 0; i < n; i++)
                in[i] = bt_item_of(m.next_value + i);
            count = 99;
            bt_assert_rc(ops->push_n(q, in, n, &count), 0);
            assert_int_equal(count, n < 8 ? n : 8);
            for (size_t i = 0; i < count; i++)
                bt_model_push(&m, m.next_value++);
            size_t max = n % 2 == 0 ? 16 : n;
            count = 99;
            bt_assert_rc(ops->pop_n(q, out, max, &count), 0);
            size_t want = m.count < max ? m.count : max;
            assert_int_equal(count, want);
            for (size_t i = 0; i < count; i++)
                assert_int_equal(bt_value_of(out[i]), bt_model_pop(&m));
            while (m.count > 0)
                bt_model_expect_pop(ops, q, &m);
        }
    }
    bt_model_free(&m);
    ops->destroy(q);
}

/* ---- NULL items ------------------------------------------------------------------------------- */

static void test_null_items(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    void *q = bt_ring_new(ops, 4);
    void *got;
    bt_assert_rc(ops->try_push(q, NULL), 0);
    bt_assert_rc(ops->push(q, NULL, BATON_WAIT_FOREVER), 0);
    void *nulls[2] = {NULL, NULL};
    size_t count = 0;
    bt_assert_rc(ops->push_n(q, nulls, 2, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(ops->size(q), 4);
    bt_assert_rc(ops->try_push(q, NULL), BATON_EAGAIN);

    got = bt_item_of(1);
    bt_assert_rc(ops->try_pop(q, &got), 0);
    assert_null(got);
    got = bt_item_of(1);
    bt_assert_rc(ops->pop(q, &got, BATON_WAIT_FOREVER), 0);
    assert_null(got);
    void *out[4] = {bt_item_of(1), bt_item_of(1), bt_item_of(1), bt_item_of(1)};
    bt_assert_rc(ops->pop_n(q, out, 4, &count), 0);
    assert_int_equal(count, 2);
    assert_null(out[0]);
    assert_null(out[1]);
    bt_assert_rc(ops->try_pop(q, &got), BATON_EAGAIN);

    /* NULL between other items keeps its place. */
    bt_assert_rc(ops->try_push(q, bt_item_of(1)), 0);
    bt_assert_rc(ops->try_push(q, NULL), 0);
    bt_assert_rc(ops->try_push(q, bt_item_of(3)), 0);
    for (uint64_t want = 1; want <= 3; want++) {
        got = bt_item_of(42);
        bt_assert_rc(ops->try_pop(q, &got), 0);
        assert_int_equal(bt_value_of(got), want == 2 ? 0 : want);
    }
    ops->destroy(q);
}

/* ---- close ------------------------------------------------------------------------------------ */

static void expect_closed_pushes(const bt_ring_ops *ops, void *q)
{
    bt_assert_rc(ops->try_push(q, bt_item_of(900)), BATON_ECLOSED);
    bt_assert_rc(ops->push(q, bt_item_of(901), 0), BATON_ECLOSED);
    bt_assert_rc(ops->push(q, bt_item_of(902), 1000000), BATON_ECLOSED);
    bt_assert_rc(ops->push(q, bt_item_of(903), BATON_WAIT_FOREVER), BATON_ECLOSED);
    void *more[2] = {bt_item_of(904), bt_item_of(905)};
    size_t count = 99;
    bt_assert_rc(ops->push_n(q, more, 2, &count), BATON_ECLOSED);
    assert_int_equal(count, 0);
    /* queue.h: "BATON_ECLOSED after close (whatever n)", n == 0 included. */
    count = 99;
    bt_assert_rc(ops->push_n(q, more, 0, &count), BATON_ECLOSED);
    assert_int_equal(count, 0);
    bt_assert_rc(ops->push_n(q, more, 0, NULL), BATON_ECLOSED);
}

static void expect_eof(const bt_ring_ops *ops, void *q)
{
    for (int i = 0; i < 3; i++) {
        void *got = bt_item_of(1);
        bt_assert_rc(ops->try_pop(q, &got), BATON_EEOF);
        bt_assert_rc(ops->pop(q, &got, 0), BATON_EEOF);
        bt_assert_rc(ops->pop(q, &got, 1000000), BATON_EEOF);
        bt_assert_rc(ops->pop(q, &got, BATON_WAIT_FOREVER), BATON_EEOF);
        void *out[4];
        size_t count = 99;
        bt_assert_rc(ops->pop_n(q, out, 4, &count), BATON_EEOF);
        assert_int_equal(count, 0);
        /* "0 when at least one was popped or max == 0". */
        count = 99;
        bt_assert_rc(ops->pop_n(q, out, 0, &count), 0);
        assert_int_equal(count, 0);
        assert_int_equal(ops->size(q), 0);
    }
}

static void test_close_drains_then_eof(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    void *q = bt_ring_new(ops, 8);
    for (uint64_t i = 0; i < 5; i++)
        bt_assert_rc(ops->try_push(q, bt_item_of(i)), 0);
    ops->close(q);
    expect_closed_pushes(ops, q);
    assert_int_equal(ops->size(q), 5);

    /* What was pushed before the close comes out, by every pop flavour, then EOF. */
    void *got = bt_item_of(77);
    bt_assert_rc(ops->try_pop(q, &got), 0);
    assert_int_equal(bt_value_of(got), 0);
    bt_assert_rc(ops->pop(q, &got, BATON_WAIT_FOREVER), 0);
    assert_int_equal(bt_value_of(got), 1);
    bt_assert_rc(ops->pop(q, &got, 0), 0);
    assert_int_equal(bt_value_of(got), 2);
    ops->close(q); /* idempotent, also halfway through the drain */
    void *out[8];
    size_t count = 99;
    bt_assert_rc(ops->pop_n(q, out, 8, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(bt_value_of(out[0]), 3);
    assert_int_equal(bt_value_of(out[1]), 4);
    expect_eof(ops, q);
    ops->close(q);
    expect_eof(ops, q);
    expect_closed_pushes(ops, q);
    ops->destroy(q);
}

static void test_close_empty_and_full(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    /* Empty: EOF at once. */
    void *q = bt_ring_new(ops, 4);
    ops->close(q);
    ops->close(q);
    expect_eof(ops, q);
    expect_closed_pushes(ops, q);
    ops->destroy(q);

    /* Full: pushes are refused as closed (not as full), and all four items still come out. */
    for (size_t cap = 1; cap <= 4; cap *= 2) {
        q = bt_ring_new(ops, cap);
        for (uint64_t i = 0; i < cap; i++)
            bt_assert_rc(ops->try_push(q, bt_item_of(i)), 0);
        ops->close(q);
        expect_closed_pushes(ops, q);
        assert_int_equal(ops->size(q), cap);
        for (uint64_t i = 0; i < cap; i++) {
            void *got = NULL;
            bt_assert_rc(ops->pop(q, &got, BATON_WAIT_FOREVER), 0);
            assert_int_equal(bt_value_of(got), i);
        }
        expect_eof(ops, q);
        ops->destroy(q);
    }
}

/* ---- bad arguments ---------------------------------------------------------------------------- */

static void test_bad_arguments(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    bt_assert_rc(ops->create(4, NULL), BATON_EINVAL);
    bt_assert_rc(ops->create(0, NULL), BATON_EINVAL);
    ops->destroy(NULL);

    /* Destroying a ring with items inside (and a closed one) is fine. */
    void *q = bt_ring_new(ops, 16);
    for (uint64_t i = 0; i < 10; i++)
        bt_assert_rc(ops->try_push(q, bt_item_of(i + 1)), 0);
    ops->destroy(q);
    q = bt_ring_new(ops, 16);
    bt_assert_rc(ops->try_push(q, bt_item_of(1)), 0);
    ops->close(q);
    ops->destroy(q);
}

/* NULL out pointers on the calls that store through them are BATON_EINVAL and take nothing. */
static void test_null_out_pointers(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    void *q = bt_ring_new(ops, 4);
    bt_assert_rc(ops->try_push(q, bt_item_of(5)), 0);
    bt_assert_rc(ops->try_pop(q, NULL), BATON_EINVAL);
    bt_assert_rc(ops->pop(q, NULL, 0), BATON_EINVAL);
    bt_assert_rc(ops->pop(q, NULL, BATON_WAIT_FOREVER), BATON_EINVAL);
    size_t count = 99;
    bt_assert_rc(ops->pop_n(q, NULL, 2, &count), BATON_EINVAL);
    assert_int_equal(ops->size(q), 1);
    bt_assert_rc(ops->push_n(q, NULL, 2, &count), BATON_EINVAL);
    assert_int_equal(ops->size(q), 1);
    void *got = NULL;
    bt_assert_rc(ops->try_pop(q, &got), 0);
    assert_int_equal(bt_value_of(got), 5);
    ops->destroy(q);
}

/* ---- random mix against a model --------------------------------------------------------------- */

static void test_random_against_model(void **state)
{
    const bt_ring_ops *ops = bt_ring_ops_of(state);
    static const size_t capacities[] = {1, 2, 4, 8, 16, 64};
    size_t steps = bt_scaled(50000, 5000);
    for (size_t c = 0; c < sizeof capacities / sizeof capacities[0]; c++) {
        void *q = bt_ring_new(ops, capacities[c]);
        bt_ring_model m;
        bt_model_init(&m, capacities[c], 0);
        bt_rng rng = bt_rng_seed(0x5eed0000 + c);
        for (size_t step = 0; step < steps; step++)
            bt_model_random_step(ops, q, &m, &rng);
        assert_int_equal(ops->size(q), m.count);
        /* Close in the middle of it all: the rest drains, then EOF. */
        ops->close(q);
        expect_closed_pushes(ops, q);
        while (m.count > 0)
            bt_model_expect_pop(ops, q, &m);
        expect_eof(ops, q);
        bt_model_free(&m);
        ops->destroy(q);
    }
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        BT_RING_CASES(test_fifo),
        BT_RING_CASES(test_full_and_empty),
        BT_RING_CASES(test_capacity_rounding),
        BT_RING_CASES(test_capacity_one),
        BT_RING_CASES(test_capacity_two),
        BT_RING_CASES(test_push_n_pop_n),
        BT_RING_CASES(test_null_items),
        BT_RING_CASES(test_close_drains_then_eof),
        BT_RING_CASES(test_close_empty_and_full),
        BT_RING_CASES(test_bad_arguments),
        BT_RING_CASES(test_random_against_model),
        /* Last: an implementation that does not check these crashes here, and a crash must
         * not hide the results of the other cases. */
        BT_RING_CASES(test_null_out_pointers),
    };
    return cmocka_run_group_tests_name("queue/ring_basic", tests, NULL, NULL);
}
