/* SPDX-License-Identifier: MIT */
/* ntbt ping: round trips over a queue pair; the server echoes, the client measures. */
#include <errno.h>
#include <math.h>
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
        struct cli_common c;
        int busy_poll;
        uint32_t size;
        uint64_t count, warmup;
        double stall_s;
};

/* The wait for the peer's link: --timeout, else 30 s (client) or for ever. */
static int64_t peer_wait_ns(const struct ping_opts *o, int client)
{
        return cli_timeout_ns(&o->c, client ? 30 * NS_PER_SEC : -1);
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

/* The round trips' distribution; rtt sorted. */
struct rtt_stats {
        double mean, stdev;
};

static struct rtt_stats rtt_stats(int64_t *rtt, uint64_t n)
{
        double mean = 0, var = 0;
        uint64_t i;

        qsort(rtt, n, sizeof(*rtt), cmp_i64);
        for (i = 0; i < n; i++)
                mean += (double)rtt[i];
        mean /= (double)n;
        for (i = 0; i < n; i++)
                var += ((double)rtt[i] - mean) * ((double)rtt[i] - mean);
        var = n > 1 ? var / (double)(n - 1) : 0;
        return (struct rtt_stats){mean, sqrt(var)};
}

static void report_json(const struct ping_opts *o, const int64_t *rtt, uint64_t n,
                        struct rtt_stats st)
{
        static uint64_t hist[HIST_BUCKETS];
        uint64_t i;
        int b;

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
               o->busy_poll ? "true" : "false", cli_tx_mode_name(o->c.tx_mode ? o->c.tx_mode : 1),
               (long long)rtt[0], (long long)pct(rtt, n, 0.5), (long long)pct(rtt, n, 0.9),
               (long long)pct(rtt, n, 0.99), (long long)pct(rtt, n, 0.999), (long long)rtt[n - 1],
               st.mean, st.stdev, (double)pct(rtt, n, 0.5) / 2);
        for (b = 0, i = 0; b < HIST_BUCKETS; b++)
                if (hist[b])
                        printf("%s[%llu,%llu]", i++ ? "," : "", (unsigned long long)hist_upper(b),
                               (unsigned long long)hist[b]);
        printf("]}\n");
}

static void report_text(const struct ping_opts *o, const int64_t *rtt, uint64_t n,
                        struct rtt_stats st)
{
        printf("%s: %u-byte messages, %llu round trips after %llu warm-up, %s\n", o->c.dev, o->size,
               (unsigned long long)n, (unsigned long long)o->warmup,
               o->busy_poll ? "busy-polling the ring" : "sleeping on the doorbell");
        printf("%-18s %9s %9s %9s %9s %9s %9s %9s %9s\n", "", "min", "p50", "p90", "p99", "p99.9",
               "max", "mean", "stdev");
        printf("%-18s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f\n", "round trip (us)",
               rtt[0] / 1e3, pct(rtt, n, 0.5) / 1e3, pct(rtt, n, 0.9) / 1e3,
               pct(rtt, n, 0.99) / 1e3, pct(rtt, n, 0.999) / 1e3, rtt[n - 1] / 1e3, st.mean / 1e3,
               st.stdev / 1e3);
        printf("%-18s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9s\n", "one-way, rtt/2 (us)",
               rtt[0] / 2e3, pct(rtt, n, 0.5) / 2e3, pct(rtt, n, 0.9) / 2e3,
               pct(rtt, n, 0.99) / 2e3, pct(rtt, n, 0.999) / 2e3, rtt[n - 1] / 2e3, st.mean / 2e3,
               "");
}

