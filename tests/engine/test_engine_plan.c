/*
 * test_engine_plan.c — partition plans (include/baton/engine.h):
 *  - create_single, create_static: the split (contiguous, sizes within one of each other, the
 *    larger first, workers round-robin) for a table of (rows, count, workers), and every such
 *    plan validates; their argument errors (count 0, workers 0, more partitions than rows) with
 *    messages naming the values;
 *  - create_per_worker (the MPI executor's default plan): one partition per worker, one row
 *    each when rows are fewer, the empty partition for no rows, the single plan for 1 worker;
 *  - validate: each error the header lists, from a plan built to have exactly that problem,
 *    with its code and a message naming the partition and its rows: zero partitions, a
 *    worker-count mismatch, a worker that does not exist, an empty partition, a range out of
 *    bounds, a gap and an overlap (non-contiguous), coverage that starts late or ends early;
 *    the empty state's single plan;
 *  - accessors on NULL and out of range.
 */
#include "support/bt_common.h"

#include "baton/engine.h"

static baton_plan *make_plan(const baton_partition *parts, size_t n, unsigned workers)
{
    baton_plan *plan = NULL;
    bt_assert_rc(baton_plan_create(parts, n, workers, &plan), 0);
    assert_non_null(plan);
    return plan;
}

/* ---- construction ---------------------------------------------------------------------------- */

static void test_single(void **state)
{
    (void)state;
    const size_t rows[] = {0, 1, 7, 1000000};
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        baton_plan *plan = NULL;
        bt_assert_rc(baton_plan_create_single(rows[k], &plan), 0);
        assert_int_equal(baton_plan_partitions(plan), 1);
        assert_int_equal(baton_plan_workers(plan), 1);
        baton_partition p = baton_plan_partition(plan, 0);
        assert_int_equal(p.begin, 0);
        assert_int_equal(p.end, rows[k]);
        assert_int_equal(p.worker, 0);
        bt_assert_rc(baton_plan_validate(plan, rows[k], 1), 0);
        baton_plan_destroy(plan);
    }
    bt_expect_error(baton_plan_create_single(5, NULL), BATON_EINVAL, "out", NULL);
}

static void test_static_split(void **state)
{
    (void)state;
    const struct {
        size_t rows, count;
        unsigned workers;
    } cases[] = {{1, 1, 1}, {10, 1, 1},  {10, 3, 1},     {10, 3, 2},      {10, 10, 4},
                 {7, 6, 3}, {100, 7, 3}, {1000, 16, 16}, {1000003, 7, 5}, {4096, 2, 1}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        baton_plan *plan = NULL;
        bt_assert_rc(
            baton_plan_create_static(cases[k].rows, cases[k].count, cases[k].workers, &plan), 0);
        assert_int_equal(baton_plan_partitions(plan), cases[k].count);
        assert_int_equal(baton_plan_workers(plan), cases[k].workers);
        size_t base = cases[k].rows / cases[k].count, extra = cases[k].rows % cases[k].count;
        size_t begin = 0;
        for (size_t i = 0; i < cases[k].count; i++) {
            baton_partition p = baton_plan_partition(plan, i);
            assert_int_equal(p.begin, begin);
            assert_int_equal(p.end - p.begin, base + (i < extra ? 1 : 0));
            assert_int_equal(p.worker, i % cases[k].workers);
            begin = p.end;
        }
        assert_int_equal(begin, cases[k].rows);
        bt_assert_rc(baton_plan_validate(plan, cases[k].rows, cases[k].workers), 0);
        baton_plan_destroy(plan);
    }
}

static void test_static_errors(void **state)
{
    (void)state;
    baton_plan *sentinel = (baton_plan *)(uintptr_t)0x1234, *plan = sentinel;
    bt_expect_error(baton_plan_create_static(10, 0, 1, &plan), BATON_EINVAL, "zero partitions",
                    "10 rows", NULL);
    assert_null(plan);
    plan = sentinel;
    bt_expect_error(baton_plan_create_static(10, 2, 0, &plan), BATON_EINVAL, "zero workers", NULL);
    assert_null(plan);
    plan = sentinel;
    bt_expect_error(baton_plan_create_static(3, 5, 1, &plan), BATON_EINVAL, "5 partitions",
                    "3 rows", "partition 3", "empty", NULL);
    assert_null(plan);
    bt_expect_error(baton_plan_create_static(10, 2, 1, NULL), BATON_EINVAL, "out", NULL);
    bt_expect_error(
        baton_plan_create_static(SIZE_MAX, (size_t)BATON_PLAN_MAX_PARTITIONS + 1, 1, &plan),
        BATON_EINVAL, "more than", NULL);
    bt_expect_error(baton_plan_create(NULL, 3, 1, &plan), BATON_EINVAL, "parts is NULL", NULL);
    bt_expect_error(baton_plan_create(NULL, 0, 1, NULL), BATON_EINVAL, "out", NULL);
}

