/*
 * pool.c — `baton-bench pool`: the pool suite. Sets up its cases and contenders, hands them
 * to the interleaved runner, and derives the extra fields from the medians.
 *
 * Cases and metrics (a published API: scripts depend on the names):
 *   fib32              time (s)               fib(32) by fork-join without cutoff, at each worker
 *                                             count of --workers; extra ns_per_task
 *   pfor16_hot         time (s)               median latency of one 16-item parallel_for
 *   pfor16_after_idle  time (s)               the same, each loop after 5 ms of sleep
 *   motion             ticks_per_s (ticks/s)  the motion rule over 1M entities (memory-bound);
 *                                             extras speedup, bandwidth_fraction
 *   idle_cpu           cpu_fraction (cores)   CPU burnt by an idle pool (baton only)
 * Contenders: baton and serial in this process; rayon, tbb and omp as peer processes
 * (bench/common/peer_process.c, protocol in bench/peers/peer_common.h), skipped with a note when
 * their binary is missing. Every case has all five, except idle_cpu (baton only).
 *
 * Peer arguments per case (after CASE WORKERS):
 *   fib W 32                   time_s = seconds of fib(32),          check = fib(32)
 *   pfor16_hot W SAMPLES       time_s = median seconds of one loop,  check = wrapping sum of all
 *   pfor16_after_idle W SAMPLES                                        outputs of the timed loops
 *   motion W ENTITIES TICKS    time_s = seconds of all the ticks,    check = motion_checksum
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "pool_work.h"
#include "suites.h"
#include "workloads.h"

#define SUITE "pool"
#define FIB_N 32
#define MAX_SLOTS (4 * BENCH_MAX_WORKER_COUNTS + 8)
#define PEER_PATH_MAX 4096

enum { PEER_RAYON, PEER_TBB, PEER_OMP, N_PEERS };
static const char *const peer_names[N_PEERS] = {"rayon", "tbb", "omp"};

typedef struct pool_bench {
    const bench_options *options;
    bench_report *report;
    char peer_path[N_PEERS][PEER_PATH_MAX];
    bool peer_available[N_PEERS];
} pool_bench;

typedef struct slot_list {
    bench_slot slots[MAX_SLOTS];
    size_t n;
} slot_list;

/* Adds a record and its slot. False when the list is full or memory ran out. */
static bool add_slot(pool_bench *pb, slot_list *list, const bench_record *tmpl,
                     const char *contender, unsigned workers, bench_measure_fn measure, void *ctx)
{
    return bench_slots_add(list->slots, &list->n, MAX_SLOTS, pb->report, pb->options->runs, tmpl,
                           contender, workers, measure, ctx);
}

/* Fills one peer_case per available peer; `args` are the arguments after CASE WORKERS. */
static void init_peer_cases(const pool_bench *pb, bench_peer_case *pcs, const char *case_name,
                            const char *arg1, const char *arg2, uint64_t expected, unsigned ticks)
{
    for (int p = 0; p < N_PEERS; p++) {
        pcs[p].suite = SUITE;
        pcs[p].path = pb->peer_path[p];
        pcs[p].case_name = case_name;
        snprintf(pcs[p].arg1, sizeof pcs[p].arg1, "%s", arg1);
        snprintf(pcs[p].arg2, sizeof pcs[p].arg2, "%s", arg2 ? arg2 : "");
        pcs[p].expected = expected;
        pcs[p].ticks = ticks;
    }
}

/* Adds the available peers at `workers`. */
static bool add_peers(pool_bench *pb, slot_list *list, const bench_record *tmpl, unsigned workers,
                      bench_peer_case *pcs)
{
    for (int p = 0; p < N_PEERS; p++) {
        if (!pb->peer_available[p])
            continue;
        if (!add_slot(pb, list, tmpl, peer_names[p], workers, bench_peer_measure, &pcs[p]))
            return false;
    }
    return true;
}

