/*
 * test_store_update.c — baton_store_update_all under every policy, at one pool size
 * (--workers N; CTest runs it at 1, 2, 4, 8 and 16, oversubscribed on 2 cores on purpose):
 *  - each run of fn gets one whole shard: a shard with entities is one call, with exactly that
 *    shard's ids (each routes to it) and payloads (the first aligned to 64 bytes), and every
 *    entity is updated exactly once per update_all (a per-entity counter, changed without atomics:
 *    TSan sees any second toucher); for DYNAMIC, STATIC and DEDICATED with the pool, and for
 *    DYNAMIC, STATIC and DEDICATED without a pool (3 executors, and one per CPU, pinned);
 *  - who runs what, as store.h says: without a pool, DYNAMIC and STATIC run every shard on the
 *    calling thread; STATIC's task i takes the i-th contiguous block of shards (so a block's
 *    shards share a thread within one call); DEDICATED's executor i owns block i for the store's
 *    life (the same thread for a shard across calls, exactly n threads, n = executors, else
 *    the pool's workers, else one per online CPU); with BATON_STORE_PIN_EXECUTORS executor i
 *    is bound to the (i mod n)-th CPU the process may use, and to it only;
 *  - set_policy takes effect from the next call (DEDICATED off the calling thread, DYNAMIC and
 *    STATIC without a pool on it, switching back and forth);
 *  - under DEDICATED a rewrite's rule runs on the executor that owns its scope's shard;
 *  - errors: fn failing on some shards returns the error of the lowest-numbered failing shard,
 *    and every shard is still processed;
 *  - baton_motion_update through update_all equals baton_motion_step run serially over a flat
 *    copy, and baton_motion_step itself equals a saturating add written here independently;
 *  - an empty store, NULL arguments;
 *  - N threads reading one store at once (get, contains, shard_of, shard_size, count, foreach,
 *    fingerprint), which store.h allows: they all see it whole (and TSan sees no write);
 *  - one store per policy, each driven by a thread of its own (bulk updates and ticks), all on
 *    the one pool at once: each ends exactly as its own calls say.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT: what BATON_STORE_PIN_EXECUTORS did */
#include <sched.h>
#include <unistd.h>

#include "support/bt_common.h"

#include "support/bt_store.h"

BT_DEFINE_POOL_GROUP()

enum { UP = 32 }; /* payload: id (LE), updates (LE), 16 bytes of filler */

typedef struct mode {
    const char *name;
    baton_store_policy policy;
    bool with_pool;
    unsigned executors;
    unsigned flags;
} mode;

static const mode modes[] = {
    {"dynamic/pool", BATON_STORE_DYNAMIC, true, 0, 0},
    {"static/pool", BATON_STORE_STATIC, true, 0, 0},
    {"dedicated/pool", BATON_STORE_DEDICATED, true, 0, 0},
    {"dynamic/no pool", BATON_STORE_DYNAMIC, false, 0, 0},
    {"static/no pool", BATON_STORE_STATIC, false, 0, 0},
    {"dedicated/no pool, 3 executors", BATON_STORE_DEDICATED, false, 3, 0},
    {"dedicated/pool, 5 executors", BATON_STORE_DEDICATED, true, 5, 0},
    {"dedicated/no pool, one per CPU, pinned", BATON_STORE_DEDICATED, false, 0,
     BATON_STORE_PIN_EXECUTORS},
};
#define N_MODES (sizeof modes / sizeof modes[0])

/* The first shard of the contiguous block (of n over `shards`) that shard s belongs to, as
 * store.h defines STATIC's blocks: [i * shards / n, (i + 1) * shards / n). */
static unsigned block_lead(unsigned s, unsigned n, unsigned shards)
{
    unsigned lead = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned first = (unsigned)((uint64_t)i * shards / n);
        if (first <= s)
            lead = first;
    }
    return lead;
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : (unsigned)n;
}

/* The CPUs this process may use, in increasing order, as the main thread saw them at start. */
static int g_allowed[CPU_SETSIZE];
static int g_n_allowed;

