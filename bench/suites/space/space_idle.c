/*
 * space_idle.c — the cases of `baton-bench space` that measure what a space burns when it has
 * nothing to do (the published names are in space.c's header). Both: metric cpu_fraction, unit
 * cores (CPU seconds of the whole process per wall second, from CLOCK_PROCESS_CPUTIME_ID), baton
 * only, on a pool of W workers, W the largest of --workers (the most workers that could spin).
 *
 *   idle_cpu  the space has worked (IDLE_WARM_PAIRS produce/consume pairs from a worker, so the
 *             workers have just been busy), then IDLE_SINGLES consumers wait on channels of
 *             their own and IDLE_JOINS joins over two channels of their own: nothing can fire.
 *             After baton_space_quiesce and a settling pause (IDLE_SETTLE_S), the process's
 *             CPU over IDLE_WALL_S of sleep (--quick IDLE_QUICK_WALL_S).
 *   wait_cpu  a driver waiting in baton_space_quiesce while one slow continuation runs: a
 *             consumer whose continuation sleeps for the wall time (it takes no CPU itself) is
 *             fired by a produce from a thread of its own; once the continuation has started,
 *             the calling thread times its baton_space_quiesce. What the idle workers, the
 *             producing thread's call and the quiesce burn while they wait.
 *
 * Checks: idle_cpu, the warm-up's sum, no waiting consumer fired, and exactly the consumers
 * registered (and no datum) left in the space; wait_cpu, the continuation ran once with its
 * datum, the produce and the quiesce returned 0, and the channel is empty afterwards.
 * The target (space_summary.c): under 0.01 cores, both.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "space.h"

#define IDLE_WARM_PAIRS 10000u
#define IDLE_SINGLES 48u
#define IDLE_JOINS 16u
#define IDLE_SETTLE_S 0.05
#define IDLE_WALL_S 1.0
#define IDLE_QUICK_WALL_S 0.25
#define WAIT_DATUM 42

typedef struct idle_case {
    baton_pattern *int_pattern;
    double wall_s;
} idle_case;

/* One measurement's space and what its continuations saw. */
typedef struct idle_run {
    const idle_case *ic;
    baton_space *space;
    uint8_t warm_chan[BENCH_SPACE_ENC_SIZE];
    _Atomic int64_t warm_sum; /* continuations may run on several workers at once */
    unsigned fired;           /* idle_cpu: waiting consumers that fired (must stay 0) */
    /* wait_cpu */
    uint8_t slow_chan[BENCH_SPACE_ENC_SIZE];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool started;
    unsigned slow_fired;
    int64_t slow_datum;
    int produce_rc; /* written by the producing thread, read after joining it */
    int quiesce_rc;
} idle_run;

static baton_value_view enc_view(const uint8_t *enc)
{
    return (baton_value_view){enc, BENCH_SPACE_ENC_SIZE};
}

/* The CPU the process burnt per wall second while the calling thread ran `wait`, or NaN when
 * the clock cannot be read. */
static double cpu_fraction_over(void (*wait)(void *), void *ctx)
{
    double cpu0 = bench_process_cpu_s(), wall0 = cmdline_now_s();
    wait(ctx);
    double cpu1 = bench_process_cpu_s(), wall1 = cmdline_now_s();
    if (isnan(cpu0) || isnan(cpu1) || !(wall1 > wall0)) {
        cmdline_errorf("bench space: clock_gettime(CLOCK_PROCESS_CPUTIME_ID): %s", strerror(errno));
        return NAN;
    }
    return (cpu1 - cpu0) / (wall1 - wall0);
}

static int create_space(unsigned workers, baton_pool **out_pool, baton_space **out_space)
{
    baton_space_config config;
    int rc;

    if (cmdline_pool_create(workers, 0, out_pool) != 0)
        return -1;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.pool = *out_pool;
    if ((rc = baton_space_create(&config, out_space)) != 0) {
        cmdline_report_error(rc, "baton_space_create");
        cmdline_pool_destroy(*out_pool, &rc);
        return -1;
    }
    return 0;
}

/* Returns -1 when the pool failed to shut down, else `rc`. */
static int destroy_space(baton_pool *pool, baton_space *space, int rc)
{
    int prc = 0;
    baton_space_destroy(space);
    cmdline_pool_destroy(pool, &prc);
    return prc != 0 ? -1 : rc;
}

/* ---- idle_cpu ---- */

static int warm_taken(void *ctx, const baton_match *match)
{
    idle_run *run = ctx;
    atomic_fetch_add_explicit(&run->warm_sum, baton_view_int(match->data[0]), memory_order_relaxed);
    return 0;
}

