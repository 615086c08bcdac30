/*
 * test_space_stress.c — the in-memory tuplespace (include/baton/space.h) against oracles.
 *
 *  1. Concurrent stress: 16 caller threads (plain pthreads) run random operations on 1, 8 and 64
 *     channels: produces (a few persistent), single-channel consumes, 2- and 3-channel joins,
 *     persistent and peeking consumers, patterns that match only some data, and continuations
 *     that produce again (hops). Every datum is a unique (thread, serial, tag) tuple; every
 *     consumer has a record of its own (its ctx, also named by its body) where its continuation
 *     logs each firing (a lock-free stack per consumer). After baton_space_quiesce,
 *     baton_space_visit lists the stored data and the waiting consumers, and the oracle checks:
 *     every non-persistent datum was taken by exactly one non-peeking firing or is still stored,
 *     never both, never twice; every persistent datum is still stored; a non-persistent consumer
 *     fired at most once, and fired exactly when it is no longer waiting; persistent consumers are
 *     all still waiting; every firing's data came from the consumer's channels, in the order it
 *     listed them, and matched its patterns (binders bound to the right parts); the visit reports
 *     each consumer as it was registered and agrees with baton_space_get_stats and
 *     baton_space_channel_counts; and the space is stable at quiescence (see "Produce" in the
 *     DESIGN block of src/space/space.c): no waiting non-persistent consumer has a matching
 *     stored datum on every channel, and no waiting persistent, non-peeking consumer has them
 *     with one of the oldest matches non-persistent (firing would remove something).
 *  2. Sequential determinism: one caller thread, continuations that only record, against a
 *     reference model written here that follows the space's rules step by step: a consume takes,
 *     per channel, the oldest matching datum (a persistent consumer goes on while its firing
 *     removed something, then registers); a produce stores the datum and walks the channel's
 *     registrations oldest first — a matching single-channel consumer fires on the new datum (the
 *     walk ends when the datum is removed), a matching join is re-evaluated as a whole (per
 *     channel its oldest matching datum, which on this channel may be an older one) and the walk
 *     resumes after it if the datum is still stored. With one caller, every channel is idle when it
 *     calls, so it runs each operation itself and the call returns after the continuations of
 *     the firings it ran (space.h), so after every call the firings must be exactly the
 *     model's, and the visit (data per channel in order, consumers in registration order) must
 *     be the model's state.
 *
 * The three regression cases (a fired join leaves no registration behind, a persistent
 * datum stays a candidate, a join's channel order does not change the result) are
 * test_fired_join_unregisters, test_persistent_datum and test_join_order in test_space_core.c;
 * they are not repeated here.
 */
#include "test_util.h"

#include <inttypes.h>
#include <pthread.h>

#include "baton/space.h"
#include "space/space_util.h"

BT_DEFINE_POOL_GROUP()

static baton_space *space_new(void)
{
    baton_space *space = NULL;
    baton_space_config config = {.struct_size = sizeof config, .pool = g_pool};
    bt_assert_rc(baton_space_create(&config, &space), 0);
    return space;
}

/* ---- data and patterns shared by both parts ----
 *
 * A datum is (thread, serial, tag). Non-persistent data have tags 0..4, persistent ones the tag
 * "p" (PERSISTENT_TAG here), so that only "_" and "(_, _, String)" see them: a persistent datum at
 * the head of a channel would otherwise serve every later consumer of the channel without being
 * taken. Tag 4 is the food of the stress part's persistent, non-peeking consumers (pattern 8,
 * which nothing else uses): the oldest matching consumer wins a produce, so a persistent consumer
 * of an ordinary tag would starve every later consumer of that tag on its channel.
 */
#define PERSISTENT_TAG 9

enum { NPAT = 9 };
static const char *const pat_text[NPAT] = {
    "(_, _, Int)",    "(_, _, 3)", "(_, _, 0 | 1)", "(t, s, 2)", "(_, _, 2 | 3)",
    "(_, _, String)", "_",         "(_, _, 5)",     "(_, _, 4)",
};
/* Weights out of 100 when a consumer picks a pattern (8 is given to persistent consumers only). */
static const int pat_weight[NPAT] = {12, 16, 24, 18, 20, 5, 4, 1, 0};
#define PERSISTENT_PAT 5
#define NOTHING_PAT 7
#define FOOD_PAT 8
#define FOOD_TAG 4
#define BINDER_PAT 3

