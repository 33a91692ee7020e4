/* SPDX-License-Identifier: MIT */
/* ntbt ping: round trips over a queue pair; the server echoes, the client measures. */
#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "util.h"
#include "cli.h"

static const char ping_usage[] =
    "usage: ntbt ping -d|--dev DEV (--server | --client | --loopback) [-c|--count N]\n"
    "                 [-s|--size BYTES] [--stall-timeout SECS] [--qp N]\n"
    "                 [-m|--mtu BYTES] [--tx inline|thread] [--busy-poll]\n"
    "                 [--warmup N] [--timeout SECS] [-j|--json] [--unsafe-no-flush]\n"
    "                 [-v|--verbose]\n"
    "\n"
    "Round trips over queue pair N (default 0).  The server echoes every message\n"
    "and exits when the client closes; the client sends --warmup messages (default\n"
    "1000, not counted), then --count messages (default 10000) of --size bytes\n"
    "(default 64), one at a time, and reports the round-trip time: min, p50, p90,\n"
    "p99, p99.9, max, mean and stdev, and the one-way latency taken as half of it.\n"
    "If a reply does not come within --stall-timeout seconds (default 1) the client\n"
    "prints 'stalled' and exits 1; if no peer comes within --timeout, it says so\n"
    "and exits 1.  --loopback runs the server in a child process on\n"
    "a fresh private device named after DEV, and removes it afterwards (also when\n"
    "SIGINT, SIGTERM or SIGHUP ends it).  Exit status 2: a usage error.\n"
    "\n"
    "-d, --dev DEV       the device, TYPE:NAME[,key=value...]\n"
    "-c, --count N       measured round trips, 1-100000000 (default 10000)\n"
    "    --warmup N      round trips before, 0-100000000 (default 1000)\n"
    "-s, --size BYTES    message size, 1-1G (at most the max payload; default 64)\n"
    "    --stall-timeout SECS  more than 0, at most 3600 (default 1)\n"
    "    --timeout SECS  wait at most SECS for the peer (default: 30 for the\n"
    "                    client, for ever for the server), then exit 1\n"
    "    --qp N          queue pair, 0-31 (default 0)\n"
    "-m, --mtu BYTES     transport_mtu, 16-1G (default 65536)\n"
    "    --tx MODE       inline or thread, as for ntbt send\n"
    "    --busy-poll     spin on the ring instead of sleeping on the doorbell (both\n"
    "                    sides under --loopback; give it to each side otherwise).\n"
    "-j, --json          one object: size, count, warmup, busy_poll, stalled,\n"
    "                    rtt_ns_{min,p50,p90,p99,p999,max,mean,stdev}, one_way_ns_p50\n"
    "                    and hist, a list of [upper_bound_ns, count] (log buckets,\n"
    "                    4 per power of two; empty ones left out).\n"
    "    --unsafe-no-flush  UNSAFE, for demonstrations: skip the flush between the\n"
    "                    DONE write and the doorbell.  Over pcie: this stalls.\n"
    "-v, --verbose       more messages\n"
    "-h, --help          this text\n";

struct ping_opts {
        const char *dev;
        int server, client, loopback, json, verbose, qp, tx_mode, busy_poll;
        uint32_t mtu, size, flags;
        uint64_t count, warmup;
        double stall_s;
        double timeout; /* seconds to wait for the peer; 0: the role's default */
};

/* The wait for the peer's link: --timeout, else 30 s (client) or for ever. */
static int64_t peer_wait_ns(const struct ping_opts *o, int client)
{
        if (o->timeout > 0)
                return (int64_t)(o->timeout * 1e9);
        return client ? 30 * 1000000000LL : -1;
}

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

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/* Percentile p (0..1) of n sorted samples: nearest rank. */
static int64_t pct(const int64_t *v, uint64_t n, double p)
{
        uint64_t k = (uint64_t)(p * (double)n + 0.999999);

        return v[k ? (k > n ? n : k) - 1 : 0];
}

/* Log histogram: 4 buckets per power of two; bucket b holds values up to
 * hist_upper(b) nanoseconds. */
#define HIST_BUCKETS 160
static uint64_t hist_upper(int b)
{
        return (uint64_t)((double)(1ull << (b / 4)) * (1.0 + (b % 4 + 1) / 4.0));
}

