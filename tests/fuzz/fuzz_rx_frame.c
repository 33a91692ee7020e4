/* SPDX-License-Identifier: MIT */
/*
 * (a) The frame headers the peer writes into our receive ring: flags, ver
 * and len of every slot, read by rx_process (spec section 6) through the
 * real poll path of a queue pair that came up through the library's own
 * handshake.  A model of section 6, written from the spec, says what must
 * happen; the walk must match it: which frames are delivered into which
 * buffer with which length (never more than the buffer or the frame holds:
 * each buffer is a heap block of exactly its size), how the walk ends (ring
 * empty, no buffer, protocol reset, the peer's LINK_DOWN, a close from our
 * rx handler), the counters, and what we write back (rx_info, our LINK_DOWN
 * frame on a reset or a close).
 *
 * Input: a geometry (windows, queue pairs, window sizes, mtu), where the
 * walk starts (slot, ver), the budget, a mode (bit 0: the handler posts
 * each buffer again; bit 1: it closes the QP in delivery mode >> 2), the
 * posted buffers' sizes, then 12 header bytes (ver, len, flags) per slot
 * from the start slot on.
 */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "transport/wire.h"

#define MAX_BUFS 32
#define MAX_WALK 256

enum end { END_UP, END_RESET, END_PEER_DOWN, END_LOCAL_DOWN };

struct run {
        const struct qp_geom *g;
        struct fake_dev *d;
        uint8_t *buf[MAX_BUFS];
        uint32_t size[MAX_BUFS];
        int repost;
        int close_at; /* the client closes the QP in this delivery's handler; -1: never */
        /* The model's deliveries, and how many the walk made so far. */
        int want_res[MAX_WALK];
        unsigned want_buf[MAX_WALK], want_slot[MAX_WALK];
        unsigned nwant, ngot;
        int walking; /* after the walk, buffers come back cancelled */
        int downs, down_reason;
};

static void on_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct run *r = ctx;
        unsigned b = (unsigned)(uintptr_t)buf_ctx, k = r->ngot;

        FUZZ_CHECK(b < MAX_BUFS && data == r->buf[b]);
        if (!r->walking) {
                FUZZ_CHECK(len == -ECANCELED);
                return;
        }
        FUZZ_CHECK(k < r->nwant);
        FUZZ_CHECK(b == r->want_buf[k] && len == r->want_res[k]);
        if (len > 0) {
                /* The payload, copied from the start of its frame. */
                uint64_t off = r->g->offset + (uint64_t)r->want_slot[k] * r->g->frame;

                FUZZ_CHECK((uint32_t)len <= r->g->payload && (uint32_t)len <= r->size[b]);
                FUZZ_CHECK(memcmp(data, r->d->in[r->g->mw] + off, (size_t)len) == 0);
        }
        r->ngot++;
        if (r->repost)
                FUZZ_CHECK(ntbt_qp_rx_enqueue(qp, buf_ctx, data, r->size[b]) == 0);
        /* From a handler: the walk stops after this frame, the poll closes. */
        if ((int)k == r->close_at)
                FUZZ_CHECK(ntbt_qp_link_down(qp) == 0);
}

