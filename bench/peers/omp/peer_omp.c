/*
 * peer_omp.c — the OpenMP (gcc libgomp) contender of `baton-bench pool`: fork-join fib with
 * tasks, the 16-item parallel for issued by the main thread, and the motion ticks as a static
 * parallel for. Protocol and timing: bench/peers/peer_common.h.
 */
#include "../peer_common.h"

#include <omp.h>

static unsigned omp_workers;

static int omp_setup(unsigned workers)
{
    omp_workers = workers;
    /* Without this, libgomp may hand out a smaller team than asked for under load. */
    omp_set_dynamic(0);
    omp_set_num_threads((int)workers);

    int team = 0;
#pragma omp parallel
    {
#pragma omp single
        team = omp_get_num_threads();
    }
    if (team != (int)workers) {
        fprintf(stderr, "baton-peer-omp: asked for a team of %u threads, got %d\n", workers, team);
        return -1;
    }
    return 0;
}

static uint64_t fib_task(unsigned n)
{
    if (n < 2)
        return n;
    uint64_t x, y;
#pragma omp task shared(x)
    x = fib_task(n - 1);
    y = fib_task(n - 2);
#pragma omp taskwait
    return x + y;
}

static uint64_t omp_fib(unsigned n)
{
    uint64_t result = 0;
#pragma omp parallel num_threads(omp_workers)
    {
#pragma omp single
        result = fib_task(n);
    }
    return result;
}

static void omp_pfor16(uint64_t out[PFOR_ITEMS])
{
#pragma omp parallel for num_threads(omp_workers)
    for (int i = 0; i < PFOR_ITEMS; i++)
        out[i] = pfor_item_work((uint64_t)i);
}

static void omp_motion_tick(unsigned char *payloads, size_t n)
{
#pragma omp parallel for schedule(static) num_threads(omp_workers)
    for (size_t i = 0; i < n; i++)
        motion_update(payloads + i * MOTION_PAYLOAD_BYTES);
}

int main(int argc, char **argv)
{
    struct peer_ops ops = {
        .name = "baton-peer-omp",
        .setup = omp_setup,
        .fib = omp_fib,
        .pfor16 = omp_pfor16,
        .motion_tick = omp_motion_tick,
    };
    return peer_main(argc, argv, &ops);
}
