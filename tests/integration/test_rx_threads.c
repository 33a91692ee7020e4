/* SPDX-License-Identifier: MIT */
/*
 * Receive threads (struct ntbt_transport_opts rx_threads): event-mode QP i
 * is serviced by thread i % n.  Checked data on several QPs and threads in
 * two processes; each QP's handlers on its own thread; a free while the
 * other QPs stream; frees from handlers on two receive threads of each
 * other's QP (which must not wait for each other); a killed peer and a
 * restarted one on every QP; a close while every thread is busy; and the
 * option's place in the size rule.
 */
#include "../harness.h"

#include <signal.h>
#include <stddef.h>

#include "../support/pair.h"
#include "../support/session.h"

#define NQ  4
#define SEC 1000000000LL

/* Room for NQ QPs of 64 KiB frames over two windows. */
static const struct ntbt_shm_geom geom = {.size = sizeof(geom), .mw_size = 1 << 20};

/* The opts of a transport with NQ QPs and n receive threads. */
static struct ntbt_transport_opts opts_n(uint32_t n)
{
        struct ntbt_transport_opts o = {.size = sizeof(o), .max_qps = NQ, .rx_threads = n};

        return o;
}

/* Four QPs both ways between two processes, checked byte for byte: two
 * receive threads on one side, four on the other. */
static void streams_two_processes(void)
{
        struct stream_cfg a = {.nqps = NQ, .max_qps = NQ, .timeout_ns = 120 * SEC};
        struct stream_cfg b;
        struct pair p;

        a.bytes = 16ull << 20;
        a.send = a.recv = 1;
        b = a;
        a.rx_threads = 2;
        b.rx_threads = NQ;
        pair_create(&p, "rxt-streams", &geom);
        pair_stream(&p, a, b);
        pair_destroy(&p);
}

/* ---- a sender thread per QP, and receivers that note their thread ---- */

struct sender {
        struct ntbt_qp *qp;
        pthread_t thread;
        uint64_t frames; /* to send; UINT64_MAX: until stop */
        int tolerant;    /* a lost link ends it quietly (else CHECKed) */
        int *stop;       /* atomic */
        uint64_t sent;   /* atomic */
};

/* Side 1's QP-0 stream (struct session_rx), frame by frame. */
static void *send_thread(void *arg)
{
        struct sender *s = arg;
        uint32_t payload = ntbt_qp_max_payload(s->qp);
        uint64_t seed = stream_seed(1, 0), i;
        uint8_t *buf = malloc(payload);

        CHECK(buf);
        for (i = 0; i < s->frames && !__atomic_load_n(s->stop, __ATOMIC_SEQ_CST); i++) {
                uint32_t len = stream_len(seed, i, payload, SIZES_RANDOM);
                int ret;

                stream_fill(seed, i, buf, len);
                while ((ret = ntbt_qp_tx_enqueue(s->qp, NULL, buf, len, 0)) == -EAGAIN &&
                       !__atomic_load_n(s->stop, __ATOMIC_SEQ_CST))
                        ntbt_qp_wait_tx(s->qp, 1, 100 * NS_PER_MS);
                if (ret && s->tolerant)
                        break;
                if (ret == -EAGAIN)
                        break; /* stopped while full */
                CHECK_EQ(ret, 0);
                __atomic_store_n(&s->sent, i + 1, __ATOMIC_SEQ_CST);
        }
        free(buf);
        return NULL;
}

static void senders_start(struct sender *s, int n)
{
        for (int q = 0; q < n; q++)
                CHECK_EQ(pthread_create(&s[q].thread, NULL, send_thread, &s[q]), 0);
}

static void senders_join(struct sender *s, int n)
{
        for (int q = 0; q < n; q++)
                pthread_join(s[q].thread, NULL);
}

/* Port 0 receives on NQ event-mode QPs into sessions, port 1 sends on NQ. */
struct rig {
        struct pair p;
        struct session_rx s[NQ];
        struct ntbt_qp *rx[NQ], *tx[NQ];
        struct sender snd[NQ];
        int stop;
        uint8_t (*bufs)[16][65536];
};

