/*
 * loops.c — baton_parallel_for and baton_parallel_reduce, built on baton__fork_join.
 *
 * DESIGN
 *  - Adaptive splitting (grain 0), after rayon's Splitter (src/iter/plumbing/mod.rs): a range
 *    starts with a budget of `splits` = BATON__SPLITS_PER_WORKER (4) per worker; each split
 *    halves the budget (integer division), and a range splits while its budget is not zero, so
 *    a budget s gives 2^(floor(log2 s) + 1) pieces: 8 per worker for a power-of-two worker
 *    count, as pool.h states. A half that a thief takes (it "migrated") resets its budget to at
 *    least the starting one. So a loop is cut into a few pieces per worker, and further only
 *    where stealing shows there are idle workers to feed; where nobody steals, into exactly
 *    that many (8 on one worker).
 *  - Fixed grain (grain > 0): halve until a piece has at most `grain` indices.
 *  - Errors: the first non-zero result is stored in the loop's state and sets cancelled; pieces
 *    that start later return at once. Every piece that started has finished when the call
 *    returns, because fork-join waits for both halves.
 *  - Reduction (adaptive or fixed grain): the left half folds into the caller's accumulator, the
 *    right half into a fresh one in the forking frame (identity first), then combine(left,
 *    right). Accumulators live on the stack, BATON_REDUCE_MAX_VALUE_SIZE bytes each.
 *  - Deterministic reduction: chunks of exactly `grain` indices (the last one shorter), each
 *    folded from the identity; the combine tree is the balanced binary tree over chunk indices
 *    [0, n_chunks), split at the midpoint. Forks only decide who computes a node, never the
 *    shape of the tree, so the bits of the result depend on the input alone.
 */
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "baton/core.h"
#include "core/atomic.h"
#include "core/error.h"
#include "pool/internal.h"

typedef struct baton__loop {
    baton_range_fn fn;
    void *ctx;
    const baton_reduce_ops *ops; /* reductions only */
    size_t grain;                /* 0: adaptive */
    size_t begin;                /* deterministic reduce: the start of chunk 0 */
    size_t end;
    unsigned split_budget; /* pieces an adaptive loop starts with, and a stolen piece gets */
    _Atomic int first_error;
    _Atomic uint32_t cancelled;
    const char *call; /* the public call, for messages */
    /* The first error's message, written by the thread whose error won first_error; read by the
     * caller after every piece has finished (the fork-joins' latches order it). */
    char message[BATON__CARRIED_MESSAGE_CAPACITY];
} baton__loop;

#ifndef BATON__SPLITS_PER_WORKER
#define BATON__SPLITS_PER_WORKER 4
#endif

/* Adaptive loops start with a few pieces per worker (a budget of four splits per worker gives
 * eight pieces per worker; oneTBB's auto_partitioner starts with four per thread): with one piece
 * per worker, the worker that finishes first waits for a whole piece of the other at the end of
 * every loop; with a few, it steals the rest in smaller bites. */
static unsigned baton__split_budget(const baton_pool *pool)
{
    return pool->n_workers * BATON__SPLITS_PER_WORKER;
}

/* rc: what fn or accumulate returned on this thread, called when the thread's error serial was
 * `serial`. */
static void baton__loop_fail(baton__loop *loop, int rc, uint64_t serial)
{
    int expected = 0;
    /* acq_rel only so that one error wins; the value is read after the fork-joins, whose
     * latches order it anyway. */
    if (baton__cas_strong_acq_rel(&loop->first_error, &expected, rc))
        baton__work_error_message(loop->message, sizeof loop->message, loop->call,
                                  loop->ops != NULL ? "accumulate" : "fn", rc, serial);
    baton__store_relaxed(&loop->cancelled, 1);
}

/* The loop's result on the caller's thread, with the message of the error that won. */
static int baton__loop_result(baton__loop *loop)
{
    int rc = baton__load_relaxed(&loop->first_error);
    if (rc != 0)
        baton__error(rc, "%s", loop->message);
    return rc;
}

