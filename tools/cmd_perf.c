/* SPDX-License-Identifier: MIT */
/*
 * ntbt perf: throughput and message rate over N queue pairs.
 *
 * Each run (one message size) opens the transport with --qps queue pairs.
 * The client sends a 16-byte hello on every QP (what to expect: size,
 * --verify, --bidir, whether this is the last run), then one sender thread
 * per QP sends messages of that size for --time seconds while the main
 * thread prints interval lines.  It then waits until the server has taken
 * every message (all transmit slots free again), takes the QPs down and
 * prints a row of the table.  The server counts (and with --verify checks)
 * what arrives on each QP's event thread; with --bidir it also runs one
 * sender thread per QP until the client takes the link down.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "util.h"
#include "cli.h"
#include "crc32c.h"

static const char perf_usage[] =
    "usage: ntbt perf -d|--dev DEV (--server | --client | --loopback)\n"
    "                 [-s|--size SIZES] [-t|--time SECS] [-P|--qps N] [--bidir]\n"
    "                 [--tx inline|thread] [--verify] [--work NS] [-m|--mtu BYTES]\n"
    "                 [-i|--interval SECS] [-j|--json | --json-lines]\n"
    "                 [--timeout SECS] [--unsafe-no-flush] [-v|--verbose]\n"
    "\n"
    "Throughput and message rate over N queue pairs (default 1), one sender thread\n"
    "each.  For every size the client sends for --time seconds (default 1), then\n"
    "waits until the server has taken every message, and prints a row: size,\n"
    "messages, GB/s, Gbit/s, M msg/s, the enqueue cost per message (bursts of 16\n"
    "below 32 KiB, single messages from 32 KiB on), the CPU\n"
    "use of each side (100% = one core) and the error counters.  --loopback forks\n"
    "the server on a fresh private device named after DEV (one per size) and\n"
    "removes it afterwards (also when SIGINT, SIGTERM or SIGHUP ends it);\n"
    "otherwise run 'ntbt perf --server' in another shell on\n"
    "the same device first, with the same --qps and --mtu (the queue-pair count is\n"
    "fixed when the transport links).  The server learns the rest from the client,\n"
    "serves every size of the client's sweep, and exits after the last.\n"
    "\n"
    "-d, --dev DEV       the device, TYPE:NAME[,key=value...]\n"
    "-s, --size SIZES    one size, a list (64,1024,65524) or a range LO:HI (the\n"
    "                    powers of two between, and both ends), each 1-1G; 'max'\n"
    "                    is the largest payload.  Default: 64, 128, ... up to the\n"
    "                    max payload, and the max.\n"
    "-t, --time SECS     per size, more than 0, at most 3600 (default 1).\n"
    "-P, --qps N         queue pairs in parallel, 1-32, each with its own sender.\n"
    "    --bidir         the server sends to the client at the same time.\n"
    "    --tx MODE       inline: the sender copies into the window; thread: the QP's\n"
    "                    copy thread does (tx_memcpy_offload).\n"
    "    --verify        every message carries its sequence number and a CRC32C of\n"
    "                    its bytes (messages under 12 bytes: a pattern of the\n"
    "                    sequence number); any mismatch, gap or duplicate fails.\n"
    "    --work NS       spend NS ns per KiB producing each message, 0-1000000000\n"
    "                    (a pattern fill plus a spin): an application that produces.\n"
    "-m, --mtu BYTES     transport_mtu, 32-1G (default 65536); both sides.\n"
    "    --timeout SECS  the client waits at most SECS for the server (default\n"
    "                    30), then exits 1\n"
    "-i, --interval SECS one line per interval while running, 0-3600 (default: 1 on\n"
    "                    a terminal, off otherwise; 0 turns it off; on stderr with\n"
    "                    --json or --json-lines).\n"
    "-j, --json          one JSON document at the end (iperf3's -J): the run's\n"
    "                    parameters (version, command, dev, role, qps, bidir,\n"
    "                    tx_mode, verify, seconds_per_size, mtu, work_ns_per_kib,\n"
    "                    sizes), results (one object per size, the fields of\n"
    "                    --json-lines, and per_qp, each queue pair's share, when\n"
    "                    --qps > 1) and failed.\n"
    "    --json-lines    one object per line, per size as it ends: size, qps, bidir,\n"
    "                    tx_mode, msgs, bytes, seconds, bytes_per_sec, gbit_per_sec,\n"
    "                    msgs_per_sec, enqueue_ns_avg, cpu_client_pct,\n"
    "                    cpu_server_pct (-1: unknown), rx_msgs, rx_bytes_per_sec\n"
    "                    (--bidir), work_ns_per_kib, errors, tx_errors,\n"
    "                    verify_errors, rx_err_ver, rx_err_oflow, rx_err_flags,\n"
    "                    tx_err_rri, resets, failed.\n"
    "    --unsafe-no-flush  UNSAFE, for demonstrations: no flush between the DONE\n"
    "                    write and the doorbell.\n"
    "-v, --verbose       more messages\n"
    "-h, --help          this text\n"
    "\n"
    "Exit status: 0 when every run moved its data without an error, 1 otherwise,\n"
    "2 for a usage error (a bad option or device string).\n";

#define MAX_SIZES 64
#define MAX_QPS   32
#define BURST     16 /* messages per ntbt_qp_tx_enqueue_burst call, small messages */
/*
 * From this size on the sender sends one message per call from two buffers,
 * and the receiver keeps one buffer posted: the bytes a burst or a rotation
 * of 16 posted buffers touch (1 MiB each at 64 KiB) then no longer fit in
 * the cores' caches, which cost about 8% of the 64 KiB throughput
 * (bench/README.md).  Small messages need the bursts: one doorbell and one
 * lock round trip for 16 of them.
 */
#define BIG_MSG 32768
/* Send buffers per QP: two bursts' worth, so the sender fills one burst
 * while the copy thread still sends the last. */
#define POOL(burst) (2 * (burst))
#define RXBUFS      16
#define HELLO_LEN   16
#define HELLO_MAG   0x5042544eu /* "NTBP" */
#define F_VERIFY    1u
#define F_BIDIR     2u
#define F_LAST      4u

/* Messages per enqueue call for this message size. */
static unsigned burst_for(uint32_t size)
{
        return size >= BIG_MSG ? 1 : BURST;
}

struct perf_opts {
        const char *dev;
        const char *user_dev; /* DEV as given (dev is the private one under --loopback) */
        int server, client, loopback, json, verbose, tx_mode, verify, bidir, qps;
        uint32_t mtu, flags;
        uint32_t sizes[MAX_SIZES]; /* 0: the max payload */
        int nsizes;
        uint64_t debug_corrupt; /* test hook: damage message N after its CRC (1-based) */
        double seconds, interval;
        double timeout; /* the client's wait for the server; 0: 30 s */
        uint64_t work_ns;
};

