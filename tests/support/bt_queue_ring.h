/*
 * bt_queue_ring.h — the three bounded rings (SPSC, MPSC, MPMC) behind one table of calls, so that a
 * test written once runs against each kind. The tests register one cmocka case per kind
 * (BT_RING_CASES), named "<kind>_<test>", whose initial state is the kind's table.
 *
 * Items are pointer-sized values: the stress tests encode a producer id and a sequence number
 * in the pointer's bits (bt_item_make / bt_item_producer / bt_item_seq); item 0 of producer 0 is
 * NULL on purpose, since NULL is an item like any other.
 *
 * Inline (not in baton_test_support): the wrappers are made per kind by BT_RING_OPS_DEFINE.
 */
#ifndef BT_SUPPORT_QUEUE_RING_H
#define BT_SUPPORT_QUEUE_RING_H

#include "support/bt_common.h"
#include "baton/queue.h"

#include "queue/testing.h"

_Static_assert(sizeof(void *) == 8, "the queue tests encode 64-bit items in pointers");

typedef enum bt_ring_kind { BT_RING_SPSC, BT_RING_MPSC, BT_RING_MPMC } bt_ring_kind;

typedef struct bt_ring_ops {
    const char *name;
    bt_ring_kind kind;
    bool multi_producer;
    bool multi_consumer;
    int (*create)(size_t capacity, void **out); /* out may be NULL (passed on as NULL) */
    void (*destroy)(void *q);
    size_t (*capacity)(const void *q);
    size_t (*size)(const void *q);
    int (*try_push)(void *q, void *item);
    int (*push_n)(void *q, void *const *items, size_t n, size_t *pushed);
    int (*push)(void *q, void *item, uint64_t timeout_ns);
    int (*try_pop)(void *q, void **item);
    int (*pop_n)(void *q, void **items, size_t max, size_t *popped);
    int (*pop)(void *q, void **item, uint64_t timeout_ns);
    void (*close)(void *q);
    void (*set_position)(void *q, uint64_t pos);
} bt_ring_ops;

/* Wrappers with void * in place of the kind's type (calling through a cast function pointer
 * would be undefined behaviour). */
