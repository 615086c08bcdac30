/*
 * test_space_recovery.c — the durable tuplespace after a crash and on a damaged log: crash
 * recovery (SYNC children killed at random moments, the reopened space checked exactly against
 * what they acknowledged) and damaged logs (truncated and bit-flipped copies opened with and
 * without salvage in forked children, so a crash shows up as a failure and not as a dead binary).
 */
#define _GNU_SOURCE
#include "support/bt_common.h"
#include "support/bt_space_durable.h"

/* ---- 6. crash recovery ---------------------------------------------------------------------- */

/* The child's operations: op i's kind is a function of (seed, i), so the parent knows every
 * operation, acknowledged or not. Produced data are the op ids themselves (unique). */
enum { OP_A, OP_B, OP_C, OP_D, OP_JOIN, OP_SINGLE };

static uint64_t mix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static int op_kind(uint64_t seed, uint64_t op)
{
    uint64_t r = mix64(seed ^ (op * UINT64_C(0x2545f4914f6cdd1d))) % 100;
    return r < 20 ? OP_A : r < 30 ? OP_B : r < 55 ? OP_C : r < 75 ? OP_D : r < 90 ? OP_JOIN
                                                                                  : OP_SINGLE;
}

typedef struct child_k {
    baton_space *space;
    baton_value *out;
    uint64_t op;
    bool join;
} child_k;

/* The child's continuation: ("j", op, c, d) or ("s", op, c) on "E". */
static int child_fire(void *ctx, const baton_match *match)
{
    child_k *k = ctx;
    baton_value_builder *b = NULL;
    baton_value *v = NULL;
    int rc = baton_value_builder_create(&b);
    if (rc == 0)
        rc = baton_value_begin_tuple(b);
    if (rc == 0)
        rc = baton_value_add_string(b, k->join ? "j" : "s", 1);
    if (rc == 0)
        rc = baton_value_add_int(b, (int64_t)k->op);
    for (size_t i = 0; i < match->n_channels && rc == 0; i++)
        rc = baton_value_add_view(b, match->data[i]);
    if (rc == 0)
        rc = baton_value_end(b);
    if (rc == 0)
        rc = baton_value_finish(b, &v);
    if (rc == 0)
        rc = baton_space_produce(k->space, baton_value_as_view(k->out), baton_value_as_view(v),
                                 false);
    baton_value_destroy(v);
    baton_value_builder_destroy(b);
    return rc;
}

static baton_value *int_value(int64_t x)
{
    baton_value_builder *b = NULL;
    baton_value *v = NULL;
    if (baton_value_builder_create(&b) != 0 || baton_value_add_int(b, x) != 0 ||
        baton_value_finish(b, &v) != 0)
        _exit(7);
    baton_value_builder_destroy(b);
    return v;
}

static baton_value *body_value(const char *tag, uint64_t op)
{
    baton_value_builder *b = NULL;
    baton_value *v = NULL;
    if (baton_value_builder_create(&b) != 0 || baton_value_begin_tuple(b) != 0 ||
        baton_value_add_string(b, tag, strlen(tag)) != 0 ||
        baton_value_add_int(b, (int64_t)op) != 0 || baton_value_end(b) != 0 ||
        baton_value_finish(b, &v) != 0)
        _exit(7);
    baton_value_builder_destroy(b);
    return v;
}

