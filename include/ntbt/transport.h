/* SPDX-License-Identifier: MIT */
/*
 * The NTB transport (protocol v4, spec/ntb-transport-v4.md): queue pairs
 * (QPs) over an NTB device, the kernel's ntb_transport client API in
 * userspace form.
 *
 * Threads.  Each transport has one event thread.  It watches the device
 * link and runs the transport-level handshake for every QP.  A QP is driven
 * in one of two ways, chosen at creation:
 *
 *  - event mode (default): the event thread also runs the QP's handshake
 *    and receive path and calls its rx and event handlers.
 *  - poll mode: the application calls ntbt_qp_poll() from one thread of its
 *    own; the rx and event handlers run inside that call, and no library
 *    thread touches the QP.  In poll mode ntbt_qp_link_up/link_down/free
 *    must be called from the polling thread (or serialised with it).
 *
 * The tx handler runs on the thread that called ntbt_qp_tx_enqueue(_burst) in
 * inline mode, and on the QP's copy thread in thread mode, right after the
 * frame is in the peer's window; in both modes completions come in the
 * order the buffers were enqueued.  In thread mode the buffer must stay
 * valid until its completion.  Handlers may call
 * back into the QP (post a buffer, enqueue, link down, free: see
 * ntbt_qp_free for when a QP freed from its own handler goes away).
 * ntbt_qp_tx_enqueue(_burst) may be called from any thread; calls on one QP are
 * serialised internally.
 *
 * A QP's link belongs to one transport session: once the transport link
 * resets (the peer restarted, say), sends on it fail with -ENOLINK until the
 * QP has linked up again, even on a poll-mode QP nobody polled meanwhile,
 * and frames queued to the copy thread before the reset complete with
 * -ENOLINK.  Nothing reserved in one session reaches the peer's next one.
 *
 * Every function returns 0 (or a documented non-negative value) or a
 * negative errno.
 */
#ifndef NTBT_TRANSPORT_H
#define NTBT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <ntbt/dev.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ntbt_transport;
struct ntbt_qp;

/* The most queue pairs a transport offers: the QP_LINKS scratchpad (spad[1],
 * spec section 4) holds one bit per QP.  QP numbers run 0 to NTBT_MAX_QPS - 1. */
#define NTBT_MAX_QPS 32

/* Options of a transport; zero fields take the defaults (the kernel's). */
struct ntbt_transport_opts {
        uint32_t size;          /* sizeof(struct ntbt_transport_opts): <ntbt/ntbt.h> */
        uint32_t transport_mtu; /* largest frame, default 65536 */
        uint32_t max_qps;       /* the kernel's max_num_clients, 0 to NTBT_MAX_QPS, default 0
                                 * (one per window) */
        uint32_t flags;         /* NTBT_TRANSPORT_* */
        uint64_t max_mw_size;   /* cap on each window's size, default 0 (none) */
        int tx_mode;            /* default copy mode of new QPs (0: NTBT_TX_INLINE) */
        /* Ignored: the first version's tail padding, which an older caller's
         * size (32) covers and may not have zeroed. */
        uint32_t reserved0;
        /*
         * Threads that receive for event-mode QPs (the kernel runs a tasklet
         * per QP): QP i is serviced by thread i % n, thread 0 being the
         * event thread, which also runs the link.  0: automatic,
         * min(QPs, max(1, online CPUs / 2)), so a 2-core machine keeps the
         * one thread; N: at most N (never more than the QPs).  Handlers of
         * different QPs may then run at once on different threads; those of
         * one QP always on the same one.  Poll-mode QPs are not affected.
         */
        uint32_t rx_threads;
};

/*
 * UNSAFE, for demonstrations only: skip the flush (barrier + read-back)
 * between the DONE write and the doorbell.  On a device whose doorbell can
 * overtake window writes (pcie:) frames then stall.  Logged as a warning.
 */
#define NTBT_TRANSPORT_UNSAFE_NO_FLUSH 0x1u

/*
 * Start a transport on an open device: enables the device link and starts
 * the event thread.  The device stays the caller's; close the transport
 * first.  -EINVAL if the device has fewer than 6 scratchpads or the
 * options cannot be met (logged).
 */
