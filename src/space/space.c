/*
 * space.c — the tuplespace core's design, and its calls: produce, consume (joins that climb their
 * channels in one global order), how a call is counted and runs the chains it made busy,
 * quiescence. The chains and the records their owners run are space_chain.c's; the channels
 * themselves (the table, their lists) space_table.c's, a consumer's block space_consumer.c's.
 *
 * DESIGN
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
 *    owner spins for those two instructions, and runs its call's other channels first when the
 *    pusher was preempted between them: pop_op.) The owner runs the records inline, on the thread
 *    that made the chain non-idle, rather than as a pool task: the pool has no detached spawn,
 *    and an inline owner needs neither a scope nor an allocation per activation. Channels owned
 *    by one call are kept on that call's work list (`work_next`), so ownership passes without
 *    recursion. A record for an idle channel skips the queue: pending 0 -> 1 by CAS claims the
 *    channel, and the record waits in `direct` for its owner, who runs it before anything the
 *    queue holds (a produce or a climb on an idle channel then costs one RMW, not a push, a
 *    count and a pop that empties the queue again).
 *  - Joins climb in one global order (of the two remedies for the interleaving trap, this one;
 *    the other, one coordinator hooking every channel of an operation in a single step, makes
 *    that coordinator a serial point for every operation, while the climb keeps independent
 *    channels fully parallel). A consume over c1..cn sorts its channels by (hash, encoding) — so
 *    the order the caller listed them in cannot change the result — and enters c1's chain. When
 *    its record is run there it *holds* c1: the owner does not decrement `pending`, so c1's chain
 *    stops behind it, and the record is appended to c2's chain; and so on. Holding all of them,
 *    it finds the oldest matching datum on each; if every channel has one it fires (removes the
 *    non-persistent data unless it peeks, and, unless it is persistent, its registrations on ALL
 *    its channels), else it registers on each channel. Then it releases every channel
 *    (decrements each `pending`; a release that leaves records behind makes the releasing thread
 *    the owner). Every join climbs the same order and waits only for channels above the ones it
 *    holds, so in any chain of waits the holder of the highest channel can proceed: no deadlock.
 *    Two overlapping joins (a;b and a;c) are serialized on a and both progress. Independent
 *    channels never meet, so they run fully in parallel.
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
 *  - Consume at once. A plain consume (no flags, up to 8 channels) that claims all its channels
 *    idle, in climbing order, and finds a matching datum on each takes the oldest of each and
 *    fires there, without making a consumer: what the top of its climb would do for a consumer
 *    that fires on its first look (the consumer's block, its initialisation and release were a
 *    third of a produce/consume pair), the same FIRE record included (space_log.c). The claims
 *    never wait: a busy channel sends the consume the general way, once the channels claimed so
 *    far are let go unchanged. Not in SYNC mode, whose calls wait for their record.
 *  - A consumer's mutable state (registered, its scratch array) is touched only by a thread
 *    holding all its channels, so it needs no atomics; its lifetime is a reference count (one
 *    for being alive or registered, one per record that names it; space_consumer.c).
 *  - Every change is logged by the thread that makes it, while it holds the channels it changed
 *    (space_log.c), so the log's order agrees with every channel's order. Firings are collected
 *    during a call and dispatched as continuations after each record the call runs and at its
 *    end (space_fire.c).
 *  - Quiescence. Calls from outside continuations are counted in per-thread counters (began,
 *    ended; kept with the thread's blocks, space_mem.c), so that independent callers share no
 *    cache line and, each counter having one writer, count with plain stores instead of
 *    read-modify-writes (two locked instructions per call, a tenth of a produce/consume pair).
 *    Quiesce reads every `ended`, then every `began`: equal sums mean no call was in flight at a
 *    moment between the two reads (each counter only grows, began >= ended; a thread whose
 *    counters appear between the two reads counted from 0). Compaction holds new outside calls
 *    back with `paused`: a Dekker pair with the call's increment of began, whose cost lies on
 *    compaction's side (the waitpoint's light and heavy barriers: a compiler barrier in the call,
 *    a membarrier in compaction). A thread that could not get counters (memory was short) counts
 *    in shared ones with seq_cst read-modify-writes.
 */
