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

/* Same model as the pool's thread-locals (pool/internal.h): read on every task a pool runs. */
#if defined(__GNUC__) || defined(__clang__)
#define BATON__ERROR_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define BATON__ERROR_TLS_MODEL
#endif

/* How many errors baton__error has reported on the calling thread. Work run for a caller on
 * another thread (a pool task) compares it before and after: only if it moved did that work
 * set the thread's message, so only then may the message travel back with the work's error. */
extern _Thread_local uint64_t baton__error_serial BATON__ERROR_TLS_MODEL;

/* Size of a message carried from the thread that ran failing work to the caller's. */
#define BATON__CARRIED_MESSAGE_CAPACITY 256

/* True for the codes of BATON_ERRNO_MAP (a task may return codes of its own). */
static inline int baton__is_error_code(int code)
{
    return code < 0 && code > BATON__ERRNO_LAST;
}

/*
 * Writes to buf the message that goes with `code`, the error of user work (what, e.g. "a task")
 * run by `call` on the calling thread since the thread's serial was `serial`: the thread's own
 * message when that work reported a baton error and returns a baton code, else a message that
 * names the code. Never the message of some earlier, unrelated error of the thread.
 */
void baton__work_error_message(char *buf, size_t size, const char *call, const char *what,
                               int code, uint64_t serial);

#endif /* BATON_CORE_ERROR_H */