static int run_fib32(pool_bench *pb)
{
    const bench_record tmpl = {.suite = SUITE, .case_name = "fib32", .metric = "time", .unit = "s"};
    bench_peer_case pcs[N_PEERS];
    fib_case fc = {FIB_N};
    slot_list list;
    char n_arg[16];

    list.n = 0;
    snprintf(n_arg, sizeof n_arg, "%d", FIB_N);
    /* The peers call this case "fib" and take N: `fib W 32`. */
    init_peer_cases(pb, pcs, "fib", n_arg, NULL, fib_expected(FIB_N), 0);
    for (unsigned i = 0; i < pb->options->n_workers; i++) {
        unsigned w = pb->options->workers[i];
        if (!add_slot(pb, &list, &tmpl, "baton", w, pool_measure_fib_baton, &fc) ||
            !add_peers(pb, &list, &tmpl, w, pcs))
            return -1;
    }
    if (!add_slot(pb, &list, &tmpl, "serial", 1, pool_measure_fib_serial, &fc))
        return -1;
    bench_run_slots("fib32", list.slots, list.n, pb->options->runs);

    for (size_t i = 0; i < list.n; i++) {
        bench_record *r = list.slots[i].record;
        bench_record_set_extra(r, "ns_per_task",
                               bench_record_median(r) / (double)fib_calls(FIB_N) * 1e9);
    }
    return 0;
}

static int run_pfor16(pool_bench *pb, const char *case_name, unsigned samples, double idle_s)
{
    const bench_record tmpl = {
        .suite = SUITE, .case_name = case_name, .metric = "time", .unit = "s"};
    bench_peer_case pcs[N_PEERS];
    pfor_case pc = {samples, idle_s};
    unsigned w = pb->options->max_workers;
    uint64_t expected = 0;
    slot_list list;
    char samples_arg[16];

    list.n = 0;
    for (unsigned s = 0; s < samples; s++)
        expected += pfor_expected_sum(); /* wrapping, as the peers sum */
    snprintf(samples_arg, sizeof samples_arg, "%u", samples);
    init_peer_cases(pb, pcs, case_name, samples_arg, NULL, expected, 0);
    if (!add_slot(pb, &list, &tmpl, "baton", w, pool_measure_pfor_baton, &pc) ||
        !add_peers(pb, &list, &tmpl, w, pcs) ||
        !add_slot(pb, &list, &tmpl, "serial", 1, pool_measure_pfor_serial, &pc))
        return -1;
    bench_run_slots(case_name, list.slots, list.n, pb->options->runs);
    return 0;
}