static void report(const struct ping_opts *o, int64_t *rtt, uint64_t n)
{
        static uint64_t hist[HIST_BUCKETS];
        double mean = 0, var = 0;
        uint64_t i;
        int b;

        qsort(rtt, n, sizeof(*rtt), cmp_i64);
        for (i = 0; i < n; i++)
                mean += (double)rtt[i];
        mean /= (double)n;
        for (i = 0; i < n; i++)
                var += ((double)rtt[i] - mean) * ((double)rtt[i] - mean);
        var = n > 1 ? var / (double)(n - 1) : 0;
        if (o->json) {
                memset(hist, 0, sizeof(hist));
                for (i = 0, b = 0; i < n; i++) {
                        while (b < HIST_BUCKETS - 1 && (uint64_t)rtt[i] > hist_upper(b))
                                b++;
                        hist[b]++;
                }
                printf("{\"size\":%u,\"count\":%llu,\"warmup\":%llu,\"busy_poll\":%s,"
                       "\"tx_mode\":\"%s\",\"stalled\":false,"
                       "\"rtt_ns_min\":%lld,\"rtt_ns_p50\":%lld,\"rtt_ns_p90\":%lld,"
                       "\"rtt_ns_p99\":%lld,\"rtt_ns_p999\":%lld,\"rtt_ns_max\":%lld,"
                       "\"rtt_ns_mean\":%.1f,\"rtt_ns_stdev\":%.1f,\"one_way_ns_p50\":%.1f,"
                       "\"hist\":[",
                       o->size, (unsigned long long)n, (unsigned long long)o->warmup,
                       o->busy_poll ? "true" : "false",
                       cli_tx_mode_name(o->tx_mode ? o->tx_mode : 1), (long long)rtt[0],
                       (long long)pct(rtt, n, 0.5), (long long)pct(rtt, n, 0.9),
                       (long long)pct(rtt, n, 0.99), (long long)pct(rtt, n, 0.999),
                       (long long)rtt[n - 1], mean, sqrt(var), (double)pct(rtt, n, 0.5) / 2);
                for (b = 0, i = 0; b < HIST_BUCKETS; b++)
                        if (hist[b])
                                printf("%s[%llu,%llu]", i++ ? "," : "",
                                       (unsigned long long)hist_upper(b),
                                       (unsigned long long)hist[b]);
                printf("]}\n");
                return;
        }
        printf("%s: %u-byte messages, %llu round trips after %llu warm-up, %s\n", o->dev, o->size,
               (unsigned long long)n, (unsigned long long)o->warmup,
               o->busy_poll ? "busy-polling the ring" : "sleeping on the doorbell");
        printf("%-18s %9s %9s %9s %9s %9s %9s %9s %9s\n", "", "min", "p50", "p90", "p99", "p99.9",
               "max", "mean", "stdev");
        printf("%-18s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f\n", "round trip (us)",
               rtt[0] / 1e3, pct(rtt, n, 0.5) / 1e3, pct(rtt, n, 0.9) / 1e3,
               pct(rtt, n, 0.99) / 1e3, pct(rtt, n, 0.999) / 1e3, rtt[n - 1] / 1e3, mean / 1e3,
               sqrt(var) / 1e3);
        printf("%-18s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9s\n", "one-way, rtt/2 (us)",
               rtt[0] / 2e3, pct(rtt, n, 0.5) / 2e3, pct(rtt, n, 0.9) / 2e3,
               pct(rtt, n, 0.99) / 2e3, pct(rtt, n, 0.999) / 2e3, rtt[n - 1] / 2e3, mean / 2e3, "");
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

        rc = cli_endpoint_open(ctx, o->dev, o->qp, o->mtu, 0, o->flags, 1, o->tx_mode, &h, &s, &e);
        if (rc)
                return rc;
        bufs = post_buffers(e.qp, &s, 16);
        if (!bufs) {
                cli_endpoint_close(&e);
                return 1;
        }
        if (cli_wait_peer(ctx, o->dev, &e, o->qp, peer_wait_ns(o, 0))) {
                cli_endpoint_close(&e);
                free(bufs);
                return 1;
        }
        while (!s.peer_closed && !s.link_lost) {
                if (ntbt_qp_poll(e.qp, 64) == 0 && !o->busy_poll && !s.peer_closed && !s.link_lost)
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

        rc = cli_endpoint_open(ctx, o->dev, o->qp, o->mtu, 0, o->flags, 1, o->tx_mode, &h, &s, &e);
        if (rc)
                return rc;
        rtt = calloc(o->count + o->warmup, sizeof(*rtt));
        msg = calloc(1, o->size);
        bufs = post_buffers(e.qp, &s, 16);
        if (!rtt || !msg || !bufs) {
                rc = 1;
                goto out;
        }
        if (cli_wait_peer(ctx, o->dev, &e, o->qp, peer_wait_ns(o, 1))) {
                rc = 1;
                goto out;
        }
        if (o->size > ntbt_qp_max_payload(e.qp)) {
                cli_err(ctx, "--size %u is larger than the max payload %u", o->size,
                        ntbt_qp_max_payload(e.qp));
                rc = 2;
                goto out;
        }
        for (i = 0; i < o->warmup + o->count; i++) {
                int64_t t0, deadline;

                s.want_seq = i;
                s.got = 0;
                memcpy(msg, &i, o->size < 8 ? o->size : 8);
                t0 = now_ns();
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
                        /* The stall deadline needs no fine clock; the round
                         * trip itself is timed with now_ns(). */
                        left = deadline - now_coarse_ns();
                        if (left <= 0)
                                break;
                        if (!o->busy_poll)
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
                rtt[i] = now_ns() - t0;
                done++;
        }
        /* The warm-up round trips are not counted. */
        if (stalled || done <= o->warmup) {
                stalled = stalled || !done;
        } else {
                memmove(rtt, rtt + o->warmup, (done - o->warmup) * sizeof(*rtt));
                done -= o->warmup;
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
                report(o, rtt, done);
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
            {"busy-poll", no_argument, NULL, 'B'},
            {"warmup", required_argument, NULL, 'W'},
            {"timeout", required_argument, NULL, 'T'},
            {"help", no_argument, NULL, 'h'},
            {0, 0, 0, 0},
        };
        struct ping_opts o = {.count = 10000, .warmup = 1000, .size = 64, .stall_s = 1.0};
        const char *ctx = "ping";
        char opt[32];
        uint64_t v;
        int c;

        while ((c = getopt_long(argc, argv, "d:c:s:m:jvh", opts, NULL)) != -1) {
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
                case 'B':
                        o.busy_poll = 1;
                        break;
                case 'x':
                        o.tx_mode = cli_tx_mode(ctx, optarg);
                        if (o.tx_mode < 0)
                                return 2;
                        break;
                case 't':
                        if (cli_seconds(ctx, "--stall-timeout", optarg, 0, 1, 3600, &o.stall_s))
                                return 2;
                        break;
                case 'T':
                        if (cli_seconds(ctx, "--timeout", optarg, 0, 1, 86400, &o.timeout))
                                return 2;
                        break;
                case 'W':
                case 'c':
                case 's':
                case 'q':
                case 'm':
                        cli_optname(opts, c, opt, sizeof(opt));
                        if (c == 'c'   ? cli_uint(ctx, opt, optarg, 1, 100000000, &v)
                            : c == 'W' ? cli_uint(ctx, opt, optarg, 0, 100000000, &v)
                            : c == 's' ? cli_uint(ctx, opt, optarg, 1, 1u << 30, &v)
                            : c == 'q' ? cli_uint(ctx, opt, optarg, 0, 31, &v)
                                       : cli_uint(ctx, opt, optarg, 16, 1u << 30, &v))
                                return 2;
                        if (c == 'c')
                                o.count = v;
                        else if (c == 'W')
                                o.warmup = v;
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
        if (cli_two_sided_opts(ctx, argc, argv, optind, o.dev, o.server + o.client + o.loopback,
                               o.verbose, o.flags))
                return 2;
        if (o.loopback)
                return cli_run_loopback(ctx, o.dev, role_server, role_client, &o, NULL);
        return o.server ? run_server(ctx, &o) : run_client(ctx, &o);
}
