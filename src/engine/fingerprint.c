/*
 * fingerprint.c — the state's fingerprint (include/baton/engine.h): XXH3-64 per chunk of
 * BATON_FINGERPRINT_CHUNK_ROWS rows, chunk hashes combined in chunk order.
 *
 * DESIGN
 *  - A chunk's hash depends only on the chunk's rows, the schema and the chunk's index (its
 *    seed), so chunks are hashed independently and in any order: on a pool, baton_parallel_for
 *    over chunk indices, each chunk writing its own slot of one array of chunk hashes, which
 *    the caller then combines on its own thread. The result is the same for any number of
 *    workers and any way the loop is split, with no reduction order to get right.
 *  - Each chunk is streamed through one XXH3 state in the order of the definition: the ids
 *    slice, then per column its header (name, 0, type byte; kept contiguous in the column
 *    descriptor, see state_impl.h) and its values slice. Every slice is contiguous in the
 *    structure-of-arrays layout, so a chunk is 1 + 2 * columns update calls and nothing is
 *    copied. The XXH3 state lives on the hashing thread's stack: one allocation per call
 *    (the chunk hashes), nothing per chunk or row.
 */
#include <stdio.h>
#include <string.h>

/* XXH_INLINE_ALL compiles XXH3 into this file (static, under private names), so XXH3_state_t's
 * size and layout are the ones this file was compiled against and a state may sit on the
 * stack. With the shared libxxhash that layout is not part of its ABI (xxhash.h allows
 * XXH_STATIC_LINKING_ONLY only for static linking), so heap states would be the alternative. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/alloc.h"
#include "core/error.h"
#include "engine/state_impl.h"

/* The definition hashes ids, and float, double and int64 values, as little-endian bytes, and this
 * file hashes the arrays' memory as it is: that is the same only on a little-endian host. A
 * big-endian port must byte-swap each slice into a buffer before hashing it. */
#if !defined(__BYTE_ORDER__) || !defined(__ORDER_LITTLE_ENDIAN__) ||                               \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "fingerprint.c hashes arrays as stored: right only on little-endian hosts"
#endif

#define CHUNK_ROWS ((size_t)BATON_FINGERPRINT_CHUNK_ROWS)

static size_t chunks_of(size_t rows)
{
    return rows / CHUNK_ROWS + (rows % CHUNK_ROWS != 0);
}

/* The hash of a chunk `chunk` of `count` rows that starts at this state's row `row`. */
static uint64_t hash_chunk(const baton_state *state, size_t chunk, size_t row, size_t count,
                           XXH3_state_t *xxh)
{
    XXH3_64bits_reset_withSeed(xxh, (XXH64_hash_t)chunk);
    XXH3_64bits_update(xxh, state->ids + row, count * sizeof *state->ids);
    for (size_t c = 0; c < state->n_columns; c++) {
        const baton__column *column = state->columns[c];
        XXH3_64bits_update(xxh, column->header, column->name_len + 2);
        XXH3_64bits_update(xxh, column->values + row * column->width, count * column->width);
    }
    return (uint64_t)XXH3_64bits_digest(xxh);
}

uint64_t baton__fingerprint_chunk(const baton_state *schema, const uint64_t *ids,
                                  unsigned char *const *values, size_t count, size_t chunk)
{
    XXH3_state_t xxh;
    memset(&xxh, 0, sizeof xxh); /* a state on the stack must start zeroed (see hash_chunks) */
    XXH3_64bits_reset_withSeed(&xxh, (XXH64_hash_t)chunk);
    XXH3_64bits_update(&xxh, ids, count * sizeof *ids);
    for (size_t c = 0; c < schema->n_columns; c++) {
        const baton__column *column = schema->columns[c];
        XXH3_64bits_update(&xxh, column->header, column->name_len + 2);
        XXH3_64bits_update(&xxh, values[c], count * column->width);
    }
    return (uint64_t)XXH3_64bits_digest(&xxh);
}

typedef struct chunk_job {
    const baton_state *state;
    size_t first_chunk; /* out[0] is this chunk's hash */
    size_t first_row;   /* the state's row where first_chunk begins */
    size_t rows;        /* the rows of the whole (global) state, which end the last chunk */
    uint64_t *out;
} chunk_job;

