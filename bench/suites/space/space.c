/*
 * space.c — `baton-bench space`: baton's tuplespace against two lock-based tuplespaces with
 * the same semantics (bench/space_baselines/mutex_space.h), in one run, interleaved; and the
 * durable space's modes against each other.
 *
 * Cases and metrics (a published API: scripts depend on the names):
 *   independent          pairs_per_s (pairs/s)  W workers, each on a channel of its own (a fresh
 *                                               name per worker), each doing produce(ch, Int i)
 *                                               then consume(ch, Int) whose continuation adds the
 *                                               datum to the worker's sum; 2*10^6 pairs in all
 *                                               per run (--quick 4*10^5), split evenly between
 *                                               the workers; extra ns_per_pair (wall time)
 *   join3                joins_per_s (joins/s)  K = 4*W channels in a ring; worker w, in its
 *                                               iteration j, takes i = 4w + j mod 4, produces an
 *                                               Int on channels i, i+1, i+2 (mod K) and consumes
 *                                               a join over the three (Int each): neighbouring
 *                                               workers' joins overlap; 10^6 joins in all
 *                                               (--quick 2*10^5); extra ns_per_join
 *   join3_hot            joins_per_s (joins/s)  as join3, but every worker's joins are over
 *                                               the same 3 channels (the worst case for
 *                                               ownership chains: every join meets every
 *                                               other); same counts; extra ns_per_join
 *   durable_none         pairs_per_s (pairs/s)  (space_durable.c) 256 chains driven from
 *   durable_async                               continuations, each doing P pairs on its own
 *   durable_sync                                channel: in memory (baton_space_create), then on
 *   durable_sync_per_op                         a log (baton_space_open) in ASYNC, SYNC and SYNC
 *                                               with one record per transaction (P per case:
 *                                               see there); extra log_records_per_pair
 *   idle_cpu             cpu_fraction (cores)   (space_idle.c) what an idle space burns: a
 *   wait_cpu                                    space with waiting consumers and nothing to do;
 *                                               a driver in baton_space_quiesce while one slow
 *                                               continuation sleeps (baton only)
 * Contenders: baton (a baton pool of W workers: W tasks by baton_parallel_for with grain 1, each
 * looping; the space runs its continuations on the same pool), global_mutex and channel_mutex
 * (W pthreads; the continuation is called directly on the thread whose call fired it) at each
 * count W of --workers (default 1,2,4,8). The durable cases: baton only, 2 workers.
 *
 * Exactly W threads each: the baselines' W pthreads run while the calling thread waits on a
 * barrier; baton's loops run on the pool's W workers only. A baton_parallel_for called from the
 * calling thread would run loops on it too (an outside caller works in its call, baton/pool.h),
 * W + 1 threads against the baselines' W; so the calling thread hands one function to a worker
 * (pool_install) that calls baton_parallel_for from inside the pool, and sleeps until it returns,
 * then in baton_space_quiesce (which waits on the space, running nothing). Its own CPU time over
 * the timed span (CLOCK_THREAD_CPUTIME_ID) is noted under each table: it must stay near zero.
 *
 * Every result is checked before its time counts: each worker's sum (independent) or count of
 * fired joins (join3) and the sum of every datum taken must be the expected ones, no
 * continuation may fail, and the space must be empty at the end (no datum, no waiting consumer
 * on any channel the run used, after baton_space_quiesce).
 *
 * The targets (the summary after the tables, space_summary.c): baton's medians against the better
 * of the two lock baselines at the same worker count, join3's scaling, the log's added CPU, the
 * group commit's gain and the CPU of an idle or waiting space.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mutex_space.h"
#include "space.h"
#include "suites.h"

#define SUITE BENCH_SPACE_SUITE
#define MAX_SLOTS (3 * BENCH_MAX_WORKER_COUNTS)

#define INDEPENDENT_PAIRS 2000000u
#define INDEPENDENT_QUICK_PAIRS 400000u
#define JOIN3_JOINS 1000000u
#define JOIN3_QUICK_JOINS 200000u
#define JOIN3_WIDTH 3u

#define JOIN3_HOT_WIDTH 3u /* join3_hot's channels: the 3 of every join */

typedef enum space_kind { CASE_INDEPENDENT, CASE_JOIN3, CASE_JOIN3_HOT } space_kind;

/* One case: what every measurement of it shares. */
typedef struct space_case {
    const char *name;
    space_kind kind;
    uint64_t total; /* pairs or joins per run, in all */
    baton_pattern *int_pattern;
    double caller_cpu_max; /* baton: the most CPU the calling thread used in a timed span, s */
    double caller_wall;    /* ... and that span's wall time, s */
} space_case;

