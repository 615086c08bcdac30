/*
 * test_space_join.c — joins of any width (space.h, baton_space_consume: "n > 1 is a join", with
 * no limit on n but memory).
 *
 *  - widths: joins of 1, 2, 64, 65, 100 and 1000 channels, listed in a shuffled order, with a
 *    pattern per channel: a join waits until its last channel has a matching datum, then fires
 *    once with, per channel in the order it listed them, the oldest matching datum and its
 *    bindings; the oldest waiting join wins a produce; a join that finds every channel filled
 *    fires at once with the oldest data; the data it took are gone, the newer ones stay.
 *  - concurrent: overlapping joins of 1 to 1000 channels registered by 4 caller threads while
 *    they produce exactly the data the joins need, in random interleavings, on 1..16 workers:
 *    no deadlock (a watchdog), every join fires exactly once with one datum from each of its
 *    channels in its listed order, every datum is delivered exactly once, the space ends empty.
 *  - durable joins of 65, 100 and 1000 channels are in test_space_join_durable.c.
 *  - too wide: a count whose consumer could not be addressed fails with BATON_ENOMEM, naming the
 *    count, before the channel array is read; the same channel twice in a wide join fails with
 *    BATON_EINVAL naming the later place; an allocation failure while a 1000-channel join is
 *    made is BATON_ENOMEM; none of them registers anything or touches *consumer_id.
 */
#include "support/bt_common.h"

#include <stdint.h>

#include "core/alloc.h"
#include "support/bt_space_join.h"
#include "support/bt_space_stress.h"

static baton_space_stats stats_now(baton_space *space)
{
    baton_space_stats stats;
    memset(&stats, 0, sizeof stats);
    bt_assert_rc(baton_space_get_stats(space, &stats), 0);
    return stats;
}

/* ---- widths ---- */

/* What one join's continuation saw: per listed channel, the datum's (channel, serial) and, for
 * a binder pattern, the serial bound. */
typedef struct seen_join {
    size_t width;
    const int *listed; /* the channels in the order the consume listed them */
    atomic_int fired;
    int64_t *channel, *serial, *bound;
    size_t n_channels;
} seen_join;

static int seen_fn(void *ctx, const baton_match *match)
{
    seen_join *s = ctx;
    s->n_channels = match->n_channels;
    for (size_t i = 0; i < match->n_channels && i < s->width; i++) {
        BT_CHECK(bt_read_datum(match->data[i], &s->channel[i], &s->serial[i]));
        s->bound[i] = -1;
        if (i % 2 == 0) /* the pattern (_, x): one binder, the serial */
            s->bound[i] = baton_view_int(match->bindings[i][0]);
    }
    atomic_fetch_add(&s->fired, 1);
    return 0;
}

static seen_join *seen_new(size_t width, const int *listed)
{
    seen_join *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->width = width;
    s->listed = listed;
    s->channel = calloc(width, sizeof *s->channel);
    s->serial = calloc(width, sizeof *s->serial);
    s->bound = calloc(width, sizeof *s->bound);
    assert_true(s->channel != NULL && s->serial != NULL && s->bound != NULL);
    return s;
}

static void seen_free(seen_join *s)
{
    free(s->channel);
    free(s->serial);
    free(s->bound);
    free(s);
}

/* The join fired once, with serial `serial` from each of its channels in its listed order. */
static void seen_check(const seen_join *s, int64_t serial)
{
    assert_int_equal(atomic_load(&s->fired), 1);
    assert_int_equal(s->n_channels, s->width);
    for (size_t i = 0; i < s->width; i++) {
        if (s->channel[i] != s->listed[i] || s->serial[i] != serial ||
            (i % 2 == 0 && s->bound[i] != serial))
            fail_msg("width %zu, listed channel %zu: got (%" PRId64 ", %" PRId64 ") bound %" PRId64
                     ", expected (%d, %" PRId64 ")",
                     s->width, i, s->channel[i], s->serial[i], s->bound[i], s->listed[i], serial);
    }
}

