/*
 * baton/engine.h — the engine layer: a step engine over columnar state.
 *
 * State. A baton_state holds rows: a 64-bit id per row (unique) and named, typed columns (float,
 * double, int64), each one contiguous array indexed by row (structure of arrays), described by a
 * schema given at create time; columns can be added later (existing rows read 0). Rows are added
 * at the end and removed by id between steps; removal keeps the order of the remaining rows, so
 * that the row order, and with it the fingerprint, depends only on the sequence of changes.
 *
 * Fingerprints. A state's fingerprint is computed per chunk of BATON_FINGERPRINT_CHUNK_ROWS rows
 * (the last chunk may be shorter) and the chunks' hashes are combined in chunk order, so the
 * result is the same for any partitioning and any number of threads, and the chunks are hashed
 * in parallel. The exact definition (the byte streams hashed) is in baton_state_fingerprint's
 * comment; it is part of the API and will not change.
 *
 * Partition plans. A plan splits the rows into contiguous row ranges, each assigned to a worker.
 * baton_plan_validate checks a plan against a row count and a worker count and names the
 * partition and rows of the first problem it finds.
 *
 * Threads. A state is driven by one thread at a time (create, add, remove, destroy); its column
 * arrays may be read and written by many threads at once over disjoint row ranges (that is how
 * phases run), and read concurrently by fingerprinting. Plans are immutable once created and
 * may be shared freely.
 */
#ifndef BATON_ENGINE_H
#define BATON_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/core.h"
#include "baton/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- columnar state ------------------------------------------------------------------------ */

typedef struct baton_state baton_state;

/* The most columns a state holds. */
#define BATON_STATE_MAX_COLUMNS 256u
/* The longest column name, in bytes (names are ASCII letters, digits, '_', '.', '-'). */
#define BATON_COLUMN_NAME_MAX 63u

typedef enum baton_column_type {
    BATON_COLUMN_FLOAT = 1,  /* float, 4 bytes */
    BATON_COLUMN_DOUBLE = 2, /* double, 8 bytes */
    BATON_COLUMN_INT64 = 3,  /* int64_t, 8 bytes */
} baton_column_type;

/* One column of a schema. name is copied by the state. */
typedef struct baton_column_spec {
    const char *name;
    baton_column_type type;
} baton_column_spec;

/*
 * Creates an empty state (no rows) with the given columns, in that order (column i is index i).
 * n_columns may be 0. *out is owned by the caller until baton_state_destroy.
 * Errors: BATON_EINVAL (NULL out, NULL columns with n_columns > 0, a NULL, empty, too long or
 * badly formed name, an unknown type, more than BATON_STATE_MAX_COLUMNS columns), BATON_EEXIST
 * (two columns with one name; the message names it), BATON_ENOMEM.
 */
BATON_API int baton_state_create(const baton_column_spec *columns, size_t n_columns,
                                 baton_state **out);

/* Frees the state and its arrays (pointers obtained from it become invalid). NULL is ignored. */
BATON_API void baton_state_destroy(baton_state *state);

/*
 * Adds a column after the existing ones; every existing row reads 0 in it. Its index is
 * baton_state_columns() before the call. Errors: as baton_state_create for the spec; BATON_EEXIST;
 * BATON_ENOMEM. On error the state is unchanged.
 */
BATON_API int baton_state_add_column(baton_state *state, const baton_column_spec *spec);

BATON_API size_t baton_state_rows(const baton_state *state);
BATON_API size_t baton_state_columns(const baton_state *state);

/*
 * Column `index`'s name and type. The name points into the state and lives as long as it.
 * Errors: BATON_EINVAL (NULL argument), BATON_ERANGE (index >= columns).
 */
BATON_API int baton_state_column_info(const baton_state *state, size_t index,
                                      baton_column_spec *out);

/* The index of the column called name. Errors: BATON_EINVAL, BATON_ENOTFOUND (names it). */
BATON_API int baton_state_column_index(const baton_state *state, const char *name,
                                       size_t *out_index);

/*
 * The arrays. ids: rows() ids, in row order (read-only: ids change only through add and
 * remove). The typed accessors return column `index`'s array of rows() values, or NULL when the
 * index is out of range or the column has another type (baton_state_column_data returns it
 * whatever the type). A pointer stays valid until the next add_rows, remove_rows, add_column or
 * destroy; with 0 rows it may be NULL.
 */
