/*
 * baton/core.h — the core layer: error codes and messages, the monotonic clock, hashing,
 * cache-line padding and the allocator hook.
 *
 * Every other layer builds on these. Nothing here starts threads or takes locks.
 */
#ifndef BATON_CORE_H
#define BATON_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of the shared library are hidden unless marked. */
#if defined(BATON_STATIC_DEFINE)
#define BATON_API
#elif defined(__GNUC__) || defined(__clang__)
#define BATON_API __attribute__((visibility("default")))
#else
#define BATON_API
#endif

#define BATON_VERSION_MAJOR 0
#define BATON_VERSION_MINOR 1
#define BATON_VERSION_PATCH 0

/* Destructive interference size: state written by different threads lives this far apart. */
#define BATON_CACHELINE 64
/* Pads a struct member to a cache line of its own: `BATON_CACHELINE_ALIGNED atomic_long head;`. */
#define BATON_CACHELINE_ALIGNED _Alignas(BATON_CACHELINE)

/*
 * Error codes. Every baton function that can fail returns int: 0 on success, or one of these
 * negative codes. The table generates the enum, baton_strerror() and baton_err_name().
 */
#define BATON_ERRNO_MAP(X)                                                        \
    X(EINVAL, -1, "invalid argument")                                             \
    X(ENOMEM, -2, "out of memory")                                                \
    X(ECANCELED, -3, "operation canceled")                                        \
    X(ECLOSED, -4, "handle is closed or shutting down")                           \
    X(EBUSY, -5, "resource busy")                                                 \
    X(EDEADLK, -6, "operation would deadlock")                                    \
    X(EAGAIN, -7, "resource temporarily unavailable (full or empty)")             \
    X(ETIMEDOUT, -8, "timed out")                                                 \
    X(ERANGE, -9, "value out of range")                                           \
    X(ENOSYS, -10, "not supported on this platform or build")                     \
    X(EIO, -11, "input/output error")                                             \
    X(ENOTFOUND, -12, "not found")                                                \
    X(EEXIST, -13, "already exists")                                              \
    X(EPERM, -14, "operation not permitted from this thread or state")            \
    X(ETHREAD, -15, "could not create a thread")                                  \
    X(EEOF, -16, "end of stream")                                                 \
    X(ECONFLICT, -17, "conflicting operations")                                   \
    X(EMISMATCH, -18, "mismatch against a recorded or expected value")

typedef enum baton_errno {
#define BATON__ERRNO_ENUM(name, value, text) BATON_##name = (value),
    BATON_ERRNO_MAP(BATON__ERRNO_ENUM)
#undef BATON__ERRNO_ENUM
    BATON__ERRNO_LAST = -19
} baton_errno;

/*
 * Returns a static, human-readable description of `err` ("invalid argument"). 0 gives
 * "success"; an unknown value gives "unknown error". Thread-safe; never returns NULL.
 */
BATON_API const char *baton_strerror(int err);

/* Returns the code's name as a static string ("BATON_EINVAL"), "0" for success, "BATON_E?" for
 * an unknown value. Thread-safe; never returns NULL. */
BATON_API const char *baton_err_name(int err);

/*
 * Returns the detail message of the last error a baton call reported on the calling thread,
 * e.g. "baton_pool_create: n_workers = 5000 exceeds BATON_POOL_MAX_WORKERS (1024)". The string
 * is owned by the thread and stays valid until its next failing baton call; it is "" when the
 * thread has seen no error. Successful calls leave it unchanged. It is at most 511 bytes: a longer
 * message is cut and ends with "...". Thread-safe (thread-local).
 */
BATON_API const char *baton_last_error_message(void);

/* Nanoseconds of a monotonic clock (CLOCK_MONOTONIC on Linux). Only differences mean anything.
 * Thread-safe, wait-free. */
BATON_API uint64_t baton_now_ns(void);

/*
 * 64-bit XXH3 of `len` bytes at `data` with `seed`. Stable across runs, machines and versions
 * (it is the XXH3 specification, from libxxhash). `data` may be NULL when `len` is 0.
 * Thread-safe, wait-free.
 */
BATON_API uint64_t baton_hash64(const void *data, size_t len, uint64_t seed);

/*
 * A fixed bijective 64-bit mixer (the SplitMix64 / Stafford "mix13" finaliser):
 *   x ^= x >> 30; x *= 0xbf58476d1ce4e5b9; x ^= x >> 27; x *= 0x94d049bb133111eb; x ^= x >> 31;
 * Used for routing ids to shards; its definition is part of the API and will never change.
 */
static inline uint64_t baton_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

/*
 * The allocator baton uses for everything it allocates (pools, deques, task slabs, graphs, stores,
 * spaces, engines; not what the libraries it uses allocate: hwloc, LMDB, MPI use their own).
 * `aligned_alloc` must return memory aligned to `alignment` (a power of two, at most 4096) that
 * `free` accepts; baton asks only for sizes that are multiples of the alignment, so C11's
 * aligned_alloc may be given as it is. Give all three, or none (all NULL) for the C library's
 * functions: mixing them would free one allocator's memory with the other.
 */
typedef struct baton_allocator {
    void *(*malloc)(size_t size);
    void *(*aligned_alloc)(size_t alignment, size_t size);
    void (*free)(void *ptr);
} baton_allocator;

/*
 * Replaces the allocator. Call it before baton allocates anything (before the first create call),
 * or later at a time when baton holds no memory (every handle destroyed). Passing NULL restores
 * the C library's functions, and so does a struct whose three fields are all NULL. Returns 0;
 * BATON_EINVAL when some but not all of the three functions are given; BATON_EBUSY while blocks
 * baton allocated with the allocator in use are not yet freed (they must be freed by the
 * allocator that made them; the message gives their number). On error the allocator in use is
 * left as it was. Not thread-safe: no other baton call may run while it does.
 */
BATON_API int baton_set_allocator(const baton_allocator *allocator);

#ifdef __cplusplus
}
#endif

#endif /* BATON_CORE_H */
