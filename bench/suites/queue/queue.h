/*
 * queue.h — what the queue suite's files share (queue.c: the cases and contenders; queue_report.c,
 * queue_ring.c, queue_workq.c, queue_fanin.c below).
 */
#ifndef BATON_BENCH_QUEUE_H
#define BATON_BENCH_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

/* queue_report.c: the extras derived from the medians (bench_queue_derive, after every case
 * ran), the oversubscription, reorder-cost and producer summaries after the tables
 * (bench_queue_print_summary, in suites.h), and the JSON array with every sample and the ratio to
 * baton of each record. */
void bench_queue_derive(bench_report *report);

/* queue_ring.c: baton in-process on a ring case (spsc*, mpsc*, mpmc*), with the threads,
 * items, timing and checks of bench/common/queue_workloads.h. The value is items per second. */
typedef struct bench_queue_ring {
    const char *case_name; /* the driver's name: spsc, spsc_t4, ..., mpsc2, ..., mpmc_t16 */
    uint64_t items;        /* ITEMS of the timed run */
    bool linked;           /* mpsc cases on baton_mpsc_linked instead of the bounded ring */
} bench_queue_ring;

int bench_queue_measure_ring(void *ctx, unsigned workers, double *out_value, bool *out_correct);

/* queue_workq.c: `producers` threads send `items` pre-built items through a work queue of
 * capacity QUEUE_RING_CAPACITY to one receiving thread (1: the default single-producer sender;
 * more: BATON_WQ_MULTI_PRODUCER and clones). The value is items per second. */
typedef struct bench_queue_workq {
    const char *case_name;
    unsigned producers;
    uint64_t items;
} bench_queue_workq;

int bench_queue_measure_workq(void *ctx, unsigned workers, double *out_value, bool *out_correct);

/* queue_fanin.c: the fan-in strategies of a parallel drain. Items per scope task (the
 * drain's own batch), mutex-protected vectors of sharded_mutex, rounds of baton_mix64 in the
 * simulated work on one item. */
#define BENCH_FANIN_CHUNK 256
#define BENCH_FANIN_SHARDS 4
#define BENCH_FANIN_WORK_ROUNDS 80
enum {
    BENCH_FANIN_SHARDED_MUTEX,
    BENCH_FANIN_PER_THREAD_CONCAT,
    BENCH_FANIN_MPSC,
    BENCH_FANIN_DRAIN_ORDERED,
    BENCH_FANIN_DRAIN_UNORDERED,
    BENCH_FANIN_N_STRATEGIES
};

/* The case-name part of each strategy ("sharded_mutex", ...). */
extern const char *const bench_fanin_strategy_names[BENCH_FANIN_N_STRATEGIES];

/* The items, shared by the strategies of one size: made by bench_queue_fanin_data_create. */
typedef struct bench_fanin_data bench_fanin_data;

/* Builds `items` items and their expected results; NULL (after a message) without memory. */
bench_fanin_data *bench_queue_fanin_data_create(size_t items);
void bench_queue_fanin_data_destroy(bench_fanin_data *data);
/* Nanoseconds of the simulated per-item work, measured serially here. */
double bench_queue_fanin_work_ns(void);

/* One strategy on a pool of `workers` workers (the slot's count). The value is items per
 * second. */
typedef struct bench_queue_fanin {
    unsigned strategy; /* BENCH_FANIN_* */
    const bench_fanin_data *data;
} bench_queue_fanin;

int bench_queue_measure_fanin(void *ctx, unsigned workers, double *out_value, bool *out_correct);

#endif /* BATON_BENCH_QUEUE_H */
