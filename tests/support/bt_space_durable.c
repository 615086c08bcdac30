/*
 * bt_space_durable.c — the durable-space tests' helpers of bt_space_durable.h.
 */
#include "support/bt_common.h"
#include "support/bt_space_durable.h"

void bt_space_tmpdir(char *path, size_t cap)
{
    bt_make_tmpdir(path, cap, "baton-dur");
}

baton_pool *bt_pool_new(unsigned workers)
{
    baton_pool *pool = NULL;
    baton_pool_config config = bt_pool_config(workers, 0, 0);
    bt_assert_rc(baton_pool_create(&config, &pool), 0);
    return pool;
}

baton_space_config bt_space_config(baton_pool *pool, baton_durability durability,
                                   baton_revive_fn revive, void *revive_ctx)
{
    baton_space_config config = {.struct_size = sizeof config,
                                 .pool = pool,
                                 .durability = durability,
                                 .revive = revive,
                                 .revive_ctx = revive_ctx};
    return config;
}

baton_space *bt_space_open_ok(const baton_space_config *config, const char *dir)
{
    baton_space *space = NULL;
    bt_assert_rc(baton_space_open(config, dir, &space), 0);
    assert_non_null(space);
    return space;
}

void bt_put(baton_space *space, const char *channel, const char *datum, bool persistent)
{
    baton_value *c = bt_value(channel), *d = bt_value(datum);
    bt_assert_rc(
        baton_space_produce(space, baton_value_as_view(c), baton_value_as_view(d), persistent), 0);
    baton_value_destroy(c);
    baton_value_destroy(d);
}

baton_space_stats bt_stats_of(baton_space *space)
{
    baton_space_stats s;
    memset(&s, 0, sizeof s);
    bt_assert_rc(baton_space_get_stats(space, &s), 0);
    return s;
}

void bt_view_text(baton_value_view v, char *buf, size_t cap)
{
    size_t length = 0;
    if (baton_value_print(v, buf, cap, &length) != 0 && cap > 0)
        snprintf(buf, cap, "<unprintable>");
}

int bt_kslot_fn(void *ctx, const baton_match *match)
{
    bt_kslot *s = ctx;
    for (size_t i = 0; i < match->n_channels && i < 4; i++)
        bt_view_text(match->data[i], s->last[i], sizeof s->last[i]);
    atomic_fetch_add(&s->fired, 1);
    return 0;
}

uint64_t bt_take(baton_space *space, size_t n, const char *const *channels,
                 const char *const *patterns, baton_pattern **keep, const char *body,
                 bt_kslot *slot, unsigned flags)
{
    baton_value *values[4];
    baton_value_view views[4];
    for (size_t i = 0; i < n; i++) {
        values[i] = bt_value(channels[i]);
        views[i] = baton_value_as_view(values[i]);
        keep[i] = bt_pattern(patterns[i]);
    }
    uint64_t id = 0;
    if (body == NULL) {
        bt_assert_rc(baton_space_consume(space, views, keep, n, bt_kslot_fn, slot, flags, &id), 0);
    } else {
        baton_value *b = bt_value(body);
        bt_assert_rc(baton_space_consume_body(space, views, keep, n, bt_kslot_fn, slot, flags,
                                              baton_value_as_view(b), &id),
                     0);
        baton_value_destroy(b);
    }
    for (size_t i = 0; i < n; i++)
        baton_value_destroy(values[i]);
    assert_true(id > 0);
    return id;
}

void bt_dump_add(bt_dump *d, const char *s)
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

void bt_dump_view(bt_dump *d, baton_value_view v)
{
    char buf[512];
    size_t length = 0;
    int rc = baton_value_print(v, buf, sizeof buf, &length);
    if (rc != 0)
        d->rc = rc;
    else
        bt_dump_add(d, buf);
}

int bt_dump_datum(void *ctx, const baton_space_datum_info *info)
{
    bt_dump *d = ctx;
    char line[64];
    bt_dump_add(d, "D ");
    bt_dump_view(d, info->channel);
    bt_dump_add(d, " <- ");
    bt_dump_view(d, info->datum);
    snprintf(line, sizeof line, " #%" PRIu64 "%s\n", info->id,
             info->persistent ? " persistent" : "");
    bt_dump_add(d, line);
    d->n_data++;
    return d->rc;
}

int bt_dump_consumer(void *ctx, const baton_space_consumer_info *info)
{
    bt_dump *d = ctx;
    char line[128];
    snprintf(line, sizeof line, "K #%" PRIu64 " flags=%u body=", info->id, info->flags);
    bt_dump_add(d, line);
    bt_dump_view(d, info->body);
    bt_dump_add(d, " [");
    for (size_t i = 0; i < info->n_channels; i++) {
        char pattern[256];
        size_t length = 0;
        if (baton_pattern_print(info->patterns[i], pattern, sizeof pattern, &length) != 0)
            d->rc = BATON_ERANGE;
        bt_dump_view(d, info->channels[i]);
        bt_dump_add(d, ": ");
        bt_dump_add(d, pattern);
        bt_dump_add(d, i + 1 < info->n_channels ? "; " : "");
    }
    bt_dump_add(d, "]\n");
    if (d->n_consumers < 64)
        d->ids[d->n_consumers] = info->id;
    d->n_consumers++;
    return d->rc;
}

