/*
 * test_engine_checkpoint.c — the engine's checkpoints (include/baton/engine.h), on a pool of
 * --workers:
 *  - create-time config errors, each with the field it names; bad checkpoint names;
 *  - checkpoint, run on, restore (by name, NULL for the newest): the state byte for byte and
 *    the step counter as at the checkpoint, in memory and in files; ENOTFOUND for a name not
 *    kept; a state with no rows and a state whose rows changed;
 *  - restore then continue gives the fingerprints of an uninterrupted run (replay RECORD drops
 *    what comes after the restored step; VERIFY rewinds);
 *  - retention with policy EVERY keeps exactly K, in memory and on disk;
 *  - resume in a fresh engine from a directory, then VERIFY to the end against the recording
 *    of an uninterrupted run; damaged files (truncated, a flipped byte, wrong magic, wrong
 *    version) are skipped, and when none is valid resume fails naming them;
 *  - another schema is BATON_EMISMATCH naming the first difference;
 *  - failed allocations at every point of checkpoint and restore leave the engine unchanged;
 *  - a child process killed with SIGKILL after writing checkpoints: a fresh engine resumes
 *    from its directory and verifies to the end.
 */
#include "test_util.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "baton/engine.h"
#include "core/alloc.h"

BT_DEFINE_POOL_GROUP()

#define ROWS 10007u
#define TOTAL 40u /* steps of a whole run */

enum { COL_X, COL_Y, COL_N };

static void expect_error(int rc, int expected, ...)
{
    bt_assert_rc(rc, expected);
    const char *msg = baton_last_error_message();
    va_list ap;
    va_start(ap, expected);
    for (const char *frag = va_arg(ap, const char *); frag != NULL;
         frag = va_arg(ap, const char *))
        if (strstr(msg, frag) == NULL)
            fail_msg("message \"%s\" lacks \"%s\"", msg, frag);
    va_end(ap);
}

/* ---- the workload: two phases, the second reading rows the first wrote ------------------- */

/* The test's state (x double, or float for a mismatch; y float; n int64), without cmocka's
 * asserts: the forked child builds one too. */
static int build_state(size_t rows, bool x_as_float, baton_state **out)
{
    const baton_column_spec cols[] = {{"x", x_as_float ? BATON_COLUMN_FLOAT : BATON_COLUMN_DOUBLE},
                                      {"y", BATON_COLUMN_FLOAT},
                                      {"n", BATON_COLUMN_INT64}};
    baton_state *st = NULL;
    uint64_t *ids = malloc((rows + 1) * sizeof *ids);
    int rc = ids == NULL ? BATON_ENOMEM : baton_state_create(cols, 3, &st);
    for (size_t i = 0; rc == 0 && i < rows; i++)
        ids[i] = 7 + 5 * i;
    if (rc == 0)
        rc = baton_state_add_rows(st, ids, rows, NULL);
    free(ids);
    if (rc != 0) {
        baton_state_destroy(st);
        return rc;
    }
    for (size_t i = 0; i < rows; i++) {
        if (!x_as_float)
            baton_state_double(st, COL_X)[i] = (double)i * 0.25;
        baton_state_int64(st, COL_N)[i] = (int64_t)(i * 7);
    }
    *out = st;
    return 0;
}

static baton_state *new_state(size_t rows, bool x_as_float)
{
    baton_state *st = NULL;
    bt_assert_rc(build_state(rows, x_as_float, &st), 0);
    return st;
}

/* advance: x += 1 + n % 3 + step % 5 (the step matters, so a wrong counter shows); n += 1. */
static int advance(baton_state *st, size_t begin, size_t end, size_t partition, uint64_t step,
                   void *ctx)
{
    (void)partition;
    (void)ctx;
    double *x = baton_state_double(st, COL_X);
    int64_t *n = baton_state_int64(st, COL_N);
    for (size_t i = begin; i < end; i++) {
        x[i] += 1.0 + (double)(n[i] % 3) + (double)(step % 5);
        n[i] += 1;
    }
    return 0;
}

