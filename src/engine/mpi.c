/*
 * mpi.c — the MPI executor: the partitions of a plan on the ranks of MPI_COMM_WORLD, worker w
 * being rank w (built only when CMake finds MPI; BATON_HAVE_MPI).
 *
 * DESIGN
 *  - Ownership. Every rank builds the same state (the same rows, in the same order) and runs a
 *    step over the partitions assigned to it only, so each partition's rows are changed by one
 *    rank for the whole run and never travel: only control messages (an agreement on failure
 *    per phase), chunk hashes and metrics do. The other ranks' rows in a rank's arrays are
 *    stale copies it never reads for a result. This first version keeps those copies, so a
 *    rank's memory is the whole state's; and a phase may read only its own partition's rows
 *    (there is no exchange of neighbouring rows between steps).
 *  - Failure. After each phase the ranks agree (MPI_Allreduce, MINLOC) on the smallest failing
 *    partition, or on a rank whose pool failed; then every rank restores its shadows, and the
 *    failing rank's code is broadcast from its owner, so every rank returns the same error.
 *  - Fingerprints. A chunk of rows (BATON_FINGERPRINT_CHUNK_ROWS) is hashed by the rank that
 *    owns its first row. A chunk that crosses into partitions of other ranks first receives
 *    their rows of it (point to point, each column's slice), into the designated rank's stale
 *    copy of them. The chunk hashes are then summed across ranks (each chunk has one nonzero
 *    contributor), so every rank combines the same list into the same fingerprint, and records
 *    or verifies it the same way.
 *  - The communicator is a duplicate of MPI_COMM_WORLD, so the engine's messages never match
 *    the application's.
 */
#include <limits.h>
#include <mpi.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "engine/engine_impl.h"
#include "engine/state_impl.h"

struct engine_mpi {
    MPI_Comm comm;
};

