/* SPDX-License-Identifier: MIT */
/* ntbt dev create|rm|show: administration of emulated (shm) devices. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "../src/util/clock.h"
#include "cli.h"

static const char dev_usage[] =
    "usage: ntbt dev create NAME [--mw-count N] [--mw-size SIZE] [--spad-count N]\n"
    "                            [--db-bits N] [--xlat-align SIZE]\n"
    "                            [--heartbeat-ms MS] [--remote-timeout-ms MS]\n"
    "       ntbt dev rm NAME\n"
    "       ntbt dev show NAME [--json] [--watch [SECS]] [--count N]\n"
    "       ntbt dev show kdev:DEV [--json]\n"
    "\n"
    "Create, remove or inspect an emulated NTB device (spec/shm-device.md, format 2).\n"
    "show prints the device registers and, for each port where a transport runs,\n"
    "its queue pairs: link state, copy mode, and the kernel's debugfs counters\n"
    "(spec section 8) with ntbt's own, as the transport publishes them live\n"
    "(docs/stats.md).  --watch refreshes every SECS seconds (default 1) with the\n"
    "rates since the last look, until interrupted or --count N refreshes.\n"
    "NAME is 1-64 of [A-Za-z0-9_.-] (the object /dev/shm/ntbt-NAME) or an absolute path.\n"
    "Sizes take K, M and G suffixes.  Defaults: 2 windows of 4M, 16 scratchpads,\n"
    "16 doorbell bits, xlat-align 4K, heartbeat every 100 ms, a silent remote owner\n"
    "(a QEMU guest) gone after 1000 ms.  The file is a power of two in size so that\n"
    "QEMU can map it as the BAR of an ivshmem-plain device.\n"
    "show lists each port's owner (a process of this host, or remote) and how soon\n"
    "its heartbeat moved (it waits up to remote-timeout-ms for that).\n"
    "show kdev:/dev/ntbt-userN (or kdev:NTBDEV) shows an NTB that Linux drives,\n"
    "through the ntb_user bridge: the hardware, its windows, doorbells and\n"
    "scratchpads (docs/hardware.md).\n";

static int dev_create(int argc, char **argv)
{
        static const struct option opts[] = {
            {"mw-count", required_argument, NULL, 'w'},
            {"mw-size", required_argument, NULL, 's'},
            {"spad-count", required_argument, NULL, 'p'},
            {"db-bits", required_argument, NULL, 'd'},
            {"xlat-align", required_argument, NULL, 'a'},
            {"heartbeat-ms", required_argument, NULL, 'b'},
            {"remote-timeout-ms", required_argument, NULL, 't'},
            {"help", no_argument, NULL, 'h'},
            {0, 0, 0, 0},
        };
        struct ntbt_shm_geom g = {.size = sizeof(g)};
        const char *ctx = "dev create";
        uint64_t v;
        int c, ret, li = 0;
        /* The option's own name for messages (argv[optind - 1] is its value
         * when the value came as a separate word). */
        char opt[32];

        while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
                if (c != 'h' && c != '?')
                        snprintf(opt, sizeof(opt), "--%s", opts[li].name);
                switch (c) {
                case 'h':
                        fputs(dev_usage, stdout);
                        return 0;
                case 'w':
                case 'p':
                case 'd':
                case 'b':
                case 't': {
                        /* Counts up to 64; milliseconds up to the spec's 60000. */
                        uint32_t *field = c == 'w'   ? &g.mw_count
                                          : c == 'p' ? &g.spad_count
                                          : c == 'd' ? &g.db_bits
                                          : c == 'b' ? &g.heartbeat_ms
                                                     : &g.remote_timeout_ms;
                        uint64_t max = c == 'b' || c == 't' ? 60000 : 64;

                        if (cli_size(ctx, opt, optarg, &v))
                                return 2;
                        if (v == 0 || v > max) {
                                cli_err(ctx, "%s %s is out of range", opt, optarg);
                                return 2;
                        }
                        *field = (uint32_t)v;
                        break;
                }
                case 's':
                case 'a':
                        if (cli_size(ctx, opt, optarg, &v))
                                return 2;
                        if (v == 0) {
                                cli_err(ctx, "%s must not be 0", opt);
                                return 2;
                        }
                        if (c == 's')
                                g.mw_size = v;
                        else
                                g.xlat_align = v;
                        break;
                default:
                        fputs(dev_usage, stderr);
                        return 2;
                }
        }
        if (optind != argc - 1) {
                cli_err(ctx, "expected one device NAME");
                return 2;
        }
        ret = ntbt_shm_create(argv[optind], &g);
        if (ret) {
                cli_err(ctx, "%s: %s", argv[optind], strerror(-ret));
                return 1;
        }
        return 0;
}

