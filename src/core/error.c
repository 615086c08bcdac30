/*
 * error.c — error codes, their names and texts (generated from BATON_ERRNO_MAP), and the
 * per-thread detail message.
 *
 * DESIGN: the detail message is a fixed thread-local buffer, so reporting an error never
 * allocates and never fails; a message longer than the buffer is truncated with "...". A new
 * message is formatted on the stack and then copied, so it may quote the old one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define BATON__MESSAGE_CAPACITY 512

static _Thread_local char baton__last_message[BATON__MESSAGE_CAPACITY];
_Thread_local uint64_t baton__error_serial BATON__ERROR_TLS_MODEL;

const char *baton_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define BATON__ERRNO_TEXT(name, value, text)                                                     \
    case BATON_##name:                                                                           \
        return text;
        BATON_ERRNO_MAP(BATON__ERRNO_TEXT)
#undef BATON__ERRNO_TEXT
    default:
        return "unknown error";
    }
}

const char *baton_err_name(int err)
{
    switch (err) {
    case 0:
        return "0";
#define BATON__ERRNO_NAME(name, value, text)                                                     \
    case BATON_##name:                                                                           \
        return "BATON_" #name;
        BATON_ERRNO_MAP(BATON__ERRNO_NAME)
#undef BATON__ERRNO_NAME
    default:
        return "BATON_E?";
    }
}

const char *baton_last_error_message(void)
{
    return baton__last_message;
}

int baton__error(int code, const char *fmt, ...)
{
    /* Formatted into a copy first: a caller that adds context to the error of a call it made
     * passes baton_last_error_message() as an argument, and vsnprintf may not write the buffer
     * it reads (it would read its own output). */
    char formatted[BATON__MESSAGE_CAPACITY];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(formatted, sizeof formatted, fmt, args);
    va_end(args);
    if (n < 0)
        formatted[0] = '\0';
    else if (n >= (int)sizeof formatted)
        memcpy(formatted + sizeof formatted - 4, "...", 4);
    memcpy(baton__last_message, formatted, strlen(formatted) + 1);
    baton__error_serial++;
    return code;
}

void baton__work_error_message(char *buf, size_t size, const char *call, const char *what,
                               int code, uint64_t serial)
{
    if (baton__error_serial != serial && baton__is_error_code(code))
        snprintf(buf, size, "%s", baton__last_message);
    else if (baton__is_error_code(code))
        snprintf(buf, size, "%s: %s returned %s (%s)", call, what, baton_err_name(code),
                 baton_strerror(code));
    else
        snprintf(buf, size, "%s: %s returned %d (a code of its own, not a baton error)", call,
                 what, code);
}
