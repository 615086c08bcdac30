/*
 * wal.c — the write-ahead log's appenders and its writer thread (replay: wal_replay.c; the file
 * checks: wal_check.c; the format: wal_format.h).
 *
 * DESIGN
 *  - The ring. Appenders hand records to the writer through a ring of WAL_RING_SLOTS slots of
 *    128 bytes (a Vyukov bounded queue with one consumer). An append takes its sequence number
 *    with one fetch_add on next_seq; the number is also its position in the ring (seq - base), so
 *    the order of the numbers is the order in which the writer finds the records and nothing is
 *    ever sorted. The appender waits until its slot's turn says the writer has read the slot's
 *    previous record, copies the record in (up to WAL_INLINE bytes; a longer one is copied to the
 *    heap first, before the number is taken, so that a number once taken is always published),
 *    and publishes it by storing turn = position + 1. Per record: one contended atomic add, one
 *    copy, one release store, no allocation, no lock.
 *  - Backpressure. An append waits only when the writer is a whole ring behind (the disk cannot
 *    keep up with the appenders): bounded memory rather than an unbounded queue. The wait sleeps
 *    on the `room` waitpoint, which the writer notifies after freeing slots. No deadlock: the
 *    slot an appender waits for is freed once the writer has read the record a ring earlier,
 *    whose number is smaller than that of every record still unpublished.
 *  - The writer takes the run of published records at its position (at most group_max, and
 *    WAL_GROUP_BYTES) and writes it as one LMDB value (wal_format.h) in one transaction, then
 *    frees the slots. A record whose appender was preempted between its number and its publish
 *    holds the run back until it is published: records are committed in order, without gaps.
 *    In ASYNC mode a group that is not full is given WAL_LINGER_NS to fill (should_linger):
 *    a commit costs about as much for a hundred records as for thousands.
 *    The environment is opened with MDB_NOSYNC; the writer calls mdb_env_sync itself: after
 *    every group in SYNC mode, every BATON__WAL_SYNC_INTERVAL_NS in ASYNC mode. The durable mark
 *    moves only after a sync returned. When the map is full it doubles the map and retries.
 *  - The writer owns the environment's write side and its positions. Others talk to it through
 *    atomics, each with a waitpoint: records (work), truncation requests (want_truncate, work),
 *    close (closing, work); it answers through durable, truncated and failed (progress) and by
 *    freeing slots (room).
 *  - The writer's failure is sticky: it stores its message in failed_msg, then sets failed
 *    (release); every later append, wait and close repeats the message as BATON_EIO. A failed
 *    writer keeps freeing slots, so that no appender already past its check waits forever.
 */
#define _POSIX_C_SOURCE 200809L

#include "space/wal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/os.h"
#include "core/waitpoint.h"
#include "space/wal_format.h"

#define WAL_RING_SLOTS 32768u /* a power of two: 4 MiB of slots */
#define WAL_SLOT_SIZE 128u
#define WAL_INLINE (WAL_SLOT_SIZE - 16u)
/* The most bytes of records in one group (a record longer than this is a group of its own). */
#define WAL_GROUP_BYTES ((size_t)8 << 20)
/* ASYNC: how long the writer lets a group fill before it commits it (should_linger). */
#define WAL_LINGER_NS UINT64_C(1000000)

typedef struct wal_slot {
    /* position: free for the appender of that position; position + 1: holds its record. */
    _Atomic uint64_t turn;
    uint32_t size;
    uint32_t on_heap;
    union {
        unsigned char bytes[WAL_INLINE];
        unsigned char *heap;
    } data;
} wal_slot;

_Static_assert(sizeof(wal_slot) == WAL_SLOT_SIZE, "a slot is two cache lines");

struct baton__wal {
    baton__wal_mode mode;
    size_t group_max; /* the most records per transaction */
    baton__thread *writer;
    MDB_env *env;
    MDB_dbi log_dbi;
    MDB_dbi meta_dbi;
    size_t map_size;
    wal_slot *ring;
    uint64_t base; /* the seq of position 0 */

    /* The writer's own state. */
    uint64_t position;   /* the next record to read, seq - base */
    uint64_t committed;  /* the last committed seq */
    uint64_t synced;     /* the last synced seq */
    uint64_t drop_below; /* the truncation bound applied */

