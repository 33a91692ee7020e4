/* SPDX-License-Identifier: MIT */
/* ntbt ping: round trips over a queue pair; the server echoes, the client measures. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "cli.h"

static const char ping_usage[] =
    "usage: ntbt ping --dev DEV (--server | --client | --loopback) [--count N]\n"
    "                 [--size BYTES] [--stall-timeout SECS] [--qp N] [--mtu BYTES]\n"
    "                 [--tx inline|thread] [--json] [--unsafe-no-flush]\n"
    "\n"
    "Round trips over queue pair N (default 0).  The server echoes every message\n"
    "and exits when the client closes; the client sends --count messages (default\n"
    "10000) of --size bytes (default 64), one at a time, and reports the round-trip\n"
    "time: min, p50, p99, max.  If a reply does not come within --stall-timeout\n"
    "seconds (default 1) the client prints 'stalled' and exits 1.  --loopback runs\n"
    "the server in a child process on a fresh private device named after DEV, and\n"
    "removes it afterwards.\n"
    "\n"
    "--unsafe-no-flush  UNSAFE, for demonstrations: skip the flush between the DONE\n"
    "                   write and the doorbell.  Over pcie: this stalls.\n";

struct ping_opts {
        const char *dev;
        int server, client, loopback, json, verbose, qp, tx_mode;
        uint32_t mtu, size, flags;
        uint64_t count;
        double stall_s;
};

struct ping_state {
        struct ping_opts *o;
        uint32_t buf_len;
        int peer_closed, link_lost;
        /* Client: the reply being waited for. */
        uint64_t want_seq;
        int got;
        int bad;
};

static void ping_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        struct ping_state *s = ctx;

        (void)qp;
        if (up)
                return;
        if (reason == NTBT_QP_DOWN_PEER)
                s->peer_closed = 1;
        else
                s->link_lost = reason;
}

/* Server: echo what arrives (poll mode: this runs inside ntbt_qp_poll). */
static void server_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct ping_state *s = ctx;
        int ret;

        (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        if (len > 0) {
                while ((ret = ntbt_qp_tx_enqueue(qp, NULL, data, (uint32_t)len, 0)) == -EAGAIN)
                        if (ntbt_qp_wait_tx(qp, 1, 1000000000LL))
                                break;
                if (ret == 0)
                        return; /* posted again by server_tx_done */
        }
        ntbt_qp_rx_enqueue(qp, NULL, data, s->buf_len);
}

/* The echo went out (or failed): its buffer may receive again.  Runs on the
 * copy thread in thread mode, so the buffer is not reused while copied. */
static void server_tx_done(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len)
{
        struct ping_state *s = ctx;

        (void)buf_ctx, (void)len;
        ntbt_qp_rx_enqueue(qp, NULL, (void *)data, s->buf_len);
}

static void client_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct ping_state *s = ctx;
        uint64_t seq = 0;

        (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        if (len != (int)s->o->size)
                s->bad = 1;
        else if (len >= 8)
                memcpy(&seq, data, 8);
        else
                seq = s->want_seq; /* too small to carry it */
        if (seq != s->want_seq)
                s->bad = 1;
        s->got = 1;
        ntbt_qp_rx_enqueue(qp, NULL, data, s->buf_len);
}

static int64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

static uint8_t *post_buffers(struct ntbt_qp *qp, struct ping_state *s, int n)
{
        uint8_t *bufs = malloc((size_t)n * s->buf_len);
        int i;

        if (!bufs)
                return NULL;
        for (i = 0; i < n; i++)
                ntbt_qp_rx_enqueue(qp, NULL, bufs + (size_t)i * s->buf_len, s->buf_len);
        return bufs;
}

static int run_server(const char *ctx, struct ping_opts *o)
{
        struct ntbt_qp_handlers h = {.rx = server_rx, .tx = server_tx_done, .event = ping_event};
        struct ping_state s = {.o = o, .buf_len = o->mtu ? o->mtu : 65536};
        struct cli_endpoint e;
        uint8_t *bufs;
        int rc = 0;

        if (cli_endpoint_open(ctx, o->dev, o->qp, o->mtu, 0, o->flags, 1, o->tx_mode, &h, &s, &e))
                return 1;
        bufs = post_buffers(e.qp, &s, 16);
        if (!bufs) {
                cli_endpoint_close(&e);
                return 1;
        }
        while (ntbt_qp_wait_link(e.qp, -1))
                ;
        while (!s.peer_closed && !s.link_lost) {
                ntbt_qp_poll(e.qp, 64);
                if (!s.peer_closed && !s.link_lost)
                        ntbt_qp_wait_rx(e.qp, 100 * 1000000LL);
        }
        if (s.link_lost) {
                cli_err(ctx, "%s: link lost", o->dev);
                rc = 1;
        }
        cli_endpoint_close(&e);
        free(bufs);
        return rc;
}

