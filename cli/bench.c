/*
 * bench.c — `baton bench [SUITE] [OPTIONS]`: the benchmarks are another program, baton-bench,
 * built only with -DBATON_BUILD_BENCH=ON and never installed (bench/driver/). This command runs
 * it with the same arguments when this build tree has it, and otherwise says how to build it.
 *
 * Which program: $BATON_BENCH when set and not empty, else the path this build would put it at
 * (BATON_BENCH_PATH, defined by cli/CMakeLists.txt only when BATON_BUILD_BENCH is on). The
 * program replaces this process (execv), so its output and exit status are the command's.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The path of baton-bench this command runs, or NULL when there is none to run. */
static const char *bench_program(void)
{
    const char *env = getenv("BATON_BENCH");
    if (env != NULL && env[0] != '\0')
        return env;
#ifdef BATON_BENCH_PATH
    return BATON_BENCH_PATH;
#else
    return NULL;
#endif
}

static void how_to_build(FILE *out)
{
    fputs("The benchmarks are a separate program, baton-bench, built only with\n"
          "-DBATON_BUILD_BENCH=ON and never installed. Build and run every suite with\n"
          "  make bench                         (BENCH_ARGS=--quick for the short run)\n"
          "or configure a build tree with\n"
          "  cmake -S . -B build -DBATON_BUILD_BENCH=ON && cmake --build build\n"
          "and run build/bench/baton-bench SUITE [OPTIONS] (baton-bench --help lists the suites\n"
          "and options). `baton bench ARGS...` runs that program with the same arguments when\n"
          "this build has it (or the one $BATON_BENCH names).\n",
          out);
}

void cli_bench_usage(FILE *out)
{
    const char *program = bench_program();
    fputs("usage: baton bench [SUITE] [OPTIONS]\n\n", out);
    how_to_build(out);
    if (program != NULL)
        fprintf(out, "\nThis build runs %s.\n", program);
}

int cli_bench(int argc, char **argv)
{
    const char *program = bench_program();

    (void)argc;
    if (program == NULL) {
        cmdline_errorf("bench: this build has no baton-bench");
        how_to_build(stderr);
        return CLI_EXIT_USAGE;
    }
    /* argv[0] is "bench" and argv[argc] is NULL (main's argv): the same arguments follow it. */
    argv[0] = (char *)program;
    execv(program, argv);
    cmdline_errorf("bench: cannot run %s: %s", program, strerror(errno));
    how_to_build(stderr);
    return CLI_EXIT_USAGE;
}
