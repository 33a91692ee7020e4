/* SPDX-License-Identifier: MIT */
/*
 * A stream endpoint for two-process tests.  Each (direction, QP) carries a
 * deterministic sequence of frames: frame i has a length and contents that
 * both sides compute from (seed, i), so the receiver checks every byte,
 * the length, and that no frame is lost, reordered or duplicated.
 */
#ifndef NTBT_TESTS_STREAM_H
#define NTBT_TESTS_STREAM_H

#include <stdint.h>

#include <ntbt/ntbt.h>

/* Frame sizes. */
enum size_mode {
        SIZES_RANDOM, /* uniform in 1..payload, the first frames being 1, payload, payload-1, 2 */
        SIZES_SWEEP,  /* 1, 2, ..., payload, then again */
        SIZES_MAX,    /* always payload */
};

struct stream_cfg {
        const char *spec;    /* device string of this side */
        int side;            /* 0 or 1: which seeds we send with */
        int nqps;            /* QPs used (0..nqps-1) */
        uint32_t mtu;        /* transport_mtu, 0 = default */
        uint32_t max_qps;    /* 0 = default */
        uint32_t rx_threads; /* the transport option: 0 = automatic */
        uint64_t bytes;      /* per QP per direction */
        int send, recv;      /* directions this side runs */
        int poll;            /* poll-mode QPs (else event mode) */
        enum size_mode sizes;
        int64_t timeout_ns; /* for the whole run */
};

/* Length of frame i of a stream (payload: the QP's max payload). */
uint32_t stream_len(uint64_t seed, uint64_t i, uint32_t payload, enum size_mode mode);
/* Fill buf with frame i's bytes. */
void stream_fill(uint64_t seed, uint64_t i, uint8_t *buf, uint32_t len);
/* Seed of the stream that `side` sends on QP q. */
uint64_t stream_seed(int side, int q);

/* Run one side to completion; CHECK-fails (exit 1) on any error. */
void stream_run(const struct stream_cfg *cfg);

#endif