int ntbt_transport_open(struct ntbt_dev *dev, const struct ntbt_transport_opts *opts,
                        struct ntbt_transport **out);
/* Free every QP still open (as ntbt_qp_free), stop the event thread, clear our scratchpads. */
void ntbt_transport_close(struct ntbt_transport *t);
/* Number of QPs this transport offers, 1 to NTBT_MAX_QPS (same on both
 * sides, or the handshake fails). */
int ntbt_transport_qp_count(struct ntbt_transport *t);
/* Threads receiving for event-mode QPs (the opts' rx_threads resolved), 1 to
 * the QP count. */
int ntbt_transport_rx_threads(struct ntbt_transport *t);
/* 1 while the transport-level handshake has completed, 0 otherwise. */
int ntbt_transport_link_is_up(struct ntbt_transport *t);
/*
 * Why the handshake does not complete: writes a line naming what does not
 * match (version, QP count, window count or size) into buf and returns 1;
 * returns 0 when nothing is known to be wrong.
 */
int ntbt_transport_mismatch(struct ntbt_transport *t, char *buf, size_t len);

/* Why a QP's link went down (the `reason` of the event handler). */
enum ntbt_qp_event_reason {
        NTBT_QP_UP = 0,
        NTBT_QP_DOWN_LOCAL = 1,     /* our client called ntbt_qp_link_down/free */
        NTBT_QP_DOWN_PEER = 2,      /* the peer sent LINK_DOWN (it closed the QP) */
        NTBT_QP_DOWN_LINK_LOST = 3, /* the device link or transport handshake went away */
        NTBT_QP_DOWN_PROTOCOL = 4,  /* the peer broke the protocol; the QP was reset */
};

struct ntbt_qp_handlers {
        /*
         * A posted receive buffer comes back: len bytes of payload (>= 0),
         * or a negative errno: -EMSGSIZE (the frame was larger than the
         * buffer or the ring's payload; the frame is dropped and counted),
         * -ECANCELED (the QP is being freed).
         */
        void (*rx)(struct ntbt_qp *qp, void *qp_ctx, void *buf_ctx, void *data, int len);
        /* A transmit buffer may be reused: len as enqueued, or a negative errno (not sent). */
        void (*tx)(struct ntbt_qp *qp, void *qp_ctx, void *buf_ctx, const void *data, int len);
        /* The QP's link changed: up is 1 or 0, reason an enum ntbt_qp_event_reason. */
        void (*event)(struct ntbt_qp *qp, void *qp_ctx, int up, int reason);
};

#define NTBT_QP_ANY (-1)

enum ntbt_tx_mode {
        NTBT_TX_DEFAULT = 0, /* the transport's tx_mode */
        NTBT_TX_INLINE = 1,  /* the enqueuing thread copies into the window */
        NTBT_TX_THREAD = 2,  /* a copy thread per QP does it (tx_memcpy_offload) */
};

struct ntbt_qp_opts {
        uint32_t size;  /* sizeof(struct ntbt_qp_opts): <ntbt/ntbt.h> */
        int qp_num;     /* a QP number, or NTBT_QP_ANY (0 also means QP 0) */
        int poll;       /* 1: poll mode; 0: event mode */
        int tx_mode;    /* enum ntbt_tx_mode; NTBT_TX_DEFAULT takes the transport's */
        unsigned flags; /* NTBT_QP_*; older callers' shorter opts leave it 0 */
};

/* Zero-copy receive: frames are read in place (ntbt_qp_rx_get); poll mode only. */
#define NTBT_QP_ZC_RX 0x1u

/*
 * Create a QP.  opts may be NULL (event mode, lowest free QP).  -EBUSY if
 * the QP is taken, -ENOSPC if none is free, -EINVAL for a bad number, an
 * unknown flag, or NTBT_QP_ZC_RX without poll.
 * The QP starts with its link not requested: call ntbt_qp_link_up.
 */
int ntbt_qp_create(struct ntbt_transport *t, const struct ntbt_qp_opts *opts,
                   const struct ntbt_qp_handlers *h, void *qp_ctx, struct ntbt_qp **out);
