/*
 * queue_report.c — what the queue suite adds to the common report: the figures derived
 * from the medians (as extras, so the JSON carries them), the summaries printed after the
 * tables, and its JSON array.
 *
 * Derived figures (extras):
 *   t16_vs_base   on spsc_t16, mpsc_t16, mpmc_t16: the contender's items/s there / its items/s
 *                 in spsc, mpsc2, mpmc2. Oversubscription must not collapse: target >= 1/3.
 *   vs_unordered  on fanin_drain_ordered_*: its items/s / fanin_drain_unordered_*'s at the same
 *                 size and pool size. Ordering must cost < 10%: target >= 0.9.
 *   vs_sp         on mp_4p_100k: its items/s / sp_1p_100k's.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <string.h>

#include "bench.h"
#include "queue.h"
#include "suites.h"

#define TARGET_OVERSUBSCRIPTION (1.0 / 3.0)
#define TARGET_ORDERED 0.9

static const struct {
    const char *t16;
    const char *base;
} oversubscribed[] = {{"spsc_t16", "spsc"}, {"mpsc_t16", "mpsc2"}, {"mpmc_t16", "mpmc2"}};
#define N_OVERSUBSCRIBED (sizeof oversubscribed / sizeof oversubscribed[0])

static const char *const drain_sizes[] = {"10k", "100k"};
static const unsigned drain_workers[] = {4, 8, 16};

/* The record of exactly this case and contender, or NULL. */
static const bench_record *find(const bench_report *report, const char *case_name,
                                const char *contender)
{
    for (size_t i = 0; i < report->n_records; i++) {
        const bench_record *r = report->records[i];
        if (strcmp(r->case_name, case_name) == 0 && strcmp(r->contender, contender) == 0)
            return r;
    }
    return NULL;
}

/* median(a) / median(b); NaN when either is missing or not positive, or a record is wrong. */
static double median_ratio(const bench_record *a, const bench_record *b)
{
    double x, y;
    if (a == NULL || b == NULL || !a->correct || !b->correct)
        return NAN;
    x = bench_record_median(a);
    y = bench_record_median(b);
    if (isnan(x) || isnan(y) || x <= 0 || y <= 0)
        return NAN;
    return x / y;
}

static void drain_names(size_t s, size_t w, char *ordered, char *unordered, size_t size)
{
    snprintf(ordered, size, "fanin_drain_ordered_%s_w%u", drain_sizes[s], drain_workers[w]);
    snprintf(unordered, size, "fanin_drain_unordered_%s_w%u", drain_sizes[s], drain_workers[w]);
}

void bench_queue_derive(bench_report *report)
{
    for (size_t i = 0; i < report->n_records; i++) {
        bench_record *r = report->records[i];
        for (size_t k = 0; k < N_OVERSUBSCRIBED; k++)
            if (strcmp(r->case_name, oversubscribed[k].t16) == 0)
                bench_record_set_extra(
                    r, "t16_vs_base",
                    median_ratio(r, find(report, oversubscribed[k].base, r->contender)));
        if (strcmp(r->case_name, "mp_4p_100k") == 0)
            bench_record_set_extra(r, "vs_sp",
                                   median_ratio(r, find(report, "sp_1p_100k", "baton")));
        for (size_t s = 0; s < sizeof drain_sizes / sizeof drain_sizes[0]; s++) {
            for (size_t w = 0; w < sizeof drain_workers / sizeof drain_workers[0]; w++) {
                char ordered[64], unordered[64];
                drain_names(s, w, ordered, unordered, sizeof ordered);
                if (strcmp(r->case_name, ordered) == 0)
                    bench_record_set_extra(r, "vs_unordered",
                                           median_ratio(r, find(report, unordered, "baton")));
            }
        }
    }
}

static void print_ratio(FILE *out, double value)
{
    if (isnan(value))
        fprintf(out, " %7s", "-");
    else
        fprintf(out, " %7.3f", value);
}

