/*
 * baton/pool.h — the pool layer: one worker per CPU, work-stealing deques, fork-join, scopes,
 * parallel loops and reductions.
 *
 * Model. A pool owns N worker threads. Each worker owns a Chase-Lev deque with a private end; work
 * it forks goes on its own deque and idle workers steal from the other end. Threads outside the
 * pool that call into it (baton_join, baton_scope_run, baton_parallel_for, ...) take an "external
 * slot" for the duration of the call: the call runs on the calling thread, which forks onto the
 * slot's deque, runs work itself instead of sleeping while the pool does it, and is stolen from
 * (oneTBB's arena slots do the same). A pool starts with external_slots of them; when more outside
 * threads are inside at once, each extra one makes another slot, which the pool keeps for reuse
 * until it is destroyed: a pool never has more slots than external_slots or the most outside calls
 * ever in progress at once, whichever is larger (a few KiB each). No call ever waits for a slot or
 * for a worker to start it.
 *
 * Every call that forks work also waits for it: there are no detached tasks, so no error can be
 * dropped. A task returns 0 or a non-zero error code; the first error of a scope, loop or
 * reduction cancels the work of that call that has not started yet and is returned by it.
 * baton_last_error_message() on the calling thread then describes that error, wherever the work
 * ran: the message the failing work's own baton call set, when it returned a baton code after
 * one of its baton calls failed, or else a message that names the call, the failing part (the
 * body, a task, fn_a, fn_b, fn, accumulate) and the code it returned.
 *
 * Idle workers search for a short while, then park on a futex: an idle pool uses no CPU.
 * Forked work is never lost, but it is not guaranteed to start elsewhere while its forker
 * blocks outside the pool: a worker falling asleep as the fork is pushed may miss it, and the
 * forker runs it itself when it waits through baton_join or its scope. So a task must not block
 * (on a lock, a condition variable, a pipe) until work it forked has run; wait through the pool.
 *
 * Memory ordering: what the caller wrote before a call is visible to the call's tasks, and what
 * the tasks wrote is visible to the caller when the call returns (every waiting call acquires
 * its tasks' completions). Tasks of one call are not ordered among themselves.
 *
 * Several pools: a worker of one pool may call into another (it takes an external slot there).
 * A thread that is inside pool P at any depth (P's worker, or holding a P slot) and calls P again
 * goes on as that same P worker.
 */
#ifndef BATON_POOL_H
#define BATON_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct baton_pool baton_pool;

/* Upper bound on n_workers. */
#define BATON_POOL_MAX_WORKERS 1024
/* Upper bound on external_slots. */
#define BATON_POOL_MAX_EXTERNAL_SLOTS 256
/* external_slots when the config leaves it 0. */
#define BATON_POOL_DEFAULT_EXTERNAL_SLOTS 4

/* Flags for baton_pool_config.flags. */
enum {
    /* Pin worker i to logical CPU i (modulo the CPUs this process may use), through hwloc. */
    BATON_POOL_PIN = 1u << 0,
    /* Make no external slot at creation (external_slots is ignored): the first calls from
     * outside make theirs on demand. Calls behave the same either way; this only moves the
     * slots' allocation from creation to first use (and tests that path). */
    BATON_POOL_NO_EXTERNAL_SLOTS = 1u << 1,
};

/* Pool options. A zeroed struct means "defaults". */
typedef struct baton_pool_config {
    /* sizeof this struct, or 0 for this header's size. A smaller size (a caller built against an
     * older header) leaves the later fields at their defaults, unread; a size larger than this
     * header's, or smaller than sizeof(size_t), is BATON_EINVAL. */
    size_t struct_size;
    unsigned n_workers;      /* 0: one per logical CPU this process may run on (hwloc) */
    unsigned external_slots; /* slots made at creation; 0: BATON_POOL_DEFAULT_EXTERNAL_SLOTS */
    unsigned flags;          /* BATON_POOL_* flags */
    unsigned spin_us;        /* how long an idle worker searches before it parks; 0: 50 us.
                                A worker woken again soon after parking stretches this up to
                                16 times, so periodic work (ticks) does not pay a wake-up each
                                time; a long idle period resets it. At most 1000000. */
    const char *name;        /* thread name prefix, NULL: "baton"; threads are "<name>-<i>",
                                truncated to the 15 characters Linux keeps */
} baton_pool_config;

/*
 * Creates a pool and starts its workers. `config` may be NULL for defaults. On success stores
 * the pool in *out_pool and returns 0; the caller destroys it with baton_pool_destroy().
 * Errors: BATON_EINVAL (NULL out_pool, struct_size larger than this header's or smaller than
 * sizeof(size_t), n_workers or external_slots above their maximum, unknown flags, spin_us above
 * 1000000), BATON_ENOMEM, BATON_ETHREAD (a thread could not be started; the ones already started
 * are stopped), BATON_EIO (hwloc could not read the topology, or a worker could not be pinned).
 * On error *out_pool is left untouched. Thread-safe.
 */
