/*
 * wal_check.c — the write-ahead log's check of an LMDB file before LMDB maps it (see wal.h):
 * the meta pages, the file's length, and a walk over every reachable page, all with pread, so
 * that damage LMDB would trust becomes BATON_EIO instead of a crash.
 *
 * DESIGN
 *  - The layout is LMDB 0.9's on-disk format (lmdb.h's MDB_page, MDB_meta, MDB_db, MDB_node,
 *    little-endian, 64-bit page numbers): a 16-byte page header (pgno, pad, flags, lower,
 *    upper; an overflow page keeps its page count where lower and upper are), then the
 *    node offsets, the nodes packed from the page's end. A meta page holds MDB_meta after the
 *    header. A branch node's page number is mn_lo | mn_hi << 16 | mn_flags << 32; a leaf
 *    node's data size is mn_lo | mn_hi << 16.
 *  - Only pages reachable from the newest meta page are walked: freed pages keep stale
 *    contents (an overflow run's later pages have no header at all) and are never read.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "space/wal.h"

static uint64_t wal_get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* LMDB 0.9's meta page: the page header (16 bytes), then MDB_meta. */
#define META_FLAGS_OFF 10
#define META_MAGIC_OFF 16
#define META_VERSION_OFF 20
#define META_FREE_DB_OFF 40 /* MDB_db: md_pad (the page size for the free DB) @0, md_root @40 */
#define META_MAIN_DB_OFF 88
#define META_LAST_PG_OFF 136
#define META_TXNID_OFF 144
#define META_SIZE 152
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define LMDB_P_META 0x08u
#define LMDB_P_INVALID UINT64_MAX

typedef struct wal_meta {
    uint32_t psize;
    uint32_t flags[2]; /* of the free and the main database */
    uint64_t address;
    uint64_t last_pg;
    uint64_t txnid;
    uint64_t roots[2];
} wal_meta;

static int wal_read_meta(const char *who, const char *path, int fd, off_t offset, wal_meta *m)
{
    unsigned char buf[META_SIZE];
    ssize_t got = pread(fd, buf, sizeof buf, offset);
    if (got != (ssize_t)sizeof buf)
        return baton__error(BATON_EIO, "%s: %s: meta page at offset %lld is missing (not an "
                            "LMDB environment, or truncated)", who, path, (long long)offset);
    if ((wal_get_le(buf + META_FLAGS_OFF, 2) & LMDB_P_META) == 0 ||
        wal_get_le(buf + META_MAGIC_OFF, 4) != LMDB_MAGIC ||
        wal_get_le(buf + META_VERSION_OFF, 4) != LMDB_DATA_VERSION)
        return baton__error(BATON_EIO, "%s: %s: no valid LMDB meta page at offset %lld (not an "
                            "LMDB environment, or damaged)", who, path, (long long)offset);
    m->psize = (uint32_t)wal_get_le(buf + META_FREE_DB_OFF, 4);
    m->flags[0] = (uint32_t)wal_get_le(buf + META_FREE_DB_OFF + 4, 2);
    m->flags[1] = (uint32_t)wal_get_le(buf + META_MAIN_DB_OFF + 4, 2);
    m->address = wal_get_le(buf + 24, 8);
    m->roots[0] = wal_get_le(buf + META_FREE_DB_OFF + 40, 8);
    m->roots[1] = wal_get_le(buf + META_MAIN_DB_OFF + 40, 8);
    m->last_pg = wal_get_le(buf + META_LAST_PG_OFF, 8);
    m->txnid = wal_get_le(buf + META_TXNID_OFF, 8);
    return 0;
}

#define LMDB_PAGE_HEADER 16
#define LMDB_P_BRANCH 0x01u
#define LMDB_P_LEAF 0x02u
#define LMDB_P_OVERFLOW 0x04u
#define LMDB_F_BIGDATA 0x01u
#define LMDB_F_SUBDATA 0x02u
#define LMDB_DB_SIZE 48

typedef struct wal_walk {
    const char *who;
    const char *path;
    int fd;
    uint32_t psize;
    uint64_t last_pg;
    unsigned char *page;
    uint64_t *stack;
    size_t n_stack;
    size_t cap_stack;
} wal_walk;

