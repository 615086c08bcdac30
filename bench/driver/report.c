/*
 * report.c — the results of a benchmark suite: one record per contender, case and worker
 * count, holding the value of every run; medians, minima and maxima; the table for people and the
 * JSON array for programs.
 *
 * JSON record layout (a published API; scripts depend on it): the fields "suite", "case",
 * "contender", "metric", "unit", "median", "min", "max", "runs", "correct" always, in this order,
 * then "workers", then the record's label when it has one (the store suite's "policy"), then its
 * extras, then "vs_baton" and "samples". Numbers are printed with %.9g; a value that does not
 * exist (no run succeeded) is null. "runs" counts the runs that produced a value.
 *
 * vs_baton compares with the contender named "baton" unless the suite names another record
 * (bench_report.baton_contender and baton_label: the store suite compares with its sharded
 * store under the dynamic policy).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

bench_record *bench_report_add(bench_report *report, const bench_record *tmpl, unsigned runs)
{
    bench_record *record;

    if (report->n_records == report->capacity) {
        size_t capacity = report->capacity ? 2 * report->capacity : 16;
        bench_record **grown = realloc(report->records, capacity * sizeof *grown);
        if (grown == NULL) {
            cmdline_errorf("bench: out of memory");
            return NULL;
        }
        report->records = grown;
        report->capacity = capacity;
    }
    record = calloc(1, sizeof *record);
    if (record == NULL) {
        cmdline_errorf("bench: out of memory");
        return NULL;
    }
    record->samples = calloc(runs ? runs : 1, sizeof *record->samples);
    if (record->samples == NULL) {
        free(record);
        cmdline_errorf("bench: out of memory");
        return NULL;
    }
    record->suite = tmpl->suite;
    record->case_name = tmpl->case_name;
    record->contender = tmpl->contender;
    record->metric = tmpl->metric;
    record->unit = tmpl->unit;
    record->higher_is_better = tmpl->higher_is_better;
    record->workers = tmpl->workers;
    record->label_name = tmpl->label_name;
    record->label = tmpl->label;
    record->capacity = runs;
    record->correct = true;
    report->records[report->n_records++] = record;
    return record;
}

bool bench_slots_add(bench_slot *slots, size_t *n, size_t max, bench_report *report, unsigned runs,
                     const bench_record *tmpl, const char *contender, unsigned workers,
                     bench_measure_fn measure, void *ctx)
{
    bench_record shape = *tmpl;
    bench_record *record;

    if (report->only_contender != NULL && strcmp(contender, report->only_contender) != 0)
        return true;
    if (*n == max)
        return false;
    shape.contender = contender;
    shape.workers = workers;
    record = bench_report_add(report, &shape, runs);
    if (record == NULL)
        return false;
    slots[*n] = (bench_slot){measure, ctx, workers, record, false};
    (*n)++;
    return true;
}

void bench_report_free(bench_report *report)
{
    for (size_t i = 0; i < report->n_records; i++) {
        free(report->records[i]->samples);
        free(report->records[i]);
    }
    free(report->records);
    memset(report, 0, sizeof *report);
}

void bench_report_note(bench_report *report, const char *case_name, const char *fmt, ...)
{
    va_list ap;
    if (report->n_notes == BENCH_MAX_NOTES)
        return;
    report->notes[report->n_notes].case_name = case_name;
    va_start(ap, fmt);
    vsnprintf(report->notes[report->n_notes].text, sizeof report->notes[0].text, fmt, ap);
    va_end(ap);
    report->n_notes++;
}

void bench_record_sample(bench_record *record, double value)
{
    if (record->n_samples < record->capacity)
        record->samples[record->n_samples++] = value;
}

void bench_record_set_extra(bench_record *record, const char *name, double value)
{
    for (unsigned i = 0; i < record->n_extras; i++) {
        if (strcmp(record->extras[i].name, name) == 0) {
            record->extras[i].value = value;
            return;
        }
    }
    if (record->n_extras < BENCH_MAX_EXTRAS) {
        record->extras[record->n_extras].name = name;
        record->extras[record->n_extras].value = value;
        record->n_extras++;
    }
}

double bench_record_median(const bench_record *record)
{
    double copy[BENCH_MAX_RUNS];
    unsigned n = record->n_samples < BENCH_MAX_RUNS ? record->n_samples : BENCH_MAX_RUNS;
    memcpy(copy, record->samples, n * sizeof copy[0]);
    return bench_median(copy, n);
}

double bench_record_min(const bench_record *record)
{
    double best = NAN;
    for (unsigned i = 0; i < record->n_samples; i++)
        if (isnan(best) || record->samples[i] < best)
            best = record->samples[i];
    return best;
}

double bench_record_max(const bench_record *record)
{
    double worst = NAN;
    for (unsigned i = 0; i < record->n_samples; i++)
        if (isnan(worst) || record->samples[i] > worst)
            worst = record->samples[i];
    return worst;
}

const bench_record *bench_report_find(const bench_report *report, const char *case_name,
                                      const char *contender, unsigned workers)
{
    const bench_record *widest = NULL;
    for (size_t i = 0; i < report->n_records; i++) {
        const bench_record *r = report->records[i];
        if (strcmp(r->case_name, case_name) != 0 || strcmp(r->contender, contender) != 0)
            continue;
        if (workers != 0 && r->workers == workers)
            return r;
        if (widest == NULL || r->workers > widest->workers)
            widest = r;
    }
    return widest;
}

const bench_record *bench_report_find_label(const bench_report *report, const char *case_name,
                                            const char *contender, const char *label)
{
    for (size_t i = 0; i < report->n_records; i++) {
        const bench_record *r = report->records[i];
        if (strcmp(r->case_name, case_name) == 0 && strcmp(r->contender, contender) == 0 &&
            (label == NULL || (r->label != NULL && strcmp(r->label, label) == 0)))
            return r;
    }
    return NULL;
}

bool bench_report_all_correct(const bench_report *report)
{
    for (size_t i = 0; i < report->n_records; i++)
        if (report->records[i]->attempted && !report->records[i]->correct)
            return false;
    return true;
}

static const char *baton_name(const bench_report *report)
{
    return report->baton_contender != NULL ? report->baton_contender : "baton";
}

/* The record r is compared with: the report's baton contender (and label) at r's worker count,
 * or else the one of them with the most workers. NULL when there is none. */