BATON_API int baton_pool_create(const baton_pool_config *config, baton_pool **out_pool);

/*
 * Stops the pool and frees it. New calls into the pool fail with BATON_ECLOSED from the moment
 * destroy starts; calls already running (from other threads) are finished, not cancelled:
 * destroy waits for them to return, then wakes and joins every worker. Idle workers leave
 * without running anything else. Returns 0, or BATON_EDEADLK when called from one of the pool's
 * own workers or from inside a call into this pool (the pool is left running), or BATON_EINVAL
 * for NULL. After 0 the handle is gone; any further use is undefined.
 */
BATON_API int baton_pool_destroy(baton_pool *pool);

/* Number of worker threads (not counting external slots); 0 for NULL. Thread-safe. */
BATON_API unsigned baton_pool_workers(const baton_pool *pool);

/* Index of the calling thread in `pool` (0 .. workers-1), or -1 when the calling thread is not
 * one of its workers (an outside thread, even while it holds an external slot) or pool is NULL.
 * Thread-safe. */
BATON_API int baton_pool_current_worker(const baton_pool *pool);

/* A unit of work: returns 0, or a non-zero error code that cancels its siblings. */
typedef int (*baton_task_fn)(void *ctx);

/*
 * Runs fn_a(ctx_a) and fn_b(ctx_b), potentially in parallel, and returns when both are done.
 * The calling thread runs A itself; B is offered to thieves and run by the caller afterwards if
 * nobody took it (rayon's join). Nothing is allocated on the heap (but for the external slot an
 * outside caller makes when every one is taken, once per slot for the pool's life; see the top
 * of this file). The first few levels of nested joins on a thread (the coarse ones) are always
 * stealable. Deeper ones stay private to
 * the caller while every worker of the pool is busy, so that forking and joining them costs no
 * fence, and are made stealable as soon as a worker is idle, at the caller's next fork or join;
 * so a deeply nested join whose A runs a long time without forking may run B itself after A
 * (Lace and Wool behave the same way).
 * Returns 0, A's error if A failed (then B is skipped if it had not started), else B's error;
 * BATON_EINVAL for a NULL pool or function; BATON_ECLOSED while the pool is being destroyed;
 * BATON_ENOMEM (from outside the pool only) when no external slot is free and there is no memory
 * for another (neither A nor B ran). Callable from any thread, including from tasks at any
 * nesting depth. Blocking: the caller helps run other work of the pool while B runs elsewhere.
 */
BATON_API int baton_join(baton_pool *pool, baton_task_fn fn_a, void *ctx_a, baton_task_fn fn_b,
                         void *ctx_b);

/* A scope: a set of tasks that baton_scope_run waits for. Lives inside baton_scope_run. */
typedef struct baton_scope baton_scope;
typedef int (*baton_scope_fn)(baton_scope *scope, void *ctx);

/*
 * Runs body(scope, ctx) on the calling thread, then waits until every task spawned into the scope
 * (by the body or by those tasks) has finished, running tasks of the pool while it waits.
 * Returns 0, or the first non-zero value returned by the body or any task (which cancelled the
 * tasks that had not started), BATON_EINVAL for NULL arguments, BATON_ECLOSED while the pool is
 * being destroyed, BATON_ENOMEM as for baton_join (the body did not run). Scopes nest to any
 * depth, from any thread. The scope pointer is valid only until baton_scope_run returns.
 */
BATON_API int baton_scope_run(baton_pool *pool, baton_scope_fn body, void *ctx);

/*
 * Spawns fn(ctx) into `scope`. Call it from the scope's body or from a task of the scope (any
 * thread the pool runs it on); the task runs on some worker, or on the waiting thread. The task
 * record comes from the calling worker's free list: no heap allocation once that list is warm.
 * Returns 0; BATON_ECANCELED when the scope is already cancelled (fn will not run);
 * BATON_EPERM when called from a thread that is not running inside the scope's pool;
 * BATON_ENOMEM when a new slab of records cannot be allocated; BATON_EINVAL for NULL arguments.
 * If it fails, fn never runs.
 */
BATON_API int baton_scope_spawn(baton_scope *scope, baton_task_fn fn, void *ctx);

/* True once a task or the body of the scope has failed, so long-running tasks can stop early;
 * false for NULL. Thread-safe. */
BATON_API bool baton_scope_cancelled(const baton_scope *scope);

/* Loop body over [begin, end): returns 0 or an error that stops the loop. */
typedef int (*baton_range_fn)(size_t begin, size_t end, void *ctx);

