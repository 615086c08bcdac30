/*
 * space.c — `baton space`: runs a script (space_script.h) on a tuplespace, in memory or kept in
 * a directory, waits until nothing more happens and prints what the space holds, as a script
 * that rebuilds it.
 *
 * Continuations. A consumer of the script is registered with baton_space_consume_body, its body
 * value ("TEXT", [[binder names per channel]]) kept with it, and the continuation is space_fire
 * with that body decoded (space_body) as its context; with --dir the log keeps the body, and the
 * revive hook decodes it again when a later run opens the directory, so consumers left waiting by
 * one run fire in the next. Bodies hold only produces, so every consume comes from the main
 * thread, before the space is quiesced.
 *
 * A recovered consumer may fire while baton_space_open is still running (the log's tail left it
 * unsettled), before this file knows the space's pointer: its produces then wait in a list that
 * is flushed as soon as open returns.
 *
 * Output: the data sorted by their channel's text, each channel's oldest first, then the waiting
 * consumers in the order they registered (which one wins a datum depends on it), so that the
 * output is deterministic and, fed back as a script to a fresh space, rebuilds the same space.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "space_script.h"

typedef struct space_options {
    const char *dir;    /* NULL: a space in memory */
    const char *script; /* NULL: none; "-": stdin */
    baton_durability durability;
    bool durability_given;
    unsigned workers;
} space_options;

/* A produce of a consumer that fired before the space's pointer was known. */
typedef struct space_pending {
    space_produce produce;
    struct space_pending *next;
} space_pending;

/* What the continuations share: the space, the bodies they run, the deferred produces. */
typedef struct space_run {
    pthread_mutex_t lock;
    baton_space *space;        /* NULL until create/open returned; under lock */
    space_pending *pending;    /* under lock */
    struct space_cont **conts; /* every continuation's context, freed at the end */
    size_t n_conts;
    size_t cap_conts;
} space_run;

/* A continuation's context: the body (owned) and the run it belongs to. */
typedef struct space_cont {
    space_run *run;
    space_body *body;
} space_cont;

void cli_space_usage(FILE *out)
{
    fputs("usage: baton space [--dir DIR] [--durability async|sync] [--workers N] [SCRIPT | -]\n"
          "\n"
          "Runs SCRIPT (a file, or stdin for -) on a tuplespace, waits until nothing more\n"
          "happens, and prints what the space holds, one statement a line, as a script that\n"
          "rebuilds it. One statement a line; '#' starts a comment:\n"
          "\n"
          "  CHAN!(VALUE)                      put VALUE on channel CHAN\n"
          "  CHAN!!(VALUE)                     put it there for good (a persistent datum)\n"
          "  for (PAT <- CHAN) { BODY }        take a datum matching PAT, then run BODY\n"
          "  for (P1 <- C1; P2 <- C2) { BODY } a join: one matching datum from each channel\n"
          "  for (PAT <= CHAN) { BODY }        a persistent consumer: fires on every match\n"
          "  for (PAT <<- CHAN) { BODY }       a peek: reads the datum without taking it\n"
          "\n"
          "Values and patterns use the text syntax of baton/space.h (@1, \"inbox\", (1, \"a\"),\n"
          "_, x, Int, \"a\" | \"b\"). `@1!(1, 2)` sends the tuple (1, 2). BODY is produces\n"
          "separated by ';' in which the patterns' binders stand for the values they bound:\n"
          "  for ((a, b) <- @1) { @2!((b, a)); @3!(a) }\n"
          "\n"
          "options:\n"
          "  --dir DIR          keep the space in DIR (created when missing): a later run goes\n"
          "                     on from what this one left, waiting consumers included; without\n"
          "                     SCRIPT, prints what DIR holds\n"
          "  --durability MODE  with --dir: async (default; no call waits for the disk) or sync\n"
          "                     (each of the script's statements is on disk when it returns)\n"
          "  --workers N        threads that run the consumers' bodies (default: one per CPU)\n"
          "\n"
          "Exit status: 0 done, 1 a library call failed, 2 a usage or script error.\n",
          out);
}

