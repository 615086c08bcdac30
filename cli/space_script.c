/*
 * space_script.c — the parser of `baton space` scripts and the expansion of consumer bodies
 * (the language is described in space_script.h).
 *
 * DESIGN. A line is cut into its parts by a scanner that knows only string literals and bracket
 * depth ("..." with backslash escapes; ( [ { against ) ] }), so that a ';', '!', '<' or '#'
 * inside a string or a nested tuple never splits a statement; the parts themselves are then read
 * by the library's value and pattern parsers, so the script accepts exactly the text syntax of
 * space.h. A body's binders are replaced at token level (identifiers outside strings) by the
 * canonical text of their values, and the result is parsed like any produce: at parse time with
 * every binder standing for nil, to catch errors before anything runs, and again when the
 * consumer fires.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "space_script.h"

/* ---- strings ---- */

/* Room for len more bytes and the NUL. */
static bool reserve(space_buf *buf, size_t len)
{
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 64;
        while (cap < buf->len + len + 1)
            cap *= 2;
        char *data = realloc(buf->data, cap);
        if (data == NULL)
            return false;
        buf->data = data;
        buf->cap = cap;
    }
    return true;
}

bool space_buf_append(space_buf *buf, const char *text, size_t len)
{
    if (!reserve(buf, len))
        return false;
    memcpy(buf->data + buf->len, text, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return true;
}

bool space_buf_puts(space_buf *buf, const char *text)
{
    return space_buf_append(buf, text, strlen(text));
}

/* Prints through one of the library's printers, growing the buffer until the text fits. */
bool space_buf_value(space_buf *buf, baton_value_view value)
{
    size_t length = 0;
    if (baton_value_print(value, NULL, 0, &length) != 0 && length == 0)
        return false;
    if (!reserve(buf, length))
        return false;
    if (baton_value_print(value, buf->data + buf->len, length + 1, &length) != 0)
        return false;
    buf->len += length;
    return true;
}

bool space_buf_pattern(space_buf *buf, const baton_pattern *pattern)
{
    size_t length = 0;
    if (baton_pattern_print(pattern, NULL, 0, &length) != 0 && length == 0)
        return false;
    if (!reserve(buf, length))
        return false;
    if (baton_pattern_print(pattern, buf->data + buf->len, length + 1, &length) != 0)
        return false;
    buf->len += length;
    return true;
}

void space_buf_free(space_buf *buf)
{
    free(buf->data);
    memset(buf, 0, sizeof *buf);
}

static void set_err(char *err, size_t err_size, const char *fmt, ...) CMDLINE_PRINTF(3, 4);
static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* ---- scanning ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* Trims blanks from both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_blank(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_blank((*s)[*n - 1]))
        (*n)--;
}

/* The index after the string literal that opens at s[i] ('"'); n when it is unterminated. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

/* The first occurrence of one of `chars` in s[from, n) at bracket depth 0 and outside strings;
 * n when there is none. */
static size_t find_top(const char *s, size_t n, size_t from, const char *chars)
{
    int depth = 0;
    for (size_t i = from; i < n;) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, n, i);
            continue;
        }
        if (depth == 0 && strchr(chars, c) != NULL)
            return i;
        if (c == '(' || c == '[' || c == '{')
            depth++;
        else if ((c == ')' || c == ']' || c == '}') && depth > 0)
            depth--;
        i++;
    }
    return n;
}

/* The index of the bracket closing the one at s[open]; n when it is not closed. */
static size_t find_close(const char *s, size_t n, size_t open)
{
    int depth = 0;
    for (size_t i = open; i < n;) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, n, i);
            continue;
        }
        if (c == '(' || c == '[' || c == '{')
            depth++;
        else if ((c == ')' || c == ']' || c == '}') && --depth == 0)
            return i;
        i++;
    }
    return n;
}

/* ---- produces ---- */

/* Parses a value, or reports it as `what` with the parser's reason. */
static int parse_value(const char *what, const char *s, size_t n, baton_value **out, char *err,
                       size_t err_size)
{
    int rc = baton_value_parse(s, n, out);
    if (rc != 0)
        set_err(err, err_size, "bad %s '%.*s': %s", what, (int)n, s, baton_last_error_message());
    return rc;
}

/*
 * The value of CHAN!(VALUE): the text between the parentheses as one value, or, when it holds
 * elements separated by commas, as the tuple of them, so that `@1!(1, 2)` sends (1, 2) and
 * `@1!("hi")` sends "hi" (the value parser refuses "(\"hi\")" rather than read it as "hi").
 */