/*
 * Calls fn over disjoint sub-ranges that exactly cover [begin, end), in parallel.
 * grain 0: adaptive — the range starts with a budget of four splits per worker, halved at each
 * split until it is spent, which cuts it into 2^(floor(log2(4 * workers)) + 1) pieces: eight per
 * worker when the number of workers is a power of two (8 on one worker, 16 on 2 or 3, 32 on 4),
 * or single indices when the range is shorter; a piece that a thief takes gets the budget again
 * and is split further (rayon's adaptive splitter), down to single indices. So on a pool where
 * nobody steals, fn is called exactly min(end - begin, that number) times.
 * grain > 0: the range is cut into pieces of at most `grain` indices.
 * Returns 0, the first error returned by fn (pieces not yet started are skipped), BATON_EINVAL
 * (NULL pool or fn, begin > end), BATON_ECLOSED, BATON_ENOMEM as for baton_join (fn was not
 * called). An empty range returns 0 without calling fn. The calling thread takes part: it runs
 * the piece that starts at begin itself (unless the loop was cancelled first), and others as it
 * waits. Callable from any thread and from inside tasks (nested loops work at any depth).
 */
BATON_API int baton_parallel_for(baton_pool *pool, size_t begin, size_t end, size_t grain,
                                 baton_range_fn fn, void *ctx);

/* Largest accumulator baton_parallel_reduce supports (it keeps accumulators on the stack). */
#define BATON_REDUCE_MAX_VALUE_SIZE 256
/* Chunk length of a deterministic reduction when grain is 0. */
#define BATON_REDUCE_DEFAULT_DETERMINISTIC_GRAIN 1024

enum {
    /* Fixed chunks of `grain` indices (BATON_REDUCE_DEFAULT_DETERMINISTIC_GRAIN when 0), each
     * folded from the identity, combined by a balanced binary tree over chunk indices: the
     * result does not depend on the number of workers or on who stole what, so a floating-point
     * sum is bit-identical on every run (oneTBB's parallel_deterministic_reduce). */
    BATON_REDUCE_DETERMINISTIC = 1u << 0,
};

/*
 * How to reduce: an accumulator of value_size bytes (aligned to max_align_t inside baton).
 *  identity(out, ctx)                    writes the neutral element;
 *  accumulate(begin, end, inout, ctx)    folds [begin, end) into *inout; returns 0 or an error;
 *  combine(inout_left, right, ctx)       *inout_left = *inout_left (+) *right, where left covers
 *                                        indices below right's. Need not be commutative; must be
 *                                        associative for the result to equal the serial fold.
 */
typedef struct baton_reduce_ops {
    size_t value_size;
    void (*identity)(void *out_value, void *ctx);
    int (*accumulate)(size_t begin, size_t end, void *inout_value, void *ctx);
    void (*combine)(void *inout_left, const void *right, void *ctx);
    unsigned flags; /* BATON_REDUCE_* */
} baton_reduce_ops;

/*
 * Reduces [begin, end) in parallel and writes the result (value_size bytes) to out_value; an
 * empty range gives the identity. Splitting follows baton_parallel_for (grain 0 adaptive, else
 * pieces of at most grain), unless ops->flags has BATON_REDUCE_DETERMINISTIC.
 * Returns 0; the first error of accumulate (out_value is then left untouched); BATON_EINVAL
 * (NULL argument or callback, begin > end, value_size 0 or above BATON_REDUCE_MAX_VALUE_SIZE,
 * unknown flags); BATON_ECLOSED; BATON_ENOMEM as for baton_join. identity runs first on the
 * calling thread; the calling thread also runs accumulate on the piece (or chunk) that starts at
 * begin itself (unless the reduction was cancelled first); the other callbacks run on any
 * worker or on the calling thread.
 */
BATON_API int baton_parallel_reduce(baton_pool *pool, size_t begin, size_t end, size_t grain,
                                    const baton_reduce_ops *ops, void *ctx, void *out_value);

/* Per-worker counters. Each is written by its worker only, so reading them is cheap and never
 * slows the worker; values read while the pool runs are a recent snapshot. */
typedef struct baton_worker_stats {
    uint64_t tasks_executed; /* jobs taken from a deque and run */
    uint64_t steals;         /* jobs taken from another deque */
    uint64_t steal_failures; /* steal attempts that found nothing or lost a race */
    uint64_t parks;          /* times the worker went to sleep */
} baton_worker_stats;

/*
 * Copies worker `worker`'s counters to *out. Pass worker == baton_pool_workers(pool) to get the
 * sum over all workers and external slots (those made on demand included). Returns 0 or
 * BATON_EINVAL (NULL, index too large). Thread-safe.
 */
BATON_API int baton_pool_worker_stats(const baton_pool *pool, unsigned worker,
                                      baton_worker_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* BATON_POOL_H */
