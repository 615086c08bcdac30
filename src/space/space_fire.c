/*
 * space_fire.c — firings: a consumer's matched data copied for its continuation, the
 * continuation run as a pool task, and in SYNC mode held back until its record is durable.
 *
 * DESIGN
 *  - A firing copies the matched data into one block (bindings are re-matched against the
 *    copies), so later operations on the channel cannot invalidate them. Firings are collected
 *    during the call and run as pool tasks at its end: from inside a continuation they
 *    are spawned into the continuation's scope; from an outside thread the call runs a scope that
 *    waits for them (and everything they spawn), its root. In SYNC mode a continuation runs only
 *    once the record of its firing is durable, and an outside call returns only once the record
 *    of its own change is: the root's body holds the firings whose records are not yet durable
 *    and spawns them as the log's durable mark passes them (it sleeps on the log's progress
 *    waitpoint meanwhile), so a worker never waits on I/O and one commit releases every firing
 *    it covers (group commit).
 *  - Inline. An outside call made on a thread that runs as a worker of the space's pool (a task
 *    of the pool, or a caller inside baton_scope_run) runs its firings' continuations itself,
 *    one after the other, instead of a scope and a task per firing (a scope, a spawn and a steal
 *    or pop were a fifth of a produce/consume pair). The call waited for those continuations
 *    anyway, and it runs them on the pool as the header promises. A call made by such an inline
 *    continuation returns at once, as from any continuation: its firings are queued on the
 *    inline run's list, which the outer call works through after the continuation returns; so
 *    continuations never nest on the stack, however long a chain of them. As soon as two
 *    firings wait on the list while the pool has an idle worker, the rest go to a scope as
 *    tasks (the path above), so fan-out still runs in parallel. Not in SYNC mode, where a
 *    firing waits for its record to be durable.
 */
#include <string.h>

#include "baton/pool.h"
#include "core/alloc.h"
#include "pool/sched.h"
#include "core/atomic.h"
#include "core/error.h"
#include "space/space_impl.h"

/* The continuation this thread is running, if any: its scope, pool and root. */
static SP_TLS baton_scope *sp_tls_scope;
static SP_TLS baton_pool *sp_tls_pool;
static SP_TLS sp_root *sp_tls_root;

/* An inline run (see DESIGN): the firings queued by the calls of its continuations. */
typedef struct sp_inline {
    baton_pool *pool;
    sp_fire *queued;
} sp_inline;

/* The inline run whose continuation this thread is running, if any. */
static SP_TLS sp_inline *sp_tls_inline;

bool baton__space_in_continuation(const baton_space *space)
{
    return (sp_tls_scope != NULL && sp_tls_pool == space->pool) ||
           (sp_tls_inline != NULL && sp_tls_inline->pool == space->pool);
}

bool baton__space_in_any_continuation(void)
{
    return sp_tls_scope != NULL || sp_tls_inline != NULL;
}

/* Tells an outside SYNC call which record holds its change (0: none could be written). */
void baton__space_ack(baton_space *space, sp_root *root, uint64_t seq)
{
    if (root == NULL)
        return;
    atomic_store_explicit(&root->ack, seq, memory_order_relaxed);
    /* Release: pairs with the root body's acquire load of acked; ack is written before. */
    atomic_store_explicit(&root->acked, 1, memory_order_release);
    baton__waitpoint_notify(baton__wal_progress(space->log), true);
}

/* ---- firing ---- */

void baton__space_fire_collect(sp_call *call, sp_consumer *k, sp_datum *const *found, uint64_t seq)
{
    baton__space_fire_collect_with(call, k->n, k->pats, k->caller_index, k->fn, k->ctx, found,
                                   seq);
}

