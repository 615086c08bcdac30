/*
 * test_engine_fingerprint.c — the state's fingerprint (engine.h), on a pool of --workers workers
 * and on the calling thread:
 *  - equal to a reference computed here from the published definition alone: each chunk's bytes
 *    laid out explicitly as little-endian integers in one buffer and hashed in one call of
 *    libxxhash's XXH3_64bits_withSeed, the chunk hashes serialised the same way and hashed with
 *    seed = rows; for 0 rows, 1, CHUNK - 1, CHUNK, CHUNK + 1 and a few hundred thousand rows,
 *    with float, double and int64 columns, with no columns, and after adds and removes;
 *  - the same with pool NULL and with the pool, every time;
 *  - changed by any single value bit, id, column name, type or column order, and back when
 *    restored; -0.0 and 0.0 differ (float and double), as do NaNs with other payloads;
 *  - baton_state_chunk_hashes over [0, a), [a, b), [b, rows) (a, b multiples of CHUNK, empty
 *    pieces included), combined with baton_fingerprint_combine, is the fingerprint, and each
 *    chunk hash is the reference's;
 *  - errors: NULL arguments, begin not a multiple of CHUNK, end not one nor the row count
 *    (BATON_EINVAL), end past the rows or begin past end (BATON_ERANGE), out of memory.
 */
#include "support/bt_common.h"

#include <inttypes.h>
#include <xxhash.h>

#include "baton/engine.h"
#include "core/alloc.h"

BT_DEFINE_POOL_GROUP()

#define CHUNK ((size_t)BATON_FINGERPRINT_CHUNK_ROWS)

/* ---- the reference, from the definition ------------------------------------------------------ */

/* Rows as the test holds them: ids, and per column its spec and each value's raw bits (a
 * float's in the low 32), independent of how the state stores anything. */
typedef struct dataset {
    size_t rows, n_columns;
    uint64_t *ids;
    baton_column_spec specs[8];
    char names[8][BATON_COLUMN_NAME_MAX + 1];
    uint64_t *bits[8];
} dataset;

static size_t width_of(baton_column_type type)
{
    return type == BATON_COLUMN_FLOAT ? 4 : 8;
}

static unsigned char *put_le(unsigned char *at, uint64_t value, size_t bytes)
{
    for (size_t b = 0; b < bytes; b++)
        at[b] = (unsigned char)(value >> (8 * b));
    return at + bytes;
}

static uint64_t reference_chunk(const dataset *d, size_t chunk)
{
    size_t begin = chunk * CHUNK, end = begin + CHUNK < d->rows ? begin + CHUNK : d->rows;
    size_t size = (end - begin) * 8;
    for (size_t c = 0; c < d->n_columns; c++)
        size += strlen(d->specs[c].name) + 2 + (end - begin) * width_of(d->specs[c].type);
    unsigned char *bytes = malloc(size), *at = bytes;
    assert_non_null(bytes);
    for (size_t r = begin; r < end; r++)
        at = put_le(at, d->ids[r], 8);
    for (size_t c = 0; c < d->n_columns; c++) {
        size_t len = strlen(d->specs[c].name);
        memcpy(at, d->specs[c].name, len);
        at += len;
        *at++ = 0;
        *at++ = (unsigned char)d->specs[c].type;
        for (size_t r = begin; r < end; r++)
            at = put_le(at, d->bits[c][r], width_of(d->specs[c].type));
    }
    assert_true(at == bytes + size);
    uint64_t hash = XXH3_64bits_withSeed(bytes, size, chunk);
    free(bytes);
    return hash;
}

static uint64_t reference_fingerprint(const dataset *d)
{
    size_t k = (d->rows + CHUNK - 1) / CHUNK;
    unsigned char *bytes = malloc(k * 8 + 1), *at = bytes;
    assert_non_null(bytes);
    for (size_t c = 0; c < k; c++)
        at = put_le(at, reference_chunk(d, c), 8);
    uint64_t hash = XXH3_64bits_withSeed(bytes, k * 8, d->rows);
    free(bytes);
    return hash;
}