static void read_allowed_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    g_n_allowed = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            g_allowed[g_n_allowed++] = c;
    assert_true(g_n_allowed > 0);
}

static baton_store *mode_store(const mode *m, size_t payload_size, unsigned shard_bits)
{
    baton_store_config config =
        bt_store_config(payload_size, shard_bits, m->flags, m->with_pool ? g_pool : NULL, m->policy,
                  BATON_STORE_DEFER, m->executors);
    return bt_store_create_config(&config);
}

/* What one update_all saw, per shard. Each slot is written by the one worker that owns the
 * shard during the call, and read by the main thread after it. */
typedef struct shard_seen {
    atomic_uint calls;
    size_t count;
    pthread_t thread;
    int cpus, cpu; /* the thread's affinity: how many CPUs, and the first */
    int fail_with; /* set before the call: the shard's fn returns this */
} shard_seen;

typedef struct update_ctx {
    const baton_store *store;
    shard_seen *seen;
    unsigned shards;
} update_ctx;

static int count_update(const uint64_t *ids, void *payloads, size_t count, unsigned shard,
                        void *ctx)
{
    update_ctx *u = ctx;
    BT_CHECK_MSG(shard < u->shards, "shard %u of %u", shard, u->shards);
    if (shard >= u->shards)
        return 0;
    shard_seen *s = &u->seen[shard];
    atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed);
    s->count = count;
    s->thread = pthread_self();
    cpu_set_t set;
    CPU_ZERO(&set);
    s->cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
    s->cpu = -1;
    for (int c = 0; c < CPU_SETSIZE && s->cpu < 0; c++)
        if (CPU_ISSET(c, &set))
            s->cpu = c;
    BT_CHECK_MSG(count == 0 || (uintptr_t)payloads % 64 == 0, "shard %u payloads at %p", shard,
                 payloads);
    unsigned char *p = payloads;
    for (size_t i = 0; i < count; i++, p += UP) {
        BT_CHECK_MSG(baton_store_route(ids[i], 8, 0) == shard, "id %#llx in shard %u",
                     (unsigned long long)ids[i], shard);
        BT_CHECK_MSG(bt_get64(p, 0) == ids[i], "shard %u entity %zu: payload of %#llx, id %#llx",
                     shard, i, (unsigned long long)bt_get64(p, 0), (unsigned long long)ids[i]);
        bt_put64(p, 8, bt_get64(p, 8) + 1);
    }
    return s->fail_with;
}

static uint64_t entity_id(size_t i)
{
    return (uint64_t)i * UINT64_C(0x2545F4914F6CDD1D) + 3;
}

static void fill(baton_store *store, size_t n)
{
    unsigned char payload[UP];
    memset(payload, 0x5A, UP);
    for (size_t i = 0; i < n; i++) {
        bt_put64(payload, 0, entity_id(i));
        bt_put64(payload, 8, 0);
        bt_assert_rc(baton_store_insert(store, entity_id(i), payload, UP), 0);
    }
}

/* Every entity's counter is `rounds`. */
static void check_counters(const baton_store *store, size_t n, uint64_t rounds)
{
    unsigned char payload[UP];
    for (size_t i = 0; i < n; i++) {
        bt_assert_rc(baton_store_get(store, entity_id(i), payload, UP), 0);
        if (bt_get64(payload, 8) != rounds)
            fail_msg("entity %zu updated %llu times, expected %llu", i,
                     (unsigned long long)bt_get64(payload, 8), (unsigned long long)rounds);
    }
}

/* Runs one update_all and checks the calls: one per shard with entities (at most one for an
 * empty shard), each with the shard's size. */
static int run_counted(baton_store *store, update_ctx *u)
{
    for (unsigned s = 0; s < u->shards; s++) {
        atomic_store(&u->seen[s].calls, 0);
        u->seen[s].count = SIZE_MAX;
    }
    int rc = baton_store_update_all(store, count_update, u);
    bt_assert_no_thread_failures();
    for (unsigned s = 0; s < u->shards; s++) {
        unsigned calls = atomic_load(&u->seen[s].calls);
        size_t size = baton_store_shard_size(store, s);
        if (size > 0 && calls != 1)
            fail_msg("shard %u (%zu entities): %u calls", s, size, calls);
        if (size == 0 && calls > 1)
            fail_msg("empty shard %u: %u calls", s, calls);
        if (calls == 1 && u->seen[s].count != size)
            fail_msg("shard %u: fn got %zu entities, the shard holds %zu", s, u->seen[s].count,
                     size);
    }
    return rc;
}

