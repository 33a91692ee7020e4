/* SPDX-License-Identifier: MIT */
/*
 * The TX copy thread (tx_memcpy_offload): completions come in order; buffers
 * still queued when the QP is freed complete with an error; switching the
 * copy mode mid-stream loses and reorders nothing (the receiver checks
 * every frame); a copy thread that cannot be created leaves the QP inline.
 * Both transports live in this process (two ports), so TSan sees them all.
 */
#include "../harness.h"

#include "../support/session.h"
#include "../support/txlog.h"
#include "transport/copy_thread.h"

static const char *name;

static struct ntbt_dev *open_dev(const char *type, int port, const char *opts)
{
        struct ntbt_dev *d;
        char spec[160];

        snprintf(spec, sizeof(spec), "%s:%s,port=%d%s", type, name, port, opts);
        CHECK_EQ(ntbt_dev_open(spec, &d), 0);
        return d;
}

static int saw_fallback_log;
static void log_hook(void *ctx, int level, const char *msg)
{
        if (strstr(msg, "cannot start the copy thread"))
                __atomic_store_n(&saw_fallback_log, 1, __ATOMIC_SEQ_CST);
        test_log_hook(ctx, level, msg);
}

int main(void)
{
        static uint8_t rxbufs[32][65536];
        static uint8_t payload[64][4096];
        struct ntbt_qp_handlers tx_h = {.tx = txlog_on_tx};
        struct ntbt_transport *ta, *tb;
        struct ntbt_dev *da, *db;
        struct ntbt_qp *qa, *qb;
        struct session_rx s;
        int i, ret;

        ntbt_set_log(log_hook, NULL);
        name = test_dev_name("copy");
        ntbt_shm_remove(name);
        CHECK_EQ(ntbt_shm_create(name, NULL), 0);

        /* ---- 1. order of completions, and a stream that switches modes ---- */
        {
                struct ntbt_transport_opts to = {.size = sizeof(to), .tx_mode = NTBT_TX_THREAD};
                struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = 0, .poll = 1};
                struct txlog l = TXLOG_INIT;
                uint64_t seed = stream_seed(1, 0);
                uint32_t payload_max;

                da = open_dev("shm", 0, "");
                db = open_dev("shm", 1, "");
                CHECK_EQ(ntbt_transport_open(da, &to, &ta), 0); /* thread mode by default */
                CHECK_EQ(ntbt_transport_open(db, NULL, &tb), 0);
                CHECK_EQ(ntbt_qp_create(ta, &qo, &tx_h, &l, &qa), 0);
                CHECK_EQ(ntbt_qp_tx_mode(qa), NTBT_TX_THREAD);
                session_init(&s, 65524, SIZES_RANDOM);
                CHECK_EQ(ntbt_qp_create(tb, NULL, &session_handlers, &s, &qb), 0);
                for (i = 0; i < 32; i++)
                        CHECK_EQ(ntbt_qp_rx_enqueue(qb, NULL, rxbufs[i], sizeof(rxbufs[i])), 0);
                CHECK_EQ(ntbt_qp_link_up(qa), 0);
                CHECK_EQ(ntbt_qp_link_up(qb), 0);
                CHECK_EQ(ntbt_qp_wait_link(qa, 10000000000LL), 0);
                payload_max = ntbt_qp_max_payload(qa);
                CHECK_EQ(payload_max, 65524);
                /* 20000 frames of side 1's stream; the mode flips every 97
                 * frames; frame buffers stay valid until completed (a pool
                 * of 64, reused only after their completion). */
                {
                        static uint8_t pool[64][65524];
                        for (i = 0; i < 20000; i++) {
                                uint32_t len =
                                    stream_len(seed, (uint64_t)i, payload_max, SIZES_RANDOM);

                                if (i % 97 == 96)
                                        CHECK_EQ(ntbt_qp_set_tx_mode(qa, ntbt_qp_tx_mode(qa) ==
                                                                                 NTBT_TX_THREAD
                                                                             ? NTBT_TX_INLINE
                                                                             : NTBT_TX_THREAD),
                                                 0);
                                /* Wait until buffer i % 64 has completed. */
                                while (txlog_get(&l, &l.n) < i - 63)
                                        ntbt_qp_poll(qa, 16);
                                stream_fill(seed, (uint64_t)i, pool[i % 64], len);
                                while ((ret = ntbt_qp_tx_enqueue(qa, (void *)(intptr_t)i,
                                                                 pool[i % 64], len, 0)) == -EAGAIN)
                                        CHECK_EQ(ntbt_qp_wait_tx(qa, 1, 10000000000LL), 0);
                                CHECK_EQ(ret, 0);
                        }
                }
                while (session_get(&s, &s.total_frames) < 20000)
                        CHECK_EQ(ntbt_qp_wait_tx(qa, 1, 10000000000LL), 0);
                /* The copy thread completes a frame just after ringing for it: the
                 * receiver may have taken the last one first. */
                {
                        int64_t d = test_now_ns() + 10000000000LL;
                        while (txlog_get(&l, &l.n) < 20000)
                                CHECK(test_now_ns() < d);
                }
                CHECK_EQ(txlog_get(&l, &l.n), 20000);
                CHECK_EQ(txlog_get(&l, &l.out_of_order), 0);
                CHECK_EQ(txlog_get(&l, &l.errors), 0);
                ntbt_qp_free(qa);
                ntbt_qp_free(qb);
                session_destroy(&s);
                ntbt_transport_close(ta);
                ntbt_transport_close(tb);
                ntbt_dev_close(da);
                ntbt_dev_close(db);
                printf("20000 frames, mode switched every 97: in order, complete\n");
        }

        /* ---- 2. buffers still queued at free complete with an error ---- */
        {
                struct ntbt_qp_opts qo = {
                    .size = sizeof(qo), .qp_num = 0, .tx_mode = NTBT_TX_THREAD};
                struct txlog l = TXLOG_INIT;
                struct ntbt_transport_opts o = {.size = sizeof(o), .transport_mtu = 4096};

                /* A slow link (64 KB/s: ~64 ms a frame, 2.6 s for all 40) keeps jobs
                 * queued even if this test is descheduled for a while. */
                da = open_dev("pcie", 0, ",bw=64K");
                db = open_dev("shm", 1, "");
                CHECK_EQ(ntbt_transport_open(da, &o, &ta), 0);
                CHECK_EQ(ntbt_transport_open(db, &o, &tb), 0);
                CHECK_EQ(ntbt_qp_create(ta, &qo, &tx_h, &l, &qa), 0);
                session_init(&s, 4084, SIZES_MAX);
                CHECK_EQ(ntbt_qp_create(tb, NULL, &session_handlers, &s, &qb), 0);
                for (i = 0; i < 32; i++)
                        CHECK_EQ(ntbt_qp_rx_enqueue(qb, NULL, rxbufs[i], sizeof(rxbufs[i])), 0);
                CHECK_EQ(ntbt_qp_link_up(qa), 0);
                CHECK_EQ(ntbt_qp_link_up(qb), 0);
                CHECK_EQ(ntbt_qp_wait_link(qa, 10000000000LL), 0);
                CHECK_EQ(ntbt_qp_wait_link(qb, 10000000000LL), 0);
                /* Enqueue returns at once in thread mode. */
                {
                        int64_t t0 = test_now_ns();

                        for (i = 0; i < 40; i++) {
                                stream_fill(stream_seed(1, 0), (uint64_t)i, payload[i], 4084);
                                CHECK_EQ(ntbt_qp_tx_enqueue(qa, (void *)(intptr_t)i, payload[i],
                                                            4084, 0),
                                         0);
                        }
                        CHECK(test_now_ns() - t0 < 40 * 4000000LL / 4);
                }
                test_sleep_ms(10);
                ntbt_qp_free(qa);                       /* most of the 40 are still queued */
                CHECK_EQ(l.n, 40);                      /* every buffer came back */
                CHECK_EQ(l.out_of_order, 0);            /* in order */
                CHECK(l.errors > 0);                    /* the unsent ones with an error */
                CHECK_EQ(l.errors, 40 - l.first_error); /* sent ones are a prefix */
                /* The receiver got the sent prefix, intact, then LINK_DOWN. */
                {
                        int64_t d = test_now_ns() + 10000000000LL;
                        while (session_get_int(&s, &s.downs) < 1)
                                CHECK(test_now_ns() < d);
                }
                CHECK_EQ(session_get_int(&s, &s.last_reason), NTBT_QP_DOWN_PEER);
                CHECK_EQ(s.frames_at_down[0], (uint64_t)l.first_error);
                printf("free with %d queued buffers: each completed with an error\n", l.errors);
                ntbt_qp_free(qb);
                session_destroy(&s);
                ntbt_transport_close(ta);
                ntbt_transport_close(tb);
                ntbt_dev_close(da);
                ntbt_dev_close(db);
        }

        /* ---- 3. a copy thread that cannot be created: inline, logged ---- */
        {
                struct ntbt_qp_opts qo = {.size = sizeof(qo), .tx_mode = NTBT_TX_THREAD};

                da = open_dev("shm", 0, "");
                CHECK_EQ(ntbt_transport_open(da, NULL, &ta), 0);
                copy_thread_fault_inject(1);
                CHECK_EQ(ntbt_qp_create(ta, &qo, NULL, NULL, &qa), 0);
                CHECK_EQ(ntbt_qp_tx_mode(qa), NTBT_TX_INLINE);
                CHECK_EQ(__atomic_load_n(&saw_fallback_log, __ATOMIC_SEQ_CST), 1);
                CHECK(ntbt_qp_set_tx_mode(qa, NTBT_TX_THREAD) < 0);
                CHECK_EQ(ntbt_qp_tx_mode(qa), NTBT_TX_INLINE);
                copy_thread_fault_inject(0);
                CHECK_EQ(ntbt_qp_set_tx_mode(qa, NTBT_TX_THREAD), 0);
                CHECK_EQ(ntbt_qp_tx_mode(qa), NTBT_TX_THREAD);
                CHECK_EQ(ntbt_qp_set_tx_mode(qa, 7), -EINVAL);
                ntbt_qp_free(qa);
                ntbt_transport_close(ta);
                ntbt_dev_close(da);
        }
        CHECK_EQ(ntbt_shm_remove(name), 0);
        printf("copy thread: ok\n");
        return 0;
}
