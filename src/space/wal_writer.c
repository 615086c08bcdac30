/*
 * wal_writer.c — the write-ahead log's writer thread: it closes epochs, puts the records of the
 * closed epochs in order, numbers them, writes them to LMDB in groups, syncs, and truncates
 * (wal.c's DESIGN block says why epochs and stamps; wal_format.h says how groups lie in LMDB).
 *
 * DESIGN
 *  - A batch: close epoch E (close_epoch), then merge the lanes' entries tagged <= E in
 *    (epoch, stamp, lane) order. Every lane holds its entries in that order already, so the
 *    merge is a k-way merge that looks at one entry per lane. It reads each entry's header once
 *    and keeps in the batch what the rest needs (payload, size, heap copy or not; a barrier's
 *    seq is noted as it is placed): sizing, writing and freeing then walk the batch, not the
 *    lanes, whose entries (megabytes after a linger) are out of cache by the next pass. A
 *    profile of the writer before this showed a third of its own time in those walks' cache
 *    misses. Any prefix of the merged order is
 *    closed under the log's order, so a batch may stop early (WAL_BATCH_MAX records) and the
 *    rest comes next time: only committed_epoch then waits for the batch that empties E.
 *  - Numbering: the records of a batch get the next sequence numbers in merge order; groups of
 *    at most group_max records (and WAL_GROUP_BYTES) are each written as one LMDB value in one
 *    transaction, reserved with MDB_RESERVE and filled straight from the lanes. Once a group's
 *    records are in the transaction's pages, their lane space can be freed (head).
 *  - In ASYNC mode the writer lets records gather for WAL_LINGER_NS before it closes an epoch:
 *    a commit costs about as much for a hundred records as for thousands. A waiter that wants an
 *    epoch durable (want_epoch), a truncation or close cut the lingering short.
 *  - The environment is opened with MDB_NOSYNC; syncs are explicit (wal_syncer.c), and the
 *    durable marks (durable: a seq; durable_epoch: a ticket) move only after a sync returned.
 *    SYNC mode: the writer syncs after every group itself. ASYNC mode: the writer only commits
 *    and publishes what it committed after each batch; the syncer thread syncs it every
 *    BATON__WAL_SYNC_INTERVAL_NS, so that waiting for the disk never stops the commits and the
 *    freeing of lane space. Truncation commits and syncs in the writer (it is rare). When the
 *    map is full the writer doubles the map and retries.
 *  - The writer owns the environment's write side and its positions. Others talk to it through
 *    atomics, each with a waitpoint: records (lanes' tails, work), truncation requests
 *    (want_truncate), durability requests (want_epoch), close (closing); it answers through
 *    placed_epoch, truncated and failed (progress), the published commits (sync_work) and by
 *    freeing lane space (room).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/os.h"
#include "core/waitpoint.h"
#include "space/wal_format.h"
#include "space/wal_impl.h"

/* The most records one batch merges (bounds the writer's scratch array). */
#define WAL_BATCH_MAX ((size_t)1 << 20)

/* ---- closing an epoch ----------------------------------------------------------------------- */

static wal_lane *lane_at(baton__wal *wal, unsigned i)
{
    /* seq_cst: after the move of the epoch (close_epoch); see lane_add. */
    return atomic_load_explicit(&wal->lanes[i], memory_order_seq_cst);
}

static unsigned lane_count(baton__wal *wal)
{
    unsigned n = atomic_load_explicit(&wal->n_lanes, memory_order_seq_cst);
    return n < WAL_MAX_LANES ? n : WAL_MAX_LANES;
}

typedef struct lane_quiet_arg {
    wal_lane *lane;
    uint64_t epoch;
} lane_quiet_arg;

static bool lane_quiet(void *arg)
{
    const lane_quiet_arg *q = arg;
    /* Acquire: pairs with the holder's release when it lets the lane go; its entry is there. */
    uint64_t a = atomic_load_explicit(&q->lane->active, memory_order_acquire);
    return a == 0 || a > q->epoch;
}

/* Moves the epoch on and waits until no append that announced the old one (or an older one) is
 * still writing: then every record tagged <= the old epoch is in its lane. Returns it. */
