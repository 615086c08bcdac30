/*
 * test_space_stress.c — the in-memory tuplespace (include/baton/space.h) under concurrent stress,
 * against an oracle.
 *
 * 16 caller threads (plain pthreads) run random operations on 1, 8 and 64 channels: produces (a
 * few persistent), single-channel consumes, 2- and 3-channel joins, persistent and peeking
 * consumers, patterns that match only some data, and continuations that produce again (hops).
 * Every datum is a unique (thread, serial, tag) tuple; every consumer has a record of its own (its
 * ctx, also named by its body) where its continuation logs each firing (a lock-free stack per
 * consumer). After baton_space_quiesce, baton_space_visit lists the stored data and the waiting
 * consumers, and the oracle checks: every non-persistent datum was taken by exactly one
 * non-peeking firing or is still stored, never both, never twice; every persistent datum is still
 * stored; a non-persistent consumer fired at most once, and fired exactly when it is no longer
 * waiting; persistent consumers are all still waiting; every firing's data came from the
 * consumer's channels, in the order it listed them, and matched its patterns (binders bound to the
 * right parts); the visit reports each consumer as it was registered and agrees with
 * baton_space_get_stats and baton_space_channel_counts; and the space is stable at quiescence (see
 * "Produce" in the DESIGN block of src/space/space.c): no waiting non-persistent consumer has a
 * matching stored datum on every channel, and no waiting persistent, non-peeking consumer has them
 * with one of the oldest matches non-persistent (firing would remove something).
 *
 * The sequential determinism test (one caller against a reference model of the space's rules) is
 * in test_space_model.c; the helpers both share are in bt_space_stress.h. The three
 * regression cases (a fired join leaves no registration behind, a persistent datum stays a
 * candidate, a join's channel order does not change the result) are test_fired_join_unregisters,
 * test_persistent_datum and test_join_order in test_space_core.c; they are not repeated here.
 */
#include "support/bt_common.h"
#include "support/bt_space_stress.h"

enum { S_THREADS = 16, HOP_THREAD = 16, MAX_CHANNELS = 64, MAX_NOTHING = 32 };

typedef struct s_datum {
    uint8_t channel;
    uint8_t tag;
    uint8_t owner; /* the caller thread whose balance counts it; S_THREADS: none (a hop, which
                    * its owner could not feed to a consumer: it is in no thread's queue) */
    bool persistent;
    bool made;
    atomic_bool gone; /* taken by a firing */
    /* Main thread, at the end. */
    int taken;
    int stored;
} s_datum;

typedef struct s_fire {
    struct s_fire *next;
    uint8_t n;
    int32_t thread[3];
    int32_t serial[3];
} s_fire;

typedef struct s_stress s_stress;

typedef struct s_consumer {
    s_stress *s;
    bool made;
    uint8_t n;
    uint8_t thread;
    unsigned flags;
    int chans[3];
    int pats[3];
    bool tracked; /* in its thread's waiting count: non-persistent, and an ordinary datum can
                   * match each of its patterns (not 5, which waits for a persistent one) */
    bool hop; /* produces (HOP_THREAD, fresh serial, hop_tag) on hop_chan when it fires */
    uint8_t hop_chan;
    uint8_t hop_tag;
    uint64_t id;
    _Atomic(s_fire *) fires;
    atomic_int fired;
    int waiting; /* main thread, at the end */
} s_consumer;

/*
 * Balance. On one channel every produce walks the channel's waiting consumers and every consume
 * its stored data, so a mix that lets either pile up is quadratic (a fixed 50/50 mix does: the
 * patterns ask for tags 2 and 3 more than for 0 and 1). Each caller thread therefore counts its
 * own waiting consumers and its own stored data (the continuations count them down), and while
 * one count is above `bound` it feeds it instead of drawing an operation: a produce of a datum
 * its oldest waiting consumer wants (on one of its channels, a tag its pattern there matches),
 * or a consume of its oldest stored datum's channel with a pattern matching that datum's tag.
 * Another thread's consumer or datum may be the one served (oldest matching wins); either way
 * the lists stay short.
 */
