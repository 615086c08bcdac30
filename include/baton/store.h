/*
 * baton/store.h — the store layer: entities with 64-bit ids and fixed-size payloads, split into
 * 2^k shards, each shard owned by one worker at a time; bulk updates shard by shard; rewrites
 * that declare a footprint and run in parallel when their footprints do not conflict.
 *
 * Routing. An entity's shard is a pure function of its id and the shard count:
 *
 *     shard(id) = baton_mix64(id) & (shards - 1)            (default)
 *     shard(id) = id & (shards - 1)                          (BATON_STORE_IDS_ARE_HASHES)
 *
 * baton_mix64 is defined in baton/core.h and will never change, so a shard number is the same on
 * every run, machine and version. Use BATON_STORE_IDS_ARE_HASHES when ids already are uniform
 * hashes (BLAKE3 or XXH3 output, say): their low bits are used directly.
 *
 * Storage. A shard keeps its entities in two dense arrays, ids and payloads (payload i of a shard
 * is at offset i * payload_size), and an open-addressing index from id to position. There are no
 * per-entity nodes: a shard's payloads are one contiguous block that a bulk update streams
 * through. Removing an entity moves the shard's last entity into its place.
 *
 * Threads. One thread at a time drives a store: it inserts, removes, submits rewrites and runs
 * ticks and bulk updates (calls that read it, baton_store_get and friends, may run concurrently
 * with each other but not with those). The parallelism is inside baton_store_update_all and
 * baton_store_tick: during them each shard is processed by exactly one worker, which touches its
 * entities without locks or atomic read-modify-writes. How shards are given to workers is the
 * store's policy (baton_store_policy).
 *
 * Rewrites. A rewrite is a rule (registered with baton_store_add_rule), a scope id, an argument,
 * and a footprint: the ids it reads and the ids it writes, all of which must exist. Submitting
 * routes it to the queue of its scope's shard. A tick runs every queued rewrite whose footprint
 * does not conflict with that of a rewrite with a smaller key, where
 *
 *     key = (rule, scope, seq)      compared in that order; seq numbers submissions from 0
 *
 * and two rewrites conflict when one writes an id the other reads or writes. A rewrite that
 * loses a conflict is deferred to the next tick, keeping its key (so it keeps its place in key
 * order: it beats later submissions of the same rule and scope), or rejected, as the store's
 * conflict policy says. A rewrite whose footprint names an id removed since it was submitted
 * fails with BATON_ENOTFOUND and takes no part in conflicts. Every rewrite that runs
 * sees the state as it was when the tick began; its writes are staged and merged into the
 * shards in key order after all rules of the tick have run, and a rule that fails has none of
 * its writes applied. So the state after a tick is the same for any number of workers, any
 * shard count and any policy, and equals running the tick's accepted rewrites one after another
 * in key order.
 */
#ifndef BATON_STORE_H
#define BATON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/core.h"
#include "baton/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct baton_store baton_store;

/* shard_bits when the config leaves it 0: 256 shards. */
#define BATON_STORE_DEFAULT_SHARD_BITS 8
/* Upper bound on shard_bits (65536 shards). */
#define BATON_STORE_MAX_SHARD_BITS 16
/* Upper bound on payload_size. */
#define BATON_STORE_MAX_PAYLOAD_SIZE (1u << 20)
/* Upper bound on the ids one rewrite's footprint names (reads + writes). */
#define BATON_STORE_MAX_FOOTPRINT 4096
/* Upper bound on the dedicated executors of BATON_STORE_DEDICATED. */
#define BATON_STORE_MAX_EXECUTORS 1024

/* Flags for baton_store_config.flags. */
enum {
    /* Ids are already uniform hashes: route by their low bits, without mixing. */
    BATON_STORE_IDS_ARE_HASHES = 1u << 0,
    /* Pin dedicated executor i to logical CPU i (modulo the CPUs this process may use). */
    BATON_STORE_PIN_EXECUTORS = 1u << 1,
};

