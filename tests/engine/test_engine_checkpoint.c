/*
 * test_engine_checkpoint.c — the engine's checkpoints (include/baton/engine.h) within one
 * process, on a pool of --workers (resume in a new engine, damaged files and a killed process:
 * test_engine_resume.c):
 *  - create-time config errors, each with the field it names; bad checkpoint names;
 *  - checkpoint, run on, restore (by name, NULL for the newest): the state byte for byte and
 *    the step counter as at the checkpoint, in memory and in files; ENOTFOUND for a name not
 *    kept; a state with no rows and a state whose rows changed;
 *  - restore then continue gives the fingerprints of an uninterrupted run (replay RECORD drops
 *    what comes after the restored step; VERIFY rewinds);
 *  - retention with policy EVERY keeps exactly K, in memory and on disk;
 *  - another schema is BATON_EMISMATCH naming the first difference;
 *  - failed allocations at every point of checkpoint and restore leave the engine unchanged;
 *  - a write that fails (the file size limit) names the file and leaves no .tmp behind;
 *  - a large checkpoint on two or more workers is two files, and restores, recycles, resumes,
 *    fails to write (nothing left behind) and is checked (a damaged, missing or foreign part)
 *    as one.
 */
#include "support/bt_common.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baton/engine.h"
#include "core/alloc.h"
#include "support/bt_engine_checkpoint.h" /* also the pool group: g_pool, g_workers */

