/*
 * test_engine_state.c — the columnar state (engine.h), on one thread:
 *  - every error of every function, with its code, a detail message that names the bad value
 *    (and where it is), and the state exactly as it was afterwards (ids, every value, schema,
 *    resident bytes), including out-of-memory at every allocation of create, add_column,
 *    add_rows and remove_rows (baton__alloc_fail_after);
 *  - names: the whole allowed alphabet and the 63-byte limit; names are copied, and a name
 *    handed out by column_info stays put while columns are added; the typed accessors return
 *    NULL for another type or an index out of range;
 *  - a long random sequence of add_rows, remove_rows, add_column, writes through the column
 *    pointers and failing calls against a model (plain arrays): row order, ids, find, every
 *    value in the right row after rows move, new columns reading 0. It runs once with ordinary
 *    ids (sequential, random, 0 and UINT64_MAX, removed ids added back) and once with ids whose
 *    baton_mix64 agrees in the low 20 bits, so that they all share one home slot at the end of
 *    the id index: long clusters that wrap around, where removal has to shift entries back;
 *  - resident_bytes grows with rows and columns.
 */
#include "support/bt_common.h"

#include <inttypes.h>

#include "baton/engine.h"
#include "core/alloc.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* Fails the running test unless the last error message contains every word of the list. */
static void expect_message(const char *const *words)
{
    const char *message = baton_last_error_message();
    for (size_t i = 0; words[i] != NULL; i++)
        if (strstr(message, words[i]) == NULL)
            fail_msg("the error message \"%s\" does not name \"%s\"", message, words[i]);
}

#define EXPECT_ERROR(call, code, ...)                                                              \
    do {                                                                                           \
        bt_assert_rc((call), (code));                                                              \
        expect_message((const char *const[]){__VA_ARGS__, NULL});                                  \
    } while (0)

/* Runs `call` (an int expression) with the k-th allocation from now failing, for k = 0, 1, ...
 * until it succeeds; each failure must be BATON_ENOMEM naming `who`, then runs `after_failure`. */
#define FAIL_EACH_ALLOCATION(call, who, after_failure)                                             \
    for (long k_ = 0;; k_++) {                                                                     \
        baton__alloc_fail_after(k_);                                                               \
        int rc_ = (call);                                                                          \
        baton__alloc_fail_after(-1);                                                               \
        if (rc_ == 0)                                                                              \
            break;                                                                                 \
        EXPECT_ERROR(rc_, BATON_ENOMEM, who);                                                      \
        after_failure;                                                                             \
        assert_true(k_ < 1000);                                                                    \
    }

static baton_state *create_state(const baton_column_spec *columns, size_t n)
{
    baton_state *state = NULL;
    int rc = baton_state_create(columns, n, &state);
    if (rc != 0)
        fail_msg("baton_state_create = %s: %s", baton_err_name(rc), baton_last_error_message());
    assert_non_null(state);
    return state;
}

static size_t width_of(baton_column_type type)
{
    return type == BATON_COLUMN_FLOAT ? 4 : 8;
}

/* What a state should hold: ids in row order and, per column, its name, type and each value's
 * raw bits (a float's in the low 32). The random sequence keeps one up to date; taken from a
 * state, one checks that a failed call changed nothing. */
typedef struct model {
    size_t rows, capacity, n_columns;
    size_t resident; /* when not 0, the state's resident bytes */
    uint64_t *ids;
    char names[BATON_STATE_MAX_COLUMNS][BATON_COLUMN_NAME_MAX + 1];
    baton_column_type types[BATON_STATE_MAX_COLUMNS];
    uint64_t *values[BATON_STATE_MAX_COLUMNS];
} model;

static void model_reserve(model *m, size_t rows)
{
    if (m->ids != NULL && rows <= m->capacity)
        return;
    m->capacity = rows * 2 + 1;
    m->ids = realloc(m->ids, m->capacity * sizeof *m->ids);
    assert_non_null(m->ids);
    for (size_t c = 0; c < m->n_columns; c++) {
        m->values[c] = realloc(m->values[c], m->capacity * sizeof *m->values[c]);
        assert_non_null(m->values[c]);
    }
}

/* A column of zeros, as a new column of the state reads. */
static void model_add_column(model *m, const char *name, baton_column_type type)
{
    snprintf(m->names[m->n_columns], sizeof m->names[0], "%s", name);
    m->types[m->n_columns] = type;
    m->values[m->n_columns] = calloc(m->capacity + 1, sizeof(uint64_t));
    assert_non_null(m->values[m->n_columns]);
    m->n_columns++;
}

static void model_free(model *m)
{
    for (size_t c = 0; c < m->n_columns; c++)
        free(m->values[c]);
    free(m->ids);
    free(m);
}