    BATON_CACHELINE_ALIGNED _Atomic uint64_t next_seq; /* appenders' fetch_add */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t durable;
    _Atomic uint64_t truncated;
    _Atomic uint64_t want_truncate; /* the largest bound asked for */
    _Atomic uint64_t room_waits;    /* appends that found their slot still taken */
    _Atomic int closing;
    _Atomic int failed;
    char failed_msg[256];
    baton__waitpoint work;     /* the writer waits here */
    baton__waitpoint room;     /* appenders wait here for a slot */
    baton__waitpoint progress; /* durable, truncated, failed moved */
};

static wal_slot *slot_at(const baton__wal *wal, uint64_t position)
{
    return &wal->ring[position & (WAL_RING_SLOTS - 1)];
}

/* ---- open ----------------------------------------------------------------------------------- */

static void *wal_writer_main(void *arg);

/* Ends a transaction of the writer's own bookkeeping (open, truncation): commits and syncs it
 * when mrc is 0, else aborts it (txn may be NULL when it never began). Returns the first error. */
static int commit_and_sync(baton__wal *wal, MDB_txn *txn, int mrc)
{
    if (mrc != 0) {
        if (txn != NULL)
            mdb_txn_abort(txn);
        return mrc;
    }
    mrc = mdb_txn_commit(txn);
    return mrc == 0 ? mdb_env_sync(wal->env, 1) : mrc;
}

/* The seq of the last record in the log (0: none), from the last group's key and record count. */
static int last_seq(MDB_txn *txn, MDB_dbi dbi, const char *who, const char *dir, uint64_t *last)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    *last = 0;
    int mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc == 0)
        mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (mrc == MDB_NOTFOUND)
        return 0;
    if (mrc != 0)
        return baton__wal_mdb_error(who, dir, mrc);
    if (k.mv_size != 8)
        return baton__error(BATON_EIO, "%s: %s: the last key is %zu bytes, not 8 (damaged)", who,
                            dir, k.mv_size);
    uint64_t first = wal_get_be64(k.mv_data), count = 0;
    size_t offset = 0;
    const unsigned char *data;
    size_t size;
    wal_group_status st;
    while ((st = wal_group_next(v.mv_data, v.mv_size, &offset, first + count, false, &data,
                                &size)) == WAL_GROUP_RECORD)
        count++;
    if (st != WAL_GROUP_END || count == 0 || first == 0)
        return baton__error(BATON_EIO, "%s: %s: the last group (seq %llu) is damaged", who, dir,
                            (unsigned long long)first);
    *last = first + count - 1;
    return 0;
}

static int wal_open_env(baton__wal *wal, const char *dir)
{
    const char *who = "baton__wal_open";
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return baton__error(BATON_EIO, "%s: cannot create %s: %s", who, dir, strerror(errno));
    int64_t file_size = 0;
    int rc = baton__wal_check_file(who, dir, &file_size);
    if (rc != 0 && rc != BATON_ENOTFOUND)
        return rc;
    rc = baton__wal_env_open(who, dir, file_size, false, &wal->env, &wal->map_size);
    if (rc != 0)
        return rc;
    MDB_txn *txn = NULL;
    uint64_t last = 0, bound = 0;
    int mrc = mdb_txn_begin(wal->env, NULL, 0, &txn);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "log", MDB_CREATE, &wal->log_dbi);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &wal->meta_dbi);
    if (mrc == 0) {
        rc = last_seq(txn, wal->log_dbi, who, dir, &last);
        if (rc != 0) {
            mdb_txn_abort(txn);
            return rc;
        }
        MDB_val k = {8, "truncate"}, v;
        mrc = mdb_get(txn, wal->meta_dbi, &k, &v);
        if (mrc == 0 && v.mv_size == 8)
            bound = wal_get_be64(v.mv_data);
        else if (mrc == MDB_NOTFOUND)
            mrc = 0;
    }
    mrc = commit_and_sync(wal, txn, mrc);
    if (mrc != 0) {
        if (mrc == MDB_INCOMPATIBLE)
            return baton__error(BATON_EIO, "%s: %s is an LMDB environment but not a log "
                                "(its databases are not baton's)", who, dir);
        return baton__wal_mdb_error(who, dir, mrc);
    }
    uint64_t next = last + 1 > bound ? last + 1 : bound;
    if (next == 0)
        next = 1;
    wal->base = next;
    atomic_init(&wal->next_seq, next);
    atomic_init(&wal->durable, next - 1);
    atomic_init(&wal->truncated, bound);
    atomic_init(&wal->want_truncate, bound);
    wal->committed = next - 1;
    wal->synced = next - 1;
    wal->drop_below = bound;
    return 0;
}

