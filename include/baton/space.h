/*
 * baton/space.h — the space layer: a tuplespace of channels where data and waiting consumers meet
 * by pattern matching. This part of the header defines the values that travel through it and the
 * patterns that select them; the space itself (channels, produce, consume, joins, the log) builds
 * on them.
 *
 * Values. nil, booleans, 64-bit integers, strings (UTF-8 bytes, not checked), byte strings, tuples,
 * lists, and names (unforgeable channel ids: 64-bit numbers that only the space hands out). A
 * value is immutable and is stored as its canonical encoding, one contiguous block: two values are
 * equal exactly when their encodings are equal, the hash of a value is XXH3-64 of its encoding,
 * and the encoding is what the log writes. Parts of a value are read through views
 * (baton_value_view), which point into the value's block and live as long as the value.
 *
 * Canonical encoding (stable: logs written by one version are read by the next). A value is a tag
 * byte followed by its body:
 *     0x00 nil                    (no body)
 *     0x01 false, 0x02 true       (no body)
 *     0x03 int                    8 bytes, big-endian two's complement
 *     0x04 string, 0x05 bytes     a varint length (LEB128, shortest form), then the bytes
 *     0x06 tuple, 0x07 list       a varint count, then that many values
 *     0x08 name                   8 bytes, big-endian
 * A decoder accepts exactly these forms (a varint in a longer form than needed is refused), so
 * every value has one encoding.
 *
 * Text syntax (parser and printer agree: print(parse(t)) is the canonical text of t):
 *     nil   true   false   -42   "a \"quoted\" string\n"   x"00ff10"   @17
 *     ("hello", 42, [1, 2])   ()   (1,)   []
 * Strings take the escapes \" \\ \n \t \r \0 and \xHH; x"..." is a byte string in hex; @N is the
 * name with id N. A 1-tuple is written with a trailing comma, as in Python.
 *
 * Patterns. A pattern is parsed from text once and compiled; matching walks the value's encoding
 * without allocating.
 *     _                 anything
 *     x                 anything, bound to the binder x (a lowercase identifier; a binder may
 *                       appear once per pattern)
 *     42  "hi"  nil ... that value exactly
 *     p | q | r         any of the alternatives (binders inside alternatives are not allowed)
 *     (p, q)  [p, q]    a tuple or list of that many elements, each matching its pattern
 *     Int String Bool Bytes Nil Name Tuple List    any value of that type
 *
 * Threads. Values and patterns are immutable once made: any number of threads may read, print,
 * compare and match them at once. A builder belongs to one thread.
 */
#ifndef BATON_SPACE_H
#define BATON_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baton/core.h"
#include "baton/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum baton_value_kind {
    BATON_VALUE_NIL = 0,
    BATON_VALUE_BOOL = 1,
    BATON_VALUE_INT = 2,
    BATON_VALUE_STRING = 3,
    BATON_VALUE_BYTES = 4,
    BATON_VALUE_TUPLE = 5,
    BATON_VALUE_LIST = 6,
    BATON_VALUE_NAME = 7,
} baton_value_kind;

/* Limits that keep a hostile encoding or text from exhausting the stack or memory. */
#define BATON_VALUE_MAX_DEPTH 64u             /* tuples and lists nested at most this deep */
#define BATON_VALUE_MAX_SIZE (UINT64_C(1) << 30) /* bytes of encoding */

typedef struct baton_value baton_value;

/* A part of a value: a pointer into a value's encoding. Valid while that value lives. */
typedef struct baton_value_view {
    const uint8_t *data;
    size_t size;
} baton_value_view;

/* ---- building ---- */

typedef struct baton_value_builder baton_value_builder;

/* Errors: BATON_EINVAL (NULL out), BATON_ENOMEM. */
BATON_API int baton_value_builder_create(baton_value_builder **out);
/* NULL is ignored. */
BATON_API void baton_value_builder_destroy(baton_value_builder *builder);

