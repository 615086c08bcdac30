/*
 * test_space_model.c — the in-memory tuplespace (include/baton/space.h) against a reference model.
 *
 * Sequential determinism: one caller thread, continuations that only record, against a reference
 * model written here that follows the space's rules step by step: a consume takes, per channel,
 * the oldest matching datum (a persistent consumer goes on while its firing removed something,
 * then registers); a produce stores the datum and walks the channel's registrations oldest first —
 * a matching single-channel consumer fires on the new datum (the walk ends when the datum is
 * removed), a matching join is re-evaluated as a whole (per channel its oldest matching datum,
 * which on this channel may be an older one) and the walk resumes after it if the datum is still
 * stored. With one caller, every channel is idle when it calls, so it runs each operation itself
 * and the call returns after the continuations of the firings it ran (space.h), so after every
 * call the firings must be exactly the model's, and the visit (data per channel in order,
 * consumers in registration order) must be the model's state.
 *
 * Two runs of the same model: the small one (5 channels, consumers of 1 to 3 channels), and a wide
 * one (1100 channels, joins of 1, 2, 3, 64, 65, 100 and 1000 channels, which the space once
 * refused above 64), where a third of the operations fill a waiting join: a datum that its
 * pattern matches on each of its channels in a random order, each produce checked on its own, so
 * wide joins are re-evaluated, compete for data with older and overlapping joins and fire.
 *
 * The concurrent stress against an oracle is in test_space_stress.c; the helpers both share are in
 * bt_space_stress.h.
 */
#include "support/bt_common.h"
#include "support/bt_space_stress.h"

/* What a run draws from: its channels, and how it picks a consumer's width and patterns. */
typedef struct m_params {
    const char *name;
    int n_channels;
    const char *const *channel_text; /* NULL: the channels ("w", i) */
    const int *widths;               /* a consumer's width is widths[roll % n_widths] ... */
    const int *width_weights;        /* ... with these weights out of 100 */
    int n_widths;
    int fill_percent; /* operations that fill a waiting join (0: none) */
    size_t ops, ops_floor;
    size_t compare_every;
} m_params;

typedef struct m_datum {
    int channel, tag;
    bool persistent;
    bool stored;
} m_datum;

typedef struct m_consumer {
    int n;
    int *chans, *pats;
    unsigned flags;
    bool registered;
    bool with_body;
    uint64_t id;
} m_consumer;

typedef struct m_reg {
    int consumer;
    uint64_t seq;
} m_reg;

/* A firing: the consumer and its data's serials in the order it listed its channels. */
typedef struct m_firing {
    int consumer;
    int n;
    int *data;
} m_firing;

typedef struct m_list {
    int *items;
    size_t count, cap;
} m_list;

static void m_list_push(m_list *l, int v)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->items = realloc(l->items, l->cap * sizeof(int));
        assert_non_null(l->items);
    }
    l->items[l->count++] = v;
}

static void m_list_remove(m_list *l, int v)
{
    for (size_t i = 0; i < l->count; i++)
        if (l->items[i] == v) {
            memmove(&l->items[i], &l->items[i + 1], (l->count - i - 1) * sizeof(int));
            l->count--;
            return;
        }
    fail_msg("model: %d not in list", v);
}

typedef struct model {
    int n_channels;
    m_datum *data;
    m_consumer *consumers;
    m_list *chan_data; /* serials, oldest first */
    m_reg **regs;      /* oldest first */
    size_t *n_regs, *cap_regs;
    uint64_t *reg_seq;
    int *found;      /* m_top's scratch: a datum per channel */
    m_firing *fires; /* this call's firings */
    size_t n_fires, cap_fires;
} model;

static int *m_ints(size_t n)
{
    int *p = calloc(n > 0 ? n : 1, sizeof(int));
    assert_non_null(p);
    return p;
}

static void m_fire(model *m, int k, const int *data)
{
    if (m->n_fires == m->cap_fires) {
        m->cap_fires = m->cap_fires ? 2 * m->cap_fires : 64;
        m->fires = realloc(m->fires, m->cap_fires * sizeof *m->fires);
        assert_non_null(m->fires);
    }
    m_firing *f = &m->fires[m->n_fires++];
    f->consumer = k;
    f->n = m->consumers[k].n;
    f->data = m_ints((size_t)f->n);
    memcpy(f->data, data, (size_t)f->n * sizeof(int));
}

