/*
 * activate.c — what a worker does with a node activation: run batches of the node (reserve room
 * downstream, take input, call the node's function, publish what it emitted, give back the room
 * its input held) until the node runs dry, a full edge stops it, or another node should go first.
 *
 * DESIGN
 *  - Activation counts. A node may have up to max_active activations (queued or running). Every
 *    change that can make a node runnable (records pushed into its input, room given back on its
 *    output, its ordered sink moving on) is published first and then followed by
 *    baton__node_try_schedule, whose first step is a read-modify-write of the node's active
 *    count. An activation that ends decrements that count (also a read-modify-write) and then
 *    checks whether the node should run again. All writes of the count are read-modify-writes,
 *    so they form one release sequence: whichever of the two comes second in the count's order
 *    sees the other's change — the ender sees the new records, or the scheduler sees the
 *    decremented count. No run-ready node is left without an activation, and no fence is needed.
 *  - Spurious activations. The scheduler's check (needs_run) and its increment are two steps:
 *    between them the node may be scheduled by another thread, run to the end of its work and
 *    drop the count back, so the increment succeeds (the count is the same, ABA) for a node with
 *    nothing left to do. Rather than close that window with a lock, every batch re-checks what
 *    it needs: a consumer finds no input, a blocked node no room, and a source that has ended is
 *    never called again (calling it would also count its end twice and stop the run early).
 *  - Depth first. Nodes made ready by a batch are scheduled after the activation has requeued
 *    itself, so the worker's next pop (newest first) is the successor: a batch travels down the
 *    pipeline while it is in cache, and the older activations stay at the top of the queue for
 *    thieves.
 *  - Reporting to the run: an activation fails it, counts the records it is done with (the last
 *    one stops the run) and queues activations through the functions at the top of this file.
 *    run.c, which drives the loops, calls into this file (baton__activation_run, and
 *    baton__run_release for what is left after a failure), never the other way.
 *  - Ownership on failure. When a function fails, the items the batch still holds (inputs not
 *    yet handed to the function, outputs not yet published) are released here; what sits in
 *    edges is released by the run's cleanup.
 */
#include <string.h>

#include "core/atomic.h"
#include "core/error.h"
#include "graph/internal.h"

/* Batches one activation runs before it lets other nodes of its rank have the worker. */
#define BATON__ROUNDS_PER_ACTIVATION 8u

/* ---- reporting to the run ---------------------------------------------------------------- */

void baton__run_release(baton__run *run, baton_item item)
{
    if (run->graph->release != NULL)
        run->graph->release(run->graph->release_ctx, item);
}

static void stop_run(baton__run *run)
{
    /* Release: pairs with the acquire loads of stop in the loops and in needs_run. */
    baton__store_release(&run->stop, 1);
    baton__waitpoint_wake(&run->idle, true);
}

/* Fails the run with what a node function returned: a negative code, or a positive value that
 * is not one (BATON_EINVAL). The first failure wins. */
static void run_fail(baton__run *run, uint32_t node, int returned)
{
    /* graph.h: a positive value (other than a source's BATON_GRAPH_END, handled by the caller)
     * is not an error code: the run fails with BATON_EINVAL and the message says what came back. */
    int error = returned < 0 ? returned : BATON_EINVAL;
    int none = 0;
    if (atomic_compare_exchange_strong_explicit(&run->error, &none, error, memory_order_relaxed,
                                                memory_order_relaxed)) {
        /* Read by the thread that called run after every loop has returned (the scope's join
         * orders them), so relaxed is enough. */
        baton__store_relaxed(&run->failed_node, node);
        atomic_store_explicit(&run->returned, returned, memory_order_relaxed);
    }
    stop_run(run);
}

/* n records left the graph (consumed, dropped, or a source's own share once it ended): the one
 * that brings live to 0 stops the run. */
static void run_items_done(baton__run *run, int64_t n)
{
    if (n == 0)
        return;
    /* acq_rel: the last decrement sees every earlier one (and what came before them). */
    if (atomic_fetch_sub_explicit(&run->live, n, memory_order_acq_rel) == n)
        stop_run(run);
}