static uint64_t consume_listed(baton_space *space, const bt_chans *c, const int *listed, size_t n,
                               baton_pattern *const *two, seen_join *s)
{
    baton_value_view *views = calloc(n, sizeof *views);
    baton_pattern **pats = calloc(n, sizeof *pats);
    assert_true(views != NULL && pats != NULL);
    for (size_t i = 0; i < n; i++) {
        views[i] = c->views[listed[i]];
        pats[i] = two[i % 2];
    }
    uint64_t id = 0;
    bt_assert_rc(baton_space_consume(space, views, pats, n, seen_fn, s, 0, &id), 0);
    free(views);
    free(pats);
    return id;
}

static void check_channel(baton_space *space, baton_value_view channel, size_t data,
                          size_t consumers)
{
    size_t d = 0, k = 0;
    bt_assert_rc(baton_space_channel_counts(space, channel, &d, &k), 0);
    assert_int_equal(d, data);
    assert_int_equal(k, consumers);
}

static void check_counts(baton_space *space, const bt_chans *c, size_t n, size_t data,
                         size_t consumers)
{
    for (size_t i = 0; i < n; i++) {
        size_t d = 0, k = 0;
        bt_assert_rc(baton_space_channel_counts(space, c->views[i], &d, &k), 0);
        if (d != data || k != consumers)
            fail_msg("channel %zu holds %zu data and %zu consumers, expected %zu and %zu", i, d, k,
                     data, consumers);
    }
}

static void test_widths(void **state)
{
    (void)state;
    static const size_t widths[] = {1, 2, 64, 65, 100, 1000};
    uint64_t seed = bt_now_ns();
    printf("# widths: seed %" PRIu64 "\n", seed);
    bt_rng rng = bt_rng_seed(seed);
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    /* Even listed positions bind the serial, odd ones only check its type. */
    baton_pattern *two[2] = {bt_pattern("(_, x)"), bt_pattern("(_, Int)")};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        size_t n = widths[w];
        baton_space *space = bt_space_new();
        bt_chans c = bt_chans_make(b, n);
        int *listed = calloc(n, sizeof *listed), *reversed = calloc(n, sizeof *reversed);
        assert_true(listed != NULL && reversed != NULL);
        for (size_t i = 0; i < n; i++)
            listed[i] = (int)i;
        bt_shuffle(listed, n, &rng);
        for (size_t i = 0; i < n; i++)
            reversed[i] = listed[n - 1 - i];
        seen_join *first = seen_new(n, listed), *second = seen_new(n, reversed);
        seen_join *third = seen_new(n, reversed), *fourth = seen_new(n, listed);

        /* Serial 0 on every channel but the last listed; two joins wait, the older first. */
        for (size_t i = 0; i + 1 < n; i++)
            bt_produce_datum(space, b, &c, listed[i], 0, false);
        (void)consume_listed(space, &c, listed, n, two, first);
        (void)consume_listed(space, &c, reversed, n, two, second);
        bt_assert_rc(baton_space_quiesce(space), 0);
        assert_int_equal(atomic_load(&first->fired), 0);
        assert_int_equal(atomic_load(&second->fired), 0);
        check_channel(space, c.views[listed[n - 1]], 0, 2);
        if (n > 1)
            check_channel(space, c.views[listed[0]], 1, 2);
        /* The last channel's datum completes the older join only. */
        bt_produce_datum(space, b, &c, listed[n - 1], 0, false);
        bt_assert_rc(baton_space_quiesce(space), 0);
        seen_check(first, 0);
        assert_int_equal(atomic_load(&second->fired), 0);
        check_counts(space, &c, n, 0, 1);
        /* Serial 1 everywhere: the second join fires at its last channel's datum. */
        for (size_t i = 0; i < n; i++)
            bt_produce_datum(space, b, &c, listed[i], 1, false);
        bt_assert_rc(baton_space_quiesce(space), 0);
        seen_check(second, 1);
        check_counts(space, &c, n, 0, 0);

        /* Data first: serials 2 and 3 everywhere; a join takes the oldest at once, the next
         * join the newer ones, whatever order each lists its channels in. */
        for (size_t i = 0; i < n; i++)
            bt_produce_datum(space, b, &c, (int)i, 2, false);
        for (size_t i = 0; i < n; i++)
            bt_produce_datum(space, b, &c, (int)(n - 1 - i), 3, false);
        (void)consume_listed(space, &c, reversed, n, two, third);
        bt_assert_rc(baton_space_quiesce(space), 0);
        seen_check(third, 2);
        check_counts(space, &c, n, 1, 0);
        (void)consume_listed(space, &c, listed, n, two, fourth);
        bt_assert_rc(baton_space_quiesce(space), 0);
        seen_check(fourth, 3);
        baton_space_stats stats;
        memset(&stats, 0, sizeof stats);
        bt_assert_rc(baton_space_get_stats(space, &stats), 0);
        assert_int_equal(stats.data, 0);
        assert_int_equal(stats.consumers, 0);

        seen_free(first);
        seen_free(second);
        seen_free(third);
        seen_free(fourth);
        free(listed);
        free(reversed);
        baton_space_destroy(space);
        bt_chans_free(&c);
    }
    baton_pattern_destroy(two[0]);
    baton_pattern_destroy(two[1]);
    baton_value_builder_destroy(b);
}

