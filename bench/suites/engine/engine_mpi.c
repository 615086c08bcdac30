/*
 * engine_mpi.c — the mpi_step case of `baton-bench engine`: the motion scenario on 1, 2 and 4
 * MPI ranks of this machine (engine.c names the suite's other cases).
 *
 *   mpi_step  time (s, lower is better)  label "ranks": 1, 2, 4. Each run is
 *             `mpirun --oversubscribe -np R baton run SCENARIO --json` (the `baton` command of
 *             this build tree, BATON_CLI_PATH; $BATON_CLI overrides it): the motion rule over
 *             the suite's rows and steps on R partitions, one per rank, each rank on a pool of
 *             one worker; the time is the engine's total step time from the metrics, each
 *             step's fingerprint and its verification included (MPI's start-up is not). Check:
 *             the run verifies every step's fingerprint against a recording made in this
 *             process before the runs (single process, one partition), so each rank count
 *             computes the single process's states.
 * Skipped, with a note, when this build has no MPI or mpirun is not on PATH. On a machine
 * without ssh, Open MPI launches local ranks only with OMPI_MCA_plm=isolated, which the runs set.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baton/engine.h"
#include "bench.h"
#include "engine.h"

/* Everything up to bench_engine_mpi_run exists only in MPI builds, which alone run the case (the
 * others note it as skipped): unused static functions would fail -Werror elsewhere. */
#ifdef BATON_HAVE_MPI

#ifndef BATON_CLI_PATH
#define BATON_CLI_PATH "baton"
#endif
#define MPI_PATH_MAX 4096
#define MPI_CMD_MAX 16384

static const unsigned rank_counts[] = {1, 2, 4};
#define N_RANK_COUNTS (sizeof rank_counts / sizeof rank_counts[0])

typedef struct mpi_bench {
    char dir[MPI_PATH_MAX];
    char cli[MPI_PATH_MAX]; /* the `baton` command the ranks run */
    size_t rows;
    unsigned steps;
} mpi_bench;

typedef struct mpi_slot {
    mpi_bench *mb;
    unsigned ranks;
    char label[8];
} mpi_slot;

/* The first number after "key": in a line of `baton run --json` output. */
static bool json_u64(const char *text, const char *key, uint64_t *out)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\": ", key);
    const char *at = strstr(text, pattern);
    if (at == NULL)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(at + strlen(pattern), &end, 10);
    if (errno != 0 || end == at + strlen(pattern))
        return false;
    *out = v;
    return true;
}

static int measure_mpi(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    mpi_slot *ms = ctx;
    mpi_bench *mb = ms->mb;
    (void)workers;
    char scenario[MPI_PATH_MAX + 32], cmd[MPI_CMD_MAX];
    snprintf(scenario, sizeof scenario, "%s/ranks-%u.ini", mb->dir, ms->ranks);
    FILE *f = fopen(scenario, "w");
    if (f == NULL) {
        cmdline_errorf("bench engine: cannot write %s: %s", scenario, strerror(errno));
        return -1;
    }
    fprintf(f,
            "[workload]\nagents = %zu\nsteps = %u\nseed = %u\n[plan]\npartitions = %u\n"
            "[replay]\nmode = verify\nfile = %s/replay.bin\n[run]\nworkers = 1\n",
            mb->rows, mb->steps, BENCH_ENGINE_SEED, ms->ranks, mb->dir);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "OMPI_MCA_plm=isolated OMPI_MCA_btl_vader_single_copy_mechanism=none "
             "mpirun --oversubscribe %s -np %u '%s' run '%s' --json 2>/dev/null",
             geteuid() == 0 ? "--allow-run-as-root" : "", ms->ranks, mb->cli, scenario);
    FILE *p = popen(cmd, "r");
    if (p == NULL) {
        cmdline_errorf("bench engine: cannot start mpirun: %s", strerror(errno));
        return -1;
    }
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    uint64_t step_ns = 0, verified = 0;
    if (status != 0 || !json_u64(out, "total_step_ns", &step_ns) ||
        !json_u64(out, "fingerprints_verified", &verified)) {
        cmdline_errorf("bench engine: mpi_step on %u ranks failed (status %d): %s", ms->ranks,
                       status, out);
        return -1;
    }
    *out_value = (double)step_ns / 1e9;
    *out_correct = verified == mb->steps;
    return 0;
}

