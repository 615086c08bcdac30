/*
 * state.c — columnar state: rows of (id, named typed columns) stored as a structure of arrays,
 * with an index from id to row (include/baton/engine.h).
 *
 * DESIGN
 *  - One contiguous, cache-line-aligned array per column plus one for the ids, all with room for
 *    the same `capacity` rows. Capacity doubles when rows are added past it (16 first), so a
 *    long run of small adds costs amortised O(1) copies per row; arrays are not shrunk when
 *    rows are removed (the engine adds and removes between steps and would grow them again).
 *  - The index from id to row is open addressing with linear probing over a power-of-two table
 *    kept at most half full, keyed by baton_mix64(id) (a bijection, so sequential ids spread
 *    out). Empty slots are marked by row 0 stored as row + 1, so any 64-bit id is a valid key.
 *    Deletion shifts the rest of the cluster back (Knuth, TAOCP vol. 3, 6.4 Algorithm R)
 *    instead of leaving tombstones, so lookups never slow down after many removals.
 *  - Removal keeps the order of the remaining rows (the fingerprint depends on it): the removed
 *    rows are marked in a bitmap, then each array is compacted in one pass from the first
 *    removed row, moving whole runs of kept rows with memmove. Only rows at or after the first
 *    removed row move, so only their index entries are fixed; cost is O(n + rows moved).
 *  - Every error leaves the state as it was: a call checks all of its arguments (every id,
 *    duplicates included) and allocates everything it will need before it changes anything,
 *    so the changes themselves cannot fail. Duplicates within an ids argument are found with
 *    a temporary hash set (add) or the removal bitmap (remove), never by comparing all pairs.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/os.h"
#include "engine/state_impl.h"

/* Rows the arrays have room for after the first add; capacity doubles from here. */
#define STATE_FIRST_CAPACITY 16u
/* Slots of the smallest id index (and of the temporary duplicate sets). */
#define INDEX_MIN_SLOTS 16u
/* How much of a caller's column name a message quotes. */
#define QUOTE_MAX 48u

/* ---- id index ----------------------------------------------------------------------------- */

static size_t home_slot(uint64_t id, size_t mask)
{
    return (size_t)baton_mix64(id) & mask;
}

/* The slot holding id, or the empty slot where it would go (a table is never full). */
static size_t probe(const baton__id_slot *slots, size_t mask, uint64_t id)
{
    size_t i = home_slot(id, mask);
    while (slots[i].row_plus_one != 0 && slots[i].id != id)
        i = (i + 1) & mask;
    return i;
}

/* Empties slot `hole` and moves later entries of its cluster back into the gap, so that every
 * remaining id is still reachable from its home slot without tombstones. */
static void erase_slot(baton__id_slot *slots, size_t mask, size_t hole)
{
    size_t next = hole;
    for (;;) {
        next = (next + 1) & mask;
        if (slots[next].row_plus_one == 0)
            break;
        size_t home = home_slot(slots[next].id, mask);
        /* An entry whose home lies cyclically in (hole, next] must stay where it is: moving it
         * before its home would hide it from its own probes. */
        if (((next - home) & mask) >= ((next - hole) & mask)) {
            slots[hole] = slots[next];
            hole = next;
        }
    }
    slots[hole].row_plus_one = 0;
}

/* A power of two of slots that holds `entries` at most half full; 0 when that overflows. */
static size_t slots_for(size_t entries)
{
    size_t slots = INDEX_MIN_SLOTS;
    while (slots / 2 < entries) {
        if (slots > SIZE_MAX / (4 * sizeof(baton__id_slot)))
            return 0;
        slots *= 2;
    }
    return slots;
}

static bool index_find(const baton_state *state, uint64_t id, size_t *out_row)
{
    if (state->index_slots == 0)
        return false;
    size_t slot = probe(state->index, state->index_slots - 1, id);
    if (state->index[slot].row_plus_one == 0)
        return false;
    *out_row = state->index[slot].row_plus_one - 1;
    return true;
}

/* ---- names and specs ---------------------------------------------------------------------- */

/* A caller's string as a message may quote it: bytes outside printable ASCII become '?', and
 * more than QUOTE_MAX bytes are cut with "...". */
