/*
 * test_engine_resume.c — resuming the engine from its checkpoint files (include/baton/engine.h),
 * on a pool of --workers (checkpoints within one process: test_engine_checkpoint.c):
 *  - resume in a fresh engine from a directory, then VERIFY to the end against the recording
 *    of an uninterrupted run; the files of the crashed run are adopted, so retention still
 *    holds on disk; other files in the directory are ignored, unfinished .tmp writes and
 *    orphaned parts swept;
 *  - files of the format's versions 1 and 2 resume;
 *  - damaged files (truncated, a flipped byte, wrong magic, wrong version) are skipped, and
 *    when none is valid resume fails naming them; an empty or missing directory; restore of a
 *    kept checkpoint whose file was damaged or deleted fails and leaves the engine unchanged;
 *  - checkpoint identity: an engine of another identity refuses a directory's checkpoints
 *    (resume, restore, create with it as checkpoint_dir) naming the directory and both
 *    identities, and stays as it was; the same identity and none resume them; files without
 *    an identity are refused by an engine with one;
 *  - a child process killed with SIGKILL after writing checkpoints: a fresh engine resumes
 *    from its directory and verifies to the end.
 */
#include "support/bt_common.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "baton/engine.h"
#include "support/bt_engine_checkpoint.h" /* also the pool group: g_pool, g_workers */

/* ---- damaged files ----------------------------------------------------------------------- */

typedef enum damage { TRUNCATE, FLIP, MAGIC, VERSION } damage;
static const char *const damage_names[] = {"truncated", "checksum", "BATONCKP", "version 4"};

/* Damages a checkpoint file in one way; VERSION keeps the checksum right, so that the version
 * check itself is what rejects it. */
static void damage_file(const char *path, damage how)
{
    size_t size = 0;
    unsigned char *buf = bt_read_file(path, &size);
    if (how == TRUNCATE) {
        size -= 1000;
    } else if (how == FLIP) {
        buf[size / 2] ^= 0x10;
    } else if (how == MAGIC) {
        buf[3] = 'X';
    } else {
        uint32_t version = 4;
        memcpy(buf + 8, &version, 4);
        uint64_t sum = XXH3_64bits(buf, size - 8);
        memcpy(buf + size - 8, &sum, 8);
    }
    bt_write_file(path, buf, size);
    free(buf);
}

/* ---- resume ------------------------------------------------------------------------------ */

/* dir/whole.rpl: the recording of an uninterrupted run of BT_CKPT_STEPS steps; ckdir: dir/ck. */
static void record_whole_run(char *dir, char *rec, char *ckdir)
{
    bt_ckpt_tmpdir(dir, 512);
    snprintf(rec, 600, "%s/whole.rpl", dir);
    snprintf(ckdir, 600, "%s/ck", dir);
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_RECORD, NULL, 0, 0);
    baton_engine *whole = bt_new_engine(&cfg);
    bt_run_steps(whole, BT_CKPT_STEPS);
    bt_assert_rc(baton_engine_replay_save(whole, rec), 0);
    baton_engine_destroy(whole);
}

/* A run of `steps` steps that checkpoints into ckdir every 4 steps, keeping `keep`. */
static void checkpointed_run(const char *ckdir, uint64_t steps, unsigned keep)
{
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, ckdir, 4, keep);
    baton_engine *engine = bt_new_engine(&cfg);
    bt_run_steps(engine, steps);
    baton_engine_destroy(engine); /* as if it had crashed: the files stay */
}

/* A fresh engine (checkpointing into dir every 4 steps, keeping `keep`) resumes from dir and
 * runs to BT_CKPT_STEPS verifying every step; returns the step it resumed at. */