/* Hashes chunks [begin, end); a baton_range_fn, run on pool workers or the caller. */
static int hash_chunks(size_t begin, size_t end, void *ctx)
{
    const chunk_job *job = ctx;
    XXH3_state_t xxh;
    /* A reset with a seed compares it with the state's previous seed to skip rebuilding the
     * secret, so a state on the stack must start zeroed (xxhash.h: XXH3_INITSTATE). */
    memset(&xxh, 0, sizeof xxh);
    for (size_t c = begin; c < end; c++) {
        size_t at = c * CHUNK_ROWS,
               count = job->rows - at < CHUNK_ROWS ? job->rows - at : CHUNK_ROWS;
        job->out[c - job->first_chunk] = hash_chunk(
            job->state, c, job->first_row + (c - job->first_chunk) * CHUNK_ROWS, count, &xxh);
    }
    return 0;
}

/* Writes the hashes of chunks [first, last) of a state of `rows` rows, chunk `first` beginning
 * at state's row first_row, to out[0 ..), on pool when it is not NULL. */
static int hash_chunk_range(const char *who, const baton_state *state, baton_pool *pool,
                            size_t first_row, size_t first, size_t last, size_t rows, uint64_t *out)
{
    chunk_job job = {state, first, first_row, rows, out};
    if (pool == NULL)
        return hash_chunks(first, last, &job);
    /* Grain 0: a few pieces per worker, split further only when stolen; a chunk is at least
     * 32 KiB of ids, so even single-chunk pieces are worth a task. */
    int rc = baton_parallel_for(pool, first, last, 0, hash_chunks, &job);
    if (rc != 0) {
        char cause[256];
        snprintf(cause, sizeof cause, "%s", baton_last_error_message());
        return baton__error(rc, "%s: hashing chunks %zu to %zu on the pool failed: %s", who, first,
                            last, cause);
    }
    return 0;
}

int baton__state_hash_chunks_at(const baton_state *state, baton_pool *pool, size_t first_row,
                                size_t first, size_t last, size_t rows, uint64_t *out)
{
    return hash_chunk_range("baton_engine_step", state, pool, first_row, first, last, rows, out);
}

uint64_t baton_fingerprint_combine(const uint64_t *chunk_hashes, size_t k, uint64_t rows)
{
    /* On a little-endian host the array's bytes are the hashes' little-endian bytes. */
    static const uint64_t no_hashes[1] = {0};
    return (uint64_t)XXH3_64bits_withSeed(k != 0 ? chunk_hashes : no_hashes,
                                          k * sizeof *chunk_hashes, (XXH64_hash_t)rows);
}

int baton_state_fingerprint(const baton_state *state, baton_pool *pool, uint64_t *out)
{
    const char *who = "baton_state_fingerprint";
    if (state == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "%s: %s is NULL", who, state == NULL ? "state" : "out");
    size_t k = chunks_of(state->rows);
    if (k == 0) {
        *out = baton_fingerprint_combine(NULL, 0, 0);
        return 0;
    }
    uint64_t *hashes = baton__malloc(k * sizeof *hashes);
    if (hashes == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory for the hashes of %zu chunks (%zu rows)",
                            who, k, state->rows);
    int rc = hash_chunk_range(who, state, pool, 0, 0, k, state->rows, hashes);
    if (rc == 0)
        *out = baton_fingerprint_combine(hashes, k, state->rows);
    baton__free(hashes);
    return rc;
}

int baton_state_chunk_hashes(const baton_state *state, baton_pool *pool, size_t begin, size_t end,
                             uint64_t *out)
{
    const char *who = "baton_state_chunk_hashes";
    if (state == NULL)
        return baton__error(BATON_EINVAL, "%s: state is NULL", who);
    if (end > state->rows)
        return baton__error(BATON_ERANGE, "%s: end %zu is past the state's %zu rows", who, end,
                            state->rows);
    if (begin > end)
        return baton__error(BATON_ERANGE, "%s: begin %zu is past end %zu", who, begin, end);
    if (begin % CHUNK_ROWS != 0)
        return baton__error(BATON_EINVAL,
                            "%s: begin %zu is not a multiple of BATON_FINGERPRINT_CHUNK_ROWS "
                            "(%zu)",
                            who, begin, CHUNK_ROWS);
    if (end % CHUNK_ROWS != 0 && end != state->rows)
        return baton__error(BATON_EINVAL,
                            "%s: end %zu is neither a multiple of BATON_FINGERPRINT_CHUNK_ROWS "
                            "(%zu) nor the row count (%zu)",
                            who, end, CHUNK_ROWS, state->rows);
    if (begin == end)
        return 0; /* no chunk to write, so out may be NULL */
    if (out == NULL)
        return baton__error(BATON_EINVAL, "%s: out is NULL for rows %zu to %zu", who, begin, end);
    return hash_chunk_range(who, state, pool, begin, begin / CHUNK_ROWS, chunks_of(end),
                            state->rows, out);
}
