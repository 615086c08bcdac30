/*
 * alloc.h — the allocation calls the library makes, routed through the allocator installed with
 * baton_set_allocator(). Tests can make allocations fail on purpose with
 * baton__alloc_fail_after(n): the (n+1)-th allocation from then on returns NULL.
 */
#ifndef BATON_CORE_ALLOC_H
#define BATON_CORE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

void *baton__malloc(size_t size);
void *baton__calloc(size_t count, size_t size);
/* alignment: power of two <= 4096; size is rounded up to a multiple of it. */
void *baton__aligned_alloc(size_t alignment, size_t size);
void baton__free(void *ptr);

/* Makes *array (of *capacity items of item_size bytes) hold at least `needed` items, doubling
 * from 16; the items already there are kept. False (and nothing changed) when memory ran out. */
bool baton__grow_array(void **array, size_t *capacity, size_t needed, size_t item_size);

/* Fault injection for tests: after `n` more successful allocations, fail every one until reset
 * with n < 0. Process-wide; not for use while other threads allocate through baton. */
void baton__alloc_fail_after(long n);

#endif /* BATON_CORE_ALLOC_H */
