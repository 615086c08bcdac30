/*
 * pattern.c — patterns over values: the parser that compiles pattern text into a program, the
 * matcher that runs a program against a value's canonical encoding, and the printer.
 *
 * DESIGN
 *
 * A compiled pattern is an array of nodes in pre-order: a node is followed by its children, and
 * every node records how many nodes its subtree takes, so a walk steps over a child without any
 * index table. Node kinds: ANY (_), BIND (binder i), LIT (encoded value bytes), TYPE (a kind),
 * TUPLE and LIST (n children) and ALT (n alternatives).
 *
 * Literals are kept as their canonical encodings in one byte pool. Because the encoding is
 * canonical and prefix-free, "the value at p equals the literal" is exactly "the literal's bytes
 * are at p", one memcmp. A tuple or list whose elements are all literals is folded into a single
 * literal at compile time, so `("a", 1, [2])` costs one memcmp too. Literal text is handed to
 * baton_value_parse (after this file has found where the literal ends), so patterns and values
 * can never disagree about escapes or number syntax; printing literals goes through
 * baton_value_print for the same reason.
 *
 * Matching walks the value's encoding with the trusted readers of value_encoding.h (a view comes
 * from a value or a successful decode, so it is canonical), writes binder views into the caller's
 * array and allocates nothing. Recursion follows the pattern's nesting, which the parser limits
 * to BATON_VALUE_MAX_DEPTH, so the stack stays small whatever the value holds.
 *
 * There are no grouping parentheses ("(p)" is refused, as in values), so an ALT's branches are
 * never ALTs and the printer needs no parentheses: `|` binds tighter than `,`. Binders inside
 * alternatives are refused, which is also what lets a failed alternative leave the bindings
 * without any undo.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "space/value_encoding.h"

enum { OP_ANY, OP_BIND, OP_LIT, OP_TYPE, OP_TUPLE, OP_LIST, OP_ALT };

typedef struct pattern_node {
    uint8_t op;
    uint8_t kind;  /* TYPE: the baton_value_kind */
    uint32_t size; /* nodes in this subtree, this one included */
    uint32_t arg;  /* BIND: binder index; TUPLE, LIST, ALT: children; LIT: offset in the pool */
    uint32_t len;  /* LIT: encoded bytes */
} pattern_node;

struct baton_pattern {
    pattern_node *nodes;
    uint8_t *lits;
    char *names; /* binder names, each NUL-terminated */
    uint32_t n_nodes;
    unsigned n_binders;
    uint32_t name_offset[BATON_PATTERN_MAX_BINDERS];
};

static const struct {
    const char *name;
    baton_value_kind kind;
} type_names[] = {
    {"Int", BATON_VALUE_INT},     {"String", BATON_VALUE_STRING}, {"Bool", BATON_VALUE_BOOL},
    {"Bytes", BATON_VALUE_BYTES}, {"Nil", BATON_VALUE_NIL},       {"Name", BATON_VALUE_NAME},
    {"Tuple", BATON_VALUE_TUPLE}, {"List", BATON_VALUE_LIST},
};

/* ---- parsing ---- */

typedef struct parser {
    const char *text;
    size_t size, pos;
    pattern_node *nodes;
    size_t n_nodes, cap_nodes;
    uint8_t *lits;
    size_t n_lits, cap_lits;
    char *names;
    size_t n_names, cap_names;
    uint32_t name_offset[BATON_PATTERN_MAX_BINDERS];
    size_t binder_pos[BATON_PATTERN_MAX_BINDERS]; /* text offsets, for the alternative error */
    unsigned n_binders;
    unsigned depth;
} parser;

#define WHO "baton_pattern_parse"

static void skip_space(parser *p)
{
    while (p->pos < p->size) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* The character at the cursor, or 0 at the end (a NUL inside the text is refused wherever it
 * is met, since no token starts with one). */
static char peek(const parser *p)
{
    return p->pos < p->size ? p->text[p->pos] : '\0';
}

/* For messages: what is at offset pos. */
static const char *found_at(const parser *p, size_t pos, char *buf, size_t cap)
{
    if (pos >= p->size)
        return "the end";
    unsigned char c = (unsigned char)p->text[pos];
    if (c >= 0x21 && c < 0x7f)
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "byte 0x%02x", c);
    return buf;
}

