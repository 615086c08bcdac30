/*
 * space.c — the tuplespace core, in memory: channels with their chains, produce, consume, joins
 * that climb their channels in one global order, and continuations run as pool tasks.
 *
 * DESIGN
 *  - Channels. A channel is found through a table keyed by the XXH3 hash of its encoding and
 *    compared by encoding (sharded, each shard behind a mutex that only lookups and creations
 *    take; channels live until the space is destroyed, so a channel pointer, once found, is used
 *    without any lock). Its state is its data (oldest first) and its registrations of waiting
 *    consumers (oldest first).
 *  - Chains. Every operation on a channel is a record appended to the channel's chain: an
 *    intrusive MPSC queue (baton_mpsc_linked) plus `pending`, the number of records appended and
 *    not yet finished. Appending is push-then-increment; whoever moves `pending` from 0 to 1 owns
 *    the channel's state and runs its records one by one, decrementing `pending` after each; the
 *    one whose decrement leaves it above 0 goes on with the next record. All writes of `pending`
 *    are read-modify-writes (acq_rel), so they form one release sequence: whichever of an
 *    appender's increment and the owner's decrement comes second sees the other's effect — the
 *    owner sees the new record, or the appender sees the count drop to 0 and becomes the owner.
 *    Exactly one thread owns a channel while `pending` > 0, each owner sees the state its
 *    predecessor left (acquire on the RMW it read), and no record is stranded. No lock is taken
 *    and no thread waits for a channel: an operation that finds its channel busy leaves its
 *    record behind and returns; the owner runs it. (The only wait: a record counted in `pending`
 *    may sit behind one whose pusher has swapped the queue's tail but not linked it yet; the
 *    owner spins for those two instructions.) The owner runs the records inline, on the thread
 *    that made the chain non-idle, rather than as a pool task: the pool has no detached spawn,
 *    and an inline owner needs neither a scope nor an allocation per activation. Channels owned
 *    by one call are kept on that call's work list (`work_next`), so ownership passes without
 *    recursion.
 *  - Joins climb in one global order. A consume over c1..cn sorts its channels by (hash,
 *    encoding) — so the order the caller listed them in cannot change the result — and enters
 *    c1's chain. When its record is run there it *holds* c1: the owner does not decrement
 *    `pending`, so c1's chain stops behind it, and the record is appended to c2's chain; and so
 *    on. Holding all of them, it finds the oldest matching datum on each; if every channel has one
 *    it fires (removes the non-persistent data unless it peeks, and, unless it is persistent, its
 *    registrations on ALL its channels), else it registers on each channel. Then it releases
 *    every channel (decrements each `pending`; a release that leaves records behind makes the
 *    releasing thread the owner). Every join climbs the same order and waits only for channels
 *    above the ones it holds, so in any chain of waits the holder of the highest channel can
 *    proceed: no deadlock. Two overlapping joins (a;b and a;c) are serialized on a and both
 *    progress. Independent channels never meet, so they run fully in parallel.
 *  - Produce. A produce runs in its channel's chain: it stores the datum, then settles it —
 *    walks the channel's registrations oldest first: a matching single-channel consumer fires at
 *    once (the datum is gone unless persistent or peeked, and the walk ends), a matching join is
 *    re-evaluated: a REEVAL record climbs the join's channels like the join itself (the producer
 *    releases its channel first, so it cannot break the order). At the top the re-evaluation
 *    fires the join if it can, and in any case appends a SETTLE record to the datum's channel
 *    that resumes the walk after the join's registration (by the channel's registration
 *    sequence number) if the datum is still there. So a datum goes on looking for a consumer
 *    until it is taken or has passed every consumer registered before it; consumers registered
 *    later looked at it themselves. A persistent consumer that fires and removed some datum tries
 *    again before it (re)registers, so at quiescence no waiting consumer matches stored data on
 *    all its channels, unless firing would remove nothing (a persistent or peeking consumer over
 *    persistent data) — the space is stable.
 *  - A consumer's mutable state (registered, its scratch array) is touched only by a thread
 *    holding all its channels, so it needs no atomics; its lifetime is a reference count (one
 *    for being alive or registered, one per record that names it).
 *  - Continuations. A firing copies the matched data into one block (bindings are re-matched
 *    against the copies), so later operations on the channel cannot invalidate them. Firings are
 *    collected during the call and run as pool tasks at its end: from inside a continuation they
 *    are spawned into the continuation's scope; from an outside thread the call runs a scope that
 *    waits for them (and everything they spawn). So every continuation runs inside some public
 *    call, and quiesce only waits for `inflight`, the number of public calls under way.
 */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include <pthread.h>

