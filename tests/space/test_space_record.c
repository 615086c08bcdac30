/*
 * test_space_record.c — the log's records (src/space/record.h), on one thread:
 *  - the exact bytes of a sample record of each kind, and the _size functions agree with them;
 *  - encode -> decode -> encode round trips of every kind with 1, 2, 7, 64, 65, 100 and 1000
 *    channels (a join has any width; SEEN names no channel), decoded into one reused, growing
 *    baton__record_parts, both values of each flag, ids from 1 to UINT64_MAX and several bodies;
 *    decoded views point into the input; FIRE written a part at a time gives the same bytes;
 *  - every truncation and every single bit flip of each sample is either refused with
 *    BATON_EINVAL and a "<who>: offset N: " message, or decodes to a record that encodes back to
 *    the same bytes (under ASan this also shows that the decoder reads nothing outside its input);
 *  - each documented fault is reported at its offset: unknown kind, an id of 0, a flag byte of 2,
 *    n = 0, n one above what the bytes left can hold (and that n minus one accepted), a huge n
 *    refused before anything is allocated for it, unknown REG flags, pattern text that does not
 *    parse, a malformed value, trailing bytes, non-canonical varints, empty input.
 */
#include "support/bt_common.h"

#include "baton/space.h"
#include "space/record.h"
#include "support/bt_space.h"

#define WHO "wal_replay"
#define BUF_MAX 65536

/* ---- helpers ---------------------------------------------------------------------------------- */

/* Encodes a decoded record with its kind's encoder, checking that the _size function agrees. */
static size_t encode_again(const baton__record *r, uint8_t *out)
{
    size_t expected = 0, written = 0;
    switch (r->kind) {
    case BATON__REC_PUT:
        expected = baton__record_put_size(r->channel, r->datum, r->datum_id);
        written = baton__record_put(out, r->channel, r->datum, r->datum_id, r->persistent);
        break;
    case BATON__REC_FIRE:
        expected = baton__record_fire_size(r->consumer_id, r->parts, r->n_parts);
        written = baton__record_fire(out, r->consumer_id, r->removed, r->parts, r->n_parts);
        break;
    case BATON__REC_REG:
        expected = baton__record_reg_size(r->consumer_id, r->flags, r->parts, r->n_parts, r->body);
        written = baton__record_reg(out, r->consumer_id, r->flags, r->parts, r->n_parts, r->body);
        break;
    case BATON__REC_SNAP:
        out[0] = BATON__REC_SNAP;
        expected = written = 1;
        break;
    case BATON__REC_SNAP_END:
        written = baton__record_snap_end(out, r->snap_begin);
        expected = written;
        break;
    case BATON__REC_SEEN:
        written = baton__record_seen(out, r->consumer_id, r->datum_id);
        expected = written;
        break;
    default:
        fail_msg("decoded an unknown kind %d", (int)r->kind);
    }
    assert_int_equal(written, expected);
    return written;
}

static bool inside(baton_value_view view, const uint8_t *data, size_t size)
{
    return view.data >= data && view.data + view.size <= data + size;
}

/* Decodes data, which must be accepted, and checks that it encodes back to itself. */
static void decode_ok(const uint8_t *data, size_t size, baton__record *r,
                      baton__record_parts *parts)
{
    int rc = baton__record_decode(WHO, data, size, r, parts);
    if (rc != 0)
        fail_msg("decode: %s: %s", baton_err_name(rc), baton_last_error_message());
    static uint8_t again[BUF_MAX];
    size_t n = encode_again(r, again);
    assert_int_equal(n, size);
    assert_memory_equal(again, data, size);
}

/* Decodes data, which must be refused with a message that names the fault at offset. */
static void decode_fails(const uint8_t *data, size_t size, size_t offset, const char *what)
{
    baton__record r;
    baton__record_parts parts = {0};
    int rc = baton__record_decode(WHO, data, size, &r, &parts);
    baton__record_parts_free(&parts);
    if (rc != BATON_EINVAL)
        fail_msg("expected BATON_EINVAL for %s, got %s", what, baton_err_name(rc));
    char prefix[64];
    snprintf(prefix, sizeof prefix, WHO ": offset %zu: ", offset);
    const char *message = baton_last_error_message();
    if (strncmp(message, prefix, strlen(prefix)) != 0 || strstr(message, what) == NULL)
        fail_msg("expected \"%s...%s...\", got \"%s\"", prefix, what, message);
}