static int syntax_error(const parser *p, const char *expected)
{
    char buf[16];
    return baton__error(BATON_EINVAL, WHO ": offset %zu: expected %s, found %s", p->pos,
                        expected, found_at(p, p->pos, buf, sizeof buf));
}

static int no_memory(void)
{
    return baton__error(BATON_ENOMEM, WHO ": out of memory");
}

/* Appends a node and returns its index, or SIZE_MAX when memory ran out. */
static size_t emit(parser *p, uint8_t op)
{
    if (p->n_nodes >= UINT32_MAX - 1)
        return SIZE_MAX;
    if (!baton__grow_array((void **)&p->nodes, &p->cap_nodes, p->n_nodes + 1, sizeof *p->nodes))
        return SIZE_MAX;
    pattern_node *n = &p->nodes[p->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->size = 1;
    return p->n_nodes++;
}

/* Room for `extra` more literal bytes; the pool is addressed by 32-bit offsets. */
static int reserve_lits(parser *p, size_t extra)
{
    if (extra > UINT32_MAX - p->n_lits)
        return baton__error(BATON_ERANGE, WHO ": literals above 4 GiB");
    if (!baton__grow_array((void **)&p->lits, &p->cap_lits, p->n_lits + extra, 1))
        return no_memory();
    return 0;
}

/* Finds where the literal at the cursor ends (strings may hold anything but an unescaped
 * quote); baton_value_parse then reads it. */
static int scan_literal_end(parser *p, size_t *end)
{
    size_t i = p->pos;
    char c = p->text[i];
    if (c == 'x' || c == '"') {
        i += c == 'x' ? 2 : 1; /* x" or " */
        while (i < p->size && p->text[i] != '"')
            i += p->text[i] == '\\' ? 2 : 1;
        if (i >= p->size)
            return baton__error(BATON_EINVAL, WHO ": offset %zu: unterminated string", p->pos);
        *end = i + 1;
        return 0;
    }
    if (c == '-' || c == '@')
        i++;
    size_t digits = i;
    while (i < p->size && p->text[i] >= '0' && p->text[i] <= '9')
        i++;
    if (i == digits) {
        char buf[16];
        return baton__error(BATON_EINVAL, WHO ": offset %zu: expected a digit after '%c', found %s",
                            p->pos, c, found_at(p, i, buf, sizeof buf));
    }
    *end = i;
    return 0;
}

/* Parses the literal text[pos..end) with the value parser and appends a LIT node. */
static int literal(parser *p, size_t end)
{
    baton_value *value = NULL;
    int rc = baton_value_parse(p->text + p->pos, end - p->pos, &value);
    if (rc == BATON_ENOMEM)
        return no_memory();
    if (rc != 0) {
        /* The value parser's offsets count from the literal: say where it starts. Its message
         * lives in the buffer baton__error writes, so it is copied out first. */
        char detail[256];
        snprintf(detail, sizeof detail, "%s", baton_last_error_message());
        return baton__error(rc, WHO ": offset %zu: in the literal here: %s", p->pos, detail);
    }
    baton_value_view view = baton_value_as_view(value);
    rc = reserve_lits(p, view.size);
    size_t at = rc == 0 ? emit(p, OP_LIT) : 0;
    if (rc == 0 && at == SIZE_MAX)
        rc = no_memory();
    if (rc == 0) {
        memcpy(p->lits + p->n_lits, view.data, view.size);
        p->nodes[at].arg = (uint32_t)p->n_lits;
        p->nodes[at].len = (uint32_t)view.size;
        p->n_lits += view.size;
        p->pos = end;
    }
    baton_value_destroy(value);
    return rc;
}

static int binder(parser *p, size_t start, size_t len)
{
    for (unsigned i = 0; i < p->n_binders; i++) {
        const char *name = p->names + p->name_offset[i];
        if (strlen(name) == len && memcmp(name, p->text + start, len) == 0)
            return baton__error(BATON_EINVAL,
                                WHO ": offset %zu: binder '%s' used twice (first at offset %zu)",
                                start, name, p->binder_pos[i]);
    }
    if (p->n_binders >= BATON_PATTERN_MAX_BINDERS)
        return baton__error(BATON_ERANGE, WHO ": offset %zu: more than %u binders", start,
                            BATON_PATTERN_MAX_BINDERS);
    if (len >= UINT32_MAX - p->n_names ||
        !baton__grow_array((void **)&p->names, &p->cap_names, p->n_names + len + 1, 1))
        return no_memory();
    size_t at = emit(p, OP_BIND);
    if (at == SIZE_MAX)
        return no_memory();
    p->nodes[at].arg = p->n_binders;
    memcpy(p->names + p->n_names, p->text + start, len);
    p->names[p->n_names + len] = '\0';
    p->name_offset[p->n_binders] = (uint32_t)p->n_names;
    p->binder_pos[p->n_binders] = start;
    p->n_binders++;
    p->n_names += len + 1;
    return 0;
}

/* A word: `_`, a binder, a type name, or nil/true/false. */
static int word(parser *p)
{
    size_t start = p->pos, end = start;
    while (end < p->size) {
        char c = p->text[end];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            break;
        end++;
    }
    size_t len = end - start;
    const char *w = p->text + start;
    if (len == 1 && w[0] == '_') {
        p->pos = end;
        return emit(p, OP_ANY) == SIZE_MAX ? no_memory() : 0;
    }
    if ((len == 3 && memcmp(w, "nil", 3) == 0) || (len == 4 && memcmp(w, "true", 4) == 0) ||
        (len == 5 && memcmp(w, "false", 5) == 0))
        return literal(p, end);
    if (w[0] >= 'A' && w[0] <= 'Z') {
        for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
            if (strlen(type_names[i].name) == len && memcmp(type_names[i].name, w, len) == 0) {
                size_t at = emit(p, OP_TYPE);
                if (at == SIZE_MAX)
                    return no_memory();
                p->nodes[at].kind = (uint8_t)type_names[i].kind;
                p->pos = end;
                return 0;
            }
        }
        return baton__error(BATON_EINVAL,
                            WHO ": offset %zu: unknown type name '%.*s' (types: Int String Bool "
                                "Bytes Nil Name Tuple List)",
                            start, (int)(len > 64 ? 64 : len), w);
    }
    for (size_t i = 0; i < len; i++) {
        if (w[i] >= 'A' && w[i] <= 'Z')
            return baton__error(BATON_EINVAL,
                                WHO ": offset %zu: '%.*s' is not a binder (binders are lowercase "
                                    "identifiers)",
                                start, (int)(len > 64 ? 64 : len), w);
    }
    if (w[0] == '_')
        return baton__error(BATON_EINVAL,
                            WHO ": offset %zu: a binder starts with a lowercase letter", start);
    p->pos = end;
    return binder(p, start, len);
}

