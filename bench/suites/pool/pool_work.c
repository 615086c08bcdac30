/*
 * pool_work.c — what the pool suite measures inside this process: baton's contenders, the
 * plain serial C ones, and the memory-bandwidth probe.
 *
 * How baton is driven, case by case (so that the comparison with the peers is like for like):
 *  - fib32 and motion: a pool of exactly W workers with BATON_POOL_NO_EXTERNAL_SLOTS, entered
 *    once from main through pool_install: the work runs on a worker, so W threads do it
 *    while main sleeps (what rayon's install() does).
 *  - pfor16_*: a pool of W-1 workers (at least 1) with default flags: main takes an external slot
 *    and helps, as a caller of a small loop would, so W threads work, like oneTBB's arena (main
 *    plus W-1 workers) and an OpenMP team of W.
 * Pool creation and destruction are never inside the timed region.
 *
 * Each measurement creates its own pool and destroys it before returning, as a peer process
 * does, so no contender runs while another one's threads are alive.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "pool_work.h"
#include "workloads.h"

/* Untimed warm-ups: fib(20) for fib32, 200 loops for pfor16 (the spec of the cases). */
#define FIB_WARMUP_N 20
#define PFOR_WARMUP_LOOPS 200

/* ---- fib32 ---------------------------------------------------------------------------------- */

typedef struct fib_frame {
    baton_pool *pool;
    unsigned n;
    uint64_t result;
} fib_frame;

/* fib(n) = fib(n-1) + fib(n-2), both halves through baton_join, down to n < 2: one task per call,
 * fib_calls(n) in all. The frames live on the stack; baton_join allocates nothing. */
static int fib_task(void *ctx)
{
    fib_frame *f = ctx;
    fib_frame a, b;
    int rc;

    if (f->n < 2) {
        f->result = f->n;
        return 0;
    }
    a.pool = b.pool = f->pool;
    a.n = f->n - 1;
    b.n = f->n - 2;
    a.result = b.result = 0;
    rc = baton_join(f->pool, fib_task, &a, fib_task, &b);
    if (rc != 0)
        return rc;
    f->result = a.result + b.result;
    return 0;
}

/* Computes fib(n) on the pool: the root runs on a worker while main sleeps. */
static int fib_on_pool(baton_pool *pool, unsigned n, uint64_t *out_value)
{
    fib_frame root = {pool, n, 0};
    int rc = pool_install(pool, fib_task, &root);
    if (rc != 0) {
        cmdline_report_error(rc, "baton_join (fib)");
        return rc;
    }
    *out_value = root.result;
    return 0;
}

int pool_measure_fib_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const fib_case *fc = ctx;
    baton_pool *pool;
    uint64_t warm = 0, value = 0;
    double start, elapsed = 0;
    int rc;

    if (cmdline_pool_create(workers, BATON_POOL_NO_EXTERNAL_SLOTS, &pool) != 0)
        return -1;
    rc = fib_on_pool(pool, FIB_WARMUP_N, &warm);
    if (rc == 0) {
        start = cmdline_now_s();
        rc = fib_on_pool(pool, fc->n, &value);
        elapsed = cmdline_now_s() - start;
    }
    cmdline_pool_destroy(pool, &rc);
    if (rc != 0)
        return -1;
    *out_value = elapsed;
    *out_correct = warm == fib_expected(FIB_WARMUP_N) && value == fib_expected(fc->n);
    return 0;
}

/* Plain recursion, as serial code would be written. The compiler may turn one of the two calls
 * into a loop; that is what a serial program gets, so it is the fair baseline. */
