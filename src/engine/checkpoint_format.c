/*
 * checkpoint_format.c — the checkpoint format (checkpoint_impl.h): a checkpoint read back from a
 * file (and its part) or a memory blob into a new state with every check, and the names of
 * checkpoint files. Writing one: checkpoint_write.c. What is taken when, kept, restored and
 * resumed: checkpoint.c.
 *
 * FORMAT (integers little-endian). A checkpoint is one stream of bytes:
 *
 *     "BATONCKP"                          8 bytes
 *     version                             4 bytes, 3 (read too: 2, without the identity; 1,
 *                                         also without parts and placement)
 *     step                                8 bytes, the engine's step counter when taken
 *     rows                                8 bytes
 *     columns                             4 bytes, at most BATON_STATE_MAX_COLUMNS
 *     parts (version >= 2)                4 bytes, 1 or 2: the files the stream is cut into
 *     identity (version 3)                1 byte length (0: none), then its bytes (printable
 *                                         ASCII): the engine's checkpoint_identity
 *     per column: type (1 byte: 1 float, 2 double, 3 int64), name length (1 byte, 1..63),
 *                 the name's bytes
 *     ids                                 rows x 8 bytes, in row order
 *     each column's values, in index      rows x 4 bytes (float) or 8 (double, int64), as stored
 *     order
 *     placement (version >= 2)            partitions (8 bytes), then per partition its begin,
 *                                         end and worker (8 bytes each): under the MPI executor,
 *                                         the global rows of every rank's partitions, of which
 *                                         the file holds one rank's; 0 partitions otherwise
 *     checkpoint name                     1 byte length (1..BATON_CHECKPOINT_NAME_MAX), bytes
 *
 * In one part (a memory blob, or a file "ckpt-%020llu-%s.bck"), the stream is followed by its
 * XXH3-64 (8 bytes). In two parts, the main file holds the stream's first bytes, then the
 * part's checksum (8 bytes), then XXH3-64 of every byte of the main file before it (8 bytes);
 * the part, the main file's name plus CKPT_PART_SUFFIX, holds the rest of the stream, then its
 * XXH3-64 (8 bytes). The file names are zero-padded (step, name), so that they sort in step
 * order, the newest last. Each file is written to its name plus ".tmp" and renamed, the part
 * first, so a main file of that name is always complete, and so is its part; with
 * checkpoint_sync the files are fsynced before the renames and the directory after them.
 *
 * DESIGN
 *  - Reading never trusts the bytes: the header's counts, types and name lengths are checked,
 *    and the size they imply must equal the files' before `rows` sizes any allocation; the
 *    schema goes through baton_state_create and the ids through baton_state_add_rows, whose
 *    checks (names, duplicates) then count as damage; the checksums cover everything, and the
 *    main file's covers the part's, so a part left by another checkpoint never passes. The
 *    columns are read straight into a new baton_state, handed back only when all of that
 *    passed, so that checkpoint.c can check the schema before it touches the engine. Only the
 *    metadata of a checkpoint in a file stays in memory; a restore reads the file.
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

const char baton__ckpt_magic_bytes[8] = {'B', 'A', 'T', 'O', 'N', 'C', 'K', 'P'};
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

void baton__ckpt_loaded_free(ckpt_loaded *ld)
{
    baton_state_destroy(ld->state);
    baton__free(ld->placement);
    *ld = (ckpt_loaded){0};
}

/* ---- reading -------------------------------------------------------------------------------- */

/* Bytes read (or hashed after reading) at a time: hashed while still in cache. */
#define CKPT_PIECE ((size_t)512 << 10)

/* Where the bytes come from: the blob at mem (left bytes), or fd. A checkpoint in two parts
 * reads main_left more bytes of the stream from the main file, checks its trailer and goes on
 * in the part (part_fd). */
typedef struct ckpt_source {
    XXH3_state_t xxh;
    const unsigned char *mem;
    size_t left;
    int fd;
    const char *path;  /* the main file's, to find its part */
    size_t main_left;  /* SIZE_MAX: one part */
    int part_fd;       /* -1: not open */
    uint64_t part_sum; /* the part's checksum as the main file's trailer records it */
} ckpt_source;

/* src_read's returns besides 0. */
enum { SRC_ERRNO = -1, SRC_SHORT = -2, SRC_MAIN_DAMAGED = -3 };

/* Reads len bytes (not hashed) from the current file. */
static int src_read_raw(int fd, unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t got = read(fd, p, len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? SRC_ERRNO : SRC_SHORT;
        p += got;
        len -= (size_t)got;
    }
    return 0;
}

/* At the end of the main file's stream: its trailer must match what was hashed; then the
 * stream goes on in the part, with a hash of its own. */
static int src_next_part(ckpt_source *s)
{
    uint64_t trailer[2];
    int r = src_read_raw(s->fd, (unsigned char *)trailer, sizeof trailer);
    if (r != 0)
        return r;
    XXH3_64bits_update(&s->xxh, &trailer[0], 8);
    if ((uint64_t)XXH3_64bits_digest(&s->xxh) != trailer[1])
        return SRC_MAIN_DAMAGED;
    s->part_sum = trailer[0];
    XXH3_64bits_reset(&s->xxh);
    s->fd = s->part_fd;
    s->main_left = SIZE_MAX;
    return 0;
}

