/*
 * space_table.c — channels: the lock-free, insert-only hash trie that finds them, and the lists
 * of data and registrations each holds (changed only by the channel's owner).
 *
 * DESIGN
 *  - Finding a channel is on every operation's path, so it takes no lock. Channels are never
 *    removed before the space is destroyed, which makes an insert-only structure enough: a trie
 *    over the channel's 64-bit hash, 6 bits per level, each node 64 atomic slots. A slot is empty,
 *    a channel, or (low bit set) a child node. Lookup follows slots with acquire loads; an
 *    insert CASes its channel into the empty slot it reached (release, so the channel's fields
 *    are visible to whoever loads the slot). When the slot holds another channel, the inserter
 *    builds a child node holding that channel and CASes the slot from the channel to the child;
 *    whoever loses a CAS re-reads the slot and goes on, so every thread makes progress and no
 *    thread waits for another. Two channels whose 64-bit hashes are equal share one slot and a
 *    list (collide_next), also appended to by CAS.
 *  - No resizing: the trie grows a level where it is crowded, so a million channels are about
 *    four loads deep, and nothing is ever moved, so a reader never sees a half-built table.
 *  - Each thread remembers 16 channels it found (of one space, told apart by its serial), with
 *    their encodings when they are short. A thread that works on a few channels (the usual
 *    produce then consume on one name) finds them by comparing two words, without hashing the
 *    value and walking the trie: hashing and the walk showed as a tenth of a produce/consume
 *    pair's time. The entries are 8 sets of 2, the set picked by a multiply of the two words, so
 *    a lookup compares two entries, not all of them (a scan of 8 was 8% of join3's time, six
 *    lookups per join). The cache holds plain pointers: channels live until their space is
 *    destroyed, and a later space has another serial, so a stale entry never matches.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "space/space_impl.h"

#define SP_FANOUT_BITS 6u
#define SP_FANOUT (1u << SP_FANOUT_BITS)

struct sp_table_node {
    _Atomic uintptr_t slot[SP_FANOUT];
};

static bool is_node(uintptr_t s)
{
    return (s & 1u) != 0;
}

static sp_table_node *as_node(uintptr_t s)
{
    return (sp_table_node *)(s & ~(uintptr_t)1);
}

static unsigned slot_index(uint64_t hash, unsigned shift)
{
    return (unsigned)(hash >> shift) & (SP_FANOUT - 1);
}

int baton__space_table_create(sp_table_node **out)
{
    *out = baton__calloc(1, sizeof **out);
    return *out ? 0 : baton__error(BATON_ENOMEM, "baton_space: out of memory for its table");
}

int baton__space_channel_cmp(uint64_t hash, const uint8_t *enc, size_t size, const sp_channel *ch)
{
    if (hash != ch->hash)
        return hash < ch->hash ? -1 : 1;
    size_t common = size < ch->size ? size : ch->size;
    int c = memcmp(enc, ch->enc, common);
    if (c != 0)
        return c;
    return size == ch->size ? 0 : (size < ch->size ? -1 : 1);
}

static void channel_free(sp_channel *ch)
{
    if (ch == NULL)
        return;
    baton_mpsc_linked_destroy(ch->queue);
    baton__free(ch->enc);
    baton__free(ch);
}

static sp_channel *channel_new(baton_space *space, uint64_t hash, baton_value_view v)
{
    sp_channel *ch = baton__aligned_alloc(BATON_CACHELINE, sizeof *ch);
    if (ch == NULL)
        return NULL;
    memset(ch, 0, sizeof *ch);
    ch->space = space;
    ch->enc = baton__malloc(v.size);
    if (ch->enc == NULL || baton_mpsc_linked_create(&ch->queue) != 0) {
        baton__free(ch->enc);
        baton__free(ch);
        return NULL;
    }
    memcpy(ch->enc, v.data, v.size);
    ch->size = v.size;
    ch->hash = hash;
    atomic_init(&ch->pending, 0);
    atomic_init(&ch->collide_next, NULL);
    atomic_init(&ch->n_data, 0);
    atomic_init(&ch->n_regs, 0);
    return ch;
}

/* Searches the same-hash list that starts at head; with a fresh channel, appends it at the end
 * when v is not there. Returns the channel found or appended. */
static sp_channel *collide_find(sp_channel *head, baton_value_view v, sp_channel *fresh)
{
    sp_channel *ch = head;
    for (;;) {
        if (ch->size == v.size && memcmp(ch->enc, v.data, v.size) == 0)
            return ch;
        /* Acquire: pairs with the release CAS below that linked the next channel. */
        sp_channel *next = atomic_load_explicit(&ch->collide_next, memory_order_acquire);
        if (next != NULL) {
            ch = next;
            continue;
        }
        if (fresh == NULL)
            return NULL;
        sp_channel *expected = NULL;
        /* Release: the fresh channel's fields are visible to whoever follows the link. */
        if (atomic_compare_exchange_strong_explicit(&ch->collide_next, &expected, fresh,
                                                    memory_order_release, memory_order_acquire))
            return fresh;
        ch = expected;
    }
}

