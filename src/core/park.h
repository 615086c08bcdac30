/*
 * park.h — a one-thread parker with a wake-up token (the protocol of Rust's futex-based
 * thread::park): unpark leaves a token that makes the next park return at once, so an unpark
 * that races ahead of the park is never lost.
 *
 * state: EMPTY (0), NOTIFIED (1), PARKED (2). Only the owning thread parks; any thread unparks.
 */
#ifndef BATON_CORE_PARK_H
#define BATON_CORE_PARK_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct baton__parker {
    _Atomic uint32_t state;
} baton__parker;

void baton__parker_init(baton__parker *parker);

/* Consumes the token if there is one, else sleeps until baton__unpark gives one. May not be
 * called by two threads at once on the same parker. Acquire: what the unparker wrote before
 * unpark is visible after park returns. */
void baton__park(baton__parker *parker);

/* Like baton__park but gives up after timeout_ns; returns 0 if a token was consumed,
 * BATON_ETIMEDOUT otherwise. */
int baton__park_timeout(baton__parker *parker, uint64_t timeout_ns);

/* Gives the parker its token (at most one is kept) and wakes the owner if it sleeps. Release:
 * pairs with the acquire in park. Any thread, any time. */
void baton__unpark(baton__parker *parker);

#endif /* BATON_CORE_PARK_H */
