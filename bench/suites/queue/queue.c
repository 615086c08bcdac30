/*
 * queue.c — `baton-bench queue`: the queue suite. Sets up its cases and contenders, hands
 * them to the interleaved runner, and derives the extra fields from the medians.
 *
 * Cases, all with the metric items_per_s (items/s, higher is better; a published API: scripts
 * depend on the names). "workers" in the records is the number of threads of the case (ring and
 * work queue cases) or the pool's size (fan-in cases).
 *   spsc, spsc_t4, spsc_t8, spsc_t16     THREADS/2 producer->consumer pairs, one ring each
 *                                        (2, 4, 8, 16 threads): baton's SPSC ring vs ck_ring, tbb
 *   mpsc2, mpsc_t4, mpsc_t8, mpsc_t16    THREADS-1 producers, 1 consumer (3, 4, 8, 16 threads):
 *                                        baton's bounded MPSC ring, baton_linked (the unbounded
 *                                        linked MPSC) vs wfcqueue, moodycamel, tbb
 *   mpmc2, mpmc_t8, mpmc_t16             THREADS/2 producers and consumers (4, 8, 16 threads):
 *                                        baton's MPMC ring vs crossbeam, tbb
 *     ITEMS 10^6 per run (--quick 10^5), ring capacity 1024; threads, items, clock and checks of
 *     bench/common/queue_workloads.h (baton's side: queue_ring.c). Extra t16_vs_base on the
 *     *_t16 records: items/s at 16 threads / items/s in the case's base (spsc, mpsc2, mpmc2).
 *   sp_1p_100k, mp_4p_100k               the work queue's single-producer sender vs
 *                                        BATON_WQ_MULTI_PRODUCER with 4 producers, 100K items,
 *                                        capacity 1024 (queue_workq.c); extra vs_sp on mp
 *   fanin_<strategy>_<10k|100k>_w<4|8|16> the results of 10K or 100K items processed on a pool of
 *                                        4, 8 or 16 workers, brought together by sharded_mutex,
 *                                        per_thread_concat, mpsc, drain_ordered, drain_unordered
 *                                        (queue_fanin.c); extra vs_unordered on
 *                                        drain_ordered: its items/s / drain_unordered's
 * Contenders: baton (and baton_linked) in this process; the peers as processes through
 * bench_peer_run (driver/peer.c) with the queue protocol of bench/peers/queue_peer_common.h:
 *     <dir>/baton-peer-<name> spsc|mpsc|mpmc THREADS ITEMS  ->  time_s=<float> check=<u64>
 * (contender tbb is the program baton-peer-tbbqueue; baton-peer-tbb is the pool suite's). A
 * missing peer is skipped with a note. A peer's answer counts when its check equals
 * queue_expected_check(producers, ITEMS); the peers also check order themselves (exit 3).
 *
 * The contenders of a case run interleaved (bench_run_slots); so do the five fan-in strategies
 * of one size and pool size, so that the reorder cost compares runs made side by side.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "queue.h"
#include "queue_workloads.h"
#include "suites.h"

#define SUITE "queue"
#define METRIC "items_per_s"
#define UNIT "items/s"
#define PEER_PATH_MAX 4096
/* A peer that has not answered by then is hung: it is killed and its record marked incorrect. */
#define PEER_TIMEOUT_S 300.0
#define RING_ITEMS 1000000
#define RING_ITEMS_QUICK 100000
#define WORKQ_ITEMS 100000
#define MAX_SLOTS 8

static const char *const ring_cases[] = {"spsc",  "spsc_t4", "spsc_t8", "spsc_t16",
                                         "mpsc2", "mpsc_t4", "mpsc_t8", "mpsc_t16",
                                         "mpmc2", "mpmc_t8", "mpmc_t16"};
#define N_RING_CASES (sizeof ring_cases / sizeof ring_cases[0])

