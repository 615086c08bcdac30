/*
 * bt_store.c — the store tests' helpers of bt_store.h: configs and creates that must work, the
 * fingerprint computed from its definition, message checks.
 */
#include "support/bt_common.h"
#include "support/bt_store.h"

/* An entity of the model, sorted by id. */
typedef struct bt__sort_item {
    uint64_t id;
    size_t index;
} bt__sort_item;

static int bt__cmp_item(const void *a, const void *b)
{
    const bt__sort_item *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

baton_store_config bt_store_config(size_t payload_size, unsigned shard_bits, unsigned flags,
                                   baton_pool *pool, baton_store_policy policy,
                                   baton_store_conflict_policy conflict, unsigned executors)
{
    baton_store_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.payload_size = payload_size;
    config.shard_bits = shard_bits;
    config.flags = flags;
    config.pool = pool;
    config.policy = policy;
    config.conflict = conflict;
    config.executors = executors;
    return config;
}

baton_store *bt_store_create_config(const baton_store_config *config)
{
    baton_store *store = NULL;
    int rc = baton_store_create(config, &store);
    if (rc != 0)
        fail_msg("baton_store_create(payload_size=%zu, shard_bits=%u, flags=%#x, policy=%d, "
                 "conflict=%d, executors=%u) = %s: %s",
                 config->payload_size, config->shard_bits, config->flags, (int)config->policy,
                 (int)config->conflict, config->executors, baton_err_name(rc),
                 baton_last_error_message());
    assert_non_null(store);
    return store;
}

baton_store *bt_store_create(size_t payload_size, unsigned shard_bits, baton_pool *pool,
                             baton_store_policy policy)
{
    baton_store_config config =
        bt_store_config(payload_size, shard_bits, 0, pool, policy, BATON_STORE_DEFER, 0);
    return bt_store_create_config(&config);
}

uint64_t bt_model_fingerprint(const uint64_t *ids, const void *payloads, const bool *present,
                              size_t n, size_t payload_size)
{
    bt__sort_item *items = malloc((n ? n : 1) * sizeof *items);
    assert_non_null(items);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (present == NULL || present[i])
            items[m++] = (bt__sort_item){ids[i], i};
    qsort(items, m, sizeof *items, bt__cmp_item);
    XXH3_state_t *state = XXH3_createState();
    assert_non_null(state);
    assert_int_equal(XXH3_64bits_reset(state), XXH_OK);
    for (size_t k = 0; k < m; k++) {
        unsigned char le[8];
        bt_put64(le, 0, items[k].id);
        assert_int_equal(XXH3_64bits_update(state, le, 8), XXH_OK);
        assert_int_equal(XXH3_64bits_update(
                             state, (const unsigned char *)payloads + items[k].index * payload_size,
                             payload_size),
                         XXH_OK);
    }
    uint64_t digest = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    free(items);
    return digest;
}

uint64_t bt_store_fingerprint(const baton_store *store)
{
    uint64_t fp = 0;
    bt_assert_rc(baton_store_fingerprint(store, &fp), 0);
    return fp;
}

bool bt_mentions(const char *message, const char *word)
{
    return message != NULL && strstr(message, word) != NULL;
}

bool bt_mentions_u64(const char *message, uint64_t value)
{
    char text[3][32];
    snprintf(text[0], sizeof text[0], "%llu", (unsigned long long)value);
    snprintf(text[1], sizeof text[1], "%llx", (unsigned long long)value);
    snprintf(text[2], sizeof text[2], "%llX", (unsigned long long)value);
    for (int i = 0; i < 3; i++)
        if (bt_mentions(message, text[i]))
            return true;
    return false;
}
