/*
 * bt_store_oracle.h — the determinism workload's rules and the serial oracle they are checked
 * against (test_store_determinism.c). The rules are written over an abstract read / write
 * (bt_rule_io), so that the library (through baton_rewrite_read / baton_rewrite_write, in
 * bt_lib_rule) and the oracle (over its own state at the tick's start and its own staged copies)
 * run the same code; what the oracle contributes independently is the documented semantics of a
 * tick: key order, conflicts, deferral and rejection, missing ids, staging, merging, the report and
 * the outcomes. Submitted rewrites live in bt_wl_submitted, by seq; bt_wl_runs counts the library's
 * runs. Inline (not in baton_test_support): one test uses it, and it defines that program's state.
 */
#ifndef BT_SUPPORT_STORE_ORACLE_H
#define BT_SUPPORT_STORE_ORACLE_H

#include "support/bt_common.h"

#include "support/bt_store.h"

enum {
    BT_WL_PAYLOAD = 24,
    BT_WL_MAX_FOOTPRINT = 6,
    BT_WL_RULES = 5,
    BT_WL_EXTRA = 16,
    BT_WL_TICKS = 10
};

/* Entities of the workload (main ids 0 .. bt_wl_n_ids - 1), and slots for the extra ones. */
static size_t bt_wl_n_ids;
#define BT_WL_SLOTS (bt_wl_n_ids + BT_WL_EXTRA)

static inline uint64_t bt_wl_main_id(size_t i)
{
    return UINT64_C(0x1000) + (uint64_t)i * UINT64_C(0x9E3779B97F4A7C15);
}

/* bt_wl_main_id's inverse: the multiplier's inverse mod 2^64 (so the oracle finds a slot in O(1)).
 */
static inline uint64_t bt_wl_main_index(uint64_t id)
{
    return (id - UINT64_C(0x1000)) * UINT64_C(0xF1DE83E19937733D);
}

static inline uint64_t bt_wl_extra_id(size_t tick)
{
    return UINT64_C(0xE000000000000000) + tick;
}

/* A submitted rewrite, by seq. Written by the main thread before the tick that runs it, read by
 * workers during it. */
typedef struct bt_wl_rewrite {
    uint32_t rule;
    uint64_t scope, arg;
    uint64_t reads[BT_WL_MAX_FOOTPRINT], writes[BT_WL_MAX_FOOTPRINT];
    uint32_t n_reads, n_writes;
    uint64_t w[BT_WL_MAX_FOOTPRINT],
        f[2 * BT_WL_MAX_FOOTPRINT]; /* distinct writes; distinct footprint (reads and writes) */
    uint32_t nw, nf;
} bt_wl_rewrite;

static bt_wl_rewrite *bt_wl_submitted;
static atomic_uint *bt_wl_runs;
static size_t bt_wl_cap;
static int bt_wl_rule_tags[BT_WL_RULES];

static inline bool bt_wl_in_list(const uint64_t *list, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (list[i] == id)
            return true;
    return false;
}

/* ---- the rules, over an abstract read / write so that the oracle runs the same code --------- */

typedef struct bt_rule_io {
    int (*read)(void *h, uint64_t id, const void **p);
    int (*write)(void *h, uint64_t id, void **p);
    void *h;
} bt_rule_io;

/* The first id of the footprint that is read and not written, else the first main id outside
 * the footprint. */
static inline uint64_t bt_wl_not_writable(const bt_wl_rewrite *w)
{
    for (uint32_t i = 0; i < w->n_reads; i++)
        if (!bt_wl_in_list(w->w, w->nw, w->reads[i]))
            return w->reads[i];
    for (size_t i = 0;; i++)
        if (!bt_wl_in_list(w->f, w->nf, bt_wl_main_id(i)))
            return bt_wl_main_id(i);
}

static inline uint64_t bt_wl_outside(const bt_wl_rewrite *w)
{
    for (size_t i = bt_wl_n_ids - 1;; i--)
        if (!bt_wl_in_list(w->f, w->nf, bt_wl_main_id(i)))
            return bt_wl_main_id(i);
}

