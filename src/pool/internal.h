/*
 * internal.h — the pool's shared internal types (workers, latches, forks, the pool) and the
 * functions its files define for one another, in sections named after the defining file. What
 * other layers may use (jobs, baton__call, helping while waiting) is in pool/sched.h, which this
 * includes; deque.c's functions are in pool/deque.h.
 *
 * Every thread that runs work of a pool does so as a baton__worker: the pool's own threads, and
 * outside threads while they hold an external slot. A thread knows which worker it is through a
 * thread-local pointer (baton__current).
 */
#ifndef BATON_POOL_INTERNAL_H
#define BATON_POOL_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/pool.h"
#include "core/os.h"
#include "core/park.h"
#include "core/topology.h"
#include "pool/deque.h"
#include "pool/sched.h"

/* A one-shot event that one waiter (owner) waits for and one thread sets. */
typedef struct baton__latch {
    _Atomic uint32_t state; /* BATON__LATCH_UNSET, _SET, _SLEEPING */
    baton__worker *owner;   /* woken by baton__latch_set when it sleeps */
} baton__latch;

enum { BATON__LATCH_UNSET = 0, BATON__LATCH_SET = 1, BATON__LATCH_SLEEPING = 2 };

/*
 * The second half of a fork-join: a job that lives in the forking frame. run() is called exactly
 * once, by the forker itself (migrated = false) or by a thief (migrated = true), unless skip was
 * set first (then result = BATON_ECANCELED).
 */
typedef struct baton__fork baton__fork;
struct baton__fork {
    baton__job job;
    int (*run)(baton__fork *fork, baton__worker *executor, bool migrated);
    baton__latch done;
    _Atomic uint32_t skip; /* set by the forker when its first half failed */
    int result;
};

/* A spawned scope task. Records come from slabs owned by one worker (origin) and go back to it. */
typedef struct baton__task_record baton__task_record;
struct baton__task_record {
    baton__job job;
    baton_task_fn fn;
    void *ctx;
    baton_scope *scope;
    baton__worker *origin;
    baton__task_record *next_free;
};

#define BATON__SLAB_RECORDS 64
typedef struct baton__slab {
    struct baton__slab *next;
    baton__task_record records[BATON__SLAB_RECORDS];
} baton__slab;

struct baton__worker {
    baton__deque deque;
    baton_pool *pool;
    unsigned index;     /* 0 .. n_workers-1 for pool threads, then the external slots */
    bool is_external;
    uint64_t rng;       /* xorshift state for victim selection; owner only */
    bool idle;          /* counted in pool->n_idle; owner only */
    bool waking;        /* counted in pool->n_waking; owner only */
    uint64_t spin_ns;   /* how long this worker searches before parking now; owner only */
    unsigned depth;     /* jobs running on this worker's stack, nested ones included; owner */

    /* Task records: the local free list is owner-only; records freed by other threads come back
     * through remote_free, a lock-free stack the owner empties in one exchange. */
    baton__task_record *free_records;
    baton__slab *slabs;
    BATON_CACHELINE_ALIGNED _Atomic(baton__task_record *) remote_free;

    /* Sleeping: sleepy is 1 while the worker has announced it may park (wakers claim it by
     * exchanging it to 0 and unparking). It sits on its own line because wakers poll it. */
    BATON_CACHELINE_ALIGNED _Atomic uint32_t sleepy;
    baton__parker parker;
    _Atomic uint32_t slot_taken; /* external slots: 1 while an outside thread holds it */

    /* Counters, written by the owner only (relaxed load + store), read by anyone. */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t tasks_executed;
    _Atomic uint64_t steals;
    _Atomic uint64_t steal_failures;
    _Atomic uint64_t parks;

    baton__thread *thread;
    int start_error; /* pool threads: pinning result, read after the start-up handshake */
    /* Slots made on demand: the next one on the pool's overflow list; set before the slot is
     * published, then never changed. */
    baton__worker *overflow_next;
};

struct baton_pool {
    unsigned n_workers;
    unsigned n_total;    /* n_workers + external slots */
    unsigned flags;
    uint64_t spin_ns;     /* the configured search time before parking */
    uint64_t max_spin_ns; /* how far a worker woken often may stretch it */
    baton__worker *workers; /* n_total entries */
    baton__topology *topology;
    char name[32];

    /* Number of workers with sleepy == 1: a cheap test for "is anyone to wake". Written on every
     * sleep and wake, read on every push: a line of its own. */
    BATON_CACHELINE_ALIGNED _Atomic uint32_t n_sleepy;
    /* Number of workers with nothing to do (searching, waiting or asleep). Owners read it on
     * every fork to decide whether to publish their private jobs; it changes only when a
     * worker runs out of work or finds some, so the line stays shared while everyone is busy. */
    _Atomic uint32_t n_idle;
    /* Workers a waker has claimed and unparked that have not yet found work or gone back to
     * sleep. While one is on its way, publishers do not wake another: the one that wakes up
     * wakes the next if there is more to do (Go's scheduler does the same with its spinning
     * threads), so a caller pays for at most one wake-up system call. */
    _Atomic uint32_t n_waking;
    _Atomic uint32_t wake_cursor; /* where the next wake-one scan starts, to spread wake-ups */

