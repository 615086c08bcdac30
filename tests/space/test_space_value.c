/*
 * test_space_value.c — values (space.h), on one thread:
 *  - exact encodings of a few values of every kind, built with the builder and parsed from text;
 *  - every kind round-trips builder -> encoding -> decode -> print -> parse, and the accessors
 *    read back what was built;
 *  - equality and hash agree (hash is XXH3-64 of the encoding);
 *  - builder errors (end without an open container, a value after the top-level one, finish with
 *    nothing or with an open container, NULL data, the depth limit) leave the builder as it was;
 *  - decode refuses non-canonical varints, unknown tags, trailing bytes, every strict prefix of a
 *    valid encoding, and too deep nesting, with a message that gives the offset; every single bit
 *    flip of a valid encoding either decodes to a value that prints and parses back or fails
 *    cleanly (run under ASan to see that nothing reads out of bounds);
 *  - parse errors (bad escapes, int64 overflow on both sides, unterminated strings, "(x)", junk
 *    after the value, depth) with offsets; print truncates into a small buffer;
 *  - allocation failures (baton__alloc_fail_after) at every step of parse, decode and a builder
 *    are BATON_ENOMEM, leak nothing under ASan, and leave a builder usable;
 *  - random values: encode, decode, print, parse and print again agree.
 */
#include "support/bt_common.h"

#include <xxhash.h>

#include "baton/space.h"
#include "core/alloc.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

static baton_value *parse_ok(const char *text)
{
    baton_value *v = NULL;
    bt_assert_rc(baton_value_parse(text, strlen(text), &v), 0);
    assert_non_null(v);
    return v;
}

/* Prints into a fresh heap string (sized by a first call). */
static char *print_alloc(baton_value_view view)
{
    size_t length = 0;
    int rc = baton_value_print(view, NULL, 0, &length);
    assert_true(rc == BATON_ERANGE);
    char *buf = malloc(length + 1);
    assert_non_null(buf);
    size_t again = 0;
    bt_assert_rc(baton_value_print(view, buf, length + 1, &again), 0);
    assert_int_equal(again, length);
    assert_int_equal(strlen(buf), length);
    return buf;
}

static void assert_encoding(const baton_value *v, const uint8_t *expected, size_t size)
{
    baton_value_view view = baton_value_as_view(v);
    assert_int_equal(view.size, size);
    assert_memory_equal(view.data, expected, size);
}

/* Decodes, prints, parses and prints again: everything must agree with v. */
static void assert_round_trip(const baton_value *v)
{
    baton_value_view view = baton_value_as_view(v);
    baton_value *decoded = NULL;
    bt_assert_rc(baton_value_decode(view.data, view.size, &decoded), 0);
    assert_true(baton_view_equal(view, baton_value_as_view(decoded)));
    char *text = print_alloc(view);
    baton_value *parsed = NULL;
    bt_assert_rc(baton_value_parse(text, strlen(text), &parsed), 0);
    if (!baton_view_equal(view, baton_value_as_view(parsed)))
        fail_msg("parse(print(v)) != v for %s", text);
    char *text2 = print_alloc(baton_value_as_view(parsed));
    assert_string_equal(text, text2);
    baton_value *copy = NULL;
    bt_assert_rc(baton_value_from_view(view, &copy), 0);
    assert_true(baton_view_equal(view, baton_value_as_view(copy)));
    assert_int_equal(baton_view_hash(view), baton_view_hash(baton_value_as_view(parsed)));
    free(text);
    free(text2);
    baton_value_destroy(decoded);
    baton_value_destroy(parsed);
    baton_value_destroy(copy);
}

