/*
 * graph_work.h — the in-process contenders of the graph suite (`baton-bench graph`): baton's
 * graph, the hand-written pthread pipeline and the serial loop, over the pipelines of
 * bench/common/graph_workloads.h; and the calibration of work4's rounds. Each measure function has
 * the bench_measure_fn signature: ctx is a graph_case, workers the pool size (the pthread pipeline
 * has one thread per stage whatever it is given, the serial loop one).
 */
#ifndef BATON_BENCH_GRAPH_WORK_H
#define BATON_BENCH_GRAPH_WORK_H

#include <stdbool.h>
#include <stdint.h>

#include "baton/graph.h"
#include "bench.h"

/* ---- the contenders ------------------------------------------------------------------------ */

/* The pthread pipeline's threads: the source (the measuring thread) and one per stage. */
#define GRAPH_PTHREAD_THREADS 5
/* Its queues' capacity: baton_graph's default edge capacity (baton/graph.h). */
#define GRAPH_PTHREAD_QUEUE_CAPACITY 1024

/* What baton's graph did in its last timed run (baton_graph_node_stats), for the suite's notes. */
typedef struct graph_baton_stats {
    unsigned workers; /* 0: no run yet */
    double run_s;
    baton_node_stats nodes[5]; /* source, map1, map2, map3, sink */
} graph_baton_stats;

/* One case: items 0 .. items-1 through the pipeline; rounds 0 is trivial4, > 0 work4. The value
 * of every measurement is items per second. */
typedef struct graph_case {
    const char *name; /* "trivial4" or "work4", for messages */
    uint64_t items;
    uint64_t rounds;
    uint64_t expected_sum; /* graph_expected_sum(items, rounds) */
    /* Filled by the baton contender after each timed run at the most workers so far. */
    graph_baton_stats baton_stats;
} graph_case;

int graph_measure_baton(void *ctx, unsigned workers, double *out_value, bool *out_correct);
int graph_measure_pthread_queues(void *ctx, unsigned workers, double *out_value, bool *out_correct);
int graph_measure_serial(void *ctx, unsigned workers, double *out_value, bool *out_correct);

/* The serial loop once, untimed: the sum every contender must answer. */
uint64_t graph_reference_sum(uint64_t items, uint64_t rounds);

/*
 * How many graph_spin rounds take GRAPH_STAGE_WORK_NS on this machine: the best of several timed
 * chains, so that a preempted one does not count. *out_ns_per_round gets the measured cost.
 */
uint64_t graph_calibrate_rounds(double *out_ns_per_round);

#endif /* BATON_BENCH_GRAPH_WORK_H */
