/*
 * workloads.h — the workloads every contender of the pool benchmarks runs, written once so that
 * baton and its peers (C with OpenMP, C++ with oneTBB) compute exactly the same thing. Header-only
 * and dependency-free; valid C11 and C++17. The rayon peer (Rust) mirrors these definitions and
 * must stay bit-for-bit identical: bench/peers/rayon/src/main.rs says so where it copies them.
 *
 * The motion rule: an entity is a 48-byte payload of six little-endian Q32.32 fixed-point
 * numbers: position x, y, z then velocity x, y, z. One tick decodes the payload, adds velocity to
 * position with saturation at the int64 limits, and encodes it again.
 */
#ifndef BATON_BENCH_WORKLOADS_H
#define BATON_BENCH_WORKLOADS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MOTION_PAYLOAD_BYTES 48

/* Little-endian 64-bit load and store through memcpy: one instruction on little-endian machines
 * at -O2 and -O3 alike (a byte loop is merged into one load only at -O3, which would make the
 * comparison one of optimisation levels rather than of schedulers). */
static inline int64_t motion_load_le(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return (int64_t)v;
}

static inline void motion_store_le(unsigned char *p, int64_t value)
{
    uint64_t v = (uint64_t)value;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, sizeof v);
}

static inline int64_t motion_saturating_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* One tick of the motion rule on one payload. */
static inline void motion_update(unsigned char *payload)
{
    for (int axis = 0; axis < 3; axis++) {
        int64_t pos = motion_load_le(payload + 8 * axis);
        int64_t vel = motion_load_le(payload + 24 + 8 * axis);
        motion_store_le(payload + 8 * axis, motion_saturating_add(pos, vel));
    }
}

/* Ticks entities [begin, end) of a contiguous array of payloads once. */
static inline void motion_update_range(unsigned char *payloads, size_t begin, size_t end)
{
    for (size_t i = begin; i < end; i++)
        motion_update(payloads + i * MOTION_PAYLOAD_BYTES);
}

static inline uint64_t motion_splitmix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/*
 * The initial state of entity i: positions anywhere in the Q32.32 range of +-2^20, velocities of
 * magnitude below 2^8 units; every 1024th entity starts next to INT64_MAX moving up (or
 * INT64_MIN moving down) so that saturation is exercised.
 */
static inline void motion_init_entity(unsigned char *payload, uint64_t i)
{
    for (int axis = 0; axis < 3; axis++) {
        uint64_t r = motion_splitmix(i * 6 + (uint64_t)axis);
        uint64_t s = motion_splitmix(i * 6 + 3 + (uint64_t)axis);
        int64_t pos = (int64_t)(r >> 11) - (INT64_C(1) << 52);
        int64_t vel = (int64_t)(s >> 24) - (INT64_C(1) << 39);
        if (i % 1024 == 0) {
            pos = (axis & 1) ? INT64_MIN + 5 : INT64_MAX - 5;
            vel = (axis & 1) ? -(INT64_C(1) << 32) : (INT64_C(1) << 32);
        }
        motion_store_le(payload + 8 * axis, pos);
        motion_store_le(payload + 24 + 8 * axis, vel);
    }
}

static inline void motion_init(unsigned char *payloads, size_t n_entities)
{
    for (size_t i = 0; i < n_entities; i++)
        motion_init_entity(payloads + i * MOTION_PAYLOAD_BYTES, i);
}

/* Order-dependent fold of every 64-bit word of the state (FNV-1a style over words). */
static inline uint64_t motion_checksum(const unsigned char *payloads, size_t n_entities)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    size_t words = n_entities * (MOTION_PAYLOAD_BYTES / 8);
    for (size_t w = 0; w < words; w++) {
        h ^= (uint64_t)motion_load_le(payloads + 8 * w);
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* fib(n) by the definition, for checking the fork-join results. */
static inline uint64_t fib_expected(unsigned n)
{
    uint64_t a = 0, b = 1;
    for (unsigned i = 0; i < n; i++) {
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

/* Number of calls a recursive fib(n) makes (its tasks): 2 * fib(n + 1) - 1. */
static inline uint64_t fib_calls(unsigned n)
{
    return 2 * fib_expected(n + 1) - 1;
}

/* The small parallel_for: 16 items, each a few hundred nanoseconds of dependent integer work. */
#define PFOR_ITEMS 16
#define PFOR_ITEM_ROUNDS 256

static inline uint64_t pfor_item_work(uint64_t item)
{
    uint64_t x = item + 1;
    for (int r = 0; r < PFOR_ITEM_ROUNDS; r++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

/* The sum over the 16 items of pfor_item_work: what one parallel_for sample must produce. */
static inline uint64_t pfor_expected_sum(void)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < PFOR_ITEMS; i++)
        sum += pfor_item_work(i);
    return sum;
}

#endif /* BATON_BENCH_WORKLOADS_H */
