/*
 * record.c — the log's records (record.h): encoders for each kind and a decoder for untrusted
 * bytes.
 *
 * DESIGN. The decoder is a cursor over data[0..size) with one reading function per field type;
 * each bounds its reads by size and reports the first fault with its offset from the start of the
 * record, so a damaged log names the byte where it went wrong. Values are checked by
 * baton__value_check, whose offsets count from the value: its message is rewritten to count from
 * the record instead. The encoders trust their inputs (the space hands them views it already
 * holds) and only copy bytes; each _size function mirrors its encoder field by field so that the
 * two cannot disagree by more than a reading of this file would show.
 */
#include <stdio.h>
#include <string.h>

#include "baton/space.h"
#include "core/alloc.h"
#include "core/error.h"
#include "space/value_encoding.h"
#include "space/record.h"

/* The flag bits a REG record may carry: the ones baton_space_consume accepts. */
#define RECORD_CONSUME_FLAGS (BATON_CONSUME_PERSISTENT | BATON_CONSUME_PEEK)

typedef struct cursor {
    const char *who;
    const uint8_t *data;
    size_t size;
    size_t pos;
} cursor;

static int truncated(const cursor *c, const char *what)
{
    return baton__error(BATON_EINVAL, "%s: offset %zu: input ends before the %s", c->who, c->pos,
                        what);
}

static int read_varint(cursor *c, const char *what, uint64_t *out)
{
    if (c->pos == c->size)
        return truncated(c, what);
    size_t n = baton__varint_read(c->data + c->pos, c->size - c->pos, out);
    if (n == 0)
        return baton__error(BATON_EINVAL, "%s: offset %zu: truncated, overlong or non-canonical %s",
                            c->who, c->pos, what);
    c->pos += n;
    return 0;
}

/* An id that names a datum or consumer; 0 is reserved for "none" (FIRE's datum ids). */
static int read_id(cursor *c, const char *what, uint64_t *out)
{
    size_t at = c->pos;
    int rc = read_varint(c, what, out);
    if (rc == 0 && *out == 0)
        return baton__error(BATON_EINVAL, "%s: offset %zu: %s is 0", c->who, at, what);
    return rc;
}

static int read_flag(cursor *c, const char *what, bool *out)
{
    if (c->pos == c->size)
        return truncated(c, what);
    uint8_t b = c->data[c->pos];
    if (b > 1)
        return baton__error(BATON_EINVAL, "%s: offset %zu: %s byte is 0x%02x, not 0 or 1", c->who,
                            c->pos, what, b);
    *out = b == 1;
    c->pos++;
    return 0;
}

static int read_value(cursor *c, const char *what, baton_value_view *out)
{
    if (c->pos == c->size)
        return truncated(c, what);
    size_t used = 0;
    /* A fixed who lets the checker's own offset be read back and moved to count from the record;
     * its code is always EINVAL here (an over-deep or oversized value is a malformed record). */
    if (baton__value_check("value", c->data + c->pos, c->size - c->pos, &used) != 0) {
        char detail[256];
        size_t inner = 0;
        int consumed = 0;
        const char *message = baton_last_error_message();
        if (sscanf(message, "value: offset %zu: %n", &inner, &consumed) == 1 && consumed > 0)
            snprintf(detail, sizeof detail, "%s", message + consumed);
        else
            snprintf(detail, sizeof detail, "%s", message);
        return baton__error(BATON_EINVAL, "%s: offset %zu: malformed %s: %s", c->who,
                            c->pos + inner, what, detail);
    }
    out->data = c->data + c->pos;
    out->size = used;
    c->pos += used;
    return 0;
}

/* A count of channel entries, and room for them in parts. Each entry takes at least two bytes
 * (a value and a varint), so a count above half the bytes left is damage, refused before the
 * room is allocated. */
