/*
 * tick.c — baton_store_tick: four phases over the shards, each shard handled by one lane per
 * phase (phase.c), with the pool's or crew's completion between phases.
 *
 *  1. claim    (per shard s, its queue)  find every footprint id (shard, position, payload);
 *              a rewrite naming a removed entity (its id gone, or now another entity's, born
 *              since submit) fails with BATON_ENOTFOUND; the others post one claim per id to
 *              the id's shard, in the lane's own buffer for that shard.
 *  2. resolve  (per shard t, the claims on it)  for each entity: the smallest-key claim on it,
 *              and the smallest-key claim that writes it. A write claim loses unless it is the
 *              smallest claim on the entity; a read claim loses when a smaller claim writes it.
 *              Nothing here depends on the order claims arrived in, only on keys.
 *  3. execute  (per shard s, its queue)  a rewrite with a lost claim lost its conflict; the
 *              others run their rule, which reads payloads in place (nobody writes them in this
 *              phase) and writes private copies.
 *  4. merge    (per shard t)  the committed copies of the write claims on t replace the payloads.
 *              No two committed rewrites write one entity (phase 2 lets at most one write claim
 *              per entity win, and only when no other claim on it is smaller), so each entity
 *              is written at most once and the result cannot depend on which lane ran first.
 *              The same phase copies s's deferred rewrites into its next queue.
 *
 * The winners of a tick are pairwise free of conflicts (of two conflicting rewrites, the larger
 * loses its claim on the contested id), so running them in parallel equals running them one by
 * one in key order, each on the state the tick began with.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "store/internal.h"

/* ---- buffers ---- */

void baton__store_free_lanes(baton_store *store)
{
    for (unsigned l = 0; l < store->n_lanes; l++) {
        baton__lane *lane = &store->lanes[l];
        if (lane->claims != NULL)
            for (unsigned t = 0; t < store->n_shards; t++)
                baton__free(lane->claims[t].items);
        baton__free(lane->claims);
    }
    baton__free(store->lanes);
    store->lanes = NULL;
    store->n_lanes = 0;
}

static int ensure_lanes(baton_store *store, unsigned n)
{
    baton__lane *lanes;

    if (store->n_lanes >= n)
        return 0;
    baton__store_free_lanes(store);
    lanes = baton__aligned_alloc(64, (size_t)n * sizeof *lanes);
    if (lanes == NULL)
        return BATON_ENOMEM;
    memset(lanes, 0, (size_t)n * sizeof *lanes);
    store->lanes = lanes;
    store->n_lanes = n;
    for (unsigned l = 0; l < n; l++) {
        lanes[l].claims = baton__calloc(store->n_shards, sizeof *lanes[l].claims);
        if (lanes[l].claims == NULL) {
            baton__store_free_lanes(store);
            return BATON_ENOMEM;
        }
    }
    return 0;
}

/* Everything a tick needs that can fail to allocate, except the claim buffers (which grow as
 * claims arrive): the next queues (room for every rewrite to be deferred), the resolve scratch,
 * the rules' copies and the outcome list. */
static int reserve_tick(baton_store *store, unsigned lanes)
{
    int rc = ensure_lanes(store, lanes);
    if (rc != 0)
        return rc;
    for (unsigned s = 0; s < store->n_shards; s++) {
        baton__shard *shard = &store->shards[s];
        baton__queue *next = &shard->next;
        if (!baton__grow_array((void **)&next->items, &next->capacity, shard->queue.count,
                        sizeof *next->items) ||
            !baton__grow_array((void **)&next->entries, &next->entries_capacity, shard->queue.n_entries,
                        sizeof *next->entries))
            return BATON_ENOMEM;
        if (shard->scratch_capacity < shard->count) {
            uint32_t cap = shard->capacity;
            const baton__claim **any = baton__malloc((size_t)cap * sizeof *any);
            const baton__claim **wr = baton__malloc((size_t)cap * sizeof *wr);
            if (any == NULL || wr == NULL) {
                baton__free(any);
                baton__free(wr);
                return BATON_ENOMEM;
            }
            baton__free(shard->best_any);
            baton__free(shard->best_write);
            shard->best_any = any;
            shard->best_write = wr;
            shard->scratch_capacity = cap;
        }
        size_t slots = 0;
        for (size_t i = 0; i < shard->queue.count; i++)
            slots += shard->queue.items[i].n_writes;
        if (shard->stage_slots < slots) {
            size_t want = shard->stage_slots == 0 ? 16 : 2 * shard->stage_slots;
            while (want < slots)
                want *= 2;
            unsigned char *stage = baton__aligned_alloc(64, want * store->stage_stride);
            if (stage == NULL)
                return BATON_ENOMEM;
            baton__free(shard->stage);
            shard->stage = stage;
            shard->stage_slots = want;
        }
    }
    if (!baton__grow_array((void **)&store->outcomes, &store->outcomes_capacity,
                    store->pending != 0 ? store->pending : 1, sizeof *store->outcomes))
        return BATON_ENOMEM;
    return 0;
}

