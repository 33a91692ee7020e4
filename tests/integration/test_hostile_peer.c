/* SPDX-License-Identifier: MIT */
/*
 * A hostile peer.  Port 0 runs the ntbt transport (event mode, in this
 * process, so ASan sees every access); port 1 is a raw peer written from
 * docs/spec/ntb-transport-v4.md that writes garbage: wrong ver, len larger than
 * the frame, DONE on the wrong slot, undefined flag bits, out-of-range
 * rx_info, mismatched scratchpads, protocol version 3.  Counters rise, the
 * QP resets and says LINK_DOWN, nothing crashes, and a well-behaved peer
 * works afterwards.  Each case on a fresh device and QP.
 */
#include "../harness.h"

#include <pthread.h>

#include "../support/pair.h"

#define MW_SIZE 65536u
#define MTU     4096u
#define FRAME   4096u /* min(4096, (65536 - 4) / 2) */
#define ENTRIES 15u   /* 65532 / 4096 */
#define PAYLOAD 4084u /* FRAME - 12 */
#define RX_INFO 65532u

static struct ntbt_dev *raw; /* port 1 */
static uint8_t *raw_in;      /* port 1's inbound window 0: ntbt's TX ring for QP 0 */

/* What the transport delivered (event thread writes, main thread reads). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int got_len[64], got_byte[64], ngot, downs, ups, last_reason;

static void on_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        (void)ctx, (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        pthread_mutex_lock(&lock);
        if (ngot < 64) {
                got_len[ngot] = len;
                got_byte[ngot] = len > 0 ? ((uint8_t *)data)[0] : -1;
                ngot++;
        }
        pthread_mutex_unlock(&lock);
        CHECK_EQ(ntbt_qp_rx_enqueue(qp, NULL, data, PAYLOAD), 0);
}

static void on_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        (void)qp, (void)ctx;
        pthread_mutex_lock(&lock);
        if (up)
                ups++;
        else
                downs++;
        last_reason = reason;
        pthread_mutex_unlock(&lock);
}

static int locked_get(int *v)
{
        int x;

        pthread_mutex_lock(&lock);
        x = *v;
        pthread_mutex_unlock(&lock);
        return x;
}

#define WAIT_UNTIL(cond)                                                                           \
        do {                                                                                       \
                int64_t d_ = now_ns() + 5000000000LL;                                              \
                while (!(cond)) {                                                                  \
                        if (now_ns() > d_) {                                                       \
                                fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__,     \
                                        __LINE__, #cond);                                          \
                                exit(1);                                                           \
                        }                                                                          \
                        test_sleep_ms(1);                                                          \
                }                                                                                  \
        } while (0)

static int saw_version_log;

static void log_hook(void *ctx, int level, const char *msg)
{
        if (strstr(msg, "transport handshake: peer speaks protocol version 3"))
                __atomic_store_n(&saw_version_log, 1, __ATOMIC_SEQ_CST);
        test_log_hook(ctx, level, msg);
}

static uint32_t own_spad(int i)
{
        uint32_t v = 0;

        CHECK_EQ(ntbt_dev_spad_read(raw, i, &v), 0);
        return v;
}

/* Spec section 4 step 1, with the values the test chooses. */
static void raw_advertise(uint32_t version, uint32_t nqps, uint32_t nmws, uint64_t size)
{
        uint32_t n;

        for (n = 0; n < 2; n++) {
                CHECK_EQ(ntbt_dev_peer_spad_write(raw, 4 + 2 * (int)n, (uint32_t)(size >> 32)), 0);
                CHECK_EQ(ntbt_dev_peer_spad_write(raw, 5 + 2 * (int)n, (uint32_t)size), 0);
        }
        CHECK_EQ(ntbt_dev_peer_spad_write(raw, 3, nmws), 0);
        CHECK_EQ(ntbt_dev_peer_spad_write(raw, 2, nqps), 0);
        CHECK_EQ(ntbt_dev_peer_spad_write(raw, 0, version), 0);
}

/* As the kernel's link work does: write the advertisement again every 10 ms
 * until the transport is up.  Writing it once is not enough right after a
 * link flap: ntbt zeroes its scratchpads when it takes the link down, and that
 * may land after our write. */
