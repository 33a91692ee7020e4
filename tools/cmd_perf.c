/* SPDX-License-Identifier: MIT */
/* ntbt perf: one-way throughput over a queue pair (first form). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "cli.h"
#include "crc32c.h"

static const char perf_usage[] =
    "usage: ntbt perf --dev DEV (--server | --client | --loopback) [--size BYTES]\n"
    "                 [--time SECS] [--tx inline|thread] [--work NS] [--qp N]\n"
    "                 [--mtu BYTES] [--json] [--unsafe-no-flush]\n"
    "\n"
    "One-way throughput over queue pair N (default 0).  The client sends messages of\n"
    "--size bytes (default: the QP's max payload) for --time seconds (default 2),\n"
    "then waits until the server has taken every one.  --work NS makes the client\n"
    "spend NS nanoseconds per KiB producing each message (a pattern fill plus a\n"
    "spin), modelling an application that produces its data; with --tx thread the\n"
    "copy into the window runs on the QP's copy thread meanwhile.  The server counts\n"
    "what arrives and exits when the client closes.  --loopback forks the server on\n"
    "a fresh private device named after DEV and removes it afterwards.  --json prints\n"
    "one object per size: size, msgs, bytes, seconds, bytes_per_sec, msgs_per_sec,\n"
    "tx_mode, work_ns_per_kib, errors.\n"
    "\n"
    "--size takes one size, a list (64,1024,65524) or a range LO:HI (the powers of two\n"
    "between, and both ends); a list or range needs --loopback (one private run per\n"
    "size).  --verify: every message carries its sequence number and a CRC32C of its\n"
    "bytes (messages under 12 bytes: a pattern of the sequence number), and the\n"
    "server fails the run on any mismatch, gap or duplicate.\n";

#define POOL 64

struct perf_opts {
        const char *dev;
        int server, client, loopback, json, verbose, qp, tx_mode, verify;
        uint32_t mtu, size, flags;
        uint32_t sizes[64];
        int nsizes;
        uint64_t debug_corrupt; /* test hook: damage message N after its CRC (1-based) */
        double seconds;
        uint64_t work_ns;
};

struct perf_state {
        uint32_t buf_len;
        uint64_t completed; /* atomic */
        int tx_errors;      /* atomic */
        int peer_closed, link_lost;
        uint64_t rx_msgs, rx_bytes;
        int verify;
        uint64_t expect_seq, verify_errors; /* server, --verify (event thread) */
};

static int64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void perf_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        struct perf_state *s = ctx;

        (void)qp;
        if (up)
                return;
        if (reason == NTBT_QP_DOWN_PEER)
                __atomic_store_n(&s->peer_closed, 1, __ATOMIC_SEQ_CST);
        else
                __atomic_store_n(&s->link_lost, reason, __ATOMIC_SEQ_CST);
}

/* --verify layout: seq (8 bytes), CRC32C of seq and the rest (4), data. */
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

/* Server side of --verify: the next message must be expect_seq, intact. */
static void verify_msg(struct perf_state *s, const uint8_t *data, uint32_t len)
{
        uint64_t seq = s->expect_seq;
        uint32_t crc;

        if (len < VHDR) {
                uint8_t want[VHDR];

                small_pattern(want, len, seq);
                if (memcmp(want, data, len))
                        s->verify_errors++;
        } else {
                memcpy(&seq, data, 8);
                memcpy(&crc, data + 8, 4);
                if (seq != s->expect_seq || crc != verify_crc(data, len))
                        s->verify_errors++;
        }
        /* Resynchronise on the sequence number carried, so one gap counts once. */
        s->expect_seq = seq + 1;
}

static void server_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct perf_state *s = ctx;

        (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        if (len > 0) {
                s->rx_msgs++;
                s->rx_bytes += (uint64_t)len;
                if (s->verify)
                        verify_msg(s, data, (uint32_t)len);
        } else if (s->verify) {
                s->verify_errors++; /* an oversize frame */
        }
        ntbt_qp_rx_enqueue(qp, NULL, data, s->buf_len);
}

