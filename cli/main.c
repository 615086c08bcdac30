/*
 * main.c — the `baton` command's entry point: dispatches to a subcommand and prints the help.
 *
 * Subcommands live in a table, so adding one (run, space, ...) is one entry and one function.
 * Exit statuses: 0 success, 1 failure (an error, a wrong result), 2 usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include "cli.h"

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_command;

static int cli_help(int argc, char **argv);
static int cli_version(int argc, char **argv);

static const cli_command commands[] = {
    {"demo", "the motion rule serially, on a pool, sharded, with OpenMP; then the step engine",
     cli_demo},
    {"run", "run a scenario through the step engine (`baton help run`)", cli_run},
    {"space", "run a tuplespace script and print the space it leaves (`baton help space`)",
     cli_space},
    {"bench", "run baton-bench, the benchmarks, when this build has it (`baton help bench`)",
     cli_bench},
    {"version", "print the version", cli_version},
    {"help", "print this help, or a command's (`baton help bench`)", cli_help},
};

static void usage(FILE *out)
{
    fputs("usage: baton COMMAND [OPTIONS]\n\ncommands:\n", out);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fputs("\n`baton COMMAND --help` describes a command's options.\n", out);
}

static int cli_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "demo") == 0) {
        cli_demo_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "bench") == 0) {
        cli_bench_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "run") == 0) {
        cli_run_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "space") == 0) {
        cli_space_usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            printf("baton %s: %s\n", commands[i].name, commands[i].summary);
            return CLI_EXIT_OK;
        }
    }
    cmdline_errorf("help: unknown command '%s'", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}

static int cli_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        cmdline_errorf("version takes no arguments");
        return CLI_EXIT_USAGE;
    }
    printf("baton %d.%d.%d\n", BATON_VERSION_MAJOR, BATON_VERSION_MINOR, BATON_VERSION_PATCH);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    cmdline_set_program("baton", "baton");
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return cli_help(1, argv + 1);
    if (strcmp(argv[1], "--version") == 0)
        return cli_version(1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    cmdline_errorf("unknown command '%s'", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
