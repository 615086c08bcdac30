/*
 * test_engine_step.c — the step engine (include/baton/engine.h), on a pool of --workers:
 *  - create and add_phase: every argument error with its code and a message naming the value;
 *  - steps against a serial oracle: two phases, the second reading rows of other partitions
 *    that the first wrote (so a missing barrier between phases shows), for plans of 1, 2, 3 and
 *    7 partitions; reports and metrics count what ran;
 *  - a failing phase: the error names the phase and the partition with its rows, the state is
 *    byte for byte the state before the step (also columns an earlier phase of the step had
 *    written), the step counter does not move, and the next step runs normally;
 *  - several failing partitions (1 and 40, 0 and the last, the last two, all of 64): every
 *    run of the step returns the smallest one's code and the same message naming it;
 *  - a plan that no longer fits the rows fails the step before any phase runs;
 *  - replay: record, then verify on a fresh engine with another plan (fingerprints do not depend
 *    on the partitioning); a perturbed value fails verify at the right step with
 *    BATON_EMISMATCH; running past the recording is BATON_EEOF; a recording whose next entry is
 *    another step is BATON_ERANGE; save and load round-trip, and a truncated, damaged, foreign
 *    or newer-version file is BATON_EIO with a message saying which;
 *  - baton_engine_fingerprint: the state's now, the last step's with replay on or off;
 *  - the motion state's rows drawn by range equal the whole state's;
 *  - halo rows: a phase reading 2 rows each side through baton_engine_halo equals a loop over
 *    the whole array on 1 to ROWS partitions; the API's errors.
 */
#include "support/bt_common.h"

#include <unistd.h>
#include <xxhash.h>

#include "baton/engine.h"
#include "support/bt_engine.h"

BT_DEFINE_POOL_GROUP()

#define ROWS 10007u
#define STEPS 12u

/* ---- the oracle and a failing phase --------------------------------------------------------- */

/* The serial oracle: step `step` of the two phases (bt_engine.h) over every row. */
static void oracle_step(baton_state *st, uint64_t step)
{
    size_t rows = baton_state_rows(st);
    bt_advance(st, 0, rows, 0, step, NULL);
    bt_couple(st, 0, rows, 0, step, NULL);
}

/* fails: fails in the partition that holds row fail_row (after writing its rows), from step
 * fail_step on. */
typedef struct fail_plan {
    size_t fail_row;
    uint64_t fail_step;
    int code;
} fail_plan;

static int fails(baton_state *st, size_t begin, size_t end, size_t partition, uint64_t step,
                 void *ctx)
{
    (void)partition;
    const fail_plan *fp = ctx;
    int64_t *n = baton_state_int64(st, BT_COL_N);
    for (size_t i = begin; i < end; i++)
        n[i] += 100; /* a write the undo must take back */
    return step >= fp->fail_step && fp->fail_row >= begin && fp->fail_row < end ? fp->code : 0;
}

static baton_engine *new_engine(size_t rows, baton_replay_mode replay, size_t partitions)
{
    baton_engine_config cfg = {.struct_size = sizeof cfg, .pool = g_pool, .replay = replay};
    baton_engine *engine = NULL;
    bt_assert_rc(baton_engine_create(&cfg, bt_new_state(rows, false), &engine), 0);
    baton_phase_spec a = {"advance", bt_advance, NULL, bt_writes_advance, 2, 0, 0};
    baton_phase_spec c = {"couple", bt_couple, NULL, bt_writes_couple, 1, 0, 0};
    bt_assert_rc(baton_engine_add_phase(engine, &a), 0);
    bt_assert_rc(baton_engine_add_phase(engine, &c), 0);
    if (partitions > 0) {
        baton_plan *plan = NULL;
        bt_assert_rc(baton_plan_create_static(rows, partitions, g_workers, &plan), 0);
        bt_assert_rc(baton_engine_set_plan(engine, plan), 0);
        baton_plan_destroy(plan);
    }
    return engine;
}

