/*
 * test_space_wal.c — the space layer's write-ahead log (src/space/wal.h): append and replay in
 * every mode, numbering across reopen, wait_durable (also the first one after an ASYNC open),
 * concurrent appenders, truncation, close flushing, crash recovery (a SYNC child killed at random moments: every acknowledged record
 * survives) and damaged files (truncated, bit-flipped, not LMDB at all), each damaged replay in
 * a forked child so that a crash shows up as a failure of this test and not as a dead binary.
 */
#define _GNU_SOURCE
#include "support/bt_common.h"
#include "support/bt_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "baton/core.h"
#include "space/wal.h"
#include "space/wal_format.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static void make_tmpdir(char *path, size_t cap)
{
    bt_make_tmpdir(path, cap, "baton-wal");
}

/* The record numbered seq: "REC:", seq big-endian, then filler; 12..51 bytes. */
static size_t gen_record(uint64_t seq, unsigned char *out)
{
    size_t size = 12 + (size_t)(seq * 7 % 40);
    memcpy(out, "REC:", 4);
    for (int i = 0; i < 8; i++)
        out[4 + i] = (unsigned char)(seq >> (56 - 8 * i));
    for (size_t i = 12; i < size; i++)
        out[i] = (unsigned char)((seq + i) * 13);
    return size;
}

typedef struct replay_check {
    uint64_t first;
    uint64_t last;
    uint64_t count;
    uint64_t bad; /* records whose content is not gen_record(seq) */
} replay_check;

static int check_record(void *ctx, uint64_t seq, const void *data, size_t size)
{
    replay_check *c = ctx;
    unsigned char want[64];
    size_t n = gen_record(seq, want);
    if (n != size || memcmp(want, data, n) != 0)
        c->bad++;
    if (c->count == 0)
        c->first = seq;
    else if (seq != c->last + 1)
        c->bad++;
    c->last = seq;
    c->count++;
    return 0;
}

/* Appends the record that replay expects at expect_seq (one appending thread: the records are
 * numbered in the order appended); returns its ticket. */
static uint64_t append_gen(baton__wal *wal, uint64_t expect_seq)
{
    unsigned char rec[64];
    size_t n = gen_record(expect_seq, rec);
    assert_int_equal(baton__wal_next_seq(wal), expect_seq);
    uint64_t ticket = 0;
    int rc = baton__wal_append(wal, rec, n, &ticket);
    if (rc != 0)
        fail_msg("append: %s", baton_last_error_message());
    assert_true(ticket > 0);
    return ticket;
}

static void replay_expect(const char *dir, uint64_t first, uint64_t last)
{
    replay_check c = {0};
    uint64_t last_good = 0;
    int rc = baton__wal_replay(dir, check_record, &c, &last_good);
    if (rc != 0)
        fail_msg("replay: %s", baton_last_error_message());
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.count, last >= first ? last - first + 1 : 0);
    if (c.count > 0) {
        assert_int_equal(c.first, first);
        assert_int_equal(c.last, last);
    }
    assert_int_equal(last_good, c.count > 0 ? last : 0);
}

static baton__wal *open_wal(const char *dir, baton__wal_mode mode)
{
    baton__wal *wal = NULL;
    int rc = baton__wal_open(dir, mode, &wal);
    if (rc != 0)
        fail_msg("open: %s", baton_last_error_message());
    return wal;
}

/* ---- the modes ------------------------------------------------------------------------------ */

static void run_mode(baton__wal_mode mode)
{
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    baton__wal *wal = open_wal(dir, mode);
    const uint64_t n = 2000;
    uint64_t last_ticket = 0;
    for (uint64_t s = 1; s <= n; s++) {
        uint64_t ticket = append_gen(wal, s);
        assert_true(ticket >= last_ticket); /* one thread: tickets never go back */
        last_ticket = ticket;
        if (s % 500 == 0) {
            assert_int_equal(baton__wal_wait_durable(wal, ticket), 0);
            assert_true(baton__wal_durable(wal) >= ticket);
            assert_true(baton__wal_durable_seq(wal) >= s);
        }
    }
    assert_int_equal(baton__wal_close(wal), 0);
    replay_expect(dir, 1, n);
    bt_remove_tree(dir);
}

