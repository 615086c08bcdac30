/*
 * mutex_space.c — the lock-based tuplespaces of mutex_space.h.
 *
 * Locking. MS_GLOBAL_MUTEX: every call takes `space->global` once, finds its channels and does its
 * work under it. MS_CHANNEL_MUTEX: a call takes the table mutex only to find (or create) its
 * channels, then locks the channels it needs in address order: a consume its own channels; a
 * produce its channel and, when joins wait there, the channels of those joins too (read under the
 * channel's lock, then everything relocked in order and the set checked again: a join registered
 * meanwhile over a channel outside the set makes it retry with a larger set). Consumer state is
 * touched only under the locks of all its channels.
 */
#define _POSIX_C_SOURCE 200809L

#include "mutex_space.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MS_INITIAL_BUCKETS 256u
#define MS_SMALL_SET 16u

typedef struct ms_channel ms_channel;
typedef struct ms_consumer ms_consumer;

typedef struct ms_datum {
    struct ms_datum *prev, *next;
    size_t size;
    uint8_t bytes[];
} ms_datum;

typedef struct ms_reg {
    struct ms_reg *prev, *next;
    ms_consumer *consumer;
} ms_reg;

struct ms_consumer {
    size_t n; /* channels, in the caller's order */
    baton_continuation_fn fn;
    void *ctx;
    ms_channel **chans;
    baton_pattern **pats;
    ms_reg *regs;              /* one per channel */
    ms_datum **found;          /* the data a firing took */
    baton_value_view *views;   /* the match handed to the continuation */
    baton_value_view **bindings;
    ms_consumer *fire_next;    /* the call's list of firings */
};

struct ms_channel {
    ms_channel *bucket_next;
    uint64_t hash;
    size_t size;
    uint8_t *enc;
    pthread_mutex_t lock; /* MS_CHANNEL_MUTEX only */
    ms_datum *data_head, *data_tail;
    ms_reg *reg_head, *reg_tail;
    size_t n_data, n_regs, n_joins; /* n_joins: waiting consumers with more than one channel */
};

struct ms_space {
    ms_locking locking;
    pthread_mutex_t global; /* the table's mutex; with MS_GLOBAL_MUTEX, everything's */
    ms_channel **buckets;
    size_t n_buckets, n_channels;
    _Atomic int first_error;
};

/* A set of channels to lock, sorted by address. */
typedef struct ms_set {
    ms_channel **items;
    size_t n, cap;
    ms_channel *small[MS_SMALL_SET];
} ms_set;

/* ---- the table ---- */

static int grow_table(ms_space *s)
{
    size_t nb = s->n_buckets * 2;
    ms_channel **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return BATON_ENOMEM;
    for (size_t i = 0; i < s->n_buckets; i++) {
        for (ms_channel *ch = s->buckets[i], *next; ch != NULL; ch = next) {
            next = ch->bucket_next;
            ch->bucket_next = b[ch->hash & (nb - 1)];
            b[ch->hash & (nb - 1)] = ch;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->n_buckets = nb;
    return 0;
}

/* Finds or creates channel `v`; the table's mutex is held. NULL without memory. */
static ms_channel *channel_get(ms_space *s, baton_value_view v)
{
    uint64_t h = baton_view_hash(v);
    for (ms_channel *ch = s->buckets[h & (s->n_buckets - 1)]; ch != NULL; ch = ch->bucket_next)
        if (ch->hash == h && ch->size == v.size && memcmp(ch->enc, v.data, v.size) == 0)
            return ch;
    if (s->n_channels >= s->n_buckets && grow_table(s) != 0)
        return NULL;
    ms_channel *ch = calloc(1, sizeof *ch);
    if (ch == NULL)
        return NULL;
    ch->enc = malloc(v.size);
    if (ch->enc == NULL) {
        free(ch);
        return NULL;
    }
    memcpy(ch->enc, v.data, v.size);
    ch->size = v.size;
    ch->hash = h;
    pthread_mutex_init(&ch->lock, NULL);
    ch->bucket_next = s->buckets[h & (s->n_buckets - 1)];
    s->buckets[h & (s->n_buckets - 1)] = ch;
    s->n_channels++;
    return ch;
}

/* ---- lock sets ---- */

static void set_init(ms_set *set)
{
    set->items = set->small;
    set->n = 0;
    set->cap = MS_SMALL_SET;
}

static void set_free(ms_set *set)
{
    if (set->items != set->small)
        free(set->items);
}

static bool set_contains(const ms_set *set, const ms_channel *ch)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->items[i] == ch)
            return true;
    return false;
}

