/*
 * store.c — creating and destroying a store, routing, and the driver's entity operations
 * (insert, remove, get, lookup, foreach).
 */
#include <inttypes.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/error.h"
#include "store/internal.h"

#define KNOWN_FLAGS (BATON_STORE_IDS_ARE_HASHES | BATON_STORE_PIN_EXECUTORS)

unsigned baton_store_route(uint64_t id, unsigned shard_bits, unsigned flags)
{
    return baton__route(id, shard_bits, flags);
}

static int check_config(const baton_store_config *cfg)
{
    if (cfg->payload_size == 0 || cfg->payload_size > BATON_STORE_MAX_PAYLOAD_SIZE)
        return baton__error(BATON_EINVAL,
                            "baton_store_create: payload_size %zu is out of range (1 .. %u)",
                            cfg->payload_size, (unsigned)BATON_STORE_MAX_PAYLOAD_SIZE);
    if (cfg->shard_bits > BATON_STORE_MAX_SHARD_BITS)
        return baton__error(BATON_EINVAL,
                            "baton_store_create: shard_bits %u is above the maximum %d",
                            cfg->shard_bits, BATON_STORE_MAX_SHARD_BITS);
    if ((cfg->flags & ~(unsigned)KNOWN_FLAGS) != 0)
        return baton__error(BATON_EINVAL, "baton_store_create: unknown flags 0x%x",
                            cfg->flags & ~(unsigned)KNOWN_FLAGS);
    if ((unsigned)cfg->policy > BATON_STORE_DEDICATED)
        return baton__error(BATON_EINVAL, "baton_store_create: policy %d is not a "
                            "baton_store_policy", (int)cfg->policy);
    if ((unsigned)cfg->conflict > BATON_STORE_REJECT)
        return baton__error(BATON_EINVAL, "baton_store_create: conflict %d is not a "
                            "baton_store_conflict_policy", (int)cfg->conflict);
    if (cfg->executors > BATON_STORE_MAX_EXECUTORS)
        return baton__error(BATON_EINVAL,
                            "baton_store_create: executors %u is above the maximum %d",
                            cfg->executors, BATON_STORE_MAX_EXECUTORS);
    return 0;
}

int baton_store_create(const baton_store_config *config, baton_store **out)
{
    baton_store_config cfg;
    baton_store *store;
    int rc;

    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_store_create: out is NULL");
    *out = NULL;
    if (config == NULL)
        return baton__error(BATON_EINVAL, "baton_store_create: config is NULL (payload_size "
                            "has no default)");
    rc = baton__config_copy("baton_store_create", "config", "baton_store_config", config, &cfg,
                            sizeof cfg);
    if (rc != 0)
        return rc;
    rc = check_config(&cfg);
    if (rc != 0)
        return rc;

    store = baton__aligned_alloc(64, sizeof *store);
    if (store == NULL)
        return baton__error(BATON_ENOMEM, "baton_store_create: no memory for the store");
    memset(store, 0, sizeof *store);
    store->payload_size = cfg.payload_size;
    store->stage_stride = (cfg.payload_size + 15) & ~(size_t)15;
    store->shard_bits = cfg.shard_bits != 0 ? cfg.shard_bits : BATON_STORE_DEFAULT_SHARD_BITS;
    store->n_shards = 1u << store->shard_bits;
    store->flags = cfg.flags;
    store->pool = cfg.pool;
    store->policy = cfg.policy;
    store->conflict = cfg.conflict;
    store->executors_wanted = cfg.executors;
    atomic_init(&store->in_tick, 0);
    store->shards = baton__aligned_alloc(64, (size_t)store->n_shards * sizeof *store->shards);
    if (store->shards == NULL) {
        baton__free(store);
        return baton__error(BATON_ENOMEM, "baton_store_create: no memory for %u shards",
                            1u << (cfg.shard_bits != 0 ? cfg.shard_bits
                                                       : BATON_STORE_DEFAULT_SHARD_BITS));
    }
    memset(store->shards, 0, (size_t)store->n_shards * sizeof *store->shards);
    *out = store;
    return 0;
}

