/*
 * test_space_core.c — the in-memory tuplespace (include/baton/space.h, src/space/space.c): the
 * basic cases (a match, a non-match that leaves both waiting, overlapping joins without deadlock,
 * two joins competing for one channel), the three regressions (a fired join leaves none of its
 * registrations behind, a persistent datum stays a candidate, the order a join lists its channels
 * in does not change the result), persistent consumers, peeking, continuations that produce and
 * consume (a chain of hops), argument errors, and a stress run of random produces and consumes from
 * 16 threads checked against the space's invariants.
 */
#include "support/bt_common.h"

#include <inttypes.h>
#include <pthread.h>

#include "baton/space.h"
#include "support/bt_space.h"

BT_DEFINE_POOL_GROUP()

static baton_space *space_new(void)
{
    baton_space *space = NULL;
    baton_space_config config = {.struct_size = sizeof config, .pool = g_pool};
    bt_assert_rc(baton_space_create(&config, &space), 0);
    return space;
}

/* Produce the value written as text on the channel written as text. */
static void put(baton_space *space, const char *channel, const char *datum, bool persistent)
{
    baton_value *c = bt_value(channel), *d = bt_value(datum);
    bt_assert_rc(
        baton_space_produce(space, baton_value_as_view(c), baton_value_as_view(d), persistent), 0);
    baton_value_destroy(c);
    baton_value_destroy(d);
}

static void counts(baton_space *space, const char *channel, size_t data, size_t consumers)
{
    baton_value *c = bt_value(channel);
    size_t d = 99, k = 99;
    bt_assert_rc(baton_space_channel_counts(space, baton_value_as_view(c), &d, &k), 0);
    if (d != data || k != consumers)
        fail_msg("channel %s: %zu data and %zu consumers, expected %zu and %zu", channel, d, k,
                 data, consumers);
    baton_value_destroy(c);
}

/* A recording continuation: counts firings and keeps the text of the last match's data. */
typedef struct recorder {
    atomic_int fired;
    char last[8][64];
} recorder;

/* Several consumers may share a recorder and fire at once: the text is written under a lock. */
static pthread_mutex_t g_record_lock = PTHREAD_MUTEX_INITIALIZER;

static int record_fn(void *ctx, const baton_match *match)
{
    recorder *r = ctx;
    pthread_mutex_lock(&g_record_lock);
    for (size_t i = 0; i < match->n_channels && i < 8; i++) {
        size_t length = 0;
        baton_value_print(match->data[i], r->last[i], sizeof r->last[i], &length);
    }
    pthread_mutex_unlock(&g_record_lock);
    atomic_fetch_add(&r->fired, 1);
    return 0;
}

/* Registers a consumer on channels (texts) with patterns (texts). */
static void take(baton_space *space, size_t n, const char *const *channels,
                 baton_pattern *const *patterns, recorder *r, unsigned flags)
{
    baton_value *values[8];
    baton_value_view views[8];
    for (size_t i = 0; i < n; i++) {
        values[i] = bt_value(channels[i]);
        views[i] = baton_value_as_view(values[i]);
    }
    bt_assert_rc(baton_space_consume(space, views, patterns, n, record_fn, r, flags, NULL), 0);
    for (size_t i = 0; i < n; i++)
        baton_value_destroy(values[i]);
}

static void quiesce_ok(baton_space *space)
{
    bt_assert_rc(baton_space_quiesce(space), 0);
}

/* x!("hello") | for({"hello" | "world"} <- x): a match, either order. */
static void test_seed_match(void **state)
{
    (void)state;
    baton_pattern *p = bt_pattern("\"hello\" | \"world\"");
    for (int order = 0; order < 2; order++) {
        baton_space *space = space_new();
        recorder r = {0};
        if (order == 0)
            put(space, "@1", "\"hello\"", false);
        take(space, 1, (const char *[]){"@1"}, &p, &r, 0);
        if (order == 1)
            put(space, "@1", "\"hello\"", false);
        quiesce_ok(space);
        assert_int_equal(atomic_load(&r.fired), 1);
        assert_string_equal(r.last[0], "\"hello\"");
        counts(space, "@1", 0, 0);
        baton_space_destroy(space);
    }
    baton_pattern_destroy(p);
}

