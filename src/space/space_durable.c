/*
 * space_durable.c — the durable space: recording changes in the write-ahead log, opening a
 * directory, compaction, sync; and the readers of a whole space (visit, stats).
 *
 * DESIGN
 *  - What is logged, and why effects rather than requests: see record.h. The core calls sp_log
 *    while it holds the channels a change touched and hands the log their clocks, so the log's
 *    order agrees with every channel's order. Logging costs a claim of the thread's lane and one
 *    copy into it per change, and waits on I/O only when the disk falls a whole lane behind
 *    (wal.h).
 *  - Opening: the directory is locked (space_lock.c), the log replayed into an empty space
 *    (space_recover.c), then opened without writing to it, and the space settled (what the
 *    log's tail owes fires, and writes its records). Only a salvage starts a fresh log, with a
 *    snapshot of what was recovered, written before the settling: a crash between the two
 *    loses the turns owed then to persistent consumers that take nothing.
 *  - Compaction writes SNAP, a PUT per stored datum, a REG per waiting consumer in registration
 *    order, SNAP_END, waits until it is durable and deletes everything before SNAP. It needs the
 *    state to stand still: sp_pause holds new outside calls back and waits until none is in
 *    flight (continuations run inside their root's call).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/atomic.h"
#include "core/error.h"
#include "space/internal.h"
#include "space/record.h"
#include "space/space_impl.h"

#define SP_DEFAULT_COMPACT_RECORDS (UINT64_C(1) << 20)

/* ---- recording ---- */

uint64_t sp_log(baton_space *space, const uint8_t *record, size_t size, uint64_t *const *clocks,
                size_t n)
{
    if (space->log == NULL)
        return 0;
    uint64_t ticket = 0;
    int rc = baton__wal_append_ordered(space->log, record, size, clocks, n, &ticket);
    if (rc != 0) {
        sp_record_error(space, rc);
        return 0;
    }
    return ticket;
}

/* Encodes the PUT of datum d on ch into stack (cap bytes) or, when it is longer, a heap buffer
 * (the caller frees it when it is not stack); *size gets its length. NULL when memory is short
 * (error set, naming who). */
static uint8_t *encode_put(const sp_channel *ch, const sp_datum *d, uint8_t *stack, size_t cap,
                           size_t *size, const char *who)
{
    baton_value_view channel = {ch->enc, ch->size}, datum = {d->bytes, d->size};
    size_t need = baton__record_put_size(channel, datum, d->id);
    uint8_t *buf = need <= cap ? stack : baton__malloc(need);
    if (buf == NULL) {
        (void)baton__error(BATON_ENOMEM, "%s: out of memory for a record of %zu bytes", who,
                           need);
        return NULL;
    }
    *size = baton__record_put(buf, channel, datum, d->id, d->persistent);
    return buf;
}

uint64_t sp_log_put(baton_space *space, sp_channel *ch, const sp_datum *d)
{
    if (space->log == NULL)
        return 0;
    uint8_t stack[256];
    size_t size = 0;
    uint8_t *buf = encode_put(ch, d, stack, sizeof stack, &size, "baton_space_produce");
    if (buf == NULL) {
        sp_record_error(space, BATON_ENOMEM);
        return 0;
    }
    uint64_t *clock = &ch->log_clock;
    uint64_t ticket = sp_log(space, buf, size, &clock, 1);
    if (buf != stack)
        baton__free(buf);
    return ticket;
}

/* The canonical text of pattern in a fresh heap string (its length in *size). */
static char *pattern_text(const baton_pattern *pattern, size_t *size)
{
    size_t length = 0;
    char probe[1];
    int rc = baton_pattern_print(pattern, probe, sizeof probe, &length);
    if (rc != 0 && rc != BATON_ERANGE)
        return NULL;
    char *text = baton__malloc(length + 1);
    if (text != NULL && baton_pattern_print(pattern, text, length + 1, &length) != 0) {
        baton__free(text);
        return NULL;
    }
    *size = length;
    return text;
}

/* A consumer's REG, encoded once when it first waits (registration, not a firing: its parts
 * come from the heap, whatever the join's width). */