#include "baton/queue.h"
#include "baton/space.h"
#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/waitpoint.h"
#include "space/internal.h"

#define SP_SHARDS 64u

typedef struct sp_channel sp_channel;
typedef struct sp_consumer sp_consumer;

typedef struct sp_datum {
    struct sp_datum *prev, *next;
    uint64_t id;
    bool persistent;
    size_t size;
    uint8_t bytes[];
} sp_datum;

typedef struct sp_reg {
    struct sp_reg *prev, *next;
    sp_consumer *consumer;
    size_t pos;   /* index into the consumer's sorted channels */
    uint64_t seq; /* the channel's registration sequence number */
} sp_reg;

struct sp_consumer {
    uint64_t id;
    size_t n;
    unsigned flags;
    baton_continuation_fn fn;
    void *ctx;
    _Atomic size_t refs;
    bool registered;
    sp_consumer *free_next; /* destroy's list */
    sp_reg *regs;           /* per sorted position */
    sp_channel **chans;     /* sorted by (hash, encoding) */
    const baton_pattern **pats;
    size_t *caller_index;
    sp_datum **scratch;
};

struct sp_channel {
    sp_channel *table_next;
    uint64_t hash;
    size_t size;
    uint8_t *enc;
    baton_mpsc_linked *queue;
    _Atomic size_t pending;
    sp_channel *work_next;
    sp_datum *data_head, *data_tail;
    size_t n_data;
    sp_reg *reg_head, *reg_tail;
    size_t n_regs;
    uint64_t reg_seq;
};

typedef enum { OP_PRODUCE, OP_SETTLE, OP_CONSUME, OP_REEVAL } sp_op_kind;

typedef struct sp_op {
    baton_mpsc_node node;
    sp_op_kind kind;
    size_t step;
    sp_consumer *consumer; /* CONSUME, REEVAL */
    sp_channel *channel;   /* SETTLE, REEVAL: the datum's channel */
    sp_datum *datum;       /* PRODUCE: owned until stored */
    uint64_t datum_id;     /* SETTLE, REEVAL */
    uint64_t after_seq;    /* SETTLE, REEVAL */
} sp_op;

typedef struct sp_fire {
    struct sp_fire *next;
    baton_space *space;
    baton_scope *scope;
    baton_continuation_fn fn;
    void *ctx;
    baton_match match;
} sp_fire;

typedef struct sp_shard {
    pthread_mutex_t lock;
    sp_channel **buckets;
    size_t n_buckets;
    size_t count;
} sp_shard;

struct baton_space {
    baton_pool *pool;
    _Atomic uint64_t next_name;
    _Atomic uint64_t next_consumer;
    _Atomic uint64_t next_datum;
    _Atomic size_t inflight;
    _Atomic int first_error;
    baton__waitpoint idle; /* quiesce sleeps here until inflight reaches 0 */
    sp_shard shards[SP_SHARDS];
};

/* One public call's bookkeeping: the channels it owns and must run, the firings it collected. */
typedef struct sp_call {
    baton_space *space;
    sp_channel *work;
    sp_fire *fires;
} sp_call;

/* The scope of the continuation this thread is running, if any. */
static _Thread_local baton_scope *sp_tls_scope;
static _Thread_local baton_pool *sp_tls_pool;

