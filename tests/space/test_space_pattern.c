/*
 * test_space_pattern.c — patterns (include/baton/space.h): alternatives, binders and the views
 * they bind, type patterns for every kind, nesting, tuples against lists, exact counts, every
 * parse error (a code and a message with an offset, never a crash), the canonical text and its
 * round trip, matching without allocating, and random values against the literal pattern printed
 * from them and against patterns that bind parts of them. Values are made with baton_value_parse.
 */
#include "support/bt_common.h"

#include <inttypes.h>

#include "baton/space.h"
#include "support/bt_space.h"
#include "core/alloc.h"

/* Whether the pattern text matches the value text (bindings: room for all binders or NULL). */
static bool matches(const char *pattern_text, const char *value_text, baton_value_view *bindings)
{
    baton_pattern *pattern = bt_pattern(pattern_text);
    baton_value *value = bt_value(value_text);
    bool result = baton_pattern_match(pattern, baton_value_as_view(value), bindings);
    baton_value_destroy(value);
    baton_pattern_destroy(pattern);
    return result;
}

static void check_match(const char *pattern_text, const char *value_text, bool expected)
{
    if (matches(pattern_text, value_text, NULL) != expected)
        fail_msg("pattern %s against %s: expected %s", pattern_text, value_text,
                 expected ? "a match" : "no match");
}

static char *print_pattern(const baton_pattern *pattern)
{
    size_t length = 0;
    assert_int_equal(baton_pattern_print(pattern, NULL, 0, &length), BATON_ERANGE);
    char *text = malloc(length + 1);
    assert_non_null(text);
    size_t again = 0;
    assert_int_equal(baton_pattern_print(pattern, text, length + 1, &again), 0);
    assert_int_equal(again, length);
    assert_int_equal(strlen(text), length);
    return text;
}

static void test_alternatives(void **state)
{
    (void)state;
    check_match("\"hello\" | \"world\"", "\"hello\"", true);
    check_match("\"hello\" | \"world\"", "\"world\"", true);
    check_match("\"hello\" | \"world\"", "\"other\"", false);
    check_match("\"hello\" | \"world\"", "\"hell\"", false);
    check_match("\"hello\" | \"world\"", "(\"hello\",)", false);
    check_match("1 | Bool | [_, _]", "false", true);
    check_match("1 | Bool | [_, _]", "[nil, 3]", true);
    check_match("1 | Bool | [_, _]", "1", true);
    check_match("1 | Bool | [_, _]", "2", false);
    check_match("1 | Bool | [_, _]", "(nil, 3)", false);
    check_match("(1 | 2, _ | nil)", "(2, \"x\")", true);
    check_match("(1 | 2, _ | nil)", "(3, \"x\")", false);
}

static void test_bindings(void **state)
{
    (void)state;
    baton_pattern *pattern = bt_pattern("(x, _, [1, y])");
    assert_int_equal(baton_pattern_binders(pattern), 2);
    assert_string_equal(baton_pattern_binder_name(pattern, 0), "x");
    assert_string_equal(baton_pattern_binder_name(pattern, 1), "y");
    assert_null(baton_pattern_binder_name(pattern, 2));
    baton_value *value = bt_value("((\"a\", true), \"skip\", [1, -42])");
    baton_value_view view = baton_value_as_view(value), bindings[2];
    memset(bindings, 0, sizeof bindings);
    assert_true(baton_pattern_match(pattern, view, bindings));
    baton_value *x = bt_value("(\"a\", true)");
    assert_true(baton_view_equal(bindings[0], baton_value_as_view(x)));
    assert_int_equal(baton_view_kind(bindings[1]), BATON_VALUE_INT);
    assert_int_equal(baton_view_int(bindings[1]), -42);
    /* Views into the value itself, not copies. */
    assert_true(bindings[0].data > view.data && bindings[0].data < view.data + view.size);
    assert_true(bindings[1].data + bindings[1].size == view.data + view.size);
    /* NULL bindings: matching still works. */
    assert_true(baton_pattern_match(pattern, view, NULL));
    baton_value *other = bt_value("(1, 2, [2, 3])");
    assert_false(baton_pattern_match(pattern, baton_value_as_view(other), bindings));
    baton_value_destroy(other);
    baton_value_destroy(x);
    baton_value_destroy(value);
    baton_pattern_destroy(pattern);

    /* A binder takes anything, including nested containers; long names. */
    baton_value_view b[3];
    assert_true(matches("[first_one, b2, c_]", "[[[]], @7, x\"00ff\"]", b));
    assert_true(matches("the_whole_value", "(1, [2, (3,)])", b));
}