static void reset_crash_signals(void)
{
    /* cmocka catches these to fail a test; in a child they must end it. */
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

static _Noreturn void crash_child(const char *dir, int fd, uint64_t seed)
{
    reset_crash_signals();
    baton_pool *pool = NULL;
    baton_pool_config pc = bt_pool_config(2, 0, 0);
    if (baton_pool_create(&pc, &pool) != 0)
        _exit(3);
    baton_space_config config = bt_space_config(pool, BATON_DURABILITY_SYNC, NULL, NULL);
    baton_space *space = NULL;
    if (baton_space_open(&config, dir, &space) != 0)
        _exit(4);
    uint64_t opened = 0; /* the parent starts its clock once the space is open */
    if (write(fd, &opened, sizeof opened) != (ssize_t)sizeof opened)
        _exit(6);
    baton_value *chan[5] = {bt_value("\"A\""), bt_value("\"B\""), bt_value("\"C\""),
                            bt_value("\"D\""), bt_value("\"E\"")};
    baton_value_view cv[5];
    for (int i = 0; i < 5; i++)
        cv[i] = baton_value_as_view(chan[i]);
    baton_pattern *never = bt_pattern("\"never\""), *p_int = bt_pattern("Int");
    baton_pattern *const join_pats[2] = {p_int, p_int};
    for (uint64_t op = 1; op < 10000000; op++) {
        int kind = op_kind(seed, op);
        int rc = 0;
        if (kind == OP_A || kind == OP_C || kind == OP_D) {
            baton_value *d = int_value((int64_t)op);
            rc = baton_space_produce(space, cv[kind == OP_A ? 0 : kind == OP_C ? 2 : 3],
                                     baton_value_as_view(d), false);
            baton_value_destroy(d);
        } else if (kind == OP_B) {
            baton_value *body = body_value("b", op);
            rc = baton_space_consume_body(space, &cv[1], &never, 1, child_fire, NULL, 0,
                                          baton_value_as_view(body), NULL);
            baton_value_destroy(body);
        } else {
            child_k *k = malloc(sizeof *k); /* lives until the kill */
            if (k == NULL)
                _exit(7);
            *k = (child_k){space, chan[4], op, kind == OP_JOIN};
            baton_value *body = body_value(k->join ? "j" : "s", op);
            baton_value_view chans[2] = {cv[2], cv[3]};
            rc = baton_space_consume_body(space, chans, join_pats, k->join ? 2 : 1, child_fire,
                                          k, 0, baton_value_as_view(body), NULL);
            baton_value_destroy(body);
        }
        if (rc != 0)
            _exit(5);
        if (write(fd, &op, sizeof op) != (ssize_t)sizeof op)
            _exit(6);
    }
    _exit(0);
}

/* What the parent's reopen revives: the firing it saw, if any. */
typedef struct parent_k {
    uint64_t op;
    int kind;
    atomic_int fired;
    int64_t c, d;
} parent_k;

typedef struct parent_rv {
    parent_k **ks;
    size_t n, cap;
    uint64_t seed;
    int bad;
} parent_rv;

static int parent_fire(void *ctx, const baton_match *match)
{
    parent_k *k = ctx;
    k->c = baton_view_int(match->data[0]);
    k->d = match->n_channels > 1 ? baton_view_int(match->data[1]) : 0;
    atomic_fetch_add(&k->fired, 1);
    return 0;
}

static int parent_revive(void *revive_ctx, uint64_t id, baton_value_view body,
                         baton_continuation_fn *fn, void **ctx)
{
    (void)id;
    parent_rv *rv = revive_ctx;
    if (baton_view_kind(body) != BATON_VALUE_TUPLE || baton_view_count(body) != 2) {
        rv->bad++;
        return BATON_EINVAL;
    }
    parent_k *k = calloc(1, sizeof *k);
    if (k == NULL || (rv->n == rv->cap && (rv->cap = rv->cap ? 2 * rv->cap : 64,
                                           rv->ks = realloc(rv->ks, rv->cap * sizeof *rv->ks)) ==
                                              NULL)) {
        free(k);
        return BATON_ENOMEM;
    }
    size_t len = 0;
    const uint8_t *tag = baton_view_bytes(baton_view_element(body, 0), &len);
    k->op = (uint64_t)baton_view_int(baton_view_element(body, 1));
    k->kind = len == 1 && tag[0] == 'j' ? OP_JOIN : len == 1 && tag[0] == 's' ? OP_SINGLE
                                                                              : OP_B;
    rv->ks[rv->n++] = k;
    *fn = parent_fire;
    *ctx = k;
    return 0;
}

typedef struct crash_view {
    uint64_t seed;
    uint64_t limit;      /* the largest op that may have run (acked + 1) */
    uint8_t *value_seen; /* per op: times its datum was seen (stored, in E, taken at reopen) */
    uint8_t *cons_seen;  /* per op: times its consumer was seen (waiting, in E, fired at reopen) */
    int64_t *a_data;
    size_t n_a;
    int64_t last_c, last_d;
    size_t n_c, n_d, n_e;
    size_t waiting_single, waiting_join, waiting_b;
    char err[256];
} crash_view;

static void cv_fail(crash_view *v, const char *what, int64_t x)
{
    if (v->err[0] == '\0')
        snprintf(v->err, sizeof v->err, "%s (%" PRId64 ")", what, x);
}

static bool cv_value(crash_view *v, int64_t x, int kind)
{
    if (x < 1 || (uint64_t)x > v->limit || op_kind(v->seed, (uint64_t)x) != kind) {
        cv_fail(v, "a datum no produce made", x);
        return false;
    }
    v->value_seen[x]++;
    return true;
}

static bool cv_consumer(crash_view *v, int64_t op, int kind)
{
    if (op < 1 || (uint64_t)op > v->limit || op_kind(v->seed, (uint64_t)op) != kind) {
        cv_fail(v, "a consumer no consume made", op);
        return false;
    }
    v->cons_seen[op]++;
    return true;
}

static bool str_is(baton_value_view v, const char *s)
{
    size_t len = 0;
    const uint8_t *p = baton_view_bytes(v, &len);
    return baton_view_kind(v) == BATON_VALUE_STRING && len == strlen(s) && memcmp(p, s, len) == 0;
}

static int crash_datum(void *ctx, const baton_space_datum_info *info)
{
    crash_view *v = ctx;
    if (info->persistent)
        cv_fail(v, "a persistent datum", 0);
    if (str_is(info->channel, "A")) {
        int64_t x = baton_view_int(info->datum);
        if (cv_value(v, x, OP_A))
            v->a_data[v->n_a++] = x;
    } else if (str_is(info->channel, "C") || str_is(info->channel, "D")) {
        bool c = str_is(info->channel, "C");
        int64_t x = baton_view_int(info->datum);
        int64_t *last = c ? &v->last_c : &v->last_d;
        if (x <= *last)
            cv_fail(v, "data out of order", x);
        *last = x;
        cv_value(v, x, c ? OP_C : OP_D);
        (c ? v->n_c++ : v->n_d++);
    } else if (str_is(info->channel, "E")) {
        baton_value_view t = info->datum;
        size_t n = baton_view_count(t);
        bool join = n == 4 && str_is(baton_view_element(t, 0), "j");
        bool single = n == 3 && str_is(baton_view_element(t, 0), "s");
        if (!join && !single) {
            cv_fail(v, "a malformed E datum", 0);
            return 0;
        }
        cv_consumer(v, baton_view_int(baton_view_element(t, 1)), join ? OP_JOIN : OP_SINGLE);
        cv_value(v, baton_view_int(baton_view_element(t, 2)), OP_C);
        if (join)
            cv_value(v, baton_view_int(baton_view_element(t, 3)), OP_D);
        v->n_e++;
    } else {
        cv_fail(v, "a datum on an unknown channel", 0);
    }
    return 0;
}

static int crash_consumer(void *ctx, const baton_space_consumer_info *info)
{
    crash_view *v = ctx;
    baton_value_view body = info->body;
    if (baton_view_count(body) != 2 || info->flags != 0) {
        cv_fail(v, "a malformed consumer", (int64_t)info->id);
        return 0;
    }
    int64_t op = baton_view_int(baton_view_element(body, 1));
    baton_value_view tag = baton_view_element(body, 0);
    if (str_is(tag, "b")) {
        if (info->n_channels != 1 || !str_is(info->channels[0], "B"))
            cv_fail(v, "a B consumer on the wrong channel", op);
        cv_consumer(v, op, OP_B);
        v->waiting_b++;
    } else if (str_is(tag, "j")) {
        if (info->n_channels != 2 || !str_is(info->channels[0], "C") ||
            !str_is(info->channels[1], "D"))
            cv_fail(v, "a join on the wrong channels", op);
        cv_consumer(v, op, OP_JOIN);
        v->waiting_join++;
    } else if (str_is(tag, "s")) {
        if (info->n_channels != 1 || !str_is(info->channels[0], "C"))
            cv_fail(v, "a single consumer on the wrong channel", op);
        cv_consumer(v, op, OP_SINGLE);
        v->waiting_single++;
    } else {
        cv_fail(v, "a consumer with an unknown body", op);
    }
    return 0;
}

typedef struct crash_totals {
    uint64_t acked, fired_at_reopen, lost_e;
} crash_totals;

/* One child killed right after the parent has read its kill_after-th acknowledgement: where the
 * kill lands depends on what the child acknowledged, never on how fast the machine is. */
static void crash_trial(int trial, uint64_t seed, uint64_t kill_after, crash_totals *totals)
{
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_child(dir, fds[1], seed);
    }
    close(fds[1]);
    /* The kill lands in the workload, after the first open and the kill_after-th
     * acknowledgement, so that every trial has acknowledged operations to check. (Kills during
     * the creation of a space: test_space_reopen.c.) */
    uint64_t op = UINT64_MAX;
    if (read(fds[0], &op, sizeof op) != (ssize_t)sizeof op || op != 0)
        fail_msg("trial %d: the child did not open its space", trial);
    uint64_t acked = 0;
    while (acked < kill_after) {
        if (read(fds[0], &op, sizeof op) != (ssize_t)sizeof op)
            fail_msg("trial %d: the child stopped after %" PRIu64 " acknowledgements", trial,
                     acked);
        assert_int_equal(op, acked + 1);
        acked = op;
    }
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        fail_msg("trial %d: the child exited with %d before it was killed", trial,
                 WEXITSTATUS(status));
    while (read(fds[0], &op, sizeof op) == (ssize_t)sizeof op) { /* acknowledged before death */
        assert_int_equal(op, acked + 1);
        acked = op;
    }
    close(fds[0]);

    baton_pool *pool = bt_pool_new(2);
    parent_rv rv = {.seed = seed};
    baton_space_config config = bt_space_config(pool, BATON_DURABILITY_SYNC, parent_revive, &rv);
    baton_space *space = NULL;
    int rc = baton_space_open(&config, dir, &space);
    if (rc != 0)
        fail_msg("trial %d (%" PRIu64 " acknowledged): reopen: %s: %s", trial, acked,
                 baton_err_name(rc), baton_last_error_message());
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal(rv.bad, 0);

    crash_view v;
    memset(&v, 0, sizeof v);
    v.seed = seed;
    v.limit = acked + 1;
    v.value_seen = calloc(v.limit + 1, 1);
    v.cons_seen = calloc(v.limit + 1, 1);
    v.a_data = calloc(v.limit + 1, sizeof *v.a_data);
    assert_true(v.value_seen && v.cons_seen && v.a_data);
    bt_assert_rc(baton_space_visit(space, crash_datum, crash_consumer, &v), 0);
    for (size_t i = 0; i < rv.n; i++) {
        parent_k *k = rv.ks[i];
        int fired = atomic_load(&k->fired);
        if (fired > 1)
            cv_fail(&v, "a revived consumer fired twice", (int64_t)k->op);
        if (fired == 1) {
            totals->fired_at_reopen++;
            cv_consumer(&v, (int64_t)k->op, k->kind);
            cv_value(&v, k->c, OP_C);
            if (k->kind == OP_JOIN)
                cv_value(&v, k->d, OP_D);
        }
    }
    if (v.err[0] != '\0')
        fail_msg("trial %d (%" PRIu64 " acknowledged): %s", trial, acked, v.err);

    /* A: exactly the acknowledged produces in order, and perhaps the one in flight. */
    size_t ai = 0;
    for (uint64_t o = 1; o <= acked; o++) {
        if (op_kind(seed, o) != OP_A)
            continue;
        if (ai >= v.n_a || v.a_data[ai] != (int64_t)o)
            fail_msg("trial %d: acknowledged datum %" PRIu64 " on A is missing", trial, o);
        ai++;
    }
    if (ai < v.n_a && !(ai + 1 == v.n_a && v.a_data[ai] == (int64_t)(acked + 1)))
        fail_msg("trial %d: A holds %zu data, %zu were acknowledged", trial, v.n_a, ai);
    /* Nothing seen twice; every acknowledged B consumer waits; account for the lost. */
    uint64_t lost_c = 0, lost_d = 0, gone_single = 0, gone_join = 0;
    for (uint64_t o = 1; o <= v.limit; o++) {
        if (v.value_seen[o] > 1)
            fail_msg("trial %d: datum %" PRIu64 " seen %u times", trial, o, v.value_seen[o]);
        if (v.cons_seen[o] > 1)
            fail_msg("trial %d: consumer of op %" PRIu64 " seen %u times", trial, o,
                     v.cons_seen[o]);
        int kind = op_kind(seed, o);
        if (kind == OP_B && o <= acked && v.cons_seen[o] != 1)
            fail_msg("trial %d: acknowledged consumer of op %" PRIu64 " on B is gone", trial, o);
        if (kind == OP_C && o <= acked && v.value_seen[o] == 0)
            lost_c++;
        if (kind == OP_D && o <= acked && v.value_seen[o] == 0)
            lost_d++;
        /* A consumer neither waiting nor accounted for fired before the crash and its E datum
         * was lost (or, for the op in flight, it never ran). */
        if (kind == OP_SINGLE && v.cons_seen[o] == 0)
            gone_single++;
        if (kind == OP_JOIN && v.cons_seen[o] == 0)
            gone_join++;
    }
    if (lost_d > gone_join || lost_c > gone_single + gone_join)
        fail_msg("trial %d: %" PRIu64 " C and %" PRIu64 " D data vanished, but only %" PRIu64
                 " single and %" PRIu64 " join consumers can have taken them", trial, lost_c,
                 lost_d, gone_single, gone_join);
    /* Stable: nothing waiting could fire. */
    if (v.waiting_single > 0 && v.n_c > 0)
        fail_msg("trial %d: a single consumer waits while C holds data", trial);
    if (v.waiting_join > 0 && v.n_c > 0 && v.n_d > 0)
        fail_msg("trial %d: a join waits while C and D hold data", trial);
    baton_space_stats st = bt_stats_of(space);
    assert_int_equal(st.consumers, v.waiting_b + v.waiting_single + v.waiting_join);
    totals->acked += acked;
    totals->lost_e += gone_single + gone_join;

    baton_space_destroy(space);
    for (size_t i = 0; i < rv.n; i++)
        free(rv.ks[i]);
    free(rv.ks);
    free(v.value_seen);
    free(v.cons_seen);
    free(v.a_data);
    bt_pool_destroy(pool);
    bt_remove_tree(dir);
}