void baton_store_destroy(baton_store *store)
{
    if (store == NULL)
        return;
    baton__crew_destroy(store->crew);
    for (unsigned s = 0; s < store->n_shards; s++)
        baton__shard_free(&store->shards[s]);
    baton__store_free_lanes(store);
    baton__free(store->payload_slab);
    baton__free(store->id_slab);
    baton__free(store->cursors);
    baton__free(store->shards);
    baton__free(store->rules);
    baton__free(store->scratch_ids);
    baton__free(store->scratch_pos);
    baton__free(store->outcomes);
    baton__free(store);
}

unsigned baton_store_shards(const baton_store *store)
{
    return store != NULL ? store->n_shards : 0;
}

size_t baton_store_payload_size(const baton_store *store)
{
    return store != NULL ? store->payload_size : 0;
}

size_t baton_store_count(const baton_store *store)
{
    return store != NULL ? store->count : 0;
}

size_t baton_store_shard_size(const baton_store *store, unsigned shard)
{
    return store != NULL && shard < store->n_shards ? store->shards[shard].count : 0;
}

unsigned baton_store_shard_of(const baton_store *store, uint64_t id)
{
    return store != NULL ? baton__route(id, store->shard_bits, store->flags) : 0;
}

int baton_store_set_policy(baton_store *store, baton_store_policy policy)
{
    if (store == NULL)
        return baton__error(BATON_EINVAL, "baton_store_set_policy: store is NULL");
    if ((unsigned)policy > BATON_STORE_DEDICATED)
        return baton__error(BATON_EINVAL, "baton_store_set_policy: policy %d is not a "
                            "baton_store_policy", (int)policy);
    if (atomic_load_explicit(&store->in_tick, memory_order_relaxed))
        return baton__error(BATON_EINVAL, "baton_store_set_policy: called during a tick");
    store->policy = policy;
    return 0;
}

static bool in_tick(const baton_store *store)
{
    return atomic_load_explicit(&((baton_store *)store)->in_tick, memory_order_relaxed) != 0;
}

int baton_store_insert(baton_store *store, uint64_t id, const void *payload, size_t size)
{
    baton__shard *shard;
    int rc;

    if (store == NULL || payload == NULL)
        return baton__error(BATON_EINVAL, "baton_store_insert: %s is NULL",
                            store == NULL ? "store" : "payload");
    if (size != store->payload_size)
        return baton__error(BATON_EINVAL, "baton_store_insert: payload size %zu does not match "
                            "the store's payload_size %zu (id %" PRIu64 ")",
                            size, store->payload_size, id);
    if (in_tick(store))
        return baton__error(BATON_EINVAL, "baton_store_insert: called during a tick (id %"
                            PRIu64 ")", id);
    shard = baton__shard_for(store, id);
    if (baton__shard_find(store, shard, id) != BATON__EMPTY_POS)
        return baton__error(BATON_EEXIST, "baton_store_insert: id %" PRIu64 " (0x%016" PRIx64
                            ") is already in the store", id, id);
    rc = baton__shard_insert(store, shard, id, payload);
    if (rc == BATON_ENOMEM)
        return baton__error(rc, "baton_store_insert: no memory to grow shard %u past %u "
                            "entities", baton_store_shard_of(store, id), shard->count);
    if (rc != 0)
        return baton__error(rc, "baton_store_insert: shard %u is full (%u entities)",
                            baton_store_shard_of(store, id), shard->count);
    store->count++;
    return 0;
}

int baton_store_remove(baton_store *store, uint64_t id)
{
    baton__shard *shard;
    uint32_t pos;

    if (store == NULL)
        return baton__error(BATON_EINVAL, "baton_store_remove: store is NULL");
    if (in_tick(store))
        return baton__error(BATON_EINVAL, "baton_store_remove: called during a tick (id %"
                            PRIu64 ")", id);
    shard = baton__shard_for(store, id);
    pos = baton__shard_find(store, shard, id);
    if (pos == BATON__EMPTY_POS)
        return baton__error(BATON_ENOTFOUND, "baton_store_remove: no entity with id %" PRIu64
                            " (0x%016" PRIx64 ")", id, id);
    baton__shard_remove_at(store, shard, pos);
    store->count--;
    return 0;
}

bool baton_store_contains(const baton_store *store, uint64_t id)
{
    return store != NULL &&
           baton__shard_find(store, baton__shard_for(store, id), id) != BATON__EMPTY_POS;
}

