/*
 * rewrite.c — rules, submitting rewrites to their scope's shard queue, and what a rule may call
 * while it runs (reading and writing its footprint).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "store/internal.h"

int baton_store_add_rule(baton_store *store, baton_store_rule_fn fn, void *rule_ctx,
                         uint32_t *out_rule)
{
    if (store == NULL || fn == NULL || out_rule == NULL)
        return baton__error(BATON_EINVAL, "baton_store_add_rule: %s is NULL",
                            store == NULL ? "store" : fn == NULL ? "fn" : "out_rule");
    if (atomic_load_explicit(&store->in_tick, memory_order_relaxed))
        return baton__error(BATON_EINVAL, "baton_store_add_rule: called during a tick");
    if (store->n_rules == store->rules_capacity) {
        uint32_t capacity = store->rules_capacity == 0 ? 8 : 2 * store->rules_capacity;
        baton__rule *rules = baton__malloc((size_t)capacity * sizeof *rules);
        if (rules == NULL)
            return baton__error(BATON_ENOMEM, "baton_store_add_rule: no memory for %u rules",
                                capacity);
        if (store->n_rules != 0)
            memcpy(rules, store->rules, (size_t)store->n_rules * sizeof *rules);
        baton__free(store->rules);
        store->rules = rules;
        store->rules_capacity = capacity;
    }
    store->rules[store->n_rules].fn = fn;
    store->rules[store->n_rules].ctx = rule_ctx;
    *out_rule = store->n_rules++;
    return 0;
}

size_t baton_store_pending(const baton_store *store)
{
    return store != NULL ? store->pending : 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts ids[0..n) and drops repeats; returns the new length. Footprints are mostly a handful
 * of ids, for which an insertion sort beats qsort's indirect calls. */
static size_t sort_unique(uint64_t *ids, size_t n)
{
    size_t kept = 0;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint64_t v = ids[i];
            size_t j = i;
            for (; j > 0 && ids[j - 1] > v; j--)
                ids[j] = ids[j - 1];
            ids[j] = v;
        }
    } else {
        qsort(ids, n, sizeof *ids, compare_u64);
    }
    for (size_t i = 0; i < n; i++)
        if (kept == 0 || ids[kept - 1] != ids[i])
            ids[kept++] = ids[i];
    return kept;
}

/* Drops from sorted reads[0..n) the ids present in sorted writes[0..n_writes); returns the new
 * length. */
static size_t drop_written(uint64_t *reads, size_t n, const uint64_t *writes, size_t n_writes)
{
    size_t kept = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        while (w < n_writes && writes[w] < reads[i])
            w++;
        if (w == n_writes || writes[w] != reads[i])
            reads[kept++] = reads[i];
    }
    return kept;
}

static int check_rewrite(const baton_store *store, const baton_rewrite *rw)
{
    if (rw->rule >= store->n_rules)
        return baton__error(BATON_EINVAL, "baton_store_submit: rule %" PRIu32 " is not "
                            "registered (%" PRIu32 " rules)", rw->rule, store->n_rules);
    if ((rw->reads == NULL && rw->n_reads != 0) || (rw->writes == NULL && rw->n_writes != 0))
        return baton__error(BATON_EINVAL, "baton_store_submit: %s is NULL but n_%s is %" PRIu32,
                            rw->reads == NULL && rw->n_reads != 0 ? "reads" : "writes",
                            rw->reads == NULL && rw->n_reads != 0 ? "reads" : "writes",
                            rw->reads == NULL && rw->n_reads != 0 ? rw->n_reads : rw->n_writes);
    if ((uint64_t)rw->n_reads + rw->n_writes > BATON_STORE_MAX_FOOTPRINT)
        return baton__error(BATON_EINVAL, "baton_store_submit: footprint of %" PRIu64 " ids is "
                            "above BATON_STORE_MAX_FOOTPRINT (%d)",
                            (uint64_t)rw->n_reads + rw->n_writes, BATON_STORE_MAX_FOOTPRINT);
    return 0;
}