static void test_sync_mode(void **state)
{
    (void)state;
    run_mode(BATON__WAL_SYNC);
}

static void test_async_mode(void **state)
{
    (void)state;
    run_mode(BATON__WAL_ASYNC);
}

static void test_none_mode(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/none", dir);
    baton__wal *wal = open_wal(sub, BATON__WAL_NONE);
    for (uint64_t s = 1; s <= 100; s++)
        append_gen(wal, s);
    assert_int_equal(baton__wal_wait_durable(wal, 100), 0);
    assert_int_equal(baton__wal_durable(wal), 0);
    assert_int_equal(baton__wal_truncate_before(wal, 50), 0);
    assert_int_equal(baton__wal_close(wal), 0);
    struct stat st;
    assert_int_not_equal(stat(sub, &st), 0); /* nothing was written, not even the directory */
    assert_int_equal(baton__wal_replay(sub, check_record, &(replay_check){0}, NULL),
                     BATON_ENOTFOUND);
    wal = open_wal(NULL, BATON__WAL_NONE);
    assert_int_equal(baton__wal_close(wal), 0);
    bt_remove_tree(dir);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    baton__wal *wal = NULL;
    assert_int_equal(baton__wal_open(NULL, BATON__WAL_SYNC, &wal), BATON_EINVAL);
    assert_int_equal(baton__wal_open("/tmp", (baton__wal_mode)7, &wal), BATON_EINVAL);
    assert_int_equal(baton__wal_open("/tmp", BATON__WAL_SYNC, NULL), BATON_EINVAL);
    assert_int_equal(baton__wal_append(NULL, "x", 1, NULL), BATON_EINVAL);
    assert_int_equal(baton__wal_replay(NULL, check_record, NULL, NULL), BATON_EINVAL);
    assert_int_equal(baton__wal_close(NULL), 0);
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    wal = open_wal(dir, BATON__WAL_SYNC);
    assert_int_equal(baton__wal_append(wal, NULL, 3, NULL), BATON_EINVAL);
    assert_int_equal(baton__wal_append(wal, NULL, 0, NULL), 0); /* an empty record */
    assert_int_equal(baton__wal_append_ordered(wal, "x", 1, NULL, 1, NULL), BATON_EINVAL);
    assert_int_equal(baton__wal_wait_durable(wal, UINT64_MAX / 2), BATON_EINVAL); /* never given */
    assert_int_equal(baton__wal_wait_durable(wal, 1), 0);
    assert_int_equal(baton__wal_close(wal), 0);
    bt_remove_tree(dir);
}

/* ---- numbering, durability, close ----------------------------------------------------------- */

static void test_reopen_continues(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    uint64_t next = 1;
    for (int round = 0; round < 4; round++) {
        baton__wal *wal = open_wal(dir, round % 2 ? BATON__WAL_ASYNC : BATON__WAL_SYNC);
        for (int i = 0; i < 37; i++)
            append_gen(wal, next++);
        assert_int_equal(baton__wal_close(wal), 0);
    }
    replay_expect(dir, 1, next - 1);
    bt_remove_tree(dir);
}

static void test_wait_durable(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    for (int m = 0; m < 2; m++) {
        baton__wal *wal = open_wal(dir, m ? BATON__WAL_ASYNC : BATON__WAL_SYNC);
        uint64_t base = baton__wal_next_seq(wal) - 1;
        assert_int_equal(baton__wal_durable_seq(wal), base);
        for (uint64_t s = base + 1; s <= base + 50; s++) {
            uint64_t ticket = append_gen(wal, s);
            assert_int_equal(baton__wal_wait_durable(wal, ticket), 0);
            assert_true(baton__wal_durable(wal) >= ticket);
            assert_true(baton__wal_durable_seq(wal) >= s);
        }
        /* wait_all covers what this thread appended, with no ticket at hand. */
        append_gen(wal, base + 51);
        assert_int_equal(baton__wal_wait_all(wal), 0);
        assert_true(baton__wal_durable_seq(wal) >= base + 51);
        assert_int_equal(baton__wal_close(wal), 0);
    }
    replay_expect(dir, 1, 102);
    bt_remove_tree(dir);
}

