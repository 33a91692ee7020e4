/* SPDX-License-Identifier: MIT */
/*
 * Sending frames (spec section 5).  Step 2 (reserve the slot, and its ver
 * value) happens under tx_lock on the caller's thread; steps 3-8 either
 * follow at once on that thread (inline) or run on the QP's copy thread
 * (copy_thread.c).  One frame writer serves both, under copy_lock.
 */
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "../util/barrier.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "copy_thread.h"
#include "transport.h"
#include "wire.h"

#define LINK_DOWN_WAIT_NS (1000 * NS_PER_MS)
#define COPY_QUEUE_CAP    1024

/*
 * copy_lock for a link reset or close, ahead of the copy thread: the thread
 * drops and retakes the lock between jobs, and a plain mutex lets it win
 * every time, so without this a close would wait for the whole job queue
 * to be copied (over a slow link, seconds) instead of voiding it.
 */
static void copy_lock_urgent(struct ntbt_qp *qp)
{
        fetch_add_sc(&qp->copy_urgent, 1);
        pthread_mutex_lock(&qp->copy_lock);
        fetch_sub_sc(&qp->copy_urgent, 1);
}

void tx_reset_locked(struct ntbt_qp *qp)
{
        copy_lock_urgent(qp);
        qp->tx_gen++; /* jobs queued before this point are void */
        qp->written_index = 0;
        qp->written_pkts = 0;
        pthread_mutex_unlock(&qp->copy_lock);
        qp->tx_up = 0;
        qp->tx_index = 0;
        qp->tx_pkts = 0;
        qp->tx_known_free = 0;
        qp->db_pending = 0;
        qp->rri_logged = 0;
}

/*
 * A QP keeps its slot reservation (tx_index, tx_pkts) until its owner sees
 * the transport epoch change and resets it, and a poll-mode QP that nobody
 * polls never does.  So every frame writer checks, under the lock it writes
 * under, that the session its reservation belongs to is still the
 * transport's: otherwise a frame with an old slot and ver would land in the
 * ring of the peer's next session (spec section 7; docs/transport.md).
 */
int tx_session_current(struct ntbt_qp *qp, uint32_t epoch)
{
        /* Acquire pairs with the event thread's release of a new epoch.  The
         * check is made under tx_lock or copy_lock, which tx_session_fence
         * takes after that store: a writer that still reads the old value
         * finishes its frame before the fence returns. */
        return load_acquire(&qp->t->epoch) == epoch;
}

void tx_session_fence(struct ntbt_qp *qp)
{
        /* Called by the event thread right after it made the epoch even.
         * Taking both locks waits out every enqueue (tx_lock, then
         * copy_lock) and copy-thread write (copy_lock) that passed the
         * session check before the change; the unlock/lock pairs order the
         * epoch store before every later check.  So all frames of the old
         * session are written before the transport advertises itself again,
         * which the peer needs before it zeroes and requests a new ring. */
        pthread_mutex_lock(&qp->tx_lock);
        copy_lock_urgent(qp);
        pthread_mutex_unlock(&qp->copy_lock);
        pthread_mutex_unlock(&qp->tx_lock);
}

/* Under tx_lock: frames may be sent now. */
static int tx_live_locked(struct ntbt_qp *qp)
{
        /* up_epoch: written under tx_lock, which we hold; relaxed is enough. */
        return qp->tx_up && !qp->tx_closing && tx_session_current(qp, load_relaxed(&qp->up_epoch));
}

uint32_t tx_free_locked(struct ntbt_qp *qp)
{
        uint32_t entries = qp->tx_g.entries, idx = qp->tx_index, entry;

        qp->tx_known_free = 0;
        if (!qp->remote_rx_info || !entries)
                return 0;
        /* Acquire: pairs with the peer's release of rx_info, so its copy-out
         * of the slot is complete before we overwrite it. */
        entry = load_acquire_u32(qp->remote_rx_info);
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
        qp->tx_known_free = entry >= idx ? entry - idx : entries + entry - idx;
        return qp->tx_known_free;
}

/*
 * Free slots for a burst of `want`, reading rx_info only when the count
 * known from the last read is short of it: rx_info is a line the receiver
 * writes, so each read is a cross-core miss on the send path.  The count
 * only grows between reads (the peer frees, we alone take), so a stale one
 * is safe.
 */
static uint32_t tx_free_for(struct ntbt_qp *qp, uint32_t want)
{
        return qp->tx_known_free >= want ? qp->tx_known_free : tx_free_locked(qp);
}