BATON_API const uint64_t *baton_state_ids(const baton_state *state);
BATON_API float *baton_state_float(baton_state *state, size_t index);
BATON_API double *baton_state_double(baton_state *state, size_t index);
BATON_API int64_t *baton_state_int64(baton_state *state, size_t index);
BATON_API void *baton_state_column_data(baton_state *state, size_t index);

/*
 * Appends n rows with the given ids (every column 0 in them); *out_first_row (may be NULL)
 * receives the first new row's index. Errors: BATON_EINVAL (NULL state, NULL ids with n > 0),
 * BATON_EEXIST (an id already in the state, or twice in ids; the message names the id and
 * where), BATON_ENOMEM. On error no row is added.
 */
BATON_API int baton_state_add_rows(baton_state *state, const uint64_t *ids, size_t n,
                                   size_t *out_first_row);

/*
 * Removes the rows with the given ids; the remaining rows keep their order. Errors: BATON_EINVAL
 * (NULL state, NULL ids with n > 0, an id twice in ids), BATON_ENOTFOUND (an id not in the
 * state; the message names it), BATON_ENOMEM. On error no row is removed.
 */
BATON_API int baton_state_remove_rows(baton_state *state, const uint64_t *ids, size_t n);

/* The row of id. Errors: BATON_EINVAL (NULL argument), BATON_ENOTFOUND. */
BATON_API int baton_state_find(const baton_state *state, uint64_t id, size_t *out_row);

/* Bytes the state holds in memory (arrays at their capacity, the id index, the schema). */
BATON_API size_t baton_state_resident_bytes(const baton_state *state);

/* ---- fingerprints -------------------------------------------------------------------------- */

/* Rows per fingerprint chunk. Part of the definition: it will not change. */
#define BATON_FINGERPRINT_CHUNK_ROWS 4096u

/*
 * The state's fingerprint. Definition (all integers little-endian, XXH3 is XXH3-64):
 *
 *   chunk c covers rows [c * CHUNK, min((c + 1) * CHUNK, rows)), CHUNK =
 *   BATON_FINGERPRINT_CHUNK_ROWS; its hash h_c = XXH3 with seed c over the bytes
 *       the chunk's ids (8 bytes each),
 *       then for each column in index order: its name, a 0 byte, its type (1 byte), and the
 *       chunk's values (4 bytes per float, 8 per double or int64, as stored);
 *   the fingerprint = XXH3 with seed `rows` over h_0 .. h_{k-1} (8 bytes each), k the number of
 *   chunks (k = 0 for an empty state: XXH3 of no bytes, seed 0).
 *
 * Floating-point values are hashed as their bits: -0.0 and 0.0 differ, and so do NaNs with
 * different payloads. The chunks are hashed in parallel on pool (NULL: on the calling thread),
 * and the result does not depend on how. Reads the state; call it when no phase writes it.
 * Errors: BATON_EINVAL (NULL state or out), BATON_ENOMEM, BATON_ECLOSED (pool closing).
 */
BATON_API int baton_state_fingerprint(const baton_state *state, baton_pool *pool, uint64_t *out);

/*
 * The hash h_c of each chunk that lies wholly inside rows [begin, end) and of no other, written
 * to out[c - first_chunk] where first_chunk = begin / CHUNK (begin must be a multiple of CHUNK,
 * end a multiple of CHUNK or rows). For executors that hash a part of the rows each and combine
 * with baton_fingerprint_combine. Errors: BATON_EINVAL, BATON_ERANGE (bounds), BATON_ENOMEM.
 */
BATON_API int baton_state_chunk_hashes(const baton_state *state, baton_pool *pool, size_t begin,
                                       size_t end, uint64_t *out);

/* The fingerprint from the chunk hashes of a state of `rows` rows (k = chunks of rows). */
BATON_API uint64_t baton_fingerprint_combine(const uint64_t *chunk_hashes, size_t k, uint64_t rows);

/* ---- partition plans ----------------------------------------------------------------------- */

/* One partition: rows [begin, end), run by worker `worker` (0 .. workers - 1). */
typedef struct baton_partition {
    size_t begin;
    size_t end;
    unsigned worker;
} baton_partition;

typedef struct baton_plan baton_plan;

/* The most partitions a plan holds. */
#define BATON_PLAN_MAX_PARTITIONS (1u << 20)

/*
 * A plan of one partition covering every row, on worker 0, for 1 worker. rows may be 0 only in
 * this plan (an empty state runs as one empty partition). Errors: BATON_EINVAL, BATON_ENOMEM.
 */
BATON_API int baton_plan_create_single(size_t rows, baton_plan **out);