/* BATON_STORE_PIN_EXECUTORS: "Pin dedicated executor i to logical CPU i (modulo the CPUs this
 * process may use)": executor i owns STATIC's block i, so shard s's thread is bound to exactly
 * the (i mod n)-th CPU this process may use. */
static void check_pinned(const mode *m, const update_ctx *u, unsigned lanes)
{
    for (unsigned s = 0; s < 256; s++) {
        if (atomic_load(&u->seen[s].calls) == 0)
            continue;
        unsigned block = 0;
        for (unsigned i = 0; i < lanes; i++)
            if ((uint64_t)i * 256 / lanes <= s)
                block = i;
        int want = g_allowed[block % (unsigned)g_n_allowed];
        if (u->seen[s].cpus != 1 || u->seen[s].cpu != want)
            fail_msg("%s: shard %u (executor %u) ran bound to %d CPUs, the first %d; expected "
                     "CPU %d only", m->name, s, block, u->seen[s].cpus, u->seen[s].cpu, want);
    }
}

static void test_update_each_policy(void **state)
{
    (void)state;
    size_t n = bt_scaled(100000, 3000);
    for (size_t mi = 0; mi < N_MODES; mi++) {
        const mode *m = &modes[mi];
        baton_store *store = mode_store(m, UP, 8);
        fill(store, n);
        update_ctx u = {store, calloc(256, sizeof(shard_seen)), 256};
        pthread_t *first = calloc(256, sizeof *first);
        bool *had = calloc(256, sizeof *had);
        assert_true(u.seen && first && had);
        for (int round = 0; round < 3; round++) {
            bt_assert_rc(run_counted(store, &u), 0);
            check_counters(store, n, (uint64_t)round + 1);
            /* Shards of one block share a thread: STATIC's n pool tasks, DEDICATED's n
             * executors (n is the pool's size unless executors says otherwise; DEDICATED
             * without either has one per CPU, a number this test does not know). */
            bool on_caller = !m->with_pool && m->policy != BATON_STORE_DEDICATED;
            bool dedicated = m->policy == BATON_STORE_DEDICATED;
            /* executors 0: "the pool's workers, or one per CPU without a pool". */
            unsigned lanes = m->executors      ? m->executors
                             : m->with_pool    ? g_workers
                             : dedicated       ? online_cpus()
                                               : 0;
            bool grouped = !on_caller && lanes > 0 && m->policy != BATON_STORE_DYNAMIC;
            for (unsigned s = 0; s < 256; s++) {
                if (atomic_load(&u.seen[s].calls) == 0)
                    continue;
                pthread_t t = u.seen[s].thread;
                if (on_caller && !pthread_equal(t, pthread_self()))
                    fail_msg("%s: shard %u ran on another thread", m->name, s);
                unsigned lead = grouped ? block_lead(s, lanes, 256) : s;
                if (grouped && atomic_load(&u.seen[lead].calls) == 1 &&
                    !pthread_equal(t, u.seen[lead].thread))
                    fail_msg("%s: shards %u and %u (one block of %u) ran on different threads",
                             m->name, s, lead, lanes);
                /* A dedicated shard keeps its thread across calls. */
                if (dedicated) {
                    if (had[s] && !pthread_equal(first[s], t))
                        fail_msg("%s: shard %u changed threads in round %d", m->name, s, round);
                    first[s] = t;
                    had[s] = true;
                }
            }
            if (dedicated && grouped) {
                /* At most n distinct executor threads. */
                unsigned distinct = 0;
                for (unsigned s = 0; s < 256; s++) {
                    bool again = !had[s];
                    for (unsigned r = 0; r < s && !again; r++)
                        again = had[r] && pthread_equal(first[r], first[s]);
                    distinct += !again;
                }
                /* Exactly n when every shard had entities (n <= 256 blocks, none empty). */
                bool all_seen = true;
                for (unsigned s = 0; s < 256; s++)
                    all_seen = all_seen && had[s];
                if (distinct > lanes || (all_seen && lanes <= 256 && distinct != lanes))
                    fail_msg("%s: %u threads for %u executors", m->name, distinct, lanes);
            }
            if (m->flags & BATON_STORE_PIN_EXECUTORS)
                check_pinned(m, &u, lanes);
        }
        free(u.seen);
        free(first);
        free(had);
        baton_store_destroy(store);
    }
}

