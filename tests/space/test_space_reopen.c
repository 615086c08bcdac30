/*
 * test_space_reopen.c — what baton_space_open promises about a directory, written from space.h:
 *  1. reopening restores exactly the state the space had and fires only what the log's tail left
 *     unsettled: persistent consumers over persistent data, persistent peeks and persistent joins
 *     that fired before do not fire again, however often the directory is reopened, and such an
 *     open writes nothing (data.mdb byte for byte); turns a log owes (written here record by
 *     record, as a crash would leave them) fire exactly once, at the first reopen; a snapshot a
 *     crash cut short, followed by later records, restores every datum once;
 *  2. one space per directory: a second open, in this process or another, fails with
 *     BATON_EBUSY naming the directory, the first handle goes on producing and syncing, and the
 *     lock goes with the handle, also when its process is killed (a child forked meanwhile
 *     shares it until it exits);
 *  3. a crash at each named step of creating a space (BATON_SPACE_TEST_CRASH) leaves a directory
 *     that opens, as an empty space, and then keeps what is produced in it;
 *  4. bad arguments fail with BATON_EINVAL, leave *out and the directory as they were; automatic
 *     compaction counts what a reopened log holds.
 */
#define _GNU_SOURCE
#include "support/bt_common.h"
#include "support/bt_space_durable.h"
#include "space/record.h"
#include "space/wal.h"

/* ---- 1. reopen ------------------------------------------------------------------------------ */

static unsigned char *log_bytes(const char *dir, size_t *size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return bt_read_file(path, size);
}

static void assert_same_log(const char *dir, const unsigned char *bytes, size_t size,
                            const char *what)
{
    size_t now_size = 0;
    unsigned char *now = log_bytes(dir, &now_size);
    if (now_size != size || memcmp(now, bytes, size) != 0)
        fail_msg("%s changed data.mdb (%zu bytes, then %zu)", what, size, now_size);
    free(now);
}

static void assert_none_fired(bt_reviver *r, const char *what)
{
    for (size_t i = 0; i < r->n; i++)
        if (atomic_load(&r->slots[i].fired) != 0)
            fail_msg("%s: revived consumer %" PRIu64 " (body %s) fired %d times", what,
                     r->slots[i].id, r->slots[i].body, atomic_load(&r->slots[i].fired));
}

/* Every kind of firing that leaves both the datum and the consumer in place, then reopened
 * `rounds` times: the same state each time, nothing fires, nothing is written. */
