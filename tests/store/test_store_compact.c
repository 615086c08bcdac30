/*
 * test_store_compact.c — baton_store_compact against store.h, measured through the public API
 * only (the payload pointers a bulk update and baton_store_lookup hand out), on one thread:
 *  - the layout: every shard's payloads in one block, shard after shard in shard order, each
 *    shard's first payload aligned to 64 bytes and at most 63 bytes after the end of the
 *    previous non-empty shard's payloads; for payload sizes 1, 8, 24, 48, 64 and 100, 2 to 256
 *    shards, one entity in some shards, several in others, empty shards between;
 *  - the state is unchanged (every payload, the count, each shard's size, the fingerprint), and
 *    a second compaction, and one of an empty store, change nothing either;
 *  - "packing leaves no room to grow: an insert that makes a shard larger than it was when
 *    packed moves that shard to memory of its own (the other shards stay packed)": after such
 *    an insert into shard s (also after a remove and an insert that refilled it), s's payloads
 *    are no longer where they were, while every other shard's are; after removes, compaction
 *    packs the smaller shards again;
 *  - errors: a NULL store and a call from a tick's outcome callback are BATON_EINVAL and change
 *    nothing.
 */
#include "support/bt_common.h"

#include "support/bt_store.h"

enum { MAX_SHARDS = 256 };

/* What a bulk update saw of each shard. */
typedef struct layout {
    const unsigned char *first[MAX_SHARDS];
    size_t count[MAX_SHARDS];
    uint64_t last_id[MAX_SHARDS];
} layout;

static int record_layout(const uint64_t *ids, void *payloads, size_t count, unsigned shard,
                         void *ctx)
{
    layout *l = ctx;
    l->first[shard] = payloads;
    l->count[shard] = count;
    l->last_id[shard] = ids[count - 1];
    return 0;
}

static void read_layout(baton_store *store, layout *l)
{
    memset(l, 0, sizeof *l);
    bt_assert_rc(baton_store_update_all(store, record_layout, l), 0);
}

/* Payload of entity `id`: bytes derived from the id, so that any mix-up shows. */
static void fill(unsigned char *p, size_t size, uint64_t id)
{
    for (size_t i = 0; i < size; i++)
        p[i] = (unsigned char)(baton_mix64(id + i) >> 7);
}

/* Checks the packed layout of the store store.h promises. */
static void check_packed(baton_store *store, size_t size)
{
    layout l;
    unsigned shards = baton_store_shards(store);
    const unsigned char *end = NULL; /* just past the previous non-empty shard's payloads */
    unsigned prev = 0;
    read_layout(store, &l);
    for (unsigned s = 0; s < shards; s++) {
        assert_int_equal(l.count[s], baton_store_shard_size(store, s));
        if (l.count[s] == 0)
            continue;
        if (((uintptr_t)l.first[s] & 63) != 0)
            fail_msg("payload size %zu, %u shards: shard %u's first payload at %p is not "
                     "aligned to 64 bytes",
                     size, shards, s, (const void *)l.first[s]);
        /* The last payload of the shard is where lookup says it is. */
        void *last = NULL;
        bt_assert_rc(baton_store_lookup(store, l.last_id[s], &last), 0);
        assert_ptr_equal(last, l.first[s] + (l.count[s] - 1) * size);
        if (end != NULL) {
            if (l.first[s] < end || l.first[s] - end > 63)
                fail_msg("payload size %zu, %u shards: shard %u's payloads start %td bytes "
                         "after the end of shard %u's (%zu entities); store.h: at most 63",
                         size, shards, s, l.first[s] - end, prev, l.count[prev]);
        }
        end = l.first[s] + l.count[s] * size;
        prev = s;
    }
}

typedef struct model {
    uint64_t ids[4096];
    size_t n;
} model;

