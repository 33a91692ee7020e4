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
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
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
                return cli_dev_status(ret);
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
        ret = ntbt_qp_link_up(e->qp);
        if (ret) {
                cli_err(ctx, "%s: queue pair %d: link up: %s", spec, qp, strerror(-ret));
                goto fail;
        }
        return 0;
fail:
        cli_endpoint_close(e);
        return 1;
}

int cli_wait_peer(const char *ctx, const char *dev, struct cli_endpoint *e, int qpn,
                  int64_t timeout_ns)
{
        int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;
        int said = 0, said_mismatch = 0, ret;
        char why[256];

        while ((ret = ntbt_qp_wait_link(e->qp, 1000000000LL)) == -ETIMEDOUT) {
                if (!said) {
                        fprintf(stderr, "ntbt: %s: waiting for the peer on %s, queue pair %d\n",
                                ctx, dev, qpn);
                        said = 1;
                }
                if (!said_mismatch && ntbt_transport_mismatch(e->t, why, sizeof(why))) {
                        fprintf(stderr, "ntbt: %s: %s\n", ctx, why);
                        said_mismatch = 1;
                }
                if (now_ns() >= deadline) {
                        cli_err(ctx, "%s: no peer on queue pair %d within %g s (--timeout)", dev,
                                qpn, (double)timeout_ns / 1e9);
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

static const char loopback_owner; /* the registry's key for a --loopback device */

/* Under owner: the private device and both ports' statistics files. */
static void cleanup_add_device(const void *owner, const char *name)
{
        char path[PATH_MAX];

        if (!ntbt_shm_path(name, path, sizeof(path)))
                cli_cleanup_add(owner, path);
        for (int port = 0; port < 2; port++)
                if (!ntbt_stats_path(name, port, path, sizeof(path)))
                        cli_cleanup_add(owner, path);
}

int cli_remove_device(const char *name)
{
        int ret = ntbt_shm_remove(name);

        /* Not an ntbt device (or not removable): leave whatever sits beside it. */
        if (ret && ret != -ENOENT)
                return ret;
        /* The device was ours: whatever sits at its statistics paths goes
         * with it, a damaged file too (unlink removes a link, not its target). */
        for (int port = 0; port < 2; port++) {
                char path[PATH_MAX + 16];

                if (!ntbt_stats_path(name, port, path, sizeof(path)))
                        unlink(path);
        }
        return ret;
}

/* ---- leftovers: what a signal must not leave behind ---- */

#define CLEANUP_SLOTS 8
static struct {
        const void *owner;
        char path[PATH_MAX + 16];
        volatile sig_atomic_t used; /* set after path is written */
} cleanup[CLEANUP_SLOTS];
static volatile sig_atomic_t cleanup_child; /* a --loopback server, or 0 */

static void cleanup_on_signal(int sig)
{
        int saved = errno;

        if (cleanup_child > 0)
                kill((pid_t)cleanup_child, SIGTERM);
        for (int i = 0; i < CLEANUP_SLOTS; i++)
                if (cleanup[i].used)
                        unlink(cleanup[i].path);
        /* Only now the default action: a second signal that another thread
         * takes meanwhile runs this handler too, rather than ending the
         * process half way.  This one is blocked in this thread while we
         * run, so it ends the process when we return. */
        signal(sig, SIG_DFL);
        raise(sig);
        errno = saved;
}

/*
 * A mapped device file that shrinks under us (`truncate`, by the peer or
 * anyone who can write it) turns the next access to a lost page into
 * SIGBUS, in whichever thread touches it: the heartbeat thread finds the
 * header gone within heartbeat_ms / 2.  Say what happened and end with
 * status 1, after the same cleanup as a signal; never return (the access
 * would fault again).
 */
static void on_sigbus(int sig)
{
        static const char msg[] =
            "ntbt: device file truncated (a mapped page is gone: SIGBUS); exiting\n";
        ssize_t w;

        (void)sig;
        if (cleanup_child > 0)
                kill((pid_t)cleanup_child, SIGTERM);
        for (int i = 0; i < CLEANUP_SLOTS; i++)
                if (cleanup[i].used)
                        unlink(cleanup[i].path);
        w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)w;
        _exit(1);
}

void cli_cleanup_install(void)
{
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
        struct sigaction sa, old;
        size_t i;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = cleanup_on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                sigaddset(&sa.sa_mask, sigs[i]);
        for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
                /* nohup (and a shell's background job) ignore some: keep that. */
                if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
                        continue;
                sigaction(sigs[i], &sa, NULL);
        }
        sa.sa_handler = on_sigbus;
        sigaction(SIGBUS, &sa, NULL);
}

int cli_cleanup_add(const void *owner, const char *path)
{
        for (int i = 0; i < CLEANUP_SLOTS; i++) {
                if (cleanup[i].used)
                        continue;
                cleanup[i].owner = owner;
                snprintf(cleanup[i].path, sizeof(cleanup[i].path), "%s", path);
                /* The handler sees the path before the flag. */
                atomic_signal_fence(memory_order_seq_cst);
                cleanup[i].used = 1;
                return 0;
        }
        return -ENOSPC;
}

void cli_cleanup_del(const void *owner)
{
        for (int i = 0; i < CLEANUP_SLOTS; i++)
                if (cleanup[i].used && cleanup[i].owner == owner)
                        cleanup[i].used = 0;
}

/* ---- progress of send and recv ---- */

static pthread_mutex_t progress_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progress_cond = PTHREAD_COND_INITIALIZER;

/* 1.5 GiB, 812.3 MiB: binary units, one decimal. */
static const char *fmt_human(double v, char *buf, size_t len)
{
        static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        int u = 0;

        while (u < 4 && v >= 1024) {
                v /= 1024;
                u++;
        }
        snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
        return buf;
}

/* bytes so far, the rate since the last line (as pv shows it), elapsed. */
static void progress_draw(struct cli_progress *p, int64_t now, uint64_t *last_b, int64_t *last_t)
{
        int64_t t0 = __atomic_load_n(&p->t0, __ATOMIC_ACQUIRE);
        uint64_t b = __atomic_load_n(p->bytes, __ATOMIC_RELAXED);
        int64_t from = *last_t > t0 ? *last_t : t0;
        double dt = (double)(now - from) / 1e9;
        char hb[32], hr[32];
        long s = (long)((now - t0) / 1000000000);

        fprintf(stderr, "\rntbt: %s: %s  %s/s  %ld:%02ld:%02ld\033[K", p->ctx,
                fmt_human((double)b, hb, sizeof(hb)),
                fmt_human(dt > 0 ? (double)(b - *last_b) / dt : 0, hr, sizeof(hr)), s / 3600,
                s / 60 % 60, s % 60);
        *last_b = b;
        *last_t = now;
        p->drawn = 1;
}

static void *progress_thread(void *arg)
{
        struct cli_progress *p = arg;
        uint64_t last_b = 0;
        int64_t last_t = 0;

        pthread_mutex_lock(&progress_lock);
        while (!p->stop) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 500 * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&progress_cond, &progress_lock, &ts);
                if (!p->stop && __atomic_load_n(&p->t0, __ATOMIC_ACQUIRE))
                        progress_draw(p, now_ns(), &last_b, &last_t);
        }
        pthread_mutex_unlock(&progress_lock);
        return NULL;
}