/* On a worker (pool_install): the pairs that leave the workers freshly busy. */
static int warm_up(void *ctx)
{
    idle_run *run = ctx;
    baton_value_view ch = enc_view(run->warm_chan);
    uint8_t datum[BENCH_SPACE_ENC_SIZE];
    for (unsigned i = 0; i < IDLE_WARM_PAIRS; i++) {
        int rc;
        bench_space_encode_int(datum, (int64_t)i);
        if ((rc = baton_space_produce(run->space, ch, enc_view(datum), false)) != 0 ||
            (rc = baton_space_consume(run->space, &ch, &run->ic->int_pattern, 1, warm_taken, run, 0,
                                      NULL)) != 0)
            return rc;
    }
    return 0;
}

static int never_fires(void *ctx, const baton_match *match)
{
    idle_run *run = ctx;
    (void)match;
    run->fired++;
    return 0;
}

/* The waiting consumers: singles on a channel each, joins over two channels each. */
static int register_waiters(idle_run *run)
{
    baton_pattern *pats[2] = {run->ic->int_pattern, run->ic->int_pattern};
    uint8_t enc[2][BENCH_SPACE_ENC_SIZE];
    baton_value_view chans[2];
    int rc;

    for (unsigned i = 0; i < IDLE_SINGLES + IDLE_JOINS; i++) {
        size_t n = i < IDLE_SINGLES ? 1 : 2;
        for (size_t k = 0; k < n; k++) {
            bench_space_encode_name(enc[k], baton_space_fresh_name(run->space));
            chans[k] = enc_view(enc[k]);
        }
        rc = baton_space_consume(run->space, chans, pats, n, never_fires, run, 0, NULL);
        if (rc != 0) {
            cmdline_report_error(rc, "bench space: idle_cpu: a waiting consumer");
            return -1;
        }
    }
    return 0;
}

static void sleep_wall(void *ctx)
{
    bench_sleep_s(((const idle_case *)ctx)->wall_s);
}

static int measure_idle(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const idle_case *ic = ctx;
    baton_pool *pool;
    baton_space_stats stats;
    idle_run run;
    int rc, qrc;

    memset(&run, 0, sizeof run);
    run.ic = ic;
    atomic_init(&run.warm_sum, 0);
    if (create_space(workers, &pool, &run.space) != 0)
        return -1;
    bench_space_encode_name(run.warm_chan, baton_space_fresh_name(run.space));
    rc = pool_install(pool, warm_up, &run);
    if (rc != 0)
        cmdline_report_error(rc, "bench space: idle_cpu: the warm-up's produce or consume");
    if (rc != 0 || register_waiters(&run) != 0) {
        (void)baton_space_quiesce(run.space);
        return destroy_space(pool, run.space, -1);
    }
    if ((qrc = baton_space_quiesce(run.space)) != 0)
        cmdline_report_error(qrc, "bench space: idle_cpu: baton_space_quiesce");
    bench_sleep_s(IDLE_SETTLE_S);
    *out_value = cpu_fraction_over(sleep_wall, (void *)ic);
    rc = baton_space_get_stats(run.space, &stats);
    *out_correct =
        qrc == 0 && rc == 0 && !isnan(*out_value) && run.fired == 0 &&
        atomic_load(&run.warm_sum) == (int64_t)IDLE_WARM_PAIRS * (IDLE_WARM_PAIRS - 1) / 2 &&
        stats.data == 0 && stats.consumers == IDLE_SINGLES + IDLE_JOINS;
    return destroy_space(pool, run.space, isnan(*out_value) ? -1 : 0);
}

/* ---- wait_cpu ---- */

static int slow_fired(void *ctx, const baton_match *match)
{
    idle_run *run = ctx;
    run->slow_datum = baton_view_int(match->data[0]);
    pthread_mutex_lock(&run->lock);
    run->started = true;
    pthread_cond_broadcast(&run->cond);
    pthread_mutex_unlock(&run->lock);
    /* Sleeping is the slow work: it takes no CPU, so what the process burns meanwhile is the
     * waiting of everything else. */
    bench_sleep_s(run->ic->wall_s);
    run->slow_fired++;
    return 0;
}

static void *slow_producer(void *arg)
{
    idle_run *run = arg;
    uint8_t datum[BENCH_SPACE_ENC_SIZE];
    bench_space_encode_int(datum, WAIT_DATUM);
    run->produce_rc =
        baton_space_produce(run->space, enc_view(run->slow_chan), enc_view(datum), false);
    if (run->produce_rc != 0) {
        /* The continuation will never signal: release the waiting driver. */
        pthread_mutex_lock(&run->lock);
        run->started = true;
        pthread_cond_broadcast(&run->cond);
        pthread_mutex_unlock(&run->lock);
    }
    return NULL;
}

