/*
 * pool.c — creating and destroying pools, the worker loop, finding work, and how outside threads
 * enter a pool.
 *
 * DESIGN
 *  - workers[0 .. n_workers) are the pool's threads; workers[n_workers .. n_total) are external
 *    slots: a thread from outside that calls into the pool claims one (CAS on slot_taken) and is
 *    a worker for the length of that call: it pushes its forks on the slot's deque, helps while
 *    it waits, and can be stolen from. This is how the calling thread takes part in the work
 *    instead of sleeping while it is done elsewhere (oneTBB's arena slots).
 *  - With no free slot (or BATON_POOL_NO_EXTERNAL_SLOTS) the call becomes a job pushed on the
 *    injector, a lock-free stack; a worker takes the whole stack at once, keeps the oldest job
 *    and spreads the rest through its deque for others to steal. The caller blocks on a futex.
 *  - Finding work: own deque (LIFO), then the injector, then stealing from the other deques
 *    starting at a random victim. An idle worker spins (pause, then yield) for its spin time
 *    before it goes to sleep (sleep.c).
 *  - A thread inside a pool at any depth (its worker, or holding a slot, even while it is in a
 *    call into another pool) is found through its chain of contexts, and goes on as that worker.
 *  - Destroy: refuses new outside calls (closing), waits for the outside calls in progress to
 *    return (every job descends from one, since there are no detached tasks, so the pool is then
 *    idle), sets shutdown, unparks every worker and joins them.
 */
#include <stdio.h>
#include <string.h>

#include "baton/core.h"
#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "pool/internal.h"

#define BATON__DEQUE_INITIAL_CAPACITY 256
#define BATON__DEFAULT_SPIN_US 50
/* A worker that keeps being woken soon after it parked searches up to this many times longer. */
#define BATON__SPIN_STRETCH 16

_Thread_local baton__worker *baton__current BATON__TLS_MODEL;
_Thread_local baton__context *baton__contexts BATON__TLS_MODEL;

baton__worker *baton__find_context(const baton_pool *pool)
{
    for (baton__context *c = baton__contexts; c != NULL; c = c->outer) {
        if (c->worker->pool == pool)
            return c->worker;
    }
    return NULL;
}

/* Makes the calling thread worker w for the length of body, then restores what it was. */
static int baton__run_as(baton__worker *w, int (*body)(baton__worker *w, void *arg), void *arg)
{
    baton__context context = {w, baton__contexts};
    baton__worker *previous = baton__current;
    baton__contexts = &context;
    baton__current = w;
    int rc = body(w, arg);
    baton__current = previous;
    baton__contexts = context.outer;
    return rc;
}

