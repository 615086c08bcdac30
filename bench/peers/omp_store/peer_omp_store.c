/*
 * peer_omp_store.c — the omp contender of `baton-bench store` and of `baton demo`: the motion
 * ticks over a flat array as an OpenMP `parallel for` (static schedule), the loop a C programmer
 * would write first. Each entity is stepped by the kernel every other contender of the store
 * suite uses (src/store/motion_kernel.h), so the comparison is one of scheduling only.
 *
 * Unlike the pool suite's baton-peer-omp (bench/peers/omp), which needs `make bench`, this one is
 * built by cli/CMakeLists.txt in every build where CMake finds OpenMP, because `baton demo` runs
 * it. Protocol and timing: bench/peers/peer_common.h, one case:
 *
 *     baton-peer-omp_store motion WORKERS ENTITIES TICKS
 */
#include "../peer_common.h"

#include <omp.h>

#include "store/motion_kernel.h"

#define PROG "baton-peer-omp_store"

static unsigned omp_workers;

static int omp_setup(unsigned workers)
{
    int team = 0;

    omp_workers = workers;
    /* Without this, libgomp may hand out a smaller team than asked for under load. */
    omp_set_dynamic(0);
    omp_set_num_threads((int)workers);
#pragma omp parallel
    {
#pragma omp single
        team = omp_get_num_threads();
    }
    if (team != (int)workers) {
        fprintf(stderr, PROG ": asked for a team of %u threads, got %d\n", workers, team);
        return -1;
    }
    return 0;
}

static void omp_motion_tick(unsigned char *payloads, size_t n)
{
    /* One entity per iteration: the kernel is inlined into the loop body. */
#pragma omp parallel for schedule(static) num_threads(omp_workers)
    for (size_t i = 0; i < n; i++)
        baton__motion_step_block(payloads + i * MOTION_PAYLOAD_BYTES, 1);
}

static int usage(const char *why)
{
    fprintf(stderr, PROG ": %s\nusage: " PROG " motion WORKERS ENTITIES TICKS\n", why);
    return PEER_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    struct peer_ops ops = {.name = PROG, .motion_tick = omp_motion_tick};
    uint64_t workers, entities, ticks;

    if (argc != 5)
        return usage("wrong number of arguments");
    if (strcmp(argv[1], "motion") != 0)
        return usage("unknown case (this peer runs motion only)");
    if (peer_parse_u64(argv[2], 1, PEER_MAX_WORKERS, &workers) != 0)
        return usage("WORKERS must be an integer from 1 to 4096");
    if (peer_parse_u64(argv[3], 1, PEER_MAX_ENTITIES, &entities) != 0)
        return usage("ENTITIES must be an integer from 1 to 2^36");
    if (peer_parse_u64(argv[4], 1, UINT32_MAX, &ticks) != 0)
        return usage("TICKS must be an integer from 1 to 2^32-1");
    if (omp_setup((unsigned)workers) != 0)
        return PEER_EXIT_USAGE;
    return peer_run_motion(&ops, entities, ticks);
}