#include <stdatomic.h>
#include <string.h>

#include "baton/pool.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/atomic.h"
#include "core/error.h"
#include "space/value_encoding.h"
#include "space/space_impl.h"

/* ---- calls and quiescence ---- */

static bool not_paused(void *arg)
{
    baton_space *space = arg;
    return atomic_load_explicit(&space->paused, memory_order_seq_cst) == 0;
}

/* Counts an outside call in (continuations' calls are inside their root's call already). */
static sp_call_slot *call_begin(baton_space *space)
{
    if (baton__space_in_continuation(space))
        return NULL;
    sp_call_slot *slot = baton__space_my_calls(space);
    if (slot == NULL) { /* memory was short: the shared counters */
        slot = &space->shared_calls;
        for (;;) {
            /* seq_cst: a Dekker pair with baton__space_pause's store of paused and its reads of
             * the counters: either compaction sees this call, or this call sees the pause. */
            atomic_fetch_add_explicit(&slot->began, 1, memory_order_seq_cst);
            if (atomic_load_explicit(&space->paused, memory_order_seq_cst) == 0)
                return slot;
            atomic_fetch_add_explicit(&slot->ended, 1, memory_order_seq_cst);
            baton__waitpoint_notify(&space->idle, true);
            (void)baton__waitpoint_wait(&space->idle, not_paused, space, UINT64_MAX);
        }
    }
    for (;;) {
        /* This thread alone writes its counters: a plain increment, no read-modify-write. The
         * light barrier makes a Dekker pair with baton__space_pause (its store of paused, its
         * heavy barrier, its reads of the counters): either compaction sees this call, or this
         * call sees the pause. */
        uint64_t began = baton__load_relaxed(&slot->began) + 1;
        baton__store_relaxed(&slot->began, began);
        baton__waitpoint_light_barrier();
        if (baton__load_relaxed(&space->paused) == 0)
            return slot;
        /* Release: pairs with the acquire reads of baton__space_calls_sum. (Not `began`: a
         * call of this thread may be in flight below this one, while it helps its pool.) */
        atomic_store_explicit(&slot->ended, baton__load_relaxed(&slot->ended) + 1,
                              memory_order_release);
        baton__waitpoint_notify(&space->idle, true);
        (void)baton__waitpoint_wait(&space->idle, not_paused, space, UINT64_MAX);
    }
}

static void call_end(sp_call *call, sp_call_slot *slot, sp_root *root, bool need_ack)
{
    baton__space_run_work(call, root);
    if (call->fires != NULL || need_ack) /* else nothing to run or wait for */
        baton__space_dispatch(call, root, need_ack);
    if (slot == NULL)
        return;
    /* Release: the call's effects, and its continuations', are visible to the quiesce that reads
     * this count (acquire, baton__space_calls_sum). */
    if (slot == &call->space->shared_calls)
        atomic_fetch_add_explicit(&slot->ended, 1, memory_order_seq_cst);
    else
        atomic_store_explicit(&slot->ended, baton__load_relaxed(&slot->ended) + 1,
                              memory_order_release);
    baton__waitpoint_notify(&call->space->idle, true);
}

static bool no_call_in_flight(void *arg)
{
    baton_space *space = arg;
    /* Ended first, then began: see DESIGN, Quiescence. The shared counters are read with them. */
    uint64_t ended = baton__space_calls_sum(space, true) +
                     atomic_load_explicit(&space->shared_calls.ended, memory_order_seq_cst);
    uint64_t began = baton__space_calls_sum(space, false) +
                     atomic_load_explicit(&space->shared_calls.began, memory_order_seq_cst);
    return began == ended;
}

void baton__space_wait_calls(baton_space *space)
{
    (void)baton__waitpoint_wait(&space->idle, no_call_in_flight, space, UINT64_MAX);
}