/* Opens write `id` and bumps its counter; NULL (and a recorded failure) if that fails. */
static unsigned char *bt_rule_open_write(const bt_rule_io *io, uint64_t seq, uint64_t id)
{
    void *p = NULL;
    int rc = io->write(io->h, id, &p);
    BT_CHECK_MSG(rc == 0 && p != NULL, "seq %llu: write %#llx = %d", (unsigned long long)seq,
                 (unsigned long long)id, rc);
    if (rc != 0 || p == NULL)
        return NULL;
    bt_put64(p, 8, bt_get64(p, 8) + 1);
    bt_put64(p, 16, seq);
    return p;
}

static inline uint64_t bt_rule_read_value(const bt_rule_io *io, uint64_t seq, uint64_t id)
{
    const void *p = NULL;
    int rc = io->read(io->h, id, &p);
    BT_CHECK_MSG(rc == 0 && p != NULL, "seq %llu: read %#llx = %d", (unsigned long long)seq,
                 (unsigned long long)id, rc);
    return rc == 0 && p != NULL ? bt_get64(p, 0) : 0;
}

static inline int bt_rule_body(const bt_wl_rewrite *w, uint64_t seq, const bt_rule_io *io)
{
    uint64_t sum = 0, gathered[BT_WL_MAX_FOOTPRINT];
    unsigned char *p;
    void *dummy = NULL;
    const void *cdummy = NULL;
    int rc;
    switch (w->rule) {
    case 0: /* writes: value * 31 + sum of the reads + arg */
        for (uint32_t i = 0; i < w->n_reads; i++)
            sum += bt_rule_read_value(io, seq, w->reads[i]);
        for (uint32_t i = 0; i < w->nw; i++)
            if ((p = bt_rule_open_write(io, seq, w->w[i])) != NULL)
                bt_put64(p, 0, bt_get64(p, 0) * 31 + sum + w->arg);
        return 0;
    case 1: /* writes, then fails for a third of the args: nothing of it may remain */
        for (uint32_t i = 0; i < w->nw; i++)
            if ((p = bt_rule_open_write(io, seq, w->w[i])) != NULL)
                bt_put64(p, 0, bt_get64(p, 0) ^ UINT64_C(0xBAD));
        return w->arg % 3 == 0 ? (w->arg % 2 ? BATON_EIO : -1000) : 0;
    case 2: /* read your own writes; EPERM outside the sets */
        for (uint32_t i = 0; i < w->nw; i++) {
            if ((p = bt_rule_open_write(io, seq, w->w[i])) == NULL)
                continue;
            uint64_t v = bt_get64(p, 0) + 1 + w->arg;
            bt_put64(p, 0, v);
            BT_CHECK(bt_rule_read_value(io, seq, w->w[i]) == v);
            rc = io->write(io->h, w->w[i], &dummy);
            BT_CHECK(rc == 0 && dummy != NULL && bt_get64(dummy, 0) == v);
        }
        rc = io->write(io->h, bt_wl_not_writable(w), &dummy);
        BT_CHECK_MSG(rc == BATON_EPERM, "write outside the write set = %d", rc);
        rc = io->read(io->h, bt_wl_outside(w), &cdummy);
        BT_CHECK_MSG(rc == BATON_EPERM, "read outside the footprint = %d", rc);
        return 0;
    case 3: /* moves values: write i gets read i % n_reads (or the next write) as it began */
        for (uint32_t i = 0; i < w->nw; i++)
            gathered[i] = bt_rule_read_value(io, seq,
                                     w->n_reads ? w->reads[i % w->n_reads] : w->w[(i + 1) % w->nw]);
        for (uint32_t i = 0; i < w->nw; i++)
            if ((p = bt_rule_open_write(io, seq, w->w[i])) != NULL)
                bt_put64(p, 0, gathered[i] + seq);
        return 0;
    default: /* 4: EPERM writing outside the write set; odd args return it */
        rc = io->write(io->h, bt_wl_not_writable(w), &dummy);
        BT_CHECK_MSG(rc == BATON_EPERM, "write outside the write set = %d", rc);
        if (w->arg % 2)
            return rc;
        for (uint32_t i = 0; i < w->n_reads; i++)
            sum ^= bt_rule_read_value(io, seq, w->reads[i]);
        for (uint32_t i = 0; i < w->nw; i++)
            if ((p = bt_rule_open_write(io, seq, w->w[i])) != NULL)
                bt_put64(p, 0, bt_get64(p, 0) + (sum | 1));
        return 0;
    }
}

