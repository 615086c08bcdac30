/*
 * checkpoint_write.c — writing a checkpoint (the format: checkpoint_format.c) into a memory blob
 * or into files, straight from the state's arrays.
 *
 * DESIGN
 *  - Writing is the hot path (a benchmark holds it to half of memcpy's bandwidth): the bytes go
 *    from the state's arrays to the kernel, hashed on the way, with nothing copied into an
 *    intermediate buffer. The stream is described as segments (the header, the ids, each
 *    column, the placement, the name), and any range of it is hashed and written by walking
 *    them in pieces of CKPT_PIECE bytes, each hashed just before it is written, so that the
 *    kernel's copy reads what the hash has just brought into cache.
 *  - Two parts. A buffered write into one file is one copy on one core: the file system holds
 *    the file's lock for the whole write (ext4: i_rwsem), so two threads writing one file take
 *    turns. A large checkpoint written with a pool is therefore cut in two files, the main one
 *    and its part (CKPT_PART_SUFFIX), each hashed and written by its own thread, which on two
 *    cores doubles the bandwidth (measured: one file 13 GB/s, two 27 GB/s into recycled
 *    pages). The main file records the part's checksum in its trailer, so a part left from
 *    another checkpoint can never pass for this one's. Smaller checkpoints, and one without a
 *    pool, stay one file, written by the calling thread while a pool worker (if any) hashes
 *    the same bytes.
 *  - Atomicity. Each file is written to its name plus ".tmp" and renamed, the part first: a
 *    main file of that name is always complete, and its part is then complete too. Recycling
 *    (checkpoint.c says when) renames the oldest checkpoint's files to the new .tmp names and
 *    writes over them in place (no O_TRUNC), then cuts them to size.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Compiled into this file so that a streaming state can live on the stack (see fingerprint.c). */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/alloc.h"
#include "core/error.h"
#include "engine/checkpoint_impl.h"
#include "engine/engine_impl.h"
#include "engine/state_impl.h"

#if !defined(__BYTE_ORDER__) || !defined(__ORDER_LITTLE_ENDIAN__) ||                               \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* The format is little-endian and this file writes integers and arrays by copying their
 * memory: a big-endian port needs byte swaps in the header, the ids and the values. */
#error "checkpoint_write.c assumes a little-endian host"
#endif

/* Bytes hashed then written at a time: small enough to stay in L2 between the two passes, large
 * enough that a syscall per piece costs nothing next to its copy (64 KiB to 1 MiB measured on a
 * 2-core EPYC with 1 MiB of L2 per core: 512 KiB was best). */
#define CKPT_PIECE ((size_t)512 << 10)
/* The smallest stream written in two parts: below it, a second file's open, rename and
 * truncate cost more than the copy it takes off the calling thread. */
#define CKPT_SPLIT_MIN ((size_t)4 << 20)

/* ---- the layout ----------------------------------------------------------------------------- */

static void add_segment(ckpt_layout *l, const void *at, size_t len)
{
    if (len > 0)
        l->segment[l->n_segments++] = (ckpt_segment){at, len};
    l->stream_len += len;
}