void baton__space_fire_collect_with(sp_call *call, size_t n, const baton_pattern *const *pats,
                                    const size_t *caller_index, baton_continuation_fn fn,
                                    void *ctx, sp_datum *const *found, uint64_t seq)
{
    size_t binders = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        binders += baton_pattern_binders(pats[i]);
        bytes += found[i]->size;
    }
    size_t size = sizeof(sp_fire) + n * sizeof(baton_value_view) + n * sizeof(baton_value_view *) +
                  binders * sizeof(baton_value_view) + bytes;
    sp_fire *f = baton__space_alloc(call->space, size);
    if (f == NULL) {
        sp_record_error(call->space, BATON_ENOMEM);
        return;
    }
    baton_value_view *data = (baton_value_view *)(f + 1);
    const baton_value_view **bindings = (const baton_value_view **)(data + n);
    baton_value_view *bound = (baton_value_view *)(bindings + n);
    uint8_t *copy = (uint8_t *)(bound + binders);
    for (size_t i = 0; i < n; i++) {
        size_t ci = caller_index[i];
        memcpy(copy, found[i]->bytes, found[i]->size);
        data[ci] = (baton_value_view){copy, found[i]->size};
        copy += found[i]->size;
        bindings[ci] = bound;
        unsigned nb = baton_pattern_binders(pats[i]);
        if (nb > 0) /* the copy matched already: only its bindings are wanted */
            (void)baton_pattern_match(pats[i], data[ci], bound);
        bound += nb;
    }
    f->space = call->space;
    f->scope = NULL;
    f->root = NULL;
    f->seq = seq;
    f->size = size;
    f->fn = fn;
    f->ctx = ctx;
    f->match = (baton_match){n, data, (const baton_value_view *const *)bindings};
    f->next = call->fires;
    call->fires = f;
}

static void spawn_fire(sp_root *root, baton_scope *scope, sp_fire *f);

static int fire_task(void *arg)
{
    sp_fire *f = arg;
    baton_scope *saved_scope = sp_tls_scope;
    baton_pool *saved_pool = sp_tls_pool;
    sp_root *saved_root = sp_tls_root;
    sp_inline *saved_inline = sp_tls_inline;
    sp_root *root = f->root;
    baton_space *space = f->space;
    sp_tls_scope = f->scope;
    sp_tls_pool = space->pool;
    sp_tls_root = root;
    sp_tls_inline = NULL;
    int rc = f->fn != NULL ? f->fn(f->ctx, &f->match) : 0;
    sp_tls_scope = saved_scope;
    sp_tls_pool = saved_pool;
    sp_tls_root = saved_root;
    sp_tls_inline = saved_inline;
    if (rc != 0)
        sp_record_error(space, rc);
    baton__space_release(space, f, f->size);
    /* acq_rel: release publishes what this continuation did (and the firings it deferred) to
     * the root body that sees the count drop; acquire orders the last one's notify after them. */
    if (root != NULL && baton__fetch_sub_acq_rel(&root->running, 1) == 1)
        baton__waitpoint_notify(baton__wal_progress(space->log), true); /* only SYNC has roots */
    return 0;
}

static void spawn_fire(sp_root *root, baton_scope *scope, sp_fire *f)
{
    f->scope = scope;
    f->root = root;
    if (root != NULL)
        baton__fetch_add_relaxed(&root->running, 1); /* ordered by the spawn that publishes f */
    int rc = baton_scope_spawn(scope, fire_task, f);
    if (rc != 0) {
        sp_record_error(f->space, rc);
        if (root != NULL)
            baton__fetch_sub_relaxed(&root->running, 1);
        baton__space_release(f->space, f, f->size);
    }
}

/* A firing whose record is not durable yet goes to the root, which spawns it when it is. */
static bool must_wait(const baton_space *space, const sp_fire *f)
{
    return sp_space_sync(space) && f->seq > baton__wal_durable(space->log);
}

static void defer_fire(sp_root *root, sp_fire *f)
{
    sp_fire *head = atomic_load_explicit(&root->deferred, memory_order_relaxed);
    do {
        f->next = head;
        /* Release: the firing's contents are visible to the root body that takes the stack
         * (acquire exchange in root_take). */
    } while (!atomic_compare_exchange_weak_explicit(&root->deferred, &head, f,
                                                    memory_order_release, memory_order_relaxed));
}

/* The root body's state and its wait (see DESIGN). */
typedef struct root_wait {
    sp_root *root;
    uint64_t seen_durable;
    bool need_ack;
} root_wait;

