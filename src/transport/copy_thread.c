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
 * producer's and the consumer's fields on separate cache lines.  The thread
 * takes up to COPY_BATCH jobs at once (one head store, one ops->run), and
 * a producer's burst goes in with one tail store and one wake-up check.
 *
 * Sleeping: with the queue empty, and a core to spare, the thread looks
 * again for a while before it sleeps on its futex (copy_wait_spin): a
 * wake-up and the context switch it brings cost the producer and this
 * thread several microseconds each, more than a small frame's copy, and a
 * producer sending steadily refills the queue sooner.  Bounded, so an idle
 * queue's thread sleeps.  Without a core to spare it sleeps at once (see
 * SPIN_CPUS).
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../util/barrier.h"
#include "../util/clock.h"
#include "../util/futex.h"
#include "../util/spin.h"
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
        /* The consumer's spin (copy_wait_spin): its budget now, in ns (0:
         * it never spins); sleeps: a count for tests. */
        int64_t spin_ns;
        uint64_t sleeps;
        /* Written by both sides. */
        _Alignas(64) uint32_t sleeping; /* futex word: 1 while the thread sleeps */
        int stop;
};

/*
 * The spin budget adapts between these bounds: doubled when a spin found
 * work, halved when it ran out and the thread slept, so the thread of a
 * producer that pauses for long spins less and less, and an idle queue's
 * thread is asleep within SPIN_NS_MAX of its last job (plus one look).
 */
#define SPIN_NS_MAX (50 * 1000)
#define SPIN_NS_MIN (2 * 1000)
/*
 * With fewer online CPUs than this the thread never spins: the producer,
 * the receiver and this thread cannot each have a core, and a spin takes
 * one from the thread it waits for.  Yielding in the spin (sched_yield) was
 * tried and lost worst of all on a loaded 2-core machine: each yield can
 * hand the core to another process for a whole time slice, where a futex
 * wake-up gets the sleeper running again at once (bench/README.md,
 * section 2).
 */
#define SPIN_CPUS 4
/* The spin reads the clock every this many looks (a vDSO call). */
#define SPIN_CLOCK_EVERY 64

static int fault_create;    /* test hook: fail the next thread creations */
static int spin_force = -1; /* test hook: 1 spin, 0 not, -1 by SPIN_CPUS */

void copy_thread_spin_inject(int on)
{
        store_sc(&spin_force, on);
}

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

unsigned copy_thread_push_n(struct copy_thread *w, const void *jobs, unsigned n)
{
        /* tail is ours (pushes are serialised by the caller): relaxed reads
         * our own last store. */
        uint32_t tail = load_relaxed(&w->tail);
        /* Acquire on head pairs with the consumer's release: it copied the
         * slots out before we overwrite them. */
        uint32_t room = w->cap - (tail - load_acquire(&w->head));
        const unsigned char *src = jobs;
        unsigned i;

        if (n > room)
                n = room;
        if (!n)
                return 0;
        for (i = 0; i < n; i++)
                memcpy(slot(w, tail + i), src + (size_t)i * w->job_size, w->job_size);
        /* Release: the jobs are written before the consumer can see them. */
        store_release(&w->tail, tail + n);
        /* Dekker with the consumer's sleeping store: seq_cst fence between
         * our tail store and our sleeping load, so either it sees the job
         * or we see it asleep and wake it.  No system call while it runs.
         * The load is relaxed: the fence above does the ordering. */
        smp_mb();
        if (load_relaxed(&w->sleeping)) {
                store_sc(&w->sleeping, 0);
                futex_wake_private(&w->sleeping);
        }
        return n;
}

int copy_thread_push(struct copy_thread *w, const void *job)
{
        return copy_thread_push_n(w, job, 1) ? 0 : -EAGAIN;
}

uint64_t copy_thread_sleeps(struct copy_thread *w)
{
        /* Relaxed: a count for tests, ordered with nothing. */
        return load_relaxed(&w->sleeps);
}

