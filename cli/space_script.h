/*
 * space_script.h — the script language of `baton space` (space.c runs it): statements, the
 * parser, and the consumer bodies that are expanded when a consumer fires.
 *
 *   CHAN!(VALUE)   CHAN!!(VALUE)                          produce, persistent produce
 *   for (PAT <- CHAN; PAT2 <- CHAN2) { BODY }             consume (a join with several channels)
 *   for (PAT <= CHAN) { BODY }   for (PAT <<- CHAN) { BODY }   persistent, peek
 *
 * A body is produces separated by ';' whose text names the binders of the patterns; when the
 * consumer fires, each binder's name is replaced by the printed value bound to it and the
 * statements are parsed and produced. The body travels with the consumer as a value
 * ("TEXT", [["a", "b"], ["c"]]) (the binder names per channel), so that a durable space can give
 * a recovered consumer its continuation back from the log alone.
 */
#ifndef BATON_CLI_SPACE_SCRIPT_H
#define BATON_CLI_SPACE_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/space.h"

/* A growable NUL-terminated string. */
typedef struct space_buf {
    char *data;
    size_t len;
    size_t cap;
} space_buf;

bool space_buf_append(space_buf *buf, const char *text, size_t len);
bool space_buf_puts(space_buf *buf, const char *text);
/* Appends the canonical text of a value or of a pattern. */
bool space_buf_value(space_buf *buf, baton_value_view value);
bool space_buf_pattern(space_buf *buf, const baton_pattern *pattern);
void space_buf_free(space_buf *buf);

/* A consumer's body: its text ("S1; S2", statements trimmed) and the binder names of each of its
 * channels, in the order of the patterns' binders (what baton_match.bindings holds). */
typedef struct space_body {
    char *text;
    size_t n_channels;
    size_t *n_names; /* per channel */
    char ***names;   /* names[channel][binder] */
} space_body;

void space_body_free(space_body *body);
/* The body as the value kept with the consumer: ("TEXT", [["a", "b"], ["c"]]). */
int space_body_encode(const space_body *body, baton_value **out);
/* The reverse; false (and a reason in err) when the value does not have that shape. */
bool space_body_decode(baton_value_view value, space_body **out, char *err, size_t err_size);

/* One produce, parsed. */
typedef struct space_produce {
    baton_value *channel;
    baton_value *datum;
    bool persistent;
} space_produce;

/*
 * Expands a firing consumer's body: substitutes the bound values for the binder names and parses
 * the statements into produces (*out, *n_out; free each with baton_value_destroy and the array
 * with free). Returns 0, or an error code after writing the reason into err.
 */
int space_body_expand(const space_body *body, const baton_match *match, space_produce **out,
                      size_t *n_out, char *err, size_t err_size);

/* A statement of a script. */
typedef struct space_stmt {
    unsigned line;
    bool consume;
    space_produce produce; /* !consume */
    /* consume: */
    size_t n_channels;
    baton_value **channels;
    baton_pattern **patterns;
    unsigned flags;
    space_body *body;
} space_stmt;

typedef struct space_script {
    space_stmt *stmts;
    size_t n_stmts;
} space_script;

/*
 * Parses a whole script (text, size bytes). Returns 0, or an error code after writing
 * "LINE: what was wrong" into err (*err_line is the line); a script with an error runs nothing.
 */
int space_script_parse(const char *text, size_t size, space_script *out, unsigned *err_line,
                       char *err, size_t err_size);
/* Frees the statements, their values and their patterns (call it after the space is gone: the
 * space borrows the patterns) but not the bodies, which the caller takes over (may be NULL). */
void space_script_free(space_script *script);

#endif /* BATON_CLI_SPACE_SCRIPT_H */
