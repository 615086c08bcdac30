/*
 * checkpoint_impl.h — the checkpoint format as checkpoint.c (the policy, the kept list, restore
 * and resume) uses it; checkpoint_format.c describes the format and implements decoding and
 * checking one and the names of checkpoint files, checkpoint_write.c encoding one into files or
 * a memory blob. Internal to src/engine/.
 *
 * Errors follow baton's convention (0 or a BATON_E... code with the message set), except where a
 * function says that a BATON_EIO leaves the message unset and the reason in `why`: checkpoint.c
 * words that message itself, naming the checkpoint or the files it skipped.
 */
#ifndef BATON_ENGINE_CHECKPOINT_IMPL_H
#define BATON_ENGINE_CHECKPOINT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/engine.h"
#include "engine/engine_impl.h"

#define CKPT_VERSION 3u
#define CKPT_HEADER                                                                                \
    36u                    /* magic, version, step, rows, columns, parts (then, version 3: the     \
                              identity's length and bytes) */
#define CKPT_HEADER_V1 32u /* version 1: no parts */
/* What a checkpoint's second file (its part) adds to the main file's name. */
#define CKPT_PART_SUFFIX ".part"
#define CKPT_SCHEMA_MAX                                                                            \
    (CKPT_HEADER + 1u + BATON_CHECKPOINT_IDENTITY_MAX +                                            \
     BATON_STATE_MAX_COLUMNS * (2u + BATON_COLUMN_NAME_MAX))
#define CKPT_TAIL_MAX (1u + BATON_CHECKPOINT_NAME_MAX + 8u)
/* "ckpt-" + 20 digits + "-" + name + ".bck"; the name starts at CKPT_NAME_AT. */
#define CKPT_FILE_MIN (5u + 20u + 1u + 1u + 4u)
#define CKPT_NAME_AT 26u
/* Room for a file name, its terminating 0 included. */
#define CKPT_FILE_CAP (CKPT_FILE_MIN + BATON_CHECKPOINT_NAME_MAX)
/* Room for the reason a checkpoint failed the checks. */
#define CKPT_WHY_MAX 200

/* The bytes of one partition of a placement: begin, end, worker (8 bytes each). */
#define CKPT_PART_BYTES 24u

/* A piece of a checkpoint's stream: an array of the state, or a part of the layout. */
typedef struct ckpt_segment {
    const unsigned char *at;
    size_t len;
} ckpt_segment;

/* The header, the ids, every column, the placement, the name. */
#define CKPT_SEGMENTS_MAX (4u + BATON_STATE_MAX_COLUMNS)

/* A checkpoint about to be written: its small parts (all but the ids and values), the stream
 * of all its bytes as segments, and how it is cut into files. */
typedef struct ckpt_layout {
    unsigned char head[CKPT_SCHEMA_MAX];
    size_t head_len;
    unsigned char *placement; /* its count (8 bytes) and partitions, encoded */
    size_t placement_len;
    unsigned char tail[CKPT_TAIL_MAX]; /* the name's length and bytes */
    size_t tail_len;
    ckpt_segment segment[CKPT_SEGMENTS_MAX];
    size_t n_segments;
    size_t stream_len; /* every segment's bytes: all but the checksums */
    unsigned parts;    /* 1, or 2: the main file holds [0, split), the part the rest */
    size_t split;
    size_t size; /* the bytes of every file together */
} ckpt_layout;

/* A decoded checkpoint: a new state and the placement it was taken under (n_placement 0: a
 * local engine's, or an MPI engine's before its first step), which the caller owns (free with
 * baton__ckpt_loaded_free). placement_hash identifies the placement. */
typedef struct ckpt_loaded {
    baton_state *state;
    uint64_t step;
    /* The identity it carries ("": none, also every file before version 3). */
    char identity[BATON_CHECKPOINT_IDENTITY_MAX + 1];
    baton_partition *placement;
    size_t n_placement;
    uint64_t placement_hash;
} ckpt_loaded;

/* ---- checkpoint_format.c ---- */

/* "BATONCKP", a checkpoint's first bytes. */
extern const char baton__ckpt_magic_bytes[8];

