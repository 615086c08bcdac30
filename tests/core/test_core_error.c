/*
 * test_core_error.c — the error convention of the core layer: every code of BATON_ERRNO_MAP has a
 * distinct message and a "BATON_E..." name, 0 and unknown codes are handled, and
 * baton_last_error_message() is per-thread, "" until a call fails, set by a failing call (with
 * the offending value in it) and left alone by successful calls; a long message is cut at 511
 * bytes with "...", and a message may quote the thread's previous one (baton__error).
 */
#include "support/bt_common.h"

#include <limits.h>
#include <stddef.h>

#include "core/error.h"

typedef struct code_entry {
    int value;
    const char *name;
    const char *text;
} code_entry;

static const code_entry codes[] = {
#define ENTRY(name, value, text) {value, "BATON_" #name, text},
    BATON_ERRNO_MAP(ENTRY)
#undef ENTRY
};
#define N_CODES (sizeof codes / sizeof codes[0])

static void test_codes_are_negative_and_distinct(void **state)
{
    (void)state;
    assert_true(N_CODES >= 18);
    for (size_t i = 0; i < N_CODES; i++) {
        assert_true(codes[i].value < 0);
        assert_true(codes[i].value > BATON__ERRNO_LAST);
        for (size_t j = i + 1; j < N_CODES; j++)
            assert_int_not_equal(codes[i].value, codes[j].value);
    }
}

static void test_strerror_matches_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++) {
        const char *text = baton_strerror(codes[i].value);
        assert_non_null(text);
        assert_string_equal(text, codes[i].text);
        assert_string_not_equal(text, "unknown error");
        assert_string_not_equal(text, "success");
    }
}

static void test_strerror_texts_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++)
        for (size_t j = i + 1; j < N_CODES; j++)
            assert_string_not_equal(baton_strerror(codes[i].value),
                                    baton_strerror(codes[j].value));
}

static void test_err_name_matches_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++) {
        const char *name = baton_err_name(codes[i].value);
        assert_non_null(name);
        assert_string_equal(name, codes[i].name);
        assert_int_equal(strncmp(name, "BATON_E", 7), 0);
        for (size_t j = i + 1; j < N_CODES; j++)
            assert_string_not_equal(name, baton_err_name(codes[j].value));
    }
    assert_string_equal(baton_err_name(BATON_EINVAL), "BATON_EINVAL");
    assert_string_equal(baton_err_name(BATON_EMISMATCH), "BATON_EMISMATCH");
}

static void test_success_code(void **state)
{
    (void)state;
    assert_string_equal(baton_strerror(0), "success");
    assert_string_equal(baton_err_name(0), "0");
}

static void test_unknown_codes(void **state)
{
    (void)state;
    const int unknown[] = {1, 2, 42, BATON__ERRNO_LAST, -19, -20, -1000, INT_MIN, INT_MAX,
                           INT_MIN + 1, -42};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *text = baton_strerror(unknown[i]);
        const char *name = baton_err_name(unknown[i]);
        assert_non_null(text);
        assert_non_null(name);
        assert_string_equal(text, "unknown error");
        assert_string_equal(name, "BATON_E?");
    }
}

/* The calls are pure lookups: hammering them from several threads must give the same answers. */
static void *lookup_thread(void *arg)
{
    (void)arg;
    for (int round = 0; round < 2000; round++)
        for (size_t i = 0; i < N_CODES; i++) {
            BT_CHECK(strcmp(baton_strerror(codes[i].value), codes[i].text) == 0);
            BT_CHECK(strcmp(baton_err_name(codes[i].value), codes[i].name) == 0);
        }
    return NULL;
}

static void test_lookups_thread_safe(void **state)
{
    (void)state;
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, lookup_thread, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    bt_assert_no_thread_failures();
}

/* ---- baton_last_error_message ---------------------------------------------------------------- */

/* Runs first: the main thread has made no failing call yet. */
static void test_last_error_empty_on_main_thread_initially(void **state)
{
    (void)state;
    const char *message = baton_last_error_message();
    assert_non_null(message);
    assert_string_equal(message, "");
}

static void *fresh_thread(void *arg)
{
    const char **out = arg;
    const char *message = baton_last_error_message();
    /* Copy: the pointer belongs to this thread and dies with it. */
    static char copy[256];
    if (message == NULL) {
        *out = NULL;
    } else {
        snprintf(copy, sizeof copy, "%s", message);
        *out = copy;
    }
    return NULL;
}

static void test_last_error_empty_on_fresh_thread(void **state)
{
    (void)state;
    const char *seen = "not set";
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, fresh_thread, &seen), 0);
    pthread_join(thread, NULL);
    assert_non_null(seen);
    assert_string_equal(seen, "");
}

