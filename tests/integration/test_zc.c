/* SPDX-License-Identifier: MIT */
/*
 * Zero copy: ntbt_qp_rx_get/release and ntbt_qp_tx_reserve/commit/abort.
 * Each case on a fresh pair (tests/support/pair).  In all but the last,
 * both transports live in this process (two ports of one shm device), both
 * QPs in poll mode, driven from this thread; side B (port 1) receives in
 * place (NTBT_QP_ZC_RX), side A (port 0) by copy into posted buffers.
 * Every frame is checked: its length, its sequence number and every byte
 * of its pattern.
 *
 *  create_rules: NTBT_QP_ZC_RX needs poll mode, unknown flags are refused,
 *     an older (shorter) opts is taken; rx_get/release on a copy QP is
 *     -EINVAL;
 *  stream_zc_to_zc, stream_copy_to_zc, stream_zc_to_copy: 3000 frames of
 *     mixed sizes, the receiver in place holding 1 or 7 at a time;
 *  reserve_commit_errors: reserve/commit/abort refusals;
 *  held_frames_fill_ring: a receiver that holds every frame: the sender
 *     fills the ring and gets -EAGAIN, the held payloads stay intact;
 *     releases free it again;
 *  release_order: a release out of order, or twice, is -EINVAL;
 *  hostile_len: a hostile length written into our window: -EMSGSIZE,
 *     counted, the slot consumed after the frames held before it;
 *  link_down_held: the peer's LINK_DOWN with frames held: get says
 *     -ENOLINK, the held frames' releases too;
 *  two_process_both_ways: the peer in another process (re-executed), both
 *     sides receiving in place and sending with reserve/commit, 3000 frames
 *     each way at once, every payload written in place (no commit copies);
 *  reserve_in_window: on shm the buffer is the slot in the peer's window;
 *  abort_mid_stream: aborted reservations leave no hole;
 *  link_reset_held: a reservation held across a link reset: -ENOLINK, the
 *     next session clean;
 *  pcie_falls_back: the pcie model gets a staging buffer, still correct;
 *  slow_receiver: a receiver slow to release, the sender on another
 *     thread: -EAGAIN at the reserve, nothing lost;
 *  burst_stream, burst_stream_pcie: ntbt_qp_tx_reserve_burst and
 *     commit_burst, some bursts committed in part, 3000 frames in order;
 *  burst_errors: the burst calls' refusals, what an abort and a partial
 *     commit give back, a burst asking for more than the ring has;
 *  burst_more_and_reset: NTBT_TX_MORE on a burst commit owes the
 *     doorbell; a burst held across a link reset: -ENOLINK, a clean ring.
 */
#include "../harness.h"

#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/wait.h>

#include "../support/pair.h"
#include "dev/wrap.h"
#include "transport/wire.h"

/* The device inside a wrapper (pcie). */
static struct ntbt_dev *dev_inner_of(struct ntbt_dev *d)
{
        return dev_wrap_inner(d);
}

static void fill(uint8_t *p, uint64_t seq, uint32_t len)
{
        uint64_t x = seq * 0x9e3779b97f4a7c15ull + 1;
        uint32_t i;

        for (i = 0; i < len; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                p[i] = (uint8_t)x;
        }
        if (len >= 8)
                memcpy(p, &seq, 8);
}

static int check(const uint8_t *p, uint64_t seq, uint32_t len)
{
        static uint8_t want[65536];

        fill(want, seq, len);
        return memcmp(p, want, len) == 0;
}

static uint32_t size_of(uint64_t seq, uint32_t max)
{
        static const uint32_t sizes[] = {8, 64, 1000, 4096, 9000};

        return seq % 97 == 0 ? max : sizes[seq % 5];
}

static struct pair p;
static struct ntbt_qp *qa, *qb; /* qb receives in place */
/* A's copy receive: frames checked in on_rx_a. */
static uint8_t bufs[16][65536];
static uint64_t a_next, a_errors;

static void on_rx_a(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        (void)ctx;
        (void)buf_ctx;
        if (len < 0)
                return; /* cancelled at the free */
        if (!check(data, a_next, (uint32_t)len) ||
            (uint32_t)len != size_of(a_next, ntbt_qp_max_payload(qp)))
                a_errors++;
        a_next++;
        ntbt_qp_rx_enqueue(qp, NULL, data, 65536);
}

/* qa on port 0 (copy receive into 16 posted buffers), qb on port 1
 * (NTBT_QP_ZC_RX), both poll mode and linked. */
static void setup_on(const char *type)
{
        struct ntbt_qp_opts oa = {.size = sizeof(oa), .qp_num = 0, .poll = 1};
        struct ntbt_qp_opts ob = {
            .size = sizeof(ob), .qp_num = 0, .poll = 1, .flags = NTBT_QP_ZC_RX};
        struct ntbt_qp_handlers ha = {.rx = on_rx_a};
        int64_t deadline;

        a_next = 0;
        a_errors = 0;
        pair_create(&p, "zc", NULL);
        if (type) /* the shm device under a wrapper: "TYPE:shm:NAME,port=P" */
                for (int i = 0; i < 2; i++)
                        snprintf(p.spec[i], sizeof(p.spec[i]), "%s:shm:%s,port=%d", type, p.name,
                                 i);
        pair_open(&p, 0, NULL);
        pair_open(&p, 1, NULL);
        CHECK_EQ(ntbt_qp_create(p.t[0], &oa, &ha, NULL, &qa), 0);
        CHECK_EQ(ntbt_qp_create(p.t[1], &ob, NULL, NULL, &qb), 0);
        pair_post(qa, bufs, 16, sizeof(bufs[0]));
        CHECK_EQ(ntbt_qp_link_up(qa), 0);
        CHECK_EQ(ntbt_qp_link_up(qb), 0);
        deadline = now_ns() + 10 * PAIR_SEC;
        while (!ntbt_qp_link_is_up(qa) || !ntbt_qp_link_is_up(qb)) {
                CHECK(now_ns() < deadline);
                ntbt_qp_poll(qa, 0);
                ntbt_qp_poll(qb, 0);
                test_sleep_ms(1);
        }
}

static void setup(void)
{
        setup_on(NULL);
}

