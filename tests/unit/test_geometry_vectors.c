/* SPDX-License-Identifier: MIT */
/* Every row of docs/spec/geometry-vectors.csv is reproduced. */
#include "../harness.h"

#include "transport/geometry.h"

static void every_vector_reproduced(void)
{
        char line[512];
        int rows = 0;
        FILE *f = fopen(NTBT_SOURCE_DIR "/docs/spec/geometry-vectors.csv", "r");

        CHECK(f != NULL);
        CHECK(fgets(line, sizeof(line), f) != NULL); /* header */
        CHECK(strncmp(line, "mw_size,mw_count,db_valid_mask,max_qps,transport_mtu,qp_count", 61) ==
              0);
        while (fgets(line, sizeof(line), f)) {
                unsigned long long mw_size, db_mask, region_offset;
                unsigned mw_count, max_qps, mtu, qp_count, q, mw, k, ring, rx_info, frame, entries,
                    payload, first_hdr;
                uint32_t got_qps, got_mws;
                struct qp_geom g;

                CHECK_EQ(sscanf(line, "%llu,%u,%llx,%u,%u,%u,%u,%u,%u,%llu,%u,%u,%u,%u,%u,%u",
                                &mw_size, &mw_count, &db_mask, &max_qps, &mtu, &qp_count, &q, &mw,
                                &k, &region_offset, &ring, &rx_info, &frame, &entries, &payload,
                                &first_hdr),
                         16);
                /* Scratchpads are plentiful here: the CSV's mw_count is the transport's. */
                geom_counts(db_mask, mw_count, 64, max_qps, &got_qps, &got_mws);
                CHECK_EQ(got_mws, mw_count);
                CHECK_EQ(got_qps, qp_count);
                CHECK_EQ(geom_qp(mw_size, got_qps, got_mws, q, mtu, &g), 0);
                CHECK_EQ(g.mw, mw);
                CHECK_EQ(g.qps_in_mw, k);
                CHECK_EQ(g.offset, region_offset);
                CHECK_EQ(g.ring, ring);
                CHECK_EQ(g.rx_info_off, rx_info);
                CHECK_EQ(g.frame, frame);
                CHECK_EQ(g.entries, entries);
                CHECK_EQ(g.payload, payload);
                CHECK_EQ(g.offset + g.frame - 12, first_hdr);
                rows++;
        }
        fclose(f);
        CHECK_EQ(rows, 624);

        /* The scratchpad cap: 6 spads leave room for one window. */
        {
                uint32_t qps, mws;

                geom_counts(0xFFFF, 4, 6, 0, &qps, &mws);
                CHECK_EQ(mws, 1);
                CHECK_EQ(qps, 1);
                geom_counts(0xFFFF, 4, 16, 0, &qps, &mws);
                CHECK_EQ(mws, 4);
                CHECK_EQ(qps, 4);
        }
        /* A region too small for two frames is refused, not computed. */
        {
                struct qp_geom g;

                CHECK_EQ(geom_qp(16, 1, 1, 0, 65536, &g), -EINVAL);
                CHECK_EQ(geom_qp(4096, 1, 1, 1, 65536, &g), -EINVAL);
                CHECK_EQ(geom_qp(1ull << 32, 1, 1, 0, 65536, &g), -EINVAL); /* truncates to 0 */
        }
        printf("geometry vectors: %d rows ok\n", rows);
}

static const struct test_case cases[] = {
    TEST_CASE(every_vector_reproduced),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
