/* SPDX-License-Identifier: MIT */
/*
 * ntbt_qp_tx_enqueue_burst: bad arguments send nothing; NTBT_TX_MORE leaves
 * the doorbell unrung and the burst after it rings; a burst stops before a
 * buffer longer than the max payload; a stream of 20000 frames sent in
 * bursts of 1..48 frames (the ring has 63 slots, so many bursts are taken
 * only in part), the copy mode flipping between bursts, arrives whole and
 * in order (the receiver checks every byte) with every completion in order.
 * ntbt_qp_wait_tx on a peer that never consumes times out without
 * spinning all along.  Both transports live in this process (two ports, poll mode), driven from
 * this thread; each case on a fresh pair.
 */
#include "../harness.h"

#include "../support/pair.h"
#include "../support/session.h"
#include "../support/txlog.h"

#define POOL 128

static uint8_t pool[POOL][65524];
static uint8_t rxbufs[64][65536];
static uint8_t too_big[65536];

/* Frame f of side 1's QP-0 stream, in its pool slot. */
static struct ntbt_tx_buf frame(uint64_t seed, int f, uint32_t payload)
{
        uint32_t len = stream_len(seed, (uint64_t)f, payload, SIZES_RANDOM);

        stream_fill(seed, (uint64_t)f, pool[f % POOL], len);
        return (struct ntbt_tx_buf){
            .buf_ctx = (void *)(intptr_t)f, .data = pool[f % POOL], .len = len};
}

static void drain(struct ntbt_qp *qa, struct ntbt_qp *qb, struct session_rx *s, uint64_t frames)
{
        int64_t deadline = now_ns() + 20000000000LL;

        while (session_get(s, &s->total_frames) < frames) {
                CHECK(now_ns() < deadline);
                ntbt_qp_poll(qb, 64);
                ntbt_qp_poll(qa, 16);
        }
}

static struct pair p;
static struct txlog l;
static struct session_rx s;
static struct ntbt_qp *qa, *qb;
static uint64_t seed;
static uint32_t payload;

/* Sender qa on port 0, checking receiver qb on port 1, both linked. */
static void setup(void)
{
        struct ntbt_qp_handlers tx_h = {.tx = txlog_on_tx};
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = 0, .poll = 1};
        int64_t deadline;

        l = (struct txlog)TXLOG_INIT;
        seed = stream_seed(1, 0);
        pair_create(&p, "burst", NULL);
        pair_open(&p, 0, NULL);
        pair_open(&p, 1, NULL);
        qa = pair_qp(&p, 0, &qo, &tx_h, &l);
        session_init(&s, 65524, SIZES_RANDOM);
        CHECK_EQ(ntbt_qp_create(p.t[1], &qo, &session_handlers, &s, &qb), 0);
        pair_post(qb, rxbufs, 64, sizeof(rxbufs[0]));
        CHECK_EQ(ntbt_qp_link_up(qb), 0);
        deadline = now_ns() + 10000000000LL;
        while (!ntbt_qp_link_is_up(qa) || !ntbt_qp_link_is_up(qb)) {
                CHECK(now_ns() < deadline);
                ntbt_qp_poll(qa, 0);
                ntbt_qp_poll(qb, 0);
                test_sleep_ms(1);
        }
        payload = ntbt_qp_max_payload(qa);
        CHECK_EQ(payload, 65524);
        CHECK_EQ(ntbt_qp_tx_entries(qa), 63);
}

static void teardown(void)
{
        int64_t deadline = now_ns() + 10000000000LL;

        /* qb takes qa's LINK_DOWN before it goes: a close that sent one
         * nobody polls for lingers a second (transport_linger). */
        ntbt_qp_free(qa);
        while (ntbt_qp_link_is_up(qb)) {
                CHECK(now_ns() < deadline);
                ntbt_qp_poll(qb, 64);
        }
        ntbt_qp_free(qb);
        session_destroy(&s);
        pair_destroy(&p);
}

/* Bad arguments: -EINVAL, and nothing goes out. */
static void bad_args_send_nothing(void)
{
        struct ntbt_tx_buf v[2];

        setup();
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 0, 0), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, NULL, 1, 0), -EINVAL);
        v[0] = frame(seed, 0, payload);
        v[1] = (struct ntbt_tx_buf){.data = pool[1], .len = 0};
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 2, 0), -EINVAL);
        v[1] = (struct ntbt_tx_buf){.data = NULL, .len = 10};
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 2, 0), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_free(qa), 62); /* all free: one slot always stays empty */
        CHECK_EQ(txlog_get(&l, &l.n), 0);
        teardown();
}

/* NTBT_TX_MORE leaves the doorbell unrung; the next burst rings once. */
static void more_defers_doorbell(void)
{
        struct ntbt_tx_buf v[3];
        int i, f = 0;

        setup();
        ntbt_dev_db_clear(p.dev[1], 1);
        for (i = 0; i < 3; i++)
                v[i] = frame(seed, f + i, payload);
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 3, NTBT_TX_MORE), 3);
        f += 3;
        CHECK_EQ(ntbt_dev_db_read(p.dev[1]) & 1, 0); /* inline: the frames are written, not rung */
        CHECK_EQ(txlog_get(&l, &l.n), 3);            /* inline completions, before returning */
        for (i = 0; i < 2; i++)
                v[i] = frame(seed, f + i, payload);
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 2, 0), 2);
        f += 2;
        CHECK_EQ(ntbt_dev_db_read(p.dev[1]) & 1, 1);
        drain(qa, qb, &s, (uint64_t)f);
        teardown();
}