/* ---- the samples ------------------------------------------------------------------------------ */

/* PUT channel "c", datum id 5, persistent, datum 42. */
static const uint8_t sample_put[] = {0x01, 0x04, 0x01, 'c', 0x05, 0x01, 0x03, 0x00,
                                     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a};
/* FIRE consumer 300, removed, channels "a" (datum 7) and "b" (no datum). */
static const uint8_t sample_fire[] = {0x02, 0xac, 0x02, 0x01, 0x02, 0x04, 0x01,
                                      'a',  0x07, 0x04, 0x01, 'b',  0x00};
/* REG consumer 9, persistent and peek, channel "a" with pattern "x", body nil. */
static const uint8_t sample_reg[] = {0x03, 0x09, 0x03, 0x01, 0x04, 0x01, 'a', 0x01, 'x', 0x00};
/* REG of a two-channel join with a tuple body, to give the mutations more to work on. */
static const uint8_t sample_reg2[] = {0x03, 0x81, 0x01, 0x00, 0x02, 0x04, 0x01, 'a', 0x05, '(',
                                      'x',  ',',  '_',  ')',  0x04, 0x01, 'b',  0x03, 'I', 'n',
                                      't',  0x06, 0x02, 0x02, 0x05, 0x01, 0xff};
static const uint8_t sample_snap[] = {0x04};
/* SNAP_END of the SNAP at sequence number 128. */
static const uint8_t sample_snap_end[] = {0x05, 0x80, 0x01};
/* SEEN: consumer 300 took its turn at datum 7. */
static const uint8_t sample_seen[] = {0x06, 0xac, 0x02, 0x07};

typedef struct sample {
    const uint8_t *data;
    size_t size;
} sample;

