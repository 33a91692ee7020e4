/* SPDX-License-Identifier: MIT */
#include "pair.h"

#include <glob.h>
#include <signal.h>
#include <sys/stat.h>

#include "../harness.h"

void pair_attach(struct pair *p, const char *name)
{
        int port;

        memset(p, 0, sizeof(*p));
        snprintf(p->name, sizeof(p->name), "%s", name);
        for (port = 0; port < 2; port++)
                snprintf(p->spec[port], sizeof(p->spec[port]), "shm:%s,port=%d", p->name, port);
}

void pair_create(struct pair *p, const char *tag, const struct ntbt_shm_geom *g)
{
        static unsigned serial;
        char name[64];

        /* A device of its own for each pair, even when one process runs
         * every case: a name reused at once would meet what the last
         * case's peer still had open (its heartbeat, its port) while it
         * winds down. */
        snprintf(name, sizeof(name), "%s-%u", test_dev_name(tag), serial++);
        pair_attach(p, name);
        ntbt_shm_remove(p->name); /* a leftover of a killed run with our pid */
        CHECK_EQ(ntbt_shm_create(p->name, g), 0);
}

struct ntbt_dev *pair_open_dev(struct pair *p, int port)
{
        CHECK(!p->dev[port]);
        CHECK_EQ(ntbt_dev_open(p->spec[port], &p->dev[port]), 0);
        CHECK_EQ(ntbt_dev_port(p->dev[port]), port);
        return p->dev[port];
}

struct ntbt_transport *pair_open(struct pair *p, int port, const struct ntbt_transport_opts *o)
{
        pair_open_dev(p, port);
        CHECK_EQ(ntbt_transport_open(p->dev[port], o, &p->t[port]), 0);
        return p->t[port];
}

struct ntbt_qp *pair_qp(struct pair *p, int port, const struct ntbt_qp_opts *opts,
                        const struct ntbt_qp_handlers *h, void *ctx)
{
        struct ntbt_qp *qp;

        CHECK_EQ(ntbt_qp_create(p->t[port], opts, h, ctx, &qp), 0);
        CHECK_EQ(ntbt_qp_link_up(qp), 0);
        return qp;
}

void pair_post(struct ntbt_qp *qp, void *bufs, int n, uint32_t len)
{
        int i;

        for (i = 0; i < n; i++)
                CHECK_EQ(ntbt_qp_rx_enqueue(qp, NULL, (uint8_t *)bufs + (size_t)i * len, len), 0);
}

void pair_wait_link(struct ntbt_qp *qp)
{
        CHECK_EQ(ntbt_qp_wait_link(qp, 10 * PAIR_SEC), 0);
}

void pair_close(struct pair *p, int port)
{
        if (p->t[port])
                ntbt_transport_close(p->t[port]);
        if (p->dev[port])
                ntbt_dev_close(p->dev[port]);
        p->t[port] = NULL;
        p->dev[port] = NULL;
}

void pair_fork(struct pair *p, void (*fn)(struct pair *p, void *arg), void *arg)
{
        CHECK(!p->peer);
        p->peer = fork();
        CHECK(p->peer >= 0);
        if (p->peer == 0) {
                p->peer = 0;
                fn(p, arg);
                _exit(0);
        }
}

void pair_spawn(struct pair *p, char *const args[])
{
        CHECK(!p->peer);
        p->peer = test_spawn(args);
        CHECK(p->peer > 0);
}

void pair_reap(struct pair *p)
{
        CHECK(p->peer > 0);
        test_reap_ok(p->peer);
        p->peer = 0;
}

void pair_kill(struct pair *p)
{
        int st = 0;

        CHECK(p->peer > 0);
        CHECK_EQ(kill(p->peer, SIGKILL), 0);
        p->killed = 1;
        CHECK(waitpid(p->peer, &st, 0) == p->peer);
        p->peer = 0;
        /* Exited by itself: it failed a check (its stderr says which). */
        CHECK(WIFSIGNALED(st));
}

void pair_destroy(struct pair *p)
{
        char path[256];
        struct stat st;
        glob_t g;
        int port;

        /* Both transports before the devices, port 1's first: closed the
         * other way round, each case's teardown took a second more. */
        for (port = 1; port >= 0; port--)
                if (p->t[port])
                        ntbt_transport_close(p->t[port]), p->t[port] = NULL;
        pair_close(p, 0);
        pair_close(p, 1);
        if (p->peer)
                pair_reap(p);
        CHECK_EQ(ntbt_shm_remove(p->name), 0);
        /* Nothing left: not the device, not a transport's stats file
         * (PATH.stats-N). */
        CHECK_EQ(ntbt_shm_path(p->name, path, sizeof(path) - 2), 0);
        CHECK(stat(path, &st) != 0 && errno == ENOENT);
        strcat(path, ".*");
        if (p->killed && glob(path, 0, NULL, &g) == 0) {
                for (size_t i = 0; i < g.gl_pathc; i++)
                        CHECK_EQ(unlink(g.gl_pathv[i]), 0);
                globfree(&g);
        }
        CHECK_EQ(glob(path, 0, NULL, &g), GLOB_NOMATCH);
}

static void stream_peer(struct pair *p, void *arg)
{
        struct stream_cfg *b = arg;

        (void)p;
        stream_run(b);
}

void pair_stream(struct pair *p, struct stream_cfg a, struct stream_cfg b)
{
        a.spec = p->spec[0], a.side = 0;
        b.spec = p->spec[1], b.side = 1;
        pair_fork(p, stream_peer, &b);
        stream_run(&a);
        pair_reap(p);
}