/* couple: y = x[i] - x[(i + 1) % rows]. */
static int couple(baton_state *st, size_t begin, size_t end, size_t partition, uint64_t step,
                  void *ctx)
{
    (void)partition;
    (void)step;
    (void)ctx;
    size_t rows = baton_state_rows(st);
    const double *x = baton_state_double(st, COL_X);
    float *y = baton_state_float(st, COL_Y);
    for (size_t i = begin; i < end; i++)
        y[i] = (float)(x[i] - x[(i + 1) % rows]);
    return 0;
}

static const size_t writes_advance[] = {COL_X, COL_N};
static const size_t writes_couple[] = {COL_Y};

/* A config on the group's pool; every > 0 selects BATON_CHECKPOINT_EVERY. */
static baton_engine_config config(baton_replay_mode replay, const char *dir, uint64_t every,
                                  unsigned keep)
{
    return (baton_engine_config){
        .struct_size = sizeof(baton_engine_config),
        .pool = g_pool,
        .replay = replay,
        .checkpoint_policy = every > 0 ? BATON_CHECKPOINT_EVERY : BATON_CHECKPOINT_DISABLED,
        .checkpoint_every = every,
        .checkpoint_keep = keep,
        .checkpoint_dir = dir};
}

/* The test's engine over ROWS rows, without cmocka's asserts (the forked child builds one);
 * on a pool, a plan of 2 * workers + 1 partitions. */
static int build_engine(const baton_engine_config *cfg, baton_engine **out)
{
    baton_state *st = NULL;
    baton_engine *engine = NULL;
    baton_plan *plan = NULL;
    baton_phase_spec a = {"advance", advance, NULL, writes_advance, 2, BATON_PHASE_INFALLIBLE};
    baton_phase_spec c = {"couple", couple, NULL, writes_couple, 1, BATON_PHASE_INFALLIBLE};
    int rc = build_state(ROWS, false, &st);
    if (rc == 0 && (rc = baton_engine_create(cfg, st, &engine)) != 0)
        baton_state_destroy(st);
    if (rc == 0 && (rc = baton_engine_add_phase(engine, &a)) == 0)
        rc = baton_engine_add_phase(engine, &c);
    if (rc == 0 && cfg->pool != NULL &&
        (rc = baton_plan_create_static(ROWS, 2 * g_workers + 1, g_workers, &plan)) == 0)
        rc = baton_engine_set_plan(engine, plan);
    baton_plan_destroy(plan);
    if (rc != 0)
        baton_engine_destroy(engine);
    *out = rc == 0 ? engine : NULL;
    return rc;
}

static baton_engine *new_engine(const baton_engine_config *cfg)
{
    baton_engine *engine = NULL;
    if (build_engine(cfg, &engine) != 0)
        fail_msg("build_engine: %s", baton_last_error_message());
    return engine;
}

static void run_steps(baton_engine *engine, uint64_t n)
{
    if (baton_engine_run(engine, n, NULL, NULL) != 0)
        fail_msg("baton_engine_run: %s", baton_last_error_message());
}

/* ---- snapshots of a state, for byte-for-byte comparison --------------------------------- */

typedef struct snap {
    size_t rows;
    uint64_t step;
    unsigned char *bytes; /* ids, x, y, n */
} snap;

static snap snap_take(baton_engine *engine)
{
    baton_state *st = baton_engine_state(engine);
    size_t rows = baton_state_rows(st);
    snap s = {rows, baton_engine_current_step(engine), malloc(rows * 28 + 1)};
    assert_non_null(s.bytes);
    if (rows > 0) {
        memcpy(s.bytes, baton_state_ids(st), rows * 8);
        memcpy(s.bytes + rows * 8, baton_state_double(st, COL_X), rows * 8);
        memcpy(s.bytes + rows * 16, baton_state_float(st, COL_Y), rows * 4);
        memcpy(s.bytes + rows * 20, baton_state_int64(st, COL_N), rows * 8);
    }
    return s;
}

