/* SPDX-License-Identifier: MIT */
/*
 * ntbt perf's server: one run per client size, until the client says its
 * last.  It counts (and with --verify checks) what arrives on each QP's
 * event thread, and under --bidir sends back with one sender per QP.
 */
#include <string.h>
#include <time.h>

#include <ntbt/ntbt.h>

#include "../util.h"
#include "perf.h"

/* A run being served. */
struct serve {
        struct perf_run r;
        struct perf_result res;
        int64_t t0;  /* the first hello */
        double c0;   /* CPU seconds then */
        int active;  /* QPs whose hello came */
        int started; /* --bidir: senders run */
        int last;    /* the client's last size */
};

/* Act on q's hello, once it came: the first sets the run's size and flags
 * (every QP of a run carries the same); --bidir starts q's sender.  0, or 1
 * when the sender does not start. */
static int take_hello(struct serve *sv, struct perf_qp *q)
{
        struct perf_run *r = &sv->r;

        /* Acquire pairs with perf_rx's release of the hello fields. */
        if (q->hello_taken || !__atomic_load_n(&q->hello_seen, __ATOMIC_ACQUIRE))
                return 0;
        q->hello_taken = 1;
        if (!sv->active++) {
                sv->t0 = now_ns();
                sv->c0 = cpu_s();
                r->size = q->hello_size;
                r->verify = !!(q->hello_flags & F_VERIFY);
                sv->last = !!(q->hello_flags & F_LAST);
        }
        if ((q->hello_flags & F_BIDIR) && r->size >= 1 && r->size <= ntbt_qp_max_payload(q->qp)) {
                if (start_sender(r, q))
                        return 1;
                sv->started = 1;
                /* Release: the senders read r->size and r->verify after go. */
                __atomic_store_n(&r->go, 1, __ATOMIC_RELEASE);
        }
        return 0;
}

/* Until every QP that came up went down again, or a link is lost: 0, or 1. */
static int serve_wait(struct serve *sv)
{
        struct perf_run *r = &sv->r;

        for (;;) {
                int up = 0, down = 0, lost = 0;

                for (int i = 0; i < r->nqps; i++) {
                        struct perf_qp *q = &r->q[i];
                        int ups = __atomic_load_n(&q->ups, __ATOMIC_SEQ_CST);
                        int downs = __atomic_load_n(&q->downs, __ATOMIC_SEQ_CST);

                        up += ups > 0;
                        down += ups > 0 && downs > 0;
                        if (downs &&
                            __atomic_load_n(&q->down_reason, __ATOMIC_SEQ_CST) != NTBT_QP_DOWN_PEER)
                                lost = 1;
                        if (take_hello(sv, q))
                                return 1;
                }
                if (lost || (up && down == up))
                        return 0;
                sleep_ns(2 * NS_PER_MS);
        }
}

/* Stop the senders, free the QPs and add up their counters: rc, or 1
 * after a message. */
static int serve_collect(const char *ctx, struct serve *sv, int rc)
{
        struct perf_run *r = &sv->r;
        struct perf_result *res = &sv->res;

        __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
        for (int i = 0; i < r->nqps; i++) {
                struct perf_qp *q = &r->q[i];

                if (__atomic_load_n(&q->downs, __ATOMIC_SEQ_CST) &&
                    __atomic_load_n(&q->down_reason, __ATOMIC_SEQ_CST) != NTBT_QP_DOWN_PEER) {
                        cli_err(ctx, "%s: queue pair %d: link lost", r->o->c.dev, i);
                        rc = 1;
                }
                if (q->has_thread)
                        pthread_join(q->thread, NULL);
                q->has_thread = 0;
                if (q->send_err) {
                        cli_err(ctx, "%s: queue pair %d: send: %s", r->o->c.dev, i,
                                strerror(-q->send_err));
                        rc = 1;
                }
                res->msgs += q->sent;
                add_stats(res, NULL, q->qp);
                /* Frees the QP: the event thread no longer touches its counters. */
                ntbt_qp_free(q->qp);
                q->qp = NULL;
                res->rx_msgs += q->rx_msgs;
                res->rx_bytes += q->rx_bytes;
                res->verify_errors += q->verify_errors;
        }
        return rc;
}

/* The run's line: on stdout, or on stderr under --loopback (with -v or a
 * failure only). */
static void serve_report(const char *ctx, const struct serve *sv, double secs, int rc)
{
        const struct perf_opts *o = sv->r.o;
        const struct perf_result *res = &sv->res;

        if (o->c.verbose || !o->c.loopback || rc)
                fprintf(o->c.loopback ? stderr : stdout,
                        "ntbt: %s: %u-byte messages on %d queue pair%s: received %llu messages, "
                        "%llu bytes in %.2f s (%.3f GB/s)%s, CPU %.0f%%, errors %llu%s\n",
                        ctx, sv->r.size, sv->r.nqps, sv->r.nqps == 1 ? "" : "s",
                        (unsigned long long)res->rx_msgs, (unsigned long long)res->rx_bytes, secs,
                        secs > 0 ? (double)res->rx_bytes / secs / 1e9 : 0.0,
                        sv->started ? ", sent back too" : "",
                        secs > 0 ? (cpu_s() - sv->c0) / secs * 100 : 0.0,
                        (unsigned long long)result_errors(res),
                        sv->r.verify ? (res->verify_errors ? ", VERIFY FAILED" : ", verified")
                                     : "");
        if (res->verify_errors)
                cli_err(ctx, "verify: %llu damaged, missing or repeated messages",
                        (unsigned long long)res->verify_errors);
}

/* One client run: returns 0 and sets *last when the client said it was its
 * last size; 1 on an error. */
static int serve_one(const char *ctx, const struct perf_opts *o, int *last)
{
        static struct serve sv;
        double secs;
        int rc;

        memset(&sv, 0, sizeof(sv));
        rc = run_open(&sv.r, ctx, o, 1);
        if (rc)
                return rc;
        sv.last = 1;
        rc = serve_wait(&sv);
        secs = sv.active ? (double)(now_ns() - sv.t0) / 1e9 : 0;
        rc = serve_collect(ctx, &sv, rc);
        /* tx_errors stays 0: with --bidir the client's close cuts off frames
         * still queued here, and that is how a run ends, not an error. */
        if (result_errors(&sv.res))
                rc = 1;
        serve_report(ctx, &sv, secs, rc);
        fflush(NULL);
        *last = sv.last;
        run_close(&sv.r);
        return rc;
}

int run_server(const char *ctx, const struct perf_opts *o)
{
        int last = 0, rc = 0;

        while (!rc && !last)
                rc = serve_one(ctx, o, &last);
        return rc;
}
