/* SPDX-License-Identifier: MIT */
/*
 * A receiver restarts under a sender that never closed (issue 12): the
 * receiver checks 2 rings' worth of frames and is SIGKILLed, a new receiver
 * opens, and the sender sends more.  The new receiver must get exactly the
 * new stream, in order, from frame 0 of its session: no frame reserved in
 * the old session (its slot, its ver) may land in the new ring.  Once per
 * way the sending QP can miss the reset:
 *
 *  - poll mode: the sender does not poll between the restart and the send;
 *  - event mode: the event thread is held in another QP's event handler
 *    (QP 0), so the sending QP is not serviced between the reset of the
 *    transport and the send;
 *  - copy thread: frames queued in the old session wait behind a held tx
 *    completion until the new receiver's ring is ready.
 *
 * The first send after the restart must be refused (-ENOLINK); the sender
 * then waits for the link and sends the new stream from frame 0.  Every
 * wait is bounded.
 */
#include "../harness.h"

#include <poll.h>
#include <signal.h>

#include "../support/pair.h"
#include "../support/stream.h"
#include "transport/wire.h"

#define SEC     1000000000LL
#define MTU     4096
#define PAYLOAD (MTU - 12)
#define DATA_QP 1  /* QP 0 holds the event thread in the event-mode case */
#define POOL    64 /* one buffer per frame of a stream: the copy thread reads them late */

static struct pair p;

/* ---- the receiver: a child process on port 0 ---- */

struct rx_state {
        pthread_mutex_t lock;
        uint64_t seed, frames; /* frames checked in this session */
        int ups, downs, last_reason, fd;
        uint8_t expect[PAYLOAD];
};

static void r_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct rx_state *s = ctx;
        uint32_t want;

        (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        pthread_mutex_lock(&s->lock);
        want = stream_len(s->seed, s->frames, PAYLOAD, SIZES_RANDOM);
        if (len != (int)want)
                fprintf(stderr, "receiver: session %d frame %llu: len %d, want %u\n", s->ups,
                        (unsigned long long)s->frames, len, want);
        CHECK_EQ(len, (int)want);
        stream_fill(s->seed, s->frames, s->expect, want);
        CHECK(memcmp(s->expect, data, want) == 0);
        s->frames++;
        pthread_mutex_unlock(&s->lock);
        /* The sender counts what we checked. */
        if (s->fd >= 0)
                CHECK(write(s->fd, "f", 1) == 1);
        CHECK_EQ(ntbt_qp_rx_enqueue(qp, NULL, data, PAYLOAD), 0);
}

static void r_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        struct rx_state *s = ctx;

        (void)qp;
        /* An old session's frame in the new ring shows as a protocol error
         * ("frame 0 has ver N, expected 0"): fail at once. */
        CHECK(up || reason != NTBT_QP_DOWN_PROTOCOL);
        pthread_mutex_lock(&s->lock);
        if (up) {
                s->ups++;
                s->frames = 0;
        } else {
                s->downs++;
        }
        s->last_reason = reason;
        pthread_mutex_unlock(&s->lock);
}

static int r_get(struct rx_state *s, const int *field)
{
        int v;

        pthread_mutex_lock(&s->lock);
        v = *field;
        pthread_mutex_unlock(&s->lock);
        return v;
}

static uint64_t r_frames(struct rx_state *s)
{
        uint64_t v;

        pthread_mutex_lock(&s->lock);
        v = s->frames;
        pthread_mutex_unlock(&s->lock);
        return v;
}