static int parse_datum(const char *s, size_t n, baton_value **out, char *err, size_t err_size)
{
    if (n == 0) /* X!() sends the empty tuple */
        return parse_value("value", "()", 2, out, err, err_size);
    if (find_top(s, n, 0, ",") == n)
        return parse_value("value", s, n, out, err, err_size);
    char *tuple = malloc(n + 3);
    if (tuple == NULL) {
        set_err(err, err_size, "out of memory");
        return BATON_ENOMEM;
    }
    tuple[0] = '(';
    memcpy(tuple + 1, s, n);
    tuple[n + 1] = ')';
    int rc = baton_value_parse(tuple, n + 2, out);
    if (rc != 0)
        set_err(err, err_size, "bad value '%.*s' (read as the tuple (%.*s)): %s", (int)n, s, (int)n,
                s, baton_last_error_message());
    free(tuple);
    return rc;
}

/* Parses CHAN!(VALUE) or CHAN!!(VALUE) (s trimmed). */
static int parse_produce(const char *s, size_t n, space_produce *out, char *err, size_t err_size)
{
    size_t bang = find_top(s, n, 0, "!");
    size_t open, i;
    const char *chan = s;
    size_t chan_n = bang;
    int rc;

    memset(out, 0, sizeof *out);
    if (bang == n) {
        set_err(err, err_size,
                "expected CHAN!(VALUE), CHAN!!(VALUE) or for (PAT <- CHAN) { BODY }, found '%.*s'",
                (int)n, s);
        return BATON_EINVAL;
    }
    trim(&chan, &chan_n);
    if (chan_n == 0) {
        set_err(err, err_size, "no channel before '!' in '%.*s'", (int)n, s);
        return BATON_EINVAL;
    }
    i = bang + 1;
    if (i < n && s[i] == '!') {
        out->persistent = true;
        i++;
    }
    while (i < n && is_blank(s[i]))
        i++;
    open = i;
    if (open >= n || s[open] != '(') {
        set_err(err, err_size, "expected '(' after '%s' in '%.*s'", out->persistent ? "!!" : "!",
                (int)n, s);
        return BATON_EINVAL;
    }
    if (find_close(s, n, open) != n - 1) {
        set_err(err, err_size, "expected the produce '%.*s' to end with the ')' closing its value",
                (int)n, s);
        return BATON_EINVAL;
    }
    rc = parse_value("channel", chan, chan_n, &out->channel, err, err_size);
    if (rc == 0) {
        const char *v = s + open + 1;
        size_t v_n = n - open - 2;
        trim(&v, &v_n);
        rc = parse_datum(v, v_n, &out->datum, err, err_size);
    }
    if (rc != 0) {
        baton_value_destroy(out->channel);
        out->channel = NULL;
    }
    return rc;
}

/* ---- bodies ---- */

void space_body_free(space_body *body)
{
    if (body == NULL)
        return;
    for (size_t c = 0; c < body->n_channels; c++) {
        for (size_t j = 0; body->names != NULL && j < body->n_names[c]; j++)
            free(body->names[c][j]);
        if (body->names != NULL)
            free(body->names[c]);
    }
    free(body->names);
    free(body->n_names);
    free(body->text);
    free(body);
}

static space_body *body_alloc(size_t n_channels)
{
    space_body *body = calloc(1, sizeof *body);
    if (body == NULL)
        return NULL;
    body->n_channels = n_channels;
    body->n_names = calloc(n_channels ? n_channels : 1, sizeof *body->n_names);
    body->names = calloc(n_channels ? n_channels : 1, sizeof *body->names);
    if (body->n_names == NULL || body->names == NULL) {
        body->n_channels = 0;
        space_body_free(body);
        return NULL;
    }
    return body;
}