static uint64_t read_bits(baton_state *state, size_t c, size_t row, baton_column_type type)
{
    uint64_t bits = 0;
    const unsigned char *data = baton_state_column_data(state, c);
    memcpy(&bits, data + row * width_of(type), width_of(type));
    return bits;
}

static model *model_take(baton_state *state)
{
    model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->resident = baton_state_resident_bytes(state);
    model_reserve(m, baton_state_rows(state));
    m->rows = baton_state_rows(state);
    if (m->rows != 0)
        memcpy(m->ids, baton_state_ids(state), m->rows * 8);
    for (size_t c = 0; c < baton_state_columns(state); c++) {
        baton_column_spec info;
        bt_assert_rc(baton_state_column_info(state, c, &info), 0);
        model_add_column(m, info.name, info.type);
        for (size_t r = 0; r < m->rows; r++)
            m->values[c][r] = read_bits(state, c, r, info.type);
    }
    return m;
}

/* Asserts that the state holds what the model does (only rows and ids unless `full`). */
static void model_check(const model *m, baton_state *state, bool full)
{
    assert_int_equal(baton_state_rows(state), m->rows);
    assert_int_equal(baton_state_columns(state), m->n_columns);
    if (m->rows != 0)
        assert_memory_equal(baton_state_ids(state), m->ids, m->rows * 8);
    if (!full)
        return;
    if (m->resident != 0)
        assert_int_equal(baton_state_resident_bytes(state), m->resident);
    for (size_t c = 0; c < m->n_columns; c++) {
        baton_column_spec info;
        bt_assert_rc(baton_state_column_info(state, c, &info), 0);
        assert_string_equal(info.name, m->names[c]);
        assert_int_equal(info.type, m->types[c]);
        for (size_t r = 0; r < m->rows; r++) {
            uint64_t bits = read_bits(state, c, r, info.type);
            if (bits != m->values[c][r])
                fail_msg("column %zu (%s), row %zu (id %" PRIu64 "): %#" PRIx64 ", model %#" PRIx64,
                         c, info.name, r, m->ids[r], bits, m->values[c][r]);
        }
    }
    for (size_t r = 0; r < m->rows; r++) {
        size_t row = SIZE_MAX;
        bt_assert_rc(baton_state_find(state, m->ids[r], &row), 0);
        assert_int_equal(row, r);
    }
}

static const baton_column_spec three_columns[] = {
    {"pos.x", BATON_COLUMN_FLOAT},
    {"mass", BATON_COLUMN_DOUBLE},
    {"count-1", BATON_COLUMN_INT64},
};

/* A state of three columns and `rows` rows, ids 100, 101, ..., values set from the row. */
static baton_state *filled_state(size_t rows)
{
    baton_state *state = create_state(three_columns, 3);
    uint64_t *ids = malloc(rows * 8 + 8);
    assert_non_null(ids);
    for (size_t r = 0; r < rows; r++)
        ids[r] = 100 + r;
    bt_assert_rc(baton_state_add_rows(state, ids, rows, NULL), 0);
    for (size_t r = 0; r < rows; r++) {
        baton_state_float(state, 0)[r] = (float)r + 0.5f;
        baton_state_double(state, 1)[r] = -(double)r;
        baton_state_int64(state, 2)[r] = (int64_t)(r * 3) - 7;
    }
    free(ids);
    return state;
}

/* ---- specs: create and add_column --------------------------------------------------------- */

typedef struct bad_spec {
    baton_column_spec spec;
    const char *named; /* what the message must contain besides the spec's place */
} bad_spec;

static const char long_name[] = "a234567890123456789012345678901234567890123456789012345678901234";

static const bad_spec bad_specs[] = {
    {{NULL, BATON_COLUMN_FLOAT}, "is NULL"},
    {{"", BATON_COLUMN_FLOAT}, "empty"},
    {{long_name, BATON_COLUMN_FLOAT}, "a2345678901234567890"},
    {{"a b", BATON_COLUMN_DOUBLE}, "\"a b\" has byte 0x20 at offset 1"},
    {{"x/y", BATON_COLUMN_DOUBLE}, "0x2f at offset 1"},
    {{"tab\t", BATON_COLUMN_INT64}, "0x09 at offset 3"},
    {{"\xc3\xa9t\xc3\xa9", BATON_COLUMN_INT64}, "0xc3 at offset 0"},
    {{"ok", (baton_column_type)0}, "type 0"},
    {{"ok", (baton_column_type)4}, "type 4"},
    {{"ok", (baton_column_type)-1}, "type -1"},
    {{"ok", (baton_column_type)1000}, "type 1000"},
};
#define N_BAD_SPECS (sizeof bad_specs / sizeof bad_specs[0])