void baton__space_pause(baton_space *space)
{
    /* seq_cst, then the heavy barrier: the Dekker pair of call_begin (its light barrier, or the
     * shared counters' seq_cst increment). */
    atomic_store_explicit(&space->paused, 1, memory_order_seq_cst);
    baton__waitpoint_heavy_barrier();
    (void)baton__waitpoint_wait(&space->idle, no_call_in_flight, space, UINT64_MAX);
}

void baton__space_resume(baton_space *space)
{
    atomic_store_explicit(&space->paused, 0, memory_order_seq_cst);
    baton__waitpoint_notify(&space->idle, true);
}

/* ---- ids ---- */

#define SP_ID_BLOCK 256u

/* This thread's blocks of datum and consumer ids, for the space with this serial. */
static SP_TLS struct {
    uint64_t serial;
    uint64_t next[2], end[2];
} sp_tls_ids;

/* A fresh id from counter, taken in blocks so that threads producing on independent channels
 * do not share the counter's cache line on every call. Ids are unique, not ordered: order
 * comes from the channels' lists. */
static uint64_t take_id(baton_space *space, _Atomic uint64_t *counter, int which)
{
    if (sp_tls_ids.serial != space->serial) {
        sp_tls_ids.serial = space->serial;
        sp_tls_ids.next[0] = sp_tls_ids.end[0] = sp_tls_ids.next[1] = sp_tls_ids.end[1] = 0;
    }
    if (sp_tls_ids.next[which] == sp_tls_ids.end[which]) {
        uint64_t first = baton__fetch_add_relaxed(counter, SP_ID_BLOCK) + 1;
        sp_tls_ids.next[which] = first;
        sp_tls_ids.end[which] = first + SP_ID_BLOCK;
    }
    return sp_tls_ids.next[which]++;
}

/* Claims ch if it is idle (pending 0 -> 1). acq_rel: as push_op's claim. */
static bool claim(sp_channel *ch)
{
    size_t idle = 0;
    return atomic_compare_exchange_strong_explicit(&ch->pending, &idle, 1, memory_order_acq_rel,
                                                   memory_order_relaxed);
}

/*
 * Puts a call's record *op (in the caller's frame) to run on ch. When the call has claimed ch
 * and the record climbs no further (one channel), the record stays in the frame: the call runs
 * it before it returns. Otherwise it is copied into a block, since the channel's owner, maybe
 * another thread, runs it later. (A block and its return were two of a produce/consume pair's
 * eight.) Returns 0, or BATON_ENOMEM when no block could be had: nothing was put.
 */
static int call_enter(sp_call *call, sp_channel *ch, sp_op *op, bool claimed)
{
    if (claimed) {
        op->on_stack = true;
        ch->direct = op;
        ch->work_next = call->work;
        call->work = ch;
        return 0;
    }
    sp_op *block = baton__space_alloc(call->space, sizeof *block);
    if (block == NULL)
        return BATON_ENOMEM;
    *block = *op;
    block->on_stack = false;
    baton__space_push_op(call, ch, block);
    return 0;
}

/*
 * Runs one operation as a public call: counts it, puts its record (call_enter; a one-channel
 * record may stay in the frame), runs the chains it made busy, dispatches. Returns 0, or
 * BATON_ENOMEM when no block could be had: the operation did not run and the space is as it was.
 */
static int call_run(baton_space *space, sp_channel *ch, sp_op *op, bool one_channel)
{
    sp_call call = {space, NULL, NULL, false};
    sp_root root; /* initialised when needed: a call that fires nothing never touches it */
    sp_call_slot *slot = call_begin(space);
    bool need_ack = slot != NULL && sp_space_sync(space);
    if (need_ack) {
        sp_root_init(&root, space);
        call.root_ready = true;
    }
    op->root = need_ack ? &root : NULL;
    if (call_enter(&call, ch, op, one_channel && claim(ch)) != 0) {
        call_end(&call, slot, &root, false);
        return BATON_ENOMEM;
    }
    call_end(&call, slot, &root, need_ack);
    return 0;
}