struct s_stress {
    baton_space *space;
    int n_channels;
    size_t ops_per_thread;
    baton_value *channels[MAX_CHANNELS];
    s_datum *data[S_THREADS];
    s_consumer *consumers[S_THREADS];
    s_datum *hops;
    size_t hop_cap;
    atomic_size_t next_hop;
    atomic_int persistent_consumers;
    atomic_int nothing_consumers; /* consumers with the pattern that matches nothing */
    atomic_long waiting[S_THREADS];
    atomic_long stored[S_THREADS];
    long bound;
    uint64_t seed;
};

/* Looks a datum up by its (thread, serial); NULL when no such datum was made. */
static s_datum *s_lookup(s_stress *s, int64_t thread, int64_t serial)
{
    if (thread >= 0 && thread < S_THREADS && serial >= 0 && (size_t)serial < s->ops_per_thread) {
        s_datum *d = &s->data[thread][serial];
        return d->made ? d : NULL;
    }
    if (thread == HOP_THREAD && serial >= 0 && (size_t)serial < atomic_load(&s->next_hop) &&
        (size_t)serial < s->hop_cap)
        return &s->hops[serial];
    return NULL;
}

/* Makes and produces a datum (d's fields set but made) as (thread, serial, tag). */
static void s_produce(s_stress *s, baton_value_builder *b, s_datum *d, int thread, size_t serial)
{
    d->made = true;
    if (!d->persistent && d->owner < S_THREADS)
        atomic_fetch_add(&s->stored[d->owner], 1);
    baton_value *v = bt_make_triple(b, thread, (int64_t)serial, d->tag);
    if (v != NULL)
        BT_CHECK(baton_space_produce(s->space, baton_value_as_view(s->channels[d->channel]),
                                     baton_value_as_view(v), d->persistent) == 0);
    baton_value_destroy(v);
}

static void s_hop(s_consumer *k)
{
    s_stress *s = k->s;
    size_t serial = atomic_fetch_add(&s->next_hop, 1);
    BT_CHECK(serial < s->hop_cap);
    if (serial >= s->hop_cap)
        return;
    s_datum *d = &s->hops[serial];
    d->channel = k->hop_chan;
    d->tag = k->hop_tag;
    d->owner = S_THREADS;
    d->persistent = false;
    baton_value_builder *b = NULL;
    BT_CHECK(baton_value_builder_create(&b) == 0);
    if (b != NULL)
        s_produce(s, b, d, HOP_THREAD, serial);
    baton_value_builder_destroy(b);
}

/* The binders of "(t, s, 2)" must be the datum's first two elements. */
static bool bindings_ok(int pat, baton_value_view datum, const baton_value_view *bindings)
{
    if (pat != BT_BINDER_PAT)
        return true;
    return bindings != NULL && baton_view_equal(bindings[0], baton_view_element(datum, 0)) &&
           baton_view_equal(bindings[1], baton_view_element(datum, 1));
}

static int s_fn(void *ctx, const baton_match *match)
{
    s_consumer *k = ctx;
    s_stress *s = k->s;
    s_fire *f = calloc(1, sizeof *f);
    BT_CHECK(f != NULL);
    if (f == NULL)
        return BATON_ENOMEM;
    BT_CHECK_MSG(match->n_channels == k->n, "a %u-channel consumer got %zu data", (unsigned)k->n,
                 match->n_channels);
    f->n = (uint8_t)(match->n_channels < 3 ? match->n_channels : 3);
    for (size_t i = 0; i < f->n; i++) {
        int64_t t = -1, sr = -1, tag = -1;
        BT_CHECK(bt_read_triple(match->data[i], &t, &sr, &tag));
        f->thread[i] = (int32_t)t;
        f->serial[i] = (int32_t)sr;
        BT_CHECK_MSG(bindings_ok(k->pats[i], match->data[i], match->bindings[i]),
                     "binders of (t, s, 2) wrong on channel %zu", i);
        /* The balance only: the oracle judges the takes at the end. */
        s_datum *d = s_lookup(s, t, sr);
        if (d != NULL && !d->persistent && d->owner < S_THREADS &&
            !(k->flags & BATON_CONSUME_PEEK) &&
            !atomic_exchange(&d->gone, true))
            atomic_fetch_sub(&s->stored[d->owner], 1);
    }
    s_fire *head = atomic_load(&k->fires);
    do
        f->next = head;
    while (!atomic_compare_exchange_weak(&k->fires, &head, f));
    int prior = atomic_fetch_add(&k->fired, 1);
    if (k->tracked && prior == 0)
        atomic_fetch_sub(&s->waiting[k->thread], 1);
    if (k->hop && prior == 0)
        s_hop(k);
    return 0;
}