/*
 * Each call appends one value (or opens/closes a tuple or list) to the builder. Errors:
 * BATON_EINVAL (NULL builder; NULL data with a non-zero length; end without an open tuple or list;
 * a value after the top-level value is complete), BATON_ERANGE (nesting above
 * BATON_VALUE_MAX_DEPTH, or the encoding above BATON_VALUE_MAX_SIZE), BATON_ENOMEM. After an
 * error the builder keeps what it had before the call.
 */
BATON_API int baton_value_add_nil(baton_value_builder *builder);
BATON_API int baton_value_add_bool(baton_value_builder *builder, bool value);
BATON_API int baton_value_add_int(baton_value_builder *builder, int64_t value);
BATON_API int baton_value_add_string(baton_value_builder *builder, const char *data, size_t size);
BATON_API int baton_value_add_bytes(baton_value_builder *builder, const void *data, size_t size);
BATON_API int baton_value_add_name(baton_value_builder *builder, uint64_t id);
/* Appends a copy of an existing value (or part of one). BATON_EINVAL for a malformed view. */
BATON_API int baton_value_add_view(baton_value_builder *builder, baton_value_view view);
BATON_API int baton_value_begin_tuple(baton_value_builder *builder);
BATON_API int baton_value_begin_list(baton_value_builder *builder);
BATON_API int baton_value_end(baton_value_builder *builder);

/* Makes the value built so far (exactly one complete top-level value) and empties the builder
 * for the next one. Errors: BATON_EINVAL (NULL argument, nothing built, a tuple or list still
 * open), BATON_ENOMEM. */
BATON_API int baton_value_finish(baton_value_builder *builder, baton_value **out);

/* ---- text and encoding ---- */

/*
 * Parses text (size bytes; need not be NUL-terminated) into a value. Errors: BATON_EINVAL with a
 * message giving the byte offset and what was expected ("baton_value_parse: offset 7: expected
 * ',' or ')' after a tuple element, found ']'"), BATON_ERANGE (an integer out of int64, nesting
 * or size limits), BATON_ENOMEM.
 */
BATON_API int baton_value_parse(const char *text, size_t size, baton_value **out);

/*
 * Writes the value's canonical text into buf (capacity bytes, always NUL-terminated when capacity >
 * 0) and its full length (without the NUL) into *length, so a caller can size a second try. Errors:
 * BATON_EINVAL (NULL length; NULL buf with capacity > 0; a malformed view), BATON_ERANGE (the text
 * did not fit: buf holds a truncated prefix).
 */
BATON_API int baton_value_print(baton_value_view value, char *buf, size_t capacity,
                                size_t *length);

/* Decodes a canonical encoding into a value, checking it completely. Errors: BATON_EINVAL (NULL
 * argument, a malformed or non-canonical encoding, trailing bytes: the message says at which
 * offset), BATON_ERANGE (limits), BATON_ENOMEM. */
BATON_API int baton_value_decode(const void *data, size_t size, baton_value **out);

/* The whole value as a view (its encoding). */
BATON_API baton_value_view baton_value_as_view(const baton_value *value);

/* A copy of a view as a value of its own. Errors: BATON_EINVAL (malformed view), BATON_ENOMEM. */
BATON_API int baton_value_from_view(baton_value_view view, baton_value **out);

/* NULL is ignored. */
BATON_API void baton_value_destroy(baton_value *value);

/* ---- reading (views must come from a value or a successful decode) ---- */

BATON_API baton_value_kind baton_view_kind(baton_value_view view);
BATON_API bool baton_view_equal(baton_value_view a, baton_value_view b);
/* XXH3-64 of the encoding. */
BATON_API uint64_t baton_view_hash(baton_value_view view);
/* The scalar inside; 0 / false / an empty view when the kind differs. */
BATON_API bool baton_view_bool(baton_value_view view);
BATON_API int64_t baton_view_int(baton_value_view view);
BATON_API uint64_t baton_view_name(baton_value_view view);
/* STRING and BYTES: the content bytes (not NUL-terminated) and their count. */
BATON_API const uint8_t *baton_view_bytes(baton_value_view view, size_t *size);
/* TUPLE and LIST: the number of elements, and element i (an empty view when out of range). */
BATON_API size_t baton_view_count(baton_value_view view);
BATON_API baton_value_view baton_view_element(baton_value_view view, size_t index);

