/*
 * join.c — fork-join: the primitive every parallel construct of the pool is made of.
 *
 * DESIGN (rayon's join, rayon-core/src/join/mod.rs): the second half B is a job in the forking
 * frame; it is pushed on the forker's deque, the forker runs A, then pops. Work-stealing deques
 * are LIFO for the owner, and everything A forked A also joined before returning, so the pop
 * returns B itself unless a thief took it (thieves take the oldest job first, so B goes last);
 * a job found above B all the same is run on the way down, not dropped.
 * Not stolen: B runs inline, at the cost of a push and a pop and no read-modify-write unless B
 * was the deque's last public job. Stolen: the forker helps with other work until B's latch is
 * set. Nothing is allocated.
 *
 * baton_join's fork is pushed private (deque.c) unless it is among the oldest
 * BATON__PUBLIC_FORKS jobs of the deque: a private fork costs no fence to push or pop back, and
 * becomes stealable as soon as some worker is idle, at the forker's next push or pop. The
 * oldest forks of a recursion are the coarse ones, so keeping them public means an idle worker
 * finds the big pieces at once; only the fine-grained forks near the leaves go private. Forks of
 * the loops are pushed public, because a loop piece can run long without another push.
 *
 * When A fails, B is skipped if it was not stolen; if it was, the forker sets B's skip flag so a
 * thief that has not started it yet does not run it.
 */
#include "baton/core.h"
#include "core/atomic.h"
#include "core/error.h"
#include "pool/internal.h"

/* How many of the oldest jobs of a deque baton_join keeps public. */
#define BATON__PUBLIC_FORKS 4

static void baton__fork_exec(baton__job *job, baton__worker *executor)
{
    baton__fork *fork = (baton__fork *)job;
    if (baton__load_relaxed(&fork->skip) != 0)
        fork->result = BATON_ECANCELED;
    else
        fork->result = fork->run(fork, executor, true);
    baton__latch_set(&fork->done);
}

/*
 * After A: pops w's deque back down to `fork`. Returns true when it got fork back (the caller
 * runs it inline), false when fork was taken elsewhere (stolen, or run by a wait further down
 * this stack). Jobs found above fork are not the caller's to drop: every job joins what it
 * forked, so none should be there, but one that is (a job pushed by code that does not join
 * it) is run here rather than lost (rayon's join does the same).
 */
static bool baton__reclaim_fork(baton__worker *w, baton__job *fork)
{
    for (;;) {
        baton__job *job = baton__deque_pop(&w->deque);
        if (job == fork)
            return true;
        if (job == NULL)
            return false;
        baton__execute(w, job);
    }
}

int baton__fork_join(baton__worker *w, baton__fork *fork,
                     int (*run_a)(baton__worker *w, void *a_ctx), void *a_ctx)
{
    fork->job.exec = baton__fork_exec;
    atomic_init(&fork->skip, 0);
    baton__latch_init(&fork->done, w);

    if (baton__deque_push(&w->deque, &fork->job, true) != 0) {
        /* The deque could not grow: run both halves here, in order. */
        int rc = run_a(w, a_ctx);
        return rc != 0 ? rc : fork->run(fork, w, false);
    }
    baton__notify_work(w->pool);

    int rc_a = run_a(w, a_ctx);

    if (baton__reclaim_fork(w, &fork->job)) {
        if (rc_a != 0)
            return rc_a;
        baton__owner_increment(&w->tasks_executed);
        return fork->run(fork, w, false);
    }
    /* B was stolen (or run by a wait of ours further down the stack). */
    if (rc_a != 0)
        baton__store_relaxed(&fork->skip, 1);
    baton__work_until(w, &fork->done);
    return rc_a != 0 ? rc_a : fork->result;
}

typedef struct baton__task_fork {
    baton__fork fork;
    baton_task_fn fn;
    void *ctx;
    /* B's error message when a thief ran it and it failed; read after the fork's latch. */
    char message[BATON__CARRIED_MESSAGE_CAPACITY];
} baton__task_fork;

/* Only a thief runs B through here (the forker calls fn_b itself). */
static int baton__task_fork_run(baton__fork *fork, baton__worker *executor, bool migrated)
{
    (void)executor;
    (void)migrated;
    baton__task_fork *tf = (baton__task_fork *)fork;
    uint64_t serial = baton__error_serial;
    int rc = tf->fn(tf->ctx);
    if (rc != 0)
        baton__work_error_message(tf->message, sizeof tf->message, "baton_join", "fn_b", rc,
                                  serial);
    return rc;
}