/* The per-thread cache of found channels (see DESIGN). An encoding up to SP_CACHE_BYTES long is
 * kept as two words and its size (cache_key), so a lookup compares whole words. */
#define SP_CACHE_SETS 8u
#define SP_CACHE_WAYS 2u
#define SP_CACHE_BYTES 16u

typedef struct sp_cache_entry {
    uint64_t serial; /* the space's; 0: empty */
    size_t size;
    uint64_t words[SP_CACHE_BYTES / 8];
    sp_channel *ch;
} sp_cache_entry;

static SP_TLS struct {
    sp_cache_entry e[SP_CACHE_SETS][SP_CACHE_WAYS];
    uint8_t victim[SP_CACHE_SETS]; /* the way a miss in the set replaces next */
} sp_tls_cache;

static bool cache_key(baton_value_view v, uint64_t words[SP_CACHE_BYTES / 8])
{
    /* Whole-word loads, not a copy of v.size bytes into words: a word read right after bytes
     * were stored into it stalls (the store cannot be forwarded). From 8 to 16 bytes, the first
     * and the last 8 (overlapping) with the size settle the encoding. */
    if (v.size > SP_CACHE_BYTES)
        return false;
    if (v.size >= 8) {
        memcpy(&words[0], v.data, 8);
        memcpy(&words[1], v.data + v.size - 8, 8);
        return true;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < v.size; i++)
        w |= (uint64_t)v.data[i] << (8 * i);
    words[0] = w;
    words[1] = 0;
    return true;
}

/* The set of a key: the top bits of a multiply, which every bit of both words reaches (a name's
 * or an Int's low byte is the last byte of its encoding). */
static unsigned cache_set(size_t size, const uint64_t words[SP_CACHE_BYTES / 8])
{
    uint64_t h = (words[0] ^ (words[1] * UINT64_C(0x9e3779b97f4a7c15)) ^ size) *
                 UINT64_C(0xff51afd7ed558ccd);
    return (unsigned)(h >> 61); /* SP_CACHE_SETS = 8 */
}

static sp_channel *cache_find(const baton_space *space, unsigned set, size_t size,
                              const uint64_t words[SP_CACHE_BYTES / 8])
{
    for (unsigned i = 0; i < SP_CACHE_WAYS; i++) {
        const sp_cache_entry *e = &sp_tls_cache.e[set][i];
        if (e->serial == space->serial && e->size == size && e->words[0] == words[0] &&
            e->words[1] == words[1])
            return e->ch;
    }
    return NULL;
}

static void cache_put(const baton_space *space, unsigned set, size_t size,
                      const uint64_t words[SP_CACHE_BYTES / 8], sp_channel *ch)
{
    unsigned way = sp_tls_cache.victim[set];
    sp_tls_cache.victim[set] = (uint8_t)((way + 1) % SP_CACHE_WAYS);
    sp_cache_entry *e = &sp_tls_cache.e[set][way];
    e->serial = space->serial;
    e->size = size;
    memcpy(e->words, words, SP_CACHE_BYTES);
    e->ch = ch;
}

static sp_channel *channel_lookup(baton_space *space, baton_value_view v, bool create);

/* A cache miss: the trie, then the cache remembers what it found. Out of line, so that a hit
 * saves no registers. */
static __attribute__((noinline)) sp_channel *channel_get_miss(baton_space *space,
                                                              baton_value_view v, bool create)
{
    uint64_t words[SP_CACHE_BYTES / 8];
    sp_channel *ch = channel_lookup(space, v, create);
    if (ch != NULL && cache_key(v, words))
        cache_put(space, cache_set(v.size, words), v.size, words, ch);
    return ch;
}

sp_channel *baton__space_channel_get(baton_space *space, baton_value_view v, bool create)
{
    uint64_t words[SP_CACHE_BYTES / 8];
    if (cache_key(v, words)) {
        sp_channel *ch = cache_find(space, cache_set(v.size, words), v.size, words);
        if (ch != NULL)
            return ch;
    }
    return channel_get_miss(space, v, create);
}