typedef struct s_thread_arg {
    s_stress *s;
    int thread;
} s_thread_arg;

/* A tag that pattern p (one that some ordinary datum matches) matches. */
static int tag_for(bt_rng *rng, int p)
{
    static const int tags[BT_NPAT][4] = {{0, 1, 2, 3}, {3, 3, 3, 3}, {0, 1, 0, 1}, {2, 2, 2, 2},
                                      {2, 3, 2, 3}, {0},          {0, 1, 2, 3}, {0},
                                      {4, 4, 4, 4}};
    return tags[p][bt_rng_below(rng, 4)];
}

/* A pattern of a single-channel consumer that takes a datum with this tag. */
static int pat_for(bt_rng *rng, int tag)
{
    static const int pats[5][4] = {{0, 2, 2, 6}, {0, 2, 2, 6}, {0, 3, 4, 6}, {0, 1, 4, 6},
                                   {0, 0, 6, 6}};
    return pats[tag][bt_rng_below(rng, 4)];
}

/* The caller thread's own pending work, a ring of indices into its data or consumers: each index
 * is in it at most once, so cap = ops_per_thread is enough. */
typedef struct s_queue {
    size_t *items;
    size_t head, count, cap;
} s_queue;

static void s_queue_push(s_queue *q, size_t item)
{
    q->items[(q->head + q->count++) % q->cap] = item;
}

static size_t s_queue_pop(s_queue *q)
{
    size_t item = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    return item;
}