int baton_store_submit(baton_store *store, const baton_rewrite *rw, uint64_t *out_seq)
{
    baton__queue *queue;
    baton__queued *q;
    size_t n_writes, n_reads, n_total;
    uint64_t *ids;
    int rc;

    if (store == NULL || rw == NULL)
        return baton__error(BATON_EINVAL, "baton_store_submit: %s is NULL",
                            store == NULL ? "store" : "rewrite");
    if (atomic_load_explicit(&store->in_tick, memory_order_relaxed))
        return baton__error(BATON_EINVAL, "baton_store_submit: called during a tick");
    rc = check_rewrite(store, rw);
    if (rc != 0)
        return rc;

    n_total = (size_t)rw->n_reads + rw->n_writes;
    if (!baton__grow_array((void **)&store->scratch_ids, &store->scratch_capacity, n_total != 0 ? n_total : 1,
              sizeof *store->scratch_ids))
        return baton__error(BATON_ENOMEM, "baton_store_submit: no memory for a footprint of %zu "
                            "ids", n_total);
    ids = store->scratch_ids;
    if (rw->n_writes != 0)
        memcpy(ids, rw->writes, rw->n_writes * sizeof *ids);
    n_writes = sort_unique(ids, rw->n_writes);
    if (rw->n_reads != 0)
        memcpy(ids + n_writes, rw->reads, rw->n_reads * sizeof *ids);
    n_reads = sort_unique(ids + n_writes, rw->n_reads);
    n_reads = drop_written(ids + n_writes, n_reads, ids, n_writes);
    n_total = n_writes + n_reads;
    if (!baton__grow_array((void **)&store->scratch_pos, &store->scratch_pos_capacity, n_total != 0 ? n_total : 1,
              sizeof *store->scratch_pos))
        return baton__error(BATON_ENOMEM, "baton_store_submit: no memory for a footprint of %zu "
                            "ids", n_total);
    for (size_t i = 0; i < n_total; i++)
        if ((store->scratch_pos[i] = baton__shard_find(store, baton__shard_for(store, ids[i]),
                                                       ids[i])) == BATON__EMPTY_POS)
            return baton__error(BATON_ENOTFOUND, "baton_store_submit: the footprint names id %"
                                PRIu64 " (0x%016" PRIx64 "), which is not in the store "
                                "(rule %" PRIu32 ", scope %" PRIu64 ")",
                                ids[i], ids[i], rw->rule, rw->scope);

    queue = &baton__shard_for(store, rw->scope)->queue;
    if (!baton__grow_array((void **)&queue->entries, &queue->entries_capacity, queue->n_entries + n_total,
              sizeof *queue->entries) ||
        !baton__grow_array((void **)&queue->items, &queue->capacity, queue->count + 1, sizeof *queue->items))
        return baton__error(BATON_ENOMEM, "baton_store_submit: no memory to queue a rewrite "
                            "(%zu queued on its shard)", queue->count);
    q = &queue->items[queue->count++];
    q->scope = rw->scope;
    q->seq = store->next_seq++;
    q->arg = rw->arg;
    q->rule = rw->rule;
    q->n_writes = (uint32_t)n_writes;
    q->n_reads = (uint32_t)n_reads;
    q->first = (uint32_t)queue->n_entries;
    q->status = 0;
    for (size_t i = 0; i < n_total; i++) {
        baton__fp_entry *e = &queue->entries[queue->n_entries++];
        memset(e, 0, sizeof *e);
        e->id = ids[i];
        e->write = i < n_writes;
        const baton__shard *target = baton__shard_for(store, ids[i]);
        e->pos = store->scratch_pos[i];
        e->generation = target->generation;
        e->birth = target->births[e->pos];
    }
    store->pending++;
    if (out_seq != NULL)
        *out_seq = q->seq;
    return 0;
}

/* ---- inside a rule ---- */

uint64_t baton_rewrite_scope(const baton_rewrite_ctx *rc)
{
    return rc != NULL ? rc->rewrite->scope : 0;
}

uint64_t baton_rewrite_arg(const baton_rewrite_ctx *rc)
{
    return rc != NULL ? rc->rewrite->arg : 0;
}

uint32_t baton_rewrite_rule(const baton_rewrite_ctx *rc)
{
    return rc != NULL ? rc->rewrite->rule : 0;
}

uint64_t baton_rewrite_seq(const baton_rewrite_ctx *rc)
{
    return rc != NULL ? rc->rewrite->seq : 0;
}

size_t baton_rewrite_payload_size(const baton_rewrite_ctx *rc)
{
    return rc != NULL ? rc->store->payload_size : 0;
}

/* The entry for id among entries[0..n) (sorted by id), or NULL. */
static baton__fp_entry *find_entry(baton__fp_entry *entries, uint32_t n, uint64_t id)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (entries[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && entries[lo].id == id ? &entries[lo] : NULL;
}

int baton_rewrite_read(baton_rewrite_ctx *rc, uint64_t id, const void **payload)
{
    baton__fp_entry *e;

    if (payload != NULL)
        *payload = NULL;
    if (rc == NULL || payload == NULL)
        return baton__error(BATON_EINVAL, "baton_rewrite_read: %s is NULL",
                            rc == NULL ? "rc" : "payload");
    e = find_entry(rc->entries, rc->rewrite->n_writes, id);
    if (e == NULL)
        e = find_entry(rc->entries + rc->rewrite->n_writes, rc->rewrite->n_reads, id);
    if (e == NULL)
        return baton__error(BATON_EPERM, "baton_rewrite_read: id %" PRIu64 " is not in the "
                            "footprint of rewrite %" PRIu64 " (rule %" PRIu32 ")",
                            id, rc->rewrite->seq, rc->rewrite->rule);
    *payload = e->copy != NULL ? e->copy : e->payload;
    return 0;
}

int baton_rewrite_write(baton_rewrite_ctx *rc, uint64_t id, void **payload)
{
    baton__fp_entry *e;

    if (payload != NULL)
        *payload = NULL;
    if (rc == NULL || payload == NULL)
        return baton__error(BATON_EINVAL, "baton_rewrite_write: %s is NULL",
                            rc == NULL ? "rc" : "payload");
    e = find_entry(rc->entries, rc->rewrite->n_writes, id);
    if (e == NULL)
        return baton__error(BATON_EPERM, "baton_rewrite_write: id %" PRIu64 " is not among "
                            "the writes of rewrite %" PRIu64 " (rule %" PRIu32 ")",
                            id, rc->rewrite->seq, rc->rewrite->rule);
    if (e->copy == NULL) {
        e->copy = rc->stage + (size_t)(e - rc->entries) * rc->store->stage_stride;
        memcpy(e->copy, e->payload, rc->store->payload_size);
    }
    *payload = e->copy;
    return 0;
}