static void assert_states_equal(baton_state *a, baton_state *b)
{
    size_t rows = baton_state_rows(a);
    assert_int_equal(rows, baton_state_rows(b));
    assert_memory_equal(baton_state_ids(a), baton_state_ids(b), rows * 8);
    assert_memory_equal(baton_state_double(a, BT_COL_X), baton_state_double(b, BT_COL_X), rows * 8);
    assert_memory_equal(baton_state_float(a, BT_COL_Y), baton_state_float(b, BT_COL_Y), rows * 4);
    assert_memory_equal(baton_state_int64(a, BT_COL_N), baton_state_int64(b, BT_COL_N), rows * 8);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_create_errors(void **state)
{
    (void)state;
    baton_engine *engine = (baton_engine *)(uintptr_t)0x1234;
    bt_expect_error(baton_engine_create(NULL, NULL, &engine), BATON_EINVAL, "state is NULL", NULL);
    assert_null(engine);
    baton_state *st = bt_new_state(4, false);
    baton_engine_config cfg = {.struct_size = sizeof cfg, .replay = (baton_replay_mode)7};
    bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_EINVAL, "replay mode 7", NULL);
    cfg.replay = BATON_REPLAY_OFF;
    cfg.executor = BATON_EXECUTOR_DEVICE;
    bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_ENOSYS, "device (GPU) workers",
                    "not supported in this build", NULL);
    /* Without MPI in the build: BATON_ENOSYS; with it, this test never called MPI_Init. */
    cfg.executor = BATON_EXECUTOR_MPI;
    int mpi_rc = baton_engine_create(&cfg, st, &engine);
    assert_true(mpi_rc == BATON_ENOSYS || mpi_rc == BATON_EINVAL);
    assert_non_null(strstr(baton_last_error_message(), "MPI"));
    assert_null(engine);
    cfg.executor = (baton_executor_kind)9;
    bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_EINVAL, "executor kind 9", NULL);
    cfg.executor = BATON_EXECUTOR_LOCAL;
    cfg.mpi_rows = (baton_mpi_rows)5;
    bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_EINVAL, "mpi_rows 5", NULL);
    cfg.mpi_rows = BATON_MPI_ROWS_REPLICATED;
    cfg.struct_size = sizeof cfg + 8;
    bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_EINVAL, "struct_size", NULL);
    bt_expect_error(baton_engine_create(NULL, st, NULL), BATON_EINVAL, "out", NULL);
    bt_assert_rc(baton_engine_create(NULL, st, &engine), 0); /* defaults: no pool, 1 worker */

    baton_phase_spec ok = {"advance", bt_advance, NULL, bt_writes_advance, 2, 0, 0};
    baton_phase_spec bad = ok;
    bad.fn = NULL;
    bt_expect_error(baton_engine_add_phase(engine, &bad), BATON_EINVAL, "spec->fn", NULL);
    bad = ok;
    bad.name = "";
    bt_expect_error(baton_engine_add_phase(engine, &bad), BATON_EINVAL, "name", NULL);
    bad = ok;
    const size_t out_of_range[] = {0, 3};
    bad.writes = out_of_range;
    bt_expect_error(baton_engine_add_phase(engine, &bad), BATON_EINVAL, "writes[1] is column 3",
                    "3 columns", NULL);
    bad = ok;
    bad.flags = 0x10;
    bt_expect_error(baton_engine_add_phase(engine, &bad), BATON_EINVAL, "unknown flags 0x10", NULL);
    bt_assert_rc(baton_engine_add_phase(engine, &ok), 0);
    bt_expect_error(baton_engine_add_phase(engine, &ok), BATON_EEXIST, "\"advance\"", NULL);
    char name[16];
    for (unsigned i = 1; i < BATON_ENGINE_MAX_PHASES; i++) {
        snprintf(name, sizeof name, "p%u", i);
        baton_phase_spec more = {name, bt_advance, NULL, NULL, 0, BATON_PHASE_INFALLIBLE, 0};
        bt_assert_rc(baton_engine_add_phase(engine, &more), 0);
    }
    baton_phase_spec extra = {"extra", bt_advance, NULL, NULL, 0, 0, 0};
    bt_expect_error(baton_engine_add_phase(engine, &extra), BATON_ERANGE, "64 phases", NULL);
    baton_engine_destroy(engine);
    baton_engine_destroy(NULL);
}