static void test_create_errors(void **unused)
{
    (void)unused;
    baton_state *state = (baton_state *)(uintptr_t)0x1234;
    EXPECT_ERROR(baton_state_create(three_columns, 3, NULL), BATON_EINVAL, "out");
    EXPECT_ERROR(baton_state_create(NULL, 2, &state), BATON_EINVAL, "columns", "n_columns = 2");
    assert_null(state);
    baton_column_spec *many = calloc(BATON_STATE_MAX_COLUMNS + 1, sizeof *many);
    char(*names)[16] = calloc(BATON_STATE_MAX_COLUMNS + 1, sizeof *names);
    assert_true(many != NULL && names != NULL);
    for (size_t i = 0; i <= BATON_STATE_MAX_COLUMNS; i++) {
        snprintf(names[i], sizeof names[i], "c%zu", i);
        many[i] = (baton_column_spec){names[i], (baton_column_type)(1 + i % 3)};
    }
    EXPECT_ERROR(baton_state_create(many, BATON_STATE_MAX_COLUMNS + 1, &state), BATON_EINVAL, "257",
                 "256");
    assert_null(state);

    /* A bad spec anywhere in the list: EINVAL, naming its place and what is wrong. */
    for (size_t b = 0; b < N_BAD_SPECS; b++) {
        baton_column_spec columns[3] = {three_columns[0], bad_specs[b].spec, three_columns[2]};
        state = (baton_state *)(uintptr_t)0x1234;
        EXPECT_ERROR(baton_state_create(columns, 3, &state), BATON_EINVAL, "baton_state_create",
                     "columns[1]", bad_specs[b].named);
        assert_null(state);
    }
    baton_column_spec twice[4] = {{"x", BATON_COLUMN_FLOAT},
                                  {"y", BATON_COLUMN_FLOAT},
                                  {"z", BATON_COLUMN_INT64},
                                  {"y", BATON_COLUMN_DOUBLE}};
    EXPECT_ERROR(baton_state_create(twice, 4, &state), BATON_EEXIST, "\"y\"", "columns[1]",
                 "columns[3]");
    assert_null(state);

    /* Out of memory at each allocation in turn: ENOMEM and no state, until it succeeds. */
    FAIL_EACH_ALLOCATION(baton_state_create(many, 40, &state), "baton_state_create",
                         assert_null(state));
    baton_state_destroy(state);

    /* The limits themselves, and no columns at all. */
    state = create_state(many, BATON_STATE_MAX_COLUMNS);
    assert_int_equal(baton_state_columns(state), BATON_STATE_MAX_COLUMNS);
    baton_state_destroy(state);
    state = create_state(NULL, 0);
    assert_int_equal(baton_state_columns(state), 0);
    assert_int_equal(baton_state_rows(state), 0);
    baton_state_destroy(state);
    baton_state_destroy(NULL);
    free(many);
    free(names);
}

