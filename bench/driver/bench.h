/*
 * bench.h — the framework of `baton-bench`, the benchmark driver: error and progress printing,
 * argument parsing and the small utilities the suites share (util.c), records, statistics, tables
 * and JSON (report.c), the options, the suite table and the interleaved runner (main.c), and the
 * peer contenders (peer.c). Each suite's entry points are in bench/suites/suites.h.
 *
 * Internal to bench/; nothing here is part of the library's API. Output discipline: results go
 * to stdout, everything else (progress, notes, errors) to stderr, so `baton-bench SUITE --json`
 * writes exactly one JSON array on stdout.
 */
#ifndef BATON_BENCH_H
#define BATON_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "baton/pool.h"
#include "cmdline.h"
#include "peer_process.h"
#include "pool_install.h"

/* Exit statuses: 0 success, 1 a failed run or a wrong result, 2 a usage error. */
enum { BENCH_EXIT_OK = 0, BENCH_EXIT_FAIL = 1, BENCH_EXIT_USAGE = 2 };

/* ---- util.c: what only the benchmarks need (the rest is bench/common/cmdline.h) ------------ */

/* Sleeps for `seconds` (restarted when a signal interrupts it). */
void bench_sleep_s(double seconds);
/* Median of `n` values (sorted in place); NaN when n is 0. */
double bench_median(double *values, size_t n);
/* CPU time the whole process has used, in seconds; NaN when the clock cannot be read. */
double bench_process_cpu_s(void);

/* ---- report.c: records, statistics, table and JSON --------------------------------- */

#define BENCH_MAX_EXTRAS 4
#define BENCH_MAX_NOTES 16

/* A named extra number on a record ("ns_per_task", "speedup", ...). */
typedef struct bench_extra {
    const char *name;
    double value;
} bench_extra;

/* One contender on one case at one worker count: its measurements over the runs. */
typedef struct bench_record {
    const char *suite;
    const char *case_name;
    const char *contender;
    const char *metric; /* "time" or a throughput ("ticks_per_s") or "cpu_fraction" */
    const char *unit;
    bool higher_is_better; /* false for time and cpu_fraction */
    unsigned workers;
    double *samples; /* one per successful run; owned by the record */
    unsigned n_samples;
    unsigned capacity;
    bool correct;   /* false once a run failed or computed a wrong result */
    bool attempted; /* at least one run was tried */
    bench_extra extras[BENCH_MAX_EXTRAS];
    unsigned n_extras;
    /* Optional: a string field that tells records of one contender apart ("policy": "dynamic").
     * JSON prints it after "workers"; the table after the contender's name. NULL: none. */
    const char *label_name;
    const char *label;
} bench_record;

/* Every record of one suite run, in the order they were added (the order of the output). */
typedef struct bench_report {
    bench_record **records;
    size_t n_records;
    size_t capacity;
    struct {
        const char *case_name;
        char text[160];
    } notes[BENCH_MAX_NOTES]; /* a line printed under a case's table header */
    unsigned n_notes;
    /* The record that vs_baton compares with: contender `baton_contender` (NULL: "baton"), with
     * label `baton_label` when that is not NULL. */
    const char *baton_contender;
    const char *baton_label;
    /* --contender NAME: bench_slots_add adds records of this contender only. NULL: every one. */
    const char *only_contender;
} bench_report;

/* Adds a record (copying `tmpl`'s names, label, workers and direction) with room for `runs`
 * samples. Returns it, or NULL (after printing why) when memory runs out. The report owns it. */
bench_record *bench_report_add(bench_report *report, const bench_record *tmpl, unsigned runs);
void bench_report_free(bench_report *report);
void bench_report_note(bench_report *report, const char *case_name, const char *fmt, ...)
    CMDLINE_PRINTF(3, 4);

void bench_record_sample(bench_record *record, double value);
void bench_record_set_extra(bench_record *record, const char *name, double value);
/* Median / min / max of the samples; NaN when there are none. */
double bench_record_median(const bench_record *record);
double bench_record_min(const bench_record *record);
double bench_record_max(const bench_record *record);
/* The value of the record's extra `name`; NaN when it has none. */
double bench_record_extra(const bench_record *record, const char *name);
/* The record's contender for people: "name", or "name (label)" when it has a label. */
void bench_record_name(const bench_record *record, char *buf, size_t size);
/* The record of `contender` in `case_name` with `workers`, or, when workers is 0 or there is no
 * such record, the one with the most workers. NULL when the contender has none in that case. */
const bench_record *bench_report_find(const bench_report *report, const char *case_name,
                                      const char *contender, unsigned workers);
/* The first record (in the report's order) of `contender` in `case_name` whose label is
 * `label`; label NULL matches any record of the pair, labelled or not. NULL when none matches.
 * Unlike bench_report_find, workers play no part. */
