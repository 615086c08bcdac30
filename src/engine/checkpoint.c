/*
 * checkpoint.c — checkpoints of an engine's state: taken on demand or by the policy, kept in
 * memory or in files, restored in the same process or resumed in a new one after a crash
 * (include/baton/engine.h).
 *
 * FORMAT (one format for the memory blob and the file; integers little-endian)
 *
 *     "BATONCKP"                          8 bytes
 *     version                             4 bytes, 1
 *     step                                8 bytes, the engine's step counter when taken
 *     rows                                8 bytes
 *     columns                             4 bytes, at most BATON_STATE_MAX_COLUMNS
 *     per column: type (1 byte: 1 float, 2 double, 3 int64), name length (1 byte, 1..63),
 *                 the name's bytes
 *     ids                                 rows x 8 bytes, in row order
 *     each column's values, in index      rows x 4 bytes (float) or 8 (double, int64), as stored
 *     order
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
 *    copied into an intermediate buffer. Only the metadata stays in memory (bytes NULL, path
 *    set); a restore reads the file. Without a directory the same writer fills one heap blob,
 *    so that one decoder reads both.
 *  - Reading never trusts the bytes: the header's counts, types and name lengths are checked,
 *    and the size they imply must equal the file's before `rows` sizes any allocation; the
 *    schema goes through baton_state_create and the ids through baton_state_add_rows, whose
 *    checks (names, duplicates) then count as damage; the checksum covers everything. The
 *    columns are read straight into a new baton_state. Only when all of that passed, and the
 *    schema equals the engine's (phases refer to columns by index), is the engine touched, so
 *    an error leaves it as it was. The new state is swapped in by contents (struct baton_state
 *    is plain data, state_impl.h), so the pointer baton_engine_state returned stays valid.
 *  - Recycling. Once checkpoint_keep are kept, a new checkpoint makes retention drop the
 *    oldest, so the new one is written over the oldest's file (renamed to the new .tmp name
 *    first, overwritten in place, cut to size) or into its blob, as PostgreSQL recycles WAL
 *    segments: the pages are already in the page cache, and writing them is a copy without the
 *    kernel allocating, and then freeing, a file's worth of pages (on ext4, 32 MB: 5.5 GB/s
 *    into a new file, 13 GB/s over an old one). The oldest is then gone before the new one is
 *    complete: after a crash nothing is lost but it (.tmp files are ignored), and a failed
 *    write costs the checkpoint that retention was about to delete anyway.
 *  - A checkpoint is keyed by (step, name), which is also its file name: taking one with the
 *    key of a kept one replaces it (its file was renamed over), so retention never deletes
 *    the file of the newer one.
 *  - resume() on the engine's own checkpoint directory adopts the checkpoint files there that
 *    are not newer than the one it restored, so that retention goes on deleting the oldest
 *    across crashes and restarts instead of leaving them on disk forever.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "engine/engine_impl.h"
#include "engine/state_impl.h"

#if !defined(__BYTE_ORDER__) || !defined(__ORDER_LITTLE_ENDIAN__) ||                               \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* The format is little-endian and this file writes integers and arrays by copying their
 * memory: a big-endian port needs byte swaps in the header, the ids and the values. */
#error "checkpoint.c assumes a little-endian host"
#endif

static const char ckpt_magic[8] = {'B', 'A', 'T', 'O', 'N', 'C', 'K', 'P'};
#define CKPT_VERSION 1u
#define CKPT_HEADER 32u /* magic, version, step, rows, columns */
#define CKPT_SCHEMA_MAX (CKPT_HEADER + BATON_STATE_MAX_COLUMNS * (2u + BATON_COLUMN_NAME_MAX))
#define CKPT_TAIL_MAX (1u + BATON_CHECKPOINT_NAME_MAX + 8u)
/* Bytes hashed then written (or read then hashed) at a time: small enough to stay in L2 between
 * the two passes, large enough that a syscall per piece costs nothing next to its copy (64 KiB
 * to 1 MiB measured on a 2-core EPYC with 1 MiB of L2 per core: 512 KiB was best). */