/* ---- phase 1: claim ---- */

static bool push_claim(baton__claims *claims, const baton__queued *q, uint32_t pos,
                       baton__fp_entry *entry)
{
    if (!baton__grow_array((void **)&claims->items, &claims->capacity, claims->count + 1,
                    sizeof *claims->items))
        return false;
    baton__claim *c = &claims->items[claims->count++];
    c->scope = q->scope;
    c->seq = q->seq;
    c->rule = q->rule;
    c->pos = pos;
    c->entry = entry;
    return true;
}

static void claim_shard(baton_store *store, unsigned lane_index, unsigned s, void *arg)
{
    baton__shard *shard = &store->shards[s];
    baton__lane *lane = &store->lanes[lane_index];
    (void)arg;

    shard->phase_error = 0;
    for (size_t i = 0; i < shard->queue.count; i++) {
        baton__queued *q = &shard->queue.items[i];
        baton__fp_entry *entries = &shard->queue.entries[q->first];
        uint32_t n = q->n_writes + q->n_reads;

        q->status = 0;
        for (uint32_t k = 0; k < n; k++) {
            baton__fp_entry *e = &entries[k];
            const baton__shard *target = baton__shard_for(store, e->id);
            uint32_t pos = e->pos;
            /* At the same generation nothing in the shard moved, so pos still holds the same
             * entity; otherwise look the id up, and an entity born since submit is another. */
            if (e->generation != target->generation) {
                pos = baton__shard_find(store, target, e->id);
                if (pos != BATON__EMPTY_POS && target->births[pos] != e->birth)
                    pos = BATON__EMPTY_POS;
            }
            e->copy = NULL;
            e->blocked = 0;
            e->commit = 0;
            if (pos == BATON__EMPTY_POS) {
                if (q->status == 0 || e->id < q->conflict_id) {
                    q->status = BATON_ENOTFOUND;
                    q->conflict_id = e->id;
                }
                continue;
            }
            e->pos = pos;
            e->generation = target->generation;
            e->payload = baton__shard_payload(store, target, pos);
        }
        if (q->status != 0)
            continue;
        for (uint32_t k = 0; k < n; k++) {
            unsigned t = baton__route(entries[k].id, store->shard_bits, store->flags);
            if (!push_claim(&lane->claims[t], q, entries[k].pos, &entries[k])) {
                shard->phase_error = BATON_ENOMEM;
                return;
            }
        }
    }
}

/* ---- phase 2: resolve ---- */

static inline bool claim_less(const baton__claim *a, const baton__claim *b)
{
    return baton__key_less(a->rule, a->scope, a->seq, b->rule, b->scope, b->seq);
}

static void resolve_shard(baton_store *store, unsigned lane_index, unsigned t, void *arg)
{
    baton__shard *shard = &store->shards[t];
    const baton__claim **best_any = shard->best_any, **best_write = shard->best_write;
    (void)lane_index;
    (void)arg;

    for (unsigned l = 0; l < store->n_lanes; l++) {
        const baton__claims *claims = &store->lanes[l].claims[t];
        for (size_t i = 0; i < claims->count; i++) {
            best_any[claims->items[i].pos] = NULL;
            best_write[claims->items[i].pos] = NULL;
        }
    }
    for (unsigned l = 0; l < store->n_lanes; l++) {
        const baton__claims *claims = &store->lanes[l].claims[t];
        for (size_t i = 0; i < claims->count; i++) {
            const baton__claim *c = &claims->items[i];
            if (best_any[c->pos] == NULL || claim_less(c, best_any[c->pos]))
                best_any[c->pos] = c;
            if (c->entry->write && (best_write[c->pos] == NULL || claim_less(c, best_write[c->pos])))
                best_write[c->pos] = c;
        }
    }
    for (unsigned l = 0; l < store->n_lanes; l++) {
        const baton__claims *claims = &store->lanes[l].claims[t];
        for (size_t i = 0; i < claims->count; i++) {
            const baton__claim *c = &claims->items[i];
            const baton__claim *winner = c->entry->write ? best_any[c->pos] : best_write[c->pos];
            if (winner != NULL && winner != c && claim_less(winner, c)) {
                c->entry->blocked = 1;
                c->entry->winner_seq = winner->seq;
            }
        }
    }
}