static uint64_t close_epoch(baton__wal *wal)
{
    /* seq_cst: the writer's half of the Dekker pair with lane_claim and the appender's second
     * reading of the epoch (wal.c, DESIGN, Epochs). */
    uint64_t e = atomic_fetch_add_explicit(&wal->epoch, 1, memory_order_seq_cst);
    unsigned n = lane_count(wal);
    for (unsigned i = 0; i < n; i++) {
        wal_lane *lane = lane_at(wal, i);
        if (lane == NULL)
            continue;
        lane_quiet_arg q = {lane, e};
        if (!lane_quiet(&q))
            (void)baton__waitpoint_wait(&wal->work, lane_quiet, &q, UINT64_MAX);
    }
    return e;
}

/* The bytes in the lanes that the writer has not merged yet (a hint: the batch reads each tail
 * with acquire). */
static uint64_t lanes_pending_bytes(baton__wal *wal)
{
    uint64_t bytes = 0;
    unsigned n = lane_count(wal);
    for (unsigned i = 0; i < n; i++) {
        wal_lane *lane = lane_at(wal, i);
        if (lane != NULL)
            bytes += atomic_load_explicit(&lane->tail, memory_order_relaxed) - lane->read;
    }
    return bytes;
}

static bool lanes_pending(baton__wal *wal)
{
    return lanes_pending_bytes(wal) != 0;
}

/* ---- merging -------------------------------------------------------------------------------- */

typedef struct lane_cursor {
    wal_lane *lane;
    unsigned index;
    uint64_t pos, tail;
    const wal_entry *entry; /* the next entry to merge, NULL: none <= the epoch */
} lane_cursor;

/* Moves c to its next entry tagged <= epoch, over pads; NULL when there is none yet. */
static const wal_entry *cursor_next(lane_cursor *c, uint64_t epoch)
{
    while (c->pos < c->tail) {
        uint64_t start = wal_lane_start(c->pos);
        const wal_entry *en = wal_lane_entry(c->lane, start);
        if (en->kind == WAL_ENTRY_PAD) {
            c->pos = start + (WAL_LANE_BYTES - (start & (WAL_LANE_BYTES - 1)));
            continue;
        }
        c->pos = start;
        /* Entries come from another core's cache: start on those a few records on. */
        __builtin_prefetch(wal_lane_entry(c->lane, start + 512), 0);
        return en->epoch <= epoch ? en : NULL;
    }
    return NULL;
}

static bool entry_before(const lane_cursor *a, const lane_cursor *b)
{
    if (a->entry->epoch != b->entry->epoch)
        return a->entry->epoch < b->entry->epoch;
    if (a->entry->stamp != b->entry->stamp)
        return a->entry->stamp < b->entry->stamp;
    return a->index < b->index;
}

/* Remembers where a barrier went (seq), for its appender. */
static void note_barrier(baton__wal *wal, uint64_t epoch, uint64_t seq)
{
    unsigned slot = (unsigned)(epoch % WAL_BARRIER_SLOTS);
    atomic_store_explicit(&wal->barrier_seq[slot], seq, memory_order_relaxed);
    /* Release: pairs with the acquire in baton__wal_append_barrier (the seq first). */
    atomic_store_explicit(&wal->barrier_epoch[slot], epoch, memory_order_release);
}

/* Merges the lanes' entries tagged <= epoch into wal->batch, numbering them from
 * wal->next_disk (a barrier's seq is noted as it is placed); returns how many, in *complete
 * whether every such entry is in (false: the batch stopped at WAL_BATCH_MAX or for want of
 * memory) and in *heap whether any pick is a heap copy. Moves each lane's read position past
 * its merged entries. */
static size_t merge(baton__wal *wal, uint64_t epoch, bool *complete, bool *heap)
{
    lane_cursor cur[WAL_MAX_LANES];
    unsigned live = 0, n = lane_count(wal);
    for (unsigned i = 0; i < n; i++) {
        wal_lane *lane = lane_at(wal, i);
        if (lane == NULL)
            continue;
        /* Acquire: pairs with the appender's release store of tail; the entries are written. */
        lane_cursor c = {lane, i, lane->read,
                         atomic_load_explicit(&lane->tail, memory_order_acquire), NULL};
        if ((c.entry = cursor_next(&c, epoch)) != NULL)
            cur[live++] = c;
        else
            lane->read = c.pos;
    }
    size_t count = 0;
    *complete = true;
    *heap = false;
    while (live > 0) {
        if (count == wal->batch_cap &&
            (count == WAL_BATCH_MAX || !baton__grow_array((void **)&wal->batch, &wal->batch_cap,
                                                          count + 1, sizeof *wal->batch))) {
            *complete = false;
            break;
        }
        unsigned best = 0;
        for (unsigned i = 1; i < live; i++)
            if (entry_before(&cur[i], &cur[best]))
                best = i;
        lane_cursor *c = &cur[best];
        const wal_entry *en = c->entry;
        if (en->stamp == 0)
            note_barrier(wal, en->epoch, wal->next_disk + count);
        bool is_heap = en->kind == WAL_ENTRY_HEAP;
        *heap = *heap || is_heap;
        wal->batch[count++] = (wal_pick){wal_entry_payload(en), en->size, is_heap};
        c->pos += wal_entry_span(en);
        if ((c->entry = cursor_next(c, epoch)) == NULL) {
            c->lane->read = c->pos;
            cur[best] = cur[--live];
        }
    }
    for (unsigned i = 0; i < live; i++)
        cur[i].lane->read = cur[i].pos;
    return count;
}

