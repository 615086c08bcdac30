/*
 * test_pool_for.c — baton_parallel_for at one worker count (--workers N; CTest runs 1, 2, 4,
 * 8, 16): every index of [begin, end) is covered exactly once (a counter per index) for empty,
 * tiny, prime, large and huge-offset ranges (up to end = SIZE_MAX, where a careless midpoint
 * overflows) and for grains 0, 1, 7, large and larger than the range; pieces lie inside the
 * range and respect the grain; begin > end and NULL arguments give BATON_EINVAL without calling
 * fn; three levels of nested loops cover the cross product once; loops issued by outside
 * threads at once (through external slots, beyond them, with BATON_POOL_NO_EXTERNAL_SLOTS and
 * with a single slot) are all complete.
 */
#include "support/bt_common.h"

BT_DEFINE_POOL_GROUP()

/* ---- coverage checking ----------------------------------------------------------------------- */

typedef struct cover_ctx {
    size_t begin, end, grain;
    atomic_uchar *hits; /* hits[i - begin] */
    atomic_size_t calls;
    atomic_size_t empty_calls;
    atomic_int bad_piece;
} cover_ctx;

static int cover_fn(size_t begin, size_t end, void *arg)
{
    cover_ctx *ctx = arg;
    atomic_fetch_add_explicit(&ctx->calls, 1, memory_order_relaxed);
    if (begin < ctx->begin || end > ctx->end || begin > end ||
        (ctx->grain > 0 && end - begin > ctx->grain)) {
        if (atomic_exchange(&ctx->bad_piece, 1) == 0)
            BT_CHECK_MSG(false, "loop [%zu, %zu) grain %zu got piece [%zu, %zu)", ctx->begin,
                         ctx->end, ctx->grain, begin, end);
        return 0;
    }
    if (begin == end)
        atomic_fetch_add_explicit(&ctx->empty_calls, 1, memory_order_relaxed);
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add_explicit(&ctx->hits[i - ctx->begin], 1, memory_order_relaxed);
    return 0;
}

/* Runs one loop and checks it; usable from any thread (reports with BT_CHECK). Returns whether
 * the loop was right. `hits` has room for end - begin counters (or is NULL for an empty range). */
static bool run_cover(baton_pool *pool, size_t begin, size_t end, size_t grain,
                      atomic_uchar *hits)
{
    cover_ctx ctx = {.begin = begin, .end = end, .grain = grain, .hits = hits};
    atomic_init(&ctx.calls, 0);
    atomic_init(&ctx.empty_calls, 0);
    atomic_init(&ctx.bad_piece, 0);
    size_t n = end - begin;
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit(&hits[i], 0, memory_order_relaxed);
    int rc = baton_parallel_for(pool, begin, end, grain, cover_fn, &ctx);
    bool ok = true;
    if (rc != 0) {
        BT_CHECK_MSG(false, "parallel_for [%zu, %zu) grain %zu returned %s", begin, end, grain,
                     baton_err_name(rc));
        ok = false;
    }
    if (atomic_load(&ctx.bad_piece) != 0)
        ok = false;
    for (size_t i = 0; i < n; i++) {
        unsigned h = atomic_load_explicit(&hits[i], memory_order_relaxed);
        if (h != 1) {
            BT_CHECK_MSG(false, "parallel_for [%zu, %zu) grain %zu: index %zu ran %u times",
                         begin, end, grain, begin + i, h);
            ok = false;
            break;
        }
    }
    if (n == 0 && atomic_load(&ctx.calls) != 0) {
        BT_CHECK_MSG(false, "empty range [%zu, %zu): fn was called %zu times", begin, end,
                     atomic_load(&ctx.calls));
        ok = false;
    }
    size_t min_pieces = grain > 0 ? n / grain + (n % grain != 0) : 0;
    if (atomic_load(&ctx.calls) - atomic_load(&ctx.empty_calls) < min_pieces) {
        BT_CHECK_MSG(false, "[%zu, %zu) grain %zu in only %zu pieces", begin, end, grain,
                     atomic_load(&ctx.calls));
        ok = false;
    }
    return ok;
}

static void cover_or_fail(size_t begin, size_t end, size_t grain)
{
    size_t n = end - begin;
    atomic_uchar *hits = malloc(n ? n : 1);
    assert_non_null(hits);
    bool ok = run_cover(g_pool, begin, end, grain, hits);
    free(hits);
    bt_assert_no_thread_failures();
    if (!ok)
        fail_msg("parallel_for [%zu, %zu) grain %zu is wrong", begin, end, grain);
}