/* Who processes which shard during baton_store_update_all and baton_store_tick. */
typedef enum baton_store_policy {
    /* Pool tasks, one per worker. Task i starts on the i-th of n contiguous blocks of shards,
     * taking its next shard nobody has taken yet (one atomic increment per shard), then helps
     * with what is left of the other blocks: the load balances itself when shards differ in
     * cost, and each thread still streams through memory of its own. (The first phase of a
     * tick, which only looks footprint ids up, keeps each task to its own block, as STATIC
     * does: so each task's buffers see the same claims in identical ticks, and a tick in
     * steady state allocates nothing; see docs/store.md.) */
    BATON_STORE_DYNAMIC = 0,
    /* Pool tasks, one per worker; task i processes the i-th of n contiguous blocks of shards,
     * shards [i * shards / n, (i + 1) * shards / n). */
    BATON_STORE_STATIC = 1,
    /* The store's own executor threads, executor i owning STATIC's block i for the store's
     * life and fed through its own queue: a shard is always processed by the same thread (and
     * core, with BATON_STORE_PIN_EXECUTORS): one queue per executor, so per CPU when pinned. */
    BATON_STORE_DEDICATED = 2,
} baton_store_policy;

/* What a tick does with a rewrite that lost a conflict. */
typedef enum baton_store_conflict_policy {
    BATON_STORE_DEFER = 0,  /* keep it, with its key, for the next tick */
    BATON_STORE_REJECT = 1, /* drop it; the outcome says so */
} baton_store_conflict_policy;

/* Store options. Zero means "default" for every field but payload_size. */
typedef struct baton_store_config {
    /* sizeof this struct, or 0 for this header's size. A smaller size (a caller built against an
     * older header) leaves the later fields at their defaults, unread; a size larger than this
     * header's, or smaller than sizeof(size_t), is BATON_EINVAL. */
    size_t struct_size;
    size_t payload_size;  /* bytes per entity, 1 .. BATON_STORE_MAX_PAYLOAD_SIZE; required */
    unsigned shard_bits;  /* 2^shard_bits shards; 0: BATON_STORE_DEFAULT_SHARD_BITS */
    unsigned flags;       /* BATON_STORE_* flags */
    baton_pool *pool;     /* runs the DYNAMIC and STATIC policies; borrowed, must outlive the
                             store. NULL: the driving thread processes every shard itself. */
    baton_store_policy policy;            /* default BATON_STORE_DYNAMIC */
    baton_store_conflict_policy conflict; /* default BATON_STORE_DEFER */
    unsigned executors;   /* DEDICATED: executor threads; 0: the pool's workers, or one per CPU
                             without a pool. They start on the first call that needs them. */
} baton_store_config;

/*
 * The shard of `id` among 2^shard_bits shards under `flags` (only BATON_STORE_IDS_ARE_HASHES
 * matters), by the formula at the top of this header. Pure; shard_bits above
 * BATON_STORE_MAX_SHARD_BITS is clamped to it.
 */
BATON_API unsigned baton_store_route(uint64_t id, unsigned shard_bits, unsigned flags);

/*
 * Creates an empty store. On success stores it in *out and returns 0; destroy it with
 * baton_store_destroy. Errors: BATON_EINVAL (NULL config or out, payload_size 0 or too large,
 * shard_bits, executors, flags, policy or conflict out of range, struct_size larger than this
 * header's or smaller than sizeof(size_t)), BATON_ENOMEM.
 */
BATON_API int baton_store_create(const baton_store_config *config, baton_store **out);

/* Frees the store, its entities, queued rewrites and executor threads. NULL is ignored. Must not
 * run concurrently with any other call on the store. */
BATON_API void baton_store_destroy(baton_store *store);