/* Queues node's activation on worker's ready queue of the node's rank and wakes a sleeping
 * loop for it. */
static void ready_push_and_notify(baton__gworker *worker, uint32_t node)
{
    baton__ready_push(&worker->ready[worker->run->nodes[node].rank], node);
    baton__waitpoint_notify(&worker->run->idle, false);
}

static uint64_t output_unit(const baton__gnode *node)
{
    return node->kind == BATON_NODE_FANOUT ? 1 : node->max_emit;
}

/* Items a source may still emit before it runs a window ahead of one of its ordered sinks. */
static uint64_t gate_room(baton__run *run, const baton__rnode *source)
{
    uint64_t room = UINT64_MAX;
    uint64_t next = baton__load_relaxed(&source->next_seq);
    for (uint32_t i = 0; i < source->n_gates; i++) {
        baton__rnode *sink = &run->nodes[source->gates[i]];
        /* Acquire: pairs with the sink's release store after delivering, so the records the
         * sink stepped over are out of its buffer before the source adds more. */
        uint64_t ahead = next - baton__load_acquire(&sink->delivered);
        uint64_t left = ahead >= sink->window ? 0 : sink->window - ahead;
        if (left < room)
            room = left;
    }
    return room;
}

static bool baton__node_needs_run(baton__run *run, uint32_t index)
{
    const baton__gnode *node = &run->graph->nodes[index];
    baton__rnode *state = &run->nodes[index];
    if (baton__load_acquire(&run->stop))
        return false;
    uint64_t unit = output_unit(node);
    for (uint32_t i = 0; i < node->n_out; i++)
        if (!baton__edge_has_room(&run->edges[node->out_edges[i]], unit))
            return false;
    if (node->kind == BATON_NODE_SOURCE)
        return !baton__load_acquire(&state->ended) && gate_room(run, state) >= node->max_emit;
    for (uint32_t i = 0; i < node->n_in; i++)
        if (baton__edge_has_input(&run->edges[node->in_edges[i]]))
            return true;
    return false;
}

static void baton__node_try_schedule(baton__gworker *worker, uint32_t index)
{
    baton__rnode *state = &worker->run->nodes[index];
    /* A read-modify-write even when it changes nothing: it orders our earlier publication
     * against an ending activation's decrement (see DESIGN). acq_rel pairs with that decrement
     * and with the increments of other schedulers. */
    uint32_t active = atomic_fetch_or_explicit(&state->active, 0, memory_order_acq_rel);
    while (active < state->max_active) {
        if (!baton__node_needs_run(worker->run, index))
            return;
        /* acq_rel: the same release sequence as above. */
        if (atomic_compare_exchange_weak_explicit(&state->active, &active, active + 1,
                                                  memory_order_acq_rel, memory_order_relaxed)) {
            ready_push_and_notify(worker, index);
            return;
        }
    }
}

static void schedule_later(baton__gworker *worker, uint32_t index)
{
    for (uint32_t i = 0; i < worker->n_pending; i++)
        if (worker->pending[i] == index)
            return;
    worker->pending[worker->n_pending++] = index;
}

static void flush_pending(baton__gworker *worker)
{
    for (uint32_t i = 0; i < worker->n_pending; i++)
        baton__node_try_schedule(worker, worker->pending[i]);
    worker->n_pending = 0;
}

static void note_blocked(baton__rnode *state)
{
    uint64_t expected = 0;
    /* Relaxed: a statistic. */
    atomic_compare_exchange_strong_explicit(&state->blocked_since, &expected, baton_now_ns(),
                                            memory_order_relaxed, memory_order_relaxed);
}

static void note_unblocked(baton__rnode *state, baton__worker_stats *stats)
{
    if (baton__load_relaxed(&state->blocked_since) == 0)
        return;
    uint64_t since = atomic_exchange_explicit(&state->blocked_since, 0, memory_order_relaxed);
    if (since != 0)
        stats->blocked_ns += baton_now_ns() - since;
}

/* Adds the time since the worker's last stamp to the node's busy time: one clock read per batch,
 * which the next batch starts from. What the worker did in between (taking the activation) is
 * charged to the batch that follows it; idle time is not (the loop restamps after waiting). */
