// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * ntb_hw_ntbt - the ntbt "shm" device (format 2) as a Linux NTB device.
 *
 * ntbt emulates a Non-Transparent Bridge in one shared-memory file whose
 * register map is ../../docs/spec/shm-device.md ("format 2"). QEMU's
 * ivshmem-plain (PCI 1af4:1110) shows that file to a guest as BAR 2. This
 * driver binds that PCI function, claims one of the file's two ports as a
 * *remote owner* (owner_kind 2, pid 0) and registers an ntb_dev, so that
 * ntb_transport, ntb_netdev, ntb_tool, ntb_perf and ntb_pingpong run on it
 * unchanged. The other port may be owned by a second guest running this
 * driver, or by an ntbt process on the host.
 *
 * Mappings and PAT
 *   The registers need atomic operations, so the header and port pages
 *   (the file's first 0x3000 bytes) and this port's own inbound windows are
 *   mapped write-back with memremap(MEMREMAP_WB). The memory behind the BAR
 *   is ordinary host RAM, so write-back is also the coherent choice.
 *   The peer's inbound windows (our outbound windows) are never mapped here:
 *   ntb_transport and ntb_perf ioremap_wc() them from peer_mw_get_addr(),
 *   and on x86 a write-combining mapping of a range that already carries a
 *   write-back reservation is refused by PAT.
 *   SeaBIOS places the 64-bit BAR in the 32-bit PCI hole, which its MTRRs
 *   mark uncacheable; PAT then silently turns MEMREMAP_WB into UC- (correct,
 *   but every register access and every received byte becomes an uncached
 *   access). With move_bar=1 (default) the BAR is released and re-assigned
 *   before use, which puts it above 4 GiB where nothing overrides PAT.
 *
 * The receive-buffer trick
 *   ntb_transport allocates each receive buffer with dma_alloc_attrs() on
 *   ntb_get_dma_dev() and hands the DMA address to mw_set_trans(), expecting
 *   the bridge to translate inbound window n onto that RAM. Here inbound
 *   window n is a fixed range of BAR 2, so the buffer has to *be* the
 *   window. get_dma_dev() returns a child struct device of the PCI function
 *   (no bus, 64-bit masks) with our own dma_map_ops: .alloc hands out one
 *   of this port's windows (the WB mapping, zeroed) and returns the window's
 *   bus address bar2 + window_offset + (port * mw_count + n) * mw_size as
 *   the DMA handle; .free gives it back, .mmap maps it into userspace
 *   (ntb_user's inbound buffers). Every window is mw_size bytes, so
 *   a request up to mw_size fits any window and a larger one fails. alloc
 *   cannot know which window the caller will translate, so it picks the
 *   likely one: on the child device the lowest free window (ntb_transport
 *   sets its windows up in order 0, 1, ... so buffer n lands in window n).
 *   mw_set_trans() refuses any address that is not the first byte of window
 *   n. With dma_on_pci=1 (default) the same ops are also installed on the
 *   PCI function itself, because ntb_perf and ntb_tool allocate their
 *   inbound buffers on ntb->pdev->dev; there alloc prefers window <peer
 *   port>, the one ntb_perf translates (ntb_tool on port 0: set up
 *   peer0/mw_trans1 before mw_trans0).
 *   Window memory has no struct page: ntb_transport's use_dma=1 calls
 *   virt_to_page() on the receive buffer, so keep use_dma=0 (the default).
 *
 * Polling
 *   ivshmem-plain has no interrupts and a remote owner never wakes a futex.
 *   One kernel thread per device polls this port's doorbells and the link;
 *   an hrtimer beats the heartbeat (see ntbt_beat()). It polls every poll_us while doorbells arrive
 *   (or we ring the peer, which usually means a reply is coming), doubles
 *   its period after NTBT_BUSY_MS without activity, up to idle_us and never
 *   beyond heartbeat_ms / 4. Ringing the peer wakes an idle thread at once.
 *
 * Link
 *   Up when both ports are claimed, both link_enabled, and the peer's
 *   heartbeat changed within remote_timeout_ms by our clock (a new
 *   generation must beat once before it counts). Each side judges alone,
 *   so a side that judges the peer gone also drops its own link_enabled
 *   for a moment, and ntb_transport on both sides sees the same link down
 *   (see NTBT_HOLD_DOWN_MS). Doorbells rung while our link is down stay
 *   pending and fire when it comes up.
 *
 * Trust
 *   The header is validated once and copied; afterwards only the copies
 *   bound anything. Everything the peer writes (its state, heartbeat,
 *   doorbell bits) is treated as data, never as a size or index.
 *
 * Parameters (see modinfo): port (-1 first free, 0, 1), poll_us, idle_us,
 * move_bar, dma_on_pci. State for tests: debugfs ntb_hw_ntbt/<pci>/info.
 *
 * QEMU: under TCG, the guest's LOCK-prefixed operations are atomic against
 * the other side of the file only when QEMU translates for parallel vCPUs:
 * multi-threaded TCG and a machine that may have more than one vCPU
 * (-accel tcg,thread=multi -smp 1,maxcpus=2 is enough; tests/vm/boot does
 * that). With a single possible vCPU they are plain loads and stores.
 */

#include <linux/atomic.h>
#include <linux/bitmap.h>
#include <linux/bitops.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/hrtimer.h>
#include <linux/io.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/ntb.h>
#include <linux/pci.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#ifndef CONFIG_64BIT
#error "ntb_hw_ntbt needs single-access 64-bit registers (CONFIG_64BIT)"
#endif
#ifdef __BIG_ENDIAN
#error "the ntbt shm device is little-endian; atomics need native order"
#endif

#define DRV_NAME		"ntb_hw_ntbt"

#define NTBT_BAR		2
#define NTBT_HDR_BYTES		0x3000u
#define NTBT_PORT_PAGE(p)	(0x1000u + (p) * 0x1000u)
#define NTBT_MAGIC_V2		"NTBTSHM2"
#define NTBT_MAGIC_V1		"NTBTSHM1"

/* device header offsets */
#define NTBT_H_MAGIC		0x00	/* char[8] */
#define NTBT_H_FORMAT		0x08	/* u32 */
#define NTBT_H_HEADER_BYTES	0x0c	/* u32 */
#define NTBT_H_MW_COUNT		0x10	/* u32 */
#define NTBT_H_SPAD_COUNT	0x14	/* u32 */
#define NTBT_H_DB_VALID		0x18	/* u64 */
#define NTBT_H_MW_SIZE		0x20	/* u64 */
#define NTBT_H_XLAT_ALIGN	0x28	/* u64 */
#define NTBT_H_FILE_BYTES	0x30	/* u64 */
#define NTBT_H_LINK_SEQ		0x38	/* u32 */
#define NTBT_H_HEARTBEAT_MS	0x3c	/* u32 */
#define NTBT_H_REMOTE_TMO_MS	0x40	/* u32 */
#define NTBT_H_WINDOW_OFFSET	0x48	/* u64 */

/* port register offsets, relative to NTBT_PORT_PAGE(p) */
#define NTBT_P_STATE		0x000	/* u32: 0 free, 1 claimed */
#define NTBT_P_PID		0x004	/* u32 */
#define NTBT_P_GENERATION	0x008	/* u32 */
#define NTBT_P_LINK_ENABLED	0x00c	/* u32 */
#define NTBT_P_OWNER_KIND	0x010	/* u32 */
#define NTBT_P_HEARTBEAT	0x014	/* u32 */
#define NTBT_P_DB		0x040	/* u64 */
#define NTBT_P_DB_MASK		0x048	/* u64 */
#define NTBT_P_DB_SEQ		0x050	/* u32 */
#define NTBT_P_SPAD		0x080	/* u32[spad_count] */
#define NTBT_P_XLAT_SIZE	0x180	/* u64[8] */

#define NTBT_STATE_FREE		0
#define NTBT_STATE_CLAIMED	1
#define NTBT_OWNER_NONE		0
#define NTBT_OWNER_PROCESS	1
#define NTBT_OWNER_REMOTE	2

#define NTBT_MW_MAX		8
#define NTBT_SPAD_MIN		6
#define NTBT_SPAD_MAX		64

/* stay in fast polling this long after the last doorbell activity */
#define NTBT_BUSY_MS		10
/*
 * A link that went down (or was just enabled) stays down this long:
 * ntb_transport cleans up in a work item, and an "up" that overtakes it
 * races with its cleanup. When we take the link down on our own judgment
 * (the peer's heartbeat went stale, or it restarted), we also clear our
 * link_enabled for at least this long, so that a peer that is in fact alive
 * sees the link go down too (see ntbt_bounce()).
 */
#define NTBT_HOLD_DOWN_MS	100
/* takeover attempts lost to other claimers before probe gives up */
#define NTBT_CLAIM_TRIES	4

static int port = -1;
module_param(port, int, 0444);
MODULE_PARM_DESC(port, "port to claim: -1 first free (default), 0 or 1");

static unsigned int poll_us = 10;
module_param(poll_us, uint, 0644);
MODULE_PARM_DESC(poll_us,
		 "poll period in us while doorbells arrive (default 10)");

static unsigned int idle_us = 1000;
module_param(idle_us, uint, 0644);
MODULE_PARM_DESC(idle_us,
		 "longest poll period in us when idle (default 1000; never above heartbeat_ms/4)");

static bool move_bar = true;
module_param(move_bar, bool, 0444);
MODULE_PARM_DESC(move_bar,
		 "re-assign BAR 2 above 4 GiB, out of the MTRR-uncached hole (default 1)");

static bool dma_on_pci = true;
module_param(dma_on_pci, bool, 0444);
MODULE_PARM_DESC(dma_on_pci,
		 "also hand out windows from dma_alloc on the PCI device, for ntb_perf/ntb_tool (default 1)");

static struct dentry *ntbt_dbgfs_root;

/* Header fields, copied and validated once; the BAR is never trusted again. */
struct ntbt_geom {
	u32 mw_count;
	u32 spad_count;
	u32 heartbeat_ms;
	u32 remote_timeout_ms;
	u64 db_valid;
	u64 mw_size;
	u64 xlat_align;
	u64 file_bytes;
	u64 window_offset;
};

struct ntbt_dma_dev {
	struct device dev;
	struct ntbt_dev *nd;
};

struct ntbt_dev {
	struct ntb_dev ntb;
	struct pci_dev *pdev;
	struct ntbt_geom g;

	phys_addr_t bar_phys;
	bool bar_high;			/* above 4 GiB: PAT gives write-back */
	void *regs;			/* WB: header + both port pages */
	void *win;			/* WB: this port's mw_count windows */

	int port;			/* ours */
	int peer;			/* 1 - port */
	u32 generation;			/* ours, as claimed */
	bool took_over;

	struct ntbt_dma_dev *dma;
	const struct dma_map_ops *pci_old_dma_ops;
	bool pci_dma_set;

	/* protects db_mask, win_busy, link_enabled, bouncing */
	spinlock_t lock;
	u64 db_mask;			/* our copy; we are its only writer */
	unsigned long win_busy;		/* windows handed out by dma alloc */
	u64 xlat_size[NTBT_MW_MAX];	/* as last set through mw_set_trans */

	struct task_struct *thread;
	struct hrtimer beat_timer;	/* beats our heartbeat, see ntbt_beat() */
	bool registered;		/* ntb_register_device() succeeded */
	bool link_enabled;		/* our link_enable() */
	bool bouncing;			/* link_enabled held at 0, see above */
	bool link_up;
	bool lost;			/* someone took our port over */
	int rang;			/* we rang the peer since last poll */
	int idle_sleep;			/* thread is in a long sleep */
	unsigned int period_us;

	/* poll thread only */
	u32 last_db_seq;
	u64 last_pending;
	ktime_t own_beat;
	bool peer_seen;
	bool peer_beating;
	bool peer_bad;
	u32 peer_gen;
	u32 peer_hb;
	ktime_t peer_hb_time;
	ktime_t down_time;		/* when the link last went down */
	unsigned long bounces;
	u32 bounce_gen;			/* the peer's, when the bounce began */
	u32 bounce_hb;

	/* counters, for debugfs */
	s64 max_poll_gap_ms;		/* longest time between two polls */
	unsigned long db_events;
	unsigned long polls;
	unsigned long peer_restarts;
	unsigned long peer_timeouts;
	unsigned long link_changes;
	atomic_long_t bad_peer_state;
	atomic_long_t refused_trans;
	atomic_long_t bad_dma_free;

	struct dentry *dbgfs;
};

#define ntb_ndev(__ntb) container_of(__ntb, struct ntbt_dev, ntb)

/*
 * Register access. Every register is naturally aligned inside the WB
 * mapping. Plain reads and writes use READ_ONCE/WRITE_ONCE, which are single
 * accesses of the register's width on a 64-bit kernel. Read-modify-writes
 * use the kernel's fully ordered value-returning atomics (LOCK-prefixed on
 * x86): the spec asks for sequential consistency unless argued otherwise.
 * atomic_t and atomic64_t are a bare int and s64, so a register can be cast
 * to them.
 */
static inline u32 *ntbt_hdr32(struct ntbt_dev *nd, unsigned int off)
{
	return nd->regs + off;
}

static inline u64 *ntbt_hdr64(struct ntbt_dev *nd, unsigned int off)
{
	return nd->regs + off;
}

/* @p is always nd->port or nd->peer (0 or 1), @off a constant or bounded */
static inline u32 *ntbt_reg32(struct ntbt_dev *nd, int p, unsigned int off)
{
	return nd->regs + NTBT_PORT_PAGE(p) + off;
}

static inline u64 *ntbt_reg64(struct ntbt_dev *nd, int p, unsigned int off)
{
	return nd->regs + NTBT_PORT_PAGE(p) + off;
}

static inline u32 *ntbt_spad(struct ntbt_dev *nd, int p, unsigned int i)
{
	return ntbt_reg32(nd, p, NTBT_P_SPAD + 4 * i);
}

static inline u64 *ntbt_xlat(struct ntbt_dev *nd, int p, unsigned int n)
{
	return ntbt_reg64(nd, p, NTBT_P_XLAT_SIZE + 8 * n);
}

static inline u32 ntbt_inc32(u32 *reg)
{
	return (u32)atomic_inc_return((atomic_t *)reg);
}

static inline u64 ntbt_or64(u64 *reg, u64 bits)
{
	return (u64)atomic64_fetch_or((s64)bits, (atomic64_t *)reg);
}

static inline u64 ntbt_andnot64(u64 *reg, u64 bits)
{
	return (u64)atomic64_fetch_andnot((s64)bits, (atomic64_t *)reg);
}

/* bus address of inbound window @n of port @p */
static inline u64 ntbt_win_bus(struct ntbt_dev *nd, int p, unsigned int n)
{
	return (u64)nd->bar_phys + nd->g.window_offset +
	       ((u64)p * nd->g.mw_count + n) * nd->g.mw_size;
}

static void ntbt_bump_link_seq(struct ntbt_dev *nd)
{
	/* fully ordered: the port stores before it are visible first */
	ntbt_inc32(ntbt_hdr32(nd, NTBT_H_LINK_SEQ));
}

static bool ntbt_own_ok(struct ntbt_dev *nd)
{
	return !READ_ONCE(nd->lost);
}

/* ------------------------------------------------------------------ */
/* Header validation                                                   */

static int ntbt_check_header(struct ntbt_dev *nd, resource_size_t bar_len)
{
	struct device *dev = &nd->pdev->dev;
	struct ntbt_geom *g = &nd->g;
	u32 format, hdr_bytes;
	u64 magic, want;

	/*
	 * The creator writes magic last: the acquire orders our reads of the
	 * other header fields after it.
	 */
	magic = smp_load_acquire(ntbt_hdr64(nd, NTBT_H_MAGIC));
	if (!memcmp(&magic, NTBT_MAGIC_V1, 8)) {
		dev_err(dev, "ntbt device is format 1; create it again (format 2 is needed)\n");
		return -ENODEV;
	}
	if (memcmp(&magic, NTBT_MAGIC_V2, 8)) {
		dev_err(dev, "BAR 2 is not an ntbt shm device (magic %8phN)\n",
			&magic);
		return -ENODEV;
	}

	format = READ_ONCE(*ntbt_hdr32(nd, NTBT_H_FORMAT));
	hdr_bytes = READ_ONCE(*ntbt_hdr32(nd, NTBT_H_HEADER_BYTES));
	g->mw_count = READ_ONCE(*ntbt_hdr32(nd, NTBT_H_MW_COUNT));
	g->spad_count = READ_ONCE(*ntbt_hdr32(nd, NTBT_H_SPAD_COUNT));
	g->db_valid = READ_ONCE(*ntbt_hdr64(nd, NTBT_H_DB_VALID));
	g->mw_size = READ_ONCE(*ntbt_hdr64(nd, NTBT_H_MW_SIZE));
	g->xlat_align = READ_ONCE(*ntbt_hdr64(nd, NTBT_H_XLAT_ALIGN));
	g->file_bytes = READ_ONCE(*ntbt_hdr64(nd, NTBT_H_FILE_BYTES));
	g->heartbeat_ms = READ_ONCE(*ntbt_hdr32(nd, NTBT_H_HEARTBEAT_MS));
	g->remote_timeout_ms = READ_ONCE(*ntbt_hdr32(nd, NTBT_H_REMOTE_TMO_MS));
	g->window_offset = READ_ONCE(*ntbt_hdr64(nd, NTBT_H_WINDOW_OFFSET));

	if (format != 2) {
		dev_err(dev, "bad header: format %u, expected 2\n", format);
		return -EINVAL;
	}
	if (hdr_bytes != NTBT_HDR_BYTES) {
		dev_err(dev, "bad header: header_bytes %#x, expected %#x\n",
			hdr_bytes, NTBT_HDR_BYTES);
		return -EINVAL;
	}
	if (g->mw_count < 1 || g->mw_count > NTBT_MW_MAX) {
		dev_err(dev, "bad header: mw_count %u not in 1..%u\n",
			g->mw_count, NTBT_MW_MAX);
		return -EINVAL;
	}
	if (g->spad_count < NTBT_SPAD_MIN || g->spad_count > NTBT_SPAD_MAX) {
		dev_err(dev, "bad header: spad_count %u not in %u..%u\n",
			g->spad_count, NTBT_SPAD_MIN, NTBT_SPAD_MAX);
		return -EINVAL;
	}
	/* contiguous from bit 0 (v + 1 is a power of two or 0), >= 2 bits */
	if (!g->db_valid || (g->db_valid & (g->db_valid + 1)) ||
	    hweight64(g->db_valid) < 2) {
		dev_err(dev, "bad header: db_valid_mask %#llx is not 2..64 contiguous bits from bit 0\n",
			g->db_valid);
		return -EINVAL;
	}
	if (!is_power_of_2(g->mw_size) || g->mw_size < SZ_4K ||
	    g->mw_size > SZ_1G) {
		dev_err(dev, "bad header: mw_size %#llx is not a power of two in 4 KiB..1 GiB\n",
			g->mw_size);
		return -EINVAL;
	}
	if (!is_power_of_2(g->xlat_align) || g->xlat_align < SZ_4K ||
	    g->xlat_align > g->mw_size) {
		dev_err(dev, "bad header: xlat_align %#llx is not a power of two in 4 KiB..mw_size\n",
			g->xlat_align);
		return -EINVAL;
	}
	/* bounded above: no overflow (at most 1 GiB + 16 GiB) */
	want = round_up((u64)NTBT_HDR_BYTES, g->mw_size);
	if (g->window_offset != want) {
		dev_err(dev, "bad header: window_offset %#llx, expected %#llx\n",
			g->window_offset, want);
		return -EINVAL;
	}
	want = roundup_pow_of_two(g->window_offset +
				  2ull * g->mw_count * g->mw_size);
	if (g->file_bytes != want) {
		dev_err(dev, "bad header: file_bytes %#llx, expected %#llx\n",
			g->file_bytes, want);
		return -EINVAL;
	}
	if (g->file_bytes != bar_len) {
		dev_err(dev, "bad header: file_bytes %#llx but BAR 2 is %#llx bytes\n",
			g->file_bytes, (u64)bar_len);
		return -EINVAL;
	}
	if (g->heartbeat_ms < 10 || g->heartbeat_ms > 10000) {
		dev_err(dev, "bad header: heartbeat_ms %u not in 10..10000\n",
			g->heartbeat_ms);
		return -EINVAL;
	}
	if (g->remote_timeout_ms < 2 * g->heartbeat_ms ||
	    g->remote_timeout_ms > 60000) {
		dev_err(dev, "bad header: remote_timeout_ms %u not in 2*heartbeat_ms..60000\n",
			g->remote_timeout_ms);
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Claim, takeover, release                                            */

/* a claim's stores, after the state (or generation) swap */
static void ntbt_claim_owner(struct ntbt_dev *nd, int p)
{
	WRITE_ONCE(*ntbt_reg32(nd, p, NTBT_P_OWNER_KIND), NTBT_OWNER_REMOTE);
	WRITE_ONCE(*ntbt_reg32(nd, p, NTBT_P_PID), 0);
}

/* a claim's resets, after the generation increment */
static void ntbt_claim_zero(struct ntbt_dev *nd, int p)
{
	unsigned int i;

	WRITE_ONCE(*ntbt_reg64(nd, p, NTBT_P_DB), 0);
	WRITE_ONCE(*ntbt_reg64(nd, p, NTBT_P_DB_MASK), 0);
	for (i = 0; i < nd->g.spad_count; i++)
		WRITE_ONCE(*ntbt_spad(nd, p, i), 0);
	for (i = 0; i < nd->g.mw_count; i++)
		WRITE_ONCE(*ntbt_xlat(nd, p, i), 0);
	WRITE_ONCE(*ntbt_reg32(nd, p, NTBT_P_LINK_ENABLED), 0);
}

static void ntbt_claimed(struct ntbt_dev *nd, int p, u32 gen, bool takeover)
{
	nd->port = p;
	nd->peer = 1 - p;
	nd->generation = gen;
	nd->took_over = takeover;
	/* so that the peer sees us alive as early as possible */
	ntbt_inc32(ntbt_reg32(nd, p, NTBT_P_HEARTBEAT));
	nd->own_beat = ktime_get();
}

/* claim a free port: 0 and the port, or -EBUSY */
static int ntbt_try_claim_free(struct ntbt_dev *nd, int p)
{
	u32 gen;

	if (cmpxchg(ntbt_reg32(nd, p, NTBT_P_STATE), NTBT_STATE_FREE,
		    NTBT_STATE_CLAIMED) != NTBT_STATE_FREE)
		return -EBUSY;
	/* cmpxchg is fully ordered: nothing below moves above the claim */
	ntbt_claim_owner(nd, p);
	gen = ntbt_inc32(ntbt_reg32(nd, p, NTBT_P_GENERATION));
	ntbt_claim_zero(nd, p);
	ntbt_bump_link_seq(nd);
	ntbt_claimed(nd, p, gen, false);
	return 0;
}

/*
 * A port whose state is neither free nor claimed was written by no owner
 * that follows the spec: no claim can succeed on it and a takeover would
 * keep the bad state, so it is left alone (with a warning).
 */
static bool ntbt_state_invalid(struct ntbt_dev *nd, int p)
{
	u32 st = READ_ONCE(*ntbt_reg32(nd, p, NTBT_P_STATE));

	if (st == NTBT_STATE_FREE || st == NTBT_STATE_CLAIMED)
		return false;
	dev_warn(&nd->pdev->dev,
		 "port %d: state %u is neither free (0) nor claimed (1); leaving it alone\n",
		 p, st);
	return true;
}

/*
 * Claim a port: a free one at once; otherwise watch the candidates'
 * heartbeats for remote_timeout_ms and take over one whose heartbeat did
 * not change (its owner is gone). A remote owner cannot see host pids, so
 * every owner is judged by heartbeat. Sleeps; called from probe only.
 */
static int ntbt_claim(struct ntbt_dev *nd)
{
	struct device *dev = &nd->pdev->dev;
	unsigned int step_ms = clamp(nd->g.heartbeat_ms / 4, 1u, 10u);
	int lo = port < 0 ? 0 : port, hi = port < 0 ? 1 : port;
	int tries, p;

	for (tries = 0; tries < NTBT_CLAIM_TRIES; tries++) {
		u32 gen0[2], hb0[2];
		bool watch[2] = { false, false };
		bool any;
		ktime_t t0;

		for (p = lo; p <= hi; p++)
			if (!ntbt_try_claim_free(nd, p))
				return 0;

		t0 = ktime_get();
		any = false;
		for (p = lo; p <= hi; p++) {
			if (ntbt_state_invalid(nd, p))
				continue;
			gen0[p] = READ_ONCE(*ntbt_reg32(nd, p,
							NTBT_P_GENERATION));
			hb0[p] = READ_ONCE(*ntbt_reg32(nd, p,
						       NTBT_P_HEARTBEAT));
			watch[p] = true;
			any = true;
		}
		if (!any) {
			dev_err(dev, "no port can be claimed\n");
			return -EBUSY;
		}
		dev_info(dev, "port%s busy; watching heartbeats for %u ms\n",
			 lo == hi ? "" : "s", nd->g.remote_timeout_ms);

		for (;;) {
			bool expired;

			msleep(step_ms);
			expired = ktime_ms_delta(ktime_get(), t0) >=
				  nd->g.remote_timeout_ms;
			any = false;
			for (p = lo; p <= hi; p++) {
				if (!watch[p])
					continue;
				if (!ntbt_try_claim_free(nd, p))
					return 0;
				/* a beat or a new owner: that port is alive */
				if (READ_ONCE(*ntbt_reg32(nd, p,
						NTBT_P_GENERATION)) != gen0[p] ||
				    READ_ONCE(*ntbt_reg32(nd, p,
						NTBT_P_HEARTBEAT)) != hb0[p] ||
				    ntbt_state_invalid(nd, p)) {
					watch[p] = false;
					continue;
				}
				any = true;
				if (!expired)
					continue;
				/* gone: only the winner of this swap goes on */
				if (cmpxchg(ntbt_reg32(nd, p,
						       NTBT_P_GENERATION),
					    gen0[p], gen0[p] + 1) != gen0[p])
					break;
				ntbt_claim_owner(nd, p);
				ntbt_claim_zero(nd, p);
				ntbt_bump_link_seq(nd);
				ntbt_claimed(nd, p, gen0[p] + 1, true);
				return 0;
			}
			if (p <= hi)	/* lost a takeover race: start over */
				break;
			if (!any) {
				dev_err(dev, "no free port: the owner%s of port %s alive\n",
					lo == hi ? "" : "s",
					lo == hi ? (lo ? "1 is" : "0 is") :
						   "0 and 1 are");
				return -EBUSY;
			}
			if (expired)
				break;
		}
	}
	dev_err(dev, "lost every takeover race; giving up\n");
	return -EBUSY;
}

static void ntbt_release_port(struct ntbt_dev *nd)
{
	int p = nd->port;

	/* never touch a port someone else has taken over */
	if (READ_ONCE(nd->lost) ||
	    READ_ONCE(*ntbt_reg32(nd, p, NTBT_P_GENERATION)) != nd->generation)
		return;
	WRITE_ONCE(*ntbt_reg32(nd, p, NTBT_P_LINK_ENABLED), 0);
	WRITE_ONCE(*ntbt_reg32(nd, p, NTBT_P_OWNER_KIND), NTBT_OWNER_NONE);
	/*
	 * The release store of state orders the two stores above before it:
	 * a claimer that wins state 0 -> 1 sees our owner_kind cleared.
	 */
	smp_store_release(ntbt_reg32(nd, p, NTBT_P_STATE), NTBT_STATE_FREE);
	ntbt_bump_link_seq(nd);
}

/* ------------------------------------------------------------------ */
/* Polling thread: doorbells, heartbeat, link                          */

/*
 * Heartbeats make each side judge the other on its own: the peer may still
 * see the link up after we took it down (its view of our heartbeat is fine),
 * and ntb_transport on both sides only re-handshakes after a link down that
 * both see, as a real link would give. So when we judge the peer gone, we
 * clear our link_enabled: a live peer sees "peer link disabled" and goes
 * down too. Its own judgment (ours is enabled) never bounces back, so this
 * cannot oscillate.
 *
 * The peer we judged gone was often only starved of CPU (TCG guests on a
 * busy host): a fixed-length bounce could pass while it does not run. So
 * the bounce lasts until the peer's heartbeat moved twice since it began
 * (the peer runs again), or the port changed hands, and at least
 * remote_timeout_ms: the peer's heartbeat comes from a timer, and its poll
 * loop, which is what reads our link_enabled, may lag behind its beats
 * (it runs ntb_transport's tasklet inline) but not by a whole timeout
 * without the peer judging us the same way.
 */
static void ntbt_bounce(struct ntbt_dev *nd)
{
	unsigned long flags;

	spin_lock_irqsave(&nd->lock, flags);
	if (nd->link_enabled && !nd->bouncing && ntbt_own_ok(nd)) {
		WRITE_ONCE(nd->bouncing, true);
		nd->bounces++;
		nd->bounce_gen = nd->peer_gen;
		WRITE_ONCE(*ntbt_reg32(nd, nd->port, NTBT_P_LINK_ENABLED), 0);
		ntbt_bump_link_seq(nd);
		/* after the bump (a full barrier): beats from here on count */
		nd->bounce_hb = READ_ONCE(*ntbt_reg32(nd, nd->peer,
						      NTBT_P_HEARTBEAT));
	}
	spin_unlock_irqrestore(&nd->lock, flags);
}

static void ntbt_bounce_end(struct ntbt_dev *nd, ktime_t now, u32 state,
			    u32 gen, u32 hb)
{
	unsigned long flags;

	if (!READ_ONCE(nd->bouncing) ||
	    ktime_ms_delta(now, READ_ONCE(nd->down_time)) <
		max_t(u32, NTBT_HOLD_DOWN_MS, nd->g.remote_timeout_ms))
		return;
	if (state == NTBT_STATE_CLAIMED && gen == nd->bounce_gen &&
	    hb - nd->bounce_hb < 2)
		return;
	spin_lock_irqsave(&nd->lock, flags);
	WRITE_ONCE(nd->bouncing, false);
	if (nd->link_enabled && ntbt_own_ok(nd)) {
		WRITE_ONCE(*ntbt_reg32(nd, nd->port, NTBT_P_LINK_ENABLED), 1);
		ntbt_bump_link_seq(nd);
	}
	spin_unlock_irqrestore(&nd->lock, flags);
}

static void ntbt_link_set(struct ntbt_dev *nd, bool up, const char *why,
			  bool bounce)
{
	if (up == nd->link_up)
		return;
	if (up && ktime_ms_delta(ktime_get(), READ_ONCE(nd->down_time)) <
		  NTBT_HOLD_DOWN_MS)
		return;
	if (!up) {
		WRITE_ONCE(nd->down_time, ktime_get());
		if (bounce)
			ntbt_bounce(nd);
	}
	WRITE_ONCE(nd->link_up, up);
	nd->link_changes++;
	if (up)
		dev_info(&nd->pdev->dev, "link up (port %d, peer generation %u)\n",
			 nd->port, nd->peer_gen);
	else
		dev_info(&nd->pdev->dev, "link down: %s\n", why);
	/* acquire: pairs with probe's release once ntb_dev is registered */
	if (smp_load_acquire(&nd->registered))
		ntb_link_event(&nd->ntb);
}

static void ntbt_poll_link(struct ntbt_dev *nd, ktime_t now)
{
	u32 state, kind, en, gen, hb;
	const char *why = NULL;
	bool bounce = false;
	bool bad;

	if (!nd->lost) {
		/* is the port still ours? */
		if (READ_ONCE(*ntbt_reg32(nd, nd->port, NTBT_P_GENERATION)) !=
			nd->generation ||
		    READ_ONCE(*ntbt_reg32(nd, nd->port, NTBT_P_STATE)) !=
			NTBT_STATE_CLAIMED ||
		    READ_ONCE(*ntbt_reg32(nd, nd->port, NTBT_P_OWNER_KIND)) !=
			NTBT_OWNER_REMOTE) {
			WRITE_ONCE(nd->lost, true);
			dev_err(&nd->pdev->dev,
				"port %d was taken over by another owner; this device is dead until reloaded\n",
				nd->port);
		}
	}
	if (nd->lost) {
		ntbt_link_set(nd, false, "port lost", false);
		return;
	}

	state = READ_ONCE(*ntbt_reg32(nd, nd->peer, NTBT_P_STATE));
	kind = READ_ONCE(*ntbt_reg32(nd, nd->peer, NTBT_P_OWNER_KIND));
	en = READ_ONCE(*ntbt_reg32(nd, nd->peer, NTBT_P_LINK_ENABLED));
	gen = READ_ONCE(*ntbt_reg32(nd, nd->peer, NTBT_P_GENERATION));
	hb = READ_ONCE(*ntbt_reg32(nd, nd->peer, NTBT_P_HEARTBEAT));

	/* garbage from the peer is counted once per episode, then ignored */
	bad = state > NTBT_STATE_CLAIMED || kind > NTBT_OWNER_REMOTE || en > 1;
	if (bad && !nd->peer_bad)
		atomic_long_inc(&nd->bad_peer_state);
	nd->peer_bad = bad;

	if (bad || state != NTBT_STATE_CLAIMED) {
		nd->peer_seen = false;
		why = bad ? "peer port holds invalid state" : "peer released";
	} else if (!nd->peer_seen || gen != nd->peer_gen) {
		/* a new owner: alive only once we see it beat */
		if (nd->peer_seen) {
			nd->peer_restarts++;
			dev_info(&nd->pdev->dev,
				 "peer restarted (generation %u -> %u)\n",
				 nd->peer_gen, gen);
		}
		nd->peer_seen = true;
		nd->peer_gen = gen;
		nd->peer_hb = hb;
		nd->peer_hb_time = now;
		nd->peer_beating = false;
		why = "peer restarted";
		bounce = true;
	} else if (hb != nd->peer_hb) {
		nd->peer_hb = hb;
		nd->peer_hb_time = now;
		nd->peer_beating = true;
	} else if (nd->peer_beating &&
		   ktime_ms_delta(now, nd->peer_hb_time) >=
			nd->g.remote_timeout_ms) {
		nd->peer_beating = false;
		nd->peer_timeouts++;
		bounce = true;
		dev_info(&nd->pdev->dev,
			 "peer heartbeat unchanged for %u ms: peer gone\n",
			 nd->g.remote_timeout_ms);
	}

	if (!why && !nd->peer_beating)
		why = "peer heartbeat stale";
	if (!why && en != 1)
		why = "peer link disabled";
	if (!why && !READ_ONCE(nd->link_enabled))
		why = "local link disabled";
	if (!why && READ_ONCE(nd->bouncing))
		why = "local link held down";
	ntbt_link_set(nd, !why, why, bounce);
	ntbt_bounce_end(nd, now, state, gen, hb);
}

/* returns true when there was doorbell activity */
static bool ntbt_poll_db(struct ntbt_dev *nd)
{
	bool fire, busy;
	u64 pending;
	u32 seq;

	if (nd->lost)
		return false;
	seq = READ_ONCE(*ntbt_reg32(nd, nd->port, NTBT_P_DB_SEQ));
	/*
	 * No doorbell crosses a link that is down. The peer may see the link
	 * up before we do and ring at once (ntb_perf sends a command that
	 * way): its bits stay pending and fire when our link comes up, as if
	 * they had arrived just then.
	 */
	if (!READ_ONCE(nd->link_up)) {
		busy = seq != nd->last_db_seq;
		nd->last_db_seq = seq;
		nd->last_pending = 0;
		return busy;
	}
	/*
	 * The ringer ORs db, then increments db_seq: reading db_seq first
	 * means the bits of every ring we count are visible below.
	 */
	smp_rmb();
	pending = READ_ONCE(*ntbt_reg64(nd, nd->port, NTBT_P_DB)) &
		  nd->g.db_valid & ~READ_ONCE(nd->db_mask);

	/*
	 * Fire like an interrupt would: for a new ring, or for bits that
	 * became pending (set, or unmasked). A bit a client leaves set does
	 * not fire over and over.
	 */
	fire = pending &&
	       (seq != nd->last_db_seq || (pending & ~nd->last_pending));
	nd->last_pending = pending;
	if (seq == nd->last_db_seq && !fire)
		return false;
	nd->last_db_seq = seq;
	/* acquire: pairs with probe's release once ntb_dev is registered */
	if (fire && smp_load_acquire(&nd->registered)) {
		nd->db_events++;
		/*
		 * ntb_transport schedules a tasklet from here: with bottom
		 * halves off, local_bh_enable() runs it at once on this CPU
		 * instead of waking ksoftirqd.
		 */
		local_bh_disable();
		ntb_db_event(&nd->ntb, 0);
		local_bh_enable();
	}
	return true;
}

static void ntbt_poll_sleep(struct ntbt_dev *nd, unsigned int us, bool idle)
{
	ktime_t exp = ktime_add_us(ktime_get(), us);

	if (idle)
		WRITE_ONCE(nd->idle_sleep, 1);
	/*
	 * set_current_state() is a full barrier: either ntbt_peer_db_set()
	 * sees idle_sleep and wakes us, or we see its rang here.
	 */
	set_current_state(TASK_INTERRUPTIBLE);
	if (!kthread_should_stop() && !(idle && READ_ONCE(nd->rang)))
		schedule_hrtimeout_range(&exp, (u64)us * NSEC_PER_USEC / 4,
					 HRTIMER_MODE_ABS);
	__set_current_state(TASK_RUNNING);
	if (idle)
		WRITE_ONCE(nd->idle_sleep, 0);
}

/*
 * The heartbeat, every heartbeat_ms / 2, from an hrtimer rather than from
 * the poll thread: the poll thread runs ntb_transport's receive tasklet
 * inline (see ntbt_poll_db()), and under TCG a burst of frames kept it
 * there for over a second, long enough for the peer to judge us gone.
 * A timer callback runs in hard interrupt context, ahead of softirqs.
 */
static enum hrtimer_restart ntbt_beat(struct hrtimer *t)
{
	struct ntbt_dev *nd = container_of(t, struct ntbt_dev, beat_timer);

	if (!READ_ONCE(nd->lost)) {
		/* nothing is ordered by the beat: any atomic would do */
		ntbt_inc32(ntbt_reg32(nd, nd->port, NTBT_P_HEARTBEAT));
		WRITE_ONCE(nd->own_beat, ktime_get());
	}
	hrtimer_forward_now(t, ms_to_ktime(max(nd->g.heartbeat_ms / 2, 1u)));
	return HRTIMER_RESTART;
}

static void ntbt_beat_start(struct ntbt_dev *nd)
{
	hrtimer_init(&nd->beat_timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	nd->beat_timer.function = ntbt_beat;
	hrtimer_start(&nd->beat_timer,
		      ms_to_ktime(max(nd->g.heartbeat_ms / 2, 1u)),
		      HRTIMER_MODE_REL);
}

static int ntbt_poll_thread(void *data)
{
	struct ntbt_dev *nd = data;
	unsigned int cap = nd->g.heartbeat_ms * (USEC_PER_MSEC / 4);
	ktime_t last_busy = ktime_get(), last_poll = last_busy;
	unsigned int period = 1;

	while (!kthread_should_stop()) {
		unsigned int fast = clamp(READ_ONCE(poll_us), 1u, cap);
		unsigned int slow = clamp(READ_ONCE(idle_us), fast, cap);
		ktime_t now = ktime_get();
		bool busy;

		nd->polls++;
		/* a long gap here is what the peer sees as a stale beat */
		if (ktime_ms_delta(now, last_poll) > nd->max_poll_gap_ms)
			WRITE_ONCE(nd->max_poll_gap_ms,
				   ktime_ms_delta(now, last_poll));
		last_poll = now;
		busy = ntbt_poll_db(nd);
		if (xchg(&nd->rang, 0))
			busy = true;
		ntbt_poll_link(nd, now);

		if (busy) {
			last_busy = now;
			period = fast;
		} else if (ktime_ms_delta(now, last_busy) >= NTBT_BUSY_MS) {
			period = min(max(period * 2, fast), slow);
		}
		WRITE_ONCE(nd->period_us, period);
		ntbt_poll_sleep(nd, period, period > fast);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* ntb_dev_ops                                                         */

static int ntbt_port_number(struct ntb_dev *ntb)
{
	return ntb_ndev(ntb)->port;
}

static int ntbt_peer_port_count(struct ntb_dev *ntb)
{
	return 1;
}

static int ntbt_peer_port_number(struct ntb_dev *ntb, int pidx)
{
	return pidx == 0 ? ntb_ndev(ntb)->peer : -EINVAL;
}

static int ntbt_peer_port_idx(struct ntb_dev *ntb, int port)
{
	return port == ntb_ndev(ntb)->peer ? 0 : -EINVAL;
}

static u64 ntbt_link_is_up(struct ntb_dev *ntb, enum ntb_speed *speed,
			   enum ntb_width *width)
{
	bool up = READ_ONCE(ntb_ndev(ntb)->link_up);

	/* nominal values: memory has no lanes */
	if (speed)
		*speed = up ? NTB_SPEED_GEN3 : NTB_SPEED_NONE;
	if (width)
		*width = up ? NTB_WIDTH_4 : NTB_WIDTH_NONE;
	return up ? BIT_ULL(0) : 0;
}

static int ntbt_link_enable(struct ntb_dev *ntb, enum ntb_speed max_speed,
			    enum ntb_width max_width)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	unsigned long flags;

	if (!ntbt_own_ok(nd))
		return -ENODEV;
	spin_lock_irqsave(&nd->lock, flags);
	/*
	 * Hold the link down as if it had just gone down: ntb_transport's
	 * probe raises a link event right after link_enable; seen while we
	 * are still down it queues a cleanup work that, if our "up" overtook
	 * it, would cancel the handshake work's retries for good.
	 */
	if (!nd->link_enabled)
		WRITE_ONCE(nd->down_time, ktime_get());
	WRITE_ONCE(nd->link_enabled, true);
	/* while bouncing, ntbt_bounce_end() sets the register */
	if (!nd->bouncing) {
		WRITE_ONCE(*ntbt_reg32(nd, nd->port, NTBT_P_LINK_ENABLED), 1);
		ntbt_bump_link_seq(nd);
	}
	spin_unlock_irqrestore(&nd->lock, flags);
	return 0;
}

static int ntbt_link_disable(struct ntb_dev *ntb)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	unsigned long flags;

	spin_lock_irqsave(&nd->lock, flags);
	WRITE_ONCE(nd->link_enabled, false);
	if (ntbt_own_ok(nd)) {
		WRITE_ONCE(*ntbt_reg32(nd, nd->port, NTBT_P_LINK_ENABLED), 0);
		ntbt_bump_link_seq(nd);
	}
	spin_unlock_irqrestore(&nd->lock, flags);
	return 0;
}

static int ntbt_mw_count(struct ntb_dev *ntb, int pidx)
{
	return pidx == 0 ? ntb_ndev(ntb)->g.mw_count : -EINVAL;
}

static int ntbt_mw_get_align(struct ntb_dev *ntb, int pidx, int widx,
			     resource_size_t *addr_align,
			     resource_size_t *size_align,
			     resource_size_t *size_max)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	if (pidx != 0 || widx < 0 || widx >= nd->g.mw_count)
		return -EINVAL;
	if (addr_align)
		*addr_align = nd->g.xlat_align;
	if (size_align)
		*size_align = nd->g.xlat_align;
	if (size_max)
		*size_max = nd->g.mw_size;
	return 0;
}

static int ntbt_mw_set_trans(struct ntb_dev *ntb, int pidx, int widx,
			     dma_addr_t addr, resource_size_t size)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	if (pidx != 0 || widx < 0 || widx >= nd->g.mw_count)
		return -EINVAL;
	if (addr != ntbt_win_bus(nd, nd->port, widx) ||
	    !IS_ALIGNED(size, nd->g.xlat_align) || size > nd->g.mw_size) {
		atomic_long_inc(&nd->refused_trans);
		dev_err_once(&nd->pdev->dev,
			     "mw_set_trans(%d, %pad, %pa) refused: inbound window %d is the buffer itself, at %#llx, size a multiple of %#llx up to %#llx (allocate it with dma_alloc on ntb_get_dma_dev())\n",
			     widx, &addr, &size, widx,
			     ntbt_win_bus(nd, nd->port, widx),
			     nd->g.xlat_align, nd->g.mw_size);
		return -EINVAL;
	}
	if (!ntbt_own_ok(nd))
		return -ENODEV;
	nd->xlat_size[widx] = size;
	WRITE_ONCE(*ntbt_xlat(nd, nd->port, widx), size);
	return 0;
}

static int ntbt_mw_clear_trans(struct ntb_dev *ntb, int pidx, int widx)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	if (pidx != 0 || widx < 0 || widx >= nd->g.mw_count)
		return -EINVAL;
	nd->xlat_size[widx] = 0;
	if (ntbt_own_ok(nd))
		WRITE_ONCE(*ntbt_xlat(nd, nd->port, widx), 0);
	return 0;
}

static int ntbt_peer_mw_count(struct ntb_dev *ntb)
{
	return ntb_ndev(ntb)->g.mw_count;
}

static int ntbt_peer_mw_get_addr(struct ntb_dev *ntb, int widx,
				 phys_addr_t *base, resource_size_t *size)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	if (widx < 0 || widx >= nd->g.mw_count)
		return -EINVAL;
	if (base)
		*base = ntbt_win_bus(nd, nd->peer, widx);
	if (size)
		*size = nd->g.mw_size;
	return 0;
}

static u64 ntbt_db_valid_mask(struct ntb_dev *ntb)
{
	return ntb_ndev(ntb)->g.db_valid;
}

static int ntbt_db_vector_count(struct ntb_dev *ntb)
{
	return 1;
}

static u64 ntbt_db_vector_mask(struct ntb_dev *ntb, int db_vector)
{
	return db_vector == 0 ? ntb_ndev(ntb)->g.db_valid : 0;
}

static u64 ntbt_db_read(struct ntb_dev *ntb)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	return READ_ONCE(*ntbt_reg64(nd, nd->port, NTBT_P_DB)) &
	       nd->g.db_valid;
}

