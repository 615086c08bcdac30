/*
 * sched.h — what other layers may use of the pool's scheduler: to run code on the calling
 * thread as a worker of a pool, to hand the pool jobs that its workers run and steal, and to
 * help run them while waiting. The workers, deques, latches and forks behind it are
 * pool/internal.h's, which only src/pool/ (and white-box tests) include.
 *
 * A job is a header (struct baton__job) embedded in a structure of its owner's, which decides
 * where it lives; running it never frees it. Every function here that takes a worker must be
 * called by the thread that is that worker (inside baton__call's body, or a job it runs).
 */
#ifndef BATON_POOL_SCHED_H
#define BATON_POOL_SCHED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "baton/pool.h"

typedef struct baton__worker baton__worker;
typedef struct baton__job baton__job;

struct baton__job {
    void (*exec)(baton__job *job, baton__worker *executor);
};

/* ---- pool.c ---- */

/* Runs body(worker, arg) on the calling thread as a worker of pool: directly when the caller
 * already is one, else on an external slot (made on demand when every one is taken). Returns
 * body's result, BATON_ECLOSED, or BATON_ENOMEM (no memory for another slot). */
int baton__call(baton_pool *pool, int (*body)(baton__worker *w, void *arg), void *arg);

/* Runs one job on w, counting it. */
void baton__execute(baton__worker *w, baton__job *job);

/* How many jobs are running on the calling thread's stack as its innermost worker: 1 in a job a
 * worker took from its main loop (or that a caller runs while waiting in baton_scope_run from
 * outside the pool), more in a job run while another waits below it (work-while-waiting), 0
 * outside any job. A job that blocks until an event of its own must not do so when nested: the
 * job below it cannot resume until it returns. */
unsigned baton__execution_depth(void);

/* Finds a job for w: its own deque, then stealing. NULL if none. A worker
 * that was woken up and finds a job passes the wake-up on if more work is visible. */
baton__job *baton__find_work(baton__worker *w);

/* Pushes job on w's deque, where any worker of the pool may steal it (every job there becomes
 * stealable), and wakes a sleeping worker for it. Returns 0, or BATON_ENOMEM (no message set)
 * when the deque could not grow: then job was not pushed, and the caller runs it itself. */
int baton__publish_job(baton__worker *w, baton__job *job);

/* The pool's count of workers that have nothing to do, to read with a relaxed load: a hint
 * that changes at any time, for deciding whether splitting work now may feed a worker. Valid
 * while the pool lives. */
const _Atomic uint32_t *baton__pool_idle_workers(const baton_pool *pool);

/* Whether the calling thread runs as a worker of pool, at any depth: one of its workers, or a
 * thread inside baton__call on one of its external slots (as in baton_scope_run from outside). */
bool baton__pool_runs_caller(const baton_pool *pool);

#endif /* BATON_POOL_SCHED_H */