/* Returns 0 to run, 1 when help was printed, -1 on a usage error (after printing why). */
static int parse_options(int argc, char **argv, space_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->durability = BATON_DURABILITY_ASYNC;
    for (int i = 1; i < argc;) {
        const char *value = NULL;
        unsigned long n;
        int m;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            cli_space_usage(stdout);
            return 1;
        }
        if ((m = cmdline_option_value(argc, argv, &i, "--dir", &value)) != 0) {
            if (m < 0)
                return -1;
            opts->dir = value;
        } else if ((m = cmdline_option_value(argc, argv, &i, "--durability", &value)) != 0) {
            if (m < 0)
                return -1;
            if (strcmp(value, "async") == 0) {
                opts->durability = BATON_DURABILITY_ASYNC;
            } else if (strcmp(value, "sync") == 0) {
                opts->durability = BATON_DURABILITY_SYNC;
            } else {
                cmdline_errorf("space: --durability: expected async or sync, got '%s'", value);
                return -1;
            }
            opts->durability_given = true;
        } else if ((m = cmdline_option_value(argc, argv, &i, "--workers", &value)) != 0) {
            if (m < 0 || !cmdline_parse_unsigned("--workers", value, 1, BATON_POOL_MAX_WORKERS, &n))
                return -1;
            opts->workers = (unsigned)n;
        } else if (argv[i][0] == '-' && strcmp(argv[i], "-") != 0) {
            cmdline_errorf("space: unknown option '%s'", argv[i]);
            return -1;
        } else if (opts->script != NULL) {
            cmdline_errorf("space: one script only, got '%s' and '%s'", opts->script, argv[i]);
            return -1;
        } else {
            opts->script = argv[i++];
        }
    }
    if (opts->script == NULL && opts->dir == NULL) {
        cmdline_errorf("space: no script (give a file, or - for stdin; see `baton help space`)");
        return -1;
    }
    if (opts->durability_given && opts->dir == NULL) {
        cmdline_errorf("space: --durability needs --dir (a space in memory keeps nothing)");
        return -1;
    }
    return 0;
}

/* Reads the whole script into *out (NUL-terminated). */
static int read_script(const char *path, char **out, size_t *out_size)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    space_buf text = {0};
    char chunk[4096];
    size_t got;
    bool ok = true;

    if (f == NULL) {
        cmdline_errorf("space: cannot open script '%s': %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    while (ok && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        ok = space_buf_append(&text, chunk, got);
    ok = ok && space_buf_append(&text, "", 0);
    if (ferror(f)) {
        cmdline_errorf("space: cannot read script '%s'", path);
        ok = false;
    } else if (!ok) {
        cmdline_errorf("space: out of memory reading script '%s'", path);
    }
    if (f != stdin)
        fclose(f);
    if (!ok) {
        space_buf_free(&text);
        return CLI_EXIT_FAIL;
    }
    *out = text.data;
    *out_size = text.len;
    return CLI_EXIT_OK;
}

/* ---- continuations ---- */

static void produce_free(space_produce *produce)
{
    baton_value_destroy(produce->channel);
    baton_value_destroy(produce->datum);
}

static int run_produce(baton_space *space, const space_produce *produce)
{
    return baton_space_produce(space, baton_value_as_view(produce->channel),
                               baton_value_as_view(produce->datum), produce->persistent);
}

/* A body's produces, from a continuation: now, or after open returned (see the top). */
static int space_fire(void *ctx, const baton_match *match)
{
    space_cont *cont = ctx;
    space_run *run = cont->run;
    space_produce *produces = NULL;
    size_t n = 0;
    char err[512];
    int rc = space_body_expand(cont->body, match, &produces, &n, err, sizeof err);

    if (rc != 0) {
        cmdline_errorf("space: a consumer's body { %s } failed: %s", cont->body->text, err);
        return rc;
    }
    for (size_t k = 0; k < n; k++) {
        baton_space *space;
        pthread_mutex_lock(&run->lock);
        space = run->space;
        if (space == NULL) {
            space_pending *p = malloc(sizeof *p);
            if (p == NULL) {
                rc = rc ? rc : BATON_ENOMEM;
                produce_free(&produces[k]);
            } else {
                p->produce = produces[k];
                p->next = run->pending;
                run->pending = p;
            }
        }
        pthread_mutex_unlock(&run->lock);
        if (space != NULL) {
            int prc = run_produce(space, &produces[k]);
            if (prc != 0 && rc == 0)
                rc = prc;
            produce_free(&produces[k]);
        }
    }
    free(produces);
    return rc;
}

/* A context for body, kept (with the body) until the end of the run. */
static space_cont *run_adopt(space_run *run, space_body *body)
{
    space_cont *cont = malloc(sizeof *cont);
    if (cont == NULL)
        return NULL;
    cont->run = run;
    cont->body = body;
    pthread_mutex_lock(&run->lock);
    if (run->n_conts == run->cap_conts) {
        size_t cap = run->cap_conts ? run->cap_conts * 2 : 16;
        space_cont **grown = realloc(run->conts, cap * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&run->lock);
            free(cont);
            return NULL;
        }
        run->conts = grown;
        run->cap_conts = cap;
    }
    run->conts[run->n_conts++] = cont;
    pthread_mutex_unlock(&run->lock);
    return cont;
}