static void test_types(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *type;
    } samples[] = {
        {"nil", "Nil"},          {"true", "Bool"},  {"false", "Bool"},  {"0", "Int"},
        {"-9223372036854775808", "Int"}, {"\"\"", "String"}, {"\"s\\n\"", "String"},
        {"x\"\"", "Bytes"},      {"x\"0a\"", "Bytes"}, {"@0", "Name"}, {"@18446744073709551615", "Name"},
        {"()", "Tuple"},         {"(1, [2])", "Tuple"}, {"[]", "List"}, {"[(1,)]", "List"},
    };
    static const char *types[] = {"Int", "String", "Bool", "Bytes", "Nil", "Name", "Tuple", "List"};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
            check_match(types[t], samples[i].text, strcmp(types[t], samples[i].type) == 0);
    check_match("(Int, String, [Bytes])", "(1, \"a\", [x\"\"])", true);
    check_match("(Int, String, [Bytes])", "(1, \"a\", [\"\"])", false);
}

static void test_nested(void **state)
{
    (void)state;
    baton_value_view b[4];
    const char *pattern = "((a, (b, _)), [Int, (c,)], d)";
    baton_pattern *compiled = bt_pattern(pattern);
    baton_value *value = bt_value("((1, (2, 3)), [4, (5,)], ())");
    assert_true(baton_pattern_match(compiled, baton_value_as_view(value), b));
    assert_int_equal(baton_view_int(b[0]), 1);
    assert_int_equal(baton_view_int(b[1]), 2);
    assert_int_equal(baton_view_int(b[2]), 5);
    assert_int_equal(baton_view_kind(b[3]), BATON_VALUE_TUPLE);
    assert_int_equal(baton_view_count(b[3]), 0);
    baton_value_destroy(value);
    baton_pattern_destroy(compiled);
    check_match(pattern, "((1, (2, 3)), [4, (5,)])", false);
    check_match(pattern, "((1, (2, 3, 4)), [4, (5,)], ())", false);
    check_match(pattern, "((1, (2, 3)), [\"4\", (5,)], ())", false);
    check_match(pattern, "((1, [2, 3]), [4, (5,)], ())", false);
    /* Literal containers (folded into one literal) nested in binder containers. */
    check_match("(x, ((1, [2]), \"z\"))", "(nil, ((1, [2]), \"z\"))", true);
    check_match("(x, ((1, [2]), \"z\"))", "(nil, ((1, [2, 3]), \"z\"))", false);
    check_match("(x, ((1, [2]), \"z\"))", "(nil, ((1, (2,)), \"z\"))", false);
}

static void test_tuple_vs_list(void **state)
{
    (void)state;
    check_match("[1, 2]", "[1, 2]", true);
    check_match("[1, 2]", "(1, 2)", false);
    check_match("(1, 2)", "[1, 2]", false);
    check_match("(1, 2)", "(1, 2)", true);
    check_match("[x, _]", "(1, 2)", false);
    check_match("(x, _)", "[1, 2]", false);
    check_match("[]", "()", false);
    check_match("()", "[]", false);
    check_match("(_,)", "[1]", false);
    check_match("[_]", "(1,)", false);
}

static void test_counts(void **state)
{
    (void)state;
    check_match("(_, _)", "(1, 2)", true);
    check_match("(_, _)", "(1, 2, 3)", false);
    check_match("(_, _)", "(1,)", false);
    check_match("(_, _)", "()", false);
    check_match("[]", "[]", true);
    check_match("[]", "[1]", false);
    check_match("[_]", "[]", false);
    check_match("[x, y, z]", "[1, 2]", false);
    check_match("[1, 2]", "[1, 2, 2]", false);
    check_match("[1, 2]", "[1]", false);
    check_match("(1,)", "(1,)", true);
    check_match("(1,)", "(1, 1)", false);
    /* Trailing commas are accepted as in values. */
    check_match("[1, _,]", "[1, 2]", true);
}