/* The space a measurement runs on: baton's or a baseline's. */
typedef struct space_target {
    baton_space *baton;
    ms_space *ms;
} space_target;

typedef struct space_run space_run;

#define BENCH_SPACE_LINE 64 /* a cache line */

typedef struct space_worker {
    /* Each worker's counters on lines of their own: written by every continuation, they
     * measured the benchmark's own false sharing (and one counter all workers added to) along
     * with the space. */
    _Alignas(BENCH_SPACE_LINE) space_run *run;
    unsigned index;
    uint64_t iterations;
    uint8_t chan[BENCH_SPACE_ENC_SIZE]; /* independent: the worker's channel */
    int64_t sum;                        /* independent: the data its continuations took */
    _Atomic uint64_t fired;             /* join3: its joins that fired */
    _Atomic int64_t join_sum;           /* join3: the sum of the data its joins took */
    int rc;
} space_worker;

struct space_run {
    const space_case *sc;
    space_target target;
    unsigned workers;
    space_worker *w;
    baton_pool *pool;                      /* baton: where the loops run */
    uint8_t (*ring)[BENCH_SPACE_ENC_SIZE]; /* join3: the K channels; join3_hot: the 3 */
    size_t ring_n;
    pthread_barrier_t start; /* the baselines' threads start together */
};

/* ---- encodings ---- */

static void put_be64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xffu);
        v >>= 8;
    }
}

void bench_space_encode_int(uint8_t out[BENCH_SPACE_ENC_SIZE], int64_t value)
{
    out[0] = 0x03;
    put_be64(out + 1, (uint64_t)value);
}

void bench_space_encode_name(uint8_t out[BENCH_SPACE_ENC_SIZE], uint64_t id)
{
    out[0] = 0x08;
    put_be64(out + 1, id);
}

static baton_value_view enc_view(const uint8_t *enc)
{
    return (baton_value_view){enc, BENCH_SPACE_ENC_SIZE};
}

/* ---- the workloads, on either space ---- */

static int target_produce(const space_target *t, baton_value_view ch, baton_value_view datum)
{
    return t->baton != NULL ? baton_space_produce(t->baton, ch, datum, false)
                            : ms_space_produce(t->ms, ch, datum);
}

static int target_consume(const space_target *t, const baton_value_view *chans,
                          baton_pattern *const *pats, size_t n, baton_continuation_fn fn, void *ctx)
{
    return t->baton != NULL ? baton_space_consume(t->baton, chans, pats, n, fn, ctx, 0, NULL)
                            : ms_space_consume(t->ms, chans, pats, n, fn, ctx);
}

static int pair_taken(void *ctx, const baton_match *match)
{
    space_worker *w = ctx;
    w->sum += baton_view_int(match->data[0]);
    return 0;
}

static int join_fired(void *ctx, const baton_match *match)
{
    space_worker *w = ctx;
    int64_t sum = 0;
    for (size_t i = 0; i < match->n_channels; i++)
        sum += baton_view_int(match->data[i]);
    atomic_fetch_add_explicit(&w->join_sum, sum, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->fired, 1, memory_order_relaxed);
    return 0;
}

static int independent_loop(space_worker *w)
{
    const space_target *t = &w->run->target;
    baton_pattern *pat = w->run->sc->int_pattern;
    baton_value_view ch = enc_view(w->chan);
    uint8_t datum[BENCH_SPACE_ENC_SIZE];

    for (uint64_t i = 0; i < w->iterations; i++) {
        int rc;
        bench_space_encode_int(datum, (int64_t)i);
        if ((rc = target_produce(t, ch, enc_view(datum))) != 0 ||
            (rc = target_consume(t, &ch, &pat, 1, pair_taken, w)) != 0)
            return rc;
    }
    return 0;
}

