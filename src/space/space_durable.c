/*
 * space_durable.c — the top of the space: opening a directory (lock, recovery, settling),
 * quiesce with its automatic compaction, compaction, sync, and the readers of a whole space
 * (visit, stats). This file drives the core (space.c), the log encoders (space_log.c) and
 * recovery; nothing in the layer calls into it.
 *
 * DESIGN
 *  - Opening: the directory is locked (space_lock.c), the log replayed into an empty space
 *    (space_recover.c), then opened without writing to it, and the space settled (what the
 *    log's tail owes fires, and writes its records). Only a salvage starts a fresh log, with a
 *    snapshot of what was recovered, written before the settling: a crash between the two
 *    loses the turns owed then to persistent consumers that take nothing.
 *  - Compaction writes SNAP, a PUT per stored datum, a REG per waiting consumer in registration
 *    order, SNAP_END, waits until it is durable and deletes everything before SNAP. It needs the
 *    state to stand still: baton__space_pause holds new outside calls back and waits until none
 *    is in flight (continuations run inside their root's call). Quiesce compacts once the log
 *    holds more than compact_records records beyond the live state, and more than twice it.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/config.h"
#include "core/error.h"
#include "space/value_encoding.h"
#include "space/record.h"
#include "space/space_impl.h"

#define SP_DEFAULT_COMPACT_RECORDS (UINT64_C(1) << 20)

static int count_live(sp_channel *ch, void *arg)
{
    baton_space_stats *s = arg;
    s->data += atomic_load_explicit(&ch->n_data, memory_order_relaxed);
    for (sp_reg *r = ch->reg_head; r; r = r->next)
        s->consumers += r->pos == 0;
    return 0;
}

static int compact_now(baton_space *space, const char *who);

int baton_space_open(const baton_space_config *config, const char *dir, baton_space **out)
{
    const char *who = "baton_space_open";
    if (dir == NULL)
        return baton__error(BATON_EINVAL, "%s: dir is NULL", who);
    baton_space_config cfg;
    int rc = baton__config_copy(who, "config", "baton_space_config", config, &cfg, sizeof cfg);
    if (rc != 0)
        return rc;
    if ((unsigned)cfg.durability > BATON_DURABILITY_NONE)
        return baton__error(BATON_EINVAL, "%s: unknown durability %d", who, (int)cfg.durability);
    if (cfg.log_group_max > BATON__WAL_BATCH)
        return baton__error(BATON_EINVAL, "%s: log_group_max %zu is larger than %d", who,
                            cfg.log_group_max, BATON__WAL_BATCH);
    baton_space *space = NULL;
    rc = baton__space_new(config != NULL ? &cfg : NULL, who, &space);
    if (rc != 0)
        return rc;
    struct stat sb;
    if (stat(dir, &sb) != 0 && mkdir(dir, 0755) != 0) {
        baton_space_destroy(space);
        return baton__error(BATON_EIO, "%s: cannot create the directory %s", who, dir);
    }
    baton__test_crash_point("dir");
    rc = baton__space_dir_lock(who, dir, cfg.durability == BATON_DURABILITY_NONE, &space->dir_lock);
    if (rc != 0) {
        baton_space_destroy(space);
        return rc;
    }
    baton__test_crash_point("lock");
    bool salvaged = false;
    rc = baton__space_recover(space, &cfg, dir, who, &salvaged);
    if (rc != 0) {
        baton_space_destroy(space);
        return rc;
    }
    baton_space_stats live = {0};
    (void)baton__space_table_walk(space->table, count_live, &live);
    space->recovered_data = live.data;
    space->recovered_consumers = live.consumers;
    space->snapshot_records = live.data + live.consumers;
    space->durability = cfg.durability;
    space->compact_records = cfg.compact_records ? cfg.compact_records
                                                 : SP_DEFAULT_COMPACT_RECORDS;
    if (cfg.durability != BATON_DURABILITY_NONE) {
        baton__wal_mode mode = cfg.durability == BATON_DURABILITY_SYNC ? BATON__WAL_SYNC
                                                                       : BATON__WAL_ASYNC;
        rc = baton__wal_open_group(dir, mode, cfg.log_group_max ? cfg.log_group_max
                                                                : BATON__WAL_BATCH, &space->log);
        baton__test_crash_point("log");
        if (rc == 0 && salvaged) /* the fresh log starts with what was recovered */
            rc = compact_now(space, who);
    }
    /* A read-only view shows the log as it is: nothing fires in it. */
    if (rc == 0 && cfg.durability != BATON_DURABILITY_NONE)
        rc = baton__space_settle_all(space);
    baton__space_pairs_free(&space->owed); /* the settling's alone: read-only until here */
    if (rc != 0) {
        baton_space_destroy(space);
        return rc;
    }
    *out = space;
    return 0;
}

/* ---- compaction ---- */

/* The waiting consumers of some channels, each once (at its first sorted channel). */
typedef struct consumer_list {
    sp_consumer **items;
    size_t n, cap;
} consumer_list;