/* One queue pair's share of a run (--json with --qps > 1). */
struct perf_qp_result {
        uint64_t msgs, rx_msgs, rx_bytes, enq_ns_sum, enq_samples;
        uint64_t tx_errors, verify_errors, rx_err_ver, rx_err_oflow, rx_err_flags, tx_err_rri,
            resets;
};

/* One row of the table. */
struct perf_result {
        uint32_t size;
        int tx_mode, failed;
        uint64_t msgs, rx_msgs, rx_bytes, enq_ns_sum, enq_samples;
        uint64_t tx_errors, verify_errors, rx_err_ver, rx_err_oflow, rx_err_flags, tx_err_rri,
            resets;
        double seconds, cpu_client, cpu_server;
        int nqps;
        struct perf_qp_result qp[MAX_QPS];
};

struct perf_run;

/* One queue pair of a run.  Counters written by one thread and read by the
 * main thread's interval lines are relaxed atomics: they are statistics,
 * ordering nothing. */
struct perf_qp {
        struct perf_run *r;
        struct ntbt_qp *qp;
        pthread_t thread;
        int has_thread;
        uint8_t hello[HELLO_LEN];
        uint8_t *pool, *rxbufs;
        uint32_t buf_len;
        /* sender thread */
        uint64_t sent, enq_ns, enq_samples;
        uint64_t completed; /* tx handler: release, read with acquire by the sender */
        uint64_t tx_errors; /* tx handler, atomic */
        int send_err;
        /* receive side (event thread) */
        uint64_t rx_msgs, rx_bytes, expect_seq, verify_errors;
        unsigned rx_posted; /* receive buffers posted (event thread, after the setup) */
        /* What arriving messages must look like.  Relaxed atomics: the client
         * sets them before its hello, the server's event thread from the
         * hello; no thread of this process orders the two. */
        uint32_t rx_size;
        int rx_verify;
        int hello_seen;  /* event thread stores with release after filling the fields below */
        int hello_taken; /* server main thread: acted on the hello */
        uint32_t hello_flags, hello_size;
        int ups, downs, down_reason; /* atomic */
};

struct perf_run {
        const struct perf_opts *o;
        const char *ctx;
        struct ntbt_dev *dev;
        struct ntbt_transport *t;
        struct perf_qp q[MAX_QPS];
        int nqps;
        uint32_t size;      /* message size the senders send; set before go */
        int is_server;      /* the server does not send a hello */
        int verify;         /* the senders produce the --verify format; set before go */
        int go, stop;       /* atomic: the senders start, and stop */
        uint64_t corrupt_n; /* test hook, client only */
};

/* User plus system CPU seconds. */
static double ru_seconds(const struct rusage *ru)
{
        return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
               (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

static double cpu_s(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return ru_seconds(&ru);
}

static void put32(uint8_t *p, uint32_t v)
{
        memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, 4);
        return v;
}

/* ---- the --verify message format ---- */

/* seq (8 bytes), CRC32C of seq and the rest (4), data. */
#define VHDR 12

static void small_pattern(uint8_t *buf, uint32_t size, uint64_t seq)
{
        for (uint32_t i = 0; i < size; i++)
                buf[i] = (uint8_t)(seq * 131 + i * 7 + 1);
}

static uint32_t verify_crc(const uint8_t *buf, uint32_t size)
{
        return crc32c(crc32c(0, buf, 8), buf + VHDR, size - VHDR);
}

/* The next message must be expect_seq, intact (receive thread only). */
static void verify_msg(struct perf_qp *q, const uint8_t *data, uint32_t len)
{
        uint64_t seq = q->expect_seq;
        uint32_t crc;

        if (len != __atomic_load_n(&q->rx_size, __ATOMIC_RELAXED)) {
                q->verify_errors++;
        } else if (len < VHDR) {
                uint8_t want[VHDR];

                small_pattern(want, len, seq);
                if (memcmp(want, data, len))
                        q->verify_errors++;
        } else {
                memcpy(&seq, data, 8);
                memcpy(&crc, data + 8, 4);
                if (seq != q->expect_seq || crc != verify_crc(data, len))
                        q->verify_errors++;
        }
        /* Resynchronise on the sequence number carried, so one gap counts once. */
        q->expect_seq = seq + 1;
}

/* Produce a message: a pattern, then spin until work_ns per KiB has passed. */
static void produce(uint8_t *buf, uint32_t size, uint64_t seq, uint64_t work_ns, int verify)
{
        int64_t until = work_ns ? now_ns() + (int64_t)(work_ns * size / 1024) : 0;
        uint64_t v = seq * 0x9e3779b97f4a7c15ull;
        uint32_t i;

        if (verify && size < VHDR) {
                small_pattern(buf, size, seq);
                return;
        }
        if (verify || work_ns) {
                for (i = 0; i + 8 <= size; i += 8, v++)
                        memcpy(buf + i, &v, 8);
        } else if (size >= 8) {
                memcpy(buf, &v, 8); /* plain runs: the pool's contents stay; stamp the seq */
        }
        if (verify) {
                uint32_t crc;

                memcpy(buf, &seq, 8);
                crc = verify_crc(buf, size);
                memcpy(buf + 8, &crc, 4);
        }
        while (work_ns && now_ns() < until)
                ;
}

/* ---- handlers (event thread, copy thread or sender) ---- */

static void perf_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        struct perf_qp *q = ctx;

        (void)qp;
        if (up) {
                __atomic_add_fetch(&q->ups, 1, __ATOMIC_SEQ_CST);
                return;
        }
        __atomic_store_n(&q->down_reason, reason, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&q->downs, 1, __ATOMIC_SEQ_CST);
}

static void perf_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct perf_qp *q = ctx;

        (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        if (len <= 0) {
                q->verify_errors++; /* an oversize frame: the transport said so */
        } else if (q->r->is_server && !q->hello_seen) {
                if (len == HELLO_LEN && get32(data) == HELLO_MAG) {
                        q->hello_flags = get32((uint8_t *)data + 4);
                        q->hello_size = get32((uint8_t *)data + 8);
                        __atomic_store_n(&q->rx_size, q->hello_size, __ATOMIC_RELAXED);
                        __atomic_store_n(&q->rx_verify, !!(q->hello_flags & F_VERIFY),
                                         __ATOMIC_RELAXED);
                        /* Release: the fields above before the flag (main thread). */
                        __atomic_store_n(&q->hello_seen, 1, __ATOMIC_RELEASE);
                } else {
                        q->verify_errors++; /* not an ntbt perf client */
                }
        } else {
                __atomic_store_n(&q->rx_msgs, q->rx_msgs + 1, __ATOMIC_RELAXED);
                __atomic_store_n(&q->rx_bytes, q->rx_bytes + (uint64_t)len, __ATOMIC_RELAXED);
                if (__atomic_load_n(&q->rx_verify, __ATOMIC_RELAXED))
                        verify_msg(q, data, (uint32_t)len);
                /* Big messages: let the other buffers go, down to one
                 * (BIG_MSG); they stay allocated until the run closes. */
                if (len >= BIG_MSG && q->rx_posted > 1) {
                        q->rx_posted--;
                        return;
                }
        }
        ntbt_qp_rx_enqueue(qp, NULL, data, q->buf_len);
}