static void test_crash_recovery(void **state)
{
    (void)state;
    bt_rng rng = bt_rng_seed(20260611);
    crash_totals totals = {0};
    const int trials = 20;
    for (int trial = 0; trial < trials; trial++) {
        uint64_t seed = bt_rng_next(&rng);
        uint64_t kill_after = 1 + bt_rng_below(&rng, 300);
        crash_trial(trial, seed, kill_after, &totals);
    }
    print_message("crash recovery: %d trials, %" PRIu64 " acknowledged operations, %" PRIu64
                  " consumers fired at reopen, %" PRIu64 " consumers gone without a trace\n",
                  trials, totals.acked, totals.fired_at_reopen, totals.lost_e);
    assert_true(totals.acked > 0);
}

/* ---- 7. damaged logs ------------------------------------------------------------------------ */

static int noop_fn(void *ctx, const baton_match *match)
{
    (void)ctx;
    (void)match;
    return 0;
}

static int noop_revive(void *revive_ctx, uint64_t id, baton_value_view body,
                       baton_continuation_fn *fn, void **ctx)
{
    (void)revive_ctx;
    (void)id;
    (void)body;
    *fn = noop_fn;
    *ctx = NULL;
    return 0;
}

typedef struct damage_result {
    int exited;
    int rc;           /* the open's return */
    int reopen_rc;    /* after a successful open: a second open, salvage off */
    size_t data, consumers;
    char msg[256];
} damage_result;