static void record_error(baton_space *space, int rc)
{
    int expected = 0;
    /* Relaxed is enough: quiesce reads it after an acquire of inflight that orders it. */
    atomic_compare_exchange_strong_explicit(&space->first_error, &expected, rc,
                                            memory_order_relaxed, memory_order_relaxed);
}

/* ---- the channel table ---- */

static int channel_cmp(uint64_t hash, const uint8_t *enc, size_t size, const sp_channel *ch)
{
    if (hash != ch->hash)
        return hash < ch->hash ? -1 : 1;
    size_t common = size < ch->size ? size : ch->size;
    int c = memcmp(enc, ch->enc, common);
    if (c != 0)
        return c;
    return size == ch->size ? 0 : (size < ch->size ? -1 : 1);
}

static sp_channel *table_find(sp_shard *shard, uint64_t hash, baton_value_view v)
{
    if (shard->n_buckets == 0)
        return NULL;
    for (sp_channel *ch = shard->buckets[(hash >> 6) & (shard->n_buckets - 1)]; ch;
         ch = ch->table_next)
        if (channel_cmp(hash, v.data, v.size, ch) == 0)
            return ch;
    return NULL;
}

static bool table_grow(sp_shard *shard)
{
    size_t n = shard->n_buckets ? shard->n_buckets * 2 : 16;
    sp_channel **b = baton__calloc(n, sizeof *b);
    if (b == NULL)
        return false;
    for (size_t i = 0; i < shard->n_buckets; i++) {
        sp_channel *ch = shard->buckets[i];
        while (ch) {
            sp_channel *next = ch->table_next;
            size_t k = (ch->hash >> 6) & (n - 1);
            ch->table_next = b[k];
            b[k] = ch;
            ch = next;
        }
    }
    baton__free(shard->buckets);
    shard->buckets = b;
    shard->n_buckets = n;
    return true;
}

static void channel_free(sp_channel *ch)
{
    baton_mpsc_linked_destroy(ch->queue);
    baton__free(ch->enc);
    baton__free(ch);
}

/* Finds or creates the channel; NULL on allocation failure (error set). */
static sp_channel *channel_get(baton_space *space, baton_value_view v, bool create)
{
    uint64_t hash = baton_view_hash(v);
    sp_shard *shard = &space->shards[hash & (SP_SHARDS - 1)];
    pthread_mutex_lock(&shard->lock);
    sp_channel *ch = table_find(shard, hash, v);
    if (ch != NULL || !create) {
        pthread_mutex_unlock(&shard->lock);
        return ch;
    }
    if (shard->count + 1 > shard->n_buckets * 2 && !table_grow(shard))
        goto nomem;
    ch = baton__calloc(1, sizeof *ch);
    if (ch == NULL)
        goto nomem;
    ch->enc = baton__malloc(v.size);
    if (ch->enc == NULL || baton_mpsc_linked_create(&ch->queue) != 0) {
        baton__free(ch->enc);
        baton__free(ch);
        goto nomem;
    }
    memcpy(ch->enc, v.data, v.size);
    ch->size = v.size;
    ch->hash = hash;
    atomic_init(&ch->pending, 0);
    size_t k = (hash >> 6) & (shard->n_buckets - 1);
    ch->table_next = shard->buckets[k];
    shard->buckets[k] = ch;
    shard->count++;
    pthread_mutex_unlock(&shard->lock);
    return ch;
nomem:
    pthread_mutex_unlock(&shard->lock);
    baton__error(BATON_ENOMEM, "baton_space: out of memory for a channel");
    return NULL;
}

/* ---- lists (called by the channel's owner) ---- */

static void data_append(sp_channel *ch, sp_datum *d)
{
    d->next = NULL;
    d->prev = ch->data_tail;
    if (ch->data_tail)
        ch->data_tail->next = d;
    else
        ch->data_head = d;
    ch->data_tail = d;
    ch->n_data++;
}

static void data_remove(sp_channel *ch, sp_datum *d)
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
    baton__free(d);
}

