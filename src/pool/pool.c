/*
 * pool.c — creating and destroying pools, the worker loop, finding work, and how outside threads
 * enter a pool.
 *
 * DESIGN
 *  - workers[0 .. n_workers) are the pool's threads; workers[n_workers .. n_total) are external
 *    slots: a thread from outside that calls into the pool claims one (CAS on slot_taken) and is
 *    a worker for the length of that call: it runs the call's own code (a scope's body, a join's
 *    A) itself, pushes its forks on the slot's deque, helps while it waits, and can be stolen
 *    from. This is how the calling thread takes part in the work instead of sleeping while it
 *    is done elsewhere (oneTBB's arena slots).
 *  - When every configured slot is taken (or there are none: BATON_POOL_NO_EXTERNAL_SLOTS), the
 *    caller makes one more, on demand, and adds it to the overflow list; the slots on that list
 *    are claimed and freed like the configured ones and live until the pool is freed, so the
 *    list only grows (up to the most outside threads ever inside at once) and thieves, wakers
 *    and sleepers walk it without any protocol. So every outside call runs on its own thread;
 *    none waits for a worker to be free to start it (which could deadlock when a body waits for
 *    another outside caller, and broke thread-local state and "runs on the calling thread").
 *  - Finding work: own deque (LIFO), then stealing from the other deques (the configured ones
 *    starting at a random victim, then the overflow slots). A worker with nothing to do
 *    (baton__work_until: a pool thread's life, or a wait on a latch) spins (pause, then yield)
 *    for its spin time before it goes to sleep (sleep.c, which calls nothing here).
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
#include "core/config.h"
#include "core/atomic.h"
#include "core/error.h"
#include "pool/internal.h"

#define BATON__DEQUE_INITIAL_CAPACITY 256
#define BATON__DEFAULT_SPIN_US 50
/* A worker that keeps being woken soon after it parked searches up to this many times longer. */
#define BATON__SPIN_STRETCH 16

_Thread_local baton__worker *baton__current BATON__TLS_MODEL;
_Thread_local baton__context *baton__contexts BATON__TLS_MODEL;

/* The worker of pool the calling thread is at any depth, or NULL. */
static baton__worker *baton__find_context(const baton_pool *pool)
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

static baton__job *baton__search(baton__worker *w);

/* A few tries at victim's oldest public job (retrying only lost races). */
static baton__job *baton__steal_from(baton__worker *w, baton__worker *victim)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        bool lost_race;
        baton__job *job = baton__deque_steal(&victim->deque, &lost_race);
        if (job != NULL) {
            baton__owner_increment(&w->steals);
            return job;
        }
        if (!lost_race)
            break;
    }
    return NULL;
}

baton__job *baton__find_work(baton__worker *w)
{
    baton__job *job = baton__search(w);
    if (job != NULL)
        baton__waking_pass_on(w);
    return job;
}

int baton__publish_job(baton__worker *w, baton__job *job)
{
    if (baton__deque_push(&w->deque, job, true) != 0)
        return BATON_ENOMEM;
    baton__notify_work(w->pool);
    return 0;
}

const _Atomic uint32_t *baton__pool_idle_workers(const baton_pool *pool)
{
    return &pool->n_idle;
}

bool baton__pool_runs_caller(const baton_pool *pool)
{
    return baton__find_context(pool) != NULL;
}

static baton__job *baton__search(baton__worker *w)
{
    baton__job *job = baton__deque_pop(&w->deque);
    if (job != NULL) {
        baton__share_if_idle(w);
        return job;
    }

    baton_pool *pool = w->pool;
    unsigned n = pool->n_total;
    unsigned start = (unsigned)(baton__xorshift(&w->rng) % n);
    for (unsigned k = 0; k < n; k++) {
        baton__worker *victim = &pool->workers[(start + k) % n];
        if (victim != w && (job = baton__steal_from(w, victim)) != NULL)
            return job;
    }
    /* Acquire pairs with the seq_cst CAS that added a slot: its deque is initialised. */
    for (baton__worker *victim = baton__load_acquire(&pool->overflow); victim != NULL;
         victim = victim->overflow_next) {
        if (victim != w && (job = baton__steal_from(w, victim)) != NULL)
            return job;
    }
    baton__owner_increment(&w->steal_failures);
    return NULL;
}

