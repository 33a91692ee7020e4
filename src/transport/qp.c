/* SPDX-License-Identifier: MIT */
/*
 * Queue pairs, on top of the rings (tx.c, rx.c): creation and freeing, the
 * QP-level handshake (spec section 4), link down (section 7), what a bad
 * frame does to the QP, the copy thread's jobs, live statistics, and the
 * client calls of <ntbt/transport.h> on a QP, which run its handlers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../util/abi.h"
#include "../util/barrier.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "../util/spin.h"
#include "transport.h"
#include "wire.h"

/* How long a QP that sent LINK_DOWN waits for the peer to re-request the
 * link before it prepares its ring anyway (see QP_WAIT_PEER). */
#define WAIT_PEER_NS (200 * NS_PER_MS)
/* How often a QP's live statistics are published while nothing changes. */
#define STATS_EVERY_NS (100 * NS_PER_MS)
/* Jobs the copy thread may hold (more: -EAGAIN, as a full ring). */
#define COPY_QUEUE_CAP 1024

/*
 * A library call that may run the QP's handlers on this thread (poll,
 * waits, inline enqueue): kept on a per-thread stack so that a free from
 * a handler is deferred to the outermost such call.
 */
struct qp_call {
        struct ntbt_qp *qp;
        struct qp_call *up;
        int free; /* ntbt_qp_free was called inside this (outermost) call */
};

static void qp_call_enter(struct qp_call *c, struct ntbt_qp *qp);
/* Leave the call; if a free was requested inside it (or, for an owner call
 * of a poll-mode QP, handed over by the copy thread) release the QP now and
 * return -ESHUTDOWN; -ESHUTDOWN also once the QP is dying; else ret. */
static int qp_call_leave(struct qp_call *c, int ret, int owner);
static void qp_destroy(struct ntbt_qp *qp);

static void broadcast(struct ntbt_transport *t)
{
        pthread_mutex_lock(&t->lock);
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->lock);
}

static void call_event(struct ntbt_qp *qp, int up, int reason)
{
        /* After a free only buffers are handed back (ntbt_qp_free). */
        if (!qp->h.event || load_sc(&qp->dying))
                return;
        qp->in_handler++;
        qp->h.event(qp, qp->ctx, up, reason);
        qp->in_handler--;
}

/* Our QP_LINKS value, written whole to the peer's spad[1]: bit q while QP q
 * requests the link. */
static void qp_links_write(struct ntbt_transport *t, unsigned q, int set)
{
        /* Several owners (event thread, pollers) update one register: the
         * lock makes each whole-value write carry every current bit. */
        pthread_mutex_lock(&t->spad_lock);
        if (set)
                t->qp_links |= 1u << q;
        else
                t->qp_links &= ~(1u << q);
        ntbt_dev_peer_spad_write(t->dev, NTB_SPAD_QP_LINKS, t->qp_links);
        pthread_mutex_unlock(&t->spad_lock);
}

void qp_links_clear(struct ntbt_transport *t)
{
        pthread_mutex_lock(&t->spad_lock);
        t->qp_links = 0;
        pthread_mutex_unlock(&t->spad_lock);
}

static int peer_requested(struct ntbt_qp *qp)
{
        uint32_t v = 0;

        ntbt_dev_spad_read(qp->t->dev, NTB_SPAD_QP_LINKS, &v);
        return (v >> qp->num) & 1;
}

/*
 * A frame waiting in our ring also proves the peer is up: it writes frames
 * only after it saw our request bit, which we write only after preparing
 * the ring.  A peer that links, sends and closes (LINK_DOWN) before our next
 * look has already taken its bit back; without this we would wait forever.
 */
static int peer_frame_waiting(struct ntbt_qp *qp)
{
        /* Zero copy: the frames from rx_index on may be held; the next one
         * not handed out is at zc_next. */
        uint32_t slot = qp->zc_rx ? qp->zc_next : qp->rx_index;
        uint8_t *hdr = qp->rx_win + geom_hdr_off(&qp->rx_g, slot);

        /* Acquire, as rx_process reads it. */
        return load_acquire_u32(hdr + NTB_HDR_FLAGS_OFF) & NTB_DESC_DONE_FLAG;
}

/* Forget the peer's request bit in our own spad[1]: it must set it again
 * after it has seen our LINK_DOWN, so we do not link up with its old self. */
static void forget_peer_request(struct ntbt_qp *qp)
{
        uint32_t v = 0;

        /* Several owners (receive threads, pollers) may clear their bits at
         * once: the lock keeps our own read-modify-writes from undoing each
         * other (the peer's whole-value writes race with them by design). */
        pthread_mutex_lock(&qp->t->spad_lock);
        ntbt_dev_spad_read(qp->t->dev, NTB_SPAD_QP_LINKS, &v);
        ntbt_dev_spad_write(qp->t->dev, NTB_SPAD_QP_LINKS, v & ~(1u << qp->num));
        pthread_mutex_unlock(&qp->t->spad_lock);
}

static void qp_go_down(struct ntbt_qp *qp, int send_link_down, int reason)
{
        struct ntbt_transport *t = qp->t;
        int was = qp->state;
        uint32_t epoch = load_acquire(&t->epoch);
        int transport_up = transport_epoch_up(epoch);
        /* The peer is told only within the session the QP came up in: a
         * poller that missed a link reset would otherwise clear the new
         * peer's request and send it an old session's LINK_DOWN. */
        int tell = transport_up && send_link_down && was == QP_UP && epoch == qp->seen_epoch;

        /* Zero copy: what the application released goes to the peer first
         * (in this session only); frames it holds are void from now on. */
        if (qp->zc_rx)
                zc_rx_reset(qp, 1);
        if (transport_up && (was == QP_HANDSHAKE || was == QP_UP))
                qp_links_write(t, qp->num, 0);
        if (tell)
                forget_peer_request(qp);
        /* The buffers the owner holds go back to the queue before the QP
         * reads as down (link_up below), after which rx_remove may pop. */
        rx_cache_return(qp);
        pthread_mutex_lock(&qp->tx_lock);
        tx_rollback_locked(qp);
        /* Spec section 7: the LINK_DOWN frame goes out after our bit is
         * cleared, so the peer cannot re-link with our old self. */
        if (tell && qp->tx_up && tx_send_link_down_locked(qp))
                /* seq_cst: read by ntbt_transport_close on another thread;
                 * nothing else is published through it. */
                fetch_or_sc(&t->lingering, 1u << qp->num);
        tx_reset_locked(qp);
        qp->tx_closing = 0;
        pthread_mutex_unlock(&qp->tx_lock);
        qp->rx_index = 0;
        qp->rx_pkts = 0;
        STAT_SET(qp, rx_index, 0);
        qp->state = QP_DOWN;
        qp->initiator = send_link_down && was == QP_UP;
        if (was == QP_UP) {
                store_sc(&qp->link_up, 0);
                broadcast(t);
                call_event(qp, 0, reason);
        }
}

