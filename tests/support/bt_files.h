/*
 * bt_files.h — temporary directories for the tests that write files (the log, the durable space,
 * the engine's checkpoints): one made with mkdtemp under /tmp, and removed with everything in it
 * (bt_remove_tree asserts nothing, so a forked child may call it too); whole files read and
 * written. Defined in bt_files.c.
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
void bt_make_tmpdir(char *path, size_t cap, const char *prefix);

/* Removes path and everything below it; asserts nothing (a forked child may call it). */
void bt_remove_tree(const char *path);

/* The bytes of the file at path (malloc'd: the caller frees them), its size in *size. Main
 * thread only (cmocka asserts). */
unsigned char *bt_read_file(const char *path, size_t *size);

/* Writes size bytes of data to the file at path, replacing it. Main thread only. */
void bt_write_file(const char *path, const unsigned char *data, size_t size);

#endif /* BT_SUPPORT_FILES_H */