/*
 * A plan of `count` contiguous partitions of rows [0, rows) whose sizes differ by at most one
 * (the first rows % count get one more), partition i on worker i % workers, for `workers`
 * workers. Errors: BATON_EINVAL (count 0: "zero partitions"; workers 0; count > rows: a
 * partition would be empty, the message says which; count > BATON_PLAN_MAX_PARTITIONS),
 * BATON_ENOMEM.
 */
BATON_API int baton_plan_create_static(size_t rows, size_t count, unsigned workers,
                                       baton_plan **out);

/*
 * A plan of one partition per worker, for `workers` workers: baton_plan_create_static(rows,
 * workers, workers) (partition i on worker i, sizes differing by at most one); with fewer rows
 * than workers, one partition of one row on each of workers 0 .. rows - 1 (a partition is never
 * empty), and for rows 0 the one empty partition [0, 0) on worker 0. With workers 1 it is the
 * single plan. It is the MPI executor's default plan (see baton_engine_create). Errors:
 * BATON_EINVAL (NULL out, workers 0), BATON_ENOMEM.
 */
BATON_API int baton_plan_create_per_worker(size_t rows, unsigned workers, baton_plan **out);

/*
 * A plan from the caller's partitions (copied), for `workers` workers, as given: it is checked
 * only by baton_plan_validate. Errors: BATON_EINVAL (NULL out, NULL parts with n > 0,
 * n > BATON_PLAN_MAX_PARTITIONS), BATON_ENOMEM.
 */
BATON_API int baton_plan_create(const baton_partition *parts, size_t n, unsigned workers,
                                baton_plan **out);

BATON_API void baton_plan_destroy(baton_plan *plan);

BATON_API size_t baton_plan_partitions(const baton_plan *plan);
/* The worker count the plan was made for. */
BATON_API unsigned baton_plan_workers(const baton_plan *plan);
/* Partition i (i < partitions); a zeroed partition when out of range. */
BATON_API baton_partition baton_plan_partition(const baton_plan *plan, size_t i);

/*
 * Checks plan against a state of `rows` rows run by `workers` workers and returns the first
 * problem found, its message naming the partition (by index) and its rows. First the plan:
 *   BATON_EINVAL     the plan has zero partitions;
 *   BATON_EMISMATCH  the plan was made for another worker count than `workers`;
 * then each partition in index order:
 *   BATON_ENOTFOUND  it is assigned to a worker >= workers (a worker that does not exist);
 *   BATON_EINVAL     it is empty (begin == end; also begin > end);
 *   BATON_ERANGE     it ends past `rows` (out of bounds);
 *   BATON_EINVAL     partition 0 does not begin at row 0 (incomplete coverage), or another
 *                    does not begin where the one before it ends (non-contiguous: a gap or an
 *                    overlap);
 * and last:
 *   BATON_EINVAL     the last partition does not end at `rows` (incomplete coverage).
 * The single plan of an empty state (one partition [0, 0)) is valid for rows 0. Returns 0 when
 * the plan is valid. Errors also: BATON_EINVAL (NULL plan, workers 0).
 */
BATON_API int baton_plan_validate(const baton_plan *plan, size_t rows, unsigned workers);

/* ---- the engine: phases, steps, replay ----------------------------------------------------- */

typedef struct baton_engine baton_engine;

/* The most phases an engine runs per step. */
#define BATON_ENGINE_MAX_PHASES 64u
/* The longest phase name, in bytes. */
#define BATON_PHASE_NAME_MAX 63u

/*
 * A phase's work over rows [begin, end) of the state (partition `partition` of the plan, in
 * step `step`, counted from 0). It may read any row and must write only rows of its range, and
 * only the columns its spec declares. (Under the MPI executor the state is the rank's share of
 * the rows, which begin and end index, and "any row" is any of the rank's rows.) Returns 0, or an
 * error (a baton code or any negative int) that stops the step. Runs on a pool worker or the thread
 * that called step; partitions of one phase run in parallel, and every partition of a phase
 * finishes before the next phase starts.
 */
typedef int (*baton_phase_fn)(baton_state *state, size_t begin, size_t end, size_t partition,
                              uint64_t step, void *ctx);

enum {
    /* The phase never returns an error. An engine whose every phase is infallible keeps no
     * copy of what a step overwrites (see baton_engine_step): a step can then not be undone,
     * and needs no memory traffic beyond the phases' own. */
    BATON_PHASE_INFALLIBLE = 1u << 0,
};

