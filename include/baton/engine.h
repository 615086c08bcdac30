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
BATON_API int baton_state_fingerprint(const baton_state *state, baton_pool *pool,
                                      uint64_t *out);

/*
 * The hash h_c of each chunk that lies wholly inside rows [begin, end) and of no other, written
 * to out[c - first_chunk] where first_chunk = begin / CHUNK (begin must be a multiple of CHUNK,
 * end a multiple of CHUNK or rows). For executors that hash a part of the rows each and combine
 * with baton_fingerprint_combine. Errors: BATON_EINVAL, BATON_ERANGE (bounds), BATON_ENOMEM.
 */
BATON_API int baton_state_chunk_hashes(const baton_state *state, baton_pool *pool, size_t begin,
                                       size_t end, uint64_t *out);

/* The fingerprint from the chunk hashes of a state of `rows` rows (k = chunks of rows). */
BATON_API uint64_t baton_fingerprint_combine(const uint64_t *chunk_hashes, size_t k,
                                             uint64_t rows);

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

#ifdef __cplusplus
}
#endif

#endif /* BATON_ENGINE_H */
