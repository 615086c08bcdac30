/*
 * graph_seed.c — a fanout into two branches that meet again in one sink:
 *
 *     data 0, 1, 2 => ( x -> (2x, x) => (2x, x) -> 2x - x ,   x -> -x ) => sum += x
 *
 * Every item goes through a fanout to two branches; one makes the pair (2x, x) and then its
 * difference, the other negates; a sink adds everything up. The first branch gives 0 + 1 + 2,
 * the second -0 - 1 - 2, so the sum is 0. The maps run in parallel on the pool's workers; the
 * source and the sink are serial, so `next` and `total` need no lock. The program prints the sum
 * and exits 1 when it is not 0.
 */
#include <stdint.h>
#include <stdio.h>

#include <baton.h>

static const int64_t values[] = {0, 1, 2};

static int data(void *state, baton_emitter *out) /* the source: one value per call */
{
    size_t *next = state;
    if (*next == sizeof values / sizeof values[0])
        return BATON_GRAPH_END;
    return baton_emit(out, baton_item_int(values[(*next)++]));
}

static int twice_and_x(void *ctx, baton_item x, baton_emitter *out) /* x -> (2x, x) */
{
    (void)ctx;
    /* One item is one 64-bit word: the pair travels as two 32-bit halves. */
    uint64_t pair = (uint64_t)(uint32_t)(2 * x.i) << 32 | (uint32_t)x.i;
    return baton_emit(out, (baton_item){.u = pair});
}

static int difference(void *ctx, baton_item pair, baton_emitter *out) /* (2x, x) -> 2x - x */
{
    (void)ctx;
    int64_t x2 = (int32_t)(uint32_t)(pair.u >> 32), x = (int32_t)(uint32_t)pair.u;
    return baton_emit(out, baton_item_int(x2 - x));
}

static int negate(void *ctx, baton_item x, baton_emitter *out) /* x -> -x */
{
    (void)ctx;
    return baton_emit(out, baton_item_int(-x.i));
}

static int add(void *state, baton_item x) /* the sink */
{
    *(int64_t *)state += x.i;
    return 0;
}

int main(void)
{
    baton_pool *pool = NULL;
    baton_graph *g = NULL;
    if (baton_pool_create(NULL, &pool) != 0 || baton_graph_create(NULL, &g) != 0) {
        fprintf(stderr, "setup: %s\n", baton_last_error_message());
        baton_pool_destroy(pool);
        return 1;
    }
    size_t next = 0;
    int64_t total = 0;

    /* The pipeline: about ten lines. Connecting accepts a failed add's result and reports it,
     * so one check at the end covers the building. */
    int src = baton_graph_source(g, "data", data, &next);      /* 0, 1, 2 */
    int fan = baton_graph_fanout(g, "clone", NULL, NULL);      /* ints: by reference */
    int pair = baton_graph_map(g, "pair", twice_and_x, NULL);  /* x -> (2x, x) */
    int diff = baton_graph_map(g, "diff", difference, NULL);   /* (2x, x) -> 2x - x */
    int neg = baton_graph_map(g, "negate", negate, NULL);      /* x -> -x */
    int sum = baton_graph_sink(g, "sum", add, &total);
    int rc = baton_graph_connect_path(g, (const int[]){src, fan, pair, diff, sum}, 5);
    if (rc == 0)
        rc = baton_graph_connect_path(g, (const int[]){fan, neg, sum}, 3);
    if (rc == 0)
        rc = baton_graph_run(g, pool);                         /* total == 0 */

    if (rc != 0)
        fprintf(stderr, "graph: %s: %s\n", baton_err_name(rc), baton_last_error_message());
    else
        printf("sum = %lld (%u workers)\n", (long long)total, baton_pool_workers(pool));
    baton_graph_destroy(g);
    baton_pool_destroy(pool);
    return rc == 0 && total == 0 ? 0 : 1;
}