int space_body_encode(const space_body *body, baton_value **out)
{
    baton_value_builder *b;
    int rc = baton_value_builder_create(&b);
    if (rc != 0)
        return rc;
    rc = baton_value_begin_tuple(b);
    if (rc == 0)
        rc = baton_value_add_string(b, body->text, strlen(body->text));
    if (rc == 0)
        rc = baton_value_begin_list(b);
    for (size_t c = 0; rc == 0 && c < body->n_channels; c++) {
        rc = baton_value_begin_list(b);
        for (size_t j = 0; rc == 0 && j < body->n_names[c]; j++)
            rc = baton_value_add_string(b, body->names[c][j], strlen(body->names[c][j]));
        if (rc == 0)
            rc = baton_value_end(b);
    }
    if (rc == 0)
        rc = baton_value_end(b);
    if (rc == 0)
        rc = baton_value_end(b);
    if (rc == 0)
        rc = baton_value_finish(b, out);
    baton_value_builder_destroy(b);
    return rc;
}

static char *view_string(baton_value_view view)
{
    size_t size;
    const uint8_t *bytes = baton_view_bytes(view, &size);
    char *s = malloc(size + 1);
    if (s != NULL) {
        if (size > 0)
            memcpy(s, bytes, size);
        s[size] = '\0';
    }
    return s;
}

bool space_body_decode(baton_value_view value, space_body **out, char *err, size_t err_size)
{
    baton_value_view text, lists;
    space_body *body;

    if (baton_view_kind(value) != BATON_VALUE_TUPLE || baton_view_count(value) != 2 ||
        baton_view_kind(text = baton_view_element(value, 0)) != BATON_VALUE_STRING ||
        baton_view_kind(lists = baton_view_element(value, 1)) != BATON_VALUE_LIST) {
        set_err(err, err_size, "its body is not (\"TEXT\", [[binder names]...])");
        return false;
    }
    body = body_alloc(baton_view_count(lists));
    if (body == NULL || (body->text = view_string(text)) == NULL)
        goto nomem;
    for (size_t c = 0; c < body->n_channels; c++) {
        baton_value_view names = baton_view_element(lists, c);
        if (baton_view_kind(names) != BATON_VALUE_LIST) {
            set_err(err, err_size, "its body's binder names for channel %zu are not a list", c);
            space_body_free(body);
            return false;
        }
        body->names[c] = calloc(baton_view_count(names) + 1, sizeof *body->names[c]);
        if (body->names[c] == NULL)
            goto nomem;
        for (size_t j = 0; j < baton_view_count(names); j++) {
            baton_value_view name = baton_view_element(names, j);
            if (baton_view_kind(name) != BATON_VALUE_STRING) {
                set_err(err, err_size, "its body's binder name %zu of channel %zu is not a string",
                        j, c);
                space_body_free(body);
                return false;
            }
            if ((body->names[c][j] = view_string(name)) == NULL)
                goto nomem;
            body->n_names[c] = j + 1;
        }
    }
    *out = body;
    return true;
nomem:
    space_body_free(body);
    set_err(err, err_size, "out of memory");
    return false;
}

/* The text a binder name stands for: its bound value's text, or "nil" without a match (the
 * parse-time check). NULL when `name` is no binder of the body. */
static const char *binder_text(const space_body *body, const baton_match *match, const char *name,
                               size_t len, space_buf *scratch)
{
    for (size_t c = 0; c < body->n_channels; c++) {
        for (size_t j = 0; j < body->n_names[c]; j++) {
            if (strlen(body->names[c][j]) != len || memcmp(body->names[c][j], name, len) != 0)
                continue;
            if (match == NULL)
                return "nil";
            scratch->len = 0;
            if (!space_buf_value(scratch, match->bindings[c][j]))
                return NULL;
            return scratch->data;
        }
    }
    return NULL;
}

/* nil, true, false: the words a value's text may hold. */
static bool is_literal_word(const char *s, size_t n)
{
    return (n == 3 && memcmp(s, "nil", 3) == 0) || (n == 4 && memcmp(s, "true", 4) == 0) ||
           (n == 5 && memcmp(s, "false", 5) == 0);
}

/* Replaces the binder names in body->text by their values (outside strings, whole identifiers
 * only). Words other than binders are left for the value parser to judge, except `for`. */