static int wal_walk_push(wal_walk *w, uint64_t pgno, uint64_t from)
{
    if (pgno == LMDB_P_INVALID && from == UINT64_MAX)
        return 0; /* an empty database */
    if (pgno < 2 || pgno > w->last_pg)
        return baton__error(BATON_EIO, "%s: %s is damaged: page %llu points to page %llu, "
                            "outside 2..%llu", w->who, w->path, (unsigned long long)from,
                            (unsigned long long)pgno, (unsigned long long)w->last_pg);
    if (!baton__grow_array((void **)&w->stack, &w->cap_stack, w->n_stack + 1, sizeof *w->stack))
        return baton__error(BATON_ENOMEM, "%s: no memory to check %s", w->who, w->path);
    w->stack[w->n_stack++] = pgno;
    return 0;
}

/* Checks one branch or leaf page (in w->page) and pushes the pages it points to. */
static int wal_walk_nodes(wal_walk *w, uint64_t pgno, unsigned flags)
{
    const unsigned char *pg = w->page;
    uint32_t lower = (uint32_t)wal_get_le(pg + 12, 2), upper = (uint32_t)wal_get_le(pg + 14, 2);
    if (lower < LMDB_PAGE_HEADER || lower > upper || upper > w->psize || (lower & 1) != 0)
        return baton__error(BATON_EIO, "%s: %s is damaged: page %llu has bounds %u..%u", w->who,
                            w->path, (unsigned long long)pgno, lower, upper);
    for (uint32_t i = 0; i < (lower - LMDB_PAGE_HEADER) / 2; i++) {
        uint32_t off = (uint32_t)wal_get_le(pg + LMDB_PAGE_HEADER + 2 * i, 2);
        bool bad = off < upper || off + 8 > w->psize;
        uint64_t lo = 0, nflags = 0, ksize = 0;
        if (!bad) {
            lo = wal_get_le(pg + off, 4);
            nflags = wal_get_le(pg + off + 4, 2);
            ksize = wal_get_le(pg + off + 6, 2);
            bad = off + 8 + ksize > w->psize;
        }
        int rc = 0;
        if (!bad && flags == LMDB_P_BRANCH) {
            rc = wal_walk_push(w, lo | nflags << 32, pgno);
        } else if (!bad) {
            const unsigned char *data = pg + off + 8 + ksize;
            uint64_t room = w->psize - (off + 8 + ksize);
            if ((nflags & ~(uint64_t)(LMDB_F_BIGDATA | LMDB_F_SUBDATA)) != 0)
                bad = true;
            else if (nflags & LMDB_F_BIGDATA)
                bad = room < 8 || (rc = wal_walk_push(w, wal_get_le(data, 8), pgno)) != 0;
            else if (lo > room)
                bad = true;
            else if (nflags & LMDB_F_SUBDATA)
                bad = lo != LMDB_DB_SIZE || wal_get_le(data + 4, 2) != 0 ||
                      (rc = wal_walk_push(w, wal_get_le(data + 40, 8), UINT64_MAX)) != 0;
        }
        if (rc != 0)
            return rc;
        if (bad)
            return baton__error(BATON_EIO, "%s: %s is damaged: node %u of page %llu", w->who,
                                w->path, i, (unsigned long long)pgno);
    }
    return 0;
}

/* Walks every page reachable from the newest meta page and checks what LMDB trusts: each
 * page's number, kind and bounds, each node's extent, and every page number it follows. */