/* expect 0: the first receiver, which runs until it is killed. */
static void receiver(const char *name, uint64_t seed, uint64_t expect, int fd, int link_q0)
{
        struct ntbt_transport_opts o = {.size = sizeof(o), .transport_mtu = MTU, .max_qps = 2};
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = DATA_QP};
        struct ntbt_qp_opts q0o = {.size = sizeof(q0o), .qp_num = 0};
        struct ntbt_qp_handlers h = {.rx = r_rx, .event = r_event};
        struct ntbt_qp_stats st = {.size = sizeof(st)};
        static uint8_t bufs[16][PAYLOAD];
        static struct rx_state s;
        struct ntbt_transport *t;
        struct ntbt_qp *qp, *q0 = NULL;
        struct ntbt_dev *dev;
        int64_t deadline = now_ns() + 30 * SEC;
        char spec[96];
        int i;

        pthread_mutex_init(&s.lock, NULL);
        s.seed = seed;
        s.fd = fd;
        snprintf(spec, sizeof(spec), "shm:%s,port=0", name);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        CHECK_EQ(ntbt_transport_open(dev, &o, &t), 0);
        CHECK_EQ(ntbt_qp_create(t, &qo, &h, &s, &qp), 0);
        for (i = 0; i < 16; i++)
                CHECK_EQ(ntbt_qp_rx_enqueue(qp, NULL, bufs[i], PAYLOAD), 0);
        CHECK_EQ(ntbt_qp_link_up(qp), 0);
        if (link_q0) {
                CHECK_EQ(ntbt_qp_create(t, &q0o, NULL, NULL, &q0), 0);
                CHECK_EQ(ntbt_qp_link_up(q0), 0);
        }
        if (!expect) {
                for (;;) {
                        CHECK(now_ns() < deadline);
                        test_sleep_ms(10);
                }
        }
        /* The sender's new stream, then its clean close. */
        while (r_get(&s, &s.downs) < 1) {
                CHECK(now_ns() < deadline);
                test_sleep_ms(1);
        }
        CHECK_EQ(r_get(&s, &s.ups), 1);
        CHECK_EQ(r_get(&s, &s.last_reason), NTBT_QP_DOWN_PEER);
        CHECK_EQ(r_frames(&s), expect);
        CHECK_EQ(ntbt_qp_stats(qp, &st), 0);
        CHECK_EQ(st.rx_err_ver, 0);
        CHECK_EQ(st.rx_err_flags, 0);
        CHECK_EQ(st.resets, 0);
        ntbt_qp_free(qp);
        ntbt_transport_close(t);
        ntbt_dev_close(dev);
}

/* The receiver, re-executed as the pair's peer. */
static void spawn_receiver(uint64_t seed, uint64_t expect, int fd, int link_q0)
{
        char a_seed[32], a_expect[32], a_fd[16], a_q0[4];
        char *args[] = {"receiver_restart", "recv", p.name, a_seed, a_expect, a_fd, a_q0, NULL};

        snprintf(a_seed, sizeof(a_seed), "%llu", (unsigned long long)seed);
        snprintf(a_expect, sizeof(a_expect), "%llu", (unsigned long long)expect);
        snprintf(a_fd, sizeof(a_fd), "%d", fd);
        snprintf(a_q0, sizeof(a_q0), "%d", link_q0);
        pair_spawn(&p, args);
}

/* ---- the sender (this process, port 1) ---- */

/* A library thread stops in a handler until the test opens the gate. */
struct gate {
        pthread_mutex_t lock;
        int armed, reached, opened;
        int res[4]; /* copy thread case: completions of jobs tagged 1..3 */
        int done[4];
};

static struct gate gate = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void gate_pass(struct gate *g)
{
        int64_t deadline = now_ns() + 30 * SEC;

        pthread_mutex_lock(&g->lock);
        if (g->armed) {
                int ticket = ++g->reached;

                while (g->opened < ticket) {
                        pthread_mutex_unlock(&g->lock);
                        CHECK(now_ns() < deadline);
                        test_sleep_ms(1);
                        pthread_mutex_lock(&g->lock);
                }
        }
        pthread_mutex_unlock(&g->lock);
}

static int gate_get(struct gate *g, int *field)
{
        int v;

        pthread_mutex_lock(&g->lock);
        v = *field;
        pthread_mutex_unlock(&g->lock);
        return v;
}

static void gate_wait(struct gate *g, int reached)
{
        int64_t deadline = now_ns() + 10 * SEC;

        while (gate_get(g, &g->reached) < reached)
                CHECK(now_ns() < deadline);
}

static void gate_set(struct gate *g, int armed, int open)
{
        pthread_mutex_lock(&g->lock);
        g->armed = armed;
        g->opened += open;
        pthread_mutex_unlock(&g->lock);
}

/* QP 0's events (event thread): held while armed. */
static void q0_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        (void)qp, (void)ctx, (void)up, (void)reason;
        gate_pass(&gate);
}

/* The data QP's completions; buf_ctx tags the copy-thread case's jobs. */
static void s_tx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len)
{
        int tag = (int)(intptr_t)buf_ctx;

        (void)qp, (void)ctx, (void)data;
        if (tag < 1 || tag > 3)
                return;
        pthread_mutex_lock(&gate.lock);
        gate.res[tag] = len;
        gate.done[tag] = 1;
        pthread_mutex_unlock(&gate.lock);
        if (tag == 1)
                gate_pass(&gate);
}

static uint8_t pool_old[POOL][PAYLOAD], pool_new[POOL][PAYLOAD];

/*
 * Frames 0..n-1 of a stream.  -ENOLINK is accepted before the first frame
 * only (then the sender waits for the link); after_first runs after the
 * first try.  Returns the result of that first try.
 */
