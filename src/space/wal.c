/*
 * wal.c — the write-ahead log's appenders, opening, closing and waiting (the writer thread:
 * wal_writer.c; replay: wal_replay.c; the file checks: wal_check.c; the format: wal_format.h).
 *
 * DESIGN
 *  - Lanes, not one queue. An earlier log handed every record a number with one atomic add on a
 *    shared counter and put it in the ring slot that the number named: two cache misses per
 *    record on lines every appender writes (the counter, the slot the writer had just freed),
 *    which on two cores cost half the space's throughput. Now each appending thread writes into
 *    a lane of its own (a byte ring of WAL_LANE_BYTES with a single consumer, the writer), and
 *    nothing on an append's path is written by another thread in the meantime: per record, a
 *    compare-and-swap and two stores on the lane's own line, a copy (or, through
 *    baton__wal_append_encoded, the caller's encoder writing the record in place: the space's
 *    PUT and FIRE), no allocation, no lock.
 *  - A lane has one holder at a time: an append claims it by moving `active` from 0 to the
 *    epoch it read (a thread keeps its lane from one append to the next, so the claim hits its
 *    own cache) and lets go by storing 0. A thread whose lane is taken claims another or adds
 *    one (up to WAL_MAX_LANES; beyond, it waits for one to be free).
 *  - Order. The log must agree with every channel's order: a record written while holding
 *    channel c comes after every earlier record that touched c, whatever lanes they went to.
 *    Each record gets a Lamport stamp: one more than the largest of its lane's clock, its
 *    thread's clock and the clocks of the channels it touches (passed in by the caller, who
 *    holds those channels), all of which then take the stamp. So stamps grow along each lane,
 *    each thread and each channel. The
 *    writer puts records in (epoch, stamp, lane) order, which agrees with both.
 *  - Epochs make what the writer commits a prefix of that order, closed under it: no record is
 *    committed while one it follows is still to come (after a crash, replay must never see a
 *    FIRE whose PUT was lost). An append reads the epoch and tags its record with it; the writer
 *    closes epoch E by moving the epoch to E + 1 and waiting until no lane is held by an append
 *    that announced an epoch <= E; then every record tagged <= E is in the lanes, and every
 *    record that follows one of them on a channel came later, so it read an epoch >= its
 *    predecessor's. The announcement and the writer's move are a Dekker pair (both seq_cst): the
 *    append claims the lane with its epoch, then reads the epoch again and tags its record with
 *    that second reading. Either the writer's move came first and the tag is > E, or the claim
 *    came first and the writer sees it and waits. A tag is the record's ticket: it is durable
 *    once its epoch is.
 *  - Barriers: a record that must come after everything appended before it and before
 *    everything appended after (the space's snapshot markers) moves the epoch on itself and takes
 *    stamp 0, first in its new epoch. Its appender waits until the writer has placed it and
 *    learns its seq (compaction truncates before it).
 *  - Sequence numbers are given by the writer as it places records, in that order, so the file
 *    format and replay are those of a single numbered log (wal_format.h).
 *  - Backpressure. An append waits only when its lane is full (the disk cannot keep up): it
 *    lets the lane go first (so the writer can close the epoch and free it), then sleeps on
 *    `room`. Records longer than WAL_LANE_INLINE_MAX are copied to the heap first and the lane
 *    holds the pointer.
 *  - The writer's failure is sticky: it stores its message in failed_msg, then sets failed
 *    (release); every later append, wait and close repeats the message as BATON_EIO. A failed
 *    writer keeps emptying the lanes, so that no appender already past its check waits forever.
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
#include <fcntl.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/os.h"
#include "core/waitpoint.h"
#include "space/wal_format.h"
#include "space/wal_impl.h"

/* ---- open ----------------------------------------------------------------------------------- */

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

/* Removes DIR/data.new and what LMDB left in it (ENOENT is not an error). */
static int wal_remove_new(const char *who, const char *tmp)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    char path[4200];
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp, files[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            return baton__error(BATON_EIO, "%s: cannot remove %s: %s", who, path,
                                strerror(errno));
    }
    if (rmdir(tmp) != 0 && errno != ENOENT)
        return baton__error(BATON_EIO, "%s: cannot remove %s: %s", who, tmp, strerror(errno));
    return 0;
}