/* The peers, in the order they appear in a case; cases: QUEUE_CASE_BIT of the kinds they run. */
static const struct {
    const char *contender;
    const char *program; /* baton-peer-<program> */
    unsigned cases;
} peers[] = {
    {"ck_ring", "ck_ring", QUEUE_CASE_BIT(QUEUE_SPSC)},
    {"wfcqueue", "wfcqueue", QUEUE_CASE_BIT(QUEUE_MPSC)},
    {"moodycamel", "moodycamel", QUEUE_CASE_BIT(QUEUE_MPSC)},
    {"crossbeam", "crossbeam", QUEUE_CASE_BIT(QUEUE_MPMC)},
    {"tbb", "tbbqueue",
     QUEUE_CASE_BIT(QUEUE_SPSC) | QUEUE_CASE_BIT(QUEUE_MPSC) | QUEUE_CASE_BIT(QUEUE_MPMC)},
};
#define N_PEERS (sizeof peers / sizeof peers[0])

static const size_t fanin_sizes[] = {10000, 100000};
static const char *const fanin_size_names[] = {"10k", "100k"};
static const unsigned fanin_workers[] = {4, 8, 16};
#define N_FANIN_SIZES (sizeof fanin_sizes / sizeof fanin_sizes[0])
#define N_FANIN_WORKERS (sizeof fanin_workers / sizeof fanin_workers[0])

/* The fan-in case names. The records point at them, so they live as long as the process. */
static char fanin_names[N_FANIN_SIZES][N_FANIN_WORKERS][BENCH_FANIN_N_STRATEGIES][48];

typedef struct queue_bench {
    const bench_options *options;
    bench_report *report;
    char peer_path[N_PEERS][PEER_PATH_MAX];
    bool peer_available[N_PEERS];
    bool ring_noted;
} queue_bench;

/* What a peer contender needs for one ring case. */
typedef struct peer_case {
    const char *path;
    const char *case_name;
    const char *kind; /* spsc | mpsc | mpmc */
    char threads[16];
    char items[24];
    uint64_t n_items;
    uint64_t expected;
} peer_case;

typedef struct slot_list {
    bench_slot slots[MAX_SLOTS];
    size_t n;
} slot_list;

static int measure_peer(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const peer_case *pc = ctx;
    const char *args[4];
    double time_s;
    uint64_t check;

    (void)workers;
    args[0] = pc->kind;
    args[1] = pc->threads;
    args[2] = pc->items;
    args[3] = NULL;
    if (bench_peer_run(pc->path, args, PEER_TIMEOUT_S, &time_s, &check) != 0)
        return -1;
    if (!(time_s > 0)) {
        cmdline_errorf("%s: %s took time_s=0: no throughput to report", pc->path, pc->case_name);
        return -1;
    }
    *out_value = (double)pc->n_items / time_s;
    *out_correct = check == pc->expected;
    if (!*out_correct)
        cmdline_note("bench queue: %s %s %s %s: check=%" PRIu64 ", expected %" PRIu64, pc->path,
                     pc->kind, pc->threads, pc->items, check, pc->expected);
    return 0;
}

/* Adds a record of `case_name` (every queue record has the same metric) and its slot. False when
 * the list is full or memory ran out. */
static bool add_slot(queue_bench *qb, slot_list *list, const char *case_name, const char *contender,
                     unsigned workers, bench_measure_fn measure, void *ctx)
{
    const bench_record tmpl = {.suite = SUITE,
                               .case_name = case_name,
                               .metric = METRIC,
                               .unit = UNIT,
                               .higher_is_better = true};

    return bench_slots_add(list->slots, &list->n, MAX_SLOTS, qb->report, qb->options->runs, &tmpl,
                           contender, workers, measure, ctx);
}

