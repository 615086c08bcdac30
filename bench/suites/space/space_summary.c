/*
 * space_summary.c — the lines `baton-bench space` prints after its tables: the space's targets,
 * each with the figures it compares and "met" or "missed", from the medians of the run.
 *
 *   independent  baton / the better lock baseline (global_mutex or channel_mutex, whichever has
 *                the higher median at that count) >= 0.8 at 1 worker (the per-operation cost:
 *                the locks are uncontended there), >= 1.5 at 2, 4 and 8
 *   join3        baton / the better lock baseline >= 1.0 at 1, 2, 4 and 8; baton at 2 workers /
 *                baton at 1 >= 1.5 (joins that scale)
 *   join3_hot    baton / the better lock baseline >= 1.0 at 2 workers
 *   durable      (cpu_ns_per_pair of durable_async - that of durable_none) / durable_none's <=
 *                0.5 (the log's added CPU); durable_async / durable_none pairs per second >= 0.7;
 *                durable_sync / durable_sync_per_op >= 50 (group commit)
 *   idle_cpu     < 0.01 cores; wait_cpu the same
 * A target counts correct rows only; a row the run did not measure (another --workers, --case
 * or --contender) prints "- (not measured)".
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <string.h>

#include "space.h"
#include "suites.h"

#define TARGET_INDEPENDENT_1 0.8
#define TARGET_INDEPENDENT_N 1.5
#define TARGET_JOIN3 1.0
#define TARGET_JOIN3_SCALING 1.5
#define TARGET_JOIN3_HOT 1.0
#define TARGET_JOIN3_HOT_WORKERS 2u
#define TARGET_ASYNC_CPU 0.5
#define TARGET_ASYNC_VS_NONE 0.7
#define TARGET_SYNC_VS_PER_OP 50.0
#define TARGET_IDLE_CORES 0.01

static const unsigned target_workers[] = {1, 2, 4, 8};
#define N_TARGET_WORKERS (sizeof target_workers / sizeof target_workers[0])

/* What the summary needs beyond the records. */
static struct {
    unsigned runs;
} summary_info;

void bench_space_summary_init(unsigned runs)
{
    summary_info.runs = runs;
}

/* The median of a correct record with samples; NaN otherwise (or for NULL). */
static double good_median(const bench_record *r)
{
    return r != NULL && r->correct && r->n_samples > 0 ? bench_record_median(r) : NAN;
}

/* The record of exactly `workers` (bench_report_find falls back to the widest). */
static const bench_record *find_exact(const bench_report *report, const char *case_name,
                                      const char *contender, unsigned workers)
{
    const bench_record *r = bench_report_find(report, case_name, contender, workers);
    return r != NULL && r->workers == workers ? r : NULL;
}

/* The better of the two lock baselines at `workers` (higher median, correct rows only); NULL
 * when neither has a correct row. */
static const bench_record *best_lock(const bench_report *report, const char *case_name,
                                     unsigned workers)
{
    const bench_record *g = find_exact(report, case_name, "global_mutex", workers);
    const bench_record *c = find_exact(report, case_name, "channel_mutex", workers);
    double gm = good_median(g), cm = good_median(c);
    if (isnan(gm))
        return isnan(cm) ? NULL : c;
    return isnan(cm) || gm >= cm ? g : c;
}

/*
 * Prints ": A_NAME A, B_NAME B: RATIO (met|missed)" for a / b against target (at_most: the
 * ratio must be <= target, else >=), or ": - (not measured)" when either figure is missing.
 */
static void print_ratio(FILE *out, const char *a_name, double a, const char *b_name, double b,
                        double target, bool at_most)
{
    double ratio = a / b;
    if (isnan(a) || isnan(b) || !(b > 0)) {
        fputs(": - (not measured)\n", out);
        return;
    }
    fprintf(out, ": %s %.3g, %s %.3g: %.3f (%s)\n", a_name, a, b_name, b, ratio,
            (at_most ? ratio <= target : ratio >= target) ? "met" : "missed");
}

/* "CASE at W workers, baton / the better lock >= TARGET: ..." */
static void print_vs_locks(FILE *out, const bench_report *report, const char *case_name,
                           unsigned workers, double target)
{
    const bench_record *lock = best_lock(report, case_name, workers);
    fprintf(out, "  %s at %u worker%s, baton / the better lock baseline >= %.2f", case_name,
            workers, workers == 1 ? "" : "s", target);
    print_ratio(out, "baton", good_median(find_exact(report, case_name, "baton", workers)),
                lock != NULL ? lock->contender : "locks", good_median(lock), target, false);
}

/* Where durable_async's CPU goes, per pair (medians): the writer's share and the rest, which
 * the appends add to the workers. The last figure is a model, not a measurement: none's CPU over
 * async's without the writer's, the rate async would reach if the writer had a core of its own
 * and the workers' CPU were all that bounds them. */