static void test_names_and_accessors(void **unused)
{
    (void)unused;
    char name0[BATON_COLUMN_NAME_MAX + 1];
    memcpy(name0, long_name, BATON_COLUMN_NAME_MAX); /* exactly the longest name */
    name0[BATON_COLUMN_NAME_MAX] = '\0';
    char name1[] = "ABCXYZabcxyz0189_.-";
    baton_column_spec columns[2] = {{name0, BATON_COLUMN_INT64}, {name1, BATON_COLUMN_FLOAT}};
    baton_state *state = create_state(columns, 2);
    /* Copied: the caller's buffers may change. */
    char expect0[sizeof name0], expect1[sizeof name1];
    memcpy(expect0, name0, sizeof name0);
    memcpy(expect1, name1, sizeof name1);
    memset(name0, 'q', BATON_COLUMN_NAME_MAX);
    name1[0] = 'q';
    baton_column_spec info;
    bt_assert_rc(baton_state_column_info(state, 0, &info), 0);
    assert_string_equal(info.name, expect0);
    assert_int_equal(info.type, BATON_COLUMN_INT64);
    const char *kept = info.name;
    /* Names handed out stay where they are while columns are added. */
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof name, "more%d", i);
        baton_column_spec spec = {name, (baton_column_type)(1 + i % 3)};
        bt_assert_rc(baton_state_add_column(state, &spec), 0);
    }
    bt_assert_rc(baton_state_column_info(state, 0, &info), 0);
    assert_ptr_equal(info.name, kept);
    assert_string_equal(kept, expect0);
    size_t index = SIZE_MAX;
    bt_assert_rc(baton_state_column_index(state, expect1, &index), 0);
    assert_int_equal(index, 1);
    bt_assert_rc(baton_state_column_index(state, "more99", &index), 0);
    assert_int_equal(index, 101);

    /* Errors of column_info and column_index. */
    EXPECT_ERROR(baton_state_column_info(NULL, 0, &info), BATON_EINVAL, "state");
    EXPECT_ERROR(baton_state_column_info(state, 0, NULL), BATON_EINVAL, "out");
    EXPECT_ERROR(baton_state_column_info(state, 102, &info), BATON_ERANGE, "index 102",
                 "102 columns");
    EXPECT_ERROR(baton_state_column_info(state, SIZE_MAX, &info), BATON_ERANGE,
                 "18446744073709551615");
    EXPECT_ERROR(baton_state_column_index(NULL, "x", &index), BATON_EINVAL, "state");
    EXPECT_ERROR(baton_state_column_index(state, NULL, &index), BATON_EINVAL, "name");
    EXPECT_ERROR(baton_state_column_index(state, "x", NULL), BATON_EINVAL, "out_index");
    EXPECT_ERROR(baton_state_column_index(state, "no_such", &index), BATON_ENOTFOUND,
                 "\"no_such\"");
    EXPECT_ERROR(baton_state_column_index(state, "", &index), BATON_ENOTFOUND, "\"\"");
    assert_int_equal(index, 101);

    /* Typed accessors: NULL for another type, an index out of range or a NULL state. */
    uint64_t id = 5;
    bt_assert_rc(baton_state_add_rows(state, &id, 1, NULL), 0);
    assert_non_null(baton_state_int64(state, 0));
    assert_null(baton_state_float(state, 0));
    assert_null(baton_state_double(state, 0));
    assert_non_null(baton_state_float(state, 1));
    assert_null(baton_state_int64(state, 1));
    assert_non_null(baton_state_double(state, 3)); /* more1: type 2 */
    assert_ptr_equal(baton_state_column_data(state, 3), baton_state_double(state, 3));
    assert_null(baton_state_column_data(state, 102));
    assert_null(baton_state_float(state, SIZE_MAX));
    assert_true(baton_state_column_data(NULL, 0) == NULL && baton_state_int64(NULL, 0) == NULL &&
                baton_state_ids(NULL) == NULL);
    assert_true(baton_state_rows(NULL) == 0 && baton_state_columns(NULL) == 0 &&
                baton_state_resident_bytes(NULL) == 0);
    /* The arrays start on a cache line. */
    for (size_t c = 0; c < baton_state_columns(state); c++)
        assert_int_equal((uintptr_t)baton_state_column_data(state, c) % 64, 0);
    assert_int_equal((uintptr_t)baton_state_ids(state) % 64, 0);
    baton_state_destroy(state);
}

static void test_add_column_errors(void **unused)
{
    (void)unused;
    baton_state *state = filled_state(1000);
    baton_column_spec good = {"fresh", BATON_COLUMN_DOUBLE};
    model *snap = model_take(state);
    EXPECT_ERROR(baton_state_add_column(NULL, &good), BATON_EINVAL, "state");
    EXPECT_ERROR(baton_state_add_column(state, NULL), BATON_EINVAL, "spec");
    for (size_t b = 0; b < N_BAD_SPECS; b++) {
        EXPECT_ERROR(baton_state_add_column(state, &bad_specs[b].spec), BATON_EINVAL,
                     "baton_state_add_column", "spec", bad_specs[b].named);
        model_check(snap, state, true);
    }
    baton_column_spec same = {"mass", BATON_COLUMN_INT64};
    EXPECT_ERROR(baton_state_add_column(state, &same), BATON_EEXIST, "\"mass\"", "column 1");
    model_check(snap, state, true);
    FAIL_EACH_ALLOCATION(baton_state_add_column(state, &good), "\"fresh\"",
                         model_check(snap, state, true));
    /* The new column reads 0 (+0.0: all bits 0) in every row; the others are as they were. */
    model_add_column(snap, "fresh", BATON_COLUMN_DOUBLE);
    snap->resident = 0;
    model_check(snap, state, true);
    model_free(snap);
    baton_state_destroy(state);

    /* The 257th column. */
    state = create_state(NULL, 0);
    for (unsigned i = 0; i < BATON_STATE_MAX_COLUMNS; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%u", i);
        baton_column_spec spec = {name, BATON_COLUMN_FLOAT};
        bt_assert_rc(baton_state_add_column(state, &spec), 0);
    }
    snap = model_take(state);
    baton_column_spec last = {"one_too_many", BATON_COLUMN_FLOAT};
    EXPECT_ERROR(baton_state_add_column(state, &last), BATON_EINVAL, "\"one_too_many\"", "256");
    model_check(snap, state, true);
    model_free(snap);
    baton_state_destroy(state);
}

/* ---- rows: errors ------------------------------------------------------------------------- */

