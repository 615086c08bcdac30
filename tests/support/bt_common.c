/*
 * bt_common.c — the helpers of bt_common.h that every test links from baton_test_support: scale
 * and command line, sleeping and waiting, checks from other threads, the watchdog, error checks.
 * It uses nothing of baton but the error calls of core/error.c, so that a test built without the
 * library (core_park_condvar) links it too; the pool helpers are in bt_pool.c.
 */
#include "support/bt_common.h"

static unsigned bt__parse_unsigned(const char *text, const char *what)
{
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value > 100000) {
        fprintf(stderr, "bt_common: bad %s \"%s\"\n", what, text);
        exit(2);
    }
    return (unsigned)value;
}

static void *bt__watchdog_main(void *arg)
{
    bt_watchdog *dog = arg;
    uint64_t deadline = bt_now_ns() + (uint64_t)dog->seconds * 1000000000u;
    while (atomic_load(&dog->done) == 0) {
        if (bt_now_ns() > deadline) {
            fprintf(stderr,
                    "WATCHDOG: \"%s\" did not finish within %u s "
                    "(lost wake-up or deadlock?)\n",
                    dog->what, dog->seconds);
            fflush(stderr);
            _Exit(3);
        }
        bt_sleep_ns(2000000);
    }
    return NULL;
}

double bt_scale(void)
{
    static double cached = -1.0; /* Read and written by the main thread before threads start. */
    if (cached > 0.0)
        return cached;
    double value = 1.0;
    const char *text = getenv("BATON_TEST_SCALE");
    if (text != NULL && text[0] != '\0') {
        char *end = NULL;
        errno = 0;
        double parsed = strtod(text, &end);
        if (errno != 0 || end == text || *end != '\0' || !(parsed > 0.0) || parsed > 1e6)
            fprintf(stderr, "bt_common: ignoring BATON_TEST_SCALE=\"%s\" (want a float > 0)\n",
                    text);
        else
            value = parsed;
    }
    cached = value;
    return value;
}

size_t bt_scaled(double base, size_t floor)
{
    double value = base * bt_scale();
    if (floor < 1)
        floor = 1;
    if (!(value >= (double)floor))
        return floor;
    if (value > (double)(SIZE_MAX / 4))
        return SIZE_MAX / 4;
    return (size_t)value;
}

unsigned bt_init(int argc, char **argv, unsigned fallback)
{
    unsigned workers = fallback;
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if ((strcmp(arg, "--workers") == 0 || strcmp(arg, "-w") == 0) && i + 1 < argc) {
            workers = bt__parse_unsigned(argv[++i], "worker count");
        } else if (strncmp(arg, "--workers=", 10) == 0) {
            workers = bt__parse_unsigned(arg + 10, "worker count");
        } else if (strcmp(arg, "--filter") == 0 && i + 1 < argc) {
            cmocka_set_test_filter(argv[++i]);
        } else if (strcmp(arg, "--skip") == 0 && i + 1 < argc) {
            cmocka_set_skip_filter(argv[++i]);
        } else {
            fprintf(stderr,
                    "usage: %s [--workers N] [--filter PATTERN] [--skip PATTERN]\n"
                    "environment: BATON_TEST_SCALE (float, default 1.0)\n",
                    argv[0]);
            exit(2);
        }
    }
    if (workers == 0 || workers > BATON_POOL_MAX_WORKERS) {
        fprintf(stderr, "bt_common: worker count %u out of range\n", workers);
        exit(2);
    }
    printf("# %s: workers=%u scale=%g\n", argv[0], workers, bt_scale());
    return workers;
}

void bt_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void bt_sleep_ms(unsigned ms)
{
    bt_sleep_ns((uint64_t)ms * 1000000u);
}

void bt_busy_ns(uint64_t ns)
{
    uint64_t start = bt_now_ns();
    unsigned spins = 0;
    while (bt_now_ns() - start < ns) {
        if (++spins % 64 == 0)
            sched_yield();
    }
}

bool bt_wait_flag(atomic_int *flag, unsigned timeout_ms)
{
    uint64_t deadline = bt_now_ns() + (uint64_t)timeout_ms * 1000000u;
    unsigned spins = 0;
    while (atomic_load(flag) == 0) {
        if (bt_now_ns() > deadline)
            return false;
        if (++spins < 100)
            sched_yield();
        else
            bt_sleep_ns(50000);
    }
    return true;
}

atomic_ulong *bt__thread_failures(void)
{
    static atomic_ulong failures;
    return &failures;
}

void bt__record_failure(const char *file, int line, const char *fmt, ...)
{
    /* Only the first few are printed: a broken loop can fail a million times. */
    if (atomic_fetch_add(bt__thread_failures(), 1) < 10) {
        char text[512];
        va_list args;
        va_start(args, fmt);
        vsnprintf(text, sizeof text, fmt, args);
        va_end(args);
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, text);
    }
}

void bt_watchdog_start(bt_watchdog *dog, unsigned seconds, const char *what)
{
    atomic_init(&dog->done, 0);
    dog->seconds = seconds;
    dog->what = what;
    int rc = pthread_create(&dog->thread, NULL, bt__watchdog_main, dog);
    assert_int_equal(rc, 0);
}

void bt_watchdog_stop(bt_watchdog *dog)
{
    atomic_store(&dog->done, 1);
    pthread_join(dog->thread, NULL);
}

void bt_expect_error(int rc, int expected, ...)
{
    bt_assert_rc(rc, expected);
    const char *msg = baton_last_error_message();
    va_list ap;
    va_start(ap, expected);
    for (const char *frag = va_arg(ap, const char *); frag != NULL; frag = va_arg(ap, const char *))
        if (strstr(msg, frag) == NULL)
            fail_msg("message \"%s\" lacks \"%s\"", msg, frag);
    va_end(ap);
}

void bt_check_struct_size(const char *type, size_t our_size, bt_struct_size_try_fn try_fn,
                          void *ctx)
{
    size_t good[] = {0, our_size};
    for (size_t i = 0; i < 2; i++) {
        bool created = false;
        int rc = try_fn(good[i], &created, ctx);
        if (rc != 0 || !created)
            fail_msg("%s with struct_size %zu: %s (%s), created %d", type, good[i],
                     baton_err_name(rc), baton_last_error_message(), (int)created);
    }
    for (size_t size = 1; size <= sizeof(size_t); size++) {
        size_t bad = size < sizeof(size_t) ? size : our_size + 1;
        char value[48];
        snprintf(value, sizeof value, "struct_size = %zu ", bad);
        bool created = false;
        bt_expect_error(try_fn(bad, &created, ctx), BATON_EINVAL, value, type, NULL);
        if (created)
            fail_msg("%s with struct_size %zu was refused but made something", type, bad);
    }
}