static void perf_tx_done(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len)
{
        struct perf_qp *q = ctx;

        (void)qp, (void)data;
        if (buf_ctx)
                return; /* the hello */
        if (len < 0)
                __atomic_add_fetch(&q->tx_errors, 1, __ATOMIC_RELAXED);
        /* Release: the pool slot is reused only after the transport let go of it. */
        __atomic_add_fetch(&q->completed, 1, __ATOMIC_RELEASE);
}

/* ---- sender thread ---- */

static void *sender(void *arg)
{
        struct perf_qp *q = arg;
        struct perf_run *r = q->r;
        uint32_t size = r->size;
        unsigned burst = burst_for(size);
        uint64_t n = 0;
        int ret;

        while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
                if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
                        return NULL;
        while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
                struct ntbt_tx_buf v[BURST];
                uint64_t want = n + burst, done;
                unsigned k, i;
                int64_t t0 = 0;

                /* Acquire pairs with perf_tx_done: the slots' old frames are out. */
                while ((done = __atomic_load_n(&q->completed, __ATOMIC_ACQUIRE)) + POOL(burst) <
                       want)
                        if (ntbt_qp_wait_tx(q->qp, 1, 1000000) == -ENOLINK)
                                break;
                for (k = 0; k < burst; k++) {
                        uint8_t *buf = q->pool + ((n + k) % POOL(burst)) * size;

                        produce(buf, size, n + k, r->o->work_ns, r->verify);
                        if (r->corrupt_n && n + k + 1 == r->corrupt_n)
                                buf[size - 1] ^= 0x40; /* after its CRC: the server must notice */
                        v[k] = (struct ntbt_tx_buf){.data = buf, .len = size};
                }
                if ((n & 63) == 0)
                        t0 = now_ns();
                /* One burst: the transport takes its locks once and rings the
                 * doorbell once for all of it; a full ring takes the rest
                 * after a wait. */
                for (i = 0, ret = 0; i < burst && !ret;) {
                        ret = ntbt_qp_tx_enqueue_burst(q->qp, v + i, burst - i, 0);
                        if (ret > 0) {
                                i += (unsigned)ret;
                                ret = 0;
                        } else if (ret == -EAGAIN) {
                                ret = ntbt_qp_wait_tx(q->qp, 1, 5 * 1000000000LL);
                                if (ret == -ETIMEDOUT)
                                        ret = 0;
                        }
                }
                if (ret) {
                        /* The server's senders stop when the client closes; the
                         * main thread tells a close from a lost link by the
                         * reason of the down event, which may come after this. */
                        if (!(r->is_server && ret == -ENOLINK))
                                q->send_err = ret;
                        break;
                }
                if (t0) {
                        /* Per message: the burst's time over its messages. */
                        __atomic_store_n(&q->enq_ns, q->enq_ns + (uint64_t)(now_ns() - t0) / burst,
                                         __ATOMIC_RELAXED);
                        __atomic_store_n(&q->enq_samples, q->enq_samples + 1, __ATOMIC_RELAXED);
                }
                n += burst;
                __atomic_store_n(&q->sent, n, __ATOMIC_RELAXED);
        }
        return NULL;
}

/* ---- opening and closing a run ---- */

static void run_close(struct perf_run *r)
{
        int i;

        __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
        for (i = 0; i < r->nqps; i++) {
                if (r->q[i].has_thread)
                        pthread_join(r->q[i].thread, NULL);
                r->q[i].has_thread = 0;
        }
        for (i = 0; i < r->nqps; i++) {
                if (r->q[i].qp)
                        ntbt_qp_free(r->q[i].qp);
                r->q[i].qp = NULL;
        }
        if (r->t)
                ntbt_transport_close(r->t);
        if (r->dev)
                cli_close_dev(r->dev);
        for (i = 0; i < r->nqps; i++) {
                free(r->q[i].pool);
                free(r->q[i].rxbufs);
        }
        memset(r, 0, sizeof(*r));
}

/* 0, or the exit status after a message: 2 for a bad device string, else 1. */
static int run_open(struct perf_run *r, const char *ctx, const struct perf_opts *o, int server)
{
        struct ntbt_transport_opts to = {.size = sizeof(to),
                                         .transport_mtu = o->mtu,
                                         .max_qps = (uint32_t)o->qps,
                                         .flags = o->flags};
        struct ntbt_qp_handlers h = {.rx = perf_rx, .tx = perf_tx_done, .event = perf_event};
        int i, j, ret;

        memset(r, 0, sizeof(*r));
        r->o = o;
        r->ctx = ctx;
        r->is_server = server;
        ret = cli_open_dev(ctx, o->dev, &r->dev);
        if (ret)
                return cli_dev_status(ret);
        ret = ntbt_transport_open(r->dev, &to, &r->t);
        if (ret) {
                cli_err(ctx, "%s: transport: %s", o->dev, strerror(-ret));
                goto fail;
        }
        if (ntbt_transport_qp_count(r->t) < o->qps) {
                cli_err(ctx, "%s: --qps %d, but this device carries only %d queue pairs", o->dev,
                        o->qps, ntbt_transport_qp_count(r->t));
                goto fail;
        }
        r->nqps = o->qps;
        for (i = 0; i < r->nqps; i++) {
                struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = i, .tx_mode = o->tx_mode};
                struct perf_qp *q = &r->q[i];

                q->r = r;
                q->buf_len = o->mtu ? o->mtu : 65536;
                ret = ntbt_qp_create(r->t, &qo, &h, q, &q->qp);
                if (ret) {
                        cli_err(ctx, "%s: queue pair %d: %s", o->dev, i, strerror(-ret));
                        goto fail;
                }
                q->rxbufs = malloc((size_t)RXBUFS * q->buf_len);
                if (!q->rxbufs)
                        goto fail;
                for (j = 0; j < RXBUFS; j++)
                        ntbt_qp_rx_enqueue(q->qp, NULL, q->rxbufs + (size_t)j * q->buf_len,
                                           q->buf_len);
                q->rx_posted = RXBUFS; /* before the link is up: no frame yet */
                ntbt_qp_link_up(q->qp);
        }
        return 0;