static int alternatives(parser *p);

/* Folds a tuple or list node whose children are all literals into one literal. */
static int fold_literals(parser *p, size_t at)
{
    pattern_node *n = &p->nodes[at];
    uint32_t count = n->arg;
    if (n->size != count + 1)
        return 0;
    size_t total = 1 + baton__varint_size(count);
    for (uint32_t i = 0; i < count; i++) {
        if (n[1 + i].op != OP_LIT)
            return 0;
        total += n[1 + i].len;
    }
    int rc = reserve_lits(p, total);
    if (rc != 0)
        return rc;
    n = &p->nodes[at];
    uint8_t *out = p->lits + p->n_lits;
    size_t w = 0;
    out[w++] = n->op == OP_TUPLE ? BATON__TAG_TUPLE : BATON__TAG_LIST;
    w += baton__varint_write(out + w, count);
    for (uint32_t i = 0; i < count; i++) {
        memcpy(out + w, p->lits + n[1 + i].arg, n[1 + i].len);
        w += n[1 + i].len;
    }
    /* The children's bytes stay in the pool unused: a pattern is small and compiled once. */
    n->op = OP_LIT;
    n->arg = (uint32_t)p->n_lits;
    n->len = (uint32_t)w;
    n->size = 1;
    p->n_lits += w;
    p->n_nodes = at + 1;
    return 0;
}

