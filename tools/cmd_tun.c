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
#include <getopt.h>
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

int cmd_tun(int argc, char **argv)
{
        static const struct option opts[] = {
            {"dev", required_argument, NULL, 'd'},
            {"name", required_argument, NULL, 'n'},
            {"qps", required_argument, NULL, 'Q'},
            {"mtu", required_argument, NULL, 'm'},
            {"max-qps", required_argument, NULL, 'M'},
            {"offload", no_argument, NULL, 'O'},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {0, 0, 0, 0},
        };
        struct ntbt_qp_handlers h = {.rx = tun_rx, .event = tun_event};
        struct ntbt_transport_opts to = {.size = sizeof(to)};
        static struct tun_ctx c;
        const char *ctx = "tun", *dev = NULL, *name = "ntb%d";
        char opt[32];
        uint64_t v;
        int ch, i, k, ret, rc = 0;

        c.nq = 1;
        for (i = 0; i < MAX_QUEUES; i++)
                c.q[i].fd = -1;
        while ((ch = getopt_long(argc, argv, "d:n:vh", opts, NULL)) != -1) {
                switch (ch) {
                case 'd':
                        dev = optarg;
                        break;
                case 'n':
                        if (!*optarg || strlen(optarg) >= IFNAMSIZ) {
                                cli_err(ctx, "--name '%s' is not 1-%d characters", optarg,
                                        IFNAMSIZ - 1);
                                return 2;
                        }
                        name = optarg;
                        break;
                case 'v':
                        c.verbose++;
                        break;
                case 'O':
                        c.offload = 1;
                        break;
                case 'Q':
                case 'm':
                case 'M':
                        cli_optname(opts, ch, opt, sizeof(opt));
                        if (ch == 'Q'   ? cli_uint(ctx, opt, optarg, 1, MAX_QUEUES, &v)
                            : ch == 'm' ? cli_uint(ctx, opt, optarg, 68, 1u << 30, &v)
                                        : cli_uint(ctx, opt, optarg, 0, NTBT_MAX_QPS, &v))
                                return 2;
                        if (ch == 'Q')
                                c.nq = (int)v;
                        else if (ch == 'm')
                                c.mtu = (uint32_t)v;
                        else
                                to.max_qps = (uint32_t)v;
                        break;
                case 'h':
                        fputs(tun_usage, stdout);
                        return 0;
                default:
                        fputs(tun_usage, stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                cli_err(ctx, "unexpected argument '%s'", argv[optind]);
                return 2;
        }
        if (!dev) {
                cli_err(ctx, "--dev DEV is required (e.g. --dev shm:demo)");
                return 2;
        }
        cli_install_log(c.verbose);
        if (pipe2(c.stop_pipe, O_CLOEXEC) < 0)
                return 1;
        stop_fd = c.stop_pipe[1];
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal); /* a closed terminal: tear down as for SIGTERM */
        signal(SIGPIPE, SIG_IGN);

        /* The interface first: without it there is nothing to do. */
        for (i = 0; i < c.nq; i++) {
                c.q[i].fd = tap_open(i ? c.ifname : name, c.nq > 1, c.offload, c.ifname);
                if (c.q[i].fd == -EPERM || c.q[i].fd == -EACCES) {
                        cli_err(ctx,
                                "cannot create the TAP interface %s: %s: ntbt tun needs root "
                                "or CAP_NET_ADMIN (and access to /dev/net/tun)",
                                name, strerror(-c.q[i].fd));
                        rc = 1;
                        goto out_fds;
                }
                if (c.q[i].fd < 0) {
                        cli_err(ctx, "cannot create the TAP interface %s: %s%s", name,
                                strerror(-c.q[i].fd),
                                c.q[i].fd == -ENOENT ? " (/dev/net/tun is missing: modprobe tun)"
                                                     : "");
                        rc = 1;
                        goto out_fds;
                }
                c.q[i].c = &c;
                c.q[i].q = i;
        }
        ret = cli_open_dev(ctx, dev, &c.dev);
        if (ret) {
                rc = cli_dev_status(ret);
                goto out_fds;
        }
        if (c.offload)
                to.transport_mtu = OFFLOAD_MTU; /* a 64 KiB GSO packet + headers fits */
        ret = ntbt_transport_open(c.dev, &to, &c.t);
        if (ret) {
                cli_err(ctx, "%s: transport: %s", dev, strerror(-ret));
                rc = 1;
                goto out_dev;
        }
        if (ntbt_transport_qp_count(c.t) < c.nq) {
                cli_err(ctx,
                        "%s has %d queue pairs, --qps %d needs more (create the device "
                        "with --mw-count %d, or give --max-qps %d on both sides)",
                        dev, ntbt_transport_qp_count(c.t), c.nq, c.nq, c.nq);
                rc = 1;
                goto out_t;
        }
        /* The largest Ethernet frame a QP carries: transport_mtu - header -
         * Ethernet header (lowered at link-up if the windows are smaller). */
        c.buf_len = c.offload ? OFFLOAD_MTU : 65536;
        if (!c.mtu)
                c.mtu = 65536 - 12 - ETH_HDR; /* also the most IP takes with offloads */
        for (i = 0; i < c.nq; i++) {
                struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = i};
                struct tun_queue *tq = &c.q[i];

                ret = ntbt_qp_create(c.t, &qo, &h, tq, &tq->qp);
                if (ret) {
                        cli_err(ctx, "%s: queue pair %d: %s", dev, i, strerror(-ret));
                        rc = 1;
                        goto out_qps;
                }
                tq->rx_bufs = malloc((size_t)RX_BUFS * c.buf_len);
                if (!tq->rx_bufs) {
                        rc = 1;
                        goto out_qps;
                }
                for (k = 0; k < RX_BUFS; k++)
                        ntbt_qp_rx_enqueue(tq->qp, NULL, tq->rx_bufs + (size_t)k * c.buf_len,
                                           c.buf_len);
        }
        set_carrier(&c); /* down until the peer links */
        ret = if_set_mtu_up(c.ifname, c.mtu);
        if (ret) {
                cli_err(ctx, "%s: set MTU %u and up: %s", c.ifname, c.mtu, strerror(-ret));
                rc = 1;
                goto out_qps;
        }
        for (i = 0; i < c.nq; i++)
                ntbt_qp_link_up(c.q[i].qp);
        for (i = 0; i < c.nq; i++)
                pthread_create(&c.q[i].reader, NULL, reader, &c.q[i]);
        fprintf(stderr, "ntbt: tun: %s up over %s, %d queue%s, MTU %u%s\n", c.ifname, dev, c.nq,
                c.nq > 1 ? "s" : "", c.mtu, c.offload ? ", offloads on" : "");
        /* Lower the MTU once the real max payload is known. */
        while (!stop_signal) {
                struct pollfd pf = {.fd = c.stop_pipe[0], .events = POLLIN};

                poll(&pf, 1, 200);
                if (ntbt_qp_link_is_up(c.q[0].qp) && ntbt_qp_max_payload(c.q[0].qp) &&
                    c.mtu + ETH_HDR + (c.offload ? VNET_HDR : 0) > ntbt_qp_max_payload(c.q[0].qp)) {
                        c.mtu =
                            ntbt_qp_max_payload(c.q[0].qp) - ETH_HDR - (c.offload ? VNET_HDR : 0);
                        if_set_mtu_up(c.ifname, c.mtu);
                        fprintf(stderr, "ntbt: tun: %s MTU lowered to %u (the QP's payload)\n",
                                c.ifname, c.mtu);
                }
        }
        if (write(c.stop_pipe[1], "x", 1) < 0) {
                /* the readers also see stop_signal */
        }
        for (i = 0; i < c.nq; i++)
                pthread_join(c.q[i].reader, NULL);
        if (c.verbose)
                for (i = 0; i < c.nq; i++)
                        fprintf(stderr,
                                "ntbt: tun: queue %d: tx %llu, rx %llu, dropped: no link %llu, "
                                "too long %llu, rx write errors %llu\n",
                                i, (unsigned long long)c.q[i].tx_frames,
                                (unsigned long long)c.q[i].rx_frames,
                                (unsigned long long)c.q[i].tx_dropped_link,
                                (unsigned long long)c.q[i].tx_dropped_size,
                                (unsigned long long)c.q[i].rx_write_errors);
out_qps:
        for (i = 0; i < c.nq; i++)
                if (c.q[i].qp)
                        ntbt_qp_free(c.q[i].qp);
out_t:
        ntbt_transport_close(c.t);
out_dev:
        cli_close_dev(c.dev);
out_fds:
        for (i = 0; i < c.nq; i++) {
                if (c.q[i].fd >= 0)
                        close(c.q[i].fd);
                free(c.q[i].rx_bufs);
        }
        return rc;
}
