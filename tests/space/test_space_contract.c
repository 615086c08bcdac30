/*
 * test_space_contract.c — promises of include/baton/space.h about consume, produce, quiesce and
 * fresh names that no other test checked, each written from the header's wording:
 *  - every error baton_space_consume(_body) lists (NULL space, channels, patterns or fn; a NULL
 *    pattern; n == 0; a malformed channel; a malformed body; the same channel twice; unknown
 *    flags) and baton_space_produce lists (NULL space, a malformed channel or datum), each with
 *    its message, each leaving the space as it was: nothing registered or stored, the
 *    continuation never run, *consumer_id untouched;
 *  - baton_space_channel_counts and baton_space_quiesce refuse NULL arguments with BATON_EINVAL;
 *  - produce copies the channel and the datum, consume copies the channels: views of buffers the
 *    caller overwrites and frees right after the call;
 *  - quiesce returns the first error a continuation returned, then clears it;
 *  - fresh names count from 1 and never repeat, also from several threads at once;
 *  - a consumer made with an empty body view has the body nil, as one made by consume;
 *  - a call from outside continuations made on a worker of the pool runs the continuations of
 *    its firings on its own thread before it returns, and a call from such a continuation
 *    returns before the continuation of the firing it made runs, and a call from a thread that
 *    is no worker of the pool returns once its firings' continuations have run;
 *  - the config's struct_size, for create and open: 0 and this header's size work, a larger or
 *    a partial one is BATON_EINVAL and makes nothing, an older header's shorter struct leaves
 *    the fields past it at their defaults.
 */
#include "support/bt_common.h"

#include <inttypes.h>
#include <pthread.h>

#include "baton/space.h"
#include "support/bt_files.h"
#include "support/bt_space.h"

BT_DEFINE_POOL_GROUP()

static baton_space *space_new(void)
{
    baton_space *space = NULL;
    baton_space_config config = {.struct_size = sizeof config, .pool = g_pool};
    bt_assert_rc(baton_space_create(&config, &space), 0);
    return space;
}

static atomic_int g_never_ran;

static int never_fn(void *ctx, const baton_match *match)
{
    (void)ctx;
    (void)match;
    atomic_fetch_add(&g_never_ran, 1);
    return 0;
}

/* rc is BATON_EINVAL and the message contains what. */
static void expect_einval(int rc, const char *what)
{
    if (rc != BATON_EINVAL)
        fail_msg("expected BATON_EINVAL (%s), got %s", what, baton_err_name(rc));
    if (strstr(baton_last_error_message(), what) == NULL)
        fail_msg("message \"%s\" does not say \"%s\"", baton_last_error_message(), what);
}