/* Frees the lane space of everything merged so far (the records are in LMDB's pages, or were
 * dropped). */
static void release_lanes(baton__wal *wal)
{
    unsigned n = lane_count(wal);
    for (unsigned i = 0; i < n; i++) {
        wal_lane *lane = lane_at(wal, i);
        /* Release: pairs with the appender's acquire of head; our reads of the entries come
         * first. */
        if (lane != NULL && atomic_load_explicit(&lane->head, memory_order_relaxed) != lane->read)
            atomic_store_explicit(&lane->head, lane->read, memory_order_release);
    }
    baton__waitpoint_notify(&wal->room, true);
}

static void free_heap_records(const wal_pick *picks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (picks[i].heap)
            baton__free((void *)picks[i].payload);
}

/* ---- writing -------------------------------------------------------------------------------- */

/* How many of the picks from i on make the next group, and in *bytes the size of its value
 * (records below the truncation bound are left out). */
static size_t gather(const baton__wal *wal, size_t i, size_t n, uint64_t first, size_t *bytes)
{
    size_t k = 0;
    *bytes = 0;
    while (i + k < n && k < wal->group_max) {
        size_t size = WAL_RECORD_HEADER + (size_t)wal->batch[i + k].size;
        if (k > 0 && *bytes + size > WAL_GROUP_BYTES)
            break;
        if (first + k >= wal->drop_below)
            *bytes += size;
        k++;
    }
    return k;
}

/* Writes picks[0..n) (seqs first..) as one group in one transaction, doubling the map while it
 * is full. bytes: its value's size. */
static int write_group(baton__wal *wal, const wal_pick *picks, size_t n, uint64_t first,
                       size_t bytes)
{
    uint64_t skip = first < wal->drop_below ? wal->drop_below - first : 0;
    if (skip > n)
        skip = n;
    if (bytes == 0)
        return 0;
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
                wal_record_write(out, first + i, picks[i].payload, picks[i].size);
                out += WAL_RECORD_HEADER + (size_t)picks[i].size;
            }
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

/* SYNC mode: syncs the commits so far. ASYNC mode: hands them to the syncer. */
static void commits_done(baton__wal *wal)
{
    if (wal->mode == BATON__WAL_SYNC) {
        (void)baton__wal_sync_to(wal, wal->committed, wal->committed_epoch);
        return;
    }
    /* Release: pairs with the syncer's acquire loads: the commits came before, so the sync it
     * starts after reading these covers them. */
    atomic_store_explicit(&wal->committed_seq_pub, wal->committed, memory_order_release);
    atomic_store_explicit(&wal->committed_epoch_pub, wal->committed_epoch, memory_order_release);
    baton__waitpoint_notify(&wal->sync_work, false);
}

/* One batch: closes an epoch, merges, numbers and writes its records (a failed writer drops
 * them), frees their lane space; in SYNC mode syncs after each group. */