static int join3_loop(space_worker *w)
{
    space_run *run = w->run;
    baton_pattern *pats[JOIN3_WIDTH];
    baton_value_view chans[JOIN3_WIDTH];
    uint8_t datum[BENCH_SPACE_ENC_SIZE];

    for (unsigned k = 0; k < JOIN3_WIDTH; k++)
        pats[k] = run->sc->int_pattern;
    for (uint64_t j = 0; j < w->iterations; j++) {
        /* join3_hot: i = 0 for everyone, so every join is over the same ring of 3. */
        size_t i = run->sc->kind == CASE_JOIN3 ? (size_t)(4u * w->index + j % 4u) : 0;
        int rc;
        for (unsigned k = 0; k < JOIN3_WIDTH; k++) {
            /* Every datum of the run is a distinct number: 0 .. 3 * joins - 1. */
            int64_t u = (int64_t)(((uint64_t)w->index * w->iterations + j) * JOIN3_WIDTH + k);
            chans[k] = enc_view(run->ring[(i + k) % run->ring_n]);
            bench_space_encode_int(datum, u);
            if ((rc = target_produce(&run->target, chans[k], enc_view(datum))) != 0)
                return rc;
        }
        if ((rc = target_consume(&run->target, chans, pats, JOIN3_WIDTH, join_fired, w)) != 0)
            return rc;
    }
    return 0;
}

static int worker_loop(space_worker *w)
{
    return w->run->sc->kind == CASE_INDEPENDENT ? independent_loop(w) : join3_loop(w);
}

/* ---- one run: set up, time, check ---- */

static void run_free(space_run *run)
{
    free(run->w);
    free(run->ring);
}

/* Channels and workers; `next_name` hands out the channels' ids. */
static int run_init(space_run *run, const space_case *sc, unsigned workers,
                    uint64_t (*next_name)(void *), void *name_ctx)
{
    memset(run, 0, sizeof *run);
    run->sc = sc;
    run->workers = workers;
    run->w = aligned_alloc(BENCH_SPACE_LINE, workers * sizeof *run->w);
    if (run->w != NULL)
        memset(run->w, 0, workers * sizeof *run->w);
    if (sc->kind != CASE_INDEPENDENT) {
        run->ring_n = sc->kind == CASE_JOIN3 ? 4u * workers : JOIN3_HOT_WIDTH;
        run->ring = calloc(run->ring_n, sizeof *run->ring);
    }
    if (run->w == NULL || (sc->kind != CASE_INDEPENDENT && run->ring == NULL)) {
        run_free(run);
        cmdline_errorf("bench space: out of memory");
        return -1;
    }
    for (size_t i = 0; i < run->ring_n; i++)
        bench_space_encode_name(run->ring[i], next_name(name_ctx));
    for (unsigned i = 0; i < workers; i++) {
        space_worker *w = &run->w[i];
        w->run = run;
        w->index = i;
        w->iterations = sc->total / workers;
        atomic_init(&w->fired, 0);
        atomic_init(&w->join_sum, 0);
        if (sc->kind == CASE_INDEPENDENT)
            bench_space_encode_name(w->chan, next_name(name_ctx));
    }
    return 0;
}

/* The operations the run did in all (pairs or joins). */
static uint64_t run_ops(const space_run *run)
{
    return run->w[0].iterations * run->workers;
}

/* The checks that need no space: every worker's result and the data taken. */
static bool run_results_ok(const space_run *run)
{
    uint64_t per = run->w[0].iterations;
    for (unsigned i = 0; i < run->workers; i++) {
        const space_worker *w = &run->w[i];
        if (w->rc != 0)
            return false;
        if (run->sc->kind == CASE_INDEPENDENT && w->sum != (int64_t)(per * (per - 1) / 2))
            return false;
        if (run->sc->kind != CASE_INDEPENDENT && atomic_load(&w->fired) != per)
            return false;
    }
    if (run->sc->kind != CASE_INDEPENDENT) {
        uint64_t n = run_ops(run) * JOIN3_WIDTH;
        int64_t total = 0;
        for (unsigned i = 0; i < run->workers; i++)
            total += atomic_load(&run->w[i].join_sum);
        if (total != (int64_t)(n * (n - 1) / 2))
            return false;
    }
    return true;
}

static uint64_t baton_next_name(void *ctx)
{
    return baton_space_fresh_name(ctx);
}

static uint64_t counter_next_name(void *ctx)
{
    return ++*(uint64_t *)ctx;
}

static int baton_range(size_t begin, size_t end, void *ctx)
{
    space_run *run = ctx;
    for (size_t i = begin; i < end; i++) {
        run->w[i].rc = worker_loop(&run->w[i]);
        if (run->w[i].rc != 0)
            return run->w[i].rc;
    }
    return 0;
}

/* On a worker of run->pool (pool_install): the W loops, forked from inside the pool so that
 * they run on its W workers and on no other thread. */
static int baton_loops(void *ctx)
{
    space_run *run = ctx;
    return baton_parallel_for(run->pool, 0, run->workers, 1, baton_range, run);
}