static inline int bt_lib_read(void *h, uint64_t id, const void **p)
{
    return baton_rewrite_read(h, id, p);
}

static inline int bt_lib_write(void *h, uint64_t id, void **p)
{
    return baton_rewrite_write(h, id, p);
}

static inline int bt_lib_rule(baton_rewrite_ctx *rc, void *rule_ctx)
{
    uint64_t seq = baton_rewrite_seq(rc);
    BT_CHECK_MSG(seq < bt_wl_cap, "seq %llu", (unsigned long long)seq);
    if (seq >= bt_wl_cap)
        return BATON_EINVAL;
    atomic_fetch_add_explicit(&bt_wl_runs[seq], 1, memory_order_relaxed);
    const bt_wl_rewrite *w = &bt_wl_submitted[seq];
    BT_CHECK(rule_ctx == &bt_wl_rule_tags[w->rule]);
    BT_CHECK(baton_rewrite_rule(rc) == w->rule);
    BT_CHECK(baton_rewrite_scope(rc) == w->scope);
    BT_CHECK(baton_rewrite_arg(rc) == w->arg);
    BT_CHECK(baton_rewrite_payload_size(rc) == BT_WL_PAYLOAD);
    bt_rule_io io = {bt_lib_read, bt_lib_write, rc};
    return bt_rule_body(w, seq, &io);
}

/* ---- the oracle ------------------------------------------------------------------------------ */

typedef struct bt_oracle {
    uint64_t *ids;               /* by slot: main ids, then BT_WL_EXTRA extra ones */
    unsigned char (*state)[BT_WL_PAYLOAD];
    bool *present;
    uint64_t *queue; /* seqs pending */
    size_t n_queue;
    baton_store_conflict_policy conflict;
    uint64_t ticks, total_writes;
} bt_oracle;

typedef struct bt_oracle_io {
    const bt_wl_rewrite *w;
    const bt_oracle *o;
    unsigned char copy[BT_WL_MAX_FOOTPRINT][BT_WL_PAYLOAD];
    bool opened[BT_WL_MAX_FOOTPRINT];
} bt_oracle_io;

static inline int bt_oracle_slot_of(const bt_oracle *o, uint64_t id)
{
    uint64_t i = bt_wl_main_index(id);
    if (i < bt_wl_n_ids)
        return (int)i;
    i = id - bt_wl_extra_id(0);
    if (i < BT_WL_TICKS) {
        int slot = (int)(bt_wl_n_ids + i % BT_WL_EXTRA);
        if (o->present[slot] && o->ids[slot] == id)
            return slot;
    }
    return -1;
}

static inline int bt_oracle_read(void *h, uint64_t id, const void **p)
{
    bt_oracle_io *io = h;
    if (!bt_wl_in_list(io->w->f, io->w->nf, id))
        return BATON_EPERM;
    for (uint32_t i = 0; i < io->w->nw; i++)
        if (io->w->w[i] == id && io->opened[i]) {
            *p = io->copy[i];
            return 0;
        }
    *p = io->o->state[bt_oracle_slot_of(io->o, id)];
    return 0;
}

static inline int bt_oracle_write(void *h, uint64_t id, void **p)
{
    bt_oracle_io *io = h;
    for (uint32_t i = 0; i < io->w->nw; i++)
        if (io->w->w[i] == id) {
            if (!io->opened[i])
                memcpy(io->copy[i], io->o->state[bt_oracle_slot_of(io->o, id)], BT_WL_PAYLOAD);
            io->opened[i] = true;
            *p = io->copy[i];
            return 0;
        }
    return BATON_EPERM;
}

static inline int bt_key_cmp(uint64_t a, uint64_t b)
{
    const bt_wl_rewrite *x = &bt_wl_submitted[a], *y = &bt_wl_submitted[b];
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    if (x->scope != y->scope)
        return x->scope < y->scope ? -1 : 1;
    return a < b ? -1 : a > b;
}

static inline int bt_key_cmp_q(const void *a, const void *b)
{
    return bt_key_cmp(*(const uint64_t *)a, *(const uint64_t *)b);
}

typedef struct bt_expected_tick {
    baton_tick_report report;
    baton_rewrite_outcome *out; /* capacity bt_wl_cap */
    size_t n_out;
    bool *ran; /* by seq */
} bt_expected_tick;