static uint64_t fib_serial(unsigned n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

/* Called through a volatile pointer so the compiler cannot move the (pure) computation out of
 * the timed region. */
static uint64_t (*volatile fib_serial_root)(unsigned) = fib_serial;

int pool_measure_fib_serial(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const fib_case *fc = ctx;
    double start;
    uint64_t value;

    (void)workers;
    start = cmdline_now_s();
    value = fib_serial_root(fc->n);
    *out_value = cmdline_now_s() - start;
    *out_correct = value == fib_expected(fc->n);
    return 0;
}

/* ---- pfor16 --------------------------------------------------------------------------------- */

/* Item i of the small loop writes pfor_item_work(i) to out[i]. */
static int pfor_body(size_t begin, size_t end, void *ctx)
{
    uint64_t *out = ctx;
    for (size_t i = begin; i < end; i++)
        out[i] = pfor_item_work(i);
    return 0;
}

/* The serial contender calls the body through this pointer, so the loop cannot be hoisted. */
static baton_range_fn volatile pfor_serial_body = pfor_body;

/*
 * Runs the samples with `pool` (NULL: serially). Every loop starts from zeroed outputs, so a
 * skipped item shows in the sum. Returns 0 with the median latency and the correctness.
 */
static int pfor_samples(baton_pool *pool, const pfor_case *pc, double *out_value, bool *out_correct)
{
    uint64_t out[PFOR_ITEMS];
    uint64_t sum = 0, expected = 0;
    double *latency;
    int rc = 0;

    latency = malloc(pc->samples * sizeof *latency);
    if (latency == NULL) {
        cmdline_errorf("bench pool: out of memory");
        return -1;
    }
    for (unsigned s = 0; s < pc->samples; s++)
        expected += pfor_expected_sum(); /* wraps like the sum it is compared with */
    for (unsigned s = 0; s < PFOR_WARMUP_LOOPS && rc == 0; s++) {
        if (pool != NULL)
            rc = baton_parallel_for(pool, 0, PFOR_ITEMS, 1, pfor_body, out);
        else
            rc = pfor_serial_body(0, PFOR_ITEMS, out);
    }
    for (unsigned s = 0; s < pc->samples && rc == 0; s++) {
        uint64_t start;
        memset(out, 0, sizeof out);
        if (pc->idle_s > 0)
            bench_sleep_s(pc->idle_s);
        start = baton_now_ns();
        if (pool != NULL)
            rc = baton_parallel_for(pool, 0, PFOR_ITEMS, 1, pfor_body, out);
        else
            rc = pfor_serial_body(0, PFOR_ITEMS, out);
        latency[s] = (double)(baton_now_ns() - start) * 1e-9;
        for (unsigned i = 0; i < PFOR_ITEMS; i++)
            sum += out[i];
    }
    if (rc != 0) {
        cmdline_report_error(rc, "baton_parallel_for (pfor16)");
        free(latency);
        return -1;
    }
    *out_value = bench_median(latency, pc->samples);
    *out_correct = sum == expected;
    free(latency);
    return 0;
}

int pool_measure_pfor_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    baton_pool *pool;
    int rc;

    /* Main helps through its external slot: W threads in all, as in the peers. */
    if (cmdline_pool_create(workers > 1 ? workers - 1 : 1, 0, &pool) != 0)
        return -1;
    rc = pfor_samples(pool, ctx, out_value, out_correct);
    cmdline_pool_destroy(pool, &rc);
    return rc != 0 ? -1 : 0;
}

int pool_measure_pfor_serial(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    (void)workers;
    return pfor_samples(NULL, ctx, out_value, out_correct);
}

/* ---- motion --------------------------------------------------------------------------------- */

typedef struct motion_run {
    baton_pool *pool;
    const motion_case *mc;
} motion_run;

static int motion_range_task(size_t begin, size_t end, void *ctx)
{
    motion_update_range(ctx, begin, end);
    return 0;
}

