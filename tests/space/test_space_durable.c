/*
 * test_space_durable.c — the durable tuplespace (baton_space_open, src/space/space_durable.c):
 * a round trip through the log in ASYNC and SYNC (data in order with their flags and ids, waiting
 * single, join, persistent and peeking consumers with their channels, patterns and bodies,
 * revived and firing after reopen, fresh names and ids continuing), the revive errors, the
 * read-only NONE view (the log's bytes unchanged), compaction (the log stays bounded, explicit
 * compaction, reopen after it, EPERM from continuations), SYNC's promises (a continuation runs
 * only once its firing is durable, an outside call returns only once its change is), crash
 * recovery (SYNC children killed at random moments, the reopened space checked exactly against
 * what they acknowledged) and damaged logs (truncated and bit-flipped copies opened with and
 * without salvage in forked children, so a crash shows up as a failure and not as a dead binary).
 */
#define _GNU_SOURCE
#include "test_util.h"
#include "space/dir_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "baton/space.h"
#include "space/space_util.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static void make_tmpdir(char *path, size_t cap)
{
    make_tmpdir_named(path, cap, "baton-dur");
}

static unsigned char *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void write_whole(const char *path, const unsigned char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    fclose(f);
}

static baton_pool *pool_new(unsigned workers)
{
    baton_pool *pool = NULL;
    baton_pool_config config = bt_pool_config(workers, 0, 0);
    bt_assert_rc(baton_pool_create(&config, &pool), 0);
    return pool;
}

static baton_space_config space_config(baton_pool *pool, baton_durability durability,
                                       baton_revive_fn revive, void *revive_ctx)
{
    baton_space_config config = {.struct_size = sizeof config, .pool = pool,
                                 .durability = durability, .revive = revive,
                                 .revive_ctx = revive_ctx};
    return config;
}

static baton_space *open_ok(const baton_space_config *config, const char *dir)
{
    baton_space *space = NULL;
    bt_assert_rc(baton_space_open(config, dir, &space), 0);
    assert_non_null(space);
    return space;
}

static void put(baton_space *space, const char *channel, const char *datum, bool persistent)
{
    baton_value *c = V(channel), *d = V(datum);
    bt_assert_rc(
        baton_space_produce(space, baton_value_as_view(c), baton_value_as_view(d), persistent), 0);
    baton_value_destroy(c);
    baton_value_destroy(d);
}

static baton_space_stats stats_of(baton_space *space)
{
    baton_space_stats s;
    memset(&s, 0, sizeof s);
    bt_assert_rc(baton_space_get_stats(space, &s), 0);
    return s;
}

/* The text of a value, in a fixed buffer (the tests' values are small). */
static void view_text(baton_value_view v, char *buf, size_t cap)
{
    size_t length = 0;
    if (baton_value_print(v, buf, cap, &length) != 0 && cap > 0)
        snprintf(buf, cap, "<unprintable>");
}

/* A continuation slot: counts firings and keeps the text of the last match's data. */
typedef struct kslot {
    uint64_t id;
    char body[128];
    atomic_int fired;
    char last[4][128];
} kslot;

static int slot_fn(void *ctx, const baton_match *match)
{
    kslot *s = ctx;
    for (size_t i = 0; i < match->n_channels && i < 4; i++)
        view_text(match->data[i], s->last[i], sizeof s->last[i]);
    atomic_fetch_add(&s->fired, 1);
    return 0;
}

/* Registers a consumer on channels (texts) with patterns (texts, parsed into *keep so that the
 * caller frees them after the space) and body (text, or NULL for baton_space_consume). */
static uint64_t take(baton_space *space, size_t n, const char *const *channels,
                     const char *const *patterns, baton_pattern **keep, const char *body,
                     kslot *slot, unsigned flags)
{
    baton_value *values[4];
    baton_value_view views[4];
    for (size_t i = 0; i < n; i++) {
        values[i] = V(channels[i]);
        views[i] = baton_value_as_view(values[i]);
        keep[i] = P(patterns[i]);
    }
    uint64_t id = 0;
    if (body == NULL) {
        bt_assert_rc(baton_space_consume(space, views, keep, n, slot_fn, slot, flags, &id), 0);
    } else {
        baton_value *b = V(body);
        bt_assert_rc(baton_space_consume_body(space, views, keep, n, slot_fn, slot, flags,
                                              baton_value_as_view(b), &id),
                     0);
        baton_value_destroy(b);
    }
    for (size_t i = 0; i < n; i++)
        baton_value_destroy(values[i]);
    assert_true(id > 0);
    return id;
}

/* ---- the visit as text ---------------------------------------------------------------------- */

typedef struct dump {
    char *text;
    size_t len, cap;
    size_t n_data, n_consumers;
    uint64_t ids[64]; /* the waiting consumers' ids, in visit order */
    int rc;
} dump;

static void dump_add(dump *d, const char *s)
{
    size_t n = strlen(s);
    if (d->len + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 1024;
        while (cap < d->len + n + 1)
            cap *= 2;
        char *p = realloc(d->text, cap);
        if (p == NULL) {
            d->rc = BATON_ENOMEM;
            return;
        }
        d->text = p;
        d->cap = cap;
    }
    memcpy(d->text + d->len, s, n + 1);
    d->len += n;
}

static void dump_view(dump *d, baton_value_view v)
{
    char buf[512];
    size_t length = 0;
    int rc = baton_value_print(v, buf, sizeof buf, &length);
    if (rc != 0)
        d->rc = rc;
    else
        dump_add(d, buf);
}

static int dump_datum(void *ctx, const baton_space_datum_info *info)
{
    dump *d = ctx;
    char line[64];
    dump_add(d, "D ");
    dump_view(d, info->channel);
    dump_add(d, " <- ");
    dump_view(d, info->datum);
    snprintf(line, sizeof line, " #%" PRIu64 "%s\n", info->id,
             info->persistent ? " persistent" : "");
    dump_add(d, line);
    d->n_data++;
    return d->rc;
}

static int dump_consumer(void *ctx, const baton_space_consumer_info *info)
{
    dump *d = ctx;
    char line[128];
    snprintf(line, sizeof line, "K #%" PRIu64 " flags=%u body=", info->id, info->flags);
    dump_add(d, line);
    dump_view(d, info->body);
    dump_add(d, " [");
    for (size_t i = 0; i < info->n_channels; i++) {
        char pattern[256];
        size_t length = 0;
        if (baton_pattern_print(info->patterns[i], pattern, sizeof pattern, &length) != 0)
            d->rc = BATON_ERANGE;
        dump_view(d, info->channels[i]);
        dump_add(d, ": ");
        dump_add(d, pattern);
        dump_add(d, i + 1 < info->n_channels ? "; " : "");
    }
    dump_add(d, "]\n");
    if (d->n_consumers < 64)
        d->ids[d->n_consumers] = info->id;
    d->n_consumers++;
    return d->rc;
}

static dump dump_space(baton_space *space)
{
    dump d;
    memset(&d, 0, sizeof d);
    dump_add(&d, "");
    bt_assert_rc(baton_space_visit(space, dump_datum, dump_consumer, &d), 0);
    assert_int_equal(d.rc, 0);
    return d;
}

/* ---- revive --------------------------------------------------------------------------------- */

