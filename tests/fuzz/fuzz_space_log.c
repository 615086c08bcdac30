/*
 * fuzz_space_log.c — the log's record decoder (src/space/record.h) against its encoders. Each
 * input is decoded as one record; baton__record_decode either refuses it with BATON_EINVAL (or
 * BATON_ENOMEM) or returns a record whose encoding, by the encoder of its kind, is the input
 * itself: a decoder that accepted a non-canonical form, skipped a byte or misread a field would
 * give other bytes. An accepted record's views and pattern texts must lie inside the input, and
 * its fields must be in the ranges record.h gives (ids > 0, 1 to size / 2 channels, known
 * flags).
 * Any crash, sanitizer report or broken round trip is a finding.
 *
 * Built two ways, like fuzz_space_text.c: as a libFuzzer target with -DBATON_FUZZ=ON and clang
 * (`make fuzz` runs it), and, always, as a CTest program whose main replays the saved corpus
 * (BATON_FUZZ_CORPUS_DIR) and then feeds it inputs made by mutating a fixed set of valid records
 * with a fixed-seed generator (BATON_FUZZ_DRIVER).
 */
#if defined(BATON_FUZZ_DRIVER) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* opendir, for the corpus */
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baton/space.h"
#include "space/record.h"

static void fuzz_fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_space_log: %s (input of %zu bytes:", what, size);
    for (size_t i = 0; i < size && i < 64; i++)
        fprintf(stderr, " %02x", data[i]);
    fprintf(stderr, "%s)\n", size > 64 ? " ..." : "");
    abort();
}

static bool inside(const void *p, size_t n, const uint8_t *data, size_t size)
{
    const uint8_t *b = p;
    return n == 0 || (b >= data && n <= size && b - data <= (ptrdiff_t)(size - n));
}

static void check_views(const baton__record *r, const uint8_t *data, size_t size)
{
    bool ok = true;
    switch (r->kind) {
    case BATON__REC_PUT:
        ok = r->datum_id > 0 && r->channel.size > 0 && r->datum.size > 0 &&
             inside(r->channel.data, r->channel.size, data, size) &&
             inside(r->datum.data, r->datum.size, data, size);
        break;
    case BATON__REC_FIRE:
    case BATON__REC_REG:
        ok = r->consumer_id > 0 && r->n_parts >= 1 && r->n_parts <= size / 2;
        for (size_t i = 0; ok && i < r->n_parts; i++) {
            const baton__record_part *p = &r->parts[i];
            ok = p->channel.size > 0 && inside(p->channel.data, p->channel.size, data, size) &&
                 inside(p->pattern, p->pattern_size, data, size);
            if (r->kind == BATON__REC_FIRE)
                ok = ok && p->pattern_size == 0;
            else
                ok = ok && p->pattern_size > 0 && p->datum_id == 0;
        }
        if (r->kind == BATON__REC_REG)
            ok = ok && (r->flags & ~(BATON_CONSUME_PERSISTENT | BATON_CONSUME_PEEK)) == 0 &&
                 r->body.size > 0 && inside(r->body.data, r->body.size, data, size);
        break;
    case BATON__REC_SNAP:
        break;
    case BATON__REC_SNAP_END:
        ok = r->snap_begin > 0;
        break;
    case BATON__REC_SEEN:
        ok = r->consumer_id > 0 && r->datum_id > 0;
        break;
    default:
        ok = false;
    }
    if (!ok)
        fuzz_fail("a decoded record has a field out of range or a view outside the input", data,
                  size);
}