static int send_stream(struct ntbt_qp *qp, uint64_t seed, uint64_t n, uint8_t (*pool)[PAYLOAD],
                       void (*after_first)(void))
{
        int64_t deadline = now_ns() + 20 * SEC;
        int first = 1, first_ret = 0;
        uint64_t i = 0;

        CHECK(n <= POOL);
        while (i < n) {
                uint32_t len = stream_len(seed, i, PAYLOAD, SIZES_RANDOM);
                int ret;

                CHECK(now_ns() < deadline);
                stream_fill(seed, i, pool[i], len);
                ret = ntbt_qp_tx_enqueue(qp, NULL, pool[i], len, 0);
                if (first) {
                        first = 0;
                        first_ret = ret;
                        if (after_first)
                                after_first();
                }
                if (ret == -EAGAIN) {
                        CHECK_EQ(ntbt_qp_wait_tx(qp, 1, 10 * SEC), 0);
                        continue;
                }
                if (ret == -ENOLINK && i == 0) {
                        CHECK_EQ(ntbt_qp_wait_link(qp, 10 * SEC), 0);
                        continue;
                }
                CHECK_EQ(ret, 0);
                i++;
        }
        return first_ret;
}

/* The first receiver wrote one byte per frame it checked. */
static void read_checked(int fd, uint64_t n)
{
        int64_t deadline = now_ns() + 20 * SEC;
        uint64_t got = 0;
        char buf[64];

        while (got < n) {
                struct pollfd in = {.fd = fd, .events = POLLIN};
                size_t want = n - got < sizeof(buf) ? (size_t)(n - got) : sizeof(buf);
                ssize_t r;

                CHECK(now_ns() < deadline);
                if (poll(&in, 1, 100) != 1)
                        continue;
                r = read(fd, buf, want);
                CHECK(r > 0);
                got += (uint64_t)r;
        }
}

static void wait_transport(struct ntbt_transport *t, int up)
{
        int64_t deadline = now_ns() + 10 * SEC;

        while (ntbt_transport_link_is_up(t) != up) {
                CHECK(now_ns() < deadline);
                test_sleep_ms(1);
        }
}

static void wait_dev_link(struct ntbt_dev *dev, int up)
{
        int64_t deadline = now_ns() + 10 * SEC;

        while (ntbt_dev_link_is_up(dev) != up) {
                CHECK(now_ns() < deadline);
                test_sleep_ms(1);
        }
}

/* The new receiver zeroed its ring and requests the QP (its bit in our spad[1]). */
static void wait_peer_request(struct ntbt_dev *dev, unsigned q)
{
        int64_t deadline = now_ns() + 10 * SEC;
        uint32_t v = 0;

        for (;;) {
                CHECK_EQ(ntbt_dev_spad_read(dev, NTB_SPAD_QP_LINKS, &v), 0);
                if (v & (1u << q))
                        return;
                CHECK(now_ns() < deadline);
                test_sleep_ms(1);
        }
}

static void open_gate_for_good(void)
{
        gate_set(&gate, 0, 1);
}

enum mode { M_POLL, M_EVENT, M_THREAD };

