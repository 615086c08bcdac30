/*
 * test_engine_mpi.c — the engine's MPI executor, run by CTest under `mpirun --oversubscribe -np 3`
 * (tests/cli/run_mpi_test.sh), every rank running this program:
 *  - each step's fingerprint on 6 partitions over the ranks (not aligned to fingerprint chunks)
 *    equals that of the same engine run locally, in one process, on every rank;
 *  - a phase that fails in partition 4 (rank 1's) makes the step fail on every rank with the
 *    same code and a message naming partition 4, every rank's arrays are as before the step and
 *    the step counter stays; the next steps agree with the local run again;
 *  - the metrics are summed over the ranks.
 * Plain exit codes (0: pass), so that mpirun's status is the verdict.
 */
#include "engine_test_util.h"

#include <mpi.h>

#define ROWS 10007u
#define PARTITIONS 6u

static int g_rank;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "rank %d: FAIL at line %d: ", g_rank, __LINE__);                      \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fprintf(stderr, "\n");                                                                \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                         \
        }                                                                                         \
    } while (0)

typedef struct fail_switch {
    bool armed;
    size_t partition;
} fail_switch;

/* Writes its rows (n += 100), then fails in `partition` while armed. */
static int check_phase(baton_state *st, size_t begin, size_t end, size_t partition, uint64_t step,
                       void *ctx)
{
    const fail_switch *fs = ctx;
    (void)step;
    int64_t *n = baton_state_int64(st, COL_N);
    for (size_t i = begin; i < end; i++)
        n[i] += 100;
    return fs->armed && partition == fs->partition ? BATON_ERANGE : 0;
}

static baton_engine *make_engine(baton_executor_kind executor, unsigned ranks, fail_switch *fs)
{
    baton_state *st = NULL;
    CHECK(build_state(ROWS, false, &st) == 0, "build_state");
    baton_engine_config cfg = {.struct_size = sizeof cfg,
                               .replay = BATON_REPLAY_RECORD,
                               .executor = executor};
    baton_engine *engine = NULL;
    int rc = baton_engine_create(&cfg, st, &engine);
    CHECK(rc == 0, "baton_engine_create: %s", baton_last_error_message());
    baton_phase_spec a = {"advance", advance, NULL, writes_advance, 2, 0};
    const size_t writes_n[] = {COL_N};
    baton_phase_spec c = {"check", check_phase, fs, writes_n, 1, 0};
    CHECK(baton_engine_add_phase(engine, &a) == 0 && baton_engine_add_phase(engine, &c) == 0,
          "add_phase: %s", baton_last_error_message());
    if (executor == BATON_EXECUTOR_MPI) {
        baton_plan *plan = NULL;
        CHECK(baton_plan_create_static(ROWS, PARTITIONS, ranks, &plan) == 0, "plan");
        CHECK(baton_engine_set_plan(engine, plan) == 0, "set_plan");
        baton_plan_destroy(plan);
    }
    return engine;
}

/* Steps both engines n times; every step's fingerprints must agree. */
static void step_both(baton_engine *local, baton_engine *mpi, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        baton_step_report lr, mr;
        CHECK(baton_engine_step(local, &lr) == 0, "local step: %s", baton_last_error_message());
        CHECK(baton_engine_step(mpi, &mr) == 0, "mpi step: %s", baton_last_error_message());
        CHECK(lr.step == mr.step, "steps %llu and %llu", (unsigned long long)lr.step,
              (unsigned long long)mr.step);
        CHECK(lr.fingerprint == mr.fingerprint && lr.fingerprint != 0,
              "step %llu: local fingerprint 0x%016llx, MPI 0x%016llx",
              (unsigned long long)lr.step, (unsigned long long)lr.fingerprint,
              (unsigned long long)mr.fingerprint);
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 3, "run with 3 ranks, not %d", size);

    fail_switch local_fs = {false, 4}, mpi_fs = {false, 4};
    baton_engine *local = make_engine(BATON_EXECUTOR_LOCAL, 1, &local_fs);
    baton_engine *mpi = make_engine(BATON_EXECUTOR_MPI, (unsigned)size, &mpi_fs);
    step_both(local, mpi, 3);

    /* Partition 4 is rank 1's (round-robin): every rank must fail the step, and undo it. */
    baton_state *st = baton_engine_state(mpi);
    double *x_before = malloc(ROWS * sizeof *x_before);
    int64_t *n_before = malloc(ROWS * sizeof *n_before);
    CHECK(x_before != NULL && n_before != NULL, "memory");
    memcpy(x_before, baton_state_double(st, COL_X), ROWS * sizeof *x_before);
    memcpy(n_before, baton_state_int64(st, COL_N), ROWS * sizeof *n_before);
    mpi_fs.armed = true;
    int rc = baton_engine_step(mpi, NULL);
    CHECK(rc == BATON_ERANGE, "the failing step returned %d", rc);
    CHECK(strstr(baton_last_error_message(), "partition 4") != NULL &&
              strstr(baton_last_error_message(), "\"check\"") != NULL,
          "message: %s", baton_last_error_message());
    CHECK(baton_engine_current_step(mpi) == 3, "step counter moved");
    CHECK(memcmp(x_before, baton_state_double(st, COL_X), ROWS * sizeof *x_before) == 0 &&
              memcmp(n_before, baton_state_int64(st, COL_N), ROWS * sizeof *n_before) == 0,
          "the failed step was not undone");
    mpi_fs.armed = false;
    step_both(local, mpi, 2);

    baton_engine_metrics m;
    CHECK(baton_engine_get_metrics(mpi, &m) == 0, "metrics");
    CHECK(m.partition_steps == 5u * 2u * PARTITIONS && m.partition_rows == 5u * 2u * ROWS,
          "summed metrics: %llu partition steps over %llu rows",
          (unsigned long long)m.partition_steps, (unsigned long long)m.partition_rows);
    CHECK(m.steps_failed == 1 && m.steps_completed == 5, "steps: %llu completed, %llu failed",
          (unsigned long long)m.steps_completed, (unsigned long long)m.steps_failed);

    free(x_before);
    free(n_before);
    baton_engine_destroy(mpi);
    baton_engine_destroy(local);
    if (g_rank == 0)
        printf("engine mpi: 3 ranks, %u partitions: fingerprints, failure and undo agree\n",
               PARTITIONS);
    MPI_Finalize();
    return 0;
}
