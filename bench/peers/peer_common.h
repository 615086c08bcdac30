/*
 * peer_common.h — the command line, timing and output shared by the C and C++ benchmark peers
 * (bench/peers/omp, bench/peers/tbb). Header-only; valid C11 and C++17. Include it first, before
 * any system header, so that the POSIX clock and sleep declarations are visible under -std=c11.
 *
 * Protocol (the driver, `baton-bench pool`, depends on it exactly):
 *
 *     <peer> CASE WORKERS ARG1 [ARG2]
 *
 *     fib N                      one fib(N) by fork-join after a warm-up fib(20)
 *     pfor16_hot SAMPLES         median latency of a 16-item parallel loop issued by main
 *     pfor16_after_idle SAMPLES  the same, with a 5 ms sleep before each timed loop
 *     motion ENTITIES TICKS      total time of TICKS parallel motion ticks
 *
 * On success exactly one line goes to stdout, `time_s=<%.9g> check=<u64>`, and the exit status is
 * 0. Bad arguments or an unsupported case: a message on stderr, nothing on stdout, exit 2. A
 * wrong result found by the peer's own check: a message on stderr, nothing on stdout, exit 3.
 *
 * A peer supplies a `struct peer_ops` (how to set up its pool and run one instance of each case)
 * and calls peer_main(); everything the contenders must do identically lives here, so that the
 * peers differ only in the library they call.
 */
#ifndef BATON_BENCH_PEER_COMMON_H
#define BATON_BENCH_PEER_COMMON_H

#if !defined(__cplusplus) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/workloads.h"

#define PEER_EXIT_USAGE 2
#define PEER_EXIT_WRONG 3

/* Upper bounds that only reject nonsense; none of them limits a real run. */
#define PEER_MAX_WORKERS 4096
#define PEER_MAX_FIB_N 93 /* fib(93) is the largest that fits in 64 bits */
#define PEER_MAX_SAMPLES UINT64_C(100000000)
#define PEER_MAX_ENTITIES (UINT64_C(1) << 36)
#define PEER_WARMUP_FIB_N 20
#define PEER_PFOR_WARMUP_LOOPS 200
#define PEER_IDLE_SLEEP_NS 5000000L

/* What a peer plugs in. `setup` is called once, before any work, with the validated WORKERS. */
struct peer_ops {
    const char *name;
    int (*setup)(unsigned workers);                        /* 0, or nonzero after a message */
    uint64_t (*fib)(unsigned n);                           /* one fork-join fib(n) in the pool */
    void (*pfor16)(uint64_t out[PFOR_ITEMS]);              /* one 16-item loop issued by main */
    void (*motion_tick)(unsigned char *payloads, size_t n); /* NULL: case unsupported */
};

static inline uint64_t peer_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static inline void peer_sleep_ns(long ns)
{
    struct timespec req, rem;
    req.tv_sec = ns / 1000000000L;
    req.tv_nsec = ns % 1000000000L;
    /* A signal must not shorten the idle period the case is about. */
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
}

static inline int peer_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Median of n > 0 samples, in nanoseconds; sorts the array in place. Even n: mean of the two
 * middle samples, as the driver computes its own medians. */
static inline double peer_median_ns(uint64_t *samples, size_t n)
{
    qsort(samples, n, sizeof samples[0], peer_cmp_u64);
    if (n % 2 == 1)
        return (double)samples[n / 2];
    return ((double)samples[n / 2 - 1] + (double)samples[n / 2]) / 2.0;
}

static inline void peer_print_result(double time_s, uint64_t check)
{
    printf("time_s=%.9g check=%" PRIu64 "\n", time_s, check);
    fflush(stdout);
}

/* Strict decimal parse: digits only (no sign, no spaces, no suffix), within [min, max]. */
static inline int peer_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0')
        return -1;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static inline int peer_usage(const char *prog, const char *why)
{
    fprintf(stderr,
            "%s: %s\n"
            "usage: %s CASE WORKERS ARG1 [ARG2]\n"
            "  fib N | pfor16_hot SAMPLES | pfor16_after_idle SAMPLES | motion ENTITIES TICKS\n",
            prog, why, prog);
    return PEER_EXIT_USAGE;
}

static inline int peer_run_fib(const struct peer_ops *ops, unsigned n)
{
    uint64_t warm = ops->fib(PEER_WARMUP_FIB_N);
    if (warm != fib_expected(PEER_WARMUP_FIB_N)) {
        fprintf(stderr, "%s: warm-up fib(%d) = %" PRIu64 ", expected %" PRIu64 "\n", ops->name,
                PEER_WARMUP_FIB_N, warm, fib_expected(PEER_WARMUP_FIB_N));
        return PEER_EXIT_WRONG;
    }
    uint64_t t0 = peer_now_ns();
    uint64_t result = ops->fib(n);
    uint64_t t1 = peer_now_ns();
    if (result != fib_expected(n)) {
        fprintf(stderr, "%s: fib(%u) = %" PRIu64 ", expected %" PRIu64 "\n", ops->name, n, result,
                fib_expected(n));
        return PEER_EXIT_WRONG;
    }
    peer_print_result((double)(t1 - t0) / 1e9, result);
    return 0;
}

static inline uint64_t peer_sum_out(const uint64_t out[PFOR_ITEMS])
{
    uint64_t sum = 0;
    for (int i = 0; i < PFOR_ITEMS; i++)
        sum += out[i];
    return sum;
}