static int dev_rm(int argc, char **argv)
{
        int ret;

        if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
                fputs(dev_usage, stdout);
                return 0;
        }
        if (argc != 2 || argv[1][0] == '-') {
                cli_err("dev rm", "expected one device NAME");
                return 2;
        }
        ret = cli_remove_device(argv[1]); /* and statistics a killed transport left */
        if (ret) {
                cli_err("dev rm", "%s: %s", argv[1], strerror(-ret));
                return 1;
        }
        return 0;
}

static const char *port_state(const struct ntbt_shm_port_info *p)
{
        if (p->state == 0)
                return "free";
        if (p->state == 1)
                return p->alive ? "claimed" : "claimed (owner gone)";
        return "invalid";
}

static const char *owner_kind_name(uint32_t kind)
{
        static const char *const names[] = {"none", "process", "remote"};

        return kind < 3 ? names[kind] : "invalid";
}

static void fmt_hb_age(const struct ntbt_shm_port_info *p, uint32_t timeout_ms, char *buf,
                       size_t len)
{
        if (p->heartbeat_age_ms >= 0)
                snprintf(buf, len, "moved within %d ms", p->heartbeat_age_ms);
        else if (p->state == 1)
                snprintf(buf, len, "still for %u ms", timeout_ms);
        else
                snprintf(buf, len, "-");
}

static const char *const state_names[] = {"down", "waiting for the peer", "handshake", "up"};

/* The previous look, for --watch rates. */
static struct ntbt_stats prev_st[2];
static int have_prev[2];

static void show_stats_text(int port, const struct ntbt_stats *st, double dt)
{
        uint32_t i;
        int k;

        printf("    transport: pid %d%s, %s\n", st->pid, st->alive ? "" : " (exited: stale)",
               st->transport_up ? "linked" : "not linked (handshake pending)");
        for (i = 0; i < st->qp_count; i++) {
                const struct ntbt_stats_qp *q = &st->qp[i];

                if (!q->present) {
                        printf("    qp %u: not created\n", i);
                        continue;
                }
                printf("    qp %u: %s, %s mode, %s copy, updated %.0f ms ago", i,
                       state_names[q->state], q->poll_mode ? "poll" : "event",
                       cli_tx_mode_name(q->tx_mode), (double)q->age_ns / 1e6);
                if (dt > 0 && have_prev[port] && prev_st[port].qp[i].present) {
                        const struct ntbt_stats_qp *o = &prev_st[port].qp[i];

                        printf(", rx %.3f GB/s %.3f M pkt/s, tx %.3f GB/s %.3f M pkt/s",
                               (double)(q->c[0] - o->c[0]) / dt / 1e9,
                               (double)(q->c[1] - o->c[1]) / dt / 1e6,
                               (double)(q->c[10] - o->c[10]) / dt / 1e9,
                               (double)(q->c[11] - o->c[11]) / dt / 1e6);
                }
                printf("\n");
                for (k = 0; k < NTBT_STATS_COUNTERS; k++) {
                        int end = k % 4 == 3 || k == NTBT_STATS_COUNTERS - 1;

                        printf("%s%-14s %-*llu%s", k % 4 ? "" : "      ",
                               ntbt_stats_counter_name(k), end ? 1 : 14,
                               (unsigned long long)q->c[k], end ? "\n" : "");
                }
        }
}