static uint64_t resume_and_verify(const char *dir, const char *recording, unsigned keep)
{
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_VERIFY, dir, 4, keep);
    baton_engine *engine = bt_new_engine(&cfg);
    bt_assert_rc(baton_engine_replay_load(engine, recording), 0);
    if (baton_engine_resume(engine, dir) != 0)
        fail_msg("baton_engine_resume: %s", baton_last_error_message());
    uint64_t at = baton_engine_current_step(engine);
    /* The adopted files are kept checkpoints, each with its path in dir. */
    baton_checkpoint_info info[16];
    size_t kept = 0;
    bt_assert_rc(baton_engine_checkpoints(engine, info, 16, &kept), 0);
    assert_true(kept >= 1 && kept <= keep && info[kept - 1].step == at);
    for (size_t i = 0; i < kept; i++) {
        char want[800];
        struct stat sb;
        bt_ckpt_path(want, sizeof want, dir, info[i].step, info[i].name);
        assert_non_null(info[i].path);
        assert_string_equal(info[i].path, want);
        assert_int_equal(stat(info[i].path, &sb), 0);
    }
    bt_run_steps(engine, BT_CKPT_STEPS - at);
    baton_engine_metrics m;
    bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
    assert_int_equal(m.fingerprints_verified, BT_CKPT_STEPS - at);
    /* The files of the crashed run were adopted: retention still holds on disk. */
    char names[16][128];
    assert_int_equal(bt_ckpt_files(dir, names, 16), keep);
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
    bt_write_file(path, (const unsigned char *)"x", 1);
    snprintf(path, sizeof path, "%s/ckpt-00000000000000000099-auto.bck.tmp", ckdir);
    bt_write_file(path, (const unsigned char *)"partial", 7);
    char orphan[800];
    snprintf(orphan, sizeof orphan, "%s/ckpt-00000000000000000098-auto.bck.part", ckdir);
    bt_write_file(orphan, (const unsigned char *)"part", 4);
    assert_int_equal(resume_and_verify(ckdir, rec, 3), 12);
    /* Resuming in its own directory swept what the crash left unfinished, and nothing else. */
    struct stat sb;
    assert_true(stat(path, &sb) != 0 && stat(orphan, &sb) != 0);
    snprintf(path, sizeof path, "%s/scenario.ini", ckdir);
    assert_int_equal(stat(path, &sb), 0);
    bt_remove_tree(ckdir);

    for (damage how = TRUNCATE; how <= VERSION; how++) {
        checkpointed_run(ckdir, 12, 3);
        bt_ckpt_path(path, sizeof path, ckdir, 12, "auto");
        damage_file(path, how);
        assert_int_equal(resume_and_verify(ckdir, rec, 3), 8); /* the newest skipped */
        bt_remove_tree(ckdir);
    }

    /* None valid: ENOTFOUND naming each and why; the engine unchanged. */
    checkpointed_run(ckdir, 12, 3);
    for (uint64_t s = 4; s <= 12; s += 4) {
        bt_ckpt_path(path, sizeof path, ckdir, s, "auto");
        damage_file(path, s == 4 ? MAGIC : s == 8 ? FLIP : TRUNCATE);
    }
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, NULL, 0, 0);
    baton_engine *engine = bt_new_engine(&cfg);
    bt_run_steps(engine, 1);
    bt_snap before = bt_snap_take(engine);
    bt_ckpt_path(f4, sizeof f4, NULL, 4, "auto");
    bt_ckpt_path(f8, sizeof f8, NULL, 8, "auto");
    bt_ckpt_path(f12, sizeof f12, NULL, 12, "auto");
    bt_expect_error(baton_engine_resume(engine, ckdir), BATON_ENOTFOUND, "no valid checkpoint",
                    "3 files", f4, f8, f12, damage_names[MAGIC], damage_names[FLIP],
                    damage_names[TRUNCATE], NULL);
    bt_snap_check(&before, engine);
    bt_remove_tree(ckdir);
    assert_int_equal(mkdir(ckdir, 0700), 0);
    bt_expect_error(baton_engine_resume(engine, ckdir), BATON_ENOTFOUND, "no checkpoint file",
                    NULL);
    bt_remove_tree(ckdir);
    bt_expect_error(baton_engine_resume(engine, ckdir), BATON_EIO, ckdir, NULL);
    bt_snap_check(&before, engine);
    free(before.bytes);
    baton_engine_destroy(engine);

    /* A kept checkpoint whose file was damaged: restore fails, the engine unchanged. */
    cfg.checkpoint_dir = ckdir;
    engine = bt_new_engine(&cfg);
    bt_run_steps(engine, 2);
    bt_assert_rc(baton_engine_checkpoint(engine, "two"), 0);
    bt_run_steps(engine, 1);
    before = bt_snap_take(engine);
    bt_ckpt_path(path, sizeof path, ckdir, 2, "two");
    damage_file(path, FLIP);
    bt_expect_error(baton_engine_restore(engine, "two"), BATON_EIO, path, "checksum", NULL);
    bt_snap_check(&before, engine);
    unlink(path);
    bt_expect_error(baton_engine_restore(engine, "two"), BATON_EIO, "cannot open", NULL);
    bt_snap_check(&before, engine);
    free(before.bytes);
    baton_engine_destroy(engine);
    bt_remove_tree(dir);
}