static void teardown(void)
{
        int64_t deadline = now_ns() + 10 * PAIR_SEC;

        /* qb takes qa's LINK_DOWN before it goes: a close that sent one
         * nobody polls for lingers a second (transport_linger).  A frame
         * left in qb's ring comes first: taken and released. */
        ntbt_qp_free(qa);
        while (ntbt_qp_link_is_up(qb)) {
                struct ntbt_rx_frame f;
                int ret = ntbt_qp_rx_get(qb, &f);

                CHECK(now_ns() < deadline);
                if (ret == 0)
                        CHECK_EQ(ntbt_qp_rx_release(qb, &f), 0);
                else
                        CHECK(ret == -EAGAIN || ret == -ENOLINK);
                ntbt_qp_poll(qb, 16);
        }
        ntbt_qp_free(qb);
        pair_destroy(&p);
}

static void send_zc(struct ntbt_qp *qp, uint64_t seq, uint32_t len)
{
        int64_t deadline = now_ns() + 20 * PAIR_SEC;
        void *buf;
        int ret;

        while ((ret = ntbt_qp_tx_reserve(qp, len, &buf)) == -EAGAIN)
                CHECK(now_ns() < deadline);
        CHECK_EQ(ret, 0);
        fill(buf, seq, len);
        CHECK_EQ(ntbt_qp_tx_commit(qp, len, 0), 0);
}

/* n frames from A to B (zc or copy send), B holding up to `hold`. */
static void stream_to_b(int zc_send, uint64_t n, unsigned hold)
{
        static uint8_t src[65536];
        struct ntbt_rx_frame held[64];
        uint32_t max = ntbt_qp_max_payload(qa);
        uint64_t sent = 0, got = 0;
        unsigned nh = 0;
        int64_t deadline = now_ns() + 60 * PAIR_SEC;

        while (got < n) {
                CHECK(now_ns() < deadline);
                if (sent < n) {
                        uint32_t len = size_of(sent, max);
                        void *buf;
                        int ret;

                        if (zc_send) {
                                /* A full ring says -EAGAIN at the reserve. */
                                ret = ntbt_qp_tx_reserve(qa, len, &buf);
                                if (ret == 0) {
                                        fill(buf, sent, len);
                                        CHECK_EQ(ntbt_qp_tx_commit(qa, len, 0), 0);
                                }
                        } else {
                                fill(src, sent, len);
                                ret = ntbt_qp_tx_enqueue(qa, NULL, src, len, 0);
                        }
                        if (ret == 0)
                                sent++;
                        else
                                CHECK_EQ(ret, -EAGAIN);
                }
                for (;;) {
                        struct ntbt_rx_frame f;
                        int ret = ntbt_qp_rx_get(qb, &f);

                        if (ret == -EAGAIN)
                                break;
                        CHECK_EQ(ret, 0);
                        CHECK_EQ(f.len, size_of(got, max));
                        CHECK(check(f.data, got, f.len));
                        got++;
                        held[nh++] = f;
                        if (nh == hold) {
                                unsigned i;

                                for (i = 0; i < nh; i++)
                                        CHECK_EQ(ntbt_qp_rx_release(qb, &held[i]), 0);
                                nh = 0;
                        }
                }
                ntbt_qp_poll(qb, 16);
                ntbt_qp_poll(qa, 16);
        }
        for (unsigned i = 0; i < nh; i++)
                CHECK_EQ(ntbt_qp_rx_release(qb, &held[i]), 0);
        ntbt_qp_poll(qb, 16);
        CHECK_EQ(sent, n);
}

/* B's zc send to A's copy receive. */
static void stream_to_a(uint64_t n)
{
        uint32_t max = ntbt_qp_max_payload(qb);
        uint64_t sent = 0;
        int64_t deadline = now_ns() + 60 * PAIR_SEC;

        a_next = 0;
        while (a_next < n) {
                void *buf;
                int ret;

                CHECK(now_ns() < deadline);
                if (sent < n) {
                        uint32_t len = size_of(sent, max);

                        ret = ntbt_qp_tx_reserve(qb, len, &buf);
                        if (ret == 0) {
                                fill(buf, sent, len);
                                CHECK_EQ(ntbt_qp_tx_commit(qb, len, NTBT_TX_MORE * (sent & 1)), 0);
                                sent++;
                        } else {
                                CHECK_EQ(ret, -EAGAIN);
                        }
                }
                ntbt_qp_poll(qa, 16);
                ntbt_qp_poll(qb, 16);
        }
        CHECK_EQ(a_errors, 0);
        CHECK_EQ(a_next, n);
}

static uint64_t counter(struct ntbt_qp *qp, size_t off)
{
        struct ntbt_qp_stats st = {.size = sizeof(st)};

        CHECK_EQ(ntbt_qp_stats(qp, &st), 0);
        return *(uint64_t *)((char *)&st + off);
}

/* NTBT_QP_ZC_RX needs poll mode, an unknown flag is refused, an older
 * caller's shorter opts is taken (copy receive), rx_get/release on a copy
 * QP is -EINVAL; the ring geometry the other cases rely on. */
static void create_rules(void)
{
        struct ntbt_qp_opts o = {.size = sizeof(o), .qp_num = 1, .flags = NTBT_QP_ZC_RX};
        struct ntbt_rx_frame g;
        struct ntbt_qp *q;
        uint32_t entries;
        int ret;

        setup();
        CHECK_EQ(ntbt_qp_create(p.t[0], &o, NULL, NULL, &q), -EINVAL); /* event mode */
        o.poll = 1;
        o.flags = 0x80;
        CHECK_EQ(ntbt_qp_create(p.t[0], &o, NULL, NULL, &q), -EINVAL);
        /* An older caller's opts, without flags: created, copy receive. */
        o.size = offsetof(struct ntbt_qp_opts, flags);
        ret = ntbt_qp_create(p.t[0], &o, NULL, NULL, &q);
        if (ret == 0) {
                CHECK_EQ(ntbt_qp_rx_get(q, &g), -EINVAL);
                ntbt_qp_free(q);
        } else {
                CHECK_EQ(ret, -EINVAL); /* only one QP on this device */
        }
        CHECK_EQ(ntbt_qp_rx_get(qa, &g), -EINVAL);
        CHECK_EQ(ntbt_qp_rx_release(qa, &g), -EINVAL);
        CHECK(ntbt_qp_max_payload(qa) >= 9000);
        entries = (uint32_t)ntbt_qp_tx_entries(qa);
        CHECK(entries >= 8 && entries <= 64);
        teardown();
}

/* zc send to zc receive, each frame released at once. */
static void stream_zc_to_zc(void)
{
        setup();
        stream_to_b(1, 3000, 1);
        teardown();
}

/* Copy send to zc receive, the receiver holding 7 frames at a time. */
static void stream_copy_to_zc(void)
{
        setup();
        stream_to_b(0, 3000, 7);
        teardown();
}