/* Adds ch (once), keeping the set sorted by address. */
static int set_add(ms_set *set, ms_channel *ch)
{
    size_t i;
    if (set_contains(set, ch))
        return 0;
    if (set->n == set->cap) {
        size_t cap = set->cap * 2;
        ms_channel **items = malloc(cap * sizeof *items);
        if (items == NULL)
            return BATON_ENOMEM;
        memcpy(items, set->items, set->n * sizeof *items);
        set_free(set);
        set->items = items;
        set->cap = cap;
    }
    for (i = set->n; i > 0 && (uintptr_t)set->items[i - 1] > (uintptr_t)ch; i--)
        set->items[i] = set->items[i - 1];
    set->items[i] = ch;
    set->n++;
    return 0;
}

static void lock_set(ms_space *s, const ms_set *set)
{
    if (s->locking == MS_CHANNEL_MUTEX)
        for (size_t i = 0; i < set->n; i++)
            pthread_mutex_lock(&set->items[i]->lock);
}

static void unlock_set(ms_space *s, const ms_set *set)
{
    if (s->locking == MS_CHANNEL_MUTEX)
        for (size_t i = set->n; i > 0; i--)
            pthread_mutex_unlock(&set->items[i - 1]->lock);
}

/* ---- data, registrations, firing (all under the locks of the channels involved) ---- */

static void data_remove(ms_channel *ch, ms_datum *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        ch->data_head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        ch->data_tail = d->prev;
    ch->n_data--;
}

static void reg_remove(ms_channel *ch, ms_reg *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        ch->reg_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        ch->reg_tail = r->prev;
    ch->n_regs--;
    if (r->consumer->n > 1)
        ch->n_joins--;
}

/* If every channel of k holds a datum its pattern matches, takes the oldest of each into
 * k->found and returns true. */
static bool try_take(ms_consumer *k)
{
    for (size_t i = 0; i < k->n; i++) {
        ms_datum *d = k->chans[i]->data_head;
        while (d != NULL &&
               !baton_pattern_match(k->pats[i], (baton_value_view){d->bytes, d->size}, NULL))
            d = d->next;
        if (d == NULL)
            return false;
        k->found[i] = d;
    }
    for (size_t i = 0; i < k->n; i++)
        data_remove(k->chans[i], k->found[i]);
    return true;
}

static void consumer_free(ms_consumer *k)
{
    free(k);
}

/* Runs the firings collected by a call, with no lock held, and frees them. */
static void run_firings(ms_space *s, ms_consumer *list)
{
    while (list != NULL) {
        ms_consumer *k = list;
        list = k->fire_next;
        for (size_t i = 0; i < k->n; i++) {
            k->views[i] = (baton_value_view){k->found[i]->bytes, k->found[i]->size};
            (void)baton_pattern_match(k->pats[i], k->views[i], k->bindings[i]);
        }
        baton_match m = {k->n, k->views, (const baton_value_view *const *)k->bindings};
        int rc = k->fn(k->ctx, &m);
        if (rc != 0) {
            int expected = 0;
            atomic_compare_exchange_strong(&s->first_error, &expected, rc);
        }
        for (size_t i = 0; i < k->n; i++)
            free(k->found[i]);
        consumer_free(k);
    }
}

/* ---- the API ---- */

int ms_space_create(ms_locking locking, ms_space **out)
{
    if (out == NULL || (locking != MS_GLOBAL_MUTEX && locking != MS_CHANNEL_MUTEX))
        return BATON_EINVAL;
    ms_space *s = calloc(1, sizeof *s);
    if (s == NULL)
        return BATON_ENOMEM;
    s->buckets = calloc(MS_INITIAL_BUCKETS, sizeof *s->buckets);
    if (s->buckets == NULL) {
        free(s);
        return BATON_ENOMEM;
    }
    s->n_buckets = MS_INITIAL_BUCKETS;
    s->locking = locking;
    pthread_mutex_init(&s->global, NULL);
    atomic_init(&s->first_error, 0);
    *out = s;
    return 0;
}

