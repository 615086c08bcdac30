/*
 * wal_syncer.c — making commits durable: the sync step both modes share, the syncer thread that
 * runs it in ASYNC mode, the commit-and-sync of the log's own bookkeeping, and the log's sticky
 * failure. wal.c and wal_writer.c call into this file, never the other way: the writer is above
 * the sync step it uses and the failure it reports.
 *
 * DESIGN
 *  - Why a thread of its own. A sync waits for the disk: on a machine's disk, for a journal
 *    commit and a flush, often several milliseconds. While the writer itself synced, it could
 *    neither commit nor free lane space, so in ASYNC mode a burst of appends filled the lanes
 *    and the appending threads stopped until the sync returned (measured on a 2-core machine:
 *    up to 40 ms per 90 ms run spent in room waits, a fifth of its cores idle). Now the writer
 *    only commits, and the syncer waits for the disk in parallel: commits and syncs form a
 *    pipeline, as in the group commit of database logs (PostgreSQL's walwriter, InnoDB's log
 *    flusher).
 *  - What a sync covers. After each batch the writer publishes the last committed seq and the
 *    last committed epoch (release), once mdb_txn_commit has written them to the file. The
 *    syncer reads both (acquire) before it calls fdatasync, which covers every write made to the
 *    file before the call; once it returns, those two values are durable and it publishes them
 *    as durable and durable_epoch (release) and wakes progress.
 *  - ASYNC mode only. The syncer syncs at most once every BATON__WAL_SYNC_INTERVAL_NS; between
 *    two syncs it sleeps on sync_timer, which only the writer's end wakes, so that the writer's
 *    notifications after each batch find no waiter and cost a load. In SYNC mode a waiter waits
 *    for each group's sync anyway, and one sync per transaction is what log_group_max = 1 asks
 *    for (the baseline a group commit is measured against): there the writer runs the same sync
 *    step itself after each group, and no syncer thread is started.
 *  - Concurrent with the writer's transactions: mdb_env_sync touches no transaction state; it
 *    calls fdatasync on the environment's file (LMDB's own mdb_env_sync0).
 *  - The end: the writer, having committed its last group, sets writer_done and wakes the
 *    syncer, which syncs what is left and returns. A failure (from either thread) is sticky:
 *    the syncer stops moving the marks and returns; close joins it after the writer.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "core/os.h"
#include "core/waitpoint.h"
#include "space/wal_impl.h"

int baton__wal_commit_and_sync(baton__wal *wal, MDB_txn *txn, int mrc)
{
    if (mrc != 0) {
        if (txn != NULL)
            mdb_txn_abort(txn);
        return mrc;
    }
    mrc = mdb_txn_commit(txn);
    return mrc == 0 ? mdb_env_sync(wal->env, 1) : mrc;
}

void baton__wal_fail(baton__wal *wal, const char *what, int mrc)
{
    /* The writer and the syncer can fail at the same moment: the first to take `failing`
     * writes the message. Relaxed: failed's release below publishes it. */
    if (atomic_exchange_explicit(&wal->failing, 1, memory_order_relaxed))
        return;
    snprintf(wal->failed_msg, sizeof wal->failed_msg, "%s: %s", what, mdb_strerror(mrc));
    /* Release: pairs with the acquire loads in append, wal_reached and close: failed_msg is
     * written before. */
    atomic_store_explicit(&wal->failed, 1, memory_order_release);
    baton__waitpoint_notify(&wal->progress, true);
    baton__waitpoint_notify(&wal->room, true);
    baton__waitpoint_notify(&wal->sync_work, true);
}

static bool writer_done(baton__wal *wal)
{
    /* Acquire: pairs with the writer's release store; its last commit is published before. */
    return atomic_load_explicit(&wal->writer_done, memory_order_acquire) != 0;
}

/* Something committed is not synced yet, the writer is done, or the log failed. */
static bool sync_due(void *arg)
{
    baton__wal *wal = arg;
    /* Acquire: pairs with the writer's release stores of the published marks. */
    return atomic_load_explicit(&wal->committed_epoch_pub, memory_order_acquire) !=
               wal->synced_epoch ||
           atomic_load_explicit(&wal->committed_seq_pub, memory_order_acquire) !=
               wal->synced_seq ||
           writer_done(wal) || atomic_load_explicit(&wal->failed, memory_order_relaxed);
}

static bool timer_cut_short(void *arg)
{
    return writer_done(arg);
}

bool baton__wal_sync_to(baton__wal *wal, uint64_t seq, uint64_t epoch)
{
    if (atomic_load_explicit(&wal->failed, memory_order_relaxed))
        return false;
    if (seq != wal->synced_seq) {
        int mrc = mdb_env_sync(wal->env, 1);
        if (mrc != 0) {
            baton__wal_fail(wal, "mdb_env_sync", mrc);
            return false;
        }
        wal->synced_seq = seq;
        /* Release: pairs with the acquire loads in baton__wal_durable_seq. */
        atomic_store_explicit(&wal->durable, seq, memory_order_release);
    }
    if (epoch != wal->synced_epoch) {
        wal->synced_epoch = epoch;
        /* Release: pairs with the acquire loads in baton__wal_durable and wal_reached. */
        atomic_store_explicit(&wal->durable_epoch, epoch, memory_order_release);
    }
    baton__waitpoint_notify(&wal->progress, true);
    return true;
}

void *baton__wal_syncer_main(void *arg)
{
    baton__wal *wal = arg;
    uint64_t next_sync = 0;
    for (;;) {
        /* The syncer is never on the appenders' path: when it sleeps, it sleeps at once rather
         * than take time slices from the threads it waits for. */
        (void)baton__waitpoint_wait_yielding(&wal->sync_work, sync_due, wal, UINT64_MAX, 0);
        bool done = writer_done(wal);
        if (!done && baton__monotonic_ns() < next_sync) {
            (void)baton__waitpoint_wait_yielding(&wal->sync_timer, timer_cut_short, wal,
                                                 next_sync, 0);
            done = writer_done(wal);
        }
        /* Acquire: pairs with the writer's release stores: both were committed before they were
         * published, so the fdatasync that follows covers them. */
        uint64_t epoch = atomic_load_explicit(&wal->committed_epoch_pub, memory_order_acquire);
        uint64_t seq = atomic_load_explicit(&wal->committed_seq_pub, memory_order_acquire);
        bool ok = baton__wal_sync_to(wal, seq, epoch);
        /* Relaxed: a statistic. One system call per sync (a hundred a second at most). */
        atomic_store_explicit(&wal->syncer_cpu_ns, baton__thread_cpu_ns(), memory_order_relaxed);
        next_sync = baton__monotonic_ns() + BATON__WAL_SYNC_INTERVAL_NS;
        /* done was read before the sync began: the writer's last commit is covered. */
        if (done || !ok) /* after a failure the marks stay where they are */
            break;
    }
    return NULL;
}