static void assert_message_has(const char *needle)
{
    const char *msg = baton_last_error_message();
    if (msg == NULL || strstr(msg, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", msg ? msg : "(null)", needle);
}

/* ---- exact encodings -------------------------------------------------------------------------- */

static void test_encodings(void **state)
{
    (void)state;
    baton_value_builder *b = NULL;
    baton_value *v = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);

    static const uint8_t int1[] = {0x03, 0, 0, 0, 0, 0, 0, 0, 1};
    bt_assert_rc(baton_value_add_int(b, 1), 0);
    bt_assert_rc(baton_value_finish(b, &v), 0);
    assert_encoding(v, int1, sizeof int1);
    baton_value_destroy(v);

    static const uint8_t minus2[] = {0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
    bt_assert_rc(baton_value_add_int(b, -2), 0);
    bt_assert_rc(baton_value_finish(b, &v), 0);
    assert_encoding(v, minus2, sizeof minus2);
    baton_value_destroy(v);

    static const uint8_t hi[] = {0x04, 0x02, 0x68, 0x69};
    bt_assert_rc(baton_value_add_string(b, "hi", 2), 0);
    bt_assert_rc(baton_value_finish(b, &v), 0);
    assert_encoding(v, hi, sizeof hi);
    baton_value_destroy(v);

    static const uint8_t tuple1[] = {0x06, 0x01, 0x03, 0, 0, 0, 0, 0, 0, 0, 1};
    bt_assert_rc(baton_value_begin_tuple(b), 0);
    bt_assert_rc(baton_value_add_int(b, 1), 0);
    bt_assert_rc(baton_value_end(b), 0);
    bt_assert_rc(baton_value_finish(b, &v), 0);
    assert_encoding(v, tuple1, sizeof tuple1);
    baton_value_destroy(v);

    static const uint8_t nested[] = {0x06, 0x03, 0x00, 0x07, 0x02, 0x02, 0x01, 0x06, 0x00};
    bt_assert_rc(baton_value_begin_tuple(b), 0);
    bt_assert_rc(baton_value_add_nil(b), 0);
    bt_assert_rc(baton_value_begin_list(b), 0);
    bt_assert_rc(baton_value_add_bool(b, true), 0);
    bt_assert_rc(baton_value_add_bool(b, false), 0);
    bt_assert_rc(baton_value_end(b), 0);
    bt_assert_rc(baton_value_begin_tuple(b), 0);
    bt_assert_rc(baton_value_end(b), 0);
    bt_assert_rc(baton_value_end(b), 0);
    bt_assert_rc(baton_value_finish(b, &v), 0);
    assert_encoding(v, nested, sizeof nested);
    baton_value_destroy(v);

    static const uint8_t name[] = {0x08, 0, 0, 0, 0, 0, 0, 0x01, 0x02};
    bt_assert_rc(baton_value_add_name(b, 258), 0);
    bt_assert_rc(baton_value_finish(b, &v), 0);
    assert_encoding(v, name, sizeof name);
    baton_value_destroy(v);

    /* A 200-byte string: the length takes two varint bytes (0xc8 0x01). */
    char long_text[200];
    memset(long_text, 'a', sizeof long_text);
    bt_assert_rc(baton_value_add_string(b, long_text, sizeof long_text), 0);
    bt_assert_rc(baton_value_finish(b, &v), 0);
    baton_value_view view = baton_value_as_view(v);
    assert_int_equal(view.size, 203);
    assert_int_equal(view.data[0], 0x04);
    assert_int_equal(view.data[1], 0xc8);
    assert_int_equal(view.data[2], 0x01);
    baton_value_destroy(v);

    /* 130 elements: the count's varint is inserted in front of elements already written. */
    bt_assert_rc(baton_value_begin_list(b), 0);
    for (int i = 0; i < 130; i++)
        bt_assert_rc(baton_value_add_nil(b), 0);
    bt_assert_rc(baton_value_end(b), 0);
    bt_assert_rc(baton_value_finish(b, &v), 0);
    view = baton_value_as_view(v);
    assert_int_equal(view.size, 133);
    assert_int_equal(view.data[1], 0x82);
    assert_int_equal(view.data[2], 0x01);
    assert_int_equal(baton_view_count(view), 130);
    baton_value_destroy(v);
    baton_value_builder_destroy(b);

    /* The same encodings from text. */
    v = parse_ok(" ( nil , [ true,false ] , ( ) ) ");
    assert_encoding(v, nested, sizeof nested);
    baton_value_destroy(v);
    v = parse_ok("(1,)");
    assert_encoding(v, tuple1, sizeof tuple1);
    baton_value_destroy(v);
    v = parse_ok("x\"00FF\"");
    static const uint8_t bytes[] = {0x05, 0x02, 0x00, 0xff};
    assert_encoding(v, bytes, sizeof bytes);
    baton_value_destroy(v);
}

/* ---- round trips and accessors ---------------------------------------------------------------- */

static void test_canonical_texts(void **state)
{
    (void)state;
    static const char *texts[] = {
        "nil", "true", "false", "0", "-42", "9223372036854775807", "-9223372036854775808",
        "\"\"", "\"a \\\"quoted\\\" string\\n\"", "\"\\\\ \\t \\r \\0 \\x01 \\x7f \xc3\xa9\"",
        "x\"\"", "x\"00ff10\"", "@0", "@17", "@18446744073709551615", "()", "(1,)", "[]",
        "[1]", "(\"hello\", 42, [1, 2])", "[(), [], (nil,), [[x\"ab\"]]]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        baton_value *v = parse_ok(texts[i]);
        char *printed = print_alloc(baton_value_as_view(v));
        if (strcmp(printed, texts[i]) != 0)
            fail_msg("print(parse(%s)) = %s", texts[i], printed);
        assert_round_trip(v);
        free(printed);
        baton_value_destroy(v);
    }
    /* Non-canonical text prints canonically. */
    static const char *loose[][2] = {
        {" ( 1 , 2 , ) ", "(1, 2)"}, {"[1,2,]", "[1, 2]"}, {"-0", "0"}, {"007", "7"},
        {"\"\\x41\"", "\"A\""}, {"x\"AbCd\"", "x\"abcd\""}, {"\t\r\n@01\n", "@1"},
    };
    for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
        baton_value *v = parse_ok(loose[i][0]);
        char *printed = print_alloc(baton_value_as_view(v));
        assert_string_equal(printed, loose[i][1]);
        free(printed);
        baton_value_destroy(v);
    }
}

static void test_accessors(void **state)
{
    (void)state;
    baton_value *v = parse_ok("(nil, true, false, -7, \"str\", x\"0102\", @99, [1, 2, 3], ())");
    baton_value_view all = baton_value_as_view(v);
    assert_int_equal(baton_view_kind(all), BATON_VALUE_TUPLE);
    assert_int_equal(baton_view_count(all), 9);
    static const baton_value_kind kinds[] = {
        BATON_VALUE_NIL,   BATON_VALUE_BOOL,  BATON_VALUE_BOOL, BATON_VALUE_INT,   BATON_VALUE_STRING,
        BATON_VALUE_BYTES, BATON_VALUE_NAME, BATON_VALUE_LIST, BATON_VALUE_TUPLE,
    };
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(baton_view_kind(baton_view_element(all, i)), kinds[i]);
    assert_true(baton_view_bool(baton_view_element(all, 1)));
    assert_false(baton_view_bool(baton_view_element(all, 2)));
    assert_int_equal(baton_view_int(baton_view_element(all, 3)), -7);
    size_t size = 0;
    const uint8_t *p = baton_view_bytes(baton_view_element(all, 4), &size);
    assert_int_equal(size, 3);
    assert_memory_equal(p, "str", 3);
    p = baton_view_bytes(baton_view_element(all, 5), &size);
    assert_int_equal(size, 2);
    assert_int_equal(p[0], 1);
    assert_int_equal(p[1], 2);
    assert_int_equal(baton_view_name(baton_view_element(all, 6)), 99);
    baton_value_view list = baton_view_element(all, 7);
    assert_int_equal(baton_view_count(list), 3);
    assert_int_equal(baton_view_int(baton_view_element(list, 2)), 3);
    assert_int_equal(baton_view_count(baton_view_element(all, 8)), 0);
    /* Out of range and the wrong kind: empty views and zeros. */
    baton_value_view none = baton_view_element(all, 9);
    assert_null(none.data);
    assert_int_equal(none.size, 0);
    assert_int_equal(baton_view_element(list, 3).size, 0);
    assert_int_equal(baton_view_int(baton_view_element(all, 4)), 0);
    assert_int_equal(baton_view_name(none), 0);
    assert_false(baton_view_bool(baton_view_element(all, 3)));
    assert_null(baton_view_bytes(baton_view_element(all, 3), &size));
    assert_int_equal(size, 0);
    assert_int_equal(baton_view_count(baton_view_element(all, 3)), 0);
    assert_int_equal(baton_view_element(baton_view_element(all, 3), 0).size, 0);

    /* A part as a value of its own, and copied into a builder. */
    baton_value *part = NULL;
    bt_assert_rc(baton_value_from_view(list, &part), 0);
    assert_true(baton_view_equal(baton_value_as_view(part), list));
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    bt_assert_rc(baton_value_begin_tuple(b), 0);
    bt_assert_rc(baton_value_add_view(b, list), 0);
    bt_assert_rc(baton_value_end(b), 0);
    baton_value *wrapped = NULL;
    bt_assert_rc(baton_value_finish(b, &wrapped), 0);
    baton_value *expected = parse_ok("([1, 2, 3],)");
    assert_true(baton_view_equal(baton_value_as_view(wrapped), baton_value_as_view(expected)));
    baton_value_destroy(expected);
    baton_value_destroy(wrapped);
    baton_value_destroy(part);
    baton_value_destroy(v);
    baton_value_builder_destroy(b);
}

static void test_equal_hash(void **state)
{
    (void)state;
    static const char *texts[] = {"nil", "0", "1", "\"\"", "x\"\"", "()", "[]", "(1,)", "[1]",
                                  "\"1\"", "@1", "(1, 2)", "(2, 1)", "false", "true"};
    size_t n = sizeof texts / sizeof texts[0];
    for (size_t i = 0; i < n; i++) {
        baton_value *a = parse_ok(texts[i]);
        baton_value_view av = baton_value_as_view(a);
        assert_int_equal(baton_view_hash(av), (uint64_t)XXH3_64bits(av.data, av.size));
        for (size_t j = 0; j < n; j++) {
            baton_value *c = parse_ok(texts[j]);
            baton_value_view cv = baton_value_as_view(c);
            assert_int_equal(baton_view_equal(av, cv), i == j);
            if (i == j)
                assert_int_equal(baton_view_hash(av), baton_view_hash(cv));
            else
                assert_true(baton_view_hash(av) != baton_view_hash(cv));
            baton_value_destroy(c);
        }
        baton_value_destroy(a);
    }
}

/* ---- builder errors --------------------------------------------------------------------------- */

static void test_builder_errors(void **state)
{
    (void)state;
    baton_value_builder *b = NULL;
    baton_value *v = NULL;
    bt_assert_rc(baton_value_builder_create(NULL), BATON_EINVAL);
    bt_assert_rc(baton_value_add_nil(NULL), BATON_EINVAL);
    bt_assert_rc(baton_value_end(NULL), BATON_EINVAL);
    bt_assert_rc(baton_value_finish(NULL, &v), BATON_EINVAL);
    bt_assert_rc(baton_value_builder_create(&b), 0);
    bt_assert_rc(baton_value_finish(b, NULL), BATON_EINVAL);
    bt_assert_rc(baton_value_finish(b, &v), BATON_EINVAL);
    bt_assert_rc(baton_value_end(b), BATON_EINVAL);
    bt_assert_rc(baton_value_add_string(b, NULL, 1), BATON_EINVAL);
    bt_assert_rc(baton_value_add_bytes(b, NULL, 1), BATON_EINVAL);
    bt_assert_rc(baton_value_add_string(b, NULL, 0), 0); /* "" */
    /* Complete: nothing more may be added, and the builder keeps the value. */
    bt_assert_rc(baton_value_add_nil(b), BATON_EINVAL);
    bt_assert_rc(baton_value_begin_tuple(b), BATON_EINVAL);
    bt_assert_rc(baton_value_end(b), BATON_EINVAL);
    bt_assert_rc(baton_value_finish(b, &v), 0);
    static const uint8_t empty[] = {0x04, 0x00};
    assert_encoding(v, empty, sizeof empty);
    baton_value_destroy(v);

    /* Open container: finish refuses, and the builder goes on. */
    bt_assert_rc(baton_value_begin_list(b), 0);
    bt_assert_rc(baton_value_finish(b, &v), BATON_EINVAL);
    baton_value_view bad = {(const uint8_t *)"\x04\x05x", 3};
    bt_assert_rc(baton_value_add_view(b, bad), BATON_EINVAL);
    baton_value_view none = {NULL, 0};
    bt_assert_rc(baton_value_add_view(b, none), BATON_EINVAL);
    bt_assert_rc(baton_value_add_int(b, 5), 0);
    bt_assert_rc(baton_value_end(b), 0);
    bt_assert_rc(baton_value_finish(b, &v), 0);
    baton_value *expected = parse_ok("[5]");
    assert_true(baton_view_equal(baton_value_as_view(v), baton_value_as_view(expected)));
    baton_value_destroy(expected);

    /* Depth: BATON_VALUE_MAX_DEPTH levels are fine, one more is ERANGE and changes nothing. */
    for (unsigned i = 0; i < BATON_VALUE_MAX_DEPTH; i++)
        bt_assert_rc(baton_value_begin_tuple(b), 0);
    bt_assert_rc(baton_value_begin_list(b), BATON_ERANGE);
    /* A copied view nests too: a one-level view no longer fits. */
    bt_assert_rc(baton_value_add_view(b, baton_value_as_view(v)), BATON_ERANGE);
    for (unsigned i = 0; i < BATON_VALUE_MAX_DEPTH; i++)
        bt_assert_rc(baton_value_end(b), 0);
    baton_value *deep = NULL;
    bt_assert_rc(baton_value_finish(b, &deep), 0);
    baton_value_view dv = baton_value_as_view(deep);
    assert_int_equal(dv.size, 2 * BATON_VALUE_MAX_DEPTH);
    assert_round_trip(deep);
    baton_value_destroy(deep);
    baton_value_destroy(v);
    baton_value_builder_destroy(b);
    baton_value_builder_destroy(NULL);
    baton_value_destroy(NULL);
}

/* ---- decoding hostile bytes ------------------------------------------------------------------- */

static void expect_decode(const void *data, size_t size, int code, const char *needle)
{
    baton_value *v = NULL;
    bt_assert_rc(baton_value_decode(data, size, &v), code);
    assert_null(v);
    if (needle != NULL)
        assert_message_has(needle);
    baton_value_view view = {data, size};
    if (code != 0) {
        bt_assert_rc(baton_value_from_view(view, &v), BATON_EINVAL);
        size_t length;
        bt_assert_rc(baton_value_print(view, NULL, 0, &length), BATON_EINVAL);
    }
}

static void test_decode_errors(void **state)
{
    (void)state;
    baton_value *v = NULL;
    bt_assert_rc(baton_value_decode(NULL, 0, &v), BATON_EINVAL);
    bt_assert_rc(baton_value_decode("\x00", 1, NULL), BATON_EINVAL);
    expect_decode("", 0, BATON_EINVAL, "offset 0");
    expect_decode("\x09", 1, BATON_EINVAL, "offset 0: unknown tag 0x09");
    expect_decode("\xff", 1, BATON_EINVAL, "unknown tag");
    expect_decode("\x00\x00", 2, BATON_EINVAL, "offset 1: 1 trailing");
    /* Non-canonical varints: a zero final byte after the first. */
    expect_decode("\x04\x80\x00", 3, BATON_EINVAL, "offset 1");
    expect_decode("\x04\x81\x00" "a", 4, BATON_EINVAL, "non-canonical");
    expect_decode("\x06\x80\x00", 3, BATON_EINVAL, "offset 1");
    /* Eleven and ten varint bytes; bit 64 set. */
    expect_decode("\x04\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12, BATON_EINVAL, "offset 1");
    expect_decode("\x04\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11, BATON_EINVAL, "offset 1");
    /* Lengths and counts that the input cannot hold, and ones above the limit. */
    expect_decode("\x04\x05" "abc", 5, BATON_EINVAL, "offset 2");
    expect_decode("\x06\x7f\x00", 3, BATON_EINVAL, "count 127");
    expect_decode("\x04\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11, BATON_ERANGE, "limit");
    expect_decode("\x03\x00", 2, BATON_EINVAL, "offset 1");
    expect_decode("\x06\x02\x00\x06\x01", 5, BATON_EINVAL, "offset 4: count 1");
    /* Depth: 64 nested tuples decode, 65 do not. */
    uint8_t deep[2 * (BATON_VALUE_MAX_DEPTH + 1)];
    for (unsigned i = 0; i <= BATON_VALUE_MAX_DEPTH; i++) {
        deep[2 * i] = 0x06;
        deep[2 * i + 1] = i == BATON_VALUE_MAX_DEPTH ? 0 : 1;
    }
    expect_decode(deep, sizeof deep, BATON_ERANGE, "offset 128: nesting deeper than 64");
    bt_assert_rc(baton_value_decode(deep + 2, sizeof deep - 2, &v), 0);
    baton_value_destroy(v);
}

/* A value with every kind and multi-byte varints, to be cut and flipped. */
static baton_value *sample_value(void)
{
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    bt_assert_rc(baton_value_begin_tuple(b), 0);
    bt_assert_rc(baton_value_add_nil(b), 0);
    bt_assert_rc(baton_value_add_bool(b, true), 0);
    bt_assert_rc(baton_value_add_int(b, -123456789), 0);
    char text[140];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)(i * 7);
    bt_assert_rc(baton_value_add_string(b, text, sizeof text), 0);
    bt_assert_rc(baton_value_add_bytes(b, "\x00\x01\x02", 3), 0);
    bt_assert_rc(baton_value_add_name(b, 77), 0);
    bt_assert_rc(baton_value_begin_list(b), 0);
    bt_assert_rc(baton_value_begin_tuple(b), 0);
    bt_assert_rc(baton_value_end(b), 0);
    bt_assert_rc(baton_value_add_string(b, "x", 1), 0);
    bt_assert_rc(baton_value_add_bool(b, false), 0);
    bt_assert_rc(baton_value_end(b), 0);
    bt_assert_rc(baton_value_end(b), 0);
    baton_value *v = NULL;
    bt_assert_rc(baton_value_finish(b, &v), 0);
    baton_value_builder_destroy(b);
    return v;
}

static void test_truncation_and_bit_flips(void **state)
{
    (void)state;
    baton_value *v = sample_value();
    assert_round_trip(v);
    baton_value_view view = baton_value_as_view(v);
    /* Every strict prefix, copied to its own allocation so ASan sees any read past its end. */
    for (size_t n = 0; n < view.size; n++) {
        uint8_t *prefix = malloc(n ? n : 1);
        assert_non_null(prefix);
        memcpy(prefix, view.data, n);
        expect_decode(prefix, n, BATON_EINVAL, "offset");
        free(prefix);
    }
    /* Every bit flip: a clean refusal, or a value that round-trips. */
    uint8_t *copy = malloc(view.size);
    assert_non_null(copy);
    size_t accepted = 0;
    for (size_t i = 0; i < view.size * 8; i++) {
        memcpy(copy, view.data, view.size);
        copy[i / 8] ^= (uint8_t)(1u << (i % 8));
        baton_value *flipped = NULL;
        int rc = baton_value_decode(copy, view.size, &flipped);
        if (rc == 0) {
            accepted++;
            assert_round_trip(flipped);
            baton_value_destroy(flipped);
        } else {
            assert_true(rc == BATON_EINVAL || rc == BATON_ERANGE);
            assert_message_has("offset");
        }
    }
    assert_true(accepted > 0); /* flips inside the int, string and name bodies stay valid */
    free(copy);
    baton_value_destroy(v);
}

/* ---- parse errors and printing ---------------------------------------------------------------- */

typedef struct bad_text {
    const char *text;
    int code;
    const char *needle;
} bad_text;

static void test_parse_errors(void **state)
{
    (void)state;
    static const bad_text cases[] = {
        {"", BATON_EINVAL, "offset 0: expected a value, found the end"},
        {"   ", BATON_EINVAL, "offset 3"},
        {"1 2", BATON_EINVAL, "offset 2: expected the end of the input"},
        {"(1)", BATON_EINVAL, "offset 2: a 1-tuple needs a trailing comma"},
        {"(1 2)", BATON_EINVAL, "offset 3: expected ',' or ')' after a tuple element, found '2'"},
        {"(\"hello\", 42, [1, 2]]", BATON_EINVAL, "offset 20: expected ',' or ')'"},
        {"[1 2]", BATON_EINVAL, "offset 3: expected ',' or ']'"},
        {"[1,,]", BATON_EINVAL, "offset 3: expected a value"},
        {"(,)", BATON_EINVAL, "offset 1"},
        {"[1,", BATON_EINVAL, "offset 3"},
        {"(", BATON_EINVAL, "offset 1"},
        {")", BATON_EINVAL, "offset 0"},
        {"nul", BATON_EINVAL, "offset 0: unknown word 'nul'"},
        {"Nil", BATON_EINVAL, "unknown word"},
        {"12ab", BATON_EINVAL, "offset 2"},
        {"-", BATON_EINVAL, "offset 1: expected a digit"},
        {"--1", BATON_EINVAL, "offset 1"},
        {"+1", BATON_EINVAL, "offset 0"},
        {"9223372036854775808", BATON_ERANGE, "offset 0: number out of range"},
        {"-9223372036854775809", BATON_ERANGE, "offset 0"},
        {"99999999999999999999999", BATON_ERANGE, "offset 0"},
        {" @18446744073709551616", BATON_ERANGE, "offset 1"},
        {"@", BATON_EINVAL, "offset 1"},
        {"@-1", BATON_EINVAL, "offset 1"},
        {"\"abc", BATON_EINVAL, "offset 4: expected '\"' to close"},
        {"\"a\\q\"", BATON_EINVAL, "offset 2: unknown escape"},
        {"\"a\\", BATON_EINVAL, "offset 3"},
        {"\"\\x4\"", BATON_EINVAL, "offset 1: \\x needs two hex digits"},
        {"\"\\xg0\"", BATON_EINVAL, "offset 1"},
        {"\"\\x", BATON_EINVAL, "offset 1"},
        {"x\"abc\"", BATON_EINVAL, "offset 2: odd number"},
        {"x\"zz\"", BATON_EINVAL, "offset 2: expected a hex digit"},
        {"x\"00", BATON_EINVAL, "offset 4"},
        {"x", BATON_EINVAL, "unknown word"},
        {"#", BATON_EINVAL, "offset 0: expected a value, found '#'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        baton_value *v = NULL;
        int rc = baton_value_parse(cases[i].text, strlen(cases[i].text), &v);
        if (rc != cases[i].code)
            fail_msg("parse(%s) = %d, expected %d", cases[i].text, rc, cases[i].code);
        assert_null(v);
        assert_message_has(cases[i].needle);
    }
    baton_value *v = NULL;
    bt_assert_rc(baton_value_parse(NULL, 1, &v), BATON_EINVAL);
    bt_assert_rc(baton_value_parse("nil", 3, NULL), BATON_EINVAL);
    /* Not NUL-terminated: the size is what counts. */
    bt_assert_rc(baton_value_parse("12345", 2, &v), 0);
    assert_int_equal(baton_view_int(baton_value_as_view(v)), 12);
    baton_value_destroy(v);
    /* Depth: 64 nested lists parse, 65 do not. */
    char deep[2 * (BATON_VALUE_MAX_DEPTH + 1)];
    memset(deep, '[', BATON_VALUE_MAX_DEPTH + 1);
    memset(deep + BATON_VALUE_MAX_DEPTH + 1, ']', BATON_VALUE_MAX_DEPTH + 1);
    bt_assert_rc(baton_value_parse(deep, sizeof deep, &v), BATON_ERANGE);
    assert_message_has("offset 64: nesting deeper than 64");
    bt_assert_rc(baton_value_parse(deep + 1, sizeof deep - 2, &v), 0);
    baton_value_destroy(v);
}

static void test_print(void **state)
{
    (void)state;
    baton_value *v = parse_ok("(\"hello\", 42, [1, 2])");
    baton_value_view view = baton_value_as_view(v);
    size_t length = 0;
    char buf[64];
    bt_assert_rc(baton_value_print(view, buf, sizeof buf, &length), 0);
    assert_string_equal(buf, "(\"hello\", 42, [1, 2])");
    assert_int_equal(length, 21);
    /* Too small: a NUL-terminated prefix and the full length. */
    memset(buf, 'Z', sizeof buf);
    bt_assert_rc(baton_value_print(view, buf, 8, &length), BATON_ERANGE);
    assert_int_equal(length, 21);
    assert_string_equal(buf, "(\"hello");
    bt_assert_rc(baton_value_print(view, buf, 21, &length), BATON_ERANGE);
    assert_int_equal(strlen(buf), 20);
    bt_assert_rc(baton_value_print(view, buf, 22, &length), 0);
    bt_assert_rc(baton_value_print(view, buf, 1, &length), BATON_ERANGE);
    assert_string_equal(buf, "");
    bt_assert_rc(baton_value_print(view, NULL, 5, &length), BATON_EINVAL);
    bt_assert_rc(baton_value_print(view, buf, sizeof buf, NULL), BATON_EINVAL);
    baton_value_view part = {view.data, view.size - 1};
    bt_assert_rc(baton_value_print(part, buf, sizeof buf, &length), BATON_EINVAL);
    baton_value_destroy(v);
}

/* ---- allocation failures --------------------------------------------------------------------- */

static void test_alloc_failures(void **state)
{
    (void)state;
    static const char text[] = "(\"hello\", x\"0102\", [1, [2, \"three\"]], @4)";
    baton_value *expected = parse_ok(text);
    baton_value_view ev = baton_value_as_view(expected);
    bool done = false;
    for (long n = 0; n < 100 && !done; n++) {
        baton_value *v = NULL;
        baton__alloc_fail_after(n);
        int rc = baton_value_parse(text, strlen(text), &v);
        baton__alloc_fail_after(-1);
        if (rc == 0) {
            assert_true(baton_view_equal(ev, baton_value_as_view(v)));
            baton_value_destroy(v);
            done = true;
        } else {
            bt_assert_rc(rc, BATON_ENOMEM);
            assert_null(v);
        }
    }
    assert_true(done);
    baton_value *v = NULL;
    baton__alloc_fail_after(0);
    int rc = baton_value_decode(ev.data, ev.size, &v);
    baton__alloc_fail_after(-1);
    bt_assert_rc(rc, BATON_ENOMEM);
    /* A builder whose growth fails keeps what it had and goes on afterwards. */
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    bt_assert_rc(baton_value_begin_list(b), 0);
    baton__alloc_fail_after(0);
    char big[100];
    memset(big, 'b', sizeof big);
    rc = baton_value_add_string(b, big, sizeof big);
    baton__alloc_fail_after(-1);
    bt_assert_rc(rc, BATON_ENOMEM);
    bt_assert_rc(baton_value_end(b), 0);
    baton__alloc_fail_after(0);
    rc = baton_value_finish(b, &v);
    baton__alloc_fail_after(-1);
    bt_assert_rc(rc, BATON_ENOMEM);
    bt_assert_rc(baton_value_finish(b, &v), 0);
    baton_value *empty = parse_ok("[]");
    assert_true(baton_view_equal(baton_value_as_view(v), baton_value_as_view(empty)));
    baton_value_destroy(empty);
    baton_value_destroy(v);
    baton_value_builder_destroy(b);
    baton_value_destroy(expected);
}

/* ---- random values ---------------------------------------------------------------------------- */

static void add_random(baton_value_builder *b, bt_rng *rng, unsigned depth)
{
    unsigned kind = (unsigned)bt_rng_below(rng, depth >= 5 ? 6 : 8);
    uint8_t data[40];
    size_t n;
    switch (kind) {
    case 0:
        bt_assert_rc(baton_value_add_nil(b), 0);
        break;
    case 1:
        bt_assert_rc(baton_value_add_bool(b, bt_rng_below(rng, 2)), 0);
        break;
    case 2: {
        /* Mostly small numbers, sometimes the extremes. */
        uint64_t r = bt_rng_next(rng);
        int64_t value = (int64_t)(r % 2001) - 1000;
        if (r % 7 == 0)
            value = INT64_MIN + (int64_t)(r % 3);
        else if (r % 11 == 0)
            value = INT64_MAX - (int64_t)(r % 3);
        bt_assert_rc(baton_value_add_int(b, value), 0);
        break;
    }
    case 3:
    case 4:
        n = (size_t)bt_rng_below(rng, sizeof data);
        for (size_t i = 0; i < n; i++)
            data[i] = (uint8_t)bt_rng_next(rng);
        if (kind == 3)
            bt_assert_rc(baton_value_add_string(b, (const char *)data, n), 0);
        else
            bt_assert_rc(baton_value_add_bytes(b, data, n), 0);
        break;
    case 5:
        bt_assert_rc(baton_value_add_name(b, bt_rng_next(rng) >> bt_rng_below(rng, 64)), 0);
        break;
    default:
        bt_assert_rc(kind == 6 ? baton_value_begin_tuple(b) : baton_value_begin_list(b), 0);
        n = (size_t)bt_rng_below(rng, 5);
        for (size_t i = 0; i < n; i++)
            add_random(b, rng, depth + 1);
        bt_assert_rc(baton_value_end(b), 0);
        break;
    }
}

static void test_random_round_trip(void **state)
{
    (void)state;
    uint64_t seed = (uint64_t)time(NULL);
    printf("# seed %llu\n", (unsigned long long)seed);
    bt_rng rng = bt_rng_seed(seed);
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    size_t rounds = bt_scaled(2000, 100);
    for (size_t r = 0; r < rounds; r++) {
        add_random(b, &rng, 0);
        baton_value *v = NULL;
        bt_assert_rc(baton_value_finish(b, &v), 0);
        assert_round_trip(v);
        baton_value_destroy(v);
    }
    baton_value_builder_destroy(b);
    /* Random short byte strings, mostly small bytes so that tags and counts are plausible: a
     * decode either fails cleanly or gives a value that round-trips. */
    for (size_t r = 0; r < rounds * 4; r++) {
        size_t n = (size_t)bt_rng_below(&rng, 24);
        uint8_t *junk = malloc(n ? n : 1);
        assert_non_null(junk);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)(bt_rng_below(&rng, 4) ? bt_rng_below(&rng, 10) : bt_rng_next(&rng));
        baton_value *v = NULL;
        int rc = baton_value_decode(junk, n, &v);
        if (rc == 0) {
            assert_round_trip(v);
            baton_value_destroy(v);
        } else {
            assert_true(rc == BATON_EINVAL || rc == BATON_ERANGE);
        }
        free(junk);
    }
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_canonical_texts),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_equal_hash),
        cmocka_unit_test(test_builder_errors),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_truncation_and_bit_flips),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_random_round_trip),
    };
    return cmocka_run_group_tests_name("space/value", tests, NULL, NULL);
}