/* The size of a checkpoint of BT_CKPT_ROWS rows of this test's schema called name (the format). */
static size_t expected_size(size_t rows, const char *name)
{
    /* header, no identity (its length), schema, rows, an empty placement (its count), the
     * name, the checksum */
    return 36 + 1 + 3 * (2 + 1) + rows * (8 + 8 + 4 + 8) + 8 + 1 + strlen(name) + 8;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_config_errors(void **state)
{
    (void)state;
    baton_state *st = bt_new_state(10, false);
    baton_engine *engine = NULL;
    const struct {
        baton_checkpoint_policy policy;
        uint64_t every;
        unsigned keep;
        const char *dir, *message;
    } bad[] = {
        {(baton_checkpoint_policy)7, 1, 1, NULL, "checkpoint_policy 7"},
        {BATON_CHECKPOINT_EVERY, 0, 2, NULL, "checkpoint_every 0"},
        {BATON_CHECKPOINT_EVERY, 3, 0, NULL, "checkpoint_keep 0"},
        {BATON_CHECKPOINT_DISABLED, 0, 0, "", "checkpoint_dir"},
    };
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, NULL, 0, 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.checkpoint_policy = bad[i].policy;
        cfg.checkpoint_every = bad[i].every;
        cfg.checkpoint_keep = bad[i].keep;
        cfg.checkpoint_dir = bad[i].dir;
        bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_EINVAL, bad[i].message, NULL);
    }

    /* checkpoint_identity: at most BATON_CHECKPOINT_IDENTITY_MAX printable ASCII bytes. */
    cfg = bt_ckpt_config(BATON_REPLAY_OFF, NULL, 0, 0);
    char long_id[BATON_CHECKPOINT_IDENTITY_MAX + 2];
    memset(long_id, 'i', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    cfg.checkpoint_identity = long_id;
    bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_EINVAL, "checkpoint_identity",
                    "256 bytes", NULL);
    cfg.checkpoint_identity = "tab\there";
    bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_EINVAL, "checkpoint_identity",
                    "0x09 at 3", NULL);
    assert_null(engine);
    long_id[BATON_CHECKPOINT_IDENTITY_MAX] = '\0'; /* 255 bytes, and "": fine */
    const char *fine[] = {long_id, "", " ~"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        cfg.checkpoint_identity = fine[i];
        bt_assert_rc(baton_engine_create(&cfg, bt_new_state(10, false), &engine), 0);
        bt_assert_rc(baton_engine_checkpoint(engine, NULL), 0);
        bt_assert_rc(baton_engine_restore(engine, NULL), 0);
        baton_engine_destroy(engine);
    }
    cfg = bt_ckpt_config(BATON_REPLAY_OFF, NULL, 0, 0);

    /* A directory that cannot be created: a regular file, and below one. */
    char dir[512], below[600];
    bt_ckpt_tmpdir(dir, sizeof dir);
    snprintf(below, sizeof below, "%s/plain", dir);
    bt_write_file(below, (const unsigned char *)"x", 1);
    cfg.checkpoint_dir = below;
    bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_EIO, below, NULL);
    snprintf(below, sizeof below, "%s/plain/sub", dir);
    bt_expect_error(baton_engine_create(&cfg, st, &engine), BATON_EIO, below, "Not a directory",
                    NULL);
    assert_null(engine);
    /* Missing parents are created. */
    snprintf(below, sizeof below, "%s/a/b/c/", dir);
    bt_assert_rc(baton_engine_create(&cfg, st, &engine), 0);
    struct stat sb;
    assert_true(stat(below, &sb) == 0 && S_ISDIR(sb.st_mode));
    baton_engine_destroy(engine);
    bt_remove_tree(dir);

    /* keep 0 with DISABLED means 1. */
    cfg = bt_ckpt_config(BATON_REPLAY_OFF, NULL, 0, 0);
    engine = bt_new_engine(&cfg);
    bt_assert_rc(baton_engine_checkpoint(engine, "a"), 0);
    bt_assert_rc(baton_engine_checkpoint(engine, "b"), 0);
    size_t n = 0;
    baton_checkpoint_info info[4];
    bt_assert_rc(baton_engine_checkpoints(engine, info, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(info[0].name, "b");

    const char *q64 = "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq";
    bt_expect_error(baton_engine_checkpoint(engine, ""), BATON_EINVAL, "bad checkpoint name", NULL);
    bt_expect_error(baton_engine_checkpoint(engine, "a/b"), BATON_EINVAL, "\"a/b\"", NULL);
    bt_expect_error(baton_engine_checkpoint(engine, q64), BATON_EINVAL, "1 to 63", NULL);
    bt_assert_rc(baton_engine_checkpoint(engine, q64 + 1), 0); /* 63 bytes */
    bt_expect_error(baton_engine_checkpoint(NULL, "a"), BATON_EINVAL, "engine is NULL", NULL);
    bt_expect_error(baton_engine_restore(NULL, NULL), BATON_EINVAL, "engine", NULL);
    bt_expect_error(baton_engine_restore(engine, "a b"), BATON_EINVAL, "bad checkpoint name", NULL);
    bt_expect_error(baton_engine_resume(engine, NULL), BATON_EINVAL, "dir", NULL);
    bt_expect_error(baton_engine_checkpoints(engine, NULL, 1, &n), BATON_EINVAL, "out", NULL);
    bt_expect_error(baton_engine_checkpoints(engine, NULL, 0, NULL), BATON_EINVAL, "out_n", NULL);
    bt_assert_rc(baton_engine_checkpoints(engine, NULL, 0, &n), 0);
    assert_int_equal(n, 1);
    baton_engine_destroy(engine);
}

/* Checkpoint, run on, restore by name and NULL: state and step as they were; in memory and in
 * files. */
static void test_restore(void **state)
{
    (void)state;
    for (int files = 0; files < 2; files++) {
        char dir[512], names[4][128], want[700];
        bt_ckpt_tmpdir(dir, sizeof dir);
        baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, files ? dir : NULL, 0, 5);
        baton_engine *engine = bt_new_engine(&cfg);
        baton_state *st = baton_engine_state(engine);
        bt_run_steps(engine, 3);
        bt_snap at3 = bt_snap_take(engine);
        bt_assert_rc(baton_engine_checkpoint(engine, "three"), 0);
        bt_run_steps(engine, 4);
        bt_snap at7 = bt_snap_take(engine);
        bt_assert_rc(baton_engine_checkpoint(engine, NULL), 0);
        bt_run_steps(engine, 2);

        baton_checkpoint_info info[8];
        size_t n = 0;
        bt_assert_rc(baton_engine_checkpoints(engine, info, 8, &n), 0);
        assert_int_equal(n, 2);
        assert_true(strcmp(info[0].name, "three") == 0 && info[0].step == 3);
        assert_true(strcmp(info[1].name, "manual") == 0 && info[1].step == 7);
        assert_int_equal(info[0].bytes, expected_size(BT_CKPT_ROWS, "three"));
        assert_int_equal(info[1].bytes, expected_size(BT_CKPT_ROWS, "manual"));
        if (files) {
            assert_int_equal(bt_ckpt_files(dir, names, 4), 2);
            bt_ckpt_path(want, sizeof want, NULL, 3, "three");
            assert_string_equal(names[0], want);
            bt_ckpt_path(want, sizeof want, dir, 3, "three");
            struct stat sb;
            assert_int_equal(stat(want, &sb), 0);
            assert_int_equal((size_t)sb.st_size, info[0].bytes);
            /* info's path names the file, which exists. */
            assert_non_null(info[0].path);
            assert_string_equal(info[0].path, want);
            bt_ckpt_path(want, sizeof want, dir, 7, "manual");
            assert_non_null(info[1].path);
            assert_string_equal(info[1].path, want);
            assert_int_equal(stat(info[1].path, &sb), 0);
            assert_int_equal((size_t)sb.st_size, info[1].bytes);
        } else {
            assert_true(info[0].path == NULL && info[1].path == NULL);
        }

        bt_assert_rc(baton_engine_restore(engine, "three"), 0);
        bt_snap_check(&at3, engine);
        assert_ptr_equal(baton_engine_state(engine), st); /* the same handle, restored */
        bt_run_steps(engine, 1);
        bt_assert_rc(baton_engine_restore(engine, NULL), 0); /* the newest: "manual" at 7 */
        bt_snap_check(&at7, engine);
        bt_expect_error(baton_engine_restore(engine, "nine"), BATON_ENOTFOUND, "\"nine\"", NULL);
        bt_snap_check(&at7, engine);
        /* Restoring keeps the checkpoints; the same key again replaces the kept one. */
        bt_assert_rc(baton_engine_restore(engine, "three"), 0);
        bt_assert_rc(baton_engine_checkpoint(engine, "three"), 0);
        bt_assert_rc(baton_engine_checkpoints(engine, info, 8, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(info[1].name, "three");
        if (files)
            assert_int_equal(bt_ckpt_files(dir, names, 4), 2);
        baton_engine_metrics m;
        bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
        assert_int_equal(m.checkpoints_created, 3);
        baton_engine_destroy(engine);

        /* An engine without checkpoints has nothing to restore. */
        engine = bt_new_engine(&cfg);
        bt_expect_error(baton_engine_restore(engine, NULL), BATON_ENOTFOUND, "0 kept", NULL);
        baton_engine_destroy(engine);
        free(at3.bytes);
        free(at7.bytes);
        bt_remove_tree(dir);
    }
}

/* Rows removed and added after the checkpoint come back; a state of no rows round-trips. */
static void test_rows_change(void **state)
{
    (void)state;
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, NULL, 0, 0);
    baton_engine *engine = bt_new_engine(&cfg);
    bt_run_steps(engine, 2);
    bt_snap before = bt_snap_take(engine);
    bt_assert_rc(baton_engine_checkpoint(engine, "x"), 0);
    baton_state *st = baton_engine_state(engine);
    const uint64_t gone[] = {7, 7 + 5 * 100, 7 + 5 * (uint64_t)(BT_CKPT_ROWS - 1)},
                   extra[] = {1, 2, 3};
    bt_assert_rc(baton_state_remove_rows(st, gone, 3), 0);
    bt_assert_rc(baton_state_add_rows(st, extra, 3, NULL), 0);
    bt_assert_rc(baton_engine_restore(engine, "x"), 0);
    bt_snap_check(&before, engine);
    size_t row = 0;
    bt_expect_error(baton_state_find(st, 2, &row), BATON_ENOTFOUND, NULL);
    free(before.bytes);
    baton_engine_destroy(engine);

    baton_state *empty = NULL;
    bt_assert_rc(baton_state_create(NULL, 0, &empty), 0);
    bt_assert_rc(baton_engine_create(&cfg, empty, &engine), 0);
    bt_assert_rc(baton_engine_step(engine, NULL), 0);
    bt_assert_rc(baton_engine_checkpoint(engine, "empty"), 0);
    bt_assert_rc(baton_engine_step(engine, NULL), 0);
    bt_assert_rc(baton_engine_restore(engine, NULL), 0);
    assert_int_equal(baton_engine_current_step(engine), 1);
    assert_int_equal(baton_state_rows(baton_engine_state(engine)), 0);
    baton_engine_destroy(engine);
}

/* Restore and continue: the same fingerprints as a run without interruption (VERIFY after a
 * restore: test_engine_resume.c). */
static void test_restore_then_continue(void **state)
{
    (void)state;
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_RECORD, NULL, 0, 0);
    baton_engine *whole = bt_new_engine(&cfg);
    bt_run_steps(whole, 20);
    const baton_replay_entry *want = NULL, *got = NULL;
    size_t n_want = 0, n_got = 0;
    bt_assert_rc(baton_engine_recording(whole, &want, &n_want), 0);
    assert_int_equal(n_want, 20);

    baton_engine *broken = bt_new_engine(&cfg);
    bt_run_steps(broken, 8);
    bt_assert_rc(baton_engine_checkpoint(broken, "eight"), 0);
    bt_run_steps(broken, 6);
    bt_assert_rc(baton_engine_restore(broken, "eight"), 0);
    bt_assert_rc(baton_engine_recording(broken, &got, &n_got), 0);
    assert_int_equal(n_got, 8); /* steps 8 .. 13 dropped */
    bt_run_steps(broken, 12);
    bt_assert_rc(baton_engine_recording(broken, &got, &n_got), 0);
    assert_int_equal(n_got, n_want);
    assert_memory_equal(got, want, n_want * sizeof *want);

    baton_engine_destroy(broken);
    baton_engine_destroy(whole);
}