/* A consume's consumer, made and numbered, with its two references (alive, and its CONSUME
 * record); its id is written to *consumer_id (the old value kept in *unchanged) before the call
 * runs it, since its continuation may run inline and read it. */
static int consumer_make(baton_space *space, const char *who, const baton_value_view *channels,
                         baton_pattern *const *patterns, size_t n, unsigned flags,
                         baton_continuation_fn fn, void *ctx, baton_value_view body,
                         uint64_t *consumer_id, uint64_t *unchanged, sp_consumer **out)
{
    sp_consumer *k = NULL;
    int rc = baton__space_consumer_new(space, who, channels, patterns, n, flags, body, &k);
    if (rc != 0)
        return rc;
    k->fn = fn;
    k->ctx = ctx;
    k->id = take_id(space, &space->next_consumer, 1);
    atomic_init(&k->refs, 2);
    *unchanged = consumer_id != NULL ? *consumer_id : 0;
    if (consumer_id != NULL)
        *consumer_id = k->id;
    *out = k;
    return 0;
}

/* Undoes consumer_make when its record could not be put (no block): BATON_ENOMEM. */
static int consumer_unmake(sp_consumer *k, const char *who, uint64_t *consumer_id,
                           uint64_t unchanged)
{
    baton__space_consumer_free(k);
    if (consumer_id != NULL)
        *consumer_id = unchanged;
    return baton__error(BATON_ENOMEM, "%s: out of memory", who);
}

/* The widest consume that may be taken at once (its arrays live in the frame). */
#define SP_AT_ONCE_MAX 8u

/* The oldest datum of ch that pattern matches, or NULL. */
static sp_datum *oldest_match(const sp_channel *ch, const baton_pattern *pattern)
{
    sp_datum *d = ch->data_head;
    while (d && !baton_pattern_match(pattern, (baton_value_view){d->bytes, d->size}, NULL))
        d = d->next;
    return d;
}

/*
 * A plain consume (no flags, at most SP_AT_ONCE_MAX channels) of a space that is not SYNC, taken
 * at once if it can be (see DESIGN: Consume at once): the call claims its channels, in climbing
 * order, while they are idle, and when it holds all of them and each has a matching datum, it
 * takes the oldest of each and fires there, without making a consumer. Otherwise a consumer is
 * made and its record runs as in any consume: in the frame when the call holds the one channel
 * of a one-channel consume, else pushed (a join lets every channel it claimed go first, having
 * changed nothing). A channel listed twice goes the general way, which refuses it.
 */