typedef struct baton_phase_spec {
    const char *name; /* copied; 1..BATON_PHASE_NAME_MAX bytes */
    baton_phase_fn fn;
    void *ctx;
    /* The columns the phase writes (indices), or NULL with n_writes 0: every column. */
    const size_t *writes;
    size_t n_writes;
    unsigned flags; /* BATON_PHASE_* */
    /* Rows on each side of its partition that the phase reads besides its own, in columns it
     * does not write (0: none; needs writes declared). Under the MPI executor they may be on
     * another rank: a phase reads them through baton_engine_halo, which works under every
     * executor, and the engine brings them over before the phase runs. */
    size_t halo_rows;
} baton_phase_spec;

/* The rows next to a partition, for one column: rows [begin - n_before, begin) of the global
 * state at before and rows [end, end + n_after) at after, each in row order (typed as the
 * column: float, double or int64), as the phases before this one left them. n_before and
 * n_after are the phase's halo_rows, or fewer at the state's first and last rows. */
typedef struct baton_halo {
    const void *before;
    size_t n_before;
    const void *after;
    size_t n_after;
} baton_halo;

typedef enum baton_replay_mode {
    BATON_REPLAY_OFF = 0,    /* no fingerprints */
    BATON_REPLAY_RECORD = 1, /* a fingerprint per step, appended to the engine's recording */
    BATON_REPLAY_VERIFY = 2, /* each step's fingerprint checked against the loaded recording */
} baton_replay_mode;

typedef enum baton_checkpoint_policy {
    BATON_CHECKPOINT_DISABLED = 0, /* checkpoints only on demand (baton_engine_checkpoint) */
    BATON_CHECKPOINT_EVERY = 1,    /* also one after every checkpoint_every-th step */
} baton_checkpoint_policy;

/*
 * Where partitions run.
 *  LOCAL   each partition a task on the config's pool (or the calling thread), on the state's
 *          own arrays.
 *  MPI     worker w is rank w of MPI_COMM_WORLD (the caller has called MPI_Init; workers 0 or
 *          the rank count). Every rank creates its engine the same way and calls every engine
 *          function in the same order: steps, set_plan, get_metrics, checkpoint, restore and
 *          resume are collective. The state is distributed: from the first step on, each rank's
 *          state holds only the rows of its own partitions (the plan's partitions of worker
 *          `rank`, in row order), so a rank's memory is its share of the rows. What a rank
 *          passes to baton_engine_create is set by mpi_rows (baton_mpi_rows). A phase runs on
 *          its rank's state: its begin and end index that rank's rows (the partition's rows in
 *          the global state are baton_plan_partition(plan, partition)), and it may read its
 *          rank's rows and, through baton_engine_halo, its halo rows. A step that runs under
 * another plan than the last one first moves the rows whose owner changes to their new rank. After
 * each phase the ranks agree on failure (all undo, all return the same error); fingerprints combine
 * every rank's chunk hashes and equal a single process's over the global state; metrics are the
 *          run's (rows, partitions and resident bytes summed over the ranks); each rank
 *          checkpoints its rows, and where they lie, into checkpoint_dir/rank-R, and restores
 *          or resumes only when every rank can (BATON_EMISMATCH if the ranks would resume
 *          different steps or placements). Once distributed, the rows may not be added or
 *          removed (BATON_EPERM at the next step). BATON_ENOSYS in a build without MPI.
 *  DEVICE  a GPU: reserved, BATON_ENOSYS in this build.
 */
typedef enum baton_executor_kind {
    BATON_EXECUTOR_LOCAL = 0,
    BATON_EXECUTOR_MPI = 1,
    BATON_EXECUTOR_DEVICE = 2,
} baton_executor_kind;

/*
 * What the state each rank hands to baton_engine_create holds, under the MPI executor.
 *  REPLICATED  the whole state, the same on every rank (the simple way in: every rank builds
 *              it); the first step keeps each rank's own partitions' rows and frees the rest.
 *  OWNED       only the rows of the rank's own partitions under the plan of the first step,
 *              in row order (the way to a state larger than one machine: no rank ever holds
 *              more than its share). The first step checks that every rank holds as many rows
 *              as its partitions cover (BATON_EMISMATCH naming the rank otherwise).
 */
typedef enum baton_mpi_rows {
    BATON_MPI_ROWS_REPLICATED = 0,
    BATON_MPI_ROWS_OWNED = 1,
} baton_mpi_rows;

/* The longest checkpoint identity (baton_engine_config.checkpoint_identity), in bytes. */
#define BATON_CHECKPOINT_IDENTITY_MAX 255u

