/*
 * workqueue.c — the work queue: a sender handle and a receiver handle over one ring.
 *
 * DESIGN
 *  - Single-producer by default: the ring is the SPSC ring, and sender_clone refuses. With
 *    BATON_WQ_MULTI_PRODUCER the ring is the MPSC ring and clones are allowed. The choice is made
 *    once, at creation, so a second producer is never an accident: the SPSC ring's push is
 *    cheaper than the MPSC ring's, and a caller that needs several producers says so.
 *  - Shutdown is the last sender's close: open_senders counts the senders; the close that takes
 *    it to zero closes the ring. Its acq_rel decrement comes after every other sender's own
 *    decrement in the counter's order, so every push a closed sender made happens before the
 *    ring's close — exactly the ring's contract for close (queue.h).
 *  - refs counts the handles (senders + the receiver); the last one out frees the queue, so the
 *    two sides may go away in any order and on any thread.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/os.h"
#include "queue/ring.h"
#include "queue/workqueue.h"

typedef struct baton__workqueue {
    bool multi_producer;
    baton_spsc *spsc; /* exactly one of the two */
    baton_mpsc *mpsc;
    _Atomic uint32_t open_senders;
    _Atomic uint32_t refs;
    _Atomic uint32_t receiver_gone;
    _Atomic uint32_t draining;
} baton__workqueue;

struct baton_workqueue_sender {
    baton__workqueue *wq;
};

struct baton_workqueue_receiver {
    baton__workqueue *wq;
};

static void baton__workqueue_free(baton__workqueue *wq)
{
    baton_spsc_destroy(wq->spsc);
    baton_mpsc_destroy(wq->mpsc);
    baton__free(wq);
}

static void baton__workqueue_unref(baton__workqueue *wq)
{
    /* acq_rel: the last handle out sees everything the others did before freeing. */
    if (baton__fetch_sub_acq_rel(&wq->refs, 1) == 1)
        baton__workqueue_free(wq);
}

int baton_workqueue_create(size_t capacity, unsigned flags, baton_workqueue_sender **sender,
                           baton_workqueue_receiver **receiver)
{
    if (sender == NULL || receiver == NULL)
        return baton__error(BATON_EINVAL, "baton_workqueue_create: %s is NULL",
                            sender == NULL ? "sender" : "receiver");
    if ((flags & ~(unsigned)BATON_WQ_MULTI_PRODUCER) != 0)
        return baton__error(BATON_EINVAL, "baton_workqueue_create: unknown flags 0x%x",
                            flags & ~(unsigned)BATON_WQ_MULTI_PRODUCER);
    baton__workqueue *wq = baton__calloc(1, sizeof *wq);
    baton_workqueue_sender *tx = baton__malloc(sizeof *tx);
    baton_workqueue_receiver *rx = baton__malloc(sizeof *rx);
    int rc = 0;
    if (wq == NULL || tx == NULL || rx == NULL) {
        rc = baton__error(BATON_ENOMEM, "baton_workqueue_create: no memory");
    } else {
        wq->multi_producer = (flags & BATON_WQ_MULTI_PRODUCER) != 0;
        rc = wq->multi_producer ? baton_mpsc_create(capacity, &wq->mpsc)
                                : baton_spsc_create(capacity, &wq->spsc);
        if (rc != 0)
            baton__error(rc, "baton_workqueue_create: %s", baton_last_error_message());
    }
    if (rc != 0) {
        baton__free(wq);
        baton__free(tx);
        baton__free(rx);
        return rc;
    }
    atomic_init(&wq->open_senders, 1);
    atomic_init(&wq->refs, 2);
    atomic_init(&wq->receiver_gone, 0);
    atomic_init(&wq->draining, 0);
    tx->wq = wq;
    rx->wq = wq;
    *sender = tx;
    *receiver = rx;
    return 0;
}