/* zc send (NTBT_TX_MORE on every other frame) to copy receive. */
static void stream_zc_to_copy(void)
{
        setup();
        stream_to_a(3000);
        teardown();
}

/* reserve/commit/abort refusals, and no reservation in thread mode. */
static void reserve_commit_errors(void)
{
        uint32_t payload;
        void *buf, *buf2;

        setup();
        payload = ntbt_qp_max_payload(qa);
        CHECK_EQ(ntbt_qp_tx_reserve(qa, 0, &buf), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_reserve(qa, payload + 1, &buf), -EMSGSIZE);
        CHECK_EQ(ntbt_qp_tx_commit(qa, 8, 0), -EINVAL); /* none open */
        CHECK_EQ(ntbt_qp_tx_abort(qa), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_reserve(qa, 100, &buf), 0);
        CHECK_EQ(ntbt_qp_tx_reserve(qa, 100, &buf2), -EBUSY);
        CHECK_EQ(ntbt_qp_tx_commit(qa, 0, 0), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_commit(qa, 101, 0), -EMSGSIZE);
        CHECK_EQ(ntbt_qp_tx_abort(qa), 0);
        CHECK_EQ(ntbt_qp_tx_abort(qa), -EINVAL);
        CHECK_EQ(ntbt_qp_set_tx_mode(qa, NTBT_TX_THREAD), 0);
        CHECK_EQ(ntbt_qp_tx_reserve(qa, 100, &buf), -EOPNOTSUPP);
        CHECK_EQ(ntbt_qp_set_tx_mode(qa, NTBT_TX_INLINE), 0);
        /* Inline again: a reservation goes through. */
        send_zc(qa, 0, 64);
        teardown();
}

/* The receiver holds every frame: the sender fills the ring (entries - 1
 * frames) and its next reserve gets -EAGAIN, leaving nothing open; the held
 * payloads stay intact; after the releases every slot is free again. */
static void held_frames_fill_ring(void)
{
        struct ntbt_rx_frame f[70], g;
        uint32_t entries;
        void *buf;
        int i, n, ret;

        setup();
        entries = (uint32_t)ntbt_qp_tx_entries(qa);
        CHECK(entries >= 8 && entries <= 64);
        for (n = 0;; n++) {
                CHECK(n < 70);
                ret = ntbt_qp_tx_reserve(qa, 64, &buf);
                if (ret)
                        break;
                fill(buf, 10000 + (uint64_t)n, 64);
                CHECK_EQ(ntbt_qp_tx_commit(qa, 64, 0), 0);
        }
        CHECK_EQ(ret, -EAGAIN);
        CHECK_EQ(ntbt_qp_tx_abort(qa), -EINVAL); /* nothing open */
        CHECK_EQ(ntbt_qp_tx_enqueue(qa, NULL, "x", 1, 0), -EAGAIN);
        CHECK_EQ((uint32_t)n, entries - 1);
        for (i = 0; i < n; i++)
                CHECK_EQ(ntbt_qp_rx_get(qb, &f[i]), 0);
        CHECK_EQ(ntbt_qp_rx_get(qb, &g), -EAGAIN);
        ntbt_qp_poll(qb, 16);
        CHECK_EQ(ntbt_qp_tx_reserve(qa, 64, &buf), -EAGAIN); /* still all held */
        for (i = 0; i < n; i++)
                CHECK(f[i].len == 64 && check(f[i].data, 10000 + (uint64_t)i, 64));
        for (i = 0; i < n; i++)
                CHECK_EQ(ntbt_qp_rx_release(qb, &f[i]), 0);
        CHECK_EQ(ntbt_qp_rx_get(qb, &g), -EAGAIN); /* writes rx_info */
        CHECK_EQ(ntbt_qp_tx_free(qa), (int)entries - 1);
        /* The ring goes round again. */
        send_zc(qa, 10000 + (uint64_t)n, 64);
        CHECK_EQ(ntbt_qp_rx_get(qb, &g), 0);
        CHECK(g.len == 64 && check(g.data, 10000 + (uint64_t)n, 64));
        CHECK_EQ(ntbt_qp_rx_release(qb, &g), 0);
        teardown();
}

/* Releases come in the order of the gets: another order, or a second
 * release of one frame, is -EINVAL and changes nothing. */
static void release_order(void)
{
        struct ntbt_rx_frame f[4], g;
        int i;

        setup();
        for (i = 0; i < 4; i++)
                send_zc(qa, 10000 + (uint64_t)i, 64);
        for (i = 0; i < 4; i++)
                CHECK_EQ(ntbt_qp_rx_get(qb, &f[i]), 0);
        CHECK_EQ(ntbt_qp_rx_release(qb, &f[1]), -EINVAL); /* out of order */
        CHECK_EQ(ntbt_qp_rx_release(qb, &f[3]), -EINVAL);
        CHECK_EQ(ntbt_qp_rx_release(qb, &f[0]), 0);
        CHECK_EQ(ntbt_qp_rx_release(qb, &f[0]), -EINVAL); /* twice */
        CHECK_EQ(ntbt_qp_rx_release(qb, &f[2]), -EINVAL);
        for (i = 1; i < 4; i++) {
                CHECK(f[i].len == 64 && check(f[i].data, 10000 + (uint64_t)i, 64));
                CHECK_EQ(ntbt_qp_rx_release(qb, &f[i]), 0);
        }
        CHECK_EQ(ntbt_qp_rx_release(qb, &f[3]), -EINVAL); /* none held */
        CHECK_EQ(ntbt_qp_rx_get(qb, &g), -EAGAIN);
        CHECK_EQ(ntbt_qp_tx_free(qa), ntbt_qp_tx_entries(qa) - 1);
        teardown();
}

/* A length larger than the payload, written into our window as a hostile
 * peer would: that get says -EMSGSIZE, counted in rx_err_oflow, and the
 * slot goes with the releases of the frames held before it. */