/* EVERY N keeps exactly the newest K, in memory and on disk (synced). Once K are kept, each
 * new checkpoint is written over the oldest's file or blob: rows removed midway make those
 * larger than needed, and the newest must still restore exactly. */
static void test_retention(void **state)
{
    (void)state;
    for (int files = 0; files < 2; files++) {
        char dir[512], names[8][128], want[700];
        bt_ckpt_tmpdir(dir, sizeof dir);
        baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, files ? dir : NULL, 3, 2);
        cfg.checkpoint_sync = files == 1;
        baton_engine *engine = bt_new_engine(&cfg);
        bt_snap at18 = {0};
        for (unsigned s = 1; s <= 20; s++) {
            if (s == 11) {
                const uint64_t gone[] = {7, 12, 7 + 5 * 500};
                bt_assert_rc(baton_state_remove_rows(baton_engine_state(engine), gone, 3), 0);
                bt_assert_rc(baton_engine_set_plan(engine, NULL), 0);
            }
            bt_run_steps(engine, 1);
            if (s == 18)
                at18 = bt_snap_take(engine);
            baton_checkpoint_info info[4];
            size_t n = 0, taken = s / 3;
            bt_assert_rc(baton_engine_checkpoints(engine, info, 4, &n), 0);
            assert_int_equal(n, taken < 2 ? taken : 2);
            for (size_t i = 0; i < n; i++) {
                assert_string_equal(info[i].name, "auto");
                assert_int_equal(info[i].step, 3 * (taken - n + 1 + i));
            }
            if (files)
                assert_int_equal(bt_ckpt_files(dir, names, 8), n);
            for (size_t i = 0; files && i < n; i++) {
                bt_ckpt_path(want, sizeof want, NULL, info[i].step, "auto");
                assert_string_equal(names[i], want);
                bt_ckpt_path(want, sizeof want, dir, info[i].step, "auto");
                struct stat sb;
                assert_int_equal(stat(want, &sb), 0);
                assert_int_equal((size_t)sb.st_size, info[i].bytes);
            }
        }
        bt_assert_rc(baton_engine_restore(engine, NULL), 0);
        bt_snap_check(&at18, engine);
        free(at18.bytes);
        baton_engine_metrics m;
        bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
        assert_int_equal(m.checkpoints_created, 6);
        baton_engine_destroy(engine);
        bt_remove_tree(dir);
    }
}

