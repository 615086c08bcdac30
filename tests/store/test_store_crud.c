/*
 * test_store_crud.c — the store's entities, on one thread (store.h):
 *  - create: every bad config value (NULL config or out, payload_size 0 and too large,
 *    shard_bits, executors, flags, policy and conflict out of range, struct_size too large) is
 *    BATON_EINVAL, hands out no store, and the detail message names the offending field or value;
 *    zero fields mean defaults (256 shards, BATON_STORE_DEFER: a loser stays queued), the
 *    limits themselves are accepted, fields past a shorter struct_size are not read, and a
 *    struct_size larger than this header's or shorter than a size_t is BATON_EINVAL;
 *  - insert / remove / get / lookup / contains: a duplicate insert is BATON_EEXIST and leaves the
 *    stored payload and the count as they were; a missing id is BATON_ENOTFOUND for remove, get
 *    and lookup (which then stores NULL); a payload size other than the store's is BATON_EINVAL
 *    for insert and get; NULL arguments are BATON_EINVAL; insert copies; lookup gives a pointer
 *    that writes in place;
 *  - many random inserts and removes (with swap-remove inside the shards) against a model, an
 *    array indexed by id: count, shard sizes, payloads, and foreach, which must visit every
 *    entity exactly once, shard by shard (0 first), each shard in storage order: inserts append
 *    and a remove moves the shard's last entity into the hole, as store.h describes;
 *  - foreach: a non-zero return stops the walk and is returned;
 *  - fingerprint: equal to XXH3-64 computed here over the entities in id order (id as 8 LE bytes,
 *    then the payload), for any insertion order, shard_bits 0..10 and both routing modes;
 *    changed by any single payload byte and back when it is restored;
 *  - set_policy rejects unknown policies;
 *  - every error's message names its function and what was wrong, with the value (the id, the
 *    sizes, the policy, the rule, the failing shard).
 */
#include "support/bt_common.h"

#include "support/bt_store.h"

/* ---- create ---------------------------------------------------------------------------------- */

typedef struct bad_config {
    const char *what;  /* the field, which the message should name */
    uint64_t value;    /* or its value */
    baton_store_config config;
} bad_config;

static void test_create_errors(void **state)
{
    (void)state;
    baton_store *sentinel = (baton_store *)(uintptr_t)0x1234;
    baton_store *store = sentinel;
    baton_store_config good = bt_store_config(16, 4, 0, NULL, BATON_STORE_DYNAMIC, 0, 0);
    /* A failed create hands out no store: *out is left alone or set to NULL. */
    bt_assert_rc(baton_store_create(NULL, &store), BATON_EINVAL);
    assert_true(store == sentinel || store == NULL);
    bt_assert_rc(baton_store_create(&good, NULL), BATON_EINVAL);

    bad_config cases[12];
    size_t n = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cases[i].config = good;
    cases[n].what = "payload_size", cases[n].value = 0, cases[n++].config.payload_size = 0;
    cases[n].what = "payload_size", cases[n].value = BATON_STORE_MAX_PAYLOAD_SIZE + 1;
    cases[n++].config.payload_size = BATON_STORE_MAX_PAYLOAD_SIZE + 1;
    cases[n].what = "payload_size", cases[n].value = SIZE_MAX;
    cases[n++].config.payload_size = SIZE_MAX;
    cases[n].what = "shard_bits", cases[n].value = BATON_STORE_MAX_SHARD_BITS + 1;
    cases[n++].config.shard_bits = BATON_STORE_MAX_SHARD_BITS + 1;
    cases[n].what = "shard_bits", cases[n].value = 64, cases[n++].config.shard_bits = 64;
    cases[n].what = "executors", cases[n].value = BATON_STORE_MAX_EXECUTORS + 1;
    cases[n++].config.executors = BATON_STORE_MAX_EXECUTORS + 1;
    cases[n].what = "flags", cases[n].value = 1u << 30, cases[n++].config.flags = 1u << 30;
    cases[n].what = "policy", cases[n].value = 3;
    cases[n++].config.policy = (baton_store_policy)3;
    cases[n].what = "conflict", cases[n].value = 2;
    cases[n++].config.conflict = (baton_store_conflict_policy)2;
    cases[n].what = "struct_size", cases[n].value = sizeof(baton_store_config) + 8;
    cases[n++].config.struct_size = sizeof(baton_store_config) + 8;
    for (size_t i = 0; i < n; i++) {
        store = sentinel;
        int rc = baton_store_create(&cases[i].config, &store);
        if (rc != BATON_EINVAL)
            fail_msg("bad %s (%llu): create returned %s, expected BATON_EINVAL", cases[i].what,
                     (unsigned long long)cases[i].value, baton_err_name(rc));
        assert_true(store == sentinel || store == NULL);
        const char *message = baton_last_error_message();
        /* A one-digit value would match anything, so those must name the field. */
        bool names_value = cases[i].value >= 10 && bt_mentions_u64(message, cases[i].value);
        if (!bt_mentions(message, cases[i].what) && !names_value)
            fail_msg("bad %s (%llu): the message \"%s\" names neither", cases[i].what,
                     (unsigned long long)cases[i].value, message);
    }
}

