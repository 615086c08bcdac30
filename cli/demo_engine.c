/*
 * demo_engine.c — the engine part of `baton demo`: the motion scenario through the step engine.
 *
 * The motion rule over the demo's agent count and steps, on a static plan of 4 partitions on the
 * demo's pool, recording a fingerprint per step and checkpointing every quarter of the run into a
 * fresh directory (under $TMPDIR, else /var/tmp; deleted afterwards). Then the run goes back: a
 * second engine resumes from the directory's checkpoint at the half-way step, as a process
 * restarting after a crash would, and runs to the end verifying every step against the
 * recording. The demo passes when every step verifies and both runs end on the same fingerprint.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baton/engine.h"
#include "cli.h"

#define DEMO_SEED 42u
#define DEMO_PARTITIONS 4u
#define DEMO_DIR_MAX 4096

static int make_engine(baton_pool *pool, size_t agents, baton_replay_mode replay, const char *dir,
                       uint64_t every, baton_engine **out)
{
    baton_state *state = NULL;
    int rc = baton_engine_motion_state(agents, DEMO_SEED, &state);
    if (rc != 0) {
        cmdline_report_error(rc, "demo: baton_engine_motion_state");
        return rc;
    }
    baton_engine_config cfg = {.struct_size = sizeof cfg,
                               .pool = pool,
                               .replay = replay,
                               .checkpoint_policy = BATON_CHECKPOINT_EVERY,
                               .checkpoint_every = every,
                               .checkpoint_keep = 4,
                               .checkpoint_dir = dir};
    baton_engine *engine = NULL;
    if ((rc = baton_engine_create(&cfg, state, &engine)) != 0) {
        baton_state_destroy(state);
        cmdline_report_error(rc, "demo: baton_engine_create");
        return rc;
    }
    baton_plan *plan = NULL;
    if ((rc = baton_engine_add_motion(engine)) == 0 &&
        (rc = baton_plan_create_static(agents, agents < DEMO_PARTITIONS ? 1 : DEMO_PARTITIONS,
                                       baton_pool_workers(pool), &plan)) == 0)
        rc = baton_engine_set_plan(engine, plan);
    baton_plan_destroy(plan);
    if (rc != 0) {
        cmdline_report_error(rc, "demo: setting up the engine");
        baton_engine_destroy(engine);
        return rc;
    }
    *out = engine;
    return 0;
}

/* Runs the engine to step `to`, with a progress line; the seconds it took in *out_s. */
static int run_to(baton_engine *engine, uint64_t to, const char *what, double *out_s)
{
    double t0 = cmdline_now_s();
    int rc = 0;
    while (rc == 0 && baton_engine_current_step(engine) < to) {
        rc = baton_engine_step(engine, NULL);
        cmdline_progress("demo: engine %s: step %" PRIu64 "/%" PRIu64, what,
                         baton_engine_current_step(engine), to);
    }
    *out_s = cmdline_now_s() - t0;
    if (rc != 0)
        cmdline_report_error(rc, "demo: baton_engine_step");
    return rc;
}

bool cli_demo_engine(baton_pool *pool, size_t agents, unsigned steps)
{
    char dir[DEMO_DIR_MAX];
    const char *base = cmdline_temp_base();
    if ((size_t)snprintf(dir, sizeof dir, "%s/baton-demo-XXXXXX", base) >= sizeof dir ||
        mkdtemp(dir) == NULL) {
        cmdline_errorf("demo: cannot make a directory under %s: %s", base, strerror(errno));
        return false;
    }
    uint64_t every = steps >= 4 ? steps / 4 : 1, half = steps / 2 - (steps / 2) % every;
    baton_engine *rec = NULL, *ver = NULL;
    char recording[DEMO_DIR_MAX + 32];
    snprintf(recording, sizeof recording, "%s/replay.bin", dir);
    double rec_s = 0, ver_s = 0;
    uint64_t rec_fp = 0, ver_fp = 0, resumed_at = 0;
    baton_engine_metrics rm, vm;
    /* "start": a checkpoint of step 0, so that a run too short for the policy's still has one
     * to resume from. */
    bool ok =
        make_engine(pool, agents, BATON_REPLAY_RECORD, dir, every, &rec) == 0 &&
        baton_engine_checkpoint(rec, "start") == 0 && run_to(rec, steps, "record", &rec_s) == 0 &&
        baton_engine_replay_save(rec, recording) == 0 && baton_engine_get_metrics(rec, &rm) == 0 &&
        baton_state_fingerprint(baton_engine_state(rec), pool, &rec_fp) == 0;
    if (ok) {
        /* Leave only the checkpoints up to half-way, as if the run had died there. */
        baton_engine_destroy(rec);
        rec = NULL;
        DIR *d = opendir(dir);
        struct dirent *e;
        char path[DEMO_DIR_MAX + 256];
        while (d != NULL && (e = readdir(d)) != NULL) {
            unsigned long long step = 0;
            if (sscanf(e->d_name, "ckpt-%llu-", &step) == 1 && step > half) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                (void)unlink(path);
            }
        }
        if (d != NULL)
            closedir(d);
        ok = make_engine(pool, agents, BATON_REPLAY_VERIFY, dir, every, &ver) == 0 &&
             baton_engine_replay_load(ver, recording) == 0 && baton_engine_resume(ver, dir) == 0;
        if (ok) {
            resumed_at = baton_engine_current_step(ver);
            ok = run_to(ver, steps, "verify", &ver_s) == 0 &&
                 baton_engine_get_metrics(ver, &vm) == 0 &&
                 baton_state_fingerprint(baton_engine_state(ver), pool, &ver_fp) == 0 &&
                 ver_fp == rec_fp && vm.fingerprints_verified == steps - resumed_at;
        }
    }
    cmdline_progress_clear();
    if (!ok)
        cmdline_errorf("demo: the engine's run failed: %s", baton_last_error_message());
    else {
        printf("\nengine: the motion rule through the step engine, %zu agents, %u steps, %u "
               "partitions on %u workers\n",
               agents, steps, agents < DEMO_PARTITIONS ? 1u : DEMO_PARTITIONS,
               baton_pool_workers(pool));
        printf("  record   %u steps in %.3f s (%.1f steps/s), %" PRIu64
               " fingerprints recorded, %" PRIu64 " checkpoints (step 0, then every %" PRIu64
               " steps)\n",
               steps, rec_s, steps / rec_s, rm.fingerprints_recorded, rm.checkpoints_created,
               every);
        printf("  resume   a new engine restored the checkpoint of step %" PRIu64
               " from disk (the later ones deleted, as after a crash)\n",
               resumed_at);
        printf("  verify   steps %" PRIu64 "..%u in %.3f s: %" PRIu64 " of %" PRIu64
               " fingerprints match the recording\n",
               resumed_at, steps - 1, ver_s, vm.fingerprints_verified, steps - resumed_at);
        printf("  final    fingerprint 0x%016" PRIx64 " in both runs\n", ver_fp);
    }
    baton_engine_destroy(rec);
    baton_engine_destroy(ver);
    (void)cmdline_remove_tree(dir);
    return ok;
}
