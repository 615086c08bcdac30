/*
 * util.c — small helpers of `baton-bench`: error messages in one format, strict number and
 * option parsing, the clock, sleeping, medians, and a progress line on stderr.
 *
 * The progress line is rewritten in place ("\r...\033[K") only when stderr is a terminal; when it
 * is a file or a pipe, only bench_note's full lines are written, so logs stay readable.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

void bench_baton_error(int err, const char *what)
{
    const char *detail = baton_last_error_message();
    bench_progress_clear();
    if (detail != NULL && detail[0] != '\0')
        fprintf(stderr, "baton-bench: %s: %s (%s): %s\n", what, baton_err_name(err),
                baton_strerror(err), detail);
    else
        fprintf(stderr, "baton-bench: %s: %s (%s)\n", what, baton_err_name(err),
                baton_strerror(err));
}

void bench_errorf(const char *fmt, ...)
{
    va_list ap;
    bench_progress_clear();
    fputs("baton-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool bench_parse_unsigned(const char *option, const char *text, unsigned long min,
                          unsigned long max, unsigned long *out_value)
{
    char *end = NULL;
    unsigned long value;

    /* strtoul accepts leading blanks and a minus sign (it negates); neither is a count. */
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        bench_errorf("%s: expected a number, got '%s'", option, text ? text : "");
        return false;
    }
    errno = 0;
    value = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        bench_errorf("%s: expected a number, got '%s'", option, text);
        return false;
    }
    if (value < min || value > max) {
        bench_errorf("%s: %lu is out of range (%lu to %lu)", option, value, min, max);
        return false;
    }
    *out_value = value;
    return true;
}

int bench_option_value(int argc, char **argv, int *index, const char *name, const char **out_value)
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
        bench_errorf("%s needs a value", name);
        return -1;
    }
    *out_value = argv[*index + 1];
    *index += 2;
    return 1;
}

double bench_now_s(void)
{
    return (double)baton_now_ns() * 1e-9;
}

void bench_sleep_s(double seconds)
{
    struct timespec ts;
    if (seconds <= 0)
        return;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

double bench_process_cpu_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return NAN;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *values, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(values, n, sizeof *values, compare_doubles);
    if (n % 2 == 1)
        return values[n / 2];
    return 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* -1: not yet asked; 0 / 1 afterwards. The CLI is single-threaded where it prints. */
static int stderr_tty = -1;
/* A progress line is on the screen and needs clearing before a full line is written. */
static bool progress_pending;

bool bench_stderr_is_tty(void)
{
    if (stderr_tty < 0)
        stderr_tty = isatty(STDERR_FILENO) ? 1 : 0;
    return stderr_tty == 1;
}

void bench_progress(const char *fmt, ...)
{
    va_list ap;
    if (!bench_stderr_is_tty())
        return;
    fputc('\r', stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\033[K", stderr); /* erase what is left of a longer previous line */
    fflush(stderr);
    progress_pending = true;
}

void bench_progress_clear(void)
{
    if (!progress_pending)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    progress_pending = false;
}

void bench_note(const char *fmt, ...)
{
    va_list ap;
    bench_progress_clear();
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

int bench_pool_create(unsigned workers, unsigned flags, baton_pool **out_pool)
{
    baton_pool_config config;
    char what[96];
    int rc;

    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.n_workers = workers;
    config.flags = flags;
    config.name = "bench";
    rc = baton_pool_create(&config, out_pool);
    if (rc != 0) {
        snprintf(what, sizeof what, "creating a pool of %u workers", workers);
        bench_baton_error(rc, what);
    }
    return rc;
}

/* bench_install: a join whose B is the work and whose A sleeps until B is done. */
typedef struct installer {
    baton_pool *pool;
    int (*fn)(void *ctx);
    void *ctx;
    int rc;
    bool started, done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
} installer;

static int installer_b(void *arg)
{
    installer *in = arg;
    pthread_mutex_lock(&in->lock);
    in->started = true;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    in->rc = in->fn(in->ctx);
    pthread_mutex_lock(&in->lock);
    in->done = true;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    return 0;
}

static int installer_noop(void *arg)
{
    (void)arg;
    return 0;
}

static int installer_a(void *arg)
{
    installer *in = arg;
    pthread_mutex_lock(&in->lock);
    while (!in->started) {
        /* B is public on this thread's deque and a worker was told; but a worker falling asleep
         * at that instant can miss it (pool/sleep.c), and this thread never pops B back while
         * it sleeps here, so until a worker has taken B, offer something every millisecond. */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += 1000000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
        if (pthread_cond_timedwait(&in->cond, &in->lock, &deadline) == ETIMEDOUT && !in->started) {
            pthread_mutex_unlock(&in->lock);
            (void)baton_join(in->pool, installer_noop, NULL, installer_noop, NULL);
            pthread_mutex_lock(&in->lock);
        }
    }
    while (!in->done)
        pthread_cond_wait(&in->cond, &in->lock);
    pthread_mutex_unlock(&in->lock);
    return 0;
}

int bench_install(baton_pool *pool, int (*fn)(void *ctx), void *ctx)
{
    installer in = {.pool = pool, .fn = fn, .ctx = ctx, .rc = 0, .started = false, .done = false};
    pthread_mutex_init(&in.lock, NULL);
    pthread_cond_init(&in.cond, NULL);
    int rc = baton_join(pool, installer_a, &in, installer_b, &in);
    pthread_cond_destroy(&in.cond);
    pthread_mutex_destroy(&in.lock);
    return rc != 0 ? rc : in.rc;
}

void bench_pool_destroy(baton_pool *pool, int *inout_rc)
{
    int rc = baton_pool_destroy(pool);
    if (rc != 0) {
        bench_baton_error(rc, "destroying a pool");
        if (*inout_rc == 0)
            *inout_rc = rc;
    }
}

const char *bench_temp_base(void)
{
    const char *env = getenv("TMPDIR");
    return env != NULL && env[0] != '\0' ? env : "/var/tmp";
}

int bench_remove_tree(const char *dir)
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
            rc |= bench_remove_tree(path);
        else if (unlink(path) != 0)
            rc = -1;
    }
    closedir(d);
    return rmdir(dir) != 0 ? -1 : rc;
}