static void rig_open(struct rig *r, const char *tag, uint32_t rx_threads,
                     const struct ntbt_qp_handlers *h)
{
        struct ntbt_transport_opts o0 = opts_n(rx_threads), o1 = opts_n(1);
        int q;

        memset(r, 0, sizeof(*r));
        r->bufs = calloc(NQ, sizeof(*r->bufs));
        CHECK(r->bufs);
        pair_create(&r->p, tag, &geom);
        pair_open(&r->p, 0, &o0);
        pair_open(&r->p, 1, &o1);
        CHECK_EQ(ntbt_transport_rx_threads(r->p.t[0]), (int)rx_threads);
        for (q = 0; q < NQ; q++) {
                struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = q};

                session_init(&r->s[q], 65536 - 12, SIZES_RANDOM);
                r->rx[q] = pair_qp(&r->p, 0, &qo, h ? h : &session_handlers, &r->s[q]);
                pair_post(r->rx[q], r->bufs[q], 16, 65536);
                r->tx[q] = pair_qp(&r->p, 1, &qo, NULL, NULL);
        }
        for (q = 0; q < NQ; q++) {
                pair_wait_link(r->rx[q]);
                pair_wait_link(r->tx[q]);
                r->snd[q] = (struct sender){.qp = r->tx[q], .stop = &r->stop};
        }
}

static void rig_close(struct rig *r)
{
        pair_destroy(&r->p);
        for (int q = 0; q < NQ; q++)
                session_destroy(&r->s[q]);
        free(r->bufs);
}

/* Which thread ran each QP's rx handler (atomics: set once, then compared). */
static pthread_t rx_thread_of[NQ];
static int rx_thread_seen[NQ], rx_thread_moved;

static void noting_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        unsigned q = ntbt_qp_num(qp);

        if (len >= 0) {
                if (!__atomic_load_n(&rx_thread_seen[q], __ATOMIC_ACQUIRE)) {
                        rx_thread_of[q] = pthread_self();
                        __atomic_store_n(&rx_thread_seen[q], 1, __ATOMIC_RELEASE);
                } else if (!pthread_equal(rx_thread_of[q], pthread_self())) {
                        __atomic_store_n(&rx_thread_moved, 1, __ATOMIC_SEQ_CST);
                }
        }
        session_handlers.rx(qp, ctx, buf_ctx, data, len);
}

/* QP i's handlers run on thread i % 2, always the same one, and the two
 * threads differ; every frame arrives checked. */
static void handlers_on_their_threads(void)
{
        struct ntbt_qp_handlers h = session_handlers;
        struct rig r;
        int q;

        h.rx = noting_rx;
        rig_open(&r, "rxt-threads", 2, &h);
        for (q = 0; q < NQ; q++)
                r.snd[q].frames = 2000;
        senders_start(r.snd, NQ);
        senders_join(r.snd, NQ);
        for (q = 0; q < NQ; q++) {
                int64_t deadline = now_ns() + 20 * SEC;

                while (session_get(&r.s[q], &r.s[q].total_frames) < 2000)
                        CHECK(now_ns() < deadline);
                CHECK(__atomic_load_n(&rx_thread_seen[q], __ATOMIC_ACQUIRE));
        }
        CHECK(!__atomic_load_n(&rx_thread_moved, __ATOMIC_SEQ_CST));
        CHECK(pthread_equal(rx_thread_of[0], rx_thread_of[2]));
        CHECK(pthread_equal(rx_thread_of[1], rx_thread_of[3]));
        CHECK(!pthread_equal(rx_thread_of[0], rx_thread_of[1]));
        for (q = 0; q < NQ; q++)
                session_check_clean(r.rx[q]);
        rig_close(&r);
}

/* QP 1 of the receiver is freed while all four stream: the other three
 * deliver every frame, in order; QP 1's sender sees its link go. */