static int substitute(const space_body *body, const baton_match *match, space_buf *out, char *err,
                      size_t err_size)
{
    const char *s = body->text;
    size_t n = strlen(s);
    space_buf scratch = {0};
    int rc = 0;

    out->len = 0;
    if (!space_buf_append(out, "", 0))
        return BATON_ENOMEM;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t start = i;
        if (s[i] == '"') {
            i = skip_string(s, n, i);
        } else if (is_ident_start(s[i]) && (start == 0 || !is_ident_char(s[start - 1]))) {
            while (i < n && is_ident_char(s[i]))
                i++;
            /* x"..." is a byte string, not the binder x. */
            if (!(i < n && s[i] == '"')) {
                const char *text = binder_text(body, match, s + start, i - start, &scratch);
                if (i - start == 3 && memcmp(s + start, "for", 3) == 0) {
                    set_err(err, err_size,
                            "a body may not contain `for` (nested consumers are not supported)");
                    rc = BATON_EINVAL;
                } else if (text == NULL && match == NULL &&
                           !is_literal_word(s + start, i - start)) {
                    set_err(err, err_size, "'%.*s' in the body is not a binder of this consumer",
                            (int)(i - start), s + start);
                    rc = BATON_EINVAL;
                } else if (text != NULL && !space_buf_puts(out, text)) {
                    rc = BATON_ENOMEM;
                }
                if (text != NULL)
                    continue;
            }
        } else {
            i++;
        }
        if (rc == 0 && !space_buf_append(out, s + start, i - start))
            rc = BATON_ENOMEM;
    }
    if (rc == BATON_ENOMEM)
        set_err(err, err_size, "out of memory");
    space_buf_free(&scratch);
    return rc;
}

int space_body_expand(const space_body *body, const baton_match *match, space_produce **out,
                      size_t *n_out, char *err, size_t err_size)
{
    space_buf text = {0};
    space_produce *produces = NULL;
    size_t count = 0, cap = 0;
    int rc = substitute(body, match, &text, err, err_size);

    for (size_t i = 0; rc == 0 && i < text.len;) {
        size_t end = find_top(text.data, text.len, i, ";");
        const char *stmt = text.data + i;
        size_t stmt_n = end - i;
        i = end + 1;
        trim(&stmt, &stmt_n);
        if (stmt_n == 0)
            continue;
        if (count == cap) {
            space_produce *grown = realloc(produces, (cap ? cap * 2 : 4) * sizeof *grown);
            if (grown == NULL) {
                set_err(err, err_size, "out of memory");
                rc = BATON_ENOMEM;
                break;
            }
            produces = grown;
            cap = cap ? cap * 2 : 4;
        }
        rc = parse_produce(stmt, stmt_n, &produces[count], err, err_size);
        if (rc == 0)
            count++;
    }
    space_buf_free(&text);
    if (rc != 0) {
        for (size_t k = 0; k < count; k++) {
            baton_value_destroy(produces[k].channel);
            baton_value_destroy(produces[k].datum);
        }
        free(produces);
        return rc;
    }
    *out = produces;
    *n_out = count;
    return 0;
}

/* ---- consumers ---- */

/* Parses `PAT <- CHAN` (with <=, <<-) into channel c of stmt. *arrow_flags gets the arrow's
 * flags; s is trimmed. */
static int parse_bind(const char *s, size_t n, space_stmt *stmt, size_t c, unsigned *arrow_flags,
                      char *err, size_t err_size)
{
    size_t lt = find_top(s, n, 0, "<");
    size_t after;
    const char *pat = s, *chan;
    size_t pat_n = lt, chan_n;
    int rc;

    if (lt + 1 < n && s[lt + 1] == '-') {
        *arrow_flags = 0;
        after = lt + 2;
    } else if (lt + 1 < n && s[lt + 1] == '=') {
        *arrow_flags = BATON_CONSUME_PERSISTENT;
        after = lt + 2;
    } else if (lt + 2 < n && s[lt + 1] == '<' && s[lt + 2] == '-') {
        *arrow_flags = BATON_CONSUME_PEEK;
        after = lt + 3;
    } else {
        set_err(err, err_size, "expected PAT <- CHAN (or <=, <<-), found '%.*s'", (int)n, s);
        return BATON_EINVAL;
    }
    trim(&pat, &pat_n);
    chan = s + after;
    chan_n = n - after;
    trim(&chan, &chan_n);
    if (pat_n == 0 || chan_n == 0) {
        set_err(err, err_size, "no %s in '%.*s'", pat_n == 0 ? "pattern" : "channel", (int)n, s);
        return BATON_EINVAL;
    }
    /* Braces group alternatives, as in Rholang (`{"a" | "b"}`); the pattern syntax has no
     * grouping and needs none (`|` binds tighter than `,`), so they are dropped. */
    char *pat_text = malloc(pat_n);
    if (pat_text == NULL) {
        set_err(err, err_size, "out of memory");
        return BATON_ENOMEM;
    }
    for (size_t i = 0; i < pat_n;) {
        size_t next = pat[i] == '"' ? skip_string(pat, pat_n, i) : i + 1;
        for (size_t k = i; k < next; k++)
            pat_text[k] = next == i + 1 && (pat[k] == '{' || pat[k] == '}') ? ' ' : pat[k];
        i = next;
    }
    rc = baton_pattern_parse(pat_text, pat_n, &stmt->patterns[c]);
    free(pat_text);
    if (rc != 0) {
        set_err(err, err_size, "bad pattern '%.*s': %s", (int)pat_n, pat,
                baton_last_error_message());
        return rc;
    }
    rc = parse_value("channel", chan, chan_n, &stmt->channels[c], err, err_size);
    for (size_t k = 0; rc == 0 && k < c; k++) {
        if (baton_view_equal(baton_value_as_view(stmt->channels[k]),
                             baton_value_as_view(stmt->channels[c]))) {
            set_err(err, err_size, "channel '%.*s' appears twice in one join", (int)chan_n, chan);
            rc = BATON_EINVAL;
        }
    }
    return rc;
}