static void charge_busy(baton__gworker *worker, baton__worker_stats *stats)
{
    uint64_t now = baton_now_ns();
    stats->busy_ns += now - worker->stamp;
    worker->stamp = now;
}

/* Reserves room for `want` inputs on every outgoing edge; returns how many it got (0: none). */
static uint32_t reserve_outputs(baton__run *run, const baton__gnode *node, uint32_t want)
{
    uint64_t unit = output_unit(node);
    uint64_t granted = want;
    for (uint32_t i = 0; i < node->n_out && granted > 0; i++) {
        uint64_t got = baton__edge_reserve(&run->edges[node->out_edges[i]], granted, unit);
        if (got < granted) {
            for (uint32_t j = 0; j < i; j++)
                baton__edge_unreserve(&run->edges[node->out_edges[j]], (granted - got) * unit);
            granted = got;
        }
    }
    return (uint32_t)granted;
}

static void unreserve_outputs(baton__run *run, const baton__gnode *node, uint32_t granted)
{
    for (uint32_t i = 0; i < node->n_out; i++)
        baton__edge_unreserve(&run->edges[node->out_edges[i]], granted * output_unit(node));
}

/* Takes up to max records from the node's inputs, starting with a different edge each batch so
 * that a merge serves its producers in turn. Returns the count; *edge_out says which edge. */
static uint32_t take_input(baton__run *run, const baton__gnode *node, baton__rnode *state,
                           baton__record *in, uint32_t max, uint32_t *edge_out)
{
    uint32_t start = node->n_in > 1 ? baton__fetch_add_relaxed(&state->in_cursor, 1) : 0;
    for (uint32_t k = 0; k < node->n_in; k++) {
        uint32_t edge = node->in_edges[(start + k) % node->n_in];
        uint32_t n = baton__edge_pop(&run->edges[edge], in, max);
        if (n > 0) {
            *edge_out = edge;
            return n;
        }
    }
    return 0;
}

/* Records that are items, not skips. */
static uint32_t count_items(const baton__record *records, uint32_t n)
{
    uint32_t items = 0;
    for (uint32_t i = 0; i < n; i++)
        items += !baton__record_is_skip(&records[i]);
    return items;
}

static void release_records(baton__run *run, const baton__record *records, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!baton__record_is_skip(&records[i]))
            baton__run_release(run, records[i].item);
}

/* Admits one item into target's input under BATON_INPUT_REJECT; false: refused. */
static bool admit(baton__gworker *worker, uint32_t target)
{
    const baton__gnode *node = &worker->run->graph->nodes[target];
    if (node->input != BATON_INPUT_REJECT)
        return true;
    baton__rnode *state = &worker->run->nodes[target];
    /* Relaxed: a count of admitted items; the items themselves travel through the edge. */
    if (baton__fetch_add_relaxed(&state->accepted, 1) < node->concurrency)
        return true;
    baton__fetch_sub_relaxed(&state->accepted, 1);
    worker->stats[target].rejected++;
    return false;
}

int baton_emit(baton_emitter *out, baton_item item)
{
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_emit: out is NULL");
    if (out->count == out->limit)
        return baton__error(BATON_ERANGE,
                            "baton_emit: node '%s' already emitted max_emit = %u items in this "
                            "call",
                            out->node->name, (unsigned)out->node->max_emit);
    if (!admit(out->worker, out->target))
        return BATON_EBUSY;
    uint64_t seq = out->seq;
    if (out->next_seq != NULL)
        seq = (*out->next_seq)++;
    out->out[out->count].item = item;
    out->out[out->count].seq = seq;
    out->count++;
    return 0;
}

/* Publishes `n` records per successor (fanouts: out holds one run of `stride` per successor),
 * gives back the room reserved and not used, and queues the successors that got records. */
