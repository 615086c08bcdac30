/*
 * wal_format.h — how the write-ahead log lies in LMDB, shared by the writer (wal.c) and replay
 * (wal_replay.c). Internal to src/space/.
 *
 * The "log" database maps a group's first sequence number (8 bytes, big-endian, so that LMDB's
 * byte order is numeric order and MDB_APPEND applies) to the group: its records one after the
 * other, each
 *
 *     size      4 bytes, little-endian: the payload's length
 *     checksum  8 bytes, little-endian: XXH3-64 of the payload seeded with the record's seq
 *     payload   size bytes
 *
 * The record at index i of the group has seq = key + i; the next group's key follows the last
 * record's seq. A group is what the writer commits in one transaction: one LMDB value per group
 * instead of one per record makes the writer's cost per record a copy and a checksum, where an
 * mdb_put each (a B-tree descent, a page split now and then) cost several times more. Seeding
 * the checksum with the seq catches a record that is whole but in the wrong place. The "meta"
 * database holds "truncate": the truncation bound (8 bytes, big-endian); records below it are
 * deleted, even those still inside a group that straddles it.
 */
#ifndef BATON_SPACE_WAL_FORMAT_H
#define BATON_SPACE_WAL_FORMAT_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "baton/core.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define WAL_RECORD_HEADER 12u
/* The largest payload: its size must fit the 4-byte field. */
#define WAL_RECORD_MAX ((size_t)UINT32_MAX)

static inline void wal_put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static inline uint64_t wal_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static inline void wal_put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static inline uint64_t wal_get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* baton_hash64's XXH3-64 (the same function, so the format does not change), inlined: the writer
 * checksums every record, and through the shared library's entry point a record of a few dozen
 * bytes cost about as much as the rest of its writing (a tenth of the writer's profile). */
static inline uint64_t wal_checksum(uint64_t seq, const void *data, size_t size)
{
    static const unsigned char empty[1] = {0};
    return (uint64_t)XXH3_64bits_withSeed(size > 0 ? data : empty, size, (XXH64_hash_t)seq);
}

/* Copies size bytes; the space's records are mostly 8 to 32 bytes long, which two overlapping
 * copies of a fixed width move without the call to memcpy (half the writer's copying cost was
 * the call, in a profile of durable_async). */
static inline void wal_copy(unsigned char *out, const unsigned char *data, size_t size)
{
    if (size >= 16 && size <= 32) {
        memcpy(out, data, 16);
        memcpy(out + size - 16, data + size - 16, 16);
    } else if (size >= 8 && size < 16) {
        memcpy(out, data, 8);
        memcpy(out + size - 8, data + size - 8, 8);
    } else if (size > 0) {
        memcpy(out, data, size);
    }
}

/* Writes one record (header and payload) at out, which has WAL_RECORD_HEADER + size bytes. */
static inline void wal_record_write(unsigned char *out, uint64_t seq, const void *data,
                                    size_t size)
{
    wal_put_le(out, size, 4);
    wal_put_le(out + 4, wal_checksum(seq, data, size), 8);
    wal_copy(out + WAL_RECORD_HEADER, data, size);
}

/* What wal_group_next found. */
typedef enum {
    WAL_GROUP_RECORD, /* *data, *size: a whole record whose checksum matches */
    WAL_GROUP_END,    /* the group ends exactly here */
    WAL_GROUP_SHORT,  /* fewer bytes left than a header, or than the header's size says */
    WAL_GROUP_BAD_SUM /* the checksum does not match */
} wal_group_status;

/* Reads the record at *offset of a group (seq: the record's number) and moves *offset past it.
 * check: verify the checksum (false: only walk the sizes). */
static inline wal_group_status wal_group_next(const unsigned char *group, size_t group_size,
                                              size_t *offset, uint64_t seq, bool check,
                                              const unsigned char **data, size_t *size)
{
    size_t left = group_size - *offset;
    if (left == 0)
        return WAL_GROUP_END;
    if (left < WAL_RECORD_HEADER)
        return WAL_GROUP_SHORT;
    const unsigned char *at = group + *offset;
    size_t n = (size_t)wal_get_le(at, 4);
    if (n > left - WAL_RECORD_HEADER)
        return WAL_GROUP_SHORT;
    if (check && wal_get_le(at + 4, 8) != wal_checksum(seq, at + WAL_RECORD_HEADER, n))
        return WAL_GROUP_BAD_SUM;
    *data = at + WAL_RECORD_HEADER;
    *size = n;
    *offset += WAL_RECORD_HEADER + n;
    return WAL_GROUP_RECORD;
}

/* wal_replay.c: opens an environment on dir (already checked by baton__wal_check_file) with room
 * for the log's two databases; *out_map receives the map size in effect. */
int baton__wal_env_open(const char *who, const char *dir, int64_t file_size, bool read_only,
                        MDB_env **out_env, size_t *out_map);
/* An LMDB error as a baton error: ENOMEM, EBUSY/EAGAIN as such, everything else BATON_EIO. */
int baton__wal_mdb_error(const char *who, const char *what, int mrc);

#endif /* BATON_SPACE_WAL_FORMAT_H */