static void show_text(const char *name, const struct ntbt_shm_info *in, const struct ntbt_stats *st,
                      const int *has_st, double dt)
{
        char b1[32], b2[32];
        uint32_t i;
        int p;

        printf("device %s: shm format %u, %llu bytes\n", name, in->format,
               (unsigned long long)in->file_bytes);
        printf("  windows      %u x %s (xlat_align %s)\n", in->mw_count,
               cli_fmt_bytes(in->mw_size, b1, sizeof(b1)),
               cli_fmt_bytes(in->xlat_align, b2, sizeof(b2)));
        printf("  scratchpads  %u\n", in->spad_count);
        printf("  doorbells    %d bits (valid mask 0x%llx)\n",
               __builtin_popcountll(in->db_valid_mask), (unsigned long long)in->db_valid_mask);
        printf("  liveness     heartbeat every %u ms, remote owner gone after %u ms\n",
               in->heartbeat_ms, in->remote_timeout_ms);
        printf("  link         %s (link_seq %u)\n", in->link_up ? "up" : "down", in->link_seq);
        for (p = 0; p < 2; p++) {
                const struct ntbt_shm_port_info *pi = &in->port[p];
                char age[48];

                fmt_hb_age(pi, in->remote_timeout_ms, age, sizeof(age));
                printf("  port %d: %s, owner %s, pid %u, generation %u, link_enabled %u\n", p,
                       port_state(pi), owner_kind_name(pi->owner_kind), pi->pid, pi->generation,
                       pi->link_enabled);
                printf("    heartbeat %u (%s)\n", pi->heartbeat, age);
                printf("    doorbell 0x%llx, mask 0x%llx, db_seq %u, sleepers %u\n",
                       (unsigned long long)pi->db, (unsigned long long)pi->db_mask, pi->db_seq,
                       pi->db_sleepers);
                for (i = 0; i < in->spad_count; i++)
                        if (pi->spad[i])
                                printf("    spad[%u] = 0x%08x (%u)\n", i, pi->spad[i], pi->spad[i]);
                for (i = 0; i < in->mw_count; i++)
                        if (pi->xlat_size[i])
                                printf("    mw%u translation %llu bytes\n", i,
                                       (unsigned long long)pi->xlat_size[i]);
                if (has_st[p])
                        show_stats_text(p, &st[p], dt);
        }
}

static void show_stats_json(const struct ntbt_stats *st)
{
        uint32_t i;
        int k;

        printf(",\"transport\":{\"pid\":%d,\"alive\":%s,\"linked\":%s,\"qps\":[", st->pid,
               st->alive ? "true" : "false", st->transport_up ? "true" : "false");
        for (i = 0; i < st->qp_count; i++) {
                const struct ntbt_stats_qp *q = &st->qp[i];
                static const char *const js[] = {"down", "wait_peer", "handshake", "up"};

                printf("%s{\"qp\":%u,\"present\":%s,\"state\":\"%s\",\"tx_mode\":\"%s\","
                       "\"poll_mode\":%s,\"age_ns\":%lld",
                       i ? "," : "", i, q->present ? "true" : "false", js[q->state],
                       cli_tx_mode_name(q->tx_mode), q->poll_mode ? "true" : "false",
                       (long long)q->age_ns);
                for (k = 0; k < NTBT_STATS_COUNTERS; k++)
                        printf(",\"%s\":%llu", ntbt_stats_counter_name(k),
                               (unsigned long long)q->c[k]);
                printf("}");
        }
        printf("]}");
}