static void publish(baton__gworker *worker, const baton__gnode *node, const uint32_t *counts,
                    uint32_t stride, uint32_t granted)
{
    baton__run *run = worker->run;
    int64_t total = 0;
    for (uint32_t i = 0; i < node->n_out; i++)
        total += counts[i];
    if (total > 0) /* before the push: a consumer may finish them before we go on */
        baton__fetch_add_relaxed(&run->live, total);
    uint64_t reserved = (uint64_t)granted * output_unit(node);
    for (uint32_t i = 0; i < node->n_out; i++) {
        baton__redge *edge = &run->edges[node->out_edges[i]];
        baton__edge_push(edge, worker->out + (size_t)i * stride, counts[i]);
        baton__edge_unreserve(edge, reserved - counts[i]);
        if (counts[i] > 0)
            schedule_later(worker, edge->to);
    }
}

/* The input side after a batch: the room the records held goes back to their edge. */
static void give_back_input(baton__gworker *worker, uint32_t edge_index, uint32_t n)
{
    baton__redge *edge = &worker->run->edges[edge_index];
    baton__edge_unreserve(edge, n);
    schedule_later(worker, edge->from);
}

/* A fanout's batch: record i goes to successor 0 as it is and to the others as copies (or as
 * the same word, by reference). Copies are made before the original is handed on, so a refused
 * original can be released at once. Returns 0 or the copy function's error. */
static int fanout_batch(baton__gworker *worker, const baton__gnode *node, uint32_t n,
                        uint32_t *counts)
{
    baton__run *run = worker->run;
    uint32_t stride = run->batch;
    for (uint32_t i = 0; i < n; i++) {
        baton__record record = worker->in[i];
        bool skip = baton__record_is_skip(&record);
        for (uint32_t s = node->n_out; s-- > 0;) {
            baton__record copy = record;
            if (s > 0 && !skip && node->copy != NULL) {
                int rc = node->copy(node->ctx, record.item, &copy.item);
                if (rc != 0) { /* a positive value is refused too (run_fail) */
                    release_records(run, worker->in + i, n - i);
                    return rc;
                }
            }
            uint32_t target = run->edges[node->out_edges[s]].to;
            if (!skip && !admit(worker, target)) {
                /* Nobody to tell: the fanout drops the refused item. An ordered sink behind the
                 * refusing node must still step over its seq. */
                baton__run_release(run, copy.item);
                if (!run->nodes[target].on_ordered_path)
                    continue;
                copy.seq |= BATON__SEQ_SKIP;
            }
            worker->out[(size_t)s * stride + counts[s]++] = copy;
        }
    }
    return 0;
}

/* Releases what a failed batch emitted but did not publish. */
static void release_outputs(baton__gworker *worker, const baton__gnode *node,
                            const uint32_t *counts, uint32_t stride)
{
    for (uint32_t s = 0; s < node->n_out; s++)
        release_records(worker->run, worker->out + (size_t)s * stride, counts[s]);
}

/* An ordered sink's batch: records go into the reorder buffer, then everything that is next in
 * source order goes to the sink function. Returns 0 or the function's error; *delivered counts
 * the records that left the buffer (items and skips). */
static int ordered_sink_batch(baton__gworker *worker, uint32_t index, uint32_t n,
                              uint64_t *delivered)
{
    baton__run *run = worker->run;
    const baton__gnode *node = &run->graph->nodes[index];
    baton__rnode *state = &run->nodes[index];
    for (uint32_t i = 0; i < n; i++) {
        uint64_t seq = worker->in[i].seq & ~BATON__SEQ_SKIP;
        uint64_t slot = seq & state->held_mask;
        state->held[slot] = worker->in[i];
        state->held_full[slot] = 1;
        /* Cannot fail: the source stays within the window (gate_room), and seqs are unique. */
        (void)baton_reorder_insert(state->reorder, seq, &state->held[slot]);
    }
    uint64_t seq;
    void *value;
    int rc = 0;
    *delivered = 0;
    while (rc == 0 && baton_reorder_pop(state->reorder, &seq, &value) == 0) {
        baton__record *record = value;
        state->held_full[seq & state->held_mask] = 0;
        (*delivered)++;
        if (baton__record_is_skip(record))
            continue;
        rc = node->sink(node->ctx, record->item);
    }
    /* Release: pairs with the acquire in gate_room; the source may run further ahead now. */
    baton__store_release(&state->delivered, baton_reorder_next(state->reorder));
    schedule_later(worker, state->gate_source);
    return rc;
}

