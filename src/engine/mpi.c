/*
 * mpi.c — the MPI executor: the partitions of a plan on the ranks of MPI_COMM_WORLD, worker w
 * being rank w, each rank holding its own partitions' rows (built only when CMake finds MPI;
 * BATON_HAVE_MPI).
 *
 * DESIGN
 *  - Ownership. The global state is the rows of the plan's partitions in row order; rank r's
 *    baton_state holds the rows of r's partitions only, in row order (engine->placement says
 *    which partitions those are and where each begins in its rank's state). Rows travel only
 *    when the plan changes (prepare, at the next step's start, moves the rows whose rank
 *    changes) or, once, at the first step of a REPLICATED engine (each rank keeps its share of
 *    its whole copy). A step's phases read and write the rank's own arrays; control messages
 *    (an agreement per phase), the rows of the chunks that straddle ranks, chunk hashes and
 *    metrics are all that cross ranks per step.
 *  - Moving rows. Every rank walks the same list of segments (the intersections of the old
 *    placement's partitions with the new plan's), so each knows what it sends, what it
 *    receives and where each lands without asking: first the ids, then a new state is built
 *    from them (its id index, its zeroed columns), then the columns are received straight
 *    into it. Each allocation is agreed on before the bytes that need it move, so a rank that
 *    ran out of memory makes every rank keep its old state instead of hanging a send.
 *  - Failure. Every error that one rank can meet alone (memory, a plan its rows do not fit)
 *    is agreed on (agree_status: MINLOC over the ranks that failed, then the first one's code
 *    and message broadcast), so that every rank returns the same error and none waits for a
 *    message that is not coming. After each phase the ranks agree (MINLOC) on the smallest
 *    failing partition, and the failing rank's code is broadcast.
 *  - Fingerprints. A chunk of rows (BATON_FINGERPRINT_CHUNK_ROWS) is hashed by the rank that
 *    owns its first row. Runs of chunks wholly on that rank are contiguous in its state and
 *    hashed there in parallel; a chunk that straddles ranks is assembled from its pieces in a
 *    scratch chunk (the other ranks send theirs; sends are posted before any wait, and every
 *    wait is for a chunk no later than the sender's, so no rank waits on one that waits on
 *    it). The chunk hashes are then summed across ranks (each chunk has one nonzero
 *    contributor), so every rank combines the same list into the same fingerprint.
 *  - Halo rows. Before a phase that reads rows next to its partitions, every rank walks the
 *    same list of pieces (for each partition, the parts of its neighbours within halo_rows of
 *    it) and sends the pieces it owns to the ranks of the partitions that read them, which
 *    receive them into a block per partition; pieces whose reader and owner are one rank are
 *    copied. The blocks live in the engine, grown as needed, not reallocated per step.
 *  - The communicator is a duplicate of MPI_COMM_WORLD, so the engine's messages never match
 *    the application's. Messages are split at 1 GiB (MPI counts are ints); between two ranks,
 *    messages of one tag match in the order they were posted, which both sides walk alike.
 */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "engine/engine_impl.h"
#include "engine/state_impl.h"

#define CHUNK_ROWS ((size_t)BATON_FINGERPRINT_CHUNK_ROWS)
/* The largest single message: MPI counts bytes in an int. */
#define MESSAGE_MAX ((size_t)1 << 30)

struct engine_mpi {
    MPI_Comm comm;
    unsigned size;
};