/* ---- ranges ---------------------------------------------------------------------------------- */

static void test_empty_range_does_not_call_fn(void **state)
{
    (void)state;
    const size_t begins[] = {0, 1, 12345, SIZE_MAX / 2, SIZE_MAX};
    const size_t grains[] = {0, 1, 7, 1000};
    for (size_t b = 0; b < sizeof begins / sizeof begins[0]; b++)
        for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
            cover_or_fail(begins[b], begins[b], grains[g]);
}

static void test_small_ranges_all_grains(void **state)
{
    (void)state;
    const size_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 13, 31, 64, 97, 127, 1009, 4099, 10007, 65537};
    const size_t begins[] = {0, 17, 1000003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t b = 0; b < sizeof begins / sizeof begins[0]; b++) {
            size_t n = sizes[s];
            const size_t grains[] = {0, 1, 2, 7, 1000, n, n + 1, SIZE_MAX};
            for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
                cover_or_fail(begins[b], begins[b] + n, grains[g]);
        }
}

static void test_million_indices(void **state)
{
    (void)state;
    size_t n = bt_scaled(1e6, 100000);
    const size_t grains[] = {0, 1, 7, 100, 65536, 10 * n};
    for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
        cover_or_fail(0, n, grains[g]);
    cover_or_fail(3, n + 3, 0);
}

static void test_huge_offsets(void **state)
{
    (void)state;
    const size_t grains[] = {0, 1, 7, 333, 5000};
    const size_t sizes[] = {1, 2, 999, 4097};
    for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            cover_or_fail(SIZE_MAX / 2 - n / 2, SIZE_MAX / 2 - n / 2 + n, grains[g]);
            cover_or_fail(SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1 + n, grains[g]);
            /* The very top of size_t: (begin + end) / 2 overflows here. */
            cover_or_fail(SIZE_MAX - n, SIZE_MAX, grains[g]);
        }
}

static void test_random_ranges(void **state)
{
    (void)state;
    bt_rng rng = bt_rng_seed(20240611u + g_workers);
    size_t rounds = bt_scaled(300, 30);
    for (size_t r = 0; r < rounds; r++) {
        size_t n = (size_t)bt_rng_below(&rng, r % 10 == 0 ? 50000 : 300);
        size_t begin = (size_t)bt_rng_next(&rng) % (SIZE_MAX - n);
        size_t grain = r % 3 == 0 ? 0 : (size_t)bt_rng_below(&rng, 64) + 1;
        cover_or_fail(begin, begin + n, grain);
    }
}

static int never_fn(size_t begin, size_t end, void *ctx)
{
    (void)begin;
    (void)end;
    atomic_fetch_add((atomic_int *)ctx, 1);
    return 0;
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    atomic_int calls;
    atomic_init(&calls, 0);
    bt_assert_rc(baton_parallel_for(g_pool, 10, 9, 0, never_fn, &calls), BATON_EINVAL);
    bt_assert_rc(baton_parallel_for(g_pool, 10, 9, 1, never_fn, &calls), BATON_EINVAL);
    bt_assert_rc(baton_parallel_for(g_pool, SIZE_MAX, 0, 0, never_fn, &calls), BATON_EINVAL);
    bt_assert_rc(baton_parallel_for(g_pool, 0, 10, 0, NULL, &calls), BATON_EINVAL);
    bt_assert_rc(baton_parallel_for(NULL, 0, 10, 0, never_fn, &calls), BATON_EINVAL);
    assert_int_equal(atomic_load(&calls), 0);
}

/* ---- nested loops ---------------------------------------------------------------------------- */

typedef struct nest_ctx {
    size_t a, b, c;
    atomic_uchar *hits; /* hits[(i * b + j) * c + k] */
    atomic_int errors;
} nest_ctx;

typedef struct nest_frame {
    nest_ctx *ctx;
    size_t i, j;
} nest_frame;

static int nest_level3(size_t begin, size_t end, void *arg)
{
    nest_frame *frame = arg;
    nest_ctx *ctx = frame->ctx;
    for (size_t k = begin; k < end; k++)
        atomic_fetch_add_explicit(&ctx->hits[(frame->i * ctx->b + frame->j) * ctx->c + k], 1,
                                  memory_order_relaxed);
    return 0;
}

static int nest_level2(size_t begin, size_t end, void *arg)
{
    nest_frame *outer = arg;
    for (size_t j = begin; j < end; j++) {
        nest_frame frame = {outer->ctx, outer->i, j};
        int rc = baton_parallel_for(g_pool, 0, outer->ctx->c, j % 2 ? 0 : 3, nest_level3,
                                    &frame);
        if (rc != 0) {
            atomic_fetch_add(&outer->ctx->errors, 1);
            return rc;
        }
    }
    return 0;
}

