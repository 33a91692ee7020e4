/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * The ntb_user bridge's interface to userspace (kernel/ntb_user/): one
 * character device per NTB device the bridge is bound to, /dev/ntbt-userN,
 * mode 0600, one opener at a time (a second open() fails with EBUSY).  Its
 * sysfs class device /sys/class/ntbt_user/ntbt-userN has an attribute "ntb"
 * that names the NTB device (the name under /sys/bus/ntb/devices/).
 *
 * Both the kernel module and ntbt's "kdev" device include this header; it
 * uses only <linux/types.h> and <linux/ioctl.h>.
 *
 * mmap (offsets are the region constants below; a mapping may start at a
 * page inside its region and must end inside it; MAP_SHARED, never
 * executable, fixed in size: mremap cannot grow it; the offsets need a
 * 64-bit off_t, so only 64-bit processes map the windows):
 *   NTBT_USER_MMAP_STATUS   one page, read-only: struct ntbt_user_status;
 *   NTBT_USER_MMAP_OUT(w)   outbound window w (peer_mw_get_addr), mapped
 *                           write-combined exactly as ntb_transport maps
 *                           it (ioremap_wc); read and write;
 *   NTBT_USER_MMAP_IN(w)    the inbound buffer set by NTBT_USER_MW_SET
 *                           (dma_mmap_coherent); read and write.
 *
 * Events: read() returns one struct ntbt_user_event when an unmasked
 * doorbell bit is pending or the link changed since this file's last
 * read(); it blocks unless O_NONBLOCK (EAGAIN).  poll() reports POLLIN on
 * the same condition.  Doorbell bits are level: they stay pending until
 * NTBT_USER_DB_CLEAR.  NTBT_USER_WAIT is the precise form ntbt uses.
 *
 * Close (or the death of the process): every translation set through the
 * file is cleared and its buffer freed, the link is disabled, the doorbell
 * mask is restored.  Removal of the NTB device while the file is open:
 * every mapping is torn down and every call fails with ENODEV.
 *
 * Inbound windows: set them up in ascending order (0, 1, ...), as
 * ntb_transport does; a hardware driver whose DMA allocator cannot know the
 * window a buffer is for (ntb_hw_ntbt) refuses another order with EINVAL.
 *
 * Every ioctl returns 0 or -1 with errno: EINVAL for an index, size or
 * alignment out of range; ENOTTY for an unknown command; ENODEV once the
 * device is gone; EBUSY for NTBT_USER_MW_SET on a window already set or
 * NTBT_USER_MW_CLEAR while the buffer is mapped.
 */
#ifndef NTBT_NTB_USER_H
#define NTBT_NTB_USER_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define NTBT_USER_ABI    1
#define NTBT_USER_MAX_MW 16 /* windows the bridge exposes */

/* mmap regions: region r covers [r << 40, (r + 1) << 40). */
#define NTBT_USER_MMAP_SHIFT  40
#define NTBT_USER_MMAP_STATUS 0ULL
#define NTBT_USER_MMAP_OUT(w) ((__u64)(0x10 + (w)) << NTBT_USER_MMAP_SHIFT)
#define NTBT_USER_MMAP_IN(w)  ((__u64)(0x20 + (w)) << NTBT_USER_MMAP_SHIFT)

/*
 * The status page.  The driver writes every field (WRITE_ONCE, under its
 * lock); userspace only reads, each field with one load of its width.  A
 * doorbell bit is set here only after the driver has seen it in the
 * hardware (ntb_db_read in its db_event callback), so a reader that sees it
 * with an acquire load also sees the peer's window writes that the peer
 * flushed before ringing.
 */
struct ntbt_user_status {
        __u64 db;          /* pending doorbell bits (set by events, cleared by DB_CLEAR) */
        __u64 db_mask;     /* bits masked by DB_SET_MASK: they do not end waits */
        __u32 link_up;     /* 1 while ntb_link_is_up() */
        __u32 link_seq;    /* +1 on every link event */
        __u32 db_seq;      /* +1 on every doorbell event that set a bit */
        __u32 kick_seq;    /* +1 on every NTBT_USER_KICK */
        __u32 speed;       /* enum ntb_speed while up */
        __u32 width;       /* enum ntb_width while up */
        __u64 db_events;   /* doorbell callbacks seen */
        __u64 link_events; /* link callbacks seen */
};

