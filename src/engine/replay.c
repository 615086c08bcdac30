/*
 * replay.c — deterministic replay: a fingerprint per step, recorded or verified, and the file a
 * recording is saved in (include/baton/engine.h describes the format).
 *
 * Verification walks the recording with a cursor (verify_at) rather than indexing it by step,
 * so that a recording that skips or repeats a step is caught as a step mismatch instead of
 * being read past. Divergence, step mismatch and exhaustion are distinct codes because a user
 * reacts differently to each: a bug (divergence), a recording of another run or a checkpoint
 * restored at the wrong step (mismatch), a run longer than the recording (exhausted).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/alloc.h"
#include "core/error.h"
#include "engine/engine_impl.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* The file stores integers little-endian by copying them: a big-endian port needs swaps here. */
#error "replay.c assumes a little-endian host"
#endif

static const char replay_magic[8] = {'B', 'A', 'T', 'O', 'N', 'R', 'P', 'L'};
#define REPLAY_VERSION 1u
#define REPLAY_HEADER (8u + 4u + 8u)
#define REPLAY_ENTRY 16u

static int record(baton_engine *engine, uint64_t fingerprint)
{
    if (engine->n_recorded == engine->recording_cap &&
        !baton__grow_array((void **)&engine->recording, &engine->recording_cap,
                           engine->n_recorded + 1, sizeof *engine->recording))
        return baton__error(BATON_ENOMEM, "baton_engine_step: no memory to record step %llu",
                            (unsigned long long)engine->step);
    engine->recording[engine->n_recorded++] = (baton_replay_entry){engine->step, fingerprint};
    engine->fingerprints_recorded++;
    return 0;
}

static int verify(baton_engine *engine, uint64_t fingerprint)
{
    const char *who = "baton_engine_step";
    unsigned long long step = (unsigned long long)engine->step;
    if (engine->verify_at >= engine->n_recorded) {
        if (engine->n_recorded == 0)
            return baton__error(BATON_EEOF,
                                "%s: replay exhausted: no recorded fingerprint for step %llu (the "
                                "recording holds 0 steps)",
                                who, step);
        return baton__error(
            BATON_EEOF,
            "%s: replay exhausted: no recorded fingerprint for step %llu (the recording holds "
            "%zu steps, the last for step %llu)",
            who, step, engine->n_recorded,
            (unsigned long long)engine->recording[engine->n_recorded - 1].step);
    }
    const baton_replay_entry *want = &engine->recording[engine->verify_at];
    if (want->step != engine->step)
        return baton__error(BATON_ERANGE,
                            "%s: replay step mismatch: the recording's next entry (%zu) is for "
                            "step %llu, the engine ran step %llu",
                            who, engine->verify_at, (unsigned long long)want->step, step);
    engine->verify_at++;
    if (want->fingerprint != fingerprint)
        return baton__error(BATON_EMISMATCH,
                            "%s: replay divergence at step %llu: fingerprint 0x%016llx, recorded "
                            "0x%016llx",
                            who, step, (unsigned long long)fingerprint,
                            (unsigned long long)want->fingerprint);
    engine->fingerprints_verified++;
    return 0;
}

int baton__engine_replay_step(baton_engine *engine, uint64_t *fingerprint)
{
#ifdef BATON_HAVE_MPI
    int rc = engine->mpi != NULL
                 ? baton__engine_mpi_fingerprint(engine, fingerprint)
                 : baton_state_fingerprint(engine->state, engine->pool, fingerprint);
#else
    int rc = baton_state_fingerprint(engine->state, engine->pool, fingerprint);
#endif
    if (rc != 0)
        return rc;
    return engine->replay == BATON_REPLAY_RECORD ? record(engine, *fingerprint)
                                                 : verify(engine, *fingerprint);
}

int baton_engine_recording(const baton_engine *engine, const baton_replay_entry **out,
                           size_t *out_n)
{
    if (engine == NULL || out == NULL || out_n == NULL)
        return baton__error(BATON_EINVAL, "baton_engine_recording: NULL argument");
    *out = engine->recording;
    *out_n = engine->n_recorded;
    return 0;
}

/* ---- the file -------------------------------------------------------------------------------- */

static int io_error(const char *who, const char *what, const char *path)
{
    return baton__error(BATON_EIO, "%s: %s %s: %s", who, what, path, strerror(errno));
}

