/* SPDX-License-Identifier: MIT */
/*
 * Sending frames (spec section 5), inline: the enqueuing thread does steps
 * 3-8.  The slot is reserved (step 2) before the copy so that the same
 * steps can move to a copy thread.
 */
#include <errno.h>
#include <time.h>

#include "../util/barrier.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "transport.h"
#include "wire.h"

#define LINK_DOWN_WAIT_NS (1000 * NS_PER_MS)

void tx_reset_locked(struct ntbt_qp *qp)
{
        qp->tx_up = 0;
        qp->tx_index = 0;
        qp->tx_pkts = 0;
        qp->db_pending = 0;
        qp->rri_logged = 0;
}

uint32_t tx_free_locked(struct ntbt_qp *qp)
{
        uint32_t entries = qp->tx_g.entries, idx = qp->tx_index, entry;

        if (!qp->remote_rx_info || !entries)
                return 0;
        /* Acquire: pairs with the peer's release of rx_info, so its copy-out
         * of the slot is complete before we overwrite it. */
        entry = load_acquire(qp->remote_rx_info);
        if (entry >= entries) {
                /* The peer wrote an index outside the ring: count it, send nothing. */
                STAT_ADD(qp, tx_err_rri, 1);
                if (!qp->rri_logged) {
                        qp->rri_logged = 1;
                        log_warn("%s: qp %u: peer wrote rx_info %u, ring has %u entries",
                                 ntbt_dev_spec(qp->t->dev), qp->num, entry, entries);
                }
                return 0;
        }
        return entry >= idx ? entry - idx : entries + entry - idx;
}

int ntbt_qp_tx_free(struct ntbt_qp *qp)
{
        uint32_t n = 0;

        pthread_mutex_lock(&qp->tx_lock);
        if (qp->tx_up && !qp->tx_closing)
                n = tx_free_locked(qp);
        pthread_mutex_unlock(&qp->tx_lock);
        return (int)n;
}

int ntbt_qp_tx_entries(struct ntbt_qp *qp)
{
        int n;

        pthread_mutex_lock(&qp->tx_lock);
        n = qp->tx_up ? (int)qp->tx_g.entries : 0;
        pthread_mutex_unlock(&qp->tx_lock);
        return n;
}

/* Ring the peer after making every earlier window store visible. */
static void tx_ring_locked(struct ntbt_qp *qp, uint64_t flags_off)
{
        struct ntbt_dev *dev = qp->t->dev;

        /* Step 6, the ordering fix: barrier plus read-back of the DONE
         * word, so the doorbell cannot overtake the posted DONE write.
         * Skipped only under the explicitly unsafe debug flag. */
        if (!(qp->t->o.flags & NTBT_TRANSPORT_UNSAFE_NO_FLUSH))
                ntbt_dev_peer_mw_flush(dev, (int)qp->tx_g.mw, flags_off);
        /* Step 7. */
        ntbt_dev_peer_db_set(dev, 1ull << qp->num);
        qp->db_pending = 0;
}

/* Steps 3-6 for one reserved slot; returns the DONE word's offset. */
static uint64_t tx_write_frame(struct ntbt_qp *qp, uint32_t slot, const void *data, uint32_t len,
                               uint32_t flags)
{
        const struct qp_geom *g = &qp->tx_g;
        struct ntbt_dev *dev = qp->t->dev;
        int mw = (int)g->mw;
        uint64_t frame = g->offset + (uint64_t)slot * g->frame;
        uint64_t hdr = frame + g->payload;

        /* Step 3: len, then ver. */
        ntbt_dev_peer_mw_write32(dev, mw, hdr + NTB_HDR_LEN_OFF, len);
        ntbt_dev_peer_mw_write32(dev, mw, hdr + NTB_HDR_VER_OFF, qp->tx_pkts++);
        /* Step 4. */
        if (len)
                ntbt_dev_peer_mw_write(dev, mw, frame, data, len);
        /* Step 5: store barrier, then DONE (a release store on its own). */
        ntbt_dev_peer_mw_wmb(dev, mw);
        ntbt_dev_peer_mw_write32(dev, mw, hdr + NTB_HDR_FLAGS_OFF, flags);
        return hdr + NTB_HDR_FLAGS_OFF;
}

int ntbt_qp_tx_enqueue(struct ntbt_qp *qp, void *buf_ctx, const void *data, uint32_t len,
                       unsigned flags)
{
        uint64_t done_off;
        uint32_t slot;

        if (!len || !data)
                return -EINVAL;
        pthread_mutex_lock(&qp->tx_lock);
        if (!qp->tx_up || qp->tx_closing) {
                pthread_mutex_unlock(&qp->tx_lock);
                return -ENOLINK;
        }
        if (len > qp->tx_g.payload) {
                pthread_mutex_unlock(&qp->tx_lock);
                return -EMSGSIZE;
        }
        if (tx_free_locked(qp) == 0) {
                STAT_ADD(qp, tx_ring_full, 1);
                /* Frames sent with MORE must be rung now, or the peer never
                 * frees the slots we wait for. */
                if (qp->db_pending)
                        tx_ring_locked(qp, qp->tx_g.offset + qp->tx_g.payload + NTB_HDR_FLAGS_OFF);
                pthread_mutex_unlock(&qp->tx_lock);
                return -EAGAIN;
        }
        /* Step 2: reserve the slot before the copy. */
        slot = qp->tx_index;
        qp->tx_index = (qp->tx_index + 1) % qp->tx_g.entries;
        done_off = tx_write_frame(qp, slot, data, len, NTB_DESC_DONE_FLAG);
        if (flags & NTBT_TX_MORE)
                qp->db_pending = 1;
        else
                tx_ring_locked(qp, done_off);
        STAT_ADD(qp, tx_pkts, 1);
        STAT_ADD(qp, tx_bytes, len);
        STAT_ADD(qp, tx_memcpy, 1);
        pthread_mutex_unlock(&qp->tx_lock);
        /* Step 8, outside the lock so the handler may enqueue again. */
        if (qp->h.tx)
                qp->h.tx(qp, qp->ctx, buf_ctx, data, (int)len);
        return 0;
}

void tx_send_link_down_locked(struct ntbt_qp *qp)
{
        int64_t deadline = now_ns() + LINK_DOWN_WAIT_NS;
        uint32_t slot;

        /* Wait for a slot while the peer drains (the kernel gives up after
         * about 100 ms; a peer that then never hears of the close cannot
         * re-link, so we wait longer, and say so if it still fails). */
        while (tx_free_locked(qp) == 0) {
                if (now_ns() >= deadline || !ntbt_dev_link_is_up(qp->t->dev)) {
                        log_warn("%s: qp %u: no free slot for the LINK_DOWN frame: "
                                 "the peer is not told of the close",
                                 ntbt_dev_spec(qp->t->dev), qp->num);
                        return;
                }
                nanosleep(&(struct timespec){0, 100000}, NULL);
        }
        slot = qp->tx_index;
        qp->tx_index = (qp->tx_index + 1) % qp->tx_g.entries;
        /* A zero-length frame; it consumes a ver value (spec section 7). */
        tx_ring_locked(qp,
                       tx_write_frame(qp, slot, NULL, 0, NTB_DESC_DONE_FLAG | NTB_LINK_DOWN_FLAG));
}
