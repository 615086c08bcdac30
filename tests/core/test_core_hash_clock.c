/*
 * test_core_hash_clock.c — baton_hash64 is exactly XXH3_64bits_withSeed (every XXH3 size class,
 * unaligned data, several seeds, NULL with length 0, fixed known answers, the XXH3 reference's
 * published sanity vectors for every size class); baton_mix64 gives the
 * values of its documented formula and is a bijection on samples of 10^6 inputs; baton_now_ns is
 * monotonic (also across threads) and advances across a sleep.
 */
#include "support/bt_common.h"

#include <xxhash.h>

/* Regression values, computed once from the XXH3 specification (libxxhash 0.8.1). */
#define KA_XXH3_BATON_SEED0 UINT64_C(0x9f99aa9a06e6a686)
#define KA_XXH3_BATON_SEED42 UINT64_C(0x41129bd59c14f3f8)
#define KA_XXH3_EMPTY_SEED0 UINT64_C(0x2d06800538d394c2)

/* Computed from the formula documented in core.h (by hand, in Python, independent of C). */
#define KA_MIX64_0 UINT64_C(0)
#define KA_MIX64_1 UINT64_C(0x5692161d100b05e5)
#define KA_MIX64_DEADBEEF UINT64_C(0x4e062702ec929eea)

static const uint64_t seeds[] = {0, 1, 42, UINT64_C(0xdeadbeef), UINT64_C(0x9e3779b97f4a7c15),
                                 UINT64_MAX};
#define N_SEEDS (sizeof seeds / sizeof seeds[0])

static void test_hash_known_answers(void **state)
{
    (void)state;
    /* The regression value itself, then the library against it. */
    assert_true(XXH3_64bits_withSeed("baton", 5, 0) == KA_XXH3_BATON_SEED0);
    assert_true(baton_hash64("baton", 5, 0) == KA_XXH3_BATON_SEED0);
    assert_true(baton_hash64("baton", 5, 42) == KA_XXH3_BATON_SEED42);
    assert_true(baton_hash64("", 0, 0) == KA_XXH3_EMPTY_SEED0);
}

/* The XXH3 reference implementation's own sanity vectors: XXH3-64 of the first `len` bytes of a
 * buffer whose byte i is the top byte of 2654435761 * 11400714785074694797^i (mod 2^64), with
 * seed 0 or 11400714785074694797. They cover every size class of XXH3 (0, 1-3, 4-8, 9-16, 17-128,
 * 129-240, and the long path with whole and partial stripes and blocks), so a change of the hash
 * that core.h promises never changes fails here, whatever libxxhash says. */
typedef struct published_vector {
    size_t len;
    bool seeded;
    uint64_t hash;
} published_vector;

static const published_vector published[] = {
    {0, false, UINT64_C(0x2D06800538D394C2)},    {0, true, UINT64_C(0xA8A6B918B2F0364A)},
    {1, false, UINT64_C(0xC44BDFF4074EECDB)},    {1, true, UINT64_C(0x032BE332DD766EF8)},
    {2, false, UINT64_C(0x7A9978044CB8A8BB)},    {3, false, UINT64_C(0x54247382A8D6B94D)},
    {4, false, UINT64_C(0xE5DC74BC51848A51)},    {6, false, UINT64_C(0x27B56A84CD2D7325)},
    {6, true, UINT64_C(0x84589C116AB59AB9)},     {8, false, UINT64_C(0x24CCC9ACAA9F65E4)},
    {9, false, UINT64_C(0x14D5001C15DD3F2B)},    {12, false, UINT64_C(0xA713DAF0DFBB77E7)},
    {12, true, UINT64_C(0xE7303E1B2336DE0E)},    {16, false, UINT64_C(0x981B17D36C7498C9)},
    {17, false, UINT64_C(0x796F5ACD3A60F862)},   {24, false, UINT64_C(0xA3FE70BF9D3510EB)},
    {24, true, UINT64_C(0x850E80FC35BDD690)},    {48, false, UINT64_C(0x397DA259ECBA1F11)},
    {48, true, UINT64_C(0xADC2CBAA44ACC616)},    {64, false, UINT64_C(0x9CB48487720EC49D)},
    {80, false, UINT64_C(0xBCDEFBBB2C47C90A)},   {80, true, UINT64_C(0xC6DD0CB699532E73)},
    {128, false, UINT64_C(0xFCFF24126754D861)},  {129, false, UINT64_C(0x98F1B0A679A2CA29)},
    {195, false, UINT64_C(0xCD94217EE362EC3A)},  {195, true, UINT64_C(0xBA68003D370CB3D9)},
    {222, false, UINT64_C(0xB9163B558664D356)},  {240, false, UINT64_C(0x81C3C2B67F568CCF)},
    {241, false, UINT64_C(0xC5A639ECD2030E5E)},  {403, false, UINT64_C(0xCDEB804D65C6DEA4)},
    {403, true, UINT64_C(0x6259F6ECFD6443FD)},   {512, false, UINT64_C(0x617E49599013CB6B)},
    {512, true, UINT64_C(0x3CE457DE14C27708)},   {2048, false, UINT64_C(0xDD59E2C3A5F038E0)},
    {4160, false, UINT64_C(0x4F323B15321E94E1)},
};

