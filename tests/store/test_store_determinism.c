/*
 * test_store_determinism.c — a mixed workload of rewrites, checked after every tick against a
 * serial oracle written here from the semantics documented in store.h, at one pool size
 * (--workers N; CTest runs 1, 2, 4, 8 and 16, oversubscribed on 2 cores on purpose).
 *
 * The workload (the same, from a fixed seed, for every configuration): a dense one, 48 entities
 * and some 40 new rewrites a tick (times BATON_TEST_SCALE), where most rewrites conflict, and a
 * wide one, 4096 entities and some 1500 rewrites a tick, where the workers overlap in every
 * phase. Five rules, random scopes (some above 2^63, many equal) and random footprints of up to
 * 3 reads and 2 writes (ids repeat, some are both read and written), so most rewrites touch
 * entities of other shards than their scope's. Rule 0 writes a function of what it reads;
 * rule 1 fails with an error for a third of its args after opening its writes; rule 2 reads
 * back what it wrote and gets BATON_EPERM writing a read-only id and reading an id outside its
 * footprint; rule 3 moves values between its ids; rule 4 gets BATON_EPERM writing an id outside
 * its write set and, for odd args, returns that error. Every written entity's counter goes up by
 * one. Between ticks the driving thread changes a payload in place, runs a bulk update (every
 * third tick), inserts and removes entities that no rewrite names, and submits a rewrite naming
 * a fresh entity that it then removes before the tick (BATON_ENOTFOUND). After 10 such ticks,
 * ticks run until nothing is pending.
 *
 * The oracle: key = (rule, scope, seq); a queued rewrite runs iff no queued rewrite with a
 * smaller key conflicts with it (one writes an id the other reads or writes); each running rule
 * sees the state of the tick's start (and its own writes), its writes are applied only if it
 * returns 0; losers stay queued with their key (DEFER) or are dropped (REJECT); rewrites naming
 * a removed id fail with BATON_ENOTFOUND. After every tick the test checks that the store's
 * fingerprint and every entity equal the oracle's, that the outcomes (in key order: status,
 * deferred, conflict_id = the smallest contested id, winner_seq = the smallest-key rewrite that
 * conflicts on it) and the tick report equal the oracle's, that exactly the oracle's winners
 * ran (once each), that the pending count agrees, and that the entities' counters add up to the
 * writes of committed rewrites: nothing lost or applied twice.
 *
 * Configurations: shard_bits 0 (the default, 256 shards), 1, 3 and 10, ids mixed or used as
 * hashes; DYNAMIC, STATIC and DEDICATED with the pool, DYNAMIC and DEDICATED without it, and the
 * policy switched every tick; DEFER and REJECT. Since every configuration must equal the oracle,
 * they all equal each other, for any worker count; the final fingerprints are printed.
 */
#include "test_util.h"

#include "store_util.h"

BT_DEFINE_POOL_GROUP()

enum { DP = 24, MAXF = 6, N_RULES = 5, N_EXTRA = 16, TICKS = 10 };

/* Entities of the workload (main ids 0 .. g_nid - 1), and slots for the extra ones. */
static size_t g_nid;
#define N_SLOTS (g_nid + N_EXTRA)

static uint64_t main_id(size_t i)
{
    return UINT64_C(0x1000) + (uint64_t)i * UINT64_C(0x9E3779B97F4A7C15);
}

/* main_id's inverse: the multiplier's inverse mod 2^64 (so the oracle finds a slot in O(1)). */
static uint64_t main_index(uint64_t id)
{
    return (id - UINT64_C(0x1000)) * UINT64_C(0xF1DE83E19937733D);
}

static uint64_t extra_id(size_t tick)
{
    return UINT64_C(0xE000000000000000) + tick;
}

/* A submitted rewrite, by seq. Written by the main thread before the tick that runs it, read by
 * workers during it. */
typedef struct wl_rewrite {
    uint32_t rule;
    uint64_t scope, arg;
    uint64_t reads[MAXF], writes[MAXF];
    uint32_t n_reads, n_writes;
    uint64_t w[MAXF], f[2 * MAXF]; /* distinct writes; distinct footprint (reads and writes) */
    uint32_t nw, nf;
} wl_rewrite;

static wl_rewrite *g_rw;
static atomic_uint *g_runs;
static size_t g_cap;
static int g_rule_tags[N_RULES];