static void test_add_rows_errors(void **unused)
{
    (void)unused;
    baton_state *state = filled_state(300); /* ids 100 .. 399 */
    model *snap = model_take(state);
    uint64_t ids[5] = {1000, 1001, 142, 1003, 1004};
    size_t first = 77;
    EXPECT_ERROR(baton_state_add_rows(NULL, ids, 5, &first), BATON_EINVAL, "state");
    EXPECT_ERROR(baton_state_add_rows(state, NULL, 3, &first), BATON_EINVAL, "ids", "n = 3");
    assert_int_equal(first, 77);
    bt_assert_rc(baton_state_add_rows(state, NULL, 0, &first), 0);
    assert_int_equal(first, 300);
    bt_assert_rc(baton_state_add_rows(state, ids, 0, NULL), 0);
    model_check(snap, state, true);

    /* An id already in the state: named with its place in ids and its row. */
    EXPECT_ERROR(baton_state_add_rows(state, ids, 5, &first), BATON_EEXIST, "id 142", "ids[2]",
                 "row 42");
    model_check(snap, state, true);
    /* Twice in ids, the second time far from the first: both places named. */
    size_t n = bt_scaled(100000, 5000);
    uint64_t *many = malloc(n * sizeof *many);
    assert_non_null(many);
    for (size_t i = 0; i < n; i++)
        many[i] = UINT64_C(1) << 40 | i;
    many[n - 1] = many[3];
    char last[32];
    snprintf(last, sizeof last, "ids[%zu]", n - 1);
    EXPECT_ERROR(baton_state_add_rows(state, many, n, NULL), BATON_EEXIST, "id 1099511627779 ",
                 last, "ids[3]");
    model_check(snap, state, true);
    /* The same into an empty state (checked as the index is built), fresh or emptied. */
    baton_state *empty = filled_state(0);
    for (int round = 0; round < 2; round++) {
        EXPECT_ERROR(baton_state_add_rows(empty, many, n, NULL), BATON_EEXIST, "id 1099511627779 ",
                     last, "ids[3]");
        assert_int_equal(baton_state_rows(empty), 0);
        bt_assert_rc(baton_state_add_rows(empty, many, n - 1, NULL), 0);
        bt_assert_rc(baton_state_find(empty, many[n - 2], &first), 0);
        assert_int_equal(first, n - 2);
        bt_assert_rc(baton_state_remove_rows(empty, many, n - 1), 0);
    }
    baton_state_destroy(empty);
    /* An id of the state at the very end of a long list. */
    many[n - 1] = 399;
    EXPECT_ERROR(baton_state_add_rows(state, many, n, NULL), BATON_EEXIST, "id 399", "row 299",
                 last);
    model_check(snap, state, true);
    /* Single ids: 0 and UINT64_MAX are ordinary ids. */
    uint64_t edge[2] = {0, UINT64_MAX};
    bt_assert_rc(baton_state_add_rows(state, edge, 2, &first), 0);
    assert_int_equal(first, 300);
    EXPECT_ERROR(baton_state_add_rows(state, &edge[1], 1, NULL), BATON_EEXIST,
                 "18446744073709551615", "ids[0]", "row 301");
    EXPECT_ERROR(baton_state_add_rows(state, &edge[0], 1, NULL), BATON_EEXIST, "id 0 ", "row 300");
    bt_assert_rc(baton_state_remove_rows(state, edge, 2), 0);
    model_check(snap, state, true);

    /* Out of memory at each allocation of a growing add: nothing added, until it works. */
    many[n - 1] = UINT64_C(1) << 41;
    FAIL_EACH_ALLOCATION(baton_state_add_rows(state, many, n, &first), "baton_state_add_rows",
                         model_check(snap, state, true));
    assert_int_equal(first, 300);
    assert_int_equal(baton_state_rows(state), 300 + n);
    assert_memory_equal(baton_state_ids(state) + 300, many, n * 8);
    for (size_t r = 300; r < 300 + n; r++)
        assert_true(baton_state_int64(state, 2)[r] == 0 && baton_state_float(state, 0)[r] == 0);
    free(many);
    model_free(snap);
    baton_state_destroy(state);
}

