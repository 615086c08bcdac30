/*
 * test_engine_resume.c — resuming the engine from its checkpoint files (include/baton/engine.h),
 * on a pool of --workers (checkpoints within one process: test_engine_checkpoint.c):
 *  - resume in a fresh engine from a directory, then VERIFY to the end against the recording
 *    of an uninterrupted run; the files of the crashed run are adopted, so retention still
 *    holds on disk; other files in the directory are ignored, unfinished .tmp writes and
 *    orphaned parts swept;
 *  - a file of the format's version 1 resumes;
 *  - damaged files (truncated, a flipped byte, wrong magic, wrong version) are skipped, and
 *    when none is valid resume fails naming them; an empty or missing directory; restore of a
 *    kept checkpoint whose file was damaged or deleted fails and leaves the engine unchanged;
 *  - a child process killed with SIGKILL after writing checkpoints: a fresh engine resumes
 *    from its directory and verifies to the end.
 */
#include "test_util.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "baton/engine.h"
#include "engine/checkpoint_test_util.h" /* also the pool group: g_pool, g_workers */

/* ---- damaged files ----------------------------------------------------------------------- */

typedef enum damage { TRUNCATE, FLIP, MAGIC, VERSION } damage;
static const char *const damage_names[] = {"truncated", "checksum", "BATONCKP", "version 3"};

/* Damages a checkpoint file in one way; VERSION keeps the checksum right, so that the version
 * check itself is what rejects it. */
static void damage_file(const char *path, damage how)
{
    size_t size = 0;
    unsigned char *buf = read_whole(path, &size);
    if (how == TRUNCATE) {
        size -= 1000;
    } else if (how == FLIP) {
        buf[size / 2] ^= 0x10;
    } else if (how == MAGIC) {
        buf[3] = 'X';
    } else {
        uint32_t version = 3;
        memcpy(buf + 8, &version, 4);
        uint64_t sum = XXH3_64bits(buf, size - 8);
        memcpy(buf + size - 8, &sum, 8);
    }
    write_whole(path, buf, size);
    free(buf);
}

/* ---- resume ------------------------------------------------------------------------------ */

/* dir/whole.rpl: the recording of an uninterrupted run of TOTAL steps; ckdir: dir/ck. */
static void record_whole_run(char *dir, char *rec, char *ckdir)
{
    make_tmp_dir(dir, 512);
    snprintf(rec, 600, "%s/whole.rpl", dir);
    snprintf(ckdir, 600, "%s/ck", dir);
    baton_engine_config cfg = config(BATON_REPLAY_RECORD, NULL, 0, 0);
    baton_engine *whole = new_engine(&cfg);
    run_steps(whole, TOTAL);
    bt_assert_rc(baton_engine_replay_save(whole, rec), 0);
    baton_engine_destroy(whole);
}

/* A run of `steps` steps that checkpoints into ckdir every 4 steps, keeping `keep`. */
static void checkpointed_run(const char *ckdir, uint64_t steps, unsigned keep)
{
    baton_engine_config cfg = config(BATON_REPLAY_OFF, ckdir, 4, keep);
    baton_engine *engine = new_engine(&cfg);
    run_steps(engine, steps);
    baton_engine_destroy(engine); /* as if it had crashed: the files stay */
}

/* A fresh engine (checkpointing into dir every 4 steps, keeping `keep`) resumes from dir and
 * runs to TOTAL verifying every step; returns the step it resumed at. */
static uint64_t resume_and_verify(const char *dir, const char *recording, unsigned keep)
{
    baton_engine_config cfg = config(BATON_REPLAY_VERIFY, dir, 4, keep);
    baton_engine *engine = new_engine(&cfg);
    bt_assert_rc(baton_engine_replay_load(engine, recording), 0);
    if (baton_engine_resume(engine, dir) != 0)
        fail_msg("baton_engine_resume: %s", baton_last_error_message());
    uint64_t at = baton_engine_current_step(engine);
    run_steps(engine, TOTAL - at);
    baton_engine_metrics m;
    bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
    assert_int_equal(m.fingerprints_verified, TOTAL - at);
    /* The files of the crashed run were adopted: retention still holds on disk. */
    char names[16][128];
    assert_int_equal(list_files(dir, names, 16), keep);
    baton_engine_destroy(engine);
    return at;
}