static void m_remove_datum(model *m, int d)
{
    m_list_remove(&m->chan_data[m->data[d].channel], d);
    m->data[d].stored = false;
}

static void m_register(model *m, int k)
{
    m_consumer *c = &m->consumers[k];
    for (int i = 0; i < c->n; i++) {
        int ch = c->chans[i];
        if (m->n_regs[ch] == m->cap_regs[ch]) {
            m->cap_regs[ch] = m->cap_regs[ch] ? 2 * m->cap_regs[ch] : 64;
            m->regs[ch] = realloc(m->regs[ch], m->cap_regs[ch] * sizeof(m_reg));
            assert_non_null(m->regs[ch]);
        }
        m->regs[ch][m->n_regs[ch]++] = (m_reg){k, ++m->reg_seq[ch]};
    }
    c->registered = true;
}

static void m_unregister(model *m, int k)
{
    m_consumer *c = &m->consumers[k];
    for (int i = 0; i < c->n; i++) {
        int ch = c->chans[i];
        size_t j = 0;
        while (j < m->n_regs[ch] && m->regs[ch][j].consumer != k)
            j++;
        assert_true(j < m->n_regs[ch]);
        memmove(&m->regs[ch][j], &m->regs[ch][j + 1], (m->n_regs[ch] - j - 1) * sizeof(m_reg));
        m->n_regs[ch]--;
    }
    c->registered = false;
}

static int m_oldest(model *m, int ch, int pat)
{
    m_list *l = &m->chan_data[ch];
    for (size_t i = 0; i < l->count; i++)
        if (bt_pat_matches(pat, m->data[l->items[i]].tag))
            return l->items[i];
    return -1;
}

/* space.c's top(): a consume (registers if it stays) or the re-evaluation of a registered join. */
static void m_top(model *m, int k, bool consume)
{
    m_consumer *c = &m->consumers[k];
    bool alive = consume || c->registered;
    int *found = m->found;
    while (alive) {
        int i;
        for (i = 0; i < c->n; i++) {
            found[i] = m_oldest(m, c->chans[i], c->pats[i]);
            if (found[i] < 0)
                break;
        }
        if (i < c->n)
            break;
        m_fire(m, k, found);
        bool removed = false;
        for (i = 0; i < c->n; i++)
            if (!(c->flags & BATON_CONSUME_PEEK) && !m->data[found[i]].persistent) {
                m_remove_datum(m, found[i]);
                removed = true;
            }
        if (!(c->flags & BATON_CONSUME_PERSISTENT)) {
            if (c->registered)
                m_unregister(m, k);
            alive = false;
            break;
        }
        if (!removed)
            break;
    }
    if (consume && alive)
        m_register(m, k);
}

/* space.c's settle(): the walk of channel ch's registrations after after_seq for datum d. */
static void m_settle(model *m, int ch, int d)
{
    uint64_t after = 0;
    for (;;) {
        size_t j = 0;
        int pos = -1;
        m_consumer *c = NULL;
        for (; j < m->n_regs[ch]; j++) {
            if (m->regs[ch][j].seq <= after)
                continue;
            c = &m->consumers[m->regs[ch][j].consumer];
            for (pos = 0; c->chans[pos] != ch; pos++) {
            }
            if (bt_pat_matches(c->pats[pos], m->data[d].tag))
                break;
        }
        if (j == m->n_regs[ch])
            return;
        m_reg r = m->regs[ch][j];
        if (c->n == 1) {
            m_fire(m, r.consumer, &d);
            bool removed = !(c->flags & BATON_CONSUME_PEEK) && !m->data[d].persistent;
            if (!(c->flags & BATON_CONSUME_PERSISTENT))
                m_unregister(m, r.consumer);
            if (removed) {
                m_remove_datum(m, d);
                return;
            }
        } else {
            m_top(m, r.consumer, false);
            if (!m->data[d].stored)
                return;
        }
        after = r.seq;
    }
}

/* The space's side: the firings its continuations logged during one call. */
static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static m_firing *g_log;
static size_t g_log_count, g_log_cap;
static atomic_int g_log_overflow;

