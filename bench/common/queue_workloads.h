/*
 * queue_workloads.h — what every contender of the queue benchmarks (`baton-bench queue`) does,
 * written once so that baton's own in-process code and the peers (bench/peers/ck_ring, wfcqueue,
 * moodycamel, tbbqueue, crossbeam) move exactly the same items between the same threads and are
 * checked the same way. Header-only and dependency-free; valid C11 and C++17. The crossbeam peer
 * (Rust) mirrors these definitions and must stay bit-for-bit identical: its src/main.rs says so
 * where it copies them. Under -std=c11 include this (or anything that defines _POSIX_C_SOURCE)
 * before any system header, so that sched_yield() is declared.
 *
 * Items. Producer p (0-based) sends its k-th item (k = 0 .. n_p - 1) as the 64-bit value
 * ((p + 1) << 40) | (k + 1): the producer in the high bits and a 1-based index in the low 40, so
 * a consumer can tell who sent an item and in what order, and no item is ever 0. 0 is the poison
 * pill with which a consumer of a queue that has no close learns that no more items come. Items
 * are computed on the fly, so no contender allocates anything per item in the timed section
 * (except wfcqueue's intrusive nodes, which its peer allocates before the clock starts).
 * n_p = queue_items_of(p, P, ITEMS): the ITEMS split as evenly as possible, the first producers
 * taking one more. ITEMS is at most 10^10 < 2^40, so the index never reaches the producer bits.
 *
 * Cases (`<case> THREADS ITEMS`; the main thread is not one of the THREADS and only waits):
 *   spsc THREADS ITEMS  THREADS even >= 2: THREADS/2 independent producer->consumer pairs, each
 *                       with its own queue; pair p's producer is producer p and sends n_p items
 *                       then its own poison pill; its consumer takes exactly producer p's items,
 *                       in order (strict: each index is the previous one plus 1).
 *   mpsc THREADS ITEMS  THREADS >= 2: THREADS-1 producers and 1 consumer on one queue. Strict
 *                       order per producer (a single consumer must see each producer's items in
 *                       the order they were sent, none missing).
 *   mpmc THREADS ITEMS  THREADS even >= 2: THREADS/2 producers and THREADS/2 consumers on one
 *                       queue. Each consumer sees each producer's items in increasing order (not
 *                       necessarily consecutive: the other consumers take the ones in between).
 * The benchmarked cases the driver names, and what a peer is asked for (queue_bench_case()):
 *   spsc = spsc 2, spsc_t4/t8/t16 = spsc 4/8/16, mpsc2 = mpsc 3 (2 producers),
 *   mpsc_t4/t8/t16 = mpsc 4/8/16, mpmc2 = mpmc 4 (2 producers, 2 consumers), mpmc_t8/t16.
 *
 * Check value: the wrapping 64-bit sum, over every consumer, of the values it received (poison
 * pills excluded). It must equal queue_expected_check(P, ITEMS), P the number of producers.
 * Besides the sum, every consumer checks order with struct queue_order_check and must receive
 * only real items plus its poison pill(s); a consumer that sees 0 stops.
 *
 * Ends. A bounded queue holds QUEUE_RING_CAPACITY items. A queue without close learns the end
 * from poison pills: in spsc the producer pushes its pill after its last item; otherwise, after
 * every producer has been joined, the main thread pushes one pill per consumer. (A queue that
 * orders items only per producer, not globally, may let a consumer meet main's pill before items
 * still queued by producers: there each producer pushes its own pill after its last item and the
 * single consumer stops after one pill per producer. Only moodycamel needs this.)
 *
 * Waiting. Libraries with a blocking API use it (oneTBB's concurrent_bounded_queue push and pop,
 * moodycamel's wait_dequeue). Those without one (ck_ring, wfcqueue's dequeue, crossbeam's
 * ArrayQueue) retry a failed push or pop after struct queue_backoff's snooze: a pause spin that
 * doubles from 1 to 64 pauses, then sched_yield() on every further failure; reset after a
 * success. crossbeam_utils::Backoff::snooze (Rust) is the same rule.
 *
 * Timing. Every thread is created and waits at a start flag (spun on with the same backoff); the
 * main thread sets it when all THREADS are there, and the clock runs from then until the main
 * thread has joined the last consumer, which returns only after its poison pill. Before the timed
 * run, one untimed warm-up run of the same case with queue_warmup_items(ITEMS) items, checked
 * the same way.
 */