typedef struct reviver {
    size_t n;
    kslot slots[64];
    int fail_at;  /* the call (0-based) that fails, or -1 */
    int fail_rc;  /* what it returns; 0 means "returns 0 with no function" */
} reviver;

static int revive_fn(void *revive_ctx, uint64_t id, baton_value_view body,
                     baton_continuation_fn *fn, void **ctx)
{
    reviver *r = revive_ctx;
    if ((int)r->n == r->fail_at) {
        r->n++;
        return r->fail_rc;
    }
    if (r->n >= 64)
        return BATON_ENOMEM;
    kslot *s = &r->slots[r->n++];
    s->id = id;
    view_text(body, s->body, sizeof s->body);
    *fn = slot_fn;
    *ctx = s;
    return 0;
}

static reviver *reviver_new(void)
{
    reviver *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->fail_at = -1;
    return r;
}

static kslot *revived(reviver *r, uint64_t id)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->slots[i].id == id)
            return &r->slots[i];
    fail_msg("consumer %" PRIu64 " was not revived", id);
    return NULL;
}

/* ---- 1. round trip -------------------------------------------------------------------------- */

typedef struct session {
    char n[12][32]; /* "@<fresh name>" */
    uint64_t max_name;
    uint64_t waiting[5]; /* K1..K5 */
    uint64_t max_consumer;
    baton_pattern *patterns[32];
    size_t n_patterns;
    kslot slots[12];
} session;

static void session_free_patterns(session *s)
{
    for (size_t i = 0; i < s->n_patterns; i++)
        baton_pattern_destroy(s->patterns[i]);
    s->n_patterns = 0;
}

static uint64_t s_take(session *s, baton_space *space, size_t n, const char *const *channels,
                       const char *const *patterns, const char *body, kslot *slot, unsigned flags)
{
    uint64_t id = take(space, n, channels, patterns, s->patterns + s->n_patterns, body, slot,
                       flags);
    s->n_patterns += n;
    if (id > s->max_consumer)
        s->max_consumer = id;
    return id;
}

/* Fills a space with data of every kind, waiting consumers K1..K5 and six firings. */
static void populate(session *s, baton_space *space)
{
    for (int i = 0; i < 12; i++) {
        uint64_t name = baton_space_fresh_name(space);
        snprintf(s->n[i], sizeof s->n[i], "@%" PRIu64, name);
        if (name > s->max_name)
            s->max_name = name;
    }
    char t3[64];
    snprintf(t3, sizeof t3, "(\"t\", %s)", s->n[3]);
    put(space, s->n[1], "1", false);
    put(space, s->n[1], "2", true);
    put(space, s->n[1], "3", false);
    put(space, s->n[2], "\"x\"", false);
    put(space, t3, "5", true);
    put(space, s->n[4], "@5000", false);
    put(space, s->n[4], "(\"ref\", [@7000])", false);
    /* Waiting: a single with a body, a join listed against the sort order, a persistent one, a
     * peeking one, and a join over a tuple channel. */
    s->waiting[0] = s_take(s, space, 1, (const char *[]){s->n[5]}, (const char *[]){"(\"k\", Int)"},
                           "(\"k\", 7)", &s->slots[0], 0);
    s->waiting[1] = s_take(s, space, 2, (const char *[]){s->n[6], s->n[1]},
                           (const char *[]){"x", "100 | 200"}, "(\"join\", [1, 2])",
                           &s->slots[1], 0);
    s->waiting[2] = s_take(s, space, 1, (const char *[]){s->n[7]}, (const char *[]){"String"},
                           NULL, &s->slots[2], BATON_CONSUME_PERSISTENT);
    s->waiting[3] = s_take(s, space, 1, (const char *[]){s->n[2]}, (const char *[]){"Int"},
                           "\"peek\"", &s->slots[3], BATON_CONSUME_PEEK);
    s->waiting[4] = s_take(s, space, 2, (const char *[]){s->n[8], t3},
                           (const char *[]){"(a, b)", "6"}, "42", &s->slots[4], 0);
    /* Firings. */
    s_take(s, space, 1, (const char *[]){s->n[9]}, (const char *[]){"Int"}, "(\"f\", 1)",
           &s->slots[5], 0);
    put(space, s->n[9], "9", false);
    put(space, s->n[7], "\"s\"", false); /* K3 fires and stays */
    s_take(s, space, 2, (const char *[]){s->n[10], s->n[11]}, (const char *[]){"_", "_"}, "nil",
           &s->slots[6], 0);
    put(space, s->n[10], "1", false);
    put(space, s->n[11], "2", false);
    s_take(s, space, 1, (const char *[]){s->n[1]}, (const char *[]){"1"}, NULL, &s->slots[7], 0);
    s_take(s, space, 1, (const char *[]){s->n[2]}, (const char *[]){"String"}, NULL,
           &s->slots[8], BATON_CONSUME_PEEK);
    s_take(s, space, 1, (const char *[]){t3}, (const char *[]){"5"}, NULL, &s->slots[9], 0);
    bt_assert_rc(baton_space_quiesce(space), 0);
    for (int i = 5; i <= 9; i++)
        assert_int_equal(atomic_load(&s->slots[i].fired), 1);
    assert_int_equal(atomic_load(&s->slots[2].fired), 1);
    assert_string_equal(s->slots[2].last[0], "\"s\"");
    assert_string_equal(s->slots[7].last[0], "1");
    assert_string_equal(s->slots[8].last[0], "\"x\"");
    for (int i = 0; i < 5; i++)
        if (i != 2)
            assert_int_equal(atomic_load(&s->slots[i].fired), 0);
}

