/*
 * run.c — `baton run SCENARIO` and `baton run --resume DIR`: runs a workload through the step
 * engine as an INI scenario file describes it, printing progress while it runs and the engine's
 * metrics at the end (--json: one JSON object instead).
 *
 * The scenario (INI, parsed with libinih; unknown sections or keys are errors, so that a typo
 * does not silently run the defaults):
 *
 *   [workload]   rule = motion (the built-in rule; the only one), agents = N (1000000),
 *                steps = N (100), seed = N (42)
 *   [plan]       partitions = N (0: the engine's default plan: the single plan, or under mpirun
 *                one partition per rank), workers = N (0: the pool's)
 *   [checkpoint] policy = disabled | every (disabled), every = N, keep = K (1), dir = PATH,
 *                sync = true | false (false)
 *   [replay]     mode = off | record | verify (off), file = PATH (record: written at the end;
 *                verify: read before the first step)
 *   [run]        workers = N (pool workers; 0: one per CPU)
 *
 * A run whose scenario names a checkpoint directory copies the scenario file into it
 * (scenario.ini), so that `baton run --resume DIR` needs nothing else: it reads DIR/scenario.ini
 * (or the SCENARIO given), restores the newest valid checkpoint in DIR (state and step counter)
 * and goes on until `steps` steps are done. Relative paths in a scenario are relative to the
 * current directory. Checkpoints carry the scenario's identity, "rule=R agents=N seed=S" (what
 * makes the states; not the steps, nor the plan): a run, fresh or resumed, whose checkpoint
 * directory (or --resume DIR) holds another scenario's checkpoints, or checkpoints of no
 * identity, stops before its first step with a message naming the directory and both
 * identities, and leaves it as it was.
 *
 * The metrics printed at the end include the fingerprint of the final state
 * (baton_engine_fingerprint; with --json "fingerprint": "0x..."), the same for any plan, worker
 * or rank count, so that two runs compare without a replay file.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "baton/engine.h"
#include "cli.h"

#ifdef BATON_HAVE_MPI
#include <mpi.h>
#endif

#define RUN_PATH_MAX 4096

typedef struct scenario {
    char rule[32];
    uint64_t agents, steps, seed;
    uint64_t partitions, plan_workers;
    baton_checkpoint_policy policy;
    uint64_t every, keep;
    bool sync;
    char checkpoint_dir[RUN_PATH_MAX];
    baton_replay_mode replay;
    char replay_file[RUN_PATH_MAX];
    uint64_t workers;
    char error[256]; /* the first problem found while parsing */
} scenario;

typedef struct run_options {
    const char *scenario_path;
    const char *resume_dir;
    bool json;
    bool mpi;       /* started under mpirun: the MPI executor */
    int rank;       /* this process's rank (0 without MPI) */
    unsigned ranks; /* the number of ranks (1 without MPI) */
} run_options;

void cli_run_usage(FILE *out)
{
    fputs("usage: baton run SCENARIO [--json]\n"
          "       baton run [SCENARIO] --resume DIR [--json]\n"
          "  Runs the scenario (an INI file: [workload] rule, agents, steps, seed; [plan]\n"
          "  partitions, workers; [checkpoint] policy, every, keep, dir, sync; [replay] mode,\n"
          "  file; [run] workers) through the step engine, with a progress line, then prints\n"
          "  the engine's metrics. Without [plan] partitions the engine's default plan runs:\n"
          "  one partition, or under mpirun one partition per rank.\n"
          "  --resume DIR  continue from the newest valid checkpoint in DIR (the scenario\n"
          "                defaults to DIR/scenario.ini, which a run with a checkpoint dir\n"
          "                leaves there)\n"
          "  Checkpoints carry the scenario (rule, agents, seed): a run refuses a checkpoint\n"
          "  directory holding another scenario's checkpoints, naming both. Files: DIR/ckpt-\n"
          "  <step, 20 digits>-<name>.bck (name: auto, or the one given), a large one's second\n"
          "  half in <file>.part; <file>.tmp while being written; under mpirun in DIR/rank-R.\n"
          "  --json        print the metrics as one JSON object (with \"fingerprint\", the\n"
          "                final state's, as a hex string)\n",
          out);
}

/* ---- the scenario file ----------------------------------------------------------------------- */

static bool parse_u64(const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return false;
    *out = v;
    return true;
}

