/* SPDX-License-Identifier: MIT */
/*
 * The receive ring (spec section 6): poll for DONE, consume the frame into a
 * posted buffer, report the slot back through rx_info.  Every value the peer
 * writes into our ring (flags, ver, len) is read once, checked, and only
 * then used.  What a bad frame or a LINK_DOWN means for the queue pair is
 * the caller's to decide (qp.c): the walk stops and says why.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../util/barrier.h"
#include "transport.h"
#include "wire.h"

/*
 * The QP whose rx handler this thread runs now (rx_process), or NULL: a
 * post from it is the owner's own (rx_post).  Thread-local, so it needs no
 * ordering; set and read on the owner's thread only while a walk runs.
 */
static _Thread_local struct ntbt_qp *tl_rx_handler_qp;

/* Capacities are powers of two, so an index wraps with a mask. */
static int ring_grow(struct rx_ring *r, uint32_t need)
{
        uint32_t cap = r->cap ? r->cap : 64, i;
        struct rx_buf *v;

        while (cap < need) {
                if (cap > UINT32_MAX / 2)
                        return -ENOMEM;
                cap *= 2;
        }
        if (cap == r->cap)
                return 0;
        v = malloc(sizeof(*v) * cap);
        if (!v)
                return -ENOMEM;
        for (i = 0; i < r->count; i++)
                v[i] = r->v[(r->head + i) & (r->cap - 1)];
        free(r->v);
        r->v = v;
        r->cap = cap;
        r->head = 0;
        return 0;
}

/*
 * count is stored with store_relaxed here and wherever it changes: the
 * queue's count is read without the lock (rx_post, rx_cache_refill), so
 * every write to it is atomic; the lock orders the writers, and a reader
 * wants the value only (see rx_post for why no more ordering is needed).
 */
static int ring_push(struct rx_ring *r, const struct rx_buf *b)
{
        if (r->count == r->cap && ring_grow(r, r->count + 1))
                return -ENOMEM;
        r->v[(r->head + r->count) & (r->cap - 1)] = *b;
        store_relaxed(&r->count, r->count + 1);
        return 0;
}

static int ring_pop(struct rx_ring *r, struct rx_buf *b)
{
        if (!r->count)
                return -ENOENT;
        *b = r->v[r->head];
        r->head = (r->head + 1) & (r->cap - 1);
        store_relaxed(&r->count, r->count - 1);
        return 0;
}

/* Swap the arrays of the queue and the cache (under the queue's lock). */
static void ring_swap(struct rx_ring *q, struct rx_ring *c)
{
        struct rx_ring t = *c;

        c->v = q->v;
        c->cap = q->cap;
        c->head = q->head;
        store_relaxed(&c->count, q->count);
        q->v = t.v;
        q->cap = t.cap;
        q->head = t.head;
        store_relaxed(&q->count, t.count);
}

void rxq_init(struct ntbt_qp *qp)
{
        pthread_mutex_init(&qp->rxq.lock, NULL);
        qp->rxq.r = (struct rx_ring){0};
        qp->rxc = (struct rx_ring){0};
}

void rxq_destroy(struct ntbt_qp *qp)
{
        free(qp->rxq.r.v);
        free(qp->rxc.v);
        pthread_mutex_destroy(&qp->rxq.lock);
}

int rx_post(struct ntbt_qp *qp, const struct rx_buf *b)
{
        int ret;

        /*
         * The owner's rx handler posting while the queue is empty: the
         * buffer goes behind the cache, no lock.  That keeps posting order:
         * a post P that happens before this one stored the queue's count
         * (under the lock, before P returned), so this relaxed load reads
         * that store or a later one (coherence); 0 means P's buffer already
         * left the queue, into the cache ahead of ours (the owner's refill,
         * on this thread) or to an rx_remove.  A post racing with this one
         * is not ordered with it, and either order is right.  state: the
         * cache is for the QP up (qp_go_down gives it back first); an
         * owner-only field, and we are the owner.
         */
        if (tl_rx_handler_qp == qp && qp->state == QP_UP && !load_relaxed(&qp->rxq.r.count)) {
                ret = ring_push(&qp->rxc, b);
                /* Relaxed: see rx_cache_return. */
                store_relaxed(&qp->rx_held, qp->rxc.count);
                return ret;
        }
        pthread_mutex_lock(&qp->rxq.lock);
        ret = ring_push(&qp->rxq.r, b);
        pthread_mutex_unlock(&qp->rxq.lock);
        return ret;
}

