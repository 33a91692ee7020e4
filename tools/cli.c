/* SPDX-License-Identifier: MIT */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "util.h"

void cli_err(const char *ctx, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "ntbt: %s: ", ctx);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static void log_to_stderr(void *ctx, int level, const char *msg)
{
        int verbose = *(int *)ctx;

        if (level <= NTBT_LOG_WARN || (verbose && level <= NTBT_LOG_INFO) || verbose > 1)
                fprintf(stderr, "ntbt: %s\n", msg);
}

void cli_install_log(int verbose)
{
        static int v;

        v = verbose;
        ntbt_set_log(log_to_stderr, &v);
}

const char *cli_optname(const struct option *opts, int c, char *buf, size_t len)
{
        for (; opts->name; opts++)
                if (!opts->flag && opts->val == c) {
                        snprintf(buf, len, "--%s", opts->name);
                        return buf;
                }
        snprintf(buf, len, "-%c", c);
        return buf;
}

/* A bound as one would type it: 1G, 64K, 100000000. */
static const char *fmt_bound(uint64_t v, char *buf, size_t len)
{
        static const char suffix[] = "KMG";
        int k = -1;

        while (k < 2 && v >= 1024 && v % 1024 == 0) {
                v /= 1024;
                k++;
        }
        snprintf(buf, len, "%llu%.*s", (unsigned long long)v, k >= 0, k >= 0 ? suffix + k : "");
        return buf;
}

int cli_uint(const char *ctx, const char *opt, const char *arg, uint64_t lo, uint64_t hi,
             uint64_t *out)
{
        char a[32], b[32];
        uint64_t v;

        fmt_bound(lo, a, sizeof(a));
        fmt_bound(hi, b, sizeof(b));
        if (util_parse_size(arg, &v)) {
                cli_err(ctx, "%s: '%s' is not a number (%s-%s)", opt, arg, a, b);
                return -1;
        }
        if (v < lo || v > hi) {
                cli_err(ctx, "%s %s is out of range (%s-%s)", opt, arg, a, b);
                return -1;
        }
        *out = v;
        return 0;
}

int cli_seconds(const char *ctx, const char *opt, const char *arg, double lo, int lo_open,
                double hi, double *out)
{
        char range[64];
        char *end;
        double v;

        if (lo_open)
                snprintf(range, sizeof(range), "seconds, more than %g, at most %g", lo, hi);
        else
                snprintf(range, sizeof(range), "%g-%g seconds", lo, hi);
        errno = 0;
        v = strtod(arg, &end);
        if (end == arg || *end || errno || !isfinite(v)) {
                cli_err(ctx, "%s: '%s' is not a number (%s)", opt, arg, range);
                return -1;
        }
        if (v < lo || (lo_open && v <= lo) || v > hi) {
                cli_err(ctx, "%s %s is out of range (%s)", opt, arg, range);
                return -1;
        }
        *out = v;
        return 0;
}

int cli_opt_uint(const struct cli_cmd *cmd, int c, const char *arg, uint64_t lo, uint64_t hi,
                 uint64_t *out)
{
        char opt[32];

        return cli_uint(cmd->ctx, cli_optname(cmd->opts, c, opt, sizeof(opt)), arg, lo, hi, out);
}

/* A numeric shared option: 0, or 2 after a message. */
static int common_number(const struct cli_cmd *cmd, int c, const char *arg, struct cli_common *o)
{
        uint64_t v;

        switch (c) {
        case CLI_OPT_QP:
                if (cli_opt_uint(cmd, c, arg, 0, NTBT_MAX_QPS - 1, &v))
                        return 2;
                o->qp = (int)v;
                return 0;
        case 'm':
                if (cli_opt_uint(cmd, c, arg, cmd->mtu_lo, 1u << 30, &v))
                        return 2;
                o->mtu = (uint32_t)v;
                return 0;
        case CLI_OPT_MAX_QPS:
                if (cli_opt_uint(cmd, c, arg, 0, NTBT_MAX_QPS, &v))
                        return 2;
                o->max_qps = (uint32_t)v;
                return 0;
        case CLI_OPT_TIMEOUT:
                return cli_seconds(cmd->ctx, "--timeout", arg, 0, 1, 86400, &o->timeout) ? 2 : 0;
        case CLI_OPT_TX:
                o->tx_mode = cli_tx_mode(cmd->ctx, arg);
                return o->tx_mode < 0 ? 2 : 0;
        }
        return CLI_NOT_MINE;
}