/* A persistent wide join over persistent data fires once and stays; a peeking wide join reads
 * without taking; both with the widths that used to be refused. */
static void test_wide_persistent_and_peek(void **state)
{
    (void)state;
    static const size_t widths[] = {65, 1000};
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    baton_pattern *two[2] = {bt_pattern("(_, x)"), bt_pattern("(_, Int)")};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        size_t n = widths[w];
        baton_space *space = bt_space_new();
        bt_chans c = bt_chans_make(b, n);
        int *listed = calloc(n, sizeof *listed);
        assert_non_null(listed);
        for (size_t i = 0; i < n; i++)
            listed[i] = (int)(n - 1 - i);
        seen_join *peek = seen_new(n, listed), *keep = seen_new(n, listed);
        for (size_t i = 0; i < n; i++)
            bt_produce_datum(space, b, &c, (int)i, 7, false);
        baton_value_view *views = calloc(n, sizeof *views);
        baton_pattern **pats = calloc(n, sizeof *pats);
        assert_true(views != NULL && pats != NULL);
        for (size_t i = 0; i < n; i++) {
            views[i] = c.views[listed[i]];
            pats[i] = two[i % 2];
        }
        bt_assert_rc(
            baton_space_consume(space, views, pats, n, seen_fn, peek, BATON_CONSUME_PEEK, NULL), 0);
        bt_assert_rc(baton_space_quiesce(space), 0);
        seen_check(peek, 7);
        check_counts(space, &c, n, 1, 0); /* peeked: still there */
        /* A persistent join fires on every complete set and stays registered. */
        bt_assert_rc(baton_space_consume(space, views, pats, n, seen_fn, keep,
                                         BATON_CONSUME_PERSISTENT, NULL),
                     0);
        bt_assert_rc(baton_space_quiesce(space), 0);
        seen_check(keep, 7);
        check_counts(space, &c, n, 0, 1);
        for (size_t i = 0; i < n; i++)
            bt_produce_datum(space, b, &c, (int)i, 8, false);
        bt_assert_rc(baton_space_quiesce(space), 0);
        assert_int_equal(atomic_load(&keep->fired), 2);
        check_counts(space, &c, n, 0, 1);
        free(views);
        free(pats);
        seen_free(peek);
        seen_free(keep);
        free(listed);
        baton_space_destroy(space);
        bt_chans_free(&c);
    }
    baton_pattern_destroy(two[0]);
    baton_pattern_destroy(two[1]);
    baton_value_builder_destroy(b);
}