#define CKPT_PIECE ((size_t)512 << 10)
/* "ckpt-" + 20 digits + "-" + name + ".bck"; the name starts at CKPT_NAME_AT. */
#define CKPT_FILE_MIN (5u + 20u + 1u + 1u + 4u)
#define CKPT_NAME_AT 26u
/* Room for a file name, its terminating 0 included. */
#define CKPT_FILE_CAP (CKPT_FILE_MIN + BATON_CHECKPOINT_NAME_MAX)
#define WHY_MAX 200

static const char *const type_names[] = {"?", "float", "double", "int64"};

static bool name_ok(const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return len > 0 && len <= BATON_CHECKPOINT_NAME_MAX;
}

static int io_error(const char *who, const char *what, const char *path)
{
    return baton__error(BATON_EIO, "%s: %s %s: %s", who, what, path, strerror(errno));
}

/* dir + "/" + the file name of (step, name), or NULL when memory ran out. */
static char *file_path(const char *dir, uint64_t step, const char *name)
{
    size_t cap = strlen(dir) + 1 + CKPT_FILE_CAP;
    char *path = baton__malloc(cap);
    if (path != NULL)
        snprintf(path, cap, "%s/ckpt-%020llu-%s.bck", dir, (unsigned long long)step, name);
    return path;
}

/* ---- config ------------------------------------------------------------------------------- */

/* mkdir -p: creates dir and its missing parents; true when it is a directory now. */
static bool make_dirs(char *dir)
{
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        int rc = mkdir(dir, 0777);
        *p = c;
        if (rc != 0 && errno != EEXIST)
            return false;
        if (c == '\0')
            break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return false;
    errno = ENOTDIR; /* the error if it is not a directory */
    return S_ISDIR(sb.st_mode);
}

