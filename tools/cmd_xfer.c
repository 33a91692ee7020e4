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
        struct cli_common c;
        int quiet;
};

static int xfer_option(const struct cli_cmd *cmd, int c, const char *arg, void *own)
{
        struct xfer_opts *x = own;

        (void)arg;
        if (c == 'q') {
                x->quiet = 1;
                return 0;
        }
        if (c == CLI_OPT_TX && strcmp(cmd->ctx, "send")) {
                cli_err(cmd->ctx, "--tx is for ntbt send (recv does not copy into a window)");
                return 2;
        }
        return CLI_NOT_MINE;
}

static const struct option xfer_options[] = {
    CLI_O_DEV,     CLI_O_QP, CLI_O_MTU,     CLI_O_MAX_QPS, {"quiet", no_argument, NULL, 'q'},
    CLI_O_VERBOSE, CLI_O_TX, CLI_O_TIMEOUT, CLI_O_HELP,    CLI_O_END,
};

/* CLI_RUN, or the exit status; then the log hook and the cleanup on signals. */
static int parse_xfer(const char *ctx, const char *usage, int argc, char **argv,
                      struct xfer_opts *x)
{
        const struct cli_cmd cmd = {.ctx = ctx,
                                    .usage = usage,
                                    .shortopts = "d:m:qvh",
                                    .opts = xfer_options,
                                    .mtu_lo = 16,
                                    .option = xfer_option};
        int rc;

        memset(x, 0, sizeof(*x));
        rc = cli_parse(&cmd, argc, argv, &x->c, x);
        if (rc == CLI_RUN)
                cli_start(ctx, &x->c);
        return rc;
}

/* Buffers given to the transport come back through the tx handler; in
 * thread mode that is later, on the copy thread, so send keeps a pool. */
#define SEND_POOL 64

struct send {
        const char *ctx;
        struct cli_endpoint e;
        struct cli_progress pr;
        uint8_t *pool; /* SEND_POOL frames of payload bytes */
        uint32_t payload;
        uint64_t total;     /* bytes: relaxed atomic, for the progress line */
        uint64_t frames;    /* frames enqueued */
        uint64_t completed; /* atomic: completions seen, in order */
        int error;          /* atomic: a negative completion */
};

static void send_tx_done(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len)
{
        struct send *s = ctx;

        (void)qp, (void)buf_ctx, (void)data;
        if (len < 0)
                __atomic_store_n(&s->error, len, __ATOMIC_SEQ_CST);
        /* Release: the buffer's reuse happens after the transport let go of it. */
        __atomic_add_fetch(&s->completed, 1, __ATOMIC_RELEASE);
}

/* The pool slot of the next frame, once its previous frame completed. */
static uint8_t *send_slot(struct send *s)
{
        while (s->frames >= SEND_POOL &&
               __atomic_load_n(&s->completed, __ATOMIC_ACQUIRE) <= s->frames - SEND_POOL)
                ntbt_qp_wait_tx(s->e.qp, 1, NS_PER_MS);
        return s->pool + (s->frames % SEND_POOL) * s->payload;
}

/* Standard input onto the QP, to its end: 0, or 1 after a message. */
static int send_stream(struct send *s)
{
        for (;;) {
                uint8_t *buf = send_slot(s);
                ssize_t n;
                int ret;

                /* Send what each read returns (at most one frame), so input
                 * that pauses is not held back waiting for a full frame. */
                n = read(0, buf, s->payload);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int err = errno;

                        cli_progress_stop(&s->pr);
                        cli_err(s->ctx, "stdin: %s", strerror(err));
                        return 1;
                }
                if (n == 0)
                        return 0;
                while ((ret = ntbt_qp_tx_enqueue(s->e.qp, NULL, buf, (uint32_t)n, 0)) == -EAGAIN)
                        ret = ntbt_qp_wait_tx(s->e.qp, 1, -1);
                if (ret) {
                        cli_progress_stop(&s->pr);
                        cli_err(s->ctx, "%s: link lost after %llu bytes: %s", s->e.spec,
                                (unsigned long long)s->total, strerror(-ret));
                        return 1;
                }
                /* Relaxed: a count for the progress line, ordering nothing. */
                __atomic_store_n(&s->total, s->total + (uint64_t)n, __ATOMIC_RELAXED);
                s->frames++;
        }
}

/* After the stream (rc): every frame consumed by the peer, then the
 * LINK_DOWN frame.  0, or 1 after a message. */
static int send_finish(struct send *s, int rc)
{
        int entries = ntbt_qp_tx_entries(s->e.qp);
        int err;

        if (!rc && ntbt_qp_wait_tx(s->e.qp, entries - 1, -1)) {
                cli_progress_stop(&s->pr);
                cli_err(s->ctx, "%s: link lost before the peer took every frame", s->e.spec);
                rc = 1;
        }
        err = __atomic_load_n(&s->error, __ATOMIC_SEQ_CST);
        if (!rc && err) {
                cli_progress_stop(&s->pr);
                cli_err(s->ctx, "%s: a frame was not sent: %s", s->e.spec, strerror(-err));
                rc = 1;
        }
        if (!rc)
                ntbt_qp_link_down(s->e.qp); /* the LINK_DOWN frame */
        return rc;
}