static int consume_at_once(baton_space *space, const char *who, const baton_value_view *channels,
                           baton_pattern *const *patterns, size_t n, baton_continuation_fn fn,
                           void *ctx, baton_value_view body, uint64_t *consumer_id)
{
    sp_sort_entry entries[SP_AT_ONCE_MAX];
    size_t first_twice = SIZE_MAX;
    if (baton__space_channels_sorted(space, channels, n, entries, &first_twice) != 0)
        return BATON_ENOMEM;
    bool twice = first_twice != SIZE_MAX;
    sp_channel *chs[SP_AT_ONCE_MAX];
    const baton_pattern *pats[SP_AT_ONCE_MAX];
    size_t caller_index[SP_AT_ONCE_MAX];
    sp_datum *found[SP_AT_ONCE_MAX];
    for (size_t j = 0; j < n; j++) {
        chs[j] = entries[j].ch;
        pats[j] = patterns[entries[j].index];
        caller_index[j] = entries[j].index;
    }
    sp_call call = {space, NULL, NULL, false};
    sp_root root;
    sp_call_slot *slot = call_begin(space);
    size_t held = 0;
    while (!twice && held < n && claim(chs[held]))
        held++;
    bool all = held == n && !twice;
    for (size_t i = 0; all && i < n; i++)
        all = (found[i] = oldest_match(chs[i], pats[i])) != NULL;
    if (all) {
        uint64_t id = take_id(space, &space->next_consumer, 1);
        if (consumer_id != NULL) /* before the continuation runs, as in consume */
            *consumer_id = id;
        uint64_t *clocks[SP_AT_ONCE_MAX];
        for (size_t i = 0; i < n; i++)
            clocks[i] = &chs[i]->log_clock;
        uint64_t seq = baton__space_log_fire_at_once(space, id, n, chs, found, clocks);
        baton__space_fire_collect_with(&call, n, pats, caller_index, fn, ctx, found, seq);
        for (size_t i = 0; i < n; i++)
            if (!found[i]->persistent)
                baton__space_data_remove(chs[i], found[i]);
    }
    /* A one-channel consume keeps its channel for its record below. */
    bool keep = !all && n == 1 && held == 1;
    for (size_t i = 0; i < held && !keep; i++)
        baton__space_release_channel(&call, chs[i]);
    int rc = 0;
    sp_op op; /* the frame's record: it runs in call_end, below */
    if (!all) {
        sp_consumer *k = NULL;
        uint64_t unchanged = 0;
        rc = consumer_make(space, who, channels, patterns, n, 0, fn, ctx, body, consumer_id,
                           &unchanged, &k);
        if (rc == 0) {
            op = (sp_op){.kind = OP_CONSUME, .consumer = k};
            if (call_enter(&call, k->chans[0], &op, keep) != 0)
                rc = consumer_unmake(k, who, consumer_id, unchanged);
        }
        if (rc != 0 && keep)
            baton__space_release_channel(&call, chs[0]);
    }
    call_end(&call, slot, &root, false);
    return rc;
}

typedef struct settle_all {
    sp_call *call;
    int rc;
} settle_all;

static int settle_channel(sp_channel *ch, void *arg)
{
    settle_all *s = arg;
    if (ch->reg_head == NULL)
        return 0;
    for (sp_datum *d = ch->data_head; d; d = d->next) {
        sp_op *op = baton__space_op_new(s->call, OP_SETTLE);
        if (op == NULL)
            return s->rc = BATON_ENOMEM;
        op->channel = ch;
        op->datum_id = d->id;
        op->recovery = true;
        baton__space_push_op(s->call, ch, op);
    }
    return 0;
}

int baton__space_settle_all(baton_space *space)
{
    sp_call call = {space, NULL, NULL, false};
    sp_root root;
    sp_call_slot *slot = call_begin(space);
    settle_all s = {&call, 0};
    (void)baton__space_table_walk(space->table, settle_channel, &s);
    call_end(&call, slot, &root, false);
    return s.rc;
}

/* ---- the API ---- */

int baton_space_produce(baton_space *space, baton_value_view channel, baton_value_view datum,
                        bool persistent)
{
    const char *who = "baton_space_produce";
    if (space == NULL)
        return baton__error(BATON_EINVAL, "%s: NULL space", who);
    if (!baton__view_valid(channel))
        return baton__error(BATON_EINVAL, "%s: malformed channel", who);
    if (!baton__view_valid(datum))
        return baton__error(BATON_EINVAL, "%s: malformed datum", who);
    sp_channel *ch = baton__space_channel_get(space, channel, true);
    if (ch == NULL)
        return BATON_ENOMEM;
    uint64_t id = take_id(space, &space->next_datum, 0);
    sp_datum *d = baton__space_alloc(space, sizeof *d + datum.size);
    if (d == NULL)
        return baton__error(BATON_ENOMEM, "%s: out of memory", who);
    memcpy(d->bytes, datum.data, datum.size);
    d->size = datum.size;
    d->persistent = persistent;
    d->id = id;
    sp_op op = {.kind = OP_PRODUCE, .datum = d};
    if (call_run(space, ch, &op, true) != 0) {
        baton__space_release(space, d, sizeof *d + datum.size);
        return baton__error(BATON_ENOMEM, "%s: out of memory", who);
    }
    return 0;
}