static int m_record_fn(void *ctx, const baton_match *match)
{
    int k = (int)(intptr_t)ctx;
    m_firing f = {k, (int)match->n_channels, malloc(match->n_channels * sizeof(int))};
    if (f.data == NULL) {
        atomic_store(&g_log_overflow, 1);
        return 0;
    }
    for (size_t i = 0; i < match->n_channels; i++) {
        int64_t t = -1, sr = -1, tag = -1;
        BT_CHECK(bt_read_triple(match->data[i], &t, &sr, &tag) && t == 0);
        f.data[i] = (int)sr;
    }
    pthread_mutex_lock(&g_log_lock);
    if (g_log_count < g_log_cap) {
        g_log[g_log_count++] = f;
        f.data = NULL;
    } else {
        atomic_store(&g_log_overflow, 1);
    }
    pthread_mutex_unlock(&g_log_lock);
    free(f.data);
    return 0;
}

static int firing_cmp(const void *a, const void *b)
{
    const m_firing *x = a, *y = b;
    if (x->consumer != y->consumer)
        return x->consumer < y->consumer ? -1 : 1;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    for (int i = 0; i < x->n; i++)
        if (x->data[i] != y->data[i])
            return x->data[i] < y->data[i] ? -1 : 1;
    return 0;
}

static void m_print_firings(const char *who, const m_firing *f, size_t n)
{
    print_message("  %s: %zu firing(s)\n", who, n);
    for (size_t i = 0; i < n && i < 12; i++) {
        print_message("    consumer %d (%d channels):", f[i].consumer, f[i].n);
        for (int j = 0; j < f[i].n && j < 8; j++)
            print_message(" %d", f[i].data[j]);
        print_message("%s\n", f[i].n > 8 ? " ..." : "");
    }
}

static void m_firings_clear(m_firing *f, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free(f[i].data);
    *n = 0;
}

/* What the visit of the sequential space saw, in its order. */
typedef struct m_seen {
    model *m;
    baton_value **channels;
    bool wide_channels; /* the channels are ("w", i) */
    int **data;         /* serials per channel, in visit order */
    size_t *n_data;
    size_t *cap_data;
    int last_channel;
    bool *channel_done;
    int *consumers; /* model indices, in visit order */
    size_t n_consumers, cap_consumers;
    size_t errors;
    size_t n_ids;
} m_seen;

static int m_channel_of(const m_seen *seen, baton_value_view v)
{
    int n = seen->m->n_channels;
    if (seen->wide_channels) {
        int64_t i = baton_view_int(baton_view_element(v, 1));
        if (i >= 0 && i < n && baton_view_equal(v, baton_value_as_view(seen->channels[i])))
            return (int)i;
        return -1;
    }
    for (int c = 0; c < n; c++)
        if (baton_view_equal(v, baton_value_as_view(seen->channels[c])))
            return c;
    return -1;
}

static int m_on_datum(void *ctx, const baton_space_datum_info *info)
{
    m_seen *seen = ctx;
    int c = m_channel_of(seen, info->channel);
    int64_t t, sr, tag;
    if (c < 0 || !bt_read_triple(info->datum, &t, &sr, &tag)) {
        BT_SEEN_ERROR(seen, "visit: datum on an unknown channel or of unknown shape\n");
        return 0;
    }
    /* Channels come as groups: one channel's data all together. */
    if (c != seen->last_channel) {
        if (seen->channel_done[c])
            BT_SEEN_ERROR(seen, "visit: channel %d's data not reported together\n", c);
        if (seen->last_channel >= 0)
            seen->channel_done[seen->last_channel] = true;
        seen->last_channel = c;
    }
    model *m = seen->m;
    if (sr >= 0 && m->data[sr].persistent != info->persistent)
        BT_SEEN_ERROR(seen, "visit: datum %" PRId64 " persistent %d, model %d\n", sr,
                   info->persistent, m->data[sr].persistent);
    if (seen->n_data[c] == seen->cap_data[c]) {
        seen->cap_data[c] = seen->cap_data[c] ? 2 * seen->cap_data[c] : 64;
        seen->data[c] = realloc(seen->data[c], seen->cap_data[c] * sizeof(int));
        if (seen->data[c] == NULL)
            return BATON_ENOMEM;
    }
    seen->data[c][seen->n_data[c]++] = (int)sr;
    return 0;
}