static void reg_append(sp_channel *ch, sp_reg *r)
{
    r->seq = ++ch->reg_seq;
    r->next = NULL;
    r->prev = ch->reg_tail;
    if (ch->reg_tail)
        ch->reg_tail->next = r;
    else
        ch->reg_head = r;
    ch->reg_tail = r;
    ch->n_regs++;
}

static void reg_remove(sp_channel *ch, sp_reg *r)
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
}

static void consumer_unref(sp_consumer *k)
{
    /* acq_rel: release publishes this thread's use of k; acquire, for the last one, makes every
     * other user's accesses happen before the free. */
    if (baton__fetch_sub_acq_rel(&k->refs, 1) == 1)
        baton__free(k);
}

/* ---- chains ---- */

static void push_op(sp_call *call, sp_channel *ch, sp_op *op)
{
    (void)baton_mpsc_linked_push(ch->queue, &op->node); /* never closed: cannot fail */
    /* acq_rel on the chain's count (see DESIGN). Release: the pushed record (and everything the
     * pusher wrote to it) is visible to the owner whose decrement reads this increment. Acquire:
     * when this makes the count 1, the previous owner's release decrement is read, so the
     * channel's state it left is visible to us, the new owner. */
    if (baton__fetch_add_acq_rel(&ch->pending, 1) == 0) {
        ch->work_next = call->work;
        call->work = ch;
    }
}

static void release(sp_call *call, sp_channel *ch)
{
    /* acq_rel, pairs with push_op's increment: release hands the channel's state to whoever owns
     * it next; acquire makes the records counted so far visible if we go on as the owner. */
    if (baton__fetch_sub_acq_rel(&ch->pending, 1) != 1) {
        ch->work_next = call->work;
        call->work = ch;
    }
}

static sp_op *pop_op(sp_channel *ch)
{
    baton_mpsc_node *node = NULL;
    /* The record is counted, so it is pushed; only a pusher between its tail swap and its link
     * can hide it, for a few instructions. */
    while (baton_mpsc_linked_try_pop(ch->queue, &node) != 0)
        sched_yield();
    return (sp_op *)((char *)node - offsetof(sp_op, node));
}

static sp_op *op_new(sp_call *call, sp_op_kind kind)
{
    sp_op *op = baton__calloc(1, sizeof *op);
    if (op == NULL)
        record_error(call->space, BATON_ENOMEM);
    else
        op->kind = kind;
    return op;
}

/* ---- firing ---- */

static void fire(sp_call *call, sp_consumer *k, sp_datum *const *found)
{
    size_t n = k->n, binders = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        binders += baton_pattern_binders(k->pats[i]);
        bytes += found[i]->size;
    }
    size_t size = sizeof(sp_fire) + n * sizeof(baton_value_view) + n * sizeof(baton_value_view *) +
                  binders * sizeof(baton_value_view) + bytes;
    sp_fire *f = baton__malloc(size);
    if (f == NULL) {
        record_error(call->space, BATON_ENOMEM);
        return;
    }
    baton_value_view *data = (baton_value_view *)(f + 1);
    const baton_value_view **bindings = (const baton_value_view **)(data + n);
    baton_value_view *bound = (baton_value_view *)(bindings + n);
    uint8_t *copy = (uint8_t *)(bound + binders);
    for (size_t i = 0; i < n; i++) {
        size_t ci = k->caller_index[i];
        memcpy(copy, found[i]->bytes, found[i]->size);
        data[ci] = (baton_value_view){copy, found[i]->size};
        copy += found[i]->size;
        bindings[ci] = bound;
        (void)baton_pattern_match(k->pats[i], data[ci], bound);
        bound += baton_pattern_binders(k->pats[i]);
    }
    f->space = call->space;
    f->scope = NULL;
    f->fn = k->fn;
    f->ctx = k->ctx;
    f->match = (baton_match){n, data, (const baton_value_view *const *)bindings};
    f->next = call->fires;
    call->fires = f;
}

