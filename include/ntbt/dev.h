/* SPDX-License-Identifier: MIT */
/*
 * An NTB device, opened by a string "TYPE:NAME[,key=value...]".
 *
 * This is the public face of the device contract in src/dev/dev.h: every
 * function forwards to the device type's operation.  The transport uses only
 * these.  All functions return 0 (or a documented non-negative value) or a
 * negative errno; -EOPNOTSUPP means the device type does not have the
 * operation.  Unless said otherwise, a function does not block and may be
 * called from any thread.
 */
#ifndef NTBT_DEV_H
#define NTBT_DEV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ntbt_dev;

/*
 * Open a device.  Types: "shm" (spec/shm-device.md).  An unknown type,
 * unknown key or bad value gives -EINVAL and a log message naming it.
 */
int ntbt_dev_open(const char *spec, struct ntbt_dev **out);
void ntbt_dev_close(struct ntbt_dev *dev);
/* The device string it was opened with, and its type name. */
const char *ntbt_dev_spec(const struct ntbt_dev *dev);
const char *ntbt_dev_type(const struct ntbt_dev *dev);
/* This side's port number (0 or 1). */
int ntbt_dev_port(struct ntbt_dev *dev);
/* One line naming what the handle is bound to (e.g. the NTB hardware behind a
 * kdev: device); -EOPNOTSUPP for types that have nothing to add. */
int ntbt_dev_describe(struct ntbt_dev *dev, char *buf, size_t len);

/* Link. */
int ntbt_dev_link_is_up(struct ntbt_dev *dev); /* 1 up, 0 down */
int ntbt_dev_link_enable(struct ntbt_dev *dev);
int ntbt_dev_link_disable(struct ntbt_dev *dev);
/*
 * Block until the link state differs from was_up or timeout_ns passes
 * (< 0: forever).  Returns the state now (0 or 1).  A peer killed without
 * warning is seen as down within 100 ms.
 */
int ntbt_dev_link_wait(struct ntbt_dev *dev, int was_up, int64_t timeout_ns);

/*
 * A counter that changes on every link change of either side (0 if the
 * device cannot tell): compare two readings to see a down-and-up that
 * ntbt_dev_link_is_up alone would miss.
 */
uint32_t ntbt_dev_link_events(struct ntbt_dev *dev);

/* Memory windows. */
int ntbt_dev_mw_count(struct ntbt_dev *dev);
/* Address and size alignment of mw_set_trans, and the largest inbound size. */
int ntbt_dev_mw_get_align(struct ntbt_dev *dev, int widx, uint64_t *addr_align,
                          uint64_t *size_align, uint64_t *size_max);
int ntbt_dev_mw_set_trans(struct ntbt_dev *dev, int widx, uint64_t size);
int ntbt_dev_mw_clear_trans(struct ntbt_dev *dev, int widx);
/* Size of outbound window widx (the peer's inbound window). */
int ntbt_dev_peer_mw_size(struct ntbt_dev *dev, int widx, uint64_t *size);
/* Our inbound window widx: its memory (which the peer writes) and size. */
int ntbt_dev_mw_inbound(struct ntbt_dev *dev, int widx, void **base, uint64_t *size);

/*
 * Stores into the peer's inbound window widx through our outbound window.
 * off/len are bounds-checked (-EINVAL).  write32 is a single 32-bit store.
 * wmb makes every earlier store to the window visible before any later one.
 * flush is the ordering fix: a full barrier, then a read-back at off; when
 * it returns, every earlier store to the window has reached the peer.
 * These may stall (a modelled link has finite speed) but never sleep long.
 */
int ntbt_dev_peer_mw_write(struct ntbt_dev *dev, int widx, uint64_t off, const void *src,
                           size_t len);
int ntbt_dev_peer_mw_write32(struct ntbt_dev *dev, int widx, uint64_t off, uint32_t val);
int ntbt_dev_peer_mw_wmb(struct ntbt_dev *dev, int widx);
int ntbt_dev_peer_mw_flush(struct ntbt_dev *dev, int widx, uint64_t off);

/* Doorbells. */
uint64_t ntbt_dev_db_valid_mask(struct ntbt_dev *dev);
uint64_t ntbt_dev_db_read(struct ntbt_dev *dev);
int ntbt_dev_db_clear(struct ntbt_dev *dev, uint64_t bits);
int ntbt_dev_db_set_mask(struct ntbt_dev *dev, uint64_t bits);
int ntbt_dev_db_clear_mask(struct ntbt_dev *dev, uint64_t bits);
uint64_t ntbt_dev_db_mask(struct ntbt_dev *dev);
int ntbt_dev_peer_db_set(struct ntbt_dev *dev, uint64_t bits);
/*
 * Block until one of bits is set and unmasked in our doorbell register
 * (returns 0), timeout_ns passes (-ETIMEDOUT, < 0: forever) or another
 * thread calls ntbt_dev_db_wait_interrupt (-EINTR).  Does not clear bits.
 */
int ntbt_dev_db_wait(struct ntbt_dev *dev, uint64_t bits, int64_t timeout_ns);
/* Make every current and next-starting ntbt_dev_db_wait on this handle return -EINTR once. */
int ntbt_dev_db_wait_interrupt(struct ntbt_dev *dev);

/* Scratchpads. */
int ntbt_dev_spad_count(struct ntbt_dev *dev);
int ntbt_dev_spad_read(struct ntbt_dev *dev, int idx, uint32_t *val);
int ntbt_dev_spad_write(struct ntbt_dev *dev, int idx, uint32_t val);
int ntbt_dev_peer_spad_read(struct ntbt_dev *dev, int idx, uint32_t *val);
int ntbt_dev_peer_spad_write(struct ntbt_dev *dev, int idx, uint32_t val);

#ifdef __cplusplus
}
#endif
#endif