static void hostile_len(void)
{
        struct ntbt_rx_frame f[2], g;
        uint32_t payload, bad;
        uint8_t *d[3];
        int i;

        setup();
        payload = ntbt_qp_max_payload(qa);
        for (i = 0; i < 3; i++)
                send_zc(qa, 20000 + (uint64_t)i, 64);
        CHECK_EQ(ntbt_qp_rx_get(qb, &f[0]), 0);
        /* Frames are consecutive slots: the next header is one frame on;
         * the payload ends where its header starts.  A fresh ring starts at
         * slot 0, so the three do not wrap. */
        d[0] = (uint8_t *)(uintptr_t)f[0].data;
        CHECK_EQ(ntbt_qp_rx_get(qb, &f[1]), 0);
        d[1] = (uint8_t *)(uintptr_t)f[1].data;
        CHECK(d[1] > d[0]);
        d[2] = d[1] + (d[1] - d[0]);
        /* The third frame's len, as a hostile peer would write it. */
        bad = payload + 1;
        memcpy(d[2] + payload + NTB_HDR_LEN_OFF, &bad, 4);
        CHECK_EQ(ntbt_qp_rx_get(qb, &g), -EMSGSIZE);
        CHECK_EQ(counter(qb, offsetof(struct ntbt_qp_stats, rx_err_oflow)), 1);
        CHECK(check(f[0].data, 20000, 64) && check(f[1].data, 20001, 64));
        CHECK_EQ(ntbt_qp_rx_release(qb, &f[0]), 0);
        CHECK_EQ(ntbt_qp_rx_release(qb, &f[1]), 0);
        /* The refused slot went with them: a new frame comes next. */
        send_zc(qa, 30000, 64);
        CHECK_EQ(ntbt_qp_rx_get(qb, &g), 0);
        CHECK(g.len == 64 && check(g.data, 30000, 64));
        CHECK_EQ(ntbt_qp_rx_release(qb, &g), 0);
        teardown();
}

/* The peer closes its link with frames held: the frames after the held
 * ones still come, then get says -ENOLINK, so do the held frames' releases
 * and a reservation. */
static void link_down_held(void)
{
        struct ntbt_rx_frame f[2], g;
        int64_t deadline;
        void *buf;
        int i, ret, after = 0;

        setup();
        for (i = 0; i < 4; i++)
                send_zc(qa, 40000 + (uint64_t)i, 64);
        CHECK_EQ(ntbt_qp_rx_get(qb, &f[0]), 0);
        CHECK_EQ(ntbt_qp_rx_get(qb, &f[1]), 0);
        CHECK_EQ(ntbt_qp_link_down(qa), 0);
        deadline = now_ns() + 10 * PAIR_SEC;
        for (;;) {
                ret = ntbt_qp_rx_get(qb, &g);
                if (ret == -ENOLINK)
                        break;
                CHECK(ret == 0 && now_ns() < deadline); /* frames 2 and 3 first */
                CHECK(g.len == 64 && check(g.data, 40002 + (uint64_t)after, 64));
                after++;
        }
        CHECK(after <= 2);
        CHECK_EQ(ntbt_qp_link_is_up(qb), 0);
        CHECK_EQ(ntbt_qp_rx_release(qb, &f[0]), -ENOLINK);
        CHECK_EQ(ntbt_qp_rx_release(qb, &f[1]), -ENOLINK);
        CHECK_EQ(ntbt_qp_tx_reserve(qb, 64, &buf), -ENOLINK);
        teardown();
}

/* Where a reserved buffer lies: inside the outbound window's mapping (in
 * place) or not (a staging buffer).  `off`: its offset in the window. */
static int in_window(struct ntbt_dev *dev, const void *buf, uint64_t *off)
{
        uint64_t size;
        void *base;

        if (ntbt_dev_peer_mw_map(dev, 0, &base, &size))
                return 0;
        if ((const uint8_t *)buf < (uint8_t *)base ||
            (const uint8_t *)buf >= (uint8_t *)base + size)
                return 0;
        *off = (uint64_t)((const uint8_t *)buf - (uint8_t *)base);
        return 1;
}

/* On shm the buffer is the slot itself: inside the peer's window, what we
 * write is in B's inbound memory before the commit (and not yet a frame),
 * and B's frame points at the same bytes; the commit copies nothing. */
static void reserve_in_window(void)
{
        struct ntbt_rx_frame f;
        uint64_t off = 0, size;
        uint8_t *in;
        void *buf, *inb;
        int i;

        setup();
        CHECK_EQ(ntbt_dev_mw_inbound(p.dev[1], 0, &inb, &size), 0);
        in = inb;
        for (i = 0; i < 3; i++) { /* three slots: each its own place */
                CHECK_EQ(ntbt_qp_tx_reserve(qa, 1000, &buf), 0);
                CHECK(in_window(p.dev[0], buf, &off));
                CHECK(off + 1000 <= size);
                fill(buf, 50000 + (uint64_t)i, 1000);
                /* In B's memory already, but no frame until the commit. */
                CHECK(check(in + off, 50000 + (uint64_t)i, 1000));
                CHECK_EQ(ntbt_qp_rx_get(qb, &f), -EAGAIN);
                CHECK_EQ(ntbt_qp_tx_commit(qa, 1000, 0), 0);
                CHECK_EQ(ntbt_qp_rx_get(qb, &f), 0);
                CHECK(f.data == in + off && f.len == 1000);
                CHECK(check(f.data, 50000 + (uint64_t)i, 1000));
                CHECK_EQ(ntbt_qp_rx_release(qb, &f), 0);
        }
        CHECK_EQ(counter(qa, offsetof(struct ntbt_qp_stats, tx_memcpy)), 0);
        CHECK_EQ(counter(qa, offsetof(struct ntbt_qp_stats, tx_pkts)), 3);
        teardown();
}

/* Every frame waiting for B, each checked as the got-th and released at
 * once; then both QPs polled. */
static void take_all_b(uint64_t *got, uint32_t max)
{
        struct ntbt_rx_frame f;
        int ret;

        while ((ret = ntbt_qp_rx_get(qb, &f)) == 0) {
                CHECK_EQ(f.len, size_of(*got, max));
                CHECK(check(f.data, *got, f.len));
                CHECK_EQ(ntbt_qp_rx_release(qb, &f), 0);
                (*got)++;
        }
        CHECK_EQ(ret, -EAGAIN);
        ntbt_qp_poll(qb, 16);
        ntbt_qp_poll(qa, 16);
}

/* Every third reservation aborted after its payload was written (a
 * different one, as garbage): no hole, B sees every committed frame in
 * order, no ver error; other senders wait while a slot is held. */
