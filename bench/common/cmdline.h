/*
 * cmdline.h — what the two programs, `baton` (cli/) and `baton-bench` (bench/driver/), print and
 * parse the same way: error messages, strict number and option parsing, the clock, a progress
 * line on stderr, a command's pool, scratch directories. Built into the static library
 * baton_tools (bench/CMakeLists.txt) with pool_install.c, motion_store.c and peer_process.c, on
 * the library's public headers only.
 *
 * Each program's main calls cmdline_set_program once, first: it names the program in every
 * message ("baton: ..." or "baton-bench: ...") and its pools' threads. Not thread-safe: the
 * programs print and parse on one thread.
 *
 * The progress line is rewritten in place ("\r...\033[K") only when stderr is a terminal; when it
 * is a file or a pipe, only cmdline_note's full lines are written, so logs stay readable.
 */
#ifndef BATON_BENCH_CMDLINE_H
#define BATON_BENCH_CMDLINE_H

#include <stdbool.h>

#include "baton/pool.h"

#if defined(__GNUC__) || defined(__clang__)
#define CMDLINE_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define CMDLINE_PRINTF(fmt_index, first_arg)
#endif

/* Sets the name messages start with (`program`, "baton" until called) and the name of the
 * threads cmdline_pool_create makes (`pool_name`-<i>, "baton" until called). Both strings must
 * outlive every later call. */
void cmdline_set_program(const char *program, const char *pool_name);

/* Prints "<program>: <what>: <BATON_E...> (<strerror>): <last error message>" to stderr, for a
 * failed library call that returned `err`. */
void cmdline_report_error(int err, const char *what);
/* Prints "<program>: <message>" to stderr. */
void cmdline_errorf(const char *fmt, ...) CMDLINE_PRINTF(1, 2);

/* Parses a whole decimal string into [min, max]; returns false (and prints why) otherwise. */
bool cmdline_parse_unsigned(const char *option, const char *text, unsigned long min,
                            unsigned long max, unsigned long *out_value);
/* Matches `--name VALUE` or `--name=VALUE` at argv[*index]; on a match stores the value, advances
 * *index past what it used and returns 1; returns 0 when argv[*index] is another option, -1 (after
 * printing why) when the value is missing. */
int cmdline_option_value(int argc, char **argv, int *index, const char *name,
                         const char **out_value);

/* Seconds of the monotonic clock, as a double. */
double cmdline_now_s(void);

/* Progress on stderr. cmdline_progress rewrites one line in place and prints only when stderr is
 * a terminal; cmdline_note always prints a full line (clearing a pending progress line first). */
void cmdline_progress(const char *fmt, ...) CMDLINE_PRINTF(1, 2);
void cmdline_progress_clear(void);
void cmdline_note(const char *fmt, ...) CMDLINE_PRINTF(1, 2);
bool cmdline_stderr_is_tty(void);

/* A command's pool: n workers (0: one per CPU) with `flags`, threads named after the program
 * (cmdline_set_program); reports a failure. */
int cmdline_pool_create(unsigned workers, unsigned flags, baton_pool **out_pool);
/* Destroys a command's pool; keeps the first error in *inout_rc (reports a failure). */
void cmdline_pool_destroy(baton_pool *pool, int *inout_rc);

/* Where scratch directories go: $TMPDIR, else /var/tmp (a disk, where /tmp may be memory). */
const char *cmdline_temp_base(void);
/* Deletes dir and everything under it (links are not followed); 0, or -1 when something stayed. */
int cmdline_remove_tree(const char *dir);

#endif /* BATON_BENCH_CMDLINE_H */