/* The whole tick loop, run on one of the pool's workers (pool_install). */
static int motion_ticks(void *ctx)
{
    const motion_run *run = ctx;
    for (unsigned t = 0; t < run->mc->ticks; t++) {
        int rc = baton_parallel_for(run->pool, 0, run->mc->entities, 0, motion_range_task,
                                    run->mc->state);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int pool_measure_motion_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    motion_case *mc = ctx;
    motion_run run;
    double start, elapsed = 0;
    int rc;

    run.mc = mc;
    if (cmdline_pool_create(workers, BATON_POOL_NO_EXTERNAL_SLOTS, &run.pool) != 0)
        return -1;
    motion_init(mc->state, mc->entities);
    start = cmdline_now_s();
    rc = pool_install(run.pool, motion_ticks, &run);
    elapsed = cmdline_now_s() - start;
    if (rc != 0)
        cmdline_report_error(rc, "the tick loop (motion)");
    cmdline_pool_destroy(run.pool, &rc);
    if (rc != 0)
        return -1;
    *out_value = mc->ticks / elapsed;
    *out_correct = motion_checksum(mc->state, mc->entities) == mc->expected;
    return 0;
}

static double motion_serial_ticks(const motion_case *mc)
{
    double start;
    motion_init(mc->state, mc->entities);
    start = cmdline_now_s();
    for (unsigned t = 0; t < mc->ticks; t++)
        motion_update_range(mc->state, 0, mc->entities);
    return cmdline_now_s() - start;
}

int pool_measure_motion_serial(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    motion_case *mc = ctx;
    (void)workers;
    *out_value = mc->ticks / motion_serial_ticks(mc);
    *out_correct = motion_checksum(mc->state, mc->entities) == mc->expected;
    return 0;
}

void pool_motion_reference(motion_case *mc)
{
    (void)motion_serial_ticks(mc);
    mc->expected = motion_checksum(mc->state, mc->entities);
}

/* ---- the in-place update limit -------------------------------------------------------------- */

/* Shared by the probe's threads. A pass starts when `generation` moves; each thread stamps when
 * it began and ended its slice, and the pass lasts from the first start to the last end. */
typedef struct update_probe {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* generation moved, or quit */
    pthread_cond_t done; /* a thread finished its slice */
    unsigned generation;
    unsigned finished;
    atomic_uint ready; /* threads at the start line of the current pass */
    bool quit;
    uint64_t *words;
    size_t n_words;
    unsigned threads;
    uint64_t start_ns[BATON_POOL_MAX_WORKERS];
    uint64_t end_ns[BATON_POOL_MAX_WORKERS];
} update_probe;

typedef struct update_thread {
    update_probe *probe;
    unsigned index;
} update_thread;

static void *update_thread_main(void *arg)
{
    update_thread *self = arg;
    update_probe *p = self->probe;
    size_t begin = p->n_words * self->index / p->threads;
    size_t end = p->n_words * (self->index + 1) / p->threads;
    unsigned seen = 0;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->generation == seen && !p->quit)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->quit)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);

        /* Start together: a thread that a condition variable woke late would otherwise run
         * part of the pass alone and make the machine look slower than it is. */
        atomic_fetch_add(&p->ready, 1);
        while (atomic_load(&p->ready) < p->threads)
            ;
        /* Locals, so that the compiler knows the stores cannot touch the probe's fields and
         * vectorises the loop like the contenders' kernels. */
        uint64_t *restrict words = p->words;
        uint64_t start = baton_now_ns();
        for (size_t i = begin; i < end; i++)
            words[i]++;
        p->end_ns[self->index] = baton_now_ns();
        p->start_ns[self->index] = start;

        pthread_mutex_lock(&p->lock);
        p->finished++;
        pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int pool_measure_update_limit(void *buf, size_t bytes, unsigned threads, double *out_bytes_per_s)
{
    update_probe *p;
    update_thread *args;
    pthread_t *ids;
    unsigned started = 0;
    double best = INFINITY;
    int rc = 0;

    if (threads == 0 || threads > BATON_POOL_MAX_WORKERS)
        return -1;
    p = calloc(1, sizeof *p);
    args = calloc(threads, sizeof *args);
    ids = calloc(threads, sizeof *ids);
    if (p == NULL || args == NULL || ids == NULL) {
        free(p);
        free(args);
        free(ids);
        return -1;
    }
    atomic_init(&p->ready, 0);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->words = buf;
    p->n_words = bytes / sizeof(uint64_t);
    p->threads = threads;

    for (; started < threads; started++) {
        args[started].probe = p;
        args[started].index = started;
        rc = pthread_create(&ids[started], NULL, update_thread_main, &args[started]);
        if (rc != 0) {
            cmdline_errorf("bench pool: bandwidth probe: pthread_create: %s", strerror(rc));
            break;
        }
    }
    for (unsigned pass = 0; rc == 0 && pass < UPDATE_LIMIT_PASSES; pass++) {
        uint64_t first = UINT64_MAX, last = 0;
        pthread_mutex_lock(&p->lock);
        p->finished = 0;
        atomic_store(&p->ready, 0);
        p->generation++;
        pthread_cond_broadcast(&p->wake);
        while (p->finished < threads)
            pthread_cond_wait(&p->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < threads; i++) {
            first = p->start_ns[i] < first ? p->start_ns[i] : first;
            last = p->end_ns[i] > last ? p->end_ns[i] : last;
        }
        if (pass > 0 && (double)(last - first) * 1e-9 < best)
            best = (double)(last - first) * 1e-9;
    }

    pthread_mutex_lock(&p->lock);
    p->quit = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < started; i++)
        pthread_join(ids[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
    free(args);
    free(ids);
    if (rc != 0 || !(best > 0))
        return -1;
    *out_bytes_per_s = 2.0 * (double)bytes / best;
    return 0;
}

/* ---- idle_cpu ------------------------------------------------------------------------------- */

/* There is nothing to compute, so nothing to check: the run is correct when the pool could be
 * created and destroyed; its value is the CPU the idle pool burns. */
int pool_measure_idle_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const idle_case *ic = ctx;
    baton_pool *pool;
    double cpu0, wall0, cpu1, wall1;
    int rc = 0;

    if (cmdline_pool_create(workers, 0, &pool) != 0)
        return -1;
    bench_sleep_s(ic->settle_s);
    cpu0 = bench_process_cpu_s();
    wall0 = cmdline_now_s();
    bench_sleep_s(ic->wall_s);
    cpu1 = bench_process_cpu_s();
    wall1 = cmdline_now_s();
    cmdline_pool_destroy(pool, &rc);
    if (rc != 0 || isnan(cpu0) || isnan(cpu1)) {
        if (rc == 0)
            cmdline_errorf("bench pool: clock_gettime(CLOCK_PROCESS_CPUTIME_ID): %s",
                           strerror(errno));
        return -1;
    }
    *out_value = (cpu1 - cpu0) / (wall1 - wall0);
    *out_correct = true;
    return 0;
}

double bench_motion_update_limit(bench_report *report, const char *suite, void *buf, size_t bytes,
                                 size_t entities, unsigned ticks, unsigned threads)
{
    double limit;

    cmdline_progress("bench %s: motion: measuring the in-place update limit (%u threads)", suite,
                     threads);
    if (pool_measure_update_limit(buf, bytes, threads, &limit) != 0) {
        cmdline_note("bench %s: motion: could not measure the update limit; no bandwidth_fraction",
                     suite);
        return NAN;
    }
    bench_report_note(report, "motion",
                      "%zu entities, %u ticks; in-place update limit %.2f GB/s (%u threads, "
                      "best of %d passes over %.1f MB)",
                      entities, ticks, limit * 1e-9, threads, UPDATE_LIMIT_PASSES - 1,
                      (double)bytes * 1e-6);
    return limit;
}