/* The owner, its cache empty: take every queued buffer in one go (0), or
 * -ENOENT when none is posted. */
static int rx_cache_refill(struct ntbt_qp *qp)
{
        /* Relaxed: a post that this load misses is racing with the walk,
         * as one made just after the lock would be; its buffer is taken on
         * a later walk.  The buffers themselves are read under the lock. */
        if (!load_relaxed(&qp->rxq.r.count))
                return -ENOENT;
        pthread_mutex_lock(&qp->rxq.lock);
        /* The cache is empty: it takes the queue's array whole, and the
         * queue the cache's (with its capacity) for later posts. */
        ring_swap(&qp->rxq.r, &qp->rxc);
        pthread_mutex_unlock(&qp->rxq.lock);
        store_relaxed(&qp->rx_held, qp->rxc.count); /* relaxed: see rx_cache_return */
        return qp->rxc.count ? 0 : -ENOENT;
}

void rx_cache_return(struct ntbt_qp *qp)
{
        struct rx_ring *q = &qp->rxq.r, *c = &qp->rxc;
        struct rx_buf b;

        if (!c->count)
                return;
        pthread_mutex_lock(&qp->rxq.lock);
        /* The queue's buffers go behind the cache's, and the whole lot
         * becomes the queue.  Growing the cache is the one allocation;
         * should it fail, the owner keeps the buffers (rx_remove says
         * -EBUSY, a free still hands them back) and tries again on its
         * next service (qp_service). */
        if (ring_grow(c, c->count + q->count)) {
                pthread_mutex_unlock(&qp->rxq.lock);
                return;
        }
        while (ring_pop(q, &b) == 0)
                ring_push(c, &b); /* room was made above */
        ring_swap(q, c);
        pthread_mutex_unlock(&qp->rxq.lock);
        /*
         * Relaxed: rx_remove reads rx_held after it saw the QP down through
         * the seq_cst link_up, and qp_go_down clears link_up after this
         * store, so a remover that sees the QP down sees 0 here too.
         */
        store_relaxed(&qp->rx_held, 0u);
}

int rx_remove(struct ntbt_qp *qp, struct rx_buf *b)
{
        int ret;

        pthread_mutex_lock(&qp->rxq.lock);
        /* Relaxed: see rx_cache_return. */
        if (load_relaxed(&qp->rx_held))
                ret = -EBUSY;
        else
                ret = ring_pop(&qp->rxq.r, b);
        pthread_mutex_unlock(&qp->rxq.lock);
        return ret;
}

int rx_take_any(struct ntbt_qp *qp, struct rx_buf *b)
{
        int ret;

        /* The owner let go (a free's end), so its cache is ours to read. */
        if (ring_pop(&qp->rxc, b) == 0)
                return 0;
        pthread_mutex_lock(&qp->rxq.lock);
        ret = ring_pop(&qp->rxq.r, b);
        pthread_mutex_unlock(&qp->rxq.lock);
        return ret;
}

/*
 * rx_info is written once per walk, not once per frame: the sender reads the
 * newest value only, and every write is a cache line (or a posted write)
 * crossing to the other side.  A pending value is written before anything
 * that ends the session (LINK_DOWN, a reset), so it never lands in the
 * peer's next session.
 */
static void rx_info_flush(struct ntbt_qp *qp, uint32_t *pending)
{
        if (*pending == UINT32_MAX)
                return;
        /* Through the window, a release store: the copy-outs and flag clears
         * of every frame up to this slot happen before the sender may reuse
         * the slots. */
        ntbt_dev_peer_mw_write32(qp->t->dev, (int)qp->tx_g.mw, qp->tx_g.rx_info_off, *pending);
        *pending = UINT32_MAX;
}

/*
 * long: the receive hot loop, one frame per pass in spec section 6's order
 * (DONE, flags, ver, buffer, length, copy, clear, rx_info, handler); every
 * early exit sets why it stopped for qp.c, and the rx_info written after
 * the loop must see every consumed slot, so the steps share the loop's
 * locals (pending, n) rather than pass them through helpers.
 */
