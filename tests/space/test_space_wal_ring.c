/*
 * test_space_wal_ring.c — the log's lanes and its groups (src/space/wal.c, wal_writer.c,
 * wal_format.h): many appenders against a writer that cannot keep up (the lanes fill and
 * appenders wait for room; records longer than WAL_LANE_INLINE_MAX travel on the heap; each
 * thread's records stay in its order), a truncation bound that falls inside a group, and damage
 * inside a group (everything before the damaged record is still handed out).
 */
#define _GNU_SOURCE
#include "support/bt_common.h"
#include "support/bt_files.h"

#include <pthread.h>

#include "baton/core.h"
#include "space/wal.h"

#define RING_THREADS 4u
#define RING_LARGE ((size_t)600 << 10) /* above WAL_LANE_INLINE_MAX */

/* The size of record i of thread t: mostly small, and now and then longer than a lane keeps
 * inline (so it travels on the heap). */
static size_t ring_size(uint32_t t, uint32_t i)
{
    if (i % 4000u == 17u)
        return RING_LARGE;
    return 9 + (size_t)((i * 37u + t * 11u) % 240u);
}

/* Record i of thread t: "T", t, i, then filler. */
static size_t ring_record(uint32_t t, uint32_t i, unsigned char *out)
{
    size_t size = ring_size(t, i);
    out[0] = 'T';
    memcpy(out + 1, &t, 4);
    memcpy(out + 5, &i, 4);
    for (size_t k = 9; k < size; k++)
        out[k] = (unsigned char)(t * 7u + i + k);
    return size;
}

typedef struct ring_appender {
    baton__wal *wal;
    uint32_t thread, n;
    uint64_t last_ticket;
} ring_appender;

static void *ring_appender_main(void *arg)
{
    ring_appender *a = arg;
    unsigned char *rec = malloc(RING_LARGE);
    BT_CHECK(rec != NULL);
    for (uint32_t i = 0; rec != NULL && i < a->n; i++) {
        uint64_t ticket = 0;
        size_t size = ring_record(a->thread, i, rec);
        BT_CHECK(baton__wal_append(a->wal, rec, size, &ticket) == 0);
        BT_CHECK_MSG(ticket >= a->last_ticket, "thread %u got ticket %llu after %llu", a->thread,
                     (unsigned long long)ticket, (unsigned long long)a->last_ticket);
        a->last_ticket = ticket;
    }
    free(rec);
    return NULL;
}

typedef struct ring_seen {
    uint32_t n;
    uint32_t next[RING_THREADS]; /* the next i expected from each thread */
    uint64_t last_seq, count, bad;
    unsigned char *want; /* RING_LARGE bytes */
} ring_seen;

static int ring_check(void *ctx, uint64_t seq, const void *data, size_t size)
{
    ring_seen *s = ctx;
    uint32_t t;
    if (size < 9 || seq != s->last_seq + 1) {
        s->bad++;
        return 0;
    }
    memcpy(&t, (const unsigned char *)data + 1, 4);
    if (t >= RING_THREADS || s->next[t] >= s->n) {
        s->bad++;
        return 0;
    }
    /* Each thread's records arrive in its own order, whole. */
    size_t n = ring_record(t, s->next[t], s->want);
    if (n != size || memcmp(s->want, data, n) != 0)
        s->bad++;
    s->next[t]++;
    s->last_seq = seq;
    s->count++;
    return 0;
}

static void test_ring_backpressure(void **state)
{
    (void)state;
    char dir[64];
    bt_make_tmpdir(dir, sizeof dir, "baton-wal-ring");
    /* One transaction per record: the writer falls behind four appenders, their lanes fill
     * and they wait for room. */
    baton__wal *wal = NULL;
    int rc = baton__wal_open_group(dir, BATON__WAL_ASYNC, 1, &wal);
    if (rc != 0)
        fail_msg("open: %s", baton_last_error_message());
    uint32_t n = (uint32_t)bt_scaled(40000, 2000);
    pthread_t threads[RING_THREADS];
    ring_appender a[RING_THREADS];
    for (uint32_t t = 0; t < RING_THREADS; t++) {
        a[t] = (ring_appender){.wal = wal, .thread = t, .n = n};
        assert_int_equal(pthread_create(&threads[t], NULL, ring_appender_main, &a[t]), 0);
    }
    for (uint32_t t = 0; t < RING_THREADS; t++)
        pthread_join(threads[t], NULL);
    bt_assert_no_thread_failures();
    print_message("%llu of %llu appends waited for room in their lane\n",
                  (unsigned long long)baton__wal_room_waits(wal),
                  (unsigned long long)RING_THREADS * n);
    assert_int_equal(baton__wal_close(wal), 0);
    ring_seen s = {.n = n, .want = malloc(RING_LARGE)};
    assert_non_null(s.want);
    rc = baton__wal_replay(dir, ring_check, &s, NULL);
    free(s.want);
    if (rc != 0)
        fail_msg("replay: %s", baton_last_error_message());
    assert_int_equal(s.bad, 0);
    assert_int_equal(s.count, (uint64_t)RING_THREADS * n);
    for (uint32_t t = 0; t < RING_THREADS; t++)
        assert_int_equal(s.next[t], n);
    bt_remove_tree(dir);
}