/* Steps on 1, 2, 3 and 7 partitions equal the oracle's, row for row. */
static void test_steps_match_oracle(void **state)
{
    (void)state;
    const size_t partitions[] = {0, 1, 2, 3, 7};
    baton_state *oracle = bt_new_state(ROWS, false);
    for (unsigned s = 0; s < STEPS; s++)
        oracle_step(oracle, s);
    for (size_t k = 0; k < sizeof partitions / sizeof partitions[0]; k++) {
        baton_engine *engine = new_engine(ROWS, BATON_REPLAY_OFF, partitions[k]);
        baton_step_report reports[STEPS];
        uint64_t done = 0;
        bt_assert_rc(baton_engine_run(engine, STEPS, reports, &done), 0);
        assert_int_equal(done, STEPS);
        for (unsigned s = 0; s < STEPS; s++) {
            assert_int_equal(reports[s].step, s);
            assert_int_equal(reports[s].n_phases, 2);
            assert_true(reports[s].total_ns >= reports[s].phase_ns[0]);
        }
        assert_int_equal(baton_engine_current_step(engine), STEPS);
        assert_states_equal(baton_engine_state(engine), oracle);
        baton_engine_metrics m;
        bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
        size_t parts = partitions[k] > 0 ? partitions[k] : 1;
        assert_int_equal(m.steps_completed, STEPS);
        assert_int_equal(m.steps_failed, 0);
        assert_int_equal(m.rows, ROWS);
        assert_int_equal(m.columns, 3);
        assert_int_equal(m.phases, 2);
        assert_int_equal(m.partition_steps, (uint64_t)STEPS * 2 * parts);
        assert_int_equal(m.partition_rows, (uint64_t)STEPS * 2 * ROWS);
        assert_string_equal(m.phase[1].name, "couple");
        assert_int_equal(m.phase[1].executions, STEPS);
        assert_true(m.resident_bytes >= (size_t)ROWS * 20);
        baton_engine_destroy(engine);
    }
    baton_state_destroy(oracle);
}

/* A failing third phase: the state is as before the step, the counter unchanged. */
static void test_failed_step_is_undone(void **state)
{
    (void)state;
    const size_t partitions[] = {0, 3, 7};
    for (size_t k = 0; k < sizeof partitions / sizeof partitions[0]; k++) {
        baton_engine *engine = new_engine(ROWS, BATON_REPLAY_OFF, partitions[k]);
        fail_plan fp = {ROWS - 5, 3, BATON_ERANGE};
        const size_t writes_n[] = {BT_COL_N};
        baton_phase_spec f = {"check", fails, &fp, writes_n, 1, 0, 0};
        bt_assert_rc(baton_engine_add_phase(engine, &f), 0);
        bt_assert_rc(baton_engine_run(engine, 3, NULL, NULL), 0);

        baton_state *before = bt_new_state(ROWS, false);
        for (unsigned s = 0; s < 3; s++) {
            oracle_step(before, s);
            int64_t *n = baton_state_int64(before, BT_COL_N);
            for (size_t i = 0; i < ROWS; i++)
                n[i] += 100;
        }
        assert_states_equal(baton_engine_state(engine), before);

        char rows_text[64];
        size_t parts = partitions[k] > 0 ? partitions[k] : 1;
        size_t last = parts - 1;
        size_t size = ROWS / parts,
               begin = last * size + (last < ROWS % parts ? last : ROWS % parts);
        snprintf(rows_text, sizeof rows_text, "partition %zu (rows [%zu, %u))", last, begin, ROWS);
        uint64_t done = 99;
        bt_expect_error(baton_engine_run(engine, 2, NULL, &done), BATON_ERANGE, "step 3",
                        "phase \"check\"", rows_text, NULL);
        assert_int_equal(done, 0);
        assert_int_equal(baton_engine_current_step(engine), 3);
        assert_states_equal(baton_engine_state(engine), before);
        baton_engine_metrics m;
        bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
        assert_int_equal(m.steps_failed, 1);
        /* Once the phase stops failing, steps go on from the same state. */
        fp.fail_step = UINT64_MAX;
        bt_assert_rc(baton_engine_step(engine, NULL), 0);
        assert_int_equal(baton_engine_current_step(engine), 4);
        baton_state_destroy(before);
        baton_engine_destroy(engine);
    }
}

