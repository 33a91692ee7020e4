/* SPDX-License-Identifier: MIT */
/*
 * A QP freed from its own handler, from every context a handler runs in:
 * the event thread (rx and event handlers), ntbt_qp_poll and the waits that
 * poll inside (rx and event handlers), the enqueuing thread (inline tx
 * completions, poll and event mode) and the copy thread (tx completions,
 * poll and event mode).  The rule (include/ntbt/transport.h): the free is
 * deferred until the library is done with the QP; from the request on
 * every call refuses with -ESHUTDOWN; the call that releases it returns
 * -ESHUTDOWN; every posted or queued buffer still comes back once; the
 * peer is told (LINK_DOWN); the QP number is free again afterwards.  Run
 * under ASan, a use after free fails the test.
 *
 * Both transports live in this process (two ports); side B is an
 * event-mode peer that counts what it receives.
 */
#include "../harness.h"

#include "../support/pair.h"

#define NBUF 4
#define SEC  1000000000LL

enum when { FREE_ON_RX, FREE_ON_UP, FREE_ON_DOWN, FREE_ON_TX };

/* Side A, the QP under test.  Handlers run on library threads: atomics. */
struct side_a {
        enum when when;
        struct ntbt_qp *qp; /* set before any handler can run */
        int go;             /* copy thread cases: the enqueue returned, the free may come */
        int rx_data, rx_cancel, tx_ok, tx_err, frees, after_free;
};

static uint8_t bufs[NBUF][65536], bbufs[NBUF][65536];

static int get(int *p)
{
        return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void add(int *p, int n)
{
        __atomic_add_fetch(p, n, __ATOMIC_SEQ_CST);
}

/* The free, then the calls the rule says are refused (and must not touch
 * freed memory), then a second free, which is a no-op. */
static void free_here(struct side_a *a, struct ntbt_qp *qp)
{
        CHECK(qp == a->qp);
        add(&a->frees, 1);
        ntbt_qp_free(qp);
        if (ntbt_qp_tx_enqueue(qp, NULL, "x", 1, 0) == -ESHUTDOWN &&
            ntbt_qp_rx_enqueue(qp, NULL, bufs[0], 16) == -ESHUTDOWN &&
            ntbt_qp_link_up(qp) == -ESHUTDOWN && ntbt_qp_link_is_up(qp) == 0)
                add(&a->after_free, 1);
        ntbt_qp_free(qp);
}

static void a_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct side_a *a = ctx;

        (void)buf_ctx, (void)data;
        if (len == -ECANCELED) {
                add(&a->rx_cancel, 1);
                return;
        }
        CHECK(len > 0);
        add(&a->rx_data, 1);
        if (a->when == FREE_ON_RX)
                free_here(a, qp);
}

static void a_tx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len)
{
        struct side_a *a = ctx;

        (void)buf_ctx, (void)data;
        add(len > 0 ? &a->tx_ok : &a->tx_err, 1);
        if (a->when != FREE_ON_TX || get(&a->frees))
                return;
        /* On the copy thread: as for any free, no other call on the QP may
         * be in progress, so wait for the enqueue to return (bounded). */
        for (int i = 0; i < 10000 && !get(&a->go); i++)
                test_sleep_ms(1);
        CHECK(get(&a->go));
        free_here(a, qp);
}

static void a_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        struct side_a *a = ctx;

        (void)reason;
        if ((up && a->when == FREE_ON_UP) || (!up && a->when == FREE_ON_DOWN))
                free_here(a, qp);
}

static const struct ntbt_qp_handlers a_handlers = {.rx = a_rx, .tx = a_tx, .event = a_event};

/* Side B: counts frames and link changes. */
struct side_b {
        int frames, ups, downs, last_reason;
};

static void b_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct side_b *b = ctx;

        (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        add(&b->frames, 1);
        CHECK_EQ(ntbt_qp_rx_enqueue(qp, NULL, data, 65536), 0);
}

static void b_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        struct side_b *b = ctx;

        (void)qp;
        __atomic_store_n(&b->last_reason, reason, __ATOMIC_SEQ_CST);
        add(up ? &b->ups : &b->downs, 1);
}

static const struct ntbt_qp_handlers b_handlers = {.rx = b_rx, .event = b_event};

static struct ntbt_transport *ta, *tb;

