/*
 * checkpoint_format.c — the checkpoint format (checkpoint_impl.h): a checkpoint written into a
 * file or a memory blob straight from a state's arrays, read back into a new state with every
 * check, and the names of checkpoint files. What is taken when, kept, restored and resumed:
 * checkpoint.c.
 *
 * FORMAT (one format for the memory blob and the file; integers little-endian)
 *
 *     "BATONCKP"                          8 bytes
 *     version                             4 bytes, 2 (1: no placement; read too)
 *     step                                8 bytes, the engine's step counter when taken
 *     rows                                8 bytes
 *     columns                             4 bytes, at most BATON_STATE_MAX_COLUMNS
 *     per column: type (1 byte: 1 float, 2 double, 3 int64), name length (1 byte, 1..63),
 *                 the name's bytes
 *     ids                                 rows x 8 bytes, in row order
 *     each column's values, in index      rows x 4 bytes (float) or 8 (double, int64), as stored
 *     order
 *     placement (version 2)               partitions (8 bytes), then per partition its begin,
 *                                         end and worker (8 bytes each): under the MPI executor,
 *                                         the global rows of every rank's partitions, of which
 *                                         the file holds one rank's; 0 partitions otherwise
 *     checkpoint name                     1 byte length (1..BATON_CHECKPOINT_NAME_MAX), bytes
 *     XXH3-64 of every byte before it     8 bytes
 *
 * In a checkpoint directory the file is called "ckpt-%020llu-%s.bck" (step, name): zero-padded,
 * so that names sort in step order, the newest last. It is written to that name plus ".tmp"
 * and renamed, so a file of that name is always complete; with checkpoint_sync the file is
 * fsynced before the rename and the directory after it.
 *
 * DESIGN
 *  - Writing is the hot path (a benchmark holds it to memcpy bandwidth): the file is written
 *    straight from the state's arrays in pieces of CKPT_PIECE bytes, each hashed (XXH3's
 *    streaming API) just before it is written, so the write's copy into the page cache reads
 *    what the hash has just brought into cache: the arrays leave memory once, and nothing is
 *    copied into an intermediate buffer. With a pool, a file is written by the calling thread
 *    while a worker hashes the same bytes (emit_parallel): the kernel's copy, not the hash,
 *    bounds the write, and the two overlap. Only the metadata stays in memory (bytes NULL,
 *    path set); a restore reads the file. Without a directory the same writer fills one heap
 *    blob, so that one decoder reads both.
 *  - Reading never trusts the bytes: the header's counts, types and name lengths are checked,
 *    and the size they imply must equal the file's before `rows` sizes any allocation; the
 *    schema goes through baton_state_create and the ids through baton_state_add_rows, whose
 *    checks (names, duplicates) then count as damage; the checksum covers everything. The
 *    columns are read straight into a new baton_state, handed back only when all of that
 *    passed, so that checkpoint.c can check the schema before it touches the engine.
 *  - Recycling (when, and why it pays: checkpoint.c): a write given the oldest checkpoint's
 *    entry renames that file to its own .tmp name, writes over it in place (no O_TRUNC) and
 *    then cuts it to size.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
#error "checkpoint_format.c assumes a little-endian host"
#endif

static const char ckpt_magic[8] = {'B', 'A', 'T', 'O', 'N', 'C', 'K', 'P'};
#define CKPT_VERSION 2u
/* Bytes hashed then written (or read then hashed) at a time: small enough to stay in L2 between
 * the two passes, large enough that a syscall per piece costs nothing next to its copy (64 KiB
 * to 1 MiB measured on a 2-core EPYC with 1 MiB of L2 per core: 512 KiB was best). */
#define CKPT_PIECE ((size_t)512 << 10)

static const char *const type_names[] = {"?", "float", "double", "int64"};

/* ---- names and paths ------------------------------------------------------------------------ */

bool baton__ckpt_name_ok(const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return len > 0 && len <= BATON_CHECKPOINT_NAME_MAX;
}

int baton__ckpt_io_error(const char *who, const char *what, const char *path)
{
    return baton__error(BATON_EIO, "%s: %s %s: %s", who, what, path, strerror(errno));
}

char *baton__ckpt_file_path(const char *dir, uint64_t step, const char *name)
{
    size_t cap = strlen(dir) + 1 + CKPT_FILE_CAP;
    char *path = baton__malloc(cap);
    if (path != NULL)
        snprintf(path, cap, "%s/ckpt-%020llu-%s.bck", dir, (unsigned long long)step, name);
    return path;
}