static const bench_record *find_baton(const bench_report *report, const bench_record *r)
{
    const bench_record *widest = NULL;
    for (size_t i = 0; i < report->n_records; i++) {
        const bench_record *b = report->records[i];
        if (strcmp(b->case_name, r->case_name) != 0 ||
            strcmp(b->contender, baton_name(report)) != 0)
            continue;
        if (report->baton_label != NULL &&
            (b->label == NULL || strcmp(b->label, report->baton_label) != 0))
            continue;
        if (b->workers == r->workers)
            return b;
        if (widest == NULL || b->workers > widest->workers)
            widest = b;
    }
    return widest;
}

/* median(contender) / median(baton) for a time, the inverse for a throughput: >1 means baton is
 * better either way. NaN when either is missing. */
static double ratio_vs_baton(const bench_report *report, const bench_record *r)
{
    const bench_record *baton = find_baton(report, r);
    double mine, theirs;
    if (baton == NULL)
        return NAN;
    mine = bench_record_median(r);
    theirs = bench_record_median(baton);
    if (isnan(mine) || isnan(theirs) || mine <= 0 || theirs <= 0)
        return NAN;
    return r->higher_is_better ? theirs / mine : mine / theirs;
}

/* Prints a number in `width` columns with 4 significant digits, or "-" when it does not exist. */
static void print_number(FILE *out, int width, double value)
{
    if (isnan(value) || isinf(value))
        fprintf(out, " %*s", width, "-");
    else
        fprintf(out, " %*.4g", width, value);
}

static bool seen_before(const bench_report *report, size_t index)
{
    for (size_t j = 0; j < index; j++)
        if (strcmp(report->records[j]->case_name, report->records[index]->case_name) == 0)
            return true;
    return false;
}

/* Collects the names of the extras of one case's records, in order of first appearance. */
static unsigned case_extras(const bench_report *report, const char *case_name, const char **names,
                            unsigned max_names)
{
    unsigned n = 0;
    for (size_t i = 0; i < report->n_records; i++) {
        const bench_record *r = report->records[i];
        if (strcmp(r->case_name, case_name) != 0)
            continue;
        for (unsigned e = 0; e < r->n_extras; e++) {
            unsigned k = 0;
            while (k < n && strcmp(names[k], r->extras[e].name) != 0)
                k++;
            if (k == n && n < max_names)
                names[n++] = r->extras[e].name;
        }
    }
    return n;
}

static const bench_extra *find_extra(const bench_record *r, const char *name)
{
    for (unsigned e = 0; e < r->n_extras; e++)
        if (strcmp(r->extras[e].name, name) == 0)
            return &r->extras[e];
    return NULL;
}

void bench_record_name(const bench_record *r, char *buf, size_t size)
{
    if (r->label != NULL)
        snprintf(buf, size, "%s (%s)", r->contender, r->label);
    else
        snprintf(buf, size, "%s", r->contender);
}

double bench_record_extra(const bench_record *r, const char *name)
{
    const bench_extra *x = find_extra(r, name);
    return x != NULL ? x->value : NAN;
}