static void wait_for(int *p, int want, const char *what)
{
        int64_t deadline = now_ns() + 10 * SEC;

        while (get(p) < want) {
                if (now_ns() > deadline)
                        fprintf(stderr, "timed out waiting for %s (%d < %d)\n", what, get(p), want);
                CHECK(now_ns() <= deadline);
                test_sleep_ms(1);
        }
}

/* QP 0 is free again on side A: the release happened (at once, or soon when
 * the event thread finishes it). */
static void check_released(int at_once)
{
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = 0, .poll = 1};
        int64_t deadline = now_ns() + 10 * SEC;
        struct ntbt_qp *q;
        int ret;

        while ((ret = ntbt_qp_create(ta, &qo, NULL, NULL, &q)) == -EBUSY && !at_once &&
               now_ns() < deadline)
                test_sleep_ms(1);
        CHECK_EQ(ret, 0);
        ntbt_qp_free(q);
}

struct qcase {
        const char *name;
        int poll, thread;
        enum when when;
};

static void run(const struct qcase *c)
{
        struct ntbt_qp_opts qo = {.size = sizeof(qo),
                                  .qp_num = 0,
                                  .poll = c->poll,
                                  .tx_mode = c->thread ? NTBT_TX_THREAD : NTBT_TX_INLINE};
        struct ntbt_qp_opts bo = {.size = sizeof(bo), .qp_num = 0};
        struct side_a a = {.when = c->when};
        struct side_b b = {0};
        struct ntbt_tx_buf v[3];
        struct ntbt_qp *qa, *qb;
        int64_t deadline;
        int i, ret, sent = 0;

        CHECK_EQ(ntbt_qp_create(tb, &bo, &b_handlers, &b, &qb), 0);
        for (i = 0; i < NBUF; i++)
                CHECK_EQ(ntbt_qp_rx_enqueue(qb, NULL, bbufs[i], sizeof(bbufs[i])), 0);
        CHECK_EQ(ntbt_qp_create(ta, &qo, &a_handlers, &a, &qa), 0);
        a.qp = qa;
        for (i = 0; i < NBUF; i++)
                CHECK_EQ(ntbt_qp_rx_enqueue(qa, NULL, bufs[i], sizeof(bufs[i])), 0);
        CHECK_EQ(ntbt_qp_link_up(qb), 0);
        CHECK_EQ(ntbt_qp_link_up(qa), 0);
        if (!c->thread)
                a.go = 1;

        if (c->when == FREE_ON_UP) {
                if (c->poll) {
                        /* The event handler runs in the poll inside the wait. */
                        CHECK_EQ(ntbt_qp_wait_link(qa, 10 * SEC), -ESHUTDOWN);
                }
                wait_for(&a.frees, 1, "the free");
        } else {
                CHECK_EQ(ntbt_qp_wait_link(qa, 10 * SEC), 0);
                CHECK_EQ(ntbt_qp_wait_link(qb, 10 * SEC), 0);
        }

        if (c->when == FREE_ON_DOWN) {
                /* Poll mode: the down event runs inside the call. */
                CHECK_EQ(ntbt_qp_link_down(qa), -ESHUTDOWN);
                CHECK_EQ(get(&a.frees), 1);
        }

        if (c->when == FREE_ON_RX) {
                /* Three frames to A in one burst (A may free and close as
                 * soon as the first lands); the handler frees on the first. */
                for (i = 0; i < 3; i++)
                        v[i] = (struct ntbt_tx_buf){.data = "abc", .len = 3};
                CHECK_EQ(ntbt_qp_tx_enqueue_burst(qb, v, 3, 0), 3);
                if (c->poll == 1) {
                        /* Inside ntbt_qp_poll itself. */
                        deadline = now_ns() + 10 * SEC;
                        while ((ret = ntbt_qp_poll(qa, 64)) == 0) {
                                CHECK(now_ns() < deadline);
                                test_sleep_ms(1);
                        }
                        CHECK_EQ(ret, -ESHUTDOWN);
                } else if (c->poll == 2) {
                        /* Inside ntbt_qp_wait_tx (which polls): wait for
                         * more slots than a ring has, until the free. */
                        CHECK_EQ(ntbt_qp_wait_tx(qa, 1 << 20, 10 * SEC), -ESHUTDOWN);
                }
                wait_for(&a.frees, 1, "the free");
                CHECK_EQ(get(&a.rx_data), 1); /* nothing is delivered after the free */
        }

        if (c->when == FREE_ON_TX) {
                for (i = 0; i < 3; i++)
                        v[i] = (struct ntbt_tx_buf){.data = "abcd", .len = 4};
                ret = ntbt_qp_tx_enqueue_burst(qa, v, 3, 0);
                if (c->thread) {
                        /* Queued to the copy thread; its first completion frees. */
                        CHECK_EQ(ret, 3);
                        __atomic_store_n(&a.go, 1, __ATOMIC_SEQ_CST);
                        wait_for(&a.frees, 1, "the free");
                        if (c->poll) {
                                /* The poller finishes what the copy thread handed over. */
                                deadline = now_ns() + 10 * SEC;
                                while ((ret = ntbt_qp_poll(qa, 64)) >= 0) {
                                        CHECK(now_ns() < deadline);
                                        test_sleep_ms(1);
                                }
                                CHECK_EQ(ret, -ESHUTDOWN);
                        }
                        /* Every queued buffer completes once. */
                        deadline = now_ns() + 10 * SEC;
                        while (get(&a.tx_ok) + get(&a.tx_err) < 3)
                                CHECK(now_ns() < deadline);
                } else {
                        /* Inline: all three were written; the handler of the
                         * first frees, the other two still complete. */
                        CHECK_EQ(ret, -ESHUTDOWN);
                        CHECK_EQ(get(&a.tx_ok), 3);
                }
                sent = get(&a.tx_ok);
        }

        /* The peer hears of the close (its first up, then LINK_DOWN). */
        wait_for(&b.downs, 1, "the peer's down event");
        CHECK_EQ(get(&b.ups), 1);
        CHECK_EQ(get(&b.last_reason), NTBT_QP_DOWN_PEER);
        CHECK_EQ(get(&b.frames), sent);
        check_released(c->poll);

        CHECK_EQ(get(&a.frees), 1);
        CHECK_EQ(get(&a.after_free), 1);
        /* Posted buffers came back once each: one frame, the rest cancelled. */
        CHECK_EQ(get(&a.rx_data) + get(&a.rx_cancel), NBUF);
        if (c->when == FREE_ON_TX)
                CHECK_EQ(get(&a.tx_ok) + get(&a.tx_err), 3);
        else
                CHECK_EQ(get(&a.tx_ok) + get(&a.tx_err), 0);
        ntbt_qp_free(qb);
}