static void write_batch(baton__wal *wal, bool failed)
{
    uint64_t epoch = close_epoch(wal);
    bool complete = true, heap = false;
    uint64_t first = wal->next_disk;
    size_t n = merge(wal, epoch, &complete, &heap);
    for (size_t i = 0; i < n && !failed;) {
        size_t bytes = 0;
        size_t k = gather(wal, i, n, first + i, &bytes);
        int mrc = write_group(wal, wal->batch + i, k, first + i, bytes);
        if (mrc != 0) {
            baton__wal_fail(wal, "writing a group of records", mrc);
            failed = true;
            break;
        }
        i += k;
        wal->committed = first + i - 1;
        if (wal->mode == BATON__WAL_SYNC)
            commits_done(wal);
    }
    if (heap)
        free_heap_records(wal->batch, n);
    release_lanes(wal);
    wal->next_disk = first + n;
    if (complete)
        wal->committed_epoch = epoch;
    /* Release: pairs with the acquire in wal_reached (barrier appenders wait for it); the
     * barrier slots are written before. */
    atomic_store_explicit(&wal->placed_epoch, complete ? epoch : epoch - 1, memory_order_release);
    baton__waitpoint_notify(&wal->progress, true);
    commits_done(wal);
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
    mrc = baton__wal_commit_and_sync(wal, txn, mrc);
    if (mrc != 0) {
        baton__wal_fail(wal, "truncating the log", mrc);
        return;
    }
    wal->drop_below = bound;
    /* Release: pairs with the acquire loads in truncate_before and wal_reached. */
    atomic_store_explicit(&wal->truncated, bound, memory_order_release);
    baton__waitpoint_notify(&wal->progress, true);
}

/* ---- the loop ------------------------------------------------------------------------------- */

static bool epoch_wanted(baton__wal *wal)
{
    return atomic_load_explicit(&wal->want_epoch, memory_order_relaxed) > wal->committed_epoch;
}

static bool writer_has_work(void *arg)
{
    baton__wal *wal = arg;
    return lanes_pending(wal) || epoch_wanted(wal) ||
           atomic_load_explicit(&wal->want_truncate, memory_order_relaxed) > wal->drop_below ||
           atomic_load_explicit(&wal->closing, memory_order_acquire);
}

/* Closing and every lane emptied: appends have stopped (close's contract). */
static bool drained(baton__wal *wal)
{
    /* Acquire: pairs with close's release store; appends that came before it are visible. */
    return atomic_load_explicit(&wal->closing, memory_order_acquire) && !lanes_pending(wal);
}

/* ASYNC: whether to let records gather for WAL_LINGER_NS before closing an epoch. Nobody waits
 * for an ASYNC commit (durability comes with the timed sync), so the writer sleeps a little
 * rather than commit a few hundred records at a time; it sleeps without a waitpoint, so
 * appenders wake nobody. */
static bool should_linger(baton__wal *wal)
{
    return wal->mode == BATON__WAL_ASYNC && !epoch_wanted(wal) &&
           lanes_pending_bytes(wal) < WAL_LINGER_BELOW &&
           !atomic_load_explicit(&wal->closing, memory_order_relaxed) &&
           atomic_load_explicit(&wal->want_truncate, memory_order_relaxed) <= wal->drop_below;
}

void *baton__wal_writer_main(void *arg)
{
    baton__wal *wal = arg;
    bool lingered = false;
    for (;;) {
        bool failed = atomic_load_explicit(&wal->failed, memory_order_relaxed) != 0;
        bool pending = lanes_pending(wal);
        if (pending && !lingered && should_linger(wal)) {
            baton__sleep_ns(WAL_LINGER_NS);
            lingered = true;
            continue;
        }
        lingered = false;
        bool batch = pending || epoch_wanted(wal);
        if (batch) {
            write_batch(wal, failed);
            /* Relaxed: a statistic. One system call per batch (hundreds a second at most). */
            atomic_store_explicit(&wal->writer_cpu_ns, baton__thread_cpu_ns(),
                                  memory_order_relaxed);
        }
        uint64_t want = atomic_load_explicit(&wal->want_truncate, memory_order_relaxed);
        if (want > wal->drop_below && !atomic_load_explicit(&wal->failed, memory_order_relaxed))
            wal_truncate(wal, want);
        if (batch)
            continue;
        if (drained(wal))
            break;
        (void)baton__waitpoint_wait(&wal->work, writer_has_work, wal, UINT64_MAX);
    }
    if (wal->mode == BATON__WAL_SYNC)
        commits_done(wal);
    atomic_store_explicit(&wal->writer_cpu_ns, baton__thread_cpu_ns(), memory_order_relaxed);
    /* Release: pairs with the syncer's acquire load; the last commit is published before. */
    atomic_store_explicit(&wal->writer_done, 1, memory_order_release);
    baton__waitpoint_notify(&wal->sync_work, true);
    baton__waitpoint_notify(&wal->sync_timer, true);
    return NULL;
}
