/*
 * alloc.c — every allocation baton makes goes through here, so that a user can install their own
 * allocator (baton_set_allocator) and tests can inject allocation failures.
 *
 * DESIGN: the allocator is a plain struct copied at install time; it is read without
 * synchronisation because the contract is "install it while no other baton call runs" (libuv's
 * uv_replace_allocator has the same rule). A count of live blocks lets baton_set_allocator refuse
 * a switch that would free one allocator's memory with the other (one relaxed atomic per
 * allocation and free: baton allocates at set-up, never per item). The fault-injection counter
 * is an atomic so that a test may read it from any thread, but it is meant for single-threaded
 * set-up code.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "baton/core.h"
#include "core/alloc.h"
#include "core/error.h"

/* C11 aligned_alloc wants size to be a multiple of alignment; baton__aligned_alloc rounds. */
static void *baton__libc_aligned_alloc(size_t alignment, size_t size)
{
    return aligned_alloc(alignment, size);
}

static baton_allocator baton__allocator = {malloc, baton__libc_aligned_alloc, free};

/* Blocks allocated through the allocator in use and not yet freed: while there are any,
 * baton_set_allocator refuses to switch (they would be freed with the other allocator). Relaxed:
 * only a count; set_allocator's callers guarantee no baton call runs concurrently with it, and
 * the threads that freed the blocks were joined (or synchronised) by the handles' destroy calls. */
static struct {
    /* A line of its own: every allocation and free of every thread writes it, and the linker
     * otherwise puts it beside globals that hot paths only read (baton__waitpoint_asymmetric,
     * loaded by every notify, shared its line in a Release build: each append to the space's
     * log then missed on it after any thread's malloc). */
    BATON_CACHELINE_ALIGNED _Atomic long n;
} baton__live_blocks = {0};
_Static_assert(sizeof baton__live_blocks == BATON_CACHELINE, "the count fills its line alone");

/* Remaining successful allocations before injected failures; negative: injection off. */
static _Atomic long baton__alloc_budget = -1;

static int baton__alloc_should_fail(void)
{
    long budget = atomic_load_explicit(&baton__alloc_budget, memory_order_relaxed);
    if (budget < 0)
        return 0;
    if (budget == 0)
        return 1;
    atomic_store_explicit(&baton__alloc_budget, budget - 1, memory_order_relaxed);
    return 0;
}

void baton__alloc_fail_after(long n)
{
    atomic_store_explicit(&baton__alloc_budget, n < 0 ? -1 : n, memory_order_relaxed);
}

int baton_set_allocator(const baton_allocator *allocator)
{
    long live = atomic_load_explicit(&baton__live_blocks.n, memory_order_relaxed);
    if (live != 0)
        return baton__error(BATON_EBUSY,
                            "baton_set_allocator: %ld block(s) allocated by baton are still in "
                            "use; they must be freed by the allocator that made them (destroy "
                            "every handle first)",
                            live);
    if (allocator == NULL ||
        (allocator->malloc == NULL && allocator->aligned_alloc == NULL &&
         allocator->free == NULL)) {
        baton__allocator = (baton_allocator){malloc, baton__libc_aligned_alloc, free};
        return 0;
    }
    if (allocator->malloc == NULL || allocator->aligned_alloc == NULL ||
        allocator->free == NULL) {
        return baton__error(BATON_EINVAL,
                            "baton_set_allocator: malloc (%s), aligned_alloc (%s) and free (%s) "
                            "must be all given or all NULL",
                            allocator->malloc ? "set" : "NULL",
                            allocator->aligned_alloc ? "set" : "NULL",
                            allocator->free ? "set" : "NULL");
    }
    baton__allocator = *allocator;
    return 0;
}

void *baton__malloc(size_t size)
{
    if (baton__alloc_should_fail())
        return NULL;
    void *ptr = baton__allocator.malloc(size == 0 ? 1 : size);
    if (ptr != NULL)
        atomic_fetch_add_explicit(&baton__live_blocks.n, 1, memory_order_relaxed);
    return ptr;
}

void *baton__calloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    void *ptr = baton__malloc(count * size);
    if (ptr != NULL)
        memset(ptr, 0, count * size);
    return ptr;
}

void *baton__aligned_alloc(size_t alignment, size_t size)
{
    if (baton__alloc_should_fail())
        return NULL;
    size_t rounded = (size + alignment - 1) & ~(alignment - 1);
    if (rounded < size)
        return NULL;
    void *ptr = baton__allocator.aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
    if (ptr != NULL)
        atomic_fetch_add_explicit(&baton__live_blocks.n, 1, memory_order_relaxed);
    return ptr;
}

void baton__free(void *ptr)
{
    if (ptr == NULL)
        return;
    atomic_fetch_sub_explicit(&baton__live_blocks.n, 1, memory_order_relaxed);
    baton__allocator.free(ptr);
}

bool baton__grow_array(void **array, size_t *capacity, size_t needed, size_t item_size)
{
    if (needed <= *capacity)
        return true;
    size_t cap = *capacity == 0 ? 16 : *capacity;
    while (cap < needed)
        cap *= 2;
    void *bigger = baton__malloc(cap * item_size);
    if (bigger == NULL)
        return false;
    if (*capacity != 0)
        memcpy(bigger, *array, *capacity * item_size);
    baton__free(*array);
    *array = bigger;
    *capacity = cap;
    return true;
}
