/*
 * test_pool_reduce.c — baton_parallel_reduce at one worker count (--workers N; CTest runs 1, 2,
 * 4, 8, 16):
 *  - a uint64 sum over many ranges and grains equals the serial sum;
 *  - two associative, non-commutative reductions equal the serial left-to-right fold, which
 *    checks that combine gets (left, right) in index order: runs of indices encoded as
 *    (first, last, count) that must join end to start, and 2x2 matrix products mod 2^64;
 *  - the empty range gives the identity; accumulators are aligned to max_align_t, including the
 *    largest allowed (BATON_REDUCE_MAX_VALUE_SIZE bytes);
 *  - BATON_REDUCE_DETERMINISTIC: 10^6 doubles of mixed magnitude sum to bit-identical results
 *    on pools of 1, 2, 3, 8, 16 and N workers, for grain 0 and explicit grains, on every run;
 *  - reductions nested inside reductions;
 *  - invalid arguments (value_size 0 or too big, NULL callbacks, unknown flags, begin > end)
 *    give BATON_EINVAL, call nothing and leave out_value untouched.
 */
#include "support/bt_common.h"

#include <math.h>

BT_DEFINE_POOL_GROUP()

/* Checks that an accumulator pointer is aligned as documented. The tests' own out_value buffers
 * are aligned too, so a library that folds straight into out_value is not flagged. */
#define CHECK_ALIGNED(ptr)                                                                       \
    BT_CHECK_MSG((uintptr_t)(ptr) % _Alignof(max_align_t) == 0,                                  \
                 "accumulator %p not aligned to %zu", (const void *)(ptr),                       \
                 (size_t)_Alignof(max_align_t))

/* Pieces handed to accumulate must lie in the range and respect the grain. */
typedef struct range_check {
    size_t begin, end, grain;
    bool deterministic;
} range_check;

static void check_piece(const range_check *rc, size_t begin, size_t end)
{
    size_t limit = rc->grain;
    if (rc->deterministic && limit == 0)
        limit = BATON_REDUCE_DEFAULT_DETERMINISTIC_GRAIN;
    BT_CHECK_MSG(begin >= rc->begin && end <= rc->end && begin <= end &&
                     (limit == 0 || end - begin <= limit),
                 "reduce [%zu, %zu) grain %zu got piece [%zu, %zu)", rc->begin, rc->end,
                 rc->grain, begin, end);
}

/* ---- uint64 sum ------------------------------------------------------------------------------ */

static uint64_t value_at(size_t i)
{
    return baton_mix64((uint64_t)i);
}

static void sum_identity(void *out, void *ctx)
{
    (void)ctx;
    CHECK_ALIGNED(out);
    *(uint64_t *)out = 0;
}

static int sum_accumulate(size_t begin, size_t end, void *inout, void *ctx)
{
    check_piece(ctx, begin, end);
    CHECK_ALIGNED(inout);
    uint64_t sum = *(uint64_t *)inout;
    for (size_t i = begin; i < end; i++)
        sum += value_at(i);
    *(uint64_t *)inout = sum;
    return 0;
}

static void sum_combine(void *left, const void *right, void *ctx)
{
    (void)ctx;
    CHECK_ALIGNED(left);
    CHECK_ALIGNED(right);
    *(uint64_t *)left += *(const uint64_t *)right;
}

static const baton_reduce_ops sum_ops = {sizeof(uint64_t), sum_identity, sum_accumulate,
                                         sum_combine, 0};

static void check_sum(size_t begin, size_t end, size_t grain, unsigned flags)
{
    uint64_t expected = 0;
    for (size_t i = begin; i < end; i++)
        expected += value_at(i);
    baton_reduce_ops ops = sum_ops;
    ops.flags = flags;
    range_check ctx = {begin, end, grain, (flags & BATON_REDUCE_DETERMINISTIC) != 0};
    _Alignas(max_align_t) uint64_t got = 0x5555;
    int rc = baton_parallel_reduce(g_pool, begin, end, grain, &ops, &ctx, &got);
    bt_assert_no_thread_failures();
    if (rc != 0)
        fail_msg("sum [%zu, %zu) grain %zu flags %u: %s", begin, end, grain, flags,
                 baton_err_name(rc));
    if (got != expected)
        fail_msg("sum [%zu, %zu) grain %zu flags %u: got %#llx, serial %#llx", begin, end, grain,
                 flags, (unsigned long long)got, (unsigned long long)expected);
}

