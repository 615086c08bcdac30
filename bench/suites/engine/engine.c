/*
 * engine.c — `baton-bench engine`: the step engine against hand-written code over the same
 * arrays, in one run, interleaved.
 *
 * Cases and metrics (a published API: scripts depend on the names):
 *   step_motion  time (s, lower is better)  the motion rule as one phase over 1,000,000 rows,
 *                                           100 steps (--quick: 200,000 rows, 20 steps); label
 *                                           "partitions": 1, 2, 4 (a static plan on the pool)
 *                contenders baton (baton_engine_run) and hand_loop (the same arithmetic over
 *                the state's arrays: a plain loop for 1 partition, baton_parallel_for over the
 *                same row ranges for more)
 *   fingerprint  bytes_per_s (B/s)          fingerprinting the motion state (ids and six float
 *                                           columns: 32 bytes a row)
 *                contenders baton (baton_state_fingerprint on the pool) and fnv1a (FNV-1a, a
 *                byte at a time, over the same content)
 *   checkpoint_write    bytes_per_s (B/s)   baton_engine_checkpoint of the motion state into a
 *                                           checkpoint directory under $TMPDIR (else /var/tmp),
 *                                           keep 2, no fsync: to the page cache; a step (not
 *                                           timed) before each, as the policy takes them, so
 *                                           that each recycles the oldest's file
 *   checkpoint_restore  bytes_per_s (B/s)   baton_engine_restore of the newest
 *                contenders baton and memcpy (the ids and columns copied into a buffer of
 *                their size, touched beforehand); bytes: the state's ids and values
 * Checks: every step_motion run's final state must have the fingerprint of a serial reference
 * run computed before the clock starts; every fingerprint must equal its reference value
 * (baton's computed on the calling thread, fnv1a's computed once before the runs); after the
 * timed checkpoints, a step and a restore must bring back the state of the last one, and every
 * restore the fingerprint it was taken with; memcpy's copy must equal its source.
 *   mpi_step            time (s)            (engine_mpi.c) the motion scenario on 1, 2, 4
 *                                           MPI ranks, label "ranks"
 * Targets (2 cores): baton <= 1.05x hand_loop's time at every partition count; fingerprint
 * >= 10x fnv1a's bytes per second; checkpoint_write >= 0.5x memcpy's bytes per second.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "baton/engine.h"
#include "bench.h"
#include "engine.h"
#include "suites.h"

#define SUITE "engine"
#define MOTION_ROWS 1000000u
#define MOTION_STEPS 100u
#define QUICK_ROWS 200000u
#define QUICK_STEPS 20u
#define MAX_SLOTS 8
#define TARGET_STEP_RATIO 1.05
#define TARGET_FINGERPRINT_RATIO 10.0
/* Fingerprints per timed run: one of baton's takes a few milliseconds. */
#define FINGERPRINT_REPS 8u
/* Checkpoints (and restores) per timed run. */
#define CHECKPOINT_REPS 4u
#define TARGET_CHECKPOINT_RATIO 0.5
#define DIR_MAX 4096

static const unsigned partition_counts[] = {1, 2, 4};
#define N_PARTITION_COUNTS (sizeof partition_counts / sizeof partition_counts[0])

typedef struct engine_bench {
    baton_pool *pool;
    size_t rows;
    unsigned steps;
    uint64_t reference; /* the final state's fingerprint after a serial run */
} engine_bench;

typedef struct motion_slot {
    engine_bench *eb;
    unsigned partitions;
    char label[8];
} motion_slot;

/* ---- step_motion ----------------------------------------------------------------------------- */

typedef struct hand_arrays {
    float *p[3];
    const float *v[3];
    size_t rows;
    unsigned partitions;
} hand_arrays;

/* The hand-written loop: the motion rule over rows [begin, end). */
static void hand_motion(const hand_arrays *a, size_t begin, size_t end)
{
    for (int axis = 0; axis < 3; axis++) {
        float *restrict p = a->p[axis];
        const float *restrict v = a->v[axis];
        for (size_t i = begin; i < end; i++)
            p[i] += v[i] * BATON_ENGINE_MOTION_DT;
    }
}

