/* SPDX-License-Identifier: MIT */
/*
 * ntbt tun: a network interface over queue pairs, the ntb_netdev of ntbt.
 *
 * A TAP interface (Ethernet frames, as ntb_netdev sends: one frame per QP
 * message, so a kernel ntb_netdev peer carries the same bytes).  With
 * --qps N it is multi-queue (IFF_MULTI_QUEUE): queue q <-> QP q, the kernel
 * spreads flows over the queues.  Per queue, one thread reads the TAP fd and
 * enqueues; when the ring is full it stops reading (the interface's queue
 * backs up in the kernel) and waits for space in short steps, with no coarse
 * timer.  Received frames are written to the queue's fd by the transport's
 * event thread.  Carrier follows the QP link.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "cli.h"

#define ETH_HDR     14
#define VNET_HDR    10 /* struct virtio_net_hdr, the TAP default size */
#define OFFLOAD_MTU 131072
#define MAX_QUEUES  8
#define RX_BUFS     64

static const char tun_usage[] =
    "usage: ntbt tun -d|--dev DEV [-n|--name IFNAME] [--qps N] [--mtu BYTES]\n"
    "                [--max-qps N] [--offload] [-v|--verbose]\n"
    "\n"
    "Create a TAP interface (default ntb%d) whose Ethernet frames travel over queue\n"
    "pairs 0..N-1 (default 1), bring it up, and move frames until SIGINT, SIGTERM\n"
    "or SIGHUP, then tear it down.  It needs root or CAP_NET_ADMIN.  Addresses are\n"
    "yours to set with ip(8).  The MTU defaults to the largest frame a QP carries\n"
    "(max payload - 14); carrier is up while the\n"
    "peer's QP is linked.  --qps N makes a multi-queue interface, one queue per QP\n"
    "(the device needs N QPs: more windows, or --max-qps N on both sides).\n"
    "Frames that cannot be carried (link down, too long) are counted, never lost\n"
    "silently; -v prints the counters at exit.  Exit status 2: a usage error.\n"
    "\n"
    "-d, --dev DEV        the device, TYPE:NAME[,key=value...]\n"
    "-n, --name IFNAME    interface name, at most 15 characters (default ntb%d)\n"
    "    --qps N          queues and queue pairs, 1-8 (default 1)\n"
    "    --mtu BYTES      interface MTU, 68-1G (default: the largest a QP carries)\n"
    "    --max-qps N      the kernel's max_num_clients, 0-32; both sides must agree\n"
    "    --offload        use the TAP offloads (checksum, TSO/GSO): each message\n"
    "                     carries the virtio-net header before the frame, and the\n"
    "                     transport uses 128 KiB frames so a GSO packet fits.  Both\n"
    "                     sides must say it; a kernel ntb_netdev peer does not.\n"
    "-v, --verbose        carrier changes, and the counters at exit\n"
    "-h, --help           this text\n";

struct tun_queue {
        struct tun_ctx *c;
        int q, fd;

        struct ntbt_qp *qp;
        pthread_t reader;
        uint8_t *rx_bufs;
        /* Counters (atomics: reader thread, event thread, main). */
        uint64_t tx_frames, tx_dropped_link, tx_dropped_size, rx_frames, rx_write_errors;
};

struct tun_ctx {
        struct ntbt_dev *dev;
        struct ntbt_transport *t;
        int nq, verbose, offload, stop_pipe[2];
        uint32_t mtu, buf_len;
        char ifname[IFNAMSIZ];
        struct tun_queue q[MAX_QUEUES];
        int links_up; /* atomic: QPs up */
};

static volatile sig_atomic_t stop_signal;
static int stop_fd = -1;

static void on_signal(int sig)
{
        char c = 1;

        stop_signal = sig;
        if (stop_fd >= 0 && write(stop_fd, &c, 1) < 0) {
                /* nothing to do: the flag is set too */
        }
}

static void add(uint64_t *v, uint64_t n)
{
        __atomic_add_fetch(v, n, __ATOMIC_RELAXED);
}

static int tap_open(const char *name, int multi, int offload, char *out_name)
{
        struct ifreq ifr;
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        memset(&ifr, 0, sizeof(ifr));
        ifr.ifr_flags =
            IFF_TAP | IFF_NO_PI | (multi ? IFF_MULTI_QUEUE : 0) | (offload ? IFF_VNET_HDR : 0);
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
                int err = -errno;

                close(fd);
                return err;
        }
        if (offload &&
            ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) < 0) {
                int err = -errno;

                close(fd);
                return err;
        }
        snprintf(out_name, IFNAMSIZ, "%s", ifr.ifr_name);
        return fd;
}