static void abort_mid_stream(void)
{
        uint32_t max;
        uint64_t committed = 0, got = 0, tries = 0;
        int64_t deadline;
        void *buf;
        int ret;

        setup();
        max = ntbt_qp_max_payload(qa);
        deadline = now_ns() + 60 * PAIR_SEC;
        while (got < 600) {
                CHECK(now_ns() < deadline);
                ret = committed < 600 ? ntbt_qp_tx_reserve(qa, max, &buf) : -EAGAIN;
                if (ret == 0) {
                        uint32_t len = size_of(committed, max);

                        if (++tries % 3 == 0) {
                                fill(buf, 999999, len);
                                /* While held, another send must wait. */
                                CHECK_EQ(ntbt_qp_tx_enqueue(qa, NULL, "x", 1, 0), -EAGAIN);
                                CHECK_EQ(ntbt_qp_tx_abort(qa), 0);
                        } else {
                                fill(buf, committed, len);
                                CHECK_EQ(ntbt_qp_tx_commit(qa, len, 0), 0);
                                committed++;
                        }
                } else {
                        CHECK_EQ(ret, -EAGAIN);
                }
                take_all_b(&got, max);
        }
        CHECK_EQ(counter(qb, offsetof(struct ntbt_qp_stats, rx_err_ver)), 0);
        CHECK_EQ(counter(qa, offsetof(struct ntbt_qp_stats, tx_pkts)), 600);
        /* The slots aborted were given back: the ring is whole. */
        CHECK_EQ(ntbt_qp_tx_free(qa), ntbt_qp_tx_entries(qa) - 1);
        teardown();
}

/* Poll both until both QPs are up (after a link reset). */
static void relink(void)
{
        int64_t deadline = now_ns() + 10 * PAIR_SEC;

        CHECK_EQ(ntbt_qp_link_up(qa), 0);
        CHECK_EQ(ntbt_qp_link_up(qb), 0);
        while (!ntbt_qp_link_is_up(qa) || !ntbt_qp_link_is_up(qb)) {
                struct ntbt_rx_frame f;

                CHECK(now_ns() < deadline);
                CHECK(ntbt_qp_rx_get(qb, &f) != 0); /* nothing of the old session */
                ntbt_qp_poll(qa, 16);
                ntbt_qp_poll(qb, 16);
                test_sleep_ms(1);
        }
}

/* A held reservation across a link reset, by the peer's LINK_DOWN and by
 * our own link_down: the commit says -ENOLINK and writes nothing (the slot
 * went to the LINK_DOWN frame or back to the ring); until it is let go no
 * other send goes out; the next session starts clean at ver 0. */
static void link_reset_held(void)
{
        struct ntbt_rx_frame f;
        void *buf;
        int round, i;

        setup();
        send_zc(qa, 60000, 64);
        CHECK_EQ(ntbt_qp_rx_get(qb, &f), 0);
        CHECK_EQ(ntbt_qp_rx_release(qb, &f), 0);
        for (round = 0; round < 2; round++) {
                CHECK_EQ(ntbt_qp_tx_reserve(qa, 4096, &buf), 0);
                fill(buf, 61000, 4096);
                if (round == 0) {
                        CHECK_EQ(ntbt_qp_link_down(qb), 0); /* the peer's LINK_DOWN */
                        while (ntbt_qp_link_is_up(qa))
                                ntbt_qp_poll(qa, 16);
                } else {
                        CHECK_EQ(ntbt_qp_link_down(qa), 0); /* ours, into the held slot */
                        while (ntbt_qp_rx_get(qb, &f) != -ENOLINK)
                                ntbt_qp_poll(qb, 16);
                }
                /* The application still writes the voided buffer: the
                 * payload area only, which no frame reads. */
                fill(buf, 62000, 4096);
                relink();
                /* A new session, the stale reservation still open: others wait. */
                CHECK_EQ(ntbt_qp_tx_enqueue(qa, NULL, "x", 1, 0), -EAGAIN);
                CHECK_EQ(ntbt_qp_tx_commit(qa, 4096, 0), -ENOLINK);
                CHECK_EQ(ntbt_qp_tx_abort(qa), -EINVAL); /* let go by the commit */
                CHECK_EQ(ntbt_qp_rx_get(qb, &f), -EAGAIN);
                for (i = 0; i < 40; i++) { /* round the ring, from ver 0 */
                        send_zc(qa, 63000 + (uint64_t)i, 256);
                        CHECK_EQ(ntbt_qp_rx_get(qb, &f), 0);
                        CHECK(f.len == 256 && check(f.data, 63000 + (uint64_t)i, 256));
                        CHECK_EQ(ntbt_qp_rx_release(qb, &f), 0);
                }
        }
        CHECK_EQ(counter(qb, offsetof(struct ntbt_qp_stats, rx_err_ver)), 0);
        CHECK_EQ(counter(qb, offsetof(struct ntbt_qp_stats, rx_err_flags)), 0);
        teardown();
}

/* The pcie model does not map its window: reserve hands out a staging
 * buffer (outside the window: nothing reaches B before the commit), the
 * commit copies it through the model, and a stream is still correct. */
static void pcie_falls_back(void)
{
        struct ntbt_rx_frame f;
        uint64_t off, size;
        void *buf, *inb, *base;

        setup_on("pcie");
        CHECK_EQ(ntbt_dev_peer_mw_map(p.dev[0], 0, &base, &size), -EOPNOTSUPP);
        CHECK_EQ(ntbt_qp_tx_reserve(qa, 1000, &buf), 0);
        CHECK(!in_window(p.dev[0], buf, &off));
        CHECK_EQ(ntbt_dev_peer_mw_map(dev_inner_of(p.dev[0]), 0, &base, &size), 0);
        CHECK((uint8_t *)buf < (uint8_t *)base || (uint8_t *)buf >= (uint8_t *)base + size);
        CHECK_EQ(ntbt_dev_mw_inbound(p.dev[1], 0, &inb, &size), 0);
        fill(buf, 70000, 1000);
        CHECK_EQ(ntbt_qp_tx_commit(qa, 1000, 0), 0);
        CHECK_EQ(ntbt_qp_rx_get(qb, &f), 0);
        CHECK(f.len == 1000 && check(f.data, 70000, 1000));
        CHECK_EQ(ntbt_qp_rx_release(qb, &f), 0);
        CHECK_EQ(counter(qa, offsetof(struct ntbt_qp_stats, tx_memcpy)), 1);
        stream_to_b(1, 500, 3);
        CHECK_EQ(counter(qa, offsetof(struct ntbt_qp_stats, tx_memcpy)), 501);
        teardown();
}

/* Bursts of reservations (1..20 slots asked), every slot written, and a
 * commit of all of them or, every fourth burst, of the first 1..k (the
 * rest, written with garbage, go back): B sees every committed frame in
 * order, intact, with no ver error, the ring wrapping many times; at the
 * end the ring is whole.  On shm each buffer is its slot in the window
 * and nothing is copied; on pcie they are staging buffers the commit
 * copies. */