static int fire_task(void *arg)
{
    sp_fire *f = arg;
    baton_scope *saved_scope = sp_tls_scope;
    baton_pool *saved_pool = sp_tls_pool;
    sp_tls_scope = f->scope;
    sp_tls_pool = f->space->pool;
    int rc = f->fn(f->ctx, &f->match);
    sp_tls_scope = saved_scope;
    sp_tls_pool = saved_pool;
    if (rc != 0)
        record_error(f->space, rc);
    baton__free(f);
    return 0;
}

static void spawn_fires(baton_space *space, baton_scope *scope, sp_fire *f)
{
    while (f) {
        sp_fire *next = f->next;
        f->scope = scope;
        int rc = baton_scope_spawn(scope, fire_task, f);
        if (rc != 0) {
            record_error(space, rc);
            baton__free(f);
        }
        f = next;
    }
}

static int spawn_body(baton_scope *scope, void *arg)
{
    sp_call *call = arg;
    spawn_fires(call->space, scope, call->fires);
    call->fires = NULL;
    return 0;
}

static void dispatch(sp_call *call)
{
    if (call->fires == NULL)
        return;
    if (sp_tls_scope != NULL && sp_tls_pool == call->space->pool) {
        spawn_fires(call->space, sp_tls_scope, call->fires);
        call->fires = NULL;
        return;
    }
    int rc = baton_scope_run(call->space->pool, spawn_body, call);
    if (rc != 0)
        record_error(call->space, rc);
    for (sp_fire *f = call->fires, *next; f; f = next) { /* left over if the scope failed */
        next = f->next;
        baton__free(f);
    }
    call->fires = NULL;
}

/* ---- the operations, run by the owner of the channel(s) ---- */

static sp_datum *find_datum(sp_channel *ch, uint64_t id)
{
    for (sp_datum *d = ch->data_head; d; d = d->next)
        if (d->id == id)
            return d;
    return NULL;
}

static void unregister(sp_consumer *k)
{
    for (size_t i = 0; i < k->n; i++)
        reg_remove(k->chans[i], &k->regs[i]);
    k->registered = false;
    consumer_unref(k); /* the alive reference */
}

/* Walks ch's registrations after after_seq for the stored datum d (see DESIGN: Produce). */
static void settle(sp_call *call, sp_channel *ch, sp_datum *d, uint64_t after_seq)
{
    uint64_t id = d->id;
    baton_value_view v = {d->bytes, d->size};
    for (sp_reg *r = ch->reg_head, *next; r; r = next) {
        next = r->next;
        if (r->seq <= after_seq)
            continue;
        sp_consumer *k = r->consumer;
        if (!baton_pattern_match(k->pats[r->pos], v, NULL))
            continue;
        if (k->n == 1) {
            fire(call, k, &d);
            bool removed = !(k->flags & BATON_CONSUME_PEEK) && !d->persistent;
            if (!(k->flags & BATON_CONSUME_PERSISTENT))
                unregister(k);
            if (removed) {
                data_remove(ch, d);
                return;
            }
            continue;
        }
        sp_op *op = op_new(call, OP_REEVAL);
        if (op == NULL)
            return;
        /* Relaxed: the record's push publishes it; k is kept alive by the reference we hold
         * through its registration. */
        baton__fetch_add_relaxed(&k->refs, 1);
        op->consumer = k;
        op->channel = ch;
        op->datum_id = id;
        op->after_seq = r->seq;
        push_op(call, k->chans[0], op);
        return;
    }
}