static bool pat_matches(int pat, int tag)
{
    switch (pat) {
    case 0:
        return tag != PERSISTENT_TAG;
    case 6:
        return true;
    case 1:
        return tag == 3;
    case 2:
        return tag == 0 || tag == 1;
    case 3:
        return tag == 2;
    case 4:
        return tag == 2 || tag == 3;
    case 5:
        return tag == PERSISTENT_TAG;
    case 8:
        return tag == FOOD_TAG;
    default:
        return false;
    }
}

static int pick_pattern(bt_rng *rng)
{
    int roll = (int)bt_rng_below(rng, 100);
    for (int p = 0; p < NPAT; p++) {
        if (roll < pat_weight[p])
            return p;
        roll -= pat_weight[p];
    }
    return 0;
}

static baton_pattern *g_pats[NPAT];

static void pats_make(void)
{
    for (int p = 0; p < NPAT; p++)
        g_pats[p] = P(pat_text[p]);
}

static void pats_free(void)
{
    for (int p = 0; p < NPAT; p++)
        baton_pattern_destroy(g_pats[p]);
}

static baton_value *make_triple(baton_value_builder *b, int64_t x, int64_t y, int64_t z)
{
    baton_value *v = NULL;
    bool ok = baton_value_begin_tuple(b) == 0 && baton_value_add_int(b, x) == 0 &&
              baton_value_add_int(b, y) == 0 &&
              (z == PERSISTENT_TAG ? baton_value_add_string(b, "p", 1) : baton_value_add_int(b, z)) ==
                  0 &&
              baton_value_end(b) == 0 && baton_value_finish(b, &v) == 0;
    BT_CHECK(ok);
    return ok ? v : NULL;
}

/* Reads a (thread, serial, tag) datum; false when it does not have that shape. */
static bool read_triple(baton_value_view v, int64_t *x, int64_t *y, int64_t *z)
{
    if (baton_view_kind(v) != BATON_VALUE_TUPLE || baton_view_count(v) != 3)
        return false;
    baton_value_view e[3];
    for (size_t i = 0; i < 3; i++) {
        e[i] = baton_view_element(v, i);
        if (baton_view_kind(e[i]) != BATON_VALUE_INT && i < 2)
            return false;
    }
    *x = baton_view_int(e[0]);
    *y = baton_view_int(e[1]);
    size_t size = 0;
    const uint8_t *text = baton_view_bytes(e[2], &size);
    if (baton_view_kind(e[2]) == BATON_VALUE_STRING && size == 1 && text[0] == 'p')
        *z = PERSISTENT_TAG;
    else if (baton_view_kind(e[2]) == BATON_VALUE_INT)
        *z = baton_view_int(e[2]);
    else
        return false;
    return true;
}

/* The binders of "(t, s, 2)" must be the datum's first two elements. */
static bool bindings_ok(int pat, baton_value_view datum, const baton_value_view *bindings)
{
    if (pat != BINDER_PAT)
        return true;
    return bindings != NULL && baton_view_equal(bindings[0], baton_view_element(datum, 0)) &&
           baton_view_equal(bindings[1], baton_view_element(datum, 1));
}

/* ================================================================================================
 * Part 1: concurrent stress
 */

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
    baton_value *v = make_triple(b, thread, (int64_t)serial, d->tag);
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
        BT_CHECK(read_triple(match->data[i], &t, &sr, &tag));
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
    static const int tags[NPAT][4] = {{0, 1, 2, 3}, {3, 3, 3, 3}, {0, 1, 0, 1}, {2, 2, 2, 2},
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
                d->tag = d->persistent ? PERSISTENT_TAG : roll < 4 ? FOOD_TAG : (uint8_t)(roll % 4);
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
            k->pats[i] = left != NULL ? pat_for(&rng, left->tag) : pick_pattern(&rng);
            /* A persistent consumer fires on every match for the rest of the run: it gets a
             * narrow pattern, and one that takes data only its food or the persistent data. */
            if (k->flags & BATON_CONSUME_PERSISTENT)
                k->pats[i] = (k->flags & BATON_CONSUME_PEEK) && bt_rng_below(&rng, 3) == 0
                                 ? 1
                                 : bt_rng_below(&rng, 2) ? FOOD_PAT
                                                         : PERSISTENT_PAT;
            if (k->pats[i] == NOTHING_PAT &&
                atomic_fetch_add(&s->nothing_consumers, 1) >= MAX_NOTHING)
                k->pats[i] = 0;
            k->tracked &= k->pats[i] != NOTHING_PAT && k->pats[i] != PERSISTENT_PAT;
            views[i] = baton_value_as_view(s->channels[k->chans[i]]);
            pats[i] = g_pats[k->pats[i]];
        }
        k->made = true;
        if (k->tracked) {
            atomic_fetch_add(&s->waiting[t], 1);
            s_queue_push(&mine_k, op);
        }
        baton_value *body = make_triple(b, t, (int64_t)op, -1);
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