/* Reads len bytes into dst, hashing them when `hash`, a piece at a time (hashed while still in
 * cache). One of SRC_* when the bytes cannot be had (errno set with SRC_ERRNO). */
static int src_read(ckpt_source *s, void *dst, size_t len, bool hash)
{
    for (unsigned char *p = dst; len > 0;) {
        size_t n = len < CKPT_PIECE ? len : CKPT_PIECE;
        if (s->main_left == 0) {
            int r = src_next_part(s);
            if (r != 0)
                return r;
        }
        if (s->main_left < n)
            n = s->main_left;
        if (s->fd < 0) {
            if (s->left < n)
                return SRC_SHORT;
            memcpy(p, s->mem, n);
            s->mem += n;
            s->left -= n;
        } else {
            ssize_t got = read(s->fd, p, n);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                return got < 0 ? SRC_ERRNO : SRC_SHORT;
            n = (size_t)got;
        }
        if (s->main_left != SIZE_MAX)
            s->main_left -= n;
        if (hash)
            XXH3_64bits_update(&s->xxh, p, n);
        p += n;
        len -= n;
    }
    return 0;
}

/* For a checkpoint in two parts whose main file is `size` bytes and of which `consumed` were
 * read: opens the part and sets *inout_size to the stream's bytes plus 8 (as if one part).
 * 0, BATON_EIO with the reason in why, or BATON_ENOMEM (message set). */
static int src_open_part(ckpt_source *s, size_t consumed, size_t *inout_size,
                         char why[CKPT_WHY_MAX])
{
    if (s->path == NULL) {
        snprintf(why, CKPT_WHY_MAX, "a checkpoint in memory claims two parts");
        return BATON_EIO;
    }
    size_t len = strlen(s->path);
    char *part = baton__malloc(len + sizeof CKPT_PART_SUFFIX);
    if (part == NULL)
        return baton__error(BATON_ENOMEM, "no memory for a checkpoint's path");
    memcpy(part, s->path, len);
    memcpy(part + len, CKPT_PART_SUFFIX, sizeof CKPT_PART_SUFFIX);
    struct stat sb;
    s->part_fd = open(part, O_RDONLY | O_CLOEXEC);
    bool opened = s->part_fd >= 0 && fstat(s->part_fd, &sb) == 0;
    if (!opened)
        snprintf(why, CKPT_WHY_MAX, "its part %s: %s", part, strerror(errno));
    baton__free(part);
    if (!opened)
        return BATON_EIO;
    size_t main_size = *inout_size, part_size = (size_t)sb.st_size;
    if (main_size < consumed + 16 || part_size < 8) {
        snprintf(why, CKPT_WHY_MAX, "truncated: %zu bytes and a part of %zu", main_size, part_size);
        return BATON_EIO;
    }
    s->main_left = main_size - 16 - consumed;
    *inout_size = main_size - 16 + part_size;
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
        snprintf(why, CKPT_WHY_MAX, "%s",
                 r == SRC_ERRNO          ? strerror(errno)
                 : r == SRC_MAIN_DAMAGED ? "damaged: the main file's checksum does not match"
                                         : "truncated in the placement");
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
        if ((r = src_read(s, (dst), (len), (hash))) == SRC_ERRNO)                                  \
            FAIL("read error: %s", strerror(errno));                                               \
        if (r == SRC_MAIN_DAMAGED)                                                                 \
            FAIL("damaged: the main file's checksum does not match");                              \
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
    READ(head, CKPT_HEADER_V1, true);
    uint32_t version, columns, parts = 1;
    uint64_t rows;
    memcpy(&version, head + 8, 4);
    memcpy(&out->step, head + 12, 8);
    memcpy(&rows, head + 20, 8);
    memcpy(&columns, head + 28, 4);
    if (memcmp(head, baton__ckpt_magic_bytes, 8) != 0)
        FAIL("not a checkpoint (no BATONCKP header)");
    if (version < 1 || version > CKPT_VERSION)
        FAIL("version %u, this library reads 1 to %u", version, CKPT_VERSION);
    size_t at = CKPT_HEADER_V1, row_bytes = sizeof *ids;
    if (version >= 2) {
        READ(head + at, 4, true);
        memcpy(&parts, head + at, 4);
        at += 4;
    }
    if (parts != 1 && parts != 2)
        FAIL("%u parts (1 or 2)", parts);
    if (parts == 2 && (rc = src_open_part(s, at, &size, why)) != 0)
        goto out;
    if (version >= 3) {
        unsigned char id_len;
        READ(&id_len, 1, true);
        if (at + 1 + id_len > size) /* id_len <= 255 = BATON_CHECKPOINT_IDENTITY_MAX */
            FAIL("truncated in the identity");
        READ(out->identity, id_len, true);
        out->identity[id_len] = '\0';
        for (size_t i = 0; i < id_len; i++)
            if (out->identity[i] < ' ' || out->identity[i] > '~')
                FAIL("an identity with byte 0x%02x", (unsigned)(unsigned char)out->identity[i]);
        at += 1u + id_len;
    } else {
        out->identity[0] = '\0';
    }
    if (columns > BATON_STATE_MAX_COLUMNS)
        FAIL("%u columns (at most %u)", columns, BATON_STATE_MAX_COLUMNS);
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
    /* The rest is rows * row_bytes, then (version >= 2) the placement, then 2..64 bytes of name,
     * then the checksum: checked before `rows` sizes any allocation. */
    size_t rest = size - at, count_len = version >= 2 ? 8 : 0;
    if (rest < count_len + 2 + 8 || rows > (rest - count_len - 2 - 8) / row_bytes ||
        (version == 1 && rest - rows * row_bytes > CKPT_TAIL_MAX))
        FAIL("truncated or too long: %zu bytes for %llu rows of %zu bytes", size,
             (unsigned long long)rows, row_bytes);
    /* The placement (version >= 2), the name's length byte, the name, the checksum. */
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
        uint64_t placed;
        READ(&placed, 8, true);
        tail -= 8;
        if (placed > (tail - 2 - 8) / CKPT_PART_BYTES ||
            tail - placed * CKPT_PART_BYTES > CKPT_TAIL_MAX)
            FAIL("a placement of %llu partitions in %zu bytes", (unsigned long long)placed, tail);
        tail -= (size_t)placed * CKPT_PART_BYTES;
        if (placed > 0 && (rc = read_placement(who, s, (size_t)placed, out, why)) != 0)
            goto out;
    }
    READ(t, tail, false);
    uint64_t sum;
    memcpy(&sum, t + tail - 8, 8);
    XXH3_64bits_update(&s->xxh, t, tail - 8);
    if ((uint64_t)XXH3_64bits_digest(&s->xxh) != sum)
        FAIL("damaged: %s checksum does not match", parts == 2 ? "its part's" : "its");
    if (parts == 2 && (s->main_left != SIZE_MAX || sum != s->part_sum))
        FAIL("its part is not the one its main file was written with");
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
    ckpt_source s = {.mem = bytes, .left = size, .fd = -1, .main_left = SIZE_MAX, .part_fd = -1};
    return decode(who, &s, size, out, why);
}

