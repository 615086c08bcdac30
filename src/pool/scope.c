/*
 * scope.c — structured concurrency: baton_scope_run waits for every task spawned into the scope.
 *
 * DESIGN
 *  - pending counts the body plus every spawned task not yet finished. It starts at 1 (the
 *    body); a spawn increments it (relaxed: the spawner is itself pending, so the count cannot
 *    reach zero meanwhile); a finished task decrements it with acq_rel, so the decrement that
 *    reaches zero has seen every task's writes and publishes them through the done latch.
 *  - The first non-zero result wins a CAS into first_error and sets cancelled; tasks that start
 *    after that are skipped, and new spawns are refused with BATON_ECANCELED.
 *  - Task records come from per-worker slabs: a spawn pops the spawning worker's free list, and
 *    whoever runs the task returns the record to its origin worker, through that worker's lock-
 *    free remote-free stack when it is another thread (mimalloc's local/remote free lists). In
 *    steady state a spawn touches no allocator; memory stays bounded by the peak number of tasks
 *    in flight, never by how many ran.
 */
#include <stdint.h>

#include "baton/core.h"
#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "pool/internal.h"

struct baton_scope {
    baton_pool *pool;
    _Atomic int64_t pending;
    _Atomic int first_error;
    _Atomic uint32_t cancelled;
    baton__latch done;
    /* The first error's message, written by the thread whose error won first_error; the caller
     * reads it after the done latch, which orders it. */
    char message[BATON__CARRIED_MESSAGE_CAPACITY];
};

/* rc: what the body or a task (what) returned on this thread, which started it when its error
 * serial was `serial`. */
static void baton__scope_fail(baton_scope *scope, int rc, const char *what, uint64_t serial)
{
    int expected = 0;
    /* acq_rel: the error value is read after the done latch, which orders it anyway; this only
     * makes sure one error wins. */
    if (baton__cas_strong_acq_rel(&scope->first_error, &expected, rc))
        baton__work_error_message(scope->message, sizeof scope->message, "baton_scope_run", what,
                                  rc, serial);
    baton__store_relaxed(&scope->cancelled, 1);
}

static void baton__scope_finish_one(baton_scope *scope)
{
    /* acq_rel: the last decrement acquires every earlier task's release, then sets the latch. */
    if (baton__fetch_sub_acq_rel(&scope->pending, 1) == 1)
        baton__latch_set(&scope->done);
}

static baton__task_record *baton__record_alloc(baton__worker *w)
{
    baton__task_record *rec = w->free_records;
    if (rec == NULL) {
        /* Acquire pairs with the release CAS in baton__record_free: the record's last use
         * happened before we reuse it. */
        rec = atomic_exchange_explicit(&w->remote_free, NULL, memory_order_acquire);
    }
    if (rec == NULL) {
        baton__slab *slab = baton__malloc(sizeof *slab);
        if (slab == NULL)
            return NULL;
        slab->next = w->slabs;
        w->slabs = slab;
        for (int i = 0; i < BATON__SLAB_RECORDS; i++) {
            slab->records[i].origin = w;
            slab->records[i].next_free = i + 1 < BATON__SLAB_RECORDS ? &slab->records[i + 1] : NULL;
        }
        rec = &slab->records[0];
    }
    w->free_records = rec->next_free;
    return rec;
}

static void baton__record_free(baton__worker *executor, baton__task_record *rec)
{
    baton__worker *origin = rec->origin;
    if (origin == executor) {
        rec->next_free = origin->free_records;
        origin->free_records = rec;
        return;
    }
    baton__task_record *head = baton__load_relaxed(&origin->remote_free);
    do {
        rec->next_free = head;
        /* Release pairs with the origin's acquire exchange in baton__record_alloc. */
    } while (!atomic_compare_exchange_weak_explicit(&origin->remote_free, &head, rec,
                                                    memory_order_release, memory_order_relaxed));
}

