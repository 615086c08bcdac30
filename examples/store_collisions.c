/*
 * store_collisions.c — particles in a sharded store: every tick moves them all (a bulk update),
 * then pairs of neighbours collide (rewrites that write both particles: equal masses exchange
 * velocities). Collisions that share a particle conflict; the one with the smaller key runs, the
 * other waits for the next tick. The program checks what must hold whatever the scheduling:
 * momentum is conserved, no collision is lost or applied twice, and the final state is the same
 * with one worker as with four.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <baton.h>

#define PARTICLES 20000u
#define TICKS 20u

/* A particle is a motion payload: position x, y, z then velocity x, y, z (Q32.32). */
static void velocity_get(const unsigned char *p, int64_t v[3])
{
    memcpy(v, p + 24, 3 * sizeof *v);
}

static void velocity_set(unsigned char *p, const int64_t v[3])
{
    memcpy(p + 24, v, 3 * sizeof *v);
}

static int collide(baton_rewrite_ctx *rc, void *ctx)
{
    void *a, *b;
    int64_t va[3], vb[3];
    int err = baton_rewrite_write(rc, baton_rewrite_scope(rc), &a);
    if (err == 0)
        err = baton_rewrite_write(rc, baton_rewrite_arg(rc), &b);
    if (err != 0)
        return err;
    velocity_get(a, va);
    velocity_get(b, vb);
    velocity_set(a, vb);
    velocity_set(b, va);
    (void)ctx;
    return 0;
}

static int momentum(uint64_t id, const void *payload, void *ctx)
{
    int64_t v[3];
    int64_t *sum = ctx;
    velocity_get(payload, v);
    for (int axis = 0; axis < 3; axis++)
        sum[axis] += v[axis] % 1000; /* small parts, so the sum cannot overflow */
    (void)id;
    return 0;
}

/* Runs the simulation on `workers` workers; returns 0 and the final fingerprint, or an error. */
static int simulate(unsigned workers, uint64_t *fingerprint, uint64_t *collisions)
{
    baton_pool_config pool_cfg = {.struct_size = sizeof pool_cfg, .n_workers = workers};
    baton_pool *pool = NULL;
    baton_store *store = NULL;
    uint32_t rule;
    int64_t before[3] = {0, 0, 0}, after[3] = {0, 0, 0};
    uint64_t submitted = 0;
    int rc = baton_pool_create(&pool_cfg, &pool);
    if (rc != 0)
        return rc;
    baton_store_config cfg = {.struct_size = sizeof cfg,
                              .payload_size = BATON_MOTION_PAYLOAD_SIZE,
                              .shard_bits = 6,
                              .pool = pool};
    rc = baton_store_create(&cfg, &store);
    for (uint64_t id = 0; rc == 0 && id < PARTICLES; id++) {
        unsigned char p[BATON_MOTION_PAYLOAD_SIZE];
        for (int w = 0; w < 6; w++) {
            int64_t x = (int64_t)(baton_mix64(id * 6 + (uint64_t)w) >> 40) - (INT64_C(1) << 23);
            memcpy(p + 8 * w, &x, sizeof x);
        }
        rc = baton_store_insert(store, id, p, sizeof p);
    }
    if (rc == 0)
        rc = baton_store_compact(store);
    if (rc == 0)
        rc = baton_store_add_rule(store, collide, NULL, &rule);
    if (rc == 0)
        rc = baton_store_foreach(store, momentum, before);
    *collisions = 0;
    for (unsigned tick = 0; rc == 0 && tick < TICKS; tick++) {
        rc = baton_store_update_all(store, baton_motion_update, NULL);
        /* One particle in eight collides with its right-hand neighbour this tick. */
        for (uint64_t id = 0; rc == 0 && id + 1 < PARTICLES; id++) {
            if (baton_mix64(id ^ ((uint64_t)tick << 32)) % 8 != 0)
                continue;
            uint64_t pair[2] = {id, id + 1};
            baton_rewrite rw = {.rule = rule, .scope = id, .arg = id + 1, .writes = pair,
                                .n_writes = 2};
            rc = baton_store_submit(store, &rw, NULL);
            submitted++;
        }
        baton_tick_report report;
        if (rc == 0)
            rc = baton_store_tick(store, &report, NULL, NULL);
        if (rc == 0)
            *collisions += report.committed;
    }
    /* Run what is still deferred. */
    while (rc == 0 && baton_store_pending(store) != 0) {
        baton_tick_report report;
        rc = baton_store_tick(store, &report, NULL, NULL);
        if (rc == 0)
            *collisions += report.committed;
    }
    if (rc == 0)
        rc = baton_store_foreach(store, momentum, after);
    if (rc == 0 && *collisions != submitted) {
        fprintf(stderr, "store_collisions: %" PRIu64 " collisions submitted, %" PRIu64
                " committed\n", submitted, *collisions);
        rc = BATON_EMISMATCH;
    }
    if (rc == 0 && memcmp(before, after, sizeof before) != 0) {
        fprintf(stderr, "store_collisions: momentum changed on %u workers\n", workers);
        rc = BATON_EMISMATCH;
    }
    if (rc == 0)
        rc = baton_store_fingerprint(store, fingerprint);
    if (rc != 0)
        fprintf(stderr, "store_collisions: %s (%s)\n", baton_strerror(rc),
                baton_last_error_message());
    baton_store_destroy(store);
    baton_pool_destroy(pool);
    return rc;
}

int main(void)
{
    uint64_t fp1, fp4, n1, n4;
    if (simulate(1, &fp1, &n1) != 0 || simulate(4, &fp4, &n4) != 0)
        return 1;
    printf("%u particles, %u ticks: %" PRIu64 " collisions; fingerprint %016" PRIx64
           " on 1 worker, %016" PRIx64 " on 4\n", PARTICLES, TICKS, n1, fp1, fp4);
    if (fp1 != fp4 || n1 != n4) {
        fprintf(stderr, "store_collisions: the result depends on the number of workers\n");
        return 1;
    }
    return 0;
}