/* ASYNC syncs on a thread of its own (wal_syncer.c). A regression: a syncer that first ran after
 * the writer had already committed took those commits for synced and never moved the durable
 * marks, so the first wait_durable after open hung. Every open here races the two threads anew. */
static void test_async_first_commit_durable(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    const uint64_t rounds = 30;
    for (uint64_t s = 1; s <= rounds; s++) {
        baton__wal *wal = open_wal(dir, BATON__WAL_ASYNC);
        assert_int_equal(baton__wal_durable_seq(wal), s - 1);
        uint64_t ticket = append_gen(wal, s);
        assert_int_equal(baton__wal_wait_durable(wal, ticket), 0);
        assert_true(baton__wal_durable(wal) >= ticket);
        assert_int_equal(baton__wal_durable_seq(wal), s);
        assert_true(baton__wal_writer_cpu_ns(wal) > 0); /* the writer's and the syncer's */
        assert_int_equal(baton__wal_close(wal), 0);
    }
    replay_expect(dir, 1, rounds);
    bt_remove_tree(dir);
}

static void test_close_flushes(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    baton__wal *wal = open_wal(dir, BATON__WAL_ASYNC);
    const uint64_t n = bt_scaled(20000, 1000);
    for (uint64_t s = 1; s <= n; s++)
        append_gen(wal, s);
    assert_int_equal(baton__wal_close(wal), 0); /* no wait: close writes and syncs */
    replay_expect(dir, 1, n);
    bt_remove_tree(dir);
}

/* ---- concurrent appenders ------------------------------------------------------------------- */

typedef struct appender {
    baton__wal *wal;
    uint32_t id;
    uint32_t n;
} appender;

static void *appender_main(void *arg)
{
    appender *a = arg;
    for (uint32_t i = 0; i < a->n; i++) {
        uint32_t rec[2] = {a->id, i};
        uint64_t ticket;
        BT_CHECK(baton__wal_append(a->wal, rec, sizeof rec, &ticket) == 0);
        if (i % 1000 == 999)
            BT_CHECK(baton__wal_wait_durable(a->wal, ticket) == 0);
    }
    return NULL;
}

typedef struct seen {
    uint8_t *hits; /* [4][n] */
    uint32_t n;
    uint64_t count;
    uint64_t last;
    uint64_t bad;
} seen;

static int count_record(void *ctx, uint64_t seq, const void *data, size_t size)
{
    seen *s = ctx;
    uint32_t rec[2];
    if (size != sizeof rec || seq != s->last + 1) {
        s->bad++;
        return 0;
    }
    memcpy(rec, data, sizeof rec);
    if (rec[0] >= 4 || rec[1] >= s->n)
        s->bad++;
    else
        s->hits[(size_t)rec[0] * s->n + rec[1]]++;
    s->last = seq;
    s->count++;
    return 0;
}