static bool root_ready(void *arg)
{
    root_wait *w = arg;
    sp_root *root = w->root;
    baton__wal *log = root->space->log;
    /* Acquire loads: pair with the writer's release of durable, fire_task's acq_rel decrement,
     * defer_fire's release CAS and ack's release store. */
    if (atomic_load_explicit(&root->deferred, memory_order_acquire) != NULL)
        return true;
    if (baton__wal_durable(log) > w->seen_durable && root->held != NULL)
        return true;
    /* Otherwise only what lets the body finish (root_done) or run its held firings (the log
     * failed) is news. A durable ack counted alone, or no continuation running while firings
     * were held for the disk, made the body spin (ready at once, root_done still false) for as
     * long as its chains ran: most of durable_sync's CPU. */
    if (atomic_load_explicit(&root->running, memory_order_acquire) != 0)
        return false;
    if (baton__wal_failed(log))
        return true;
    if (root->held != NULL)
        return false;
    if (!w->need_ack)
        return true;
    return atomic_load_explicit(&root->acked, memory_order_acquire) &&
           atomic_load_explicit(&root->ack, memory_order_relaxed) <= baton__wal_durable(log);
}

/* Spawns the held firings whose records are durable now. The body wakes for deferrals (SYNC:
 * every firing of a continuation), so the newly deferred are looked at each time, and the held
 * ones walked again only once the durable mark has moved past *walked (the mark at the last
 * walk) or the log failed. Walking all of them at every wake cost the body O(held) per firing:
 * with 256 chains' firings held for a sync, most of durable_sync's CPU. */
static void root_release(sp_root *root, uint64_t *walked)
{
    baton__wal *log = root->space->log;
    bool failed = baton__wal_failed(log); /* failed: run anyway */
    uint64_t durable = baton__wal_durable(log);
    /* Acquire: pairs with defer_fire's release CAS. */
    sp_fire *taken = atomic_exchange_explicit(&root->deferred, NULL, memory_order_acquire);
    while (taken != NULL) {
        sp_fire *next = taken->next;
        if (taken->seq <= durable || failed) {
            spawn_fire(root, root->scope, taken);
        } else {
            taken->next = root->held;
            root->held = taken;
        }
        taken = next;
    }
    if (durable <= *walked && !failed)
        return;
    *walked = durable;
    sp_fire **link = &root->held;
    while (*link != NULL) {
        sp_fire *f = *link;
        if (f->seq <= durable || failed) {
            *link = f->next;
            spawn_fire(root, root->scope, f);
        } else {
            link = &f->next;
        }
    }
}

static bool root_done(sp_root *root, bool need_ack)
{
    /* Acquire loads as in root_ready. running first: a continuation defers its firings before
     * its decrement, so once running reads 0 every deferral is visible to the load of deferred;
     * read the other way round, a deferral made between the two loads would be lost. */
    if (atomic_load_explicit(&root->running, memory_order_acquire) != 0)
        return false;
    if (atomic_load_explicit(&root->deferred, memory_order_acquire) != NULL || root->held != NULL)
        return false;
    if (!need_ack)
        return true;
    if (!atomic_load_explicit(&root->acked, memory_order_acquire))
        return false;
    uint64_t seq = atomic_load_explicit(&root->ack, memory_order_relaxed);
    return seq == 0 || seq <= baton__wal_durable(root->space->log);
}

typedef struct root_args {
    sp_call *call;
    sp_root *root;
    bool need_ack;
} root_args;