static const char *quote(const char *text, char out[QUOTE_MAX + 4])
{
    size_t i = 0;
    for (; text[i] != '\0' && i < QUOTE_MAX; i++)
        out[i] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
    if (text[i] != '\0') {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

static bool is_name_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* Checks one column spec; `who` is the public function, `what` the spec ("columns[2]"). On
 * success *out_len is the name's length. */
static int check_spec(const char *who, const char *what, const baton_column_spec *spec,
                      size_t *out_len)
{
    char quoted[QUOTE_MAX + 4];
    if (spec->name == NULL)
        return baton__error(BATON_EINVAL, "%s: %s.name is NULL", who, what);
    size_t len = 0;
    while (len <= BATON_COLUMN_NAME_MAX && spec->name[len] != '\0')
        len++;
    if (len == 0)
        return baton__error(BATON_EINVAL, "%s: %s.name is empty", who, what);
    if (len > BATON_COLUMN_NAME_MAX)
        return baton__error(BATON_EINVAL,
                            "%s: %s.name \"%s\" is longer than BATON_COLUMN_NAME_MAX (%u bytes)",
                            who, what, quote(spec->name, quoted), BATON_COLUMN_NAME_MAX);
    for (size_t i = 0; i < len; i++)
        if (!is_name_byte(spec->name[i]))
            return baton__error(BATON_EINVAL,
                                "%s: %s.name \"%s\" has byte 0x%02x at offset %zu; a name is "
                                "made of A-Z a-z 0-9 _ . -",
                                who, what, quote(spec->name, quoted),
                                (unsigned)(unsigned char)spec->name[i], i);
    if (spec->type != BATON_COLUMN_FLOAT && spec->type != BATON_COLUMN_DOUBLE &&
        spec->type != BATON_COLUMN_INT64)
        return baton__error(BATON_EINVAL,
                            "%s: %s.type %d (column \"%s\") is not a baton_column_type (1 float, "
                            "2 double, 3 int64)",
                            who, what, (int)spec->type, spec->name);
    *out_len = len;
    return 0;
}

static size_t find_column(const baton_state *state, const char *name)
{
    for (size_t c = 0; c < state->n_columns; c++)
        if (strcmp(state->columns[c]->header, name) == 0)
            return c;
    return SIZE_MAX;
}

/* ---- arrays ------------------------------------------------------------------------------- */

/* capacity doubled (from STATE_FIRST_CAPACITY) until it holds `needed` rows; 0 on overflow. */
static size_t grown_capacity(size_t capacity, size_t needed)
{
    size_t grown = capacity != 0 ? capacity : STATE_FIRST_CAPACITY;
    while (grown < needed) {
        if (grown > SIZE_MAX / 16)
            return 0;
        grown *= 2;
    }
    return grown;
}

static void *alloc_rows(size_t capacity, size_t width)
{
    return baton__aligned_alloc(BATON__STATE_ALIGNMENT, capacity * width);
}

/* A column for a state of `rows` rows and room for `capacity`; rows [0, rows) read 0. */
static baton__column *column_new(const baton_column_spec *spec, size_t name_len, size_t rows,
                                 size_t capacity)
{
    baton__column *column = baton__malloc(sizeof *column);
    if (column == NULL)
        return NULL;
    column->type = spec->type;
    column->width = spec->type == BATON_COLUMN_FLOAT ? sizeof(float) : 8u;
    column->values = NULL;
    if (capacity != 0) {
        column->values = alloc_rows(capacity, column->width);
        if (column->values == NULL) {
            baton__free(column);
            return NULL;
        }
        memset(column->values, 0, rows * column->width);
    }
    column->name_len = name_len;
    memcpy(column->header, spec->name, name_len);
    column->header[name_len] = '\0';
    column->header[name_len + 1] = (char)spec->type;
    return column;
}

static void column_free(baton__column *column)
{
    if (column != NULL)
        baton__free(column->values);
    baton__free(column);
}

/* Makes room for one more column pointer (the state is unchanged when that fails). */
static bool reserve_column_slot(baton_state *state)
{
    if (state->n_columns < state->column_slots)
        return true;
    size_t slots = state->column_slots != 0 ? 2 * state->column_slots : 8;
    baton__column **bigger = baton__malloc(slots * sizeof *bigger);
    if (bigger == NULL)
        return false;
    if (state->n_columns != 0)
        memcpy(bigger, state->columns, state->n_columns * sizeof *bigger);
    baton__free(state->columns);
    state->columns = bigger;
    state->column_slots = slots;
    return true;
}

/* ---- create, destroy, columns ------------------------------------------------------------- */

int baton_state_create(const baton_column_spec *columns, size_t n_columns, baton_state **out)
{
    const char *who = "baton_state_create";
    if (out == NULL)
        return baton__error(BATON_EINVAL, "%s: out is NULL", who);
    *out = NULL;
    if (columns == NULL && n_columns > 0)
        return baton__error(BATON_EINVAL, "%s: columns is NULL with n_columns = %zu", who,
                            n_columns);
    if (n_columns > BATON_STATE_MAX_COLUMNS)
        return baton__error(BATON_EINVAL,
                            "%s: n_columns = %zu exceeds BATON_STATE_MAX_COLUMNS (%u)", who,
                            n_columns, BATON_STATE_MAX_COLUMNS);
    size_t name_len[BATON_STATE_MAX_COLUMNS];
    for (size_t i = 0; i < n_columns; i++) {
        char what[32];
        snprintf(what, sizeof what, "columns[%zu]", i);
        int rc = check_spec(who, what, &columns[i], &name_len[i]);
        if (rc != 0)
            return rc;
        /* At most 256 columns: comparing every pair is cheaper than building a set. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(columns[j].name, columns[i].name) == 0)
                return baton__error(BATON_EEXIST,
                                    "%s: column name \"%s\" is given twice (columns[%zu] and "
                                    "columns[%zu])",
                                    who, columns[i].name, j, i);
    }

    baton_state *state = baton__calloc(1, sizeof *state);
    if (state == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory for a state", who);
    for (size_t i = 0; i < n_columns; i++) {
        baton__column *column = NULL;
        if (reserve_column_slot(state))
            column = column_new(&columns[i], name_len[i], 0, 0);
        if (column == NULL) {
            baton_state_destroy(state);
            return baton__error(BATON_ENOMEM, "%s: no memory for column %zu of %zu (\"%s\")", who,
                                i, n_columns, columns[i].name);
        }
        state->columns[state->n_columns++] = column;
    }
    *out = state;
    return 0;
}

void baton_state_destroy(baton_state *state)
{
    if (state == NULL)
        return;
    for (size_t c = 0; c < state->n_columns; c++)
        column_free(state->columns[c]);
    baton__free(state->columns);
    baton__free(state->ids);
    baton__free(state->index);
    baton__free(state);
}

int baton_state_add_column(baton_state *state, const baton_column_spec *spec)
{
    const char *who = "baton_state_add_column";
    if (state == NULL || spec == NULL)
        return baton__error(BATON_EINVAL, "%s: %s is NULL", who, state == NULL ? "state" : "spec");
    size_t name_len = 0;
    int rc = check_spec(who, "spec", spec, &name_len);
    if (rc != 0)
        return rc;
    size_t existing = find_column(state, spec->name);
    if (existing != SIZE_MAX)
        return baton__error(BATON_EEXIST,
                            "%s: the state already has a column named \"%s\" "
                            "(column %zu)",
                            who, spec->name, existing);
    if (state->n_columns >= BATON_STATE_MAX_COLUMNS)
        return baton__error(BATON_EINVAL,
                            "%s: cannot add column \"%s\": the state already has "
                            "BATON_STATE_MAX_COLUMNS (%u) columns",
                            who, spec->name, BATON_STATE_MAX_COLUMNS);
    baton__column *column = column_new(spec, name_len, state->rows, state->capacity);
    if (column == NULL || !reserve_column_slot(state)) {
        column_free(column);
        return baton__error(BATON_ENOMEM, "%s: no memory for column \"%s\" of %zu rows", who,
                            spec->name, state->capacity);
    }
    state->columns[state->n_columns++] = column;
    return 0;
}

size_t baton_state_rows(const baton_state *state)
{
    return state != NULL ? state->rows : 0;
}

size_t baton_state_columns(const baton_state *state)
{
    return state != NULL ? state->n_columns : 0;
}

int baton_state_column_info(const baton_state *state, size_t index, baton_column_spec *out)
{
    if (state == NULL || out == NULL)
        return baton__error(BATON_EINVAL, "baton_state_column_info: %s is NULL",
                            state == NULL ? "state" : "out");
    if (index >= state->n_columns)
        return baton__error(BATON_ERANGE,
                            "baton_state_column_info: index %zu is out of range (the state has "
                            "%zu columns)",
                            index, state->n_columns);
    out->name = state->columns[index]->header;
    out->type = state->columns[index]->type;
    return 0;
}

int baton_state_column_index(const baton_state *state, const char *name, size_t *out_index)
{
    const char *who = "baton_state_column_index";
    if (state == NULL || name == NULL || out_index == NULL)
        return baton__error(BATON_EINVAL, "%s: %s is NULL", who,
                            state == NULL  ? "state"
                            : name == NULL ? "name"
                                           : "out_index");
    size_t index = find_column(state, name);
    if (index == SIZE_MAX) {
        char quoted[QUOTE_MAX + 4];
        return baton__error(BATON_ENOTFOUND, "%s: no column is named \"%s\" (of %zu columns)", who,
                            quote(name, quoted), state->n_columns);
    }
    *out_index = index;
    return 0;
}

/* ---- arrays ------------------------------------------------------------------------------- */

const uint64_t *baton_state_ids(const baton_state *state)
{
    return state != NULL ? state->ids : NULL;
}

/* Column `index`'s values, or NULL when there is no such column or it has another type
 * (type 0: any type). */
static void *column_values(baton_state *state, size_t index, int type)
{
    if (state == NULL || index >= state->n_columns)
        return NULL;
    const baton__column *column = state->columns[index];
    if (type != 0 && (int)column->type != type)
        return NULL;
    return column->values;
}

float *baton_state_float(baton_state *state, size_t index)
{
    return column_values(state, index, BATON_COLUMN_FLOAT);
}

double *baton_state_double(baton_state *state, size_t index)
{
    return column_values(state, index, BATON_COLUMN_DOUBLE);
}

int64_t *baton_state_int64(baton_state *state, size_t index)
{
    return column_values(state, index, BATON_COLUMN_INT64);
}

void *baton_state_column_data(baton_state *state, size_t index)
{
    return column_values(state, index, 0);
}

/* ---- adding rows -------------------------------------------------------------------------- */

/* Inserts ids[0 .. n) as rows first_row .. into an index that holds none of them, a batch at
 * a time with the batch's home slots prefetched (a large index is a cache miss per id, and
 * the misses of a batch overlap). Stops at an id already there (twice in ids): false, with
 * *out_dup its position in ids and *out_first the row of its first occurrence. */
static bool insert_ids(baton__id_slot *slots, size_t mask, const uint64_t *ids, size_t n,
                       size_t first_row, size_t *out_dup, size_t *out_first)
{
    enum { BATCH = 16 };
    for (size_t b = 0; b < n; b += BATCH) {
        size_t end = n - b < BATCH ? n : b + BATCH;
        for (size_t i = b; i < end; i++)
            BATON__PREFETCH_WRITE(&slots[home_slot(ids[i], mask)]);
        for (size_t i = b; i < end; i++) {
            size_t slot = probe(slots, mask, ids[i]);
            if (slots[slot].row_plus_one != 0) {
                *out_dup = i;
                *out_first = slots[slot].row_plus_one - 1;
                return false;
            }
            slots[slot] = (baton__id_slot){ids[i], first_row + i + 1};
        }
    }
    return true;
}

/* Checks that no id of ids[] is in the state or twice in ids[]; the first problem in ids order
 * is reported. */
static int check_new_ids(const baton_state *state, const uint64_t *ids, size_t n)
{
    const char *who = "baton_state_add_rows";
    baton__id_slot *seen = NULL;
    size_t mask = 0;
    if (n > 1) {
        size_t slots = slots_for(n);
        seen = slots != 0 ? baton__calloc(slots, sizeof *seen) : NULL;
        if (seen == NULL)
            return baton__error(BATON_ENOMEM, "%s: no memory to check %zu ids for duplicates", who,
                                n);
        mask = slots - 1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t row;
        if (index_find(state, ids[i], &row)) {
            rc = baton__error(BATON_EEXIST,
                              "%s: id %" PRIu64 " (ids[%zu]) is already in the state (row %zu)",
                              who, ids[i], i, row);
        } else if (seen != NULL) {
            size_t slot = probe(seen, mask, ids[i]);
            if (seen[slot].row_plus_one != 0)
                rc = baton__error(BATON_EEXIST,
                                  "%s: id %" PRIu64 " is twice in ids (ids[%zu] and ids[%zu])", who,
                                  ids[i], seen[slot].row_plus_one - 1, i);
            seen[slot] = (baton__id_slot){ids[i], i + 1};
        }
    }
    baton__free(seen);
    return rc;
}

int baton_state_add_rows(baton_state *state, const uint64_t *ids, size_t n, size_t *out_first_row)
{
    const char *who = "baton_state_add_rows";
    if (state == NULL)
        return baton__error(BATON_EINVAL, "%s: state is NULL", who);
    if (ids == NULL && n > 0)
        return baton__error(BATON_EINVAL, "%s: ids is NULL with n = %zu", who, n);
    if (n == 0) {
        if (out_first_row != NULL)
            *out_first_row = state->rows;
        return 0;
    }
    /* Into an empty state, the ids are checked for duplicates as they go into the index. */
    bool empty = state->rows == 0;
    int rc = empty ? 0 : check_new_ids(state, ids, n);
    if (rc != 0)
        return rc;

    /* Everything that can fail, before anything changes. */
    size_t rows = state->rows;
    size_t needed = rows + n < rows ? SIZE_MAX : rows + n;
    size_t capacity = state->capacity;
    size_t slots = state->index_slots;
    uint64_t *fresh_ids = NULL;
    unsigned char *fresh_values[BATON_STATE_MAX_COLUMNS] = {NULL};
    baton__id_slot *fresh_index = NULL;
    bool ok = true;
    if (needed > capacity) {
        capacity = grown_capacity(capacity, needed);
        ok = capacity != 0 && (fresh_ids = alloc_rows(capacity, sizeof *fresh_ids)) != NULL;
        for (size_t c = 0; ok && c < state->n_columns; c++)
            ok = (fresh_values[c] = alloc_rows(capacity, state->columns[c]->width)) != NULL;
    }
    /* The index only grows: after removals it may be bigger than these rows need. */
    size_t wanted_slots = ok ? slots_for(needed) : 0;
    ok = ok && wanted_slots != 0;
    if (ok && wanted_slots > slots) {
        slots = wanted_slots;
        ok = (fresh_index = baton__calloc(slots, sizeof *fresh_index)) != NULL;
    }
    size_t dup = 0, first = 0;
    if (!ok) {
        rc = baton__error(BATON_ENOMEM, "%s: no memory for %zu + %zu rows of %zu columns", who,
                          rows, n, state->n_columns);
    } else if (empty) {
        baton__id_slot *into = fresh_index != NULL ? fresh_index : state->index;
        if (!insert_ids(into, slots - 1, ids, n, 0, &dup, &first)) {
            /* The index held no live entry: emptied again, it is as it was. */
            memset(into, 0, slots * sizeof *into);
            rc = baton__error(BATON_EEXIST,
                              "%s: id %" PRIu64 " is twice in ids (ids[%zu] and ids[%zu])", who,
                              ids[dup], first, dup);
        }
    }
    if (rc != 0) {
        baton__free(fresh_ids);
        for (size_t c = 0; c < state->n_columns; c++)
            baton__free(fresh_values[c]);
        baton__free(fresh_index);
        return rc;
    }

    if (fresh_ids != NULL) {
        if (rows != 0)
            memcpy(fresh_ids, state->ids, rows * sizeof *fresh_ids);
        baton__free(state->ids);
        state->ids = fresh_ids;
        for (size_t c = 0; c < state->n_columns; c++) {
            baton__column *column = state->columns[c];
            if (rows != 0)
                memcpy(fresh_values[c], column->values, rows * column->width);
            baton__free(column->values);
            column->values = fresh_values[c];
        }
        state->capacity = capacity;
    }
    for (size_t c = 0; c < state->n_columns; c++) {
        baton__column *column = state->columns[c];
        memset(column->values + rows * column->width, 0, n * column->width);
    }
    memcpy(state->ids + rows, ids, n * sizeof *ids);

    if (fresh_index != NULL) {
        for (size_t s = 0; s < state->index_slots; s++)
            if (state->index[s].row_plus_one != 0)
                fresh_index[probe(fresh_index, slots - 1, state->index[s].id)] = state->index[s];
        baton__free(state->index);
        state->index = fresh_index;
        state->index_slots = slots;
    }
    if (!empty) /* checked by check_new_ids: no id is there yet */
        (void)insert_ids(state->index, slots - 1, ids, n, rows, &dup, &first);
    state->rows = rows + n;
    if (out_first_row != NULL)
        *out_first_row = rows;
    return 0;
}

/* ---- removing rows ------------------------------------------------------------------------ */

/* The first row in [from, rows) whose mark equals `marked` (rows when there is none). */
static size_t next_row(const uint64_t *marks, size_t from, size_t rows, bool marked)
{
    while (from < rows) {
        uint64_t word = marks[from / 64];
        if (!marked)
            word = ~word;
        word &= ~UINT64_C(0) << (from % 64);
        size_t word_start = from - from % 64;
        if (word != 0) {
            size_t row = word_start + (size_t)__builtin_ctzll(word);
            return row < rows ? row : rows;
        }
        from = word_start + 64;
    }
    return rows;
}

/* Moves the unmarked rows at or after `first` (a marked row) down over the marked ones, in
 * order, one run of unmarked rows at a time. */
static void compact(unsigned char *values, size_t width, const uint64_t *marks, size_t first,
                    size_t rows)
{
    size_t to = first;
    size_t from = first;
    for (;;) {
        size_t run_begin = next_row(marks, from, rows, false);
        if (run_begin == rows)
            break;
        size_t run_end = next_row(marks, run_begin, rows, true);
        memmove(values + to * width, values + run_begin * width, (run_end - run_begin) * width);
        to += run_end - run_begin;
        from = run_end;
    }
}

int baton_state_remove_rows(baton_state *state, const uint64_t *ids, size_t n)
{
    const char *who = "baton_state_remove_rows";
    if (state == NULL)
        return baton__error(BATON_EINVAL, "%s: state is NULL", who);
    if (ids == NULL && n > 0)
        return baton__error(BATON_EINVAL, "%s: ids is NULL with n = %zu", who, n);
    if (n == 0)
        return 0;

    size_t rows = state->rows;
    size_t words = (rows + 63) / 64;
    uint64_t *marks = baton__calloc(words != 0 ? words : 1, sizeof *marks);
    if (marks == NULL)
        return baton__error(BATON_ENOMEM, "%s: no memory to mark %zu of %zu rows", who, n, rows);
    size_t first = rows;
    for (size_t i = 0; i < n; i++) {
        size_t row;
        if (!index_find(state, ids[i], &row)) {
            baton__free(marks);
            return baton__error(BATON_ENOTFOUND,
                                "%s: id %" PRIu64 " (ids[%zu]) is not in the "
                                "state",
                                who, ids[i], i);
        }
        uint64_t bit = UINT64_C(1) << (row % 64);
        if (marks[row / 64] & bit) {
            /* Only on this error path: look for the earlier copy to name it. */
            size_t earlier = 0;
            while (ids[earlier] != ids[i])
                earlier++;
            baton__free(marks);
            return baton__error(BATON_EINVAL,
                                "%s: id %" PRIu64 " is twice in ids (ids[%zu] and ids[%zu])", who,
                                ids[i], earlier, i);
        }
        marks[row / 64] |= bit;
        if (row < first)
            first = row;
    }

    size_t mask = state->index_slots - 1;
    for (size_t i = 0; i < n; i++)
        erase_slot(state->index, mask, probe(state->index, mask, ids[i]));
    compact((unsigned char *)state->ids, sizeof *state->ids, marks, first, rows);
    for (size_t c = 0; c < state->n_columns; c++)
        compact(state->columns[c]->values, state->columns[c]->width, marks, first, rows);
    state->rows = rows - n;
    for (size_t row = first; row < state->rows; row++)
        state->index[probe(state->index, mask, state->ids[row])].row_plus_one = row + 1;
    baton__free(marks);
    return 0;
}

/* ---- lookups ------------------------------------------------------------------------------ */

int baton_state_find(const baton_state *state, uint64_t id, size_t *out_row)
{
    if (state == NULL || out_row == NULL)
        return baton__error(BATON_EINVAL, "baton_state_find: %s is NULL",
                            state == NULL ? "state" : "out_row");
    if (!index_find(state, id, out_row))
        return baton__error(BATON_ENOTFOUND,
                            "baton_state_find: id %" PRIu64 " is not in the "
                            "state (of %zu rows)",
                            id, state->rows);
    return 0;
}

size_t baton_state_resident_bytes(const baton_state *state)
{
    if (state == NULL)
        return 0;
    size_t bytes = sizeof *state + state->column_slots * sizeof *state->columns +
                   state->capacity * sizeof *state->ids + state->index_slots * sizeof *state->index;
    for (size_t c = 0; c < state->n_columns; c++)
        bytes += sizeof *state->columns[c] + state->capacity * state->columns[c]->width;
    return bytes;
}
