/*
 * demo.c — `baton demo`: the motion workload run four ways. The motion rule (an entity is 48
 * bytes of fixed-point position and velocity; a tick adds velocity to position, saturating) over
 * N entities, each row from the same initial state (bench/common/workloads.h) with the library's
 * own step (baton_motion_step, baton_motion_update):
 *
 *   serial_flat              one thread over a flat array (the best serial code)
 *   baton_parallel_for       baton_parallel_for over the flat array
 *   baton_sharded (dynamic)  a baton_store of 256 shards, each updated by one worker a tick
 *   omp                      OpenMP's parallel for over the flat array, as a child process
 *                            (baton-peer-omp_store, built when CMake finds OpenMP; run through
 *                            bench/common/peer_process.h)
 *
 * with ticks per second, the total time, the speedup over serial and each final state's checksum,
 * which must equal the serial one: every entity is stepped by exactly one thread per tick and the
 * rule is integer arithmetic, so any split, any shard layout gives the same bytes.
 *
 * Every parallel row works with exactly W threads, as the omp row does with W OpenMP threads:
 * each baton row makes a pool of W workers and hands its whole tick loop to one of them
 * (pool_install, bench/common/pool_install.h) while the calling thread sleeps, so the loop's
 * baton_parallel_for and baton_store_update_all run on the W workers and on no other thread. A
 * call from outside the pool would run work on the calling thread too (baton/pool.h): W + 1
 * threads. A pool of W - 1 workers plus the calling thread would not do either: the store makes
 * one task per pool worker (BATON_STORE_DYNAMIC), so its shards would be stepped by W - 1 tasks.
 * The time of a row is that of its tick loop, measured on the worker. One run each;
 * `baton-bench store` repeats them, interleaved, with every thread count fixed, and adds the
 * ordered-map baseline, the other store policies and the bandwidth limit.
 *
 * Then the same scenario through the step engine (demo_engine.c): recorded with checkpoints,
 * resumed from the half-way checkpoint by a new engine and verified to the end.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "baton/store.h"
#include "cli.h"
#include "motion_store.h"
#include "peer_process.h"
#include "pool_install.h"
#include "workloads.h"

#ifndef BATON_BENCH_PEERS_DIR
#define BATON_BENCH_PEERS_DIR "bench"
#endif

#define DEMO_DEFAULT_ENTITIES 1000000ul
#define DEMO_DEFAULT_TICKS 100ul
/* 2^26 entities are 3 GiB of state: more is surely a typo. */
#define DEMO_MAX_ENTITIES (1ul << 26)
#define DEMO_MAX_TICKS 1000000ul
#define DEMO_PEER_PATH_MAX 4096
/* The OpenMP child gets this long before it counts as hung. */
#define DEMO_PEER_TIMEOUT_S 600.0

typedef struct demo_options {
    unsigned workers; /* 0: one per CPU */
    size_t entities;
    unsigned ticks;
    const char *peers_dir;
} demo_options;

/* One row of the table. */
typedef struct demo_row {
    const char *name;
    unsigned workers;
    bool ran;    /* false: skipped or failed; `note` says why */
    bool failed; /* it was tried and failed */
    double ticks_per_s;
    uint64_t checksum;
    const char *note; /* for a row that did not run */
} demo_row;

enum { ROW_SERIAL, ROW_PFOR, ROW_SHARDED, ROW_OMP, N_ROWS };

void cli_demo_usage(FILE *out)
{
    fprintf(out,
            "usage: baton demo [--workers N] [--entities N] [--ticks N] [--peers DIR]\n"
            "\n"
            "The motion workload (N entities of 48 bytes; each\n"
            "tick adds velocity to position with saturation) serially over a flat array, with\n"
            "baton_parallel_for, with the sharded baton_store (one owner per shard) and with\n"
            "OpenMP's parallel for; ticks per second, total time, speedup, and whether every\n"
            "final state equals the serial one.\n"
            "\n"
            "  --workers N    threads of every parallel row (default 0: one per CPU): a baton\n"
            "                 row makes a pool of N workers and runs its ticks on one of them\n"
            "                 while the calling thread sleeps, so N threads work, as in the\n"
            "                 omp row\n"
            "  --entities N   entities (default %lu)\n"
            "  --ticks N      ticks (default %lu)\n"
            "  --peers DIR    where baton-peer-omp_store is (default: $BATON_BENCH_PEERS, else\n"
            "                 " BATON_BENCH_PEERS_DIR ")\n",
            DEMO_DEFAULT_ENTITIES, DEMO_DEFAULT_TICKS);
}