static void test_consume_produce_errors(void **state)
{
    (void)state;
    baton_space *space = space_new();
    baton_pattern *any = bt_pattern("_");
    baton_value *a = bt_value("@1"), *b = bt_value("@2"), *datum = bt_value("5");
    baton_value_view views[2] = {baton_value_as_view(a), baton_value_as_view(b)};
    baton_pattern *pats[2] = {any, any};
    baton_pattern *null_pat[2] = {any, NULL};
    /* An int whose 8 bytes are missing. */
    baton_value_view bad = {(const uint8_t *)"\x03\x00", 2};
    baton_value_view bad_second[2] = {views[0], bad};
    baton_value_view twice[2] = {views[1], views[1]};
    uint64_t id = 99;

    expect_einval(baton_space_consume(NULL, views, pats, 2, never_fn, NULL, 0, &id), "NULL");
    expect_einval(baton_space_consume(space, NULL, pats, 2, never_fn, NULL, 0, &id), "NULL");
    expect_einval(baton_space_consume(space, views, NULL, 2, never_fn, NULL, 0, &id), "NULL");
    expect_einval(baton_space_consume(space, views, pats, 2, NULL, NULL, 0, &id), "NULL");
    expect_einval(baton_space_consume(space, views, pats, 0, never_fn, NULL, 0, &id),
                  "no channels");
    expect_einval(baton_space_consume(space, views, null_pat, 2, never_fn, NULL, 0, &id),
                  "pattern 1 is NULL");
    expect_einval(baton_space_consume(space, bad_second, pats, 2, never_fn, NULL, 0, &id),
                  "channel 1 is malformed");
    expect_einval(baton_space_consume(space, twice, pats, 2, never_fn, NULL, 0, &id),
                  "channel 1 is listed twice");
    expect_einval(baton_space_consume(space, views, pats, 2, never_fn, NULL, 4, &id),
                  "unknown flags 0x4");
    expect_einval(baton_space_consume_body(space, views, pats, 2, never_fn, NULL, 0, bad, &id),
                  "malformed body");
    assert_int_equal(id, 99);

    expect_einval(baton_space_produce(NULL, views[0], baton_value_as_view(datum), false), "NULL");
    expect_einval(baton_space_produce(space, bad, baton_value_as_view(datum), false),
                  "malformed channel");
    expect_einval(baton_space_produce(space, views[0], bad, false), "malformed datum");

    size_t d = 7, k = 7;
    expect_einval(baton_space_channel_counts(NULL, views[0], &d, &k), "bad argument");
    expect_einval(baton_space_channel_counts(space, bad, &d, &k), "bad argument");
    expect_einval(baton_space_channel_counts(space, views[0], NULL, &k), "bad argument");
    expect_einval(baton_space_channel_counts(space, views[0], &d, NULL), "bad argument");
    expect_einval(baton_space_quiesce(NULL), "NULL space");

    /* Nothing was registered or stored: a datum on each channel stays, no continuation ran. */
    bt_assert_rc(baton_space_produce(space, views[0], baton_value_as_view(datum), false), 0);
    bt_assert_rc(baton_space_produce(space, views[1], baton_value_as_view(datum), false), 0);
    bt_assert_rc(baton_space_quiesce(space), 0);
    for (int i = 0; i < 2; i++) {
        bt_assert_rc(baton_space_channel_counts(space, views[i], &d, &k), 0);
        assert_int_equal(d, 1);
        assert_int_equal(k, 0);
    }
    assert_int_equal(atomic_load(&g_never_ran), 0);
    baton_space_destroy(space);
    baton_value_destroy(a);
    baton_value_destroy(b);
    baton_value_destroy(datum);
    baton_pattern_destroy(any);
}

/* A heap copy of a value's encoding, which the test scribbles over and frees after the call. */
static baton_value_view heap_view(const char *text)
{
    baton_value *v = bt_value(text);
    baton_value_view view = baton_value_as_view(v);
    uint8_t *copy = malloc(view.size);
    assert_non_null(copy);
    memcpy(copy, view.data, view.size);
    baton_value_destroy(v);
    return (baton_value_view){copy, view.size};
}

static void scribble_free(baton_value_view view)
{
    memset((void *)view.data, 0xff, view.size);
    free((void *)view.data);
}

typedef struct seen {
    atomic_int fired;
    char data[2][64];
} seen;

static int seen_fn(void *ctx, const baton_match *match)
{
    seen *s = ctx;
    for (size_t i = 0; i < match->n_channels && i < 2; i++) {
        size_t length = 0;
        BT_CHECK(baton_value_print(match->data[i], s->data[i], sizeof s->data[i], &length) == 0);
    }
    atomic_fetch_add(&s->fired, 1);
    return 0;
}

static void test_views_copied(void **state)
{
    (void)state;
    baton_space *space = space_new();
    baton_pattern *any = bt_pattern("_");
    baton_pattern *pats[2] = {any, any};
    /* produce copies its channel and datum. */
    baton_value_view channel = heap_view("(\"c\", 1)"), datum = heap_view("(\"kept\", 42)");
    bt_assert_rc(baton_space_produce(space, channel, datum, false), 0);
    scribble_free(channel);
    scribble_free(datum);
    /* consume copies its channels: the join waits on ("c", 1) and ("c", 2) as they were. */
    baton_value_view joined[2] = {heap_view("(\"c\", 2)"), heap_view("(\"c\", 1)")};
    seen s;
    memset(&s, 0, sizeof s);
    bt_assert_rc(baton_space_consume(space, joined, pats, 2, seen_fn, &s, 0, NULL), 0);
    scribble_free(joined[0]);
    scribble_free(joined[1]);
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal(atomic_load(&s.fired), 0);
    baton_value *c2 = bt_value("(\"c\", 2)"), *two = bt_value("2");
    bt_assert_rc(
        baton_space_produce(space, baton_value_as_view(c2), baton_value_as_view(two), false), 0);
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal(atomic_load(&s.fired), 1);
    assert_string_equal(s.data[0], "2");
    assert_string_equal(s.data[1], "(\"kept\", 42)");
    bt_assert_no_thread_failures();
    baton_value_destroy(c2);
    baton_value_destroy(two);
    baton_space_destroy(space);
    baton_pattern_destroy(any);
}