static int list_consumers(consumer_list *list, const sp_channel *ch, const char *who)
{
    for (sp_reg *r = ch->reg_head; r; r = r->next) {
        if (r->pos != 0)
            continue;
        if (!baton__grow_array((void **)&list->items, &list->cap, list->n + 1,
                               sizeof *list->items))
            return baton__error(BATON_ENOMEM, "%s: out of memory", who);
        list->items[list->n++] = r->consumer;
    }
    return 0;
}

static int by_stamp(const void *a, const void *b)
{
    const sp_consumer *x = *(sp_consumer *const *)a, *y = *(sp_consumer *const *)b;
    if (x->stamp != y->stamp)
        return x->stamp < y->stamp ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Into registration order. */
static void sort_consumers(consumer_list *list)
{
    if (list->n > 1)
        qsort(list->items, list->n, sizeof *list->items, by_stamp);
}

typedef struct snap_state {
    baton_space *space;
    consumer_list consumers;
    uint64_t records;
    int rc;
} snap_state;

static int snap_channel(sp_channel *ch, void *arg)
{
    snap_state *s = arg;
    for (sp_datum *d = ch->data_head; d; d = d->next) {
        uint8_t stack[256];
        size_t size = 0;
        uint8_t *buf =
            baton__space_encode_put(ch, d, stack, sizeof stack, &size, "baton_space_compact");
        if (buf == NULL)
            return s->rc = BATON_ENOMEM;
        int rc = baton__wal_append(s->space->log, buf, size, NULL);
        if (buf != stack)
            baton__free(buf);
        if (rc != 0)
            return s->rc = rc;
        s->records++;
    }
    return s->rc = list_consumers(&s->consumers, ch, "baton_space_compact");
}

/* Writes a snapshot and truncates the log before it; the caller made the state stand still. */
static int compact_now(baton_space *space, const char *who)
{
    static const uint8_t snap = BATON__REC_SNAP;
    uint64_t begin = 0;
    /* Barriers: SNAP goes after every change before the pause, SNAP_END before every change
     * after it, whatever lanes they took (wal.h); the records between need no clocks. */
    int rc = baton__wal_append_barrier(space->log, &snap, 1, NULL, &begin);
    if (rc != 0)
        return rc;
    snap_state s = {.space = space};
    (void)baton__space_table_walk(space->table, snap_channel, &s);
    rc = s.rc;
    sort_consumers(&s.consumers);
    for (size_t i = 0; i < s.consumers.n && rc == 0; i++) {
        sp_consumer *k = s.consumers.items[i];
        if (k->reg_record == NULL)
            rc = baton__space_encode_reg(k, who, &k->reg_record, &k->reg_size);
        if (rc == 0)
            rc = baton__wal_append(space->log, k->reg_record, k->reg_size, NULL);
        s.records++;
    }
    baton__free(s.consumers.items);
    uint8_t end[BATON__VARINT_MAX + 1];
    uint64_t end_ticket = 0;
    if (rc == 0)
        rc = baton__wal_append_barrier(space->log, end, baton__record_snap_end(end, begin),
                                       &end_ticket, NULL);
    if (rc == 0)
        rc = baton__wal_wait_durable(space->log, end_ticket);
    if (rc == 0)
        rc = baton__wal_truncate_before(space->log, begin);
    if (rc == 0) {
        space->snapshot_seq = begin;
        space->snapshot_records = s.records + 2;
        baton__fetch_add_relaxed(&space->compactions, 1);
    }
    return rc;
}

int baton_space_compact(baton_space *space)
{
    if (space == NULL)
        return baton__error(BATON_EINVAL, "baton_space_compact: NULL space");
    if (baton__space_in_continuation(space))
        return baton__error(BATON_EPERM, "baton_space_compact: called from a continuation");
    if (space->log == NULL)
        return 0;
    baton__space_pause(space);
    int rc = compact_now(space, "baton_space_compact");
    baton__space_resume(space);
    return rc;
}

/* Compacts when the log has grown past the configured records and twice the live state. */
static int maybe_compact(baton_space *space)
{
    if (space->log == NULL)
        return 0;
    uint64_t next = baton__wal_next_seq(space->log);
    uint64_t since = next - space->snapshot_seq;
    uint64_t live = space->snapshot_records;
    if (since <= live + space->compact_records || since <= 2 * live)
        return 0;
    return baton_space_compact(space);
}

int baton_space_quiesce(baton_space *space)
{
    if (space == NULL)
        return baton__error(BATON_EINVAL, "baton_space_quiesce: NULL space");
    if (baton__space_in_any_continuation())
        return baton__error(BATON_EPERM, "baton_space_quiesce: called from a continuation");
    baton__space_wait_calls(space);
    int rc = atomic_exchange_explicit(&space->first_error, 0, memory_order_relaxed);
    if (rc != 0)
        return baton__error(rc, "baton_space_quiesce: a continuation failed: %s",
                            baton_err_name(rc));
    return maybe_compact(space);
}

int baton_space_sync(baton_space *space)
{
    if (space == NULL)
        return baton__error(BATON_EINVAL, "baton_space_sync: NULL space");
    if (baton__space_in_continuation(space))
        return baton__error(BATON_EPERM, "baton_space_sync: called from a continuation");
    if (space->log == NULL)
        return 0;
    return baton__wal_wait_all(space->log);
}

/* ---- readers ---- */

int baton_space_get_stats(baton_space *space, baton_space_stats *stats)
{
    if (space == NULL || stats == NULL)
        return baton__error(BATON_EINVAL, "baton_space_get_stats: NULL argument");
    baton_space_stats s = {0};
    (void)baton__space_table_walk(space->table, count_live, &s);
    if (space->log != NULL) {
        uint64_t next = baton__wal_next_seq(space->log);
        uint64_t first = baton__wal_truncated(space->log);
        s.log_records = next - (first > 1 ? first : 1);
        s.log_durable = baton__wal_durable_seq(space->log);
        s.log_writer_cpu_ns = baton__wal_writer_cpu_ns(space->log);
        s.log_appended = next - 1;
    }
    s.compactions = baton__load_relaxed(&space->compactions);
    s.recovered_data = space->recovered_data;
    s.recovered_consumers = space->recovered_consumers;
    *stats = s;
    return 0;
}

typedef struct visit_state {
    sp_channel **channels;
    size_t n, cap;
    int rc;
} visit_state;

static int collect_channel(sp_channel *ch, void *arg)
{
    visit_state *v = arg;
    if (ch->data_head == NULL && ch->reg_head == NULL)
        return 0;
    if (!baton__grow_array((void **)&v->channels, &v->cap, v->n + 1, sizeof *v->channels))
        return v->rc = baton__error(BATON_ENOMEM, "baton_space_visit: out of memory");
    v->channels[v->n++] = ch;
    return 0;
}

static int by_channel(const void *a, const void *b)
{
    const sp_channel *x = *(sp_channel *const *)a, *y = *(sp_channel *const *)b;
    return baton__space_channel_cmp(x->hash, x->enc, x->size, y);
}

/* The arrays a visit hands out per consumer, grown to the widest consumer it reports. */
typedef struct visit_arrays {
    baton_value_view *channels;
    const baton_pattern **patterns;
    size_t cap, cap_patterns;
} visit_arrays;

static int visit_consumer(sp_consumer *k,
                          int (*on_consumer)(void *, const baton_space_consumer_info *), void *ctx,
                          visit_arrays *a)
{
    if (!baton__grow_array((void **)&a->channels, &a->cap, k->n, sizeof *a->channels) ||
        !baton__grow_array((void **)&a->patterns, &a->cap_patterns, k->n, sizeof *a->patterns))
        return baton__error(BATON_ENOMEM,
                            "baton_space_visit: out of memory for a consumer of %zu channels",
                            k->n);
    baton_value_view *channels = a->channels;
    const baton_pattern **patterns = a->patterns;
    for (size_t i = 0; i < k->n; i++) {
        channels[k->caller_index[i]] = (baton_value_view){k->chans[i]->enc, k->chans[i]->size};
        patterns[k->caller_index[i]] = k->pats[i];
    }
    static const uint8_t nil = BATON__TAG_NIL;
    baton_space_consumer_info info = {
        .id = k->id,
        .flags = k->flags,
        .n_channels = k->n,
        .channels = channels,
        .patterns = patterns,
        .body = k->body.size ? k->body : (baton_value_view){&nil, 1},
    };
    return on_consumer(ctx, &info);
}

int baton_space_visit(baton_space *space,
                      int (*on_datum)(void *ctx, const baton_space_datum_info *datum),
                      int (*on_consumer)(void *ctx, const baton_space_consumer_info *consumer),
                      void *ctx)
{
    if (space == NULL)
        return baton__error(BATON_EINVAL, "baton_space_visit: NULL space");
    visit_state v = {0};
    (void)baton__space_table_walk(space->table, collect_channel, &v);
    int rc = v.rc;
    if (rc == 0 && v.n > 1)
        qsort(v.channels, v.n, sizeof *v.channels, by_channel);
    consumer_list consumers = {0};
    for (size_t i = 0; i < v.n && rc == 0; i++) {
        sp_channel *ch = v.channels[i];
        baton_value_view channel = {ch->enc, ch->size};
        for (sp_datum *d = ch->data_head; d && rc == 0 && on_datum; d = d->next) {
            baton_space_datum_info info = {channel, {d->bytes, d->size}, d->id, d->persistent};
            rc = on_datum(ctx, &info);
        }
        if (rc == 0)
            rc = list_consumers(&consumers, ch, "baton_space_visit");
    }
    sort_consumers(&consumers);
    visit_arrays arrays = {0};
    for (size_t i = 0; i < consumers.n && rc == 0 && on_consumer; i++)
        rc = visit_consumer(consumers.items[i], on_consumer, ctx, &arrays);
    baton__free(arrays.channels);
    baton__free(arrays.patterns);
    baton__free(consumers.items);
    baton__free(v.channels);
    return rc;
}
