/*
 * workqueue.h — what the parallel drain (drain.c) needs of a work queue beyond its public calls.
 */
#ifndef BATON_QUEUE_WORKQUEUE_H
#define BATON_QUEUE_WORKQUEUE_H

#include <stdbool.h>

#include "baton/queue.h"
#include "core/waitpoint.h"

/* ---- workqueue.c ---- */

/* The waitpoint the receiver sleeps on; a notify on it wakes a receiver waiting for items. */
baton__waitpoint *baton__workqueue_recv_waitpoint(baton_workqueue_receiver *receiver);

/* True when a receive would not wait: an item is there, or the stream has ended. */
bool baton__workqueue_can_recv(baton_workqueue_receiver *receiver);

/* Marks the receiver as being drained; BATON_EBUSY if a drain already runs on it. */
int baton__workqueue_drain_begin(baton_workqueue_receiver *receiver);
void baton__workqueue_drain_end(baton_workqueue_receiver *receiver);

#endif /* BATON_QUEUE_WORKQUEUE_H */