static void test_no_match_waits(void **state)
{
    (void)state;
    baton_pattern *p = bt_pattern("String");
    baton_space *space = space_new();
    recorder r = {0};
    put(space, "@1", "42", false);
    take(space, 1, (const char *[]){"@1"}, &p, &r, 0);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&r.fired), 0);
    counts(space, "@1", 1, 1);
    put(space, "@1", "\"s\"", false);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&r.fired), 1);
    counts(space, "@1", 1, 0);
    baton_space_destroy(space); /* frees the datum left */
    baton_pattern_destroy(p);
}

typedef struct put_job {
    baton_space *space;
    const char *channel;
    int value;
} put_job;

static void *put_thread(void *arg)
{
    put_job *job = arg;
    char text[32];
    snprintf(text, sizeof text, "%d", job->value);
    put(job->space, job->channel, text, false);
    return NULL;
}

/* Joins on (a,b,c) and (c,d,f), data from six threads at once: both fire, every round. */
static void test_overlapping_joins(void **state)
{
    (void)state;
    baton_pattern *any = bt_pattern("_");
    baton_pattern *pats[3] = {any, any, any};
    size_t rounds = bt_scaled(200, 20);
    baton_space *space = space_new();
    for (size_t round = 0; round < rounds; round++) {
        recorder r1 = {0}, r2 = {0};
        take(space, 3, (const char *[]){"\"a\"", "\"b\"", "\"c\""}, pats, &r1, 0);
        take(space, 3, (const char *[]){"\"c\"", "\"d\"", "\"f\""}, pats, &r2, 0);
        const char *chans[6] = {"\"a\"", "\"b\"", "\"c\"", "\"c\"", "\"d\"", "\"f\""};
        pthread_t threads[6];
        put_job jobs[6];
        for (int i = 0; i < 6; i++) {
            jobs[i] = (put_job){space, chans[(i + round) % 6], i};
            assert_int_equal(pthread_create(&threads[i], NULL, put_thread, &jobs[i]), 0);
        }
        for (int i = 0; i < 6; i++)
            pthread_join(threads[i], NULL);
        quiesce_ok(space);
        assert_int_equal(atomic_load(&r1.fired), 1);
        assert_int_equal(atomic_load(&r2.fired), 1);
        for (int i = 0; i < 6; i++)
            counts(space, chans[i], 0, 0);
    }
    baton_space_destroy(space);
    baton_pattern_destroy(any);
}

/* a;b and a;c compete for a: one fires with the first a, the other with the second. */
static void test_competing_joins(void **state)
{
    (void)state;
    baton_pattern *any = bt_pattern("_");
    baton_pattern *pats[2] = {any, any};
    baton_space *space = space_new();
    recorder r1 = {0}, r2 = {0};
    take(space, 2, (const char *[]){"\"a\"", "\"b\""}, pats, &r1, 0);
    take(space, 2, (const char *[]){"\"a\"", "\"c\""}, pats, &r2, 0);
    put(space, "\"b\"", "1", false);
    put(space, "\"c\"", "2", false);
    put(space, "\"a\"", "3", false);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&r1.fired) + atomic_load(&r2.fired), 1);
    assert_int_equal(atomic_load(&r1.fired), 1); /* the older consumer wins */
    put(space, "\"a\"", "4", false);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&r1.fired), 1);
    assert_int_equal(atomic_load(&r2.fired), 1);
    assert_string_equal(r2.last[0], "4");
    assert_string_equal(r2.last[1], "2");
    counts(space, "\"a\"", 0, 0);
    counts(space, "\"b\"", 0, 0);
    counts(space, "\"c\"", 0, 0);
    baton_space_destroy(space);
    baton_pattern_destroy(any);
}