/* baton_store_set_policy "changes the policy used by later calls": without a pool, DYNAMIC and
 * STATIC run every shard on the calling thread and DEDICATED on executors, none of them the
 * caller; switching back and forth shows each time. */
static void test_set_policy_takes_effect(void **state)
{
    (void)state;
    const mode m = {"switching", BATON_STORE_STATIC, false, 2, 0};
    baton_store *store = mode_store(&m, UP, 8);
    size_t n = 2000;
    fill(store, n);
    update_ctx u = {store, calloc(256, sizeof(shard_seen)), 256};
    assert_non_null(u.seen);
    const baton_store_policy order[] = {BATON_STORE_STATIC, BATON_STORE_DEDICATED,
                                        BATON_STORE_DYNAMIC, BATON_STORE_DEDICATED,
                                        BATON_STORE_STATIC};
    for (size_t r = 0; r < sizeof order / sizeof order[0]; r++) {
        bt_assert_rc(baton_store_set_policy(store, order[r]), 0);
        bt_assert_rc(run_counted(store, &u), 0);
        check_counters(store, n, r + 1);
        bool dedicated = order[r] == BATON_STORE_DEDICATED;
        for (unsigned s = 0; s < 256; s++)
            if (atomic_load(&u.seen[s].calls) != 0 &&
                pthread_equal(u.seen[s].thread, pthread_self()) == dedicated)
                fail_msg("round %zu, policy %d: shard %u ran %s the calling thread", r,
                         (int)order[r], s, dedicated ? "on" : "off");
    }
    free(u.seen);
    baton_store_destroy(store);
}

/* store.h: a tick runs each winner's rule "on the owner of its scope's shard", and DEDICATED's
 * executor owns its shards for the store's life: the rule of a rewrite scoped to s runs on the
 * thread that update_all's fn met for shard_of(s). */
enum { OWNER_REWRITES = 200 };
static pthread_t g_rule_thread[OWNER_REWRITES];

static int rule_where(baton_rewrite_ctx *rc, void *ctx)
{
    (void)ctx;
    uint64_t seq = baton_rewrite_seq(rc);
    g_rule_thread[seq % OWNER_REWRITES] = pthread_self();
    return 0;
}

static void test_rules_run_on_owner(void **state)
{
    (void)state;
    const mode m = {"dedicated", BATON_STORE_DEDICATED, true, 0, 0};
    baton_store *store = mode_store(&m, UP, 8);
    fill(store, 1000);
    update_ctx u = {store, calloc(256, sizeof(shard_seen)), 256};
    assert_non_null(u.seen);
    uint32_t rule = 0;
    bt_assert_rc(baton_store_add_rule(store, rule_where, NULL, &rule), 0);
    for (int round = 0; round < 3; round++) {
        bt_assert_rc(run_counted(store, &u), 0);
        for (uint64_t i = 0; i < OWNER_REWRITES; i++) {
            uint64_t scope = entity_id(i * 5); /* scopes whose shards hold entities */
            baton_rewrite rw = {rule, scope, 0, NULL, 0, NULL, 0};
            bt_assert_rc(baton_store_submit(store, &rw, NULL), 0);
        }
        baton_tick_report report;
        bt_assert_rc(baton_store_tick(store, &report, NULL, NULL), 0);
        assert_int_equal(report.committed, OWNER_REWRITES);
        for (uint64_t i = 0; i < OWNER_REWRITES; i++) {
            unsigned s = baton_store_shard_of(store, entity_id(i * 5));
            assert_int_not_equal(atomic_load(&u.seen[s].calls), 0);
            uint64_t seq = (uint64_t)round * OWNER_REWRITES + i;
            if (!pthread_equal(g_rule_thread[seq % OWNER_REWRITES], u.seen[s].thread))
                fail_msg("round %d: the rule of seq %llu (scope in shard %u) ran on another "
                         "thread than shard %u's executor", round, (unsigned long long)seq, s,
                         s);
        }
    }
    free(u.seen);
    baton_store_destroy(store);
}

