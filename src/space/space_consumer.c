/*
 * space_consumer.c — a consumer's one block: made for a consume (or by replay) and freed.
 *
 * DESIGN
 *  - A join may have any number of channels. Everything a consumer needs per channel (its
 *    registration, its sorted channel, pattern and caller's index, a scratch slot for the datum a
 *    climb finds, its channel's log clock) lives in one allocation made with the consumer, so
 *    that firing it, whatever its width, allocates nothing sized by the width but the copy of
 *    its data that every firing makes, and its records (FIRE, SEEN) order by clocks it already
 *    holds. Nothing bounds the width but memory: a count whose block size_t cannot hold is
 *    refused before the caller's arrays are read.
 *  - The channels are sorted by (hash, encoding), the global order joins climb in (space.c
 *    DESIGN); a sort of (channel, caller's index) pairs (insertion for a few, qsort for a
 *    wide join), so a channel listed twice is found next to itself and reported at its later
 *    listing. The pairs of a wide join come from the heap:
 *    this runs when a consumer is made, not when it fires.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "space/space_impl.h"

/* A consumer's bytes per channel: everything a join of any width needs per channel lives in the
 * consumer's one block, allocated when it is made (a consume, or replay), never when it fires. */
#define SP_CONSUMER_PER_CHANNEL                                                                    \
    (sizeof(sp_reg) + sizeof(sp_channel *) + sizeof(baton_pattern *) + sizeof(size_t) +            \
     sizeof(sp_datum *) + sizeof(uint64_t *))

bool baton__space_consumer_fits(size_t n)
{
    return n <= (SIZE_MAX - sizeof(sp_consumer)) / SP_CONSUMER_PER_CHANNEL;
}


#define SP_SORT_INLINE 16u

/* nil's encoding (0x00), the body every plain consume has. */
static const uint8_t sp_nil_body[1] = {0x00};

static int by_channel_then_index(const void *a, const void *b)
{
    const sp_sort_entry *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    if (x->ch != y->ch)
        return baton__space_channel_cmp(x->hash, x->ch->enc, x->ch->size, y->ch);
    return x->index < y->index ? -1 : x->index > y->index;
}

int baton__space_channels_sorted(baton_space *space, const baton_value_view *channels, size_t n,
                                 sp_sort_entry *entries, size_t *twice)
{
    for (size_t i = 0; i < n; i++) {
        sp_channel *ch = baton__space_channel_get(space, channels[i], true);
        if (ch == NULL)
            return BATON_ENOMEM;
        entries[i] = (sp_sort_entry){ch, ch->hash, i};
    }
    if (n > SP_SORT_INLINE) {
        qsort(entries, n, sizeof *entries, by_channel_then_index);
    } else {
        /* A few channels: an insertion sort, without qsort's call per comparison. */
        for (size_t i = 1; i < n; i++) {
            sp_sort_entry e = entries[i];
            size_t j = i;
            while (j > 0 && by_channel_then_index(&entries[j - 1], &e) > 0) {
                entries[j] = entries[j - 1];
                j--;
            }
            entries[j] = e;
        }
    }
    *twice = SIZE_MAX;
    for (size_t j = 1; j < n; j++)
        if (entries[j - 1].ch == entries[j].ch && entries[j].index < *twice)
            *twice = entries[j].index;
    return 0;
}

