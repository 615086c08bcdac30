/*
 * checkpoint.c — checkpoints of an engine's state: taken on demand or by the policy, kept in
 * memory or in files, restored in the same process or resumed in a new one after a crash
 * (include/baton/engine.h). The format, its writer and its checked reader, and the names of
 * checkpoint files are in checkpoint_format.c (checkpoint_impl.h).
 *
 * DESIGN
 *  - Restore and resume touch the engine only once a checkpoint was decoded and passed every
 *    check (checkpoint_format.c) and its schema equals the engine's (phases refer to columns by
 *    index), so an error leaves it as it was. The new state is swapped in by contents (struct
 *    baton_state is plain data, state_impl.h), so the pointer baton_engine_state returned
 *    stays valid.
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
 *    across crashes and restarts instead of leaving them on disk forever, and deletes what a
 *    crash left unfinished there (.tmp files, a part without its main file).
 *  - Identity. A checkpoint directory outlives the run that filled it, and the next run in it
 *    may be another scenario's: resuming its files would mix two runs without an error (the
 *    schema is the same). Every checkpoint carries the engine's checkpoint_identity, and an
 *    engine with one refuses a file of another (or none) at restore and resume, and a
 *    directory holding one at create (reading only each file's header), so that it neither
 *    mixes runs nor writes its checkpoints among another run's. Refusing, rather than
 *    deleting the other run's files to start clean, keeps data the caller may still want.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "engine/checkpoint_impl.h"
#include "engine/engine_impl.h"
#include "engine/state_impl.h"

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

/* A fresh copy of dir, or under the MPI executor of dir/rank-R: every rank writes and reads
 * checkpoints of its own partitions' state, in a directory of its own. */
