/*
 * store.c — `baton-bench store`: the motion workload, one million entities of 48 bytes, 100
 * ticks of the motion rule, in one run and interleaved: a serial starting point (an ordered
 * map), the best serial code (a flat array), baton_parallel_for over the flat array, the sharded
 * store with one owner per shard under each policy, and OpenMP's `parallel for` (what a C
 * programmer tries first). Then a rewrite-heavy variant in
 * which entities interact with a neighbour, so that footprints conflict.
 *
 * Cases and metrics (a published API: scripts depend on the names):
 *   motion            ticks_per_s (ticks/s)        extras speedup (over serial_flat) and
 *                                                  bandwidth_fraction (of the in-place update
 *                                                  limit, measured in the same run)
 *   motion_conflicts  rewrites_per_s (rewrites/s)  extra speedup (over serial_flat)
 * Contenders: serial_ordered_map (motion; peer baton-peer-stdmap, C++ std::map), serial_flat,
 * baton_parallel_for (motion), baton_sharded with "policy": "dynamic", "static" or "dedicated",
 * and omp (motion; peer baton-peer-omp_store). Serial rows run 1 thread, the others the largest
 * count of --workers. vs_baton compares with baton_sharded under the dynamic policy, so the
 * baton_parallel_for row's vs_baton is the sharded / parallel_for ratio.
 *
 * Every contender steps entities with the same kernel (src/store/motion_kernel.h, which
 * baton_motion_update runs too) and is checked: the motion rows' final state, in id order, must
 * have the serial flat run's motion_checksum; the rewrite rows must also have submitted,
 * committed and deferred exactly what the serial implementation of the store's semantics did.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../pool/pool_work.h"
#include "bench.h"
#include "store_work.h"
#include "suites.h"

#define SUITE "store"
#define PEER_PATH_MAX 4096
#define N_POLICIES 3
#define MAX_SLOTS 8

/* The motion workload's sizes: 1M entities, 100 ticks; --quick: a fifth of the entities, 20 ticks.
 */
#define MOTION_ENTITIES 1000000u
#define MOTION_TICKS 100u
#define QUICK_ENTITIES 200000u
#define QUICK_TICKS 20u
/* The rewrite-heavy variant: 10% of the entities interact each tick. It submits 100,000
 * rewrites a tick through the API, so it runs fewer ticks than motion. */
#define CONFLICT_PERCENT 10u
#define CONFLICT_TICKS 20u
#define CONFLICT_QUICK_TICKS 5u
/* The targets the summary checks, on 2 cores. */
#define TARGET_SHARDED_VS_PFOR 0.95
#define TARGET_BANDWIDTH_FRACTION 0.60

static const baton_store_policy policies[N_POLICIES] = {BATON_STORE_DYNAMIC, BATON_STORE_STATIC,
                                                        BATON_STORE_DEDICATED};

enum { PEER_STDMAP, PEER_OMP, N_PEERS };
static const char *const peer_names[N_PEERS] = {"stdmap", "omp_store"};
static const char *const peer_contenders[N_PEERS] = {"serial_ordered_map", "omp"};

typedef struct store_bench {
    const bench_options *options;
    bench_report *report;
    char peer_path[N_PEERS][PEER_PATH_MAX];
    bool peer_available[N_PEERS];
} store_bench;

typedef struct slot_list {
    bench_slot slots[MAX_SLOTS];
    size_t n;
} slot_list;

/* What the summary needs beyond the records: the sizes of the cases that ran. */
static struct {
    size_t entities;
    unsigned ticks, runs, workers;
    unsigned conflict_ticks;
} summary_info;

/* Adds a record (with `policy` as its label when not NULL) and its slot. False when the list is
 * full or memory ran out. */
static bool add_slot(store_bench *sb, slot_list *list, const bench_record *tmpl,
                     const char *contender, const char *policy, unsigned workers,
                     bench_measure_fn measure, void *ctx)
{
    bench_record shape = *tmpl;

    shape.label_name = policy != NULL ? "policy" : NULL;
    shape.label = policy;
    return bench_slots_add(list->slots, &list->n, MAX_SLOTS, sb->report, sb->options->runs, &shape,
                           contender, workers, measure, ctx);
}