/*
 * Close the QP (LINK_DOWN frame to the peer if it was up) and free it.
 * Posted receive buffers come back through the rx handler with -ECANCELED;
 * transmit buffers still queued to the copy thread complete through the tx
 * handler with an error (-ENOLINK or -ECANCELED).  In event mode it waits
 * for the event thread to let go of the QP.  As with free(), no other call
 * on the QP may be in progress on another thread, or follow.
 *
 * Lifetime rule for a free from one of the QP's own handlers (rx, tx,
 * event; any thread that runs them): the free is deferred, never refused.
 * It returns at once; from then on every call on the QP fails with
 * -ESHUTDOWN (and ntbt_qp_link_is_up returns 0) without sending, posting or
 * waiting, and no handler is called again except to hand back buffers.
 * The QP is released once the library is done with it, and the pointer is
 * invalid from then on; its number stays taken until every handler call has
 * returned, so a client that may not free its context before then can wait
 * for ntbt_qp_create to get the number again (or for ntbt_transport_close):
 *
 *  - on the event thread or a receive thread (rx_threads): by the QP's
 *    own thread, when the handler returns (a handler may free a QP that
 *    another receive thread serves: that one finishes it, and the free
 *    returns at once, as for its own QP);
 *  - inside a call on this QP (ntbt_qp_poll, ntbt_qp_wait_link,
 *    ntbt_qp_wait_tx, ntbt_qp_link_down, an inline
 *    ntbt_qp_tx_enqueue(_burst)): just before the outermost such call on
 *    that thread returns, and that call returns -ESHUTDOWN (the handlers
 *    have reported what was sent and received);
 *  - on the copy thread (a tx completion): by the QP's owner: the event
 *    thread, or in poll mode the polling thread's next ntbt_qp_poll,
 *    ntbt_qp_wait_link, ntbt_qp_wait_tx, ntbt_qp_link_down or ntbt_qp_free
 *    call on it, which returns -ESHUTDOWN (ntbt_qp_wait_rx returns 0 at
 *    once so that the poller gets there).
 *
 * Deferring keeps one rule for every context and never leaves a buffer
 * unreturned; refusing (-EBUSY) would make every client build its own
 * hand-off to another thread.  What the library cannot do is wait for
 * other application threads: a free from a handler, like any free, must
 * not overlap their calls on the QP (a tx handler on the copy thread runs
 * while the client may be enqueuing on another thread: the client orders
 * the two).
 */
void ntbt_qp_free(struct ntbt_qp *qp);

/*
 * Post a receive buffer of len bytes, from any thread; buf_ctx comes back
 * with it.  Buffers are used in the order they were posted (posts made
 * concurrently on several threads in some order among them).
 */
int ntbt_qp_rx_enqueue(struct ntbt_qp *qp, void *buf_ctx, void *data, uint32_t len);
/*
 * Take a posted buffer back while the QP is down, oldest first: 0, -ENOENT
 * when none, -EBUSY while up, and after a link loss until the QP's owner has
 * taken the QP down (the event thread does so at once, a poll-mode QP in
 * its next ntbt_qp_poll).
 */
int ntbt_qp_rx_remove(struct ntbt_qp *qp, void **buf_ctx, void **data, uint32_t *len);

/* More frames follow at once: do not ring the doorbell for this one. */
#define NTBT_TX_MORE 0x1u

/*
 * Send len bytes (1..ntbt_qp_max_payload).  Returns 0 when the frame was
 * accepted (the tx handler reports when the buffer is free), -ENOLINK if
 * the QP is down, -EMSGSIZE if too long, -EINVAL if len is 0, -EAGAIN if no
 * slot is free.  With NTBT_TX_MORE the doorbell waits for the next frame
 * sent without it (a burst rings once); an -EAGAIN rings it anyway, and so
 * does ntbt_qp_wait_tx.
 */
int ntbt_qp_tx_enqueue(struct ntbt_qp *qp, void *buf_ctx, const void *data, uint32_t len,
                       unsigned flags);

/* One buffer of a burst. */
struct ntbt_tx_buf {
        void *buf_ctx;
        const void *data;
        uint32_t len;
};