static void qp_protocol_reset(struct ntbt_qp *qp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void qp_protocol_reset(struct ntbt_qp *qp, const char *fmt, ...)
{
        char buf[200];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        STAT_ADD(qp, resets, 1);
        log_warn("%s: qp %u: %s; resetting the queue pair", ntbt_dev_spec(qp->t->dev), qp->num,
                 buf);
        qp_go_down(qp, 1, NTBT_QP_DOWN_PROTOCOL);
}

/* Spec section 4 step 3, per QP: geometry, zeroed ring, rx_info copy, then our bit. */
static void qp_prepare(struct ntbt_qp *qp)
{
        struct ntbt_transport *t = qp->t;
        struct qp_geom rx, tx;
        uint32_t i;
        uint8_t *win;

        /* Both checked by the handshake (rx) and at open (tx). */
        /* Relaxed: see transport_try_up (ordered by the epoch's acquire). */
        geom_qp(load_relaxed(&t->in_size[qp->num % t->mw_count]), t->qp_count, t->mw_count, qp->num,
                t->o.transport_mtu, &rx);
        geom_qp(t->out_size[qp->num % t->mw_count], t->qp_count, t->mw_count, qp->num,
                t->o.transport_mtu, &tx);
        win = t->in_base[rx.mw];
        for (i = 0; i < rx.entries; i++) {
                uint8_t *hdr = win + geom_hdr_off(&rx, i);

                /* Our own inbound memory, which the peer does not write while
                 * we are not requesting the link; relaxed, published by the
                 * seq_cst spad write in qp_links_write below. */
                store_relaxed_u32(hdr + NTB_HDR_FLAGS_OFF, 0u);
                store_relaxed_u32(hdr + NTB_HDR_LEN_OFF, 0u);
                store_relaxed_u32(hdr + NTB_HDR_VER_OFF, 0u);
        }
        qp->rx_win = win;
        qp->rx_index = 0;
        qp->rx_pkts = 0;
        zc_rx_reset(qp, 0);
        pthread_mutex_lock(&qp->tx_lock);
        qp->rx_g = rx; /* under the lock too: ntbt_qp_stats reads it */
        qp->rx_info_every = rx.entries >= 8 ? rx.entries / 4 : 1;
        qp->tx_g = tx;
        qp->remote_rx_info = win + rx.rx_info_off;
        /* The sender-side copy of the peer's rx_info: all slots but one free.
         * Relaxed: our own inbound memory, read by senders under tx_lock,
         * held; the peer writes it only after our QP_LINKS bit (seq_cst,
         * qp_links_write below). */
        store_relaxed_u32(qp->remote_rx_info, tx.entries - 1);
        tx_reset_locked(qp);
        pthread_mutex_unlock(&qp->tx_lock);
        store_sc(&qp->max_payload, tx.payload < rx.payload ? tx.payload : rx.payload);
        qp_links_write(t, qp->num, 1);
        qp->state = QP_HANDSHAKE;
        qp->next_try = 0;
        qp->handshake_since = now_ns();
        qp->hinted = 0;
}

/*
 * Waiting for a queue pair the peer never asks for, while it asks for
 * others, is the mark of a --qp mismatch (ntbt send --qp 0 against recv
 * --qp 1): say so once, after a second, rather than wait in silence.
 */
static void qp_hint_peer_qps(struct ntbt_qp *qp, int64_t now)
{
        uint32_t v = 0, others;

        if (qp->hinted || now - qp->handshake_since < NS_PER_SEC)
                return;
        ntbt_dev_spad_read(qp->t->dev, NTB_SPAD_QP_LINKS, &v);
        others = v & ~(1u << qp->num);
        if (!others)
                return;
        qp->hinted = 1;
        {
                char list[160] = "";
                size_t len = 0;
                unsigned i;

                for (i = 0; i < NTBT_MAX_QPS && len < sizeof(list) - 8; i++)
                        if (others & (1u << i))
                                len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%u",
                                                        len ? ", " : "", i);
                log_warn("%s: qp %u: after 1 s the peer has asked for queue pair%s %s but not "
                         "%u: do both sides use the same --qp?",
                         ntbt_dev_spec(qp->t->dev), qp->num, others & (others - 1) ? "s" : "", list,
                         qp->num);
        }
}

static void qp_come_up(struct ntbt_qp *qp)
{
        pthread_mutex_lock(&qp->tx_lock);
        /* The session whose ring we prepared; enqueue refuses once the
         * transport's epoch moves on.  Relaxed: readers hold tx_lock, or
         * (ntbt_qp_link_is_up) load link_up first, whose seq_cst store
         * below orders this one before it. */
        store_relaxed(&qp->up_epoch, qp->seen_epoch);
        qp->tx_up = 1;
        pthread_mutex_unlock(&qp->tx_lock);
        qp->state = QP_UP;
        store_sc(&qp->link_up, 1);
        log_info("%s: qp %u up: %u-byte frames, %u entries", ntbt_dev_spec(qp->t->dev), qp->num,
                 qp->tx_g.frame, qp->tx_g.entries);
        broadcast(qp->t);
        call_event(qp, 1, NTBT_QP_UP);
}

