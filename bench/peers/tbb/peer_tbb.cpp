/*
 * peer_tbb.cpp — the oneTBB contender of `baton-bench pool`: fork-join fib with task_group, the
 * 16-item parallel_for issued by the main thread, and the motion ticks as a parallel_for over a
 * blocked_range with the default auto_partitioner. Everything runs in the default arena from
 * main, so main is one of the WORKERS threads. Protocol and timing: bench/peers/peer_common.h.
 */
#include "../peer_common.h"

#include <memory>

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

namespace {

// Lives until exit: the limit holds only while a global_control object exists.
std::unique_ptr<tbb::global_control> parallelism_limit;

int tbb_setup(unsigned workers)
{
    parallelism_limit = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, static_cast<size_t>(workers));
    // The default arena never has more slots than the machine has hardware threads, whatever the
    // limit says; the driver should know when it gets fewer threads than it asked for.
    int slots = tbb::this_task_arena::max_concurrency();
    if (static_cast<unsigned>(slots) < workers)
        std::fprintf(stderr, "baton-peer-tbb: note: default arena has %d slots, %u asked for\n",
                     slots, workers);
    return 0;
}

uint64_t fib_task(unsigned n)
{
    if (n < 2)
        return n;
    uint64_t x = 0, y = 0;
    tbb::task_group group;
    group.run([&x, n] { x = fib_task(n - 1); });
    y = fib_task(n - 2);
    group.wait();
    return x + y;
}

uint64_t tbb_fib(unsigned n)
{
    return fib_task(n);
}

void tbb_pfor16(uint64_t out[PFOR_ITEMS])
{
    tbb::parallel_for(0, PFOR_ITEMS,
                      [out](int i) { out[i] = pfor_item_work(static_cast<uint64_t>(i)); });
}

void tbb_motion_tick(unsigned char *payloads, size_t n)
{
    tbb::parallel_for(tbb::blocked_range<size_t>(0, n),
                      [payloads](const tbb::blocked_range<size_t> &r) {
                          motion_update_range(payloads, r.begin(), r.end());
                      });
}

} // namespace

int main(int argc, char **argv)
{
    peer_ops ops;
    ops.name = "baton-peer-tbb";
    ops.setup = tbb_setup;
    ops.fib = tbb_fib;
    ops.pfor16 = tbb_pfor16;
    ops.motion_tick = tbb_motion_tick;
    return peer_main(argc, argv, &ops);
}
