/* SPDX-License-Identifier: MIT */
/*
 * Posted receive buffers are used in the order they were posted, posts
 * coming from several threads and from the rx handler itself, and every
 * buffer comes back exactly once.  Every post takes a test lock and a
 * sequence number under it, so the posts are ordered by happens-before and
 * the library must hand the buffers out in that order: whether a frame
 * fills them, ntbt_qp_rx_remove takes them back or the free cancels them,
 * the sequence numbers leaving the QP only grow.
 *
 * Three cases, each on a fresh pair (tests/support/pair): the receiver in
 * event mode (the event thread owns it; link down, then rx_remove takes
 * some back, the free cancels the rest), in poll mode (this thread owns
 * it; the free while up cancels every buffer), and in poll mode with a
 * frame that waits for a buffer (rx_err_no_buf counted exactly once per
 * walk that finds it; it fills the first buffer posted).  The sender is a
 * poll-mode QP on the other port of the same device, in this process.
 */
#include "../harness.h"

#include "../support/pair.h"

#define NBUF    96
#define FRAMES  12000
#define POSTERS 3

enum { B_APP, B_POSTED };

struct rxt {
        pthread_mutex_t lock; /* every post, and everything below */
        pthread_cond_t cond;
        struct ntbt_qp *qp;
        uint64_t seq[NBUF], next_seq, last_out;
        int state[NBUF], outs, posts;
        uint64_t frames; /* frames received, the next frame number expected */
        int free_list[NBUF], nfree, stop;
        int handler_posts, poster_posts, cancelled, removed;
        uint8_t data[NBUF][64];
};

/* Under r->lock: post buffer b with the next sequence number. */
static void post(struct rxt *r, int b)
{
        CHECK_EQ(r->state[b], B_APP);
        r->seq[b] = r->next_seq++;
        r->state[b] = B_POSTED;
        r->posts++;
        CHECK_EQ(ntbt_qp_rx_enqueue(r->qp, (void *)(intptr_t)b, r->data[b], 64), 0);
}

/* Under r->lock: buffer b left the QP; it must be the oldest posted. */
static void out(struct rxt *r, int b)
{
        CHECK(b >= 0 && b < NBUF);
        CHECK_EQ(r->state[b], B_POSTED);
        if (r->outs)
                CHECK(r->seq[b] > r->last_out);
        r->last_out = r->seq[b];
        r->state[b] = B_APP;
        r->outs++;
}

static void on_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct rxt *r = ctx;
        int b = (int)(intptr_t)buf_ctx;
        uint64_t f;

        (void)qp;
        pthread_mutex_lock(&r->lock);
        out(r, b);
        CHECK(data == r->data[b]);
        if (len == -ECANCELED) {
                r->cancelled++;
        } else {
                CHECK_EQ(len, 8);
                memcpy(&f, data, 8);
                CHECK_EQ(f, r->frames);
                r->frames++;
                /* Three in four go straight back from the handler (the
                 * owner's own post), the fourth to a poster thread. */
                if (f % 4 != 3 && !r->stop) {
                        post(r, b);
                        r->handler_posts++;
                } else {
                        r->free_list[r->nfree++] = b;
                        pthread_cond_broadcast(&r->cond);
                }
        }
        pthread_mutex_unlock(&r->lock);
}

static void *poster(void *arg)
{
        struct rxt *r = arg;
        unsigned n = 0;

        pthread_mutex_lock(&r->lock);
        while (!r->stop) {
                if (!r->nfree) {
                        pthread_cond_wait(&r->cond, &r->lock);
                        continue;
                }
                post(r, r->free_list[--r->nfree]);
                r->poster_posts++;
                /* Let go now and then, so the others and the handler get in. */
                if (++n % 3 == 0) {
                        pthread_mutex_unlock(&r->lock);
                        sched_yield();
                        pthread_mutex_lock(&r->lock);
                }
        }
        pthread_mutex_unlock(&r->lock);
        return NULL;
}

