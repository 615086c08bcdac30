/*
 * engine.c — the step engine: phases over the partitions of a plan, steps that apply whole or
 * not at all, metrics (include/baton/engine.h; replay recordings: replay.c).
 *
 * DESIGN
 *  - A step runs phase after phase; within a phase, every partition is one call of the phase
 *    over its row range, the partitions spread over the pool by baton_parallel_for (one index
 *    per partition). The phase's loop runs on the state's own arrays: no partition's rows are
 *    copied to run it. The parallel_for's return is the barrier between two phases, since a
 *    phase may read rows that another partition wrote in the phase before.
 *  - Undo. A step that fails in a phase must leave the state as before the step. Before a phase
 *    first writes a column in a step, the engine copies that column (the phase's declared
 *    writes, every column when it declares none) into the column's shadow; a failure copies the
 *    shadows back. The copy is a full pass over the written columns, so an engine whose every
 *    phase is BATON_PHASE_INFALLIBLE takes none: its steps cannot fail in a phase. Rows and
 *    columns change only between steps, so a shadow is sized at the step's start.
 *  - A phase's failure is reported with the smallest failing partition. A failure cancels
 *    none of the partitions below it (only those above the smallest failure seen so far are
 *    skipped), so every partition up to the smallest failing one runs in every run: the error,
 *    its partition and its message do not depend on timing (under MPI the ranks then agree on
 *    the smallest over all of them).
 */
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/os.h"
#include "engine/engine_impl.h"
#include "engine/state_impl.h"

static bool name_ok(const char *name, size_t max)
{
    size_t n = name != NULL ? strlen(name) : 0;
    return n > 0 && n <= max;
}

