/*
 * graph.c — `baton-bench graph`: the graph layer's pipelines against oneTBB's flow graph, a
 * hand-written pthread pipeline and a serial loop, in one run, interleaved.
 *
 * Cases and metrics (a published API: scripts depend on the names):
 *   trivial4  items_per_s (items/s)  a source and 4 stages doing almost nothing per item (three
 *                                    maps, a serial summing sink), 10^7 items (--quick 10^6): the
 *                                    per-item overhead; extra ns_per_item (wall time per item)
 *   work4     items_per_s (items/s)  the same pipeline with about 1 us of work in each stage,
 *                                    calibrated in this run; extra speedup (over serial)
 * Contenders: baton (baton_graph on a pool of W workers) and tbb_flow (the peer
 * baton-peer-tbb_flow, oneTBB's flow graph in an arena of W threads) at each count W of
 * --workers; pthread_queues (one thread per stage and the source's, mutex+condvar queues; its
 * "workers" is its thread count, 5); serial (one loop, 1 thread). The stages are
 * bench/common/graph_workloads.h's, the same code for every contender.
 *
 * Every result is checked before its time counts: the sink's wrapping sum must equal the serial
 * reference's and it must have seen every item exactly once (the peer checks its count itself).
 *
 * Peer arguments (after CASE WORKERS), bench/common/peer_process.h's protocol:
 *   trivial4 W ITEMS          time_s = seconds of the timed run,  check = the sink's sum
 *   work4 W ITEMS ROUNDS      (ROUNDS: graph_spin rounds per stage, from this run's calibration)
 *
 * The targets (the summary after the tables): trivial4, baton >= 1.2x tbb_flow's items per second;
 * work4, baton >= 1.8x serial's items per second on 2 workers.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "graph_work.h"
#include "graph_workloads.h"
#include "suites.h"

#define SUITE "graph"
#define PEER_NAME "tbb_flow"
#define PEER_PATH_MAX 4096
#define MAX_SLOTS (2 * BENCH_MAX_WORKER_COUNTS + 2)

#define TARGET_TRIVIAL_VS_TBB 1.2
#define TARGET_WORK_SPEEDUP 1.8
#define TARGET_WORK_WORKERS 2u

typedef struct graph_bench {
    const bench_options *options;
    bench_report *report;
    char peer_path[PEER_PATH_MAX];
    bool peer_available;
} graph_bench;

typedef struct slot_list {
    bench_slot slots[MAX_SLOTS];
    size_t n;
} slot_list;

/* What the summary needs beyond the records. */
static struct {
    unsigned runs;
} summary_info;

/* Adds a record and its slot. False when the list is full or memory ran out. */
static bool add_slot(graph_bench *gb, slot_list *list, const bench_record *tmpl,
                     const char *contender, unsigned workers, bench_measure_fn measure, void *ctx)
{
    return bench_slots_add(list->slots, &list->n, MAX_SLOTS, gb->report, gb->options->runs, tmpl,
                           contender, workers, measure, ctx);
}

/* Adds every contender of a case (baton and tbb_flow at each worker count, then pthread_queues
 * and serial) and runs them, interleaved. */
static int run_contenders(graph_bench *gb, graph_case *gc, const bench_record *tmpl)
{
    bench_peer_case pc;
    slot_list list;

    memset(&pc, 0, sizeof pc);
    pc.suite = SUITE;
    pc.path = gb->peer_path;
    pc.case_name = gc->name;
    snprintf(pc.arg1, sizeof pc.arg1, "%llu", (unsigned long long)gc->items);
    if (gc->rounds > 0)
        snprintf(pc.arg2, sizeof pc.arg2, "%llu", (unsigned long long)gc->rounds);
    pc.expected = gc->expected_sum;
    pc.ticks = (unsigned)gc->items; /* the value is items / time_s */

    list.n = 0;
    for (unsigned i = 0; i < gb->options->n_workers; i++) {
        unsigned w = gb->options->workers[i];
        if (!add_slot(gb, &list, tmpl, "baton", w, graph_measure_baton, gc))
            return -1;
        if (gb->peer_available &&
            !add_slot(gb, &list, tmpl, "tbb_flow", w, bench_peer_measure, &pc))
            return -1;
    }
    if (!add_slot(gb, &list, tmpl, "pthread_queues", GRAPH_PTHREAD_THREADS,
                  graph_measure_pthread_queues, gc) ||
        !add_slot(gb, &list, tmpl, "serial", 1, graph_measure_serial, gc))
        return -1;
    bench_run_slots(gc->name, list.slots, list.n, gb->options->runs);
    return 0;
}