static int ntbt_db_clear(struct ntb_dev *ntb, u64 db_bits)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	if (db_bits & ~nd->g.db_valid)
		return -EINVAL;
	if (ntbt_own_ok(nd))
		ntbt_andnot64(ntbt_reg64(nd, nd->port, NTBT_P_DB), db_bits);
	return 0;
}

static u64 ntbt_db_read_mask(struct ntb_dev *ntb)
{
	return READ_ONCE(ntb_ndev(ntb)->db_mask);
}

static int ntbt_db_update_mask(struct ntbt_dev *nd, u64 set, u64 clear)
{
	unsigned long flags;
	u64 mask;

	if ((set | clear) & ~nd->g.db_valid)
		return -EINVAL;
	spin_lock_irqsave(&nd->lock, flags);
	mask = (nd->db_mask | set) & ~clear;
	WRITE_ONCE(nd->db_mask, mask);
	/* the register is informational for the peer; ours is the copy */
	if (ntbt_own_ok(nd))
		WRITE_ONCE(*ntbt_reg64(nd, nd->port, NTBT_P_DB_MASK), mask);
	spin_unlock_irqrestore(&nd->lock, flags);
	return 0;
}

static int ntbt_db_set_mask(struct ntb_dev *ntb, u64 db_bits)
{
	return ntbt_db_update_mask(ntb_ndev(ntb), db_bits, 0);
}

