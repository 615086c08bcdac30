/*
 * test_engine_promises.c — promises of include/baton/engine.h that the other engine tests did
 * not check, each written from the header's wording, on a pool of --workers:
 *  - config struct_size: fields past it read as 0 (an invalid checkpoint_identity past it is
 *    not seen), 0 means this header's size, a size larger than it or shorter than a size_t is
 *    BATON_EINVAL with no engine made;
 *  - the default plan: locally one partition of every row, run on the thread that steps,
 *    whatever the pool's workers, and set_plan(NULL) goes back to it;
 *  - metrics: a step refused by its plan counts as failed, as a step whose phase failed does;
 *    partitions of failed steps are not counted; a checkpoint kept in memory counts in
 *    resident_bytes; an engine of infallible phases keeps no undo copies;
 *  - baton_engine_run: one report per step run, *out_done, n 0, NULL engine;
 *  - the recording: entries in step order, as the reports had them; verify with nothing loaded
 *    is exhausted at step 0 with a message saying the recording holds 0 steps;
 *  - replay_load: verification starts at the first entry >= the current step; a failed load
 *    leaves the recording as it was; replay_save leaves no path.tmp and names the path on EIO;
 *  - the policy takes no checkpoint after a step whose verification failed;
 *  - baton_engine_checkpoints with cap below the kept count: cap filled, *out_n the count.
 */
#include "support/bt_common.h"

#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baton/engine.h"
#include "support/bt_engine.h"

BT_DEFINE_POOL_GROUP()

#define ROWS 5003u

static baton_engine *engine_on(const baton_engine_config *cfg, size_t rows, unsigned flags)
{
    baton_engine *engine = NULL;
    bt_assert_rc(baton_engine_create(cfg, bt_new_state(rows, false), &engine), 0);
    baton_phase_spec a = {"advance", bt_advance, NULL, bt_writes_advance, 2, flags, 0};
    baton_phase_spec c = {"couple", bt_couple, NULL, bt_writes_couple, 1, flags, 0};
    bt_assert_rc(baton_engine_add_phase(engine, &a), 0);
    bt_assert_rc(baton_engine_add_phase(engine, &c), 0);
    return engine;
}

static baton_engine_config pool_config(baton_replay_mode replay)
{
    return (baton_engine_config){
        .struct_size = sizeof(baton_engine_config), .pool = g_pool, .replay = replay};
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(out, cap, "%s/baton-promises-%ld-%s", dir != NULL && dir[0] ? dir : "/tmp",
             (long)getpid(), name);
}

/* ---- config ------------------------------------------------------------------------------ */

static int engine_try_struct_size(size_t struct_size, bool *created, void *ctx)
{
    (void)ctx;
    baton_engine_config cfg = pool_config(BATON_REPLAY_OFF);
    cfg.struct_size = struct_size;
    baton_state *st = bt_new_state(4, false);
    baton_engine *engine = NULL;
    int rc = baton_engine_create(&cfg, st, &engine);
    if (engine != NULL) {
        *created = true;
        baton_engine_destroy(engine);
    } else {
        baton_state_destroy(st); /* on error the caller keeps it */
    }
    return rc;
}

static void test_struct_size(void **state)
{
    (void)state;
    baton_engine_config cfg = pool_config(BATON_REPLAY_OFF);
    cfg.checkpoint_identity = "bad\tidentity"; /* refused when seen */
    baton_engine *engine = NULL;
    baton_state *st = bt_new_state(4, false);
    bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_EINVAL, "checkpoint_identity",
                    NULL);
    cfg.struct_size = offsetof(baton_engine_config, checkpoint_identity); /* an older caller */
    bt_assert_rc(baton_engine_create(&cfg, st, &engine), 0);
    baton_engine_destroy(engine);
    cfg.struct_size = 0; /* this header's: the identity is seen again */
    st = bt_new_state(4, false);
    bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_EINVAL, "checkpoint_identity",
                    NULL);
    baton_state_destroy(st); /* on error the caller keeps it */
    /* Larger than this header's, or shorter than a size_t: BATON_EINVAL, no engine. */
    bt_check_struct_size("baton_engine_config", sizeof(baton_engine_config),
                         engine_try_struct_size, NULL);
}

/* ---- the default plan ---------------------------------------------------------------------- */

typedef struct seen {
    atomic_uint calls;
    size_t begin, end; /* partition 0's call */
    pthread_t thread;  /* the thread that made it */
} seen;

static int record_range(baton_state *st, size_t begin, size_t end, size_t partition, uint64_t step,
                        void *ctx)
{
    (void)st;
    (void)step;
    seen *s = ctx;
    atomic_fetch_add(&s->calls, 1);
    if (partition == 0) { /* one writer under any plan */
        s->begin = begin;
        s->end = end;
        s->thread = pthread_self();
    }
    return 0;
}

static void expect_single(baton_engine *engine, seen *s, size_t rows)
{
    atomic_store(&s->calls, 0);
    bt_assert_rc(baton_engine_step(engine, NULL), 0);
    assert_int_equal(atomic_load(&s->calls), 1);
    assert_true(s->begin == 0 && s->end == rows);
    assert_true(pthread_equal(s->thread, pthread_self())); /* run on the thread that steps */
}

