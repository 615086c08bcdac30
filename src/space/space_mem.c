/*
 * space_mem.c — the blocks of a space's per-operation records (operations, data, consumers,
 * firings), kept for reuse per thread.
 *
 * DESIGN
 *  - A produce/consume pair made four heap allocations and four frees (its datum, its consumer,
 *    an operation record, the firing's copy of the data), a fifth of the pair's time in malloc
 *    and free. Each thread that uses a space now owns, in the space, a free list per size class
 *    (64, 128, 256 and 512 bytes) and an inbox. A block carries its owner in a header word. A
 *    record is taken from the calling thread's list; freed by its owner, it goes back on that
 *    list; freed by another thread (a datum taken by a continuation running elsewhere, a
 *    firing's copy freed by the worker that ran it), it is pushed onto its owner's inbox (a
 *    CAS), which the owner takes whole (an exchange) when its list runs dry. So blocks circulate
 *    between threads without ever going back to the heap, the inbox has many pushers and one
 *    taker that takes everything at once (no ABA), and the lists themselves need no atomic.
 *  - A thread finds its lists through a thread-local (space serial, lists) pair; on a miss (its
 *    first call on this space, or after using another space) it looks for them in the space's
 *    registry, a list that is only pushed to (nothing is removed before the space is destroyed),
 *    and pushes fresh ones when it has none. Lists are keyed by the address of a thread-local,
 *    unique among live threads: a new thread that gets a dead thread's address inherits its
 *    lists, which no one else uses, and the blocks other threads still give back to them.
 *  - A list keeps at most SP_MEM_KEEP blocks of what its owner frees itself; beyond that its
 *    owner's frees go back to the heap, so a burst does not stay cached. Blocks taken from the
 *    inbox are not counted (counting them walked the list, a cache miss per block) and each
 *    block taken lowers the count, down to -SP_MEM_SLACK: a list may keep more than SP_MEM_KEEP
 *    of its owner's frees by as many blocks as it took from its inbox (SP_MEM_SLACK at most),
 *    blocks that existed already, so what a list holds stays bounded by what was live at once
 *    plus SP_MEM_KEEP + SP_MEM_SLACK. The count must go below 0: floored at 0, it forgot the
 *    allocations a thread served from blocks others gave back (joins on channels two workers
 *    share), so the thread's next burst of its own frees counted as new blocks, went past
 *    SP_MEM_KEEP and back to the heap, to be allocated again (join3 at 2 workers: 170,000 heap
 *    blocks per million joins, malloc and free 9% of its profile; now about 1,300).
 *    Larger records (a wide join's consumer, a large datum) and blocks made when memory for the
 *    lists was short have no owner and go to the heap. Records need 8-byte alignment at most
 *    (the header's size).
 *  - The same per-thread block holds the thread's call counters (space.c, DESIGN: Quiescence):
 *    quiesce sums them over the registry, which only grows, so a thread's counters stay
 *    readable for the space's life.
 *  - baton_space_destroy frees every list and what it holds: no memory outlives the space (so
 *    baton_set_allocator can change the allocator once every handle is destroyed).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/os.h"
#include "space/space_impl.h"

#define SP_MEM_CLASSES 4u
#define SP_MEM_KEEP 256
#define SP_MEM_SLACK 4096
#define SP_MEM_HEADER sizeof(sp_mem *)

typedef struct sp_block {
    struct sp_block *next;
} sp_block;

/* A block: its owner's lists (NULL: the heap's), then the record. */
typedef struct sp_head {
    sp_mem *owner;
} sp_head;

struct sp_mem {
    BATON_CACHELINE_ALIGNED sp_block *head[SP_MEM_CLASSES];
    int count[SP_MEM_CLASSES]; /* see DESIGN: from -SP_MEM_SLACK to SP_MEM_KEEP */
    const void *owner_thread; /* the address of its thread's sp_tls_mem */
    sp_mem *next;             /* the registry */
    sp_call_slot calls;       /* its thread's outside calls (space.c) */
    /* Blocks other threads gave back, per class: pushed by them, taken whole by the owner. */
    BATON_CACHELINE_ALIGNED sp_block *_Atomic inbox[SP_MEM_CLASSES];
};

static SP_TLS struct {
    uint64_t serial;
    sp_mem *mem;
} sp_tls_mem;

static int class_of(size_t size)
{
    if (size <= 64)
        return 0;
    if (size <= 128)
        return 1;
    if (size <= 256)
        return 2;
    if (size <= 512)
        return 3;
    return -1;
}

static size_t class_size(int c)
{
    return (size_t)64 << c;
}

void baton__space_mem_destroy(baton_space *space)
{
    sp_mem *m = atomic_load_explicit(&space->mem, memory_order_acquire);
    while (m != NULL) {
        sp_mem *next = m->next;
        for (unsigned c = 0; c < SP_MEM_CLASSES; c++) {
            for (sp_block *b = m->head[c], *bn; b != NULL; b = bn) {
                bn = b->next;
                baton__free(b);
            }
            sp_block *b = atomic_load_explicit(&m->inbox[c], memory_order_acquire);
            for (sp_block *bn; b != NULL; b = bn) {
                bn = b->next;
                baton__free(b);
            }
        }
        baton__free(m);
        m = next;
    }
    atomic_store_explicit(&space->mem, NULL, memory_order_relaxed);
}