#define SEEN_ERROR(seen, ...)                                                                    \
    do {                                                                                         \
        if ((seen)->errors++ < 10)                                                               \
            print_message(__VA_ARGS__);                                                          \
    } while (0)

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
    if (!read_triple(info->datum, &t, &sr, &tag) || c < 0 || c >= seen->s->n_channels) {
        SEEN_ERROR(seen, "visit: a stored datum of unknown shape or channel\n");
        return 0;
    }
    s_datum *d = s_lookup(seen->s, t, sr);
    if (d == NULL) {
        SEEN_ERROR(seen, "visit: stored datum (%" PRId64 ", %" PRId64 ") was never produced\n",
                   t, sr);
        return 0;
    }
    d->stored++;
    if (d->channel != c || d->tag != tag || d->persistent != info->persistent)
        SEEN_ERROR(seen,
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
    if (!read_triple(info->body, &t, &sr, &minus_one) || t < 0 || t >= S_THREADS || sr < 0 ||
        (size_t)sr >= seen->s->ops_per_thread || minus_one != -1 ||
        !seen->s->consumers[t][sr].made) {
        SEEN_ERROR(seen, "visit: a waiting consumer with an unknown body\n");
        return 0;
    }
    s_consumer *k = &seen->s->consumers[t][sr];
    k->waiting++;
    bool same = info->id == k->id && info->flags == k->flags && info->n_channels == k->n;
    for (size_t i = 0; same && i < k->n; i++)
        same = s_channel_of(info->channels[i]) == k->chans[i] &&
               info->patterns[i] == g_pats[k->pats[i]];
    if (!same)
        SEEN_ERROR(seen, "visit: consumer (%" PRId64 ", %" PRId64 ") reported unlike registered\n",
                   t, sr);
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
                    if (d->channel != k->chans[c] || !pat_matches(k->pats[c], d->tag))
                        S_ERROR("consumer (%d, %zu) got (%d, %d) from channel %d tag %d on its "
                                "channel %d pattern %s\n",
                                t, i, f->thread[c], f->serial[c], d->channel, d->tag, k->chans[c],
                                pat_text[k->pats[c]]);
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
    static int oldest[MAX_CHANNELS][NPAT];
    for (int c = 0; c < s->n_channels; c++)
        for (int p = 0; p < NPAT; p++) {
            oldest[c][p] = -1;
            for (size_t j = 0; j < seen.count[c]; j++)
                if (pat_matches(p, seen.tags[c][j])) {
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
                print_message(" %d %s", k->chans[c], pat_text[k->pats[c]]);
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
    s->space = space_new();
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
        s->channels[c] = V(text);
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

/* The operations of the three stress runs together: 10^6 (scaled) by default, the shape.
 * That takes about 45 s per worker count in Release on a 2-core machine (the 8-channel run
 * dominates) and far longer under the sanitizers, so the CTest entries pass `--ops N` with a
 * smaller total (tests/CMakeLists.txt); run the binary without it for the full 10^6. */
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

/* ================================================================================================
 * Part 2: one caller against a reference model
 */

enum { M_CHANNELS = 5 };
static const char *const m_channel_text[M_CHANNELS] = {"@1", "\"x\"", "(1, 2)", "7", "@99"};

typedef struct m_datum {
    int channel, tag;
    bool persistent;
    bool stored;
} m_datum;

typedef struct m_consumer {
    int n;
    int chans[3], pats[3];
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
    int data[3];
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
    m_datum *data;
    m_consumer *consumers;
    m_list chan_data[M_CHANNELS]; /* serials, oldest first */
    m_reg *regs[M_CHANNELS];      /* oldest first */
    size_t n_regs[M_CHANNELS], cap_regs[M_CHANNELS];
    uint64_t reg_seq[M_CHANNELS];
    m_firing *fires; /* this call's firings */
    size_t n_fires, cap_fires;
} model;

static void m_fire(model *m, int k, const int *data)
{
    if (m->n_fires == m->cap_fires) {
        m->cap_fires = m->cap_fires ? 2 * m->cap_fires : 64;
        m->fires = realloc(m->fires, m->cap_fires * sizeof *m->fires);
        assert_non_null(m->fires);
    }
    m_firing *f = &m->fires[m->n_fires++];
    memset(f, 0, sizeof *f);
    f->consumer = k;
    f->n = m->consumers[k].n;
    for (int i = 0; i < f->n; i++)
        f->data[i] = data[i];
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
        if (pat_matches(pat, m->data[l->items[i]].tag))
            return l->items[i];
    return -1;
}

/* space.c's top(): a consume (registers if it stays) or the re-evaluation of a registered join. */
static void m_top(model *m, int k, bool consume)
{
    m_consumer *c = &m->consumers[k];
    bool alive = consume || c->registered;
    while (alive) {
        int found[3];
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
            if (pat_matches(c->pats[pos], m->data[d].tag))
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
    m_firing f;
    memset(&f, 0, sizeof f);
    f.consumer = k;
    f.n = (int)match->n_channels;
    for (size_t i = 0; i < match->n_channels && i < 3; i++) {
        int64_t t = -1, sr = -1, tag = -1;
        BT_CHECK(read_triple(match->data[i], &t, &sr, &tag) && t == 0);
        f.data[i] = (int)sr;
    }
    pthread_mutex_lock(&g_log_lock);
    if (g_log_count < g_log_cap)
        g_log[g_log_count++] = f;
    else
        atomic_store(&g_log_overflow, 1);
    pthread_mutex_unlock(&g_log_lock);
    return 0;
}

static int firing_cmp(const void *a, const void *b)
{
    const m_firing *x = a, *y = b;
    if (x->consumer != y->consumer)
        return x->consumer < y->consumer ? -1 : 1;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    for (int i = 0; i < 3; i++)
        if (x->data[i] != y->data[i])
            return x->data[i] < y->data[i] ? -1 : 1;
    return 0;
}

static void m_print_firings(const char *who, const m_firing *f, size_t n)
{
    print_message("  %s: %zu firing(s)\n", who, n);
    for (size_t i = 0; i < n && i < 12; i++) {
        print_message("    consumer %d:", f[i].consumer);
        for (int j = 0; j < f[i].n; j++)
            print_message(" %d", f[i].data[j]);
        print_message("\n");
    }
}

/* What the visit of the sequential space saw, in its order. */
typedef struct m_seen {
    model *m;
    baton_value *channels[M_CHANNELS];
    int *data[M_CHANNELS]; /* serials per channel, in visit order */
    size_t n_data[M_CHANNELS];
    size_t cap_data[M_CHANNELS];
    int last_channel;
    bool channel_done[M_CHANNELS];
    int *consumers; /* model indices, in visit order */
    size_t n_consumers, cap_consumers;
    size_t errors;
    uint64_t *id_to_k_ids;
    size_t n_ids;
} m_seen;

static int m_channel_of(const m_seen *seen, baton_value_view v)
{
    for (int c = 0; c < M_CHANNELS; c++)
        if (baton_view_equal(v, baton_value_as_view(seen->channels[c])))
            return c;
    return -1;
}

static int m_on_datum(void *ctx, const baton_space_datum_info *info)
{
    m_seen *seen = ctx;
    int c = m_channel_of(seen, info->channel);
    int64_t t, sr, tag;
    if (c < 0 || !read_triple(info->datum, &t, &sr, &tag)) {
        SEEN_ERROR(seen, "visit: datum on an unknown channel or of unknown shape\n");
        return 0;
    }
    /* Channels come as groups: one channel's data all together. */
    if (c != seen->last_channel) {
        if (seen->channel_done[c])
            SEEN_ERROR(seen, "visit: channel %d's data not reported together\n", c);
        if (seen->last_channel >= 0)
            seen->channel_done[seen->last_channel] = true;
        seen->last_channel = c;
    }
    model *m = seen->m;
    if (sr >= 0 && m->data[sr].persistent != info->persistent)
        SEEN_ERROR(seen, "visit: datum %" PRId64 " persistent %d, model %d\n", sr,
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
        SEEN_ERROR(seen, "visit: unknown consumer id %" PRIu64 "\n", info->id);
        return 0;
    }
    int k = (int)lo;
    m_consumer *c = &m->consumers[k];
    bool same = info->flags == c->flags && info->n_channels == (size_t)c->n;
    for (int i = 0; same && i < c->n; i++)
        same = m_channel_of(seen, info->channels[i]) == c->chans[i] &&
               info->patterns[i] == g_pats[c->pats[i]];
    if (same) {
        int64_t x, y, z;
        if (c->with_body)
            same = read_triple(info->body, &x, &y, &z) && x == -1 && y == k && z == -1;
        else
            same = baton_view_kind(info->body) == BATON_VALUE_NIL;
    }
    if (!same)
        SEEN_ERROR(seen, "visit: consumer %d reported unlike registered\n", k);
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
static void m_compare_state(baton_space *space, model *m, baton_value **channels, size_t n_made,
                            size_t op)
{
    m_seen seen;
    memset(&seen, 0, sizeof seen);
    seen.m = m;
    seen.last_channel = -1;
    seen.n_ids = n_made;
    for (int c = 0; c < M_CHANNELS; c++)
        seen.channels[c] = channels[c];
    bt_assert_rc(baton_space_visit(space, m_on_datum, m_on_consumer, &seen), 0);
    size_t errors = seen.errors;
    size_t total_data = 0;
    for (int c = 0; c < M_CHANNELS; c++) {
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
    for (int c = 0; c < M_CHANNELS; c++)
        free(seen.data[c]);
    free(seen.consumers);
    if (errors)
        fail_msg("after op %zu: %zu difference(s) between the space and the model", op, errors);
}

static void test_sequential_model(void **state)
{
    (void)state;
    size_t n_ops = bt_scaled(20000, 2000);
    uint64_t seed = bt_now_ns();
    printf("# sequential: %zu ops, seed %" PRIu64 "\n", n_ops, seed);
    bt_rng rng = bt_rng_seed(seed);
    baton_space *space = space_new();
    model m;
    memset(&m, 0, sizeof m);
    m.data = calloc(n_ops, sizeof *m.data);
    m.consumers = calloc(n_ops, sizeof *m.consumers);
    assert_true(m.data != NULL && m.consumers != NULL);
    g_log_cap = 1u << 16;
    g_log = calloc(g_log_cap, sizeof *g_log);
    assert_non_null(g_log);
    baton_value *channels[M_CHANNELS];
    for (int c = 0; c < M_CHANNELS; c++)
        channels[c] = V(m_channel_text[c]);
    baton_value_builder *b = NULL;
    bt_assert_rc(baton_value_builder_create(&b), 0);
    size_t n_made = 0, n_data = 0, total_firings = 0;
    for (size_t op = 0; op < n_ops; op++) {
        m.n_fires = 0;
        g_log_count = 0; /* no continuation runs between calls */
        if (bt_rng_below(&rng, 100) < 50) {
            int d = (int)n_data++;
            m_datum *md = &m.data[d];
            md->channel = (int)bt_rng_below(&rng, M_CHANNELS);
            md->persistent = bt_rng_below(&rng, 100) < 3;
            md->tag = md->persistent && bt_rng_below(&rng, 2) ? 9 : (int)bt_rng_below(&rng, 4);
            md->stored = true;
            baton_value *v = make_triple(b, 0, d, md->tag);
            assert_non_null(v);
            bt_assert_rc(baton_space_produce(space, baton_value_as_view(channels[md->channel]),
                                             baton_value_as_view(v), md->persistent),
                         0);
            baton_value_destroy(v);
            m_list_push(&m.chan_data[md->channel], d);
            m_settle(&m, md->channel, d);
        } else {
            int k = (int)n_made++;
            m_consumer *c = &m.consumers[k];
            uint64_t roll = bt_rng_below(&rng, 100);
            c->n = roll < 55 ? 1 : roll < 85 ? 2 : 3;
            roll = bt_rng_below(&rng, 100);
            c->flags = roll < 8    ? BATON_CONSUME_PEEK
                       : roll < 12 ? BATON_CONSUME_PERSISTENT
                       : roll < 14 ? BATON_CONSUME_PERSISTENT | BATON_CONSUME_PEEK
                                   : 0u;
            c->with_body = bt_rng_below(&rng, 2) == 0;
            baton_value_view views[3];
            baton_pattern *pats[3];
            for (int i = 0; i < c->n; i++) {
                bool dup;
                do {
                    c->chans[i] = (int)bt_rng_below(&rng, M_CHANNELS);
                    dup = false;
                    for (int j = 0; j < i; j++)
                        dup |= c->chans[j] == c->chans[i];
                } while (dup);
                c->pats[i] = pick_pattern(&rng);
                views[i] = baton_value_as_view(channels[c->chans[i]]);
                pats[i] = g_pats[c->pats[i]];
            }
            uint64_t id = 0;
            void *ctx = (void *)(intptr_t)k;
            if (c->with_body) {
                baton_value *body = make_triple(b, -1, k, -1);
                assert_non_null(body);
                bt_assert_rc(baton_space_consume_body(space, views, pats, (size_t)c->n,
                                                      m_record_fn, ctx, c->flags,
                                                      baton_value_as_view(body), &id),
                             0);
                baton_value_destroy(body);
            } else {
                bt_assert_rc(baton_space_consume(space, views, pats, (size_t)c->n, m_record_fn,
                                                 ctx, c->flags, &id),
                             0);
            }
            c->id = id;
            assert_true(k == 0 || id > m.consumers[k - 1].id);
            m_top(&m, k, true);
        }
        /* The only caller ran this operation itself (continuations only record): the call has
         * returned after its firings' continuations ran. */
        pthread_mutex_lock(&g_log_lock);
        size_t n_logged = g_log_count;
        pthread_mutex_unlock(&g_log_lock);
        assert_int_equal(atomic_load(&g_log_overflow), 0);
        bt_assert_no_thread_failures();
        if (n_logged > 1)
            qsort(g_log, n_logged, sizeof *g_log, firing_cmp);
        if (m.n_fires > 1)
            qsort(m.fires, m.n_fires, sizeof *m.fires, firing_cmp);
        bool same = n_logged == m.n_fires;
        for (size_t i = 0; same && i < n_logged; i++)
            same = firing_cmp(&g_log[i], &m.fires[i]) == 0;
        if (!same) {
            print_message("op %zu: the space's firings differ from the model's\n", op);
            m_print_firings("space", g_log, n_logged);
            m_print_firings("model", m.fires, m.n_fires);
            fail_msg("op %zu (seed %" PRIu64 "): firings differ", op, seed);
        }
        total_firings += n_logged;
        if (op % 1000 == 999 || op + 1 == n_ops)
            m_compare_state(space, &m, channels, n_made, op);
    }
    bt_assert_rc(baton_space_quiesce(space), 0);
    m_compare_state(space, &m, channels, n_made, n_ops);
    size_t left = 0;
    for (int c = 0; c < M_CHANNELS; c++)
        left += m.chan_data[c].count;
    printf("# sequential: %zu data, %zu consumers, %zu firings; left %zu data\n", n_data, n_made,
           total_firings, left);
    baton_value_builder_destroy(b);
    for (int c = 0; c < M_CHANNELS; c++) {
        baton_value_destroy(channels[c]);
        free(m.chan_data[c].items);
        free(m.regs[c]);
    }
    free(m.fires);
    free(m.data);
    free(m.consumers);
    free(g_log);
    g_log = NULL;
    baton_space_destroy(space);
}

static int setup_patterns(void **state)
{
    (void)state;
    pats_make();
    return 0;
}

static int teardown_patterns(void **state)
{
    (void)state;
    pats_free();
    return 0;
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
        cmocka_unit_test_setup_teardown(test_sequential_model, setup_patterns, teardown_patterns),
        cmocka_unit_test_setup_teardown(test_stress_1_channel, setup_patterns, teardown_patterns),
        cmocka_unit_test_setup_teardown(test_stress_8_channels, setup_patterns, teardown_patterns),
        cmocka_unit_test_setup_teardown(test_stress_64_channels, setup_patterns,
                                        teardown_patterns),
    };
    return cmocka_run_group_tests_name("space/stress", tests, group_setup, group_teardown);
}