static bool in_list(const uint64_t *list, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (list[i] == id)
            return true;
    return false;
}

/* ---- the rules, over an abstract read / write so that the oracle runs the same code --------- */

typedef struct rule_io {
    int (*read)(void *h, uint64_t id, const void **p);
    int (*write)(void *h, uint64_t id, void **p);
    void *h;
} rule_io;

/* The first id of the footprint that is read and not written, else the first main id outside
 * the footprint. */
static uint64_t not_writable(const wl_rewrite *w)
{
    for (uint32_t i = 0; i < w->n_reads; i++)
        if (!in_list(w->w, w->nw, w->reads[i]))
            return w->reads[i];
    for (size_t i = 0;; i++)
        if (!in_list(w->f, w->nf, main_id(i)))
            return main_id(i);
}

static uint64_t outside(const wl_rewrite *w)
{
    for (size_t i = g_nid - 1;; i--)
        if (!in_list(w->f, w->nf, main_id(i)))
            return main_id(i);
}

/* Opens write `id` and bumps its counter; NULL (and a recorded failure) if that fails. */
static unsigned char *open_write(const rule_io *io, uint64_t seq, uint64_t id)
{
    void *p = NULL;
    int rc = io->write(io->h, id, &p);
    BT_CHECK_MSG(rc == 0 && p != NULL, "seq %llu: write %#llx = %d", (unsigned long long)seq,
                 (unsigned long long)id, rc);
    if (rc != 0 || p == NULL)
        return NULL;
    st_put64(p, 8, st_get64(p, 8) + 1);
    st_put64(p, 16, seq);
    return p;
}

static uint64_t read_value(const rule_io *io, uint64_t seq, uint64_t id)
{
    const void *p = NULL;
    int rc = io->read(io->h, id, &p);
    BT_CHECK_MSG(rc == 0 && p != NULL, "seq %llu: read %#llx = %d", (unsigned long long)seq,
                 (unsigned long long)id, rc);
    return rc == 0 && p != NULL ? st_get64(p, 0) : 0;
}

static int rule_body(const wl_rewrite *w, uint64_t seq, const rule_io *io)
{
    uint64_t sum = 0, gathered[MAXF];
    unsigned char *p;
    void *dummy = NULL;
    const void *cdummy = NULL;
    int rc;
    switch (w->rule) {
    case 0: /* writes: value * 31 + sum of the reads + arg */
        for (uint32_t i = 0; i < w->n_reads; i++)
            sum += read_value(io, seq, w->reads[i]);
        for (uint32_t i = 0; i < w->nw; i++)
            if ((p = open_write(io, seq, w->w[i])) != NULL)
                st_put64(p, 0, st_get64(p, 0) * 31 + sum + w->arg);
        return 0;
    case 1: /* writes, then fails for a third of the args: nothing of it may remain */
        for (uint32_t i = 0; i < w->nw; i++)
            if ((p = open_write(io, seq, w->w[i])) != NULL)
                st_put64(p, 0, st_get64(p, 0) ^ UINT64_C(0xBAD));
        return w->arg % 3 == 0 ? (w->arg % 2 ? BATON_EIO : -1000) : 0;
    case 2: /* read your own writes; EPERM outside the sets */
        for (uint32_t i = 0; i < w->nw; i++) {
            if ((p = open_write(io, seq, w->w[i])) == NULL)
                continue;
            uint64_t v = st_get64(p, 0) + 1 + w->arg;
            st_put64(p, 0, v);
            BT_CHECK(read_value(io, seq, w->w[i]) == v);
            rc = io->write(io->h, w->w[i], &dummy);
            BT_CHECK(rc == 0 && dummy != NULL && st_get64(dummy, 0) == v);
        }
        rc = io->write(io->h, not_writable(w), &dummy);
        BT_CHECK_MSG(rc == BATON_EPERM, "write outside the write set = %d", rc);
        rc = io->read(io->h, outside(w), &cdummy);
        BT_CHECK_MSG(rc == BATON_EPERM, "read outside the footprint = %d", rc);
        return 0;
    case 3: /* moves values: write i gets read i % n_reads (or the next write) as it began */
        for (uint32_t i = 0; i < w->nw; i++)
            gathered[i] = read_value(io, seq,
                                     w->n_reads ? w->reads[i % w->n_reads] : w->w[(i + 1) % w->nw]);
        for (uint32_t i = 0; i < w->nw; i++)
            if ((p = open_write(io, seq, w->w[i])) != NULL)
                st_put64(p, 0, gathered[i] + seq);
        return 0;
    default: /* 4: EPERM writing outside the write set; odd args return it */
        rc = io->write(io->h, not_writable(w), &dummy);
        BT_CHECK_MSG(rc == BATON_EPERM, "write outside the write set = %d", rc);
        if (w->arg % 2)
            return rc;
        for (uint32_t i = 0; i < w->n_reads; i++)
            sum ^= read_value(io, seq, w->reads[i]);
        for (uint32_t i = 0; i < w->nw; i++)
            if ((p = open_write(io, seq, w->w[i])) != NULL)
                st_put64(p, 0, st_get64(p, 0) + (sum | 1));
        return 0;
    }
}