static void client_tx_done(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len)
{
        struct perf_state *s = ctx;

        (void)qp, (void)buf_ctx, (void)data;
        if (len < 0)
                __atomic_add_fetch(&s->tx_errors, 1, __ATOMIC_RELAXED);
        /* Release: the pool slot is reused only after the transport let go. */
        __atomic_add_fetch(&s->completed, 1, __ATOMIC_RELEASE);
}

static int run_server(const char *ctx, struct perf_opts *o)
{
        struct ntbt_qp_handlers h = {.rx = server_rx, .event = perf_event};
        struct perf_state s = {.buf_len = o->mtu ? o->mtu : 65536, .verify = o->verify};
        struct cli_endpoint e;
        uint8_t *bufs;
        int i, rc = 0;

        if (cli_endpoint_open(ctx, o->dev, o->qp, o->mtu, 0, o->flags, 0, 0, &h, &s, &e))
                return 1;
        bufs = malloc((size_t)POOL * s.buf_len);
        if (!bufs) {
                cli_endpoint_close(&e);
                return 1;
        }
        for (i = 0; i < POOL; i++)
                ntbt_qp_rx_enqueue(e.qp, NULL, bufs + (size_t)i * s.buf_len, s.buf_len);
        /* The event thread receives; wait for the client's close. */
        while (!__atomic_load_n(&s.peer_closed, __ATOMIC_SEQ_CST) &&
               !__atomic_load_n(&s.link_lost, __ATOMIC_SEQ_CST))
                nanosleep(&(struct timespec){0, 10 * 1000000}, NULL);
        if (__atomic_load_n(&s.link_lost, __ATOMIC_SEQ_CST)) {
                cli_err(ctx, "%s: link lost", o->dev);
                rc = 1;
        }
        cli_endpoint_close(&e);
        if (o->verbose || s.verify_errors)
                fprintf(stderr, "ntbt: %s: %llu messages, %llu bytes%s\n", ctx,
                        (unsigned long long)s.rx_msgs, (unsigned long long)s.rx_bytes,
                        o->verify ? (s.verify_errors ? ", VERIFY FAILED" : ", verified") : "");
        if (s.verify_errors) {
                cli_err(ctx, "verify: %llu damaged, missing or repeated messages",
                        (unsigned long long)s.verify_errors);
                rc = 1;
        }
        free(bufs);
        return rc;
}

/* Produce a message: a pattern, then spin until work_ns per KiB has passed. */
static void produce(uint8_t *buf, uint32_t size, uint64_t seq, uint64_t work_ns, int verify)
{
        int64_t until = mono_ns() + (int64_t)(work_ns * size / 1024);
        uint64_t v = seq * 0x9e3779b97f4a7c15ull;
        uint32_t i;

        for (i = 0; i + 8 <= size; i += 8, v++)
                memcpy(buf + i, &v, 8);
        if (verify && size < VHDR) {
                small_pattern(buf, size, seq);
        } else if (verify) {
                uint32_t crc;

                memcpy(buf, &seq, 8);
                crc = verify_crc(buf, size);
                memcpy(buf + 8, &crc, 4);
        }
        while (work_ns && mono_ns() < until)
                ;
}

static uint64_t qp_errors(struct ntbt_qp *qp)
{
        struct ntbt_qp_stats st = {.size = sizeof(st)};

        if (ntbt_qp_stats(qp, &st))
                return 0;
        return st.rx_err_oflow + st.rx_err_ver + st.rx_err_flags + st.tx_err_rri + st.resets;
}

