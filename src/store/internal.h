/*
 * internal.h — the store's internal types: shards (dense entity arrays and their index), queued
 * rewrites and their footprints, the per-lane buffers of a tick, and the store itself; and the
 * functions the store's files define for one another.
 *
 * Ownership. Between calls everything belongs to the driving thread. During a phase of
 * baton_store_update_all or baton_store_tick, shard s (its arrays, index, queue and scratch)
 * belongs to the one lane that processes s, and lane l's buffers belong to lane l; phases are
 * separated by the pool's or the crew's completion, which orders everything written in one phase
 * before everything read in the next. A few things are read across shards inside a phase, and
 * then nobody writes them during that phase: the indexes and payloads during a tick (nothing is
 * written to a payload before the merge, the last phase), and footprint entries that a later
 * phase reads through a claim.
 */
#ifndef BATON_STORE_INTERNAL_H
#define BATON_STORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/store.h"
#include "store/crew.h"

/* An index slot: an id and the entity's position in the shard's dense arrays. */
typedef struct baton__index_slot {
    uint64_t id;
    uint32_t pos; /* BATON__EMPTY_POS: free slot */
} baton__index_slot;

#define BATON__EMPTY_POS UINT32_MAX
/* Most entities one shard holds: the index, at most half full, then has 2^31 slots, the most
 * a 32-bit mask addresses. */
#define BATON__SHARD_MAX_ENTITIES (UINT32_C(1) << 30)

/* One id of a queued rewrite's footprint. Written by the submitting thread, then during a tick
 * by: P1 (the rewrite's lane: pos, payload), P2 (the id's shard's lane: blocked, winner), P3 (the
 * rewrite's lane: copy, commit); each phase reads what the earlier ones wrote. */
typedef struct baton__fp_entry {
    uint64_t id;
    const unsigned char *payload; /* P1: the entity's payload in its shard */
    unsigned char *copy;          /* P3: the rule's private copy, once opened for writing */
    uint64_t winner_seq;          /* P2: seq of the smallest-key rewrite that beat this claim */
    uint32_t pos;                 /* the entity's position in its shard: found at submit,
                                     found again in P1 only if the shard changed since */
    uint64_t generation;          /* the shard's generation when pos was found */
    uint64_t birth;               /* the entity's birth (baton__shard.births) at submit: an id
                                     removed and inserted again is another entity, which the
                                     rewrite must not touch */
    uint8_t write;                /* written (else only read) */
    uint8_t blocked;              /* P2: a smaller-key rewrite conflicts on this id */
    uint8_t commit;               /* P3: the rule returned 0; the merge applies copy */
} baton__fp_entry;

/* A queued rewrite. Its footprint is entries[first .. first + n_writes + n_reads) of its shard's
 * queue: the written ids sorted, then the read-only ids sorted. */
typedef struct baton__queued {
    uint64_t scope;
    uint64_t seq;
    uint64_t arg;
    uint32_t rule;
    uint32_t n_writes;
    uint32_t n_reads;
    uint32_t first;
    int status;           /* of the last tick: 0, BATON_ECONFLICT, BATON_ENOTFOUND, rule's */
    uint64_t conflict_id; /* BATON_ECONFLICT: smallest blocked id, and its winner's seq */
    uint64_t winner_seq;
} baton__queued;

/* A shard's queue of rewrites: records and their footprint entries, each a growable array. */
typedef struct baton__queue {
    baton__queued *items;
    size_t count, capacity;
    baton__fp_entry *entries;
    size_t n_entries, entries_capacity;
} baton__queue;

/* A footprint id's claim, handed from the rewrite's lane (P1) to the id's shard (P2, P4). */
typedef struct baton__claim {
    uint64_t scope;
    uint64_t seq;
    uint32_t rule;
    uint32_t pos;
    baton__fp_entry *entry;
} baton__claim;

typedef struct baton__claims {
    baton__claim *items;
    size_t count, capacity;
} baton__claims;