static void test_sum_matches_serial(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 2, 3, 7, 64, 101, 1000, 4096, 10007, 100003};
    const size_t begins[] = {0, 5, SIZE_MAX / 2};
    const size_t grains[] = {0, 1, 3, 64, 5000, SIZE_MAX};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t b = 0; b < sizeof begins / sizeof begins[0]; b++)
            for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
                if (sizes[s] > 20000 && grains[g] == 1 && begins[b] != 0)
                    continue; /* keep it quick: one run of 10^5 single-index pieces is enough */
                check_sum(begins[b], begins[b] + sizes[s], grains[g], 0);
                check_sum(begins[b], begins[b] + sizes[s], grains[g],
                          BATON_REDUCE_DETERMINISTIC);
            }
    size_t big = bt_scaled(2e6, 100000);
    check_sum(0, big, 0, 0);
    check_sum(0, big, 0, BATON_REDUCE_DETERMINISTIC);
    /* The very top of size_t. */
    check_sum(SIZE_MAX - 5000, SIZE_MAX, 0, 0);
    check_sum(SIZE_MAX - 5000, SIZE_MAX, 7, 0);
    check_sum(SIZE_MAX - 5000, SIZE_MAX, 0, BATON_REDUCE_DETERMINISTIC);
}

/* ---- runs: (first, last, count), which only concatenate end to start ------------------------- */

typedef struct run_value {
    uint64_t first, last, count;
    uint64_t broken; /* set when two runs that do not touch were joined, or in the wrong order */
} run_value;

static void run_identity(void *out, void *ctx)
{
    (void)ctx;
    CHECK_ALIGNED(out);
    run_value empty = {0, 0, 0, 0};
    memcpy(out, &empty, sizeof empty);
}

static void run_join(run_value *left, const run_value *right)
{
    if (right->count == 0) {
        left->broken |= right->broken;
        return;
    }
    if (left->count == 0) {
        uint64_t broken = left->broken;
        *left = *right;
        left->broken |= broken;
        return;
    }
    if (left->last + 1 != right->first)
        left->broken = 1;
    left->last = right->last;
    left->count += right->count;
    left->broken |= right->broken;
}

static int run_accumulate(size_t begin, size_t end, void *inout, void *ctx)
{
    check_piece(ctx, begin, end);
    CHECK_ALIGNED(inout);
    if (begin == end)
        return 0;
    run_value piece = {begin, end - 1, end - begin, 0};
    run_join(inout, &piece);
    return 0;
}

static void run_combine(void *left, const void *right, void *ctx)
{
    (void)ctx;
    CHECK_ALIGNED(left);
    CHECK_ALIGNED(right);
    run_join(left, right);
}

static void check_runs(size_t begin, size_t end, size_t grain, unsigned flags)
{
    baton_reduce_ops ops = {sizeof(run_value), run_identity, run_accumulate, run_combine, flags};
    range_check ctx = {begin, end, grain, (flags & BATON_REDUCE_DETERMINISTIC) != 0};
    _Alignas(max_align_t) run_value got = {7, 7, 7, 7};
    int rc = baton_parallel_reduce(g_pool, begin, end, grain, &ops, &ctx, &got);
    bt_assert_no_thread_failures();
    if (rc != 0)
        fail_msg("runs [%zu, %zu) grain %zu: %s", begin, end, grain, baton_err_name(rc));
    if (begin == end) {
        if (got.count != 0 || got.broken != 0)
            fail_msg("runs over an empty range: count %llu broken %llu, expected the identity",
                     (unsigned long long)got.count, (unsigned long long)got.broken);
        return;
    }
    if (got.broken || got.first != begin || got.last != end - 1 || got.count != end - begin)
        fail_msg("runs [%zu, %zu) grain %zu flags %u: got first %llu last %llu count %llu%s "
                 "(left/right order or coverage wrong)",
                 begin, end, grain, flags, (unsigned long long)got.first,
                 (unsigned long long)got.last, (unsigned long long)got.count,
                 got.broken ? " broken" : "");
}

static void test_noncommutative_runs_keep_order(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 2, 3, 5, 17, 100, 1023, 1024, 1025, 9999, 100000};
    const size_t grains[] = {0, 1, 2, 10, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
            check_runs(11, 11 + sizes[s], grains[g], 0);
            check_runs(11, 11 + sizes[s], grains[g], BATON_REDUCE_DETERMINISTIC);
        }
    size_t big = bt_scaled(1e6, 50000);
    check_runs(0, big, 0, 0);
    check_runs(0, big, 1, 0);
    check_runs(0, big, 0, BATON_REDUCE_DETERMINISTIC);
}