/* What a walk that stopped early means for the QP (rx_process, zc_rx_next). */
static void qp_rx_stopped(struct ntbt_qp *qp, const struct rx_stop *stop)
{
        switch (stop->why) {
        case RX_STOP_NONE:
                break;
        case RX_STOP_LINK_DOWN:
                qp_go_down(qp, 0, NTBT_QP_DOWN_PEER);
                break;
        case RX_STOP_BAD_FLAGS:
                qp_protocol_reset(qp, "frame %u has undefined flag bits 0x%x", stop->slot,
                                  stop->value);
                break;
        case RX_STOP_BAD_VER:
                qp_protocol_reset(qp, "frame %u has ver %u, expected %u", stop->slot, stop->value,
                                  stop->want);
                break;
        }
}

/* The owner, with the QP up: walk the receive ring, then act on why it
 * stopped.  A zero-copy QP is walked by ntbt_qp_rx_get instead. */
static int qp_receive(struct ntbt_qp *qp, int budget)
{
        struct rx_stop stop;
        int n;

        if (qp->zc_rx)
                return 0;
        n = rx_process(qp, budget, &stop);
        qp_rx_stopped(qp, &stop);
        return n;
}

/*
 * long: the owner's one pass over a QP, in the order the protocol needs it:
 * a lost session first, then a client's link down, then one switch over
 * the state machine whose cases are spec section 4's steps; split, the
 * order between the three would live in a caller instead of here.
 */
static int qp_service_body(struct ntbt_qp *qp, int budget, int *busy, int *handshaking)
{
        struct ntbt_transport *t = qp->t;
        uint32_t epoch = load_acquire(&t->epoch);
        int64_t now = 0;
        int n = 0;

        if (epoch != qp->seen_epoch) {
                /* The link went away: first take what arrived whole (a
                 * closing peer's last frames and its LINK_DOWN). */
                if (qp->state == QP_HANDSHAKE && peer_frame_waiting(qp))
                        qp_come_up(qp);
                if (qp->state == QP_UP)
                        qp_receive(qp, (int)qp->rx_g.entries);
                if (qp->state != QP_DOWN)
                        qp_go_down(qp, 0, NTBT_QP_DOWN_LINK_LOST);
                qp->seen_epoch = epoch;
                qp->initiator = 0;
        }
        if (load_sc(&qp->down_req)) {
                store_sc(&qp->down_req, 0);
                qp_go_down(qp, 1, NTBT_QP_DOWN_LOCAL);
        }
        if (!transport_epoch_up(epoch))
                return 0;
        if (!load_sc(&qp->want_link)) {
                if (qp->state == QP_HANDSHAKE || qp->state == QP_WAIT_PEER)
                        qp_go_down(qp, 0, NTBT_QP_DOWN_LOCAL);
                return 0;
        }
        /* The clock only for handshake states: a busy poller's call stays cheap. */
        if (qp->state != QP_UP)
                now = now_ns();
        switch (qp->state) {
        case QP_DOWN:
                if (qp->initiator) {
                        qp->state = QP_WAIT_PEER;
                        qp->wait_deadline = now + WAIT_PEER_NS;
                } else {
                        qp_prepare(qp);
                }
                *handshaking = 1;
                break;
        case QP_WAIT_PEER:
                if (peer_requested(qp) || now >= qp->wait_deadline) {
                        qp->initiator = 0;
                        qp_prepare(qp);
                }
                *handshaking = 1;
                break;
        case QP_HANDSHAKE:
                *handshaking = 1;
                if (peer_frame_waiting(qp)) {
                        qp_come_up(qp);
                        break;
                }
                if (now < qp->next_try)
                        break;
                qp->next_try = now + NTB_HANDSHAKE_RETRY_NS;
                /* Rewrite our bit (the peer may have zeroed its scratchpads). */
                qp_links_write(t, qp->num, 1);
                if (peer_requested(qp))
                        qp_come_up(qp);
                else
                        qp_hint_peer_qps(qp, now);
                break;
        case QP_UP: {
                uint64_t bit = 1ull << qp->num;

                /* Clear first, then look: a frame that lands after the clear
                 * rings again, so none is missed. */
                if (budget > 0 && (ntbt_dev_db_read(t->dev) & bit))
                        ntbt_dev_db_clear(t->dev, bit);
                n = qp_receive(qp, budget);
                if (n >= budget)
                        *busy = 1;
                break;
        }
        }
        return n;
}

/* ---- live statistics (the file: stats_file.c) ---- */

/*
 * Publish the QP's record.  owner: called by the QP's owner, which alone
 * knows its state; a sender keeps the state the owner last published.
 *
 * stats_next is a relaxed atomic: the owner and senders each read and move
 * it, and a race costs one publish too many or one 100 ms late; it orders
 * nothing (the record's own sequence count does that).
 */
static void qp_stats_publish(struct ntbt_qp *qp, int64_t now, int owner)
{
        struct ntbt_qp_stats st = {.size = sizeof(st)};
        struct stats_rec v = {0};
        int i = 0;

        store_relaxed(&qp->stats_next, now + STATS_EVERY_NS);
        if (ntbt_qp_stats(qp, &st))
                return;
        v.present = 1;
        v.state = owner ? (uint32_t)qp->state : 0;
        v.tx_mode = (uint32_t)ntbt_qp_tx_mode(qp);
        v.poll_mode = (uint32_t)qp->poll_mode;
        v.update_ns = now;
        /* In the order of NTBT_QP_COUNTERS, as the reader names them. */
#define COUNTER_PUT(name, source, description) v.c[i++] = st.name;
        NTBT_QP_COUNTERS(COUNTER_PUT)
#undef COUNTER_PUT
        if (stats_file_write(qp->t->stats, qp->num, &v, !owner) && owner)
                qp->stats_state = qp->state;
}

/* After every 64th frame sent (tx_send counts them under tx_lock): a sender
 * that never polls (a poll-mode QP that only transmits) still shows its
 * counters. */