static void advertise_until_up(struct ntbt_transport *t, uint64_t size)
{
        int64_t deadline = now_ns() + 5000000000LL;

        for (;;) {
                raw_advertise(4, 2, 2, size);
                if (ntbt_transport_link_is_up(t))
                        return;
                if (now_ns() > deadline) {
                        fprintf(stderr, "%s:%d: transport did not come up\n", __FILE__, __LINE__);
                        exit(1);
                }
                test_sleep_ms(10);
        }
}

/* QP level: request QP 0 and wait for ntbt's request bit. */
static void raw_qp_link(void)
{
        uint32_t v = 0;

        CHECK_EQ(ntbt_dev_peer_spad_read(raw, 1, &v), 0);
        CHECK_EQ(ntbt_dev_peer_spad_write(raw, 1, v | 1u), 0);
        WAIT_UNTIL(own_spad(1) & 1u);
}

static uint32_t raw_ver; /* the raw peer's packet counter for QP 0 */

/* Write a frame into slot `slot` of ntbt's RX ring (our outbound window 0). */
static void raw_frame(uint32_t slot, uint32_t ver, uint32_t len, uint32_t flags, uint8_t fill,
                      uint32_t copy)
{
        uint8_t buf[FRAME];
        uint64_t off = (uint64_t)slot * FRAME;

        memset(buf, fill, sizeof(buf));
        if (copy)
                CHECK_EQ(ntbt_dev_peer_mw_write(raw, 0, off, buf, copy), 0);
        CHECK_EQ(ntbt_dev_peer_mw_write32(raw, 0, off + PAYLOAD + 4, len), 0);
        CHECK_EQ(ntbt_dev_peer_mw_write32(raw, 0, off + PAYLOAD + 0, ver), 0);
        CHECK_EQ(ntbt_dev_peer_mw_write32(raw, 0, off + PAYLOAD + 8, flags), 0);
        CHECK_EQ(ntbt_dev_peer_mw_flush(raw, 0, off + PAYLOAD + 8), 0);
        CHECK_EQ(ntbt_dev_peer_db_set(raw, 1u << 0), 0);
}

static void good_frame(uint32_t slot, uint32_t len, uint8_t fill)
{
        raw_frame(slot, raw_ver++, len, 1u, fill, len);
}

/* ntbt's TX ring header of slot i, as the raw peer sees it. */
static uint32_t ntbt_hdr(uint32_t slot, int field)
{
        return __atomic_load_n(
            (uint32_t *)(void *)(raw_in + (uint64_t)slot * FRAME + PAYLOAD + 4 * (uint64_t)field),
            __ATOMIC_ACQUIRE);
}

/* After a reset ntbt sends LINK_DOWN; the raw peer acknowledges by
 * re-requesting the QP and starting over at slot 0, ver 0. */
static void expect_link_down_and_relink(uint32_t slot, uint32_t ver)
{
        WAIT_UNTIL(ntbt_hdr(slot, 2) == 3u); /* DONE | LINK_DOWN */
        CHECK_EQ(ntbt_hdr(slot, 0), ver);
        CHECK_EQ(ntbt_hdr(slot, 1), 0);
        /* Consume it as a receiver does: clear the flags. */
        __atomic_store_n((uint32_t *)(void *)(raw_in + (uint64_t)slot * FRAME + PAYLOAD + 8), 0u,
                         __ATOMIC_RELEASE);
        WAIT_UNTIL(!(own_spad(1) & 1u)); /* ntbt withdrew its request first */
        raw_ver = 0;
        raw_qp_link();
}

static struct ntbt_qp_stats stats(struct ntbt_qp *qp)
{
        struct ntbt_qp_stats st = {.size = sizeof(st)};

        CHECK_EQ(ntbt_qp_stats(qp, &st), 0);
        return st;
}

static struct pair p;
static struct ntbt_transport *t;
static struct ntbt_qp *qp;

/* ntbt's transport and QP 0 on port 0 (event mode, 32 buffers posted),
 * the raw peer on port 1 with its link enabled. */
