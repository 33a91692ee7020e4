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

void rxq_init(struct rxq *q)
{
        pthread_mutex_init(&q->lock, NULL);
        q->v = NULL;
        q->cap = q->head = q->count = 0;
}

void rxq_destroy(struct rxq *q)
{
        free(q->v);
        pthread_mutex_destroy(&q->lock);
}

int rxq_push(struct rxq *q, const struct rx_buf *b)
{
        int ret = 0;

        pthread_mutex_lock(&q->lock);
        if (q->count == q->cap) {
                uint32_t cap = q->cap ? q->cap * 2 : 64, i;
                struct rx_buf *v = cap > q->cap ? malloc(sizeof(*v) * cap) : NULL;

                if (!v) {
                        ret = -ENOMEM;
                        goto out;
                }
                for (i = 0; i < q->count; i++)
                        v[i] = q->v[(q->head + i) % q->cap];
                free(q->v);
                q->v = v;
                q->cap = cap;
                q->head = 0;
        }
        q->v[(q->head + q->count) % q->cap] = *b;
        q->count++;
out:
        pthread_mutex_unlock(&q->lock);
        return ret;
}

int rxq_pop(struct rxq *q, struct rx_buf *b)
{
        int ret = -ENOENT;

        pthread_mutex_lock(&q->lock);
        if (q->count) {
                *b = q->v[q->head];
                q->head = (q->head + 1) % q->cap;
                q->count--;
                ret = 0;
        }
        pthread_mutex_unlock(&q->lock);
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
                if (rxq_pop(&qp->rxq, &b)) {
                        /* Stop; the frame stays and is taken when a buffer is posted. */
                        STAT_ADD(qp, rx_err_no_buf, 1);
                        break;
                }
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
                        qp->in_handler++;
                        qp->h.rx(qp, qp->ctx, b.ctx, b.data, res);
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
