/*
 * space_recover.c — recovery: replaying a directory's log into a fresh space (baton_space_open,
 * space_durable.c), and what the settling after it owes.
 *
 * DESIGN
 *  - Recovery replays the log twice (LMDB allows one environment per file per process, so the
 *    log is opened for writing only after): the first pass finds the last complete snapshot
 *    (the SNAP named by the last SNAP_END); the second pass applies every record from it on to
 *    an empty space. Applying needs no matching: PUT appends a datum to its channel, FIRE
 *    removes the data it names by id and, if the consumer is gone, its registrations, REG
 *    registers a consumer (its patterns parsed from their text, owned by the space). A SNAP
 *    after the one replay starts from opens a snapshot that a crash cut short (compaction holds
 *    every other call back, so nothing but the snapshot follows it in that run): its PUT and REG
 *    records copy data and consumers already applied, and are told apart from the records of
 *    later runs by their ids, which are no larger than the largest applied before that SNAP
 *    (later runs take fresh ids above every id in the log). Consumers get their continuations
 *    back from the revive hook only once the whole log is applied, so a consumer that fired
 *    later is never revived.
 *  - Then the space is settled: the log's tail may end between a datum being stored and the
 *    consumers it matches taking their turn at it. A match that would take a datum or end a
 *    consumer cannot be left over from a finished call, so it fires. A turn that takes nothing
 *    (a persistent consumer over a persistent datum, a persistent peek) leaves the same state
 *    whether or not it was taken; the log tells: such a turn is recorded as SEEN (record.h).
 *    Replay owes a persistent consumer a turn at a datum stored while it waited (PUT after its
 *    REG, the pattern matches, the turn would take nothing) until a SEEN pays it (a SEEN that
 *    comes before its PUT, which a datum's first walk writes, pays it in advance); a consumer
 *    registered after the datum looked at it itself. The settling fires only what is owed
 *    (space->owed), so a reopen fires nothing that fired before, and an open that finds nothing
 *    owed and nothing to take writes nothing: reading a directory leaves its log as it was.
 *  - Ids: fresh names, datum and consumer ids continue above the largest found in the log (names
 *    are looked for inside every channel and datum).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "space/value_encoding.h"
#include "space/record.h"
#include "space/space_impl.h"

typedef struct replay_state {
    baton_space *space;
    const char *who;
    uint64_t begin, stop; /* pass 2 applies begin <= seq < stop */
    uint64_t last_end_begin;
    uint64_t max_datum, max_consumer, max_name;
    /* Inside a snapshot cut short: its records copy ids up to these (see DESIGN). */
    uint64_t copied_datum, copied_consumer;
    uint64_t applied;
    size_t persistent_consumers; /* registered so far: PUT looks for owed turns only if any */
    sp_pairs owed;               /* turns owed (moved to space->owed at the end) */
    sp_pairs paid;               /* SEENs read before their datum's PUT */
    baton__record_parts parts;   /* grown to the widest record */
} replay_state;

static int scan_pass(void *ctx, uint64_t seq, const void *data, size_t size)
{
    replay_state *st = ctx;
    if (size == 0)
        return 0;
    uint8_t kind = ((const uint8_t *)data)[0];
    if (kind == BATON__REC_SNAP_END) {
        baton__record r;
        int rc = baton__record_decode(st->who, data, size, &r, &st->parts);
        if (rc != 0)
            return baton__error(BATON_EIO, "%s: log record %llu: %s", st->who,
                                (unsigned long long)seq, baton_last_error_message());
        st->last_end_begin = r.snap_begin;
    }
    (void)seq;
    return 0;
}

/* The largest name inside a (valid) value. */
static uint64_t max_name_in(baton_value_view v)
{
    switch (baton_view_kind(v)) {
    case BATON_VALUE_NAME:
        return baton_view_name(v);
    case BATON_VALUE_TUPLE:
    case BATON_VALUE_LIST: {
        uint64_t m = 0;
        size_t n = baton_view_count(v);
        for (size_t i = 0; i < n; i++) {
            uint64_t e = max_name_in(baton_view_element(v, i));
            m = e > m ? e : m;
        }
        return m;
    }
    default:
        return 0;
    }
}

static sp_channel *replay_channel(replay_state *st, baton_value_view v)
{
    uint64_t name = max_name_in(v);
    st->max_name = name > st->max_name ? name : st->max_name;
    return baton__space_channel_get(st->space, v, true);
}