static void burst_stream_on(const char *type)
{
        uint32_t max, lens[20];
        uint64_t committed = 0, got = 0, round = 0, off;
        int64_t deadline;
        void *slots[20];
        int ret;

        setup_on(type);
        max = ntbt_qp_max_payload(qa);
        deadline = now_ns() + 60 * PAIR_SEC;
        while (got < 3000) {
                unsigned want = 1 + (unsigned)(round % 20), k, keep, i;

                CHECK(now_ns() < deadline);
                ret = committed < 3000 ? ntbt_qp_tx_reserve_burst(qa, max, slots, want) : -EAGAIN;
                if (ret > 0) {
                        k = (unsigned)ret;
                        CHECK(k <= want);
                        keep = round++ % 4 == 3 ? 1 + (unsigned)(round % k) : k;
                        if (keep > 3000 - committed)
                                keep = (unsigned)(3000 - committed);
                        for (i = 0; i < k; i++) {
                                uint64_t seq = i < keep ? committed + i : 999999;

                                CHECK_EQ(in_window(p.dev[0], slots[i], &off), type == NULL);
                                /* In place or staged, each starts on a line (max is no
                                 * multiple of 64). */
                                CHECK_EQ((uintptr_t)slots[i] % 64, 0);
                                lens[i] = size_of(committed + i, max);
                                fill(slots[i], seq, lens[i]);
                        }
                        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, keep, 0), 0);
                        committed += keep;
                } else {
                        CHECK_EQ(ret, -EAGAIN);
                }
                take_all_b(&got, max);
        }
        CHECK_EQ(counter(qb, offsetof(struct ntbt_qp_stats, rx_err_ver)), 0);
        CHECK_EQ(counter(qa, offsetof(struct ntbt_qp_stats, tx_pkts)), 3000);
        CHECK_EQ(counter(qa, offsetof(struct ntbt_qp_stats, tx_memcpy)), type ? 3000 : 0);
        /* The ring whole again, once B's last rx_info has crossed (on pcie
         * a posted write the model delivers later). */
        while (ntbt_qp_tx_free(qa) != ntbt_qp_tx_entries(qa) - 1)
                CHECK(now_ns() < deadline);
        teardown();
}

static void burst_stream(void)
{
        burst_stream_on(NULL);
}

static void burst_stream_pcie(void)
{
        burst_stream_on("pcie");
}

/* The burst calls' refusals leave the reservation as it was; an abort
 * gives every slot back (the same ones come again); a commit of the first
 * k gives back the rest; a ring with m free slots grants m. */
static void burst_errors(void)
{
        uint32_t lens[70], entries;
        void *slots[70], *again[4];
        struct ntbt_rx_frame f;
        int i, n;

        setup();
        entries = (uint32_t)ntbt_qp_tx_entries(qa);
        CHECK(entries >= 8 && entries <= 64);
        for (i = 0; i < 70; i++)
                lens[i] = 64;
        CHECK_EQ(ntbt_qp_tx_reserve_burst(qa, 64, slots, 0), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_reserve_burst(qa, 64, NULL, 4), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, 1, 0), -EINVAL); /* none open */
        CHECK_EQ(ntbt_qp_tx_reserve_burst(qa, 64, slots, 4), 4);
        CHECK_EQ(ntbt_qp_tx_reserve_burst(qa, 64, again, 4), -EBUSY);
        CHECK_EQ(ntbt_qp_tx_reserve(qa, 64, again), -EBUSY);
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, 0, 0), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, 5, 0), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, NULL, 2, 0), -EINVAL);
        lens[1] = 0;
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, 2, 0), -EINVAL);
        lens[1] = 65;
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, 2, 0), -EMSGSIZE);
        lens[1] = 64;
        CHECK_EQ(ntbt_qp_rx_get(qb, &f), -EAGAIN); /* nothing was sent */
        CHECK_EQ(ntbt_qp_tx_abort(qa), 0);
        /* All four came back: the same slots again, from the first. */
        CHECK_EQ(ntbt_qp_tx_reserve_burst(qa, 64, again, 4), 4);
        for (i = 0; i < 4; i++) {
                CHECK(again[i] == slots[i]);
                fill(again[i], 80000 + (uint64_t)i, 64);
        }
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, 2, 0), 0); /* two sent, two back */
        CHECK_EQ(ntbt_qp_tx_abort(qa), -EINVAL);              /* nothing open */
        CHECK_EQ(ntbt_qp_tx_reserve_burst(qa, 64, again, 1), 1);
        CHECK(again[0] == slots[2]);
        fill(again[0], 80002, 64);
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, 1, 0), 0);
        for (i = 0; i < 3; i++) {
                CHECK_EQ(ntbt_qp_rx_get(qb, &f), 0);
                CHECK(f.len == 64 && check(f.data, 80000 + (uint64_t)i, 64));
                CHECK_EQ(ntbt_qp_rx_release(qb, &f), 0);
        }
        CHECK_EQ(ntbt_qp_rx_get(qb, &f), -EAGAIN); /* writes rx_info */
        CHECK_EQ(counter(qb, offsetof(struct ntbt_qp_stats, rx_err_ver)), 0);
        /* Asked for more than the ring has: every free slot, then none. */
        n = ntbt_qp_tx_reserve_burst(qa, 64, slots, 70);
        CHECK_EQ(n, (int)entries - 1);
        for (i = 0; i < n; i++)
                fill(slots[i], 81000 + (uint64_t)i, 64);
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, (unsigned)n, 0), 0);
        CHECK_EQ(ntbt_qp_tx_reserve_burst(qa, 64, slots, 1), -EAGAIN);
        for (i = 0; i < n; i++) {
                CHECK_EQ(ntbt_qp_rx_get(qb, &f), 0);
                CHECK(f.len == 64 && check(f.data, 81000 + (uint64_t)i, 64));
                CHECK_EQ(ntbt_qp_rx_release(qb, &f), 0);
        }
        teardown();
}

/* A commit with NTBT_TX_MORE writes its frames but owes the doorbell, which
 * the next commit without it rings; a burst held across the peer's
 * LINK_DOWN: its commit says -ENOLINK, nothing of it arrives, and the next
 * session's bursts start clean at ver 0. */