/* The newest checkpoint file of a run (format version 3, no identity) rewritten in format
 * version `version`: 1 (no parts field, no placement, no identity) or 2 (no identity). */
static void rewrite_as(const char *path, uint32_t version)
{
    size_t size = 0;
    unsigned char *v3 = bt_read_file(path, &size), *old = malloc(size);
    assert_non_null(old);
    /* v3: header (36 bytes: the parts field at 32), the identity's length (1 byte, 0: none),
     * schema, ..., placement count (8), name, checksum. */
    const size_t name_at = size - 8 - (1 + 4), count_at = name_at - 8;
    uint32_t parts = 0;
    uint64_t count = 1;
    memcpy(&parts, v3 + 32, 4);
    memcpy(&count, v3 + count_at, 8);
    assert_true(parts == 1 && count == 0 && v3[36] == 0);
    size_t n = version == 1 ? 32 : 36;
    memcpy(old, v3, n);
    memcpy(old + 8, &version, 4);
    size_t body_end = version == 1 ? count_at : name_at; /* v1 has no placement count */
    memcpy(old + n, v3 + 37, body_end - 37);
    n += body_end - 37;
    memcpy(old + n, v3 + name_at, 1 + 4);
    n += 1 + 4;
    uint64_t sum = XXH3_64bits(old, n);
    memcpy(old + n, &sum, 8);
    bt_write_file(path, old, n + 8);
    free(old);
    free(v3);
}

/* Files of format versions 1 and 2 (before the identity) still resume, in an engine without a
 * checkpoint identity: the newest checkpoint of a run rewritten, then verified to the end. */
static void test_old_version_files(void **state)
{
    (void)state;
    for (uint32_t version = 1; version <= 2; version++) {
        char dir[512], rec[600], ckdir[600], path[800];
        record_whole_run(dir, rec, ckdir);
        checkpointed_run(ckdir, 12, 1); /* one file: step 12 */
        bt_ckpt_path(path, sizeof path, ckdir, 12, "auto");
        rewrite_as(path, version);
        assert_int_equal(resume_and_verify(ckdir, rec, 1), 12);
        bt_remove_tree(dir);
    }
}

/* ---- checkpoint identity ------------------------------------------------------------------ */

/* An engine checkpointing into dir every 4 steps under identity id (NULL: none). */
static baton_engine *identity_engine(const char *dir, const char *id)
{
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, dir, 4, 2);
    cfg.checkpoint_identity = id;
    return bt_new_engine(&cfg);
}

/* create with identity id and checkpoint_dir dir must fail with BATON_EMISMATCH naming dir,
 * the file and both identities (theirs: "" for none). */