static int ntbt_db_clear_mask(struct ntb_dev *ntb, u64 db_bits)
{
	return ntbt_db_update_mask(ntb_ndev(ntb), 0, db_bits);
}

/* any context: ntb_transport rings from softirq */
static int ntbt_peer_db_set(struct ntb_dev *ntb, u64 db_bits)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	db_bits &= nd->g.db_valid;
	if (!db_bits)
		return 0;
	WRITE_ONCE(nd->rang, 1);
	/*
	 * OR the bits, then count the ring; both fully ordered, so a peer
	 * that sees the new db_seq sees the bits. No futex: a remote owner
	 * wakes nobody, and db_sleepers is not ours to touch.
	 */
	ntbt_or64(ntbt_reg64(nd, nd->peer, NTBT_P_DB), db_bits);
	ntbt_inc32(ntbt_reg32(nd, nd->peer, NTBT_P_DB_SEQ));
	/* a reply is likely: get our poller out of a long sleep */
	if (READ_ONCE(nd->idle_sleep) && nd->thread)
		wake_up_process(nd->thread);
	return 0;
}

static int ntbt_spad_count(struct ntb_dev *ntb)
{
	return ntb_ndev(ntb)->g.spad_count;
}

static u32 ntbt_spad_read(struct ntb_dev *ntb, int sidx)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	if (sidx < 0 || sidx >= nd->g.spad_count)
		return 0;
	return READ_ONCE(*ntbt_spad(nd, nd->port, sidx));
}

