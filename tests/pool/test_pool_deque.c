/*
 * test_pool_deque.c — the work-stealing deque with a private end (src/pool/deque.c), tested
 * directly: one owner pushes (privately or publicly), publishes and pops in a random mix while N
 * thieves steal; every job must be taken exactly once, by the owner or by one thief, whatever the
 * mix, including across growth of the array and the race for the last job. Run with 1 to 16 thieves
 * (oversubscribed on 2 cores), and single-threaded for the owner-only semantics.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "support/bt_common.h"

#include "pool/deque.h"
#include "pool/internal.h"

typedef struct test_job {
    baton__job job; /* first: the deque holds pointers to it */
    size_t id;
} test_job;

static unsigned g_thieves = 1;

/* ---- owner only ------------------------------------------------------------------------------- */

static void test_lifo_for_the_owner(void **state)
{
    (void)state;
    baton__deque d;
    assert_int_equal(baton__deque_init(&d, 16), 0);
    test_job jobs[100];
    for (size_t i = 0; i < 100; i++) {
        jobs[i].id = i;
        /* A mix of private and public pushes: the owner sees one LIFO either way. */
        assert_int_equal(baton__deque_push(&d, &jobs[i].job, i % 3 == 0), 0);
    }
    for (size_t i = 100; i-- > 0;) {
        baton__job *job = baton__deque_pop(&d);
        assert_ptr_equal(job, &jobs[i].job);
    }
    assert_null(baton__deque_pop(&d));
    assert_null(baton__deque_pop(&d));
    baton__deque_destroy(&d);
}

static void test_thief_sees_only_public_jobs(void **state)
{
    (void)state;
    baton__deque d;
    assert_int_equal(baton__deque_init(&d, 16), 0);
    test_job jobs[4];
    bool lost;
    assert_int_equal(baton__deque_push(&d, &jobs[0].job, false), 0);
    assert_int_equal(baton__deque_push(&d, &jobs[1].job, false), 0);
    assert_false(baton__deque_has_public(&d));
    assert_null(baton__deque_steal(&d, &lost));
    assert_false(lost);
    baton__deque_publish(&d);
    assert_true(baton__deque_has_public(&d));
    /* Thieves take the oldest first. */
    assert_ptr_equal(baton__deque_steal(&d, &lost), &jobs[0].job);
    assert_int_equal(baton__deque_push(&d, &jobs[2].job, false), 0);
    /* jobs[1] is public, jobs[2] private: a thief gets 1, then nothing. */
    assert_ptr_equal(baton__deque_steal(&d, &lost), &jobs[1].job);
    assert_null(baton__deque_steal(&d, &lost));
    assert_ptr_equal(baton__deque_pop(&d), &jobs[2].job);
    assert_null(baton__deque_pop(&d));
    assert_null(baton__deque_steal(&d, &lost));
    baton__deque_destroy(&d);
}

static void test_growth_keeps_every_job(void **state)
{
    (void)state;
    baton__deque d;
    assert_int_equal(baton__deque_init(&d, 1), 0); /* rounded up to the minimum */
    const size_t n = 10000;
    test_job *jobs = calloc(n, sizeof *jobs);
    assert_non_null(jobs);
    bool lost;
    for (size_t i = 0; i < n; i++) {
        jobs[i].id = i;
        assert_int_equal(baton__deque_push(&d, &jobs[i].job, i % 2 == 0), 0);
    }
    /* Steal the public half from the top, pop the rest from the bottom. */
    size_t stolen = 0;
    baton__job *job;
    while ((job = baton__deque_steal(&d, &lost)) != NULL) {
        assert_ptr_equal(job, &jobs[stolen].job);
        stolen++;
    }
    assert_int_equal(stolen, n - 1); /* the last push was private (n - 1 is odd) */
    assert_ptr_equal(baton__deque_pop(&d), &jobs[n - 1].job);
    assert_null(baton__deque_pop(&d));
    baton__deque_destroy(&d);
    free(jobs);
}

/* ---- owner against thieves -------------------------------------------------------------------- */

typedef struct race {
    baton__deque deque;
    test_job *jobs;
    size_t n_jobs;
    atomic_uchar *taken; /* per job: how many times it was taken */
    atomic_int done;     /* the owner has finished */
    atomic_size_t stolen;
} race;

static void take(race *r, baton__job *job)
{
    size_t id = ((test_job *)job)->id;
    BT_CHECK_MSG(id < r->n_jobs, "job id %zu out of range", id);
    unsigned char before = atomic_fetch_add(&r->taken[id], 1);
    BT_CHECK_MSG(before == 0, "job %zu taken twice", id);
}

static void *thief_main(void *arg)
{
    race *r = arg;
    size_t mine = 0;
    for (;;) {
        bool lost;
        baton__job *job = baton__deque_steal(&r->deque, &lost);
        if (job != NULL) {
            take(r, job);
            mine++;
            continue;
        }
        if (atomic_load(&r->done) && !lost)
            break;
        sched_yield();
    }
    atomic_fetch_add(&r->stolen, mine);
    return NULL;
}