/* The CPU time the calling thread has used, in seconds; NaN when the clock cannot be read. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return NAN;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* No datum and no waiting consumer on any channel the run used. */
static bool baton_space_empty(baton_space *space, const space_run *run)
{
    size_t data, consumers;
    for (unsigned i = 0; i < run->workers && run->sc->kind == CASE_INDEPENDENT; i++)
        if (baton_space_channel_counts(space, enc_view(run->w[i].chan), &data, &consumers) != 0 ||
            data != 0 || consumers != 0)
            return false;
    for (size_t i = 0; i < run->ring_n; i++)
        if (baton_space_channel_counts(space, enc_view(run->ring[i]), &data, &consumers) != 0 ||
            data != 0 || consumers != 0)
            return false;
    return true;
}

static int measure_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    space_case *sc = ctx;
    baton_pool *pool = NULL;
    baton_space *space = NULL;
    baton_space_config config;
    space_run run;
    double t0, t1, c0, c1;
    int rc, qrc;

    if (cmdline_pool_create(workers, 0, &pool) != 0)
        return -1;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.pool = pool;
    if ((rc = baton_space_create(&config, &space)) != 0) {
        cmdline_report_error(rc, "baton_space_create");
        cmdline_pool_destroy(pool, &rc);
        return -1;
    }
    if (run_init(&run, sc, workers, baton_next_name, space) != 0) {
        baton_space_destroy(space);
        cmdline_pool_destroy(pool, &rc);
        return -1;
    }
    run.target.baton = space;
    run.pool = pool;
    c0 = thread_cpu_s();
    t0 = cmdline_now_s();
    rc = pool_install(pool, baton_loops, &run);
    qrc = baton_space_quiesce(space);
    t1 = cmdline_now_s();
    c1 = thread_cpu_s();
    if (c1 - c0 > sc->caller_cpu_max || isnan(sc->caller_cpu_max)) {
        sc->caller_cpu_max = c1 - c0;
        sc->caller_wall = t1 - t0;
    }
    if (rc != 0)
        cmdline_report_error(rc, "bench space: baton: a worker's produce or consume");
    if (qrc != 0)
        cmdline_report_error(qrc, "bench space: baton_space_quiesce");
    *out_correct = rc == 0 && qrc == 0 && run_results_ok(&run) && baton_space_empty(space, &run);
    *out_value = (double)run_ops(&run) / (t1 - t0);
    baton_space_destroy(space);
    run_free(&run);
    rc = 0;
    cmdline_pool_destroy(pool, &rc);
    return rc != 0 ? -1 : 0;
}

static void *mutex_thread(void *arg)
{
    space_worker *w = arg;
    pthread_barrier_wait(&w->run->start);
    w->rc = worker_loop(w);
    pthread_barrier_wait(&w->run->start);
    return NULL;
}

static int measure_mutex(const space_case *sc, ms_locking locking, unsigned workers,
                         double *out_value, bool *out_correct)
{
    ms_space *space = NULL;
    pthread_t *threads;
    space_run run;
    uint64_t names = 0;
    size_t data, consumers;
    unsigned started = 0;
    double t0, t1;
    int rc;

    if ((rc = ms_space_create(locking, &space)) != 0) {
        cmdline_errorf("bench space: cannot create the baseline space: %s", baton_err_name(rc));
        return -1;
    }
    if (run_init(&run, sc, workers, counter_next_name, &names) != 0) {
        ms_space_destroy(space);
        return -1;
    }
    run.target.ms = space;
    threads = calloc(workers, sizeof *threads);
    if (threads == NULL || pthread_barrier_init(&run.start, NULL, workers + 1) != 0) {
        cmdline_errorf("bench space: out of memory");
        free(threads);
        run_free(&run);
        ms_space_destroy(space);
        return -1;
    }
    for (; started < workers; started++)
        if (pthread_create(&threads[started], NULL, mutex_thread, &run.w[started]) != 0)
            break;
    if (started < workers) {
        /* The barrier cannot complete: the threads that started would wait forever. */
        cmdline_errorf("bench space: cannot start %u threads", workers);
        abort();
    }
    pthread_barrier_wait(&run.start);
    t0 = cmdline_now_s();
    pthread_barrier_wait(&run.start);
    t1 = cmdline_now_s();
    for (unsigned i = 0; i < workers; i++)
        pthread_join(threads[i], NULL);
    ms_space_counts(space, &data, &consumers);
    rc = ms_space_take_error(space);
    *out_correct = rc == 0 && run_results_ok(&run) && data == 0 && consumers == 0;
    *out_value = (double)run_ops(&run) / (t1 - t0);
    pthread_barrier_destroy(&run.start);
    free(threads);
    run_free(&run);
    ms_space_destroy(space);
    return 0;
}