void cli_progress_start(struct cli_progress *p, const char *ctx, const uint64_t *bytes, int quiet,
                        int verbose)
{
        int tty = isatty(STDERR_FILENO);

        memset(p, 0, sizeof(*p));
        p->ctx = ctx;
        p->bytes = bytes;
        p->live = tty && !quiet;
        p->summary = (tty && !quiet) || verbose;
        if (p->live && pthread_create(&p->thread, NULL, progress_thread, p) == 0)
                p->has_thread = 1;
}

void cli_progress_begin(struct cli_progress *p)
{
        int64_t zero = 0;

        __atomic_compare_exchange_n(&p->t0, &zero, now_ns(), 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

void cli_progress_stop(struct cli_progress *p)
{
        if (!p->t1)
                p->t1 = now_ns();
        if (!p->has_thread)
                return;
        pthread_mutex_lock(&progress_lock);
        p->stop = 1;
        pthread_cond_signal(&progress_cond);
        pthread_mutex_unlock(&progress_lock);
        pthread_join(p->thread, NULL);
        p->has_thread = 0;
        if (p->drawn)
                fputs("\r\033[K", stderr);
        p->drawn = 0;
}

void cli_progress_end(struct cli_progress *p, const char *extra)
{
        int64_t t0 = __atomic_load_n(&p->t0, __ATOMIC_ACQUIRE);
        uint64_t b = __atomic_load_n(p->bytes, __ATOMIC_RELAXED);
        double secs;
        char hb[32], hr[32];

        cli_progress_stop(p);
        if (!p->summary)
                return;
        secs = t0 ? (double)(p->t1 - t0) / 1e9 : 0;
        fprintf(stderr, "ntbt: %s: %s (%llu bytes) in %.2f s, %s/s%s%s\n", p->ctx,
                fmt_human((double)b, hb, sizeof(hb)), (unsigned long long)b, secs,
                fmt_human(secs > 0 ? (double)b / secs : 0, hr, sizeof(hr)), extra ? ", " : "",
                extra ? extra : "");
}

int cli_run_loopback(const char *ctx, const char *dev, cli_role_fn server, cli_role_fn client,
                     void *opts, struct rusage *server_ru)
{
        struct rusage ru;
        char name[96], spec[256], sctx[64];
        int rc, st = -1; /* not "exited 0" if wait4 fails */
        pid_t pid, parent = getpid();
        struct ntbt_dev *d;

        rc = cli_private_device(ctx, dev, name, sizeof(name), spec, sizeof(spec));
        if (rc)
                return rc == -EINVAL ? 2 : 1;
        cleanup_add_device(&loopback_owner, name);
        /* A bad device string (shm:x,prot=1) fails here, in one message,
         * rather than in both processes. */
        rc = ntbt_dev_open(spec, &d);
        if (rc) {
                cli_remove_device(name);
                cli_cleanup_del(&loopback_owner);
                return cli_dev_status(rc);
        }
        ntbt_dev_close(d); /* and its threads: none runs at the fork */
        snprintf(sctx, sizeof(sctx), "%s server", ctx);
        fflush(NULL);
        pid = fork(); /* before this process starts any thread */
        if (pid < 0) {
                cli_remove_device(name);
                cli_cleanup_del(&loopback_owner);
                return 1;
        }
        if (pid == 0) {
                /* The client killed outright (SIGKILL): the server's handler
                 * still removes the device and the statistics files. */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                        raise(SIGTERM);
                _exit(server(sctx, spec, opts));
        }
        cleanup_child = pid;
        rc = client(ctx, spec, opts);
        if (rc)
                kill(pid, SIGTERM); /* a failed client leaves the server waiting */
        if (wait4(pid, &st, 0, &ru) == pid && server_ru)
                *server_ru = ru;
        cleanup_child = 0;
        /* A server killed above left its statistics file: remove it too. */
        cli_remove_device(name);
        cli_cleanup_del(&loopback_owner);
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
        cli_cleanup_install();
        if (transport_flags & NTBT_TRANSPORT_UNSAFE_NO_FLUSH)
                cli_err(ctx, "UNSAFE: --unsafe-no-flush: the doorbell may overtake the DONE "
                             "write; for demonstrations only");
        return 0;
}