static void setup(void)
{
        struct ntbt_shm_geom g = {.size = sizeof(g), .mw_size = MW_SIZE};
        struct ntbt_transport_opts o = {.size = sizeof(o), .transport_mtu = MTU};
        struct ntbt_qp_handlers h = {.rx = on_rx, .event = on_event};
        static uint8_t bufs[32][PAYLOAD];
        uint64_t size;
        void *in;

        pthread_mutex_lock(&lock);
        ngot = downs = ups = last_reason = 0;
        pthread_mutex_unlock(&lock);
        raw_ver = 0;
        __atomic_store_n(&saw_version_log, 0, __ATOMIC_SEQ_CST);
        ntbt_set_log(log_hook, NULL);
        pair_create(&p, "hostile", &g);
        pair_open_dev(&p, 0);
        raw = pair_open_dev(&p, 1);
        CHECK_EQ(ntbt_dev_mw_inbound(raw, 0, &in, &size), 0);
        raw_in = in;
        CHECK_EQ(ntbt_dev_link_enable(raw), 0);

        CHECK_EQ(ntbt_transport_open(p.dev[0], &o, &p.t[0]), 0);
        t = p.t[0];
        CHECK_EQ(ntbt_transport_qp_count(t), 2);
        CHECK_EQ(ntbt_qp_create(t, NULL, &h, NULL, &qp), 0);
        pair_post(qp, bufs, 32, PAYLOAD);
        CHECK_EQ(ntbt_qp_link_up(qp), 0);
}

/* A good handshake: the transport and QP 0 up with the raw peer. */
static void handshake(void)
{
        WAIT_UNTIL(own_spad(0) == 4); /* ntbt advertised */
        advertise_until_up(t, MW_SIZE);
        CHECK_EQ(ntbt_transport_mismatch(t, NULL, 0), 0);
        raw_qp_link();
        WAIT_UNTIL(ntbt_qp_link_is_up(qp));
        CHECK_EQ(ntbt_qp_max_payload(qp), PAYLOAD);
}

/* The raw peer goes first: a LINK_DOWN it would never take keeps the
 * transport's close waiting a second. */
static void teardown(void)
{
        pair_close(&p, 1);
        WAIT_UNTIL(!ntbt_qp_link_is_up(qp));
        ntbt_qp_free(qp);
        pair_destroy(&p);
}

/* After a reset the QP is linked again and good frames flow. */
static void frames_flow_again(void)
{
        int n0;

        WAIT_UNTIL(ntbt_qp_link_is_up(qp));
        n0 = locked_get(&ngot);
        good_frame(0, 100, 0x11);
        good_frame(1, 200, 0x22);
        WAIT_UNTIL(locked_get(&ngot) == n0 + 2);
        CHECK_EQ(got_len[n0], 100);
        CHECK_EQ(got_byte[n0 + 1], 0x22);
}

/* Mismatched scratchpads: reported, named, retried; a flap cleans up. */
static void mismatch_reported(void)
{
        char why[256];

        setup();
        WAIT_UNTIL(own_spad(0) == 4); /* ntbt advertised */
        CHECK_EQ(own_spad(2), 2);
        CHECK_EQ(own_spad(3), 2);
        CHECK_EQ(own_spad(5), MW_SIZE);
        raw_advertise(3, 2, 2, MW_SIZE);
        WAIT_UNTIL(ntbt_transport_mismatch(t, why, sizeof(why)) && strstr(why, "version 3"));
        /* From the second failed try on, it is also said through the log hook. */
        WAIT_UNTIL(__atomic_load_n(&saw_version_log, __ATOMIC_SEQ_CST));
        raw_advertise(4, 3, 2, MW_SIZE);
        WAIT_UNTIL(ntbt_transport_mismatch(t, why, sizeof(why)) && strstr(why, "3 queue pairs"));
        raw_advertise(4, 2, 1, MW_SIZE);
        WAIT_UNTIL(ntbt_transport_mismatch(t, why, sizeof(why)) && strstr(why, "1 memory window"));
        raw_advertise(4, 2, 2, 1ull << 40);
        WAIT_UNTIL(ntbt_transport_mismatch(t, why, sizeof(why)) && strstr(why, "window 0"));
        raw_advertise(4, 2, 2, 0);
        WAIT_UNTIL(ntbt_transport_mismatch(t, why, sizeof(why)) && strstr(why, "is 0 bytes"));
        /* 16 bytes rounds to 4 KiB: fine for the window, and 2 QPs in 4 KiB
         * windows still hold 2 frames each, so it links.  Undo with a flap. */
        advertise_until_up(t, 16);
        CHECK_EQ(ntbt_dev_link_disable(raw), 0); /* flap: the transport goes down */
        WAIT_UNTIL(!ntbt_transport_link_is_up(t));
        /* Down means cleaned up: ntbt's scratchpads (the raw peer's old
         * advertisement) are already zero when link_is_up() says 0. */
        {
                uint32_t v = 1;

                CHECK_EQ(ntbt_dev_peer_spad_read(raw, 0, &v), 0);
                CHECK_EQ(v, 0);
        }
        CHECK_EQ(ntbt_dev_link_enable(raw), 0);
        WAIT_UNTIL(own_spad(0) == 4);
        /* And a good handshake after it. */
        handshake();
        teardown();
}

