/*
 * shard.c — one shard's storage: dense arrays of ids and payloads, and an open-addressing index
 * from id to position (linear probing, at most half full, deletion by backward shift so that no
 * tombstones pile up). Lookups hash the id with baton_mix64 and take the high half for the slot:
 * the low bits chose the shard, so they are the same for every id of a shard.
 */
#include <string.h>

#include "core/alloc.h"
#include "store/internal.h"

#define SHARD_MIN_CAPACITY 16u
#define INDEX_MIN_SLOTS 32u

static inline uint32_t index_home(uint64_t id, uint32_t mask)
{
    return (uint32_t)(baton_mix64(id) >> 32) & mask;
}

uint32_t baton__shard_find(const baton_store *store, const baton__shard *shard, uint64_t id)
{
    (void)store;
    if (shard->index == NULL)
        return BATON__EMPTY_POS;
    for (uint32_t i = index_home(id, shard->index_mask);; i = (i + 1) & shard->index_mask) {
        const baton__index_slot *slot = &shard->index[i];
        if (slot->pos == BATON__EMPTY_POS)
            return BATON__EMPTY_POS;
        if (slot->id == id)
            return slot->pos;
    }
}

/* The slot holding id (which must be present). */
static uint32_t index_slot_of(const baton__shard *shard, uint64_t id)
{
    uint32_t i = index_home(id, shard->index_mask);
    while (shard->index[i].id != id || shard->index[i].pos == BATON__EMPTY_POS)
        i = (i + 1) & shard->index_mask;
    return i;
}

static void index_put(baton__index_slot *index, uint32_t mask, uint64_t id, uint32_t pos)
{
    uint32_t i = index_home(id, mask);
    while (index[i].pos != BATON__EMPTY_POS)
        i = (i + 1) & mask;
    index[i].id = id;
    index[i].pos = pos;
}

/* Rebuilds the index with `slots` slots from the dense ids. */
static int index_resize(baton__shard *shard, uint32_t slots)
{
    baton__index_slot *index = baton__malloc((size_t)slots * sizeof *index);
    if (index == NULL)
        return BATON_ENOMEM;
    for (uint32_t i = 0; i < slots; i++)
        index[i].pos = BATON__EMPTY_POS;
    for (uint32_t pos = 0; pos < shard->count; pos++)
        index_put(index, slots - 1, shard->ids[pos], pos);
    baton__free(shard->index);
    shard->index = index;
    shard->index_mask = slots - 1;
    return 0;
}

/* Moves the dense arrays to ids and payloads (room for capacity >= count entities), freeing the
 * old ones unless they belong to the store's slabs. */
static void shard_move(baton_store *store, baton__shard *shard, uint64_t *ids,
                       unsigned char *payloads, uint32_t capacity, bool in_slab)
{
    if (shard->count != 0) {
        memcpy(ids, shard->ids, (size_t)shard->count * sizeof *ids);
        memcpy(payloads, shard->payloads, (size_t)shard->count * store->payload_size);
    }
    if (!shard->in_slab) {
        baton__free(shard->ids);
        baton__free(shard->payloads);
    }
    shard->ids = ids;
    shard->payloads = payloads;
    shard->capacity = capacity;
    shard->in_slab = in_slab;
}