/*
 * Creates the log of dir, which has no data.mdb: the environment is made whole in DIR/data.new
 * (its databases committed and synced) and only then renamed to DIR/data.mdb, the directory
 * synced. So a data.mdb exists only complete, and a crash at any point of creation leaves at
 * most data.new, which the next open throws away (and replay never looks at): the directory
 * opens as an empty space.
 */
static int wal_create(const char *who, const char *dir)
{
    char tmp[4096], from[4200], to[4200];
    if (snprintf(tmp, sizeof tmp, "%s/data.new", dir) >= (int)sizeof tmp)
        return baton__error(BATON_EINVAL, "%s: directory name too long: %s", who, dir);
    int rc = wal_remove_new(who, tmp);
    if (rc != 0)
        return rc;
    if (mkdir(tmp, 0755) != 0)
        return baton__error(BATON_EIO, "%s: cannot create %s: %s", who, tmp, strerror(errno));
    MDB_env *env = NULL;
    size_t map = 0;
    rc = baton__wal_env_open(who, tmp, 0, false, &env, &map);
    if (rc != 0)
        return rc;
    baton__test_crash_point("env");
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int mrc = mdb_txn_begin(env, NULL, 0, &txn);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "log", MDB_CREATE, &dbi);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi);
    if (mrc == 0)
        mrc = mdb_txn_commit(txn);
    else if (txn != NULL)
        mdb_txn_abort(txn);
    if (mrc == 0)
        mrc = mdb_env_sync(env, 1);
    mdb_env_close(env);
    if (mrc != 0)
        return baton__wal_mdb_error(who, tmp, mrc);
    baton__test_crash_point("created");
    snprintf(from, sizeof from, "%s/data.mdb", tmp);
    snprintf(to, sizeof to, "%s/data.mdb", dir);
    if (rename(from, to) != 0)
        return baton__error(BATON_EIO, "%s: cannot rename %s to %s: %s", who, from, to,
                            strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return baton__error(BATON_EIO, "%s: cannot sync the directory %s: %s", who, dir,
                            strerror(e));
    }
    close(fd);
    baton__test_crash_point("renamed");
    return wal_remove_new(who, tmp);
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
    if (rc == BATON_ENOTFOUND)
        rc = wal_create(who, dir);
    else if (rc == 0) { /* a crash after creation's rename leaves data.new behind */
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s/data.new", dir);
        rc = wal_remove_new(who, tmp);
    }
    if (rc != 0)
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
    mrc = baton__wal_commit_and_sync(wal, txn, mrc);
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
    wal->next_disk = next;
    atomic_init(&wal->durable, next - 1);
    atomic_init(&wal->committed_seq_pub, next - 1);
    atomic_init(&wal->truncated, bound);
    atomic_init(&wal->want_truncate, bound);
    wal->committed = next - 1;
    wal->synced_seq = next - 1;
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
    unsigned n = atomic_load_explicit(&wal->n_lanes, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++) {
        wal_lane *lane = atomic_load_explicit(&wal->lanes[i], memory_order_relaxed);
        if (lane != NULL) {
            baton__free(lane->bytes);
            baton__free(lane);
        }
    }
    baton__free(wal->batch);
    baton__free(wal);
}