static int m_on_consumer(void *ctx, const baton_space_consumer_info *info)
{
    m_seen *seen = ctx;
    model *m = seen->m;
    /* The model's consumers have ascending ids: find this one. */
    size_t lo = 0, hi = seen->n_ids;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->consumers[mid].id < info->id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == seen->n_ids || m->consumers[lo].id != info->id) {
        BT_SEEN_ERROR(seen, "visit: unknown consumer id %" PRIu64 "\n", info->id);
        return 0;
    }
    int k = (int)lo;
    m_consumer *c = &m->consumers[k];
    bool same = info->flags == c->flags && info->n_channels == (size_t)c->n;
    for (int i = 0; same && i < c->n; i++)
        same = m_channel_of(seen, info->channels[i]) == c->chans[i] &&
               info->patterns[i] == bt_pats[c->pats[i]];
    if (same) {
        int64_t x, y, z;
        if (c->with_body)
            same = bt_read_triple(info->body, &x, &y, &z) && x == -1 && y == k && z == -1;
        else
            same = baton_view_kind(info->body) == BATON_VALUE_NIL;
    }
    if (!same)
        BT_SEEN_ERROR(seen, "visit: consumer %d reported unlike registered\n", k);
    if (seen->n_consumers == seen->cap_consumers) {
        seen->cap_consumers = seen->cap_consumers ? 2 * seen->cap_consumers : 64;
        seen->consumers = realloc(seen->consumers, seen->cap_consumers * sizeof(int));
        if (seen->consumers == NULL)
            return BATON_ENOMEM;
    }
    seen->consumers[seen->n_consumers++] = k;
    return 0;
}

/* The whole state: the visit against the model. */
static void m_compare_state(baton_space *space, model *m, baton_value **channels,
                            bool wide_channels, size_t n_made, size_t op)
{
    size_t nc = (size_t)m->n_channels;
    m_seen seen;
    memset(&seen, 0, sizeof seen);
    seen.m = m;
    seen.last_channel = -1;
    seen.n_ids = n_made;
    seen.channels = channels;
    seen.wide_channels = wide_channels;
    seen.data = calloc(nc, sizeof *seen.data);
    seen.n_data = calloc(nc, sizeof *seen.n_data);
    seen.cap_data = calloc(nc, sizeof *seen.cap_data);
    seen.channel_done = calloc(nc, sizeof *seen.channel_done);
    assert_true(seen.data && seen.n_data && seen.cap_data && seen.channel_done);
    bt_assert_rc(baton_space_visit(space, m_on_datum, m_on_consumer, &seen), 0);
    size_t errors = seen.errors;
    size_t total_data = 0;
    for (int c = 0; c < m->n_channels; c++) {
        m_list *l = &m->chan_data[c];
        total_data += l->count;
        bool same = l->count == seen.n_data[c];
        for (size_t i = 0; same && i < l->count; i++)
            same = l->items[i] == seen.data[c][i];
        if (!same && errors++ < 10)
            print_message("after op %zu: channel %d holds %zu data, the model %zu (or another "
                          "order)\n",
                          op, c, seen.n_data[c], l->count);
        size_t d = 0, k = 0;
        bt_assert_rc(baton_space_channel_counts(space, baton_value_as_view(channels[c]), &d, &k),
                     0);
        if (d != l->count || k != m->n_regs[c])
            if (errors++ < 10)
                print_message("after op %zu: channel %d counts %zu/%zu, model %zu/%zu\n", op, c, d,
                              k, l->count, m->n_regs[c]);
    }
    size_t n_waiting = 0;
    for (size_t k = 0; k < n_made; k++)
        if (m->consumers[k].registered) {
            if (n_waiting >= seen.n_consumers || seen.consumers[n_waiting] != (int)k)
                if (errors++ < 10)
                    print_message("after op %zu: waiting consumer %zu not reported in its place\n",
                                  op, k);
            n_waiting++;
        }
    if (n_waiting != seen.n_consumers && errors++ < 10)
        print_message("after op %zu: %zu waiting consumers, the model %zu\n", op,
                      seen.n_consumers, n_waiting);
    baton_space_stats stats;
    memset(&stats, 0, sizeof stats);
    bt_assert_rc(baton_space_get_stats(space, &stats), 0);
    if ((stats.data != total_data || stats.consumers != n_waiting) && errors++ < 10)
        print_message("after op %zu: stats %zu data, %zu consumers; model %zu, %zu\n", op,
                      stats.data, stats.consumers, total_data, n_waiting);
    for (int c = 0; c < m->n_channels; c++)
        free(seen.data[c]);
    free(seen.data);
    free(seen.n_data);
    free(seen.cap_data);
    free(seen.channel_done);
    free(seen.consumers);
    if (errors)
        fail_msg("after op %zu: %zu difference(s) between the space and the model", op, errors);
}