/* ---- datasets and states --------------------------------------------------------------------- */

static const baton_column_spec mixed[] = {
    {"pos.x", BATON_COLUMN_FLOAT}, {"mass", BATON_COLUMN_DOUBLE}, {"count-1", BATON_COLUMN_INT64},
    {"v_y", BATON_COLUMN_FLOAT},   {"E", BATON_COLUMN_DOUBLE},
};

/* Random distinct ids (a bijection of the row number) and random values, NaNs and -0.0 included
 * now and then. */
static void dataset_init(dataset *d, size_t rows, const baton_column_spec *specs, size_t n,
                         uint64_t seed)
{
    bt_rng rng = bt_rng_seed(seed);
    memset(d, 0, sizeof *d);
    d->rows = rows;
    d->n_columns = n;
    d->ids = malloc(rows * 8 + 8);
    assert_non_null(d->ids);
    uint64_t salt = bt_rng_next(&rng);
    for (size_t r = 0; r < rows; r++)
        d->ids[r] = (r ^ salt) * UINT64_C(0x9e3779b97f4a7c15);
    for (size_t c = 0; c < n; c++) {
        snprintf(d->names[c], sizeof d->names[c], "%s", specs[c].name);
        d->specs[c] = (baton_column_spec){d->names[c], specs[c].type};
        d->bits[c] = malloc(rows * 8 + 8);
        assert_non_null(d->bits[c]);
        for (size_t r = 0; r < rows; r++) {
            uint64_t bits = bt_rng_next(&rng);
            if (bits % 17 == 0)
                bits = specs[c].type == BATON_COLUMN_FLOAT ? 0x80000000u : UINT64_C(1) << 63;
            d->bits[c][r] = specs[c].type == BATON_COLUMN_FLOAT ? (uint32_t)bits : bits;
        }
    }
}

static void dataset_free(dataset *d)
{
    for (size_t c = 0; c < d->n_columns; c++)
        free(d->bits[c]);
    free(d->ids);
}

static baton_state *state_from(const dataset *d)
{
    baton_state *state = NULL;
    bt_assert_rc(baton_state_create(d->specs, d->n_columns, &state), 0);
    bt_assert_rc(baton_state_add_rows(state, d->ids, d->rows, NULL), 0);
    for (size_t c = 0; c < d->n_columns; c++) {
        unsigned char *data = baton_state_column_data(state, c);
        size_t width = width_of(d->specs[c].type);
        for (size_t r = 0; r < d->rows; r++)
            put_le(data + r * width, d->bits[c][r], width);
    }
    return state;
}

/* The fingerprint on the calling thread and on the pool: they must agree. */
static uint64_t fingerprint(const baton_state *state)
{
    uint64_t serial = 0, parallel = 1;
    bt_assert_rc(baton_state_fingerprint(state, NULL, &serial), 0);
    bt_assert_rc(baton_state_fingerprint(state, g_pool, &parallel), 0);
    if (serial != parallel)
        fail_msg("fingerprint %#" PRIx64 " on the caller, %#" PRIx64 " on %u workers", serial,
                 parallel, g_workers);
    return serial;
}