static bool copy_text(char *dst, size_t cap, const char *value)
{
    size_t n = strlen(value);
    if (n == 0 || n >= cap)
        return false;
    memcpy(dst, value, n + 1);
    return true;
}

/* Keeps the first problem; returning 0 makes ini_parse report this line as its first error
 * (Debian's libinih passes no line number to the handler). */
static int fail_key(scenario *sc, const char *section, const char *key, const char *value,
                    const char *why)
{
    if (sc->error[0] == '\0')
        snprintf(sc->error, sizeof sc->error, "[%s] %s = %s: %s", section, key, value, why);
    return 0;
}

/* inih's callback: one key at a time. */
static int scenario_key(void *user, const char *section, const char *key, const char *value)
{
    scenario *sc = user;
    uint64_t *number = NULL;
    if (strcmp(section, "workload") == 0) {
        if (strcmp(key, "rule") == 0) {
            if (strcmp(value, "motion") != 0)
                return fail_key(sc, section, key, value, "the only rule built in is motion");
            return copy_text(sc->rule, sizeof sc->rule, value);
        }
        number = strcmp(key, "agents") == 0  ? &sc->agents
                 : strcmp(key, "steps") == 0 ? &sc->steps
                 : strcmp(key, "seed") == 0  ? &sc->seed
                                             : NULL;
    } else if (strcmp(section, "plan") == 0) {
        number = strcmp(key, "partitions") == 0 ? &sc->partitions
                 : strcmp(key, "workers") == 0  ? &sc->plan_workers
                                                : NULL;
    } else if (strcmp(section, "checkpoint") == 0) {
        if (strcmp(key, "policy") == 0) {
            if (strcmp(value, "disabled") == 0)
                sc->policy = BATON_CHECKPOINT_DISABLED;
            else if (strcmp(value, "every") == 0)
                sc->policy = BATON_CHECKPOINT_EVERY;
            else
                return fail_key(sc, section, key, value, "expected disabled or every");
            return 1;
        }
        if (strcmp(key, "dir") == 0)
            return copy_text(sc->checkpoint_dir, sizeof sc->checkpoint_dir, value)
                       ? 1
                       : fail_key(sc, section, key, value, "empty or too long");
        if (strcmp(key, "sync") == 0) {
            if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
                return fail_key(sc, section, key, value, "expected true or false");
            sc->sync = strcmp(value, "true") == 0;
            return 1;
        }
        number = strcmp(key, "every") == 0  ? &sc->every
                 : strcmp(key, "keep") == 0 ? &sc->keep
                                            : NULL;
    } else if (strcmp(section, "replay") == 0) {
        if (strcmp(key, "mode") == 0) {
            if (strcmp(value, "off") == 0)
                sc->replay = BATON_REPLAY_OFF;
            else if (strcmp(value, "record") == 0)
                sc->replay = BATON_REPLAY_RECORD;
            else if (strcmp(value, "verify") == 0)
                sc->replay = BATON_REPLAY_VERIFY;
            else
                return fail_key(sc, section, key, value, "expected off, record or verify");
            return 1;
        }
        if (strcmp(key, "file") == 0)
            return copy_text(sc->replay_file, sizeof sc->replay_file, value)
                       ? 1
                       : fail_key(sc, section, key, value, "empty or too long");
    } else if (strcmp(section, "run") == 0) {
        number = strcmp(key, "workers") == 0 ? &sc->workers : NULL;
    } else {
        return fail_key(sc, section, key, value, "unknown section");
    }
    if (number == NULL)
        return fail_key(sc, section, key, value, "unknown key");
    if (!parse_u64(value, number))
        return fail_key(sc, section, key, value, "not a non-negative integer");
    return 1;
}