static int if_ioctl(unsigned long req, struct ifreq *ifr)
{
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

        if (s < 0)
                return -errno;
        if (ioctl(s, req, ifr) < 0)
                ret = -errno;
        close(s);
        return ret;
}

static int if_set_mtu_up(const char *name, uint32_t mtu)
{
        struct ifreq ifr;
        int ret;

        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
        ifr.ifr_mtu = (int)mtu;
        ret = if_ioctl(SIOCSIFMTU, &ifr);
        if (ret)
                return ret;
        ret = if_ioctl(SIOCGIFFLAGS, &ifr);
        if (ret)
                return ret;
        ifr.ifr_flags |= IFF_UP;
        return if_ioctl(SIOCSIFFLAGS, &ifr);
}

static void set_carrier(struct tun_ctx *c)
{
        /* Carrier is up while every queue's QP is linked. */
        int on = __atomic_load_n(&c->links_up, __ATOMIC_SEQ_CST) == c->nq;

        if (ioctl(c->q[0].fd, TUNSETCARRIER, &on) < 0 && c->verbose)
                fprintf(stderr, "ntbt: tun: TUNSETCARRIER: %s\n", strerror(errno));
        if (c->verbose)
                fprintf(stderr, "ntbt: tun: %s carrier %s\n", c->ifname, on ? "up" : "down");
}

static void tun_event(struct ntbt_qp *qp, void *ctx, int up, int reason)
{
        struct tun_queue *tq = ctx;

        (void)qp, (void)reason;
        __atomic_add_fetch(&tq->c->links_up, up ? 1 : -1, __ATOMIC_SEQ_CST);
        set_carrier(tq->c);
}

/* A frame from the peer: into the interface (event thread). */
static void tun_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len)
{
        struct tun_queue *tq = ctx;

        (void)buf_ctx;
        if (len == -ECANCELED)
                return;
        if (len > 0) {
                if (write(tq->fd, data, (size_t)len) == len)
                        add(&tq->rx_frames, 1);
                else
                        add(&tq->rx_write_errors, 1);
        }
        ntbt_qp_rx_enqueue(qp, NULL, data, tq->c->buf_len);
}

/* Frames from the interface: onto the QP (one thread per queue). */
static void *reader(void *arg)
{
        struct tun_queue *tq = arg;
        struct tun_ctx *c = tq->c;
        uint8_t *buf = malloc(c->buf_len);
        struct pollfd pf[2] = {{.fd = tq->fd, .events = POLLIN},
                               {.fd = c->stop_pipe[0], .events = POLLIN}};

        if (!buf)
                return NULL;
        for (;;) {
                ssize_t n;
                int ret;

                if (poll(pf, 2, -1) < 0 && errno != EINTR)
                        break;
                if (pf[1].revents)
                        break;
                if (!(pf[0].revents & POLLIN))
                        continue;
                n = read(tq->fd, buf, c->buf_len);
                if (n <= 0)
                        continue;
                /* Back-pressure: while the ring is full we do not read, so
                 * frames wait in the interface's queue, not in ntbt. */
                while ((ret = ntbt_qp_tx_enqueue(tq->qp, NULL, buf, (uint32_t)n, 0)) == -EAGAIN) {
                        ret = ntbt_qp_wait_tx(tq->qp, 1, 100 * 1000000LL);
                        if (ret == -ETIMEDOUT && !stop_signal)
                                continue;
                        if (ret)
                                break;
                }
                if (ret == 0)
                        add(&tq->tx_frames, 1);
                else if (ret == -EMSGSIZE)
                        add(&tq->tx_dropped_size, 1);
                else
                        add(&tq->tx_dropped_link, 1); /* no carrier: the peer is away */
        }
        free(buf);
        return NULL;
}

struct tun_opts {
        struct cli_common c; /* --mtu: the interface's */
        const char *name;    /* --name */
        int nq, offload;     /* --qps, --offload */
};

static int tun_option(const struct cli_cmd *cmd, int c, const char *arg, void *own)
{
        struct tun_opts *o = own;
        uint64_t v;

        switch (c) {
        case 'n':
                if (!*arg || strlen(arg) >= IFNAMSIZ) {
                        cli_err(cmd->ctx, "--name '%s' is not 1-%d characters", arg, IFNAMSIZ - 1);
                        return 2;
                }
                o->name = arg;
                return 0;
        case 'O':
                o->offload = 1;
                return 0;
        case 'Q':
                if (cli_opt_uint(cmd, c, arg, 1, MAX_QUEUES, &v))
                        return 2;
                o->nq = (int)v;
                return 0;
        }
        return CLI_NOT_MINE;
}