/* Chunk hashes of [0, a), [a, b), [b, rows), each checked against the reference, combined. */
static void check_pieces(const baton_state *state, const dataset *d, size_t a, size_t b)
{
    size_t k = (d->rows + CHUNK - 1) / CHUNK;
    uint64_t *hashes = calloc(k + 1, 8);
    assert_non_null(hashes);
    size_t cut[4] = {0, a, b, d->rows};
    for (int p = 0; p < 3; p++)
        bt_assert_rc(baton_state_chunk_hashes(state, p == 1 ? NULL : g_pool, cut[p], cut[p + 1],
                                              hashes + cut[p] / CHUNK),
                     0);
    for (size_t c = 0; c < k; c += 1 + c / 3)
        assert_true(hashes[c] == reference_chunk(d, c));
    assert_true(baton_fingerprint_combine(hashes, k, d->rows) == fingerprint(state));
    free(hashes);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_sizes_against_reference(void **unused)
{
    (void)unused;
    const size_t sizes[] = {0, 1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17};
    const size_t column_counts[] = {0, 3, 5};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t n = 0; n < 3; n++) {
            size_t n_columns = column_counts[n];
            dataset d;
            dataset_init(&d, sizes[s], mixed, n_columns, 100 + s);
            baton_state *state = state_from(&d);
            uint64_t got = fingerprint(state), expected = reference_fingerprint(&d);
            if (got != expected)
                fail_msg("%zu rows, %zu columns: %#" PRIx64 ", reference %#" PRIx64, d.rows,
                         n_columns, got, expected);
            size_t a = sizes[s] / CHUNK / 2 * CHUNK;
            check_pieces(state, &d, a, sizes[s] / CHUNK * CHUNK);
            check_pieces(state, &d, 0, 0);
            baton_state_destroy(state);
            dataset_free(&d);
        }
    /* The empty state: XXH3 of no bytes with seed 0, whatever its columns. */
    baton_state *state = NULL;
    bt_assert_rc(baton_state_create(mixed, 5, &state), 0);
    assert_true(fingerprint(state) == XXH3_64bits_withSeed("", 0, 0));
    assert_true(baton_fingerprint_combine(NULL, 0, 0) == XXH3_64bits_withSeed("", 0, 0));
    baton_state_destroy(state);
}

static void test_large_state(void **unused)
{
    (void)unused;
    dataset d;
    size_t rows = bt_scaled(300000, 3 * CHUNK + 100) + 123;
    dataset_init(&d, rows, mixed, 3, 7);
    baton_state *state = state_from(&d);
    uint64_t expected = reference_fingerprint(&d);
    for (int i = 0; i < 4; i++)
        assert_true(fingerprint(state) == expected);
    bt_rng rng = bt_rng_seed(11);
    size_t chunks = rows / CHUNK;
    for (int i = 0; i < 6; i++) {
        size_t a = (size_t)bt_rng_below(&rng, chunks + 1) * CHUNK;
        size_t b = a + (size_t)bt_rng_below(&rng, chunks + 1 - a / CHUNK) * CHUNK;
        check_pieces(state, &d, a, b);
    }
    check_pieces(state, &d, chunks * CHUNK, chunks * CHUNK);

    /* After removing rows (every fifth, and the last) and adding some back, still the
     * reference's for the rows as they now are. */
    size_t n_removed = 0;
    uint64_t *removed = malloc((rows / 5 + 2) * 8);
    assert_non_null(removed);
    for (size_t r = 0; r < rows; r += 5)
        removed[n_removed++] = d.ids[r];
    removed[n_removed++] = d.ids[rows - 1];
    bt_assert_rc(baton_state_remove_rows(state, removed, n_removed), 0);
    size_t kept = 0;
    for (size_t r = 0; r < rows - 1; r++) {
        if (r % 5 == 0)
            continue;
        d.ids[kept] = d.ids[r];
        for (size_t c = 0; c < d.n_columns; c++)
            d.bits[c][kept] = d.bits[c][r];
        kept++;
    }
    bt_assert_rc(baton_state_add_rows(state, removed, 1000, NULL), 0);
    for (size_t i = 0; i < 1000; i++) {
        d.ids[kept + i] = removed[i];
        for (size_t c = 0; c < d.n_columns; c++)
            d.bits[c][kept + i] = 0;
    }
    d.rows = kept + 1000;
    assert_int_equal(baton_state_rows(state), d.rows);
    assert_true(fingerprint(state) == reference_fingerprint(&d));
    assert_true(fingerprint(state) != expected);
    free(removed);
    baton_state_destroy(state);
    dataset_free(&d);
}

