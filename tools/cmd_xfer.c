/* SPDX-License-Identifier: MIT */
/* ntbt send / ntbt recv: stdin to a queue pair, a queue pair to stdout. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "cli.h"

static const char send_usage[] =
    "usage: ntbt send --dev DEV [--qp N] [--mtu BYTES] [--max-qps N] [--tx inline|thread]\n"
    "                 [-v]\n"
    "\n"
    "Read standard input and send it over queue pair N (default 0), each read in a\n"
    "frame of at most the QP's max payload (input that pauses is sent at once);\n"
    "wait until the peer has consumed every frame, close the QP (a LINK_DOWN\n"
    "frame) and exit 0.  Exits 1 if the link is lost first.\n"
    "The device is created with default geometry if it does not exist; the first\n"
    "free port is claimed unless DEV says port=N.  --mtu is transport_mtu (default\n"
    "65536) and --max-qps the kernel's max_num_clients (default 0): both sides must\n"
    "agree, and the defaults are the kernel's.  --tx thread copies into the window on\n"
    "a per-QP copy thread (the kernel's tx_memcpy_offload); the default is inline.\n";

static const char recv_usage[] =
    "usage: ntbt recv --dev DEV [--qp N] [--mtu BYTES] [--max-qps N] [-v]\n"
    "\n"
    "Receive from queue pair N (default 0) and write every payload to standard\n"
    "output, in order; exit 0 when the peer closes the QP, 1 if the device link is\n"
    "lost or the peer breaks the protocol.  Device creation, ports and options as\n"
    "for ntbt send.\n";

struct xfer_opts {
        const char *dev;
        int qp, verbose, tx_mode;
        uint32_t mtu, max_qps;
};

static int parse_xfer(const char *ctx, const char *usage, int argc, char **argv,
                      struct xfer_opts *x)
{
        static const struct option opts[] = {
            {"dev", required_argument, NULL, 'd'}, {"qp", required_argument, NULL, 'q'},
            {"mtu", required_argument, NULL, 'm'}, {"max-qps", required_argument, NULL, 'Q'},
            {"verbose", no_argument, NULL, 'v'},   {"tx", required_argument, NULL, 't'},
            {"help", no_argument, NULL, 'h'},      {0, 0, 0, 0},
        };
        uint64_t v;
        int c;

        memset(x, 0, sizeof(*x));
        while ((c = getopt_long(argc, argv, "d:q:m:vh", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        x->dev = optarg;
                        break;
                case 'q':
                case 'm':
                case 'Q':
                        if (cli_size(ctx, argv[optind - 1], optarg, &v))
                                return 2;
                        if ((c == 'q' && v >= 32) || (c == 'm' && (v < 16 || v > (1u << 30))) ||
                            (c == 'Q' && v > 32)) {
                                cli_err(ctx, "%s %s is out of range", argv[optind - 1], optarg);
                                return 2;
                        }
                        if (c == 'q')
                                x->qp = (int)v;
                        else if (c == 'm')
                                x->mtu = (uint32_t)v;
                        else
                                x->max_qps = (uint32_t)v;
                        break;
                case 'v':
                        x->verbose++;
                        break;
                case 't':
                        x->tx_mode = cli_tx_mode(ctx, optarg);
                        if (x->tx_mode < 0)
                                return 2;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                default:
                        fputs(usage, stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                cli_err(ctx, "unexpected argument '%s'", argv[optind]);
                return 2;
        }
        if (!x->dev) {
                cli_err(ctx, "--dev DEV is required (e.g. --dev shm:demo)");
                return 2;
        }
        return -1;
}

/* Wait for the QP link, saying once what we wait for (and why, if we know). */
static int wait_for_peer(const char *ctx, const struct xfer_opts *x, struct cli_endpoint *e)
{
        int said = 0, said_mismatch = 0;
        char why[256];

        while (ntbt_qp_wait_link(e->qp, 1000000000LL) == -ETIMEDOUT) {
                if (!said) {
                        fprintf(stderr, "ntbt: %s: waiting for the peer on %s, queue pair %d\n",
                                ctx, x->dev, x->qp);
                        said = 1;
                }
                if (!said_mismatch && ntbt_transport_mismatch(e->t, why, sizeof(why))) {
                        fprintf(stderr, "ntbt: %s: %s\n", ctx, why);
                        said_mismatch = 1;
                }
        }
        return 0;
}