/* A burst stops before a buffer longer than the max payload. */
static void stops_before_too_long(void)
{
        struct ntbt_tx_buf v[3];
        int f = 0;

        setup();
        v[0] = frame(seed, f, payload);
        v[1] = frame(seed, f + 1, payload);
        v[2] = (struct ntbt_tx_buf){.data = too_big, .len = payload + 1};
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 3, 0), 2);
        f += 2;
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v + 2, 1, 0), -EMSGSIZE);
        drain(qa, qb, &s, (uint64_t)f);
        CHECK_EQ(txlog_get(&l, &l.n), f);
        teardown();
}

/* 20000 frames in bursts of 1..48, many taken only in part, the copy mode
 * flipping every 13 bursts: whole, in order, every completion in order. */
static void stream_in_partial_bursts(void)
{
        struct ntbt_tx_buf v[48];
        uint64_t rng = 12345;
        int64_t deadline;
        int i, f = 0, bursts = 0, partial = 0;

        setup();
        while (f < 20000) {
                int m = 1 +
                        (int)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 58) %
                            48,
                    k = 0, ret;

                if (f + m > 20000)
                        m = 20000 - f;
                if (++bursts % 13 == 0)
                        CHECK_EQ(ntbt_qp_set_tx_mode(qa, ntbt_qp_tx_mode(qa) == NTBT_TX_THREAD
                                                             ? NTBT_TX_INLINE
                                                             : NTBT_TX_THREAD),
                                 0);
                /* Pool slots are reused only after their completion. */
                deadline = now_ns() + 20000000000LL;
                while (txlog_get(&l, &l.n) < f + m - POOL) {
                        CHECK(now_ns() < deadline);
                        ntbt_qp_poll(qb, 64);
                }
                for (i = 0; i < m; i++)
                        v[i] = frame(seed, f + i, payload);
                while (k < m) {
                        ret = ntbt_qp_tx_enqueue_burst(qa, v + k, (unsigned)(m - k), 0);
                        if (ret == -EAGAIN) {
                                CHECK(now_ns() < deadline);
                                ntbt_qp_poll(qb, 64);
                                ntbt_qp_poll(qa, 16);
                                continue;
                        }
                        CHECK(ret >= 1 && ret <= m - k);
                        if (ret < m - k)
                                partial++;
                        k += ret;
                }
                f += m;
        }
        drain(qa, qb, &s, (uint64_t)f);
        deadline = now_ns() + 10000000000LL;
        while (txlog_get(&l, &l.n) < f) /* the copy thread completes just after ringing */
                CHECK(now_ns() < deadline);
        CHECK_EQ(txlog_get(&l, &l.n), 20000);
        pthread_mutex_lock(&l.lock);
        CHECK_EQ(l.out_of_order, 0);
        CHECK_EQ(l.errors, 0);
        pthread_mutex_unlock(&l.lock);
        CHECK(partial > 0); /* the ring did cut bursts short */
        printf("tx_burst: %d bursts, %d taken in part, %d frames in order\n", bursts, partial, f);

        teardown();
}

/* A peer that never consumes: ntbt_qp_wait_tx times out without burning
 * the core (it spins for microseconds, yields for at most 200 us, then
 * sleeps: util/spin.h), and returns as soon as the peer frees a slot. */
static void wait_tx_sleeps_on_stalled_peer(void)
{
        struct timespec c0, c1;
        int64_t t0, wall, cpu;
        int f = 0;

        setup();
        while (ntbt_qp_tx_free(qa) > 0) {
                struct ntbt_tx_buf v = frame(seed, f, payload);

                CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, &v, 1, 0), 1);
                f++;
        }
        CHECK_EQ(f, 62);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
        t0 = now_ns();
        CHECK_EQ(ntbt_qp_wait_tx(qa, 1, 400 * 1000000LL), -ETIMEDOUT);
        wall = now_ns() - t0;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
        cpu = (int64_t)(c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec);
        printf("tx_burst: wait_tx on a stalled peer: %lld ms, %lld ms of CPU\n",
               (long long)(wall / 1000000), (long long)(cpu / 1000000));
        CHECK(wall >= 400 * 1000000LL);
        CHECK(cpu < wall / 2); /* a wait that spun all along would use it all */
        drain(qa, qb, &s, (uint64_t)f);
        CHECK_EQ(ntbt_qp_wait_tx(qa, 62, 10 * 1000000000LL), 0);
        teardown();
}

static const struct test_case cases[] = {
    TEST_CASE(bad_args_send_nothing),          TEST_CASE(more_defers_doorbell),
    TEST_CASE(stops_before_too_long),          TEST_CASE(stream_in_partial_bursts),
    TEST_CASE(wait_tx_sleeps_on_stalled_peer),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