static int space_revive(void *revive_ctx, uint64_t consumer_id, baton_value_view body_value,
                        baton_continuation_fn *fn, void **ctx)
{
    space_run *run = revive_ctx;
    space_body *body;
    space_cont *cont;
    char err[256];

    if (!space_body_decode(body_value, &body, err, sizeof err)) {
        cmdline_errorf("space: consumer %" PRIu64 " in the log was not made by `baton space`: %s",
                       consumer_id, err);
        return BATON_EINVAL;
    }
    cont = run_adopt(run, body);
    if (cont == NULL) {
        space_body_free(body);
        return BATON_ENOMEM;
    }
    *fn = space_fire;
    *ctx = cont;
    return 0;
}

/* Makes the space known to the continuations and runs the produces they deferred. */
static int run_publish(space_run *run, baton_space *space)
{
    space_pending *p, *reversed = NULL;
    int rc = 0;

    pthread_mutex_lock(&run->lock);
    run->space = space;
    p = run->pending;
    run->pending = NULL;
    pthread_mutex_unlock(&run->lock);
    /* The list is newest first; run them in the order they were made. */
    while (p != NULL) {
        space_pending *next = p->next;
        p->next = reversed;
        reversed = p;
        p = next;
    }
    while (reversed != NULL) {
        space_pending *next = reversed->next;
        int prc = rc == 0 ? run_produce(space, &reversed->produce) : 0;
        if (prc != 0) {
            cmdline_report_error(prc, "space: a recovered consumer's produce");
            rc = prc;
        }
        produce_free(&reversed->produce);
        free(reversed);
        reversed = next;
    }
    return rc;
}

static void run_free(space_run *run)
{
    for (size_t k = 0; k < run->n_conts; k++) {
        space_body_free(run->conts[k]->body);
        free(run->conts[k]);
    }
    free(run->conts);
    while (run->pending != NULL) {
        space_pending *next = run->pending->next;
        produce_free(&run->pending->produce);
        free(run->pending);
        run->pending = next;
    }
    pthread_mutex_destroy(&run->lock);
}

/* ---- printing ---- */

/* One line of the output and what it sorts by. */
typedef struct space_line {
    char *channel; /* data: the channel's text */
    size_t seq;    /* data: the visit's order (oldest first within a channel) */
    uint64_t id;   /* consumers: the id (registration order) */
    char *text;
} space_line;

typedef struct space_listing {
    space_line *lines;
    size_t n;
    size_t cap;
    space_buf scratch;
} space_listing;

static int listing_add(space_listing *listing, space_line line)
{
    if (listing->n == listing->cap) {
        size_t cap = listing->cap ? listing->cap * 2 : 32;
        space_line *grown = realloc(listing->lines, cap * sizeof *grown);
        if (grown == NULL)
            return BATON_ENOMEM;
        listing->lines = grown;
        listing->cap = cap;
    }
    listing->lines[listing->n++] = line;
    return 0;
}

static void listing_free(space_listing *listing)
{
    for (size_t k = 0; k < listing->n; k++) {
        free(listing->lines[k].channel);
        free(listing->lines[k].text);
    }
    free(listing->lines);
    space_buf_free(&listing->scratch);
}

