/*
 * test_engine_mpi.c — the engine's MPI executor, run by CTest under `mpirun --oversubscribe -np 3`
 * (tests/cli/run_mpi_test.sh), every rank running this program, each step compared with the same
 * engine run locally, in one process, on every rank:
 *  - REPLICATED: each rank creates the whole state; from the first step on it holds only its
 *    partitions' rows (6 partitions round-robin, not aligned to fingerprint chunks: its ids are
 *    exactly theirs, in row order), and each step's fingerprint equals the local run's, with a
 *    phase that reads 2 rows past its partition (halo rows, from other ranks);
 *  - a phase that fails in partition 4 (rank 1's) makes the step fail on every rank with the
 *    same code and a message naming partition 4, every rank's rows are as before the step and
 *    the step counter stays; the next steps agree with the local run again;
 *  - a new plan (4 partitions, other ranks, other bounds) moves the rows to their new ranks at
 *    the next step, and the fingerprints go on agreeing;
 *  - a checkpoint taken under the first plan and restored under the second brings the rows,
 *    and where they lie, back; the steps after it agree with the local engine's after its
 *    restore;
 *  - metrics: the global row count, partitions summed over the ranks;
 *  - rows added once distributed fail the next step with BATON_EPERM on every rank;
 *  - OWNED: each rank creates only its share and the run agrees with the local one; a rank
 *    whose share does not fit the plan fails the first step with BATON_EMISMATCH on every rank;
 *  - no plan set: the default plan (one partition per rank) agrees with the local run, each
 *    rank holding its partition's rows (REPLICATED and OWNED, and after set_plan(NULL)), also
 *    with fewer rows than ranks and with none; baton_engine_fingerprint equals the local
 *    engine's, also before the first step;
 *  - several failing partitions on one rank or on several, each rank's partitions on a pool:
 *    every run returns the smallest one's code and the same message naming it, on every rank;
 *  - create with workers other than the rank count: BATON_EINVAL naming both, on every rank.
 * Plain exit codes (0: pass), so that mpirun's status is the verdict.
 */
#include "support/bt_engine.h"

#include <mpi.h>

#define ROWS 10007u
#define PARTITIONS 6u

static int g_rank;
/* The engines' handles, where the smooth phase finds its engine (see bt_engine.h). */
static baton_engine *g_engines[16];
static size_t g_n_engines;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "rank %d: FAIL at line %d: ", g_rank, __LINE__);                       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
        }                                                                                          \
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
    int64_t *n = baton_state_int64(st, BT_COL_N);
    for (size_t i = begin; i < end; i++)
        n[i] += 100;
    return fs->armed && partition == fs->partition ? BATON_ERANGE : 0;
}

/* The second plan: 4 partitions over the 3 ranks, bounds unlike the first plan's. */
static baton_plan *second_plan(void)
{
    const baton_partition parts[] = {
        {0, 2500, 2}, {2500, 2501, 0}, {2501, 9000, 1}, {9000, ROWS, 0}};
    baton_plan *plan = NULL;
    CHECK(baton_plan_create(parts, 4, 3, &plan) == 0, "plan");
    return plan;
}

/* Rank `rank`'s share of the whole state under plan: its partitions' rows, in row order. */
static baton_state *own_share(const baton_plan *plan, unsigned rank)
{
    baton_state *st = NULL;
    CHECK(bt_build_state(ROWS, false, &st) == 0, "build_state");
    uint64_t *others = malloc(ROWS * sizeof *others);
    size_t n = 0;
    CHECK(others != NULL, "memory");
    for (size_t i = 0; i < baton_plan_partitions(plan); i++) {
        baton_partition p = baton_plan_partition(plan, i);
        for (size_t r = p.begin; p.worker != rank && r < p.end; r++)
            others[n++] = baton_state_ids(st)[r];
    }
    CHECK(baton_state_remove_rows(st, others, n) == 0, "remove_rows");
    free(others);
    return st;
}

