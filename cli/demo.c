/*
 * demo.c — `baton demo`: the motion workload (bench/common/workloads.h) run serially, then with
 * baton_parallel_for on a pool, with a table of ticks per second, the speedup and whether the
 * parallel state's checksum equals the serial one (it must: each entity is updated by exactly one
 * thread per tick, and the rule is pure integer arithmetic, so any split gives the same bytes).
 *
 * The pool uses default flags: the calling thread takes an external slot and works alongside the
 * workers instead of sleeping while they run.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "workloads.h"

#define DEMO_DEFAULT_ENTITIES 1000000ul
#define DEMO_DEFAULT_TICKS 100ul
/* 2^26 entities are 3 GiB of state: more is surely a typo. */
#define DEMO_MAX_ENTITIES (1ul << 26)
#define DEMO_MAX_TICKS 1000000ul
/* Progress is redrawn at most this often, so drawing it costs nothing measurable. */
#define DEMO_PROGRESS_INTERVAL_S 0.05

typedef struct demo_options {
    unsigned workers; /* 0: one per CPU */
    size_t entities;
    unsigned ticks;
} demo_options;

void cli_demo_usage(FILE *out)
{
    fprintf(out,
            "usage: baton demo [--workers N] [--entities N] [--ticks N]\n"
            "\n"
            "Runs the motion workload (N entities of 48 bytes; each tick adds velocity to\n"
            "position with saturation) serially, then with baton_parallel_for on a pool, and\n"
            "prints ticks per second, the speedup and whether both final states agree.\n"
            "\n"
            "  --workers N    pool workers (default 0: one per CPU); the calling thread helps\n"
            "  --entities N   entities (default %lu)\n"
            "  --ticks N      ticks (default %lu)\n",
            DEMO_DEFAULT_ENTITIES, DEMO_DEFAULT_TICKS);
}

static int parse_demo_options(int argc, char **argv, demo_options *opts)
{
    opts->workers = 0;
    opts->entities = DEMO_DEFAULT_ENTITIES;
    opts->ticks = DEMO_DEFAULT_TICKS;
    for (int i = 1; i < argc;) {
        const char *value = NULL;
        unsigned long n;
        int m;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            cli_demo_usage(stdout);
            return 1;
        }
        if ((m = cli_option_value(argc, argv, &i, "--workers", &value)) != 0) {
            if (m < 0 || !cli_parse_unsigned("--workers", value, 0, BATON_POOL_MAX_WORKERS, &n))
                return -1;
            opts->workers = (unsigned)n;
        } else if ((m = cli_option_value(argc, argv, &i, "--entities", &value)) != 0) {
            if (m < 0 || !cli_parse_unsigned("--entities", value, 1, DEMO_MAX_ENTITIES, &n))
                return -1;
            opts->entities = (size_t)n;
        } else if ((m = cli_option_value(argc, argv, &i, "--ticks", &value)) != 0) {
            if (m < 0 || !cli_parse_unsigned("--ticks", value, 1, DEMO_MAX_TICKS, &n))
                return -1;
            opts->ticks = (unsigned)n;
        } else {
            cli_errorf("demo: unknown argument '%s'", argv[i]);
            return -1;
        }
    }
    return 0;
}

/* Redraws "<phase>: tick T/N" when stderr is a terminal and the last redraw is old enough. */
static void demo_progress(const char *phase, unsigned tick, unsigned ticks, double *last_s)
{
    double now = cli_now_s();
    if (tick != ticks && now - *last_s < DEMO_PROGRESS_INTERVAL_S)
        return;
    *last_s = now;
    cli_progress("%s: tick %u/%u", phase, tick, ticks);
}

static int motion_range_task(size_t begin, size_t end, void *ctx)
{
    motion_update_range(ctx, begin, end);
    return 0;
}

/* Runs the ticks serially; returns the elapsed seconds. */
static double run_serial(unsigned char *state, const demo_options *opts)
{
    double last = 0, start;
    if (!cli_stderr_is_tty())
        cli_note("serial: %u ticks of %zu entities", opts->ticks, opts->entities);
    start = cli_now_s();
    for (unsigned t = 0; t < opts->ticks; t++) {
        motion_update_range(state, 0, opts->entities);
        demo_progress("serial", t + 1, opts->ticks, &last);
    }
    return cli_now_s() - start;
}