static int nest_level1(size_t begin, size_t end, void *arg)
{
    nest_ctx *ctx = arg;
    for (size_t i = begin; i < end; i++) {
        nest_frame frame = {ctx, i, 0};
        int rc = baton_parallel_for(g_pool, 0, ctx->b, i % 2 ? 1 : 0, nest_level2, &frame);
        if (rc != 0) {
            atomic_fetch_add(&ctx->errors, 1);
            return rc;
        }
    }
    return 0;
}

static void test_nested_three_levels(void **state)
{
    (void)state;
    size_t side = bt_scale() >= 1.0 ? 40 : 16;
    nest_ctx ctx = {.a = side, .b = side + 3, .c = side + 7};
    size_t total = ctx.a * ctx.b * ctx.c;
    ctx.hits = calloc(total, sizeof *ctx.hits);
    assert_non_null(ctx.hits);
    atomic_init(&ctx.errors, 0);
    bt_assert_rc(baton_parallel_for(g_pool, 0, ctx.a, 1, nest_level1, &ctx), 0);
    assert_int_equal(atomic_load(&ctx.errors), 0);
    for (size_t x = 0; x < total; x++)
        if (atomic_load(&ctx.hits[x]) != 1)
            fail_msg("nested (%zu, %zu, %zu) ran %u times", x / (ctx.b * ctx.c),
                     x / ctx.c % ctx.b, x % ctx.c, (unsigned)atomic_load(&ctx.hits[x]));
    free(ctx.hits);
}

/* ---- outside threads ------------------------------------------------------------------------- */

typedef struct outside_ctx {
    baton_pool *pool;
    uint64_t seed;
    size_t loops;
    size_t failures;
} outside_ctx;

static void *outside_thread(void *arg)
{
    outside_ctx *ctx = arg;
    bt_rng rng = bt_rng_seed(ctx->seed);
    atomic_uchar hits[256];
    for (size_t l = 0; l < ctx->loops; l++) {
        size_t n = (size_t)bt_rng_below(&rng, 200) + 1;
        size_t begin = (size_t)bt_rng_below(&rng, 1000);
        size_t grain = (size_t)bt_rng_below(&rng, 8); /* 0 (adaptive) .. 7 */
        if (!run_cover(ctx->pool, begin, begin + n, grain, hits))
            ctx->failures++;
    }
    return NULL;
}