/* The top of a climb: holding all of k's channels. */
static void top(sp_call *call, sp_op *op)
{
    sp_consumer *k = op->consumer;
    bool alive = op->kind == OP_CONSUME || k->registered;
    while (alive) {
        size_t i;
        for (i = 0; i < k->n; i++) {
            sp_datum *d = k->chans[i]->data_head;
            while (d &&
                   !baton_pattern_match(k->pats[i], (baton_value_view){d->bytes, d->size}, NULL))
                d = d->next;
            if (d == NULL)
                break;
            k->scratch[i] = d;
        }
        if (i < k->n)
            break;
        fire(call, k, k->scratch);
        bool removed = false;
        for (i = 0; i < k->n; i++) {
            if (!(k->flags & BATON_CONSUME_PEEK) && !k->scratch[i]->persistent) {
                data_remove(k->chans[i], k->scratch[i]);
                removed = true;
            }
        }
        if (!(k->flags & BATON_CONSUME_PERSISTENT)) {
            if (k->registered)
                unregister(k);
            else
                consumer_unref(k); /* the alive reference of a consumer never registered */
            alive = false;
            break;
        }
        if (!removed)
            break;
    }
    if (op->kind == OP_CONSUME && alive) {
        for (size_t i = 0; i < k->n; i++)
            reg_append(k->chans[i], &k->regs[i]);
        k->registered = true;
    }
    if (op->kind == OP_REEVAL) {
        sp_op *s = op_new(call, OP_SETTLE);
        if (s != NULL) {
            s->channel = op->channel;
            s->datum_id = op->datum_id;
            s->after_seq = op->after_seq;
            push_op(call, s->channel, s);
        }
    }
}

static void run_op(sp_call *call, sp_channel *ch, sp_op *op)
{
    switch (op->kind) {
    case OP_PRODUCE:
        data_append(ch, op->datum);
        settle(call, ch, op->datum, 0);
        break;
    case OP_SETTLE: {
        sp_datum *d = find_datum(ch, op->datum_id);
        if (d != NULL)
            settle(call, ch, d, op->after_seq);
        break;
    }
    case OP_CONSUME:
    case OP_REEVAL: {
        sp_consumer *k = op->consumer;
        if (op->step + 1 < k->n) { /* hold ch and climb to the next channel */
            op->step++;
            push_op(call, k->chans[op->step], op);
            return;
        }
        top(call, op);
        for (size_t i = 0; i < k->n; i++)
            release(call, k->chans[i]);
        consumer_unref(k); /* the record's reference */
        baton__free(op);
        return;
    }
    }
    release(call, ch);
    baton__free(op);
}

static void run_work(sp_call *call)
{
    while (call->work != NULL) {
        sp_channel *ch = call->work;
        call->work = ch->work_next;
        run_op(call, ch, pop_op(ch));
    }
}

static void call_begin(baton_space *space)
{
    /* Relaxed: quiesce needs only to see the count, and our end's release decrement orders all
     * that this call did before it. */
    baton__fetch_add_relaxed(&space->inflight, 1);
}

static void call_end(sp_call *call)
{
    run_work(call);
    dispatch(call);
    /* Release pairs with quiesce's acquire load: the call's effects (and its continuations')
     * are visible to the thread that saw it end. */
    baton_space *space = call->space;
    if (atomic_fetch_sub_explicit(&space->inflight, 1, memory_order_release) == 1)
        baton__waitpoint_notify(&space->idle, true);
}

/* ---- the API ---- */

int baton_space_create(const baton_space_config *config, baton_space **out)
{
    if (config == NULL || out == NULL || config->pool == NULL)
        return baton__error(BATON_EINVAL, "baton_space_create: NULL config, pool or out");
    if (config->struct_size > sizeof(baton_space_config))
        return baton__error(BATON_EINVAL, "baton_space_create: struct_size %zu is larger than %zu",
                            config->struct_size, sizeof(baton_space_config));
    baton_space *space = baton__calloc(1, sizeof *space);
    if (space == NULL)
        return baton__error(BATON_ENOMEM, "baton_space_create: out of memory");
    space->pool = config->pool;
    for (unsigned i = 0; i < SP_SHARDS; i++)
        pthread_mutex_init(&space->shards[i].lock, NULL);
    atomic_init(&space->next_name, 0);
    atomic_init(&space->next_consumer, 0);
    atomic_init(&space->next_datum, 0);
    atomic_init(&space->inflight, 0);
    baton__waitpoint_global_init();
    baton__waitpoint_init(&space->idle);
    atomic_init(&space->first_error, 0);
    *out = space;
    return 0;
}