int baton__wal_open(const char *dir, baton__wal_mode mode, baton__wal **out)
{
    return baton__wal_open_group(dir, mode, BATON__WAL_BATCH, out);
}

static void wal_free(baton__wal *wal)
{
    if (wal->env != NULL)
        mdb_env_close(wal->env);
    baton__free(wal->ring);
    baton__free(wal);
}

int baton__wal_open_group(const char *dir, baton__wal_mode mode, size_t group_max,
                          baton__wal **out)
{
    const char *who = "baton__wal_open";
    if (out == NULL)
        return baton__error(BATON_EINVAL, "%s: out is NULL", who);
    *out = NULL;
    if (mode != BATON__WAL_NONE && mode != BATON__WAL_ASYNC && mode != BATON__WAL_SYNC)
        return baton__error(BATON_EINVAL, "%s: unknown mode %d", who, (int)mode);
    if (dir == NULL && mode != BATON__WAL_NONE)
        return baton__error(BATON_EINVAL, "%s: dir is NULL", who);
    if (group_max == 0 || group_max > BATON__WAL_BATCH)
        return baton__error(BATON_EINVAL, "%s: group_max %zu is not in 1..%d", who, group_max,
                            BATON__WAL_BATCH);
    baton__waitpoint_global_init();
    baton__wal *wal = baton__aligned_alloc(BATON_CACHELINE, sizeof *wal);
    if (wal == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory", who);
    memset(wal, 0, sizeof *wal);
    wal->mode = mode;
    wal->group_max = group_max;
    atomic_init(&wal->next_seq, 1);
    atomic_init(&wal->durable, 0);
    atomic_init(&wal->truncated, 0);
    atomic_init(&wal->want_truncate, 0);
    atomic_init(&wal->room_waits, 0);
    atomic_init(&wal->closing, 0);
    atomic_init(&wal->failed, 0);
    baton__waitpoint_init(&wal->work);
    baton__waitpoint_init(&wal->room);
    baton__waitpoint_init(&wal->progress);
    if (mode == BATON__WAL_NONE) {
        *out = wal;
        return 0;
    }
    int rc = wal_open_env(wal, dir);
    if (rc == 0) {
        wal->ring = baton__aligned_alloc(BATON_CACHELINE, WAL_RING_SLOTS * sizeof *wal->ring);
        if (wal->ring == NULL)
            rc = baton__error(BATON_ENOMEM, "%s: no memory for the log's ring", who);
    }
    if (rc == 0) {
        for (uint64_t i = 0; i < WAL_RING_SLOTS; i++)
            atomic_init(&wal->ring[i].turn, i);
        rc = baton__thread_start(&wal->writer, wal_writer_main, wal, "baton-wal");
    }
    if (rc != 0) {
        wal_free(wal);
        return rc;
    }
    *out = wal;
    return 0;
}

/* ---- appenders and waiters ------------------------------------------------------------------ */

static int wal_failed_error(const baton__wal *wal, const char *who)
{
    return baton__error(BATON_EIO, "%s: the log's writer failed: %s", who, wal->failed_msg);
}

typedef struct slot_wait {
    wal_slot *slot;
    uint64_t position;
} slot_wait;

static bool slot_free(void *arg)
{
    const slot_wait *w = arg;
    /* Acquire: pairs with the writer's release store that freed the slot, so our copy into it
     * cannot overtake the writer's read of the record before. */
    return atomic_load_explicit(&w->slot->turn, memory_order_acquire) == w->position;
}

int baton__wal_append(baton__wal *wal, const void *record, size_t size, uint64_t *seq)
{
    const char *who = "baton__wal_append";
    if (wal == NULL || (record == NULL && size > 0))
        return baton__error(BATON_EINVAL, "%s: %s is NULL", who, wal == NULL ? "wal" : "record");
    if (wal->mode == BATON__WAL_NONE) {
        uint64_t s = atomic_fetch_add_explicit(&wal->next_seq, 1, memory_order_relaxed);
        if (seq != NULL)
            *seq = s;
        return 0;
    }
    /* Acquire: pairs with the writer's release store of failed, so failed_msg is complete. */
    if (atomic_load_explicit(&wal->failed, memory_order_acquire))
        return wal_failed_error(wal, who);
    if (atomic_load_explicit(&wal->closing, memory_order_relaxed))
        return baton__error(BATON_ECLOSED, "%s: the log is closing", who);
    if (size > WAL_RECORD_MAX - WAL_RECORD_HEADER)
        return baton__error(BATON_ERANGE, "%s: record of %zu bytes is too large", who, size);
    unsigned char *heap = NULL;
    if (size > WAL_INLINE) {
        heap = baton__malloc(size);
        if (heap == NULL)
            return baton__error(BATON_ENOMEM, "%s: no memory for a record of %zu bytes", who,
                                size);
        memcpy(heap, record, size);
    }
    /* Relaxed: the number only has to be unique; the slot's turn publishes the record. */
    uint64_t s = atomic_fetch_add_explicit(&wal->next_seq, 1, memory_order_relaxed);
    uint64_t position = s - wal->base;
    slot_wait w = {slot_at(wal, position), position};
    if (!slot_free(&w)) {
        baton__fetch_add_relaxed(&wal->room_waits, 1); /* a statistic */
        (void)baton__waitpoint_wait(&wal->room, slot_free, &w, UINT64_MAX);
    }
    wal_slot *slot = w.slot;
    slot->size = (uint32_t)size;
    slot->on_heap = heap != NULL;
    if (heap != NULL)
        slot->data.heap = heap;
    else if (size > 0)
        memcpy(slot->data.bytes, record, size);
    /* Release: pairs with the writer's acquire load of turn (slot_ready). */
    atomic_store_explicit(&slot->turn, position + 1, memory_order_release);
    baton__waitpoint_notify(&wal->work, false);
    if (seq != NULL)
        *seq = s;
    return 0;
}

typedef struct wal_wait {
    baton__wal *wal;
    uint64_t seq;
    _Atomic uint64_t *word;
} wal_wait;

static bool wal_reached(void *arg)
{
    const wal_wait *w = arg;
    /* Acquire: pairs with the writer's release stores of durable/truncated and failed. */
    return atomic_load_explicit(w->word, memory_order_acquire) >= w->seq ||
           atomic_load_explicit(&w->wal->failed, memory_order_acquire) != 0;
}

static int wal_wait_for(baton__wal *wal, _Atomic uint64_t *word, uint64_t seq, const char *who)
{
    wal_wait w = {wal, seq, word};
    baton__waitpoint_wait(&wal->progress, wal_reached, &w, UINT64_MAX);
    /* Acquire: as in wal_reached. */
    if (atomic_load_explicit(word, memory_order_acquire) >= seq)
        return 0;
    return wal_failed_error(wal, who);
}

int baton__wal_wait_durable(baton__wal *wal, uint64_t seq)
{
    const char *who = "baton__wal_wait_durable";
    if (wal == NULL)
        return baton__error(BATON_EINVAL, "%s: wal is NULL", who);
    if (wal->mode == BATON__WAL_NONE)
        return 0;
    if (seq >= atomic_load_explicit(&wal->next_seq, memory_order_relaxed))
        return baton__error(BATON_EINVAL, "%s: seq %llu was never given out", who,
                            (unsigned long long)seq);
    return wal_wait_for(wal, &wal->durable, seq, who);
}

baton__waitpoint *baton__wal_progress(baton__wal *wal)
{
    return &wal->progress;
}

bool baton__wal_failed(const baton__wal *wal)
{
    /* Acquire: pairs with wal_fail's release store. */
    return wal->mode != BATON__WAL_NONE && atomic_load_explicit(&wal->failed, memory_order_acquire);
}

uint64_t baton__wal_next_seq(const baton__wal *wal)
{
    return atomic_load_explicit(&wal->next_seq, memory_order_relaxed);
}

uint64_t baton__wal_room_waits(const baton__wal *wal)
{
    return baton__load_relaxed(&wal->room_waits);
}

uint64_t baton__wal_truncated(const baton__wal *wal)
{
    /* Acquire: pairs with the writer's release store of truncated. */
    return atomic_load_explicit(&wal->truncated, memory_order_acquire);
}

uint64_t baton__wal_durable(const baton__wal *wal)
{
    if (wal == NULL)
        return 0;
    /* Acquire: pairs with the writer's release store after its sync. */
    return atomic_load_explicit(&wal->durable, memory_order_acquire);
}

int baton__wal_truncate_before(baton__wal *wal, uint64_t seq)
{
    const char *who = "baton__wal_truncate_before";
    if (wal == NULL)
        return baton__error(BATON_EINVAL, "%s: wal is NULL", who);
    if (wal->mode == BATON__WAL_NONE)
        return 0;
    uint64_t next = atomic_load_explicit(&wal->next_seq, memory_order_relaxed);
    if (seq > next)
        seq = next;
    /* Acquire: pairs with the writer's release store of truncated. */
    if (atomic_load_explicit(&wal->truncated, memory_order_acquire) >= seq)
        return 0;
    uint64_t want = atomic_load_explicit(&wal->want_truncate, memory_order_relaxed);
    /* Relaxed: the bound is a number the writer reads; the notify below wakes it. */
    while (want < seq && !atomic_compare_exchange_weak_explicit(&wal->want_truncate, &want, seq,
                                                                memory_order_relaxed,
                                                                memory_order_relaxed)) {
    }
    baton__waitpoint_notify(&wal->work, false);
    return wal_wait_for(wal, &wal->truncated, seq, who);
}

/* ---- the writer ----------------------------------------------------------------------------- */

static void wal_fail(baton__wal *wal, const char *what, int mrc)
{
    if (atomic_load_explicit(&wal->failed, memory_order_relaxed))
        return;
    snprintf(wal->failed_msg, sizeof wal->failed_msg, "%s: %s", what, mdb_strerror(mrc));
    /* Release: pairs with the acquire loads in append, wal_reached and close: failed_msg is
     * written before. */
    atomic_store_explicit(&wal->failed, 1, memory_order_release);
    baton__waitpoint_notify(&wal->progress, true);
}

static bool slot_ready(const baton__wal *wal, uint64_t position)
{
    /* Acquire: pairs with the appender's release store of turn; the record is there. */
    return atomic_load_explicit(&slot_at(wal, position)->turn, memory_order_acquire) ==
           position + 1;
}

static const unsigned char *slot_bytes(const wal_slot *slot)
{
    return slot->on_heap ? slot->data.heap : slot->data.bytes;
}

/* Frees the slots of n records from the writer's position on and moves past them. */
static void release_slots(baton__wal *wal, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++, wal->position++) {
        wal_slot *slot = slot_at(wal, wal->position);
        if (slot->on_heap)
            baton__free(slot->data.heap);
        /* Release: pairs with the acquire in slot_free; our reads of the slot come first. */
        atomic_store_explicit(&slot->turn, wal->position + WAL_RING_SLOTS, memory_order_release);
    }
    baton__waitpoint_notify(&wal->room, true);
}