static int run_client(const char *ctx, struct perf_opts *o)
{
        struct ntbt_qp_handlers h = {.tx = client_tx_done, .event = perf_event};
        struct perf_state s = {.buf_len = o->mtu ? o->mtu : 65536};
        struct cli_endpoint e;
        uint64_t msgs = 0, errors;
        int64_t t0, t_end, t_done;
        uint8_t *pool = NULL;
        uint32_t size;
        double secs;
        int ret, rc = 0;

        if (cli_endpoint_open(ctx, o->dev, o->qp, o->mtu, 0, o->flags, 1, o->tx_mode, &h, &s, &e))
                return 1;
        if (ntbt_qp_wait_link(e.qp, 30 * 1000000000LL)) {
                cli_err(ctx, "%s: no peer within 30 s (is the server running?)", o->dev);
                rc = 1;
                goto out;
        }
        size = o->size ? o->size : ntbt_qp_max_payload(e.qp);
        if (size > ntbt_qp_max_payload(e.qp)) {
                cli_err(ctx, "--size %u is larger than the max payload %u", size,
                        ntbt_qp_max_payload(e.qp));
                rc = 2;
                goto out;
        }
        pool = malloc((size_t)POOL * size);
        if (!pool) {
                rc = 1;
                goto out;
        }
        t0 = mono_ns();
        t_end = t0 + (int64_t)(o->seconds * 1e9);
        while (mono_ns() < t_end) {
                uint8_t *buf = pool + (msgs % POOL) * size;

                while (msgs >= POOL &&
                       __atomic_load_n(&s.completed, __ATOMIC_ACQUIRE) <= msgs - POOL)
                        ntbt_qp_wait_tx(e.qp, 1, 1000000);
                produce(buf, size, msgs, o->work_ns, o->verify);
                if (o->debug_corrupt && msgs + 1 == o->debug_corrupt)
                        buf[size - 1] ^= 0x40; /* after its CRC: the server must notice */
                while ((ret = ntbt_qp_tx_enqueue(e.qp, NULL, buf, size, 0)) == -EAGAIN)
                        ret = ntbt_qp_wait_tx(e.qp, 1, 5 * 1000000000LL);
                if (ret) {
                        cli_err(ctx, "%s: send: %s after %llu messages", o->dev, strerror(-ret),
                                (unsigned long long)msgs);
                        rc = 1;
                        goto out;
                }
                msgs++;
        }
        /* Done when the server has taken every message. */
        if (ntbt_qp_wait_tx(e.qp, ntbt_qp_tx_entries(e.qp) - 1, 30 * 1000000000LL)) {
                cli_err(ctx, "%s: the server did not take every message", o->dev);
                rc = 1;
                goto out;
        }
        t_done = mono_ns();
        secs = (double)(t_done - t0) / 1e9;
        errors = qp_errors(e.qp) + (uint64_t)__atomic_load_n(&s.tx_errors, __ATOMIC_RELAXED);
        if (o->json)
                printf("{\"size\":%u,\"msgs\":%llu,\"bytes\":%llu,\"seconds\":%.6f,"
                       "\"bytes_per_sec\":%.0f,\"msgs_per_sec\":%.0f,\"tx_mode\":\"%s\","
                       "\"work_ns_per_kib\":%llu,\"errors\":%llu}\n",
                       size, (unsigned long long)msgs, (unsigned long long)(msgs * size), secs,
                       (double)msgs * size / secs, (double)msgs / secs,
                       cli_tx_mode_name(ntbt_qp_tx_mode(e.qp)), (unsigned long long)o->work_ns,
                       (unsigned long long)errors);
        else
                printf("%s: %u-byte messages, %s copy, work %llu ns/KiB: %llu messages in "
                       "%.2f s, %.3f GB/s, %.3f M msg/s, errors %llu\n",
                       o->dev, size, cli_tx_mode_name(ntbt_qp_tx_mode(e.qp)),
                       (unsigned long long)o->work_ns, (unsigned long long)msgs, secs,
                       (double)msgs * size / secs / 1e9, (double)msgs / secs / 1e6,
                       (unsigned long long)errors);
        if (errors)
                rc = 1;
        ntbt_qp_link_down(e.qp); /* the server exits on this */
out:
        fflush(stdout);
        cli_endpoint_close(&e);
        free(pool);
        return rc;
}

static int role_server(const char *ctx, const char *spec, void *arg)
{
        struct perf_opts o = *(struct perf_opts *)arg;

        o.dev = spec;
        return run_server(ctx, &o);
}

static int role_client(const char *ctx, const char *spec, void *arg)
{
        struct perf_opts o = *(struct perf_opts *)arg;

        o.dev = spec;
        return run_client(ctx, &o);
}

