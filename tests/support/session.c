/* SPDX-License-Identifier: MIT */
#include "session.h"

#include <stdlib.h>

#include "../harness.h"

void session_init(struct session_rx *s, uint32_t payload, enum size_mode sizes)
{
        memset(s, 0, sizeof(*s));
        pthread_mutex_init(&s->lock, NULL);
        s->payload = payload;
        s->sizes = sizes;
        s->expect = malloc(payload);
        CHECK(s->expect);
}

void session_destroy(struct session_rx *s)
{
        free(s->expect);
        pthread_mutex_destroy(&s->lock);
}

static void on_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct session_rx *s = ctx;
        uint64_t seed = stream_seed(1, 0);
        uint32_t want;
        int ret;

        (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        pthread_mutex_lock(&s->lock);
        want = stream_len(seed, s->frames, s->payload, s->sizes);
        if (len != (int)want)
                fprintf(stderr, "session %d frame %llu: len %d, want %u\n", s->ups,
                        (unsigned long long)s->frames, len, want);
        CHECK_EQ(len, (int)want);
        stream_fill(seed, s->frames, s->expect, want);
        CHECK(memcmp(s->expect, data, want) == 0);
        s->frames++;
        s->total_frames++;
        s->bytes += want;
        pthread_mutex_unlock(&s->lock);
        /* A free on the test's thread may overlap this handler on the event
         * thread: from then on the QP refuses new buffers with -ESHUTDOWN
         * (ntbt(3), ntbt_qp_free), and this one is no longer needed. */
        ret = ntbt_qp_rx_enqueue(qp, NULL, data, s->payload);
        if (ret != -ESHUTDOWN)
                CHECK_EQ(ret, 0);
}

static void on_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        struct session_rx *s = ctx;

        (void)qp;
        pthread_mutex_lock(&s->lock);
        if (up) {
                s->ups++;
                s->frames = 0;
        } else {
                if (s->downs < 64)
                        s->frames_at_down[s->downs] = s->frames;
                s->downs++;
        }
        s->last_reason = reason;
        pthread_mutex_unlock(&s->lock);
}

const struct ntbt_qp_handlers session_handlers = {.rx = on_rx, .event = on_event};

uint64_t session_get(struct session_rx *s, const uint64_t *field)
{
        uint64_t v;

        pthread_mutex_lock(&s->lock);
        v = *field;
        pthread_mutex_unlock(&s->lock);
        return v;
}

int session_get_int(struct session_rx *s, const int *field)
{
        int v;

        pthread_mutex_lock(&s->lock);
        v = *field;
        pthread_mutex_unlock(&s->lock);
        return v;
}

void session_check_clean(struct ntbt_qp *qp)
{
        struct ntbt_qp_stats st = {.size = sizeof(st)};

        CHECK_EQ(ntbt_qp_stats(qp, &st), 0);
        CHECK_EQ(st.rx_err_ver, 0);
        CHECK_EQ(st.rx_err_oflow, 0);
        CHECK_EQ(st.rx_err_flags, 0);
        CHECK_EQ(st.resets, 0);
}

void session_send(struct ntbt_qp *qp, uint64_t frames, enum size_mode sizes, int64_t timeout_ns)
{
        uint32_t payload = ntbt_qp_max_payload(qp);
        uint64_t seed = stream_seed(1, 0), i;
        uint8_t *buf = malloc(payload);

        CHECK(buf);
        for (i = 0; i < frames; i++) {
                uint32_t len = stream_len(seed, i, payload, sizes);
                int ret;

                stream_fill(seed, i, buf, len);
                while ((ret = ntbt_qp_tx_enqueue(qp, NULL, buf, len, 0)) == -EAGAIN)
                        CHECK_EQ(ntbt_qp_wait_tx(qp, 1, timeout_ns), 0);
                CHECK_EQ(ret, 0);
        }
        free(buf);
}
