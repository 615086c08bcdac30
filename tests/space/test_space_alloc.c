/*
 * test_space_alloc.c — docs/space.md: "In steady state a produce, a consume and a firing
 * allocate nothing". A counting allocator (installed before any other baton call) counts every
 * allocation baton makes, on any thread. At one pool size (--workers N; CTest runs 1, 2, 4, 8
 * and 16), after a warm-up on the same channels:
 *  - N produce/consume pairs on one channel, each firing its consumer, allocate 0 blocks, driven
 *    from a thread outside the pool and from a task on a worker of the pool;
 *  - N 3-channel joins (a datum produced on each channel, then the join, which fires) allocate
 *    0 blocks, driven the same two ways;
 *  - after another thread took a thread's data (their blocks go back to it), the thread's own
 *    produces and takes keep those blocks: its next produces allocate 0 blocks;
 * and every continuation ran with the datum it should have (the sums are checked).
 */
#include "support/bt_common.h"

#include "baton/space.h"
#include "support/bt_space.h"

BT_DEFINE_POOL_GROUP()

static atomic_ullong g_alloc_calls;

static void *count_malloc(size_t size)
{
    atomic_fetch_add(&g_alloc_calls, 1);
    return malloc(size);
}

static void *count_aligned_alloc(size_t alignment, size_t size)
{
    atomic_fetch_add(&g_alloc_calls, 1);
    return aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}

static void count_free(void *ptr)
{
    free(ptr);
}

enum { WIDTH = 3, WARMUP = 2000 };

typedef struct driver {
    baton_space *space;
    baton_pattern *pat;
    uint8_t chans[WIDTH][9];
    size_t n;             /* pairs or joins after the warm-up */
    bool joins;
    atomic_llong sum;     /* of every datum the continuations took */
    unsigned long long allocs; /* during the n after the warm-up */
} driver;

static int took(void *ctx, const baton_match *match)
{
    driver *d = ctx;
    long long s = 0;
    for (size_t i = 0; i < match->n_channels; i++)
        s += baton_view_int(match->data[i]);
    atomic_fetch_add(&d->sum, s);
    return 0;
}

static baton_value_view view(const uint8_t *enc)
{
    return (baton_value_view){enc, 9};
}

static void encode(uint8_t out[9], uint8_t tag, uint64_t v)
{
    out[0] = tag;
    for (int i = 8; i >= 1; i--, v >>= 8)
        out[i] = (uint8_t)(v & 0xffu);
}

static void one(driver *d, size_t i)
{
    uint8_t datum[9];
    baton_value_view chans[WIDTH];
    baton_pattern *pats[WIDTH];
    size_t width = d->joins ? WIDTH : 1;
    for (size_t k = 0; k < width; k++) {
        chans[k] = view(d->chans[k]);
        pats[k] = d->pat;
        encode(datum, 0x03, (uint64_t)(i * width + k));
        bt_assert_rc(baton_space_produce(d->space, chans[k], view(datum), false), 0);
    }
    bt_assert_rc(baton_space_consume(d->space, chans, pats, width, took, d, 0, NULL), 0);
}

/* The warm-up, then the n counted: a call from outside a continuation returns once the
 * continuations of its firings have run, so nothing is left in flight between the two. */
static void drive(driver *d)
{
    for (size_t i = 0; i < WARMUP; i++)
        one(d, i);
    unsigned long long before = atomic_load(&g_alloc_calls);
    for (size_t i = WARMUP; i < WARMUP + d->n; i++)
        one(d, i);
    d->allocs = atomic_load(&g_alloc_calls) - before;
}

static int drive_task(void *arg)
{
    drive(arg);
    return 0;
}

static int drive_in_pool(baton_scope *scope, void *arg)
{
    return baton_scope_spawn(scope, drive_task, arg);
}