static void print_oversubscription(const bench_report *report, FILE *out)
{
    bool header = false;
    for (size_t k = 0; k < N_OVERSUBSCRIBED; k++) {
        for (size_t i = 0; i < report->n_records; i++) {
            const bench_record *t16 = report->records[i];
            const bench_record *base;
            double ratio;
            if (strcmp(t16->case_name, oversubscribed[k].t16) != 0)
                continue;
            base = find(report, oversubscribed[k].base, t16->contender);
            if (base == NULL)
                continue;
            if (!header) {
                fprintf(out,
                        "\noversubscription: items/s at 16 threads / items/s in the base "
                        "case, per contender (target >= %.2f: no collapse)\n",
                        TARGET_OVERSUBSCRIPTION);
                fprintf(out, "  %-6s %-12s %12s %12s %7s\n", "base", "contender", "base", "t16",
                        "ratio");
                header = true;
            }
            ratio = median_ratio(t16, base);
            fprintf(out, "  %-6s %-12s %12.4g %12.4g", base->case_name, t16->contender,
                    bench_record_median(base), bench_record_median(t16));
            print_ratio(out, ratio);
            fprintf(out, "  %s\n",
                    isnan(ratio)                       ? "-"
                    : ratio >= TARGET_OVERSUBSCRIPTION ? "ok"
                                                       : "COLLAPSE");
        }
    }
}

static void print_reorder_cost(const bench_report *report, FILE *out)
{
    bool header = false;
    for (size_t s = 0; s < sizeof drain_sizes / sizeof drain_sizes[0]; s++) {
        for (size_t w = 0; w < sizeof drain_workers / sizeof drain_workers[0]; w++) {
            char ordered[64], unordered[64];
            const bench_record *o, *u;
            double ratio;
            drain_names(s, w, ordered, unordered, sizeof ordered);
            o = find(report, ordered, "baton");
            u = find(report, unordered, "baton");
            if (o == NULL || u == NULL)
                continue;
            if (!header) {
                fprintf(out,
                        "\nreorder cost: drain_ordered items/s / drain_unordered items/s "
                        "(target >= %.2f: ordering costs < 10%%)\n",
                        TARGET_ORDERED);
                fprintf(out, "  %-6s %7s %12s %12s %7s %7s\n", "items", "workers", "ordered",
                        "unordered", "ratio", "cost");
                header = true;
            }
            ratio = median_ratio(o, u);
            fprintf(out, "  %-6s %7u %12.4g %12.4g", drain_sizes[s], drain_workers[w],
                    bench_record_median(o), bench_record_median(u));
            print_ratio(out, ratio);
            if (isnan(ratio))
                fprintf(out, " %7s\n", "-");
            else
                fprintf(out, " %6.1f%%  %s\n", (1.0 - ratio) * 100.0,
                        ratio >= TARGET_ORDERED ? "ok" : "OVER");
        }
    }
}

static void print_producers(const bench_report *report, FILE *out)
{
    const bench_record *sp = find(report, "sp_1p_100k", "baton");
    const bench_record *mp = find(report, "mp_4p_100k", "baton");
    if (sp == NULL || mp == NULL)
        return;
    fprintf(out, "\nwork queue: 4 producers (MPSC ring) vs 1 producer (SPSC ring):\n");
    fprintf(out, "  %-10s %12s %12s %7s\n", "", "sp_1p_100k", "mp_4p_100k", "mp/sp");
    fprintf(out, "  %-10s %12.4g %12.4g", "items/s", bench_record_median(sp),
            bench_record_median(mp));
    print_ratio(out, median_ratio(mp, sp));
    fputc('\n', out);
}

void bench_queue_print_summary(const bench_report *report, FILE *out)
{
    print_oversubscription(report, out);
    print_reorder_cost(report, out);
    print_producers(report, out);
    fflush(out);
}