fail:
        run_close(r);
        return 1;
}

static int start_sender(struct perf_run *r, struct perf_qp *q)
{
        q->pool = calloc(POOL(burst_for(r->size)), r->size);
        if (!q->pool || pthread_create(&q->thread, NULL, sender, q)) {
                cli_err(r->ctx, "cannot start a sender thread");
                return -1;
        }
        q->has_thread = 1;
        return 0;
}

/* The transport's error counters of qp, into the run's and (if pq) the QP's. */
static void add_stats(struct perf_result *res, struct perf_qp_result *pq, struct ntbt_qp *qp)
{
        struct ntbt_qp_stats st = {.size = sizeof(st)};

        if (ntbt_qp_stats(qp, &st))
                return;
        res->rx_err_ver += st.rx_err_ver;
        res->rx_err_oflow += st.rx_err_oflow;
        res->rx_err_flags += st.rx_err_flags;
        res->tx_err_rri += st.tx_err_rri;
        res->resets += st.resets;
        if (pq) {
                pq->rx_err_ver = st.rx_err_ver;
                pq->rx_err_oflow = st.rx_err_oflow;
                pq->rx_err_flags = st.rx_err_flags;
                pq->tx_err_rri = st.tx_err_rri;
                pq->resets = st.resets;
        }
}

static uint64_t result_errors(const struct perf_result *res)
{
        return res->tx_errors + res->verify_errors + res->rx_err_ver + res->rx_err_oflow +
               res->rx_err_flags + res->tx_err_rri + res->resets;
}

/* ---- server ---- */

/* One client run: returns 0 and sets *last when the client said it was its
 * last size; 1 on an error. */
static int serve_one(const char *ctx, const struct perf_opts *o, int *last)
{
        struct perf_result res = {0};
        struct perf_run r;
        int64_t t0 = 0, t1;
        double c0 = 0, secs;
        int i, rc, active = 0, started = 0;

        rc = run_open(&r, ctx, o, 1);
        if (rc)
                return rc;
        *last = 1;
        for (;;) {
                int up = 0, down = 0, lost = 0;

                for (i = 0; i < r.nqps; i++) {
                        struct perf_qp *q = &r.q[i];
                        int ups = __atomic_load_n(&q->ups, __ATOMIC_SEQ_CST);
                        int downs = __atomic_load_n(&q->downs, __ATOMIC_SEQ_CST);

                        up += ups > 0;
                        down += ups > 0 && downs > 0;
                        if (downs &&
                            __atomic_load_n(&q->down_reason, __ATOMIC_SEQ_CST) != NTBT_QP_DOWN_PEER)
                                lost = 1;
                        /* Acquire pairs with perf_rx's release of the hello fields. */
                        if (q->hello_taken || !__atomic_load_n(&q->hello_seen, __ATOMIC_ACQUIRE))
                                continue;
                        q->hello_taken = 1;
                        if (!active++) {
                                t0 = now_ns();
                                c0 = cpu_s();
                                /* Every QP of a run carries the same size and flags. */
                                r.size = q->hello_size;
                                r.verify = !!(q->hello_flags & F_VERIFY);
                                *last = !!(q->hello_flags & F_LAST);
                        }
                        if ((q->hello_flags & F_BIDIR) && r.size >= 1 &&
                            r.size <= ntbt_qp_max_payload(q->qp)) {
                                if (start_sender(&r, q)) {
                                        rc = 1;
                                        break;
                                }
                                started = 1;
                                /* Release: the senders read r.size and r.verify after go. */
                                __atomic_store_n(&r.go, 1, __ATOMIC_RELEASE);
                        }
                }
                if (rc || lost || (up && down == up))
                        break;
                nanosleep(&(struct timespec){0, 2 * 1000000}, NULL);
        }
        t1 = now_ns();
        secs = active ? (double)(t1 - t0) / 1e9 : 0;
        __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
        for (i = 0; i < r.nqps; i++) {
                struct perf_qp *q = &r.q[i];

                if (__atomic_load_n(&q->downs, __ATOMIC_SEQ_CST) &&
                    __atomic_load_n(&q->down_reason, __ATOMIC_SEQ_CST) != NTBT_QP_DOWN_PEER) {
                        cli_err(ctx, "%s: queue pair %d: link lost", o->dev, i);
                        rc = 1;
                }
                if (q->has_thread)
                        pthread_join(q->thread, NULL);
                q->has_thread = 0;
                if (q->send_err) {
                        cli_err(ctx, "%s: queue pair %d: send: %s", o->dev, i,
                                strerror(-q->send_err));
                        rc = 1;
                }
                res.msgs += q->sent;
                add_stats(&res, NULL, q->qp);
                /* Frees the QP: the event thread no longer touches its counters. */
                ntbt_qp_free(q->qp);
                q->qp = NULL;
                res.rx_msgs += q->rx_msgs;
                res.rx_bytes += q->rx_bytes;
                res.verify_errors += q->verify_errors;
        }
        /* tx_errors stays 0: with --bidir the client's close cuts off frames
         * still queued here, and that is how a run ends, not an error. */
        if (result_errors(&res))
                rc = 1;
        if (o->verbose || !o->loopback || rc)
                fprintf(o->loopback ? stderr : stdout,
                        "ntbt: %s: %u-byte messages on %d queue pair%s: received %llu messages, "
                        "%llu bytes in %.2f s (%.3f GB/s)%s, CPU %.0f%%, errors %llu%s\n",
                        ctx, r.size, r.nqps, r.nqps == 1 ? "" : "s",
                        (unsigned long long)res.rx_msgs, (unsigned long long)res.rx_bytes, secs,
                        secs > 0 ? (double)res.rx_bytes / secs / 1e9 : 0.0,
                        started ? ", sent back too" : "",
                        secs > 0 ? (cpu_s() - c0) / secs * 100 : 0.0,
                        (unsigned long long)result_errors(&res),
                        r.verify ? (res.verify_errors ? ", VERIFY FAILED" : ", verified") : "");
        if (res.verify_errors)
                cli_err(ctx, "verify: %llu damaged, missing or repeated messages",
                        (unsigned long long)res.verify_errors);
        fflush(NULL);
        run_close(&r);
        return rc;
}

static int run_server(const char *ctx, const struct perf_opts *o)
{
        int last = 0, rc = 0;

        while (!rc && !last)
                rc = serve_one(ctx, o, &last);
        return rc;
}

/* ---- client ---- */