/* The sender's own refusals (spec section 5 step 1): nothing written. */
static void sender_refusals(void)
{
        static uint8_t big[PAYLOAD + 1];

        setup();
        handshake();
        CHECK_EQ(ntbt_qp_tx_enqueue(qp, NULL, big, PAYLOAD + 1, 0), -EMSGSIZE);
        CHECK_EQ(ntbt_qp_tx_enqueue(qp, NULL, big, 0, 0), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_enqueue(qp, NULL, NULL, 1, 0), -EINVAL);
        CHECK_EQ(ntbt_hdr(0, 2), 0u);
        CHECK_EQ(stats(qp).tx_pkts, 0);
        CHECK_EQ(ntbt_qp_tx_free(qp), ENTRIES - 1);
        teardown();
}

/* Good frames arrive, in order, and ntbt says what it consumed in rx_info. */
static void good_frames_in_order(void)
{
        setup();
        handshake();
        good_frame(0, 10, 0xa0);
        good_frame(1, PAYLOAD, 0xa1);
        WAIT_UNTIL(locked_get(&ngot) == 2);
        CHECK_EQ(got_len[0], 10);
        CHECK_EQ(got_byte[0], 0xa0);
        CHECK_EQ(got_len[1], PAYLOAD);
        /* ntbt wrote rx_info = 1 (the last slot it consumed) into our memory. */
        WAIT_UNTIL(__atomic_load_n((uint32_t *)(void *)(raw_in + RX_INFO), __ATOMIC_ACQUIRE) == 1);
        teardown();
}

/* len larger than the frame: counted, -EMSGSIZE, the slot consumed. */
static void oversized_len(void)
{
        setup();
        handshake();
        raw_frame(0, raw_ver++, PAYLOAD + 1, 1u, 0xbb, 0);
        raw_frame(1, raw_ver++, 0xffffffffu, 1u, 0xbb, 0);
        good_frame(2, 7, 0xa4);
        WAIT_UNTIL(locked_get(&ngot) == 3);
        CHECK_EQ(got_len[0], -EMSGSIZE);
        CHECK_EQ(got_len[1], -EMSGSIZE);
        CHECK_EQ(got_len[2], 7);
        CHECK_EQ(got_byte[2], 0xa4);
        CHECK_EQ(stats(qp).rx_err_oflow, 2);
        teardown();
}

/* Out-of-range rx_info: TX counts it and sends nothing; a good one frees
 * the ring again. */
static void bad_rx_info(void)
{
        setup();
        handshake();
        CHECK_EQ(ntbt_dev_peer_mw_write32(raw, 0, RX_INFO, 5000), 0);
        CHECK_EQ(ntbt_qp_tx_free(qp), 0);
        CHECK_EQ(ntbt_qp_tx_enqueue(qp, NULL, "x", 1, 0), -EAGAIN);
        CHECK(stats(qp).tx_err_rri >= 1);
        CHECK_EQ(ntbt_dev_peer_mw_write32(raw, 0, RX_INFO, ENTRIES - 1), 0);
        CHECK_EQ(ntbt_qp_tx_free(qp), ENTRIES - 1);
        CHECK_EQ(ntbt_qp_tx_enqueue(qp, NULL, "hello", 5, 0), 0);
        CHECK_EQ(ntbt_hdr(0, 2), 1u);
        CHECK_EQ(ntbt_hdr(0, 1), 5u);
        CHECK_EQ(ntbt_hdr(0, 0), 0u);
        CHECK(memcmp(raw_in, "hello", 5) == 0);
        teardown();
}

