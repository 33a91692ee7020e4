/* SPDX-License-Identifier: MIT */
/*
 * The pcie model itself (docs/spec/pcie-model.md): stores sit in the WC buffer
 * until a barrier or an eviction, the posted queue delivers them in its
 * order after `lat`, a barrier posts lines in address order, flush empties
 * everything, the writer stalls on a full queue, doorbells and scratchpads
 * bypass both, and the seed makes the random evictions repeat.
 */
#include "../harness.h"

#include "../support/pair.h"
#include "dev/pcie.h"

static const char *name;
static struct ntbt_dev *peer; /* plain shm, port 1: sees what arrives */
static uint8_t *seen;         /* port 1's inbound window 0 */

static struct ntbt_dev *open_model(const char *opts)
{
        struct ntbt_dev *d = NULL;
        char spec[160];

        snprintf(spec, sizeof(spec), "pcie:%s,port=0%s", name, opts);
        CHECK_EQ(ntbt_dev_open(spec, &d), 0);
        return d;
}

static int zero(const uint8_t *p, size_t n)
{
        while (n--)
                if (*p++)
                        return 0;
        return 1;
}

/* Write 64 lines in a scrambled order through a 4-line WC buffer and
 * return the order in which they became visible. */
static void eviction_order(const char *seed_opt, uint64_t *order, int n)
{
        char opts[64];
        struct ntbt_dev *d;
        uint8_t line[64];
        int i;

        snprintf(opts, sizeof(opts), ",wc=4,q=256,lat=0%s", seed_opt);
        d = open_model(opts);
        CHECK_EQ(pcie_trace(d, NULL, 256), 0);
        for (i = 0; i < 64; i++) {
                memset(line, i + 1, sizeof(line));
                CHECK_EQ(
                    ntbt_dev_peer_mw_write(d, 0, 8192 + (uint64_t)((i * 37) % 64) * 64, line, 64),
                    0);
        }
        CHECK_EQ(ntbt_dev_peer_mw_flush(d, 0, 8192), 0);
        CHECK_EQ(pcie_trace(d, order, (uint32_t)n), n);
        ntbt_dev_close(d);
}

static struct pair p;

/* The shm device, its port 1 the plain peer. */
static void fixture_up(void)
{
        uint64_t size;
        void *in;

        pair_create(&p, "model", NULL);
        name = p.name;
        peer = pair_open_dev(&p, 1);
        CHECK_EQ(ntbt_dev_mw_inbound(peer, 0, &in, &size), 0);
        seen = in;
}

static void fixture_down(void)
{
        pair_destroy(&p);
}

/* Stores wait in the WC buffer; a barrier posts them; they become visible
 * `lat` later; the doorbell (and a scratchpad) does not wait for them. */
static void wc_buffer_then_lat(void)
{
        struct ntbt_dev *d;
        uint64_t trace[256];
        uint8_t buf[256];
        int64_t t0;
        int i;

        fixture_up();
        d = open_model(",lat=300000000,seed=3"); /* 300 ms */
        CHECK_EQ(pcie_trace(d, NULL, 256), 0);
        for (i = 0; i < (int)sizeof(buf); i++)
                buf[i] = (uint8_t)(i + 1);
        CHECK_EQ(ntbt_dev_peer_mw_write(d, 0, 0, buf, sizeof(buf)), 0);
        test_sleep_ms(20);
        CHECK(zero(seen, sizeof(buf))); /* still in the WC buffer */
        CHECK_EQ(ntbt_dev_peer_mw_wmb(d, 0), 0);
        CHECK_EQ(ntbt_dev_peer_db_set(d, 1), 0);
        CHECK_EQ(ntbt_dev_db_read(peer), 1); /* the doorbell is there at once... */
        CHECK(zero(seen, sizeof(buf)));      /* ...the data is not */
        CHECK_EQ(ntbt_dev_peer_spad_write(d, 2, 77), 0);
        {
                uint32_t v = 0;
                CHECK_EQ(ntbt_dev_spad_read(peer, 2, &v), 0);
                CHECK_EQ(v, 77); /* scratchpads bypass too */
        }
        t0 = now_ns();
        while (zero(seen, sizeof(buf)) && now_ns() - t0 < 5000000000LL)
                test_sleep_ms(5);
        /* The link delivered them on its own, after about lat. */
        CHECK(now_ns() - t0 > 200 * 1000000LL);
        test_sleep_ms(50);
        CHECK(memcmp(seen, buf, sizeof(buf)) == 0);
        CHECK_EQ(pcie_trace(d, trace, 256), 4);
        for (i = 0; i < 4; i++)
                CHECK_EQ(trace[i], (uint64_t)i * 64); /* FIFO, address order */
        ntbt_dev_close(d);
        ntbt_dev_db_clear(peer, 1);
        fixture_down();
}