/* ---- phase 3: execute ---- */

static void execute_shard(baton_store *store, unsigned lane_index, unsigned s, void *arg)
{
    baton__shard *shard = &store->shards[s];
    unsigned char *stage = shard->stage;
    (void)arg;
    (void)lane_index;

    for (size_t i = 0; i < shard->queue.count; i++) {
        baton__queued *q = &shard->queue.items[i];
        baton__fp_entry *entries = &shard->queue.entries[q->first];
        uint32_t n = q->n_writes + q->n_reads;
        const baton__fp_entry *lost = NULL;
        unsigned char *slots = stage;

        stage += (size_t)q->n_writes * store->stage_stride;
        if (q->status != 0)
            continue;
        for (uint32_t k = 0; k < n; k++)
            if (entries[k].blocked && (lost == NULL || entries[k].id < lost->id))
                lost = &entries[k];
        if (lost != NULL) {
            q->status = BATON_ECONFLICT;
            q->conflict_id = lost->id;
            q->winner_seq = lost->winner_seq;
            continue;
        }
        baton_rewrite_ctx rc = {.store = store, .rewrite = q, .entries = entries,
                                .stage = slots};
        const baton__rule *rule = &store->rules[q->rule];
        int status = rule->fn(&rc, rule->ctx);
        q->status = status;
        if (status == 0)
            for (uint32_t k = 0; k < q->n_writes; k++)
                entries[k].commit = entries[k].copy != NULL;
    }
}

/* ---- phase 4: merge, and the next queue ---- */

static void requeue_deferred(baton_store *store, baton__shard *shard)
{
    baton__queue *next = &shard->next;

    next->count = 0;
    next->n_entries = 0;
    if (store->conflict != BATON_STORE_DEFER)
        return;
    for (size_t i = 0; i < shard->queue.count; i++) {
        const baton__queued *q = &shard->queue.items[i];
        uint32_t n = q->n_writes + q->n_reads;
        if (q->status != BATON_ECONFLICT)
            continue;
        baton__queued *d = &next->items[next->count++];
        *d = *q;
        d->first = (uint32_t)next->n_entries;
        for (uint32_t k = 0; k < n; k++) {
            baton__fp_entry *e = &next->entries[next->n_entries++];
            memset(e, 0, sizeof *e);
            const baton__fp_entry *old = &shard->queue.entries[q->first + k];
            e->id = old->id;
            e->write = old->write;
            e->pos = old->pos;
            e->generation = old->generation;
            e->birth = old->birth;
        }
    }
}

static void merge_shard(baton_store *store, unsigned lane_index, unsigned t, void *arg)
{
    baton__shard *shard = &store->shards[t];
    (void)lane_index;
    (void)arg;

    for (unsigned l = 0; l < store->n_lanes; l++) {
        const baton__claims *claims = &store->lanes[l].claims[t];
        for (size_t i = 0; i < claims->count; i++) {
            const baton__fp_entry *e = claims->items[i].entry;
            if (e->commit)
                memcpy(baton__shard_payload(store, shard, claims->items[i].pos), e->copy,
                       store->payload_size);
        }
    }
    requeue_deferred(store, shard);
}

/* ---- the driver ---- */

static int compare_outcomes(const void *a, const void *b)
{
    const baton_rewrite_outcome *x = a, *y = b;
    if (baton__key_less(x->rule, x->scope, x->seq, y->rule, y->scope, y->seq))
        return -1;
    return baton__key_less(y->rule, y->scope, y->seq, x->rule, x->scope, x->seq) ? 1 : 0;
}

/* Counts the tick's results, lists the rewrites that did not commit (when `list`), and swaps
 * in the next queues. */
