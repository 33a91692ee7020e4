/* SPDX-License-Identifier: MIT */
/*
 * The TX copy thread (tx_memcpy_offload): completions come in order; buffers
 * still queued when the QP is freed complete with an error; switching the
 * copy mode mid-stream loses and reorders nothing (the receiver checks
 * every frame); a copy thread that cannot be created leaves the QP inline.
 * Both transports live in this process (two ports), so TSan sees them all.
 */
#include "../harness.h"

#include "../support/pair.h"
#include "../support/session.h"
#include "../support/txlog.h"
#include "transport/copy_thread.h"

static struct pair p;

/* The pcie model over the pair's device, on port 0. */
static struct ntbt_dev *open_pcie(const char *opts)
{
        struct ntbt_dev *d;
        char spec[160];

        snprintf(spec, sizeof(spec), "pcie:%s,port=0%s", p.name, opts);
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

static uint8_t rxbufs[32][65536];

/* QP 0 on both ports: a sender on port 0 whose completions go to l, and a
 * checking receiver on port 1 with 32 buffers posted; both asked to link. */
static void create_qps(const struct ntbt_qp_opts *qo, struct txlog *l, struct session_rx *s,
                       struct ntbt_qp **qa, struct ntbt_qp **qb)
{
        struct ntbt_qp_handlers tx_h = {.tx = txlog_on_tx};

        CHECK_EQ(ntbt_qp_create(p.t[0], qo, &tx_h, l, qa), 0);
        CHECK_EQ(ntbt_qp_create(p.t[1], NULL, &session_handlers, s, qb), 0);
        pair_post(*qb, rxbufs, 32, sizeof(rxbufs[0]));
        CHECK_EQ(ntbt_qp_link_up(*qa), 0);
        CHECK_EQ(ntbt_qp_link_up(*qb), 0);
}

/* Completions come in order, and a stream that switches copy modes every
 * 97 frames arrives whole. */
static void order_across_mode_switches(void)
{
        struct ntbt_qp *qa, *qb;
        struct session_rx s;
        int i, ret;
        struct ntbt_transport_opts to = {.size = sizeof(to), .tx_mode = NTBT_TX_THREAD};
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = 0, .poll = 1};
        struct txlog l = TXLOG_INIT;
        uint64_t seed = stream_seed(1, 0);
        uint32_t payload_max;

        pair_create(&p, "copy", NULL);
        pair_open(&p, 0, &to); /* thread mode by default */
        pair_open(&p, 1, NULL);
        session_init(&s, 65524, SIZES_RANDOM);
        create_qps(&qo, &l, &s, &qa, &qb);
        CHECK_EQ(ntbt_qp_tx_mode(qa), NTBT_TX_THREAD);
        CHECK_EQ(ntbt_qp_wait_link(qa, 10000000000LL), 0);
        payload_max = ntbt_qp_max_payload(qa);
        CHECK_EQ(payload_max, 65524);
        /* 20000 frames of side 1's stream; the mode flips every 97
         * frames; frame buffers stay valid until completed (a pool
         * of 64, reused only after their completion). */
        {
                static uint8_t pool[64][65524];
                for (i = 0; i < 20000; i++) {
                        uint32_t len = stream_len(seed, (uint64_t)i, payload_max, SIZES_RANDOM);

                        if (i % 97 == 96)
                                CHECK_EQ(
                                    ntbt_qp_set_tx_mode(qa, ntbt_qp_tx_mode(qa) == NTBT_TX_THREAD
                                                                ? NTBT_TX_INLINE
                                                                : NTBT_TX_THREAD),
                                    0);
                        /* Wait until buffer i % 64 has completed. */
                        while (txlog_get(&l, &l.n) < i - 63)
                                ntbt_qp_poll(qa, 16);
                        stream_fill(seed, (uint64_t)i, pool[i % 64], len);
                        while ((ret = ntbt_qp_tx_enqueue(qa, (void *)(intptr_t)i, pool[i % 64], len,
                                                         0)) == -EAGAIN)
                                CHECK_EQ(ntbt_qp_wait_tx(qa, 1, 10000000000LL), 0);
                        CHECK_EQ(ret, 0);
                }
        }
        while (session_get(&s, &s.total_frames) < 20000)
                CHECK_EQ(ntbt_qp_wait_tx(qa, 1, 10000000000LL), 0);
        /* The copy thread completes a frame just after ringing for it: the
         * receiver may have taken the last one first. */
        {
                int64_t d = now_ns() + 10000000000LL;
                while (txlog_get(&l, &l.n) < 20000)
                        CHECK(now_ns() < d);
        }
        CHECK_EQ(txlog_get(&l, &l.n), 20000);
        CHECK_EQ(txlog_get(&l, &l.out_of_order), 0);
        CHECK_EQ(txlog_get(&l, &l.errors), 0);
        ntbt_qp_free(qa);
        ntbt_qp_free(qb);
        session_destroy(&s);
        printf("20000 frames, mode switched every 97: in order, complete\n");
        pair_destroy(&p);
}