static int ntbt_spad_write(struct ntb_dev *ntb, int sidx, u32 val)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	if (sidx < 0 || sidx >= nd->g.spad_count)
		return -EINVAL;
	if (!ntbt_own_ok(nd))
		return -ENODEV;
	WRITE_ONCE(*ntbt_spad(nd, nd->port, sidx), val);
	return 0;
}

static u32 ntbt_peer_spad_read(struct ntb_dev *ntb, int pidx, int sidx)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	if (pidx != 0 || sidx < 0 || sidx >= nd->g.spad_count)
		return 0;
	return READ_ONCE(*ntbt_spad(nd, nd->peer, sidx));
}

static int ntbt_peer_spad_write(struct ntb_dev *ntb, int pidx, int sidx,
				u32 val)
{
	struct ntbt_dev *nd = ntb_ndev(ntb);

	if (pidx != 0 || sidx < 0 || sidx >= nd->g.spad_count)
		return -EINVAL;
	WRITE_ONCE(*ntbt_spad(nd, nd->peer, sidx), val);
	return 0;
}

static struct device *ntbt_get_dma_dev(struct ntb_dev *ntb)
{
	return &ntb_ndev(ntb)->dma->dev;
}

static const struct ntb_dev_ops ntbt_ops = {
	.port_number		= ntbt_port_number,
	.peer_port_count	= ntbt_peer_port_count,
	.peer_port_number	= ntbt_peer_port_number,
	.peer_port_idx		= ntbt_peer_port_idx,
	.link_is_up		= ntbt_link_is_up,
	.link_enable		= ntbt_link_enable,
	.link_disable		= ntbt_link_disable,
	.mw_count		= ntbt_mw_count,
	.mw_get_align		= ntbt_mw_get_align,
	.mw_set_trans		= ntbt_mw_set_trans,
	.mw_clear_trans		= ntbt_mw_clear_trans,
	.peer_mw_count		= ntbt_peer_mw_count,
	.peer_mw_get_addr	= ntbt_peer_mw_get_addr,
	.db_valid_mask		= ntbt_db_valid_mask,
	.db_vector_count	= ntbt_db_vector_count,
	.db_vector_mask		= ntbt_db_vector_mask,
	.db_read		= ntbt_db_read,
	.db_clear		= ntbt_db_clear,
	.db_read_mask		= ntbt_db_read_mask,
	.db_set_mask		= ntbt_db_set_mask,
	.db_clear_mask		= ntbt_db_clear_mask,
	.peer_db_set		= ntbt_peer_db_set,
	.spad_count		= ntbt_spad_count,
	.spad_read		= ntbt_spad_read,
	.spad_write		= ntbt_spad_write,
	.peer_spad_read		= ntbt_peer_spad_read,
	.peer_spad_write	= ntbt_peer_spad_write,
	.get_dma_dev		= ntbt_get_dma_dev,
};