static void test_update_errors(void **state)
{
    (void)state;
    size_t n = bt_scaled(20000, 2000);
    static const struct {
        unsigned shard;
        int err;
    } plans[2][3] = {
        {{200, BATON_EBUSY}, {3, BATON_EIO}, {17, BATON_ERANGE}},
        {{255, BATON_ETIMEDOUT}, {254, -1000}, {254, -1000}},
    };
    static const int expect[2] = {BATON_EIO, -1000};
    for (size_t mi = 0; mi < N_MODES; mi++) {
        baton_store *store = mode_store(&modes[mi], UP, 8);
        fill(store, n);
        update_ctx u = {store, calloc(256, sizeof(shard_seen)), 256};
        assert_non_null(u.seen);
        for (int p = 0; p < 2; p++) {
            for (unsigned s = 0; s < 256; s++)
                u.seen[s].fail_with = 0;
            for (int k = 0; k < 3; k++)
                u.seen[plans[p][k].shard].fail_with = plans[p][k].err;
            int rc = run_counted(store, &u);
            if (rc != expect[p])
                fail_msg("%s, plan %d: update_all = %d (%s), expected %d", modes[mi].name, p,
                         rc, baton_err_name(rc), expect[p]);
            /* Every shard was processed, the failing ones included. */
            check_counters(store, n, (uint64_t)p + 1);
        }
        /* Then an ordinary call succeeds again. */
        for (unsigned s = 0; s < 256; s++)
            u.seen[s].fail_with = 0;
        bt_assert_rc(run_counted(store, &u), 0);
        check_counters(store, n, 3);
        free(u.seen);
        baton_store_destroy(store);
    }
}

static int never_called(const uint64_t *ids, void *payloads, size_t count, unsigned shard,
                        void *ctx)
{
    (void)ids;
    (void)payloads;
    (void)shard;
    (void)ctx;
    BT_CHECK_MSG(count == 0, "fn called with %zu entities on an empty store", count);
    return 0;
}

static void test_update_empty_and_null(void **state)
{
    (void)state;
    for (size_t mi = 0; mi < N_MODES; mi++) {
        baton_store *store = mode_store(&modes[mi], UP, 4);
        bt_assert_rc(baton_store_update_all(store, never_called, NULL), 0);
        bt_assert_no_thread_failures();
        bt_assert_rc(baton_store_update_all(store, NULL, NULL), BATON_EINVAL);
        bt_assert_rc(baton_store_update_all(NULL, never_called, NULL), BATON_EINVAL);
        baton_store_destroy(store);
    }
}

/* ---- motion ---------------------------------------------------------------------------------- */

/* The documented step, written independently: position += velocity, saturating at the int64
 * limits, on little-endian Q32.32 words. */
static void reference_step(unsigned char *e)
{
    for (int axis = 0; axis < 3; axis++) {
        int64_t pos = (int64_t)bt_get64(e, 8 * (size_t)axis);
        int64_t vel = (int64_t)bt_get64(e, 24 + 8 * (size_t)axis);
        int64_t sum;
        if (__builtin_add_overflow(pos, vel, &sum))
            sum = pos < 0 ? INT64_MIN : INT64_MAX;
        bt_put64(e, 8 * (size_t)axis, (uint64_t)sum);
    }
}