static inline int peer_run_pfor16(const struct peer_ops *ops, uint64_t samples, int after_idle)
{
    uint64_t out[PFOR_ITEMS];
    uint64_t *lat = (uint64_t *)malloc((size_t)samples * sizeof *lat);
    if (lat == NULL) {
        fprintf(stderr, "%s: out of memory for %" PRIu64 " samples\n", ops->name, samples);
        return PEER_EXIT_USAGE;
    }
    /* The warm-up is checked too: a loop that drops items must not pass as merely slow. */
    uint64_t expected = pfor_expected_sum();
    for (int i = 0; i < PEER_PFOR_WARMUP_LOOPS; i++) {
        memset(out, 0, sizeof out);
        ops->pfor16(out);
        if (peer_sum_out(out) != expected) {
            fprintf(stderr, "%s: warm-up loop %d summed to %" PRIu64 ", expected %" PRIu64 "\n",
                    ops->name, i, peer_sum_out(out), expected);
            free(lat);
            return PEER_EXIT_WRONG;
        }
    }
    uint64_t check = 0;
    for (uint64_t s = 0; s < samples; s++) {
        /* Clearing out[] keeps a loop that skips items from reusing the previous loop's values. */
        memset(out, 0, sizeof out);
        if (after_idle)
            peer_sleep_ns(PEER_IDLE_SLEEP_NS);
        uint64_t t0 = peer_now_ns();
        ops->pfor16(out);
        uint64_t t1 = peer_now_ns();
        lat[s] = t1 - t0;
        check += peer_sum_out(out);
    }
    double median_ns = peer_median_ns(lat, (size_t)samples);
    free(lat);
    if (check != samples * expected) {
        fprintf(stderr, "%s: %" PRIu64 " loops summed to %" PRIu64 ", expected %" PRIu64 "\n",
                ops->name, samples, check, samples * expected);
        return PEER_EXIT_WRONG;
    }
    peer_print_result(median_ns / 1e9, check);
    return 0;
}

static inline int peer_run_motion(const struct peer_ops *ops, uint64_t entities, uint64_t ticks)
{
    unsigned char *payloads = (unsigned char *)malloc((size_t)entities * MOTION_PAYLOAD_BYTES);
    if (payloads == NULL) {
        fprintf(stderr, "%s: out of memory for %" PRIu64 " entities\n", ops->name, entities);
        return PEER_EXIT_USAGE;
    }
    motion_init(payloads, (size_t)entities);
    uint64_t t0 = peer_now_ns();
    for (uint64_t t = 0; t < ticks; t++)
        ops->motion_tick(payloads, (size_t)entities);
    uint64_t t1 = peer_now_ns();
    /* No self-check: a serial reference would double the memory; the driver checks the sum. */
    uint64_t check = motion_checksum(payloads, (size_t)entities);
    free(payloads);
    peer_print_result((double)(t1 - t0) / 1e9, check);
    return 0;
}

/* Parses the command line, sets the pool up and runs the case; returns the exit status. */
static inline int peer_main(int argc, char **argv, const struct peer_ops *ops)
{
    const char *prog = ops->name;
    if (argc < 4 || argc > 5)
        return peer_usage(prog, "wrong number of arguments");
    const char *which = argv[1];
    uint64_t workers, arg1, arg2 = 0;
    if (peer_parse_u64(argv[2], 1, PEER_MAX_WORKERS, &workers) != 0)
        return peer_usage(prog, "WORKERS must be an integer from 1 to 4096");

    enum { CASE_FIB, CASE_PFOR_HOT, CASE_PFOR_IDLE, CASE_MOTION } kind;
    if (strcmp(which, "fib") == 0) {
        kind = CASE_FIB;
        if (argc != 4)
            return peer_usage(prog, "fib takes one argument, N");
        if (peer_parse_u64(argv[3], 0, PEER_MAX_FIB_N, &arg1) != 0)
            return peer_usage(prog, "N must be an integer from 0 to 93");
    } else if (strcmp(which, "pfor16_hot") == 0 || strcmp(which, "pfor16_after_idle") == 0) {
        kind = which[7] == 'h' ? CASE_PFOR_HOT : CASE_PFOR_IDLE;
        if (argc != 4)
            return peer_usage(prog, "pfor16 cases take one argument, SAMPLES");
        if (peer_parse_u64(argv[3], 1, PEER_MAX_SAMPLES, &arg1) != 0)
            return peer_usage(prog, "SAMPLES must be an integer from 1 to 100000000");
    } else if (strcmp(which, "motion") == 0) {
        kind = CASE_MOTION;
        if (ops->motion_tick == NULL)
            return peer_usage(prog, "case motion is not supported by this peer");
        if (argc != 5)
            return peer_usage(prog, "motion takes two arguments, ENTITIES and TICKS");
        if (peer_parse_u64(argv[3], 1, PEER_MAX_ENTITIES, &arg1) != 0)
            return peer_usage(prog, "ENTITIES must be an integer from 1 to 2^36");
        if (peer_parse_u64(argv[4], 1, UINT32_MAX, &arg2) != 0)
            return peer_usage(prog, "TICKS must be an integer from 1 to 2^32-1");
    } else {
        return peer_usage(prog, "unknown case");
    }

    if (ops->setup((unsigned)workers) != 0)
        return PEER_EXIT_USAGE;
    switch (kind) {
    case CASE_FIB:
        return peer_run_fib(ops, (unsigned)arg1);
    case CASE_PFOR_HOT:
        return peer_run_pfor16(ops, arg1, 0);
    case CASE_PFOR_IDLE:
        return peer_run_pfor16(ops, arg1, 1);
    case CASE_MOTION:
        return peer_run_motion(ops, arg1, arg2);
    }
    return PEER_EXIT_USAGE;
}

#endif /* BATON_BENCH_PEER_COMMON_H */