static baton_engine *make_engine(baton_executor_kind executor, baton_mpi_rows rows,
                                 const baton_plan *plan, fail_switch *fs)
{
    baton_state *st = NULL;
    if (rows == BATON_MPI_ROWS_OWNED)
        st = own_share(plan, (unsigned)g_rank);
    else
        CHECK(bt_build_state(ROWS, false, &st) == 0, "build_state");
    baton_engine_config cfg = {.struct_size = sizeof cfg,
                               .replay = BATON_REPLAY_RECORD,
                               .executor = executor,
                               .mpi_rows = rows};
    baton_engine *engine = NULL;
    int rc = baton_engine_create(&cfg, st, &engine);
    CHECK(rc == 0, "baton_engine_create: %s", baton_last_error_message());
    baton_phase_spec a = {"advance", bt_advance, NULL, bt_writes_advance, 2, 0, 0};
    const size_t writes_n[] = {BT_COL_N};
    baton_phase_spec c = {"check", check_phase, fs, writes_n, 1, 0, 0};
    /* Reads x 2 rows past its partition: under MPI, often another rank's rows. */
    baton_engine **handle = &g_engines[g_n_engines++];
    baton_phase_spec sm = {"smooth", bt_smooth, handle, bt_writes_smooth, 1, 0, BT_SMOOTH_HALO};
    CHECK(baton_engine_add_phase(engine, &a) == 0 && baton_engine_add_phase(engine, &c) == 0 &&
              baton_engine_add_phase(engine, &sm) == 0,
          "add_phase: %s", baton_last_error_message());
    *handle = engine;
    if (executor == BATON_EXECUTOR_MPI)
        CHECK(baton_engine_set_plan(engine, plan) == 0, "set_plan");
    return engine;
}

/* baton_engine_fingerprint agrees on both engines (under MPI: the global state's). */
static void fingerprints_agree(baton_engine *local, baton_engine *mpi)
{
    uint64_t lf = 0, mf = 0;
    CHECK(baton_engine_fingerprint(local, &lf) == 0, "local: %s", baton_last_error_message());
    CHECK(baton_engine_fingerprint(mpi, &mf) == 0, "mpi: %s", baton_last_error_message());
    CHECK(lf == mf && lf != 0, "baton_engine_fingerprint: local 0x%016llx, MPI 0x%016llx",
          (unsigned long long)lf, (unsigned long long)mf);
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
              "step %llu: local fingerprint 0x%016llx, MPI 0x%016llx", (unsigned long long)lr.step,
              (unsigned long long)lr.fingerprint, (unsigned long long)mr.fingerprint);
    }
}

/* The rank's state holds exactly its partitions' rows under plan, as the local state has them. */
static void check_share(baton_engine *local, baton_engine *mpi, const baton_plan *plan)
{
    baton_state *ls = baton_engine_state(local), *ms = baton_engine_state(mpi);
    size_t at = 0;
    for (size_t i = 0; i < baton_plan_partitions(plan); i++) {
        baton_partition p = baton_plan_partition(plan, i);
        if (p.worker != (unsigned)g_rank)
            continue;
        size_t n = p.end - p.begin;
        CHECK(at + n <= baton_state_rows(ms), "rank holds %zu rows, fewer than its partitions",
              baton_state_rows(ms));
        CHECK(memcmp(baton_state_ids(ms) + at, baton_state_ids(ls) + p.begin, n * 8) == 0 &&
                  memcmp(baton_state_double(ms, BT_COL_X) + at,
                         baton_state_double(ls, BT_COL_X) + p.begin, n * 8) == 0 &&
                  memcmp(baton_state_int64(ms, BT_COL_N) + at,
                         baton_state_int64(ls, BT_COL_N) + p.begin, n * 8) == 0,
              "partition %zu's rows differ from the local run's", i);
        at += n;
    }
    CHECK(at == baton_state_rows(ms), "rank holds %zu rows, its partitions %zu",
          baton_state_rows(ms), at);
}

