/*
 * test_space_join_durable.c — wide joins through the log (space.h: "the log records joins of any
 * width"; baton_space_open restores "the waiting consumers (by id, with their patterns, flags
 * and bodies)"): a 100- and a 1000-channel join waiting in a log come back at reopen (channels in
 * their listed order, patterns, body), also through a compaction, and fire when their last datum
 * comes; a fired 65-channel join's FIRE record removes its 65 data at replay; the joins that fired
 * after a reopen are gone, with their data, at the next one. And baton_space_open's "a reopen
 * fires only what the log owes" at width 100: persistent joins (waiting, peeking, made after the
 * data) over persistent data, reopened three times in ASYNC and in SYNC, fire nothing, append
 * nothing and leave data.mdb byte for byte; a new datum fires each once, and reopens after it
 * fire nothing again.
 */
#include "support/bt_common.h"

#include "support/bt_space_durable.h"
#include "support/bt_space_join.h"

static unsigned g_workers;

/* ---- durable ---- */

/* Registers a join over channels first..first+n listed in reverse, patterns alternating, with a
 * body and flags; returns its id. */
static uint64_t durable_join_flags(baton_space *space, const bt_chans *c, int first, size_t n,
                                   baton_pattern *const *two, const char *body, bt_kslot *slot,
                                   unsigned flags)
{
    baton_value_view *views = calloc(n, sizeof *views);
    baton_pattern **pats = calloc(n, sizeof *pats);
    assert_true(views != NULL && pats != NULL);
    for (size_t i = 0; i < n; i++) {
        views[i] = c->views[first + (int)(n - 1 - i)];
        pats[i] = two[i % 2];
    }
    baton_value *b = bt_value(body);
    uint64_t id = 0;
    bt_assert_rc(baton_space_consume_body(space, views, pats, n, bt_kslot_fn, slot, flags,
                                          baton_value_as_view(b), &id),
                 0);
    baton_value_destroy(b);
    free(views);
    free(pats);
    return id;
}

static uint64_t durable_join(baton_space *space, const bt_chans *c, int first, size_t n,
                             baton_pattern *const *two, const char *body, bt_kslot *slot)
{
    return durable_join_flags(space, c, first, n, two, body, slot, 0);
}

/* The waiting consumer id as visit reports it: channels in listed order with their patterns. */
typedef struct wide_visit {
    uint64_t id;
    int first;
    size_t n;
    bool found, same;
} wide_visit;

static int wide_visit_fn(void *ctx, const baton_space_consumer_info *info)
{
    wide_visit *w = ctx;
    if (info->id != w->id)
        return 0;
    w->found = true;
    w->same = info->n_channels == w->n;
    for (size_t i = 0; w->same && i < w->n; i++) {
        baton_value_view ch = baton_view_element(info->channels[i], 1);
        char text[32];
        size_t length = 0;
        w->same = baton_view_int(ch) == w->first + (int64_t)(w->n - 1 - i) &&
                  baton_pattern_print(info->patterns[i], text, sizeof text, &length) == 0 &&
                  strcmp(text, i % 2 == 0 ? "(_, x)" : "(_, Int)") == 0;
    }
    return 0;
}

static void expect_waiting(baton_space *space, uint64_t id, int first, size_t n)
{
    wide_visit w = {id, first, n, false, false};
    bt_assert_rc(baton_space_visit(space, NULL, wide_visit_fn, &w), 0);
    assert_true(w.found);
    assert_true(w.same);
}