/* DONE on the wrong slot: nothing is delivered until the slot due; then
 * its ver is wrong: a protocol error, a reset and LINK_DOWN. */
static void done_on_wrong_slot(void)
{
        int i, n0;

        setup();
        handshake();
        raw_frame(4, 0, 3, 1u, 0xcc, 3);
        test_sleep_ms(50);
        CHECK_EQ(locked_get(&ngot), 0);
        /* Then the right slots; slot 4 has ver 0 where 4 is due. */
        n0 = locked_get(&downs);
        for (i = 0; i < 4; i++)
                good_frame((uint32_t)i, 1, (uint8_t)i);
        WAIT_UNTIL(locked_get(&downs) == n0 + 1);
        CHECK_EQ(locked_get(&ngot), 4);
        CHECK_EQ(locked_get(&last_reason), NTBT_QP_DOWN_PROTOCOL);
        CHECK_EQ(stats(qp).rx_err_ver, 1);
        CHECK_EQ(stats(qp).resets, 1);
        /* ntbt sent LINK_DOWN in its next TX slot (0), ver 0. */
        expect_link_down_and_relink(0, 0);
        frames_flow_again();
        teardown();
}

/* A wrong ver on a fresh ring: a protocol error, reset, relinked. */
static void wrong_ver(void)
{
        int n0;

        setup();
        handshake();
        n0 = locked_get(&downs);
        raw_frame(0, 7, 4, 1u, 0xdd, 4);
        WAIT_UNTIL(locked_get(&downs) == n0 + 1);
        CHECK_EQ(locked_get(&last_reason), NTBT_QP_DOWN_PROTOCOL);
        CHECK_EQ(stats(qp).rx_err_ver, 1);
        expect_link_down_and_relink(0, 0);
        frames_flow_again();
        teardown();
}

/* Undefined flag bits: a protocol error, reset, relinked. */
static void undefined_flags(void)
{
        int n0;

        setup();
        handshake();
        n0 = locked_get(&downs);
        raw_frame(0, 0, 4, 1u | 0x100u, 0xee, 4);
        WAIT_UNTIL(locked_get(&downs) == n0 + 1);
        CHECK_EQ(stats(qp).rx_err_flags, 1);
        expect_link_down_and_relink(0, 0);
        frames_flow_again();
        teardown();
}

/* The hostile peer leaves (link lost); a well-behaved one then streams on
 * the same device, both ways on two QPs. */
static void good_peer_after(void)
{
        struct stream_cfg c = {.nqps = 2,
                               .mtu = MTU,
                               .bytes = 4 << 20,
                               .send = 1,
                               .recv = 1,
                               .timeout_ns = 60 * 1000000000LL};
        int n0;

        setup();
        handshake();
        n0 = locked_get(&downs);
        pair_close(&p, 1);
        WAIT_UNTIL(!ntbt_qp_link_is_up(qp));
        /* link_is_up turns 0 as soon as the session ends; the down event,
         * with its reason, follows on the event thread. */
        WAIT_UNTIL(locked_get(&downs) == n0 + 1);
        CHECK_EQ(locked_get(&last_reason), NTBT_QP_DOWN_LINK_LOST);
        ntbt_qp_free(qp);
        pair_close(&p, 0);
        pair_stream(&p, c, c);
        pair_destroy(&p);
}

static const struct test_case cases[] = {
    TEST_CASE(mismatch_reported), TEST_CASE(sender_refusals), TEST_CASE(good_frames_in_order),
    TEST_CASE(oversized_len),     TEST_CASE(bad_rx_info),     TEST_CASE(done_on_wrong_slot),
    TEST_CASE(wrong_ver),         TEST_CASE(undefined_flags), TEST_CASE(good_peer_after),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
