/* SPDX-License-Identifier: MIT */
/*
 * The TX copy thread (tx_memcpy_offload): completions come in order; buffers
 * still queued when the QP is freed complete with an error; switching the
 * copy mode mid-stream loses and reorders nothing (the receiver checks
 * every frame); a copy thread that cannot be created leaves the QP inline.
 * Both transports live in this process (two ports), so TSan sees them all.
 * The queue by itself: jobs pushed while its thread spins or sleeps all run,
 * in order; an idle thread sleeps and burns no CPU; a link closed while the
 * thread is busy voids its queue without waiting for it.
 */
#include <dirent.h>
#include <sched.h>

#include "../harness.h"

#include "../support/pair.h"
#include "../support/session.h"
#include "../support/txlog.h"
#include "transport/copy_thread.h"

static struct pair p;

/* The pcie model over the pair's device, on port 0. */
static struct ntbt_dev *open_pcie(const char *opts)
{
        struct ntbt_dev *d;
        char spec[160];

        snprintf(spec, sizeof(spec), "pcie:%s,port=0%s", p.name, opts);
        CHECK_EQ(ntbt_dev_open(spec, &d), 0);
        return d;
}

static int saw_fallback_log;
static void log_hook(void *ctx, int level, const char *msg)
{
        if (strstr(msg, "cannot start the copy thread"))
                __atomic_store_n(&saw_fallback_log, 1, __ATOMIC_SEQ_CST);
        test_log_hook(ctx, level, msg);
}

static uint8_t rxbufs[32][65536];

/* QP 0 on both ports: a sender on port 0 whose completions go to l, and a
 * checking receiver on port 1 with 32 buffers posted; both asked to link. */
static void create_qps(const struct ntbt_qp_opts *qo, struct txlog *l, struct session_rx *s,
                       struct ntbt_qp **qa, struct ntbt_qp **qb)
{
        struct ntbt_qp_handlers tx_h = {.tx = txlog_on_tx};

        CHECK_EQ(ntbt_qp_create(p.t[0], qo, &tx_h, l, qa), 0);
        CHECK_EQ(ntbt_qp_create(p.t[1], NULL, &session_handlers, s, qb), 0);
        pair_post(*qb, rxbufs, 32, sizeof(rxbufs[0]));
        CHECK_EQ(ntbt_qp_link_up(*qa), 0);
        CHECK_EQ(ntbt_qp_link_up(*qb), 0);
}

/* Completions come in order, and a stream that switches copy modes every
 * 97 frames arrives whole. */
