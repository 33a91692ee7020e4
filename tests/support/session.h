/* SPDX-License-Identifier: MIT */
/*
 * A verifying receiver for tests where the sender comes and goes: every
 * time the QP links up a new session starts at frame 0 of the stream that
 * side 1 sends on QP 0; every frame is checked (length and bytes), so loss,
 * reordering, duplication or corruption fails the test.
 */
#ifndef NTBT_TESTS_SESSION_H
#define NTBT_TESTS_SESSION_H

#include <pthread.h>
#include <stdint.h>

#include <ntbt/ntbt.h>

#include "stream.h"

struct session_rx {
        pthread_mutex_t lock;
        uint32_t payload;
        enum size_mode sizes;
        /* Under lock. */
        uint64_t frames, bytes, total_frames;
        int ups, downs, last_reason;
        uint64_t frames_at_down[64];
        uint8_t *expect;
};

void session_init(struct session_rx *s, uint32_t payload, enum size_mode sizes);
void session_destroy(struct session_rx *s);
extern const struct ntbt_qp_handlers session_handlers;
/* Snapshot a field under the lock. */
uint64_t session_get(struct session_rx *s, const uint64_t *field);
int session_get_int(struct session_rx *s, const int *field);
/* CHECK that qp counted no protocol error (ver, oflow, flags) and no reset. */
void session_check_clean(struct ntbt_qp *qp);
/* Send `frames` frames of side 1's QP-0 stream (frames 0..n-1) on a poll-mode QP. */
void session_send(struct ntbt_qp *qp, uint64_t frames, enum size_mode sizes, int64_t timeout_ns);

#endif