static int lib_read(void *h, uint64_t id, const void **p)
{
    return baton_rewrite_read(h, id, p);
}

static int lib_write(void *h, uint64_t id, void **p)
{
    return baton_rewrite_write(h, id, p);
}

static int lib_rule(baton_rewrite_ctx *rc, void *rule_ctx)
{
    uint64_t seq = baton_rewrite_seq(rc);
    BT_CHECK_MSG(seq < g_cap, "seq %llu", (unsigned long long)seq);
    if (seq >= g_cap)
        return BATON_EINVAL;
    atomic_fetch_add_explicit(&g_runs[seq], 1, memory_order_relaxed);
    const wl_rewrite *w = &g_rw[seq];
    BT_CHECK(rule_ctx == &g_rule_tags[w->rule]);
    BT_CHECK(baton_rewrite_rule(rc) == w->rule);
    BT_CHECK(baton_rewrite_scope(rc) == w->scope);
    BT_CHECK(baton_rewrite_arg(rc) == w->arg);
    BT_CHECK(baton_rewrite_payload_size(rc) == DP);
    rule_io io = {lib_read, lib_write, rc};
    return rule_body(w, seq, &io);
}

/* ---- the oracle ------------------------------------------------------------------------------ */

typedef struct oracle {
    uint64_t *ids;               /* by slot: main ids, then N_EXTRA extra ones */
    unsigned char (*state)[DP];
    bool *present;
    uint64_t *queue; /* seqs pending */
    size_t n_queue;
    baton_store_conflict_policy conflict;
    uint64_t ticks, total_writes;
} oracle;

typedef struct oracle_io {
    const wl_rewrite *w;
    const oracle *o;
    unsigned char copy[MAXF][DP];
    bool opened[MAXF];
} oracle_io;

static int slot_of(const oracle *o, uint64_t id)
{
    uint64_t i = main_index(id);
    if (i < g_nid)
        return (int)i;
    i = id - extra_id(0);
    if (i < TICKS) {
        int slot = (int)(g_nid + i % N_EXTRA);
        if (o->present[slot] && o->ids[slot] == id)
            return slot;
    }
    return -1;
}

static int oracle_read(void *h, uint64_t id, const void **p)
{
    oracle_io *io = h;
    if (!in_list(io->w->f, io->w->nf, id))
        return BATON_EPERM;
    for (uint32_t i = 0; i < io->w->nw; i++)
        if (io->w->w[i] == id && io->opened[i]) {
            *p = io->copy[i];
            return 0;
        }
    *p = io->o->state[slot_of(io->o, id)];
    return 0;
}

static int oracle_write(void *h, uint64_t id, void **p)
{
    oracle_io *io = h;
    for (uint32_t i = 0; i < io->w->nw; i++)
        if (io->w->w[i] == id) {
            if (!io->opened[i])
                memcpy(io->copy[i], io->o->state[slot_of(io->o, id)], DP);
            io->opened[i] = true;
            *p = io->copy[i];
            return 0;
        }
    return BATON_EPERM;
}

static int key_cmp(uint64_t a, uint64_t b)
{
    const wl_rewrite *x = &g_rw[a], *y = &g_rw[b];
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    if (x->scope != y->scope)
        return x->scope < y->scope ? -1 : 1;
    return a < b ? -1 : a > b;
}