static void baton__record_exec(baton__job *job, baton__worker *executor)
{
    baton__task_record *rec = (baton__task_record *)job;
    baton_scope *scope = rec->scope;
    baton_task_fn fn = rec->fn;
    void *ctx = rec->ctx;
    /* Give the record back before running: the task may spawn and reuse it at once. */
    baton__record_free(executor, rec);
    if (baton__load_relaxed(&scope->cancelled) == 0) {
        uint64_t serial = baton__error_serial;
        int rc = fn(ctx);
        if (rc != 0)
            baton__scope_fail(scope, rc, "a task", serial);
    }
    baton__scope_finish_one(scope);
}

int baton_scope_spawn(baton_scope *scope, baton_task_fn fn, void *ctx)
{
    if (scope == NULL || fn == NULL)
        return baton__error(BATON_EINVAL, "baton_scope_spawn: scope and fn must not be NULL");
    baton__worker *w = baton__current;
    if (w == NULL || w->pool != scope->pool) {
        return baton__error(BATON_EPERM, "baton_scope_spawn: the calling thread is not running "
                            "inside the scope's pool; spawn from the scope's body or its tasks");
    }
    if (baton__load_relaxed(&scope->cancelled) != 0)
        return baton__error(BATON_ECANCELED, "baton_scope_spawn: the scope was cancelled by "
                            "error %d (%s)", baton__load_relaxed(&scope->first_error),
                            baton_err_name(baton__load_relaxed(&scope->first_error)));
    baton__task_record *rec = baton__record_alloc(w);
    if (rec == NULL)
        return baton__error(BATON_ENOMEM, "baton_scope_spawn: no memory for a slab of %d task "
                            "records", BATON__SLAB_RECORDS);
    rec->job.exec = baton__record_exec;
    rec->fn = fn;
    rec->ctx = ctx;
    rec->scope = scope;
    baton__fetch_add_relaxed(&scope->pending, 1);
    if (baton__deque_push(&w->deque, &rec->job, true) != 0) {
        baton__fetch_sub_relaxed(&scope->pending, 1);
        baton__record_free(w, rec);
        return baton__error(BATON_ENOMEM, "baton_scope_spawn: the worker's deque could not grow");
    }
    baton__notify_work(w->pool);
    return 0;
}

bool baton_scope_cancelled(const baton_scope *scope)
{
    return scope != NULL && atomic_load_explicit(&scope->cancelled, memory_order_relaxed) != 0;
}

typedef struct baton__scope_args {
    baton_scope_fn body;
    void *ctx;
} baton__scope_args;

static int baton__scope_in(baton__worker *w, void *arg)
{
    const baton__scope_args *args = arg;
    baton_scope scope;
    scope.pool = w->pool;
    atomic_init(&scope.pending, 1);
    atomic_init(&scope.first_error, 0);
    atomic_init(&scope.cancelled, 0);
    baton__latch_init(&scope.done, w);

    uint64_t serial = baton__error_serial;
    int rc = args->body(&scope, args->ctx);
    if (rc != 0)
        baton__scope_fail(&scope, rc, "the body", serial);
    /* acq_rel as in baton__scope_finish_one; if this was not the last, wait for the latch. */
    if (baton__fetch_sub_acq_rel(&scope.pending, 1) != 1)
        baton__work_until(w, &scope.done);
    rc = baton__load_relaxed(&scope.first_error);
    /* The message travels with the error: the failing task may have run on another thread, and
     * the caller's thread may hold an older message of its own. */
    if (rc != 0)
        baton__error(rc, "%s", scope.message);
    return rc;
}

int baton_scope_run(baton_pool *pool, baton_scope_fn body, void *ctx)
{
    if (pool == NULL || body == NULL)
        return baton__error(BATON_EINVAL, "baton_scope_run: pool and body must not be NULL");
    baton__scope_args args = {body, ctx};
    baton__worker *w = baton__current;
    if (w != NULL && w->pool == pool)
        return baton__scope_in(w, &args);
    return baton__call(pool, baton__scope_in, &args);
}