/* Fills a peer's case, or returns false when the peer is missing. */
static bool peer_case(const store_bench *sb, int peer, bench_peer_case *pc, size_t entities,
                      unsigned ticks, uint64_t expected)
{
    if (!sb->peer_available[peer])
        return false;
    memset(pc, 0, sizeof *pc);
    pc->suite = SUITE;
    pc->path = sb->peer_path[peer];
    pc->case_name = "motion";
    snprintf(pc->arg1, sizeof pc->arg1, "%zu", entities);
    snprintf(pc->arg2, sizeof pc->arg2, "%u", ticks);
    pc->expected = expected;
    pc->ticks = ticks;
    return true;
}

/* The record's median over serial_flat's in the same case (NaN without one). */
static double speedup_over_serial(const bench_record *r, const bench_record *serial)
{
    return serial != NULL ? bench_record_median(r) / bench_record_median(serial) : NAN;
}

static int run_motion(store_bench *sb)
{
    const bench_record tmpl = {.suite = SUITE,
                               .case_name = "motion",
                               .metric = "ticks_per_s",
                               .unit = "ticks/s",
                               .higher_is_better = true};
    store_motion_case mc;
    store_sharded_case sharded[N_POLICIES];
    bench_peer_case pcs[N_PEERS];
    unsigned w = sb->options->max_workers;
    const bench_record *serial;
    double limit = NAN;
    slot_list list;
    size_t bytes;
    bool ok;

    memset(&mc, 0, sizeof mc);
    mc.entities = sb->options->quick ? QUICK_ENTITIES : MOTION_ENTITIES;
    mc.ticks = sb->options->quick ? QUICK_TICKS : MOTION_TICKS;
    bytes = mc.entities * MOTION_PAYLOAD_BYTES;
    mc.state = malloc(bytes);
    if (mc.state == NULL) {
        cmdline_errorf("bench store: motion: cannot allocate %zu bytes", bytes);
        return -1;
    }

    /* The probe passes over a buffer of the state's size (the state itself, before the reference
     * run initialises it) with all W threads, reading and writing every byte once a pass. */
    limit =
        bench_motion_update_limit(sb->report, "store", mc.state, bytes, mc.entities, mc.ticks, w);
    cmdline_progress("bench store: motion: serial reference");
    mc.expected = store_motion_reference(&mc, mc.ticks);

    list.n = 0;
    ok = true;
    if (peer_case(sb, PEER_STDMAP, &pcs[PEER_STDMAP], mc.entities, mc.ticks, mc.expected))
        ok = add_slot(sb, &list, &tmpl, peer_contenders[PEER_STDMAP], NULL, 1, bench_peer_measure,
                      &pcs[PEER_STDMAP]);
    ok = ok &&
         add_slot(sb, &list, &tmpl, "serial_flat", NULL, 1, store_measure_motion_serial, &mc) &&
         add_slot(sb, &list, &tmpl, "baton_parallel_for", NULL, w, store_measure_motion_pfor, &mc);
    for (int p = 0; p < N_POLICIES && ok; p++) {
        sharded[p].mc = &mc;
        sharded[p].policy = policies[p];
        ok = add_slot(sb, &list, &tmpl, "baton_sharded", store_policy_name(policies[p]), w,
                      store_measure_motion_sharded, &sharded[p]);
    }
    if (ok && peer_case(sb, PEER_OMP, &pcs[PEER_OMP], mc.entities, mc.ticks, mc.expected))
        ok = add_slot(sb, &list, &tmpl, peer_contenders[PEER_OMP], NULL, w, bench_peer_measure,
                      &pcs[PEER_OMP]);
    if (!ok) {
        free(mc.state);
        return -1;
    }
    bench_run_slots("motion", list.slots, list.n, sb->options->runs);
    free(mc.state);

    serial = bench_report_find(sb->report, "motion", "serial_flat", 0);
    for (size_t i = 0; i < list.n; i++) {
        bench_record *r = list.slots[i].record;
        bench_record_set_extra(r, "speedup", speedup_over_serial(r, serial));
        /* A tick reads every byte of the state and writes every cache line of it back (each
         * 64-byte line holds part of some entity's position), as one pass of the probe does. */
        if (!isnan(limit))
            bench_record_set_extra(r, "bandwidth_fraction",
                                   2.0 * (double)bytes * bench_record_median(r) / limit);
    }
    summary_info.entities = mc.entities;
    summary_info.ticks = mc.ticks;
    summary_info.runs = sb->options->runs;
    summary_info.workers = w;
    return 0;
}