/* Number of shards (2^shard_bits), payload size and number of entities. */
BATON_API unsigned baton_store_shards(const baton_store *store);
BATON_API size_t baton_store_payload_size(const baton_store *store);
BATON_API size_t baton_store_count(const baton_store *store);
/* Entities in shard `shard` (0 when it is out of range). */
BATON_API size_t baton_store_shard_size(const baton_store *store, unsigned shard);
/* The shard of `id` in this store (baton_store_route with the store's shard_bits and flags). */
BATON_API unsigned baton_store_shard_of(const baton_store *store, uint64_t id);

/*
 * Changes the policy used by later calls of baton_store_update_all and baton_store_tick.
 * Errors: BATON_EINVAL (NULL store, unknown policy, or called during a tick).
 */
BATON_API int baton_store_set_policy(baton_store *store, baton_store_policy policy);

/*
 * Inserts entity `id` with a copy of `size` bytes at `payload`. Errors, each leaving the store as
 * it was: BATON_EINVAL (NULL store or payload, size not the store's payload_size, or called
 * during a tick), BATON_EEXIST (id already present), BATON_ENOMEM, BATON_ERANGE (the id's shard
 * holds 2^30 entities already).
 */
BATON_API int baton_store_insert(baton_store *store, uint64_t id, const void *payload, size_t size);

/*
 * Removes entity `id`. Errors: BATON_EINVAL (NULL store, or called during a tick), BATON_ENOTFOUND
 * (no such id). Queued rewrites that name it fail with BATON_ENOTFOUND when their tick comes, even
 * if an entity with the same id was inserted since: that is another entity.
 */
BATON_API int baton_store_remove(baton_store *store, uint64_t id);

/*
 * Packs the store: every shard's entities go into one block of memory, shard after shard in
 * shard order, each shard's payloads directly after the previous non-empty shard's (with at most
 * 63 bytes between the end of one and the start of the next, to keep each shard's first payload
 * aligned to 64 bytes), for any payload size. A pass over all shards
 * then streams through memory like a pass over one flat array. Call it after loading: shards
 * grown one insert at a time live in separate allocations, and on the machine of
 * docs/benchmarks.md updating 256 such shards is 10-20% slower than updating them packed (4096
 * shards: three times slower); holes between the shards cost as much, so packing leaves no room
 * to grow: an insert that makes a shard larger than it was when packed moves that shard to memory
 * of its own (the other shards stay packed). Pointers from
 * baton_store_lookup are invalidated. Errors: BATON_EINVAL (NULL store, or during a tick),
 * BATON_ENOMEM (the store is left as it was; it needs a copy of the ids and payloads).
 */
BATON_API int baton_store_compact(baton_store *store);

/* Whether entity `id` exists. */
BATON_API bool baton_store_contains(const baton_store *store, uint64_t id);

/*
 * Copies entity `id`'s payload (`size` bytes, which must be the payload size) to `out`.
 * Errors: BATON_EINVAL (NULL argument, size mismatch), BATON_ENOTFOUND.
 */
BATON_API int baton_store_get(const baton_store *store, uint64_t id, void *out, size_t size);

/*
 * Stores in *payload a pointer to entity `id`'s payload inside the store, for reading or writing
 * in place. The pointer stays valid until the next insert, remove, compact or tick. Errors:
 * BATON_EINVAL (NULL argument), BATON_ENOTFOUND (*payload is then NULL).
 */
BATON_API int baton_store_lookup(baton_store *store, uint64_t id, void **payload);

/*
 * Calls fn(id, payload, ctx) for every entity, shard by shard (0 first) and within a shard in
 * storage order, on the calling thread. fn returning non-zero stops the walk and that value is
 * returned. fn must not insert or remove. Errors: BATON_EINVAL (NULL store or fn).
 */
typedef int (*baton_store_visit_fn)(uint64_t id, const void *payload, void *ctx);
BATON_API int baton_store_foreach(const baton_store *store, baton_store_visit_fn fn, void *ctx);

/*
 * The state's fingerprint: XXH3-64 (seed 0) of the concatenation, over entities in increasing
 * id order, of the id as 8 little-endian bytes followed by the payload. It depends only on the
 * set of (id, payload) pairs, not on shard count, policy or history. Errors: BATON_EINVAL,
 * BATON_ENOMEM (it sorts a copy of the ids: 16 bytes per entity).
 */