int baton__wal_open_group(const char *dir, baton__wal_mode mode, size_t group_max,
                          baton__wal **out)
{
    const char *who = "baton__wal_open";
    static _Atomic uint64_t next_id = 1;
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
    wal->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    wal->base = 1;
    wal->next_disk = 1;
    atomic_init(&wal->epoch, 1);
    atomic_init(&wal->durable_epoch, 0);
    atomic_init(&wal->durable, 0);
    atomic_init(&wal->truncated, 0);
    atomic_init(&wal->want_truncate, 0);
    atomic_init(&wal->want_epoch, 0);
    atomic_init(&wal->placed_epoch, 0);
    atomic_init(&wal->committed_seq_pub, 0);
    atomic_init(&wal->committed_epoch_pub, 0);
    atomic_init(&wal->writer_done, 0);
    for (unsigned i = 0; i < WAL_BARRIER_SLOTS; i++) {
        atomic_init(&wal->barrier_epoch[i], 0);
        atomic_init(&wal->barrier_seq[i], 0);
    }
    atomic_init(&wal->room_waits, 0);
    atomic_init(&wal->writer_cpu_ns, 0);
    atomic_init(&wal->syncer_cpu_ns, 0);
    atomic_init(&wal->none_count, 0);
    atomic_init(&wal->closing, 0);
    atomic_init(&wal->failing, 0);
    atomic_init(&wal->failed, 0);
    atomic_init(&wal->n_lanes, 0);
    for (unsigned i = 0; i < WAL_MAX_LANES; i++)
        atomic_init(&wal->lanes[i], NULL);
    baton__waitpoint_init(&wal->work);
    baton__waitpoint_init(&wal->sync_work);
    baton__waitpoint_init(&wal->sync_timer);
    baton__waitpoint_init(&wal->room);
    baton__waitpoint_init(&wal->progress);
    if (mode == BATON__WAL_NONE) {
        *out = wal;
        return 0;
    }
    int rc = wal_open_env(wal, dir);
    if (rc == 0 && mode == BATON__WAL_ASYNC)
        rc = baton__thread_start(&wal->syncer, baton__wal_syncer_main, wal, "baton-wal-sync");
    if (rc == 0) {
        rc = baton__thread_start(&wal->writer, baton__wal_writer_main, wal, "baton-wal");
        if (rc != 0 && wal->syncer != NULL) { /* stop it as the writer would at its end */
            atomic_store_explicit(&wal->writer_done, 1, memory_order_release);
            baton__waitpoint_notify(&wal->sync_work, true);
            baton__waitpoint_notify(&wal->sync_timer, true);
            baton__thread_join(wal->syncer);
        }
    }
    if (rc != 0) {
        wal_free(wal);
        return rc;
    }
    *out = wal;
    return 0;
}

/* ---- lanes ---------------------------------------------------------------------------------- */

/* The lane this thread used last, and the log it belongs to. */
static _Thread_local struct {
    uint64_t wal_id;
    wal_lane *lane;
} tls_lane;

/* The last stamp this thread gave: its records stay in its order even when it changes lanes. */
static _Thread_local uint64_t tls_clock;

/* Claims lane for an append that read epoch e. seq_cst: the append's half of the Dekker pair
 * with close_epoch (wal_writer.c), which moves the epoch on and then reads active; acquire part:
 * pairs with the previous holder's release of the lane, so its clock and tail are ours. */
static bool lane_claim(wal_lane *lane, uint64_t e)
{
    uint64_t idle = 0;
    return atomic_compare_exchange_strong_explicit(&lane->active, &idle, e, memory_order_seq_cst,
                                                   memory_order_relaxed);
}

static void lane_let_go(wal_lane *lane)
{
    /* Release: pairs with the writer's acquire load of active (close_epoch) and the next
     * holder's claim: the entry and the lane's clock are written before. */
    atomic_store_explicit(&lane->active, 0, memory_order_release);
}