/* ---- concurrent ---- */

enum { C_CHANNELS = 1000, C_THREADS = 4 };

typedef struct c_join {
    size_t width;
    int *listed;
    atomic_int fired;
} c_join;

typedef struct c_round {
    baton_space *space;
    bt_chans *c;
    baton_pattern *any;
    c_join *joins;
    size_t n_joins;
    /* delivered[channel][serial]: how many times that datum reached a continuation. */
    atomic_int **delivered;
    int *per_channel; /* how many data each channel gets: the joins that list it */
    /* Per thread: its list of operations, >= 0 a produce of that index into produces, < 0 the
     * consume of join -1 - op. */
    int *ops[C_THREADS];
    size_t n_ops[C_THREADS];
    int *produce_channel, *produce_serial;
} c_round;

typedef struct c_ctx {
    c_round *round;
    size_t join;
} c_ctx;

static c_ctx *g_ctx;

static int c_fire(void *ctx, const baton_match *match)
{
    c_ctx *x = ctx;
    c_round *r = x->round;
    c_join *j = &r->joins[x->join];
    BT_CHECK_MSG(match->n_channels == j->width, "join %zu: %zu channels in its match, width %zu",
                 x->join, match->n_channels, j->width);
    for (size_t i = 0; i < match->n_channels && i < j->width; i++) {
        int64_t channel = -1, serial = -1;
        if (!bt_read_datum(match->data[i], &channel, &serial) || channel != j->listed[i] ||
            serial < 0 || serial >= r->per_channel[channel]) {
            BT_CHECK_MSG(false,
                         "join %zu, listed %zu: datum (%" PRId64 ", %" PRId64
                         ") is not from channel %d",
                         x->join, i, channel, serial, j->listed[i]);
            continue;
        }
        int before = atomic_fetch_add(&r->delivered[channel][serial], 1);
        BT_CHECK_MSG(before == 0, "datum (%" PRId64 ", %" PRId64 ") delivered twice", channel,
                     serial);
    }
    atomic_fetch_add(&j->fired, 1);
    return 0;
}

typedef struct c_thread {
    c_round *round;
    unsigned index;
} c_thread;

static void *c_main(void *arg)
{
    c_thread *t = arg;
    c_round *r = t->round;
    baton_value_builder *b = NULL;
    BT_CHECK(baton_value_builder_create(&b) == 0);
    for (size_t k = 0; b != NULL && k < r->n_ops[t->index]; k++) {
        int op = r->ops[t->index][k];
        if (op >= 0) {
            baton_value *d = bt_datum_value(b, r->produce_channel[op], r->produce_serial[op]);
            BT_CHECK(d != NULL);
            if (d == NULL)
                break;
            BT_CHECK(baton_space_produce(r->space, r->c->views[r->produce_channel[op]],
                                         baton_value_as_view(d), false) == 0);
            baton_value_destroy(d);
            continue;
        }
        size_t join = (size_t)(-1 - op);
        c_join *j = &r->joins[join];
        baton_value_view *views = malloc(j->width * sizeof *views);
        baton_pattern **pats = malloc(j->width * sizeof *pats);
        BT_CHECK(views != NULL && pats != NULL);
        if (views != NULL && pats != NULL) {
            for (size_t i = 0; i < j->width; i++) {
                views[i] = r->c->views[j->listed[i]];
                pats[i] = r->any;
            }
            BT_CHECK(baton_space_consume(r->space, views, pats, j->width, c_fire, &g_ctx[join], 0,
                                         NULL) == 0);
        }
        free(views);
        free(pats);
    }
    baton_value_builder_destroy(b);
    return NULL;
}