static void test_schema_mismatch(void **state)
{
    (void)state;
    char dir[512];
    bt_ckpt_tmpdir(dir, sizeof dir);
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, dir, 0, 0);
    baton_engine *engine = bt_new_engine(&cfg);
    bt_run_steps(engine, 2);
    bt_assert_rc(baton_engine_checkpoint(engine, "two"), 0);
    /* A column added since: the checkpoint lacks it. */
    baton_column_spec z = {"z", BATON_COLUMN_DOUBLE};
    bt_assert_rc(baton_state_add_column(baton_engine_state(engine), &z), 0);
    bt_expect_error(baton_engine_restore(engine, "two"), BATON_EMISMATCH,
                    "column 3 is \"z\" (double) in the engine, absent from the file", NULL);
    assert_int_equal(baton_engine_current_step(engine), 2);
    assert_int_equal(baton_state_columns(baton_engine_state(engine)), 4);
    baton_engine_destroy(engine);

    /* An engine whose column 0 has another type. */
    cfg.checkpoint_dir = NULL;
    bt_assert_rc(baton_engine_create(&cfg, bt_new_state(10, true), &engine), 0);
    bt_expect_error(baton_engine_resume(engine, dir), BATON_EMISMATCH,
                    "column 0 is \"x\" (double) in the file, \"x\" (float) in the engine", NULL);
    assert_int_equal(baton_engine_current_step(engine), 0);
    assert_int_equal(baton_state_rows(baton_engine_state(engine)), 10);
    baton_engine_destroy(engine);
    bt_remove_tree(dir);
}

