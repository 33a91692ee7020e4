/* SPDX-License-Identifier: MIT */
/*
 * Zero copy on top of the rings (rx.c, tx.c): frames read in place in our
 * inbound window and given back in order (ntbt_qp_rx_get/release), and a
 * send whose payload the application writes into a buffer we give it
 * (ntbt_qp_tx_reserve/commit).  What a stop in the walk means for the QP
 * (the peer's LINK_DOWN, a bad frame) is qp.c's, as for rx_process.
 *
 * Send: see the comment above zc_tx_reserve.
 *
 * Receive: the slots from rx_index (the oldest frame held) up to zc_next
 * are handed out; the peer may not write them again until rx_info passes
 * them, which a release does, in order.  Every value the peer wrote (flags,
 * ver, len) is read once, when the frame is got; the application reads the
 * payload itself, as untrusted bytes (<ntbt/transport.h>).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../util/barrier.h"
#include "transport.h"
#include "wire.h"

/* ---- receive (the owner: the polling thread) ---- */

static void zc_rx_info_write(struct ntbt_qp *qp)
{
        if (qp->zc_pending == UINT32_MAX)
                return;
        /* Through the window, a release store: the application's reads of
         * every frame up to this slot (it released them: they happen before
         * this call on this thread) and our flag clears happen before the
         * sender may reuse the slots.  The barrier pushes it out of a
         * write-combining window now. */
        ntbt_dev_peer_mw_write32(qp->t->dev, (int)qp->tx_g.mw, qp->tx_g.rx_info_off,
                                 qp->zc_pending);
        ntbt_dev_peer_mw_wmb(qp->t->dev, (int)qp->tx_g.mw);
        qp->zc_pending = UINT32_MAX;
}

void zc_rx_flush(struct ntbt_qp *qp)
{
        /* Only into the session the releases belong to (see rx_info_flush). */
        if (qp->state == QP_UP && load_acquire(&qp->t->epoch) == qp->seen_epoch)
                zc_rx_info_write(qp);
}

void zc_rx_reset(struct ntbt_qp *qp, int flush)
{
        if (flush)
                zc_rx_flush(qp);
        qp->zc_pending = UINT32_MAX;
        qp->zc_next = 0;
        qp->zc_next_pkts = 0;
        qp->zc_held = 0;
        qp->zc_released = 0;
        qp->zc_gen++; /* frames held from before: their release says -ENOLINK */
        if (qp->zc_skip)
                memset(qp->zc_skip, 0, qp->zc_skip_n);
}

/* Consume the slot at rx_index: clear its flags, move on, rx_info owed. */
static void zc_consume(struct ntbt_qp *qp)
{
        uint8_t *hdr = qp->rx_win + geom_hdr_off(&qp->rx_g, qp->rx_index);

        /* Relaxed: our own ring's word, which the sender does not write
         * again before our rx_info (a release store) hands the slot back. */
        store_relaxed_u32(hdr + NTB_HDR_FLAGS_OFF, 0u);
        qp->zc_pending = qp->rx_index;
        /* Wraps by a compare, not a division: this runs for every frame. */
        if (++qp->rx_index == qp->rx_g.entries)
                qp->rx_index = 0;
        qp->rx_pkts++;
        STAT_SET(qp, rx_index, qp->rx_index);
        /* Every quarter ring, so a sender waiting for slots refills. */
        if (++qp->zc_released >= qp->rx_info_every) {
                qp->zc_released = 0;
                zc_rx_info_write(qp);
        }
}

/* The slots at rx_index consumed already (refused lengths), up to zc_next. */
static void zc_consume_skipped(struct ntbt_qp *qp)
{
        while (qp->rx_index != qp->zc_next && qp->zc_skip[qp->rx_index]) {
                qp->zc_skip[qp->rx_index] = 0;
                zc_consume(qp);
        }
}

#define ZC_ALIGN 64 /* a cache line: staging buffers start as slots do */

/* *buf holds at least n bytes from a cache-line boundary (zeroed when new;
 * what it held is not kept), *cap its size: the refused-slot map and the
 * staging buffer. */
static int zc_grow(void **buf, size_t *cap, size_t n)
{
        size_t size = (n + ZC_ALIGN - 1) & ~(size_t)(ZC_ALIGN - 1); /* aligned_alloc's rule */
        void *p;

        if (*cap >= n)
                return 0;
        p = aligned_alloc(ZC_ALIGN, size);
        if (!p)
                return -ENOMEM;
        memset(p, 0, size);
        free(*buf);
        *buf = p;
        *cap = size;
        return 0;
}