/* Resume after a crash, also past damaged files. */
static void test_resume(void **state)
{
    (void)state;
    char dir[512], rec[600], ckdir[600], path[800], f4[128], f8[128], f12[128];
    record_whole_run(dir, rec, ckdir);
    checkpointed_run(ckdir, 13, 3);
    /* Something else in the directory, and a write that never finished, are ignored. */
    snprintf(path, sizeof path, "%s/scenario.ini", ckdir);
    write_whole(path, (const unsigned char *)"x", 1);
    snprintf(path, sizeof path, "%s/ckpt-00000000000000000099-auto.bck.tmp", ckdir);
    write_whole(path, (const unsigned char *)"partial", 7);
    char orphan[800];
    snprintf(orphan, sizeof orphan, "%s/ckpt-00000000000000000098-auto.bck.part", ckdir);
    write_whole(orphan, (const unsigned char *)"part", 4);
    assert_int_equal(resume_and_verify(ckdir, rec, 3), 12);
    /* Resuming in its own directory swept what the crash left unfinished, and nothing else. */
    struct stat sb;
    assert_true(stat(path, &sb) != 0 && stat(orphan, &sb) != 0);
    snprintf(path, sizeof path, "%s/scenario.ini", ckdir);
    assert_int_equal(stat(path, &sb), 0);
    remove_tree(ckdir);

    for (damage how = TRUNCATE; how <= VERSION; how++) {
        checkpointed_run(ckdir, 12, 3);
        ckpt_path(path, sizeof path, ckdir, 12, "auto");
        damage_file(path, how);
        assert_int_equal(resume_and_verify(ckdir, rec, 3), 8); /* the newest skipped */
        remove_tree(ckdir);
    }

    /* None valid: ENOTFOUND naming each and why; the engine unchanged. */
    checkpointed_run(ckdir, 12, 3);
    for (uint64_t s = 4; s <= 12; s += 4) {
        ckpt_path(path, sizeof path, ckdir, s, "auto");
        damage_file(path, s == 4 ? MAGIC : s == 8 ? FLIP : TRUNCATE);
    }
    baton_engine_config cfg = config(BATON_REPLAY_OFF, NULL, 0, 0);
    baton_engine *engine = new_engine(&cfg);
    run_steps(engine, 1);
    snap before = snap_take(engine);
    ckpt_path(f4, sizeof f4, NULL, 4, "auto");
    ckpt_path(f8, sizeof f8, NULL, 8, "auto");
    ckpt_path(f12, sizeof f12, NULL, 12, "auto");
    bt_expect_error(baton_engine_resume(engine, ckdir), BATON_ENOTFOUND, "no valid checkpoint",
                    "3 files", f4, f8, f12, damage_names[MAGIC], damage_names[FLIP],
                    damage_names[TRUNCATE], NULL);
    snap_check(&before, engine);
    remove_tree(ckdir);
    assert_int_equal(mkdir(ckdir, 0700), 0);
    bt_expect_error(baton_engine_resume(engine, ckdir), BATON_ENOTFOUND, "no checkpoint file",
                    NULL);
    remove_tree(ckdir);
    bt_expect_error(baton_engine_resume(engine, ckdir), BATON_EIO, ckdir, NULL);
    snap_check(&before, engine);
    free(before.bytes);
    baton_engine_destroy(engine);

    /* A kept checkpoint whose file was damaged: restore fails, the engine unchanged. */
    cfg.checkpoint_dir = ckdir;
    engine = new_engine(&cfg);
    run_steps(engine, 2);
    bt_assert_rc(baton_engine_checkpoint(engine, "two"), 0);
    run_steps(engine, 1);
    before = snap_take(engine);
    ckpt_path(path, sizeof path, ckdir, 2, "two");
    damage_file(path, FLIP);
    bt_expect_error(baton_engine_restore(engine, "two"), BATON_EIO, path, "checksum", NULL);
    snap_check(&before, engine);
    unlink(path);
    bt_expect_error(baton_engine_restore(engine, "two"), BATON_EIO, "cannot open", NULL);
    snap_check(&before, engine);
    free(before.bytes);
    baton_engine_destroy(engine);
    remove_tree(dir);
}