static void run_reopen_fires_nothing(baton_durability durability)
{
    baton_pool *pool = bt_pool_new(2);
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    baton_space_config config = bt_space_config(pool, durability, NULL, NULL);
    baton_space *space = bt_space_open_ok(&config, dir);
    baton_pattern *keep[8];
    bt_kslot slots[4];
    memset(slots, 0, sizeof slots);
    /* Registered after its datum; registered before its datum; a peek; a join. */
    bt_put(space, "@1", "5", true);
    bt_take(space, 1, (const char *[]){"@1"}, (const char *[]){"Int"}, keep, "\"after\"",
         &slots[0], BATON_CONSUME_PERSISTENT);
    bt_take(space, 1, (const char *[]){"@2"}, (const char *[]){"Int"}, keep + 1, "\"before\"",
         &slots[1], BATON_CONSUME_PERSISTENT);
    bt_put(space, "@2", "6", true);
    bt_take(space, 1, (const char *[]){"@3"}, (const char *[]){"_"}, keep + 2, "\"peek\"",
         &slots[2], BATON_CONSUME_PERSISTENT | BATON_CONSUME_PEEK);
    bt_put(space, "@3", "7", false);
    bt_take(space, 2, (const char *[]){"@4", "@5"}, (const char *[]){"_", "_"}, keep + 3,
         "\"join\"", &slots[3], BATON_CONSUME_PERSISTENT);
    bt_put(space, "@4", "8", true);
    bt_put(space, "@5", "9", true);
    bt_assert_rc(baton_space_quiesce(space), 0);
    for (int i = 0; i < 4; i++)
        if (atomic_load(&slots[i].fired) != 1)
            fail_msg("consumer %d fired %d times in the live space", i,
                     atomic_load(&slots[i].fired));
    bt_assert_rc(baton_space_sync(space), 0);
    bt_dump before = bt_dump_space(space);
    uint64_t appended = bt_stats_of(space).log_appended;
    assert_true(appended > 0);
    baton_space_destroy(space);
    for (int i = 0; i < 5; i++)
        baton_pattern_destroy(keep[i]);

    size_t size = 0;
    unsigned char *bytes = log_bytes(dir, &size);
    for (int round = 0; round < 3; round++) {
        bt_reviver *r = bt_reviver_new();
        config = bt_space_config(pool, durability, bt_revive_fn, r);
        space = bt_space_open_ok(&config, dir);
        bt_assert_rc(baton_space_quiesce(space), 0);
        assert_int_equal(r->n, 4);
        char what[64];
        snprintf(what, sizeof what, "reopen %d", round + 1);
        assert_none_fired(r, what);
        bt_dump after = bt_dump_space(space);
        if (strcmp(before.text, after.text) != 0)
            fail_msg("%s: the space differs:\n--- before\n%s--- after\n%s", what, before.text,
                     after.text);
        baton_space_stats st = bt_stats_of(space);
        assert_int_equal(st.log_appended, appended); /* nothing appended since */
        baton_space_destroy(space);
        assert_same_log(dir, bytes, size, what);
        free(after.text);
        free(r);
    }
    /* And the revived consumers still take their turns at new data, once each. */
    bt_reviver *r = bt_reviver_new();
    config = bt_space_config(pool, durability, bt_revive_fn, r);
    space = bt_space_open_ok(&config, dir);
    bt_put(space, "@1", "10", true);
    bt_put(space, "@2", "11", false);
    bt_put(space, "@3", "12", false);
    bt_put(space, "@5", "13", true);
    bt_assert_rc(baton_space_quiesce(space), 0);
    for (size_t i = 0; i < r->n; i++)
        if (atomic_load(&r->slots[i].fired) != 1)
            fail_msg("after reopening, %s fired %d times at one new datum", r->slots[i].body,
                     atomic_load(&r->slots[i].fired));
    baton_space_destroy(space);
    free(r);
    free(bytes);
    free(before.text);
    bt_remove_tree(dir);
    bt_pool_destroy(pool);
}

static void test_reopen_fires_nothing_async(void **state)
{
    (void)state;
    run_reopen_fires_nothing(BATON_DURABILITY_ASYNC);
}

static void test_reopen_fires_nothing_sync(void **state)
{
    (void)state;
    run_reopen_fires_nothing(BATON_DURABILITY_SYNC);
}

/* ---- a log written record by record, as a crash leaves it ---- */

typedef struct log_writer {
    baton__wal *wal;
    uint8_t buf[512];
} log_writer;

static void lw_append(log_writer *w, size_t size)
{
    bt_assert_rc(baton__wal_append(w->wal, w->buf, size, NULL), 0);
}

static void lw_put(log_writer *w, const char *channel, uint64_t id, const char *datum,
                   bool persistent)
{
    baton_value *c = bt_value(channel), *d = bt_value(datum);
    lw_append(w, baton__record_put(w->buf, baton_value_as_view(c), baton_value_as_view(d), id,
                                   persistent));
    baton_value_destroy(c);
    baton_value_destroy(d);
}

/* REG of consumer id on n channels, each with pattern "_", body a string. */
static void lw_reg(log_writer *w, uint64_t id, unsigned flags, size_t n,
                   const char *const *channels, const char *body)
{
    baton_value *c[2], *b = bt_value(body);
    baton__record_part parts[2];
    for (size_t i = 0; i < n; i++) {
        c[i] = bt_value(channels[i]);
        parts[i] = (baton__record_part){.channel = baton_value_as_view(c[i]), .pattern = "_",
                                        .pattern_size = 1};
    }
    lw_append(w, baton__record_reg(w->buf, id, flags, parts, n, baton_value_as_view(b)));
    for (size_t i = 0; i < n; i++)
        baton_value_destroy(c[i]);
    baton_value_destroy(b);
}