/* One piece of baton_parallel_for: partitions [begin, end) of the static split. */
static int hand_partitions(size_t begin, size_t end, void *ctx)
{
    const hand_arrays *a = ctx;
    size_t base = a->rows / a->partitions, extra = a->rows % a->partitions;
    for (size_t k = begin; k < end; k++) {
        size_t first = k * base + (k < extra ? k : extra);
        hand_motion(a, first, first + base + (k < extra ? 1 : 0));
    }
    return 0;
}

static hand_arrays arrays_of(baton_state *state, unsigned partitions)
{
    hand_arrays a = {.rows = baton_state_rows(state), .partitions = partitions};
    for (int axis = 0; axis < 3; axis++) {
        a.p[axis] = baton_state_float(state, (size_t)axis);
        a.v[axis] = baton_state_float(state, (size_t)(3 + axis));
    }
    return a;
}

static int fresh_state(const engine_bench *eb, baton_state **out)
{
    int rc = baton_engine_motion_state(eb->rows, BENCH_ENGINE_SEED, out);
    if (rc != 0)
        cmdline_report_error(rc, "bench engine: baton_engine_motion_state");
    return rc;
}

static bool final_state_correct(const engine_bench *eb, baton_state *state)
{
    uint64_t fp = 0;
    return baton_state_fingerprint(state, eb->pool, &fp) == 0 && fp == eb->reference;
}

static int measure_hand(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    motion_slot *ms = ctx;
    engine_bench *eb = ms->eb;
    (void)workers;
    baton_state *state = NULL;
    if (fresh_state(eb, &state) != 0)
        return -1;
    hand_arrays a = arrays_of(state, ms->partitions);
    int rc = 0;
    double t0 = cmdline_now_s();
    for (unsigned s = 0; s < eb->steps && rc == 0; s++) {
        if (ms->partitions == 1)
            hand_motion(&a, 0, a.rows);
        else
            rc = baton_parallel_for(eb->pool, 0, ms->partitions, 1, hand_partitions, &a);
    }
    *out_value = cmdline_now_s() - t0;
    if (rc != 0)
        cmdline_report_error(rc, "bench engine: baton_parallel_for");
    *out_correct = rc == 0 && final_state_correct(eb, state);
    baton_state_destroy(state);
    return rc != 0 ? -1 : 0;
}

static int measure_engine(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    motion_slot *ms = ctx;
    engine_bench *eb = ms->eb;
    baton_state *state = NULL;
    baton_engine *engine = NULL;
    baton_plan *plan = NULL;
    if (fresh_state(eb, &state) != 0)
        return -1;
    baton_engine_config cfg = {.struct_size = sizeof cfg, .pool = eb->pool, .workers = workers};
    int rc = baton_engine_create(&cfg, state, &engine);
    if (rc != 0) {
        baton_state_destroy(state);
        cmdline_report_error(rc, "bench engine: baton_engine_create");
        return -1;
    }
    if ((rc = baton_engine_add_motion(engine)) == 0 &&
        (rc = baton_plan_create_static(eb->rows, ms->partitions, workers, &plan)) == 0)
        rc = baton_engine_set_plan(engine, plan);
    baton_plan_destroy(plan);
    uint64_t done = 0;
    if (rc == 0) {
        double t0 = cmdline_now_s();
        rc = baton_engine_run(engine, eb->steps, NULL, &done);
        *out_value = cmdline_now_s() - t0;
    }
    if (rc != 0)
        cmdline_report_error(rc, "bench engine: the engine");
    *out_correct =
        rc == 0 && done == eb->steps && final_state_correct(eb, baton_engine_state(engine));
    baton_engine_destroy(engine);
    return rc != 0 ? -1 : 0;
}

/* The serial reference: the final fingerprint the contenders must reach. */
static int compute_reference(engine_bench *eb)
{
    baton_state *state = NULL;
    if (fresh_state(eb, &state) != 0)
        return -1;
    hand_arrays a = arrays_of(state, 1);
    for (unsigned s = 0; s < eb->steps; s++)
        hand_motion(&a, 0, a.rows);
    int rc = baton_state_fingerprint(state, NULL, &eb->reference);
    baton_state_destroy(state);
    if (rc != 0)
        cmdline_report_error(rc, "bench engine: baton_state_fingerprint");
    return rc;
}

