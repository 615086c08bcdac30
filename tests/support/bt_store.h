/*
 * bt_store.h — helpers shared by the store's tests (defined in bt_store.c but for the payload
 * fields):
 *
 *  - bt_store_config / bt_store_create: a store config from its few interesting fields, and a
 *    create that fails the running test with the library's message when it does not succeed;
 *  - bt_get64 / bt_put64: little-endian 64-bit fields of a payload;
 *  - bt_model_fingerprint: the state fingerprint computed independently of the store, from the
 *    definition in store.h (XXH3-64, seed 0, over entities in increasing id order, each the id
 *    as 8 little-endian bytes followed by the payload), straight from libxxhash;
 *  - bt_store_fingerprint: the store's own, asserted to succeed.
 */
#ifndef BT_SUPPORT_STORE_H
#define BT_SUPPORT_STORE_H

#include <xxhash.h>

#include "baton/store.h"
#include "support/bt_common.h"

baton_store_config bt_store_config(size_t payload_size, unsigned shard_bits, unsigned flags,
                                   baton_pool *pool, baton_store_policy policy,
                                   baton_store_conflict_policy conflict, unsigned executors);

/* Main thread only. */
baton_store *bt_store_create_config(const baton_store_config *config);

baton_store *bt_store_create(size_t payload_size, unsigned shard_bits, baton_pool *pool,
                             baton_store_policy policy);

static inline void bt_put64(void *payload, size_t offset, uint64_t value)
{
    unsigned char *p = (unsigned char *)payload + offset;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(value >> (8 * i));
}

static inline uint64_t bt_get64(const void *payload, size_t offset)
{
    const unsigned char *p = (const unsigned char *)payload + offset;
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value |= (uint64_t)p[i] << (8 * i);
    return value;
}

/*
 * The fingerprint of the set {(ids[i], payloads + i * payload_size) : present == NULL or
 * present[i]}, by the definition in store.h. The ids must be distinct.
 */
uint64_t bt_model_fingerprint(const uint64_t *ids, const void *payloads, const bool *present,
                              size_t n, size_t payload_size);

/* Main thread only. */
uint64_t bt_store_fingerprint(const baton_store *store);

/* Whether `message` mentions `word` (the library's detail messages name what was wrong). */
bool bt_mentions(const char *message, const char *word);

/* Whether `message` names the 64-bit value `value`, in decimal or in hex (either case). */
bool bt_mentions_u64(const char *message, uint64_t value);

#endif /* BT_SUPPORT_STORE_H */
