/* SPDX-License-Identifier: MIT */
/*
 * The per-QP TX copy thread (the kernel's tx_memcpy_offload).  The caller
 * reserves the slot and the ver value under tx_lock and queues a job; this
 * thread takes jobs in FIFO order and does spec section 5 steps 3-8: header,
 * copy, DONE, flush, doorbell, completion.  So frames, and completions, stay
 * in reservation order.
 *
 * Queue: single producer (enqueuers are serialised by tx_lock), single
 * consumer (this thread), a ring of job slots with head/tail on separate
 * cache lines.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "../util/barrier.h"
#include "../util/futex.h"
#include "../util/log.h"
#include "copy_thread.h"
#include "transport.h"

/* Ring the doorbell at least this often while jobs keep coming. */
#define RING_EVERY 16

static int fault_create; /* test hook: fail the next thread creations */

void copy_thread_fault_inject(int on)
{
        store_sc(&fault_create, on);
}

static uint32_t ct_count(struct copy_thread *ct)
{
        /* Acquire on tail pairs with the producer's release: the job's
         * fields are visible before it is counted. */
        return load_acquire(&ct->tail) - load_relaxed(&ct->head);
}

int ct_push(struct copy_thread *ct, const struct tx_job *job)
{
        uint32_t tail = load_relaxed(&ct->tail);

        if (tail - load_acquire(&ct->head) == ct->cap)
                return -EAGAIN;
        ct->jobs[tail & (ct->cap - 1)] = *job;
        /* Release: the job is written before the consumer can see it. */
        store_release(&ct->tail, tail + 1);
        /* Dekker with the consumer's sleeping store: seq_cst fence between
         * our tail store and our sleeping load, so either it sees the job
         * or we see it asleep and wake it.  No system call while it runs. */
        smp_mb();
        if (load_relaxed(&ct->sleeping)) {
                store_sc(&ct->sleeping, 0);
                futex_wake_private(&ct->sleeping);
        }
        return 0;
}

int ct_idle(struct copy_thread *ct)
{
        return load_acquire(&ct->head) == load_acquire(&ct->tail) && !load_acquire(&ct->busy);
}

static void complete(struct ntbt_qp *qp, const struct tx_job *j, int res)
{
        if (qp->h.tx)
                qp->h.tx(qp, qp->ctx, j->buf_ctx, j->data, res);
}

static void *copy_main(void *arg)
{
        struct ntbt_qp *qp = arg;
        struct copy_thread *ct = qp->ct;
        int batch = 0;
        uint64_t ring_off = 0;

        qp_copy_thread_started(qp);
        for (;;) {
                struct tx_job j;
                uint32_t head;

                if (ct_count(ct) == 0) {
                        if (batch) {
                                /* The queue ran dry: ring for what we wrote. */
                                pthread_mutex_lock(&qp->copy_lock);
                                if (load_relaxed(&ct->ring_gen) == qp->tx_gen)
                                        tx_ring_copy_locked(qp, ring_off);
                                pthread_mutex_unlock(&qp->copy_lock);
                                batch = 0;
                        }
                        store_release(&ct->busy, 0);
                        if (load_acquire(&ct->stop))
                                break;
                        /* Announce sleep, then look again (see ct_push). */
                        store_sc(&ct->sleeping, 1);
                        smp_mb();
                        if (ct_count(ct) == 0 && !load_acquire(&ct->stop))
                                futex_wait_private(&ct->sleeping, 1);
                        store_sc(&ct->sleeping, 0);
                        continue;
                }
                store_release(&ct->busy, 1);
                head = load_relaxed(&ct->head);
                j = ct->jobs[head & (ct->cap - 1)];
                /* Release: the slot may be reused only after we copied the job out. */
                store_release(&ct->head, head + 1);

                /* A reset or close waiting for copy_lock goes first (see
                 * copy_lock_urgent); seq_cst pairs with its increment. */
                while (load_sc(&qp->copy_urgent))
                        sched_yield();
                pthread_mutex_lock(&qp->copy_lock);
                /* The session check under copy_lock: transport_down's fence
                 * takes it after changing the epoch, so no frame reserved in
                 * an old session is written once the next one can start.  A
                 * poll-mode QP nobody polls keeps its tx_gen across a link
                 * reset; only the epoch tells. */
                if (j.gen != qp->tx_gen || !tx_session_current(qp, j.epoch)) {
                        /* The link went down after this was queued: not sent. */
                        pthread_mutex_unlock(&qp->copy_lock);
                        complete(qp, &j, -ENOLINK);
                        continue;
                }
                ring_off = tx_write_frame_copy_locked(qp, &j);
                store_relaxed(&ct->ring_gen, j.gen);
                if (++batch >= RING_EVERY || ct_count(ct) == 0) {
                        tx_ring_copy_locked(qp, ring_off);
                        batch = 0;
                }
                pthread_mutex_unlock(&qp->copy_lock);
                complete(qp, &j, (int)j.len);
        }
        return NULL;
}

int copy_thread_start(struct ntbt_qp *qp, uint32_t cap)
{
        struct copy_thread *ct;
        uint32_t c = 1;
        int ret;

        while (c < cap)
                c <<= 1;
        ct = calloc(1, sizeof(*ct));
        if (!ct)
                return -ENOMEM;
        ct->cap = c;
        ct->jobs = calloc(c, sizeof(*ct->jobs));
        if (!ct->jobs) {
                free(ct);
                return -ENOMEM;
        }
        qp->ct = ct;
        ret = load_sc(&fault_create) ? -EAGAIN : -pthread_create(&ct->thread, NULL, copy_main, qp);
        if (ret) {
                qp->ct = NULL;
                free(ct->jobs);
                free(ct);
                return ret;
        }
        return 0;
}

void copy_thread_stop(struct ntbt_qp *qp)
{
        struct copy_thread *ct = qp->ct;
        struct tx_job j;

        if (!ct)
                return;
        store_sc(&ct->stop, 1);
        store_sc(&ct->sleeping, 0);
        futex_wake_private(&ct->sleeping);
        pthread_join(ct->thread, NULL);
        /* Whatever it did not take is completed here, with an error. */
        while (ct_count(ct)) {
                uint32_t head = load_relaxed(&ct->head);

                j = ct->jobs[head & (ct->cap - 1)];
                store_release(&ct->head, head + 1);
                complete(qp, &j, -ECANCELED);
        }
        qp->ct = NULL;
        free(ct->jobs);
        free(ct);
}
