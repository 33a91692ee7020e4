/* SPDX-License-Identifier: MIT */
#include "stream.h"

#include <pthread.h>
#include <stdlib.h>

#include "../harness.h"

static uint64_t splitmix(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

uint64_t stream_seed(int side, int q)
{
        return 0x6e7462740000ull + (uint64_t)side * 1000 + (uint64_t)q;
}

uint32_t stream_len(uint64_t seed, uint64_t i, uint32_t payload, enum size_mode mode)
{
        uint64_t s = seed ^ (i * 0x2545f4914f6cdd1dull);

        switch (mode) {
        case SIZES_SWEEP:
                return (uint32_t)(i % payload) + 1;
        case SIZES_MAX:
                return payload;
        case SIZES_RANDOM:
        default:
                if (i == 0)
                        return 1;
                if (i == 1)
                        return payload;
                if (i == 2)
                        return payload - 1;
                if (i == 3)
                        return 2;
                return (uint32_t)(splitmix(&s) % payload) + 1;
        }
}

void stream_fill(uint64_t seed, uint64_t i, uint8_t *buf, uint32_t len)
{
        uint64_t s = seed * 31 + i;
        uint32_t k = 0;

        for (; k + 8 <= len; k += 8) {
                uint64_t v = splitmix(&s);
                memcpy(buf + k, &v, 8);
        }
        if (k < len) {
                uint64_t v = splitmix(&s);
                memcpy(buf + k, &v, len - k);
        }
}

struct qp_side {
        const struct stream_cfg *cfg;
        struct ntbt_qp *qp;
        int q;
        uint32_t payload;
        uint64_t rx_frames, rx_bytes, rx_target;
        uint8_t *expect;
        uint8_t *bufs;
        int nbufs;
        uint32_t buf_len;
        int rx_done;     /* atomic */
        int peer_closed; /* atomic: the peer sent LINK_DOWN (after taking everything) */
        pthread_t thread;
};

static void on_rx(struct ntbt_qp *qp, void *qp_ctx, void *buf_ctx, void *data, int len)
{
        struct qp_side *s = qp_ctx;
        uint64_t seed = stream_seed(1 - s->cfg->side, s->q);
        uint32_t want;

        (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        if (len < 0)
                fprintf(stderr, "qp %d: rx error %d at frame %llu\n", s->q, len,
                        (unsigned long long)s->rx_frames);
        CHECK(len > 0);
        want = stream_len(seed, s->rx_frames, s->payload, s->cfg->sizes);
        if (s->rx_bytes + want > s->rx_target)
                want = (uint32_t)(s->rx_target - s->rx_bytes);
        if ((uint32_t)len != want)
                fprintf(stderr, "qp %d frame %llu: len %d, expected %u\n", s->q,
                        (unsigned long long)s->rx_frames, len, want);
        CHECK_EQ((uint32_t)len, want);
        stream_fill(seed, s->rx_frames, s->expect, want);
        if (memcmp(s->expect, data, want) != 0)
                fprintf(stderr, "qp %d frame %llu (%u bytes): content differs\n", s->q,
                        (unsigned long long)s->rx_frames, want);
        CHECK(memcmp(s->expect, data, want) == 0);
        s->rx_frames++;
        s->rx_bytes += want;
        if (s->rx_bytes == s->rx_target)
                __atomic_store_n(&s->rx_done, 1, __ATOMIC_SEQ_CST);
        CHECK_EQ(ntbt_qp_rx_enqueue(qp, NULL, data, s->buf_len), 0);
}

static void on_event(struct ntbt_qp *qp, void *qp_ctx, int up, int reason)
{
        struct qp_side *s = qp_ctx;

        (void)qp;
        if (!up && reason == NTBT_QP_DOWN_PEER)
                __atomic_store_n(&s->peer_closed, 1, __ATOMIC_SEQ_CST);
        else if (!up)
                fprintf(stderr, "qp %d: link down, reason %d\n", s->q, reason);
}

static void *qp_thread(void *arg)
{
        struct qp_side *s = arg;
        const struct stream_cfg *c = s->cfg;
        int64_t deadline = now_ns() + c->timeout_ns;
        uint64_t seed = stream_seed(c->side, s->q), sent = 0, i = 0;
        uint8_t *buf = malloc(s->payload);
        int entries;

        CHECK(buf);
        while (c->send && sent < c->bytes) {
                uint32_t len = stream_len(seed, i, s->payload, c->sizes);
                int ret;

                if (len > c->bytes - sent)
                        len = (uint32_t)(c->bytes - sent);
                stream_fill(seed, i, buf, len);
                while ((ret = ntbt_qp_tx_enqueue(s->qp, NULL, buf, len, 0)) == -EAGAIN) {
                        ret = ntbt_qp_wait_tx(s->qp, 1, deadline - now_ns());
                        if (ret)
                                fprintf(stderr, "qp %d: wait_tx: %d\n", s->q, ret);
                        CHECK_EQ(ret, 0);
                }
                if (ret)
                        fprintf(stderr, "qp %d: enqueue frame %llu (%u bytes): %d\n", s->q,
                                (unsigned long long)i, len, ret);
                CHECK_EQ(ret, 0);
                sent += len;
                i++;
        }
        /* Everything consumed by the peer. */
        entries = ntbt_qp_tx_entries(s->qp);
        while (c->send && ntbt_qp_tx_free(s->qp) < entries - 1) {
                /* The peer closes only after taking every frame. */
                if (__atomic_load_n(&s->peer_closed, __ATOMIC_SEQ_CST))
                        break;
                CHECK(now_ns() < deadline);
                CHECK(ntbt_qp_link_is_up(s->qp));
                if (c->poll)
                        ntbt_qp_poll(s->qp, 64);
                else
                        usleep(100);
        }
        while (c->recv && !__atomic_load_n(&s->rx_done, __ATOMIC_SEQ_CST)) {
                if (now_ns() > deadline)
                        fprintf(stderr, "qp %d: timeout with %llu of %llu bytes received\n", s->q,
                                (unsigned long long)s->rx_bytes, (unsigned long long)s->rx_target);
                CHECK(now_ns() < deadline);
                if (c->poll)
                        ntbt_qp_poll(s->qp, 64);
                else
                        usleep(200);
        }
        free(buf);
        return NULL;
}

void stream_run(const struct stream_cfg *c)
{
        struct ntbt_transport_opts o = {.size = sizeof(o),
                                        .transport_mtu = c->mtu,
                                        .max_qps = c->max_qps,
                                        .rx_threads = c->rx_threads};
        struct ntbt_qp_handlers h = {.rx = on_rx, .event = on_event};
        struct qp_side *sides = calloc((size_t)c->nqps, sizeof(*sides));
        struct ntbt_transport *t;
        struct ntbt_dev *dev;
        int q, k;

        CHECK(sides);
        CHECK_EQ(ntbt_dev_open(c->spec, &dev), 0);
        CHECK_EQ(ntbt_transport_open(dev, &o, &t), 0);
        CHECK(ntbt_transport_qp_count(t) >= c->nqps);
        if (c->rx_threads) /* as asked, never more than the QPs */
                CHECK_EQ(ntbt_transport_rx_threads(t),
                         (int)c->rx_threads < ntbt_transport_qp_count(t)
                             ? (int)c->rx_threads
                             : ntbt_transport_qp_count(t));
        for (q = 0; q < c->nqps; q++) {
                struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = q, .poll = c->poll};
                struct qp_side *s = &sides[q];

                s->cfg = c;
                s->q = q;
                s->rx_target = c->recv ? c->bytes : 0;
                CHECK_EQ(ntbt_qp_create(t, &qo, &h, s, &s->qp), 0);
                CHECK_EQ(ntbt_qp_link_up(s->qp), 0);
        }
        for (q = 0; q < c->nqps; q++) {
                struct qp_side *s = &sides[q];

                CHECK_EQ(ntbt_qp_wait_link(s->qp, c->timeout_ns), 0);
                s->payload = ntbt_qp_max_payload(s->qp);
                CHECK(s->payload > 0);
                s->buf_len = s->payload;
                s->expect = malloc(s->payload);
                s->nbufs = 32;
                s->bufs = malloc((size_t)s->nbufs * s->buf_len);
                CHECK(s->expect && s->bufs);
                for (k = 0; k < s->nbufs; k++)
                        CHECK_EQ(ntbt_qp_rx_enqueue(s->qp, NULL, s->bufs + (size_t)k * s->buf_len,
                                                    s->buf_len),
                                 0);
                if (!c->recv)
                        s->rx_done = 1;
        }
        /* Buffers are posted only now: frames that came first waited in the
         * ring (rx_err_no_buf), and are taken at the next look. */
        for (q = 0; q < c->nqps; q++)
                CHECK_EQ(pthread_create(&sides[q].thread, NULL, qp_thread, &sides[q]), 0);
        for (q = 0; q < c->nqps; q++)
                pthread_join(sides[q].thread, NULL);
        for (q = 0; q < c->nqps; q++) {
                struct ntbt_qp_stats st = {.size = sizeof(st)};

                CHECK_EQ(ntbt_qp_stats(sides[q].qp, &st), 0);
                CHECK_EQ(st.rx_err_ver, 0);
                CHECK_EQ(st.rx_err_oflow, 0);
                CHECK_EQ(st.rx_err_flags, 0);
                CHECK_EQ(st.tx_err_rri, 0);
                CHECK_EQ(st.resets, 0);
                CHECK_EQ(st.rx_bytes, c->recv ? c->bytes : 0);
                if (c->send)
                        CHECK_EQ(st.tx_bytes, c->bytes);
        }
        /* Both sides are done with every frame before either closes. */
        for (q = 0; q < c->nqps; q++) {
                ntbt_qp_free(sides[q].qp);
                free(sides[q].expect);
                free(sides[q].bufs);
        }
        ntbt_transport_close(t);
        ntbt_dev_close(dev);
        free(sides);
}
