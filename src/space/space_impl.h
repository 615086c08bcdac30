/*
 * space_impl.h — what the files of the space core share (internal): channels, data, consumers,
 * the space itself, and the functions that cross files, in one section per file that defines
 * them (each file's DESIGN block explains it):
 *
 *   space.c          produce, consume, the calls that run them, quiescence (and the DESIGN of
 *                    chains and joins)
 *   space_chain.c    each channel's chain and the records its owner runs: climbs, settling
 *   space_lifecycle.c a space in memory made and destroyed, its fresh names
 *   space_table.c    the lock-free channel table, and each channel's lists
 *   space_consumer.c a consumer's one block (any width): made, its channels sorted, freed
 *   space_fire.c     firings and the continuations they run (SYNC: once their record is durable)
 *   space_log.c      the records of changes, written by the core while it holds the channels
 *   space_durable.c  open, quiesce and compaction, sync, visit and stats: the top
 *   space_recover.c  replaying a log into a space, and the turns it owes
 *   space_seen.c     the set of (consumer, datum) pairs recovery keeps
 *   space_mem.c      the blocks of per-operation records, kept per thread for reuse
 *   space_lock.c     one space per directory (its lock), and the open's crash points
 *
 * Calls go one way, top down: space_durable.c calls every file below it; space_lifecycle.c
 * calls space_table.c, space_consumer.c, space_seen.c, space_lock.c and space_mem.c; space.c calls
 * space_chain.c and the files space_chain.c calls: space_fire.c, space_log.c, space_consumer.c,
 * space_table.c, space_seen.c, space_lock.c and space_mem.c; space_recover.c calls
 * space_consumer.c, space_table.c and space_seen.c; space_consumer.c calls space_table.c and space_mem.c; space_table.c and space_fire.c call
 * space_mem.c, which calls none of them. No file calls one above it (scripts/check-file-cycles
 * finds pairs that do).
 */
#ifndef BATON_SPACE_IMPL_H
#define BATON_SPACE_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/queue.h"
#include "baton/space.h"
#include "core/waitpoint.h"
#include "space/wal.h"

/* The space's thread-locals are read on every operation, so they use the initial-exec TLS model
 * as the pool's do (pool/internal.h explains it): a direct %fs-relative access instead of a call
 * to __tls_get_addr, which position-independent code would otherwise make (it showed in the
 * profile of a produce/consume pair). */
#if defined(__GNUC__) || defined(__clang__)
#define SP_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define SP_TLS _Thread_local
#endif

typedef struct sp_channel sp_channel;
typedef struct sp_consumer sp_consumer;
typedef struct sp_mem sp_mem;

typedef struct sp_datum {
    struct sp_datum *prev, *next;
    uint64_t id;
    bool persistent;
    size_t size;
    uint8_t bytes[];
} sp_datum;

typedef struct sp_reg {
    struct sp_reg *prev, *next;
    sp_consumer *consumer;
    size_t pos;   /* index into the consumer's sorted channels */
    uint64_t seq; /* the channel's registration sequence number */
} sp_reg;

struct sp_consumer {
    baton_space *space; /* its block goes back to the space's lists (space_mem.c) */
    uint64_t id;
    size_t n;
    unsigned flags;
    baton_continuation_fn fn;
    void *ctx;
    _Atomic size_t refs;
    bool registered;
    bool owns_patterns;     /* recovered from the log: the space parsed them */
    uint64_t stamp;         /* registration order across the space  */
    sp_consumer *free_next; /* destroy's list */
    uint8_t *reg_record;    /* the REG record once logged (baton__space_log_reg); NULL before */
    size_t reg_size;
    baton_value_view body;  /* points into body_bytes */
    sp_reg *regs;           /* per sorted position */
    sp_channel **chans;     /* sorted by (hash, encoding) */
    const baton_pattern **pats;
    size_t *caller_index;
    sp_datum **scratch;
    uint64_t **clocks; /* per sorted position: &chans[i]->log_clock, what its records order by */
    uint8_t *body_bytes;
};

/* Three cache lines, by who touches them: what every lookup and push reads (set once), the
 * chain's count (every push and release writes it, from any thread), and the owner's state. A
 * contended channel's pushers then do not take the owner's lists' line from it on each push, and
 * lookups of the channel from other threads do not miss on the owner's writes. */