BATON_API int baton_store_fingerprint(const baton_store *store, uint64_t *out);

/*
 * A bulk update: called with a run of `count` consecutive entities of one shard, their ids and
 * their payloads (count * payload_size contiguous bytes, the first aligned to 64 bytes), which
 * it may modify in place. Returns 0 or an error. It runs on the shard's owner for this call and
 * must not call into the store.
 */
typedef int (*baton_store_update_fn)(const uint64_t *ids, void *payloads, size_t count,
                                     unsigned shard, void *ctx);

/*
 * Applies fn to every entity, shard by shard, in parallel under the store's policy: each shard
 * is one call of fn, made by exactly one worker. Every shard is
 * processed even when one fails, so the resulting state does not depend on timing; the error of
 * the lowest-numbered failing shard is returned. Errors: BATON_EINVAL (NULL store or fn, or
 * called during a tick), BATON_ECLOSED (the pool is shutting down), BATON_ETHREAD (dedicated
 * executors could not start), BATON_ENOMEM (nothing ran), fn's error.
 */
BATON_API int baton_store_update_all(baton_store *store, baton_store_update_fn fn, void *ctx);

/* ---- rewrites ---- */

typedef struct baton_rewrite_ctx baton_rewrite_ctx;

/* A rule: reads and writes entities of its rewrite's footprint through baton_rewrite_read and
 * baton_rewrite_write, and returns 0 to commit its writes or an error to drop them all. It runs
 * on some worker during baton_store_tick, concurrently with other rules, and must not call into
 * the store except through `rc`. */
typedef int (*baton_store_rule_fn)(baton_rewrite_ctx *rc, void *rule_ctx);

/*
 * Registers a rule and stores its number in *out_rule: rules are numbered 0, 1, 2, ... in
 * registration order, and the number is the first part of a rewrite's key. Errors: BATON_EINVAL
 * (NULL argument, or during a tick), BATON_ENOMEM.
 */
BATON_API int baton_store_add_rule(baton_store *store, baton_store_rule_fn fn, void *rule_ctx,
                                   uint32_t *out_rule);

/* A rewrite to submit. The store copies the footprint; ids may repeat, and an id both read and
 * written counts as written. */
typedef struct baton_rewrite {
    uint32_t rule;          /* from baton_store_add_rule */
    uint64_t scope;         /* routes the rewrite to shard_of(scope); any id, need not exist */
    uint64_t arg;           /* handed to the rule through baton_rewrite_arg */
    const uint64_t *reads;  /* ids read; NULL when n_reads is 0 */
    uint32_t n_reads;
    const uint64_t *writes; /* ids written; NULL when n_writes is 0 */
    uint32_t n_writes;
} baton_rewrite;

/*
 * Queues a rewrite for the next tick and stores its submission number (seq) in *out_seq when
 * out_seq is not NULL. Errors, each leaving the store as it was: BATON_EINVAL (NULL store or
 * rewrite, unknown rule, NULL footprint array with a non-zero count, footprint larger than
 * BATON_STORE_MAX_FOOTPRINT, or called during a tick), BATON_ENOTFOUND (a footprint id does not
 * exist; the message names it), BATON_ENOMEM.
 */
BATON_API int baton_store_submit(baton_store *store, const baton_rewrite *rewrite,
                                 uint64_t *out_seq);

/* Number of rewrites queued for the next tick (deferred ones included). */
BATON_API size_t baton_store_pending(const baton_store *store);

/* Inside a rule: its rewrite's scope, argument, rule number and submission number. */
BATON_API uint64_t baton_rewrite_scope(const baton_rewrite_ctx *rc);
BATON_API uint64_t baton_rewrite_arg(const baton_rewrite_ctx *rc);
BATON_API uint32_t baton_rewrite_rule(const baton_rewrite_ctx *rc);
BATON_API uint64_t baton_rewrite_seq(const baton_rewrite_ctx *rc);
BATON_API size_t baton_rewrite_payload_size(const baton_rewrite_ctx *rc);