static const sample samples[] = {
    {sample_put, sizeof sample_put},   {sample_fire, sizeof sample_fire},
    {sample_reg, sizeof sample_reg},   {sample_reg2, sizeof sample_reg2},
    {sample_snap, sizeof sample_snap}, {sample_snap_end, sizeof sample_snap_end},
    {sample_seen, sizeof sample_seen},
};

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_sample_bytes(void **state)
{
    (void)state;
    uint8_t out[256];
    baton_value *a = bt_value("\"a\""), *b = bt_value("\"b\""), *c = bt_value("\"c\""),
                *d = bt_value("42"), *nil = bt_value("nil");

    size_t size = baton__record_put_size(baton_value_as_view(c), baton_value_as_view(d), 5);
    assert_int_equal(size, sizeof sample_put);
    assert_int_equal(baton__record_put(out, baton_value_as_view(c), baton_value_as_view(d), 5, true),
                     size);
    assert_memory_equal(out, sample_put, size);

    baton__record_part parts[2] = {
        {.channel = baton_value_as_view(a), .datum_id = 7},
        {.channel = baton_value_as_view(b), .datum_id = 0},
    };
    size = baton__record_fire_size(300, parts, 2);
    assert_int_equal(size, sizeof sample_fire);
    assert_int_equal(baton__record_fire(out, 300, true, parts, 2), size);
    assert_memory_equal(out, sample_fire, size);

    parts[0].pattern = "x";
    parts[0].pattern_size = 1;
    unsigned flags = BATON_CONSUME_PERSISTENT | BATON_CONSUME_PEEK;
    size = baton__record_reg_size(9, flags, parts, 1, baton_value_as_view(nil));
    assert_int_equal(size, sizeof sample_reg);
    assert_int_equal(baton__record_reg(out, 9, flags, parts, 1, baton_value_as_view(nil)), size);
    assert_memory_equal(out, sample_reg, size);

    assert_int_equal(baton__record_snap_end(out, 128), sizeof sample_snap_end);
    assert_memory_equal(out, sample_snap_end, sizeof sample_snap_end);
    assert_int_equal(baton__record_seen(out, 300, 7), sizeof sample_seen);
    assert_memory_equal(out, sample_seen, sizeof sample_seen);
    assert_true(baton__record_seen(out, UINT64_MAX, UINT64_MAX) <= BATON__RECORD_SEEN_MAX);

    /* And each sample decodes to the fields it was made from. */
    baton__record r;
    baton__record_parts dparts = {0};
    decode_ok(sample_put, sizeof sample_put, &r, &dparts);
    assert_int_equal(r.kind, BATON__REC_PUT);
    assert_true(baton_view_equal(r.channel, baton_value_as_view(c)));
    assert_true(baton_view_equal(r.datum, baton_value_as_view(d)));
    assert_int_equal(r.datum_id, 5);
    assert_true(r.persistent);

    decode_ok(sample_fire, sizeof sample_fire, &r, &dparts);
    assert_int_equal(r.kind, BATON__REC_FIRE);
    assert_int_equal(r.consumer_id, 300);
    assert_true(r.removed);
    assert_int_equal(r.n_parts, 2);
    assert_ptr_equal(r.parts, dparts.items);
    assert_true(baton_view_equal(r.parts[1].channel, baton_value_as_view(b)));
    assert_int_equal(r.parts[0].datum_id, 7);
    assert_int_equal(r.parts[1].datum_id, 0);
    assert_int_equal(r.parts[0].pattern_size, 0);

    decode_ok(sample_reg, sizeof sample_reg, &r, &dparts);
    assert_int_equal(r.kind, BATON__REC_REG);
    assert_int_equal(r.consumer_id, 9);
    assert_int_equal(r.flags, flags);
    assert_int_equal(r.n_parts, 1);
    assert_int_equal(r.parts[0].pattern_size, 1);
    assert_ptr_equal(r.parts[0].pattern, (const char *)sample_reg + 8);
    assert_true(baton_view_equal(r.body, baton_value_as_view(nil)));

    decode_ok(sample_reg2, sizeof sample_reg2, &r, &dparts);
    assert_int_equal(r.consumer_id, 129);
    assert_int_equal(r.flags, 0);
    assert_int_equal(r.n_parts, 2);
    assert_memory_equal(r.parts[1].pattern, "Int", 3);

    decode_ok(sample_snap, sizeof sample_snap, &r, &dparts);
    assert_int_equal(r.kind, BATON__REC_SNAP);
    decode_ok(sample_snap_end, sizeof sample_snap_end, &r, &dparts);
    assert_int_equal(r.kind, BATON__REC_SNAP_END);
    assert_int_equal(r.snap_begin, 128);
    decode_ok(sample_seen, sizeof sample_seen, &r, &dparts);
    assert_int_equal(r.kind, BATON__REC_SEEN);
    assert_int_equal(r.consumer_id, 300);
    assert_int_equal(r.datum_id, 7);
    baton__record_parts_free(&dparts);

    baton_value_destroy(a);
    baton_value_destroy(b);
    baton_value_destroy(c);
    baton_value_destroy(d);
    baton_value_destroy(nil);
}

static const char *const value_texts[] = {
    "nil", "\"chan\"", "(1, \"two\", [3])", "@42", "x\"00ff\"", "-9223372036854775808",
    "[(), [], (nil,)]", "true",
};
static const char *const pattern_texts[] = {
    "_", "x", "(a, _, [1, b])", "Int | String", "\"hello\"", "[Tuple, List, Bool]",
};
#define N_VALUES (sizeof value_texts / sizeof value_texts[0])
#define N_PATTERNS (sizeof pattern_texts / sizeof pattern_texts[0])

static const uint64_t ids[] = {1, 127, 128, 300, UINT64_C(1) << 35, UINT64_MAX};
#define N_IDS (sizeof ids / sizeof ids[0])

