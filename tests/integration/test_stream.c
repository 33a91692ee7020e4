/* SPDX-License-Identifier: MIT */
/*
 * Two processes streaming checked data through the API: 256 MiB on one QP,
 * every payload size on 15-frame rings, several QPs in both directions, and
 * large rings; poll mode on one side, event mode on the other.
 */
#include "../harness.h"

#include "../support/pair.h"

static const struct stream_cfg base = {.nqps = 1, .timeout_ns = 120 * 1000000000LL};

static void run_pair(const char *tag, const struct ntbt_shm_geom *g, struct stream_cfg a,
                     struct stream_cfg b)
{
        struct pair p;

        pair_create(&p, tag, g);
        pair_stream(&p, a, b);
        pair_destroy(&p);
}

/* 256 MiB one way, random sizes with the boundaries; receiver in event
 * mode, sender polling. */
static void one_way_256M(void)
{
        struct stream_cfg a = base, b = base;

        a.recv = 1, a.bytes = b.bytes = 256ull << 20;
        b.send = 1, b.poll = 1;
        run_pair("stream-256M", NULL, a, b);
}

/* Every payload size 1..4084 on 15-frame rings (64 KiB windows, 4 KiB
 * frames), both directions, one side polling. */
static void sweep_15_frames(void)
{
        struct ntbt_shm_geom g = {.size = sizeof(g), .mw_size = 64 << 10};
        struct stream_cfg a = base, b = base;

        a.mtu = b.mtu = 4096;
        a.sizes = b.sizes = SIZES_SWEEP;
        a.bytes = b.bytes = 4084ull * 4085 / 2; /* exactly one sweep */
        a.send = a.recv = b.send = b.recv = 1;
        b.poll = 1;
        run_pair("sweep-15-frames", &g, a, b);
}

/* Three QPs over two windows, both directions at once. */
static void three_qps_bidir(void)
{
        struct ntbt_shm_geom g = {.size = sizeof(g), .mw_size = 1 << 20};
        struct stream_cfg a = base, b = base;

        a.nqps = b.nqps = 3;
        a.max_qps = b.max_qps = 3;
        a.bytes = b.bytes = 16ull << 20;
        a.send = a.recv = b.send = b.recv = 1;
        run_pair("three-qps-bidir", &g, a, b);
}

/* Large rings: 32 MiB windows, 64 KiB frames (255 entries), max-size frames. */
static void large_rings(void)
{
        struct ntbt_shm_geom g = {.size = sizeof(g), .mw_size = 32 << 20};
        struct stream_cfg a = base, b = base;

        a.sizes = b.sizes = SIZES_MAX;
        a.bytes = b.bytes = 64ull << 20;
        a.send = 1, b.recv = 1;
        a.poll = 1;
        run_pair("large-rings", &g, a, b);
}

/* Geometries whose header and rx_info words are not 4-aligned (180 of the
 * spec's 624 vectors): 64 KiB windows at the default MTU give 32766-byte
 * frames. */
static void unaligned_frames(void)
{
        struct ntbt_shm_geom g = {.size = sizeof(g), .mw_size = 64 << 10};
        struct stream_cfg a = base, b = base;

        a.bytes = b.bytes = 4ull << 20;
        a.send = a.recv = b.send = b.recv = 1;
        b.poll = 1;
        run_pair("unaligned-frames", &g, a, b);
}

/* Three QPs in one 64 KiB window give 21845-byte regions, so QPs 1 and 2
 * start at odd offsets. */
static void unaligned_regions(void)
{
        struct ntbt_shm_geom g = {.size = sizeof(g), .mw_size = 64 << 10, .mw_count = 1};
        struct stream_cfg a = base, b = base;

        a.bytes = b.bytes = 4ull << 20;
        a.send = a.recv = b.send = b.recv = 1;
        b.poll = 1;
        a.nqps = b.nqps = 3;
        a.max_qps = b.max_qps = 3;
        run_pair("unaligned-regions", &g, a, b);
}

static const struct test_case cases[] = {
    TEST_CASE(one_way_256M), TEST_CASE(sweep_15_frames),  TEST_CASE(three_qps_bidir),
    TEST_CASE(large_rings),  TEST_CASE(unaligned_frames), TEST_CASE(unaligned_regions),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