static size_t finish_tick(baton_store *store, baton_tick_report *report, bool list)
{
    size_t n_outcomes = 0, pending = 0;

    for (unsigned s = 0; s < store->n_shards; s++) {
        baton__shard *shard = &store->shards[s];
        for (size_t i = 0; i < shard->queue.count; i++) {
            const baton__queued *q = &shard->queue.items[i];
            if (q->status == 0) {
                report->committed++;
                for (uint32_t k = 0; k < q->n_writes; k++)
                    report->writes += shard->queue.entries[q->first + k].commit;
                continue;
            }
            if (q->status != BATON_ECONFLICT)
                report->failed++;
            else if (store->conflict == BATON_STORE_DEFER)
                report->deferred++;
            else
                report->rejected++;
            if (!list)
                continue;
            baton_rewrite_outcome *o = &store->outcomes[n_outcomes++];
            memset(o, 0, sizeof *o);
            o->seq = q->seq;
            o->rule = q->rule;
            o->scope = q->scope;
            o->status = q->status;
            if (q->status == BATON_ECONFLICT) {
                o->deferred = store->conflict == BATON_STORE_DEFER;
                o->winner_seq = q->winner_seq;
            }
            if (q->status == BATON_ECONFLICT || q->status == BATON_ENOTFOUND)
                o->conflict_id = q->conflict_id;
        }
        baton__queue swap = shard->queue;
        shard->queue = shard->next;
        shard->next = swap;
        shard->next.count = 0;
        shard->next.n_entries = 0;
        pending += shard->queue.count;
    }
    store->pending = pending;
    qsort(store->outcomes, n_outcomes, sizeof *store->outcomes, compare_outcomes);
    return n_outcomes;
}

static const char *const phase_names[] = {"claiming", "resolving", "executing", "merging"};

int baton_store_tick(baton_store *store, baton_tick_report *report,
                     baton_store_outcome_fn on_outcome, void *ctx)
{
    static const baton__shard_fn phases[] = {claim_shard, resolve_shard, execute_shard,
                                             merge_shard};
    baton_tick_report counts;
    unsigned lanes;
    size_t n_outcomes;
    int rc;

    if (store == NULL)
        return baton__error(BATON_EINVAL, "baton_store_tick: store is NULL");
    if (atomic_load_explicit(&store->in_tick, memory_order_relaxed))
        return baton__error(BATON_EINVAL, "baton_store_tick: called during a tick (from a rule "
                            "or an outcome callback)");
    rc = baton__store_lane_count(store, &lanes);
    if (rc != 0)
        return baton__error(rc, "baton_store_tick: %s", baton_strerror(rc));
    rc = reserve_tick(store, lanes);
    if (rc != 0)
        return baton__error(rc, "baton_store_tick: no memory for the tick's buffers (%zu "
                            "rewrites queued)", store->pending);

    memset(&counts, 0, sizeof counts);
    counts.tick = store->ticks;
    counts.considered = store->pending;
    atomic_store_explicit(&store->in_tick, 1, memory_order_relaxed);
    for (unsigned l = 0; l < store->n_lanes; l++) {
        for (unsigned t = 0; t < store->n_shards; t++)
            store->lanes[l].claims[t].count = 0;
    }
    for (size_t p = 0; p < sizeof phases / sizeof phases[0]; p++) {
        /* The claim phase is the only one that can grow a buffer (a lane's claims for a
         * shard); on fixed blocks each lane sees the same shards every tick, so identical ticks
         * stop allocating once the buffers have grown. The phases that run rules stay dynamic. */
        rc = baton__store_each_shard(store, phases[p], NULL, p == 0);
        if (rc != 0) {
            /* Only the pool shutting down under us gets here; a phase either ran on every
             * shard or on none, and the merge is the last, so before it nothing changed. */
            atomic_store_explicit(&store->in_tick, 0, memory_order_relaxed);
            return baton__error(rc, "baton_store_tick: %s while %s", baton_strerror(rc),
                                phase_names[p]);
        }
        if (p == 0) {
            for (unsigned s = 0; s < store->n_shards; s++) {
                if (store->shards[s].phase_error != 0) {
                    atomic_store_explicit(&store->in_tick, 0, memory_order_relaxed);
                    return baton__error(BATON_ENOMEM, "baton_store_tick: no memory for the "
                                        "claims of shard %u; the tick did nothing", s);
                }
            }
        }
    }
    n_outcomes = finish_tick(store, &counts, on_outcome != NULL);
    store->ticks++;
    if (on_outcome != NULL)
        for (size_t i = 0; i < n_outcomes; i++)
            on_outcome(&store->outcomes[i], ctx);
    atomic_store_explicit(&store->in_tick, 0, memory_order_relaxed);
    if (report != NULL)
        *report = counts;
    return 0;
}