/*
 * Send v[0..n-1] in order, taking the QP's locks once and ringing the
 * doorbell once after the last frame (not at all with NTBT_TX_MORE).
 * Returns how many were accepted from the front of v (1..n): fewer than n
 * when the ring (or the copy thread's queue) fills up, or before the first
 * buffer longer than the max payload.  Each accepted buffer gets its tx
 * handler call, in order, as with ntbt_qp_tx_enqueue.  Errors, when none
 * was accepted: -EINVAL (n is 0, or any buffer has no data or length 0;
 * then none is sent), -ENOLINK, -EMSGSIZE (v[0] too long), -EAGAIN.
 */
int ntbt_qp_tx_enqueue_burst(struct ntbt_qp *qp, const struct ntbt_tx_buf *v, unsigned n,
                             unsigned flags);

/*
 * Zero-copy receive (a QP created with NTBT_QP_ZC_RX; on the polling
 * thread).  ntbt_qp_poll then runs the handshake and link changes only;
 * frames are taken here, in order, without a copy: data points at the
 * payload in our inbound window.  Several may be held at once; each is
 * given back with ntbt_qp_rx_release, in the order they were got (another
 * order: -EINVAL).  Until then the peer may not reuse the slot (its ring
 * fills, and it sees -EAGAIN).  The peer is not trusted: it can write the
 * window at any time, so treat the bytes as untrusted input that may change
 * while you read them (copy what you check before you use it).  After the
 * link goes down the pointers are invalid and a release says -ENOLINK.
 */
struct ntbt_rx_frame {
        const void *data; /* the payload, in the window */
        uint32_t len;
        uint32_t priv[3]; /* the library's */
};

/*
 * The next frame into *f: 0; -EAGAIN when none is waiting (or every slot is
 * held); -EMSGSIZE for a frame whose length exceeds the ring's payload (the
 * peer broke the protocol: counted in rx_err_oflow, the slot consumed, get
 * the next); -ENOLINK while down (the link went away: ntbt_qp_poll takes
 * it down); -EINVAL on a QP without NTBT_QP_ZC_RX.  rx_info, which tells
 * the peer what we released, is written every quarter ring of releases,
 * and whenever a get finds nothing, a poll or a wait_rx.
 */
int ntbt_qp_rx_get(struct ntbt_qp *qp, struct ntbt_rx_frame *f);
/* Give the oldest held frame back: 0, -EINVAL (not the oldest), -ENOLINK. */
int ntbt_qp_rx_release(struct ntbt_qp *qp, struct ntbt_rx_frame *f);

/*
 * Zero-copy send, from any thread, one reservation at a time per QP (an
 * inline-mode QP): ntbt_qp_tx_reserve takes the ring's next slot and gives
 * a buffer of len_max bytes to write the payload into, from its first byte;
 * ntbt_qp_tx_commit(qp, len, flags) sends its first len bytes (as
 * ntbt_qp_tx_enqueue does: same ordering, NTBT_TX_MORE; no tx handler call,
 * the buffer is the library's); ntbt_qp_tx_abort gives the slot back
 * unsent (no hole: the next frame takes it).
 *
 * Where the device maps the peer's window (shm, kdev:
 * ntbt_dev_peer_mw_map) the buffer is the slot itself, in the peer's
 * memory: nothing is copied, the commit writes the header, the DONE flag
 * and the doorbell.  Write it with ordinary stores (non-temporal ones need
 * a store fence before the commit), on the committing thread or ordered
 * before the commit by your own synchronisation; do not read it back
 * (device memory may be slow to read).  Elsewhere (the pcie model, which
 * a pointer would go around) it is a staging buffer the commit copies.
 *
 * While a reservation is open no other send goes out on the QP (they say
 * -EAGAIN): a frame behind an unwritten slot would wait for it.  So keep
 * it short.  reserve says -EBUSY (a reservation is open), -EOPNOTSUPP
 * (NTBT_TX_THREAD), -EINVAL (len_max 0), -EMSGSIZE, -ENOLINK, -EAGAIN (no
 * free slot: ntbt_qp_wait_tx, or the receiver has not released; nothing
 * is open then).  commit says -EINVAL (len 0 or no reservation) and
 * -EMSGSIZE (len > len_max), after which the reservation stays open;
 * -ENOLINK when the link went down since the reserve: nothing was sent,
 * the reservation is closed, and the buffer must not be written any more
 * (it may be the next session's ring).  abort: 0, -EINVAL with none open.
 */
