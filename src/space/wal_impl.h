/*
 * wal_impl.h — the write-ahead log's shared state, between its appenders (wal.c), its writer
 * thread (wal_writer.c) and its sync step (wal_syncer.c); the functions they share, in one
 * section per file that defines them. Internal to src/space/; the design is in wal.c's DESIGN
 * block.
 */
#ifndef BATON_SPACE_WAL_IMPL_H
#define BATON_SPACE_WAL_IMPL_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "baton/core.h"
#include "core/os.h"
#include "core/waitpoint.h"
#include "space/wal.h"

/* A lane's bytes: a power of two. A lane is used by one appending thread at a time. */
#define WAL_LANE_BYTES ((uint64_t)1 << 22)
/* The most lanes (so the most threads appending at the same moment; more wait for a lane). */
#define WAL_MAX_LANES 256u
/* A record longer than this is copied to the heap and its lane entry holds the pointer. */
#define WAL_LANE_INLINE_MAX (WAL_LANE_BYTES / 8)
/* The most bytes of records in one group (a record longer than this is a group of its own). */
#define WAL_GROUP_BYTES ((size_t)8 << 20)
/* ASYNC: how long the writer lets records gather before it closes an epoch. */
#define WAL_LINGER_NS UINT64_C(1000000)
/* ASYNC: the writer lingers only while fewer bytes than this wait in the lanes. */
#define WAL_LINGER_BELOW ((uint64_t)256 << 10)
/* Barriers the writer remembers (epoch -> seq) for their appenders to look up. */
#define WAL_BARRIER_SLOTS 8u

/* A lane entry: this header, then the payload (kind INLINE) or a pointer to it (HEAP), padded to
 * 8 bytes. An entry never wraps: where fewer than WAL_ENTRY_HEADER bytes are left before the end
 * of the lane's bytes, both sides skip to the start; where more are left but not enough for the
 * entry, the appender writes a PAD entry that covers them. */
typedef struct wal_entry {
    uint32_t size; /* the record's length */
    uint32_t kind; /* wal_entry_kind */
    uint64_t epoch;
    uint64_t stamp; /* 0: a barrier, first in its epoch */
} wal_entry;

enum { WAL_ENTRY_INLINE = 0, WAL_ENTRY_HEAP = 1, WAL_ENTRY_PAD = 2 };

#define WAL_ENTRY_HEADER ((uint64_t)sizeof(wal_entry))

typedef struct wal_lane {
    /* The holder's line, which the writer reads once per epoch. active: 0 while no thread holds
     * the lane, else the epoch its holder announced (<= the epoch its record gets). The rest is
     * the holders' alone, handed on by the claim: */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t active;
    uint64_t clock;     /* the Lamport clock: the last stamp given */
    uint64_t end;       /* bytes written: tail's value, kept here so that no append reads tail */
    uint64_t count;     /* records written: appended's value */
    uint64_t head_seen; /* the last look at head */
    /* Published for the writer, which reads it often: stores only, which do not stall the
     * holder even when the writer holds the line. */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t tail; /* bytes published (monotone; position % size) */
    _Atomic uint64_t appended;                     /* records published (statistics, next_seq) */
    /* The writer's line. head: bytes freed; read: bytes merged (writer only). */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t head;
    uint64_t read;
    unsigned char *bytes;
} wal_lane;

/* One record of a batch, in merge order: what the writing needs of its entry, read once by the
 * merge, so that sizing, writing and freeing a batch do not walk its lane entries again (a
 * batch of one linger holds megabytes of them, out of cache by the next pass). */
typedef struct wal_pick {
    const unsigned char *payload; /* in the lane, or the heap copy when heap */
    uint32_t size;
    uint32_t heap; /* 1: payload is a heap copy the writer frees */
} wal_pick;

struct baton__wal {
    baton__wal_mode mode;
    size_t group_max; /* the most records per transaction */
    baton__thread *writer;
    baton__thread *syncer;
    MDB_env *env;
    MDB_dbi log_dbi;
    MDB_dbi meta_dbi;
    size_t map_size;
    uint64_t base; /* the seq of the first record appended since open */

    /* The writer's own state. */
    uint64_t next_disk;       /* the seq the next record placed gets */
    uint64_t committed;       /* the last committed seq */
    uint64_t committed_epoch; /* every epoch <= it is committed */
    /* The syncing thread's own state (the writer's in SYNC mode, the syncer's in ASYNC). */
    uint64_t synced_seq;   /* the last seq synced */
    uint64_t synced_epoch; /* the last epoch synced */
    uint64_t drop_below;      /* the truncation bound applied */
    wal_pick *batch;
    size_t batch_cap;