/* `(` ... `)` or `[` ... `]`: a tuple or a list. As in values, "(p)" is refused rather than read
 * as a parenthesised p: a 1-tuple is "(p,)", and there are no grouping parentheses (`|` binds
 * tighter than `,`, so none are needed). */
static int sequence(parser *p)
{
    char open = p->text[p->pos], close = open == '(' ? ')' : ']';
    size_t open_pos = p->pos;
    if (++p->depth > BATON_VALUE_MAX_DEPTH)
        return baton__error(BATON_ERANGE, WHO ": offset %zu: nesting above %u", open_pos,
                            BATON_VALUE_MAX_DEPTH);
    p->pos++;
    size_t at = emit(p, open == '(' ? OP_TUPLE : OP_LIST);
    if (at == SIZE_MAX)
        return no_memory();
    uint32_t count = 0;
    bool trailing_comma = false;
    skip_space(p);
    while (peek(p) != close) {
        if (count == UINT32_MAX - 1)
            return baton__error(BATON_ERANGE, WHO ": offset %zu: too many elements", p->pos);
        int rc = alternatives(p);
        if (rc != 0)
            return rc;
        count++;
        trailing_comma = false;
        skip_space(p);
        if (peek(p) == ',') {
            p->pos++;
            trailing_comma = true;
            skip_space(p);
        } else if (peek(p) != close) {
            return syntax_error(p, open == '(' ? "',' or ')' after a tuple element"
                                               : "',' or ']' after a list element");
        }
    }
    if (open == '(' && count == 1 && !trailing_comma)
        return baton__error(BATON_EINVAL, WHO ": offset %zu: a 1-tuple needs a trailing comma: (p,)",
                            p->pos);
    p->pos++;
    p->depth--;
    p->nodes[at].arg = count;
    p->nodes[at].size = (uint32_t)(p->n_nodes - at);
    return fold_literals(p, at);
}