static int read_count(cursor *c, baton__record_parts *parts, size_t *out)
{
    size_t at = c->pos;
    uint64_t n = 0;
    int rc = read_varint(c, "channel count", &n);
    if (rc != 0)
        return rc;
    size_t most = (c->size - c->pos) / 2;
    if (n < 1 || n > most)
        return baton__error(BATON_EINVAL,
                            "%s: offset %zu: channel count %llu is not in 1..%zu "
                            "(what the %zu bytes left can hold)",
                            c->who, at, (unsigned long long)n, most, c->size - c->pos);
    if (!baton__grow_array((void **)&parts->items, &parts->cap, (size_t)n, sizeof *parts->items))
        return baton__error(BATON_ENOMEM,
                            "%s: offset %zu: out of memory for %llu channel entries", c->who,
                            at, (unsigned long long)n);
    /* Parts carry no stale fields from an earlier record: a FIRE part has no pattern. */
    memset(parts->items, 0, (size_t)n * sizeof *parts->items);
    *out = (size_t)n;
    return 0;
}

/* The pattern text must parse now: replay registers it again and must not fail there. */
static int read_pattern(cursor *c, baton__record_part *part)
{
    size_t at = c->pos;
    uint64_t length = 0;
    int rc = read_varint(c, "pattern length", &length);
    if (rc != 0)
        return rc;
    if (length > c->size - c->pos)
        return baton__error(BATON_EINVAL, "%s: offset %zu: input ends inside a %llu-byte pattern",
                            c->who, c->pos, (unsigned long long)length);
    const char *text = (const char *)(c->data + c->pos);
    baton_pattern *pattern = NULL;
    rc = baton_pattern_parse(text, (size_t)length, &pattern);
    if (rc == BATON_ENOMEM)
        return baton__error(BATON_ENOMEM, "%s: offset %zu: out of memory checking a pattern",
                            c->who, c->pos);
    if (rc != 0) {
        char detail[256];
        snprintf(detail, sizeof detail, "%s", baton_last_error_message());
        return baton__error(BATON_EINVAL, "%s: offset %zu: pattern text does not parse (%s)",
                            c->who, at, detail);
    }
    baton_pattern_destroy(pattern);
    part->pattern = text;
    part->pattern_size = (size_t)length;
    c->pos += (size_t)length;
    return 0;
}

static int decode_put(cursor *c, baton__record *out)
{
    int rc = read_value(c, "channel", &out->channel);
    if (rc == 0)
        rc = read_id(c, "datum id", &out->datum_id);
    if (rc == 0)
        rc = read_flag(c, "persistent", &out->persistent);
    if (rc == 0)
        rc = read_value(c, "datum", &out->datum);
    return rc;
}

static int decode_fire(cursor *c, baton__record *out, baton__record_parts *parts)
{
    int rc = read_id(c, "consumer id", &out->consumer_id);
    if (rc == 0)
        rc = read_flag(c, "removed", &out->removed);
    if (rc == 0)
        rc = read_count(c, parts, &out->n_parts);
    out->parts = parts->items;
    for (size_t i = 0; rc == 0 && i < out->n_parts; i++) {
        rc = read_value(c, "channel", &out->parts[i].channel);
        if (rc == 0)
            rc = read_varint(c, "datum id", &out->parts[i].datum_id);
    }
    return rc;
}

static int decode_reg(cursor *c, baton__record *out, baton__record_parts *parts)
{
    int rc = read_id(c, "consumer id", &out->consumer_id);
    if (rc != 0)
        return rc;
    size_t at = c->pos;
    uint64_t flags = 0;
    rc = read_varint(c, "flags", &flags);
    if (rc != 0)
        return rc;
    if (flags & ~(uint64_t)RECORD_CONSUME_FLAGS)
        return baton__error(BATON_EINVAL, "%s: offset %zu: flags 0x%llx has unknown bits", c->who,
                            at, (unsigned long long)flags);
    out->flags = (unsigned)flags;
    rc = read_count(c, parts, &out->n_parts);
    out->parts = parts->items;
    for (size_t i = 0; rc == 0 && i < out->n_parts; i++) {
        rc = read_value(c, "channel", &out->parts[i].channel);
        if (rc == 0)
            rc = read_pattern(c, &out->parts[i]);
    }
    if (rc == 0)
        rc = read_value(c, "body", &out->body);
    return rc;
}

void baton__record_parts_free(baton__record_parts *parts)
{
    baton__free(parts->items);
    parts->items = NULL;
    parts->cap = 0;
}