static int store_try_struct_size(size_t struct_size, bool *created, void *ctx)
{
    (void)ctx;
    baton_store_config config = bt_store_config(8, 2, 0, NULL, BATON_STORE_DYNAMIC, 0, 0);
    config.struct_size = struct_size;
    baton_store *store = NULL;
    int rc = baton_store_create(&config, &store);
    if (store != NULL) {
        *created = true;
        baton_store_destroy(store);
    }
    return rc;
}

/* store.h's struct_size sentence: 0 and this header's size work, larger or shorter than a
 * size_t is BATON_EINVAL with no store (test_create_defaults_and_limits: an older struct). */
static void test_create_struct_size_rule(void **state)
{
    (void)state;
    bt_check_struct_size("baton_store_config", sizeof(baton_store_config),
                         store_try_struct_size, NULL);
}

static void test_create_defaults_and_limits(void **state)
{
    (void)state;
    baton_store_config config;
    memset(&config, 0, sizeof config); /* struct_size 0: this header's size */
    config.payload_size = 1;
    baton_store *store = bt_store_create_config(&config);
    assert_int_equal(baton_store_shards(store), 1u << BATON_STORE_DEFAULT_SHARD_BITS);
    assert_int_equal(baton_store_payload_size(store), 1);
    assert_int_equal(baton_store_count(store), 0);
    for (unsigned s = 0; s < baton_store_shards(store); s++)
        assert_int_equal(baton_store_shard_size(store, s), 0);
    baton_store_destroy(store);
    baton_store_destroy(NULL);

    /* The largest shard count, and the largest payload (one entity of it round-trips). */
    config = bt_store_config(BATON_STORE_MAX_PAYLOAD_SIZE, BATON_STORE_MAX_SHARD_BITS, 0, NULL,
                       BATON_STORE_STATIC, BATON_STORE_REJECT, BATON_STORE_MAX_EXECUTORS);
    store = bt_store_create_config(&config);
    assert_int_equal(baton_store_shards(store), 1u << BATON_STORE_MAX_SHARD_BITS);
    assert_int_equal(baton_store_payload_size(store), BATON_STORE_MAX_PAYLOAD_SIZE);
    unsigned char *big = malloc(BATON_STORE_MAX_PAYLOAD_SIZE);
    unsigned char *back = malloc(BATON_STORE_MAX_PAYLOAD_SIZE);
    assert_non_null(big);
    assert_non_null(back);
    for (size_t i = 0; i < BATON_STORE_MAX_PAYLOAD_SIZE; i++)
        big[i] = (unsigned char)(i * 7 + (i >> 8));
    bt_assert_rc(baton_store_insert(store, 99, big, BATON_STORE_MAX_PAYLOAD_SIZE), 0);
    bt_assert_rc(baton_store_get(store, 99, back, BATON_STORE_MAX_PAYLOAD_SIZE), 0);
    assert_memory_equal(big, back, BATON_STORE_MAX_PAYLOAD_SIZE);
    assert_int_equal(baton_store_shard_size(store, baton_store_shard_of(store, 99)), 1);
    free(big);
    free(back);
    baton_store_destroy(store);

    /* An older caller's shorter struct: the fields past struct_size are not read (garbage
     * there is ignored and the defaults apply). */
    config = bt_store_config(8, 2, 0, NULL, BATON_STORE_DYNAMIC, 0, 0);
    config.struct_size = offsetof(baton_store_config, conflict);
    config.conflict = (baton_store_conflict_policy)77;
    config.executors = BATON_STORE_MAX_EXECUTORS + 5;
    store = bt_store_create_config(&config);
    assert_int_equal(baton_store_shards(store), 4);
    baton_store_destroy(store);

    /* Every policy and the routing flag are accepted. */
    for (int p = 0; p < 3; p++) {
        config = bt_store_config(8, 1, BATON_STORE_IDS_ARE_HASHES, NULL, (baton_store_policy)p,
                           BATON_STORE_DEFER, 0);
        store = bt_store_create_config(&config);
        assert_int_equal(baton_store_shards(store), 2);
        baton_store_destroy(store);
    }
}