static uint64_t no_buf(struct ntbt_qp *qp)
{
        struct ntbt_qp_stats st = {.size = sizeof(st)};

        CHECK_EQ(ntbt_qp_stats(qp, &st), 0);
        return st.rx_err_no_buf;
}

static struct pair p;
static struct ntbt_qp *qa, *qb;
static struct rxt *r;

/* Sender qa on port 0 (poll mode), receiver qb on port 1 (poll or event
 * mode) with the checking rx handler, both linked; no buffer posted yet. */
static void setup(int poll_rx)
{
        struct ntbt_qp_opts qa_o = {.size = sizeof(qa_o), .qp_num = 0, .poll = 1};
        struct ntbt_qp_opts qb_o = {.size = sizeof(qb_o), .qp_num = 0, .poll = poll_rx};
        struct ntbt_qp_handlers h = {.rx = on_rx};
        int64_t deadline;
        int i;

        r = calloc(1, sizeof(*r));
        CHECK(r);
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->cond, NULL);
        pair_create(&p, poll_rx ? "rxorder-p" : "rxorder-e", NULL);
        pair_open(&p, 0, NULL);
        pair_open(&p, 1, NULL);
        CHECK_EQ(ntbt_qp_create(p.t[0], &qa_o, NULL, NULL, &qa), 0);
        CHECK_EQ(ntbt_qp_create(p.t[1], &qb_o, &h, r, &qb), 0);
        r->qp = qb;
        for (i = 0; i < NBUF; i++)
                r->free_list[r->nfree++] = i;
        CHECK_EQ(ntbt_qp_link_up(qa), 0);
        CHECK_EQ(ntbt_qp_link_up(qb), 0);
        deadline = now_ns() + 10000000000LL;
        while (!ntbt_qp_link_is_up(qa) || !ntbt_qp_link_is_up(qb)) {
                CHECK(now_ns() < deadline);
                ntbt_qp_poll(qa, 0);
                if (poll_rx)
                        ntbt_qp_poll(qb, 0);
                test_sleep_ms(1);
        }
}

/* Free the receiver (the buffers still posted come back cancelled, oldest
 * first, each once) and check that every buffer came back, every frame
 * sent arrived; then the sender, the pair, the state. */
static void teardown(const char *mode, uint64_t frames)
{
        int i;

        ntbt_qp_free(qb);
        pthread_mutex_lock(&r->lock);
        for (i = 0; i < NBUF; i++)
                CHECK_EQ(r->state[i], B_APP);
        CHECK_EQ(r->outs, r->posts);
        CHECK_EQ(r->frames, frames);
        printf("rx_post_order (%s): %d posts (%d from the handler, %d from %d threads), "
               "%d removed, %d cancelled, all in order\n",
               mode, r->posts, r->handler_posts, r->poster_posts, POSTERS, r->removed,
               r->cancelled);
        pthread_mutex_unlock(&r->lock);
        ntbt_qp_free(qa);
        pair_destroy(&p);
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
        r = NULL;
}

/* FRAMES frames from qa, the posts from POSTERS threads and the handler,
 * the frame counter starting at f (frames already sent). */