static void show_json(const char *name, const struct ntbt_shm_info *in, const struct ntbt_stats *st,
                      const int *has_st)
{
        uint32_t i;
        int p;

        printf("{\"name\":\"");
        for (i = 0; name[i]; i++)
                if (name[i] == '"' || name[i] == '\\')
                        printf("\\%c", name[i]);
                else
                        putchar(name[i]);
        printf("\",\"format\":%u,\"file_bytes\":%llu,\"window_offset\":%llu,\"mw_count\":%u,"
               "\"mw_size\":%llu,\"xlat_align\":%llu,\"spad_count\":%u,\"db_valid_mask\":%llu,"
               "\"heartbeat_ms\":%u,\"remote_timeout_ms\":%u,\"link_seq\":%u,\"link_up\":%s,"
               "\"ports\":[",
               in->format, (unsigned long long)in->file_bytes,
               (unsigned long long)in->window_offset, in->mw_count, (unsigned long long)in->mw_size,
               (unsigned long long)in->xlat_align, in->spad_count,
               (unsigned long long)in->db_valid_mask, in->heartbeat_ms, in->remote_timeout_ms,
               in->link_seq, in->link_up ? "true" : "false");
        for (p = 0; p < 2; p++) {
                const struct ntbt_shm_port_info *pi = &in->port[p];

                printf("%s{\"port\":%d,\"state\":%u,\"alive\":%s,\"owner_kind\":\"%s\","
                       "\"pid\":%u,\"generation\":%u,\"heartbeat\":%u,\"heartbeat_age_ms\":%d,"
                       "\"link_enabled\":%u,\"db\":%llu,\"db_mask\":%llu,\"db_seq\":%u,"
                       "\"db_sleepers\":%u,\"spad\":[",
                       p ? "," : "", p, pi->state, pi->alive ? "true" : "false",
                       owner_kind_name(pi->owner_kind), pi->pid, pi->generation, pi->heartbeat,
                       pi->heartbeat_age_ms, pi->link_enabled, (unsigned long long)pi->db,
                       (unsigned long long)pi->db_mask, pi->db_seq, pi->db_sleepers);
                for (i = 0; i < in->spad_count; i++)
                        printf("%s%u", i ? "," : "", pi->spad[i]);
                printf("],\"xlat_size\":[");
                for (i = 0; i < in->mw_count; i++)
                        printf("%s%llu", i ? "," : "", (unsigned long long)pi->xlat_size[i]);
                printf("]");
                if (has_st[p])
                        show_stats_json(&st[p]);
                else
                        printf(",\"transport\":null");
                printf("}");
        }
        printf("]}\n");
}

/* dev show kdev:...: the hardware's geometry and state, through the device
 * API (opening the bridge takes it: it fails while another process has it). */
static int show_kdev(const char *ctx, const char *spec, int json)
{
        struct ntbt_dev *d;
        char what[256] = "";
        uint64_t valid, db, mask;
        int ret, w, i, nmw, nspad;

        ret = ntbt_dev_open(spec, &d);
        if (ret) {
                cli_err(ctx, "%s: %s", spec, strerror(-ret));
                return 1;
        }
        ntbt_dev_describe(d, what, sizeof(what));
        nmw = ntbt_dev_mw_count(d);
        nspad = ntbt_dev_spad_count(d);
        valid = ntbt_dev_db_valid_mask(d);
        db = ntbt_dev_db_read(d);
        mask = ntbt_dev_db_mask(d);
        if (json)
                printf("{\"device\":\"%s\",\"hardware\":\"%s\",\"port\":%d,\"link_up\":%s,"
                       "\"db_valid_mask\":%llu,\"db\":%llu,\"db_mask\":%llu,\"spad_count\":%d,"
                       "\"windows\":[",
                       spec, what, ntbt_dev_port(d), ntbt_dev_link_is_up(d) == 1 ? "true" : "false",
                       (unsigned long long)valid, (unsigned long long)db, (unsigned long long)mask,
                       nspad);
        else
                printf("%s: %s\n  link %s; doorbells 0x%llx (pending 0x%llx, masked 0x%llx); "
                       "%d scratchpads\n",
                       spec, what, ntbt_dev_link_is_up(d) == 1 ? "up" : "down",
                       (unsigned long long)valid, (unsigned long long)db, (unsigned long long)mask,
                       nspad);
        for (w = 0; w < nmw; w++) {
                uint64_t out = 0, aa = 0, sa = 0, smax = 0;

                ntbt_dev_peer_mw_size(d, w, &out);
                ntbt_dev_mw_get_align(d, w, &aa, &sa, &smax);
                if (json)
                        printf("%s{\"outbound\":%llu,\"inbound_max\":%llu,\"addr_align\":%llu,"
                               "\"size_align\":%llu}",
                               w ? "," : "", (unsigned long long)out, (unsigned long long)smax,
                               (unsigned long long)aa, (unsigned long long)sa);
                else
                        printf("  window %d: outbound %llu bytes; inbound up to %llu, address "
                               "align %llu, size align %llu\n",
                               w, (unsigned long long)out, (unsigned long long)smax,
                               (unsigned long long)aa, (unsigned long long)sa);
        }
        if (json)
                printf("],\"spads\":[");
        else if (nspad)
                printf("  scratchpads (ours/peer's):");
        for (i = 0; i < nspad; i++) {
                uint32_t a = 0, b = 0;

                ntbt_dev_spad_read(d, i, &a);
                ntbt_dev_peer_spad_read(d, i, &b);
                if (json)
                        printf("%s[%u,%u]", i ? "," : "", a, b);
                else
                        printf("%s%x/%x", i % 8 ? " " : "\n    ", a, b);
        }
        printf(json ? "]}\n" : "\n");
        ntbt_dev_close(d);
        return 0;
}

