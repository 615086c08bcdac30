/*
 * cli.h — what the files of the `baton` command share: the subcommands, error and progress
 * printing, argument parsing. The benchmarks are another program, `baton-bench` (bench/driver/),
 * which `baton bench` only starts.
 *
 * Internal to cli/; nothing here is part of the library's API, and cli/ uses only its public
 * headers. Output discipline: results go to stdout, everything else (progress, notes, errors) to
 * stderr.
 */
#ifndef BATON_CLI_H
#define BATON_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "baton/pool.h"

#if defined(__GNUC__) || defined(__clang__)
#define CLI_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define CLI_PRINTF(fmt_index, first_arg)
#endif

/* Exit statuses: 0 success, 1 a failed run or a wrong result, 2 a usage error. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* ---- subcommands (argv[0] is the subcommand's name) ---------------------------------------- */

int cli_demo(int argc, char **argv);
/* bench.c: `baton bench ...` runs baton-bench with the same arguments when this build has it. */
int cli_bench(int argc, char **argv);
int cli_space(int argc, char **argv);
/* demo_engine.c: the engine part of `baton demo`; true when every step verified. */
bool cli_demo_engine(baton_pool *pool, size_t agents, unsigned steps);
/* run.c: `baton run SCENARIO`, `baton run --resume DIR`. */
int cli_run(int argc, char **argv);
void cli_run_usage(FILE *out);
void cli_demo_usage(FILE *out);
void cli_bench_usage(FILE *out);
void cli_space_usage(FILE *out);

/* ---- util.c --------------------------------------------------------------------------------- */

/* Prints "baton: <what>: <BATON_E...> (<strerror>): <last error message>" to stderr, for a
 * failed library call that returned `err`. */
void cli_report_error(int err, const char *what);
/* A command's pool: n workers (0: one per CPU) with `flags`, threads named "baton-<i>"; reports
 * a failure. */
int cli_pool_create(unsigned workers, unsigned flags, baton_pool **out_pool);
/* Destroys a command's pool; keeps the first error in *inout_rc (reports a failure). */
void cli_pool_destroy(baton_pool *pool, int *inout_rc);
/* Prints "baton: <message>" to stderr. */
void cli_errorf(const char *fmt, ...) CLI_PRINTF(1, 2);

/* Parses a whole decimal string into [min, max]; returns false (and prints why) otherwise. */
bool cli_parse_unsigned(const char *option, const char *text, unsigned long min, unsigned long max,
                        unsigned long *out_value);
/* Matches `--name VALUE` or `--name=VALUE` at argv[*index]; on a match stores the value, advances
 * *index past what it used and returns 1; returns 0 when argv[*index] is another option, -1 (after
 * printing why) when the value is missing. */
int cli_option_value(int argc, char **argv, int *index, const char *name, const char **out_value);

/* Seconds of the monotonic clock, as a double. */
double cli_now_s(void);

/* Progress on stderr. cli_progress rewrites one line in place and prints only when stderr is a
 * terminal; cli_note always prints a full line (clearing a pending progress line first). */
void cli_progress(const char *fmt, ...) CLI_PRINTF(1, 2);
void cli_progress_clear(void);
void cli_note(const char *fmt, ...) CLI_PRINTF(1, 2);
bool cli_stderr_is_tty(void);

/* Where the demo makes its scratch directories: $TMPDIR, else /var/tmp (a disk,
 * where /tmp may be memory). */
const char *cli_temp_base(void);
/* Deletes dir and everything under it (links are not followed); 0, or -1 when something stayed. */
int cli_remove_tree(const char *dir);

#endif /* BATON_CLI_H */