int baton__engine_mpi_init(baton_engine *engine, unsigned workers)
{
    const char *who = "baton_engine_create";
    int initialized = 0, size = 0, rank = 0;
    MPI_Initialized(&initialized);
    if (!initialized)
        return baton__error(BATON_EINVAL, "%s: the MPI executor needs MPI_Init to have been called",
                            who);
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
    mpi->size = (unsigned)size;
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

/* ---- agreement ------------------------------------------------------------------------------ */

/* Room for an error message passed between ranks. */
#define MESSAGE_ROOM 512

int baton__engine_mpi_agree_status(baton_engine *engine, int rc)
{
    struct {
        int ok; /* 0: failed, so that MINLOC finds the lowest failing rank */
        int rank;
    } mine = {rc == 0, (int)engine->rank}, first;
    MPI_Allreduce(&mine, &first, 1, MPI_2INT, MPI_MINLOC, engine->mpi->comm);
    if (first.ok)
        return 0;
    struct {
        int rc;
        char message[MESSAGE_ROOM];
    } what = {rc, ""};
    if (first.rank == (int)engine->rank)
        snprintf(what.message, sizeof what.message, "%s", baton_last_error_message());
    MPI_Bcast(&what, (int)sizeof what, MPI_BYTE, first.rank, engine->mpi->comm);
    if (first.rank == (int)engine->rank)
        return rc;
    return baton__error(what.rc, "%s (on rank %d)", what.message, first.rank);
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

void baton__engine_mpi_sum(const baton_engine *engine, uint64_t *values, size_t n)
{
    MPI_Allreduce(MPI_IN_PLACE, values, (int)n, MPI_UINT64_T, MPI_SUM, engine->mpi->comm);
}

size_t baton__engine_mpi_global_rows(const baton_engine *engine)
{
    if (engine->n_placement > 0)
        return engine->placement[engine->n_placement - 1].end;
    uint64_t rows = baton_state_rows(engine->state);
    if (engine->mpi_rows == BATON_MPI_ROWS_OWNED)
        baton__engine_mpi_sum(engine, &rows, 1);
    return (size_t)rows;
}

int baton__engine_mpi_agree_resume(baton_engine *engine, int rc, uint64_t step,
                                   uint64_t placement_hash)
{
    rc = baton__engine_mpi_agree_status(engine, rc);
    if (rc != 0)
        return rc;
    /* MAX over each value and its complement: the largest and the smallest of each. */
    uint64_t mine[4] = {step, UINT64_MAX - step, placement_hash, UINT64_MAX - placement_hash},
             all[4];
    MPI_Allreduce(mine, all, 4, MPI_UINT64_T, MPI_MAX, engine->mpi->comm);
    uint64_t newest = all[0], oldest = UINT64_MAX - all[1];
    if (newest != oldest)
        return baton__error(BATON_EMISMATCH,
                            "baton_engine_resume: the ranks' newest valid checkpoints are of "
                            "different steps (%llu to %llu): resume from a directory whose ranks "
                            "agree",
                            (unsigned long long)oldest, (unsigned long long)newest);
    if (all[2] != UINT64_MAX - all[3])
        return baton__error(BATON_EMISMATCH,
                            "baton_engine_resume: the ranks' checkpoints of step %llu place the "
                            "rows differently (taken under different plans?)",
                            (unsigned long long)newest);
    return 0;
}

/* ---- moving rows between ranks -------------------------------------------------------------- */

/* The index of the partition that holds `row` (parts: contiguous, in row order, n >= 1). */
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

/* Requests in flight. Sized before the first message of an exchange is posted (request_room),
 * so that posting cannot fail halfway: a rank that stopped posting would leave its peers'
 * sends unmatched. */
typedef struct request_list {
    MPI_Request *at;
    size_t n, cap;
} request_list;

/* Room for `count` requests; false when memory ran out. */
static bool request_room(request_list *list, size_t count)
{
    list->n = 0;
    return baton__grow_array((void **)&list->at, &list->cap, count > 0 ? count : 1,
                             sizeof *list->at);
}

/* The requests a rank posts for `rows` rows of `row_bytes` each sent or received in at most
 * `pieces` pieces: one per piece, and one more per MESSAGE_MAX bytes. */
static size_t requests_for(size_t pieces, size_t rows, size_t row_bytes, size_t arrays)
{
    return pieces * arrays + rows * row_bytes / MESSAGE_MAX + arrays;
}

/* Posts a send of len bytes at buf to peer, split at MESSAGE_MAX, into the room request_room
 * made. */
static void post_send(baton_engine *engine, request_list *list, const void *buf, size_t len,
                      unsigned peer, int tag)
{
    for (size_t at = 0; at < len;) {
        size_t n = len - at < MESSAGE_MAX ? len - at : MESSAGE_MAX;
        MPI_Isend((const unsigned char *)buf + at, (int)n, MPI_BYTE, (int)peer, tag,
                  engine->mpi->comm, &list->at[list->n++]);
        at += n;
    }
}

/* The matching receive into buf, split alike. */
static void post_recv(baton_engine *engine, request_list *list, void *buf, size_t len,
                      unsigned peer, int tag)
{
    for (size_t at = 0; at < len;) {
        size_t n = len - at < MESSAGE_MAX ? len - at : MESSAGE_MAX;
        MPI_Irecv((unsigned char *)buf + at, (int)n, MPI_BYTE, (int)peer, tag, engine->mpi->comm,
                  &list->at[list->n++]);
        at += n;
    }
}

static void wait_all(request_list *list)
{
    MPI_Waitall((int)list->n, list->at, MPI_STATUSES_IGNORE);
    list->n = 0;
}

/* Where rows go: from the old placement (or, `replicated`, from every rank's whole copy) to the
 * new plan's partitions. */
typedef struct move_plan {
    const baton_partition *old_parts, *new_parts;
    const size_t *old_local, *new_local;
    size_t n_old, n_new;
    bool replicated;
} move_plan;

/* Sends and receives one array of `width` bytes per row (src: this rank's, in the old layout;
 * dst: in the new one), and copies what stays on this rank. Posts; wait_all completes. */
static void move_array(baton_engine *engine, const move_plan *m, request_list *list,
                       const unsigned char *src, unsigned char *dst, size_t width, int tag)
{
    unsigned me = engine->rank;
    for (size_t i = 0, j = 0; i < m->n_old && j < m->n_new;) {
        const baton_partition *o = &m->old_parts[i], *p = &m->new_parts[j];
        size_t a = o->begin > p->begin ? o->begin : p->begin;
        size_t b = o->end < p->end ? o->end : p->end;
        if (a < b) {
            unsigned from = m->replicated ? me : o->worker, to = p->worker;
            size_t at_src = m->replicated ? a : m->old_local[i] + (a - o->begin);
            size_t at_dst = m->new_local[j] + (a - p->begin), len = (b - a) * width;
            /* Replicated, the rank a row goes to has a copy of its own: nothing travels. */
            if (from == me && to == me)
                memcpy(dst + at_dst * width, src + at_src * width, len);
            else if (from == me && !m->replicated)
                post_send(engine, list, src + at_src * width, len, to, tag);
            else if (to == me && !m->replicated)
                post_recv(engine, list, dst + at_dst * width, len, from, tag);
        }
        i += o->end <= b;
        j += p->end <= b;
    }
}

/* Rows of this rank's partitions among parts. */
static size_t own_rows(const baton_engine *engine, const baton_partition *parts, size_t n)
{
    size_t rows = 0;
    for (size_t i = 0; i < n; i++)
        if (parts[i].worker == engine->rank)
            rows += parts[i].end - parts[i].begin;
    return rows;
}

/* Moves the rows to the plan's n partitions `parts` (see DESIGN) and makes parts (and their
 * offsets) the placement: on success the engine owns parts and the state holds this rank's
 * rows under the plan. Every rank returns the same result; on error every rank's state and
 * placement are as they were, and parts is still the caller's. */
static int move_rows(baton_engine *engine, baton_partition *parts, size_t n)
{
    const char *who = "baton_engine_step";
    baton_state *state = engine->state;
    size_t rows = own_rows(engine, parts, n), held = baton_state_rows(state);
    size_t row_bytes = sizeof *state->ids;
    for (size_t c = 0; c < state->n_columns; c++)
        row_bytes += state->columns[c]->width;
    baton_partition whole = {0, held, engine->rank};
    size_t zero = 0;
    size_t *new_local = baton__placement_offsets(parts, n);
    uint64_t *ids = baton__malloc((rows > 0 ? rows : 1) * sizeof *ids);
    baton_state *fresh = NULL;
    request_list list = {0};
    bool replicated = engine->n_placement == 0;
    move_plan m = {replicated ? &whole : engine->placement,
                   parts,
                   replicated ? &zero : engine->placement_local,
                   new_local,
                   replicated ? 1 : engine->n_placement,
                   n,
                   replicated};
    size_t pieces = m.n_old + m.n_new, arrays = 1 + state->n_columns;
    int rc = 0;
    if (new_local == NULL || ids == NULL ||
        !request_room(&list, requests_for(pieces, held + rows, row_bytes, arrays)))
        rc = baton__error(BATON_ENOMEM, "%s: no memory to move %zu rows to rank %u", who, rows,
                          engine->rank);
    if ((rc = baton__engine_mpi_agree_status(engine, rc)) == 0) {
        move_array(engine, &m, &list, (const unsigned char *)state->ids, (unsigned char *)ids,
                   sizeof *ids, 0);
        wait_all(&list);
        /* The new state: the schema, then the ids (its id index and zeroed columns with them). */
        baton_column_spec spec[BATON_STATE_MAX_COLUMNS];
        for (size_t c = 0; c < state->n_columns; c++)
            spec[c] = (baton_column_spec){state->columns[c]->header, state->columns[c]->type};
        rc = baton_state_create(spec, state->n_columns, &fresh);
        if (rc == 0 && rows > 0)
            rc = baton_state_add_rows(fresh, ids, rows, NULL);
        rc = baton__engine_mpi_agree_status(engine, rc);
    }
    if (rc == 0) {
        for (size_t c = 0; c < state->n_columns; c++)
            move_array(engine, &m, &list, state->columns[c]->values, fresh->columns[c]->values,
                       state->columns[c]->width, (int)c + 1);
        wait_all(&list);
        baton_state old = *state; /* swapped by contents: the handle stays (state_impl.h) */
        *state = *fresh;
        *fresh = old;
        baton__engine_adopt_placement(engine, parts, new_local, n);
        new_local = NULL;
    }
    baton_state_destroy(fresh);
    baton__free(list.at);
    baton__free(ids);
    baton__free(new_local);
    return rc;
}

/* Whether the engine's rows lie as plan (n partitions) says already. */
static bool placed_as(const baton_engine *engine, const baton_partition *plan, size_t n)
{
    if (engine->n_placement != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (plan[i].begin != engine->placement[i].begin ||
            plan[i].end != engine->placement[i].end ||
            plan[i].worker != engine->placement[i].worker)
            return false;
    return true;
}

/* The checks of prepare that one rank may fail alone. */
static int check_rows(baton_engine *engine, const baton_plan *plan, size_t global_rows,
                      const baton_partition *parts, size_t n)
{
    const char *who = "baton_engine_step";
    size_t local = baton_state_rows(engine->state);
    if (engine->n_placement > 0) {
        size_t placed = own_rows(engine, engine->placement, engine->n_placement);
        if (local != placed)
            return baton__error(BATON_EPERM,
                                "%s: rank %u holds %zu rows where its partitions hold %zu: under "
                                "the MPI executor rows cannot be added or removed once the first "
                                "step distributed them",
                                who, engine->rank, local, placed);
    }
    int rc = baton_plan_validate(plan, global_rows, engine->workers);
    if (rc != 0)
        return rc;
    if (engine->n_placement == 0 && engine->mpi_rows == BATON_MPI_ROWS_OWNED &&
        own_rows(engine, parts, n) != local)
        return baton__error(BATON_EMISMATCH,
                            "%s: rank %u holds %zu rows, but the plan gives it %zu (with "
                            "BATON_MPI_ROWS_OWNED each rank's state holds its partitions' rows)",
                            who, engine->rank, local, own_rows(engine, parts, n));
    return 0;
}

int baton__engine_mpi_prepare(baton_engine *engine)
{
    const char *who = "baton_engine_step";
    int rc = 0;
    if (engine->n_placement == 0 && engine->mpi_rows == BATON_MPI_ROWS_REPLICATED) {
        uint64_t rows = baton_state_rows(engine->state), range[2] = {rows, UINT64_MAX - rows};
        MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_UINT64_T, MPI_MAX, engine->mpi->comm);
        if (range[0] != UINT64_MAX - range[1])
            rc = baton__error(BATON_EMISMATCH,
                              "%s: the ranks' states hold %llu to %llu rows, but with "
                              "BATON_MPI_ROWS_REPLICATED each holds the whole state",
                              who, (unsigned long long)(UINT64_MAX - range[1]),
                              (unsigned long long)range[0]);
    }
    size_t global_rows = baton__engine_mpi_global_rows(engine);
    /* No plan set: the default plan, one partition per rank, so that every rank count runs
     * it (a single plan is made for one worker, and a rank is a worker). */
    baton_plan *fallback = NULL;
    const baton_plan *plan = engine->plan;
    if (rc == 0 && plan == NULL &&
        (rc = baton_plan_create_per_worker(global_rows, engine->workers, &fallback)) == 0)
        plan = fallback;
    size_t n = plan != NULL ? baton_plan_partitions(plan) : 0;
    baton_partition *parts = n > 0 ? baton__malloc(n * sizeof *parts) : NULL;
    if (rc == 0 && n > 0 && parts == NULL)
        rc = baton__error(BATON_ENOMEM, "%s: no memory for %zu partitions", who, n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        parts[i] = baton_plan_partition(plan, i);
    if (rc == 0)
        rc = check_rows(engine, plan, global_rows, parts, n);
    rc = baton__engine_mpi_agree_status(engine, rc);
    if (rc == 0 && !placed_as(engine, parts, n)) {
        if (engine->n_placement == 0 && engine->mpi_rows == BATON_MPI_ROWS_OWNED) {
            /* The rows are where the plan puts them already: only the placement is new. */
            size_t *local = baton__placement_offsets(parts, n);
            if (local == NULL)
                rc = baton__error(BATON_ENOMEM, "%s: no memory for the placement", who);
            if ((rc = baton__engine_mpi_agree_status(engine, rc)) == 0) {
                baton__engine_adopt_placement(engine, parts, local, n);
                parts = NULL;
            }
            if (rc != 0)
                baton__free(local);
        } else if ((rc = move_rows(engine, parts, n)) == 0) {
            parts = NULL; /* the placement now */
        }
    }
    baton__free(parts);
    baton_plan_destroy(fallback);
    return rc;
}

/* ---- halo rows ------------------------------------------------------------------------------ */

/* Rows [a, z) of partition q, which lie in partition p's halo (before it: side 0; after: 1):
 * copied, sent or received as this rank owns p, q or both; or, with list NULL, counted. */
static size_t halo_piece(baton_engine *engine, request_list *list, size_t p, size_t q, size_t a,
                         size_t z, int side)
{
    const baton_partition *parts = engine->placement;
    baton_state *st = engine->state;
    unsigned me = engine->rank, op = parts[p].worker, oq = parts[q].worker;
    if (op != me && oq != me)
        return 0;
    if (list == NULL)
        return (op == me) != (oq == me) ? st->n_columns : 0;
    /* Where row a goes in p's block: before it, the nearest rows last; after it, from 0. */
    size_t slot = side == 0 ? engine->halo_rows - (parts[p].begin - a)
                            : engine->halo_rows + (a - parts[p].end);
    for (size_t c = 0; c < st->n_columns; c++) {
        size_t w = st->columns[c]->width, len = (z - a) * w;
        unsigned char *src =
            st->columns[c]->values + (engine->placement_local[q] + (a - parts[q].begin)) * w;
        unsigned char *dst =
            op == me ? engine->halo + engine->halo_at[p] + engine->column_at[c] + slot * w : NULL;
        if (op == me && oq == me)
            memcpy(dst, src, len);
        else if (oq == me)
            post_send(engine, list, src, len, op, (int)c);
        else
            post_recv(engine, list, dst, len, oq, (int)c);
    }
    return 0;
}

/* Walks every piece of every partition's halo (the rows within h of it, in the partitions next
 * to it), in the same order on every rank: with list NULL it counts the messages this rank
 * will post; else it posts them, and copies what stays on this rank. */
static size_t halo_walk(baton_engine *engine, size_t h, request_list *list)
{
    const baton_partition *parts = engine->placement;
    size_t n = engine->n_placement, rows = parts[n - 1].end, messages = 0;
    for (size_t p = 0; p < n; p++) {
        size_t begin = parts[p].begin, end = parts[p].end;
        size_t lo = begin - (begin < h ? begin : h), hi = end + (rows - end < h ? rows - end : h);
        for (size_t q = p; q-- > 0 && parts[q].end > lo;) /* before it, walking back */
            messages += halo_piece(engine, list, p, q, parts[q].begin > lo ? parts[q].begin : lo,
                                   parts[q].end, 0);
        for (size_t q = p + 1; q < n && parts[q].begin < hi; q++) /* after it */
            messages += halo_piece(engine, list, p, q, parts[q].begin,
                                   parts[q].end < hi ? parts[q].end : hi, 1);
    }
    return messages;
}

int baton__engine_mpi_halo(baton_engine *engine, size_t halo_rows)
{
    const char *who = "baton_engine_step";
    baton_state *st = engine->state;
    size_t n = engine->n_placement, rows = engine->placement[n - 1].end;
    size_t h = halo_rows < rows ? halo_rows : rows, row_bytes = 0;
    for (size_t c = 0; c < st->n_columns; c++) {
        engine->column_at[c] = 2 * h * row_bytes;
        row_bytes += st->columns[c]->width;
    }
    size_t block = 2 * h * row_bytes, need = 0, messages = halo_walk(engine, h, NULL);
    request_list list = {0};
    int rc = 0;
    bool ok = n <= engine->halo_at_cap ||
              baton__grow_array((void **)&engine->halo_at, &engine->halo_at_cap, n,
                                sizeof *engine->halo_at);
    for (size_t p = 0; ok && p < n; p++) {
        engine->halo_at[p] = engine->placement[p].worker == engine->rank ? need : SIZE_MAX;
        need += engine->placement[p].worker == engine->rank ? block : 0;
    }
    if (ok && need > engine->halo_cap) {
        unsigned char *grown = baton__malloc(need);
        if ((ok = grown != NULL)) {
            baton__free(engine->halo);
            engine->halo = grown;
            engine->halo_cap = need;
        }
    }
    if (!ok || !request_room(&list, messages))
        rc = baton__error(BATON_ENOMEM, "%s: no memory for the halo of %zu rows (%zu bytes)", who,
                          h, need);
    if ((rc = baton__engine_mpi_agree_status(engine, rc)) == 0) {
        /* column_at was set for this h: the blocks hold h rows each side. */
        engine->halo_rows = h;
        (void)halo_walk(engine, h, &list);
        wait_all(&list);
    }
    baton__free(list.at);
    return rc;
}

/* ---- fingerprints --------------------------------------------------------------------------- */

/* A chunk assembled from its pieces on the rank designated to hash it. */
typedef struct scratch_chunk {
    uint64_t *ids;
    unsigned char *values[BATON_STATE_MAX_COLUMNS];
} scratch_chunk;

/* Room for one chunk of state's columns; false when memory ran out (scratch_destroy then frees
 * what was made). */
static bool scratch_create(const baton_state *state, scratch_chunk *s)
{
    memset(s, 0, sizeof *s);
    s->ids = baton__malloc(CHUNK_ROWS * sizeof *s->ids);
    bool ok = s->ids != NULL;
    for (size_t c = 0; ok && c < state->n_columns; c++)
        ok = (s->values[c] = baton__malloc(CHUNK_ROWS * state->columns[c]->width)) != NULL;
    return ok;
}

static void scratch_destroy(const baton_state *state, scratch_chunk *s)
{
    baton__free(s->ids);
    for (size_t c = 0; c < state->n_columns; c++)
        baton__free(s->values[c]);
}

/* Sends (to the designated rank) or gathers (as it) the pieces of chunk [cb, ce), whose first
 * partition is p0; receives go to `recvs`, sends to `sends`. */
static void move_split_chunk(baton_engine *engine, size_t p0, size_t cb, size_t ce,
                             scratch_chunk *s, request_list *sends, request_list *recvs)
{
    const baton_partition *parts = engine->placement;
    baton_state *st = engine->state;
    unsigned me = engine->rank, designated = parts[p0].worker;
    for (size_t p = p0; p < engine->n_placement && parts[p].begin < ce; p++) {
        size_t a = parts[p].begin > cb ? parts[p].begin : cb;
        size_t b = parts[p].end < ce ? parts[p].end : ce;
        unsigned owner = parts[p].worker;
        size_t local = engine->placement_local[p] + (a - parts[p].begin), rows = b - a;
        if (owner != me && designated != me)
            continue;
        for (size_t c = 0; c <= st->n_columns; c++) {
            size_t width = c == 0 ? sizeof *st->ids : st->columns[c - 1]->width;
            unsigned char *mine = c == 0 ? (unsigned char *)st->ids : st->columns[c - 1]->values;
            unsigned char *chunk = c == 0 ? (unsigned char *)s->ids : s->values[c - 1];
            if (owner == me && designated == me)
                memcpy(chunk + (a - cb) * width, mine + local * width, rows * width);
            else if (owner == me)
                post_send(engine, sends, mine + local * width, rows * width, designated, (int)c);
            else
                post_recv(engine, recvs, chunk + (a - cb) * width, rows * width, owner, (int)c);
        }
    }
}

/* This rank's chunk hashes into mine (the others' chunks stay 0), with s and the request lists
 * made ready by the caller. */
static int hash_own_chunks(baton_engine *engine, size_t rows, uint64_t *mine, scratch_chunk *s,
                           request_list *sends, request_list *recvs)
{
    const baton_partition *parts = engine->placement;
    size_t n = engine->n_placement, k = (rows + CHUNK_ROWS - 1) / CHUNK_ROWS;
    int rc = 0;
    size_t run_first = 0, run_row = 0, run_len = 0; /* whole chunks of ours, not yet hashed */
    for (size_t c = 0; c <= k; c++) {
        size_t cb = c * CHUNK_ROWS, ce = cb + CHUNK_ROWS < rows ? cb + CHUNK_ROWS : rows;
        size_t p0 = c < k ? owner_index(parts, n, cb) : 0;
        bool split = false, ours = c < k && parts[p0].worker == engine->rank;
        for (size_t p = p0; c < k && p < n && parts[p].begin < ce && !split; p++)
            split = parts[p].worker != parts[p0].worker;
        if (run_len > 0 && (c == k || split || !ours)) { /* the run ends: hash it */
            if (rc == 0)
                rc = baton__state_hash_chunks_at(engine->state, engine->pool, run_row, run_first,
                                                 run_first + run_len, rows, mine + run_first);
            run_len = 0;
        }
        if (c == k)
            break;
        if (!split) {
            if (ours && run_len++ == 0) {
                run_first = c;
                run_row = engine->placement_local[p0] + (cb - parts[p0].begin);
            }
            continue;
        }
        /* Even after a failure, so that no other rank waits for this one's pieces. */
        move_split_chunk(engine, p0, cb, ce, s, sends, recvs);
        wait_all(recvs);
        if (ours)
            mine[c] = baton__fingerprint_chunk(engine->state, s->ids, s->values, ce - cb, c);
    }
    wait_all(sends);
    return rc;
}

int baton__engine_mpi_fingerprint(baton_engine *engine, uint64_t *out)
{
    const char *who = "baton_engine_step";
    size_t rows = baton__engine_mpi_global_rows(engine);
    size_t k = (rows + CHUNK_ROWS - 1) / CHUNK_ROWS, n = engine->n_placement;
    /* A piece is a partition's part of a chunk: at most a partition and a split chunk's
     * worth, each one message per array. */
    size_t requests = 2 * n * (1 + baton_state_columns(engine->state));
    uint64_t *mine = baton__calloc(k > 0 ? k : 1, sizeof *mine);
    scratch_chunk s;
    request_list sends = {0}, recvs = {0};
    bool ready = scratch_create(engine->state, &s);
    int rc = 0;
    if (mine == NULL || !ready || !request_room(&sends, requests) ||
        !request_room(&recvs, requests))
        rc = baton__error(BATON_ENOMEM, "%s: no memory to fingerprint %zu chunks", who, k);
    if ((rc = baton__engine_mpi_agree_status(engine, rc)) == 0)
        rc = baton__engine_mpi_agree_status(
            engine, hash_own_chunks(engine, rows, mine, &s, &sends, &recvs));
    if (rc == 0) {
        MPI_Allreduce(MPI_IN_PLACE, mine, (int)k, MPI_UINT64_T, MPI_SUM, engine->mpi->comm);
        *out = baton_fingerprint_combine(mine, k, rows);
    }
    scratch_destroy(engine->state, &s);
    baton__free(sends.at);
    baton__free(recvs.at);
    baton__free(mine);
    return rc;
}