/* A pattern for one channel of a consumer of width n: any of the table for small consumers; for
 * wide joins only patterns that ordinary data can match, or one channel in a hundred would make a
 * 1000-channel join unfireable. */
static int m_pick_pattern(bt_rng *rng, int n)
{
    static const int wide_pats[] = {0, 1, 2, 3, 4, 6};
    if (n <= 3)
        return bt_pick_pattern(rng);
    return wide_pats[bt_rng_below(rng, sizeof wide_pats / sizeof wide_pats[0])];
}

/* A tag 0..3 that pattern p matches; any of them for a pattern that none matches (a small
 * consumer's BT_PERSISTENT_PAT or BT_NOTHING_PAT). */
static int m_tag_for(bt_rng *rng, int p)
{
    if (p == BT_PERSISTENT_PAT || p == BT_NOTHING_PAT || p == BT_FOOD_PAT)
        return (int)bt_rng_below(rng, 4);
    for (;;) {
        int tag = (int)bt_rng_below(rng, 4);
        if (bt_pat_matches(p, tag))
            return tag;
    }
}

static int m_pick_width(bt_rng *rng, const m_params *p)
{
    int roll = (int)bt_rng_below(rng, 100);
    for (int i = 0; i < p->n_widths; i++) {
        if (roll < p->width_weights[i])
            return p->widths[i];
        roll -= p->width_weights[i];
    }
    return p->widths[0];
}

/* One produce, on the model and the space. */
static void m_produce(model *m, baton_space *space, baton_value_builder *b, baton_value **channels,
                      int d, int channel, int tag, bool persistent)
{
    m_datum *md = &m->data[d];
    md->channel = channel;
    md->persistent = persistent;
    md->tag = tag;
    md->stored = true;
    baton_value *v = bt_make_triple(b, 0, d, md->tag);
    assert_non_null(v);
    bt_assert_rc(baton_space_produce(space, baton_value_as_view(channels[channel]),
                                     baton_value_as_view(v), persistent),
                 0);
    baton_value_destroy(v);
    m_list_push(&m->chan_data[channel], d);
    m_settle(m, channel, d);
}

/* One consume of a new consumer k, on the model and the space. */
static void m_consume(model *m, baton_space *space, baton_value_builder *b, baton_value **channels,
                      bt_rng *rng, const m_params *p, int k, int *perm)
{
    m_consumer *c = &m->consumers[k];
    c->n = m_pick_width(rng, p);
    c->chans = m_ints((size_t)c->n);
    c->pats = m_ints((size_t)c->n);
    uint64_t roll = bt_rng_below(rng, 100);
    c->flags = roll < 8    ? BATON_CONSUME_PEEK
               : roll < 12 ? BATON_CONSUME_PERSISTENT
               : roll < 14 ? BATON_CONSUME_PERSISTENT | BATON_CONSUME_PEEK
                           : 0u;
    c->with_body = bt_rng_below(rng, 2) == 0;
    baton_value_view *views = calloc((size_t)c->n, sizeof *views);
    baton_pattern **pats = calloc((size_t)c->n, sizeof *pats);
    assert_true(views != NULL && pats != NULL);
    /* Distinct channels: the first n of a partial shuffle. */
    for (int i = 0; i < c->n; i++) {
        int j = i + (int)bt_rng_below(rng, (uint64_t)(m->n_channels - i));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        c->chans[i] = perm[i];
        c->pats[i] = m_pick_pattern(rng, c->n);
        views[i] = baton_value_as_view(channels[c->chans[i]]);
        pats[i] = bt_pats[c->pats[i]];
    }
    uint64_t id = 0;
    void *ctx = (void *)(intptr_t)k;
    if (c->with_body) {
        baton_value *body = bt_make_triple(b, -1, k, -1);
        assert_non_null(body);
        bt_assert_rc(baton_space_consume_body(space, views, pats, (size_t)c->n, m_record_fn, ctx,
                                              c->flags, baton_value_as_view(body), &id),
                     0);
        baton_value_destroy(body);
    } else {
        bt_assert_rc(
            baton_space_consume(space, views, pats, (size_t)c->n, m_record_fn, ctx, c->flags, &id),
            0);
    }
    free(views);
    free(pats);
    c->id = id;
    assert_true(k == 0 || id > m->consumers[k - 1].id);
    m_top(m, k, true);
}