/* ---- 2x2 matrices mod 2^64: associative, not commutative ------------------------------------- */

typedef struct mat2 {
    uint64_t a, b, c, d; /* [[a, b], [c, d]] */
} mat2;

static mat2 mat_mul(mat2 x, mat2 y)
{
    mat2 r = {x.a * y.a + x.b * y.c, x.a * y.b + x.b * y.d, x.c * y.a + x.d * y.c,
              x.c * y.b + x.d * y.d};
    return r;
}

static mat2 mat_at(size_t i)
{
    uint64_t h = baton_mix64((uint64_t)i + 1);
    mat2 m = {1, h & 0xffff, (h >> 16) & 0xffff, 1 + ((h >> 32) & 1)};
    return m;
}

static void mat_identity(void *out, void *ctx)
{
    (void)ctx;
    CHECK_ALIGNED(out);
    mat2 id = {1, 0, 0, 1};
    memcpy(out, &id, sizeof id);
}

static int mat_accumulate(size_t begin, size_t end, void *inout, void *ctx)
{
    check_piece(ctx, begin, end);
    CHECK_ALIGNED(inout);
    mat2 acc;
    memcpy(&acc, inout, sizeof acc);
    for (size_t i = begin; i < end; i++)
        acc = mat_mul(acc, mat_at(i));
    memcpy(inout, &acc, sizeof acc);
    return 0;
}

static void mat_combine(void *left, const void *right, void *ctx)
{
    (void)ctx;
    mat2 l, r;
    memcpy(&l, left, sizeof l);
    memcpy(&r, right, sizeof r);
    l = mat_mul(l, r);
    memcpy(left, &l, sizeof l);
}

static void check_matrices(size_t begin, size_t end, size_t grain, unsigned flags)
{
    mat2 expected = {1, 0, 0, 1};
    for (size_t i = begin; i < end; i++)
        expected = mat_mul(expected, mat_at(i));
    baton_reduce_ops ops = {sizeof(mat2), mat_identity, mat_accumulate, mat_combine, flags};
    range_check ctx = {begin, end, grain, (flags & BATON_REDUCE_DETERMINISTIC) != 0};
    _Alignas(max_align_t) mat2 got = {0, 0, 0, 0};
    int rc = baton_parallel_reduce(g_pool, begin, end, grain, &ops, &ctx, &got);
    bt_assert_no_thread_failures();
    if (rc != 0)
        fail_msg("matrices [%zu, %zu) grain %zu: %s", begin, end, grain, baton_err_name(rc));
    if (memcmp(&got, &expected, sizeof got) != 0)
        fail_msg("matrix product [%zu, %zu) grain %zu flags %u differs from the serial fold",
                 begin, end, grain, flags);
}

static void test_noncommutative_matrices_equal_serial_fold(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 2, 3, 31, 500, 4097, 50000};
    const size_t grains[] = {0, 1, 4, 333};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
            check_matrices(0, sizes[s], grains[g], 0);
            check_matrices(1000, 1000 + sizes[s], grains[g], BATON_REDUCE_DETERMINISTIC);
        }
    check_matrices(0, bt_scaled(5e5, 20000), 0, 0);
}

/* ---- empty range, biggest accumulator --------------------------------------------------------- */

static void magic_identity(void *out, void *ctx)
{
    (void)ctx;
    *(uint64_t *)out = UINT64_C(0x1d1d1d1d);
}

static void test_empty_range_gives_identity(void **state)
{
    (void)state;
    baton_reduce_ops ops = sum_ops;
    ops.identity = magic_identity;
    const size_t points[] = {0, 1, 999, SIZE_MAX / 2, SIZE_MAX};
    for (size_t p = 0; p < sizeof points / sizeof points[0]; p++)
        for (unsigned flags = 0; flags <= BATON_REDUCE_DETERMINISTIC; flags++) {
            ops.flags = flags;
            range_check ctx = {points[p], points[p], 0, flags != 0};
            _Alignas(max_align_t) uint64_t got = 0;
            bt_assert_rc(baton_parallel_reduce(g_pool, points[p], points[p], 0, &ops, &ctx, &got),
                         0);
            assert_true(got == UINT64_C(0x1d1d1d1d));
        }
    bt_assert_no_thread_failures();
}

enum { LANES = BATON_REDUCE_MAX_VALUE_SIZE / sizeof(uint64_t) };