static const uint8_t sp_nil_encoding[1] = {BATON__TAG_NIL};

/* Both consume calls. The body comes as a pointer and a size, not a view: a view passed on the
 * stack was written in two halves and read whole, a store-forwarding stall that was a third of
 * this function's samples in a produce/consume pair. */
static inline int consume(baton_space *space, const baton_value_view *channels,
                          baton_pattern *const *patterns, size_t n, baton_continuation_fn fn,
                          void *ctx, unsigned flags, const uint8_t *body_data, size_t body_size,
                          uint64_t *consumer_id)
{
    const char *who = "baton_space_consume";
    baton_value_view body = {body_data, body_size};
    if (space == NULL || channels == NULL || patterns == NULL || fn == NULL || n == 0)
        return baton__error(BATON_EINVAL, "%s: NULL argument or no channels", who);
    if (flags & ~(unsigned)(BATON_CONSUME_PERSISTENT | BATON_CONSUME_PEEK))
        return baton__error(BATON_EINVAL, "%s: unknown flags 0x%x", who, flags);
    /* A join may have any number of channels; only one whose consumer could not be addressed is
     * refused, before channels[] and patterns[] are read. */
    if (!baton__space_consumer_fits(n))
        return baton__error(BATON_ENOMEM,
                            "%s: a join of %zu channels needs more memory than can be addressed",
                            who, n);
    if (body.size == 0)
        body = (baton_value_view){sp_nil_encoding, sizeof sp_nil_encoding};
    else if (!baton__view_valid(body))
        return baton__error(BATON_EINVAL, "%s: malformed body", who);
    for (size_t i = 0; i < n; i++) {
        if (patterns[i] == NULL)
            return baton__error(BATON_EINVAL, "%s: pattern %zu is NULL", who, i);
        if (!baton__view_valid(channels[i]))
            return baton__error(BATON_EINVAL, "%s: channel %zu is malformed", who, i);
    }
    if (n <= SP_AT_ONCE_MAX && flags == 0 && !sp_space_sync(space))
        return consume_at_once(space, who, channels, patterns, n, fn, ctx, body, consumer_id);
    sp_consumer *k = NULL;
    uint64_t unchanged = 0;
    int rc = consumer_make(space, who, channels, patterns, n, flags, fn, ctx, body, consumer_id,
                           &unchanged, &k);
    if (rc != 0)
        return rc;
    sp_op op = {.kind = OP_CONSUME, .consumer = k};
    /* k is the record's from here: another thread may run it, and free k, at any time. */
    if (call_run(space, k->chans[0], &op, n == 1) != 0)
        return consumer_unmake(k, who, consumer_id, unchanged);
    return 0;
}

int baton_space_consume_body(baton_space *space, const baton_value_view *channels,
                             baton_pattern *const *patterns, size_t n, baton_continuation_fn fn,
                             void *ctx, unsigned flags, baton_value_view body,
                             uint64_t *consumer_id)
{
    return consume(space, channels, patterns, n, fn, ctx, flags, body.data, body.size,
                   consumer_id);
}

int baton_space_consume(baton_space *space, const baton_value_view *channels,
                        baton_pattern *const *patterns, size_t n, baton_continuation_fn fn,
                        void *ctx, unsigned flags, uint64_t *consumer_id)
{
    return consume(space, channels, patterns, n, fn, ctx, flags, NULL, 0, consumer_id);
}

int baton_space_channel_counts(baton_space *space, baton_value_view channel, size_t *data,
                               size_t *consumers)
{
    if (space == NULL || data == NULL || consumers == NULL || !baton__view_valid(channel))
        return baton__error(BATON_EINVAL, "baton_space_channel_counts: bad argument");
    sp_channel *ch = baton__space_channel_get(space, channel, false);
    *data = ch ? atomic_load_explicit(&ch->n_data, memory_order_relaxed) : 0;
    *consumers = ch ? atomic_load_explicit(&ch->n_regs, memory_order_relaxed) : 0;
    return 0;
}