/* Runs the ticks with baton_parallel_for; returns 0 and the elapsed seconds, or an error. */
static int run_pool(baton_pool *pool, unsigned char *state, const demo_options *opts,
                    double *out_seconds)
{
    double last = 0, start;
    if (!cli_stderr_is_tty())
        cli_note("pool: %u ticks of %zu entities on %u workers", opts->ticks, opts->entities,
                 baton_pool_workers(pool));
    start = cli_now_s();
    for (unsigned t = 0; t < opts->ticks; t++) {
        int rc = baton_parallel_for(pool, 0, opts->entities, 0, motion_range_task, state);
        if (rc != 0) {
            cli_report_error(rc, "baton_parallel_for");
            return rc;
        }
        demo_progress("pool", t + 1, opts->ticks, &last);
    }
    *out_seconds = cli_now_s() - start;
    return 0;
}

int cli_demo(int argc, char **argv)
{
    demo_options opts;
    baton_pool_config config;
    baton_pool *pool = NULL;
    baton_worker_stats stats;
    unsigned char *state;
    double serial_s, pool_s = 0, serial_rate, pool_rate;
    uint64_t serial_sum, pool_sum;
    unsigned workers;
    int rc;

    memset(&stats, 0, sizeof stats);
    rc = parse_demo_options(argc, argv, &opts);
    if (rc != 0)
        return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;

    state = malloc(opts.entities * MOTION_PAYLOAD_BYTES);
    if (state == NULL) {
        cli_errorf("demo: cannot allocate %zu bytes of state",
                   opts.entities * MOTION_PAYLOAD_BYTES);
        return CLI_EXIT_FAIL;
    }

    motion_init(state, opts.entities);
    serial_s = run_serial(state, &opts);
    serial_sum = motion_checksum(state, opts.entities);

    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.n_workers = opts.workers;
    rc = baton_pool_create(&config, &pool);
    if (rc != 0) {
        cli_report_error(rc, "creating the pool");
        free(state);
        return CLI_EXIT_FAIL;
    }
    workers = baton_pool_workers(pool);

    motion_init(state, opts.entities);
    rc = run_pool(pool, state, &opts, &pool_s);
    pool_sum = motion_checksum(state, opts.entities);
    free(state);
    if (rc == 0) {
        rc = baton_pool_worker_stats(pool, workers, &stats);
        if (rc != 0)
            cli_report_error(rc, "reading the pool's counters");
    }
    {
        int destroy_rc = baton_pool_destroy(pool);
        if (destroy_rc != 0) {
            cli_report_error(destroy_rc, "destroying the pool");
            rc = rc != 0 ? rc : destroy_rc;
        }
    }
    cli_progress_clear();
    if (rc != 0)
        return CLI_EXIT_FAIL;

    serial_rate = opts.ticks / serial_s;
    pool_rate = opts.ticks / pool_s;
    printf("baton demo: motion, %zu entities x %d bytes, %u ticks\n\n", opts.entities,
           MOTION_PAYLOAD_BYTES, opts.ticks);
    printf("%-8s %8s %12s %9s  %s\n", "mode", "workers", "ticks/s", "speedup", "checksum");
    printf("%-8s %8u %12.1f %8.2fx  %016" PRIx64 "\n", "serial", 1u, serial_rate, 1.0, serial_sum);
    printf("%-8s %8u %12.1f %8.2fx  %016" PRIx64 " %s\n", "pool", workers, pool_rate,
           pool_rate / serial_rate, pool_sum,
           pool_sum == serial_sum ? "(matches serial)" : "(DIFFERS from serial)");
    printf("\npool: %u workers plus the calling thread; %" PRIu64 " tasks run, %" PRIu64
           " steals, %" PRIu64 " parks\n",
           workers, stats.tasks_executed, stats.steals, stats.parks);
    if (pool_sum != serial_sum) {
        cli_errorf("demo: the pool's final state differs from the serial one");
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