static void free_while_others_stream(void)
{
        int64_t deadline = now_ns() + 60 * SEC;
        struct rig r;
        int q;

        rig_open(&r, "rxt-free", 2, NULL);
        for (q = 0; q < NQ; q++)
                r.snd[q].frames = q == 1 ? UINT64_MAX : 20000;
        r.snd[1].tolerant = 1;
        senders_start(r.snd, NQ);
        while (session_get(&r.s[1], &r.s[1].total_frames) < 1000)
                CHECK(now_ns() < deadline);
        ntbt_qp_free(r.rx[1]);
        r.rx[1] = NULL;
        for (q = 0; q < NQ; q++)
                if (q != 1)
                        pthread_join(r.snd[q].thread, NULL);
        for (q = 0; q < NQ; q++) {
                if (q == 1)
                        continue;
                while (session_get(&r.s[q], &r.s[q].total_frames) < 20000)
                        CHECK(now_ns() < deadline);
                CHECK_EQ(session_get_int(&r.s[q], &r.s[q].downs), 0);
                session_check_clean(r.rx[q]);
        }
        /* QP 1's sender: the peer's LINK_DOWN ends it. */
        pthread_join(r.snd[1].thread, NULL);
        CHECK(!ntbt_qp_link_is_up(r.tx[1]));
        rig_close(&r);
}

/* ---- frees from handlers on two receive threads ---- */

static struct ntbt_qp *cross_qp[NQ];
static int cross_arrived, cross_done;

/* QP 1's and QP 2's first frames (threads 1 and 2 of 3): each waits for
 * the other to be in its handler too, then frees the other's QP.  A free
 * that waited for the other thread to let go would wait forever. */
static void cross_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        unsigned q = ntbt_qp_num(qp);
        int64_t deadline = now_ns() + 5 * SEC;

        (void)ctx, (void)buf_ctx, (void)data;
        if (len < 0 || (q != 1 && q != 2) ||
            __atomic_load_n(&cross_done, __ATOMIC_SEQ_CST) & (1 << q))
                return;
        __atomic_fetch_or(&cross_done, 1 << q, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&cross_arrived, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&cross_arrived, __ATOMIC_SEQ_CST) < 2)
                CHECK(now_ns() < deadline);
        ntbt_qp_free(cross_qp[3 - q]);
}

static void handlers_free_each_other(void)
{
        struct ntbt_qp_handlers h = {.rx = cross_rx};
        struct ntbt_transport_opts o0 = opts_n(3), o1 = opts_n(1);
        static uint8_t bufs[NQ][4][65536];
        struct ntbt_qp *tx[NQ], *again;
        int64_t deadline;
        struct pair p;
        uint8_t byte = 7;
        int q;

        pair_create(&p, "rxt-cross", &geom);
        pair_open(&p, 0, &o0);
        pair_open(&p, 1, &o1);
        for (q = 0; q < 3; q++) {
                struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = q};

                cross_qp[q] = pair_qp(&p, 0, &qo, &h, NULL);
                pair_post(cross_qp[q], bufs[q], 4, 65536);
                tx[q] = pair_qp(&p, 1, &qo, NULL, NULL);
        }
        for (q = 1; q < 3; q++) {
                pair_wait_link(cross_qp[q]);
                pair_wait_link(tx[q]);
                CHECK_EQ(ntbt_qp_tx_enqueue(tx[q], NULL, &byte, 1, 0), 0);
        }
        /* Both numbers come free once both frees are done. */
        deadline = now_ns() + 10 * SEC;
        for (q = 1; q < 3; q++) {
                struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = q};
                int ret;

                while ((ret = ntbt_qp_create(p.t[0], &qo, NULL, NULL, &again)) == -EBUSY)
                        CHECK(now_ns() < deadline);
                CHECK_EQ(ret, 0);
                ntbt_qp_free(again);
        }
        CHECK_EQ(__atomic_load_n(&cross_done, __ATOMIC_SEQ_CST), 6);
        pair_destroy(&p);
}

/* ---- a killed peer, then a restarted one, on every QP ---- */

/* The peer, re-executed on port 1: NQ event-mode QPs sending `frames` each
 * (UINT64_MAX: until killed), then a clean close. */
