/*
 * engine_impl.h — the step engine's state (struct baton_engine), which engine.c (phases, steps,
 * metrics) drives and checkpoint.c, mpi.c, placement.c and replay.c read and change, and the
 * functions those files define for one another. Internal to src/engine/.
 */
#ifndef BATON_ENGINE_IMPL_H
#define BATON_ENGINE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/engine.h"

typedef struct engine_phase {
    char name[BATON_PHASE_NAME_MAX + 1];
    baton_phase_fn fn;
    void *ctx;
    size_t *writes; /* NULL: every column */
    size_t n_writes;
    unsigned flags;
    size_t halo_rows;
    uint64_t executions;
    uint64_t total_ns;
} engine_phase;

/* A column's copy from before the step, kept for undo. */
typedef struct engine_shadow {
    void *bytes;
    size_t cap_bytes;
    bool saved; /* this step's copy is taken */
} engine_shadow;

/* A kept checkpoint (checkpoint.c). */
typedef struct engine_checkpoint {
    char name[BATON_CHECKPOINT_NAME_MAX + 1];
    uint64_t step;
    size_t size;          /* its serialized size (the file's, see checkpoint_format.c) */
    unsigned char *bytes; /* the serialized checkpoint in memory; NULL when it lives in path */
    char *path;           /* its file, NULL without a checkpoint directory */
} engine_checkpoint;

typedef struct engine_mpi engine_mpi;

struct baton_engine {
    baton_pool *pool;
    unsigned workers;
    engine_mpi *mpi; /* the MPI executor's (mpi.c); NULL: local */
    unsigned rank;   /* this process's rank under MPI, else 0 */
    baton_mpi_rows mpi_rows;
    /* Under MPI, where the rows lie: the partitions of the plan the rows were last distributed
     * by, in row order, and each one's first row in its rank's state (placement_local). Every
     * rank holds the same placement. n_placement 0: not distributed yet (the states are as
     * created: whole copies, or OWNED shares). */
    baton_partition *placement;
    size_t *placement_local;
    size_t n_placement;
    /* During a step, for baton_engine_halo: the phase running (SIZE_MAX: none) and the step's
     * partitions. */
    size_t running_phase;
    const baton_partition *step_parts;
    size_t n_step_parts;
    /* Under MPI, the running phase's halo rows of this rank's partitions (mpi.c): a block per
     * partition (halo_at[i], SIZE_MAX: another rank's), holding per column (at column_at[c])
     * halo_rows rows before the partition, then halo_rows after it. */
    unsigned char *halo;
    size_t halo_cap;
    size_t *halo_at;
    size_t halo_at_cap;
    size_t halo_rows;
    size_t column_at[BATON_STATE_MAX_COLUMNS];
    baton_replay_mode replay;
    baton_state *state;
    baton_plan *plan; /* NULL: the single plan over every row */
    engine_phase phases[BATON_ENGINE_MAX_PHASES];
    size_t n_phases;
    uint64_t step;

    engine_shadow *shadows; /* one per column, grown as columns are added */
    size_t n_shadows;

    baton_replay_entry *recording;
    size_t n_recorded;
    size_t recording_cap;
    size_t verify_at; /* VERIFY: the next entry to compare */

    baton_checkpoint_policy checkpoint_policy;
    uint64_t checkpoint_every;
    unsigned checkpoint_keep;
    char *checkpoint_dir;      /* NULL: in memory only */
    char *checkpoint_identity; /* NULL: none */
    bool checkpoint_sync;
    engine_checkpoint *checkpoints; /* oldest first, at most checkpoint_keep */
    size_t n_checkpoints;

    uint64_t steps_completed, steps_failed, last_step_ns, total_step_ns;
    uint64_t fingerprints_recorded, fingerprints_verified, checkpoints_created;
    uint64_t partition_steps, partition_rows;
};

/*
 * The functions the engine's files share, in sections named after the file that defines them,
 * each listing exactly what that file defines for the others. checkpoint_format.c and
 * checkpoint_write.c are declared in checkpoint_impl.h, fingerprint.c in state_impl.h.
 */

/* ---- checkpoint.c ---- */

/* Checks the config's checkpoint fields and sets the engine's (creating the directory; on error
 * none is left set). */
int baton__engine_checkpoint_init(baton_engine *engine, const baton_engine_config *cfg);
/* Frees the kept checkpoints. */
void baton__engine_checkpoint_fini(baton_engine *engine);
/* After a completed step, takes the policy's checkpoint when one is due. */
int baton__engine_checkpoint_after_step(baton_engine *engine);
/* At create, with a checkpoint identity and directory: BATON_EMISMATCH when the directory holds a
 * checkpoint file of another identity (or none), naming it and both. */
int baton__engine_checkpoint_check_dir(baton_engine *engine);

#ifdef BATON_HAVE_MPI
/* ---- mpi.c ---- */

/*
 * The MPI executor (collective calls: every rank makes them, in the same order).
 *  init, fini     the ranks of MPI_COMM_WORLD as the workers (workers: the config's, 0 or the
 *                 rank count);
 *  prepare        at a step's start: checks the rows and the plan and moves the rows to where
 *                 the plan puts them (engine->placement is then the plan's); every rank
 *                 returns the same result;
 *  agree          after a phase: every rank learns the smallest failing partition
 *                 (*inout_failed, SIZE_MAX: none) or a rank's failure outside the partitions
 *                 (*inout_failed SIZE_MAX, *inout_rc not 0), and its code, and returns it;
 *  agree_status   every rank returns the lowest failing rank's rc and message (0: none failed);
 *  halo           before a phase of halo_rows > 0: fills engine->halo for this rank's
 *                 partitions (every rank returns the same result);
 *  fingerprint    the global state's fingerprint from every rank's rows;
 *  sum            sums values across the ranks, in place;
 *  global_rows    the rows of the global state (engine->state holds this rank's);
 *  agree_resume   after each rank found what it would resume (rc, step, placement hash): 0
 *                 when every rank can resume the same step and placement, else the error.
 */
int baton__engine_mpi_init(baton_engine *engine, unsigned workers);
void baton__engine_mpi_fini(baton_engine *engine);
int baton__engine_mpi_agree_status(baton_engine *engine, int rc);
int baton__engine_mpi_agree(baton_engine *engine, size_t *inout_failed, int *inout_rc);
void baton__engine_mpi_sum(const baton_engine *engine, uint64_t *values, size_t n);
size_t baton__engine_mpi_global_rows(const baton_engine *engine);
int baton__engine_mpi_agree_resume(baton_engine *engine, int rc, uint64_t step,
                                   uint64_t placement_hash);
int baton__engine_mpi_prepare(baton_engine *engine);
int baton__engine_mpi_halo(baton_engine *engine, size_t halo_rows);
int baton__engine_mpi_fingerprint(baton_engine *engine, uint64_t *out);
#endif

/* ---- placement.c ---- */

/* Each of the n partitions' first row in its worker's state, a new array (NULL when memory ran
 * out). */
size_t *baton__placement_offsets(const baton_partition *parts, size_t n);
/* Makes parts and local (n each, both baton__malloc'd, taken over; NULL with n 0: not
 * distributed) the engine's placement, freeing the one it had. */
void baton__engine_adopt_placement(baton_engine *engine, baton_partition *parts, size_t *local,
                                   size_t n);

/* ---- replay.c ---- */

/* Records or verifies the fingerprint of the step just run (engine->step is its number);
 * *fingerprint receives it. */
int baton__engine_replay_step(baton_engine *engine, uint64_t *fingerprint);

#endif /* BATON_ENGINE_IMPL_H */