static void print_case_table(const bench_report *report, const bench_record *first, FILE *out)
{
    const char *extras[2 * BENCH_MAX_EXTRAS];
    unsigned n_extras = case_extras(report, first->case_name, extras, 2 * BENCH_MAX_EXTRAS);
    char name[64], baton[64];
    int width = 12;

    for (size_t i = 0; i < report->n_records; i++) {
        if (strcmp(report->records[i]->case_name, first->case_name) != 0)
            continue;
        bench_record_name(report->records[i], name, sizeof name);
        if ((int)strlen(name) > width)
            width = (int)strlen(name);
    }
    if (report->baton_label != NULL)
        snprintf(baton, sizeof baton, "%s (%s)", baton_name(report), report->baton_label);
    else
        snprintf(baton, sizeof baton, "%s", baton_name(report));
    fprintf(out, "%s / %s: %s in %s, %s is better; vs baton: %s%s%s, >1 means %s is better\n",
            first->suite, first->case_name, first->metric, first->unit,
            first->higher_is_better ? "higher" : "lower",
            first->higher_is_better ? baton : "contender", " / ",
            first->higher_is_better ? "contender" : baton, baton);
    for (unsigned i = 0; i < report->n_notes; i++)
        if (strcmp(report->notes[i].case_name, first->case_name) == 0)
            fprintf(out, "  %s\n", report->notes[i].text);
    fprintf(out, "  %-*s %7s %11s %11s %11s %-8s %8s %7s", width, "contender", "workers", "median",
            "min", "max", "unit", "vs baton", "correct");
    for (unsigned e = 0; e < n_extras; e++)
        fprintf(out, " %18s", extras[e]);
    fputc('\n', out);

    for (size_t i = 0; i < report->n_records; i++) {
        const bench_record *r = report->records[i];
        if (strcmp(r->case_name, first->case_name) != 0)
            continue;
        bench_record_name(r, name, sizeof name);
        fprintf(out, "  %-*s %7u", width, name, r->workers);
        print_number(out, 11, bench_record_median(r));
        print_number(out, 11, bench_record_min(r));
        print_number(out, 11, bench_record_max(r));
        fprintf(out, " %-8s", r->unit);
        print_number(out, 8, ratio_vs_baton(report, r));
        fprintf(out, " %7s", r->correct ? "yes" : "NO");
        for (unsigned e = 0; e < n_extras; e++) {
            const bench_extra *x = find_extra(r, extras[e]);
            print_number(out, 18, x ? x->value : NAN);
        }
        fputc('\n', out);
    }
}

void bench_report_print_table(const bench_report *report, FILE *out)
{
    bool first_table = true;
    for (size_t i = 0; i < report->n_records; i++) {
        if (seen_before(report, i))
            continue;
        if (!first_table)
            fputc('\n', out);
        first_table = false;
        print_case_table(report, report->records[i], out);
    }
    fflush(out);
}

/* Writes a JSON string; the names here are ASCII identifiers, but escape anyway. */
static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void json_number(FILE *out, double value)
{
    if (isnan(value) || isinf(value))
        fputs("null", out);
    else
        fprintf(out, "%.9g", value);
}

void bench_report_print_json(const bench_report *report, FILE *out)
{
    fputc('[', out);
    for (size_t i = 0; i < report->n_records; i++) {
        const bench_record *r = report->records[i];
        fputs(i == 0 ? "\n  {" : ",\n  {", out);
        fputs("\"suite\": ", out);
        json_string(out, r->suite);
        fputs(", \"case\": ", out);
        json_string(out, r->case_name);
        fputs(", \"contender\": ", out);
        json_string(out, r->contender);
        fputs(", \"metric\": ", out);
        json_string(out, r->metric);
        fputs(", \"unit\": ", out);
        json_string(out, r->unit);
        fputs(", \"median\": ", out);
        json_number(out, bench_record_median(r));
        fputs(", \"min\": ", out);
        json_number(out, bench_record_min(r));
        fputs(", \"max\": ", out);
        json_number(out, bench_record_max(r));
        fprintf(out, ", \"runs\": %u, \"correct\": %s, \"workers\": %u", r->n_samples,
                r->correct ? "true" : "false", r->workers);
        if (r->label_name != NULL && r->label != NULL) {
            fputs(", ", out);
            json_string(out, r->label_name);
            fputs(": ", out);
            json_string(out, r->label);
        }
        for (unsigned e = 0; e < r->n_extras; e++) {
            fputs(", ", out);
            json_string(out, r->extras[e].name);
            fputs(": ", out);
            json_number(out, r->extras[e].value);
        }
        fputs(", \"vs_baton\": ", out);
        json_number(out, ratio_vs_baton(report, r));
        fputs(", \"samples\": [", out);
        for (unsigned s = 0; s < r->n_samples; s++) {
            if (s > 0)
                fputs(", ", out);
            json_number(out, r->samples[s]);
        }
        fputs("]}", out);
    }
    fputs(report->n_records ? "\n]\n" : "]\n", out);
    fflush(out);
}