#ifndef BATON_BENCH_QUEUE_WORKLOADS_H
#define BATON_BENCH_QUEUE_WORKLOADS_H

#if !defined(__cplusplus) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Every bounded contender holds exactly this many items (ck_ring: one less, see its peer). */
#define QUEUE_RING_CAPACITY 1024
#define QUEUE_MAX_PRODUCERS 64
#define QUEUE_MIN_THREADS 2
#define QUEUE_MAX_THREADS 64
#define QUEUE_MAX_ITEMS UINT64_C(10000000000)
#define QUEUE_POISON UINT64_C(0)
#define QUEUE_INDEX_BITS 40
#define QUEUE_INDEX_MASK ((UINT64_C(1) << QUEUE_INDEX_BITS) - 1)
#define QUEUE_WARMUP_MIN_ITEMS UINT64_C(1000)

/* ---- items ---------------------------------------------------------------------------------- */

/* The value of producer p's k-th item (k 0-based). Never QUEUE_POISON. */
static inline uint64_t queue_item_value(unsigned p, uint64_t k)
{
    return ((uint64_t)(p + 1) << QUEUE_INDEX_BITS) | (k + 1);
}

/* The 0-based producer of a value (UINT64_MAX for the poison pill, out of every range). */
static inline uint64_t queue_item_producer(uint64_t v)
{
    return (v >> QUEUE_INDEX_BITS) - 1;
}

/* The 1-based index of a value within its producer's items (k + 1). */
static inline uint64_t queue_item_index(uint64_t v)
{
    return v & QUEUE_INDEX_MASK;
}

/* How many of `total` items producer p of P sends. */
static inline uint64_t queue_items_of(unsigned p, unsigned producers, uint64_t total)
{
    return total / producers + (p < total % producers ? 1 : 0);
}

/* The wrapping sum of every value of every producer: what the consumers' sums must add up to.
 * Producer p contributes n_p * ((p + 1) << 40) + n_p (n_p + 1) / 2, the latter halved on its
 * even factor first so that it is exact modulo 2^64. */
static inline uint64_t queue_expected_check(unsigned producers, uint64_t total)
{
    uint64_t sum = 0;
    for (unsigned p = 0; p < producers; p++) {
        uint64_t n = queue_items_of(p, producers, total);
        uint64_t tri = (n % 2 == 0) ? (n / 2) * (n + 1) : n * ((n + 1) / 2);
        sum += n * ((uint64_t)(p + 1) << QUEUE_INDEX_BITS) + tri;
    }
    return sum;
}

/* Items of the untimed warm-up run that precedes the timed one. */
static inline uint64_t queue_warmup_items(uint64_t items)
{
    uint64_t w = items / 10;
    return w > QUEUE_WARMUP_MIN_ITEMS ? w : QUEUE_WARMUP_MIN_ITEMS;
}

/* ---- the consumer's check ------------------------------------------------------------------- */

/*
 * One per consumer, on the consumer's own stack. Accepts values from producers [first, first +
 * count) only; strict (a queue's only consumer): each producer's indices must be 1, 2, 3, ...;
 * otherwise (mpmc) strictly increasing. Keeps the wrapping sum and the number of values seen.
 */
struct queue_order_check {
    uint64_t last[QUEUE_MAX_PRODUCERS]; /* last index seen per producer; 0: none yet */
    uint64_t sum;                       /* wrapping sum of the values observed */
    uint64_t count;                     /* values observed */
    unsigned first, count_producers;
    bool strict;
};

static inline void queue_order_check_init_range(struct queue_order_check *c, unsigned first,
                                                unsigned count, bool strict)
{
    memset(c->last, 0, sizeof c->last);
    c->sum = 0;
    c->count = 0;
    c->first = first;
    c->count_producers = count;
    c->strict = strict;
}

/* A consumer of all `producers` producers of its queue (mpsc: strict; mpmc: not). */
static inline void queue_order_check_init(struct queue_order_check *c, unsigned producers,
                                          bool strict)
{
    queue_order_check_init_range(c, 0, producers, strict);
}

/* Records v; false if v comes from a producer this consumer does not serve or is out of order.
 * Must not be called with the poison pill (it is rejected as out of range). */
static inline bool queue_order_check_observe(struct queue_order_check *c, uint64_t v)
{
    uint64_t p = queue_item_producer(v);
    uint64_t k = queue_item_index(v);
    if (p < c->first || p - c->first >= c->count_producers || p >= QUEUE_MAX_PRODUCERS)
        return false;
    if (c->strict ? k != c->last[p] + 1 : k <= c->last[p])
        return false;
    c->last[p] = k;
    c->sum += v;
    c->count++;
    return true;
}