int rx_process(struct ntbt_qp *qp, int budget, struct rx_stop *stop)
{
        const struct qp_geom *g = &qp->rx_g;
        struct ntbt_dev *dev = qp->t->dev;
        uint32_t pending = UINT32_MAX;
        int n = 0;

        stop->why = RX_STOP_NONE;
        /* Called with the QP up; a handler may change that (a nested poll)
         * and a freed QP delivers nothing more (seq_cst: the free may come
         * from the copy thread). */
        while (n < budget && qp->state == QP_UP && !load_sc(&qp->dying)) {
                /* rx_index < entries always (we alone advance it, modulo
                 * entries), and the geometry was checked to fit the window. */
                uint8_t *hdr = qp->rx_win + geom_hdr_off(g, qp->rx_index);
                uint32_t flags, ver, len, consumed;
                struct rx_buf b;
                int res;

                /* Acquire: pairs with the sender's release of DONE, so the
                 * header fields and payload it wrote before are visible. */
                flags = load_acquire_u32(hdr + NTB_HDR_FLAGS_OFF);
                if (!(flags & NTB_DESC_DONE_FLAG)) {
                        if (n == 0)
                                STAT_ADD(qp, rx_ring_empty, 1);
                        break;
                }
                if (flags & ~NTB_FLAGS_VALID) {
                        STAT_ADD(qp, rx_err_flags, 1);
                        *stop = (struct rx_stop){RX_STOP_BAD_FLAGS, qp->rx_index, flags, 0};
                        break;
                }
                if (flags & NTB_LINK_DOWN_FLAG) {
                        /* Relaxed: our own ring's word, which the sender does
                         * not write again before our rx_info (a release
                         * store, rx_info_flush) hands the slot back. */
                        store_relaxed_u32(hdr + NTB_HDR_FLAGS_OFF, 0u);
                        stop->why = RX_STOP_LINK_DOWN;
                        break;
                }
                /* Relaxed: ordered after the acquire of flags above. */
                ver = load_relaxed_u32(hdr + NTB_HDR_VER_OFF);
                len = load_relaxed_u32(hdr + NTB_HDR_LEN_OFF);
                if (ver != qp->rx_pkts) {
                        STAT_ADD(qp, rx_err_ver, 1);
                        *stop = (struct rx_stop){RX_STOP_BAD_VER, qp->rx_index, ver, qp->rx_pkts};
                        break;
                }
                if (!qp->rxc.count && rx_cache_refill(qp)) {
                        /* Stop; the frame stays and is taken when a buffer is posted. */
                        STAT_ADD(qp, rx_err_no_buf, 1);
                        break;
                }
                ring_pop(&qp->rxc, &b);
                /* Relaxed: see rx_cache_return. */
                store_relaxed(&qp->rx_held, qp->rxc.count);
                if (len > g->payload || len > b.len) {
                        STAT_ADD(qp, rx_err_oflow, 1);
                        res = -EMSGSIZE;
                } else {
                        /* The payload ends where the header starts. */
                        memcpy(b.data, hdr - g->payload, len);
                        STAT_ADD(qp, rx_bytes, len);
                        STAT_ADD(qp, rx_memcpy, 1);
                        res = (int)len;
                }
                /* Relaxed, as for LINK_DOWN above: rx_info's release store
                 * orders it before the sender may reuse the slot. */
                store_relaxed_u32(hdr + NTB_HDR_FLAGS_OFF, 0u);
                consumed = qp->rx_index;
                qp->rx_index = (qp->rx_index + 1) % g->entries;
                qp->rx_pkts++;
                STAT_ADD(qp, rx_pkts, 1);
                STAT_SET(qp, rx_index, qp->rx_index);
                pending = consumed; /* written after the walk: rx_info_flush */
                n++;
                /* ...and every quarter ring meanwhile, so a sender waiting
                 * for slots refills while we still copy out (big frames). */
                if (n % qp->rx_info_every == 0)
                        rx_info_flush(qp, &pending);
                if (qp->h.rx) {
                        struct ntbt_qp *outer = tl_rx_handler_qp;

                        qp->in_handler++;
                        tl_rx_handler_qp = qp; /* its posts may go to the cache: rx_post */
                        qp->h.rx(qp, qp->ctx, b.ctx, b.data, res);
                        tl_rx_handler_qp = outer;
                        qp->in_handler--;
                }
                if (load_sc(&qp->down_req))
                        break;
        }
        /* Before anything that ends the session (a LINK_DOWN, a reset, which
         * the caller does after this): a handler's link_down or free is acted
         * on by the owner after the walk, so the QP is still in this session. */
        if (qp->state == QP_UP)
                rx_info_flush(qp, &pending);
        /* Push the rx_info store out of a write-combining window now
         * rather than whenever the buffer happens to drain. */
        if (n)
                ntbt_dev_peer_mw_wmb(dev, (int)qp->tx_g.mw);
        return n;
}
