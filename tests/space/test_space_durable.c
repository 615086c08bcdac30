/*
 * test_space_durable.c — the durable tuplespace (baton_space_open, src/space/space_durable.c):
 * a round trip through the log in ASYNC and SYNC (data in order with their flags and ids, waiting
 * single, join, persistent and peeking consumers with their channels, patterns and bodies,
 * revived and firing after reopen, fresh names and ids continuing), the revive errors, the
 * read-only NONE view (the log's bytes unchanged), compaction (the log stays bounded, explicit
 * compaction, reopen after it, EPERM from continuations, compaction while other threads call) and
 * SYNC's promises (a continuation runs only once its firing is durable, an outside call returns
 * only once its change is). Crash recovery and damaged logs: test_space_recovery.c.
 */
#define _GNU_SOURCE
#include "support/bt_common.h"
#include "support/bt_space_durable.h"

/* ---- 1. round trip -------------------------------------------------------------------------- */

static void run_round_trip(baton_durability durability)
{
    baton_pool *pool = bt_pool_new(2);
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    bt_session *s = calloc(1, sizeof *s);
    assert_non_null(s);
    baton_space_config config = bt_space_config(pool, durability, NULL, NULL);
    baton_space *space = bt_space_open_ok(&config, dir);
    bt_populate(s, space);
    bt_dump before = bt_dump_space(space);
    assert_int_equal(before.n_data, 6);
    assert_int_equal(before.n_consumers, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(before.ids[i], s->waiting[i]); /* in registration order */
    baton_space_stats st = bt_stats_of(space);
    assert_int_equal(st.data, 6);
    assert_int_equal(st.consumers, 5);
    baton_space_destroy(space);
    bt_session_free_patterns(s);

    bt_reviver *r = bt_reviver_new();
    config = bt_space_config(pool, durability, bt_revive_fn, r);
    space = bt_space_open_ok(&config, dir);
    bt_dump after = bt_dump_space(space);
    if (strcmp(before.text, after.text) != 0)
        fail_msg("the reopened space differs:\n--- before\n%s--- after\n%s", before.text,
                 after.text);
    st = bt_stats_of(space);
    assert_int_equal(st.recovered_data, 6);
    assert_int_equal(st.recovered_consumers, 5);
    assert_int_equal(st.data, 6);
    assert_int_equal(st.consumers, 5);
    assert_int_equal(r->n, 5);
    assert_string_equal(bt_revived(r, s->waiting[0])->body, "(\"k\", 7)");
    assert_string_equal(bt_revived(r, s->waiting[1])->body, "(\"join\", [1, 2])");
    assert_string_equal(bt_revived(r, s->waiting[2])->body, "nil");
    assert_string_equal(bt_revived(r, s->waiting[3])->body, "\"peek\"");
    assert_string_equal(bt_revived(r, s->waiting[4])->body, "42");
    for (size_t i = 0; i < r->n; i++)
        assert_int_equal(atomic_load(&r->slots[i].fired), 0);

    /* Fresh names above every name stored (@7000 inside a list inside a tuple), fresh consumer
     * ids above the recovered ones. */
    uint64_t name = baton_space_fresh_name(space);
    assert_true(name > 7000);
    assert_true(name > s->max_name);
    bt_kslot extra;
    memset(&extra, 0, sizeof extra);
    uint64_t id = bt_session_take(s, space, 1, (const char *[]){s->n[0]}, (const char *[]){"Int"},
                                  NULL, &extra, 0);
    for (int i = 0; i < 5; i++)
        assert_true(id > s->waiting[i]);

    /* The revived consumers fire. */
    bt_put(space, s->n[5], "(\"k\", 5)", false);
    bt_put(space, s->n[6], "0", false);
    bt_put(space, s->n[1], "200", false);
    bt_put(space, s->n[7], "\"again\"", false);
    bt_put(space, s->n[0], "11", false);
    bt_assert_rc(baton_space_quiesce(space), 0);
    bt_kslot *k1 = bt_revived(r, s->waiting[0]), *k2 = bt_revived(r, s->waiting[1]);
    bt_kslot *k3 = bt_revived(r, s->waiting[2]);
    assert_int_equal(atomic_load(&k1->fired), 1);
    assert_string_equal(k1->last[0], "(\"k\", 5)");
    assert_int_equal(atomic_load(&k2->fired), 1);
    assert_string_equal(k2->last[0], "0");
    assert_string_equal(k2->last[1], "200");
    assert_int_equal(atomic_load(&k3->fired), 1);
    assert_string_equal(k3->last[0], "\"again\"");
    assert_int_equal(atomic_load(&extra.fired), 1);
    st = bt_stats_of(space);
    assert_int_equal(st.consumers, 3); /* K3 (persistent), K4, K5 */
    assert_int_equal(st.data, 6);
    baton_space_destroy(space);
    bt_session_free_patterns(s);

    free(before.text);
    free(after.text);
    free(r);
    free(s);
    bt_remove_tree(dir);
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
    baton_pool *pool = bt_pool_new(2);
    char dir[64];
    bt_dump before;
    bt_session *s = bt_populated_log(pool, BATON_DURABILITY_ASYNC, dir, sizeof dir, &before);

    /* No revive function: EINVAL naming one of the waiting consumers. */
    baton_space_config config = bt_space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
    baton_space *space = NULL;
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
        bt_reviver *r = bt_reviver_new();
        r->fail_at = fail_at[i];
        r->fail_rc = BATON_ERANGE;
        config = bt_space_config(pool, BATON_DURABILITY_ASYNC, bt_revive_fn, r);
        space = NULL;
        bt_assert_rc(baton_space_open(&config, dir, &space), BATON_ERANGE);
        assert_null(space);
        free(r);
    }
    /* Returning 0 without a function: EINVAL. */
    bt_reviver *r = bt_reviver_new();
    r->fail_at = 2;
    r->fail_rc = 0;
    config = bt_space_config(pool, BATON_DURABILITY_SYNC, bt_revive_fn, r);
    space = NULL;
    bt_assert_rc(baton_space_open(&config, dir, &space), BATON_EINVAL);
    assert_null(space);
    free(r);

    /* After all that the state is intact. */
    r = bt_reviver_new();
    config = bt_space_config(pool, BATON_DURABILITY_ASYNC, bt_revive_fn, r);
    space = bt_space_open_ok(&config, dir);
    bt_dump after = bt_dump_space(space);
    assert_string_equal(before.text, after.text);
    baton_space_destroy(space);
    free(r);
    free(before.text);
    free(after.text);
    free(s);
    bt_remove_tree(dir);
    bt_pool_destroy(pool);
}

