/* SPDX-License-Identifier: MIT */
/*
 * Wire layout: every peer-visible offset and constant in wire.h against the
 * numbers written in docs/spec/ntb-transport-v4.md, and where the geometry puts
 * headers and rx_info for a known window.
 */
#include "../harness.h"

#include "transport/geometry.h"
#include "transport/wire.h"

static void offsets_match_spec(void)
{
        struct qp_geom g;

        /* Section 2. */
        CHECK_EQ(NTB_TRANSPORT_VERSION, 4);
        CHECK_EQ(NTB_MIN_SPADS, 6);
        CHECK_EQ(NTB_TRANSPORT_MTU_DEFAULT, 65536);
        CHECK_EQ(NTB_HANDSHAKE_RETRY_NS, 10 * 1000 * 1000);
        CHECK_EQ(sizeof(struct ntb_payload_header), 12);
        CHECK_EQ(sizeof(struct ntb_rx_info), 4);
        /* Section 3: header fields. */
        CHECK_EQ(NTB_HDR_VER_OFF, 0);
        CHECK_EQ(NTB_HDR_LEN_OFF, 4);
        CHECK_EQ(NTB_HDR_FLAGS_OFF, 8);
        CHECK_EQ(NTB_DESC_DONE_FLAG, 1);
        CHECK_EQ(NTB_LINK_DOWN_FLAG, 2);
        /* Section 4: scratchpads. */
        CHECK_EQ(NTB_SPAD_VERSION, 0);
        CHECK_EQ(NTB_SPAD_QP_LINKS, 1);
        CHECK_EQ(NTB_SPAD_NUM_QPS, 2);
        CHECK_EQ(NTB_SPAD_NUM_MWS, 3);
        CHECK_EQ(NTB_SPAD_MW_SZ_HIGH(0), 4);
        CHECK_EQ(NTB_SPAD_MW_SZ_LOW(0), 5);
        CHECK_EQ(NTB_SPAD_MW_SZ_HIGH(3), 10);
        CHECK_EQ(NTB_SPAD_MW_SZ_LOW(3), 11);

        /* Default geometry: 4 MiB window, one QP in it, 64 KiB frames. */
        CHECK_EQ(geom_qp(4 << 20, 2, 2, 1, 65536, &g), 0);
        CHECK_EQ(g.mw, 1);
        CHECK_EQ(g.offset, 0);
        CHECK_EQ(g.ring, (4 << 20) - 4);
        CHECK_EQ(g.rx_info_off, (4 << 20) - 4); /* the region's last 4 bytes */
        CHECK_EQ(g.frame, 65536);
        CHECK_EQ(g.entries, 63); /* (4 MiB - 4) / 64 KiB */
        CHECK_EQ(g.payload, 65524);
        /* Frame i's header: the last 12 bytes of [offset + i*frame, +frame). */
        CHECK_EQ(g.offset + 5ull * g.frame + g.payload, 6ull * 65536 - 12);
        /* Two QPs in one window: the second region starts at half. */
        CHECK_EQ(geom_qp(1 << 20, 2, 1, 1, 65536, &g), 0);
        CHECK_EQ(g.offset, 1 << 19);
        CHECK_EQ(g.rx_info_off, (1 << 20) - 4);
        printf("wire layout: ok\n");
}

static const struct test_case cases[] = {
    TEST_CASE(offsets_match_spec),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