/* The bytes the encoder of r's kind writes, into a fresh buffer of the size its _size says. */
static uint8_t *encode(const baton__record *r, size_t *out_size)
{
    size_t expected;
    switch (r->kind) {
    case BATON__REC_PUT:
        expected = baton__record_put_size(r->channel, r->datum, r->datum_id);
        break;
    case BATON__REC_FIRE:
        expected = baton__record_fire_size(r->consumer_id, r->parts, r->n_parts);
        break;
    case BATON__REC_REG:
        expected = baton__record_reg_size(r->consumer_id, r->flags, r->parts, r->n_parts, r->body);
        break;
    case BATON__REC_SNAP:
        expected = 1;
        break;
    case BATON__REC_SEEN:
        expected = BATON__RECORD_SEEN_MAX;
        break;
    default:
        expected = 1 + 10; /* SNAP_END: the kind and a varint */
        break;
    }
    uint8_t *out = malloc(expected);
    if (out == NULL)
        abort();
    size_t written;
    switch (r->kind) {
    case BATON__REC_PUT:
        written = baton__record_put(out, r->channel, r->datum, r->datum_id, r->persistent);
        break;
    case BATON__REC_FIRE:
        written = baton__record_fire(out, r->consumer_id, r->removed, r->parts, r->n_parts);
        break;
    case BATON__REC_REG:
        written = baton__record_reg(out, r->consumer_id, r->flags, r->parts, r->n_parts, r->body);
        break;
    case BATON__REC_SNAP:
        out[0] = BATON__REC_SNAP;
        written = 1;
        break;
    case BATON__REC_SEEN:
        written = baton__record_seen(out, r->consumer_id, r->datum_id);
        expected = written;
        break;
    default:
        written = baton__record_snap_end(out, r->snap_begin);
        expected = written;
        break;
    }
    if (written != expected) {
        free(out);
        return NULL;
    }
    *out_size = written;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    baton__record record;
    baton__record_parts parts = {0};
    int rc = baton__record_decode("fuzz_space_log", data, size, &record, &parts);
    if (rc != 0) {
        baton__record_parts_free(&parts);
        if (rc != BATON_EINVAL && rc != BATON_ENOMEM)
            fuzz_fail("the decoder returned a code other than BATON_EINVAL or BATON_ENOMEM", data,
                      size);
        if (strncmp(baton_last_error_message(), "fuzz_space_log: offset ", 23) != 0)
            fuzz_fail("a refusal's message does not start with \"<who>: offset \"", data, size);
        return 0;
    }
    if (record.n_parts > 0 && (record.parts != parts.items || parts.cap < record.n_parts))
        fuzz_fail("a decoded record's parts are not the caller's array", data, size);
    check_views(&record, data, size);
    size_t again_size = 0;
    uint8_t *again = encode(&record, &again_size);
    if (again == NULL)
        fuzz_fail("an encoder wrote other than its _size function said", data, size);
    if (again_size != size || memcmp(again, data, size) != 0)
        fuzz_fail("a decoded record encodes to other bytes than the input", data, size);
    free(again);
    baton__record_parts_free(&parts);
    return 0;
}

#ifdef BATON_FUZZ_DRIVER
#include "support/bt_fuzz.h"