/* A shared option: 0, 2 after a message, or CLI_NOT_MINE. */
static int common_option(const struct cli_cmd *cmd, int c, const char *arg, struct cli_common *o)
{
        switch (c) {
        case 'd':
                o->dev = arg;
                return 0;
        case 'j':
                o->json = 1;
                return 0;
        case 'v':
                o->verbose++;
                return 0;
        case CLI_OPT_SERVER:
                o->server = 1;
                return 0;
        case CLI_OPT_CLIENT:
                o->client = 1;
                return 0;
        case CLI_OPT_LOOPBACK:
                o->loopback = 1;
                return 0;
        case CLI_OPT_UNSAFE_NO_FLUSH:
                o->flags |= NTBT_TRANSPORT_UNSAFE_NO_FLUSH;
                return 0;
        }
        return common_number(cmd, c, arg, o);
}

int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_common *c, void *own)
{
        int ch, rc;

        while ((ch = getopt_long(argc, argv, cmd->shortopts, cmd->opts, NULL)) != -1) {
                if (ch == 'h') {
                        fputs(cmd->usage, stdout);
                        return 0;
                }
                rc = cmd->option ? cmd->option(cmd, ch, optarg, own) : CLI_NOT_MINE;
                if (rc == CLI_NOT_MINE)
                        rc = common_option(cmd, ch, optarg, c);
                if (rc == CLI_NOT_MINE) { /* getopt said why: an unknown option, a missing value */
                        fputs(cmd->usage, stderr);
                        return 2;
                }
                if (rc)
                        return rc;
        }
        if (cmd->check && (rc = cmd->check(cmd, own)) != CLI_RUN)
                return rc;
        if (optind != argc) {
                cli_err(cmd->ctx, "unexpected argument '%s'", argv[optind]);
                return 2;
        }
        if (!c->dev) {
                cli_err(cmd->ctx, "--dev DEV is required (e.g. --dev shm:demo)");
                return 2;
        }
        if (cmd->two_sided && c->server + c->client + c->loopback != 1) {
                cli_err(cmd->ctx, "choose one of --server, --client, --loopback");
                return 2;
        }
        return CLI_RUN;
}

void cli_start(const char *ctx, const struct cli_common *c)
{
        cli_install_log(c->verbose);
        cli_cleanup_install();
        if (c->flags & NTBT_TRANSPORT_UNSAFE_NO_FLUSH)
                cli_err(ctx, "UNSAFE: --unsafe-no-flush: the doorbell may overtake the DONE "
                             "write; for demonstrations only");
}

int64_t cli_timeout_ns(const struct cli_common *c, int64_t dflt)
{
        return c->timeout > 0 ? (int64_t)(c->timeout * 1e9) : dflt;
}

void cli_json_str(const char *v)
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

const char *cli_fmt_bytes(uint64_t v, char *buf, int len)
{
        static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        int u = 0;

        while (u < 4 && v >= 1024 && v % 1024 == 0) {
                v /= 1024;
                u++;
        }
        snprintf(buf, (size_t)len, "%llu %s", (unsigned long long)v, unit[u]);
        return buf;
}

int cli_open_dev(const char *ctx, const char *spec, struct ntbt_dev **out)
{
        char name[PATH_MAX], path[PATH_MAX];
        int ret, created = 0;

        /* An shm device that does not exist yet is created with the spec's
         * defaults; a peer creating it at the same time makes ours -EEXIST,
         * and the open then waits for its magic. */
        /* pcie: models an shm device of the same NAME. */
        const char *rest = !strncmp(spec, "shm:", 4)    ? spec + 4
                           : !strncmp(spec, "pcie:", 5) ? spec + 5
                                                        : NULL;

        if (rest) {
                size_t n = strcspn(rest, ",");

                if (n < sizeof(name)) {
                        memcpy(name, rest, n);
                        name[n] = '\0';
                        if (!ntbt_shm_path(name, path, sizeof(path)) && access(path, F_OK) &&
                            errno == ENOENT) {
                                ret = ntbt_shm_create(name, NULL);
                                if (ret && ret != -EEXIST) {
                                        cli_err(ctx, "%s: create: %s", spec, strerror(-ret));
                                        return ret;
                                }
                                created = !ret;
                        }
                }
        }
        ret = ntbt_dev_open(spec, out);
        if (!ret) {
                /* The statistics file the transport will publish, as the
                 * library names it: the NAME of TYPE:NAME, our port. */
                const char *colon = strchr(spec, ':');
                size_t n = colon ? strcspn(colon + 1, ",") : 0;

                if (n && n < sizeof(name)) {
                        memcpy(name, colon + 1, n);
                        name[n] = '\0';
                        if (!ntbt_stats_path(name, ntbt_dev_port(*out), path, sizeof(path)))
                                cli_cleanup_add(*out, path);
                }
        }
        if (ret) {
                /* The library has said why (an open logs the reason of any
                 * failure): no second line here. */
                (void)ctx;
                /* A bad option (shm:x,prot=1) must not leave behind the
                 * device we created for it, unless someone took it since. */
                if (created) {
                        struct ntbt_shm_info in = {.size = sizeof(in)};

                        if (ntbt_shm_inspect(name, &in) ||
                            (in.port[0].state == 0 && in.port[1].state == 0))
                                cli_remove_device(name);
                }
        }
        return ret;
}