int baton_store_get(const baton_store *store, uint64_t id, void *out, size_t size)
{
    const baton__shard *shard;
    uint32_t pos;

    if (store == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "baton_store_get: %s is NULL",
                            store == NULL ? "store" : "out");
    if (size != store->payload_size)
        return baton__error(BATON_EINVAL, "baton_store_get: size %zu does not match the "
                            "store's payload_size %zu (id %" PRIu64 ")",
                            size, store->payload_size, id);
    shard = baton__shard_for(store, id);
    pos = baton__shard_find(store, shard, id);
    if (pos == BATON__EMPTY_POS)
        return baton__error(BATON_ENOTFOUND, "baton_store_get: no entity with id %" PRIu64
                            " (0x%016" PRIx64 ")", id, id);
    memcpy(out, baton__shard_payload(store, shard, pos), size);
    return 0;
}

int baton_store_lookup(baton_store *store, uint64_t id, void **payload)
{
    baton__shard *shard;
    uint32_t pos;

    if (payload != NULL)
        *payload = NULL;
    if (store == NULL || payload == NULL)
        return baton__error(BATON_EINVAL, "baton_store_lookup: %s is NULL",
                            store == NULL ? "store" : "payload");
    shard = baton__shard_for(store, id);
    pos = baton__shard_find(store, shard, id);
    if (pos == BATON__EMPTY_POS)
        return baton__error(BATON_ENOTFOUND, "baton_store_lookup: no entity with id %" PRIu64
                            " (0x%016" PRIx64 ")", id, id);
    *payload = baton__shard_payload(store, shard, pos);
    return 0;
}

int baton_store_foreach(const baton_store *store, baton_store_visit_fn fn, void *ctx)
{
    if (store == NULL || fn == NULL)
        return baton__error(BATON_EINVAL, "baton_store_foreach: %s is NULL",
                            store == NULL ? "store" : "fn");
    for (unsigned s = 0; s < store->n_shards; s++) {
        const baton__shard *shard = &store->shards[s];
        for (uint32_t pos = 0; pos < shard->count; pos++) {
            int rc = fn(shard->ids[pos], baton__shard_payload(store, shard, pos), ctx);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* Bytes of a shard's payload region: its payloads rounded up to whole 64-byte lines, which keeps
 * the next shard's first payload aligned with at most 63 bytes before it, and no room to grow
 * (capacity = count) so that the next insert moves the shard out rather than leave a hole. */
static size_t packed_bytes(const baton_store *store, uint32_t count)
{
    return ((size_t)count * store->payload_size + 63) & ~(size_t)63;
}

int baton_store_compact(baton_store *store)
{
    size_t payload_bytes = 0, id_offset = 0, payload_offset = 0;
    uint64_t *id_slab;
    unsigned char *payload_slab;

    if (store == NULL)
        return baton__error(BATON_EINVAL, "baton_store_compact: store is NULL");
    if (atomic_load_explicit(&store->in_tick, memory_order_relaxed))
        return baton__error(BATON_EINVAL, "baton_store_compact: called during a tick");
    for (unsigned s = 0; s < store->n_shards; s++)
        payload_bytes += packed_bytes(store, store->shards[s].count);
    id_slab = baton__aligned_alloc(64, store->count * sizeof *id_slab);
    payload_slab = baton__aligned_alloc(64, payload_bytes);
    if (id_slab == NULL || payload_slab == NULL) {
        baton__free(id_slab);
        baton__free(payload_slab);
        return baton__error(BATON_ENOMEM, "baton_store_compact: no memory for a copy of %zu "
                            "entities of %zu bytes", store->count, store->payload_size);
    }
    for (unsigned s = 0; s < store->n_shards; s++) {
        baton__shard *shard = &store->shards[s];
        uint32_t count = shard->count;
        baton__shard_move_to_slab(store, shard, id_slab + id_offset, payload_slab + payload_offset,
                                  count);
        id_offset += count;
        payload_offset += packed_bytes(store, count);
    }
    baton__free(store->id_slab);
    baton__free(store->payload_slab);
    store->id_slab = id_slab;
    store->payload_slab = payload_slab;
    return 0;
}
