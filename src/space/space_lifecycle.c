/*
 * space_lifecycle.c — a space in memory made and destroyed, and its fresh names. (The durable
 * open is space_durable.c's; the operations space.c's.)
 */
#include <stdatomic.h>
#include <string.h>

#include "baton/pool.h"
#include "core/alloc.h"
#include "core/atomic.h"
#include "core/config.h"
#include "core/error.h"
#include "core/waitpoint.h"
#include "space/space_impl.h"

int baton__space_new(const baton_space_config *config, const char *who, baton_space **out)
{
    baton_space_config cfg;
    if (config == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "%s: NULL config or out", who);
    int size_rc = baton__config_copy(who, "config", "baton_space_config", config, &cfg,
                                     sizeof cfg);
    if (size_rc != 0)
        return size_rc;
    if (cfg.pool == NULL)
        return baton__error(BATON_EINVAL, "%s: config->pool is NULL", who);
    baton_space *space = baton__aligned_alloc(BATON_CACHELINE, sizeof *space);
    if (space == NULL)
        return baton__error(BATON_ENOMEM, "%s: out of memory", who);
    memset(space, 0, sizeof *space);
    space->pool = cfg.pool;
    int rc = baton__space_table_create(&space->table);
    if (rc != 0) {
        baton__free(space);
        return rc;
    }
    space->durability = BATON_DURABILITY_NONE;
    space->dir_lock = -1;
    atomic_init(&space->next_name, 0);
    atomic_init(&space->next_consumer, 0);
    atomic_init(&space->next_datum, 0);
    atomic_init(&space->next_stamp, 0);
    static _Atomic uint64_t serials;
    space->serial = baton__fetch_add_relaxed(&serials, 1) + 1;
    atomic_init(&space->first_error, 0);
    atomic_init(&space->paused, 0);
    atomic_init(&space->compactions, 0);
    atomic_init(&space->mem, NULL);
    atomic_init(&space->shared_calls.began, 0);
    atomic_init(&space->shared_calls.ended, 0);
    baton__waitpoint_global_init();
    baton__waitpoint_init(&space->idle);
    *out = space;
    return 0;
}

int baton_space_create(const baton_space_config *config, baton_space **out)
{
    return baton__space_new(config, "baton_space_create", out);
}

static void collect_consumers(sp_channel *ch, void *arg)
{
    sp_consumer **list = arg;
    for (sp_reg *r = ch->reg_head; r; r = r->next)
        if (r->pos == 0) {
            r->consumer->free_next = *list;
            *list = r->consumer;
        }
}

static void free_data(sp_channel *ch, void *arg)
{
    (void)arg;
    for (sp_datum *d = ch->data_head, *dn; d; d = dn) {
        dn = d->next;
        baton__space_release(ch->space, d, sizeof *d + d->size);
    }
}

/* Closes the log, then lets the directory go: the next open may begin once the log is closed. */
static void close_log(baton_space *space)
{
    if (space->log != NULL)
        (void)baton__wal_close(space->log);
    space->log = NULL;
    baton__space_pairs_free(&space->owed);
    baton__space_dir_unlock(space->dir_lock);
    space->dir_lock = -1;
}

static int collect_consumers_walk(sp_channel *ch, void *arg)
{
    collect_consumers(ch, arg);
    return 0;
}

void baton_space_destroy(baton_space *space)
{
    if (space == NULL)
        return;
    close_log(space);
    sp_consumer *consumers = NULL;
    (void)baton__space_table_walk(space->table, collect_consumers_walk, &consumers);
    baton__space_table_destroy(space->table, free_data, NULL);
    while (consumers) {
        sp_consumer *next = consumers->free_next;
        baton__space_consumer_free(consumers);
        consumers = next;
    }
    baton__space_mem_destroy(space);
    baton__free(space);
}

uint64_t baton_space_fresh_name(baton_space *space)
{
    return baton__fetch_add_relaxed(&space->next_name, 1) + 1;
}
