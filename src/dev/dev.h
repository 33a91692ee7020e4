/* SPDX-License-Identifier: MIT */
/*
 * The NTB device contract: one const table of operations per device type,
 * the part of the kernel's struct ntb_dev_ops that ntb_transport uses
 * (spec/ntb-transport-v4.md section 1) plus window access
 * (spec/pcie-model.md), so that a model device can interpose on stores.
 *
 * A type is registered once; registration checks that every required op is
 * present and fills each missing optional op with a stub returning
 * -EOPNOTSUPP, so no caller ever tests for NULL.
 *
 * Threads: unless an op says otherwise it must be safe to call from any
 * thread at any time between open and close, and must not block.  close is
 * called once, after every other call on the handle has returned.
 */
#ifndef NTBT_DEV_DEV_H
#define NTBT_DEV_DEV_H

#include <stddef.h>
#include <stdint.h>

#include <ntbt/dev.h>

/* One "key=value" option from a device string. */
struct dev_kv {
        const char *key;
        const char *val;
        int used; /* set by the type when it consumes the key */
};

#define DEV_MAX_KV 16

struct dev_args {
        const char *name; /* the part after "TYPE:" and before the first ',' */
        struct dev_kv kv[DEV_MAX_KV];
        int nkv;
};

/* Find and mark used the value of key, or NULL. */
const char *dev_args_get(struct dev_args *args, const char *key);

struct ntbt_dev_ops {
        const char *type;

        /* Required.  Open a handle on args->name; set dev->priv.  May block
         * (up to about a second while a device file is being created).  Log
         * the reason of any failure.  Must mark every key it understood. */
        int (*open)(struct ntbt_dev *dev, struct dev_args *args);
        /* Required.  Release the port and free dev->priv.  Never fails. */
        void (*close)(struct ntbt_dev *dev);
        /* Required.  This side's port (0 or 1). */
        int (*port)(struct ntbt_dev *dev);
        /* Optional.  One line saying what the handle is bound to (the
         * hardware behind it).  Stub: -EOPNOTSUPP. */
        int (*describe)(struct ntbt_dev *dev, char *buf, size_t len);

        /* Required.  1 if up, 0 if down.  May make a cheap system call. */
        int (*link_is_up)(struct ntbt_dev *dev);
        int (*link_enable)(struct ntbt_dev *dev);
        int (*link_disable)(struct ntbt_dev *dev);
        /* Blocks up to timeout_ns until the state differs from was_up; returns the state. */
        int (*link_wait)(struct ntbt_dev *dev, int was_up, int64_t timeout_ns);
        /* Optional.  A counter that changes whenever either side's link state
         * changes, so a down-and-up between two looks is still seen (the
         * level from link_is_up alone would miss it).  Stub: always 0. */
        uint32_t (*link_events)(struct ntbt_dev *dev);

        /* Required. */
        int (*mw_count)(struct ntbt_dev *dev);
        int (*mw_get_align)(struct ntbt_dev *dev, int widx, uint64_t *addr_align,
                            uint64_t *size_align, uint64_t *size_max);
        int (*mw_set_trans)(struct ntbt_dev *dev, int widx, uint64_t size);
        int (*mw_clear_trans)(struct ntbt_dev *dev, int widx);
        int (*peer_mw_size)(struct ntbt_dev *dev, int widx, uint64_t *size);
        /* Required.  The pointer stays valid until close; the caller only
         * accesses it within the returned size. */
        int (*mw_inbound)(struct ntbt_dev *dev, int widx, void **base, uint64_t *size);

        /* Required.  Stores into the peer's window; bounds-checked here.
         * May stall (spin) while a modelled link drains; never sleeps long. */
        int (*peer_mw_write)(struct ntbt_dev *dev, int widx, uint64_t off, const void *src,
                             size_t len);
        int (*peer_mw_write32)(struct ntbt_dev *dev, int widx, uint64_t off, uint32_t val);
        int (*peer_mw_wmb)(struct ntbt_dev *dev, int widx);
        /* Barrier plus read-back: earlier stores to the window have arrived when it returns. */
        int (*peer_mw_flush)(struct ntbt_dev *dev, int widx, uint64_t off);

        /* Required. */
        uint64_t (*db_valid_mask)(struct ntbt_dev *dev);
        uint64_t (*db_read)(struct ntbt_dev *dev);
        int (*db_clear)(struct ntbt_dev *dev, uint64_t bits);
        int (*peer_db_set)(struct ntbt_dev *dev, uint64_t bits);
        /* Optional. */
        uint64_t (*db_mask)(struct ntbt_dev *dev);
        int (*db_set_mask)(struct ntbt_dev *dev, uint64_t bits);
        int (*db_clear_mask)(struct ntbt_dev *dev, uint64_t bits);
        /* Required.  Blocks (see ntbt_dev_db_wait); the only op meant to sleep. */
        int (*db_wait)(struct ntbt_dev *dev, uint64_t bits, int64_t timeout_ns);
        int (*db_wait_interrupt)(struct ntbt_dev *dev);

        /* Required.  Index is checked here (-EINVAL). */
        int (*spad_count)(struct ntbt_dev *dev);
        int (*spad_read)(struct ntbt_dev *dev, int idx, uint32_t *val);
        int (*spad_write)(struct ntbt_dev *dev, int idx, uint32_t val);
        int (*peer_spad_read)(struct ntbt_dev *dev, int idx, uint32_t *val);
        int (*peer_spad_write)(struct ntbt_dev *dev, int idx, uint32_t val);
};

struct ntbt_dev {
        const struct ntbt_dev_ops *ops; /* the registered, completed copy */
        void *priv;
        char spec[256];
};

/* Register a device type (called once per type, at first open).  -EINVAL if a required op is
 * missing or the type name is taken. */
int dev_register(const struct ntbt_dev_ops *ops);

extern const struct ntbt_dev_ops shm_dev_ops;
extern const struct ntbt_dev_ops pcie_dev_ops;
extern const struct ntbt_dev_ops kdev_dev_ops;

#endif