static int fail_io(void *ctx, const baton_match *match)
{
    (void)ctx;
    (void)match;
    return BATON_EIO;
}

static int fail_range(void *ctx, const baton_match *match)
{
    (void)ctx;
    (void)match;
    return BATON_ERANGE;
}

/* "A non-zero return is remembered and reported by baton_space_quiesce (the first one)", and
 * quiesce "clears it". One outside caller: each produce returns after the continuation it fired,
 * so the EIO is first. */
static void test_quiesce_first_error(void **state)
{
    (void)state;
    baton_space *space = space_new();
    baton_pattern *any = bt_pattern("_");
    baton_value *c = bt_value("@1"), *d = bt_value("nil");
    baton_value_view cv = baton_value_as_view(c);
    bt_assert_rc(baton_space_consume(space, &cv, &any, 1, fail_io, NULL, 0, NULL), 0);
    bt_assert_rc(baton_space_consume(space, &cv, &any, 1, fail_range, NULL, 0, NULL), 0);
    bt_assert_rc(baton_space_produce(space, cv, baton_value_as_view(d), false), 0);
    bt_assert_rc(baton_space_produce(space, cv, baton_value_as_view(d), false), 0);
    int rc = baton_space_quiesce(space);
    assert_int_equal(rc, BATON_EIO);
    assert_non_null(strstr(baton_last_error_message(), "BATON_EIO"));
    bt_assert_rc(baton_space_quiesce(space), 0);
    baton_value_destroy(c);
    baton_value_destroy(d);
    baton_space_destroy(space);
    baton_pattern_destroy(any);
}

typedef struct body_kinds {
    uint64_t ids[2];
    int kinds[2];
} body_kinds;

static int body_kind_fn(void *ctx, const baton_space_consumer_info *info)
{
    body_kinds *b = ctx;
    for (int i = 0; i < 2; i++)
        if (info->id == b->ids[i])
            b->kinds[i] = (int)baton_view_kind(info->body);
    return 0;
}

/* "baton_space_consume is this with body nil (as is an empty view)": visit reports nil for a
 * consumer made either way. */
static void test_empty_body(void **state)
{
    (void)state;
    baton_space *space = space_new();
    baton_pattern *any = bt_pattern("_");
    baton_value *c = bt_value("@1");
    baton_value_view cv = baton_value_as_view(c);
    body_kinds b = {{0, 0}, {-1, -1}};
    bt_assert_rc(baton_space_consume(space, &cv, &any, 1, never_fn, NULL, 0, &b.ids[0]), 0);
    bt_assert_rc(baton_space_consume_body(space, &cv, &any, 1, never_fn, NULL, 0,
                                          (baton_value_view){NULL, 0}, &b.ids[1]),
                 0);
    bt_assert_rc(baton_space_quiesce(space), 0);
    bt_assert_rc(baton_space_visit(space, NULL, body_kind_fn, &b), 0);
    assert_int_equal(b.kinds[0], BATON_VALUE_NIL);
    assert_int_equal(b.kinds[1], BATON_VALUE_NIL);
    baton_value_destroy(c);
    baton_space_destroy(space);
    baton_pattern_destroy(any);
}

enum { NAME_THREADS = 4, NAMES_PER_THREAD = 2000 };

typedef struct names_arg {
    baton_space *space;
    uint64_t *out;
} names_arg;

