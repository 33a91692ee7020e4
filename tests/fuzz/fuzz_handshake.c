/* SPDX-License-Identifier: MIT */
/*
 * (c) The scratchpads of the transport handshake (spec section 4): the
 * peer's version, queue-pair and window counts, window sizes (two words
 * each) and ntbt's own advertisement in the last scratchpad (wire.h
 * NTBT_EXT), read by transport_try_up, the event thread's attempt.
 *
 * Input: our device (windows, scratchpads, doorbells, alignment, window
 * sizes), max_qps and mtu, then one word per scratchpad: the value itself,
 * or (mode bit 0) its difference (XOR) from what an honest ntbt peer would
 * write, so that zeros make a valid handshake and the fuzzer starts deep.
 *
 * The transport comes up exactly when the spec's checks pass; then every
 * inbound translation is the peer's size rounded up to the alignment and
 * within the window, every queue pair's ring fits in it, and every queue
 * pair comes up (its ring prepared inside the window: ASan watches).
 * Otherwise nothing is set up and the mismatch is reported (unless the peer
 * has written nothing yet).  Our own advertisement is always written whole.
 */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "transport/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fz f = {data, size};
        uint32_t mws = 1 + fz_u8(&f) % NTBT_MAX_MWS, spads = 6 + fz_u8(&f) % 59;
        uint32_t db_bits = 2 + fz_u8(&f) % 63, max_qps = fz_u8(&f) % 40;
        uint64_t align = 1ull << (fz_u8(&f) % 13);
        uint64_t in_sz[NTBT_MAX_MWS], out_sz[NTBT_MAX_MWS], want_size[NTBT_MAX_MWS];
        uint32_t mtu, mode, valid[64], i, q, ver;
        struct ntbt_transport *t;
        struct fake_dev *d;
        char why[256];
        int up, expect;

        for (i = 0; i < mws; i++) {
                in_sz[i] = 1 + (uint64_t)fz_u16(&f);
                out_sz[i] = 1 + (uint64_t)fz_u16(&f);
        }
        mtu = fz_u32(&f);
        mode = fz_u8(&f);
        d = fake_dev_new(mws, spads, db_bits == 64 ? ~0ull : (1ull << db_bits) - 1, align, in_sz,
                         out_sz);
        t = fake_transport_new(d, max_qps, mtu ? mtu : NTB_TRANSPORT_MTU_DEFAULT);
        if (!t) {
                fake_dev_free(d);
                return 0;
        }
        mtu = t->o.transport_mtu;

        /* What an honest ntbt peer of the same shape writes into our scratchpads. */
        memset(valid, 0, sizeof(valid));
        valid[NTB_SPAD_VERSION] = NTB_TRANSPORT_VERSION;
        valid[NTB_SPAD_NUM_QPS] = t->qp_count;
        valid[NTB_SPAD_NUM_MWS] = t->mw_count;
        for (i = 0; i < t->mw_count; i++)
                valid[NTB_SPAD_MW_SZ_LOW(i)] = (uint32_t)t->in_max[i];
        if (t->ext_spad >= 0 && mtu <= NTBT_EXT_MTU_MAX)
                valid[t->ext_spad] = NTBT_EXT(t->qp_count, mtu);
        for (i = 0; i < spads; i++)
                d->spad[i] = fz_u32(&f) ^ (mode & 1 ? valid[i] : 0);

        /* The spec's checks (section 4 step 2-3, and ntbt's frame size). */
        ver = d->spad[NTB_SPAD_VERSION];
        expect = ver == NTB_TRANSPORT_VERSION && d->spad[NTB_SPAD_NUM_QPS] == t->qp_count &&
                 d->spad[NTB_SPAD_NUM_MWS] == t->mw_count;
        if (expect && t->ext_spad >= 0) {
                uint32_t ext = d->spad[t->ext_spad];

                if (NTBT_EXT_TAG_OF(ext) == NTBT_EXT_TAG && NTBT_EXT_MTU_OF(ext) &&
                    NTBT_EXT_MTU_OF(ext) != mtu)
                        expect = 0;
        }
        for (i = 0; expect && i < t->mw_count; i++) {
                uint64_t s = (uint64_t)d->spad[NTB_SPAD_MW_SZ_HIGH(i)] << 32 |
                             d->spad[NTB_SPAD_MW_SZ_LOW(i)];

                want_size[i] = (s + align - 1) / align * align;
                expect = s >= 1 && s <= t->in_max[i] && want_size[i] <= t->in_max[i];
        }
        for (q = 0; expect && q < t->qp_count; q++) {
                struct qp_geom g;

                expect =
                    geom_qp(want_size[q % t->mw_count], t->qp_count, t->mw_count, q, mtu, &g) == 0;
        }

        transport_try_up(t);
        up = transport_epoch_up(t->epoch);

        /* Our advertisement, whole, whatever the peer wrote. */
        FUZZ_CHECK(d->peer_spad[NTB_SPAD_VERSION] == NTB_TRANSPORT_VERSION);
        FUZZ_CHECK(d->peer_spad[NTB_SPAD_NUM_QPS] == t->qp_count);
        FUZZ_CHECK(d->peer_spad[NTB_SPAD_NUM_MWS] == t->mw_count);
        for (i = 0; i < t->mw_count; i++)
                FUZZ_CHECK(((uint64_t)d->peer_spad[NTB_SPAD_MW_SZ_HIGH(i)] << 32 |
                            d->peer_spad[NTB_SPAD_MW_SZ_LOW(i)]) == t->out_size[i]);
        if (t->ext_spad >= 0 && mtu <= NTBT_EXT_MTU_MAX)
                FUZZ_CHECK(d->peer_spad[t->ext_spad] == NTBT_EXT(t->qp_count, mtu));

        FUZZ_CHECK(up == expect);
        FUZZ_CHECK(ntbt_transport_mismatch(t, why, sizeof(why)) == (!up && ver != 0));
        if (!up) {
                FUZZ_CHECK(t->epoch == 0 && (ver == 0 || why[0]));
                /* A retry fails the same way (and says so in the log). */
                transport_try_up(t);
                FUZZ_CHECK(t->epoch == 0);
                for (i = 0; i < t->mw_count; i++)
                        FUZZ_CHECK(d->xlat[i] == 0);
                fake_transport_free(t);
                fake_dev_free(d);
                return 0;
        }
        FUZZ_CHECK(t->up_link_seq ==
                   ntbt_dev_link_events(t->dev)); /* read after the advertisement */
        for (i = 0; i < t->mw_count; i++) {
                FUZZ_CHECK(t->in_size[i] == want_size[i] && d->xlat[i] == want_size[i]);
                FUZZ_CHECK(t->in_size[i] >= 1 && t->in_size[i] <= d->in_size[i]);
        }
        for (q = 0; q < t->qp_count; q++) {
                struct qp_geom g;
                struct ntbt_qp *qp;

                FUZZ_CHECK(geom_qp(t->in_size[q % t->mw_count], t->qp_count, t->mw_count, q, mtu,
                                   &g) == 0);
                FUZZ_CHECK(g.offset + g.region <= t->in_size[g.mw]);
                FUZZ_CHECK(g.rx_info_off + sizeof(struct ntb_rx_info) <= t->in_size[g.mw]);
                FUZZ_CHECK(g.entries >= 2 && (uint64_t)g.entries * g.frame <= g.ring);
                FUZZ_CHECK(g.frame <= mtu &&
                           g.payload + sizeof(struct ntb_payload_header) == g.frame);
                /* Each queue pair comes up on that ring. */
                qp = fake_qp_up(t, q, NULL, NULL);
                FUZZ_CHECK(qp && ntbt_qp_max_payload(qp) <= g.payload);
        }
        fake_transport_free(t);
        fake_dev_free(d);
        return 0;
}