/* The zeroed config's conflict policy is BATON_STORE_DEFER: a loser stays queued, with its key. */
static int rule_bump(baton_rewrite_ctx *rc, void *ctx)
{
    void *p = NULL;
    (void)ctx;
    if (baton_rewrite_write(rc, 1, &p) != 0)
        return BATON_EINVAL;
    ((unsigned char *)p)[0]++;
    return 0;
}

static void record_outcome(const baton_rewrite_outcome *outcome, void *ctx)
{
    *(baton_rewrite_outcome *)ctx = *outcome;
}

static void test_default_config_defers(void **state)
{
    (void)state;
    baton_store_config config;
    memset(&config, 0, sizeof config);
    config.payload_size = 1;
    baton_store *store = bt_store_create_config(&config);
    unsigned char value = 5;
    bt_assert_rc(baton_store_insert(store, 1, &value, 1), 0);
    uint32_t rule = 9;
    bt_assert_rc(baton_store_add_rule(store, rule_bump, NULL, &rule), 0);
    assert_int_equal(rule, 0);
    const uint64_t one[] = {1};
    baton_rewrite rw = {rule, 0, 0, NULL, 0, one, 1};
    uint64_t seq0 = 9, seq1 = 9;
    bt_assert_rc(baton_store_submit(store, &rw, &seq0), 0);
    bt_assert_rc(baton_store_submit(store, &rw, &seq1), 0);
    assert_int_equal(seq0, 0);
    assert_int_equal(seq1, 1);
    baton_rewrite_outcome out;
    memset(&out, 0, sizeof out);
    baton_tick_report report;
    bt_assert_rc(baton_store_tick(store, &report, record_outcome, &out), 0);
    assert_int_equal(report.committed, 1);
    assert_int_equal(report.deferred, 1);
    assert_int_equal(report.rejected, 0);
    assert_int_equal(out.seq, 1);
    bt_assert_rc(out.status, BATON_ECONFLICT);
    assert_true(out.deferred);
    assert_int_equal(baton_store_pending(store), 1);
    bt_assert_rc(baton_store_tick(store, &report, NULL, NULL), 0);
    assert_int_equal(report.tick, 1);
    assert_int_equal(report.committed, 1);
    bt_assert_rc(baton_store_get(store, 1, &value, 1), 0);
    assert_int_equal(value, 7);
    baton_store_destroy(store);
}

/* rc must be `expected` and the calling thread's message must name the function and every word
 * and value given (the rule: a message says what was wrong, and with which value). */
static void expect_message(int rc, int expected, const char *function, const char *word,
                           bool has_value, uint64_t value)
{
    bt_assert_rc(rc, expected);
    const char *message = baton_last_error_message();
    if (!bt_mentions(message, function) || (word != NULL && !bt_mentions(message, word)) ||
        (has_value && !bt_mentions_u64(message, value)))
        fail_msg("%s: message \"%s\" does not name %s%s%s and %llu", function,
                 message != NULL ? message : "(null)", function, word ? ", " : "",
                 word ? word : "", (unsigned long long)value);
}

static int update_fails_on_shard_5(const uint64_t *ids, void *payloads, size_t count,
                                   unsigned shard, void *ctx)
{
    (void)ids, (void)payloads, (void)count, (void)ctx;
    return shard == 5 ? BATON_EIO : 0;
}

static int visit_nothing(uint64_t id, const void *payload, void *ctx)
{
    (void)id, (void)payload, (void)ctx;
    return 0;
}