static int parse_demo_options(int argc, char **argv, demo_options *opts)
{
    const char *env = getenv("BATON_BENCH_PEERS");

    opts->workers = 0;
    opts->entities = DEMO_DEFAULT_ENTITIES;
    opts->ticks = DEMO_DEFAULT_TICKS;
    opts->peers_dir = env != NULL && env[0] != '\0' ? env : BATON_BENCH_PEERS_DIR;
    for (int i = 1; i < argc;) {
        const char *value = NULL;
        unsigned long n;
        int m;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            cli_demo_usage(stdout);
            return 1;
        }
        if ((m = cmdline_option_value(argc, argv, &i, "--workers", &value)) != 0) {
            if (m < 0 || !cmdline_parse_unsigned("--workers", value, 0, BATON_POOL_MAX_WORKERS, &n))
                return -1;
            opts->workers = (unsigned)n;
        } else if ((m = cmdline_option_value(argc, argv, &i, "--entities", &value)) != 0) {
            if (m < 0 || !cmdline_parse_unsigned("--entities", value, 1, DEMO_MAX_ENTITIES, &n))
                return -1;
            opts->entities = (size_t)n;
        } else if ((m = cmdline_option_value(argc, argv, &i, "--ticks", &value)) != 0) {
            if (m < 0 || !cmdline_parse_unsigned("--ticks", value, 1, DEMO_MAX_TICKS, &n))
                return -1;
            opts->ticks = (unsigned)n;
        } else if ((m = cmdline_option_value(argc, argv, &i, "--peers", &value)) != 0) {
            if (m < 0)
                return -1;
            opts->peers_dir = value;
        } else {
            cmdline_errorf("demo: unknown argument '%s'", argv[i]);
            return -1;
        }
    }
    return 0;
}

/* The number of workers a default pool gets (one per CPU this process may run on). */
static int default_workers(unsigned *out_workers)
{
    baton_pool *pool;
    int rc = baton_pool_create(NULL, &pool);
    if (rc != 0) {
        cmdline_report_error(rc, "creating a pool to count the CPUs");
        return rc;
    }
    *out_workers = baton_pool_workers(pool);
    rc = baton_pool_destroy(pool);
    if (rc != 0)
        cmdline_report_error(rc, "destroying a pool");
    return rc;
}

static void announce(const char *name, const demo_options *opts, unsigned workers)
{
    if (cmdline_stderr_is_tty())
        cmdline_progress("%s: %u ticks of %zu entities, %u thread%s", name, opts->ticks,
                         opts->entities, workers, workers == 1 ? "" : "s");
    else
        cmdline_note("%s: %u ticks of %zu entities, %u thread%s", name, opts->ticks, opts->entities,
                     workers, workers == 1 ? "" : "s");
}

/* The flat array the serial and parallel_for rows tick in place. */
typedef struct demo_flat {
    unsigned char *state;
    size_t entities;
} demo_flat;

static int demo_range_task(size_t begin, size_t end, void *ctx)
{
    demo_flat *flat = ctx;
    baton_motion_step(flat->state + begin * BATON_MOTION_PAYLOAD_SIZE, end - begin);
    return 0;
}

/* Starts a row: announces it and, but for serial, makes its pool. */
static bool start_row(demo_row *row, const demo_options *opts, baton_pool **out_pool)
{
    announce(row->name, opts, row->workers);
    if (out_pool != NULL && cmdline_pool_create(row->workers, 0, out_pool) != 0) {
        row->note = "failed (see above)";
        row->failed = true;
        return false;
    }
    return true;
}

/* Ends a row that ran `ticks` in `elapsed` seconds and left `state`; destroys its pool. */
static void end_row(demo_row *row, const demo_options *opts, baton_pool *pool, int rc,
                    double elapsed, const unsigned char *state)
{
    if (pool != NULL)
        cmdline_pool_destroy(pool, &rc);
    if (rc != 0) {
        row->note = "failed (see above)";
        row->failed = true;
        return;
    }
    row->ran = true;
    row->ticks_per_s = opts->ticks / elapsed;
    row->checksum = motion_checksum(state, opts->entities);
}

