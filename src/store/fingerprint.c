/*
 * fingerprint.c — the state's fingerprint: XXH3-64 over (id as 8 little-endian bytes, payload)
 * for every entity in increasing id order, streamed through one XXH3 state so that it is exactly
 * the hash of that concatenation (baton_hash64 of it would give the same value).
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/alloc.h"
#include "core/error.h"
#include "store/internal.h"

typedef struct entity_ref {
    uint64_t id;
    const unsigned char *payload;
} entity_ref;

static int compare_ids(const void *a, const void *b)
{
    uint64_t x = ((const entity_ref *)a)->id, y = ((const entity_ref *)b)->id;
    return (x > y) - (x < y);
}

int baton_store_fingerprint(const baton_store *store, uint64_t *out)
{
    entity_ref *refs;
    XXH3_state_t *state;
    size_t n = 0;

    if (store == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "baton_store_fingerprint: %s is NULL",
                            store == NULL ? "store" : "out");
    refs = baton__malloc((store->count != 0 ? store->count : 1) * sizeof *refs);
    state = XXH3_createState();
    if (refs == NULL || state == NULL) {
        baton__free(refs);
        XXH3_freeState(state);
        return baton__error(BATON_ENOMEM, "baton_store_fingerprint: no memory to sort %zu ids",
                            store->count);
    }
    for (unsigned s = 0; s < store->n_shards; s++) {
        const baton__shard *shard = &store->shards[s];
        for (uint32_t pos = 0; pos < shard->count; pos++) {
            refs[n].id = shard->ids[pos];
            refs[n].payload = baton__shard_payload(store, shard, pos);
            n++;
        }
    }
    qsort(refs, n, sizeof *refs, compare_ids);
    XXH3_64bits_reset_withSeed(state, 0);
    for (size_t i = 0; i < n; i++) {
        unsigned char id_le[8];
        for (int b = 0; b < 8; b++)
            id_le[b] = (unsigned char)(refs[i].id >> (8 * b));
        XXH3_64bits_update(state, id_le, sizeof id_le);
        XXH3_64bits_update(state, refs[i].payload, store->payload_size);
    }
    *out = (uint64_t)XXH3_64bits_digest(state);
    XXH3_freeState(state);
    baton__free(refs);
    return 0;
}