static void c_round_run(bt_chans *c, baton_pattern *any, bt_rng *rng, size_t n_joins)
{
    static const size_t widths[] = {1000, 100, 65, 64, 2, 1, 100, 1000, 65};
    c_round r;
    memset(&r, 0, sizeof r);
    r.space = bt_space_new();
    r.c = c;
    r.any = any;
    r.n_joins = n_joins;
    r.joins = calloc(n_joins, sizeof *r.joins);
    g_ctx = calloc(n_joins, sizeof *g_ctx);
    r.per_channel = calloc(C_CHANNELS, sizeof *r.per_channel);
    r.delivered = calloc(C_CHANNELS, sizeof *r.delivered);
    assert_true(r.joins && g_ctx && r.per_channel && r.delivered);
    int *perm = malloc(C_CHANNELS * sizeof *perm);
    assert_non_null(perm);
    size_t total = 0;
    for (size_t j = 0; j < n_joins; j++) {
        c_join *cj = &r.joins[j];
        cj->width = widths[(j + bt_rng_below(rng, 3)) % (sizeof widths / sizeof widths[0])];
        cj->listed = malloc(cj->width * sizeof *cj->listed);
        assert_non_null(cj->listed);
        for (int i = 0; i < C_CHANNELS; i++)
            perm[i] = i;
        bt_shuffle(perm, C_CHANNELS, rng);
        memcpy(cj->listed, perm, cj->width * sizeof *cj->listed);
        for (size_t i = 0; i < cj->width; i++)
            r.per_channel[cj->listed[i]]++;
        total += cj->width;
        g_ctx[j] = (c_ctx){&r, j};
    }
    /* Exactly the data the joins need: channel c gets one datum per join that lists it, so at
     * quiescence every join has fired (a waiting join would find a datum on each channel). */
    r.produce_channel = malloc(total * sizeof(int));
    r.produce_serial = malloc(total * sizeof(int));
    assert_true(r.produce_channel != NULL && r.produce_serial != NULL);
    size_t p = 0;
    for (int ch = 0; ch < C_CHANNELS; ch++) {
        r.delivered[ch] = calloc((size_t)r.per_channel[ch] + 1, sizeof(atomic_int));
        assert_non_null(r.delivered[ch]);
        for (int s = 0; s < r.per_channel[ch]; s++) {
            r.produce_channel[p] = ch;
            r.produce_serial[p] = s;
            p++;
        }
    }
    /* Every operation to a random thread, in a random order per thread. */
    int *all = malloc((total + n_joins) * sizeof *all);
    assert_non_null(all);
    for (size_t i = 0; i < total; i++)
        all[i] = (int)i;
    for (size_t j = 0; j < n_joins; j++)
        all[total + j] = -1 - (int)j;
    bt_shuffle(all, total + n_joins, rng);
    for (unsigned t = 0; t < C_THREADS; t++) {
        r.ops[t] = malloc((total + n_joins) * sizeof(int));
        assert_non_null(r.ops[t]);
    }
    for (size_t i = 0; i < total + n_joins; i++) {
        unsigned t = (unsigned)bt_rng_below(rng, C_THREADS);
        r.ops[t][r.n_ops[t]++] = all[i];
    }
    pthread_t threads[C_THREADS];
    c_thread args[C_THREADS];
    for (unsigned t = 0; t < C_THREADS; t++) {
        args[t] = (c_thread){&r, t};
        assert_int_equal(pthread_create(&threads[t], NULL, c_main, &args[t]), 0);
    }
    for (unsigned t = 0; t < C_THREADS; t++)
        pthread_join(threads[t], NULL);
    bt_assert_rc(baton_space_quiesce(r.space), 0);
    bt_assert_no_thread_failures();
    for (size_t j = 0; j < n_joins; j++)
        if (atomic_load(&r.joins[j].fired) != 1)
            fail_msg("join %zu (width %zu) fired %d times", j, r.joins[j].width,
                     atomic_load(&r.joins[j].fired));
    for (int ch = 0; ch < C_CHANNELS; ch++)
        for (int s = 0; s < r.per_channel[ch]; s++)
            if (atomic_load(&r.delivered[ch][s]) != 1)
                fail_msg("datum (%d, %d) delivered %d times", ch, s,
                         atomic_load(&r.delivered[ch][s]));
    baton_space_stats stats;
    memset(&stats, 0, sizeof stats);
    bt_assert_rc(baton_space_get_stats(r.space, &stats), 0);
    assert_int_equal(stats.data, 0);
    assert_int_equal(stats.consumers, 0);
    baton_space_destroy(r.space);
    for (unsigned t = 0; t < C_THREADS; t++)
        free(r.ops[t]);
    for (size_t j = 0; j < n_joins; j++)
        free(r.joins[j].listed);
    for (int ch = 0; ch < C_CHANNELS; ch++)
        free(r.delivered[ch]);
    free(all);
    free(perm);
    free(r.produce_channel);
    free(r.produce_serial);
    free(r.delivered);
    free(r.per_channel);
    free(r.joins);
    free(g_ctx);
    g_ctx = NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    uint64_t seed = bt_now_ns();
    size_t rounds = bt_scaled(3, 1), n_joins = 10;
    printf("# concurrent: %zu rounds of %zu joins, %d caller threads, %u workers, seed %" PRIu64
           "\n",
           rounds, n_joins, C_THREADS, g_workers, seed);
    bt_rng rng = bt_rng_seed(seed);
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    bt_chans c = bt_chans_make(b, C_CHANNELS);
    baton_pattern *any = bt_pattern("(Int, Int)");
    bt_watchdog dog;
    bt_watchdog_start(&dog, 240, "wide joins under concurrent callers (a deadlock?)");
    for (size_t round = 0; round < rounds; round++)
        c_round_run(&c, any, &rng, n_joins);
    bt_watchdog_stop(&dog);
    baton_pattern_destroy(any);
    bt_chans_free(&c);
    baton_value_builder_destroy(b);
}