/* ---- patterns ---- */

typedef struct baton_pattern baton_pattern;

#define BATON_PATTERN_MAX_BINDERS 64u

/*
 * Parses and compiles a pattern. Errors: BATON_EINVAL with the byte offset and what was wrong (a
 * binder used twice, a binder inside an alternative, an unknown type name, a syntax error),
 * BATON_ERANGE (nesting, more than BATON_PATTERN_MAX_BINDERS binders), BATON_ENOMEM.
 */
BATON_API int baton_pattern_parse(const char *text, size_t size, baton_pattern **out);
/* NULL is ignored. */
BATON_API void baton_pattern_destroy(baton_pattern *pattern);

/* The number of binders, and the name of binder i in order of appearance (NULL out of range). */
BATON_API unsigned baton_pattern_binders(const baton_pattern *pattern);
BATON_API const char *baton_pattern_binder_name(const baton_pattern *pattern, unsigned index);

/*
 * Whether value matches pattern. On a match, bindings[i] (an array of baton_pattern_binders()
 * entries; may be NULL when there are none or the caller does not want them) is the part of
 * value bound to binder i. Allocates nothing; any thread.
 */
BATON_API bool baton_pattern_match(const baton_pattern *pattern, baton_value_view value,
                                   baton_value_view *bindings);

/* The pattern's canonical text, like baton_value_print. */
BATON_API int baton_pattern_print(const baton_pattern *pattern, char *buf, size_t capacity,
                                  size_t *length);

/* ---- the space: channels, produce, consume, joins ---- */

/*
 * A tuplespace, in memory or durable (baton_space_open). Data are produced on channels (any value,
 * usually a name); consumers wait on one channel or, for a join, on several, each with a pattern,
 * and fire once every channel has a matching datum: the data are removed (unless persistent or
 * peeked) and the consumer's continuation runs on the space's pool. Oldest matching datum
 * wins for a consumer; oldest matching waiting consumer wins for a produce. A join sees its
 * channels all at once, and joins never deadlock, however they overlap (docs/space.md, Joins).
 * Every function may be called from any thread, also from inside continuations, except
 * create/destroy (one thread, nothing in flight).
 */
typedef struct baton_space baton_space;

/* What a firing consumer receives: per channel, in the order the consume listed them, the
 * datum and the views bound to its pattern's binders (bindings[i][j]: channel i, binder j). */
typedef struct baton_match {
    size_t n_channels;
    const baton_value_view *data;
    const baton_value_view *const *bindings;
} baton_match;

/* A continuation: runs on the space's pool (baton_space_produce says on which thread); may
 * produce and consume. The match and its views are valid during the call only. A non-zero return
 * is remembered and reported by baton_space_quiesce (the first one). */
typedef int (*baton_continuation_fn)(void *ctx, const baton_match *match);

/*
 * Durability of a space opened on a directory (baton_space_open). A space made by
 * baton_space_create keeps nothing.
 *  ASYNC  the default. Every change is appended to the write-ahead log and committed by the
 *         log's writer thread in groups; no call waits on I/O, unless the disk falls so far
 *         behind that the calling thread's lane of the log (4 MiB) is full: then the change
 *         waits for room. Loss window: a crash of the process loses the changes not yet
 *         committed (those in the lanes, gathered for about 1 ms), a crash of the
 *         machine also those committed in the last sync interval (10 ms).
 *  SYNC   as ASYNC, and a produce or consume called from outside a continuation returns only
 *         once the change it made is committed and synced (group commit: concurrent callers
 *         share one sync). Calls made by continuations never wait (a worker never blocks on
 *         I/O); baton_space_sync waits for them.
 *  NONE   replays the directory's log into memory and then writes nothing more: a read-only
 *         view of what the log holds (the files are not modified; dir/space.lock is created
         only when missing).
 */