/* Every allocation of checkpoint and restore failing in turn: ENOMEM and the engine unchanged,
 * until enough succeed. No pool, so that nothing else allocates meanwhile. */
static void test_alloc_failures(void **state)
{
    (void)state;
    for (int files = 0; files < 2; files++) {
        char dir[512];
        bt_ckpt_tmpdir(dir, sizeof dir);
        baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_RECORD, files ? dir : NULL, 0, 3);
        cfg.pool = NULL;
        baton_engine *engine = bt_new_engine(&cfg);
        bt_run_steps(engine, 2);
        bt_assert_rc(baton_engine_checkpoint(engine, "two"), 0);
        bt_run_steps(engine, 1);
        bt_snap before = bt_snap_take(engine);
        int rc = BATON_ENOMEM;
        size_t n = 0;
        for (long k = 0; rc == BATON_ENOMEM; k++) {
            baton__alloc_fail_after(k);
            rc = baton_engine_checkpoint(engine, "three");
            baton__alloc_fail_after(-1);
            bt_assert_rc(baton_engine_checkpoints(engine, NULL, 0, &n), 0);
            assert_int_equal(n, rc == 0 ? 2 : 1);
        }
        bt_assert_rc(rc, 0);
        rc = BATON_ENOMEM;
        for (long k = 0; rc == BATON_ENOMEM; k++) {
            baton__alloc_fail_after(k);
            rc = baton_engine_restore(engine, "two");
            baton__alloc_fail_after(-1);
            assert_true(rc == 0 || rc == BATON_ENOMEM);
            assert_int_equal(baton_engine_current_step(engine), rc == 0 ? 2 : 3);
            if (rc == 0)
                bt_run_steps(engine, 1); /* back to where it was */
            bt_snap_check(&before, engine);
        }
        free(before.bytes);
        baton_engine_destroy(engine);
        bt_remove_tree(dir);
    }
}

/* A write that fails (the file size limit): EIO naming the .tmp file and the system's error,
 * no .tmp left; the kept list is unchanged, except that a write over the oldest's file
 * (recycling, K kept) costs that one. */