static void lw_seen(log_writer *w, uint64_t consumer, uint64_t datum)
{
    lw_append(w, baton__record_seen(w->buf, consumer, datum));
}

static bt_reviver *reopen_counting(baton_pool *pool, const char *dir, bt_dump *out)
{
    bt_reviver *r = bt_reviver_new();
    baton_space_config config = bt_space_config(pool, BATON_DURABILITY_SYNC, bt_revive_fn, r);
    baton_space *space = bt_space_open_ok(&config, dir);
    bt_assert_rc(baton_space_quiesce(space), 0);
    *out = bt_dump_space(space);
    baton_space_destroy(space);
    return r;
}

static int fired_of(bt_reviver *r, const char *body)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->slots[i].body, body) == 0)
            return atomic_load(&r->slots[i].fired);
    fail_msg("no consumer with body %s was revived", body);
    return -1;
}

static void test_reopen_settles_owed_turns(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_new(2);
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    log_writer w;
    bt_assert_rc(baton__wal_open(dir, BATON__WAL_SYNC, &w.wal), 0);
    unsigned persistent = BATON_CONSUME_PERSISTENT;
    /* Owed: a datum stored after a persistent consumer registered, no SEEN. */
    lw_reg(&w, 1, persistent, 1, (const char *[]){"@1"}, "\"owed\"");
    lw_put(&w, "@1", 1, "5", true);
    /* Owed: a persistent peek, a datum that is not persistent. */
    lw_reg(&w, 2, persistent | BATON_CONSUME_PEEK, 1, (const char *[]){"@2"}, "\"peek\"");
    lw_put(&w, "@2", 2, "6", false);
    /* Paid: the consumer registered after the datum (it looked at it then). */
    lw_put(&w, "@3", 3, "7", true);
    lw_reg(&w, 3, persistent, 1, (const char *[]){"@3"}, "\"looked\"");
    /* Paid in advance: a SEEN before the PUT, as a datum's first walk writes it. */
    lw_reg(&w, 4, persistent, 1, (const char *[]){"@4"}, "\"paid\"");
    lw_seen(&w, 4, 4);
    lw_put(&w, "@4", 4, "8", true);
    /* A persistent join: its turn at #5 was taken (it could not fire), its turn at #6 is owed. */
    lw_reg(&w, 5, persistent, 2, (const char *[]){"@5", "@6"}, "\"join\"");
    lw_put(&w, "@5", 5, "1", true);
    lw_seen(&w, 5, 5);
    lw_put(&w, "@6", 6, "2", true);
    /* A match that takes the datum is never left by a finished call: it fires. */
    lw_reg(&w, 6, 0, 1, (const char *[]){"@7"}, "\"takes\"");
    lw_put(&w, "@7", 7, "3", false);
    bt_assert_rc(baton__wal_close(w.wal), 0);

    bt_dump first;
    bt_reviver *r = reopen_counting(pool, dir, &first);
    assert_int_equal(fired_of(r, "\"owed\""), 1);
    assert_int_equal(fired_of(r, "\"peek\""), 1);
    assert_int_equal(fired_of(r, "\"looked\""), 0);
    assert_int_equal(fired_of(r, "\"paid\""), 0);
    assert_int_equal(fired_of(r, "\"join\""), 1);
    assert_int_equal(fired_of(r, "\"takes\""), 1);
    assert_int_equal(first.n_data, 6); /* #7 taken */
    assert_int_equal(first.n_consumers, 5);
    free(r);
    size_t size = 0;
    unsigned char *bytes = log_bytes(dir, &size);
    for (int round = 0; round < 2; round++) {
        bt_dump again;
        r = reopen_counting(pool, dir, &again);
        assert_int_equal(r->n, 5);
        assert_none_fired(r, "a reopen after the owed turns were taken");
        assert_string_equal(first.text, again.text);
        assert_same_log(dir, bytes, size, "a reopen with nothing owed");
        free(again.text);
        free(r);
    }
    free(bytes);
    free(first.text);
    bt_remove_tree(dir);
    bt_pool_destroy(pool);
}

