/*
 * bt_engine.h — the workload the step engine's tests share (header-only): a state of three
 * columns (x double, y float, n int64) and two phases over it, the second reading rows of other
 * partitions that the first wrote, so that a missing barrier between phases shows. Used by
 * test_engine_step.c, test_engine_checkpoint.c and test_engine_resume.c.
 *
 * bt_build_state uses no cmocka asserts, so that a forked child can build one too; bt_new_state is
 * the asserting form for the main thread. The functions are static inline so that a test that
 * does not call one of them compiles without a warning.
 */
#ifndef BT_SUPPORT_ENGINE_H
#define BT_SUPPORT_ENGINE_H

#include "support/bt_common.h"

#include "baton/engine.h"

enum { BT_COL_X, BT_COL_Y, BT_COL_N };

/* The columns each phase writes, for its baton_phase_spec. */
static const size_t bt_writes_advance[] = {BT_COL_X, BT_COL_N};
static const size_t bt_writes_couple[] = {BT_COL_Y};

/* A state of `rows` rows (ids 7, 12, 17, ...; x = row / 4, y = 0, n = 7 * row) into *out, or,
 * with x_as_float, the same with column x of type float and left 0 (another schema, for
 * mismatch tests). Returns baton's error code; *out is untouched on failure. */
static inline int bt_build_state(size_t rows, bool x_as_float, baton_state **out)
{
    const baton_column_spec cols[] = {{"x", x_as_float ? BATON_COLUMN_FLOAT : BATON_COLUMN_DOUBLE},
                                      {"y", BATON_COLUMN_FLOAT},
                                      {"n", BATON_COLUMN_INT64}};
    baton_state *st = NULL;
    uint64_t *ids = malloc((rows + 1) * sizeof *ids);
    int rc = ids == NULL ? BATON_ENOMEM : baton_state_create(cols, 3, &st);
    for (size_t i = 0; rc == 0 && i < rows; i++)
        ids[i] = 7 + 5 * i;
    if (rc == 0)
        rc = baton_state_add_rows(st, ids, rows, NULL);
    free(ids);
    if (rc != 0) {
        baton_state_destroy(st);
        return rc;
    }
    for (size_t i = 0; i < rows; i++) {
        if (!x_as_float)
            baton_state_double(st, BT_COL_X)[i] = (double)i * 0.25;
        baton_state_int64(st, BT_COL_N)[i] = (int64_t)(i * 7);
    }
    *out = st;
    return 0;
}

/* bt_build_state that fails the running test (main thread only) when it does not succeed. */
static inline baton_state *bt_new_state(size_t rows, bool x_as_float)
{
    baton_state *st = NULL;
    bt_assert_rc(bt_build_state(rows, x_as_float, &st), 0);
    return st;
}

/* Phase advance: x += 1 + n % 3 + step % 5 (the step matters, so a wrong counter shows);
 * n += 1. */
static inline int bt_advance(baton_state *st, size_t begin, size_t end, size_t partition,
                          uint64_t step, void *ctx)
{
    (void)partition;
    (void)ctx;
    double *x = baton_state_double(st, BT_COL_X);
    int64_t *n = baton_state_int64(st, BT_COL_N);
    for (size_t i = begin; i < end; i++) {
        x[i] += 1.0 + (double)(n[i] % 3) + (double)(step % 5);
        n[i] += 1;
    }
    return 0;
}

/* Phase couple: y = x[i] - x[(i + 1) % rows]: reads a row of the next partition. */
static inline int bt_couple(baton_state *st, size_t begin, size_t end, size_t partition,
                            uint64_t step, void *ctx)
{
    (void)partition;
    (void)step;
    (void)ctx;
    size_t rows = baton_state_rows(st);
    const double *x = baton_state_double(st, BT_COL_X);
    float *y = baton_state_float(st, BT_COL_Y);
    for (size_t i = begin; i < end; i++)
        y[i] = (float)(x[i] - x[(i + 1) % rows]);
    return 0;
}

/* Phase smooth (halo 2, writes y): y = the sum of x over rows i - 2 .. i + 2 of the global
 * state (rows past its ends count 0), the rows outside the partition read through
 * baton_engine_halo, so that it runs alike under every executor. ctx: the engine's handle's
 * address (the handle exists only once the engine does). */
#define BT_SMOOTH_HALO 2u
static const size_t bt_writes_smooth[] = {BT_COL_Y};

static inline int bt_smooth(baton_state *st, size_t begin, size_t end, size_t partition,
                            uint64_t step, void *ctx)
{
    (void)step;
    baton_engine *const *engine = ctx;
    baton_halo h;
    int rc = baton_engine_halo(*engine, partition, BT_COL_X, &h);
    if (rc != 0)
        return rc;
    const double *x = baton_state_double(st, BT_COL_X), *before = h.before, *after = h.after;
    float *y = baton_state_float(st, BT_COL_Y);
    for (size_t i = begin; i < end; i++) {
        double sum = 0;
        for (size_t j = i - (i - begin < BT_SMOOTH_HALO ? i - begin : BT_SMOOTH_HALO); j < i; j++)
            sum += x[j];
        for (size_t back =
                 BT_SMOOTH_HALO - (i - begin < BT_SMOOTH_HALO ? i - begin : BT_SMOOTH_HALO);
             back > 0; back--)
            sum += back <= h.n_before ? before[h.n_before - back] : 0;
        for (size_t j = i; j <= i + BT_SMOOTH_HALO && j < end; j++)
            sum += x[j];
        for (size_t fwd = end > i + BT_SMOOTH_HALO ? BT_SMOOTH_HALO + 1 : end - i;
             fwd <= BT_SMOOTH_HALO; fwd++)
            sum += fwd - (end - i) < h.n_after ? after[fwd - (end - i)] : 0;
        y[i] = (float)sum;
    }
    return 0;
}

#endif /* BT_SUPPORT_ENGINE_H */
