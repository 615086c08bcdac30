/*
 * ring.c — the parts of the bounded rings that are not on the per-item path.
 */
#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "queue/ring.h"

int baton__ring_null(const char *fn, const char *what)
{
    return baton__error(BATON_EINVAL, "%s: %s is NULL", fn, what);
}

int baton__ring_capacity(const char *kind, size_t capacity, uint64_t *rounded)
{
    if (capacity == 0 || capacity > BATON_QUEUE_MAX_CAPACITY)
        return baton__error(BATON_EINVAL, "%s: capacity %zu is out of range [1, %llu]", kind,
                            capacity, (unsigned long long)BATON_QUEUE_MAX_CAPACITY);
    uint64_t c = 1;
    while (c < capacity)
        c <<= 1;
    *rounded = c;
    return 0;
}

int baton__ring_wait_op(baton__waitpoint *wp, int (*try_op)(void *q, void *arg),
                        bool (*ready)(void *q), void *q, void *arg, uint64_t timeout_ns)
{
    int rc = try_op(q, arg);
    if (rc != BATON_EAGAIN)
        return rc;
    uint64_t deadline = baton__deadline_after(timeout_ns);
    for (;;) {
        if (baton__waitpoint_wait(wp, ready, q, deadline) != 0) {
            /* One last attempt: the state may have changed as the time ran out. */
            rc = try_op(q, arg);
            return rc == BATON_EAGAIN ? BATON_ETIMEDOUT : rc;
        }
        rc = try_op(q, arg);
        if (rc == 0) {
            /* Pass the wake-up on: wake-ups are throttled to one on its way at a time (see
             * waitpoint.h), so a woken waiter that leaves more to take wakes the next. */
            if (baton__load_relaxed(&wp->waiters) != 0 && ready(q))
                baton__waitpoint_wake(wp, false);
            return 0;
        }
        if (rc != BATON_EAGAIN)
            return rc;
    }
}

void baton__cells_renumber(baton__cell *cells, uint64_t capacity, uint64_t start)
{
    for (uint64_t i = 0; i < capacity; i++)
        atomic_init(&cells[(start + i) & (capacity - 1)].seq, 2 * (start + i));
}

baton__cell *baton__cells_create(uint64_t capacity, uint64_t start)
{
    /* Cache-line aligned so that a ring's first cells do not share a line with anything else. */
    baton__cell *cells = baton__aligned_alloc(BATON_CACHELINE, (size_t)capacity * sizeof *cells);
    if (cells == NULL)
        return NULL;
    for (uint64_t i = 0; i < capacity; i++)
        cells[i].item = NULL;
    baton__cells_renumber(cells, capacity, start);
    return cells;
}