static void test_durable(void **state)
{
    (void)state;
    enum { WIDE = 100, WIDER = 1000, FIRED = 65 };
    char dir[256];
    bt_space_tmpdir(dir, sizeof dir);
    baton_pool *pool = bt_pool_new(g_workers);
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    /* Channels 0..99: the 100-join; 100..1099: the 1000-join; 1100..1164: the fired 65-join. */
    bt_chans c = bt_chans_make(b, WIDE + WIDER + FIRED);
    baton_pattern *two[2] = {bt_pattern("(_, x)"), bt_pattern("(_, Int)")};
    bt_kslot live[3];
    memset(live, 0, sizeof live);
    bt_reviver *rv = bt_reviver_new();
    baton_space_config config = bt_space_config(pool, BATON_DURABILITY_ASYNC, bt_revive_fn, rv);

    baton_space *space = bt_space_open_ok(&config, dir);
    uint64_t wide = durable_join(space, &c, 0, WIDE, two, "\"wide\"", &live[0]);
    uint64_t wider = durable_join(space, &c, WIDE, WIDER, two, "\"wider\"", &live[1]);
    /* Every channel but the first listed (the highest) of each waiting join gets its datum. */
    for (int i = 0; i < WIDE - 1; i++)
        bt_produce_datum(space, b, &c, i, 0, false);
    for (int i = WIDE; i < WIDE + WIDER - 1; i++)
        bt_produce_datum(space, b, &c, i, 0, false);
    /* The 65-join fires at once: its FIRE names 65 data, which replay must remove. */
    for (int i = WIDE + WIDER; i < WIDE + WIDER + FIRED; i++)
        bt_produce_datum(space, b, &c, i, 0, false);
    (void)durable_join(space, &c, WIDE + WIDER, FIRED, two, "\"fired\"", &live[2]);
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal(atomic_load(&live[2].fired), 1);
    assert_int_equal(atomic_load(&live[0].fired) + atomic_load(&live[1].fired), 0);
    bt_dump before = bt_dump_space(space);
    bt_assert_rc(baton_space_sync(space), 0);
    baton_space_destroy(space);

    /* Reopen: both waiting joins are back, with their channels, patterns and bodies. */
    space = bt_space_open_ok(&config, dir);
    bt_dump after = bt_dump_space(space);
    assert_string_equal(before.text, after.text);
    assert_int_equal(after.n_consumers, 2);
    assert_int_equal(after.n_data, WIDE - 1 + WIDER - 1);
    assert_string_equal(bt_revived(rv, wide)->body, "\"wide\"");
    assert_string_equal(bt_revived(rv, wider)->body, "\"wider\"");
    expect_waiting(space, wide, 0, WIDE);
    expect_waiting(space, wider, WIDE, WIDER);
    /* Through a compaction: the snapshot writes their REG records again. */
    bt_assert_rc(baton_space_compact(space), 0);
    free(after.text);
    baton_space_destroy(space);

    rv->n = 0;
    space = bt_space_open_ok(&config, dir);
    after = bt_dump_space(space);
    assert_string_equal(before.text, after.text);
    bt_kslot *k1 = bt_revived(rv, wide), *k2 = bt_revived(rv, wider);
    /* The last datum of each: the revived continuations fire once each. */
    bt_produce_datum(space, b, &c, WIDE - 1, 0, false);
    bt_produce_datum(space, b, &c, WIDE + WIDER - 1, 0, false);
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal(atomic_load(&k1->fired), 1);
    assert_int_equal(atomic_load(&k2->fired), 1);
    /* bt_kslot_fn keeps the first four listed data: the first listed is the highest channel. */
    char expect[64];
    snprintf(expect, sizeof expect, "(%d, 0)", WIDE - 1);
    assert_string_equal(k1->last[0], expect);
    snprintf(expect, sizeof expect, "(%d, 0)", WIDE + WIDER - 1);
    assert_string_equal(k2->last[0], expect);
    free(after.text);
    bt_assert_rc(baton_space_sync(space), 0);
    baton_space_destroy(space);

    /* Their FIRE records: the next reopen has neither them nor their data. */
    rv->n = 0;
    space = bt_space_open_ok(&config, dir);
    baton_space_stats s = bt_stats_of(space);
    assert_int_equal(s.consumers, 0);
    assert_int_equal(s.data, 0);
    assert_int_equal(rv->n, 0);
    baton_space_destroy(space);

    free(before.text);
    free(rv);
    baton_pattern_destroy(two[0]);
    baton_pattern_destroy(two[1]);
    bt_chans_free(&c);
    baton_value_builder_destroy(b);
    bt_assert_rc(baton_pool_destroy(pool), 0);
    bt_remove_tree(dir);
}

/* ---- persistent wide joins over persistent data, reopened ---- */

static unsigned char *log_bytes(const char *dir, size_t *size)
{
    char path[300];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return bt_read_file(path, size);
}

static void expect_fired(bt_reviver *r, int times, const char *what)
{
    for (size_t i = 0; i < r->n; i++)
        if (atomic_load(&r->slots[i].fired) != times)
            fail_msg("%s: %s fired %d times, not %d", what, r->slots[i].body,
                     atomic_load(&r->slots[i].fired), times);
}

/* One space over WIDE channels reopened `rounds` times: the same state, nothing fires, nothing
 * is appended and data.mdb stays byte for byte. */