/* CLI_RUN, or the exit status. */
static int tun_parse(int argc, char **argv, struct tun_opts *o)
{
        static const struct option opts[] = {
            CLI_O_DEV,
            {"name", required_argument, NULL, 'n'},
            {"qps", required_argument, NULL, 'Q'},
            CLI_O_MTU,
            CLI_O_MAX_QPS,
            {"offload", no_argument, NULL, 'O'},
            CLI_O_VERBOSE,
            CLI_O_HELP,
            CLI_O_END,
        };
        static const struct cli_cmd cmd = {.ctx = "tun",
                                           .usage = tun_usage,
                                           .shortopts = "d:n:vh",
                                           .opts = opts,
                                           .mtu_lo = 68,
                                           .option = tun_option};

        return cli_parse(&cmd, argc, argv, &o->c, o);
}

/* The interface, one TAP queue per QP: 0, or 1 after a message. */
static int tun_create_tap(struct tun_ctx *c, const char *name)
{
        const char *ctx = "tun";
        int i;

        for (i = 0; i < c->nq; i++) {
                int fd = tap_open(i ? c->ifname : name, c->nq > 1, c->offload, c->ifname);

                c->q[i].fd = fd;
                if (fd == -EPERM || fd == -EACCES) {
                        cli_err(ctx,
                                "cannot create the TAP interface %s: %s: ntbt tun needs root "
                                "or CAP_NET_ADMIN (and access to /dev/net/tun)",
                                name, strerror(-fd));
                        return 1;
                }
                if (fd < 0) {
                        cli_err(ctx, "cannot create the TAP interface %s: %s%s", name,
                                strerror(-fd),
                                fd == -ENOENT ? " (/dev/net/tun is missing: modprobe tun)" : "");
                        return 1;
                }
                c->q[i].c = c;
                c->q[i].q = i;
        }
        return 0;
}

/* Queue pair i with its receive buffers: 0, or 1 (after a message). */
static int tun_create_qp(struct tun_ctx *c, const char *dev, int i)
{
        static const struct ntbt_qp_handlers h = {.rx = tun_rx, .event = tun_event};
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = i};
        struct tun_queue *tq = &c->q[i];
        int ret, k;

        ret = ntbt_qp_create(c->t, &qo, &h, tq, &tq->qp);
        if (ret) {
                cli_err("tun", "%s: queue pair %d: %s", dev, i, strerror(-ret));
                return 1;
        }
        tq->rx_bufs = malloc((size_t)RX_BUFS * c->buf_len);
        if (!tq->rx_bufs)
                return 1;
        for (k = 0; k < RX_BUFS; k++)
                ntbt_qp_rx_enqueue(tq->qp, NULL, tq->rx_bufs + (size_t)k * c->buf_len, c->buf_len);
        return 0;
}

/* The device, the transport and its queue pairs: 0, or the exit status
 * after a message. */
static int tun_open_transport(struct tun_ctx *c, const char *dev, uint32_t max_qps)
{
        struct ntbt_transport_opts to = {.size = sizeof(to), .max_qps = max_qps};
        const char *ctx = "tun";
        int i, ret;

        ret = cli_open_dev(ctx, dev, &c->dev);
        if (ret)
                return cli_dev_status(ret);
        if (c->offload)
                to.transport_mtu = OFFLOAD_MTU; /* a 64 KiB GSO packet + headers fits */
        ret = ntbt_transport_open(c->dev, &to, &c->t);
        if (ret) {
                cli_err(ctx, "%s: transport: %s", dev, strerror(-ret));
                return 1;
        }
        if (ntbt_transport_qp_count(c->t) < c->nq) {
                cli_err(ctx,
                        "%s has %d queue pairs, --qps %d needs more (create the device "
                        "with --mw-count %d, or give --max-qps %d on both sides)",
                        dev, ntbt_transport_qp_count(c->t), c->nq, c->nq, c->nq);
                return 1;
        }
        /* The largest Ethernet frame a QP carries: transport_mtu - header -
         * Ethernet header (lowered at link-up if the windows are smaller). */
        c->buf_len = c->offload ? OFFLOAD_MTU : 65536;
        if (!c->mtu)
                c->mtu = 65536 - 12 - ETH_HDR; /* also the most IP takes with offloads */
        for (i = 0; i < c->nq; i++)
                if (tun_create_qp(c, dev, i))
                        return 1;
        return 0;
}