typedef struct baton_engine_config {
    /* sizeof this struct, or 0 for this header's size. A smaller size (a caller built against an
     * older header) leaves the later fields at their defaults, unread; a size larger than this
     * header's, or smaller than sizeof(size_t), is BATON_EINVAL. */
    size_t struct_size;
    baton_pool *pool;   /* runs the partitions; NULL: every partition on the calling thread */
    unsigned workers;   /* local workers the plan assigns partitions to (0: the pool's
                           worker count, or 1 without a pool) */
    baton_replay_mode replay;
    baton_checkpoint_policy checkpoint_policy;
    uint64_t checkpoint_every;    /* N: EVERY takes a checkpoint after steps N, 2N, ... (>= 1) */
    unsigned checkpoint_keep;     /* K: the newest K checkpoints are kept, older ones deleted
                                     (>= 1 with EVERY; 0 with DISABLED means 1) */
    const char *checkpoint_dir;   /* copied; NULL: checkpoints in memory only, else each is also
                                     written to a file in this directory (created if missing) */
    bool checkpoint_sync;         /* fsync each checkpoint file and the directory (survives a
                                     machine's crash, not only the process's) */
    baton_executor_kind executor; /* BATON_EXECUTOR_LOCAL (0) */
    baton_mpi_rows mpi_rows;      /* MPI executor: what each rank's state holds at create */
    /* What run the checkpoints belong to (copied; NULL or "": none): an opaque string of 1 to
     * BATON_CHECKPOINT_IDENTITY_MAX printable ASCII characters (' ' to '~'), e.g. a hash or a
     * description of what makes the run's states (`baton run` uses "rule=motion agents=N
     * seed=S"). Every checkpoint the engine takes carries it; with one set, the engine refuses
     * another run's checkpoints (see baton_engine_create, restore and resume). */
    const char *checkpoint_identity;
} baton_engine_config;

/*
 * Creates an engine over `state`, which it owns from then on (baton_engine_destroy frees it;
 * on error the caller keeps it). The plan starts as the default plan, which fits any worker or
 * rank count: locally the single plan (every row in one partition, run on the thread that
 * steps), under the MPI executor one partition per rank (baton_plan_create_per_worker over the
 * global row count and the rank count, made afresh at each step). The step counter starts at 0.
 * Errors: BATON_ENOSYS (an executor this build does not support: device; MPI without MPI),
 * BATON_EINVAL (NULL state or out, unknown replay mode, checkpoint policy, executor or
 * mpi_rows, MPI executor before MPI_Init or with workers other than the rank count,
 * checkpoint_every 0 or checkpoint_keep 0 with BATON_CHECKPOINT_EVERY, a checkpoint_identity
 * too long or with a character other than ' ' to '~', struct_size larger than this header's or
 * smaller than sizeof(size_t); each message names the field and value), BATON_EIO (the
 * checkpoint directory cannot be created), BATON_EMISMATCH (checkpoint_identity is set and the
 * checkpoint directory already holds a checkpoint file of another identity, or of none: another
 * run's; the message names the directory, the file and both identities; under MPI every rank
 * fails alike, each checking its own directory), BATON_ENOMEM. A directory that holds
 * checkpoints of the same identity is accepted: they are the same run's, and a resume may
 * restore them.
 */
BATON_API int baton_engine_create(const baton_engine_config *config, baton_state *state,
                                  baton_engine **out);

/* Frees the engine, its state and its recording. NULL is ignored. */
BATON_API void baton_engine_destroy(baton_engine *engine);

/* The engine's state: add or remove rows and columns through it between steps. */
BATON_API baton_state *baton_engine_state(baton_engine *engine);

/*
 * Appends a phase; a step runs the phases in the order they were added. Errors: BATON_EINVAL
 * (NULL engine, spec or fn, a bad name, a write index out of range, unknown flags, halo_rows
 * without declared writes),
 * BATON_EEXIST (a phase of that name exists), BATON_ERANGE (BATON_ENGINE_MAX_PHASES reached),
 * BATON_ENOMEM.
 */
BATON_API int baton_engine_add_phase(baton_engine *engine, const baton_phase_spec *spec);

/*
 * From a phase that declared halo_rows: the rows next to partition `partition` (the one the
 * phase was called for, or another of this rank's) in column `column`, which the phase must
 * not write. Locally they point into the state's arrays; under the MPI executor into copies
 * the engine made before the phase (from other ranks where they live there), valid until the
 * phase ends. Thread-safe: the phase's calls on every partition may ask at once.
 * Errors: BATON_EINVAL (NULL engine or out; a column the running phase writes), BATON_EPERM
 * (no phase is running), BATON_ERANGE (a column or partition out of range, or another rank's
 * partition).
 */