static void order_across_mode_switches(void)
{
        struct ntbt_qp *qa, *qb;
        struct session_rx s;
        int i, ret;
        struct ntbt_transport_opts to = {.size = sizeof(to), .tx_mode = NTBT_TX_THREAD};
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = 0, .poll = 1};
        struct txlog l = TXLOG_INIT;
        uint64_t seed = stream_seed(1, 0);
        uint32_t payload_max;

        pair_create(&p, "copy", NULL);
        pair_open(&p, 0, &to); /* thread mode by default */
        pair_open(&p, 1, NULL);
        session_init(&s, 65524, SIZES_RANDOM);
        create_qps(&qo, &l, &s, &qa, &qb);
        CHECK_EQ(ntbt_qp_tx_mode(qa), NTBT_TX_THREAD);
        CHECK_EQ(ntbt_qp_wait_link(qa, 10000000000LL), 0);
        payload_max = ntbt_qp_max_payload(qa);
        CHECK_EQ(payload_max, 65524);
        /* 20000 frames of side 1's stream; the mode flips every 97
         * frames; frame buffers stay valid until completed (a pool
         * of 64, reused only after their completion). */
        {
                static uint8_t pool[64][65524];
                for (i = 0; i < 20000; i++) {
                        uint32_t len = stream_len(seed, (uint64_t)i, payload_max, SIZES_RANDOM);

                        if (i % 97 == 96)
                                CHECK_EQ(
                                    ntbt_qp_set_tx_mode(qa, ntbt_qp_tx_mode(qa) == NTBT_TX_THREAD
                                                                ? NTBT_TX_INLINE
                                                                : NTBT_TX_THREAD),
                                    0);
                        /* Wait until buffer i % 64 has completed. */
                        while (txlog_get(&l, &l.n) < i - 63)
                                ntbt_qp_poll(qa, 16);
                        stream_fill(seed, (uint64_t)i, pool[i % 64], len);
                        while ((ret = ntbt_qp_tx_enqueue(qa, (void *)(intptr_t)i, pool[i % 64], len,
                                                         0)) == -EAGAIN)
                                CHECK_EQ(ntbt_qp_wait_tx(qa, 1, 10000000000LL), 0);
                        CHECK_EQ(ret, 0);
                }
        }
        while (session_get(&s, &s.total_frames) < 20000)
                CHECK_EQ(ntbt_qp_wait_tx(qa, 1, 10000000000LL), 0);
        /* The copy thread completes a frame just after ringing for it: the
         * receiver may have taken the last one first. */
        {
                int64_t d = now_ns() + 10000000000LL;
                while (txlog_get(&l, &l.n) < 20000)
                        CHECK(now_ns() < d);
        }
        CHECK_EQ(txlog_get(&l, &l.n), 20000);
        CHECK_EQ(txlog_get(&l, &l.out_of_order), 0);
        CHECK_EQ(txlog_get(&l, &l.errors), 0);
        ntbt_qp_free(qa);
        ntbt_qp_free(qb);
        session_destroy(&s);
        printf("20000 frames, mode switched every 97: in order, complete\n");
        pair_destroy(&p);
}

/* A fresh pair whose port 0 is a slow pcie link (64 KB/s, 4 KiB frames),
 * a thread-mode sender qa there and a checking receiver qb (session s),
 * both linked. */
static void slow_pair(struct session_rx *s, struct txlog *l, struct ntbt_qp **qa,
                      struct ntbt_qp **qb)
{
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = 0, .tx_mode = NTBT_TX_THREAD};
        struct ntbt_transport_opts o = {.size = sizeof(o), .transport_mtu = 4096};

        pair_create(&p, "copy", NULL);
        p.dev[0] = open_pcie(",bw=64K"); /* the pair closes it */
        CHECK_EQ(ntbt_transport_open(p.dev[0], &o, &p.t[0]), 0);
        pair_open(&p, 1, &o);
        session_init(s, 4084, SIZES_MAX);
        create_qps(&qo, l, s, qa, qb);
        CHECK_EQ(ntbt_qp_wait_link(*qa, 10000000000LL), 0);
        CHECK_EQ(ntbt_qp_wait_link(*qb, 10000000000LL), 0);
}

/* Buffers still queued to the copy thread when the QP is freed complete
 * with an error; the sent ones are a prefix. */
static void queued_at_free_complete_with_error(void)
{
        struct ntbt_qp *qa, *qb;
        struct session_rx s;
        static uint8_t payload[64][4096];
        int i;
        struct txlog l = TXLOG_INIT;

        /* A slow link (64 KB/s: ~64 ms a frame, 2.6 s for all 40) keeps jobs
         * queued even if this test is descheduled for a while. */
        slow_pair(&s, &l, &qa, &qb);
        /* Enqueue returns at once in thread mode. */
        {
                int64_t t0 = now_ns();

                for (i = 0; i < 40; i++) {
                        stream_fill(stream_seed(1, 0), (uint64_t)i, payload[i], 4084);
                        CHECK_EQ(ntbt_qp_tx_enqueue(qa, (void *)(intptr_t)i, payload[i], 4084, 0),
                                 0);
                }
                /* Inline, each would wait for its frame (~64 ms): 2.6 s.
                 * 120 ms leaves room for a loaded machine (40 ms was
                 * once missed under TSan at a load of 13). */
                CHECK(now_ns() - t0 < 120 * NS_PER_MS);
        }
        test_sleep_ms(10);
        ntbt_qp_free(qa);                       /* most of the 40 are still queued */
        CHECK_EQ(l.n, 40);                      /* every buffer came back */
        CHECK_EQ(l.out_of_order, 0);            /* in order */
        CHECK(l.errors > 0);                    /* the unsent ones with an error */
        CHECK_EQ(l.errors, 40 - l.first_error); /* sent ones are a prefix */
        /* The receiver got the sent prefix, intact, then LINK_DOWN. */
        {
                int64_t d = now_ns() + 10000000000LL;
                while (session_get_int(&s, &s.downs) < 1)
                        CHECK(now_ns() < d);
        }
        CHECK_EQ(session_get_int(&s, &s.last_reason), NTBT_QP_DOWN_PEER);
        CHECK_EQ(s.frames_at_down[0], (uint64_t)l.first_error);
        printf("free with %d queued buffers: each completed with an error\n", l.errors);
        ntbt_qp_free(qb);
        session_destroy(&s);
        pair_destroy(&p);
}