/* Regression 1: a fired join leaves no registration on any of its channels. */
static void test_fired_join_unregisters(void **state)
{
    (void)state;
    baton_pattern *any = bt_pattern("_");
    baton_pattern *pats[3] = {any, any, any};
    baton_space *space = space_new();
    recorder r = {0};
    take(space, 3, (const char *[]){"@1", "@2", "@3"}, pats, &r, 0);
    counts(space, "@1", 0, 1);
    counts(space, "@2", 0, 1);
    counts(space, "@3", 0, 1);
    put(space, "@2", "1", false);
    put(space, "@3", "2", false);
    put(space, "@1", "3", false);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&r.fired), 1);
    for (int round = 0; round < 2; round++) {
        counts(space, "@1", (size_t)round, 0);
        counts(space, "@2", (size_t)round, 0);
        counts(space, "@3", (size_t)round, 0);
        put(space, "@1", "4", false);
        put(space, "@2", "5", false);
        put(space, "@3", "6", false);
        quiesce_ok(space);
        assert_int_equal(atomic_load(&r.fired), 1);
    }
    baton_space_destroy(space);
    baton_pattern_destroy(any);
}

/* Regression 2: a persistent datum stays a candidate, for single consumers and joins. */
static void test_persistent_datum(void **state)
{
    (void)state;
    baton_pattern *any = bt_pattern("_");
    baton_pattern *pats[2] = {any, any};
    baton_space *space = space_new();
    recorder r = {0};
    put(space, "@1", "\"forever\"", true);
    for (int i = 0; i < 3; i++)
        take(space, 1, (const char *[]){"@1"}, pats, &r, 0);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&r.fired), 3);
    counts(space, "@1", 1, 0);
    /* Consumers waiting first: a persistent datum fires all of them. */
    recorder w = {0};
    for (int i = 0; i < 3; i++)
        take(space, 1, (const char *[]){"@5"}, pats, &w, 0);
    put(space, "@5", "7", true);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&w.fired), 3);
    counts(space, "@5", 1, 0);
    /* Joins: the persistent datum on @1 serves every join, each with its own @2 datum. */
    recorder j = {0};
    for (int i = 0; i < 4; i++) {
        take(space, 2, (const char *[]){"@2", "@1"}, pats, &j, 0);
        char text[16];
        snprintf(text, sizeof text, "%d", i);
        put(space, "@2", text, false);
        quiesce_ok(space);
        assert_int_equal(atomic_load(&j.fired), i + 1);
        assert_string_equal(j.last[0], text);
        assert_string_equal(j.last[1], "\"forever\"");
    }
    counts(space, "@1", 1, 0);
    counts(space, "@2", 0, 0);
    baton_space_destroy(space);
    baton_pattern_destroy(any);
}

/* Regression 3: listing a join's channels in another order chooses the same data, reported in
 * the caller's order. */
static void test_join_order(void **state)
{
    (void)state;
    baton_pattern *even = bt_pattern("0 | 2 | 4 | 6");
    baton_pattern *any = bt_pattern("_");
    const char *names[4] = {"@1", "\"x\"", "(1, 2)", "@77"};
    for (int perm = 0; perm < 2; perm++) {
        baton_space *space = space_new();
        for (int c = 0; c < 4; c++)
            for (int v = 1; v <= 4; v++) {
                char text[16];
                snprintf(text, sizeof text, "%d", c * 10 + v);
                put(space, names[c], text, false);
            }
        put(space, names[2], "4", false);
        recorder r = {0};
        if (perm == 0) {
            baton_pattern *pats[4] = {any, any, even, any};
            take(space, 4, names, pats, &r, 0);
            quiesce_ok(space);
            assert_string_equal(r.last[0], "1");
            assert_string_equal(r.last[1], "11");
            assert_string_equal(r.last[2], "4");
            assert_string_equal(r.last[3], "31");
        } else {
            const char *reversed[4] = {names[3], names[2], names[1], names[0]};
            baton_pattern *pats[4] = {any, even, any, any};
            take(space, 4, reversed, pats, &r, 0);
            quiesce_ok(space);
            assert_string_equal(r.last[0], "31");
            assert_string_equal(r.last[1], "4");
            assert_string_equal(r.last[2], "11");
            assert_string_equal(r.last[3], "1");
        }
        assert_int_equal(atomic_load(&r.fired), 1);
        counts(space, names[2], 4, 0);
        baton_space_destroy(space);
    }
    baton_pattern_destroy(even);
    baton_pattern_destroy(any);
}