/* On stdout, or on stderr when stdout carries JSON. */
static void interval_line(FILE *f, double from, double to, uint64_t bytes, uint64_t msgs,
                          uint64_t rx_bytes, int bidir)
{
        double d = to - from;

        fprintf(f, "[%6.1f-%6.1f s] %10.3f GB  %8.3f GB/s  %8.3f Gbit/s  %8.3f M msg/s", from, to,
                (double)bytes / 1e9, (double)bytes / d / 1e9, (double)bytes * 8 / d / 1e9,
                (double)msgs / d / 1e6);
        if (bidir)
                fprintf(f, "  back %8.3f GB/s", (double)rx_bytes / d / 1e9);
        fprintf(f, "\n");
        fflush(f);
}

/*
 * The table's title (once), and with interval lines the size about to run:
 * printed once the client has its device, so that a bad device string is
 * one line on stderr and nothing on stdout.
 */
static void print_header(const struct perf_opts *o);

static void print_banner(const struct perf_opts *o, uint32_t size)
{
        static int done;

        if (o->json)
                return;
        if (!done) {
                printf("ntbt perf: %s, %d queue pair%s%s, %s copy, %.1f s per size%s%s\n",
                       o->user_dev, o->qps, o->qps == 1 ? "" : "s", o->bidir ? " both ways" : "",
                       cli_tx_mode_name(o->tx_mode), o->seconds, o->verify ? ", verified" : "",
                       o->loopback ? ", loopback" : "");
                if (!o->interval)
                        print_header(o);
                done = 1;
        }
        if (o->interval) {
                if (size)
                        printf("-- %u-byte messages\n", size);
                else
                        printf("-- messages of the max payload\n");
        }
        fflush(stdout);
}

static int run_client(const char *ctx, const struct perf_opts *o, uint32_t want_size, int last,
                      struct perf_result *res)
{
        struct perf_run r;
        uint64_t prev_msgs = 0, prev_rx = 0;
        int64_t t0, t_end, t_done, t_next;
        double c0, iv = o->interval;
        int i, rc = 0;

        memset(res, 0, sizeof(*res));
        res->size = want_size;
        res->failed = 1;
        res->cpu_server = -1;
        rc = run_open(&r, ctx, o, 0);
        if (rc)
                return rc;
        print_banner(o, want_size);
        r.verify = o->verify;
        r.corrupt_n = o->debug_corrupt;
        for (i = 0; i < r.nqps; i++) {
                double wait_s = o->timeout > 0 ? o->timeout : 30;
                int64_t deadline = now_ns() + (int64_t)(wait_s * 1e9);
                int mismatched = 0;
                char why[256];

                int said = 0;

                while (ntbt_qp_wait_link(r.q[i].qp, 100 * 1000000LL)) {
                        if (!said && now_ns() > deadline - (int64_t)((wait_s - 1) * 1e9)) {
                                fprintf(stderr,
                                        "ntbt: %s: waiting for the server on %s, queue pair %d\n",
                                        ctx, o->dev, i);
                                said = 1;
                        }
                        /* A handshake that keeps failing will not heal by waiting. */
                        mismatched =
                            ntbt_transport_mismatch(r.t, why, sizeof(why)) ? mismatched + 1 : 0;
                        if (mismatched >= 20) {
                                cli_err(ctx, "%s: the server's transport does not match: %s",
                                        o->dev, why);
                                rc = 1;
                                goto out;
                        }
                        if (now_ns() > deadline) {
                                cli_err(ctx,
                                        "%s: queue pair %d: no peer within %g s (is 'ntbt perf "
                                        "--server' running on it, with the same --qps and --mtu? "
                                        "--timeout)",
                                        o->dev, i, wait_s);
                                rc = 1;
                                goto out;
                        }
                }
        }
        r.size = want_size ? want_size : ntbt_qp_max_payload(r.q[0].qp);
        res->size = r.size;
        res->tx_mode = ntbt_qp_tx_mode(r.q[0].qp);
        if (r.size > ntbt_qp_max_payload(r.q[0].qp) || ntbt_qp_max_payload(r.q[0].qp) < 16) {
                cli_err(ctx, "--size %u is larger than the max payload %u", r.size,
                        ntbt_qp_max_payload(r.q[0].qp));
                rc = 2;
                goto out;
        }
        for (i = 0; i < r.nqps; i++) {
                struct perf_qp *q = &r.q[i];
                int ret;

                /* What the server sends back under --bidir. */
                __atomic_store_n(&q->rx_size, r.size, __ATOMIC_RELAXED);
                __atomic_store_n(&q->rx_verify, o->verify, __ATOMIC_RELAXED);
                put32(q->hello, HELLO_MAG);
                put32(q->hello + 4,
                      (o->verify ? F_VERIFY : 0) | (o->bidir ? F_BIDIR : 0) | (last ? F_LAST : 0));
                put32(q->hello + 8, r.size);
                put32(q->hello + 12, (uint32_t)r.nqps);
                while ((ret = ntbt_qp_tx_enqueue(q->qp, (void *)1, q->hello, HELLO_LEN, 0)) ==
                       -EAGAIN)
                        ntbt_qp_wait_tx(q->qp, 1, 1000000000LL);
                if (ret || start_sender(&r, q)) {
                        cli_err(ctx, "%s: queue pair %d: %s", o->dev, i,
                                ret ? strerror(-ret) : "no sender");
                        rc = 1;
                        goto out;
                }
        }
        c0 = cpu_s();
        t0 = now_ns();
        t_end = t0 + (int64_t)(o->seconds * 1e9);
        t_next = iv > 0 ? t0 + (int64_t)(iv * 1e9) : t_end;
        /* Release: the senders read the run's size and flags after seeing go. */
        __atomic_store_n(&r.go, 1, __ATOMIC_RELEASE);
        for (;;) {
                int64_t now = now_ns(), until = t_next < t_end ? t_next : t_end;

                if (now < until) {
                        int64_t d = until - now;

                        nanosleep(&(struct timespec){d / 1000000000, d % 1000000000}, NULL);
                        continue;
                }
                if (iv > 0) {
                        uint64_t msgs = 0, rx = 0;

                        for (i = 0; i < r.nqps; i++) {
                                msgs += __atomic_load_n(&r.q[i].sent, __ATOMIC_RELAXED);
                                rx += __atomic_load_n(&r.q[i].rx_bytes, __ATOMIC_RELAXED);
                        }
                        interval_line(o->json ? stderr : stdout,
                                      (double)(t_next - t0 - (int64_t)(iv * 1e9)) / 1e9,
                                      (double)(now - t0) / 1e9, (msgs - prev_msgs) * r.size,
                                      msgs - prev_msgs, rx - prev_rx, o->bidir);
                        prev_msgs = msgs;
                        prev_rx = rx;
                        t_next += (int64_t)(iv * 1e9);
                }
                if (now >= t_end)
                        break;
        }
        __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
        for (i = 0; i < r.nqps; i++) {
                struct perf_qp *q = &r.q[i];

                pthread_join(q->thread, NULL);
                q->has_thread = 0;
        }
        /* Done when the server has taken every message: all slots free again. */
        for (i = 0; i < r.nqps; i++) {
                struct perf_qp *q = &r.q[i];

                if (q->send_err) {
                        cli_err(ctx, "%s: queue pair %d: send: %s after %llu messages", o->dev, i,
                                strerror(-q->send_err), (unsigned long long)q->sent);
                        rc = 1;
                } else if (ntbt_qp_wait_tx(q->qp, ntbt_qp_tx_entries(q->qp) - 1,
                                           30 * 1000000000LL)) {
                        cli_err(ctx, "%s: queue pair %d: the server did not take every message",
                                o->dev, i);
                        rc = 1;
                }
        }
        t_done = now_ns();
        res->seconds = (double)(t_done - t0) / 1e9;
        res->cpu_client = (cpu_s() - c0) / res->seconds * 100;
        res->nqps = r.nqps;
        for (i = 0; i < r.nqps; i++) {
                struct perf_qp *q = &r.q[i];
                struct perf_qp_result *pq = &res->qp[i];

                pq->msgs = q->sent;
                pq->enq_ns_sum = q->enq_ns;
                pq->enq_samples = q->enq_samples;
                pq->rx_msgs = __atomic_load_n(&q->rx_msgs, __ATOMIC_RELAXED);
                pq->rx_bytes = __atomic_load_n(&q->rx_bytes, __ATOMIC_RELAXED);
                pq->tx_errors = __atomic_load_n(&q->tx_errors, __ATOMIC_RELAXED);
                res->msgs += pq->msgs;
                res->enq_ns_sum += pq->enq_ns_sum;
                res->enq_samples += pq->enq_samples;
                res->rx_msgs += pq->rx_msgs;
                res->rx_bytes += pq->rx_bytes;
                res->tx_errors += pq->tx_errors;
                add_stats(res, pq, q->qp);
        }
        for (i = 0; i < r.nqps; i++)
                ntbt_qp_link_down(r.q[i].qp); /* the server's run ends on this */
out:
        fflush(stdout);
        {
                uint64_t ve = 0;

                /* Stop the event thread before reading what it wrote. */
                for (i = 0; i < r.nqps; i++)
                        if (r.q[i].qp) {
                                ntbt_qp_free(r.q[i].qp);
                                r.q[i].qp = NULL;
                        }
                for (i = 0; i < r.nqps; i++) {
                        ve += r.q[i].verify_errors;
                        res->qp[i].verify_errors = r.q[i].verify_errors;
                }
                res->verify_errors += ve;
        }
        run_close(&r);
        if (!rc && result_errors(res))
                rc = 1;
        res->failed = rc != 0;
        return rc;
}