static void burst_more_and_reset(void)
{
        uint32_t lens[5] = {64, 64, 64, 64, 64};
        struct ntbt_rx_frame f;
        void *slots[5];
        int i, k;

        setup();
        ntbt_dev_db_clear(p.dev[1], 1);
        CHECK_EQ(ntbt_qp_tx_reserve_burst(qa, 64, slots, 3), 3);
        for (i = 0; i < 3; i++)
                fill(slots[i], 90000 + (uint64_t)i, 64);
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, 3, NTBT_TX_MORE), 0);
        CHECK_EQ(ntbt_dev_db_read(p.dev[1]) & 1, 0); /* written, not rung */
        CHECK_EQ(ntbt_qp_tx_reserve_burst(qa, 64, slots, 2), 2);
        for (i = 0; i < 2; i++)
                fill(slots[i], 90003 + (uint64_t)i, 64);
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, 2, 0), 0);
        CHECK_EQ(ntbt_dev_db_read(p.dev[1]) & 1, 1);
        for (i = 0; i < 5; i++) {
                CHECK_EQ(ntbt_qp_rx_get(qb, &f), 0);
                CHECK(f.len == 64 && check(f.data, 90000 + (uint64_t)i, 64));
                CHECK_EQ(ntbt_qp_rx_release(qb, &f), 0);
        }
        /* Five slots held while the peer takes the link down. */
        CHECK_EQ(ntbt_qp_tx_reserve_burst(qa, 64, slots, 5), 5);
        for (i = 0; i < 5; i++)
                fill(slots[i], 91000 + (uint64_t)i, 64);
        CHECK_EQ(ntbt_qp_link_down(qb), 0);
        while (ntbt_qp_link_is_up(qa))
                ntbt_qp_poll(qa, 16);
        relink();
        CHECK_EQ(ntbt_qp_tx_enqueue(qa, NULL, "x", 1, 0), -EAGAIN); /* still held */
        CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, 3, 0), -ENOLINK);
        CHECK_EQ(ntbt_qp_tx_abort(qa), -EINVAL); /* let go by the commit */
        CHECK_EQ(ntbt_qp_rx_get(qb, &f), -EAGAIN);
        for (i = 0; i < 12; i++) { /* bursts of 5 round the new ring, from ver 0 */
                k = ntbt_qp_tx_reserve_burst(qa, 64, slots, 5);
                CHECK_EQ(k, 5);
                for (int j = 0; j < k; j++)
                        fill(slots[j], 92000 + (uint64_t)(i * 5 + j), 64);
                CHECK_EQ(ntbt_qp_tx_commit_burst(qa, lens, (unsigned)k, 0), 0);
                for (int j = 0; j < k; j++) {
                        CHECK_EQ(ntbt_qp_rx_get(qb, &f), 0);
                        CHECK(f.len == 64 && check(f.data, 92000 + (uint64_t)(i * 5 + j), 64));
                        CHECK_EQ(ntbt_qp_rx_release(qb, &f), 0);
                }
                CHECK_EQ(ntbt_qp_rx_get(qb, &f), -EAGAIN); /* writes rx_info */
        }
        CHECK_EQ(counter(qb, offsetof(struct ntbt_qp_stats, rx_err_ver)), 0);
        CHECK_EQ(counter(qb, offsetof(struct ntbt_qp_stats, rx_err_flags)), 0);
        teardown();
}

/* A receiver slow to release (every frame held a while, in batches) on
 * one thread, a sender on another: the sender's reserves say -EAGAIN while
 * the ring is held and it waits; every frame arrives, in order, intact. */
#define SLOW_FRAMES 2000
static uint64_t slow_eagain;

static void *slow_sender(void *arg)
{
        uint32_t max = ntbt_qp_max_payload(qa);
        int64_t deadline = now_ns() + 60 * PAIR_SEC;
        uint64_t seq;
        void *buf;
        int ret;

        (void)arg;
        for (seq = 0; seq < SLOW_FRAMES;) {
                CHECK(now_ns() < deadline);
                ret = ntbt_qp_tx_reserve(qa, size_of(seq, max), &buf);
                if (ret == -EAGAIN) {
                        slow_eagain++;
                        ntbt_qp_poll(qa, 16); /* qa's owner is this thread */
                        sched_yield();
                        continue;
                }
                CHECK_EQ(ret, 0);
                fill(buf, seq, size_of(seq, max));
                CHECK_EQ(ntbt_qp_tx_commit(qa, size_of(seq, max), 0), 0);
                seq++;
        }
        return NULL;
}

static void slow_receiver(void)
{
        struct ntbt_rx_frame held[8];
        uint64_t got = 0;
        uint32_t max;
        unsigned nh = 0, i;
        int64_t deadline;
        pthread_t t;

        setup();
        max = ntbt_qp_max_payload(qa);
        slow_eagain = 0;
        CHECK_EQ(pthread_create(&t, NULL, slow_sender, NULL), 0);
        deadline = now_ns() + 60 * PAIR_SEC;
        while (got < SLOW_FRAMES) {
                int ret = ntbt_qp_rx_get(qb, &held[nh]);

                CHECK(now_ns() < deadline);
                if (ret == 0) {
                        CHECK_EQ(held[nh].len, size_of(got, max));
                        CHECK(check(held[nh].data, got, held[nh].len));
                        got++;
                        nh++;
                }
                if (nh == 8 || (ret == -EAGAIN && nh)) {
                        if (got % 64 < 8)
                                test_sleep_ms(2); /* slow: the sender fills the ring */
                        for (i = 0; i < nh; i++)
                                CHECK_EQ(ntbt_qp_rx_release(qb, &held[i]), 0);
                        nh = 0;
                } else if (ret) {
                        CHECK_EQ(ret, -EAGAIN);
                        ntbt_qp_poll(qb, 16);
                }
        }
        pthread_join(t, NULL);
        CHECK(slow_eagain > 0);
        CHECK_EQ(counter(qb, offsetof(struct ntbt_qp_stats, rx_pkts)), SLOW_FRAMES);
        teardown();
}

/*
 * Both ways at once between two processes, each side a poll-mode
 * NTBT_QP_ZC_RX QP: n frames of mixed sizes sent with reserve/commit (a
 * commit refused with -EAGAIN is retried on the open reservation), n
 * received in place and checked byte for byte, up to `hold` held at a time.
 * The side that finishes first waits for the other: the peer (port 1)
 * sends one more frame, 8 bytes of n, once it has all of ours, and then
 * waits for our LINK_DOWN before it closes.
 */