/* fails_in: writes its rows, then fails in each partition whose flag is set, with a code that
 * names the partition. To give the pool the schedule that used to hide the smallest failure,
 * partition wait_in (SIZE_MAX: none) first waits, up to a bound, for partition wait_for to have
 * returned: the failure of a larger partition then comes before a smaller one starts. The bound
 * only ends the wait where no other worker can run wait_for (1 worker); the result asserted
 * does not depend on whether the wait was met. */
#define FAIL_PARTS 64u

typedef struct fail_set {
    bool fail[FAIL_PARTS];
    size_t wait_in, wait_for;
    atomic_int returned; /* wait_for has returned */
} fail_set;

static int fails_in(baton_state *st, size_t begin, size_t end, size_t partition, uint64_t step,
                    void *ctx)
{
    (void)step;
    fail_set *fs = ctx;
    if (partition == fs->wait_in)
        (void)bt_wait_flag_nudging(g_pool, &fs->returned, 2000);
    int64_t *n = baton_state_int64(st, BT_COL_N);
    for (size_t i = begin; i < end; i++)
        n[i] += 100;
    int rc = fs->fail[partition] ? -(1000 + (int)partition) : 0;
    if (partition == fs->wait_for)
        atomic_store(&fs->returned, 1);
    return rc;
}

/* Several failing partitions: every run of the step returns the smallest one's code, and the
 * same message naming it, whatever the timing of the pool. */
static void test_failure_names_smallest(void **state)
{
    (void)state;
    const struct {
        size_t a, b;
        bool all;
    } cases[] = {{1, 40, false},
                 {0, FAIL_PARTS - 1, false},
                 {FAIL_PARTS - 2, FAIL_PARTS - 1, false},
                 {0, 0, true}};
    size_t repeats = bt_scaled(20, 5);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fail_set fs = {.wait_in = SIZE_MAX, .wait_for = SIZE_MAX};
        for (size_t i = 0; i < FAIL_PARTS; i++)
            fs.fail[i] = cases[k].all || i == cases[k].a || i == cases[k].b;
        if (k == 0 && g_workers > 1) { /* partition 0 waits for partition 40 */
            fs.wait_in = cases[k].a - 1;
            fs.wait_for = cases[k].b;
        }
        size_t smallest = cases[k].a;
        baton_engine *engine = new_engine(ROWS, BATON_REPLAY_OFF, FAIL_PARTS);
        const size_t writes_n[] = {BT_COL_N};
        baton_phase_spec f = {"check", fails_in, &fs, writes_n, 1, 0, 0};
        bt_assert_rc(baton_engine_add_phase(engine, &f), 0);
        baton_plan *plan = NULL;
        bt_assert_rc(baton_plan_create_static(ROWS, FAIL_PARTS, g_workers, &plan), 0);
        baton_partition p = baton_plan_partition(plan, smallest);
        baton_plan_destroy(plan);
        char names[96], first[512] = "";
        snprintf(names, sizeof names, "partition %zu (rows [%zu, %zu))", smallest, p.begin, p.end);
        for (size_t r = 0; r < repeats; r++) {
            atomic_store(&fs.returned, 0);
            bt_expect_error(baton_engine_step(engine, NULL), -(1000 + (int)smallest),
                            "phase \"check\"", names, NULL);
            if (r == 0)
                snprintf(first, sizeof first, "%s", baton_last_error_message());
            else
                assert_string_equal(baton_last_error_message(), first);
            assert_int_equal(baton_engine_current_step(engine), 0);
        }
        baton_engine_destroy(engine);
    }
}