/* A copy thread that cannot be created leaves the QP inline, and says so
 * in the log. */
static void thread_fails_inline(void)
{
        struct ntbt_transport *ta;
        struct ntbt_qp *qa;
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .tx_mode = NTBT_TX_THREAD};

        pair_create(&p, "copy", NULL);
        ta = pair_open(&p, 0, NULL);
        ntbt_set_log(log_hook, NULL);
        copy_thread_fault_inject(1);
        CHECK_EQ(ntbt_qp_create(ta, &qo, NULL, NULL, &qa), 0);
        CHECK_EQ(ntbt_qp_tx_mode(qa), NTBT_TX_INLINE);
        CHECK_EQ(__atomic_load_n(&saw_fallback_log, __ATOMIC_SEQ_CST), 1);
        CHECK(ntbt_qp_set_tx_mode(qa, NTBT_TX_THREAD) < 0);
        CHECK_EQ(ntbt_qp_tx_mode(qa), NTBT_TX_INLINE);
        copy_thread_fault_inject(0);
        CHECK_EQ(ntbt_qp_set_tx_mode(qa, NTBT_TX_THREAD), 0);
        CHECK_EQ(ntbt_qp_tx_mode(qa), NTBT_TX_THREAD);
        CHECK_EQ(ntbt_qp_set_tx_mode(qa, 7), -EINVAL);
        ntbt_qp_free(qa);
        pair_destroy(&p);
}

/* Closing the link while the copy thread works through a slow link voids
 * what it holds at once: the close takes frame_lock between two frames of
 * a batch, not after the queue; completions stay in order, the sent ones a
 * prefix, which the receiver got before LINK_DOWN. */
static void link_down_voids_busy_queue(void)
{
        struct ntbt_qp *qa, *qb;
        struct session_rx s;
        static uint8_t payload[40][4096];
        struct txlog l = TXLOG_INIT;
        int64_t t0, d;
        int i;

        /* 64 KB/s: ~64 ms a frame, 2.6 s for all 40, 1 s for a batch of 16. */
        slow_pair(&s, &l, &qa, &qb);
        for (i = 0; i < 40; i++) {
                stream_fill(stream_seed(1, 0), (uint64_t)i, payload[i], 4084);
                CHECK_EQ(ntbt_qp_tx_enqueue(qa, (void *)(intptr_t)i, payload[i], 4084, 0), 0);
        }
        test_sleep_ms(100); /* the thread is in its first batch */
        t0 = now_ns();
        CHECK_EQ(ntbt_qp_link_down(qa), 0);
        d = t0 + 10000000000LL;
        while (txlog_get(&l, &l.n) < 40)
                CHECK(now_ns() < d);
        /* One frame's copy (~64 ms) and the event thread's turn, far less
         * than the rest of a 16-frame batch (~1 s) or the queue (2.5 s). */
        printf("40 queued, link closed: all completed %.0f ms later\n", (now_ns() - t0) / 1e6);
        CHECK(now_ns() - t0 < 600 * NS_PER_MS);
        CHECK_EQ(txlog_get(&l, &l.out_of_order), 0);
        CHECK(txlog_get(&l, &l.errors) > 0);
        CHECK(txlog_get(&l, &l.first_error) < 16); /* it stopped within the first batch */
        CHECK_EQ(txlog_get(&l, &l.errors), 40 - txlog_get(&l, &l.first_error));
        while (session_get_int(&s, &s.downs) < 1)
                CHECK(now_ns() < d);
        CHECK_EQ(s.frames_at_down[0], (uint64_t)txlog_get(&l, &l.first_error));
        ntbt_qp_free(qa);
        ntbt_qp_free(qb);
        session_destroy(&s);
        pair_destroy(&p);
}

