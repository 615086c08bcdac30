/*
 * wal.h — the space layer's write-ahead log (internal; no public API yet): records appended by
 * any thread, written to LMDB by one dedicated writer thread in group commits, so that appending
 * never waits on I/O.
 *
 * DESIGN
 *  - The log is an LMDB environment (data.mdb, lock.mdb) in the directory the caller names, with
 *    two named databases: "log" (one value per group commit, keyed by its first record's 64-bit
 *    sequence number, big-endian, written with MDB_APPEND; each record inside carries its size
 *    and an XXH3-64 of its payload seeded with its sequence number: wal_format.h) and "meta"
 *    (the truncation bound, so that numbering never restarts after everything was compacted
 *    away).
 *  - Appending never takes a lock or a shared counter: each appending thread writes into a lane
 *    of its own; the writer thread closes epochs, merges the closed records of every lane in an
 *    order that agrees with every channel's order (Lamport stamps: the caller passes the clocks
 *    of the channels a record touches), numbers them in that order and writes each run as one
 *    group in one write transaction. Appending never waits on I/O unless the writer has fallen
 *    a whole lane behind: then the appender waits for room (backpressure, not unbounded
 *    memory). See wal.c's and wal_writer.c's DESIGN blocks.
 *  - An append returns a ticket (its epoch), not a sequence number: numbers are given when the
 *    writer places records. A ticket is durable once baton__wal_durable() >= it.
 *  - The environment is opened with MDB_NOSYNC; the writer calls mdb_env_sync itself: after
 *    every group in SYNC mode, every sync interval in ASYNC mode. The durable mark (everything
 *    <= it is on disk) moves only after a sync returned.
 *  - When the map is full the writer doubles it (mdb_env_set_mapsize) and retries the group.
 *  - LMDB trusts its own pages: a truncated file or a flipped page number makes it read outside
 *    the file (SIGBUS) or the map (SIGSEGV). So before LMDB touches a file, open and replay
 *    check it themselves, with pread: both meta pages (magic, version, the same page size, the
 *    database flags baton uses, no fixed address), that the file holds every page the newest
 *    meta names, and every page reachable from it (each page's own number, kind and bounds,
 *    each node's extent, every page number it follows in range and reached once, sub-database
 *    records well formed). This costs one read of the file per open and per replay. Damage
 *    inside a record is caught by its checksum; groups skipped by a wrong but well-formed page
 *    pointer are caught by comparing the count replayed with the count LMDB keeps.
 *  - What cannot be caught: LMDB keeps two meta pages and uses the one with the larger
 *    transaction id. Damage that leaves the older one valid and makes it look newer (a flipped
 *    high bit of its txnid) rolls the log back to that earlier, consistent state without an
 *    error: replay then returns fewer records, still a clean prefix.
 */
#ifndef BATON_SPACE_WAL_H
#define BATON_SPACE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/core.h"

/* The most records the writer puts into one write transaction. */
#define BATON__WAL_BATCH 4096
/* ASYNC mode: the writer syncs this often (nanoseconds) while there is something to sync. */
#define BATON__WAL_SYNC_INTERVAL_NS UINT64_C(10000000)
/* The LMDB map a new log starts with; the writer doubles it when it fills. */
#define BATON__WAL_MAP_SIZE ((size_t)1 << 30)

typedef enum {
    /* Nothing is written and no file is touched (dir may be NULL). Appends get sequence numbers
     * from 1; wait_durable returns 0 at once and baton__wal_durable reports 0: this mode
     * promises no durability at all. */
    BATON__WAL_NONE,
    /* Groups are committed without a sync and synced every BATON__WAL_SYNC_INTERVAL_NS (10 ms).
     * Loss window: a crash of the machine (not just of the process) loses the records appended
     * in the last sync interval plus the time the sync itself takes; a crash of the process
     * alone loses only what was not yet committed: what was queued, and the group the writer
     * was letting fill (at most 1 ms of records, wal.c). wait_durable waits for the next timed
     * sync. */
    BATON__WAL_ASYNC,
    /* The writer commits each group and syncs (mdb_env_sync) before it moves the durable mark:
     * a record is durable once wait_durable returned for it. */
    BATON__WAL_SYNC,
} baton__wal_mode;

typedef struct baton__wal baton__wal;
struct baton__waitpoint;

