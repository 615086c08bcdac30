/*
 * peer_tbb_flow.cpp — the oneTBB contender of `baton-bench graph`: the suite's pipelines
 * (bench/common/graph_workloads.h) as a oneTBB flow graph, built the way its documentation builds
 * one: an input_node emitting x = 0 .. N-1, three function_nodes with unlimited concurrency for
 * the maps, and a serial function_node for the sink, which owns the sum and the count. Everything
 * runs in a task_arena of WORKERS slots (the main thread takes one, waiting in wait_for_all), under
 * a global_control that allows no more threads than that.
 *
 * Protocol (bench/common/peer_process.h's; the times and checks of bench/peers/peer_common.h):
 *
 *     baton-peer-tbb_flow trivial4 WORKERS ITEMS
 *     baton-peer-tbb_flow work4 WORKERS ITEMS ROUNDS
 *
 * First an untimed warm-up over GRAPH_WARMUP_ITEMS items in a graph of its own (it starts TBB's
 * worker threads, which TBB creates lazily), then the timed run: from activating the input_node
 * until wait_for_all returns. Prints `time_s=<seconds> check=<the sink's wrapping sum>`. A sink
 * that saw other than ITEMS items is a wrong result (exit 3), whatever the sum.
 */
#include "../peer_common.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "../../common/graph_workloads.h"

namespace
{

const char *const prog = "baton-peer-tbb_flow";
// Bounds that only reject nonsense.
const uint64_t max_items = UINT64_C(1) << 40;
const uint64_t max_rounds = UINT64_C(1) << 24;

struct sink_result {
    uint64_t sum = 0;
    uint64_t count = 0;
};

int usage(const char *why)
{
    std::fprintf(stderr,
                 "%s: %s\n"
                 "usage: %s trivial4 WORKERS ITEMS | work4 WORKERS ITEMS ROUNDS\n",
                 prog, why, prog);
    return PEER_EXIT_USAGE;
}

/*
 * Builds the pipeline in `arena` with the given stage bodies (uint64_t -> uint64_t; the sink's
 * body gives what an item adds to the sum), runs it over 0 .. items-1 and returns the sink's
 * totals; *out_ns gets the run's time (activation to wait_for_all).
 */
template <typename Map1, typename Map2, typename Map3, typename SinkValue>
sink_result run_pipeline(tbb::task_arena &arena, uint64_t items, Map1 map1, Map2 map2, Map3 map3,
                         SinkValue sink_value, uint64_t *out_ns)
{
    sink_result result;
    arena.execute([&] {
        using namespace tbb::flow;
        graph g;
        uint64_t next = 0;
        input_node<uint64_t> source(g, [&next, items](tbb::flow_control &control) -> uint64_t {
            if (next == items) {
                control.stop();
                return 0;
            }
            return next++;
        });
        function_node<uint64_t, uint64_t> stage1(g, unlimited, map1);
        function_node<uint64_t, uint64_t> stage2(g, unlimited, map2);
        function_node<uint64_t, uint64_t> stage3(g, unlimited, map3);
        // Serial: one item at a time, so the totals need no lock; the others wait in its queue.
        function_node<uint64_t, continue_msg> sink(g, serial, [&result, sink_value](uint64_t x) {
            result.sum += sink_value(x);
            result.count++;
            return continue_msg();
        });
        make_edge(source, stage1);
        make_edge(stage1, stage2);
        make_edge(stage2, stage3);
        make_edge(stage3, sink);

        uint64_t t0 = peer_now_ns();
        source.activate();
        g.wait_for_all();
        *out_ns = peer_now_ns() - t0;
    });
    return result;
}

sink_result run_case(tbb::task_arena &arena, uint64_t items, uint64_t rounds, uint64_t *out_ns)
{
    // trivial4 calls the trivial stages themselves rather than the work stages with no rounds,
    // exactly as baton's and the other contenders' trivial4 do.
    if (rounds == 0)
        return run_pipeline(
            arena, items, [](uint64_t x) { return graph_stage1(x); },
            [](uint64_t x) { return graph_stage2(x); }, [](uint64_t x) { return graph_stage3(x); },
            [](uint64_t x) { return x; }, out_ns);
    return run_pipeline(
        arena, items, [rounds](uint64_t x) { return graph_work_stage1(x, rounds); },
        [rounds](uint64_t x) { return graph_work_stage2(x, rounds); },
        [rounds](uint64_t x) { return graph_work_stage3(x, rounds); },
        [rounds](uint64_t x) { return graph_work_sink_value(x, rounds); }, out_ns);
}

} // namespace

int main(int argc, char **argv)
{
    uint64_t workers, items, rounds = 0, ns = 0;

    if (argc < 4)
        return usage("wrong number of arguments");
    if (std::strcmp(argv[1], "trivial4") == 0) {
        if (argc != 4)
            return usage("trivial4 takes one argument, ITEMS");
    } else if (std::strcmp(argv[1], "work4") == 0) {
        if (argc != 5)
            return usage("work4 takes two arguments, ITEMS and ROUNDS");
        if (peer_parse_u64(argv[4], 1, max_rounds, &rounds) != 0)
            return usage("ROUNDS must be an integer from 1 to 2^24");
    } else {
        return usage("unknown case");
    }
    if (peer_parse_u64(argv[2], 1, PEER_MAX_WORKERS, &workers) != 0)
        return usage("WORKERS must be an integer from 1 to 4096");
    if (peer_parse_u64(argv[3], 1, max_items, &items) != 0)
        return usage("ITEMS must be an integer from 1 to 2^40");

    // The limit holds while the object lives: to the end of main.
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                              static_cast<size_t>(workers));
    tbb::task_arena arena(static_cast<int>(workers));
    arena.initialize();
    if (static_cast<uint64_t>(arena.max_concurrency()) != workers)
        std::fprintf(stderr, "%s: note: the arena has %d slots, %" PRIu64 " asked for\n", prog,
                     arena.max_concurrency(), workers);

    sink_result warm = run_case(arena, GRAPH_WARMUP_ITEMS, rounds, &ns);
    if (warm.count != GRAPH_WARMUP_ITEMS ||
        warm.sum != graph_expected_sum(GRAPH_WARMUP_ITEMS, rounds)) {
        std::fprintf(stderr,
                     "%s: warm-up: %" PRIu64 " items summed to %" PRIu64 ", expected %" PRIu64
                     " items summing to %" PRIu64 "\n",
                     prog, warm.count, warm.sum, GRAPH_WARMUP_ITEMS,
                     graph_expected_sum(GRAPH_WARMUP_ITEMS, rounds));
        return PEER_EXIT_WRONG;
    }
    sink_result timed = run_case(arena, items, rounds, &ns);
    if (timed.count != items) {
        std::fprintf(stderr, "%s: %s: the sink saw %" PRIu64 " items, expected %" PRIu64 "\n", prog,
                     argv[1], timed.count, items);
        return PEER_EXIT_WRONG;
    }
    peer_print_result(static_cast<double>(ns) / 1e9, timed.sum);
    return 0;
}
