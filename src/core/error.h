/*
 * error.h — how baton functions report errors: set the calling thread's detail message and return
 * the code, in one expression: `return baton__error(BATON_EINVAL, "baton_pool_create: n_workers =
 * %u exceeds %u", n, max);`
 */
#ifndef BATON_CORE_ERROR_H
#define BATON_CORE_ERROR_H

#include "baton/core.h"

#if defined(__GNUC__) || defined(__clang__)
#define BATON__PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#else
#define BATON__PRINTF(fmt_index, args_index)
#endif

/* Formats the detail message into the calling thread's buffer and returns code. */
int baton__error(int code, const char *fmt, ...) BATON__PRINTF(2, 3);

#endif /* BATON_CORE_ERROR_H */
