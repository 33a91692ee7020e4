/* SPDX-License-Identifier: MIT */
/*
 * Internal state of the transport and its queue pairs.
 *
 * Ownership, the rule everything else follows:
 *  - transport-level state (handshake, window sizes, epoch) belongs to the
 *    event thread (link.c) and is published to QPs through `epoch`;
 *  - a QP's receive side and state machine belong to its *owner*: the event
 *    thread for event-mode QPs, the polling thread for poll-mode QPs (qp.c,
 *    rx.c); client calls reach the owner through the request flags;
 *  - a QP's transmit side is guarded by tx_lock (tx.c), taken by enqueuers
 *    and by the owner when the link changes.
 */
#ifndef NTBT_TRANSPORT_TRANSPORT_H
#define NTBT_TRANSPORT_TRANSPORT_H

#include <pthread.h>
#include <stdint.h>

#include <ntbt/transport.h>

#include "copy_thread.h"
#include "geometry.h"

#define NTBT_MAX_QPS 32 /* QP_LINKS (spad[1]) holds one bit per QP */
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

/* Posted receive buffers: a growable FIFO shared by the client and the owner. */
struct rxq {
        pthread_mutex_t lock;
        struct rx_buf *v;
        uint32_t cap, head, count;
};

/* Counters: each has one writer at a time (the owner for rx_*, the tx_lock
 * holder for tx_*), readers use relaxed loads: a snapshot needs no order. */
struct qp_counters {
        uint64_t rx_bytes, rx_pkts, rx_memcpy, rx_ring_empty, rx_err_no_buf, rx_err_oflow,
            rx_err_ver, rx_err_flags, rx_index;
        uint64_t tx_bytes, tx_pkts, tx_memcpy, tx_ring_full, tx_err_rri;
        uint64_t resets;
};

#define STAT_ADD(qp, field, n)                                                                     \
        __atomic_store_n(&(qp)->c.field, __atomic_load_n(&(qp)->c.field, __ATOMIC_RELAXED) + (n),  \
                         __ATOMIC_RELAXED)
#define STAT_SET(qp, field, v) __atomic_store_n(&(qp)->c.field, (v), __ATOMIC_RELAXED)
#define STAT_GET(qp, field)    __atomic_load_n(&(qp)->c.field, __ATOMIC_RELAXED)

struct ntbt_qp {
        struct ntbt_transport *t;
        unsigned num;
        /* Owner only: when the handshake began, and whether the --qp hint
         * was given (qp_hint_peer_qps). */
        int64_t hs_since;
        int hinted;
        int poll_mode;
        struct ntbt_qp_handlers h;
        void *ctx;

        /* Requests from client threads to the owner (seq_cst atomics). */
        int want_link; /* the client asked for the link */
        int down_req;  /* the client called link_down: send LINK_DOWN, reset */
        int free_req;  /* FREE_REQ_*: who finishes a free */
        int freed;     /* set by the event thread once it let go (event mode) */
        int dying;     /* ntbt_qp_free was called: every later call is refused;
                        * seq_cst, read at the start of every call and ordered
                        * after free_req where both are set (qp.c) */

        /* Owner-only. */
        enum qp_state state;
        /* Live statistics (stats.c).  stats_state and stats_svc: owner
         * only, the state last published and a count of service calls.
         * stats_next: a relaxed atomic, as senders publish too. */
        enum qp_state stats_state;
        unsigned stats_svc;
        int64_t stats_next;
        uint32_t seen_epoch;
        /* The epoch whose session the QP last came up in: set by the owner
         * under tx_lock before tx_up; a relaxed atomic, as link_is_up reads
         * it without the lock (after its seq_cst load of link_up). */
        uint32_t up_epoch;
        int initiator; /* we sent LINK_DOWN last: see QP_WAIT_PEER */
        int in_handler;
        int64_t next_try, wait_deadline;
        struct qp_geom rx_g;
        uint32_t rx_info_every; /* owner: frames between rx_info writes in a walk */
        int copy_urgent;        /* atomic: closers waiting for copy_lock (tx.c) */
        uint8_t *rx_win;        /* our inbound window holding the RX ring */
        uint32_t rx_index, rx_pkts;

