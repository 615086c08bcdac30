/*
 * config.c — struct_size, the version field of the public options structs (the rule is in
 * config.h).
 *
 * DESIGN: the caller's struct is copied once, at the call that receives it, into a zeroed struct
 * of this header's size, and only the copy is read afterwards; so a field an older caller's struct
 * lacks is never read from the caller's memory and takes its default, zero. A size that cannot
 * hold struct_size itself is refused rather than copied: a partial first field says the caller
 * did not set struct_size, not that it uses an older header.
 */
#include <string.h>

#include "core/config.h"
#include "core/error.h"

int baton__config_copy(const char *call, const char *what, const char *type, const void *src,
                       void *dst, size_t our_size)
{
    if (src == NULL) {
        memset(dst, 0, our_size);
        return 0;
    }
    size_t size;
    memcpy(&size, src, sizeof size);
    if (size > our_size)
        return baton__error(BATON_EINVAL,
                            "%s: %s->struct_size = %zu is larger than this header's "
                            "sizeof(%s) (%zu)",
                            call, what, size, type, our_size);
    if (size != 0 && size < sizeof(size_t))
        return baton__error(BATON_EINVAL,
                            "%s: %s->struct_size = %zu cannot hold struct_size itself (%zu "
                            "bytes): give sizeof(%s), or 0",
                            call, what, size, sizeof(size_t), type);
    if (size == 0)
        size = our_size;
    memset(dst, 0, our_size);
    memcpy(dst, src, size);
    return 0;
}