/* ---- the table ---- */

static void print_header(const struct perf_opts *o)
{
        printf("%9s %11s %9s %9s %9s %8s %7s %7s %7s%s\n", "size", "msgs", "GB/s", "Gbit/s",
               "M msg/s", "enq ns", "cpu tx", "cpu rx", "errors", o->bidir ? "  back GB/s" : "");
}

static void print_row(const struct perf_opts *o, const struct perf_result *res)
{
        double bps = res->seconds > 0 ? (double)res->msgs * res->size / res->seconds : 0;
        char srv[16];

        if (res->cpu_server >= 0)
                snprintf(srv, sizeof(srv), "%6.0f%%", res->cpu_server);
        else
                snprintf(srv, sizeof(srv), "%7s", "-");
        printf("%9u %11llu %9.3f %9.3f %9.3f %8.0f %6.0f%% %7s %7llu", res->size,
               (unsigned long long)res->msgs, bps / 1e9, bps * 8 / 1e9,
               res->seconds > 0 ? (double)res->msgs / res->seconds / 1e6 : 0.0,
               res->enq_samples ? (double)res->enq_ns_sum / (double)res->enq_samples : 0.0,
               res->cpu_client, srv, (unsigned long long)result_errors(res));
        if (o->bidir)
                printf("  %9.3f",
                       res->seconds > 0 ? (double)res->rx_bytes / res->seconds / 1e9 : 0);
        printf("%s\n", res->failed ? "  FAILED" : "");
}

/* The fields of one size's result, without the braces. */
static void print_json_fields(const struct perf_opts *o, const struct perf_result *res)
{
        double s = res->seconds > 0 ? res->seconds : 1;
        double bps = (double)res->msgs * res->size / s;

        printf("\"size\":%u,\"qps\":%d,\"bidir\":%s,\"tx_mode\":\"%s\",\"msgs\":%llu,"
               "\"bytes\":%llu,\"seconds\":%.6f,\"bytes_per_sec\":%.0f,\"gbit_per_sec\":%.4f,"
               "\"msgs_per_sec\":%.0f,\"enqueue_ns_avg\":%.1f,\"cpu_client_pct\":%.1f,"
               "\"cpu_server_pct\":%.1f,\"rx_msgs\":%llu,\"rx_bytes_per_sec\":%.0f,"
               "\"work_ns_per_kib\":%llu,\"errors\":%llu,\"tx_errors\":%llu,"
               "\"verify_errors\":%llu,\"rx_err_ver\":%llu,\"rx_err_oflow\":%llu,"
               "\"rx_err_flags\":%llu,\"tx_err_rri\":%llu,\"resets\":%llu,\"failed\":%s",
               res->size, o->qps, o->bidir ? "true" : "false", cli_tx_mode_name(res->tx_mode),
               (unsigned long long)res->msgs, (unsigned long long)(res->msgs * res->size),
               res->seconds, bps, bps * 8 / 1e9, (double)res->msgs / s,
               res->enq_samples ? (double)res->enq_ns_sum / (double)res->enq_samples : 0.0,
               res->cpu_client, res->cpu_server, (unsigned long long)res->rx_msgs,
               (double)res->rx_bytes / s, (unsigned long long)o->work_ns,
               (unsigned long long)result_errors(res), (unsigned long long)res->tx_errors,
               (unsigned long long)res->verify_errors, (unsigned long long)res->rx_err_ver,
               (unsigned long long)res->rx_err_oflow, (unsigned long long)res->rx_err_flags,
               (unsigned long long)res->tx_err_rri, (unsigned long long)res->resets,
               res->failed ? "true" : "false");
}

/* --json-lines: one object per size, as each size ends. */
static void print_json_line(const struct perf_opts *o, const struct perf_result *res)
{
        printf("{");
        print_json_fields(o, res);
        printf("}\n");
        fflush(stdout);
}

/* JSON string contents: quotes, backslashes and control characters escaped. */
static void print_json_str(const char *v)
{
        for (; *v; v++) {
                unsigned char ch = (unsigned char)*v;

                if (ch == '"' || ch == '\\')
                        printf("\\%c", ch);
                else if (ch < 0x20)
                        printf("\\u%04x", ch);
                else
                        putchar(ch);
        }
}