static void on_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        struct run *r = ctx;

        (void)qp;
        if (up) { /* coming up, before the walk */
                FUZZ_CHECK(!r->walking && !r->downs);
                return;
        }
        r->downs++;
        r->down_reason = reason;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fz f = {data, size};
        struct fake_ring fr;
        uint32_t start_pkts, start16;
        int budget;
        uint8_t mode;
        unsigned nbuf, q, i;
        struct ntbt_qp_handlers h = {.rx = on_rx, .event = on_event};
        struct ntbt_qp_stats st = {.size = sizeof(st)};
        struct ntbt_qp *qp;
        struct fake_dev *d;
        struct qp_geom g, tg;
        struct run r;
        /* The model's state: slot flags as it sees them, the buffer FIFO. */
        uint8_t *consumed;
        unsigned fifo[MAX_BUFS + MAX_WALK], fhead = 0, ftail = 0;
        uint32_t idx, pkts, n = 0, oflow = 0, bytes = 0, start;
        uint64_t ring_empty = 0, no_buf = 0, err_ver = 0, err_flags = 0;
        enum end end = END_UP;
        uint8_t *win, *hdr;
        int ret;

        if (fake_ring_new(&f, &fr))
                return 0;
        d = fr.d;
        q = fr.q;
        g = fr.rx;
        tg = fr.tx;
        start_pkts = fz_u32(&f);
        start16 = fz_u16(&f);
        budget = fz_u8(&f);
        mode = fz_u8(&f);
        nbuf = fz_u8(&f) % (MAX_BUFS + 1);
        memset(&r, 0, sizeof(r));
        r.g = &g;
        r.d = d;
        r.repost = mode & 1;
        r.close_at = mode & 2 ? mode >> 2 : -1;
        qp = fake_qp_up(fr.t, q, &h, &r);
        FUZZ_CHECK(qp);
        win = d->in[g.mw];

        /* Where the walk starts: any slot, any ver (the counter wraps). */
        start = start16 % g.entries;
        qp->rx_index = start;
        qp->rx_pkts = start_pkts;
        for (i = 0; i < nbuf; i++) {
                r.size[i] = fz_u16(&f) % (g.payload + 16);
                r.buf[i] = malloc(r.size[i] ? r.size[i] : 1);
                FUZZ_CHECK(r.buf[i]);
                ret = ntbt_qp_rx_enqueue(qp, (void *)(uintptr_t)i, r.buf[i], r.size[i]);
                FUZZ_CHECK(ret == (r.size[i] ? 0 : -EINVAL));
                if (r.size[i])
                        fifo[ftail++] = i;
        }
        /* The peer's headers, slot by slot from the start. */
        for (i = 0; i < g.entries && f.n; i++) {
                uint8_t h12[12];

                for (unsigned k = 0; k < 12; k++)
                        h12[k] = fz_u8(&f);
                memcpy(win + g.offset + (uint64_t)((start + i) % g.entries) * g.frame + g.payload,
                       h12, 12);
        }

        /* The model: spec section 6, step by step. */
        consumed = calloc(g.entries, 1);
        FUZZ_CHECK(consumed);
        idx = start;
        pkts = start_pkts;
        while ((int)n < budget) {
                uint32_t flags, ver, len;
                unsigned b;

                hdr = win + g.offset + (uint64_t)idx * g.frame + g.payload;
                flags = consumed[idx] ? 0 : get_le32(hdr + NTB_HDR_FLAGS_OFF);
                ver = get_le32(hdr + NTB_HDR_VER_OFF);
                len = get_le32(hdr + NTB_HDR_LEN_OFF);
                if (!(flags & NTB_DESC_DONE_FLAG)) {
                        ring_empty += n == 0;
                        break;
                }
                if (flags & ~NTB_FLAGS_VALID) {
                        err_flags++;
                        end = END_RESET;
                        break;
                }
                if (flags & NTB_LINK_DOWN_FLAG) {
                        end = END_PEER_DOWN;
                        break;
                }
                if (ver != pkts) {
                        err_ver++;
                        end = END_RESET;
                        break;
                }
                if (fhead == ftail) {
                        no_buf++;
                        break;
                }
                b = fifo[fhead++];
                FUZZ_CHECK(n < MAX_WALK);
                r.want_buf[n] = b;
                r.want_slot[n] = idx;
                if (len > g.payload || len > r.size[b]) {
                        r.want_res[n] = -EMSGSIZE;
                        oflow++;
                } else {
                        r.want_res[n] = (int)len;
                        bytes += len;
                }
                consumed[idx] = 1;
                idx = (idx + 1) % g.entries;
                pkts++;
                n++;
                if (r.repost)
                        fifo[ftail++] = b;
                if ((int)n - 1 == r.close_at) {
                        end = END_LOCAL_DOWN;
                        break;
                }
        }
        r.nwant = n;

        r.walking = 1;
        ret = ntbt_qp_poll(qp, budget);
        r.walking = 0;
        FUZZ_CHECK(ret == (int)n && r.ngot == n);

        FUZZ_CHECK(ntbt_qp_stats(qp, &st) == 0);
        FUZZ_CHECK(st.rx_pkts == n && st.rx_bytes == bytes && st.rx_err_oflow == oflow);
        FUZZ_CHECK(st.rx_err_ver == err_ver && st.rx_err_flags == err_flags);
        FUZZ_CHECK(st.rx_err_no_buf == no_buf && st.rx_ring_empty == ring_empty);
        FUZZ_CHECK(st.resets == (end == END_RESET));
        FUZZ_CHECK(ntbt_qp_link_is_up(qp) == (end == END_UP));
        FUZZ_CHECK(r.downs == (end != END_UP));
        if (end == END_UP)
                FUZZ_CHECK(qp->rx_index == idx && qp->rx_pkts == pkts);
        else
                FUZZ_CHECK(r.down_reason == (end == END_RESET       ? NTBT_QP_DOWN_PROTOCOL
                                             : end == END_PEER_DOWN ? NTBT_QP_DOWN_PEER
                                                                    : NTBT_QP_DOWN_LOCAL));
        /* Every slot taken, and the peer's LINK_DOWN, is cleared for reuse. */
        for (i = 0; i < g.entries; i++)
                if (consumed[i] || (end == END_PEER_DOWN && i == idx))
                        FUZZ_CHECK(get_le32(win + g.offset + (uint64_t)i * g.frame + g.payload +
                                            NTB_HDR_FLAGS_OFF) == 0);
        /* rx_info names the last slot taken, and only once one was. */
        FUZZ_CHECK(get_le32(d->out[tg.mw] + tg.rx_info_off) ==
                   (n ? (idx + g.entries - 1) % g.entries : 0xA5A5A5A5u));
        /* A reset or a close tells the peer: LINK_DOWN in the first slot of its ring. */
        hdr = d->out[tg.mw] + tg.offset + tg.payload;
        if (end == END_RESET || end == END_LOCAL_DOWN)
                FUZZ_CHECK(get_le32(hdr + NTB_HDR_FLAGS_OFF) ==
                               (NTB_DESC_DONE_FLAG | NTB_LINK_DOWN_FLAG) &&
                           get_le32(hdr + NTB_HDR_LEN_OFF) == 0 &&
                           get_le32(hdr + NTB_HDR_VER_OFF) == 0 && (d->peer_db & (1ull << q)));
        else
                FUZZ_CHECK(get_le32(hdr + NTB_HDR_FLAGS_OFF) == 0xA5A5A5A5u);

        free(consumed);
        fake_ring_free(&fr); /* frees the QP: posted buffers come back cancelled */
        for (i = 0; i < nbuf; i++)
                free(r.buf[i]);
        return 0;
}