static sp_channel *channel_lookup(baton_space *space, baton_value_view v, bool create)
{
    uint64_t hash = baton_view_hash(v);
    sp_table_node *node = space->table;
    unsigned shift = 0;
    sp_channel *fresh = NULL;
    sp_table_node *spare = NULL; /* a child built for a CAS that failed, kept for the next try */
    for (;;) {
        _Atomic uintptr_t *slot = &node->slot[slot_index(hash, shift)];
        /* Acquire: pairs with the release CASes that stored a channel or a child here. */
        uintptr_t s = atomic_load_explicit(slot, memory_order_acquire);
        if (is_node(s)) {
            node = as_node(s);
            shift += SP_FANOUT_BITS;
            continue;
        }
        sp_channel *found = (sp_channel *)s;
        if (found != NULL && found->hash == hash) {
            if (create && fresh == NULL && collide_find(found, v, NULL) == NULL) {
                fresh = channel_new(space, hash, v);
                if (fresh == NULL)
                    goto nomem;
            }
            sp_channel *ch = collide_find(found, v, create ? fresh : NULL);
            if (ch != fresh)
                channel_free(fresh);
            baton__free(spare);
            return ch;
        }
        if (!create) {
            baton__free(spare);
            return NULL;
        }
        if (fresh == NULL && (fresh = channel_new(space, hash, v)) == NULL)
            goto nomem;
        if (found == NULL) {
            uintptr_t expected = 0;
            /* Release: the channel is fully built before anyone can load it from the slot. */
            if (atomic_compare_exchange_strong_explicit(slot, &expected, (uintptr_t)fresh,
                                                        memory_order_release,
                                                        memory_order_relaxed)) {
                baton__free(spare);
                return fresh;
            }
            continue; /* someone filled the slot: look again */
        }
        /* Another hash holds the slot: push it one level down. Hashes that differ differ in
         * some 6-bit group, so this ends by shift 60. */
        if (spare == NULL && (spare = baton__calloc(1, sizeof *spare)) == NULL)
            goto nomem;
        memset(spare, 0, sizeof *spare);
        atomic_init(&spare->slot[slot_index(found->hash, shift + SP_FANOUT_BITS)], s);
        uintptr_t expected = s;
        /* Release: the child and the channel in it are visible to whoever loads the slot. */
        if (atomic_compare_exchange_strong_explicit(slot, &expected, (uintptr_t)spare | 1u,
                                                    memory_order_release, memory_order_relaxed))
            spare = NULL;
    }
nomem:
    channel_free(fresh);
    baton__free(spare);
    baton__error(BATON_ENOMEM, "baton_space: out of memory for a channel");
    return NULL;
}

static int walk_node(sp_table_node *node, int (*fn)(sp_channel *, void *), void *ctx)
{
    for (unsigned i = 0; i < SP_FANOUT; i++) {
        uintptr_t s = atomic_load_explicit(&node->slot[i], memory_order_acquire);
        if (s == 0)
            continue;
        if (is_node(s)) {
            int rc = walk_node(as_node(s), fn, ctx);
            if (rc != 0)
                return rc;
            continue;
        }
        for (sp_channel *ch = (sp_channel *)s, *next; ch; ch = next) {
            next = atomic_load_explicit(&ch->collide_next, memory_order_acquire);
            int rc = fn(ch, ctx);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int baton__space_table_walk(sp_table_node *table, int (*fn)(sp_channel *ch, void *ctx), void *ctx)
{
    return walk_node(table, fn, ctx);
}

static void destroy_node(sp_table_node *node, void (*fn)(sp_channel *, void *), void *ctx)
{
    for (unsigned i = 0; i < SP_FANOUT; i++) {
        uintptr_t s = atomic_load_explicit(&node->slot[i], memory_order_relaxed);
        if (is_node(s)) {
            destroy_node(as_node(s), fn, ctx);
            continue;
        }
        for (sp_channel *ch = (sp_channel *)s, *next; ch; ch = next) {
            next = atomic_load_explicit(&ch->collide_next, memory_order_relaxed);
            if (fn != NULL)
                fn(ch, ctx);
            channel_free(ch);
        }
    }
    baton__free(node);
}

void baton__space_table_destroy(sp_table_node *table, void (*fn)(sp_channel *ch, void *ctx),
                                void *ctx)
{
    if (table != NULL)
        destroy_node(table, fn, ctx);
}

/* ---- lists (called by the channel's owner) ---- */

void baton__space_data_append(sp_channel *ch, sp_datum *d)
{
    d->next = NULL;
    d->prev = ch->data_tail;
    if (ch->data_tail)
        ch->data_tail->next = d;
    else
        ch->data_head = d;
    ch->data_tail = d;
    /* Relaxed store: only the owner writes it; stats read a moment's value. */
    atomic_store_explicit(&ch->n_data, atomic_load_explicit(&ch->n_data, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void baton__space_data_remove(sp_channel *ch, sp_datum *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        ch->data_head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        ch->data_tail = d->prev;
    atomic_store_explicit(&ch->n_data, atomic_load_explicit(&ch->n_data, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    baton__space_release(ch->space, d, sizeof *d + d->size);
}

void baton__space_reg_append(sp_channel *ch, sp_reg *r)
{
    r->seq = ++ch->reg_seq;
    r->next = NULL;
    r->prev = ch->reg_tail;
    if (ch->reg_tail)
        ch->reg_tail->next = r;
    else
        ch->reg_head = r;
    ch->reg_tail = r;
    atomic_store_explicit(&ch->n_regs, atomic_load_explicit(&ch->n_regs, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void baton__space_reg_remove(sp_channel *ch, sp_reg *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        ch->reg_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        ch->reg_tail = r->prev;
    atomic_store_explicit(&ch->n_regs, atomic_load_explicit(&ch->n_regs, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}