static void run_serial_row(demo_row *row, const demo_options *opts, unsigned char *state)
{
    double start;
    start_row(row, opts, NULL);
    motion_init(state, opts->entities);
    start = cmdline_now_s();
    for (unsigned t = 0; t < opts->ticks; t++)
        baton_motion_step(state, opts->entities);
    end_row(row, opts, NULL, 0, cmdline_now_s() - start, state);
}

/* A parallel row's tick loop, run on one of its pool's workers (pool_install). */
typedef struct demo_ticks {
    baton_pool *pool;
    demo_flat flat;     /* the parallel_for row's array */
    baton_store *store; /* the sharded row's store */
    unsigned ticks;
    double elapsed;
} demo_ticks;

static int pfor_ticks(void *arg)
{
    demo_ticks *run = arg;
    double start = cmdline_now_s();
    int rc = 0;

    for (unsigned t = 0; t < run->ticks && rc == 0; t++)
        rc = baton_parallel_for(run->pool, 0, run->flat.entities, 0, demo_range_task, &run->flat);
    run->elapsed = cmdline_now_s() - start;
    return rc;
}

static void run_pfor_row(demo_row *row, const demo_options *opts, unsigned char *state)
{
    demo_ticks run = {.flat = {state, opts->entities}, .ticks = opts->ticks};
    int rc;

    if (!start_row(row, opts, &run.pool))
        return;
    motion_init(state, opts->entities);
    rc = pool_install(run.pool, pfor_ticks, &run);
    if (rc != 0)
        cmdline_report_error(rc, "baton_parallel_for (motion)");
    end_row(row, opts, run.pool, rc, run.elapsed, state);
}

static int sharded_ticks(void *arg)
{
    demo_ticks *run = arg;
    double start = cmdline_now_s();
    int rc = 0;

    for (unsigned t = 0; t < run->ticks && rc == 0; t++)
        rc = baton_store_update_all(run->store, baton_motion_update, NULL);
    run->elapsed = cmdline_now_s() - start;
    return rc;
}

static void run_sharded_row(demo_row *row, const demo_options *opts, unsigned char *state)
{
    demo_ticks run = {.ticks = opts->ticks};
    int rc;

    if (!start_row(row, opts, &run.pool))
        return;
    rc = motion_store_create(run.pool, BATON_STORE_DYNAMIC, 0, opts->entities, &run.store);
    if (rc == 0) {
        rc = pool_install(run.pool, sharded_ticks, &run);
        if (rc != 0)
            cmdline_report_error(rc, "baton_store_update_all (motion)");
        /* The final state in id order, for the checksum. */
        for (uint64_t id = 0; id < opts->entities && rc == 0; id++) {
            rc = baton_store_get(run.store, id, state + id * BATON_MOTION_PAYLOAD_SIZE,
                                 BATON_MOTION_PAYLOAD_SIZE);
            if (rc != 0)
                cmdline_report_error(rc, "baton_store_get");
        }
        baton_store_destroy(run.store);
    }
    end_row(row, opts, run.pool, rc, run.elapsed, state);
}

/* Runs the OpenMP child into `row`, or says why it cannot. */
static void run_omp_row(demo_row *row, const demo_options *opts)
{
    char path[DEMO_PEER_PATH_MAX], workers_arg[16], entities_arg[24], ticks_arg[16];
    char why[PEER_PROCESS_WHY_MAX];
    const char *args[5];
    double time_s;

    if (!peer_process_path(opts->peers_dir, "omp_store", path, sizeof path) ||
        !peer_process_available(path)) {
        row->note = "not run: baton-peer-omp_store not found (built when CMake finds OpenMP)";
        return;
    }
    snprintf(workers_arg, sizeof workers_arg, "%u", row->workers);
    snprintf(entities_arg, sizeof entities_arg, "%zu", opts->entities);
    snprintf(ticks_arg, sizeof ticks_arg, "%u", opts->ticks);
    args[0] = "motion";
    args[1] = workers_arg;
    args[2] = entities_arg;
    args[3] = ticks_arg;
    args[4] = NULL;
    announce(row->name, opts, row->workers);
    if (peer_process_run(path, args, DEMO_PEER_TIMEOUT_S, &time_s, &row->checksum, why,
                         sizeof why) != 0) {
        cmdline_errorf("demo: %s", why);
        row->note = "failed (see above)";
        row->failed = true;
        return;
    }
    if (!(time_s > 0)) {
        row->note = "failed: it reported no time";
        row->failed = true;
        return;
    }
    row->ran = true;
    row->ticks_per_s = opts->ticks / time_s;
}

