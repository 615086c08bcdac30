/*
 * motion.c — the motion rule over columnar state: the engine's built-in example workload (the
 * same rule as the store's baton_motion_step, each position moving by its velocity every step,
 * over float columns instead of the store's fixed-point payloads).
 *
 * The kernel is three independent streams (x += vx * DT, ...) over restrict-qualified arrays, so
 * compilers vectorise it; C11 mode (-std=c11) keeps floating-point contraction off, so an FMA
 * machine computes the same bits as one without, and the fingerprints of a run are the same
 * everywhere.
 */
#include <string.h>

#include "baton/engine.h"
#include "core/alloc.h"
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

/* The stream position of row i's velocity on axis `axis` (0..2): baton_engine_motion_state draws
 * every vx, then every vy, then every vz, one value per row, and splitmix64's state after k
 * draws is seed + k * its increment, so any row's values can be drawn without the ones before. */
static uint64_t stream_at(uint64_t seed, size_t agents, int axis, size_t row)
{
    return seed + ((uint64_t)axis * agents + row) * UINT64_C(0x9E3779B97F4A7C15);
}

/* Whether the state's first columns are the motion state's; sets the error if not. */
static int check_columns(const char *who, const baton_state *state)
{
    for (size_t c = 0; c < MOTION_COLUMNS; c++) {
        baton_column_spec have;
        if (baton_state_column_info(state, c, &have) != 0 ||
            strcmp(have.name, motion_columns[c].name) != 0 || have.type != BATON_COLUMN_FLOAT)
            return baton__error(BATON_EMISMATCH,
                                "%s: the state's column %zu is not \"%s\" (float), which the "
                                "motion rule needs",
                                who, c, motion_columns[c].name);
    }
    return 0;
}

int baton_engine_motion_add_rows(baton_state *state, size_t agents, uint64_t seed, size_t begin,
                                 size_t end)
{
    const char *who = "baton_engine_motion_add_rows";
    if (state == NULL)
        return baton__error(BATON_EINVAL, "%s: state is NULL", who);
    if (end < begin || end > agents)
        return baton__error(BATON_EINVAL, "%s: rows [%zu, %zu) of a motion state of %zu agents",
                            who, begin, end, agents);
    int rc = check_columns(who, state);
    size_t first = baton_state_rows(state), n = end - begin;
    /* One add_rows for all of them: it adds all or nothing. */
    uint64_t *ids = rc == 0 && n > 0 ? baton__malloc(n * sizeof *ids) : NULL;
    if (rc == 0 && n > 0 && ids == NULL)
        rc = baton__error(BATON_ENOMEM, "%s: no memory for %zu ids", who, n);
    for (size_t i = 0; ids != NULL && i < n; i++)
        ids[i] = begin + i + 1;
    if (rc == 0 && n > 0)
        rc = baton_state_add_rows(state, ids, n, NULL);
    baton__free(ids);
    if (rc != 0)
        return rc;
    for (int axis = 0; axis < 3; axis++) {
        float *v = baton_state_float(state, (size_t)(MOTION_VX + axis)) + first;
        uint64_t s = stream_at(seed, agents, axis, begin);
        for (size_t i = 0; i < n; i++)
            v[i] = unit_float(&s);
    }
    return 0;
}

int baton_engine_motion_state(size_t agents, uint64_t seed, baton_state **out)
{
    if (out == NULL)
        return baton__error(BATON_EINVAL, "baton_engine_motion_state: out is NULL");
    *out = NULL;
    baton_state *state = NULL;
    int rc = baton_state_create(motion_columns, MOTION_COLUMNS, &state);
    if (rc == 0)
        rc = baton_engine_motion_add_rows(state, agents, seed, 0, agents);
    if (rc != 0) {
        baton_state_destroy(state);
        return rc;
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
    int rc = check_columns(who, baton_engine_state(engine));
    if (rc != 0)
        return rc;
    static const size_t writes[] = {MOTION_X, MOTION_Y, MOTION_Z};
    baton_phase_spec spec = {"motion", motion_phase, NULL, writes, 3, BATON_PHASE_INFALLIBLE, 0};
    return baton_engine_add_phase(engine, &spec);
}