/* Calls the node's function on every record of the batch; outputs go to worker->out. Returns 0
 * or the first error; *done says how many inputs were handed to the function or passed on. */
static int process_batch(baton__gworker *worker, uint32_t index, uint32_t n, uint32_t *counts,
                         uint32_t *done)
{
    baton__run *run = worker->run;
    const baton__gnode *node = &run->graph->nodes[index];
    baton__rnode *state = &run->nodes[index];
    baton_emitter emitter = {.worker = worker,
                             .node = node,
                             .target = node->n_out > 0 ? run->edges[node->out_edges[0]].to : 0,
                             .out = worker->out};
    int rc = 0;
    uint32_t i = 0;
    for (; i < n && rc == 0; i++) {
        baton__record *record = &worker->in[i];
        if (baton__record_is_skip(record)) {
            if (node->n_out > 0)
                worker->out[emitter.count++] = *record;
            continue;
        }
        if (node->kind == BATON_NODE_SINK) {
            rc = node->sink(node->ctx, record->item);
            continue;
        }
        if (node->kind == BATON_NODE_MERGE) {
            worker->out[emitter.count++] = *record;
            continue;
        }
        uint32_t before = emitter.count;
        emitter.limit = before + node->max_emit;
        emitter.seq = record->seq;
        rc = node->map(node->ctx, record->item, &emitter);
        if (emitter.count == before && state->on_ordered_path) {
            worker->out[emitter.count].item.u = 0;
            worker->out[emitter.count++].seq = record->seq | BATON__SEQ_SKIP;
        }
    }
    counts[0] = emitter.count;
    *done = i;
    return rc;
}

/* One batch of a node with inputs. Returns the records it consumed (0: nothing to do, blocked,
 * or failed). */
static uint32_t consume_batch(baton__gworker *worker, uint32_t index)
{
    baton__run *run = worker->run;
    const baton__gnode *node = &run->graph->nodes[index];
    baton__rnode *state = &run->nodes[index];
    baton__worker_stats *stats = &worker->stats[index];
    uint32_t granted = node->n_out > 0 ? reserve_outputs(run, node, run->batch) : run->batch;
    if (granted == 0) {
        for (uint32_t i = 0; i < node->n_in; i++)
            if (baton__edge_has_input(&run->edges[node->in_edges[i]]))
                note_blocked(state);
        return 0;
    }
    uint32_t edge = 0;
    uint32_t n = take_input(run, node, state, worker->in, granted, &edge);
    if (n == 0) {
        unreserve_outputs(run, node, granted);
        return 0;
    }
    note_unblocked(state, stats);
    uint32_t *out_counts = worker->counts;
    memset(out_counts, 0, sizeof *out_counts * (node->n_out > 0 ? node->n_out : 1));
    uint32_t stride = node->kind == BATON_NODE_FANOUT ? run->batch : 0;
    int rc;
    uint32_t done = n;
    uint64_t finished = n;
    if (node->kind == BATON_NODE_FANOUT) {
        rc = fanout_batch(worker, node, n, out_counts);
    } else if (node->flags & BATON_NODE_ORDERED) {
        rc = ordered_sink_batch(worker, index, n, &finished);
    } else {
        rc = process_batch(worker, index, n, out_counts, &done);
    }
    stats->activations++;
    if (rc != 0) {
        if (node->kind != BATON_NODE_FANOUT)
            release_records(run, worker->in + done, n - done);
        release_outputs(worker, node, out_counts, stride);
        run_fail(run, index, rc);
        return 0;
    }
    uint32_t items = count_items(worker->in, n);
    stats->items_in += items;
    for (uint32_t s = 0; s < node->n_out; s++)
        stats->items_out += count_items(worker->out + (size_t)s * stride, out_counts[s]);
    if (node->input == BATON_INPUT_REJECT && items > 0) /* they are consumed: admit more */
        baton__fetch_sub_relaxed(&state->accepted, items);
    publish(worker, node, out_counts, stride, granted);
    give_back_input(worker, edge, n);
    charge_busy(worker, stats);
    run_items_done(run, (int64_t)finished);
    return n;
}