static void test_remove_rows_and_find_errors(void **unused)
{
    (void)unused;
    baton_state *state = filled_state(300); /* ids 100 .. 399 */
    model *snap = model_take(state);
    EXPECT_ERROR(baton_state_remove_rows(NULL, snap->ids, 1), BATON_EINVAL, "state");
    EXPECT_ERROR(baton_state_remove_rows(state, NULL, 4), BATON_EINVAL, "ids", "n = 4");
    bt_assert_rc(baton_state_remove_rows(state, NULL, 0), 0);
    uint64_t absent[4] = {100, 399, 400, 250};
    EXPECT_ERROR(baton_state_remove_rows(state, absent, 4), BATON_ENOTFOUND, "id 400", "ids[2]");
    model_check(snap, state, true);
    uint64_t twice[5] = {250, 120, 130, 140, 120};
    EXPECT_ERROR(baton_state_remove_rows(state, twice, 5), BATON_EINVAL, "id 120", "ids[1]",
                 "ids[4]");
    model_check(snap, state, true);
    /* All 300 ids and one more, or one of them twice at the end. */
    uint64_t all[301];
    memcpy(all, snap->ids, 300 * 8);
    all[300] = 5;
    EXPECT_ERROR(baton_state_remove_rows(state, all, 301), BATON_ENOTFOUND, "id 5 ", "ids[300]");
    all[300] = 399;
    EXPECT_ERROR(baton_state_remove_rows(state, all, 301), BATON_EINVAL, "id 399", "ids[299]",
                 "ids[300]");
    model_check(snap, state, true);
    FAIL_EACH_ALLOCATION(baton_state_remove_rows(state, twice, 4), "baton_state_remove_rows",
                         model_check(snap, state, true));
    assert_int_equal(baton_state_rows(state), 296);

    size_t row = 12345;
    EXPECT_ERROR(baton_state_find(NULL, 5, &row), BATON_EINVAL, "state");
    EXPECT_ERROR(baton_state_find(state, 5, NULL), BATON_EINVAL, "out_row");
    EXPECT_ERROR(baton_state_find(state, 120, &row), BATON_ENOTFOUND, "id 120");
    EXPECT_ERROR(baton_state_find(state, UINT64_MAX - 1, &row), BATON_ENOTFOUND,
                 "18446744073709551614");
    assert_int_equal(row, 12345);
    bt_assert_rc(baton_state_find(state, 141, &row), 0);
    assert_int_equal(row, 41 - 3); /* 120, 130 and 140 went before it */
    model_free(snap);
    baton_state_destroy(state);

    /* An empty state: nothing to remove or find. */
    state = create_state(NULL, 0);
    EXPECT_ERROR(baton_state_remove_rows(state, absent, 1), BATON_ENOTFOUND, "id 100");
    EXPECT_ERROR(baton_state_find(state, 0, &row), BATON_ENOTFOUND, "id 0 ");
    baton_state_destroy(state);
}

/* ---- a random sequence against a model ---------------------------------------------------- */

enum { MODEL_MAX_COLUMNS = 24, MODEL_MAX_ROWS = 3000, COLLIDING_MAX_ROWS = 400 };

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Removes the rows of the given ids, keeping the order of the others. */
static void model_remove(model *m, const uint64_t *ids, size_t n)
{
    uint64_t *sorted = malloc(n * sizeof *sorted);
    assert_non_null(sorted);
    memcpy(sorted, ids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, compare_u64);
    size_t kept = 0;
    for (size_t r = 0; r < m->rows; r++) {
        if (bsearch(&m->ids[r], sorted, n, sizeof *sorted, compare_u64) != NULL)
            continue;
        m->ids[kept] = m->ids[r];
        for (size_t c = 0; c < m->n_columns; c++)
            m->values[c][kept] = m->values[c][r];
        kept++;
    }
    assert_int_equal(kept, m->rows - n);
    m->rows = kept;
    free(sorted);
}

/* Writes random bits to (row, column) through the typed pointer, and to the model. */
static void write_value(model *m, baton_state *state, size_t row, size_t c, bt_rng *rng)
{
    uint64_t bits = bt_rng_next(rng);
    if (m->types[c] == BATON_COLUMN_FLOAT) {
        uint32_t low = (uint32_t)bits;
        memcpy(&baton_state_float(state, c)[row], &low, 4);
        bits = low;
    } else if (m->types[c] == BATON_COLUMN_DOUBLE) {
        memcpy(&baton_state_double(state, c)[row], &bits, 8);
    } else {
        baton_state_int64(state, c)[row] = (int64_t)bits;
    }
    m->values[c][row] = bits;
}

/* The inverse of baton_mix64, to make ids whose index hashes collide on purpose. */
static uint64_t inverse_odd(uint64_t a)
{
    uint64_t x = a; /* correct to 3 bits; each Newton step doubles that */
    for (int i = 0; i < 6; i++)
        x *= 2 - a * x;
    return x;
}

static uint64_t unxorshift(uint64_t y, unsigned shift)
{
    uint64_t x = y;
    for (unsigned i = 0; i <= 64 / shift; i++)
        x = y ^ (x >> shift);
    return x;
}

static uint64_t unmix64(uint64_t h)
{
    h = unxorshift(h, 31);
    h *= inverse_odd(UINT64_C(0x94d049bb133111eb));
    h = unxorshift(h, 27);
    h *= inverse_odd(UINT64_C(0xbf58476d1ce4e5b9));
    return unxorshift(h, 30);
}

typedef struct id_source {
    bool colliding;
    uint64_t counter;
    uint64_t removed[4 * MODEL_MAX_ROWS]; /* ids removed earlier (a bounded sample) */
    size_t n_removed;
} id_source;

/* An id never handed out before. Ordinary: 0, UINT64_MAX, then small sequential ids
 * alternating with scattered ones (top bit set, so the two kinds never meet). Colliding:
 * ids whose baton_mix64 ends in 20 one-bits, so every one has the last slot of the index
 * (of up to 2^20 slots) as its home. */
