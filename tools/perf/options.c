/* SPDX-License-Identifier: MIT */
/* ntbt perf's command line (perf.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "../util.h"
#include "perf.h"

static const char perf_usage[] =
    "usage: ntbt perf -d|--dev DEV (--server | --client | --loopback)\n"
    "                 [-s|--size SIZES] [-t|--time SECS] [-P|--qps N] [--rx-threads N]\n"
    "                 [--bidir] [--tx inline|thread] [--zc] [--verify] [--work NS]\n"
    "                 [-m|--mtu BYTES]\n"
    "                 [-i|--interval SECS] [-j|--json | --json-lines]\n"
    "                 [--timeout SECS] [--unsafe-no-flush] [-v|--verbose]\n"
    "\n"
    "Throughput and message rate over N queue pairs (default 1), one sender thread\n"
    "each.  For every size the client sends for --time seconds (default 1), then\n"
    "waits until the server has taken every message, and prints a row: size,\n"
    "messages, GB/s, Gbit/s, M msg/s, the enqueue cost per message (bursts of 16\n"
    "below 32 KiB, single messages from 32 KiB on, 4 with --zc), the CPU\n"
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
    "    --rx-threads N  threads receiving for the queue pairs, 0-32 (default 0:\n"
    "                    one per queue pair up to half the CPUs); each side its\n"
    "                    own (--loopback: both).\n"
    "    --bidir         the server sends to the client at the same time.\n"
    "    --tx MODE       inline: the sender copies into the window; thread: the QP's\n"
    "                    copy thread does (tx_memcpy_offload).\n"
    "    --zc            zero copy, both sides: the client writes each message\n"
    "                    whole into a buffer ntbt_qp_tx_reserve_burst gives (the\n"
    "                    slot in the peer's window on shm; a staging buffer on\n"
    "                    pcie), bursts of 16 below 32 KiB and of 4 from there,\n"
    "                    and commits them together; the server reads them in place\n"
    "                    (ntbt_qp_rx_get/release, one poll thread per queue pair).\n"
    "                    Not with --bidir or --tx thread.\n"
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
    "                    parameters (version, command, dev, role, qps, rx_threads\n"
    "                    (as given), bidir, tx_mode, zc, verify, seconds_per_size,\n"
    "                    mtu, work_ns_per_kib,\n"
    "                    sizes), results (one object per size, the fields of\n"
    "                    --json-lines, and per_qp, each queue pair's share, when\n"
    "                    --qps > 1) and failed.\n"
    "    --json-lines    one object per line, per size as it ends: size, qps,\n"
    "                    rx_threads (the client's, resolved), bidir, tx_mode, zc,\n"
    "                    msgs, bytes, seconds, bytes_per_sec, gbit_per_sec,\n"
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
/* The default sweep: 64, 128, ... below the max payload, then the max. */
static void default_sizes(struct perf_opts *o)
{
        uint32_t max = (o->c.mtu ? o->c.mtu : 65536) - 12, p;

        o->nsizes = 0;
        for (p = 64; p < max && o->nsizes < MAX_SIZES - 1; p <<= 1)
                o->sizes[o->nsizes++] = p;
        o->sizes[o->nsizes++] = 0;
}
static int perf_option(const struct cli_cmd *cmd, int c, const char *arg, void *own)
{
        struct perf_opts *o = own;
        const char *ctx = cmd->ctx;
        uint64_t v;

        switch (c) {
        case 'J':
                o->json_lines = 1;
                return 0;
        case 'B':
                o->bidir = 1;
                return 0;
        case 'V':
                o->verify = 1;
                return 0;
        case 'Z':
                o->zc = 1;
                return 0;
        case 'D':
                return cli_opt_uint(cmd, c, arg, 1, UINT64_MAX, &o->debug_corrupt) ? 2 : 0;
        case 't':
                return cli_seconds(ctx, "--time", arg, 0, 1, 3600, &o->seconds) ? 2 : 0;
        case 'i':
                return cli_seconds(ctx, "--interval", arg, 0, 0, 3600, &o->interval) ? 2 : 0;
        case 's':
                return parse_sizes(ctx, arg, o) ? 2 : 0;
        case 'w':
                return cli_opt_uint(cmd, c, arg, 0, 1000000000, &o->work_ns) ? 2 : 0;
        case 'R':
                if (cli_opt_uint(cmd, c, arg, 0, NTBT_MAX_QPS, &v))
                        return 2;
                o->rx_threads = (uint32_t)v;
                return 0;
        case 'P':
                if (cli_opt_uint(cmd, c, arg, 1, NTBT_MAX_QPS, &v))
                        return 2;
                o->qps = (int)v;
                return 0;
        }
        return CLI_NOT_MINE;
}

