/*
 * space.h — what the files of `baton-bench space` share (space.c: the cases on many threads;
 * space_durable.c: the durable cases; space_idle.c: the CPU an idle or waiting space burns;
 * space_summary.c: the targets after the tables).
 *
 * Internal to bench/.
 */
#ifndef BATON_BENCH_SPACE_H
#define BATON_BENCH_SPACE_H

#include <stdint.h>

#include "baton/space.h"
#include "bench.h"

#define BENCH_SPACE_SUITE "space"

/* The worker counts when --workers is not given: the cores of a small machine and beyond (on 2
 * cores, 4 and 8 are oversubscribed). */
#define BENCH_SPACE_DEFAULT_WORKERS                                                                \
    {                                                                                              \
        1, 2, 4, 8                                                                                 \
    }
#define BENCH_SPACE_N_DEFAULT_WORKERS 4u

/* Encodings the workloads build without a builder (canonical: tag and 8 big-endian bytes). */
#define BENCH_SPACE_ENC_SIZE 9u
void bench_space_encode_int(uint8_t out[BENCH_SPACE_ENC_SIZE], int64_t value);
void bench_space_encode_name(uint8_t out[BENCH_SPACE_ENC_SIZE], uint64_t id);

/* space_durable.c: durable_none, durable_async, durable_sync, durable_sync_per_op (baton
 * only, on 2 workers). `int_pattern` is "Int". */
int bench_space_durable_run(const bench_options *options, bench_report *report,
                            baton_pattern *int_pattern);

/* space_idle.c: idle_cpu and wait_cpu (baton only, on the largest of --workers). */
int bench_space_idle_run(const bench_options *options, bench_report *report,
                         baton_pattern *int_pattern);

/* space_summary.c: what the summary needs beyond the records (the runs per row). */
void bench_space_summary_init(unsigned runs);

#endif /* BATON_BENCH_SPACE_H */
