/*
 * value_encoding.h — what the space layer's files share about the canonical value encoding (see
 * include/baton/space.h for the format): the tag bytes, LEB128 varints, and a walker that returns
 * the size of the encoded value at a pointer.
 *
 * Two kinds of readers use these. Decoding untrusted bytes goes through baton__value_check, which
 * bounds every read and reports the offset of the first fault. Everything else (accessors, the
 * printer, pattern matching) reads views that came from a value or a successful decode and are
 * therefore known to be canonical; baton__value_skip and baton__varint_read_trusted rely on that
 * and do not check bounds.
 */
#ifndef BATON_SPACE_VALUE_ENCODING_H
#define BATON_SPACE_VALUE_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/space.h"

/* Tag bytes of the encoding; they never change (logs depend on them). */
enum {
    BATON__TAG_NIL = 0x00,
    BATON__TAG_FALSE = 0x01,
    BATON__TAG_TRUE = 0x02,
    BATON__TAG_INT = 0x03,
    BATON__TAG_STRING = 0x04,
    BATON__TAG_BYTES = 0x05,
    BATON__TAG_TUPLE = 0x06,
    BATON__TAG_LIST = 0x07,
    BATON__TAG_NAME = 0x08,
};

/* A uint64 takes at most 10 LEB128 bytes. */
#define BATON__VARINT_MAX 10u

/* Writes v as a shortest-form LEB128 varint into out (room for BATON__VARINT_MAX bytes) and
 * returns the number of bytes written. Inline, as baton__varint_size: every logged PUT and FIRE
 * sizes and writes a few (1.4% of a durable_async profile went to the call of this one alone). */
static inline size_t baton__varint_write(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* The number of bytes baton__varint_write would write for v. */
static inline size_t baton__varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/*
 * Reads a varint from data[0..size). Returns the number of bytes read (> 0) and stores the value
 * in *out; returns 0 when the varint is truncated, longer than 10 bytes, overflows 64 bits, or is
 * not in shortest form (a final byte of 0x00 after the first).
 */
size_t baton__varint_read(const uint8_t *data, size_t size, uint64_t *out);

/* Reads a varint known to be valid (inside a checked encoding); returns its length. */
size_t baton__varint_read_trusted(const uint8_t *data, uint64_t *out);

/* Big-endian 8-byte load and store (the int and name bodies). */
uint64_t baton__load_be64(const uint8_t *p);
void baton__store_be64(uint8_t *p, uint64_t v);

/*
 * Checks that data[0..size) starts with one complete canonical value within the depth and size
 * limits, and stores its encoded size in *out_size (which may be less than size: the caller
 * decides whether trailing bytes are an error). Never reads outside data[0..size). Returns 0, or
 * BATON_EINVAL / BATON_ERANGE with a detail message "<who>: offset N: ..." where N counts from
 * data. who names the public function for the message.
 */
int baton__value_check(const char *who, const uint8_t *data, size_t size, size_t *out_size);

/* The encoded size of the (trusted, valid) value that starts at p. */
size_t baton__value_skip(const uint8_t *p);

/* Whether a view holds exactly one complete canonical value within the limits. When it does not,
 * the detail message names the fault ("baton_value_view: offset N: ...", nothing for an empty
 * view); callers may set their own after it. */
bool baton__view_valid_walk(baton_value_view view);

/* baton__view_valid_walk, answered without the walk for the scalars that most channels and data
 * are (an Int or a name: 9 bytes; nil or a Bool: 1 byte): every produce and consume checks its
 * views, and the walk was a tenth of a produce/consume pair's time. */
static inline bool baton__view_valid(baton_value_view view)
{
    if (view.data != NULL && view.size == 9 &&
        (view.data[0] == BATON__TAG_INT || view.data[0] == BATON__TAG_NAME))
        return true;
    if (view.data != NULL && view.size == 1 && view.data[0] <= BATON__TAG_TRUE)
        return true;
    return baton__view_valid_walk(view);
}

/* The kind a valid encoding's tag byte stands for (an unknown tag reads as nil: valid encodings
 * have none). */
static inline baton_value_kind baton__kind_of_tag(uint8_t tag)
{
    switch (tag) {
    case BATON__TAG_FALSE:
    case BATON__TAG_TRUE:
        return BATON_VALUE_BOOL;
    case BATON__TAG_INT:
        return BATON_VALUE_INT;
    case BATON__TAG_STRING:
        return BATON_VALUE_STRING;
    case BATON__TAG_BYTES:
        return BATON_VALUE_BYTES;
    case BATON__TAG_TUPLE:
        return BATON_VALUE_TUPLE;
    case BATON__TAG_LIST:
        return BATON_VALUE_LIST;
    case BATON__TAG_NAME:
        return BATON_VALUE_NAME;
    default:
        return BATON_VALUE_NIL;
    }
}

#endif /* BATON_SPACE_VALUE_ENCODING_H */