/* Adds a lane, already claimed for epoch e; NULL when there is no memory or no room left. */
static wal_lane *lane_add(baton__wal *wal, uint64_t e)
{
    unsigned n = atomic_load_explicit(&wal->n_lanes, memory_order_relaxed);
    do {
        if (n >= WAL_MAX_LANES)
            return NULL;
    } while (!atomic_compare_exchange_weak_explicit(&wal->n_lanes, &n, n + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    wal_lane *lane = baton__aligned_alloc(BATON_CACHELINE, sizeof *lane);
    unsigned char *bytes = lane != NULL ? baton__aligned_alloc(BATON_CACHELINE, WAL_LANE_BYTES)
                                        : NULL;
    if (bytes == NULL) {
        /* The slot stays empty (the writer skips NULL lanes); the next lane_add takes another. */
        baton__free(lane);
        return NULL;
    }
    memset(lane, 0, sizeof *lane);
    lane->bytes = bytes;
    atomic_init(&lane->active, e);
    atomic_init(&lane->tail, 0);
    atomic_init(&lane->appended, 0);
    atomic_init(&lane->head, 0);
    /* seq_cst: the lane is published claimed, before its holder reads the epoch again; a writer
     * that moved the epoch after that reading finds the lane (close_epoch). */
    atomic_store_explicit(&wal->lanes[n], lane, memory_order_seq_cst);
    return lane;
}

/* A lane claimed for epoch e: this thread's own when free, else any free one, else a new one.
 * NULL only when no lane is free, none can be added and memory is short (error set). */
static wal_lane *lane_acquire(baton__wal *wal, uint64_t e)
{
    wal_lane *mine = tls_lane.wal_id == wal->id ? tls_lane.lane : NULL;
    if (mine != NULL && lane_claim(mine, e))
        return mine;
    for (unsigned tries = 0;; tries++) {
        unsigned n = atomic_load_explicit(&wal->n_lanes, memory_order_acquire);
        for (unsigned i = 0; i < n && i < WAL_MAX_LANES; i++) {
            wal_lane *lane = atomic_load_explicit(&wal->lanes[i], memory_order_acquire);
            if (lane != NULL && lane != mine && lane_claim(lane, e)) {
                tls_lane.wal_id = wal->id;
                tls_lane.lane = lane;
                return lane;
            }
        }
        wal_lane *lane = lane_add(wal, e);
        if (lane != NULL) {
            tls_lane.wal_id = wal->id;
            tls_lane.lane = lane;
            return lane;
        }
        if (n < WAL_MAX_LANES && tries > 1000) {
            (void)baton__error(BATON_ENOMEM, "baton__wal_append: no memory for a lane of %llu bytes",
                         (unsigned long long)WAL_LANE_BYTES);
            return NULL;
        }
        baton__thread_yield(); /* every lane is held: WAL_MAX_LANES threads append right now */
        if (mine != NULL && lane_claim(mine, e))
            return mine;
    }
}

typedef struct room_wait {
    wal_lane *lane;
    uint64_t end;
    baton__wal *wal;
} room_wait;

static bool lane_has_room(void *arg)
{
    const room_wait *w = arg;
    /* Acquire: pairs with the writer's release store of head; it has read the entries. */
    return atomic_load_explicit(&w->lane->head, memory_order_acquire) + WAL_LANE_BYTES >= w->end ||
           atomic_load_explicit(&w->wal->failed, memory_order_acquire) != 0;
}

/* ---- appending ------------------------------------------------------------------------------ */

static int wal_failed_error(const baton__wal *wal, const char *who)
{
    return baton__error(BATON_EIO, "%s: the log's writer failed: %s", who, wal->failed_msg);
}

/* Where an append's bytes come from: a record to copy, or an encoder that writes it in place. */
typedef struct wal_source {
    const void *record;
    baton__wal_encoder encode;
    void *ctx;
} wal_source;

/* Writes the record at out (room for size bytes); returns its length: size for a copy, what
 * the encoder wrote (at most size) for an encoded one. */
static size_t source_write(const wal_source *src, unsigned char *out, size_t size)
{
    if (src->encode != NULL)
        return src->encode(src->ctx, out);
    if (size > 0)
        memcpy(out, src->record, size);
    return size;
}

/* Writes the entry at start of a lane the caller holds: header, then the record (room for size
 * bytes) or its heap copy's address (heap_size bytes long). Returns the entry's span. */
static uint64_t put_entry(wal_lane *lane, uint64_t start, const wal_source *src, size_t size,
                          unsigned char *heap, size_t heap_size, uint64_t epoch, uint64_t stamp)
{
    wal_entry *en = wal_lane_entry(lane, start);
    en->kind = heap != NULL ? WAL_ENTRY_HEAP : WAL_ENTRY_INLINE;
    en->epoch = epoch;
    en->stamp = stamp;
    if (heap != NULL) {
        memcpy(en + 1, &heap, sizeof heap);
        en->size = (uint32_t)heap_size;
    } else {
        en->size = (uint32_t)source_write(src, (unsigned char *)(en + 1), size);
    }
    return wal_entry_span(en);
}

static int append(baton__wal *wal, const wal_source *src, size_t size, uint64_t *const *clocks,
                  size_t n_clocks, bool barrier, uint64_t *ticket, const char *who)
{
    bool no_bytes = src->encode == NULL && src->record == NULL && size > 0;
    if (wal == NULL || no_bytes || (clocks == NULL && n_clocks > 0))
        return baton__error(BATON_EINVAL, "%s: %s is NULL", who,
                            wal == NULL ? "wal" : no_bytes ? "record" : "clocks");
    if (wal->mode == BATON__WAL_NONE) {
        uint64_t s = atomic_fetch_add_explicit(&wal->none_count, 1, memory_order_relaxed) + 1;
        if (ticket != NULL)
            *ticket = s;
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
    size_t heap_size = 0;
    if (size > WAL_LANE_INLINE_MAX) {
        heap = baton__malloc(size);
        if (heap == NULL)
            return baton__error(BATON_ENOMEM, "%s: no memory for a record of %zu bytes", who,
                                size);
        heap_size = source_write(src, heap, size);
    }
    uint64_t body = heap != NULL ? sizeof heap : size;
    uint64_t need = WAL_ENTRY_HEADER + ((body + 7) & ~(uint64_t)7);
    for (;;) {
        /* Relaxed for a plain append: the claim and the second reading below order it. A
         * barrier's move is seq_cst: see DESIGN, Barriers. */
        uint64_t e = barrier ? atomic_fetch_add_explicit(&wal->epoch, 1, memory_order_seq_cst) + 1
                             : atomic_load_explicit(&wal->epoch, memory_order_relaxed);
        wal_lane *lane = lane_acquire(wal, e);
        if (lane == NULL) {
            baton__free(heap);
            return BATON_ENOMEM; /* lane_acquire set the message */
        }
        /* seq_cst: the second reading of the Dekker pair (DESIGN, Epochs). */
        uint64_t tag = atomic_load_explicit(&wal->epoch, memory_order_seq_cst);
        if (barrier && tag != e) { /* the writer closed e meanwhile: take a newer epoch */
            lane_let_go(lane);
            continue;
        }
        uint64_t start = wal_lane_start(lane->end);
        uint64_t left = WAL_LANE_BYTES - (start & (WAL_LANE_BYTES - 1));
        uint64_t pad = left < need ? left : 0;
        uint64_t end = start + pad + need;
        if (end - lane->head_seen > WAL_LANE_BYTES) {
            /* Acquire: pairs with the writer's release store of head. */
            lane->head_seen = atomic_load_explicit(&lane->head, memory_order_acquire);
            if (end - lane->head_seen > WAL_LANE_BYTES) {
                lane_let_go(lane);
                baton__fetch_add_relaxed(&wal->room_waits, 1); /* a statistic */
                baton__waitpoint_notify(&wal->work, false);
                room_wait w = {lane, end, wal};
                (void)baton__waitpoint_wait(&wal->room, lane_has_room, &w, UINT64_MAX);
                if (atomic_load_explicit(&wal->failed, memory_order_acquire)) {
                    baton__free(heap);
                    return wal_failed_error(wal, who);
                }
                continue;
            }
        }
        if (pad > 0) {
            wal_entry *p = wal_lane_entry(lane, start);
            p->size = 0;
            p->kind = WAL_ENTRY_PAD;
            start += pad;
        }
        uint64_t stamp = 0;
        if (!barrier) {
            stamp = lane->clock > tls_clock ? lane->clock : tls_clock;
            for (size_t i = 0; i < n_clocks; i++)
                stamp = *clocks[i] > stamp ? *clocks[i] : stamp;
            stamp++;
            for (size_t i = 0; i < n_clocks; i++)
                *clocks[i] = stamp;
            lane->clock = stamp;
            tls_clock = stamp;
        }
        /* The lane's bytes a few records on were last touched by the writer, long ago: ask
         * for them now, so that a later append does not wait for the line. */
        BATON__PREFETCH_WRITE(wal_lane_entry(lane, start + need + 512));
        /* An encoder may write less than the room it asked for: the entry ends where its
         * record does (never past need, which the room and the pad were reckoned with). */
        uint64_t span = put_entry(lane, start, src, size, heap, heap_size, barrier ? e : tag,
                                  stamp);
        /* Release: pairs with the writer's acquire load of tail; the entry is written. */
        lane->end = start + span;
        atomic_store_explicit(&lane->tail, lane->end, memory_order_release);
        baton__store_relaxed(&lane->appended, ++lane->count);
        lane_let_go(lane);
        baton__waitpoint_notify(&wal->work, false);
        if (ticket != NULL)
            *ticket = barrier ? e : tag;
        return 0;
    }
}

int baton__wal_append(baton__wal *wal, const void *record, size_t size, uint64_t *ticket)
{
    wal_source src = {record, NULL, NULL};
    return append(wal, &src, size, NULL, 0, false, ticket, "baton__wal_append");
}

int baton__wal_append_ordered(baton__wal *wal, const void *record, size_t size,
                              uint64_t *const *clocks, size_t n_clocks, uint64_t *ticket)
{
    wal_source src = {record, NULL, NULL};
    return append(wal, &src, size, clocks, n_clocks, false, ticket,
                  "baton__wal_append_ordered");
}

int baton__wal_append_encoded(baton__wal *wal, size_t size, baton__wal_encoder encode, void *ctx,
                              uint64_t *const *clocks, size_t n_clocks, uint64_t *ticket)
{
    const char *who = "baton__wal_append_encoded";
    if (encode == NULL)
        return baton__error(BATON_EINVAL, "%s: encode is NULL", who);
    wal_source src = {NULL, encode, ctx};
    return append(wal, &src, size, clocks, n_clocks, false, ticket, who);
}

/* ---- waiting -------------------------------------------------------------------------------- */

typedef struct wal_wait {
    baton__wal *wal;
    uint64_t value;
    _Atomic uint64_t *word;
} wal_wait;

static bool wal_reached(void *arg)
{
    const wal_wait *w = arg;
    /* Acquire: pairs with the release stores of durable_epoch (wal_syncer.c), placed_epoch,
     * truncated and failed. */
    return atomic_load_explicit(w->word, memory_order_acquire) >= w->value ||
           atomic_load_explicit(&w->wal->failed, memory_order_acquire) != 0;
}

static int wal_wait_for(baton__wal *wal, _Atomic uint64_t *word, uint64_t value, const char *who)
{
    wal_wait w = {wal, value, word};
    baton__waitpoint_wait(&wal->progress, wal_reached, &w, UINT64_MAX);
    /* Acquire: as in wal_reached. */
    if (atomic_load_explicit(word, memory_order_acquire) >= value)
        return 0;
    return wal_failed_error(wal, who);
}

/* Asks the writer to close epochs up to e without lingering. */
static void want_epoch(baton__wal *wal, uint64_t e)
{
    uint64_t want = atomic_load_explicit(&wal->want_epoch, memory_order_relaxed);
    /* Relaxed: a number the writer reads; the notify below wakes it. */
    while (want < e && !atomic_compare_exchange_weak_explicit(&wal->want_epoch, &want, e,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed)) {
    }
    baton__waitpoint_notify(&wal->work, false);
}

int baton__wal_append_barrier(baton__wal *wal, const void *record, size_t size,
                              uint64_t *ticket, uint64_t *seq)
{
    const char *who = "baton__wal_append_barrier";
    uint64_t e = 0;
    wal_source src = {record, NULL, NULL};
    int rc = append(wal, &src, size, NULL, 0, true, &e, who);
    if (rc != 0 || wal->mode == BATON__WAL_NONE) {
        if (rc == 0 && ticket != NULL)
            *ticket = e;
        if (rc == 0 && seq != NULL)
            *seq = e;
        return rc;
    }
    want_epoch(wal, e);
    if ((rc = wal_wait_for(wal, &wal->placed_epoch, e, who)) != 0)
        return rc;
    unsigned slot = (unsigned)(e % WAL_BARRIER_SLOTS);
    /* Acquire: pairs with the writer's release store of placed_epoch (wal_reached). */
    if (atomic_load_explicit(&wal->barrier_epoch[slot], memory_order_acquire) != e)
        return baton__error(BATON_EBUSY, "%s: more than %u barriers were appended at once", who,
                            WAL_BARRIER_SLOTS);
    if (ticket != NULL)
        *ticket = e;
    if (seq != NULL)
        *seq = atomic_load_explicit(&wal->barrier_seq[slot], memory_order_relaxed);
    return 0;
}

int baton__wal_wait_durable(baton__wal *wal, uint64_t ticket)
{
    const char *who = "baton__wal_wait_durable";
    if (wal == NULL)
        return baton__error(BATON_EINVAL, "%s: wal is NULL", who);
    if (wal->mode == BATON__WAL_NONE)
        return 0;
    if (ticket > atomic_load_explicit(&wal->epoch, memory_order_relaxed))
        return baton__error(BATON_EINVAL, "%s: ticket %llu was never given out", who,
                            (unsigned long long)ticket);
    /* Acquire: pairs with the release store (after a sync) of durable_epoch. */
    if (atomic_load_explicit(&wal->durable_epoch, memory_order_acquire) >= ticket)
        return 0;
    want_epoch(wal, ticket);
    return wal_wait_for(wal, &wal->durable_epoch, ticket, who);
}

int baton__wal_wait_all(baton__wal *wal)
{
    if (wal == NULL)
        return baton__error(BATON_EINVAL, "baton__wal_wait_all: wal is NULL");
    if (wal->mode == BATON__WAL_NONE)
        return 0;
    /* Relaxed: records this thread appended, or saw appended, read this epoch or an older one. */
    return baton__wal_wait_durable(wal, atomic_load_explicit(&wal->epoch, memory_order_relaxed));
}

baton__waitpoint *baton__wal_progress(baton__wal *wal)
{
    return &wal->progress;
}

bool baton__wal_failed(const baton__wal *wal)
{
    /* Acquire: pairs with baton__wal_fail's release store. */
    return wal->mode != BATON__WAL_NONE && atomic_load_explicit(&wal->failed, memory_order_acquire);
}

uint64_t baton__wal_next_seq(const baton__wal *wal)
{
    if (wal->mode == BATON__WAL_NONE)
        return baton__load_relaxed(&wal->none_count) + 1;
    uint64_t n = wal->base;
    unsigned lanes = atomic_load_explicit(&wal->n_lanes, memory_order_acquire);
    for (unsigned i = 0; i < lanes && i < WAL_MAX_LANES; i++) {
        wal_lane *lane = atomic_load_explicit(&wal->lanes[i], memory_order_acquire);
        if (lane != NULL)
            n += baton__load_relaxed(&lane->appended);
    }
    return n;
}

uint64_t baton__wal_room_waits(const baton__wal *wal)
{
    return baton__load_relaxed(&wal->room_waits);
}

uint64_t baton__wal_writer_cpu_ns(const baton__wal *wal)
{
    if (wal == NULL)
        return 0;
    return atomic_load_explicit(&wal->writer_cpu_ns, memory_order_relaxed) +
           atomic_load_explicit(&wal->syncer_cpu_ns, memory_order_relaxed);
}

uint64_t baton__wal_truncated(const baton__wal *wal)
{
    /* Acquire: pairs with the writer's release store of truncated. */
    return atomic_load_explicit(&wal->truncated, memory_order_acquire);
}

uint64_t baton__wal_durable(const baton__wal *wal)
{
    if (wal == NULL || wal->mode == BATON__WAL_NONE)
        return 0;
    /* Acquire: pairs with the release store after a sync (wal_syncer.c). */
    return atomic_load_explicit(&wal->durable_epoch, memory_order_acquire);
}

uint64_t baton__wal_durable_seq(const baton__wal *wal)
{
    if (wal == NULL || wal->mode == BATON__WAL_NONE)
        return 0;
    /* Acquire: as in baton__wal_durable. */
    return atomic_load_explicit(&wal->durable, memory_order_acquire);
}

int baton__wal_truncate_before(baton__wal *wal, uint64_t seq)
{
    const char *who = "baton__wal_truncate_before";
    if (wal == NULL)
        return baton__error(BATON_EINVAL, "%s: wal is NULL", who);
    if (wal->mode == BATON__WAL_NONE)
        return 0;
    uint64_t next = baton__wal_next_seq(wal);
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
        if (wal->syncer != NULL) /* it returns once it synced the writer's last commit */
            baton__thread_join(wal->syncer);
        /* Acquire: pairs with baton__wal_fail's release store (the joins order it too). */
        if (atomic_load_explicit(&wal->failed, memory_order_acquire))
            rc = wal_failed_error(wal, "baton__wal_close");
    }
    wal_free(wal);
    return rc;
}