static void *s_thread(void *arg)
{
    s_thread_arg *a = arg;
    s_stress *s = a->s;
    int t = a->thread;
    bt_rng rng = bt_rng_seed(s->seed * 0x9e3779b97f4a7c15u + (uint64_t)t + 1);
    baton_value_builder *b = NULL;
    BT_CHECK(baton_value_builder_create(&b) == 0);
    s_queue mine_k = {calloc(s->ops_per_thread, sizeof(size_t)), 0, 0, s->ops_per_thread};
    s_queue mine_d = {calloc(s->ops_per_thread, sizeof(size_t)), 0, 0, s->ops_per_thread};
    BT_CHECK(b != NULL && mine_k.items != NULL && mine_d.items != NULL);
    for (size_t op = 0; b != NULL && mine_k.items != NULL && mine_d.items != NULL &&
                        op < s->ops_per_thread;
         op++) {
        /* Feed the oldest waiting consumer or the oldest stored datum when over the bound. */
        s_consumer *want = NULL;
        s_datum *left = NULL;
        bool over_k = atomic_load(&s->waiting[t]) > s->bound;
        bool over_d = atomic_load(&s->stored[t]) > s->bound;
        if (over_k && (!over_d || bt_rng_below(&rng, 2))) {
            while (mine_k.count > 0 && want == NULL) {
                size_t i = s_queue_pop(&mine_k);
                if (atomic_load(&s->consumers[t][i].fired) == 0) {
                    want = &s->consumers[t][i];
                    s_queue_push(&mine_k, i); /* fed now: its turn comes again after the rest */
                }
            }
        } else if (over_d) {
            while (mine_d.count > 0 && left == NULL) {
                size_t i = s_queue_pop(&mine_d);
                if (!atomic_load(&s->data[t][i].gone)) {
                    left = &s->data[t][i];
                    s_queue_push(&mine_d, i);
                }
            }
        }
        if (want != NULL || (left == NULL && bt_rng_below(&rng, 100) < 50)) {
            s_datum *d = &s->data[t][op];
            d->owner = (uint8_t)t;
            if (want != NULL) {
                size_t i = bt_rng_below(&rng, want->n);
                d->channel = (uint8_t)want->chans[i];
                d->persistent = false;
                d->tag = (uint8_t)tag_for(&rng, want->pats[i]);
            } else {
                d->channel = (uint8_t)bt_rng_below(&rng, (uint64_t)s->n_channels);
                d->persistent = bt_rng_below(&rng, 100) < 1;
                uint64_t roll = bt_rng_below(&rng, 100);
                d->tag = d->persistent ? BT_PERSISTENT_TAG
                         : roll < 4    ? BT_FOOD_TAG
                                       : (uint8_t)(roll % 4);
            }
            if (!d->persistent)
                s_queue_push(&mine_d, op);
            s_produce(s, b, d, t, op);
            continue;
        }
        s_consumer *k = &s->consumers[t][op];
        k->s = s;
        k->thread = (uint8_t)t;
        uint64_t roll = bt_rng_below(&rng, 100);
        k->n = left != NULL ? 1 : roll < 60 ? 1 : roll < 85 ? 2 : 3;
        if (k->n > s->n_channels)
            k->n = (uint8_t)s->n_channels;
        roll = bt_rng_below(&rng, 1000);
        k->flags = 0;
        if (left != NULL)
            k->flags = 0;
        else if (roll < 60)
            k->flags = BATON_CONSUME_PEEK;
        else if (roll < 70 && atomic_fetch_add(&s->persistent_consumers, 1) < 48)
            k->flags = BATON_CONSUME_PERSISTENT | (roll < 64 ? BATON_CONSUME_PEEK : 0u);
        k->hop = k->flags == 0 && bt_rng_below(&rng, 10) == 0;
        k->hop_chan = (uint8_t)bt_rng_below(&rng, (uint64_t)s->n_channels);
        k->hop_tag = (uint8_t)bt_rng_below(&rng, 5);
        k->tracked = !(k->flags & BATON_CONSUME_PERSISTENT);
        baton_value_view views[3];
        baton_pattern *pats[3];
        for (size_t i = 0; i < k->n; i++) {
            bool dup;
            do {
                k->chans[i] = left != NULL ? left->channel
                                           : (int)bt_rng_below(&rng, (uint64_t)s->n_channels);
                dup = false;
                for (size_t j = 0; j < i; j++)
                    dup |= k->chans[j] == k->chans[i];
            } while (dup);
            k->pats[i] = left != NULL ? pat_for(&rng, left->tag) : bt_pick_pattern(&rng);
            /* A persistent consumer fires on every match for the rest of the run: it gets a
             * narrow pattern, and one that takes data only its food or the persistent data. */
            if (k->flags & BATON_CONSUME_PERSISTENT)
                k->pats[i] = (k->flags & BATON_CONSUME_PEEK) && bt_rng_below(&rng, 3) == 0
                                 ? 1
                                 : bt_rng_below(&rng, 2) ? BT_FOOD_PAT
                                                         : BT_PERSISTENT_PAT;
            if (k->pats[i] == BT_NOTHING_PAT &&
                atomic_fetch_add(&s->nothing_consumers, 1) >= MAX_NOTHING)
                k->pats[i] = 0;
            k->tracked &= k->pats[i] != BT_NOTHING_PAT && k->pats[i] != BT_PERSISTENT_PAT;
            views[i] = baton_value_as_view(s->channels[k->chans[i]]);
            pats[i] = bt_pats[k->pats[i]];
        }
        k->made = true;
        if (k->tracked) {
            atomic_fetch_add(&s->waiting[t], 1);
            s_queue_push(&mine_k, op);
        }
        baton_value *body = bt_make_triple(b, t, (int64_t)op, -1);
        if (body == NULL)
            continue;
        uint64_t id = 0;
        BT_CHECK(baton_space_consume_body(s->space, views, pats, k->n, s_fn, k, k->flags,
                                          baton_value_as_view(body), &id) == 0);
        k->id = id;
        baton_value_destroy(body);
    }
    free(mine_k.items);
    free(mine_d.items);
    baton_value_builder_destroy(b);
    return NULL;
}