static int run_conflicts(store_bench *sb)
{
    const bench_record tmpl = {.suite = SUITE,
                               .case_name = "motion_conflicts",
                               .metric = "rewrites_per_s",
                               .unit = "rewrites/s",
                               .higher_is_better = true};
    store_conflict_case cc;
    store_sharded_conflict_case sharded[N_POLICIES];
    unsigned w = sb->options->max_workers;
    const bench_record *serial;
    slot_list list;
    size_t bytes;
    bool ok;

    memset(&cc, 0, sizeof cc);
    cc.entities = sb->options->quick ? QUICK_ENTITIES : MOTION_ENTITIES;
    cc.ticks = sb->options->quick ? CONFLICT_QUICK_TICKS : CONFLICT_TICKS;
    cc.percent = CONFLICT_PERCENT;
    bytes = cc.entities * MOTION_PAYLOAD_BYTES;
    cc.state = malloc(bytes);
    if (cc.state == NULL) {
        cmdline_errorf("bench store: motion_conflicts: cannot allocate %zu bytes", bytes);
        return -1;
    }
    cmdline_progress("bench store: motion_conflicts: serial reference");
    if (store_conflict_reference(&cc) != 0) {
        free(cc.state);
        return -1;
    }
    bench_report_note(sb->report, "motion_conflicts",
                      "%zu entities, %u ticks (motion update, then %u%% interact with id+1); "
                      "%.3g rewrites submitted, %.3g committed, %.3g deferrals, %.3g left queued",
                      cc.entities, cc.ticks, cc.percent, (double)cc.expected_submitted,
                      (double)cc.expected_committed, (double)cc.expected_deferrals,
                      (double)cc.expected_pending);

    list.n = 0;
    ok = add_slot(sb, &list, &tmpl, "serial_flat", NULL, 1, store_measure_conflict_serial, &cc);
    for (int p = 0; p < N_POLICIES && ok; p++) {
        sharded[p].cc = &cc;
        sharded[p].policy = policies[p];
        ok = add_slot(sb, &list, &tmpl, "baton_sharded", store_policy_name(policies[p]), w,
                      store_measure_conflict_sharded, &sharded[p]);
    }
    if (!ok) {
        free(cc.state);
        return -1;
    }
    bench_run_slots("motion_conflicts", list.slots, list.n, sb->options->runs);
    free(cc.state);

    serial = bench_report_find(sb->report, "motion_conflicts", "serial_flat", 0);
    for (size_t i = 0; i < list.n; i++)
        bench_record_set_extra(list.slots[i].record, "speedup",
                               speedup_over_serial(list.slots[i].record, serial));
    summary_info.conflict_ticks = cc.ticks;
    return 0;
}

/* Resolves the peers' paths; a missing one is skipped for the whole run, with a note. */
static void find_peers(store_bench *sb)
{
    for (int p = 0; p < N_PEERS; p++) {
        if (!peer_process_path(sb->options->peers_dir, peer_names[p], sb->peer_path[p],
                               PEER_PATH_MAX)) {
            cmdline_note("bench store: peers directory name too long; %s skipped", peer_names[p]);
            sb->peer_available[p] = false;
            continue;
        }
        sb->peer_available[p] = peer_process_available(sb->peer_path[p]);
        if (!sb->peer_available[p])
            cmdline_note("bench store: %s not found; the %s contender is skipped (%s)",
                         sb->peer_path[p], peer_contenders[p],
                         p == PEER_STDMAP ? "built by `make bench`"
                                          : "built with the CLI when CMake finds OpenMP");
    }
}

int bench_store_run(const bench_options *options, bench_report *report)
{
    store_bench sb;
    int rc = 0;

    memset(&sb, 0, sizeof sb);
    sb.options = options;
    sb.report = report;
    report->baton_contender = "baton_sharded";
    report->baton_label = store_policy_name(BATON_STORE_DYNAMIC);
    find_peers(&sb);
    if (bench_case_selected(options, "motion"))
        rc = run_motion(&sb);
    if (rc == 0 && bench_case_selected(options, "motion_conflicts"))
        rc = run_conflicts(&sb);
    return rc;
}