/* A note with what baton's graph did in its last timed run at the most workers: how many items
 * each node took per activation, and the share of the run each node spent busy and blocked. */
static void note_baton_stats(graph_bench *gb, const graph_case *gc)
{
    const graph_baton_stats *s = &gc->baton_stats;
    double run_ns = s->run_s * 1e9;
    char per_activation[64] = "", busy[64] = "", blocked[64] = "";
    size_t a = 0, b = 0, c = 0;

    if (s->workers == 0 || !(run_ns > 0))
        return;
    for (int n = 0; n < 5; n++) {
        const baton_node_stats *ns = &s->nodes[n];
        double per = ns->activations > 0 ? (double)ns->items_in / (double)ns->activations : 0;
        a += (size_t)snprintf(per_activation + a, sizeof per_activation - a, " %.3g", per);
        b += (size_t)snprintf(busy + b, sizeof busy - b, " %.0f", 100.0 * ns->busy_ns / run_ns);
        c += (size_t)snprintf(blocked + c, sizeof blocked - c, " %.0f",
                              100.0 * ns->blocked_ns / run_ns);
    }
    bench_report_note(gb->report, gc->name,
                      "baton, %u workers, last run (source map1 map2 map3 sink): items per "
                      "activation%s; %% of the run busy%s, blocked%s",
                      s->workers, per_activation, busy, blocked);
}

static int run_trivial4(graph_bench *gb)
{
    const bench_record tmpl = {.suite = SUITE,
                               .case_name = "trivial4",
                               .metric = "items_per_s",
                               .unit = "items/s",
                               .higher_is_better = true};
    graph_case gc;

    memset(&gc, 0, sizeof gc);
    gc.name = "trivial4";
    gc.items = gb->options->quick ? GRAPH_TRIVIAL_QUICK_ITEMS : GRAPH_TRIVIAL_ITEMS;
    gc.rounds = 0;
    cmdline_progress("bench graph: trivial4: serial reference");
    gc.expected_sum = graph_reference_sum(gc.items, 0);
    bench_report_note(gb->report, "trivial4",
                      "%.3g items: source -> x*3+1 -> x^(x>>7) -> x+0x9e37..7c15 -> sum (serial "
                      "sink); pthread_queues: %d threads, queues of %d items",
                      (double)gc.items, GRAPH_PTHREAD_THREADS, GRAPH_PTHREAD_QUEUE_CAPACITY);
    if (run_contenders(gb, &gc, &tmpl) != 0)
        return -1;
    note_baton_stats(gb, &gc);

    for (size_t i = 0; i < gb->report->n_records; i++) {
        bench_record *r = gb->report->records[i];
        if (strcmp(r->case_name, "trivial4") == 0)
            bench_record_set_extra(r, "ns_per_item", 1e9 / bench_record_median(r));
    }
    return 0;
}