static void test_error_messages(void **state)
{
    (void)state;
    enum { P = 12 };
    const uint64_t id = UINT64_C(0xABCDEF12345), missing = UINT64_C(0x5151515151);
    baton_store *store = bt_store_create(P, 3, NULL, BATON_STORE_DYNAMIC);
    unsigned char p[P + 1] = {0};
    void *ptr = NULL;
    uint32_t rule = 0;

    bt_assert_rc(baton_store_insert(store, id, p, P), 0);
    expect_message(baton_store_insert(store, id, p, P), BATON_EEXIST, "baton_store_insert",
                   "already", true, id);
    expect_message(baton_store_insert(store, 1, p, P + 1), BATON_EINVAL, "baton_store_insert",
                   "13", true, P);
    expect_message(baton_store_insert(store, 1, NULL, P), BATON_EINVAL, "baton_store_insert",
                   "payload", false, 0);
    expect_message(baton_store_remove(store, missing), BATON_ENOTFOUND, "baton_store_remove",
                   NULL, true, missing);
    expect_message(baton_store_get(store, missing, p, P), BATON_ENOTFOUND, "baton_store_get",
                   NULL, true, missing);
    expect_message(baton_store_get(store, id, p, P - 1), BATON_EINVAL, "baton_store_get", "11",
                   true, P);
    expect_message(baton_store_lookup(store, missing, &ptr), BATON_ENOTFOUND,
                   "baton_store_lookup", NULL, true, missing);
    expect_message(baton_store_set_policy(store, (baton_store_policy)7), BATON_EINVAL,
                   "baton_store_set_policy", "policy", true, 7);
    expect_message(baton_store_fingerprint(store, NULL), BATON_EINVAL,
                   "baton_store_fingerprint", "out", false, 0);
    expect_message(baton_store_foreach(store, NULL, NULL), BATON_EINVAL, "baton_store_foreach",
                   "fn", false, 0);
    expect_message(baton_store_foreach(NULL, visit_nothing, NULL), BATON_EINVAL,
                   "baton_store_foreach", "store", false, 0);
    expect_message(baton_store_compact(NULL), BATON_EINVAL, "baton_store_compact", "store",
                   false, 0);
    expect_message(baton_store_add_rule(store, NULL, NULL, &rule), BATON_EINVAL,
                   "baton_store_add_rule", "fn", false, 0);
    baton_rewrite rw = {3, 0, 0, NULL, 0, NULL, 0};
    expect_message(baton_store_submit(store, &rw, NULL), BATON_EINVAL, "baton_store_submit",
                   "rule", true, 3);
    /* Every shard gets an entity, so that shard 5's fn runs and fails. */
    for (uint64_t i = 0; baton_store_shard_size(store, 5) == 0; i++)
        if (!baton_store_contains(store, i))
            bt_assert_rc(baton_store_insert(store, i, p, P), 0);
    expect_message(baton_store_update_all(store, update_fails_on_shard_5, NULL), BATON_EIO,
                   "baton_store_update_all", "shard 5", false, 0);
    baton_store_destroy(store);
}

static void test_set_policy(void **state)
{
    (void)state;
    baton_store *store = bt_store_create(8, 2, NULL, BATON_STORE_DYNAMIC);
    bt_assert_rc(baton_store_set_policy(NULL, BATON_STORE_STATIC), BATON_EINVAL);
    bt_assert_rc(baton_store_set_policy(store, (baton_store_policy)3), BATON_EINVAL);
    bt_assert_rc(baton_store_set_policy(store, (baton_store_policy)-1), BATON_EINVAL);
    bt_assert_rc(baton_store_set_policy(store, BATON_STORE_STATIC), 0);
    bt_assert_rc(baton_store_set_policy(store, BATON_STORE_DEDICATED), 0);
    bt_assert_rc(baton_store_set_policy(store, BATON_STORE_DYNAMIC), 0);
    baton_store_destroy(store);
}

/* ---- single entities ------------------------------------------------------------------------- */