int baton_workqueue_sender_clone(baton_workqueue_sender *sender, baton_workqueue_sender **clone)
{
    if (sender == NULL || clone == NULL)
        return baton__error(BATON_EINVAL, "baton_workqueue_sender_clone: %s is NULL",
                            sender == NULL ? "sender" : "clone");
    baton__workqueue *wq = sender->wq;
    if (!wq->multi_producer)
        return baton__error(BATON_EINVAL,
                            "baton_workqueue_sender_clone: the queue is single-producer; a "
                            "second sender must be asked for at creation with "
                            "BATON_WQ_MULTI_PRODUCER");
    if (baton__load_relaxed(&wq->receiver_gone))
        return baton__error(BATON_ECLOSED, "baton_workqueue_sender_clone: the receiver is gone");
    baton_workqueue_sender *tx = baton__malloc(sizeof *tx);
    if (tx == NULL)
        return baton__error(BATON_ENOMEM, "baton_workqueue_sender_clone: no memory");
    tx->wq = wq;
    /* Relaxed: the caller's open sender keeps both counts above zero while we add to them. */
    baton__fetch_add_relaxed(&wq->open_senders, 1);
    baton__fetch_add_relaxed(&wq->refs, 1);
    *clone = tx;
    return 0;
}

static int baton__workqueue_closed(const char *call)
{
    return baton__error(BATON_ECLOSED, "%s: the receiver is gone", call);
}

int baton_workqueue_try_send(baton_workqueue_sender *sender, void *item)
{
    if (sender == NULL)
        return baton__error(BATON_EINVAL, "baton_workqueue_try_send: sender is NULL");
    baton__workqueue *wq = sender->wq;
    int rc = wq->multi_producer ? baton_mpsc_try_push(wq->mpsc, item)
                                : baton_spsc_try_push(wq->spsc, item);
    return rc == BATON_ECLOSED ? baton__workqueue_closed("baton_workqueue_try_send") : rc;
}

int baton_workqueue_send(baton_workqueue_sender *sender, void *item, uint64_t timeout_ns)
{
    if (sender == NULL)
        return baton__error(BATON_EINVAL, "baton_workqueue_send: sender is NULL");
    baton__workqueue *wq = sender->wq;
    int rc = wq->multi_producer ? baton_mpsc_push(wq->mpsc, item, timeout_ns)
                                : baton_spsc_push(wq->spsc, item, timeout_ns);
    return rc == BATON_ECLOSED ? baton__workqueue_closed("baton_workqueue_send") : rc;
}

int baton_workqueue_send_n(baton_workqueue_sender *sender, void *const *items, size_t n,
                           uint64_t timeout_ns, size_t *sent)
{
    if (sent != NULL)
        *sent = 0;
    if (sender == NULL || (items == NULL && n != 0))
        return baton__error(BATON_EINVAL, "baton_workqueue_send_n: %s is NULL",
                            sender == NULL ? "sender" : "items (with n > 0)");
    baton__workqueue *wq = sender->wq;
    uint64_t deadline = baton__deadline_after(timeout_ns);
    size_t done = 0;
    int rc = 0;
    while (done < n) {
        size_t k = 0;
        rc = wq->multi_producer ? baton_mpsc_push_n(wq->mpsc, items + done, n - done, &k)
                                : baton_spsc_push_n(wq->spsc, items + done, n - done, &k);
        done += k;
        if (rc == BATON_EAGAIN) {
            /* Full: wait for room by pushing one item the waiting way. */
            uint64_t now = baton__monotonic_ns();
            uint64_t left = deadline == UINT64_MAX ? BATON_WAIT_FOREVER
                            : deadline > now      ? deadline - now
                                                  : 0;
            rc = wq->multi_producer ? baton_mpsc_push(wq->mpsc, items[done], left)
                                    : baton_spsc_push(wq->spsc, items[done], left);
            if (rc == 0)
                done++;
        }
        if (rc != 0)
            break;
    }
    if (sent != NULL)
        *sent = done;
    if (rc == BATON_ECLOSED)
        return baton__workqueue_closed("baton_workqueue_send_n");
    return rc;
}

void baton_workqueue_sender_close(baton_workqueue_sender *sender)
{
    if (sender == NULL)
        return;
    baton__workqueue *wq = sender->wq;
    baton__free(sender);
    /* acq_rel: the last close acquires every other sender's release decrement, so all their
     * pushes happen before the ring's close below. */
    if (baton__fetch_sub_acq_rel(&wq->open_senders, 1) == 1) {
        if (wq->multi_producer)
            baton_mpsc_close(wq->mpsc);
        else
            baton_spsc_close(wq->spsc);
    }
    baton__workqueue_unref(wq);
}

int baton_workqueue_try_recv(baton_workqueue_receiver *receiver, void **item)
{
    if (receiver == NULL)
        return baton__error(BATON_EINVAL, "baton_workqueue_try_recv: receiver is NULL");
    baton__workqueue *wq = receiver->wq;
    return wq->multi_producer ? baton_mpsc_try_pop(wq->mpsc, item)
                              : baton_spsc_try_pop(wq->spsc, item);
}