/* After one call: the space's firings (its continuations ran before the call returned) must be
 * the model's. */
static void m_check_call(model *m, size_t op, uint64_t seed, size_t *total_firings)
{
    pthread_mutex_lock(&g_log_lock);
    size_t n_logged = g_log_count;
    pthread_mutex_unlock(&g_log_lock);
    assert_int_equal(atomic_load(&g_log_overflow), 0);
    bt_assert_no_thread_failures();
    if (n_logged > 1)
        qsort(g_log, n_logged, sizeof *g_log, firing_cmp);
    if (m->n_fires > 1)
        qsort(m->fires, m->n_fires, sizeof *m->fires, firing_cmp);
    bool same = n_logged == m->n_fires;
    for (size_t i = 0; same && i < n_logged; i++)
        same = firing_cmp(&g_log[i], &m->fires[i]) == 0;
    if (!same) {
        print_message("op %zu: the space's firings differ from the model's\n", op);
        m_print_firings("space", g_log, n_logged);
        m_print_firings("model", m->fires, m->n_fires);
        fail_msg("op %zu (seed %" PRIu64 "): firings differ", op, seed);
    }
    *total_firings += n_logged;
    m_firings_clear(g_log, &g_log_count); /* no continuation runs between calls */
    m_firings_clear(m->fires, &m->n_fires);
}