typedef enum baton_durability {
    BATON_DURABILITY_ASYNC = 0,
    BATON_DURABILITY_SYNC = 1,
    BATON_DURABILITY_NONE = 2,
} baton_durability;

/*
 * Recovery gives a consumer found in the log its continuation back. body is the value the
 * consumer was registered with (baton_space_consume_body; nil for baton_space_consume), consumer_id
 * its id. Store the continuation in *fn and *ctx and return 0; a non-zero return fails the open
 * with that code.
 */
typedef int (*baton_revive_fn)(void *revive_ctx, uint64_t consumer_id, baton_value_view body,
                               baton_continuation_fn *fn, void **ctx);

typedef struct baton_space_config {
    /* sizeof this struct, or 0 for this header's size. A smaller size (a caller built against an
     * older header) leaves the later fields at their defaults, unread; a size larger than this
     * header's, or smaller than sizeof(size_t), is BATON_EINVAL. */
    size_t struct_size;
    baton_pool *pool;   /* runs the continuations; borrowed: must outlive the space */
    /* The fields below matter only to baton_space_open. */
    baton_durability durability;
    /* The most log records committed in one transaction: 0 for the default (4096); 1 commits
     * every change alone (the slow way the benchmarks compare against). */
    size_t log_group_max;
    /* Compaction: once the log holds more than this many records beyond the live state (data
     * and waiting consumers) and more than twice the live state, baton_space_quiesce compacts it.
     * 0 for the default (1 << 20). */
    uint64_t compact_records;
    /* Required when the log holds waiting consumers (see baton_revive_fn). */
    baton_revive_fn revive;
    void *revive_ctx;
    /* A damaged log: false (the default) fails the open with BATON_EIO; true recovers every
     * record before the damage, moves the damaged files aside (data.mdb.damaged-<seq>) and
     * starts a fresh log from the recovered state. Either way the message names the damage. */
    bool salvage;
} baton_space_config;

/* A space in memory only. Errors: BATON_EINVAL (NULL argument or pool, struct_size larger than
 * this header's or smaller than sizeof(size_t)), BATON_ENOMEM. */
BATON_API int baton_space_create(const baton_space_config *config, baton_space **out);

/*
 * Opens the durable space kept in directory dir (created when missing, with a fresh log): replays
 * its log (the last snapshot, then every change after it) to restore the stored data, in their
 * order, and the waiting consumers (by id, with their patterns, flags and bodies; revived through
 * config->revive), then settles what the log's tail left unsettled: a match that would take a datum
 * or end a consumer fires, and a persistent consumer fires at a datum without taking it (persistent
 * over persistent, or a persistent peek) only where the log shows that turn was not yet taken. So
 * reopening restores exactly the state the space had, and a firing recorded in the log never runs
 * again (ASYNC: see its loss window). An open that finds nothing to settle writes nothing to the
 * log (only creating a directory, or a salvage, writes). A crash at any point while a directory is
 * created leaves one that opens, as an empty space. Fresh names, datum and consumer ids continue
 * above those in the log. One space per directory: the space holds a lock on dir (dir/space.lock)
 * until baton_space_destroy, or until its process dies (a child forked meanwhile shares the lock
 * until it exits or execs); read-only views (NONE) share it with each other only. Errors: as
 * baton_space_create, and BATON_EINVAL (NULL dir, unknown durability, log_group_max above 4096,
 * consumers in the log but no revive function), BATON_EIO (the log is damaged and salvage is off,
 * or it cannot be read or written: the message names the file and the record), BATON_EBUSY (dir is
 * open in another space, of this process or another; the message names dir), the revive function's
 * error. On error *out is left as it was.
 */
BATON_API int baton_space_open(const baton_space_config *config, const char *dir,
                               baton_space **out);

/* Frees the space, its stored data and its waiting consumers (their continuations never run);
 * a durable space writes and syncs what it logged, closes its log and releases its directory
 * (a later open of it succeeds). Call it after baton_space_quiesce, with no operation in flight.
 * NULL is ignored. */
