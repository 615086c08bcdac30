/*
 * bt_space_durable.h — what the durable-space tests share (test_space_durable.c and
 * test_space_recovery.c): temporary directories and whole-file reads, opening a space on a log,
 * a text dump of a space through baton_space_visit (to compare a space before and after a
 * reopen), a revive hook that records what it revived, and bt_populate(): a space with data and
 * waiting consumers of every kind. Defined in bt_space_durable.c.
 */
#ifndef BT_SUPPORT_SPACE_DURABLE_H
#define BT_SUPPORT_SPACE_DURABLE_H

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
#include "baton/space.h"
#include "support/bt_space.h"

/* ---- helpers -------------------------------------------------------------------------------- */

void bt_space_tmpdir(char *path, size_t cap);

baton_pool *bt_pool_new(unsigned workers);

baton_space_config bt_space_config(baton_pool *pool, baton_durability durability,
                                   baton_revive_fn revive, void *revive_ctx);

baton_space *bt_space_open_ok(const baton_space_config *config, const char *dir);

void bt_put(baton_space *space, const char *channel, const char *datum, bool persistent);

baton_space_stats bt_stats_of(baton_space *space);

/* The text of a value, in a fixed buffer (the tests' values are small). */
void bt_view_text(baton_value_view v, char *buf, size_t cap);

/* A continuation slot: counts firings and keeps the text of the last match's data. */
typedef struct bt_kslot {
    uint64_t id;
    char body[128];
    atomic_int fired;
    char last[4][128];
} bt_kslot;

int bt_kslot_fn(void *ctx, const baton_match *match);

/* Registers a consumer on channels (texts) with patterns (texts, parsed into *keep so that the
 * caller frees them after the space) and body (text, or NULL for baton_space_consume). */
uint64_t bt_take(baton_space *space, size_t n, const char *const *channels,
                 const char *const *patterns, baton_pattern **keep, const char *body,
                 bt_kslot *slot, unsigned flags);

/* ---- the visit as text ---------------------------------------------------------------------- */

typedef struct bt_dump {
    char *text;
    size_t len, cap;
    size_t n_data, n_consumers;
    uint64_t ids[64]; /* the waiting consumers' ids, in visit order */
    int rc;
} bt_dump;

void bt_dump_add(bt_dump *d, const char *s);

void bt_dump_view(bt_dump *d, baton_value_view v);

int bt_dump_datum(void *ctx, const baton_space_datum_info *info);

int bt_dump_consumer(void *ctx, const baton_space_consumer_info *info);

bt_dump bt_dump_space(baton_space *space);

/* ---- revive --------------------------------------------------------------------------------- */

typedef struct bt_reviver {
    size_t n;
    bt_kslot slots[64];
    int fail_at;  /* the call (0-based) that fails, or -1 */
    int fail_rc;  /* what it returns; 0 means "returns 0 with no function" */
} bt_reviver;

int bt_revive_fn(void *revive_ctx, uint64_t id, baton_value_view body, baton_continuation_fn *fn,
                 void **ctx);

bt_reviver *bt_reviver_new(void);

bt_kslot *bt_revived(bt_reviver *r, uint64_t id);

/* ---- a populated space ---------------------------------------------------------------------- */

typedef struct bt_session {
    char n[12][32]; /* "@<fresh name>" */
    uint64_t max_name;
    uint64_t waiting[5]; /* K1..K5 */
    uint64_t max_consumer;
    baton_pattern *patterns[32];
    size_t n_patterns;
    bt_kslot slots[12];
} bt_session;

void bt_session_free_patterns(bt_session *s);

uint64_t bt_session_take(bt_session *s, baton_space *space, size_t n, const char *const *channels,
                         const char *const *patterns, const char *body, bt_kslot *slot,
                         unsigned flags);

/* Fills a space with data of every kind, waiting consumers K1..K5 and six firings. */
void bt_populate(bt_session *s, baton_space *space);

/* A fresh directory (its path in dir) holding the log of bt_populate()'s space, closed; *before
 * receives the space's dump. The caller frees the session and before.text. */
bt_session *bt_populated_log(baton_pool *pool, baton_durability durability, char *dir, size_t cap,
                             bt_dump *before);

#endif /* BT_SUPPORT_SPACE_DURABLE_H */
