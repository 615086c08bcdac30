/*
 * scope_tree.c — structured concurrency with baton_scope_run and baton_scope_spawn.
 *
 * Shows: a walk over a tree where every visited node spawns one task per child into the same
 * scope. baton_scope_run returns once every task spawned into the scope, at any depth, is done,
 * so the caller reads the totals knowing nothing is still running. The tasks' contexts are
 * records the caller prepared before the walk (one per node); spawning allocates nothing else.
 *
 * Then the same walk over a tree with one invalid node: that node's task returns BATON_ERANGE,
 * which cancels the scope (tasks not yet started are skipped; running ones see
 * baton_scope_cancelled and stop spawning), and baton_scope_run hands the code to the caller,
 * who turns it into words with baton_err_name / baton_strerror. A task's code says what went
 * wrong; where it went wrong is the application's to record, here in the walk itself.
 *
 * Exits 1 if the first walk misses or repeats a node, or if the second one does not report the
 * invalid node.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <baton.h>

/* A complete 4-ary tree of 8 levels, stored as an array: the children of node i are
 * FANOUT * i + 1 .. FANOUT * i + FANOUT. */
#define FANOUT 4
#define N_NODES 21845 /* (4^8 - 1) / 3 */
#define BAD_NODE 5    /* a node two levels down, with 1365 nodes in its subtree */
#define BAD_SUBTREE 1365
#define NO_NODE SIZE_MAX

struct walk;

/* The context of one node's task. */
struct visit {
    struct walk *walk;
    size_t node;
};

struct walk {
    baton_scope *scope;     /* set by the body; valid while baton_scope_run runs */
    const int64_t *weights; /* a node's weight; negative weights are invalid */
    struct visit *visits;   /* visits[i] is the context of node i's task */
    atomic_int_fast64_t total;
    atomic_size_t visited;
    atomic_size_t bad_node; /* the invalid node the walk met, or NO_NODE */
};

static int visit_node(void *ctx)
{
    struct visit *v = ctx;
    struct walk *w = v->walk;

    int64_t weight = w->weights[v->node];
    if (weight < 0) {
        atomic_store(&w->bad_node, v->node);
        return BATON_ERANGE;
    }
    /* Relaxed is enough: nobody reads the counters until baton_scope_run has returned, and it
     * returns only after every task of the scope has finished. */
    atomic_fetch_add_explicit(&w->total, weight, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->visited, 1, memory_order_relaxed);

    for (size_t child = FANOUT * v->node + 1; child <= FANOUT * v->node + FANOUT; child++) {
        /* Another node has failed: the scope's result is decided, so stop making work. */
        if (child >= N_NODES || baton_scope_cancelled(w->scope))
            break;
        int rc = baton_scope_spawn(w->scope, visit_node, &w->visits[child]);
        /* ECANCELED means the scope already carries an error; it is not this task's. */
        if (rc == BATON_ECANCELED)
            break;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Runs on the calling thread inside baton_scope_run: starts the walk at the root. */
static int walk_body(baton_scope *scope, void *ctx)
{
    struct walk *w = ctx;
    w->scope = scope;
    return baton_scope_spawn(scope, visit_node, &w->visits[0]);
}

static int run_walk(baton_pool *pool, struct walk *w)
{
    atomic_store(&w->total, 0);
    atomic_store(&w->visited, 0);
    atomic_store(&w->bad_node, NO_NODE);
    return baton_scope_run(pool, walk_body, w);
}

int main(void)
{
    int64_t *weights = malloc(N_NODES * sizeof *weights);
    struct visit *visits = malloc(N_NODES * sizeof *visits);
    if (weights == NULL || visits == NULL) {
        fprintf(stderr, "scope_tree: out of memory\n");
        return 1;
    }
    struct walk w = {.weights = weights, .visits = visits};
    int64_t expected_total = 0;
    for (size_t i = 0; i < N_NODES; i++) {
        weights[i] = (int64_t)(i % 10) + 1;
        visits[i] = (struct visit){.walk = &w, .node = i};
        expected_total += weights[i];
    }

    baton_pool *pool;
    int rc = baton_pool_create(NULL, &pool);
    if (rc != 0) {
        fprintf(stderr, "baton_pool_create: %s (%s)\n", baton_strerror(rc),
                baton_last_error_message());
        return 1;
    }
    int failed = 0;

    /* 1. A valid tree: every node is visited exactly once. */
    rc = run_walk(pool, &w);
    long long total = (long long)atomic_load(&w.total);
    size_t visited = atomic_load(&w.visited);
    printf("walk: %s, %zu of %d nodes, total weight %lld\n", rc == 0 ? "ok" : baton_err_name(rc),
           visited, N_NODES, total);
    if (rc != 0 || visited != N_NODES || total != (long long)expected_total) {
        fprintf(stderr, "walk: expected 0, %d nodes and total %lld\n", N_NODES,
                (long long)expected_total);
        failed = 1;
    }

    /* 2. One invalid node: its error cancels the walk and comes back from baton_scope_run. */
    weights[BAD_NODE] = -1;
    rc = run_walk(pool, &w);
    size_t bad = atomic_load(&w.bad_node);
    visited = atomic_load(&w.visited);
    printf("walk with an invalid node: %s (%s)", baton_err_name(rc), baton_strerror(rc));
    /* The library may add a detail message for the errors it reports; "" when it has none. */
    const char *detail = baton_last_error_message();
    if (detail[0] != '\0')
        printf(", detail: %s", detail);
    printf("; bad node %zu, %zu nodes visited\n", bad, visited);
    /* The bad node's subtree is never spawned, whatever else cancellation skipped. */
    if (rc != BATON_ERANGE || bad != BAD_NODE || visited > N_NODES - BAD_SUBTREE) {
        fprintf(stderr,
                "walk with an invalid node: expected BATON_ERANGE at node %d, "
                "at most %d nodes visited\n",
                BAD_NODE, N_NODES - BAD_SUBTREE);
        failed = 1;
    }

    rc = baton_pool_destroy(pool);
    if (rc != 0) {
        fprintf(stderr, "baton_pool_destroy: %s\n", baton_err_name(rc));
        failed = 1;
    }
    free(weights);
    free(visits);
    return failed;
}