BATON_API int baton_engine_halo(const baton_engine *engine, size_t partition, size_t column,
                                baton_halo *out);

/*
 * Uses a copy of plan from the next step on. It is validated (baton_plan_validate) against the
 * state's rows and the engine's workers at every step, so rows may change between steps; a
 * plan that no longer fits makes the step fail with that error before any phase runs. NULL
 * goes back to the default plan (see baton_engine_create). Under the MPI executor (collective) the
 * plan's rows count the global state, and the next step first moves the rows whose rank the new
 * plan changes. Errors: BATON_EINVAL (NULL engine), BATON_ENOMEM.
 */
BATON_API int baton_engine_set_plan(baton_engine *engine, const baton_plan *plan);

/* What one step did. */
typedef struct baton_step_report {
    uint64_t step;        /* the step's number (from 0) */
    uint64_t total_ns;    /* the whole step, fingerprint included */
    uint64_t fingerprint; /* 0 when replay is off */
    size_t n_phases;
    uint64_t phase_ns[BATON_ENGINE_MAX_PHASES]; /* each phase, all partitions, in order */
} baton_step_report;

/*
 * Runs one step: validates the plan, then every phase in order, each over every partition in
 * parallel; then, when replay is on, fingerprints the state and records or verifies it.
 * When a phase fails, the step stops: the columns the step's phases declared they write are
 * restored to their values before the step (the engine copies them before a phase first
 * writes them, unless every phase is BATON_PHASE_INFALLIBLE), the step counter does not move,
 * and the error is returned with a message naming the phase, the partition and its rows. So a
 * failed step leaves the state as it was. When several partitions fail, the step returns the
 * code of the one with the smallest index, and names it: a failure never keeps a partition below
 * it from running (only those above the smallest failure seen so far may be skipped), so the
 * error, its partition and its message are the same in every run, whatever the timing, locally
 * and under MPI (where the ranks agree on the smallest over all of them). report (may be NULL)
 * receives the timings.
 * Replay errors, each naming the step and the values (the step itself stays applied and
 * counted, so the state that diverged can be inspected):
 *   BATON_EMISMATCH  verify: the fingerprint differs from the recorded one (divergence);
 *   BATON_ERANGE     verify: the recording's next entry is for another step (step mismatch);
 *   BATON_EEOF       verify: the recording has no entry for this step (exhausted).
 * After a completed step, the policy's checkpoint is taken when due; its errors (those of
 * baton_engine_checkpoint) are returned with the step applied and counted.
 * Other errors: BATON_EINVAL (NULL engine), the plan's validation errors, BATON_ENOMEM,
 * BATON_ECLOSED (the pool is closing). Call from one thread at a time, not from a phase.
 */
BATON_API int baton_engine_step(baton_engine *engine, baton_step_report *report);

/*
 * Runs n steps; stops at the first error (returned). reports (may be NULL) receives one report
 * per step run (room for n). *out_done (may be NULL) receives the steps completed.
 */
BATON_API int baton_engine_run(baton_engine *engine, uint64_t n, baton_step_report *reports,
                               uint64_t *out_done);

/* The number of the next step (= steps completed since step 0). */
BATON_API uint64_t baton_engine_current_step(const baton_engine *engine);

/*
 * The fingerprint of the engine's state now (baton_state_fingerprint's, hashed on the engine's
 * pool), whatever the replay mode: the value a step with replay on reports for the state it
 * leaves. Under the MPI executor it is the global state's, equal to a single process's
 * (collective; like a step's start, it first puts the rows where the plan says, if they are
 * not there yet). Between steps, from the thread that steps. Errors: BATON_EINVAL (NULL engine
 * or out), BATON_ENOMEM, BATON_ECLOSED (the pool is closing); under MPI, a step's plan errors.
 */
BATON_API int baton_engine_fingerprint(baton_engine *engine, uint64_t *out);

/* ---- replay recordings ----------------------------------------------------------------------- */

/* One recorded step. */
typedef struct baton_replay_entry {
    uint64_t step;
    uint64_t fingerprint;
} baton_replay_entry;

/*
 * The engine's recording: the entries recorded (RECORD) or loaded (VERIFY), in step order.
 * *out points into the engine until the next step, load or destroy. Errors: BATON_EINVAL.
 */
BATON_API int baton_engine_recording(const baton_engine *engine, const baton_replay_entry **out,
                                     size_t *out_n);

