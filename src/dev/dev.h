/* SPDX-License-Identifier: MIT */
/*
 * The NTB device contract: one const table of operations per device type,
 * the part of the kernel's struct ntb_dev_ops that ntb_transport uses
 * (spec/ntb-transport-v4.md section 1) plus window access
 * (spec/pcie-model.md), so that a model device can interpose on stores.
 *
 * A type is registered once; registration checks that every required op is
 * present and fills each missing optional op with a stub (each op below says
 * which it is), so no caller ever tests for NULL.
 *
 * Threads: unless an op says otherwise it must be safe to call from any
 * thread at any time between open and close, and must not block.  close is
 * called once, after every other call on the handle has returned.
 */
#ifndef NTBT_DEV_DEV_H
#define NTBT_DEV_DEV_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ntbt/dev.h>

#include "../util/barrier.h"

/*
 * An option a type takes: the parser (dev.c) refuses any other key and any
 * value out of range, so a type's open reads only values already checked.
 */
enum dev_opt_kind {
        DEV_OPT_BOOL, /* exactly "0" or "1" */
        DEV_OPT_SIZE, /* parse_size (binary suffixes: 4K = 4096), within min..max */
        DEV_OPT_RATE, /* parse_rate (decimal suffixes: 2G = 2e9), within min..max */
};

struct dev_opt {
        const char *key; /* NULL ends a type's list */
        enum dev_opt_kind kind;
        uint64_t min, max;
        const char *hint; /* what a value must be, for "bad value KEY=VAL (HINT)" */
};

/* One checked "key=value" option of the device string. */
struct dev_kv {
        const struct dev_opt *opt;
        const char *val;
};

#define DEV_MAX_KV 16

/* What a type's open gets: the string, parsed and checked. */
struct dev_args {
        const char *name;             /* NAME (under a wrapper, the innermost device's) */
        const char *inner;            /* a wrapper's: the device string of the device inside it */
        struct dev_kv kv[DEV_MAX_KV]; /* the options this type takes, no others */
        int nkv;
};

/* A numeric option's value (BOOL, SIZE, RATE) into *out: 1, or 0 if not given. */
int dev_args_num(const struct dev_args *args, const char *key, uint64_t *out);

/*
 * Each op is Required (registration refuses a table without it) or Optional
 * (a missing one is filled with the stub named, so no caller tests for NULL).
 * A wrapper type (wraps set) gets every op it leaves NULL, open and close
 * included, as a forwarder to the device inside it (wrap.h): it defines only
 * the ops it changes.
 */
struct ntbt_dev_ops {
        const char *type; /* Required.  At most NTBT_DEV_TYPE_MAX - 1 of [a-z0-9_] */
        /* Optional.  The options it takes, ending with {NULL}; NULL: none. */
        const struct dev_opt *opts;
        /* Optional.  Set for a wrapper: the type of the device inside it when
         * the string names none ("pcie:NAME" is "pcie:shm:NAME"). */
        const char *wraps;

        /* Required.  Open a handle on args->name; set dev->priv.  May block
         * (up to about a second while a device file is being created).  Log
         * the reason of any failure. */
        int (*open)(struct ntbt_dev *dev, const struct dev_args *args);
        /* Required.  Release the port and free dev->priv.  Never fails. */
        void (*close)(struct ntbt_dev *dev);
        /* Required.  This side's port (0 or 1). */
        int (*port)(struct ntbt_dev *dev);
        /* Optional (stub: -EOPNOTSUPP).  One line saying what the handle is
         * bound to (the hardware behind it). */
        int (*describe)(struct ntbt_dev *dev, char *buf, size_t len);

        /* Required.  1 if up, 0 if down.  May make a cheap system call. */
        int (*link_is_up)(struct ntbt_dev *dev);
        /* Required. */
        int (*link_enable)(struct ntbt_dev *dev);
        /* Required: the transport's close tells the peer by it. */
        int (*link_disable)(struct ntbt_dev *dev);
        /* Required.  Blocks up to timeout_ns until the state differs from
         * was_up; returns the state.  A peer killed without warning is seen
         * as down within 100 ms (ntbt_dev_link_wait). */
        int (*link_wait)(struct ntbt_dev *dev, int was_up, int64_t timeout_ns);
        /* Optional (stub: always 0).  A counter that changes whenever either
         * side's link state changes, so a down-and-up between two looks is
         * still seen (the level from link_is_up alone would miss it). */
        uint32_t (*link_events)(struct ntbt_dev *dev);

        /* Required. */
        int (*mw_count)(struct ntbt_dev *dev);
        /* Required. */
        int (*mw_get_align)(struct ntbt_dev *dev, int widx, uint64_t *addr_align,
                            uint64_t *size_align, uint64_t *size_max);
        /* Required. */
        int (*mw_set_trans)(struct ntbt_dev *dev, int widx, uint64_t size);
        /* Required: the transport takes its buffers back from the peer by it
         * on link down and close. */
        int (*mw_clear_trans)(struct ntbt_dev *dev, int widx);
        /* Required. */
        int (*peer_mw_size)(struct ntbt_dev *dev, int widx, uint64_t *size);
        /* Required.  The pointer stays valid until close; the caller only
         * accesses it within the returned size. */
        int (*mw_inbound)(struct ntbt_dev *dev, int widx, void **base, uint64_t *size);