/* ---- 3. NONE -------------------------------------------------------------------------------- */

static void test_none_read_only(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_new(2);
    char dir[64];
    bt_dump before;
    bt_session *s = bt_populated_log(pool, BATON_DURABILITY_SYNC, dir, sizeof dir, &before);
    baton_space_config config;
    baton_space *space;

    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    size_t size0 = 0;
    unsigned char *bytes0 = bt_read_file(path, &size0);

    for (int round = 0; round < 2; round++) {
        bt_reviver *r = bt_reviver_new();
        config = bt_space_config(pool, BATON_DURABILITY_NONE, bt_revive_fn, r);
        space = bt_space_open_ok(&config, dir);
        bt_dump view = bt_dump_space(space);
        assert_string_equal(before.text, view.text);
        baton_space_stats st = bt_stats_of(space);
        assert_int_equal(st.log_records, 0);
        assert_int_equal(st.log_appended, 0);
        assert_true(st.log_writer_cpu_ns == 0); /* NONE: no writer */
        assert_int_equal(st.recovered_data, 6);
        assert_int_equal(st.recovered_consumers, 5);
        /* Changes live in memory only. */
        bt_put(space, s->n[5], "(\"k\", 1)", false);
        bt_put(space, s->n[0], "\"new\"", true);
        bt_assert_rc(baton_space_quiesce(space), 0);
        assert_int_equal(atomic_load(&bt_revived(r, s->waiting[0])->fired), 1);
        bt_assert_rc(baton_space_sync(space), 0);
        bt_assert_rc(baton_space_compact(space), 0);
        baton_space_destroy(space);
        free(view.text);
        free(r);
        size_t size1 = 0;
        unsigned char *bytes1 = bt_read_file(path, &size1);
        assert_int_equal(size1, size0);
        assert_true(memcmp(bytes0, bytes1, size0) == 0);
        free(bytes1);
    }
    /* A writable reopen sees the log, not the NONE session's changes. */
    bt_reviver *r = bt_reviver_new();
    config = bt_space_config(pool, BATON_DURABILITY_ASYNC, bt_revive_fn, r);
    space = bt_space_open_ok(&config, dir);
    bt_dump after = bt_dump_space(space);
    assert_string_equal(before.text, after.text);
    baton_space_destroy(space);
    free(r);
    free(after.text);
    free(before.text);
    free(bytes0);
    free(s);
    bt_remove_tree(dir);
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
    baton_pool *pool = bt_pool_new(2);
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    baton_space_config config = bt_space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
    config.compact_records = 100;
    baton_space *space = bt_space_open_ok(&config, dir);
    uint64_t compactions0 = bt_stats_of(space).compactions;

    /* Live state that must survive every compaction: data, a waiting consumer with a body. */
    bt_put(space, "\"keep\"", "1", false);
    bt_put(space, "\"keep\"", "(2, \"two\")", true);
    bt_kslot waiting;
    memset(&waiting, 0, sizeof waiting);
    baton_pattern *keep_pattern[1];
    bt_take(space, 1, (const char *[]){"\"wait\""}, (const char *[]){"\"never\""}, keep_pattern,
         "(\"body\", 1)", &waiting, 0);

    baton_pattern *p_int = bt_pattern("Int");
    baton_value *ch = bt_value("\"pc\"");
    bt_kslot fired;
    memset(&fired, 0, sizeof fired);
    const size_t rounds = bt_scaled(3000, 500);
    uint64_t max_records = 0;
    for (size_t i = 0; i < rounds; i++) {
        baton_value *d = bt_value("7");
        baton_value_view cv = baton_value_as_view(ch);
        bt_assert_rc(baton_space_produce(space, cv, baton_value_as_view(d), false), 0);
        bt_assert_rc(baton_space_consume(space, &cv, &p_int, 1, bt_kslot_fn, &fired, 0, NULL), 0);
        baton_value_destroy(d);
        if (i % 10 == 9) {
            bt_assert_rc(baton_space_quiesce(space), 0);
            baton_space_stats st = bt_stats_of(space);
            if (st.log_records > max_records)
                max_records = st.log_records;
            if (st.log_records >= 300)
                fail_msg("round %zu: the log holds %" PRIu64 " records", i, st.log_records);
        }
    }
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal((size_t)atomic_load(&fired.fired), rounds);
    baton_space_stats st = bt_stats_of(space);
    assert_true(st.compactions > compactions0 + 5);
    assert_int_equal(st.data, 2);
    assert_int_equal(st.consumers, 1);
    print_message("compaction: %zu rounds, %" PRIu64 " compactions, at most %" PRIu64
                  " records in the log\n", rounds, st.compactions - compactions0, max_records);

    /* Explicit compaction: the log holds the snapshot only (SNAP, 2 PUT, 1 REG, SNAP_END). */
    bt_assert_rc(baton_space_compact(space), 0);
    baton_space_stats st2 = bt_stats_of(space);
    assert_int_equal(st2.compactions, st.compactions + 1);
    assert_int_equal(st2.log_records, 5);
    assert_true(st2.log_durable >= st2.log_appended);
    /* The writer has committed batches, so it has used some CPU; the figure only grows. */
    assert_true(st2.log_writer_cpu_ns > 0);
    assert_true(st2.log_writer_cpu_ns >= st.log_writer_cpu_ns);

    /* Compaction, sync and quiesce from a continuation: EPERM. */
    perm_probe probe = {.space = space};
    baton_pattern *p_any = bt_pattern("_");
    baton_value *pch = bt_value("\"perm\"");
    baton_value_view pv = baton_value_as_view(pch);
    bt_assert_rc(baton_space_consume(space, &pv, &p_any, 1, perm_fn, &probe, 0, NULL), 0);
    bt_put(space, "\"perm\"", "0", false);
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal(atomic_load(&probe.ran), 1);
    assert_int_equal(atomic_load(&probe.compact_rc), BATON_EPERM);
    assert_int_equal(atomic_load(&probe.sync_rc), BATON_EPERM);
    assert_int_equal(atomic_load(&probe.quiesce_rc), BATON_EPERM);

    bt_dump before = bt_dump_space(space);
    baton_space_destroy(space);
    bt_reviver *r = bt_reviver_new();
    config = bt_space_config(pool, BATON_DURABILITY_ASYNC, bt_revive_fn, r);
    config.compact_records = 100;
    space = bt_space_open_ok(&config, dir);
    bt_dump after = bt_dump_space(space);
    assert_string_equal(before.text, after.text);
    assert_int_equal(r->n, 1);
    assert_string_equal(r->slots[0].body, "(\"body\", 1)");
    assert_true(bt_stats_of(space).log_records < 300);
    baton_space_destroy(space);

    free(before.text);
    free(after.text);
    free(r);
    baton_value_destroy(pch);
    baton_value_destroy(ch);
    baton_pattern_destroy(p_any);
    baton_pattern_destroy(p_int);
    baton_pattern_destroy(keep_pattern[0]);
    bt_remove_tree(dir);
    bt_pool_destroy(pool);
}