static int root_body(baton_scope *scope, void *arg)
{
    root_args *a = arg;
    sp_root *root = a->root;
    root->scope = scope;
    bool sync = sp_space_sync(root->space);
    for (sp_fire *f = a->call->fires, *next; f; f = next) {
        next = f->next;
        if (must_wait(root->space, f))
            defer_fire(root, f);
        else
            spawn_fire(sync ? root : NULL, scope, f);
    }
    a->call->fires = NULL;
    if (!sync)
        return 0;
    baton__wal *log = root->space->log;
    uint64_t walked = 0;
    for (;;) {
        root_release(root, &walked);
        if (root_done(root, a->need_ack))
            return 0;
        if (baton__wal_failed(log) && root->held == NULL &&
            atomic_load_explicit(&root->running, memory_order_acquire) == 0 &&
            atomic_load_explicit(&root->deferred, memory_order_acquire) == NULL)
            return 0;
        /* The mark the held firings were last checked against, not a fresh reading: a sync
         * that lands between the two would otherwise go unnoticed, and with every chain's next
         * step held nothing new is written and no later sync comes. */
        root_wait w = {root, walked, a->need_ack};
        /* No yields: what the body waits for is the disk (a sync) or continuations that run
         * on the pool's workers; yielding to them polled root_ready so often that the body
         * caught a new deferral before it ever slept, a core's worth of CPU per SYNC space. */
        (void)baton__waitpoint_wait_yielding(baton__wal_progress(log), root_ready, &w,
                                             UINT64_MAX, 0);
    }
}

/* Runs the call's firings on this thread (see DESIGN: Inline); leaves in call->fires those that
 * are to run as tasks instead. */
static void run_inline(sp_call *call)
{
    baton_space *space = call->space;
    const _Atomic uint32_t *idle = baton__pool_idle_workers(space->pool);
    sp_inline run = {space->pool, NULL};
    baton_scope *saved_scope = sp_tls_scope;
    baton_pool *saved_pool = sp_tls_pool;
    sp_root *saved_root = sp_tls_root;
    sp_inline *saved_inline = sp_tls_inline;
    sp_tls_scope = NULL;
    sp_tls_pool = NULL;
    sp_tls_root = NULL;
    sp_tls_inline = &run;
    sp_fire *list = call->fires;
    call->fires = NULL;
    while (list != NULL) {
        /* Relaxed: a hint (sched.h); a stale reading only chooses the other correct path. */
        if (list->next != NULL && atomic_load_explicit(idle, memory_order_relaxed) > 0)
            break;
        sp_fire *f = list;
        list = f->next;
        int rc = f->fn != NULL ? f->fn(f->ctx, &f->match) : 0;
        if (rc != 0)
            sp_record_error(f->space, rc);
        baton__space_release(f->space, f, f->size);
        while (run.queued != NULL) { /* the firings its calls made come next */
            sp_fire *q = run.queued;
            run.queued = q->next;
            q->next = list;
            list = q;
        }
    }
    sp_tls_scope = saved_scope;
    sp_tls_pool = saved_pool;
    sp_tls_root = saved_root;
    sp_tls_inline = saved_inline;
    call->fires = list;
}

/* Runs the call's firings: into the running continuation's scope, or as a new root. */
void baton__space_dispatch(sp_call *call, sp_root *root, bool need_ack)
{
    baton_space *space = call->space;
    if (sp_tls_inline != NULL && sp_tls_inline->pool == space->pool) {
        /* A call of an inline continuation: the run takes its firings after it (DESIGN). */
        while (call->fires != NULL) {
            sp_fire *f = call->fires;
            call->fires = f->next;
            f->next = sp_tls_inline->queued;
            sp_tls_inline->queued = f;
        }
        return;
    }
    if (baton__space_in_continuation(space)) {
        for (sp_fire *f = call->fires, *next; f; f = next) {
            next = f->next;
            if (sp_tls_root != NULL && must_wait(space, f))
                defer_fire(sp_tls_root, f);
            else
                spawn_fire(sp_tls_root, sp_tls_scope, f);
        }
        call->fires = NULL;
        return;
    }
    if (call->fires == NULL && !need_ack)
        return;
    if (!sp_space_sync(space) && baton__pool_runs_caller(space->pool)) {
        run_inline(call);
        if (call->fires == NULL)
            return;
    }
    if (!call->root_ready) {
        sp_root_init(root, space);
        call->root_ready = true;
    }
    root_args args = {call, root, need_ack};
    int rc = baton_scope_run(space->pool, root_body, &args);
    if (rc != 0)
        sp_record_error(space, rc);
    for (sp_fire *f = call->fires, *next; f; f = next) { /* left over if the scope failed */
        next = f->next;
        baton__space_release(space, f, f->size);
    }
    call->fires = NULL;
}