bool baton__ckpt_layout_build(ckpt_layout *l, const baton_engine *engine, const char *name)
{
    const baton_state *st = engine->state;
    uint32_t version = CKPT_VERSION, columns = (uint32_t)st->n_columns, parts = 1;
    uint64_t rows = st->rows, step = engine->step, n_parts = engine->n_placement;
    size_t at = CKPT_HEADER,
           id_len = engine->checkpoint_identity != NULL ? strlen(engine->checkpoint_identity) : 0;
    l->head[at++] = (unsigned char)id_len;
    if (id_len > 0)
        memcpy(l->head + at, engine->checkpoint_identity, id_len);
    at += id_len;
    for (size_t c = 0; c < st->n_columns; c++) {
        const baton__column *col = st->columns[c];
        l->head[at++] = (unsigned char)col->type;
        l->head[at++] = (unsigned char)col->name_len;
        memcpy(l->head + at, col->header, col->name_len);
        at += col->name_len;
    }
    l->head_len = at;
    l->placement_len = 8 + engine->n_placement * CKPT_PART_BYTES;
    l->placement = baton__malloc(l->placement_len);
    if (l->placement == NULL)
        return false;
    memcpy(l->placement, &n_parts, 8);
    for (size_t i = 0; i < engine->n_placement; i++) {
        const baton_partition *p = &engine->placement[i];
        uint64_t v[3] = {p->begin, p->end, p->worker};
        memcpy(l->placement + 8 + i * CKPT_PART_BYTES, v, CKPT_PART_BYTES);
    }
    size_t name_len = strlen(name);
    l->tail[0] = (unsigned char)name_len;
    memcpy(l->tail + 1, name, name_len);
    l->tail_len = 1 + name_len;
    l->n_segments = 0;
    l->stream_len = 0;
    add_segment(l, l->head, l->head_len);
    add_segment(l, st->ids, st->rows * sizeof *st->ids);
    for (size_t c = 0; c < st->n_columns; c++)
        add_segment(l, st->columns[c]->values, st->rows * st->columns[c]->width);
    add_segment(l, l->placement, l->placement_len);
    add_segment(l, l->tail, l->tail_len);
    if (engine->checkpoint_dir != NULL && engine->pool != NULL &&
        baton_pool_workers(engine->pool) >= 2 && l->stream_len >= CKPT_SPLIT_MIN)
        parts = 2;
    l->parts = parts;
    /* The split on a page boundary, so that each file's copy starts on whole pages. */
    l->split = parts == 2 ? (l->stream_len / 2) & ~(size_t)4095 : l->stream_len;
    l->size = l->stream_len + (parts == 2 ? 8 + 8 + 8 : 8);
    memcpy(l->head, baton__ckpt_magic_bytes, 8);
    memcpy(l->head + 8, &version, 4);
    memcpy(l->head + 12, &step, 8);
    memcpy(l->head + 20, &rows, 8);
    memcpy(l->head + 28, &columns, 4);
    memcpy(l->head + 32, &parts, 4);
    return true;
}

void baton__ckpt_layout_free(ckpt_layout *l)
{
    if (l != NULL)
        baton__free(l->placement);
    baton__free(l);
}

/* ---- sinks ---------------------------------------------------------------------------------- */

/* Where the bytes go: fd >= 0, or the blob at mem, or (both unset) nowhere: hashed only. */
typedef struct ckpt_sink {
    XXH3_state_t xxh;
    int fd;
    unsigned char *mem;
} ckpt_sink;

static void sink_init(ckpt_sink *s, int fd, unsigned char *mem)
{
    memset(&s->xxh, 0, sizeof s->xxh); /* a state on the stack must start zeroed (xxhash.h) */
    XXH3_64bits_reset(&s->xxh);
    s->fd = fd;
    s->mem = mem;
}

