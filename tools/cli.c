/* SPDX-License-Identifier: MIT */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include <ntbt/ntbt.h>

#include "../src/util/parse.h"

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

int cli_size(const char *ctx, const char *opt, const char *arg, uint64_t *out)
{
        if (parse_size(arg, out)) {
                cli_err(ctx, "bad value for %s: '%s' (a number with optional K/M/G)", opt, arg);
                return -1;
        }
        return 0;
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

void cli_endpoint_close(struct cli_endpoint *e)
{
        if (e->qp)
                ntbt_qp_free(e->qp);
        if (e->t)
                ntbt_transport_close(e->t);
        if (e->dev)
                ntbt_dev_close(e->dev);
}

int cli_endpoint_open(const char *ctx, const char *spec, int qp, uint32_t mtu, uint32_t max_qps,
                      uint32_t flags, int poll, int tx_mode, const struct ntbt_qp_handlers *h,
                      void *hctx, struct cli_endpoint *e)
{
        struct ntbt_transport_opts to = {
            .size = sizeof(to), .transport_mtu = mtu, .max_qps = max_qps, .flags = flags};
        struct ntbt_qp_opts qo = {
            .size = sizeof(qo), .qp_num = qp, .poll = poll, .tx_mode = tx_mode};
        int ret;

        memset(e, 0, sizeof(*e));
        ret = cli_open_dev(ctx, spec, &e->dev);
        if (ret)
                return ret;
        ret = ntbt_transport_open(e->dev, &to, &e->t);
        if (ret) {
                cli_err(ctx, "%s: transport: %s", spec, strerror(-ret));
                goto fail;
        }
        ret = ntbt_qp_create(e->t, &qo, h, hctx, &e->qp);
        if (ret) {
                cli_err(ctx, "%s: queue pair %d: %s (this transport has %d)", spec, qp,
                        strerror(-ret), ntbt_transport_qp_count(e->t));
                goto fail;
        }
        return ntbt_qp_link_up(e->qp);
fail:
        cli_endpoint_close(e);
        return ret;
}

int cli_tx_mode(const char *ctx, const char *arg)
{
        if (!strcmp(arg, "inline"))
                return NTBT_TX_INLINE;
        if (!strcmp(arg, "thread"))
                return NTBT_TX_THREAD;
        cli_err(ctx, "bad --tx '%s' (inline or thread)", arg);
        return -1;
}

const char *cli_tx_mode_name(int mode)
{
        return mode == NTBT_TX_THREAD ? "thread" : "inline";
}

int cli_private_device(const char *ctx, const char *dev, char *name, size_t nlen, char *spec,
                       size_t slen)
{
        const char *colon = strchr(dev, ':');
        size_t tl, nl;

        if (!colon) {
                cli_err(ctx, "%s: device string must be TYPE:NAME[,key=value...]", dev);
                return -EINVAL;
        }
        tl = (size_t)(colon - dev);
        nl = strcspn(colon + 1, ",");
        snprintf(name, nlen, "%.*s-loop-%d", (int)(nl > 40 ? 40 : nl), colon + 1, (int)getpid());
        snprintf(spec, slen, "%.*s:%s%s", (int)tl, dev, name, colon + 1 + nl);
        if (ntbt_shm_create(name, NULL)) {
                cli_err(ctx, "cannot create the private device %s", name);
                return -EIO;
        }
        return 0;
}

int cli_remove_device(const char *name)
{
        int ret = ntbt_shm_remove(name);

        /* Not an ntbt device (or not removable): leave whatever sits beside it. */
        if (ret && ret != -ENOENT)
                return ret;
        for (int port = 0; port < 2; port++) {
                char path[4200];

                if (!ntbt_stats_path(name, port, path, sizeof(path)))
                        unlink(path);
        }
        return ret;
}

int cli_run_loopback(const char *ctx, const char *dev, cli_role_fn server, cli_role_fn client,
                     void *opts, struct rusage *server_ru)
{
        struct rusage ru;
        char name[96], spec[256], sctx[64];
        int rc, st = -1; /* not "exited 0" if wait4 fails */
        pid_t pid;

        if (cli_private_device(ctx, dev, name, sizeof(name), spec, sizeof(spec)))
                return 1;
        snprintf(sctx, sizeof(sctx), "%s server", ctx);
        fflush(NULL);
        pid = fork(); /* before this process starts any thread */
        if (pid < 0) {
                cli_remove_device(name);
                return 1;
        }
        if (pid == 0)
                _exit(server(sctx, spec, opts));
        rc = client(ctx, spec, opts);
        if (rc)
                kill(pid, SIGTERM); /* a failed client leaves the server waiting */
        if (wait4(pid, &st, 0, &ru) == pid && server_ru)
                *server_ru = ru;
        /* A server killed above left its statistics file: remove it too. */
        cli_remove_device(name);
        if (!rc && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
                rc = 1;
        return rc;
}

int cli_two_sided_opts(const char *ctx, int argc, char **argv, int optind_, const char *dev,
                       int nroles, int verbose, uint32_t transport_flags)
{
        if (optind_ != argc) {
                cli_err(ctx, "unexpected argument '%s'", argv[optind_]);
                return 2;
        }
        if (!dev) {
                cli_err(ctx, "--dev DEV is required (e.g. --dev shm:demo)");
                return 2;
        }
        if (nroles != 1) {
                cli_err(ctx, "choose one of --server, --client, --loopback");
                return 2;
        }
        cli_install_log(verbose);
        if (transport_flags & NTBT_TRANSPORT_UNSAFE_NO_FLUSH)
                cli_err(ctx, "UNSAFE: --unsafe-no-flush: the doorbell may overtake the DONE "
                             "write; for demonstrations only");
        return 0;
}
