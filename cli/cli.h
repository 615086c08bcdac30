/*
 * cli.h — what the files of the `baton` command share: the subcommands. Error and progress
 * printing, argument parsing and the command's pools are bench/common/cmdline.h's, which
 * `baton-bench` (bench/driver/), the benchmarks' program that `baton bench` only starts, shares.
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
#include "cmdline.h"

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

#endif /* BATON_CLI_H */