static void expect_create_refused(const char *dir, const char *id, const char *theirs,
                                  const char *file)
{
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, dir, 4, 2);
    cfg.checkpoint_identity = id;
    baton_engine *engine = (baton_engine *)(uintptr_t)1;
    bt_expect_error(bt_build_engine(&cfg, &engine), BATON_EMISMATCH, dir, file, id,
                    theirs[0] != '\0' ? theirs : "no checkpoint identity", NULL);
    assert_null(engine);
}

/* Checkpoints carry their engine's identity: an engine of another identity refuses to resume
 * them (resume, restore) or to checkpoint next to them (create), naming the directory and both
 * identities, and is left as it was; the same identity resumes; an engine without one resumes
 * any; files without an identity are refused by an engine with one. */
static void test_identity(void **state)
{
    (void)state;
    char dir[512], ckdir[600], other[600], path[800], file[128];
    bt_ckpt_tmpdir(dir, sizeof dir);
    snprintf(ckdir, sizeof ckdir, "%s/ck", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    baton_engine *a = identity_engine(ckdir, "scenario seed=1");
    bt_run_steps(a, 12); /* files of steps 8 and 12 */
    baton_engine_destroy(a);
    bt_ckpt_path(file, sizeof file, NULL, 12, "auto");

    /* Another identity: resume refuses (the newest file stops the search), the engine as it
     * was; create refuses the directory as its checkpoint_dir; nothing in it changes. */
    baton_engine *b = identity_engine(other, "scenario seed=2");
    bt_run_steps(b, 1);
    bt_snap before = bt_snap_take(b);
    bt_expect_error(baton_engine_resume(b, ckdir), BATON_EMISMATCH, ckdir, file,
                    "\"scenario seed=1\"", "\"scenario seed=2\"", NULL);
    assert_int_equal(baton_engine_current_step(b), 1);
    bt_snap_check(&before, b);
    free(before.bytes);
    baton_engine_destroy(b);
    expect_create_refused(ckdir, "scenario seed=2", "scenario seed=1", file);
    char names[8][128];
    assert_int_equal(bt_ckpt_files(ckdir, names, 8), 2);

    /* The same identity, and none, resume step 12. */
    baton_engine *same = identity_engine(ckdir, "scenario seed=1");
    bt_assert_rc(baton_engine_resume(same, ckdir), 0);
    assert_int_equal(baton_engine_current_step(same), 12);
    baton_engine_destroy(same);
    baton_engine *none = identity_engine(other, NULL);
    bt_assert_rc(baton_engine_resume(none, ckdir), 0);
    assert_int_equal(baton_engine_current_step(none), 12);
    baton_engine_destroy(none);

    /* restore of a kept checkpoint of another identity: a file dropped into the engine's own
     * directory and adopted by a resume. */
    baton_engine *c = identity_engine(other, "scenario seed=2");
    bt_run_steps(c, 3);
    bt_assert_rc(baton_engine_checkpoint(c, "foreign"), 0);
    baton_engine_destroy(c);
    char from[800];
    bt_ckpt_path(from, sizeof from, other, 3, "foreign");
    bt_ckpt_path(path, sizeof path, ckdir, 3, "foreign");
    assert_int_equal(rename(from, path), 0);
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, ckdir, 4, 3);
    cfg.checkpoint_identity = "scenario seed=1";
    cfg.checkpoint_policy = BATON_CHECKPOINT_DISABLED;
    /* create would refuse the directory now: create it first, then drop the file in. */
    assert_int_equal(rename(path, from), 0);
    a = bt_new_engine(&cfg);
    assert_int_equal(rename(from, path), 0);
    bt_assert_rc(baton_engine_resume(a, ckdir), 0); /* step 12; adopts 3 and 8 */
    before = bt_snap_take(a);
    bt_expect_error(baton_engine_restore(a, "foreign"), BATON_EMISMATCH, ckdir,
                    "\"scenario seed=2\"", "\"scenario seed=1\"", NULL);
    assert_int_equal(baton_engine_current_step(a), 12);
    bt_snap_check(&before, a);
    free(before.bytes);
    baton_engine_destroy(a);
    assert_int_equal(unlink(path), 0);

    /* Files without an identity (an engine without one wrote them). */
    bt_remove_tree(ckdir);
    baton_engine *anon = identity_engine(ckdir, NULL);
    bt_run_steps(anon, 8);
    baton_engine_destroy(anon);
    bt_ckpt_path(file, sizeof file, NULL, 8, "auto");
    b = identity_engine(other, "scenario seed=2");
    bt_expect_error(baton_engine_resume(b, ckdir), BATON_EMISMATCH, ckdir, file,
                    "no checkpoint identity", "\"scenario seed=2\"", NULL);
    assert_int_equal(baton_engine_current_step(b), 0);
    baton_engine_destroy(b);
    expect_create_refused(ckdir, "scenario seed=2", "", file);
    bt_remove_tree(dir);
}