static void qp_stats_tick(struct ntbt_qp *qp)
{
        int64_t now;

        if (!qp->t->stats)
                return;
        now = now_coarse_ns(); /* a 100 ms cadence needs no finer clock */
        /* Relaxed: a hint for when to publish (see qp_stats_publish). */
        if (now >= load_relaxed(&qp->stats_next))
                qp_stats_publish(qp, now, 0);
}

/* The owner's work on one QP, then its live statistics when due (every
 * 100 ms and on a state change).  The clock is read only when the ring was
 * idle or every 64th call, so a busy ring pays nothing for it, and it is the
 * coarse clock, so a busy poller's idle calls stay short. */
int qp_service(struct ntbt_qp *qp, int budget, int *busy, int *handshaking)
{
        int n = qp_service_body(qp, budget, busy, handshaking);

        /* Buffers held while down: a give-back that could not allocate. */
        if (qp->state != QP_UP && qp->rxc.count)
                rx_cache_return(qp);

        if (qp->t->stats && (qp->state != qp->stats_state || n == 0 || !(++qp->stats_svc & 63))) {
                int64_t now = now_coarse_ns();

                /* Relaxed: a hint for when to publish (see qp_stats_publish). */
                if (now >= load_relaxed(&qp->stats_next) || qp->state != qp->stats_state)
                        qp_stats_publish(qp, now, 1);
        }
        return n;
}

/* ---- the copy thread's jobs (copy_thread.c runs them) ---- */

/*
 * The library calls in progress on this thread that may run a QP's
 * handlers, innermost first, and on a copy thread its QP.  Thread-local:
 * only this thread reads or writes them, so they need no ordering.
 */
static _Thread_local struct qp_call *tl_calls;
static _Thread_local struct ntbt_qp *tl_copy_qp;
/* The transport whose event-mode QPs this thread services, if any. */
static _Thread_local struct ntbt_transport *tl_service;

void qp_service_thread_enter(struct ntbt_transport *t)
{
        tl_service = t;
}

/* Step 8 for a job: the buffer is the client's again. */
static void copier_complete(struct ntbt_qp *qp, const struct tx_job *j, int res)
{
        if (qp->h.tx)
                qp->h.tx(qp, qp->ctx, j->buf_ctx, j->data, res);
}

static void copier_started(void *ctx)
{
        /* Frees from this thread's handlers go to the owner (qp_release). */
        tl_copy_qp = ctx;
}

static void copier_run(void *ctx, void *jobs, unsigned n)
{
        struct ntbt_qp *qp = ctx;
        const struct tx_job *j = jobs;
        int res[COPY_BATCH];
        unsigned i, k, done;

        /* Written a batch under one frame_lock, then completed in order
         * outside it (a handler may enqueue, or free the QP). */
        for (done = 0; done < n; done += k) {
                k = tx_jobs_write(qp, j + done, n - done, res);
                for (i = 0; i < k; i++)
                        copier_complete(qp, &j[done + i], res[i]);
        }
}

static void copier_drained(void *ctx)
{
        tx_job_drained(ctx);
}

static void copier_cancel(void *ctx, void *job)
{
        copier_complete(ctx, job, -ECANCELED);
}

static const struct copy_thread_ops copier_ops = {
    .started = copier_started,
    .run = copier_run,
    .drained = copier_drained,
    .cancel = copier_cancel,
};

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
        if (mode == NTBT_TX_THREAD && !qp->copier) {
                /* qp->copier is set under tx_lock: enqueuers read it there. */
                ret = copy_thread_start(&qp->copier, COPY_QUEUE_CAP, sizeof(struct tx_job),
                                        &copier_ops, qp);
                if (ret) {
                        pthread_mutex_unlock(&qp->tx_lock);
                        log_warn("%s: qp %u: cannot start the copy thread (error %d); "
                                 "copying inline",
                                 ntbt_dev_spec(qp->t->dev), qp->num, ret);
                        return ret;
                }
        }
        /* Relaxed: read under tx_lock, except by ntbt_qp_tx_reserve's
         * early check, which wants the value only; its commit checks again
         * under the lock (tx_send). */
        store_relaxed(&qp->tx_mode, mode);
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

/* ---- creation and freeing ---- */

/* The caller's options (the size rule: <ntbt/ntbt.h>) into o, checked. */
static int qp_opts_read(const struct ntbt_transport *t, const struct ntbt_qp_opts *opts,
                        struct ntbt_qp_opts *o)
{
        int ret = opts ? abi_in(o, sizeof(*o), opts, ABI_OPTS_VER0) : 0;

        if (ret)
                return ret;
        if ((o->flags & ~NTBT_QP_ZC_RX) || ((o->flags & NTBT_QP_ZC_RX) && !o->poll))
                return -EINVAL;
        if (o->tx_mode != NTBT_TX_DEFAULT && o->tx_mode != NTBT_TX_INLINE &&
            o->tx_mode != NTBT_TX_THREAD)
                return -EINVAL;
        if (o->qp_num != NTBT_QP_ANY && (o->qp_num < 0 || (uint32_t)o->qp_num >= t->qp_count))
                return -EINVAL;
        return 0;
}