/* Bring the interface up, link the QPs, start the readers: 0, or 1. */
static int tun_start(struct tun_ctx *c, const char *dev)
{
        int i, ret;

        set_carrier(c); /* down until the peer links */
        ret = if_set_mtu_up(c->ifname, c->mtu);
        if (ret) {
                cli_err("tun", "%s: set MTU %u and up: %s", c->ifname, c->mtu, strerror(-ret));
                return 1;
        }
        for (i = 0; i < c->nq; i++)
                ntbt_qp_link_up(c->q[i].qp);
        for (i = 0; i < c->nq; i++)
                pthread_create(&c->q[i].reader, NULL, reader, &c->q[i]);
        fprintf(stderr, "ntbt: tun: %s up over %s, %d queue%s, MTU %u%s\n", c->ifname, dev, c->nq,
                c->nq > 1 ? "s" : "", c->mtu, c->offload ? ", offloads on" : "");
        return 0;
}

/* Until a signal: lower the MTU once the real max payload is known. */
static void tun_serve(struct tun_ctx *c)
{
        uint32_t extra = ETH_HDR + (c->offload ? VNET_HDR : 0);

        while (!stop_signal) {
                struct pollfd pf = {.fd = c->stop_pipe[0], .events = POLLIN};
                struct ntbt_qp *qp = c->q[0].qp;

                poll(&pf, 1, 200);
                if (ntbt_qp_link_is_up(qp) && ntbt_qp_max_payload(qp) &&
                    c->mtu + extra > ntbt_qp_max_payload(qp)) {
                        c->mtu = ntbt_qp_max_payload(qp) - extra;
                        if_set_mtu_up(c->ifname, c->mtu);
                        fprintf(stderr, "ntbt: tun: %s MTU lowered to %u (the QP's payload)\n",
                                c->ifname, c->mtu);
                }
        }
}

/* Stop the readers; with -v, each queue's counters. */
static void tun_stop(struct tun_ctx *c)
{
        int i;

        if (write(c->stop_pipe[1], "x", 1) < 0) {
                /* the readers also see stop_signal */
        }
        for (i = 0; i < c->nq; i++)
                pthread_join(c->q[i].reader, NULL);
        for (i = 0; c->verbose && i < c->nq; i++)
                fprintf(stderr,
                        "ntbt: tun: queue %d: tx %llu, rx %llu, dropped: no link %llu, "
                        "too long %llu, rx write errors %llu\n",
                        i, (unsigned long long)c->q[i].tx_frames,
                        (unsigned long long)c->q[i].rx_frames,
                        (unsigned long long)c->q[i].tx_dropped_link,
                        (unsigned long long)c->q[i].tx_dropped_size,
                        (unsigned long long)c->q[i].rx_write_errors);
}

/* Whatever was set up, in reverse. */
static void tun_close(struct tun_ctx *c)
{
        int i;

        for (i = 0; i < c->nq; i++)
                if (c->q[i].qp)
                        ntbt_qp_free(c->q[i].qp);
        if (c->t)
                ntbt_transport_close(c->t);
        cli_close_dev(c->dev);
        for (i = 0; i < c->nq; i++) {
                if (c->q[i].fd >= 0)
                        close(c->q[i].fd);
                free(c->q[i].rx_bufs);
        }
}

int cmd_tun(int argc, char **argv)
{
        struct tun_opts o = {.name = "ntb%d", .nq = 1};
        static struct tun_ctx c;
        int i, rc;

        rc = tun_parse(argc, argv, &o);
        if (rc != CLI_RUN)
                return rc;
        c.nq = o.nq;
        c.verbose = o.c.verbose;
        c.offload = o.offload;
        c.mtu = o.c.mtu;
        for (i = 0; i < MAX_QUEUES; i++)
                c.q[i].fd = -1;
        cli_install_log(c.verbose);
        if (pipe2(c.stop_pipe, O_CLOEXEC) < 0)
                return 1;
        stop_fd = c.stop_pipe[1];
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal); /* a closed terminal: tear down as for SIGTERM */
        signal(SIGPIPE, SIG_IGN);
        /* The interface first: without it there is nothing to do. */
        rc = tun_create_tap(&c, o.name);
        if (!rc)
                rc = tun_open_transport(&c, o.c.dev, o.c.max_qps);
        if (!rc)
                rc = tun_start(&c, o.c.dev);
        if (!rc) {
                tun_serve(&c);
                tun_stop(&c);
        }
        tun_close(&c);
        return rc;
}