static void test_round_trips(void **state)
{
    (void)state;
    baton_value *values[N_VALUES];
    for (size_t i = 0; i < N_VALUES; i++)
        values[i] = bt_value(value_texts[i]);
    static uint8_t buf[BUF_MAX];
    baton__record r;
    baton__record_parts dparts = {0};

    for (size_t i = 0; i < N_IDS; i++) {
        for (int flag = 0; flag < 2; flag++) {
            baton_value_view ch = baton_value_as_view(values[i % N_VALUES]);
            baton_value_view datum = baton_value_as_view(values[(i + 3) % N_VALUES]);
            size_t size = baton__record_put(buf, ch, datum, ids[i], flag);
            assert_int_equal(size, baton__record_put_size(ch, datum, ids[i]));
            /* record.h: the bound is never below the length, and meets it at the longest id. */
            assert_true(size <= baton__record_put_max(ch, datum));
            if (ids[i] == UINT64_MAX)
                assert_int_equal(size, baton__record_put_max(ch, datum));
            decode_ok(buf, size, &r, &dparts);
            assert_int_equal(r.datum_id, ids[i]);
            assert_int_equal(r.persistent, flag);
            assert_true(inside(r.channel, buf, size) && inside(r.datum, buf, size));
            assert_true(baton_view_equal(r.channel, ch) && baton_view_equal(r.datum, datum));

            size = baton__record_snap_end(buf, ids[i]);
            decode_ok(buf, size, &r, &dparts);
            assert_int_equal(r.snap_begin, ids[i]);

            /* SEEN names two ids and no channel, whatever the consumer's width. */
            uint64_t datum_id = ids[(i + 1 + (size_t)flag) % N_IDS];
            size = baton__record_seen(buf, ids[i], datum_id);
            assert_true(size <= BATON__RECORD_SEEN_MAX);
            decode_ok(buf, size, &r, &dparts);
            assert_int_equal(r.kind, BATON__REC_SEEN);
            assert_int_equal(r.consumer_id, ids[i]);
            assert_int_equal(r.datum_id, datum_id);
        }
    }

    static const size_t counts[] = {1, 2, 7, 64, 65, 100, 1000, 3};
    enum { MOST = 1000 };
    baton__record_part *parts = calloc(MOST, sizeof *parts);
    baton__record_part *fire_parts = calloc(MOST, sizeof *fire_parts);
    assert_true(parts != NULL && fire_parts != NULL);
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        size_t n = counts[k];
        for (size_t i = 0; i < n; i++) {
            parts[i].channel = baton_value_as_view(values[(i + k) % N_VALUES]);
            parts[i].datum_id = i % 3 == 0 ? 0 : ids[i % N_IDS];
            parts[i].pattern = pattern_texts[(i + k) % N_PATTERNS];
            parts[i].pattern_size = strlen(parts[i].pattern);
        }
        for (int flag = 0; flag < 2; flag++) {
            uint64_t consumer = ids[(k + (size_t)flag) % N_IDS];
            /* FIRE parts carry no pattern: hide it so the decoded empty pattern compares. */
            for (size_t i = 0; i < n; i++)
                fire_parts[i] = (baton__record_part){parts[i].channel, parts[i].datum_id, NULL, 0};
            size_t size = baton__record_fire(buf, consumer, flag, fire_parts, n);
            assert_int_equal(size, baton__record_fire_size(consumer, fire_parts, n));
            /* The same FIRE a part at a time, as the space writes a join's. */
            static uint8_t parted[BUF_MAX];
            size_t psize = baton__record_fire_head_size(consumer, n);
            size_t w = baton__record_fire_head(parted, consumer, flag, n);
            for (size_t i = 0; i < n; i++) {
                psize += baton__record_fire_part_size(parts[i].channel, parts[i].datum_id);
                w += baton__record_fire_part(parted + w, parts[i].channel, parts[i].datum_id);
            }
            assert_int_equal(psize, size);
            assert_int_equal(w, size);
            size_t bound = baton__record_fire_head_max();
            for (size_t i = 0; i < n; i++)
                bound += baton__record_fire_part_max(parts[i].channel);
            assert_true(size <= bound);
            assert_memory_equal(parted, buf, size);
            decode_ok(buf, size, &r, &dparts);
            assert_int_equal(r.kind, BATON__REC_FIRE);
            assert_int_equal(r.consumer_id, consumer);
            assert_int_equal(r.removed, flag);
            assert_int_equal(r.n_parts, n);
            for (size_t i = 0; i < n; i++) {
                assert_true(inside(r.parts[i].channel, buf, size));
                assert_true(baton_view_equal(r.parts[i].channel, parts[i].channel));
                assert_int_equal(r.parts[i].datum_id, parts[i].datum_id);
            }

            for (unsigned flags = 0; flags < 4; flags++) {
                baton_value_view body = baton_value_as_view(values[(k + flags) % N_VALUES]);
                size = baton__record_reg(buf, consumer, flags, parts, n, body);
                assert_int_equal(size, baton__record_reg_size(consumer, flags, parts, n, body));
                decode_ok(buf, size, &r, &dparts);
                assert_int_equal(r.kind, BATON__REC_REG);
                assert_int_equal(r.flags, flags);
                assert_int_equal(r.n_parts, n);
                assert_true(baton_view_equal(r.body, body) && inside(r.body, buf, size));
                for (size_t i = 0; i < n; i++) {
                    assert_int_equal(r.parts[i].pattern_size, parts[i].pattern_size);
                    assert_memory_equal(r.parts[i].pattern, parts[i].pattern,
                                        parts[i].pattern_size);
                    assert_true((const uint8_t *)r.parts[i].pattern >= buf &&
                                (const uint8_t *)r.parts[i].pattern + r.parts[i].pattern_size <=
                                    buf + size);
                }
            }
        }
    }
    assert_true(dparts.cap >= MOST);
    baton__record_parts_free(&dparts);
    free(parts);
    free(fire_parts);
    for (size_t i = 0; i < N_VALUES; i++)
        baton_value_destroy(values[i]);
}