void ms_space_destroy(ms_space *s)
{
    if (s == NULL)
        return;
    for (size_t b = 0; b < s->n_buckets; b++) {
        for (ms_channel *ch = s->buckets[b], *next; ch != NULL; ch = next) {
            next = ch->bucket_next;
            for (ms_datum *d = ch->data_head, *dn; d != NULL; d = dn) {
                dn = d->next;
                free(d);
            }
            /* A consumer is freed through its first channel's registration. */
            for (ms_reg *r = ch->reg_head, *rn; r != NULL; r = rn) {
                rn = r->next;
                if (r == &r->consumer->regs[0])
                    consumer_free(r->consumer);
            }
            pthread_mutex_destroy(&ch->lock);
            free(ch->enc);
            free(ch);
        }
    }
    free(s->buckets);
    pthread_mutex_destroy(&s->global);
    free(s);
}

int ms_space_produce(ms_space *s, baton_value_view channel, baton_value_view datum)
{
    if (s == NULL || channel.data == NULL || channel.size == 0 || datum.data == NULL ||
        datum.size == 0)
        return BATON_EINVAL;
    ms_datum *d = malloc(sizeof *d + datum.size);
    if (d == NULL)
        return BATON_ENOMEM;
    memcpy(d->bytes, datum.data, datum.size);
    d->size = datum.size;

    pthread_mutex_lock(&s->global);
    ms_channel *ch = channel_get(s, channel);
    if (s->locking == MS_CHANNEL_MUTEX)
        pthread_mutex_unlock(&s->global);
    if (ch == NULL) {
        if (s->locking == MS_GLOBAL_MUTEX)
            pthread_mutex_unlock(&s->global);
        free(d);
        return BATON_ENOMEM;
    }

    ms_set set;
    set_init(&set);
    (void)set_add(&set, ch); /* fits in the small array */
    for (;;) {
        lock_set(s, &set);
        /* Every channel of every consumer waiting on ch must be locked: check, else widen. */
        bool complete = true;
        if (s->locking == MS_CHANNEL_MUTEX && ch->n_joins > 0)
            for (ms_reg *r = ch->reg_head; r != NULL && complete; r = r->next)
                for (size_t i = 0; i < r->consumer->n; i++)
                    if (!set_contains(&set, r->consumer->chans[i])) {
                        complete = false;
                        break;
                    }
        if (complete)
            break;
        /* Widen the set with what the joins need (read under ch's lock), relock in order. */
        ms_set wider;
        int rc = 0;
        set_init(&wider);
        for (size_t i = 0; i < set.n && rc == 0; i++)
            rc = set_add(&wider, set.items[i]);
        for (ms_reg *r = ch->reg_head; r != NULL && rc == 0; r = r->next)
            for (size_t i = 0; i < r->consumer->n && rc == 0; i++)
                rc = set_add(&wider, r->consumer->chans[i]);
        unlock_set(s, &set);
        set_free(&set);
        set = wider;
        if (rc != 0) {
            set_free(&set);
            if (s->locking == MS_GLOBAL_MUTEX)
                pthread_mutex_unlock(&s->global);
            free(d);
            return rc;
        }
    }

    d->next = NULL;
    d->prev = ch->data_tail;
    if (ch->data_tail)
        ch->data_tail->next = d;
    else
        ch->data_head = d;
    ch->data_tail = d;
    ch->n_data++;

    /* Offer the datum to the waiting consumers, oldest first, until one takes it. */
    ms_consumer *fired = NULL, **fired_tail = &fired;
    for (ms_reg *r = ch->reg_head, *next; r != NULL; r = next) {
        ms_consumer *k = r->consumer;
        bool taken_d = false;
        next = r->next;
        if (!try_take(k))
            continue;
        for (size_t i = 0; i < k->n; i++) {
            reg_remove(k->chans[i], &k->regs[i]);
            taken_d |= k->found[i] == d;
        }
        *fired_tail = k;
        fired_tail = &k->fire_next;
        k->fire_next = NULL;
        if (taken_d)
            break;
    }
    unlock_set(s, &set);
    if (s->locking == MS_GLOBAL_MUTEX)
        pthread_mutex_unlock(&s->global);
    set_free(&set);
    run_firings(s, fired);
    return 0;
}