static bool baton__work_done(baton__worker *w, baton__latch *latch)
{
    if (latch != NULL)
        return baton__latch_is_set(latch);
    /* Acquire pairs with the release store of shutdown in baton_pool_destroy. */
    return baton__load_acquire(&w->pool->shutdown) != 0;
}

void baton__work_until(baton__worker *w, baton__latch *latch)
{
    uint64_t idle_since = 0;
    unsigned rounds = 0;
    while (!baton__work_done(w, latch)) {
        baton__job *job = baton__find_work(w);
        if (job != NULL) {
            baton__idle_leave(w);
            baton__execute(w, job);
            idle_since = 0;
            rounds = 0;
            continue;
        }
        baton__idle_enter(w);
        if (++rounds < 32) {
            baton__cpu_relax();
            continue;
        }
        uint64_t now = baton__monotonic_ns();
        if (idle_since == 0)
            idle_since = now;
        if (now - idle_since < w->spin_ns) {
            /* Oversubscribed machines: let the thread we may be waiting for run. */
            baton__thread_yield();
            continue;
        }
        baton__sleep(w, latch);
        idle_since = 0;
        rounds = 0;
    }
    /* The caller goes back to running its own job (or the worker exits): if it was woken to
     * help, let another sleeper take over that role. */
    baton__idle_leave(w);
    baton__waking_pass_on(w);
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

/* Sets up w as worker `index` of pool (its deque, its random state, its parker). Returns 0 or
 * BATON_ENOMEM. */
static int baton__worker_init(baton_pool *pool, baton__worker *w, unsigned index)
{
    memset(w, 0, sizeof *w);
    if (baton__deque_init(&w->deque, BATON__DEQUE_INITIAL_CAPACITY) != 0)
        return BATON_ENOMEM;
    w->pool = pool;
    w->index = index;
    w->is_external = index >= pool->n_workers;
    w->rng = baton_mix64(0x9e3779b97f4a7c15u * (index + 1)) | 1u;
    w->spin_ns = pool->spin_ns;
    baton__parker_init(&w->parker);
    return 0;
}

static void baton__worker_fini(baton__worker *w)
{
    baton__deque_destroy(&w->deque);
    while (w->slabs != NULL) {
        baton__slab *next = w->slabs->next;
        baton__free(w->slabs);
        w->slabs = next;
    }
}

static bool baton__try_claim(baton__worker *slot)
{
    uint32_t expected = 0;
    /* Acquire pairs with the release store that freed the slot: the previous holder's writes to
     * the slot's free lists and deque are visible. */
    return baton__load_relaxed(&slot->slot_taken) == 0 &&
           baton__cas_strong_acquire(&slot->slot_taken, &expected, 1);
}

/* A free external slot for the calling thread, claimed: one of the configured ones, else one
 * made earlier on demand, else a new one; NULL only without memory for a new one.
 *
 * A slot is made only while there are fewer slots than outside calls in progress (calls, which
 * counts this one): each of those holds at most one slot, claimed after its call was counted
 * and freed before it is uncounted, so with at least as many slots as calls one is free, and the
 * caller scans again instead. The reservation is a CAS on n_overflow, so the pool never has more
 * slots than its configured ones or the most outside calls ever in progress at once. */
static baton__worker *baton__claim_slot(baton_pool *pool)
{
    uint32_t configured = pool->n_total - pool->n_workers;
    for (;;) {
        for (unsigned i = pool->n_workers; i < pool->n_total; i++) {
            if (baton__try_claim(&pool->workers[i]))
                return &pool->workers[i];
        }
        /* Acquire pairs with the seq_cst CAS below: a listed slot is initialised. */
        baton__worker *head = baton__load_acquire(&pool->overflow);
        for (baton__worker *slot = head; slot != NULL; slot = slot->overflow_next) {
            if (baton__try_claim(slot))
                return slot;
        }
        /* Relaxed: these only decide whether to scan again or to make a slot; a stale value
         * costs one more scan, or one slot made a moment early. */
        uint32_t inside = baton__load_relaxed(&pool->calls) & BATON__CALLS_MASK;
        uint32_t made = baton__load_relaxed(&pool->n_overflow);
        if (configured + made >= inside)
            continue; /* a slot is free right now: someone freed one behind the scan */
        if (!atomic_compare_exchange_strong_explicit(&pool->n_overflow, &made, made + 1,
                                                     memory_order_relaxed, memory_order_relaxed))
            continue;
        baton__worker *slot = baton__aligned_alloc(BATON_CACHELINE, sizeof *slot);
        if (slot == NULL || baton__worker_init(pool, slot, pool->n_total + made) != 0) {
            baton__free(slot);
            baton__fetch_sub_relaxed(&pool->n_overflow, 1);
            return NULL;
        }
        atomic_init(&slot->slot_taken, 1);
        /* The list only grows while the pool lives (slots are reused, freed with the pool), so
         * readers walk it without any protocol. seq_cst: the slot's deque joins the deques a
         * worker about to sleep re-checks (sleep.c), and release pairs with the readers'
         * acquire loads. */
        head = baton__load_relaxed(&pool->overflow);
        do {
            slot->overflow_next = head;
        } while (!atomic_compare_exchange_weak_explicit(&pool->overflow, &head, slot,
                                                        memory_order_seq_cst,
                                                        memory_order_relaxed));
        return slot;
    }
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
     * a slot could deadlock with itself. */
    baton__worker *outer = baton__find_context(pool);
    if (outer != NULL)
        return baton__run_as(outer, body, arg);

    /* One atomic step both counts us and tells whether destroy has begun. */
    if (baton__fetch_add_acq_rel(&pool->calls, 1) & BATON__CLOSING) {
        baton__leave_call(pool);
        return baton__error(BATON_ECLOSED, "the pool is being destroyed");
    }

    baton__worker *slot = baton__claim_slot(pool);
    int rc;
    if (slot == NULL) {
        rc = baton__error(BATON_ENOMEM, "every external slot of the pool is taken and no memory "
                          "for another (%zu bytes)", sizeof *slot);
    } else {
        rc = baton__run_as(slot, body, arg);
        /* Release pairs with the next claimer's acquire CAS. */
        baton__store_release(&slot->slot_taken, 0);
    }
    baton__leave_call(pool);
    return rc;
}

static void baton__pool_free(baton_pool *pool, unsigned n_initialised)
{
    for (unsigned i = 0; i < n_initialised; i++)
        baton__worker_fini(&pool->workers[i]);
    baton__worker *slot = baton__load_acquire(&pool->overflow);
    while (slot != NULL) {
        baton__worker *next = slot->overflow_next;
        baton__worker_fini(slot);
        baton__free(slot);
        slot = next;
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
    int size_rc = baton__config_copy("baton_pool_create", "config", "baton_pool_config", config,
                                     &cfg, sizeof cfg);
    if (size_rc != 0)
        return size_rc;
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
    for (unsigned i = 0; i < pool->n_total; i++) {
        if (baton__worker_init(pool, &pool->workers[i], i) != 0) {
            baton__pool_free(pool, i);
            return baton__error(BATON_ENOMEM, "baton_pool_create: out of memory for deques");
        }
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
        /* Acquire pairs with the CAS that added a slot. */
        for (const baton__worker *slot = baton__load_acquire(&pool->overflow); slot != NULL;
             slot = slot->overflow_next)
            baton__stats_add(out, slot);
    }
    return 0;
}