/* A copy of the rank's rows (x and n), to compare after a failed step. */
typedef struct share_copy {
    size_t rows;
    double *x;
    int64_t *n;
} share_copy;

static share_copy share_take(baton_engine *mpi)
{
    baton_state *st = baton_engine_state(mpi);
    share_copy c = {baton_state_rows(st), NULL, NULL};
    c.x = malloc((c.rows + 1) * sizeof *c.x);
    c.n = malloc((c.rows + 1) * sizeof *c.n);
    CHECK(c.x != NULL && c.n != NULL, "memory");
    memcpy(c.x, baton_state_double(st, BT_COL_X), c.rows * sizeof *c.x);
    memcpy(c.n, baton_state_int64(st, BT_COL_N), c.rows * sizeof *c.n);
    return c;
}

static bool share_same(baton_engine *mpi, const share_copy *c)
{
    baton_state *st = baton_engine_state(mpi);
    return baton_state_rows(st) == c->rows &&
           memcmp(c->x, baton_state_double(st, BT_COL_X), c->rows * sizeof *c->x) == 0 &&
           memcmp(c->n, baton_state_int64(st, BT_COL_N), c->rows * sizeof *c->n) == 0;
}

static void test_replicated(void)
{
    baton_plan *first = NULL, *second = second_plan();
    CHECK(baton_plan_create_static(ROWS, PARTITIONS, 3, &first) == 0, "plan");
    fail_switch local_fs = {false, 4}, mpi_fs = {false, 4};
    baton_engine *local = make_engine(BATON_EXECUTOR_LOCAL, 0, NULL, &local_fs);
    baton_engine *mpi = make_engine(BATON_EXECUTOR_MPI, BATON_MPI_ROWS_REPLICATED, first, &mpi_fs);
    step_both(local, mpi, 3);
    check_share(local, mpi, first);

    /* Partition 4 is rank 1's (round-robin): every rank must fail the step, and undo it. */
    share_copy before = share_take(mpi);
    mpi_fs.armed = true;
    int rc = baton_engine_step(mpi, NULL);
    CHECK(rc == BATON_ERANGE, "the failing step returned %d", rc);
    CHECK(strstr(baton_last_error_message(), "partition 4") != NULL &&
              strstr(baton_last_error_message(), "\"check\"") != NULL,
          "message: %s", baton_last_error_message());
    CHECK(baton_engine_current_step(mpi) == 3, "step counter moved");
    CHECK(share_same(mpi, &before), "the failed step was not undone");
    mpi_fs.armed = false;
    free(before.x);
    free(before.n);
    step_both(local, mpi, 2);

    /* A checkpoint under the first plan; then the second plan moves rows. */
    CHECK(baton_engine_checkpoint(local, "first") == 0 &&
              baton_engine_checkpoint(mpi, "first") == 0,
          "checkpoint: %s", baton_last_error_message());
    CHECK(baton_engine_set_plan(mpi, second) == 0, "set_plan");
    step_both(local, mpi, 3);
    check_share(local, mpi, second);

    baton_engine_metrics m;
    CHECK(baton_engine_get_metrics(mpi, &m) == 0, "metrics");
    CHECK(m.rows == ROWS, "metrics: %zu rows", m.rows);
    CHECK(m.partition_steps == 3u * (5u * PARTITIONS + 3u * 4u) &&
              m.partition_rows == 3u * 8u * ROWS,
          "summed metrics: %llu partition steps over %llu rows",
          (unsigned long long)m.partition_steps, (unsigned long long)m.partition_rows);
    CHECK(m.steps_failed == 1 && m.steps_completed == 8, "steps: %llu completed, %llu failed",
          (unsigned long long)m.steps_completed, (unsigned long long)m.steps_failed);

    /* Back to the checkpoint: the first plan's placement with it; the plan set is the second,
     * so the next step moves the rows again. */
    CHECK(baton_engine_restore(local, "first") == 0 && baton_engine_restore(mpi, "first") == 0,
          "restore: %s", baton_last_error_message());
    check_share(local, mpi, first);
    step_both(local, mpi, 2);
    check_share(local, mpi, second);

    /* Rows added once distributed: every rank refuses the step. */
    const uint64_t extra_id = 1;
    if (g_rank == 2)
        CHECK(baton_state_add_rows(baton_engine_state(mpi), &extra_id, 1, NULL) == 0, "add");
    rc = baton_engine_step(mpi, NULL);
    CHECK(rc == BATON_EPERM && strstr(baton_last_error_message(), "rank 2") != NULL,
          "a step after adding rows returned %d: %s", rc, baton_last_error_message());

    baton_engine_destroy(mpi);
    baton_engine_destroy(local);
    baton_plan_destroy(first);
    baton_plan_destroy(second);
}