int baton__engine_checkpoint_init(baton_engine *engine, const baton_engine_config *cfg)
{
    const char *who = "baton_engine_create";
    bool every = cfg->checkpoint_policy == BATON_CHECKPOINT_EVERY;
    if ((unsigned)cfg->checkpoint_policy > BATON_CHECKPOINT_EVERY)
        return baton__error(BATON_EINVAL, "%s: unknown checkpoint_policy %d", who,
                            (int)cfg->checkpoint_policy);
    if (every && (cfg->checkpoint_every == 0 || cfg->checkpoint_keep == 0))
        return baton__error(BATON_EINVAL, "%s: %s 0 with BATON_CHECKPOINT_EVERY (must be >= 1)",
                            who,
                            cfg->checkpoint_every == 0 ? "checkpoint_every" : "checkpoint_keep");
    engine->checkpoint_policy = cfg->checkpoint_policy;
    engine->checkpoint_every = cfg->checkpoint_every;
    engine->checkpoint_keep = cfg->checkpoint_keep != 0 ? cfg->checkpoint_keep : 1;
    engine->checkpoint_sync = cfg->checkpoint_sync;
    if (cfg->checkpoint_dir == NULL)
        return 0;
    size_t len = strlen(cfg->checkpoint_dir);
    if (len == 0)
        return baton__error(BATON_EINVAL, "%s: checkpoint_dir is empty (NULL: no files)", who);
    char *dir = baton__malloc(len + 1);
    if (dir == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory for checkpoint_dir", who);
    memcpy(dir, cfg->checkpoint_dir, len + 1);
    while (len > 1 && dir[len - 1] == '/') /* "d/" would name files "d//ckpt-..." */
        dir[--len] = '\0';
    if (!make_dirs(dir)) {
        int rc = io_error(who, "cannot create the checkpoint directory", dir);
        baton__free(dir);
        return rc;
    }
    engine->checkpoint_dir = dir;
    return 0;
}

static void entry_free(engine_checkpoint *cp)
{
    baton__free(cp->bytes);
    baton__free(cp->path);
}

static void list_free(engine_checkpoint *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        entry_free(&list[i]);
    baton__free(list);
}

void baton__engine_checkpoint_fini(baton_engine *engine)
{
    /* The files stay: they are there for a process that resumes after this one. */
    list_free(engine->checkpoints, engine->n_checkpoints);
    baton__free(engine->checkpoint_dir);
}

/* ---- writing ------------------------------------------------------------------------------ */

/* The small parts of a checkpoint (all but the ids and values) and its size. */
typedef struct ckpt_layout {
    unsigned char head[CKPT_SCHEMA_MAX];
    size_t head_len;
    unsigned char tail[CKPT_TAIL_MAX]; /* the name's length and bytes, then the checksum */
    size_t tail_len;                   /* without the checksum */
    size_t size;
} ckpt_layout;

static void layout_build(ckpt_layout *l, const baton_state *st, uint64_t step, const char *name)
{
    uint32_t version = CKPT_VERSION, columns = (uint32_t)st->n_columns;
    uint64_t rows = st->rows;
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
    size_t name_len = strlen(name);
    l->tail[0] = (unsigned char)name_len;
    memcpy(l->tail + 1, name, name_len);
    l->tail_len = 1 + name_len;
    l->size = l->head_len + data + l->tail_len + 8;
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
    /* The name is hashed, then written with the checksum in one call. */
    XXH3_64bits_update(&s->xxh, l->tail, l->tail_len);
    uint64_t sum = (uint64_t)XXH3_64bits_digest(&s->xxh);
    memcpy(l->tail + l->tail_len, &sum, 8);
    return sink_out(s, l->tail, l->tail_len + 8);
}

/* Writes the checkpoint to path through path.tmp (see the header comment), over old's file
 * when old is not NULL (recycling, see DESIGN; old->path is NULL once its file is taken). */
static int write_file(const baton_engine *engine, const char *who, const char *path, ckpt_layout *l,
                      engine_checkpoint *old)
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
        rc = io_error(who, "cannot create", tmp);
    else if (!emit(&sink, l, engine->state) || ftruncate(sink.fd, (off_t)l->size) != 0)
        rc = io_error(who, "cannot write", tmp);
    else if (engine->checkpoint_sync && fsync(sink.fd) != 0)
        rc = io_error(who, "cannot fsync", tmp);
    if (sink.fd >= 0 && close(sink.fd) != 0 && rc == 0)
        rc = io_error(who, "cannot close", tmp);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = io_error(who, "cannot rename the new checkpoint to", path);
    if (rc != 0)
        (void)unlink(tmp); /* also a recycled file that could not be opened */
    baton__free(tmp);
    if (rc != 0 || !engine->checkpoint_sync)
        return rc;
    /* On failure here the file stays: it is complete, only not known to be durable, and it
     * may have replaced a kept checkpoint of the same key, whose entry must keep a file. */
    int dfd = open(engine->checkpoint_dir, O_RDONLY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc = io_error(who, "cannot fsync the directory", engine->checkpoint_dir);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* ---- the kept list -------------------------------------------------------------------------- */

/* Drops the `drop` oldest checkpoints, their files with them. */
static void drop_oldest(baton_engine *engine, size_t drop)
{
    size_t n = engine->n_checkpoints;
    for (size_t i = 0; i < drop; i++) {
        /* A file that cannot be deleted is left behind: the checkpoint just taken is fine, so
         * that is no error of the call. */
        if (engine->checkpoints[i].path != NULL)
            (void)unlink(engine->checkpoints[i].path);
        entry_free(&engine->checkpoints[i]);
    }
    memmove(engine->checkpoints, engine->checkpoints + drop,
            (n - drop) * sizeof *engine->checkpoints);
    engine->n_checkpoints = n - drop;
}

/* Drops the oldest checkpoints beyond checkpoint_keep. */
static void retain(baton_engine *engine)
{
    size_t n = engine->n_checkpoints, keep = engine->checkpoint_keep;
    drop_oldest(engine, n > keep ? n - keep : 0);
}

/* The checkpoint that retention will drop once one called name is added now (the oldest, when
 * checkpoint_keep are kept and none has the new one's key), or NULL. */
static engine_checkpoint *recyclable(baton_engine *engine, const char *name)
{
    if (engine->n_checkpoints == 0 || engine->n_checkpoints < engine->checkpoint_keep)
        return NULL;
    for (size_t i = 0; i < engine->n_checkpoints; i++)
        if (engine->checkpoints[i].step == engine->step &&
            strcmp(engine->checkpoints[i].name, name) == 0)
            return NULL;
    return &engine->checkpoints[0];
}

/* Makes `grown` (room for n_checkpoints + 1) the list: the kept ones but one with cp's key,
 * then cp; then applies retention. Cannot fail. */
static void keep_entry(baton_engine *engine, engine_checkpoint *grown, const engine_checkpoint *cp)
{
    size_t n = 0;
    for (size_t i = 0; i < engine->n_checkpoints; i++) {
        engine_checkpoint *old = &engine->checkpoints[i];
        if (old->step == cp->step && strcmp(old->name, cp->name) == 0)
            entry_free(old); /* its file, if any, is the one cp's rename replaced */
        else
            grown[n++] = *old;
    }
    grown[n++] = *cp;
    baton__free(engine->checkpoints);
    engine->checkpoints = grown;
    engine->n_checkpoints = n;
    retain(engine);
}

static int take(baton_engine *engine, const char *who, const char *name)
{
    ckpt_layout *l = baton__malloc(sizeof *l);
    engine_checkpoint *grown = baton__malloc((engine->n_checkpoints + 1) * sizeof *grown);
    engine_checkpoint cp = {.step = engine->step}, *old = recyclable(engine, name);
    strcpy(cp.name, name);
    int rc = 0;
    if (l == NULL || grown == NULL) {
        rc = baton__error(BATON_ENOMEM, "%s: no memory for checkpoint \"%s\"", who, name);
    } else {
        layout_build(l, engine->state, engine->step, name);
        cp.size = l->size;
        if (engine->checkpoint_dir != NULL) {
            cp.path = file_path(engine->checkpoint_dir, engine->step, name);
        } else if (old != NULL && old->bytes != NULL && old->size >= l->size) {
            cp.bytes = old->bytes; /* recycled (see DESIGN) */
            old->bytes = NULL;
        } else {
            cp.bytes = baton__malloc(l->size);
        }
        ckpt_sink sink = {.fd = -1, .mem = cp.bytes};
        if (cp.path == NULL && cp.bytes == NULL)
            rc = baton__error(BATON_ENOMEM, "%s: no memory for checkpoint \"%s\" (%zu bytes)", who,
                              name, l->size);
        else if (cp.path != NULL)
            rc = write_file(engine, who, cp.path, l, old);
        else
            (void)emit(&sink, l, engine->state); /* into memory: cannot fail */
    }
    if (rc == 0) {
        keep_entry(engine, grown, &cp);
        engine->checkpoints_created++;
    } else {
        entry_free(&cp);
        baton__free(grown);
        if (old != NULL && old->path == NULL && old->bytes == NULL)
            drop_oldest(engine, 1); /* its recycled file went with the failed write */
    }
    baton__free(l);
    return rc;
}

int baton_engine_checkpoint(baton_engine *engine, const char *name)
{
    const char *who = "baton_engine_checkpoint";
    if (engine == NULL)
        return baton__error(BATON_EINVAL, "%s: engine is NULL", who);
    if (name == NULL)
        name = "manual";
    if (!name_ok(name, strlen(name)))
        return baton__error(BATON_EINVAL,
                            "%s: bad checkpoint name \"%.*s\" (1 to %u letters, digits, '_', "
                            "'.', '-')",
                            who, 80, name, BATON_CHECKPOINT_NAME_MAX);
    return take(engine, who, name);
}

int baton__engine_checkpoint_after_step(baton_engine *engine)
{
    if (engine->checkpoint_policy != BATON_CHECKPOINT_EVERY ||
        engine->step % engine->checkpoint_every != 0)
        return 0;
    return take(engine, "baton_engine_step", "auto");
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

typedef struct ckpt_schema {
    baton_column_spec spec[BATON_STATE_MAX_COLUMNS];
    char names[BATON_STATE_MAX_COLUMNS][BATON_COLUMN_NAME_MAX + 1];
} ckpt_schema;

/* A decoded checkpoint. */
typedef struct ckpt_loaded {
    baton_state *state;
    uint64_t step;
} ckpt_loaded;

/* Reads a checkpoint of `size` bytes from s (see DESIGN). 0 with *out filled; BATON_EIO with
 * the reason in why (no message set); BATON_ENOMEM with the message set. */
static int decode(const char *who, ckpt_source *s, size_t size, ckpt_loaded *out, char why[WHY_MAX])
{
    unsigned char head[CKPT_HEADER], t[CKPT_TAIL_MAX];
    ckpt_schema *schema = baton__malloc(sizeof *schema);
    uint64_t *ids = NULL;
    baton_state *st = NULL;
    int r, rc = 0;
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(why, WHY_MAX, __VA_ARGS__);                                                       \
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
    if (version != CKPT_VERSION)
        FAIL("version %u, this library reads %u", version, CKPT_VERSION);
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
    /* The rest is rows * row_bytes, then 2..64 bytes of name, then the checksum: checked
     * before `rows` sizes any allocation. */
    size_t rest = size - at;
    if (rest < 2 + 8 || rows > (rest - 2 - 8) / row_bytes ||
        rest - rows * row_bytes > CKPT_TAIL_MAX)
        FAIL("truncated or too long: %zu bytes for %llu rows of %zu bytes", size,
             (unsigned long long)rows, row_bytes);
    size_t tail = rest - (size_t)rows * row_bytes; /* name length byte, name, checksum */
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
    READ(t, tail, false);
    uint64_t sum;
    memcpy(&sum, t + tail - 8, 8);
    XXH3_64bits_update(&s->xxh, t, tail - 8);
    if ((uint64_t)XXH3_64bits_digest(&s->xxh) != sum)
        FAIL("damaged: its checksum does not match");
    if (t[0] + 1u + 8u != tail || !name_ok((const char *)t + 1, t[0]))
        FAIL("a name of %u bytes in %zu bytes", t[0], tail - 9);
#undef READ
#undef FAIL
    out->state = st;
    st = NULL;
out:
    baton_state_destroy(st);
    baton__free(ids);
    baton__free(schema);
    return rc;
}

/* Decodes the file at path. EIO: why says what (no message set). */
static int load_file(const char *who, const char *path, ckpt_loaded *out, char why[WHY_MAX])
{
    ckpt_source s = {.fd = open(path, O_RDONLY | O_CLOEXEC)};
    struct stat sb;
    int rc = BATON_EIO;
    if (s.fd < 0)
        snprintf(why, WHY_MAX, "cannot open: %s", strerror(errno));
    else if (fstat(s.fd, &sb) != 0)
        snprintf(why, WHY_MAX, "cannot stat: %s", strerror(errno));
    else
        rc = decode(who, &s, (size_t)sb.st_size, out, why);
    if (s.fd >= 0)
        close(s.fd);
    return rc;
}

/* 0 when the schemas are equal, else BATON_EMISMATCH naming the first difference. */
static int schema_check(const char *who, const char *what, const baton_state *file,
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

/* Swaps the loaded state in and moves the step counter and the replay cursor. Cannot fail. */
static void install(baton_engine *engine, ckpt_loaded *ld)
{
    baton_state old = *engine->state;
    *engine->state = *ld->state;
    *ld->state = old;
    baton_state_destroy(ld->state); /* the old contents */
    ld->state = NULL;
    engine->step = ld->step;
    size_t n = 0;
    if (engine->replay == BATON_REPLAY_RECORD) {
        for (size_t i = 0; i < engine->n_recorded; i++)
            if (engine->recording[i].step < ld->step)
                engine->recording[n++] = engine->recording[i];
        engine->n_recorded = n;
    } else if (engine->replay == BATON_REPLAY_VERIFY) {
        while (n < engine->n_recorded && engine->recording[n].step < ld->step)
            n++;
        engine->verify_at = n;
    }
}

int baton_engine_restore(baton_engine *engine, const char *name)
{
    const char *who = "baton_engine_restore";
    if (engine == NULL)
        return baton__error(BATON_EINVAL, "%s: engine is NULL", who);
    if (name != NULL && !name_ok(name, strlen(name)))
        return baton__error(BATON_EINVAL, "%s: bad checkpoint name \"%.*s\"", who, 80, name);
    const engine_checkpoint *cp = NULL;
    for (size_t i = engine->n_checkpoints; i-- > 0 && cp == NULL;)
        if (name == NULL || strcmp(engine->checkpoints[i].name, name) == 0)
            cp = &engine->checkpoints[i];
    if (cp == NULL)
        return baton__error(BATON_ENOTFOUND, "%s: no checkpoint%s%s%s (%zu kept)", who,
                            name != NULL ? " named \"" : "", name != NULL ? name : "",
                            name != NULL ? "\"" : "", engine->n_checkpoints);
    char what[BATON_CHECKPOINT_NAME_MAX + 64], why[WHY_MAX];
    snprintf(what, sizeof what, "checkpoint \"%s\" of step %llu", cp->name,
             (unsigned long long)cp->step);
    ckpt_loaded ld = {0};
    ckpt_source src = {.mem = cp->bytes, .left = cp->size, .fd = -1};
    int rc = cp->bytes != NULL ? decode(who, &src, cp->size, &ld, why)
                               : load_file(who, cp->path, &ld, why);
    if (rc == BATON_EIO)
        return baton__error(BATON_EIO, "%s: %s (%s): %s", who, what,
                            cp->path != NULL ? cp->path : "in memory", why);
    if (rc == 0 && (rc = schema_check(who, what, ld.state, engine->state)) == 0)
        install(engine, &ld);
    baton_state_destroy(ld.state);
    return rc;
}

/* ---- resume --------------------------------------------------------------------------------- */

typedef char ckpt_file[CKPT_FILE_CAP];

/* Whether fn is a checkpoint file name; *out_step and out_name receive what it says. */
static bool parse_file_name(const char *fn, uint64_t *out_step, char *out_name)
{
    size_t n = strlen(fn), name_len = n - CKPT_NAME_AT - 4;
    if (n < CKPT_FILE_MIN || n >= CKPT_FILE_CAP || memcmp(fn, "ckpt-", 5) != 0 ||
        fn[CKPT_NAME_AT - 1] != '-' || strcmp(fn + n - 4, ".bck") != 0 ||
        !name_ok(fn + CKPT_NAME_AT, name_len))
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

static int compare_desc(const void *a, const void *b)
{
    return strcmp((const char *)b, (const char *)a);
}

/* The checkpoint file names in dir, newest first (*out: free with baton__free). */
static int list_dir(const char *who, const char *dir, ckpt_file **out, size_t *out_n)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return io_error(who, "cannot open the directory", dir);
    ckpt_file *names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        uint64_t step;
        char name[BATON_CHECKPOINT_NAME_MAX + 1];
        if (e == NULL && errno != 0)
            rc = io_error(who, "cannot read the directory", dir);
        if (e == NULL)
            break;
        if (!parse_file_name(e->d_name, &step, name))
            continue;
        if (n == cap && !baton__grow_array((void **)&names, &cap, n + 1, sizeof *names)) {
            rc = baton__error(BATON_ENOMEM, "%s: no memory to list %s", who, dir);
            break;
        }
        strcpy(names[n++], e->d_name);
    }
    closedir(d);
    if (rc != 0) {
        baton__free(names);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, compare_desc);
    *out = names;
    *out_n = n;
    return 0;
}

/* Makes names[from ..] (newest first, the one restored first, of `size` bytes) the engine's
 * kept checkpoints, oldest first, then applies retention. On ENOMEM the list stays. */
static void adopt(baton_engine *engine, ckpt_file *names, size_t from, size_t n, size_t size)
{
    size_t count = n - from;
    engine_checkpoint *list = baton__calloc(count, sizeof *list);
    for (size_t i = 0; list != NULL && i < count; i++) {
        engine_checkpoint *cp = &list[count - 1 - i];
        (void)parse_file_name(names[from + i], &cp->step, cp->name);
        cp->path = file_path(engine->checkpoint_dir, cp->step, cp->name);
        struct stat sb;
        if (i == 0 || (cp->path != NULL && stat(cp->path, &sb) == 0))
            cp->size = i == 0 ? size : (size_t)sb.st_size;
        if (cp->path == NULL) {
            list_free(list, count);
            list = NULL;
        }
    }
    if (list == NULL)
        return;
    list_free(engine->checkpoints, engine->n_checkpoints);
    engine->checkpoints = list;
    engine->n_checkpoints = count;
    retain(engine);
}

static bool same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    return a != NULL && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

int baton_engine_resume(baton_engine *engine, const char *dir)
{
    const char *who = "baton_engine_resume";
    if (engine == NULL || dir == NULL)
        return baton__error(BATON_EINVAL, "%s: %s is NULL", who, engine == NULL ? "engine" : "dir");
    ckpt_file *names = NULL;
    size_t n = 0, used = 0;
    int rc = list_dir(who, dir, &names, &n);
    if (rc != 0)
        return rc;
    size_t cap = strlen(dir) + 1 + CKPT_FILE_CAP;
    char *path = baton__malloc(cap), skipped[400] = "", why[WHY_MAX];
    rc = path == NULL ? baton__error(BATON_ENOMEM, "%s: no memory", who) : BATON_ENOTFOUND;
    for (size_t i = 0; i < n && rc == BATON_ENOTFOUND; i++) {
        snprintf(path, cap, "%s/%s", dir, names[i]);
        ckpt_loaded ld = {0};
        int lrc = load_file(who, path, &ld, why);
        struct stat sb;
        if (lrc == BATON_EIO && used < sizeof skipped) /* skipped, and named if none is valid */
            used += (size_t)snprintf(skipped + used, sizeof skipped - used, "%s%s (%s)",
                                     used > 0 ? ", " : "", names[i], why);
        else if (lrc != BATON_EIO)
            rc = lrc != 0 ? lrc : schema_check(who, path, ld.state, engine->state);
        if (lrc == 0 && rc == 0) {
            size_t size = stat(path, &sb) == 0 ? (size_t)sb.st_size : 0;
            install(engine, &ld);
            if (same_dir(engine->checkpoint_dir, dir))
                adopt(engine, names, i, n, size); /* bookkeeping: resumed either way */
        }
        baton_state_destroy(ld.state);
    }
    if (rc == BATON_ENOTFOUND && n == 0)
        rc = baton__error(BATON_ENOTFOUND, "%s: %s holds no checkpoint file", who, dir);
    else if (rc == BATON_ENOTFOUND)
        rc = baton__error(BATON_ENOTFOUND,
                          "%s: %s holds no valid checkpoint: %zu file%s failed the check: %s", who,
                          dir, n, n == 1 ? "" : "s", skipped);
    baton__free(path);
    baton__free(names);
    return rc;
}

int baton_engine_checkpoints(const baton_engine *engine, baton_checkpoint_info *out, size_t cap,
                             size_t *out_n)
{
    if (engine == NULL || out_n == NULL || (out == NULL && cap > 0))
        return baton__error(BATON_EINVAL, "baton_engine_checkpoints: %s is NULL",
                            engine == NULL  ? "engine"
                            : out_n == NULL ? "out_n"
                                            : "out");
    for (size_t i = 0; i < engine->n_checkpoints && i < cap; i++)
        out[i] = (baton_checkpoint_info){engine->checkpoints[i].name, engine->checkpoints[i].step,
                                         engine->checkpoints[i].size};
    *out_n = engine->n_checkpoints;
    return 0;
}