/* What the visit saw. */
typedef struct s_seen {
    s_stress *s;
    /* Per channel, the stored data's tags and persistence, oldest first. */
    int *tags[MAX_CHANNELS];
    bool *persistent[MAX_CHANNELS];
    size_t count[MAX_CHANNELS], cap[MAX_CHANNELS];
    size_t n_data, n_consumers, errors;
    s_consumer **waiting;
    size_t n_waiting, waiting_cap;
} s_seen;

static int s_channel_of(baton_value_view channel)
{
    if (baton_view_kind(channel) != BATON_VALUE_NAME)
        return -1;
    uint64_t id = baton_view_name(channel);
    return id >= 1000 && id < 1000 + MAX_CHANNELS ? (int)(id - 1000) : -1;
}

static int s_on_datum(void *ctx, const baton_space_datum_info *info)
{
    s_seen *seen = ctx;
    seen->n_data++;
    int64_t t, sr, tag;
    int c = s_channel_of(info->channel);
    if (!bt_read_triple(info->datum, &t, &sr, &tag) || c < 0 || c >= seen->s->n_channels) {
        BT_SEEN_ERROR(seen, "visit: a stored datum of unknown shape or channel\n");
        return 0;
    }
    s_datum *d = s_lookup(seen->s, t, sr);
    if (d == NULL) {
        BT_SEEN_ERROR(seen, "visit: stored datum (%" PRId64 ", %" PRId64 ") was never produced\n",
                   t, sr);
        return 0;
    }
    d->stored++;
    if (d->channel != c || d->tag != tag || d->persistent != info->persistent)
        BT_SEEN_ERROR(seen,
                   "visit: datum (%" PRId64 ", %" PRId64 ") on channel %d (made on %d), tag %" PRId64
                   " (%d), persistent %d (%d)\n",
                   t, sr, c, d->channel, tag, d->tag, info->persistent, d->persistent);
    if (seen->count[c] == seen->cap[c]) {
        seen->cap[c] = seen->cap[c] ? 2 * seen->cap[c] : 64;
        seen->tags[c] = realloc(seen->tags[c], seen->cap[c] * sizeof(int));
        seen->persistent[c] = realloc(seen->persistent[c], seen->cap[c] * sizeof(bool));
        if (seen->tags[c] == NULL || seen->persistent[c] == NULL)
            return BATON_ENOMEM;
    }
    seen->tags[c][seen->count[c]] = (int)tag;
    seen->persistent[c][seen->count[c]] = info->persistent;
    seen->count[c]++;
    return 0;
}

static int s_on_consumer(void *ctx, const baton_space_consumer_info *info)
{
    s_seen *seen = ctx;
    seen->n_consumers++;
    int64_t t, sr, minus_one;
    if (!bt_read_triple(info->body, &t, &sr, &minus_one) || t < 0 || t >= S_THREADS || sr < 0 ||
        (size_t)sr >= seen->s->ops_per_thread || minus_one != -1 ||
        !seen->s->consumers[t][sr].made) {
        BT_SEEN_ERROR(seen, "visit: a waiting consumer with an unknown body\n");
        return 0;
    }
    s_consumer *k = &seen->s->consumers[t][sr];
    k->waiting++;
    bool same = info->id == k->id && info->flags == k->flags && info->n_channels == k->n;
    for (size_t i = 0; same && i < k->n; i++)
        same = s_channel_of(info->channels[i]) == k->chans[i] &&
               info->patterns[i] == bt_pats[k->pats[i]];
    if (!same)
        BT_SEEN_ERROR(
            seen, "visit: consumer (%" PRId64 ", %" PRId64 ") reported unlike registered\n", t, sr);
    if (seen->n_waiting == seen->waiting_cap) {
        seen->waiting_cap = seen->waiting_cap ? 2 * seen->waiting_cap : 256;
        seen->waiting = realloc(seen->waiting, seen->waiting_cap * sizeof *seen->waiting);
        if (seen->waiting == NULL)
            return BATON_ENOMEM;
    }
    seen->waiting[seen->n_waiting++] = k;
    return 0;
}