#define BT_RING_OPS_DEFINE(KIND, ENUM, MP, MC)                                                     \
    static inline int bt__ring_##KIND##_create(size_t capacity, void **out)                        \
    {                                                                                              \
        baton_##KIND *q = NULL;                                                                    \
        int rc = baton_##KIND##_create(capacity, out != NULL ? &q : NULL);                         \
        if (out != NULL)                                                                           \
            *out = q;                                                                              \
        return rc;                                                                                 \
    }                                                                                              \
    static inline void bt__ring_##KIND##_destroy(void *q)                                          \
    {                                                                                              \
        baton_##KIND##_destroy(q);                                                                 \
    }                                                                                              \
    static inline size_t bt__ring_##KIND##_capacity(const void *q)                                 \
    {                                                                                              \
        return baton_##KIND##_capacity(q);                                                         \
    }                                                                                              \
    static inline size_t bt__ring_##KIND##_size(const void *q)                                     \
    {                                                                                              \
        return baton_##KIND##_size(q);                                                             \
    }                                                                                              \
    static inline int bt__ring_##KIND##_try_push(void *q, void *item)                              \
    {                                                                                              \
        return baton_##KIND##_try_push(q, item);                                                   \
    }                                                                                              \
    static inline int bt__ring_##KIND##_push_n(void *q, void *const *items, size_t n,              \
                                               size_t *pushed)                                     \
    {                                                                                              \
        return baton_##KIND##_push_n(q, items, n, pushed);                                         \
    }                                                                                              \
    static inline int bt__ring_##KIND##_push(void *q, void *item, uint64_t timeout_ns)             \
    {                                                                                              \
        return baton_##KIND##_push(q, item, timeout_ns);                                           \
    }                                                                                              \
    static inline int bt__ring_##KIND##_try_pop(void *q, void **item)                              \
    {                                                                                              \
        return baton_##KIND##_try_pop(q, item);                                                    \
    }                                                                                              \
    static inline int bt__ring_##KIND##_pop_n(void *q, void **items, size_t max, size_t *popped)   \
    {                                                                                              \
        return baton_##KIND##_pop_n(q, items, max, popped);                                        \
    }                                                                                              \
    static inline int bt__ring_##KIND##_pop(void *q, void **item, uint64_t timeout_ns)             \
    {                                                                                              \
        return baton_##KIND##_pop(q, item, timeout_ns);                                            \
    }                                                                                              \
    static inline void bt__ring_##KIND##_close(void *q)                                            \
    {                                                                                              \
        baton_##KIND##_close(q);                                                                   \
    }                                                                                              \
    static inline void bt__ring_##KIND##_set_position(void *q, uint64_t pos)                       \
    {                                                                                              \
        baton__##KIND##_set_position(q, pos);                                                      \
    }                                                                                              \
    static const bt_ring_ops BT_RING_OPS_##ENUM = {                                                \
        #KIND,                                                                                     \
        BT_RING_##ENUM,                                                                            \
        MP,                                                                                        \
        MC,                                                                                        \
        bt__ring_##KIND##_create,                                                                  \
        bt__ring_##KIND##_destroy,                                                                 \
        bt__ring_##KIND##_capacity,                                                                \
        bt__ring_##KIND##_size,                                                                    \
        bt__ring_##KIND##_try_push,                                                                \
        bt__ring_##KIND##_push_n,                                                                  \
        bt__ring_##KIND##_push,                                                                    \
        bt__ring_##KIND##_try_pop,                                                                 \
        bt__ring_##KIND##_pop_n,                                                                   \
        bt__ring_##KIND##_pop,                                                                     \
        bt__ring_##KIND##_close,                                                                   \
        bt__ring_##KIND##_set_position,                                                            \
    };

BT_RING_OPS_DEFINE(spsc, SPSC, false, false)
BT_RING_OPS_DEFINE(mpsc, MPSC, true, false)
BT_RING_OPS_DEFINE(mpmc, MPMC, true, true)