static int run_ring_case(queue_bench *qb, const char *case_name)
{
    uint64_t items = qb->options->quick ? RING_ITEMS_QUICK : RING_ITEMS;
    bench_queue_ring baton_ctx = {case_name, items, false};
    bench_queue_ring linked_ctx = {case_name, items, true};
    peer_case pcs[N_PEERS];
    struct queue_layout layout;
    enum queue_case kind;
    unsigned threads;
    slot_list list;

    memset(&layout, 0, sizeof layout);
    if (queue_bench_case(case_name, &kind, &threads) != 0 ||
        queue_layout_init(&layout, kind, threads) != 0) {
        cmdline_errorf("bench queue: %s: not a case of queue_workloads.h", case_name);
        return -1;
    }
    if (!qb->ring_noted) {
        bench_report_note(qb->report, case_name,
                          "%" PRIu64 " items per run after a %" PRIu64 "-item warm-up; ring "
                          "capacity %d; workers = producer + consumer threads",
                          items, queue_warmup_items(items), QUEUE_RING_CAPACITY);
        bench_report_note(qb->report, case_name,
                          "baton: blocking push/pop (BATON_WAIT_FOREVER), consumers end on "
                          "BATON_EEOF after main joins the producers and closes the ring");
        qb->ring_noted = true;
    }

    list.n = 0;
    if (!add_slot(qb, &list, case_name, "baton", threads, bench_queue_measure_ring, &baton_ctx))
        return -1;
    if (kind == QUEUE_MPSC && !add_slot(qb, &list, case_name, "baton_linked", threads,
                                        bench_queue_measure_ring, &linked_ctx))
        return -1;
    for (size_t p = 0; p < N_PEERS; p++) {
        peer_case *pc = &pcs[p];
        if (!qb->peer_available[p] || (peers[p].cases & QUEUE_CASE_BIT(kind)) == 0)
            continue;
        pc->path = qb->peer_path[p];
        pc->case_name = case_name;
        pc->kind = queue_case_name(kind);
        snprintf(pc->threads, sizeof pc->threads, "%u", threads);
        snprintf(pc->items, sizeof pc->items, "%" PRIu64, items);
        pc->n_items = items;
        pc->expected = queue_expected_check(layout.producers, items);
        if (!add_slot(qb, &list, case_name, peers[p].contender, threads, measure_peer, pc))
            return -1;
    }
    bench_run_slots(case_name, list.slots, list.n, qb->options->runs);
    return 0;
}

static int run_workq_cases(queue_bench *qb)
{
    bench_queue_workq sp = {"sp_1p_100k", 1, WORKQ_ITEMS};
    bench_queue_workq mp = {"mp_4p_100k", 4, WORKQ_ITEMS};
    bool want_sp = bench_case_selected(qb->options, sp.case_name);
    bool want_mp = bench_case_selected(qb->options, mp.case_name);
    slot_list list;

    if (!want_sp && !want_mp)
        return 0;
    bench_report_note(qb->report, want_sp ? sp.case_name : mp.case_name,
                      "%d pre-built items, capacity %d, one receiving thread; workers = "
                      "producers + receiver; mp: BATON_WQ_MULTI_PRODUCER, 3 clones",
                      WORKQ_ITEMS, QUEUE_RING_CAPACITY);
    list.n = 0;
    if (want_sp && !add_slot(qb, &list, sp.case_name, "baton", sp.producers + 1,
                             bench_queue_measure_workq, &sp))
        return -1;
    if (want_mp && !add_slot(qb, &list, mp.case_name, "baton", mp.producers + 1,
                             bench_queue_measure_workq, &mp))
        return -1;
    bench_run_slots("work queue", list.slots, list.n, qb->options->runs);
    return 0;
}

static bool any_fanin_selected(const bench_options *options)
{
    for (size_t s = 0; s < N_FANIN_SIZES; s++)
        for (size_t w = 0; w < N_FANIN_WORKERS; w++)
            for (unsigned k = 0; k < BENCH_FANIN_N_STRATEGIES; k++)
                if (bench_case_selected(options, fanin_names[s][w][k]))
                    return true;
    return false;
}