static void expect_error(const char *text, int code, const char *needle)
{
    baton_pattern *pattern = (baton_pattern *)(uintptr_t)1;
    int rc = baton_pattern_parse(text, strlen(text), &pattern);
    if (rc != code)
        fail_msg("baton_pattern_parse(%s): %s, expected %s (%s)", text, baton_err_name(rc),
                 baton_err_name(code), baton_last_error_message());
    assert_null(pattern);
    const char *message = baton_last_error_message();
    if (strstr(message, "baton_pattern_parse") == NULL || strstr(message, needle) == NULL)
        fail_msg("baton_pattern_parse(%s): message \"%s\" lacks \"%s\"", text, message, needle);
}

static char *repeat(const char *head, size_t n, const char *middle, const char *tail)
{
    size_t h = strlen(head), m = strlen(middle), t = strlen(tail), used = 0;
    char *text = malloc(n * (h + t) + m + 1);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++, used += h)
        memcpy(text + used, head, h);
    memcpy(text + used, middle, m);
    used += m;
    for (size_t i = 0; i < n; i++, used += t)
        memcpy(text + used, tail, t);
    text[used] = '\0';
    return text;
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("(x, x)", BATON_EINVAL, "offset 4: binder 'x' used twice");
    expect_error("[a, (b, [a])]", BATON_EINVAL, "offset 9: binder 'a' used twice");
    expect_error("x | 1", BATON_EINVAL, "offset 0: binder 'x' inside an alternative");
    expect_error("1 | (2, y)", BATON_EINVAL, "offset 8: binder 'y' inside an alternative");
    expect_error("Integer", BATON_EINVAL, "offset 0: unknown type name 'Integer'");
    expect_error("(_, Foo)", BATON_EINVAL, "offset 4: unknown type name");
    expect_error("(1, 2", BATON_EINVAL, "offset 5: expected ',' or ')'");
    expect_error("[1, 2)", BATON_EINVAL, "offset 5: expected ',' or ']'");
    expect_error("(1, 2))", BATON_EINVAL, "offset 6: expected the end");
    expect_error(")", BATON_EINVAL, "offset 0: expected a pattern");
    expect_error("(", BATON_EINVAL, "offset 1: expected a pattern");
    expect_error("(x)", BATON_EINVAL, "offset 2: a 1-tuple needs a trailing comma");
    expect_error("1 2", BATON_EINVAL, "offset 2: expected the end");
    expect_error("_ x", BATON_EINVAL, "offset 2: expected the end");
    expect_error("1 |", BATON_EINVAL, "offset 3: expected a pattern");
    expect_error("| 1", BATON_EINVAL, "offset 0: expected a pattern");
    expect_error("", BATON_EINVAL, "offset 0: expected a pattern");
    expect_error("   ", BATON_EINVAL, "offset 3: expected a pattern");
    expect_error("(,)", BATON_EINVAL, "offset 1: expected a pattern");
    expect_error("[1,,]", BATON_EINVAL, "offset 3: expected a pattern");
    expect_error("\"open", BATON_EINVAL, "offset 0: unterminated string");
    expect_error("\"ends in a backslash\\", BATON_EINVAL, "offset 0: unterminated string");
    expect_error("x\"0g\"", BATON_EINVAL, "offset 0: in the literal here: baton_value_parse: offset");
    expect_error("\"\\q\"", BATON_EINVAL, "offset 0: in the literal");
    expect_error("(1, -)", BATON_EINVAL, "offset 4: expected a digit");
    expect_error("@x", BATON_EINVAL, "offset 0: expected a digit");
    expect_error("99999999999999999999", BATON_ERANGE, "offset 0");
    expect_error("fooBar", BATON_EINVAL, "offset 0: 'fooBar' is not a binder");
    expect_error("_x", BATON_EINVAL, "offset 0: a binder starts with a lowercase letter");
    expect_error("#", BATON_EINVAL, "offset 0: expected a pattern, found '#'");
    expect_error("(1, \x01)", BATON_EINVAL, "found byte 0x01");

    /* Nesting: BATON_VALUE_MAX_DEPTH containers are fine, one more is not. */
    char *ok = repeat("[", BATON_VALUE_MAX_DEPTH, "x", "]");
    baton_pattern *pattern = bt_pattern(ok);
    char *value_text = repeat("[", BATON_VALUE_MAX_DEPTH, "7", "]");
    baton_value *value = bt_value(value_text);
    baton_value_view b[1];
    assert_true(baton_pattern_match(pattern, baton_value_as_view(value), b));
    assert_int_equal(baton_view_int(b[0]), 7);
    baton_value_destroy(value);
    baton_pattern_destroy(pattern);
    free(value_text);
    free(ok);
    char *deep = repeat("(", BATON_VALUE_MAX_DEPTH + 1, "_", ",)");
    expect_error(deep, BATON_ERANGE, "nesting above");
    free(deep);
    /* Hostile depth (far beyond the limit) is refused before it can use up the stack. */
    deep = repeat("[", 100000, "", "");
    expect_error(deep, BATON_ERANGE, "nesting above");
    free(deep);

    /* Binders: BATON_PATTERN_MAX_BINDERS are fine, one more is not. */
    char text[2048];
    size_t used = 0;
    used += (size_t)snprintf(text + used, sizeof text - used, "(");
    for (unsigned i = 0; i <= BATON_PATTERN_MAX_BINDERS; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "%sb%u", i ? ", " : "", i);
    snprintf(text + used, sizeof text - used, ")");
    expect_error(text, BATON_ERANGE, "more than 64 binders");
    char *cut = strrchr(text, ',');
    strcpy(cut, ")");
    pattern = bt_pattern(text);
    assert_int_equal(baton_pattern_binders(pattern), BATON_PATTERN_MAX_BINDERS);
    assert_string_equal(baton_pattern_binder_name(pattern, 63), "b63");
    baton_pattern_destroy(pattern);

    /* Arguments. */
    assert_int_equal(baton_pattern_parse("_", 1, NULL), BATON_EINVAL);
    assert_int_equal(baton_pattern_parse(NULL, 1, &pattern), BATON_EINVAL);
    pattern = bt_pattern("_");
    size_t length;
    assert_int_equal(baton_pattern_print(pattern, NULL, 4, &length), BATON_EINVAL);
    assert_int_equal(baton_pattern_print(pattern, NULL, 0, NULL), BATON_EINVAL);
    assert_int_equal(baton_pattern_print(NULL, NULL, 0, &length), BATON_EINVAL);
    baton_pattern_destroy(pattern);
    baton_pattern_destroy(NULL);
    assert_int_equal(baton_pattern_binders(NULL), 0);
    assert_false(baton_pattern_match(NULL, (baton_value_view){NULL, 0}, NULL));

    /* Text need not be NUL-terminated: only size bytes are read. */
    assert_int_equal(baton_pattern_parse("[x, y]garbage", 6, &pattern), 0);
    assert_int_equal(baton_pattern_binders(pattern), 2);
    baton_pattern_destroy(pattern);
}