static uint64_t motion_word(bt_rng *rng)
{
    static const uint64_t edges[] = {0,
                                     1,
                                     UINT64_MAX, /* -1 */
                                     (uint64_t)INT64_MAX,
                                     (uint64_t)INT64_MIN,
                                     (uint64_t)INT64_MAX - 5,
                                     (uint64_t)INT64_MIN + 5,
                                     UINT64_C(1) << 32,
                                     (uint64_t)-(INT64_C(3) << 32)};
    switch (bt_rng_below(rng, 4)) {
    case 0:
        return edges[bt_rng_below(rng, sizeof edges / sizeof edges[0])];
    case 1:
        return bt_rng_next(rng); /* anywhere: overflows are common */
    default:
        return (uint64_t)((int64_t)(bt_rng_next(rng) >> 20) - (INT64_C(1) << 43));
    }
}

static void test_motion_kernel_reference(void **state)
{
    (void)state;
    enum { N = 2000 };
    bt_rng rng = bt_rng_seed(0x40710);
    unsigned char *a = malloc((size_t)N * BATON_MOTION_PAYLOAD_SIZE + 1);
    unsigned char *b = malloc((size_t)N * BATON_MOTION_PAYLOAD_SIZE);
    assert_true(a && b);
    for (size_t i = 0; i < (size_t)N * 6; i++)
        bt_put64(b, 8 * i, motion_word(&rng));
    /* baton_motion_step must not assume alignment: run it at an odd address. */
    memcpy(a + 1, b, (size_t)N * BATON_MOTION_PAYLOAD_SIZE);
    for (int step = 0; step < 3; step++) {
        baton_motion_step(a + 1, N);
        for (size_t i = 0; i < N; i++)
            reference_step(b + i * BATON_MOTION_PAYLOAD_SIZE);
        assert_memory_equal(a + 1, b, (size_t)N * BATON_MOTION_PAYLOAD_SIZE);
    }
    baton_motion_step(a + 1, 0); /* nothing */
    assert_memory_equal(a + 1, b, (size_t)N * BATON_MOTION_PAYLOAD_SIZE);
    free(a);
    free(b);
}

static void test_motion_update_matches_serial(void **state)
{
    (void)state;
    size_t n = bt_scaled(50000, 2000);
    bt_rng rng = bt_rng_seed(0x40711);
    unsigned char *flat = malloc(n * BATON_MOTION_PAYLOAD_SIZE);
    uint64_t *ids = malloc(n * sizeof *ids);
    assert_true(flat && ids);
    for (size_t i = 0; i < n; i++) {
        ids[i] = bt_rng_next(&rng) | 1; /* distinct with overwhelming probability; checked */
        for (int w = 0; w < 6; w++)
            bt_put64(flat, i * BATON_MOTION_PAYLOAD_SIZE + 8 * (size_t)w, motion_word(&rng));
    }
    for (size_t mi = 0; mi < N_MODES; mi++) {
        baton_store *store = mode_store(&modes[mi], BATON_MOTION_PAYLOAD_SIZE, mi % 2 ? 8 : 3);
        unsigned char *copy = malloc(n * BATON_MOTION_PAYLOAD_SIZE);
        assert_non_null(copy);
        memcpy(copy, flat, n * BATON_MOTION_PAYLOAD_SIZE);
        for (size_t i = 0; i < n; i++)
            bt_assert_rc(baton_store_insert(store, ids[i], copy + i * BATON_MOTION_PAYLOAD_SIZE,
                                            BATON_MOTION_PAYLOAD_SIZE),
                         0);
        for (int step = 0; step < 3; step++) {
            /* Switch policies between steps too: the state must not care. */
            if (step == 2)
                bt_assert_rc(baton_store_set_policy(store, BATON_STORE_STATIC), 0);
            bt_assert_rc(baton_store_update_all(store, baton_motion_update, NULL), 0);
        }
        baton_motion_step(copy, n);
        baton_motion_step(copy, n);
        baton_motion_step(copy, n);
        unsigned char got[BATON_MOTION_PAYLOAD_SIZE];
        for (size_t i = 0; i < n; i++) {
            bt_assert_rc(baton_store_get(store, ids[i], got, BATON_MOTION_PAYLOAD_SIZE), 0);
            if (memcmp(got, copy + i * BATON_MOTION_PAYLOAD_SIZE, BATON_MOTION_PAYLOAD_SIZE))
                fail_msg("%s: entity %zu differs from the serial loop", modes[mi].name, i);
        }
        assert_true(bt_store_fingerprint(store) ==
                    bt_model_fingerprint(ids, copy, NULL, n, BATON_MOTION_PAYLOAD_SIZE));
        free(copy);
        baton_store_destroy(store);
    }
    free(flat);
    free(ids);
}