/* The map of refused slots (zc_consume_skipped) covers a ring of entries. */
static int zc_skip_map(struct ntbt_qp *qp, uint32_t entries)
{
        void *m = qp->zc_skip;
        int ret = zc_grow(&m, &qp->zc_skip_n, entries);

        qp->zc_skip = m;
        return ret;
}

int zc_rx_next(struct ntbt_qp *qp, struct ntbt_rx_frame *f, struct rx_stop *stop)
{
        const struct qp_geom *g = &qp->rx_g;
        uint32_t out, flags, ver, len, slot = qp->zc_next;
        uint8_t *hdr;

        stop->why = RX_STOP_NONE;
        if (zc_skip_map(qp, g->entries))
                return -ENOMEM;
        /* Every slot but one handed out: the peer cannot have written more
         * (a hostile one might have: we do not look at held slots again). */
        out = qp->zc_next >= qp->rx_index ? qp->zc_next - qp->rx_index
                                          : qp->zc_next + g->entries - qp->rx_index;
        if (out == g->entries - 1)
                return -EAGAIN;
        hdr = qp->rx_win + geom_hdr_off(g, slot);
        /* Acquire: pairs with the sender's release of DONE, so the header
         * fields and payload it wrote before are visible. */
        flags = load_acquire_u32(hdr + NTB_HDR_FLAGS_OFF);
        if (!(flags & NTB_DESC_DONE_FLAG)) {
                STAT_ADD(qp, rx_ring_empty, 1);
                return -EAGAIN;
        }
        if (flags & ~NTB_FLAGS_VALID) {
                STAT_ADD(qp, rx_err_flags, 1);
                *stop = (struct rx_stop){RX_STOP_BAD_FLAGS, slot, flags, 0};
                return 1;
        }
        if (flags & NTB_LINK_DOWN_FLAG) {
                /* The QP goes down (qp.c), which resets the ring. */
                stop->why = RX_STOP_LINK_DOWN;
                return 1;
        }
        /* Relaxed: ordered after the acquire of flags above. */
        ver = load_relaxed_u32(hdr + NTB_HDR_VER_OFF);
        len = load_relaxed_u32(hdr + NTB_HDR_LEN_OFF);
        if (ver != qp->zc_next_pkts) {
                STAT_ADD(qp, rx_err_ver, 1);
                *stop = (struct rx_stop){RX_STOP_BAD_VER, slot, ver, qp->zc_next_pkts};
                return 1;
        }
        qp->zc_next = slot + 1 == g->entries ? 0 : slot + 1;
        qp->zc_next_pkts++;
        STAT_ADD(qp, rx_pkts, 1);
        if (len > g->payload) {
                /* Refused; the slot is consumed once those before it are. */
                STAT_ADD(qp, rx_err_oflow, 1);
                qp->zc_skip[slot] = 1;
                zc_consume_skipped(qp);
                return -EMSGSIZE;
        }
        STAT_ADD(qp, rx_bytes, len);
        qp->zc_held++;
        /* The payload ends where the header starts. */
        f->data = hdr - g->payload;
        f->len = len;
        f->priv[0] = slot;
        f->priv[1] = ver;
        f->priv[2] = qp->zc_gen;
        return 0;
}

int zc_rx_release(struct ntbt_qp *qp, const struct ntbt_rx_frame *f)
{
        if (f->priv[2] != qp->zc_gen)
                return -ENOLINK;
        /* The oldest held frame sits at rx_index (skipped slots before it
         * were consumed as soon as they were at the front). */
        if (!qp->zc_held || f->priv[0] != qp->rx_index || f->priv[1] != qp->rx_pkts)
                return -EINVAL;
        qp->zc_held--;
        zc_consume(qp);
        zc_consume_skipped(qp);
        return 0;
}

/* ---- send (any thread; one reservation open per QP) ---- */

/*
 * A reservation takes the next slots of the ring and their ver values
 * (tx.c, step 2), so a full ring says -EAGAIN here and a commit cannot.
 * Where the device maps the peer's window (shm, kdev: ntbt_dev_peer_mw_map)
 * the application's buffers are the slots' payload areas themselves: a
 * payload starts at its frame's first byte (spec section 3), so any len <=
 * len_max written from the start is where the receiver reads it, and the
 * commit writes only the headers, DONE and the doorbell.  Elsewhere (pcie,
 * whose model the pointer would go around; a slot outside the mapping) they
 * are pieces of a staging buffer the commit copies from, each len_max bytes
 * rounded up to a cache line (ZC_ALIGN: every one as aligned as a slot,
 * whatever len_max); their total is at most the ring's plus k lines (each
 * len_max <= the frame's payload).
 */