int ntbt_qp_create(struct ntbt_transport *t, const struct ntbt_qp_opts *opts,
                   const struct ntbt_qp_handlers *h, void *qp_ctx, struct ntbt_qp **out)
{
        struct ntbt_qp_opts o = {.size = sizeof(o), .qp_num = NTBT_QP_ANY};
        struct ntbt_qp *qp;
        int num, ret = 0;

        if (!t || !out)
                return -EINVAL;
        ret = qp_opts_read(t, opts, &o);
        if (ret)
                return ret;
        /* Aligned as its type asks: the counter groups must really start
         * cache lines (transport.h, struct qp_counters).  sizeof is a
         * multiple of the alignment, as aligned_alloc wants. */
        qp = aligned_alloc(_Alignof(struct ntbt_qp), sizeof(*qp));
        if (!qp)
                return -ENOMEM;
        memset(qp, 0, sizeof(*qp));
        qp->t = t;
        qp->poll_mode = !!o.poll;
        qp->zc_rx = !!(o.flags & NTBT_QP_ZC_RX);
        qp->zc_pending = UINT32_MAX;
        if (h)
                qp->h = *h;
        qp->ctx = qp_ctx;
        qp->seen_epoch = 0;                    /* down; the first service looks at the real epoch */
        qp->stats_state = (enum qp_state) - 1; /* the first service publishes */
        pthread_mutex_init(&qp->tx_lock, NULL);
        pthread_mutex_init(&qp->frame_lock, NULL);
        qp->tx_mode = NTBT_TX_INLINE;
        rxq_init(qp);

        pthread_mutex_lock(&t->lock);
        if (o.qp_num != NTBT_QP_ANY) {
                num = o.qp_num;
                if (t->qps[num])
                        ret = -EBUSY;
        } else {
                for (num = 0; num < (int)t->qp_count && t->qps[num]; num++)
                        ;
                if (num == (int)t->qp_count)
                        ret = -ENOSPC;
        }
        if (!ret) {
                qp->num = (unsigned)num;
                t->qps[num] = qp;
        }
        pthread_mutex_unlock(&t->lock);
        if (ret) {
                qp_destroy(qp);
                return ret;
        }
        /* A copy thread that cannot be created leaves the QP inline (logged). */
        ntbt_qp_set_tx_mode(qp, o.tx_mode);
        *out = qp;
        return 0;
}

static void qp_destroy(struct ntbt_qp *qp)
{
        copy_thread_stop(qp->copier);
        rxq_destroy(qp);
        zc_destroy(qp);
        pthread_mutex_destroy(&qp->frame_lock);
        pthread_mutex_destroy(&qp->tx_lock);
        free(qp);
}

static void unregister(struct ntbt_qp *qp)
{
        struct ntbt_transport *t = qp->t;

        pthread_mutex_lock(&t->lock);
        if (t->qps[qp->num] == qp)
                t->qps[qp->num] = NULL;
        /* For frees waiting for another thread to finish a QP (qp_release,
         * ntbt_transport_close). */
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->lock);
}

static void cancel_rx_buffers(struct ntbt_qp *qp)
{
        struct rx_buf b;

        while (rx_take_any(qp, &b) == 0)
                if (qp->h.rx)
                        qp->h.rx(qp, qp->ctx, b.ctx, b.data, -ECANCELED);
}

/* Owner side of a free: LINK_DOWN to the peer if up.  The QP stays
 * registered (its number taken) until qp_finish is done with it. */
static void qp_close_owner(struct ntbt_qp *qp)
{
        struct ntbt_transport *t = qp->t;
        uint32_t epoch = load_acquire(&t->epoch);

        store_sc(&qp->want_link, 0);
        /* No down event on free: the client is going away. */
        qp->h.event = NULL;
        if (epoch != qp->seen_epoch && qp->state != QP_DOWN)
                qp_go_down(qp, 0, NTBT_QP_DOWN_LINK_LOST);
        else if (qp->state != QP_DOWN)
                qp_go_down(qp, 1, NTBT_QP_DOWN_LOCAL);
        rx_cache_return(qp);                   /* if qp_go_down could not (see rx_cache_return) */
        stats_file_qp_gone(t->stats, qp->num); /* before the number can be reused */
}

/* ---- lifetime (the rule: include/ntbt/transport.h, ntbt_qp_free) ---- */

static void qp_call_enter(struct qp_call *c, struct ntbt_qp *qp)
{
        c->qp = qp;
        c->up = tl_calls;
        c->free = 0;
        tl_calls = c;
}

/* The outermost call on qp in progress on this thread, or NULL. */
static struct qp_call *outer_call(struct ntbt_qp *qp)
{
        struct qp_call *c, *found = NULL;

        for (c = tl_calls; c; c = c->up)
                if (c->qp == qp)
                        found = c;
        return found;
}

/*
 * The end of every free, after the owner let go: posted buffers back
 * (-ECANCELED), the copy thread joined (what it never took completes with
 * -ECANCELED), the number given back, the memory freed.  The handlers called
 * here run inside a call on the QP, so a free from them is a no-op.  The
 * number goes last: once ntbt_qp_create can take it again, every handler
 * call has returned (a client whose handler freed the QP waits for that).
 */
static void qp_finish(struct ntbt_qp *qp)
{
        struct qp_call c;

        store_sc(&qp->dying, 1);
        qp_call_enter(&c, qp);
        cancel_rx_buffers(qp);
        copy_thread_stop(qp->copier);
        qp->copier = NULL;
        tl_calls = c.up;
        unregister(qp);
        qp_destroy(qp);
}

void qp_release_from_owner(struct ntbt_qp *qp)
{
        /* free_req only ever leaves NONE once, so this cannot change under us. */
        int self_freed = load_sc(&qp->free_req) == FREE_REQ_OWNER;

        qp_close_owner(qp);
        if (self_freed) {
                /* Freed from a handler on this thread, or handed over by
                 * the copy thread: nobody waits, we finish it. */
                qp_finish(qp);
                return;
        }
        pthread_mutex_lock(&qp->t->lock);
        store_sc(&qp->freed, 1);
        pthread_cond_broadcast(&qp->t->cond);
        pthread_mutex_unlock(&qp->t->lock);
}

int qp_free_claim(struct ntbt_qp *qp)
{
        int none = FREE_REQ_NONE;

        /* Only one party may finish a free: a client waiting for the event
         * thread (WAIT) or the owner alone (OWNER). */
        return cas_sc(&qp->free_req, &none, FREE_REQ_WAIT);
}

void qp_free_claimed(struct ntbt_qp *qp)
{
        struct ntbt_transport *t = qp->t;

        store_sc(&qp->dying, 1);
        transport_kick(t);
        pthread_mutex_lock(&t->lock);
        while (!load_sc(&qp->freed))
                pthread_cond_wait(&t->cond, &t->lock);
        pthread_mutex_unlock(&t->lock);
        qp_finish(qp);
}