/* The binder names of the patterns, checked to be distinct across the join. */
static int collect_names(space_stmt *stmt, char *err, size_t err_size)
{
    space_body *body = stmt->body;
    for (size_t c = 0; c < stmt->n_channels; c++) {
        unsigned n = baton_pattern_binders(stmt->patterns[c]);
        body->names[c] = calloc(n + 1, sizeof *body->names[c]);
        if (body->names[c] == NULL)
            goto nomem;
        for (unsigned j = 0; j < n; j++) {
            const char *name = baton_pattern_binder_name(stmt->patterns[c], j);
            for (size_t d = 0; d < c; d++) {
                for (size_t k = 0; k < body->n_names[d]; k++) {
                    if (strcmp(body->names[d][k], name) == 0) {
                        set_err(err, err_size, "binder '%s' appears in two patterns of this join",
                                name);
                        return BATON_EINVAL;
                    }
                }
            }
            if ((body->names[c][j] = strdup(name)) == NULL)
                goto nomem;
            body->n_names[c] = j + 1;
        }
    }
    return 0;
nomem:
    set_err(err, err_size, "out of memory");
    return BATON_ENOMEM;
}

/* The body's statements, trimmed and joined with "; " (the text printed back). */
static int normalize_body(const char *s, size_t n, space_body *body, char *err, size_t err_size)
{
    space_buf text = {0};
    bool ok = space_buf_append(&text, "", 0);
    for (size_t i = 0; ok && i < n;) {
        size_t end = find_top(s, n, i, ";");
        const char *stmt = s + i;
        size_t stmt_n = end - i;
        i = end + 1;
        trim(&stmt, &stmt_n);
        if (stmt_n == 0)
            continue;
        ok =
            (text.len == 0 || space_buf_puts(&text, "; ")) && space_buf_append(&text, stmt, stmt_n);
    }
    if (!ok) {
        space_buf_free(&text);
        set_err(err, err_size, "out of memory");
        return BATON_ENOMEM;
    }
    body->text = text.data;
    return 0;
}