/* ---- concurrent readers ---------------------------------------------------------------------- */

typedef struct reader_ctx {
    const baton_store *store;
    size_t n, iterations;
    uint64_t seed, fingerprint;
} reader_ctx;

static int count_visit(uint64_t id, const void *payload, void *ctx)
{
    size_t *count = ctx;
    BT_CHECK(bt_get64(payload, 0) == id);
    (*count)++;
    return 0;
}

/* Reads the store as baton_store_get and friends allow, alongside other readers. */
static void *reader_main(void *arg)
{
    reader_ctx *r = arg;
    bt_rng rng = bt_rng_seed(r->seed);
    unsigned char p[UP];
    for (size_t k = 0; k < r->iterations; k++) {
        size_t i = (size_t)bt_rng_below(&rng, r->n);
        int rc = baton_store_get(r->store, entity_id(i), p, UP);
        BT_CHECK(rc == 0 && bt_get64(p, 0) == entity_id(i) && bt_get64(p, 8) == 0);
        BT_CHECK(baton_store_contains(r->store, entity_id(i)));
        BT_CHECK(!baton_store_contains(r->store, entity_id(r->n + i)));
        BT_CHECK(baton_store_get(r->store, entity_id(r->n + i), p, UP) == BATON_ENOTFOUND);
        BT_CHECK(baton_store_shard_of(r->store, entity_id(i)) ==
                 baton_store_route(entity_id(i), 8, 0));
    }
    size_t sum = 0, visited = 0;
    for (unsigned s = 0; s < baton_store_shards(r->store); s++)
        sum += baton_store_shard_size(r->store, s);
    BT_CHECK(sum == r->n && baton_store_count(r->store) == r->n);
    BT_CHECK(baton_store_foreach(r->store, count_visit, &visited) == 0 && visited == r->n);
    uint64_t fp = 0;
    BT_CHECK(baton_store_fingerprint(r->store, &fp) == 0 && fp == r->fingerprint);
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    size_t n = bt_scaled(20000, 1000);
    baton_store *store = mode_store(&modes[0], UP, 8);
    fill(store, n);
    uint64_t *ids = malloc(n * sizeof *ids);
    unsigned char *payloads = calloc(n, UP);
    assert_true(ids && payloads);
    for (size_t i = 0; i < n; i++) {
        ids[i] = entity_id(i);
        memset(payloads + i * UP, 0x5A, UP);
        bt_put64(payloads + i * UP, 0, ids[i]);
        bt_put64(payloads + i * UP, 8, 0);
    }
    uint64_t expected = bt_model_fingerprint(ids, payloads, NULL, n, UP);
    free(ids);
    free(payloads);
    unsigned n_threads = g_workers;
    pthread_t threads[BATON_POOL_MAX_WORKERS];
    reader_ctx ctx[BATON_POOL_MAX_WORKERS];
    for (unsigned t = 0; t < n_threads; t++) {
        ctx[t] = (reader_ctx){store, n, bt_scaled(20000, 500), 1000 + t, expected};
        assert_int_equal(pthread_create(&threads[t], NULL, reader_main, &ctx[t]), 0);
    }
    for (unsigned t = 0; t < n_threads; t++)
        pthread_join(threads[t], NULL);
    bt_assert_no_thread_failures();
    baton_store_destroy(store);
}

/* ---- several stores on one pool -------------------------------------------------------------- */

typedef struct driver_ctx {
    const mode *m;
    size_t n;
    int rounds;
} driver_ctx;

/* Adds 1 to the second word of every id in the footprint's writes (here: the rewrite's arg). */
static int rule_bump(baton_rewrite_ctx *rc, void *rule_ctx)
{
    (void)rule_ctx;
    void *p = NULL;
    int r = baton_rewrite_write(rc, baton_rewrite_arg(rc), &p);
    BT_CHECK(r == 0);
    if (r == 0)
        bt_put64(p, 8, bt_get64(p, 8) + 1);
    return r;
}