/*
 * Inside a rule: *payload points to entity `id` as it was when the tick began, or, once the rule
 * has opened `id` for writing, to what it has written so far. Errors: BATON_EINVAL (NULL
 * argument), BATON_EPERM (id is not in the footprint).
 */
BATON_API int baton_rewrite_read(baton_rewrite_ctx *rc, uint64_t id, const void **payload);

/*
 * Inside a rule: *payload points to a private copy of entity `id` (holding its current value)
 * that the rule may change; the copy replaces the entity when the tick merges its writes, if the
 * rule returns 0. Errors: BATON_EINVAL (NULL argument), BATON_EPERM (id is not among the
 * rewrite's writes).
 */
BATON_API int baton_rewrite_write(baton_rewrite_ctx *rc, uint64_t id, void **payload);

/* What became of a rewrite that did not commit in a tick. */
typedef struct baton_rewrite_outcome {
    uint64_t seq;        /* its submission number */
    uint32_t rule;
    uint64_t scope;
    int status;          /* BATON_ECONFLICT (lost a conflict), BATON_ENOTFOUND (a footprint id
                            was removed), or the error its rule returned */
    bool deferred;       /* queued again for the next tick (BATON_STORE_DEFER, conflicts only) */
    uint64_t conflict_id;   /* ECONFLICT: the smallest contested id; ENOTFOUND: the smallest
                               missing id */
    uint64_t winner_seq;    /* ECONFLICT: seq of the smallest-key rewrite it conflicted with on
                               conflict_id */
} baton_rewrite_outcome;

typedef void (*baton_store_outcome_fn)(const baton_rewrite_outcome *outcome, void *ctx);

/* Counts of one tick. */
typedef struct baton_tick_report {
    uint64_t tick;       /* ticks run before this one */
    uint64_t considered; /* rewrites queued when the tick began */
    uint64_t committed;  /* rules that returned 0; their writes are merged */
    uint64_t deferred;   /* lost a conflict, queued again */
    uint64_t rejected;   /* lost a conflict, dropped (BATON_STORE_REJECT) */
    uint64_t failed;     /* rule error or vanished footprint id; dropped */
    uint64_t writes;     /* entity payloads replaced by the merge */
} baton_tick_report;

/*
 * Runs one tick: resolves conflicts among the queued rewrites, runs the winners' rules in
 * parallel (each on the owner of its scope's shard) and merges their writes in key order. Then
 * calls on_outcome (if not NULL) on the calling thread for every rewrite that did not commit,
 * in key order, and fills *report (if not NULL). Returns 0 even when rewrites failed or lost
 * (their outcomes say so); errors are BATON_EINVAL (NULL store, or called from a rule or
 * outcome callback), BATON_ENOMEM (the tick did nothing; the queue is as it was),
 * BATON_ECLOSED, BATON_ETHREAD.
 */
BATON_API int baton_store_tick(baton_store *store, baton_tick_report *report,
                               baton_store_outcome_fn on_outcome, void *ctx);

/* ---- the motion rule, the built-in example workload ---- */

/*
 * The motion payload: six little-endian Q32.32 fixed-point numbers, position x, y, z then
 * velocity x, y, z. One step adds velocity to position, saturating at the int64 limits. Integer
 * arithmetic: the result is bit-identical on every machine.
 */
#define BATON_MOTION_PAYLOAD_SIZE 48

/* Steps `count` consecutive motion payloads once. Written so that compilers vectorise it. */
BATON_API void baton_motion_step(void *payloads, size_t count);

/* A baton_store_update_fn that steps every payload of a store made with payload_size
 * BATON_MOTION_PAYLOAD_SIZE (ctx unused). */
BATON_API int baton_motion_update(const uint64_t *ids, void *payloads, size_t count,
                                  unsigned shard, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* BATON_STORE_H */