/* Free now, from a thread that is not inside a call on the QP. */
static void qp_release(struct ntbt_qp *qp)
{
        struct ntbt_transport *t = qp->t;
        unsigned num = qp->num;
        int none = FREE_REQ_NONE;

        if (tl_copy_qp == qp) {
                /* From a tx handler on the QP's own copy thread, which cannot
                 * join itself: the owner finishes (the event thread, or the
                 * poller's next ntbt_qp_poll/wait/free).  free_req before
                 * dying, both seq_cst: an owner call that sees dying also
                 * sees that it is to finish the free. */
                if (cas_sc(&qp->free_req, &none, FREE_REQ_OWNER) && !qp->poll_mode)
                        transport_kick(t);
                store_sc(&qp->dying, 1);
                return;
        }
        if (qp->poll_mode) {
                /* On the polling thread, or serialised with it (the rule for
                 * every poll-mode free): we are the owner. */
                store_sc(&qp->dying, 1);
                qp_close_owner(qp);
                qp_finish(qp);
                return;
        }
        if (tl_service == t) {
                /* From a handler on the event thread or a receive thread:
                 * the QP's owner finishes the free once the handler has
                 * returned (this very thread, or another one, which must
                 * not be waited for: it may be waiting for us).  free_req
                 * before dying, both seq_cst, as for the copy thread; the
                 * kick after both wakes an owner asleep on its doorbells. */
                cas_sc(&qp->free_req, &none, FREE_REQ_OWNER);
                store_sc(&qp->dying, 1);
                transport_kick(t);
                return;
        }
        if (qp_free_claim(qp)) {
                qp_free_claimed(qp);
                return;
        }
        /* The copy thread handed it to the event thread already: wait until
         * that let go of the number, without touching qp again. */
        pthread_mutex_lock(&t->lock);
        while (t->qps[num] == qp)
                pthread_cond_wait(&t->cond, &t->lock);
        pthread_mutex_unlock(&t->lock);
}

static int qp_call_leave(struct qp_call *c, int ret, int owner)
{
        struct ntbt_qp *qp = c->qp;

        tl_calls = c->up;
        /* c->free is set on the outermost call only; a copy thread's
         * hand-over is finished by the outermost owner call. */
        if (c->free || (owner && qp->poll_mode && !outer_call(qp) &&
                        load_sc(&qp->free_req) == FREE_REQ_OWNER)) {
                qp_release(qp);
                return -ESHUTDOWN;
        }
        return load_sc(&qp->dying) ? -ESHUTDOWN : ret;
}

void ntbt_qp_free(struct ntbt_qp *qp)
{
        struct qp_call *c;

        if (!qp)
                return;
        c = outer_call(qp);
        if (c) {
                /* From a handler that a library call on this thread runs:
                 * refuse everything from now on; that call releases the QP
                 * when it returns. */
                store_sc(&qp->dying, 1);
                c->free = 1;
                return;
        }
        qp_release(qp);
}

/* ---- link requests ---- */

int ntbt_qp_link_up(struct ntbt_qp *qp)
{
        if (load_sc(&qp->dying))
                return -ESHUTDOWN;
        store_sc(&qp->want_link, 1);
        if (!qp->poll_mode)
                transport_kick(qp->t);
        return 0;
}

int ntbt_qp_link_down(struct ntbt_qp *qp)
{
        struct qp_call call;

        if (load_sc(&qp->dying))
                return -ESHUTDOWN;
        /* From now on enqueue refuses; the owner sends LINK_DOWN and resets. */
        pthread_mutex_lock(&qp->tx_lock);
        qp->tx_closing = 1;
        pthread_mutex_unlock(&qp->tx_lock);
        store_sc(&qp->want_link, 0);
        store_sc(&qp->down_req, 1);
        if (!qp->poll_mode) {
                transport_kick(qp->t);
                return 0;
        }
        if (qp->in_handler)
                return 0; /* the ntbt_qp_poll running the handler does it */
        store_sc(&qp->down_req, 0);
        /* The down event runs inside: see ntbt_qp_poll. */
        qp_call_enter(&call, qp);
        qp_go_down(qp, 1, NTBT_QP_DOWN_LOCAL);
        return qp_call_leave(&call, 0, 1);
}

int ntbt_qp_link_is_up(struct ntbt_qp *qp)
{
        /* link_up first (seq_cst): up_epoch, stored before it, is then
         * visible, so the relaxed load below reads the session it came up in
         * (or a later one: either way the comparison is the answer). */
        if (!load_sc(&qp->link_up) || load_sc(&qp->dying))
                return 0;
        /* Up in a session the transport has left: a poll-mode QP that was
         * not polled since; its next poll takes it down. */
        return load_acquire(&qp->t->epoch) == load_relaxed(&qp->up_epoch);
}

unsigned ntbt_qp_num(struct ntbt_qp *qp)
{
        return qp->num;
}

uint32_t ntbt_qp_max_payload(struct ntbt_qp *qp)
{
        return load_sc(&qp->max_payload);
}

int ntbt_qp_poll(struct ntbt_qp *qp, int budget)
{
        struct qp_call call;
        int busy = 0, handshaking = 0, n = -ESHUTDOWN;

        if (!qp->poll_mode || budget < 0)
                return -EINVAL;
        /* The handlers run inside: a free from one of them is finished by
         * the outermost call of this thread on the QP (qp_call_leave). */
        qp_call_enter(&call, qp);
        if (!load_sc(&qp->dying)) {
                n = qp_service(qp, budget, &busy, &handshaking);
                if (qp->zc_rx)
                        zc_rx_flush(qp); /* releases since the last get */
                if (!load_sc(&qp->dying) && load_sc(&qp->down_req)) {
                        store_sc(&qp->down_req, 0);
                        qp_go_down(qp, 1, NTBT_QP_DOWN_LOCAL);
                }
        }
        return qp_call_leave(&call, n, 1);
}