/* A compaction cut short (SNAP and some of its copies, no SNAP_END), then records of a later
 * run: every datum once, the later ones included. */
static void test_cut_short_snapshot_then_more(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_new(2);
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    log_writer w;
    bt_assert_rc(baton__wal_open(dir, BATON__WAL_SYNC, &w.wal), 0);
    lw_put(&w, "@1", 1, "1", false);
    lw_put(&w, "@1", 2, "2", true);
    lw_reg(&w, 1, 0, 1, (const char *[]){"@9"}, "\"k\"");
    w.buf[0] = BATON__REC_SNAP;
    lw_append(&w, 1);
    lw_put(&w, "@1", 1, "1", false); /* the snapshot's copies, cut short */
    lw_put(&w, "@1", 2, "2", true);
    lw_reg(&w, 1, 0, 1, (const char *[]){"@9"}, "\"k\"");
    lw_put(&w, "@1", 3, "3", false); /* a later run */
    lw_reg(&w, 2, 0, 1, (const char *[]){"@8"}, "\"k2\"");
    bt_assert_rc(baton__wal_close(w.wal), 0);
    bt_dump d;
    bt_reviver *r = reopen_counting(pool, dir, &d);
    assert_string_equal(d.text, "D @1 <- 1 #1\n"
                                "D @1 <- 2 #2 persistent\n"
                                "D @1 <- 3 #3\n"
                                "K #1 flags=0 body=\"k\" [@9: _]\n"
                                "K #2 flags=0 body=\"k2\" [@8: _]\n");
    free(r);
    free(d.text);
    bt_remove_tree(dir);
    bt_pool_destroy(pool);
}

/* ---- 2. one space per directory ------------------------------------------------------------- */

static void expect_busy(const baton_space_config *config, const char *dir)
{
    baton_space *space = (baton_space *)&space; /* must stay untouched on failure */
    baton_space *before = space;
    bt_assert_rc(baton_space_open(config, dir, &space), BATON_EBUSY);
    assert_ptr_equal(space, before);
    if (strstr(baton_last_error_message(), dir) == NULL)
        fail_msg("the EBUSY message does not name %s: %s", dir, baton_last_error_message());
}

static void test_second_open_in_process(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_new(2);
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    baton_space_config sync = bt_space_config(pool, BATON_DURABILITY_SYNC, NULL, NULL);
    baton_space_config async = bt_space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
    baton_space_config none = bt_space_config(pool, BATON_DURABILITY_NONE, NULL, NULL);
    baton_space *first = bt_space_open_ok(&sync, dir);
    for (int i = 0; i < 100; i++) {
        char datum[16];
        snprintf(datum, sizeof datum, "%d", i);
        bt_put(first, "@1", datum, false);
        if (i % 2 == 1) /* alternately, as two handles would */
            expect_busy(i % 4 == 1 ? &async : &none, dir);
    }
    bt_assert_rc(baton_space_quiesce(first), 0);
    bt_assert_rc(baton_space_sync(first), 0);
    assert_int_equal(bt_stats_of(first).data, 100);
    baton_space_destroy(first);

    /* Closed: it opens again, with all 100. Read-only views share the directory with each
     * other, not with a writer. */
    baton_space *v1 = bt_space_open_ok(&none, dir), *v2 = bt_space_open_ok(&none, dir);
    assert_int_equal(bt_stats_of(v1).data, 100);
    assert_int_equal(bt_stats_of(v2).data, 100);
    expect_busy(&sync, dir);
    baton_space_destroy(v1);
    expect_busy(&sync, dir);
    baton_space_destroy(v2);
    baton_space *again = bt_space_open_ok(&async, dir);
    assert_int_equal(bt_stats_of(again).data, 100);
    expect_busy(&none, dir);
    baton_space_destroy(again);
    bt_remove_tree(dir);
    bt_pool_destroy(pool);
}