/*
 * --json: one document (iperf3's -J): the run's parameters, then the
 * results, one per size, each with a per-queue-pair breakdown under --qps > 1.
 */
static void print_json_doc(const struct perf_opts *o, const struct perf_result *res, int n, int rc)
{
        int i, k;

        printf("{\"version\":\"%s\",\"command\":\"perf\",\"dev\":\"", NTBT_VERSION);
        print_json_str(o->user_dev);
        printf("\",\"role\":\"%s\",\"qps\":%d,\"bidir\":%s,\"tx_mode\":\"%s\","
               "\"verify\":%s,\"seconds_per_size\":%.3f,\"mtu\":%u,\"work_ns_per_kib\":%llu,"
               "\"sizes\":[",
               o->loopback ? "loopback" : "client", o->qps, o->bidir ? "true" : "false",
               cli_tx_mode_name(o->tx_mode), o->verify ? "true" : "false", o->seconds,
               o->mtu ? o->mtu : 65536, (unsigned long long)o->work_ns);
        for (i = 0; i < o->nsizes; i++) {
                if (o->sizes[i])
                        printf("%s%u", i ? "," : "", o->sizes[i]);
                else
                        printf("%s\"max\"", i ? "," : "");
        }
        printf("],\"results\":[");
        for (i = 0; i < n; i++) {
                printf("%s{", i ? "," : "");
                print_json_fields(o, &res[i]);
                if (o->qps > 1) {
                        printf(",\"per_qp\":[");
                        for (k = 0; k < res[i].nqps; k++) {
                                const struct perf_qp_result *q = &res[i].qp[k];
                                double s = res[i].seconds > 0 ? res[i].seconds : 1;

                                printf(
                                    "%s{\"qp\":%d,\"msgs\":%llu,\"bytes\":%llu,"
                                    "\"bytes_per_sec\":%.0f,\"msgs_per_sec\":%.0f,"
                                    "\"enqueue_ns_avg\":%.1f,\"rx_msgs\":%llu,\"rx_bytes\":%llu,"
                                    "\"rx_bytes_per_sec\":%.0f,\"tx_errors\":%llu,"
                                    "\"verify_errors\":%llu,\"rx_err_ver\":%llu,"
                                    "\"rx_err_oflow\":%llu,\"rx_err_flags\":%llu,"
                                    "\"tx_err_rri\":%llu,\"resets\":%llu}",
                                    k ? "," : "", k, (unsigned long long)q->msgs,
                                    (unsigned long long)(q->msgs * res[i].size),
                                    (double)q->msgs * res[i].size / s, (double)q->msgs / s,
                                    q->enq_samples ? (double)q->enq_ns_sum / (double)q->enq_samples
                                                   : 0.0,
                                    (unsigned long long)q->rx_msgs, (unsigned long long)q->rx_bytes,
                                    (double)q->rx_bytes / s, (unsigned long long)q->tx_errors,
                                    (unsigned long long)q->verify_errors,
                                    (unsigned long long)q->rx_err_ver,
                                    (unsigned long long)q->rx_err_oflow,
                                    (unsigned long long)q->rx_err_flags,
                                    (unsigned long long)q->tx_err_rri,
                                    (unsigned long long)q->resets);
                        }
                        printf("]");
                }
                printf("}");
        }
        printf("],\"failed\":%s}\n", rc ? "true" : "false");
        fflush(stdout);
}

/* ---- loopback ---- */

struct loop_arg {
        struct perf_opts *o;
        uint32_t size;
        struct perf_result res;
        int rc, ran;
};

static int role_server(const char *ctx, const char *spec, void *arg)
{
        struct perf_opts o = *((struct loop_arg *)arg)->o;

        o.dev = spec;
        return run_server(ctx, &o);
}

static int role_client(const char *ctx, const char *spec, void *arg)
{
        struct loop_arg *a = arg;
        struct perf_opts o = *a->o;

        o.dev = spec;
        a->ran = 1;
        a->rc = run_client(ctx, &o, a->size, 1, &a->res);
        return a->rc;
}

/* One size of --size: 1-1G. */
static int parse_one_size(const char *ctx, const char *tok, uint64_t *out)
{
        if (util_parse_size(tok, out)) {
                cli_err(ctx, "--size: '%s' is not a number (1-1G, or max)", tok);
                return -1;
        }
        if (*out < 1 || *out > (1u << 30)) {
                cli_err(ctx, "--size %s is out of range (1-1G, or max)", tok);
                return -1;
        }
        return 0;
}

/* --size: N, N,M,..., LO:HI (powers of two between, and both ends), 'max' = 0. */
static int parse_sizes(const char *ctx, const char *arg, struct perf_opts *o)
{
        char buf[512], *tok, *save = NULL, *colon;
        uint64_t lo, hi, p;

        snprintf(buf, sizeof(buf), "%s", arg);
        o->nsizes = 0;
        colon = strchr(buf, ':');
        if (colon) {
                *colon = '\0';
                if (parse_one_size(ctx, buf, &lo) || parse_one_size(ctx, colon + 1, &hi))
                        return -1;
                if (hi < lo) {
                        cli_err(ctx, "--size %s is not a range (LO:HI with LO at most HI)", arg);
                        return -1;
                }
                o->sizes[o->nsizes++] = (uint32_t)lo;
                for (p = 1; p <= hi && o->nsizes < MAX_SIZES - 1; p <<= 1)
                        if (p > lo && p < hi)
                                o->sizes[o->nsizes++] = (uint32_t)p;
                if (hi > lo)
                        o->sizes[o->nsizes++] = (uint32_t)hi;
                return 0;
        }
        for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (o->nsizes == MAX_SIZES) {
                        cli_err(ctx, "--size: at most %d sizes", MAX_SIZES);
                        return -1;
                }
                if (!strcmp(tok, "max")) {
                        o->sizes[o->nsizes++] = 0;
                        continue;
                }
                if (parse_one_size(ctx, tok, &p))
                        return -1;
                o->sizes[o->nsizes++] = (uint32_t)p;
        }
        if (!o->nsizes) {
                cli_err(ctx, "--size: '%s' names no size (1-1G, or max)", arg);
                return -1;
        }
        return 0;
}

/* The default sweep: 64, 128, ... below the max payload, then the max. */
static void default_sizes(struct perf_opts *o)
{
        uint32_t max = (o->mtu ? o->mtu : 65536) - 12, p;

        o->nsizes = 0;
        for (p = 64; p < max && o->nsizes < MAX_SIZES - 1; p <<= 1)
                o->sizes[o->nsizes++] = p;
        o->sizes[o->nsizes++] = 0;
}

