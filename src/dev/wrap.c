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
FWD(int, mw_get_align, (struct ntbt_dev * d, int w, uint64_t *a, uint64_t *s, uint64_t *m), (in, w, a, s, m))
FWD(int, mw_set_trans, (struct ntbt_dev * d, int w, uint64_t size), (in, w, size))
FWD(int, mw_clear_trans, (struct ntbt_dev * d, int w), (in, w))
FWD(int, peer_mw_size, (struct ntbt_dev * d, int w, uint64_t *size), (in, w, size))
FWD(int, mw_inbound, (struct ntbt_dev * d, int w, void **base, uint64_t *size), (in, w, base, size))
FWD(int, peer_mw_write, (struct ntbt_dev * d, int w, uint64_t off, const void *src, size_t len), (in, w, off, src, len))
FWD(int, peer_mw_write32, (struct ntbt_dev * d, int w, uint64_t off, uint32_t val), (in, w, off, val))
FWD(int, peer_mw_wmb, (struct ntbt_dev * d, int w), (in, w))
FWD(int, peer_mw_flush, (struct ntbt_dev * d, int w, uint64_t off), (in, w, off))
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

void dev_wrap_fill(struct ntbt_dev_ops *o)
{
#define FILL(op)                                                                                   \
        do {                                                                                       \
                if (!o->op)                                                                        \
                        o->op = fwd_##op;                                                          \
        } while (0)
        FILL(open);
        FILL(close);
        FILL(port);
        FILL(describe);
        FILL(link_is_up);
        FILL(link_enable);
        FILL(link_disable);
        FILL(link_wait);
        FILL(link_events);
        FILL(mw_count);
        FILL(mw_get_align);
        FILL(mw_set_trans);
        FILL(mw_clear_trans);
        FILL(peer_mw_size);
        FILL(mw_inbound);
        FILL(peer_mw_write);
        FILL(peer_mw_write32);
        FILL(peer_mw_wmb);
        FILL(peer_mw_flush);
        FILL(db_valid_mask);
        FILL(db_read);
        FILL(db_clear);
        FILL(peer_db_set);
        FILL(db_mask);
        FILL(db_set_mask);
        FILL(db_clear_mask);
        FILL(db_wait);
        FILL(db_wait_interrupt);
        FILL(spad_count);
        FILL(spad_read);
        FILL(spad_write);
        FILL(peer_spad_read);
        FILL(peer_spad_write);
#undef FILL
}