static void report(const struct ping_opts *o, int64_t *rtt, uint64_t n)
{
        struct rtt_stats st = rtt_stats(rtt, n);

        if (o->c.json)
                report_json(o, rtt, n, st);
        else
                report_text(o, rtt, n, st);
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

/* Open the endpoint (poll mode) and post 16 receive buffers: 0, or the
 * exit status after a message. */
static int ping_open(const char *ctx, const struct ping_opts *o, const struct ntbt_qp_handlers *h,
                     struct ping_state *s, struct cli_endpoint *e, uint8_t **bufs)
{
        struct cli_endpoint_opts eo = cli_endpoint_opts(&o->c);
        int rc;

        eo.poll = 1;
        eo.handlers = h;
        eo.handlers_ctx = s;
        rc = cli_endpoint_open(ctx, &eo, e);
        if (rc)
                return rc;
        *bufs = post_buffers(e->qp, s, 16);
        if (!*bufs) {
                cli_endpoint_close(e);
                return 1;
        }
        return 0;
}

static int run_server(const char *ctx, struct ping_opts *o)
{
        struct ntbt_qp_handlers h = {.rx = server_rx, .tx = server_tx_done, .event = ping_event};
        struct ping_state s = {.o = o, .buf_len = o->c.mtu ? o->c.mtu : 65536};
        struct cli_endpoint e;
        uint8_t *bufs;
        int rc;

        rc = ping_open(ctx, o, &h, &s, &e, &bufs);
        if (rc)
                return rc;
        if (cli_wait_peer(ctx, &e, peer_wait_ns(o, 0))) {
                cli_endpoint_close(&e);
                free(bufs);
                return 1;
        }
        while (!s.peer_closed && !s.link_lost) {
                if (ntbt_qp_poll(e.qp, 64) == 0 && !o->busy_poll && !s.peer_closed && !s.link_lost)
                        ntbt_qp_wait_rx(e.qp, 100 * NS_PER_MS);
        }
        if (s.link_lost) {
                cli_err(ctx, "%s: link lost", o->c.dev);
                rc = 1;
        }
        cli_endpoint_close(&e);
        free(bufs);
        return rc;
}

enum { ROUND_TRIP_OK, ROUND_TRIP_FAILED, ROUND_TRIP_STALLED };

/*
 * Round trip i: send msg stamped with i, wait for its echo until the stall
 * deadline.  ROUND_TRIP_OK with *rtt_ns, ROUND_TRIP_STALLED, or
 * ROUND_TRIP_FAILED after a message.
 */
static int round_trip(const char *ctx, const struct ping_opts *o, struct ping_state *s,
                      struct ntbt_qp *qp, uint8_t *msg, uint64_t i, int64_t *rtt_ns)
{
        int64_t stall_ns = (int64_t)(o->stall_s * 1e9), t0, deadline;
        int ret;

        s->want_seq = i;
        s->got = 0;
        memcpy(msg, &i, o->size < 8 ? o->size : 8);
        t0 = now_ns();
        deadline = t0 + stall_ns;
        while ((ret = ntbt_qp_tx_enqueue(qp, NULL, msg, o->size, 0)) == -EAGAIN)
                ret = ntbt_qp_wait_tx(qp, 1, stall_ns);
        if (ret) {
                cli_err(ctx, "%s: send: %s", o->c.dev, strerror(-ret));
                return ROUND_TRIP_FAILED;
        }
        while (!s->got && !s->link_lost && !s->peer_closed) {
                int64_t left;

                ntbt_qp_poll(qp, 1);
                if (s->got)
                        break;
                /* The stall deadline needs no fine clock; the round
                 * trip itself is timed with now_ns(). */
                left = deadline - now_coarse_ns();
                if (left <= 0)
                        break;
                if (!o->busy_poll)
                        ntbt_qp_wait_rx(qp, left);
        }
        if (!s->got && (s->link_lost || s->peer_closed)) {
                cli_err(ctx, "%s: link lost after %llu round trips", o->c.dev,
                        (unsigned long long)i);
                return ROUND_TRIP_FAILED;
        }
        if (!s->got)
                return ROUND_TRIP_STALLED;
        if (s->bad) {
                cli_err(ctx, "reply %llu differs from what was sent", (unsigned long long)i);
                return ROUND_TRIP_FAILED;
        }
        *rtt_ns = now_ns() - t0;
        return ROUND_TRIP_OK;
}

/* After done round trips (the warm-up's first), stalled or not: the report,
 * or what stalled.  0, or 1 when stalled. */
static int client_report(const struct ping_opts *o, int64_t *rtt, uint64_t done, int stalled)
{
        /* The warm-up round trips are not counted. */
        if (stalled || done <= o->warmup) {
                stalled = stalled || !done;
        } else {
                memmove(rtt, rtt + o->warmup, (done - o->warmup) * sizeof(*rtt));
                done -= o->warmup;
        }
        if (!stalled) {
                if (done)
                        report(o, rtt, done);
                return 0;
        }
        if (o->c.json)
                printf("{\"size\":%u,\"count\":%llu,\"stalled\":true}\n", o->size,
                       (unsigned long long)done);
        printf("stalled: no reply to message %llu within %.3f s%s\n", (unsigned long long)done,
               o->stall_s,
               o->c.flags & NTBT_TRANSPORT_UNSAFE_NO_FLUSH
                   ? " (the flush before the doorbell is off: the doorbell "
                     "overtook the DONE write)"
                   : "");
        return 1;
}

static int run_client(const char *ctx, struct ping_opts *o)
{
        struct ntbt_qp_handlers h = {.rx = client_rx, .event = ping_event};
        struct ping_state s = {.o = o, .buf_len = o->c.mtu ? o->c.mtu : 65536};
        struct cli_endpoint e;
        uint8_t *bufs, *msg = NULL;
        int64_t *rtt = NULL;
        uint64_t i;
        int rc, ret = ROUND_TRIP_OK;

        rc = ping_open(ctx, o, &h, &s, &e, &bufs);
        if (rc)
                return rc;
        rtt = calloc(o->count + o->warmup, sizeof(*rtt));
        msg = calloc(1, o->size);
        if (!rtt || !msg || cli_wait_peer(ctx, &e, peer_wait_ns(o, 1))) {
                rc = 1;
        } else if (o->size > ntbt_qp_max_payload(e.qp)) {
                cli_err(ctx, "--size %u is larger than the max payload %u", o->size,
                        ntbt_qp_max_payload(e.qp));
                rc = 2;
        } else {
                for (i = 0; i < o->warmup + o->count && ret == ROUND_TRIP_OK; i++)
                        ret = round_trip(ctx, o, &s, e.qp, msg, i, &rtt[i]);
                /* i: one past the last round trip tried */
                if (ret == ROUND_TRIP_FAILED)
                        rc = 1;
                else
                        rc = client_report(o, rtt, ret == ROUND_TRIP_OK ? i : i - 1,
                                           ret == ROUND_TRIP_STALLED);
                if (ret == ROUND_TRIP_OK)
                        ntbt_qp_link_down(e.qp); /* the server exits on this */
        }
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

        o.c.dev = spec;
        return run_server(ctx, &o);
}

static int role_client(const char *ctx, const char *spec, void *arg)
{
        struct ping_opts o = *(struct ping_opts *)arg;

        o.c.dev = spec;
        return run_client(ctx, &o);
}

static int ping_option(const struct cli_cmd *cmd, int c, const char *arg, void *own)
{
        struct ping_opts *o = own;
        uint64_t v;

        switch (c) {
        case 'B':
                o->busy_poll = 1;
                return 0;
        case 't':
                return cli_seconds(cmd->ctx, "--stall-timeout", arg, 0, 1, 3600, &o->stall_s) ? 2
                                                                                              : 0;
        case 'c':
        case 'W':
        case 's':
                if (c == 'c'   ? cli_opt_uint(cmd, c, arg, 1, 100000000, &v)
                    : c == 'W' ? cli_opt_uint(cmd, c, arg, 0, 100000000, &v)
                               : cli_opt_uint(cmd, c, arg, 1, 1u << 30, &v))
                        return 2;
                if (c == 'c')
                        o->count = v;
                else if (c == 'W')
                        o->warmup = v;
                else
                        o->size = (uint32_t)v;
                return 0;
        }
        return CLI_NOT_MINE;
}

int cmd_ping(int argc, char **argv)
{
        static const struct option opts[] = {
            CLI_O_DEV,
            CLI_O_ROLES,
            {"count", required_argument, NULL, 'c'},
            {"size", required_argument, NULL, 's'},
            {"stall-timeout", required_argument, NULL, 't'},
            CLI_O_QP,
            CLI_O_MTU,
            CLI_O_JSON,
            CLI_O_UNSAFE,
            CLI_O_VERBOSE,
            CLI_O_TX,
            {"busy-poll", no_argument, NULL, 'B'},
            {"warmup", required_argument, NULL, 'W'},
            CLI_O_TIMEOUT,
            CLI_O_HELP,
            CLI_O_END,
        };
        static const struct cli_cmd cmd = {.ctx = "ping",
                                           .usage = ping_usage,
                                           .shortopts = "d:c:s:m:jvh",
                                           .opts = opts,
                                           .mtu_lo = 16,
                                           .two_sided = 1,
                                           .option = ping_option};
        struct ping_opts o = {.count = 10000, .warmup = 1000, .size = 64, .stall_s = 1.0};
        int rc;

        rc = cli_parse(&cmd, argc, argv, &o.c, &o);
        if (rc != CLI_RUN)
                return rc;
        cli_start(cmd.ctx, &o.c);
        if (o.c.loopback)
                return cli_run_loopback(cmd.ctx, o.c.dev, role_server, role_client, &o, NULL);
        return o.c.server ? run_server(cmd.ctx, &o) : run_client(cmd.ctx, &o);
}
