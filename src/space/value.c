/*
 * value.c — values: the canonical encoding (include/baton/space.h), the builder that produces it,
 * the checker that admits untrusted bytes, and the accessors that read it.
 *
 * DESIGN. A value is one allocation: its size followed by its encoding. Because the encoding is
 * canonical (one encoding per value), equality is memcmp and the hash is XXH3-64 of the bytes;
 * nothing needs a tree.
 *
 * The builder appends encoded bytes to one growing buffer. A tuple or list is written as its tag
 * when it opens; its element count is only known when it closes, so baton_value_end inserts the
 * count's varint right after the tag, moving the elements up by the varint's length (1 byte for
 * fewer than 128 elements). That costs a memmove per close, O(size x depth) at worst, and keeps
 * the encoding free of fixed-width counts, which would not be canonical. The builder grows its
 * buffer before it changes anything, so a failed call leaves it as it was.
 *
 * Two readers. baton__value_check reads untrusted bytes: every read is bounded by the input size,
 * nesting is tracked on a fixed stack of BATON_VALUE_MAX_DEPTH counters (no recursion, so hostile
 * input cannot exhaust the C stack), and the first fault is reported with its offset. The
 * accessors (baton_view_*) and baton__value_skip trust their view: the header says a view must
 * come from a value or a successful decode, so they do no bounds checks. An empty view (what
 * baton_view_element returns out of range) is the one exception they tolerate: it reads as nil
 * with no content.
 */
#include <string.h>

#include <xxhash.h>

#include "baton/space.h"
#include "core/alloc.h"
#include "core/error.h"
#include "space/value_encoding.h"

struct baton_value {
    size_t size;
    uint8_t data[];
};

/* ---- varints and fixed-width fields ---- */