static int run_step_motion(const bench_options *options, bench_report *report, engine_bench *eb)
{
    static motion_slot slots_ctx[N_PARTITION_COUNTS];
    bench_slot slots[MAX_SLOTS];
    size_t n = 0;
    unsigned workers = baton_pool_workers(eb->pool);
    if (compute_reference(eb) != 0)
        return -1;
    bench_report_note(report, "step_motion",
                      "%zu rows x %u steps of the motion rule (6 float columns), a static plan "
                      "on a pool of %u workers; hand_loop: the same loop over the same arrays",
                      eb->rows, eb->steps, workers);
    for (size_t k = 0; k < N_PARTITION_COUNTS; k++) {
        motion_slot *ms = &slots_ctx[k];
        ms->eb = eb;
        ms->partitions = partition_counts[k];
        snprintf(ms->label, sizeof ms->label, "%u", ms->partitions);
        bench_record tmpl = {.suite = SUITE,
                             .case_name = "step_motion",
                             .metric = "time",
                             .unit = "s",
                             .higher_is_better = false,
                             .label_name = "partitions",
                             .label = ms->label};
        if (!bench_slots_add(slots, &n, MAX_SLOTS, report, options->runs, &tmpl, "baton", workers,
                             measure_engine, ms) ||
            !bench_slots_add(slots, &n, MAX_SLOTS, report, options->runs, &tmpl, "hand_loop",
                             workers, measure_hand, ms))
            return -1;
    }
    bench_run_slots("step_motion", slots, n, options->runs);
    return 0;
}

/* ---- fingerprint ----------------------------------------------------------------------------- */

typedef struct fp_bench {
    engine_bench *eb;
    baton_state *state;
    uint64_t baton_reference, fnv_reference;
    double bytes;
} fp_bench;

#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

static uint64_t fnv_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

/* The byte-at-a-time FNV-1a fingerprint: step, row count, column count, the ids, then each column's
 * name, a 0xff byte and its values, a byte at a time. */
static uint64_t fnv_fingerprint(baton_state *state)
{
    uint64_t h = FNV_OFFSET, step = 0, rows = baton_state_rows(state),
             columns = baton_state_columns(state);
    h = fnv_bytes(h, &step, 8);
    h = fnv_bytes(h, &rows, 8);
    h = fnv_bytes(h, &columns, 8);
    h = fnv_bytes(h, baton_state_ids(state), rows * 8);
    for (size_t c = 0; c < columns; c++) {
        baton_column_spec spec;
        (void)baton_state_column_info(state, c, &spec);
        const unsigned char sep = 0xff;
        h = fnv_bytes(h, spec.name, strlen(spec.name));
        h = fnv_bytes(h, &sep, 1);
        h = fnv_bytes(h, baton_state_column_data(state, c), rows * 4);
    }
    return h;
}

static int measure_fp_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    fp_bench *fb = ctx;
    (void)workers;
    bool correct = true;
    double t0 = cmdline_now_s();
    for (unsigned r = 0; r < FINGERPRINT_REPS; r++) {
        uint64_t fp = 0;
        int rc = baton_state_fingerprint(fb->state, fb->eb->pool, &fp);
        if (rc != 0) {
            cmdline_report_error(rc, "bench engine: baton_state_fingerprint");
            return -1;
        }
        correct = correct && fp == fb->baton_reference;
    }
    *out_value = fb->bytes * FINGERPRINT_REPS / (cmdline_now_s() - t0);
    *out_correct = correct;
    return 0;
}

static int measure_fp_fnv(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    fp_bench *fb = ctx;
    (void)workers;
    bool correct = true;
    double t0 = cmdline_now_s();
    for (unsigned r = 0; r < FINGERPRINT_REPS; r++)
        correct = correct && fnv_fingerprint(fb->state) == fb->fnv_reference;
    *out_value = fb->bytes * FINGERPRINT_REPS / (cmdline_now_s() - t0);
    *out_correct = correct;
    return 0;
}