/* The recording every run verifies against: one process, one partition. */
static int record_reference(mpi_bench *mb, baton_pool *pool)
{
    baton_state *state = NULL;
    baton_engine *engine = NULL;
    int rc = baton_engine_motion_state(mb->rows, BENCH_ENGINE_SEED, &state);
    baton_engine_config cfg = {
        .struct_size = sizeof cfg, .pool = pool, .replay = BATON_REPLAY_RECORD};
    if (rc == 0 && (rc = baton_engine_create(&cfg, state, &engine)) != 0)
        baton_state_destroy(state);
    char path[MPI_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/replay.bin", mb->dir);
    if (rc == 0 && (rc = baton_engine_add_motion(engine)) == 0 &&
        (rc = baton_engine_run(engine, mb->steps, NULL, NULL)) == 0)
        rc = baton_engine_replay_save(engine, path);
    baton_engine_destroy(engine);
    if (rc != 0)
        cmdline_report_error(rc, "bench engine: the reference recording");
    return rc;
}

static bool mpirun_available(void)
{
    return system("command -v mpirun >/dev/null 2>&1") == 0;
}

static void remove_run_files(const mpi_bench *mb)
{
    char path[MPI_PATH_MAX + 32];
    for (size_t k = 0; k < N_RANK_COUNTS; k++) {
        snprintf(path, sizeof path, "%s/ranks-%u.ini", mb->dir, rank_counts[k]);
        (void)unlink(path);
    }
    snprintf(path, sizeof path, "%s/replay.bin", mb->dir);
    (void)unlink(path);
    (void)rmdir(mb->dir);
}

#endif /* BATON_HAVE_MPI */

int bench_engine_mpi_run(const bench_options *options, bench_report *report, baton_pool *pool,
                         size_t rows, unsigned steps)
{
#ifndef BATON_HAVE_MPI
    (void)options;
    (void)pool;
    (void)rows;
    (void)steps;
    bench_report_note(report, "mpi_step", "skipped: this build has no MPI");
    return 0;
#else
    if (!mpirun_available()) {
        bench_report_note(report, "mpi_step", "skipped: mpirun is not on PATH");
        return 0;
    }
    static mpi_bench mb;
    static mpi_slot slots_ctx[N_RANK_COUNTS];
    mb.rows = rows;
    mb.steps = steps;
    const char *cli = getenv("BATON_CLI");
    if (cli == NULL || cli[0] == '\0')
        cli = BATON_CLI_PATH;
    const char *base = cmdline_temp_base();
    if ((size_t)snprintf(mb.cli, sizeof mb.cli, "%s", cli) >= sizeof mb.cli ||
        (size_t)snprintf(mb.dir, sizeof mb.dir, "%s/baton-bench-mpi-XXXXXX", base) >=
            sizeof mb.dir ||
        mkdtemp(mb.dir) == NULL) {
        cmdline_errorf("bench engine: the path of baton is too long, or cannot make a directory "
                       "under %s",
                       base);
        return -1;
    }
    if (record_reference(&mb, pool) != 0) {
        remove_run_files(&mb);
        return -1;
    }
    bench_report_note(report, "mpi_step",
                      "%zu rows x %u steps of the motion rule, one partition per rank, each rank "
                      "on a pool of 1 worker, each step's fingerprint verified; `mpirun "
                      "--oversubscribe -np R baton run`; time: the engine's steps (MPI's start-up "
                      "not counted)",
                      rows, steps);
    bench_slot slots[N_RANK_COUNTS];
    size_t n = 0;
    int rc = 0;
    for (size_t k = 0; k < N_RANK_COUNTS && rc == 0; k++) {
        mpi_slot *ms = &slots_ctx[k];
        ms->mb = &mb;
        ms->ranks = rank_counts[k];
        snprintf(ms->label, sizeof ms->label, "%u", ms->ranks);
        bench_record tmpl = {.suite = "engine",
                             .case_name = "mpi_step",
                             .metric = "time",
                             .unit = "s",
                             .higher_is_better = false,
                             .label_name = "ranks",
                             .label = ms->label};
        if (!bench_slots_add(slots, &n, N_RANK_COUNTS, report, options->runs, &tmpl, "baton",
                             ms->ranks, measure_mpi, ms))
            rc = -1;
    }
    if (rc == 0)
        bench_run_slots("mpi_step", slots, n, options->runs);
    remove_run_files(&mb);
    return rc;
#endif
}