/* Writes len bytes (not hashed); false with errno set when a write failed. */
static bool sink_out(ckpt_sink *s, const unsigned char *p, size_t len)
{
    if (s->fd < 0) {
        if (s->mem != NULL) {
            memcpy(s->mem, p, len);
            s->mem += len;
        }
        return true;
    }
    while (len > 0) {
        ssize_t n = write(s->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            errno = EIO; /* no progress and no error: do not spin */
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Bytes [a, b) of the stream l describes into s: hashed (`hash`), written (`write`) or both, a
 * piece at a time (see DESIGN). false with errno set when a write failed. */
static bool sink_range(ckpt_sink *s, const ckpt_layout *l, size_t a, size_t b, bool hash,
                       bool write)
{
    size_t seg_begin = 0;
    for (size_t i = 0; i < l->n_segments && seg_begin < b; i++) {
        const ckpt_segment *seg = &l->segment[i];
        size_t from = a > seg_begin ? a - seg_begin : 0;
        size_t to = b - seg_begin < seg->len ? b - seg_begin : seg->len;
        for (size_t at = from; at < to;) {
            size_t n = to - at < CKPT_PIECE ? to - at : CKPT_PIECE;
            if (hash)
                XXH3_64bits_update(&s->xxh, seg->at + at, n);
            if (write && !sink_out(s, seg->at + at, n))
                return false;
            at += n;
        }
        seg_begin += seg->len;
    }
    return true;
}

/* ---- one file ------------------------------------------------------------------------------- */

/* The stream then its checksum, hashed and written by the calling thread. */
static bool emit(ckpt_sink *s, const ckpt_layout *l)
{
    if (!sink_range(s, l, 0, l->stream_len, true, true))
        return false;
    uint64_t sum = (uint64_t)XXH3_64bits_digest(&s->xxh);
    return sink_out(s, (const unsigned char *)&sum, 8);
}

/* emit on two threads: the calling thread writes while a pool worker hashes the same bytes. */
typedef struct emit_job {
    ckpt_sink *sink;
    const ckpt_layout *layout;
    size_t begin, end; /* the stream's bytes this job covers */
    bool ok;
    int err; /* errno of a failed write, read back on the calling thread */
} emit_job;

static int write_job(void *ctx)
{
    emit_job *j = ctx;
    j->ok = sink_range(j->sink, j->layout, j->begin, j->end, false, true);
    j->err = j->ok ? 0 : errno;
    return 0;
}

static int hash_job(void *ctx)
{
    emit_job *j = ctx;
    j->ok = sink_range(j->sink, j->layout, j->begin, j->end, true, false);
    return 0;
}

/* Both: hashed and written (a part of its own). */
static int part_job(void *ctx)
{
    emit_job *j = ctx;
    j->ok = sink_range(j->sink, j->layout, j->begin, j->end, true, true);
    j->err = j->ok ? 0 : errno;
    return 0;
}

static bool emit_parallel(baton_pool *pool, ckpt_sink *s, const ckpt_layout *l)
{
    ckpt_sink hasher;
    sink_init(&hasher, -1, NULL);
    emit_job w = {s, l, 0, l->stream_len, false, 0}, h = {&hasher, l, 0, l->stream_len, false, 0};
    /* The calling thread runs A (the writes), so a failed write's errno is its own. */
    if (baton_join(pool, write_job, &w, hash_job, &h) != 0) {
        errno = EIO;
        return false;
    }
    if (!w.ok) {
        errno = w.err;
        return false;
    }
    uint64_t sum = (uint64_t)XXH3_64bits_digest(&hasher.xxh);
    return sink_out(s, (const unsigned char *)&sum, 8);
}

/* ---- two parts ------------------------------------------------------------------------------ */

/* The main file's bytes [0, split) into main and the part's [split, stream_len) into part, one
 * thread each; then the part's checksum after its bytes, and the main file's trailer: the
 * part's checksum and XXH3 of the main file's bytes before it (the stream's part and that).
 * false with errno set and *out_failed the file (0 main, 1 part) when a write failed. */
static bool emit_parts(baton_pool *pool, ckpt_sink *main, ckpt_sink *part, const ckpt_layout *l,
                       size_t *out_failed)
{
    emit_job a = {main, l, 0, l->split, false, 0}, b = {part, l, l->split, l->stream_len, false, 0};
    if (baton_join(pool, part_job, &a, part_job, &b) != 0) {
        errno = EIO;
        return false;
    }
    if (!a.ok || !b.ok) {
        errno = !a.ok ? a.err : b.err;
        *out_failed = !a.ok ? 0 : 1;
        return false;
    }
    uint64_t trailer[2];
    trailer[0] = (uint64_t)XXH3_64bits_digest(&part->xxh);
    XXH3_64bits_update(&main->xxh, trailer, 8);
    trailer[1] = (uint64_t)XXH3_64bits_digest(&main->xxh);
    if (!sink_out(part, (const unsigned char *)trailer, 8)) {
        *out_failed = 1;
        return false;
    }
    return sink_out(main, (const unsigned char *)trailer, 16);
}

void baton__ckpt_write_mem(ckpt_layout *l, unsigned char *mem)
{
    ckpt_sink sink;
    sink_init(&sink, -1, mem);
    (void)emit(&sink, l); /* into memory: cannot fail */
}

/* ---- files ---------------------------------------------------------------------------------- */

/* path + suffix, baton__malloc'd (NULL when memory ran out). */
static char *with_suffix(const char *path, const char *suffix)
{
    size_t len = strlen(path), extra = strlen(suffix);
    char *out = baton__malloc(len + extra + 1);
    if (out != NULL) {
        memcpy(out, path, len);
        memcpy(out + len, suffix, extra + 1);
    }
    return out;
}

void baton__ckpt_unlink(const char *path)
{
    (void)unlink(path);
    char *part = with_suffix(path, CKPT_PART_SUFFIX);
    if (part != NULL)
        (void)unlink(part);
    baton__free(part);
}

size_t baton__ckpt_files_size(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return 0;
    size_t size = (size_t)sb.st_size;
    char *part = with_suffix(path, CKPT_PART_SUFFIX);
    if (part != NULL && stat(part, &sb) == 0)
        size += (size_t)sb.st_size;
    baton__free(part);
    return size;
}

/* One file being written: its .tmp name, final name and descriptor. */
typedef struct out_file {
    char *tmp, *path;
    int fd;
    size_t size;
} out_file;

static int file_finish(const baton_engine *engine, const char *who, out_file *f, int rc)
{
    if (rc == 0 && ftruncate(f->fd, (off_t)f->size) != 0)
        rc = baton__ckpt_io_error(who, "cannot write", f->tmp);
    if (rc == 0 && engine->checkpoint_sync && fsync(f->fd) != 0)
        rc = baton__ckpt_io_error(who, "cannot fsync", f->tmp);
    if (f->fd >= 0 && close(f->fd) != 0 && rc == 0)
        rc = baton__ckpt_io_error(who, "cannot close", f->tmp);
    f->fd = -1;
    return rc;
}

int baton__ckpt_write_file(const baton_engine *engine, const char *who, const char *path,
                           ckpt_layout *l, engine_checkpoint *old)
{
    out_file f[2] = {{with_suffix(path, ".tmp"), NULL, -1, l->split + (l->parts == 2 ? 16 : 8)},
                     {NULL, NULL, -1, l->stream_len - l->split + 8}};
    size_t n = l->parts;
    int rc = 0;
    if (n == 2) {
        f[1].path = with_suffix(path, CKPT_PART_SUFFIX);
        f[1].tmp = with_suffix(path, CKPT_PART_SUFFIX ".tmp");
    }
    if (f[0].tmp == NULL || (n == 2 && (f[1].path == NULL || f[1].tmp == NULL)))
        rc = baton__error(BATON_ENOMEM, "%s: no memory", who);
    /* Recycling: the oldest's files become this one's .tmp files, written over in place. */
    if (rc == 0 && old != NULL && old->path != NULL && rename(old->path, f[0].tmp) == 0) {
        char *old_part = with_suffix(old->path, CKPT_PART_SUFFIX);
        if (old_part != NULL && n == 2)
            (void)rename(old_part, f[1].tmp);
        else if (old_part != NULL)
            (void)unlink(old_part);
        baton__free(old_part);
        baton__free(old->path);
        old->path = NULL;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        if ((f[i].fd = open(f[i].tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
            rc = baton__ckpt_io_error(who, "cannot create", f[i].tmp);
    if (rc == 0) {
        ckpt_sink main, part;
        sink_init(&main, f[0].fd, NULL);
        sink_init(&part, f[1].fd, NULL);
        size_t failed = 0; /* the file whose write failed */
        bool ok = n == 2                 ? emit_parts(engine->pool, &main, &part, l, &failed)
                  : engine->pool != NULL ? emit_parallel(engine->pool, &main, l)
                                         : emit(&main, l);
        if (!ok)
            rc = baton__ckpt_io_error(who, "cannot write", f[failed].tmp);
    }
    for (size_t i = 0; i < n; i++)
        if (f[i].fd >= 0)
            rc = file_finish(engine, who, &f[i], rc);
    /* The part first: once the main file has its name, its part has its own. */
    bool part_renamed = false;
    if (rc == 0 && n == 2 && !(part_renamed = rename(f[1].tmp, f[1].path) == 0))
        rc = baton__ckpt_io_error(who, "cannot rename the new checkpoint's part to", f[1].path);
    if (rc == 0 && rename(f[0].tmp, path) != 0)
        rc = baton__ckpt_io_error(who, "cannot rename the new checkpoint to", path);
    if (rc == 0 && n == 1) { /* a part left by an older checkpoint of this key */
        char *stale = with_suffix(path, CKPT_PART_SUFFIX);
        if (stale != NULL)
            (void)unlink(stale);
        baton__free(stale);
    }
    for (size_t i = 0; rc != 0 && i < n; i++)
        if (f[i].tmp != NULL)
            (void)unlink(f[i].tmp); /* also a recycled file that could not be opened */
    if (rc != 0 && part_renamed)
        (void)unlink(f[1].path); /* renamed, but its main file was not */
    for (size_t i = 0; i < 2; i++) {
        baton__free(f[i].tmp);
        baton__free(f[i].path);
    }
    if (rc != 0 || !engine->checkpoint_sync)
        return rc;
    /* On failure here the files stay: they are complete, only not known to be durable, and
     * they may have replaced a kept checkpoint of the same key, whose entry must keep them. */
    int dfd = open(engine->checkpoint_dir, O_RDONLY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc = baton__ckpt_io_error(who, "cannot fsync the directory", engine->checkpoint_dir);
    if (dfd >= 0)
        close(dfd);
    return rc;
}
