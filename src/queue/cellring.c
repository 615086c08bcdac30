/*
 * cellring.c — the cold parts of the sequence-per-cell rings (see cellring.h).
 */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "queue/cellring.h"

int baton__cellring_create(const char *fn, size_t capacity, baton__cellring **out)
{
    uint64_t cap;
    if (out == NULL)
        return baton__error(BATON_EINVAL, "%s: out is NULL", fn);
    int rc = baton__ring_capacity(fn, capacity, &cap);
    if (rc != 0)
        return rc;
    baton__cellring *r = baton__aligned_alloc(BATON_CACHELINE, sizeof *r);
    baton__cell *cells = baton__cells_create(cap, 0);
    if (r == NULL || cells == NULL) {
        baton__free(r);
        baton__free(cells);
        return baton__error(BATON_ENOMEM, "%s: no memory for %llu cells", fn,
                            (unsigned long long)cap);
    }
    memset(r, 0, sizeof *r);
    atomic_init(&r->tail, 0);
    atomic_init(&r->head, 0);
    atomic_init(&r->closed, 0);
    r->cells = cells;
    r->mask = cap - 1;
    baton__waitpoint_global_init();
    baton__waitpoint_init(&r->not_empty);
    baton__waitpoint_init(&r->not_full);
    *out = r;
    return 0;
}

void baton__cellring_destroy(baton__cellring *r)
{
    if (r == NULL)
        return;
    baton__free(r->cells);
    baton__free(r);
}

size_t baton__cellring_size(const baton__cellring *r)
{
    uint64_t head = baton__load_relaxed((_Atomic uint64_t *)&r->head);
    uint64_t tail = baton__load_relaxed((_Atomic uint64_t *)&r->tail);
    int64_t n = (int64_t)(tail - head);
    if (n < 0)
        return 0;
    return (uint64_t)n > r->mask + 1 ? (size_t)r->mask + 1 : (size_t)n;
}

void baton__cellring_close(baton__cellring *r)
{
    /* Release pairs with the consumers' acquire loads of closed before they report the end. */
    baton__store_release(&r->closed, 1);
    baton__waitpoint_notify(&r->not_empty, true);
    baton__waitpoint_notify(&r->not_full, true);
}

void baton__cellring_set_position(baton__cellring *r, uint64_t pos)
{
    baton__store_relaxed(&r->tail, pos);
    baton__store_relaxed(&r->head, pos);
    baton__cells_renumber(r->cells, r->mask + 1, pos);
}

bool baton__cellring_can_push(void *arg)
{
    baton__cellring *r = arg;
    uint64_t tail = baton__load_relaxed(&r->tail);
    return baton__load_relaxed(&r->closed) ||
           baton__load_relaxed(&r->cells[tail & r->mask].seq) == 2 * tail;
}

bool baton__cellring_can_pop(void *arg)
{
    baton__cellring *r = arg;
    uint64_t head = baton__load_relaxed(&r->head);
    return baton__load_relaxed(&r->closed) ||
           baton__load_relaxed(&r->cells[head & r->mask].seq) == 2 * head + 1;
}