static void test_concurrent_appends(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    for (int m = 0; m < 2; m++) {
        bt_remove_tree(dir);
        baton__wal *wal = open_wal(dir, m ? BATON__WAL_SYNC : BATON__WAL_ASYNC);
        uint32_t n = (uint32_t)bt_scaled(m ? 5000 : 20000, 1000);
        pthread_t th[4];
        appender a[4];
        for (uint32_t t = 0; t < 4; t++) {
            a[t] = (appender){wal, t, n};
            assert_int_equal(pthread_create(&th[t], NULL, appender_main, &a[t]), 0);
        }
        for (int t = 0; t < 4; t++)
            pthread_join(th[t], NULL);
        bt_assert_no_thread_failures();
        assert_int_equal(baton__wal_close(wal), 0);
        seen s = {calloc(4 * (size_t)n, 1), n, 0, 0, 0};
        assert_non_null(s.hits);
        assert_int_equal(baton__wal_replay(dir, count_record, &s, NULL), 0);
        assert_int_equal(s.bad, 0);
        assert_int_equal(s.count, 4 * (uint64_t)n);
        for (size_t i = 0; i < 4 * (size_t)n; i++)
            assert_int_equal(s.hits[i], 1);
        free(s.hits);
    }
    bt_remove_tree(dir);
}

/* ---- truncation ----------------------------------------------------------------------------- */

static void test_truncate_before(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    baton__wal *wal = open_wal(dir, BATON__WAL_SYNC);
    for (uint64_t s = 1; s <= 100; s++)
        append_gen(wal, s);
    assert_int_equal(baton__wal_truncate_before(wal, 51), 0);
    assert_int_equal(baton__wal_truncate_before(wal, 20), 0); /* already done */
    for (uint64_t s = 101; s <= 110; s++)
        append_gen(wal, s);
    assert_int_equal(baton__wal_close(wal), 0);
    replay_expect(dir, 51, 110);

    /* Everything away: numbering still continues after reopen. */
    wal = open_wal(dir, BATON__WAL_ASYNC);
    append_gen(wal, 111);
    assert_int_equal(baton__wal_truncate_before(wal, 1000), 0); /* clamped to 112 */
    assert_int_equal(baton__wal_close(wal), 0);
    replay_expect(dir, 1, 0);
    wal = open_wal(dir, BATON__WAL_SYNC);
    append_gen(wal, 112);
    assert_int_equal(baton__wal_close(wal), 0);
    replay_expect(dir, 112, 112);
    bt_remove_tree(dir);
}

/* Records larger than a page live on LMDB's overflow pages: written, truncated, replayed and
 * walked by the file check. */
static int check_large(void *ctx, uint64_t seq, const void *data, size_t size)
{
    uint64_t *count = ctx;
    const unsigned char *p = data;
    if (size != 1000 + (seq % 7) * 9000)
        return -100;
    for (size_t i = 0; i < size; i++)
        if (p[i] != (unsigned char)(seq * 31 + i))
            return -101;
    (*count)++;
    return 0;
}

static void test_large_records(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    unsigned char *buf = malloc(1000 + 6 * 9000);
    assert_non_null(buf);
    for (int round = 0; round < 2; round++) {
        baton__wal *wal = open_wal(dir, BATON__WAL_SYNC);
        for (uint64_t s = 1 + 60 * (uint64_t)round; s <= 60 + 60 * (uint64_t)round; s++) {
            size_t size = 1000 + (s % 7) * 9000;
            for (size_t i = 0; i < size; i++)
                buf[i] = (unsigned char)(s * 31 + i);
            assert_int_equal(baton__wal_next_seq(wal), s);
            assert_int_equal(baton__wal_append(wal, buf, size, NULL), 0);
        }
        assert_int_equal(baton__wal_truncate_before(wal, 20 + 60 * (uint64_t)round), 0);
        assert_int_equal(baton__wal_close(wal), 0);
    }
    uint64_t count = 0, last = 0;
    int rc = baton__wal_replay(dir, check_large, &count, &last);
    if (rc != 0)
        fail_msg("replay: %d %s", rc, baton_last_error_message());
    assert_int_equal(count, 41);
    assert_int_equal(last, 120);
    free(buf);
    bt_remove_tree(dir);
}

/* ---- crash recovery ------------------------------------------------------------------------- */