static int wal_check_tree(const char *who, const char *path, int fd, uint32_t psize,
                          const wal_meta *meta)
{
    wal_walk w = {who, path, fd, psize, meta->last_pg, NULL, NULL, 0, 0};
    w.page = baton__malloc(psize);
    if (w.page == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory to check %s", who, path);
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = wal_walk_push(&w, meta->roots[i], UINT64_MAX);
    unsigned char *seen = baton__calloc(meta->last_pg / 8 + 1, 1);
    if (seen == NULL)
        rc = baton__error(BATON_ENOMEM, "%s: no memory to check %s", who, path);
    while (rc == 0 && w.n_stack > 0) {
        uint64_t pgno = w.stack[--w.n_stack];
        if (seen[pgno / 8] & (1u << (pgno % 8))) {
            rc = baton__error(BATON_EIO, "%s: %s is damaged: page %llu is reached twice", who,
                              path, (unsigned long long)pgno);
            break;
        }
        seen[pgno / 8] |= (unsigned char)(1u << (pgno % 8));
        if (pread(fd, w.page, psize, (off_t)(pgno * psize)) != (ssize_t)psize) {
            rc = baton__error(BATON_EIO, "%s: %s: cannot read page %llu", who, path,
                              (unsigned long long)pgno);
            break;
        }
        unsigned flags = (unsigned)wal_get_le(w.page + META_FLAGS_OFF, 2);
        if (wal_get_le(w.page, 8) != pgno ||
            (flags != LMDB_P_BRANCH && flags != LMDB_P_LEAF && flags != LMDB_P_OVERFLOW)) {
            rc = baton__error(BATON_EIO, "%s: %s is damaged: page %llu has a wrong header", who,
                              path, (unsigned long long)pgno);
            break;
        }
        if (flags == LMDB_P_OVERFLOW) {
            uint64_t pages = wal_get_le(w.page + 12, 4);
            if (pages == 0 || pages > meta->last_pg + 1 - pgno)
                rc = baton__error(BATON_EIO, "%s: %s is damaged: overflow page %llu claims %llu "
                                  "pages", who, path, (unsigned long long)pgno,
                                  (unsigned long long)pages);
            continue;
        }
        rc = wal_walk_nodes(&w, pgno, flags);
    }
    baton__free(seen);
    baton__free(w.stack);
    baton__free(w.page);
    return rc;
}

int baton__wal_check_file(const char *who, const char *dir, int64_t *size)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/data.mdb", dir) >= (int)sizeof path)
        return baton__error(BATON_EINVAL, "%s: directory name too long", who);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return baton__error(BATON_ENOTFOUND, "%s: %s does not exist", who, path);
        return baton__error(BATON_EIO, "%s: cannot open %s: %s", who, path, strerror(errno));
    }
    struct stat st;
    int rc = 0;
    wal_meta m[2];
    if (fstat(fd, &st) != 0) {
        rc = baton__error(BATON_EIO, "%s: cannot stat %s: %s", who, path, strerror(errno));
        goto out;
    }
    *size = st.st_size;
    rc = wal_read_meta(who, path, fd, 0, &m[0]);
    if (rc != 0)
        goto out;
    uint32_t psize = m[0].psize;
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)) != 0) {
        rc = baton__error(BATON_EIO, "%s: %s: page size %u in the meta page is not valid", who,
                          path, psize);
        goto out;
    }
    rc = wal_read_meta(who, path, fd, (off_t)psize, &m[1]);
    if (rc != 0)
        goto out;
    /* LMDB takes the page size, the databases' flags and the map address from the newest meta
     * page; baton's logs use none of LMDB's database flags but MDB_INTEGERKEY on its free list,
     * and no fixed address. */
    for (int i = 0; i < 2; i++) {
        if (m[i].psize != psize || m[i].flags[0] != MDB_INTEGERKEY || m[i].flags[1] != 0 ||
            m[i].address != 0) {
            rc = baton__error(BATON_EIO, "%s: %s: meta page %d is damaged (page size %u, "
                              "database flags %#x/%#x)", who, path, i, m[i].psize,
                              m[i].flags[0], m[i].flags[1]);
            goto out;
        }
    }
    const wal_meta *newest = m[1].txnid > m[0].txnid ? &m[1] : &m[0];
    if (newest->last_pg >= (uint64_t)st.st_size / psize) {
        rc = baton__error(BATON_EIO, "%s: %s is truncated: %lld bytes, but its newest meta page "
                          "(txn %llu) uses %llu pages of %u bytes", who, path,
                          (long long)st.st_size, (unsigned long long)newest->txnid,
                          (unsigned long long)newest->last_pg + 1, psize);
        goto out;
    }
    rc = wal_check_tree(who, path, fd, psize, newest);
out:
    close(fd);
    return rc;
}