static int run_motion(pool_bench *pb)
{
    const bench_record tmpl = {.suite = SUITE,
                               .case_name = "motion",
                               .metric = "ticks_per_s",
                               .unit = "ticks/s",
                               .higher_is_better = true};
    bench_peer_case pcs[N_PEERS];
    motion_case mc;
    unsigned w = pb->options->max_workers;
    const bench_record *serial;
    double limit = NAN, serial_rate;
    slot_list list;
    char entities_arg[24], ticks_arg[16];
    size_t bytes;

    mc.entities = pb->options->quick ? 200000 : 1000000;
    mc.ticks = pb->options->quick ? 20 : 100;
    bytes = mc.entities * MOTION_PAYLOAD_BYTES;
    mc.state = malloc(bytes);
    if (mc.state == NULL) {
        cmdline_errorf("bench pool: motion: cannot allocate %zu bytes", bytes);
        return -1;
    }

    /* The probe uses the state buffer (same size, already the process's memory), before the
     * reference run initialises it. */
    limit =
        bench_motion_update_limit(pb->report, "pool", mc.state, bytes, mc.entities, mc.ticks, w);
    cmdline_progress("bench pool: motion: serial reference");
    pool_motion_reference(&mc);

    list.n = 0;
    snprintf(entities_arg, sizeof entities_arg, "%zu", mc.entities);
    snprintf(ticks_arg, sizeof ticks_arg, "%u", mc.ticks);
    init_peer_cases(pb, pcs, "motion", entities_arg, ticks_arg, mc.expected, mc.ticks);
    if (!add_slot(pb, &list, &tmpl, "baton", w, pool_measure_motion_baton, &mc) ||
        !add_peers(pb, &list, &tmpl, w, pcs) ||
        !add_slot(pb, &list, &tmpl, "serial", 1, pool_measure_motion_serial, &mc)) {
        free(mc.state);
        return -1;
    }
    bench_run_slots("motion", list.slots, list.n, pb->options->runs);
    free(mc.state);

    serial = bench_report_find(pb->report, "motion", "serial", 0);
    serial_rate = serial ? bench_record_median(serial) : NAN;
    for (size_t i = 0; i < list.n; i++) {
        bench_record *r = list.slots[i].record;
        double rate = bench_record_median(r);
        bench_record_set_extra(r, "speedup", rate / serial_rate);
        /* A tick reads every cache line of the state and dirties every one of them too (each
         * 64-byte line holds part of some entity's position), so memory sees each byte read and
         * written back once per tick, exactly like the probe's in-place pass. */
        double moved_per_tick = 2.0 * (double)bytes;
        if (!isnan(limit))
            bench_record_set_extra(r, "bandwidth_fraction", moved_per_tick * rate / limit);
    }
    return 0;
}

static int run_idle_cpu(pool_bench *pb)
{
    const bench_record tmpl = {
        .suite = SUITE, .case_name = "idle_cpu", .metric = "cpu_fraction", .unit = "cores"};
    idle_case ic = {0.05, pb->options->quick ? 0.25 : 1.0};
    unsigned w = pb->options->max_workers;
    slot_list list;

    list.n = 0;
    if (!add_slot(pb, &list, &tmpl, "baton", w, pool_measure_idle_baton, &ic))
        return -1;
    if (w != 16 && !add_slot(pb, &list, &tmpl, "baton", 16, pool_measure_idle_baton, &ic))
        return -1;
    bench_run_slots("idle_cpu", list.slots, list.n, pb->options->runs);
    return 0;
}

/* Resolves the peers' paths; a missing one is skipped for the whole run, with a note. */
static void find_peers(pool_bench *pb)
{
    for (int p = 0; p < N_PEERS; p++) {
        if (!peer_process_path(pb->options->peers_dir, peer_names[p], pb->peer_path[p],
                               PEER_PATH_MAX)) {
            cmdline_note("bench pool: peers directory name too long; %s skipped", peer_names[p]);
            pb->peer_available[p] = false;
            continue;
        }
        pb->peer_available[p] = peer_process_available(pb->peer_path[p]);
        if (!pb->peer_available[p])
            cmdline_note(
                "bench pool: %s not found; the %s contender is skipped (the peers are built "
                "by `make bench`)",
                pb->peer_path[p], peer_names[p]);
    }
}

int bench_pool_run(const bench_options *options, bench_report *report)
{
    pool_bench pb;
    int rc;

    memset(&pb, 0, sizeof pb);
    pb.options = options;
    pb.report = report;
    find_peers(&pb);

    rc = 0;
    if (bench_case_selected(options, "fib32"))
        rc = run_fib32(&pb);
    if (rc == 0 && bench_case_selected(options, "pfor16_hot"))
        rc = run_pfor16(&pb, "pfor16_hot", options->quick ? 500 : 2000, 0);
    if (rc == 0 && bench_case_selected(options, "pfor16_after_idle"))
        rc = run_pfor16(&pb, "pfor16_after_idle", options->quick ? 50 : 200, 0.005);
    if (rc == 0 && bench_case_selected(options, "motion"))
        rc = run_motion(&pb);
    if (rc == 0 && bench_case_selected(options, "idle_cpu"))
        rc = run_idle_cpu(&pb);
    return rc;
}