struct sp_channel {
    baton_space *space; /* its data's blocks go back to the space's lists (space_mem.c) */
    uint64_t hash;
    size_t size;
    uint8_t *enc;
    sp_channel *_Atomic collide_next; /* channels with the same 64-bit hash */
    baton_mpsc_linked *queue;
    BATON_CACHELINE_ALIGNED _Atomic size_t pending;
    BATON_CACHELINE_ALIGNED struct sp_op *direct; /* the record that claimed the idle channel
                                                   * (owner only; space.c) */
    sp_channel *work_next;
    sp_datum *data_head, *data_tail;
    sp_reg *reg_head, *reg_tail;
    uint64_t reg_seq;
    uint64_t log_clock; /* the log's ordering clock for this channel (wal.h); owner only */
    /* Written by the owner only (relaxed stores), read by stats at any time. */
    _Atomic size_t n_data;
    _Atomic size_t n_regs;
};

/* A set of (consumer id, datum id) pairs, ids > 0 (space_seen.c). */
typedef struct sp_pairs {
    uint64_t *keys; /* 2 per slot */
    size_t cap;     /* slots, a power of two (0: none yet) */
    size_t n;       /* pairs */
    size_t used;    /* slots holding a pair or a removed mark */
} sp_pairs;

/* The table: a hash trie of 64-way nodes (space_table.c). */
typedef struct sp_table_node sp_table_node;

/* A thread's count of its outside calls (see space.c, DESIGN: Quiescence): kept with its blocks
 * (space_mem.c), written only by that thread. */
typedef struct sp_call_slot {
    _Atomic uint64_t began;
    _Atomic uint64_t ended;
} sp_call_slot;

struct baton_space {
    baton_pool *pool;
    sp_table_node *table;
    _Atomic uint64_t next_name;
    _Atomic uint64_t next_consumer;
    _Atomic uint64_t next_datum;
    _Atomic uint64_t next_stamp;
    uint64_t serial; /* tells this space's thread-local ids and cached channels from another's */
    _Atomic int first_error;
    _Atomic int paused; /* compaction holds new outside calls back */
    baton__waitpoint idle; /* quiesce and compaction sleep here */
    /* The calls of threads that could not get their own counters (memory was short): shared, so
     * counted with read-modify-writes. */
    BATON_CACHELINE_ALIGNED sp_call_slot shared_calls;

    /* Durability (space_durable.c); log is NULL for a space in memory or a read-only view. */
    baton__wal *log;
    baton_durability durability;
    uint64_t compact_records;
    uint64_t snapshot_records; /* records the last snapshot wrote */
    uint64_t snapshot_seq;     /* the sequence number of its SNAP */
    _Atomic uint64_t compactions;
    uint64_t recovered_data, recovered_consumers;
    /* While baton_space_open settles what recovery restored: the turns the log's tail left
     * untaken, (persistent consumer, stored datum) pairs that fire without taking anything
     * (space_recover.c). Read-only during that settling; empty otherwise. */
    sp_pairs owed;
    /* The directory's lock (space_lock.c): a descriptor holding an OFD lock, or -1. */
    int dir_lock;
    /* The registry of every thread's kept blocks of records (space_mem.c). */
    sp_mem *_Atomic mem;
};


/* ---- operations, firings and calls (space.c, space_fire.c) ---- */

typedef enum { OP_PRODUCE, OP_SETTLE, OP_CONSUME, OP_REEVAL } sp_op_kind;

/* What an outside SYNC call waits for besides its continuations: the record of its change. */
typedef struct sp_root sp_root;

typedef struct sp_op {
    baton_mpsc_node node;
    sp_op_kind kind;
    size_t step;
    sp_consumer *consumer; /* CONSUME, REEVAL */
    sp_channel *channel;   /* SETTLE, REEVAL: the datum's channel */
    sp_datum *datum;       /* PRODUCE: owned until stored */
    uint64_t datum_id;     /* SETTLE, REEVAL */
    uint64_t after_seq;    /* SETTLE, REEVAL */
    sp_root *root;         /* PRODUCE, CONSUME of an outside SYNC call: gets the record's seq */
    bool recovery;         /* SETTLE, REEVAL of the open's settling: fires only owed turns */
    bool on_stack;         /* in its call's frame, not a block (space.c: call_run) */
} sp_op;

typedef struct sp_fire {
    struct sp_fire *next;
    baton_space *space;
    baton_scope *scope;
    sp_root *root;
    uint64_t seq; /* the FIRE record's sequence number (0: none) */
    size_t size;  /* of this block, for baton__space_release */
    baton_continuation_fn fn;
    void *ctx;
    baton_match match;
} sp_fire;

struct sp_root {
    baton_space *space;
    baton_scope *scope;
    sp_fire *_Atomic deferred; /* firings waiting for their record to be durable (a stack) */
    _Atomic size_t running;    /* firings spawned into the scope and not finished */
    _Atomic uint64_t ack;      /* the seq of the call's own record, once written */
    _Atomic int acked;
    sp_fire *held;             /* the body's own list of deferred firings */
};