/* Flips bits of one value in the state, checks the fingerprint moved, flips them back. */
static void check_value_change(baton_state *state, size_t c, size_t row, uint64_t flip,
                               uint64_t base)
{
    unsigned char *at = (unsigned char *)baton_state_column_data(state, c);
    baton_column_spec info;
    bt_assert_rc(baton_state_column_info(state, c, &info), 0);
    at += row * width_of(info.type);
    for (size_t b = 0; b < width_of(info.type); b++)
        at[b] ^= (unsigned char)(flip >> (8 * b));
    if (fingerprint(state) == base)
        fail_msg("flipping %#" PRIx64 " in column %zu, row %zu, left the fingerprint", flip, c,
                 row);
    for (size_t b = 0; b < width_of(info.type); b++)
        at[b] ^= (unsigned char)(flip >> (8 * b));
    assert_true(fingerprint(state) == base);
}

static uint64_t fingerprint_of(const dataset *d)
{
    baton_state *state = state_from(d);
    uint64_t fp = fingerprint(state);
    assert_true(fp == reference_fingerprint(d));
    baton_state_destroy(state);
    return fp;
}

static void test_sensitivity(void **unused)
{
    (void)unused;
    dataset d;
    dataset_init(&d, 3 * CHUNK + 5, mixed, 5, 3);
    baton_state *state = state_from(&d);
    uint64_t base = fingerprint(state);
    bt_rng rng = bt_rng_seed(5);
    const size_t rows[] = {0, 1, CHUNK - 1, CHUNK, 2 * CHUNK + 7, d.rows - 1};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t c = 0; c < d.n_columns; c++) {
            check_value_change(state, c, rows[i], 1, base);
            uint64_t top = width_of(d.specs[c].type) == 4 ? 0x80000000u : UINT64_C(1) << 63;
            check_value_change(state, c, rows[i], top, base);
            check_value_change(state, c, (size_t)bt_rng_below(&rng, d.rows),
                               UINT64_C(1) << bt_rng_below(&rng, 8 * width_of(d.specs[c].type)),
                               base);
        }
    /* An id (through the read-only array: the index does not take part in the hash). */
    uint64_t *ids = (uint64_t *)(uintptr_t)baton_state_ids(state);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        ids[rows[i]] ^= UINT64_C(1) << (i * 11);
        assert_true(fingerprint(state) != base);
        ids[rows[i]] ^= UINT64_C(1) << (i * 11);
        assert_true(fingerprint(state) == base);
    }
    /* -0.0 against 0.0, and NaN payloads, in a float and a double column. */
    float *xs = baton_state_float(state, 0);
    double *es = baton_state_double(state, 4);
    float saved_x = xs[9];
    double saved_e = es[9];
    xs[9] = 0.0f;
    es[9] = 0.0;
    uint64_t zeros = fingerprint(state);
    xs[9] = -0.0f;
    assert_true(fingerprint(state) != zeros);
    xs[9] = 0.0f;
    es[9] = -0.0;
    assert_true(fingerprint(state) != zeros);
    es[9] = 0.0;
    assert_true(fingerprint(state) == zeros);
    uint64_t nan_a = UINT64_C(0x7ff8000000000001), nan_b = UINT64_C(0x7ff8000000000002);
    memcpy(&es[9], &nan_a, 8);
    uint64_t with_nan = fingerprint(state);
    memcpy(&es[9], &nan_b, 8);
    assert_true(fingerprint(state) != with_nan);
    xs[9] = saved_x;
    es[9] = saved_e;
    assert_true(fingerprint(state) == base);
    baton_state_destroy(state);

    /* The schema: a name (one byte, or one byte longer), a type with the same bits, the order
     * of the columns. Each restored gives the base again. */
    assert_true(fingerprint_of(&d) == base);
    d.names[1][0] = 'M';
    assert_true(fingerprint_of(&d) != base);
    d.names[1][0] = 'm';
    strcat(d.names[1], "s");
    assert_true(fingerprint_of(&d) != base);
    d.names[1][4] = '\0';
    assert_true(fingerprint_of(&d) == base);
    d.specs[2].type = BATON_COLUMN_DOUBLE; /* int64 bits read as a double: same bytes */
    assert_true(fingerprint_of(&d) != base);
    d.specs[2].type = BATON_COLUMN_INT64;
    baton_column_spec spec = d.specs[1];
    uint64_t *bits = d.bits[1];
    d.specs[1] = d.specs[4], d.bits[1] = d.bits[4];
    d.specs[4] = spec, d.bits[4] = bits;
    assert_true(fingerprint_of(&d) != base);
    d.specs[4] = d.specs[1], d.bits[4] = d.bits[1];
    d.specs[1] = spec, d.bits[1] = bits;
    assert_true(fingerprint_of(&d) == base);
    dataset_free(&d);
}

