/* SPDX-License-Identifier: MIT */
/* ntbt perf's protocol: the hello, the --verify format, the handlers and
 * the sender thread (perf.h). */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include <ntbt/ntbt.h>

#include "../crc32c.h"
#include "../util.h"
#include "perf.h"

static void put32(uint8_t *p, uint32_t v)
{
        memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, 4);
        return v;
}

void perf_hello(uint8_t *hello, uint32_t flags, uint32_t size, int nqps)
{
        put32(hello, HELLO_MAG);
        put32(hello + 4, flags);
        put32(hello + 8, size);
        put32(hello + 12, (uint32_t)nqps);
}

/* ---- the --verify message format ---- */

/* seq (8 bytes), CRC32C of seq and the rest (4), data. */
#define VHDR 12

static void small_pattern(uint8_t *buf, uint32_t size, uint64_t seq)
{
        for (uint32_t i = 0; i < size; i++)
                buf[i] = (uint8_t)(seq * 131 + i * 7 + 1);
}

static uint32_t verify_crc(const uint8_t *buf, uint32_t size)
{
        return crc32c(crc32c(0, buf, 8), buf + VHDR, size - VHDR);
}

/* The next message must be expect_seq, intact (receive thread only). */
static void verify_msg(struct perf_qp *q, const uint8_t *data, uint32_t len)
{
        uint64_t seq = q->expect_seq;
        uint32_t crc;

        if (len != __atomic_load_n(&q->rx_size, __ATOMIC_RELAXED)) {
                q->verify_errors++;
        } else if (len < VHDR) {
                uint8_t want[VHDR];

                small_pattern(want, len, seq);
                if (memcmp(want, data, len))
                        q->verify_errors++;
        } else {
                memcpy(&seq, data, 8);
                memcpy(&crc, data + 8, 4);
                if (seq != q->expect_seq || crc != verify_crc(data, len))
                        q->verify_errors++;
        }
        /* Resynchronise on the sequence number carried, so one gap counts once. */
        q->expect_seq = seq + 1;
}

/* Produce a message: a pattern, then spin until work_ns per KiB has passed.
 * whole: every byte written (--zc: the buffer is the slot, nothing of the
 * last message is there to keep). */
static void produce(uint8_t *buf, uint32_t size, uint64_t seq, uint64_t work_ns, int verify,
                    int whole)
{
        int64_t until = work_ns ? now_ns() + (int64_t)(work_ns * size / 1024) : 0;
        uint64_t v = seq * 0x9e3779b97f4a7c15ull;
        uint32_t i;

        if (verify && size < VHDR) {
                small_pattern(buf, size, seq);
                return;
        }
        if (verify || work_ns) {
                for (i = 0; i + 8 <= size; i += 8, v++)
                        memcpy(buf + i, &v, 8);
        } else if (whole) {
                memset(buf, (int)(seq & 0xff), size); /* as fast as a copy's stores */
        }
        if (!verify && !work_ns && size >= 8)
                memcpy(buf, &v, 8); /* plain runs: the pool's contents stay; stamp the seq */
        if (verify) {
                uint32_t crc;

                memcpy(buf, &seq, 8);
                crc = verify_crc(buf, size);
                memcpy(buf + 8, &crc, 4);
        }
        while (work_ns && now_ns() < until)
                ;
}

/* ---- handlers (the QP's receive thread, copy thread or sender) ---- */

void perf_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        struct perf_qp *q = ctx;

        (void)qp;
        if (up) {
                __atomic_add_fetch(&q->ups, 1, __ATOMIC_SEQ_CST);
                return;
        }
        __atomic_store_n(&q->down_reason, reason, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&q->downs, 1, __ATOMIC_SEQ_CST);
}

/* One message arrived (the receive side's thread): the hello, or one to
 * count and check. */
static void rx_take(struct perf_qp *q, const void *data, int len)
{
        if (len <= 0) {
                q->verify_errors++; /* an oversize frame: the transport said so */
        } else if (q->r->is_server && !q->hello_seen) {
                if (len == HELLO_LEN && get32(data) == HELLO_MAG) {
                        q->hello_flags = get32((uint8_t *)data + 4);
                        q->hello_size = get32((uint8_t *)data + 8);
                        __atomic_store_n(&q->rx_size, q->hello_size, __ATOMIC_RELAXED);
                        __atomic_store_n(&q->rx_verify, !!(q->hello_flags & F_VERIFY),
                                         __ATOMIC_RELAXED);
                        /* Release: the fields above before the flag (main thread). */
                        __atomic_store_n(&q->hello_seen, 1, __ATOMIC_RELEASE);
                } else {
                        q->verify_errors++; /* not an ntbt perf client */
                }
        } else {
                __atomic_store_n(&q->rx_msgs, q->rx_msgs + 1, __ATOMIC_RELAXED);
                __atomic_store_n(&q->rx_bytes, q->rx_bytes + (uint64_t)len, __ATOMIC_RELAXED);
                if (__atomic_load_n(&q->rx_verify, __ATOMIC_RELAXED))
                        verify_msg(q, data, (uint32_t)len);
        }
}

