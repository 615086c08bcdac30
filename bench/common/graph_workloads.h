/*
 * graph_workloads.h — the pipelines of the graph suite (`baton-bench graph`), written once so that
 * baton's graph, the oneTBB flow graph peer (bench/peers/tbb_flow), the hand-written pthread
 * pipeline and the serial loop compute exactly the same thing. Header-only and dependency-free;
 * valid C11 and C++17.
 *
 * Both cases have one shape: a source emits x = 0, 1, ..., N-1; three stateless maps transform
 * each item in turn; a serial sink adds them all up (wrapping uint64) and counts them. A contender
 * is right when its sum equals graph_expected_sum's and its count equals N; the sum depends on
 * every item passing every stage exactly once, in any order.
 *
 *   trivial4  the stages do almost nothing (one or two ALU operations), so what is measured is
 *             the cost of moving an item from stage to stage: the runtime's per-item overhead.
 *   work4     every stage, the sink included, first runs `rounds` dependent rounds of a 64-bit
 *             mixer on its item (graph_spin); the driver calibrates `rounds` to about 1 us on the
 *             machine, once per run, and passes the same count to every contender.
 */
#ifndef BATON_BENCH_GRAPH_WORKLOADS_H
#define BATON_BENCH_GRAPH_WORKLOADS_H

#include <stdint.h>

/* Items of each case: trivial4 long enough that per-item costs dominate any start-up cost;
 * work4 so that the serial loop takes about 0.8 s (4 stages x 1 us x 200,000). */
#define GRAPH_TRIVIAL_ITEMS UINT64_C(10000000)
#define GRAPH_TRIVIAL_QUICK_ITEMS UINT64_C(1000000)
#define GRAPH_WORK_ITEMS UINT64_C(200000)
#define GRAPH_WORK_QUICK_ITEMS UINT64_C(50000)
/* The untimed warm-up run every parallel contender makes before its timed one (so thread start-up
 * and first touches are paid there): the same pipeline over this many items. */
#define GRAPH_WARMUP_ITEMS UINT64_C(10000)
/* The time one work4 stage is calibrated to spend on an item. */
#define GRAPH_STAGE_WORK_NS 1000.0

#define GRAPH_STAGE3_ADD UINT64_C(0x9e3779b97f4a7c15)

/* The three maps of trivial4. Bijections, so no two items collapse into one and a dropped or
 * duplicated item changes the sum. */
static inline uint64_t graph_stage1(uint64_t x)
{
    return x * 3 + 1;
}

static inline uint64_t graph_stage2(uint64_t x)
{
    return x ^ (x >> 7);
}

static inline uint64_t graph_stage3(uint64_t x)
{
    return x + GRAPH_STAGE3_ADD;
}

/*
 * `rounds` rounds of baton_mix64's mixer (the SplitMix64 finaliser), each on the previous round's
 * result plus the round number: a chain of dependent multiplies that no compiler can shorten or
 * hoist out of the pipeline, since each result feeds the item the next stage receives.
 */
static inline uint64_t graph_spin(uint64_t x, uint64_t rounds)
{
    for (uint64_t r = 0; r < rounds; r++) {
        x += r;
        x ^= x >> 30;
        x *= UINT64_C(0xbf58476d1ce4e5b9);
        x ^= x >> 27;
        x *= UINT64_C(0x94d049bb133111eb);
        x ^= x >> 31;
    }
    return x;
}

/* The stages of work4: the spin, then trivial4's map (the sink: the spin, then the sum). */
static inline uint64_t graph_work_stage1(uint64_t x, uint64_t rounds)
{
    return graph_stage1(graph_spin(x, rounds));
}

static inline uint64_t graph_work_stage2(uint64_t x, uint64_t rounds)
{
    return graph_stage2(graph_spin(x, rounds));
}

static inline uint64_t graph_work_stage3(uint64_t x, uint64_t rounds)
{
    return graph_stage3(graph_spin(x, rounds));
}

static inline uint64_t graph_work_sink_value(uint64_t x, uint64_t rounds)
{
    return graph_spin(x, rounds);
}

/* What one item x contributes to the sum: rounds 0 is trivial4, rounds > 0 work4. */
static inline uint64_t graph_item_value(uint64_t x, uint64_t rounds)
{
    if (rounds == 0)
        return graph_stage3(graph_stage2(graph_stage1(x)));
    return graph_work_sink_value(
        graph_work_stage3(graph_work_stage2(graph_work_stage1(x, rounds), rounds), rounds), rounds);
}

/* The sum a contender must answer for items 0 .. items-1. */
static inline uint64_t graph_expected_sum(uint64_t items, uint64_t rounds)
{
    uint64_t sum = 0;
    for (uint64_t x = 0; x < items; x++)
        sum += graph_item_value(x, rounds);
    return sum;
}

#endif /* BATON_BENCH_GRAPH_WORKLOADS_H */
