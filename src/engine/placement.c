/*
 * placement.c — where an engine's rows lie under MPI: the partitions the rows were last
 * distributed by (engine->placement) and each one's first row in its rank's state
 * (engine->placement_local).
 *
 * DESIGN
 *  - A placement changes in two places, both driven by engine.c: mpi.c moves the rows to a new
 *    plan, and checkpoint.c restores or resumes a checkpoint taken under one. Both compute the
 *    offsets and hand the arrays over here, so that neither calls back into engine.c: engine.c
 *    calls mpi.c and checkpoint.c, they call placement.c, and placement.c calls none of them.
 *  - A partition's rows lie contiguous in its rank's state, the rank's partitions in row order,
 *    so a partition's offset is the sum of the sizes of the same rank's partitions before it.
 */
#include "core/alloc.h"
#include "engine/engine_impl.h"

size_t *baton__placement_offsets(const baton_partition *parts, size_t n)
{
    unsigned workers = 0;
    for (size_t i = 0; i < n; i++)
        if (parts[i].worker >= workers)
            workers = parts[i].worker + 1;
    size_t *out = baton__malloc((n > 0 ? n : 1) * sizeof *out);
    size_t *next = baton__calloc(workers > 0 ? workers : 1, sizeof *next);
    for (size_t i = 0; out != NULL && next != NULL && i < n; i++) {
        out[i] = next[parts[i].worker];
        next[parts[i].worker] += parts[i].end - parts[i].begin;
    }
    if (next == NULL) {
        baton__free(out);
        out = NULL;
    }
    baton__free(next);
    return out;
}

void baton__engine_adopt_placement(baton_engine *engine, baton_partition *parts, size_t *local,
                                   size_t n)
{
    baton__free(engine->placement);
    baton__free(engine->placement_local);
    engine->placement = parts;
    engine->placement_local = local;
    engine->n_placement = n;
}