BATON_API void baton_space_destroy(baton_space *space);

/* A name id never returned before by this space (an atomic counter starting at 1). Any thread. */
BATON_API uint64_t baton_space_fresh_name(baton_space *space);

/*
 * Puts datum on channel. Both are copied (the views need only live during the call). A
 * persistent datum stays on the channel after it matches. The operation runs on the channel's
 * chain: at once on the calling thread when the channel is idle, else by the thread that owns the
 * channel now, after the operations before it (the call does not wait for that). Where the
 * continuations of the firings a call runs itself run:
 *  - a call from a continuation returns at once, without waiting for its firings' continuations;
 *  - a call from outside continuations on a thread that runs as a worker of the space's pool (a
 *    pool task, or a caller inside baton_scope_run) runs them itself, on that thread, before it
 *    returns, and the firings of the calls they make after them (on the same thread, or as pool
 *    tasks when several wait and a worker is idle); in SYNC mode they are pool tasks, each once
 *    its record is durable;
 *  - a call from any other thread makes each a pool task and returns once they have run.
 * (A call's own firings are those of the operations it ran itself; an operation run by the
 * channel's current owner fires there.)
 * baton_space_quiesce waits for everything. Errors: BATON_EINVAL (NULL space, a malformed view),
 * BATON_ENOMEM.
 */
BATON_API int baton_space_produce(baton_space *space, baton_value_view channel,
                                  baton_value_view datum, bool persistent);

/* Flags for baton_space_consume. */
#define BATON_CONSUME_PERSISTENT 1u /* fires on every match and stays registered */
#define BATON_CONSUME_PEEK 2u       /* reads the matched data without removing them */

/*
 * Waits for one datum on each of channels[0..n) matching patterns[i] (n > 1 is a join), then
 * calls fn(ctx, match) on the pool. Channel views are copied; the patterns are borrowed and must
 * outlive the consumer (until it fired, if not persistent, or until baton_space_destroy). ctx is
 * the caller's. The order in which the channels are listed does not change which data are chosen.
 * *consumer_id (may be NULL) receives the consumer's id. Like produce, it may fire at once.
 * A join may have any number of channels, with the same guarantees at every width (one global
 * order, oldest match first, the log): there is no limit but memory. Errors: BATON_EINVAL (NULL
 * space, channels, patterns or fn; n == 0; a NULL pattern: "pattern I is NULL"; a malformed
 * channel: "channel I is malformed"; the same channel twice: "channel I is listed twice", I the
 * later index; unknown flags), BATON_ENOMEM (also for an n whose consumer could not be addressed:
 * "a join of N channels needs more memory than can be addressed", refused before channels[] and
 * patterns[] are read). On an error nothing is registered, fn never runs and *consumer_id is left
 * as it was.
 */
BATON_API int baton_space_consume(baton_space *space, const baton_value_view *channels,
                                  baton_pattern *const *patterns, size_t n,
                                  baton_continuation_fn fn, void *ctx, unsigned flags,
                                  uint64_t *consumer_id);

/*
 * Waits until no operation and no continuation of the space is in flight (operations started by
 * other threads meanwhile are waited for too). Returns 0 or the first error a continuation
 * returned (or that a firing hit, such as BATON_ENOMEM), and clears it. Do not call it from a
 * continuation (BATON_EPERM). BATON_EINVAL for a NULL space.
 */
BATON_API int baton_space_quiesce(baton_space *space);

/* The numbers of stored data and waiting consumers on channel (0 and 0 for a channel never used).
 * Call it when the space is quiescent. Errors: BATON_EINVAL (NULL space, data or consumers; a
 * malformed channel). */
BATON_API int baton_space_channel_counts(baton_space *space, baton_value_view channel,
                                         size_t *data, size_t *consumers);