static int key_cmp_q(const void *a, const void *b)
{
    return key_cmp(*(const uint64_t *)a, *(const uint64_t *)b);
}

typedef struct expected_tick {
    baton_tick_report report;
    baton_rewrite_outcome *out; /* capacity g_cap */
    size_t n_out;
    bool *ran; /* by seq */
} expected_tick;

/* One tick of the documented semantics. */
static void oracle_tick(oracle *o, expected_tick *e)
{
    memset(&e->report, 0, sizeof e->report);
    e->n_out = 0;
    memset(e->ran, 0, g_cap * sizeof *e->ran);
    e->report.tick = o->ticks++;
    e->report.considered = o->n_queue;
    qsort(o->queue, o->n_queue, sizeof *o->queue, key_cmp_q);
    /* Per entity slot, the smallest-key rewrite so far that touches it and that writes it;
     * scanning in key order, these are the smallest-key ones a later rewrite can conflict with. */
    int64_t *first_touch = malloc(N_SLOTS * sizeof *first_touch);
    int64_t *first_write = malloc(N_SLOTS * sizeof *first_write);
    unsigned char (*staged)[DP] = calloc(N_SLOTS, DP);
    bool *staged_any = calloc(N_SLOTS, sizeof *staged_any);
    assert_true(first_touch && first_write && staged && staged_any);
    for (size_t i = 0; i < N_SLOTS; i++)
        first_touch[i] = first_write[i] = -1;
    size_t kept = 0;
    for (size_t k = 0; k < o->n_queue; k++) {
        uint64_t seq = o->queue[k];
        const wl_rewrite *w = &g_rw[seq];
        baton_rewrite_outcome out = {.seq = seq, .rule = w->rule, .scope = w->scope};
        bool missing = false;
        for (uint32_t i = 0; i < w->nf; i++)
            if (slot_of(o, w->f[i]) < 0 && (!missing || w->f[i] < out.conflict_id))
                missing = true, out.conflict_id = w->f[i];
        if (missing) { /* only fresh entities no other rewrite names: they block nothing */
            out.status = BATON_ENOTFOUND;
            e->report.failed++;
            e->out[e->n_out++] = out;
            continue;
        }
        bool contested = false;
        for (uint32_t i = 0; i < w->nf; i++) {
            int s = slot_of(o, w->f[i]);
            int64_t q = in_list(w->w, w->nw, w->f[i]) ? first_touch[s] : first_write[s];
            if (q >= 0 && (!contested || w->f[i] < out.conflict_id))
                contested = true, out.conflict_id = w->f[i], out.winner_seq = (uint64_t)q;
        }
        for (uint32_t i = 0; i < w->nf; i++) {
            int s = slot_of(o, w->f[i]);
            if (first_touch[s] < 0)
                first_touch[s] = (int64_t)seq;
            if (first_write[s] < 0 && in_list(w->w, w->nw, w->f[i]))
                first_write[s] = (int64_t)seq;
        }
        if (contested) {
            out.status = BATON_ECONFLICT;
            if (o->conflict == BATON_STORE_DEFER) {
                out.deferred = true;
                e->report.deferred++;
                o->queue[kept++] = seq;
            } else {
                e->report.rejected++;
            }
            e->out[e->n_out++] = out;
            continue;
        }
        e->ran[seq] = true;
        oracle_io io = {.w = w, .o = o};
        rule_io rio = {oracle_read, oracle_write, &io};
        int rc = rule_body(w, seq, &rio);
        if (rc != 0) {
            out.status = rc;
            e->report.failed++;
            e->out[e->n_out++] = out;
            continue;
        }
        e->report.committed++;
        for (uint32_t i = 0; i < w->nw; i++)
            if (io.opened[i]) {
                int s = slot_of(o, w->w[i]);
                assert_false(staged_any[s]); /* two winners never write one id */
                memcpy(staged[s], io.copy[i], DP);
                staged_any[s] = true;
                e->report.writes++;
            }
    }
    for (size_t s = 0; s < N_SLOTS; s++)
        if (staged_any[s])
            memcpy(o->state[s], staged[s], DP);
    free(staged);
    free(staged_any);
    free(first_touch);
    free(first_write);
    o->n_queue = kept;
    o->total_writes += e->report.writes;
}