/* The persistent consumers waiting on ch that d owes a turn that takes nothing (see DESIGN). */
static int owe_turns(replay_state *st, sp_channel *ch, const sp_datum *d)
{
    baton_value_view v = {d->bytes, d->size};
    for (sp_reg *reg = ch->reg_head; reg; reg = reg->next) {
        sp_consumer *k = reg->consumer;
        if (!(k->flags & BATON_CONSUME_PERSISTENT) ||
            !((k->flags & BATON_CONSUME_PEEK) || d->persistent) ||
            !baton_pattern_match(k->pats[reg->pos], v, NULL))
            continue;
        if (baton__space_pairs_remove(&st->paid, k->id, d->id))
            continue;
        int rc = baton__space_pairs_add(&st->owed, k->id, d->id);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int apply_put(replay_state *st, const baton__record *r)
{
    if (r->datum_id <= st->copied_datum)
        return 0; /* a cut-short snapshot's copy */
    sp_channel *ch = replay_channel(st, r->channel);
    sp_datum *d = ch != NULL ? baton__space_alloc(st->space, sizeof *d + r->datum.size) : NULL;
    if (d == NULL)
        return baton__error(BATON_ENOMEM, "%s: out of memory", st->who);
    memcpy(d->bytes, r->datum.data, r->datum.size);
    d->size = r->datum.size;
    d->persistent = r->persistent;
    d->id = r->datum_id;
    baton__space_data_append(ch, d);
    uint64_t name = max_name_in(r->datum);
    st->max_name = name > st->max_name ? name : st->max_name;
    st->max_datum = r->datum_id > st->max_datum ? r->datum_id : st->max_datum;
    return st->persistent_consumers > 0 ? owe_turns(st, ch, d) : 0;
}

static int apply_seen(replay_state *st, const baton__record *r)
{
    st->max_consumer = r->consumer_id > st->max_consumer ? r->consumer_id : st->max_consumer;
    if (baton__space_pairs_remove(&st->owed, r->consumer_id, r->datum_id))
        return 0;
    return baton__space_pairs_add(&st->paid, r->consumer_id, r->datum_id);
}

static int apply_fire(replay_state *st, const baton__record *r)
{
    sp_channel *first = NULL;
    for (size_t i = 0; i < r->n_parts; i++) {
        sp_channel *ch = replay_channel(st, r->parts[i].channel);
        if (ch == NULL)
            return BATON_ENOMEM;
        first = first != NULL ? first : ch;
        if (r->parts[i].datum_id == 0)
            continue;
        for (sp_datum *d = ch->data_head; d; d = d->next)
            if (d->id == r->parts[i].datum_id) {
                baton__space_data_remove(ch, d);
                break;
            }
    }
    st->max_consumer = r->consumer_id > st->max_consumer ? r->consumer_id : st->max_consumer;
    if (!r->removed || first == NULL)
        return 0;
    for (sp_reg *reg = first->reg_head; reg; reg = reg->next)
        if (reg->consumer->id == r->consumer_id) {
            baton__space_unregister(reg->consumer);
            break;
        }
    return 0;
}

static int apply_reg(replay_state *st, const baton__record *r, const uint8_t *data, size_t size)
{
    if (r->consumer_id <= st->copied_consumer)
        return 0; /* a cut-short snapshot's copy */
    /* Sized by the record: a join may have any number of channels. */
    baton_value_view *channels = baton__calloc(r->n_parts, sizeof *channels);
    baton_pattern **patterns = baton__calloc(r->n_parts, sizeof *patterns);
    int rc = 0;
    size_t parsed = 0;
    if (channels == NULL || patterns == NULL)
        rc = baton__error(BATON_ENOMEM, "%s: out of memory for a consumer of %zu channels", st->who,
                          r->n_parts);
    for (; parsed < r->n_parts && rc == 0; parsed++) {
        channels[parsed] = r->parts[parsed].channel;
        if (replay_channel(st, channels[parsed]) == NULL)
            rc = BATON_ENOMEM;
        else
            rc = baton_pattern_parse(r->parts[parsed].pattern, r->parts[parsed].pattern_size,
                                     &patterns[parsed]);
    }
    sp_consumer *k = NULL;
    if (rc == 0)
        rc = baton__space_consumer_new(st->space, st->who, channels, patterns, r->n_parts, r->flags,
                                       r->body, &k);
    if (rc == 0) {
        k->reg_record = baton__malloc(size);
        if (k->reg_record == NULL) {
            baton__space_consumer_free(k);
            k = NULL;
            rc = baton__error(BATON_ENOMEM, "%s: out of memory", st->who);
        }
    }
    if (rc != 0) {
        for (size_t i = 0; i < parsed; i++)
            baton_pattern_destroy(patterns[i]);
    }
    baton__free(channels);
    baton__free(patterns);
    if (rc != 0)
        return rc;
    k->owns_patterns = true;
    memcpy(k->reg_record, data, size);
    k->reg_size = size;
    k->id = r->consumer_id;
    atomic_init(&k->refs, 1); /* alive */
    k->registered = true;
    k->stamp = baton__fetch_add_relaxed(&st->space->next_stamp, 1) + 1;
    for (size_t i = 0; i < k->n; i++)
        baton__space_reg_append(k->chans[i], &k->regs[i]);
    st->max_consumer = r->consumer_id > st->max_consumer ? r->consumer_id : st->max_consumer;
    st->persistent_consumers += (k->flags & BATON_CONSUME_PERSISTENT) != 0;
    return 0;
}

static int apply_pass(void *ctx, uint64_t seq, const void *data, size_t size)
{
    replay_state *st = ctx;
    if (seq < st->begin || seq >= st->stop)
        return 0;
    baton__record r;
    int rc = baton__record_decode(st->who, data, size, &r, &st->parts);
    if (rc == BATON_ENOMEM)
        return rc;
    if (rc != 0)
        return baton__error(BATON_EIO, "%s: log record %llu is damaged: %s", st->who,
                            (unsigned long long)seq, baton_last_error_message());
    st->applied++;
    switch (r.kind) {
    case BATON__REC_PUT:
        return apply_put(st, &r);
    case BATON__REC_FIRE:
        return apply_fire(st, &r);
    case BATON__REC_REG:
        return apply_reg(st, &r, data, size);
    case BATON__REC_SEEN:
        return apply_seen(st, &r);
    case BATON__REC_SNAP:
        if (seq != st->begin) { /* a snapshot cut short: see DESIGN */
            st->copied_datum = st->max_datum;
            st->copied_consumer = st->max_consumer;
        }
        return 0;
    default:
        return 0;
    }
}

typedef struct revive_state {
    const baton_space_config *config;
    const char *who;
    int rc;
} revive_state;

static int revive_channel(sp_channel *ch, void *arg)
{
    revive_state *rv = arg;
    for (sp_reg *r = ch->reg_head; r; r = r->next) {
        sp_consumer *k = r->consumer;
        if (r->pos != 0 || k->fn != NULL)
            continue;
        if (rv->config->revive == NULL)
            return rv->rc = baton__error(BATON_EINVAL, "%s: the log holds waiting consumer %llu "
                                         "but config->revive is NULL", rv->who,
                                         (unsigned long long)k->id);
        int rc = rv->config->revive(rv->config->revive_ctx, k->id, k->body, &k->fn, &k->ctx);
        if (rc == 0 && k->fn == NULL)
            rc = baton__error(BATON_EINVAL, "%s: revive gave consumer %llu no function", rv->who,
                              (unsigned long long)k->id);
        if (rc != 0)
            return rv->rc = rc;
    }
    return 0;
}

/* Moves a damaged data.mdb (and its lock file) aside so that a fresh log can start. */
static int set_aside(const char *who, const char *dir, uint64_t last_good)
{
    char from[4096], to[4200];
    snprintf(from, sizeof from, "%s/data.mdb", dir);
    snprintf(to, sizeof to, "%s/data.mdb.damaged-%llu", dir, (unsigned long long)last_good);
    if (rename(from, to) != 0)
        return baton__error(BATON_EIO, "%s: cannot move the damaged %s aside", who, from);
    snprintf(from, sizeof from, "%s/lock.mdb", dir);
    (void)remove(from);
    return 0;
}

int baton__space_recover(baton_space *space, const baton_space_config *config, const char *dir,
                         const char *who, bool *salvaged)
{
    replay_state *st = baton__calloc(1, sizeof *st);
    if (st == NULL)
        return baton__error(BATON_ENOMEM, "%s: out of memory", who);
    st->space = space;
    st->who = who;
    uint64_t last_good = 0;
    int rc = baton__wal_replay(dir, scan_pass, st, &last_good);
    bool damaged = rc == BATON_EIO;
    if (rc == BATON_ENOTFOUND) {
        baton__record_parts_free(&st->parts);
        baton__free(st);
        return 0;
    }
    if (rc != 0 && !damaged)
        goto out;
    char damage[256] = "";
    if (damaged)
        snprintf(damage, sizeof damage, "%s", baton_last_error_message());
    if (damaged && !config->salvage) {
        rc = baton__error(BATON_EIO, "%s: %s (the %llu records before it are intact; set "
                          "config.salvage to recover them)", who, damage,
                          (unsigned long long)last_good);
        goto out;
    }
    st->begin = st->last_end_begin;
    st->stop = UINT64_MAX;
    if (damaged && st->stop > last_good + 1)
        st->stop = last_good + 1;
    uint64_t applied_upto = 0;
    rc = baton__wal_replay(dir, apply_pass, st, &applied_upto);
    if (rc == BATON_EIO && damaged)
        rc = 0; /* the same damage: everything before it is applied */
    if (rc != 0)
        goto out;
    revive_state rv = {config, who, 0};
    (void)baton__space_table_walk(space->table, revive_channel, &rv);
    if ((rc = rv.rc) != 0)
        goto out;
    atomic_store_explicit(&space->next_datum, st->max_datum, memory_order_relaxed);
    atomic_store_explicit(&space->next_consumer, st->max_consumer, memory_order_relaxed);
    atomic_store_explicit(&space->next_name, st->max_name, memory_order_relaxed);
    if (damaged) {
        rc = set_aside(who, dir, last_good);
        if (rc == 0) {
            *salvaged = true;
            baton__error(BATON_EIO, "%s: salvaged %llu records before the damage: %s", who,
                         (unsigned long long)last_good, damage);
        }
    }
    if (rc == 0) {
        space->snapshot_seq = st->last_end_begin; /* what auto-compaction counts from */
        space->owed = st->owed;
        st->owed = (sp_pairs){0};
    }
out:
    baton__space_pairs_free(&st->owed);
    baton__space_pairs_free(&st->paid);
    baton__record_parts_free(&st->parts);
    baton__free(st);
    return rc;
}
