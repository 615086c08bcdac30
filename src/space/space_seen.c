/*
 * space_seen.c — a set of (consumer id, datum id) pairs, for recovery (space_recover.c): which
 * persistent consumers still owe a stored datum their turn when the log's tail ends.
 *
 * DESIGN. Open addressing with linear probing over pairs of 64-bit ids, both > 0, so that
 * (0, 0) marks an empty slot and (0, 1) a removed one. Replay adds and removes pairs as it reads
 * PUT and SEEN records; once recovery hands the set to the settling that follows, it is only read,
 * by whichever threads run that settling (they see it through the release of the chain records
 * that name it), so lookups need no lock.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "space/space_impl.h"

static size_t pair_hash(uint64_t a, uint64_t b)
{
    uint64_t h = a * UINT64_C(0x9e3779b97f4a7c15) ^ (b + UINT64_C(0x632be59bd9b4e019));
    h ^= h >> 31;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 29;
    return (size_t)h;
}

/* The slot of (a, b), or of the first empty slot where it would go (cap > 0). */
static size_t pair_find(const sp_pairs *s, uint64_t a, uint64_t b, bool *found)
{
    size_t mask = s->cap - 1, i = pair_hash(a, b) & mask;
    size_t first_free = SIZE_MAX;
    for (;; i = (i + 1) & mask) {
        uint64_t ka = s->keys[2 * i], kb = s->keys[2 * i + 1];
        if (ka == a && kb == b) {
            *found = true;
            return i;
        }
        if (ka == 0 && kb == 1 && first_free == SIZE_MAX)
            first_free = i; /* removed: reusable, but the pair may still lie beyond */
        if (ka == 0 && kb == 0) {
            *found = false;
            return first_free != SIZE_MAX ? first_free : i;
        }
    }
}

static int pairs_grow(sp_pairs *s)
{
    size_t cap = s->cap ? s->cap : 64;
    while (cap < 4 * (s->n + 1))
        cap *= 2;
    uint64_t *keys = baton__calloc(2 * cap, sizeof *keys);
    if (keys == NULL)
        return baton__error(BATON_ENOMEM, "baton_space_open: out of memory for the recovery's "
                            "set of %zu consumer-datum pairs", s->n + 1);
    sp_pairs old = *s;
    s->keys = keys;
    s->cap = cap;
    s->used = s->n;
    for (size_t i = 0; i < old.cap; i++) {
        uint64_t a = old.keys[2 * i], b = old.keys[2 * i + 1];
        if (a == 0)
            continue;
        bool found = false;
        size_t at = pair_find(s, a, b, &found);
        s->keys[2 * at] = a;
        s->keys[2 * at + 1] = b;
    }
    baton__free(old.keys);
    return 0;
}

int baton__space_pairs_add(sp_pairs *s, uint64_t a, uint64_t b)
{
    if ((s->used + 1) * 4 > s->cap * 3) {
        int rc = pairs_grow(s);
        if (rc != 0)
            return rc;
    }
    bool found = false;
    size_t at = pair_find(s, a, b, &found);
    if (found)
        return 0;
    if (s->keys[2 * at] == 0 && s->keys[2 * at + 1] == 0)
        s->used++;
    s->keys[2 * at] = a;
    s->keys[2 * at + 1] = b;
    s->n++;
    return 0;
}

bool baton__space_pairs_remove(sp_pairs *s, uint64_t a, uint64_t b)
{
    if (s->n == 0)
        return false;
    bool found = false;
    size_t at = pair_find(s, a, b, &found);
    if (!found)
        return false;
    s->keys[2 * at] = 0;
    s->keys[2 * at + 1] = 1;
    s->n--;
    return true;
}

bool baton__space_pairs_has(const sp_pairs *s, uint64_t a, uint64_t b)
{
    if (s == NULL || s->n == 0)
        return false;
    bool found = false;
    (void)pair_find(s, a, b, &found);
    return found;
}

void baton__space_pairs_free(sp_pairs *s)
{
    baton__free(s->keys);
    memset(s, 0, sizeof *s);
}