/* Drives a store of its own (created, updated, ticked, checked, destroyed on this thread) while
 * other threads drive theirs on the same pool. Checks with BT_CHECK only. */
static void *driver_main(void *arg)
{
    driver_ctx *d = arg;
    baton_store_config config =
        bt_store_config(UP, 8, d->m->flags, d->m->with_pool ? g_pool : NULL, d->m->policy,
                  BATON_STORE_DEFER, d->m->executors);
    baton_store *store = NULL;
    BT_CHECK(baton_store_create(&config, &store) == 0);
    if (store == NULL)
        return NULL;
    unsigned char payload[UP] = {0};
    for (size_t i = 0; i < d->n; i++) {
        bt_put64(payload, 0, entity_id(i));
        BT_CHECK(baton_store_insert(store, entity_id(i), payload, UP) == 0);
    }
    uint32_t rule = 99;
    BT_CHECK(baton_store_add_rule(store, rule_bump, NULL, &rule) == 0);
    update_ctx u = {store, calloc(256, sizeof(shard_seen)), 256};
    BT_CHECK(u.seen != NULL);
    for (int r = 0; r < d->rounds && u.seen; r++) {
        BT_CHECK(baton_store_update_all(store, count_update, &u) == 0);
        /* One rewrite per entity of a stride, each writing only its own: all commit. */
        size_t submitted = 0;
        for (size_t i = (size_t)r; i < d->n; i += 7) {
            const uint64_t id = entity_id(i);
            baton_rewrite rw = {rule, id, id, NULL, 0, &id, 1};
            BT_CHECK(baton_store_submit(store, &rw, NULL) == 0);
            submitted++;
        }
        baton_tick_report report;
        BT_CHECK(baton_store_tick(store, &report, NULL, NULL) == 0);
        BT_CHECK(report.committed == submitted && report.writes == submitted);
    }
    /* Entity i: one per update_all, and one per round r with i % 7 == r % 7 ... i >= r. */
    for (size_t i = 0; i < d->n; i++) {
        uint64_t expect = (uint64_t)d->rounds;
        for (int r = 0; r < d->rounds; r++)
            expect += i >= (size_t)r && (i - (size_t)r) % 7 == 0;
        BT_CHECK(baton_store_get(store, entity_id(i), payload, UP) == 0);
        BT_CHECK_MSG(bt_get64(payload, 8) == expect, "%s: entity %zu: %llu, expected %llu",
                     d->m->name, i, (unsigned long long)bt_get64(payload, 8),
                     (unsigned long long)expect);
    }
    free(u.seen);
    baton_store_destroy(store);
    return NULL;
}

static void test_stores_on_one_pool(void **state)
{
    (void)state;
    enum { DRIVERS = (int)N_MODES };
    pthread_t threads[DRIVERS];
    driver_ctx ctx[DRIVERS];
    for (int t = 0; t < DRIVERS; t++) {
        ctx[t] = (driver_ctx){&modes[t], bt_scaled(5000, 500), 10};
        assert_int_equal(pthread_create(&threads[t], NULL, driver_main, &ctx[t]), 0);
    }
    for (int t = 0; t < DRIVERS; t++)
        pthread_join(threads[t], NULL);
    bt_assert_no_thread_failures();
    bt_assert_pool_usable(g_pool);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    read_allowed_cpus();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_each_policy),
        cmocka_unit_test(test_set_policy_takes_effect),
        cmocka_unit_test(test_rules_run_on_owner),
        cmocka_unit_test(test_update_errors),
        cmocka_unit_test(test_update_empty_and_null),
        cmocka_unit_test(test_motion_kernel_reference),
        cmocka_unit_test(test_motion_update_matches_serial),
        cmocka_unit_test(test_concurrent_readers),
        cmocka_unit_test(test_stores_on_one_pool),
    };
    return cmocka_run_group_tests_name("store/update", tests, group_setup, group_teardown);
}