static int primary(parser *p)
{
    skip_space(p);
    char c = peek(p);
    if (p->pos >= p->size)
        return syntax_error(p, "a pattern");
    if (c == '(' || c == '[')
        return sequence(p);
    if (c == 'x' && p->pos + 1 < p->size && p->text[p->pos + 1] == '"') {
        size_t end;
        int rc = scan_literal_end(p, &end);
        return rc != 0 ? rc : literal(p, end);
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return word(p);
    if (c == '"' || c == '-' || c == '@' || (c >= '0' && c <= '9')) {
        size_t end;
        int rc = scan_literal_end(p, &end);
        return rc != 0 ? rc : literal(p, end);
    }
    return syntax_error(p, "a pattern");
}

static int alternatives(parser *p)
{
    size_t start = p->n_nodes;
    unsigned binders_before = p->n_binders;
    int rc = primary(p);
    if (rc != 0)
        return rc;
    skip_space(p);
    if (peek(p) != '|')
        return 0;
    if (emit(p, OP_ALT) == SIZE_MAX)
        return no_memory();
    /* Put the header in front of the first branch. */
    pattern_node header = p->nodes[p->n_nodes - 1];
    memmove(&p->nodes[start + 1], &p->nodes[start], (p->n_nodes - start - 1) * sizeof *p->nodes);
    p->nodes[start] = header;
    /* count cannot overflow: it is below the number of nodes, which emit keeps 32-bit. A branch
     * is a primary, never an ALT itself (there are no grouping parentheses), so ALTs never nest
     * directly and print without parentheses. */
    uint32_t count = 1;
    while (peek(p) == '|') {
        p->pos++;
        rc = primary(p);
        if (rc != 0)
            return rc;
        count++;
        skip_space(p);
    }
    if (p->n_binders > binders_before)
        return baton__error(BATON_EINVAL,
                            WHO ": offset %zu: binder '%s' inside an alternative (binders are "
                                "not allowed in alternatives)",
                            p->binder_pos[binders_before],
                            p->names + p->name_offset[binders_before]);
    p->nodes[start].arg = count;
    p->nodes[start].size = (uint32_t)(p->n_nodes - start);
    return 0;
}

int baton_pattern_parse(const char *text, size_t size, baton_pattern **out)
{
    if (out == NULL || (text == NULL && size != 0))
        return baton__error(BATON_EINVAL, WHO ": %s is NULL", out == NULL ? "out" : "text");
    *out = NULL;
    parser p;
    memset(&p, 0, sizeof p);
    p.text = text;
    p.size = size;
    int rc = alternatives(&p);
    if (rc == 0) {
        skip_space(&p);
        if (p.pos < p.size)
            rc = syntax_error(&p, "the end of the pattern");
    }
    baton_pattern *pattern = NULL;
    if (rc == 0) {
        pattern = baton__malloc(sizeof *pattern);
        if (pattern == NULL)
            rc = no_memory();
    }
    if (rc != 0) {
        baton__free(p.nodes);
        baton__free(p.lits);
        baton__free(p.names);
        return rc;
    }
    pattern->nodes = p.nodes;
    pattern->lits = p.lits;
    pattern->names = p.names;
    pattern->n_nodes = (uint32_t)p.n_nodes;
    pattern->n_binders = p.n_binders;
    memcpy(pattern->name_offset, p.name_offset, sizeof p.name_offset);
    *out = pattern;
    return 0;
}

void baton_pattern_destroy(baton_pattern *pattern)
{
    if (pattern == NULL)
        return;
    baton__free(pattern->nodes);
    baton__free(pattern->lits);
    baton__free(pattern->names);
    baton__free(pattern);
}

unsigned baton_pattern_binders(const baton_pattern *pattern)
{
    return pattern == NULL ? 0 : pattern->n_binders;
}

const char *baton_pattern_binder_name(const baton_pattern *pattern, unsigned index)
{
    if (pattern == NULL || index >= pattern->n_binders)
        return NULL;
    return pattern->names + pattern->name_offset[index];
}

/* ---- matching ---- */

/*
 * Whether the value at v matches the subtree at n; on a match *next is where the value ends.
 * end bounds the whole value: a literal longer than what is left cannot be equal, and stopping
 * there keeps memcmp inside the caller's block.
 */
static bool match_node(const baton_pattern *pattern, const pattern_node *n, const uint8_t *v,
                       const uint8_t *end, baton_value_view *bindings, const uint8_t **next)
{
    switch (n->op) {
    case OP_ANY:
        *next = v + baton__value_skip(v);
        return true;
    case OP_BIND: {
        size_t size = baton__value_skip(v);
        if (bindings != NULL) {
            bindings[n->arg].data = v;
            bindings[n->arg].size = size;
        }
        *next = v + size;
        return true;
    }
    case OP_LIT:
        if ((size_t)(end - v) < n->len || memcmp(v, pattern->lits + n->arg, n->len) != 0)
            return false;
        *next = v + n->len; /* prefix-free: equal bytes are the whole value */
        return true;
    case OP_TYPE:
        if (baton__kind_of_tag(v[0]) != (baton_value_kind)n->kind)
            return false;
        *next = v + baton__value_skip(v);
        return true;
    case OP_TUPLE:
    case OP_LIST: {
        if (v[0] != (n->op == OP_TUPLE ? BATON__TAG_TUPLE : BATON__TAG_LIST))
            return false;
        uint64_t count;
        const uint8_t *at = v + 1 + baton__varint_read_trusted(v + 1, &count);
        if (count != n->arg)
            return false;
        const pattern_node *child = n + 1;
        for (uint32_t i = 0; i < n->arg; i++) {
            if (!match_node(pattern, child, at, end, bindings, &at))
                return false;
            child += child->size;
        }
        *next = at;
        return true;
    }
    default: { /* OP_ALT */
        const pattern_node *child = n + 1;
        for (uint32_t i = 0; i < n->arg; i++) {
            if (match_node(pattern, child, v, end, bindings, next))
                return true;
            child += child->size;
        }
        return false;
    }
    }
}

bool baton_pattern_match(const baton_pattern *pattern, baton_value_view value,
                         baton_value_view *bindings)
{
    if (pattern == NULL || value.data == NULL || value.size == 0)
        return false;
    const uint8_t *end = value.data + value.size, *next = NULL;
    return match_node(pattern, pattern->nodes, value.data, end, bindings, &next) && next == end;
}

/* ---- printing ---- */

typedef struct printer {
    char *buf;
    size_t capacity; /* of buf, the NUL included */
    size_t length;   /* of the whole text, written or not */
} printer;

/* Appends n bytes as far as they fit, always leaving room for the terminator. */
static void put(printer *pr, const char *s, size_t n)
{
    size_t limit = pr->capacity != 0 ? pr->capacity - 1 : 0;
    if (pr->length < limit) {
        size_t room = limit - pr->length;
        memcpy(pr->buf + pr->length, s, n < room ? n : room);
    }
    pr->length += n;
}

static void print_node(const baton_pattern *pattern, const pattern_node *n, printer *pr)
{
    switch (n->op) {
    case OP_ANY:
        put(pr, "_", 1);
        return;
    case OP_BIND: {
        const char *name = pattern->names + pattern->name_offset[n->arg];
        put(pr, name, strlen(name));
        return;
    }
    case OP_TYPE:
        for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
            if (type_names[i].kind == (baton_value_kind)n->kind) {
                put(pr, type_names[i].name, strlen(type_names[i].name));
                return;
            }
        }
        return;
    case OP_LIT: {
        /* The value printer writes straight into what is left of buf, terminator included (the
         * next put overwrites its NUL; a truncated text stays a NUL-terminated prefix). */
        size_t room = pr->length < pr->capacity ? pr->capacity - pr->length : 0, length = 0;
        baton_value_view view = {pattern->lits + n->arg, n->len};
        (void)baton_value_print(view, room != 0 ? pr->buf + pr->length : NULL, room, &length);
        pr->length += length;
        return;
    }
    default: {
        const char *sep = n->op == OP_ALT ? " | " : ", ";
        if (n->op != OP_ALT)
            put(pr, n->op == OP_TUPLE ? "(" : "[", 1);
        const pattern_node *child = n + 1;
        for (uint32_t i = 0; i < n->arg; i++) {
            if (i != 0)
                put(pr, sep, strlen(sep));
            print_node(pattern, child, pr);
            child += child->size;
        }
        if (n->op == OP_TUPLE && n->arg == 1)
            put(pr, ",", 1);
        if (n->op != OP_ALT)
            put(pr, n->op == OP_TUPLE ? ")" : "]", 1);
        return;
    }
    }
}

int baton_pattern_print(const baton_pattern *pattern, char *buf, size_t capacity, size_t *length)
{
    if (pattern == NULL || length == NULL || (buf == NULL && capacity != 0))
        return baton__error(BATON_EINVAL, "baton_pattern_print: %s",
                            pattern == NULL  ? "pattern is NULL"
                            : length == NULL ? "length is NULL"
                                             : "buf is NULL with capacity > 0");
    printer pr = {buf, capacity, 0};
    print_node(pattern, pattern->nodes, &pr);
    *length = pr.length;
    if (capacity != 0)
        buf[pr.length < capacity ? pr.length : capacity - 1] = '\0';
    if (pr.length >= capacity)
        return baton__error(BATON_ERANGE,
                            "baton_pattern_print: the text takes %zu bytes, the buffer holds %zu",
                            pr.length + 1, capacity);
    return 0;
}
