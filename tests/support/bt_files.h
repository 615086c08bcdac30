/*
 * bt_files.h — temporary directories for the tests that write files (the log, the durable space,
 * the engine's checkpoints): one made with mkdtemp under /tmp, and removed with everything in it
 * (bt_remove_tree asserts nothing, so a forked child may call it too).
 */
#ifndef BT_SUPPORT_FILES_H
#define BT_SUPPORT_FILES_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/bt_common.h"

/* A fresh directory /tmp/<prefix>-XXXXXX into path. */
static inline void bt_make_tmpdir(char *path, size_t cap, const char *prefix)
{
    snprintf(path, cap, "/tmp/%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(path));
}

static inline void bt_remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char child[1024];
            int length = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            if (length < 0 || (size_t)length >= sizeof child)
                continue; /* too long to be one of ours */
            struct stat st;
            if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
                bt_remove_tree(child);
            else
                unlink(child);
        }
        closedir(d);
    }
    rmdir(path);
}

#endif /* BT_SUPPORT_FILES_H */