static int dev_show(int argc, char **argv)
{
        struct ntbt_shm_info info = {.size = sizeof(info)};
        static struct ntbt_stats st[2];
        const char *name = NULL, *ctx = "dev show";
        double watch = 0;
        long count = 0, n;
        int i, json = 0, ret, has_st[2];
        int64_t last = 0;
        char *end;

        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--json")) {
                        json = 1;
                } else if (!strcmp(argv[i], "--watch")) {
                        watch = 1;
                        if (i + 1 < argc && argv[i + 1][0] != '-' &&
                            strtod(argv[i + 1], &end) > 0 && !*end) {
                                watch = strtod(argv[++i], NULL);
                                if (watch < 0.01 || watch > 3600) {
                                        cli_err(ctx, "--watch %s is out of range", argv[i]);
                                        return 2;
                                }
                        }
                } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
                        count = strtol(argv[++i], &end, 10);
                        if (*end || count < 1) {
                                cli_err(ctx, "bad --count '%s'", argv[i]);
                                return 2;
                        }
                } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        fputs(dev_usage, stdout);
                        return 0;
                } else if (argv[i][0] == '-' || name) {
                        cli_err(ctx, "unexpected argument '%s'", argv[i]);
                        return 2;
                } else {
                        name = argv[i];
                }
        }
        if (!name) {
                cli_err(ctx, "expected one device NAME");
                return 2;
        }
        if (!strncmp(name, "kdev:", 5)) {
                if (watch) {
                        cli_err(ctx, "--watch is for shm devices");
                        return 2;
                }
                return show_kdev(ctx, name, json);
        }
        if (!strncmp(name, "shm:", 4))
                name += 4;
        if (count && !watch)
                watch = 1;
        for (n = 0;; n++) {
                int64_t now = now_ns();
                double dt = last ? (double)(now - last) / 1e9 : 0;

                ret = ntbt_shm_inspect(name, &info);
                if (ret) {
                        cli_err(ctx, "%s: %s", name, strerror(-ret));
                        return 1;
                }
                for (i = 0; i < 2; i++) {
                        ret = ntbt_stats_read(name, i, &st[i]);
                        has_st[i] = ret == 0;
                        if (ret && ret != -ENOENT)
                                cli_err(ctx, "%s port %d statistics: %s", name, i, strerror(-ret));
                }
                if (watch && !json && isatty(STDOUT_FILENO))
                        printf("\033[H\033[2J"); /* clear the terminal */
                if (json)
                        show_json(name, &info, st, has_st);
                else
                        show_text(name, &info, st, has_st, dt);
                fflush(stdout);
                for (i = 0; i < 2; i++) {
                        prev_st[i] = st[i];
                        have_prev[i] = has_st[i];
                }
                last = now;
                if (!watch || (count && n + 1 >= count))
                        break;
                nanosleep(&(struct timespec){(time_t)watch,
                                             (long)((watch - (double)(time_t)watch) * 1e9)},
                          NULL);
        }
        return 0;
}

int cmd_dev(int argc, char **argv)
{
        cli_install_log(0);
        if (argc < 2) {
                fputs(dev_usage, stderr);
                return 2;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                fputs(dev_usage, stdout);
                return 0;
        }
        if (!strcmp(argv[1], "create"))
                return dev_create(argc - 1, argv + 1);
        if (!strcmp(argv[1], "rm"))
                return dev_rm(argc - 1, argv + 1);
        if (!strcmp(argv[1], "show"))
                return dev_show(argc - 1, argv + 1);
        cli_err("dev", "unknown subcommand '%s'", argv[1]);
        fputs(dev_usage, stderr);
        return 2;
}