/* Record seq of the single-appender tests: "SEQ", seq, filler. */
static size_t seq_record(uint64_t seq, unsigned char *out)
{
    size_t size = 11 + (size_t)(seq % 13);
    memcpy(out, "SEQ", 3);
    memcpy(out + 3, &seq, 8);
    memset(out + 11, (int)(seq & 0xff), size - 11);
    return size;
}

typedef struct seq_seen {
    uint64_t first, last, count, bad;
} seq_seen;

static int seq_check(void *ctx, uint64_t seq, const void *data, size_t size)
{
    seq_seen *s = ctx;
    unsigned char want[32];
    size_t n = seq_record(seq, want);
    if (n != size || memcmp(want, data, n) != 0 || (s->count > 0 && seq != s->last + 1))
        s->bad++;
    if (s->count++ == 0)
        s->first = seq;
    s->last = seq;
    return 0;
}

static void append_seqs(baton__wal *wal, uint64_t first, uint64_t last)
{
    unsigned char rec[32];
    for (uint64_t want = first; want <= last; want++) {
        assert_int_equal(baton__wal_next_seq(wal), want);
        assert_int_equal(baton__wal_append(wal, rec, seq_record(want, rec), NULL), 0);
    }
}

static void expect_seqs(const char *dir, uint64_t first, uint64_t last)
{
    seq_seen s = {0};
    uint64_t last_good = 0;
    int rc = baton__wal_replay(dir, seq_check, &s, &last_good);
    if (rc != 0)
        fail_msg("replay: %s", baton_last_error_message());
    assert_int_equal(s.bad, 0);
    assert_int_equal(s.first, first);
    assert_int_equal(s.last, last);
    assert_int_equal(s.count, last - first + 1);
    assert_int_equal(last_good, last);
}

/* ASYNC lets a group fill for a millisecond, so 1000 quick appends land in a few groups: a
 * bound of 501 falls inside one, which stays in the file with its first half hidden. */
static void test_truncate_inside_group(void **state)
{
    (void)state;
    char dir[64];
    bt_make_tmpdir(dir, sizeof dir, "baton-wal-ring");
    baton__wal *wal = NULL;
    assert_int_equal(baton__wal_open(dir, BATON__WAL_ASYNC, &wal), 0);
    append_seqs(wal, 1, 1000);
    assert_int_equal(baton__wal_wait_all(wal), 0);
    assert_int_equal(baton__wal_truncate_before(wal, 501), 0);
    append_seqs(wal, 1001, 1010);
    assert_int_equal(baton__wal_close(wal), 0);
    expect_seqs(dir, 501, 1010);
    /* Reopened, numbering goes on after the last record, and the bound still holds. */
    assert_int_equal(baton__wal_open(dir, BATON__WAL_SYNC, &wal), 0);
    append_seqs(wal, 1011, 1020);
    assert_int_equal(baton__wal_truncate_before(wal, 1015), 0);
    assert_int_equal(baton__wal_close(wal), 0);
    expect_seqs(dir, 1015, 1020);
    bt_remove_tree(dir);
}

static void test_damage_inside_group(void **state)
{
    (void)state;
    char dir[64], path[128];
    bt_make_tmpdir(dir, sizeof dir, "baton-wal-ring");
    baton__wal *wal = NULL;
    assert_int_equal(baton__wal_open(dir, BATON__WAL_ASYNC, &wal), 0);
    append_seqs(wal, 1, 300);
    assert_int_equal(baton__wal_close(wal), 0);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned char *bytes = malloc((size_t)size);
    assert_non_null(bytes);
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
    unsigned char marker[32];
    seq_record(150, marker);
    unsigned flipped = 0;
    for (unsigned char *at = memmem(bytes, (size_t)size, marker, 11); at != NULL;
         at = memmem(at + 11, (size_t)size - (size_t)(at + 11 - bytes), marker, 11)) {
        at[1] ^= 0x20; /* "SEQ" -> "SeQ": the record's checksum no longer matches */
        flipped++;
    }
    assert_true(flipped > 0);
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fwrite(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    free(bytes);
    seq_seen s = {0};
    uint64_t last_good = 0;
    int rc = baton__wal_replay(dir, seq_check, &s, &last_good);
    assert_int_equal(rc, BATON_EIO);
    assert_non_null(strstr(baton_last_error_message(), "seq 150"));
    assert_int_equal(s.bad, 0);
    assert_int_equal(s.count, 149);
    assert_int_equal(last_good, 149);
    bt_remove_tree(dir);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_backpressure),
        cmocka_unit_test(test_truncate_inside_group),
        cmocka_unit_test(test_damage_inside_group),
    };
    return cmocka_run_group_tests_name("space/wal_ring", tests, NULL, NULL);
}
