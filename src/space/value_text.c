/*
 * value_text.c — the text syntax of values (include/baton/space.h): a parser that builds the
 * encoding through a builder, and a printer that walks the encoding.
 *
 * DESIGN. The parser is recursive descent over the grammar
 *     value := nil | true | false | int | string | bytes | name | tuple | list
 *     tuple := '(' ')' | '(' value ',' ')' | '(' value (',' value)+ ','? ')'
 *     list  := '[' ']' | '[' value (',' value)* ','? ']'
 * with whitespace (space, tab, CR, LF) allowed between tokens. Recursion is bounded: the parser
 * refuses to open a container deeper than BATON_VALUE_MAX_DEPTH before it recurses, so hostile
 * text cannot exhaust the stack. "(x)" is refused rather than read as a parenthesised x, because
 * the pattern syntax reads parentheses as a tuple too and the two must agree.
 *
 * The printer writes the one canonical text: no optional whitespace except ", " between
 * elements, lowercase hex, a 1-tuple as "(x,)", and in strings the named escapes for '"', '\\',
 * LF, TAB, CR, NUL, \xHH for other control bytes and DEL, and every other byte as it is (strings
 * are UTF-8 by convention, unchecked). Printing then parsing gives back the same encoding, and
 * parsing canonical text then printing gives back the same text.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "baton/space.h"
#include "core/alloc.h"
#include "core/error.h"
#include "space/value_encoding.h"

/* ---- parsing ---- */

typedef struct parser {
    const char *text;
    size_t size;
    size_t pos;
    baton_value_builder *builder;
} parser;

#define WHO "baton_value_parse"

static void skip_space(parser *p)
{
    while (p->pos < p->size) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Describes the byte at pos for a message: "'x'", "byte 0x07" or "the end of the input". */
static const char *found(const parser *p, char *buf, size_t cap)
{
    if (p->pos >= p->size)
        return "the end of the input";
    unsigned char c = (unsigned char)p->text[p->pos];
    if (c >= 0x21 && c < 0x7f)
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "byte 0x%02x", c);
    return buf;
}

static int expected(const parser *p, const char *what)
{
    char buf[16];
    return baton__error(BATON_EINVAL, WHO ": offset %zu: expected %s, found %s", p->pos, what,
                        found(p, buf, sizeof buf));
}

