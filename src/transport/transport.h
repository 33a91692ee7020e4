/* SPDX-License-Identifier: MIT */
/*
 * Internal state of the transport and its queue pairs, and the calls
 * between the files of src/transport.  The files are layers, each calling
 * only the ones below it (docs/design.md section 1; tests/layers.py checks):
 *
 *   stats.c        the statistics file's reader (another process)
 *   link.c         the transport: open/close, handshake, the event thread
 *   qp.c           queue pairs: state machine, lifetime, the client calls
 *   zc.c           zero copy: frames read in place, a send into our buffer
 *   tx.c  rx.c     the transmit and receive rings
 *   stats_file.c   the statistics file's writer, handed whole records
 *   copy_thread.c  a job queue with its own thread
 *   geometry.c     the ring layout (wire.h: the frame header)
 *
 * A lower layer reports up by return value, or through a function pointer
 * the higher one gave it (the copy thread's jobs, the client's handlers).
 *
 * Ownership, the rule everything else follows:
 *  - transport-level state (handshake, window sizes, epoch) belongs to the
 *    event thread (link.c) and is published to QPs through `epoch`;
 *  - a QP's receive side and state machine belong to its *owner*: for an
 *    event-mode QP the receive thread num % rx_n (thread 0 is the event
 *    thread; link.c), for a poll-mode QP the polling thread (qp.c, rx.c);
 *    client calls reach the owner through the request flags;
 *  - a QP's transmit side is guarded by tx_lock (tx.c), taken by enqueuers
 *    and by the owner when the link changes.
 */
#ifndef NTBT_TRANSPORT_TRANSPORT_H
#define NTBT_TRANSPORT_TRANSPORT_H

#include <pthread.h>
#include <stdint.h>

#include <ntbt/transport.h>

#include "../util/barrier.h"
#include "../util/spin.h"
#include "copy_thread.h"
#include "geometry.h"
#include "stats_file.h"

/* NTBT_MAX_QPS: <ntbt/transport.h>. */
#define NTBT_MAX_MWS 8

enum qp_state {
        QP_DOWN,      /* not requested, or reset and not yet prepared */
        QP_WAIT_PEER, /* we sent LINK_DOWN: wait for the peer to re-request first */
        QP_HANDSHAKE, /* ring prepared, our QP_LINKS bit written, waiting for the peer's */
        QP_UP,
};

struct rx_buf {
        void *ctx;
        void *data;
        uint32_t len;
};

/* A growable FIFO of posted receive buffers. */
struct rx_ring {
        struct rx_buf *v;
        uint32_t cap, head, count;
};

/*
 * Posted receive buffers (rx.c): the shared queue, which any thread posts
 * to under its lock, in front of which sits the owner's cache (struct
 * ntbt_qp's rxc): the buffers the owner took from the queue in one go, and
 * those its own rx handler posts again while the queue is empty.  Every
 * cached buffer was posted before every queued one, so the owner uses them
 * cache first, in posting order; the cache goes back to the queue's front
 * before any other thread may pop (rx_cache_return).
 */
struct rxq {
        pthread_mutex_t lock;
        /* r.count is written under the lock, and read without it by the
         * owner's handler (rx_post): an atomic, relaxed access. */
        struct rx_ring r;
};

/*
 * The counters counted as frames move: NTBT_QP_COUNTERS's RX and TX ones
 * (<ntbt/transport.h>); the SNAP and ZERO ones are filled in by
 * ntbt_qp_stats.  QP_CTR_PICK_<source>(rx, tx) is rx for an RX counter, tx
 * for a TX one, and nothing for the others.
 */
#define QP_CTR_PICK_RX(rx, tx) rx
#define QP_CTR_PICK_TX(rx, tx) tx
#define QP_CTR_PICK_SNAP(rx, tx)
#define QP_CTR_PICK_ZERO(rx, tx)
#define QP_CTR_RX_FIELD(name, source, description) QP_CTR_PICK_##source(uint64_t name;, )
#define QP_CTR_TX_FIELD(name, source, description) QP_CTR_PICK_##source(, uint64_t name;)

/*
 * Each counter has one writer at a time: the QP's owner for the RX ones;
 * for the TX ones the holder of tx_lock (tx_ring_full, tx_err_rri) or of
 * frame_lock (the frame writer: tx_pkts, tx_bytes, tx_memcpy), whose mutex
 * orders one writer after the next.  Other threads only read them
 * (ntbt_qp_stats, for itself or for the statistics file).
 *
 * The two groups start cache lines of their own (and the QP is allocated
 * aligned for it, qp.c): the owner counts each frame it receives while a
 * sender, on another core, counts each one it sends; on one line, every
 * count would take the line from the other side.
 */