int baton__engine_mpi_init(baton_engine *engine, unsigned workers)
{
    const char *who = "baton_engine_create";
    int initialized = 0, size = 0, rank = 0;
    MPI_Initialized(&initialized);
    if (!initialized)
        return baton__error(BATON_EINVAL,
                            "%s: the MPI executor needs MPI_Init to have been called", who);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (workers != 0 && workers != (unsigned)size)
        return baton__error(BATON_EINVAL,
                            "%s: workers %u, but MPI_COMM_WORLD has %d ranks (a worker is a rank)",
                            who, workers, size);
    engine_mpi *mpi = baton__malloc(sizeof *mpi);
    if (mpi == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory", who);
    if (MPI_Comm_dup(MPI_COMM_WORLD, &mpi->comm) != MPI_SUCCESS) {
        baton__free(mpi);
        return baton__error(BATON_EIO, "%s: MPI_Comm_dup failed", who);
    }
    engine->mpi = mpi;
    engine->rank = (unsigned)rank;
    engine->workers = (unsigned)size;
    return 0;
}

void baton__engine_mpi_fini(baton_engine *engine)
{
    if (engine->mpi == NULL)
        return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Comm_free(&engine->mpi->comm);
    baton__free(engine->mpi);
    engine->mpi = NULL;
}

/* MINLOC keys: a failing partition's index, or these (the same on every rank). */
#define AGREE_NO_PARTITION (LONG_MAX - 1) /* a failure outside any partition: memory, the pool */
#define AGREE_NONE LONG_MAX

int baton__engine_mpi_agree(baton_engine *engine, size_t *inout_failed, int *inout_rc)
{
    struct {
        long part;
        int rank;
    } mine = {*inout_failed != SIZE_MAX ? (long)*inout_failed
              : *inout_rc != 0          ? AGREE_NO_PARTITION
                                        : AGREE_NONE,
              (int)engine->rank},
      first;
    MPI_Allreduce(&mine, &first, 1, MPI_LONG_INT, MPI_MINLOC, engine->mpi->comm);
    if (first.part == AGREE_NONE) {
        *inout_failed = SIZE_MAX;
        *inout_rc = 0;
        return 0;
    }
    int rc = *inout_rc;
    MPI_Bcast(&rc, 1, MPI_INT, first.rank, engine->mpi->comm);
    *inout_failed = first.part != AGREE_NO_PARTITION ? (size_t)first.part : SIZE_MAX;
    *inout_rc = rc;
    return rc;
}

/* The rank that owns row `row` (the plan is valid: contiguous, in order). */
static size_t owner_index(const baton_partition *parts, size_t n, size_t row)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (parts[mid].begin <= row)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Moves every piece of a chunk that another rank owns to the chunk's designated rank. */
static int gather_split_chunks(baton_engine *engine, const baton_partition *parts, size_t n,
                               size_t rows)
{
    const size_t chunk = BATON_FINGERPRINT_CHUNK_ROWS;
    size_t columns = baton_state_columns(engine->state);
    size_t max_requests = 2 * n * (columns > 0 ? columns : 1);
    MPI_Request *requests = baton__malloc(max_requests * sizeof *requests);
    if (requests == NULL)
        return baton__error(BATON_ENOMEM, "baton_engine_step: no memory for MPI requests");
    int n_requests = 0, tag = 0; /* the same sequence on every rank; below MPI's 32767 floor */
    /* Every partition boundary that falls inside a chunk splits it; walk partitions in order. */
    for (size_t p = 0; p < n; p++) {
        size_t c = parts[p].begin / chunk;
        size_t chunk_begin = c * chunk;
        if (parts[p].begin == chunk_begin)
            continue; /* starts a chunk: its first row is its own */
        size_t designated = parts[owner_index(parts, n, chunk_begin)].worker;
        size_t piece_end = parts[p].end < chunk_begin + chunk ? parts[p].end : chunk_begin + chunk;
        if (piece_end > rows)
            piece_end = rows;
        unsigned owner = parts[p].worker;
        for (size_t col = 0; col < columns; col++, tag = (tag + 1) % 32767) {
            if (owner == designated)
                continue;
            size_t esize = engine->state->columns[col]->width;
            unsigned char *data = engine->state->columns[col]->values;
            unsigned char *at = data + parts[p].begin * esize;
            int count = (int)((piece_end - parts[p].begin) * esize);
            if (engine->rank == owner)
                MPI_Isend(at, count, MPI_BYTE, (int)designated, tag, engine->mpi->comm,
                          &requests[n_requests++]);
            else if (engine->rank == designated)
                MPI_Irecv(at, count, MPI_BYTE, (int)owner, tag, engine->mpi->comm,
                          &requests[n_requests++]);
        }
    }
    MPI_Waitall(n_requests, requests, MPI_STATUSES_IGNORE);
    baton__free(requests);
    return 0;
}

int baton__engine_mpi_fingerprint(baton_engine *engine, const baton_partition *parts, size_t n,
                                  uint64_t *out)
{
    const size_t chunk = BATON_FINGERPRINT_CHUNK_ROWS;
    size_t rows = baton_state_rows(engine->state);
    size_t k = (rows + chunk - 1) / chunk;
    int rc = gather_split_chunks(engine, parts, n, rows);
    if (rc != 0)
        return rc;
    uint64_t *mine = baton__calloc(k > 0 ? k : 1, sizeof *mine);
    uint64_t *all = baton__calloc(k > 0 ? k : 1, sizeof *all);
    if (mine == NULL || all == NULL) {
        baton__free(mine);
        baton__free(all);
        return baton__error(BATON_ENOMEM, "baton_engine_step: no memory for %zu chunk hashes", k);
    }
    /* Hash the runs of consecutive chunks this rank is designated for, each run in parallel. */
    for (size_t c = 0; c < k && rc == 0;) {
        size_t first = c;
        while (c < k && parts[owner_index(parts, n, c * chunk)].worker == engine->rank)
            c++;
        if (c > first) {
            size_t end = c * chunk < rows ? c * chunk : rows;
            rc = baton_state_chunk_hashes(engine->state, engine->pool, first * chunk, end,
                                          mine + first);
        } else {
            c++;
        }
    }
    /* Every rank reaches the reduction, failed or not, so that none waits forever; a failure
     * anywhere is then everyone's (MAX of the codes' negations). */
    int fail = rc != 0 ? -rc : 0, any = 0;
    MPI_Allreduce(&fail, &any, 1, MPI_INT, MPI_MAX, engine->mpi->comm);
    if (any == 0)
        MPI_Allreduce(mine, all, (int)k, MPI_UINT64_T, MPI_SUM, engine->mpi->comm);
    if (any == 0)
        *out = baton_fingerprint_combine(all, k, rows);
    else if (rc == 0)
        rc = baton__error(-any, "baton_engine_step: another rank failed to fingerprint");
    baton__free(mine);
    baton__free(all);
    return rc;
}

void baton__engine_mpi_sum(const baton_engine *engine, uint64_t *values, size_t n)
{
    MPI_Allreduce(MPI_IN_PLACE, values, (int)n, MPI_UINT64_T, MPI_SUM, engine->mpi->comm);
}

int baton__engine_mpi_agree_resume(baton_engine *engine, int rc)
{
    /* MAX over (failed, step, -step): who failed, and the newest and oldest step resumed. */
    uint64_t mine[3] = {rc != 0, rc == 0 ? engine->step : 0,
                        rc == 0 ? UINT64_MAX - engine->step : 0},
             all[3];
    MPI_Allreduce(mine, all, 3, MPI_UINT64_T, MPI_MAX, engine->mpi->comm);
    if (rc != 0)
        return rc;
    if (all[0] != 0)
        return baton__error(BATON_EIO, "baton_engine_resume: another rank could not resume");
    uint64_t newest = all[1], oldest = UINT64_MAX - all[2];
    if (newest != oldest)
        return baton__error(BATON_EMISMATCH,
                            "baton_engine_resume: the ranks' newest valid checkpoints are of "
                            "different steps (%llu to %llu): resume from a directory whose ranks "
                            "agree",
                            (unsigned long long)oldest, (unsigned long long)newest);
    return 0;
}