void perf_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct perf_qp *q = ctx;

        (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        rx_take(q, data, len);
        /* Big messages: let the other buffers go, down to one (BIG_MSG);
         * they stay allocated until the run closes.  (The hello is short.) */
        if (len >= BIG_MSG && q->rx_posted > 1) {
                q->rx_posted--;
                return;
        }
        ntbt_qp_rx_enqueue(qp, NULL, data, q->buf_len);
}

/* A zero-copy receiver that found nothing looks again for this long (a
 * spin, then yielding the core) before it sleeps on the doorbell, as the
 * event thread does for event-mode QPs: a sleep per empty ring cost a
 * futex wait here and a wake-up on the sender's side. */
#define ZC_IDLE_SPIN_NS (20 * 1000)

void *perf_zc_receiver(void *arg)
{
        struct perf_qp *q = arg;
        struct perf_run *r = q->r;
        int64_t idle_since = 0;

        while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
                struct ntbt_rx_frame f;
                int ret = ntbt_qp_rx_get(q->qp, &f);

                if (ret == -EAGAIN) {
                        int64_t now = now_ns();

                        if (!idle_since)
                                idle_since = now;
                        if (now - idle_since < ZC_IDLE_SPIN_NS / 5) {
                                for (int i = 0; i < 16; i++)
                                        cpu_pause();
                                continue;
                        }
                        if (now - idle_since < ZC_IDLE_SPIN_NS) {
                                sched_yield();
                                continue;
                        }
                }
                idle_since = 0;
                if (ret == 0) {
                        /* In place: the bytes are the peer's, read once here. */
                        rx_take(q, f.data, (int)f.len);
                        ntbt_qp_rx_release(q->qp, &f);
                        continue;
                }
                if (ret == -EMSGSIZE) {
                        q->verify_errors++; /* counted by the transport too */
                        continue;
                }
                /* Nothing waiting, or down: the handshake, link changes (the
                 * event handler runs in here), then a short sleep. */
                ntbt_qp_poll(q->qp, 0);
                if (ntbt_qp_wait_rx(q->qp, NS_PER_MS) == -ESHUTDOWN)
                        break;
        }
        return NULL;
}

void perf_tx_done(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len)
{
        struct perf_qp *q = ctx;

        (void)qp, (void)data;
        if (buf_ctx)
                return; /* the hello */
        if (len < 0)
                __atomic_add_fetch(&q->tx_errors, 1, __ATOMIC_RELAXED);
        /* Release: the pool slot is reused only after the transport let go of it. */
        __atomic_add_fetch(&q->completed, 1, __ATOMIC_RELEASE);
}

/* ---- sender thread ---- */

/* Wait until the pool slots of messages up to want are free: their old
 * frames completed (acquire pairs with perf_tx_done), or the link is gone.
 * Only the copy thread completes after the call (inline sends complete
 * before it returns), so this waits for that thread: a short spin, then
 * the core is yielded at each look, as a copy thread on a machine short of
 * cores needs it.  (ntbt_qp_wait_tx returned at once while the ring had
 * free slots, and its locks slowed the copy thread down.) */
static void wait_slots(struct perf_qp *q, uint64_t want, unsigned burst)
{
        unsigned looks = 0;

        while (__atomic_load_n(&q->completed, __ATOMIC_ACQUIRE) + pool_for(q->r, burst) < want) {
                if (++looks < 64) {
                        for (int i = 0; i < 16; i++)
                                cpu_pause();
                        continue;
                }
                if (looks % 64 == 0 && !ntbt_qp_link_is_up(q->qp))
                        break; /* the copy thread completes what it holds with -ENOLINK */
                sched_yield();
        }
}

/* Messages n.. of the burst, produced in their pool slots, into v. */
static void fill_burst(struct perf_qp *q, struct ntbt_tx_buf *v, uint64_t n, unsigned burst)
{
        struct perf_run *r = q->r;
        uint32_t size = r->size;

        for (unsigned k = 0; k < burst; k++) {
                uint8_t *buf = q->pool + ((n + k) % pool_for(q->r, burst)) * size;

                produce(buf, size, n + k, r->o->work_ns, r->verify, 0);
                if (r->corrupt_n && n + k + 1 == r->corrupt_n)
                        buf[size - 1] ^= 0x40; /* after its CRC: the server must notice */
                v[k] = (struct ntbt_tx_buf){.data = buf, .len = size};
        }
}