static void crash_child(const char *dir, int fd)
{
    baton__wal *wal = NULL;
    if (baton__wal_open(dir, BATON__WAL_SYNC, &wal) != 0)
        _exit(3);
    uint64_t expect = baton__wal_next_seq(wal);
    for (;;) {
        unsigned char rec[64];
        size_t n = gen_record(expect, rec);
        uint64_t seq = expect, ticket;
        if (baton__wal_append(wal, rec, n, &ticket) != 0 || baton__wal_next_seq(wal) != seq + 1)
            _exit(4);
        if ((seq & 3) == 0 || seq % 7 == 0) {
            if (baton__wal_wait_durable(wal, ticket) != 0 || baton__wal_durable_seq(wal) < seq)
                _exit(5);
            if (write(fd, &seq, sizeof seq) != (ssize_t)sizeof seq)
                _exit(6);
        }
        expect++;
    }
}

static void test_crash_recovery(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    bt_rng rng = bt_rng_seed(20261124);
    uint64_t acked_max = 0;
    for (int trial = 0; trial < 20; trial++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(dir, fds[1]);
        }
        close(fds[1]);
        /* Killed right after the parent has read the child's k-th acknowledgement: where the
         * kill lands depends on what was acknowledged, not on the machine's speed. */
        uint64_t k = 1 + bt_rng_below(&rng, 40), seq;
        for (uint64_t read_acks = 0; read_acks < k; read_acks++) {
            if (read(fds[0], &seq, sizeof seq) != (ssize_t)sizeof seq)
                fail_msg("trial %d: the child stopped after %" PRIu64 " acknowledgements", trial,
                         read_acks);
            assert_true(seq > acked_max);
            acked_max = seq;
        }
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status))
            fail_msg("trial %d: child exited with %d before it was killed", trial,
                     WEXITSTATUS(status));
        while (read(fds[0], &seq, sizeof seq) == (ssize_t)sizeof seq) {
            assert_true(seq > acked_max);
            acked_max = seq;
        }
        close(fds[0]);
        replay_check c = {0};
        uint64_t last_good = 0;
        int rc = baton__wal_replay(dir, check_record, &c, &last_good);
        if (rc != 0)
            fail_msg("trial %d: replay: %s", trial, baton_last_error_message());
        assert_int_equal(c.bad, 0);
        assert_true(c.count == 0 || c.first == 1);
        assert_true(last_good >= acked_max); /* every acknowledged record is there */
    }
    assert_true(acked_max > 0);
    bt_remove_tree(dir);
}

/* ---- damaged files -------------------------------------------------------------------------- */

typedef struct damage_result {
    int exited;       /* the child returned normally */
    int rc;           /* replay's return */
    uint64_t last_good;
    uint64_t count;
    uint64_t bad;
    char msg[256];
} damage_result;