/* ---- 4b. compaction while other threads call ------------------------------------------------- */

#define CC_CALLERS 4

typedef struct cc_caller {
    baton_space *space;
    baton_pattern *pattern;
    int index;
    size_t pairs;          /* at least this many, and until the compactions are done */
    _Atomic int64_t taken; /* the sum of what its continuations took */
    int rc;
    atomic_int *done;         /* callers finished */
    atomic_uint *compactions; /* compactions finished */
} cc_caller;

/* The compactions the callers keep calling through: every one of them overlaps their calls. */
#define CC_COMPACTIONS 20u

static int cc_taken(void *ctx, const baton_match *match)
{
    cc_caller *c = ctx;
    atomic_fetch_add(&c->taken, baton_view_int(match->data[0]));
    return 0;
}

static int cc_pairs(cc_caller *c)
{
    char text[32];
    baton_value *ch = NULL, *datum = NULL;
    snprintf(text, sizeof text, "\"cc%d\"", c->index);
    int rc = baton_value_parse(text, strlen(text), &ch);
    baton_value_view cv = ch != NULL ? baton_value_as_view(ch) : (baton_value_view){NULL, 0};
    size_t i = 0;
    for (; rc == 0 && (i < c->pairs || atomic_load(c->compactions) < CC_COMPACTIONS); i++) {
        snprintf(text, sizeof text, "%zu", i);
        if ((rc = baton_value_parse(text, strlen(text), &datum)) != 0)
            break;
        rc = baton_space_produce(c->space, cv, baton_value_as_view(datum), false);
        baton_value_destroy(datum);
        if (rc == 0)
            rc = baton_space_consume(c->space, &cv, &c->pattern, 1, cc_taken, c, 0, NULL);
    }
    c->pairs = i;
    /* A last datum, 1000000 + index, stays stored. */
    snprintf(text, sizeof text, "%d", 1000000 + c->index);
    if (rc == 0 && (rc = baton_value_parse(text, strlen(text), &datum)) == 0) {
        rc = baton_space_produce(c->space, cv, baton_value_as_view(datum), false);
        baton_value_destroy(datum);
    }
    baton_value_destroy(ch);
    return rc;
}

