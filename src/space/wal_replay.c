/*
 * wal_replay.c — reading a log back (baton__wal_replay), and the environment setup that the
 * writer's open shares with it. The format is in wal_format.h.
 *
 * Replay trusts nothing it reads: baton__wal_check_file has walked the file's pages before LMDB
 * maps it; here every key must be 8 bytes and continue the numbering of the group before it,
 * every record must fit its group and match its checksum, and the number of groups found must be
 * the number LMDB counts (a damaged but well-formed page pointer can skip some).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>

#include "core/error.h"
#include "space/wal.h"
#include "space/wal_format.h"

int baton__wal_mdb_error(const char *who, const char *what, int mrc)
{
    if (mrc == ENOMEM)
        return baton__error(BATON_ENOMEM, "%s: %s: %s", who, what, mdb_strerror(mrc));
    if (mrc == EBUSY || mrc == EAGAIN)
        return baton__error(BATON_EBUSY, "%s: %s: %s", who, what, mdb_strerror(mrc));
    return baton__error(BATON_EIO, "%s: %s: %s", who, what, mdb_strerror(mrc));
}

int baton__wal_env_open(const char *who, const char *dir, int64_t file_size, bool read_only,
                        MDB_env **out_env, size_t *out_map)
{
    MDB_env *env = NULL;
    int mrc = mdb_env_create(&env);
    if (mrc != 0)
        return baton__wal_mdb_error(who, "mdb_env_create", mrc);
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
        return baton__wal_mdb_error(who, dir, mrc);
    }
    MDB_envinfo info;
    mdb_env_info(env, &info);
    *out_map = info.me_mapsize;
    *out_env = env;
    return 0;
}

/* The truncation bound kept in "meta" (0 when there is none). */
static int read_bound(MDB_txn *txn, const char *who, const char *dir, uint64_t *bound)
{
    MDB_dbi meta;
    *bound = 0;
    int mrc = mdb_dbi_open(txn, "meta", 0, &meta);
    if (mrc == MDB_NOTFOUND)
        return 0;
    MDB_val k = {8, "truncate"}, v;
    if (mrc == 0)
        mrc = mdb_get(txn, meta, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return 0;
    if (mrc != 0)
        return baton__wal_mdb_error(who, dir, mrc);
    if (v.mv_size != 8)
        return baton__error(BATON_EIO, "%s: %s: damaged truncation bound (%zu bytes, not 8)",
                            who, dir, v.mv_size);
    *bound = wal_get_be64(v.mv_data);
    return 0;
}

typedef struct replay_walk {
    const char *who, *dir;
    int (*fn)(void *ctx, uint64_t seq, const void *data, size_t size);
    void *ctx;
    uint64_t bound;
    uint64_t last;   /* the last record of the groups read so far (0: none) */
    uint64_t groups; /* groups read */
    uint64_t *last_good;
} replay_walk;

/* Hands the records of one group (first: its key) to fn. */
static int replay_group(replay_walk *w, uint64_t first, const MDB_val *v)
{
    const unsigned char *group = v->mv_data;
    size_t offset = 0;
    uint64_t seq = first;
    for (;; seq++) {
        const unsigned char *data = NULL;
        size_t size = 0;
        switch (wal_group_next(group, v->mv_size, &offset, seq, true, &data, &size)) {
        case WAL_GROUP_END:
            if (seq == first)
                return baton__error(BATON_EIO, "%s: %s: damaged record: the group at seq %llu "
                                    "is empty", w->who, w->dir, (unsigned long long)first);
            w->last = seq - 1;
            w->groups++;
            return 0;
        case WAL_GROUP_SHORT:
            return baton__error(BATON_EIO, "%s: %s: damaged record seq %llu: its size runs "
                                "past the end of its group", w->who, w->dir,
                                (unsigned long long)seq);
        case WAL_GROUP_BAD_SUM:
            return baton__error(BATON_EIO, "%s: %s: damaged record seq %llu: checksum mismatch",
                                w->who, w->dir, (unsigned long long)seq);
        case WAL_GROUP_RECORD:
            break;
        }
        if (seq < w->bound) /* truncated, but still in a group that straddles the bound */
            continue;
        int rc = w->fn(w->ctx, seq, data, size);
        if (rc != 0)
            return rc;
        if (w->last_good != NULL)
            *w->last_good = seq;
    }
}

static int replay_groups(replay_walk *w, MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc != 0)
        return baton__wal_mdb_error(w->who, w->dir, mrc);
    int rc = 0;
    MDB_val k, v;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            rc = baton__error(BATON_EIO, "%s: %s: damaged record after seq %llu: key of %zu "
                              "bytes", w->who, w->dir, (unsigned long long)w->last, k.mv_size);
            break;
        }
        uint64_t first = wal_get_be64(k.mv_data);
        if (first == 0 || (w->groups > 0 && first != w->last + 1)) {
            rc = baton__error(BATON_EIO, "%s: %s: damaged record: seq %llu follows seq %llu",
                              w->who, w->dir, (unsigned long long)first,
                              (unsigned long long)w->last);
            break;
        }
        rc = replay_group(w, first, &v);
    }
    mdb_cursor_close(cur);
    if (rc != 0)
        return rc;
    if (mrc != MDB_NOTFOUND)
        return baton__error(BATON_EIO, "%s: %s: reading after seq %llu: %s", w->who, w->dir,
                            (unsigned long long)w->last, mdb_strerror(mrc));
    MDB_stat st;
    mrc = mdb_stat(txn, dbi, &st);
    if (mrc != 0 || st.ms_entries != w->groups)
        return baton__error(BATON_EIO, "%s: %s: damaged log: %llu groups found up to seq %llu, "
                            "but the log holds %llu", w->who, w->dir,
                            (unsigned long long)w->groups, (unsigned long long)w->last,
                            mrc != 0 ? 0ull : (unsigned long long)st.ms_entries);
    return 0;
}

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
    rc = baton__wal_env_open(who, dir, file_size, true, &env, &map);
    if (rc != 0)
        return rc;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (mrc != 0) {
        rc = baton__wal_mdb_error(who, "mdb_txn_begin", mrc);
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
    if (mrc != 0) {
        rc = baton__wal_mdb_error(who, dir, mrc);
        goto out;
    }
    replay_walk w = {.who = who, .dir = dir, .fn = fn, .ctx = ctx, .last_good = last_good};
    rc = read_bound(txn, who, dir, &w.bound);
    if (rc == 0)
        rc = replay_groups(&w, txn, dbi);
out:
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}
