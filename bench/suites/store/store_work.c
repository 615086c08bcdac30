/*
 * store_work.c — what the store suite measures inside this process: the
 * motion rule over a flat array, serially and with baton_parallel_for; over a baton_store whose
 * shards are updated in parallel under each policy; and the rewrite-heavy variant, serially over
 * a flat array and through the store's rewrites.
 *
 * Thread counts, so that every parallel row runs W threads:
 *  - baton_parallel_for: a pool of W workers with BATON_POOL_NO_EXTERNAL_SLOTS, the tick loop
 *    run on one of them (pool_install), as the pool suite's motion case
 *    (../pool/pool_work.c) runs it.
 *  - baton_sharded: the same pool (W workers, no external slot) and, under
 *    BATON_STORE_DEDICATED, W executors. Its tick loop (one baton_store_update_all per tick, and
 *    the submissions and baton_store_tick of motion_conflicts) runs on a worker too:
 *    the thread that drives the store is one of the pool's workers, as the parallel_for row's
 *    driver is and as OpenMP's master thread is one of its team, rather than an outside thread
 *    that every tick must wake.
 * Pools and stores are created, filled and packed (baton_store_compact, as the header advises
 * after loading) outside the timed region, and destroyed before the measurement returns, so no
 * contender runs while another one's threads are alive. Before the clock starts, one
 * baton_store_update_all with a function that touches nothing starts the dedicated executors
 * (which start on first use) and passes over every shard once, for every policy alike.
 *
 * The serial rewrite contender implements the store's tick semantics (baton/store.h) directly:
 * the queue is kept sorted by key (one rule, so by scope, then seq); a scan in key order accepts
 * a rewrite iff neither id of its footprint was claimed by an earlier rewrite of the scan, and
 * claims both ids either way (a smaller-key rewrite conflicts whether or not it won itself).
 * Accepted rewrites have disjoint footprints, so applying each in place during the scan equals
 * applying them all to the state the tick began with. Losers stay queued in key order.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "motion_store.h"
#include "store/motion_kernel.h"
#include "store_work.h"

/* Where the interacting x velocity sits in a motion payload (position x, y, z, velocity x). */
#define STORE_VX_OFFSET 24

const char *store_policy_name(baton_store_policy policy)
{
    switch (policy) {
    case BATON_STORE_DYNAMIC:
        return "dynamic";
    case BATON_STORE_STATIC:
        return "static";
    case BATON_STORE_DEDICATED:
        return "dedicated";
    }
    return "unknown";
}

/* Copies the store's payloads into `state` in id order (ids 0 .. entities-1). Returns false,
 * after a message, when the store does not hold exactly those entities. */
static bool store_state_by_id(const baton_store *store, unsigned char *state, size_t entities)
{
    size_t count = baton_store_count(store);
    if (count != entities) {
        cmdline_errorf("bench store: the store holds %zu entities, expected %zu", count, entities);
        return false;
    }
    for (uint64_t id = 0; id < entities; id++) {
        int rc =
            baton_store_get(store, id, state + id * MOTION_PAYLOAD_BYTES, MOTION_PAYLOAD_BYTES);
        if (rc != 0) {
            cmdline_report_error(rc, "baton_store_get");
            return false;
        }
    }
    return true;
}

/* ---- motion --------------------------------------------------------------------------------- */

static double motion_serial_ticks(unsigned char *state, size_t entities, unsigned ticks)
{
    double start;
    motion_init(state, entities);
    start = cmdline_now_s();
    for (unsigned t = 0; t < ticks; t++)
        baton__motion_step_block(state, entities);
    return cmdline_now_s() - start;
}

int store_measure_motion_serial(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    store_motion_case *mc = ctx;
    (void)workers;
    *out_value = mc->ticks / motion_serial_ticks(mc->state, mc->entities, mc->ticks);
    mc->checksum = motion_checksum(mc->state, mc->entities);
    *out_correct = mc->checksum == mc->expected;
    return 0;
}

uint64_t store_motion_reference(store_motion_case *mc, unsigned ticks)
{
    (void)motion_serial_ticks(mc->state, mc->entities, ticks);
    return motion_checksum(mc->state, mc->entities);
}

typedef struct pfor_run {
    baton_pool *pool;
    const store_motion_case *mc;
} pfor_run;

static int motion_range_task(size_t begin, size_t end, void *ctx)
{
    unsigned char *state = ctx;
    baton__motion_step_block(state + begin * MOTION_PAYLOAD_BYTES, end - begin);
    return 0;
}

