/* SPDX-License-Identifier: MIT */
/* The ring geometry of spec section 2-3, as pure functions (tested against geometry-vectors.csv).
 */
#ifndef NTBT_TRANSPORT_GEOMETRY_H
#define NTBT_TRANSPORT_GEOMETRY_H

#include <stdint.h>

struct qp_geom {
        uint32_t mw;          /* window index: q mod mw_count */
        uint32_t qps_in_mw;   /* k */
        uint64_t offset;      /* region offset within the window */
        uint32_t region;      /* region bytes, rx_info included */
        uint32_t ring;        /* region - 4 */
        uint32_t rx_info_off; /* offset + ring, from the window's start */
        uint32_t frame;       /* max_frame */
        uint32_t entries;     /* max_entries */
        uint32_t payload;     /* max_payload = frame - 12 */
};

/*
 * Transport counts from the device: mw_count capped by the scratchpads,
 * qp_count = floor(log2(db_valid_mask)), then max_qps or mw_count.
 */
void geom_counts(uint64_t db_valid_mask, uint32_t dev_mw_count, uint32_t spad_count,
                 uint32_t max_qps, uint32_t *qp_count, uint32_t *mw_count);

/*
 * QP q's geometry in a window of `size` bytes (truncated to 32 bits, as the
 * kernel does).  Returns 0, or -EINVAL if the ring cannot hold two frames
 * of at least one payload byte.
 */
int geom_qp(uint64_t size, uint32_t qp_count, uint32_t mw_count, uint32_t q, uint32_t transport_mtu,
            struct qp_geom *g);

/*
 * Where slot's frame header (struct ntb_payload_header, wire.h) starts, from
 * the window's start: after the frame's payload.  The one formula for it;
 * add NTB_HDR_*_OFF for a field.  slot < g->entries.
 */
static inline uint64_t geom_hdr_off(const struct qp_geom *g, uint32_t slot)
{
        return g->offset + (uint64_t)slot * g->frame + g->payload;
}

#endif
