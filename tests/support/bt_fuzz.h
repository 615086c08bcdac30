/*
 * bt_fuzz.h — for the fuzz targets' CTest drivers: replays every file of a directory of saved
 * inputs (tests/fuzz/corpus/<target>, what earlier libFuzzer runs found) through the target, so
 * that what once reached deep into a reader, or once crashed it, is tried on every test run.
 * Include it after defining _POSIX_C_SOURCE (it uses opendir).
 */
#ifndef BT_SUPPORT_FUZZ_H
#define BT_SUPPORT_FUZZ_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Larger files are not what the corpus keeps; refusing them keeps a stray file from stalling. */
#define BT_FUZZ_CORPUS_FILE_MAX (1u << 20)

/* Feeds each regular file under dir to target and returns how many it fed; exits with a message
 * when the directory or one of its files cannot be read (a missing corpus is a broken build, not
 * an empty one). */
static unsigned long bt_fuzz_replay_corpus(const char *name, const char *dir,
                                        int (*target)(const uint8_t *, size_t))
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "%s: cannot open the corpus directory %s\n", name, dir);
        exit(1);
    }
    unsigned long fed = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        size_t path_size = strlen(dir) + 1 + strlen(entry->d_name) + 1;
        char *path = malloc(path_size);
        uint8_t *data = malloc(BT_FUZZ_CORPUS_FILE_MAX);
        if (path == NULL || data == NULL) {
            fprintf(stderr, "%s: out of memory replaying the corpus\n", name);
            exit(1);
        }
        snprintf(path, path_size, "%s/%s", dir, entry->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            fprintf(stderr, "%s: cannot open %s\n", name, path);
            exit(1);
        }
        size_t size = fread(data, 1, BT_FUZZ_CORPUS_FILE_MAX, f);
        int failed = ferror(f) || !feof(f);
        fclose(f);
        if (failed) {
            fprintf(stderr, "%s: cannot read %s (or it exceeds %u bytes)\n", name, path,
                    BT_FUZZ_CORPUS_FILE_MAX);
            exit(1);
        }
        /* An exact-size copy, so that ASan sees a read past the input's end. */
        uint8_t *exact = malloc(size > 0 ? size : 1);
        if (exact == NULL) {
            fprintf(stderr, "%s: out of memory replaying the corpus\n", name);
            exit(1);
        }
        if (size > 0)
            memcpy(exact, data, size);
        target(exact, size);
        free(exact);
        free(data);
        free(path);
        fed++;
    }
    closedir(d);
    return fed;
}

#endif /* BT_SUPPORT_FUZZ_H */
