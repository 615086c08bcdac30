/*
 * atomic.h — thin wrappers over C11 <stdatomic.h> whose names carry the memory order, so that the
 * order is visible at every call site (mimalloc's mi_atomic_* naming). Every use with an order
 * other than relaxed has a comment at the call site naming the access it pairs with.
 */
#ifndef BATON_CORE_ATOMIC_H
#define BATON_CORE_ATOMIC_H

#include <stdatomic.h>

#define baton__load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define baton__load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define baton__load_seq_cst(p) atomic_load_explicit((p), memory_order_seq_cst)
#define baton__store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define baton__store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define baton__store_seq_cst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define baton__fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define baton__fetch_add_acq_rel(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define baton__fetch_add_seq_cst(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define baton__fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define baton__fetch_sub_release(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_release)
#define baton__fetch_sub_acq_rel(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_acq_rel)
#define baton__fetch_sub_seq_cst(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define baton__exchange_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define baton__exchange_seq_cst(p, v) atomic_exchange_explicit((p), (v), memory_order_seq_cst)
#define baton__exchange_acquire(p, v) atomic_exchange_explicit((p), (v), memory_order_acquire)
#define baton__exchange_release(p, v) atomic_exchange_explicit((p), (v), memory_order_release)
#define baton__cas_strong_seq_cst(p, expected, desired)                                          \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_seq_cst,    \
                                            memory_order_relaxed)
#define baton__cas_strong_acq_rel(p, expected, desired)                                          \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_acq_rel,    \
                                            memory_order_relaxed)
#define baton__cas_strong_acquire(p, expected, desired)                                          \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_acquire,    \
                                            memory_order_relaxed)
#define baton__cas_weak_acq_rel(p, expected, desired)                                            \
    atomic_compare_exchange_weak_explicit((p), (expected), (desired), memory_order_acq_rel,      \
                                          memory_order_relaxed)
#define baton__cas_weak_relaxed(p, expected, desired)                                            \
    atomic_compare_exchange_weak_explicit((p), (expected), (desired), memory_order_relaxed,      \
                                          memory_order_relaxed)

/* Increments a counter that only its owner thread writes and others may read: a relaxed load
 * and store, not a read-modify-write, because nobody else writes it. */
#define baton__owner_increment(p) baton__store_relaxed((p), baton__load_relaxed(p) + 1)

/* Tells the CPU we are spinning (pause on x86, yield on ARM). */
static inline void baton__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

#endif /* BATON_CORE_ATOMIC_H */