int cmd_perf(int argc, char **argv)
{
        static const struct option opts[] = {
            {"dev", required_argument, NULL, 'd'},
            {"server", no_argument, NULL, 'S'},
            {"client", no_argument, NULL, 'C'},
            {"loopback", no_argument, NULL, 'L'},
            {"size", required_argument, NULL, 's'},
            {"time", required_argument, NULL, 't'},
            {"tx", required_argument, NULL, 'x'},
            {"work", required_argument, NULL, 'w'},
            {"qps", required_argument, NULL, 'P'},
            {"bidir", no_argument, NULL, 'B'},
            {"mtu", required_argument, NULL, 'm'},
            {"interval", required_argument, NULL, 'i'},
            {"timeout", required_argument, NULL, 'T'},
            {"json", no_argument, NULL, 'j'},
            {"json-lines", no_argument, NULL, 'J'},
            {"unsafe-no-flush", no_argument, NULL, 'U'},
            {"verify", no_argument, NULL, 'V'},
            {"debug-corrupt", required_argument, NULL, 'D'},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {0, 0, 0, 0},
        };
        struct perf_opts o = {.seconds = 1.0, .qps = 1, .interval = -1};
        const char *ctx = "perf";
        int c, i, rc = 0, json_doc = 0, json_lines = 0;
        char opt[32];
        uint64_t v;

        while ((c = getopt_long(argc, argv, "d:s:t:P:m:i:jvh", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        o.dev = optarg;
                        break;
                case 'S':
                        o.server = 1;
                        break;
                case 'C':
                        o.client = 1;
                        break;
                case 'L':
                        o.loopback = 1;
                        break;
                case 'j':
                        json_doc = 1;
                        break;
                case 'J':
                        json_lines = 1;
                        break;
                case 'B':
                        o.bidir = 1;
                        break;
                case 'U':
                        o.flags |= NTBT_TRANSPORT_UNSAFE_NO_FLUSH;
                        break;
                case 'V':
                        o.verify = 1;
                        break;
                case 'D':
                        if (cli_uint(ctx, "--debug-corrupt", optarg, 1, UINT64_MAX,
                                     &o.debug_corrupt))
                                return 2;
                        break;
                case 'v':
                        o.verbose++;
                        break;
                case 'x':
                        o.tx_mode = cli_tx_mode(ctx, optarg);
                        if (o.tx_mode < 0)
                                return 2;
                        break;
                case 't':
                        if (cli_seconds(ctx, "--time", optarg, 0, 1, 3600, &o.seconds))
                                return 2;
                        break;
                case 'i':
                        if (cli_seconds(ctx, "--interval", optarg, 0, 0, 3600, &o.interval))
                                return 2;
                        break;
                case 'T':
                        if (cli_seconds(ctx, "--timeout", optarg, 0, 1, 86400, &o.timeout))
                                return 2;
                        break;
                case 's':
                        if (parse_sizes(ctx, optarg, &o))
                                return 2;
                        break;
                case 'w':
                case 'P':
                case 'm':
                        cli_optname(opts, c, opt, sizeof(opt));
                        if (c == 'P'   ? cli_uint(ctx, opt, optarg, 1, MAX_QPS, &v)
                            : c == 'm' ? cli_uint(ctx, opt, optarg, 32, 1u << 30, &v)
                                       : cli_uint(ctx, opt, optarg, 0, 1000000000, &v))
                                return 2;
                        if (c == 'w')
                                o.work_ns = v;
                        else if (c == 'P')
                                o.qps = (int)v;
                        else
                                o.mtu = (uint32_t)v;
                        break;
                case 'h':
                        fputs(perf_usage, stdout);
                        return 0;
                default:
                        fputs(perf_usage, stderr);
                        return 2;
                }
        }
        if (json_doc && json_lines) {
                cli_err(ctx, "choose one of --json (one document) and --json-lines");
                return 2;
        }
        o.json = json_doc ? 1 : json_lines ? 2 : 0;
        o.user_dev = o.dev;
        if (cli_two_sided_opts(ctx, argc, argv, optind, o.dev, o.server + o.client + o.loopback,
                               o.verbose, o.flags))
                return 2;
        if (o.server)
                return run_server("perf server", &o);
        if (!o.nsizes)
                default_sizes(&o);
        /* Every size is checked before the first run: a frame of --mtu bytes
         * (default 65536) carries at most mtu - 12 (the header).  A smaller
         * window can lower it further; run_client says so at link-up. */
        for (i = 0; i < o.nsizes; i++) {
                uint32_t max = (o.mtu ? o.mtu : 65536) - 12;

                if (o.sizes[i] > max) {
                        cli_err(ctx,
                                "--size %u is larger than the largest payload, %u (the frame "
                                "of --mtu %u less its 12-byte header); say 'max' for it",
                                o.sizes[i], max, o.mtu ? o.mtu : 65536);
                        return 2;
                }
        }
        if (o.interval < 0)
                o.interval = !o.json && isatty(STDOUT_FILENO) ? 1.0 : 0.0;
        {
                struct perf_result *res = calloc((size_t)o.nsizes, sizeof(*res));
                int n = 0;

                if (!res)
                        return 1;
                for (i = 0; i < o.nsizes && rc != 2; i++) {
                        int r;

                        if (o.loopback) {
                                struct loop_arg a = {.o = &o, .size = o.sizes[i]};
                                struct rusage ru = {0};

                                r = cli_run_loopback(ctx, o.dev, role_server, role_client, &a, &ru);
                                if (!a.ran) { /* no run: a bad device string, or no device */
                                        rc = r;
                                        break;
                                }
                                res[i] = a.res;
                                if (a.res.seconds > 0)
                                        res[i].cpu_server = ru_seconds(&ru) / a.res.seconds * 100;
                                if (r && !a.rc)
                                        res[i].failed = 1; /* the server failed */
                                if (a.rc == 2)
                                        r = 2;
                        } else {
                                r = run_client(ctx, &o, o.sizes[i], i == o.nsizes - 1, &res[i]);
                        }
                        if (r == 2) { /* a usage error, said: no result */
                                rc = r;
                                break;
                        }
                        n = i + 1;
                        if (o.json == 2)
                                print_json_line(&o, &res[i]);
                        else if (!o.json && !o.interval && res[i].seconds > 0)
                                print_row(&o, &res[i]);
                        if (r)
                                rc = r;
                }
                if (o.json == 1 && n)
                        print_json_doc(&o, res, n, rc);
                if (!o.json && o.interval) {
                        print_header(&o);
                        for (i = 0; i < o.nsizes; i++)
                                if (res[i].seconds > 0)
                                        print_row(&o, &res[i]);
                }
                free(res);
        }
        return rc;
}