/* Refused cleanly with a located message, or accepted and canonical: nothing else. */
static void check_mutant(const uint8_t *data, size_t size)
{
    baton__record r;
    baton__record_parts parts = {0};
    /* A copy of exactly the mutant's size, so that ASan sees any read past its end. */
    uint8_t *copy = malloc(size > 0 ? size : 1);
    assert_non_null(copy);
    if (size > 0)
        memcpy(copy, data, size);
    int rc = baton__record_decode(WHO, copy, size, &r, &parts);
    if (rc == 0) {
        static uint8_t again[BUF_MAX];
        size_t n = encode_again(&r, again);
        assert_int_equal(n, size);
        assert_memory_equal(again, copy, size);
    } else {
        assert_int_equal(rc, BATON_EINVAL);
        assert_true(strncmp(baton_last_error_message(), WHO ": offset ", strlen(WHO ": offset ")) ==
                    0);
    }
    baton__record_parts_free(&parts);
    free(copy);
}

static void test_truncations_and_bit_flips(void **state)
{
    (void)state;
    uint8_t buf[64];
    for (size_t s = 0; s < sizeof samples / sizeof samples[0]; s++) {
        const sample *sm = &samples[s];
        for (size_t len = 0; len < sm->size; len++) {
            /* A strict prefix of a record is never a record. */
            baton__record r;
            baton__record_parts parts = {0};
            assert_int_equal(baton__record_decode(WHO, sm->data, len, &r, &parts), BATON_EINVAL);
            baton__record_parts_free(&parts);
            check_mutant(sm->data, len);
        }
        for (size_t bit = 0; bit < sm->size * 8; bit++) {
            memcpy(buf, sm->data, sm->size);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            check_mutant(buf, sm->size);
        }
    }
}