static int perf_check(const struct cli_cmd *cmd, void *own)
{
        const struct perf_opts *o = own;

        if (o->c.json && o->json_lines) {
                cli_err(cmd->ctx, "choose one of --json (one document) and --json-lines");
                return 2;
        }
        if (o->zc && (o->bidir || o->c.tx_mode == NTBT_TX_THREAD)) {
                cli_err(cmd->ctx, "--zc sends one way, inline: not with %s",
                        o->bidir ? "--bidir" : "--tx thread");
                return 2;
        }
        return CLI_RUN;
}

int perf_parse(int argc, char **argv, struct perf_opts *o)
{
        static const struct option opts[] = {
            CLI_O_DEV,
            CLI_O_ROLES,
            {"size", required_argument, NULL, 's'},
            {"time", required_argument, NULL, 't'},
            CLI_O_TX,
            {"work", required_argument, NULL, 'w'},
            {"qps", required_argument, NULL, 'P'},
            {"bidir", no_argument, NULL, 'B'},
            {"rx-threads", required_argument, NULL, 'R'},
            CLI_O_MTU,
            {"interval", required_argument, NULL, 'i'},
            CLI_O_TIMEOUT,
            CLI_O_JSON,
            {"json-lines", no_argument, NULL, 'J'},
            CLI_O_UNSAFE,
            {"verify", no_argument, NULL, 'V'},
            {"zc", no_argument, NULL, 'Z'},
            {"debug-corrupt", required_argument, NULL, 'D'},
            CLI_O_VERBOSE,
            CLI_O_HELP,
            CLI_O_END,
        };
        static const struct cli_cmd cmd = {.ctx = "perf",
                                           .usage = perf_usage,
                                           .shortopts = "d:s:t:P:m:i:jvh",
                                           .opts = opts,
                                           .mtu_lo = 32,
                                           .two_sided = 1,
                                           .option = perf_option,
                                           .check = perf_check};
        int rc = cli_parse(&cmd, argc, argv, &o->c, o);

        o->output = o->c.json ? PERF_OUT_JSON : o->json_lines ? PERF_OUT_JSON_LINES : PERF_OUT_TEXT;
        o->user_dev = o->c.dev;
        return rc;
}

/*
 * The client's sizes, each checked before the first run: a frame of --mtu
 * bytes (default 65536) carries at most mtu - 12 (the header).  A smaller
 * window can lower it further; run_client says so at link-up.  0, or 2
 * after a message.
 */
int perf_sizes(const char *ctx, struct perf_opts *o)
{
        uint32_t mtu = o->c.mtu ? o->c.mtu : 65536, max = mtu - 12;

        if (!o->nsizes)
                default_sizes(o);
        for (int i = 0; i < o->nsizes; i++) {
                if (o->sizes[i] > max) {
                        cli_err(ctx,
                                "--size %u is larger than the largest payload, %u (the frame "
                                "of --mtu %u less its 12-byte header); say 'max' for it",
                                o->sizes[i], max, mtu);
                        return 2;
                }
        }
        if (o->interval < 0)
                o->interval = !o->output && isatty(STDOUT_FILENO) ? 1.0 : 0.0;
        return 0;
}