static void test_owned(void)
{
    baton_plan *plan = second_plan();
    fail_switch local_fs = {false, 0}, mpi_fs = {false, 0};
    baton_engine *local = make_engine(BATON_EXECUTOR_LOCAL, 0, NULL, &local_fs);
    baton_engine *mpi = make_engine(BATON_EXECUTOR_MPI, BATON_MPI_ROWS_OWNED, plan, &mpi_fs);
    step_both(local, mpi, 3);
    check_share(local, mpi, plan);
    baton_engine_destroy(mpi);

    /* Shares for another plan: rank 0's does not fit this one's. */
    baton_plan *other = NULL;
    CHECK(baton_plan_create_static(ROWS, PARTITIONS, 3, &other) == 0, "plan");
    baton_engine *wrong = make_engine(BATON_EXECUTOR_MPI, BATON_MPI_ROWS_OWNED, other, &mpi_fs);
    CHECK(baton_engine_set_plan(wrong, plan) == 0, "set_plan");
    int rc = baton_engine_step(wrong, NULL);
    CHECK(rc == BATON_EMISMATCH && strstr(baton_last_error_message(), "rank 0 holds") != NULL,
          "a step over misfit shares returned %d: %s", rc, baton_last_error_message());
    baton_engine_destroy(wrong);
    baton_engine_destroy(local);
    baton_plan_destroy(other);
    baton_plan_destroy(plan);
}

/* An engine of `rows` rows and the advance phase only, with no plan set. */
static baton_engine *small_engine(baton_executor_kind executor, size_t rows)
{
    baton_state *st = NULL;
    CHECK(bt_build_state(rows, false, &st) == 0, "build_state");
    baton_engine_config cfg = {
        .struct_size = sizeof cfg, .replay = BATON_REPLAY_RECORD, .executor = executor};
    baton_engine *engine = NULL;
    CHECK(baton_engine_create(&cfg, st, &engine) == 0, "create: %s", baton_last_error_message());
    baton_phase_spec a = {"advance", bt_advance, NULL, bt_writes_advance, 2, 0, 0};
    CHECK(baton_engine_add_phase(engine, &a) == 0, "add_phase: %s", baton_last_error_message());
    return engine;
}

/* No plan set: the default plan (one partition per rank) runs on any rank count, each rank
 * holding its partition's rows, and agrees with a local run; set_plan(NULL) goes back to it;
 * OWNED shares of that plan run with no plan set (as `baton run` builds them); fewer rows than
 * ranks, and no rows, run too. */
