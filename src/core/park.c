/*
 * park.c — the parker (core/park.h): one sleeping thread, one wake-up token.
 *
 * DESIGN (the futex parker of Rust's std): state is EMPTY, NOTIFIED or PARKED.
 *  park:   EMPTY -> PARKED, or NOTIFIED -> EMPTY (token consumed, return). While PARKED, wait
 *          on the futex; return once the state has been set to NOTIFIED, consuming it.
 *  unpark: swap in NOTIFIED; if the old state was PARKED, wake the futex.
 * The token makes the protocol immune to the order of park and unpark: an unpark that happens
 * before the park makes that park return at once. Tokens do not accumulate.
 */
#include "core/park.h"

#include "baton/core.h"
#include "core/atomic.h"
#include "core/os.h"

enum { BATON__PARK_EMPTY = 0, BATON__PARK_NOTIFIED = 1, BATON__PARK_PARKED = 2 };

void baton__parker_init(baton__parker *parker)
{
    atomic_init(&parker->state, BATON__PARK_EMPTY);
}

static int baton__park_until(baton__parker *parker, uint64_t deadline_ns)
{
    /* Acquire pairs with the release exchange in baton__unpark: the token's writer's earlier
     * writes are visible once we consume it. */
    uint32_t expected = BATON__PARK_NOTIFIED;
    if (baton__cas_strong_acquire(&parker->state, &expected, BATON__PARK_EMPTY))
        return 0;
    /* expected is EMPTY here (only the owner parks, so it cannot be PARKED). */
    expected = BATON__PARK_EMPTY;
    if (!baton__cas_strong_acquire(&parker->state, &expected, BATON__PARK_PARKED)) {
        /* An unpark slipped in between: it must have set NOTIFIED. */
        /* Acquire pairs with the unparker's release exchange; consumes the token. */
        (void)baton__exchange_acquire(&parker->state, BATON__PARK_EMPTY);
        return 0;
    }
    for (;;) {
        uint64_t timeout = 0;
        if (deadline_ns != 0) {
            uint64_t now = baton__monotonic_ns();
            if (now >= deadline_ns) {
                /* Give up, unless an unpark arrived meanwhile: then consume it. */
                uint32_t prev = baton__exchange_acquire(&parker->state, BATON__PARK_EMPTY);
                return prev == BATON__PARK_NOTIFIED ? 0 : BATON_ETIMEDOUT;
            }
            timeout = deadline_ns - now;
        }
        baton__futex_wait(&parker->state, BATON__PARK_PARKED, timeout);
        expected = BATON__PARK_NOTIFIED;
        /* Acquire pairs with the release exchange in baton__unpark. */
        if (baton__cas_strong_acquire(&parker->state, &expected, BATON__PARK_EMPTY))
            return 0;
        /* Spurious wake-up or timeout: still PARKED, go round. */
    }
}

void baton__park(baton__parker *parker)
{
    (void)baton__park_until(parker, 0);
}

int baton__park_timeout(baton__parker *parker, uint64_t timeout_ns)
{
    uint64_t now = baton__monotonic_ns();
    if (timeout_ns == 0)
        timeout_ns = 1;
    /* A deadline past the clock's range means "never": saturate instead of wrapping into the
     * past (0 is the "no deadline" of baton__park_until, UINT64_MAX is never reached). */
    uint64_t deadline = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
    return baton__park_until(parker, deadline);
}

void baton__unpark(baton__parker *parker)
{
    /* Release pairs with the acquire CAS/exchange in baton__park_until. */
    if (baton__exchange_release(&parker->state, BATON__PARK_NOTIFIED) == BATON__PARK_PARKED)
        baton__futex_wake(&parker->state, 1);
}