/* Builder errors other than ENOMEM get the offset of the token that caused them. */
static int built(size_t at, int rc)
{
    if (rc == 0 || rc == BATON_ENOMEM)
        return rc;
    return baton__error(rc, WHO ": offset %zu: %s", at,
                        rc == BATON_ERANGE ? "the value exceeds the size limit" : "cannot build");
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads decimal digits at pos into *out; ERANGE when the number exceeds limit. */
static int parse_digits(parser *p, uint64_t limit, size_t start, uint64_t *out)
{
    uint64_t v = 0;
    if (p->pos >= p->size || !is_digit(p->text[p->pos]))
        return expected(p, "a digit");
    while (p->pos < p->size && is_digit(p->text[p->pos])) {
        unsigned d = (unsigned)(p->text[p->pos] - '0');
        if (v > (limit - d) / 10)
            return baton__error(BATON_ERANGE, WHO ": offset %zu: number out of range", start);
        v = v * 10 + d;
        p->pos++;
    }
    if (p->pos < p->size && is_word(p->text[p->pos]))
        return expected(p, "a digit or the end of the number");
    *out = v;
    return 0;
}

static int parse_int(parser *p)
{
    size_t start = p->pos;
    bool negative = p->text[p->pos] == '-';
    uint64_t magnitude = 0; /* gcc -O2 cannot see that only success reads it */
    if (negative)
        p->pos++;
    /* The int64 range is asymmetric: -9223372036854775808 has no positive counterpart. */
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    int rc = parse_digits(p, limit, start, &magnitude);
    if (rc != 0)
        return rc;
    int64_t v;
    if (negative)
        v = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
    else
        v = (int64_t)magnitude;
    return built(start, baton_value_add_int(p->builder, v));
}

/* Scans a string literal's body: when out is NULL only measures it (into *out_len), otherwise
 * writes the decoded bytes. pos is just after the opening quote; on return just after the
 * closing one. Two passes keep the parser free of a growing scratch buffer. */
static int scan_string(parser *p, uint8_t *out, size_t *out_len)
{
    size_t n = 0;
    for (;;) {
        if (p->pos >= p->size)
            return expected(p, "'\"' to close the string");
        char c = p->text[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c != '\\') {
            if (out != NULL)
                out[n] = (uint8_t)c;
            n++;
            p->pos++;
            continue;
        }
        size_t esc = p->pos;
        p->pos++;
        if (p->pos >= p->size)
            return expected(p, "an escape after '\\'");
        uint8_t b;
        switch (p->text[p->pos]) {
        case '"': b = '"'; break;
        case '\\': b = '\\'; break;
        case 'n': b = '\n'; break;
        case 't': b = '\t'; break;
        case 'r': b = '\r'; break;
        case '0': b = 0; break;
        case 'x': {
            int hi = p->pos + 1 < p->size ? hex_digit(p->text[p->pos + 1]) : -1;
            int lo = p->pos + 2 < p->size ? hex_digit(p->text[p->pos + 2]) : -1;
            if (hi < 0 || lo < 0)
                return baton__error(BATON_EINVAL,
                                    WHO ": offset %zu: \\x needs two hex digits", esc);
            b = (uint8_t)(hi << 4 | lo);
            p->pos += 2;
            break;
        }
        default: {
            char buf[16];
            return baton__error(BATON_EINVAL,
                                WHO ": offset %zu: unknown escape: expected one of \\\" \\\\ \\n "
                                    "\\t \\r \\0 \\xHH after '\\', found %s",
                                esc, found(p, buf, sizeof buf));
        }
        }
        p->pos++;
        if (out != NULL)
            out[n] = b;
        n++;
    }
    *out_len = n;
    return 0;
}

static int parse_string(parser *p)
{
    size_t start = p->pos;
    size_t len;
    p->pos++;
    int rc = scan_string(p, NULL, &len);
    if (rc != 0)
        return rc;
    if (len > BATON_VALUE_MAX_SIZE)
        return baton__error(BATON_ERANGE, WHO ": offset %zu: string exceeds the size limit", start);
    uint8_t *bytes = len ? baton__malloc(len) : NULL;
    if (len != 0 && bytes == NULL)
        return baton__error(BATON_ENOMEM, WHO ": out of memory for a %zu-byte string", len);
    p->pos = start + 1;
    rc = scan_string(p, bytes, &len);
    if (rc == 0)
        rc = built(start, baton_value_add_string(p->builder, (const char *)bytes, len));
    baton__free(bytes);
    return rc;
}

static int parse_bytes(parser *p)
{
    size_t start = p->pos;
    p->pos++; /* x */
    if (p->pos >= p->size || p->text[p->pos] != '"')
        return expected(p, "'\"' after x");
    p->pos++;
    size_t body = p->pos;
    while (p->pos < p->size && hex_digit(p->text[p->pos]) >= 0)
        p->pos++;
    size_t digits = p->pos - body;
    if (p->pos >= p->size || p->text[p->pos] != '"')
        return expected(p, "a hex digit or '\"'");
    if (digits % 2 != 0)
        return baton__error(BATON_EINVAL, WHO ": offset %zu: odd number of hex digits (%zu)",
                            body, digits);
    size_t len = digits / 2;
    uint8_t *bytes = len ? baton__malloc(len) : NULL;
    if (len != 0 && bytes == NULL)
        return baton__error(BATON_ENOMEM, WHO ": out of memory for %zu bytes", len);
    for (size_t i = 0; i < len; i++)
        bytes[i] = (uint8_t)(hex_digit(p->text[body + 2 * i]) << 4 |
                             hex_digit(p->text[body + 2 * i + 1]));
    p->pos++;
    int rc = built(start, baton_value_add_bytes(p->builder, bytes, len));
    baton__free(bytes);
    return rc;
}

static int parse_value(parser *p, unsigned depth);

/* A tuple or list: open is at pos; close is ')' or ']'. */
static int parse_container(parser *p, unsigned depth, char close)
{
    size_t start = p->pos;
    bool tuple = close == ')';
    if (depth >= BATON_VALUE_MAX_DEPTH)
        return baton__error(BATON_ERANGE, WHO ": offset %zu: nesting deeper than %u", start,
                            BATON_VALUE_MAX_DEPTH);
    int rc = tuple ? baton_value_begin_tuple(p->builder) : baton_value_begin_list(p->builder);
    if (rc != 0)
        return built(start, rc);
    p->pos++;
    size_t count = 0;
    bool comma = false; /* the last element was followed by a comma */
    for (;;) {
        skip_space(p);
        if (p->pos < p->size && p->text[p->pos] == close) {
            if (tuple && count == 1 && !comma)
                return baton__error(BATON_EINVAL,
                                    WHO ": offset %zu: a 1-tuple needs a trailing comma: (x,)",
                                    p->pos);
            p->pos++;
            return built(start, baton_value_end(p->builder));
        }
        if (count > 0 && !comma)
            return expected(p, tuple ? "',' or ')' after a tuple element"
                                     : "',' or ']' after a list element");
        rc = parse_value(p, depth + 1);
        if (rc != 0)
            return rc;
        count++;
        skip_space(p);
        comma = p->pos < p->size && p->text[p->pos] == ',';
        if (comma)
            p->pos++;
    }
}

static int parse_value(parser *p, unsigned depth)
{
    skip_space(p);
    if (p->pos >= p->size)
        return expected(p, "a value");
    size_t start = p->pos;
    char c = p->text[p->pos];
    uint64_t id = 0; /* gcc -O2 cannot see that only success reads it */
    int rc;
    switch (c) {
    case '(':
        return parse_container(p, depth, ')');
    case '[':
        return parse_container(p, depth, ']');
    case '"':
        return parse_string(p);
    case '@':
        p->pos++;
        rc = parse_digits(p, UINT64_MAX, start, &id);
        return rc != 0 ? rc : built(start, baton_value_add_name(p->builder, id));
    case '-':
        return parse_int(p);
    default:
        break;
    }
    if (is_digit(c))
        return parse_int(p);
    if (c == 'x' && p->pos + 1 < p->size && p->text[p->pos + 1] == '"')
        return parse_bytes(p);
    if (is_word(c)) {
        size_t end = p->pos;
        while (end < p->size && is_word(p->text[end]))
            end++;
        size_t len = end - p->pos;
        const char *w = p->text + p->pos;
        if (len == 3 && memcmp(w, "nil", 3) == 0)
            rc = baton_value_add_nil(p->builder);
        else if (len == 4 && memcmp(w, "true", 4) == 0)
            rc = baton_value_add_bool(p->builder, true);
        else if (len == 5 && memcmp(w, "false", 5) == 0)
            rc = baton_value_add_bool(p->builder, false);
        else
            return baton__error(BATON_EINVAL,
                                WHO ": offset %zu: unknown word '%.*s': expected nil, true or false",
                                start, (int)(len > 32 ? 32 : len), w);
        p->pos = end;
        return built(start, rc);
    }
    return expected(p, "a value");
}

int baton_value_parse(const char *text, size_t size, baton_value **out)
{
    if (out == NULL || (text == NULL && size != 0))
        return baton__error(BATON_EINVAL, WHO ": NULL %s", out ? "text" : "out");
    baton_value_builder *builder;
    int rc = baton_value_builder_create(&builder);
    if (rc != 0)
        return rc;
    parser p = {text, size, 0, builder};
    rc = parse_value(&p, 0);
    if (rc == 0) {
        skip_space(&p);
        if (p.pos < p.size)
            rc = expected(&p, "the end of the input after the value");
    }
    if (rc == 0)
        rc = baton_value_finish(builder, out);
    baton_value_builder_destroy(builder);
    return rc;
}

/* ---- printing ---- */

/* Appends to a fixed buffer, keeping room for the NUL, and counts what did not fit too. */
typedef struct printer {
    char *buf;
    size_t capacity;
    size_t length;
} printer;

static void put(printer *w, const char *s, size_t n)
{
    if (w->capacity > 0 && w->length < w->capacity - 1) {
        size_t room = w->capacity - 1 - w->length;
        memcpy(w->buf + w->length, s, n < room ? n : room);
    }
    w->length += n;
}

static void put_str(printer *w, const char *s)
{
    put(w, s, strlen(s));
}

static const char hex[] = "0123456789abcdef";

static void print_value(printer *w, const uint8_t *p)
{
    char num[32];
    uint64_t n;
    size_t vlen;
    switch (p[0]) {
    case BATON__TAG_NIL:
        put_str(w, "nil");
        return;
    case BATON__TAG_FALSE:
        put_str(w, "false");
        return;
    case BATON__TAG_TRUE:
        put_str(w, "true");
        return;
    case BATON__TAG_INT: {
        baton_value_view v = {p, 9};
        snprintf(num, sizeof num, "%" PRId64, baton_view_int(v));
        put_str(w, num);
        return;
    }
    case BATON__TAG_NAME:
        snprintf(num, sizeof num, "@%" PRIu64, baton__load_be64(p + 1));
        put_str(w, num);
        return;
    case BATON__TAG_STRING:
        vlen = baton__varint_read_trusted(p + 1, &n);
        put_str(w, "\"");
        for (size_t i = 0; i < n; i++) {
            uint8_t c = p[1 + vlen + i];
            char esc[4] = {'\\', 0, 0, 0};
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\t': esc[1] = 't'; break;
            case '\r': esc[1] = 'r'; break;
            case 0: esc[1] = '0'; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    esc[1] = 'x';
                    esc[2] = hex[c >> 4];
                    esc[3] = hex[c & 15];
                    put(w, esc, 4);
                } else {
                    put(w, (const char *)&c, 1);
                }
                continue;
            }
            put(w, esc, 2);
        }
        put_str(w, "\"");
        return;
    case BATON__TAG_BYTES:
        vlen = baton__varint_read_trusted(p + 1, &n);
        put_str(w, "x\"");
        for (size_t i = 0; i < n; i++) {
            uint8_t c = p[1 + vlen + i];
            char pair[2] = {hex[c >> 4], hex[c & 15]};
            put(w, pair, 2);
        }
        put_str(w, "\"");
        return;
    default: { /* tuple or list; the checked encoding bounds the recursion depth */
        bool tuple = p[0] == BATON__TAG_TUPLE;
        vlen = baton__varint_read_trusted(p + 1, &n);
        const uint8_t *e = p + 1 + vlen;
        put_str(w, tuple ? "(" : "[");
        for (uint64_t i = 0; i < n; i++) {
            if (i > 0)
                put_str(w, ", ");
            print_value(w, e);
            e += baton__value_skip(e);
        }
        if (tuple && n == 1)
            put_str(w, ",");
        put_str(w, tuple ? ")" : "]");
        return;
    }
    }
}

int baton_value_print(baton_value_view value, char *buf, size_t capacity, size_t *length)
{
    if (length == NULL || (buf == NULL && capacity > 0))
        return baton__error(BATON_EINVAL, "baton_value_print: NULL %s", length ? "buf" : "length");
    /* Printing reads as far as the encoding says; a view that is not a whole value is refused. */
    if (!baton__view_valid(value))
        return baton__error(BATON_EINVAL, "baton_value_print: malformed view");
    printer w = {buf, capacity, 0};
    print_value(&w, value.data);
    if (capacity > 0)
        buf[w.length < capacity ? w.length : capacity - 1] = '\0';
    *length = w.length;
    if (w.length >= capacity)
        return baton__error(BATON_ERANGE, "baton_value_print: %zu bytes of text do not fit in %zu",
                            w.length + 1, capacity);
    return 0;
}
