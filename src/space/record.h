/*
 * record.h — the records the space writes to its log (internal): the encoding of each change and
 * a decoder that checks untrusted bytes.
 *
 * DESIGN
 *  - The log holds effects, not requests: what a change did to the state (a datum stored, a
 *    firing that took data and perhaps removed its consumer, a consumer registered), written by
 *    the thread that holds the channels it touched, while it holds them. So the log's order agrees
 *    with every channel's own order, replay never runs matching again, and a continuation that
 *    already ran is never run twice: its firing is one record, which is either in the log or not.
 *  - Every record is one byte of kind, then its fields; integers are LEB128 varints in shortest
 *    form (value_encoding.h), byte strings a varint length then the bytes, values their canonical
 *    encoding (checked). A record must be consumed exactly: trailing bytes are an error.
 *
 *    PUT       0x01  channel (value), datum id (varint > 0), persistent (one byte 0 or 1),
 *                    datum (value)
 *    FIRE      0x02  consumer id (varint > 0), removed (one byte 0 or 1: the consumer is gone),
 *                    n (varint >= 1), then n times: channel (value), datum id (varint; 0 when
 *                    the datum was never stored or was not taken)
 *    REG       0x03  consumer id (varint > 0), flags (varint, BATON_CONSUME_* bits only),
 *                    n (varint >= 1), then n times in the consume's order: channel (value),
 *                    pattern text (varint length, bytes; must parse), then body (value)
 *    SNAP      0x04  a snapshot begins here (no fields)
 *    SNAP_END  0x05  begin (varint > 0): the sequence number of the SNAP record this completes
 *    SEEN      0x06  consumer id (varint > 0), datum id (varint > 0): a persistent consumer has
 *                    taken its turn at a stored datum and left both in place (it fired without
 *                    taking the datum, as a persistent consumer over a persistent datum or a
 *                    persistent peek does, or it was a persistent join re-evaluated for the
 *                    datum). Replay changes nothing for it; recovery uses it to tell such a turn
 *                    that was taken from one the log's tail left untaken (space_recover.c).
 *                    It names no channel: a join's SEEN is as short as a single consumer's.
 *
 *    A join may have any number of channels, so n has no bound of its own; every entry takes at
 *    least two bytes, so a decoder refuses an n above half the bytes left before it allocates
 *    room for the entries (a damaged count cannot make it allocate more than the record's size).
 *
 *  - A snapshot is SNAP, one PUT per stored datum, one REG per waiting consumer (in registration
 *    order), SNAP_END. Recovery starts from the SNAP that the last SNAP_END names (or from the
 *    first record when there is none): an incomplete snapshot is ignored.
 */
#ifndef BATON_SPACE_RECORD_H
#define BATON_SPACE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "baton/space.h"
#include "space/value_encoding.h"

typedef enum {
    BATON__REC_PUT = 0x01,
    BATON__REC_FIRE = 0x02,
    BATON__REC_REG = 0x03,
    BATON__REC_SNAP = 0x04,
    BATON__REC_SNAP_END = 0x05,
    BATON__REC_SEEN = 0x06,
} baton__record_kind;

/* One channel entry of a FIRE or REG record. pattern is empty for FIRE. */
typedef struct baton__record_part {
    baton_value_view channel;
    uint64_t datum_id;       /* FIRE */
    const char *pattern;     /* REG: the pattern's text, not NUL-terminated */
    size_t pattern_size;
} baton__record_part;

/* Room for a decoded record's channel entries, which the decoder grows to the record's count:
 * start it zeroed, reuse it for every record (it only grows), free it with
 * baton__record_parts_free. */
typedef struct baton__record_parts {
    baton__record_part *items;
    size_t cap;
} baton__record_parts;

void baton__record_parts_free(baton__record_parts *parts);

/*
 * A decoded record. Its views and pattern pointers point into the bytes it was decoded from;
 * parts points into the caller's baton__record_parts (valid until it is grown or freed).
 */
typedef struct baton__record {
    baton__record_kind kind;
    baton_value_view channel; /* PUT */
    baton_value_view datum;   /* PUT */
    uint64_t datum_id;        /* PUT, SEEN */
    bool persistent;          /* PUT */
    uint64_t consumer_id;     /* FIRE, REG, SEEN */
    bool removed;             /* FIRE */
    unsigned flags;           /* REG */
    baton_value_view body;    /* REG */
    uint64_t snap_begin;      /* SNAP_END */
    size_t n_parts;           /* FIRE, REG */
    baton__record_part *parts;
} baton__record;

/*
 * Decodes data[0..size) into *out, using parts for its channel entries (grown when the record has
 * more than parts->cap; at most size / 2 entries). Never reads outside data[0..size), never
 * allocates except to grow parts and to check a REG's pattern text (which it parses and frees).
 * Returns 0, BATON_EINVAL with a message "<who>: offset N: ..." naming the first fault (unknown
 * kind, truncated or non-canonical varint, a malformed value, an id of 0, a flag byte other than
 * 0 or 1, a count of 0 or above what the bytes left can hold, a pattern that does not parse,
 * trailing bytes), or BATON_ENOMEM.
 */