static void test_write_failure(void **state)
{
    (void)state;
    char dir[512], names[4][128], tmp[700];
    bt_ckpt_tmpdir(dir, sizeof dir);
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, dir, 0, 2);
    baton_engine *engine = bt_new_engine(&cfg);
    bt_assert_rc(baton_engine_checkpoint(engine, "a"), 0);
    struct rlimit saved, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN); /* the write fails with EFBIG instead */
    for (size_t kept = 1; kept <= 2; kept++) {
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
        int rc = baton_engine_checkpoint(engine, "b");
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
        bt_ckpt_path(tmp, sizeof tmp, dir, 0, "b");
        strcat(tmp, ".tmp");
        bt_expect_error(rc, BATON_EIO, "cannot write", tmp, strerror(EFBIG), NULL);
        /* With 1 kept nothing is lost; with 2, "a" (recycled) is. */
        baton_checkpoint_info info[4];
        size_t n = 0;
        bt_assert_rc(baton_engine_checkpoints(engine, info, 4, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(info[0].name, kept == 1 ? "a" : "c");
        assert_int_equal(bt_ckpt_files(dir, names, 4), 1);
        assert_int_equal(access(tmp, F_OK), -1);
        if (kept == 1)
            bt_assert_rc(baton_engine_checkpoint(engine, "c"), 0); /* now K = 2 are kept */
    }
    bt_assert_rc(baton_engine_checkpoint(engine, "b"), 0);
    bt_assert_rc(baton_engine_restore(engine, "b"), 0);
    signal(SIGXFSZ, SIG_DFL);
    baton_engine_destroy(engine);
    bt_remove_tree(dir);
}

/* Restoring checkpoint `name` fails with BATON_EIO, its message containing `why`; the state
 * stays as it was. */
static void expect_restore_eio(baton_engine *engine, const char *name, const char *why)
{
    bt_snap before = bt_snap_take(engine);
    bt_expect_error(baton_engine_restore(engine, name), BATON_EIO, name, why, NULL);
    bt_snap_check(&before, engine);
    free(before.bytes);
}

/* A large checkpoint on a pool of two or more workers is written as two files (the main one and
 * its ".part"), each by its own thread: both restore to the state byte for byte, recycling
 * reuses both files, retention deletes both; a damaged part, a missing one and the part of
 * another checkpoint are each found and named. */
static void test_two_parts(void **state)
{
    (void)state;
    enum { BIG = 200000 }; /* 28 bytes a row: 5.6 MB, above the size that is split */
    baton_pool *pool = g_pool;
    if (g_workers < 2) {
        baton_pool_config pc = bt_pool_config(2, 0, 0);
        bt_assert_rc(baton_pool_create(&pc, &pool), 0);
    }
    char dir[512], path[3][700], part[3][720], names[8][128];
    bt_ckpt_tmpdir(dir, sizeof dir);
    baton_engine_config cfg = {
        .struct_size = sizeof cfg, .pool = pool, .checkpoint_keep = 2, .checkpoint_dir = dir};
    baton_engine *engine = NULL;
    baton_state *st = bt_new_state(BIG, false);
    bt_assert_rc(baton_engine_create(&cfg, st, &engine), 0);
    baton_phase_spec a = {"advance", bt_advance, NULL, bt_writes_advance, 2, BATON_PHASE_INFALLIBLE,
                          0};
    bt_assert_rc(baton_engine_add_phase(engine, &a), 0);
    const char *const names3[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        bt_ckpt_path(path[i], sizeof path[i], dir, (uint64_t)i + 1, names3[i]);
        strcpy(part[i], path[i]); /* room: 700 + ".part" */
        strcat(part[i], ".part");
    }

    bt_run_steps(engine, 1);
    bt_snap one = bt_snap_take(engine);
    bt_assert_rc(baton_engine_checkpoint(engine, "one"), 0);
    struct stat sm, sp;
    assert_int_equal(stat(path[0], &sm), 0);
    assert_int_equal(stat(part[0], &sp), 0);
    baton_checkpoint_info info[2];
    size_t n = 0;
    bt_assert_rc(baton_engine_checkpoints(engine, info, 2, &n), 0);
    assert_int_equal((size_t)(sm.st_size + sp.st_size), info[0].bytes);
    assert_non_null(info[0].path); /* the main file; its part is path + ".part" */
    assert_string_equal(info[0].path, path[0]);
    assert_int_equal(info[0].bytes, expected_size(BIG, "one") + 16); /* two more checksums */
    assert_true(sm.st_size > (off_t)(2u << 20) && sp.st_size > (off_t)(2u << 20));
    bt_run_steps(engine, 1);
    bt_assert_rc(baton_engine_checkpoint(engine, "two"), 0);
    bt_snap two = bt_snap_take(engine);
    bt_run_steps(engine, 1);
    bt_assert_rc(baton_engine_restore(engine, "one"), 0);
    bt_snap_check(&one, engine);
    /* The third writes over the oldest's two files; retention leaves two checkpoints, four files.
     */
    bt_run_steps(engine, 2);
    bt_assert_rc(baton_engine_checkpoint(engine, "three"), 0);
    assert_int_equal(bt_ckpt_files(dir, names, 8), 2);
    assert_true(stat(path[0], &sm) != 0 && stat(part[0], &sp) != 0);
    assert_true(stat(part[1], &sp) == 0 && stat(part[2], &sp) == 0);
    bt_assert_rc(baton_engine_restore(engine, "two"), 0);
    bt_snap_check(&two, engine);

    /* Three's part in place of two's: each checks out alone, but not together. */
    size_t size2 = 0, size3 = 0;
    unsigned char *part2 = bt_read_file(part[1], &size2), *part3 = bt_read_file(part[2], &size3);
    bt_write_file(part[1], part3, size3);
    expect_restore_eio(engine, "two", "not the one its main file was written with");
    part2[size2 / 2] ^= 0x40; /* damaged */
    bt_write_file(part[1], part2, size2);
    expect_restore_eio(engine, "two", "its part's checksum does not match");
    assert_int_equal(unlink(part[1]), 0);
    expect_restore_eio(engine, "two", ".part");
    bt_assert_rc(baton_engine_restore(engine, "three"), 0);
    bt_snap three = bt_snap_take(engine);
    baton_engine_destroy(engine);

    /* A new engine resumes from both files, and counts both in the checkpoint's size. */
    bt_assert_rc(baton_engine_create(&cfg, bt_new_state(BIG, false), &engine), 0);
    bt_assert_rc(baton_engine_resume(engine, dir), 0);
    bt_snap_check(&three, engine);
    bt_assert_rc(baton_engine_checkpoints(engine, info, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(info[1].bytes, expected_size(BIG, "three") + 16);

    /* Both writers fail (the file size limit): EIO naming a .tmp file; neither file, nor the
     * recycled oldest ("two"), is left; "three" still restores. */
    struct rlimit saved, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN); /* the writes fail with EFBIG instead */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = baton_engine_checkpoint(engine, "four");
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, SIG_DFL);
    bt_expect_error(rc, BATON_EIO, "cannot write", ".tmp", strerror(EFBIG), NULL);
    bt_assert_rc(baton_engine_checkpoints(engine, info, 2, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(info[0].name, "three");
    assert_int_equal(bt_ckpt_files(dir, names, 8), 1);
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t files = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 2); /* three's main file and part */
    bt_assert_rc(baton_engine_restore(engine, "three"), 0);
    bt_snap_check(&three, engine);
    baton_engine_destroy(engine);
    free(three.bytes);
    if (pool != g_pool)
        baton_pool_destroy(pool);
    free(part2);
    free(part3);
    free(one.bytes);
    free(two.bytes);
    bt_remove_tree(dir);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),  cmocka_unit_test(test_restore),
        cmocka_unit_test(test_rows_change),    cmocka_unit_test(test_restore_then_continue),
        cmocka_unit_test(test_retention),      cmocka_unit_test(test_schema_mismatch),
        cmocka_unit_test(test_alloc_failures), cmocka_unit_test(test_write_failure),
        cmocka_unit_test(test_two_parts),
    };
    return cmocka_run_group_tests_name("engine/checkpoint", tests, group_setup, group_teardown);
}
