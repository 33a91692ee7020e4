/* SPDX-License-Identifier: MIT */
/*
 * The ops contract (src/dev/dev.h): registration refuses a table without a
 * required op and fills each optional one with its stub; a wrapper type
 * defines only the ops it changes and the forwarding base (src/dev/wrap.h)
 * gives every other op, open and close included, of the device inside;
 * the window as memory (peer_mw_map) only to a wrapper that models no
 * window store.
 */
#include "../harness.h"

#include "../support/pair.h"
#include "dev/dev.h"
#include "dev/wrap.h"

static const char *name;

static void refused(const struct ntbt_dev_ops *o, const char *word)
{
        test_last_log[0] = '\0';
        CHECK_EQ(dev_register(o), -EINVAL);
        if (!strstr(test_last_log, word))
                fprintf(stderr, "%s: log '%s' lacks '%s'\n", o->type, test_last_log, word);
        CHECK(strstr(test_last_log, word) != NULL);
}

static void required(void)
{
        struct ntbt_dev_ops o;

        /* A copy of shm's table without op: refused, naming it. */
#define MISSING(op)                                                                                \
        do {                                                                                       \
                o = shm_dev_ops;                                                                   \
                o.type = "tmiss";                                                                  \
                o.op = NULL;                                                                       \
                refused(&o, "no " #op " op");                                                      \
        } while (0)
        /* The three dev.h once called required while dev.c stubbed them. */
        MISSING(link_disable);
        MISSING(link_wait);
        MISSING(mw_clear_trans);
        MISSING(peer_mw_flush);
        MISSING(open);
#undef MISSING

        o = shm_dev_ops;
        o.type = "a:b";
        refused(&o, "a bad name");
        o.type = "shm";
        refused(&o, "registered already");
        /* A wrapper that opens its own state must free it too. */
        o = (struct ntbt_dev_ops){.type = "thalf", .wraps = "shm", .open = shm_dev_ops.open};
        refused(&o, "open and close or neither");
}

/* A plain type with every optional op left out: the stubs answer. */
static void optional(struct ntbt_dev *peer)
{
        struct ntbt_dev_ops o = shm_dev_ops;
        struct ntbt_dev *d;
        char spec[128], buf[64];

        o.type = "tstub";
        o.describe = NULL;
        o.link_events = NULL;
        o.db_mask = NULL;
        o.db_set_mask = NULL;
        o.db_clear_mask = NULL;
        o.peer_mw_map = NULL;
        CHECK_EQ(dev_register(&o), 0);
        snprintf(spec, sizeof(spec), "tstub:%s,port=0", name);
        CHECK_EQ(ntbt_dev_open(spec, &d), 0);
        CHECK_EQ(ntbt_dev_describe(d, buf, sizeof(buf)), -EOPNOTSUPP);
        CHECK_EQ(ntbt_dev_link_events(d), 0);
        CHECK_EQ(ntbt_dev_db_mask(d), 0);
        CHECK_EQ(ntbt_dev_db_set_mask(d, 1), -EOPNOTSUPP);
        CHECK_EQ(ntbt_dev_db_clear_mask(d, 1), -EOPNOTSUPP);
        {
                void *base;
                uint64_t size;

                CHECK_EQ(ntbt_dev_peer_mw_map(d, 0, &base, &size), -EOPNOTSUPP);
        }
        CHECK_EQ(ntbt_dev_spad_write(d, 0, 5), 0);
        {
                uint32_t v = 0;

                CHECK_EQ(ntbt_dev_peer_spad_read(peer, 0, &v), 0);
                CHECK_EQ(v, 5);
        }
        ntbt_dev_close(d);
}

static void *interrupter(void *arg)
{
        test_sleep_ms(50);
        CHECK_EQ(ntbt_dev_db_wait_interrupt(arg), 0);
        return NULL;
}

/* Every op of a wrapper that defines none, against the plain shm peer on port 1. */
static void forwarded(struct ntbt_dev *peer)
{
        static const struct ntbt_dev_ops bare = {.type = "twrap", .wraps = "shm"};
        uint64_t a, s, m, size, psize;
        void *base, *inner_base;
        struct ntbt_dev *d, *in;
        char spec[128], buf[64];
        uint32_t v = 0;
        uint8_t *seen;

        CHECK_EQ(dev_register(&bare), 0);
        snprintf(spec, sizeof(spec), "twrap:%s,port=0", name);
        CHECK_EQ(ntbt_dev_open(spec, &d), 0);
        CHECK(strcmp(ntbt_dev_type(d), "twrap") == 0);
        in = dev_wrap_inner(d);
        snprintf(spec, sizeof(spec), "shm:%s,port=0", name);
        CHECK(strcmp(ntbt_dev_spec(in), spec) == 0);

        CHECK_EQ(ntbt_dev_port(d), 0);
        CHECK_EQ(ntbt_dev_describe(d, buf, sizeof(buf)), -EOPNOTSUPP);
        CHECK_EQ(ntbt_dev_link_enable(peer), 0);
        CHECK_EQ(ntbt_dev_link_enable(d), 0);
        CHECK_EQ(ntbt_dev_link_wait(d, 0, 5000000000LL), 1);
        CHECK_EQ(ntbt_dev_link_is_up(d), 1);
        CHECK_EQ(ntbt_dev_link_events(d), ntbt_dev_link_events(in));

        CHECK_EQ(ntbt_dev_mw_count(d), ntbt_dev_mw_count(peer));
        CHECK_EQ(ntbt_dev_mw_get_align(d, 0, &a, &s, &m), 0);
        CHECK_EQ(ntbt_dev_mw_set_trans(d, 0, m), 0);
        CHECK_EQ(ntbt_dev_mw_inbound(d, 0, &base, &size), 0);
        CHECK_EQ(ntbt_dev_mw_inbound(in, 0, &inner_base, &psize), 0);
        CHECK(base == inner_base && size == psize);
        CHECK_EQ(ntbt_dev_peer_mw_size(d, 0, &psize), 0);
        CHECK_EQ(ntbt_dev_mw_inbound(peer, 0, &base, &size), 0);
        CHECK_EQ(psize, size);
        seen = base;
        CHECK_EQ(ntbt_dev_peer_mw_write(d, 0, 64, "hello", 5), 0);
        CHECK_EQ(ntbt_dev_peer_mw_write32(d, 0, 128, 0x11223344), 0);
        CHECK_EQ(ntbt_dev_peer_mw_wmb(d, 0), 0);
        CHECK_EQ(ntbt_dev_peer_mw_flush(d, 0, 128), 0);
        CHECK(memcmp(seen + 64, "hello", 5) == 0);
        memcpy(&v, seen + 128, 4);
        CHECK_EQ(v, 0x11223344);
        CHECK_EQ(ntbt_dev_peer_mw_write(d, 0, psize, "x", 1), -EINVAL);
        /* A wrapper that models no window store passes the mapping on:
         * shm's, whose stores land in the peer's inbound window. */
        CHECK_EQ(ntbt_dev_peer_mw_map(d, 0, &base, &size), 0);
        CHECK_EQ(ntbt_dev_peer_mw_map(in, 0, &inner_base, &psize), 0);
        CHECK(base == inner_base && size == psize);
        memcpy((uint8_t *)base + 256, "mapped", 6);
        CHECK(memcmp(seen + 256, "mapped", 6) == 0);
        CHECK_EQ(ntbt_dev_peer_mw_map(d, ntbt_dev_mw_count(d), &base, &size), -EINVAL);

        CHECK_EQ(ntbt_dev_db_valid_mask(d), ntbt_dev_db_valid_mask(peer));
        CHECK_EQ(ntbt_dev_peer_db_set(d, 1u << 2), 0);
        CHECK_EQ(ntbt_dev_db_wait(peer, 1u << 2, 5000000000LL), 0);
        CHECK_EQ(ntbt_dev_db_clear(peer, 1u << 2), 0);
        CHECK_EQ(ntbt_dev_peer_db_set(peer, 1u << 3), 0);
        CHECK_EQ(ntbt_dev_db_wait(d, 1u << 3, 5000000000LL), 0);
        CHECK(ntbt_dev_db_read(d) & 1u << 3);
        CHECK_EQ(ntbt_dev_db_clear(d, 1u << 3), 0);
        CHECK_EQ(ntbt_dev_db_read(d) & 1u << 3, 0);
        CHECK_EQ(ntbt_dev_db_set_mask(d, 1u << 1), 0);
        CHECK_EQ(ntbt_dev_db_mask(d), 1u << 1);
        CHECK_EQ(ntbt_dev_db_clear_mask(d, 1u << 1), 0);
        CHECK_EQ(ntbt_dev_db_mask(d), 0);
        {
                pthread_t t;

                CHECK_EQ(pthread_create(&t, NULL, interrupter, d), 0);
                CHECK_EQ(ntbt_dev_db_wait(d, 1u << 4, 5000000000LL), -EINTR);
                pthread_join(t, NULL);
        }

        CHECK_EQ(ntbt_dev_spad_count(d), ntbt_dev_spad_count(peer));
        CHECK_EQ(ntbt_dev_spad_write(d, 1, 42), 0);
        CHECK_EQ(ntbt_dev_peer_spad_read(peer, 1, &v), 0);
        CHECK_EQ(v, 42);
        CHECK_EQ(ntbt_dev_spad_read(d, 1, &v), 0);
        CHECK_EQ(v, 42);
        CHECK_EQ(ntbt_dev_peer_spad_write(d, 2, 7), 0);
        CHECK_EQ(ntbt_dev_spad_read(peer, 2, &v), 0);
        CHECK_EQ(v, 7);
        CHECK_EQ(ntbt_dev_peer_spad_read(d, 2, &v), 0);
        CHECK_EQ(v, 7);
        CHECK_EQ(ntbt_dev_spad_read(d, ntbt_dev_spad_count(d), &v), -EINVAL);

        CHECK_EQ(ntbt_dev_mw_clear_trans(d, 0), 0);
        CHECK_EQ(ntbt_dev_link_disable(d), 0);
        CHECK_EQ(ntbt_dev_link_wait(peer, 1, 5000000000LL), 0);
        ntbt_dev_close(d);
        CHECK_EQ(ntbt_dev_link_disable(peer), 0);
}

static int db_sets;

static int counting_peer_db_set(struct ntbt_dev *d, uint64_t bits)
{
        db_sets++;
        return ntbt_dev_peer_db_set(dev_wrap_inner(d), bits);
}

/* A wrapper that changes one op, over another wrapper (pcie:, its default). */
static void overridden(struct ntbt_dev *peer)
{
        static const struct ntbt_dev_ops counting = {
            .type = "tcount", .wraps = "pcie", .peer_db_set = counting_peer_db_set};
        struct ntbt_dev_parsed p = {.size = sizeof(p)};
        struct ntbt_dev *d, *model;
        char spec[128], want[128];
        uint64_t size;
        void *base;

        CHECK_EQ(dev_register(&counting), 0);
        snprintf(spec, sizeof(spec), "tcount:%s,wc=4,port=0", name);
        CHECK_EQ(ntbt_dev_parse(spec, 0, &p), 0);
        CHECK(strcmp(p.type, "tcount") == 0 && strcmp(p.base_type, "shm") == 0);
        CHECK(strcmp(p.name, name) == 0);
        CHECK_EQ(ntbt_dev_open(spec, &d), 0);
        /* Each key went to the type that takes it: wc= to pcie, port= to shm. */
        model = dev_wrap_inner(d);
        snprintf(want, sizeof(want), "pcie:%s,wc=4,port=0", name);
        CHECK(strcmp(ntbt_dev_spec(model), want) == 0);
        snprintf(want, sizeof(want), "shm:%s,port=0", name);
        CHECK(strcmp(ntbt_dev_spec(dev_wrap_inner(model)), want) == 0);

        CHECK_EQ(ntbt_dev_peer_db_set(d, 1u << 5), 0);
        CHECK_EQ(db_sets, 1);
        CHECK_EQ(ntbt_dev_db_wait(peer, 1u << 5, 5000000000LL), 0);
        CHECK_EQ(ntbt_dev_db_clear(peer, 1u << 5), 0);
        /* The window ops are the model's: a store waits for the flush. */
        CHECK_EQ(ntbt_dev_mw_inbound(peer, 0, &base, &size), 0);
        memset(base, 0, 256);
        CHECK_EQ(ntbt_dev_peer_mw_write(d, 0, 192, "model", 5), 0);
        CHECK(memcmp((uint8_t *)base + 192, "model", 5) != 0);
        CHECK_EQ(ntbt_dev_peer_mw_flush(d, 0, 192), 0);
        CHECK(memcmp((uint8_t *)base + 192, "model", 5) == 0);
        /* The model's window is not memory: a pointer would go around it,
         * over the model itself and over a wrapper of it alike. */
        CHECK_EQ(ntbt_dev_peer_mw_map(model, 0, &base, &size), -EOPNOTSUPP);
        CHECK_EQ(ntbt_dev_peer_mw_map(d, 0, &base, &size), -EOPNOTSUPP);
        CHECK_EQ(ntbt_dev_peer_mw_map(dev_wrap_inner(model), 0, &base, &size), 0);
        ntbt_dev_close(d);
        CHECK_EQ(db_sets, 1);
}

static struct pair pr;
static struct ntbt_dev *peer;

/* A shm device, its port 1 open (which registers the built-in types). */
static void fixture_up(void)
{
        pair_create(&pr, "ops", NULL);
        name = pr.name;
        peer = pair_open_dev(&pr, 1);
}

/* Registration refuses a table without a required op. */
static void required_ops(void)
{
        fixture_up();
        required();
        pair_destroy(&pr);
}

/* A missing optional op is filled with its stub. */
static void optional_ops_stubbed(void)
{
        fixture_up();
        optional(peer);
        pair_destroy(&pr);
}

/* A wrapper forwards every op it does not define, open and close included. */
static void wrapper_forwards(void)
{
        fixture_up();
        forwarded(peer);
        pair_destroy(&pr);
}

/* A wrapper's own op overrides the device inside. */
static void wrapper_overrides(void)
{
        fixture_up();
        overridden(peer);
        pair_destroy(&pr);
}

static const struct test_case cases[] = {
    TEST_CASE(required_ops),
    TEST_CASE(optional_ops_stubbed),
    TEST_CASE(wrapper_forwards),
    TEST_CASE(wrapper_overrides),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
