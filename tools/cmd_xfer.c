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

#include "util.h"
#include "cli.h"

static const char send_usage[] =
    "usage: ntbt send -d|--dev DEV [--qp N] [-m|--mtu BYTES] [--max-qps N]\n"
    "                 [--tx inline|thread] [--timeout SECS] [-q|--quiet] [-v|--verbose]\n"
    "\n"
    "Read standard input and send it over queue pair N (default 0), each read in a\n"
    "frame of at most the QP's max payload (input that pauses is sent at once);\n"
    "wait until the peer has consumed every frame, close the QP (a LINK_DOWN\n"
    "frame) and exit 0.  Exits 1 if the link is lost first or no peer came within\n"
    "--timeout, 2 for a usage error (a bad option or device string).\n"
    "The device is created with default geometry if it does not exist; the first\n"
    "free port is claimed unless DEV says port=N.\n"
    "\n"
    "-d, --dev DEV      the device, TYPE:NAME[,key=value...] (shm:demo)\n"
    "    --qp N         queue pair, 0-31 (default 0)\n"
    "-m, --mtu BYTES    transport_mtu, 16-1G (default 65536); both sides must agree\n"
    "    --max-qps N    the kernel's max_num_clients, 0-32 (default 0: as many as\n"
    "                   the device allows); both sides must agree\n"
    "    --tx MODE      inline: copy into the window on this thread (default);\n"
    "                   thread: on a per-QP copy thread (tx_memcpy_offload)\n"
    "    --timeout SECS wait at most SECS for the peer (default: for ever), then\n"
    "                   exit 1; a peer that is there but does not match is named\n"
    "-q, --quiet        no progress line and no summary on a terminal\n"
    "-v, --verbose      the summary even when stderr is not a terminal; -vv more\n"
    "-h, --help         this text\n"
    "\n"
    "On a terminal, stderr shows the bytes sent, the rate and the time elapsed,\n"
    "every half second, and a summary at the end.\n";

static const char recv_usage[] =
    "usage: ntbt recv -d|--dev DEV [--qp N] [-m|--mtu BYTES] [--max-qps N]\n"
    "                 [--timeout SECS] [-q|--quiet] [-v|--verbose]\n"
    "\n"
    "Receive from queue pair N (default 0) and write every payload to standard\n"
    "output, in order; exit 0 when the peer closes the QP, 1 if the device link is\n"
    "lost, the peer breaks the protocol or no peer came within --timeout, 2 for a\n"
    "usage error.  A standard output\n"
    "that closes (a broken pipe) ends recv as SIGPIPE does, after it has closed\n"
    "the QP.  Device creation, ports, options and the progress line as for\n"
    "ntbt send:\n"
    "\n"
    "-d, --dev DEV      the device, TYPE:NAME[,key=value...]\n"
    "    --qp N         queue pair, 0-31 (default 0)\n"
    "-m, --mtu BYTES    transport_mtu, 16-1G (default 65536)\n"
    "    --max-qps N    the kernel's max_num_clients, 0-32 (default 0)\n"
    "    --timeout SECS wait at most SECS for the peer (default: for ever)\n"
    "-q, --quiet        no progress line and no summary on a terminal\n"
    "-v, --verbose      the summary even when stderr is not a terminal; -vv more\n"
    "-h, --help         this text\n";

struct xfer_opts {
        const char *dev;
        int qp, verbose, quiet, tx_mode;
        uint32_t mtu, max_qps;
        double timeout; /* seconds to wait for the peer; 0: for ever */
};

enum { OPT_QP = 256, OPT_MAX_QPS, OPT_TX, OPT_TIMEOUT };

static int parse_xfer(const char *ctx, const char *usage, int is_send, int argc, char **argv,
                      struct xfer_opts *x)
{
        static const struct option opts[] = {
            {"dev", required_argument, NULL, 'd'},
            {"qp", required_argument, NULL, OPT_QP},
            {"mtu", required_argument, NULL, 'm'},
            {"max-qps", required_argument, NULL, OPT_MAX_QPS},
            {"quiet", no_argument, NULL, 'q'},
            {"verbose", no_argument, NULL, 'v'},
            {"tx", required_argument, NULL, OPT_TX},
            {"timeout", required_argument, NULL, OPT_TIMEOUT},
            {"help", no_argument, NULL, 'h'},
            {0, 0, 0, 0},
        };
        char opt[32];
        uint64_t v;
        int c;

