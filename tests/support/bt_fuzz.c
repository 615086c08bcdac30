/*
 * bt_fuzz.c — the corpus replay of the fuzz targets' CTest drivers (bt_fuzz.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "support/bt_fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned long bt_fuzz_replay_corpus(const char *name, const char *dir,
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
