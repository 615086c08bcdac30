/*
 * deque.c — a Chase-Lev work-stealing deque with a private end (a split deque).
 *
 * DESIGN
 *  - Chase & Lev (SPAA 2005) with the C11 memory orders of Lê, Pop, Cohen and Zappa Nardelli,
 *    "Correct and Efficient Work-Stealing for Weak Memory Models" (PPoPP 2013), applied to the
 *    public part [top, split): `split` plays the role of their `bottom` for the thieves.
 *  - The private part [split, bottom) is the idea of Lace (van Dijk and van de Pol, "Lace:
 *    non-blocking split deque for work-stealing", 2014) and Wool's private tasks: thieves never
 *    look past split, so the owner pushes and pops there with plain stores. Chase-Lev's pop
 *    needs a StoreLoad fence on every call (a locked instruction on x86, about half the cost of
 *    a fine-grained fork-join here); a private pop needs none. The owner publishes (split =
 *    bottom, a release store) whenever some worker is idle, which the pool tells it on each push
 *    and pop; so the fence is paid only while there is someone to steal.
 *  - Lê et al.'s seq_cst fences are expressed as seq_cst accesses: the owner's store of split
 *    when it takes back a public job and its load of top, and the thief's loads of top and
 *    split, all take part in the single total order of seq_cst operations, which is what the
 *    fences buy (a thief and the owner racing for the last public job cannot both miss each
 *    other's update). ThreadSanitizer understands seq_cst accesses; it does not model fences.
 *  - Growing copies [top, bottom) into an array twice the size and publishes it with a release
 *    store before split can move past the old capacity. A thief that still holds the old array
 *    reads a valid job for any index it can win by CAS, because the old array is never written
 *    again and is only freed with the deque ("retire late", as Lê et al. and crossbeam do).
 *    Arrays only grow, so retired memory is at most the size of the live array.
 *  - Invariant: top <= split <= bottom (in the owner's view; thieves may see a smaller top).
 */
#include "pool/deque.h"

#include "core/alloc.h"
#include "core/atomic.h"

static baton__deque_array *baton__deque_array_new(int64_t capacity)
{
    baton__deque_array *a =
        baton__aligned_alloc(BATON_CACHELINE, sizeof *a + (size_t)capacity * sizeof a->slots[0]);
    if (a == NULL)
        return NULL;
    a->mask = capacity - 1;
    a->retired = NULL;
    for (int64_t i = 0; i < capacity; i++)
        atomic_init(&a->slots[i], NULL);
    return a;
}

int baton__deque_init(baton__deque *deque, int64_t capacity)
{
    int64_t c = 16;
    while (c < capacity)
        c <<= 1;
    baton__deque_array *a = baton__deque_array_new(c);
    if (a == NULL)
        return BATON_ENOMEM;
    atomic_init(&deque->top, 0);
    atomic_init(&deque->split, 0);
    atomic_init(&deque->array, a);
    deque->bottom = 0;
    deque->owner_split = 0;
    return 0;
}

void baton__deque_destroy(baton__deque *deque)
{
    baton__deque_array *a = baton__load_relaxed(&deque->array);
    while (a != NULL) {
        baton__deque_array *older = a->retired;
        baton__free(a);
        a = older;
    }
    atomic_store_explicit(&deque->array, NULL, memory_order_relaxed);
}

static baton__deque_array *baton__deque_grow(baton__deque *deque, baton__deque_array *old,
                                             int64_t top, int64_t bottom)
{
    baton__deque_array *a = baton__deque_array_new((old->mask + 1) * 2);
    if (a == NULL)
        return NULL;
    for (int64_t i = top; i < bottom; i++) {
        baton__job *job = baton__load_relaxed(&old->slots[i & old->mask]);
        baton__store_relaxed(&a->slots[i & a->mask], job);
    }
    a->retired = old;
    /* Release pairs with the acquire load of array in baton__deque_steal: a thief that sees the
     * new array sees the jobs copied into it. */
    baton__store_release(&deque->array, a);
    return a;
}

void baton__deque_publish(baton__deque *deque)
{
    if (deque->owner_split == deque->bottom)
        return;
    deque->owner_split = deque->bottom;
    /* Release pairs with the thieves' seq_cst loads of split: the slots, and everything the
     * owner wrote into the jobs before pushing them, are visible to whoever steals them. */
    baton__store_release(&deque->split, deque->bottom);
}

int baton__deque_push(baton__deque *deque, baton__job *job, bool publish)
{
    int64_t b = deque->bottom;
    baton__deque_array *a = baton__load_relaxed(&deque->array);
    if (b - baton__load_relaxed(&deque->top) > a->mask) {
        /* Acquire pairs with the thieves' seq_cst CAS of top: the slots they took are free. */
        int64_t t = baton__load_acquire(&deque->top);
        if (b - t > a->mask) {
            a = baton__deque_grow(deque, a, t, b);
            if (a == NULL)
                return BATON_ENOMEM;
        }
    }
    baton__store_relaxed(&a->slots[b & a->mask], job);
    deque->bottom = b + 1;
    if (publish)
        baton__deque_publish(deque);
    return 0;
}

baton__job *baton__deque_pop(baton__deque *deque)
{
    baton__deque_array *a = baton__load_relaxed(&deque->array);
    int64_t b = deque->bottom;
    if (b > deque->owner_split) {
        /* Private: nobody else can see this slot. */
        deque->bottom = b - 1;
        return baton__load_relaxed(&a->slots[(b - 1) & a->mask]);
    }
    /* No private job: take the newest public one, racing the thieves (Chase-Lev's take). */
    int64_t s = b - 1;
    /* seq_cst store then seq_cst load of top: a thief's seq_cst load of split either sees the
     * decrement, or this load sees the thief's CAS of top (Lê et al.'s fence in take()). */
    baton__store_seq_cst(&deque->split, s);
    int64_t t = baton__load_seq_cst(&deque->top);
    if (t > s) {
        /* Empty: restore split. */
        baton__store_relaxed(&deque->split, s + 1);
        return NULL;
    }
    baton__job *job = baton__load_relaxed(&a->slots[s & a->mask]);
    if (t == s) {
        /* The last job: whoever moves top past it has it. */
        if (!baton__cas_strong_seq_cst(&deque->top, &t, t + 1))
            job = NULL;
        baton__store_relaxed(&deque->split, s + 1);
        return job;
    }
    deque->bottom = s;
    deque->owner_split = s;
    return job;
}

baton__job *baton__deque_steal(baton__deque *deque, bool *out_lost_race)
{
    *out_lost_race = false;
    /* seq_cst loads: see baton__deque_pop. The load of split also acquires the owner's release
     * store in baton__deque_publish, which makes the job's contents visible. */
    int64_t t = baton__load_seq_cst(&deque->top);
    int64_t s = baton__load_seq_cst(&deque->split);
    if (t >= s)
        return NULL;
    /* Acquire pairs with the release store in baton__deque_grow. */
    baton__deque_array *a = baton__load_acquire(&deque->array);
    baton__job *job = baton__load_relaxed(&a->slots[t & a->mask]);
    if (!baton__cas_strong_seq_cst(&deque->top, &t, t + 1)) {
        *out_lost_race = true;
        return NULL;
    }
    return job;
}
