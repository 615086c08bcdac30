/*
 * crew.c — dedicated member threads fed through one SPSC ring each (see crew.h).
 *
 * A command is a pointer to the crew's one job record; member i pops it from ring i, runs its
 * share and counts itself done. The driver waits for the count on a waitpoint, so it spins
 * briefly and then sleeps on a futex; the last member out notifies it. Closing the rings is the
 * shutdown signal: a member's pop then returns BATON_EEOF and the thread ends.
 */
#include "store/crew.h"

#include <stdatomic.h>
#include <stdio.h>

#include "baton/queue.h"
#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/os.h"
#include "core/topology.h"
#include "core/waitpoint.h"

typedef struct baton__crew_member {
    baton__crew *crew;
    unsigned index;
    baton_spsc *inbox;
    baton__thread *thread;
} baton__crew_member;

struct baton__crew {
    unsigned n;
    baton__crew_member *members;
    baton__topology *topology; /* NULL unless pinning */
    /* The job of the current baton__crew_run: written by the driver before it pushes the
     * commands, read by members after they pop one (the ring's release/acquire orders it). */
    void (*fn)(unsigned member, void *arg);
    void *arg;
    /* Members that have not finished the current job; the driver waits on done for zero. */
    BATON_CACHELINE_ALIGNED _Atomic uint32_t remaining;
    baton__waitpoint done;
};

static void *crew_member_main(void *arg)
{
    baton__crew_member *m = arg;
    baton__crew *crew = m->crew;
    void *command;

    if (crew->topology != NULL)
        (void)baton__topology_pin_self(crew->topology, m->index); /* best effort */
    while (baton_spsc_pop(m->inbox, &command, BATON_WAIT_FOREVER) == 0) {
        crew->fn(m->index, crew->arg);
        /* Release: the job's writes happen before the driver's acquire of zero. acq_rel: the
         * member that brings it to zero also sees the others' writes, though only the driver
         * reads them. */
        if (atomic_fetch_sub_explicit(&crew->remaining, 1, memory_order_acq_rel) == 1)
            baton__waitpoint_notify(&crew->done, false);
    }
    return NULL;
}

unsigned baton__crew_size(const baton__crew *crew)
{
    return crew->n;
}

void baton__crew_destroy(baton__crew *crew)
{
    if (crew == NULL)
        return;
    for (unsigned i = 0; i < crew->n; i++)
        if (crew->members[i].inbox != NULL)
            baton_spsc_close(crew->members[i].inbox);
    for (unsigned i = 0; i < crew->n; i++) {
        if (crew->members[i].thread != NULL)
            baton__thread_join(crew->members[i].thread);
        baton_spsc_destroy(crew->members[i].inbox);
    }
    if (crew->topology != NULL)
        baton__topology_free(crew->topology);
    baton__free(crew->members);
    baton__free(crew);
}

int baton__crew_create(unsigned n, const char *name, bool pin, baton__crew **out)
{
    baton__crew *crew = baton__aligned_alloc(BATON_CACHELINE, sizeof *crew);
    int rc = 0;

    if (crew == NULL)
        return baton__error(BATON_ENOMEM, "baton_store: no memory for %u executors", n);
    crew->n = n;
    crew->topology = NULL;
    crew->fn = NULL;
    crew->arg = NULL;
    atomic_init(&crew->remaining, 0);
    baton__waitpoint_global_init();
    baton__waitpoint_init(&crew->done);
    crew->members = baton__calloc(n, sizeof *crew->members);
    if (crew->members == NULL) {
        baton__free(crew);
        return baton__error(BATON_ENOMEM, "baton_store: no memory for %u executors", n);
    }
    if (pin)
        rc = baton__topology_load(&crew->topology);
    for (unsigned i = 0; i < n && rc == 0; i++) {
        crew->members[i].crew = crew;
        crew->members[i].index = i;
        /* One command is in flight per member at a time; 2 leaves room for nothing else. */
        rc = baton_spsc_create(2, &crew->members[i].inbox);
    }
    for (unsigned i = 0; i < n && rc == 0; i++) {
        char thread_name[32];
        snprintf(thread_name, sizeof thread_name, "%s-%u", name, i);
        rc = baton__thread_start(&crew->members[i].thread, crew_member_main, &crew->members[i],
                                 thread_name);
    }
    if (rc != 0) {
        baton__crew_destroy(crew);
        return baton__error(rc, "baton_store: cannot start %u executor threads (%s)", n,
                            baton_strerror(rc));
    }
    *out = crew;
    return 0;
}

static bool crew_all_done(void *arg)
{
    baton__crew *crew = arg;
    /* Acquire: pairs with the members' acq_rel decrements, so their writes are visible. */
    return atomic_load_explicit(&crew->remaining, memory_order_acquire) == 0;
}

void baton__crew_run(baton__crew *crew, void (*fn)(unsigned member, void *arg), void *arg)
{
    crew->fn = fn;
    crew->arg = arg;
    atomic_store_explicit(&crew->remaining, crew->n, memory_order_relaxed);
    for (unsigned i = 0; i < crew->n; i++) {
        /* The ring holds at most this one command, so the push never waits; its release
         * publishes fn, arg and remaining to member i. */
        int rc = baton_spsc_push(crew->members[i].inbox, crew, BATON_WAIT_FOREVER);
        (void)rc; /* only a closed ring refuses, and only destroy closes it */
    }
    /* No yields: with every core busy running members, a yield would take their time. */
    (void)baton__waitpoint_wait_yielding(&crew->done, crew_all_done, crew, UINT64_MAX, 0);
}