static void test_print_round_trip(void **state)
{
    (void)state;
    static const struct {
        const char *text, *canonical;
    } cases[] = {
        {"_", "_"},
        {"  x  ", "x"},
        {"\"hello\"|\"world\"", "\"hello\" | \"world\""},
        {"(x,_,[1,y])", "(x, _, [1, y])"},
        {"( 1 , )", "(1,)"},
        {"(a,)", "(a,)"},
        {"[ ]", "[]"},
        {"()", "()"},
        {"[1, 2, 3,]", "[1, 2, 3]"},
        {"(Int|String, List | Tuple|nil)", "(Int | String, List | Tuple | nil)"},
        {"Nil|Bool|Bytes|Name", "Nil | Bool | Bytes | Name"},
        {"x\"00FF\" | @12 | -0 | \"a\\x01\\\"\"", "x\"00ff\" | @12 | 0 | \"a\\x01\\\"\""},
        {"(true, false, nil, [(1,), ()])", "(true, false, nil, [(1,), ()])"},
        {"[(a, 1), (\"k\", [b, _])]", "[(a, 1), (\"k\", [b, _])]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        baton_pattern *pattern = bt_pattern(cases[i].text);
        char *text = print_pattern(pattern);
        if (strcmp(text, cases[i].canonical) != 0)
            fail_msg("print(parse(%s)) = %s, expected %s", cases[i].text, text,
                     cases[i].canonical);
        baton_pattern *again = bt_pattern(text);
        char *text2 = print_pattern(again);
        assert_string_equal(text, text2);
        assert_int_equal(baton_pattern_binders(again), baton_pattern_binders(pattern));

        /* Every smaller buffer: BATON_ERANGE, a NUL-terminated prefix, the full length. */
        size_t full = strlen(text);
        for (size_t cap = 1; cap <= full; cap++) {
            char buf[128];
            size_t length = 0;
            memset(buf, '#', sizeof buf);
            assert_int_equal(baton_pattern_print(pattern, buf, cap, &length), BATON_ERANGE);
            assert_int_equal(length, full);
            assert_int_equal(strlen(buf), cap - 1);
            assert_memory_equal(buf, text, cap - 1);
        }
        free(text2);
        free(text);
        baton_pattern_destroy(again);
        baton_pattern_destroy(pattern);
    }
}

static void test_match_allocates_nothing(void **state)
{
    (void)state;
    baton_pattern *pattern = bt_pattern("(x, [_, Int | \"s\"], (1, y), z)");
    baton_value *value = bt_value("(\"a\", [nil, \"s\"], (1, [2]), @3)");
    baton_value_view b[3];
    baton__alloc_fail_after(0);
    bool matched = baton_pattern_match(pattern, baton_value_as_view(value), b);
    baton__alloc_fail_after(-1);
    assert_true(matched);
    assert_int_equal(baton_view_name(b[2]), 3);
    baton_value_destroy(value);
    baton_pattern_destroy(pattern);
}

/* Allocation failures while parsing: BATON_ENOMEM and nothing leaked (ASan checks), and the
 * parse succeeds once enough allocations are allowed. */
static void test_parse_out_of_memory(void **state)
{
    (void)state;
    const char *text = "(a, [\"lit\", (1, 2)], b, _ | Int | \"s\", c)";
    for (long n = 0;; n++) {
        baton_pattern *pattern = NULL;
        baton__alloc_fail_after(n);
        int rc = baton_pattern_parse(text, strlen(text), &pattern);
        baton__alloc_fail_after(-1);
        if (rc == 0) {
            assert_non_null(pattern);
            baton_pattern_destroy(pattern);
            break;
        }
        if (rc != BATON_ENOMEM)
            fail_msg("allocation %ld failing: %s: %s", n, baton_err_name(rc),
                     baton_last_error_message());
        assert_null(pattern);
        assert_true(n < 1000);
    }
}

/* ---- random values ---- */

typedef struct text_buf {
    char data[1 << 14];
    size_t length;
} text_buf;

static void append(text_buf *t, const char *s)
{
    size_t n = strlen(s);
    assert_true(t->length + n < sizeof t->data);
    memcpy(t->data + t->length, s, n + 1);
    t->length += n;
}

/* The text of a random value (the value parser makes it; printing gives the canonical text). */
static void random_value(bt_rng *rng, text_buf *t, unsigned depth)
{
    char piece[64];
    unsigned choice = (unsigned)bt_rng_below(rng, depth < 4 ? 9 : 7);
    switch (choice) {
    case 0:
        append(t, "nil");
        break;
    case 1:
        append(t, bt_rng_below(rng, 2) ? "true" : "false");
        break;
    case 2:
        snprintf(piece, sizeof piece, "%" PRId64, (int64_t)bt_rng_next(rng) >> bt_rng_below(rng, 64));
        append(t, piece);
        break;
    case 3: {
        static const char *pieces[] = {"a", "\\n", "\\\"", "\\\\", "\\x7f", "\\0", "z", " "};
        append(t, "\"");
        for (uint64_t i = bt_rng_below(rng, 6); i > 0; i--)
            append(t, pieces[bt_rng_below(rng, 8)]);
        append(t, "\"");
        break;
    }
    case 4:
        append(t, "x\"");
        for (uint64_t i = bt_rng_below(rng, 5); i > 0; i--) {
            snprintf(piece, sizeof piece, "%02x", (unsigned)bt_rng_below(rng, 256));
            append(t, piece);
        }
        append(t, "\"");
        break;
    case 5:
    case 6:
        snprintf(piece, sizeof piece, "@%" PRIu64, bt_rng_next(rng) >> bt_rng_below(rng, 64));
        append(t, piece);
        break;
    default: {
        bool tuple = choice == 7;
        uint64_t n = bt_rng_below(rng, 5);
        append(t, tuple ? "(" : "[");
        for (uint64_t i = 0; i < n; i++) {
            if (i)
                append(t, ", ");
            random_value(rng, t, depth + 1);
        }
        append(t, tuple && n == 1 ? ",)" : tuple ? ")" : "]");
        break;
    }
    }
}

static const char *type_name_of(baton_value_kind kind)
{
    static const char *names[] = {"Nil", "Bool", "Int", "String", "Bytes", "Tuple", "List", "Name"};
    return names[kind];
}

/*
 * Writes a pattern that matches the value at view: each part becomes a binder (its view is
 * remembered in expected[]), `_`, its type name, its literal text, or (for tuples and lists) the
 * same shape with patterns for the elements.
 */
static void random_pattern(bt_rng *rng, baton_value_view view, text_buf *t,
                           baton_value_view *expected, unsigned *n_binders)
{
    baton_value_kind kind = baton_view_kind(view);
    bool container = kind == BATON_VALUE_TUPLE || kind == BATON_VALUE_LIST;
    unsigned choice = (unsigned)bt_rng_below(rng, container ? 6 : 4);
    char piece[32];
    if (choice == 0 && *n_binders < BATON_PATTERN_MAX_BINDERS) {
        snprintf(piece, sizeof piece, "v%u", *n_binders);
        append(t, piece);
        expected[(*n_binders)++] = view;
    } else if (choice == 1) {
        append(t, "_");
    } else if (choice == 2) {
        append(t, type_name_of(kind));
    } else if (choice == 3 || !container) {
        char buf[4096];
        size_t length;
        assert_int_equal(baton_value_print(view, buf, sizeof buf, &length), 0);
        append(t, buf);
    } else {
        size_t n = baton_view_count(view);
        append(t, kind == BATON_VALUE_TUPLE ? "(" : "[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                append(t, ", ");
            random_pattern(rng, baton_view_element(view, i), t, expected, n_binders);
        }
        append(t, kind == BATON_VALUE_TUPLE ? (n == 1 ? ",)" : ")") : "]");
    }
}

static void test_random(void **state)
{
    (void)state;
    uint64_t seed = bt_now_ns();
    printf("test_random: seed %" PRIu64 "\n", seed);
    bt_rng rng = bt_rng_seed(seed);
    size_t rounds = bt_scaled(2000, 100);
    baton_value *previous = bt_value("nil");
    for (size_t round = 0; round < rounds; round++) {
        text_buf vt = {.length = 0};
        random_value(&rng, &vt, 0);
        baton_value *value = bt_value(vt.data);
        baton_value_view view = baton_value_as_view(value);

        /* The literal pattern printed from the value matches exactly that value. */
        char printed[8192];
        size_t length;
        assert_int_equal(baton_value_print(view, printed, sizeof printed, &length), 0);
        baton_pattern *literal = bt_pattern(printed);
        assert_int_equal(baton_pattern_binders(literal), 0);
        assert_true(baton_pattern_match(literal, view, NULL));
        baton_value_view pv = baton_value_as_view(previous);
        assert_int_equal(baton_pattern_match(literal, pv, NULL), baton_view_equal(view, pv));
        char *again = print_pattern(literal);
        assert_string_equal(again, printed);
        free(again);
        baton_pattern_destroy(literal);

        /* Binders, wildcards, types and literals over the value's parts bind every part. */
        text_buf pt = {.length = 0};
        baton_value_view expected[BATON_PATTERN_MAX_BINDERS], bindings[BATON_PATTERN_MAX_BINDERS];
        unsigned n_binders = 0;
        random_pattern(&rng, view, &pt, expected, &n_binders);
        baton_pattern *pattern = bt_pattern(pt.data);
        assert_int_equal(baton_pattern_binders(pattern), n_binders);
        memset(bindings, 0, sizeof bindings);
        if (!baton_pattern_match(pattern, view, bindings))
            fail_msg("seed %" PRIu64 ": %s does not match %s", seed, pt.data, printed);
        for (unsigned i = 0; i < n_binders; i++) {
            assert_ptr_equal(bindings[i].data, expected[i].data);
            assert_int_equal(bindings[i].size, expected[i].size);
        }
        /* Round trip of the mixed pattern too. */
        char *text = print_pattern(pattern);
        baton_pattern *reparsed = bt_pattern(text);
        char *text2 = print_pattern(reparsed);
        assert_string_equal(text, text2);
        assert_true(baton_pattern_match(reparsed, view, NULL));
        free(text2);
        free(text);
        baton_pattern_destroy(reparsed);
        baton_pattern_destroy(pattern);

        baton_value_destroy(previous);
        previous = value;
    }
    baton_value_destroy(previous);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alternatives),
        cmocka_unit_test(test_bindings),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_tuple_vs_list),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_print_round_trip),
        cmocka_unit_test(test_match_allocates_nothing),
        cmocka_unit_test(test_parse_out_of_memory),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests_name("space/pattern", tests, NULL, NULL);
}
