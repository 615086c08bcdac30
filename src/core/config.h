/*
 * config.h — the one rule for struct_size, the first field of every options struct of the public
 * API (baton_pool_config, baton_drain_ops, baton_store_config, baton_graph_config,
 * baton_node_config, baton_space_config, baton_engine_config), and the one function that applies
 * it, so that every call that takes such a struct accepts and refuses the same sizes with the same
 * message.
 *
 * The rule (each header words it in the same sentence): struct_size is sizeof the struct the
 * caller was compiled with, or 0 for this header's size. A smaller size is an older header's
 * struct: the fields it lacks take their defaults (zero), and nothing past it is read. A size
 * larger than this header's (a newer caller, or garbage), or one too small to hold struct_size
 * itself (1 to sizeof(size_t) - 1), is BATON_EINVAL.
 */
#ifndef BATON_CORE_CONFIG_H
#define BATON_CORE_CONFIG_H

#include <stddef.h>

/*
 * Copies the caller's options struct src, which starts with its struct_size, into dst, a struct of
 * this header's type of our_size bytes: the first struct_size bytes of src (our_size when
 * struct_size is 0) and zeros after them; src NULL zeroes dst. Returns 0, or BATON_EINVAL when
 * struct_size breaks the rule above, with dst untouched and a message naming call (e.g.
 * "baton_pool_create"), the argument (what, e.g. "config"), the struct (type, e.g.
 * "baton_pool_config") and the value.
 */
int baton__config_copy(const char *call, const char *what, const char *type, const void *src,
                       void *dst, size_t our_size);

#endif /* BATON_CORE_CONFIG_H */