/* Step 2's bookkeeping for one reserved slot. */
static void tx_take_slot(struct ntbt_qp *qp)
{
        qp->tx_index = (qp->tx_index + 1) % qp->tx_g.entries;
        qp->tx_pkts++;
        qp->tx_known_free--;
}

int ntbt_qp_tx_free(struct ntbt_qp *qp)
{
        uint32_t n = 0;

        if (load_sc(&qp->dying))
                return 0;
        pthread_mutex_lock(&qp->tx_lock);
        if (tx_live_locked(qp))
                n = tx_free_locked(qp);
        pthread_mutex_unlock(&qp->tx_lock);
        return (int)n;
}

int ntbt_qp_tx_entries(struct ntbt_qp *qp)
{
        int n = 0;

        pthread_mutex_lock(&qp->tx_lock);
        /* up_epoch: written under tx_lock, which we hold. */
        if (qp->tx_up && tx_session_current(qp, load_relaxed(&qp->up_epoch)))
                n = (int)qp->tx_g.entries;
        pthread_mutex_unlock(&qp->tx_lock);
        return n;
}

/* Steps 6-7: ring the peer after every earlier window store is visible. */
void tx_ring_copy_locked(struct ntbt_qp *qp, uint64_t done_off)
{
        struct ntbt_dev *dev = qp->t->dev;

        /* Step 6, the ordering fix: barrier plus read-back of the DONE
         * word, so the doorbell cannot overtake the posted DONE write.
         * Skipped only under the explicitly unsafe debug flag. */
        if (!(qp->t->o.flags & NTBT_TRANSPORT_UNSAFE_NO_FLUSH))
                ntbt_dev_peer_mw_flush(dev, (int)qp->tx_g.mw, done_off);
        ntbt_dev_peer_db_set(dev, 1ull << qp->num);
}

/* Ring for frames sent with NTBT_TX_MORE whose doorbell is still owed. */
void tx_ring_pending(struct ntbt_qp *qp)
{
        pthread_mutex_lock(&qp->tx_lock);
        if (qp->db_pending && tx_live_locked(qp)) {
                pthread_mutex_lock(&qp->copy_lock);
                tx_ring_copy_locked(
                    qp, qp->tx_g.offset +
                            (uint64_t)((qp->tx_index + qp->tx_g.entries - 1) % qp->tx_g.entries) *
                                qp->tx_g.frame +
                            qp->tx_g.payload + NTB_HDR_FLAGS_OFF);
                pthread_mutex_unlock(&qp->copy_lock);
        }
        qp->db_pending = 0;
        pthread_mutex_unlock(&qp->tx_lock);
}

/* Steps 3-5 for one reserved slot; returns the DONE word's offset. */
static uint64_t write_frame_locked(struct ntbt_qp *qp, uint32_t slot, uint32_t ver,
                                   const void *data, uint32_t len, uint32_t flags)
{
        const struct qp_geom *g = &qp->tx_g;
        struct ntbt_dev *dev = qp->t->dev;
        int mw = (int)g->mw;
        uint64_t frame = g->offset + (uint64_t)slot * g->frame;
        uint64_t hdr = frame + g->payload;

        /* Step 3: len, then ver. */
        ntbt_dev_peer_mw_write32(dev, mw, hdr + NTB_HDR_LEN_OFF, len);
        ntbt_dev_peer_mw_write32(dev, mw, hdr + NTB_HDR_VER_OFF, ver);
        /* Step 4. */
        if (len)
                ntbt_dev_peer_mw_write(dev, mw, frame, data, len);
        /* Step 5: store barrier, then DONE (a release store on its own). */
        ntbt_dev_peer_mw_wmb(dev, mw);
        ntbt_dev_peer_mw_write32(dev, mw, hdr + NTB_HDR_FLAGS_OFF, flags);
        qp->written_index = (slot + 1) % g->entries;
        qp->written_pkts = ver + 1;
        if (len) {
                STAT_ADD(qp, tx_pkts, 1);
                STAT_ADD(qp, tx_bytes, len);
                STAT_ADD(qp, tx_memcpy, 1);
        }
        return hdr + NTB_HDR_FLAGS_OFF;
}

uint64_t tx_write_frame_copy_locked(struct ntbt_qp *qp, const struct tx_job *j)
{
        return write_frame_locked(qp, j->slot, j->ver, j->data, j->len, NTB_DESC_DONE_FLAG);
}

/*
 * A burst: one tx_lock and one copy_lock for every frame of it, and one
 * doorbell after the last.  Locked instructions drain the store buffer; one
 * pair per frame made the sender wait for each frame's cache lines to cross
 * to the receiver's core before it could write the next (see bench/README).
 */