/* Replays dir in a forked child; a crash leaves exited == 0. */
static damage_result replay_in_child(const char *dir)
{
    damage_result *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(shared != MAP_FAILED);
    memset(shared, 0, sizeof *shared);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka catches these to fail a test; here they must end the child. */
        const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        replay_check c = {0};
        uint64_t last_good = 0;
        int rc = baton__wal_replay(dir, check_record, &c, &last_good);
        shared->rc = rc;
        shared->last_good = last_good;
        shared->count = c.count;
        shared->bad = c.bad + (c.count > 0 && (c.first != 1 || c.last != last_good));
        snprintf(shared->msg, sizeof shared->msg, "%s", rc ? baton_last_error_message() : "");
        shared->exited = 1;
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    damage_result r = *shared;
    if (!WIFEXITED(status))
        r.exited = 0;
    munmap(shared, sizeof *shared);
    return r;
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void write_file(const char *path, const unsigned char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    fclose(f);
}

typedef struct damage_fixture {
    char dir[64];     /* the intact log */
    char trial[128];  /* where the damaged copies go */
    char path[160];   /* trial/data.mdb */
    unsigned char *data;
    size_t size;
    uint64_t n;
} damage_fixture;

static void damage_setup(damage_fixture *f, uint64_t n)
{
    make_tmpdir(f->dir, sizeof f->dir);
    baton__wal *wal = open_wal(f->dir, BATON__WAL_SYNC);
    for (uint64_t s = 1; s <= n; s++)
        append_gen(wal, s);
    assert_int_equal(baton__wal_close(wal), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    f->data = read_file(path, &f->size);
    f->n = n;
    snprintf(f->trial, sizeof f->trial, "%s/trial", f->dir);
    assert_int_equal(mkdir(f->trial, 0755), 0);
    snprintf(f->path, sizeof f->path, "%s/data.mdb", f->trial);
}

static void damage_teardown(damage_fixture *f)
{
    free(f->data);
    bt_remove_tree(f->dir);
}

/* A replay of a damaged copy: no crash, rc 0 or BATON_EIO, only right records, in order. */
static damage_result damaged_replay(damage_fixture *f, const unsigned char *data, size_t size,
                                    const char *what)
{
    char lock[192];
    snprintf(lock, sizeof lock, "%s/lock.mdb", f->trial);
    unlink(lock);
    write_file(f->path, data, size);
    damage_result r = replay_in_child(f->trial);
    if (!r.exited)
        fail_msg("%s: replay crashed", what);
    if (r.rc != 0 && r.rc != BATON_EIO)
        fail_msg("%s: replay returned %s: %s", what, baton_err_name(r.rc), r.msg);
    if (r.bad != 0)
        fail_msg("%s: replay handed out %llu wrong records", what, (unsigned long long)r.bad);
    return r;
}

static void test_damage_payload_flips(void **state)
{
    (void)state;
    damage_fixture f;
    damage_setup(&f, 500);
    unsigned char *copy = malloc(f.size);
    assert_non_null(copy);
    unsigned flipped = 0;
    for (uint64_t target = 1; target <= f.n; target += 17) {
        unsigned char marker[64];
        gen_record(target, marker);
        memcpy(copy, f.data, f.size);
        /* Flip every copy: freed pages keep stale ones, and only the live one matters. */
        unsigned copies = 0;
        for (unsigned char *at = memmem(copy, f.size, marker, 12); at != NULL;
             at = memmem(at + 12, f.size - (size_t)(at + 12 - copy), marker, 12)) {
            at[4 + target % 8] ^= (unsigned char)(1u << (target % 8)); /* in the seq bytes */
            copies++;
        }
        assert_true(copies > 0);
        damage_result r = damaged_replay(&f, copy, f.size, "payload flip");
        assert_int_equal(r.rc, BATON_EIO);
        assert_int_equal(r.last_good, target - 1); /* everything before the damage */
        char want[64];
        snprintf(want, sizeof want, "seq %llu", (unsigned long long)target);
        if (strstr(r.msg, want) == NULL)
            fail_msg("the message does not name %s: %s", want, r.msg);
        flipped++;
    }
    assert_true(flipped > 20);
    free(copy);
    damage_teardown(&f);
}

static void test_damage_truncation(void **state)
{
    (void)state;
    damage_fixture f;
    damage_setup(&f, 2000);
    unsigned errors = 0, trials = 0;
    for (size_t len = 0; len < f.size; len += (len < 8192 ? 61 : 509)) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", len, f.size);
        damage_result r = damaged_replay(&f, f.data, len, what);
        errors += r.rc == BATON_EIO;
        trials++;
    }
    assert_int_equal(errors, trials); /* LMDB writes the file up to its last page */
    damage_teardown(&f);
}

static void test_damage_random_flips(void **state)
{
    (void)state;
    damage_fixture f;
    damage_setup(&f, 800);
    unsigned char *copy = malloc(f.size);
    assert_non_null(copy);
    bt_rng rng = bt_rng_seed(0x5eed);
    unsigned trials = (unsigned)bt_scaled(300, 60), eio = 0, ok = 0, rolled_back = 0;
    for (unsigned t = 0; t < trials; t++) {
        memcpy(copy, f.data, f.size);
        unsigned flips = 1 + (unsigned)bt_rng_below(&rng, 4);
        bool meta_hit = false;
        for (unsigned i = 0; i < flips; i++) {
            size_t at = bt_rng_below(&rng, f.size);
            copy[at] ^= (unsigned char)(1u << bt_rng_below(&rng, 8));
            meta_hit |= at < 2 * 4096;
        }
        char what[64];
        snprintf(what, sizeof what, "random flips, trial %u", t);
        damage_result r = damaged_replay(&f, copy, f.size, what);
        if (r.rc == BATON_EIO) {
            eio++;
        } else if (r.count == f.n) {
            ok++; /* the flips hit unused space */
        } else if (meta_hit) {
            /* A flipped meta page can make LMDB pick the other, older one: an earlier state,
             * consistent but shorter (damaged_replay checked it is a clean prefix). */
            rolled_back++;
        } else {
            fail_msg("%s: replay returned 0 after %llu of %llu records", what,
                     (unsigned long long)r.count, (unsigned long long)f.n);
        }
    }
    print_message("random flips: %u trials, %u detected, %u harmless, %u rolled back to the "
                  "older meta page\n", trials, eio, ok, rolled_back);
    free(copy);
    damage_teardown(&f);
}

static void test_not_a_log(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    char path[128];
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(baton__wal_replay(path, check_record, &(replay_check){0}, NULL),
                     BATON_ENOTFOUND);
    assert_int_equal(baton__wal_replay(dir, check_record, &(replay_check){0}, NULL),
                     BATON_ENOTFOUND);
    /* Garbage of several sizes in data.mdb: BATON_EIO from replay and from open. */
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    static unsigned char junk[3 * 4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    const size_t sizes[] = {0, 1, 100, 4096, sizeof junk};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        write_file(path, junk, sizes[i]);
        damage_result r = replay_in_child(dir);
        assert_true(r.exited);
        assert_int_equal(r.rc, BATON_EIO);
        baton__wal *wal = NULL;
        assert_int_equal(baton__wal_open(dir, BATON__WAL_SYNC, &wal), BATON_EIO);
        assert_null(wal);
    }
    bt_remove_tree(dir);
}

/* ---- records encoded in place ---------------------------------------------------------------- */

typedef struct gen_encoder {
    uint64_t seq;
    unsigned calls;
    size_t big; /* > 0: write big bytes of pattern instead of gen_record(seq) */
} gen_encoder;

static size_t encode_gen(void *ctx, unsigned char *out)
{
    gen_encoder *g = ctx;
    g->calls++;
    if (g->big > 0) {
        for (size_t i = 0; i < g->big; i++)
            out[i] = (unsigned char)(i * 31 + 5);
        return g->big;
    }
    return gen_record(g->seq, out);
}

static int check_big(void *ctx, uint64_t seq, const void *data, size_t size)
{
    size_t *ok = ctx;
    const unsigned char *b = data;
    (void)seq;
    bool same = size == 600 * 1024;
    for (size_t i = 0; same && i < size; i++)
        same = b[i] == (unsigned char)(i * 31 + 5);
    *ok += same;
    return 0;
}

/* wal.h, baton__wal_append_encoded: the record encode writes in place is the record the log
 * holds, of the length encode returned (also when that is less than the room asked for), in the
 * order of the appends, among copied ones; encode runs once per append, never in NONE mode; a
 * record longer than the lane's inline limit (512 KiB) is encoded into its heap copy, also
 * shorter than its room; a NULL encode is BATON_EINVAL and appends nothing. */
static void test_append_encoded(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    baton__wal *wal = open_wal(dir, BATON__WAL_ASYNC);
    uint64_t clock = 0, *clocks = &clock;
    const uint64_t n = 3000;
    for (uint64_t s = 1; s <= n; s++) {
        if (s % 3 == 0) {
            (void)append_gen(wal, s);
            continue;
        }
        unsigned char probe[64];
        gen_encoder g = {s, 0, 0};
        uint64_t ticket = 0;
        /* Every other one asks for more room than its record takes (a bound, as the space's
         * encoders ask for): the log holds the length the encoder returned. */
        size_t room = gen_record(s, probe) + (s % 2 == 0 ? 1 + s % 23 : 0);
        int rc = baton__wal_append_encoded(wal, room, encode_gen, &g, &clocks, 1, &ticket);
        if (rc != 0)
            fail_msg("append_encoded: %s", baton_last_error_message());
        assert_int_equal(g.calls, 1);
        assert_true(ticket > 0);
    }
    assert_int_equal(baton__wal_append_encoded(wal, 12, NULL, NULL, NULL, 0, NULL), BATON_EINVAL);
    assert_int_equal(baton__wal_next_seq(wal), n + 1);
    assert_int_equal(baton__wal_close(wal), 0);
    replay_expect(dir, 1, n);
    bt_remove_tree(dir);

    make_tmpdir(dir, sizeof dir);
    wal = open_wal(dir, BATON__WAL_SYNC);
    gen_encoder big = {0, 0, 600 * 1024};
    uint64_t ticket = 0;
    assert_int_equal(
        baton__wal_append_encoded(wal, big.big + 4096, encode_gen, &big, NULL, 0, &ticket), 0);
    assert_int_equal(big.calls, 1);
    assert_int_equal(baton__wal_wait_durable(wal, ticket), 0);
    assert_int_equal(baton__wal_close(wal), 0);
    size_t ok = 0;
    assert_int_equal(baton__wal_replay(dir, check_big, &ok, NULL), 0);
    assert_int_equal(ok, 1);
    bt_remove_tree(dir);

    wal = open_wal(NULL, BATON__WAL_NONE);
    gen_encoder none = {1, 0, 0};
    assert_int_equal(baton__wal_append_encoded(wal, 20, encode_gen, &none, NULL, 0, &ticket), 0);
    assert_int_equal(none.calls, 0);
    assert_true(ticket > 0);
    assert_int_equal(baton__wal_close(wal), 0);
}

/* wal_format.h: a record's checksum is XXH3-64 of its payload seeded with its seq, the function
 * baton_hash64 computes; the writer's inlined copy must give the same values at every length
 * (XXH3 takes a different path at 0, 1-3, 4-8, 9-16, 17-128, 129-240 and longer). */
static void test_checksum_format(void **state)
{
    (void)state;
    static unsigned char bytes[1024];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)(i * 167 + 13);
    const uint64_t seqs[] = {1, 2, 4097, UINT64_C(1) << 40, UINT64_MAX};
    for (size_t s = 0; s < sizeof seqs / sizeof seqs[0]; s++)
        for (size_t n = 0; n <= sizeof bytes; n += n < 300 ? 1 : 37)
            assert_int_equal(wal_checksum(seqs[s], bytes, n), baton_hash64(bytes, n, seqs[s]));
    assert_int_equal(wal_checksum(7, NULL, 0), baton_hash64(NULL, 0, 7));
    /* One value fixed, so that the format cannot move with the hash library. */
    assert_int_equal(wal_checksum(42, "baton log", 9), UINT64_C(0x3ecc1053ac40b8bf));
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_mode),
        cmocka_unit_test(test_async_mode),
        cmocka_unit_test(test_none_mode),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_reopen_continues),
        cmocka_unit_test(test_wait_durable),
        cmocka_unit_test(test_async_first_commit_durable),
        cmocka_unit_test(test_close_flushes),
        cmocka_unit_test(test_concurrent_appends),
        cmocka_unit_test(test_truncate_before),
        cmocka_unit_test(test_large_records),
        cmocka_unit_test(test_crash_recovery),
        cmocka_unit_test(test_damage_payload_flips),
        cmocka_unit_test(test_damage_truncation),
        cmocka_unit_test(test_damage_random_flips),
        cmocka_unit_test(test_not_a_log),
        cmocka_unit_test(test_checksum_format),
        cmocka_unit_test(test_append_encoded),
    };
    return cmocka_run_group_tests_name("space/wal", tests, NULL, NULL);
}
