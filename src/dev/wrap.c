/* SPDX-License-Identifier: MIT */
/* The forwarding base of wrapper devices (wrap.h). */
#include "wrap.h"

#include <errno.h>
#include <stdlib.h>

int dev_wrap_open(struct dev_wrap *w, const struct dev_args *args)
{
        if (!args->inner)
                return -EINVAL;
        return ntbt_dev_open(args->inner, &w->inner);
}

void dev_wrap_close(struct dev_wrap *w)
{
        ntbt_dev_close(w->inner);
        w->inner = NULL;
}

/* A wrapper that changes nothing about opening: its state is the base alone. */
static int fwd_open(struct ntbt_dev *dev, const struct dev_args *args)
{
        struct dev_wrap *w = calloc(1, sizeof(*w));
        int ret;

        if (!w)
                return -ENOMEM;
        ret = dev_wrap_open(w, args);
        if (ret) {
                free(w);
                return ret;
        }
        dev->priv = w;
        return 0;
}

static void fwd_close(struct ntbt_dev *dev)
{
        dev_wrap_close(dev->priv);
        free(dev->priv);
}

/*
 * One forwarder per op: the inner device's op, called through its table
 * directly (the public ntbt_dev_* wrapper would add a call level; the
 * argument checks it makes were made on the outer handle already).
 */
#define FWD(ret, op, params, args)                                                                 \
        static ret fwd_##op params                                                                 \
        {                                                                                          \
                struct ntbt_dev *in = dev_wrap_inner(d);                                           \
                return in->ops->op args;                                                           \
        }

FWD(int, port, (struct ntbt_dev * d), (in))
FWD(int, describe, (struct ntbt_dev * d, char *buf, size_t len), (in, buf, len))
FWD(int, link_is_up, (struct ntbt_dev * d), (in))
FWD(int, link_enable, (struct ntbt_dev * d), (in))
FWD(int, link_disable, (struct ntbt_dev * d), (in))
FWD(int, link_wait, (struct ntbt_dev * d, int was_up, int64_t timeout_ns), (in, was_up, timeout_ns))
FWD(uint32_t, link_events, (struct ntbt_dev * d), (in))
FWD(int, mw_count, (struct ntbt_dev * d), (in))
FWD(int, mw_get_align, (struct ntbt_dev * d, int w, uint64_t *a, uint64_t *s, uint64_t *m),
    (in, w, a, s, m))
FWD(int, mw_set_trans, (struct ntbt_dev * d, int w, uint64_t size), (in, w, size))
FWD(int, mw_clear_trans, (struct ntbt_dev * d, int w), (in, w))
FWD(int, peer_mw_size, (struct ntbt_dev * d, int w, uint64_t *size), (in, w, size))
FWD(int, mw_inbound, (struct ntbt_dev * d, int w, void **base, uint64_t *size), (in, w, base, size))
FWD(int, peer_mw_write, (struct ntbt_dev * d, int w, uint64_t off, const void *src, size_t len),
    (in, w, off, src, len))
FWD(int, peer_mw_write32, (struct ntbt_dev * d, int w, uint64_t off, uint32_t val),
    (in, w, off, val))
FWD(int, peer_mw_wmb, (struct ntbt_dev * d, int w), (in, w))
FWD(int, peer_mw_flush, (struct ntbt_dev * d, int w, uint64_t off), (in, w, off))
FWD(int, peer_mw_map, (struct ntbt_dev * d, int w, void **base, uint64_t *size),
    (in, w, base, size))
FWD(uint64_t, db_valid_mask, (struct ntbt_dev * d), (in))
FWD(uint64_t, db_read, (struct ntbt_dev * d), (in))
FWD(int, db_clear, (struct ntbt_dev * d, uint64_t bits), (in, bits))
FWD(int, peer_db_set, (struct ntbt_dev * d, uint64_t bits), (in, bits))
FWD(uint64_t, db_mask, (struct ntbt_dev * d), (in))
FWD(int, db_set_mask, (struct ntbt_dev * d, uint64_t bits), (in, bits))
FWD(int, db_clear_mask, (struct ntbt_dev * d, uint64_t bits), (in, bits))
FWD(int, db_wait, (struct ntbt_dev * d, uint64_t bits, int64_t timeout_ns), (in, bits, timeout_ns))
FWD(int, db_wait_interrupt, (struct ntbt_dev * d), (in))
FWD(int, spad_count, (struct ntbt_dev * d), (in))
FWD(int, spad_read, (struct ntbt_dev * d, int i, uint32_t *v), (in, i, v))
FWD(int, spad_write, (struct ntbt_dev * d, int i, uint32_t v), (in, i, v))
FWD(int, peer_spad_read, (struct ntbt_dev * d, int i, uint32_t *v), (in, i, v))
FWD(int, peer_spad_write, (struct ntbt_dev * d, int i, uint32_t v), (in, i, v))

/* Every op forwarded; dev_register copies the ones a wrapper leaves NULL. */
const struct ntbt_dev_ops dev_wrap_base = {
    .type = "wrap",
    .open = fwd_open,
    .close = fwd_close,
    .port = fwd_port,
    .describe = fwd_describe,
    .link_is_up = fwd_link_is_up,
    .link_enable = fwd_link_enable,
    .link_disable = fwd_link_disable,
    .link_wait = fwd_link_wait,
    .link_events = fwd_link_events,
    .mw_count = fwd_mw_count,
    .mw_get_align = fwd_mw_get_align,
    .mw_set_trans = fwd_mw_set_trans,
    .mw_clear_trans = fwd_mw_clear_trans,
    .peer_mw_size = fwd_peer_mw_size,
    .mw_inbound = fwd_mw_inbound,
    .peer_mw_write = fwd_peer_mw_write,
    .peer_mw_write32 = fwd_peer_mw_write32,
    .peer_mw_wmb = fwd_peer_mw_wmb,
    .peer_mw_flush = fwd_peer_mw_flush,
    .peer_mw_map = fwd_peer_mw_map, /* only under wrap.h's rule */
    .db_valid_mask = fwd_db_valid_mask,
    .db_read = fwd_db_read,
    .db_clear = fwd_db_clear,
    .peer_db_set = fwd_peer_db_set,
    .db_mask = fwd_db_mask,
    .db_set_mask = fwd_db_set_mask,
    .db_clear_mask = fwd_db_clear_mask,
    .db_wait = fwd_db_wait,
    .db_wait_interrupt = fwd_db_wait_interrupt,
    .spad_count = fwd_spad_count,
    .spad_read = fwd_spad_read,
    .spad_write = fwd_spad_write,
    .peer_spad_read = fwd_peer_spad_read,
    .peer_spad_write = fwd_peer_spad_write,
};
