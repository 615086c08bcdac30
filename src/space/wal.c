/*
 * wal.c — the write-ahead log on LMDB: appenders, the writer thread, replay and the checks that
 * keep a damaged file away from LMDB.
 *
 * DESIGN
 *  - See wal.h for the format. The writer owns the environment's write side, the reorder set
 *    (pending) and every counter except next_seq (appenders), durable, truncated and failed
 *    (written by the writer, read by anyone, each published with a release store and waited on
 *    through the `progress` waitpoint).
 *  - A control node (seq 0) asks the writer to truncate; its sender waits on `truncated`. The
 *    writer frees every node it pops.
 *  - The writer's failure is sticky: it stores its message in failed_msg, then sets failed
 *    (release); every later append, wait and close repeats the message as BATON_EIO.
 */
#define _POSIX_C_SOURCE 200809L

#include "space/wal.h"

#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "baton/queue.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/os.h"
#include "core/waitpoint.h"

#define WAL_CHECKSUM_SIZE 8

typedef struct wal_node {
    baton_mpsc_node link;
    uint64_t seq;   /* 0: a truncation request */
    uint64_t bound; /* truncation: delete below this */
    size_t size;
    unsigned char data[];
} wal_node;

struct baton__wal {
    baton__wal_mode mode;
    size_t group_max; /* the most records per transaction */
    baton_mpsc_linked *queue;
    baton__thread *writer;
    MDB_env *env;
    MDB_dbi log_dbi;
    MDB_dbi meta_dbi;
    size_t map_size;

    /* The writer's own state. */
    wal_node **batch;   /* BATON__WAL_BATCH popped nodes */
    wal_node **pending; /* records waiting for their turn, sorted by seq when committing */
    size_t n_pending;
    size_t cap_pending;
    uint64_t next_write; /* the next seq to commit */
    uint64_t committed;  /* the last committed seq */
    uint64_t synced;     /* the last synced seq */
    uint64_t drop_below; /* the truncation bound applied */
    uint64_t want_truncate;

    BATON_CACHELINE_ALIGNED _Atomic uint64_t next_seq; /* appenders' fetch_add */
    BATON_CACHELINE_ALIGNED _Atomic uint64_t durable;
    _Atomic uint64_t truncated;
    _Atomic int failed;
    char failed_msg[256];
    baton__waitpoint progress; /* durable, truncated, failed moved */
};

static void wal_put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static uint64_t wal_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void wal_put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static uint64_t wal_get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t wal_checksum(uint64_t seq, const void *data, size_t size)
{
    return baton_hash64(data, size, seq);
}

static int wal_mdb_error(const char *who, const char *what, int mrc)
{
    if (mrc == ENOMEM)
        return baton__error(BATON_ENOMEM, "%s: %s: %s", who, what, mdb_strerror(mrc));
    if (mrc == EBUSY || mrc == EAGAIN)
        return baton__error(BATON_EBUSY, "%s: %s: %s", who, what, mdb_strerror(mrc));
    return baton__error(BATON_EIO, "%s: %s: %s", who, what, mdb_strerror(mrc));
}

/* Opens an environment on dir (already checked) with the two databases. */
static int wal_env_open(const char *who, const char *dir, int64_t file_size, bool read_only,
                        MDB_env **out_env, size_t *out_map)
{
    MDB_env *env = NULL;
    int mrc = mdb_env_create(&env);
    if (mrc != 0)
        return wal_mdb_error(who, "mdb_env_create", mrc);
    size_t map = BATON__WAL_MAP_SIZE;
    while ((int64_t)map < file_size && map < ((size_t)1 << 46))
        map <<= 1;
    mrc = mdb_env_set_maxdbs(env, 2);
    if (mrc == 0)
        mrc = mdb_env_set_mapsize(env, map);
    if (mrc == 0)
        mrc = mdb_env_open(env, dir, (read_only ? MDB_RDONLY : 0) | MDB_NOSYNC | MDB_NOTLS,
                           0644);
    if (mrc != 0) {
        mdb_env_close(env);
        if (mrc == MDB_INVALID || mrc == MDB_VERSION_MISMATCH || mrc == MDB_CORRUPTED)
            return baton__error(BATON_EIO, "%s: %s is not an LMDB environment (or is damaged): "
                                "%s", who, dir, mdb_strerror(mrc));
        return wal_mdb_error(who, dir, mrc);
    }
    MDB_envinfo info;
    mdb_env_info(env, &info);
    *out_map = info.me_mapsize;
    *out_env = env;
    return 0;
}