static void s_check(s_stress *s)
{
    size_t errors = 0;
#define S_ERROR(...)                                                                             \
    do {                                                                                         \
        if (errors++ < 10)                                                                       \
            print_message(__VA_ARGS__);                                                          \
    } while (0)
    /* Firings: shape, channels, patterns; count the takes. */
    size_t n_consumers = 0, n_fired = 0, n_firings = 0;
    for (int t = 0; t < S_THREADS; t++)
        for (size_t i = 0; i < s->ops_per_thread; i++) {
            s_consumer *k = &s->consumers[t][i];
            if (!k->made)
                continue;
            n_consumers++;
            int fired = 0;
            for (s_fire *f = atomic_load(&k->fires); f; f = f->next) {
                fired++;
                n_firings++;
                if (f->n != k->n) {
                    S_ERROR("consumer (%d, %zu): %u data for %u channels\n", t, i, f->n, k->n);
                    continue;
                }
                for (size_t c = 0; c < f->n; c++) {
                    s_datum *d = s_lookup(s, f->thread[c], f->serial[c]);
                    if (d == NULL) {
                        S_ERROR("consumer (%d, %zu) got (%d, %d), never produced\n", t, i,
                                f->thread[c], f->serial[c]);
                        continue;
                    }
                    if (d->channel != k->chans[c] || !bt_pat_matches(k->pats[c], d->tag))
                        S_ERROR("consumer (%d, %zu) got (%d, %d) from channel %d tag %d on its "
                                "channel %d pattern %s\n",
                                t, i, f->thread[c], f->serial[c], d->channel, d->tag, k->chans[c],
                                bt_pat_text[k->pats[c]]);
                    if (!(k->flags & BATON_CONSUME_PEEK) && !d->persistent)
                        d->taken++;
                }
            }
            if (fired != atomic_load(&k->fired))
                S_ERROR("consumer (%d, %zu): %d logged firings, %d counted\n", t, i, fired,
                        atomic_load(&k->fired));
            if (fired > 0)
                n_fired++;
            if (!(k->flags & BATON_CONSUME_PERSISTENT) && fired > 1)
                S_ERROR("consumer (%d, %zu) (flags %u) fired %d times\n", t, i, k->flags, fired);
        }

    /* What is left, as the visit reports it. */
    s_seen seen = {.s = s};
    bt_assert_rc(baton_space_visit(s->space, s_on_datum, s_on_consumer, &seen), 0);
    errors += seen.errors;
    baton_space_stats stats;
    memset(&stats, 0, sizeof stats);
    bt_assert_rc(baton_space_get_stats(s->space, &stats), 0);
    if (stats.data != seen.n_data || stats.consumers != seen.n_consumers)
        S_ERROR("stats: %zu data, %zu consumers; the visit saw %zu and %zu\n", stats.data,
                stats.consumers, seen.n_data, seen.n_consumers);
    size_t regs_per_channel[MAX_CHANNELS] = {0};
    for (size_t w = 0; w < seen.n_waiting; w++)
        for (size_t c = 0; c < seen.waiting[w]->n; c++)
            regs_per_channel[seen.waiting[w]->chans[c]]++;
    for (int c = 0; c < s->n_channels; c++) {
        size_t d = 0, k = 0;
        bt_assert_rc(
            baton_space_channel_counts(s->space, baton_value_as_view(s->channels[c]), &d, &k), 0);
        if (d != seen.count[c] || k != regs_per_channel[c])
            S_ERROR("channel %d: counts %zu data, %zu registrations; the visit %zu and %zu\n", c,
                    d, k, seen.count[c], regs_per_channel[c]);
    }

    /* Conservation of data. */
    size_t n_data = 0, n_persistent = 0;
    for (int t = 0; t <= S_THREADS; t++) {
        size_t n = t < S_THREADS ? s->ops_per_thread : atomic_load(&s->next_hop);
        for (size_t i = 0; i < n; i++) {
            s_datum *d = t < S_THREADS ? &s->data[t][i] : &s->hops[i];
            if (!d->made)
                continue;
            n_data++;
            if (d->persistent) {
                n_persistent++;
                if (d->stored != 1)
                    S_ERROR("persistent datum (%d, %zu) stored %d times\n", t, i, d->stored);
            } else if (d->taken + d->stored != 1) {
                S_ERROR("datum (%d, %zu) on channel %d: taken %d times, stored %d times\n", t, i,
                        d->channel, d->taken, d->stored);
            }
        }
    }

    /* Consumers: fired exactly when no longer waiting; persistent ones always waiting. */
    for (int t = 0; t < S_THREADS; t++)
        for (size_t i = 0; i < s->ops_per_thread; i++) {
            s_consumer *k = &s->consumers[t][i];
            if (!k->made)
                continue;
            int fired = atomic_load(&k->fired);
            if (k->flags & BATON_CONSUME_PERSISTENT) {
                if (k->waiting != 1)
                    S_ERROR("persistent consumer (%d, %zu) waiting %d times\n", t, i, k->waiting);
            } else if ((fired > 0 ? 1 : 0) + k->waiting != 1) {
                S_ERROR("consumer (%d, %zu) (flags %u, %u channels): fired %d, waiting %d\n", t, i,
                        k->flags, k->n, fired, k->waiting);
            }
        }

    /* Stability. oldest[c][p]: index of the oldest stored datum on c matching p, or -1. */
    static int oldest[MAX_CHANNELS][BT_NPAT];
    for (int c = 0; c < s->n_channels; c++)
        for (int p = 0; p < BT_NPAT; p++) {
            oldest[c][p] = -1;
            for (size_t j = 0; j < seen.count[c]; j++)
                if (bt_pat_matches(p, seen.tags[c][j])) {
                    oldest[c][p] = (int)j;
                    break;
                }
        }
    for (size_t w = 0; w < seen.n_waiting; w++) {
        s_consumer *k = seen.waiting[w];
        bool all = true, removes = false;
        for (size_t c = 0; c < k->n; c++) {
            int j = oldest[k->chans[c]][k->pats[c]];
            all &= j >= 0;
            if (j >= 0 && !seen.persistent[k->chans[c]][j])
                removes = true;
        }
        if (!all)
            continue;
        bool stable = (k->flags & BATON_CONSUME_PERSISTENT) &&
                      ((k->flags & BATON_CONSUME_PEEK) || !removes);
        if (!stable) {
            S_ERROR("unstable: waiting consumer id %" PRIu64 " (flags %u, %u channels:", k->id,
                    k->flags, k->n);
            for (size_t c = 0; c < k->n; c++)
                print_message(" %d %s", k->chans[c], bt_pat_text[k->pats[c]]);
            print_message(") has a matching stored datum on every channel\n");
        }
    }
    printf("# stress: %d channels, %zu data (%zu persistent, %zu hops), %zu consumers "
           "(%zu fired, %zu firings); left %zu data, %zu consumers\n",
           s->n_channels, n_data, n_persistent, atomic_load(&s->next_hop), n_consumers, n_fired,
           n_firings, seen.n_data, seen.n_consumers);
    for (int c = 0; c < MAX_CHANNELS; c++) {
        free(seen.tags[c]);
        free(seen.persistent[c]);
    }
    free(seen.waiting);
    if (errors)
        fail_msg("%zu oracle violation(s) (seed %" PRIu64 ")", errors, s->seed);
#undef S_ERROR
}