static int create_with_workers(unsigned n_workers, baton_pool **out)
{
    baton_pool_config config = bt_pool_config(n_workers, 0, 0);
    return baton_pool_create(&config, out);
}

static void test_failing_call_sets_message(void **state)
{
    (void)state;
    baton_pool *pool = (baton_pool *)&pool; /* sentinel: must be left untouched */
    baton_pool *const sentinel = pool;
    int rc = create_with_workers(BATON_POOL_MAX_WORKERS + 1, &pool);
    bt_assert_rc(rc, BATON_EINVAL);
    assert_ptr_equal(pool, sentinel);

    const char *message = baton_last_error_message();
    assert_non_null(message);
    assert_true(strlen(message) > 0);
    char value[32];
    snprintf(value, sizeof value, "%u", BATON_POOL_MAX_WORKERS + 1);
    if (strstr(message, value) == NULL)
        fail_msg("message \"%s\" does not mention the value %s", message, value);
}

static void test_successful_calls_leave_message(void **state)
{
    (void)state;
    baton_pool *pool = NULL;
    bt_assert_rc(create_with_workers(BATON_POOL_MAX_WORKERS + 7, &pool), BATON_EINVAL);
    char before[512];
    snprintf(before, sizeof before, "%s", baton_last_error_message());
    assert_true(strlen(before) > 0);

    /* Successful calls of several kinds. */
    (void)baton_strerror(BATON_EIO);
    (void)baton_err_name(BATON_EIO);
    (void)baton_now_ns();
    (void)baton_hash64("x", 1, 0);
    pool = bt_pool_create(1);
    bt_assert_pool_usable(pool);
    bt_pool_destroy(pool);

    assert_string_equal(baton_last_error_message(), before);
}

static void test_next_failure_replaces_message(void **state)
{
    (void)state;
    baton_pool *pool = NULL;
    bt_assert_rc(create_with_workers(BATON_POOL_MAX_WORKERS + 1, &pool), BATON_EINVAL);
    baton_pool_config config = bt_pool_config(1, 0, BATON_POOL_MAX_EXTERNAL_SLOTS + 3);
    bt_assert_rc(baton_pool_create(&config, &pool), BATON_EINVAL);
    const char *message = baton_last_error_message();
    char value[32];
    snprintf(value, sizeof value, "%u", BATON_POOL_MAX_EXTERNAL_SLOTS + 3);
    if (strstr(message, value) == NULL)
        fail_msg("message \"%s\" does not mention the value %s", message, value);
}

/* Two threads fail differently, a third does not fail; each sees only its own message. */
typedef struct per_thread_ctx {
    pthread_barrier_t *barrier;
    unsigned n_workers;       /* 0: this thread makes no failing call */
    unsigned external_slots;
    char seen[512];
} per_thread_ctx;

static void *per_thread_main(void *arg)
{
    per_thread_ctx *ctx = arg;
    if (ctx->n_workers != 0 || ctx->external_slots != 0) {
        baton_pool_config config = bt_pool_config(ctx->n_workers, 0, ctx->external_slots);
        baton_pool *pool = NULL;
        int rc = baton_pool_create(&config, &pool);
        BT_CHECK(rc == BATON_EINVAL);
    }
    /* Everyone has made their call before anyone reads. */
    pthread_barrier_wait(ctx->barrier);
    snprintf(ctx->seen, sizeof ctx->seen, "%s", baton_last_error_message());
    pthread_barrier_wait(ctx->barrier);
    return NULL;
}

static void test_last_error_is_per_thread(void **state)
{
    (void)state;
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 3), 0);
    per_thread_ctx ctx[3];
    memset(ctx, 0, sizeof ctx);
    for (int i = 0; i < 3; i++)
        ctx[i].barrier = &barrier;
    ctx[0].n_workers = 4321;                                /* too many workers */
    ctx[1].n_workers = 1;
    ctx[1].external_slots = BATON_POOL_MAX_EXTERNAL_SLOTS + 44; /* too many slots */
    /* ctx[2] makes no failing call. */
    pthread_t threads[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, per_thread_main, &ctx[i]), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    bt_assert_no_thread_failures();

    char slots[32];
    snprintf(slots, sizeof slots, "%u", BATON_POOL_MAX_EXTERNAL_SLOTS + 44);
    if (strstr(ctx[0].seen, "4321") == NULL)
        fail_msg("thread 0 sees \"%s\", expected its own message about 4321", ctx[0].seen);
    if (strstr(ctx[1].seen, slots) == NULL)
        fail_msg("thread 1 sees \"%s\", expected its own message about %s", ctx[1].seen, slots);
    assert_null(strstr(ctx[1].seen, "4321"));
    assert_null(strstr(ctx[0].seen, slots));
    assert_string_equal(ctx[2].seen, "");
}

