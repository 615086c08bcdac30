/*
 * motion.c — the motion rule as a built-in workload: each tick, every entity's position moves by
 * its velocity, in saturating Q32.32 fixed point (kernel in motion_kernel.h, shared with the
 * benchmark's contenders).
 */
#include "store/internal.h"
#include "store/motion_kernel.h"

_Static_assert(BATON_MOTION_PAYLOAD_SIZE == BATON__MOTION_BYTES, "one payload size");

void baton_motion_step(void *payloads, size_t count)
{
    if (payloads != NULL)
        baton__motion_step_block(payloads, count);
}

int baton_motion_update(const uint64_t *ids, void *payloads, size_t count, unsigned shard,
                        void *ctx)
{
    (void)ids;
    (void)shard;
    (void)ctx;
    baton__motion_step_block(payloads, count);
    return 0;
}