/* One burst: the transport takes its locks once and rings the doorbell
 * once for all of it; a full ring takes the rest after a wait.  0, or the
 * error that stopped it. */
static int send_burst(struct ntbt_qp *qp, const struct ntbt_tx_buf *v, unsigned burst)
{
        unsigned i;
        int ret;

        for (i = 0, ret = 0; i < burst && !ret;) {
                ret = ntbt_qp_tx_enqueue_burst(qp, v + i, burst - i, 0);
                if (ret > 0) {
                        i += (unsigned)ret;
                        ret = 0;
                } else if (ret == -EAGAIN) {
                        ret = ntbt_qp_wait_tx(qp, 1, 5 * NS_PER_SEC);
                        if (ret == -ETIMEDOUT)
                                ret = 0;
                }
        }
        return ret;
}

/* --zc: one burst, reserved together (as many slots as are free, the rest
 * after a wait), produced in place and committed together (the doorbell
 * with the last).  0, or the error that stopped it. */
static int send_zc_burst(struct perf_qp *q, uint64_t n, unsigned burst)
{
        struct perf_run *r = q->r;
        uint32_t size = r->size, lens[BURST];
        void *bufs[BURST];
        unsigned done, k, i;
        int ret;

        for (done = 0; done < burst; done += k) {
                while ((ret = ntbt_qp_tx_reserve_burst(q->qp, size, bufs, burst - done)) ==
                       -EAGAIN) {
                        ret = ntbt_qp_wait_tx(q->qp, 1, 5 * NS_PER_SEC);
                        if (ret && ret != -ETIMEDOUT)
                                return ret;
                }
                if (ret < 0)
                        return ret;
                k = (unsigned)ret;
                for (i = 0; i < k; i++) {
                        uint8_t *buf = bufs[i];
                        uint64_t seq = n + done + i;

                        produce(buf, size, seq, r->o->work_ns, r->verify, 1);
                        if (r->corrupt_n && seq + 1 == r->corrupt_n)
                                buf[size - 1] ^= 0x40; /* after its CRC: the server must notice */
                        lens[i] = size;
                }
                ret = ntbt_qp_tx_commit_burst(q->qp, lens, k, done + k < burst ? NTBT_TX_MORE : 0);
                if (ret)
                        return ret;
        }
        return 0;
}

/* Zero copy sends big messages 4 to a commit: its buffers are the ring's
 * slots, with no pool to recycle, and one commit per 64 KiB message cost
 * about a tenth of its rate (3 alternating runs: 68.9, 61.6, 60.5 GB/s
 * with 1, 75.1, 68.5, 64.9 with 4). */
#define ZC_BIG_BURST 4
_Static_assert(ZC_BIG_BURST <= BURST, "send_zc_burst's arrays hold BURST");

void *perf_sender(void *arg)
{
        struct perf_qp *q = arg;
        struct perf_run *r = q->r;
        unsigned burst = r->o->zc && r->size >= BIG_MSG ? ZC_BIG_BURST : burst_for(r->size);
        uint64_t n = 0;
        int ret;

        while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
                if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
                        return NULL;
        while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
                struct ntbt_tx_buf v[BURST];
                int64_t t0 = 0;

                if ((n & 63) == 0)
                        t0 = now_ns();
                if (r->o->zc) {
                        ret = send_zc_burst(q, n, burst); /* produce and send: one cost */
                } else {
                        wait_slots(q, n + burst, burst);
                        fill_burst(q, v, n, burst);
                        if ((n & 63) == 0)
                                t0 = now_ns();
                        ret = send_burst(q->qp, v, burst);
                }
                if (ret) {
                        /* The server's senders stop when the client closes; the
                         * main thread tells a close from a lost link by the
                         * reason of the down event, which may come after this. */
                        if (!(r->is_server && ret == -ENOLINK))
                                q->send_err = ret;
                        break;
                }
                if (t0) {
                        /* Per message: the burst's time over its messages. */
                        __atomic_store_n(&q->enq_ns, q->enq_ns + (uint64_t)(now_ns() - t0) / burst,
                                         __ATOMIC_RELAXED);
                        __atomic_store_n(&q->enq_samples, q->enq_samples + 1, __ATOMIC_RELAXED);
                }
                n += burst;
                __atomic_store_n(&q->sent, n, __ATOMIC_RELAXED);
        }
        return NULL;
}