static void test_entity_errors(void **state)
{
    (void)state;
    enum { P = 12 };
    baton_store *store = bt_store_create(P, 3, NULL, BATON_STORE_DYNAMIC);
    unsigned char a[P], b[P], out[P + 1];
    memset(a, 0xA1, P);
    memset(b, 0xB2, P);

    bt_assert_rc(baton_store_insert(store, 7, a, P), 0);
    memset(a, 0x00, P); /* insert copied */
    bt_assert_rc(baton_store_get(store, 7, out, P), 0);
    memset(a, 0xA1, P);
    assert_memory_equal(out, a, P);

    /* Duplicate: EEXIST, nothing changes. */
    bt_assert_rc(baton_store_insert(store, 7, b, P), BATON_EEXIST);
    assert_int_equal(baton_store_count(store), 1);
    bt_assert_rc(baton_store_get(store, 7, out, P), 0);
    assert_memory_equal(out, a, P);

    /* Size mismatch, NULLs: EINVAL, nothing changes. */
    bt_assert_rc(baton_store_insert(store, 8, b, P - 1), BATON_EINVAL);
    bt_assert_rc(baton_store_insert(store, 8, b, P + 1), BATON_EINVAL);
    bt_assert_rc(baton_store_insert(store, 8, b, 0), BATON_EINVAL);
    bt_assert_rc(baton_store_insert(store, 8, NULL, P), BATON_EINVAL);
    bt_assert_rc(baton_store_insert(NULL, 8, b, P), BATON_EINVAL);
    assert_false(baton_store_contains(store, 8));
    assert_int_equal(baton_store_count(store), 1);
    bt_assert_rc(baton_store_get(store, 7, out, P - 1), BATON_EINVAL);
    bt_assert_rc(baton_store_get(store, 7, out, P + 1), BATON_EINVAL);
    bt_assert_rc(baton_store_get(store, 7, NULL, P), BATON_EINVAL);
    bt_assert_rc(baton_store_get(NULL, 7, out, P), BATON_EINVAL);
    void *ptr = NULL;
    bt_assert_rc(baton_store_lookup(store, 7, NULL), BATON_EINVAL);
    bt_assert_rc(baton_store_lookup(NULL, 7, &ptr), BATON_EINVAL);
    bt_assert_rc(baton_store_remove(NULL, 7), BATON_EINVAL);

    /* Missing ids: ENOTFOUND everywhere. */
    bt_assert_rc(baton_store_remove(store, 8), BATON_ENOTFOUND);
    bt_assert_rc(baton_store_get(store, 8, out, P), BATON_ENOTFOUND);
    ptr = (void *)out;
    bt_assert_rc(baton_store_lookup(store, 8, &ptr), BATON_ENOTFOUND);
    assert_null(ptr);
    assert_false(baton_store_contains(store, 8));
    assert_int_equal(baton_store_count(store), 1);

    /* lookup writes in place. */
    bt_assert_rc(baton_store_lookup(store, 7, &ptr), 0);
    assert_non_null(ptr);
    assert_memory_equal(ptr, a, P);
    memcpy(ptr, b, P);
    bt_assert_rc(baton_store_get(store, 7, out, P), 0);
    assert_memory_equal(out, b, P);

    /* Remove, then the id is gone and can come back. */
    bt_assert_rc(baton_store_remove(store, 7), 0);
    bt_assert_rc(baton_store_remove(store, 7), BATON_ENOTFOUND);
    assert_false(baton_store_contains(store, 7));
    assert_int_equal(baton_store_count(store), 0);
    assert_int_equal(baton_store_shard_size(store, baton_store_shard_of(store, 7)), 0);
    bt_assert_rc(baton_store_insert(store, 7, a, P), 0);
    bt_assert_rc(baton_store_get(store, 7, out, P), 0);
    assert_memory_equal(out, a, P);

    /* The extreme ids are ordinary ids. */
    bt_assert_rc(baton_store_insert(store, 0, a, P), 0);
    bt_assert_rc(baton_store_insert(store, UINT64_MAX, b, P), 0);
    bt_assert_rc(baton_store_insert(store, 0, b, P), BATON_EEXIST);
    assert_true(baton_store_contains(store, 0));
    assert_true(baton_store_contains(store, UINT64_MAX));
    bt_assert_rc(baton_store_get(store, UINT64_MAX, out, P), 0);
    assert_memory_equal(out, b, P);
    assert_int_equal(baton_store_count(store), 3);
    assert_false(baton_store_contains(NULL, 0));
    baton_store_destroy(store);
}

/* ---- many entities against a model ----------------------------------------------------------- */

enum { MP = 13 }; /* payload size: odd on purpose, so no entity but the first is aligned */

typedef struct model {
    size_t n_ids;
    uint64_t *ids;           /* the id space: ids[i] */
    bool *present;
    unsigned char *payloads; /* payloads[i * MP] */
    unsigned shards;
    size_t **order;          /* per shard: model indices in storage order */
    size_t *size;
} model;

static void model_init(model *m, size_t n_ids, unsigned shards, bt_rng *rng)
{
    m->n_ids = n_ids;
    m->ids = calloc(n_ids, sizeof *m->ids);
    m->present = calloc(n_ids, sizeof *m->present);
    m->payloads = calloc(n_ids, MP);
    m->shards = shards;
    m->order = calloc(shards, sizeof *m->order);
    m->size = calloc(shards, sizeof *m->size);
    assert_true(m->ids && m->present && m->payloads && m->order && m->size);
    for (unsigned s = 0; s < shards; s++) {
        m->order[s] = calloc(n_ids, sizeof **m->order);
        assert_non_null(m->order[s]);
    }
    /* Distinct ids: random ones, with 0 and UINT64_MAX among them. */
    for (size_t i = 0; i < n_ids; i++) {
        uint64_t id;
        bool again;
        do {
            id = i == 0 ? 0 : i == 1 ? UINT64_MAX : bt_rng_next(rng);
            again = false;
            for (size_t j = 0; j < i && !again; j++)
                again = m->ids[j] == id;
        } while (again);
        m->ids[i] = id;
    }
}

static void model_free(model *m)
{
    for (unsigned s = 0; s < m->shards; s++)
        free(m->order[s]);
    free(m->order);
    free(m->size);
    free(m->ids);
    free(m->present);
    free(m->payloads);
}

typedef struct visit_state {
    const model *m;
    const baton_store *store;
    bool *seen;
    unsigned shard;    /* shard being walked */
    size_t pos;        /* position in it */
    size_t visits;
    char error[256];
} visit_state;