int baton_engine_replay_save(const baton_engine *engine, const char *path)
{
    const char *who = "baton_engine_replay_save";
    if (engine == NULL || path == NULL)
        return baton__error(BATON_EINVAL, "%s: %s is NULL", who,
                            engine == NULL ? "engine" : "path");
    size_t size = REPLAY_HEADER + engine->n_recorded * REPLAY_ENTRY + 8;
    unsigned char *buf = baton__malloc(size);
    if (buf == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory for %zu bytes", who, size);
    uint32_t version = REPLAY_VERSION;
    uint64_t count = engine->n_recorded;
    memcpy(buf, replay_magic, 8);
    memcpy(buf + 8, &version, 4);
    memcpy(buf + 12, &count, 8);
    for (size_t i = 0; i < engine->n_recorded; i++) {
        memcpy(buf + REPLAY_HEADER + i * REPLAY_ENTRY, &engine->recording[i].step, 8);
        memcpy(buf + REPLAY_HEADER + i * REPLAY_ENTRY + 8, &engine->recording[i].fingerprint, 8);
    }
    uint64_t sum = XXH3_64bits(buf, size - 8);
    memcpy(buf + size - 8, &sum, 8);

    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        baton__free(buf);
        return baton__error(BATON_EINVAL, "%s: path %s is too long", who, path);
    }
    int rc = 0;
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        rc = io_error(who, "cannot create", tmp);
    } else {
        bool ok = fwrite(buf, 1, size, f) == size && fflush(f) == 0 && fsync(fileno(f)) == 0;
        rc = ok ? 0 : io_error(who, "cannot write", tmp);
        if (fclose(f) != 0 && rc == 0)
            rc = io_error(who, "cannot close", tmp);
        if (rc == 0 && rename(tmp, path) != 0)
            rc = io_error(who, "cannot rename the new recording to", path);
        if (rc != 0)
            (void)remove(tmp);
    }
    baton__free(buf);
    return rc;
}

/* Reads the whole file at path into a fresh buffer. */
static int read_file(const char *who, const char *path, unsigned char **out, size_t *out_size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return io_error(who, "cannot open", path);
    unsigned char *buf = NULL;
    size_t size = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (size == cap && !baton__grow_array((void **)&buf, &cap, size + 4096, 1)) {
            rc = baton__error(BATON_ENOMEM, "%s: no memory to read %s", who, path);
            break;
        }
        size_t got = fread(buf + size, 1, cap - size, f);
        size += got;
        if (got == 0) {
            if (ferror(f))
                rc = io_error(who, "cannot read", path);
            break;
        }
    }
    fclose(f);
    if (rc != 0) {
        baton__free(buf);
        return rc;
    }
    *out = buf;
    *out_size = size;
    return 0;
}

int baton_engine_replay_load(baton_engine *engine, const char *path)
{
    const char *who = "baton_engine_replay_load";
    if (engine == NULL || path == NULL)
        return baton__error(BATON_EINVAL, "%s: %s is NULL", who,
                            engine == NULL ? "engine" : "path");
    unsigned char *buf = NULL;
    size_t size = 0;
    int rc = read_file(who, path, &buf, &size);
    if (rc != 0)
        return rc;
    uint32_t version = 0;
    uint64_t count = 0, sum = 0;
    if (size < REPLAY_HEADER + 8 || memcmp(buf, replay_magic, 8) != 0) {
        rc = baton__error(BATON_EIO,
                          "%s: %s is not a replay recording (%zu bytes, no BATONRPL "
                          "header)",
                          who, path, size);
    } else {
        memcpy(&version, buf + 8, 4);
        memcpy(&count, buf + 12, 8);
        memcpy(&sum, buf + size - 8, 8);
        if (version != REPLAY_VERSION)
            rc = baton__error(BATON_EIO, "%s: %s has version %u, this library reads %u", who, path,
                              version, REPLAY_VERSION);
        else if (count > (size - REPLAY_HEADER - 8) / REPLAY_ENTRY ||
                 size != REPLAY_HEADER + count * REPLAY_ENTRY + 8)
            rc = baton__error(BATON_EIO,
                              "%s: %s is truncated or too long: %zu bytes for %llu "
                              "entries",
                              who, path, size, (unsigned long long)count);
        else if (XXH3_64bits(buf, size - 8) != sum)
            rc = baton__error(BATON_EIO, "%s: %s is damaged: its checksum does not match", who,
                              path);
    }
    baton_replay_entry *entries = NULL;
    if (rc == 0 && count > 0) {
        entries = baton__malloc((size_t)count * sizeof *entries);
        if (entries == NULL)
            rc = baton__error(BATON_ENOMEM, "%s: no memory for %llu entries", who,
                              (unsigned long long)count);
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        memcpy(&entries[i].step, buf + REPLAY_HEADER + i * REPLAY_ENTRY, 8);
        memcpy(&entries[i].fingerprint, buf + REPLAY_HEADER + i * REPLAY_ENTRY + 8, 8);
    }
    baton__free(buf);
    if (rc != 0) {
        baton__free(entries);
        return rc;
    }
    baton__free(engine->recording);
    engine->recording = entries;
    engine->n_recorded = (size_t)count;
    engine->recording_cap = (size_t)count;
    size_t at = 0;
    while (at < engine->n_recorded && engine->recording[at].step < engine->step)
        at++;
    engine->verify_at = at;
    return 0;
}