/* The published records at the writer's position that make one group: their count, and in
 * *bytes the size of the group's value (records below the truncation bound are left out). */
static uint64_t gather(baton__wal *wal, size_t *bytes)
{
    uint64_t n = 0;
    *bytes = 0;
    while (n < wal->group_max && slot_ready(wal, wal->position + n)) {
        const wal_slot *slot = slot_at(wal, wal->position + n);
        size_t size = WAL_RECORD_HEADER + slot->size;
        if (n > 0 && *bytes + size > WAL_GROUP_BYTES)
            break;
        if (wal->base + wal->position + n >= wal->drop_below)
            *bytes += size;
        n++;
    }
    return n;
}

/* Writes the group of n records at the writer's position (bytes: its value's size) in one
 * transaction, doubling the map while it is full, and frees their slots. */
static int write_group(baton__wal *wal, uint64_t n, size_t bytes)
{
    uint64_t first = wal->base + wal->position;
    uint64_t skip = first < wal->drop_below ? wal->drop_below - first : 0;
    if (skip > n)
        skip = n;
    if (bytes == 0) {
        release_slots(wal, n);
        return 0;
    }
    for (;;) {
        MDB_txn *txn = NULL;
        int mrc = mdb_txn_begin(wal->env, NULL, 0, &txn);
        if (mrc != 0)
            return mrc;
        unsigned char key[8];
        wal_put_be64(key, first + skip);
        MDB_val k = {8, key}, v = {bytes, NULL};
        mrc = mdb_put(txn, wal->log_dbi, &k, &v, MDB_APPEND | MDB_RESERVE);
        if (mrc == 0) {
            unsigned char *out = v.mv_data;
            for (uint64_t i = skip; i < n; i++) {
                const wal_slot *slot = slot_at(wal, wal->position + i);
                wal_record_write(out, first + i, slot_bytes(slot), slot->size);
                out += WAL_RECORD_HEADER + slot->size;
            }
            /* The records are in the transaction's pages now: the slots can go. */
            release_slots(wal, n);
            return mdb_txn_commit(txn);
        }
        mdb_txn_abort(txn);
        if (mrc != MDB_MAP_FULL || wal->map_size >= ((size_t)1 << 46))
            return mrc;
        /* No transaction is active in this environment now: the writer is its only user. */
        int grow = mdb_env_set_mapsize(wal->env, wal->map_size * 2);
        if (grow != 0)
            return grow;
        wal->map_size *= 2;
    }
}

