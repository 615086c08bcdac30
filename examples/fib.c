/*
 * fib.c — recursive fork-join with baton_join.
 *
 * Shows: each call forks its two halves with baton_join, which runs the first half on the calling
 * thread and offers the second to idle workers. The context of each half is a struct on the
 * caller's stack; that is safe because baton_join returns only when both halves are done, so
 * the whole recursion allocates nothing. Below a cut-off the work is too small to be worth a
 * fork and is done serially, as in any real fork-join program.
 *
 * Usage: fib [N]   (default 30). Prints fib(N) and exits 1 if it differs from the serial value.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <baton.h>

/* Below this the recursion runs serially: a fork costs more than fib(15) does. */
#define FIB_SERIAL_CUTOFF 15
/* The recursion makes about 2 * fib(N) calls: beyond this it would run for hours. */
#define FIB_MAX_N 50

struct fib_ctx {
    baton_pool *pool;
    unsigned n;
    uint64_t result;
};

static uint64_t fib_serial(unsigned n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static int fib_task(void *arg)
{
    struct fib_ctx *ctx = arg;
    if (ctx->n < FIB_SERIAL_CUTOFF) {
        ctx->result = fib_serial(ctx->n);
        return 0;
    }
    /* Both halves live in this frame; baton_join does not return before they have finished. */
    struct fib_ctx left = {.pool = ctx->pool, .n = ctx->n - 1};
    struct fib_ctx right = {.pool = ctx->pool, .n = ctx->n - 2};
    int rc = baton_join(ctx->pool, fib_task, &left, fib_task, &right);
    if (rc != 0)
        return rc;
    ctx->result = left.result + right.result;
    return 0;
}

/* fib(n) by iteration, to check the parallel answer against. */
static uint64_t fib_expected(unsigned n)
{
    uint64_t a = 0, b = 1;
    for (unsigned i = 0; i < n; i++) {
        uint64_t next = a + b;
        a = b;
        b = next;
    }
    return a;
}

int main(int argc, char **argv)
{
    unsigned n = 30;
    if (argc > 1) {
        char *end;
        unsigned long value = strtoul(argv[1], &end, 10);
        if (*argv[1] == '\0' || *end != '\0' || value > FIB_MAX_N) {
            fprintf(stderr, "usage: fib [N], with N at most %d\n", FIB_MAX_N);
            return 2;
        }
        n = (unsigned)value;
    }

    /* A NULL config means defaults: one worker per CPU this process may run on. */
    baton_pool *pool;
    int rc = baton_pool_create(NULL, &pool);
    if (rc != 0) {
        fprintf(stderr, "baton_pool_create: %s (%s)\n", baton_strerror(rc),
                baton_last_error_message());
        return 1;
    }

    /* The main thread is not a worker: baton_join lets it take an external slot and help. */
    struct fib_ctx root = {.pool = pool, .n = n};
    rc = fib_task(&root);
    unsigned workers = baton_pool_workers(pool);
    int destroy_rc = baton_pool_destroy(pool);
    if (rc == 0)
        rc = destroy_rc;
    if (rc != 0) {
        fprintf(stderr, "fib: %s: %s\n", baton_err_name(rc), baton_strerror(rc));
        return 1;
    }

    uint64_t expected = fib_expected(n);
    printf("fib(%u) = %" PRIu64 " on %u workers\n", n, root.result, workers);
    if (root.result != expected) {
        fprintf(stderr, "fib: wrong result, expected %" PRIu64 "\n", expected);
        return 1;
    }
    return 0;
}