/* One public call's bookkeeping: the channels it owns and must run, the firings it collected. */
typedef struct sp_call {
    baton_space *space;
    sp_channel *work;
    sp_fire *fires;
    /* Whether the call's root (its sp_root, in its frame) is initialised: only a SYNC call's
     * is from the start, others' only once a dispatch runs a scope (sp_root_init). */
    bool root_ready;
} sp_call;

static inline void sp_root_init(sp_root *root, baton_space *space)
{
    *root = (sp_root){.space = space};
    atomic_init(&root->deferred, NULL);
    atomic_init(&root->running, 0);
    atomic_init(&root->ack, 0);
    atomic_init(&root->acked, 0);
}

/* ---- space_lifecycle.c ---- */

/* A space in memory, checked and allocated; who names the public function for messages. */
int baton__space_new(const baton_space_config *config, const char *who, baton_space **out);

/* ---- space_chain.c: chains and the records their owners run, used by space.c's calls ---- */

/* Appends op to ch's chain: an idle channel is claimed (the record waits in `direct`), a busy
 * one gets the record on its queue; a channel that becomes the call's goes on its work list. */
void baton__space_push_op(sp_call *call, sp_channel *ch, sp_op *op);
/* Lets a channel the call owns go; one that has records left stays the call's (work list). */
void baton__space_release_channel(sp_call *call, sp_channel *ch);
/* A zeroed record of that kind from the calling thread's blocks (NULL, error recorded, when
 * memory is short). */
sp_op *baton__space_op_new(sp_call *call, sp_op_kind kind);
/* Runs the chains the call owns until none is left, dispatching firings as it goes. */
void baton__space_run_work(sp_call *call, sp_root *root);

/* ---- space.c: the calls (counting, quiescence) and the core's API, used by recovery and
 * compaction ---- */

/* Pushes a SETTLE of every stored datum of every channel and runs the chains (after recovery):
 * what would take something fires; a turn that would take nothing (a persistent consumer over a
 * persistent datum, a persistent peek) fires only when space->owed holds it. */
int baton__space_settle_all(baton_space *space);
/* Waits until no outside call is in flight (quiesce). */
void baton__space_wait_calls(baton_space *space);
/* Holds new outside calls back and waits until none is in flight; resume lets them go on. */
void baton__space_pause(baton_space *space);
void baton__space_resume(baton_space *space);

/* ---- space_table.c: the channel table and each channel's lists (its owner's) ---- */

int baton__space_table_create(sp_table_node **out);
/* Calls fn on every channel (in no particular order), then frees the table (not the channels). */
void baton__space_table_destroy(sp_table_node *table, void (*fn)(sp_channel *ch, void *ctx),
                                void *ctx);
/* Calls fn on every channel; stops at and returns fn's first non-zero result. Channels are only
 * ever added, so a walk concurrent with additions sees every channel added before it started. */
int baton__space_table_walk(sp_table_node *table, int (*fn)(sp_channel *ch, void *ctx), void *ctx);
/* Finds the channel whose encoding is v's; with create, adds it when missing. NULL when it is
 * missing and create is false, or on allocation failure (error set). Lock-free, any thread. */
sp_channel *baton__space_channel_get(baton_space *space, baton_value_view v, bool create);
/* Orders channels by (hash, encoding): the global order joins climb in. */
int baton__space_channel_cmp(uint64_t hash, const uint8_t *enc, size_t size, const sp_channel *ch);
/* The channel's lists, changed only by its owner: a datum appended, removed (and freed); a
 * registration appended (numbered by the channel's registration sequence), removed. */
void baton__space_data_append(sp_channel *ch, sp_datum *d);
void baton__space_data_remove(sp_channel *ch, sp_datum *d);
void baton__space_reg_append(sp_channel *ch, sp_reg *r);
void baton__space_reg_remove(sp_channel *ch, sp_reg *r);

/* ---- space_consumer.c: a consumer's block and its lifetime ---- */

/* Whether a consumer of n channels has a size that size_t can hold (consume refuses others with
 * BATON_ENOMEM before it reads the caller's arrays). */
bool baton__space_consumer_fits(size_t n);
/* Allocates a consumer over n channels, sorted into the global order; the patterns are borrowed
 * (or owned, when owns_patterns is set afterwards). Errors: BATON_EINVAL (the same channel twice;
 * message names who), BATON_ENOMEM. */