static int measure_global_mutex(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    return measure_mutex(ctx, MS_GLOBAL_MUTEX, workers, out_value, out_correct);
}

static int measure_channel_mutex(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    return measure_mutex(ctx, MS_CHANNEL_MUTEX, workers, out_value, out_correct);
}

/* ---- the cases ---- */

static int run_case(const bench_options *options, bench_report *report, space_case *sc,
                    const char *metric, const char *unit, const char *per_name)
{
    const bench_record tmpl = {.suite = SUITE,
                               .case_name = sc->name,
                               .metric = metric,
                               .unit = unit,
                               .higher_is_better = true};
    bench_slot slots[MAX_SLOTS];
    size_t n = 0;

    for (unsigned i = 0; i < options->n_workers; i++) {
        unsigned w = options->workers[i];
        if (!bench_slots_add(slots, &n, MAX_SLOTS, report, options->runs, &tmpl, "baton", w,
                             measure_baton, sc) ||
            !bench_slots_add(slots, &n, MAX_SLOTS, report, options->runs, &tmpl, "global_mutex", w,
                             measure_global_mutex, sc) ||
            !bench_slots_add(slots, &n, MAX_SLOTS, report, options->runs, &tmpl, "channel_mutex", w,
                             measure_channel_mutex, sc))
            return -1;
    }
    sc->caller_cpu_max = NAN;
    sc->caller_wall = NAN;
    bench_run_slots(sc->name, slots, n, options->runs);
    for (size_t i = 0; i < report->n_records; i++) {
        bench_record *r = report->records[i];
        if (strcmp(r->case_name, sc->name) == 0)
            bench_record_set_extra(r, per_name, 1e9 / bench_record_median(r));
    }
    if (!isnan(sc->caller_cpu_max))
        bench_report_note(report, sc->name,
                          "baton's calling thread (asleep while the pool's W workers run the "
                          "loops): at most %.3f ms of CPU in a timed span of %.3f ms",
                          sc->caller_cpu_max * 1e3, sc->caller_wall * 1e3);
    return 0;
}

/* Sets up and runs one case of the many-thread kind. */
static int run_named_case(const bench_options *options, bench_report *report,
                          baton_pattern *int_pattern, const char *name, space_kind kind,
                          uint64_t total, const char *what)
{
    space_case sc;
    const bool join = kind != CASE_INDEPENDENT;

    if (!bench_case_selected(options, name))
        return 0;
    memset(&sc, 0, sizeof sc);
    sc.name = name;
    sc.kind = kind;
    sc.total = total;
    sc.int_pattern = int_pattern;
    bench_report_note(report, name, "%.3g %s per run, split between the workers; %s", (double)total,
                      join ? "joins" : "pairs", what);
    return run_case(options, report, &sc, join ? "joins_per_s" : "pairs_per_s",
                    join ? "joins/s" : "pairs/s", join ? "ns_per_join" : "ns_per_pair");
}

int bench_space_run(const bench_options *options, bench_report *report)
{
    baton_pattern *int_pattern = NULL;
    uint64_t pairs = options->quick ? INDEPENDENT_QUICK_PAIRS : INDEPENDENT_PAIRS;
    uint64_t joins = options->quick ? JOIN3_QUICK_JOINS : JOIN3_JOINS;
    int rc = 0;

    bench_space_summary_init(options->runs);
    if ((rc = baton_pattern_parse("Int", 3, &int_pattern)) != 0) {
        cmdline_report_error(rc, "baton_pattern_parse");
        return -1;
    }
    rc = run_named_case(options, report, int_pattern, "independent", CASE_INDEPENDENT, pairs,
                        "each worker: produce(its channel, Int i), consume(its channel, Int)");
    if (rc == 0)
        rc = run_named_case(options, report, int_pattern, "join3", CASE_JOIN3, joins,
                            "a ring of 4*W channels, each join over 3 neighbours (Int, Int, Int)");
    if (rc == 0)
        rc = run_named_case(options, report, int_pattern, "join3_hot", CASE_JOIN3_HOT, joins,
                            "every join over the same 3 channels (Int, Int, Int)");
    if (rc == 0)
        rc = bench_space_durable_run(options, report, int_pattern);
    if (rc == 0)
        rc = bench_space_idle_run(options, report, int_pattern);
    baton_pattern_destroy(int_pattern);
    return rc;
}