struct ntbt_user_info {
        __u32 abi;           /* NTBT_USER_ABI */
        __u32 port;          /* ntb_port_number() */
        __u32 peer_port;     /* ntb_peer_port_number(ntb, 0) */
        __u32 peer_count;    /* ntb_peer_port_count() */
        __u32 mw_count;      /* inbound windows: ntb_mw_count(ntb, 0), at most NTBT_USER_MAX_MW */
        __u32 peer_mw_count; /* outbound windows: ntb_peer_mw_count(), at most NTBT_USER_MAX_MW */
        __u32 spad_count;    /* ntb_spad_count() */
        __u32 db_vectors;    /* ntb_db_vector_count() */
        __u64 db_valid_mask; /* ntb_db_valid_mask() */
        __u32 topo;          /* enum ntb_topo */
        __u32 status_size;   /* bytes to mmap at NTBT_USER_MMAP_STATUS (one page) */
        char name[32];       /* the NTB device: dev_name(&ntb->dev) */
        char driver[32];     /* its hardware driver: e.g. "ntb_hw_intel" */
};

struct ntbt_user_mw {
        __u32 widx;       /* in: window index */
        __u32 flags;      /* out: NTBT_USER_MW_* */
        __u64 addr_align; /* out: ntb_mw_get_align(ntb, 0, widx) */
        __u64 size_align;
        __u64 size_max;
        __u64 out_size;    /* out: outbound window size (peer_mw_get_addr), 0 if none */
        __u64 in_size;     /* out: the inbound buffer's size, 0 while none is set */
        __u64 in_offset;   /* out: where the buffer starts in NTBT_USER_MMAP_IN(widx) */
        __u64 in_map_size; /* out: bytes mappable at NTBT_USER_MMAP_IN(widx) */
};
#define NTBT_USER_MW_IN_SET    0x1 /* an inbound buffer is set */
#define NTBT_USER_MW_IN_MAPPED 0x2 /* and mapped by this file */

struct ntbt_user_mw_set {
        __u32 widx;
        __u32 pad;  /* must be 0 */
        __u64 size; /* a multiple of size_align, 1 .. size_max */
};

struct ntbt_user_spad {
        __u32 idx; /* < spad_count */
        __u32 val; /* in for writes, out for reads */
};

struct ntbt_user_wait {
        __u64 db_bits;    /* end when (db & db_bits & ~db_mask) != 0 */
        __s64 timeout_ns; /* < 0: no timeout; ETIMEDOUT when it passes */
        __u32 kick_seq;   /* EINTR when the status page's kick_seq differs */
        __u32 link_seq;   /* with NTBT_USER_WAIT_LINK: end when link_seq differs */
        __u32 flags;      /* NTBT_USER_WAIT_* */
        __u32 pad;        /* must be 0 */
};
#define NTBT_USER_WAIT_LINK 0x1

struct ntbt_user_event {
        __u64 db; /* pending, unmasked doorbell bits */
        __u32 link_up;
        __u32 link_seq;
};

#define NTBT_USER_IOC             0xB7
#define NTBT_USER_INFO            _IOR(NTBT_USER_IOC, 0x00, struct ntbt_user_info)
#define NTBT_USER_MW_INFO         _IOWR(NTBT_USER_IOC, 0x01, struct ntbt_user_mw)
#define NTBT_USER_MW_SET          _IOW(NTBT_USER_IOC, 0x02, struct ntbt_user_mw_set)
#define NTBT_USER_MW_CLEAR        _IOW(NTBT_USER_IOC, 0x03, __u32)
#define NTBT_USER_SPAD_READ       _IOWR(NTBT_USER_IOC, 0x10, struct ntbt_user_spad)
#define NTBT_USER_SPAD_WRITE      _IOW(NTBT_USER_IOC, 0x11, struct ntbt_user_spad)
#define NTBT_USER_PEER_SPAD_READ  _IOWR(NTBT_USER_IOC, 0x12, struct ntbt_user_spad)
#define NTBT_USER_PEER_SPAD_WRITE _IOW(NTBT_USER_IOC, 0x13, struct ntbt_user_spad)
#define NTBT_USER_DB_CLEAR        _IOW(NTBT_USER_IOC, 0x20, __u64)
#define NTBT_USER_DB_SET_MASK     _IOW(NTBT_USER_IOC, 0x21, __u64)
#define NTBT_USER_DB_CLEAR_MASK   _IOW(NTBT_USER_IOC, 0x22, __u64)
#define NTBT_USER_PEER_DB_SET     _IOW(NTBT_USER_IOC, 0x23, __u64)
#define NTBT_USER_LINK_ENABLE     _IO(NTBT_USER_IOC, 0x30)
#define NTBT_USER_LINK_DISABLE    _IO(NTBT_USER_IOC, 0x31)
#define NTBT_USER_WAIT            _IOW(NTBT_USER_IOC, 0x40, struct ntbt_user_wait)
#define NTBT_USER_KICK            _IO(NTBT_USER_IOC, 0x41)

#endif