size_t baton__varint_read(const uint8_t *data, size_t size, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < BATON__VARINT_MAX && i < size; i++) {
        uint8_t b = data[i];
        /* The tenth byte carries only bit 63: anything above 1 would overflow 64 bits. */
        if (i == BATON__VARINT_MAX - 1 && b > 1)
            return 0;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            /* A zero final byte after the first means a shorter form existed. */
            if (b == 0 && i > 0)
                return 0;
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

size_t baton__varint_read_trusted(const uint8_t *data, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (;;) {
        uint8_t b = data[i];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        i++;
        if (!(b & 0x80))
            break;
    }
    *out = v;
    return i;
}

uint64_t baton__load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

void baton__store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* ---- checking untrusted bytes ---- */

/* Checks one value at data[0..size) with at most max_depth levels of nesting. */
static int check_value(const char *who, const uint8_t *data, size_t size, unsigned max_depth,
                       size_t *out_size)
{
    uint64_t remaining[BATON_VALUE_MAX_DEPTH];
    unsigned depth = 0;
    size_t pos = 0;

    for (;;) {
        if (pos >= size)
            return baton__error(BATON_EINVAL, "%s: offset %zu: input ends where a value was expected",
                                who, pos);
        uint8_t tag = data[pos];
        uint64_t n;
        size_t vlen;
        bool opened = false;
        switch (tag) {
        case BATON__TAG_NIL:
        case BATON__TAG_FALSE:
        case BATON__TAG_TRUE:
            pos += 1;
            break;
        case BATON__TAG_INT:
        case BATON__TAG_NAME:
            if (size - pos < 9)
                return baton__error(BATON_EINVAL, "%s: offset %zu: input ends inside an 8-byte %s",
                                    who, pos + 1, tag == BATON__TAG_INT ? "int" : "name");
            pos += 9;
            break;
        case BATON__TAG_STRING:
        case BATON__TAG_BYTES:
            vlen = baton__varint_read(data + pos + 1, size - pos - 1, &n);
            if (vlen == 0)
                return baton__error(BATON_EINVAL,
                                    "%s: offset %zu: truncated, overlong or non-canonical length",
                                    who, pos + 1);
            if (n > BATON_VALUE_MAX_SIZE)
                return baton__error(BATON_ERANGE, "%s: offset %zu: length %llu exceeds the limit",
                                    who, pos + 1, (unsigned long long)n);
            pos += 1 + vlen;
            if (n > size - pos)
                return baton__error(BATON_EINVAL,
                                    "%s: offset %zu: input ends inside a %llu-byte %s", who, pos,
                                    (unsigned long long)n, tag == BATON__TAG_STRING ? "string" : "bytes");
            pos += (size_t)n;
            break;
        case BATON__TAG_TUPLE:
        case BATON__TAG_LIST:
            vlen = baton__varint_read(data + pos + 1, size - pos - 1, &n);
            if (vlen == 0)
                return baton__error(BATON_EINVAL,
                                    "%s: offset %zu: truncated, overlong or non-canonical count",
                                    who, pos + 1);
            if (depth + 1 > max_depth)
                return baton__error(BATON_ERANGE, "%s: offset %zu: nesting deeper than %u", who,
                                    pos, max_depth);
            /* Every element takes at least one byte, so a larger count is truncated input. */
            if (n > size - pos - 1 - vlen)
                return baton__error(BATON_EINVAL,
                                    "%s: offset %zu: count %llu exceeds the bytes that follow", who,
                                    pos + 1, (unsigned long long)n);
            pos += 1 + vlen;
            if (n > 0) {
                remaining[depth++] = n;
                opened = true;
            }
            break;
        default:
            return baton__error(BATON_EINVAL, "%s: offset %zu: unknown tag 0x%02x", who, pos, tag);
        }
        if (pos > BATON_VALUE_MAX_SIZE)
            return baton__error(BATON_ERANGE, "%s: offset %zu: encoding exceeds %llu bytes", who,
                                pos, (unsigned long long)BATON_VALUE_MAX_SIZE);
        if (opened)
            continue;
        /* A value is complete: count it against every container it completes. */
        while (depth > 0 && --remaining[depth - 1] == 0)
            depth--;
        if (depth == 0)
            break;
    }
    *out_size = pos;
    return 0;
}

int baton__value_check(const char *who, const uint8_t *data, size_t size, size_t *out_size)
{
    return check_value(who, data, size, BATON_VALUE_MAX_DEPTH, out_size);
}

bool baton__view_valid_walk(baton_value_view view)
{
    size_t used;
    if (view.data == NULL || view.size == 0)
        return false;
    /* The check sets a detail message; callers that refuse the view set their own after it. */
    return check_value("baton_value_view", view.data, view.size, BATON_VALUE_MAX_DEPTH, &used) == 0 &&
           used == view.size;
}

size_t baton__value_skip(const uint8_t *p)
{
    /* Values still to read: each container adds its count; no stack is needed to find the end. */
    uint64_t pending = 1;
    size_t pos = 0;
    uint64_t n;
    while (pending > 0) {
        pending--;
        switch (p[pos]) {
        case BATON__TAG_INT:
        case BATON__TAG_NAME:
            pos += 9;
            break;
        case BATON__TAG_STRING:
        case BATON__TAG_BYTES:
            pos += 1 + baton__varint_read_trusted(p + pos + 1, &n);
            pos += (size_t)n;
            break;
        case BATON__TAG_TUPLE:
        case BATON__TAG_LIST:
            pos += 1 + baton__varint_read_trusted(p + pos + 1, &n);
            pending += n;
            break;
        default: /* nil, false, true */
            pos += 1;
            break;
        }
    }
    return pos;
}

/* ---- values ---- */

static int value_make(const uint8_t *data, size_t size, baton_value **out)
{
    baton_value *value = baton__malloc(sizeof *value + size);
    if (value == NULL)
        return baton__error(BATON_ENOMEM, "baton_value: out of memory for %zu bytes", size);
    value->size = size;
    memcpy(value->data, data, size);
    *out = value;
    return 0;
}

int baton_value_decode(const void *data, size_t size, baton_value **out)
{
    size_t used;
    if (data == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "baton_value_decode: NULL %s", data ? "out" : "data");
    int rc = baton__value_check("baton_value_decode", data, size, &used);
    if (rc != 0)
        return rc;
    if (used != size)
        return baton__error(BATON_EINVAL,
                            "baton_value_decode: offset %zu: %zu trailing bytes after the value",
                            used, size - used);
    return value_make(data, size, out);
}

baton_value_view baton_value_as_view(const baton_value *value)
{
    baton_value_view view = {NULL, 0};
    if (value != NULL) {
        view.data = value->data;
        view.size = value->size;
    }
    return view;
}

int baton_value_from_view(baton_value_view view, baton_value **out)
{
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_value_from_view: NULL out");
    if (!baton__view_valid(view))
        return baton__error(BATON_EINVAL, "baton_value_from_view: malformed view");
    return value_make(view.data, view.size, out);
}

void baton_value_destroy(baton_value *value)
{
    baton__free(value);
}

/* ---- reading ---- */

baton_value_kind baton_view_kind(baton_value_view view)
{
    return view.size == 0 ? BATON_VALUE_NIL : baton__kind_of_tag(view.data[0]);
}

bool baton_view_equal(baton_value_view a, baton_value_view b)
{
    /* Canonical encodings: equal values have equal bytes and nothing else does. */
    return a.size == b.size && (a.size == 0 || memcmp(a.data, b.data, a.size) == 0);
}

uint64_t baton_view_hash(baton_value_view view)
{
    return (uint64_t)XXH3_64bits(view.size ? view.data : (const uint8_t *)"", view.size);
}

bool baton_view_bool(baton_value_view view)
{
    return view.size != 0 && view.data[0] == BATON__TAG_TRUE;
}

int64_t baton_view_int(baton_value_view view)
{
    if (view.size == 0 || view.data[0] != BATON__TAG_INT)
        return 0;
    uint64_t u = baton__load_be64(view.data + 1);
    int64_t v;
    /* memcpy reinterprets the two's complement bits without an implementation-defined cast. */
    memcpy(&v, &u, sizeof v);
    return v;
}

uint64_t baton_view_name(baton_value_view view)
{
    if (view.size == 0 || view.data[0] != BATON__TAG_NAME)
        return 0;
    return baton__load_be64(view.data + 1);
}

const uint8_t *baton_view_bytes(baton_value_view view, size_t *size)
{
    uint64_t n = 0;
    const uint8_t *content = NULL;
    if (view.size != 0 && (view.data[0] == BATON__TAG_STRING || view.data[0] == BATON__TAG_BYTES)) {
        size_t vlen = baton__varint_read_trusted(view.data + 1, &n);
        content = view.data + 1 + vlen;
    }
    if (size != NULL)
        *size = (size_t)n;
    return content;
}

size_t baton_view_count(baton_value_view view)
{
    uint64_t n = 0;
    if (view.size != 0 && (view.data[0] == BATON__TAG_TUPLE || view.data[0] == BATON__TAG_LIST))
        baton__varint_read_trusted(view.data + 1, &n);
    return (size_t)n;
}

baton_value_view baton_view_element(baton_value_view view, size_t index)
{
    baton_value_view element = {NULL, 0};
    uint64_t n;
    if (view.size == 0 || (view.data[0] != BATON__TAG_TUPLE && view.data[0] != BATON__TAG_LIST))
        return element;
    const uint8_t *p = view.data + 1 + baton__varint_read_trusted(view.data + 1, &n);
    if (index >= n)
        return element;
    for (size_t i = 0; i < index; i++)
        p += baton__value_skip(p);
    element.data = p;
    element.size = baton__value_skip(p);
    return element;
}

/* ---- building ---- */

struct baton_value_builder {
    uint8_t *buf;
    size_t len;
    size_t cap;
    bool complete; /* the top-level value is finished: only finish may follow */
    unsigned depth;
    /* Per open container: the offset right after its tag (where its count goes) and its count. */
    struct {
        size_t body;
        uint64_t count;
    } open[BATON_VALUE_MAX_DEPTH];
};

int baton_value_builder_create(baton_value_builder **out)
{
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_value_builder_create: NULL out");
    baton_value_builder *b = baton__calloc(1, sizeof *b);
    if (b == NULL)
        return baton__error(BATON_ENOMEM, "baton_value_builder_create: out of memory");
    *out = b;
    return 0;
}

void baton_value_builder_destroy(baton_value_builder *builder)
{
    if (builder == NULL)
        return;
    baton__free(builder->buf);
    baton__free(builder);
}

/* Makes room for `extra` more bytes after checking that a value may start here and that the
 * encoding stays in the limit (each open container will need at least one count byte). */
static int reserve(baton_value_builder *b, const char *who, size_t extra)
{
    if (b == NULL)
        return baton__error(BATON_EINVAL, "%s: NULL builder", who);
    if (b->complete)
        return baton__error(BATON_EINVAL, "%s: a value after the top-level value is complete", who);
    if (extra > BATON_VALUE_MAX_SIZE || b->len + extra + b->depth > BATON_VALUE_MAX_SIZE)
        return baton__error(BATON_ERANGE, "%s: the encoding would exceed %llu bytes", who,
                            (unsigned long long)BATON_VALUE_MAX_SIZE);
    void *buf = b->buf;
    if (!baton__grow_array(&buf, &b->cap, b->len + extra, 1))
        return baton__error(BATON_ENOMEM, "%s: out of memory", who);
    b->buf = buf;
    return 0;
}

/* Records that one complete value was appended. */
static void appended(baton_value_builder *b)
{
    if (b->depth > 0)
        b->open[b->depth - 1].count++;
    else
        b->complete = true;
}

static int add_simple(baton_value_builder *b, const char *who, uint8_t tag)
{
    int rc = reserve(b, who, 1);
    if (rc != 0)
        return rc;
    b->buf[b->len++] = tag;
    appended(b);
    return 0;
}

static int add_fixed(baton_value_builder *b, const char *who, uint8_t tag, uint64_t body)
{
    int rc = reserve(b, who, 9);
    if (rc != 0)
        return rc;
    b->buf[b->len] = tag;
    baton__store_be64(b->buf + b->len + 1, body);
    b->len += 9;
    appended(b);
    return 0;
}

static int add_counted(baton_value_builder *b, const char *who, uint8_t tag, const void *data,
                       size_t size)
{
    if (data == NULL && size != 0)
        return baton__error(BATON_EINVAL, "%s: NULL data with size %zu", who, size);
    if (size > BATON_VALUE_MAX_SIZE)
        return baton__error(BATON_ERANGE, "%s: %zu bytes exceed the limit", who, size);
    int rc = reserve(b, who, 1 + baton__varint_size(size) + size);
    if (rc != 0)
        return rc;
    b->buf[b->len++] = tag;
    b->len += baton__varint_write(b->buf + b->len, size);
    if (size != 0)
        memcpy(b->buf + b->len, data, size);
    b->len += size;
    appended(b);
    return 0;
}

int baton_value_add_nil(baton_value_builder *builder)
{
    return add_simple(builder, "baton_value_add_nil", BATON__TAG_NIL);
}

int baton_value_add_bool(baton_value_builder *builder, bool value)
{
    return add_simple(builder, "baton_value_add_bool", value ? BATON__TAG_TRUE : BATON__TAG_FALSE);
}

int baton_value_add_int(baton_value_builder *builder, int64_t value)
{
    uint64_t u;
    memcpy(&u, &value, sizeof u);
    return add_fixed(builder, "baton_value_add_int", BATON__TAG_INT, u);
}

int baton_value_add_name(baton_value_builder *builder, uint64_t id)
{
    return add_fixed(builder, "baton_value_add_name", BATON__TAG_NAME, id);
}

int baton_value_add_string(baton_value_builder *builder, const char *data, size_t size)
{
    return add_counted(builder, "baton_value_add_string", BATON__TAG_STRING, data, size);
}

int baton_value_add_bytes(baton_value_builder *builder, const void *data, size_t size)
{
    return add_counted(builder, "baton_value_add_bytes", BATON__TAG_BYTES, data, size);
}

int baton_value_add_view(baton_value_builder *builder, baton_value_view view)
{
    static const char who[] = "baton_value_add_view";
    size_t used;
    if (builder == NULL)
        return baton__error(BATON_EINVAL, "%s: NULL builder", who);
    if (view.data == NULL || view.size == 0)
        return baton__error(BATON_EINVAL, "%s: empty view", who);
    /* The copy nests inside the containers open here, so it may use only the remaining depth. */
    int rc = check_value(who, view.data, view.size, BATON_VALUE_MAX_DEPTH - builder->depth, &used);
    if (rc != 0)
        return rc;
    if (used != view.size)
        return baton__error(BATON_EINVAL, "%s: offset %zu: trailing bytes in the view", who, used);
    rc = reserve(builder, who, view.size);
    if (rc != 0)
        return rc;
    memcpy(builder->buf + builder->len, view.data, view.size);
    builder->len += view.size;
    appended(builder);
    return 0;
}

static int begin(baton_value_builder *b, const char *who, uint8_t tag)
{
    if (b != NULL && !b->complete && b->depth >= BATON_VALUE_MAX_DEPTH)
        return baton__error(BATON_ERANGE, "%s: nesting deeper than %u", who,
                            BATON_VALUE_MAX_DEPTH);
    int rc = reserve(b, who, 1);
    if (rc != 0)
        return rc;
    b->buf[b->len++] = tag;
    b->open[b->depth].body = b->len;
    b->open[b->depth].count = 0;
    b->depth++;
    return 0;
}

int baton_value_begin_tuple(baton_value_builder *builder)
{
    return begin(builder, "baton_value_begin_tuple", BATON__TAG_TUPLE);
}

int baton_value_begin_list(baton_value_builder *builder)
{
    return begin(builder, "baton_value_begin_list", BATON__TAG_LIST);
}

int baton_value_end(baton_value_builder *b)
{
    static const char who[] = "baton_value_end";
    if (b == NULL)
        return baton__error(BATON_EINVAL, "%s: NULL builder", who);
    if (b->depth == 0)
        return baton__error(BATON_EINVAL, "%s: no open tuple or list", who);
    size_t body = b->open[b->depth - 1].body;
    uint64_t count = b->open[b->depth - 1].count;
    size_t vsize = baton__varint_size(count);
    if (b->len + vsize + (b->depth - 1) > BATON_VALUE_MAX_SIZE)
        return baton__error(BATON_ERANGE, "%s: the encoding would exceed %llu bytes", who,
                            (unsigned long long)BATON_VALUE_MAX_SIZE);
    void *buf = b->buf;
    if (!baton__grow_array(&buf, &b->cap, b->len + vsize, 1))
        return baton__error(BATON_ENOMEM, "%s: out of memory", who);
    b->buf = buf;
    /* The count goes between the tag and the elements written since begin. */
    memmove(b->buf + body + vsize, b->buf + body, b->len - body);
    baton__varint_write(b->buf + body, count);
    b->len += vsize;
    b->depth--;
    appended(b);
    return 0;
}

int baton_value_finish(baton_value_builder *builder, baton_value **out)
{
    if (builder == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "baton_value_finish: NULL %s", builder ? "out" : "builder");
    if (builder->depth > 0)
        return baton__error(BATON_EINVAL, "baton_value_finish: %u tuples or lists still open",
                            builder->depth);
    if (!builder->complete)
        return baton__error(BATON_EINVAL, "baton_value_finish: nothing built");
    int rc = value_make(builder->buf, builder->len, out);
    if (rc != 0)
        return rc;
    builder->len = 0;
    builder->complete = false;
    return 0;
}
