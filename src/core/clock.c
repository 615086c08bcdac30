/*
 * clock.c — the public monotonic clock, on top of the OS shim's clock.
 */
#include "baton/core.h"
#include "core/os.h"

uint64_t baton_now_ns(void)
{
    return baton__monotonic_ns();
}