static void test_persistent_consumer(void **state)
{
    (void)state;
    baton_pattern *p = bt_pattern("Int");
    baton_space *space = space_new();
    recorder r = {0};
    for (int i = 0; i < 5; i++)
        put(space, "@1", "1", false);
    put(space, "@1", "\"no\"", false);
    take(space, 1, (const char *[]){"@1"}, &p, &r, BATON_CONSUME_PERSISTENT);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&r.fired), 5);
    counts(space, "@1", 1, 1);
    for (int i = 0; i < 10; i++)
        put(space, "@1", "2", false);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&r.fired), 15);
    counts(space, "@1", 1, 1);
    baton_space_destroy(space); /* frees the waiting persistent consumer */
    baton_pattern_destroy(p);
}

static void test_peek(void **state)
{
    (void)state;
    baton_pattern *p = bt_pattern("_");
    baton_space *space = space_new();
    recorder peeker = {0}, taker = {0};
    put(space, "@1", "1", false);
    take(space, 1, (const char *[]){"@1"}, &p, &peeker, BATON_CONSUME_PEEK);
    take(space, 1, (const char *[]){"@1"}, &p, &peeker, BATON_CONSUME_PEEK);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&peeker.fired), 2);
    counts(space, "@1", 1, 0);
    take(space, 1, (const char *[]){"@1"}, &p, &taker, 0);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&taker.fired), 1);
    counts(space, "@1", 0, 0);
    baton_space_destroy(space);
    baton_pattern_destroy(p);
}

/* A chain of hops: each continuation consumes on the next name, then produces on it. */
typedef struct hop_ctx {
    baton_space *space;
    baton_pattern *pattern;
    atomic_int hops;
    int limit;
} hop_ctx;

static int hop_fn(void *ctx, const baton_match *match)
{
    hop_ctx *h = ctx;
    int64_t i = baton_view_int(match->data[0]);
    BT_CHECK(i == atomic_load(&h->hops));
    atomic_fetch_add(&h->hops, 1);
    if (i + 1 >= h->limit)
        return 0;
    baton_value_builder *b = NULL;
    baton_value *channel = NULL, *datum = NULL;
    BT_CHECK(baton_value_builder_create(&b) == 0);
    BT_CHECK(baton_value_add_name(b, (uint64_t)i + 1) == 0 && baton_value_finish(b, &channel) == 0);
    BT_CHECK(baton_value_add_int(b, i + 1) == 0 && baton_value_finish(b, &datum) == 0);
    baton_value_view cv = baton_value_as_view(channel);
    int rc = baton_space_consume(h->space, &cv, &h->pattern, 1, hop_fn, h, 0, NULL);
    if (rc == 0)
        rc = baton_space_produce(h->space, cv, baton_value_as_view(datum), false);
    baton_value_destroy(channel);
    baton_value_destroy(datum);
    baton_value_builder_destroy(b);
    return rc;
}

static void test_chain_of_hops(void **state)
{
    (void)state;
    baton_space *space = space_new();
    hop_ctx h = {space, bt_pattern("Int"), 0, 1000};
    baton_value *c = bt_value("@0");
    baton_value_view cv = baton_value_as_view(c);
    bt_assert_rc(baton_space_consume(space, &cv, &h.pattern, 1, hop_fn, &h, 0, NULL), 0);
    put(space, "@0", "0", false);
    quiesce_ok(space);
    assert_int_equal(atomic_load(&h.hops), 1000);
    counts(space, "@999", 0, 0);
    baton_value_destroy(c);
    baton_space_destroy(space);
    baton_pattern_destroy(h.pattern);
}

