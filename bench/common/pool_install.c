/*
 * pool_install.c — runs a function on one of a pool's workers while the calling thread sleeps
 * (pool_install.h), through baton_join alone.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "pool_install.h"

/* A join whose B is the work and whose A sleeps until B is done. */
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

int pool_install(baton_pool *pool, int (*fn)(void *ctx), void *ctx)
{
    installer in = {.pool = pool, .fn = fn, .ctx = ctx, .rc = 0, .started = false, .done = false};
    pthread_mutex_init(&in.lock, NULL);
    pthread_cond_init(&in.cond, NULL);
    int rc = baton_join(pool, installer_a, &in, installer_b, &in);
    pthread_cond_destroy(&in.cond);
    pthread_mutex_destroy(&in.lock);
    return rc != 0 ? rc : in.rc;
}
