/* SPDX-License-Identifier: MIT */
/*
 * The transport link: opening a transport, the event thread, and the
 * transport-level handshake of spec section 4 (scratchpads), with a clear
 * report of what does not match.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/abi.h"
#include "../util/barrier.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "../util/spin.h"
#include "transport.h"
#include "wire.h"

/* How often the event thread looks at the device link while idle, and
 * while busy: a SIGKILLed peer never rings, so this bounds detection. */
#define LINK_IDLE_POLL_NS (20 * NS_PER_MS)
#define LINK_BUSY_POLL_NS (1 * NS_PER_MS)
#define RX_BUDGET         64
/* After the last frame, watch the doorbell register this long before
 * sleeping on it: a stream of frames then costs no system call (no futex
 * wake on the sender, no futex wait here), at the price of this much CPU
 * each time the rings go quiet. */
#define RX_SPIN_NS (20 * 1000)

static void mismatch(struct ntbt_transport *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record why the handshake fails; from the second failure on, say it once. */
static void mismatch(struct ntbt_transport *t, const char *fmt, ...)
{
        char buf[sizeof(t->mismatch)];
        int changed, say;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        pthread_mutex_lock(&t->lock);
        changed = strcmp(buf, t->mismatch) != 0;
        if (changed) {
                strcpy(t->mismatch, buf);
                t->mismatch_logged = 0;
        }
        t->fail_count++;
        t->mismatch_set = 1;
        say = t->fail_count >= 2 && !t->mismatch_logged;
        if (say)
                t->mismatch_logged = 1;
        pthread_mutex_unlock(&t->lock);
        if (say)
                log_warn("%s: transport handshake: %s (retrying every 10 ms)",
                         ntbt_dev_spec(t->dev), buf);
}

static void mismatch_clear(struct ntbt_transport *t)
{
        pthread_mutex_lock(&t->lock);
        t->mismatch[0] = '\0';
        t->mismatch_set = 0;
        t->fail_count = 0;
        t->mismatch_logged = 0;
        pthread_mutex_unlock(&t->lock);
}

int ntbt_transport_mismatch(struct ntbt_transport *t, char *buf, size_t len)
{
        int set;

        pthread_mutex_lock(&t->lock);
        set = t->mismatch_set;
        if (buf && len)
                snprintf(buf, len, "%s", set ? t->mismatch : "");
        pthread_mutex_unlock(&t->lock);
        return set;
}

static void transport_down(struct ntbt_transport *t)
{
        uint32_t i;
        int n = ntbt_dev_spad_count(t->dev);

        /* The peer's old advertisement must not survive into the next
         * handshake.  Zeroed before the epoch turns even, so that whoever sees
         * the link down (ntbt_transport_link_is_up() == 0) also sees it gone. */
        for (i = 0; i < (uint32_t)n; i++)
                ntbt_dev_spad_write(t->dev, (int)i, 0);
        /* Even epoch, release: orders the zeroing above before it; QP owners
         * see it (acquire) and reset their QPs. */
        store_release(&t->epoch, t->epoch + 1);
        /* A QP keeps its slot reservation until its owner looks (a poller
         * may not look for a long time), so enqueue and the copy thread
         * check the epoch under their locks; the fence waits out any writer
         * that checked before the store above.  From here on no frame of
         * the old session is written, and the peer cannot prepare its next
         * ring before we advertise again (transport_try_up, later).  t->lock
         * keeps the QPs registered (a free unregisters under it first). */
        pthread_mutex_lock(&t->lock);
        for (i = 0; i < NTBT_MAX_QPS; i++)
                if (t->qps[i])
                        tx_session_fence(t->qps[i]);
        pthread_mutex_unlock(&t->lock);
        stats_file_transport_up(t->stats, 0);
        for (i = 0; i < t->mw_count; i++)
                ntbt_dev_mw_clear_trans(t->dev, (int)i);
        qp_links_clear(t);
        /* The receive threads see the even epoch at their next pass: wake
         * the ones asleep on their doorbells now. */
        if (t->rx_n > 1)
                transport_kick(t);
        log_info("%s: transport link down", ntbt_dev_spec(t->dev));
}

static uint32_t spad_get(struct ntbt_transport *t, int idx)
{
        uint32_t v = 0;

        ntbt_dev_spad_read(t->dev, idx, &v);
        return v;
}

/* Our half of the handshake: window sizes, counts, frame size, version last. */
static void advertise(struct ntbt_transport *t)
{
        uint32_t i;

        for (i = 0; i < t->mw_count; i++) {
                ntbt_dev_peer_spad_write(t->dev, NTB_SPAD_MW_SZ_HIGH(i),
                                         (uint32_t)(t->out_size[i] >> 32));
                ntbt_dev_peer_spad_write(t->dev, NTB_SPAD_MW_SZ_LOW(i), (uint32_t)t->out_size[i]);
        }
        ntbt_dev_peer_spad_write(t->dev, NTB_SPAD_NUM_MWS, t->mw_count);
        ntbt_dev_peer_spad_write(t->dev, NTB_SPAD_NUM_QPS, t->qp_count);
        if (t->ext_spad >= 0 && t->o.transport_mtu <= NTBT_EXT_MTU_MAX)
                ntbt_dev_peer_spad_write(t->dev, t->ext_spad,
                                         NTBT_EXT(t->qp_count, t->o.transport_mtu));
        ntbt_dev_peer_spad_write(t->dev, NTB_SPAD_VERSION, NTB_TRANSPORT_VERSION);
}

/* The peer's version, counts and frame size are ours: 1, or 0 (a mismatch
 * recorded, or a peer that has not written yet). */
static int peer_counts_match(struct ntbt_transport *t)
{
        uint32_t ver, nqps, nmws;

        ver = spad_get(t, NTB_SPAD_VERSION);
        if (ver == 0)
                return 0; /* the peer has not written yet: nothing is wrong */
        if (ver != NTB_TRANSPORT_VERSION) {
                mismatch(t, "peer speaks protocol version %u, ntbt speaks %u", ver,
                         NTB_TRANSPORT_VERSION);
                return 0;
        }
        nqps = spad_get(t, NTB_SPAD_NUM_QPS);
        if (nqps != t->qp_count) {
                mismatch(t,
                         "peer has %u queue pairs, we have %u (compare max_qps and the "
                         "doorbell and window counts on both sides)",
                         nqps, t->qp_count);
                return 0;
        }
        nmws = spad_get(t, NTB_SPAD_NUM_MWS);
        if (nmws != t->mw_count) {
                mismatch(t, "peer has %u memory windows, we have %u", nmws, t->mw_count);
                return 0;
        }
        if (t->ext_spad >= 0) {
                uint32_t ext = spad_get(t, t->ext_spad);

                /* An ntbt peer's frame size (0 from a kernel peer: no check). */
                if (NTBT_EXT_TAG_OF(ext) == NTBT_EXT_TAG && NTBT_EXT_MTU_OF(ext) &&
                    NTBT_EXT_MTU_OF(ext) != t->o.transport_mtu) {
                        mismatch(t,
                                 "peer's frames are %u bytes (its --mtu), ours %u: each side "
                                 "would lay the rings out differently; give both the same "
                                 "--mtu",
                                 NTBT_EXT_MTU_OF(ext), t->o.transport_mtu);
                        return 0;
                }
        }
        return 1;
}

/* The inbound size of each window from the peer's advertisement, rounded to
 * our alignment and checked to hold every QP: 1, or 0 with a mismatch. */
static int peer_window_sizes(struct ntbt_transport *t, uint64_t *in_size)
{
        uint32_t i, q;

        for (i = 0; i < t->mw_count; i++) {
                uint64_t size = (uint64_t)spad_get(t, NTB_SPAD_MW_SZ_HIGH(i)) << 32 |
                                spad_get(t, NTB_SPAD_MW_SZ_LOW(i));
                uint64_t al = t->in_align[i];

                if (size == 0 || size > t->in_max[i]) {
                        mismatch(t,
                                 "peer's window %u is %llu bytes; our inbound window %u "
                                 "takes 1 to %llu",
                                 i, (unsigned long long)size, i, (unsigned long long)t->in_max[i]);
                        return 0;
                }
                size = (size + al - 1) / al * al; /* no overflow: size <= in_max */
                if (size > t->in_max[i]) {
                        mismatch(t, "peer's window %u rounds up past our inbound window", i);
                        return 0;
                }
                in_size[i] = size;
        }
        for (q = 0; q < t->qp_count; q++) {
                struct qp_geom g;

                if (geom_qp(in_size[q % t->mw_count], t->qp_count, t->mw_count, q,
                            t->o.transport_mtu, &g)) {
                        mismatch(t, "peer's window %u (%llu bytes) is too small for QP %u",
                                 q % t->mw_count, (unsigned long long)in_size[q % t->mw_count], q);
                        return 0;
                }
        }
        return 1;
}

/* One handshake attempt (spec section 4, transport level).  The peer's
 * scratchpad values are untrusted: each is checked before use. */
void transport_try_up(struct ntbt_transport *t)
{
        uint64_t in_size[NTBT_MAX_MWS];
        uint32_t i, link_seq;

        advertise(t);
        if (!peer_counts_match(t))
                return;
        /*
         * The link events this session starts after: read once the peer's
         * advertisement is in, not before our look at the link.  A device
         * may show a port's link_enable before it counts the event (shm
         * stores link_enabled, then bumps link_seq), so a counter read
         * before the level could miss the peer's own enable and end the
         * session a moment after it began, on our side only: we would then
         * wait for an advertisement the peer, still up, never writes again
         * (seen in qp_free_in_handler, about 1 open in 100 under load).
         * The peer advertises only after its enable returned (its event
         * thread starts then), and its version scratchpad, read above,
         * orders that enable, counter included, before this read.
         */
        link_seq = ntbt_dev_link_events(t->dev);
        if (!peer_window_sizes(t, in_size))
                return;
        for (i = 0; i < t->mw_count; i++) {
                int ret = ntbt_dev_mw_set_trans(t->dev, (int)i, in_size[i]);

                if (ret) {
                        mismatch(t, "inbound translation of window %u (%llu bytes): %s", i,
                                 (unsigned long long)in_size[i], strerror(-ret));
                        return;
                }
                /* Relaxed: published by the epoch's release below.  An
                 * atomic because an owner that read the last session's
                 * epoch may still be reading it (a receive thread or a
                 * poller descheduled in qp_prepare): the value it gets is
                 * then void, and its next look at the epoch resets the QP. */
                store_relaxed(&t->in_size[i], in_size[i]);
        }
        mismatch_clear(t);
        t->up_link_seq = link_seq;
        /* Odd epoch, release: publishes in_size[] to the QP owners. */
        store_release(&t->epoch, t->epoch + 1);
        stats_file_transport_up(t->stats, 1);
        log_info("%s: transport link up: %u queue pairs over %u windows", ntbt_dev_spec(t->dev),
                 t->qp_count, t->mw_count);
        transport_kick(t); /* poll-mode owners and waiters look again */
}

/* Watch the device link; run the handshake while it is up and we are not. */
static void transport_service(struct ntbt_transport *t, int64_t now)
{
        int up = transport_epoch_up(t->epoch);
        uint32_t seq;
        int link;

        if (up && now - t->last_link_check < LINK_BUSY_POLL_NS)
                return;
        t->last_link_check = now;
        /* Read the event counter before the level, so a change after our
         * look shows up as a different counter next time (the session's
         * own counter is read in transport_try_up). */
        seq = ntbt_dev_link_events(t->dev);
        link = ntbt_dev_link_is_up(t->dev) == 1;
        if (up && (!link || seq != t->up_link_seq)) {
                transport_down(t);
                up = 0;
        }
        if (link != t->link_was_up) {
                log_info("%s: device link %s", ntbt_dev_spec(t->dev), link ? "up" : "down");
                t->link_was_up = link;
                if (!link)
                        mismatch_clear(t);
        }
        if (!up && link && now >= t->next_try) {
                t->next_try = now + NTB_HANDSHAKE_RETRY_NS;
                transport_try_up(t);
        }
}

/* Look for a doorbell in bits for up to RX_SPIN_NS before sleeping on it:
 * 1 when one rang.  db_read is the device's own atomic load of its
 * register: a frame's doorbell seen here is ordered like the one db_wait
 * would return for.  The spin yields the core after a few microseconds
 * (util/spin.h): a sender sharing our core must run to ring.  Acquire
 * on stop: see event_thread. */
static int doorbell_spin(struct ntbt_transport *t, struct spin_hint *hint, uint64_t bits)
{
        struct spin_wait w;

        spin_wait_init(&w, hint);
        while (!load_acquire(&t->stop) && now_ns() - w.start < RX_SPIN_NS) {
                if (ntbt_dev_db_read(t->dev) & bits) {
                        spin_wait_done(&w);
                        return 1;
                }
                spin_wait_pause(&w);
        }
        return 0;
}

/*
 * One pass of receive thread idx over its event-mode QPs (num % rx_n ==
 * idx): *bits gets the doorbells of those up, *busy is set when a ring has
 * more waiting, *handshaking when a QP waits for a timer.
 */
static void rx_pass(struct ntbt_transport *t, uint32_t idx, uint64_t *bits, int *busy,
                    int *handshaking)
{
        struct ntbt_qp *qps[NTBT_MAX_QPS];
        int i, n = 0;

        /* Our QPs cannot disappear under us: their frees pass through this
         * thread, their owner (qp_release_from_owner); one we let go
         * already (freed) is being finished by its client.  t->lock orders
         * registration (qp_create) before our look at the QP. */
        pthread_mutex_lock(&t->lock);
        for (i = 0; i < NTBT_MAX_QPS; i++)
                if (t->qps[i] && !t->qps[i]->poll_mode && (uint32_t)i % t->rx_n == idx &&
                    !load_sc(&t->qps[i]->freed))
                        qps[n++] = t->qps[i];
        pthread_mutex_unlock(&t->lock);
        for (i = 0; i < n; i++) {
                if (load_sc(&qps[i]->free_req)) {
                        qp_release_from_owner(qps[i]);
                        continue;
                }
                /* Freed by a handler on another thread (an inline tx
                 * handler, a receive thread): the free finishes through us
                 * (its free_req); no handler runs meanwhile. */
                if (load_sc(&qps[i]->dying))
                        continue;
                qp_service(qps[i], RX_BUDGET, busy, handshaking);
                if (load_sc(&qps[i]->free_req)) {
                        qp_release_from_owner(qps[i]);
                        continue;
                }
                if (qps[i]->state == QP_UP)
                        *bits |= 1ull << qps[i]->num;
        }
}

/* Nothing to do now: watch our QPs' doorbells for a while (doorbell_spin,
 * with this thread's hint), then sleep on them (and on kicks) until one
 * rings or the timeout passes.  Each receive thread waits for its own bits
 * only, and clears only those (qp_service): the devices' db_wait and
 * db_clear take a mask and may run on several threads at once (dev.h), so
 * no thread takes another's doorbell. */
static void rx_idle(struct ntbt_transport *t, struct spin_hint *hint, uint64_t bits,
                    int64_t timeout)
{
        if (bits && doorbell_spin(t, hint, bits))
                return;
        if (!load_acquire(&t->stop))
                ntbt_dev_db_wait(t->dev, bits, timeout);
}

/* The event thread: the link (handshake, up and down, epoch changes), and
 * receive thread 0's QPs (all of them when rx_n is 1). */
static void *event_thread(void *arg)
{
        struct ntbt_transport *t = arg;

        qp_service_thread_enter(t);
        /* Acquire: pairs with the release store in ntbt_transport_close,
         * which follows every QP's free (nothing is left to service). */
        while (!load_acquire(&t->stop)) {
                int busy = 0, handshaking = 0;
                uint64_t bits = 0;

                transport_service(t, now_ns());
                if (!transport_epoch_up(t->epoch) && t->link_was_up)
                        handshaking = 1;
                rx_pass(t, 0, &bits, &busy, &handshaking);
                if (!busy)
                        rx_idle(t, &t->rx_spin, bits,
                                handshaking ? NTB_HANDSHAKE_RETRY_NS : LINK_IDLE_POLL_NS);
        }
        return NULL;
}

/* Receive thread idx > 0: its QPs only.  A link change reaches it through
 * the epoch, which qp_service reads with acquire; transport_down and
 * transport_try_up kick, so it looks at once. */
static void *rx_thread(void *arg)
{
        struct rx_thread *r = arg;
        struct ntbt_transport *t = r->t;

        qp_service_thread_enter(t);
        while (!load_acquire(&t->stop)) {
                int busy = 0, handshaking = 0;
                uint64_t bits = 0;

                rx_pass(t, r->idx, &bits, &busy, &handshaking);
                if (!busy)
                        rx_idle(t, &r->spin, bits,
                                handshaking ? NTB_HANDSHAKE_RETRY_NS : LINK_IDLE_POLL_NS);
        }
        return NULL;
}

/* The caller's options (<ntbt/ntbt.h>: the size rule) with the defaults
 * filled: 0, -EINVAL, or -E2BIG for an option this build does not know. */
static int transport_opts(struct ntbt_dev *dev, const struct ntbt_transport_opts *opts,
                          struct ntbt_transport_opts *o)
{
        int ret = opts ? abi_in(o, sizeof(*o), opts, ABI_OPTS_VER0) : 0;

        if (ret)
                return ret;
        if (!o->transport_mtu)
                o->transport_mtu = NTB_TRANSPORT_MTU_DEFAULT;
        if (o->flags & ~NTBT_TRANSPORT_UNSAFE_NO_FLUSH)
                return -EINVAL;
        if (o->tx_mode == NTBT_TX_DEFAULT)
                o->tx_mode = NTBT_TX_INLINE;
        if (o->tx_mode != NTBT_TX_INLINE && o->tx_mode != NTBT_TX_THREAD)
                return -EINVAL;
        if (o->flags & NTBT_TRANSPORT_UNSAFE_NO_FLUSH)
                log_warn("%s: UNSAFE: the flush before the doorbell is off; frames may stall",
                         ntbt_dev_spec(dev));
        if (o->rx_threads > NTBT_MAX_QPS)
                o->rx_threads = NTBT_MAX_QPS; /* more than QPs is the QPs (rx_thread_count) */
        if (o->transport_mtu <= sizeof(struct ntb_payload_header)) {
                log_err("%s: transport_mtu %u is too small", ntbt_dev_spec(dev), o->transport_mtu);
                return -EINVAL;
        }
        return 0;
}

/* Each window's sizes: ours outbound (capped by max_mw_size), and what we
 * can take inbound. */
static int transport_windows(struct ntbt_transport *t)
{
        uint32_t i;
        int ret;

        for (i = 0; i < t->mw_count; i++) {
                void *base;
                uint64_t in_size;

                ret = ntbt_dev_peer_mw_size(t->dev, (int)i, &t->out_size[i]);
                if (!ret)
                        ret = ntbt_dev_mw_get_align(t->dev, (int)i, NULL, &t->in_align[i],
                                                    &t->in_max[i]);
                if (!ret)
                        ret = ntbt_dev_mw_inbound(t->dev, (int)i, &base, &in_size);
                if (ret)
                        return ret;
                t->in_base[i] = base;
                if (t->in_max[i] > in_size)
                        t->in_max[i] = in_size;
                if (!t->in_align[i])
                        t->in_align[i] = 1;
                if (t->o.max_mw_size && t->out_size[i] > t->o.max_mw_size)
                        t->out_size[i] = t->o.max_mw_size;
        }
        return 0;
}

/* How many QPs and windows: -EINVAL when the device cannot hold them. */
static int transport_layout(struct ntbt_transport *t, int spads, int mws)
{
        uint32_t q;
        int ret;

        geom_counts(ntbt_dev_db_valid_mask(t->dev), (uint32_t)mws, (uint32_t)spads, t->o.max_qps,
                    &t->qp_count, &t->mw_count);
        if (t->mw_count > NTBT_MAX_MWS)
                t->mw_count = NTBT_MAX_MWS;
        /* The last scratchpad, if protocol v4 leaves it unused (wire.h). */
        t->ext_spad = (uint32_t)spads > 4 + 2 * t->mw_count ? spads - 1 : -1;
        if (t->qp_count < 1 || t->qp_count > NTBT_MAX_QPS) {
                log_err("%s: %u queue pairs: ntbt supports 1 to %d (QP_LINKS is 32 bits)",
                        ntbt_dev_spec(t->dev), t->qp_count, NTBT_MAX_QPS);
                return -EINVAL;
        }
        ret = transport_windows(t);
        if (ret)
                return ret;
        for (q = 0; q < t->qp_count; q++) {
                struct qp_geom g;

                if (geom_qp(t->out_size[q % t->mw_count], t->qp_count, t->mw_count, q,
                            t->o.transport_mtu, &g)) {
                        log_err("%s: window %u (%llu bytes) is too small for %u queue pairs",
                                ntbt_dev_spec(t->dev), q % t->mw_count,
                                (unsigned long long)t->out_size[q % t->mw_count], t->qp_count);
                        return -EINVAL;
                }
        }
        return 0;
}

/*
 * How many threads receive for event-mode QPs: the caller's rx_threads, or
 * when 0 one per QP up to half the online CPUs (the other half left to the
 * senders, and on a 2-core machine the single thread of old); never more
 * than the QPs, since a QP is serviced by one thread.
 */
static uint32_t rx_thread_count(const struct ntbt_transport *t)
{
        uint32_t n = t->o.rx_threads;

        if (!n) {
                int cpus = online_cpus();

                n = cpus >= 4 ? (uint32_t)(cpus / 2) : 1;
        }
        return n < t->qp_count ? n : t->qp_count;
}

/* The threads stopped: our scratchpads zeroed, the inbound translations
 * cleared (the event thread may have advertised and set them), the link
 * disabled. */
static void transport_withdraw(struct ntbt_transport *t)
{
        int i, n = ntbt_dev_spad_count(t->dev);

        for (i = 0; i < n; i++)
                ntbt_dev_spad_write(t->dev, i, 0);
        for (i = 0; i < (int)t->mw_count; i++)
                ntbt_dev_mw_clear_trans(t->dev, i);
        ntbt_dev_link_disable(t->dev);
}

/* Stop and join the receive threads 1.. and the event thread: every QP is
 * freed (or none was made). */
static void transport_stop_threads(struct ntbt_transport *t)
{
        uint32_t i;

        /* Release: the threads' acquire loads of stop see it; kick wakes
         * those asleep, and a wait that starts after the kick ends within
         * LINK_IDLE_POLL_NS (each thread looks at stop before it waits). */
        store_release(&t->stop, 1);
        transport_kick(t);
        for (i = 1; i < t->rx_started; i++)
                pthread_join(t->rx[i].thread, NULL);
        t->rx_started = 0;
        if (t->thread_started)
                pthread_join(t->thread, NULL);
        t->thread_started = 0;
}

/* The receive threads beyond the event thread: 0 or -errno (those
 * started stay counted in rx_started, for transport_stop_threads). */
static int transport_start_rx(struct ntbt_transport *t)
{
        uint32_t i;

        t->rx_started = 1; /* thread 0 is the event thread */
        for (i = 1; i < t->rx_n; i++) {
                int ret;

                t->rx[i].t = t;
                t->rx[i].idx = i;
                ret = pthread_create(&t->rx[i].thread, NULL, rx_thread, &t->rx[i]);
                if (ret)
                        return -ret;
                t->rx_started = i + 1;
        }
        return 0;
}

/* Locks, the stats file, the device link, the event and receive threads. */
static int transport_start(struct ntbt_transport *t)
{
        pthread_condattr_t ca;
        int ret;

        pthread_mutex_init(&t->lock, NULL);
        pthread_mutex_init(&t->spad_lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&t->cond, &ca);
        pthread_condattr_destroy(&ca);

        t->stats = stats_file_open(t->dev, t->qp_count);
        t->rx_n = rx_thread_count(t);
        ret = ntbt_dev_link_enable(t->dev);
        if (!ret)
                ret = -pthread_create(&t->thread, NULL, event_thread, t);
        if (!ret) {
                t->thread_started = 1;
                ret = transport_start_rx(t);
                if (ret) {
                        transport_stop_threads(t);
                        transport_withdraw(t);
                }
        }
        if (ret) {
                stats_file_close(t->stats);
                pthread_cond_destroy(&t->cond);
                pthread_mutex_destroy(&t->lock);
                pthread_mutex_destroy(&t->spad_lock);
                return ret;
        }
        return 0;
}

int ntbt_transport_open(struct ntbt_dev *dev, const struct ntbt_transport_opts *opts,
                        struct ntbt_transport **out)
{
        struct ntbt_transport_opts o = {.size = sizeof(o)};
        struct ntbt_transport *t;
        int spads, mws, ret;

        if (!dev || !out)
                return -EINVAL;
        ret = transport_opts(dev, opts, &o);
        if (ret)
                return ret;
        spads = ntbt_dev_spad_count(dev);
        mws = ntbt_dev_mw_count(dev);
        if (spads < NTB_MIN_SPADS || mws < 1) {
                log_err("%s: the transport needs at least %d scratchpads and one window",
                        ntbt_dev_spec(dev), NTB_MIN_SPADS);
                return -EINVAL;
        }
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->dev = dev;
        t->o = o;
        ret = transport_layout(t, spads, mws);
        if (!ret)
                ret = transport_start(t);
        if (ret) {
                free(t);
                return ret;
        }
        *out = t;
        return 0;
}

/*
 * The LINK_DOWN frame is the protocol's only "end of stream", and the peer
 * reads it from a ring it can only reach while the link is up: a sender
 * that releases its port right after writing it (ntbt send exits) races the
 * peer's reader, which then sees the device link drop first and must report
 * a lost link though nothing was lost.  The peer acknowledges nothing (the
 * kernel does not move rx_info past a LINK_DOWN frame), but it shows it has
 * seen the frame in one of two ways: it asks for the queue pair again (its
 * bit in our QP_LINKS scratchpad, which we cleared when we sent LINK_DOWN),
 * or it closes its transport (the device link goes down).  Wait for either,
 * at most LINGER_NS; a peer that is gone or stuck costs that much, once.
 */
#define LINGER_NS (1000 * NS_PER_MS)

static void transport_linger(struct ntbt_transport *t)
{
        uint32_t want = load_sc(&t->lingering);
        int64_t deadline = now_ns() + LINGER_NS;

        if (!want || !transport_epoch_up(load_acquire(&t->epoch)))
                return;
        while (now_ns() < deadline) {
                uint32_t links = 0;

                if (ntbt_dev_link_is_up(t->dev) != 1)
                        return;
                if (ntbt_dev_spad_read(t->dev, NTB_SPAD_QP_LINKS, &links) == 0 &&
                    (links & want) == want)
                        return;
                nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
        log_debug("%s: the peer did not take our LINK_DOWN within %d ms", ntbt_dev_spec(t->dev),
                  (int)(LINGER_NS / NS_PER_MS));
}

void ntbt_transport_close(struct ntbt_transport *t)
{
        int i;

        if (!t)
                return;
        for (;;) {
                struct ntbt_qp *qp = NULL;
                int pending = 0;

                pthread_mutex_lock(&t->lock);
                for (i = 0; i < NTBT_MAX_QPS && !qp; i++) {
                        struct ntbt_qp *q = t->qps[i];

                        /* Registered, so alive: the event thread frees only
                         * after unregistering under this lock.  An event-mode
                         * QP is claimed here, under the lock, so that a free
                         * a handler requests now cannot race with ours. */
                        if (!q)
                                continue;
                        if (q->poll_mode || qp_free_claim(q))
                                qp = q;
                        else
                                pending = 1; /* a handler freed it: the event thread finishes */
                }
                if (!qp && pending) {
                        /* unregister() broadcasts. */
                        pthread_cond_wait(&t->cond, &t->lock);
                        pthread_mutex_unlock(&t->lock);
                        continue;
                }
                pthread_mutex_unlock(&t->lock);
                if (!qp)
                        break;
                if (qp->poll_mode)
                        ntbt_qp_free(qp); /* a copy thread's hand-over is finished here too */
                else
                        qp_free_claimed(qp);
        }
        transport_linger(t);
        transport_stop_threads(t);
        stats_file_close(t->stats);
        transport_withdraw(t);
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->lock);
        pthread_mutex_destroy(&t->spad_lock);
        free(t);
}

int ntbt_transport_qp_count(struct ntbt_transport *t)
{
        return (int)t->qp_count;
}

int ntbt_transport_rx_threads(struct ntbt_transport *t)
{
        return (int)t->rx_n;
}

int ntbt_transport_link_is_up(struct ntbt_transport *t)
{
        return transport_epoch_up(load_acquire(&t->epoch));
}
