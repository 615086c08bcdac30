/*
 * space.c — the tuplespace core: each channel's chain of operations, produce, consume, joins that
 * climb their channels in one global order, the calls that run them, quiescence. The channels
 * themselves (the table, their lists) are space_table.c's, a consumer's block space_consumer.c's.
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
 *  - Consume at once. A plain one-channel consume (no flags) of a space without a log that
 *    claims its idle channel and finds a matching datum takes the oldest and fires on it there,
 *    without making a consumer: what top() would do for a consumer that fires on its first look
 *    (its block, the block's initialisation and its release were a third of a produce/consume
 *    pair). With a log, the FIRE record names a consumer, so such a consume goes the general way.
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
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "baton/pool.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/atomic.h"
#include "core/error.h"
#include "space/value_encoding.h"
#include "space/space_impl.h"

/* ---- chains ---- */

static void push_op(sp_call *call, sp_channel *ch, sp_op *op)
{
    /* An idle channel is claimed outright: its record skips the queue (a push, and a pop that
     * would empty it again). acq_rel as below: the CAS reads the last owner's release decrement
     * (acquire); a record pushed meanwhile but not yet counted comes after ours, as the
     * operation of a call concurrent with ours. */
    size_t idle = 0;
    if (atomic_compare_exchange_strong_explicit(&ch->pending, &idle, 1, memory_order_acq_rel,
                                                memory_order_relaxed)) {
        ch->direct = op;
        ch->work_next = call->work;
        call->work = ch;
        return;
    }
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

/* Spins of a pop that finds the next record still being linked before the owner turns to other
 * work (or, with none, gives the pusher its CPU). */
#define SP_POP_SPINS 128u

/* The owner's next record of ch, or NULL when it is counted but still being linked and the call
 * has other channels to run first (ch goes back on the work list, after the next one). */
static sp_op *pop_op(sp_call *call, sp_channel *ch)
{
    if (ch->direct != NULL) {
        sp_op *op = ch->direct;
        ch->direct = NULL;
        return op;
    }
    baton_mpsc_node *node = NULL;
    /* The record is counted, so it is pushed; only a pusher between its tail swap and its link
     * can hide it, for a few instructions: a short spin finds it. Only a pusher preempted in
     * between keeps it longer; then the owner runs its other channels meanwhile, and yields its
     * CPU (to that pusher, on a full machine) only when it has nothing else to run. */
    for (unsigned spins = 0; baton_mpsc_linked_try_pop(ch->queue, &node) != 0; spins++) {
        if (spins < SP_POP_SPINS) {
            baton__cpu_relax();
        } else if (call->work != NULL) {
            ch->work_next = call->work->work_next;
            call->work->work_next = ch;
            return NULL;
        } else {
            sched_yield();
        }
    }
    return (sp_op *)((char *)node - offsetof(sp_op, node));
}

static sp_op *op_new(sp_call *call, sp_op_kind kind)
{
    sp_op *op = baton__space_alloc(call->space, sizeof *op);
    if (op == NULL) {
        sp_record_error(call->space, BATON_ENOMEM);
        return NULL;
    }
    memset(op, 0, sizeof *op);
    op->kind = kind;
    return op;
}

/* ---- the operations, run by the owner of the channel(s) ---- */

static sp_datum *find_datum(sp_channel *ch, uint64_t id)
{
    for (sp_datum *d = ch->data_head; d; d = d->next)
        if (d->id == id)
            return d;
    return NULL;
}

/*
 * Walks ch's registrations after after_seq for the stored datum d (see DESIGN: Produce). fresh:
 * d was just produced and its PUT is not logged yet: it is encoded and written only if d stays
 * stored, so a datum a waiting consumer takes at once costs one record (its FIRE, naming no
 * datum id) instead of two. Returns the seq of the record that accounts for d (0: none).
 */
static uint64_t settle(sp_call *call, sp_channel *ch, sp_datum *d, uint64_t after_seq,
                       bool fresh, bool recovery)
{
    uint64_t id = d->id, seq = 0;
    bool logged = !fresh || call->space->log == NULL;
    baton_value_view v = {d->bytes, d->size};
    for (sp_reg *r = ch->reg_head, *next; r; r = next) {
        next = r->next;
        if (r->seq <= after_seq)
            continue;
        sp_consumer *k = r->consumer;
        if (!baton_pattern_match(k->pats[r->pos], v, NULL))
            continue;
        if (k->n == 1) {
            bool removed = !(k->flags & BATON_CONSUME_PEEK) && !d->persistent;
            bool gone = !(k->flags & BATON_CONSUME_PERSISTENT);
            if (!removed && !gone) {
                /* A turn that leaves both in place: the state cannot tell whether it was
                 * taken, so its record says so (SEEN), and the open's settling takes only the
                 * turns the log owes (space_recover.c). */
                if (recovery && !sp_owed(call->space, k, id))
                    continue;
                seq = baton__space_log_seen(call->space, k, id);
                baton__space_fire_collect(call, k, &d, seq);
                continue;
            }
            seq = baton__space_log_fire(call->space, k, &d, gone, logged);
            baton__space_fire_collect(call, k, &d, seq);
            if (gone)
                baton__space_unregister(k);
            if (removed) {
                baton__space_data_remove(ch, d);
                return seq;
            }
            continue;
        }
        /* The re-evaluation names d by id: its PUT must come first. */
        if (!logged)
            seq = baton__space_log_put(call->space, ch, d);
        logged = true;
        sp_op *op = op_new(call, OP_REEVAL);
        if (op == NULL)
            return seq;
        /* Relaxed: the record's push publishes it; k is kept alive by the reference we hold
         * through its registration. */
        baton__fetch_add_relaxed(&k->refs, 1);
        op->consumer = k;
        op->channel = ch;
        op->datum_id = id;
        op->after_seq = r->seq;
        op->recovery = recovery;
        push_op(call, k->chans[0], op);
        return seq;
    }
    if (!logged)
        seq = baton__space_log_put(call->space, ch, d);
    return seq;
}

/* The top of a climb: holding all of k's channels. Returns the seq of the record that holds
 * the consume's own change (for a SYNC caller), 0 when none was written. */
static uint64_t top(sp_call *call, sp_op *op)
{
    sp_consumer *k = op->consumer;
    baton_space *space = call->space;
    bool alive = op->kind == OP_CONSUME || k->registered;
    /* A re-evaluation of a persistent join for a datum: a firing that takes nothing is owed
     * once per such turn, and the turn is logged (SEEN) when the datum stays (see settle). */
    bool persistent = (k->flags & BATON_CONSUME_PERSISTENT) != 0;
    bool turn = op->kind == OP_REEVAL && alive && persistent;
    bool owed = turn && (!op->recovery || sp_owed(space, k, op->datum_id));
    uint64_t seq = 0;
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
        bool gone = !(k->flags & BATON_CONSUME_PERSISTENT);
        bool removed = false;
        for (i = 0; i < k->n && !removed; i++)
            removed = !(k->flags & BATON_CONSUME_PEEK) && !k->scratch[i]->persistent;
        if (turn && !removed && !owed)
            break;
        /* Every datum found here is logged: a fresh one's PUT precedes its re-evaluation. */
        seq = baton__space_log_fire(space, k, k->scratch, gone, true);
        baton__space_fire_collect(call, k, k->scratch, seq);
        for (i = 0; i < k->n; i++)
            if (!(k->flags & BATON_CONSUME_PEEK) && !k->scratch[i]->persistent)
                baton__space_data_remove(k->chans[i], k->scratch[i]);
        if (gone) {
            if (k->registered)
                baton__space_unregister(k);
            else
                /* The alive reference of a consumer never registered: no registration, so no
                 * re-evaluation, ever named it, and only this record does now (its maker let go
                 * of it when it pushed the record): the count is 2 and no other thread reads it,
                 * so a plain store drops it (one read-modify-write fewer per pair). */
                baton__store_relaxed(&k->refs, 1);
            alive = false;
            break;
        }
        if (!removed)
            break;
    }
    if (op->kind == OP_CONSUME && alive) {
        k->stamp = baton__fetch_add_relaxed(&space->next_stamp, 1) + 1;
        for (size_t i = 0; i < k->n; i++)
            baton__space_reg_append(k->chans[i], &k->regs[i]);
        k->registered = true;
        seq = baton__space_log_reg(space, k);
    }
    if (turn && alive && owed) {
        sp_datum *d = find_datum(op->channel, op->datum_id);
        if (d != NULL && ((k->flags & BATON_CONSUME_PEEK) || d->persistent))
            (void)baton__space_log_seen(space, k, op->datum_id);
    }
    if (op->kind == OP_REEVAL) {
        sp_op *s = op_new(call, OP_SETTLE);
        if (s != NULL) {
            s->channel = op->channel;
            s->datum_id = op->datum_id;
            s->after_seq = op->after_seq;
            s->recovery = op->recovery;
            push_op(call, s->channel, s);
        }
    }
    return seq;
}

