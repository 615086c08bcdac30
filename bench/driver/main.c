/*
 * main.c — `baton-bench [SUITE] [OPTIONS]`, the benchmark driver: the suite table, the options
 * every suite shares, and the runner that interleaves contenders.
 *
 * Adding a suite is one entry in `suites` plus its run function (declared in suites.h),
 * which adds records to the report and measures them through bench_run_slots; an entry may also
 * set its own default --runs, a summary printed after the tables, and its own JSON printer.
 *
 * Interleaving: in round r every contender is measured once (A B C A B C ...), so a burst of noise
 * on a shared machine hits all of them alike, and the starting contender rotates with r so that
 * none always runs first (after an idle pause, or with a cold cache). Medians over the rounds are
 * what the ratios use.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "../suites/space/space.h"
#include "bench.h"
#include "suites.h"

#ifndef BATON_BENCH_PEERS_DIR
#define BATON_BENCH_PEERS_DIR "bench"
#endif

#define BENCH_DEFAULT_RUNS 5
#define BENCH_QUICK_RUNS 3

static const bench_suite suites[] = {
    {.name = "pool",
     .summary = "fork-join (fib32), tiny parallel_for latency (pfor16_hot, pfor16_after_idle), a "
                "memory-bound loop (motion), idle CPU (idle_cpu); vs rayon, oneTBB, OpenMP",
     .run = bench_pool_run},
    {.name = "queue",
     .summary = "rings (spsc, mpsc2, mpmc2, oversubscribed to 16 threads), the work queue's "
                "producers (sp_1p_100k, mp_4p_100k), fan-in strategies of a parallel drain "
                "(fanin_*); vs ck_ring, wfcqueue, moodycamel, crossbeam, oneTBB",
     .run = bench_queue_run,
     .default_runs = 10,
     .print_summary = bench_queue_print_summary},
    {.name = "store",
     .summary = "the motion workload: 1M entities of 48 bytes (std::map, flat array, "
                "baton_parallel_for, the sharded store under each policy, OpenMP) and its "
                "rewrite-heavy variant (motion_conflicts)",
     .run = bench_store_run,
     .print_summary = bench_store_print_summary},
    {.name = "graph",
     .summary = "dataflow pipelines: a source and 4 stages with trivial work per item (trivial4, "
                "the per-item overhead) and with about 1 us per stage (work4); vs oneTBB's flow "
                "graph, a hand-written pthread pipeline, serial",
     .run = bench_graph_run,
     .print_summary = bench_graph_print_summary},
    {.name = BENCH_SPACE_SUITE,
     .summary = "the tuplespace: produce/consume pairs on independent channels (independent), "
                "overlapping 3-channel joins (join3), joins all on the same 3 channels "
                "(join3_hot), the durable log's modes (durable_*), the CPU of an idle or waiting "
                "space (idle_cpu, wait_cpu); vs a global mutex and per-channel mutexes",
     .run = bench_space_run,
     .print_summary = bench_space_print_summary},
    {.name = "engine",
     .summary = "the step engine: the motion rule over 1M rows for 100 steps on 1, 2 and 4 "
                "partitions (step_motion) vs a hand-written loop; the state's fingerprint "
                "(fingerprint) vs a byte-at-a-time FNV-1a; checkpoint write and restore "
                "vs memcpy; the scenario on 1, 2 and 4 MPI ranks (mpi_step)",
     .run = bench_engine_run,
     .print_summary = bench_engine_print_summary},
};

#define N_SUITES (sizeof suites / sizeof suites[0])

static void list_suites(FILE *out)
{
    fputs("suites:\n", out);
    for (size_t i = 0; i < N_SUITES; i++)
        fprintf(out, "  %-8s %s\n", suites[i].name, suites[i].summary);
}

static void usage(FILE *out)
{
    fputs(
        "usage: baton-bench SUITE [--json] [--quick] [--runs N] [--workers LIST] [--case NAME]\n"
        "                         [--contender NAME] [--peers DIR]\n"
        "       baton-bench            (lists the suites)\n"
        "\n"
        "Measures baton and its peers in the same run, interleaved, and prints the median,\n"
        "min and max over the runs with the ratio to baton (>1 means baton is better).\n"
        "\n"
        "  --json          one JSON array on stdout instead of tables (progress stays on stderr)\n"
        "  --quick         smaller sizes and 3 runs: the whole suite in under a minute\n"
        "  --runs N        repetitions of every measurement (default 5, queue 10; quick 3)\n"
        "  --case NAME     run only that case of the suite (e.g. motion); NAME* runs\n"
        "                  every case whose name starts with NAME (e.g. 'durable_*')\n"
        "  --contender NAME\n"
        "                  run only that contender (e.g. baton, global_mutex, rayon): the\n"
        "                  tables and JSON hold its rows alone and a profile sees its work\n"
        "                  only (perf record -g baton-bench space --case join3 --contender\n"
        "                  baton); a NAME that no case of the run has is a usage error\n"
        "  --workers LIST  comma-separated worker counts (default 1,2; space 1,2,4,8); cases\n"
        "                  that use one count take the largest (pool, store; queue cases fix\n"
        "                  their threads)\n"
        "  --peers DIR     where the baton-peer-* programs are (default: $BATON_BENCH_PEERS,\n"
        "                  else " BATON_BENCH_PEERS_DIR ")\n"
        "\n"
        "Exit status: 0 when every contender that ran was correct, 1 otherwise, 2 on a usage\n"
        "error.\n\n",
        out);
    list_suites(out);
}

/* Parses "1,2,4" into options->workers. */
static bool parse_worker_list(const char *text, bench_options *options)
{
    char buf[256];
    char *save = NULL;
    unsigned n = 0;

    if (strlen(text) >= sizeof buf || text[0] == '\0') {
        cmdline_errorf("--workers: expected a list such as 1,2,4, got '%s'", text);
        return false;
    }
    strcpy(buf, text);
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        unsigned long w;
        if (n == BENCH_MAX_WORKER_COUNTS) {
            cmdline_errorf("--workers: at most %d counts", BENCH_MAX_WORKER_COUNTS);
            return false;
        }
        if (!cmdline_parse_unsigned("--workers", item, 1, BATON_POOL_MAX_WORKERS, &w))
            return false;
        options->workers[n++] = (unsigned)w;
    }
    if (n == 0) {
        cmdline_errorf("--workers: expected a list such as 1,2,4, got '%s'", text);
        return false;
    }
    options->n_workers = n;
    return true;
}