/* ------------------------------------------------------------------ */
/* DMA ops: the receive buffer is the inbound window                   */

static struct ntbt_dev *ntbt_dma_owner(struct device *dev)
{
	if (dev_is_pci(dev))
		return pci_get_drvdata(to_pci_dev(dev));
	return container_of(dev, struct ntbt_dma_dev, dev)->nd;
}

static void *ntbt_dma_alloc(struct device *dev, size_t size,
			    dma_addr_t *dma_handle, gfp_t gfp,
			    unsigned long attrs)
{
	struct ntbt_dev *nd = ntbt_dma_owner(dev);
	unsigned long flags;
	unsigned int n;
	void *va;

	/* every window is mw_size: the lowest free one fits or none does */
	if (!nd || !size || size > nd->g.mw_size)
		return NULL;
	/*
	 * ntb_transport (on the child device) sets windows up in order 0, 1,
	 * ...: the lowest free one is the one it will translate. ntb_perf (on
	 * the PCI device) translates window <peer's port>: try that first.
	 */
	n = dev_is_pci(dev) ? nd->peer : 0;
	spin_lock_irqsave(&nd->lock, flags);
	if (n >= nd->g.mw_count || test_bit(n, &nd->win_busy))
		n = find_first_zero_bit(&nd->win_busy, nd->g.mw_count);
	if (n < nd->g.mw_count)
		__set_bit(n, &nd->win_busy);
	spin_unlock_irqrestore(&nd->lock, flags);
	if (n >= nd->g.mw_count) {
		dev_dbg(dev, "dma alloc of %zu: all %u windows in use\n",
			size, nd->g.mw_count);
		return NULL;
	}
	va = nd->win + (size_t)n * nd->g.mw_size;
	memset(va, 0, size);
	*dma_handle = ntbt_win_bus(nd, nd->port, n);
	return va;
}

