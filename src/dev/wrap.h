/* SPDX-License-Identifier: MIT */
/*
 * The forwarding base of wrapper devices: a type that sits over another
 * device (the pcie model, a fault injector) sets .wraps in its ops table and
 * defines only the ops it changes; registration fills every other op, open
 * and close included, from dev_wrap_base: a forwarder to the device inside.
 *
 * A wrapper's dev->priv points to its state, which begins with a struct
 * dev_wrap (the forwarders find the inner device there).  A wrapper that
 * defines its own open calls dev_wrap_open first; one that defines close
 * calls dev_wrap_close last.
 */
#ifndef NTBT_DEV_WRAP_H
#define NTBT_DEV_WRAP_H

#include "dev.h"

struct dev_wrap {
        struct ntbt_dev *inner; /* the device inside, opened by dev_wrap_open */
};

/* The device inside a wrapper's handle. */
static inline struct ntbt_dev *dev_wrap_inner(struct ntbt_dev *dev)
{
        return ((struct dev_wrap *)dev->priv)->inner;
}

/* Open the device inside (args->inner) into w->inner: 0 or its -errno. */
int dev_wrap_open(struct dev_wrap *w, const struct dev_args *args);
/* Close the device inside. */
void dev_wrap_close(struct dev_wrap *w);

/* Every op a forwarder: dev_register fills each NULL op of a wrapper's table
 * from it.  A table, not a function, so that the device core (dev.c) does not
 * call up into this file, which calls it (ntbt_dev_open). */
extern const struct ntbt_dev_ops dev_wrap_base;

/* Fill every NULL op of a wrapper's table from dev_wrap_base (dev_register
 * does).  Inline: the device core must not call into this file. */
static inline void dev_wrap_fill(struct ntbt_dev_ops *o)
{
#define FILL(op)                                                                                   \
        do {                                                                                       \
                if (!o->op)                                                                        \
                        o->op = dev_wrap_base.op;                                                  \
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
        /* The window as memory only from a wrapper that leaves every window
         * store to the device inside: stores through the pointer would go
         * around one that models them (pcie), which then reads as a device
         * without it (-EOPNOTSUPP, dev.c's stub). */
        if (!o->peer_mw_map && o->peer_mw_write == dev_wrap_base.peer_mw_write &&
            o->peer_mw_write32 == dev_wrap_base.peer_mw_write32 &&
            o->peer_mw_wmb == dev_wrap_base.peer_mw_wmb &&
            o->peer_mw_flush == dev_wrap_base.peer_mw_flush)
                o->peer_mw_map = dev_wrap_base.peer_mw_map;
#undef FILL
}

#endif
