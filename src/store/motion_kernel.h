/*
 * motion_kernel.h — the motion rule's inner loop, header-only so that the library
 * (baton_motion_step) and the benchmark's contenders (bench/, C and C++) run the very same code.
 *
 * A payload is six little-endian Q32.32 numbers: position x, y, z, then velocity x, y, z. The
 * saturating add is branch-free: overflow happened when pos and vel have the same sign and the
 * sum's differs, and then the result is INT64_MAX or INT64_MIN by the sign of pos. x and y go
 * through one 2 x 64-bit vector (GCC/Clang vector extensions: SSE2 on x86-64, NEON on arm64,
 * scalar code elsewhere), z through the scalar version of the same formula. gcc 12 at -O2 does
 * not vectorise the plain per-axis loop (its cheap cost model refuses the stride of six words),
 * so the vector is written out; memcpy keeps the loads and stores free of alignment and
 * aliasing assumptions.
 */
#ifndef BATON_STORE_MOTION_KERNEL_H
#define BATON_STORE_MOTION_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BATON__MOTION_BYTES 48

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define BATON__MOTION_BIG_ENDIAN 1
#endif

static inline uint64_t baton__motion_sat_add(uint64_t pos, uint64_t vel)
{
    uint64_t sum = pos + vel;
    uint64_t overflow = ((pos ^ sum) & (vel ^ sum)) >> 63;
    uint64_t limit = (pos >> 63) + (uint64_t)INT64_MAX; /* INT64_MIN when pos < 0 */
    return sum ^ ((sum ^ limit) & (0 - overflow));
}

#if (defined(__GNUC__) || defined(__clang__)) && !defined(BATON__MOTION_BIG_ENDIAN)
typedef uint64_t baton__motion_v2 __attribute__((vector_size(16)));

static inline void baton__motion_step_block(unsigned char *payloads, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        unsigned char *e = payloads + BATON__MOTION_BYTES * i;
        baton__motion_v2 pos, vel, sum, overflow, limit;
        uint64_t pz, vz;
        memcpy(&pos, e, sizeof pos);
        memcpy(&vel, e + 24, sizeof vel);
        sum = pos + vel;
        overflow = ((pos ^ sum) & (vel ^ sum)) >> 63;
        limit = (pos >> 63) + (uint64_t)INT64_MAX;
        sum ^= (sum ^ limit) & (0 - overflow);
        memcpy(e, &sum, sizeof sum);
        memcpy(&pz, e + 16, sizeof pz);
        memcpy(&vz, e + 40, sizeof vz);
        pz = baton__motion_sat_add(pz, vz);
        memcpy(e + 16, &pz, sizeof pz);
    }
}
#else
static inline uint64_t baton__motion_load(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#ifdef BATON__MOTION_BIG_ENDIAN
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void baton__motion_store(unsigned char *p, uint64_t v)
{
#ifdef BATON__MOTION_BIG_ENDIAN
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, sizeof v);
}

static inline void baton__motion_step_block(unsigned char *payloads, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        unsigned char *e = payloads + BATON__MOTION_BYTES * i;
        for (int axis = 0; axis < 3; axis++) {
            uint64_t pos = baton__motion_load(e + 8 * axis);
            uint64_t vel = baton__motion_load(e + 24 + 8 * axis);
            baton__motion_store(e + 8 * axis, baton__motion_sat_add(pos, vel));
        }
    }
}
#endif

#endif /* BATON_STORE_MOTION_KERNEL_H */