static void print_cpu_split(FILE *out, const bench_record *none, const bench_record *async)
{
    double none_cpu = none != NULL ? bench_record_extra(none, "cpu_ns_per_pair") : NAN;
    double async_cpu = async != NULL ? bench_record_extra(async, "cpu_ns_per_pair") : NAN;
    double writer = async != NULL ? bench_record_extra(async, "writer_cpu_ns_per_pair") : NAN;
    if (isnan(none_cpu) || isnan(async_cpu) || isnan(writer) || async_cpu <= writer)
        return;
    fprintf(out,
            "    CPU per pair: none %.0f ns, async %.0f ns (the writer %.0f, the rest %.0f); "
            "none / async without the writer's (a model: the writer on a core of its own): %.3f\n",
            none_cpu, async_cpu, writer, async_cpu - writer, none_cpu / (async_cpu - writer));
}

/* durable_async's CPU per pair over none's, less one (the log's added share); NaN when either is
 * missing or wrong. */
static double added_cpu(const bench_record *none, const bench_record *async, double *out_none,
                        double *out_async)
{
    *out_none = !isnan(good_median(none)) ? bench_record_extra(none, "cpu_ns_per_pair") : NAN;
    *out_async = !isnan(good_median(async)) ? bench_record_extra(async, "cpu_ns_per_pair") : NAN;
    return *out_async - *out_none;
}

static void print_durable(FILE *out, const bench_report *report)
{
    const bench_record *none = bench_report_find(report, "durable_none", "baton", 0);
    const bench_record *async = bench_report_find(report, "durable_async", "baton", 0);
    double none_cpu, async_cpu, added = added_cpu(none, async, &none_cpu, &async_cpu);

    fprintf(out,
            "  durable_async's added CPU per pair (cpu_ns_per_pair, async - none) / "
            "durable_none's <= %.2f",
            TARGET_ASYNC_CPU);
    if (isnan(added)) {
        print_ratio(out, "added", NAN, "none", NAN, TARGET_ASYNC_CPU, true);
    } else {
        fprintf(out, " (async %.0f ns)", async_cpu);
        print_ratio(out, "added", added, "none", none_cpu, TARGET_ASYNC_CPU, true);
    }
    fprintf(out, "  durable_async / durable_none pairs per second >= %.2f", TARGET_ASYNC_VS_NONE);
    print_ratio(out, "async", good_median(async), "none", good_median(none), TARGET_ASYNC_VS_NONE,
                false);
    print_cpu_split(out, none, async);
    fprintf(out, "  durable_sync / durable_sync_per_op pairs per second >= %.0f",
            TARGET_SYNC_VS_PER_OP);
    print_ratio(out, "sync", good_median(bench_report_find(report, "durable_sync", "baton", 0)),
                "per_op", good_median(bench_report_find(report, "durable_sync_per_op", "baton", 0)),
                TARGET_SYNC_VS_PER_OP, false);
}

/* "CASE < 0.01 cores: ..." for every row of the case (one per worker count it ran at). */
static void print_cpu_case(FILE *out, const bench_report *report, const char *case_name)
{
    bool any = false;
    for (size_t i = 0; i < report->n_records; i++) {
        const bench_record *r = report->records[i];
        double cores = good_median(r);
        if (strcmp(r->case_name, case_name) != 0 || strcmp(r->contender, "baton") != 0)
            continue;
        any = true;
        fprintf(out, "  %s at %u workers < %.2f cores", case_name, r->workers, TARGET_IDLE_CORES);
        if (isnan(cores))
            fputs(": - (not measured)\n", out);
        else
            fprintf(out, ": %.3g (%s)\n", cores, cores < TARGET_IDLE_CORES ? "met" : "missed");
    }
    if (!any)
        fprintf(out, "  %s < %.2f cores: - (not measured)\n", case_name, TARGET_IDLE_CORES);
}

void bench_space_print_summary(const bench_report *report, FILE *out)
{
    fprintf(out,
            "\nspace targets (medians of %u runs; a target counts only correct rows; the better "
            "lock baseline: global_mutex or channel_mutex, whichever is faster at that count):\n",
            summary_info.runs);
    for (size_t i = 0; i < N_TARGET_WORKERS; i++)
        print_vs_locks(out, report, "independent", target_workers[i],
                       target_workers[i] == 1 ? TARGET_INDEPENDENT_1 : TARGET_INDEPENDENT_N);
    for (size_t i = 0; i < N_TARGET_WORKERS; i++)
        print_vs_locks(out, report, "join3", target_workers[i], TARGET_JOIN3);
    fprintf(out, "  join3, baton at 2 workers / baton at 1 worker >= %.2f", TARGET_JOIN3_SCALING);
    print_ratio(out, "2 workers", good_median(find_exact(report, "join3", "baton", 2)), "1 worker",
                good_median(find_exact(report, "join3", "baton", 1)), TARGET_JOIN3_SCALING, false);
    print_vs_locks(out, report, "join3_hot", TARGET_JOIN3_HOT_WORKERS, TARGET_JOIN3_HOT);
    print_durable(out, report);
    print_cpu_case(out, report, "idle_cpu");
    print_cpu_case(out, report, "wait_cpu");
    fflush(out);
}