bool bench_case_selected(const bench_options *options, const char *case_name)
{
    const char *want = options->only_case;
    if (want == NULL)
        return true;
    size_t n = strlen(want);
    if (n > 0 && want[n - 1] == '*') /* a prefix: durable_* runs the durable cases together */
        return strncmp(want, case_name, n - 1) == 0;
    return strcmp(want, case_name) == 0;
}

/* Returns 0 to go on, 1 after printing the help, -1 on a usage error. */
static int parse_bench_options(const bench_suite *suite, int argc, char **argv,
                               bench_options *options)
{
    bool runs_given = false, workers_given = false;
    const char *env;

    memset(options, 0, sizeof *options);
    options->workers[0] = 1;
    options->workers[1] = 2;
    options->n_workers = 2;
    env = getenv("BATON_BENCH_PEERS");
    options->peers_dir = env != NULL && env[0] != '\0' ? env : BATON_BENCH_PEERS_DIR;

    for (int i = 0; i < argc;) {
        const char *value = NULL;
        unsigned long n;
        int m;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(argv[i], "--json") == 0) {
            options->json = true;
            i++;
        } else if (strcmp(argv[i], "--quick") == 0) {
            options->quick = true;
            i++;
        } else if ((m = cmdline_option_value(argc, argv, &i, "--runs", &value)) != 0) {
            if (m < 0 || !cmdline_parse_unsigned("--runs", value, 1, BENCH_MAX_RUNS, &n))
                return -1;
            options->runs = (unsigned)n;
            runs_given = true;
        } else if ((m = cmdline_option_value(argc, argv, &i, "--workers", &value)) != 0) {
            if (m < 0 || !parse_worker_list(value, options))
                return -1;
            workers_given = true;
        } else if ((m = cmdline_option_value(argc, argv, &i, "--case", &value)) != 0) {
            if (m < 0)
                return -1;
            options->only_case = value;
        } else if ((m = cmdline_option_value(argc, argv, &i, "--contender", &value)) != 0) {
            if (m < 0)
                return -1;
            if (value[0] == '\0') {
                cmdline_errorf("--contender: expected a contender's name, got ''");
                return -1;
            }
            options->only_contender = value;
        } else if ((m = cmdline_option_value(argc, argv, &i, "--peers", &value)) != 0) {
            if (m < 0)
                return -1;
            options->peers_dir = value;
        } else {
            cmdline_errorf("bench: unknown argument '%s'", argv[i]);
            return -1;
        }
    }
    if (!runs_given)
        options->runs = options->quick            ? BENCH_QUICK_RUNS
                        : suite->default_runs > 0 ? suite->default_runs
                                                  : BENCH_DEFAULT_RUNS;
    if (!workers_given && strcmp(suite->name, BENCH_SPACE_SUITE) == 0) {
        /* The space suite measures scaling past the cores too. */
        static const unsigned space_workers[] = BENCH_SPACE_DEFAULT_WORKERS;
        memcpy(options->workers, space_workers, sizeof space_workers);
        options->n_workers = BENCH_SPACE_N_DEFAULT_WORKERS;
    }
    for (unsigned i = 0; i < options->n_workers; i++)
        if (options->workers[i] > options->max_workers)
            options->max_workers = options->workers[i];
    return 0;
}

