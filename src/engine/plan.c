/*
 * plan.c — partition plans: contiguous row ranges, each assigned to a worker, and their
 * validation against a row count and a worker count (include/baton/engine.h).
 *
 * A plan is a copy of its partitions and the worker count it was made for, immutable once made,
 * so that executors on many threads (or ranks) read it without synchronisation. Creating a plan
 * from the caller's partitions checks nothing but the arguments: a plan is data that may come
 * from a scenario file, and baton_plan_validate says what is wrong with it, naming the
 * partition and its rows, when the engine is about to use it with a given state.
 */
#include <stdio.h>
#include <string.h>

#include "baton/engine.h"
#include "core/alloc.h"
#include "core/error.h"

struct baton_plan {
    unsigned workers;
    size_t n;
    baton_partition parts[]; /* n of them */
};

static int plan_alloc(size_t n, unsigned workers, const char *who, baton_plan **out)
{
    if (n > BATON_PLAN_MAX_PARTITIONS)
        return baton__error(BATON_EINVAL, "%s: %zu partitions, more than the %u a plan holds", who,
                            n, BATON_PLAN_MAX_PARTITIONS);
    baton_plan *plan = baton__malloc(sizeof *plan + n * sizeof plan->parts[0]);
    if (plan == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory for a plan of %zu partitions", who, n);
    plan->workers = workers;
    plan->n = n;
    *out = plan;
    return 0;
}

int baton_plan_create_single(size_t rows, baton_plan **out)
{
    const char *who = "baton_plan_create_single";
    if (out == NULL)
        return baton__error(BATON_EINVAL, "%s: out is NULL", who);
    *out = NULL;
    int rc = plan_alloc(1, 1, who, out);
    if (rc == 0)
        (*out)->parts[0] = (baton_partition){0, rows, 0};
    return rc;
}

int baton_plan_create_static(size_t rows, size_t count, unsigned workers, baton_plan **out)
{
    const char *who = "baton_plan_create_static";
    if (out == NULL)
        return baton__error(BATON_EINVAL, "%s: out is NULL", who);
    *out = NULL;
    if (count == 0)
        return baton__error(BATON_EINVAL, "%s: zero partitions (count 0) for %zu rows", who, rows);
    if (workers == 0)
        return baton__error(BATON_EINVAL, "%s: zero workers for %zu partitions", who, count);
    if (count > rows)
        return baton__error(BATON_EINVAL,
                            "%s: %zu partitions of %zu rows: partition %zu and those after it "
                            "would be empty",
                            who, count, rows, rows);
    baton_plan *plan = NULL;
    int rc = plan_alloc(count, workers, who, &plan);
    if (rc != 0)
        return rc;
    /* The first rows % count partitions take one row more: sizes differ by at most one, and the
     * split depends only on (rows, count), so every rank computes the same plan. */
    size_t base = rows / count, extra = rows % count, begin = 0;
    for (size_t i = 0; i < count; i++) {
        size_t size = base + (i < extra ? 1 : 0);
        plan->parts[i] = (baton_partition){begin, begin + size, (unsigned)(i % workers)};
        begin += size;
    }
    *out = plan;
    return 0;
}

int baton_plan_create_per_worker(size_t rows, unsigned workers, baton_plan **out)
{
    const char *who = "baton_plan_create_per_worker";
    if (out == NULL)
        return baton__error(BATON_EINVAL, "%s: out is NULL", who);
    *out = NULL;
    if (workers == 0)
        return baton__error(BATON_EINVAL, "%s: zero workers for %zu rows", who, rows);
    /* Fewer rows than workers: one row each for the first `rows` workers (a partition is never
     * empty), and an empty state's one empty partition on worker 0. */
    size_t count = rows < workers ? (rows > 0 ? rows : 1) : workers;
    if (rows == 0) {
        int rc = plan_alloc(1, workers, who, out);
        if (rc == 0)
            (*out)->parts[0] = (baton_partition){0, 0, 0};
        return rc;
    }
    return baton_plan_create_static(rows, count, workers, out);
}

int baton_plan_create(const baton_partition *parts, size_t n, unsigned workers, baton_plan **out)
{
    const char *who = "baton_plan_create";
    if (out == NULL)
        return baton__error(BATON_EINVAL, "%s: out is NULL", who);
    *out = NULL;
    if (parts == NULL && n > 0)
        return baton__error(BATON_EINVAL, "%s: parts is NULL with %zu partitions", who, n);
    baton_plan *plan = NULL;
    int rc = plan_alloc(n, workers, who, &plan);
    if (rc != 0)
        return rc;
    if (n > 0)
        memcpy(plan->parts, parts, n * sizeof parts[0]);
    *out = plan;
    return 0;
}

void baton_plan_destroy(baton_plan *plan)
{
    baton__free(plan);
}

size_t baton_plan_partitions(const baton_plan *plan)
{
    return plan != NULL ? plan->n : 0;
}

unsigned baton_plan_workers(const baton_plan *plan)
{
    return plan != NULL ? plan->workers : 0;
}

baton_partition baton_plan_partition(const baton_plan *plan, size_t i)
{
    if (plan == NULL || i >= plan->n)
        return (baton_partition){0, 0, 0};
    return plan->parts[i];
}

/* Checks partition i on its own and against the one before it (see engine.h for the order). */
static int check_partition(const baton_plan *plan, size_t i, size_t rows, unsigned workers)
{
    const char *who = "baton_plan_validate";
    const baton_partition *p = &plan->parts[i];
    if (p->worker >= workers)
        return baton__error(BATON_ENOTFOUND,
                            "%s: partition %zu (rows [%zu, %zu)) is assigned to worker %u, which "
                            "does not exist (workers 0 to %u)",
                            who, i, p->begin, p->end, p->worker, workers - 1);
    /* An empty state's single plan is one partition [0, 0): the only empty partition allowed. */
    bool empty_state_single = rows == 0 && plan->n == 1 && p->begin == 0 && p->end == 0;
    if (p->begin >= p->end && !empty_state_single)
        return baton__error(BATON_EINVAL, "%s: partition %zu (rows [%zu, %zu)) is empty", who, i,
                            p->begin, p->end);
    if (p->end > rows)
        return baton__error(BATON_ERANGE,
                            "%s: partition %zu (rows [%zu, %zu)) is out of bounds: the state has "
                            "%zu rows",
                            who, i, p->begin, p->end, rows);
    if (i == 0 && p->begin != 0)
        return baton__error(BATON_EINVAL,
                            "%s: incomplete coverage: partition 0 (rows [%zu, %zu)) begins at row "
                            "%zu, not 0 (rows [0, %zu) are in no partition)",
                            who, p->begin, p->end, p->begin, p->begin);
    if (i > 0 && p->begin != plan->parts[i - 1].end) {
        const baton_partition *q = &plan->parts[i - 1];
        return baton__error(BATON_EINVAL,
                            "%s: non-contiguous: partition %zu (rows [%zu, %zu)) begins at row %zu "
                            "but partition %zu (rows [%zu, %zu)) ends at row %zu (%s)",
                            who, i, p->begin, p->end, p->begin, i - 1, q->begin, q->end, q->end,
                            p->begin > q->end ? "a gap" : "an overlap");
    }
    return 0;
}

int baton_plan_validate(const baton_plan *plan, size_t rows, unsigned workers)
{
    const char *who = "baton_plan_validate";
    if (plan == NULL)
        return baton__error(BATON_EINVAL, "%s: plan is NULL", who);
    if (plan->n == 0)
        return baton__error(BATON_EINVAL, "%s: the plan has zero partitions (%zu rows)", who, rows);
    if (workers == 0)
        return baton__error(BATON_EINVAL, "%s: zero workers to run the plan", who);
    if (plan->workers != workers)
        return baton__error(BATON_EMISMATCH,
                            "%s: worker-count mismatch: the plan was made for %u workers, the "
                            "executor has %u",
                            who, plan->workers, workers);
    for (size_t i = 0; i < plan->n; i++) {
        int rc = check_partition(plan, i, rows, workers);
        if (rc != 0)
            return rc;
    }
    const baton_partition *last = &plan->parts[plan->n - 1];
    if (last->end != rows)
        return baton__error(BATON_EINVAL,
                            "%s: incomplete coverage: the last partition, %zu (rows [%zu, %zu)), "
                            "ends at row %zu, not %zu (rows [%zu, %zu) are in no partition)",
                            who, plan->n - 1, last->begin, last->end, last->end, rows, last->end,
                            rows);
    return 0;
}