/* ---- open ----------------------------------------------------------------------------------- */

static void *wal_writer_main(void *arg);

static int wal_open_env(baton__wal *wal, const char *dir)
{
    const char *who = "baton__wal_open";
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return baton__error(BATON_EIO, "%s: cannot create %s: %s", who, dir, strerror(errno));
    int64_t file_size = 0;
    int rc = baton__wal_check_file(who, dir, &file_size);
    if (rc != 0 && rc != BATON_ENOTFOUND)
        return rc;
    rc = wal_env_open(who, dir, file_size, false, &wal->env, &wal->map_size);
    if (rc != 0)
        return rc;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint64_t last = 0, bound = 0;
    int mrc = mdb_txn_begin(wal->env, NULL, 0, &txn);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "log", MDB_CREATE, &wal->log_dbi);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &wal->meta_dbi);
    if (mrc == 0)
        mrc = mdb_cursor_open(txn, wal->log_dbi, &cur);
    if (mrc == 0) {
        MDB_val k, v;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        if (mrc == 0) {
            if (k.mv_size != 8) {
                mdb_cursor_close(cur);
                mdb_txn_abort(txn);
                return baton__error(BATON_EIO, "%s: %s: the last key is %zu bytes, not 8 "
                                    "(damaged)", who, dir, k.mv_size);
            }
            last = wal_get_be64(k.mv_data);
        } else if (mrc == MDB_NOTFOUND) {
            mrc = 0;
        }
        mdb_cursor_close(cur);
    }
    if (mrc == 0) {
        MDB_val k = {8, "truncate"}, v;
        mrc = mdb_get(txn, wal->meta_dbi, &k, &v);
        if (mrc == 0 && v.mv_size == 8)
            bound = wal_get_be64(v.mv_data);
        else if (mrc == MDB_NOTFOUND)
            mrc = 0;
    }
    if (mrc == 0)
        mrc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (mrc == 0)
        mrc = mdb_env_sync(wal->env, 1);
    if (mrc != 0) {
        if (mrc == MDB_INCOMPATIBLE)
            return baton__error(BATON_EIO, "%s: %s is an LMDB environment but not a log "
                                "(its databases are not baton's)", who, dir);
        return wal_mdb_error(who, dir, mrc);
    }
    uint64_t next = last + 1 > bound ? last + 1 : bound;
    if (next == 0)
        next = 1;
    atomic_init(&wal->next_seq, next);
    atomic_init(&wal->durable, next - 1);
    atomic_init(&wal->truncated, bound);
    wal->next_write = next;
    wal->committed = next - 1;
    wal->synced = next - 1;
    wal->drop_below = bound;
    wal->want_truncate = bound;
    return 0;
}

