/*
 * peer_process.c — runs a benchmark peer (another runtime's implementation of a case, a separate
 * program: the peers of bench/peers/, and baton-peer-omp_store, which `baton demo` runs too) and
 * reads its answer. The protocol is in peer_process.h.
 *
 * The peer is started with posix_spawn, reading its stdout through a pipe whose ends are
 * close-on-exec in both processes (the child's copy on fd 1 is made by dup2, which clears it).
 * Nothing here prints: a failure is described in the caller's buffer, so that `baton` and
 * `baton-bench` each report it in their own format.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "peer_process.h"

extern char **environ;

/* A well-formed answer is about 50 bytes; more than this is not the protocol. */
#define PEER_OUTPUT_MAX 1024
#define PEER_MAX_ARGS 8

bool peer_process_path(const char *dir, const char *name, char *buf, size_t buf_size)
{
    int n = snprintf(buf, buf_size, "%s/baton-peer-%s", dir, name);
    return n > 0 && (size_t)n < buf_size;
}

bool peer_process_available(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Parses "time_s=<float> check=<u64>" followed by at most one newline. */
static bool parse_answer(const char *text, double *out_time_s, uint64_t *out_check)
{
    const char *p = text;
    char *end;
    double t;
    unsigned long long check;

    if (strncmp(p, "time_s=", 7) != 0)
        return false;
    p += 7;
    errno = 0;
    t = strtod(p, &end);
    if (end == p || errno != 0 || !isfinite(t) || t < 0)
        return false;
    p = end;
    if (strncmp(p, " check=", 7) != 0)
        return false;
    p += 7;
    if (*p < '0' || *p > '9') /* strtoull would accept a sign or blanks */
        return false;
    errno = 0;
    check = strtoull(p, &end, 10);
    if (errno != 0)
        return false;
    p = end;
    if (*p == '\r')
        p++;
    if (*p == '\n')
        p++;
    if (*p != '\0')
        return false;
    *out_time_s = t;
    *out_check = (uint64_t)check;
    return true;
}

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Writes "<name>: <message>" into why[why_size] (truncated to fit); returns -1, the failure. */
static int fail(char *why, size_t why_size, const char *name, const char *fmt, ...)
    PEER_PROCESS_PRINTF(4, 5);

static int fail(char *why, size_t why_size, const char *name, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (why_size == 0)
        return -1;
    n = snprintf(why, why_size, "%s: ", name);
    if (n >= 0 && (size_t)n < why_size) {
        va_start(ap, fmt);
        vsnprintf(why + n, why_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    return flags >= 0 && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == 0;
}

/* Reads the child's stdout until EOF or the deadline. Returns the bytes kept (at most
 * PEER_OUTPUT_MAX, NUL-terminated) and sets *out_overflow / *out_timed_out. */
static size_t read_output(int fd, double deadline, char *buf, bool *out_overflow,
                          bool *out_timed_out)
{
    size_t used = 0;
    *out_overflow = false;
    *out_timed_out = false;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        double left = deadline - monotonic_s();
        char chunk[256];
        ssize_t got;
        int ready;

        if (left <= 0) {
            *out_timed_out = true;
            break;
        }
        ready = poll(&pfd, 1, (int)(fmin(left, 3600.0) * 1000) + 1);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            break;
        if (ready == 0)
            continue; /* the deadline check above ends the wait */
        got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break; /* EOF: the peer closed stdout (usually by exiting) */
        if (used + (size_t)got > PEER_OUTPUT_MAX) {
            *out_overflow = true;
            continue; /* keep draining so the peer does not block on a full pipe */
        }
        memcpy(buf + used, chunk, (size_t)got);
        used += (size_t)got;
    }
    buf[used] = '\0';
    return used;
}

int peer_process_run(const char *path, const char *const *args, double timeout_s,
                     double *out_time_s, uint64_t *out_check, char *why, size_t why_size)
{
    char *argv[PEER_MAX_ARGS + 2];
    char output[PEER_OUTPUT_MAX + 1];
    posix_spawn_file_actions_t actions;
    int fds[2], status = 0, rc;
    bool overflow, timed_out;
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t n_args = 0;
    pid_t pid;

    /* posix_spawn takes char *const[]; it does not write through them. */
    argv[0] = (char *)path;
    while (args[n_args] != NULL && n_args < PEER_MAX_ARGS) {
        argv[n_args + 1] = (char *)args[n_args];
        n_args++;
    }
    argv[n_args + 1] = NULL;

    if (pipe(fds) != 0) {
        return fail(why, why_size, name, "pipe: %s", strerror(errno));
    }
    if (!set_cloexec(fds[0]) || !set_cloexec(fds[1])) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        return fail(why, why_size, name, "fcntl: %s", strerror(err));
    }
    rc = posix_spawn_file_actions_init(&actions);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    if (rc == 0) {
        rc = posix_spawn(&pid, path, &actions, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
    }
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return fail(why, why_size, name, "cannot start %s: %s", path, strerror(rc));
    }

    read_output(fds[0], monotonic_s() + timeout_s, output, &overflow, &timed_out);
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return fail(why, why_size, name, "waitpid: %s", strerror(errno));
        }
    }

    if (timed_out)
        return fail(why, why_size, name, "no answer within %.0f s; killed", timeout_s);
    if (WIFSIGNALED(status))
        return fail(why, why_size, name, "killed by signal %d", WTERMSIG(status));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(why, why_size, name, "exited with status %d",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    if (overflow)
        return fail(why, why_size, name,
                    "answered more than %d bytes; want one line 'time_s=<float> check=<u64>'",
                    PEER_OUTPUT_MAX);
    if (!parse_answer(output, out_time_s, out_check)) {
        size_t first_line = strcspn(output, "\n");
        bool more = output[first_line] != '\0' && output[first_line + 1] != '\0';
        output[first_line] = '\0';
        return fail(why, why_size, name,
                    "malformed answer '%.80s'%s; want one line 'time_s=<float> check=<u64>'",
                    output, more ? " and more lines" : "");
    }
    return 0;
}