typedef struct baton__shard {
    /* Dense arrays: ids[i] and payloads + i * payload_size for i < count. */
    uint64_t *ids;
    unsigned char *payloads; /* 64-byte aligned */
    uint32_t count;
    uint32_t capacity;
    bool in_slab; /* ids and payloads live in the store's slabs (baton_store_compact) */
    /* Bumped by every insert and remove (which may move entities); a position found at the
     * same generation is still right, so a tick need not look up again what submit found. */
    uint64_t generation;
    /* births[i]: the generation the insert of entity i brought the shard to. No two entities
     * a shard ever held share one (64 bits do not wrap), so it tells an entity from a later
     * one with the same id. Its own allocation (births_capacity >= capacity), never in the
     * slabs: bulk updates do not stream through it. */
    uint64_t *births;
    uint32_t births_capacity;
    /* Open addressing with linear probing; index_mask + 1 slots (a power of two, at least twice
     * count), or none (index NULL) while the shard was never written. */
    baton__index_slot *index;
    uint32_t index_mask;

    /* Rewrites routed here. During a tick, `next` receives the ones deferred to the next tick
     * while `queue` is still read through claims; the two are swapped when the tick ends. */
    baton__queue queue;
    baton__queue next;
    /* P2 scratch: per position, the smallest-key claim on that entity, and the smallest-key
     * claim that writes it. Sized to capacity; only positions named by claims are touched. */
    const baton__claim **best_any;
    const baton__claim **best_write;
    uint32_t scratch_capacity;

    /* The rules' private copies: one slot of stage_stride bytes per written id of the queue,
     * reserved before a tick starts, so that a rule never meets an allocation failure. */
    unsigned char *stage;
    size_t stage_slots;

    int phase_error; /* update_all: fn's result for this shard; tick: allocation failure */
} baton__shard;

/* What one lane owns during a phase. The struct itself is written only when allocated; what the
 * lane writes (its claim buffers) lives in allocations of its own. */
typedef struct baton__lane {
    baton__claims *claims;  /* one per target shard, an allocation of the lane's own */
} baton__lane;

typedef struct baton__cursor {
    _Alignas(64) _Atomic uint32_t next;
} baton__cursor;

typedef struct baton__rule {
    baton_store_rule_fn fn;
    void *ctx;
} baton__rule;

struct baton_store {
    size_t payload_size;
    size_t stage_stride; /* payload_size rounded up to 16: a rule's copies are aligned */
    unsigned shard_bits;
    unsigned n_shards;
    unsigned flags;
    baton_pool *pool;
    baton_store_policy policy;
    baton_store_conflict_policy conflict;
    unsigned executors_wanted;
    size_t count;
    baton__shard *shards;
    /* baton_store_compact's storage: every shard's payloads one after another in shard order
     * (and likewise its ids), so that a pass over all shards streams through one block of
     * memory; a shard that outgrows its region moves to arrays of its own. */
    unsigned char *payload_slab;
    uint64_t *id_slab;

    baton__rule *rules;
    uint32_t n_rules, rules_capacity;
    uint64_t next_seq;
    uint64_t ticks;
    size_t pending;
    _Atomic uint32_t in_tick; /* set by the driver around a tick; read by guards anywhere */

    /* Scratch for submit (deduplicating a footprint); driver-owned. */
    uint64_t *scratch_ids;
    size_t scratch_capacity;
    uint32_t *scratch_pos;
    size_t scratch_pos_capacity;

    /* The outcomes of the last tick, room for every queued rewrite; driver-owned. */
    baton_rewrite_outcome *outcomes;
    size_t outcomes_capacity;

    /* Tick buffers, allocated on the first tick for `n_lanes` lanes. */
    baton__lane *lanes;
    unsigned n_lanes;

    baton__crew *crew; /* BATON_STORE_DEDICATED's executors, started on first use */

    /* Dynamic claiming: per lane, the next shard of its block nobody has taken in the current
     * phase (n_cursors of them, each on its own line). */
    baton__cursor *cursors;
    unsigned n_cursors;
};