int ntbt_qp_wait_rx(struct ntbt_qp *qp, int64_t timeout_ns)
{
        int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;
        struct ntbt_dev *dev = qp->t->dev;
        uint64_t bit = 1ull << qp->num;

        if (!qp->poll_mode)
                return -EINVAL;
        if (qp->zc_rx)
                zc_rx_flush(qp); /* the peer may wait for what we released */
        for (;;) {
                int64_t left;

                /* Anything but a quiet, linked ring needs the poller (a
                 * pending free too: ntbt_qp_poll finishes it). */
                if (qp->state != QP_UP || load_acquire(&qp->t->epoch) != qp->seen_epoch ||
                    load_sc(&qp->down_req) || load_sc(&qp->dying))
                        return 0;
                /* Clear, then look: a frame after the clear rings again. */
                ntbt_dev_db_clear(dev, bit);
                if (peer_frame_waiting(qp))
                        return 0;
                left = deadline - now_ns();
                if (left <= 0)
                        return -ETIMEDOUT;
                /* Wake at least every 20 ms to notice a link change. */
                ntbt_dev_db_wait(dev, bit, left < 20 * NS_PER_MS ? left : 20 * NS_PER_MS);
        }
}

int ntbt_qp_wait_link(struct ntbt_qp *qp, int64_t timeout_ns)
{
        int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;
        struct ntbt_transport *t = qp->t;

        if (qp->poll_mode) {
                struct qp_call call;
                int ret = 0;

                /* Handlers run in the polls below: see ntbt_qp_poll. */
                qp_call_enter(&call, qp);
                while (!ntbt_qp_link_is_up(qp)) {
                        if (ntbt_qp_poll(qp, 0) == -ESHUTDOWN)
                                break;
                        if (ntbt_qp_link_is_up(qp))
                                break;
                        if (now_ns() >= deadline) {
                                ret = -ETIMEDOUT;
                                break;
                        }
                        sleep_ns(NS_PER_MS);
                }
                return qp_call_leave(&call, ret, 1);
        }
        pthread_mutex_lock(&t->lock);
        while (!ntbt_qp_link_is_up(qp)) {
                struct timespec ts;
                int64_t until = deadline;

                if (load_sc(&qp->dying)) {
                        pthread_mutex_unlock(&t->lock);
                        return -ESHUTDOWN;
                }
                if (now_ns() >= deadline) {
                        pthread_mutex_unlock(&t->lock);
                        return -ETIMEDOUT;
                }
                if (until - now_ns() > 100 * NS_PER_MS)
                        until = now_ns() + 100 * NS_PER_MS;
                ts.tv_sec = (time_t)(until / NS_PER_SEC);
                ts.tv_nsec = (long)(until % NS_PER_SEC);
                pthread_cond_timedwait(&t->cond, &t->lock, &ts);
        }
        pthread_mutex_unlock(&t->lock);
        return 0;
}

static int wait_tx_body(struct ntbt_qp *qp, int want, int64_t timeout_ns)
{
        int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;
        struct spin_wait w;

        if (load_sc(&qp->dying))
                return -ESHUTDOWN;
        if (ntbt_qp_tx_free(qp) >= want)
                return 0;
        /* Waiting for the peer to consume: it must have been rung for
         * everything sent, NTBT_TX_MORE frames included. */
        tx_doorbell_pending(qp);
        spin_wait_init(&w, &qp->tx_spin);
        for (;;) {
                if (ntbt_qp_tx_free(qp) >= want) {
                        spin_wait_done(&w);
                        return 0;
                }
                if (load_sc(&qp->dying))
                        return -ESHUTDOWN;
                if (!ntbt_qp_link_is_up(qp))
                        return -ENOLINK;
                if (qp->poll_mode && ntbt_qp_poll(qp, 64) == -ESHUTDOWN)
                        return -ESHUTDOWN;
                if (now_ns() >= deadline)
                        return -ETIMEDOUT;
                /* The peer frees slots by writing rx_info, which rings no
                 * doorbell: spin, then yield, then sleep (util/spin.h). */
                spin_wait_pause(&w);
        }
}

int ntbt_qp_wait_tx(struct ntbt_qp *qp, int want, int64_t timeout_ns)
{
        struct qp_call call;

        if (want < 1)
                want = 1;
        /* Poll mode: handlers run in the polls inside (see ntbt_qp_poll). */
        qp_call_enter(&call, qp);
        return qp_call_leave(&call, wait_tx_body(qp, want, timeout_ns), qp->poll_mode);
}

/* ---- sending and receiving (the rings: tx.c, rx.c) ---- */

int ntbt_qp_tx_enqueue_burst(struct ntbt_qp *qp, const struct ntbt_tx_buf *v, unsigned n,
                             unsigned flags)
{
        struct qp_call call;
        int queued, tick, k;
        unsigned i;

        if (!v || !n)
                return -EINVAL;
        for (i = 0; i < n; i++)
                if (!v[i].len || !v[i].data)
                        return -EINVAL;
        if (load_sc(&qp->dying))
                return -ESHUTDOWN;
        k = tx_send(qp, v, n, flags, &queued, &tick);
        if (k < 0 || queued) {
                /* The copy thread completes what it was given. */
                if (tick)
                        qp_stats_tick(qp);
                return k;
        }
        /* Step 8, outside the ring's locks so the handler may enqueue again.
         * A handler may free the QP: the free waits for the end of this call
         * (qp_call_leave), and every buffer still gets its completion. */
        qp_call_enter(&call, qp);
        if (qp->h.tx)
                for (i = 0; i < (unsigned)k; i++)
                        qp->h.tx(qp, qp->ctx, v[i].buf_ctx, v[i].data, (int)v[i].len);
        if (tick)
                qp_stats_tick(qp);
        return qp_call_leave(&call, k, 0);
}