static int failing_fn(void *ctx, const baton_match *match)
{
    (void)ctx;
    (void)match;
    return BATON_EIO;
}

static void test_errors(void **state)
{
    (void)state;
    baton_space *space = space_new();
    baton_pattern *any = bt_pattern("_");
    baton_pattern *pats[2] = {any, any};
    baton_value *a = bt_value("@1");
    baton_value_view views[2] = {baton_value_as_view(a), baton_value_as_view(a)};
    bt_assert_rc(baton_space_consume(space, views, pats, 2, record_fn, NULL, 0, NULL),
                 BATON_EINVAL);
    bt_assert_rc(baton_space_consume(space, views, pats, 0, record_fn, NULL, 0, NULL),
                 BATON_EINVAL);
    bt_assert_rc(baton_space_consume(space, views, pats, 1, NULL, NULL, 0, NULL), BATON_EINVAL);
    bt_assert_rc(baton_space_consume(space, views, pats, 1, record_fn, NULL, 8, NULL),
                 BATON_EINVAL);
    baton_value_view bad = {(const uint8_t *)"\x03\x00", 2};
    bt_assert_rc(baton_space_produce(space, bad, views[0], false), BATON_EINVAL);
    bt_assert_rc(baton_space_produce(space, views[0], bad, false), BATON_EINVAL);
    bt_assert_rc(baton_space_create(NULL, NULL), BATON_EINVAL);
    counts(space, "@1", 0, 0);
    uint64_t n1 = baton_space_fresh_name(space), n2 = baton_space_fresh_name(space);
    assert_true(n1 != n2 && n1 != 0 && n2 != 0);
    /* A continuation's error comes back from quiesce, once. */
    uint64_t id = 0;
    bt_assert_rc(baton_space_consume(space, views, pats, 1, failing_fn, NULL, 0, &id), 0);
    assert_true(id != 0);
    put(space, "@1", "1", false);
    bt_assert_rc(baton_space_quiesce(space), BATON_EIO);
    quiesce_ok(space);
    baton_value_destroy(a);
    baton_space_destroy(space);
    baton_pattern_destroy(any);
}

/* ---- stress ---- */

#define ST_PATTERNS 4
static const char *const st_pattern_text[ST_PATTERNS] = {"(0, x)", "(1 | 2, _)", "(_, x)", "Tuple"};

typedef struct st_consumer {
    unsigned flags;
    size_t n;
    int chans[3];
    int pats[3];
    atomic_int fired;
} st_consumer;

typedef struct st_datum {
    int channel;
    int kind;
    bool persistent;
    bool made;
    atomic_int taken;
} st_datum;

typedef struct stress {
    baton_space *space;
    baton_pattern *patterns[ST_PATTERNS];
    baton_value *channels[64];
    int n_channels;
    size_t ops_per_thread;
    st_consumer *consumers;
    st_datum *data;
    atomic_int next_consumer;
    atomic_int next_datum;
    atomic_int errors;
} stress;

static int st_fn(void *ctx, const baton_match *match)
{
    st_consumer *k = ctx;
    int prior = atomic_fetch_add(&k->fired, 1);
    if (!(k->flags & BATON_CONSUME_PERSISTENT) && prior != 0)
        return BATON_EINVAL; /* fired twice */
    if (match->n_channels != k->n)
        return BATON_EINVAL;
    return 0;
}

static stress *g_stress;

static int st_check_fn(void *ctx, const baton_match *match)
{
    st_consumer *k = ctx;
    for (size_t i = 0; i < match->n_channels; i++) {
        int64_t id = baton_view_int(baton_view_element(match->data[i], 1));
        st_datum *d = &g_stress->data[id];
        if (d->channel != k->chans[i])
            return BATON_EINVAL;
        if (!(k->flags & BATON_CONSUME_PEEK) && !d->persistent &&
            atomic_fetch_add(&d->taken, 1) != 0)
            return BATON_EINVAL; /* taken twice */
    }
    return st_fn(ctx, match);
}