static void run(bool joins, bool in_pool)
{
    driver d = {.n = bt_scaled(20000, 2000), .joins = joins};
    baton_space_config config = {.struct_size = sizeof config, .pool = g_pool};
    bt_assert_rc(baton_space_create(&config, &d.space), 0);
    d.pat = bt_pattern("Int");
    atomic_init(&d.sum, 0);
    for (int k = 0; k < WIDTH; k++)
        encode(d.chans[k], 0x08, baton_space_fresh_name(d.space));
    if (in_pool)
        bt_assert_rc(baton_scope_run(g_pool, drive_in_pool, &d), 0);
    else
        drive(&d);
    bt_assert_rc(baton_space_quiesce(d.space), 0);
    long long values = (long long)((WARMUP + d.n) * (joins ? WIDTH : 1));
    assert_int_equal(atomic_load(&d.sum), values * (values - 1) / 2);
    if (d.allocs != 0)
        fail_msg("%zu %s from %s allocated %llu blocks after the warm-up, expected 0", d.n,
                 joins ? "joins" : "pairs", in_pool ? "a pool task" : "an outside thread",
                 d.allocs);
    size_t data = 1, consumers = 1;
    for (int k = 0; k < WIDTH; k++) {
        bt_assert_rc(baton_space_channel_counts(d.space, view(d.chans[k]), &data, &consumers), 0);
        assert_int_equal(data, 0);
        assert_int_equal(consumers, 0);
    }
    baton_space_destroy(d.space);
    baton_pattern_destroy(d.pat);
}

static void test_pairs_outside(void **state)
{
    (void)state;
    run(false, false);
}

static void test_pairs_in_pool(void **state)
{
    (void)state;
    run(false, true);
}

static void test_joins_outside(void **state)
{
    (void)state;
    run(true, false);
}

static void test_joins_in_pool(void **state)
{
    (void)state;
    run(true, true);
}

/* ---- blocks another thread gave back ---- */

enum { HANDOFF = 1000 };

static void produce_run(driver *d, uint64_t first)
{
    uint8_t datum[9];
    for (uint64_t i = first; i < first + HANDOFF; i++) {
        encode(datum, 0x03, i);
        bt_assert_rc(baton_space_produce(d->space, view(d->chans[0]), view(datum), false), 0);
    }
}

static int consume_run(driver *d)
{
    baton_value_view ch = view(d->chans[0]);
    for (int i = 0; i < HANDOFF; i++) {
        int rc = baton_space_consume(d->space, &ch, &d->pat, 1, took, d, 0, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void *consume_thread(void *arg)
{
    driver *d = arg;
    return (void *)(intptr_t)consume_run(d);
}

/* A thread whose data another thread takes keeps their blocks: thread B takes HANDOFF of A's
 * data (their blocks go back to A), A produces HANDOFF more (on those blocks) and takes them
 * itself, and then A's next HANDOFF produces allocate nothing. (A's count of kept blocks once
 * stopped at 0 while its produces used the blocks B gave back, then counted its own frees as
 * new and sent all but 256 of them to the heap, to be allocated again.) */
static void test_blocks_given_back(void **state)
{
    (void)state;
    driver d = {.n = HANDOFF};
    baton_space_config config = {.struct_size = sizeof config, .pool = g_pool};
    bt_assert_rc(baton_space_create(&config, &d.space), 0);
    d.pat = bt_pattern("Int");
    atomic_init(&d.sum, 0);
    encode(d.chans[0], 0x08, baton_space_fresh_name(d.space));
    produce_run(&d, 0);
    pthread_t b;
    void *b_rc = NULL;
    assert_int_equal(pthread_create(&b, NULL, consume_thread, &d), 0);
    assert_int_equal(pthread_join(b, &b_rc), 0);
    assert_int_equal((intptr_t)b_rc, 0);
    produce_run(&d, HANDOFF);
    bt_assert_rc(consume_run(&d), 0);
    unsigned long long before = atomic_load(&g_alloc_calls);
    produce_run(&d, 2 * HANDOFF);
    d.allocs = atomic_load(&g_alloc_calls) - before;
    bt_assert_rc(consume_run(&d), 0);
    bt_assert_rc(baton_space_quiesce(d.space), 0);
    long long values = 3 * HANDOFF;
    assert_int_equal(atomic_load(&d.sum), values * (values - 1) / 2);
    if (d.allocs != 0)
        fail_msg("%d produces after a hand-off allocated %llu blocks, expected 0", HANDOFF,
                 d.allocs);
    baton_space_destroy(d.space);
    baton_pattern_destroy(d.pat);
}

int main(int argc, char **argv)
{
    static const baton_allocator counting = {count_malloc, count_aligned_alloc, count_free};
    if (baton_set_allocator(&counting) != 0)
        return 1;
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pairs_outside),
        cmocka_unit_test(test_pairs_in_pool),
        cmocka_unit_test(test_joins_outside),
        cmocka_unit_test(test_joins_in_pool),
        cmocka_unit_test(test_blocks_given_back),
    };
    return cmocka_run_group_tests_name("space/alloc", tests, group_setup, group_teardown);
}