static void lanes_identity(void *out, void *ctx)
{
    (void)ctx;
    CHECK_ALIGNED(out);
    memset(out, 0, BATON_REDUCE_MAX_VALUE_SIZE);
}

static int lanes_accumulate(size_t begin, size_t end, void *inout, void *ctx)
{
    (void)ctx;
    CHECK_ALIGNED(inout);
    uint64_t *lanes = inout;
    for (size_t i = begin; i < end; i++)
        lanes[i % LANES] += value_at(i);
    return 0;
}

static void lanes_combine(void *left, const void *right, void *ctx)
{
    (void)ctx;
    CHECK_ALIGNED(left);
    CHECK_ALIGNED(right);
    uint64_t *l = left;
    const uint64_t *r = right;
    for (size_t k = 0; k < LANES; k++)
        l[k] += r[k];
}

static void test_max_value_size(void **state)
{
    (void)state;
    size_t n = 100000;
    uint64_t expected[LANES] = {0};
    for (size_t i = 0; i < n; i++)
        expected[i % LANES] += value_at(i);
    for (unsigned flags = 0; flags <= BATON_REDUCE_DETERMINISTIC; flags++) {
        baton_reduce_ops ops = {BATON_REDUCE_MAX_VALUE_SIZE, lanes_identity, lanes_accumulate,
                                lanes_combine, flags};
        _Alignas(max_align_t) uint64_t got[LANES + 2];
        got[LANES] = got[LANES + 1] = UINT64_C(0xfeedface);
        bt_assert_rc(baton_parallel_reduce(g_pool, 0, n, 0, &ops, NULL, got), 0);
        assert_memory_equal(got, expected, sizeof expected);
        /* Nothing written past value_size bytes. */
        assert_true(got[LANES] == UINT64_C(0xfeedface) && got[LANES + 1] == UINT64_C(0xfeedface));
    }
    bt_assert_no_thread_failures();
}

/* An odd value_size (not a multiple of anything) works and is copied exactly. */
typedef struct odd_value {
    unsigned char bytes[13];
} odd_value;

static void odd_identity(void *out, void *ctx)
{
    (void)ctx;
    memset(out, 0, sizeof(odd_value));
}

static int odd_accumulate(size_t begin, size_t end, void *inout, void *ctx)
{
    (void)ctx;
    unsigned char *bytes = inout;
    for (size_t i = begin; i < end; i++)
        bytes[i % 13] = (unsigned char)(bytes[i % 13] + (unsigned char)value_at(i));
    return 0;
}

static void odd_combine(void *left, const void *right, void *ctx)
{
    (void)ctx;
    unsigned char *l = left;
    const unsigned char *r = right;
    for (size_t k = 0; k < 13; k++)
        l[k] = (unsigned char)(l[k] + r[k]);
}

static void test_odd_value_size(void **state)
{
    (void)state;
    odd_value expected;
    memset(&expected, 0, sizeof expected);
    size_t n = 77777;
    for (size_t i = 0; i < n; i++)
        expected.bytes[i % 13] = (unsigned char)(expected.bytes[i % 13] + (unsigned char)value_at(i));
    baton_reduce_ops ops = {13, odd_identity, odd_accumulate, odd_combine, 0};
    unsigned char got[16];
    memset(got, 0xcc, sizeof got);
    bt_assert_rc(baton_parallel_reduce(g_pool, 0, n, 3, &ops, NULL, got), 0);
    assert_memory_equal(got, expected.bytes, 13);
    assert_int_equal(got[13], 0xcc);
    assert_int_equal(got[14], 0xcc);
    assert_int_equal(got[15], 0xcc);
}

/* ---- deterministic floating-point sums -------------------------------------------------------- */

static double *g_doubles;
static size_t g_n_doubles;

static void dsum_identity(void *out, void *ctx)
{
    (void)ctx;
    *(double *)out = 0.0;
}

static int dsum_accumulate(size_t begin, size_t end, void *inout, void *ctx)
{
    (void)ctx;
    double sum = *(double *)inout;
    for (size_t i = begin; i < end; i++)
        sum += g_doubles[i];
    *(double *)inout = sum;
    return 0;
}

static void dsum_combine(void *left, const void *right, void *ctx)
{
    (void)ctx;
    *(double *)left += *(const double *)right;
}

