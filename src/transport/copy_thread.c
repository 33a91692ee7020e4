/* SPDX-License-Identifier: MIT */
/*
 * A job queue with its own thread.  The caller pushes jobs; the thread takes
 * them in FIFO order and runs ops->run on each, then ops->drained when the
 * queue runs dry.  What a job means is the caller's: the queue pair gives
 * it the transmit ring's frame writer (the kernel's tx_memcpy_offload, spec
 * section 5 steps 3-8), so frames, and completions, stay in the order their
 * slots were reserved.
 *
 * Queue: single producer (the caller serialises pushes: enqueuers hold
 * tx_lock), single consumer (this thread), a ring of job slots with the
 * producer's and the consumer's fields on separate cache lines.
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../util/barrier.h"
#include "../util/futex.h"
#include "copy_thread.h"

struct copy_thread {
        /* Set before the thread starts, then read-only. */
        pthread_t thread;
        struct copy_thread_ops ops;
        void *ctx;
        unsigned char *jobs; /* cap slots of job_size bytes */
        uint32_t cap;        /* a power of two */
        uint32_t job_size;
        /* The producer's index. */
        _Alignas(64) uint32_t tail;
        /* The consumer's: its index, and whether a popped job is unfinished. */
        _Alignas(64) uint32_t head;
        uint32_t busy;
        /* Written by both sides. */
        _Alignas(64) uint32_t sleeping; /* futex word: 1 while the thread sleeps */
        int stop;
};

static int fault_create; /* test hook: fail the next thread creations */

void copy_thread_fault_inject(int on)
{
        store_sc(&fault_create, on);
}

static unsigned char *slot(struct copy_thread *w, uint32_t idx)
{
        return w->jobs + (size_t)(idx & (w->cap - 1)) * w->job_size;
}

uint32_t copy_thread_pending(struct copy_thread *w)
{
        /* Acquire on tail pairs with the producer's release: the job's bytes
         * are visible before it is counted.  head is the consumer's own
         * index (only it, or copy_thread_stop after the join, writes it):
         * relaxed reads its own last store. */
        return load_acquire(&w->tail) - load_relaxed(&w->head);
}

int copy_thread_push(struct copy_thread *w, const void *job)
{
        /* tail is ours (pushes are serialised by the caller): relaxed reads
         * our own last store. */
        uint32_t tail = load_relaxed(&w->tail);

        /* Acquire on head pairs with the consumer's release: it copied the
         * slot out before we overwrite it. */
        if (tail - load_acquire(&w->head) == w->cap)
                return -EAGAIN;
        memcpy(slot(w, tail), job, w->job_size);
        /* Release: the job is written before the consumer can see it. */
        store_release(&w->tail, tail + 1);
        /* Dekker with the consumer's sleeping store: seq_cst fence between
         * our tail store and our sleeping load, so either it sees the job
         * or we see it asleep and wake it.  No system call while it runs.
         * The load is relaxed: the fence above does the ordering. */
        smp_mb();
        if (load_relaxed(&w->sleeping)) {
                store_sc(&w->sleeping, 0);
                futex_wake_private(&w->sleeping);
        }
        return 0;
}

int copy_thread_idle(struct copy_thread *w)
{
        /* Acquire, all three: what the runs wrote is visible to a caller
         * that sees the queue idle (pairs with the consumer's releases). */
        return load_acquire(&w->head) == load_acquire(&w->tail) && !load_acquire(&w->busy);
}

static void *copy_main(void *arg)
{
        struct copy_thread *w = arg;
        alignas(max_align_t) unsigned char job[COPY_JOB_MAX];
        int ran = 0;

        if (w->ops.started)
                w->ops.started(w->ctx);
        for (;;) {
                uint32_t head;

                if (copy_thread_pending(w) == 0) {
                        if (ran) {
                                w->ops.drained(w->ctx);
                                ran = 0;
                        }
                        /* Release: the runs and the drain above happen
                         * before a copy_thread_idle that sees busy 0. */
                        store_release(&w->busy, 0);
                        if (load_acquire(&w->stop))
                                break;
                        /* Announce sleep, then look again (see copy_thread_push). */
                        store_sc(&w->sleeping, 1);
                        smp_mb();
                        if (copy_thread_pending(w) == 0 && !load_acquire(&w->stop))
                                futex_wait_private(&w->sleeping, 1);
                        store_sc(&w->sleeping, 0);
                        continue;
                }
                /* Release: pairs with copy_thread_idle's acquire (set before
                 * head moves, so idle never sees the queue empty and the
                 * job not yet marked). */
                store_release(&w->busy, 1);
                /* Our own index: relaxed reads our own last store. */
                head = load_relaxed(&w->head);
                memcpy(job, slot(w, head), w->job_size);
                /* Release: the slot may be reused only after we copied the job out. */
                store_release(&w->head, head + 1);
                w->ops.run(w->ctx, job);
                ran = 1;
        }
        return NULL;
}

int copy_thread_start(struct copy_thread **out, uint32_t cap, size_t job_size,
                      const struct copy_thread_ops *ops, void *ctx)
{
        struct copy_thread *w;
        uint32_t c = 1;
        int ret;

        if (!job_size || job_size > COPY_JOB_MAX || !ops->run || !ops->drained || !ops->cancel)
                return -EINVAL;
        while (c < cap)
                c <<= 1;
        /* Aligned as its type asks: the producer's and consumer's fields must
         * really start cache lines.  sizeof is a multiple of the alignment,
         * as aligned_alloc wants. */
        w = aligned_alloc(_Alignof(struct copy_thread), sizeof(*w));
        if (!w)
                return -ENOMEM;
        memset(w, 0, sizeof(*w));
        w->ops = *ops;
        w->ctx = ctx;
        w->cap = c;
        w->job_size = (uint32_t)job_size;
        w->jobs = calloc(c, job_size);
        if (!w->jobs) {
                free(w);
                return -ENOMEM;
        }
        ret = load_sc(&fault_create) ? -EAGAIN : -pthread_create(&w->thread, NULL, copy_main, w);
        if (ret) {
                free(w->jobs);
                free(w);
                return ret;
        }
        *out = w;
        return 0;
}

void copy_thread_stop(struct copy_thread *w)
{
        alignas(max_align_t) unsigned char job[COPY_JOB_MAX];

        if (!w)
                return;
        store_sc(&w->stop, 1);
        store_sc(&w->sleeping, 0);
        futex_wake_private(&w->sleeping);
        pthread_join(w->thread, NULL);
        /* Whatever it did not take is cancelled here (after the join we are
         * the only consumer). */
        while (copy_thread_pending(w)) {
                uint32_t head = load_relaxed(&w->head); /* ours now: see above */

                memcpy(job, slot(w, head), w->job_size);
                store_release(&w->head, head + 1);
                w->ops.cancel(w->ctx, job);
        }
        free(w->jobs);
        free(w);
}