int baton__wal_open(const char *dir, baton__wal_mode mode, baton__wal **out)
{
    return baton__wal_open_group(dir, mode, BATON__WAL_BATCH, out);
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
    atomic_init(&wal->failed, 0);
    baton__waitpoint_init(&wal->progress);
    if (mode == BATON__WAL_NONE) {
        *out = wal;
        return 0;
    }
    int rc = wal_open_env(wal, dir);
    if (rc == 0) {
        wal->batch = baton__malloc(BATON__WAL_BATCH * sizeof *wal->batch);
        if (wal->batch == NULL)
            rc = baton__error(BATON_ENOMEM, "%s: no memory", who);
    }
    if (rc == 0)
        rc = baton_mpsc_linked_create(&wal->queue);
    if (rc == 0)
        rc = baton__thread_start(&wal->writer, wal_writer_main, wal, "baton-wal");
    if (rc != 0) {
        baton_mpsc_linked_destroy(wal->queue);
        baton__free(wal->batch);
        if (wal->env != NULL)
            mdb_env_close(wal->env);
        baton__free(wal);
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
    if (size > SIZE_MAX - sizeof(wal_node))
        return baton__error(BATON_ERANGE, "%s: record of %zu bytes is too large", who, size);
    wal_node *node = baton__malloc(sizeof *node + size);
    if (node == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory for a record of %zu bytes", who, size);
    atomic_init(&node->link.next, NULL);
    node->size = size;
    node->bound = 0;
    if (size > 0)
        memcpy(node->data, record, size);
    /* Relaxed: the number only has to be unique; the push publishes the node. */
    node->seq = atomic_fetch_add_explicit(&wal->next_seq, 1, memory_order_relaxed);
    uint64_t s = node->seq;
    int rc = baton_mpsc_linked_push(wal->queue, &node->link);
    if (rc != 0) {
        baton__free(node);
        return baton__error(rc, "%s: the log is closing", who);
    }
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
    wal_node *node = baton__malloc(sizeof *node);
    if (node == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory", who);
    atomic_init(&node->link.next, NULL);
    node->seq = 0;
    node->bound = seq;
    node->size = 0;
    int rc = baton_mpsc_linked_push(wal->queue, &node->link);
    if (rc != 0) {
        baton__free(node);
        return baton__error(rc, "%s: the log is closing", who);
    }
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

static int wal_cmp_seq(const void *a, const void *b)
{
    uint64_t x = (*(wal_node *const *)a)->seq, y = (*(wal_node *const *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Writes nodes[0..n) in one transaction, doubling the map while it is full. */
static int wal_write_group(baton__wal *wal, wal_node **nodes, size_t n)
{
    for (;;) {
        MDB_txn *txn = NULL;
        int mrc = mdb_txn_begin(wal->env, NULL, 0, &txn);
        if (mrc != 0)
            return mrc;
        for (size_t i = 0; i < n && mrc == 0; i++) {
            wal_node *node = nodes[i];
            if (node->seq < wal->drop_below)
                continue;
            unsigned char key[8];
            wal_put_be64(key, node->seq);
            MDB_val k = {8, key}, v = {WAL_CHECKSUM_SIZE + node->size, NULL};
            mrc = mdb_put(txn, wal->log_dbi, &k, &v, MDB_APPEND | MDB_RESERVE);
            if (mrc == 0) {
                unsigned char *out = v.mv_data;
                wal_put_le64(out, wal_checksum(node->seq, node->data, node->size));
                if (node->size > 0)
                    memcpy(out + WAL_CHECKSUM_SIZE, node->data, node->size);
            }
        }
        if (mrc == 0)
            return mdb_txn_commit(txn);
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

static void wal_sync(baton__wal *wal);

/* Commits the contiguous run of pending records (everything when flush_all), group_max records
 * per transaction; in SYNC mode each transaction is synced before the next. */
static void wal_commit_pending(baton__wal *wal, bool flush_all)
{
    if (wal->n_pending == 0)
        return;
    /* Appenders mostly push in number order: sort only when they did not. */
    for (size_t i = 1; i < wal->n_pending; i++) {
        if (wal->pending[i - 1]->seq > wal->pending[i]->seq) {
            qsort(wal->pending, wal->n_pending, sizeof *wal->pending, wal_cmp_seq);
            break;
        }
    }
    size_t n = 0;
    uint64_t expect = wal->next_write;
    while (n < wal->n_pending && (flush_all || wal->pending[n]->seq == expect)) {
        expect = wal->pending[n]->seq + 1;
        n++;
    }
    if (n == 0)
        return;
    for (size_t done = 0; done < n;) {
        size_t group = n - done < wal->group_max ? n - done : wal->group_max;
        int mrc = wal_write_group(wal, wal->pending + done, group);
        if (mrc != 0) {
            wal_fail(wal, "writing a group of records", mrc);
            n = done;
            break;
        }
        uint64_t last = wal->pending[done + group - 1]->seq;
        for (size_t i = done; i < done + group; i++)
            baton__free(wal->pending[i]);
        done += group;
        wal->next_write = last + 1;
        wal->committed = last;
        if (done < n && wal->mode == BATON__WAL_SYNC)
            wal_sync(wal);
    }
    memmove(wal->pending, wal->pending + n, (wal->n_pending - n) * sizeof *wal->pending);
    wal->n_pending -= n;
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

static void wal_truncate(baton__wal *wal)
{
    uint64_t bound = wal->want_truncate;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int mrc = mdb_txn_begin(wal->env, NULL, 0, &txn);
    if (mrc == 0)
        mrc = mdb_cursor_open(txn, wal->log_dbi, &cur);
    while (mrc == 0) {
        MDB_val k, v;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (mrc == MDB_NOTFOUND) {
            mrc = 0;
            break;
        }
        if (mrc == 0 && (k.mv_size != 8 || wal_get_be64(k.mv_data) >= bound))
            break;
        if (mrc == 0)
            mrc = mdb_cursor_del(cur, 0);
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (mrc == 0) {
        unsigned char value[8];
        wal_put_be64(value, bound);
        MDB_val k = {8, "truncate"}, v = {8, value};
        mrc = mdb_put(txn, wal->meta_dbi, &k, &v, 0);
    }
    if (mrc == 0)
        mrc = mdb_txn_commit(txn);
    else if (txn != NULL)
        mdb_txn_abort(txn);
    if (mrc == 0)
        mrc = mdb_env_sync(wal->env, 1);
    if (mrc != 0) {
        wal_fail(wal, "truncating the log", mrc);
        return;
    }
    wal->drop_below = bound;
    /* Release: pairs with the acquire loads in truncate_before and wal_reached. */
    atomic_store_explicit(&wal->truncated, bound, memory_order_release);
    baton__waitpoint_notify(&wal->progress, true);
}

static void *wal_writer_main(void *arg)
{
    baton__wal *wal = arg;
    uint64_t next_sync = baton__monotonic_ns() + BATON__WAL_SYNC_INTERVAL_NS;
    bool eof = false;
    while (!eof) {
        bool failed = atomic_load_explicit(&wal->failed, memory_order_relaxed) != 0;
        uint64_t timeout = BATON_WAIT_FOREVER;
        if (!failed && wal->mode == BATON__WAL_ASYNC && wal->committed > wal->synced) {
            uint64_t now = baton__monotonic_ns();
            timeout = next_sync > now ? next_sync - now : 0;
        }
        size_t n = 0;
        baton_mpsc_node *first = NULL;
        int rc = baton_mpsc_linked_pop(wal->queue, &first, timeout);
        if (rc == 0) {
            wal->batch[n++] = (wal_node *)first;
            size_t more = 0;
            if (baton_mpsc_linked_pop_n(wal->queue, (baton_mpsc_node **)(wal->batch + 1),
                                        BATON__WAL_BATCH - 1, &more) == 0)
                n += more;
        } else if (rc == BATON_EEOF) {
            eof = true;
        }
        for (size_t i = 0; i < n; i++) {
            wal_node *node = wal->batch[i];
            if (node->seq == 0) {
                if (node->bound > wal->want_truncate)
                    wal->want_truncate = node->bound;
                baton__free(node);
            } else if (failed || !baton__grow_array((void **)&wal->pending, &wal->cap_pending,
                                                    wal->n_pending + 1, sizeof *wal->pending)) {
                if (!failed)
                    wal_fail(wal, "the writer's reorder set", ENOMEM);
                failed = true;
                baton__free(node);
            } else {
                wal->pending[wal->n_pending++] = node;
            }
        }
        if (failed)
            continue;
        wal_commit_pending(wal, eof);
        if (wal->mode == BATON__WAL_SYNC || eof) {
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
        if (!atomic_load_explicit(&wal->failed, memory_order_relaxed) &&
            wal->want_truncate > wal->drop_below)
            wal_truncate(wal);
    }
    for (size_t i = 0; i < wal->n_pending; i++)
        baton__free(wal->pending[i]);
    wal->n_pending = 0;
    return NULL;
}

int baton__wal_close(baton__wal *wal)
{
    if (wal == NULL)
        return 0;
    int rc = 0;
    if (wal->mode != BATON__WAL_NONE) {
        baton_mpsc_linked_close(wal->queue);
        baton__thread_join(wal->writer);
        /* Acquire: pairs with wal_fail's release store (the join orders it too). */
        if (atomic_load_explicit(&wal->failed, memory_order_acquire))
            rc = wal_failed_error(wal, "baton__wal_close");
        mdb_env_close(wal->env);
        baton_mpsc_linked_destroy(wal->queue);
        baton__free(wal->pending);
        baton__free(wal->batch);
    }
    baton__free(wal);
    return rc;
}

/* ---- replay --------------------------------------------------------------------------------- */

int baton__wal_replay(const char *dir, int (*fn)(void *ctx, uint64_t seq, const void *data,
                                                 size_t size),
                      void *ctx, uint64_t *last_good)
{
    const char *who = "baton__wal_replay";
    if (last_good != NULL)
        *last_good = 0;
    if (dir == NULL || fn == NULL)
        return baton__error(BATON_EINVAL, "%s: %s is NULL", who, dir == NULL ? "dir" : "fn");
    int64_t file_size = 0;
    int rc = baton__wal_check_file(who, dir, &file_size);
    if (rc != 0)
        return rc;
    MDB_env *env = NULL;
    size_t map = 0;
    rc = wal_env_open(who, dir, file_size, true, &env, &map);
    if (rc != 0)
        return rc;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    int mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (mrc != 0) {
        rc = wal_mdb_error(who, "mdb_txn_begin", mrc);
        goto out;
    }
    mrc = mdb_dbi_open(txn, "log", 0, &dbi);
    if (mrc == MDB_NOTFOUND) {
        /* An environment with nothing in it: a crash between its creation and the log's first
         * commit. There is nothing to replay, as if there were no file. */
        MDB_dbi main_dbi;
        MDB_stat st;
        if (mdb_dbi_open(txn, NULL, 0, &main_dbi) == 0 && mdb_stat(txn, main_dbi, &st) == 0 &&
            st.ms_entries == 0) {
            rc = baton__error(BATON_ENOTFOUND, "%s: %s holds an empty environment", who, dir);
            goto out;
        }
    }
    if (mrc == MDB_NOTFOUND || mrc == MDB_INCOMPATIBLE) {
        rc = baton__error(BATON_EIO, "%s: %s is an LMDB environment but holds no log", who, dir);
        goto out;
    }
    if (mrc == 0)
        mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc != 0) {
        rc = wal_mdb_error(who, dir, mrc);
        goto out;
    }
    uint64_t prev = 0, count = 0;
    MDB_val k, v;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            rc = baton__error(BATON_EIO, "%s: %s: damaged record after seq %llu: key of %zu "
                              "bytes", who, dir, (unsigned long long)prev, k.mv_size);
            goto out;
        }
        uint64_t seq = wal_get_be64(k.mv_data);
        if (seq == 0 || seq <= prev || (prev != 0 && seq != prev + 1)) {
            rc = baton__error(BATON_EIO, "%s: %s: damaged record: seq %llu follows seq %llu",
                              who, dir, (unsigned long long)seq, (unsigned long long)prev);
            goto out;
        }
        if (v.mv_size < WAL_CHECKSUM_SIZE) {
            rc = baton__error(BATON_EIO, "%s: %s: damaged record seq %llu: %zu bytes, shorter "
                              "than its checksum", who, dir, (unsigned long long)seq, v.mv_size);
            goto out;
        }
        const unsigned char *data = v.mv_data;
        size_t size = v.mv_size - WAL_CHECKSUM_SIZE;
        if (wal_get_le(data, 8) != wal_checksum(seq, data + WAL_CHECKSUM_SIZE, size)) {
            rc = baton__error(BATON_EIO, "%s: %s: damaged record seq %llu: checksum mismatch",
                              who, dir, (unsigned long long)seq);
            goto out;
        }
        rc = fn(ctx, seq, data + WAL_CHECKSUM_SIZE, size);
        if (rc != 0)
            goto out;
        count++;
        prev = seq;
        if (last_good != NULL)
            *last_good = seq;
    }
    if (mrc != MDB_NOTFOUND) {
        rc = baton__error(BATON_EIO, "%s: %s: reading after seq %llu: %s", who, dir,
                          (unsigned long long)prev, mdb_strerror(mrc));
        goto out;
    }
    /* A damaged page pointer can lead the cursor to a valid but wrong page and skip records;
     * the count the database keeps catches it. */
    MDB_stat st;
    mrc = mdb_stat(txn, dbi, &st);
    if (mrc != 0 || st.ms_entries != count)
        rc = baton__error(BATON_EIO, "%s: %s: damaged log: %llu records found up to seq %llu, "
                          "but the log holds %llu", who, dir, (unsigned long long)count,
                          (unsigned long long)prev,
                          mrc != 0 ? 0ull : (unsigned long long)st.ms_entries);
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}
