/* SPDX-License-Identifier: MIT */
#include "geometry.h"

#include <errno.h>

#include "wire.h"

void geom_counts(uint64_t db_valid_mask, uint32_t dev_mw_count, uint32_t spad_count,
                 uint32_t max_qps, uint32_t *qp_count, uint32_t *mw_count)
{
        uint32_t mws = dev_mw_count, qps;
        uint32_t spad_mws = spad_count >= 4 ? (spad_count - 4) / 2 : 0;

        if (mws > spad_mws)
                mws = spad_mws;
        qps = db_valid_mask ? 63u - (uint32_t)__builtin_clzll(db_valid_mask) : 0;
        if (max_qps && max_qps < qps)
                qps = max_qps;
        else if (mws < qps)
                qps = mws;
        *qp_count = qps;
        *mw_count = mws;
}

int geom_qp(uint64_t size, uint32_t qp_count, uint32_t mw_count, uint32_t q, uint32_t transport_mtu,
            struct qp_geom *g)
{
        uint32_t s32 = (uint32_t)size; /* the kernel's (unsigned int) cast */

        if (!mw_count || !qp_count || q >= qp_count)
                return -EINVAL;
        g->mw = q % mw_count;
        g->qps_in_mw = qp_count / mw_count + (g->mw < qp_count % mw_count ? 1 : 0);
        g->region = s32 / g->qps_in_mw;
        g->offset = (uint64_t)g->region * (q / mw_count);
        if (g->region < sizeof(struct ntb_rx_info))
                return -EINVAL;
        g->ring = g->region - (uint32_t)sizeof(struct ntb_rx_info);
        g->rx_info_off = (uint32_t)g->offset + g->ring;
        g->frame = transport_mtu < g->ring / 2 ? transport_mtu : g->ring / 2;
        if (g->frame <= sizeof(struct ntb_payload_header))
                return -EINVAL;
        g->entries = g->ring / g->frame;
        g->payload = g->frame - (uint32_t)sizeof(struct ntb_payload_header);
        return g->entries >= 2 ? 0 : -EINVAL;
}