static void peer_sender(const char *name, uint64_t frames)
{
        struct ntbt_transport_opts o = opts_n(NQ);
        struct sender s[NQ];
        int stop = 0, q;
        struct pair me;

        pair_attach(&me, name);
        pair_open(&me, 1, &o);
        for (q = 0; q < NQ; q++) {
                struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = q};

                s[q] = (struct sender){
                    .qp = pair_qp(&me, 1, &qo, NULL, NULL), .frames = frames, .stop = &stop};
        }
        for (q = 0; q < NQ; q++)
                pair_wait_link(s[q].qp);
        senders_start(s, NQ);
        senders_join(s, NQ);
        for (q = 0; q < NQ; q++) {
                CHECK_EQ(ntbt_qp_wait_tx(s[q].qp, ntbt_qp_tx_entries(s[q].qp) - 1, 30 * SEC), 0);
                ntbt_qp_free(s[q].qp);
        }
        pair_close(&me, 1);
}

static void spawn_peer(struct pair *p, const char *frames)
{
        char *args[] = {"rx_threads", "sender", p->name, (char *)frames, NULL};

        pair_spawn(p, args);
}

/* Wait until every session has taken `frames` frames in all. */
static void sessions_wait_frames(struct session_rx *s, uint64_t frames)
{
        int64_t deadline = now_ns() + 60 * SEC;

        for (int q = 0; q < NQ; q++)
                while (session_get(&s[q], &s[q].total_frames) < frames) {
                        CHECK(now_ns() < deadline);
                        test_sleep_ms(1);
                }
}

/* Wait until every session has seen `downs` link downs. */
static void sessions_wait_downs(struct session_rx *s, int downs)
{
        int64_t deadline = now_ns() + 60 * SEC;

        for (int q = 0; q < NQ; q++)
                while (session_get_int(&s[q], &s[q].downs) < downs) {
                        CHECK(now_ns() < deadline);
                        test_sleep_ms(1);
                }
}

/* The peer is SIGKILLed mid-stream on four QPs received by four threads:
 * each QP reports the lost link, what it delivered was intact and in
 * order; the restarted peer links every QP again and its 3000 frames on
 * each arrive from frame 0, then its clean close. */
static void link_loss_mid_stream(void)
{
        struct ntbt_transport_opts o = opts_n(NQ);
        static uint8_t bufs[NQ][16][65536];
        struct session_rx s[NQ];
        struct ntbt_qp *qp[NQ];
        struct pair p;
        int q;

        pair_create(&p, "rxt-loss", &geom);
        pair_open(&p, 0, &o);
        CHECK_EQ(ntbt_transport_rx_threads(p.t[0]), NQ);
        for (q = 0; q < NQ; q++) {
                struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = q};

                session_init(&s[q], 65536 - 12, SIZES_RANDOM);
                qp[q] = pair_qp(&p, 0, &qo, &session_handlers, &s[q]);
                pair_post(qp[q], bufs[q], 16, 65536);
        }
        spawn_peer(&p, "0xffffffffffffffff");
        sessions_wait_frames(s, 1000);
        pair_kill(&p);
        sessions_wait_downs(s, 1);
        for (q = 0; q < NQ; q++) {
                CHECK_EQ(session_get_int(&s[q], &s[q].last_reason), NTBT_QP_DOWN_LINK_LOST);
                CHECK_EQ(ntbt_qp_link_is_up(qp[q]), 0);
        }
        spawn_peer(&p, "3000");
        sessions_wait_downs(s, 2);
        pair_reap(&p);
        for (q = 0; q < NQ; q++) {
                CHECK_EQ(session_get_int(&s[q], &s[q].ups), 2);
                CHECK_EQ(session_get_int(&s[q], &s[q].last_reason), NTBT_QP_DOWN_PEER);
                CHECK_EQ(s[q].frames_at_down[1], 3000);
                session_check_clean(qp[q]);
                ntbt_qp_free(qp[q]);
        }
        pair_destroy(&p);
        for (q = 0; q < NQ; q++)
                session_destroy(&s[q]);
}

/* The receiving transport is closed while its four threads are busy with
 * four streams: the close returns (each thread joined), every posted
 * buffer comes back; the senders see their links go. */