static bool baton__loop_cancelled(baton__loop *loop)
{
    return baton__load_relaxed(&loop->cancelled) != 0;
}

/* The split budget of a forked half: what its parent gave it, or, when a thief took it, at
 * least one piece per worker again (the thief's arrival shows there are idle workers). */
static unsigned baton__fork_splits(const baton__loop *loop, unsigned splits, bool migrated)
{
    return migrated && splits < loop->split_budget ? loop->split_budget : splits;
}

static bool baton__should_split(const baton__loop *loop, size_t len, unsigned splits)
{
    if (loop->grain != 0)
        return len > loop->grain;
    return len > 1 && splits > 0;
}

/* ---- parallel_for ------------------------------------------------------------------------- */

typedef struct baton__for_piece {
    baton__fork fork; /* first: the fork is the piece */
    baton__loop *loop;
    size_t begin, end;
    unsigned splits;
} baton__for_piece;

static int baton__for_range(baton__worker *w, baton__loop *loop, size_t begin, size_t end,
                            unsigned splits);

static int baton__for_fork_run(baton__fork *fork, baton__worker *executor, bool migrated)
{
    baton__for_piece *piece = (baton__for_piece *)fork;
    return baton__for_range(executor, piece->loop, piece->begin, piece->end,
                            baton__fork_splits(piece->loop, piece->splits, migrated));
}

static int baton__for_left(baton__worker *w, void *arg)
{
    baton__for_piece *left = arg;
    return baton__for_range(w, left->loop, left->begin, left->end, left->splits);
}

static int baton__for_range(baton__worker *w, baton__loop *loop, size_t begin, size_t end,
                            unsigned splits)
{
    if (baton__loop_cancelled(loop))
        return 0;
    size_t len = end - begin;
    if (!baton__should_split(loop, len, splits)) {
        uint64_t serial = baton__error_serial;
        int rc = loop->fn(begin, end, loop->ctx);
        if (rc != 0)
            baton__loop_fail(loop, rc, serial);
        return 0;
    }
    size_t mid = begin + len / 2;
    unsigned half = splits / 2;
    baton__for_piece left = {.loop = loop, .begin = begin, .end = mid, .splits = half};
    baton__for_piece right = {.loop = loop, .begin = mid, .end = end, .splits = half};
    right.fork.run = baton__for_fork_run;
    (void)baton__fork_join(w, &right.fork, baton__for_left, &left);
    return 0;
}

typedef struct baton__for_args {
    baton__loop *loop;
    size_t begin, end;
} baton__for_args;

static int baton__for_in(baton__worker *w, void *arg)
{
    baton__for_args *args = arg;
    args->loop->split_budget = baton__split_budget(w->pool);
    (void)baton__for_range(w, args->loop, args->begin, args->end, args->loop->split_budget);
    return baton__loop_result(args->loop);
}

static void baton__loop_init(baton__loop *loop, const char *call, baton_range_fn fn, void *ctx,
                             size_t grain)
{
    memset(loop, 0, offsetof(baton__loop, message));
    loop->call = call;
    loop->fn = fn;
    loop->ctx = ctx;
    loop->grain = grain;
    atomic_init(&loop->first_error, 0);
    atomic_init(&loop->cancelled, 0);
}

int baton_parallel_for(baton_pool *pool, size_t begin, size_t end, size_t grain,
                       baton_range_fn fn, void *ctx)
{
    if (pool == NULL || fn == NULL)
        return baton__error(BATON_EINVAL, "baton_parallel_for: pool and fn must not be NULL");
    if (begin > end)
        return baton__error(BATON_EINVAL, "baton_parallel_for: begin (%zu) > end (%zu)", begin,
                            end);
    if (begin == end)
        return 0;
    baton__loop loop;
    baton__loop_init(&loop, "baton_parallel_for", fn, ctx, grain);
    baton__for_args args = {&loop, begin, end};
    baton__worker *w = baton__current;
    if (w != NULL && w->pool == pool)
        return baton__for_in(w, &args);
    return baton__call(pool, baton__for_in, &args);
}