/* One tick of the documented semantics. */
static inline void bt_oracle_tick(bt_oracle *o, bt_expected_tick *e)
{
    memset(&e->report, 0, sizeof e->report);
    e->n_out = 0;
    memset(e->ran, 0, bt_wl_cap * sizeof *e->ran);
    e->report.tick = o->ticks++;
    e->report.considered = o->n_queue;
    qsort(o->queue, o->n_queue, sizeof *o->queue, bt_key_cmp_q);
    /* Per entity slot, the smallest-key rewrite so far that touches it and that writes it;
     * scanning in key order, these are the smallest-key ones a later rewrite can conflict with. */
    int64_t *first_touch = malloc(BT_WL_SLOTS * sizeof *first_touch);
    int64_t *first_write = malloc(BT_WL_SLOTS * sizeof *first_write);
    unsigned char (*staged)[BT_WL_PAYLOAD] = calloc(BT_WL_SLOTS, BT_WL_PAYLOAD);
    bool *staged_any = calloc(BT_WL_SLOTS, sizeof *staged_any);
    assert_true(first_touch && first_write && staged && staged_any);
    for (size_t i = 0; i < BT_WL_SLOTS; i++)
        first_touch[i] = first_write[i] = -1;
    size_t kept = 0;
    for (size_t k = 0; k < o->n_queue; k++) {
        uint64_t seq = o->queue[k];
        const bt_wl_rewrite *w = &bt_wl_submitted[seq];
        baton_rewrite_outcome out = {.seq = seq, .rule = w->rule, .scope = w->scope};
        bool missing = false;
        for (uint32_t i = 0; i < w->nf; i++)
            if (bt_oracle_slot_of(o, w->f[i]) < 0 && (!missing || w->f[i] < out.conflict_id))
                missing = true, out.conflict_id = w->f[i];
        if (missing) { /* only fresh entities no other rewrite names: they block nothing */
            out.status = BATON_ENOTFOUND;
            e->report.failed++;
            e->out[e->n_out++] = out;
            continue;
        }
        bool contested = false;
        for (uint32_t i = 0; i < w->nf; i++) {
            int s = bt_oracle_slot_of(o, w->f[i]);
            int64_t q = bt_wl_in_list(w->w, w->nw, w->f[i]) ? first_touch[s] : first_write[s];
            if (q >= 0 && (!contested || w->f[i] < out.conflict_id))
                contested = true, out.conflict_id = w->f[i], out.winner_seq = (uint64_t)q;
        }
        for (uint32_t i = 0; i < w->nf; i++) {
            int s = bt_oracle_slot_of(o, w->f[i]);
            if (first_touch[s] < 0)
                first_touch[s] = (int64_t)seq;
            if (first_write[s] < 0 && bt_wl_in_list(w->w, w->nw, w->f[i]))
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
        bt_oracle_io io = {.w = w, .o = o};
        bt_rule_io rio = {bt_oracle_read, bt_oracle_write, &io};
        int rc = bt_rule_body(w, seq, &rio);
        if (rc != 0) {
            out.status = rc;
            e->report.failed++;
            e->out[e->n_out++] = out;
            continue;
        }
        e->report.committed++;
        for (uint32_t i = 0; i < w->nw; i++)
            if (io.opened[i]) {
                int s = bt_oracle_slot_of(o, w->w[i]);
                assert_false(staged_any[s]); /* two winners never write one id */
                memcpy(staged[s], io.copy[i], BT_WL_PAYLOAD);
                staged_any[s] = true;
                e->report.writes++;
            }
    }
    for (size_t s = 0; s < BT_WL_SLOTS; s++)
        if (staged_any[s])
            memcpy(o->state[s], staged[s], BT_WL_PAYLOAD);
    free(staged);
    free(staged_any);
    free(first_touch);
    free(first_write);
    o->n_queue = kept;
    o->total_writes += e->report.writes;
}

static inline uint64_t bt_oracle_fingerprint(const bt_oracle *o)
{
    return bt_model_fingerprint(o->ids, o->state, o->present, BT_WL_SLOTS, BT_WL_PAYLOAD);
}

#endif /* BT_SUPPORT_STORE_ORACLE_H */