static void ntbt_dma_free(struct device *dev, size_t size, void *vaddr,
			  dma_addr_t dma_handle, unsigned long attrs)
{
	struct ntbt_dev *nd = ntbt_dma_owner(dev);
	unsigned long flags;
	u64 off;
	u64 n;

	if (!nd)
		return;
	off = (u64)dma_handle - ntbt_win_bus(nd, nd->port, 0);
	n = off / nd->g.mw_size;
	if (dma_handle < ntbt_win_bus(nd, nd->port, 0) ||
	    off % nd->g.mw_size || n >= nd->g.mw_count ||
	    vaddr != nd->win + n * nd->g.mw_size) {
		atomic_long_inc(&nd->bad_dma_free);
		dev_err(dev, "dma free of %pad/%p: not one of our windows\n",
			&dma_handle, vaddr);
		return;
	}
	spin_lock_irqsave(&nd->lock, flags);
	if (!__test_and_clear_bit(n, &nd->win_busy))
		atomic_long_inc(&nd->bad_dma_free);
	spin_unlock_irqrestore(&nd->lock, flags);
}

/*
 * dma_mmap_coherent() of a buffer from ntbt_dma_alloc() (ntb_user maps its
 * inbound buffers so): the buffer is window n of BAR 2, so map those BAR
 * pages. vm_page_prot stays as it comes, write-back for a shared mapping,
 * the type nd->win has: PAT refuses a second mapping of another type, and
 * the memory behind the BAR is plain host RAM. vm_pgoff is the page offset
 * into the buffer, as for dma_direct_mmap().
 */