static int load_scenario(const char *path, scenario *sc)
{
    memset(sc, 0, sizeof *sc);
    strcpy(sc->rule, "motion");
    sc->agents = 1000000;
    sc->steps = 100;
    sc->seed = 42;
    sc->keep = 1;
    int line = ini_parse(path, scenario_key, sc);
    if (line == -1) {
        cmdline_errorf("run: cannot open the scenario %s: %s", path, strerror(errno));
        return -1;
    }
    if (sc->error[0] != '\0') {
        cmdline_errorf("run: %s: line %d: %s", path, line, sc->error);
        return -1;
    }
    if (line != 0) {
        cmdline_errorf("run: %s: line %d is not INI (key = value, or [section])", path, line);
        return -1;
    }
    if (sc->replay != BATON_REPLAY_OFF && sc->replay_file[0] == '\0') {
        cmdline_errorf("run: %s: [replay] mode = %s needs a file", path,
                       sc->replay == BATON_REPLAY_RECORD ? "record" : "verify");
        return -1;
    }
    if (sc->workers > BATON_POOL_MAX_WORKERS || sc->plan_workers > UINT32_MAX ||
        sc->keep > UINT32_MAX || sc->agents > SIZE_MAX / 32) {
        cmdline_errorf("run: %s: a number is out of range (workers at most %u)", path,
                       BATON_POOL_MAX_WORKERS);
        return -1;
    }
    return 0;
}

/* ---- running --------------------------------------------------------------------------------- */

static int report_rc(int rc, const char *what)
{
    if (rc != 0)
        cmdline_report_error(rc, what);
    return rc;
}

/* The motion state this process holds: the whole state, or under MPI only its rank's share
 * (the partitions plan gives it; without a plan, those of the engine's default plan, one
 * partition per rank), so that no rank ever holds more than its share
 * (BATON_MPI_ROWS_OWNED). */
static int build_state(const run_options *opt, const scenario *sc, const baton_plan *plan,
                       baton_state **out)
{
    size_t agents = (size_t)sc->agents;
    if (!opt->mpi)
        return report_rc(baton_engine_motion_state(agents, sc->seed, out),
                         "baton_engine_motion_state");
    baton_plan *per_rank = NULL;
    int rc = plan != NULL ? 0
                          : report_rc(baton_plan_create_per_worker(agents, opt->ranks, &per_rank),
                                      "baton_plan_create_per_worker");
    if (rc == 0)
        rc = report_rc(baton_engine_motion_state(0, sc->seed, out), "baton_engine_motion_state");
    if (plan == NULL)
        plan = per_rank;
    for (size_t i = 0; rc == 0 && i < baton_plan_partitions(plan); i++) {
        baton_partition p = baton_plan_partition(plan, i);
        if (p.worker == (unsigned)opt->rank)
            rc = report_rc(baton_engine_motion_add_rows(*out, agents, sc->seed, p.begin, p.end),
                           "baton_engine_motion_add_rows");
    }
    baton_plan_destroy(per_rank);
    if (rc != 0) {
        baton_state_destroy(*out);
        *out = NULL;
    }
    return rc;
}

static int build_engine(const run_options *opt, const scenario *sc, baton_pool *pool,
                        baton_engine **out)
{
    baton_plan *plan = NULL;
    int rc = 0;
    if (sc->partitions > 0) {
        unsigned workers = opt->mpi               ? opt->ranks
                           : sc->plan_workers > 0 ? (unsigned)sc->plan_workers
                                                  : baton_pool_workers(pool);
        rc = report_rc(
            baton_plan_create_static((size_t)sc->agents, (size_t)sc->partitions, workers, &plan),
            "baton_plan_create_static");
    }
    baton_state *state = NULL;
    if (rc == 0)
        rc = build_state(opt, sc, plan, &state);
    /* What makes the run's states: checkpoints of another scenario are refused, not mixed. The
     * steps are not part of it (a longer run of one scenario goes on from a shorter one's
     * checkpoints), nor is the plan (the state does not depend on it). */
    char identity[BATON_CHECKPOINT_IDENTITY_MAX + 1];
    snprintf(identity, sizeof identity, "rule=%s agents=%" PRIu64 " seed=%" PRIu64, sc->rule,
             sc->agents, sc->seed);
    baton_engine_config cfg = {.struct_size = sizeof cfg,
                               .pool = pool,
                               .workers = (unsigned)sc->plan_workers,
                               .replay = sc->replay,
                               .checkpoint_policy = sc->policy,
                               .checkpoint_every = sc->every,
                               .checkpoint_keep = (unsigned)sc->keep,
                               .checkpoint_dir = sc->checkpoint_dir[0] ? sc->checkpoint_dir : NULL,
                               .checkpoint_sync = sc->sync,
                               .executor = opt->mpi ? BATON_EXECUTOR_MPI : BATON_EXECUTOR_LOCAL,
                               .mpi_rows = BATON_MPI_ROWS_OWNED,
                               .checkpoint_identity = identity};
    baton_engine *engine = NULL;
    if (rc == 0 &&
        (rc = report_rc(baton_engine_create(&cfg, state, &engine), "baton_engine_create")) != 0)
        baton_state_destroy(state);
    if (rc == 0)
        rc = report_rc(baton_engine_add_motion(engine), "baton_engine_add_motion");
    if (rc == 0 && plan != NULL)
        rc = report_rc(baton_engine_set_plan(engine, plan), "baton_engine_set_plan");
    baton_plan_destroy(plan);
    if (rc == 0 && sc->replay == BATON_REPLAY_VERIFY)
        rc = report_rc(baton_engine_replay_load(engine, sc->replay_file),
                       "baton_engine_replay_load");
    if (rc != 0) {
        baton_engine_destroy(engine);
        return rc;
    }
    *out = engine;
    return 0;
}

