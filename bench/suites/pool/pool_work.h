/*
 * pool_work.h — the in-process contenders of the pool suite (baton and plain serial C), and
 * the memory-bandwidth probe the motion case compares against. Each measure function has the
 * bench_measure_fn signature: ctx is the case struct below, workers the pool size.
 */
#ifndef BATON_BENCH_POOL_WORK_H
#define BATON_BENCH_POOL_WORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

/* The first pass is the warm-up. Memory bandwidth on a shared machine varies from one pass to the
 * next by a factor of up to 1.5; the best of many passes is the estimate of the limit. */
#define UPDATE_LIMIT_PASSES 41

/* fib32: fib(n) by fork-join without cutoff; the value is seconds. */
typedef struct fib_case {
    unsigned n;
} fib_case;

int pool_measure_fib_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct);
int pool_measure_fib_serial(void *ctx, unsigned workers, double *out_value, bool *out_correct);

/* pfor16_*: `samples` timed 16-item loops, each after `idle_s` seconds of sleep; the value is
 * the median seconds of one loop. */
typedef struct pfor_case {
    unsigned samples;
    double idle_s;
} pfor_case;

int pool_measure_pfor_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct);
int pool_measure_pfor_serial(void *ctx, unsigned workers, double *out_value, bool *out_correct);

/* motion: `ticks` ticks of `entities` entities in `state` (caller's buffer of entities * 48
 * bytes, re-initialised by every measurement); the value is ticks per second. */
typedef struct motion_case {
    unsigned char *state;
    size_t entities;
    unsigned ticks;
    uint64_t expected; /* the serial checksum: set by pool_motion_reference */
} motion_case;

int pool_measure_motion_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct);
int pool_measure_motion_serial(void *ctx, unsigned workers, double *out_value, bool *out_correct);
/* Runs the ticks serially once and stores the final checksum in mc->expected. */
void pool_motion_reference(motion_case *mc);

/*
 * The machine's in-place update limit: `threads` plain pthreads each increment the uint64 words of
 * one contiguous slice of buf (bytes long, a multiple of 8, 8-aligned); one warm-up pass, then the
 * best of UPDATE_LIMIT_PASSES - 1. Stores 2 * bytes / best seconds (each byte read and written
 * once) in *out_bytes_per_s and returns 0, or returns -1 when a thread could not be started.
 */
int pool_measure_update_limit(void *buf, size_t bytes, unsigned threads, double *out_bytes_per_s);

/*
 * The motion cases' probe: measures the update limit over buf (the state buffer, before it is
 * initialised) with `threads` threads and notes it in the report under `motion`, or says that
 * there will be no bandwidth_fraction. Returns the limit in bytes per second, or NAN.
 */
double bench_motion_update_limit(bench_report *report, const char *suite, void *buf, size_t bytes,
                                 size_t entities, unsigned ticks, unsigned threads);

/* idle_cpu: CPU seconds per wall second of a process whose pool sits idle. */
typedef struct idle_case {
    double settle_s;
    double wall_s;
} idle_case;

int pool_measure_idle_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct);

#endif /* BATON_BENCH_POOL_WORK_H */