static void m_run(const m_params *p)
{
    size_t n_ops = bt_scaled((double)p->ops, p->ops_floor);
    uint64_t seed = bt_now_ns();
    printf("# %s: %zu ops, %d channels, seed %" PRIu64 "\n", p->name, n_ops, p->n_channels, seed);
    bt_rng rng = bt_rng_seed(seed);
    baton_space *space = bt_space_new();
    size_t nc = (size_t)p->n_channels;
    model m;
    memset(&m, 0, sizeof m);
    m.n_channels = p->n_channels;
    m.data = calloc(n_ops, sizeof *m.data);
    m.consumers = calloc(n_ops, sizeof *m.consumers);
    m.chan_data = calloc(nc, sizeof *m.chan_data);
    m.regs = calloc(nc, sizeof *m.regs);
    m.n_regs = calloc(nc, sizeof *m.n_regs);
    m.cap_regs = calloc(nc, sizeof *m.cap_regs);
    m.reg_seq = calloc(nc, sizeof *m.reg_seq);
    m.found = m_ints(nc);
    int *perm = m_ints(nc);
    assert_true(m.data && m.consumers && m.chan_data && m.regs && m.n_regs && m.cap_regs &&
                m.reg_seq);
    g_log_cap = 1u << 16;
    g_log = calloc(g_log_cap, sizeof *g_log);
    assert_non_null(g_log);
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    baton_value **channels = calloc(nc, sizeof *channels);
    assert_non_null(channels);
    for (int c = 0; c < p->n_channels; c++) {
        perm[c] = c;
        if (p->channel_text != NULL) {
            channels[c] = bt_value(p->channel_text[c]);
        } else {
            char text[32];
            snprintf(text, sizeof text, "(\"w\", %d)", c);
            channels[c] = bt_value(text);
        }
    }
    /* Consumers waiting now, for fills. */
    int *waiting = m_ints(n_ops);
    size_t n_made = 0, n_data = 0, total_firings = 0;
    int fill = -1, fill_at = 0; /* the consumer being filled, and its next listed channel */
    int *fill_order = m_ints(nc);
    for (size_t op = 0; op < n_ops; op++) {
        if (fill < 0 && (int)bt_rng_below(&rng, 100) < p->fill_percent) {
            size_t n_waiting = 0;
            for (size_t k = 0; k < n_made; k++)
                if (m.consumers[k].registered && m.consumers[k].n > 1)
                    waiting[n_waiting++] = (int)k;
            if (n_waiting > 0) {
                fill = waiting[bt_rng_below(&rng, n_waiting)];
                fill_at = 0;
                for (int i = 0; i < m.consumers[fill].n; i++)
                    fill_order[i] = i;
                for (int i = m.consumers[fill].n; i > 1; i--) {
                    int j = (int)bt_rng_below(&rng, (uint64_t)i), t = fill_order[i - 1];
                    fill_order[i - 1] = fill_order[j];
                    fill_order[j] = t;
                }
            }
        }
        if (fill >= 0) {
            /* The next channel of the join being filled gets a datum its pattern matches. */
            m_consumer *c = &m.consumers[fill];
            int i = fill_order[fill_at++];
            m_produce(&m, space, b, channels, (int)n_data++, c->chans[i],
                      m_tag_for(&rng, c->pats[i]), false);
            if (fill_at == c->n || !c->registered)
                fill = -1;
        } else if (bt_rng_below(&rng, 100) < 50) {
            bool persistent = bt_rng_below(&rng, 100) < 3;
            int tag = persistent && bt_rng_below(&rng, 2) ? BT_PERSISTENT_TAG
                                                          : (int)bt_rng_below(&rng, 4);
            m_produce(&m, space, b, channels, (int)n_data++,
                      (int)bt_rng_below(&rng, (uint64_t)p->n_channels), tag, persistent);
        } else {
            m_consume(&m, space, b, channels, &rng, p, (int)n_made++, perm);
        }
        /* The only caller ran this operation itself (continuations only record): the call has
         * returned after its firings' continuations ran. */
        m_check_call(&m, op, seed, &total_firings);
        if (op % p->compare_every == p->compare_every - 1 || op + 1 == n_ops)
            m_compare_state(space, &m, channels, p->channel_text == NULL, n_made, op);
    }
    bt_assert_rc(baton_space_quiesce(space), 0);
    m_compare_state(space, &m, channels, p->channel_text == NULL, n_made, n_ops);
    size_t left = 0, wide_fired = 0;
    for (int c = 0; c < p->n_channels; c++)
        left += m.chan_data[c].count;
    for (size_t k = 0; k < n_made; k++)
        wide_fired += m.consumers[k].n > 64 && !m.consumers[k].registered;
    printf("# %s: %zu data, %zu consumers, %zu firings (%zu joins over 64 channels done); left "
           "%zu data\n",
           p->name, n_data, n_made, total_firings, wide_fired, left);
    baton_value_builder_destroy(b);
    for (int c = 0; c < p->n_channels; c++) {
        baton_value_destroy(channels[c]);
        free(m.chan_data[c].items);
        free(m.regs[c]);
    }
    for (size_t k = 0; k < n_made; k++) {
        free(m.consumers[k].chans);
        free(m.consumers[k].pats);
    }
    free(channels);
    free(m.fires);
    free(m.data);
    free(m.consumers);
    free(m.chan_data);
    free(m.regs);
    free(m.n_regs);
    free(m.cap_regs);
    free(m.reg_seq);
    free(m.found);
    free(perm);
    free(waiting);
    free(fill_order);
    free(g_log);
    g_log = NULL;
    baton_space_destroy(space);
}

static void test_sequential_model(void **state)
{
    (void)state;
    static const char *const texts[] = {"@1", "\"x\"", "(1, 2)", "7", "@99"};
    static const int widths[] = {1, 2, 3}, weights[] = {55, 30, 15};
    m_params p = {"sequential", 5, texts, widths, weights, 3, 0, 20000, 2000, 1000};
    m_run(&p);
}

/* Joins of 65, 100 and 1000 channels (and 64, and small ones) against the same model. */
static void test_wide_model(void **state)
{
    (void)state;
    static const int widths[] = {1, 2, 3, 64, 65, 100, 1000};
    static const int weights[] = {30, 20, 10, 10, 12, 12, 6};
    m_params p = {"wide", 1100, NULL, widths, weights, 7, 35, 20000, 3000, 1000};
    m_run(&p);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sequential_model, bt_setup_patterns,
                                        bt_teardown_patterns),
        cmocka_unit_test_setup_teardown(test_wide_model, bt_setup_patterns, bt_teardown_patterns),
    };
    return cmocka_run_group_tests_name("space/model", tests, group_setup, group_teardown);
}