/*
 * Opens (creating dir and the environment when missing: made whole in dir/data.new, then renamed
 * to dir/data.mdb, so that a crash during creation leaves no data.mdb; a data.new left by one is
 * removed) the log in dir and starts its writer
 * thread. Numbering continues after the last record found (or after the truncation bound, if
 * larger). The handle is owned by the caller until baton__wal_close. Call baton__wal_replay
 * before, not while the log is open in this process (LMDB allows one environment per file per
 * process). Errors: BATON_EINVAL (NULL out, NULL dir unless mode is NONE, unknown mode),
 * BATON_ENOMEM, BATON_ETHREAD, BATON_EIO (the directory cannot be created, is not an LMDB
 * environment, or the file is damaged so that LMDB cannot be trusted with it), BATON_EBUSY (the
 * environment is in use in a way LMDB refuses).
 */
int baton__wal_open(const char *dir, baton__wal_mode mode, baton__wal **out);

/* As baton__wal_open, with at most group_max (1..BATON__WAL_BATCH) records per transaction; 1
 * commits (and in SYNC mode syncs) every record alone. */
int baton__wal_open_group(const char *dir, baton__wal_mode mode, size_t group_max,
                          baton__wal **out);

/*
 * Appends a copy of record[0..size) and stores its ticket in *ticket (may be NULL): the epoch it
 * belongs to, > 0, durable once baton__wal_durable() >= it. Any thread, concurrently. The record
 * goes after every record that this thread appended before; for an order across threads, use
 * baton__wal_append_ordered. A claim of the thread's lane and a copy into it; a record longer
 * than WAL_LANE_INLINE_MAX (512 KiB) is copied to the heap first. Waits only when the thread's
 * lane is full (see DESIGN). size 0 is allowed (record may then be NULL). Errors: BATON_EINVAL
 * (NULL wal, NULL record with size > 0), BATON_ENOMEM (a long record's copy, a new lane),
 * BATON_ERANGE (4 GiB or more), BATON_EIO (the writer failed earlier; its message is repeated),
 * BATON_ECLOSED (close has started: a usage error). NONE mode: tickets count appends from 1.
 */
int baton__wal_append(baton__wal *wal, const void *record, size_t size, uint64_t *ticket);

/*
 * As baton__wal_append, for a record that touches the n_clocks objects (channels) whose
 * ordering clocks are *clocks[i]: the log places it after every record appended earlier with
 * any of those clocks, by any thread. The caller must own those objects (no other thread may
 * append with the same clock at the same time); a clock starts at 0 and the log alone writes
 * it. Errors: as baton__wal_append, and BATON_EINVAL for NULL clocks with n_clocks > 0.
 */
int baton__wal_append_ordered(baton__wal *wal, const void *record, size_t size,
                              uint64_t *const *clocks, size_t n_clocks, uint64_t *ticket);

/* Writes a record of at most the size it was asked for at out and returns its length
 * (baton__wal_append_encoded). */
typedef size_t (*baton__wal_encoder)(void *ctx, unsigned char *out);

/*
 * As baton__wal_append_ordered, for a record of at most size bytes that encode(ctx, out) writes
 * straight into the thread's lane (out: size bytes, 8-byte aligned) and whose length it returns:
 * the caller needs no buffer of its own, the record is not copied, and a bound on its length
 * will do where the exact length would cost a pass of its own (the space sizes its records'
 * varints at their largest). The record logged is the encoder's bytes, of the length it
 * returned (0 allowed); writing more than size is the caller's bug. encode runs on the calling
 * thread, at most once, while the lane is held: quickly, and it must not call into the log. It
 * is not called when the append fails before writing, nor in NONE mode. A size above
 * WAL_LANE_INLINE_MAX is encoded into a heap copy of size bytes. Errors: as
 * baton__wal_append_ordered (BATON_ERANGE judges size), and BATON_EINVAL for a NULL encode.
 */
int baton__wal_append_encoded(baton__wal *wal, size_t size, baton__wal_encoder encode, void *ctx,
                              uint64_t *const *clocks, size_t n_clocks, uint64_t *ticket);

/*
 * Appends a barrier: a record placed after every record whose append returned before this call
 * began and before every record whose append begins after it returns. Waits until the writer
 * has placed it (not until it is durable) and stores its sequence number in *seq and its ticket
 * in *ticket (either may be NULL). Meant for rare markers (snapshots); at most
 * WAL_BARRIER_SLOTS (8) at the same time. Errors: as baton__wal_append; BATON_EBUSY (more
 * barriers at once than that). NONE mode: *seq and *ticket get the append count.
 */