static size_t model_index_of(const model *m, uint64_t id)
{
    for (size_t i = 0; i < m->n_ids; i++)
        if (m->ids[i] == id)
            return i;
    return SIZE_MAX;
}

/* Runs on the calling thread, but inside the library: records, never asserts. */
static int visit_check(uint64_t id, const void *payload, void *ctx)
{
    visit_state *v = ctx;
    v->visits++;
    if (v->error[0] != '\0')
        return 0;
    unsigned shard = baton_store_shard_of(v->store, id);
    if (shard < v->shard) {
        snprintf(v->error, sizeof v->error, "id %#llx of shard %u visited after shard %u",
                 (unsigned long long)id, shard, v->shard);
        return 0;
    }
    if (shard > v->shard) {
        if (v->pos != v->m->size[v->shard]) {
            snprintf(v->error, sizeof v->error, "shard %u left after %zu of %zu entities",
                     v->shard, v->pos, v->m->size[v->shard]);
            return 0;
        }
        for (unsigned s = v->shard + 1; s < shard; s++)
            if (v->m->size[s] != 0) {
                snprintf(v->error, sizeof v->error, "shard %u (%zu entities) skipped", s,
                         v->m->size[s]);
                return 0;
            }
        v->shard = shard;
        v->pos = 0;
    }
    size_t expect = v->pos < v->m->size[shard] ? v->m->order[shard][v->pos] : SIZE_MAX;
    if (expect == SIZE_MAX || v->m->ids[expect] != id) {
        size_t index = model_index_of(v->m, id);
        snprintf(v->error, sizeof v->error,
                 "shard %u position %zu: id %#llx (model index %zu, present %d), expected "
                 "model index %zu",
                 shard, v->pos, (unsigned long long)id, index,
                 index == SIZE_MAX ? -1 : (int)v->m->present[index], expect);
        return 0;
    }
    if (v->seen[expect])
        snprintf(v->error, sizeof v->error, "id %#llx visited twice", (unsigned long long)id);
    v->seen[expect] = true;
    if (memcmp(payload, v->m->payloads + expect * MP, MP) != 0)
        snprintf(v->error, sizeof v->error, "id %#llx: payload differs from the model",
                 (unsigned long long)id);
    v->pos++;
    return 0;
}

static void model_check(const model *m, baton_store *store)
{
    size_t count = 0;
    for (size_t i = 0; i < m->n_ids; i++)
        count += m->present[i];
    assert_int_equal(baton_store_count(store), count);
    for (unsigned s = 0; s < m->shards; s++)
        if (baton_store_shard_size(store, s) != m->size[s])
            fail_msg("shard %u holds %zu, model %zu", s, baton_store_shard_size(store, s),
                     m->size[s]);
    unsigned char out[MP];
    for (size_t i = 0; i < m->n_ids; i++) {
        assert_int_equal(baton_store_contains(store, m->ids[i]), m->present[i]);
        if (m->present[i]) {
            bt_assert_rc(baton_store_get(store, m->ids[i], out, MP), 0);
            assert_memory_equal(out, m->payloads + i * MP, MP);
        }
    }
    visit_state v = {.m = m, .store = store, .seen = calloc(m->n_ids, sizeof(bool))};
    assert_non_null(v.seen);
    bt_assert_rc(baton_store_foreach(store, visit_check, &v), 0);
    if (v.error[0] != '\0')
        fail_msg("foreach: %s", v.error);
    assert_int_equal(v.visits, count);
    for (size_t i = 0; i < m->n_ids; i++)
        assert_int_equal(v.seen[i], m->present[i]);
    free(v.seen);
    assert_true(bt_store_fingerprint(store) ==
                bt_model_fingerprint(m->ids, m->payloads, m->present, m->n_ids, MP));
}

