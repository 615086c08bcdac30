/*
 * fuzz_deque.c — the split deque (src/pool/deque.c) against a model, one operation per input
 * byte: push private, push public, publish, owner pop, steal. The model is the list of jobs from
 * top to bottom and the split point; every operation's result must match it. Single-threaded:
 * this checks the deque's sequential contract (LIFO for the owner, FIFO for thieves over the
 * public part only, private jobs invisible, growth keeps everything); test_pool_deque.c races it.
 *
 * Built two ways: as a libFuzzer target with -DBATON_FUZZ=ON and clang (LLVMFuzzerTestOneInput
 * only), and, always, as a CTest program whose main feeds it pseudo-random inputs
 * (BATON_FUZZ_DRIVER).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pool/deque.h"
#include "pool/internal.h"

#define FUZZ_MAX_JOBS 4096

typedef struct fuzz_job {
    baton__job job; /* first: the deque holds pointers to it */
    unsigned id;
} fuzz_job;

static fuzz_job g_jobs[FUZZ_MAX_JOBS];

static void fuzz_fail(const char *what, unsigned step)
{
    fprintf(stderr, "fuzz_deque: step %u: %s\n", step, what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    baton__deque deque;
    if (baton__deque_init(&deque, 1) != 0)
        return 0;
    /* The model: ids of the jobs in the deque, oldest first, model[head .. tail), and how many
     * of them (from the oldest) are public. */
    static unsigned model[FUZZ_MAX_JOBS];
    size_t head = 0, tail = 0, public_count = 0;
    unsigned next_id = 0;

    for (size_t i = 0; i < size; i++) {
        unsigned step = (unsigned)i;
        bool lost;
        baton__job *got;
        switch (data[i] % 5) {
        case 0: /* push private */
        case 1: /* push public */
            if (next_id == FUZZ_MAX_JOBS)
                break;
            g_jobs[next_id].id = next_id;
            if (baton__deque_push(&deque, &g_jobs[next_id].job, data[i] % 5 == 1) != 0)
                fuzz_fail("push failed", step);
            model[tail++] = next_id++;
            if (data[i] % 5 == 1)
                public_count = tail - head;
            break;
        case 2: /* publish */
            baton__deque_publish(&deque);
            public_count = tail - head;
            break;
        case 3: /* the owner pops the newest job, private or public */
            got = baton__deque_pop(&deque);
            if (head == tail) {
                if (got != NULL)
                    fuzz_fail("pop of an empty deque returned a job", step);
                break;
            }
            if (got == NULL || ((fuzz_job *)got)->id != model[tail - 1])
                fuzz_fail("pop did not return the newest job", step);
            tail--;
            if (public_count > tail - head)
                public_count = tail - head;
            break;
        default: /* a thief steals the oldest public job */
            got = baton__deque_steal(&deque, &lost);
            if (lost)
                fuzz_fail("a steal lost a race with nobody", step);
            if (public_count == 0) {
                if (got != NULL)
                    fuzz_fail("a steal returned a private job", step);
                break;
            }
            if (got == NULL || ((fuzz_job *)got)->id != model[head])
                fuzz_fail("a steal did not return the oldest public job", step);
            head++;
            public_count--;
            break;
        }
        if (baton__deque_has_public(&deque) != (public_count > 0))
            fuzz_fail("has_public disagrees with the model", step);
    }
    /* Drain: everything left comes back to the owner, newest first. */
    while (head < tail) {
        baton__job *got = baton__deque_pop(&deque);
        if (got == NULL || ((fuzz_job *)got)->id != model[tail - 1])
            fuzz_fail("drain did not return the newest job", (unsigned)size);
        tail--;
    }
    if (baton__deque_pop(&deque) != NULL)
        fuzz_fail("the drained deque is not empty", (unsigned)size);
    baton__deque_destroy(&deque);
    return 0;
}

#ifdef BATON_FUZZ_DRIVER
/* The CTest driver: inputs from a fixed-seed generator, with runs of one operation so that the
 * deque grows well past its initial capacity and empties again. */
int main(int argc, char **argv)
{
    unsigned long inputs = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
    uint64_t x = 0x9e3779b97f4a7c15u;
    static uint8_t buf[8192];
    for (unsigned long n = 0; n < inputs; n++) {
        size_t len = 0;
        while (len < sizeof buf) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint8_t op = (uint8_t)(x % 5);
            size_t run = 1 + (size_t)((x >> 8) % (n % 3 == 0 ? 300 : 8));
            for (size_t k = 0; k < run && len < sizeof buf; k++)
                buf[len++] = op;
            if ((x >> 20) % 64 == 0)
                break;
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("fuzz_deque: %lu inputs passed\n", inputs);
    return 0;
}
#endif
