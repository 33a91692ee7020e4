/* SPDX-License-Identifier: MIT */
/*
 * A job queue with a thread of its own (copy_thread.c): the caller pushes
 * jobs, the thread runs the function it was given on each, in FIFO order.
 * It knows nothing of what a job is; the queue pair (qp.c) gives it the
 * transmit ring's frame writer, the kernel's tx_memcpy_offload.
 */
#ifndef NTBT_TRANSPORT_COPY_THREAD_H
#define NTBT_TRANSPORT_COPY_THREAD_H

#include <stddef.h>
#include <stdint.h>

/* The largest job, in bytes: a job is copied into the queue and out again. */
#define COPY_JOB_MAX 64
/* The most jobs the thread takes at once (one ops->run call). */
#define COPY_BATCH 16

struct copy_thread;

/* The caller's functions; ctx is theirs.  Each runs on the thread, except
 * cancel, which runs in copy_thread_stop. */
struct copy_thread_ops {
        void (*started)(void *ctx); /* once, before the first job; may be NULL */
        /* n jobs (1..COPY_BATCH, job_size bytes each, one after the other,
         * in FIFO order): copies the thread owns. */
        void (*run)(void *ctx, void *jobs, unsigned n);
        void (*drained)(void *ctx);           /* the queue ran dry after one or more runs */
        void (*cancel)(void *ctx, void *job); /* a job the thread never took */
};

/* Start a thread for a queue of at least cap jobs of job_size bytes. */
int copy_thread_start(struct copy_thread **out, uint32_t cap, size_t job_size,
                      const struct copy_thread_ops *ops, void *ctx);
/* Stop and join; jobs never taken go to ops->cancel.  NULL is a no-op. */
void copy_thread_stop(struct copy_thread *w);
/* Producer side (one producer at a time, the caller serialises): -EAGAIN if full. */
int copy_thread_push(struct copy_thread *w, const void *job);
/* The same for n jobs of job_size bytes, one after the other: how many of
 * the first went in (0 if full), with one wake-up check for all of them. */
unsigned copy_thread_push_n(struct copy_thread *w, const void *jobs, unsigned n);
/* Consumer side, from ops->run: jobs queued and not yet taken. */
uint32_t copy_thread_pending(struct copy_thread *w);
/* 1 when every pushed job has been run (and drained, if it was the last). */
int copy_thread_idle(struct copy_thread *w);
/* Test hook: how many times the thread went to sleep on its futex. */
uint64_t copy_thread_sleeps(struct copy_thread *w);
/* Test hook: threads started from now on spin before they sleep (1), never
 * spin (0), or spin when there is a core to spare (-1, the default). */
void copy_thread_spin_inject(int on);
/* Test hook: make copy_thread_start fail (to test the inline fallback). */
void copy_thread_fault_inject(int on);

#endif
