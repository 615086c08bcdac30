/*
 * pool_install.h — rayon's install() on baton's public API: runs a function on one of a pool's
 * workers while the calling thread sleeps, so that work the function forks (a
 * baton_parallel_for, a baton_store tick) runs on the pool's W workers and on no other thread.
 * A call into the pool from outside would run work on the calling thread too (baton/pool.h),
 * W + 1 threads in all. What `baton demo` and `baton-bench` run with exactly W threads goes
 * through this.
 *
 * How: baton_join(A, B) with B the function. A, on the calling thread, waits on a condition
 * variable until B has finished. A worker falling asleep as B is pushed may miss it (baton/pool.h
 * says so), and B is never popped back while A waits, so until a worker has taken B, A wakes
 * every millisecond and offers the pool an empty join (a fork that tells a worker again); once B
 * has started, A sleeps until it is done.
 */
#ifndef BATON_BENCH_POOL_INSTALL_H
#define BATON_BENCH_POOL_INSTALL_H

#include "baton/pool.h"

/* Runs fn(ctx) on one of pool's workers and returns what it returned, or baton_join's error (fn
 * then did not run). Callable from any thread outside the pool. */
int pool_install(baton_pool *pool, int (*fn)(void *ctx), void *ctx);

#endif /* BATON_BENCH_POOL_INSTALL_H */
