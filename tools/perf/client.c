/* SPDX-License-Identifier: MIT */
/*
 * ntbt perf's client: one run per size.  It waits for the server on every
 * queue pair, sends each its hello, runs one sender per QP for --time
 * seconds (interval lines meanwhile), waits until the server has taken
 * every message, and fills one row of the table.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <ntbt/ntbt.h>

#include "../util.h"
#include "perf.h"

/* Wait for the server on every queue pair: 0, or 1 after a message (no
 * server within --timeout, default 30 s, or one whose transport does not
 * match). */
static int client_wait_server(const char *ctx, struct perf_run *r)
{
        const struct perf_opts *o = r->o;
        double wait_s = o->c.timeout > 0 ? o->c.timeout : 30;

        for (int i = 0; i < r->nqps; i++) {
                int64_t deadline = now_ns() + (int64_t)(wait_s * 1e9);
                int mismatched = 0, said = 0;
                char why[256];

                while (ntbt_qp_wait_link(r->q[i].qp, 100 * NS_PER_MS)) {
                        if (!said && now_ns() > deadline - (int64_t)((wait_s - 1) * 1e9)) {
                                fprintf(stderr,
                                        "ntbt: %s: waiting for the server on %s, queue pair %d\n",
                                        ctx, o->c.dev, i);
                                said = 1;
                        }
                        /* A handshake that keeps failing will not heal by waiting. */
                        mismatched =
                            ntbt_transport_mismatch(r->t, why, sizeof(why)) ? mismatched + 1 : 0;
                        if (mismatched >= 20) {
                                cli_err(ctx, "%s: the server's transport does not match: %s",
                                        o->c.dev, why);
                                return 1;
                        }
                        if (now_ns() > deadline) {
                                cli_err(ctx,
                                        "%s: queue pair %d: no peer within %g s (is 'ntbt perf "
                                        "--server' running on it, with the same --qps and --mtu? "
                                        "--timeout)",
                                        o->c.dev, i, wait_s);
                                return 1;
                        }
                }
        }
        return 0;
}

/* Every QP's hello, and its sender (waiting for go): 0, or 1 after a message. */
static int client_hellos(const char *ctx, struct perf_run *r, int last)
{
        const struct perf_opts *o = r->o;
        uint32_t flags =
            (o->verify ? F_VERIFY : 0) | (o->bidir ? F_BIDIR : 0) | (last ? F_LAST : 0);

        for (int i = 0; i < r->nqps; i++) {
                struct perf_qp *q = &r->q[i];
                int ret;

                /* What the server sends back under --bidir. */
                __atomic_store_n(&q->rx_size, r->size, __ATOMIC_RELAXED);
                __atomic_store_n(&q->rx_verify, o->verify, __ATOMIC_RELAXED);
                perf_hello(q->hello, flags, r->size, r->nqps);
                while ((ret = ntbt_qp_tx_enqueue(q->qp, (void *)1, q->hello, HELLO_LEN, 0)) ==
                       -EAGAIN)
                        ntbt_qp_wait_tx(q->qp, 1, NS_PER_SEC);
                if (ret || start_sender(r, q)) {
                        cli_err(ctx, "%s: queue pair %d: %s", o->c.dev, i,
                                ret ? strerror(-ret) : "no sender");
                        return 1;
                }
        }
        return 0;
}

/* Let the senders go for --time seconds from t0, with an interval line
 * every --interval seconds (on stderr when stdout carries JSON). */
static void client_measure(struct perf_run *r, int64_t t0)
{
        const struct perf_opts *o = r->o;
        double iv = o->interval;
        int64_t t_end = t0 + (int64_t)(o->seconds * 1e9);
        int64_t t_next = iv > 0 ? t0 + (int64_t)(iv * 1e9) : t_end;
        uint64_t prev_msgs = 0, prev_rx = 0;

        /* Release: the senders read the run's size and flags after seeing go. */
        __atomic_store_n(&r->go, 1, __ATOMIC_RELEASE);
        for (;;) {
                int64_t now = now_ns(), until = t_next < t_end ? t_next : t_end;
                uint64_t msgs = 0, rx = 0;

                if (now < until) {
                        sleep_ns(until - now);
                        continue;
                }
                for (int i = 0; iv > 0 && i < r->nqps; i++) {
                        msgs += __atomic_load_n(&r->q[i].sent, __ATOMIC_RELAXED);
                        rx += __atomic_load_n(&r->q[i].rx_bytes, __ATOMIC_RELAXED);
                }
                if (iv > 0) {
                        interval_line(o->output ? stderr : stdout,
                                      (double)(t_next - t0 - (int64_t)(iv * 1e9)) / 1e9,
                                      (double)(now - t0) / 1e9, (msgs - prev_msgs) * r->size,
                                      msgs - prev_msgs, rx - prev_rx, o->bidir);
                        prev_msgs = msgs;
                        prev_rx = rx;
                        t_next += (int64_t)(iv * 1e9);
                }
                if (now >= t_end)
                        break;
        }
}