bool baton__ckpt_parse_file_name(const char *fn, uint64_t *out_step, char *out_name)
{
    size_t n = strlen(fn), name_len = n - CKPT_NAME_AT - 4;
    if (n < CKPT_FILE_MIN || n >= CKPT_FILE_CAP || memcmp(fn, "ckpt-", 5) != 0 ||
        fn[CKPT_NAME_AT - 1] != '-' || strcmp(fn + n - 4, ".bck") != 0 ||
        !baton__ckpt_name_ok(fn + CKPT_NAME_AT, name_len))
        return false;
    uint64_t step = 0;
    for (size_t i = 5; i < CKPT_NAME_AT - 1; i++) {
        unsigned d = (unsigned)(fn[i] - '0');
        if (d > 9 || step > (UINT64_MAX - d) / 10)
            return false;
        step = step * 10 + d;
    }
    *out_step = step;
    memcpy(out_name, fn + CKPT_NAME_AT, name_len);
    out_name[name_len] = '\0';
    return true;
}

/* ---- writing ------------------------------------------------------------------------------ */

bool baton__ckpt_layout_build(ckpt_layout *l, const baton_engine *engine, const char *name)
{
    const baton_state *st = engine->state;
    uint32_t version = CKPT_VERSION, columns = (uint32_t)st->n_columns;
    uint64_t rows = st->rows, step = engine->step, parts = engine->n_placement;
    memcpy(l->head, ckpt_magic, 8);
    memcpy(l->head + 8, &version, 4);
    memcpy(l->head + 12, &step, 8);
    memcpy(l->head + 20, &rows, 8);
    memcpy(l->head + 28, &columns, 4);
    size_t at = CKPT_HEADER, data = st->rows * sizeof *st->ids;
    for (size_t c = 0; c < st->n_columns; c++) {
        const baton__column *col = st->columns[c];
        l->head[at++] = (unsigned char)col->type;
        l->head[at++] = (unsigned char)col->name_len;
        memcpy(l->head + at, col->header, col->name_len);
        at += col->name_len;
        data += st->rows * col->width;
    }
    l->head_len = at;
    l->placement_len = 8 + engine->n_placement * CKPT_PART_BYTES;
    l->placement = baton__malloc(l->placement_len);
    if (l->placement == NULL)
        return false;
    memcpy(l->placement, &parts, 8);
    for (size_t i = 0; i < engine->n_placement; i++) {
        const baton_partition *p = &engine->placement[i];
        uint64_t v[3] = {p->begin, p->end, p->worker};
        memcpy(l->placement + 8 + i * CKPT_PART_BYTES, v, CKPT_PART_BYTES);
    }
    size_t name_len = strlen(name);
    l->tail[0] = (unsigned char)name_len;
    memcpy(l->tail + 1, name, name_len);
    l->tail_len = 1 + name_len;
    l->size = l->head_len + data + l->placement_len + l->tail_len + 8;
    return true;
}

void baton__ckpt_layout_free(ckpt_layout *l)
{
    if (l != NULL)
        baton__free(l->placement);
    baton__free(l);
}

void baton__ckpt_loaded_free(ckpt_loaded *ld)
{
    baton_state_destroy(ld->state);
    baton__free(ld->placement);
    *ld = (ckpt_loaded){0};
}

/* Where the bytes go: fd >= 0, or the blob at mem. */
typedef struct ckpt_sink {
    XXH3_state_t xxh;
    int fd;
    unsigned char *mem;
} ckpt_sink;