static void run_outside_threads(baton_pool *pool, unsigned n_threads, size_t loops)
{
    enum { MAX_THREADS = 32 };
    assert_true(n_threads <= MAX_THREADS);
    outside_ctx ctx[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    for (unsigned i = 0; i < n_threads; i++) {
        ctx[i] = (outside_ctx){.pool = pool, .seed = 1000u * g_workers + i + 1, .loops = loops};
        assert_int_equal(pthread_create(&threads[i], NULL, outside_thread, &ctx[i]), 0);
    }
    for (unsigned i = 0; i < n_threads; i++)
        pthread_join(threads[i], NULL);
    bt_assert_no_thread_failures();
    for (unsigned i = 0; i < n_threads; i++)
        if (ctx[i].failures != 0)
            fail_msg("outside thread %u: %zu of %zu loops wrong", i, ctx[i].failures, loops);
}

static void test_outside_threads_within_slots(void **state)
{
    (void)state;
    /* 4 threads, 4 default external slots. */
    run_outside_threads(g_pool, 4, bt_scaled(1000, 100));
}

static void test_outside_threads_beyond_slots(void **state)
{
    (void)state;
    /* 8 threads for 4 slots: some calls make slots on demand. */
    run_outside_threads(g_pool, 8, bt_scaled(500, 50));
}

static void test_outside_threads_no_external_slots(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create_ex(g_workers, BATON_POOL_NO_EXTERNAL_SLOTS, 0);
    run_outside_threads(pool, 4, bt_scaled(1000, 100));
    /* Also from the main thread, and a big one. */
    atomic_uchar *hits = malloc(200000);
    assert_non_null(hits);
    assert_true(run_cover(pool, 0, 200000, 0, hits));
    assert_true(run_cover(pool, 5, 20005, 1, hits));
    free(hits);
    bt_assert_no_thread_failures();
    bt_pool_destroy(pool);
}

static void test_outside_threads_single_slot(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create_ex(g_workers, 0, 1);
    run_outside_threads(pool, 8, bt_scaled(500, 50));
    bt_pool_destroy(pool);
}

static void test_outside_threads_crowd(void **state)
{
    (void)state;
    /* 32 threads: most calls of the default pool (4 slots) make slots on demand, and every
     * one of the maximum number of slots is in use at once on a second pool. */
    run_outside_threads(g_pool, 32, bt_scaled(100, 10));
    baton_pool *pool = bt_pool_create_ex(g_workers, 0, BATON_POOL_MAX_EXTERNAL_SLOTS);
    run_outside_threads(pool, 32, bt_scaled(100, 10));
    bt_pool_destroy(pool);
}

/* Many outside threads crowding a pool with one external slot: most calls run on slots made on
 * demand, which workers and other callers steal from while they wait inside their own loops.
 * Every one of those calls must complete. */
static void test_outside_threads_crowding_one_slot(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_create_ex(g_workers, 0, 1);
    run_outside_threads(pool, 12, bt_scaled(1500, 600));
    bt_pool_destroy(pool);
}

/* A loop called from inside a task of a scope (a nested call from a worker or the caller). */
typedef struct in_scope_ctx {
    atomic_uchar *hits;
    size_t n;
    atomic_int failures;
} in_scope_ctx;

static int loop_task(void *arg)
{
    in_scope_ctx *ctx = arg;
    cover_ctx cover = {.begin = 0, .end = ctx->n, .grain = 0, .hits = ctx->hits};
    atomic_init(&cover.calls, 0);
    atomic_init(&cover.empty_calls, 0);
    atomic_init(&cover.bad_piece, 0);
    int rc = baton_parallel_for(g_pool, 0, ctx->n, 0, cover_fn, &cover);
    if (rc != 0)
        atomic_fetch_add(&ctx->failures, 1);
    return rc;
}

static int loops_body(baton_scope *scope, void *arg)
{
    in_scope_ctx *ctxs = arg;
    for (int i = 0; i < 8; i++) {
        int rc = baton_scope_spawn(scope, loop_task, &ctxs[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void test_loops_inside_scope_tasks(void **state)
{
    (void)state;
    in_scope_ctx ctxs[8];
    for (int i = 0; i < 8; i++) {
        ctxs[i].n = 5000 + (size_t)i * 777;
        ctxs[i].hits = calloc(ctxs[i].n, 1);
        assert_non_null(ctxs[i].hits);
        atomic_init(&ctxs[i].failures, 0);
    }
    bt_assert_rc(baton_scope_run(g_pool, loops_body, ctxs), 0);
    bt_assert_no_thread_failures();
    for (int i = 0; i < 8; i++) {
        assert_int_equal(atomic_load(&ctxs[i].failures), 0);
        for (size_t x = 0; x < ctxs[i].n; x++)
            if (atomic_load(&ctxs[i].hits[x]) != 1)
                fail_msg("loop %d index %zu ran %u times", i, x,
                         (unsigned)atomic_load(&ctxs[i].hits[x]));
        free(ctxs[i].hits);
    }
}

/* ---- how many pieces an adaptive loop makes ------------------------------------------------ *
 * pool.h: grain 0 cuts the range into 2^(floor(log2(4 * workers)) + 1) pieces, or single indices
 * when it is shorter, "so on a pool where nobody steals, fn is called exactly min(end - begin,
 * that number) times". Nobody steals here: every worker but one is held in a blocker task, the
 * loop runs on the last one (bt_run_on_worker), and the main thread waits without stealing. The
 * same count is a lower bound when others may steal (a stolen piece is split further).
 */
typedef struct pieces_ctx {
    baton_pool *pool;
    size_t n;
    unsigned reduce; /* 0: parallel_for, 1: parallel_reduce */
    atomic_long calls;
    atomic_int blockers_started;
    atomic_int release;
    long sum;
} pieces_ctx;

static int count_piece(size_t begin, size_t end, void *arg)
{
    pieces_ctx *ctx = arg;
    BT_CHECK(begin < end);
    atomic_fetch_add(&ctx->calls, 1);
    return 0;
}

static void pieces_identity(void *out, void *arg)
{
    (void)arg;
    *(long *)out = 0;
}

static int pieces_accumulate(size_t begin, size_t end, void *inout, void *arg)
{
    pieces_ctx *ctx = arg;
    atomic_fetch_add(&ctx->calls, 1);
    *(long *)inout += (long)(end - begin);
    return 0;
}

static void pieces_combine(void *left, const void *right, void *arg)
{
    (void)arg;
    *(long *)left += *(const long *)right;
}

static int pieces_loop(void *arg)
{
    pieces_ctx *ctx = arg;
    if (ctx->reduce == 0)
        return baton_parallel_for(ctx->pool, 0, ctx->n, 0, count_piece, ctx);
    baton_reduce_ops ops = {.value_size = sizeof(long), .identity = pieces_identity,
                            .accumulate = pieces_accumulate, .combine = pieces_combine};
    return baton_parallel_reduce(ctx->pool, 0, ctx->n, 0, &ops, ctx, &ctx->sum);
}

static int pieces_blocker(void *arg)
{
    pieces_ctx *ctx = arg;
    atomic_fetch_add(&ctx->blockers_started, 1);
    BT_CHECK(bt_wait_flag(&ctx->release, 60000));
    return 0;
}

static int pieces_body(baton_scope *scope, void *arg)
{
    pieces_ctx *ctx = arg;
    int blockers = (int)baton_pool_workers(ctx->pool) - 1;
    for (int i = 0; i < blockers; i++)
        BT_CHECK(baton_scope_spawn(scope, pieces_blocker, ctx) == 0);
    uint64_t deadline = bt_now_ns() + 60000000000u;
    while (atomic_load(&ctx->blockers_started) < blockers && bt_now_ns() < deadline) {
        bt_nudge(ctx->pool);
        sched_yield();
    }
    int worker = -2;
    int rc = bt_run_on_worker(ctx->pool, pieces_loop, ctx, &worker);
    BT_CHECK(worker >= 0);
    atomic_store(&ctx->release, 1);
    return rc;
}

static long adaptive_pieces(unsigned workers)
{
    long budget = 4L * workers, pieces = 1;
    while (budget != 0) {
        pieces *= 2;
        budget /= 2;
    }
    return pieces;
}

static void test_adaptive_pieces(void **state)
{
    (void)state;
    long want = adaptive_pieces(g_workers);
    /* pool.h's figures: 8 on one worker, 16 on 2 or 3, 32 on 4. */
    assert_int_equal(adaptive_pieces(1), 8);
    assert_int_equal(adaptive_pieces(3), 16);
    assert_int_equal(adaptive_pieces(4), 32);
    size_t lengths[] = {1000000, (size_t)want, (size_t)want - 1, 5};
    for (unsigned reduce = 0; reduce < 2; reduce++) {
        for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
            pieces_ctx ctx = {.pool = g_pool, .n = lengths[i], .reduce = reduce, .sum = -1};
            atomic_init(&ctx.calls, 0);
            atomic_init(&ctx.blockers_started, 0);
            atomic_init(&ctx.release, 0);
            bt_assert_rc(baton_scope_run(g_pool, pieces_body, &ctx), 0);
            bt_assert_no_thread_failures();
            long expect = (long)lengths[i] < want ? (long)lengths[i] : want;
            if (atomic_load(&ctx.calls) != expect)
                fail_msg("%s of %zu indices, grain 0, %u workers, nobody stealing: %ld calls, "
                         "expected %ld", reduce ? "parallel_reduce" : "parallel_for", lengths[i],
                         g_workers, atomic_load(&ctx.calls), expect);
            if (reduce)
                assert_int_equal(ctx.sum, (long)lengths[i]);
        }
    }
    /* From the main thread, with every worker free to steal: never fewer. */
    pieces_ctx ctx = {.pool = g_pool, .n = 1000000};
    atomic_init(&ctx.calls, 0);
    bt_assert_rc(pieces_loop(&ctx), 0);
    assert_true(atomic_load(&ctx.calls) >= want);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_range_does_not_call_fn),
        cmocka_unit_test(test_small_ranges_all_grains),
        cmocka_unit_test(test_million_indices),
        cmocka_unit_test(test_huge_offsets),
        cmocka_unit_test(test_random_ranges),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_nested_three_levels),
        cmocka_unit_test(test_outside_threads_within_slots),
        cmocka_unit_test(test_outside_threads_crowding_one_slot),
        cmocka_unit_test(test_outside_threads_beyond_slots),
        cmocka_unit_test(test_outside_threads_no_external_slots),
        cmocka_unit_test(test_outside_threads_single_slot),
        cmocka_unit_test(test_outside_threads_crowd),
        cmocka_unit_test(test_loops_inside_scope_tasks),
        cmocka_unit_test(test_adaptive_pieces),
    };
    return cmocka_run_group_tests_name("pool/for", tests, group_setup, group_teardown);
}