static int on_datum(void *ctx, const baton_space_datum_info *datum)
{
    space_listing *listing = ctx;
    space_buf text = {0};
    space_line line = {0};
    bool ok;

    listing->scratch.len = 0;
    ok = space_buf_value(&listing->scratch, datum->channel) &&
         (line.channel = strdup(listing->scratch.data)) != NULL &&
         space_buf_puts(&text, line.channel) &&
         space_buf_puts(&text, datum->persistent ? "!!(" : "!(") &&
         space_buf_value(&text, datum->datum) && space_buf_puts(&text, ")");
    line.seq = listing->n;
    line.text = text.data;
    if (!ok || listing_add(listing, line) != 0) {
        free(line.channel);
        space_buf_free(&text);
        return BATON_ENOMEM;
    }
    return 0;
}

static int on_consumer(void *ctx, const baton_space_consumer_info *consumer)
{
    space_listing *listing = ctx;
    const char *arrow = (consumer->flags & BATON_CONSUME_PERSISTENT) ? " <= "
                        : (consumer->flags & BATON_CONSUME_PEEK)     ? " <<- "
                                                                     : " <- ";
    space_buf text = {0};
    space_line line = {0};
    space_body *body;
    char err[256];
    bool ok;

    if (!space_body_decode(consumer->body, &body, err, sizeof err)) {
        cmdline_errorf("space: consumer %" PRIu64 " was not made by `baton space`: %s",
                       consumer->id, err);
        return BATON_EINVAL;
    }
    ok = space_buf_puts(&text, "for (");
    for (size_t c = 0; ok && c < consumer->n_channels; c++) {
        ok = (c == 0 || space_buf_puts(&text, "; ")) &&
             space_buf_pattern(&text, consumer->patterns[c]) && space_buf_puts(&text, arrow) &&
             space_buf_value(&text, consumer->channels[c]);
    }
    ok = ok && space_buf_puts(&text, ") { ") && space_buf_puts(&text, body->text) &&
         space_buf_puts(&text, body->text[0] != '\0' ? " }" : "}");
    space_body_free(body);
    line.id = consumer->id;
    line.text = text.data;
    if (!ok || listing_add(listing, line) != 0) {
        space_buf_free(&text);
        return BATON_ENOMEM;
    }
    return 0;
}

