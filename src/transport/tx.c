/* SPDX-License-Identifier: MIT */
/*
 * The transmit ring (spec section 5): reserve a slot and its ver value
 * (step 2, under tx_lock), write the frame (steps 3-5), ring the doorbell
 * (steps 6-7).  One frame writer, under frame_lock, serves both ways of
 * sending: inline on the caller's thread, or as a job the queue pair hands
 * to its copy thread.  Completions (step 8) are the queue pair's (qp.c):
 * this file calls no handler and knows nothing of a QP's lifetime.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "../util/barrier.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "copy_thread.h"
#include "transport.h"
#include "wire.h"

#define LINK_DOWN_WAIT_NS (1000 * NS_PER_MS)
/* On the copy thread, ring the doorbell at least this often while jobs keep coming. */
#define DOORBELL_EVERY 16
/* The copy thread writes a batch of jobs under one frame_lock, and completes
 * them after it; it lets the lock go, and completes what it wrote, once it
 * has written this many bytes, so a big frame's buffer comes back without
 * waiting for the next ones' copies. */
#define TX_JOBS_BYTES (64 * 1024)

_Static_assert(sizeof(struct tx_job) <= COPY_JOB_MAX, "a tx_job fits the copy thread's queue");

/*
 * frame_lock for a link reset or close, ahead of the copy thread: the thread
 * drops and retakes the lock between jobs, and a plain mutex lets it win
 * every time, so without this a close would wait for the whole job queue
 * to be copied (over a slow link, seconds) instead of voiding it.
 */
static void frame_lock_urgent(struct ntbt_qp *qp)
{
        /* seq_cst: pairs with the copy thread's load before it takes the lock. */
        fetch_add_sc(&qp->frame_urgent, 1);
        pthread_mutex_lock(&qp->frame_lock);
        fetch_sub_sc(&qp->frame_urgent, 1);
}