/* A barrier posts lines in address order, whatever the store order. */
static void barrier_address_order(void)
{
        struct ntbt_dev *d;
        uint64_t trace[256];
        int i;

        fixture_up();
        d = open_model(",lat=0");
        CHECK_EQ(pcie_trace(d, NULL, 256), 0);
        for (i = 3; i >= 0; i--)
                CHECK_EQ(
                    ntbt_dev_peer_mw_write32(d, 0, 4096 + (uint64_t)i * 64, 0xabc0u + (unsigned)i),
                    0);
        CHECK_EQ(ntbt_dev_peer_mw_flush(d, 0, 4096), 0);
        CHECK_EQ(pcie_trace(d, trace, 256), 4);
        for (i = 0; i < 4; i++) {
                CHECK_EQ(trace[i], 4096 + (uint64_t)i * 64);
                CHECK_EQ(*(uint32_t *)(void *)(seen + 4096 + i * 64), 0xabc0u + (unsigned)i);
        }
        ntbt_dev_close(d);
        fixture_down();
}

/* Flush empties everything: the WC buffer and the queue. */
static void flush_empties_all(void)
{
        struct ntbt_dev *d;
        uint8_t buf[256];
        uint64_t size;
        int64_t t0;

        fixture_up();
        d = open_model(",lat=50000000"); /* 50 ms */
        memset(buf, 0x5a, sizeof(buf));
        CHECK_EQ(ntbt_dev_peer_mw_write(d, 1, 1000, buf, 200), 0);
        t0 = now_ns();
        CHECK_EQ(ntbt_dev_peer_mw_flush(d, 1, 1000), 0);
        CHECK(now_ns() - t0 >= 50 * 1000000LL); /* it waited for the link */
        {
                void *in1;
                CHECK_EQ(ntbt_dev_mw_inbound(peer, 1, &in1, &size), 0);
                CHECK(memcmp((uint8_t *)in1 + 1000, buf, 200) == 0);
        }
        ntbt_dev_close(d);
        fixture_down();
}

/* The writer stalls while the posted queue is full: 4 lines of queue at
 * 64 KB/s (1 ms a line), 12 lines written. */
static void writer_stalls_full_queue(void)
{
        struct ntbt_dev *d;
        uint8_t buf[256];
        int64_t t0;
        int i;

        fixture_up();
        d = open_model(",q=4,bw=64000,lat=0");
        memset(buf, 0x33, sizeof(buf));
        t0 = now_ns();
        for (i = 0; i < 3; i++)
                CHECK_EQ(ntbt_dev_peer_mw_write(d, 0, 16384 + (uint64_t)i * 256, buf, 256), 0);
        CHECK_EQ(ntbt_dev_peer_mw_wmb(d, 0), 0);
        CHECK(now_ns() - t0 >= 6 * 1000000LL); /* at least 8 lines had to drain */
        CHECK_EQ(ntbt_dev_peer_mw_flush(d, 0, 16384), 0);
        CHECK(now_ns() - t0 >= 11 * 1000000LL);
        ntbt_dev_close(d);
        fixture_down();
}

/* The seed repeats the random evictions; another seed changes them. */
static void seed_repeats_evictions(void)
{
        uint64_t a[64], b[64], c[64];
        int i, same_ab = 1, same_ac = 1;

        fixture_up();
        eviction_order(",seed=7", a, 64);
        eviction_order(",seed=7", b, 64);
        eviction_order(",seed=8", c, 64);
        for (i = 0; i < 64; i++) {
                same_ab &= a[i] == b[i];
                same_ac &= a[i] == c[i];
        }
        CHECK(same_ab);
        CHECK(!same_ac);
        fixture_down();
}

/* Bad model options are refused, naming the key. */
static void bad_options_refused(void)
{
        fixture_up();
        {
                struct ntbt_dev *x = NULL;
                char spec[128];

                snprintf(spec, sizeof(spec), "pcie:%s,wc=0", name);
                CHECK_EQ(ntbt_dev_open(spec, &x), -EINVAL);
                CHECK(strstr(test_last_log, "wc=0") != NULL);
                snprintf(spec, sizeof(spec), "pcie:%s,bw=fast", name);
                CHECK_EQ(ntbt_dev_open(spec, &x), -EINVAL);
                CHECK(strstr(test_last_log, "bw=fast") != NULL);
        }
        fixture_down();
}

static const struct test_case cases[] = {
    TEST_CASE(wc_buffer_then_lat),     TEST_CASE(barrier_address_order),
    TEST_CASE(flush_empties_all),      TEST_CASE(writer_stalls_full_queue),
    TEST_CASE(seed_repeats_evictions), TEST_CASE(bad_options_refused),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