static int ntbt_dma_mmap(struct device *dev, struct vm_area_struct *vma,
			 void *cpu_addr, dma_addr_t dma_handle, size_t size,
			 unsigned long attrs)
{
	struct ntbt_dev *nd = ntbt_dma_owner(dev);
	unsigned long pages = vma_pages(vma);
	unsigned long count;
	u64 off;
	u64 n;

	if (!nd)
		return -ENXIO;
	off = (u64)dma_handle - ntbt_win_bus(nd, nd->port, 0);
	n = off / nd->g.mw_size;
	if (dma_handle < ntbt_win_bus(nd, nd->port, 0) ||
	    off % nd->g.mw_size || n >= nd->g.mw_count ||
	    cpu_addr != nd->win + n * nd->g.mw_size ||
	    !test_bit(n, &nd->win_busy) || !size || size > nd->g.mw_size)
		return -ENXIO;
	/* mw_size is a power of two >= 4 KiB: the pages stay in window n */
	count = PAGE_ALIGN(size) >> PAGE_SHIFT;
	if (vma->vm_pgoff >= count || pages > count - vma->vm_pgoff)
		return -ENXIO;
	return io_remap_pfn_range(vma, vma->vm_start,
				  PHYS_PFN(dma_handle) + vma->vm_pgoff,
				  pages << PAGE_SHIFT, vma->vm_page_prot);
}

/* Nobody streams through this device (see the header); fail, never oops. */
static dma_addr_t ntbt_dma_map_page(struct device *dev, struct page *page,
				    unsigned long offset, size_t size,
				    enum dma_data_direction dir,
				    unsigned long attrs)
{
	return DMA_MAPPING_ERROR;
}

static int ntbt_dma_map_sg(struct device *dev, struct scatterlist *sg,
			   int nents, enum dma_data_direction dir,
			   unsigned long attrs)
{
	return -EINVAL;
}

static dma_addr_t ntbt_dma_map_resource(struct device *dev,
					phys_addr_t phys_addr, size_t size,
					enum dma_data_direction dir,
					unsigned long attrs)
{
	return DMA_MAPPING_ERROR;
}

static const struct dma_map_ops ntbt_dma_ops = {
	.alloc		= ntbt_dma_alloc,
	.free		= ntbt_dma_free,
	.mmap		= ntbt_dma_mmap,
	.map_page	= ntbt_dma_map_page,
	.map_sg		= ntbt_dma_map_sg,
	.map_resource	= ntbt_dma_map_resource,
};

static void ntbt_dma_dev_release(struct device *dev)
{
	kfree(container_of(dev, struct ntbt_dma_dev, dev));
}

static int ntbt_dma_dev_create(struct ntbt_dev *nd)
{
	struct ntbt_dma_dev *dd;
	int rc;

	dd = kzalloc(sizeof(*dd), GFP_KERNEL);
	if (!dd)
		return -ENOMEM;
	dd->nd = nd;
	device_initialize(&dd->dev);
	dd->dev.parent = &nd->pdev->dev;
	dd->dev.release = ntbt_dma_dev_release;
	set_dma_ops(&dd->dev, &ntbt_dma_ops);
	rc = dma_coerce_mask_and_coherent(&dd->dev, DMA_BIT_MASK(64));
	if (!rc)
		rc = dev_set_name(&dd->dev, "ntbt_dma");
	if (!rc)
		rc = device_add(&dd->dev);
	if (rc) {
		put_device(&dd->dev);
		return rc;
	}
	nd->dma = dd;
	return 0;
}

static void ntbt_dma_dev_destroy(struct ntbt_dev *nd)
{
	if (!nd->dma)
		return;
	if (nd->win_busy)
		dev_warn(&nd->pdev->dev,
			 "windows %#lx still handed out at removal\n",
			 nd->win_busy);
	nd->dma->nd = NULL;
	device_unregister(&nd->dma->dev);
	nd->dma = NULL;
}

/* ------------------------------------------------------------------ */
/* debugfs                                                             */

static int ntbt_info_show(struct seq_file *s, void *unused)
{
	struct ntbt_dev *nd = s->private;
	ktime_t now = ktime_get();
	unsigned int i;

	seq_printf(s, "port %d\npeer %d\ngeneration %u\ntook_over %d\n",
		   nd->port, nd->peer, nd->generation, nd->took_over);
	seq_printf(s, "bar_phys %pa\nbar_high %d\nlost %d\n",
		   &nd->bar_phys, nd->bar_high, READ_ONCE(nd->lost));
	seq_printf(s, "link_enabled %d\nbouncing %d\nlink_up %d\n",
		   READ_ONCE(nd->link_enabled), READ_ONCE(nd->bouncing),
		   READ_ONCE(nd->link_up));
	seq_printf(s, "own_heartbeat %u\nown_beat_age_ms %lld\n",
		   READ_ONCE(*ntbt_reg32(nd, nd->port, NTBT_P_HEARTBEAT)),
		   ktime_ms_delta(now, READ_ONCE(nd->own_beat)));
	seq_printf(s, "peer_state %u\npeer_generation %u\npeer_alive %d\n",
		   READ_ONCE(*ntbt_reg32(nd, nd->peer, NTBT_P_STATE)),
		   READ_ONCE(nd->peer_gen), READ_ONCE(nd->peer_beating));
	seq_printf(s, "peer_heartbeat %u\npeer_beat_age_ms %lld\n",
		   READ_ONCE(nd->peer_hb),
		   READ_ONCE(nd->peer_seen) ?
		   ktime_ms_delta(now, READ_ONCE(nd->peer_hb_time)) : -1LL);
	seq_printf(s, "period_us %u\npolls %lu\nmax_poll_gap_ms %lld\n",
		   READ_ONCE(nd->period_us), READ_ONCE(nd->polls),
		   READ_ONCE(nd->max_poll_gap_ms));
	seq_printf(s, "db_events %lu\n", READ_ONCE(nd->db_events));
	seq_printf(s, "link_changes %lu\npeer_restarts %lu\npeer_timeouts %lu\n",
		   READ_ONCE(nd->link_changes), READ_ONCE(nd->peer_restarts),
		   READ_ONCE(nd->peer_timeouts));
	seq_printf(s, "bounces %lu\n", READ_ONCE(nd->bounces));
	seq_printf(s, "bad_peer_state %ld\nrefused_trans %ld\nbad_dma_free %ld\n",
		   atomic_long_read(&nd->bad_peer_state),
		   atomic_long_read(&nd->refused_trans),
		   atomic_long_read(&nd->bad_dma_free));
	seq_printf(s, "db_mask %#llx\nwindows_busy %#lx\n",
		   READ_ONCE(nd->db_mask), READ_ONCE(nd->win_busy));
	for (i = 0; i < nd->g.mw_count; i++)
		seq_printf(s, "xlat_size%u %#llx\n", i,
			   READ_ONCE(nd->xlat_size[i]));
	seq_printf(s, "mw_count %u\nmw_size %#llx\nxlat_align %#llx\n",
		   nd->g.mw_count, nd->g.mw_size, nd->g.xlat_align);
	seq_printf(s, "spad_count %u\ndb_valid_mask %#llx\n",
		   nd->g.spad_count, nd->g.db_valid);
	seq_printf(s, "heartbeat_ms %u\nremote_timeout_ms %u\n",
		   nd->g.heartbeat_ms, nd->g.remote_timeout_ms);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(ntbt_info);

/* ------------------------------------------------------------------ */
/* PCI                                                                 */

/* read the magic at the BAR's current place, waiting up to 1 s for it */
static int ntbt_peek_magic(struct pci_dev *pdev)
{
	void __iomem *p;
	u64 magic = 0;
	int i;

	p = pci_iomap_range(pdev, NTBT_BAR, 0, 8);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < 100; i++) {
		magic = readq(p);
		if (magic)
			break;
		usleep_range(10000, 11000);
	}
	pci_iounmap(pdev, p);
	if (!memcmp(&magic, NTBT_MAGIC_V2, 8) ||
	    !memcmp(&magic, NTBT_MAGIC_V1, 8))
		return 0;
	dev_err(&pdev->dev, "BAR 2 is not an ntbt shm device (magic %8phN); leaving it alone\n",
		&magic);
	return -ENODEV;
}

