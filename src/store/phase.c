/*
 * phase.c — handing every shard to exactly one lane under the store's policy, and
 * baton_store_update_all on top of it.
 *
 * A lane is one sequential stream of shard work with buffers of its own (see tick.c). DYNAMIC
 * and STATIC run one pool task per worker, lane = task index. Lane i's block is the i-th of n
 * contiguous runs of shards. STATIC's lane processes its block; DYNAMIC's claims its block's
 * shards through the block's cursor and then helps with the others' (one relaxed increment per
 * shard: it only hands out numbers, and the pool's completion orders the data). DEDICATED's lanes
 * are the crew's threads, lane i always the same thread, with STATIC's assignment, so a shard
 * always returns to the thread (and cache) that had it last.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/os.h"
#include "store/internal.h"

typedef struct phase {
    baton_store *store;
    baton__shard_fn fn;
    void *arg;
    unsigned lanes;
    baton_store_policy policy;
} phase;

/* The first shard of lane i's block: lanes take contiguous blocks, because two threads streaming
 * through interleaved shards run far slower than through a half of memory each (on the machine
 * of docs/benchmarks.md, 187 KB pieces taken alternately went at 670 passes/s, from a shared
 * counter at 920, and as one contiguous half per thread at 1240). */
static unsigned block_first(unsigned lane, unsigned lanes, unsigned shards)
{
    return (unsigned)((uint64_t)lane * shards / lanes);
}

static void run_lane(phase *ph, unsigned lane)
{
    baton_store *store = ph->store;
    unsigned n = store->n_shards;

    if (ph->policy == BATON_STORE_DYNAMIC) {
        /* Own block first, then what is left of the others', each through its cursor: every
         * fetch_add below its block's end hands out one shard exactly once. */
        for (unsigned k = 0; k < ph->lanes; k++) {
            unsigned b = (lane + k) % ph->lanes;
            unsigned end = block_first(b + 1, ph->lanes, n);
            unsigned s;
            while ((s = atomic_fetch_add_explicit(&store->cursors[b].next, 1,
                                                  memory_order_relaxed)) < end)
                ph->fn(store, lane, s, ph->arg);
        }
    } else {
        unsigned end = block_first(lane + 1, ph->lanes, n);
        for (unsigned s = block_first(lane, ph->lanes, n); s < end; s++)
            ph->fn(store, lane, s, ph->arg);
    }
}

static int lane_task(size_t begin, size_t end, void *ctx)
{
    for (size_t lane = begin; lane < end; lane++)
        run_lane(ctx, (unsigned)lane);
    return 0;
}

static void crew_lane(unsigned member, void *ctx)
{
    run_lane(ctx, member);
}

static unsigned pool_lanes(const baton_store *store)
{
    return store->pool != NULL ? baton_pool_workers(store->pool) : 1;
}

static int start_crew(baton_store *store)
{
    unsigned n = store->executors_wanted;
    if (n == 0)
        n = store->pool != NULL ? baton_pool_workers(store->pool) : baton__cpu_count();
    if (n == 0)
        n = 1;
    return baton__crew_create(n, "baton-shard", (store->flags & BATON_STORE_PIN_EXECUTORS) != 0,
                              &store->crew);
}

int baton__store_lane_count(baton_store *store, unsigned *out_lanes)
{
    if (store->policy != BATON_STORE_DEDICATED) {
        *out_lanes = pool_lanes(store);
        return 0;
    }
    if (store->crew == NULL) {
        int rc = start_crew(store);
        if (rc != 0)
            return rc;
    }
    *out_lanes = baton__crew_size(store->crew);
    return 0;
}

int baton__store_each_shard(baton_store *store, baton__shard_fn fn, void *arg, bool fixed_blocks)
{
    phase ph = {.store = store, .fn = fn, .arg = arg, .policy = store->policy};
    int rc = baton__store_lane_count(store, &ph.lanes);

    if (rc != 0)
        return rc;
    if (fixed_blocks && ph.policy == BATON_STORE_DYNAMIC)
        ph.policy = BATON_STORE_STATIC;
    if (ph.policy == BATON_STORE_DYNAMIC) {
        if (store->n_cursors < ph.lanes) {
            baton__cursor *cursors = baton__aligned_alloc(64, (size_t)ph.lanes * sizeof *cursors);
            if (cursors == NULL)
                return BATON_ENOMEM;
            baton__free(store->cursors);
            store->cursors = cursors;
            store->n_cursors = ph.lanes;
        }
        for (unsigned l = 0; l < ph.lanes; l++)
            atomic_init(&store->cursors[l].next, block_first(l, ph.lanes, store->n_shards));
    }
    if (ph.policy == BATON_STORE_DEDICATED) {
        baton__crew_run(store->crew, crew_lane, &ph);
        return 0;
    }
    if (store->pool == NULL || ph.lanes == 1) {
        run_lane(&ph, 0);
        return 0;
    }
    rc = baton_parallel_for(store->pool, 0, ph.lanes, 1, lane_task, &ph);
    return rc;
}

typedef struct update_call {
    baton_store_update_fn fn;
    void *ctx;
} update_call;

static void update_shard(baton_store *store, unsigned lane, unsigned s, void *arg)
{
    const update_call *call = arg;
    baton__shard *shard = &store->shards[s];
    (void)lane;
    shard->phase_error = shard->count == 0
                             ? 0
                             : call->fn(shard->ids, shard->payloads, shard->count, s, call->ctx);
}

int baton_store_update_all(baton_store *store, baton_store_update_fn fn, void *ctx)
{
    update_call call = {.fn = fn, .ctx = ctx};
    int rc;

    if (store == NULL || fn == NULL)
        return baton__error(BATON_EINVAL, "baton_store_update_all: %s is NULL",
                            store == NULL ? "store" : "fn");
    if (atomic_load_explicit(&store->in_tick, memory_order_relaxed))
        return baton__error(BATON_EINVAL, "baton_store_update_all: called during a tick");
    atomic_store_explicit(&store->in_tick, 1, memory_order_relaxed);
    rc = baton__store_each_shard(store, update_shard, &call, false);
    atomic_store_explicit(&store->in_tick, 0, memory_order_relaxed);
    if (rc != 0)
        return baton__error(rc, "baton_store_update_all: %s", baton_strerror(rc));
    for (unsigned s = 0; s < store->n_shards; s++) {
        rc = store->shards[s].phase_error;
        if (rc != 0)
            return baton__error(rc, "baton_store_update_all: fn returned %d (%s) on shard %u",
                                rc, baton_strerror(rc), s);
    }
    return 0;
}