static uint64_t oracle_fingerprint(const oracle *o)
{
    return st_model_fingerprint(o->ids, o->state, o->present, N_SLOTS, DP);
}

/* ---- the driver ------------------------------------------------------------------------------ */

typedef struct mode {
    const char *name;
    baton_store_policy policy;
    bool with_pool;
    bool rotate; /* switch the policy every tick */
} mode;

static const mode modes[] = {
    {"dynamic", BATON_STORE_DYNAMIC, true, false},
    {"static", BATON_STORE_STATIC, true, false},
    {"dedicated", BATON_STORE_DEDICATED, true, false},
    {"dynamic/no pool", BATON_STORE_DYNAMIC, false, false},
    {"dedicated/no pool", BATON_STORE_DEDICATED, false, false},
    {"rotating", BATON_STORE_DYNAMIC, true, true},
};
#define N_MODES (sizeof modes / sizeof modes[0])

typedef struct recorder {
    baton_rewrite_outcome *out;
    size_t n, cap;
} recorder;

static void record(const baton_rewrite_outcome *outcome, void *ctx)
{
    recorder *r = ctx;
    if (r->n < r->cap)
        r->out[r->n] = *outcome;
    r->n++;
}

static const uint64_t scopes[] = {0, 1, 7, 42, UINT64_C(0x8000000000000000), UINT64_MAX};

static void random_footprint(bt_rng *rng, wl_rewrite *w)
{
    w->n_reads = (uint32_t)bt_rng_below(rng, 4);
    w->n_writes = (uint32_t)bt_rng_below(rng, 3);
    for (uint32_t i = 0; i < w->n_reads; i++)
        w->reads[i] = main_id((size_t)bt_rng_below(rng, g_nid));
    for (uint32_t i = 0; i < w->n_writes; i++)
        w->writes[i] = main_id((size_t)bt_rng_below(rng, g_nid));
    if (bt_rng_below(rng, 6) == 0 && w->n_writes > 0) /* an id both read and written */
        w->reads[w->n_reads++] = w->writes[0];
    if (bt_rng_below(rng, 6) == 0 && w->n_reads > 0) /* a repeated id */
        w->reads[w->n_reads++] = w->reads[0];
}

/* Fills the distinct lists and submits; the seq must be the next one. */
static void submit(baton_store *store, wl_rewrite *w, uint64_t expect_seq, oracle *o)
{
    w->nw = w->nf = 0;
    for (uint32_t i = 0; i < w->n_writes; i++)
        if (!in_list(w->w, w->nw, w->writes[i]))
            w->w[w->nw++] = w->writes[i];
    for (uint32_t i = 0; i < w->nw; i++)
        w->f[w->nf++] = w->w[i];
    for (uint32_t i = 0; i < w->n_reads; i++)
        if (!in_list(w->f, w->nf, w->reads[i]))
            w->f[w->nf++] = w->reads[i];
    baton_rewrite rw = {w->rule,     w->scope, w->arg, w->n_reads ? w->reads : NULL, w->n_reads,
                        w->n_writes ? w->writes : NULL, w->n_writes};
    uint64_t seq = UINT64_MAX;
    bt_assert_rc(baton_store_submit(store, &rw, &seq), 0);
    assert_int_equal(seq, expect_seq);
    o->queue[o->n_queue++] = seq;
}

static void put_entity(baton_store *store, oracle *o, size_t slot, uint64_t id, uint64_t value)
{
    o->ids[slot] = id;
    o->present[slot] = true;
    st_put64(o->state[slot], 0, value);
    st_put64(o->state[slot], 8, 0);
    st_put64(o->state[slot], 16, UINT64_MAX);
    bt_assert_rc(baton_store_insert(store, id, o->state[slot], DP), 0);
}