static void run_model(unsigned shard_bits, size_t n_ids, size_t n_ops, uint64_t seed)
{
    bt_rng rng = bt_rng_seed(seed);
    baton_store *store = bt_store_create(MP, shard_bits, NULL, BATON_STORE_DYNAMIC);
    unsigned shards = baton_store_shards(store);
    model m;
    model_init(&m, n_ids, shards, &rng);
    size_t *pos = calloc(n_ids, sizeof *pos); /* position of id i in its shard */
    assert_non_null(pos);
    unsigned char buf[MP];
    size_t check_every = n_ops / 8 + 1;
    for (size_t op = 0; op < n_ops; op++) {
        size_t i = (size_t)bt_rng_below(&rng, n_ids);
        uint64_t id = m.ids[i];
        unsigned shard = baton_store_route(id, shard_bits ? shard_bits : 8, 0);
        unsigned kind = (unsigned)bt_rng_below(&rng, 10);
        if (kind < 5) { /* insert: phases of growth and shrinkage come from op's position */
            for (int k = 0; k < MP; k++)
                buf[k] = (unsigned char)bt_rng_next(&rng);
            bt_assert_rc(baton_store_insert(store, id, buf, MP),
                         m.present[i] ? BATON_EEXIST : 0);
            if (!m.present[i]) {
                m.present[i] = true;
                memcpy(m.payloads + i * MP, buf, MP);
                pos[i] = m.size[shard];
                m.order[shard][m.size[shard]++] = i;
            }
        } else if (kind < 5 + ((op / (n_ops / 4 + 1)) % 2 ? 4 : 2)) { /* remove (swap) */
            bt_assert_rc(baton_store_remove(store, id), m.present[i] ? 0 : BATON_ENOTFOUND);
            if (m.present[i]) {
                m.present[i] = false;
                size_t last = m.order[shard][--m.size[shard]];
                m.order[shard][pos[i]] = last;
                pos[last] = pos[i];
            }
        } else { /* read, or change in place */
            void *ptr = NULL;
            bt_assert_rc(baton_store_lookup(store, id, &ptr), m.present[i] ? 0 : BATON_ENOTFOUND);
            bt_assert_rc(baton_store_get(store, id, buf, MP), m.present[i] ? 0 : BATON_ENOTFOUND);
            if (m.present[i]) {
                assert_memory_equal(buf, m.payloads + i * MP, MP);
                unsigned char *p = ptr;
                p[op % MP] ^= (unsigned char)(1u + op % 255);
                memcpy(m.payloads + i * MP, p, MP);
            } else {
                assert_null(ptr);
            }
        }
        if (op % check_every == 0)
            model_check(&m, store);
    }
    model_check(&m, store);
    /* Empty it (in random order), then the walk sees nothing. */
    for (size_t i = 0; i < n_ids; i++)
        if (m.present[i]) {
            bt_assert_rc(baton_store_remove(store, m.ids[i]), 0);
            unsigned shard = baton_store_route(m.ids[i], shard_bits ? shard_bits : 8, 0);
            m.present[i] = false;
            size_t last = m.order[shard][--m.size[shard]];
            m.order[shard][pos[i]] = last;
            pos[last] = pos[i];
        }
    model_check(&m, store);
    free(pos);
    model_free(&m);
    baton_store_destroy(store);
}

static void test_model_random_ops(void **state)
{
    (void)state;
    size_t n_ops = bt_scaled(200000, 5000);
    run_model(4, 3000, n_ops, 0xC0FFEE01);
    run_model(1, 1000, n_ops / 4, 0xC0FFEE02);
    run_model(0, 3000, n_ops / 4, 0xC0FFEE03);
    run_model(10, 2000, n_ops / 4, 0xC0FFEE04);
}

/* ---- foreach --------------------------------------------------------------------------------- */

typedef struct stop_state {
    size_t visits, stop_at;
} stop_state;

static int visit_stop(uint64_t id, const void *payload, void *ctx)
{
    (void)id;
    (void)payload;
    stop_state *s = ctx;
    return ++s->visits == s->stop_at ? 7 : 0;
}

static void test_foreach_stop(void **state)
{
    (void)state;
    baton_store *store = bt_store_create(4, 3, NULL, BATON_STORE_DYNAMIC);
    stop_state s = {0, 1};
    bt_assert_rc(baton_store_foreach(store, visit_stop, &s), 0); /* empty: no calls */
    assert_int_equal(s.visits, 0);
    unsigned char payload[4] = {1, 2, 3, 4};
    for (uint64_t id = 0; id < 100; id++)
        bt_assert_rc(baton_store_insert(store, id * 977, payload, 4), 0);
    for (size_t stop_at = 1; stop_at <= 100; stop_at += 33) {
        s = (stop_state){0, stop_at};
        bt_assert_rc(baton_store_foreach(store, visit_stop, &s), 7);
        assert_int_equal(s.visits, stop_at);
    }
    s = (stop_state){0, 1000};
    bt_assert_rc(baton_store_foreach(store, visit_stop, &s), 0);
    assert_int_equal(s.visits, 100);
    bt_assert_rc(baton_store_foreach(store, NULL, &s), BATON_EINVAL);
    bt_assert_rc(baton_store_foreach(NULL, visit_stop, &s), BATON_EINVAL);
    baton_store_destroy(store);
}

/* ---- fingerprint ----------------------------------------------------------------------------- */

enum { FP = 20 };