static void run_stress(int n_channels, size_t total_ops)
{
    s_stress *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->seed = bt_now_ns();
    printf("# stress: %d channels, %zu ops, seed %" PRIu64 "\n", n_channels, total_ops, s->seed);
    s->space = bt_space_new();
    s->n_channels = n_channels;
    s->bound = 8 + n_channels / 2;
    s->ops_per_thread = (total_ops + S_THREADS - 1) / S_THREADS;
    for (int t = 0; t < S_THREADS; t++) {
        s->data[t] = calloc(s->ops_per_thread, sizeof(s_datum));
        s->consumers[t] = calloc(s->ops_per_thread, sizeof(s_consumer));
        assert_true(s->data[t] != NULL && s->consumers[t] != NULL);
    }
    s->hop_cap = s->ops_per_thread * S_THREADS;
    s->hops = calloc(s->hop_cap, sizeof(s_datum));
    assert_non_null(s->hops);
    for (int c = 0; c < n_channels; c++) {
        char text[16];
        snprintf(text, sizeof text, "@%d", c + 1000);
        s->channels[c] = bt_value(text);
    }
    bt_watchdog dog;
    bt_watchdog_start(&dog, 240, "space stress run");
    pthread_t threads[S_THREADS];
    s_thread_arg args[S_THREADS];
    for (int t = 0; t < S_THREADS; t++) {
        args[t] = (s_thread_arg){s, t};
        assert_int_equal(pthread_create(&threads[t], NULL, s_thread, &args[t]), 0);
    }
    for (int t = 0; t < S_THREADS; t++)
        pthread_join(threads[t], NULL);
    bt_assert_rc(baton_space_quiesce(s->space), 0);
    bt_watchdog_stop(&dog);
    bt_assert_no_thread_failures();
    s_check(s);

    baton_space_destroy(s->space);
    for (int t = 0; t < S_THREADS; t++) {
        for (size_t i = 0; i < s->ops_per_thread; i++)
            for (s_fire *f = atomic_load(&s->consumers[t][i].fires), *next; f; f = next) {
                next = f->next;
                free(f);
            }
        free(s->data[t]);
        free(s->consumers[t]);
    }
    free(s->hops);
    for (int c = 0; c < n_channels; c++)
        baton_value_destroy(s->channels[c]);
    free(s);
}