/* Stop the senders; done when the server has taken every message (all
 * slots free again).  0, or 1 after a message. */
static int client_drain(const char *ctx, struct perf_run *r)
{
        int rc = 0;

        __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
        run_join_senders(r);
        for (int i = 0; i < r->nqps; i++) {
                struct perf_qp *q = &r->q[i];

                if (q->send_err) {
                        cli_err(ctx, "%s: queue pair %d: send: %s after %llu messages", r->o->c.dev,
                                i, strerror(-q->send_err), (unsigned long long)q->sent);
                        rc = 1;
                } else if (ntbt_qp_wait_tx(q->qp, ntbt_qp_tx_entries(q->qp) - 1, 30 * NS_PER_SEC)) {
                        cli_err(ctx, "%s: queue pair %d: the server did not take every message",
                                r->o->c.dev, i);
                        rc = 1;
                }
        }
        return rc;
}

/* The senders' counters and the transport's, per QP and in all, into res. */
static void client_collect(struct perf_run *r, struct perf_result *res)
{
        res->nqps = r->nqps;
        for (int i = 0; i < r->nqps; i++) {
                struct perf_qp *q = &r->q[i];
                struct perf_qp_result *pq = &res->qp[i];

                pq->msgs = q->sent;
                pq->enq_ns_sum = q->enq_ns;
                pq->enq_samples = q->enq_samples;
                pq->rx_msgs = __atomic_load_n(&q->rx_msgs, __ATOMIC_RELAXED);
                pq->rx_bytes = __atomic_load_n(&q->rx_bytes, __ATOMIC_RELAXED);
                pq->tx_errors = __atomic_load_n(&q->tx_errors, __ATOMIC_RELAXED);
                res->msgs += pq->msgs;
                res->enq_ns_sum += pq->enq_ns_sum;
                res->enq_samples += pq->enq_samples;
                res->rx_msgs += pq->rx_msgs;
                res->rx_bytes += pq->rx_bytes;
                res->tx_errors += pq->tx_errors;
                add_stats(res, pq, q->qp);
        }
}

/* After the run was set up: wait, hello, send, drain, count.  0, or the
 * exit status after a message. */
static int client_run(const char *ctx, struct perf_run *r, uint32_t want_size, int last,
                      struct perf_result *res)
{
        uint32_t max;
        int64_t t0;
        double c0;
        int rc;

        if (client_wait_server(ctx, r))
                return 1;
        max = ntbt_qp_max_payload(r->q[0].qp);
        r->size = want_size ? want_size : max;
        res->size = r->size;
        res->tx_mode = ntbt_qp_tx_mode(r->q[0].qp);
        res->rx_threads = ntbt_transport_rx_threads(r->t);
        if (r->size > max || max < 16) {
                cli_err(ctx, "--size %u is larger than the max payload %u", r->size, max);
                return 2;
        }
        if (client_hellos(ctx, r, last))
                return 1;
        c0 = cpu_s();
        t0 = now_ns();
        client_measure(r, t0);
        rc = client_drain(ctx, r);
        res->seconds = (double)(now_ns() - t0) / 1e9;
        res->cpu_client = (cpu_s() - c0) / res->seconds * 100;
        client_collect(r, res);
        for (int i = 0; i < r->nqps; i++)
                ntbt_qp_link_down(r->q[i].qp); /* the server's run ends on this */
        return rc;
}

int run_client(const char *ctx, const struct perf_opts *o, uint32_t want_size, int last,
               struct perf_result *res)
{
        static struct perf_run r;
        int rc;

        memset(res, 0, sizeof(*res));
        res->size = want_size;
        res->failed = 1;
        res->cpu_server = -1;
        rc = run_open(&r, ctx, o, 0);
        if (rc)
                return rc;
        print_banner(o, want_size);
        r.verify = o->verify;
        r.corrupt_n = o->debug_corrupt;
        rc = client_run(ctx, &r, want_size, last, res);
        fflush(stdout);
        /* Stop the event threads before reading what they wrote. */
        run_free_qps(&r);
        for (int i = 0; i < r.nqps; i++) {
                res->qp[i].verify_errors = r.q[i].verify_errors;
                res->verify_errors += r.q[i].verify_errors;
        }
        run_close(&r);
        if (!rc && result_errors(res))
                rc = 1;
        res->failed = rc != 0;
        return rc;
}