/* ---- too wide ---- */

static int never_fn(void *ctx, const baton_match *match)
{
    (void)ctx;
    (void)match;
    BT_CHECK_MSG(false, "a refused consume fired");
    return 0;
}

static void test_too_wide(void **state)
{
    (void)state;
    baton_space *space = bt_space_new();
    baton_value *one = bt_value("@1");
    baton_value_view views[1] = {baton_value_as_view(one)};
    baton_pattern *any = bt_pattern("_");
    baton_pattern *pats[1] = {any};
    /* The arrays hold one entry: a count that cannot be addressed must be refused before they are
     * read (ASan would see the read). */
    static const size_t counts[] = {SIZE_MAX, SIZE_MAX / 2, SIZE_MAX / 64};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        uint64_t id = 77;
        int rc = baton_space_consume(space, views, pats, counts[i], never_fn, NULL, 0, &id);
        assert_int_equal(rc, BATON_ENOMEM);
        char expect[64];
        snprintf(expect, sizeof expect, "%zu channels", counts[i]);
        if (strstr(baton_last_error_message(), expect) == NULL)
            fail_msg("message \"%s\" does not name the count (%s)", baton_last_error_message(),
                     expect);
        assert_int_equal(id, 77);
    }
    bt_assert_rc(baton_space_quiesce(space), 0);
    baton_space_stats stats = stats_now(space);
    assert_int_equal(stats.consumers, 0);
    baton_space_destroy(space);
    baton_pattern_destroy(any);
    baton_value_destroy(one);
}

/* The same channel twice in a join of any width: BATON_EINVAL naming the later of the first
 * repeat's two places; nothing registered, *consumer_id untouched, fn never run. */