/*
 * As baton_space_consume, and body (any value; copied) is kept with the consumer: the log
 * records it, and recovery hands it to the revive function to rebuild the continuation (a
 * script's continuation text, the name of a registered handler...). baton_space_visit reports
 * it. baton_space_consume is this with body nil (as is an empty view). Errors: as
 * baton_space_consume, and BATON_EINVAL for a malformed body ("malformed body").
 */
BATON_API int baton_space_consume_body(baton_space *space, const baton_value_view *channels,
                                       baton_pattern *const *patterns, size_t n,
                                       baton_continuation_fn fn, void *ctx, unsigned flags,
                                       baton_value_view body, uint64_t *consumer_id);

/* A stored datum, as baton_space_visit reports it. */
typedef struct baton_space_datum_info {
    baton_value_view channel;
    baton_value_view datum;
    uint64_t id;
    bool persistent;
} baton_space_datum_info;

/* A waiting consumer, as baton_space_visit reports it: channels and patterns in the order the
 * consume listed them. */
typedef struct baton_space_consumer_info {
    uint64_t id;
    unsigned flags; /* BATON_CONSUME_PERSISTENT, BATON_CONSUME_PEEK */
    size_t n_channels;
    const baton_value_view *channels;
    const baton_pattern *const *patterns;
    baton_value_view body;
} baton_space_consumer_info;

/*
 * Reports every stored datum to on_datum (per channel oldest first; channels in the order of
 * their (hash, encoding)) and then every waiting consumer once to on_consumer (in the order they
 * registered). Either callback may be NULL; a non-zero return stops the visit and is returned.
 * The views are valid during the callback only. Call it when the space is quiescent and no other
 * thread uses it. Errors: BATON_EINVAL (NULL space), BATON_ENOMEM, the callback's return.
 */
BATON_API int baton_space_visit(baton_space *space,
                                int (*on_datum)(void *ctx, const baton_space_datum_info *datum),
                                int (*on_consumer)(void *ctx,
                                                   const baton_space_consumer_info *consumer),
                                void *ctx);

/*
 * Waits until every change logged so far (by any thread, continuations included) is committed
 * and synced. Returns at once for a space without a log. Any thread except a continuation
 * (BATON_EPERM: a worker never blocks on I/O). Errors: BATON_EINVAL, BATON_EIO (the log's
 * writer failed; its message is repeated).
 */
BATON_API int baton_space_sync(baton_space *space);

/*
 * Compacts the log now: waits until no call is in flight (new calls from outside continuations
 * wait meanwhile), appends a snapshot of the live state, syncs it and deletes every record before
 * it. Recovery reads the snapshot and what follows. A crash during compaction leaves the old
 * records and an incomplete snapshot that recovery ignores. Not from a continuation
 * (BATON_EPERM). Returns 0 at once for a space without a log. Errors: BATON_EINVAL, BATON_EPERM,
 * BATON_ENOMEM, BATON_EIO.
 */
BATON_API int baton_space_compact(baton_space *space);

/* Counters of a space. Call it any time; the numbers are a moment's reading. */
typedef struct baton_space_stats {
    size_t data;              /* stored data */
    size_t consumers;         /* waiting consumers */
    uint64_t log_records;     /* records in the log now (0 without a log) */
    uint64_t log_appended;    /* the sequence number of the last record appended (0: none;
                               * numbering goes on across reopens and compactions, so it
                               * compares with log_durable) */
    uint64_t log_durable;     /* the durable mark: the last sequence number committed and synced */
    uint64_t compactions;     /* compactions since the space was opened */
    uint64_t recovered_data;  /* what baton_space_open restored */
    uint64_t recovered_consumers;
    /* CPU time the log's own threads (its writer, which commits, and its syncer, which waits for
     * the disk) have used since the space was opened, in nanoseconds, as of the writer's last
     * batch and the syncer's last sync (0 without a log): what durability costs besides the
     * appends, which run on the calling threads. */
    uint64_t log_writer_cpu_ns;
} baton_space_stats;

/* Errors: BATON_EINVAL (NULL argument). */
BATON_API int baton_space_get_stats(baton_space *space, baton_space_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* BATON_SPACE_H */