/* Buffers given to the transport come back through the tx handler; in
 * thread mode that is later, on the copy thread, so send keeps a pool. */
#define SEND_POOL 64

struct send_state {
        uint64_t completed; /* atomic: completions seen, in order */
        int error;          /* atomic: a negative completion */
};

static void send_tx_done(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len)
{
        struct send_state *s = ctx;

        (void)qp, (void)buf_ctx, (void)data;
        if (len < 0)
                __atomic_store_n(&s->error, len, __ATOMIC_SEQ_CST);
        /* Release: the buffer's reuse happens after the transport let go of it. */
        __atomic_add_fetch(&s->completed, 1, __ATOMIC_RELEASE);
}

int cmd_send(int argc, char **argv)
{
        const char *ctx = "send";
        struct send_state st = {0};
        struct ntbt_qp_handlers h = {.tx = send_tx_done};
        struct xfer_opts x;
        struct cli_endpoint e;
        uint64_t total = 0, frames = 0;
        uint32_t payload;
        uint8_t *pool;
        int ret, entries, rc = 0;

        ret = parse_xfer(ctx, send_usage, argc, argv, &x);
        if (ret >= 0)
                return ret;
        cli_install_log(x.verbose);
        if (cli_endpoint_open(ctx, x.dev, x.qp, x.mtu, x.max_qps, 0, 1, x.tx_mode, &h, &st, &e))
                return 1;
        wait_for_peer(ctx, &x, &e);
        payload = ntbt_qp_max_payload(e.qp);
        pool = malloc((size_t)SEND_POOL * payload);
        if (!pool) {
                cli_endpoint_close(&e);
                return 1;
        }
        for (;;) {
                uint8_t *buf = pool + (frames % SEND_POOL) * payload;
                uint32_t len = 0;
                ssize_t n;

                /* The pool slot is free once its previous frame completed. */
                while (frames >= SEND_POOL &&
                       __atomic_load_n(&st.completed, __ATOMIC_ACQUIRE) <= frames - SEND_POOL)
                        ntbt_qp_wait_tx(e.qp, 1, 1000000);
                /* Send what each read returns (at most one frame), so input
                 * that pauses is not held back waiting for a full frame. */
                n = read(0, buf, payload);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        cli_err(ctx, "stdin: %s", strerror(errno));
                        rc = 1;
                        break;
                }
                if (n == 0)
                        break;
                len = (uint32_t)n;
                while ((ret = ntbt_qp_tx_enqueue(e.qp, NULL, buf, len, 0)) == -EAGAIN)
                        ret = ntbt_qp_wait_tx(e.qp, 1, -1);
                if (ret) {
                        cli_err(ctx, "%s: link lost after %llu bytes: %s", x.dev,
                                (unsigned long long)total, strerror(-ret));
                        rc = 1;
                        break;
                }
                total += len;
                frames++;
        }
        /* Every frame consumed by the peer before we close. */
        entries = ntbt_qp_tx_entries(e.qp);
        if (!rc && ntbt_qp_wait_tx(e.qp, entries - 1, -1)) {
                cli_err(ctx, "%s: link lost before the peer took every frame", x.dev);
                rc = 1;
        }
        if (!rc && __atomic_load_n(&st.error, __ATOMIC_SEQ_CST)) {
                cli_err(ctx, "%s: a frame was not sent: %s", x.dev,
                        strerror(-__atomic_load_n(&st.error, __ATOMIC_SEQ_CST)));
                rc = 1;
        }
        if (!rc)
                ntbt_qp_link_down(e.qp); /* the LINK_DOWN frame */
        if (x.verbose)
                fprintf(stderr, "ntbt: send: %llu bytes in %llu frames (%s copy)\n",
                        (unsigned long long)total, (unsigned long long)frames,
                        cli_tx_mode_name(ntbt_qp_tx_mode(e.qp)));
        cli_endpoint_close(&e);
        free(pool);
        return rc;
}

struct recv_state {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int done; /* 1 peer closed, -1 error */
        int reason;
        int ever_up;
        int write_err;
        uint32_t buf_len;
        uint64_t bytes;
};

