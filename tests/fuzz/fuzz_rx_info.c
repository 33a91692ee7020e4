/* SPDX-License-Identifier: MIT */
/*
 * (b) The peer's rx_info: the index it writes into our inbound window to say
 * how far it consumed our transmit ring (spec section 5), read by
 * tx_free_locked behind every enqueue, ntbt_qp_tx_free, ntbt_qp_wait_tx,
 * ntbt_qp_stats and the LINK_DOWN frame of ntbt_qp_link_down.
 *
 * Input: a geometry, then operations: the peer writes any rx_info value, or
 * consumes frames as an honest receiver would; we enqueue bursts, ask for
 * free slots, statistics, wait, or close.  Whatever the peer writes, the
 * free count is the spec's formula on an in-range value and 0 on any other
 * (counted in tx_err_rri), frames go to consecutive slots with consecutive
 * ver values and stay inside the peer's window.  While the peer behaves,
 * the sender never writes a slot the peer has not consumed, and accepts
 * exactly as many frames as are free.
 */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "transport/wire.h"

#define MAX_BURST 8

struct run {
        const struct ntbt_tx_buf *v; /* the burst being sent */
        unsigned nv, ndone;
};

static void on_tx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len)
{
        struct run *r = ctx;

        (void)qp;
        /* Completions of the burst, in order. */
        FUZZ_CHECK(r->ndone < r->nv);
        FUZZ_CHECK(buf_ctx == r->v[r->ndone].buf_ctx && data == r->v[r->ndone].data &&
                   len == (int)r->v[r->ndone].len);
        r->ndone++;
}

/* The spec's free count for rx_info entry and our next slot idx. */
static uint32_t spec_free(uint32_t entry, uint32_t idx, uint32_t entries)
{
        if (entry >= entries)
                return 0;
        return entry >= idx ? entry - idx : entries + entry - idx;
}