        memset(x, 0, sizeof(*x));
        while ((c = getopt_long(argc, argv, "d:m:qvh", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        x->dev = optarg;
                        break;
                case OPT_QP:
                case 'm':
                case OPT_MAX_QPS:
                        cli_optname(opts, c, opt, sizeof(opt));
                        if (c == OPT_QP ? cli_uint(ctx, opt, optarg, 0, 31, &v)
                            : c == 'm'  ? cli_uint(ctx, opt, optarg, 16, 1u << 30, &v)
                                        : cli_uint(ctx, opt, optarg, 0, 32, &v))
                                return 2;
                        if (c == OPT_QP)
                                x->qp = (int)v;
                        else if (c == 'm')
                                x->mtu = (uint32_t)v;
                        else
                                x->max_qps = (uint32_t)v;
                        break;
                case 'q':
                        x->quiet = 1;
                        break;
                case 'v':
                        x->verbose++;
                        break;
                case OPT_TIMEOUT:
                        if (cli_seconds(ctx, "--timeout", optarg, 0, 1, 86400, &x->timeout))
                                return 2;
                        break;
                case OPT_TX:
                        if (!is_send) {
                                cli_err(ctx, "--tx is for ntbt send (recv does not copy into "
                                             "a window)");
                                return 2;
                        }
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

/* Wait for the QP link (cli_wait_peer); -ETIMEDOUT once --timeout passed. */
static int wait_for_peer(const char *ctx, const struct xfer_opts *x, struct cli_endpoint *e)
{
        return cli_wait_peer(ctx, x->dev, e, x->qp,
                             x->timeout > 0 ? (int64_t)(x->timeout * 1e9) : -1);
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
        struct cli_progress pr;
        uint64_t total = 0, frames = 0;
        uint32_t payload;
        uint8_t *pool;
        char extra[64];
        int ret, entries, rc = 0;

        ret = parse_xfer(ctx, send_usage, 1, argc, argv, &x);
        if (ret >= 0)
                return ret;
        cli_install_log(x.verbose);
        cli_cleanup_install();
        ret = cli_endpoint_open(ctx, x.dev, x.qp, x.mtu, x.max_qps, 0, 1, x.tx_mode, &h, &st, &e);
        if (ret)
                return ret;
        if (wait_for_peer(ctx, &x, &e)) {
                cli_endpoint_close(&e);
                return 1;
        }
        payload = ntbt_qp_max_payload(e.qp);
        pool = malloc((size_t)SEND_POOL * payload);
        if (!pool) {
                cli_endpoint_close(&e);
                return 1;
        }
        cli_progress_start(&pr, ctx, &total, x.quiet, x.verbose);
        cli_progress_begin(&pr);
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
                        int err = errno;

                        cli_progress_stop(&pr);
                        cli_err(ctx, "stdin: %s", strerror(err));
                        rc = 1;
                        break;
                }
                if (n == 0)
                        break;
                len = (uint32_t)n;
                while ((ret = ntbt_qp_tx_enqueue(e.qp, NULL, buf, len, 0)) == -EAGAIN)
                        ret = ntbt_qp_wait_tx(e.qp, 1, -1);
                if (ret) {
                        cli_progress_stop(&pr);
                        cli_err(ctx, "%s: link lost after %llu bytes: %s", x.dev,
                                (unsigned long long)total, strerror(-ret));
                        rc = 1;
                        break;
                }
                /* Relaxed: a count for the progress line, ordering nothing. */
                __atomic_store_n(&total, total + len, __ATOMIC_RELAXED);
                frames++;
        }
        /* Every frame consumed by the peer before we close. */
        entries = ntbt_qp_tx_entries(e.qp);
        if (!rc && ntbt_qp_wait_tx(e.qp, entries - 1, -1)) {
                cli_progress_stop(&pr);
                cli_err(ctx, "%s: link lost before the peer took every frame", x.dev);
                rc = 1;
        }
        if (!rc && __atomic_load_n(&st.error, __ATOMIC_SEQ_CST)) {
                cli_progress_stop(&pr);
                cli_err(ctx, "%s: a frame was not sent: %s", x.dev,
                        strerror(-__atomic_load_n(&st.error, __ATOMIC_SEQ_CST)));
                rc = 1;
        }
        if (!rc)
                ntbt_qp_link_down(e.qp); /* the LINK_DOWN frame */
        snprintf(extra, sizeof(extra), "%llu frames, %s copy", (unsigned long long)frames,
                 cli_tx_mode_name(ntbt_qp_tx_mode(e.qp)));
        cli_progress_end(&pr, extra);
        cli_endpoint_close(&e);
        free(pool);
        return rc;
}

struct recv_state {
        struct cli_progress *progress;
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
                cli_progress_begin(s->progress);
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
        struct cli_progress pr;
        struct recv_state s = {
            .progress = &pr, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
        struct ntbt_qp_handlers h = {.rx = recv_rx, .event = recv_event};
        struct xfer_opts x;
        struct cli_endpoint e;
        uint32_t buf_len;
        uint8_t *bufs;
        int ret, i, nbufs = 64;

        ret = parse_xfer(ctx, recv_usage, 0, argc, argv, &x);
        if (ret >= 0)
                return ret;
        cli_install_log(x.verbose);
        cli_cleanup_install();
        /* A closed stdout is EPIPE from write: we close the QP first, then
         * end as SIGPIPE would have. */
        signal(SIGPIPE, SIG_IGN);
        /* Buffers of transport_mtu bytes hold any payload. */
        buf_len = x.mtu ? x.mtu : 65536;
        s.buf_len = buf_len;
        bufs = malloc((size_t)nbufs * buf_len);
        if (!bufs)
                return 1;
        /* Before the endpoint: the event handler may begin it. */
        cli_progress_start(&pr, ctx, &s.bytes, x.quiet, x.verbose);
        ret = cli_endpoint_open(ctx, x.dev, x.qp, x.mtu, x.max_qps, 0, 0, 0, &h, &s, &e);
        if (ret) {
                cli_progress_stop(&pr);
                free(bufs);
                return ret;
        }
        for (i = 0; i < nbufs; i++)
                ntbt_qp_rx_enqueue(e.qp, NULL, bufs + (size_t)i * buf_len, buf_len);
        /* Wait for the end, not for the link: a short stream can link, finish
         * and close between two looks.  Say once what we wait for. */
        {
                int64_t deadline =
                    x.timeout > 0 ? now_ns() + (int64_t)(x.timeout * 1e9) : INT64_MAX;
                int said = 0, said_mismatch = 0, timed_out = 0;
                char why[256];

                pthread_mutex_lock(&s.lock);
                while (!s.done && !timed_out) {
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
                        timed_out = now_ns() >= deadline;
                }
                pthread_mutex_unlock(&s.lock);
                if (timed_out) {
                        cli_err(ctx, "%s: no peer on queue pair %d within %g s (--timeout)", x.dev,
                                x.qp, x.timeout);
                        cli_progress_stop(&pr);
                        cli_endpoint_close(&e);
                        free(bufs);
                        return 1;
                }
        }
        ret = s.done == 1 ? 0 : 1;
        cli_progress_stop(&pr);
        if (s.write_err == EPIPE) {
                if (x.verbose)
                        cli_err(ctx, "stdout: %s (the reader went away)", strerror(EPIPE));
        } else if (s.write_err) {
                cli_err(ctx, "stdout: %s", strerror(s.write_err));
        } else if (s.done != 1) {
                cli_err(ctx, "%s: %s after %llu bytes", x.dev,
                        s.reason == NTBT_QP_DOWN_PROTOCOL ? "the peer broke the protocol"
                                                          : "link lost",
                        (unsigned long long)__atomic_load_n(&s.bytes, __ATOMIC_RELAXED));
        }
        cli_progress_end(&pr, NULL);
        cli_endpoint_close(&e);
        free(bufs);
        if (s.write_err == EPIPE) {
                /* Everything is closed: now end as a pipeline expects. */
                signal(SIGPIPE, SIG_DFL);
                raise(SIGPIPE);
        }
        return ret;
}