int copy_thread_idle(struct copy_thread *w)
{
        /* Acquire, all three: what the runs wrote is visible to a caller
         * that sees the queue idle (pairs with the consumer's releases). */
        return load_acquire(&w->head) == load_acquire(&w->tail) && !load_acquire(&w->busy);
}

/* With the queue empty: 1 if a job (or stop) came within the spin budget,
 * 0 if the thread should sleep.  The budget adapts (see SPIN_NS_MAX). */
static int copy_wait_spin(struct copy_thread *w)
{
        int64_t end;

        if (!w->spin_ns)
                return 0;
        end = now_ns() + w->spin_ns;
        for (unsigned i = 1;; i++) {
                /* Acquire, both (copy_thread_pending's, and stop's, which
                 * pairs with copy_thread_stop's store): what we see next
                 * is what was published. */
                if (copy_thread_pending(w) || load_acquire(&w->stop)) {
                        w->spin_ns = w->spin_ns < SPIN_NS_MAX / 2 ? w->spin_ns * 2 : SPIN_NS_MAX;
                        return 1;
                }
                cpu_relax();
                if (i % SPIN_CLOCK_EVERY == 0 && now_ns() >= end)
                        break;
        }
        w->spin_ns = w->spin_ns > SPIN_NS_MIN * 2 ? w->spin_ns / 2 : SPIN_NS_MIN;
        return 0;
}

/* With the queue empty after the spin: sleep until a push or a stop. */
static void copy_sleep(struct copy_thread *w)
{
        /* Announce sleep, then look again (see copy_thread_push_n). */
        store_sc(&w->sleeping, 1);
        smp_mb();
        if (copy_thread_pending(w) == 0 && !load_acquire(&w->stop)) {
                /* Relaxed: only this thread writes it; tests read a count. */
                store_relaxed(&w->sleeps, load_relaxed(&w->sleeps) + 1);
                futex_wait_private(&w->sleeping, 1);
        }
        store_sc(&w->sleeping, 0);
}

/* Take up to COPY_BATCH jobs into jobs; how many. */
static unsigned copy_take(struct copy_thread *w, unsigned char *jobs, uint32_t pending)
{
        unsigned n = pending < COPY_BATCH ? pending : COPY_BATCH, i;
        /* Our own index: relaxed reads our own last store. */
        uint32_t head = load_relaxed(&w->head);

        for (i = 0; i < n; i++)
                memcpy(jobs + (size_t)i * w->job_size, slot(w, head + i), w->job_size);
        /* Release: the slots may be reused only after we copied the jobs out. */
        store_release(&w->head, head + n);
        return n;
}

static void *copy_main(void *arg)
{
        struct copy_thread *w = arg;
        alignas(max_align_t) unsigned char jobs[COPY_BATCH * COPY_JOB_MAX];
        int ran = 0;

        if (w->ops.started)
                w->ops.started(w->ctx);
        for (;;) {
                uint32_t pending = copy_thread_pending(w);
                unsigned n;

                if (pending == 0) {
                        if (ran) {
                                w->ops.drained(w->ctx);
                                ran = 0;
                        }
                        /* Release: the runs and the drain above happen
                         * before a copy_thread_idle that sees busy 0. */
                        store_release(&w->busy, 0);
                        if (load_acquire(&w->stop))
                                break;
                        if (!copy_wait_spin(w))
                                copy_sleep(w);
                        continue;
                }
                /* Release: pairs with copy_thread_idle's acquire (set before
                 * head moves, so idle never sees the queue empty and the
                 * jobs not yet marked). */
                store_release(&w->busy, 1);
                n = copy_take(w, jobs, pending);
                w->ops.run(w->ctx, jobs, n);
                ran = 1;
        }
        return NULL;
}

int copy_thread_start(struct copy_thread **out, uint32_t cap, size_t job_size,
                      const struct copy_thread_ops *ops, void *ctx)
{
        struct copy_thread *w;
        uint32_t c = 1;
        int ret, spin;

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
        spin = load_sc(&spin_force);
        if (spin < 0)
                spin = online_cpus() >= SPIN_CPUS;
        w->spin_ns = spin ? SPIN_NS_MAX : 0;
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