static int compare_data(const void *a, const void *b)
{
    const space_line *x = a, *y = b;
    int c = strcmp(x->channel, y->channel);
    if (c != 0)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int compare_consumers(const void *a, const void *b)
{
    const space_line *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Prints the space: data sorted by channel text, then consumers by registration. */
static int print_space(baton_space *space)
{
    space_listing data = {0}, consumers = {0};
    int rc = baton_space_visit(space, on_datum, NULL, &data);
    if (rc == 0)
        rc = baton_space_visit(space, NULL, on_consumer, &consumers);
    if (rc != 0) {
        cmdline_report_error(rc, "space: reading the space");
    } else {
        /* qsort wants a non-NULL array even for no elements. */
        if (data.n > 0)
            qsort(data.lines, data.n, sizeof *data.lines, compare_data);
        if (consumers.n > 0)
            qsort(consumers.lines, consumers.n, sizeof *consumers.lines, compare_consumers);
        for (size_t k = 0; k < data.n; k++)
            puts(data.lines[k].text);
        for (size_t k = 0; k < consumers.n; k++)
            puts(consumers.lines[k].text);
    }
    listing_free(&data);
    listing_free(&consumers);
    return rc;
}

/* ---- running ---- */

/* Runs one statement; reports a failure with the statement's line. */
static int run_stmt(space_run *run, baton_space *space, space_stmt *stmt, const char *name)
{
    char what[256];
    baton_value *body = NULL;
    baton_value_view *channels = NULL;
    space_cont *cont;
    int rc;

    if (!stmt->consume) {
        rc = run_produce(space, &stmt->produce);
        snprintf(what, sizeof what, "space: %s:%u: produce", name, stmt->line);
    } else {
        snprintf(what, sizeof what, "space: %s:%u: consume", name, stmt->line);
        channels = calloc(stmt->n_channels, sizeof *channels);
        rc = channels == NULL ? BATON_ENOMEM : space_body_encode(stmt->body, &body);
        cont = rc == 0 ? run_adopt(run, stmt->body) : NULL;
        if (rc == 0 && cont == NULL)
            rc = BATON_ENOMEM;
        if (rc == 0) {
            stmt->body = NULL; /* the run owns it now */
            for (size_t c = 0; c < stmt->n_channels; c++)
                channels[c] = baton_value_as_view(stmt->channels[c]);
            rc = baton_space_consume_body(space, channels, stmt->patterns, stmt->n_channels,
                                          space_fire, cont, stmt->flags, baton_value_as_view(body),
                                          NULL);
        }
        baton_value_destroy(body);
        free(channels);
    }
    if (rc != 0)
        cmdline_report_error(rc, what);
    return rc;
}

static int make_pool(unsigned workers, baton_pool **out)
{
    baton_pool_config config;
    int rc;

    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.n_workers = workers;
    config.name = "space";
    rc = baton_pool_create(&config, out);
    if (rc != 0)
        cmdline_report_error(rc, "space: creating the pool");
    return rc;
}

/* Runs the parsed script on a new or opened space and prints the result. */
static int run_script(const space_options *opts, space_script *script, const char *name)
{
    space_run run;
    baton_space_config config;
    baton_space *space = NULL;
    baton_pool *pool = NULL;
    int rc;

    memset(&run, 0, sizeof run);
    pthread_mutex_init(&run.lock, NULL);
    if (make_pool(opts->workers, &pool) != 0) {
        run_free(&run);
        return CLI_EXIT_FAIL;
    }
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.pool = pool;
    config.durability = opts->durability;
    config.revive = space_revive;
    config.revive_ctx = &run;
    if (opts->dir != NULL) {
        rc = baton_space_open(&config, opts->dir, &space);
        if (rc != 0) {
            char what[512];
            snprintf(what, sizeof what, "space: opening the space in '%s'", opts->dir);
            cmdline_report_error(rc, what);
        }
    } else {
        rc = baton_space_create(&config, &space);
        if (rc != 0)
            cmdline_report_error(rc, "space: creating the space");
    }
    if (rc == 0)
        rc = run_publish(&run, space);
    for (size_t k = 0; rc == 0 && k < script->n_stmts; k++)
        rc = run_stmt(&run, space, &script->stmts[k], name);
    if (space != NULL) {
        /* Always quiesce: the space may be destroyed only with nothing in flight. */
        int qrc = baton_space_quiesce(space);
        if (qrc != 0 && rc == 0) {
            cmdline_report_error(qrc, "space: a consumer's body failed");
            rc = qrc;
        }
    }
    if (rc == 0)
        rc = print_space(space);
    if (rc == 0 && fflush(stdout) != 0) {
        cmdline_errorf("space: cannot write the output: %s", strerror(errno));
        rc = BATON_EIO;
    }
    if (rc == 0 && (rc = baton_space_sync(space)) != 0)
        cmdline_report_error(rc, "space: syncing the log");
    baton_space_destroy(space);
    cmdline_pool_destroy(pool, &rc);
    run_free(&run);
    return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_space(int argc, char **argv)
{
    space_options opts;
    space_script script;
    char *text = NULL;
    size_t size = 0;
    const char *name = NULL;
    int rc = parse_options(argc, argv, &opts);

    if (rc != 0)
        return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    memset(&script, 0, sizeof script);
    if (opts.script != NULL) {
        char err[1024];
        unsigned line = 0;
        name = strcmp(opts.script, "-") == 0 ? "<stdin>" : opts.script;
        rc = read_script(opts.script, &text, &size);
        if (rc != CLI_EXIT_OK)
            return rc;
        rc = space_script_parse(text, size, &script, &line, err, sizeof err);
        free(text);
        if (rc != 0) {
            fprintf(stderr, "baton space: %s:%u: %s\n", name, line, err);
            return rc == BATON_ENOMEM ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
        }
    }
    rc = run_script(&opts, &script, name);
    /* After the space is gone: it borrowed the patterns. */
    for (size_t k = 0; k < script.n_stmts; k++)
        space_body_free(script.stmts[k].body);
    space_script_free(&script);
    return rc;
}