static void recv_finish(struct recv_state *s, int done, int reason)
{
        pthread_mutex_lock(&s->lock);
        if (!s->done) {
                s->done = done;
                s->reason = reason;
        }
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

static void recv_rx(struct ntbt_qp *qp, void *qp_ctx, void *buf_ctx, void *data, int len)
{
        struct recv_state *s = qp_ctx;
        uint8_t *p = data;
        int left = len;

        (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        if (len < 0) {
                /* Counted in rx_err_oflow; the data cannot be delivered whole. */
                fprintf(stderr, "ntbt: recv: frame larger than the buffer (%s)\n", strerror(-len));
                recv_finish(s, -1, NTBT_QP_DOWN_PROTOCOL);
                return;
        }
        while (left > 0 && !s->write_err) {
                ssize_t n = write(1, p, (size_t)left);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        s->write_err = errno ? errno : EIO;
                        recv_finish(s, -1, 0);
                        break;
                }
                p += n;
                left -= (int)n;
        }
        __atomic_add_fetch(&s->bytes, (uint64_t)len, __ATOMIC_RELAXED);
        ntbt_qp_rx_enqueue(qp, NULL, data, s->buf_len);
}

static void recv_event(struct ntbt_qp *qp, void *qp_ctx, int up, int reason)
{
        struct recv_state *s = qp_ctx;

        (void)qp;
        if (up) {
                pthread_mutex_lock(&s->lock);
                s->ever_up = 1;
                pthread_mutex_unlock(&s->lock);
        } else {
                recv_finish(s, reason == NTBT_QP_DOWN_PEER ? 1 : -1, reason);
        }
}

int cmd_recv(int argc, char **argv)
{
        const char *ctx = "recv";
        struct recv_state s = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
        struct ntbt_qp_handlers h = {.rx = recv_rx, .event = recv_event};
        struct xfer_opts x;
        struct cli_endpoint e;
        uint32_t buf_len;
        uint8_t *bufs;
        int ret, i, nbufs = 64;

        ret = parse_xfer(ctx, recv_usage, argc, argv, &x);
        if (ret >= 0)
                return ret;
        cli_install_log(x.verbose);
        signal(SIGPIPE, SIG_IGN);
        /* Buffers of transport_mtu bytes hold any payload. */
        buf_len = x.mtu ? x.mtu : 65536;
        s.buf_len = buf_len;
        bufs = malloc((size_t)nbufs * buf_len);
        if (!bufs)
                return 1;
        if (cli_endpoint_open(ctx, x.dev, x.qp, x.mtu, x.max_qps, 0, 0, 0, &h, &s, &e)) {
                free(bufs);
                return 1;
        }
        for (i = 0; i < nbufs; i++)
                ntbt_qp_rx_enqueue(e.qp, NULL, bufs + (size_t)i * buf_len, buf_len);
        /* Wait for the end, not for the link: a short stream can link, finish
         * and close between two looks.  Say once what we wait for. */
        {
                int said = 0, said_mismatch = 0;
                char why[256];

                pthread_mutex_lock(&s.lock);
                while (!s.done) {
                        struct timespec ts;

                        clock_gettime(CLOCK_REALTIME, &ts);
                        ts.tv_sec += 1;
                        if (pthread_cond_timedwait(&s.cond, &s.lock, &ts) != ETIMEDOUT || s.ever_up)
                                continue;
                        if (!said) {
                                fprintf(stderr,
                                        "ntbt: %s: waiting for the peer on %s, queue pair %d\n",
                                        ctx, x.dev, x.qp);
                                said = 1;
                        }
                        if (!said_mismatch && ntbt_transport_mismatch(e.t, why, sizeof(why))) {
                                fprintf(stderr, "ntbt: %s: %s\n", ctx, why);
                                said_mismatch = 1;
                        }
                }
                pthread_mutex_unlock(&s.lock);
        }
        ret = s.done == 1 ? 0 : 1;
        if (s.write_err)
                cli_err(ctx, "stdout: %s", strerror(s.write_err));
        else if (s.done != 1)
                cli_err(ctx, "%s: %s after %llu bytes", x.dev,
                        s.reason == NTBT_QP_DOWN_PROTOCOL ? "the peer broke the protocol"
                                                          : "link lost",
                        (unsigned long long)__atomic_load_n(&s.bytes, __ATOMIC_RELAXED));
        if (x.verbose)
                fprintf(stderr, "ntbt: recv: %llu bytes\n",
                        (unsigned long long)__atomic_load_n(&s.bytes, __ATOMIC_RELAXED));
        cli_endpoint_close(&e);
        free(bufs);
        return ret;
}