struct qp_counters {
        _Alignas(64) struct {
                NTBT_QP_COUNTERS(QP_CTR_RX_FIELD)
        };
        _Alignas(64) struct {
                NTBT_QP_COUNTERS(QP_CTR_TX_FIELD)
        };
};

/*
 * Relaxed is enough: a counter's writers are ordered by the owner or the
 * lock above, so an add need not be an atomic read-modify-write (a plain
 * load and store, no locked instruction on the hot path); the atomic
 * accesses only keep a concurrent reader from seeing a torn value (and are
 * not a data race).  Nothing is published through a counter: a reader wants
 * each value, not an order among them or with the ring, and a snapshot of
 * several is not one instant anyway.
 */
#define STAT_ADD(qp, field, n) store_relaxed(&(qp)->c.field, load_relaxed(&(qp)->c.field) + (n))
#define STAT_SET(qp, field, v) store_relaxed(&(qp)->c.field, (v))
#define STAT_GET(qp, field)    load_relaxed(&(qp)->c.field)

/* Slots reserved for a zero-copy send (tx_zc_reserve), under tx_lock: n
 * consecutive ones from slot, with ver values from ver (n 0: none), held
 * while the application writes them; gen and epoch as a tx_job's. */
struct tx_zc_slot {
        uint32_t n, slot, ver, gen, epoch;
};

/* A commit (tx_zc_commit): the first k held slots get lens[0..k-1] bytes,
 * from stage + i * stride, or none copied (stage NULL: written in place). */
struct tx_zc_send {
        const uint8_t *stage;
        size_t stride;
        const uint32_t *lens;
        uint32_t k;
};

/* A transmit job for the copy thread: a slot reserved under tx_lock. */
struct tx_job {
        uint32_t slot, ver, len;
        uint32_t gen;   /* qp->tx_gen when queued: a later link-down voids it */
        uint32_t epoch; /* the transport session it was reserved in (qp->up_epoch) */
        void *buf_ctx;
        const void *data;
};

/*
 * The groups that different threads write start cache lines of their own
 * (the QP is allocated aligned for it, qp.c): the owner's receive side, the
 * senders' transmit side, each counter group (struct qp_counters).
 */
struct ntbt_qp {
        /* Set at creation, then read-only (h.event: cleared by the owner on free). */
        struct ntbt_transport *t;
        unsigned num;
        int poll_mode;
        struct ntbt_qp_handlers h;
        void *ctx;

        /* Requests from client threads to the owner (seq_cst atomics). */
        int want_link; /* the client asked for the link */
        int down_req;  /* the client called link_down: send LINK_DOWN, reset */
        int free_req;  /* FREE_REQ_*: who finishes a free */
        int freed;     /* set by the owner thread once it let go (event mode) */
        int dying;     /* ntbt_qp_free was called: every later call is refused;
                        * seq_cst, read at the start of every call and ordered
                        * after free_req where both are set (qp.c) */

        /* Published for queries from any thread (atomics). */
        int link_up;
        uint32_t max_payload;

        /* Owner-only: the state machine and the receive ring. */
        _Alignas(64) enum qp_state state;
        /* When the handshake began, and whether the --qp hint was given
         * (qp_hint_peer_qps). */
        int64_t handshake_since;
        int hinted;
        uint32_t seen_epoch;
        int initiator; /* we sent LINK_DOWN last: see QP_WAIT_PEER */
        int in_handler;
        int64_t next_try, wait_deadline;
        /* Live statistics (qp.c, stats_file.c): the state last published
         * and a count of service calls. */
        enum qp_state stats_state;
        unsigned stats_svc;
        struct qp_geom rx_g;
        uint32_t rx_info_every; /* frames between rx_info writes in a walk */
        uint8_t *rx_win;        /* our inbound window holding the RX ring */
        uint32_t rx_index, rx_pkts;
        /* Posted buffers the owner took from rxq or its handler posted
         * (struct rxq); rx_held mirrors rxc.count, written by the owner
         * alone, read by ntbt_qp_rx_remove (an atomic: rx_cache_return
         * says why relaxed is enough). */
        struct rx_ring rxc;
        uint32_t rx_held;
        /* When the statistics are next due: a relaxed atomic, as senders
         * publish too (qp_stats_publish says why relaxed is enough). */
        int64_t stats_next;
        /* Zero-copy receive (zc.c), owner-only.  Frames handed out are the
         * slots from rx_index (the oldest held) up to zc_next; zc_skip marks
         * those consumed already (a refused length); zc_gen moves on every
         * reset and voids frames held from before. */
        int zc_rx;
        uint32_t zc_next, zc_next_pkts, zc_held, zc_gen, zc_released, zc_pending;
        uint8_t *zc_skip;
        size_t zc_skip_n;