/* Opens dir in a forked child (salvage or not); after a successful open, also reopens it. */
static damage_result open_in_child(const char *dir, bool salvage)
{
    damage_result *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(shared != MAP_FAILED);
    memset(shared, 0, sizeof *shared);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        reset_crash_signals();
        baton_pool *pool = NULL;
        baton_pool_config pc = bt_pool_config(2, 0, 0);
        if (baton_pool_create(&pc, &pool) != 0)
            _exit(3);
        baton_space_config config =
            bt_space_config(pool, BATON_DURABILITY_ASYNC, noop_revive, NULL);
        config.salvage = salvage;
        baton_space *space = NULL;
        int rc = baton_space_open(&config, dir, &space);
        shared->rc = rc;
        snprintf(shared->msg, sizeof shared->msg, "%s", baton_last_error_message());
        if (rc == 0) {
            (void)baton_space_quiesce(space);
            baton_space_stats st;
            baton_space_get_stats(space, &st);
            shared->data = st.data;
            shared->consumers = st.consumers;
            baton_space_destroy(space);
            config.salvage = false;
            space = NULL;
            shared->reopen_rc = baton_space_open(&config, dir, &space);
            if (shared->reopen_rc == 0)
                baton_space_destroy(space);
        }
        baton_pool_destroy(pool);
        shared->exited = 1;
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    damage_result r = *shared;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        r.exited = 0;
    munmap(shared, sizeof *shared);
    return r;
}