static double deterministic_sum(baton_pool *pool, size_t grain)
{
    baton_reduce_ops ops = {sizeof(double), dsum_identity, dsum_accumulate, dsum_combine,
                            BATON_REDUCE_DETERMINISTIC};
    double out = -1.0;
    int rc = baton_parallel_reduce(pool, 0, g_n_doubles, grain, &ops, NULL, &out);
    if (rc != 0)
        fail_msg("deterministic reduce grain %zu: %s", grain, baton_err_name(rc));
    return out;
}

static void test_deterministic_sum_bit_identical(void **state)
{
    (void)state;
    g_n_doubles = bt_scaled(1e6, 100000);
    g_doubles = malloc(g_n_doubles * sizeof *g_doubles);
    assert_non_null(g_doubles);
    for (size_t i = 0; i < g_n_doubles; i++)
        g_doubles[i] = sin((double)i) * pow(10.0, (double)((int)(i % 40) - 20));

    const size_t grains[] = {0, 1000, 4096, 77777, 17};
    double reference[sizeof grains / sizeof grains[0]];
    for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
        reference[g] = deterministic_sum(g_pool, grains[g]);
    /* Grain 0 means BATON_REDUCE_DEFAULT_DETERMINISTIC_GRAIN. */
    double default_grain = deterministic_sum(g_pool, BATON_REDUCE_DEFAULT_DETERMINISTIC_GRAIN);
    assert_memory_equal(&reference[0], &default_grain, sizeof(double));

    const unsigned counts[] = {1, 2, 3, 8, 16};
    const size_t repeats = 2;
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        baton_pool *pool = bt_pool_create(counts[c]);
        for (size_t r = 0; r < repeats; r++)
            for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
                if (grains[g] < 100 && r > 0)
                    continue; /* tiny grains are slow; once is enough */
                double got = deterministic_sum(pool, grains[g]);
                if (memcmp(&got, &reference[g], sizeof got) != 0)
                    fail_msg("grain %zu: %u workers gave %.17g, %u workers gave %.17g", grains[g],
                             counts[c], got, g_workers, reference[g]);
            }
        bt_pool_destroy(pool);
    }
    /* And again on this test's pool, after the others ran. */
    for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
        double got = deterministic_sum(g_pool, grains[g]);
        assert_memory_equal(&got, &reference[g], sizeof got);
    }
    /* The data is not trivially summed the same way in every order: a plain left fold differs
     * from at least one chunked result (otherwise this test could not detect anything). */
    double serial = 0.0;
    for (size_t i = 0; i < g_n_doubles; i++)
        serial += g_doubles[i];
    bool any_differs = false;
    for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
        any_differs |= memcmp(&serial, &reference[g], sizeof serial) != 0;
    printf("# deterministic sum %.17g (serial %.17g)%s\n", reference[0], serial,
           any_differs ? "" : " - identical to serial for every grain");
    free(g_doubles);
    g_doubles = NULL;
}

/* ---- reductions inside reductions -------------------------------------------------------------- *
 * Row i's value is a reduction over j in [0, i % 97 + 1) of value_at(i * 1000 + j), run from
 * inside the outer accumulate (any thread, any depth).
 */
static int inner_accumulate(size_t begin, size_t end, void *inout, void *ctx)
{
    size_t row = *(size_t *)ctx;
    uint64_t sum = *(uint64_t *)inout;
    for (size_t j = begin; j < end; j++)
        sum += value_at(row * 1000 + j);
    *(uint64_t *)inout = sum;
    return 0;
}

static int outer_accumulate(size_t begin, size_t end, void *inout, void *ctx)
{
    (void)ctx;
    uint64_t sum = *(uint64_t *)inout;
    for (size_t i = begin; i < end; i++) {
        baton_reduce_ops inner = {sizeof(uint64_t), sum_identity, inner_accumulate, sum_combine,
                                  i % 2 ? BATON_REDUCE_DETERMINISTIC : 0};
        _Alignas(max_align_t) uint64_t row_sum = 0;
        size_t row = i;
        int rc = baton_parallel_reduce(g_pool, 0, i % 97 + 1, i % 3, &inner, &row, &row_sum);
        if (rc != 0)
            return rc;
        sum += row_sum;
    }
    *(uint64_t *)inout = sum;
    return 0;
}

static void test_nested_reductions(void **state)
{
    (void)state;
    size_t rows = bt_scaled(3000, 300);
    uint64_t expected = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < i % 97 + 1; j++)
            expected += value_at(i * 1000 + j);
    baton_reduce_ops outer = {sizeof(uint64_t), sum_identity, outer_accumulate, sum_combine, 0};
    for (size_t grain = 0; grain < 3; grain++) {
        _Alignas(max_align_t) uint64_t got = 0;
        bt_assert_rc(baton_parallel_reduce(g_pool, 0, rows, grain * 7, &outer, NULL, &got), 0);
        assert_true(got == expected);
    }
    bt_assert_no_thread_failures();
}