/* Buffers still queued to the copy thread when the QP is freed complete
 * with an error; the sent ones are a prefix. */
static void queued_at_free_complete_with_error(void)
{
        struct ntbt_qp *qa, *qb;
        struct session_rx s;
        static uint8_t payload[64][4096];
        int i;
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = 0, .tx_mode = NTBT_TX_THREAD};
        struct txlog l = TXLOG_INIT;
        struct ntbt_transport_opts o = {.size = sizeof(o), .transport_mtu = 4096};

        pair_create(&p, "copy", NULL);
        /* A slow link (64 KB/s: ~64 ms a frame, 2.6 s for all 40) keeps jobs
         * queued even if this test is descheduled for a while. */
        p.dev[0] = open_pcie(",bw=64K"); /* the pair closes it */
        CHECK_EQ(ntbt_transport_open(p.dev[0], &o, &p.t[0]), 0);
        pair_open(&p, 1, &o);
        session_init(&s, 4084, SIZES_MAX);
        create_qps(&qo, &l, &s, &qa, &qb);
        CHECK_EQ(ntbt_qp_wait_link(qa, 10000000000LL), 0);
        CHECK_EQ(ntbt_qp_wait_link(qb, 10000000000LL), 0);
        /* Enqueue returns at once in thread mode. */
        {
                int64_t t0 = now_ns();

                for (i = 0; i < 40; i++) {
                        stream_fill(stream_seed(1, 0), (uint64_t)i, payload[i], 4084);
                        CHECK_EQ(ntbt_qp_tx_enqueue(qa, (void *)(intptr_t)i, payload[i], 4084, 0),
                                 0);
                }
                CHECK(now_ns() - t0 < 40 * 4000000LL / 4);
        }
        test_sleep_ms(10);
        ntbt_qp_free(qa);                       /* most of the 40 are still queued */
        CHECK_EQ(l.n, 40);                      /* every buffer came back */
        CHECK_EQ(l.out_of_order, 0);            /* in order */
        CHECK(l.errors > 0);                    /* the unsent ones with an error */
        CHECK_EQ(l.errors, 40 - l.first_error); /* sent ones are a prefix */
        /* The receiver got the sent prefix, intact, then LINK_DOWN. */
        {
                int64_t d = now_ns() + 10000000000LL;
                while (session_get_int(&s, &s.downs) < 1)
                        CHECK(now_ns() < d);
        }
        CHECK_EQ(session_get_int(&s, &s.last_reason), NTBT_QP_DOWN_PEER);
        CHECK_EQ(s.frames_at_down[0], (uint64_t)l.first_error);
        printf("free with %d queued buffers: each completed with an error\n", l.errors);
        ntbt_qp_free(qb);
        session_destroy(&s);
        pair_destroy(&p);
}

/* A copy thread that cannot be created leaves the QP inline, and says so
 * in the log. */
static void thread_fails_inline(void)
{
        struct ntbt_transport *ta;
        struct ntbt_qp *qa;
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .tx_mode = NTBT_TX_THREAD};

        pair_create(&p, "copy", NULL);
        ta = pair_open(&p, 0, NULL);
        ntbt_set_log(log_hook, NULL);
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
        pair_destroy(&p);
}

static const struct test_case cases[] = {
    TEST_CASE(order_across_mode_switches),
    TEST_CASE(queued_at_free_complete_with_error),
    TEST_CASE(thread_fails_inline),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
