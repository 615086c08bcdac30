/*
 * bt_fuzz.h — for the fuzz targets' CTest drivers: replays every file of a directory of saved
 * inputs (tests/fuzz/corpus/<target>, what earlier libFuzzer runs found) through the target, so
 * that what once reached deep into a reader, or once crashed it, is tried on every test run.
 * Defined in bt_fuzz.c.
 */
#ifndef BT_SUPPORT_FUZZ_H
#define BT_SUPPORT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Larger files are not what the corpus keeps; refusing them keeps a stray file from stalling. */
#define BT_FUZZ_CORPUS_FILE_MAX (1u << 20)

/* Feeds each regular file under dir to target and returns how many it fed; exits with a message
 * when the directory or one of its files cannot be read (a missing corpus is a broken build, not
 * an empty one). */
unsigned long bt_fuzz_replay_corpus(const char *name, const char *dir,
                                    int (*target)(const uint8_t *, size_t));

#endif /* BT_SUPPORT_FUZZ_H */
