/*
 * parallel_sum.c — parallel loops and reductions.
 *
 * Shows:
 *  - baton_parallel_for filling two arrays, with grain 0 (the pool splits the range adaptively);
 *  - baton_parallel_reduce summing integers: exact, so any split gives the same answer;
 *  - baton_parallel_reduce with BATON_REDUCE_DETERMINISTIC summing doubles. Floating-point
 *    addition is not associative, so an ordinary parallel sum of doubles may change in its last
 *    bits with the way the range was split. The deterministic mode fixes the chunks and the
 *    order in which they are combined, so the sum has the same bits on 1 worker and on 4.
 *
 * Exits 1 if the integer sum is wrong, the double sum is far from the serial one, or the
 * deterministic sums of the 1-worker and 4-worker pools differ in any bit.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <baton.h>

#define N_ITEMS ((size_t)1 << 20)

struct arrays {
    uint64_t *counts; /* counts[i] = i */
    double *terms;    /* terms[i] = 1 / (i + 1): a harmonic series, rounding at every step */
};

static int fill_range(size_t begin, size_t end, void *ctx)
{
    struct arrays *a = ctx;
    for (size_t i = begin; i < end; i++) {
        a->counts[i] = i;
        a->terms[i] = 1.0 / (double)(i + 1);
    }
    return 0;
}

/* The reduction callbacks get the accumulator as void *; baton aligns it for any type. */
static void u64_identity(void *out_value, void *ctx)
{
    (void)ctx;
    *(uint64_t *)out_value = 0;
}

static int u64_accumulate(size_t begin, size_t end, void *inout_value, void *ctx)
{
    const struct arrays *a = ctx;
    uint64_t sum = *(uint64_t *)inout_value;
    for (size_t i = begin; i < end; i++)
        sum += a->counts[i];
    *(uint64_t *)inout_value = sum;
    return 0;
}

static void u64_combine(void *inout_left, const void *right, void *ctx)
{
    (void)ctx;
    *(uint64_t *)inout_left += *(const uint64_t *)right;
}

static void f64_identity(void *out_value, void *ctx)
{
    (void)ctx;
    *(double *)out_value = 0.0;
}

static int f64_accumulate(size_t begin, size_t end, void *inout_value, void *ctx)
{
    const struct arrays *a = ctx;
    double sum = *(double *)inout_value;
    for (size_t i = begin; i < end; i++)
        sum += a->terms[i];
    *(double *)inout_value = sum;
    return 0;
}

static void f64_combine(void *inout_left, const void *right, void *ctx)
{
    (void)ctx;
    *(double *)inout_left += *(const double *)right;
}

/* Fills the arrays and reduces them on a pool of `workers` threads. */
static int run_on(unsigned workers, struct arrays *a, uint64_t *out_count_sum, double *out_term_sum)
{
    baton_pool_config config = {.struct_size = sizeof config, .n_workers = workers};
    baton_pool *pool;
    int rc = baton_pool_create(&config, &pool);
    if (rc != 0)
        return rc;

    const baton_reduce_ops u64_sum = {
        .value_size = sizeof(uint64_t),
        .identity = u64_identity,
        .accumulate = u64_accumulate,
        .combine = u64_combine,
    };
    /* grain 0 with the deterministic flag: chunks of BATON_REDUCE_DEFAULT_DETERMINISTIC_GRAIN. */
    const baton_reduce_ops f64_sum = {
        .value_size = sizeof(double),
        .identity = f64_identity,
        .accumulate = f64_accumulate,
        .combine = f64_combine,
        .flags = BATON_REDUCE_DETERMINISTIC,
    };

    rc = baton_parallel_for(pool, 0, N_ITEMS, 0, fill_range, a);
    if (rc == 0)
        rc = baton_parallel_reduce(pool, 0, N_ITEMS, 0, &u64_sum, a, out_count_sum);
    if (rc == 0)
        rc = baton_parallel_reduce(pool, 0, N_ITEMS, 0, &f64_sum, a, out_term_sum);

    int destroy_rc = baton_pool_destroy(pool);
    return rc != 0 ? rc : destroy_rc;
}

static uint64_t double_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

int main(void)
{
    struct arrays a = {
        .counts = malloc(N_ITEMS * sizeof *a.counts),
        .terms = malloc(N_ITEMS * sizeof *a.terms),
    };
    if (a.counts == NULL || a.terms == NULL) {
        fprintf(stderr, "parallel_sum: out of memory\n");
        return 1;
    }

    const unsigned worker_counts[2] = {1, 4};
    uint64_t count_sums[2];
    double term_sums[2];
    for (int k = 0; k < 2; k++) {
        /* Clear the arrays so that each pool's parallel_for has to fill them again. */
        memset(a.counts, 0, N_ITEMS * sizeof *a.counts);
        memset(a.terms, 0, N_ITEMS * sizeof *a.terms);
        int rc = run_on(worker_counts[k], &a, &count_sums[k], &term_sums[k]);
        if (rc != 0) {
            fprintf(stderr, "parallel_sum on %u workers: %s: %s (%s)\n", worker_counts[k],
                    baton_err_name(rc), baton_strerror(rc), baton_last_error_message());
            return 1;
        }
        printf("%u worker(s): sum of 0..%zu = %" PRIu64 ", harmonic sum = %.17g (bits %016" PRIx64
               ")\n",
               worker_counts[k], N_ITEMS - 1, count_sums[k], term_sums[k],
               double_bits(term_sums[k]));
    }

    int failed = 0;
    const uint64_t expected_count_sum = (uint64_t)N_ITEMS * (N_ITEMS - 1) / 2;
    for (int k = 0; k < 2; k++) {
        if (count_sums[k] != expected_count_sum) {
            fprintf(stderr, "wrong integer sum on %u workers: expected %" PRIu64 "\n",
                    worker_counts[k], expected_count_sum);
            failed = 1;
        }
    }

    /*
     * The serial sum rounds in another order, so it may differ in the last bits. A missing or
     * doubled term would move it by at least 1 / N_ITEMS, far more than the tolerance.
     */
    double serial = 0.0;
    for (size_t i = 0; i < N_ITEMS; i++)
        serial += a.terms[i];
    double diff = term_sums[0] > serial ? term_sums[0] - serial : serial - term_sums[0];
    if (!(diff <= 1e-9 * serial)) {
        fprintf(stderr, "harmonic sum %.17g is too far from the serial %.17g\n", term_sums[0],
                serial);
        failed = 1;
    }
    if (double_bits(term_sums[0]) != double_bits(term_sums[1])) {
        fprintf(stderr, "deterministic reduce gave different bits on 1 and 4 workers\n");
        failed = 1;
    }

    free(a.counts);
    free(a.terms);
    if (!failed)
        printf("deterministic reduce: same bits on 1 and 4 workers\n");
    return failed;
}