static void compare_tick(const char *what, size_t tick, baton_store *store, const oracle *o,
                         const expected_tick *e, const recorder *rec,
                         const baton_tick_report *got)
{
    const baton_tick_report *x = &e->report;
    if (memcmp(got, x, sizeof *got) != 0)
        fail_msg("%s, tick %zu: report {%llu %llu %llu %llu %llu %llu %llu}, oracle {%llu %llu "
                 "%llu %llu %llu %llu %llu} (tick considered committed deferred rejected failed "
                 "writes)",
                 what, tick, (unsigned long long)got->tick, (unsigned long long)got->considered,
                 (unsigned long long)got->committed, (unsigned long long)got->deferred,
                 (unsigned long long)got->rejected, (unsigned long long)got->failed,
                 (unsigned long long)got->writes, (unsigned long long)x->tick,
                 (unsigned long long)x->considered, (unsigned long long)x->committed,
                 (unsigned long long)x->deferred, (unsigned long long)x->rejected,
                 (unsigned long long)x->failed, (unsigned long long)x->writes);
    if (rec->n != e->n_out)
        fail_msg("%s, tick %zu: %zu outcomes, oracle %zu", what, tick, rec->n, e->n_out);
    for (size_t k = 0; k < e->n_out; k++) {
        const baton_rewrite_outcome *a = &rec->out[k], *b = &e->out[k];
        bool ok = a->seq == b->seq && a->rule == b->rule && a->scope == b->scope &&
                  a->status == b->status && a->deferred == b->deferred;
        if (b->status == BATON_ECONFLICT || b->status == BATON_ENOTFOUND)
            ok = ok && a->conflict_id == b->conflict_id;
        if (b->status == BATON_ECONFLICT)
            ok = ok && a->winner_seq == b->winner_seq;
        if (!ok)
            fail_msg("%s, tick %zu, outcome %zu: seq %llu status %d deferred %d id %#llx winner "
                     "%llu; oracle: seq %llu status %d deferred %d id %#llx winner %llu",
                     what, tick, k, (unsigned long long)a->seq, a->status, a->deferred,
                     (unsigned long long)a->conflict_id, (unsigned long long)a->winner_seq,
                     (unsigned long long)b->seq, b->status, b->deferred,
                     (unsigned long long)b->conflict_id, (unsigned long long)b->winner_seq);
    }
    for (size_t s = 0; s < g_cap; s++)
        if (atomic_load(&g_runs[s]) != (unsigned)e->ran[s])
            fail_msg("%s, tick %zu: seq %zu ran %u times, oracle %d", what, tick, s,
                     atomic_load(&g_runs[s]), (int)e->ran[s]);
    unsigned char p[DP];
    uint64_t counters = 0;
    for (size_t i = 0; i < N_SLOTS; i++) {
        if (!o->present[i]) {
            assert_false(baton_store_contains(store, o->ids[i]));
            continue;
        }
        bt_assert_rc(baton_store_get(store, o->ids[i], p, DP), 0);
        if (memcmp(p, o->state[i], DP) != 0)
            fail_msg("%s, tick %zu: entity %#llx is {%llu, %llu, %llu}, oracle {%llu, %llu, "
                     "%llu}",
                     what, tick, (unsigned long long)o->ids[i],
                     (unsigned long long)st_get64(p, 0), (unsigned long long)st_get64(p, 8),
                     (unsigned long long)st_get64(p, 16),
                     (unsigned long long)st_get64(o->state[i], 0),
                     (unsigned long long)st_get64(o->state[i], 8),
                     (unsigned long long)st_get64(o->state[i], 16));
        counters += st_get64(p, 8);
    }
    assert_true(st_store_fingerprint(store) == oracle_fingerprint(o));
    assert_int_equal(baton_store_pending(store), o->n_queue);
    /* Every committed write bumped one counter once: none lost, none applied twice. */
    assert_int_equal(counters, o->total_writes);
}

/* update_all's fn: adds *ctx to every value. */
static int bump_values(const uint64_t *ids, void *payloads, size_t count, unsigned shard,
                       void *ctx)
{
    (void)ids, (void)shard;
    uint64_t delta = *(const uint64_t *)ctx;
    for (size_t i = 0; i < count; i++) {
        unsigned char *p = (unsigned char *)payloads + i * DP;
        st_put64(p, 0, st_get64(p, 0) + delta);
    }
    return 0;
}