/* Returns rc, the error of fn_a or fn_b (what) that ran on this thread since its error serial
 * was `serial`, with a message that belongs to it. */
static int baton__join_error(int rc, const char *what, uint64_t serial)
{
    char message[BATON__CARRIED_MESSAGE_CAPACITY];
    baton__work_error_message(message, sizeof message, "baton_join", what, rc, serial);
    return baton__error(rc, "%s", message);
}

/* Runs B on the forker's own thread. */
static int baton__join_run_b_here(baton_task_fn fn_b, void *ctx_b)
{
    uint64_t serial = baton__error_serial;
    int rc = fn_b(ctx_b);
    return rc != 0 ? baton__join_error(rc, "fn_b", serial) : 0;
}

typedef struct baton__join_args {
    baton_task_fn fn_a, fn_b;
    void *ctx_a, *ctx_b;
} baton__join_args;

/* The fork-join of two user tasks, written out rather than through baton__fork_join: this is the
 * path fine-grained recursion takes millions of times, so it keeps to the fewest stores and
 * calls (the fork is filled with only the fields a thief or the pop reads). */
static int baton__join_tasks(baton__worker *w, baton_task_fn fn_a, void *ctx_a, baton_task_fn fn_b,
                             void *ctx_b)
{
    baton__task_fork b;
    b.fork.job.exec = baton__fork_exec;
    b.fork.run = baton__task_fork_run;
    atomic_init(&b.fork.skip, 0);
    baton__latch_init(&b.fork.done, w);
    b.fn = fn_b;
    b.ctx = ctx_b;

    /* The oldest few forks of a deque are public: they carry the most work, and a worker that
     * turns idle later can take them even while their forker runs a long A. Deeper forks are
     * private: free of fences, shared at once only if some worker is idle. */
    bool shallow = w->deque.bottom - baton__load_relaxed(&w->deque.top) < BATON__PUBLIC_FORKS;
    uint64_t serial = baton__error_serial;
    if (baton__deque_push(&w->deque, &b.fork.job, shallow) != 0) {
        int rc = fn_a(ctx_a);
        if (rc != 0)
            return baton__join_error(rc, "fn_a", serial);
        return baton__join_run_b_here(fn_b, ctx_b);
    }
    if (shallow)
        baton__notify_work(w->pool);
    else
        baton__share_if_idle(w);

    int rc_a = fn_a(ctx_a);
    /* A's message now, before this thread runs anything else (reclaiming, waiting). */
    char a_message[BATON__CARRIED_MESSAGE_CAPACITY];
    if (rc_a != 0)
        baton__work_error_message(a_message, sizeof a_message, "baton_join", "fn_a", rc_a,
                                  serial);

    bool reclaimed = baton__reclaim_fork(w, &b.fork.job);
    baton__share_if_idle(w);
    if (reclaimed) {
        if (rc_a != 0)
            return baton__error(rc_a, "%s", a_message);
        baton__owner_increment(&w->tasks_executed);
        return baton__join_run_b_here(fn_b, ctx_b);
    }
    if (rc_a != 0)
        baton__store_relaxed(&b.fork.skip, 1);
    baton__work_until(w, &b.fork.done);
    if (rc_a != 0)
        return baton__error(rc_a, "%s", a_message);
    if (b.fork.result != 0)
        return baton__error(b.fork.result, "%s", b.message);
    return 0;
}

static int baton__join_in(baton__worker *w, void *arg)
{
    const baton__join_args *args = arg;
    return baton__join_tasks(w, args->fn_a, args->ctx_a, args->fn_b, args->ctx_b);
}

int baton_join(baton_pool *pool, baton_task_fn fn_a, void *ctx_a, baton_task_fn fn_b,
               void *ctx_b)
{
    baton__worker *w = baton__current;
    if (w != NULL && w->pool == pool && fn_a != NULL && fn_b != NULL)
        return baton__join_tasks(w, fn_a, ctx_a, fn_b, ctx_b);
    if (pool == NULL || fn_a == NULL || fn_b == NULL) {
        return baton__error(BATON_EINVAL, "baton_join: pool (%s), fn_a (%s) and fn_b (%s) must "
                            "not be NULL", pool ? "set" : "NULL", fn_a ? "set" : "NULL",
                            fn_b ? "set" : "NULL");
    }
    baton__join_args args = {fn_a, fn_b, ctx_a, ctx_b};
    return baton__call(pool, baton__join_in, &args);
}