/* The engine's state and step are s's; the id index works. */
static void snap_check(const snap *s, baton_engine *engine)
{
    snap now = snap_take(engine);
    assert_int_equal(now.step, s->step);
    assert_int_equal(now.rows, s->rows);
    assert_memory_equal(now.bytes, s->bytes, s->rows * 28);
    free(now.bytes);
    size_t row = 0;
    uint64_t last = 0;
    if (s->rows > 0) {
        memcpy(&last, s->bytes + (s->rows - 1) * 8, 8);
        bt_assert_rc(baton_state_find(baton_engine_state(engine), last, &row), 0);
        assert_int_equal(row, s->rows - 1);
    }
}

/* ---- directories and files --------------------------------------------------------------- */

static void make_tmp_dir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/baton-ckpt-XXXXXX", base != NULL && base[0] ? base : "/tmp");
    assert_non_null(mkdtemp(out));
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The names of the checkpoint files (ckpt-*.bck) in dir, sorted; returns how many. */
static size_t list_files(const char *dir, char names[][128], size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "ckpt-", 5) == 0 && len >= 4 && len < 128 &&
            strcmp(e->d_name + len - 4, ".bck") == 0 && n++ < cap)
            memcpy(names[n - 1], e->d_name, len + 1);
    }
    closedir(d);
    qsort(names, n < cap ? n : cap, 128, compare_names);
    return n;
}

/* The file name of checkpoint (step, name), below dir when dir is not NULL. */
static void ckpt_path(char *out, size_t cap, const char *dir, uint64_t step, const char *name)
{
    snprintf(out, cap, "%s%sckpt-%020llu-%s.bck", dir != NULL ? dir : "", dir != NULL ? "/" : "",
             (unsigned long long)step, name);
}

static void write_whole(const char *path, const unsigned char *buf, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, size, f), size);
    fclose(f);
}

typedef enum damage { TRUNCATE, FLIP, MAGIC, VERSION } damage;
static const char *const damage_names[] = {"truncated", "checksum", "BATONCKP", "version 2"};

/* Damages a checkpoint file in one way; VERSION keeps the checksum right, so that the version
 * check itself is what rejects it. */
static void damage_file(const char *path, damage how)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    size_t size = (size_t)sb.st_size;
    unsigned char *buf = malloc(size);
    FILE *f = fopen(path, "rb");
    assert_true(buf != NULL && f != NULL);
    assert_int_equal(fread(buf, 1, size, f), size);
    fclose(f);
    if (how == TRUNCATE) {
        size -= 1000;
    } else if (how == FLIP) {
        buf[size / 2] ^= 0x10;
    } else if (how == MAGIC) {
        buf[3] = 'X';
    } else {
        uint32_t version = 2;
        memcpy(buf + 8, &version, 4);
        uint64_t sum = XXH3_64bits(buf, size - 8);
        memcpy(buf + size - 8, &sum, 8);
    }
    write_whole(path, buf, size);
    free(buf);
}