static void *st_thread(void *arg)
{
    stress *s = arg;
    bt_rng rng = bt_rng_seed((uint64_t)(uintptr_t)&rng ^ bt_now_ns());
    baton_value_builder *b = NULL;
    BT_CHECK(baton_value_builder_create(&b) == 0);
    for (size_t op = 0; op < s->ops_per_thread; op++) {
        if (bt_rng_below(&rng, 2) == 0) {
            int id = atomic_fetch_add(&s->next_datum, 1);
            st_datum *d = &s->data[id];
            d->channel = (int)bt_rng_below(&rng, (uint64_t)s->n_channels);
            d->kind = (int)bt_rng_below(&rng, 4);
            d->persistent = bt_rng_below(&rng, 20) == 0;
            d->made = true;
            baton_value *v = NULL;
            BT_CHECK(baton_value_begin_tuple(b) == 0 && baton_value_add_int(b, d->kind) == 0 &&
                     baton_value_add_int(b, id) == 0 && baton_value_end(b) == 0 &&
                     baton_value_finish(b, &v) == 0);
            int rc = baton_space_produce(s->space, baton_value_as_view(s->channels[d->channel]),
                                         baton_value_as_view(v), d->persistent);
            BT_CHECK(rc == 0);
            baton_value_destroy(v);
        } else {
            int id = atomic_fetch_add(&s->next_consumer, 1);
            st_consumer *k = &s->consumers[id];
            uint64_t roll = bt_rng_below(&rng, 10);
            k->n = roll < 6 ? 1 : roll < 9 ? 2 : 3;
            if ((size_t)s->n_channels < k->n)
                k->n = (size_t)s->n_channels;
            uint64_t f = bt_rng_below(&rng, 20);
            k->flags = f == 0 ? BATON_CONSUME_PERSISTENT : f == 1 ? BATON_CONSUME_PEEK : 0;
            baton_value_view views[3];
            baton_pattern *pats[3];
            for (size_t i = 0; i < k->n; i++) {
                bool dup;
                do {
                    k->chans[i] = (int)bt_rng_below(&rng, (uint64_t)s->n_channels);
                    dup = false;
                    for (size_t j = 0; j < i; j++)
                        dup |= k->chans[j] == k->chans[i];
                } while (dup);
                k->pats[i] = (int)bt_rng_below(&rng, ST_PATTERNS);
                views[i] = baton_value_as_view(s->channels[k->chans[i]]);
                pats[i] = s->patterns[k->pats[i]];
            }
            int rc =
                baton_space_consume(s->space, views, pats, k->n, st_check_fn, k, k->flags, NULL);
            BT_CHECK(rc == 0);
        }
    }
    baton_value_builder_destroy(b);
    return NULL;
}

static bool st_match(int pattern, int kind)
{
    switch (pattern) {
    case 0:
        return kind == 0;
    case 1:
        return kind == 1 || kind == 2;
    default:
        return true;
    }
}

