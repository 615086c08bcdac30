/*
 * motion_store.c — the motion workload's store (motion_store.h).
 */
#include <string.h>

#include "cmdline.h"
#include "motion_store.h"
#include "workloads.h"

static int touch_nothing(const uint64_t *ids, void *payloads, size_t count, unsigned shard,
                         void *ctx)
{
    (void)ids;
    (void)payloads;
    (void)count;
    (void)shard;
    (void)ctx;
    return 0;
}

int motion_store_create(baton_pool *pool, baton_store_policy policy, unsigned executors,
                        size_t entities, baton_store **out_store)
{
    baton_store_config config;
    baton_store *store;
    unsigned char payload[MOTION_PAYLOAD_BYTES];
    int rc;

    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.payload_size = BATON_MOTION_PAYLOAD_SIZE;
    config.pool = pool;
    config.policy = policy;
    config.executors = executors;
    rc = baton_store_create(&config, &store);
    if (rc != 0) {
        cmdline_report_error(rc, "baton_store_create");
        return rc;
    }
    for (uint64_t id = 0; id < entities && rc == 0; id++) {
        motion_init_entity(payload, id);
        rc = baton_store_insert(store, id, payload, sizeof payload);
        if (rc != 0)
            cmdline_report_error(rc, "baton_store_insert");
    }
    if (rc == 0) {
        rc = baton_store_compact(store);
        if (rc != 0)
            cmdline_report_error(rc, "baton_store_compact");
    }
    if (rc == 0) {
        rc = baton_store_update_all(store, touch_nothing, NULL);
        if (rc != 0)
            cmdline_report_error(rc, "baton_store_update_all (warm-up)");
    }
    if (rc != 0) {
        baton_store_destroy(store);
        return rc;
    }
    *out_store = store;
    return 0;
}