/* The store holds exactly the model's entities, and its fingerprint is the model's. */
static void check_state(baton_store *store, const model *m, size_t size)
{
    static unsigned char payloads[4096 * 128];
    unsigned char got[128];
    assert_int_equal(baton_store_count(store), m->n);
    for (size_t i = 0; i < m->n; i++) {
        fill(payloads + i * size, size, m->ids[i]);
        bt_assert_rc(baton_store_get(store, m->ids[i], got, size), 0);
        assert_memory_equal(got, payloads + i * size, size);
    }
    assert_int_equal(bt_store_fingerprint(store),
                     bt_model_fingerprint(m->ids, payloads, NULL, m->n, size));
}

static void insert_model(baton_store *store, model *m, uint64_t id, size_t size)
{
    unsigned char p[128];
    fill(p, size, id);
    bt_assert_rc(baton_store_insert(store, id, p, size), 0);
    m->ids[m->n++] = id;
}

/* `per_shard(s)` entities in shard s: ids found by routing. */
static void populate(baton_store *store, model *m, size_t size, size_t (*per_shard)(unsigned))
{
    unsigned shards = baton_store_shards(store);
    size_t want[MAX_SHARDS], have[MAX_SHARDS] = {0}, total = 0, placed = 0;
    for (unsigned s = 0; s < shards; s++)
        total += want[s] = per_shard(s);
    assert_true(total <= sizeof m->ids / sizeof m->ids[0]);
    for (uint64_t id = 1; placed < total; id++) {
        unsigned s = baton_store_shard_of(store, id);
        if (have[s] < want[s]) {
            insert_model(store, m, id, size);
            have[s]++;
            placed++;
        }
    }
}

static size_t one_each(unsigned s)
{
    (void)s;
    return 1;
}

static size_t uneven(unsigned s)
{
    return s % 3 == 1 ? 0 : s % 5 + 1;
}

static size_t sparse(unsigned s)
{
    return s % 7 == 0 ? 1 : 0;
}

static void test_layout(void **state)
{
    (void)state;
    const size_t sizes[] = {1, 8, 24, 48, 64, 100};
    const unsigned bits[] = {1, 2, 4, 8};
    size_t (*const fills[])(unsigned) = {one_each, uneven, sparse};
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
        for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++)
            for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
                size_t size = sizes[z];
                baton_store *store = bt_store_create(size, bits[b], NULL, BATON_STORE_DYNAMIC);
                static model m;
                m.n = 0;
                populate(store, &m, size, fills[f]);
                bt_assert_rc(baton_store_compact(store), 0);
                check_packed(store, size);
                check_state(store, &m, size);
                bt_assert_rc(baton_store_compact(store), 0); /* again */
                check_packed(store, size);
                check_state(store, &m, size);
                baton_store_destroy(store);
            }
}

/* One entity in each of 2 shards, at every payload size P from 1 to 128: a layout that rounded
 * each shard's entity count (rather than its bytes) up to a multiple of 64 / gcd(P, 64) would
 * leave (64 / gcd(P, 64) - 1) * P bytes between two such shards (168 for 24-byte payloads), where
 * store.h allows at most 63. */
static void test_one_per_shard(void **state)
{
    (void)state;
    for (size_t size = 1; size <= 128; size++) {
        baton_store *store = bt_store_create(size, 1, NULL, BATON_STORE_STATIC);
        static model m;
        m.n = 0;
        populate(store, &m, size, one_each);
        bt_assert_rc(baton_store_compact(store), 0);
        check_packed(store, size);
        check_state(store, &m, size);
        baton_store_destroy(store);
    }
}