static void test_plan_checked_every_step(void **state)
{
    (void)state;
    baton_engine *engine = new_engine(100, BATON_REPLAY_OFF, 3);
    bt_assert_rc(baton_engine_step(engine, NULL), 0);
    const uint64_t more[] = {5000, 5001};
    bt_assert_rc(baton_state_add_rows(baton_engine_state(engine), more, 2, NULL), 0);
    bt_expect_error(baton_engine_step(engine, NULL), BATON_EINVAL, "incomplete coverage", NULL);
    assert_int_equal(baton_engine_current_step(engine), 1);
    bt_assert_rc(baton_engine_set_plan(engine, NULL), 0); /* back to the single plan */
    bt_assert_rc(baton_engine_step(engine, NULL), 0);
    baton_plan *plan = NULL;
    bt_assert_rc(baton_plan_create_static(102, 2, g_workers + 1, &plan), 0);
    bt_assert_rc(baton_engine_set_plan(engine, plan), 0);
    baton_plan_destroy(plan);
    bt_expect_error(baton_engine_step(engine, NULL), BATON_EMISMATCH, "worker-count mismatch",
                    NULL);
    baton_engine_destroy(engine);
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(out, cap, "%s/baton-replay-%ld-%s", dir != NULL && dir[0] ? dir : "/tmp",
             (long)getpid(), name);
}

static void test_replay_record_verify(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "rec");
    baton_engine *rec = new_engine(ROWS, BATON_REPLAY_RECORD, 0);
    baton_step_report reports[STEPS];
    bt_assert_rc(baton_engine_run(rec, STEPS, reports, NULL), 0);
    const baton_replay_entry *entries = NULL;
    size_t n = 0;
    bt_assert_rc(baton_engine_recording(rec, &entries, &n), 0);
    assert_int_equal(n, STEPS);
    for (unsigned s = 0; s < STEPS; s++) {
        assert_int_equal(entries[s].step, s);
        assert_int_equal(entries[s].fingerprint, reports[s].fingerprint);
    }
    uint64_t now = 0;
    bt_assert_rc(baton_state_fingerprint(baton_engine_state(rec), NULL, &now), 0);
    assert_int_equal(now, entries[STEPS - 1].fingerprint);
    /* baton_engine_fingerprint: the state's now, as the last step reported it. */
    uint64_t engine_fp = 0;
    bt_assert_rc(baton_engine_fingerprint(rec, &engine_fp), 0);
    assert_int_equal(engine_fp, entries[STEPS - 1].fingerprint);
    bt_expect_error(baton_engine_fingerprint(NULL, &engine_fp), BATON_EINVAL, "engine", NULL);
    bt_expect_error(baton_engine_fingerprint(rec, NULL), BATON_EINVAL, "out", NULL);
    /* With replay off too, on a plan of 7 partitions. */
    baton_engine *off = new_engine(ROWS, BATON_REPLAY_OFF, 7);
    bt_assert_rc(baton_engine_fingerprint(off, &engine_fp), 0);
    bt_assert_rc(baton_state_fingerprint(baton_engine_state(off), NULL, &now), 0);
    assert_int_equal(engine_fp, now);
    bt_assert_rc(baton_engine_run(off, STEPS, NULL, NULL), 0);
    bt_assert_rc(baton_engine_fingerprint(off, &engine_fp), 0);
    assert_int_equal(engine_fp, entries[STEPS - 1].fingerprint);
    baton_engine_destroy(off);
    bt_assert_rc(baton_engine_replay_save(rec, path), 0);

    /* Verify on other plans: the fingerprints do not depend on the partitioning. */
    const size_t partitions[] = {2, 3, 7};
    for (size_t k = 0; k < sizeof partitions / sizeof partitions[0]; k++) {
        baton_engine *ver = new_engine(ROWS, BATON_REPLAY_VERIFY, partitions[k]);
        bt_assert_rc(baton_engine_replay_load(ver, path), 0);
        bt_assert_rc(baton_engine_run(ver, STEPS, NULL, NULL), 0);
        baton_engine_metrics m;
        bt_assert_rc(baton_engine_get_metrics(ver, &m), 0);
        assert_int_equal(m.fingerprints_verified, STEPS);
        /* One step more than recorded: exhausted. */
        bt_expect_error(baton_engine_step(ver, NULL), BATON_EEOF, "step 12", "holds 12 steps",
                        NULL);
        baton_engine_destroy(ver);
    }

    /* A value perturbed before step 5 fails verify at step 5. */
    baton_engine *ver = new_engine(ROWS, BATON_REPLAY_VERIFY, 3);
    bt_assert_rc(baton_engine_replay_load(ver, path), 0);
    bt_assert_rc(baton_engine_run(ver, 5, NULL, NULL), 0);
    baton_state_double(baton_engine_state(ver), BT_COL_X)[ROWS / 2] += 1e-9;
    char want[64];
    snprintf(want, sizeof want, "recorded 0x%016llx", (unsigned long long)entries[5].fingerprint);
    bt_expect_error(baton_engine_step(ver, NULL), BATON_EMISMATCH, "divergence at step 5", want,
                    NULL);
    baton_engine_destroy(ver);
    baton_engine_destroy(rec);
    remove(path);
}