static void test_default_plan(void)
{
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    baton_plan *per_rank = NULL, *second = second_plan();
    CHECK(baton_plan_create_per_worker(ROWS, (unsigned)size, &per_rank) == 0, "plan");
    fail_switch local_fs = {false, 0}, mpi_fs = {false, 0};
    baton_engine *local = make_engine(BATON_EXECUTOR_LOCAL, 0, NULL, &local_fs);
    baton_engine *mpi = make_engine(BATON_EXECUTOR_MPI, BATON_MPI_ROWS_REPLICATED, NULL, &mpi_fs);
    fingerprints_agree(local, mpi); /* before the first step: distributes the rows first */
    check_share(local, mpi, per_rank);
    step_both(local, mpi, 3);
    check_share(local, mpi, per_rank);
    fingerprints_agree(local, mpi);
    CHECK(baton_engine_set_plan(mpi, second) == 0, "set_plan");
    step_both(local, mpi, 1);
    check_share(local, mpi, second);
    CHECK(baton_engine_set_plan(mpi, NULL) == 0, "set_plan(NULL)");
    step_both(local, mpi, 2);
    check_share(local, mpi, per_rank);
    baton_engine_destroy(mpi);
    baton_engine_destroy(local);

    local = make_engine(BATON_EXECUTOR_LOCAL, 0, NULL, &local_fs);
    mpi = make_engine(BATON_EXECUTOR_MPI, BATON_MPI_ROWS_OWNED, per_rank, &mpi_fs);
    CHECK(baton_engine_set_plan(mpi, NULL) == 0, "set_plan(NULL)");
    fingerprints_agree(local, mpi);
    step_both(local, mpi, 3);
    check_share(local, mpi, per_rank);
    baton_engine_destroy(mpi);
    baton_engine_destroy(local);

    const size_t few[] = {2, 1, 0};
    for (size_t k = 0; k < sizeof few / sizeof few[0]; k++) {
        local = small_engine(BATON_EXECUTOR_LOCAL, few[k]);
        mpi = small_engine(BATON_EXECUTOR_MPI, few[k]);
        for (unsigned i = 0; i < 3; i++) {
            baton_step_report lr, mr;
            CHECK(baton_engine_step(local, &lr) == 0, "local step: %s", baton_last_error_message());
            CHECK(baton_engine_step(mpi, &mr) == 0, "%zu rows: mpi step: %s", few[k],
                  baton_last_error_message());
            CHECK(lr.fingerprint == mr.fingerprint, "%zu rows: step %u: fingerprints differ",
                  few[k], i);
        }
        size_t mine = (size_t)g_rank < few[k] ? 1 : 0;
        CHECK(baton_state_rows(baton_engine_state(mpi)) == mine, "%zu rows: rank holds %zu", few[k],
              baton_state_rows(baton_engine_state(mpi)));
        baton_engine_destroy(mpi);
        baton_engine_destroy(local);
    }
    baton_plan_destroy(second);
    baton_plan_destroy(per_rank);
}

/* fails_in: fails in each partition whose flag is set, with a code naming it; partition
 * wait_in first waits (bounded) for partition wait_for to have returned, the schedule that
 * used to let a larger failure cancel a smaller partition before it started. */
#define FAIL_PARTS 48u

typedef struct fail_set {
    bool fail[FAIL_PARTS];
    size_t wait_in, wait_for;
    baton_pool *pool;
    atomic_int returned;
} fail_set;

static int fails_in(baton_state *st, size_t begin, size_t end, size_t partition, uint64_t step,
                    void *ctx)
{
    (void)step;
    fail_set *fs = ctx;
    if (partition == fs->wait_in)
        (void)bt_wait_flag_nudging(fs->pool, &fs->returned, 2000);
    int64_t *n = baton_state_int64(st, BT_COL_N);
    for (size_t i = begin; i < end; i++)
        n[i] += 100;
    int rc = fs->fail[partition] ? -(1000 + (int)partition) : 0;
    if (partition == fs->wait_for)
        atomic_store(&fs->returned, 1);
    return rc;
}

/* Several failing partitions on several ranks, each rank's partitions on a pool of 4: every
 * rank returns the smallest one's code and the same message, in every run. */