static void run_stress(int n_channels, size_t total_ops)
{
    enum { THREADS = 16 };
    stress *s = calloc(1, sizeof *s);
    g_stress = s;
    s->space = space_new();
    s->n_channels = n_channels;
    s->ops_per_thread = total_ops / THREADS;
    size_t cap = s->ops_per_thread * THREADS + 1;
    s->consumers = calloc(cap, sizeof *s->consumers);
    s->data = calloc(cap, sizeof *s->data);
    assert_non_null(s->consumers);
    assert_non_null(s->data);
    for (int i = 0; i < ST_PATTERNS; i++)
        s->patterns[i] = bt_pattern(st_pattern_text[i]);
    for (int c = 0; c < n_channels; c++) {
        char text[16];
        snprintf(text, sizeof text, "@%d", c + 1000);
        s->channels[c] = bt_value(text);
    }
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, st_thread, s), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    bt_assert_rc(baton_space_quiesce(s->space), 0);

    /* Conservation and stability against the model. */
    size_t stored[64] = {0}, waiting[64] = {0};
    size_t candidates[64][ST_PATTERNS] = {{0}};
    bool persistent_candidates[64][ST_PATTERNS] = {{false}};
    int n_data = atomic_load(&s->next_datum), n_consumers = atomic_load(&s->next_consumer);
    for (int i = 0; i < n_data; i++) {
        st_datum *d = &s->data[i];
        assert_true(d->made);
        int taken = atomic_load(&d->taken);
        assert_true(taken <= 1);
        if (d->persistent || taken == 0) {
            stored[d->channel]++;
            for (int p = 0; p < ST_PATTERNS; p++) {
                if (!st_match(p, d->kind))
                    continue;
                candidates[d->channel][p]++;
                persistent_candidates[d->channel][p] |= d->persistent;
            }
        }
    }
    size_t violations = 0;
    for (int i = 0; i < n_consumers; i++) {
        st_consumer *k = &s->consumers[i];
        int fired = atomic_load(&k->fired);
        bool persistent = k->flags & BATON_CONSUME_PERSISTENT;
        if (!persistent)
            assert_true(fired <= 1);
        if (!persistent && fired == 1)
            continue;
        for (size_t c = 0; c < k->n; c++)
            waiting[k->chans[c]]++;
        /* Stability: a waiting consumer that could fire and remove something is a fault. */
        if (persistent && (k->flags & BATON_CONSUME_PEEK))
            continue;
        bool all = true, persistent_candidate = false;
        for (size_t c = 0; c < k->n; c++) {
            all &= candidates[k->chans[c]][k->pats[c]] > 0;
            persistent_candidate |= persistent_candidates[k->chans[c]][k->pats[c]];
        }
        if (all && !(persistent && persistent_candidate)) {
            if (violations++ < 5)
                print_message("consumer %d (n=%zu flags=%u fired=%d) matches stored data\n", i,
                              k->n, k->flags, fired);
        }
    }
    assert_int_equal(violations, 0);
    for (int c = 0; c < n_channels; c++) {
        size_t d = 0, k = 0;
        bt_assert_rc(
            baton_space_channel_counts(s->space, baton_value_as_view(s->channels[c]), &d, &k), 0);
        if (d != stored[c] || k != waiting[c])
            fail_msg("channel %d: %zu data / %zu consumers, model %zu / %zu", c, d, k, stored[c],
                     waiting[c]);
    }
    printf("# stress: %d channels, %d data, %d consumers\n", n_channels, n_data, n_consumers);
    baton_space_destroy(s->space);
    for (int i = 0; i < ST_PATTERNS; i++)
        baton_pattern_destroy(s->patterns[i]);
    for (int c = 0; c < n_channels; c++)
        baton_value_destroy(s->channels[c]);
    free(s->consumers);
    free(s->data);
    free(s);
}

static void test_stress_many_channels(void **state)
{
    (void)state;
    run_stress(64, bt_scaled(100000, 2000));
}

static void test_stress_few_channels(void **state)
{
    (void)state;
    run_stress(4, bt_scaled(20000, 1000));
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_match),
        cmocka_unit_test(test_no_match_waits),
        cmocka_unit_test(test_overlapping_joins),
        cmocka_unit_test(test_competing_joins),
        cmocka_unit_test(test_fired_join_unregisters),
        cmocka_unit_test(test_persistent_datum),
        cmocka_unit_test(test_join_order),
        cmocka_unit_test(test_persistent_consumer),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_chain_of_hops),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_stress_many_channels),
        cmocka_unit_test(test_stress_few_channels),
    };
    return cmocka_run_group_tests_name("space/core", tests, group_setup, group_teardown);
}