static int run_client(const char *ctx, struct ping_opts *o)
{
        struct ntbt_qp_handlers h = {.rx = client_rx, .event = ping_event};
        struct ping_state s = {.o = o, .buf_len = o->mtu ? o->mtu : 65536};
        int64_t stall_ns = (int64_t)(o->stall_s * 1e9), *rtt;
        struct cli_endpoint e;
        uint8_t *bufs, *msg;
        uint64_t i, done = 0;
        int rc = 0, stalled = 0, ret;

        if (cli_endpoint_open(ctx, o->dev, o->qp, o->mtu, 0, o->flags, 1, o->tx_mode, &h, &s, &e))
                return 1;
        rtt = calloc(o->count, sizeof(*rtt));
        msg = calloc(1, o->size);
        bufs = post_buffers(e.qp, &s, 16);
        if (!rtt || !msg || !bufs) {
                rc = 1;
                goto out;
        }
        if (ntbt_qp_wait_link(e.qp, 30 * 1000000000LL)) {
                cli_err(ctx, "%s: no peer within 30 s (is the server running?)", o->dev);
                rc = 1;
                goto out;
        }
        if (o->size > ntbt_qp_max_payload(e.qp)) {
                cli_err(ctx, "--size %u is larger than the max payload %u", o->size,
                        ntbt_qp_max_payload(e.qp));
                rc = 2;
                goto out;
        }
        for (i = 0; i < o->count; i++) {
                int64_t t0, deadline;

                s.want_seq = i;
                s.got = 0;
                memcpy(msg, &i, o->size < 8 ? o->size : 8);
                t0 = mono_ns();
                deadline = t0 + stall_ns;
                while ((ret = ntbt_qp_tx_enqueue(e.qp, NULL, msg, o->size, 0)) == -EAGAIN)
                        ret = ntbt_qp_wait_tx(e.qp, 1, stall_ns);
                if (ret) {
                        cli_err(ctx, "%s: send: %s", o->dev, strerror(-ret));
                        rc = 1;
                        goto out;
                }
                while (!s.got && !s.link_lost && !s.peer_closed) {
                        int64_t left;

                        ntbt_qp_poll(e.qp, 1);
                        if (s.got)
                                break;
                        left = deadline - mono_ns();
                        if (left <= 0)
                                break;
                        ntbt_qp_wait_rx(e.qp, left);
                }
                if (!s.got) {
                        if (s.link_lost || s.peer_closed) {
                                cli_err(ctx, "%s: link lost after %llu round trips", o->dev,
                                        (unsigned long long)done);
                                rc = 1;
                                goto out;
                        }
                        stalled = 1;
                        break;
                }
                if (s.bad) {
                        cli_err(ctx, "reply %llu differs from what was sent",
                                (unsigned long long)i);
                        rc = 1;
                        goto out;
                }
                rtt[i] = mono_ns() - t0;
                done++;
        }
        if (stalled) {
                if (o->json)
                        printf("{\"size\":%u,\"count\":%llu,\"stalled\":true}\n", o->size,
                               (unsigned long long)done);
                printf("stalled: no reply to message %llu within %.3f s%s\n",
                       (unsigned long long)done, o->stall_s,
                       o->flags & NTBT_TRANSPORT_UNSAFE_NO_FLUSH
                           ? " (the flush before the doorbell is off: the doorbell "
                             "overtook the DONE write)"
                           : "");
                rc = 1;
        } else if (done) {
                qsort(rtt, done, sizeof(*rtt), cmp_i64);
                if (o->json)
                        printf("{\"size\":%u,\"count\":%llu,\"stalled\":false,"
                               "\"rtt_ns_min\":%lld,\"rtt_ns_p50\":%lld,\"rtt_ns_p99\":%lld,"
                               "\"rtt_ns_max\":%lld}\n",
                               o->size, (unsigned long long)done, (long long)rtt[0],
                               (long long)rtt[done / 2], (long long)rtt[done * 99 / 100],
                               (long long)rtt[done - 1]);
                else
                        printf("%s: %u-byte messages, %llu round trips\n"
                               "rtt min %.2f us  p50 %.2f us  p99 %.2f us  max %.2f us\n",
                               o->dev, o->size, (unsigned long long)done, rtt[0] / 1e3,
                               rtt[done / 2] / 1e3, rtt[done * 99 / 100] / 1e3,
                               rtt[done - 1] / 1e3);
        }
        if (!stalled)
                ntbt_qp_link_down(e.qp); /* the server exits on this */
out:
        fflush(stdout);
        cli_endpoint_close(&e);
        free(rtt);
        free(msg);
        free(bufs);
        return rc;
}