/* Runs the workload on one configuration; returns the final fingerprint. */
static uint64_t run_workload(const mode *m, unsigned bits, unsigned flags,
                             baton_store_conflict_policy conflict, size_t per_tick,
                             bool print_totals)
{
    char what[128];
    snprintf(what, sizeof what, "%s, shard_bits %u, flags %#x, %s", m->name, bits, flags,
             conflict == BATON_STORE_DEFER ? "defer" : "reject");
    bt_rng rng = bt_rng_seed(conflict == BATON_STORE_DEFER ? 0xDE7E4 : 0x4E7EC7);
    baton_store_config config = st_config(DP, bits, flags, m->with_pool ? g_pool : NULL,
                                          m->policy, conflict, m->with_pool ? 0 : g_workers);
    baton_store *store = st_create_config(&config);
    for (uint32_t r = 0; r < N_RULES; r++) {
        uint32_t number = UINT32_MAX;
        bt_assert_rc(baton_store_add_rule(store, lib_rule, &g_rule_tags[r], &number), 0);
        assert_int_equal(number, r);
    }
    g_cap = TICKS * (2 * per_tick + 2);
    g_rw = calloc(g_cap, sizeof *g_rw);
    g_runs = calloc(g_cap, sizeof *g_runs);
    oracle *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->ids = calloc(N_SLOTS, sizeof *o->ids);
    o->state = calloc(N_SLOTS, DP);
    o->present = calloc(N_SLOTS, sizeof *o->present);
    assert_true(o->ids && o->state && o->present);
    expected_tick e = {.out = calloc(g_cap, sizeof *e.out), .ran = calloc(g_cap, sizeof(bool))};
    recorder rec = {.out = calloc(g_cap, sizeof *rec.out), .cap = g_cap};
    assert_true(g_rw && g_runs && o && e.out && e.ran && rec.out);
    o->queue = calloc(g_cap, sizeof *o->queue);
    assert_non_null(o->queue);
    o->conflict = conflict;
    for (size_t i = 0; i < g_nid; i++)
        put_entity(store, o, i, main_id(i), (uint64_t)i * 1000 + 1);
    uint64_t seq = 0, totals[6] = {0}; /* committed deferred rejected failed writes ticks */
    for (size_t tick = 0;; tick++) {
        if (tick < TICKS) {
            /* Between ticks: a payload changed in place; an entity nobody names comes and one
             * goes; new rewrites, one of which names a fresh entity removed right away. */
            size_t slot = (size_t)bt_rng_below(&rng, g_nid);
            void *ptr = NULL;
            bt_assert_rc(baton_store_lookup(store, main_id(slot), &ptr), 0);
            uint64_t v = st_get64(ptr, 0) ^ bt_rng_next(&rng);
            st_put64(ptr, 0, v);
            st_put64(o->state[slot], 0, v);
            size_t extra = g_nid + tick % N_EXTRA;
            put_entity(store, o, extra, extra_id(tick), tick);
            size_t old = g_nid + (tick + N_EXTRA - 3) % N_EXTRA;
            if (tick >= 3) {
                bt_assert_rc(baton_store_remove(store, o->ids[old]), 0);
                o->present[old] = false;
            }
            if (tick % 3 == 1) { /* a bulk update between ticks, under the store's policy */
                uint64_t delta = tick * 1000003;
                bt_assert_rc(baton_store_update_all(store, bump_values, &delta), 0);
                for (size_t i = 0; i < N_SLOTS; i++)
                    if (o->present[i])
                        st_put64(o->state[i], 0, st_get64(o->state[i], 0) + delta);
            }
            size_t n_new = per_tick / 2 + (size_t)bt_rng_below(&rng, per_tick + 1);
            size_t doomed_at = (size_t)bt_rng_below(&rng, n_new + 1);
            for (size_t k = 0; k <= n_new; k++) {
                wl_rewrite *w = &g_rw[seq];
                memset(w, 0, sizeof *w);
                w->rule = (uint32_t)bt_rng_below(&rng, N_RULES);
                w->scope = bt_rng_below(&rng, 4) == 0
                               ? main_id((size_t)bt_rng_below(&rng, g_nid))
                               : scopes[bt_rng_below(&rng, sizeof scopes / sizeof scopes[0])];
                w->arg = bt_rng_next(&rng) >> 1;
                if (k == doomed_at) {
                    uint64_t fresh = UINT64_C(0xD000000000000000) + seq;
                    unsigned char zero[DP] = {0};
                    bt_assert_rc(baton_store_insert(store, fresh, zero, DP), 0);
                    if (bt_rng_below(&rng, 2))
                        w->reads[w->n_reads++] = fresh;
                    else
                        w->writes[w->n_writes++] = fresh;
                    submit(store, w, seq++, o);
                    bt_assert_rc(baton_store_remove(store, fresh), 0);
                } else {
                    random_footprint(&rng, w);
                    submit(store, w, seq++, o);
                }
                assert_true(seq < g_cap);
            }
        } else if (o->n_queue == 0) {
            break;
        }
        assert_true(tick < TICKS + g_cap); /* each tick commits its smallest key: it ends */
        if (m->rotate)
            bt_assert_rc(baton_store_set_policy(store, (baton_store_policy)(tick % 3)), 0);
        for (size_t s = 0; s < g_cap; s++)
            atomic_store(&g_runs[s], 0);
        baton_tick_report report;
        memset(&report, 0xff, sizeof report);
        rec.n = 0;
        bt_assert_rc(baton_store_tick(store, &report, record, &rec), 0);
        bt_assert_no_thread_failures();
        oracle_tick(o, &e);
        bt_assert_no_thread_failures(); /* the oracle's own run of the rules checks too */
        compare_tick(what, tick, store, o, &e, &rec, &report);
        totals[0] += report.committed, totals[1] += report.deferred;
        totals[2] += report.rejected, totals[3] += report.failed;
        totals[4] += report.writes, totals[5]++;
    }
    if (print_totals)
        printf("# %s: %llu rewrites, %llu ticks: %llu committed, %llu deferred, %llu rejected, "
               "%llu failed, %llu writes\n",
               what, (unsigned long long)seq, (unsigned long long)totals[5],
               (unsigned long long)totals[0], (unsigned long long)totals[1],
               (unsigned long long)totals[2], (unsigned long long)totals[3],
               (unsigned long long)totals[4]);
    uint64_t fp = st_store_fingerprint(store);
    baton_store_destroy(store);
    free(o->queue);
    free(o->ids);
    free(o->state);
    free(o->present);
    free(o);
    free(e.out);
    free(e.ran);
    free(rec.out);
    free(g_rw);
    free((void *)g_runs);
    g_rw = NULL;
    g_runs = NULL;
    return fp;
}