/* One case on a fresh pair: both transports in this process. */
static void with_pair(const struct qcase *c)
{
        struct pair p;

        pair_create(&p, "freeh", NULL);
        ta = pair_open(&p, 0, NULL);
        tb = pair_open(&p, 1, NULL);
        run(c);
        pair_destroy(&p);
}

#define QCASE(fn, poll, thread, when)                                                              \
        static void fn(void)                                                                       \
        {                                                                                          \
                static const struct qcase c = {#fn, poll, thread, when};                           \
                with_pair(&c);                                                                     \
        }

QCASE(event_thread_rx_handler, 0, 0, FREE_ON_RX)
QCASE(event_thread_event_handler, 0, 0, FREE_ON_UP)
QCASE(qp_poll_rx_handler, 1, 0, FREE_ON_RX)
QCASE(wait_tx_rx_handler, 2, 0, FREE_ON_RX)
QCASE(wait_link_event_handler, 1, 0, FREE_ON_UP)
QCASE(link_down_event_handler, 1, 0, FREE_ON_DOWN)
QCASE(enqueuing_thread_tx_handler_event_mode, 0, 0, FREE_ON_TX)
QCASE(enqueuing_thread_tx_handler_poll_mode, 1, 0, FREE_ON_TX)
QCASE(copy_thread_tx_handler_event_mode, 0, 1, FREE_ON_TX)
QCASE(copy_thread_tx_handler_poll_mode, 1, 1, FREE_ON_TX)

static const struct test_case cases[] = {
    TEST_CASE(event_thread_rx_handler),
    TEST_CASE(event_thread_event_handler),
    TEST_CASE(qp_poll_rx_handler),
    TEST_CASE(wait_tx_rx_handler),
    TEST_CASE(wait_link_event_handler),
    TEST_CASE(link_down_event_handler),
    TEST_CASE(enqueuing_thread_tx_handler_event_mode),
    TEST_CASE(enqueuing_thread_tx_handler_poll_mode),
    TEST_CASE(copy_thread_tx_handler_event_mode),
    TEST_CASE(copy_thread_tx_handler_poll_mode),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