static void test_hash_published_vectors(void **state)
{
    (void)state;
    enum { LEN = 4160 };
    static unsigned char buffer[LEN];
    const uint64_t prime64 = UINT64_C(11400714785074694797);
    uint64_t generator = UINT64_C(2654435761);
    for (size_t i = 0; i < LEN; i++) {
        buffer[i] = (unsigned char)(generator >> 56);
        generator *= prime64;
    }
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++) {
        uint64_t seed = published[i].seeded ? prime64 : 0;
        uint64_t got = baton_hash64(buffer, published[i].len, seed);
        if (got != published[i].hash)
            fail_msg("baton_hash64(%zu bytes, seed %llu) = 0x%016llx, published 0x%016llx",
                     published[i].len, (unsigned long long)seed, (unsigned long long)got,
                     (unsigned long long)published[i].hash);
    }
}

static void test_hash_null_and_empty(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_SEEDS; s++) {
        uint64_t expected = XXH3_64bits_withSeed("", 0, seeds[s]);
        assert_true(baton_hash64(NULL, 0, seeds[s]) == expected);
        assert_true(baton_hash64("ignored", 0, seeds[s]) == expected);
    }
    assert_true(baton_hash64(NULL, 0, 0) == KA_XXH3_EMPTY_SEED0);
}

/* Every length from 0 to 600 covers all XXH3 code paths (0, 1-3, 4-8, 9-16, 17-128, 129-240,
 * > 240 with stripes and a partial block); odd offsets make the input unaligned. */
static void test_hash_matches_xxh3_all_small_lengths(void **state)
{
    (void)state;
    enum { MAX_LEN = 600 };
    static unsigned char buffer[MAX_LEN + 16];
    bt_rng rng = bt_rng_seed(12345);
    for (size_t i = 0; i < sizeof buffer; i++)
        buffer[i] = (unsigned char)bt_rng_next(&rng);
    for (size_t offset = 0; offset < 8; offset += 3)
        for (size_t len = 0; len <= MAX_LEN; len++)
            for (size_t s = 0; s < N_SEEDS; s++) {
                uint64_t expected = XXH3_64bits_withSeed(buffer + offset, len, seeds[s]);
                uint64_t got = baton_hash64(buffer + offset, len, seeds[s]);
                if (got != expected)
                    fail_msg("len %zu offset %zu seed %#llx: baton %#llx, XXH3 %#llx", len,
                             offset, (unsigned long long)seeds[s], (unsigned long long)got,
                             (unsigned long long)expected);
            }
}

static void test_hash_matches_xxh3_large_inputs(void **state)
{
    (void)state;
    const size_t lengths[] = {1000, 1024, 4095, 4096, 65536, 100003, 1 << 20};
    size_t max_len = 1 << 20;
    unsigned char *buffer = malloc(max_len + 1);
    assert_non_null(buffer);
    bt_rng rng = bt_rng_seed(777);
    for (size_t i = 0; i < max_len + 1; i++)
        buffer[i] = (unsigned char)bt_rng_next(&rng);
    for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++)
        for (size_t s = 0; s < N_SEEDS; s++) {
            assert_true(baton_hash64(buffer, lengths[l], seeds[s]) ==
                        XXH3_64bits_withSeed(buffer, lengths[l], seeds[s]));
            assert_true(baton_hash64(buffer + 1, lengths[l], seeds[s]) ==
                        XXH3_64bits_withSeed(buffer + 1, lengths[l], seeds[s]));
        }
    free(buffer);
}

/* The hash depends on the seed and on every byte (a sanity check on the wiring, not on XXH3). */
static void test_hash_sensitive_to_seed_and_bytes(void **state)
{
    (void)state;
    unsigned char data[64];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)i;
    uint64_t base = baton_hash64(data, sizeof data, 0);
    assert_true(baton_hash64(data, sizeof data, 1) != base);
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] ^= 1;
        assert_true(baton_hash64(data, sizeof data, 0) != base);
        data[i] ^= 1;
    }
    assert_true(baton_hash64(data, sizeof data, 0) == base);
}

/* ---- baton_mix64 ----------------------------------------------------------------------------- */