int ntbt_qp_tx_reserve(struct ntbt_qp *qp, uint32_t len_max, void **buf);
int ntbt_qp_tx_commit(struct ntbt_qp *qp, uint32_t len, unsigned flags);
int ntbt_qp_tx_abort(struct ntbt_qp *qp);

/*
 * The same for several frames at once, which takes the QP's locks once and
 * rings the doorbell once for all of them (small messages want it: one
 * reserve and commit per frame costs more than its 64 bytes).
 * ntbt_qp_tx_reserve_burst takes up to n consecutive slots (fewer when
 * fewer are free) and gives each a buffer of len_max bytes, bufs[0..k-1];
 * it returns k (1..n), or an error as ntbt_qp_tx_reserve (and -EINVAL for n
 * 0).  ntbt_qp_tx_commit_burst(qp, lens, k, flags) sends the first k of
 * them, in order, lens[i] bytes from bufs[i], and gives the rest back
 * unsent (no hole); k is 1..the number reserved, or -EINVAL; any lens[i] 0
 * says -EINVAL, over len_max -EMSGSIZE, and then nothing is sent and the
 * reservation stays open.  ntbt_qp_tx_abort gives them all back.  A single
 * reserve is a burst of 1.
 */
int ntbt_qp_tx_reserve_burst(struct ntbt_qp *qp, uint32_t len_max, void **bufs, unsigned n);
int ntbt_qp_tx_commit_burst(struct ntbt_qp *qp, const uint32_t *lens, unsigned k, unsigned flags);

/*
 * Switch the QP's copy mode, also while traffic flows: frames keep their
 * order and none is lost.  Switching to NTBT_TX_THREAD starts the copy
 * thread; if it cannot be created the QP stays inline, the log says so,
 * and the call returns the error.
 */
int ntbt_qp_set_tx_mode(struct ntbt_qp *qp, int mode);
/* The QP's copy mode now (NTBT_TX_INLINE or NTBT_TX_THREAD). */
int ntbt_qp_tx_mode(struct ntbt_qp *qp);

/* Ask for the QP link (the handshake runs until the peer's client asks too). */
int ntbt_qp_link_up(struct ntbt_qp *qp);
/* Close the QP's link: a LINK_DOWN frame to the peer; the QP stays allocated. */
int ntbt_qp_link_down(struct ntbt_qp *qp);
/* 1 if up. */
int ntbt_qp_link_is_up(struct ntbt_qp *qp);
unsigned ntbt_qp_num(struct ntbt_qp *qp);
/* The largest message, once the QP has been up (0 before). */
uint32_t ntbt_qp_max_payload(struct ntbt_qp *qp);
/* Free transmit slots now (0 while down). */
int ntbt_qp_tx_free(struct ntbt_qp *qp);
/* Slots in the ring (entries - 1 are usable), 0 while down. */
int ntbt_qp_tx_entries(struct ntbt_qp *qp);

/*
 * Poll-mode QPs: run the handshake and receive up to budget frames.
 * Returns the number of frames received (>= 0).  -EINVAL on an event-mode
 * QP; -ESHUTDOWN when a handler freed the QP (it is gone: see ntbt_qp_free).
 */
int ntbt_qp_poll(struct ntbt_qp *qp, int budget);

/*
 * Poll-mode QPs: sleep on the QP's doorbell until a frame waits in the ring
 * or the link needs looking at (0: call ntbt_qp_poll), or timeout_ns
 * passes (-ETIMEDOUT).  Does not receive.
 */
int ntbt_qp_wait_rx(struct ntbt_qp *qp, int64_t timeout_ns);

/*
 * Block until the QP link is up (0) or timeout_ns passes (-ETIMEDOUT;
 * < 0 waits forever).  Poll-mode QPs are polled inside the call;
 * -ESHUTDOWN as for ntbt_qp_poll.
 */