static void test_errors(void **state)
{
    (void)state;
    decode_fails(NULL, 0, 0, "record kind");
    decode_fails((const uint8_t *)"\x00", 1, 0, "unknown record kind 0x00");
    decode_fails((const uint8_t *)"\x07", 1, 0, "unknown record kind 0x07");
    decode_fails((const uint8_t *)"\xff\x01", 2, 0, "unknown record kind 0xff");

    /* Ids of 0. */
    static const uint8_t put_id0[] = {0x01, 0x04, 0x01, 'c', 0x00, 0x01, 0x00};
    decode_fails(put_id0, sizeof put_id0, 4, "datum id is 0");
    static const uint8_t fire_id0[] = {0x02, 0x00, 0x00, 0x01, 0x00, 0x00};
    decode_fails(fire_id0, sizeof fire_id0, 1, "consumer id is 0");
    static const uint8_t reg_id0[] = {0x03, 0x00, 0x00, 0x01, 0x00, 0x01, 'x', 0x00};
    decode_fails(reg_id0, sizeof reg_id0, 1, "consumer id is 0");
    decode_fails((const uint8_t *)"\x05\x00", 2, 1, "snapshot begin is 0");
    decode_fails((const uint8_t *)"\x06\x00\x01", 3, 1, "consumer id is 0");
    decode_fails((const uint8_t *)"\x06\x01\x00", 3, 2, "datum id is 0");
    decode_fails((const uint8_t *)"\x06\x01", 2, 2, "input ends before the datum id");
    decode_fails((const uint8_t *)"\x06\x01\x01\x00", 4, 3, "trailing");

    /* Flag bytes of 2. */
    static const uint8_t put_flag2[] = {0x01, 0x04, 0x01, 'c', 0x05, 0x02, 0x00};
    decode_fails(put_flag2, sizeof put_flag2, 5, "persistent byte is 0x02");
    static const uint8_t fire_flag2[] = {0x02, 0x01, 0x02, 0x01, 0x00, 0x00};
    decode_fails(fire_flag2, sizeof fire_flag2, 2, "removed byte is 0x02");

    /* n out of range, in both kinds that have it: 0, or more entries than the bytes left can
     * hold (each takes at least two), which is refused before room for them is allocated. */
    static const uint8_t fire_n0[] = {0x02, 0x01, 0x00, 0x00};
    decode_fails(fire_n0, sizeof fire_n0, 3, "channel count 0 is not in 1..0");
    static const uint8_t fire_n3[] = {0x02, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00};
    decode_fails(fire_n3, sizeof fire_n3, 3,
                 "channel count 3 is not in 1..2 (what the 5 bytes left can hold)");
    static const uint8_t fire_n2[] = {0x02, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00};
    baton__record r;
    baton__record_parts parts = {0};
    decode_ok(fire_n2, sizeof fire_n2, &r, &parts);
    assert_int_equal(r.n_parts, 2);
    baton__record_parts_free(&parts);
    static const uint8_t fire_n65[] = {0x02, 0x01, 0x00, 0x41, 0x00, 0x00};
    decode_fails(fire_n65, sizeof fire_n65, 3, "channel count 65 is not in 1..1");
    static const uint8_t reg_n0[] = {0x03, 0x01, 0x00, 0x00, 0x00};
    decode_fails(reg_n0, sizeof reg_n0, 3, "channel count 0");
    static const uint8_t reg_n65[] = {0x03, 0x01, 0x00, 0x41, 0x00, 0x01, 'x', 0x00};
    decode_fails(reg_n65, sizeof reg_n65, 3, "channel count 65");
    /* A huge count is refused as out of range, not read as truncation, and allocates nothing:
     * under ASan an attempt to allocate 2^63 entries would be reported. */
    static const uint8_t fire_nbig[] = {0x02, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f};
    decode_fails(fire_nbig, sizeof fire_nbig, 3, "channel count 4294967295");
    static const uint8_t fire_nhuge[] = {0x02, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x00};
    decode_fails(fire_nhuge, sizeof fire_nhuge, 3, "channel count 9223372036854775807");

    /* REG flags other than BATON_CONSUME_*. */
    static const uint8_t reg_flags4[] = {0x03, 0x01, 0x04, 0x01, 0x00, 0x01, 'x', 0x00};
    decode_fails(reg_flags4, sizeof reg_flags4, 2, "unknown bits");

    /* Pattern text that does not parse (and empty text); a length past the end. */
    static const uint8_t reg_bad_pattern[] = {0x03, 0x01, 0x00, 0x01, 0x04, 0x01,
                                              'a',  0x02, '(',  '(',  0x00};
    decode_fails(reg_bad_pattern, sizeof reg_bad_pattern, 7, "pattern text does not parse");
    static const uint8_t reg_empty_pattern[] = {0x03, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00};
    decode_fails(reg_empty_pattern, sizeof reg_empty_pattern, 5, "pattern text does not parse");
    static const uint8_t reg_dup_binder[] = {0x03, 0x01, 0x00, 0x01, 0x00, 0x05,
                                             '(',  'x',  ',',  'x',  ')',  0x00};
    decode_fails(reg_dup_binder, sizeof reg_dup_binder, 5, "pattern text does not parse");
    static const uint8_t reg_long_pattern[] = {0x03, 0x01, 0x00, 0x01, 0x00, 0x05, 'x', 0x00};
    decode_fails(reg_long_pattern, sizeof reg_long_pattern, 6, "inside a 5-byte pattern");

    /* Malformed values, located inside the record. */
    static const uint8_t put_bad_channel[] = {0x01, 0x09};
    decode_fails(put_bad_channel, sizeof put_bad_channel, 1, "malformed channel: unknown tag 0x09");
    static const uint8_t put_bad_datum[] = {0x01, 0x04, 0x01, 'c', 0x05, 0x00, 0x06, 0x01, 0x0a};
    decode_fails(put_bad_datum, sizeof put_bad_datum, 8, "malformed datum: unknown tag 0x0a");
    static const uint8_t put_no_datum[] = {0x01, 0x04, 0x01, 'c', 0x05, 0x00};
    decode_fails(put_no_datum, sizeof put_no_datum, 6, "before the datum");
    static const uint8_t reg_no_body[] = {0x03, 0x01, 0x00, 0x01, 0x00, 0x01, 'x'};
    decode_fails(reg_no_body, sizeof reg_no_body, 7, "before the body");

    /* Trailing bytes. */
    uint8_t trailing[sizeof sample_put + 1];
    memcpy(trailing, sample_put, sizeof sample_put);
    trailing[sizeof sample_put] = 0x00;
    decode_fails(trailing, sizeof trailing, sizeof sample_put, "1 trailing bytes");
    decode_fails((const uint8_t *)"\x04\x04", 2, 1, "trailing");
    decode_fails((const uint8_t *)"\x05\x01\x01", 3, 2, "trailing");

    /* Non-canonical and overlong varints. */
    static const uint8_t put_id_padded[] = {0x01, 0x00, 0x85, 0x00, 0x00, 0x00};
    decode_fails(put_id_padded, sizeof put_id_padded, 2, "non-canonical datum id");
    decode_fails((const uint8_t *)"\x05\x80\x00", 3, 1, "non-canonical snapshot begin");
    static const uint8_t fire_id_padded[] = {0x02, 0x81, 0x80, 0x00, 0x00, 0x01, 0x00, 0x00};
    decode_fails(fire_id_padded, sizeof fire_id_padded, 1, "non-canonical consumer id");
    static const uint8_t fire_datum_padded[] = {0x02, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00};
    decode_fails(fire_datum_padded, sizeof fire_datum_padded, 5, "non-canonical datum id");
    static const uint8_t reg_flags_padded[] = {0x03, 0x01, 0x81, 0x00, 0x01, 0x00, 0x01, 'x', 0x00};
    decode_fails(reg_flags_padded, sizeof reg_flags_padded, 2, "non-canonical flags");
    static const uint8_t reg_len_padded[] = {0x03, 0x01, 0x00, 0x01, 0x00, 0x81, 0x00, 'x', 0x00};
    decode_fails(reg_len_padded, sizeof reg_len_padded, 5, "non-canonical pattern length");
    static const uint8_t overflow[] = {0x05, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0x02};
    decode_fails(overflow, sizeof overflow, 1, "snapshot begin");
    decode_fails((const uint8_t *)"\x05\x80", 2, 1, "snapshot begin");
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_bytes),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_truncations_and_bit_flips),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("space/record", tests, NULL, NULL);
}