static uint64_t mix_reference(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

static void test_mix64_known_answers(void **state)
{
    (void)state;
    assert_true(baton_mix64(0) == KA_MIX64_0);
    assert_true(baton_mix64(1) == KA_MIX64_1);
    assert_true(baton_mix64(UINT64_C(0xdeadbeef)) == KA_MIX64_DEADBEEF);
    bt_rng rng = bt_rng_seed(99);
    for (int i = 0; i < 100000; i++) {
        uint64_t x = bt_rng_next(&rng);
        assert_true(baton_mix64(x) == mix_reference(x));
    }
    assert_true(baton_mix64(UINT64_MAX) == mix_reference(UINT64_MAX));
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void check_no_collisions(uint64_t start, size_t count)
{
    uint64_t *values = malloc(count * sizeof *values);
    assert_non_null(values);
    for (size_t i = 0; i < count; i++)
        values[i] = baton_mix64(start + i);
    qsort(values, count, sizeof *values, compare_u64);
    for (size_t i = 1; i < count; i++)
        if (values[i] == values[i - 1])
            fail_msg("baton_mix64 collision among %zu inputs from %#llx: value %#llx", count,
                     (unsigned long long)start, (unsigned long long)values[i]);
    free(values);
}

static void test_mix64_bijective_on_samples(void **state)
{
    (void)state;
    size_t count = bt_scaled(1e6, 100000);
    check_no_collisions(0, count);
    check_no_collisions(UINT64_MAX - count + 1, count); /* wraps up to UINT64_MAX */
    check_no_collisions(UINT64_C(1) << 63, count);
}

/* ---- baton_now_ns ---------------------------------------------------------------------------- */

static void test_now_monotonic(void **state)
{
    (void)state;
    size_t calls = bt_scaled(1e6, 10000);
    uint64_t previous = baton_now_ns();
    uint64_t first = previous;
    for (size_t i = 0; i < calls; i++) {
        uint64_t now = baton_now_ns();
        if (now < previous)
            fail_msg("baton_now_ns went back from %llu to %llu at call %zu",
                     (unsigned long long)previous, (unsigned long long)now, i);
        previous = now;
    }
    /* A million calls take well over a nanosecond: the clock is not stuck. */
    assert_true(previous > first);
}

static void test_now_advances_across_sleep(void **state)
{
    (void)state;
    uint64_t before = baton_now_ns();
    bt_sleep_ms(10);
    uint64_t after = baton_now_ns();
    assert_true(after >= before);
    uint64_t elapsed = after - before;
    if (elapsed < 9000000u)
        fail_msg("10 ms sleep measured as %llu ns", (unsigned long long)elapsed);
    /* The same clock as CLOCK_MONOTONIC (documented for Linux): both see the same interval
     * within a slack of 1 ms (this catches a wrong unit, not a slow clock). */
    uint64_t mono_before = bt_now_ns();
    uint64_t baton_before = baton_now_ns();
    bt_sleep_ms(20);
    uint64_t baton_after = baton_now_ns();
    uint64_t mono_after = bt_now_ns();
    assert_true(baton_after - baton_before <= mono_after - mono_before + 1000000u);
    assert_true(baton_after - baton_before >= 19000000u);
}

/* Threads that hand a value on see a clock that never goes back across the hand-off. */
typedef struct relay_ctx {
    _Atomic uint64_t last;
    atomic_int failures;
    size_t rounds;
} relay_ctx;

static void *relay_thread(void *arg)
{
    relay_ctx *ctx = arg;
    for (size_t i = 0; i < ctx->rounds; i++) {
        uint64_t seen = atomic_load(&ctx->last);
        uint64_t now = baton_now_ns();
        if (now < seen)
            atomic_fetch_add(&ctx->failures, 1);
        uint64_t expected = seen;
        while (expected < now && !atomic_compare_exchange_weak(&ctx->last, &expected, now)) {
        }
    }
    return NULL;
}

static void test_now_monotonic_across_threads(void **state)
{
    (void)state;
    relay_ctx ctx;
    atomic_init(&ctx.last, 0);
    atomic_init(&ctx.failures, 0);
    ctx.rounds = bt_scaled(2e5, 10000);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, relay_thread, &ctx), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(atomic_load(&ctx.failures), 0);
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_known_answers),
        cmocka_unit_test(test_hash_published_vectors),
        cmocka_unit_test(test_hash_null_and_empty),
        cmocka_unit_test(test_hash_matches_xxh3_all_small_lengths),
        cmocka_unit_test(test_hash_matches_xxh3_large_inputs),
        cmocka_unit_test(test_hash_sensitive_to_seed_and_bytes),
        cmocka_unit_test(test_mix64_known_answers),
        cmocka_unit_test(test_mix64_bijective_on_samples),
        cmocka_unit_test(test_now_monotonic),
        cmocka_unit_test(test_now_advances_across_sleep),
        cmocka_unit_test(test_now_monotonic_across_threads),
    };
    return cmocka_run_group_tests_name("core/hash_clock", tests, NULL, NULL);
}