int baton__space_consumer_new(baton_space *space, const char *who, const baton_value_view *channels,
                              baton_pattern *const *patterns, size_t n, unsigned flags,
                              baton_value_view body, sp_consumer **out)
{
    sp_consumer *k = baton__space_consumer_fits(n)
                         ? baton__space_alloc(space, sizeof *k + n * SP_CONSUMER_PER_CHANNEL)
                         : NULL;
    if (k == NULL)
        return baton__error(BATON_ENOMEM, "%s: out of memory for a consumer of %zu channels", who,
                            n);
    /* Every field of the header is written here, one by one, rather than zeroed first: a
     * memset of the header compiled to `rep stos`, whose start-up cost was half of this
     * function's time in a produce/consume pair. consumer_new writes every per-channel slot below
     * (a scratch slot is written by a climb before it is read). */
    k->space = space;
    k->id = 0;
    k->fn = NULL;
    k->ctx = NULL;
    atomic_init(&k->refs, 0);
    k->registered = false;
    k->owns_patterns = false;
    k->stamp = 0;
    k->free_next = NULL;
    k->reg_record = NULL;
    k->reg_size = 0;
    k->body = (baton_value_view){NULL, 0};
    k->body_bytes = NULL;
    k->regs = (sp_reg *)(k + 1);
    k->chans = (sp_channel **)(k->regs + n);
    k->pats = (const baton_pattern **)(k->chans + n);
    k->caller_index = (size_t *)(k->pats + n);
    k->scratch = (sp_datum **)(k->caller_index + n);
    k->clocks = (uint64_t **)(k->scratch + n);
    k->n = n;
    k->flags = flags;
    if (body.size == 1 && body.data[0] == sp_nil_body[0]) {
        /* The usual body (a plain consume's): nothing to copy or free. */
        k->body = (baton_value_view){sp_nil_body, 1};
    } else if (body.size > 0) {
        k->body_bytes = baton__malloc(body.size);
        if (k->body_bytes == NULL) {
            baton__space_release(space, k, sizeof *k + n * SP_CONSUMER_PER_CHANNEL);
            return baton__error(BATON_ENOMEM, "%s: out of memory", who);
        }
        memcpy(k->body_bytes, body.data, body.size);
        k->body = (baton_value_view){k->body_bytes, body.size};
    }
    /* The caller's channels sorted by (hash, encoding), the order joins climb in. A wide join's
     * sort entries come from the heap: this runs when a consumer is made, not when it fires. */
    sp_sort_entry inline_entries[SP_SORT_INLINE];
    sp_sort_entry *entries =
        n <= SP_SORT_INLINE ? inline_entries : baton__malloc(n * sizeof *entries);
    if (entries == NULL) {
        baton__space_consumer_free(k);
        return baton__error(BATON_ENOMEM, "%s: out of memory for a consumer of %zu channels", who,
                            n);
    }
    size_t twice = SIZE_MAX;
    if (baton__space_channels_sorted(space, channels, n, entries, &twice) != 0) {
        if (entries != inline_entries)
            baton__free(entries);
        baton__space_consumer_free(k);
        return BATON_ENOMEM;
    }
    for (size_t j = 0; j < n; j++) {
        k->chans[j] = entries[j].ch;
        k->pats[j] = patterns[entries[j].index];
        k->caller_index[j] = entries[j].index;
    }
    if (entries != inline_entries)
        baton__free(entries);
    if (twice != SIZE_MAX) {
        baton__space_consumer_free(k);
        return baton__error(BATON_EINVAL, "%s: channel %zu is listed twice", who, twice);
    }
    for (size_t i = 0; i < n; i++) {
        k->regs[i].consumer = k;
        k->regs[i].pos = i;
        k->clocks[i] = &k->chans[i]->log_clock;
    }
    *out = k;
    return 0;
}

void baton__space_consumer_free(sp_consumer *k)
{
    if (k->owns_patterns)
        for (size_t i = 0; i < k->n; i++)
            baton_pattern_destroy((baton_pattern *)k->pats[i]);
    baton__free(k->reg_record);
    baton__free(k->body_bytes);
    baton__space_release(k->space, k, sizeof *k + k->n * SP_CONSUMER_PER_CHANNEL);
}

void baton__space_consumer_unref(sp_consumer *k)
{
    /* The last reference needs no read-modify-write: new references are made only by holders of
     * one (a registration makes a record's), so a count of 1 read by a holder is its own, and
     * nothing can raise it. Acquire: pairs with the other holders' acq_rel decrements, so their
     * uses of k happen before the free. */
    if (atomic_load_explicit(&k->refs, memory_order_acquire) == 1) {
        baton__space_consumer_free(k);
        return;
    }
    /* acq_rel: release publishes this thread's use of k; acquire, for the last one, makes every
     * other user's accesses happen before the free. */
    if (baton__fetch_sub_acq_rel(&k->refs, 1) == 1)
        baton__space_consumer_free(k);
}

void baton__space_unregister(sp_consumer *k)
{
    for (size_t i = 0; i < k->n; i++)
        baton__space_reg_remove(k->chans[i], &k->regs[i]);
    k->registered = false;
    baton__space_consumer_unref(k); /* the alive reference */
}
