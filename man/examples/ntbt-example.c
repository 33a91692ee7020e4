/* SPDX-License-Identifier: MIT */
/*
 * Ten messages from one process to another over a private emulated
 * NTB.  Build and run:
 *   cc -o ex ntbt-example.c $(pkg-config --cflags --libs ntbt) && ./ex
 *
 * The receiver (the parent) runs its queue pair in poll mode: no
 * library thread calls into it; its handlers run inside ntbt_qp_poll.
 * The sender (the child) runs its queue pair in event mode: the
 * library's event thread runs the handshake.  What a first program
 * tends to miss:
 *
 *  - The sender waits for the QP link before it sends (a send before
 *    fails with -ENOLINK); the receiver posts its buffers before it
 *    asks for the link, so that no frame finds it without one.
 *  - The sender drains before it closes: it waits until every
 *    transmit slot is free again (the receiver has consumed every
 *    frame), then frees the QP, which sends LINK_DOWN.  The receiver
 *    stops on that LINK_DOWN, the protocol's end of stream, not on a
 *    count or a timer.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#define COUNT   10
#define SECONDS 1000000000LL /* timeouts are in nanoseconds */
#define BUF_LEN 64

static int fail(const char *what, int err)
{
        fprintf(stderr, "ntbt-example: %s: %s\n", what, strerror(-err));
        return 1;
}

/* The library never prints; it hands its messages to this hook. */
static void log_line(void *ctx, int level, const char *msg)
{
        (void)ctx;
        if (level <= NTBT_LOG_WARN)
                fprintf(stderr, "ntbt: %s\n", msg);
}

static int sender(const char *spec)
{
        /* A buffer stays the library's until sent (thread copy mode).
         */
        static char msg[COUNT][32];
        struct ntbt_dev *dev = NULL;
        struct ntbt_transport *t = NULL;
        struct ntbt_qp *qp = NULL;
        int i, ret;

        ret = ntbt_dev_open(spec, &dev);
        if (!ret)
                ret = ntbt_transport_open(dev, NULL, &t);
        if (!ret)
                ret = ntbt_qp_create(t, NULL, NULL, NULL, &qp);
        if (!ret)
                ret = ntbt_qp_link_up(qp);
        if (!ret)
                ret = ntbt_qp_wait_link(qp, 10 * SECONDS);
        for (i = 0; i < COUNT && !ret; i++) {
                int len = snprintf(msg[i], sizeof(msg[i]),
                                   "message %d of %d", i + 1, COUNT);

                /* -EAGAIN: the ring is full; wait for a free slot. */
                while ((ret = ntbt_qp_tx_enqueue(qp, NULL, msg[i],
                                                 (uint32_t)len + 1,
                                                 0)) == -EAGAIN) {
                        ret = ntbt_qp_wait_tx(qp, 1, 10 * SECONDS);
                        if (ret)
                                break;
                }
        }
        /* Drain: all slots but one free: the peer took every frame. */
        if (!ret)
                ret = ntbt_qp_wait_tx(qp, ntbt_qp_tx_entries(qp) - 1,
                                      10 * SECONDS);
        if (ret)
                fail("sender", ret);
        /* Each of these ignores NULL.  The free sends LINK_DOWN, the
         * end of the stream; the close waits (at most a second) until
         * the peer has seen it. */
        ntbt_qp_free(qp);
        ntbt_transport_close(t);
        ntbt_dev_close(dev);
        return ret ? 1 : 0;
}

struct receiver {
        int received, closed, lost;
};

static void on_rx(struct ntbt_qp *qp, void *qp_ctx, void *buf_ctx,
                  void *data, int len)
{
        struct receiver *r = qp_ctx;

        (void)buf_ctx;
        /* -ECANCELED at the free; -EMSGSIZE: a frame too big */
        if (len < 0)
                return;
        printf("received: %.*s\n", len, (char *)data);
        r->received++;
        /* Post the buffer again. */
        ntbt_qp_rx_enqueue(qp, NULL, data, BUF_LEN);
}

static void on_event(struct ntbt_qp *qp, void *qp_ctx, int up,
                     int reason)
{
        struct receiver *r = qp_ctx;

        (void)qp;
        if (!up && reason == NTBT_QP_DOWN_PEER)
                r->closed = 1; /* the peer's LINK_DOWN */
        else if (!up)
                r->lost = 1;
}

static int receiver(const char *spec)
{
        static char buf[8][BUF_LEN];
        struct ntbt_qp_handlers h = {.rx = on_rx, .event = on_event};
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .poll = 1};
        struct receiver r = {0};
        struct ntbt_dev *dev = NULL;
        struct ntbt_transport *t = NULL;
        struct ntbt_qp *qp = NULL;
        time_t deadline = time(NULL) + 10;
        int i, ret;

        ret = ntbt_dev_open(spec, &dev);
        if (!ret)
                ret = ntbt_transport_open(dev, NULL, &t);
        if (!ret)
                ret = ntbt_qp_create(t, &qo, &h, &r, &qp);
        for (i = 0; i < 8 && !ret; i++)
                ret = ntbt_qp_rx_enqueue(qp, NULL, buf[i], BUF_LEN);
        if (!ret)
                ret = ntbt_qp_link_up(qp);
        /* Until the sender closes: sleep on the doorbell, receive. */
        while (!ret && !r.closed && !r.lost && time(NULL) < deadline) {
                ret = ntbt_qp_wait_rx(qp, SECONDS / 10);
                if (!ret) /* runs on_rx and on_event */
                        ret = ntbt_qp_poll(qp, 16);
                if (ret > 0 || ret == -ETIMEDOUT)
                        ret = 0;
        }
        /* lost: the sender died, or broke the protocol */
        if (!ret && !r.closed)
                ret = r.lost ? -ENOLINK : -ETIMEDOUT;
        if (ret)
                fail("receiver", ret);
        else
                printf("%d messages, then the sender closed\n",
                       r.received);
        ntbt_qp_free(qp);
        ntbt_transport_close(t);
        ntbt_dev_close(dev);
        return ret || r.received != COUNT;
}

int main(void)
{
        char name[32], spec[40];
        int ret, status;
        pid_t pid;

        ntbt_set_log(log_line, NULL);
        /* A private device: ports 0 and 1 of /dev/shm/ntbt-NAME. */
        snprintf(name, sizeof(name), "example-%d", (int)getpid());
        snprintf(spec, sizeof(spec), "shm:%s", name);
        ret = ntbt_shm_create(name, NULL);
        if (ret)
                return fail("create", ret);
        fflush(stdout);
        pid = fork();
        if (pid == 0)
                _exit(sender(spec));
        ret = pid < 0 ? fail("fork", -errno) : receiver(spec);
        if (pid > 0 && (waitpid(pid, &status, 0) != pid || status != 0))
                ret = 1;
        ntbt_shm_remove(name);
        return ret;
}
