/*
 * motion.c — the motion rule over columnar state: the engine's built-in example workload (the
 * same rule as the store's, in the seed's float columns instead of fixed-point payloads).
 *
 * The kernel is three independent streams (x += vx * DT, ...) over restrict-qualified arrays, so
 * compilers vectorise it; C11 mode (-std=c11) keeps floating-point contraction off, so an FMA
 * machine computes the same bits as one without, and the fingerprints of a run are the same
 * everywhere.
 */
#include <string.h>

#include "baton/engine.h"
#include "core/error.h"

enum { MOTION_X, MOTION_Y, MOTION_Z, MOTION_VX, MOTION_VY, MOTION_VZ, MOTION_COLUMNS };

static const baton_column_spec motion_columns[MOTION_COLUMNS] = {
    {"x", BATON_COLUMN_FLOAT},  {"y", BATON_COLUMN_FLOAT},  {"z", BATON_COLUMN_FLOAT},
    {"vx", BATON_COLUMN_FLOAT}, {"vy", BATON_COLUMN_FLOAT}, {"vz", BATON_COLUMN_FLOAT}};

/* splitmix64: a fixed, portable stream from the seed. */
static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* A float in [-1, 1) with 24 random bits: exact, so the same on every machine. */
static float unit_float(uint64_t *s)
{
    int64_t bits = (int64_t)(next_random(s) >> 40) - (INT64_C(1) << 23);
    return (float)bits / (float)(1 << 23);
}

int baton_engine_motion_state(size_t agents, uint64_t seed, baton_state **out)
{
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_engine_motion_state: out is NULL");
    *out = NULL;
    baton_state *state = NULL;
    int rc = baton_state_create(motion_columns, MOTION_COLUMNS, &state);
    const size_t batch = 4096;
    uint64_t ids[4096];
    for (size_t done = 0; rc == 0 && done < agents; done += batch) {
        size_t n = agents - done < batch ? agents - done : batch;
        for (size_t i = 0; i < n; i++)
            ids[i] = done + i + 1;
        rc = baton_state_add_rows(state, ids, n, NULL);
    }
    if (rc != 0) {
        baton_state_destroy(state);
        return rc;
    }
    uint64_t s = seed;
    for (int c = MOTION_VX; c <= MOTION_VZ; c++) {
        float *v = baton_state_float(state, (size_t)c);
        for (size_t i = 0; i < agents; i++)
            v[i] = unit_float(&s);
    }
    *out = state;
    return 0;
}

static void motion_axis(float *restrict p, const float *restrict v, size_t begin, size_t end)
{
    for (size_t i = begin; i < end; i++)
        p[i] += v[i] * BATON_ENGINE_MOTION_DT;
}

static int motion_phase(baton_state *state, size_t begin, size_t end, size_t partition,
                        uint64_t step, void *ctx)
{
    (void)partition;
    (void)step;
    (void)ctx;
    for (int axis = 0; axis < 3; axis++)
        motion_axis(baton_state_float(state, (size_t)(MOTION_X + axis)),
                    baton_state_float(state, (size_t)(MOTION_VX + axis)), begin, end);
    return 0;
}

int baton_engine_add_motion(baton_engine *engine)
{
    const char *who = "baton_engine_add_motion";
    if (engine == NULL)
        return baton__error(BATON_EINVAL, "%s: engine is NULL", who);
    baton_state *state = baton_engine_state(engine);
    for (size_t c = 0; c < MOTION_COLUMNS; c++) {
        baton_column_spec have;
        if (baton_state_column_info(state, c, &have) != 0 ||
            strcmp(have.name, motion_columns[c].name) != 0 || have.type != BATON_COLUMN_FLOAT)
            return baton__error(BATON_EMISMATCH,
                                "%s: the state's column %zu is not \"%s\" (float), which the "
                                "motion rule needs",
                                who, c, motion_columns[c].name);
    }
    static const size_t writes[] = {MOTION_X, MOTION_Y, MOTION_Z};
    baton_phase_spec spec = {"motion", motion_phase, NULL, writes, 3, BATON_PHASE_INFALLIBLE};
    return baton_engine_add_phase(engine, &spec);
}