const bench_record *bench_report_find_label(const bench_report *report, const char *case_name,
                                            const char *contender, const char *label);
/* True when every record that was attempted is correct. */
bool bench_report_all_correct(const bench_report *report);

void bench_report_print_table(const bench_report *report, FILE *out);
void bench_report_print_json(const bench_report *report, FILE *out);

/* ---- main.c: options, suites and the interleaved runner ---------------------------------- */

#define BENCH_MAX_WORKER_COUNTS 16
#define BENCH_MAX_RUNS 1000

typedef struct bench_options {
    bool json;
    bool quick;
    unsigned runs; /* repetitions of every measurement */
    unsigned workers[BENCH_MAX_WORKER_COUNTS];
    unsigned n_workers;   /* entries in workers[] */
    unsigned max_workers; /* the largest of workers[] */
    const char *peers_dir;
    const char *only_case;      /* --case NAME: run this case only; NULL: all */
    const char *only_contender; /* --contender NAME: run this contender only; NULL: all */
} bench_options;

/* True when the case is to run under these options (--case). */
bool bench_case_selected(const bench_options *options, const char *case_name);

/*
 * One measurement of one contender. Returns 0 when it measured something: *out_value is the
 * metric's value and *out_correct whether the result checked out. Returns non-zero when it could
 * not measure (it has printed why); the record is then marked incorrect.
 */
typedef int (*bench_measure_fn)(void *ctx, unsigned workers, double *out_value, bool *out_correct);

/* A contender at one worker count inside a case: what the runner interleaves. */
typedef struct bench_slot {
    bench_measure_fn measure;
    void *ctx;
    unsigned workers;
    bench_record *record;
    bool stopped; /* a run failed: no more runs */
} bench_slot;

/*
 * report.c: adds a record shaped like `tmpl` (its contender and workers replaced) to the
 * report and a slot that measures it to slots[*n], then counts it in *n. When the report runs
 * one contender only (report->only_contender, from --contender) and this is another, adds
 * nothing and returns true: the suites skip other contenders through here. Returns false when
 * the `max` slots are taken or memory ran out; the suite then gives up on the case.
 */
bool bench_slots_add(bench_slot *slots, size_t *n, size_t max, bench_report *report, unsigned runs,
                     const bench_record *tmpl, const char *contender, unsigned workers,
                     bench_measure_fn measure, void *ctx);

/*
 * Runs `runs` rounds; each round measures every slot once (A B C A B C ...), starting at slot
 * r mod n_slots in round r so that no contender always runs first. A slot whose measurement
 * fails or is wrong is marked incorrect and runs no more.
 */
void bench_run_slots(const char *case_name, bench_slot *slots, size_t n_slots, unsigned runs);

/* A suite: `baton-bench NAME`. run() fills the report; it returns non-zero only when the suite
 * could not run at all (results that are wrong are marked on the records instead). */
typedef struct bench_suite {
    const char *name;
    const char *summary;
    int (*run)(const bench_options *options, bench_report *report);
    /* Optional (0 / NULL: the defaults). default_runs: --runs without --quick or --runs given;
     * print_summary: lines printed after the tables (not with --json); print_json: the JSON array
     * instead of bench_report_print_json (it must print at least the same fields). */
    unsigned default_runs;
    void (*print_summary)(const bench_report *report, FILE *out);
    void (*print_json)(const bench_report *report, FILE *out);
} bench_suite;

/* ---- peer.c: the peer contenders (protocol: bench/common/peer_process.h) --------------------- */

/* The suites find their peers with peer_process_path and peer_process_available. */

/*
 * Runs `path CASE WORKERS ARGS...` (argv[0] is the path) through peer_process_run: waits at most
 * timeout_s for it and parses its one stdout line "time_s=<float> check=<u64>". Returns 0 and the
 * two values, or non-zero after printing why (exit status, signal, timeout or a malformed line).
 */
int bench_peer_run(const char *path, const char *const *args, double timeout_s, double *out_time_s,
                   uint64_t *out_check);

/* What a peer contender needs for one case: `path CASE WORKERS ARG1 [ARG2]`. */
typedef struct bench_peer_case {
    const char *suite; /* for messages */
    const char *path;
    const char *case_name;
    char arg1[32];
    char arg2[32];     /* "" when the case takes one argument */
    uint64_t expected; /* the check the peer must answer */
    unsigned ticks;    /* > 0: the value is a throughput, ticks / time_s; 0: time_s itself */
} bench_peer_case;

/* A bench_measure_fn for a peer: ctx is a bench_peer_case. Runs the peer once (killed after 300
 * s); the run is correct when its check equals pc->expected. */
int bench_peer_measure(void *ctx, unsigned workers, double *out_value, bool *out_correct);

#endif /* BATON_BENCH_H */