static void close_while_busy(void)
{
        int64_t t0;
        struct rig r;
        int q;

        rig_open(&r, "rxt-close", NQ, NULL);
        for (q = 0; q < NQ; q++) {
                r.snd[q].frames = UINT64_MAX;
                r.snd[q].tolerant = 1;
        }
        senders_start(r.snd, NQ);
        sessions_wait_frames(r.s, 500);
        t0 = now_ns();
        ntbt_transport_close(r.p.t[0]);
        r.p.t[0] = NULL;
        printf("closed in %.1f ms\n", (now_ns() - t0) / 1e6);
        CHECK(now_ns() - t0 < 5 * SEC);
        __atomic_store_n(&r.stop, 1, __ATOMIC_SEQ_CST);
        senders_join(r.snd, NQ);
        rig_close(&r);
}

/* ---- the option and the size rule ---- */

/* The first version of struct ntbt_transport_opts, as an older caller
 * compiled it: 32 bytes, its tail padding not necessarily zero. */
struct opts_v1 {
        uint32_t size, transport_mtu, max_qps, flags;
        uint64_t max_mw_size;
        int tx_mode;
};

static void opts_size_rule(void)
{
        struct ntbt_transport_opts o = opts_n(3);
        struct ntbt_transport *t;
        struct {
                struct ntbt_transport_opts o;
                uint64_t more;
        } newer;
        union {
                struct opts_v1 v;
                uint8_t b[sizeof(struct opts_v1)];
        } old;
        struct pair p;

        _Static_assert(sizeof(struct opts_v1) == 32, "the first version is 32 bytes");
        _Static_assert(offsetof(struct ntbt_transport_opts, rx_threads) >= 32,
                       "a new field lies past the first version");
        pair_create(&p, "rxt-opts", &geom);
        pair_open_dev(&p, 0);
        /* An older caller, garbage in its padding: the default (automatic). */
        memset(&old, 0xff, sizeof(old));
        old.v = (struct opts_v1){.size = sizeof(old.v), .max_qps = NQ};
        memset(old.b + offsetof(struct opts_v1, tx_mode) + sizeof(int), 0xff, 4);
        CHECK_EQ(ntbt_transport_open(p.dev[0], (const void *)&old, &t), 0);
        CHECK(ntbt_transport_rx_threads(t) >= 1 && ntbt_transport_rx_threads(t) <= NQ);
        ntbt_transport_close(t);
        /* Ours: as asked; more than the QPs is the QPs. */
        CHECK_EQ(ntbt_transport_open(p.dev[0], &o, &t), 0);
        CHECK_EQ(ntbt_transport_rx_threads(t), 3);
        ntbt_transport_close(t);
        o.rx_threads = 9;
        CHECK_EQ(ntbt_transport_open(p.dev[0], &o, &t), 0);
        CHECK_EQ(ntbt_transport_rx_threads(t), NQ);
        ntbt_transport_close(t);
        /* A newer caller: zero beyond ours is taken, anything else refused. */
        memset(&newer, 0, sizeof(newer));
        newer.o = opts_n(2);
        newer.o.size = sizeof(newer);
        CHECK_EQ(ntbt_transport_open(p.dev[0], &newer.o, &t), 0);
        CHECK_EQ(ntbt_transport_rx_threads(t), 2);
        ntbt_transport_close(t);
        newer.more = 1;
        CHECK_EQ(ntbt_transport_open(p.dev[0], &newer.o, &t), -E2BIG);
        pair_destroy(&p);
}

static const struct test_case cases[] = {
    TEST_CASE(streams_two_processes),    TEST_CASE(handlers_on_their_threads),
    TEST_CASE(free_while_others_stream), TEST_CASE(handlers_free_each_other),
    TEST_CASE(link_loss_mid_stream),     TEST_CASE(close_while_busy),
    TEST_CASE(opts_size_rule),
};

int main(int argc, char **argv)
{
        if (argc == 4 && !strcmp(argv[1], "sender")) {
                ntbt_set_log(test_log_hook, NULL);
                peer_sender(argv[2], strtoull(argv[3], NULL, 0));
                return 0;
        }
        return test_main(argc, argv, TEST_CASES(cases));
}