        /* Posted receive buffers: clients and the owner, under its lock. */
        _Alignas(64) struct rxq rxq;

        /* Transmit side, under tx_lock. */
        _Alignas(64) pthread_mutex_t tx_lock;
        int tx_mode;                /* NTBT_TX_INLINE or NTBT_TX_THREAD */
        struct copy_thread *copier; /* set while the QP has a copy thread */
        /* The epoch whose session the QP last came up in: set by the owner
         * under tx_lock before tx_up; an atomic, as link_is_up reads it
         * without the lock (after its seq_cst load of link_up). */
        uint32_t up_epoch;
        int tx_up;      /* frames may be sent */
        int tx_closing; /* link_down called: nothing but LINK_DOWN goes out */
        int db_pending; /* frames sent with NTBT_TX_MORE and no doorbell yet */
        int rri_logged;
        struct qp_geom tx_g;
        uint32_t tx_index, tx_pkts;
        uint32_t tx_ticks;      /* frames accepted; a sender publishes stats every 64th */
        uint32_t tx_known_free; /* free slots as of the last rx_info read, less those taken since */
        struct spin_hint tx_spin; /* ntbt_qp_wait_tx's: how its waits ended (util/spin.h) */
        uint8_t *remote_rx_info;  /* in our inbound memory, any alignment; the peer writes it */
        int frame_urgent;         /* atomic: resets and closes waiting for frame_lock (tx.c) */
        /* Under frame_lock (taken after tx_lock, never before it): the frame
         * writer's state, in both modes.  tx_gen moves on every link reset
         * and voids jobs queued before it; written_* is the next slot and
         * ver not yet written, where a LINK_DOWN frame must go. */
        pthread_mutex_t frame_lock;
        uint32_t tx_gen, written_index, written_pkts;
        /* The copy thread's alone: frames written since its last doorbell,
         * the last one's DONE word and the tx_gen it was written in. */
        uint32_t job_unrung, job_gen;
        uint64_t job_done_off;
        /* Zero-copy send (zc.c): zc_tx_open (seq_cst) is claimed by the one
         * reservation open; its holder alone uses the staging buffer and
         * zc_in_place (the buffer is the slot in the window).  zc_slot,
         * under tx_lock (tx.c): the slot it holds; while held, tx_send
         * refuses other frames, which would leave a hole behind them. */
        int zc_tx_open, zc_in_place;
        uint32_t zc_len_max, zc_n; /* the open reservation's: len_max, slots held */
        size_t zc_stage_cap;
        void *zc_stage;
        struct tx_zc_slot zc_slot;

        struct qp_counters c;
};

struct ntbt_transport {
        struct ntbt_dev *dev;
        struct spin_hint rx_spin; /* the event thread's doorbell spin (util/spin.h) */
        struct ntbt_transport_opts o;
        uint32_t qp_count, mw_count;
        int ext_spad;                    /* ntbt's own advertisement (wire.h NTBT_EXT), or -1 */
        uint64_t out_size[NTBT_MAX_MWS]; /* our outbound (TX) window sizes, capped */
        uint64_t in_max[NTBT_MAX_MWS];   /* largest inbound translation */
        uint64_t in_align[NTBT_MAX_MWS];
        uint8_t *in_base[NTBT_MAX_MWS];
        /* Set by the event thread before an odd epoch is published. */
        uint64_t in_size[NTBT_MAX_MWS]; /* RX geometry size: the peer's, rounded up */

        /* Odd while the transport is up; every change is a release store that
         * publishes in_size; QPs read it with acquire. */
        uint32_t epoch;

        /* Event thread only. */
        uint32_t up_link_seq;
        int64_t next_try, last_link_check;
        int link_was_up;

