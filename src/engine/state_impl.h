/*
 * state_impl.h — the inside of a baton_state (engine.h), shared by state.c, which owns and
 * changes it, and the engine's files, which read and write the arrays; and what fingerprint.c
 * defines for the executors. state.c defines no internal function.
 *
 * Invariants between calls (state.c keeps them):
 *  - rows <= capacity; ids and every column's values have room for `capacity` rows and hold
 *    meaningful data in [0, rows); with capacity 0 they are NULL.
 *  - index holds exactly the pairs (ids[r], r) for r < rows, at most half full, so that a probe
 *    always ends at an empty slot.
 *  - columns[0 .. n_columns) point to separately allocated descriptors, so that a name handed
 *    out by baton_state_column_info stays where it is when the pointer array grows.
 */
#ifndef BATON_ENGINE_STATE_IMPL_H
#define BATON_ENGINE_STATE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "baton/engine.h"

/* Column arrays and ids start on a cache line, which also suits vector loads in phases. */
#define BATON__STATE_ALIGNMENT 64u

typedef struct baton__column {
    unsigned char *values; /* capacity * width bytes */
    size_t width;          /* bytes per value: 4 or 8 */
    baton_column_type type;
    size_t name_len;
    /* The name, its terminating 0, then the type as one byte: exactly the bytes the fingerprint
     * hashes before the column's values, kept together so that they are hashed in one call.
     * header is also the C string baton_state_column_info hands out. */
    char header[BATON_COLUMN_NAME_MAX + 2];
} baton__column;

/* One slot of the id index. row_plus_one == 0 marks an empty slot, so that every id, 0 and
 * UINT64_MAX included, can be stored and a zeroed table is an empty one. */
typedef struct baton__id_slot {
    uint64_t id;
    size_t row_plus_one;
} baton__id_slot;

struct baton_state {
    size_t rows;
    size_t capacity; /* rows every array has room for */
    uint64_t *ids;
    baton__column **columns;
    size_t n_columns;
    size_t column_slots;   /* room in columns[] */
    baton__id_slot *index; /* open addressing, linear probing; NULL while index_slots is 0 */
    size_t index_slots;    /* 0 or a power of two */
};

/* ---- fingerprint.c ---- */

/*
 * For executors that hold a part of the rows (mpi.c). hash_chunks_at: the hashes of chunks
 * [first, last) of a state of `rows` rows (the global state's), whose rows lie contiguous in
 * `state` from its row first_row on, to out[0 ..), on pool (NULL: the caller); errors as
 * baton_state_chunk_hashes. fingerprint_chunk: the hash of chunk `chunk` of `count` rows given
 * as arrays (ids, and values[c] for column c of schema's columns).
 */
int baton__state_hash_chunks_at(const baton_state *state, baton_pool *pool, size_t first_row,
                                size_t first, size_t last, size_t rows, uint64_t *out);
uint64_t baton__fingerprint_chunk(const baton_state *schema, const uint64_t *ids,
                                  unsigned char *const *values, size_t count, size_t chunk);

#endif /* BATON_ENGINE_STATE_IMPL_H */