int baton__space_consumer_new(baton_space *space, const char *who, const baton_value_view *channels,
                              baton_pattern *const *patterns, size_t n, unsigned flags,
                              baton_value_view body, sp_consumer **out);
/* Frees k's block, its body, its REG record and, when it owns them, its patterns. */
void baton__space_consumer_free(sp_consumer *k);
/* Drops a reference to k; the last one frees it. */
void baton__space_consumer_unref(sp_consumer *k);
/* Removes k's registrations from all its channels (held by the caller) and drops its alive
 * reference. */
void baton__space_unregister(sp_consumer *k);

/* A channel of a consume and its place in the caller's list (space_consumer.c sorts them). */
typedef struct sp_sort_entry {
    sp_channel *ch;
    uint64_t hash; /* ch's, copied: most comparisons end on it, without a load through ch */
    size_t index;
} sp_sort_entry;
/* The n channels of a consume, found (made when new) and sorted by (hash, encoding), the order
 * joins climb in, then by the caller's index: entries[j] = (channel, hash, caller's index).
 * *twice: the first later-listed index of a channel listed twice (SIZE_MAX: none). Returns 0, or
 * BATON_ENOMEM (a channel could not be made). */
int baton__space_channels_sorted(baton_space *space, const baton_value_view *channels, size_t n,
                                 sp_sort_entry *entries, size_t *twice);

/* ---- space_fire.c: firings and the continuations they run ---- */

/* Whether the calling thread is running a continuation of this space / of any space. */
bool baton__space_in_continuation(const baton_space *space);
bool baton__space_in_any_continuation(void);
/* Tells an outside SYNC call which record holds its change (0: none could be written). */
void baton__space_ack(baton_space *space, sp_root *root, uint64_t seq);
/* Collects a firing of k on found[] into the call (its data copied), to run at the call's end. */
void baton__space_fire_collect(sp_call *call, sp_consumer *k, sp_datum *const *found, uint64_t seq);
/* The same for a consume that has no consumer block: n channels in climbing order, their
 * patterns, the caller's index of each, and the continuation. */
void baton__space_fire_collect_with(sp_call *call, size_t n, const baton_pattern *const *pats,
                                    const size_t *caller_index, baton_continuation_fn fn,
                                    void *ctx, sp_datum *const *found, uint64_t seq);
/* Runs the call's firings: into the running continuation's scope, or under a new root. */
void baton__space_dispatch(sp_call *call, sp_root *root, bool need_ack);

/* ---- space_log.c: the records of changes, called by the core while it holds the channels ---- */

/* Appends a record that touches the channels whose log clocks are *clocks[0..n) (all held by the
 * caller) to the space's log; returns its ticket (durable once baton__wal_durable reaches it), 0
 * without a log or on failure (the error is recorded for quiesce). */
uint64_t baton__space_log(baton_space *space, const uint8_t *record, size_t size,
                          uint64_t *const *clocks, size_t n);
/* Encodes the PUT of datum d on ch into stack (cap bytes) or, when it is longer, a heap buffer
 * (the caller frees it when it is not stack); *size gets its length. NULL when memory is short
 * (error set, naming who). */
uint8_t *baton__space_encode_put(const sp_channel *ch, const sp_datum *d, uint8_t *stack,
                                 size_t cap, size_t *size, const char *who);
/* Logs the PUT of datum d, just stored on ch (held by the caller), encoded here from the two:
 * a produce whose datum a waiting consumer takes at once is never encoded. Returns the ticket,
 * 0 without a log or on failure (recorded for quiesce, as baton__space_log). */
uint64_t baton__space_log_put(baton_space *space, sp_channel *ch, const sp_datum *d);
/* Encodes consumer k's REG into a fresh heap buffer *out (*out_size bytes). Errors:
 * BATON_ENOMEM (message names who). */
int baton__space_encode_reg(sp_consumer *k, const char *who, uint8_t **out, size_t *out_size);
/* Logs consumer k's registration: its REG record, encoded on the first call and kept in
 * k->reg_record (compaction writes it again). Only a consumer that waits is ever encoded: one
 * that fires at once costs its FIRE record alone. Returns the ticket, 0 without a log or on
 * failure (recorded for quiesce, as baton__space_log). */
uint64_t baton__space_log_reg(baton_space *space, sp_consumer *k);
/* Logs SEEN: persistent consumer k took its turn at datum_id, stored on one of its channels,
 * and left both in place; the record is ordered by all of k's channels (held by the caller, as
 * its FIRE would be), whatever k's width. Returns the ticket as baton__space_log. */