/* The main thread's message is not changed by another thread's failure. */
static void *fail_once(void *arg)
{
    (void)arg;
    baton_pool *pool = NULL;
    baton_pool_config config = bt_pool_config(9999, 0, 0);
    BT_CHECK(baton_pool_create(&config, &pool) == BATON_EINVAL);
    BT_CHECK(strstr(baton_last_error_message(), "9999") != NULL);
    return NULL;
}

static void test_other_thread_failure_does_not_leak(void **state)
{
    (void)state;
    baton_pool *pool = NULL;
    bt_assert_rc(create_with_workers(BATON_POOL_MAX_WORKERS + 1, &pool), BATON_EINVAL);
    char before[512];
    snprintf(before, sizeof before, "%s", baton_last_error_message());
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, fail_once, NULL), 0);
    pthread_join(thread, NULL);
    bt_assert_no_thread_failures();
    assert_string_equal(baton_last_error_message(), before);
    assert_null(strstr(baton_last_error_message(), "9999"));
}

/* core.h: BATON_CACHELINE_ALIGNED gives a member a cache line of its own; BATON__ERRNO_LAST is
 * below every code of the table (the enum and the table agree). */
typedef struct two_lines {
    BATON_CACHELINE_ALIGNED int first;
    BATON_CACHELINE_ALIGNED int second;
} two_lines;
_Static_assert(BATON_CACHELINE == 64, "BATON_CACHELINE");
_Static_assert(_Alignof(two_lines) == BATON_CACHELINE, "aligned to a line");
_Static_assert(offsetof(two_lines, second) == BATON_CACHELINE, "a line apart");
_Static_assert(sizeof(two_lines) == 2 * BATON_CACHELINE, "a line each");

static void test_last_code_below_table(void **state)
{
    (void)state;
    int lowest = 0;
    for (size_t i = 0; i < N_CODES; i++)
        if (codes[i].value < lowest)
            lowest = codes[i].value;
    assert_int_equal(BATON__ERRNO_LAST, lowest - 1);
    /* The codes are dense: every value from -1 to the lowest is a code. */
    assert_int_equal((int)N_CODES, -lowest);
}

/* core.h: a message is at most 511 bytes; a longer one is cut and ends with "...". */
static void test_long_message_is_cut(void **state)
{
    (void)state;
    char long_text[2000];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    bt_assert_rc(baton__error(BATON_EIO, "head %s", long_text), BATON_EIO);
    const char *message = baton_last_error_message();
    assert_int_equal(strlen(message), 511);
    assert_int_equal(strncmp(message, "head x", 6), 0);
    assert_string_equal(message + 508, "...");
    /* 511 bytes exactly fit: no "...". */
    bt_assert_rc(baton__error(BATON_EIO, "%.511s", long_text), BATON_EIO);
    assert_int_equal(strlen(baton_last_error_message()), 511);
    assert_int_equal(baton_last_error_message()[510], 'x');
}

/* A layer that adds context to the error of the call it made formats the calling thread's own
 * message into it ("outer: %s", baton_last_error_message()): the result must be exactly that. */
static void test_message_may_quote_itself(void **state)
{
    (void)state;
    baton_pool *pool = NULL;
    bt_assert_rc(create_with_workers(BATON_POOL_MAX_WORKERS + 5, &pool), BATON_EINVAL);
    char inner[512];
    snprintf(inner, sizeof inner, "%s", baton_last_error_message());
    bt_assert_rc(baton__error(BATON_ENOMEM, "outer call: %s (rc %d)", baton_last_error_message(),
                              -2),
                 BATON_ENOMEM);
    char expected[700];
    snprintf(expected, sizeof expected, "outer call: %s (rc %d)", inner, -2);
    expected[511] = '\0';
    if (strlen(expected) == 511)
        memcpy(expected + 508, "...", 4);
    assert_string_equal(baton_last_error_message(), expected);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_error_empty_on_main_thread_initially),
        cmocka_unit_test(test_codes_are_negative_and_distinct),
        cmocka_unit_test(test_strerror_matches_table),
        cmocka_unit_test(test_strerror_texts_distinct),
        cmocka_unit_test(test_err_name_matches_table),
        cmocka_unit_test(test_success_code),
        cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_lookups_thread_safe),
        cmocka_unit_test(test_last_error_empty_on_fresh_thread),
        cmocka_unit_test(test_failing_call_sets_message),
        cmocka_unit_test(test_successful_calls_leave_message),
        cmocka_unit_test(test_next_failure_replaces_message),
        cmocka_unit_test(test_last_error_is_per_thread),
        cmocka_unit_test(test_other_thread_failure_does_not_leak),
        cmocka_unit_test(test_last_code_below_table),
        cmocka_unit_test(test_long_message_is_cut),
        cmocka_unit_test(test_message_may_quote_itself),
    };
    return cmocka_run_group_tests_name("core/error", tests, NULL, NULL);
}
