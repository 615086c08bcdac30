/*
 * space_chain.c — each channel's chain of operations and what its owner runs: the records of
 * produce, consume, the climbs of joins, settling a datum, the top of a climb (the design is in
 * space.c's DESIGN block: chains, joins, produce). space.c's calls put records here and run the
 * chains they made busy; this file calls the firings, the log, consumers, the table and the
 * blocks, never space.c.
 */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "space/value_encoding.h"
#include "space/space_impl.h"

/* ---- chains ---- */

void baton__space_push_op(sp_call *call, sp_channel *ch, sp_op *op)
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

void baton__space_release_channel(sp_call *call, sp_channel *ch)
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

sp_op *baton__space_op_new(sp_call *call, sp_op_kind kind)
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
        sp_op *op = baton__space_op_new(call, OP_REEVAL);
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
        baton__space_push_op(call, k->chans[0], op);
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
        sp_op *s = baton__space_op_new(call, OP_SETTLE);
        if (s != NULL) {
            s->channel = op->channel;
            s->datum_id = op->datum_id;
            s->after_seq = op->after_seq;
            s->recovery = op->recovery;
            baton__space_push_op(call, s->channel, s);
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
            baton__space_push_op(call, k->chans[op->step], op);
            return;
        }
        uint64_t seq = top(call, op);
        baton__space_ack(call->space, op->root, seq);
        for (size_t i = 0; i < k->n; i++)
            baton__space_release_channel(call, k->chans[i]);
        baton__space_consumer_unref(k); /* the record's reference */
        if (!op->on_stack)
            baton__space_release(call->space, op, sizeof *op);
        return;
    }
    }
    baton__space_release_channel(call, ch);
    if (!op->on_stack)
        baton__space_release(call->space, op, sizeof *op);
}

/* Runs the chains this call owns. Firings are dispatched after each record, not at the end: a
 * thread that owns a busy channel may run other threads' records for a long time, and their
 * continuations must not wait for it to run out of work. */
void baton__space_run_work(sp_call *call, sp_root *root)
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