int ntbt_qp_tx_enqueue(struct ntbt_qp *qp, void *buf_ctx, const void *data, uint32_t len,
                       unsigned flags)
{
        struct ntbt_tx_buf b = {.buf_ctx = buf_ctx, .data = data, .len = len};
        int ret = ntbt_qp_tx_enqueue_burst(qp, &b, 1, flags);

        return ret < 0 ? ret : 0;
}

int ntbt_qp_tx_free(struct ntbt_qp *qp)
{
        if (load_sc(&qp->dying))
                return 0;
        return (int)tx_free(qp);
}

int ntbt_qp_rx_enqueue(struct ntbt_qp *qp, void *buf_ctx, void *data, uint32_t len)
{
        struct rx_buf b = {buf_ctx, data, len};

        if (!data || !len)
                return -EINVAL;
        /* After a free nothing is posted (it would never come back). */
        if (load_sc(&qp->dying))
                return -ESHUTDOWN;
        return rx_post(qp, &b);
}

int ntbt_qp_rx_remove(struct ntbt_qp *qp, void **buf_ctx, void **data, uint32_t *len)
{
        struct rx_buf b;
        int ret;

        if (load_sc(&qp->dying))
                return -ESHUTDOWN;
        if (ntbt_qp_link_is_up(qp))
                return -EBUSY;
        ret = rx_remove(qp, &b);
        if (ret)
                return ret;
        if (buf_ctx)
                *buf_ctx = b.ctx;
        if (data)
                *data = b.data;
        if (len)
                *len = b.len;
        return 0;
}

/* ---- zero copy (zc.c) ---- */

/* A zero-copy receive call may go on: 0, or why not. */
static int zc_rx_usable(struct ntbt_qp *qp, const struct ntbt_rx_frame *f)
{
        if (!f || !qp->zc_rx)
                return -EINVAL;
        if (load_sc(&qp->dying))
                return -ESHUTDOWN;
        /* A lost link is taken down by ntbt_qp_poll, as for any poll-mode QP;
         * acquire: pairs with the epoch's release (link.c), as in qp_service. */
        if (qp->state != QP_UP || load_acquire(&qp->t->epoch) != qp->seen_epoch)
                return -ENOLINK;
        return 0;
}

int ntbt_qp_rx_get(struct ntbt_qp *qp, struct ntbt_rx_frame *f)
{
        struct qp_call call;
        struct rx_stop stop;
        int ret;

        ret = zc_rx_usable(qp, f);
        if (ret)
                return ret;
        ret = zc_rx_next(qp, f, &stop);
        if (ret == -EAGAIN)
                zc_rx_flush(qp); /* idle: the peer may wait for our releases */
        if (ret != 1)
                return ret;
        /* The event handler runs inside: see ntbt_qp_poll. */
        qp_call_enter(&call, qp);
        qp_rx_stopped(qp, &stop);
        return qp_call_leave(&call, -ENOLINK, 1);
}

int ntbt_qp_rx_release(struct ntbt_qp *qp, struct ntbt_rx_frame *f)
{
        int ret = zc_rx_usable(qp, f);

        return ret ? ret : zc_rx_release(qp, f);
}

int ntbt_qp_tx_reserve_burst(struct ntbt_qp *qp, uint32_t len_max, void **bufs, unsigned n)
{
        if (load_sc(&qp->dying))
                return -ESHUTDOWN;
        /* Early answers; tx.c asks again under tx_lock as it takes the slots. */
        return zc_tx_reserve(qp, len_max, bufs, n, ntbt_qp_link_is_up(qp), ntbt_qp_max_payload(qp));
}

int ntbt_qp_tx_reserve(struct ntbt_qp *qp, uint32_t len_max, void **buf)
{
        int ret = ntbt_qp_tx_reserve_burst(qp, len_max, buf, 1);

        return ret > 0 ? 0 : ret;
}

int ntbt_qp_tx_commit_burst(struct ntbt_qp *qp, const uint32_t *lens, unsigned k, unsigned flags)
{
        int tick, ret;

        if (load_sc(&qp->dying))
                return -ESHUTDOWN;
        ret = zc_tx_commit(qp, lens, k, flags, &tick);
        if (tick)
                qp_stats_tick(qp);
        return ret;
}

int ntbt_qp_tx_commit(struct ntbt_qp *qp, uint32_t len, unsigned flags)
{
        return ntbt_qp_tx_commit_burst(qp, &len, 1, flags);
}

int ntbt_qp_tx_abort(struct ntbt_qp *qp)
{
        return zc_tx_abort(qp);
}

/* The first version of struct ntbt_qp_stats ends at its last counter (src/util/abi.h). */
#define QP_STATS_VER0 ABI_SIZE_TO(struct ntbt_qp_stats, resets)

int ntbt_qp_stats(struct ntbt_qp *qp, struct ntbt_qp_stats *out)
{
        struct ntbt_qp_stats s, *st = &s;

        if (!out || abi_out_ok(out, QP_STATS_VER0))
                return -EINVAL;
        memset(st, 0, sizeof(*st));
        st->size = sizeof(*st);
        st->qp_num = qp->num;
        /* The RX and TX counters; the SNAP ones follow, the ZERO ones stay 0. */
#define QP_CTR_GET(name, source, description)                                                      \
        QP_CTR_PICK_##source(st->name = STAT_GET(qp, name);, st->name = STAT_GET(qp, name);)
        NTBT_QP_COUNTERS(QP_CTR_GET)
#undef QP_CTR_GET
        pthread_mutex_lock(&qp->tx_lock);
        st->tx_index = qp->tx_index;
        st->tx_max_entry = qp->tx_g.entries;
        st->rx_max_entry = qp->tx_g.entries ? qp->rx_g.entries : 0;
        if (qp->remote_rx_info)
                st->rri = load_acquire_u32(qp->remote_rx_info);
        st->free_tx = qp->tx_up ? tx_free_locked(qp) : 0;
        pthread_mutex_unlock(&qp->tx_lock);
        st->link = (uint64_t)ntbt_qp_link_is_up(qp);
        return abi_out(out, st, sizeof(*st), QP_STATS_VER0);
}