/* A file of format version 1 (no parts field in the header, no placement) still resumes: the
 * newest checkpoint of a run rewritten as version 1, then verified to the end. */
static void test_version_1_file(void **state)
{
    (void)state;
    char dir[512], rec[600], ckdir[600], path[800];
    record_whole_run(dir, rec, ckdir);
    checkpointed_run(ckdir, 12, 1); /* one file: step 12 */
    ckpt_path(path, sizeof path, ckdir, 12, "auto");
    size_t size = 0;
    unsigned char *v2 = read_whole(path, &size), *v1 = malloc(size);
    assert_non_null(v1);
    /* v2: header (36 bytes: the parts field at 32), ..., placement count (8), name, checksum. */
    const size_t name_at = size - 8 - (1 + 4), count_at = name_at - 8;
    uint32_t parts = 0, one = 1;
    uint64_t count = 1;
    memcpy(&parts, v2 + 32, 4);
    memcpy(&count, v2 + count_at, 8);
    assert_true(parts == 1 && count == 0);
    size_t n = 0;
    memcpy(v1, v2, 32);
    memcpy(v1 + 8, &one, 4);
    n = 32;
    memcpy(v1 + n, v2 + 36, count_at - 36);
    n += count_at - 36;
    memcpy(v1 + n, v2 + name_at, 1 + 4);
    n += 1 + 4;
    uint64_t sum = XXH3_64bits(v1, n);
    memcpy(v1 + n, &sum, 8);
    write_whole(path, v1, n + 8);
    assert_int_equal(resume_and_verify(ckdir, rec, 1), 12);
    free(v1);
    free(v2);
    remove_tree(dir);
}

/* ---- kill and resume --------------------------------------------------------------------- */

/* The child: the same run, checkpointing every 4 steps into dir, slowly (so that it is killed
 * in the middle), on no pool (a forked child has only this thread). Never returns. */
static void child_run(const char *dir)
{
    baton_engine_config cfg = config(BATON_REPLAY_OFF, dir, 4, 2);
    cfg.pool = NULL;
    baton_engine *engine = NULL;
    if (build_engine(&cfg, &engine) != 0)
        _exit(10);
    for (unsigned s = 0; s < TOTAL; s++) {
        if (baton_engine_step(engine, NULL) != 0)
            _exit(11);
        bt_sleep_ms(10);
    }
    _exit(0);
}

static void test_kill_and_resume(void **state)
{
    (void)state;
    char dir[512], rec[600], ckdir[600], names[8][128];
    record_whole_run(dir, rec, ckdir);
    assert_int_equal(mkdir(ckdir, 0700), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_run(ckdir);
    /* Wait for its first checkpoint, then a little more, so that the kill lands anywhere. */
    uint64_t t0 = bt_now_ns();
    while (list_files(ckdir, names, 8) == 0 && bt_now_ns() - t0 < 20000000000ull)
        bt_sleep_ms(1);
    bt_sleep_ms(7 + (unsigned)(t0 % 53));
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        fail_msg("the child was not killed (status %d): it ended first", status);
    size_t files = list_files(ckdir, names, 8);
    assert_true(files >= 1);
    uint64_t at = resume_and_verify(ckdir, rec, 2);
    assert_true(at >= 4 && at % 4 == 0);
    printf("# killed the child after %zu checkpoint files; resumed at step %llu\n", files,
           (unsigned long long)at);
    remove_tree(dir);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_version_1_file),
        cmocka_unit_test(test_kill_and_resume),
    };
    return cmocka_run_group_tests_name("engine/resume", tests, group_setup, group_teardown);
}