/* ---- the summary: the motion table and the targets ------------------------------------------ */

static void print_motion_summary(const bench_report *report, FILE *out)
{
    const bench_record *pfor =
        bench_report_find_label(report, "motion", "baton_parallel_for", NULL);
    const bench_record *best = NULL;
    double best_fraction = NAN;
    char name[64];

    fprintf(out, "\nThe motion table: %zu entities, %u ticks, %u workers (medians of %u runs)\n",
            summary_info.entities, summary_info.ticks, summary_info.workers, summary_info.runs);
    fprintf(out, "  %-26s %10s %12s %10s %10s  %s\n", "strategy", "ticks/s", "total (s)", "speedup",
            "bandwidth", "correct");
    for (size_t i = 0; i < report->n_records; i++) {
        const bench_record *r = report->records[i];
        double rate = bench_record_median(r),
               fraction = bench_record_extra(r, "bandwidth_fraction");
        if (strcmp(r->case_name, "motion") != 0)
            continue;
        bench_record_name(r, name, sizeof name);
        fprintf(out, "  %-26s %10.1f %12.3f %9.2fx %10.2f  %s\n", name, rate,
                summary_info.ticks / rate, bench_record_extra(r, "speedup"), fraction,
                r->correct ? "yes" : "NO");
        if (r->correct && !isnan(fraction) && (best == NULL || fraction > best_fraction)) {
            best = r;
            best_fraction = fraction;
        }
    }
    fprintf(out, "  speedup: over serial_flat; bandwidth: fraction of the in-place update limit\n");

    fprintf(out, "  target, baton_sharded >= %.2fx baton_parallel_for:", TARGET_SHARDED_VS_PFOR);
    for (int p = 0; p < N_POLICIES; p++) {
        const char *policy = store_policy_name(policies[p]);
        const bench_record *r = bench_report_find_label(report, "motion", "baton_sharded", policy);
        double ratio =
            r != NULL && pfor != NULL ? bench_record_median(r) / bench_record_median(pfor) : NAN;
        fprintf(out, " %s %.3f (%s)%s", policy, ratio,
                ratio >= TARGET_SHARDED_VS_PFOR ? "met" : "missed", p + 1 < N_POLICIES ? "," : "");
    }
    fputc('\n', out);
    if (best != NULL) {
        bench_record_name(best, name, sizeof name);
        fprintf(out, "  target, best row >= %.2f of the bandwidth limit: %s %.3f (%s)\n",
                TARGET_BANDWIDTH_FRACTION, name, best_fraction,
                best_fraction >= TARGET_BANDWIDTH_FRACTION ? "met" : "missed");
    }
}

static void print_conflict_summary(const bench_report *report, FILE *out)
{
    const bench_record *serial =
        bench_report_find_label(report, "motion_conflicts", "serial_flat", NULL);

    fprintf(out, "\nmotion_conflicts: rewrites per second, %u ticks (medians)\n",
            summary_info.conflict_ticks);
    fprintf(out, "  %-26s %12s %14s  %s\n", "strategy", "rewrites/s", "vs serial_flat", "correct");
    for (size_t i = 0; i < report->n_records; i++) {
        const bench_record *r = report->records[i];
        char name[64];
        if (strcmp(r->case_name, "motion_conflicts") != 0)
            continue;
        bench_record_name(r, name, sizeof name);
        fprintf(out, "  %-26s %12.4g %13.2fx  %s\n", name, bench_record_median(r),
                serial != NULL ? bench_record_median(r) / bench_record_median(serial) : NAN,
                r->correct ? "yes" : "NO");
    }
}

void bench_store_print_summary(const bench_report *report, FILE *out)
{
    if (bench_report_find_label(report, "motion", "serial_flat", NULL) != NULL)
        print_motion_summary(report, out);
    if (bench_report_find_label(report, "motion_conflicts", "serial_flat", NULL) != NULL)
        print_conflict_summary(report, out);
    fflush(out);
}