/* --size: N, N,M,..., or LO:HI (powers of two between, and both ends). */
static int parse_sizes(const char *ctx, const char *arg, struct perf_opts *o)
{
        char buf[512], *tok, *save = NULL, *colon;
        uint64_t lo, hi, p;

        snprintf(buf, sizeof(buf), "%s", arg);
        o->nsizes = 0;
        colon = strchr(buf, ':');
        if (colon) {
                *colon = '\0';
                if (cli_size(ctx, "--size", buf, &lo) || cli_size(ctx, "--size", colon + 1, &hi))
                        return -1;
                if (lo < 1 || hi < lo || hi > (1u << 30)) {
                        cli_err(ctx, "bad --size range %s", arg);
                        return -1;
                }
                o->sizes[o->nsizes++] = (uint32_t)lo;
                for (p = 1; p <= hi && o->nsizes < 63; p <<= 1)
                        if (p > lo && p < hi)
                                o->sizes[o->nsizes++] = (uint32_t)p;
                if (hi > lo)
                        o->sizes[o->nsizes++] = (uint32_t)hi;
                return 0;
        }
        for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (o->nsizes == 64 || cli_size(ctx, "--size", tok, &p) || p < 1 ||
                    p > (1u << 30)) {
                        cli_err(ctx, "bad --size '%s'", arg);
                        return -1;
                }
                o->sizes[o->nsizes++] = (uint32_t)p;
        }
        return o->nsizes ? 0 : -1;
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
            {"qp", required_argument, NULL, 'q'},
            {"mtu", required_argument, NULL, 'm'},
            {"json", no_argument, NULL, 'j'},
            {"unsafe-no-flush", no_argument, NULL, 'U'},
            {"verify", no_argument, NULL, 'V'},
            {"debug-corrupt", required_argument, NULL, 'D'},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {0, 0, 0, 0},
        };
        struct perf_opts o = {.seconds = 2.0};
        const char *ctx = "perf";
        uint64_t v;
        char *end;
        int c;

        while ((c = getopt_long(argc, argv, "d:s:t:q:m:jvh", opts, NULL)) != -1) {
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
                case 'V':
                        o.verify = 1;
                        break;
                case 'D':
                        o.debug_corrupt = strtoull(optarg, NULL, 0);
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
                        o.seconds = strtod(optarg, &end);
                        if (*end || !(o.seconds > 0 && o.seconds <= 3600)) {
                                cli_err(ctx, "bad --time '%s' (seconds)", optarg);
                                return 2;
                        }
                        break;
                case 's':
                        if (parse_sizes(ctx, optarg, &o))
                                return 2;
                        break;
                case 'w':
                case 'q':
                case 'm':
                        if (cli_size(ctx, argv[optind - 1], optarg, &v))
                                return 2;
                        if ((c == 's' && (v < 1 || v > (1u << 30))) || (c == 'q' && v >= 32) ||
                            (c == 'm' && (v < 16 || v > (1u << 30))) ||
                            (c == 'w' && v > 1000000000)) {
                                cli_err(ctx, "%s %s is out of range", argv[optind - 1], optarg);
                                return 2;
                        }
                        if (c == 'w')
                                o.work_ns = v;
                        else if (c == 'q')
                                o.qp = (int)v;
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
                fprintf(stderr, "ntbt: perf: UNSAFE: --unsafe-no-flush: the doorbell may "
                                "overtake the DONE write; for demonstrations only\n");
        if (o.nsizes > 1 && !o.loopback) {
                cli_err(ctx, "a list or range of sizes needs --loopback");
                return 2;
        }
        if (o.loopback) {
                int i, rc = 0;

                for (i = 0; i < (o.nsizes ? o.nsizes : 1) && !rc; i++) {
                        o.size = o.nsizes ? o.sizes[i] : 0;
                        rc = cli_run_loopback(ctx, o.dev, role_server, role_client, &o);
                }
                return rc;
        }
        o.size = o.nsizes ? o.sizes[0] : 0;
        return o.server ? run_server(ctx, &o) : run_client(ctx, &o);
}
