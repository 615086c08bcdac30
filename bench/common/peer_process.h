/*
 * peer_process.h — runs a benchmark peer as a child process and reads its answer: what
 * `baton-bench` (every suite's peer contenders) and `baton demo` (its OpenMP row) share.
 *
 * Protocol (exact; the peers in bench/peers/ implement it):
 *   <dir>/baton-peer-<name> CASE WORKERS ARG1 [ARG2]
 * The peer runs CASE with WORKERS threads and prints exactly one line on stdout:
 *   time_s=<float> check=<u64 decimal>
 * and exits 0. Anything else — a non-zero exit, a signal, a missing or malformed line, more than
 * one line, or no answer within the timeout (the peer is then killed) — is a failed run. The
 * peer's stdin is /dev/null and its stderr is the caller's, so its diagnostics reach the user.
 *
 * Plain POSIX C11; it uses nothing of baton's and prints nothing.
 */
#ifndef BATON_BENCH_PEER_PROCESS_H
#define BATON_BENCH_PEER_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define PEER_PROCESS_PRINTF(fmt_index, first_arg)                                                  \
    __attribute__((format(printf, fmt_index, first_arg)))
#else
#define PEER_PROCESS_PRINTF(fmt_index, first_arg)
#endif

/* Room enough for any failure peer_process_run describes (longer paths are truncated). */
#define PEER_PROCESS_WHY_MAX 512

/* Path of peer `name` ("rayon") in `dir` ("<dir>/baton-peer-rayon") in `buf`; false if too long. */
bool peer_process_path(const char *dir, const char *name, char *buf, size_t buf_size);
/* True when the peer's binary exists and is executable. */
bool peer_process_available(const char *path);

/*
 * Runs `path ARGS...` (args is NULL-terminated, at most 8 entries; argv[0] is the path), waits at
 * most timeout_s seconds for it and parses its one stdout line "time_s=<float> check=<u64>".
 * Returns 0 and the two values; or -1, with `why` (why_size bytes, NUL-terminated when why_size
 * > 0) saying what went wrong, starting with the program's name: it could not be started, it
 * exited with a non-zero status or by a signal, it gave no answer in time (it is then killed),
 * or its answer was malformed or too long. The child is always waited for.
 */
int peer_process_run(const char *path, const char *const *args, double timeout_s,
                     double *out_time_s, uint64_t *out_check, char *why, size_t why_size);

#endif /* BATON_BENCH_PEER_PROCESS_H */