static void wal_sync(baton__wal *wal)
{
    if (wal->committed == wal->synced)
        return;
    int mrc = mdb_env_sync(wal->env, 1);
    if (mrc != 0) {
        wal_fail(wal, "mdb_env_sync", mrc);
        return;
    }
    wal->synced = wal->committed;
    /* Release: pairs with the acquire loads in baton__wal_durable and wal_reached. */
    atomic_store_explicit(&wal->durable, wal->synced, memory_order_release);
    baton__waitpoint_notify(&wal->progress, true);
}

/* Deletes every group whose records all lie below bound (the last group's last record is the
 * last committed one; any other's is the next group's key - 1). */
static int delete_groups_below(baton__wal *wal, MDB_txn *txn, uint64_t bound)
{
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(txn, wal->log_dbi, &cur);
    while (mrc == 0) {
        MDB_val k, v, k2, v2;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (mrc == MDB_NOTFOUND) {
            mrc = 0;
            break;
        }
        if (mrc != 0 || k.mv_size != 8)
            break;
        uint64_t last = wal->committed;
        int next = mdb_cursor_get(cur, &k2, &v2, MDB_NEXT);
        if (next == 0 && k2.mv_size == 8)
            last = wal_get_be64(k2.mv_data) - 1;
        else if (next != MDB_NOTFOUND)
            break;
        if (last >= bound)
            break;
        mrc = mdb_del(txn, wal->log_dbi, &k, NULL);
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    return mrc;
}

static void wal_truncate(baton__wal *wal, uint64_t bound)
{
    MDB_txn *txn = NULL;
    int mrc = mdb_txn_begin(wal->env, NULL, 0, &txn);
    if (mrc == 0)
        mrc = delete_groups_below(wal, txn, bound);
    if (mrc == 0) {
        unsigned char value[8];
        wal_put_be64(value, bound);
        MDB_val k = {8, "truncate"}, v = {8, value};
        mrc = mdb_put(txn, wal->meta_dbi, &k, &v, 0);
    }
    mrc = commit_and_sync(wal, txn, mrc);
    if (mrc != 0) {
        wal_fail(wal, "truncating the log", mrc);
        return;
    }
    wal->drop_below = bound;
    /* Release: pairs with the acquire loads in truncate_before and wal_reached. */
    atomic_store_explicit(&wal->truncated, bound, memory_order_release);
    baton__waitpoint_notify(&wal->progress, true);
}

static bool writer_has_work(void *arg)
{
    baton__wal *wal = arg;
    return slot_ready(wal, wal->position) ||
           atomic_load_explicit(&wal->want_truncate, memory_order_relaxed) > wal->drop_below ||
           atomic_load_explicit(&wal->closing, memory_order_acquire);
}

/* Closing and every number given out has been read: appends have stopped (close's contract). */
static bool drained(const baton__wal *wal)
{
    /* Acquire: pairs with close's release store; appends that came before it are visible. */
    return atomic_load_explicit(&wal->closing, memory_order_acquire) &&
           wal->base + wal->position == atomic_load_explicit(&wal->next_seq, memory_order_relaxed);
}

/* ASYNC: whether to let a group that is not full fill for WAL_LINGER_NS first. Nobody waits
 * for an ASYNC commit (durability comes with the timed sync), and a commit costs about as much
 * for a few records as for a full group, so the writer sleeps a little rather than commit a
 * few hundred records at a time; it sleeps without a waitpoint, so appenders wake nobody. */
static bool should_linger(baton__wal *wal, uint64_t n, size_t bytes)
{
    return wal->mode == BATON__WAL_ASYNC && n < wal->group_max && bytes < WAL_GROUP_BYTES / 2 &&
           !atomic_load_explicit(&wal->closing, memory_order_relaxed) &&
           atomic_load_explicit(&wal->want_truncate, memory_order_relaxed) <= wal->drop_below;
}

static void *wal_writer_main(void *arg)
{
    baton__wal *wal = arg;
    uint64_t next_sync = baton__monotonic_ns() + BATON__WAL_SYNC_INTERVAL_NS;
    bool lingered = false;
    for (;;) {
        bool failed = atomic_load_explicit(&wal->failed, memory_order_relaxed) != 0;
        size_t bytes = 0;
        uint64_t n = gather(wal, &bytes);
        if (n > 0 && !lingered && should_linger(wal, n, bytes)) {
            baton__sleep_ns(WAL_LINGER_NS);
            lingered = true;
            continue;
        }
        lingered = false;
        if (n > 0) {
            if (failed) {
                release_slots(wal, n);
                continue;
            }
            int mrc = write_group(wal, n, bytes);
            if (mrc != 0) {
                wal_fail(wal, "writing a group of records", mrc);
                continue;
            }
            wal->committed = wal->base + wal->position - 1;
        }
        if (!failed) {
            if (wal->mode == BATON__WAL_SYNC) {
                wal_sync(wal);
            } else if (wal->committed > wal->synced) {
                uint64_t now = baton__monotonic_ns();
                if (now >= next_sync) {
                    wal_sync(wal);
                    next_sync = now + BATON__WAL_SYNC_INTERVAL_NS;
                }
            } else {
                next_sync = baton__monotonic_ns() + BATON__WAL_SYNC_INTERVAL_NS;
            }
            uint64_t want = atomic_load_explicit(&wal->want_truncate, memory_order_relaxed);
            if (want > wal->drop_below && !atomic_load_explicit(&wal->failed, memory_order_relaxed))
                wal_truncate(wal, want);
        }
        if (n > 0)
            continue;
        if (drained(wal))
            break;
        uint64_t deadline = UINT64_MAX;
        if (!failed && wal->mode == BATON__WAL_ASYNC && wal->committed > wal->synced)
            deadline = next_sync;
        (void)baton__waitpoint_wait(&wal->work, writer_has_work, wal, deadline);
    }
    if (!atomic_load_explicit(&wal->failed, memory_order_relaxed))
        wal_sync(wal);
    return NULL;
}

int baton__wal_close(baton__wal *wal)
{
    if (wal == NULL)
        return 0;
    int rc = 0;
    if (wal->mode != BATON__WAL_NONE) {
        /* Release: pairs with the writer's acquire in drained; every append came before. */
        atomic_store_explicit(&wal->closing, 1, memory_order_release);
        baton__waitpoint_notify(&wal->work, false);
        baton__thread_join(wal->writer);
        /* Acquire: pairs with wal_fail's release store (the join orders it too). */
        if (atomic_load_explicit(&wal->failed, memory_order_acquire))
            rc = wal_failed_error(wal, "baton__wal_close");
    }
    wal_free(wal);
    return rc;
}