static void print_metrics(const baton_engine_metrics *m, uint64_t fingerprint, bool json, FILE *out)
{
    if (json) {
        fprintf(out,
                "{\"current_step\": %" PRIu64 ", \"fingerprint\": \"0x%016" PRIx64
                "\", \"rows\": %zu, \"columns\": %zu, "
                "\"phases\": %zu, \"resident_bytes\": %zu, \"steps_completed\": %" PRIu64
                ", \"steps_failed\": %" PRIu64 ", \"last_step_ns\": %" PRIu64
                ", \"total_step_ns\": %" PRIu64 ", \"fingerprints_recorded\": %" PRIu64
                ", \"fingerprints_verified\": %" PRIu64 ", \"checkpoints_created\": %" PRIu64
                ", \"partition_steps\": %" PRIu64 ", \"partition_rows\": %" PRIu64 ", \"phase\": [",
                m->current_step, fingerprint, m->rows, m->columns, m->phases, m->resident_bytes,
                m->steps_completed, m->steps_failed, m->last_step_ns, m->total_step_ns,
                m->fingerprints_recorded, m->fingerprints_verified, m->checkpoints_created,
                m->partition_steps, m->partition_rows);
        for (size_t k = 0; k < m->phases; k++)
            fprintf(out,
                    "%s{\"name\": \"%s\", \"executions\": %" PRIu64 ", \"total_ns\": %" PRIu64 "}",
                    k ? ", " : "", m->phase[k].name, m->phase[k].executions, m->phase[k].total_ns);
        fputs("]}\n", out);
        return;
    }
    fprintf(out, "step %" PRIu64 ": %zu rows, %zu columns, %zu phases, %.1f MiB resident\n",
            m->current_step, m->rows, m->columns, m->phases,
            (double)m->resident_bytes / (1024.0 * 1024.0));
    fprintf(out, "fingerprint: 0x%016" PRIx64 "\n", fingerprint);
    fprintf(out, "steps: %" PRIu64 " completed, %" PRIu64 " failed; last %.3f ms, total %.3f s\n",
            m->steps_completed, m->steps_failed, (double)m->last_step_ns / 1e6,
            (double)m->total_step_ns / 1e9);
    fprintf(out, "replay: %" PRIu64 " fingerprints recorded, %" PRIu64 " verified\n",
            m->fingerprints_recorded, m->fingerprints_verified);
    fprintf(out, "checkpoints: %" PRIu64 " created\n", m->checkpoints_created);
    fprintf(out, "partitions: %" PRIu64 " partition steps over %" PRIu64 " rows\n",
            m->partition_steps, m->partition_rows);
    for (size_t k = 0; k < m->phases; k++)
        fprintf(out, "phase %s: %" PRIu64 " runs, %.3f s\n", m->phase[k].name,
                m->phase[k].executions, (double)m->phase[k].total_ns / 1e9);
}

/* Copies the scenario file into the checkpoint directory, for --resume. */
static int keep_scenario(const char *path, const char *dir)
{
    char dest[RUN_PATH_MAX + 32];
    snprintf(dest, sizeof dest, "%s/scenario.ini", dir);
    if (strcmp(path, dest) == 0)
        return 0; /* resuming from it */
    FILE *in = fopen(path, "rb"), *out = in != NULL ? fopen(dest, "wb") : NULL;
    int rc = in != NULL && out != NULL ? 0 : -1;
    char buf[4096];
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in != NULL && ferror(in))
        rc = -1;
    if (out != NULL && fclose(out) != 0)
        rc = -1;
    if (in != NULL)
        fclose(in);
    if (rc != 0)
        cmdline_errorf("run: cannot copy the scenario %s to %s: %s", path, dest, strerror(errno));
    return rc;
}