void baton_space_destroy(baton_space *space)
{
    if (space == NULL)
        return;
    sp_consumer *consumers = NULL;
    for (unsigned s = 0; s < SP_SHARDS; s++) {
        sp_shard *shard = &space->shards[s];
        for (size_t b = 0; b < shard->n_buckets; b++)
            for (sp_channel *ch = shard->buckets[b]; ch; ch = ch->table_next)
                for (sp_reg *r = ch->reg_head; r; r = r->next)
                    if (r->pos == 0) {
                        r->consumer->free_next = consumers;
                        consumers = r->consumer;
                    }
    }
    for (unsigned s = 0; s < SP_SHARDS; s++) {
        sp_shard *shard = &space->shards[s];
        for (size_t b = 0; b < shard->n_buckets; b++) {
            for (sp_channel *ch = shard->buckets[b], *next; ch; ch = next) {
                next = ch->table_next;
                for (sp_datum *d = ch->data_head, *dn; d; d = dn) {
                    dn = d->next;
                    baton__free(d);
                }
                channel_free(ch);
            }
        }
        baton__free(shard->buckets);
        pthread_mutex_destroy(&shard->lock);
    }
    while (consumers) {
        sp_consumer *next = consumers->free_next;
        baton__free(consumers);
        consumers = next;
    }
    baton__free(space);
}

uint64_t baton_space_fresh_name(baton_space *space)
{
    return baton__fetch_add_relaxed(&space->next_name, 1) + 1;
}

int baton_space_produce(baton_space *space, baton_value_view channel, baton_value_view datum,
                        bool persistent)
{
    if (space == NULL)
        return baton__error(BATON_EINVAL, "baton_space_produce: NULL space");
    if (!baton__view_valid(channel))
        return baton__error(BATON_EINVAL, "baton_space_produce: malformed channel");
    if (!baton__view_valid(datum))
        return baton__error(BATON_EINVAL, "baton_space_produce: malformed datum");
    sp_channel *ch = channel_get(space, channel, true);
    if (ch == NULL)
        return BATON_ENOMEM;
    sp_datum *d = baton__malloc(sizeof *d + datum.size);
    sp_op *op = baton__calloc(1, sizeof *op);
    if (d == NULL || op == NULL) {
        baton__free(d);
        baton__free(op);
        return baton__error(BATON_ENOMEM, "baton_space_produce: out of memory");
    }
    memcpy(d->bytes, datum.data, datum.size);
    d->size = datum.size;
    d->persistent = persistent;
    d->id = baton__fetch_add_relaxed(&space->next_datum, 1) + 1;
    op->kind = OP_PRODUCE;
    op->datum = d;
    sp_call call = {space, NULL, NULL};
    call_begin(space);
    push_op(&call, ch, op);
    call_end(&call);
    return 0;
}