bt_dump bt_dump_space(baton_space *space)
{
    bt_dump d;
    memset(&d, 0, sizeof d);
    bt_dump_add(&d, "");
    bt_assert_rc(baton_space_visit(space, bt_dump_datum, bt_dump_consumer, &d), 0);
    assert_int_equal(d.rc, 0);
    return d;
}

int bt_revive_fn(void *revive_ctx, uint64_t id, baton_value_view body, baton_continuation_fn *fn,
                 void **ctx)
{
    bt_reviver *r = revive_ctx;
    if ((int)r->n == r->fail_at) {
        r->n++;
        return r->fail_rc;
    }
    if (r->n >= 64)
        return BATON_ENOMEM;
    bt_kslot *s = &r->slots[r->n++];
    s->id = id;
    bt_view_text(body, s->body, sizeof s->body);
    *fn = bt_kslot_fn;
    *ctx = s;
    return 0;
}

bt_reviver *bt_reviver_new(void)
{
    bt_reviver *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->fail_at = -1;
    return r;
}

bt_kslot *bt_revived(bt_reviver *r, uint64_t id)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->slots[i].id == id)
            return &r->slots[i];
    fail_msg("consumer %" PRIu64 " was not revived", id);
    return NULL;
}

void bt_session_free_patterns(bt_session *s)
{
    for (size_t i = 0; i < s->n_patterns; i++)
        baton_pattern_destroy(s->patterns[i]);
    s->n_patterns = 0;
}

uint64_t bt_session_take(bt_session *s, baton_space *space, size_t n, const char *const *channels,
                         const char *const *patterns, const char *body, bt_kslot *slot,
                         unsigned flags)
{
    uint64_t id =
        bt_take(space, n, channels, patterns, s->patterns + s->n_patterns, body, slot, flags);
    s->n_patterns += n;
    if (id > s->max_consumer)
        s->max_consumer = id;
    return id;
}

void bt_populate(bt_session *s, baton_space *space)
{
    for (int i = 0; i < 12; i++) {
        uint64_t name = baton_space_fresh_name(space);
        snprintf(s->n[i], sizeof s->n[i], "@%" PRIu64, name);
        if (name > s->max_name)
            s->max_name = name;
    }
    char t3[64];
    snprintf(t3, sizeof t3, "(\"t\", %s)", s->n[3]);
    bt_put(space, s->n[1], "1", false);
    bt_put(space, s->n[1], "2", true);
    bt_put(space, s->n[1], "3", false);
    bt_put(space, s->n[2], "\"x\"", false);
    bt_put(space, t3, "5", true);
    bt_put(space, s->n[4], "@5000", false);
    bt_put(space, s->n[4], "(\"ref\", [@7000])", false);
    /* Waiting: a single with a body, a join listed against the sort order, a persistent one, a
     * peeking one, and a join over a tuple channel. */
    s->waiting[0] =
        bt_session_take(s, space, 1, (const char *[]){s->n[5]}, (const char *[]){"(\"k\", Int)"},
                        "(\"k\", 7)", &s->slots[0], 0);
    s->waiting[1] =
        bt_session_take(s, space, 2, (const char *[]){s->n[6], s->n[1]},
                        (const char *[]){"x", "100 | 200"}, "(\"join\", [1, 2])", &s->slots[1], 0);
    s->waiting[2] =
        bt_session_take(s, space, 1, (const char *[]){s->n[7]}, (const char *[]){"String"}, NULL,
                        &s->slots[2], BATON_CONSUME_PERSISTENT);
    s->waiting[3] = bt_session_take(s, space, 1, (const char *[]){s->n[2]}, (const char *[]){"Int"},
                                    "\"peek\"", &s->slots[3], BATON_CONSUME_PEEK);
    s->waiting[4] = bt_session_take(s, space, 2, (const char *[]){s->n[8], t3},
                                    (const char *[]){"(a, b)", "6"}, "42", &s->slots[4], 0);
    /* Firings. */
    bt_session_take(s, space, 1, (const char *[]){s->n[9]}, (const char *[]){"Int"}, "(\"f\", 1)",
                    &s->slots[5], 0);
    bt_put(space, s->n[9], "9", false);
    bt_put(space, s->n[7], "\"s\"", false); /* K3 fires and stays */
    bt_session_take(s, space, 2, (const char *[]){s->n[10], s->n[11]}, (const char *[]){"_", "_"},
                    "nil", &s->slots[6], 0);
    bt_put(space, s->n[10], "1", false);
    bt_put(space, s->n[11], "2", false);
    bt_session_take(s, space, 1, (const char *[]){s->n[1]}, (const char *[]){"1"}, NULL,
                    &s->slots[7], 0);
    bt_session_take(s, space, 1, (const char *[]){s->n[2]}, (const char *[]){"String"}, NULL,
                    &s->slots[8], BATON_CONSUME_PEEK);
    bt_session_take(s, space, 1, (const char *[]){t3}, (const char *[]){"5"}, NULL, &s->slots[9],
                    0);
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

bt_session *bt_populated_log(baton_pool *pool, baton_durability durability, char *dir, size_t cap,
                             bt_dump *before)
{
    bt_space_tmpdir(dir, cap);
    bt_session *s = calloc(1, sizeof *s);
    assert_non_null(s);
    baton_space_config config = bt_space_config(pool, durability, NULL, NULL);
    baton_space *space = bt_space_open_ok(&config, dir);
    bt_populate(s, space);
    *before = bt_dump_space(space);
    baton_space_destroy(space);
    bt_session_free_patterns(s);
    return s;
}