static void test_default_plan(void **state)
{
    (void)state;
    baton_engine_config cfg = pool_config(BATON_REPLAY_OFF);
    baton_engine *engine = NULL;
    bt_assert_rc(baton_engine_create(&cfg, bt_new_state(ROWS, false), &engine), 0);
    seen s = {0};
    baton_phase_spec p = {"record", record_range, &s, NULL, 0, BATON_PHASE_INFALLIBLE, 0};
    bt_assert_rc(baton_engine_add_phase(engine, &p), 0);
    expect_single(engine, &s, ROWS); /* on a pool of g_workers: still one partition */
    baton_plan *plan = NULL;
    bt_assert_rc(baton_plan_create_static(ROWS, 3, g_workers, &plan), 0);
    bt_assert_rc(baton_engine_set_plan(engine, plan), 0);
    baton_plan_destroy(plan); /* the engine uses a copy */
    atomic_store(&s.calls, 0);
    bt_assert_rc(baton_engine_step(engine, NULL), 0);
    assert_int_equal(atomic_load(&s.calls), 3);
    bt_assert_rc(baton_engine_set_plan(engine, NULL), 0);
    expect_single(engine, &s, ROWS);
    bt_expect_error(baton_engine_set_plan(NULL, NULL), BATON_EINVAL, "engine", NULL);
    baton_engine_destroy(engine);
}

/* ---- metrics ------------------------------------------------------------------------------- */

static int fail_always(baton_state *st, size_t begin, size_t end, size_t partition, uint64_t step,
                       void *ctx)
{
    (void)st, (void)begin, (void)end, (void)partition, (void)step, (void)ctx;
    return BATON_ERANGE;
}

static void test_metrics(void **state)
{
    (void)state;
    baton_engine_config cfg = pool_config(BATON_REPLAY_OFF);
    baton_engine *engine = engine_on(&cfg, ROWS, 0);
    bt_assert_rc(baton_engine_step(engine, NULL), 0);
    baton_engine_metrics m;
    bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
    assert_int_equal(m.partition_steps, 2);
    assert_int_equal(m.partition_rows, 2 * ROWS);

    /* A plan that does not fit: the step fails before any phase, and counts as failed. */
    baton_plan *plan = NULL;
    bt_assert_rc(baton_plan_create_static(ROWS + 1, 2, g_workers, &plan), 0);
    bt_assert_rc(baton_engine_set_plan(engine, plan), 0);
    baton_plan_destroy(plan);
    bt_expect_error(baton_engine_step(engine, NULL), BATON_ERANGE, "out of bounds", NULL);
    bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
    assert_int_equal(m.steps_failed, 1);
    assert_int_equal(m.steps_completed, 1);
    bt_assert_rc(baton_engine_set_plan(engine, NULL), 0);

    /* A failing phase: failed, and its partitions not counted. */
    baton_phase_spec f = {"fail", fail_always, NULL, bt_writes_couple, 1, 0, 0};
    bt_assert_rc(baton_engine_add_phase(engine, &f), 0);
    bt_expect_error(baton_engine_step(engine, NULL), BATON_ERANGE, "\"fail\"", NULL);
    bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
    assert_int_equal(m.steps_failed, 2);
    assert_int_equal(m.partition_steps, 2);
    assert_int_equal(m.current_step, 1);

    /* A checkpoint in memory counts in resident_bytes. */
    size_t before = m.resident_bytes;
    bt_assert_rc(baton_engine_checkpoint(engine, "m"), 0);
    baton_checkpoint_info info;
    size_t n = 0;
    bt_assert_rc(baton_engine_checkpoints(engine, &info, 1, &n), 0);
    bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
    assert_int_equal(m.resident_bytes, before + info.bytes);
    baton_engine_destroy(engine);

    /* Infallible phases: no undo copies (those of the written columns x, n and y otherwise). */
    baton_engine *fallible = engine_on(&cfg, ROWS, 0);
    baton_engine *infallible = engine_on(&cfg, ROWS, BATON_PHASE_INFALLIBLE);
    bt_assert_rc(baton_engine_step(fallible, NULL), 0);
    bt_assert_rc(baton_engine_step(infallible, NULL), 0);
    baton_engine_metrics mf, mi;
    bt_assert_rc(baton_engine_get_metrics(fallible, &mf), 0);
    bt_assert_rc(baton_engine_get_metrics(infallible, &mi), 0);
    assert_true(mf.resident_bytes >= mi.resident_bytes + ROWS * (8 + 8 + 4));
    baton_engine_destroy(fallible);
    baton_engine_destroy(infallible);
    bt_expect_error(baton_engine_get_metrics(NULL, &m), BATON_EINVAL, "engine", NULL);
}

/* ---- run, recording, replay files ------------------------------------------------------------ */