/* One batch of a source: up to `batch` calls, fewer when an edge or an ordered sink's window
 * has less room. Returns the calls made (0: blocked, ended or failed). */
static uint32_t source_batch(baton__gworker *worker, uint32_t index)
{
    baton__run *run = worker->run;
    const baton__gnode *node = &run->graph->nodes[index];
    baton__rnode *state = &run->nodes[index];
    baton__worker_stats *stats = &worker->stats[index];
    /* A spurious activation (see DESIGN): the source ended while it was being scheduled. It is
     * never called again. Acquire: pairs with the release store of ended below, which an earlier
     * activation made before the decrement that our scheduler's increment read. */
    if (baton__load_acquire(&state->ended))
        return 0;
    uint32_t granted = reserve_outputs(run, node, run->batch);
    uint64_t window_calls = gate_room(run, state) / node->max_emit;
    uint32_t calls = window_calls < granted ? (uint32_t)window_calls : granted;
    if (calls == 0) {
        unreserve_outputs(run, node, granted);
        note_blocked(state);
        return 0;
    }
    note_unblocked(state, stats);
    uint64_t next_seq = baton__load_relaxed(&state->next_seq);
    baton_emitter emitter = {.worker = worker,
                             .node = node,
                             .target = run->edges[node->out_edges[0]].to,
                             .out = worker->out,
                             .next_seq = &next_seq};
    bool ended = false;
    int rc = 0;
    uint32_t made = 0;
    while (made < calls && !ended && rc == 0) {
        emitter.limit = emitter.count + node->max_emit;
        rc = node->source(node->ctx, &emitter);
        made++;
        if (rc == BATON_GRAPH_END) {
            ended = true;
            rc = 0;
        }
    }
    stats->items_in += made;
    stats->activations++;
    worker->counts[0] = emitter.count;
    if (rc != 0) {
        release_outputs(worker, node, worker->counts, 0);
        run_fail(run, index, rc);
        return 0;
    }
    /* Relaxed: only this activation writes it; readers use it as a hint (gate_room). */
    baton__store_relaxed(&state->next_seq, next_seq);
    stats->items_out += emitter.count;
    publish(worker, node, worker->counts, 0, granted);
    charge_busy(worker, stats);
    if (!ended)
        return made;
    /* Release: pairs with the acquire in baton__node_needs_run; nobody polls it again. */
    baton__store_release(&state->ended, 1);
    run_items_done(run, 1); /* the source's own share of live */
    return 0;
}

/* Whether the worker holds an activation of a higher rank than `rank`. */
static bool higher_rank_waiting(baton__gworker *worker, uint32_t rank)
{
    for (uint32_t r = 0; r < rank; r++)
        if (baton__ready_nonempty(&worker->ready[r]))
            return true;
    return false;
}

void baton__activation_run(baton__gworker *worker, uint32_t index)
{
    baton__run *run = worker->run;
    const baton__gnode *node = &run->graph->nodes[index];
    baton__rnode *state = &run->nodes[index];
    for (uint32_t round = 1;; round++) {
        uint32_t done = node->kind == BATON_NODE_SOURCE ? source_batch(worker, index)
                                                         : consume_batch(worker, index);
        if (done == 0 || baton__load_relaxed(&run->stop))
            break;
        if (worker->n_pending > 0 || round == BATON__ROUNDS_PER_ACTIVATION ||
            higher_rank_waiting(worker, state->rank)) {
            /* Requeue before the nodes this batch made ready, so that they run first (see
             * DESIGN); the activation keeps its place in the count. */
            ready_push_and_notify(worker, index);
            flush_pending(worker);
            return;
        }
    }
    flush_pending(worker);
    /* acq_rel: pairs with baton__node_try_schedule's read-modify-write (see DESIGN). */
    atomic_fetch_sub_explicit(&state->active, 1, memory_order_acq_rel);
    baton__node_try_schedule(worker, index);
}