static int run_scenario(const run_options *opt, const scenario *sc)
{
    baton_pool *pool = NULL;
    if (cmdline_pool_create((unsigned)sc->workers, 0, &pool) != 0)
        return CLI_EXIT_FAIL;
    baton_engine *engine = NULL;
    int rc = build_engine(opt, sc, pool, &engine);
    if (rc == 0 && sc->checkpoint_dir[0] != '\0' && opt->rank == 0)
        rc = keep_scenario(opt->scenario_path, sc->checkpoint_dir);
    if (rc == 0 && opt->resume_dir != NULL) {
        rc = report_rc(baton_engine_resume(engine, opt->resume_dir), "baton_engine_resume");
        if (rc == 0 && opt->rank == 0)
            cmdline_note("run: resumed from %s at step %" PRIu64, opt->resume_dir,
                         baton_engine_current_step(engine));
    }
    while (rc == 0 && baton_engine_current_step(engine) < sc->steps) {
        baton_step_report rep;
        rc = baton_engine_step(engine, &rep);
        if (rc != 0)
            cmdline_report_error(rc, "baton_engine_step");
        else if (opt->rank == 0)
            cmdline_progress("run: step %" PRIu64 "/%" PRIu64 " (%.2f ms)", rep.step + 1, sc->steps,
                             (double)rep.total_ns / 1e6);
    }
    cmdline_progress_clear();
    if (rc == 0 && sc->replay == BATON_REPLAY_RECORD && opt->rank == 0)
        rc = report_rc(baton_engine_replay_save(engine, sc->replay_file),
                       "baton_engine_replay_save");
    if (engine != NULL) {
        /* Both collective under MPI: every rank asks, rank 0 prints. The fingerprint is the
         * final state's, to compare two runs without reading a replay file. */
        baton_engine_metrics m;
        uint64_t fingerprint = 0;
        int frc =
            report_rc(baton_engine_fingerprint(engine, &fingerprint), "baton_engine_fingerprint");
        if (rc == 0)
            rc = frc;
        if (baton_engine_get_metrics(engine, &m) == 0 && frc == 0 && opt->rank == 0)
            print_metrics(&m, fingerprint, opt->json, stdout);
        baton_engine_destroy(engine);
    }
    int prc = 0;
    cmdline_pool_destroy(pool, &prc);
    return rc == 0 && prc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_run(int argc, char **argv)
{
    run_options opt = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            opt.json = true;
        } else if (strcmp(argv[i], "--resume") == 0 && i + 1 < argc) {
            opt.resume_dir = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_run_usage(stdout);
            return CLI_EXIT_OK;
        } else if (argv[i][0] != '-' && opt.scenario_path == NULL) {
            opt.scenario_path = argv[i];
        } else {
            cmdline_errorf("run: unexpected argument '%s'", argv[i]);
            cli_run_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    char resume_scenario[RUN_PATH_MAX + 32];
    if (opt.scenario_path == NULL && opt.resume_dir != NULL) {
        snprintf(resume_scenario, sizeof resume_scenario, "%s/scenario.ini", opt.resume_dir);
        opt.scenario_path = resume_scenario;
    }
    if (opt.scenario_path == NULL) {
        cmdline_errorf("run: no scenario file");
        cli_run_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    scenario sc;
    if (load_scenario(opt.scenario_path, &sc) != 0)
        return CLI_EXIT_USAGE;
    opt.ranks = 1;
#ifdef BATON_HAVE_MPI
    /* Started by Open MPI's mpirun: run the partitions on its ranks. */
    if (getenv("OMPI_COMM_WORLD_SIZE") != NULL) {
        int size = 1;
        if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
            cmdline_errorf("run: MPI_Init failed");
            return CLI_EXIT_FAIL;
        }
        MPI_Comm_rank(MPI_COMM_WORLD, &opt.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        opt.ranks = (unsigned)size;
        opt.mpi = true;
    }
#endif
    int status = run_scenario(&opt, &sc);
#ifdef BATON_HAVE_MPI
    if (opt.mpi) {
        /* One rank's failure is the run's: the exit status of mpirun is the worst. */
        int worst = status;
        MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        MPI_Finalize();
        status = worst;
    }
#endif
    return status;
}