static void test_grow_after_compact(void **state)
{
    (void)state;
    const size_t sizes[] = {1, 24, 64, 100};
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        size_t size = sizes[z];
        baton_store *store = bt_store_create(size, 4, NULL, BATON_STORE_DYNAMIC);
        static model m;
        m.n = 0;
        populate(store, &m, size, uneven);
        bt_assert_rc(baton_store_compact(store), 0);
        layout before, after;
        read_layout(store, &before);
        /* Insert into shard 0 (which has entities): it moves, the others stay packed. */
        uint64_t id = 100000;
        while (baton_store_shard_of(store, id) != 0)
            id++;
        insert_model(store, &m, id, size);
        read_layout(store, &after);
        assert_true(after.first[0] != before.first[0]);
        assert_int_equal(after.count[0], before.count[0] + 1);
        for (unsigned s = 1; s < 16; s++)
            assert_ptr_equal(after.first[s], before.first[s]);
        /* Shard 2, after a remove: the insert that only refills it may stay, the one that
         * makes it larger than when packed moves it. */
        assert_true(before.count[2] >= 2);
        bt_assert_rc(baton_store_remove(store, before.last_id[2]), 0);
        for (size_t i = 0; i < m.n; i++)
            if (m.ids[i] == before.last_id[2])
                m.ids[i] = m.ids[--m.n];
        for (int k = 0; k < 2; k++) {
            id++;
            while (baton_store_shard_of(store, id) != 2)
                id++;
            insert_model(store, &m, id, size);
        }
        read_layout(store, &after);
        assert_int_equal(after.count[2], before.count[2] + 1);
        assert_true(after.first[2] != before.first[2]);
        for (unsigned s = 3; s < 16; s++)
            assert_ptr_equal(after.first[s], before.first[s]);
        check_state(store, &m, size);
        /* An empty shard (1) grows into memory of its own too. */
        id = 100000;
        while (baton_store_shard_of(store, id) != 1)
            id++;
        insert_model(store, &m, id, size);
        /* Remove some, compact: packed again, state intact. */
        for (size_t i = 0; i < m.n; i += 3) {
            bt_assert_rc(baton_store_remove(store, m.ids[i]), 0);
            m.ids[i] = m.ids[--m.n];
        }
        bt_assert_rc(baton_store_compact(store), 0);
        check_packed(store, size);
        check_state(store, &m, size);
        /* Everything removed: compaction of an empty store. */
        while (m.n != 0)
            bt_assert_rc(baton_store_remove(store, m.ids[--m.n]), 0);
        bt_assert_rc(baton_store_compact(store), 0);
        check_state(store, &m, size);
        insert_model(store, &m, 7, size);
        check_state(store, &m, size);
        baton_store_destroy(store);
    }
}

/* ---- errors ---------------------------------------------------------------------------------- */

typedef struct reentry {
    baton_store *store;
    int rc;
    int calls;
} reentry;

static int rule_noop(baton_rewrite_ctx *rc, void *ctx)
{
    (void)rc;
    (void)ctx;
    return BATON_EINVAL; /* fails, so that the outcome callback is called */
}

static void outcome_compacts(const baton_rewrite_outcome *outcome, void *ctx)
{
    reentry *r = ctx;
    (void)outcome;
    r->rc = baton_store_compact(r->store);
    r->calls++;
}

static void test_errors(void **state)
{
    (void)state;
    bt_assert_rc(baton_store_compact(NULL), BATON_EINVAL);
    assert_true(bt_mentions(baton_last_error_message(), "store is NULL"));

    baton_store *store = bt_store_create(24, 2, NULL, BATON_STORE_DYNAMIC);
    static model m;
    m.n = 0;
    populate(store, &m, 24, one_each);
    layout before, after;
    read_layout(store, &before);
    uint32_t rule = 0;
    bt_assert_rc(baton_store_add_rule(store, rule_noop, NULL, &rule), 0);
    baton_rewrite rw = {rule, 1, 0, NULL, 0, &m.ids[0], 1};
    bt_assert_rc(baton_store_submit(store, &rw, NULL), 0);
    reentry r = {store, 0, 0};
    bt_assert_rc(baton_store_tick(store, NULL, outcome_compacts, &r), 0);
    assert_int_equal(r.calls, 1);
    bt_assert_rc(r.rc, BATON_EINVAL);
    read_layout(store, &after);
    assert_memory_equal(&before, &after, sizeof before); /* nothing moved */
    check_state(store, &m, 24);
    bt_assert_rc(baton_store_compact(store), 0);
    check_packed(store, 24);
    baton_store_destroy(store);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_one_per_shard),
        cmocka_unit_test(test_grow_after_compact),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("store/compact", tests, NULL, NULL);
}
