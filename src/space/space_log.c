/*
 * space_log.c — encoding the space's changes for the log: the records the core writes while it
 * holds the channels a change touched (PUT, REG, FIRE, SEEN), and the PUT and REG encoders
 * compaction writes again. The bottom of the durable space: this file calls only the log
 * (wal.h), the record formats (record.h) and the pattern printer; the core calls it on every
 * change, and nothing here calls back into the core or into space_durable.c.
 *
 * DESIGN
 *  - What is logged, and why effects rather than requests: see record.h. The core calls these
 *    while it holds the channels a change touched and hands the log their clocks, so the log's
 *    order agrees with every channel's order. Logging costs a claim of the thread's lane and the
 *    encoding of the record into it per change, and waits on I/O only when the disk falls a
 *    whole lane behind (wal.h).
 *  - The per-operation records (PUT, FIRE) are encoded straight into the log's lane
 *    (baton__wal_append_encoded): no buffer, no second copy, and no sizing pass either: the
 *    lane room asked for is a bound (every varint at its longest, record.h) and the encoder
 *    returns the length it wrote. Sizing each record exactly first walked its fields twice
 *    (a tenth of the appending threads' log work in a profile of durable_async). SEEN is
 *    encoded on the stack and REG once per consumer (it is a registration), both then copied.
 *    A failure is recorded for quiesce and the change goes on unlogged (the caller gets ticket
 *    0).
 */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "space/record.h"
#include "space/space_impl.h"

uint64_t baton__space_log(baton_space *space, const uint8_t *record, size_t size,
                          uint64_t *const *clocks, size_t n)
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
uint8_t *baton__space_encode_put(const sp_channel *ch, const sp_datum *d, uint8_t *stack,
                                 size_t cap, size_t *size, const char *who)
{
    baton_value_view channel = {ch->enc, ch->size}, datum = {d->bytes, d->size};
    size_t need = baton__record_put_size(channel, datum, d->id);
    uint8_t *buf = need <= cap ? stack : baton__malloc(need);
    if (buf == NULL) {
        (void)baton__error(BATON_ENOMEM, "%s: out of memory for a record of %zu bytes", who, need);
        return NULL;
    }
    *size = baton__record_put(buf, channel, datum, d->id, d->persistent);
    return buf;
}

/* Appends an encoded record: as baton__space_log, with the record written into the log's lane
 * by encode (no buffer of ours, no copy). */
static uint64_t log_encoded(baton_space *space, size_t size, baton__wal_encoder encode, void *ctx,
                            uint64_t *const *clocks, size_t n)
{
    uint64_t ticket = 0;
    int rc = baton__wal_append_encoded(space->log, size, encode, ctx, clocks, n, &ticket);
    if (rc != 0) {
        sp_record_error(space, rc);
        return 0;
    }
    return ticket;
}

typedef struct put_source {
    const sp_channel *ch;
    const sp_datum *d;
} put_source;

static size_t encode_put(void *ctx, unsigned char *out)
{
    const put_source *p = ctx;
    return baton__record_put(out, (baton_value_view){p->ch->enc, p->ch->size},
                             (baton_value_view){p->d->bytes, p->d->size}, p->d->id,
                             p->d->persistent);
}

uint64_t baton__space_log_put(baton_space *space, sp_channel *ch, const sp_datum *d)
{
    if (space->log == NULL)
        return 0;
    put_source p = {ch, d};
    /* A bound, not the exact size: the encoder returns the length (DESIGN). */
    size_t size = baton__record_put_max((baton_value_view){ch->enc, ch->size},
                                        (baton_value_view){d->bytes, d->size});
    uint64_t *clock = &ch->log_clock;
    return log_encoded(space, size, encode_put, &p, &clock, 1);
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
int baton__space_encode_reg(sp_consumer *k, const char *who, uint8_t **out, size_t *out_size)
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

uint64_t baton__space_log_reg(baton_space *space, sp_consumer *k)
{
    if (space->log == NULL)
        return 0;
    if (k->reg_record == NULL) {
        int rc = baton__space_encode_reg(k, "baton_space_consume", &k->reg_record, &k->reg_size);
        if (rc != 0) {
            sp_record_error(space, rc);
            return 0;
        }
    }
    return baton__space_log(space, k->reg_record, k->reg_size, k->clocks, k->n);
}

uint64_t baton__space_log_seen(baton_space *space, const sp_consumer *k, uint64_t datum_id)
{
    if (space->log == NULL)
        return 0;
    /* Two ids whatever the consumer's width; only the clocks it orders by grow with the join. */
    uint8_t buf[BATON__RECORD_SEEN_MAX];
    size_t size = baton__record_seen(buf, k->id, datum_id);
    return baton__space_log(space, buf, size, k->clocks, k->n);
}

/* The id the FIRE of k names for found, the datum k matched at one channel: 0 unless k takes it
 * and its PUT is logged (see baton__space_log_fire). */
/* A FIRE's fields: the consumer's id and channels (in climbing order), the data found, whether
 * the consumer is gone, whether the data's PUTs are logged, whether it peeks. */
typedef struct fire_source {
    uint64_t consumer_id;
    size_t n;
    sp_channel *const *chans;
    sp_datum *const *found;
    bool removed, logged, peek;
} fire_source;

/* The datum id a FIRE names for found: the datum when the consumer takes it (it neither peeks
 * nor is the datum persistent) and its PUT is logged, else 0. */
static uint64_t fire_datum_id(const fire_source *f, const sp_datum *found)
{
    bool taken = f->logged && !f->peek && !found->persistent;
    return taken ? found->id : 0;
}

static size_t encode_fire(void *ctx, unsigned char *out)
{
    const fire_source *f = ctx;
    size_t w = baton__record_fire_head(out, f->consumer_id, f->removed, f->n);
    for (size_t i = 0; i < f->n; i++)
        w += baton__record_fire_part(out + w,
                                     (baton_value_view){f->chans[i]->enc, f->chans[i]->size},
                                     fire_datum_id(f, f->found[i]));
    return w;
}

/* Encodes the FIRE from the consumer's own channels, a part at a time and straight into the
 * log's lane, so that a join of any width needs no array of parts and no buffer (a record too
 * long for the lane goes to the heap inside the log, as any long record does). */
static uint64_t log_fire(baton_space *space, fire_source *f, uint64_t *const *clocks)
{
    if (space->log == NULL)
        return 0;
    /* A bound, not the exact size: the encoder returns the length (DESIGN). */
    size_t size = baton__record_fire_head_max();
    for (size_t i = 0; i < f->n; i++)
        size += baton__record_fire_part_max(
            (baton_value_view){f->chans[i]->enc, f->chans[i]->size});
    return log_encoded(space, size, encode_fire, f, clocks, f->n);
}

uint64_t baton__space_log_fire(baton_space *space, sp_consumer *k, sp_datum *const *found,
                               bool removed, bool logged)
{
    fire_source f = {k->id, k->n, k->chans, found, removed, logged,
                     (k->flags & BATON_CONSUME_PEEK) != 0};
    return log_fire(space, &f, k->clocks);
}

/* The same record as baton__space_log_fire writes for a plain consumer that fires on its first
 * look (gone, every datum found stored and so logged, no peek), from the consume's arrays
 * instead of a consumer block. */
uint64_t baton__space_log_fire_at_once(baton_space *space, uint64_t consumer_id, size_t n,
                                       sp_channel *const *chans, sp_datum *const *found,
                                       uint64_t *const *clocks)
{
    fire_source f = {consumer_id, n, chans, found, true, true, false};
    return log_fire(space, &f, clocks);
}