int baton__ckpt_load_file(const char *who, const char *path, ckpt_loaded *out,
                          char why[CKPT_WHY_MAX])
{
    ckpt_source s = {
        .fd = open(path, O_RDONLY | O_CLOEXEC), .path = path, .main_left = SIZE_MAX, .part_fd = -1};
    int main_fd = s.fd; /* s.fd moves to the part's */
    struct stat sb;
    int rc = BATON_EIO;
    if (s.fd < 0)
        snprintf(why, CKPT_WHY_MAX, "cannot open: %s", strerror(errno));
    else if (fstat(s.fd, &sb) != 0)
        snprintf(why, CKPT_WHY_MAX, "cannot stat: %s", strerror(errno));
    else
        rc = decode(who, &s, (size_t)sb.st_size, out, why);
    if (main_fd >= 0)
        close(main_fd);
    if (s.part_fd >= 0)
        close(s.part_fd);
    return rc;
}

int baton__ckpt_peek_identity(const char *path, char out[BATON_CHECKPOINT_IDENTITY_MAX + 1])
{
    unsigned char head[CKPT_HEADER + 1 + BATON_CHECKPOINT_IDENTITY_MAX];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < sizeof head) {
        ssize_t n = read(fd, head + got, sizeof head - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    uint32_t version = 0;
    if (got >= 12)
        memcpy(&version, head + 8, 4);
    if (got < CKPT_HEADER_V1 || memcmp(head, baton__ckpt_magic_bytes, 8) != 0 || version < 1 ||
        version > CKPT_VERSION)
        return -1;
    size_t len = version >= 3 && got > CKPT_HEADER ? head[CKPT_HEADER] : 0;
    if (version >= 3 && (got <= CKPT_HEADER || got < CKPT_HEADER + 1 + len))
        return -1;
    memcpy(out, head + CKPT_HEADER + 1, len);
    out[len] = '\0';
    return 0;
}

int baton__ckpt_identity_check(const baton_engine *engine, const char *who, const char *what,
                               const char *dir, const char *loaded)
{
    const char *mine = engine->checkpoint_identity;
    if (mine == NULL || strcmp(mine, loaded) == 0)
        return 0;
    if (loaded[0] == '\0')
        return baton__error(BATON_EMISMATCH,
                            "%s: %s in %s carries no checkpoint identity (written by an engine "
                            "without one, or before format version 3), but this engine's is "
                            "\"%s\": it may be another run's, so it is not used",
                            who, what, dir, mine);
    return baton__error(BATON_EMISMATCH,
                        "%s: %s in %s is a checkpoint of \"%s\", but this engine's "
                        "checkpoint_identity is \"%s\": another run's checkpoint, not used",
                        who, what, dir, loaded, mine);
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