void tx_reset_locked(struct ntbt_qp *qp)
{
        frame_lock_urgent(qp);
        qp->tx_gen++; /* jobs queued before this point are void */
        qp->written_index = 0;
        qp->written_pkts = 0;
        pthread_mutex_unlock(&qp->frame_lock);
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
static int tx_session_current(struct ntbt_qp *qp, uint32_t epoch)
{
        /* Acquire pairs with the event thread's release of a new epoch.  The
         * check is made under tx_lock or frame_lock, which tx_session_fence
         * takes after that store: a writer that still reads the old value
         * finishes its frame before the fence returns. */
        return load_acquire(&qp->t->epoch) == epoch;
}

void tx_session_fence(struct ntbt_qp *qp)
{
        /* Called by the event thread right after it made the epoch even.
         * Taking both locks waits out every enqueue (tx_lock, then
         * frame_lock) and copy-thread write (frame_lock) that passed the
         * session check before the change; the unlock/lock pairs order the
         * epoch store before every later check.  So all frames of the old
         * session are written before the transport advertises itself again,
         * which the peer needs before it zeroes and requests a new ring. */
        pthread_mutex_lock(&qp->tx_lock);
        frame_lock_urgent(qp);
        pthread_mutex_unlock(&qp->frame_lock);
        pthread_mutex_unlock(&qp->tx_lock);
}

/* Under tx_lock: the session the ring came up in (up_epoch).  Written under
 * tx_lock, which we hold, so relaxed reads the last value; it is an atomic
 * only for ntbt_qp_link_is_up, which reads it without the lock. */
static uint32_t tx_up_epoch_locked(struct ntbt_qp *qp)
{
        return load_relaxed(&qp->up_epoch);
}

/* Under tx_lock: frames may be sent now. */
static int tx_live_locked(struct ntbt_qp *qp)
{
        return qp->tx_up && !qp->tx_closing && tx_session_current(qp, tx_up_epoch_locked(qp));
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

uint32_t tx_free(struct ntbt_qp *qp)
{
        uint32_t n = 0;

        pthread_mutex_lock(&qp->tx_lock);
        if (tx_live_locked(qp))
                n = tx_free_locked(qp);
        pthread_mutex_unlock(&qp->tx_lock);
        return n;
}

int ntbt_qp_tx_entries(struct ntbt_qp *qp)
{
        int n = 0;

        pthread_mutex_lock(&qp->tx_lock);
        if (qp->tx_up && tx_session_current(qp, tx_up_epoch_locked(qp)))
                n = (int)qp->tx_g.entries;
        pthread_mutex_unlock(&qp->tx_lock);
        return n;
}

/* Steps 6-7, under frame_lock: ring the peer after every earlier window
 * store is visible.  done_off: the DONE word of the last frame written. */
static void tx_doorbell_locked(struct ntbt_qp *qp, uint64_t done_off)
{
        struct ntbt_dev *dev = qp->t->dev;

        /* Step 6, the ordering fix: barrier plus read-back of the DONE
         * word, so the doorbell cannot overtake the posted DONE write.
         * Skipped only under the explicitly unsafe debug flag. */
        if (!(qp->t->o.flags & NTBT_TRANSPORT_UNSAFE_NO_FLUSH))
                ntbt_dev_peer_mw_flush(dev, (int)qp->tx_g.mw, done_off);
        ntbt_dev_peer_db_set(dev, 1ull << qp->num);
}

/* Under frame_lock: the DONE word of the last frame written (db_pending:
 * its doorbell is owed).  Not the last slot taken: slots a zero-copy
 * reservation holds lie past it, unwritten. */
static uint64_t tx_last_done_off(struct ntbt_qp *qp)
{
        uint32_t last = (qp->written_index + qp->tx_g.entries - 1) % qp->tx_g.entries;

        return geom_hdr_off(&qp->tx_g, last) + NTB_HDR_FLAGS_OFF;
}

/* Under tx_lock: ring for frames sent with NTBT_TX_MORE, if any. */
static void tx_doorbell_pending_locked(struct ntbt_qp *qp)
{
        if (qp->db_pending && tx_live_locked(qp)) {
                pthread_mutex_lock(&qp->frame_lock);
                tx_doorbell_locked(qp, tx_last_done_off(qp));
                pthread_mutex_unlock(&qp->frame_lock);
        }
        qp->db_pending = 0;
}

/* Under tx_lock, the ring live and full: count it, and ring for frames
 * sent with NTBT_TX_MORE now, or the peer never frees the slots we wait
 * for (tx_send, tx_zc_reserve). */
static void tx_ring_full_locked(struct ntbt_qp *qp)
{
        STAT_ADD(qp, tx_ring_full, 1);
        tx_doorbell_pending_locked(qp);
}

/* Under tx_lock and frame_lock, after writing frames up to done_off: steps
 * 6-7 now, or with NTBT_TX_MORE owed to the next send (db_pending). */
static void tx_doorbell_or_defer_locked(struct ntbt_qp *qp, uint64_t done_off, unsigned flags)
{
        if (flags & NTBT_TX_MORE) {
                qp->db_pending = 1;
        } else {
                tx_doorbell_locked(qp, done_off);
                qp->db_pending = 0;
        }
}

void tx_doorbell_pending(struct ntbt_qp *qp)
{
        pthread_mutex_lock(&qp->tx_lock);
        tx_doorbell_pending_locked(qp);
        pthread_mutex_unlock(&qp->tx_lock);
}

/* Steps 3-5 for one reserved slot, under frame_lock; returns the DONE word's offset. */
static uint64_t write_frame_locked(struct ntbt_qp *qp, uint32_t slot, uint32_t ver,
                                   const void *data, uint32_t len, uint32_t flags)
{
        const struct qp_geom *g = &qp->tx_g;
        struct ntbt_dev *dev = qp->t->dev;
        int mw = (int)g->mw;
        uint64_t hdr = geom_hdr_off(g, slot);

        /* Step 3: len, then ver. */
        ntbt_dev_peer_mw_write32(dev, mw, hdr + NTB_HDR_LEN_OFF, len);
        ntbt_dev_peer_mw_write32(dev, mw, hdr + NTB_HDR_VER_OFF, ver);
        /* Step 4: the payload, which starts at the frame's first byte (its
         * area ends where the header starts); none to copy when the
         * application wrote it in place (data NULL, tx_zc_commit). */
        if (len && data)
                ntbt_dev_peer_mw_write(dev, mw, hdr - g->payload, data, len);
        /* Step 5: store barrier, then DONE (a release store on its own). */
        ntbt_dev_peer_mw_wmb(dev, mw);
        ntbt_dev_peer_mw_write32(dev, mw, hdr + NTB_HDR_FLAGS_OFF, flags);
        qp->written_index = (slot + 1) % g->entries;
        qp->written_pkts = ver + 1;
        if (len) {
                STAT_ADD(qp, tx_pkts, 1);
                STAT_ADD(qp, tx_bytes, len);
                if (data)
                        STAT_ADD(qp, tx_memcpy, 1);
        }
        return hdr + NTB_HDR_FLAGS_OFF;
}

/* frame_lock for the copy thread: after any reset or close that waits for
 * it (see frame_lock_urgent). */
static void frame_lock_job(struct ntbt_qp *qp)
{
        /* seq_cst pairs with frame_lock_urgent's increment. */
        while (load_sc(&qp->frame_urgent))
                sched_yield();
        pthread_mutex_lock(&qp->frame_lock);
}

/* Steps 3-5 for one job, under frame_lock: its length, or -ENOLINK. */
static int tx_job_write_locked(struct ntbt_qp *qp, const struct tx_job *j)
{
        /* The session check under frame_lock: transport_down's fence
         * takes it after changing the epoch, so no frame reserved in
         * an old session is written once the next one can start.  A
         * poll-mode QP nobody polls keeps its tx_gen across a link
         * reset; only the epoch tells. */
        if (j->gen != qp->tx_gen || !tx_session_current(qp, j->epoch))
                return -ENOLINK; /* the link went down after this was queued */
        qp->job_done_off =
            write_frame_locked(qp, j->slot, j->ver, j->data, j->len, NTB_DESC_DONE_FLAG);
        qp->job_gen = j->gen;
        /* Rung at least every DOORBELL_EVERY frames while jobs keep coming. */
        if (++qp->job_unrung >= DOORBELL_EVERY) {
                tx_doorbell_locked(qp, qp->job_done_off);
                qp->job_unrung = 0;
        }
        return (int)j->len;
}

unsigned tx_jobs_write(struct ntbt_qp *qp, const struct tx_job *j, unsigned n, int *res)
{
        unsigned i;
        uint64_t bytes = 0;
        int fresh = 0; /* a frame written since frame_lock was last taken */

        frame_lock_job(qp);
        for (i = 0; i < n && bytes < TX_JOBS_BYTES; i++) {
                if (i && load_sc(&qp->frame_urgent)) {
                        /* A reset or close waits (seq_cst: as frame_lock_job):
                         * let it void the rest now, not after the batch. */
                        pthread_mutex_unlock(&qp->frame_lock);
                        frame_lock_job(qp);
                        fresh = 0;
                }
                res[i] = tx_job_write_locked(qp, &j[i]);
                if (res[i] >= 0) {
                        bytes += (uint64_t)res[i];
                        fresh = 1;
                }
        }
        /* Ring when nothing more is queued: copy_thread_pending after the
         * writes, as a job pushed meanwhile may take the doorbell along.
         * Only for a frame written under this hold of the lock (a reset in
         * between voided the earlier ones: tx_job_drained's check). */
        if (fresh && qp->job_unrung && i == n && copy_thread_pending(qp->copier) == 0) {
                tx_doorbell_locked(qp, qp->job_done_off);
                qp->job_unrung = 0;
        }
        pthread_mutex_unlock(&qp->frame_lock);
        return i;
}

void tx_job_drained(struct ntbt_qp *qp)
{
        if (!qp->job_unrung)
                return;
        /* The queue ran dry: ring for what we wrote, unless a reset voided it. */
        pthread_mutex_lock(&qp->frame_lock);
        if (qp->job_gen == qp->tx_gen)
                tx_doorbell_locked(qp, qp->job_done_off);
        pthread_mutex_unlock(&qp->frame_lock);
        qp->job_unrung = 0;
}

/*
 * Under tx_lock, thread mode: step 2 for up to k frames, each reserved slot
 * and ver value a job for the copy thread, pushed COPY_BATCH at a time (one
 * wake-up check each).  How many went in: a full job queue stops it, as a
 * full ring would.
 */
static uint32_t tx_push_jobs_locked(struct ntbt_qp *qp, const struct ntbt_tx_buf *v, uint32_t k)
{
        struct tx_job j[COPY_BATCH];
        uint32_t done = 0, m, i, pushed, slot;

        while (done < k) {
                m = k - done < COPY_BATCH ? k - done : COPY_BATCH;
                slot = qp->tx_index;
                for (i = 0; i < m; i++) {
                        /* Step 2: reserve the slot and its ver value before any copy. */
                        j[i] = (struct tx_job){.slot = slot,
                                               .ver = qp->tx_pkts + i,
                                               .len = v[done + i].len,
                                               .gen = qp->tx_gen, /* written under both locks */
                                               .epoch = tx_up_epoch_locked(qp),
                                               .buf_ctx = v[done + i].buf_ctx,
                                               .data = v[done + i].data};
                        slot = (slot + 1) % qp->tx_g.entries;
                }
                pushed = copy_thread_push_n(qp->copier, j, m);
                for (i = 0; i < pushed; i++)
                        tx_take_slot(qp);
                done += pushed;
                if (pushed < m)
                        break; /* the job queue is full */
        }
        return done;
}

/*
 * A burst: one tx_lock and one frame_lock for every frame of it, and one
 * doorbell after the last.  Locked instructions drain the store buffer; one
 * pair per frame made the sender wait for each frame's cache lines to cross
 * to the receiver's core before it could write the next (see bench/README).
 */
/*
 * long: everything between taking tx_lock and dropping it (checks, slot
 * count, then the copy thread's jobs or the inline frames and one doorbell)
 * is one critical section; each early return must unlock, and split into
 * helpers the lock would be taken in one function and dropped in another.
 */
int tx_send(struct ntbt_qp *qp, const struct ntbt_tx_buf *v, unsigned n, unsigned flags,
            int *queued, int *tick)
{
        uint32_t free, k, i;
        uint64_t done_off = 0;

        *queued = 0;
        *tick = 0;
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
        if (qp->zc_slot.n) {
                /* A zero-copy reservation holds the next slot: a frame
                 * behind it would wait for it, and its abort could not give
                 * it back (tx_zc_abort). */
                pthread_mutex_unlock(&qp->tx_lock);
                return -EAGAIN;
        }
        if (qp->tx_mode == NTBT_TX_INLINE && qp->copier && !copy_thread_idle(qp->copier)) {
                /* Just switched from thread mode: let the thread finish what
                 * it holds, so frames and completions stay in order.  Not
                 * under tx_lock: its completions may enqueue. */
                pthread_mutex_unlock(&qp->tx_lock);
                while (!copy_thread_idle(qp->copier))
                        sched_yield();
                goto retry;
        }
        free = tx_free_for(qp, n);
        if (free == 0) {
                tx_ring_full_locked(qp); /* the ring is live: checked above */
                pthread_mutex_unlock(&qp->tx_lock);
                return -EAGAIN;
        }
        /* As many as fit, up to the first one too long (that one is the
         * caller's next call, which reports -EMSGSIZE). */
        for (k = 0; k < n && k < free && v[k].len <= qp->tx_g.payload; k++)
                ;
        qp->tx_ticks += k;
        *tick = (qp->tx_ticks & ~63u) != ((qp->tx_ticks - k) & ~63u);
        if (qp->tx_mode == NTBT_TX_THREAD && qp->copier) {
                *queued = 1;
                i = tx_push_jobs_locked(qp, v, k);
                if (i == 0)
                        STAT_ADD(qp, tx_ring_full, 1);
                pthread_mutex_unlock(&qp->tx_lock);
                return i ? (int)i : -EAGAIN;
        }
        pthread_mutex_lock(&qp->frame_lock);
        for (i = 0; i < k; i++) {
                /* Step 2, then steps 3-5. */
                uint32_t slot = qp->tx_index, ver = qp->tx_pkts;

                tx_take_slot(qp);
                done_off =
                    write_frame_locked(qp, slot, ver, v[i].data, v[i].len, NTB_DESC_DONE_FLAG);
        }
        tx_doorbell_or_defer_locked(qp, done_off, flags);
        pthread_mutex_unlock(&qp->frame_lock);
        pthread_mutex_unlock(&qp->tx_lock);
        return (int)k;
}

/* ---- zero-copy send: slots held across calls (transport.h) ---- */

/* Under tx_lock: why no slot may be reserved now (0: they may). */
static int tx_zc_refusal_locked(struct ntbt_qp *qp, uint32_t len_max)
{
        if (!tx_live_locked(qp))
                return -ENOLINK;
        if (len_max > qp->tx_g.payload)
                return -EMSGSIZE;
        if (qp->tx_mode == NTBT_TX_THREAD)
                return -EOPNOTSUPP;
        if (qp->zc_slot.n)
                return -EBUSY; /* zc.c lets one reservation in at a time */
        if (qp->copier && !copy_thread_idle(qp->copier))
                return -EAGAIN; /* just switched from thread mode: its frames go first */
        return 0;
}

/* wins[0..k-1]: each held slot's payload area in the peer's window, where
 * the device maps the window and every frame lies inside what it maps;
 * else all NULL. */
static void tx_zc_windows(struct ntbt_qp *qp, const struct tx_zc_slot *r, void **wins)
{
        const struct qp_geom *g = &qp->tx_g;
        uint64_t size, hdr;
        uint32_t i;
        void *base;

        if (ntbt_dev_peer_mw_map(qp->t->dev, (int)g->mw, &base, &size) != 0)
                base = NULL;
        for (i = 0; i < r->n; i++) {
                hdr = geom_hdr_off(g, (r->slot + i) % g->entries);
                if (!base || hdr + sizeof(struct ntb_payload_header) > size)
                        break;
                wins[i] = (uint8_t *)base + hdr - g->payload;
        }
        if (i < r->n)
                memset(wins, 0, r->n * sizeof(*wins));
}

int tx_zc_reserve(struct ntbt_qp *qp, uint32_t len_max, void **wins, uint32_t n)
{
        struct tx_zc_slot *r = &qp->zc_slot;
        uint32_t free, i;
        int ret;

        pthread_mutex_lock(&qp->tx_lock);
        ret = tx_zc_refusal_locked(qp, len_max);
        free = ret ? 0 : tx_free_for(qp, n);
        if (!ret && free == 0) {
                tx_ring_full_locked(qp);
                ret = -EAGAIN;
        }
        if (ret) {
                pthread_mutex_unlock(&qp->tx_lock);
                return ret;
        }
        /* Step 2: the slots and their ver values, as tx_send takes them. */
        *r = (struct tx_zc_slot){.n = n < free ? n : free,
                                 .slot = qp->tx_index,
                                 .ver = qp->tx_pkts,
                                 .gen = qp->tx_gen, /* written under both locks */
                                 .epoch = tx_up_epoch_locked(qp)};
        for (i = 0; i < r->n; i++)
                tx_take_slot(qp);
        tx_zc_windows(qp, r, wins);
        pthread_mutex_unlock(&qp->tx_lock);
        return (int)r->n;
}

/* Under tx_lock: the held slots from the keep-th on back to the ring, if
 * they are still the last ones taken in the ring they were taken in (no
 * link reset since: tx_gen and the session unchanged; tx_send refused every
 * frame since).  After a reset there is nothing to give back: the reset
 * rewound tx_index itself. */
static void tx_zc_give_back_locked(struct ntbt_qp *qp, const struct tx_zc_slot *r, uint32_t keep)
{
        uint32_t e = qp->tx_g.entries;

        if (r->gen != qp->tx_gen || !tx_session_current(qp, r->epoch) ||
            qp->tx_pkts != r->ver + r->n || qp->tx_index != (r->slot + r->n) % e)
                return;
        qp->tx_index = (r->slot + keep) % e;
        qp->tx_pkts = r->ver + keep;
        qp->tx_known_free = 0; /* slots came back: read rx_info again */
}

int tx_zc_commit(struct ntbt_qp *qp, const struct tx_zc_send *s, unsigned flags, int *tick)
{
        struct tx_zc_slot r;
        uint64_t done_off = 0;
        uint32_t i;

        *tick = 0;
        pthread_mutex_lock(&qp->tx_lock);
        r = qp->zc_slot;
        qp->zc_slot.n = 0;
        /* A link reset since the reserve (tx_gen moved: tx_rollback_locked
         * gave the slots back, perhaps to a LINK_DOWN frame), a session
         * ended (the slots may be the next ring's), or a link_down: nothing
         * is written.  Checked under tx_lock, which tx_session_fence takes
         * after the epoch changes, as for tx_send. */
        if (!r.n || r.gen != qp->tx_gen || !tx_session_current(qp, r.epoch) ||
            !tx_live_locked(qp)) {
                if (r.n)
                        tx_zc_give_back_locked(qp, &r, 0);
                pthread_mutex_unlock(&qp->tx_lock);
                return -ENOLINK;
        }
        /* Steps 3-5 per frame, in write_frame_locked's order.  A payload
         * written in place (stage NULL) was stored before this call, on
         * this thread or ordered before it by the application: step 5's
         * barrier orders it, as a copied one, before the DONE store the
         * peer acquires.  Then one doorbell for them all. */
        pthread_mutex_lock(&qp->frame_lock);
        for (i = 0; i < s->k && i < r.n; i++)
                done_off = write_frame_locked(qp, (r.slot + i) % qp->tx_g.entries, r.ver + i,
                                              s->stage ? s->stage + (size_t)i * s->stride : NULL,
                                              s->lens[i], NTB_DESC_DONE_FLAG);
        tx_doorbell_or_defer_locked(qp, done_off, flags); /* steps 6-7 */
        pthread_mutex_unlock(&qp->frame_lock);
        if (i < r.n)
                tx_zc_give_back_locked(qp, &r, i); /* the rest, unsent */
        qp->tx_ticks += i;
        *tick = (qp->tx_ticks & ~63u) != ((qp->tx_ticks - i) & ~63u);
        pthread_mutex_unlock(&qp->tx_lock);
        return 0;
}

void tx_zc_abort(struct ntbt_qp *qp)
{
        pthread_mutex_lock(&qp->tx_lock);
        if (qp->zc_slot.n)
                tx_zc_give_back_locked(qp, &qp->zc_slot, 0);
        qp->zc_slot.n = 0;
        pthread_mutex_unlock(&qp->tx_lock);
}

void tx_rollback_locked(struct ntbt_qp *qp)
{
        /* Slots reserved for jobs the copy thread has not written are given
         * back, so a LINK_DOWN frame follows the last written frame with no
         * hole before it; bumping tx_gen voids those jobs (they complete
         * with -ENOLINK). */
        frame_lock_urgent(qp);
        qp->tx_index = qp->written_index;
        qp->tx_pkts = qp->written_pkts;
        qp->tx_known_free = 0; /* slots came back: read rx_info again */
        qp->tx_gen++;
        pthread_mutex_unlock(&qp->frame_lock);
}

int tx_send_link_down_locked(struct ntbt_qp *qp)
{
        int64_t deadline = now_ns() + LINK_DOWN_WAIT_NS;
        uint32_t slot, ver;

        /* The peer of an ended session is not told: the frame would land in
         * its next ring.  Checked in the wait too, so transport_down's fence,
         * which waits for tx_lock, waits 100 us at most. */
        if (!tx_session_current(qp, tx_up_epoch_locked(qp)))
                return 0;
        /* Wait for a slot while the peer drains (the kernel gives up after
         * about 100 ms; a peer that then never hears of the close cannot
         * re-link, so we wait longer, and say so if it still fails). */
        while (tx_free_locked(qp) == 0) {
                if (!tx_session_current(qp, tx_up_epoch_locked(qp)))
                        return 0;
                if (now_ns() >= deadline || !ntbt_dev_link_is_up(qp->t->dev)) {
                        log_warn("%s: qp %u: no free slot for the LINK_DOWN frame: "
                                 "the peer is not told of the close",
                                 ntbt_dev_spec(qp->t->dev), qp->num);
                        return 0;
                }
                nanosleep(&(struct timespec){0, 100000}, NULL);
        }
        slot = qp->tx_index;
        ver = qp->tx_pkts;
        tx_take_slot(qp);
        /* A zero-length frame; it consumes a ver value (spec section 7). */
        frame_lock_urgent(qp);
        tx_doorbell_locked(qp, write_frame_locked(qp, slot, ver, NULL, 0,
                                                  NTB_DESC_DONE_FLAG | NTB_LINK_DOWN_FLAG));
        pthread_mutex_unlock(&qp->frame_lock);
        qp->db_pending = 0;
        return 1;
}