/* ---- kill and resume --------------------------------------------------------------------- */

/* The child: the same run, checkpointing every 4 steps into dir, on no pool (a forked child has
 * only this thread); after each step it writes the step's number to ack_fd. After the last step
 * it waits on hold_fd, which the parent never writes: it dies by the parent's kill, never ends
 * first. Never returns. */
static void child_run(const char *dir, int ack_fd, int hold_fd)
{
    baton_engine_config cfg = bt_ckpt_config(BATON_REPLAY_OFF, dir, 4, 2);
    cfg.pool = NULL;
    baton_engine *engine = NULL;
    if (bt_build_engine(&cfg, &engine) != 0)
        _exit(10);
    for (uint32_t s = 1; s <= BT_CKPT_STEPS; s++) {
        if (baton_engine_step(engine, NULL) != 0)
            _exit(11);
        if (write(ack_fd, &s, sizeof s) != (ssize_t)sizeof s)
            _exit(12);
    }
    char byte;
    while (read(hold_fd, &byte, 1) != 0) {
    }
    _exit(0);
}

static void test_kill_and_resume(void **state)
{
    (void)state;
    char dir[512], rec[600], ckdir[600], names[8][128];
    record_whole_run(dir, rec, ckdir);
    assert_int_equal(mkdir(ckdir, 0700), 0);
    int acks[2], hold[2];
    assert_int_equal(pipe(acks), 0);
    assert_int_equal(pipe(hold), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(acks[0]);
        close(hold[1]);
        child_run(ckdir, acks[1], hold[0]);
    }
    close(acks[1]);
    close(hold[0]);
    /* Killed right after the parent has read the child's k-th step (k >= 4: the first
     * checkpoint, taken inside step 4, is on disk), so the kill lands in step k + 1 or later,
     * wherever the child is by then, and never depends on how fast the machine is. */
    uint32_t k = 4 + (uint32_t)(bt_now_ns() % (BT_CKPT_STEPS - 3)), step = 0;
    while (step < k) {
        uint32_t s = 0;
        if (read(acks[0], &s, sizeof s) != (ssize_t)sizeof s)
            fail_msg("the child stopped after step %u", step);
        assert_int_equal(s, step + 1);
        step = s;
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    close(acks[0]);
    close(hold[1]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        fail_msg("the child was not killed (status %d): it ended first", status);
    size_t files = bt_ckpt_files(ckdir, names, 8);
    assert_true(files >= 1);
    uint64_t at = resume_and_verify(ckdir, rec, 2);
    assert_true(at >= 4 && at % 4 == 0);
    assert_true(at >= k - k % 4 && at <= BT_CKPT_STEPS);
    printf("# killed the child after step %u (%zu checkpoint files); resumed at step %llu\n", k,
           files, (unsigned long long)at);
    bt_remove_tree(dir);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_old_version_files),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_kill_and_resume),
    };
    return cmocka_run_group_tests_name("engine/resume", tests, group_setup, group_teardown);
}
