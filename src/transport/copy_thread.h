/* SPDX-License-Identifier: MIT */
/* The per-QP TX copy thread (tx_memcpy_offload): see copy_thread.c. */
#ifndef NTBT_TRANSPORT_COPY_THREAD_H
#define NTBT_TRANSPORT_COPY_THREAD_H

#include <pthread.h>
#include <stdint.h>

struct ntbt_qp;

/* A reserved slot waiting for its copy. */
struct tx_job {
        uint32_t slot, ver, len, flags;
        uint32_t gen;   /* qp->tx_gen when queued: a later link-down voids it */
        uint32_t epoch; /* the transport session it was reserved in (qp->up_epoch) */
        void *buf_ctx;
        const void *data;
};

struct copy_thread {
        pthread_t thread;
        struct tx_job *jobs;
        uint32_t cap; /* a power of two */
        /* Producer and consumer indices on their own cache lines. */
        _Alignas(64) uint32_t tail;
        _Alignas(64) uint32_t head;
        uint32_t busy;                  /* a popped job is not finished yet */
        uint32_t ring_gen;              /* gen of the frames written since the last doorbell */
        _Alignas(64) uint32_t sleeping; /* futex word: 1 while the thread sleeps */
        int stop;
};

int copy_thread_start(struct ntbt_qp *qp, uint32_t cap);
/* Stop and join; jobs never taken complete with -ECANCELED. */
void copy_thread_stop(struct ntbt_qp *qp);
/* Producer side (under tx_lock): -EAGAIN if full. */
int ct_push(struct copy_thread *ct, const struct tx_job *job);
/* 1 when every queued job is written and rung. */
int ct_idle(struct copy_thread *ct);
/* Test hook: make copy_thread_start fail (to test the inline fallback). */
void copy_thread_fault_inject(int on);

/* tx.c, called by the thread with copy_lock held. */
uint64_t tx_write_frame_copy_locked(struct ntbt_qp *qp, const struct tx_job *j);
void tx_ring_copy_locked(struct ntbt_qp *qp, uint64_t done_off);

#endif