/* Parses `for (BINDS) { BODY }`; s is trimmed and starts with the word `for`. */
static int parse_consume(const char *s, size_t n, space_stmt *stmt, char *err, size_t err_size)
{
    size_t open = 3, close, brace, i, n_binds = 0;
    unsigned flags = 0;
    int rc;

    while (open < n && is_blank(s[open]))
        open++;
    if (open >= n || s[open] != '(') {
        set_err(err, err_size, "expected '(' after `for`");
        return BATON_EINVAL;
    }
    close = find_close(s, n, open);
    if (close == n) {
        set_err(err, err_size, "the '(' after `for` is not closed");
        return BATON_EINVAL;
    }
    brace = close + 1;
    while (brace < n && is_blank(s[brace]))
        brace++;
    if (brace >= n || s[brace] != '{') {
        set_err(err, err_size, "expected '{' after `for (...)`");
        return BATON_EINVAL;
    }
    if (find_close(s, n, brace) != n - 1) {
        set_err(err, err_size, "expected the consumer to end with the '}' closing its body");
        return BATON_EINVAL;
    }
    for (i = open + 1; i <= close; i = find_top(s, close, i, ";") + 1)
        n_binds++;
    stmt->consume = true;
    stmt->channels = calloc(n_binds, sizeof *stmt->channels);
    stmt->patterns = calloc(n_binds, sizeof *stmt->patterns);
    stmt->body = body_alloc(n_binds);
    if (stmt->channels == NULL || stmt->patterns == NULL || stmt->body == NULL) {
        set_err(err, err_size, "out of memory");
        return BATON_ENOMEM;
    }
    for (i = open + 1; i <= close; i = find_top(s, close, i, ";") + 1) {
        size_t end = find_top(s, close, i, ";");
        const char *bind = s + i;
        size_t bind_n = end - i;
        unsigned arrow_flags;
        trim(&bind, &bind_n);
        if (bind_n == 0) {
            set_err(err, err_size, "an empty binding in `for (...)`");
            return BATON_EINVAL;
        }
        rc = parse_bind(bind, bind_n, stmt, stmt->n_channels, &arrow_flags, err, err_size);
        stmt->n_channels++;
        if (rc != 0)
            return rc;
        /* The flags belong to the whole consumer, not to one of its channels. */
        if (stmt->n_channels > 1 && arrow_flags != flags) {
            set_err(err, err_size, "a join mixes arrows (<-, <=, <<-): they must all be the same");
            return BATON_EINVAL;
        }
        flags = arrow_flags;
    }
    stmt->flags = flags;
    rc = collect_names(stmt, err, err_size);
    if (rc == 0)
        rc = normalize_body(s + brace + 1, n - brace - 2, stmt->body, err, err_size);
    if (rc == 0) {
        /* Every binder standing for nil: the body must be produces that parse. */
        space_produce *produces = NULL;
        size_t count = 0;
        rc = space_body_expand(stmt->body, NULL, &produces, &count, err, err_size);
        for (size_t k = 0; k < count; k++) {
            baton_value_destroy(produces[k].channel);
            baton_value_destroy(produces[k].datum);
        }
        free(produces);
    }
    return rc;
}

/* ---- scripts ---- */

static void stmt_free(space_stmt *stmt)
{
    baton_value_destroy(stmt->produce.channel);
    baton_value_destroy(stmt->produce.datum);
    for (size_t c = 0; c < stmt->n_channels; c++) {
        baton_value_destroy(stmt->channels[c]);
        baton_pattern_destroy(stmt->patterns[c]);
    }
    free(stmt->channels);
    free(stmt->patterns);
}

/* The line [s, s + n) without its comment: '#' outside a string starts one. */
static size_t strip_comment(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (s[i] == '"')
            i = skip_string(s, n, i);
        else if (s[i] == '#')
            return i;
        else
            i++;
    }
    return n;
}

int space_script_parse(const char *text, size_t size, space_script *out, unsigned *err_line,
                       char *err, size_t err_size)
{
    size_t cap = 0;
    unsigned line = 0;
    int rc = 0;

    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < size && rc == 0;) {
        const char *eol = memchr(text + i, '\n', size - i);
        size_t end = eol != NULL ? (size_t)(eol - text) : size;
        const char *s = text + i;
        size_t n = strip_comment(s, end - i);
        space_stmt *stmt;

        i = end + 1;
        line++;
        trim(&s, &n);
        if (n == 0)
            continue;
        if (out->n_stmts == cap) {
            space_stmt *grown = realloc(out->stmts, (cap ? cap * 2 : 16) * sizeof *grown);
            if (grown == NULL) {
                set_err(err, err_size, "out of memory");
                rc = BATON_ENOMEM;
                break;
            }
            out->stmts = grown;
            cap = cap ? cap * 2 : 16;
        }
        stmt = &out->stmts[out->n_stmts++];
        memset(stmt, 0, sizeof *stmt);
        stmt->line = line;
        if (n >= 3 && memcmp(s, "for", 3) == 0 && (n == 3 || !is_ident_char(s[3])))
            rc = parse_consume(s, n, stmt, err, err_size);
        else
            rc = parse_produce(s, n, &stmt->produce, err, err_size);
    }
    if (rc != 0) {
        *err_line = line;
        for (size_t k = 0; k < out->n_stmts; k++)
            space_body_free(out->stmts[k].body);
        space_script_free(out);
    }
    return rc;
}

void space_script_free(space_script *script)
{
    for (size_t k = 0; k < script->n_stmts; k++)
        stmt_free(&script->stmts[k]);
    free(script->stmts);
    memset(script, 0, sizeof *script);
}