/* Makes room for one more entity in the dense arrays and the index. */
static int shard_reserve_one(baton_store *store, baton__shard *shard)
{
    if (shard->count >= BATON__SHARD_MAX_ENTITIES)
        return BATON_ERANGE;
    if (shard->count == shard->capacity) {
        uint64_t wanted = shard->capacity == 0 ? SHARD_MIN_CAPACITY : 2 * (uint64_t)shard->capacity;
        uint32_t capacity = wanted > BATON__SHARD_MAX_ENTITIES ? BATON__SHARD_MAX_ENTITIES
                                                                : (uint32_t)wanted;
        size_t bytes = ((size_t)capacity * store->payload_size + 63) & ~(size_t)63;
        uint64_t *ids = baton__malloc((size_t)capacity * sizeof *ids);
        unsigned char *payloads = baton__aligned_alloc(64, bytes);
        if (ids == NULL || payloads == NULL) {
            baton__free(ids);
            baton__free(payloads);
            return BATON_ENOMEM;
        }
        shard_move(store, shard, ids, payloads, capacity, false);
    }
    if (shard->births_capacity < shard->capacity) {
        uint64_t *births = baton__malloc((size_t)shard->capacity * sizeof *births);
        if (births == NULL)
            return BATON_ENOMEM;
        if (shard->count != 0)
            memcpy(births, shard->births, (size_t)shard->count * sizeof *births);
        baton__free(shard->births);
        shard->births = births;
        shard->births_capacity = shard->capacity;
    }
    /* Keep the index at most half full: short probe sequences, and a free slot always exists. */
    if (shard->index == NULL || (uint64_t)(shard->count + 1) * 2 > (uint64_t)shard->index_mask + 1) {
        uint64_t slots = shard->index == NULL ? INDEX_MIN_SLOTS : 2 * ((uint64_t)shard->index_mask + 1);
        int rc = index_resize(shard, (uint32_t)slots);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int baton__shard_insert(baton_store *store, baton__shard *shard, uint64_t id, const void *payload)
{
    int rc = shard_reserve_one(store, shard);
    if (rc != 0)
        return rc;
    uint32_t pos = shard->count++;
    shard->ids[pos] = id;
    shard->births[pos] = ++shard->generation;
    memcpy(baton__shard_payload(store, shard, pos), payload, store->payload_size);
    index_put(shard->index, shard->index_mask, id, pos);
    return 0;
}

/* Deletes the slot at i by shifting later members of its probe run back (Knuth's algorithm R),
 * so lookups never need tombstones. */
static void index_delete_slot(baton__shard *shard, uint32_t i)
{
    uint32_t mask = shard->index_mask;
    uint32_t j = i;
    for (;;) {
        shard->index[i].pos = BATON__EMPTY_POS;
        for (;;) {
            j = (j + 1) & mask;
            if (shard->index[j].pos == BATON__EMPTY_POS)
                return;
            uint32_t home = index_home(shard->index[j].id, mask);
            /* The entry at j may move to i only if its home is not cyclically in (i, j]. */
            bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays)
                break;
        }
        shard->index[i] = shard->index[j];
        i = j;
    }
}

void baton__shard_remove_at(baton_store *store, baton__shard *shard, uint32_t pos)
{
    uint32_t last = shard->count - 1;
    index_delete_slot(shard, index_slot_of(shard, shard->ids[pos]));
    if (pos != last) {
        uint64_t moved = shard->ids[last];
        shard->ids[pos] = moved;
        shard->births[pos] = shard->births[last];
        memcpy(baton__shard_payload(store, shard, pos), baton__shard_payload(store, shard, last),
               store->payload_size);
        shard->index[index_slot_of(shard, moved)].pos = pos;
    }
    shard->count = last;
    shard->generation++;
}

void baton__shard_move_to_slab(baton_store *store, baton__shard *shard, uint64_t *ids,
                               unsigned char *payloads, uint32_t capacity)
{
    shard_move(store, shard, ids, payloads, capacity, true);
}

static void queue_free(baton__queue *queue)
{
    baton__free(queue->items);
    baton__free(queue->entries);
    memset(queue, 0, sizeof *queue);
}

void baton__shard_free(baton__shard *shard)
{
    if (!shard->in_slab) {
        baton__free(shard->ids);
        baton__free(shard->payloads);
    }
    baton__free(shard->index);
    baton__free(shard->births);
    baton__free(shard->best_any);
    baton__free(shard->best_write);
    baton__free(shard->stage);
    queue_free(&shard->queue);
    queue_free(&shard->next);
}