/* A forked child (its own pool: the parent forks with no thread of its own running, so that
 * the child may start threads, also under TSan). It opens dir (SYNC) and writes the result code
 * to fd (-1 for an EBUSY whose message does not name dir). With hold it then obeys the bytes it
 * reads from cmd_fd: 'p' produces one datum on @1 and syncs (writing the result code), 'q' or
 * end of file closes the space and exits. Never returns. */
static _Noreturn void child_open(const char *dir, int fd, bool hold, int cmd_fd)
{
    baton_pool *pool = NULL;
    baton_pool_config pc = bt_pool_config(1, 0, 0);
    int rc = baton_pool_create(&pc, &pool);
    baton_space *space = NULL;
    if (rc == 0) {
        baton_space_config config = bt_space_config(pool, BATON_DURABILITY_SYNC, NULL, NULL);
        rc = baton_space_open(&config, dir, &space);
        if (rc == BATON_EBUSY && strstr(baton_last_error_message(), dir) == NULL)
            rc = -1;
    }
    if (write(fd, &rc, sizeof rc) != (ssize_t)sizeof rc)
        _exit(3);
    char cmd = 'q';
    while (rc == 0 && hold && read(cmd_fd, &cmd, 1) == 1 && cmd == 'p') {
        baton_value *c = bt_value("@1"), *d = bt_value("\"child\"");
        int prc = baton_space_produce(space, baton_value_as_view(c), baton_value_as_view(d), false);
        if (prc == 0)
            prc = baton_space_sync(space);
        baton_value_destroy(c);
        baton_value_destroy(d);
        if (write(fd, &prc, sizeof prc) != (ssize_t)sizeof prc)
            _exit(3);
    }
    baton_space_destroy(space);
    _exit(rc == 0 ? 0 : 1);
}

typedef struct child {
    pid_t pid;
    int result_fd, cmd_fd;
} child;

