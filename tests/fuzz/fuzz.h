/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz targets share: the entry point, an invariant check that
 * aborts (libFuzzer keeps the input as a crash), a reader of the input, and
 * an in-memory NTB device with a transport and queue pairs built on it
 * (fake_dev.c), so that the transport's real receive, transmit and
 * handshake code runs on bytes the fuzzer writes, in one thread, with no
 * timing in it.
 */
#ifndef NTBT_TESTS_FUZZ_H
#define NTBT_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dev/dev.h"
#include "transport/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,       \
                                #cond);                                                            \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

/* The input, read front to back; past its end every value reads as 0. */
struct fz {
        const uint8_t *p;
        size_t n;
};

static inline uint8_t fz_u8(struct fz *f)
{
        if (!f->n)
                return 0;
        f->n--;
        return *f->p++;
}

static inline uint16_t fz_u16(struct fz *f)
{
        uint16_t lo = fz_u8(f);

        return (uint16_t)(lo | fz_u8(f) << 8);
}

static inline uint32_t fz_u32(struct fz *f)
{
        uint32_t lo = fz_u16(f);

        return lo | (uint32_t)fz_u16(f) << 16;
}

static inline uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * An NTB device in memory.  Inbound window n is in[n], exactly in_size[n]
 * bytes of the heap (so ASan sees any access past it); the peer's inbound
 * window n, where our stores land, is out[n] (out_size[n] bytes).  Every op
 * that takes an index or an offset checks it and aborts when the caller
 * passes one outside the device: the transport must never do that, whatever
 * the peer wrote.  The device link reads as down, so that nothing waits for
 * a peer (tx_send_link_down_locked gives up at once when the ring is full).
 */
struct fake_dev {
        struct ntbt_dev dev; /* first: the transport holds &dev */
        uint32_t mw_count, spad_count;
        uint64_t db_valid_mask, align;
        uint64_t in_size[NTBT_MAX_MWS], out_size[NTBT_MAX_MWS];
        uint8_t *in[NTBT_MAX_MWS], *out[NTBT_MAX_MWS];
        uint64_t xlat[NTBT_MAX_MWS]; /* set by mw_set_trans */
        uint32_t spad[64];           /* ours: the peer writes them */
        uint32_t peer_spad[64];      /* the peer's: we write them */
        uint64_t db, peer_db;
};

/* A device of mw_count windows (sizes per window, each at least 1 byte);
 * window memory is filled with a byte pattern (fake_pattern). */
struct fake_dev *fake_dev_new(uint32_t mw_count, uint32_t spad_count, uint64_t db_valid_mask,
                              uint64_t align, const uint64_t *in_size, const uint64_t *out_size);
void fake_dev_free(struct fake_dev *d);
uint8_t fake_pattern(uint64_t off);

/*
 * A transport on the device as ntbt_transport_open sets it up (counts,
 * window sizes, alignment), without the event thread, the statistics file
 * or link_enable; NULL where open would refuse the device.  The caller runs
 * the handshake (transport_try_up) itself.
 */
struct ntbt_transport *fake_transport_new(struct fake_dev *d, uint32_t max_qps, uint32_t mtu);
void fake_transport_free(struct ntbt_transport *t);

/* The peer's side of the transport handshake (spec section 4 step 1),
 * advertising window sizes peer_size[], then our attempt: 1 if up. */
int fake_handshake(struct ntbt_transport *t, const uint64_t *peer_size);

/*
 * A poll-mode queue pair brought up through the library's own path
 * (ntbt_qp_create, link_up, the peer's QP_LINKS bit, ntbt_qp_poll): its
 * ring is prepared (headers zeroed, rx_info copy set) and it is up.  NULL if
 * it did not come up.
 */
struct ntbt_qp *fake_qp_up(struct ntbt_transport *t, unsigned num, const struct ntbt_qp_handlers *h,
                           void *ctx);

/*
 * The start of both ring targets' inputs: a shape byte (bit 0: two windows,
 * not one; bits 1-2: max_qps - 1; bits 4-7: the QP, modulo the count), the
 * inbound and outbound window sizes less 32 (u16 each, every window alike)
 * and the mtu (u32; 0: the default).  A device of that shape, a transport
 * on it that came up (the peer advertising exactly our inbound sizes,
 * alignment 1), and QP q's receive and transmit geometry, which the
 * transport's checks made fit the windows.  0, or -1 where the transport
 * refuses the shape (the input is skipped).
 */
struct fake_ring {
        struct fake_dev *d;
        struct ntbt_transport *t;
        unsigned q;
        struct qp_geom rx, tx;
};
int fake_ring_new(struct fz *f, struct fake_ring *r);
/* The transport (with its QPs), then the device. */
void fake_ring_free(struct fake_ring *r);

#endif