/* What a rule's accessors work on: the rewrite, its footprint and the lane running it. */
struct baton_rewrite_ctx {
    baton_store *store;
    const baton__queued *rewrite;
    baton__fp_entry *entries; /* n_writes written ids (sorted), then n_reads read ids (sorted) */
    unsigned char *stage;     /* n_writes slots of store->stage_stride bytes, one per written id */
};

/* ---- inline, for every file of the store ---- */

/* baton_store_route's formula (store.h), inline for the paths that route every id. */
static inline unsigned baton__route(uint64_t id, unsigned shard_bits, unsigned flags)
{
    if (shard_bits > BATON_STORE_MAX_SHARD_BITS)
        shard_bits = BATON_STORE_MAX_SHARD_BITS;
    uint64_t bits = (flags & BATON_STORE_IDS_ARE_HASHES) ? id : baton_mix64(id);
    return (unsigned)(bits & ((UINT64_C(1) << shard_bits) - 1));
}

static inline baton__shard *baton__shard_for(const baton_store *store, uint64_t id)
{
    return &store->shards[baton__route(id, store->shard_bits, store->flags)];
}

static inline unsigned char *baton__shard_payload(const baton_store *store,
                                                  const baton__shard *shard, uint32_t pos)
{
    return shard->payloads + (size_t)pos * store->payload_size;
}

/* Key order of two rewrites: (rule, scope, seq). */
static inline bool baton__key_less(uint32_t rule_a, uint64_t scope_a, uint64_t seq_a,
                                   uint32_t rule_b, uint64_t scope_b, uint64_t seq_b)
{
    if (rule_a != rule_b)
        return rule_a < rule_b;
    if (scope_a != scope_b)
        return scope_a < scope_b;
    return seq_a < seq_b;
}

/*
 * The functions the store's files share, in sections named after the file that defines them.
 * crew.c is declared in store/crew.h; store.c, rewrite.c, fingerprint.c and motion.c define
 * public functions only.
 */

/* ---- shard.c ---- */

/* Position of id in shard, or BATON__EMPTY_POS. Reads only: safe from any thread while nobody
 * inserts or removes. */
uint32_t baton__shard_find(const baton_store *store, const baton__shard *shard, uint64_t id);
/* Appends id with payload and bumps the shard's generation, which becomes the entity's birth;
 * the caller checked that id is absent. BATON_ENOMEM, BATON_ERANGE (nothing changed), 0. */
int baton__shard_insert(baton_store *store, baton__shard *shard, uint64_t id, const void *payload);
/* Removes the entity at pos (moving the last one into its place) and bumps the generation. */
void baton__shard_remove_at(baton_store *store, baton__shard *shard, uint32_t pos);
/* Moves the shard's entities to ids and payloads (room for capacity >= count entities, owned by
 * the store's slabs, not the shard). */
void baton__shard_move_to_slab(baton_store *store, baton__shard *shard, uint64_t *ids,
                               unsigned char *payloads, uint32_t capacity);
/* Frees the shard's arrays, index, scratch and rewrite queues. */
void baton__shard_free(baton__shard *shard);

/* ---- phase.c ---- */

/* Runs fn(store, lane, shard, arg) once for every shard under the store's policy, each shard on
 * one lane; returns when all are done. With fixed_blocks, DYNAMIC's lanes take STATIC's blocks
 * (no helping), so that which lane handles which shard does not depend on timing: the claim
 * phase, whose lane buffers then hold the same claims in every identical tick and stop growing.
 * Returns 0, BATON_ECLOSED or BATON_ETHREAD (nothing ran). */
typedef void (*baton__shard_fn)(baton_store *store, unsigned lane, unsigned shard, void *arg);
int baton__store_each_shard(baton_store *store, baton__shard_fn fn, void *arg, bool fixed_blocks);
/* The number of lanes baton__store_each_shard uses under the current policy (starting the
 * dedicated executors if needed). Returns 0 or BATON_ETHREAD. */
int baton__store_lane_count(baton_store *store, unsigned *out_lanes);

/* ---- tick.c ---- */

/* Frees the lanes' claim buffers (baton_store_destroy; a tick that needs more lanes). */
void baton__store_free_lanes(baton_store *store);

#endif /* BATON_STORE_INTERNAL_H */