/*
 * Saves the recording to path (replaced atomically: written to path.tmp, synced, renamed). The
 * file: "BATONRPL", a version (4 bytes, 1), the count (8 bytes), the entries (step,
 * fingerprint: 8 bytes each), then XXH3-64 of every byte before it (8 bytes); integers
 * little-endian. Errors: BATON_EINVAL, BATON_EIO (naming the path and the system's error).
 */
BATON_API int baton_engine_replay_save(const baton_engine *engine, const char *path);

/*
 * Loads a recording saved by baton_engine_replay_save in place of the engine's; verify starts
 * from its first entry whose step is >= the current step. Errors: BATON_EINVAL, BATON_EIO (the
 * file cannot be read, is not a recording, has another version, is truncated or its checksum
 * does not match: the message says which), BATON_ENOMEM. On error the recording is unchanged.
 */
BATON_API int baton_engine_replay_load(baton_engine *engine, const char *path);

/* ---- checkpoints ----------------------------------------------------------------------------- */

/*
 * Files. With a checkpoint_dir (under the MPI executor, each rank's checkpoint_dir/rank-R),
 * checkpoint (step, name) is the file "ckpt-SSSSSSSSSSSSSSSSSSSS-NAME.bck", the step in 20
 * zero-padded decimal digits, so that the names sort in step order. A large checkpoint (4 MiB
 * or more) of an engine on a pool of two or more workers is written in two files, that one and
 * the rest of it in "ckpt-...-NAME.bck.part" (the main file's checksum covers the part's). Each
 * file is written as its name plus ".tmp" and renamed (the part first), so a file of a
 * checkpoint's name is complete. baton_engine_resume reads only "ckpt-*.bck" files (and their
 * parts); in the engine's own directory it deletes ".tmp" files and parts without their main
 * file, which only a crash leaves. Other files in the directory are left alone. The format is
 * described in src/engine/checkpoint_format.c.
 */

/* The longest checkpoint name, in bytes (letters, digits, '_', '.', '-'). */
#define BATON_CHECKPOINT_NAME_MAX 63u

/*
 * Takes a checkpoint of the state now (between steps) under `name` (NULL: "manual"): the step
 * counter, the schema, the ids, every column and the engine's checkpoint_identity. It is kept in
 * memory and, with a checkpoint directory, written to a file there (replaced atomically: a
 * temporary file, renamed); the oldest checkpoints beyond the newest checkpoint_keep are then
 * deleted, from memory and disk. Once checkpoint_keep are kept, the new one is written over the
 * oldest's file or buffer (its pages are in the page cache already), so a write that fails has also
 * lost that oldest one. The policy's automatic checkpoints are named "auto": the policy takes one
 * when the step counter reaches a multiple of checkpoint_every (after steps N, 2N, ...), but not
 * after a step whose replay verification failed. Errors: BATON_EINVAL (NULL engine, a bad name),
 * BATON_EIO (the file; the message names it and the system's error), BATON_ENOMEM.
 */
BATON_API int baton_engine_checkpoint(baton_engine *engine, const char *name);

/*
 * Restores the most recently taken checkpoint called name (NULL: of any name) kept by this
 * engine: state and step counter as they were when it was taken. The state handle stays the
 * same, but its arrays and column names are replaced: pointers taken from it before become
 * invalid. Checkpoints taken after the restored one are kept. With replay RECORD, recorded
 * entries for steps at or after the restored step are dropped; with VERIFY, verification goes
 * on from the restored step. Errors: BATON_EINVAL, BATON_ENOTFOUND (no such checkpoint),
 * BATON_EIO (its file is damaged or gone), BATON_EMISMATCH (the engine's schema changed since,
 * e.g. a column was added; or the engine has a checkpoint_identity and the checkpoint, a file
 * a resume adopted, carries another or none: the message names the directory and both),
 * BATON_ENOMEM. On error the engine is unchanged.
 */
BATON_API int baton_engine_restore(baton_engine *engine, const char *name);

/*
 * Restores the checkpoint file in dir with the highest step whose integrity check passes
 * (files that fail it are skipped, and named in the message if none is left): for a process
 * that starts again after a crash. The file's schema must equal the engine's (the phases refer
 * to columns by index); a valid file of another schema stops the search with BATON_EMISMATCH,
 * and so does, for an engine with a checkpoint_identity, a valid file that carries another
 * identity or none (a file of format version 1 or 2, or of an engine without one): another
 * run's checkpoints are never mixed into this one. An engine without an identity checks none.
 * Pointers into the state become invalid, as with baton_engine_restore. When dir is the
 * engine's own checkpoint directory, its older files count as kept checkpoints from then on
 * (retention deletes them in turn). Errors: BATON_EINVAL, BATON_ENOTFOUND (dir holds no valid
 * checkpoint), BATON_EMISMATCH (another schema: the message names the first difference; or
 * another identity: the message names the directory, the file and both identities),
 * BATON_EIO, BATON_ENOMEM.
 */