int ntbt_qp_wait_link(struct ntbt_qp *qp, int64_t timeout_ns);
/*
 * Block until at least `want` transmit slots are free (0), the link is down
 * (-ENOLINK) or timeout_ns passes (-ETIMEDOUT).  The peer frees slots
 * without ringing, so this spins for up to a few microseconds (less after
 * waits that needed longer: the spin adapts), then yields the core at each
 * look for up to 200 us (a receiver sharing our core runs at once), then
 * sleeps in naps of 20 to 200 us; it never burns a core for long.
 * Poll-mode QPs are polled inside the call; -ESHUTDOWN as for ntbt_qp_poll.
 */
int ntbt_qp_wait_tx(struct ntbt_qp *qp, int want, int64_t timeout_ns);

/*
 * Per-QP counters: the one list of them, the kernel's debugfs names in spec
 * section 8's order, then ntbt's own.  struct ntbt_qp_stats below, the
 * statistics file (<ntbt/stats.h>, docs/stats.md, ntbt_stats_counter_name)
 * and the library's own counting are all generated from it, in this order.
 * A new counter is one line, at the end (the counters before it keep their
 * offsets and indices).
 *
 * X(name, source, description), source being where the value comes from:
 *   RX    counted by the QP's receive side (its owner) as frames arrive
 *   TX    counted by the transmit side as frames go out
 *   SNAP  read from the QP's state when the snapshot is taken
 *   ZERO  not counted by ntbt (it copies with the CPU, never DMA): always 0
 */
#define NTBT_QP_COUNTERS(X)                                                                        \
        X(rx_bytes, RX, "payload bytes received")                                                  \
        X(rx_pkts, RX, "frames taken from the receive ring")                                       \
        X(rx_memcpy, RX, "frames copied into a posted buffer")                                     \
        X(rx_async, ZERO, "frames received by DMA")                                                \
        X(rx_ring_empty, RX, "receive walks that found no frame")                                  \
        X(rx_err_no_buf, RX, "times a frame waited for a posted buffer")                           \
        X(rx_err_oflow, RX, "frames larger than the payload or the buffer (-EMSGSIZE)")            \
        X(rx_err_ver, RX, "frames with an unexpected ver (the QP is reset)")                       \
        X(rx_index, RX, "the receive ring slot read next")                                         \
        X(rx_max_entry, SNAP, "receive ring slots (0 while down)")                                 \
        X(tx_bytes, TX, "payload bytes sent")                                                      \
        X(tx_pkts, TX, "frames sent")                                                              \
        X(tx_memcpy, TX, "frames copied into the peer's window")                                   \
        X(tx_async, ZERO, "frames sent by DMA")                                                    \
        X(tx_ring_full, TX, "sends refused for a full ring (-EAGAIN)")                             \
        X(tx_err_no_buf, ZERO, "the kernel's failed transmit buffer allocations")                  \
        X(tx_index, SNAP, "the transmit ring slot written next")                                   \
        X(rri, SNAP, "the peer's rx_info: the last slot it consumed")                              \
        X(tx_max_entry, SNAP, "transmit ring slots (0 while down)")                                \
        X(free_tx, SNAP, "free transmit slots (0 while down)")                                     \
        X(link, SNAP, "1 while the QP link is up")                                                 \
        X(rx_err_flags, RX, "frames with undefined flag bits (the QP is reset)")                   \
        X(tx_err_rri, TX, "out-of-range rx_info values written by the peer")                       \
        X(resets, RX, "QP resets after protocol errors")

#define NTBT_QP_STATS_FIELD_(name, source, description) uint64_t name;
struct ntbt_qp_stats {
        uint32_t size; /* the caller's sizeof(struct ntbt_qp_stats): <ntbt/ntbt.h> */
        uint32_t qp_num;
        /* uint64_t rx_bytes, rx_pkts, ..., resets: NTBT_QP_COUNTERS in order. */
        NTBT_QP_COUNTERS(NTBT_QP_STATS_FIELD_)
};

#undef NTBT_QP_STATS_FIELD_

int ntbt_qp_stats(struct ntbt_qp *qp, struct ntbt_qp_stats *st);

#ifdef __cplusplus
}
#endif
#endif