static void test_errors(void **unused)
{
    (void)unused;
    dataset d;
    dataset_init(&d, 2 * CHUNK + 10, mixed, 2, 9);
    baton_state *state = state_from(&d);
    uint64_t out[4] = {0}, fp = 0;
    bt_assert_rc(baton_state_fingerprint(NULL, g_pool, &fp), BATON_EINVAL);
    bt_assert_rc(baton_state_fingerprint(state, NULL, NULL), BATON_EINVAL);
    bt_assert_rc(baton_state_chunk_hashes(NULL, NULL, 0, CHUNK, out), BATON_EINVAL);
    bt_assert_rc(baton_state_chunk_hashes(state, g_pool, 0, CHUNK, NULL), BATON_EINVAL);
    bt_assert_rc(baton_state_chunk_hashes(state, g_pool, 1, CHUNK, out), BATON_EINVAL);
    assert_non_null(strstr(baton_last_error_message(), "begin 1 "));
    bt_assert_rc(baton_state_chunk_hashes(state, NULL, CHUNK + 3, d.rows, out), BATON_EINVAL);
    bt_assert_rc(baton_state_chunk_hashes(state, NULL, 0, CHUNK + 5, out), BATON_EINVAL);
    assert_non_null(strstr(baton_last_error_message(), "end 4101"));
    bt_assert_rc(baton_state_chunk_hashes(state, g_pool, 0, d.rows + 1, out), BATON_ERANGE);
    assert_non_null(strstr(baton_last_error_message(), "end 8203"));
    bt_assert_rc(baton_state_chunk_hashes(state, NULL, 2 * CHUNK, CHUNK, out), BATON_ERANGE);
    bt_assert_rc(baton_state_chunk_hashes(state, NULL, 0, 3 * CHUNK, out), BATON_ERANGE);
    assert_true(out[0] == 0 && out[1] == 0);
    /* Empty ranges write nothing, so out may be NULL. */
    bt_assert_rc(baton_state_chunk_hashes(state, g_pool, CHUNK, CHUNK, NULL), 0);
    bt_assert_rc(baton_state_chunk_hashes(state, g_pool, 2 * CHUNK, 2 * CHUNK, out), 0);
    assert_true(out[0] == 0);
    /* The last, short chunk on its own. */
    bt_assert_rc(baton_state_chunk_hashes(state, g_pool, 2 * CHUNK, d.rows, out), 0);
    assert_true(out[0] == reference_chunk(&d, 2) && out[1] == 0);

    baton__alloc_fail_after(0);
    int rc = baton_state_fingerprint(state, NULL, &fp);
    baton__alloc_fail_after(-1);
    bt_assert_rc(rc, BATON_ENOMEM);
    assert_true(fingerprint(state) == reference_fingerprint(&d));
    baton_state_destroy(state);
    dataset_free(&d);
}

int main(int argc, char **argv)
{
    g_workers = bt_init(argc, argv, 4);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_against_reference),
        cmocka_unit_test(test_large_state),
        cmocka_unit_test(test_sensitivity),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("engine/fingerprint", tests, group_setup, group_teardown);
}