        /* Transmit side, under tx_lock. */
        pthread_mutex_t tx_lock;
        int tx_mode;            /* NTBT_TX_INLINE or NTBT_TX_THREAD */
        struct copy_thread *ct; /* set while the QP has a copy thread */
        /* Under copy_lock (taken after tx_lock, never before it): the frame
         * writer's state.  tx_gen moves on every link reset and voids jobs
         * queued before it; written_* is the next slot and ver not yet
         * written, where a LINK_DOWN frame must go. */
        pthread_mutex_t copy_lock;
        uint32_t tx_gen, written_index, written_pkts;
        int tx_up;      /* frames may be sent */
        int tx_closing; /* link_down called: nothing but LINK_DOWN goes out */
        int db_pending; /* frames sent with NTBT_TX_MORE and no doorbell yet */
        int rri_logged;
        struct qp_geom tx_g;
        uint32_t tx_index, tx_pkts;
        uint32_t tx_ticks;      /* frames accepted; a sender publishes stats every 64th */
        uint32_t tx_known_free; /* free slots as of the last rx_info read, less those taken since */
        uint8_t *remote_rx_info; /* in our inbound memory, any alignment; the peer writes it */

        /* Published for queries from any thread (atomics). */
        int link_up;
        uint32_t max_payload;

        struct rxq rxq;
        struct qp_counters c;
};

struct ntbt_transport {
        struct ntbt_dev *dev;
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

        /* Live statistics file (stats.c); NULL if it could not be made. */
        void *stats;
        size_t stats_size;
        char stats_path[4200];
};

static inline int transport_epoch_up(uint32_t epoch)
{
        return epoch & 1;
}

/* free_req values. */
enum {
        FREE_REQ_NONE = 0,
        FREE_REQ_WAIT = 1,  /* a client thread waits for the event thread to let go */
        FREE_REQ_OWNER = 2, /* the owner finishes the free alone (after a handler's free) */
};

/*
 * A library call that may run the QP's handlers on this thread (poll,
 * waits, inline enqueue): kept on a per-thread stack so that a free from
 * a handler is deferred to the outermost such call (qp.c).
 */
struct qp_call {
        struct ntbt_qp *qp;
        struct qp_call *up;
        int free; /* ntbt_qp_free was called inside this (outermost) call */
};

void qp_call_enter(struct qp_call *c, struct ntbt_qp *qp);
/* Leave the call; if a free was requested inside it (or, for an owner call
 * of a poll-mode QP, handed over by the copy thread) release the QP now and
 * return -ESHUTDOWN; -ESHUTDOWN also once the QP is dying; else ret. */
int qp_call_leave(struct qp_call *c, int ret, int owner);
/* Called once by a copy thread: frees from its handlers go to the owner. */
void qp_copy_thread_started(struct ntbt_qp *qp);
/* ntbt_transport_close, under t->lock: claim an event-mode QP's free (0 if
 * the event thread finishes it alone); then, unlocked, finish it. */
int qp_free_claim(struct ntbt_qp *qp);
void qp_free_claimed(struct ntbt_qp *qp);

/* link.c */
void transport_kick(struct ntbt_transport *t);
void transport_qp_links(struct ntbt_transport *t, unsigned q, int set);
/* The event thread's handshake attempt: advertise ours, check the peer's
 * scratchpads; up (odd epoch) only if every value is valid (tests/fuzz). */
void transport_try_up(struct ntbt_transport *t, uint32_t link_seq);

/* qp.c: the owner's work on one QP; returns frames received, sets *busy if
 * more are waiting, *handshaking if the QP waits for a timer. */
int qp_service(struct ntbt_qp *qp, int budget, int *busy, int *handshaking);
void qp_go_down(struct ntbt_qp *qp, int send_link_down, int reason);
void qp_protocol_reset(struct ntbt_qp *qp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Event thread: finish a free requested by another thread or a handler. */
void qp_release_from_owner(struct ntbt_qp *qp);
void qp_destroy(struct ntbt_qp *qp);

/* tx.c */
void tx_ring_pending(struct ntbt_qp *qp);
/* 1 while epoch is the transport's epoch now: frames of that session may go out. */
int tx_session_current(struct ntbt_qp *qp, uint32_t epoch);
/* Wait for every frame writer that read an old epoch (see transport_down). */
void tx_session_fence(struct ntbt_qp *qp);

/* stats.c */
void stats_open(struct ntbt_transport *t);
void stats_close(struct ntbt_transport *t);
void stats_transport_up(struct ntbt_transport *t, int up);
int stats_publish(struct ntbt_qp *qp, int64_t now, int owner);
void stats_tx_tick(struct ntbt_qp *qp);
void stats_qp_gone(struct ntbt_transport *t, unsigned num);

/* rx.c */
int rx_process(struct ntbt_qp *qp, int budget);
void rxq_init(struct rxq *q);
void rxq_destroy(struct rxq *q);
int rxq_push(struct rxq *q, const struct rx_buf *b);
int rxq_pop(struct rxq *q, struct rx_buf *b);

/* tx.c */
uint32_t tx_free_locked(struct ntbt_qp *qp);
void tx_send_link_down_locked(struct ntbt_qp *qp);
void tx_reset_locked(struct ntbt_qp *qp);
void tx_rollback_locked(struct ntbt_qp *qp);

#endif