/* One partition per worker: the static split for rows >= workers, one row each for the first
 * `rows` workers below that, the empty partition for rows 0; every one validates. */
static void test_per_worker(void **state)
{
    (void)state;
    const struct {
        size_t rows;
        unsigned workers;
        size_t count;
    } cases[] = {{0, 1, 1},  {0, 3, 1},  {1, 3, 1},     {2, 3, 2},         {3, 3, 3},
                 {10, 3, 3}, {10, 1, 1}, {10007, 3, 3}, {1000003, 16, 16}, {5, 16, 5}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        baton_plan *plan = NULL;
        bt_assert_rc(baton_plan_create_per_worker(cases[k].rows, cases[k].workers, &plan), 0);
        assert_int_equal(baton_plan_partitions(plan), cases[k].count);
        assert_int_equal(baton_plan_workers(plan), cases[k].workers);
        size_t base = cases[k].rows / cases[k].count, extra = cases[k].rows % cases[k].count;
        size_t begin = 0;
        for (size_t i = 0; i < cases[k].count; i++) {
            baton_partition p = baton_plan_partition(plan, i);
            assert_int_equal(p.begin, begin);
            assert_int_equal(p.end - p.begin, base + (i < extra ? 1 : 0));
            assert_int_equal(p.worker, i);
            begin = p.end;
        }
        assert_int_equal(begin, cases[k].rows);
        bt_assert_rc(baton_plan_validate(plan, cases[k].rows, cases[k].workers), 0);
        baton_plan_destroy(plan);
    }
    /* With one worker it is the single plan. */
    baton_plan *single = NULL, *one = NULL;
    bt_assert_rc(baton_plan_create_single(77, &single), 0);
    bt_assert_rc(baton_plan_create_per_worker(77, 1, &one), 0);
    assert_int_equal(baton_plan_partitions(one), baton_plan_partitions(single));
    assert_int_equal(baton_plan_workers(one), baton_plan_workers(single));
    baton_partition a = baton_plan_partition(one, 0), b = baton_plan_partition(single, 0);
    assert_true(a.begin == b.begin && a.end == b.end && a.worker == b.worker);
    baton_plan_destroy(one);
    baton_plan_destroy(single);
    baton_plan *sentinel = (baton_plan *)(uintptr_t)0x1234, *plan = sentinel;
    bt_expect_error(baton_plan_create_per_worker(10, 0, &plan), BATON_EINVAL, "zero workers",
                    "10 rows", NULL);
    assert_null(plan);
    bt_expect_error(baton_plan_create_per_worker(10, 2, NULL), BATON_EINVAL, "out", NULL);
}

/* ---- validation ------------------------------------------------------------------------------ */

static void test_validate_zero_partitions(void **state)
{
    (void)state;
    baton_plan *plan = make_plan(NULL, 0, 2);
    assert_int_equal(baton_plan_partitions(plan), 0);
    bt_expect_error(baton_plan_validate(plan, 10, 2), BATON_EINVAL, "zero partitions", NULL);
    baton_plan_destroy(plan);
    bt_expect_error(baton_plan_validate(NULL, 10, 2), BATON_EINVAL, "NULL", NULL);
}

static void test_validate_workers(void **state)
{
    (void)state;
    const baton_partition parts[] = {{0, 5, 0}, {5, 10, 1}};
    baton_plan *plan = make_plan(parts, 2, 2);
    bt_assert_rc(baton_plan_validate(plan, 10, 2), 0);
    bt_expect_error(baton_plan_validate(plan, 10, 3), BATON_EMISMATCH, "worker-count mismatch",
                    "made for 2 workers", "has 3", NULL);
    bt_expect_error(baton_plan_validate(plan, 10, 0), BATON_EINVAL, "zero workers", NULL);
    baton_plan_destroy(plan);

    const baton_partition ghost[] = {{0, 4, 0}, {4, 8, 1}, {8, 10, 2}};
    plan = make_plan(ghost, 3, 2);
    bt_expect_error(baton_plan_validate(plan, 10, 2), BATON_ENOTFOUND, "partition 2",
                    "rows [8, 10)", "worker 2", "does not exist", NULL);
    baton_plan_destroy(plan);
}