static int run_work4(graph_bench *gb)
{
    const bench_record tmpl = {.suite = SUITE,
                               .case_name = "work4",
                               .metric = "items_per_s",
                               .unit = "items/s",
                               .higher_is_better = true};
    const bench_record *serial;
    double ns_per_round, reference_s;
    graph_case gc;

    memset(&gc, 0, sizeof gc);
    gc.name = "work4";
    gc.items = gb->options->quick ? GRAPH_WORK_QUICK_ITEMS : GRAPH_WORK_ITEMS;
    cmdline_progress("bench graph: work4: calibrating the stages' work");
    gc.rounds = graph_calibrate_rounds(&ns_per_round);
    cmdline_progress("bench graph: work4: serial reference");
    reference_s = cmdline_now_s();
    gc.expected_sum = graph_reference_sum(gc.items, gc.rounds);
    reference_s = cmdline_now_s() - reference_s;
    bench_report_note(gb->report, "work4",
                      "%.3g items; each stage (3 maps, the sink) runs %llu mixer rounds: %.0f ns "
                      "at the calibrated %.3g ns a round; the reference took %.3g s",
                      (double)gc.items, (unsigned long long)gc.rounds,
                      (double)gc.rounds * ns_per_round, ns_per_round, reference_s);
    if (run_contenders(gb, &gc, &tmpl) != 0)
        return -1;
    note_baton_stats(gb, &gc);

    serial = bench_report_find(gb->report, "work4", "serial", 0);
    for (size_t i = 0; i < gb->report->n_records; i++) {
        bench_record *r = gb->report->records[i];
        if (strcmp(r->case_name, "work4") == 0)
            bench_record_set_extra(
                r, "speedup",
                serial != NULL ? bench_record_median(r) / bench_record_median(serial) : NAN);
    }
    return 0;
}

int bench_graph_run(const bench_options *options, bench_report *report)
{
    graph_bench gb;
    int rc = 0;

    memset(&gb, 0, sizeof gb);
    gb.options = options;
    gb.report = report;
    summary_info.runs = options->runs;
    if (!peer_process_path(options->peers_dir, PEER_NAME, gb.peer_path, sizeof gb.peer_path))
        cmdline_note("bench graph: peers directory name too long; " PEER_NAME " skipped");
    else if (!(gb.peer_available = peer_process_available(gb.peer_path)))
        cmdline_note("bench graph: %s not found; the tbb_flow contender is skipped (the peers are "
                     "built by `make bench`)",
                     gb.peer_path);
    if (bench_case_selected(options, "trivial4"))
        rc = run_trivial4(&gb);
    if (rc == 0 && bench_case_selected(options, "work4"))
        rc = run_work4(&gb);
    return rc;
}

/* ---- the summary: the targets --------------------------------------------------------------- */

/* The median of a over b's, when both ran correctly; NaN otherwise. */
static double ratio_of_medians(const bench_record *a, const bench_record *b)
{
    if (a == NULL || b == NULL || !a->correct || !b->correct)
        return NAN;
    return bench_record_median(a) / bench_record_median(b);
}

/* Prints " RATIO (met)" or " RATIO (missed)", or " - (not measured)" when a row is missing. */
static void print_verdict(FILE *out, double ratio, double target)
{
    if (isnan(ratio))
        fputs(" - (not measured)", out);
    else
        fprintf(out, " %.3f (%s)", ratio, ratio >= target ? "met" : "missed");
}

void bench_graph_print_summary(const bench_report *report, FILE *out)
{
    const bench_record *baton, *other;
    double ratio;

    fprintf(out, "\ngraph targets (medians of %u runs; a target counts only correct rows):\n",
            summary_info.runs);
    /* trivial4: at the most workers that both ran with (bench_report_find's fallback is the
     * widest record, so ask for baton's widest and then tbb_flow at that count). */
    baton = bench_report_find(report, "trivial4", "baton", 0);
    if (baton != NULL) {
        other = bench_report_find(report, "trivial4", "tbb_flow", baton->workers);
        ratio = other != NULL && other->workers == baton->workers ? ratio_of_medians(baton, other)
                                                                  : NAN;
        fprintf(out, "  trivial4, baton / tbb_flow items per second at %u workers >= %.2f:",
                baton->workers, TARGET_TRIVIAL_VS_TBB);
        print_verdict(out, ratio, TARGET_TRIVIAL_VS_TBB);
        fputc('\n', out);
    }
    baton = bench_report_find(report, "work4", "baton", TARGET_WORK_WORKERS);
    if (baton != NULL) {
        other = bench_report_find(report, "work4", "serial", 0);
        ratio = ratio_of_medians(baton, other);
        fprintf(out,
                "  work4, baton / serial items per second at %u workers >= %.2f:", baton->workers,
                TARGET_WORK_SPEEDUP);
        print_verdict(out, ratio, TARGET_WORK_SPEEDUP);
        fputs(baton->workers != TARGET_WORK_WORKERS ? " (the target is for 2 workers)\n" : "\n",
              out);
    }
    fflush(out);
}