static uint64_t fresh_id(id_source *source)
{
    uint64_t c = source->counter++;
    if (source->colliding) {
        uint64_t hash = c << 20 | 0xFFFFF;
        uint64_t id = unmix64(hash);
        assert_true(baton_mix64(id) == hash);
        return id;
    }
    if (c == 1)
        return UINT64_MAX;
    return c % 2 == 0 ? c / 2 : (c * UINT64_C(0x9e3779b97f4a7c15)) | UINT64_C(1) << 63;
}

/* An id that is not in the state: sometimes one removed earlier, else a fresh one. */
static uint64_t absent_id(id_source *source, bt_rng *rng)
{
    if (source->n_removed != 0 && bt_rng_below(rng, 3) == 0) {
        size_t i = (size_t)bt_rng_below(rng, source->n_removed);
        uint64_t id = source->removed[i];
        source->removed[i] = source->removed[--source->n_removed];
        return id;
    }
    return fresh_id(source);
}

static void op_add(model *m, baton_state *state, id_source *source, bt_rng *rng)
{
    size_t n = 1 + (size_t)bt_rng_below(rng, bt_rng_below(rng, 4) == 0 ? 600 : 8);
    uint64_t *ids = malloc(n * sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = absent_id(source, rng);
    bool inject = bt_rng_below(rng, 16) == 0;
    if (inject)
        baton__alloc_fail_after((long)bt_rng_below(rng, 4));
    size_t first = SIZE_MAX;
    int rc = baton_state_add_rows(state, ids, n, &first);
    baton__alloc_fail_after(-1);
    if (inject && rc == BATON_ENOMEM) {
        model_check(m, state, true);
        for (size_t i = 0; i < n && source->n_removed < 4 * MODEL_MAX_ROWS; i++)
            source->removed[source->n_removed++] = ids[i];
        free(ids);
        return;
    }
    bt_assert_rc(rc, 0);
    assert_int_equal(first, m->rows);
    model_reserve(m, m->rows + n);
    memcpy(m->ids + m->rows, ids, n * sizeof *ids);
    for (size_t c = 0; c < m->n_columns; c++)
        memset(m->values[c] + m->rows, 0, n * sizeof(uint64_t));
    m->rows += n;
    /* Some of the new rows get values right away. */
    for (size_t i = 0; i < n; i++)
        if (bt_rng_below(rng, 2) == 0)
            for (size_t c = 0; c < m->n_columns; c++)
                write_value(m, state, first + i, c, rng);
    free(ids);
}

static void op_remove(model *m, baton_state *state, id_source *source, bt_rng *rng)
{
    size_t *rows = malloc(m->rows * sizeof *rows);
    uint64_t *ids = malloc(m->rows * sizeof *ids);
    assert_true(rows != NULL && ids != NULL);
    size_t n, shape = (size_t)bt_rng_below(rng, 50);
    if (shape < 5) { /* the last rows, last first */
        n = 1 + (size_t)bt_rng_below(rng, m->rows < 20 ? m->rows : 20);
        for (size_t i = 0; i < n; i++)
            rows[i] = m->rows - 1 - i;
    } else { /* random rows in random order: all, any number, or a few */
        n = shape == 5 ? m->rows : 1 + (size_t)bt_rng_below(rng, shape < 9 ? m->rows : 12);
        n = n < m->rows ? n : m->rows;
        for (size_t i = 0; i < m->rows; i++)
            rows[i] = i;
        for (size_t i = 0; i < n; i++) {
            size_t j = i + (size_t)bt_rng_below(rng, m->rows - i), t = rows[i];
            rows[i] = rows[j];
            rows[j] = t;
        }
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = m->ids[rows[i]];
    bt_assert_rc(baton_state_remove_rows(state, ids, n), 0);
    model_remove(m, ids, n);
    for (size_t i = 0; i < n && source->n_removed < 4 * MODEL_MAX_ROWS; i++)
        source->removed[source->n_removed++] = ids[i];
    free(rows);
    free(ids);
}

static void op_add_column(model *m, baton_state *state, bt_rng *rng)
{
    char name[32];
    snprintf(name, sizeof name, "col.%zu", m->n_columns);
    baton_column_spec spec = {name, (baton_column_type)(1 + bt_rng_below(rng, 3))};
    bt_assert_rc(baton_state_add_column(state, &spec), 0);
    model_add_column(m, name, spec.type);
}

/* A call that must fail, and change nothing. */
static void op_fail(model *m, baton_state *state, id_source *source, bt_rng *rng)
{
    uint64_t ids[3];
    uint64_t present = m->ids[bt_rng_below(rng, m->rows)];
    size_t row = 0;
    switch (bt_rng_below(rng, 4)) {
    case 0:
        ids[0] = fresh_id(source), ids[1] = present, ids[2] = fresh_id(source);
        bt_assert_rc(baton_state_add_rows(state, ids, 3, NULL), BATON_EEXIST);
        break;
    case 1:
        ids[0] = fresh_id(source), ids[1] = fresh_id(source), ids[2] = ids[0];
        bt_assert_rc(baton_state_add_rows(state, ids, 3, NULL), BATON_EEXIST);
        break;
    case 2:
        ids[0] = present, ids[1] = fresh_id(source);
        bt_assert_rc(baton_state_remove_rows(state, ids, 2), BATON_ENOTFOUND);
        bt_assert_rc(baton_state_find(state, ids[1], &row), BATON_ENOTFOUND);
        break;
    default:
        ids[0] = present, ids[1] = present;
        bt_assert_rc(baton_state_remove_rows(state, ids, 2), BATON_EINVAL);
        break;
    }
}

static void run_model(bool colliding, uint64_t seed, size_t n_ops)
{
    bt_rng rng = bt_rng_seed(seed);
    id_source *source = calloc(1, sizeof *source);
    assert_non_null(source);
    source->colliding = colliding;
    baton_state *state = create_state(three_columns, 2);
    model *m = model_take(state);
    m->resident = 0; /* it changes as the state grows */
    size_t most_rows = colliding ? COLLIDING_MAX_ROWS : MODEL_MAX_ROWS, peak_rows = 0;
    for (size_t op = 0; op < n_ops; op++) {
        unsigned kind = (unsigned)bt_rng_below(&rng, 100);
        bool full = op % 8 == 0;
        if (kind < 35 && m->rows < most_rows) {
            op_add(m, state, source, &rng);
        } else if (kind < 65 && m->rows > 0) {
            op_remove(m, state, source, &rng);
        } else if (kind < 68 && m->n_columns < MODEL_MAX_COLUMNS) {
            op_add_column(m, state, &rng);
            full = true;
        } else if (kind < 92 && m->rows > 0) {
            size_t writes = 1 + (size_t)bt_rng_below(&rng, 64);
            for (size_t w = 0; w < writes; w++)
                write_value(m, state, (size_t)bt_rng_below(&rng, m->rows),
                            (size_t)bt_rng_below(&rng, m->n_columns), &rng);
        } else if (m->rows > 0) {
            op_fail(m, state, source, &rng);
            full = true;
        }
        model_check(m, state, full);
        peak_rows = m->rows > peak_rows ? m->rows : peak_rows;
    }
    model_check(m, state, true);
    printf("# %s ids, seed %#" PRIx64 ": %zu ops, at most %zu rows, %zu columns, %zu ids used\n",
           colliding ? "colliding" : "ordinary", seed, n_ops, peak_rows, m->n_columns,
           (size_t)source->counter);
    model_free(m);
    free(source);
    baton_state_destroy(state);
}

static void test_model_ordinary_ids(void **unused)
{
    (void)unused;
    run_model(false, 0x5eed0001, bt_scaled(6000, 600));
}

static void test_model_colliding_ids(void **unused)
{
    (void)unused;
    run_model(true, 0x5eed0002, bt_scaled(3000, 300));
}

/* ---- resident bytes ----------------------------------------------------------------------- */

static void test_resident_bytes(void **unused)
{
    (void)unused;
    baton_state *state = create_state(three_columns, 3);
    size_t before = baton_state_resident_bytes(state);
    assert_true(before > 0);
    uint64_t ids[1000];
    bool grew = false;
    for (size_t batch = 0; batch < 20; batch++) {
        for (size_t i = 0; i < 1000; i++)
            ids[i] = batch * 1000 + i;
        bt_assert_rc(baton_state_add_rows(state, ids, 1000, NULL), 0);
        size_t now = baton_state_resident_bytes(state);
        size_t rows = baton_state_rows(state);
        /* Ids, a float, a double and an int64 per row, and an index entry per row at least. */
        assert_true(now >= before);
        assert_true(now >= rows * (8 + 4 + 8 + 8 + 16));
        grew = grew || now > before;
        before = now;
    }
    assert_true(grew);
    baton_column_spec spec = {"extra", BATON_COLUMN_DOUBLE};
    bt_assert_rc(baton_state_add_column(state, &spec), 0);
    assert_true(baton_state_resident_bytes(state) >= before + 20000 * 8);
    baton_state_destroy(state);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_names_and_accessors),
        cmocka_unit_test(test_add_column_errors),
        cmocka_unit_test(test_add_rows_errors),
        cmocka_unit_test(test_remove_rows_and_find_errors),
        cmocka_unit_test(test_model_ordinary_ids),
        cmocka_unit_test(test_model_colliding_ids),
        cmocka_unit_test(test_resident_bytes),
    };
    return cmocka_run_group_tests_name("engine/state", tests, NULL, NULL);
}