static int run_fingerprint(const bench_options *options, bench_report *report, engine_bench *eb)
{
    fp_bench fb = {.eb = eb};
    if (fresh_state(eb, &fb.state) != 0)
        return -1;
    int rc = baton_state_fingerprint(fb.state, NULL, &fb.baton_reference);
    if (rc != 0) {
        cmdline_report_error(rc, "bench engine: baton_state_fingerprint");
        baton_state_destroy(fb.state);
        return -1;
    }
    fb.fnv_reference = fnv_fingerprint(fb.state);
    fb.bytes = (double)eb->rows * (8.0 + 6.0 * 4.0);
    unsigned workers = baton_pool_workers(eb->pool);
    bench_report_note(report, "fingerprint",
                      "the motion state: %zu rows of an id and 6 float columns (%.3g bytes); "
                      "baton on a pool of %u workers, fnv1a on one thread",
                      eb->rows, fb.bytes, workers);
    bench_record tmpl = {.suite = SUITE,
                         .case_name = "fingerprint",
                         .metric = "bytes_per_s",
                         .unit = "B/s",
                         .higher_is_better = true};
    bench_slot slots[2];
    size_t n = 0;
    if (!bench_slots_add(slots, &n, 2, report, options->runs, &tmpl, "baton", workers,
                         measure_fp_baton, &fb) ||
        !bench_slots_add(slots, &n, 2, report, options->runs, &tmpl, "fnv1a", 1, measure_fp_fnv,
                         &fb)) {
        baton_state_destroy(fb.state);
        return -1;
    }
    bench_run_slots("fingerprint", slots, n, options->runs);
    baton_state_destroy(fb.state);
    return 0;
}

/* ---- checkpoints
 * --------------------------------------------------------------------------------- */

typedef struct ckpt_bench {
    engine_bench *eb;
    baton_engine *engine;
    uint64_t reference; /* the fingerprint of the newest checkpoint "bench" */
    double bytes;
    unsigned char *buffer; /* memcpy's destination */
    char dir[DIR_MAX];
} ckpt_bench;

static bool state_is(const ckpt_bench *cb, uint64_t want)
{
    uint64_t fp = 0;
    return baton_state_fingerprint(baton_engine_state(cb->engine), cb->eb->pool, &fp) == 0 &&
           fp == want;
}

/* Periodic checkpointing as the policy does it: a step (not timed), then a checkpoint (timed),
 * so that once checkpoint_keep are kept each one recycles the oldest's file. */
static int measure_ckpt_write(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    ckpt_bench *cb = ctx;
    (void)workers;
    double timed = 0;
    for (unsigned r = 0; r < CHECKPOINT_REPS; r++) {
        int rc = baton_engine_step(cb->engine, NULL);
        if (rc != 0) {
            cmdline_report_error(rc, "bench engine: baton_engine_step");
            return -1;
        }
        double t0 = cmdline_now_s();
        rc = baton_engine_checkpoint(cb->engine, "bench");
        timed += cmdline_now_s() - t0;
        if (rc != 0) {
            cmdline_report_error(rc, "bench engine: baton_engine_checkpoint");
            return -1;
        }
    }
    *out_value = cb->bytes * CHECKPOINT_REPS / timed;
    /* What was written must restore to the same state, after a step that changed it. */
    uint64_t now = 0;
    *out_correct =
        baton_state_fingerprint(baton_engine_state(cb->engine), cb->eb->pool, &now) == 0 &&
        baton_engine_step(cb->engine, NULL) == 0 && !state_is(cb, now) &&
        baton_engine_restore(cb->engine, "bench") == 0 && state_is(cb, now);
    cb->reference = now;
    return 0;
}

static int measure_ckpt_restore(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    ckpt_bench *cb = ctx;
    (void)workers;
    double t0 = cmdline_now_s();
    for (unsigned r = 0; r < CHECKPOINT_REPS; r++) {
        int rc = baton_engine_restore(cb->engine, "bench");
        if (rc != 0) {
            cmdline_report_error(rc, "bench engine: baton_engine_restore");
            return -1;
        }
    }
    *out_value = cb->bytes * CHECKPOINT_REPS / (cmdline_now_s() - t0);
    *out_correct = state_is(cb, cb->reference);
    return 0;
}