/* --loopback: a private device named after DEV, a server child, then the client. */
static int role_server(const char *ctx, const char *spec, void *arg)
{
        struct ping_opts o = *(struct ping_opts *)arg;

        o.dev = spec;
        return run_server(ctx, &o);
}

static int role_client(const char *ctx, const char *spec, void *arg)
{
        struct ping_opts o = *(struct ping_opts *)arg;

        o.dev = spec;
        return run_client(ctx, &o);
}

int cmd_ping(int argc, char **argv)
{
        static const struct option opts[] = {
            {"dev", required_argument, NULL, 'd'},
            {"server", no_argument, NULL, 'S'},
            {"client", no_argument, NULL, 'C'},
            {"loopback", no_argument, NULL, 'L'},
            {"count", required_argument, NULL, 'c'},
            {"size", required_argument, NULL, 's'},
            {"stall-timeout", required_argument, NULL, 't'},
            {"qp", required_argument, NULL, 'q'},
            {"mtu", required_argument, NULL, 'm'},
            {"json", no_argument, NULL, 'j'},
            {"unsafe-no-flush", no_argument, NULL, 'U'},
            {"verbose", no_argument, NULL, 'v'},
            {"tx", required_argument, NULL, 'x'},
            {"help", no_argument, NULL, 'h'},
            {0, 0, 0, 0},
        };
        struct ping_opts o = {.count = 10000, .size = 64, .stall_s = 1.0};
        const char *ctx = "ping";
        uint64_t v;
        char *end;
        int c;

        while ((c = getopt_long(argc, argv, "d:c:s:q:m:jvh", opts, NULL)) != -1) {
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
                        o.json = 1;
                        break;
                case 'U':
                        o.flags |= NTBT_TRANSPORT_UNSAFE_NO_FLUSH;
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
                        o.stall_s = strtod(optarg, &end);
                        if (*end || !(o.stall_s > 0 && o.stall_s < 3600)) {
                                cli_err(ctx, "bad --stall-timeout '%s' (seconds)", optarg);
                                return 2;
                        }
                        break;
                case 'c':
                case 's':
                case 'q':
                case 'm':
                        if (cli_size(ctx, argv[optind - 1], optarg, &v))
                                return 2;
                        if ((c == 'c' && (v < 1 || v > 100000000)) ||
                            (c == 's' && (v < 1 || v > (1u << 30))) || (c == 'q' && v >= 32) ||
                            (c == 'm' && (v < 16 || v > (1u << 30)))) {
                                cli_err(ctx, "%s %s is out of range", argv[optind - 1], optarg);
                                return 2;
                        }
                        if (c == 'c')
                                o.count = v;
                        else if (c == 's')
                                o.size = (uint32_t)v;
                        else if (c == 'q')
                                o.qp = (int)v;
                        else
                                o.mtu = (uint32_t)v;
                        break;
                case 'h':
                        fputs(ping_usage, stdout);
                        return 0;
                default:
                        fputs(ping_usage, stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                cli_err(ctx, "unexpected argument '%s'", argv[optind]);
                return 2;
        }
        if (!o.dev) {
                cli_err(ctx, "--dev DEV is required (e.g. --dev shm:demo)");
                return 2;
        }
        if (o.server + o.client + o.loopback != 1) {
                cli_err(ctx, "choose one of --server, --client, --loopback");
                return 2;
        }
        cli_install_log(o.verbose);
        if (o.flags & NTBT_TRANSPORT_UNSAFE_NO_FLUSH)
                fprintf(stderr, "ntbt: ping: UNSAFE: --unsafe-no-flush: the doorbell may "
                                "overtake the DONE write; for demonstrations only\n");
        if (o.loopback)
                return cli_run_loopback(ctx, o.dev, role_server, role_client, &o);
        return o.server ? run_server(ctx, &o) : run_client(ctx, &o);
}
