/* SPDX-License-Identifier: MIT */
/*
 * The forwarding base of wrapper devices: a type that sits over another
 * device (the pcie model, a fault injector) sets .wraps in its ops table and
 * defines only the ops it changes; registration fills every other op, open
 * and close included, with a forwarder to the device inside.
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

/* Fill every NULL op of a wrapper's table with a forwarder (dev_register does). */
void dev_wrap_fill(struct ntbt_dev_ops *ops);

#endif
