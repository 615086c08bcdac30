/*
 * suites.h — what the driver (bench/driver/main.c) calls in each suite: the function that fills
 * the report and, for most, the summary printed after the tables. One folder per suite under
 * bench/suites/; what a suite's own files share is in that folder's header.
 */
#ifndef BATON_BENCH_SUITES_H
#define BATON_BENCH_SUITES_H

#include <stdio.h>

#include "bench.h"

/* pool/pool.c: fork-join, tiny loops, the memory-bound motion loop and idle CPU. */
int bench_pool_run(const bench_options *options, bench_report *report);

/* queue/queue.c: the cases, contenders and derived extras; queue/queue_report.c the summaries
 * after the tables. */
int bench_queue_run(const bench_options *options, bench_report *report);
void bench_queue_print_summary(const bench_report *report, FILE *out);

/* store/store.c: the motion workload and its rewrite-heavy variant; the targets after the
 * tables. The contenders are in store/store_work.h. */
int bench_store_run(const bench_options *options, bench_report *report);
void bench_store_print_summary(const bench_report *report, FILE *out);

/* graph/graph.c: the dataflow pipelines. */
int bench_graph_run(const bench_options *options, bench_report *report);
void bench_graph_print_summary(const bench_report *report, FILE *out);

/* space/space.c: the tuplespace's cases; the targets after the tables. */
int bench_space_run(const bench_options *options, bench_report *report);
void bench_space_print_summary(const bench_report *report, FILE *out);

/* engine/engine.c: the step engine. */
int bench_engine_run(const bench_options *options, bench_report *report);
void bench_engine_print_summary(const bench_report *report, FILE *out);

#endif /* BATON_BENCH_SUITES_H */