/* ---- parallel_reduce ---------------------------------------------------------------------- */

typedef struct baton__reduce_piece {
    baton__fork fork;
    baton__loop *loop;
    size_t begin, end; /* indices, or chunk numbers in deterministic mode */
    unsigned splits;
    void *acc;
    alignas(max_align_t) unsigned char value[BATON_REDUCE_MAX_VALUE_SIZE];
} baton__reduce_piece;

static void baton__reduce_range(baton__worker *w, baton__loop *loop, size_t begin, size_t end,
                                unsigned splits, void *acc);

static int baton__reduce_fork_run(baton__fork *fork, baton__worker *executor, bool migrated)
{
    baton__reduce_piece *piece = (baton__reduce_piece *)fork;
    baton__reduce_range(executor, piece->loop, piece->begin, piece->end,
                        baton__fork_splits(piece->loop, piece->splits, migrated), piece->acc);
    return 0;
}

static int baton__reduce_left(baton__worker *w, void *arg)
{
    baton__reduce_piece *left = arg;
    baton__reduce_range(w, left->loop, left->begin, left->end, left->splits, left->acc);
    return 0;
}

/* Folds [begin, end) into acc, which already holds everything left of begin. */
static void baton__reduce_range(baton__worker *w, baton__loop *loop, size_t begin, size_t end,
                                unsigned splits, void *acc)
{
    if (baton__loop_cancelled(loop))
        return;
    const baton_reduce_ops *ops = loop->ops;
    size_t len = end - begin;
    if (!baton__should_split(loop, len, splits)) {
        uint64_t serial = baton__error_serial;
        int rc = ops->accumulate(begin, end, acc, loop->ctx);
        if (rc != 0)
            baton__loop_fail(loop, rc, serial);
        return;
    }
    size_t mid = begin + len / 2;
    unsigned half = splits / 2;
    baton__reduce_piece left = {.loop = loop, .begin = begin, .end = mid, .splits = half,
                                .acc = acc};
    baton__reduce_piece right = {.loop = loop, .begin = mid, .end = end, .splits = half};
    right.acc = right.value;
    ops->identity(right.acc, loop->ctx);
    right.fork.run = baton__reduce_fork_run;
    (void)baton__fork_join(w, &right.fork, baton__reduce_left, &left);
    if (!baton__loop_cancelled(loop))
        ops->combine(acc, right.acc, loop->ctx);
}

/* Deterministic mode: [first_chunk, last_chunk) into acc, which holds the identity. */
static void baton__reduce_chunks(baton__worker *w, baton__loop *loop, size_t first_chunk,
                                 size_t last_chunk, void *acc);

static int baton__chunks_fork_run(baton__fork *fork, baton__worker *executor, bool migrated)
{
    (void)migrated;
    baton__reduce_piece *piece = (baton__reduce_piece *)fork;
    baton__reduce_chunks(executor, piece->loop, piece->begin, piece->end, piece->acc);
    return 0;
}

static int baton__chunks_left(baton__worker *w, void *arg)
{
    baton__reduce_piece *left = arg;
    baton__reduce_chunks(w, left->loop, left->begin, left->end, left->acc);
    return 0;
}