int baton__wal_append_barrier(baton__wal *wal, const void *record, size_t size,
                              uint64_t *ticket, uint64_t *seq);

/*
 * Waits until every record with a ticket <= ticket is durable (SYNC: committed and synced;
 * ASYNC: the next timed sync after its commit). Any thread. Returns 0, BATON_EINVAL (NULL wal,
 * a ticket never given out), BATON_EIO (the writer failed before it became durable). NONE mode:
 * returns 0 at once.
 */
int baton__wal_wait_durable(baton__wal *wal, uint64_t ticket);

/* Waits until every record appended before the call (by any thread, as far as this thread has
 * seen) is durable. Errors: as baton__wal_wait_durable. */
int baton__wal_wait_all(baton__wal *wal);

/* The durable ticket: every record with a ticket <= it is durable; 0 when none is (and always
 * in NONE mode). Any thread; wait-free. */
uint64_t baton__wal_durable(const baton__wal *wal);
/* The durable sequence number: it and every number below it are durable (0: none). */
uint64_t baton__wal_durable_seq(const baton__wal *wal);

/* The waitpoint the writer notifies (all waiters) whenever durable, truncated or failed moves;
 * others may notify it too and wait on it with their own predicates. */
struct baton__waitpoint *baton__wal_progress(baton__wal *wal);
/* Whether the writer has failed (sticky). */
bool baton__wal_failed(const baton__wal *wal);
/* The number the next record placed gets once everything appended so far is placed (exact
 * while no append runs); the truncation bound (records below it are gone). */
uint64_t baton__wal_next_seq(const baton__wal *wal);
uint64_t baton__wal_truncated(const baton__wal *wal);
/* How many appends so far found their lane full and waited for the writer (backpressure). */
uint64_t baton__wal_room_waits(const baton__wal *wal);
/* CPU time the log's threads (the writer and the syncer) have used since open, in nanoseconds,
 * as of the writer's last batch and the syncer's last sync (0 in NONE mode). Any thread;
 * wait-free. */
uint64_t baton__wal_writer_cpu_ns(const baton__wal *wal);

/*
 * Hands every record of the log in dir to fn in sequence order: fn(ctx, seq, data, size). data
 * points into LMDB's map and is valid only during the call. A nonzero return from fn stops the
 * replay, which returns that value. *last_good (may be NULL) receives the number of the last
 * record handed to fn (0: none). The log must not be open in this process. Replay stops at the
 * first record whose checksum, size or key (wrong size, not above its predecessor, a gap) is
 * wrong and returns BATON_EIO with a message naming the seq, after handing fn every record
 * before it. Errors: BATON_EINVAL (NULL dir or fn), BATON_ENOTFOUND (no directory, or no
 * data.mdb in it), BATON_EIO (not an LMDB environment, damaged), BATON_ENOMEM.
 */
int baton__wal_replay(const char *dir, int (*fn)(void *ctx, uint64_t seq, const void *data,
                                                 size_t size),
                      void *ctx, uint64_t *last_good);

/*
 * Compaction: deletes every record numbered below seq, through the writer, and waits until the
 * deletion is committed and synced. Records below seq still queued are dropped when their turn
 * comes; a seq above the next number to be given out counts as that number. The bound is kept
 * in the log, so numbering continues after it even when no record is left. Any thread.
 * Errors: BATON_EINVAL (NULL wal), BATON_ENOMEM, BATON_EIO (the writer failed). NONE mode:
 * returns 0.
 */
int baton__wal_truncate_before(baton__wal *wal, uint64_t seq);

/*
 * Writes and syncs everything appended, joins the writer, closes the environment and frees the
 * handle (also on error). No append may run concurrently or later. Returns 0, or BATON_EIO when
 * the writer failed (then records after durable() may be lost). NULL is ignored.
 */
int baton__wal_close(baton__wal *wal);

/* Between wal.c and wal_check.c: 0 when dir/data.mdb looks like a whole LMDB file that LMDB can
 * be trusted with, BATON_ENOTFOUND when there is none, BATON_EIO (with a message naming the
 * damage) otherwise; BATON_ENOMEM. *size receives the file's size. who prefixes the message. */
int baton__wal_check_file(const char *who, const char *dir, int64_t *size);

/* Test hook (space_lock.c): kills the process with SIGKILL when the environment variable
 * BATON_SPACE_TEST_CRASH equals name; the named points are on the open path only. */
void baton__test_crash_point(const char *name);

#endif /* BATON_SPACE_WAL_H */