/* Writes len bytes (not hashed); false with errno set when a write failed. */
static bool sink_out(ckpt_sink *s, const unsigned char *p, size_t len)
{
    if (s->fd < 0) {
        memcpy(s->mem, p, len);
        s->mem += len;
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

/* Hashes and writes len bytes, a piece at a time (see DESIGN). */
static bool sink_put(ckpt_sink *s, const void *data, size_t len)
{
    for (const unsigned char *p = data; len > 0;) {
        size_t n = len < CKPT_PIECE ? len : CKPT_PIECE;
        XXH3_64bits_update(&s->xxh, p, n);
        if (!sink_out(s, p, n))
            return false;
        p += n;
        len -= n;
    }
    return true;
}

/* The whole checkpoint into the sink; false with errno set when a write failed. */
static bool emit(ckpt_sink *s, ckpt_layout *l, const baton_state *st)
{
    memset(&s->xxh, 0, sizeof s->xxh); /* a state on the stack must start zeroed (xxhash.h) */
    XXH3_64bits_reset(&s->xxh);
    if (!sink_put(s, l->head, l->head_len) || !sink_put(s, st->ids, st->rows * sizeof *st->ids))
        return false;
    for (size_t c = 0; c < st->n_columns; c++)
        if (!sink_put(s, st->columns[c]->values, st->rows * st->columns[c]->width))
            return false;
    if (!sink_put(s, l->placement, l->placement_len))
        return false;
    /* The name is hashed, then written with the checksum in one call. */
    XXH3_64bits_update(&s->xxh, l->tail, l->tail_len);
    uint64_t sum = (uint64_t)XXH3_64bits_digest(&s->xxh);
    memcpy(l->tail + l->tail_len, &sum, 8);
    return sink_out(s, l->tail, l->tail_len + 8);
}

/* emit on two threads: the calling thread writes while a pool worker hashes the same bytes
 * (the kernel's copy into the page cache, not the hash, bounds a file's write, and on two cores
 * the two overlap instead of adding up). */
typedef struct emit_job {
    ckpt_sink *sink;
    ckpt_layout *layout;
    const baton_state *st;
    bool ok;
    int err; /* errno of a failed write, read back on the calling thread */
    uint64_t sum;
} emit_job;

static int write_body(void *ctx)
{
    emit_job *j = ctx;
    const baton_state *st = j->st;
    j->ok = sink_out(j->sink, j->layout->head, j->layout->head_len) &&
            sink_out(j->sink, (const unsigned char *)st->ids, st->rows * sizeof *st->ids);
    for (size_t c = 0; c < st->n_columns && j->ok; c++)
        j->ok = sink_out(j->sink, st->columns[c]->values, st->rows * st->columns[c]->width);
    j->ok = j->ok && sink_out(j->sink, j->layout->placement, j->layout->placement_len);
    j->err = j->ok ? 0 : errno;
    return 0;
}

static int hash_body(void *ctx)
{
    emit_job *j = ctx;
    const baton_state *st = j->st;
    XXH3_state_t xxh;
    memset(&xxh, 0, sizeof xxh); /* a state on the stack must start zeroed (xxhash.h) */
    XXH3_64bits_reset(&xxh);
    XXH3_64bits_update(&xxh, j->layout->head, j->layout->head_len);
    XXH3_64bits_update(&xxh, st->ids, st->rows * sizeof *st->ids);
    for (size_t c = 0; c < st->n_columns; c++)
        XXH3_64bits_update(&xxh, st->columns[c]->values, st->rows * st->columns[c]->width);
    XXH3_64bits_update(&xxh, j->layout->placement, j->layout->placement_len);
    XXH3_64bits_update(&xxh, j->layout->tail, j->layout->tail_len);
    j->sum = (uint64_t)XXH3_64bits_digest(&xxh);
    return 0;
}

/* emit's result with the writing and the hashing in parallel on pool; false with errno set. */
static bool emit_parallel(baton_pool *pool, ckpt_sink *s, ckpt_layout *l, const baton_state *st)
{
    emit_job job = {s, l, st, false, 0, 0};
    /* The calling thread runs A (the writes), so a failed write's errno is its own. */
    if (baton_join(pool, write_body, &job, hash_body, &job) != 0) {
        errno = EIO;
        return false;
    }
    if (!job.ok) {
        errno = job.err;
        return false;
    }
    memcpy(l->tail + l->tail_len, &job.sum, 8);
    return sink_out(s, l->tail, l->tail_len + 8);
}

void baton__ckpt_write_mem(ckpt_layout *l, const baton_state *st, unsigned char *mem)
{
    ckpt_sink sink = {.fd = -1, .mem = mem};
    (void)emit(&sink, l, st); /* into memory: cannot fail */
}

/* Through path.tmp (see FORMAT), over old's file when old is not NULL (recycling, see DESIGN). */
int baton__ckpt_write_file(const baton_engine *engine, const char *who, const char *path,
                           ckpt_layout *l, engine_checkpoint *old)
{
    size_t len = strlen(path);
    char *tmp = baton__malloc(len + 5);
    if (tmp == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory", who);
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    if (old != NULL && old->path != NULL && rename(old->path, tmp) == 0) {
        baton__free(old->path);
        old->path = NULL;
    }
    /* No O_TRUNC: a recycled file is written over, then cut to size. */
    int rc = 0;
    ckpt_sink sink = {.fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)};
    if (sink.fd < 0)
        rc = baton__ckpt_io_error(who, "cannot create", tmp);
    else if (!(engine->pool != NULL ? emit_parallel(engine->pool, &sink, l, engine->state)
                                    : emit(&sink, l, engine->state)) ||
             ftruncate(sink.fd, (off_t)l->size) != 0)
        rc = baton__ckpt_io_error(who, "cannot write", tmp);
    else if (engine->checkpoint_sync && fsync(sink.fd) != 0)
        rc = baton__ckpt_io_error(who, "cannot fsync", tmp);
    if (sink.fd >= 0 && close(sink.fd) != 0 && rc == 0)
        rc = baton__ckpt_io_error(who, "cannot close", tmp);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = baton__ckpt_io_error(who, "cannot rename the new checkpoint to", path);
    if (rc != 0)
        (void)unlink(tmp); /* also a recycled file that could not be opened */
    baton__free(tmp);
    if (rc != 0 || !engine->checkpoint_sync)
        return rc;
    /* On failure here the file stays: it is complete, only not known to be durable, and it
     * may have replaced a kept checkpoint of the same key, whose entry must keep a file. */
    int dfd = open(engine->checkpoint_dir, O_RDONLY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc = baton__ckpt_io_error(who, "cannot fsync the directory", engine->checkpoint_dir);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* ---- reading -------------------------------------------------------------------------------- */

/* Where the bytes come from: the blob at mem (left bytes), or fd. */
typedef struct ckpt_source {
    XXH3_state_t xxh;
    const unsigned char *mem;
    size_t left;
    int fd;
} ckpt_source;

/* Reads len bytes into dst, hashing them when `hash`, a piece at a time (hashed while still in
 * cache). -1 with errno on a read error, -2 when the source ends first. */
static int src_read(ckpt_source *s, void *dst, size_t len, bool hash)
{
    for (unsigned char *p = dst; len > 0;) {
        size_t n = len < CKPT_PIECE ? len : CKPT_PIECE;
        if (s->fd < 0) {
            if (s->left < n)
                return -2;
            memcpy(p, s->mem, n);
            s->mem += n;
            s->left -= n;
        } else {
            ssize_t got = read(s->fd, p, n);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                return got < 0 ? -1 : -2;
            n = (size_t)got;
        }
        if (hash)
            XXH3_64bits_update(&s->xxh, p, n);
        p += n;
        len -= n;
    }
    return 0;
}

/* Reads and checks a placement of n partitions (contiguous from row 0, none empty but the one
 * partition of no rows) into out. Returns as decode. */
static int read_placement(const char *who, ckpt_source *s, size_t n, ckpt_loaded *out,
                          char why[CKPT_WHY_MAX])
{
    unsigned char *bytes = baton__malloc(n * CKPT_PART_BYTES);
    out->placement = baton__malloc(n * sizeof *out->placement);
    int r = -3;
    if (bytes == NULL || out->placement == NULL) {
        baton__free(bytes);
        return baton__error(BATON_ENOMEM, "%s: no memory for a placement of %zu partitions", who,
                            n);
    }
    if ((r = src_read(s, bytes, n * CKPT_PART_BYTES, true)) != 0)
        snprintf(why, CKPT_WHY_MAX, "%s", r == -1 ? strerror(errno) : "truncated in the placement");
    for (size_t i = 0; r == 0 && i < n; i++) {
        uint64_t v[3];
        memcpy(v, bytes + i * CKPT_PART_BYTES, CKPT_PART_BYTES);
        uint64_t begin_want = i == 0 ? 0 : out->placement[i - 1].end;
        if (v[0] != begin_want || v[1] < v[0] || (v[1] == v[0] && n > 1) || v[1] > SIZE_MAX ||
            v[2] > UINT_MAX) {
            snprintf(why, CKPT_WHY_MAX, "placement partition %zu: rows [%llu, %llu) on worker %llu",
                     i, (unsigned long long)v[0], (unsigned long long)v[1],
                     (unsigned long long)v[2]);
            r = -3;
            break;
        }
        out->placement[i] = (baton_partition){(size_t)v[0], (size_t)v[1], (unsigned)v[2]};
    }
    if (r == 0) {
        out->n_placement = n;
        out->placement_hash = (uint64_t)XXH3_64bits(bytes, n * CKPT_PART_BYTES);
    }
    baton__free(bytes);
    return r == 0 ? 0 : BATON_EIO;
}

typedef struct ckpt_schema {
    baton_column_spec spec[BATON_STATE_MAX_COLUMNS];
    char names[BATON_STATE_MAX_COLUMNS][BATON_COLUMN_NAME_MAX + 1];
} ckpt_schema;

/* Reads a checkpoint of `size` bytes from s (see DESIGN). 0 with *out filled; BATON_EIO with
 * the reason in why (no message set); BATON_ENOMEM with the message set. */
static int decode(const char *who, ckpt_source *s, size_t size, ckpt_loaded *out,
                  char why[CKPT_WHY_MAX])
{
    unsigned char head[CKPT_HEADER], t[CKPT_TAIL_MAX];
    ckpt_schema *schema = baton__malloc(sizeof *schema);
    uint64_t *ids = NULL;
    baton_state *st = NULL;
    int r, rc = 0;
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(why, CKPT_WHY_MAX, __VA_ARGS__);                                                  \
        rc = BATON_EIO;                                                                            \
        goto out;                                                                                  \
    } while (0)
#define READ(dst, len, hash)                                                                       \
    do {                                                                                           \
        if ((r = src_read(s, (dst), (len), (hash))) == -1)                                         \
            FAIL("read error: %s", strerror(errno));                                               \
        if (r != 0)                                                                                \
            FAIL("truncated while reading (the file changed?)");                                   \
    } while (0)
    memset(&s->xxh, 0, sizeof s->xxh); /* a state on the stack must start zeroed (xxhash.h) */
    XXH3_64bits_reset(&s->xxh);
    if (schema == NULL) {
        rc = baton__error(BATON_ENOMEM, "%s: no memory to read a checkpoint", who);
        goto out;
    }
    if (size < CKPT_HEADER + 2 + 8)
        FAIL("truncated: %zu bytes", size);
    READ(head, CKPT_HEADER, true);
    uint32_t version, columns;
    uint64_t rows;
    memcpy(&version, head + 8, 4);
    memcpy(&out->step, head + 12, 8);
    memcpy(&rows, head + 20, 8);
    memcpy(&columns, head + 28, 4);
    if (memcmp(head, ckpt_magic, 8) != 0)
        FAIL("not a checkpoint (no BATONCKP header)");
    if (version != 1 && version != CKPT_VERSION)
        FAIL("version %u, this library reads 1 to %u", version, CKPT_VERSION);
    if (columns > BATON_STATE_MAX_COLUMNS)
        FAIL("%u columns (at most %u)", columns, BATON_STATE_MAX_COLUMNS);
    size_t at = CKPT_HEADER, row_bytes = sizeof *ids;
    for (uint32_t c = 0; c < columns; c++) {
        unsigned char td[2];
        if (at + 2 > size)
            FAIL("truncated in the schema");
        READ(td, 2, true);
        if (td[0] < BATON_COLUMN_FLOAT || td[0] > BATON_COLUMN_INT64 || td[1] == 0 ||
            td[1] > BATON_COLUMN_NAME_MAX || at + 2 + td[1] > size)
            FAIL("column %u has type %u and a name of %u bytes", c, td[0], td[1]);
        READ(schema->names[c], td[1], true);
        schema->names[c][td[1]] = '\0';
        schema->spec[c] = (baton_column_spec){schema->names[c], (baton_column_type)td[0]};
        row_bytes += td[0] == BATON_COLUMN_FLOAT ? 4 : 8;
        at += 2u + td[1];
    }
    /* The rest is rows * row_bytes, then (version 2) the placement, then 2..64 bytes of name,
     * then the checksum: checked before `rows` sizes any allocation. */
    size_t rest = size - at, count_len = version >= 2 ? 8 : 0;
    if (rest < count_len + 2 + 8 || rows > (rest - count_len - 2 - 8) / row_bytes ||
        (version == 1 && rest - rows * row_bytes > CKPT_TAIL_MAX))
        FAIL("truncated or too long: %zu bytes for %llu rows of %zu bytes", size,
             (unsigned long long)rows, row_bytes);
    /* The placement (version 2), the name's length byte, the name, the checksum. */
    size_t tail = rest - (size_t)rows * row_bytes;
    rc = baton_state_create(schema->spec, columns, &st);
    if (rc != 0 && rc != BATON_ENOMEM)
        FAIL("bad schema: %s", baton_last_error_message());
    if (rc == 0 && rows > 0 && (ids = baton__malloc((size_t)rows * sizeof *ids)) == NULL)
        rc =
            baton__error(BATON_ENOMEM, "%s: no memory for %llu ids", who, (unsigned long long)rows);
    if (rc != 0)
        goto out;
    if (rows > 0) {
        READ(ids, (size_t)rows * sizeof *ids, true);
        rc = baton_state_add_rows(st, ids, (size_t)rows, NULL);
        if (rc != 0 && rc != BATON_ENOMEM)
            FAIL("bad ids: %s", baton_last_error_message());
        if (rc != 0)
            goto out;
    }
    for (size_t c = 0; c < columns; c++)
        READ(st->columns[c]->values, (size_t)rows * st->columns[c]->width, true);
    if (version >= 2) {
        uint64_t parts;
        READ(&parts, 8, true);
        tail -= 8;
        if (parts > (tail - 2 - 8) / CKPT_PART_BYTES ||
            tail - parts * CKPT_PART_BYTES > CKPT_TAIL_MAX)
            FAIL("a placement of %llu partitions in %zu bytes", (unsigned long long)parts, tail);
        tail -= (size_t)parts * CKPT_PART_BYTES;
        if (parts > 0 && (rc = read_placement(who, s, (size_t)parts, out, why)) != 0)
            goto out;
    }
    READ(t, tail, false);
    uint64_t sum;
    memcpy(&sum, t + tail - 8, 8);
    XXH3_64bits_update(&s->xxh, t, tail - 8);
    if ((uint64_t)XXH3_64bits_digest(&s->xxh) != sum)
        FAIL("damaged: its checksum does not match");
    if (t[0] + 1u + 8u != tail || !baton__ckpt_name_ok((const char *)t + 1, t[0]))
        FAIL("a name of %u bytes in %zu bytes", t[0], tail - 9);
#undef READ
#undef FAIL
    out->state = st;
    st = NULL;
out:
    if (rc != 0) {
        baton__free(out->placement);
        out->placement = NULL;
        out->n_placement = 0;
    }
    baton_state_destroy(st);
    baton__free(ids);
    baton__free(schema);
    return rc;
}

int baton__ckpt_decode_mem(const char *who, const unsigned char *bytes, size_t size,
                           ckpt_loaded *out, char why[CKPT_WHY_MAX])
{
    ckpt_source s = {.mem = bytes, .left = size, .fd = -1};
    return decode(who, &s, size, out, why);
}

int baton__ckpt_load_file(const char *who, const char *path, ckpt_loaded *out,
                          char why[CKPT_WHY_MAX])
{
    ckpt_source s = {.fd = open(path, O_RDONLY | O_CLOEXEC)};
    struct stat sb;
    int rc = BATON_EIO;
    if (s.fd < 0)
        snprintf(why, CKPT_WHY_MAX, "cannot open: %s", strerror(errno));
    else if (fstat(s.fd, &sb) != 0)
        snprintf(why, CKPT_WHY_MAX, "cannot stat: %s", strerror(errno));
    else
        rc = decode(who, &s, (size_t)sb.st_size, out, why);
    if (s.fd >= 0)
        close(s.fd);
    return rc;
}

int baton__ckpt_schema_check(const char *who, const char *what, const baton_state *file,
                             const baton_state *engine)
{
    size_t n = file->n_columns > engine->n_columns ? file->n_columns : engine->n_columns;
    for (size_t c = 0; c < n; c++) {
        const baton__column *f = c < file->n_columns ? file->columns[c] : NULL;
        const baton__column *e = c < engine->n_columns ? engine->columns[c] : NULL;
        if (f != NULL && e != NULL && f->type == e->type && strcmp(f->header, e->header) == 0)
            continue;
        if (f != NULL && e != NULL)
            return baton__error(BATON_EMISMATCH,
                                "%s: %s has another schema: column %zu is \"%s\" (%s) in the "
                                "file, \"%s\" (%s) in the engine",
                                who, what, c, f->header, type_names[f->type], e->header,
                                type_names[e->type]);
        const baton__column *x = f != NULL ? f : e;
        return baton__error(BATON_EMISMATCH,
                            "%s: %s has another schema: column %zu is \"%s\" (%s) in the %s, "
                            "absent from the %s",
                            who, what, c, x->header, type_names[x->type],
                            f != NULL ? "file" : "engine", f != NULL ? "engine" : "file");
    }
    return 0;
}