static void test_run_and_recording(void **state)
{
    (void)state;
    baton_engine_config cfg = pool_config(BATON_REPLAY_RECORD);
    baton_engine *engine = engine_on(&cfg, ROWS, 0);
    uint64_t done = 99;
    bt_assert_rc(baton_engine_run(engine, 0, NULL, &done), 0);
    assert_int_equal(done, 0);
    baton_step_report reports[5];
    bt_assert_rc(baton_engine_run(engine, 5, reports, &done), 0);
    assert_int_equal(done, 5);
    const baton_replay_entry *entries = NULL;
    size_t n = 0;
    bt_assert_rc(baton_engine_recording(engine, &entries, &n), 0);
    assert_int_equal(n, 5);
    for (unsigned s = 0; s < 5; s++) {
        assert_int_equal(reports[s].step, s);
        assert_int_equal(entries[s].step, s);
        assert_int_equal(entries[s].fingerprint, reports[s].fingerprint);
    }
    bt_expect_error(baton_engine_recording(NULL, &entries, &n), BATON_EINVAL, NULL);
    done = 99;
    bt_expect_error(baton_engine_run(NULL, 3, NULL, &done), BATON_EINVAL, "engine", NULL);
    assert_int_equal(done, 0);

    /* Save: atomic (no .tmp left); a directory that does not exist: EIO naming the path. */
    char path[512], tmp[600], missing[600];
    tmp_path(path, sizeof path, "rec");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(missing, sizeof missing, "%s-no-such-dir/rec", path);
    bt_assert_rc(baton_engine_replay_save(engine, path), 0);
    struct stat sb;
    assert_true(stat(path, &sb) == 0 && stat(tmp, &sb) != 0);
    bt_expect_error(baton_engine_replay_save(engine, missing), BATON_EIO, missing, NULL);
    baton_engine_destroy(engine);

    /* Verify with nothing loaded: exhausted at step 0. */
    cfg.replay = BATON_REPLAY_VERIFY;
    baton_engine *ver = engine_on(&cfg, ROWS, 0);
    bt_expect_error(baton_engine_step(ver, NULL), BATON_EEOF, "step 0",
                    "the recording holds 0 steps)", NULL);
    baton_engine_destroy(ver);
    /* Loaded again at step 2: verification starts at entry 2 (entry 0 would be a step
     * mismatch). */
    ver = engine_on(&cfg, ROWS, 0);
    bt_assert_rc(baton_engine_replay_load(ver, path), 0);
    bt_assert_rc(baton_engine_run(ver, 2, NULL, NULL), 0);
    bt_assert_rc(baton_engine_replay_load(ver, path), 0);
    /* A load that fails leaves the loaded recording. */
    bt_expect_error(baton_engine_replay_load(ver, missing), BATON_EIO, missing, NULL);
    bt_assert_rc(baton_engine_recording(ver, &entries, &n), 0);
    assert_int_equal(n, 5);
    bt_assert_rc(baton_engine_run(ver, 3, NULL, NULL), 0);
    baton_engine_metrics m;
    bt_assert_rc(baton_engine_get_metrics(ver, &m), 0);
    assert_int_equal(m.fingerprints_verified, 5);
    baton_engine_destroy(ver);
    unlink(path);
}

/* No automatic checkpoint after a step whose verification failed. */
static void test_no_checkpoint_after_divergence(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "div");
    baton_engine_config cfg = pool_config(BATON_REPLAY_RECORD);
    baton_engine *rec = engine_on(&cfg, ROWS, 0);
    bt_assert_rc(baton_engine_run(rec, 4, NULL, NULL), 0);
    bt_assert_rc(baton_engine_replay_save(rec, path), 0);
    baton_engine_destroy(rec);

    cfg.replay = BATON_REPLAY_VERIFY;
    cfg.checkpoint_policy = BATON_CHECKPOINT_EVERY;
    cfg.checkpoint_every = 1;
    cfg.checkpoint_keep = 8;
    baton_engine *ver = engine_on(&cfg, ROWS, 0);
    bt_assert_rc(baton_engine_replay_load(ver, path), 0);
    bt_assert_rc(baton_engine_run(ver, 2, NULL, NULL), 0);     /* checkpoints after steps 1, 2 */
    baton_state_int64(baton_engine_state(ver), BT_COL_N)[7] += 1; /* the next step diverges */
    bt_expect_error(baton_engine_step(ver, NULL), BATON_EMISMATCH, "step 2", NULL);
    assert_int_equal(baton_engine_current_step(ver), 3); /* applied and counted */
    baton_checkpoint_info info[8];
    size_t n = 0;
    bt_assert_rc(baton_engine_checkpoints(ver, info, 8, &n), 0);
    assert_int_equal(n, 2);
    assert_true(info[0].step == 1 && info[1].step == 2);
    /* cap below the kept count: cap of them, *out_n all. */
    baton_checkpoint_info one = {0};
    bt_assert_rc(baton_engine_checkpoints(ver, &one, 1, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(one.step, 1);
    baton_engine_destroy(ver);
    unlink(path);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_struct_size),
        cmocka_unit_test(test_default_plan),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_run_and_recording),
        cmocka_unit_test(test_no_checkpoint_after_divergence),
    };
    return cmocka_run_group_tests_name("engine/promises", tests, group_setup, group_teardown);
}