static void test_listed_twice(void **state)
{
    (void)state;
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    bt_chans c = bt_chans_make(b, 200);
    baton_pattern *any = bt_pattern("_");
    enum { N = 150 };
    baton_value_view views[N];
    baton_pattern *pats[N];
    /* Channel 37 at 37, 120 and 90; channel 5 at 5 and 140: the first repeat is at 90. */
    for (size_t i = 0; i < N; i++) {
        views[i] = c.views[i];
        pats[i] = any;
    }
    views[120] = c.views[37];
    views[90] = c.views[37];
    views[140] = c.views[5];
    baton_space *space = bt_space_new();
    uint64_t id = 77;
    int rc = baton_space_consume(space, views, pats, N, never_fn, NULL, 0, &id);
    assert_int_equal(rc, BATON_EINVAL);
    assert_string_equal(baton_last_error_message(),
                        "baton_space_consume: channel 90 is listed twice");
    assert_int_equal(id, 77);
    /* Small joins say the same. */
    baton_value_view two[2] = {c.views[3], c.views[3]};
    rc = baton_space_consume(space, two, pats, 2, never_fn, NULL, 0, &id);
    assert_int_equal(rc, BATON_EINVAL);
    assert_string_equal(baton_last_error_message(),
                        "baton_space_consume: channel 1 is listed twice");
    assert_int_equal(id, 77);
    /* Nothing waits: data produced on those channels stay. */
    bt_produce_datum(space, b, &c, 37, 0, false);
    bt_produce_datum(space, b, &c, 3, 0, false);
    bt_assert_rc(baton_space_quiesce(space), 0);
    bt_assert_no_thread_failures();
    baton_space_stats stats = stats_now(space);
    assert_int_equal(stats.consumers, 0);
    assert_int_equal(stats.data, 2);
    baton_space_destroy(space);
    baton_pattern_destroy(any);
    bt_chans_free(&c);
    baton_value_builder_destroy(b);
}

/* Allocation failures while a 1000-channel join is made: BATON_ENOMEM, nothing registered and
 * *consumer_id untouched each time (ASan: nothing leaked), until enough allocations are allowed;
 * then the one join that was made fires once. */
static void test_wide_out_of_memory(void **state)
{
    (void)state;
    enum { N = 1000 };
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    bt_chans c = bt_chans_make(b, N);
    baton_pattern *two[2] = {bt_pattern("(_, x)"), bt_pattern("(_, Int)")};
    int *listed = calloc(N, sizeof *listed);
    assert_non_null(listed);
    for (int i = 0; i < N; i++)
        listed[i] = N - 1 - i;
    baton_value_view *views = calloc(N, sizeof *views);
    baton_pattern **pats = calloc(N, sizeof *pats);
    assert_true(views != NULL && pats != NULL);
    for (int i = 0; i < N; i++) {
        views[i] = c.views[listed[i]];
        pats[i] = two[i % 2];
    }
    seen_join *s = seen_new(N, listed);
    baton_space *space = bt_space_new();
    long failures = 0;
    for (long n = 0;; n++) {
        uint64_t id = 77;
        baton__alloc_fail_after(n);
        int rc = baton_space_consume(space, views, pats, N, seen_fn, s, 0, &id);
        baton__alloc_fail_after(-1);
        if (rc == 0)
            break;
        if (rc != BATON_ENOMEM)
            fail_msg("allocation %ld failing: %s: %s", n, baton_err_name(rc),
                     baton_last_error_message());
        assert_int_equal(id, 77);
        assert_int_equal(stats_now(space).consumers, 0);
        failures++;
    }
    assert_true(failures > 0);
    assert_int_equal(stats_now(space).consumers, 1);
    for (int i = 0; i < N; i++)
        bt_produce_datum(space, b, &c, i, 4, false);
    bt_assert_rc(baton_space_quiesce(space), 0);
    seen_check(s, 4);
    baton_space_destroy(space);
    seen_free(s);
    free(views);
    free(pats);
    free(listed);
    baton_pattern_destroy(two[0]);
    baton_pattern_destroy(two[1]);
    bt_chans_free(&c);
    baton_value_builder_destroy(b);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_widths),
        cmocka_unit_test(test_wide_persistent_and_peek),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_too_wide),
        cmocka_unit_test(test_listed_twice),
        cmocka_unit_test(test_wide_out_of_memory),
    };
    return cmocka_run_group_tests_name("space/join", tests, group_setup, group_teardown);
}