static void test_validate_ranges(void **state)
{
    (void)state;
    const struct {
        const char *what;
        baton_partition parts[3];
        size_t n, rows;
        int rc;
        const char *fragments[3];
    } cases[] = {
        {"empty",
         {{0, 4, 0}, {4, 4, 0}, {4, 10, 0}},
         3,
         10,
         BATON_EINVAL,
         {"partition 1", "rows [4, 4)", "empty"}},
        {"reversed",
         {{0, 6, 0}, {6, 3, 0}, {3, 10, 0}},
         3,
         10,
         BATON_EINVAL,
         {"partition 1", "rows [6, 3)", "empty"}},
        {"out of bounds",
         {{0, 5, 0}, {5, 12, 0}},
         2,
         10,
         BATON_ERANGE,
         {"partition 1", "rows [5, 12)", "10 rows"}},
        {"gap",
         {{0, 4, 0}, {5, 10, 0}},
         2,
         10,
         BATON_EINVAL,
         {"non-contiguous", "partition 1 (rows [5, 10))", "a gap"}},
        {"overlap",
         {{0, 6, 0}, {4, 10, 0}},
         2,
         10,
         BATON_EINVAL,
         {"non-contiguous", "partition 0 (rows [0, 6))", "an overlap"}},
        {"late start",
         {{2, 6, 0}, {6, 10, 0}},
         2,
         10,
         BATON_EINVAL,
         {"incomplete coverage", "partition 0 (rows [2, 6))", "rows [0, 2)"}},
        {"early end",
         {{0, 6, 0}, {6, 9, 0}},
         2,
         10,
         BATON_EINVAL,
         {"incomplete coverage", "partition, 1 (rows [6, 9))", "rows [9, 10)"}},
        {"empty single on rows",
         {{0, 0, 0}},
         1,
         10,
         BATON_EINVAL,
         {"partition 0", "rows [0, 0)", "empty"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        print_message("case: %s\n", cases[k].what);
        baton_plan *plan = make_plan(cases[k].parts, cases[k].n, 1);
        bt_expect_error(baton_plan_validate(plan, cases[k].rows, 1), cases[k].rc,
                        cases[k].fragments[0], cases[k].fragments[1], cases[k].fragments[2], NULL);
        baton_plan_destroy(plan);
    }
}

/* The first problem in index order wins: an early gap is reported before a later bad worker. */
static void test_validate_order(void **state)
{
    (void)state;
    const baton_partition parts[] = {{0, 3, 0}, {4, 6, 0}, {6, 10, 9}};
    baton_plan *plan = make_plan(parts, 3, 2);
    bt_expect_error(baton_plan_validate(plan, 10, 2), BATON_EINVAL, "partition 1", "a gap", NULL);
    baton_plan_destroy(plan);
}

static void test_empty_state(void **state)
{
    (void)state;
    baton_plan *plan = NULL;
    bt_assert_rc(baton_plan_create_single(0, &plan), 0);
    bt_assert_rc(baton_plan_validate(plan, 0, 1), 0);
    /* The same plan no longer covers a state that has rows. */
    bt_expect_error(baton_plan_validate(plan, 5, 1), BATON_EINVAL, "partition 0", "empty", NULL);
    baton_plan_destroy(plan);
    /* Two empty partitions are not the empty state's plan. */
    const baton_partition parts[] = {{0, 0, 0}, {0, 0, 0}};
    plan = make_plan(parts, 2, 1);
    bt_expect_error(baton_plan_validate(plan, 0, 1), BATON_EINVAL, "partition 0", "empty", NULL);
    baton_plan_destroy(plan);
}

static void test_accessors(void **state)
{
    (void)state;
    assert_int_equal(baton_plan_partitions(NULL), 0);
    assert_int_equal(baton_plan_workers(NULL), 0);
    baton_partition p = baton_plan_partition(NULL, 0);
    assert_int_equal(p.begin + p.end + p.worker, 0);
    const baton_partition parts[] = {{0, 5, 0}};
    baton_plan *plan = make_plan(parts, 1, 1);
    p = baton_plan_partition(plan, 1);
    assert_int_equal(p.begin + p.end + p.worker, 0);
    baton_plan_destroy(plan);
    baton_plan_destroy(NULL);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single),
        cmocka_unit_test(test_static_split),
        cmocka_unit_test(test_static_errors),
        cmocka_unit_test(test_per_worker),
        cmocka_unit_test(test_validate_zero_partitions),
        cmocka_unit_test(test_validate_workers),
        cmocka_unit_test(test_validate_ranges),
        cmocka_unit_test(test_validate_order),
        cmocka_unit_test(test_empty_state),
        cmocka_unit_test(test_accessors),
    };
    return cmocka_run_group_tests_name("engine/plan", tests, NULL, NULL);
}