int ntbt_qp_tx_enqueue_burst(struct ntbt_qp *qp, const struct ntbt_tx_buf *v, unsigned n,
                             unsigned flags)
{
        struct qp_call call;
        uint32_t free, k, i;
        uint64_t done_off = 0;
        int tick = 0;

        if (!v || !n)
                return -EINVAL;
        for (i = 0; i < n; i++)
                if (!v[i].len || !v[i].data)
                        return -EINVAL;
        if (load_sc(&qp->dying))
                return -ESHUTDOWN;
retry:
        pthread_mutex_lock(&qp->tx_lock);
        if (!tx_live_locked(qp)) {
                pthread_mutex_unlock(&qp->tx_lock);
                return -ENOLINK;
        }
        if (v[0].len > qp->tx_g.payload) {
                pthread_mutex_unlock(&qp->tx_lock);
                return -EMSGSIZE;
        }
        if (qp->tx_mode == NTBT_TX_INLINE && qp->ct && !ct_idle(qp->ct)) {
                /* Just switched from thread mode: let the thread finish what
                 * it holds, so frames and completions stay in order.  Not
                 * under tx_lock: its completions may enqueue. */
                pthread_mutex_unlock(&qp->tx_lock);
                while (!ct_idle(qp->ct))
                        sched_yield();
                goto retry;
        }
        free = tx_free_for(qp, n);
        if (free == 0) {
                STAT_ADD(qp, tx_ring_full, 1);
                /* Frames sent with MORE must be rung now, or the peer never
                 * frees the slots we wait for. */
                if (qp->db_pending) {
                        pthread_mutex_lock(&qp->copy_lock);
                        tx_ring_copy_locked(qp,
                                            qp->tx_g.offset + qp->tx_g.payload + NTB_HDR_FLAGS_OFF);
                        pthread_mutex_unlock(&qp->copy_lock);
                        qp->db_pending = 0; /* under tx_lock, like every access */
                }
                pthread_mutex_unlock(&qp->tx_lock);
                return -EAGAIN;
        }
        /* As many as fit, up to the first one too long (that one is the
         * caller's next call, which reports -EMSGSIZE). */
        for (k = 0; k < n && k < free && v[k].len <= qp->tx_g.payload; k++)
                ;
        qp->tx_ticks += k;
        tick = (qp->tx_ticks & ~63u) != ((qp->tx_ticks - k) & ~63u);
        if (qp->tx_mode == NTBT_TX_THREAD && qp->ct) {
                for (i = 0; i < k; i++) {
                        /* Step 2: reserve the slot and its ver value before any copy. */
                        struct tx_job j = {.slot = qp->tx_index,
                                           .ver = qp->tx_pkts,
                                           .len = v[i].len,
                                           .flags = flags,
                                           .gen = qp->tx_gen, /* written under both locks */
                                           /* written under tx_lock, held */
                                           .epoch = load_relaxed(&qp->up_epoch),
                                           .buf_ctx = v[i].buf_ctx,
                                           .data = v[i].data};

                        if (ct_push(qp->ct, &j))
                                break; /* the job queue is full: as a full ring */
                        tx_take_slot(qp);
                }
                if (i == 0)
                        STAT_ADD(qp, tx_ring_full, 1);
                pthread_mutex_unlock(&qp->tx_lock);
                if (tick)
                        stats_tx_tick(qp);
                return i ? (int)i : -EAGAIN;
        }
        pthread_mutex_lock(&qp->copy_lock);
        for (i = 0; i < k; i++) {
                /* Step 2, then steps 3-5. */
                uint32_t slot = qp->tx_index, ver = qp->tx_pkts;

                tx_take_slot(qp);
                done_off =
                    write_frame_locked(qp, slot, ver, v[i].data, v[i].len, NTB_DESC_DONE_FLAG);
        }
        if (flags & NTBT_TX_MORE) {
                qp->db_pending = 1;
        } else {
                tx_ring_copy_locked(qp, done_off);
                qp->db_pending = 0;
        }
        pthread_mutex_unlock(&qp->copy_lock);
        pthread_mutex_unlock(&qp->tx_lock);
        /* Step 8, outside the locks so the handler may enqueue again.  A
         * handler may free the QP: the free waits for the end of this call
         * (qp_call_leave), and every buffer still gets its completion. */
        qp_call_enter(&call, qp);
        if (qp->h.tx)
                for (i = 0; i < k; i++)
                        qp->h.tx(qp, qp->ctx, v[i].buf_ctx, v[i].data, (int)v[i].len);
        if (tick)
                stats_tx_tick(qp);
        return qp_call_leave(&call, (int)k, 0);
}

