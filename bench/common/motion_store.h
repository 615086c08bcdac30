/*
 * motion_store.h — a baton_store of the motion workload's entities in their initial state
 * (workloads.h), as `baton demo`'s sharded row and `baton-bench store` tick it. Public API only.
 */
#ifndef BATON_BENCH_MOTION_STORE_H
#define BATON_BENCH_MOTION_STORE_H

#include <stddef.h>

#include "baton/store.h"

/*
 * Creates a store of motion payloads on `pool` under `policy` (with `executors` dedicated
 * executors; 0: one per worker) holding entities 0 .. entities-1 in their initial state, packs it
 * (baton_store_compact, as baton/store.h advises after loading) and runs one untimed pass that
 * touches every shard. Returns 0 and the store in *out_store, or the failing call's error after
 * reporting it (cmdline_report_error); nothing is left behind then.
 */
int motion_store_create(baton_pool *pool, baton_store_policy policy, unsigned executors,
                        size_t entities, baton_store **out_store);

#endif /* BATON_BENCH_MOTION_STORE_H */