int baton_engine_create(const baton_engine_config *config, baton_state *state, baton_engine **out)
{
    const char *who = "baton_engine_create";
    if (out == NULL)
        return baton__error(BATON_EINVAL, "%s: out is NULL", who);
    *out = NULL;
    if (state == NULL)
        return baton__error(BATON_EINVAL, "%s: state is NULL", who);
    baton_engine_config cfg;
    int size_rc = baton__config_copy(who, "config", "baton_engine_config", config, &cfg,
                                     sizeof cfg);
    if (size_rc != 0)
        return size_rc;
    if ((unsigned)cfg.replay > BATON_REPLAY_VERIFY)
        return baton__error(BATON_EINVAL, "%s: unknown replay mode %d", who, (int)cfg.replay);
    if (cfg.executor == BATON_EXECUTOR_DEVICE)
        return baton__error(BATON_ENOSYS,
                            "%s: device (GPU) workers are not supported in this build", who);
#ifndef BATON_HAVE_MPI
    if (cfg.executor == BATON_EXECUTOR_MPI)
        return baton__error(BATON_ENOSYS,
                            "%s: the MPI executor is not supported in this build (built "
                            "without MPI)",
                            who);
#endif
    if (cfg.executor != BATON_EXECUTOR_LOCAL && cfg.executor != BATON_EXECUTOR_MPI)
        return baton__error(BATON_EINVAL, "%s: unknown executor kind %d", who, (int)cfg.executor);
    if ((unsigned)cfg.mpi_rows > BATON_MPI_ROWS_OWNED)
        return baton__error(BATON_EINVAL, "%s: unknown mpi_rows %d", who, (int)cfg.mpi_rows);
    baton_engine *engine = baton__calloc(1, sizeof *engine);
    if (engine == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory for an engine", who);
    engine->pool = cfg.pool;
    engine->workers = cfg.workers != 0   ? cfg.workers
                      : cfg.pool != NULL ? baton_pool_workers(cfg.pool)
                                         : 1;
    engine->replay = cfg.replay;
    engine->mpi_rows = cfg.mpi_rows;
    engine->running_phase = SIZE_MAX;
    int rc = 0;
#ifdef BATON_HAVE_MPI
    if (cfg.executor == BATON_EXECUTOR_MPI)
        rc = baton__engine_mpi_init(engine, cfg.workers);
#endif
    bool checkpoints = false;
    if (rc == 0)
        checkpoints = (rc = baton__engine_checkpoint_init(engine, &cfg)) == 0;
    if (rc == 0)
        rc = baton__engine_checkpoint_check_dir(engine);
#ifdef BATON_HAVE_MPI
    if (engine->mpi != NULL) /* every rank creates its engine, or none does */
        rc = baton__engine_mpi_agree_status(engine, rc);
#endif
    if (rc != 0) {
        if (checkpoints)
            baton__engine_checkpoint_fini(engine);
#ifdef BATON_HAVE_MPI
        baton__engine_mpi_fini(engine);
#endif
        baton__free(engine);
        return rc;
    }
    engine->state = state;
    *out = engine;
    return 0;
}

void baton_engine_destroy(baton_engine *engine)
{
    if (engine == NULL)
        return;
    for (size_t i = 0; i < engine->n_phases; i++)
        baton__free(engine->phases[i].writes);
    for (size_t i = 0; i < engine->n_shadows; i++)
        baton__free(engine->shadows[i].bytes);
    baton__free(engine->shadows);
    baton__free(engine->recording);
    baton__engine_checkpoint_fini(engine);
#ifdef BATON_HAVE_MPI
    baton__engine_mpi_fini(engine);
#endif
    baton_plan_destroy(engine->plan);
    baton__free(engine->placement);
    baton__free(engine->placement_local);
    baton__free(engine->halo);
    baton__free(engine->halo_at);
    baton_state_destroy(engine->state);
    baton__free(engine);
}

baton_state *baton_engine_state(baton_engine *engine)
{
    return engine != NULL ? engine->state : NULL;
}

uint64_t baton_engine_current_step(const baton_engine *engine)
{
    return engine != NULL ? engine->step : 0;
}

int baton_engine_add_phase(baton_engine *engine, const baton_phase_spec *spec)
{
    const char *who = "baton_engine_add_phase";
    if (engine == NULL || spec == NULL || spec->fn == NULL)
        return baton__error(BATON_EINVAL, "%s: %s is NULL", who,
                            engine == NULL ? "engine"
                            : spec == NULL ? "spec"
                                           : "spec->fn");
    if (!name_ok(spec->name, BATON_PHASE_NAME_MAX))
        return baton__error(BATON_EINVAL, "%s: the phase name must be 1 to %u bytes", who,
                            BATON_PHASE_NAME_MAX);
    if ((spec->flags & ~(unsigned)BATON_PHASE_INFALLIBLE) != 0)
        return baton__error(BATON_EINVAL, "%s: phase \"%s\": unknown flags 0x%x", who, spec->name,
                            spec->flags);
    if (spec->writes == NULL && spec->n_writes > 0)
        return baton__error(BATON_EINVAL, "%s: phase \"%s\": writes is NULL with %zu columns", who,
                            spec->name, spec->n_writes);
    if (spec->halo_rows > 0 && spec->writes == NULL)
        return baton__error(BATON_EINVAL,
                            "%s: phase \"%s\": halo_rows %zu without declared writes (it may "
                            "read the halo of the columns it does not write)",
                            who, spec->name, spec->halo_rows);
    size_t columns = baton_state_columns(engine->state);
    for (size_t i = 0; i < spec->n_writes; i++)
        if (spec->writes[i] >= columns)
            return baton__error(BATON_EINVAL,
                                "%s: phase \"%s\": writes[%zu] is column %zu, but the state has "
                                "%zu columns",
                                who, spec->name, i, spec->writes[i], columns);
    for (size_t i = 0; i < engine->n_phases; i++)
        if (strcmp(engine->phases[i].name, spec->name) == 0)
            return baton__error(BATON_EEXIST, "%s: a phase named \"%s\" exists (phase %zu)", who,
                                spec->name, i);
    if (engine->n_phases == BATON_ENGINE_MAX_PHASES)
        return baton__error(BATON_ERANGE, "%s: the engine already runs %u phases, the most", who,
                            BATON_ENGINE_MAX_PHASES);
    size_t *writes = NULL;
    if (spec->n_writes > 0) {
        writes = baton__malloc(spec->n_writes * sizeof *writes);
        if (writes == NULL)
            return baton__error(BATON_ENOMEM, "%s: no memory", who);
        memcpy(writes, spec->writes, spec->n_writes * sizeof *writes);
    }
    engine_phase *ph = &engine->phases[engine->n_phases++];
    memset(ph, 0, sizeof *ph);
    strcpy(ph->name, spec->name);
    ph->fn = spec->fn;
    ph->ctx = spec->ctx;
    ph->writes = writes;
    ph->n_writes = spec->n_writes;
    ph->flags = spec->flags;
    ph->halo_rows = spec->halo_rows;
    return 0;
}

int baton_engine_set_plan(baton_engine *engine, const baton_plan *plan)
{
    const char *who = "baton_engine_set_plan";
    if (engine == NULL)
        return baton__error(BATON_EINVAL, "%s: engine is NULL", who);
    baton_plan *copy = NULL;
    if (plan != NULL) {
        size_t n = baton_plan_partitions(plan);
        baton_partition *parts = n > 0 ? baton__malloc(n * sizeof *parts) : NULL;
        if (n > 0 && parts == NULL)
            return baton__error(BATON_ENOMEM, "%s: no memory", who);
        for (size_t i = 0; i < n; i++)
            parts[i] = baton_plan_partition(plan, i);
        int rc = baton_plan_create(parts, n, baton_plan_workers(plan), &copy);
        baton__free(parts);
        if (rc != 0)
            return rc;
    }
    baton_plan_destroy(engine->plan);
    engine->plan = copy;
    return 0;
}

/* ---- halo rows ------------------------------------------------------------------------------- */

int baton_engine_halo(const baton_engine *engine, size_t partition, size_t column, baton_halo *out)
{
    const char *who = "baton_engine_halo";
    if (engine == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "%s: %s is NULL", who, engine == NULL ? "engine" : "out");
    size_t k = engine->running_phase;
    if (k == SIZE_MAX)
        return baton__error(BATON_EPERM, "%s: no phase is running (call it from a phase)", who);
    const engine_phase *ph = &engine->phases[k];
    const baton_state *st = engine->state;
    if (column >= st->n_columns)
        return baton__error(BATON_ERANGE, "%s: column %zu, but the state has %zu columns", who,
                            column, st->n_columns);
    for (size_t i = 0; i < ph->n_writes; i++)
        if (ph->writes[i] == column)
            return baton__error(BATON_EINVAL,
                                "%s: phase \"%s\" writes column %zu, so its rows next to a "
                                "partition are being written as it reads them",
                                who, ph->name, column);
    if (partition >= engine->n_step_parts)
        return baton__error(BATON_ERANGE, "%s: partition %zu, but the step has %zu", who, partition,
                            engine->n_step_parts);
    baton_partition p = engine->step_parts[partition];
    size_t rows = engine->step_parts[engine->n_step_parts - 1].end, h = ph->halo_rows;
    size_t n_before = p.begin < h ? p.begin : h, n_after = rows - p.end < h ? rows - p.end : h;
    size_t width = st->columns[column]->width;
    if (engine->mpi == NULL) {
        const unsigned char *values = st->columns[column]->values;
        *out = (baton_halo){values + (p.begin - n_before) * width, n_before, values + p.end * width,
                            n_after};
        return 0;
    }
    if (p.worker != engine->rank)
        return baton__error(BATON_ERANGE, "%s: partition %zu is rank %u's, not this rank's (%u)",
                            who, partition, p.worker, engine->rank);
    /* The block's rows: halo_rows before (the nearest last), then halo_rows after. */
    const unsigned char *at = engine->halo + engine->halo_at[partition] + engine->column_at[column];
    *out = (baton_halo){at + (engine->halo_rows - n_before) * width, n_before,
                        at + engine->halo_rows * width, n_after};
    return 0;
}

/* ---- a step ---------------------------------------------------------------------------------- */

static size_t column_bytes(const baton_state *state, size_t column, size_t rows)
{
    return rows * state->columns[column]->width;
}

/* Whether any phase can fail (then the step keeps shadows). */
static bool step_needs_undo(const baton_engine *engine)
{
    for (size_t i = 0; i < engine->n_phases; i++)
        if (!(engine->phases[i].flags & BATON_PHASE_INFALLIBLE))
            return true;
    return false;
}

/* Makes room for a shadow of every column (they may have been added since the last step) and
 * clears the saved marks. */
static int shadows_prepare(baton_engine *engine)
{
    size_t columns = baton_state_columns(engine->state);
    if (columns > engine->n_shadows) {
        engine_shadow *grown = baton__calloc(columns, sizeof *grown);
        if (grown == NULL)
            return baton__error(BATON_ENOMEM, "baton_engine_step: no memory for undo buffers");
        if (engine->n_shadows > 0)
            memcpy(grown, engine->shadows, engine->n_shadows * sizeof *grown);
        baton__free(engine->shadows);
        engine->shadows = grown;
        engine->n_shadows = columns;
    }
    for (size_t c = 0; c < engine->n_shadows; c++)
        engine->shadows[c].saved = false;
    return 0;
}

static int shadow_save(baton_engine *engine, size_t column, size_t rows)
{
    engine_shadow *sh = &engine->shadows[column];
    if (sh->saved)
        return 0;
    size_t bytes = column_bytes(engine->state, column, rows);
    if (bytes > sh->cap_bytes) {
        void *fresh = baton__aligned_alloc(64, bytes);
        if (fresh == NULL)
            return baton__error(BATON_ENOMEM,
                                "baton_engine_step: no memory for the undo copy of column %zu "
                                "(%zu bytes)",
                                column, bytes);
        baton__free(sh->bytes);
        sh->bytes = fresh;
        sh->cap_bytes = bytes;
    }
    if (bytes > 0)
        memcpy(sh->bytes, baton_state_column_data(engine->state, column), bytes);
    sh->saved = true;
    return 0;
}

static void shadows_restore(baton_engine *engine, size_t rows)
{
    for (size_t c = 0; c < engine->n_shadows; c++) {
        engine_shadow *sh = &engine->shadows[c];
        size_t bytes = column_bytes(engine->state, c, rows);
        if (sh->saved && bytes > 0)
            memcpy(baton_state_column_data(engine->state, c), sh->bytes, bytes);
    }
}

/* Saves what phase k writes, before it runs. */
static int save_phase_writes(baton_engine *engine, const engine_phase *ph, size_t rows)
{
    size_t n = ph->writes != NULL ? ph->n_writes : baton_state_columns(engine->state);
    for (size_t i = 0; i < n; i++) {
        int rc = shadow_save(engine, ph->writes != NULL ? ph->writes[i] : i, rows);
        if (rc != 0)
            return rc;
    }
    return 0;
}

typedef struct phase_run {
    baton_engine *engine;
    const engine_phase *phase;
    const baton_partition *parts;
    int *rcs; /* each partition's return, written by the task that ran it */
    /* The smallest partition seen failing so far (SIZE_MAX: none): the partitions after it
     * need not run, since the step reports the smallest failing one. Only ever lowered to a
     * partition that failed, so every partition below the smallest failing one runs. Relaxed:
     * it only saves work; the result is read from rcs after the parallel_for's barrier. */
    _Atomic size_t first_failed;
} phase_run;

static void lower_first_failed(phase_run *run, size_t i)
{
    size_t seen = baton__load_relaxed(&run->first_failed);
    while (i < seen && !baton__cas_weak_relaxed(&run->first_failed, &seen, i)) {
    }
}

/* Never returns an error, so that the parallel_for cancels no partition: which ones fail is
 * in rcs. */
static int run_partitions(size_t begin, size_t end, void *arg)
{
    phase_run *run = arg;
    for (size_t i = begin; i < end; i++) {
        if (baton__load_relaxed(&run->first_failed) < i)
            continue; /* a smaller partition failed: this one cannot be the step's error */
        const baton_partition *p = &run->parts[i];
        size_t first = p->begin, last = p->end;
        if (run->engine->mpi != NULL) { /* its rank's rows, where they lie in its state */
            if (p->worker != run->engine->rank)
                continue;
            first = run->engine->placement_local[i];
            last = first + (p->end - p->begin);
        }
        int rc =
            run->phase->fn(run->engine->state, first, last, i, run->engine->step, run->phase->ctx);
        run->rcs[i] = rc;
        if (rc != 0)
            lower_first_failed(run, i);
    }
    return 0;
}

/* Runs phase k over the n partitions (rcs: room for n); 0 or the failure of the partition with
 * the smallest index among those that failed (message set). */
static int run_phase(baton_engine *engine, size_t k, const baton_partition *parts, size_t n,
                     int *rcs)
{
    phase_run run = {engine, &engine->phases[k], parts, rcs, SIZE_MAX};
    memset(rcs, 0, n * sizeof *rcs);
    int rc;
    if (engine->pool != NULL && n > 1)
        rc = baton_parallel_for(engine->pool, 0, n, 1, run_partitions, &run);
    else
        rc = run_partitions(0, n, &run);
    /* The parallel_for's return orders every task's writes of rcs before these reads. */
    size_t failed = SIZE_MAX;
    for (size_t i = 0; i < n && failed == SIZE_MAX; i++)
        if (rcs[i] != 0)
            failed = i;
    if (failed != SIZE_MAX)
        rc = rcs[failed];
#ifdef BATON_HAVE_MPI
    if (engine->mpi != NULL) /* every rank learns the same failure, and returns it */
        (void)baton__engine_mpi_agree(engine, &failed, &rc);
#endif
    if (failed != SIZE_MAX)
        return baton__error(rc,
                            "baton_engine_step: step %llu: phase \"%s\" (phase %zu) failed "
                            "in partition %zu (rows [%zu, %zu)) with %d (%s)",
                            (unsigned long long)engine->step, engine->phases[k].name, k, failed,
                            parts[failed].begin, parts[failed].end, rc, baton_err_name(rc));
    return rc; /* the pool's own error (BATON_ECLOSED), message set by it */
}

/* A step that fails on this process before its first phase (memory). Under MPI the other ranks
 * wait in the first phase's agreement: take part in it with the failure, so that all of them
 * stop the step with it. */
static int fail_before_phases(baton_engine *engine, int rc)
{
#ifdef BATON_HAVE_MPI
    if (engine->mpi != NULL && engine->n_phases > 0) {
        size_t none = SIZE_MAX;
        (void)baton__engine_mpi_agree(engine, &none, &rc);
    }
#endif
    engine->steps_failed++;
    return rc;
}

int baton_engine_step(baton_engine *engine, baton_step_report *report)
{
    if (engine == NULL)
        return baton__error(BATON_EINVAL, "baton_engine_step: engine is NULL");
    uint64_t t0 = baton__monotonic_ns();
    size_t rows = baton_state_rows(engine->state);
    baton_partition single = {0, rows, 0};
    const baton_partition *parts = &single;
    size_t n_parts = 1;
    int single_rc = 0, *rcs = &single_rc;
    void *block = NULL; /* the step's partitions and their returns, when they are many */
    if (engine->mpi != NULL) {
#ifdef BATON_HAVE_MPI
        /* The rows go where the plan puts them; the placement is then the plan's. */
        int rc = baton__engine_mpi_prepare(engine);
        if (rc != 0) {
            engine->steps_failed++;
            return rc;
        }
        rows = baton_state_rows(engine->state);
        parts = engine->placement;
        n_parts = engine->n_placement;
        block = baton__malloc(n_parts * sizeof *rcs);
        rc = block == NULL
                 ? baton__error(BATON_ENOMEM, "baton_engine_step: no memory for %zu partitions",
                                n_parts)
                 : 0;
        if ((rc = baton__engine_mpi_agree_status(engine, rc)) != 0) {
            baton__free(block);
            engine->steps_failed++;
            return rc;
        }
        rcs = block;
#endif
    } else if (engine->plan != NULL) {
        int rc = baton_plan_validate(engine->plan, rows, engine->workers);
        if (rc != 0) {
            engine->steps_failed++; /* as under MPI, where prepare fails it */
            return rc;
        }
        n_parts = baton_plan_partitions(engine->plan);
        /* One block per step for the partitions and their returns: a copy, so that a phase
         * never sees the plan change under it. */
        baton_partition *copy = baton__malloc(n_parts * (sizeof *copy + sizeof *rcs));
        if (copy == NULL)
            return fail_before_phases(engine, baton__error(BATON_ENOMEM,
                                                           "baton_engine_step: no memory for %zu "
                                                           "partitions",
                                                           n_parts));
        for (size_t i = 0; i < n_parts; i++)
            copy[i] = baton_plan_partition(engine->plan, i);
        parts = copy;
        rcs = (int *)(void *)(copy + n_parts);
        block = copy;
    }
    bool undo = step_needs_undo(engine);
    int rc = undo ? shadows_prepare(engine) : 0;
    if (rc != 0) {
        baton__free(block);
        return fail_before_phases(engine, rc);
    }
    baton_step_report local;
    baton_step_report *rep = report != NULL ? report : &local;
    rep->step = engine->step;
    rep->n_phases = engine->n_phases;
    rep->fingerprint = 0;
    /* What this process runs of each phase: every partition, or under MPI its rank's. */
    uint64_t own_parts = 0, own_rows = 0;
    for (size_t i = 0; i < n_parts; i++)
        if (engine->mpi == NULL || parts[i].worker == engine->rank) {
            own_parts++;
            own_rows += parts[i].end - parts[i].begin;
        }
    engine->step_parts = parts;
    engine->n_step_parts = n_parts;
    for (size_t k = 0; k < engine->n_phases && rc == 0; k++) {
        uint64_t p0 = baton__monotonic_ns();
        int halo_rc = 0;
#ifdef BATON_HAVE_MPI
        /* The neighbours' rows, from wherever they live: agreed, so every rank goes on or
         * stops here alike. */
        if (engine->mpi != NULL && engine->phases[k].halo_rows > 0)
            halo_rc = baton__engine_mpi_halo(engine, engine->phases[k].halo_rows);
#endif
        rc = halo_rc;
        if (rc == 0 && undo)
            rc = save_phase_writes(engine, &engine->phases[k], rows);
        if (rc == 0) {
            engine->running_phase = k;
            rc = run_phase(engine, k, parts, n_parts, rcs);
            engine->running_phase = SIZE_MAX;
        } else if (engine->mpi != NULL && halo_rc == 0) { /* the save failed, here alone */
#ifdef BATON_HAVE_MPI
            size_t none = SIZE_MAX; /* the other ranks must not wait for this one in vain */
            (void)baton__engine_mpi_agree(engine, &none, &rc);
#endif
        }
        uint64_t ns = baton__monotonic_ns() - p0;
        rep->phase_ns[k] = ns;
        engine->phases[k].executions++;
        engine->phases[k].total_ns += ns;
    }
    if (rc != 0) {
        baton__free(block);
        if (undo)
            shadows_restore(engine, rows);
        engine->steps_failed++;
        return rc;
    }
    int replay_rc = 0;
    if (engine->replay != BATON_REPLAY_OFF)
        replay_rc = baton__engine_replay_step(engine, &rep->fingerprint);
    baton__free(block);
    engine->step++;
    engine->steps_completed++;
    /* Counted once the step completed: an undone step's partitions did not happen. */
    engine->partition_steps += own_parts * engine->n_phases;
    engine->partition_rows += own_rows * engine->n_phases;
    /* A step that diverged from its recording is not checkpointed: a restart must not resume
     * from a state known to be wrong. */
    int checkpoint_rc = replay_rc == 0 ? baton__engine_checkpoint_after_step(engine) : 0;
    rep->total_ns = baton__monotonic_ns() - t0;
    engine->last_step_ns = rep->total_ns;
    engine->total_step_ns += rep->total_ns;
    return replay_rc != 0 ? replay_rc : checkpoint_rc;
}

int baton_engine_run(baton_engine *engine, uint64_t n, baton_step_report *reports,
                     uint64_t *out_done)
{
    uint64_t done = 0;
    int rc = engine == NULL ? baton__error(BATON_EINVAL, "baton_engine_run: engine is NULL") : 0;
    while (rc == 0 && done < n) {
        uint64_t before = engine->step;
        rc = baton_engine_step(engine, reports != NULL ? &reports[done] : NULL);
        if (engine->step != before)
            done++;
    }
    if (out_done != NULL)
        *out_done = done;
    return rc;
}

int baton_engine_fingerprint(baton_engine *engine, uint64_t *out)
{
    if (engine == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "baton_engine_fingerprint: %s is NULL",
                            engine == NULL ? "engine" : "out");
#ifdef BATON_HAVE_MPI
    if (engine->mpi != NULL) { /* the hash walks the placement: make it the plan's first */
        int rc = baton__engine_mpi_prepare(engine);
        return rc != 0 ? rc : baton__engine_mpi_fingerprint(engine, out);
    }
#endif
    return baton_state_fingerprint(engine->state, engine->pool, out);
}

int baton_engine_get_metrics(const baton_engine *engine, baton_engine_metrics *out)
{
    if (engine == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "baton_engine_get_metrics: %s is NULL",
                            engine == NULL ? "engine" : "out");
    memset(out, 0, sizeof *out);
    out->current_step = engine->step;
    out->rows = baton_state_rows(engine->state);
#ifdef BATON_HAVE_MPI
    if (engine->mpi != NULL)
        out->rows = baton__engine_mpi_global_rows(engine);
#endif
    out->columns = baton_state_columns(engine->state);
    out->phases = engine->n_phases;
    out->resident_bytes = baton_state_resident_bytes(engine->state) + sizeof *engine +
                          engine->recording_cap * sizeof *engine->recording;
    for (size_t c = 0; c < engine->n_shadows; c++)
        out->resident_bytes += engine->shadows[c].cap_bytes;
    for (size_t i = 0; i < engine->n_checkpoints; i++)
        if (engine->checkpoints[i].bytes != NULL)
            out->resident_bytes += engine->checkpoints[i].size;
    out->steps_completed = engine->steps_completed;
    out->steps_failed = engine->steps_failed;
    out->last_step_ns = engine->last_step_ns;
    out->total_step_ns = engine->total_step_ns;
    out->fingerprints_recorded = engine->fingerprints_recorded;
    out->fingerprints_verified = engine->fingerprints_verified;
    out->checkpoints_created = engine->checkpoints_created;
    out->partition_steps = engine->partition_steps;
    out->partition_rows = engine->partition_rows;
#ifdef BATON_HAVE_MPI
    if (engine->mpi != NULL) { /* each rank ran, and holds, its own share: the sums are the run's */
        uint64_t sums[3] = {out->partition_steps, out->partition_rows, out->resident_bytes};
        baton__engine_mpi_sum(engine, sums, 3);
        out->partition_steps = sums[0];
        out->partition_rows = sums[1];
        out->resident_bytes = (size_t)sums[2];
    }
#endif
    for (size_t k = 0; k < engine->n_phases; k++)
        out->phase[k] = (baton_phase_metrics){engine->phases[k].name, engine->phases[k].executions,
                                              engine->phases[k].total_ns};
    return 0;
}
