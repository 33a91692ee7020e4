/* SPDX-License-Identifier: MIT */
/*
 * ntbt_qp_tx_enqueue_burst: bad arguments send nothing; NTBT_TX_MORE leaves
 * the doorbell unrung and the burst after it rings; a burst stops before a
 * buffer longer than the max payload; a stream of 20000 frames sent in
 * bursts of 1..48 frames (the ring has 63 slots, so many bursts are taken
 * only in part), the copy mode flipping between bursts, arrives whole and
 * in order (the receiver checks every byte) with every completion in order.
 * Both transports live in this process (two ports, poll mode), driven from
 * this thread.
 */
#include "../harness.h"

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
        int64_t deadline = test_now_ns() + 20000000000LL;

        while (session_get(s, &s->total_frames) < frames) {
                CHECK(test_now_ns() < deadline);
                ntbt_qp_poll(qb, 64);
                ntbt_qp_poll(qa, 16);
        }
}

int main(void)
{
        struct txlog l = TXLOG_INIT;
        struct ntbt_qp_handlers tx_h = {.tx = txlog_on_tx};
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = 0, .poll = 1};
        uint64_t seed = stream_seed(1, 0), rng = 12345;
        struct ntbt_transport *ta, *tb;
        struct ntbt_dev *da, *db;
        struct ntbt_qp *qa, *qb;
        struct ntbt_tx_buf v[48];
        struct session_rx s;
        const char *name;
        char spec[128];
        uint32_t payload;
        int64_t deadline;
        int i, f = 0, bursts = 0, partial = 0;

        ntbt_set_log(test_log_hook, NULL);
        name = test_dev_name("burst");
        ntbt_shm_remove(name);
        CHECK_EQ(ntbt_shm_create(name, NULL), 0);
        snprintf(spec, sizeof(spec), "shm:%s,port=0", name);
        CHECK_EQ(ntbt_dev_open(spec, &da), 0);
        snprintf(spec, sizeof(spec), "shm:%s,port=1", name);
        CHECK_EQ(ntbt_dev_open(spec, &db), 0);
        CHECK_EQ(ntbt_transport_open(da, NULL, &ta), 0);
        CHECK_EQ(ntbt_transport_open(db, NULL, &tb), 0);
        CHECK_EQ(ntbt_qp_create(ta, &qo, &tx_h, &l, &qa), 0);
        session_init(&s, 65524, SIZES_RANDOM);
        CHECK_EQ(ntbt_qp_create(tb, &qo, &session_handlers, &s, &qb), 0);
        for (i = 0; i < 64; i++)
                CHECK_EQ(ntbt_qp_rx_enqueue(qb, NULL, rxbufs[i], sizeof(rxbufs[i])), 0);
        CHECK_EQ(ntbt_qp_link_up(qa), 0);
        CHECK_EQ(ntbt_qp_link_up(qb), 0);
        deadline = test_now_ns() + 10000000000LL;
        while (!ntbt_qp_link_is_up(qa) || !ntbt_qp_link_is_up(qb)) {
                CHECK(test_now_ns() < deadline);
                ntbt_qp_poll(qa, 0);
                ntbt_qp_poll(qb, 0);
                test_sleep_ms(1);
        }
        payload = ntbt_qp_max_payload(qa);
        CHECK_EQ(payload, 65524);
        CHECK_EQ(ntbt_qp_tx_entries(qa), 63);

        /* ---- 1. bad arguments: -EINVAL, and nothing goes out ---- */
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 0, 0), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, NULL, 1, 0), -EINVAL);
        v[0] = frame(seed, 0, payload);
        v[1] = (struct ntbt_tx_buf){.data = pool[1], .len = 0};
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 2, 0), -EINVAL);
        v[1] = (struct ntbt_tx_buf){.data = NULL, .len = 10};
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 2, 0), -EINVAL);
        CHECK_EQ(ntbt_qp_tx_free(qa), 62); /* all free: one slot always stays empty */
        CHECK_EQ(txlog_get(&l, &l.n), 0);

        /* ---- 2. MORE leaves the doorbell unrung; the next burst rings once ---- */
        ntbt_dev_db_clear(db, 1);
        for (i = 0; i < 3; i++)
                v[i] = frame(seed, f + i, payload);
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 3, NTBT_TX_MORE), 3);
        f += 3;
        CHECK_EQ(ntbt_dev_db_read(db) & 1, 0); /* inline: the frames are written, not rung */
        CHECK_EQ(txlog_get(&l, &l.n), 3);      /* inline completions, before returning */
        for (i = 0; i < 2; i++)
                v[i] = frame(seed, f + i, payload);
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 2, 0), 2);
        f += 2;
        CHECK_EQ(ntbt_dev_db_read(db) & 1, 1);
        drain(qa, qb, &s, (uint64_t)f);

        /* ---- 3. a burst stops before a buffer that is too long ---- */
        v[0] = frame(seed, f, payload);
        v[1] = frame(seed, f + 1, payload);
        v[2] = (struct ntbt_tx_buf){.data = too_big, .len = payload + 1};
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v, 3, 0), 2);
        f += 2;
        CHECK_EQ(ntbt_qp_tx_enqueue_burst(qa, v + 2, 1, 0), -EMSGSIZE);
        drain(qa, qb, &s, (uint64_t)f);
        CHECK_EQ(txlog_get(&l, &l.n), f);

        /* ---- 4. a stream in bursts, partly taken, across mode switches ---- */
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
                deadline = test_now_ns() + 20000000000LL;
                while (txlog_get(&l, &l.n) < f + m - POOL) {
                        CHECK(test_now_ns() < deadline);
                        ntbt_qp_poll(qb, 64);
                }
                for (i = 0; i < m; i++)
                        v[i] = frame(seed, f + i, payload);
                while (k < m) {
                        ret = ntbt_qp_tx_enqueue_burst(qa, v + k, (unsigned)(m - k), 0);
                        if (ret == -EAGAIN) {
                                CHECK(test_now_ns() < deadline);
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
        deadline = test_now_ns() + 10000000000LL;
        while (txlog_get(&l, &l.n) < f) /* the copy thread completes just after ringing */
                CHECK(test_now_ns() < deadline);
        CHECK_EQ(txlog_get(&l, &l.n), 20000);
        pthread_mutex_lock(&l.lock);
        CHECK_EQ(l.out_of_order, 0);
        CHECK_EQ(l.errors, 0);
        pthread_mutex_unlock(&l.lock);
        CHECK(partial > 0); /* the ring did cut bursts short */
        printf("tx_burst: %d bursts, %d taken in part, %d frames in order\n", bursts, partial, f);

        ntbt_qp_free(qa);
        ntbt_qp_free(qb);
        session_destroy(&s);
        ntbt_transport_close(ta);
        ntbt_transport_close(tb);
        ntbt_dev_close(da);
        ntbt_dev_close(db);
        ntbt_shm_remove(name);
        return 0;
}