static int encode_reg(sp_consumer *k, const char *who, uint8_t **out, size_t *out_size)
{
    baton__record_part *parts = baton__calloc(k->n, sizeof *parts);
    if (parts == NULL)
        return baton__error(BATON_ENOMEM, "%s: out of memory for a consumer of %zu channels", who,
                            k->n);
    int rc = 0;
    size_t made = 0;
    for (size_t i = 0; i < k->n; i++, made++) {
        size_t ci = k->caller_index[i];
        parts[ci] = (baton__record_part){.channel = {k->chans[i]->enc, k->chans[i]->size}};
        char *text = pattern_text(k->pats[i], &parts[ci].pattern_size);
        if (text == NULL) {
            rc = baton__error(BATON_ENOMEM, "%s: out of memory for a pattern's text", who);
            break;
        }
        parts[ci].pattern = text;
    }
    uint8_t *buf = NULL;
    if (rc == 0) {
        size_t size = baton__record_reg_size(k->id, k->flags, parts, k->n, k->body);
        buf = baton__malloc(size);
        if (buf == NULL)
            rc = baton__error(BATON_ENOMEM, "%s: out of memory", who);
        else
            *out_size = baton__record_reg(buf, k->id, k->flags, parts, k->n, k->body);
    }
    for (size_t i = 0; i < made; i++)
        baton__free((char *)parts[k->caller_index[i]].pattern);
    baton__free(parts);
    *out = buf;
    return rc;
}

uint64_t sp_log_reg(baton_space *space, sp_consumer *k)
{
    if (space->log == NULL)
        return 0;
    if (k->reg_record == NULL) {
        int rc = encode_reg(k, "baton_space_consume", &k->reg_record, &k->reg_size);
        if (rc != 0) {
            sp_record_error(space, rc);
            return 0;
        }
    }
    return sp_log(space, k->reg_record, k->reg_size, k->clocks, k->n);
}

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
    rc = sp_space_new(config != NULL ? &cfg : NULL, who, &space);
    if (rc != 0)
        return rc;
    struct stat sb;
    if (stat(dir, &sb) != 0 && mkdir(dir, 0755) != 0) {
        baton_space_destroy(space);
        return baton__error(BATON_EIO, "%s: cannot create the directory %s", who, dir);
    }
    baton__test_crash_point("dir");
    rc = sp_dir_lock(who, dir, cfg.durability == BATON_DURABILITY_NONE, &space->dir_lock);
    if (rc != 0) {
        baton_space_destroy(space);
        return rc;
    }
    baton__test_crash_point("lock");
    bool salvaged = false;
    rc = sp_recover(space, &cfg, dir, who, &salvaged);
    if (rc != 0) {
        baton_space_destroy(space);
        return rc;
    }
    baton_space_stats live = {0};
    (void)sp_table_walk(space->table, count_live, &live);
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
        rc = sp_settle_all(space);
    sp_pairs_free(&space->owed); /* the settling's alone: read-only until here */
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
        uint8_t *buf = encode_put(ch, d, stack, sizeof stack, &size, "baton_space_compact");
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
    (void)sp_table_walk(space->table, snap_channel, &s);
    rc = s.rc;
    sort_consumers(&s.consumers);
    for (size_t i = 0; i < s.consumers.n && rc == 0; i++) {
        sp_consumer *k = s.consumers.items[i];
        if (k->reg_record == NULL)
            rc = encode_reg(k, who, &k->reg_record, &k->reg_size);
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
    if (sp_in_continuation(space))
        return baton__error(BATON_EPERM, "baton_space_compact: called from a continuation");
    if (space->log == NULL)
        return 0;
    sp_pause(space);
    int rc = compact_now(space, "baton_space_compact");
    sp_resume(space);
    return rc;
}

int sp_maybe_compact(baton_space *space)
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

void sp_log_close(baton_space *space)
{
    if (space->log != NULL)
        (void)baton__wal_close(space->log);
    space->log = NULL;
    sp_pairs_free(&space->owed);
    sp_dir_unlock(space->dir_lock); /* after the log is closed: the next open may begin */
    space->dir_lock = -1;
}

uint64_t sp_log_seen(baton_space *space, const sp_consumer *k, uint64_t datum_id)
{
    if (space->log == NULL)
        return 0;
    /* Two ids whatever the consumer's width; only the clocks it orders by grow with the join. */
    uint8_t buf[BATON__RECORD_SEEN_MAX];
    size_t size = baton__record_seen(buf, k->id, datum_id);
    return sp_log(space, buf, size, k->clocks, k->n);
}

int baton_space_sync(baton_space *space)
{
    if (space == NULL)
        return baton__error(BATON_EINVAL, "baton_space_sync: NULL space");
    if (sp_in_continuation(space))
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
    (void)sp_table_walk(space->table, count_live, &s);
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
    return sp_channel_cmp(x->hash, x->enc, x->size, y);
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
    (void)sp_table_walk(space->table, collect_channel, &v);
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