/* One cmocka case per ring kind: "spsc_fn", "mpsc_fn", "mpmc_fn". */
#define BT_RING_CASES(fn)                                                                          \
    {"spsc_" #fn, fn, NULL, NULL, (void *)&BT_RING_OPS_SPSC},                                      \
        {"mpsc_" #fn, fn, NULL, NULL, (void *)&BT_RING_OPS_MPSC},                                  \
    {                                                                                              \
        "mpmc_" #fn, fn, NULL, NULL, (void *)&BT_RING_OPS_MPMC                                     \
    }

/* One cmocka case for one kind: BT_RING_CASE(MPMC, "mpmc_", fn) is "mpmc_fn". */
#define BT_RING_CASE(ENUM, prefix, fn) {prefix #fn, fn, NULL, NULL, (void *)&BT_RING_OPS_##ENUM}

/* The ring kind of a case registered with BT_RING_CASES. */
static inline const bt_ring_ops *bt_ring_ops_of(void **state)
{
    return (const bt_ring_ops *)*state;
}

/* Creates a ring of `capacity` (asserting success) on the main thread. */
static inline void *bt_ring_new(const bt_ring_ops *ops, size_t capacity)
{
    void *q = NULL;
    int rc = ops->create(capacity, &q);
    if (rc != 0)
        fail_msg("baton_%s_create(%zu) = %s: %s", ops->name, capacity, baton_err_name(rc),
                 baton_last_error_message());
    assert_non_null(q);
    return q;
}

/* ---- items: a producer id and a sequence number in one pointer ------------------------------ */

#define BT_ITEM_SEQ_BITS 40

static inline void *bt_item_make(unsigned producer, uint64_t seq)
{
    return (void *)(uintptr_t)(((uint64_t)producer << BT_ITEM_SEQ_BITS) | seq);
}

static inline unsigned bt_item_producer(const void *item)
{
    return (unsigned)((uint64_t)(uintptr_t)item >> BT_ITEM_SEQ_BITS);
}

static inline uint64_t bt_item_seq(const void *item)
{
    return (uint64_t)(uintptr_t)item & ((UINT64_C(1) << BT_ITEM_SEQ_BITS) - 1);
}

/* A plain value as an item (single-threaded tests): 0 is NULL. */
static inline void *bt_item_of(uint64_t value)
{
    return (void *)(uintptr_t)value;
}

static inline uint64_t bt_value_of(const void *item)
{
    return (uint64_t)(uintptr_t)item;
}

/* ---- a model FIFO and random single-threaded steps checked against it ------------------------ */

typedef struct bt_ring_model {
    uint64_t *buf;
    size_t cap, head, count;
    uint64_t next_value; /* the value of the next item pushed (0 first: NULL) */
} bt_ring_model;

static inline void bt_model_init(bt_ring_model *m, size_t cap, uint64_t first_value)
{
    m->buf = calloc(cap, sizeof *m->buf);
    assert_non_null(m->buf);
    m->cap = cap;
    m->head = 0;
    m->count = 0;
    m->next_value = first_value;
}

static inline void bt_model_free(bt_ring_model *m)
{
    free(m->buf);
    m->buf = NULL;
}

static inline void bt_model_push(bt_ring_model *m, uint64_t v)
{
    assert_true(m->count < m->cap);
    m->buf[(m->head + m->count) % m->cap] = v;
    m->count++;
}

static inline uint64_t bt_model_pop(bt_ring_model *m)
{
    assert_true(m->count > 0);
    uint64_t v = m->buf[m->head];
    m->head = (m->head + 1) % m->cap;
    m->count--;
    return v;
}

/* Pops one item from the ring with try_pop and checks it against the model. */
static inline void bt_model_expect_pop(const bt_ring_ops *ops, void *q, bt_ring_model *m)
{
    void *got = bt_item_of(0xdeadbeef);
    int rc = ops->try_pop(q, &got);
    if (rc != 0)
        fail_msg("%s try_pop with %zu items in the ring = %s", ops->name, m->count,
                 baton_err_name(rc));
    uint64_t want = bt_model_pop(m);
    if (bt_value_of(got) != want)
        fail_msg("%s try_pop: got %#llx, expected %#llx", ops->name,
                 (unsigned long long)bt_value_of(got), (unsigned long long)want);
}

/* Pushes the model's next value with try_push, expecting room. */
static inline void bt_model_expect_push(const bt_ring_ops *ops, void *q, bt_ring_model *m)
{
    int rc = ops->try_push(q, bt_item_of(m->next_value));
    if (rc != 0)
        fail_msg("%s try_push with %zu of %zu items in the ring = %s", ops->name, m->count,
                 m->cap, baton_err_name(rc));
    bt_model_push(m, m->next_value++);
}

/*
 * One random operation of any kind (try/timed-0 push and pop, push_n, pop_n, size), its result
 * checked against the model. Never waits: timeouts are 0 or a few microseconds.
 */
static inline void bt_model_random_step(const bt_ring_ops *ops, void *q, bt_ring_model *m,
                                        bt_rng *rng)
{
    enum { BATCH = 40 };
    void *items[BATCH] = {0}; /* zeroed: gcc -O2 sees push_n(n == 0) read it */
    size_t free_room = m->cap - m->count;
    int rc;
    switch (bt_rng_below(rng, 9)) {
    case 0:
    case 1: /* try_push */
        rc = ops->try_push(q, bt_item_of(m->next_value));
        if (free_room == 0) {
            if (rc != BATON_EAGAIN)
                fail_msg("%s try_push on a full ring = %s", ops->name, baton_err_name(rc));
        } else {
            bt_assert_rc(rc, 0);
            bt_model_push(m, m->next_value++);
        }
        break;
    case 2: /* push with timeout 0 (or a few µs when full) */
        rc = ops->push(q, bt_item_of(m->next_value), free_room == 0 ? bt_rng_below(rng, 3000) : 0);
        if (free_room == 0) {
            if (rc != BATON_ETIMEDOUT)
                fail_msg("%s push(timeout) on a full ring = %s", ops->name, baton_err_name(rc));
        } else {
            bt_assert_rc(rc, 0);
            bt_model_push(m, m->next_value++);
        }
        break;
    case 3: { /* push_n of 1..cap+2 items (never 0 when full: that case is left open) */
        size_t n = (size_t)bt_rng_below(rng, (m->cap + 3 < BATCH ? m->cap + 3 : BATCH));
        if (n == 0 && free_room == 0)
            n = 1;
        for (size_t i = 0; i < n; i++)
            items[i] = bt_item_of(m->next_value + i);
        size_t pushed = 12345;
        rc = ops->push_n(q, items, n, &pushed);
        size_t want = n < free_room ? n : free_room;
        if (pushed != want)
            fail_msg("%s push_n(%zu) with room for %zu pushed %zu", ops->name, n, free_room,
                     pushed);
        bt_assert_rc(rc, (want > 0 || n == 0) ? 0 : BATON_EAGAIN);
        for (size_t i = 0; i < pushed; i++)
            bt_model_push(m, m->next_value++);
        break;
    }
    case 4:
    case 5: /* try_pop */
        if (m->count == 0) {
            void *got = bt_item_of(1);
            rc = ops->try_pop(q, &got);
            if (rc != BATON_EAGAIN)
                fail_msg("%s try_pop on an empty ring = %s", ops->name, baton_err_name(rc));
        } else {
            bt_model_expect_pop(ops, q, m);
        }
        break;
    case 6: { /* pop with timeout 0 (or a few µs when empty) */
        void *got = bt_item_of(0xdeadbeef);
        rc = ops->pop(q, &got, m->count == 0 ? bt_rng_below(rng, 3000) : 0);
        if (m->count == 0) {
            if (rc != BATON_ETIMEDOUT)
                fail_msg("%s pop(timeout) on an empty ring = %s", ops->name, baton_err_name(rc));
        } else {
            bt_assert_rc(rc, 0);
            uint64_t want = bt_model_pop(m);
            if (bt_value_of(got) != want)
                fail_msg("%s pop: got %#llx, expected %#llx", ops->name,
                         (unsigned long long)bt_value_of(got), (unsigned long long)want);
        }
        break;
    }
    case 7: { /* pop_n of 0..cap+2 */
        size_t max = (size_t)bt_rng_below(rng, (m->cap + 3 < BATCH ? m->cap + 3 : BATCH));
        for (size_t i = 0; i < BATCH; i++)
            items[i] = bt_item_of(0xdeadbeef);
        size_t popped = 12345;
        rc = ops->pop_n(q, items, max, &popped);
        size_t want = max < m->count ? max : m->count;
        if (popped != want)
            fail_msg("%s pop_n(%zu) with %zu items popped %zu", ops->name, max, m->count,
                     popped);
        bt_assert_rc(rc, (want > 0 || max == 0) ? 0 : BATON_EAGAIN);
        for (size_t i = 0; i < popped; i++) {
            uint64_t v = bt_model_pop(m);
            if (bt_value_of(items[i]) != v)
                fail_msg("%s pop_n item %zu: got %#llx, expected %#llx", ops->name, i,
                         (unsigned long long)bt_value_of(items[i]), (unsigned long long)v);
        }
        break;
    }
    default: /* size */
        if (ops->size(q) != m->count)
            fail_msg("%s size = %zu, expected %zu", ops->name, ops->size(q), m->count);
        break;
    }
}

#endif /* BT_SUPPORT_QUEUE_RING_H */
