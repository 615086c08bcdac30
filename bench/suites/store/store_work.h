/*
 * store_work.h — the in-process contenders of the store suite (`baton-bench store`): the motion
 * rule over a flat array (serially and with baton_parallel_for), over a
 * sharded baton_store, and the rewrite-heavy variant. Each measure function has the
 * bench_measure_fn signature: ctx is one of the case structs below, workers the pool size.
 *
 * Every contender steps entities with the store's own motion kernel (src/store/motion_kernel.h,
 * the code of baton_motion_step), so the rows differ in data layout and scheduling only. The
 * initial state is bench/common/workloads.h's motion_init_entity(i) for entity id i.
 */
#ifndef BATON_BENCH_STORE_WORK_H
#define BATON_BENCH_STORE_WORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/store.h"
#include "workloads.h"

/* ---- motion: every entity updated every tick ------------------------------------------------ */

/* `ticks` ticks of `entities` entities. `state` is the caller's buffer of entities * 48 bytes:
 * the flat contenders tick it in place, the sharded one copies the store's final state into it
 * (in id order) for the check; every measurement starts from motion_init again. */
typedef struct store_motion_case {
    unsigned char *state;
    size_t entities;
    unsigned ticks;
    uint64_t expected; /* motion_checksum after `ticks` serial ticks: store_motion_reference */
    uint64_t checksum; /* the last measurement's final motion_checksum (shown by the demo) */
} store_motion_case;

/* The sharded contender: a case and the store policy it runs under. */
typedef struct store_sharded_case {
    store_motion_case *mc;
    baton_store_policy policy;
} store_sharded_case;

/* The name of a policy as the JSON's "policy" field spells it: "dynamic", "static",
 * "dedicated". */
const char *store_policy_name(baton_store_policy policy);

/* The value of each is ticks per second. */
int store_measure_motion_serial(void *ctx, unsigned workers, double *out_value, bool *out_correct);
int store_measure_motion_pfor(void *ctx, unsigned workers, double *out_value, bool *out_correct);
int store_measure_motion_sharded(void *ctx, unsigned workers, double *out_value, bool *out_correct);

/* Runs `ticks` serial ticks from the initial state and returns the final motion_checksum (the
 * expected answer of every motion contender). Uses mc->state. */
uint64_t store_motion_reference(store_motion_case *mc, unsigned ticks);

/* ---- motion_conflicts: the rewrite-heavy variant ------------------------------------------ */

/*
 * Each tick: first the motion update of every entity; then every entity id chosen this tick
 * (store_conflict_chosen) submits one rewrite of the "interact" rule with scope id and footprint
 * writes {id, id + 1 mod N}: the two entities exchange their x velocities. Then the tick runs the
 * queued rewrites: one whose footprint meets that of a queued rewrite with a smaller key
 * (rule, scope, seq) is deferred, keeping its key, to the next tick. An entity chosen together
 * with its lower neighbour therefore loses, and so does one chosen twice before its first
 * rewrite ran (the older one wins). The value is rewrites committed per second, the motion
 * updates and the submissions included in the time.
 */
typedef struct store_conflict_case {
    unsigned char *state; /* entities * 48 bytes, as in store_motion_case */
    size_t entities;      /* at least 2 */
    unsigned ticks;
    unsigned percent; /* of the entities chosen each tick */
    /* The answer, from store_conflict_reference: */
    uint64_t expected;           /* motion_checksum of the final state */
    uint64_t expected_submitted; /* rewrites submitted over all ticks */
    uint64_t expected_committed; /* rewrites committed */
    uint64_t expected_deferrals; /* times a rewrite was deferred (one rewrite may be, often) */
    uint64_t expected_pending;   /* still queued after the last tick */
} store_conflict_case;

/* The sharded contender of motion_conflicts: the case and the store policy. */
typedef struct store_sharded_conflict_case {
    store_conflict_case *cc;
    baton_store_policy policy;
} store_sharded_conflict_case;

/* Whether entity `id` interacts with its neighbour in tick `tick`: a splitmix hash of both,
 * below `percent` of its range. The same choice for every contender. */
static inline bool store_conflict_chosen(unsigned tick, uint64_t id, unsigned percent)
{
    uint64_t h = motion_splitmix(((uint64_t)tick << 40) ^ id);
    return (h >> 32) * 100 < (uint64_t)percent << 32;
}

/* The values are committed rewrites per second. The serial one is a flat array and a sorted
 * queue that implement the store's semantics directly (store_work.c says how). */
int store_measure_conflict_serial(void *ctx, unsigned workers, double *out_value,
                                  bool *out_correct);
int store_measure_conflict_sharded(void *ctx, unsigned workers, double *out_value,
                                   bool *out_correct);

/* Runs the serial contender once and stores its results as the expected ones. Returns 0, or -1
 * (after a message) when memory ran out. */
int store_conflict_reference(store_conflict_case *cc);

#endif /* BATON_BENCH_STORE_WORK_H */