BATON_API int baton_engine_resume(baton_engine *engine, const char *dir);

/*
 * One kept checkpoint, newest last. name and path point into the engine, valid until the
 * checkpoint is no longer kept (retention, a resume in the engine's directory) or the engine
 * is destroyed. The struct has no struct_size: path was added after bytes, so a program built
 * against a header without it must be rebuilt (the library's major version is 0).
 */
typedef struct baton_checkpoint_info {
    const char *name;
    uint64_t step;
    size_t bytes;     /* its size: in memory, or on disk (its file, and its part if it has one) */
    const char *path; /* its file (see "Files" above), NULL for a checkpoint kept in memory */
} baton_checkpoint_info;

/* The checkpoints kept, oldest first, at most cap of them; *out_n receives how many are kept.
 * Errors: BATON_EINVAL. */
BATON_API int baton_engine_checkpoints(const baton_engine *engine, baton_checkpoint_info *out,
                                       size_t cap, size_t *out_n);

/* ---- the motion rule: the built-in example workload ------------------------------------------ */

/* The motion rule's time step. */
#define BATON_ENGINE_MOTION_DT 0.01f

/*
 * A state of `agents` rows for the motion rule: ids 1..agents and the float columns x, y, z,
 * vx, vy, vz (indices 0..5), positions 0 and velocities in [-1, 1) drawn from seed (the same
 * seed gives the same state on every machine). Errors: BATON_EINVAL (NULL out), BATON_ENOMEM.
 */
BATON_API int baton_engine_motion_state(size_t agents, uint64_t seed, baton_state **out);

/*
 * Appends rows [begin, end) of the motion state of `agents` agents drawn from seed (the rows
 * baton_engine_motion_state would hold there, ids begin + 1 .. end) to state, which has the
 * motion state's columns: so that under the MPI executor with BATON_MPI_ROWS_OWNED a rank can
 * build only its partitions' rows, calling this once per partition in row order. Errors:
 * BATON_EINVAL (NULL state, end < begin or end > agents), BATON_EMISMATCH (the state lacks the
 * columns), those of baton_state_add_rows (an id already there). On error nothing is added.
 */
BATON_API int baton_engine_motion_add_rows(baton_state *state, size_t agents, uint64_t seed,
                                           size_t begin, size_t end);

/*
 * Adds the motion rule as the phase "motion" (infallible; writes x, y, z): for every row,
 * x += vx * DT, y += vy * DT, z += vz * DT, in float arithmetic without contraction. The
 * engine's state must have the motion state's first six columns. Errors: those of
 * baton_engine_add_phase; BATON_EMISMATCH (the state lacks the columns; names the first).
 */
BATON_API int baton_engine_add_motion(baton_engine *engine);

/* ---- metrics ------------------------------------------------------------------------------- */

typedef struct baton_phase_metrics {
    const char *name; /* points into the engine */
    uint64_t executions;
    uint64_t total_ns;
} baton_phase_metrics;

typedef struct baton_engine_metrics {
    uint64_t current_step;
    size_t rows;
    size_t columns;
    size_t phases;
    size_t resident_bytes;    /* the state's, plus the engine's own buffers */
    uint64_t steps_completed; /* steps applied (also those whose verification or checkpoint then
                                 failed) */
    uint64_t steps_failed;    /* steps that failed and were not applied (a plan that does not
                                 fit, a failing phase, memory) */
    uint64_t last_step_ns;
    uint64_t total_step_ns;
    uint64_t fingerprints_recorded;
    uint64_t fingerprints_verified;
    uint64_t checkpoints_created;
    uint64_t partition_steps; /* partitions run (one per partition per phase per step) */
    uint64_t partition_rows;  /* rows those runs covered */
    baton_phase_metrics phase[BATON_ENGINE_MAX_PHASES];
} baton_engine_metrics;

/* Fills *out. Errors: BATON_EINVAL. Call from the thread that steps the engine. */
BATON_API int baton_engine_get_metrics(const baton_engine *engine, baton_engine_metrics *out);

#ifdef __cplusplus
}
#endif

#endif /* BATON_ENGINE_H */
