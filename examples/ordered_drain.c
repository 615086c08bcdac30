/*
 * ordered_drain.c — a producer thread feeds a work queue; the main thread drains it in parallel
 * on a pool and gets the results back in the order they were sent.
 *
 * The work is deliberately uneven (every 97th item is 100 times slower) to show that order does
 * not depend on which item finishes first, and that the window keeps memory bounded meanwhile.
 * The program checks that every result arrived, in order, and exits 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <baton.h>

#define N_ITEMS 200000u

typedef struct job {
    uint64_t input;
    uint64_t output; /* written by process, on a pool worker */
} job;

static job jobs[N_ITEMS];

static void *producer(void *arg)
{
    baton_workqueue_sender *tx = arg;
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        jobs[i].input = i;
        /* Blocks while the queue is full: the producer runs at the drain's pace. */
        int rc = baton_workqueue_send(tx, &jobs[i], BATON_WAIT_FOREVER);
        if (rc != 0) {
            fprintf(stderr, "send: %s\n", baton_strerror(rc));
            break;
        }
    }
    /* The last sender's close is the end of the stream. */
    baton_workqueue_sender_close(tx);
    return NULL;
}

static int process(void *ctx, void *item, void **result)
{
    (void)ctx;
    job *j = item;
    unsigned rounds = j->input % 97 == 0 ? 2000 : 20;
    uint64_t x = j->input;
    for (unsigned r = 0; r < rounds; r++)
        x = baton_mix64(x);
    j->output = x;
    *result = j;
    return 0;
}

typedef struct sink {
    uint64_t next_expected;
    uint64_t checksum;
} sink;

/* Called one at a time, in send order. */
static int deliver(void *ctx, uint64_t seq, void *item, void *result)
{
    sink *s = ctx;
    job *j = result;
    if (seq != s->next_expected || item != result || j->input != seq)
        return BATON_EMISMATCH;
    s->next_expected++;
    s->checksum ^= j->output;
    return 0;
}

int main(void)
{
    baton_pool *pool;
    baton_workqueue_sender *tx;
    baton_workqueue_receiver *rx;
    int rc = baton_pool_create(NULL, &pool);
    if (rc != 0) {
        fprintf(stderr, "pool: %s\n", baton_last_error_message());
        return 1;
    }
    rc = baton_workqueue_create(1024, 0, &tx, &rx);
    if (rc != 0) {
        fprintf(stderr, "workqueue: %s\n", baton_last_error_message());
        baton_pool_destroy(pool);
        return 1;
    }
    pthread_t thread;
    if (pthread_create(&thread, NULL, producer, tx) != 0) {
        fprintf(stderr, "cannot start the producer thread\n");
        baton_workqueue_sender_close(tx);
        baton_workqueue_receiver_destroy(rx);
        baton_pool_destroy(pool);
        return 1;
    }

    sink s = {0, 0};
    baton_drain_ops ops = {
        .struct_size = sizeof ops,
        .process = process,
        .deliver = deliver,
        .window = 4096, /* at most 4096 items between receive and delivery */
    };
    baton_drain_report report;
    rc = baton_workqueue_drain_parallel(rx, pool, &ops, &s, &report);
    pthread_join(thread, NULL);

    uint64_t expected = 0;
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        uint64_t x = i;
        for (unsigned r = 0; r < (i % 97 == 0 ? 2000u : 20u); r++)
            x = baton_mix64(x);
        expected ^= x;
    }
    int ok = rc == 0 && report.delivered == N_ITEMS && s.next_expected == N_ITEMS &&
             s.checksum == expected;
    printf("drained %llu items on %u workers, in order: %s\n",
           (unsigned long long)report.delivered, baton_pool_workers(pool), ok ? "yes" : "NO");
    if (rc != 0)
        fprintf(stderr, "drain: %s\n", baton_last_error_message());

    baton_workqueue_receiver_destroy(rx);
    baton_pool_destroy(pool);
    return ok ? 0 : 1;
}