        pthread_t thread;
        int thread_started;
        int stop;
        /* Receive threads: event-mode QP q is serviced by thread q % rx_n;
         * thread 0 is the event thread, rx[1..rx_n-1] are started after it.
         * rx_n is set at open and read-only after; rx_started counts the
         * ones to join (the opening thread's alone). */
        uint32_t rx_n, rx_started;
        struct rx_thread {
                struct ntbt_transport *t;
                pthread_t thread;
                uint32_t idx;
                struct spin_hint spin; /* its doorbell spin's (util/spin.h) */
        } rx[NTBT_MAX_QPS];

        /* Guards qps[], the mismatch text and cond's predicates. */
        pthread_mutex_t lock;
        pthread_cond_t cond; /* QP link changes and frees; CLOCK_MONOTONIC */
        struct ntbt_qp *qps[NTBT_MAX_QPS];
        char mismatch[256];
        int mismatch_set, fail_count, mismatch_logged;

        /* Our QP_LINKS value, written whole to the peer's spad[1]. */
        pthread_mutex_t spad_lock;
        uint32_t qp_links;

        /* QPs whose LINK_DOWN frame went out (bit per QP): close lingers
         * until the peer has seen each (see transport_linger). */
        uint32_t lingering;

        /* Live statistics file (stats_file.c); NULL if it could not be made. */
        struct stats_file *stats;
};

static inline int transport_epoch_up(uint32_t epoch)
{
        return epoch & 1;
}

static inline void transport_kick(struct ntbt_transport *t)
{
        /* Wakes the event thread's doorbell wait so it looks at requests now. */
        ntbt_dev_db_wait_interrupt(t->dev);
}

/* The event thread's handshake attempt (link.c): advertise ours, check the
 * peer's scratchpads; up (odd epoch) only if every value is valid.  Not
 * static so that tests/fuzz can drive it. */
void transport_try_up(struct ntbt_transport *t);

/* ---- qp.c: queue pairs (called by link.c) ---- */

/* free_req values. */
enum {
        FREE_REQ_NONE = 0,
        FREE_REQ_WAIT = 1,  /* a client thread waits for the event thread to let go */
        FREE_REQ_OWNER = 2, /* the owner finishes the free alone (after a handler's free) */
};

/* The owner's work on one QP; returns frames received, sets *busy if more
 * are waiting, *handshaking if the QP waits for a timer. */
int qp_service(struct ntbt_qp *qp, int budget, int *busy, int *handshaking);
/* Event or receive thread: finish a free requested by another thread or a
 * handler. */
void qp_release_from_owner(struct ntbt_qp *qp);
/* Called first by each thread that services t's event-mode QPs (the event
 * thread and the receive threads): a free from a handler on it is deferred
 * to the QP's owner, never waited for (two such threads could wait for
 * each other). */
void qp_service_thread_enter(struct ntbt_transport *t);
/* ntbt_transport_close, under t->lock: claim an event-mode QP's free (0 if
 * the event thread finishes it alone); then, unlocked, finish it. */
int qp_free_claim(struct ntbt_qp *qp);
void qp_free_claimed(struct ntbt_qp *qp);
/* transport_down: every QP_LINKS bit is gone with the session. */
void qp_links_clear(struct ntbt_transport *t);

/* ---- tx.c: the transmit ring (called by qp.c; tx_session_fence by link.c) ---- */

/* Steps 2-7 for up to n frames: returns how many were taken, or -ENOLINK,
 * -EMSGSIZE (v[0] too long), -EAGAIN (no slot).  *queued: they went to the
 * copy thread, which completes them; else they are written and the caller
 * completes them.  *tick: a 64-frame mark was passed (statistics are due). */
int tx_send(struct ntbt_qp *qp, const struct ntbt_tx_buf *v, unsigned n, unsigned flags,
            int *queued, int *tick);
/* Copy thread: steps 3-7 for a queued job; returns its result (len, or
 * -ENOLINK if a link reset voided it).  tx_job_drained: the queue ran dry. */
/* The copy thread's batch of n jobs, in order, under one frame_lock: how
 * many it wrote (at least 1; fewer than n after TX_JOBS_BYTES), each one's
 * result (its length, or -ENOLINK) in res. */
unsigned tx_jobs_write(struct ntbt_qp *qp, const struct tx_job *j, unsigned n, int *res);
void tx_job_drained(struct ntbt_qp *qp);
/* Free slots now (0 unless frames may be sent). */
uint32_t tx_free(struct ntbt_qp *qp);
/* Ring for frames sent with NTBT_TX_MORE whose doorbell is still owed. */
void tx_doorbell_pending(struct ntbt_qp *qp);
/* Wait for every frame writer that read an old epoch (see transport_down). */
void tx_session_fence(struct ntbt_qp *qp);
/* Under tx_lock. */
uint32_t tx_free_locked(struct ntbt_qp *qp);
/* The LINK_DOWN frame; 1 if it went out. */
int tx_send_link_down_locked(struct ntbt_qp *qp);
void tx_reset_locked(struct ntbt_qp *qp);
void tx_rollback_locked(struct ntbt_qp *qp);

