/*
 * bt_engine_checkpoint.h — what the checkpoint tests share (inline; test_engine_checkpoint.c
 * and test_engine_resume.c): the engine they run (the workload of bt_engine.h over BT_CKPT_ROWS
 * rows, checkpointing as bt_ckpt_config() says), snapshots of its state for byte-for-byte
 * comparison, and the files in a checkpoint directory.
 *
 * It defines the test group's pool (BT_DEFINE_POOL_GROUP: g_workers, g_pool, group_setup,
 * group_teardown), which bt_ckpt_config() and bt_build_engine() use, so a test includes it instead
 * of writing BT_DEFINE_POOL_GROUP() itself. bt_build_engine uses no cmocka asserts, so that a
 * forked child can build an engine too. Inline (not in baton_test_support) for that pool group.
 */
#ifndef BT_SUPPORT_ENGINE_CHECKPOINT_H
#define BT_SUPPORT_ENGINE_CHECKPOINT_H

#include "support/bt_common.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baton/engine.h"
#include "support/bt_files.h"
#include "support/bt_engine.h"

BT_DEFINE_POOL_GROUP()

#define BT_CKPT_ROWS 10007u
#define BT_CKPT_STEPS 40u /* steps of a whole run */

/* ---- the engine -------------------------------------------------------------------------- */

/* A config on the group's pool; every > 0 selects BATON_CHECKPOINT_EVERY. */
static inline baton_engine_config bt_ckpt_config(baton_replay_mode replay, const char *dir,
                                                 uint64_t every, unsigned keep)
{
    return (baton_engine_config){.struct_size = sizeof(baton_engine_config),
                                 .pool = g_pool,
                                 .replay = replay,
                                 .checkpoint_policy =
                                     every > 0 ? BATON_CHECKPOINT_EVERY : BATON_CHECKPOINT_DISABLED,
                                 .checkpoint_every = every,
                                 .checkpoint_keep = keep,
                                 .checkpoint_dir = dir};
}

/* The test's engine over BT_CKPT_ROWS rows, without cmocka's asserts (the forked child builds one);
 * on a pool, a plan of 2 * workers + 1 partitions. */
static inline int bt_build_engine(const baton_engine_config *cfg, baton_engine **out)
{
    baton_state *st = NULL;
    baton_engine *engine = NULL;
    baton_plan *plan = NULL;
    baton_phase_spec a = {"advance", bt_advance, NULL, bt_writes_advance, 2, BATON_PHASE_INFALLIBLE,
                          0};
    baton_phase_spec c = {"couple", bt_couple, NULL, bt_writes_couple, 1, BATON_PHASE_INFALLIBLE,
                          0};
    int rc = bt_build_state(BT_CKPT_ROWS, false, &st);
    if (rc == 0 && (rc = baton_engine_create(cfg, st, &engine)) != 0)
        baton_state_destroy(st);
    if (rc == 0 && (rc = baton_engine_add_phase(engine, &a)) == 0)
        rc = baton_engine_add_phase(engine, &c);
    if (rc == 0 && cfg->pool != NULL &&
        (rc = baton_plan_create_static(BT_CKPT_ROWS, 2 * g_workers + 1, g_workers, &plan)) == 0)
        rc = baton_engine_set_plan(engine, plan);
    baton_plan_destroy(plan);
    if (rc != 0)
        baton_engine_destroy(engine);
    *out = rc == 0 ? engine : NULL;
    return rc;
}

static inline baton_engine *bt_new_engine(const baton_engine_config *cfg)
{
    baton_engine *engine = NULL;
    if (bt_build_engine(cfg, &engine) != 0)
        fail_msg("build_engine: %s", baton_last_error_message());
    return engine;
}

static inline void bt_run_steps(baton_engine *engine, uint64_t n)
{
    if (baton_engine_run(engine, n, NULL, NULL) != 0)
        fail_msg("baton_engine_run: %s", baton_last_error_message());
}

/* ---- snapshots of a state, for byte-for-byte comparison ---------------------------------- */

typedef struct bt_snap {
    size_t rows;
    uint64_t step;
    unsigned char *bytes; /* ids, x, y, n */
} bt_snap;

static inline bt_snap bt_snap_take(baton_engine *engine)
{
    baton_state *st = baton_engine_state(engine);
    size_t rows = baton_state_rows(st);
    bt_snap s = {rows, baton_engine_current_step(engine), malloc(rows * 28 + 1)};
    assert_non_null(s.bytes);
    if (rows > 0) {
        memcpy(s.bytes, baton_state_ids(st), rows * 8);
        memcpy(s.bytes + rows * 8, baton_state_double(st, BT_COL_X), rows * 8);
        memcpy(s.bytes + rows * 16, baton_state_float(st, BT_COL_Y), rows * 4);
        memcpy(s.bytes + rows * 20, baton_state_int64(st, BT_COL_N), rows * 8);
    }
    return s;
}

/* The engine's state and step are s's; the id index works. */
static inline void bt_snap_check(const bt_snap *s, baton_engine *engine)
{
    bt_snap now = bt_snap_take(engine);
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

static inline void bt_ckpt_tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/baton-ckpt-XXXXXX", base != NULL && base[0] ? base : "/tmp");
    assert_non_null(mkdtemp(out));
}

static inline int bt__compare_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The names of the checkpoint files (ckpt-*.bck) in dir, sorted; returns how many. */
static inline size_t bt_ckpt_files(const char *dir, char names[][128], size_t cap)
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
    qsort(names, n < cap ? n : cap, 128, bt__compare_names);
    return n;
}

/* The file name of checkpoint (step, name), below dir when dir is not NULL. */
static inline void bt_ckpt_path(char *out, size_t cap, const char *dir, uint64_t step,
                             const char *name)
{
    snprintf(out, cap, "%s%sckpt-%020llu-%s.bck", dir != NULL ? dir : "", dir != NULL ? "/" : "",
             (unsigned long long)step, name);
}

#endif /* BT_SUPPORT_ENGINE_CHECKPOINT_H */
