/*
 * cmdline.c — the messages, parsing, clock, progress line, pools and scratch directories that
 * `baton` and `baton-bench` share (cmdline.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baton/core.h"
#include "cmdline.h"

/* Set once by each program's main (cmdline_set_program). */
static const char *program = "baton";
static const char *pool_name = "baton";

void cmdline_set_program(const char *program_name, const char *pool_thread_name)
{
    program = program_name;
    pool_name = pool_thread_name;
}

void cmdline_report_error(int err, const char *what)
{
    const char *detail = baton_last_error_message();
    cmdline_progress_clear();
    if (detail != NULL && detail[0] != '\0')
        fprintf(stderr, "%s: %s: %s (%s): %s\n", program, what, baton_err_name(err),
                baton_strerror(err), detail);
    else
        fprintf(stderr, "%s: %s: %s (%s)\n", program, what, baton_err_name(err),
                baton_strerror(err));
}

void cmdline_errorf(const char *fmt, ...)
{
    va_list ap;
    cmdline_progress_clear();
    fprintf(stderr, "%s: ", program);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool cmdline_parse_unsigned(const char *option, const char *text, unsigned long min,
                            unsigned long max, unsigned long *out_value)
{
    char *end = NULL;
    unsigned long value;

    /* strtoul accepts leading blanks and a minus sign (it negates); neither is a count. */
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        cmdline_errorf("%s: expected a number, got '%s'", option, text ? text : "");
        return false;
    }
    errno = 0;
    value = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        cmdline_errorf("%s: expected a number, got '%s'", option, text);
        return false;
    }
    if (value < min || value > max) {
        cmdline_errorf("%s: %lu is out of range (%lu to %lu)", option, value, min, max);
        return false;
    }
    *out_value = value;
    return true;
}

int cmdline_option_value(int argc, char **argv, int *index, const char *name,
                         const char **out_value)
{
    const char *arg = argv[*index];
    size_t len = strlen(name);

    if (strncmp(arg, name, len) != 0)
        return 0;
    if (arg[len] == '=') {
        *out_value = arg + len + 1;
        *index += 1;
        return 1;
    }
    if (arg[len] != '\0')
        return 0;
    if (*index + 1 >= argc) {
        cmdline_errorf("%s needs a value", name);
        return -1;
    }
    *out_value = argv[*index + 1];
    *index += 2;
    return 1;
}

double cmdline_now_s(void)
{
    return (double)baton_now_ns() * 1e-9;
}

/* -1: not yet asked; 0 / 1 afterwards. */
static int stderr_tty = -1;
/* A progress line is on the screen and needs clearing before a full line is written. */
static bool progress_pending;

bool cmdline_stderr_is_tty(void)
{
    if (stderr_tty < 0)
        stderr_tty = isatty(STDERR_FILENO) ? 1 : 0;
    return stderr_tty == 1;
}

void cmdline_progress(const char *fmt, ...)
{
    va_list ap;
    if (!cmdline_stderr_is_tty())
        return;
    fputc('\r', stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\033[K", stderr); /* erase what is left of a longer previous line */
    fflush(stderr);
    progress_pending = true;
}

void cmdline_progress_clear(void)
{
    if (!progress_pending)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    progress_pending = false;
}

void cmdline_note(const char *fmt, ...)
{
    va_list ap;
    cmdline_progress_clear();
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

int cmdline_pool_create(unsigned workers, unsigned flags, baton_pool **out_pool)
{
    baton_pool_config config;
    char what[96];
    int rc;

    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.n_workers = workers;
    config.flags = flags;
    config.name = pool_name;
    rc = baton_pool_create(&config, out_pool);
    if (rc != 0) {
        snprintf(what, sizeof what, "creating a pool of %u workers", workers);
        cmdline_report_error(rc, what);
    }
    return rc;
}

void cmdline_pool_destroy(baton_pool *pool, int *inout_rc)
{
    int rc = baton_pool_destroy(pool);
    if (rc != 0) {
        cmdline_report_error(rc, "destroying a pool");
        if (*inout_rc == 0)
            *inout_rc = rc;
    }
}

const char *cmdline_temp_base(void)
{
    const char *env = getenv("TMPDIR");
    return env != NULL && env[0] != '\0' ? env : "/var/tmp";
}

int cmdline_remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    int rc = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) {
            rc = -1;
            continue;
        }
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            rc |= cmdline_remove_tree(path);
        else if (unlink(path) != 0)
            rc = -1;
    }
    closedir(d);
    return rmdir(dir) != 0 ? -1 : rc;
}