/*
 * Move a 64-bit BAR 2 out of the 32-bit hole (MTRR uncached) above 4 GiB.
 * On failure the old placement is restored; either way the device works.
 */
static void ntbt_move_bar(struct pci_dev *pdev)
{
	struct resource *res = &pdev->resource[NTBT_BAR];
	resource_size_t old_start = res->start, old_end = res->end;
	unsigned long old_flags = res->flags;
	u16 cmd;
	int rc;

	if (!move_bar || !(res->flags & IORESOURCE_MEM_64) ||
	    res->start >= SZ_4G)
		return;

	/* no decoding while the BAR changes place */
	pci_read_config_word(pdev, PCI_COMMAND, &cmd);
	pci_write_config_word(pdev, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
	pci_release_resource(pdev, NTBT_BAR);
	rc = pci_assign_resource(pdev, NTBT_BAR);
	if (rc) {
		res->start = old_start;
		res->end = old_end;
		res->flags = old_flags;
		if (pci_claim_resource(pdev, NTBT_BAR))
			dev_err(&pdev->dev, "BAR 2 could not be restored\n");
		dev_warn(&pdev->dev, "could not move BAR 2 above 4 GiB (%d): its WB mapping will be UC- under the MTRRs\n",
			 rc);
	} else if (res->start < SZ_4G) {
		dev_warn(&pdev->dev, "BAR 2 re-assigned at %pR, still below 4 GiB: its WB mapping may be UC- under the MTRRs\n",
			 res);
	} else {
		dev_info(&pdev->dev, "BAR 2 moved above 4 GiB: %pR\n", res);
	}
	pci_write_config_word(pdev, PCI_COMMAND, cmd);
}

static int ntbt_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	resource_size_t bar_len;
	struct ntbt_dev *nd;
	int rc;

	if (port < -1 || port > 1) {
		dev_err(dev, "port=%d: must be -1, 0 or 1\n", port);
		return -EINVAL;
	}
	if (!(pci_resource_flags(pdev, NTBT_BAR) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, NTBT_BAR) < NTBT_HDR_BYTES) {
		dev_err(dev, "BAR 2 is not a memory BAR of at least %#x bytes: not an ntbt device\n",
			NTBT_HDR_BYTES);
		return -ENODEV;
	}

	nd = kzalloc(sizeof(*nd), GFP_KERNEL);
	if (!nd)
		return -ENOMEM;
	nd->pdev = pdev;
	spin_lock_init(&nd->lock);
	atomic_long_set(&nd->bad_peer_state, 0);
	atomic_long_set(&nd->refused_trans, 0);
	atomic_long_set(&nd->bad_dma_free, 0);
	pci_set_drvdata(pdev, nd);

	rc = pci_enable_device(pdev);
	if (rc)
		goto err_free;
	rc = ntbt_peek_magic(pdev);
	if (rc)
		goto err_disable;
	ntbt_move_bar(pdev);
	rc = pci_request_region(pdev, NTBT_BAR, DRV_NAME);
	if (rc)
		goto err_disable;

	nd->bar_phys = pci_resource_start(pdev, NTBT_BAR);
	bar_len = pci_resource_len(pdev, NTBT_BAR);
	nd->bar_high = nd->bar_phys >= SZ_4G;
	nd->regs = memremap(nd->bar_phys, NTBT_HDR_BYTES, MEMREMAP_WB);
	if (!nd->regs) {
		dev_err(dev, "cannot map the register pages write-back\n");
		rc = -ENOMEM;
		goto err_region;
	}
	rc = ntbt_check_header(nd, bar_len);
	if (rc)
		goto err_unmap_regs;

	rc = ntbt_claim(nd);
	if (rc)
		goto err_unmap_regs;
	dev_info(dev, "claimed port %d as remote owner (generation %u%s); BAR 2 at %pa, %llu MiB, %s; %u windows of %#llx\n",
		 nd->port, nd->generation, nd->took_over ? ", takeover" : "",
		 &nd->bar_phys, (u64)bar_len >> 20,
		 nd->bar_high ? "write-back" :
		 "below 4 GiB (WB may be UC- under the MTRRs)",
		 nd->g.mw_count, nd->g.mw_size);

	/* beat from now on: probe may take longer than the peer's timeout */
	ntbt_beat_start(nd);
	nd->thread = kthread_run(ntbt_poll_thread, nd, "ntbt/%s",
				 pci_name(pdev));
	if (IS_ERR(nd->thread)) {
		rc = PTR_ERR(nd->thread);
		nd->thread = NULL;
		goto err_beat;
	}

	/* only this port's windows: the peer's get ioremap_wc()ed by clients */
	nd->win = memremap(ntbt_win_bus(nd, nd->port, 0),
			   nd->g.mw_count * nd->g.mw_size, MEMREMAP_WB);
	if (!nd->win) {
		dev_err(dev, "cannot map port %d's windows write-back\n",
			nd->port);
		rc = -ENOMEM;
		goto err_thread;
	}
	rc = ntbt_dma_dev_create(nd);
	if (rc)
		goto err_unmap_win;
	if (dma_on_pci) {
		nd->pci_old_dma_ops = get_dma_ops(dev);
		set_dma_ops(dev, &ntbt_dma_ops);
		nd->pci_dma_set = true;
	}

	nd->ntb.pdev = pdev;
	nd->ntb.topo = nd->port ? NTB_TOPO_B2B_DSD : NTB_TOPO_B2B_USD;
	nd->ntb.ops = &ntbt_ops;
	rc = ntb_register_device(&nd->ntb);
	if (rc) {
		dev_err(dev, "ntb_register_device: %d\n", rc);
		goto err_dma;
	}
	/* pairs with the acquire in the poll thread before any event */
	smp_store_release(&nd->registered, true);

	nd->dbgfs = debugfs_create_dir(pci_name(pdev), ntbt_dbgfs_root);
	debugfs_create_file("info", 0444, nd->dbgfs, nd, &ntbt_info_fops);
	return 0;

err_dma:
	if (nd->pci_dma_set)
		set_dma_ops(dev, nd->pci_old_dma_ops);
	ntbt_dma_dev_destroy(nd);
err_unmap_win:
	memunmap(nd->win);
err_thread:
	kthread_stop(nd->thread);
err_beat:
	hrtimer_cancel(&nd->beat_timer);
	ntbt_release_port(nd);
err_unmap_regs:
	memunmap(nd->regs);
err_region:
	pci_release_region(pdev, NTBT_BAR);
err_disable:
	pci_disable_device(pdev);
err_free:
	pci_set_drvdata(pdev, NULL);
	kfree(nd);
	return rc;
}

static void ntbt_remove(struct pci_dev *pdev)
{
	struct ntbt_dev *nd = pci_get_drvdata(pdev);

	debugfs_remove_recursive(nd->dbgfs);
	/* link down first, so the peer starts tearing down at once */
	ntbt_link_disable(&nd->ntb);
	/* no more events; clients free their windows as they go */
	smp_store_release(&nd->registered, false);
	ntb_unregister_device(&nd->ntb);

	kthread_stop(nd->thread);
	nd->thread = NULL;
	hrtimer_cancel(&nd->beat_timer);
	ntbt_release_port(nd);
	dev_info(&pdev->dev, "released port %d (generation %u)\n",
		 nd->port, nd->generation);

	if (nd->pci_dma_set)
		set_dma_ops(&pdev->dev, nd->pci_old_dma_ops);
	ntbt_dma_dev_destroy(nd);
	memunmap(nd->win);
	memunmap(nd->regs);
	pci_release_region(pdev, NTBT_BAR);
	pci_disable_device(pdev);
	pci_set_drvdata(pdev, NULL);
	kfree(nd);
}

static const struct pci_device_id ntbt_pci_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110) },	/* ivshmem */
	{ }
};
MODULE_DEVICE_TABLE(pci, ntbt_pci_ids);

static struct pci_driver ntbt_pci_driver = {
	.name		= DRV_NAME,
	.id_table	= ntbt_pci_ids,
	.probe		= ntbt_probe,
	.remove		= ntbt_remove,
};

static int __init ntbt_init(void)
{
	int rc;

	ntbt_dbgfs_root = debugfs_create_dir(DRV_NAME, NULL);
	rc = pci_register_driver(&ntbt_pci_driver);
	if (rc)
		debugfs_remove_recursive(ntbt_dbgfs_root);
	return rc;
}
module_init(ntbt_init);

static void __exit ntbt_exit(void)
{
	pci_unregister_driver(&ntbt_pci_driver);
	debugfs_remove_recursive(ntbt_dbgfs_root);
}
module_exit(ntbt_exit);

MODULE_DESCRIPTION("NTB over the ntbt shm device (format 2) in QEMU ivshmem-plain");
MODULE_LICENSE("Dual BSD/GPL");
MODULE_AUTHOR("the ntbt project");