static void zc_both_ways(struct ntbt_qp *qp, uint64_t n, unsigned hold, int peer)
{
        struct ntbt_rx_frame held[64];
        uint32_t max = ntbt_qp_max_payload(qp);
        uint64_t sent = 0, got = 0, bytes = 0;
        int64_t deadline = now_ns() + 120 * PAIR_SEC;
        int done_sent = 0, done_got = 0;
        unsigned nh = 0, i;

        CHECK(max >= 9000);
        while (got < n || sent < n || (peer ? !done_sent : !done_got)) {
                void *buf;
                int ret;

                CHECK(now_ns() < deadline);
                if (sent < n || (peer && got == n && !done_sent)) {
                        uint32_t len = sent < n ? size_of(sent, max) : 8;

                        ret = ntbt_qp_tx_reserve(qp, len, &buf);
                        if (ret == 0) {
                                if (sent < n)
                                        fill(buf, sent, len);
                                else
                                        memcpy(buf, &n, 8);
                                CHECK_EQ(ntbt_qp_tx_commit(qp, len, 0), 0);
                                if (sent < n)
                                        sent++;
                                else
                                        done_sent = 1;
                        } else {
                                CHECK_EQ(ret, -EAGAIN); /* the ring is full */
                        }
                }
                for (;;) {
                        struct ntbt_rx_frame f;

                        ret = ntbt_qp_rx_get(qp, &f);
                        if (ret == -EAGAIN)
                                break;
                        CHECK_EQ(ret, 0);
                        if (got == n) { /* the peer's last frame: it has all of ours */
                                uint64_t v;

                                CHECK(!peer && !done_got);
                                CHECK_EQ(f.len, 8);
                                memcpy(&v, f.data, 8);
                                CHECK_EQ(v, n);
                                done_got = 1;
                        } else {
                                CHECK_EQ(f.len, size_of(got, max));
                                CHECK(check(f.data, got, f.len));
                                bytes += f.len;
                                got++;
                        }
                        held[nh++] = f;
                        if (nh == hold) {
                                for (i = 0; i < nh; i++)
                                        CHECK_EQ(ntbt_qp_rx_release(qp, &held[i]), 0);
                                nh = 0;
                        }
                }
                ntbt_qp_poll(qp, 16);
                if (!peer && p.peer > 0) { /* a peer that failed: say so now */
                        int st;

                        CHECK(waitpid(p.peer, &st, WNOHANG) == 0);
                }
        }
        for (i = 0; i < nh; i++)
                CHECK_EQ(ntbt_qp_rx_release(qp, &held[i]), 0);
        CHECK_EQ(ntbt_qp_rx_get(qp, &held[0]), -EAGAIN); /* nothing more; writes rx_info */
        CHECK_EQ(counter(qp, offsetof(struct ntbt_qp_stats, rx_err_oflow)), 0);
        /* Every payload was written in place: the commits copied none. */
        CHECK_EQ(counter(qp, offsetof(struct ntbt_qp_stats, tx_memcpy)), 0);
        CHECK_EQ(counter(qp, offsetof(struct ntbt_qp_stats, tx_pkts)), sent + (uint64_t)peer);
        printf("[pid %d] zc: %llu frames, %llu bytes received in place, %llu sent\n", (int)getpid(),
               (unsigned long long)got, (unsigned long long)bytes, (unsigned long long)sent);
}

#define TWO_PROCESS_FRAMES 3000

/* The re-executed peer: port 1, receiving in place, releasing each frame. */
static void zc_peer(const char *name)
{
        struct ntbt_qp_opts o = {.size = sizeof(o), .qp_num = 0, .poll = 1, .flags = NTBT_QP_ZC_RX};
        struct ntbt_qp *qp;
        int64_t deadline;
        struct pair me;

        pair_attach(&me, name);
        pair_open(&me, 1, NULL);
        qp = pair_qp(&me, 1, &o, NULL, NULL);
        pair_wait_link(qp);
        zc_both_ways(qp, TWO_PROCESS_FRAMES, 1, 1);
        /* Our last frame told the other side we are done: wait for its
         * LINK_DOWN, so that it reads everything before we close. */
        deadline = now_ns() + 30 * PAIR_SEC;
        for (;;) {
                struct ntbt_rx_frame f;
                int ret = ntbt_qp_rx_get(qp, &f); /* the LINK_DOWN frame is in the ring */

                if (ret == -ENOLINK)
                        break;
                CHECK_EQ(ret, -EAGAIN); /* no frame after our n */
                CHECK(now_ns() < deadline);
                ntbt_qp_poll(qp, 16);
                test_sleep_ms(1);
        }
        CHECK_EQ(ntbt_qp_link_is_up(qp), 0);
        ntbt_qp_free(qp);
        pair_close(&me, 1);
}

/* zc receive and zc send both ways between two processes, every byte
 * checked on both sides; here up to 5 frames held at a time. */
static void two_process_both_ways(void)
{
        struct ntbt_qp_opts o = {.size = sizeof(o), .qp_num = 0, .poll = 1, .flags = NTBT_QP_ZC_RX};
        char *args[] = {"zc", "peer", NULL, NULL};
        struct ntbt_qp *qp;

        pair_create(&p, "zc2", NULL);
        pair_open(&p, 0, NULL);
        qp = pair_qp(&p, 0, &o, NULL, NULL);
        args[2] = p.name;
        pair_spawn(&p, args);
        pair_wait_link(qp);
        zc_both_ways(qp, TWO_PROCESS_FRAMES, 5, 0);
        ntbt_qp_free(qp); /* LINK_DOWN: the peer closes */
        pair_reap(&p);
        pair_destroy(&p);
}

static const struct test_case cases[] = {
    TEST_CASE(create_rules),          TEST_CASE(stream_zc_to_zc),
    TEST_CASE(stream_copy_to_zc),     TEST_CASE(stream_zc_to_copy),
    TEST_CASE(reserve_commit_errors), TEST_CASE(held_frames_fill_ring),
    TEST_CASE(release_order),         TEST_CASE(hostile_len),
    TEST_CASE(link_down_held),        TEST_CASE(two_process_both_ways),
    TEST_CASE(reserve_in_window),     TEST_CASE(abort_mid_stream),
    TEST_CASE(link_reset_held),       TEST_CASE(pcie_falls_back),
    TEST_CASE(slow_receiver),         TEST_CASE(burst_stream),
    TEST_CASE(burst_stream_pcie),     TEST_CASE(burst_errors),
    TEST_CASE(burst_more_and_reset),
};

int main(int argc, char **argv)
{
        if (argc == 3 && !strcmp(argv[1], "peer")) {
                ntbt_set_log(test_log_hook, NULL);
                zc_peer(argv[2]);
                return 0;
        }
        return test_main(argc, argv, TEST_CASES(cases));
}