    /* The epoch appenders tag records with; the writer closes it by moving it on. */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t epoch;
    BATON_CACHELINE_ALIGNED _Atomic uint64_t durable_epoch;
    _Atomic uint64_t durable; /* the durable seq */
    _Atomic uint64_t truncated;
    _Atomic uint64_t want_truncate; /* the largest bound asked for */
    _Atomic uint64_t want_epoch;    /* the largest epoch a waiter wants durable */
    _Atomic uint64_t placed_epoch;  /* every epoch <= it has its seqs */
    /* The writer's committed and committed_epoch, published for the syncer after each group
     * and batch; the syncer's answer is durable and durable_epoch. */
    _Atomic uint64_t committed_seq_pub;
    _Atomic uint64_t committed_epoch_pub;
    _Atomic int writer_done; /* the writer has committed its last group and returned */
    _Atomic uint64_t barrier_epoch[WAL_BARRIER_SLOTS];
    _Atomic uint64_t barrier_seq[WAL_BARRIER_SLOTS];
    _Atomic uint64_t room_waits; /* appends that found their lane full */
    _Atomic uint64_t writer_cpu_ns; /* the writer thread's CPU time, as of its last batch */
    _Atomic uint64_t syncer_cpu_ns; /* the syncer thread's, as of its last sync */
    _Atomic uint64_t none_count; /* NONE mode: appends */
    _Atomic int closing;
    _Atomic int failing; /* taken by the first thread to fail, which then writes failed_msg */
    _Atomic int failed;
    char failed_msg[256];

    _Atomic unsigned n_lanes;
    _Atomic(wal_lane *) lanes[WAL_MAX_LANES];
    uint64_t id; /* tells a thread's cached lane apart from another log's */

    baton__waitpoint work;       /* the writer waits here */
    baton__waitpoint sync_work;  /* the syncer waits here for a commit to sync */
    baton__waitpoint sync_timer; /* ASYNC: the syncer lets the interval pass here */
    baton__waitpoint room;       /* appenders wait here for lane space */
    baton__waitpoint progress;   /* durable, truncated, placed, failed moved */
};

/* The position where an entry written at pos really starts (skipping a lane end too short for a
 * header). */
static inline uint64_t wal_lane_start(uint64_t pos)
{
    uint64_t left = WAL_LANE_BYTES - (pos & (WAL_LANE_BYTES - 1));
    return left < WAL_ENTRY_HEADER ? pos + left : pos;
}

static inline wal_entry *wal_lane_entry(const wal_lane *lane, uint64_t pos)
{
    return (wal_entry *)(void *)(lane->bytes + (pos & (WAL_LANE_BYTES - 1)));
}

/* An entry's bytes in the lane, header included. */
static inline uint64_t wal_entry_span(const wal_entry *e)
{
    uint64_t body = e->kind == WAL_ENTRY_HEAP ? sizeof(void *) : e->size;
    return WAL_ENTRY_HEADER + ((body + 7) & ~(uint64_t)7);
}

static inline const unsigned char *wal_entry_payload(const wal_entry *e)
{
    const unsigned char *body = (const unsigned char *)(e + 1);
    if (e->kind == WAL_ENTRY_HEAP) {
        const unsigned char *heap;
        memcpy(&heap, body, sizeof heap);
        return heap;
    }
    return body;
}

/* ---- wal_writer.c ---- */

/* The writer thread (wal.c starts it at open and joins it at close). */
void *baton__wal_writer_main(void *arg);

/* ---- wal_syncer.c ---- */

/* The syncer thread (ASYNC mode). */
void *baton__wal_syncer_main(void *arg);
/* The sync step: syncs when seq (the last committed seq) is not synced yet, then moves the
 * durable marks to seq and epoch (the last committed epoch). Only the thread that syncs in the
 * mode calls it. False once the log failed. */
bool baton__wal_sync_to(baton__wal *wal, uint64_t seq, uint64_t epoch);
/* The log's sticky failure, from any of its threads: the first caller's what and mrc make the
 * message; every waiter is woken. */
void baton__wal_fail(baton__wal *wal, const char *what, int mrc);
/* Ends a transaction of the log's own bookkeeping (open, truncation): commits and syncs it when
 * mrc is 0, else aborts it (txn may be NULL when it never began); returns the first error. */
int baton__wal_commit_and_sync(baton__wal *wal, MDB_txn *txn, int mrc);

#endif /* BATON_SPACE_WAL_IMPL_H */