int cmd_send(int argc, char **argv)
{
        static struct send s = {.ctx = "send"};
        struct ntbt_qp_handlers h = {.tx = send_tx_done};
        struct cli_endpoint_opts eo;
        struct xfer_opts x;
        char extra[64];
        int rc;

        rc = parse_xfer(s.ctx, send_usage, argc, argv, &x);
        if (rc != CLI_RUN)
                return rc;
        eo = cli_endpoint_opts(&x.c);
        eo.poll = 1;
        eo.handlers = &h;
        eo.handlers_ctx = &s;
        rc = cli_endpoint_open(s.ctx, &eo, &s.e);
        if (rc)
                return rc;
        if (cli_wait_peer(s.ctx, &s.e, cli_timeout_ns(&x.c, -1))) {
                cli_endpoint_close(&s.e);
                return 1;
        }
        s.payload = ntbt_qp_max_payload(s.e.qp);
        s.pool = malloc((size_t)SEND_POOL * s.payload);
        if (!s.pool) {
                cli_endpoint_close(&s.e);
                return 1;
        }
        cli_progress_start(&s.pr, s.ctx, &s.total, x.quiet, x.c.verbose);
        cli_progress_begin(&s.pr);
        rc = send_finish(&s, send_stream(&s));
        snprintf(extra, sizeof(extra), "%llu frames, %s copy", (unsigned long long)s.frames,
                 cli_tx_mode_name(ntbt_qp_tx_mode(s.e.qp)));
        cli_progress_end(&s.pr, extra);
        cli_endpoint_close(&s.e);
        free(s.pool);
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

/*
 * Wait for the end, not for the link: a short stream can link, finish and
 * close between two looks.  Say once what we wait for.  0, or 1 when no
 * peer came within --timeout (after saying so).
 */
static int recv_wait(const char *ctx, const struct xfer_opts *x, struct recv_state *s,
                     const struct cli_endpoint *e)
{
        int64_t wait_ns = cli_timeout_ns(&x->c, -1);
        int64_t deadline = wait_ns < 0 ? INT64_MAX : now_ns() + wait_ns;
        struct cli_waiting w = {0};
        int timed_out = 0;

        pthread_mutex_lock(&s->lock);
        while (!s->done && !timed_out) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) != ETIMEDOUT || s->ever_up)
                        continue;
                cli_waiting_note(ctx, e, &w);
                timed_out = now_ns() >= deadline;
        }
        pthread_mutex_unlock(&s->lock);
        if (timed_out)
                cli_no_peer(ctx, e, x->c.timeout);
        return timed_out;
}

/* What ended the stream, if not the peer's close (progress stopped). */
static void recv_say_end(const char *ctx, const struct xfer_opts *x, struct recv_state *s)
{
        if (s->write_err == EPIPE) {
                if (x->c.verbose)
                        cli_err(ctx, "stdout: %s (the reader went away)", strerror(EPIPE));
        } else if (s->write_err) {
                cli_err(ctx, "stdout: %s", strerror(s->write_err));
        } else if (s->done != 1) {
                cli_err(ctx, "%s: %s after %llu bytes", x->c.dev,
                        s->reason == NTBT_QP_DOWN_PROTOCOL ? "the peer broke the protocol"
                                                           : "link lost",
                        (unsigned long long)__atomic_load_n(&s->bytes, __ATOMIC_RELAXED));
        }
}

#define RECV_BUFS 64

int cmd_recv(int argc, char **argv)
{
        const char *ctx = "recv";
        struct cli_progress pr;
        struct recv_state s = {
            .progress = &pr, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
        struct ntbt_qp_handlers h = {.rx = recv_rx, .event = recv_event};
        struct cli_endpoint_opts eo;
        struct xfer_opts x;
        struct cli_endpoint e;
        uint8_t *bufs;
        int ret, i;

        ret = parse_xfer(ctx, recv_usage, argc, argv, &x);
        if (ret != CLI_RUN)
                return ret;
        /* A closed stdout is EPIPE from write: we close the QP first, then
         * end as SIGPIPE would have. */
        signal(SIGPIPE, SIG_IGN);
        /* Buffers of transport_mtu bytes hold any payload. */
        s.buf_len = x.c.mtu ? x.c.mtu : 65536;
        bufs = malloc((size_t)RECV_BUFS * s.buf_len);
        if (!bufs)
                return 1;
        /* Before the endpoint: the event handler may begin it. */
        cli_progress_start(&pr, ctx, &s.bytes, x.quiet, x.c.verbose);
        eo = cli_endpoint_opts(&x.c);
        eo.handlers = &h;
        eo.handlers_ctx = &s;
        ret = cli_endpoint_open(ctx, &eo, &e);
        if (ret) {
                cli_progress_stop(&pr);
                free(bufs);
                return ret;
        }
        for (i = 0; i < RECV_BUFS; i++)
                ntbt_qp_rx_enqueue(e.qp, NULL, bufs + (size_t)i * s.buf_len, s.buf_len);
        if (recv_wait(ctx, &x, &s, &e)) {
                cli_progress_stop(&pr);
                cli_endpoint_close(&e);
                free(bufs);
                return 1;
        }
        ret = s.done == 1 ? 0 : 1;
        cli_progress_stop(&pr);
        recv_say_end(ctx, &x, &s);
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