/* Prints the table; returns false when a row that ran disagrees with serial or failed. */
static bool print_table(const demo_row *rows, const demo_options *opts, unsigned workers)
{
    double serial_rate = rows[ROW_SERIAL].ticks_per_s;
    bool ok = true;

    printf("baton demo: the motion rule, %zu entities x %d bytes, %u ticks, %u workers\n\n",
           opts->entities, MOTION_PAYLOAD_BYTES, opts->ticks, workers);
    printf("%-24s %7s %10s %10s %8s  %s\n", "strategy", "threads", "ticks/s", "total (s)",
           "speedup", "checksum");
    for (int i = 0; i < N_ROWS; i++) {
        const demo_row *row = &rows[i];
        if (!row->ran) {
            printf("%-24s %7u  %s\n", row->name, row->workers, row->note);
            if (row->failed)
                ok = false;
            continue;
        }
        printf("%-24s %7u %10.1f %10.3f %7.2fx  %016" PRIx64 "%s\n", row->name, row->workers,
               row->ticks_per_s, opts->ticks / row->ticks_per_s, row->ticks_per_s / serial_rate,
               row->checksum,
               i == ROW_SERIAL                              ? ""
               : row->checksum == rows[ROW_SERIAL].checksum ? "  matches serial"
                                                            : "  DIFFERS from serial");
        if (row->checksum != rows[ROW_SERIAL].checksum)
            ok = false;
    }
    printf("\nbaton_sharded: a baton_store of %u shards; each tick, every shard is stepped by one "
           "worker,\nwhich takes the next unclaimed shard (the dynamic policy). `baton-bench "
           "store` repeats\nevery row, adds the std::map baseline and the other policies, and "
           "measures the memory\nbandwidth limit.\n",
           1u << BATON_STORE_DEFAULT_SHARD_BITS);
    return ok;
}

int cli_demo(int argc, char **argv)
{
    demo_options opts;
    demo_row rows[N_ROWS];
    unsigned char *state;
    unsigned workers;
    bool ok;
    int rc;

    rc = parse_demo_options(argc, argv, &opts);
    if (rc != 0)
        return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    workers = opts.workers;
    if (workers == 0 && default_workers(&workers) != 0)
        return CLI_EXIT_FAIL;

    state = malloc(opts.entities * MOTION_PAYLOAD_BYTES);
    if (state == NULL) {
        cmdline_errorf("demo: cannot allocate %zu bytes of state",
                       opts.entities * MOTION_PAYLOAD_BYTES);
        return CLI_EXIT_FAIL;
    }
    memset(rows, 0, sizeof rows);
    rows[ROW_SERIAL] = (demo_row){.name = "serial_flat", .workers = 1};
    rows[ROW_PFOR] = (demo_row){.name = "baton_parallel_for", .workers = workers};
    rows[ROW_SHARDED] = (demo_row){.name = "baton_sharded (dynamic)", .workers = workers};
    rows[ROW_OMP] = (demo_row){.name = "omp", .workers = workers};

    /* The serial run is the reference: its checksum is what the others must produce. */
    run_serial_row(&rows[ROW_SERIAL], &opts, state);
    run_pfor_row(&rows[ROW_PFOR], &opts, state);
    run_sharded_row(&rows[ROW_SHARDED], &opts, state);
    free(state);
    run_omp_row(&rows[ROW_OMP], &opts);
    cmdline_progress_clear();

    ok = print_table(rows, &opts, workers);
    if (!ok)
        cmdline_errorf("demo: a row failed or its final state differs from the serial one");

    baton_pool *pool = NULL;
    if (cmdline_pool_create(workers, 0, &pool) != 0)
        return CLI_EXIT_FAIL;
    bool engine_ok = cli_demo_engine(pool, opts.entities, opts.ticks);
    int prc = 0;
    cmdline_pool_destroy(pool, &prc);
    return ok && engine_ok && prc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