static int run_fanin_cases(queue_bench *qb)
{
    bool noted = false;

    if (!any_fanin_selected(qb->options))
        return 0;
    for (size_t s = 0; s < N_FANIN_SIZES; s++) {
        bench_fanin_data *data = NULL;
        for (size_t w = 0; w < N_FANIN_WORKERS; w++) {
            bench_queue_fanin ctxs[BENCH_FANIN_N_STRATEGIES];
            slot_list list;
            char group[32];

            list.n = 0;
            for (unsigned k = 0; k < BENCH_FANIN_N_STRATEGIES; k++) {
                const char *name = fanin_names[s][w][k];
                if (!bench_case_selected(qb->options, name))
                    continue;
                if (data == NULL && (data = bench_queue_fanin_data_create(fanin_sizes[s])) == NULL)
                    return -1;
                if (!noted) {
                    cmdline_progress("bench queue: timing the per-item work");
                    bench_report_note(qb->report, name,
                                      "per-item work: %d rounds of baton_mix64, %.0f ns here; "
                                      "workers = pool size; warm-up N/10 first",
                                      BENCH_FANIN_WORK_ROUNDS, bench_queue_fanin_work_ns());
                    bench_report_note(qb->report, name,
                                      "non-drain strategies: recv_n into chunks of %d items, "
                                      "one scope task per chunk; sharded_mutex: %d shards",
                                      BENCH_FANIN_CHUNK, BENCH_FANIN_SHARDS);
                    noted = true;
                }
                ctxs[k].strategy = k;
                ctxs[k].data = data;
                if (!add_slot(qb, &list, name, "baton", fanin_workers[w], bench_queue_measure_fanin,
                              &ctxs[k])) {
                    bench_queue_fanin_data_destroy(data);
                    return -1;
                }
            }
            snprintf(group, sizeof group, "fanin_%s_w%u", fanin_size_names[s], fanin_workers[w]);
            bench_run_slots(group, list.slots, list.n, qb->options->runs);
        }
        bench_queue_fanin_data_destroy(data);
    }
    return 0;
}

static void name_fanin_cases(void)
{
    for (size_t s = 0; s < N_FANIN_SIZES; s++)
        for (size_t w = 0; w < N_FANIN_WORKERS; w++)
            for (unsigned k = 0; k < BENCH_FANIN_N_STRATEGIES; k++)
                snprintf(fanin_names[s][w][k], sizeof fanin_names[s][w][k], "fanin_%s_%s_w%u",
                         bench_fanin_strategy_names[k], fanin_size_names[s], fanin_workers[w]);
}

/* True when --case names a case of this suite (or is not given). */
static bool known_case(const bench_options *options)
{
    if (options->only_case == NULL || any_fanin_selected(options) ||
        bench_case_selected(options, "sp_1p_100k") || bench_case_selected(options, "mp_4p_100k"))
        return true;
    for (size_t i = 0; i < N_RING_CASES; i++)
        if (bench_case_selected(options, ring_cases[i]))
            return true;
    return false;
}

/* Resolves the peers' paths; a missing one is skipped for the whole run, with a note. */
static void find_peers(queue_bench *qb)
{
    bool any_ring = false;
    for (size_t i = 0; i < N_RING_CASES; i++)
        any_ring = any_ring || bench_case_selected(qb->options, ring_cases[i]);
    for (size_t p = 0; p < N_PEERS; p++) {
        if (!peer_process_path(qb->options->peers_dir, peers[p].program, qb->peer_path[p],
                               PEER_PATH_MAX)) {
            if (any_ring)
                cmdline_note("bench queue: peers directory name too long; %s skipped",
                             peers[p].contender);
            qb->peer_available[p] = false;
            continue;
        }
        qb->peer_available[p] = peer_process_available(qb->peer_path[p]);
        if (!qb->peer_available[p] && any_ring)
            cmdline_note(
                "bench queue: %s not found; the %s contender is skipped (the peers are built "
                "by `make bench`)",
                qb->peer_path[p], peers[p].contender);
    }
}

int bench_queue_run(const bench_options *options, bench_report *report)
{
    queue_bench qb;
    int rc = 0;

    name_fanin_cases();
    if (!known_case(options)) {
        cmdline_errorf(
            "bench queue: no case named '%s'; the cases are spsc, spsc_t4/t8/t16, mpsc2, "
            "mpsc_t4/t8/t16, mpmc2, mpmc_t8/t16, sp_1p_100k, mp_4p_100k and "
            "fanin_<sharded_mutex|per_thread_concat|mpsc|drain_ordered|drain_unordered>_"
            "<10k|100k>_w<4|8|16>",
            options->only_case);
        return -1;
    }
    memset(&qb, 0, sizeof qb);
    qb.options = options;
    qb.report = report;
    find_peers(&qb);

    for (size_t i = 0; i < N_RING_CASES && rc == 0; i++)
        if (bench_case_selected(options, ring_cases[i]))
            rc = run_ring_case(&qb, ring_cases[i]);
    if (rc == 0)
        rc = run_workq_cases(&qb);
    if (rc == 0)
        rc = run_fanin_cases(&qb);
    bench_queue_derive(report);
    return rc;
}