int baton__record_decode(const char *who, const uint8_t *data, size_t size, baton__record *out,
                         baton__record_parts *parts)
{
    memset(out, 0, sizeof *out);
    cursor c = {who, data, size, 0};
    if (size == 0)
        return truncated(&c, "record kind");
    uint8_t kind = data[0];
    c.pos = 1;
    int rc;
    switch (kind) {
    case BATON__REC_PUT:
        rc = decode_put(&c, out);
        break;
    case BATON__REC_FIRE:
        rc = decode_fire(&c, out, parts);
        break;
    case BATON__REC_REG:
        rc = decode_reg(&c, out, parts);
        break;
    case BATON__REC_SNAP:
        rc = 0;
        break;
    case BATON__REC_SNAP_END:
        rc = read_id(&c, "snapshot begin", &out->snap_begin);
        break;
    case BATON__REC_SEEN:
        rc = read_id(&c, "consumer id", &out->consumer_id);
        if (rc == 0)
            rc = read_id(&c, "datum id", &out->datum_id);
        break;
    default:
        return baton__error(BATON_EINVAL, "%s: offset 0: unknown record kind 0x%02x", who, kind);
    }
    if (rc != 0)
        return rc;
    if (c.pos != size)
        return baton__error(BATON_EINVAL, "%s: offset %zu: %zu trailing bytes after the record",
                            who, c.pos, size - c.pos);
    out->kind = (baton__record_kind)kind;
    return 0;
}

/* ---- encoders ---- */

size_t baton__record_put_size(baton_value_view channel, baton_value_view datum, uint64_t datum_id)
{
    return 1 + channel.size + baton__varint_size(datum_id) + 1 + datum.size;
}

size_t baton__record_fire_head_size(uint64_t consumer_id, size_t n)
{
    return 1 + baton__varint_size(consumer_id) + 1 + baton__varint_size(n);
}

size_t baton__record_fire_part_size(baton_value_view channel, uint64_t datum_id)
{
    return channel.size + baton__varint_size(datum_id);
}

size_t baton__record_fire_size(uint64_t consumer_id, const baton__record_part *parts, size_t n)
{
    size_t total = baton__record_fire_head_size(consumer_id, n);
    for (size_t i = 0; i < n; i++)
        total += baton__record_fire_part_size(parts[i].channel, parts[i].datum_id);
    return total;
}

size_t baton__record_fire(uint8_t *out, uint64_t consumer_id, bool removed,
                          const baton__record_part *parts, size_t n)
{
    size_t w = baton__record_fire_head(out, consumer_id, removed, n);
    for (size_t i = 0; i < n; i++)
        w += baton__record_fire_part(out + w, parts[i].channel, parts[i].datum_id);
    return w;
}

size_t baton__record_reg_size(uint64_t consumer_id, unsigned flags,
                              const baton__record_part *parts, size_t n, baton_value_view body)
{
    size_t total = 1 + baton__varint_size(consumer_id) + baton__varint_size(flags) +
                   baton__varint_size(n);
    for (size_t i = 0; i < n; i++)
        total += parts[i].channel.size + baton__varint_size(parts[i].pattern_size) +
                 parts[i].pattern_size;
    return total + body.size;
}

size_t baton__record_reg(uint8_t *out, uint64_t consumer_id, unsigned flags,
                         const baton__record_part *parts, size_t n, baton_value_view body)
{
    size_t w = 0;
    out[w++] = BATON__REC_REG;
    w += baton__varint_write(out + w, consumer_id);
    w += baton__varint_write(out + w, flags);
    w += baton__varint_write(out + w, n);
    for (size_t i = 0; i < n; i++) {
        w += baton__record_put_bytes(out + w, parts[i].channel.data, parts[i].channel.size);
        w += baton__varint_write(out + w, parts[i].pattern_size);
        w += baton__record_put_bytes(out + w, parts[i].pattern, parts[i].pattern_size);
    }
    w += baton__record_put_bytes(out + w, body.data, body.size);
    return w;
}

size_t baton__record_snap_end(uint8_t *out, uint64_t begin)
{
    out[0] = BATON__REC_SNAP_END;
    return 1 + baton__varint_write(out + 1, begin);
}

size_t baton__record_seen(uint8_t *out, uint64_t consumer_id, uint64_t datum_id)
{
    size_t w = 0;
    out[w++] = BATON__REC_SEEN;
    w += baton__varint_write(out + w, consumer_id);
    w += baton__varint_write(out + w, datum_id);
    return w;
}