/* The whole tick loop, run on one of the pool's workers (pool_install). */
static int pfor_ticks(void *ctx)
{
    const pfor_run *run = ctx;
    for (unsigned t = 0; t < run->mc->ticks; t++) {
        int rc = baton_parallel_for(run->pool, 0, run->mc->entities, 0, motion_range_task,
                                    run->mc->state);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int store_measure_motion_pfor(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    store_motion_case *mc = ctx;
    pfor_run run = {NULL, mc};
    double start, elapsed;
    int rc;

    if (cmdline_pool_create(workers, BATON_POOL_NO_EXTERNAL_SLOTS, &run.pool) != 0)
        return -1;
    motion_init(mc->state, mc->entities);
    start = cmdline_now_s();
    rc = pool_install(run.pool, pfor_ticks, &run);
    elapsed = cmdline_now_s() - start;
    if (rc != 0)
        cmdline_report_error(rc, "the tick loop (motion)");
    cmdline_pool_destroy(run.pool, &rc);
    if (rc != 0)
        return -1;
    *out_value = mc->ticks / elapsed;
    mc->checksum = motion_checksum(mc->state, mc->entities);
    *out_correct = mc->checksum == mc->expected;
    return 0;
}

typedef struct sharded_run {
    baton_store *store;
    unsigned ticks;
} sharded_run;

/* The tick loop, run inside the pool like the baton_parallel_for row's. */
static int sharded_ticks(void *ctx)
{
    const sharded_run *run = ctx;
    for (unsigned t = 0; t < run->ticks; t++) {
        int rc = baton_store_update_all(run->store, baton_motion_update, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int store_measure_motion_sharded(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    const store_sharded_case *sc = ctx;
    store_motion_case *mc = sc->mc;
    sharded_run run = {NULL, mc->ticks};
    baton_pool *pool;
    double start, elapsed;
    bool complete;
    int rc;

    if (cmdline_pool_create(workers, BATON_POOL_NO_EXTERNAL_SLOTS, &pool) != 0)
        return -1;
    rc = motion_store_create(pool, sc->policy, workers, mc->entities, &run.store);
    if (rc != 0) {
        cmdline_pool_destroy(pool, &rc);
        return -1;
    }
    start = cmdline_now_s();
    rc = pool_install(pool, sharded_ticks, &run);
    elapsed = cmdline_now_s() - start;
    if (rc != 0)
        cmdline_report_error(rc, "baton_store_update_all (motion)");
    complete = rc == 0 && store_state_by_id(run.store, mc->state, mc->entities);
    baton_store_destroy(run.store);
    cmdline_pool_destroy(pool, &rc);
    if (rc != 0)
        return -1;
    *out_value = mc->ticks / elapsed;
    mc->checksum = complete ? motion_checksum(mc->state, mc->entities) : 0;
    *out_correct = complete && mc->checksum == mc->expected;
    return 0;
}

/* ---- motion_conflicts ----------------------------------------------------------------------- */

/* The two entities swap their x velocities. */
static void exchange_vx(unsigned char *a, unsigned char *b)
{
    unsigned char va[8], vb[8];
    memcpy(va, a + STORE_VX_OFFSET, 8);
    memcpy(vb, b + STORE_VX_OFFSET, 8);
    memcpy(a + STORE_VX_OFFSET, vb, 8);
    memcpy(b + STORE_VX_OFFSET, va, 8);
}

static uint64_t neighbour_of(uint64_t id, size_t entities)
{
    return id + 1 == entities ? 0 : id + 1;
}

/* A queued rewrite of the serial contender; the rule is always the same, so (scope, seq) is its
 * whole key. */
typedef struct queued {
    uint64_t scope;
    uint64_t seq;
} queued;

/* A growable array of queued rewrites. */
typedef struct queue_buf {
    queued *items;
    size_t n, capacity;
} queue_buf;

static bool queue_reserve(queue_buf *q, size_t capacity)
{
    queued *grown;
    if (capacity <= q->capacity)
        return true;
    if (capacity < 2 * q->capacity)
        capacity = 2 * q->capacity;
    grown = realloc(q->items, capacity * sizeof *grown);
    if (grown == NULL) {
        cmdline_errorf("bench store: out of memory for %zu queued rewrites", capacity);
        return false;
    }
    q->items = grown;
    q->capacity = capacity;
    return true;
}

static bool key_less(const queued *a, const queued *b)
{
    return a->scope < b->scope || (a->scope == b->scope && a->seq < b->seq);
}

/* What the serial contender counts. */
typedef struct conflict_totals {
    uint64_t submitted, committed, deferrals, pending;
} conflict_totals;

/* Runs the serial contender; returns 0 with the elapsed seconds and the totals, or -1. */
static int conflict_serial_run(const store_conflict_case *cc, double *out_seconds,
                               conflict_totals *out_totals)
{
    size_t n = cc->entities;
    queue_buf deferred = {0}, fresh = {0}, merged = {0};
    conflict_totals totals = {0};
    uint32_t *claimed;
    size_t expected_fresh = n / 100 * cc->percent + n / 1000 + 64;
    double start;
    bool ok;

    claimed = calloc(n, sizeof *claimed);
    ok = claimed != NULL && queue_reserve(&deferred, expected_fresh / 4) &&
         queue_reserve(&fresh, expected_fresh) && queue_reserve(&merged, expected_fresh);
    if (!ok) {
        if (claimed == NULL)
            cmdline_errorf("bench store: out of memory for %zu claim marks", n);
        free(claimed);
        return -1;
    }
    motion_init(cc->state, n);
    start = cmdline_now_s();
    for (unsigned t = 0; t < cc->ticks && ok; t++) {
        uint32_t stamp = t + 1;
        size_t i = 0, j = 0;

        baton__motion_step_block(cc->state, n);
        fresh.n = 0;
        for (uint64_t id = 0; id < n && ok; id++) {
            if (!store_conflict_chosen(t, id, cc->percent))
                continue;
            ok = queue_reserve(&fresh, fresh.n + 1);
            if (ok)
                fresh.items[fresh.n++] = (queued){id, totals.submitted++};
        }
        ok = ok && queue_reserve(&merged, deferred.n + fresh.n);
        if (!ok)
            break;
        /* Both runs are in key order; merge them. */
        merged.n = 0;
        while (i < deferred.n || j < fresh.n) {
            bool take_deferred =
                j == fresh.n || (i < deferred.n && key_less(&deferred.items[i], &fresh.items[j]));
            merged.items[merged.n++] = take_deferred ? deferred.items[i++] : fresh.items[j++];
        }
        /* Resolve in key order; the losers go back to `deferred`, still in key order. */
        deferred.n = 0;
        if (!queue_reserve(&deferred, merged.n)) {
            ok = false;
            break;
        }
        for (size_t k = 0; k < merged.n; k++) {
            uint64_t a = merged.items[k].scope, b = neighbour_of(a, n);
            if (claimed[a] != stamp && claimed[b] != stamp) {
                exchange_vx(cc->state + a * MOTION_PAYLOAD_BYTES,
                            cc->state + b * MOTION_PAYLOAD_BYTES);
                totals.committed++;
            } else {
                deferred.items[deferred.n++] = merged.items[k];
                totals.deferrals++;
            }
            claimed[a] = claimed[b] = stamp;
        }
    }
    *out_seconds = cmdline_now_s() - start;
    totals.pending = deferred.n;
    free(claimed);
    free(deferred.items);
    free(fresh.items);
    free(merged.items);
    if (!ok)
        return -1;
    *out_totals = totals;
    return 0;
}

int store_conflict_reference(store_conflict_case *cc)
{
    conflict_totals totals;
    double seconds;
    if (conflict_serial_run(cc, &seconds, &totals) != 0)
        return -1;
    cc->expected = motion_checksum(cc->state, cc->entities);
    cc->expected_submitted = totals.submitted;
    cc->expected_committed = totals.committed;
    cc->expected_deferrals = totals.deferrals;
    cc->expected_pending = totals.pending;
    return 0;
}

static bool totals_match(const store_conflict_case *cc, const conflict_totals *totals,
                         const char *who)
{
    if (totals->submitted == cc->expected_submitted &&
        totals->committed == cc->expected_committed &&
        totals->deferrals == cc->expected_deferrals && totals->pending == cc->expected_pending)
        return true;
    cmdline_note("bench store: motion_conflicts: %s: submitted %" PRIu64 ", committed %" PRIu64
                 ", deferred %" PRIu64 ", pending %" PRIu64 "; expected %" PRIu64 ", %" PRIu64
                 ", %" PRIu64 ", %" PRIu64,
                 who, totals->submitted, totals->committed, totals->deferrals, totals->pending,
                 cc->expected_submitted, cc->expected_committed, cc->expected_deferrals,
                 cc->expected_pending);
    return false;
}

int store_measure_conflict_serial(void *ctx, unsigned workers, double *out_value, bool *out_correct)
{
    store_conflict_case *cc = ctx;
    conflict_totals totals;
    double seconds;

    (void)workers;
    if (conflict_serial_run(cc, &seconds, &totals) != 0)
        return -1;
    *out_value = (double)totals.committed / seconds;
    *out_correct = totals_match(cc, &totals, "serial_flat") &&
                   motion_checksum(cc->state, cc->entities) == cc->expected;
    return 0;
}

/* The interact rule: the scope and its neighbour (the argument) exchange x velocities. */
static int interact_rule(baton_rewrite_ctx *rc, void *rule_ctx)
{
    void *a, *b;
    int err;

    (void)rule_ctx;
    err = baton_rewrite_write(rc, baton_rewrite_scope(rc), &a);
    if (err == 0)
        err = baton_rewrite_write(rc, baton_rewrite_arg(rc), &b);
    if (err != 0)
        return err;
    exchange_vx(a, b);
    return 0;
}

/* The timed part of the sharded contender: every tick's update, submissions and tick. */
typedef struct conflict_run {
    baton_store *store;
    uint32_t rule;
    const store_conflict_case *cc;
    conflict_totals totals;
    uint64_t other_failures; /* rejected or failed rewrites: there should be none */
} conflict_run;

static int submit_interactions(conflict_run *run, unsigned tick)
{
    const store_conflict_case *cc = run->cc;
    for (uint64_t id = 0; id < cc->entities; id++) {
        uint64_t writes[2];
        baton_rewrite rw;
        int rc;
        if (!store_conflict_chosen(tick, id, cc->percent))
            continue;
        writes[0] = id;
        writes[1] = neighbour_of(id, cc->entities);
        memset(&rw, 0, sizeof rw);
        rw.rule = run->rule;
        rw.scope = id;
        rw.arg = writes[1];
        rw.writes = writes;
        rw.n_writes = 2;
        rc = baton_store_submit(run->store, &rw, NULL);
        if (rc != 0) {
            cmdline_report_error(rc, "baton_store_submit");
            return rc;
        }
        run->totals.submitted++;
    }
    return 0;
}

/* The tick loop, run inside the pool like the motion case's. */
static int conflict_ticks(void *ctx)
{
    conflict_run *run = ctx;
    for (unsigned t = 0; t < run->cc->ticks; t++) {
        baton_tick_report report;
        int rc = baton_store_update_all(run->store, baton_motion_update, NULL);
        if (rc != 0) {
            cmdline_report_error(rc, "baton_store_update_all (motion_conflicts)");
            return rc;
        }
        rc = submit_interactions(run, t);
        if (rc != 0)
            return rc;
        rc = baton_store_tick(run->store, &report, NULL, NULL);
        if (rc != 0) {
            cmdline_report_error(rc, "baton_store_tick");
            return rc;
        }
        run->totals.committed += report.committed;
        run->totals.deferrals += report.deferred;
        run->other_failures += report.rejected + report.failed;
    }
    run->totals.pending = baton_store_pending(run->store);
    return 0;
}

int store_measure_conflict_sharded(void *ctx, unsigned workers, double *out_value,
                                   bool *out_correct)
{
    const store_sharded_conflict_case *sc = ctx;
    store_conflict_case *cc = sc->cc;
    conflict_run run;
    baton_pool *pool;
    double start, elapsed;
    bool complete;
    int rc;

    memset(&run, 0, sizeof run);
    run.cc = cc;
    if (cmdline_pool_create(workers, BATON_POOL_NO_EXTERNAL_SLOTS, &pool) != 0)
        return -1;
    rc = motion_store_create(pool, sc->policy, workers, cc->entities, &run.store);
    if (rc == 0) {
        rc = baton_store_add_rule(run.store, interact_rule, NULL, &run.rule);
        if (rc != 0) {
            cmdline_report_error(rc, "baton_store_add_rule");
            baton_store_destroy(run.store);
        }
    }
    if (rc != 0) {
        cmdline_pool_destroy(pool, &rc);
        return -1;
    }
    start = cmdline_now_s();
    rc = pool_install(pool, conflict_ticks, &run);
    elapsed = cmdline_now_s() - start;
    complete = rc == 0 && store_state_by_id(run.store, cc->state, cc->entities);
    baton_store_destroy(run.store);
    cmdline_pool_destroy(pool, &rc);
    if (rc != 0)
        return -1;
    if (run.other_failures != 0)
        cmdline_note("bench store: motion_conflicts: %" PRIu64 " rewrites were rejected or failed",
                     run.other_failures);
    *out_value = (double)run.totals.committed / elapsed;
    *out_correct = complete && run.other_failures == 0 &&
                   totals_match(cc, &run.totals, store_policy_name(sc->policy)) &&
                   motion_checksum(cc->state, cc->entities) == cc->expected;
    return 0;
}