int baton__record_decode(const char *who, const uint8_t *data, size_t size, baton__record *out,
                         baton__record_parts *parts);

/*
 * The encoders write into out (room for the size the matching _size function returns) and
 * return the number of bytes written. Their inputs are trusted (valid views, n in range).
 */
size_t baton__record_put_size(baton_value_view channel, baton_value_view datum, uint64_t datum_id);
static inline size_t baton__record_put(uint8_t *out, baton_value_view channel,
                                       baton_value_view datum, uint64_t datum_id, bool persistent);

size_t baton__record_fire_size(uint64_t consumer_id, const baton__record_part *parts, size_t n);
size_t baton__record_fire(uint8_t *out, uint64_t consumer_id, bool removed,
                          const baton__record_part *parts, size_t n);

/* FIRE a part at a time: the head (kind, consumer id, removed, n), then n parts. The space writes
 * a join's FIRE this way from its consumer's channels, with no array of parts that would bound
 * or allocate per width; baton__record_fire is the same over an array. */
size_t baton__record_fire_head_size(uint64_t consumer_id, size_t n);
static inline size_t baton__record_fire_head(uint8_t *out, uint64_t consumer_id, bool removed,
                                             size_t n);
size_t baton__record_fire_part_size(baton_value_view channel, uint64_t datum_id);
static inline size_t baton__record_fire_part(uint8_t *out, baton_value_view channel,
                                             uint64_t datum_id);

/* Bounds on the lengths above, for a caller that encodes into room it reserved before knowing
 * the exact length (the space's PUT and FIRE, written into the log's lane in one pass: the
 * exact sizes cost a second walk of the same fields). Each counts every varint at its longest
 * (BATON__VARINT_MAX bytes), so it is never below the length the encoder returns. */
static inline size_t baton__record_put_max(baton_value_view channel, baton_value_view datum)
{
    return 1 + channel.size + BATON__VARINT_MAX + 1 + datum.size;
}
static inline size_t baton__record_fire_head_max(void)
{
    return 1 + BATON__VARINT_MAX + 1 + BATON__VARINT_MAX;
}
static inline size_t baton__record_fire_part_max(baton_value_view channel)
{
    return channel.size + BATON__VARINT_MAX;
}

/* REG: parts[i].channel and parts[i].pattern / pattern_size. */
size_t baton__record_reg_size(uint64_t consumer_id, unsigned flags,
                              const baton__record_part *parts, size_t n, baton_value_view body);
size_t baton__record_reg(uint8_t *out, uint64_t consumer_id, unsigned flags,
                         const baton__record_part *parts, size_t n, baton_value_view body);

/* SNAP is the single byte BATON__REC_SNAP. SNAP_END: */
size_t baton__record_snap_end(uint8_t *out /* BATON__VARINT_MAX + 1 bytes */, uint64_t begin);

/* SEEN (both ids > 0): */
#define BATON__RECORD_SEEN_MAX 21u /* the kind and two varints of at most 10 bytes */
size_t baton__record_seen(uint8_t *out /* BATON__RECORD_SEEN_MAX bytes */, uint64_t consumer_id,
                          uint64_t datum_id);

/* ---- the per-operation encoders, inline: every logged PUT and FIRE runs them, and through a
 * call each (and one per varint) they cost more than the bytes they write ---- */

static inline size_t baton__record_put_bytes(uint8_t *out, const void *data, size_t size)
{
    if (size > 0)
        memcpy(out, data, size);
    return size;
}

static inline size_t baton__record_put(uint8_t *out, baton_value_view channel,
                                       baton_value_view datum, uint64_t datum_id, bool persistent)
{
    size_t n = 0;
    out[n++] = BATON__REC_PUT;
    n += baton__record_put_bytes(out + n, channel.data, channel.size);
    n += baton__varint_write(out + n, datum_id);
    out[n++] = persistent ? 1 : 0;
    n += baton__record_put_bytes(out + n, datum.data, datum.size);
    return n;
}

static inline size_t baton__record_fire_head(uint8_t *out, uint64_t consumer_id, bool removed,
                                             size_t n)
{
    size_t w = 0;
    out[w++] = BATON__REC_FIRE;
    w += baton__varint_write(out + w, consumer_id);
    out[w++] = removed ? 1 : 0;
    w += baton__varint_write(out + w, n);
    return w;
}

static inline size_t baton__record_fire_part(uint8_t *out, baton_value_view channel,
                                             uint64_t datum_id)
{
    size_t w = baton__record_put_bytes(out, channel.data, channel.size);
    return w + baton__varint_write(out + w, datum_id);
}

#endif /* BATON_SPACE_RECORD_H */