static bool has_damaged_copy(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        found |= strncmp(e->d_name, "data.mdb.damaged-", 17) == 0;
    closedir(d);
    return found;
}

typedef struct damage_counts {
    unsigned trials, refused, salvaged, intact;
} damage_counts;

/* Writes the damaged copy into a fresh trial directory and opens it both ways. */
static void try_damaged(const char *base, const unsigned char *data, size_t size,
                        const char *what, damage_counts *counts)
{
    char trial[160];
    snprintf(trial, sizeof trial, "%s/trial", base);
    char path[192];
    snprintf(path, sizeof path, "%s/data.mdb", trial);

    bt_remove_tree(trial);
    assert_int_equal(mkdir(trial, 0755), 0);
    bt_write_file(path, data, size);
    damage_result plain = open_in_child(trial, false);
    if (!plain.exited)
        fail_msg("%s: baton_space_open crashed", what);
    if (plain.rc != 0 && plain.rc != BATON_EIO)
        fail_msg("%s: baton_space_open returned %s: %s", what, baton_err_name(plain.rc),
                 plain.msg);
    if (plain.rc == BATON_EIO && plain.msg[0] == '\0')
        fail_msg("%s: BATON_EIO without a message", what);
    if (plain.rc == 0 && plain.reopen_rc != 0)
        fail_msg("%s: the second open returned %s", what, baton_err_name(plain.reopen_rc));

    bt_remove_tree(trial);
    assert_int_equal(mkdir(trial, 0755), 0);
    bt_write_file(path, data, size);
    damage_result salv = open_in_child(trial, true);
    if (!salv.exited)
        fail_msg("%s: baton_space_open with salvage crashed", what);
    if (salv.rc != 0 && !(salv.rc == BATON_EIO && salv.msg[0] != '\0'))
        fail_msg("%s: baton_space_open with salvage returned %s: %s", what,
                 baton_err_name(salv.rc), salv.msg);
    if (salv.rc == 0 && salv.reopen_rc != 0)
        fail_msg("%s: the open after salvage returned %s", what, baton_err_name(salv.reopen_rc));
    if (plain.rc == BATON_EIO && salv.rc == 0 && !has_damaged_copy(trial))
        fail_msg("%s: salvaged, but no data.mdb.damaged-* (%s)", what, salv.msg);
    if (plain.rc == 0 && salv.rc != 0)
        fail_msg("%s: opens without salvage but not with it: %s", what, salv.msg);
    counts->trials++;
    counts->refused += plain.rc != 0;
    counts->salvaged += plain.rc != 0 && salv.rc == 0;
    counts->intact += plain.rc == 0;
}