static void run_op(sp_call *call, sp_channel *ch, sp_op *op)
{
    switch (op->kind) {
    case OP_PRODUCE: {
        baton__space_data_append(ch, op->datum);
        baton__space_ack(call->space, op->root, settle(call, ch, op->datum, 0, true, false));
        break;
    }
    case OP_SETTLE: {
        sp_datum *d = find_datum(ch, op->datum_id);
        if (d != NULL)
            (void)settle(call, ch, d, op->after_seq, false, op->recovery);
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
        uint64_t seq = top(call, op);
        baton__space_ack(call->space, op->root, seq);
        for (size_t i = 0; i < k->n; i++)
            release(call, k->chans[i]);
        baton__space_consumer_unref(k); /* the record's reference */
        if (!op->on_stack)
            baton__space_release(call->space, op, sizeof *op);
        return;
    }
    }
    release(call, ch);
    if (!op->on_stack)
        baton__space_release(call->space, op, sizeof *op);
}

/* Runs the chains this call owns. Firings are dispatched after each record, not at the end: a
 * thread that owns a busy channel may run other threads' records for a long time, and their
 * continuations must not wait for it to run out of work. */
static void run_work(sp_call *call, sp_root *root)
{
    while (call->work != NULL) {
        sp_channel *ch = call->work;
        call->work = ch->work_next;
        sp_op *op = pop_op(call, ch);
        if (op == NULL)
            continue;
        run_op(call, ch, op);
        if (call->fires != NULL && call->work != NULL)
            baton__space_dispatch(call, root, false);
    }
}

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
    run_work(call, root);
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
    push_op(call, ch, block);
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