static void stream(int poll_rx, uint64_t f)
{
        pthread_t th[POSTERS];
        int64_t deadline;
        int i, ret;

        for (i = 0; i < POSTERS; i++)
                CHECK_EQ(pthread_create(&th[i], NULL, poster, r), 0);

        deadline = now_ns() + 60000000000LL;
        while (f < FRAMES) {
                ret = ntbt_qp_tx_enqueue(qa, NULL, &f, 8, 0);
                if (ret == 0) {
                        f++;
                } else {
                        CHECK_EQ(ret, -EAGAIN);
                        CHECK(now_ns() < deadline);
                }
                if (poll_rx)
                        ntbt_qp_poll(qb, 32);
                else if (ret)
                        sched_yield();
        }
        for (;;) {
                pthread_mutex_lock(&r->lock);
                f = r->frames;
                pthread_mutex_unlock(&r->lock);
                if (f == FRAMES)
                        break;
                CHECK(now_ns() < deadline);
                if (poll_rx)
                        ntbt_qp_poll(qb, 32);
                else
                        test_sleep_ms(1);
        }

        pthread_mutex_lock(&r->lock);
        r->stop = 1;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        for (i = 0; i < POSTERS; i++)
                pthread_join(th[i], NULL);
        CHECK_EQ(ntbt_qp_rx_remove(qb, NULL, NULL, NULL), -EBUSY); /* up */
        pthread_mutex_lock(&r->lock);
        CHECK(r->handler_posts > 0 && r->poster_posts > 0);
        pthread_mutex_unlock(&r->lock);
}

/* Event mode: posts from three threads and the handler leave in order;
 * after link down, rx_remove takes the oldest back first (20 of them),
 * the free cancels the rest, in order. */
static void event_mode(void)
{
        void *ctx, *data;
        uint32_t len;
        int64_t deadline;
        int ret;

        setup(0);
        stream(0, 0);
        /* Down: the event thread gives its buffers back to the front of the
         * queue; rx_remove takes the oldest first. */
        CHECK_EQ(ntbt_qp_link_down(qb), 0);
        deadline = now_ns() + 10000000000LL;
        while ((ret = ntbt_qp_rx_remove(qb, &ctx, &data, &len)) == -EBUSY) {
                CHECK(now_ns() < deadline);
                test_sleep_ms(1);
        }
        while (ret == 0) {
                pthread_mutex_lock(&r->lock);
                out(r, (int)(intptr_t)ctx);
                CHECK(data == r->data[(intptr_t)ctx] && len == 64);
                r->removed++;
                pthread_mutex_unlock(&r->lock);
                if (r->removed == 20)
                        break; /* the rest: the free */
                ret = ntbt_qp_rx_remove(qb, &ctx, &data, &len);
        }
        CHECK(ret == 0 || ret == -ENOENT);
        teardown("event", FRAMES);
}

/* Poll mode: posts from three threads and the handler leave in order; the
 * free while up cancels every buffer still posted, in order. */
static void poll_mode(void)
{
        setup(1);
        stream(1, 0);
        teardown("poll", FRAMES);
}

/* Poll mode, a frame and no buffer: each walk that finds it counts once in
 * rx_err_no_buf, and the frame fills the first buffer posted (then no
 * more is counted); the stream after it as in poll_mode. */
static void no_buf_counted(void)
{
        uint64_t f = 0;

        setup(1);
        CHECK_EQ(ntbt_qp_tx_enqueue(qa, NULL, &f, 8, 0), 0);
        f++;
        CHECK_EQ(ntbt_qp_poll(qb, 16), 0);
        CHECK_EQ(ntbt_qp_poll(qb, 16), 0);
        CHECK_EQ(no_buf(qb), 2);
        /* One buffer: frame 0 fills it (on_rx checks buffer and frame). */
        pthread_mutex_lock(&r->lock);
        post(r, r->free_list[--r->nfree]);
        pthread_mutex_unlock(&r->lock);
        CHECK_EQ(ntbt_qp_poll(qb, 16), 1);
        CHECK_EQ(ntbt_qp_poll(qb, 16), 0);
        CHECK_EQ(no_buf(qb), 2);
        pthread_mutex_lock(&r->lock);
        CHECK_EQ(r->frames, 1);
        CHECK_EQ(r->outs, 1);
        pthread_mutex_unlock(&r->lock);
        stream(1, f);
        teardown("poll, a frame waiting", FRAMES);
}

static const struct test_case cases[] = {
    TEST_CASE(event_mode),
    TEST_CASE(poll_mode),
    TEST_CASE(no_buf_counted),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