static void test_damaged_logs(void **state)
{
    (void)state;
    char base[64];
    bt_space_tmpdir(base, sizeof base);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/clean", base);
    {
        baton_pool *pool = bt_pool_new(2);
        baton_space_config config = bt_space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
        baton_space *space = bt_space_open_ok(&config, dir);
        bt_session *s = calloc(1, sizeof *s);
        assert_non_null(s);
        bt_populate(s, space);
        for (int i = 0; i < 300; i++) {
            char datum[64];
            snprintf(datum, sizeof datum, "(%d, \"payload %d\")", i, i * 7);
            bt_put(space, i % 3 == 0 ? "\"x\"" : i % 3 == 1 ? "\"y\"" : "@9", datum, i % 5 == 0);
        }
        bt_assert_rc(baton_space_quiesce(space), 0);
        baton_space_destroy(space);
        bt_session_free_patterns(s);
        free(s);
        bt_pool_destroy(pool);
    }
    char path[192];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    size_t size = 0;
    unsigned char *data = bt_read_file(path, &size);
    assert_true(size > 3 * 4096);

    damage_counts counts = {0};
    /* The intact copy opens both ways. */
    try_damaged(base, data, size, "intact", &counts);
    assert_int_equal(counts.intact, 1);

    const size_t cuts[] = {0, 1, 100, 4096, 4097, 8192, 3 * 4096, size / 2, size - 4096,
                           size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", cuts[i], size);
        try_damaged(base, data, cuts[i], what, &counts);
    }
    unsigned char *copy = malloc(size);
    assert_non_null(copy);
    bt_rng rng = bt_rng_seed(0xda3a9ed);
    const unsigned flips = (unsigned)bt_scaled(30, 12);
    for (unsigned t = 0; t < flips; t++) {
        memcpy(copy, data, size);
        /* Half of them in the first pages (meta, roots), the rest anywhere. */
        size_t at = t % 2 == 0 ? bt_rng_below(&rng, size < 4 * 4096 ? size : 4 * 4096)
                               : bt_rng_below(&rng, size);
        copy[at] ^= (unsigned char)(1u << bt_rng_below(&rng, 8));
        char what[96];
        snprintf(what, sizeof what, "bit flipped at offset %zu", at);
        try_damaged(base, copy, size, what, &counts);
    }
    print_message("damaged logs: %u trials, %u refused without salvage (%u salvaged), %u opened "
                  "as they were\n", counts.trials, counts.refused, counts.salvaged,
                  counts.intact);
    assert_true(counts.refused > 0);
    free(copy);
    free(data);
    bt_remove_tree(base);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_recovery),
        cmocka_unit_test(test_damaged_logs),
    };
    return cmocka_run_group_tests_name("space/recovery", tests, NULL, NULL);
}