int baton_workqueue_recv(baton_workqueue_receiver *receiver, void **item, uint64_t timeout_ns)
{
    if (receiver == NULL)
        return baton__error(BATON_EINVAL, "baton_workqueue_recv: receiver is NULL");
    baton__workqueue *wq = receiver->wq;
    return wq->multi_producer ? baton_mpsc_pop(wq->mpsc, item, timeout_ns)
                              : baton_spsc_pop(wq->spsc, item, timeout_ns);
}

int baton_workqueue_recv_n(baton_workqueue_receiver *receiver, void **items, size_t max,
                           size_t *received)
{
    if (receiver == NULL) {
        if (received != NULL)
            *received = 0;
        return baton__error(BATON_EINVAL, "baton_workqueue_recv_n: receiver is NULL");
    }
    baton__workqueue *wq = receiver->wq;
    return wq->multi_producer ? baton_mpsc_pop_n(wq->mpsc, items, max, received)
                              : baton_spsc_pop_n(wq->spsc, items, max, received);
}

void baton_workqueue_receiver_destroy(baton_workqueue_receiver *receiver)
{
    if (receiver == NULL)
        return;
    baton__workqueue *wq = receiver->wq;
    baton__free(receiver);
    baton__store_relaxed(&wq->receiver_gone, 1);
    /* Closing from this side refuses later sends and wakes senders blocked on a full ring. */
    if (wq->multi_producer)
        baton_mpsc_close(wq->mpsc);
    else
        baton_spsc_close(wq->spsc);
    baton__workqueue_unref(wq);
}

static size_t baton__workqueue_capacity(const baton__workqueue *wq)
{
    return wq->multi_producer ? baton_mpsc_capacity(wq->mpsc) : baton_spsc_capacity(wq->spsc);
}

static size_t baton__workqueue_size(const baton__workqueue *wq)
{
    return wq->multi_producer ? baton_mpsc_size(wq->mpsc) : baton_spsc_size(wq->spsc);
}

size_t baton_workqueue_capacity(const baton_workqueue_receiver *receiver)
{
    return receiver != NULL ? baton__workqueue_capacity(receiver->wq) : 0;
}

size_t baton_workqueue_size(const baton_workqueue_receiver *receiver)
{
    return receiver != NULL ? baton__workqueue_size(receiver->wq) : 0;
}

size_t baton_workqueue_sender_capacity(const baton_workqueue_sender *sender)
{
    return sender != NULL ? baton__workqueue_capacity(sender->wq) : 0;
}

size_t baton_workqueue_sender_size(const baton_workqueue_sender *sender)
{
    if (sender == NULL)
        return 0;
    /* Relaxed: "at some instant during the call"; once the receiver is gone, what it left in
     * the ring will never be received, so it is not queued any more. */
    if (baton__load_relaxed(&sender->wq->receiver_gone))
        return 0;
    return baton__workqueue_size(sender->wq);
}

baton__waitpoint *baton__workqueue_recv_waitpoint(baton_workqueue_receiver *receiver)
{
    baton__workqueue *wq = receiver->wq;
    return wq->multi_producer ? baton__mpsc_consumer_waitpoint(wq->mpsc)
                              : baton__spsc_consumer_waitpoint(wq->spsc);
}

bool baton__workqueue_can_recv(baton_workqueue_receiver *receiver)
{
    baton__workqueue *wq = receiver->wq;
    return wq->multi_producer ? baton__mpsc_can_pop(wq->mpsc) : baton__spsc_can_pop(wq->spsc);
}

int baton__workqueue_drain_begin(baton_workqueue_receiver *receiver)
{
    uint32_t expected = 0;
    /* Acquire pairs with the release store in drain_end: the previous drain's receives are
     * ordered before ours. */
    if (!baton__cas_strong_acquire(&receiver->wq->draining, &expected, 1))
        return baton__error(BATON_EBUSY, "baton_workqueue_drain_parallel: another drain is "
                                         "already running on this receiver");
    return 0;
}

void baton__workqueue_drain_end(baton_workqueue_receiver *receiver)
{
    /* Release pairs with the acquire CAS in drain_begin. */
    baton__store_release(&receiver->wq->draining, 0);
}