void cli_close_dev(struct ntbt_dev *dev)
{
        if (!dev)
                return;
        cli_cleanup_del(dev);
        ntbt_dev_close(dev);
}

int cli_dev_status(int err)
{
        /* -EINVAL: the string itself (type, key, value) or what it names is
         * not a device; the rest (ENOENT, EBUSY, EPERM...) is the work. */
        return err == -EINVAL ? 2 : 1;
}

void cli_endpoint_close(struct cli_endpoint *e)
{
        if (e->qp)
                ntbt_qp_free(e->qp);
        if (e->t)
                ntbt_transport_close(e->t);
        if (e->dev)
                cli_close_dev(e->dev);
}

struct cli_endpoint_opts cli_endpoint_opts(const struct cli_common *c)
{
        return (struct cli_endpoint_opts){.dev = c->dev,
                                          .qp = c->qp,
                                          .mtu = c->mtu,
                                          .max_qps = c->max_qps,
                                          .flags = c->flags,
                                          .tx_mode = c->tx_mode};
}

int cli_endpoint_open(const char *ctx, const struct cli_endpoint_opts *o, struct cli_endpoint *e)
{
        struct ntbt_transport_opts to = {
            .size = sizeof(to), .transport_mtu = o->mtu, .max_qps = o->max_qps, .flags = o->flags};
        struct ntbt_qp_opts qo = {
            .size = sizeof(qo), .qp_num = o->qp, .poll = o->poll, .tx_mode = o->tx_mode};
        const char *spec = o->dev;
        int ret;

        memset(e, 0, sizeof(*e));
        e->spec = spec;
        e->qpn = o->qp;
        ret = cli_open_dev(ctx, spec, &e->dev);
        if (ret)
                return cli_dev_status(ret);
        ret = ntbt_transport_open(e->dev, &to, &e->t);
        if (ret) {
                cli_err(ctx, "%s: transport: %s", spec, strerror(-ret));
                goto fail;
        }
        ret = ntbt_qp_create(e->t, &qo, o->handlers, o->handlers_ctx, &e->qp);
        if (ret) {
                cli_err(ctx, "%s: queue pair %d: %s (this transport has %d)", spec, o->qp,
                        strerror(-ret), ntbt_transport_qp_count(e->t));
                goto fail;
        }
        ret = ntbt_qp_link_up(e->qp);
        if (ret) {
                cli_err(ctx, "%s: queue pair %d: link up: %s", spec, o->qp, strerror(-ret));
                goto fail;
        }
        return 0;
fail:
        cli_endpoint_close(e);
        return 1;
}

void cli_waiting_note(const char *ctx, const struct cli_endpoint *e, struct cli_waiting *w)
{
        char why[256];

        if (!w->said) {
                fprintf(stderr, "ntbt: %s: waiting for the peer on %s, queue pair %d\n", ctx,
                        e->spec, e->qpn);
                w->said = 1;
        }
        if (!w->said_mismatch && ntbt_transport_mismatch(e->t, why, sizeof(why))) {
                fprintf(stderr, "ntbt: %s: %s\n", ctx, why);
                w->said_mismatch = 1;
        }
}

void cli_no_peer(const char *ctx, const struct cli_endpoint *e, double secs)
{
        cli_err(ctx, "%s: no peer on queue pair %d within %g s (--timeout)", e->spec, e->qpn, secs);
}

int cli_wait_peer(const char *ctx, struct cli_endpoint *e, int64_t timeout_ns)
{
        int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;
        struct cli_waiting w = {0};
        int ret;

        while ((ret = ntbt_qp_wait_link(e->qp, NS_PER_SEC)) == -ETIMEDOUT) {
                cli_waiting_note(ctx, e, &w);
                if (now_ns() >= deadline) {
                        cli_no_peer(ctx, e, (double)timeout_ns / 1e9);
                        return -ETIMEDOUT;
                }
        }
        return ret;
}

int cli_tx_mode(const char *ctx, const char *arg)
{
        if (!strcmp(arg, "inline"))
                return NTBT_TX_INLINE;
        if (!strcmp(arg, "thread"))
                return NTBT_TX_THREAD;
        cli_err(ctx, "--tx: '%s' is not a copy mode (inline or thread)", arg);
        return -1;
}

const char *cli_tx_mode_name(int mode)
{
        return mode == NTBT_TX_THREAD ? "thread" : "inline";
}