/*
 * A plain one-channel consume of a space without a log (see DESIGN: Consume at once): the call
 * claims the idle channel and, when a datum matches, takes the oldest and fires on it without a
 * consumer block. Otherwise (nothing matches, or the channel is busy) a consumer is made and its
 * record runs as in any consume, in the frame when the call holds the channel.
 */
static int consume_one(baton_space *space, const char *who, baton_value_view channel,
                       baton_pattern *pattern, baton_continuation_fn fn, void *ctx,
                       baton_value_view body, uint64_t *consumer_id)
{
    sp_channel *ch = baton__space_channel_get(space, channel, true);
    if (ch == NULL)
        return BATON_ENOMEM;
    sp_call call = {space, NULL, NULL, false};
    sp_root root;
    sp_call_slot *slot = call_begin(space);
    bool claimed = claim(ch);
    if (claimed) {
        sp_datum *d = ch->data_head;
        while (d && !baton_pattern_match(pattern, (baton_value_view){d->bytes, d->size}, NULL))
            d = d->next;
        if (d != NULL) {
            uint64_t id = take_id(space, &space->next_consumer, 1);
            if (consumer_id != NULL) /* before the continuation runs, as in consume */
                *consumer_id = id;
            const baton_pattern *pats[1] = {pattern};
            const size_t caller_index[1] = {0};
            baton__space_fire_collect_with(&call, 1, pats, caller_index, fn, ctx, &d, 0);
            if (!d->persistent)
                baton__space_data_remove(ch, d);
            release(&call, ch);
            call_end(&call, slot, &root, false);
            return 0;
        }
    }
    sp_consumer *k = NULL;
    sp_op op; /* the frame's record: it runs in call_end, below */
    int rc = baton__space_consumer_new(space, who, &channel, &pattern, 1, 0, body, &k);
    if (rc == 0) {
        k->fn = fn;
        k->ctx = ctx;
        k->id = take_id(space, &space->next_consumer, 1);
        atomic_init(&k->refs, 2); /* alive, and the CONSUME record */
        uint64_t unchanged = consumer_id != NULL ? *consumer_id : 0;
        if (consumer_id != NULL)
            *consumer_id = k->id;
        op = (sp_op){.kind = OP_CONSUME, .consumer = k};
        if (call_enter(&call, ch, &op, claimed) != 0) {
            baton__space_consumer_free(k);
            if (consumer_id != NULL)
                *consumer_id = unchanged;
            rc = baton__error(BATON_ENOMEM, "%s: out of memory", who);
        }
    }
    if (rc != 0 && claimed)
        release(&call, ch);
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
        sp_op *op = op_new(s->call, OP_SETTLE);
        if (op == NULL)
            return s->rc = BATON_ENOMEM;
        op->channel = ch;
        op->datum_id = d->id;
        op->recovery = true;
        push_op(s->call, ch, op);
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
    if (n == 1 && flags == 0 && space->log == NULL)
        return consume_one(space, who, channels[0], patterns[0], fn, ctx, body, consumer_id);
    sp_consumer *k = NULL;
    int rc = baton__space_consumer_new(space, who, channels, patterns, n, flags, body, &k);
    if (rc != 0)
        return rc;
    k->fn = fn;
    k->ctx = ctx;
    k->id = take_id(space, &space->next_consumer, 1);
    atomic_init(&k->refs, 2); /* alive, and the CONSUME record */
    /* Written before the call runs: its continuation may run inline, and may read it. */
    uint64_t unchanged = 0;
    if (consumer_id != NULL) {
        unchanged = *consumer_id;
        *consumer_id = k->id;
    }
    sp_op op = {.kind = OP_CONSUME, .consumer = k};
    /* k is the record's from here: another thread may run it, and free k, at any time. */
    if (call_run(space, k->chans[0], &op, n == 1) != 0) {
        baton__space_consumer_free(k);
        if (consumer_id != NULL)
            *consumer_id = unchanged;
        return baton__error(BATON_ENOMEM, "%s: out of memory", who);
    }
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