/* The operations of the three stress runs together: 10^6 (scaled by BATON_TEST_SCALE) by default.
 * That takes 11-17 s per worker count in Release on a 2-core machine (1 and 16 workers; the
 * 8-channel run dominates) and far longer under the sanitizers, so the CTest entries pass
 * `--ops N` with a smaller total (tests/CMakeLists.txt); run the binary without it for the full
 * 10^6. */
static double g_total_ops = 1000000.0;

static size_t stress_ops(void)
{
    return bt_scaled(g_total_ops / 3, 20000);
}

static void test_stress_1_channel(void **state)
{
    (void)state;
    run_stress(1, stress_ops());
}

static void test_stress_8_channels(void **state)
{
    (void)state;
    run_stress(8, stress_ops());
}

static void test_stress_64_channels(void **state)
{
    (void)state;
    run_stress(64, stress_ops());
}

int main(int argc, char **argv)
{
    /* `--ops N` (this test's own; removed before bt_init sees the arguments). */
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc) {
            char *end = NULL;
            double ops = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || !(ops >= 1.0)) {
                fprintf(stderr, "space_stress: bad --ops \"%s\"\n", argv[i]);
                return 2;
            }
            g_total_ops = ops;
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stress_1_channel, bt_setup_patterns,
                                        bt_teardown_patterns),
        cmocka_unit_test_setup_teardown(test_stress_8_channels, bt_setup_patterns,
                                        bt_teardown_patterns),
        cmocka_unit_test_setup_teardown(test_stress_64_channels, bt_setup_patterns,
                                        bt_teardown_patterns),
    };
    return cmocka_run_group_tests_name("space/stress", tests, group_setup, group_teardown);
}
