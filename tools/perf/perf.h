/* SPDX-License-Identifier: MIT */
/*
 * ntbt perf: throughput and message rate over N queue pairs.
 *
 * Each run (one message size) opens the transport with --qps queue pairs.
 * The client sends a 16-byte hello on every QP (what to expect: size,
 * --verify, --bidir, whether this is the last run), then one sender thread
 * per QP sends messages of that size for --time seconds while the main
 * thread prints interval lines.  It then waits until the server has taken
 * every message (all transmit slots free again), takes the QPs down and
 * prints a row of the table.  The server counts (and with --verify checks)
 * what arrives on each QP's event thread; with --bidir it also runs one
 * sender thread per QP until the client takes the link down.
 *
 * The files: perf.c (the command: a sweep over the sizes), options.c (the
 * command line), protocol.c (the hello, the --verify format, the handlers, the sender
 * thread), run.c (opening and closing a run, its counters), client.c,
 * server.c, report.c (the table, the interval lines, JSON).
 *
 * --zc: the client's senders write each message into a buffer
 * ntbt_qp_tx_reserve_burst gives (the slot in the peer's window where the
 * device maps it), a burst at a time, and commit them together; the server's QPs are poll-mode
 * NTBT_QP_ZC_RX ones, each with a receive thread that takes frames in place (ntbt_qp_rx_get,
 * ntbt_qp_rx_release) and polls for the link.
 */
#ifndef NTBT_TOOLS_PERF_H
#define NTBT_TOOLS_PERF_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "../cli.h"

#define MAX_SIZES 64
#define BURST     16 /* messages per ntbt_qp_tx_enqueue_burst call, small messages */
/*
 * From this size on the sender sends one message per call from two buffers,
 * and the receiver keeps one buffer posted: the bytes a burst or a rotation
 * of 16 posted buffers touch (1 MiB each at 64 KiB) then no longer fit in
 * the cores' caches, which cost about 8% of the 64 KiB throughput
 * (bench/README.md).  Small messages need the bursts: one doorbell and one
 * lock round trip for 16 of them.
 */
#define BIG_MSG 32768
/* Send buffers per QP, in bursts: inline sends complete before the call
 * returns, so two bursts (the fewer bytes the sender touches, the more stay
 * in its cache); the copy thread's complete later, so eight, that the
 * sender may run that far ahead of it (two left it waiting on the thread
 * at every burst: 0.45-0.75 M 64-byte messages a second against 0.97-1.13
 * with eight, on 2 cores). */
#define POOL_INLINE 2
#define POOL_THREAD 8
#define RXBUFS      16
#define HELLO_LEN   16
#define HELLO_MAG   0x5042544eu /* "NTBP" */
#define F_VERIFY    1u
#define F_BIDIR     2u
#define F_LAST      4u

/* Messages per enqueue call for this message size. */
static inline unsigned burst_for(uint32_t size)
{
        return size >= BIG_MSG ? 1 : BURST;
}

/* --json: one document; --json-lines: one object per size. */
enum { PERF_OUT_TEXT, PERF_OUT_JSON, PERF_OUT_JSON_LINES };

struct perf_opts {
        struct cli_common c;  /* c.dev: the private device under --loopback */
        const char *user_dev; /* DEV as given */
        int output;           /* PERF_OUT_* */
        int json_lines;       /* --json-lines given */
        int verify, bidir, qps;
        int zc; /* --zc: send with reserve/commit, receive in place (rx_get/release) */
        uint32_t sizes[MAX_SIZES]; /* 0: the max payload */
        int nsizes;
        uint64_t debug_corrupt; /* test hook: damage message N after its CRC (1-based) */
        double seconds, interval;
        uint64_t work_ns;
        uint32_t rx_threads; /* --rx-threads: the transport option (0: automatic) */
};
/* One queue pair's share of a run (--json with --qps > 1). */
struct perf_qp_result {
        uint64_t msgs, rx_msgs, rx_bytes, enq_ns_sum, enq_samples;
        uint64_t tx_errors, verify_errors, rx_err_ver, rx_err_oflow, rx_err_flags, tx_err_rri,
            resets;
};

/* One row of the table. */
struct perf_result {
        uint32_t size;
        int tx_mode, failed;
        int rx_threads; /* the client transport's receive threads, resolved */
        uint64_t msgs, rx_msgs, rx_bytes, enq_ns_sum, enq_samples;
        uint64_t tx_errors, verify_errors, rx_err_ver, rx_err_oflow, rx_err_flags, tx_err_rri,
            resets;
        double seconds, cpu_client, cpu_server;
        int nqps;
        struct perf_qp_result qp[NTBT_MAX_QPS];
};

struct perf_run;