/* Every configuration on one workload size; all must match the oracle, so they match each
 * other. */
static void run_all(baton_store_conflict_policy conflict, size_t nid, size_t per_tick,
                    const unsigned *bits, size_t n_bits)
{
    g_nid = nid;
    uint64_t first = 0;
    for (size_t b = 0; b < n_bits; b++)
        for (size_t m = 0; m < N_MODES; m++) {
            unsigned flags = (b + m) % 2 ? BATON_STORE_IDS_ARE_HASHES : 0;
            uint64_t fp =
                run_workload(&modes[m], bits[b], flags, conflict, per_tick, b == 0 && m == 0);
            if (b == 0 && m == 0)
                first = fp;
            assert_true(fp == first);
        }
    printf("# %s, %zu entities: final fingerprint %#018llx (workers %u, %zu rewrites per tick)\n",
           conflict == BATON_STORE_DEFER ? "defer" : "reject", nid, (unsigned long long)first,
           g_workers, per_tick);
}

/* Dense: 48 entities, so most rewrites conflict. */
static const unsigned dense_bits[] = {0, 1, 3, 10};

static void test_dense_defer(void **state)
{
    (void)state;
    run_all(BATON_STORE_DEFER, 48, bt_scaled(40, 8), dense_bits, 4);
}

static void test_dense_reject(void **state)
{
    (void)state;
    run_all(BATON_STORE_REJECT, 48, bt_scaled(40, 8), dense_bits, 4);
}

/* Wide: thousands of entities and rewrites per tick, so the workers overlap in every phase. */
static const unsigned wide_bits[] = {3, 8};

static void test_wide_defer(void **state)
{
    (void)state;
    run_all(BATON_STORE_DEFER, bt_scaled(4096, 256), bt_scaled(1500, 100), wide_bits, 2);
}

static void test_wide_reject(void **state)
{
    (void)state;
    run_all(BATON_STORE_REJECT, bt_scaled(4096, 256), bt_scaled(1500, 100), wide_bits, 2);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_defer),
        cmocka_unit_test(test_dense_reject),
        cmocka_unit_test(test_wide_defer),
        cmocka_unit_test(test_wide_reject),
    };
    return cmocka_run_group_tests_name("store/determinism", tests, group_setup, group_teardown);
}