int ms_space_consume(ms_space *s, const baton_value_view *channels,
                     baton_pattern *const *patterns, size_t n, baton_continuation_fn fn,
                     void *ctx)
{
    if (s == NULL || channels == NULL || patterns == NULL || fn == NULL || n == 0)
        return BATON_EINVAL;
    size_t binders = 0;
    for (size_t i = 0; i < n; i++) {
        if (patterns[i] == NULL || channels[i].data == NULL || channels[i].size == 0)
            return BATON_EINVAL;
        binders += baton_pattern_binders(patterns[i]);
    }
    /* One block: the consumer, then its arrays. */
    size_t per = sizeof(ms_channel *) + sizeof(baton_pattern *) + sizeof(ms_reg) +
                 sizeof(ms_datum *) + sizeof(baton_value_view) + sizeof(baton_value_view *);
    ms_consumer *k = malloc(sizeof *k + n * per + binders * sizeof(baton_value_view));
    if (k == NULL)
        return BATON_ENOMEM;
    k->n = n;
    k->fn = fn;
    k->ctx = ctx;
    k->regs = (ms_reg *)(k + 1);
    k->views = (baton_value_view *)(k->regs + n);
    k->chans = (ms_channel **)(k->views + n);
    k->pats = (baton_pattern **)(k->chans + n);
    k->found = (ms_datum **)(k->pats + n);
    k->bindings = (baton_value_view **)(k->found + n);
    baton_value_view *bind = (baton_value_view *)(k->bindings + n);
    for (size_t i = 0; i < n; i++) {
        k->pats[i] = patterns[i];
        k->bindings[i] = bind;
        bind += baton_pattern_binders(patterns[i]);
        k->regs[i].consumer = k;
    }

    ms_set set;
    int rc = 0;
    set_init(&set);
    pthread_mutex_lock(&s->global);
    for (size_t i = 0; i < n && rc == 0; i++) {
        k->chans[i] = channel_get(s, channels[i]);
        if (k->chans[i] == NULL)
            rc = BATON_ENOMEM;
        else if (set_contains(&set, k->chans[i]))
            rc = BATON_EINVAL;
        else
            rc = set_add(&set, k->chans[i]);
    }
    if (s->locking == MS_CHANNEL_MUTEX || rc != 0)
        pthread_mutex_unlock(&s->global);
    if (rc != 0) {
        set_free(&set);
        free(k);
        return rc;
    }

    lock_set(s, &set);
    bool fired = try_take(k);
    if (!fired) {
        for (size_t i = 0; i < n; i++) {
            ms_channel *ch = k->chans[i];
            ms_reg *r = &k->regs[i];
            r->next = NULL;
            r->prev = ch->reg_tail;
            if (ch->reg_tail)
                ch->reg_tail->next = r;
            else
                ch->reg_head = r;
            ch->reg_tail = r;
            ch->n_regs++;
            if (n > 1)
                ch->n_joins++;
        }
    }
    unlock_set(s, &set);
    if (s->locking == MS_GLOBAL_MUTEX)
        pthread_mutex_unlock(&s->global);
    set_free(&set);
    if (fired) {
        k->fire_next = NULL;
        run_firings(s, k);
    }
    return 0;
}

int ms_space_take_error(ms_space *s)
{
    return atomic_exchange(&s->first_error, 0);
}

void ms_space_counts(ms_space *s, size_t *data, size_t *consumers)
{
    size_t nd = 0, nr = 0;
    pthread_mutex_lock(&s->global);
    for (size_t b = 0; b < s->n_buckets; b++)
        for (ms_channel *ch = s->buckets[b]; ch != NULL; ch = ch->bucket_next) {
            if (s->locking == MS_CHANNEL_MUTEX)
                pthread_mutex_lock(&ch->lock);
            nd += ch->n_data;
            /* A consumer counts once, through its first channel. */
            for (ms_reg *r = ch->reg_head; r != NULL; r = r->next)
                nr += r == &r->consumer->regs[0];
            if (s->locking == MS_CHANNEL_MUTEX)
                pthread_mutex_unlock(&ch->lock);
        }
    pthread_mutex_unlock(&s->global);
    *data = nd;
    *consumers = nr;
}