static void baton__reduce_chunks(baton__worker *w, baton__loop *loop, size_t first_chunk,
                                 size_t last_chunk, void *acc)
{
    if (baton__loop_cancelled(loop))
        return;
    const baton_reduce_ops *ops = loop->ops;
    if (last_chunk - first_chunk == 1) {
        size_t begin = loop->begin + first_chunk * loop->grain;
        size_t end = loop->end - begin > loop->grain ? begin + loop->grain : loop->end;
        uint64_t serial = baton__error_serial;
        int rc = ops->accumulate(begin, end, acc, loop->ctx);
        if (rc != 0)
            baton__loop_fail(loop, rc, serial);
        return;
    }
    size_t mid = first_chunk + (last_chunk - first_chunk) / 2;
    baton__reduce_piece left = {.loop = loop, .begin = first_chunk, .end = mid, .acc = acc};
    baton__reduce_piece right = {.loop = loop, .begin = mid, .end = last_chunk};
    right.acc = right.value;
    ops->identity(right.acc, loop->ctx);
    right.fork.run = baton__chunks_fork_run;
    (void)baton__fork_join(w, &right.fork, baton__chunks_left, &left);
    if (!baton__loop_cancelled(loop))
        ops->combine(acc, right.acc, loop->ctx);
}

typedef struct baton__reduce_args {
    baton__loop *loop;
    size_t begin, end;
    void *acc;
} baton__reduce_args;

static int baton__reduce_in(baton__worker *w, void *arg)
{
    baton__reduce_args *args = arg;
    baton__loop *loop = args->loop;
    loop->split_budget = baton__split_budget(w->pool);
    if (loop->ops->flags & BATON_REDUCE_DETERMINISTIC) {
        size_t len = args->end - args->begin;
        size_t n_chunks = len / loop->grain + (len % loop->grain != 0);
        baton__reduce_chunks(w, loop, 0, n_chunks, args->acc);
    } else {
        baton__reduce_range(w, loop, args->begin, args->end, loop->split_budget, args->acc);
    }
    return baton__loop_result(loop);
}

int baton_parallel_reduce(baton_pool *pool, size_t begin, size_t end, size_t grain,
                          const baton_reduce_ops *ops, void *ctx, void *out_value)
{
    if (pool == NULL || ops == NULL || out_value == NULL)
        return baton__error(BATON_EINVAL, "baton_parallel_reduce: pool, ops and out_value must "
                            "not be NULL");
    if (ops->identity == NULL || ops->accumulate == NULL || ops->combine == NULL)
        return baton__error(BATON_EINVAL, "baton_parallel_reduce: ops->identity, accumulate and "
                            "combine must all be set");
    if (ops->value_size == 0 || ops->value_size > BATON_REDUCE_MAX_VALUE_SIZE)
        return baton__error(BATON_EINVAL, "baton_parallel_reduce: value_size = %zu, must be 1 to "
                            "BATON_REDUCE_MAX_VALUE_SIZE (%d)", ops->value_size,
                            BATON_REDUCE_MAX_VALUE_SIZE);
    if (ops->flags & ~(unsigned)BATON_REDUCE_DETERMINISTIC)
        return baton__error(BATON_EINVAL, "baton_parallel_reduce: unknown flags 0x%x",
                            ops->flags & ~(unsigned)BATON_REDUCE_DETERMINISTIC);
    if (begin > end)
        return baton__error(BATON_EINVAL, "baton_parallel_reduce: begin (%zu) > end (%zu)",
                            begin, end);

    alignas(max_align_t) unsigned char acc[BATON_REDUCE_MAX_VALUE_SIZE];
    ops->identity(acc, ctx);
    if (begin == end) {
        memcpy(out_value, acc, ops->value_size);
        return 0;
    }
    if ((ops->flags & BATON_REDUCE_DETERMINISTIC) && grain == 0)
        grain = BATON_REDUCE_DEFAULT_DETERMINISTIC_GRAIN;

    baton__loop loop;
    baton__loop_init(&loop, "baton_parallel_reduce", NULL, ctx, grain);
    loop.ops = ops;
    loop.begin = begin;
    loop.end = end;
    baton__reduce_args args = {&loop, begin, end, acc};
    int rc;
    baton__worker *w = baton__current;
    if (w != NULL && w->pool == pool)
        rc = baton__reduce_in(w, &args);
    else
        rc = baton__call(pool, baton__reduce_in, &args);
    if (rc == 0)
        memcpy(out_value, acc, ops->value_size);
    return rc;
}