/* The calling thread's lists in space (made on its first use); NULL when memory is short. */
static sp_mem *my_mem(baton_space *space)
{
    if (sp_tls_mem.serial == space->serial)
        return sp_tls_mem.mem;
    const void *me = &sp_tls_mem;
    /* Acquire: pairs with the release CAS below, so a registered list's fields are visible. */
    sp_mem *head = atomic_load_explicit(&space->mem, memory_order_acquire);
    sp_mem *m = head;
    while (m != NULL && m->owner_thread != me)
        m = m->next;
    if (m == NULL) {
        m = baton__aligned_alloc(BATON_CACHELINE, sizeof *m);
        if (m == NULL)
            return NULL;
        memset(m, 0, sizeof *m);
        for (unsigned c = 0; c < SP_MEM_CLASSES; c++)
            atomic_init(&m->inbox[c], NULL);
        atomic_init(&m->calls.began, 0);
        atomic_init(&m->calls.ended, 0);
        m->owner_thread = me;
        do {
            m->next = head;
            /* Release: the list's fields are visible to whoever walks the registry. */
        } while (!atomic_compare_exchange_weak_explicit(&space->mem, &head, m,
                                                        memory_order_release,
                                                        memory_order_acquire));
    }
    sp_tls_mem.serial = space->serial;
    sp_tls_mem.mem = m;
    return m;
}

sp_call_slot *baton__space_my_calls(baton_space *space)
{
    sp_mem *m = my_mem(space);
    return m != NULL ? &m->calls : NULL;
}

uint64_t baton__space_calls_sum(baton_space *space, bool ended)
{
    uint64_t sum = 0;
    /* Acquire: pairs with my_mem's release CAS, so a registered list's fields are visible. */
    for (sp_mem *m = atomic_load_explicit(&space->mem, memory_order_acquire); m; m = m->next)
        sum += atomic_load_explicit(ended ? &m->calls.ended : &m->calls.began,
                                    memory_order_acquire);
    return sum;
}

static void *heap_block(sp_mem *owner, size_t size)
{
    sp_head *h = baton__malloc(size);
    if (h == NULL)
        return NULL;
    h->owner = owner;
    return h + 1;
}

/* The first block of m's non-empty list c, owned by m. */
static inline void *take_block(sp_mem *m, int c)
{
    sp_block *b = m->head[c];
    m->head[c] = b->next;
    /* The next block may have been given back by another thread, its line still in that
     * thread's cache: ask for it now, so that the next allocation does not wait for it (the
     * load of b->next above took 83% of the allocation samples of join3 at 2 workers). */
    if (b->next != NULL)
        BATON__PREFETCH_WRITE(b->next);
    if (m->count[c] > -SP_MEM_SLACK)
        m->count[c]--;
    sp_head *h = (sp_head *)b;
    h->owner = m;
    return h + 1;
}

/* baton__space_alloc past its fast path: a first use, a dry list, a size without a class. Kept
 * out of line so that the fast path saves no registers. */
static __attribute__((noinline)) void *alloc_slow(baton_space *space, size_t size)
{
    int c = class_of(size + SP_MEM_HEADER);
    if (c < 0)
        return heap_block(NULL, size + SP_MEM_HEADER);
    sp_mem *m = my_mem(space);
    if (m == NULL)
        return heap_block(NULL, class_size(c));
    if (m->head[c] == NULL) {
        /* Acquire: pairs with the release CAS of give_back, so the block's header is visible. */
        /* Not counted: walking the list to count it missed on every block (each last written
         * by the thread that gave it back), a third of this function's samples in join3_hot. */
        m->head[c] = atomic_exchange_explicit(&m->inbox[c], NULL, memory_order_acquire);
    }
    if (m->head[c] == NULL)
        return heap_block(m, class_size(c));
    return take_block(m, c);
}

void *baton__space_alloc(baton_space *space, size_t size)
{
    int c = class_of(size + SP_MEM_HEADER);
    if (c >= 0 && sp_tls_mem.serial == space->serial) {
        sp_mem *m = sp_tls_mem.mem;
        if (m->head[c] != NULL)
            return take_block(m, c);
    }
    return alloc_slow(space, size);
}

/* Pushes block b of class c onto its owner's inbox. */
static void give_back(sp_mem *owner, int c, sp_block *b)
{
    sp_block *head = atomic_load_explicit(&owner->inbox[c], memory_order_relaxed);
    do {
        b->next = head;
        /* Release: pairs with the owner's acquire exchange in baton__space_alloc. */
    } while (!atomic_compare_exchange_weak_explicit(&owner->inbox[c], &head, b,
                                                    memory_order_release, memory_order_relaxed));
}

void baton__space_release(baton_space *space, void *p, size_t size)
{
    if (p == NULL)
        return;
    sp_head *h = (sp_head *)p - 1;
    sp_mem *owner = h->owner;
    int c = class_of(size + SP_MEM_HEADER);
    if (owner == NULL || c < 0) {
        baton__free(h);
        return;
    }
    sp_block *b = (sp_block *)h;
    if (sp_tls_mem.serial != space->serial || sp_tls_mem.mem != owner) {
        give_back(owner, c, b);
        return;
    }
    if (owner->count[c] >= SP_MEM_KEEP) {
        baton__free(h);
        return;
    }
    b->next = owner->head[c];
    owner->head[c] = b;
    owner->count[c]++;
}