static size_t zc_stage_stride(uint32_t len_max)
{
        return ((size_t)len_max + ZC_ALIGN - 1) & ~(size_t)(ZC_ALIGN - 1);
}

static int zc_stage(struct ntbt_qp *qp, uint32_t len_max, void **bufs, uint32_t k)
{
        size_t stride = zc_stage_stride(len_max);
        int ret = zc_grow(&qp->zc_stage, &qp->zc_stage_cap, (size_t)k * stride);
        uint32_t i;

        for (i = 0; !ret && i < k; i++)
                bufs[i] = (uint8_t *)qp->zc_stage + (size_t)i * stride;
        return ret;
}

int zc_tx_reserve(struct ntbt_qp *qp, uint32_t len_max, void **bufs, uint32_t n, int up,
                  uint32_t max_payload)
{
        int none = 0, ret = 0, err;

        if (!len_max || !bufs || !n)
                return -EINVAL;
        /* seq_cst: claims the reservation; pairs with the release in
         * commit and abort, so the previous holder's use of the staging
         * buffer and zc_in_place happens before ours. */
        if (!cas_sc(&qp->zc_tx_open, &none, 1))
                return -EBUSY;
        /* Relaxed: an early answer only (set_tx_mode says why); tx.c asks
         * again under tx_lock. */
        if (load_relaxed(&qp->tx_mode) == NTBT_TX_THREAD)
                ret = -EOPNOTSUPP;
        else if (!up)
                ret = -ENOLINK;
        else if (len_max > max_payload)
                ret = -EMSGSIZE;
        if (!ret)
                ret = tx_zc_reserve(qp, len_max, bufs, n);
        qp->zc_in_place = ret > 0 && bufs[0];
        if (ret > 0 && !qp->zc_in_place) {
                err = zc_stage(qp, len_max, bufs, (uint32_t)ret);
                if (err) {
                        tx_zc_abort(qp);
                        ret = err;
                }
        }
        if (ret <= 0) {
                store_release(&qp->zc_tx_open, 0); /* as in commit */
                return ret;
        }
        qp->zc_len_max = len_max;
        qp->zc_n = (uint32_t)ret;
        return ret;
}

int zc_tx_commit(struct ntbt_qp *qp, const uint32_t *lens, uint32_t k, unsigned flags, int *tick)
{
        struct tx_zc_send s = {.stride = zc_stage_stride(qp->zc_len_max), .lens = lens, .k = k};
        uint32_t i;
        int ret;

        *tick = 0;
        /* Relaxed: only the holder calls commit (one reservation at a
         * time is the caller's rule); a stray call reads its own 0. */
        if (!load_relaxed(&qp->zc_tx_open) || !lens || !k || k > qp->zc_n)
                return -EINVAL;
        for (i = 0; i < k; i++) {
                if (!lens[i])
                        return -EINVAL;
                if (lens[i] > qp->zc_len_max)
                        return -EMSGSIZE;
        }
        /* Headers, DONE and doorbell into the held slots; the payloads from
         * the staging buffer, or none: they are in the slots already. */
        if (!qp->zc_in_place)
                s.stage = qp->zc_stage;
        ret = tx_zc_commit(qp, &s, flags & NTBT_TX_MORE, tick);
        /* Sent, or void (-ENOLINK): the slots are let go either way.
         * Release: our reads of the staging buffer (the copy) happen before
         * the next holder, which claims it with a seq_cst CAS, writes it. */
        store_release(&qp->zc_tx_open, 0);
        return ret;
}

int zc_tx_abort(struct ntbt_qp *qp)
{
        /* Relaxed: see zc_tx_commit. */
        if (!load_relaxed(&qp->zc_tx_open))
                return -EINVAL;
        tx_zc_abort(qp);                   /* the slots back to the ring: no hole, nothing sent */
        store_release(&qp->zc_tx_open, 0); /* as in commit */
        return 0;
}

void zc_destroy(struct ntbt_qp *qp)
{
        free(qp->zc_skip);
        free(qp->zc_stage);
}