/* Frees what a decoded checkpoint holds (its state and placement) and zeroes *ld. */
void baton__ckpt_loaded_free(ckpt_loaded *ld);

/* Whether name (len bytes, not necessarily 0-terminated) is a valid checkpoint name: 1 to
 * BATON_CHECKPOINT_NAME_MAX letters, digits, '_', '.', '-'. */
bool baton__ckpt_name_ok(const char *name, size_t len);

/* Sets and returns BATON_EIO "who: what path: strerror(errno)". */
int baton__ckpt_io_error(const char *who, const char *what, const char *path);

/* dir + "/" + the file name of (step, name) (baton__malloc'd: the caller frees it), or NULL when
 * memory ran out. */
char *baton__ckpt_file_path(const char *dir, uint64_t step, const char *name);

/* Whether fn is a checkpoint file name; *out_step and out_name (room for
 * BATON_CHECKPOINT_NAME_MAX + 1 bytes) receive what it says. */
bool baton__ckpt_parse_file_name(const char *fn, uint64_t *out_step, char *out_name);

/* Decodes and checks the checkpoint of `size` bytes at bytes, or in the file at path. 0 with
 * *out filled; BATON_EIO with the reason in why (no message set); BATON_ENOMEM with the message
 * set. */
int baton__ckpt_decode_mem(const char *who, const unsigned char *bytes, size_t size,
                           ckpt_loaded *out, char why[CKPT_WHY_MAX]);
int baton__ckpt_load_file(const char *who, const char *path, ckpt_loaded *out,
                          char why[CKPT_WHY_MAX]);

/* The identity in the header of the checkpoint file at path, into out ("": none), without
 * reading the rest: 0, or -1 when the file cannot be read or does not begin as a checkpoint of a
 * version this library reads (not checked further: the caller only looks for other runs'
 * files). */
int baton__ckpt_peek_identity(const char *path, char out[BATON_CHECKPOINT_IDENTITY_MAX + 1]);

/* 0 when a decoded checkpoint's identity (loaded) fits the engine's: the engine has none, or
 * both are equal; else BATON_EMISMATCH naming `what`, the directory `dir` and both. */
int baton__ckpt_identity_check(const baton_engine *engine, const char *who, const char *what,
                               const char *dir, const char *loaded);

/* 0 when the schemas of file (a decoded checkpoint's state) and engine are equal, else
 * BATON_EMISMATCH naming `what` and the first difference. */
int baton__ckpt_schema_check(const char *who, const char *what, const baton_state *file,
                             const baton_state *engine);

/* ---- checkpoint_write.c ---- */

/* Fills *l (a malloc'd layout) for a checkpoint of engine's state called name, taken now: in two
 * parts when it goes to a file, is large and the engine has a pool of two or more workers. false
 * when memory ran out (for the placement); free with baton__ckpt_layout_free, which takes NULL
 * too. */
bool baton__ckpt_layout_build(ckpt_layout *l, const baton_engine *engine, const char *name);
void baton__ckpt_layout_free(ckpt_layout *l);

/* Writes the checkpoint that *l describes (of one part: no directory) into mem, which has room
 * for l->size bytes. Cannot fail. */
void baton__ckpt_write_mem(ckpt_layout *l, unsigned char *mem);

/* Deletes the checkpoint file at path and its part, if any (errors ignored: see drop_oldest). */
void baton__ckpt_unlink(const char *path);

/* The bytes of the checkpoint file at path and of its part, if any (0: no such file). */
size_t baton__ckpt_files_size(const char *path);

/* Writes the checkpoint of engine->state that *l describes to path (and its part) through .tmp
 * files and renames (fsyncing files and directory with checkpoint_sync), over old's files when
 * old is not NULL (recycling; old->path is NULL once its files were taken, whatever the
 * result). BATON_EIO naming the file or the directory and the system's error, or
 * BATON_ENOMEM; no .tmp file is left behind. */
int baton__ckpt_write_file(const baton_engine *engine, const char *who, const char *path,
                           ckpt_layout *l, engine_checkpoint *old);

#endif /* BATON_ENGINE_CHECKPOINT_IMPL_H */