int baton_space_consume(baton_space *space, const baton_value_view *channels,
                        baton_pattern *const *patterns, size_t n, baton_continuation_fn fn,
                        void *ctx, unsigned flags, uint64_t *consumer_id)
{
    if (space == NULL || channels == NULL || patterns == NULL || fn == NULL || n == 0)
        return baton__error(BATON_EINVAL, "baton_space_consume: NULL argument or no channels");
    if (flags & ~(unsigned)(BATON_CONSUME_PERSISTENT | BATON_CONSUME_PEEK))
        return baton__error(BATON_EINVAL, "baton_space_consume: unknown flags 0x%x", flags);
    if (n > SIZE_MAX / 64)
        return baton__error(BATON_EINVAL, "baton_space_consume: too many channels");
    for (size_t i = 0; i < n; i++) {
        if (patterns[i] == NULL)
            return baton__error(BATON_EINVAL, "baton_space_consume: pattern %zu is NULL", i);
        if (!baton__view_valid(channels[i]))
            return baton__error(BATON_EINVAL, "baton_space_consume: channel %zu is malformed", i);
    }
    size_t per = sizeof(sp_reg) + sizeof(sp_channel *) + sizeof(baton_pattern *) + sizeof(size_t) +
                 sizeof(sp_datum *);
    sp_consumer *k = baton__calloc(1, sizeof *k + n * per);
    if (k == NULL)
        return baton__error(BATON_ENOMEM, "baton_space_consume: out of memory");
    k->regs = (sp_reg *)(k + 1);
    k->chans = (sp_channel **)(k->regs + n);
    k->pats = (const baton_pattern **)(k->chans + n);
    k->caller_index = (size_t *)(k->pats + n);
    k->scratch = (sp_datum **)(k->caller_index + n);
    k->n = n;
    k->flags = flags;
    k->fn = fn;
    k->ctx = ctx;
    /* Insertion sort of the caller's channels by (hash, encoding). */
    for (size_t i = 0; i < n; i++) {
        sp_channel *ch = channel_get(space, channels[i], true);
        if (ch == NULL) {
            baton__free(k);
            return BATON_ENOMEM;
        }
        size_t j = i;
        while (j > 0 && channel_cmp(ch->hash, ch->enc, ch->size, k->chans[j - 1]) < 0) {
            k->chans[j] = k->chans[j - 1];
            k->pats[j] = k->pats[j - 1];
            k->caller_index[j] = k->caller_index[j - 1];
            j--;
        }
        if (j > 0 && k->chans[j - 1] == ch) {
            baton__free(k);
            return baton__error(BATON_EINVAL, "baton_space_consume: channel %zu is listed twice",
                                i);
        }
        k->chans[j] = ch;
        k->pats[j] = patterns[i];
        k->caller_index[j] = i;
    }
    for (size_t i = 0; i < n; i++) {
        k->regs[i].consumer = k;
        k->regs[i].pos = i;
    }
    sp_op *op = baton__calloc(1, sizeof *op);
    if (op == NULL) {
        baton__free(k);
        return baton__error(BATON_ENOMEM, "baton_space_consume: out of memory");
    }
    k->id = baton__fetch_add_relaxed(&space->next_consumer, 1) + 1;
    atomic_init(&k->refs, 2); /* alive, and the CONSUME record */
    if (consumer_id != NULL)
        *consumer_id = k->id;
    op->kind = OP_CONSUME;
    op->consumer = k;
    sp_call call = {space, NULL, NULL};
    call_begin(space);
    push_op(&call, k->chans[0], op);
    call_end(&call);
    return 0;
}

static bool no_call_in_flight(void *arg)
{
    baton_space *space = arg;
    return baton__load_acquire(&space->inflight) == 0;
}

int baton_space_quiesce(baton_space *space)
{
    if (space == NULL)
        return baton__error(BATON_EINVAL, "baton_space_quiesce: NULL space");
    if (sp_tls_scope != NULL)
        return baton__error(BATON_EPERM, "baton_space_quiesce: called from a continuation");
    /* Acquire pairs with call_end's release decrement: what the calls did is visible. */
    (void)baton__waitpoint_wait(&space->idle, no_call_in_flight, space, UINT64_MAX);
    int rc = atomic_exchange_explicit(&space->first_error, 0, memory_order_relaxed);
    if (rc != 0)
        return baton__error(rc, "baton_space_quiesce: a continuation failed: %s",
                            baton_err_name(rc));
    return 0;
}

int baton_space_channel_counts(baton_space *space, baton_value_view channel, size_t *data,
                               size_t *consumers)
{
    if (space == NULL || data == NULL || consumers == NULL || !baton__view_valid(channel))
        return baton__error(BATON_EINVAL, "baton_space_channel_counts: bad argument");
    sp_channel *ch = channel_get(space, channel, false);
    *data = ch ? ch->n_data : 0;
    *consumers = ch ? ch->n_regs : 0;
    return 0;
}
