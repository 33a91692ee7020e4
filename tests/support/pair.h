/* SPDX-License-Identifier: MIT */
/*
 * A pair of endpoints on a private device: a shm device named for this
 * process and a tag, its two ports opened (device, transport, QP) in this
 * process or one of them by a peer process, and a teardown that closes what
 * is open, reaps the peer, removes the device and checks that nothing is
 * left in /dev/shm.
 *
 * The peer: pair_fork() runs a function in a forked child, which is only
 * safe before this process starts a thread (a device handle has a
 * heartbeat thread; TSan refuses threads in a child forked from a threaded
 * process).  A parent that already runs threads re-executes itself with
 * pair_spawn() and reads the child's arguments in main, before test_main.
 */
#ifndef NTBT_TESTS_PAIR_H
#define NTBT_TESTS_PAIR_H

#include <stdint.h>
#include <sys/types.h>

#include <ntbt/ntbt.h>

#include "stream.h"

#define PAIR_SEC 1000000000LL

struct pair {
        char name[64];    /* the device's name (ntbt_shm_create) */
        char spec[2][96]; /* "shm:NAME,port=P" */
        struct ntbt_dev *dev[2];
        struct ntbt_transport *t[2];
        pid_t peer; /* a child playing one port, or 0 */
        int killed; /* a peer was SIGKILLed: its stats file may be left */
};

/* Create the device: name t-TAG-PID, geometry g (NULL: the default). */
void pair_create(struct pair *p, const char *tag, const struct ntbt_shm_geom *g);
/* A re-executed peer's view of the device NAME its parent created: the
 * names only; it opens its port with pair_open and closes with pair_close. */
void pair_attach(struct pair *p, const char *name);
/* Open port `port`'s device in this process, as p->dev[port]. */
struct ntbt_dev *pair_open_dev(struct pair *p, int port);
/* Open port `port`'s device and transport (o may be NULL), as p->t[port]. */
struct ntbt_transport *pair_open(struct pair *p, int port, const struct ntbt_transport_opts *o);
/* Create QP opts->qp_num (opts NULL: QP 0) on p->t[port] and ask for its link. */
struct ntbt_qp *pair_qp(struct pair *p, int port, const struct ntbt_qp_opts *opts,
                        const struct ntbt_qp_handlers *h, void *ctx);
/* Post n receive buffers of len bytes each, from bufs. */
void pair_post(struct ntbt_qp *qp, void *bufs, int n, uint32_t len);
/* Wait for a QP's link (event mode, or a poll-mode QP the wait polls). */
void pair_wait_link(struct ntbt_qp *qp);
/* Close p->t[port] and p->dev[port] if open. */
void pair_close(struct pair *p, int port);

/* Run fn(p, arg) in a forked child that exits 0 when it returns. */
void pair_fork(struct pair *p, void (*fn)(struct pair *p, void *arg), void *arg);
/* Re-execute this binary with args as the peer (test_spawn). */
void pair_spawn(struct pair *p, char *const args[]);
/* Wait for the peer and CHECK that it exited 0. */
void pair_reap(struct pair *p);
/* Kill the peer with SIGKILL, reap it, CHECK that the signal ended it
 * (a peer the test kills itself: set killed). */
void pair_kill(struct pair *p);

/* Close both ports, reap the peer, remove the device; CHECK that nothing
 * of it is left in /dev/shm (the device, a transport's stats file), but
 * for the stats file of a killed peer, which nobody could close. */
void pair_destroy(struct pair *p);

/* One stream_run per port: a on port 0 here, b on port 1 in a forked child. */
void pair_stream(struct pair *p, struct stream_cfg a, struct stream_cfg b);

#endif