/* ---- invalid arguments ----------------------------------------------------------------------- */

static atomic_int g_callback_calls;

static void counting_identity(void *out, void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&g_callback_calls, 1);
    memset(out, 0, sizeof(uint64_t));
}

static int counting_accumulate(size_t begin, size_t end, void *inout, void *ctx)
{
    (void)begin;
    (void)end;
    (void)inout;
    (void)ctx;
    atomic_fetch_add(&g_callback_calls, 1);
    return 0;
}

static void counting_combine(void *left, const void *right, void *ctx)
{
    (void)left;
    (void)right;
    (void)ctx;
    atomic_fetch_add(&g_callback_calls, 1);
}

static void expect_einval(const baton_reduce_ops *ops, size_t begin, size_t end, bool null_pool,
                          bool null_out, const char *what)
{
    unsigned char out[BATON_REDUCE_MAX_VALUE_SIZE + 64];
    memset(out, 0xa5, sizeof out);
    unsigned char untouched[sizeof out];
    memcpy(untouched, out, sizeof out);
    atomic_store(&g_callback_calls, 0);
    int rc = baton_parallel_reduce(null_pool ? NULL : g_pool, begin, end, 0, ops, NULL,
                                   null_out ? NULL : out);
    if (rc != BATON_EINVAL)
        fail_msg("%s: returned %s, expected BATON_EINVAL", what, baton_err_name(rc));
    if (memcmp(out, untouched, sizeof out) != 0)
        fail_msg("%s: out_value was written on error", what);
    if (atomic_load(&g_callback_calls) != 0)
        fail_msg("%s: %d callback(s) ran on an invalid call", what,
                 atomic_load(&g_callback_calls));
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    const baton_reduce_ops good = {sizeof(uint64_t), counting_identity, counting_accumulate,
                                   counting_combine, 0};
    baton_reduce_ops ops = good;
    ops.value_size = 0;
    expect_einval(&ops, 0, 100, false, false, "value_size 0");
    ops.value_size = BATON_REDUCE_MAX_VALUE_SIZE + 1;
    expect_einval(&ops, 0, 100, false, false, "value_size MAX + 1");
    ops.value_size = SIZE_MAX;
    expect_einval(&ops, 0, 100, false, false, "value_size SIZE_MAX");
    ops = good;
    ops.identity = NULL;
    expect_einval(&ops, 0, 100, false, false, "NULL identity");
    ops = good;
    ops.accumulate = NULL;
    expect_einval(&ops, 0, 100, false, false, "NULL accumulate");
    ops = good;
    ops.combine = NULL;
    expect_einval(&ops, 0, 100, false, false, "NULL combine");
    ops = good;
    ops.flags = 1u << 1;
    expect_einval(&ops, 0, 100, false, false, "unknown flag 1 << 1");
    ops.flags = BATON_REDUCE_DETERMINISTIC | (1u << 31);
    expect_einval(&ops, 0, 100, false, false, "unknown flag 1 << 31");
    expect_einval(&good, 100, 99, false, false, "begin > end");
    expect_einval(&good, 0, 100, true, false, "NULL pool");
    expect_einval(&good, 0, 100, false, true, "NULL out_value");
    expect_einval(NULL, 0, 100, false, false, "NULL ops");
    /* The same invalid things on an empty range are still invalid. */
    ops = good;
    ops.value_size = 0;
    expect_einval(&ops, 5, 5, false, false, "value_size 0 on an empty range");
    ops = good;
    ops.combine = NULL;
    expect_einval(&ops, 5, 5, false, false, "NULL combine on an empty range");
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_matches_serial),
        cmocka_unit_test(test_noncommutative_runs_keep_order),
        cmocka_unit_test(test_noncommutative_matrices_equal_serial_fold),
        cmocka_unit_test(test_empty_range_gives_identity),
        cmocka_unit_test(test_max_value_size),
        cmocka_unit_test(test_odd_value_size),
        cmocka_unit_test(test_deterministic_sum_bit_identical),
        cmocka_unit_test(test_nested_reductions),
        cmocka_unit_test(test_invalid_arguments),
    };
    return cmocka_run_group_tests_name("pool/reduce", tests, group_setup, group_teardown);
}
