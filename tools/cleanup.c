/* SPDX-License-Identifier: MIT */
/*
 * What a signal must not leave behind (the leftovers registry and the
 * signal handlers), and --loopback's private device and server process.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "cli.h"

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

/* End the --loopback server and remove the leftovers (async-signal-safe). */
static void cleanup_now(void)
{
        if (cleanup_child > 0)
                kill((pid_t)cleanup_child, SIGTERM);
        for (int i = 0; i < CLEANUP_SLOTS; i++)
                if (cleanup[i].used)
                        unlink(cleanup[i].path);
}

static void cleanup_on_signal(int sig)
{
        int saved = errno;

        cleanup_now();
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
        cleanup_now();
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