static void *names_main(void *arg)
{
    names_arg *a = arg;
    for (int i = 0; i < NAMES_PER_THREAD; i++)
        a->out[i] = baton_space_fresh_name(a->space);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* "A name id never returned before by this space (an atomic counter starting at 1)." */
static void test_fresh_names(void **state)
{
    (void)state;
    baton_space *space = space_new();
    assert_int_equal(baton_space_fresh_name(space), 1);
    assert_int_equal(baton_space_fresh_name(space), 2);
    uint64_t *names = calloc(NAME_THREADS * NAMES_PER_THREAD, sizeof *names);
    assert_non_null(names);
    pthread_t threads[NAME_THREADS];
    names_arg args[NAME_THREADS];
    for (int t = 0; t < NAME_THREADS; t++) {
        args[t] = (names_arg){space, names + t * NAMES_PER_THREAD};
        assert_int_equal(pthread_create(&threads[t], NULL, names_main, &args[t]), 0);
    }
    for (int t = 0; t < NAME_THREADS; t++)
        pthread_join(threads[t], NULL);
    qsort(names, NAME_THREADS * NAMES_PER_THREAD, sizeof *names, cmp_u64);
    /* Exactly 3 .. 2 + threads * names: each once. */
    for (size_t i = 0; i < NAME_THREADS * NAMES_PER_THREAD; i++)
        assert_int_equal(names[i], i + 3);
    free(names);
    baton_space_destroy(space);
}

static int create_try_struct_size(size_t struct_size, bool *created, void *ctx)
{
    (void)ctx;
    baton_space_config config = {.struct_size = struct_size, .pool = g_pool};
    baton_space *space = NULL;
    int rc = baton_space_create(&config, &space);
    if (space != NULL) {
        *created = true;
        baton_space_destroy(space);
    }
    return rc;
}

/* Opens a durable space in the directory ctx, which does not exist yet; it made something when
 * the directory appeared. */
static int open_try_struct_size(size_t struct_size, bool *created, void *ctx)
{
    const char *dir = ctx;
    baton_space_config config = {.struct_size = struct_size, .pool = g_pool,
                                 .durability = BATON_DURABILITY_SYNC};
    baton_space *space = NULL;
    int rc = baton_space_open(&config, dir, &space);
    struct stat sb;
    *created = space != NULL || stat(dir, &sb) == 0;
    baton_space_destroy(space);
    bt_remove_tree(dir);
    return rc;
}

/* space.h's struct_size sentence, for create and open: 0 and this header's size work, larger or
 * shorter than a size_t is BATON_EINVAL with nothing made (no directory); an older header's
 * struct that ends before durability leaves durability, log_group_max and the rest at their
 * defaults (values past it that open would refuse are not read). */
static void test_config_struct_size(void **state)
{
    (void)state;
    bt_check_struct_size("baton_space_config", sizeof(baton_space_config),
                         create_try_struct_size, NULL);
    char top[256], dir[300];
    bt_make_tmpdir(top, sizeof top, "baton-space-size");
    snprintf(dir, sizeof dir, "%s/space", top);
    bt_check_struct_size("baton_space_config", sizeof(baton_space_config), open_try_struct_size,
                         dir);
    baton_space_config config = {.struct_size = offsetof(baton_space_config, durability),
                                 .pool = g_pool,
                                 .durability = (baton_durability)99,
                                 .log_group_max = SIZE_MAX};
    baton_space *space = NULL;
    bt_assert_rc(baton_space_open(&config, dir, &space), 0);
    baton_space_destroy(space);
    bt_remove_tree(top);
}

/* ---- continuations of a call made on a worker of the pool ---- */

enum { ON_WORKER_PAIRS = 2000 };

typedef struct on_worker {
    baton_space *space;
    baton_pattern *pat;
    uint8_t ch[9], next[9];
    pthread_t driver;
    atomic_int elsewhere; /* continuations that ran on another thread */
    atomic_int ran;       /* continuations of the pairs that ran */
    atomic_int late;      /* the chained one ran before the produce that fired it returned */
    atomic_int chained;
} on_worker;

static int chained_fn(void *ctx, const baton_match *match)
{
    (void)match;
    on_worker *o = ctx;
    atomic_fetch_add(&o->chained, 1);
    return 0;
}

static int on_worker_fn(void *ctx, const baton_match *match)
{
    on_worker *o = ctx;
    if (!pthread_equal(pthread_self(), o->driver))
        atomic_fetch_add(&o->elsewhere, 1);
    int before = atomic_load(&o->chained);
    /* A consumer waits on next: this produce fires it, and returns before it runs. */
    if (baton_space_produce(o->space, (baton_value_view){o->next, 9}, match->data[0], false) != 0)
        return BATON_EINVAL;
    if (atomic_load(&o->chained) != before)
        atomic_fetch_add(&o->late, 1);
    atomic_fetch_add(&o->ran, 1);
    return 0;
}

static int on_worker_task(void *arg)
{
    on_worker *o = arg;
    o->driver = pthread_self();
    baton_value_view ch = {o->ch, 9}, next = {o->next, 9};
    for (int i = 0; i < ON_WORKER_PAIRS; i++) {
        uint8_t datum[9] = {0x03, 0, 0, 0, 0, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};
        int rc = baton_space_consume(o->space, &next, &o->pat, 1, chained_fn, o, 0, NULL);
        if (rc == 0)
            rc = baton_space_produce(o->space, ch, (baton_value_view){datum, 9}, false);
        if (rc == 0)
            rc = baton_space_consume(o->space, &ch, &o->pat, 1, on_worker_fn, o, 0, NULL);
        if (rc != 0)
            return rc;
        /* Returned: its continuation, and the one that continuation's produce fired, ran. */
        if (atomic_load(&o->ran) != i + 1 || atomic_load(&o->chained) != i + 1)
            return BATON_EINVAL;
    }
    return 0;
}

static int on_worker_scope(baton_scope *scope, void *arg)
{
    return baton_scope_spawn(scope, on_worker_task, arg);
}

static void test_continuations_on_the_calling_worker(void **state)
{
    (void)state;
    on_worker o = {.space = space_new(), .pat = bt_pattern("Int")};
    atomic_init(&o.elsewhere, 0);
    atomic_init(&o.ran, 0);
    atomic_init(&o.late, 0);
    atomic_init(&o.chained, 0);
    o.ch[0] = o.next[0] = 0x08;
    o.ch[8] = 1;
    o.next[8] = 2;
    bt_assert_rc(baton_scope_run(g_pool, on_worker_scope, &o), 0);
    bt_assert_rc(baton_space_quiesce(o.space), 0);
    assert_int_equal(atomic_load(&o.ran), ON_WORKER_PAIRS);
    assert_int_equal(atomic_load(&o.chained), ON_WORKER_PAIRS);
    if (atomic_load(&o.elsewhere) != 0)
        fail_msg("%d of %d continuations ran on another thread than the worker whose call fired "
                 "them", atomic_load(&o.elsewhere), ON_WORKER_PAIRS);
    assert_int_equal(atomic_load(&o.late), 0);
    baton_space_destroy(o.space);
    baton_pattern_destroy(o.pat);
}

/* ---- a call from an outside thread waits for its firings' continuations ---- */

static int count_fn(void *ctx, const baton_match *match)
{
    (void)match;
    atomic_fetch_add((atomic_int *)ctx, 1);
    return 0;
}

/* "A call from any other thread makes each a pool task and returns once they have run": from
 * the test's own thread (no worker of the pool), a consume that finds its datum, a produce that
 * a waiting consumer takes, and a join that its last datum completes each return with the
 * continuation already run, with no quiesce between. */
static void test_outside_call_waits_for_its_continuations(void **state)
{
    (void)state;
    baton_space *space = space_new();
    baton_pattern *pat = bt_pattern("Int");
    baton_pattern *pats[2] = {pat, pat};
    uint8_t a[9] = {0x08, 0, 0, 0, 0, 0, 0, 0, 1}, b[9] = {0x08, 0, 0, 0, 0, 0, 0, 0, 2};
    uint8_t datum[9] = {0x03, 0, 0, 0, 0, 0, 0, 0, 7};
    baton_value_view ca = {a, 9}, chans[2] = {{a, 9}, {b, 9}}, d = {datum, 9};
    atomic_int ran = 0;
    for (int i = 0; i < 200; i++) {
        bt_assert_rc(baton_space_produce(space, ca, d, false), 0);
        bt_assert_rc(baton_space_consume(space, &ca, &pat, 1, count_fn, &ran, 0, NULL), 0);
        assert_int_equal(atomic_load(&ran), 3 * i + 1); /* consume found its datum */
        bt_assert_rc(baton_space_consume(space, &ca, &pat, 1, count_fn, &ran, 0, NULL), 0);
        bt_assert_rc(baton_space_produce(space, ca, d, false), 0);
        assert_int_equal(atomic_load(&ran), 3 * i + 2); /* the waiting consumer took it */
        bt_assert_rc(baton_space_produce(space, chans[0], d, false), 0);
        bt_assert_rc(baton_space_consume(space, chans, pats, 2, count_fn, &ran, 0, NULL), 0);
        assert_int_equal(atomic_load(&ran), 3 * i + 2); /* the join waits for b */
        bt_assert_rc(baton_space_produce(space, chans[1], d, false), 0);
        assert_int_equal(atomic_load(&ran), 3 * i + 3); /* b's datum completed it */
    }
    bt_assert_rc(baton_space_quiesce(space), 0);
    baton_space_destroy(space);
    baton_pattern_destroy(pat);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consume_produce_errors),
        cmocka_unit_test(test_views_copied),
        cmocka_unit_test(test_quiesce_first_error),
        cmocka_unit_test(test_fresh_names),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_config_struct_size),
        cmocka_unit_test(test_continuations_on_the_calling_worker),
        cmocka_unit_test(test_outside_call_waits_for_its_continuations),
    };
    return cmocka_run_group_tests_name("space/contract", tests, group_setup, group_teardown);
}