/* ---- the queue by itself: jobs are sequence numbers ---- */

struct seqrec {
        uint64_t next;      /* the sequence number expected next */
        int bad, drains;    /* out of order; drained calls */
        unsigned max_batch; /* the most jobs in one run */
};

static void seq_run(void *ctx, void *jobs, unsigned n)
{
        struct seqrec *r = ctx;
        const uint64_t *j = jobs;

        for (unsigned i = 0; i < n; i++)
                if (j[i] != r->next++)
                        r->bad++;
        if (n > r->max_batch)
                r->max_batch = n;
}

static void seq_drained(void *ctx)
{
        ((struct seqrec *)ctx)->drains++;
}

static void seq_cancel(void *ctx, void *job)
{
        (void)job;
        ((struct seqrec *)ctx)->bad++;
}

static const struct copy_thread_ops seq_ops = {
    .run = seq_run, .drained = seq_drained, .cancel = seq_cancel};

/* Wait (at most 10 s) until every job pushed has run; copy_thread_idle's
 * acquire makes the thread's writes to the record visible. */
static void seq_wait_idle(struct copy_thread *w)
{
        int64_t d = now_ns() + 10000000000LL;

        while (!copy_thread_idle(w)) {
                CHECK(now_ns() < d);
                sched_yield();
        }
}

/* CPU time (utime + stime, clock ticks) of this process's threads but the main one. */
static long other_threads_ticks(void)
{
        DIR *dir = opendir("/proc/self/task");
        struct dirent *e;
        long sum = 0;

        CHECK(dir != NULL);
        while ((e = readdir(dir))) {
                char path[300], buf[1024], *q;
                unsigned long ut, st;
                FILE *f;

                if (e->d_name[0] == '.' || atoi(e->d_name) == (int)getpid())
                        continue;
                snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
                f = fopen(path, "r");
                if (!f)
                        continue; /* gone meanwhile */
                q = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
                fclose(f);
                /* After "pid (comm)": state is field 3, utime 14, stime 15. */
                CHECK(q && sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                                  &st) == 2);
                sum += (long)(ut + st);
        }
        closedir(dir);
        return sum;
}

/* With nothing to do the thread, made to spin first whatever the CPU count,
 * goes to sleep on its futex within its spin budget (at most 50 us; a
 * second allowed here for a loaded machine), then burns no CPU: under 3
 * clock ticks over an idle 200 ms, where a thread that kept spinning would
 * take most of them. */