    /* External slots made on demand when every configured one was taken: a list that only
     * grows (pushed at the head by CAS) and is freed with the pool. */
    BATON_CACHELINE_ALIGNED _Atomic(baton__worker *) overflow;
    _Atomic uint32_t n_overflow; /* how many: numbers the new ones for messages */

    /* Life cycle. */
    /* Outside calls in progress, and BATON__CLOSING once destroy has begun. One word, so that the
     * last call out learns with the same atomic operation whether destroy waits for it, and
     * touches the pool no more after it (see baton__leave_call). */
    BATON_CACHELINE_ALIGNED _Atomic uint32_t calls;
    _Atomic uint32_t shutdown;  /* workers must exit */
    _Atomic uint32_t started;   /* workers that finished start-up */
};

#define BATON__CLOSING 0x80000000u
#define BATON__CALLS_MASK 0x7fffffffu

/* baton__current (pool.c): the worker the calling thread is, or NULL. Every fork reads it, so it
 * uses the initial-exec TLS model: a direct %fs-relative load instead of a call to
 * __tls_get_addr, which the default model for position-independent code would make. The library
 * is linked at start-up, not dlopen()ed late, in every supported use; glibc keeps spare static
 * TLS for the other case. */
#if defined(__GNUC__) || defined(__clang__)
#define BATON__TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define BATON__TLS_MODEL
#endif

/* Every worker the calling thread is, innermost first: a pool thread is its own worker, and each
 * call into another pool (through an external slot) adds one, in a record on that call's stack.
 * baton__current is the head's worker. */
typedef struct baton__context {
    baton__worker *worker;
    struct baton__context *outer;
} baton__context;

/* ---- pool.c (beyond what pool/sched.h declares) ---- */

extern _Thread_local baton__worker *baton__current BATON__TLS_MODEL;
extern _Thread_local baton__context *baton__contexts BATON__TLS_MODEL;

/* Runs jobs of the pool on w until latch is set (work-while-waiting), or, with latch NULL,
 * until the pool shuts down (a pool thread's life); searches, spins, then parks between jobs. */
void baton__work_until(baton__worker *w, baton__latch *latch);

/* ---- sleep.c ---- */

/* Sets latch and wakes its owner if it sleeps on it. */
void baton__latch_set(baton__latch *latch);
/* Tells sleeping workers that new work was published; wakes one if any sleeps and no other is
 * already on its way. */
void baton__notify_work(baton_pool *pool);
/* A woken worker found work (or stops looking): no longer on its way; wakes another sleeper if
 * work is still visible. */
void baton__waking_pass_on(baton__worker *w);
/* One step of idleness for w after a fruitless search: announces itself sleepy, re-checks for
 * work (and latch, if not NULL), and parks if there is still nothing. */
void baton__sleep(baton__worker *w, baton__latch *latch);

/* ---- join.c ---- */

/* Runs run_a(w, a_ctx) and fork->run concurrently; see baton__fork. Returns run_a's error if it
 * failed (fork skipped when not started), else the fork's result. */
int baton__fork_join(baton__worker *w, baton__fork *fork,
                     int (*run_a)(baton__worker *w, void *a_ctx), void *a_ctx);

/* ---- inline, for every file of the pool ---- */

static inline void baton__latch_init(baton__latch *latch, baton__worker *owner)
{
    atomic_init(&latch->state, BATON__LATCH_UNSET);
    latch->owner = owner;
}

static inline bool baton__latch_is_set(baton__latch *latch)
{
    /* Acquire pairs with the release exchange in baton__latch_set: the setter's writes (a
     * fork's result, a scope's task effects) are visible once this returns true. */
    return atomic_load_explicit(&latch->state, memory_order_acquire) == BATON__LATCH_SET;
}

/* Idleness bookkeeping: a worker that finds no work says so once, and takes it back when it
 * finds some. */
static inline void baton__idle_enter(baton__worker *w)
{
    if (!w->idle) {
        w->idle = true;
        atomic_fetch_add_explicit(&w->pool->n_idle, 1, memory_order_relaxed);
    }
}

static inline void baton__idle_leave(baton__worker *w)
{
    if (w->idle) {
        w->idle = false;
        atomic_fetch_sub_explicit(&w->pool->n_idle, 1, memory_order_relaxed);
    }
}

/* After a private push or pop: if some worker is idle, make w's private jobs stealable and wake
 * a sleeper for them. Relaxed: this only decides how soon work is shared, never whether. */
static inline void baton__share_if_idle(baton__worker *w)
{
    baton_pool *pool = w->pool;
    if (atomic_load_explicit(&pool->n_idle, memory_order_relaxed) != 0 &&
        w->deque.bottom != w->deque.owner_split) {
        baton__deque_publish(&w->deque);
        baton__notify_work(pool);
    }
}

#endif /* BATON_POOL_INTERNAL_H */