/* The contender: the same bytes copied, ids then each column, into one buffer. */
static int measure_ckpt_memcpy(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    ckpt_bench *cb = ctx;
    (void)workers;
    baton_state *state = baton_engine_state(cb->engine);
    size_t rows = baton_state_rows(state), columns = baton_state_columns(state);
    double t0 = cmdline_now_s();
    for (unsigned r = 0; r < CHECKPOINT_REPS; r++) {
        unsigned char *out = cb->buffer;
        memcpy(out, baton_state_ids(state), rows * 8);
        out += rows * 8;
        for (size_t c = 0; c < columns; c++, out += rows * 4)
            memcpy(out, baton_state_column_data(state, c), rows * 4);
    }
    *out_value = cb->bytes * CHECKPOINT_REPS / (cmdline_now_s() - t0);
    bool same = memcmp(cb->buffer, baton_state_ids(state), rows * 8) == 0;
    for (size_t c = 0; c < columns && same; c++)
        same = memcmp(cb->buffer + rows * 8 + c * rows * 4, baton_state_column_data(state, c),
                      rows * 4) == 0;
    *out_correct = same;
    return 0;
}

static int ckpt_setup(engine_bench *eb, ckpt_bench *cb)
{
    const char *base = cmdline_temp_base();
    if ((size_t)snprintf(cb->dir, sizeof cb->dir, "%s/baton-bench-engine-XXXXXX", base) >=
            sizeof cb->dir ||
        mkdtemp(cb->dir) == NULL) {
        cmdline_errorf("bench engine: cannot make a directory under %s: %s", base, strerror(errno));
        cb->dir[0] = '\0';
        return -1;
    }
    baton_state *state = NULL;
    if (fresh_state(eb, &state) != 0)
        return -1;
    baton_engine_config cfg = {.struct_size = sizeof cfg,
                               .pool = eb->pool,
                               .checkpoint_keep = 2,
                               .checkpoint_dir = cb->dir};
    int rc = baton_engine_create(&cfg, state, &cb->engine);
    if (rc != 0) {
        baton_state_destroy(state);
        cmdline_report_error(rc, "bench engine: baton_engine_create");
        return -1;
    }
    if ((rc = baton_engine_add_motion(cb->engine)) != 0) {
        cmdline_report_error(rc, "bench engine: baton_engine_add_motion");
        return -1;
    }
    if ((rc = baton_state_fingerprint(state, NULL, &cb->reference)) != 0 ||
        (rc = baton_engine_checkpoint(cb->engine, "bench")) != 0) {
        cmdline_report_error(rc, "bench engine: the first checkpoint");
        return -1;
    }
    size_t rows = baton_state_rows(state);
    cb->bytes = (double)rows * (8.0 + 4.0 * (double)baton_state_columns(state));
    cb->buffer = malloc((size_t)cb->bytes);
    if (cb->buffer == NULL) {
        cmdline_errorf("bench engine: out of memory");
        return -1;
    }
    memset(cb->buffer, 1, (size_t)cb->bytes);
    return 0;
}

static int run_checkpoint(const bench_options *options, bench_report *report, engine_bench *eb)
{
    ckpt_bench cb = {.eb = eb};
    int rc = ckpt_setup(eb, &cb);
    const struct {
        const char *name;
        bench_measure_fn baton;
    } cases[] = {{"checkpoint_write", measure_ckpt_write},
                 {"checkpoint_restore", measure_ckpt_restore}};
    for (size_t k = 0; rc == 0 && k < 2; k++) {
        if (!bench_case_selected(options, cases[k].name))
            continue;
        bench_report_note(report, cases[k].name,
                          "the motion state (%.3g bytes of ids and values), a checkpoint file "
                          "in %s (no fsync: the page cache); memcpy: the same bytes into a "
                          "buffer",
                          cb.bytes, cb.dir);
        bench_record tmpl = {.suite = SUITE,
                             .case_name = cases[k].name,
                             .metric = "bytes_per_s",
                             .unit = "B/s",
                             .higher_is_better = true};
        bench_slot slots[2];
        size_t n = 0;
        if (!bench_slots_add(slots, &n, 2, report, options->runs, &tmpl, "baton", 1, cases[k].baton,
                             &cb) ||
            !bench_slots_add(slots, &n, 2, report, options->runs, &tmpl, "memcpy", 1,
                             measure_ckpt_memcpy, &cb)) {
            rc = -1;
            break;
        }
        bench_run_slots(cases[k].name, slots, n, options->runs);
    }
    baton_engine_destroy(cb.engine);
    free(cb.buffer);
    if (cb.dir[0] != '\0')
        (void)cmdline_remove_tree(cb.dir);
    return rc;
}