static void run_race(unsigned thieves, uint64_t seed)
{
    race r;
    r.n_jobs = bt_scaled(1000000, 20000);
    r.jobs = calloc(r.n_jobs, sizeof *r.jobs);
    r.taken = calloc(r.n_jobs, sizeof *r.taken);
    assert_non_null(r.jobs);
    assert_non_null(r.taken);
    for (size_t i = 0; i < r.n_jobs; i++) {
        r.jobs[i].id = i;
        atomic_init(&r.taken[i], 0);
    }
    atomic_init(&r.done, 0);
    atomic_init(&r.stolen, 0);
    assert_int_equal(baton__deque_init(&r.deque, 16), 0);

    pthread_t ids[16];
    for (unsigned t = 0; t < thieves; t++)
        assert_int_equal(pthread_create(&ids[t], NULL, thief_main, &r), 0);

    /* The owner: bursts of pushes (private or public, so the array grows and shrinks back),
     * then pops, with publications in between, so that private pops, public pops and the race
     * for the last job all happen while thieves steal. */
    bt_rng rng = bt_rng_seed(seed);
    size_t next = 0, popped = 0;
    while (next < r.n_jobs) {
        size_t burst = 1 + bt_rng_below(&rng, 64);
        for (size_t k = 0; k < burst && next < r.n_jobs; k++, next++) {
            bool publish = bt_rng_below(&rng, 4) == 0;
            BT_CHECK(baton__deque_push(&r.deque, &r.jobs[next].job, publish) == 0);
        }
        if (bt_rng_below(&rng, 3) == 0)
            baton__deque_publish(&r.deque);
        size_t pops = bt_rng_below(&rng, burst + 8);
        for (size_t k = 0; k < pops; k++) {
            baton__job *job = baton__deque_pop(&r.deque);
            if (job == NULL)
                break;
            take(&r, job);
            popped++;
        }
    }
    baton__job *job;
    while ((job = baton__deque_pop(&r.deque)) != NULL) {
        take(&r, job);
        popped++;
    }
    atomic_store(&r.done, 1);
    for (unsigned t = 0; t < thieves; t++)
        pthread_join(ids[t], NULL);
    bt_assert_no_thread_failures();

    size_t stolen = atomic_load(&r.stolen);
    assert_int_equal(popped + stolen, r.n_jobs);
    for (size_t i = 0; i < r.n_jobs; i++) {
        if (atomic_load(&r.taken[i]) != 1)
            fail_msg("job %zu taken %u times", i, (unsigned)atomic_load(&r.taken[i]));
    }
    printf("# %u thieves: %zu jobs, %zu popped by the owner, %zu stolen\n", thieves, r.n_jobs,
           popped, stolen);
    baton__deque_destroy(&r.deque);
    free(r.jobs);
    free(r.taken);
}

static void test_every_job_taken_once(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++)
        run_race(g_thieves, seed * 0x9e3779b97f4a7c15u);
}

/* ---- a join finds a job of someone else above its fork ------------------------------------ *
 * Every job joins what it forks, so a join should never find a job of someone else above its
 * fork; if one is there all the same, the join must run it, not drop it: here A leaves such a
 * job on the deque, and it must run exactly once: by the join, or by a worker that stole it
 * (it is public).
 */
typedef struct foreign_job {
    baton__job job;
    atomic_int ran;
} foreign_job;

static void foreign_exec(baton__job *job, baton__worker *executor)
{
    (void)executor;
    atomic_fetch_add(&((foreign_job *)job)->ran, 1);
}

typedef struct foreign_ctx {
    foreign_job foreign;
    atomic_int b_ran;
    int push_rc;
} foreign_ctx;

static int leave_foreign_job(void *arg)
{
    foreign_ctx *ctx = arg;
    ctx->push_rc = baton__deque_push(&baton__current->deque, &ctx->foreign.job, true);
    return 0;
}

static int count_b(void *arg)
{
    atomic_fetch_add(&((foreign_ctx *)arg)->b_ran, 1);
    return 0;
}

static void test_join_runs_foreign_job_above_its_fork(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 4; workers *= 2) {
        baton_pool *pool = bt_pool_create(workers);
        for (int round = 0; round < 100; round++) {
            foreign_ctx ctx = {.push_rc = -1};
            ctx.foreign.job.exec = foreign_exec;
            atomic_init(&ctx.foreign.ran, 0);
            atomic_init(&ctx.b_ran, 0);
            bt_assert_rc(baton_join(pool, leave_foreign_job, &ctx, count_b, &ctx), 0);
            assert_int_equal(ctx.push_rc, 0);
            assert_int_equal(atomic_load(&ctx.b_ran), 1);
            /* The job is public: another worker may have stolen it, and then runs it on its own
             * time. The join owes it a run only when it finds it above its fork; either way it
             * must run exactly once. */
            bt_wait_flag(&ctx.foreign.ran, 10000);
            if (atomic_load(&ctx.foreign.ran) != 1)
                fail_msg("round %d, %u workers: the job left above the fork ran %d times",
                         round, workers, atomic_load(&ctx.foreign.ran));
        }
        bt_pool_destroy(pool);
    }
}

int main(int argc, char **argv)
{
    g_thieves = bt_init(argc, argv, 1);
    if (g_thieves > 16)
        g_thieves = 16;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifo_for_the_owner),
        cmocka_unit_test(test_thief_sees_only_public_jobs),
        cmocka_unit_test(test_growth_keeps_every_job),
        cmocka_unit_test(test_every_job_taken_once),
        cmocka_unit_test(test_join_runs_foreign_job_above_its_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