/* One queue pair of a run.  Counters written by one thread and read by the
 * main thread's interval lines are relaxed atomics: they are statistics,
 * ordering nothing. */
struct perf_qp {
        struct perf_run *r;
        struct ntbt_qp *qp;
        pthread_t thread;
        int has_thread;
        uint8_t hello[HELLO_LEN];
        uint8_t *pool, *rxbufs;
        uint32_t buf_len;
        /* sender thread */
        uint64_t sent, enq_ns, enq_samples;
        uint64_t completed; /* tx handler: release, read with acquire by the sender */
        uint64_t tx_errors; /* tx handler, atomic */
        int send_err;
        /* receive side (the QP's receive thread: --rx-threads) */
        uint64_t rx_msgs, rx_bytes, expect_seq, verify_errors;
        unsigned rx_posted; /* receive buffers posted (event thread, after the setup) */
        /* What arriving messages must look like.  Relaxed atomics: the client
         * sets them before its hello, the server's event thread from the
         * hello; no thread of this process orders the two. */
        uint32_t rx_size;
        int rx_verify;
        int hello_seen;  /* event thread stores with release after filling the fields below */
        int hello_taken; /* server main thread: acted on the hello */
        uint32_t hello_flags, hello_size;
        int ups, downs, down_reason; /* atomic */
};

struct perf_run {
        const struct perf_opts *o;
        const char *ctx;
        struct ntbt_dev *dev;
        struct ntbt_transport *t;
        struct perf_qp q[NTBT_MAX_QPS];
        int nqps;
        uint32_t size;      /* message size the senders send; set before go */
        int is_server;      /* the server does not send a hello */
        int verify;         /* the senders produce the --verify format; set before go */
        int go, stop;       /* atomic: the senders start, and stop */
        uint64_t corrupt_n; /* test hook, client only */
};

/* Send buffers per QP for bursts of burst messages (POOL_INLINE). */
static inline unsigned pool_for(const struct perf_run *r, unsigned burst)
{
        return burst * (r->o->c.tx_mode == NTBT_TX_THREAD ? POOL_THREAD : POOL_INLINE);
}

/* options.c: the options into o (CLI_RUN, or the exit status). */
int perf_parse(int argc, char **argv, struct perf_opts *o);
/* The client's sizes (the default sweep when --size is not given), each
 * checked against --mtu, and the default --interval: 0, or 2 after a message. */
int perf_sizes(const char *ctx, struct perf_opts *o);

/* protocol.c */
/* The hello of a run: HELLO_LEN bytes into hello. */
void perf_hello(uint8_t *hello, uint32_t flags, uint32_t size, int nqps);
void perf_event(struct ntbt_qp *qp, void *ctx, int up, int reason);
void perf_rx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, void *data, int len);
void perf_tx_done(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len);
/* The sender thread of q: messages of r->size from go until stop. */
void *perf_sender(void *arg);
/* --zc, the server: q's receive thread (a poll-mode NTBT_QP_ZC_RX QP),
 * taking frames in place until stop. */
void *perf_zc_receiver(void *arg);

/* run.c */
struct rusage;
/* User plus system CPU seconds. */
double ru_seconds(const struct rusage *ru);
/* This process's CPU seconds, user and system. */
double cpu_s(void);
/* 0, or the exit status after a message: 2 for a bad device string, else 1. */
int run_open(struct perf_run *r, const char *ctx, const struct perf_opts *o, int server);
void run_close(struct perf_run *r);
/* q's pool and sender thread: 0, or -1 after a message. */
int start_sender(struct perf_run *r, struct perf_qp *q);
/* Join the senders (after stop). */
void run_join_senders(struct perf_run *r);
/* Free the QPs: their event threads no longer touch the counters. */
void run_free_qps(struct perf_run *r);
/* The transport's error counters of qp, into the run's and (if pq) the QP's. */
void add_stats(struct perf_result *res, struct perf_qp_result *pq, struct ntbt_qp *qp);
uint64_t result_errors(const struct perf_result *res);

/* server.c: serve runs until the client's last: 0, or 1. */
int run_server(const char *ctx, const struct perf_opts *o);
/* client.c: one run of want_size (0: the max payload) into res: 0, or the exit status. */
int run_client(const char *ctx, const struct perf_opts *o, uint32_t want_size, int last,
               struct perf_result *res);

/* report.c */
void interval_line(FILE *f, double from, double to, uint64_t bytes, uint64_t msgs,
                   uint64_t rx_bytes, int bidir);
void print_banner(const struct perf_opts *o, uint32_t size);
void print_header(const struct perf_opts *o);
void print_row(const struct perf_opts *o, const struct perf_result *res);
void print_json_line(const struct perf_opts *o, const struct perf_result *res);
void print_json_doc(const struct perf_opts *o, const struct perf_result *res, int n, int rc);

#endif
