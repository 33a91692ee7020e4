/* SPDX-License-Identifier: MIT */
/*
 * A hostile peer.  Port 0 runs the ntbt transport (event mode, in this
 * process, so ASan sees every access); port 1 is a raw peer written from
 * docs/spec/ntb-transport-v4.md that writes garbage: wrong ver, len larger than
 * the frame, DONE on the wrong slot, undefined flag bits, out-of-range
 * rx_info, mismatched scratchpads, protocol version 3.  Counters rise, the
 * QP resets and says LINK_DOWN, nothing crashes, and a well-behaved peer
 * works afterwards.
 */
#include "../harness.h"

#include <pthread.h>

#include "../support/stream.h"

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
                int64_t d_ = test_now_ns() + 5000000000LL;                                         \
                while (!(cond)) {                                                                  \
                        if (test_now_ns() > d_) {                                                  \
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
        int64_t deadline = test_now_ns() + 5000000000LL;

        for (;;) {
                raw_advertise(4, 2, 2, size);
                if (ntbt_transport_link_is_up(t))
                        return;
                if (test_now_ns() > deadline) {
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

int main(void)
{
        const char *name = test_dev_name("hostile");
        struct ntbt_shm_geom g = {.size = sizeof(g), .mw_size = MW_SIZE};
        struct ntbt_transport_opts o = {.size = sizeof(o), .transport_mtu = MTU};
        struct ntbt_qp_handlers h = {.rx = on_rx, .event = on_event};
        static uint8_t bufs[32][PAYLOAD];
        struct ntbt_transport *t;
        struct ntbt_dev *dev;
        struct ntbt_qp *qp;
        char spec[96], why[256];
        uint64_t size;
        void *in;
        int i, n0;

        ntbt_set_log(log_hook, NULL);
        ntbt_shm_remove(name);
        CHECK_EQ(ntbt_shm_create(name, &g), 0);
        snprintf(spec, sizeof(spec), "shm:%s,port=0", name);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        snprintf(spec, sizeof(spec), "shm:%s,port=1", name);
        CHECK_EQ(ntbt_dev_open(spec, &raw), 0);
        CHECK_EQ(ntbt_dev_mw_inbound(raw, 0, &in, &size), 0);
        raw_in = in;
        CHECK_EQ(ntbt_dev_link_enable(raw), 0);

        CHECK_EQ(ntbt_transport_open(dev, &o, &t), 0);
        CHECK_EQ(ntbt_transport_qp_count(t), 2);
        CHECK_EQ(ntbt_qp_create(t, NULL, &h, NULL, &qp), 0);
        for (i = 0; i < 32; i++)
                CHECK_EQ(ntbt_qp_rx_enqueue(qp, NULL, bufs[i], PAYLOAD), 0);
        CHECK_EQ(ntbt_qp_link_up(qp), 0);

        /* ---- mismatched scratchpads: reported, named, retried ---- */
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

        /* ---- a good handshake ---- */
        advertise_until_up(t, MW_SIZE);
        CHECK_EQ(ntbt_transport_mismatch(t, NULL, 0), 0);
        raw_qp_link();
        WAIT_UNTIL(ntbt_qp_link_is_up(qp));
        CHECK_EQ(ntbt_qp_max_payload(qp), PAYLOAD);
        /* The sender's own refusals (spec section 5 step 1), nothing written. */
        {
                static uint8_t big[PAYLOAD + 1];

                CHECK_EQ(ntbt_qp_tx_enqueue(qp, NULL, big, PAYLOAD + 1, 0), -EMSGSIZE);
                CHECK_EQ(ntbt_qp_tx_enqueue(qp, NULL, big, 0, 0), -EINVAL);
                CHECK_EQ(ntbt_qp_tx_enqueue(qp, NULL, NULL, 1, 0), -EINVAL);
                CHECK_EQ(ntbt_hdr(0, 2), 0u);
                CHECK_EQ(stats(qp).tx_pkts, 0);
        }
        CHECK_EQ(ntbt_qp_tx_free(qp), ENTRIES - 1);

        /* Good frames arrive, in order. */
        good_frame(0, 10, 0xa0);
        good_frame(1, PAYLOAD, 0xa1);
        WAIT_UNTIL(locked_get(&ngot) == 2);
        CHECK_EQ(got_len[0], 10);
        CHECK_EQ(got_byte[0], 0xa0);
        CHECK_EQ(got_len[1], PAYLOAD);
        /* ntbt wrote rx_info = 1 (the last slot it consumed) into our memory. */
        WAIT_UNTIL(__atomic_load_n((uint32_t *)(void *)(raw_in + RX_INFO), __ATOMIC_ACQUIRE) == 1);

        /* ---- len larger than the frame: counted, -EMSGSIZE, slot consumed ---- */
        raw_frame(2, raw_ver++, PAYLOAD + 1, 1u, 0xbb, 0);
        raw_frame(3, raw_ver++, 0xffffffffu, 1u, 0xbb, 0);
        good_frame(4, 7, 0xa4);
        WAIT_UNTIL(locked_get(&ngot) == 5);
        CHECK_EQ(got_len[2], -EMSGSIZE);
        CHECK_EQ(got_len[3], -EMSGSIZE);
        CHECK_EQ(got_len[4], 7);
        CHECK_EQ(got_byte[4], 0xa4);
        CHECK_EQ(stats(qp).rx_err_oflow, 2);

        /* ---- out-of-range rx_info: TX counts it and sends nothing ---- */
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
        /* The raw peer consumes it as the spec says. */
        __atomic_store_n((uint32_t *)(void *)(raw_in + PAYLOAD + 8), 0u, __ATOMIC_RELEASE);
        CHECK_EQ(ntbt_dev_peer_mw_write32(raw, 0, RX_INFO, 0), 0);

        /* ---- DONE on the wrong slot: nothing is delivered until slot 5 ---- */
        raw_frame(9, 5, 3, 1u, 0xcc, 3);
        test_sleep_ms(50);
        CHECK_EQ(locked_get(&ngot), 5);
        /* Then the right slots; slot 9 has ver 5 where 9 is due: a protocol error. */
        n0 = locked_get(&downs);
        for (i = 5; i < 9; i++)
                good_frame((uint32_t)i, 1, (uint8_t)i);
        WAIT_UNTIL(locked_get(&downs) == n0 + 1);
        CHECK_EQ(locked_get(&ngot), 9);
        CHECK_EQ(locked_get(&last_reason), NTBT_QP_DOWN_PROTOCOL);
        CHECK_EQ(stats(qp).rx_err_ver, 1);
        CHECK_EQ(stats(qp).resets, 1);
        /* ntbt sent LINK_DOWN in its next TX slot (1), ver 1. */
        expect_link_down_and_relink(1, 1);
        WAIT_UNTIL(ntbt_qp_link_is_up(qp));

        /* ---- wrong ver on a fresh ring ---- */
        n0 = locked_get(&downs);
        raw_frame(0, 7, 4, 1u, 0xdd, 4);
        WAIT_UNTIL(locked_get(&downs) == n0 + 1);
        CHECK_EQ(stats(qp).rx_err_ver, 2);
        expect_link_down_and_relink(0, 0);
        WAIT_UNTIL(ntbt_qp_link_is_up(qp));

        /* ---- undefined flag bits ---- */
        n0 = locked_get(&downs);
        raw_frame(0, 0, 4, 1u | 0x100u, 0xee, 4);
        WAIT_UNTIL(locked_get(&downs) == n0 + 1);
        CHECK_EQ(stats(qp).rx_err_flags, 1);
        expect_link_down_and_relink(0, 0);
        WAIT_UNTIL(ntbt_qp_link_is_up(qp));

        /* After all that, good frames flow again on the re-linked QP. */
        n0 = locked_get(&ngot);
        good_frame(0, 100, 0x11);
        good_frame(1, 200, 0x22);
        WAIT_UNTIL(locked_get(&ngot) == n0 + 2);
        CHECK_EQ(got_len[n0], 100);
        CHECK_EQ(got_byte[n0 + 1], 0x22);

        /* ---- the hostile peer leaves; a well-behaved one works ---- */
        n0 = locked_get(&downs);
        ntbt_dev_close(raw);
        WAIT_UNTIL(!ntbt_qp_link_is_up(qp));
        /* link_is_up turns 0 as soon as the session ends; the down event,
         * with its reason, follows on the event thread. */
        WAIT_UNTIL(locked_get(&downs) == n0 + 1);
        CHECK_EQ(locked_get(&last_reason), NTBT_QP_DOWN_LINK_LOST);
        ntbt_qp_free(qp);
        ntbt_transport_close(t);
        ntbt_dev_close(dev);
        {
                struct stream_cfg c = {.nqps = 2,
                                       .mtu = MTU,
                                       .bytes = 4 << 20,
                                       .send = 1,
                                       .recv = 1,
                                       .timeout_ns = 60 * 1000000000LL};
                struct stream_cfg a = c, b = c;
                char s0[96], s1[96];
                pid_t pid;

                snprintf(s0, sizeof(s0), "shm:%s,port=0", name);
                snprintf(s1, sizeof(s1), "shm:%s,port=1", name);
                a.spec = s0, a.side = 0;
                b.spec = s1, b.side = 1;
                pid = fork();
                CHECK(pid >= 0);
                if (pid == 0) {
                        stream_run(&b);
                        _exit(0);
                }
                stream_run(&a);
                test_reap_ok(pid);
        }
        CHECK_EQ(ntbt_shm_remove(name), 0);
        printf("hostile peer: ok\n");
        return 0;
}