static void scenario(enum mode m)
{
        static const char *const names[] = {"poll mode", "event mode", "copy thread"};
        struct ntbt_transport_opts o = {.size = sizeof(o), .transport_mtu = MTU, .max_qps = 2};
        struct ntbt_shm_geom g = {.size = sizeof(g), .mw_size = 64 << 10};
        struct ntbt_qp_opts qo = {.size = sizeof(qo),
                                  .qp_num = DATA_QP,
                                  .poll = m != M_EVENT,
                                  .tx_mode = m == M_THREAD ? NTBT_TX_THREAD : NTBT_TX_INLINE};
        struct ntbt_qp_opts q0o = {.size = sizeof(q0o), .qp_num = 0};
        struct ntbt_qp_handlers h = {.tx = s_tx}, h0 = {.event = q0_event};
        uint64_t seed_old = stream_seed(0, 5), seed_new = stream_seed(1, 5), n_old, n_new;
        struct ntbt_qp *qp, *q0 = NULL;
        struct ntbt_transport *t;
        struct ntbt_dev *dev;
        int pfd[2], entries, first, i;

        memset(gate.res, 0, sizeof(gate.res));
        memset(gate.done, 0, sizeof(gate.done));
        gate.armed = gate.reached = gate.opened = 0;
        pair_create(&p, m == M_POLL ? "rr-poll" : m == M_EVENT ? "rr-event" : "rr-thread", &g);
        CHECK_EQ(pipe(pfd), 0);
        spawn_receiver(seed_old, 0, pfd[1], m == M_EVENT);
        close(pfd[1]);

        t = pair_open(&p, 1, &o);
        dev = p.dev[1];
        CHECK_EQ(ntbt_transport_qp_count(t), 2);
        if (m == M_EVENT)
                CHECK_EQ(ntbt_qp_create(t, &q0o, &h0, NULL, &q0), 0);
        CHECK_EQ(ntbt_qp_create(t, &qo, &h, NULL, &qp), 0);
        CHECK_EQ(ntbt_qp_link_up(qp), 0);
        CHECK_EQ(ntbt_qp_wait_link(qp, 10 * SEC), 0);
        entries = ntbt_qp_tx_entries(qp);
        CHECK(entries >= 4);
        /* So that the next reservation is slot 0 with ver 2 * entries (for
         * the copy thread: slot entries - 1, then slot 0). */
        n_old = 2 * (uint64_t)entries - (m == M_THREAD);
        n_new = 3 * (uint64_t)entries + 5;
        send_stream(qp, seed_old, n_old, pool_old, NULL);
        read_checked(pfd[0], n_old);
        CHECK_EQ(ntbt_qp_wait_tx(qp, entries - 1, 10 * SEC), 0); /* every slot given back */

        if (m == M_POLL) {
                pair_kill(&p);
                wait_transport(t, 0);
                spawn_receiver(seed_new, n_new, -1, 0);
                wait_peer_request(dev, DATA_QP);
                first = send_stream(qp, seed_new, n_new, pool_new, NULL);
        } else if (m == M_EVENT) {
                /* Hold the event thread in QP 0's up event, so it does not
                 * see the first receiver go before the second one is there;
                 * then in QP 0's down event, after it reset the transport and
                 * before it services QP 1. */
                gate_set(&gate, 1, 0);
                CHECK_EQ(ntbt_qp_link_up(q0), 0);
                gate_wait(&gate, 1);
                pair_kill(&p);
                wait_dev_link(dev, 0);
                spawn_receiver(seed_new, n_new, -1, 0);
                wait_dev_link(dev, 1);
                gate_set(&gate, 1, 1);
                gate_wait(&gate, 2);
                wait_peer_request(dev, DATA_QP);
                first = send_stream(qp, seed_new, n_new, pool_new, open_gate_for_good);
        } else {
                /* Job 1, the old stream's next frame (the old receiver may
                 * check it), is written and its completion holds the copy
                 * thread; jobs 2 and 3 are reserved (slots 0 and 1) behind
                 * it and must never reach anyone. */
                uint32_t len = stream_len(seed_old, n_old, PAYLOAD, SIZES_RANDOM);

                gate_set(&gate, 1, 0);
                stream_fill(seed_old, n_old, pool_old[n_old], len);
                CHECK_EQ(ntbt_qp_tx_enqueue(qp, (void *)1, pool_old[n_old], len, 0), 0);
                gate_wait(&gate, 1);
                CHECK_EQ(ntbt_qp_tx_enqueue(qp, (void *)2, pool_old[n_old], len, 0), 0);
                CHECK_EQ(ntbt_qp_tx_enqueue(qp, (void *)3, pool_old[n_old], len, 0), 0);
                pair_kill(&p);
                wait_transport(t, 0);
                spawn_receiver(seed_new, n_new, -1, 0);
                wait_peer_request(dev, DATA_QP);
                open_gate_for_good();
                for (i = 2; i <= 3; i++) {
                        int64_t deadline = now_ns() + 10 * SEC;

                        while (!gate_get(&gate, &gate.done[i]))
                                CHECK(now_ns() < deadline);
                }
                first = send_stream(qp, seed_new, n_new, pool_new, NULL);
        }
        CHECK_EQ(ntbt_qp_wait_tx(qp, entries - 1, 10 * SEC), 0); /* the new receiver took all */
        CHECK_EQ(ntbt_qp_link_down(qp), 0);                      /* LINK_DOWN: it checks, exits */
        pair_reap(&p);
        /* The reservation of the old session was refused, not written. */
        CHECK_EQ(first, -ENOLINK);
        if (m == M_THREAD) {
                CHECK_EQ(gate_get(&gate, &gate.res[2]), -ENOLINK);
                CHECK_EQ(gate_get(&gate, &gate.res[3]), -ENOLINK);
        }
        ntbt_qp_free(qp);
        if (q0)
                ntbt_qp_free(q0);
        pair_destroy(&p);
        close(pfd[0]);
        printf("receiver restart, %s: %llu old frames, then %llu new ones from frame 0\n", names[m],
               (unsigned long long)n_old, (unsigned long long)n_new);
}

static void poll_mode(void)
{
        scenario(M_POLL);
}

static void event_mode(void)
{
        scenario(M_EVENT);
}

static void copy_thread(void)
{
        scenario(M_THREAD);
}

static const struct test_case cases[] = {
    TEST_CASE(poll_mode),
    TEST_CASE(event_mode),
    TEST_CASE(copy_thread),
};

int main(int argc, char **argv)
{
        if (argc == 7 && !strcmp(argv[1], "recv")) {
                ntbt_set_log(test_log_hook, NULL);
                receiver(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
                         atoi(argv[5]), atoi(argv[6]));
                return 0;
        }
        return test_main(argc, argv, TEST_CASES(cases));
}
