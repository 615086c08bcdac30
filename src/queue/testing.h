/*
 * testing.h — hooks for baton's own tests; not part of the API.
 */
#ifndef BATON_QUEUE_TESTING_H
#define BATON_QUEUE_TESTING_H

#include <stdint.h>

#include "baton/queue.h"

/* Makes the next push and pop use position pos, so that tests can cross 2^32 and 2^64 without
 * pushing that many items. Only on an empty ring that no thread is using. */

/* ---- spsc.c ---- */
void baton__spsc_set_position(baton_spsc *q, uint64_t pos);
/* ---- mpsc.c ---- */
void baton__mpsc_set_position(baton_mpsc *q, uint64_t pos);
/* ---- mpmc.c ---- */
void baton__mpmc_set_position(baton_mpmc *q, uint64_t pos);

#endif /* BATON_QUEUE_TESTING_H */
