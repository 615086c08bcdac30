/*
 * edge.c — an edge of a running graph: a bounded multi-producer multi-consumer ring of records
 * (Dmitry Vyukov's bounded MPMC queue: each slot carries a turn number) plus the count of
 * capacity its producers hold.
 *
 * DESIGN
 *  - Room is reserved before a producer runs (baton__edge_reserve), so a push never finds the
 *    edge full: a batch push takes its positions with one fetch_add on tail instead of a CAS per
 *    item. The ring has at least `capacity` slots, and capacity is only given back after a
 *    consumer has read its records, so the slot a push writes has been read already — except in
 *    the instant between a consumer taking positions (CAS on head) and marking their slots read,
 *    which the push waits out.
 *  - A pop scans the run of published slots from head and takes up to `max` of them with one
 *    CAS, so a batch costs one contended operation however many records it holds.
 *  - Capacity is counted in units; reserving is a CAS loop so that `used` never passes the
 *    capacity, not even for an instant (a transient excess would make another producer believe
 *    the edge full and stop).
 */
#include "graph/internal.h"

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/os.h"

int baton__edge_init(baton__redge *edge, const baton__gedge *declared)
{
    uint64_t size = 1;
    while (size < declared->capacity)
        size <<= 1;
    edge->slots = baton__aligned_alloc(BATON_CACHELINE, size * sizeof *edge->slots);
    if (edge->slots == NULL)
        return BATON_ENOMEM;
    for (uint64_t i = 0; i < size; i++)
        atomic_init(&edge->slots[i].turn, i);
    edge->mask = size - 1;
    edge->capacity = declared->capacity;
    edge->from = declared->from;
    edge->to = declared->to;
    atomic_init(&edge->tail, 0);
    atomic_init(&edge->head, 0);
    atomic_init(&edge->used, 0);
    return 0;
}

void baton__edge_destroy(baton__redge *edge)
{
    baton__free(edge->slots);
    edge->slots = NULL;
}

uint64_t baton__edge_reserve(baton__redge *edge, uint64_t want, uint64_t unit)
{
    uint64_t used = baton__load_relaxed(&edge->used);
    for (;;) {
        uint64_t room = edge->capacity - used;
        uint64_t granted = room / unit < want ? room / unit : want;
        if (granted == 0)
            return 0;
        /* Relaxed: the units are a count; what they protect (slots) is ordered by turn. */
        if (atomic_compare_exchange_weak_explicit(&edge->used, &used, used + granted * unit,
                                                  memory_order_relaxed, memory_order_relaxed))
            return granted;
    }
}

void baton__edge_unreserve(baton__redge *edge, uint64_t units)
{
    if (units == 0)
        return;
    /* Release: a producer that reserves these units after seeing them returned, and then pushes,
     * must find the slots the consumer read marked read; pairs with the acquire in
     * baton__edge_has_room (the scheduling decision) — the slot's own turn is the real guard. */
    baton__fetch_sub_release(&edge->used, units);
}

bool baton__edge_has_room(baton__redge *edge, uint64_t units)
{
    return baton__load_acquire(&edge->used) + units <= edge->capacity;
}

void baton__edge_push(baton__redge *edge, const baton__record *records, uint32_t n)
{
    if (n == 0)
        return;
    uint64_t position = baton__fetch_add_relaxed(&edge->tail, n);
    for (uint32_t i = 0; i < n; i++, position++) {
        baton__slot *slot = &edge->slots[position & edge->mask];
        /* Acquire: pairs with the release store of the consumer that read the slot's previous
         * record, so our write cannot overtake its read. */
        unsigned spins = 0;
        while (baton__load_acquire(&slot->turn) != position) {
            if (++spins < 64)
                baton__cpu_relax();
            else
                baton__thread_yield();
        }
        slot->record = records[i];
        /* Release: pairs with the acquire load in baton__edge_pop's scan. */
        baton__store_release(&slot->turn, position + 1);
    }
}

uint32_t baton__edge_pop(baton__redge *edge, baton__record *out, uint32_t max)
{
    uint64_t head = baton__load_relaxed(&edge->head);
    uint32_t n;
    for (;;) {
        n = 0;
        /* Acquire: pairs with the release store in baton__edge_push, so the record is there. */
        while (n < max &&
               baton__load_acquire(&edge->slots[(head + n) & edge->mask].turn) == head + n + 1)
            n++;
        if (n == 0)
            return 0;
        /* Relaxed: the slots' turns carry the data; head only arbitrates between consumers. */
        if (atomic_compare_exchange_weak_explicit(&edge->head, &head, head + n,
                                                  memory_order_relaxed, memory_order_relaxed))
            break;
    }
    uint64_t size = edge->mask + 1;
    for (uint32_t i = 0; i < n; i++) {
        baton__slot *slot = &edge->slots[(head + i) & edge->mask];
        out[i] = slot->record;
        /* Release: pairs with the acquire wait in baton__edge_push for the next lap. */
        baton__store_release(&slot->turn, head + i + size);
    }
    return n;
}

bool baton__edge_has_input(baton__redge *edge)
{
    uint64_t head = baton__load_acquire(&edge->head);
    return baton__load_acquire(&edge->slots[head & edge->mask].turn) == head + 1;
}