/* ---- the suite ------------------------------------------------------------------------------- */

int bench_engine_run(const bench_options *options, bench_report *report)
{
    engine_bench eb = {.rows = options->quick ? QUICK_ROWS : MOTION_ROWS,
                       .steps = options->quick ? QUICK_STEPS : MOTION_STEPS};
    if (cmdline_pool_create(options->max_workers, 0, &eb.pool) != 0)
        return -1;
    int rc = 0;
    if (bench_case_selected(options, "step_motion"))
        rc = run_step_motion(options, report, &eb);
    if (rc == 0 && bench_case_selected(options, "fingerprint"))
        rc = run_fingerprint(options, report, &eb);
    if (rc == 0 && (bench_case_selected(options, "checkpoint_write") ||
                    bench_case_selected(options, "checkpoint_restore")))
        rc = run_checkpoint(options, report, &eb);
    if (rc == 0 && bench_case_selected(options, "mpi_step"))
        rc = bench_engine_mpi_run(options, report, eb.pool, eb.rows, eb.steps);
    cmdline_pool_destroy(eb.pool, &rc);
    return rc;
}

static double ratio(const bench_record *a, const bench_record *b)
{
    if (a == NULL || b == NULL || !a->correct || !b->correct || a->n_samples == 0 ||
        b->n_samples == 0)
        return NAN;
    return bench_record_median(a) / bench_record_median(b);
}

static void print_target(FILE *out, const char *what, double value, double target, bool at_most)
{
    fprintf(out, "  %s %s %.2f: ", what, at_most ? "<=" : ">=", target);
    if (isnan(value))
        fputs("- (not measured)\n", out);
    else
        fprintf(out, "%.3f (%s)\n", value,
                (at_most ? value <= target : value >= target) ? "met" : "missed");
}

void bench_engine_print_summary(const bench_report *report, FILE *out)
{
    fputs("\nengine targets (medians; a target counts only correct rows):\n", out);
    char label[8], what[96];
    for (size_t k = 0; k < N_PARTITION_COUNTS; k++) {
        snprintf(label, sizeof label, "%u", partition_counts[k]);
        snprintf(what, sizeof what, "step_motion, %u partition%s: baton / hand_loop time",
                 partition_counts[k], partition_counts[k] > 1 ? "s" : "");
        print_target(out, what,
                     ratio(bench_report_find_label(report, "step_motion", "baton", label),
                           bench_report_find_label(report, "step_motion", "hand_loop", label)),
                     TARGET_STEP_RATIO, true);
    }
    print_target(out, "fingerprint: baton / fnv1a bytes per second",
                 ratio(bench_report_find_label(report, "fingerprint", "baton", NULL),
                       bench_report_find_label(report, "fingerprint", "fnv1a", NULL)),
                 TARGET_FINGERPRINT_RATIO, false);
    print_target(out, "checkpoint_write: baton / memcpy bytes per second",
                 ratio(bench_report_find_label(report, "checkpoint_write", "baton", NULL),
                       bench_report_find_label(report, "checkpoint_write", "memcpy", NULL)),
                 TARGET_CHECKPOINT_RATIO, false);
    double restore = ratio(bench_report_find_label(report, "checkpoint_restore", "baton", NULL),
                           bench_report_find_label(report, "checkpoint_restore", "memcpy", NULL));
    if (!isnan(restore))
        fprintf(out, "  checkpoint_restore: baton / memcpy bytes per second: %.3f (no target)\n",
                restore);
    for (unsigned ranks = 2; ranks <= 4; ranks *= 2) {
        char label_n[8];
        snprintf(label_n, sizeof label_n, "%u", ranks);
        double speedup = ratio(bench_report_find_label(report, "mpi_step", "baton", "1"),
                               bench_report_find_label(report, "mpi_step", "baton", label_n));
        if (!isnan(speedup))
            fprintf(out, "  mpi_step: time on 1 rank / on %u ranks: %.3f (no target)\n", ranks,
                    speedup);
    }
    fflush(out);
}