static void run_round_trip(baton_durability durability)
{
    baton_pool *pool = pool_new(2);
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    session *s = calloc(1, sizeof *s);
    assert_non_null(s);
    baton_space_config config = space_config(pool, durability, NULL, NULL);
    baton_space *space = open_ok(&config, dir);
    populate(s, space);
    dump before = dump_space(space);
    assert_int_equal(before.n_data, 6);
    assert_int_equal(before.n_consumers, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(before.ids[i], s->waiting[i]); /* in registration order */
    baton_space_stats st = stats_of(space);
    assert_int_equal(st.data, 6);
    assert_int_equal(st.consumers, 5);
    baton_space_destroy(space);
    session_free_patterns(s);

    reviver *r = reviver_new();
    config = space_config(pool, durability, revive_fn, r);
    space = open_ok(&config, dir);
    dump after = dump_space(space);
    if (strcmp(before.text, after.text) != 0)
        fail_msg("the reopened space differs:\n--- before\n%s--- after\n%s", before.text,
                 after.text);
    st = stats_of(space);
    assert_int_equal(st.recovered_data, 6);
    assert_int_equal(st.recovered_consumers, 5);
    assert_int_equal(st.data, 6);
    assert_int_equal(st.consumers, 5);
    assert_int_equal(r->n, 5);
    assert_string_equal(revived(r, s->waiting[0])->body, "(\"k\", 7)");
    assert_string_equal(revived(r, s->waiting[1])->body, "(\"join\", [1, 2])");
    assert_string_equal(revived(r, s->waiting[2])->body, "nil");
    assert_string_equal(revived(r, s->waiting[3])->body, "\"peek\"");
    assert_string_equal(revived(r, s->waiting[4])->body, "42");
    for (size_t i = 0; i < r->n; i++)
        assert_int_equal(atomic_load(&r->slots[i].fired), 0);

    /* Fresh names above every name stored (@7000 inside a list inside a tuple), fresh consumer
     * ids above the recovered ones. */
    uint64_t name = baton_space_fresh_name(space);
    assert_true(name > 7000);
    assert_true(name > s->max_name);
    kslot extra;
    memset(&extra, 0, sizeof extra);
    uint64_t id = s_take(s, space, 1, (const char *[]){s->n[0]}, (const char *[]){"Int"}, NULL,
                         &extra, 0);
    for (int i = 0; i < 5; i++)
        assert_true(id > s->waiting[i]);

    /* The revived consumers fire. */
    put(space, s->n[5], "(\"k\", 5)", false);
    put(space, s->n[6], "0", false);
    put(space, s->n[1], "200", false);
    put(space, s->n[7], "\"again\"", false);
    put(space, s->n[0], "11", false);
    bt_assert_rc(baton_space_quiesce(space), 0);
    kslot *k1 = revived(r, s->waiting[0]), *k2 = revived(r, s->waiting[1]);
    kslot *k3 = revived(r, s->waiting[2]);
    assert_int_equal(atomic_load(&k1->fired), 1);
    assert_string_equal(k1->last[0], "(\"k\", 5)");
    assert_int_equal(atomic_load(&k2->fired), 1);
    assert_string_equal(k2->last[0], "0");
    assert_string_equal(k2->last[1], "200");
    assert_int_equal(atomic_load(&k3->fired), 1);
    assert_string_equal(k3->last[0], "\"again\"");
    assert_int_equal(atomic_load(&extra.fired), 1);
    st = stats_of(space);
    assert_int_equal(st.consumers, 3); /* K3 (persistent), K4, K5 */
    assert_int_equal(st.data, 6);
    baton_space_destroy(space);
    session_free_patterns(s);

    free(before.text);
    free(after.text);
    free(r);
    free(s);
    remove_tree(dir);
    bt_pool_destroy(pool);
}

static void test_round_trip_async(void **state)
{
    (void)state;
    run_round_trip(BATON_DURABILITY_ASYNC);
}

static void test_round_trip_sync(void **state)
{
    (void)state;
    run_round_trip(BATON_DURABILITY_SYNC);
}

/* ---- 2. revive errors ----------------------------------------------------------------------- */

static void test_revive_errors(void **state)
{
    (void)state;
    baton_pool *pool = pool_new(2);
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    session *s = calloc(1, sizeof *s);
    assert_non_null(s);
    baton_space_config config = space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
    baton_space *space = open_ok(&config, dir);
    populate(s, space);
    dump before = dump_space(space);
    baton_space_destroy(space);
    session_free_patterns(s);

    /* No revive function: EINVAL naming one of the waiting consumers. */
    space = NULL;
    bt_assert_rc(baton_space_open(&config, dir, &space), BATON_EINVAL);
    assert_null(space);
    const char *msg = baton_last_error_message();
    bool named = false;
    for (int i = 0; i < 5; i++) {
        char want[48];
        snprintf(want, sizeof want, "consumer %" PRIu64, s->waiting[i]);
        named |= strstr(msg, want) != NULL;
    }
    if (!named)
        fail_msg("the message names no waiting consumer: %s", msg);

    /* A revive that fails, first or later: that error, nothing leaks, the log stays usable. */
    const int fail_at[] = {0, 1, 4};
    for (size_t i = 0; i < sizeof fail_at / sizeof fail_at[0]; i++) {
        reviver *r = reviver_new();
        r->fail_at = fail_at[i];
        r->fail_rc = BATON_ERANGE;
        config = space_config(pool, BATON_DURABILITY_ASYNC, revive_fn, r);
        space = NULL;
        bt_assert_rc(baton_space_open(&config, dir, &space), BATON_ERANGE);
        assert_null(space);
        free(r);
    }
    /* Returning 0 without a function: EINVAL. */
    reviver *r = reviver_new();
    r->fail_at = 2;
    r->fail_rc = 0;
    config = space_config(pool, BATON_DURABILITY_SYNC, revive_fn, r);
    space = NULL;
    bt_assert_rc(baton_space_open(&config, dir, &space), BATON_EINVAL);
    assert_null(space);
    free(r);

    /* After all that the state is intact. */
    r = reviver_new();
    config = space_config(pool, BATON_DURABILITY_ASYNC, revive_fn, r);
    space = open_ok(&config, dir);
    dump after = dump_space(space);
    assert_string_equal(before.text, after.text);
    baton_space_destroy(space);
    free(r);
    free(before.text);
    free(after.text);
    free(s);
    remove_tree(dir);
    bt_pool_destroy(pool);
}

/* ---- 3. NONE -------------------------------------------------------------------------------- */

static void test_none_read_only(void **state)
{
    (void)state;
    baton_pool *pool = pool_new(2);
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    session *s = calloc(1, sizeof *s);
    assert_non_null(s);
    baton_space_config config = space_config(pool, BATON_DURABILITY_SYNC, NULL, NULL);
    baton_space *space = open_ok(&config, dir);
    populate(s, space);
    dump before = dump_space(space);
    baton_space_destroy(space);
    session_free_patterns(s);

    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    size_t size0 = 0;
    unsigned char *bytes0 = read_whole(path, &size0);

    for (int round = 0; round < 2; round++) {
        reviver *r = reviver_new();
        config = space_config(pool, BATON_DURABILITY_NONE, revive_fn, r);
        space = open_ok(&config, dir);
        dump view = dump_space(space);
        assert_string_equal(before.text, view.text);
        baton_space_stats st = stats_of(space);
        assert_int_equal(st.log_records, 0);
        assert_int_equal(st.log_appended, 0);
        assert_int_equal(st.recovered_data, 6);
        assert_int_equal(st.recovered_consumers, 5);
        /* Changes live in memory only. */
        put(space, s->n[5], "(\"k\", 1)", false);
        put(space, s->n[0], "\"new\"", true);
        bt_assert_rc(baton_space_quiesce(space), 0);
        assert_int_equal(atomic_load(&revived(r, s->waiting[0])->fired), 1);
        bt_assert_rc(baton_space_sync(space), 0);
        bt_assert_rc(baton_space_compact(space), 0);
        baton_space_destroy(space);
        free(view.text);
        free(r);
        size_t size1 = 0;
        unsigned char *bytes1 = read_whole(path, &size1);
        assert_int_equal(size1, size0);
        assert_true(memcmp(bytes0, bytes1, size0) == 0);
        free(bytes1);
    }
    /* A writable reopen sees the log, not the NONE session's changes. */
    reviver *r = reviver_new();
    config = space_config(pool, BATON_DURABILITY_ASYNC, revive_fn, r);
    space = open_ok(&config, dir);
    dump after = dump_space(space);
    assert_string_equal(before.text, after.text);
    baton_space_destroy(space);
    free(r);
    free(after.text);
    free(before.text);
    free(bytes0);
    free(s);
    remove_tree(dir);
    bt_pool_destroy(pool);
}

/* ---- 4. compaction -------------------------------------------------------------------------- */

typedef struct perm_probe {
    baton_space *space;
    atomic_int compact_rc, sync_rc, quiesce_rc, ran;
} perm_probe;

static int perm_fn(void *ctx, const baton_match *match)
{
    (void)match;
    perm_probe *p = ctx;
    atomic_store(&p->compact_rc, baton_space_compact(p->space));
    atomic_store(&p->sync_rc, baton_space_sync(p->space));
    atomic_store(&p->quiesce_rc, baton_space_quiesce(p->space));
    atomic_fetch_add(&p->ran, 1);
    return 0;
}

static void test_compaction(void **state)
{
    (void)state;
    baton_pool *pool = pool_new(2);
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    baton_space_config config = space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
    config.compact_records = 100;
    baton_space *space = open_ok(&config, dir);
    uint64_t compactions0 = stats_of(space).compactions;

    /* Live state that must survive every compaction: data, a waiting consumer with a body. */
    put(space, "\"keep\"", "1", false);
    put(space, "\"keep\"", "(2, \"two\")", true);
    kslot waiting;
    memset(&waiting, 0, sizeof waiting);
    baton_pattern *keep_pattern[1];
    take(space, 1, (const char *[]){"\"wait\""}, (const char *[]){"\"never\""}, keep_pattern,
         "(\"body\", 1)", &waiting, 0);

    baton_pattern *p_int = P("Int");
    baton_value *ch = V("\"pc\"");
    kslot fired;
    memset(&fired, 0, sizeof fired);
    const size_t rounds = bt_scaled(3000, 500);
    uint64_t max_records = 0;
    for (size_t i = 0; i < rounds; i++) {
        baton_value *d = V("7");
        baton_value_view cv = baton_value_as_view(ch);
        bt_assert_rc(baton_space_produce(space, cv, baton_value_as_view(d), false), 0);
        bt_assert_rc(baton_space_consume(space, &cv, &p_int, 1, slot_fn, &fired, 0, NULL), 0);
        baton_value_destroy(d);
        if (i % 10 == 9) {
            bt_assert_rc(baton_space_quiesce(space), 0);
            baton_space_stats st = stats_of(space);
            if (st.log_records > max_records)
                max_records = st.log_records;
            if (st.log_records >= 300)
                fail_msg("round %zu: the log holds %" PRIu64 " records", i, st.log_records);
        }
    }
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal((size_t)atomic_load(&fired.fired), rounds);
    baton_space_stats st = stats_of(space);
    assert_true(st.compactions > compactions0 + 5);
    assert_int_equal(st.data, 2);
    assert_int_equal(st.consumers, 1);
    print_message("compaction: %zu rounds, %" PRIu64 " compactions, at most %" PRIu64
                  " records in the log\n", rounds, st.compactions - compactions0, max_records);

    /* Explicit compaction: the log holds the snapshot only (SNAP, 2 PUT, 1 REG, SNAP_END). */
    bt_assert_rc(baton_space_compact(space), 0);
    baton_space_stats st2 = stats_of(space);
    assert_int_equal(st2.compactions, st.compactions + 1);
    assert_int_equal(st2.log_records, 5);
    assert_true(st2.log_durable >= st2.log_appended);

    /* Compaction, sync and quiesce from a continuation: EPERM. */
    perm_probe probe = {.space = space};
    baton_pattern *p_any = P("_");
    baton_value *pch = V("\"perm\"");
    baton_value_view pv = baton_value_as_view(pch);
    bt_assert_rc(baton_space_consume(space, &pv, &p_any, 1, perm_fn, &probe, 0, NULL), 0);
    put(space, "\"perm\"", "0", false);
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal(atomic_load(&probe.ran), 1);
    assert_int_equal(atomic_load(&probe.compact_rc), BATON_EPERM);
    assert_int_equal(atomic_load(&probe.sync_rc), BATON_EPERM);
    assert_int_equal(atomic_load(&probe.quiesce_rc), BATON_EPERM);

    dump before = dump_space(space);
    baton_space_destroy(space);
    reviver *r = reviver_new();
    config = space_config(pool, BATON_DURABILITY_ASYNC, revive_fn, r);
    config.compact_records = 100;
    space = open_ok(&config, dir);
    dump after = dump_space(space);
    assert_string_equal(before.text, after.text);
    assert_int_equal(r->n, 1);
    assert_string_equal(r->slots[0].body, "(\"body\", 1)");
    assert_true(stats_of(space).log_records < 300);
    baton_space_destroy(space);

    free(before.text);
    free(after.text);
    free(r);
    baton_value_destroy(pch);
    baton_value_destroy(ch);
    baton_pattern_destroy(p_any);
    baton_pattern_destroy(p_int);
    baton_pattern_destroy(keep_pattern[0]);
    remove_tree(dir);
    bt_pool_destroy(pool);
}

/* ---- 5. SYNC -------------------------------------------------------------------------------- */

typedef struct sync_probe {
    baton_space *space;
    baton_value *hop; /* the channel the first continuation produces on */
    _Atomic uint64_t min_durable; /* the first firing's record comes after this */
    _Atomic uint64_t hop_min;     /* the hop's firing record comes after this */
    atomic_int ran, hops, bad;
} sync_probe;

static int sync_hop_fn(void *ctx, const baton_match *match)
{
    (void)match;
    sync_probe *p = ctx;
    baton_space_stats st;
    if (baton_space_get_stats(p->space, &st) != 0 || st.log_durable == 0 ||
        st.log_durable <= atomic_load(&p->hop_min)) {
        BT_CHECK_MSG(false, "hop ran at durable %" PRIu64 ", its firing came after %" PRIu64,
                     st.log_durable, atomic_load(&p->hop_min));
        atomic_fetch_add(&p->bad, 1);
    }
    atomic_fetch_add(&p->hops, 1);
    return 0;
}

static int sync_first_fn(void *ctx, const baton_match *match)
{
    sync_probe *p = ctx;
    baton_space_stats st;
    if (baton_space_get_stats(p->space, &st) != 0 || st.log_durable == 0 ||
        st.log_durable <= atomic_load(&p->min_durable)) {
        BT_CHECK_MSG(false, "continuation ran at durable %" PRIu64 ", its firing came after %"
                     PRIu64, st.log_durable, atomic_load(&p->min_durable));
        atomic_fetch_add(&p->bad, 1);
    }
    /* The hop's firing is logged after this reading. */
    atomic_store(&p->hop_min, st.log_appended);
    atomic_fetch_add(&p->ran, 1);
    return baton_space_produce(p->space, baton_value_as_view(p->hop), match->data[0], false);
}

static void test_sync_semantics(void **state)
{
    (void)state;
    baton_pool *pool = pool_new(2);
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    baton_space_config config = space_config(pool, BATON_DURABILITY_SYNC, NULL, NULL);
    baton_space *space = open_ok(&config, dir);
    sync_probe probe = {.space = space, .hop = V("\"hop\"")};
    baton_pattern *p_int = P("Int");
    baton_value *in = V("\"in\"");
    baton_value_view inv = baton_value_as_view(in), hopv = baton_value_as_view(probe.hop);
    const int n = (int)bt_scaled(200, 40);
    for (int i = 0; i < n; i++) {
        /* An outside produce that stores: durable when it returns. */
        baton_space_stats st0 = stats_of(space);
        put(space, "\"store\"", "1", false);
        baton_space_stats st1 = stats_of(space);
        if (st1.log_durable < st0.log_appended + 1)
            fail_msg("produce returned at durable %" PRIu64 ", appended before it %" PRIu64,
                     st1.log_durable, st0.log_appended);
        /* An outside consume that registers: durable when it returns. */
        st0 = stats_of(space);
        bt_assert_rc(baton_space_consume(space, &inv, &p_int, 1, sync_first_fn, &probe, 0, NULL),
                     0);
        st1 = stats_of(space);
        assert_true(st1.log_durable >= st0.log_appended + 1);
        /* The hop consumer waits; the produce fires the first, which fires the hop. */
        bt_assert_rc(baton_space_consume(space, &hopv, &p_int, 1, sync_hop_fn, &probe, 0, NULL),
                     0);
        st0 = stats_of(space);
        atomic_store(&probe.min_durable, st0.log_appended);
        baton_value *d = V("5");
        bt_assert_rc(baton_space_produce(space, inv, baton_value_as_view(d), false), 0);
        baton_value_destroy(d);
        st1 = stats_of(space);
        assert_true(st1.log_durable >= st0.log_appended + 1);
        bt_assert_rc(baton_space_quiesce(space), 0);
        if (atomic_load(&probe.ran) != i + 1 || atomic_load(&probe.hops) != i + 1) {
            int ran = atomic_load(&probe.ran), hops = atomic_load(&probe.hops);
            baton_space_stats sq = stats_of(space);
            bt_sleep_ms(200);
            baton_space_stats sl = stats_of(space);
            fail_msg("iteration %d: after quiesce %d firings and %d hops (%d and %d 200 ms "
                     "later); data %zu, consumers %zu (later %zu, %zu)", i, ran, hops,
                     atomic_load(&probe.ran), atomic_load(&probe.hops), sq.data, sq.consumers,
                     sl.data, sl.consumers);
        }
        bt_assert_rc(baton_space_sync(space), 0);
        st1 = stats_of(space);
        assert_true(st1.log_durable >= st1.log_appended);
    }
    bt_assert_no_thread_failures();
    assert_int_equal(atomic_load(&probe.ran), n);
    assert_int_equal(atomic_load(&probe.hops), n);
    assert_int_equal(atomic_load(&probe.bad), 0);
    baton_space_stats st = stats_of(space);
    assert_int_equal(st.data, (size_t)n);
    assert_int_equal(st.consumers, 0);
    baton_space_destroy(space);
    baton_pattern_destroy(p_int);
    baton_value_destroy(in);
    baton_value_destroy(probe.hop);
    remove_tree(dir);
    bt_pool_destroy(pool);
}

/* ---- 6. crash recovery ---------------------------------------------------------------------- */

/* The child's operations: op i's kind is a function of (seed, i), so the parent knows every
 * operation, acknowledged or not. Produced data are the op ids themselves (unique). */
enum { OP_A, OP_B, OP_C, OP_D, OP_JOIN, OP_SINGLE };

static uint64_t mix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static int op_kind(uint64_t seed, uint64_t op)
{
    uint64_t r = mix64(seed ^ (op * UINT64_C(0x2545f4914f6cdd1d))) % 100;
    return r < 20 ? OP_A : r < 30 ? OP_B : r < 55 ? OP_C : r < 75 ? OP_D : r < 90 ? OP_JOIN
                                                                                  : OP_SINGLE;
}

typedef struct child_k {
    baton_space *space;
    baton_value *out;
    uint64_t op;
    bool join;
} child_k;

/* The child's continuation: ("j", op, c, d) or ("s", op, c) on "E". */
static int child_fire(void *ctx, const baton_match *match)
{
    child_k *k = ctx;
    baton_value_builder *b = NULL;
    baton_value *v = NULL;
    int rc = baton_value_builder_create(&b);
    if (rc == 0)
        rc = baton_value_begin_tuple(b);
    if (rc == 0)
        rc = baton_value_add_string(b, k->join ? "j" : "s", 1);
    if (rc == 0)
        rc = baton_value_add_int(b, (int64_t)k->op);
    for (size_t i = 0; i < match->n_channels && rc == 0; i++)
        rc = baton_value_add_view(b, match->data[i]);
    if (rc == 0)
        rc = baton_value_end(b);
    if (rc == 0)
        rc = baton_value_finish(b, &v);
    if (rc == 0)
        rc = baton_space_produce(k->space, baton_value_as_view(k->out), baton_value_as_view(v),
                                 false);
    baton_value_destroy(v);
    baton_value_builder_destroy(b);
    return rc;
}

static baton_value *int_value(int64_t x)
{
    baton_value_builder *b = NULL;
    baton_value *v = NULL;
    if (baton_value_builder_create(&b) != 0 || baton_value_add_int(b, x) != 0 ||
        baton_value_finish(b, &v) != 0)
        _exit(7);
    baton_value_builder_destroy(b);
    return v;
}

static baton_value *body_value(const char *tag, uint64_t op)
{
    baton_value_builder *b = NULL;
    baton_value *v = NULL;
    if (baton_value_builder_create(&b) != 0 || baton_value_begin_tuple(b) != 0 ||
        baton_value_add_string(b, tag, strlen(tag)) != 0 ||
        baton_value_add_int(b, (int64_t)op) != 0 || baton_value_end(b) != 0 ||
        baton_value_finish(b, &v) != 0)
        _exit(7);
    baton_value_builder_destroy(b);
    return v;
}

static void reset_crash_signals(void)
{
    /* cmocka catches these to fail a test; in a child they must end it. */
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

static _Noreturn void crash_child(const char *dir, int fd, uint64_t seed)
{
    reset_crash_signals();
    baton_pool *pool = NULL;
    baton_pool_config pc = bt_pool_config(2, 0, 0);
    if (baton_pool_create(&pc, &pool) != 0)
        _exit(3);
    baton_space_config config = space_config(pool, BATON_DURABILITY_SYNC, NULL, NULL);
    baton_space *space = NULL;
    if (baton_space_open(&config, dir, &space) != 0)
        _exit(4);
    uint64_t opened = 0; /* the parent starts its clock once the space is open */
    if (write(fd, &opened, sizeof opened) != (ssize_t)sizeof opened)
        _exit(6);
    baton_value *chan[5] = {V("\"A\""), V("\"B\""), V("\"C\""), V("\"D\""), V("\"E\"")};
    baton_value_view cv[5];
    for (int i = 0; i < 5; i++)
        cv[i] = baton_value_as_view(chan[i]);
    baton_pattern *never = P("\"never\""), *p_int = P("Int");
    baton_pattern *const join_pats[2] = {p_int, p_int};
    for (uint64_t op = 1; op < 10000000; op++) {
        int kind = op_kind(seed, op);
        int rc = 0;
        if (kind == OP_A || kind == OP_C || kind == OP_D) {
            baton_value *d = int_value((int64_t)op);
            rc = baton_space_produce(space, cv[kind == OP_A ? 0 : kind == OP_C ? 2 : 3],
                                     baton_value_as_view(d), false);
            baton_value_destroy(d);
        } else if (kind == OP_B) {
            baton_value *body = body_value("b", op);
            rc = baton_space_consume_body(space, &cv[1], &never, 1, child_fire, NULL, 0,
                                          baton_value_as_view(body), NULL);
            baton_value_destroy(body);
        } else {
            child_k *k = malloc(sizeof *k); /* lives until the kill */
            if (k == NULL)
                _exit(7);
            *k = (child_k){space, chan[4], op, kind == OP_JOIN};
            baton_value *body = body_value(k->join ? "j" : "s", op);
            baton_value_view chans[2] = {cv[2], cv[3]};
            rc = baton_space_consume_body(space, chans, join_pats, k->join ? 2 : 1, child_fire,
                                          k, 0, baton_value_as_view(body), NULL);
            baton_value_destroy(body);
        }
        if (rc != 0)
            _exit(5);
        if (write(fd, &op, sizeof op) != (ssize_t)sizeof op)
            _exit(6);
    }
    _exit(0);
}

/* What the parent's reopen revives: the firing it saw, if any. */
typedef struct parent_k {
    uint64_t op;
    int kind;
    atomic_int fired;
    int64_t c, d;
} parent_k;

typedef struct parent_rv {
    parent_k **ks;
    size_t n, cap;
    uint64_t seed;
    int bad;
} parent_rv;

static int parent_fire(void *ctx, const baton_match *match)
{
    parent_k *k = ctx;
    k->c = baton_view_int(match->data[0]);
    k->d = match->n_channels > 1 ? baton_view_int(match->data[1]) : 0;
    atomic_fetch_add(&k->fired, 1);
    return 0;
}

static int parent_revive(void *revive_ctx, uint64_t id, baton_value_view body,
                         baton_continuation_fn *fn, void **ctx)
{
    (void)id;
    parent_rv *rv = revive_ctx;
    if (baton_view_kind(body) != BATON_VALUE_TUPLE || baton_view_count(body) != 2) {
        rv->bad++;
        return BATON_EINVAL;
    }
    parent_k *k = calloc(1, sizeof *k);
    if (k == NULL || (rv->n == rv->cap && (rv->cap = rv->cap ? 2 * rv->cap : 64,
                                           rv->ks = realloc(rv->ks, rv->cap * sizeof *rv->ks)) ==
                                              NULL)) {
        free(k);
        return BATON_ENOMEM;
    }
    size_t len = 0;
    const uint8_t *tag = baton_view_bytes(baton_view_element(body, 0), &len);
    k->op = (uint64_t)baton_view_int(baton_view_element(body, 1));
    k->kind = len == 1 && tag[0] == 'j' ? OP_JOIN : len == 1 && tag[0] == 's' ? OP_SINGLE
                                                                              : OP_B;
    rv->ks[rv->n++] = k;
    *fn = parent_fire;
    *ctx = k;
    return 0;
}

typedef struct crash_view {
    uint64_t seed;
    uint64_t limit;      /* the largest op that may have run (acked + 1) */
    uint8_t *value_seen; /* per op: times its datum was seen (stored, in E, taken at reopen) */
    uint8_t *cons_seen;  /* per op: times its consumer was seen (waiting, in E, fired at reopen) */
    int64_t *a_data;
    size_t n_a;
    int64_t last_c, last_d;
    size_t n_c, n_d, n_e;
    size_t waiting_single, waiting_join, waiting_b;
    char err[256];
} crash_view;

static void cv_fail(crash_view *v, const char *what, int64_t x)
{
    if (v->err[0] == '\0')
        snprintf(v->err, sizeof v->err, "%s (%" PRId64 ")", what, x);
}

static bool cv_value(crash_view *v, int64_t x, int kind)
{
    if (x < 1 || (uint64_t)x > v->limit || op_kind(v->seed, (uint64_t)x) != kind) {
        cv_fail(v, "a datum no produce made", x);
        return false;
    }
    v->value_seen[x]++;
    return true;
}

static bool cv_consumer(crash_view *v, int64_t op, int kind)
{
    if (op < 1 || (uint64_t)op > v->limit || op_kind(v->seed, (uint64_t)op) != kind) {
        cv_fail(v, "a consumer no consume made", op);
        return false;
    }
    v->cons_seen[op]++;
    return true;
}

static bool str_is(baton_value_view v, const char *s)
{
    size_t len = 0;
    const uint8_t *p = baton_view_bytes(v, &len);
    return baton_view_kind(v) == BATON_VALUE_STRING && len == strlen(s) && memcmp(p, s, len) == 0;
}

static int crash_datum(void *ctx, const baton_space_datum_info *info)
{
    crash_view *v = ctx;
    if (info->persistent)
        cv_fail(v, "a persistent datum", 0);
    if (str_is(info->channel, "A")) {
        int64_t x = baton_view_int(info->datum);
        if (cv_value(v, x, OP_A))
            v->a_data[v->n_a++] = x;
    } else if (str_is(info->channel, "C") || str_is(info->channel, "D")) {
        bool c = str_is(info->channel, "C");
        int64_t x = baton_view_int(info->datum);
        int64_t *last = c ? &v->last_c : &v->last_d;
        if (x <= *last)
            cv_fail(v, "data out of order", x);
        *last = x;
        cv_value(v, x, c ? OP_C : OP_D);
        (c ? v->n_c++ : v->n_d++);
    } else if (str_is(info->channel, "E")) {
        baton_value_view t = info->datum;
        size_t n = baton_view_count(t);
        bool join = n == 4 && str_is(baton_view_element(t, 0), "j");
        bool single = n == 3 && str_is(baton_view_element(t, 0), "s");
        if (!join && !single) {
            cv_fail(v, "a malformed E datum", 0);
            return 0;
        }
        cv_consumer(v, baton_view_int(baton_view_element(t, 1)), join ? OP_JOIN : OP_SINGLE);
        cv_value(v, baton_view_int(baton_view_element(t, 2)), OP_C);
        if (join)
            cv_value(v, baton_view_int(baton_view_element(t, 3)), OP_D);
        v->n_e++;
    } else {
        cv_fail(v, "a datum on an unknown channel", 0);
    }
    return 0;
}

static int crash_consumer(void *ctx, const baton_space_consumer_info *info)
{
    crash_view *v = ctx;
    baton_value_view body = info->body;
    if (baton_view_count(body) != 2 || info->flags != 0) {
        cv_fail(v, "a malformed consumer", (int64_t)info->id);
        return 0;
    }
    int64_t op = baton_view_int(baton_view_element(body, 1));
    baton_value_view tag = baton_view_element(body, 0);
    if (str_is(tag, "b")) {
        if (info->n_channels != 1 || !str_is(info->channels[0], "B"))
            cv_fail(v, "a B consumer on the wrong channel", op);
        cv_consumer(v, op, OP_B);
        v->waiting_b++;
    } else if (str_is(tag, "j")) {
        if (info->n_channels != 2 || !str_is(info->channels[0], "C") ||
            !str_is(info->channels[1], "D"))
            cv_fail(v, "a join on the wrong channels", op);
        cv_consumer(v, op, OP_JOIN);
        v->waiting_join++;
    } else if (str_is(tag, "s")) {
        if (info->n_channels != 1 || !str_is(info->channels[0], "C"))
            cv_fail(v, "a single consumer on the wrong channel", op);
        cv_consumer(v, op, OP_SINGLE);
        v->waiting_single++;
    } else {
        cv_fail(v, "a consumer with an unknown body", op);
    }
    return 0;
}

typedef struct crash_totals {
    uint64_t acked, fired_at_reopen, lost_e;
} crash_totals;

static void crash_trial(int trial, uint64_t seed, unsigned delay_ms, crash_totals *totals)
{
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_child(dir, fds[1], seed);
    }
    close(fds[1]);
    /* The kill lands in the workload, after the first open, so that every trial has
     * acknowledged operations to check. (A crash inside the first open, before the log's first
     * commit, leaves an empty environment, which the next open treats as a fresh one.) */
    uint64_t op = UINT64_MAX;
    if (read(fds[0], &op, sizeof op) != (ssize_t)sizeof op || op != 0)
        fail_msg("trial %d: the child did not open its space", trial);
    bt_sleep_ms(delay_ms);
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        fail_msg("trial %d: the child exited with %d before it was killed", trial,
                 WEXITSTATUS(status));
    uint64_t acked = 0;
    while (read(fds[0], &op, sizeof op) == (ssize_t)sizeof op) {
        assert_int_equal(op, acked + 1);
        acked = op;
    }
    close(fds[0]);

    baton_pool *pool = pool_new(2);
    parent_rv rv = {.seed = seed};
    baton_space_config config = space_config(pool, BATON_DURABILITY_SYNC, parent_revive, &rv);
    baton_space *space = NULL;
    int rc = baton_space_open(&config, dir, &space);
    if (rc != 0)
        fail_msg("trial %d (%" PRIu64 " acknowledged): reopen: %s: %s", trial, acked,
                 baton_err_name(rc), baton_last_error_message());
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal(rv.bad, 0);

    crash_view v;
    memset(&v, 0, sizeof v);
    v.seed = seed;
    v.limit = acked + 1;
    v.value_seen = calloc(v.limit + 1, 1);
    v.cons_seen = calloc(v.limit + 1, 1);
    v.a_data = calloc(v.limit + 1, sizeof *v.a_data);
    assert_true(v.value_seen && v.cons_seen && v.a_data);
    bt_assert_rc(baton_space_visit(space, crash_datum, crash_consumer, &v), 0);
    for (size_t i = 0; i < rv.n; i++) {
        parent_k *k = rv.ks[i];
        int fired = atomic_load(&k->fired);
        if (fired > 1)
            cv_fail(&v, "a revived consumer fired twice", (int64_t)k->op);
        if (fired == 1) {
            totals->fired_at_reopen++;
            cv_consumer(&v, (int64_t)k->op, k->kind);
            cv_value(&v, k->c, OP_C);
            if (k->kind == OP_JOIN)
                cv_value(&v, k->d, OP_D);
        }
    }
    if (v.err[0] != '\0')
        fail_msg("trial %d (%" PRIu64 " acknowledged): %s", trial, acked, v.err);

    /* A: exactly the acknowledged produces in order, and perhaps the one in flight. */
    size_t ai = 0;
    for (uint64_t o = 1; o <= acked; o++) {
        if (op_kind(seed, o) != OP_A)
            continue;
        if (ai >= v.n_a || v.a_data[ai] != (int64_t)o)
            fail_msg("trial %d: acknowledged datum %" PRIu64 " on A is missing", trial, o);
        ai++;
    }
    if (ai < v.n_a && !(ai + 1 == v.n_a && v.a_data[ai] == (int64_t)(acked + 1)))
        fail_msg("trial %d: A holds %zu data, %zu were acknowledged", trial, v.n_a, ai);
    /* Nothing seen twice; every acknowledged B consumer waits; account for the lost. */
    uint64_t lost_c = 0, lost_d = 0, gone_single = 0, gone_join = 0;
    for (uint64_t o = 1; o <= v.limit; o++) {
        if (v.value_seen[o] > 1)
            fail_msg("trial %d: datum %" PRIu64 " seen %u times", trial, o, v.value_seen[o]);
        if (v.cons_seen[o] > 1)
            fail_msg("trial %d: consumer of op %" PRIu64 " seen %u times", trial, o,
                     v.cons_seen[o]);
        int kind = op_kind(seed, o);
        if (kind == OP_B && o <= acked && v.cons_seen[o] != 1)
            fail_msg("trial %d: acknowledged consumer of op %" PRIu64 " on B is gone", trial, o);
        if (kind == OP_C && o <= acked && v.value_seen[o] == 0)
            lost_c++;
        if (kind == OP_D && o <= acked && v.value_seen[o] == 0)
            lost_d++;
        /* A consumer neither waiting nor accounted for fired before the crash and its E datum
         * was lost (or, for the op in flight, it never ran). */
        if (kind == OP_SINGLE && v.cons_seen[o] == 0)
            gone_single++;
        if (kind == OP_JOIN && v.cons_seen[o] == 0)
            gone_join++;
    }
    if (lost_d > gone_join || lost_c > gone_single + gone_join)
        fail_msg("trial %d: %" PRIu64 " C and %" PRIu64 " D data vanished, but only %" PRIu64
                 " single and %" PRIu64 " join consumers can have taken them", trial, lost_c,
                 lost_d, gone_single, gone_join);
    /* Stable: nothing waiting could fire. */
    if (v.waiting_single > 0 && v.n_c > 0)
        fail_msg("trial %d: a single consumer waits while C holds data", trial);
    if (v.waiting_join > 0 && v.n_c > 0 && v.n_d > 0)
        fail_msg("trial %d: a join waits while C and D hold data", trial);
    baton_space_stats st = stats_of(space);
    assert_int_equal(st.consumers, v.waiting_b + v.waiting_single + v.waiting_join);
    totals->acked += acked;
    totals->lost_e += gone_single + gone_join;

    baton_space_destroy(space);
    for (size_t i = 0; i < rv.n; i++)
        free(rv.ks[i]);
    free(rv.ks);
    free(v.value_seen);
    free(v.cons_seen);
    free(v.a_data);
    bt_pool_destroy(pool);
    remove_tree(dir);
}

static void test_crash_recovery(void **state)
{
    (void)state;
    bt_rng rng = bt_rng_seed(20260611);
    crash_totals totals = {0};
    const int trials = 20;
    for (int trial = 0; trial < trials; trial++) {
        uint64_t seed = bt_rng_next(&rng);
        unsigned delay = 1 + (unsigned)bt_rng_below(&rng, 50);
        crash_trial(trial, seed, delay, &totals);
    }
    print_message("crash recovery: %d trials, %" PRIu64 " acknowledged operations, %" PRIu64
                  " consumers fired at reopen, %" PRIu64 " consumers gone without a trace\n",
                  trials, totals.acked, totals.fired_at_reopen, totals.lost_e);
    assert_true(totals.acked > 0);
}

/* ---- 7. damaged logs ------------------------------------------------------------------------ */

static int noop_fn(void *ctx, const baton_match *match)
{
    (void)ctx;
    (void)match;
    return 0;
}

static int noop_revive(void *revive_ctx, uint64_t id, baton_value_view body,
                       baton_continuation_fn *fn, void **ctx)
{
    (void)revive_ctx;
    (void)id;
    (void)body;
    *fn = noop_fn;
    *ctx = NULL;
    return 0;
}

typedef struct damage_result {
    int exited;
    int rc;           /* the open's return */
    int reopen_rc;    /* after a successful open: a second open, salvage off */
    size_t data, consumers;
    char msg[256];
} damage_result;

/* Opens dir in a forked child (salvage or not); after a successful open, also reopens it. */
static damage_result open_in_child(const char *dir, bool salvage)
{
    damage_result *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(shared != MAP_FAILED);
    memset(shared, 0, sizeof *shared);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        reset_crash_signals();
        baton_pool *pool = NULL;
        baton_pool_config pc = bt_pool_config(2, 0, 0);
        if (baton_pool_create(&pc, &pool) != 0)
            _exit(3);
        baton_space_config config = space_config(pool, BATON_DURABILITY_ASYNC, noop_revive, NULL);
        config.salvage = salvage;
        baton_space *space = NULL;
        int rc = baton_space_open(&config, dir, &space);
        shared->rc = rc;
        snprintf(shared->msg, sizeof shared->msg, "%s", baton_last_error_message());
        if (rc == 0) {
            (void)baton_space_quiesce(space);
            baton_space_stats st;
            baton_space_get_stats(space, &st);
            shared->data = st.data;
            shared->consumers = st.consumers;
            baton_space_destroy(space);
            config.salvage = false;
            space = NULL;
            shared->reopen_rc = baton_space_open(&config, dir, &space);
            if (shared->reopen_rc == 0)
                baton_space_destroy(space);
        }
        baton_pool_destroy(pool);
        shared->exited = 1;
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    damage_result r = *shared;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        r.exited = 0;
    munmap(shared, sizeof *shared);
    return r;
}

static bool has_damaged_copy(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        found |= strncmp(e->d_name, "data.mdb.damaged-", 17) == 0;
    closedir(d);
    return found;
}

typedef struct damage_counts {
    unsigned trials, refused, salvaged, intact;
} damage_counts;

/* Writes the damaged copy into a fresh trial directory and opens it both ways. */
static void try_damaged(const char *base, const unsigned char *data, size_t size,
                        const char *what, damage_counts *counts)
{
    char trial[160];
    snprintf(trial, sizeof trial, "%s/trial", base);
    char path[192];
    snprintf(path, sizeof path, "%s/data.mdb", trial);

    remove_tree(trial);
    assert_int_equal(mkdir(trial, 0755), 0);
    write_whole(path, data, size);
    damage_result plain = open_in_child(trial, false);
    if (!plain.exited)
        fail_msg("%s: baton_space_open crashed", what);
    if (plain.rc != 0 && plain.rc != BATON_EIO)
        fail_msg("%s: baton_space_open returned %s: %s", what, baton_err_name(plain.rc),
                 plain.msg);
    if (plain.rc == BATON_EIO && plain.msg[0] == '\0')
        fail_msg("%s: BATON_EIO without a message", what);
    if (plain.rc == 0 && plain.reopen_rc != 0)
        fail_msg("%s: the second open returned %s", what, baton_err_name(plain.reopen_rc));

    remove_tree(trial);
    assert_int_equal(mkdir(trial, 0755), 0);
    write_whole(path, data, size);
    damage_result salv = open_in_child(trial, true);
    if (!salv.exited)
        fail_msg("%s: baton_space_open with salvage crashed", what);
    if (salv.rc != 0 && !(salv.rc == BATON_EIO && salv.msg[0] != '\0'))
        fail_msg("%s: baton_space_open with salvage returned %s: %s", what,
                 baton_err_name(salv.rc), salv.msg);
    if (salv.rc == 0 && salv.reopen_rc != 0)
        fail_msg("%s: the open after salvage returned %s", what, baton_err_name(salv.reopen_rc));
    if (plain.rc == BATON_EIO && salv.rc == 0 && !has_damaged_copy(trial))
        fail_msg("%s: salvaged, but no data.mdb.damaged-* (%s)", what, salv.msg);
    if (plain.rc == 0 && salv.rc != 0)
        fail_msg("%s: opens without salvage but not with it: %s", what, salv.msg);
    counts->trials++;
    counts->refused += plain.rc != 0;
    counts->salvaged += plain.rc != 0 && salv.rc == 0;
    counts->intact += plain.rc == 0;
}

static void test_damaged_logs(void **state)
{
    (void)state;
    char base[64];
    make_tmpdir(base, sizeof base);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/clean", base);
    {
        baton_pool *pool = pool_new(2);
        baton_space_config config = space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
        baton_space *space = open_ok(&config, dir);
        session *s = calloc(1, sizeof *s);
        assert_non_null(s);
        populate(s, space);
        for (int i = 0; i < 300; i++) {
            char datum[64];
            snprintf(datum, sizeof datum, "(%d, \"payload %d\")", i, i * 7);
            put(space, i % 3 == 0 ? "\"x\"" : i % 3 == 1 ? "\"y\"" : "@9", datum, i % 5 == 0);
        }
        bt_assert_rc(baton_space_quiesce(space), 0);
        baton_space_destroy(space);
        session_free_patterns(s);
        free(s);
        bt_pool_destroy(pool);
    }
    char path[192];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    size_t size = 0;
    unsigned char *data = read_whole(path, &size);
    assert_true(size > 3 * 4096);

    damage_counts counts = {0};
    /* The intact copy opens both ways. */
    try_damaged(base, data, size, "intact", &counts);
    assert_int_equal(counts.intact, 1);

    const size_t cuts[] = {0, 1, 100, 4096, 4097, 8192, 3 * 4096, size / 2, size - 4096,
                           size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", cuts[i], size);
        try_damaged(base, data, cuts[i], what, &counts);
    }
    unsigned char *copy = malloc(size);
    assert_non_null(copy);
    bt_rng rng = bt_rng_seed(0xda3a9ed);
    const unsigned flips = (unsigned)bt_scaled(30, 12);
    for (unsigned t = 0; t < flips; t++) {
        memcpy(copy, data, size);
        /* Half of them in the first pages (meta, roots), the rest anywhere. */
        size_t at = t % 2 == 0 ? bt_rng_below(&rng, size < 4 * 4096 ? size : 4 * 4096)
                               : bt_rng_below(&rng, size);
        copy[at] ^= (unsigned char)(1u << bt_rng_below(&rng, 8));
        char what[96];
        snprintf(what, sizeof what, "bit flipped at offset %zu", at);
        try_damaged(base, copy, size, what, &counts);
    }
    print_message("damaged logs: %u trials, %u refused without salvage (%u salvaged), %u opened "
                  "as they were\n", counts.trials, counts.refused, counts.salvaged,
                  counts.intact);
    assert_true(counts.refused > 0);
    free(copy);
    free(data);
    remove_tree(base);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_async),
        cmocka_unit_test(test_round_trip_sync),
        cmocka_unit_test(test_revive_errors),
        cmocka_unit_test(test_none_read_only),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_sync_semantics),
        cmocka_unit_test(test_crash_recovery),
        cmocka_unit_test(test_damaged_logs),
    };
    return cmocka_run_group_tests_name("space/durable", tests, NULL, NULL);
}