static uint64_t next_random(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

typedef struct seed {
    uint8_t bytes[512];
    size_t size;
} seed;

/* The CTest driver: the saved corpus, then valid records, each mutated by a few random byte
 * changes, bit flips, insertions and deletions, so that most inputs get deep into the decoder
 * before they fail. */
int main(int argc, char **argv)
{
    static seed seeds[] = {
        /* PUT "c" #5 persistent 42 */
        {{0x01, 0x04, 0x01, 'c', 0x05, 0x01, 0x03, 0, 0, 0, 0, 0, 0, 0, 0x2a}, 15},
        /* PUT (1, "x") #300 [nil, @7] */
        {{0x01, 0x06, 0x02, 0x03, 0, 0, 0, 0, 0, 0, 0, 1, 0x04, 0x01, 'x', 0xac, 0x02, 0x00,
          0x07, 0x02, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 7},
         30},
        /* FIRE #300 removed: "a" #7, "b" none */
        {{0x02, 0xac, 0x02, 0x01, 0x02, 0x04, 0x01, 'a', 0x07, 0x04, 0x01, 'b', 0x00}, 13},
        /* REG #9 persistent|peek: "a" x, body nil */
        {{0x03, 0x09, 0x03, 0x01, 0x04, 0x01, 'a', 0x01, 'x', 0x00}, 10},
        /* REG #129: "a" (x,_), "b" Int, body (true, x"ff") */
        {{0x03, 0x81, 0x01, 0x00, 0x02, 0x04, 0x01, 'a', 0x05, '(', 'x', ',', '_', ')', 0x04,
          0x01, 'b', 0x03, 'I', 'n', 't', 0x06, 0x02, 0x02, 0x05, 0x01, 0xff},
         27},
        /* REG #1: nil [a, (b, c), _] | "s", body [] */
        {{0x03, 0x01, 0x01, 0x01, 0x00, 0x0f, '[', 'a', ',', '(', 'b', ',', 'c', ')', ',', '_',
          ']', '|', '"', 's', '"', 0x07, 0x00},
         23},
        {{0x04}, 1},
        {{0x05, 0x80, 0x01}, 3},
        /* SEEN #300 took its turn at #7; SEEN with both ids UINT64_MAX (ten-byte varints) */
        {{0x06, 0xac, 0x02, 0x07}, 4},
        {{0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
         21},
        {{0}, 0}, /* a 64-channel FIRE, made below */
        {{0}, 0}, /* a 200-channel FIRE (a two-byte count), made below */
        {{0}, 0}, /* a 65-channel REG, made below */
    };
    size_t n_seeds = sizeof seeds / sizeof seeds[0];
    /* Joins have any width: FIREs of 64 and 200 channels (nil channels, some data taken). */
    for (unsigned k = 0; k < 2; k++) {
        seed *s = &seeds[n_seeds - 3 + k];
        unsigned width = k == 0 ? 64 : 200;
        size_t w = 0;
        s->bytes[w++] = 0x02;
        s->bytes[w++] = 0x11;
        s->bytes[w++] = 0x00;
        if (width < 0x80) {
            s->bytes[w++] = (uint8_t)width;
        } else {
            s->bytes[w++] = (uint8_t)(0x80 | (width & 0x7f));
            s->bytes[w++] = (uint8_t)(width >> 7);
        }
        for (unsigned i = 0; i < width; i++) {
            s->bytes[w++] = 0x00;                                 /* channel nil */
            s->bytes[w++] = (uint8_t)(i % 3 == 0 ? 0 : i % 128); /* datum id */
        }
        s->size = w;
    }
    {
        /* REG #2, no flags, 65 times nil _, body nil. */
        seed *s = &seeds[n_seeds - 1];
        size_t w = 0;
        s->bytes[w++] = 0x03;
        s->bytes[w++] = 0x02;
        s->bytes[w++] = 0x00;
        s->bytes[w++] = 65;
        for (unsigned i = 0; i < 65; i++) {
            s->bytes[w++] = 0x00;
            s->bytes[w++] = 0x01;
            s->bytes[w++] = '_';
        }
        s->bytes[w++] = 0x00;
        s->size = w;
    }

    unsigned long replayed =
        bt_fuzz_replay_corpus("fuzz_space_log", BATON_FUZZ_CORPUS_DIR, LLVMFuzzerTestOneInput);

    unsigned long inputs = argc > 1 ? strtoul(argv[1], NULL, 10) : 50000;
    uint64_t x = 0x9e3779b97f4a7c15u;
    static uint8_t buf[1024];
    static const uint8_t interesting[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                                          0x07, 0x08, 0x40, 0x41, 0x7f, 0x80, 0xff};
    for (unsigned long n = 0; n < inputs; n++) {
        const seed *s = &seeds[next_random(&x) % n_seeds];
        size_t len = s->size;
        memcpy(buf, s->bytes, len);
        unsigned mutations = (unsigned)(next_random(&x) % 4);
        for (unsigned m = 0; m < mutations && len > 0; m++) {
            size_t at = (size_t)(next_random(&x) % len);
            switch (next_random(&x) % 4) {
            case 0:
                buf[at] = (uint8_t)next_random(&x);
                break;
            case 1:
                buf[at] ^= (uint8_t)(1u << (next_random(&x) % 8));
                break;
            case 2:
                if (len < sizeof buf) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = interesting[next_random(&x) % sizeof interesting];
                    len++;
                }
                break;
            default:
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            }
        }
        /* An exact-size copy, so that ASan sees a read past the input's end. */
        uint8_t *input = malloc(len > 0 ? len : 1);
        if (input == NULL)
            abort();
        memcpy(input, buf, len);
        LLVMFuzzerTestOneInput(input, len);
        free(input);
    }
    printf("fuzz_space_log: %lu corpus files and %lu inputs passed\n", replayed, inputs);
    return 0;
}
#endif