static void test_fingerprint(void **state)
{
    (void)state;
    size_t n = bt_scaled(3000, 300);
    bt_rng rng = bt_rng_seed(0xF1F1F1F1);
    uint64_t *ids = malloc(n * sizeof *ids);
    unsigned char *payloads = malloc(n * FP);
    size_t *order = malloc(n * sizeof *order);
    assert_true(ids && payloads && order);
    for (size_t i = 0; i < n; i++) {
        /* Distinct: an odd multiplier is a bijection; a few small ids too. */
        ids[i] = i < 10 ? i : (uint64_t)i * UINT64_C(0x9E3779B97F4A7C15) + 12345;
        for (int k = 0; k < FP; k++)
            payloads[i * FP + k] = (unsigned char)bt_rng_next(&rng);
    }
    uint64_t expected = bt_model_fingerprint(ids, payloads, NULL, n, FP);

    /* The empty store: XXH3 of nothing. */
    baton_store *empty = bt_store_create(FP, 2, NULL, BATON_STORE_DYNAMIC);
    assert_true(bt_store_fingerprint(empty) == XXH3_64bits("", 0));
    bt_assert_rc(baton_store_fingerprint(empty, NULL), BATON_EINVAL);
    uint64_t fp;
    bt_assert_rc(baton_store_fingerprint(NULL, &fp), BATON_EINVAL);
    baton_store_destroy(empty);

    for (unsigned bits = 0; bits <= 10; bits++)
        for (int variant = 0; variant < 3; variant++) {
            /* Insertion order: ascending index, descending, shuffled; the routing mode too. */
            for (size_t i = 0; i < n; i++)
                order[i] = variant == 1 ? n - 1 - i : i;
            if (variant == 2)
                for (size_t i = n - 1; i > 0; i--) {
                    size_t j = (size_t)bt_rng_below(&rng, i + 1), t = order[i];
                    order[i] = order[j];
                    order[j] = t;
                }
            unsigned flags = (variant + bits) % 2 ? BATON_STORE_IDS_ARE_HASHES : 0;
            baton_store_config config =
                bt_store_config(FP, bits, flags, NULL, BATON_STORE_DYNAMIC, 0, 0);
            baton_store *store = bt_store_create_config(&config);
            for (size_t i = 0; i < n; i++)
                bt_assert_rc(baton_store_insert(store, ids[order[i]],
                                                payloads + order[i] * FP, FP),
                             0);
            uint64_t got = bt_store_fingerprint(store);
            if (got != expected)
                fail_msg("shard_bits %u, order %d, flags %#x: fingerprint %#llx, expected "
                         "%#llx",
                         bits, variant, flags, (unsigned long long)got,
                         (unsigned long long)expected);
            if (bits == 3 || bits == 10) {
                /* Any single byte, of any entity, changes it; restoring it restores it. */
                for (int t = 0; t < 12; t++) {
                    size_t i = t == 0 ? 0 : t == 1 ? n - 1 : (size_t)bt_rng_below(&rng, n);
                    size_t k = t < 3 ? 0 : t < 6 ? FP - 1 : (size_t)bt_rng_below(&rng, FP);
                    unsigned char flip = (unsigned char)(1u << (t % 8));
                    void *ptr = NULL;
                    bt_assert_rc(baton_store_lookup(store, ids[i], &ptr), 0);
                    ((unsigned char *)ptr)[k] ^= flip;
                    payloads[i * FP + k] ^= flip;
                    uint64_t changed = bt_store_fingerprint(store);
                    assert_true(changed != expected);
                    assert_true(changed == bt_model_fingerprint(ids, payloads, NULL, n, FP));
                    ((unsigned char *)ptr)[k] ^= flip;
                    payloads[i * FP + k] ^= flip;
                    assert_true(bt_store_fingerprint(store) == expected);
                }
                /* A removed and re-inserted entity: the same set, the same fingerprint. */
                size_t i = (size_t)bt_rng_below(&rng, n);
                bt_assert_rc(baton_store_remove(store, ids[i]), 0);
                assert_true(bt_store_fingerprint(store) != expected);
                bt_assert_rc(baton_store_insert(store, ids[i], payloads + i * FP, FP), 0);
                assert_true(bt_store_fingerprint(store) == expected);
            }
            baton_store_destroy(store);
        }
    free(ids);
    free(payloads);
    free(order);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_create_defaults_and_limits),
        cmocka_unit_test(test_create_struct_size_rule),
        cmocka_unit_test(test_default_config_defers),
        cmocka_unit_test(test_set_policy),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_entity_errors),
        cmocka_unit_test(test_model_random_ops),
        cmocka_unit_test(test_foreach_stop),
        cmocka_unit_test(test_fingerprint),
    };
    return cmocka_run_group_tests_name("store/crud", tests, NULL, NULL);
}