static void test_failure_names_smallest(void)
{
    baton_pool_config pc = bt_pool_config(4, 0, 0);
    baton_pool *pool = NULL;
    CHECK(baton_pool_create(&pc, &pool) == 0, "pool");
    baton_plan *plan = NULL;
    CHECK(baton_plan_create_static(ROWS, FAIL_PARTS, 3, &plan) == 0, "plan");
    /* {smallest, other, wait_in}: partition 4 and 40 are rank 1's, as is 1; 2 is rank 2's and
     * 3 rank 0's; SIZE_MAX in other: every partition fails. */
    const size_t cases[][3] = {
        {4, 40, 1}, {2, 3, SIZE_MAX}, {0, FAIL_PARTS - 1, SIZE_MAX}, {0, SIZE_MAX, SIZE_MAX}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fail_set fs = {.wait_in = cases[k][2], .wait_for = cases[k][1], .pool = pool};
        for (size_t i = 0; i < FAIL_PARTS; i++)
            fs.fail[i] = cases[k][1] == SIZE_MAX || i == cases[k][0] || i == cases[k][1];
        baton_state *st = NULL;
        CHECK(bt_build_state(ROWS, false, &st) == 0, "build_state");
        baton_engine_config cfg = {
            .struct_size = sizeof cfg, .pool = pool, .executor = BATON_EXECUTOR_MPI};
        baton_engine *engine = NULL;
        CHECK(baton_engine_create(&cfg, st, &engine) == 0, "create: %s",
              baton_last_error_message());
        const size_t writes_n[] = {BT_COL_N};
        baton_phase_spec f = {"check", fails_in, &fs, writes_n, 1, 0, 0};
        CHECK(baton_engine_add_phase(engine, &f) == 0 && baton_engine_set_plan(engine, plan) == 0,
              "setup: %s", baton_last_error_message());
        baton_partition p = baton_plan_partition(plan, cases[k][0]);
        char names[96], first[512] = "";
        snprintf(names, sizeof names, "partition %zu (rows [%zu, %zu))", cases[k][0], p.begin,
                 p.end);
        for (unsigned r = 0; r < 10; r++) {
            atomic_store(&fs.returned, 0);
            int rc = baton_engine_step(engine, NULL);
            CHECK(rc == -(1000 + (int)cases[k][0]) &&
                      strstr(baton_last_error_message(), names) != NULL,
                  "case %zu, run %u: %d: %s", k, r, rc, baton_last_error_message());
            if (r == 0)
                snprintf(first, sizeof first, "%s", baton_last_error_message());
            CHECK(strcmp(first, baton_last_error_message()) == 0, "message \"%s\", then \"%s\"",
                  first, baton_last_error_message());
            CHECK(baton_engine_current_step(engine) == 0, "the step counter moved");
        }
        baton_engine_destroy(engine);
    }
    baton_plan_destroy(plan);
    CHECK(baton_pool_destroy(pool) == 0, "pool_destroy");
}

/* Create: workers other than the rank count is BATON_EINVAL naming both, on every rank; the
 * rank count, or 0, is fine. */
static void test_create_workers(void)
{
    baton_state *st = NULL;
    CHECK(bt_build_state(10, false, &st) == 0, "build_state");
    baton_engine_config cfg = {
        .struct_size = sizeof cfg, .executor = BATON_EXECUTOR_MPI, .workers = 2};
    baton_engine *engine = NULL;
    int rc = baton_engine_create(&cfg, st, &engine);
    CHECK(rc == BATON_EINVAL && engine == NULL &&
              strstr(baton_last_error_message(), "workers 2") != NULL &&
              strstr(baton_last_error_message(), "3 ranks") != NULL,
          "create with workers 2 on 3 ranks: %d: %s", rc, baton_last_error_message());
    cfg.workers = 3;
    CHECK(baton_engine_create(&cfg, st, &engine) == 0, "workers 3: %s", baton_last_error_message());
    baton_engine_destroy(engine);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 3, "run with 3 ranks, not %d", size);
    test_replicated();
    test_owned();
    test_default_plan();
    test_failure_names_smallest();
    test_create_workers();
    if (g_rank == 0)
        printf("engine mpi: 3 ranks: distributed rows, fingerprints, failure and undo, plan "
               "changes, restore and OWNED shares agree with a local run\n");
    MPI_Finalize();
    return 0;
}
