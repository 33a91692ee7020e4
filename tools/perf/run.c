/* SPDX-License-Identifier: MIT */
/* ntbt perf: opening and closing a run, and its counters (perf.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <ntbt/ntbt.h>

#include "perf.h"

double ru_seconds(const struct rusage *ru)
{
        return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
               (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

double cpu_s(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return ru_seconds(&ru);
}

void run_join_senders(struct perf_run *r)
{
        for (int i = 0; i < r->nqps; i++) {
                if (r->q[i].has_thread)
                        pthread_join(r->q[i].thread, NULL);
                r->q[i].has_thread = 0;
        }
}

void run_free_qps(struct perf_run *r)
{
        for (int i = 0; i < r->nqps; i++) {
                if (r->q[i].qp)
                        ntbt_qp_free(r->q[i].qp);
                r->q[i].qp = NULL;
        }
}

void run_close(struct perf_run *r)
{
        int i;

        __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
        run_join_senders(r);
        run_free_qps(r);
        if (r->t)
                ntbt_transport_close(r->t);
        if (r->dev)
                cli_close_dev(r->dev);
        for (i = 0; i < r->nqps; i++) {
                free(r->q[i].pool);
                free(r->q[i].rxbufs);
        }
        memset(r, 0, sizeof(*r));
}

/* q's receive side, then its link: receive buffers posted for the event
 * thread, or (--zc, the server: a poll-mode QP) a receive thread.  0, or
 * -1 after a message. */
static int qp_receive_setup(struct perf_run *r, struct perf_qp *q, int poll)
{
        int j;

        if (poll) {
                ntbt_qp_link_up(q->qp);
                if (pthread_create(&q->thread, NULL, perf_zc_receiver, q)) {
                        cli_err(r->ctx, "cannot start a receive thread");
                        return -1;
                }
                q->has_thread = 1;
                return 0;
        }
        q->rxbufs = malloc((size_t)RXBUFS * q->buf_len);
        if (!q->rxbufs)
                return -1;
        for (j = 0; j < RXBUFS; j++)
                ntbt_qp_rx_enqueue(q->qp, NULL, q->rxbufs + (size_t)j * q->buf_len, q->buf_len);
        q->rx_posted = RXBUFS; /* before the link is up: no frame yet */
        ntbt_qp_link_up(q->qp);
        return 0;
}

int run_open(struct perf_run *r, const char *ctx, const struct perf_opts *o, int server)
{
        struct ntbt_transport_opts to = {.size = sizeof(to),
                                         .transport_mtu = o->c.mtu,
                                         .max_qps = (uint32_t)o->qps,
                                         .flags = o->c.flags,
                                         .rx_threads = o->rx_threads};
        struct ntbt_qp_handlers h = {.rx = perf_rx, .tx = perf_tx_done, .event = perf_event};
        int i, ret;

        memset(r, 0, sizeof(*r));
        r->o = o;
        r->ctx = ctx;
        r->is_server = server;
        ret = cli_open_dev(ctx, o->c.dev, &r->dev);
        if (ret)
                return cli_dev_status(ret);
        ret = ntbt_transport_open(r->dev, &to, &r->t);
        if (ret) {
                cli_err(ctx, "%s: transport: %s", o->c.dev, strerror(-ret));
                goto fail;
        }
        if (ntbt_transport_qp_count(r->t) < o->qps) {
                cli_err(ctx, "%s: --qps %d, but this device carries only %d queue pairs", o->c.dev,
                        o->qps, ntbt_transport_qp_count(r->t));
                goto fail;
        }
        r->nqps = o->qps;
        for (i = 0; i < r->nqps; i++) {
                struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = i, .tx_mode = o->c.tx_mode};
                struct perf_qp *q = &r->q[i];

                q->r = r;
                q->buf_len = o->c.mtu ? o->c.mtu : 65536;
                if (server && o->zc) { /* received in place, on a thread of ours */
                        qo.poll = 1;
                        qo.flags = NTBT_QP_ZC_RX;
                }
                ret = ntbt_qp_create(r->t, &qo, &h, q, &q->qp);
                if (ret) {
                        cli_err(ctx, "%s: queue pair %d: %s", o->c.dev, i, strerror(-ret));
                        goto fail;
                }
                if (qp_receive_setup(r, q, qo.poll))
                        goto fail;
        }
        return 0;
fail:
        run_close(r);
        return 1;
}

int start_sender(struct perf_run *r, struct perf_qp *q)
{
        q->pool = calloc(pool_for(r, burst_for(r->size)), r->size);
        if (!q->pool || pthread_create(&q->thread, NULL, perf_sender, q)) {
                cli_err(r->ctx, "cannot start a sender thread");
                return -1;
        }
        q->has_thread = 1;
        return 0;
}

void add_stats(struct perf_result *res, struct perf_qp_result *pq, struct ntbt_qp *qp)
{
        struct ntbt_qp_stats st = {.size = sizeof(st)};

        if (ntbt_qp_stats(qp, &st))
                return;
        res->rx_err_ver += st.rx_err_ver;
        res->rx_err_oflow += st.rx_err_oflow;
        res->rx_err_flags += st.rx_err_flags;
        res->tx_err_rri += st.tx_err_rri;
        res->resets += st.resets;
        if (pq) {
                pq->rx_err_ver = st.rx_err_ver;
                pq->rx_err_oflow = st.rx_err_oflow;
                pq->rx_err_flags = st.rx_err_flags;
                pq->tx_err_rri = st.tx_err_rri;
                pq->resets = st.resets;
        }
}

uint64_t result_errors(const struct perf_result *res)
{
        return res->tx_errors + res->verify_errors + res->rx_err_ver + res->rx_err_oflow +
               res->rx_err_flags + res->tx_err_rri + res->resets;
}