int ntbt_qp_tx_enqueue(struct ntbt_qp *qp, void *buf_ctx, const void *data, uint32_t len,
                       unsigned flags)
{
        struct ntbt_tx_buf b = {.buf_ctx = buf_ctx, .data = data, .len = len};
        int ret = ntbt_qp_tx_enqueue_burst(qp, &b, 1, flags);

        return ret < 0 ? ret : 0;
}

void tx_rollback_locked(struct ntbt_qp *qp)
{
        /* Slots reserved for jobs the copy thread has not written are given
         * back, so a LINK_DOWN frame follows the last written frame with no
         * hole before it; bumping tx_gen voids those jobs (they complete
         * with -ENOLINK). */
        copy_lock_urgent(qp);
        qp->tx_index = qp->written_index;
        qp->tx_pkts = qp->written_pkts;
        qp->tx_known_free = 0; /* slots came back: read rx_info again */
        qp->tx_gen++;
        pthread_mutex_unlock(&qp->copy_lock);
}

void tx_send_link_down_locked(struct ntbt_qp *qp)
{
        int64_t deadline = now_ns() + LINK_DOWN_WAIT_NS;
        uint32_t slot, ver;

        /* The peer of an ended session is not told: the frame would land in
         * its next ring.  Checked in the wait too, so transport_down's fence,
         * which waits for tx_lock, waits 100 us at most.  (up_epoch: written
         * under tx_lock, which we hold.) */
        if (!tx_session_current(qp, load_relaxed(&qp->up_epoch)))
                return;
        /* Wait for a slot while the peer drains (the kernel gives up after
         * about 100 ms; a peer that then never hears of the close cannot
         * re-link, so we wait longer, and say so if it still fails). */
        while (tx_free_locked(qp) == 0) {
                if (!tx_session_current(qp, load_relaxed(&qp->up_epoch)))
                        return;
                if (now_ns() >= deadline || !ntbt_dev_link_is_up(qp->t->dev)) {
                        log_warn("%s: qp %u: no free slot for the LINK_DOWN frame: "
                                 "the peer is not told of the close",
                                 ntbt_dev_spec(qp->t->dev), qp->num);
                        return;
                }
                nanosleep(&(struct timespec){0, 100000}, NULL);
        }
        slot = qp->tx_index;
        ver = qp->tx_pkts;
        tx_take_slot(qp);
        /* A zero-length frame; it consumes a ver value (spec section 7). */
        copy_lock_urgent(qp);
        tx_ring_copy_locked(qp, write_frame_locked(qp, slot, ver, NULL, 0,
                                                   NTB_DESC_DONE_FLAG | NTB_LINK_DOWN_FLAG));
        pthread_mutex_unlock(&qp->copy_lock);
        qp->db_pending = 0;
        /* seq_cst: read by ntbt_transport_close on another thread; nothing
         * else is published through it. */
        fetch_or_sc(&qp->t->lingering, 1u << qp->num);
}

int ntbt_qp_set_tx_mode(struct ntbt_qp *qp, int mode)
{
        int ret;

        if (mode == NTBT_TX_DEFAULT)
                mode = qp->t->o.tx_mode;
        if (mode != NTBT_TX_INLINE && mode != NTBT_TX_THREAD)
                return -EINVAL;
        if (load_sc(&qp->dying))
                return -ESHUTDOWN;
        pthread_mutex_lock(&qp->tx_lock);
        if (mode == NTBT_TX_THREAD && !qp->ct) {
                /* qp->ct is set under tx_lock: enqueuers read it there. */
                ret = copy_thread_start(qp, COPY_QUEUE_CAP);
                if (ret) {
                        pthread_mutex_unlock(&qp->tx_lock);
                        log_warn("%s: qp %u: cannot start the copy thread (error %d); "
                                 "copying inline",
                                 ntbt_dev_spec(qp->t->dev), qp->num, ret);
                        return ret;
                }
        }
        qp->tx_mode = mode;
        pthread_mutex_unlock(&qp->tx_lock);
        return 0;
}

int ntbt_qp_tx_mode(struct ntbt_qp *qp)
{
        int m;

        pthread_mutex_lock(&qp->tx_lock);
        m = qp->tx_mode;
        pthread_mutex_unlock(&qp->tx_lock);
        return m;
}
