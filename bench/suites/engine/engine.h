/*
 * engine.h — what the engine suite's files share (engine.c, engine_mpi.c).
 */
#ifndef BATON_BENCH_ENGINE_H
#define BATON_BENCH_ENGINE_H

#include <stddef.h>

#include "baton/pool.h"
#include "bench.h"

/* The seed of every motion state the suite builds. */
#define BENCH_ENGINE_SEED 42u

/* The mpi_step case on 1, 2 and 4 ranks (a note, no rows, when MPI or mpirun is missing). */
int bench_engine_mpi_run(const bench_options *options, bench_report *report, baton_pool *pool,
                         size_t rows, unsigned steps);

#endif /* BATON_BENCH_ENGINE_H */