static void *cc_caller_main(void *arg)
{
    cc_caller *c = arg;
    c->rc = cc_pairs(c);
    atomic_fetch_add(c->done, 1);
    return NULL;
}

/* baton_space_compact while outside threads produce and consume: "new calls from outside
 * continuations wait meanwhile", so the snapshot is a state the calls passed through and the
 * reopened space is the one they left; no call is lost or doubled. (Under TSan, a call that ran
 * during the snapshot is a race on its channel.) */
static void test_compaction_during_calls(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_new(2);
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    baton_space_config config = bt_space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
    baton_space *space = bt_space_open_ok(&config, dir);
    baton_pattern *p_int = bt_pattern("Int");
    atomic_int done = 0;
    atomic_uint compactions = 0;
    cc_caller callers[CC_CALLERS];
    pthread_t threads[CC_CALLERS];
    for (int t = 0; t < CC_CALLERS; t++) {
        callers[t] = (cc_caller){.space = space, .pattern = p_int, .index = t,
                                 .pairs = bt_scaled(2000, 200), .done = &done,
                                 .compactions = &compactions};
        atomic_init(&callers[t].taken, 0);
        assert_int_equal(pthread_create(&threads[t], NULL, cc_caller_main, &callers[t]), 0);
    }
    /* The callers call until CC_COMPACTIONS are done; this compacts until they are. */
    while (atomic_load(&done) < CC_CALLERS) {
        bt_assert_rc(baton_space_compact(space), 0);
        atomic_fetch_add(&compactions, 1);
    }
    for (int t = 0; t < CC_CALLERS; t++)
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    bt_assert_rc(baton_space_quiesce(space), 0);
    for (int t = 0; t < CC_CALLERS; t++) {
        bt_assert_rc(callers[t].rc, 0);
        int64_t n = (int64_t)callers[t].pairs;
        assert_int_equal(atomic_load(&callers[t].taken), n * (n - 1) / 2);
    }
    baton_space_stats st = bt_stats_of(space);
    assert_int_equal(st.data, CC_CALLERS);
    assert_int_equal(st.consumers, 0);
    assert_true(st.compactions >= atomic_load(&compactions));
    assert_true(atomic_load(&compactions) >= CC_COMPACTIONS);
    bt_dump before = bt_dump_space(space);
    baton_space_destroy(space);

    config = bt_space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
    space = bt_space_open_ok(&config, dir);
    bt_dump after = bt_dump_space(space);
    assert_string_equal(before.text, after.text);
    assert_int_equal(bt_stats_of(space).data, CC_CALLERS);
    print_message("compaction during calls: %u compactions, %zu pairs by the first caller\n",
                  atomic_load(&compactions), callers[0].pairs);
    baton_space_destroy(space);
    free(before.text);
    free(after.text);
    baton_pattern_destroy(p_int);
    bt_remove_tree(dir);
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
    baton_pool *pool = bt_pool_new(2);
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    baton_space_config config = bt_space_config(pool, BATON_DURABILITY_SYNC, NULL, NULL);
    baton_space *space = bt_space_open_ok(&config, dir);
    sync_probe probe = {.space = space, .hop = bt_value("\"hop\"")};
    baton_pattern *p_int = bt_pattern("Int");
    baton_value *in = bt_value("\"in\"");
    baton_value_view inv = baton_value_as_view(in), hopv = baton_value_as_view(probe.hop);
    const int n = (int)bt_scaled(200, 40);
    for (int i = 0; i < n; i++) {
        /* An outside produce that stores: durable when it returns. */
        baton_space_stats st0 = bt_stats_of(space);
        bt_put(space, "\"store\"", "1", false);
        baton_space_stats st1 = bt_stats_of(space);
        if (st1.log_durable < st0.log_appended + 1)
            fail_msg("produce returned at durable %" PRIu64 ", appended before it %" PRIu64,
                     st1.log_durable, st0.log_appended);
        /* An outside consume that registers: durable when it returns. */
        st0 = bt_stats_of(space);
        bt_assert_rc(baton_space_consume(space, &inv, &p_int, 1, sync_first_fn, &probe, 0, NULL),
                     0);
        st1 = bt_stats_of(space);
        assert_true(st1.log_durable >= st0.log_appended + 1);
        /* The hop consumer waits; the produce fires the first, which fires the hop. */
        bt_assert_rc(baton_space_consume(space, &hopv, &p_int, 1, sync_hop_fn, &probe, 0, NULL),
                     0);
        st0 = bt_stats_of(space);
        atomic_store(&probe.min_durable, st0.log_appended);
        baton_value *d = bt_value("5");
        bt_assert_rc(baton_space_produce(space, inv, baton_value_as_view(d), false), 0);
        baton_value_destroy(d);
        st1 = bt_stats_of(space);
        assert_true(st1.log_durable >= st0.log_appended + 1);
        bt_assert_rc(baton_space_quiesce(space), 0);
        if (atomic_load(&probe.ran) != i + 1 || atomic_load(&probe.hops) != i + 1) {
            int ran = atomic_load(&probe.ran), hops = atomic_load(&probe.hops);
            baton_space_stats sq = bt_stats_of(space);
            bt_sleep_ms(200);
            baton_space_stats sl = bt_stats_of(space);
            fail_msg("iteration %d: after quiesce %d firings and %d hops (%d and %d 200 ms "
                     "later); data %zu, consumers %zu (later %zu, %zu)", i, ran, hops,
                     atomic_load(&probe.ran), atomic_load(&probe.hops), sq.data, sq.consumers,
                     sl.data, sl.consumers);
        }
        bt_assert_rc(baton_space_sync(space), 0);
        st1 = bt_stats_of(space);
        assert_true(st1.log_durable >= st1.log_appended);
    }
    bt_assert_no_thread_failures();
    assert_int_equal(atomic_load(&probe.ran), n);
    assert_int_equal(atomic_load(&probe.hops), n);
    assert_int_equal(atomic_load(&probe.bad), 0);
    baton_space_stats st = bt_stats_of(space);
    assert_int_equal(st.data, (size_t)n);
    assert_int_equal(st.consumers, 0);
    baton_space_destroy(space);
    baton_pattern_destroy(p_int);
    baton_value_destroy(in);
    baton_value_destroy(probe.hop);
    bt_remove_tree(dir);
    bt_pool_destroy(pool);
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
        cmocka_unit_test(test_compaction_during_calls),
        cmocka_unit_test(test_sync_semantics),
    };
    return cmocka_run_group_tests_name("space/durable", tests, NULL, NULL);
}