static void idle_thread_sleeps(void)
{
        struct seqrec r = {0};
        struct copy_thread *w;
        uint64_t seq[8];
        int64_t d;
        long ticks;
        uint64_t sleeps;

        copy_thread_spin_inject(1);
        CHECK_EQ(copy_thread_start(&w, 64, sizeof(uint64_t), &seq_ops, &r), 0);
        copy_thread_spin_inject(-1);
        for (int i = 0; i < 100; i++) {
                for (int k = 0; k < 8; k++)
                        seq[k] = (uint64_t)(i * 8 + k);
                while (copy_thread_push_n(w, seq, 8) != 8) /* from empty: all or none fit */
                        sched_yield();
                seq_wait_idle(w);
        }
        CHECK_EQ(r.next, 800);
        CHECK_EQ(r.bad, 0);
        d = now_ns() + NS_PER_SEC;
        while ((sleeps = copy_thread_sleeps(w)) == 0)
                CHECK(now_ns() < d);
        test_sleep_ms(5);
        sleeps = copy_thread_sleeps(w);
        ticks = other_threads_ticks();
        test_sleep_ms(200);
        ticks = other_threads_ticks() - ticks;
        printf("idle 200 ms: %ld ticks of CPU, %llu sleeps before, %llu after\n", ticks,
               (unsigned long long)sleeps, (unsigned long long)copy_thread_sleeps(w));
        CHECK(ticks < 3);
        CHECK(copy_thread_sleeps(w) <= sleeps + 1); /* asleep, not cycling */
        /* And it wakes for the next job. */
        seq[0] = 800;
        CHECK_EQ(copy_thread_push(w, seq), 0);
        seq_wait_idle(w);
        CHECK_EQ(r.next, 801);
        copy_thread_stop(w);
}

/* A producer in bursts of 1-40 jobs (more than a batch, more than fit the
 * 64-job queue at times), pausing at random for nothing, a few
 * microseconds (a spinning thread finds the next jobs), or 100 us to 1 ms
 * (it sleeps): every job runs, once, in order, at most COPY_BATCH per run.
 * spin: the thread spins before it sleeps (1) or sleeps at once (0). */
static void pushes_run(int spin)
{
        struct seqrec r = {0};
        struct copy_thread *w;
        uint64_t x = 0x9e3779b97f4a7c15ull, next = 0, seq[40];
        const uint64_t total = 100000;

        copy_thread_spin_inject(spin);
        CHECK_EQ(copy_thread_start(&w, 64, sizeof(uint64_t), &seq_ops, &r), 0);
        copy_thread_spin_inject(-1);
        while (next < total) {
                unsigned n, k;

                x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
                n = 1 + (unsigned)(x % 40);
                if (n > total - next)
                        n = (unsigned)(total - next);
                for (k = 0; k < n; k++)
                        seq[k] = next + k;
                for (k = 0; k < n;) {
                        unsigned m = (x >> 8) & 1 ? copy_thread_push_n(w, seq + k, n - k)
                                                  : copy_thread_push(w, seq + k) == 0;
                        if (!m)
                                sched_yield(); /* full */
                        k += m;
                }
                next += n;
                switch ((x >> 16) % 16) {
                case 0:
                case 1:
                case 2: {
                        int64_t until = now_ns() + 3000; /* within the spin */
                        while (now_ns() < until)
                                ;
                        break;
                }
                case 3:
                        sleep_ns(100000); /* past the spin budget */
                        break;
                case 4:
                        if ((x >> 24) % 8 == 0)
                                sleep_ns(1000000);
                        break;
                default:
                        break;
                }
        }
        seq_wait_idle(w);
        printf("spin %d: %llu jobs: %llu run, %d out of order, at most %u a run, %llu sleeps, %d "
               "drains\n",
               spin, (unsigned long long)total, (unsigned long long)r.next, r.bad, r.max_batch,
               (unsigned long long)copy_thread_sleeps(w), r.drains);
        CHECK_EQ(r.next, total);
        CHECK_EQ(r.bad, 0);
        CHECK(r.max_batch >= 1 && r.max_batch <= COPY_BATCH);
        CHECK(copy_thread_sleeps(w) > 0); /* some pushes found it asleep */
        CHECK(r.drains > 0);
        copy_thread_stop(w);
}

static void pushes_across_spin_and_sleep(void)
{
        pushes_run(1);
        pushes_run(0);
}

static const struct test_case cases[] = {
    TEST_CASE(order_across_mode_switches), TEST_CASE(queued_at_free_complete_with_error),
    TEST_CASE(thread_fails_inline),        TEST_CASE(link_down_voids_busy_queue),
    TEST_CASE(idle_thread_sleeps),         TEST_CASE(pushes_across_spin_and_sleep),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
