/*
 * hash.c — XXH3 from libxxhash. Kept behind baton_hash64 so that callers do not depend on the
 * xxhash headers and so the hash used for fingerprints and routing is named in one place.
 */
#include <xxhash.h>

#include "baton/core.h"

uint64_t baton_hash64(const void *data, size_t len, uint64_t seed)
{
    static const unsigned char empty[1] = {0};
    if (data == NULL)
        data = empty; /* len is 0 here by contract; XXH3 never reads it */
    return (uint64_t)XXH3_64bits_withSeed(data, len, (XXH64_hash_t)seed);
}