        /* Required.  Stores into the peer's window; bounds-checked here.
         * May stall (spin) while a modelled link drains; never sleeps long. */
        int (*peer_mw_write)(struct ntbt_dev *dev, int widx, uint64_t off, const void *src,
                             size_t len);
        /* Required.  One 32-bit store. */
        int (*peer_mw_write32)(struct ntbt_dev *dev, int widx, uint64_t off, uint32_t val);
        /* Required. */
        int (*peer_mw_wmb)(struct ntbt_dev *dev, int widx);
        /* Required.  Barrier plus read-back: earlier stores to the window
         * have arrived when it returns. */
        int (*peer_mw_flush)(struct ntbt_dev *dev, int widx, uint64_t off);
        /* Optional (stub: -EOPNOTSUPP).  A CPU pointer to outbound window
         * widx (the peer's inbound memory) and its size, for zero-copy
         * sends: plain stores through it reach the peer, ordered before
         * later window stores by peer_mw_wmb and peer_mw_flush as
         * peer_mw_write's are.  Valid until close.  A device whose window
         * stores are more than stores through such a pointer (a model that
         * counts or delays them) must not offer it: the pointer would go
         * around it.  Wrappers get it forwarded only when they leave every
         * window-store op to the device inside (wrap.h). */
        int (*peer_mw_map)(struct ntbt_dev *dev, int widx, void **base, uint64_t *size);

        /* Required. */
        uint64_t (*db_valid_mask)(struct ntbt_dev *dev);
        /* Required. */
        uint64_t (*db_read)(struct ntbt_dev *dev);
        /* Required.  Clears these bits only, atomically: threads that
         * serve different bits (the transport's receive threads) clear at
         * once without losing each other's. */
        int (*db_clear)(struct ntbt_dev *dev, uint64_t bits);
        /* Required. */
        int (*peer_db_set)(struct ntbt_dev *dev, uint64_t bits);
        /* Optional (stub: always 0). */
        uint64_t (*db_mask)(struct ntbt_dev *dev);
        /* Optional (stub: -EOPNOTSUPP). */
        int (*db_set_mask)(struct ntbt_dev *dev, uint64_t bits);
        /* Optional (stub: -EOPNOTSUPP). */
        int (*db_clear_mask)(struct ntbt_dev *dev, uint64_t bits);
        /* Required.  Blocks (see ntbt_dev_db_wait); the only op meant to
         * sleep.  Several threads may wait at once, each for its own bits
         * (the transport's receive threads): a ring of one's bit must not be
         * consumed by another's wait, and db_wait_interrupt ends them all
         * (shm: a shared futex word every ring bumps; kdev: the bridge's
         * wait queue, each waiter testing its own mask). */
        int (*db_wait)(struct ntbt_dev *dev, uint64_t bits, int64_t timeout_ns);
        /* Required. */
        int (*db_wait_interrupt)(struct ntbt_dev *dev);

        /* Required. */
        int (*spad_count)(struct ntbt_dev *dev);
        /* Required, all four.  Index is checked here (-EINVAL). */
        int (*spad_read)(struct ntbt_dev *dev, int idx, uint32_t *val);
        int (*spad_write)(struct ntbt_dev *dev, int idx, uint32_t val);
        int (*peer_spad_read)(struct ntbt_dev *dev, int idx, uint32_t *val);
        int (*peer_spad_write)(struct ntbt_dev *dev, int idx, uint32_t val);
};

struct ntbt_dev {
        const struct ntbt_dev_ops *ops; /* the registered, completed copy */
        void *priv;
        char spec[NTBT_DEV_SPEC_MAX];
};

/* Register a device type (the built-in ones at the first open or parse).  -EINVAL (logged)
 * if a required op is missing or the type name is bad or taken, -ENOSPC if the table is full. */
int dev_register(const struct ntbt_dev_ops *ops);

extern const struct ntbt_dev_ops shm_dev_ops;
extern const struct ntbt_dev_ops pcie_dev_ops;
extern const struct ntbt_dev_ops kdev_dev_ops;

/*
 * The tails of the window-write ops that devices share: dst is the device's
 * outbound address of the range, NULL when the range is outside the window
 * (the device's own bounds check), which is -EINVAL.
 */
/* Plain stores: they are published by the release store (write32) or the
 * fence or flush that the transport issues before the DONE flag. */
static inline int dev_mw_copy(uint8_t *dst, const void *src, size_t len)
{
        if (!dst)
                return -EINVAL;
        memcpy(dst, src, len);
        return 0;
}

/* One 32-bit store, release: a header field or rx_info is never seen before
 * the stores that preceded it (the payload before DONE, the receiver's
 * copy-out before rx_info).  It also lets TSan see the hand-off, which it
 * cannot through a standalone fence. */
static inline int dev_mw_store32(uint8_t *dst, uint32_t val)
{
        if (!dst)
                return -EINVAL;
        store_release_u32(dst, val);
        return 0;
}

#endif
