/*
 * mutex_space.h — the two lock-based tuplespaces `baton-bench space` compares baton's space with:
 * the designs that scale badly, written plainly and kept correct.
 *
 *   MS_GLOBAL_MUTEX   one pthread mutex around everything: the channel table and every channel.
 *   MS_CHANNEL_MUTEX  a hash table of channels behind a table mutex (taken only to find or create
 *                     a channel; channels live until the space is destroyed), each channel with
 *                     its own mutex. An operation locks every channel it touches in one global
 *                     order (by address), so joins over overlapping channels never deadlock.
 *
 * Semantics: those of baton's space (include/baton/space.h) for what the benchmarks use. A
 * channel is any value, keyed by its canonical encoding; its data are kept oldest first, its
 * waiting consumers oldest first. A consume over n channels (n > 1: a join) takes, on each
 * channel, the oldest datum that its pattern matches (baton_pattern_match on the datum's view, so
 * matching costs what it costs in baton) and fires once every channel has one; otherwise it waits
 * on all of them. A produce stores its datum and offers it to the channel's waiting consumers,
 * oldest first, until one takes it (a join is fired only when all of its channels have a matching
 * datum; it takes the oldest on each). Firing removes the data and the consumer; the continuation
 * is then called after every lock is released, directly on the calling thread (so a continuation
 * that produces or consumes recurses). Not supported: persistent data and consumers, peeking,
 * bodies, the log.
 *
 * Thread-safe: any number of threads may produce and consume at once, also from continuations.
 */
#ifndef BATON_BENCH_MUTEX_SPACE_H
#define BATON_BENCH_MUTEX_SPACE_H

#include <stddef.h>

#include "baton/space.h"

typedef enum ms_locking {
    MS_GLOBAL_MUTEX,
    MS_CHANNEL_MUTEX,
} ms_locking;

typedef struct ms_space ms_space;

/* Returns 0, or BATON_ENOMEM / BATON_EINVAL (NULL out, unknown locking). */
int ms_space_create(ms_locking locking, ms_space **out);
/* Frees everything, waiting consumers included (their continuations never run). NULL is
 * ignored. Nothing may be in flight. */
void ms_space_destroy(ms_space *space);

/* Stores a copy of datum on channel (views need live during the call only). 0, BATON_EINVAL (a
 * NULL space or an empty view) or BATON_ENOMEM. */
int ms_space_produce(ms_space *space, baton_value_view channel, baton_value_view datum);

/* Waits for one datum on each of channels[0..n) matching patterns[i] (borrowed until the consumer
 * fired), then calls fn(ctx, match) (the match as baton's: data and bindings in the caller's
 * channel order). 0, BATON_EINVAL (NULL argument, n == 0, a channel listed twice) or
 * BATON_ENOMEM. */
int ms_space_consume(ms_space *space, const baton_value_view *channels,
                     baton_pattern *const *patterns, size_t n, baton_continuation_fn fn,
                     void *ctx);

/* The first non-zero value a continuation returned (0: none), cleared. */
int ms_space_take_error(ms_space *space);

/* Stored data and waiting consumers over all channels. Call it with nothing in flight. */
void ms_space_counts(ms_space *space, size_t *data, size_t *consumers);

#endif /* BATON_BENCH_MUTEX_SPACE_H */