static char *rank_dir(const baton_engine *engine, const char *dir)
{
    size_t len = strlen(dir), cap = len + 32;
    char *out = baton__malloc(cap);
    if (out == NULL)
        return NULL;
    if (engine->mpi != NULL)
        snprintf(out, cap, "%s/rank-%u", dir, engine->rank);
    else
        memcpy(out, dir, len + 1);
    return out;
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
    const char *id = cfg->checkpoint_identity;
    size_t id_len = id != NULL ? strlen(id) : 0;
    if (id_len > BATON_CHECKPOINT_IDENTITY_MAX)
        return baton__error(BATON_EINVAL,
                            "%s: checkpoint_identity of %zu bytes (at most %u): \"%.40s...\"", who,
                            id_len, BATON_CHECKPOINT_IDENTITY_MAX, id);
    for (size_t i = 0; i < id_len; i++)
        if (id[i] < ' ' || id[i] > '~')
            return baton__error(BATON_EINVAL,
                                "%s: checkpoint_identity has byte 0x%02x at %zu (printable "
                                "ASCII only, ' ' to '~')",
                                who, (unsigned)(unsigned char)id[i], i);
    if (id_len > 0) {
        if ((engine->checkpoint_identity = baton__malloc(id_len + 1)) == NULL)
            return baton__error(BATON_ENOMEM, "%s: no memory for checkpoint_identity", who);
        memcpy(engine->checkpoint_identity, id, id_len + 1);
    }
    if (cfg->checkpoint_dir == NULL)
        return 0;
    size_t len = strlen(cfg->checkpoint_dir);
    char *dir = len == 0 ? NULL : rank_dir(engine, cfg->checkpoint_dir);
    if (dir == NULL) {
        baton__free(engine->checkpoint_identity);
        engine->checkpoint_identity = NULL;
        return len == 0
                   ? baton__error(BATON_EINVAL, "%s: checkpoint_dir is empty (NULL: no files)", who)
                   : baton__error(BATON_ENOMEM, "%s: no memory for checkpoint_dir", who);
    }
    len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') /* "d/" would name files "d//ckpt-..." */
        dir[--len] = '\0';
    if (!make_dirs(dir)) {
        int rc = baton__ckpt_io_error(who, "cannot create the checkpoint directory", dir);
        baton__free(dir);
        baton__free(engine->checkpoint_identity);
        engine->checkpoint_identity = NULL;
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
    baton__free(engine->checkpoint_identity);
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
            baton__ckpt_unlink(engine->checkpoints[i].path);
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
    if (l != NULL)
        l->placement = NULL;
    if (l == NULL || grown == NULL || !baton__ckpt_layout_build(l, engine, name)) {
        rc = baton__error(BATON_ENOMEM, "%s: no memory for checkpoint \"%s\"", who, name);
    } else {
        cp.size = l->size;
        if (engine->checkpoint_dir != NULL) {
            cp.path = baton__ckpt_file_path(engine->checkpoint_dir, engine->step, name);
        } else if (old != NULL && old->bytes != NULL && old->size >= l->size) {
            cp.bytes = old->bytes; /* recycled (see DESIGN) */
            old->bytes = NULL;
        } else {
            cp.bytes = baton__malloc(l->size);
        }
        if (cp.path == NULL && cp.bytes == NULL)
            rc = baton__error(BATON_ENOMEM, "%s: no memory for checkpoint \"%s\" (%zu bytes)", who,
                              name, l->size);
        else if (cp.path != NULL)
            rc = baton__ckpt_write_file(engine, who, cp.path, l, old);
        else
            baton__ckpt_write_mem(l, cp.bytes); /* into memory: cannot fail */
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
    baton__ckpt_layout_free(l);
    return rc;
}

int baton_engine_checkpoint(baton_engine *engine, const char *name)
{
    const char *who = "baton_engine_checkpoint";
    if (engine == NULL)
        return baton__error(BATON_EINVAL, "%s: engine is NULL", who);
    if (name == NULL)
        name = "manual";
    if (!baton__ckpt_name_ok(name, strlen(name)))
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

/* ---- restore -------------------------------------------------------------------------------- */

/* Whether a loaded checkpoint fits this engine beyond its schema: a distributed one (a
 * placement) only an MPI engine of as many ranks, whose share of the rows it holds; then its
 * partitions' offsets, into *out_local (NULL without a placement). */
static int check_placement(const baton_engine *engine, const char *who, const char *what,
                           const ckpt_loaded *ld, size_t **out_local)
{
    *out_local = NULL;
    if (ld->n_placement == 0)
        return 0;
    if (engine->mpi == NULL)
        return baton__error(BATON_EMISMATCH,
                            "%s: %s holds one MPI rank's share of a distributed state, not a "
                            "state this (local) engine can run",
                            who, what);
    size_t own = 0;
    for (size_t i = 0; i < ld->n_placement; i++) {
        if (ld->placement[i].worker >= engine->workers)
            return baton__error(BATON_EMISMATCH,
                                "%s: %s places partition %zu on rank %u, but there are %u ranks",
                                who, what, i, ld->placement[i].worker, engine->workers);
        if (ld->placement[i].worker == engine->rank)
            own += ld->placement[i].end - ld->placement[i].begin;
    }
    if (own != baton_state_rows(ld->state))
        return baton__error(BATON_EMISMATCH,
                            "%s: %s holds %zu rows where its placement gives rank %u %zu (another "
                            "rank's file?)",
                            who, what, baton_state_rows(ld->state), engine->rank, own);
    *out_local = baton__placement_offsets(ld->placement, ld->n_placement);
    if (*out_local == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory for the placement", who);
    return 0;
}

/* Swaps the loaded state in (with its placement and offsets `local`, taken over) and moves
 * the step counter and the replay cursor. Cannot fail. */
static void install(baton_engine *engine, ckpt_loaded *ld, size_t *local)
{
    baton_state old = *engine->state;
    *engine->state = *ld->state;
    *ld->state = old; /* the old contents, freed with ld */
    baton__engine_adopt_placement(engine, ld->placement, local, ld->n_placement);
    ld->placement = NULL;
    ld->n_placement = 0;
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

/* Under MPI, every rank's result of a restore or resume (rc: this rank's, with the step and
 * placement it would install): the lowest failing rank's error, or 0 when all can install. */
static int agree_install(baton_engine *engine, int rc, const ckpt_loaded *ld)
{
#ifdef BATON_HAVE_MPI
    if (engine->mpi != NULL)
        return baton__engine_mpi_agree_resume(engine, rc, rc == 0 ? ld->step : 0,
                                              rc == 0 ? ld->placement_hash : 0);
#else
    (void)engine;
    (void)ld;
#endif
    return rc;
}

int baton_engine_restore(baton_engine *engine, const char *name)
{
    const char *who = "baton_engine_restore";
    if (engine == NULL)
        return baton__error(BATON_EINVAL, "%s: engine is NULL", who);
    int rc = 0;
    if (name != NULL && !baton__ckpt_name_ok(name, strlen(name)))
        rc = baton__error(BATON_EINVAL, "%s: bad checkpoint name \"%.*s\"", who, 80, name);
    const engine_checkpoint *cp = NULL;
    for (size_t i = engine->n_checkpoints; rc == 0 && i-- > 0 && cp == NULL;)
        if (name == NULL || strcmp(engine->checkpoints[i].name, name) == 0)
            cp = &engine->checkpoints[i];
    if (rc == 0 && cp == NULL)
        rc = baton__error(BATON_ENOTFOUND, "%s: no checkpoint%s%s%s (%zu kept)", who,
                          name != NULL ? " named \"" : "", name != NULL ? name : "",
                          name != NULL ? "\"" : "", engine->n_checkpoints);
    char what[BATON_CHECKPOINT_NAME_MAX + 64], why[CKPT_WHY_MAX];
    ckpt_loaded ld = {0};
    size_t *local = NULL;
    if (rc == 0) {
        snprintf(what, sizeof what, "checkpoint \"%s\" of step %llu", cp->name,
                 (unsigned long long)cp->step);
        rc = cp->bytes != NULL ? baton__ckpt_decode_mem(who, cp->bytes, cp->size, &ld, why)
                               : baton__ckpt_load_file(who, cp->path, &ld, why);
        if (rc == BATON_EIO)
            rc = baton__error(BATON_EIO, "%s: %s (%s): %s", who, what,
                              cp->path != NULL ? cp->path : "in memory", why);
    }
    if (rc == 0)
        rc = baton__ckpt_schema_check(who, what, ld.state, engine->state);
    if (rc == 0)
        rc = baton__ckpt_identity_check(
            engine, who, what, cp->path != NULL ? engine->checkpoint_dir : "memory", ld.identity);
    if (rc == 0)
        rc = check_placement(engine, who, what, &ld, &local);
    if ((rc = agree_install(engine, rc, &ld)) == 0) {
        install(engine, &ld, local);
        local = NULL;
    }
    baton__free(local);
    baton__ckpt_loaded_free(&ld);
    return rc;
}

/* ---- resume --------------------------------------------------------------------------------- */

typedef char ckpt_file[CKPT_FILE_CAP];

static int compare_desc(const void *a, const void *b)
{
    return strcmp((const char *)b, (const char *)a);
}

/* The checkpoint file names in dir, newest first (*out: free with baton__free). */
static int list_dir(const char *who, const char *dir, ckpt_file **out, size_t *out_n)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return baton__ckpt_io_error(who, "cannot open the directory", dir);
    ckpt_file *names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        uint64_t step;
        char name[BATON_CHECKPOINT_NAME_MAX + 1];
        if (e == NULL && errno != 0)
            rc = baton__ckpt_io_error(who, "cannot read the directory", dir);
        if (e == NULL)
            break;
        if (!baton__ckpt_parse_file_name(e->d_name, &step, name))
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

/* Makes names[from ..] (newest first, the one restored first) the engine's kept checkpoints,
 * oldest first, then applies retention. On ENOMEM the list stays. */
static void adopt(baton_engine *engine, ckpt_file *names, size_t from, size_t n)
{
    size_t count = n - from;
    engine_checkpoint *list = baton__calloc(count, sizeof *list);
    for (size_t i = 0; list != NULL && i < count; i++) {
        engine_checkpoint *cp = &list[count - 1 - i];
        (void)baton__ckpt_parse_file_name(names[from + i], &cp->step, cp->name);
        cp->path = baton__ckpt_file_path(engine->checkpoint_dir, cp->step, cp->name);
        if (cp->path != NULL)
            cp->size = baton__ckpt_files_size(cp->path);
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

/* Deletes what a crash leaves in the engine's own directory: unfinished writes (checkpoint
 * names plus ".tmp") and parts whose main file is gone (the crash came between the part's
 * rename and the main file's). Best effort: what cannot be listed or deleted stays, ignored
 * by every reader as before. */
static void sweep_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    size_t dir_len = strlen(dir), suffix = strlen(CKPT_PART_SUFFIX);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        bool tmp = n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0;
        bool part = n > suffix && strcmp(e->d_name + n - suffix, CKPT_PART_SUFFIX) == 0;
        if (strncmp(e->d_name, "ckpt-", 5) != 0 || (!tmp && !part))
            continue;
        char *path = baton__malloc(dir_len + 1 + n + 1);
        if (path == NULL)
            break;
        snprintf(path, dir_len + 1 + n + 1, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (tmp) {
            (void)unlink(path);
        } else {
            path[dir_len + 1 + n - suffix] = '\0'; /* its main file */
            if (stat(path, &sb) != 0 && errno == ENOENT) {
                path[dir_len + 1 + n - suffix] = CKPT_PART_SUFFIX[0];
                (void)unlink(path);
            }
        }
        baton__free(path);
    }
    closedir(d);
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
    size_t n = 0, used = 0, found = 0, *local = NULL;
    ckpt_loaded ld = {0};
    char *own = rank_dir(engine, dir), *path = NULL; /* under MPI, this rank's directory */
    char skipped[400] = "", why[CKPT_WHY_MAX];
    int rc = own == NULL ? baton__error(BATON_ENOMEM, "%s: no memory", who)
                         : list_dir(who, own, &names, &n);
    size_t cap = own != NULL ? strlen(own) + 1 + CKPT_FILE_CAP : 0;
    if (rc == 0)
        rc = (path = baton__malloc(cap)) == NULL ? baton__error(BATON_ENOMEM, "%s: no memory", who)
                                                 : BATON_ENOTFOUND;
    /* Newest first: the first file that passes every check is the one. */
    for (size_t i = 0; i < n && rc == BATON_ENOTFOUND; i++) {
        snprintf(path, cap, "%s/%s", own, names[i]);
        int lrc = baton__ckpt_load_file(who, path, &ld, why);
        if (lrc == BATON_EIO && used < sizeof skipped) /* skipped, and named if none is valid */
            used += (size_t)snprintf(skipped + used, sizeof skipped - used, "%s%s (%s)",
                                     used > 0 ? ", " : "", names[i], why);
        else if (lrc != BATON_EIO)
            rc = lrc != 0 ? lrc : baton__ckpt_schema_check(who, path, ld.state, engine->state);
        if (lrc == 0 && rc == 0) /* another run's checkpoint stops the search, as a schema does */
            rc = baton__ckpt_identity_check(engine, who, names[i], own, ld.identity);
        if (lrc == 0 && rc == 0)
            rc = check_placement(engine, who, path, &ld, &local);
        if (lrc == 0 && rc == 0)
            found = i;
        else
            baton__ckpt_loaded_free(&ld);
    }
    if (rc == BATON_ENOTFOUND && n == 0)
        rc = baton__error(BATON_ENOTFOUND, "%s: %s holds no checkpoint file", who, own);
    else if (rc == BATON_ENOTFOUND)
        rc = baton__error(BATON_ENOTFOUND,
                          "%s: %s holds no valid checkpoint: %zu file%s failed the check: %s", who,
                          own, n, n == 1 ? "" : "s", skipped);
    /* Under MPI every rank installs, or none does. */
    if ((rc = agree_install(engine, rc, &ld)) == 0) {
        install(engine, &ld, local);
        local = NULL;
        if (same_dir(engine->checkpoint_dir, own)) { /* bookkeeping: resumed either way */
            adopt(engine, names, found, n);
            sweep_leftovers(own);
        }
    }
    baton__ckpt_loaded_free(&ld);
    baton__free(local);
    baton__free(path);
    baton__free(names);
    baton__free(own);
    return rc;
}

int baton__engine_checkpoint_check_dir(baton_engine *engine)
{
    const char *who = "baton_engine_create";
    if (engine->checkpoint_identity == NULL || engine->checkpoint_dir == NULL)
        return 0;
    ckpt_file *names = NULL;
    size_t n = 0;
    int rc = list_dir(who, engine->checkpoint_dir, &names, &n);
    char *path = NULL, id[BATON_CHECKPOINT_IDENTITY_MAX + 1];
    size_t cap = strlen(engine->checkpoint_dir) + 1 + CKPT_FILE_CAP;
    if (rc == 0 && n > 0 && (path = baton__malloc(cap)) == NULL)
        rc = baton__error(BATON_ENOMEM, "%s: no memory", who);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        snprintf(path, cap, "%s/%s", engine->checkpoint_dir, names[i]);
        /* A file that is no readable checkpoint is not a run's: resume skips it too. */
        if (baton__ckpt_peek_identity(path, id) == 0)
            rc = baton__ckpt_identity_check(engine, who, names[i], engine->checkpoint_dir, id);
    }
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
                                         engine->checkpoints[i].size, engine->checkpoints[i].path};
    *out_n = engine->n_checkpoints;
    return 0;
}
