/*
 * peer.c — the peer contenders: bench_peer_run reports a failed peer run (bench/common/
 * peer_process.c runs it), bench_peer_measure wraps one run as a contender's measurement, for
 * every suite. A failed run is recorded as incorrect rather than dropped.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>

#include "bench.h"

/* A peer that has not answered by then is hung: it is killed and its record marked incorrect. */
#define PEER_TIMEOUT_S 300.0

int bench_peer_run(const char *path, const char *const *args, double timeout_s, double *out_time_s,
                   uint64_t *out_check)
{
    char why[PEER_PROCESS_WHY_MAX];
    if (peer_process_run(path, args, timeout_s, out_time_s, out_check, why, sizeof why) != 0) {
        cmdline_errorf("%s", why);
        return -1;
    }
    return 0;
}

int bench_peer_measure(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const bench_peer_case *pc = ctx;
    char workers_arg[16];
    const char *args[5];
    double time_s;
    uint64_t check;

    snprintf(workers_arg, sizeof workers_arg, "%u", workers);
    args[0] = pc->case_name;
    args[1] = workers_arg;
    args[2] = pc->arg1;
    args[3] = pc->arg2[0] != '\0' ? pc->arg2 : NULL;
    args[4] = NULL;
    if (bench_peer_run(pc->path, args, PEER_TIMEOUT_S, &time_s, &check) != 0)
        return -1;
    if (pc->ticks > 0 && !(time_s > 0)) {
        cmdline_errorf("%s: %s took time_s=0: no throughput to report", pc->path, pc->case_name);
        return -1;
    }
    *out_value = pc->ticks > 0 ? pc->ticks / time_s : time_s;
    *out_correct = check == pc->expected;
    if (!*out_correct)
        cmdline_note("bench %s: %s %s %s: check=%" PRIu64 ", expected %" PRIu64, pc->suite,
                     pc->path, pc->case_name, workers_arg, check, pc->expected);
    return 0;
}