uint64_t baton__space_log_seen(baton_space *space, const sp_consumer *k, uint64_t datum_id);
/* Writes the FIRE record of k matching found[i] at its sorted channel i; removed: k is gone.
 * The record names found[i] when k takes it (neither k peeks nor the datum is persistent) and,
 * with logged false, only then if its PUT is in the log: a datum taken as it is produced is never
 * logged, so its FIRE names id 0. Returns the record's seq. */
uint64_t baton__space_log_fire(baton_space *space, sp_consumer *k, sp_datum *const *found,
                               bool removed, bool logged);
/* The FIRE of a plain consume taken at once (space.c: Consume at once), which has no consumer
 * block: its id, its n channels in climbing order with their log clocks (clocks[i] is
 * &chans[i]->log_clock), the stored data it takes (persistent ones stay). The record is the one
 * baton__space_log_fire writes for a plain consumer that fires on its first look. */
uint64_t baton__space_log_fire_at_once(baton_space *space, uint64_t consumer_id, size_t n,
                                       sp_channel *const *chans, sp_datum *const *found,
                                       uint64_t *const *clocks);

/* ---- space_durable.c: the top, driving the core ----
 * Defines only public functions (baton_space_open, _quiesce, _compact, _sync, _get_stats,
 * _visit); nothing in the layer calls into it. */

/* ---- space_recover.c ---- */

/* Replays the log in dir into space (fresh, empty), revives its consumers and leaves the turns
 * the log owes in space->owed; *salvaged tells that the log was damaged and what came before the
 * damage was recovered (the damaged file is moved aside: a fresh log must start). Errors: as
 * baton_space_open's, who prefixes the message. */
int baton__space_recover(baton_space *space, const baton_space_config *config, const char *dir,
                         const char *who, bool *salvaged);

/* ---- space_lock.c (also baton__test_crash_point, declared in wal.h) ---- */

/* Locks directory dir for one space (DIR/space.lock; shared: a read-only view) into *fd (-1 when
 * a view goes without). Errors: BATON_EBUSY (held by another space, of this process or another;
 * the message names dir), BATON_EIO, BATON_EINVAL; who prefixes the message. */
int baton__space_dir_lock(const char *who, const char *dir, bool shared, int *fd);
/* Lets the directory go (fd -1: nothing to do). */
void baton__space_dir_unlock(int fd);

/* ---- space_mem.c: the blocks of per-operation records ---- */

/* Frees every thread's lists and the blocks they keep (the space is being destroyed). */
void baton__space_mem_destroy(baton_space *space);
/* A block of at least size bytes: from the calling thread's list when it has one, else the heap
 * (NULL when memory is short; no message set). */
void *baton__space_alloc(baton_space *space, size_t size);
/* Gives back a block of baton__space_alloc(space, size), with the same size. NULL is ignored. */
void baton__space_release(baton_space *space, void *p, size_t size);
/* The calling thread's call counters in space, written by this thread alone (made with its lists
 * on its first use); NULL when memory is short. */
sp_call_slot *baton__space_my_calls(baton_space *space);
/* The sum of every thread's `ended` (ended: true) or `began` counters, each read with acquire
 * (pairs with the release store that ends a call). */
uint64_t baton__space_calls_sum(baton_space *space, bool ended);

/* ---- space_seen.c ---- */

/* Adds (a, b) (BATON_ENOMEM, message set); removes it (whether it was there); looks it up. */
int baton__space_pairs_add(sp_pairs *s, uint64_t a, uint64_t b);
bool baton__space_pairs_remove(sp_pairs *s, uint64_t a, uint64_t b);
bool baton__space_pairs_has(const sp_pairs *s, uint64_t a, uint64_t b);
void baton__space_pairs_free(sp_pairs *s);

/* ---- this header: inline helpers on the types above ---- */

/* Keeps the first error of the space's calls and continuations for quiesce to report. Relaxed is
 * enough: quiesce reads it after the acquire of the call counters. */
static inline void sp_record_error(baton_space *space, int rc)
{
    int expected = 0;
    atomic_compare_exchange_strong_explicit(&space->first_error, &expected, rc,
                                            memory_order_relaxed, memory_order_relaxed);
}
/* SYNC: an outside call waits for its record, continuations for their firing's. */
static inline bool sp_space_sync(const baton_space *space)
{
    return space->log != NULL && space->durability == BATON_DURABILITY_SYNC;
}
/* Whether the open's settling owes k a turn at the datum (see baton_space.owed). */
static inline bool sp_owed(const baton_space *space, const sp_consumer *k, uint64_t datum_id)
{
    return baton__space_pairs_has(&space->owed, k->id, datum_id);
}

#endif /* BATON_SPACE_IMPL_H */
