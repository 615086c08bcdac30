/*
 * bench_peer.c — runs a benchmark peer (another runtime's implementation of a case, a separate
 * program built by `make bench`, or with the CLI for baton-peer-omp_store) and reads its answer.
 *
 * Protocol (exact; the peers in bench/peers/ implement it):
 *   <dir>/baton-peer-<name> CASE WORKERS ARG1 [ARG2]
 * The peer runs CASE with WORKERS threads and prints exactly one line on stdout:
 *   time_s=<float> check=<u64 decimal>
 * and exits 0. Anything else — a non-zero exit, a signal, a missing or malformed line, more than
 * one line, or no answer within the timeout (the peer is then killed) — is a failed run, which the
 * caller records as incorrect rather than dropping. The peer's stdin is /dev/null and its stderr
 * is ours, so its diagnostics reach the user.
 *
 * The peer is started with posix_spawn, reading its stdout through a pipe whose ends are
 * close-on-exec in both processes (the child's copy on fd 1 is made by dup2, which clears it).
 * bench_peer_measure wraps one run as a contender's measurement, for every suite.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

/* A peer that has not answered by then is hung: it is killed and its record marked incorrect. */
#define PEER_TIMEOUT_S 300.0
/* A well-formed answer is about 50 bytes; more than this is not the protocol. */
#define PEER_OUTPUT_MAX 1024
#define PEER_MAX_ARGS 8

bool bench_peer_path(const char *dir, const char *name, char *buf, size_t buf_size)
{
    int n = snprintf(buf, buf_size, "%s/baton-peer-%s", dir, name);
    return n > 0 && (size_t)n < buf_size;
}

bool bench_peer_available(const char *path)
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
        double left = deadline - cli_now_s();
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

int bench_peer_run(const char *path, const char *const *args, double timeout_s, double *out_time_s,
                   uint64_t *out_check)
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
        cli_errorf("%s: pipe: %s", name, strerror(errno));
        return -1;
    }
    if (!set_cloexec(fds[0]) || !set_cloexec(fds[1])) {
        cli_errorf("%s: fcntl: %s", name, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
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
        cli_errorf("%s: cannot start %s: %s", name, path, strerror(rc));
        close(fds[0]);
        return -1;
    }

    read_output(fds[0], cli_now_s() + timeout_s, output, &overflow, &timed_out);
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            cli_errorf("%s: waitpid: %s", name, strerror(errno));
            return -1;
        }
    }

    if (timed_out) {
        cli_errorf("%s: no answer within %.0f s; killed", name, timeout_s);
        return -1;
    }
    if (WIFSIGNALED(status)) {
        cli_errorf("%s: killed by signal %d", name, WTERMSIG(status));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        cli_errorf("%s: exited with status %d", name, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    if (overflow) {
        cli_errorf("%s: answered more than %d bytes; want one line 'time_s=<float> check=<u64>'",
                   name, PEER_OUTPUT_MAX);
        return -1;
    }
    if (!parse_answer(output, out_time_s, out_check)) {
        size_t first_line = strcspn(output, "\n");
        bool more = output[first_line] != '\0' && output[first_line + 1] != '\0';
        output[first_line] = '\0';
        cli_errorf("%s: malformed answer '%.80s'%s; want one line 'time_s=<float> check=<u64>'",
                   name, output, more ? " and more lines" : "");
        return -1;
    }
    return 0;
}

int bench_peer_measure(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const bench_peer_case *pc = ctx;
    char workers_arg[16];
    const char *args[5];
    double time_s;
    uint64_t check;

    snprintf(workers_arg, sizeof workers_arg, "%u", workers);
    args[0] = pc->case_name;
    args[1] = workers_arg;
    args[2] = pc->arg1;
    args[3] = pc->arg2[0] != '\0' ? pc->arg2 : NULL;
    args[4] = NULL;
    if (bench_peer_run(pc->path, args, PEER_TIMEOUT_S, &time_s, &check) != 0)
        return -1;
    if (pc->ticks > 0 && !(time_s > 0)) {
        cli_errorf("%s: %s took time_s=0: no throughput to report", pc->path, pc->case_name);
        return -1;
    }
    *out_value = pc->ticks > 0 ? pc->ticks / time_s : time_s;
    *out_correct = check == pc->expected;
    if (!*out_correct)
        cli_note("bench %s: %s %s %s: check=%" PRIu64 ", expected %" PRIu64, pc->suite, pc->path,
                 pc->case_name, workers_arg, check, pc->expected);
    return 0;
}