static uint32_t min3(uint32_t a, uint32_t b, uint32_t c)
{
        uint32_t m = a < b ? a : b;

        return m < c ? m : c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fz f = {data, size};
        struct ntbt_qp_handlers h = {.tx = on_tx};
        struct fake_ring fr;
        struct ntbt_qp *qp;
        struct run r = {0};
        uint8_t *rri_p, *peer;
        /* The model: our next slot and ver, the peer's last rx_info, and
         * while it is honest how many frames it has not consumed yet. */
        uint32_t idx = 0, pkts = 0, rri, outstanding = 0, entries;
        uint64_t rri_errs = 0, tx_pkts = 0;
        int honest = 1, up = 1, ops;
        unsigned i;

        if (fake_ring_new(&f, &fr))
                return 0;
        qp = fake_qp_up(fr.t, fr.q, &h, &r);
        FUZZ_CHECK(qp);
        entries = fr.tx.entries;
        /* rx_info lives at the end of our RX region: the peer writes it there. */
        rri_p = fr.d->in[fr.rx.mw] + fr.rx.rx_info_off;
        peer = fr.d->out[fr.tx.mw] + fr.tx.offset;
        /* Prepared: all slots but one free. */
        rri = get_le32(rri_p);
        FUZZ_CHECK(rri == entries - 1);
        FUZZ_CHECK(ntbt_qp_tx_free(qp) == (int)entries - 1);

        for (ops = 0; up && f.n && ops < 64; ops++) {
                uint8_t op = fz_u8(&f);
                struct ntbt_qp_stats st = {.size = sizeof(st)};
                uint32_t free_now = spec_free(rri, idx, entries);
                int ret;

                switch (op % 7) {
                case 0: { /* the peer writes any value */
                        uint32_t v = fz_u32(&f), j = (v + entries - rri % entries) % entries;

                        if (honest && v < entries && j <= outstanding)
                                outstanding -= j;
                        else
                                honest = 0;
                        rri = v;
                        put_le32(rri_p, v);
                        break;
                }
                case 1: { /* an honest receiver consumes up to m frames */
                        uint32_t m = fz_u8(&f);

                        if (!honest)
                                break;
                        if (m > outstanding)
                                m = outstanding;
                        outstanding -= m;
                        rri = (rri + m) % entries;
                        put_le32(rri_p, rri);
                        break;
                }
                case 2: { /* a burst */
                        uint8_t b = fz_u8(&f);
                        unsigned n = 1 + (b & (MAX_BURST - 1)), lead = 0;
                        unsigned fl = b & MAX_BURST ? NTBT_TX_MORE : 0;
                        struct ntbt_tx_buf v[MAX_BURST];
                        int any_zero = 0;

                        for (i = 0; i < n; i++) {
                                uint32_t len = fz_u16(&f) % (fr.tx.payload + 2);
                                uint8_t *p = malloc(len ? len : 1);

                                FUZZ_CHECK(p);
                                for (uint32_t k = 0; k < len; k++)
                                        p[k] = (uint8_t)(k + i + ops);
                                v[i] = (struct ntbt_tx_buf){(void *)(uintptr_t)i, p, len};
                                any_zero |= len == 0;
                                if (lead == i && len && len <= fr.tx.payload)
                                        lead++;
                        }
                        r.v = v;
                        r.nv = n;
                        r.ndone = 0;
                        fr.d->peer_db = 0;
                        ret = ntbt_qp_tx_enqueue_burst(qp, v, n, fl);
                        if (any_zero)
                                FUZZ_CHECK(ret == -EINVAL);
                        else if (!lead)
                                FUZZ_CHECK(ret == -EMSGSIZE);
                        else if (honest) /* exactly what is free, up to the burst */
                                FUZZ_CHECK(ret ==
                                           (free_now ? (int)min3(n, lead, free_now) : -EAGAIN));
                        else
                                FUZZ_CHECK(ret == -EAGAIN ||
                                           (ret >= 1 && ret <= (int)min3(n, lead, entries - 1)));
                        FUZZ_CHECK(r.ndone == (ret > 0 ? (unsigned)ret : 0));
                        for (i = 0; ret > 0 && i < (unsigned)ret; i++) {
                                uint8_t *frame = peer + (uint64_t)idx * fr.tx.frame;

                                FUZZ_CHECK(get_le32(frame + fr.tx.payload + NTB_HDR_FLAGS_OFF) ==
                                           NTB_DESC_DONE_FLAG);
                                FUZZ_CHECK(get_le32(frame + fr.tx.payload + NTB_HDR_VER_OFF) ==
                                           pkts);
                                FUZZ_CHECK(get_le32(frame + fr.tx.payload + NTB_HDR_LEN_OFF) ==
                                           v[i].len);
                                FUZZ_CHECK(memcmp(frame, v[i].data, v[i].len) == 0);
                                idx = (idx + 1) % entries;
                                pkts++;
                                tx_pkts++;
                                outstanding++;
                        }
                        /* The sender keeps one slot empty: never a slot unconsumed. */
                        if (honest)
                                FUZZ_CHECK(outstanding <= entries - 1);
                        if (ret > 0 && !fl)
                                FUZZ_CHECK(fr.d->peer_db == 1ull << fr.q);
                        for (i = 0; i < n; i++)
                                free((void *)(uintptr_t)v[i].data);
                        break;
                }
                case 3:
                        ret = ntbt_qp_tx_free(qp);
                        rri_errs += rri >= entries;
                        FUZZ_CHECK(ret == (int)free_now && free_now <= entries - 1);
                        break;
                case 4:
                        FUZZ_CHECK(ntbt_qp_stats(qp, &st) == 0);
                        FUZZ_CHECK(st.rri == rri && st.tx_index == idx && st.free_tx == free_now);
                        FUZZ_CHECK(st.tx_max_entry == entries && st.tx_pkts == tx_pkts);
                        /* Counted before the stats' own read of rx_info. */
                        FUZZ_CHECK(st.tx_err_rri >= rri_errs);
                        rri_errs += rri >= entries;
                        break;
                case 5: {
                        int want = 1 + fz_u8(&f);

                        ret = ntbt_qp_wait_tx(qp, want, 0);
                        rri_errs += rri >= entries;
                        FUZZ_CHECK(ret == ((int)free_now >= want ? 0 : -ETIMEDOUT));
                        break;
                }
                case 6: /* close: LINK_DOWN goes to the next slot if one is free */
                        FUZZ_CHECK(ntbt_qp_link_down(qp) == 0);
                        if (free_now) {
                                uint8_t *hdr = peer + (uint64_t)idx * fr.tx.frame + fr.tx.payload;

                                FUZZ_CHECK(get_le32(hdr + NTB_HDR_FLAGS_OFF) ==
                                           (NTB_DESC_DONE_FLAG | NTB_LINK_DOWN_FLAG));
                                FUZZ_CHECK(get_le32(hdr + NTB_HDR_VER_OFF) == pkts);
                                FUZZ_CHECK(get_le32(hdr + NTB_HDR_LEN_OFF) == 0);
                        }
                        FUZZ_CHECK(!ntbt_qp_link_is_up(qp) && ntbt_qp_tx_free(qp) == 0);
                        {
                                struct ntbt_tx_buf one = {NULL, "x", 1};

                                FUZZ_CHECK(ntbt_qp_tx_enqueue_burst(qp, &one, 1, 0) == -ENOLINK);
                        }
                        up = 0;
                        break;
                }
        }
        fake_ring_free(&fr);
        return 0;
}