static child fork_open(const char *dir, bool hold)
{
    int res[2], cmd[2];
    assert_int_equal(pipe(res), 0);
    assert_int_equal(pipe(cmd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(res[0]);
        close(cmd[1]);
        child_open(dir, res[1], hold, cmd[0]);
    }
    close(res[1]);
    close(cmd[0]);
    return (child){pid, res[0], cmd[1]};
}

static int read_rc(const child *c)
{
    int rc = 12345;
    if (read(c->result_fd, &rc, sizeof rc) != (ssize_t)sizeof rc)
        fail_msg("the child reported nothing");
    return rc;
}

static void send_cmd(const child *c, char cmd)
{
    assert_int_equal(write(c->cmd_fd, &cmd, 1), 1);
}

static int reap(child *c)
{
    int status = 0;
    assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
    close(c->result_fd);
    close(c->cmd_fd);
    return status;
}

static void test_second_open_in_other_process(void **state)
{
    (void)state;
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    /* A holds the directory; B's open is refused; A goes on producing and syncing. */
    child a = fork_open(dir, true);
    assert_int_equal(read_rc(&a), 0);
    child b = fork_open(dir, false);
    assert_int_equal(read_rc(&b), BATON_EBUSY);
    int status = reap(&b);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    send_cmd(&a, 'p');
    assert_int_equal(read_rc(&a), 0);
    send_cmd(&a, 'q');
    status = reap(&a);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* A closed: C opens it. */
    child c = fork_open(dir, false);
    assert_int_equal(read_rc(&c), 0);
    status = reap(&c);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* D holds it, produces, syncs and is killed while it holds it: the lock goes with it. */
    child d = fork_open(dir, true);
    assert_int_equal(read_rc(&d), 0);
    send_cmd(&d, 'p');
    assert_int_equal(read_rc(&d), 0);
    assert_int_equal(kill(d.pid, SIGKILL), 0);
    status = reap(&d);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    baton_pool *pool = bt_pool_new(2);
    baton_space_config config = bt_space_config(pool, BATON_DURABILITY_SYNC, NULL, NULL);
    baton_space *space = bt_space_open_ok(&config, dir);
    bt_dump dm = bt_dump_space(space);
    assert_string_equal(dm.text, "D @1 <- \"child\" #1\nD @1 <- \"child\" #2\n");
    free(dm.text);
    baton_space_destroy(space);
    bt_remove_tree(dir);
    bt_pool_destroy(pool);
}

/* A child forked while the space is open shares its lock: after the parent closes the space the
 * directory stays locked until the child exits (the child starts no thread). */
static void test_forked_child_shares_the_lock(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_new(1);
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    baton_space_config config = bt_space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
    baton_space *space = bt_space_open_ok(&config, dir);
    int cmd[2];
    assert_int_equal(pipe(cmd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(cmd[1]);
        char byte;
        while (read(cmd[0], &byte, 1) < 0 && errno == EINTR) {
        }
        _exit(0);
    }
    close(cmd[0]);
    baton_space_destroy(space);
    expect_busy(&config, dir);
    close(cmd[1]); /* the child reads end of file and exits */
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    space = bt_space_open_ok(&config, dir);
    baton_space_destroy(space);
    bt_remove_tree(dir);
    bt_pool_destroy(pool);
}

/* ---- 3. a crash while a space is created ---------------------------------------------------- */

/* The steps of creating a space, in order (space_durable.c, space_lock.c, wal.c). */
static const char *const creation_points[] = {"dir", "lock", "env", "created", "renamed", "log"};

static void test_crash_during_creation(void **state)
{
    (void)state;
    for (size_t p = 0; p < sizeof creation_points / sizeof creation_points[0]; p++) {
        const char *point = creation_points[p];
        char parent[64], dir[128];
        bt_space_tmpdir(parent, sizeof parent);
        snprintf(dir, sizeof dir, "%s/space", parent); /* open creates it */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            setenv("BATON_SPACE_TEST_CRASH", point, 1);
            baton_pool *pool = NULL;
            baton_pool_config pc = bt_pool_config(1, 0, 0);
            baton_space *space = NULL;
            if (baton_pool_create(&pc, &pool) == 0) {
                baton_space_config config = bt_space_config(pool, BATON_DURABILITY_SYNC, NULL,
                                                         NULL);
                (void)baton_space_open(&config, dir, &space);
            }
            _exit(0); /* the point was not reached */
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail_msg("the child was to die at point %s but exited", point);

        baton_pool *pool = bt_pool_new(2);
        /* A read-only view first: an empty space, and it writes nothing. */
        baton_space_config none = bt_space_config(pool, BATON_DURABILITY_NONE, NULL, NULL);
        baton_space *space = NULL;
        int rc = baton_space_open(&none, dir, &space);
        if (rc != 0)
            fail_msg("killed at %s: a read-only open fails: %s: %s", point, baton_err_name(rc),
                     baton_last_error_message());
        assert_int_equal(bt_stats_of(space).data, 0);
        baton_space_destroy(space);
        baton_space_config config = bt_space_config(pool, BATON_DURABILITY_SYNC, NULL, NULL);
        rc = baton_space_open(&config, dir, &space);
        if (rc != 0)
            fail_msg("killed at %s: the directory does not open: %s: %s", point,
                     baton_err_name(rc), baton_last_error_message());
        baton_space_stats st = bt_stats_of(space);
        assert_int_equal(st.data + st.consumers, 0);
        bt_put(space, "@1", "1", false);
        baton_space_destroy(space);
        space = bt_space_open_ok(&config, dir);
        assert_int_equal(bt_stats_of(space).data, 1);
        baton_space_destroy(space);
        char leftover[160];
        snprintf(leftover, sizeof leftover, "%s/data.new", dir);
        if (access(leftover, F_OK) == 0)
            fail_msg("killed at %s: %s is still there after a writing open", point, leftover);
        bt_pool_destroy(pool);
        bt_remove_tree(parent);
    }
}

/* ---- 4. the rest of baton_space_open's contract --------------------------------------------- */

/* Bad arguments: BATON_EINVAL, *out untouched, and the directory is left unlocked. */
static void test_open_argument_errors(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_new(1);
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    baton_space_config good = bt_space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
    baton_space_config bad[4] = {good, good, good, good};
    bad[0].durability = (baton_durability)3;
    bad[1].log_group_max = BATON__WAL_BATCH + 1;
    bad[2].struct_size = sizeof good + 8;
    bad[3].pool = NULL;
    baton_space *const untouched = (baton_space *)&good;
    for (int i = 0; i < 4; i++) {
        baton_space *space = untouched;
        bt_assert_rc(baton_space_open(&bad[i], dir, &space), BATON_EINVAL);
        assert_ptr_equal(space, untouched);
    }
    baton_space *space = untouched;
    bt_assert_rc(baton_space_open(&good, NULL, &space), BATON_EINVAL);
    bt_assert_rc(baton_space_open(NULL, dir, &space), BATON_EINVAL);
    assert_ptr_equal(space, untouched);
    space = bt_space_open_ok(&good, dir);
    baton_space_destroy(space);
    bt_remove_tree(dir);
    bt_pool_destroy(pool);
}

/* Automatic compaction counts the records a reopened log already holds beyond its live state
 * (an open no longer writes a snapshot of its own). */
static void test_auto_compaction_after_reopen(void **state)
{
    (void)state;
    baton_pool *pool = bt_pool_new(2);
    char dir[64];
    bt_space_tmpdir(dir, sizeof dir);
    baton_space_config config = bt_space_config(pool, BATON_DURABILITY_ASYNC, NULL, NULL);
    config.compact_records = 100000;
    baton_space *space = bt_space_open_ok(&config, dir);
    baton_pattern *any = bt_pattern("_");
    baton_value *c = bt_value("@1");
    baton_value_view cv = baton_value_as_view(c);
    bt_kslot slot;
    memset(&slot, 0, sizeof slot);
    for (int i = 0; i < 60; i++) { /* 60 consumers registered, then 60 data taking them: 120 */
        bt_assert_rc(baton_space_consume(space, &cv, &any, 1, bt_kslot_fn, &slot, 0, NULL), 0);
    }
    for (int i = 0; i < 60; i++)
        bt_put(space, "@1", "1", false);
    bt_put(space, "@1", "\"kept\"", false);
    bt_assert_rc(baton_space_quiesce(space), 0);
    assert_int_equal(atomic_load(&slot.fired), 60);
    assert_int_equal(bt_stats_of(space).compactions, 0);
    baton_space_destroy(space);

    config.compact_records = 50;
    space = bt_space_open_ok(&config, dir);
    baton_space_stats st = bt_stats_of(space);
    assert_int_equal(st.compactions, 0);
    assert_true(st.log_records > 100);
    bt_assert_rc(baton_space_quiesce(space), 0);
    st = bt_stats_of(space);
    assert_int_equal(st.compactions, 1);
    assert_true(st.log_records <= 3); /* SNAP, the one datum, SNAP_END */
    baton_space_destroy(space);
    space = bt_space_open_ok(&config, dir);
    bt_dump d = bt_dump_space(space);
    assert_string_equal(d.text, "D @1 <- \"kept\" #61\n");
    free(d.text);
    baton_space_destroy(space);
    baton_pattern_destroy(any);
    baton_value_destroy(c);
    bt_remove_tree(dir);
    bt_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reopen_fires_nothing_async),
        cmocka_unit_test(test_reopen_fires_nothing_sync),
        cmocka_unit_test(test_reopen_settles_owed_turns),
        cmocka_unit_test(test_cut_short_snapshot_then_more),
        cmocka_unit_test(test_second_open_in_process),
        cmocka_unit_test(test_second_open_in_other_process),
        cmocka_unit_test(test_forked_child_shares_the_lock),
        cmocka_unit_test(test_crash_during_creation),
        cmocka_unit_test(test_open_argument_errors),
        cmocka_unit_test(test_auto_compaction_after_reopen),
    };
    return cmocka_run_group_tests_name("space/reopen", tests, NULL, NULL);
}