/* The size of a checkpoint of ROWS rows of this test's schema called name (the format). */
static size_t expected_size(size_t rows, const char *name)
{
    return 32 + 3 * (2 + 1) + rows * (8 + 8 + 4 + 8) + 1 + strlen(name) + 8;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_config_errors(void **state)
{
    (void)state;
    baton_state *st = new_state(10, false);
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
    baton_engine_config cfg = config(BATON_REPLAY_OFF, NULL, 0, 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.checkpoint_policy = bad[i].policy;
        cfg.checkpoint_every = bad[i].every;
        cfg.checkpoint_keep = bad[i].keep;
        cfg.checkpoint_dir = bad[i].dir;
        expect_error(baton_engine_create(&cfg, st, &engine), BATON_EINVAL, bad[i].message, NULL);
    }

    /* A directory that cannot be created: a regular file, and below one. */
    char dir[512], below[600];
    make_tmp_dir(dir, sizeof dir);
    snprintf(below, sizeof below, "%s/plain", dir);
    write_whole(below, (const unsigned char *)"x", 1);
    cfg.checkpoint_dir = below;
    expect_error(baton_engine_create(&cfg, st, &engine), BATON_EIO, below, NULL);
    snprintf(below, sizeof below, "%s/plain/sub", dir);
    expect_error(baton_engine_create(&cfg, st, &engine), BATON_EIO, below, "Not a directory",
                 NULL);
    assert_null(engine);
    /* Missing parents are created. */
    snprintf(below, sizeof below, "%s/a/b/c/", dir);
    bt_assert_rc(baton_engine_create(&cfg, st, &engine), 0);
    struct stat sb;
    assert_true(stat(below, &sb) == 0 && S_ISDIR(sb.st_mode));
    baton_engine_destroy(engine);
    remove_tree(dir);

    /* keep 0 with DISABLED means 1. */
    cfg = config(BATON_REPLAY_OFF, NULL, 0, 0);
    engine = new_engine(&cfg);
    bt_assert_rc(baton_engine_checkpoint(engine, "a"), 0);
    bt_assert_rc(baton_engine_checkpoint(engine, "b"), 0);
    size_t n = 0;
    baton_checkpoint_info info[4];
    bt_assert_rc(baton_engine_checkpoints(engine, info, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(info[0].name, "b");

    const char *q64 = "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq";
    expect_error(baton_engine_checkpoint(engine, ""), BATON_EINVAL, "bad checkpoint name", NULL);
    expect_error(baton_engine_checkpoint(engine, "a/b"), BATON_EINVAL, "\"a/b\"", NULL);
    expect_error(baton_engine_checkpoint(engine, q64), BATON_EINVAL, "1 to 63", NULL);
    bt_assert_rc(baton_engine_checkpoint(engine, q64 + 1), 0); /* 63 bytes */
    expect_error(baton_engine_checkpoint(NULL, "a"), BATON_EINVAL, "engine is NULL", NULL);
    expect_error(baton_engine_restore(NULL, NULL), BATON_EINVAL, "engine", NULL);
    expect_error(baton_engine_restore(engine, "a b"), BATON_EINVAL, "bad checkpoint name", NULL);
    expect_error(baton_engine_resume(engine, NULL), BATON_EINVAL, "dir", NULL);
    expect_error(baton_engine_checkpoints(engine, NULL, 1, &n), BATON_EINVAL, "out", NULL);
    expect_error(baton_engine_checkpoints(engine, NULL, 0, NULL), BATON_EINVAL, "out_n", NULL);
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
        make_tmp_dir(dir, sizeof dir);
        baton_engine_config cfg = config(BATON_REPLAY_OFF, files ? dir : NULL, 0, 5);
        baton_engine *engine = new_engine(&cfg);
        baton_state *st = baton_engine_state(engine);
        run_steps(engine, 3);
        snap at3 = snap_take(engine);
        bt_assert_rc(baton_engine_checkpoint(engine, "three"), 0);
        run_steps(engine, 4);
        snap at7 = snap_take(engine);
        bt_assert_rc(baton_engine_checkpoint(engine, NULL), 0);
        run_steps(engine, 2);

        baton_checkpoint_info info[8];
        size_t n = 0;
        bt_assert_rc(baton_engine_checkpoints(engine, info, 8, &n), 0);
        assert_int_equal(n, 2);
        assert_true(strcmp(info[0].name, "three") == 0 && info[0].step == 3);
        assert_true(strcmp(info[1].name, "manual") == 0 && info[1].step == 7);
        assert_int_equal(info[0].bytes, expected_size(ROWS, "three"));
        assert_int_equal(info[1].bytes, expected_size(ROWS, "manual"));
        if (files) {
            assert_int_equal(list_files(dir, names, 4), 2);
            ckpt_path(want, sizeof want, NULL, 3, "three");
            assert_string_equal(names[0], want);
            ckpt_path(want, sizeof want, dir, 3, "three");
            struct stat sb;
            assert_int_equal(stat(want, &sb), 0);
            assert_int_equal((size_t)sb.st_size, info[0].bytes);
        }

        bt_assert_rc(baton_engine_restore(engine, "three"), 0);
        snap_check(&at3, engine);
        assert_ptr_equal(baton_engine_state(engine), st); /* the same handle, restored */
        run_steps(engine, 1);
        bt_assert_rc(baton_engine_restore(engine, NULL), 0); /* the newest: "manual" at 7 */
        snap_check(&at7, engine);
        expect_error(baton_engine_restore(engine, "nine"), BATON_ENOTFOUND, "\"nine\"", NULL);
        snap_check(&at7, engine);
        /* Restoring keeps the checkpoints; the same key again replaces the kept one. */
        bt_assert_rc(baton_engine_restore(engine, "three"), 0);
        bt_assert_rc(baton_engine_checkpoint(engine, "three"), 0);
        bt_assert_rc(baton_engine_checkpoints(engine, info, 8, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(info[1].name, "three");
        if (files)
            assert_int_equal(list_files(dir, names, 4), 2);
        baton_engine_metrics m;
        bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
        assert_int_equal(m.checkpoints_created, 3);
        baton_engine_destroy(engine);

        /* An engine without checkpoints has nothing to restore. */
        engine = new_engine(&cfg);
        expect_error(baton_engine_restore(engine, NULL), BATON_ENOTFOUND, "0 kept", NULL);
        baton_engine_destroy(engine);
        free(at3.bytes);
        free(at7.bytes);
        remove_tree(dir);
    }
}

/* Rows removed and added after the checkpoint come back; a state of no rows round-trips. */
static void test_rows_change(void **state)
{
    (void)state;
    baton_engine_config cfg = config(BATON_REPLAY_OFF, NULL, 0, 0);
    baton_engine *engine = new_engine(&cfg);
    run_steps(engine, 2);
    snap before = snap_take(engine);
    bt_assert_rc(baton_engine_checkpoint(engine, "x"), 0);
    baton_state *st = baton_engine_state(engine);
    const uint64_t gone[] = {7, 7 + 5 * 100, 7 + 5 * (uint64_t)(ROWS - 1)}, extra[] = {1, 2, 3};
    bt_assert_rc(baton_state_remove_rows(st, gone, 3), 0);
    bt_assert_rc(baton_state_add_rows(st, extra, 3, NULL), 0);
    bt_assert_rc(baton_engine_restore(engine, "x"), 0);
    snap_check(&before, engine);
    size_t row = 0;
    expect_error(baton_state_find(st, 2, &row), BATON_ENOTFOUND, NULL);
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
 * restore: the resume tests). */
static void test_restore_then_continue(void **state)
{
    (void)state;
    baton_engine_config cfg = config(BATON_REPLAY_RECORD, NULL, 0, 0);
    baton_engine *whole = new_engine(&cfg);
    run_steps(whole, 20);
    const baton_replay_entry *want = NULL, *got = NULL;
    size_t n_want = 0, n_got = 0;
    bt_assert_rc(baton_engine_recording(whole, &want, &n_want), 0);
    assert_int_equal(n_want, 20);

    baton_engine *broken = new_engine(&cfg);
    run_steps(broken, 8);
    bt_assert_rc(baton_engine_checkpoint(broken, "eight"), 0);
    run_steps(broken, 6);
    bt_assert_rc(baton_engine_restore(broken, "eight"), 0);
    bt_assert_rc(baton_engine_recording(broken, &got, &n_got), 0);
    assert_int_equal(n_got, 8); /* steps 8 .. 13 dropped */
    run_steps(broken, 12);
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
        make_tmp_dir(dir, sizeof dir);
        baton_engine_config cfg = config(BATON_REPLAY_OFF, files ? dir : NULL, 3, 2);
        cfg.checkpoint_sync = files == 1;
        baton_engine *engine = new_engine(&cfg);
        snap at18 = {0};
        for (unsigned s = 1; s <= 20; s++) {
            if (s == 11) {
                const uint64_t gone[] = {7, 12, 7 + 5 * 500};
                bt_assert_rc(baton_state_remove_rows(baton_engine_state(engine), gone, 3), 0);
                bt_assert_rc(baton_engine_set_plan(engine, NULL), 0);
            }
            run_steps(engine, 1);
            if (s == 18)
                at18 = snap_take(engine);
            baton_checkpoint_info info[4];
            size_t n = 0, taken = s / 3;
            bt_assert_rc(baton_engine_checkpoints(engine, info, 4, &n), 0);
            assert_int_equal(n, taken < 2 ? taken : 2);
            for (size_t i = 0; i < n; i++) {
                assert_string_equal(info[i].name, "auto");
                assert_int_equal(info[i].step, 3 * (taken - n + 1 + i));
            }
            if (files)
                assert_int_equal(list_files(dir, names, 8), n);
            for (size_t i = 0; files && i < n; i++) {
                ckpt_path(want, sizeof want, NULL, info[i].step, "auto");
                assert_string_equal(names[i], want);
                ckpt_path(want, sizeof want, dir, info[i].step, "auto");
                struct stat sb;
                assert_int_equal(stat(want, &sb), 0);
                assert_int_equal((size_t)sb.st_size, info[i].bytes);
            }
        }
        bt_assert_rc(baton_engine_restore(engine, NULL), 0);
        snap_check(&at18, engine);
        free(at18.bytes);
        baton_engine_metrics m;
        bt_assert_rc(baton_engine_get_metrics(engine, &m), 0);
        assert_int_equal(m.checkpoints_created, 6);
        baton_engine_destroy(engine);
        remove_tree(dir);
    }
}

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
    assert_int_equal(resume_and_verify(ckdir, rec, 3), 12);
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
    expect_error(baton_engine_resume(engine, ckdir), BATON_ENOTFOUND, "no valid checkpoint",
                 "3 files", f4, f8, f12, damage_names[MAGIC], damage_names[FLIP],
                 damage_names[TRUNCATE], NULL);
    snap_check(&before, engine);
    remove_tree(ckdir);
    assert_int_equal(mkdir(ckdir, 0700), 0);
    expect_error(baton_engine_resume(engine, ckdir), BATON_ENOTFOUND, "no checkpoint file",
                 NULL);
    remove_tree(ckdir);
    expect_error(baton_engine_resume(engine, ckdir), BATON_EIO, ckdir, NULL);
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
    expect_error(baton_engine_restore(engine, "two"), BATON_EIO, path, "checksum", NULL);
    snap_check(&before, engine);
    unlink(path);
    expect_error(baton_engine_restore(engine, "two"), BATON_EIO, "cannot open", NULL);
    snap_check(&before, engine);
    free(before.bytes);
    baton_engine_destroy(engine);
    remove_tree(dir);
}

static void test_schema_mismatch(void **state)
{
    (void)state;
    char dir[512];
    make_tmp_dir(dir, sizeof dir);
    baton_engine_config cfg = config(BATON_REPLAY_OFF, dir, 0, 0);
    baton_engine *engine = new_engine(&cfg);
    run_steps(engine, 2);
    bt_assert_rc(baton_engine_checkpoint(engine, "two"), 0);
    /* A column added since: the checkpoint lacks it. */
    baton_column_spec z = {"z", BATON_COLUMN_DOUBLE};
    bt_assert_rc(baton_state_add_column(baton_engine_state(engine), &z), 0);
    expect_error(baton_engine_restore(engine, "two"), BATON_EMISMATCH,
                 "column 3 is \"z\" (double) in the engine, absent from the file", NULL);
    assert_int_equal(baton_engine_current_step(engine), 2);
    assert_int_equal(baton_state_columns(baton_engine_state(engine)), 4);
    baton_engine_destroy(engine);

    /* An engine whose column 0 has another type. */
    cfg.checkpoint_dir = NULL;
    bt_assert_rc(baton_engine_create(&cfg, new_state(10, true), &engine), 0);
    expect_error(baton_engine_resume(engine, dir), BATON_EMISMATCH,
                 "column 0 is \"x\" (double) in the file, \"x\" (float) in the engine", NULL);
    assert_int_equal(baton_engine_current_step(engine), 0);
    assert_int_equal(baton_state_rows(baton_engine_state(engine)), 10);
    baton_engine_destroy(engine);
    remove_tree(dir);
}

/* Every allocation of checkpoint and restore failing in turn: ENOMEM and the engine unchanged,
 * until enough succeed. No pool, so that nothing else allocates meanwhile. */
static void test_alloc_failures(void **state)
{
    (void)state;
    for (int files = 0; files < 2; files++) {
        char dir[512];
        make_tmp_dir(dir, sizeof dir);
        baton_engine_config cfg = config(BATON_REPLAY_RECORD, files ? dir : NULL, 0, 3);
        cfg.pool = NULL;
        baton_engine *engine = new_engine(&cfg);
        run_steps(engine, 2);
        bt_assert_rc(baton_engine_checkpoint(engine, "two"), 0);
        run_steps(engine, 1);
        snap before = snap_take(engine);
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
                run_steps(engine, 1); /* back to where it was */
            snap_check(&before, engine);
        }
        free(before.bytes);
        baton_engine_destroy(engine);
        remove_tree(dir);
    }
}

/* A write that fails (the file size limit): EIO naming the .tmp file and the system's error,
 * no .tmp left; the kept list is unchanged, except that a write over the oldest's file
 * (recycling, K kept) costs that one. */
static void test_write_failure(void **state)
{
    (void)state;
    char dir[512], names[4][128], tmp[700];
    make_tmp_dir(dir, sizeof dir);
    baton_engine_config cfg = config(BATON_REPLAY_OFF, dir, 0, 2);
    baton_engine *engine = new_engine(&cfg);
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
        ckpt_path(tmp, sizeof tmp, dir, 0, "b");
        strcat(tmp, ".tmp");
        expect_error(rc, BATON_EIO, "cannot write", tmp, strerror(EFBIG), NULL);
        /* With 1 kept nothing is lost; with 2, "a" (recycled) is. */
        baton_checkpoint_info info[4];
        size_t n = 0;
        bt_assert_rc(baton_engine_checkpoints(engine, info, 4, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(info[0].name, kept == 1 ? "a" : "c");
        assert_int_equal(list_files(dir, names, 4), 1);
        assert_int_equal(access(tmp, F_OK), -1);
        if (kept == 1)
            bt_assert_rc(baton_engine_checkpoint(engine, "c"), 0); /* now K = 2 are kept */
    }
    bt_assert_rc(baton_engine_checkpoint(engine, "b"), 0);
    bt_assert_rc(baton_engine_restore(engine, "b"), 0);
    signal(SIGXFSZ, SIG_DFL);
    baton_engine_destroy(engine);
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
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_rows_change),
        cmocka_unit_test(test_restore_then_continue),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_schema_mismatch),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_write_failure),
        cmocka_unit_test(test_kill_and_resume),
    };
    return cmocka_run_group_tests_name("engine/checkpoint", tests, group_setup, group_teardown);
}