/* ---- cases ---------------------------------------------------------------------------------- */

enum queue_case { QUEUE_SPSC = 0, QUEUE_MPSC = 1, QUEUE_MPMC = 2 };

#define QUEUE_CASE_BIT(c) (1u << (unsigned)(c))

/* Who runs where in one case. Producer p pushes into queue (spsc ? p : 0); consumer c pops from
 * queue (spsc ? c : 0). */
struct queue_layout {
    enum queue_case kind;
    unsigned threads;   /* producers + consumers */
    unsigned producers; /* P in queue_items_of and queue_expected_check */
    unsigned consumers;
    unsigned queues; /* spsc: one per pair; otherwise 1 */
};

static inline const char *queue_case_name(enum queue_case kind)
{
    switch (kind) {
    case QUEUE_SPSC:
        return "spsc";
    case QUEUE_MPSC:
        return "mpsc";
    case QUEUE_MPMC:
        return "mpmc";
    }
    return "?";
}

/* "spsc" | "mpsc" | "mpmc" -> 0, anything else -> -1. */
static inline int queue_case_parse(const char *name, enum queue_case *out)
{
    if (strcmp(name, "spsc") == 0)
        *out = QUEUE_SPSC;
    else if (strcmp(name, "mpsc") == 0)
        *out = QUEUE_MPSC;
    else if (strcmp(name, "mpmc") == 0)
        *out = QUEUE_MPMC;
    else
        return -1;
    return 0;
}

/* Fills *l for THREADS threads; -1 if THREADS is outside 2..64 or odd where it must be even. */
static inline int queue_layout_init(struct queue_layout *l, enum queue_case kind, unsigned threads)
{
    if (threads < QUEUE_MIN_THREADS || threads > QUEUE_MAX_THREADS)
        return -1;
    if (kind != QUEUE_MPSC && threads % 2 != 0)
        return -1;
    l->kind = kind;
    l->threads = threads;
    switch (kind) {
    case QUEUE_SPSC:
        l->producers = l->consumers = l->queues = threads / 2;
        break;
    case QUEUE_MPSC:
        l->producers = threads - 1;
        l->consumers = 1;
        l->queues = 1;
        break;
    case QUEUE_MPMC:
        l->producers = l->consumers = threads / 2;
        l->queues = 1;
        break;
    }
    return 0;
}

/* The benchmarked case names the driver uses -> base case and THREADS; -1 if unknown. */
static inline int queue_bench_case(const char *name, enum queue_case *kind, unsigned *threads)
{
    static const struct {
        const char *name;
        enum queue_case kind;
        unsigned threads;
    } table[] = {
        {"spsc", QUEUE_SPSC, 2},      {"spsc_t4", QUEUE_SPSC, 4},   {"spsc_t8", QUEUE_SPSC, 8},
        {"spsc_t16", QUEUE_SPSC, 16}, {"mpsc2", QUEUE_MPSC, 3},     {"mpsc_t4", QUEUE_MPSC, 4},
        {"mpsc_t8", QUEUE_MPSC, 8},   {"mpsc_t16", QUEUE_MPSC, 16}, {"mpmc2", QUEUE_MPMC, 4},
        {"mpmc_t8", QUEUE_MPMC, 8},   {"mpmc_t16", QUEUE_MPMC, 16},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(name, table[i].name) == 0) {
            *kind = table[i].kind;
            *threads = table[i].threads;
            return 0;
        }
    }
    return -1;
}

/* ---- waiting -------------------------------------------------------------------------------- */

#define QUEUE_BACKOFF_SPIN_LIMIT 64 /* pauses in the longest spin before yielding */

static inline void queue_cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/* Retry rule for a push or pop that failed: spin 1, 2, 4, ... 64 pauses, then sched_yield()
 * on every further failure. Reset after every success. */
struct queue_backoff {
    unsigned spins;
};

static inline void queue_backoff_reset(struct queue_backoff *b)
{
    b->spins = 1;
}

static inline void queue_backoff_snooze(struct queue_backoff *b)
{
    if (b->spins <= QUEUE_BACKOFF_SPIN_LIMIT) {
        for (unsigned i = 0; i < b->spins; i++)
            queue_cpu_pause();
        b->spins *= 2;
    } else {
        sched_yield();
    }
}

#endif /* BATON_BENCH_QUEUE_WORKLOADS_H */