static void reopen_quiet(const baton_space_config *base, const char *dir, const bt_dump *before,
                         uint64_t appended, int rounds, size_t consumers)
{
    size_t size = 0;
    unsigned char *bytes = log_bytes(dir, &size);
    for (int round = 0; round < rounds; round++) {
        bt_reviver *r = bt_reviver_new();
        baton_space_config config = *base;
        config.revive_ctx = r;
        baton_space *space = bt_space_open_ok(&config, dir);
        bt_assert_rc(baton_space_quiesce(space), 0);
        char what[64];
        snprintf(what, sizeof what, "reopen %d", round + 1);
        assert_int_equal(r->n, consumers);
        expect_fired(r, 0, what);
        bt_dump after = bt_dump_space(space);
        if (strcmp(before->text, after.text) != 0)
            fail_msg("%s: the space differs:\n--- before\n%s--- after\n%s", what, before->text,
                     after.text);
        assert_int_equal(bt_stats_of(space).log_appended, appended);
        baton_space_destroy(space);
        size_t now_size = 0;
        unsigned char *now = log_bytes(dir, &now_size);
        if (now_size != size || memcmp(now, bytes, size) != 0)
            fail_msg("%s changed data.mdb (%zu bytes, then %zu)", what, size, now_size);
        free(now);
        free(after.text);
        free(r);
    }
    free(bytes);
}

/* space.h: a reopen fires only what the log owes, at any join width. Three persistent 100-channel
 * joins over persistent data: one waiting before the data came one at a time (re-evaluated at
 * each: a SEEN per turn, then its firing), a peeking one beside it, one made after the data
 * (fires at its consume). Each fires once live; then three reopens fire nothing, append nothing
 * and leave data.mdb byte for byte; one new datum fires each once more, and the reopens after
 * that fire nothing again. */
static void run_wide_persistent_reopen(baton_durability durability)
{
    enum { WIDE = 100, JOINS = 3 };
    char dir[256];
    bt_space_tmpdir(dir, sizeof dir);
    baton_pool *pool = bt_pool_new(g_workers);
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    bt_chans c = bt_chans_make(b, WIDE);
    baton_pattern *two[2] = {bt_pattern("(_, x)"), bt_pattern("(_, Int)")};
    bt_kslot live[JOINS];
    memset(live, 0, sizeof live);
    baton_space_config config = bt_space_config(pool, durability, bt_revive_fn, NULL);

    baton_space *space = bt_space_open_ok(&config, dir);
    unsigned persistent = BATON_CONSUME_PERSISTENT;
    (void)durable_join_flags(space, &c, 0, WIDE, two, "\"waiting\"", &live[0], persistent);
    (void)durable_join_flags(space, &c, 0, WIDE, two, "\"peek\"", &live[1],
                             persistent | BATON_CONSUME_PEEK);
    for (int i = 0; i < WIDE; i++)
        bt_produce_datum(space, b, &c, i, 0, true);
    (void)durable_join_flags(space, &c, 0, WIDE, two, "\"after\"", &live[2], persistent);
    bt_assert_rc(baton_space_quiesce(space), 0);
    for (int i = 0; i < JOINS; i++)
        if (atomic_load(&live[i].fired) != 1)
            fail_msg("join %d fired %d times in the live space", i, atomic_load(&live[i].fired));
    bt_assert_rc(baton_space_sync(space), 0);
    bt_dump before = bt_dump_space(space);
    assert_int_equal(before.n_data, WIDE);
    assert_int_equal(before.n_consumers, JOINS);
    uint64_t appended = bt_stats_of(space).log_appended;
    baton_space_destroy(space);

    reopen_quiet(&config, dir, &before, appended, 3, JOINS);

    /* The revived joins still take their turn at a new datum, once each. */
    bt_reviver *r = bt_reviver_new();
    config.revive_ctx = r;
    space = bt_space_open_ok(&config, dir);
    bt_produce_datum(space, b, &c, WIDE / 2, 1, true);
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal(r->n, JOINS);
    expect_fired(r, 1, "a new datum after the reopens");
    bt_assert_rc(baton_space_sync(space), 0);
    bt_dump later = bt_dump_space(space);
    appended = bt_stats_of(space).log_appended;
    baton_space_destroy(space);
    free(r);
    config.revive_ctx = NULL;
    reopen_quiet(&config, dir, &later, appended, 2, JOINS);

    free(before.text);
    free(later.text);
    baton_pattern_destroy(two[0]);
    baton_pattern_destroy(two[1]);
    bt_chans_free(&c);
    baton_value_builder_destroy(b);
    bt_assert_rc(baton_pool_destroy(pool), 0);
    bt_remove_tree(dir);
}

static void test_wide_persistent_reopen_async(void **state)
{
    (void)state;
    run_wide_persistent_reopen(BATON_DURABILITY_ASYNC);
}

static void test_wide_persistent_reopen_sync(void **state)
{
    (void)state;
    run_wide_persistent_reopen(BATON_DURABILITY_SYNC);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durable),
        cmocka_unit_test(test_wide_persistent_reopen_async),
        cmocka_unit_test(test_wide_persistent_reopen_sync),
    };
    return cmocka_run_group_tests_name("space/join_durable", tests, NULL, NULL);
}