static uint64_t baton__xorshift(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

void baton__execute(baton__worker *w, baton__job *job)
{
    baton__owner_increment(&w->tasks_executed);
    w->depth++;
    job->exec(job, w);
    w->depth--;
}

unsigned baton__execution_depth(void)
{
    return baton__current != NULL ? baton__current->depth : 0;
}

/* Pushes the chain first .. last (linked by next) on the injector's stack. */
static void baton__injector_push(baton_pool *pool, baton__job *first, baton__job *last)
{
    baton__job *head = baton__load_relaxed(&pool->injector);
    do {
        last->next = head;
        /* seq_cst: the CAS is the publish half of the sleep protocol (sleep.c), and release
         * pairs with the acquire exchange in baton__take_injected. */
    } while (!atomic_compare_exchange_weak_explicit(&pool->injector, &head, first,
                                                    memory_order_seq_cst, memory_order_relaxed));
}

/* Takes every injected job; keeps the oldest and pushes the others on w's deque. */
static baton__job *baton__take_injected(baton__worker *w)
{
    baton_pool *pool = w->pool;
    if (baton__load_relaxed(&pool->injector) == NULL)
        return NULL;
    /* Acquire pairs with the release CAS in baton__inject: the jobs' contents are visible. */
    baton__job *stack = atomic_exchange_explicit(&pool->injector, NULL, memory_order_acquire);
    if (stack == NULL)
        return NULL;
    /* The stack is newest first; reverse it so the oldest runs first. */
    baton__job *oldest_first = NULL;
    while (stack != NULL) {
        baton__job *next = stack->next;
        stack->next = oldest_first;
        oldest_first = stack;
        stack = next;
    }
    baton__job *first = oldest_first;
    bool pushed = false;
    for (baton__job *job = first->next; job != NULL;) {
        baton__job *next = job->next;
        if (baton__deque_push(&w->deque, job, true) != 0) {
            /* Cannot grow the deque: give the rest back to the injector. */
            baton__job *tail = job;
            while (tail->next != NULL)
                tail = tail->next;
            baton__injector_push(pool, job, tail);
            break;
        }
        pushed = true;
        job = next;
    }
    if (pushed)
        baton__notify_work(pool);
    return first;
}

static baton__job *baton__search(baton__worker *w);

baton__job *baton__find_work(baton__worker *w)
{
    baton__job *job = baton__search(w);
    if (job != NULL)
        baton__waking_pass_on(w);
    return job;
}

static baton__job *baton__search(baton__worker *w)
{
    baton__job *job = baton__deque_pop(&w->deque);
    if (job != NULL) {
        baton__share_if_idle(w);
        return job;
    }
    job = baton__take_injected(w);
    if (job != NULL)
        return job;

    baton_pool *pool = w->pool;
    unsigned n = pool->n_total;
    unsigned start = (unsigned)(baton__xorshift(&w->rng) % n);
    for (unsigned k = 0; k < n; k++) {
        baton__worker *victim = &pool->workers[(start + k) % n];
        if (victim == w)
            continue;
        for (int attempt = 0; attempt < 4; attempt++) {
            bool lost_race;
            job = baton__deque_steal(&victim->deque, &lost_race);
            if (job != NULL) {
                baton__owner_increment(&w->steals);
                return job;
            }
            if (!lost_race)
                break;
        }
    }
    baton__owner_increment(&w->steal_failures);
    return NULL;
}

static void *baton__worker_main(void *arg)
{
    baton__worker *w = arg;
    baton_pool *pool = w->pool;
    baton__context context = {w, NULL};
    baton__contexts = &context;
    baton__current = w;
    w->start_error = 0;
    if (pool->flags & BATON_POOL_PIN)
        w->start_error = baton__topology_pin_self(pool->topology, w->index);
    /* Release pairs with the creator's acquire load of started: start_error is visible. */
    baton__fetch_add_acq_rel(&pool->started, 1);
    baton__futex_wake(&pool->started, 1);

    baton__work_until(w, NULL);
    baton__current = NULL;
    baton__contexts = NULL;
    return NULL;
}

/* An outside call that could not get a slot: runs on a worker, the caller waits on done. The
 * error detail is per thread, so it travels back with the result. */
typedef struct baton__injected_call {
    baton__job job;
    int (*body)(baton__worker *w, void *arg);
    void *arg;
    int result;
    _Atomic uint32_t done;
    char message[256];
} baton__injected_call;

static void baton__injected_exec(baton__job *job, baton__worker *executor)
{
    baton__injected_call *call = (baton__injected_call *)job;
    /* Only a message the call's own work set may travel back: the worker's thread holds the
     * messages of whatever failed on it before. */
    uint64_t serial = baton__error_serial;
    call->result = call->body(executor, call->arg);
    if (call->result != 0)
        baton__work_error_message(call->message, sizeof call->message, "baton pool call",
                                  "the call's work", call->result, serial);
    /* Release pairs with the caller's acquire load of done: result is visible. */
    baton__store_release(&call->done, 1);
    baton__futex_wake(&call->done, 1);
}

static void baton__inject(baton_pool *pool, baton__job *job)
{
    baton__injector_push(pool, job, job);
    baton__notify_work(pool);
}

static void baton__leave_call(baton_pool *pool)
{
    /* Release pairs with destroy's acquire load: everything this call did happens before the
     * pool is freed. After this decrement the pool may be gone, so the only thing left to do is
     * the wake-up, a system call on the address that reads no memory (glibc's mutex unlock
     * relies on the same property of FUTEX_WAKE); a spurious wake-up of whatever later lives at
     * that address is harmless, since every futex waiter re-checks its condition. */
    uint32_t before = baton__fetch_sub_release(&pool->calls, 1);
    if (before == (BATON__CLOSING | 1u))
        baton__futex_wake(&pool->calls, INT32_MAX);
}

int baton__call(baton_pool *pool, int (*body)(baton__worker *w, void *arg), void *arg)
{
    /* A thread already inside pool further out (a worker of it that called into another pool,
     * which calls back) goes on as that worker: its outer call keeps the pool alive, and taking
     * a slot or blocking on the injector could deadlock with itself. */
    baton__worker *outer = baton__find_context(pool);
    if (outer != NULL)
        return baton__run_as(outer, body, arg);

    /* One atomic step both counts us and tells whether destroy has begun. */
    if (baton__fetch_add_acq_rel(&pool->calls, 1) & BATON__CLOSING) {
        baton__leave_call(pool);
        return baton__error(BATON_ECLOSED, "the pool is being destroyed");
    }

    int rc;
    baton__worker *slot = NULL;
    for (unsigned i = pool->n_workers; i < pool->n_total; i++) {
        baton__worker *candidate = &pool->workers[i];
        uint32_t expected = 0;
        /* Acquire pairs with the release store that freed the slot: the previous holder's
         * writes to the slot's free lists and deque are visible. */
        if (baton__load_relaxed(&candidate->slot_taken) == 0 &&
            baton__cas_strong_acquire(&candidate->slot_taken, &expected, 1)) {
            slot = candidate;
            break;
        }
    }
    if (slot != NULL) {
        rc = baton__run_as(slot, body, arg);
        /* Release pairs with the next claimer's acquire CAS. */
        baton__store_release(&slot->slot_taken, 0);
    } else {
        baton__injected_call call;
        call.job.exec = baton__injected_exec;
        call.body = body;
        call.arg = arg;
        call.result = 0;
        atomic_init(&call.done, 0);
        baton__inject(pool, &call.job);
        /* Acquire pairs with the release store in baton__injected_exec. */
        while (baton__load_acquire(&call.done) == 0)
            baton__futex_wait(&call.done, 0, 0);
        rc = call.result;
        if (rc != 0)
            baton__error(rc, "%s", call.message);
    }
    baton__leave_call(pool);
    return rc;
}

static void baton__pool_free(baton_pool *pool, unsigned n_initialised)
{
    for (unsigned i = 0; i < n_initialised; i++) {
        baton__worker *w = &pool->workers[i];
        baton__deque_destroy(&w->deque);
        while (w->slabs != NULL) {
            baton__slab *next = w->slabs->next;
            baton__free(w->slabs);
            w->slabs = next;
        }
    }
    baton__free(pool->workers);
    baton__topology_free(pool->topology);
    baton__free(pool);
}

static void baton__pool_stop_threads(baton_pool *pool, unsigned n_started)
{
    /* Release pairs with the workers' acquire load of shutdown; seq_cst so that a worker about to
     * sleep sees it in its re-check (sleep.c). Every worker is unparked: the token covers one
     * that parks after this. */
    baton__store_seq_cst(&pool->shutdown, 1);
    for (unsigned i = 0; i < n_started; i++)
        baton__unpark(&pool->workers[i].parker);
    for (unsigned i = 0; i < n_started; i++)
        baton__thread_join(pool->workers[i].thread);
}

int baton_pool_create(const baton_pool_config *config, baton_pool **out_pool)
{
    baton_pool_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (out_pool == NULL)
        return baton__error(BATON_EINVAL, "baton_pool_create: out_pool is NULL");
    if (config != NULL) {
        size_t size = config->struct_size == 0 ? sizeof cfg : config->struct_size;
        if (size > sizeof cfg)
            return baton__error(BATON_EINVAL, "baton_pool_create: config struct_size = %zu is "
                                "larger than this library's baton_pool_config (%zu)",
                                size, sizeof cfg);
        memcpy(&cfg, config, size);
    }
    if (cfg.n_workers > BATON_POOL_MAX_WORKERS)
        return baton__error(BATON_EINVAL, "baton_pool_create: n_workers = %u exceeds "
                            "BATON_POOL_MAX_WORKERS (%d)", cfg.n_workers, BATON_POOL_MAX_WORKERS);
    if (cfg.external_slots > BATON_POOL_MAX_EXTERNAL_SLOTS)
        return baton__error(BATON_EINVAL, "baton_pool_create: external_slots = %u exceeds "
                            "BATON_POOL_MAX_EXTERNAL_SLOTS (%d)", cfg.external_slots,
                            BATON_POOL_MAX_EXTERNAL_SLOTS);
    unsigned known_flags = BATON_POOL_PIN | BATON_POOL_NO_EXTERNAL_SLOTS;
    if (cfg.flags & ~known_flags)
        return baton__error(BATON_EINVAL, "baton_pool_create: unknown flags 0x%x",
                            cfg.flags & ~known_flags);
    if (cfg.spin_us > 1000000)
        return baton__error(BATON_EINVAL, "baton_pool_create: spin_us = %u is above one second",
                            cfg.spin_us);

    baton_pool *pool = baton__aligned_alloc(BATON_CACHELINE, sizeof *pool);
    if (pool == NULL)
        return baton__error(BATON_ENOMEM, "baton_pool_create: out of memory");
    memset(pool, 0, sizeof *pool);
    snprintf(pool->name, sizeof pool->name, "%s", cfg.name != NULL ? cfg.name : "baton");
    pool->flags = cfg.flags;
    pool->spin_ns = (uint64_t)(cfg.spin_us != 0 ? cfg.spin_us : BATON__DEFAULT_SPIN_US) * 1000u;
    pool->max_spin_ns = pool->spin_ns * BATON__SPIN_STRETCH;

    if (cfg.n_workers == 0 || (cfg.flags & BATON_POOL_PIN)) {
        int rc = baton__topology_load(&pool->topology);
        if (rc != 0) {
            baton__free(pool);
            return rc;
        }
    }
    pool->n_workers = cfg.n_workers != 0 ? cfg.n_workers : baton__topology_cpus(pool->topology);
    unsigned slots = (cfg.flags & BATON_POOL_NO_EXTERNAL_SLOTS) ? 0
                     : cfg.external_slots != 0 ? cfg.external_slots
                                               : BATON_POOL_DEFAULT_EXTERNAL_SLOTS;
    pool->n_total = pool->n_workers + slots;

    unsigned n_total = pool->n_total; /* error messages below outlive the pool */
    pool->workers = baton__aligned_alloc(BATON_CACHELINE, n_total * sizeof *pool->workers);
    if (pool->workers == NULL) {
        baton__pool_free(pool, 0);
        return baton__error(BATON_ENOMEM, "baton_pool_create: out of memory for %u workers",
                            n_total);
    }
    memset(pool->workers, 0, pool->n_total * sizeof *pool->workers);
    for (unsigned i = 0; i < pool->n_total; i++) {
        baton__worker *w = &pool->workers[i];
        if (baton__deque_init(&w->deque, BATON__DEQUE_INITIAL_CAPACITY) != 0) {
            baton__pool_free(pool, i);
            return baton__error(BATON_ENOMEM, "baton_pool_create: out of memory for deques");
        }
        w->pool = pool;
        w->index = i;
        w->is_external = i >= pool->n_workers;
        w->rng = baton_mix64(0x9e3779b97f4a7c15u * (i + 1)) | 1u;
        w->spin_ns = pool->spin_ns;
        baton__parker_init(&w->parker);
    }

    for (unsigned i = 0; i < pool->n_workers; i++) {
        char thread_name[48];
        snprintf(thread_name, sizeof thread_name, "%s-%u", pool->name, i);
        int rc = baton__thread_start(&pool->workers[i].thread, baton__worker_main,
                                     &pool->workers[i], thread_name);
        if (rc != 0) {
            unsigned n_workers = pool->n_workers;
            baton__pool_stop_threads(pool, i);
            baton__pool_free(pool, pool->n_total);
            return baton__error(rc, "baton_pool_create: could not start worker %u of %u", i,
                                n_workers);
        }
    }
    /* Start-up handshake: wait until every worker has run its start-up (pinning). Acquire pairs
     * with the workers' acq_rel increment. */
    for (;;) {
        uint32_t started = baton__load_acquire(&pool->started);
        if (started == pool->n_workers)
            break;
        baton__futex_wait(&pool->started, started, 0);
    }
    for (unsigned i = 0; i < pool->n_workers; i++) {
        if (pool->workers[i].start_error != 0) {
            baton__pool_stop_threads(pool, pool->n_workers);
            baton__pool_free(pool, pool->n_total);
            return baton__error(BATON_EIO, "baton_pool_create: could not pin worker %u to a "
                                "logical CPU", i);
        }
    }
    *out_pool = pool;
    return 0;
}

int baton_pool_destroy(baton_pool *pool)
{
    if (pool == NULL)
        return baton__error(BATON_EINVAL, "baton_pool_destroy: pool is NULL");
    baton__worker *self = baton__find_context(pool);
    if (self != NULL) {
        return baton__error(BATON_EDEADLK, "baton_pool_destroy: called from %s %u of the pool "
                            "itself; destroy it from a thread outside the pool",
                            self->is_external ? "a call holding external slot" : "worker",
                            self->index);
    }
    /* From now on new outside calls fail; wait for the ones inside to leave. */
    atomic_fetch_or_explicit(&pool->calls, BATON__CLOSING, memory_order_acq_rel);
    for (;;) {
        /* Acquire pairs with the release decrement in baton__leave_call. */
        uint32_t calls = baton__load_acquire(&pool->calls);
        if ((calls & BATON__CALLS_MASK) == 0)
            break;
        baton__futex_wait(&pool->calls, calls, 0);
    }
    baton__pool_stop_threads(pool, pool->n_workers);
    baton__pool_free(pool, pool->n_total);
    return 0;
}

unsigned baton_pool_workers(const baton_pool *pool)
{
    return pool != NULL ? pool->n_workers : 0;
}

int baton_pool_current_worker(const baton_pool *pool)
{
    baton__worker *w = pool != NULL ? baton__find_context(pool) : NULL;
    if (w == NULL || w->is_external)
        return -1;
    return (int)w->index;
}

static void baton__stats_add(baton_worker_stats *sum, const baton__worker *w)
{
    sum->tasks_executed += atomic_load_explicit(&w->tasks_executed, memory_order_relaxed);
    sum->steals += atomic_load_explicit(&w->steals, memory_order_relaxed);
    sum->steal_failures += atomic_load_explicit(&w->steal_failures, memory_order_relaxed);
    sum->parks += atomic_load_explicit(&w->parks, memory_order_relaxed);
}

int baton_pool_worker_stats(const baton_pool *pool, unsigned worker, baton_worker_stats *out)
{
    if (pool == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "baton_pool_worker_stats: pool and out must not be "
                            "NULL");
    if (worker > pool->n_workers)
        return baton__error(BATON_EINVAL, "baton_pool_worker_stats: worker = %u, the pool has "
                            "%u workers (pass %u for the total)", worker, pool->n_workers,
                            pool->n_workers);
    memset(out, 0, sizeof *out);
    if (worker < pool->n_workers) {
        baton__stats_add(out, &pool->workers[worker]);
    } else {
        for (unsigned i = 0; i < pool->n_total; i++)
            baton__stats_add(out, &pool->workers[i]);
    }
    return 0;
}
