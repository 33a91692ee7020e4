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

/* The longest device string, its NUL included, and the longest type name. */
#define NTBT_DEV_SPEC_MAX 256
#define NTBT_DEV_TYPE_MAX 16

/*
 * A device string taken apart by ntbt_dev_parse.  The forms:
 *   shm:NAME[,port=0|1][,nt=0|1][,shared=0|1]      docs/spec/shm-device.md
 *   pcie:[TYPE:]NAME[,wc=..,q=..,bw=..,lat=..,rd=..,seed=..][,inner options]
 *                      docs/spec/pcie-model.md; TYPE: is the device it
 *                      models, shm: when omitted ("pcie:x" is "pcie:shm:x")
 *   kdev:/dev/ntbt-userN or kdev:NTBDEV             docs/hardware.md
 * The options form one list: each key belongs to the outermost type that
 * takes it (pcie's keys to pcie, port= to the shm device inside).
 */
struct ntbt_dev_parsed {
        uint32_t size;                /* sizeof(struct ntbt_dev_parsed): <ntbt/ntbt.h>'s rule */
        char type[NTBT_DEV_TYPE_MAX]; /* TYPE: "shm", "pcie", "kdev" */
        char
            base_type[NTBT_DEV_TYPE_MAX]; /* the type of the device NAME names: TYPE, or the
                                           * innermost device's under a wrapper ("shm" for pcie:) */
        char name[NTBT_DEV_SPEC_MAX];     /* NAME (without the type of a wrapped device) */
        size_t name_off;                  /* where NAME starts in the string parsed, so that
                                           * another name can be put in its place */
        int nopts;                        /* how many key=value options */
};

/* ntbt_dev_parse flags: a string without "TYPE:" is an shm NAME ("demo" is "shm:demo"). */
#define NTBT_DEV_PARSE_BARE 0x1u

/*
 * Check and take apart a device string without opening anything: the type
 * (and a wrapper's inner type) must be known, NAME not empty, each option
 * key=value with a key that one of the types takes, given once, and a value
 * in its range.  ntbt_dev_open parses with this.  0, or -EINVAL with a log
 * message naming what is wrong (the same message ntbt_dev_open gives).
 */
int ntbt_dev_parse(const char *spec, unsigned flags, struct ntbt_dev_parsed *out);
/*
 * The NAME of a device string or of a bare NAME (NTBT_DEV_PARSE_BARE): the
 * shm device's name, also under pcie:, or kdev:'s path; the name a device
 * is listed under and its statistics files are named by (ntbt_stats_path).
 * 0, -EINVAL (a bad string, logged as ntbt_dev_parse does) or -ENAMETOOLONG.
 */
int ntbt_dev_display_name(const char *spec, char *buf, size_t len);

/*
 * Open a device (see struct ntbt_dev_parsed for the strings).  A string
 * ntbt_dev_parse refuses gives -EINVAL and a log message naming what is wrong.
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
/*
 * Outbound window widx as memory (base, size), where the device allows it:
 * stores through it reach the peer's inbound window as peer_mw_write's do,
 * ordered by peer_mw_wmb and peer_mw_flush; valid until the device is
 * closed.  -EOPNOTSUPP where it does not (a model such as pcie, whose
 * window stores the pointer would bypass).  The transport's zero-copy send
 * hands out slots of it (ntbt_qp_tx_reserve).
 */
int ntbt_dev_peer_mw_map(struct ntbt_dev *dev, int widx, void **base, uint64_t *size);

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
/* Make every ntbt_dev_db_wait in progress on this handle return -EINTR.  A
 * kick is not remembered for a wait that starts later: a caller re-checks
 * its own state before it waits, and waits with a timeout if a kick may come
 * between its check and the wait (ntbt's event thread: at most 20 ms). */
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