/*
 * Zero-copy send (zc.c), under tx_lock each.  Reserve: step 2 for up to n
 * frames (as many as the ring has free), their slots held (qp->zc_slot)
 * until the commit; how many (1..n), or -ENOLINK, -EMSGSIZE, -EOPNOTSUPP
 * (thread mode), -EAGAIN (no free slot, or the copy thread still writes);
 * wins[i]: slot i's payload in the window, or all NULL (the device does
 * not map it).  Commit: steps 3 and 5-7 for the first s->k held (the
 * payload, the application wrote in place or is copied from the stage),
 * the rest given back; 0, or -ENOLINK (a link reset voided the slots:
 * nothing written).  Either way no slot is held after it.  Abort gives them
 * all back.
 */
int tx_zc_reserve(struct ntbt_qp *qp, uint32_t len_max, void **wins, uint32_t n);
int tx_zc_commit(struct ntbt_qp *qp, const struct tx_zc_send *s, unsigned flags, int *tick);
void tx_zc_abort(struct ntbt_qp *qp);

/* ---- rx.c: the receive ring (called by qp.c) ---- */

/* Why a walk stopped early, for the caller to act on (qp.c). */
struct rx_stop {
        enum {
                RX_STOP_NONE,      /* budget, empty ring, no buffer, or a request */
                RX_STOP_LINK_DOWN, /* the peer's LINK_DOWN frame (consumed) */
                RX_STOP_BAD_FLAGS, /* slot's flags has undefined bits (value) */
                RX_STOP_BAD_VER,   /* slot's ver is value, expected want */
        } why;
        uint32_t slot, value, want;
};

/* The owner, with the QP up: walk the ring, up to budget frames, each to a
 * posted buffer and the rx handler; returns frames delivered. */
int rx_process(struct ntbt_qp *qp, int budget, struct rx_stop *stop);
/* Posted buffers (struct rxq): rxq_init/rxq_destroy set up and free both
 * the queue and the owner's cache. */
void rxq_init(struct ntbt_qp *qp);
void rxq_destroy(struct ntbt_qp *qp);
/* Any thread: post a buffer (0 or -ENOMEM). */
int rx_post(struct ntbt_qp *qp, const struct rx_buf *b);
/* Any thread, the QP down: take the oldest posted buffer back; -ENOENT
 * when none, -EBUSY while the owner still holds buffers (it has not yet
 * seen the link go down). */
int rx_remove(struct ntbt_qp *qp, struct rx_buf *b);
/* The owner, before anything that lets another thread pop (the QP leaves
 * QP_UP, a free): its cache back to the front of the queue. */
void rx_cache_return(struct ntbt_qp *qp);
/* The end of a free, the owner gone: the oldest buffer left, cache first;
 * -ENOENT when none. */
int rx_take_any(struct ntbt_qp *qp, struct rx_buf *b);

/* ---- zc.c: zero copy, on the rings (called by qp.c) ---- */

/* The owner: forget what the ring handed out (a reset or a new ring);
 * flush: write a pending rx_info first (the session still current). */
void zc_rx_reset(struct ntbt_qp *qp, int flush);
/* The owner: the next frame (0), -EAGAIN, -EMSGSIZE, or a stop (1, with
 * stop->why set, as rx_process reports it). */
int zc_rx_next(struct ntbt_qp *qp, struct ntbt_rx_frame *f, struct rx_stop *stop);
int zc_rx_release(struct ntbt_qp *qp, const struct ntbt_rx_frame *f);
void zc_rx_flush(struct ntbt_qp *qp);
/* up, max_payload: the QP's now (qp.c knows them). */
int zc_tx_reserve(struct ntbt_qp *qp, uint32_t len_max, void **bufs, uint32_t n, int up,
                  uint32_t max_payload);
/* *tick as tx_send's. */
int zc_tx_commit(struct ntbt_qp *qp, const uint32_t *lens, uint32_t k, unsigned flags, int *tick);
int zc_tx_abort(struct ntbt_qp *qp);
void zc_destroy(struct ntbt_qp *qp);

#endif