void bench_run_slots(const char *case_name, bench_slot *slots, size_t n_slots, unsigned runs)
{
    if (n_slots == 0)
        return;
    if (!cmdline_stderr_is_tty())
        cmdline_note("bench %s: %s, %zu contenders x %u runs", slots[0].record->suite, case_name,
                     n_slots, runs);
    for (unsigned r = 0; r < runs; r++) {
        for (size_t k = 0; k < n_slots; k++) {
            bench_slot *slot = &slots[(k + r) % n_slots];
            bench_record *record = slot->record;
            double value = 0;
            bool correct = false;
            int rc;

            if (slot->stopped)
                continue;
            cmdline_progress("bench %s: %s: run %u/%u: %s, %u workers", record->suite, case_name,
                             r + 1, runs, record->contender, slot->workers);
            record->attempted = true;
            rc = slot->measure(slot->ctx, slot->workers, &value, &correct);
            if (rc != 0) {
                record->correct = false;
                slot->stopped = true;
                cmdline_note("bench %s: %s: %s (%u workers) failed; it runs no more", record->suite,
                             case_name, record->contender, slot->workers);
                continue;
            }
            bench_record_sample(record, value);
            if (!correct) {
                record->correct = false;
                slot->stopped = true;
                cmdline_note(
                    "bench %s: %s: %s (%u workers) computed a wrong result; it runs no more",
                    record->suite, case_name, record->contender, slot->workers);
            }
        }
    }
    cmdline_progress_clear();
}

int main(int argc, char **argv)
{
    const bench_suite *suite = NULL;
    bench_options options;
    bench_report report;
    bool ok;
    int rc;

    cmdline_set_program("baton-bench", "bench");
    if (argc < 2) {
        list_suites(stdout);
        return BENCH_EXIT_OK;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return BENCH_EXIT_OK;
    }
    for (size_t i = 0; i < N_SUITES; i++)
        if (strcmp(argv[1], suites[i].name) == 0)
            suite = &suites[i];
    if (suite == NULL) {
        cmdline_errorf("bench: unknown suite '%s'", argv[1]);
        list_suites(stderr);
        return BENCH_EXIT_USAGE;
    }
    rc = parse_bench_options(suite, argc - 2, argv + 2, &options);
    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;

    memset(&report, 0, sizeof report);
    report.only_contender = options.only_contender;
    rc = suite->run(&options, &report);
    if (rc == 0 && options.only_contender != NULL && report.n_records == 0) {
        /* Nothing ran: a misspelt name (or one the chosen case does not have) must not pass for
         * a clean run. */
        cmdline_errorf("bench %s: --contender: no case %s has a contender '%s'", suite->name,
                       options.only_case != NULL ? "selected by --case" : "of the suite",
                       options.only_contender);
        bench_report_free(&report);
        return BENCH_EXIT_USAGE;
    }
    if (options.json) {
        /* The notes (sizes, measured limits) are part of the tables; with --json they go to
         * stderr, so stdout stays one JSON array. */
        for (unsigned i = 0; i < report.n_notes; i++)
            cmdline_note("bench %s: %s: %s", suite->name, report.notes[i].case_name,
                         report.notes[i].text);
        if (suite->print_json != NULL)
            suite->print_json(&report, stdout);
        else
            bench_report_print_json(&report, stdout);
    } else {
        bench_report_print_table(&report, stdout);
        if (suite->print_summary != NULL)
            suite->print_summary(&report, stdout);
    }
    ok = rc == 0 && bench_report_all_correct(&report);
    bench_report_free(&report);
    if (!ok)
        cmdline_note("bench %s: some contenders failed or computed wrong results", suite->name);
    return ok ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
}