static void quiesce_wait(void *ctx)
{
    idle_run *run = ctx;
    run->quiesce_rc = baton_space_quiesce(run->space);
}

static int measure_wait(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const idle_case *ic = ctx;
    baton_pool *pool;
    idle_run run;
    pthread_t producer;
    baton_value_view ch;
    size_t data = 1, consumers = 1;
    int rc;

    memset(&run, 0, sizeof run);
    run.ic = ic;
    if (create_space(workers, &pool, &run.space) != 0)
        return -1;
    pthread_mutex_init(&run.lock, NULL);
    pthread_cond_init(&run.cond, NULL);
    bench_space_encode_name(run.slow_chan, baton_space_fresh_name(run.space));
    ch = enc_view(run.slow_chan);
    if ((rc = baton_space_consume(run.space, &ch, &ic->int_pattern, 1, slow_fired, &run, 0,
                                  NULL)) != 0) {
        cmdline_report_error(rc, "bench space: wait_cpu: baton_space_consume");
        rc = -1;
    } else if (pthread_create(&producer, NULL, slow_producer, &run) != 0) {
        cmdline_errorf("bench space: wait_cpu: cannot start the producing thread");
        rc = -1;
    }
    if (rc != 0) {
        (void)baton_space_quiesce(run.space);
        rc = destroy_space(pool, run.space, -1);
    } else {
        pthread_mutex_lock(&run.lock);
        while (!run.started)
            pthread_cond_wait(&run.cond, &run.lock);
        pthread_mutex_unlock(&run.lock);
        *out_value = cpu_fraction_over(quiesce_wait, &run);
        pthread_join(producer, NULL);
        if (run.produce_rc != 0)
            cmdline_report_error(run.produce_rc, "bench space: wait_cpu: the produce");
        if (run.quiesce_rc != 0)
            cmdline_report_error(run.quiesce_rc, "bench space: wait_cpu: baton_space_quiesce");
        *out_correct = run.produce_rc == 0 && run.quiesce_rc == 0 && !isnan(*out_value) &&
                       run.slow_fired == 1 && run.slow_datum == WAIT_DATUM &&
                       baton_space_channel_counts(run.space, ch, &data, &consumers) == 0 &&
                       data == 0 && consumers == 0;
        rc = destroy_space(pool, run.space, isnan(*out_value) ? -1 : 0);
    }
    pthread_cond_destroy(&run.cond);
    pthread_mutex_destroy(&run.lock);
    return rc;
}

/* ---- the cases ---- */

/* One case: its record and one slot, measured `runs` times. */
static int run_one(const bench_options *options, bench_report *report, const char *name,
                   bench_measure_fn measure, idle_case *ic)
{
    const bench_record tmpl = {.suite = BENCH_SPACE_SUITE,
                               .case_name = name,
                               .metric = "cpu_fraction",
                               .unit = "cores",
                               .higher_is_better = false};
    bench_slot slot;
    size_t n = 0;

    if (!bench_slots_add(&slot, &n, 1, report, options->runs, &tmpl, "baton", options->max_workers,
                         measure, ic))
        return -1;
    bench_run_slots(name, &slot, n, options->runs);
    return 0;
}

int bench_space_idle_run(const bench_options *options, bench_report *report,
                         baton_pattern *int_pattern)
{
    idle_case ic = {int_pattern, options->quick ? IDLE_QUICK_WALL_S : IDLE_WALL_S};
    int rc = 0;

    if (bench_case_selected(options, "idle_cpu")) {
        bench_report_note(report, "idle_cpu",
                          "after %u pairs, %u consumers and %u 2-channel joins wait with nothing "
                          "to do; the process's CPU over %.2f s",
                          IDLE_WARM_PAIRS, IDLE_SINGLES, IDLE_JOINS, ic.wall_s);
        rc = run_one(options, report, "idle_cpu", measure_idle, &ic);
    }
    if (rc == 0 && bench_case_selected(options, "wait_cpu")) {
        bench_report_note(report, "wait_cpu",
                          "the driver in baton_space_quiesce while one continuation sleeps "
                          "%.2f s; the process's CPU over that wait",
                          ic.wall_s);
        rc = run_one(options, report, "wait_cpu", measure_wait, &ic);
    }
    return rc;
}