/* Writes a recording file by the format in engine.h, with the given entries. */
static void write_recording(const char *path, const baton_replay_entry *e, size_t n,
                            uint32_t version, size_t cut, bool flip)
{
    size_t size = 20 + 16 * n + 8;
    unsigned char *buf = calloc(1, size);
    assert_non_null(buf);
    memcpy(buf, "BATONRPL", 8);
    memcpy(buf + 8, &version, 4);
    uint64_t count = n;
    memcpy(buf + 12, &count, 8);
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + 20 + 16 * i, &e[i].step, 8);
        memcpy(buf + 28 + 16 * i, &e[i].fingerprint, 8);
    }
    uint64_t sum = XXH3_64bits(buf, size - 8);
    memcpy(buf + size - 8, &sum, 8);
    if (flip)
        buf[21] ^= 1;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, size - cut, f), size - cut);
    fclose(f);
    free(buf);
}

static void test_replay_files(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "file");
    baton_engine *ver = new_engine(64, BATON_REPLAY_VERIFY, 0);
    /* A recording that starts at step 3: step mismatch at step 0. */
    const baton_replay_entry later[] = {{3, 1}, {4, 2}};
    write_recording(path, later, 2, 1, 0, false);
    bt_assert_rc(baton_engine_replay_load(ver, path), 0);
    bt_expect_error(baton_engine_step(ver, NULL), BATON_ERANGE, "step mismatch", "step 3",
                    "ran step 0", NULL);

    const baton_replay_entry one[] = {{0, 7}};
    write_recording(path, one, 1, 2, 0, false);
    bt_expect_error(baton_engine_replay_load(ver, path), BATON_EIO, "version 2", NULL);
    write_recording(path, one, 1, 1, 3, false);
    bt_expect_error(baton_engine_replay_load(ver, path), BATON_EIO, "truncated", NULL);
    write_recording(path, one, 1, 1, 0, true);
    bt_expect_error(baton_engine_replay_load(ver, path), BATON_EIO, "checksum", NULL);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("not a recording at all, just text\n", f);
    fclose(f);
    bt_expect_error(baton_engine_replay_load(ver, path), BATON_EIO, "not a replay recording", NULL);
    remove(path);
    bt_expect_error(baton_engine_replay_load(ver, path), BATON_EIO, "cannot open", NULL);
    /* The failed loads left the earlier recording in place. */
    const baton_replay_entry *e = NULL;
    size_t n = 0;
    bt_assert_rc(baton_engine_recording(ver, &e, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(e[0].step, 3);
    bt_expect_error(baton_engine_replay_save(ver, "/nonexistent-dir/x"), BATON_EIO,
                    "/nonexistent-dir/x.tmp", NULL);
    baton_engine_destroy(ver);
}

/* What the halo test's phase saw of baton_engine_halo's errors, inside a phase. */
typedef struct halo_probe {
    baton_engine *engine;
    int written, bad_column, bad_partition;
} halo_probe;

static int probe_halo(baton_state *st, size_t begin, size_t end, size_t partition, uint64_t step,
                      void *ctx)
{
    (void)st, (void)begin, (void)end, (void)step;
    halo_probe *hp = ctx;
    baton_halo h;
    if (partition == 0) { /* one partition asks: the answers land in one place */
        hp->written = baton_engine_halo(hp->engine, 0, BT_COL_Y, &h);
        hp->bad_column = baton_engine_halo(hp->engine, 0, 3, &h);
        hp->bad_partition = baton_engine_halo(hp->engine, 99, BT_COL_X, &h);
    }
    return 0;
}

/* A phase that reads 2 rows each side of its partition through baton_engine_halo computes, on
 * 1, 2, 3 and 7 partitions, what a loop over the whole array does; the API's errors. */
static void test_halo(void **state)
{
    (void)state;
    const size_t partitions[] = {0, 1, 2, 3, 7, ROWS};
    baton_state *oracle = bt_new_state(ROWS, false);
    const double *x = baton_state_double(oracle, BT_COL_X);
    for (size_t k = 0; k < sizeof partitions / sizeof partitions[0]; k++) {
        baton_engine_config cfg = {.struct_size = sizeof cfg, .pool = g_pool};
        baton_engine *engine = NULL;
        bt_assert_rc(baton_engine_create(&cfg, bt_new_state(ROWS, false), &engine), 0);
        baton_phase_spec sm = {"smooth", bt_smooth, &engine,       bt_writes_smooth,
                               1,        0,         BT_SMOOTH_HALO};
        bt_assert_rc(baton_engine_add_phase(engine, &sm), 0);
        if (partitions[k] > 0) {
            baton_plan *plan = NULL;
            bt_assert_rc(baton_plan_create_static(ROWS, partitions[k], g_workers, &plan), 0);
            bt_assert_rc(baton_engine_set_plan(engine, plan), 0);
            baton_plan_destroy(plan);
        }
        bt_assert_rc(baton_engine_step(engine, NULL), 0);
        const float *y = baton_state_float(baton_engine_state(engine), BT_COL_Y);
        for (size_t i = 0; i < ROWS; i++) {
            double sum = 0;
            for (size_t j = i >= BT_SMOOTH_HALO ? i - BT_SMOOTH_HALO : 0;
                 j <= i + BT_SMOOTH_HALO && j < ROWS; j++)
                sum += x[j];
            assert_true(y[i] == (float)sum);
        }
        baton_engine_destroy(engine);
    }
    baton_state_destroy(oracle);

    baton_engine *engine = NULL;
    bt_assert_rc(baton_engine_create(NULL, bt_new_state(10, false), &engine), 0);
    baton_halo h;
    bt_expect_error(baton_engine_halo(engine, 0, BT_COL_X, &h), BATON_EPERM, "no phase is running",
                    NULL);
    bt_expect_error(baton_engine_halo(NULL, 0, BT_COL_X, &h), BATON_EINVAL, "engine", NULL);
    baton_phase_spec all = {"all", bt_smooth, &engine, NULL, 0, 0, 1};
    bt_expect_error(baton_engine_add_phase(engine, &all), BATON_EINVAL, "halo_rows 1",
                    "declared writes", NULL);
    halo_probe hp = {engine, 0, 0, 0};
    baton_phase_spec pr = {"probe", probe_halo, &hp, bt_writes_smooth, 1, 0, 1};
    bt_assert_rc(baton_engine_add_phase(engine, &pr), 0);
    bt_assert_rc(baton_engine_step(engine, NULL), 0);
    assert_int_equal(hp.written, BATON_EINVAL);
    assert_int_equal(hp.bad_column, BATON_ERANGE);
    assert_int_equal(hp.bad_partition, BATON_ERANGE);
    baton_engine_destroy(engine);
}

/* splitmix64, as the motion rule's documented stream (motion.c) draws it. */
static float reference_velocity(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;
    return (float)((int64_t)(z >> 40) - (INT64_C(1) << 23)) / (float)(1 << 23);
}

/* The motion state draws every vx, then every vy, then every vz from one stream; any range of
 * its rows, appended piece by piece, equals the whole state's rows there. */
static void test_motion_rows(void **state)
{
    (void)state;
    enum { AGENTS = 5000 };
    const uint64_t seed = 42;
    baton_state *whole = NULL, *pieces = NULL;
    bt_assert_rc(baton_engine_motion_state(AGENTS, seed, &whole), 0);
    uint64_t s = seed;
    for (size_t c = 3; c < 6; c++)
        for (size_t i = 0; i < AGENTS; i++)
            assert_true(baton_state_float(whole, c)[i] == reference_velocity(&s));
    bt_assert_rc(baton_engine_motion_state(0, seed, &pieces), 0);
    const size_t cuts[] = {0, 1, 4096, 4097, 4999, AGENTS};
    /* In another order than the rows': pieces 2.., then 0 and 1, to show each is drawn alone. */
    for (size_t k = 2; k < 5; k++)
        bt_assert_rc(baton_engine_motion_add_rows(pieces, AGENTS, seed, cuts[k], cuts[k + 1]), 0);
    bt_assert_rc(baton_engine_motion_add_rows(pieces, AGENTS, seed, cuts[0], cuts[2]), 0);
    assert_int_equal(baton_state_rows(pieces), AGENTS);
    for (size_t c = 0; c < 6; c++) {
        const float *w = baton_state_float(whole, c), *p = baton_state_float(pieces, c);
        for (size_t i = 0; i < AGENTS; i++) {
            size_t at = i < cuts[2] ? AGENTS - cuts[2] + i : i - cuts[2];
            assert_true(w[i] == p[at]);
            assert_int_equal(baton_state_ids(pieces)[at], i + 1);
        }
    }
    bt_expect_error(baton_engine_motion_add_rows(pieces, AGENTS, seed, 10, 9), BATON_EINVAL,
                    "rows [10, 9)", "5000 agents", NULL);
    bt_expect_error(baton_engine_motion_add_rows(pieces, AGENTS, seed, 0, AGENTS + 1), BATON_EINVAL,
                    "5001", NULL);
    bt_expect_error(baton_engine_motion_add_rows(pieces, AGENTS, seed, 7, 8), BATON_EEXIST, "8",
                    NULL);
    assert_int_equal(baton_state_rows(pieces), AGENTS);
    baton_state *other = bt_new_state(3, false);
    bt_expect_error(baton_engine_motion_add_rows(other, AGENTS, seed, 0, 1), BATON_EMISMATCH,
                    "column 0", NULL);
    bt_expect_error(baton_engine_motion_add_rows(NULL, AGENTS, seed, 0, 1), BATON_EINVAL,
                    "state is NULL", NULL);
    baton_state_destroy(other);
    baton_state_destroy(pieces);
    baton_state_destroy(whole);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_steps_match_oracle),
        cmocka_unit_test(test_failed_step_is_undone),
        cmocka_unit_test(test_failure_names_smallest),
        cmocka_unit_test(test_plan_checked_every_step),
        cmocka_unit_test(test_replay_record_verify),
        cmocka_unit_test(test_replay_files),
        cmocka_unit_test(test_motion_rows),
        cmocka_unit_test(test_halo),
    };
    return cmocka_run_group_tests_name("engine/step", tests, group_setup, group_teardown);
}
