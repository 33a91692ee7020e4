// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * ntb_user - any Linux NTB device, handed to one process at a time.
 *
 * An NTB client (like ntb_transport or ntb_tool) that makes a character
 * device /dev/ntbt-userN for every NTB device it is bound to, so that a
 * userspace transport (ntbt's "kdev" device) can drive the bridge itself:
 * map the outbound windows, set up inbound buffers, ring and wait for
 * doorbells, use the scratchpads and the link. The interface, every ioctl
 * and mmap region, is ../../include/ntbt/ntb_user.h; that header's comments
 * are the contract and this file follows them.
 *
 * Binding
 *   The NTB bus has no match function: it offers every NTB device to every
 *   client driver, and the first client that probes it keeps it. So with
 *   ntb_transport (or ntb_tool, ntb_perf, ntb_pingpong) loaded first, this
 *   module gets nothing. The client drivers are named after their modules
 *   (ntb_register_client() uses KBUILD_MODNAME), the devices after their
 *   PCI function (ls /sys/bus/ntb/devices). To move a device over:
 *     echo 0000:00:04.0 > /sys/bus/ntb/drivers/ntb_transport/unbind
 *     echo 0000:00:04.0 > /sys/bus/ntb/drivers/ntb_user/bind
 *   and back the same way (unload ntb_netdev first: unbinding
 *   ntb_transport frees the queues it uses). The attribute
 *   /sys/class/ntbt_user/ntbt-userN/ntb names the NTB device of
 *   /dev/ntbt-userN.
 *
 * Sessions
 *   One opener at a time (a second open() gets EBUSY). Everything the
 *   session sets up is undone on its last close, which the kernel runs
 *   only after the last mapping of the file is gone: translations cleared
 *   and their buffers freed, the link disabled, the doorbell bits it
 *   masked unmasked, the soft state (status page, counters) reset.
 *
 * Doorbells and the status page
 *   db_event reads the hardware doorbell, acknowledges those bits there at
 *   once (ntb_db_clear) and ORs them into the soft doorbell, which keeps
 *   them until NTBT_USER_DB_CLEAR: level semantics for userspace, while the
 *   hardware is free to latch the next ring. DB_CLEAR only touches the soft
 *   bits: clearing the hardware too could eat a ring that arrived after the
 *   last event. The soft state is mirrored to one read-only page that
 *   userspace maps (struct ntbt_user_status).
 *
 * Inbound windows
 *   NTBT_USER_MW_SET allocates the buffer as ntb_transport does
 *   (dma_alloc_coherent on ntb_get_dma_dev(), over-allocated and aligned
 *   inside when the address is not addr_align aligned) and maps it with
 *   dma_mmap_coherent(). MW_CLEAR refuses (EBUSY) while a mapping of the
 *   buffer exists: the VMAs are counted through vm_operations open/close.
 *   Outbound windows are mapped write-combined, as ntb_transport's
 *   ioremap_wc() maps them.
 *
 * Removal (rmmod of the hardware driver, or unbind) while the file is open
 *   The device is marked gone, waiters wake, every later call fails with
 *   ENODEV, and every user mapping is zapped (a later access gets SIGBUS)
 *   before the buffers are freed and the ntb_dev is let go. The zap works
 *   on the file's address_space, but mmap_region() links a new VMA into it
 *   only after our mmap handler returned: so removal first takes and drops
 *   the mmap_lock of every mm that has mapped the file (recorded by the
 *   mmap handler), which waits out any mmap() in flight. The per-device
 *   structure lives on, refcounted by its struct device, until the last
 *   file reference is gone.
 *
 * Locks (outermost first)
 *   mmap_lock (of the caller, in mmap and the vm_operations)
 *   ud->lock, a mutex: session, windows, gone; never held while touching
 *     user memory (copy_{from,to}_user fault and take mmap_lock).
 *   ntb->ctx_lock (the NTB core's, around our event callbacks)
 *   ud->slock, a spinlock taken with interrupts off: the soft state and the
 *     status page, shared with the event callbacks (any context).
 */

#include <linux/atomic.h>
#include <linux/cdev.h>
#include <linux/compat.h>
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/ntb.h>
#include <linux/overflow.h>
#include <linux/poll.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>

#include <ntbt/ntb_user.h>

#define NTBU_MAX_DEVS		64
#define NTBU_CLASS		"ntbt_user"

/* mmap offsets: region r is [r << 40, (r + 1) << 40) */
#define NTBU_RGN_PAGES_SHIFT	(NTBT_USER_MMAP_SHIFT - PAGE_SHIFT)
#define NTBU_RGN_STATUS		(NTBT_USER_MMAP_STATUS >> NTBT_USER_MMAP_SHIFT)
#define NTBU_RGN_OUT		(NTBT_USER_MMAP_OUT(0) >> NTBT_USER_MMAP_SHIFT)
#define NTBU_RGN_IN		(NTBT_USER_MMAP_IN(0) >> NTBT_USER_MMAP_SHIFT)

/* An inbound buffer: set through NTBT_USER_MW_SET. */
struct ntbu_inbuf {
	struct device *dma_dev;		/* that allocated it */
	void *alloc_va;			/* NULL while none is set */
	dma_addr_t alloc_dma;
	size_t alloc_size;
	dma_addr_t dma;			/* translated: alloc_dma aligned up */
	size_t size;			/* translated size */
	atomic_t maps;			/* VMAs mapping it, see ntbu_vm_open */
};

/* An mm that has mapped the file (see "Removal" above). */
struct ntbu_mm {
	struct list_head node;
	struct mm_struct *mm;		/* mmgrab()bed */
};

struct ntbu_dev {
	struct device dev;		/* its refcount is this struct's */
	struct cdev cdev;
	struct ntb_dev *ntb;		/* touched only while !gone */
	int minor;
	char name[32];			/* dev_name(&ntb->dev) */
	char driver[32];		/* the hardware driver's name */
	u64 db_valid;

	/* protects everything up to slock; see the header comment */
	struct mutex lock;
	bool open;
	bool gone;			/* written under lock and slock */
	bool ntb_released;		/* remove let the ntb_dev go; under lock */
	struct file *file;		/* the open file, while open */
	struct list_head mms;		/* of struct ntbu_mm */
	struct ntbu_inbuf in[NTBT_USER_MAX_MW];

	/*
	 * Protects the soft state below and the status page; taken from
	 * the NTB core's event callbacks, which may run in hard interrupt
	 * context (ntb_hw_intel), so always with interrupts off.
	 */
	spinlock_t slock;
	u64 db;
	u64 db_mask;
	u32 link_up;
	u32 link_seq;
	u32 db_seq;
	u32 kick_seq;
	u32 speed;
	u32 width;
	u64 db_events;
	u64 link_events;
	u32 read_link_seq;		/* link_seq at the file's last read() */
	struct ntbt_user_status *st;	/* vmalloc_user(): the status page */

	wait_queue_head_t wq;		/* WAIT, read, poll */
};

static struct class *ntbu_class;
static dev_t ntbu_devt;
static DEFINE_IDA(ntbu_ida);

/* ------------------------------------------------------------------ */
/* Soft state                                                          */

/*
 * Mirror the soft state to the status page. Caller holds slock, which
 * serializes the writers; userspace reads each field with one load, so
 * every store is a single WRITE_ONCE of the field's width.
 */
static void ntbu_publish(struct ntbu_dev *ud)
{
	struct ntbt_user_status *st = ud->st;

	WRITE_ONCE(st->db_mask, ud->db_mask);
	WRITE_ONCE(st->link_up, ud->link_up);
	WRITE_ONCE(st->speed, ud->speed);
	WRITE_ONCE(st->width, ud->width);
	WRITE_ONCE(st->db_events, ud->db_events);
	WRITE_ONCE(st->link_events, ud->link_events);
	WRITE_ONCE(st->kick_seq, ud->kick_seq);
	/*
	 * Release: the bits reach the page only after the ntb_db_read() that
	 * found them (program order before this store), and cumulatively
	 * after the peer's window writes that read observed; a reader's
	 * acquire load of db pairs with it (see the uapi header).
	 */
	smp_store_release(&st->db, ud->db);
	/* release: a reader that sees a new db_seq sees the db bits above */
	smp_store_release(&st->db_seq, ud->db_seq);
	/* release: one that sees a new link_seq sees link_up, speed, width */
	smp_store_release(&st->link_seq, ud->link_seq);
}

/* Read the link into the soft state; caller holds slock. */
static void ntbu_read_link(struct ntbu_dev *ud)
{
	enum ntb_speed speed = NTB_SPEED_NONE;
	enum ntb_width width = NTB_WIDTH_NONE;
	bool up;

	/* bit 0: the link to peer index 0, the only peer we serve */
	up = ntb_link_is_up(ud->ntb, &speed, &width) & BIT_ULL(0);
	ud->link_up = up;
	ud->speed = up ? (u32)speed : 0;
	ud->width = up ? (u32)width : 0;
}

/*
 * Move the doorbell bits pending in the hardware into the soft doorbell.
 * Any context (the db_event callback, or an ioctl under ud->lock).
 */
static void ntbu_take_db(struct ntbu_dev *ud, bool event)
{
	unsigned long flags;
	u64 bits;

	bits = ntb_db_read(ud->ntb) & ud->db_valid;
	/*
	 * Acknowledge only what we read: a bit the peer sets after the read
	 * stays pending in the hardware and raises the next event.
	 */
	if (bits)
		ntb_db_clear(ud->ntb, bits);
	spin_lock_irqsave(&ud->slock, flags);
	if (event)
		ud->db_events++;
	if (bits) {
		ud->db |= bits;
		ud->db_seq++;
	}
	ntbu_publish(ud);
	spin_unlock_irqrestore(&ud->slock, flags);
	/*
	 * After the update: a waiter either sees the new state in its
	 * condition or is already on the queue; the waitqueue's lock, taken
	 * by both wake_up and prepare_to_wait, orders the two.
	 */
	if (bits)
		wake_up_all(&ud->wq);
}

static void ntbu_db_event(void *ctx, int vector)
{
	ntbu_take_db(ctx, true);
}

static void ntbu_link_event(void *ctx)
{
	struct ntbu_dev *ud = ctx;
	unsigned long flags;

	spin_lock_irqsave(&ud->slock, flags);
	ntbu_read_link(ud);
	ud->link_seq++;
	ud->link_events++;
	ntbu_publish(ud);
	spin_unlock_irqrestore(&ud->slock, flags);
	/* after the update, as in ntbu_take_db() */
	wake_up_all(&ud->wq);
}

static const struct ntb_ctx_ops ntbu_ctx_ops = {
	.link_event	= ntbu_link_event,
	.db_event	= ntbu_db_event,
};

/* Reset the soft state at the end of a session; the link stays as is. */
static void ntbu_reset_soft(struct ntbu_dev *ud)
{
	spin_lock_irq(&ud->slock);
	ud->db = 0;
	ud->db_mask = 0;
	ud->link_seq = 0;
	ud->db_seq = 0;
	ud->kick_seq = 0;
	ud->db_events = 0;
	ud->link_events = 0;
	ud->read_link_seq = 0;
	ntbu_publish(ud);
	spin_unlock_irq(&ud->slock);
}

/* ------------------------------------------------------------------ */
/* Windows                                                             */

static u32 ntbu_mw_count(struct ntbu_dev *ud)
{
	return clamp(ntb_mw_count(ud->ntb, 0), 0, NTBT_USER_MAX_MW);
}

static u32 ntbu_peer_mw_count(struct ntbu_dev *ud)
{
	return clamp(ntb_peer_mw_count(ud->ntb), 0, NTBT_USER_MAX_MW);
}

/*
 * The alignment rules of inbound window @widx, checked: both alignments
 * powers of two (0 means none), size_max not 0. The core's
 * ntb_mw_get_align() refuses while the link is down (ENOTCONN), but a
 * session sets its buffers up before it enables the link (ntbt's kdev
 * does), so ask the driver itself; hardware that cannot tell before the
 * link is up says so with an error here.
 */
static int ntbu_mw_align(struct ntbu_dev *ud, u32 widx, u64 *addr_align,
			 u64 *size_align, u64 *size_max)
{
	resource_size_t aa = 0, sa = 0, sm = 0;
	int rc;

	rc = ud->ntb->ops->mw_get_align(ud->ntb, 0, widx, &aa, &sa, &sm);
	if (rc)
		return rc;
	if (!aa)
		aa = 1;
	if (!sa)
		sa = 1;
	if (!is_power_of_2(aa) || !is_power_of_2(sa) || !sm)
		return -EIO;
	*addr_align = aa;
	*size_align = sa;
	*size_max = sm;
	return 0;
}

static void ntbu_free_in(struct ntbu_dev *ud, u32 widx)
{
	struct ntbu_inbuf *in = &ud->in[widx];

	if (!in->alloc_va)
		return;
	ntb_mw_clear_trans(ud->ntb, 0, widx);
	dma_free_coherent(in->dma_dev, in->alloc_size, in->alloc_va,
			  in->alloc_dma);
	in->alloc_va = NULL;
	in->alloc_size = 0;
	in->size = 0;
}

/* As ntb_transport's ntb_alloc_mw_buffer(). Caller holds ud->lock. */
static int ntbu_mw_set(struct ntbu_dev *ud, const struct ntbt_user_mw_set *ms)
{
	struct ntbu_inbuf *in;
	u64 addr_align, size_align, size_max;
	struct device *dma_dev;
	size_t alloc_size;
	dma_addr_t dma;
	void *va;
	int rc;

	if (ms->pad || ms->widx >= ntbu_mw_count(ud))
		return -EINVAL;
	in = &ud->in[ms->widx];
	if (in->alloc_va)
		return -EBUSY;
	rc = ntbu_mw_align(ud, ms->widx, &addr_align, &size_align, &size_max);
	if (rc)
		return rc;
	if (!ms->size || ms->size > size_max || ms->size > SIZE_MAX ||
	    !IS_ALIGNED(ms->size, size_align))
		return -EINVAL;

	dma_dev = ntb_get_dma_dev(ud->ntb);
	alloc_size = ms->size;
	/* NOWARN: the size is the caller's, a failure only an errno */
	va = dma_alloc_coherent(dma_dev, alloc_size, &dma,
				GFP_KERNEL | __GFP_NOWARN);
	if (va && !IS_ALIGNED(dma, addr_align)) {
		dma_free_coherent(dma_dev, alloc_size, va, dma);
		if (addr_align > SIZE_MAX ||
		    check_add_overflow(alloc_size, (size_t)addr_align,
				       &alloc_size))
			return -ENOMEM;
		va = dma_alloc_coherent(dma_dev, alloc_size, &dma,
					GFP_KERNEL | __GFP_NOWARN);
	}
	if (!va)
		return -ENOMEM;

	in->dma_dev = dma_dev;
	in->alloc_va = va;
	in->alloc_dma = dma;
	in->alloc_size = alloc_size;
	in->dma = ALIGN(dma, addr_align);
	in->size = ms->size;
	rc = ntb_mw_set_trans(ud->ntb, 0, ms->widx, in->dma, in->size);
	if (rc) {
		dma_free_coherent(dma_dev, alloc_size, va, dma);
		in->alloc_va = NULL;
		in->alloc_size = 0;
		in->size = 0;
		return rc;
	}
	return 0;
}

static int ntbu_mw_info(struct ntbu_dev *ud, struct ntbt_user_mw *mi)
{
	u32 widx = mi->widx, mw_count = ntbu_mw_count(ud);
	u32 peer_mw_count = ntbu_peer_mw_count(ud);
	struct ntbu_inbuf *in;
	resource_size_t size;
	phys_addr_t base;

	if (widx >= max(mw_count, peer_mw_count))
		return -EINVAL;
	memset(mi, 0, sizeof(*mi));
	mi->widx = widx;
	if (widx < mw_count &&
	    ntbu_mw_align(ud, widx, &mi->addr_align, &mi->size_align,
			  &mi->size_max)) {
		/* unknown (e.g. the hardware needs the link): all 0 */
		mi->addr_align = 0;
		mi->size_align = 0;
		mi->size_max = 0;
	}
	if (widx < peer_mw_count &&
	    !ntb_peer_mw_get_addr(ud->ntb, widx, &base, &size))
		mi->out_size = size;
	in = &ud->in[widx];
	if (in->alloc_va) {
		mi->flags |= NTBT_USER_MW_IN_SET;
		if (atomic_read(&in->maps))
			mi->flags |= NTBT_USER_MW_IN_MAPPED;
		mi->in_size = in->size;
		mi->in_offset = in->dma - in->alloc_dma;
		mi->in_map_size = PAGE_ALIGN(in->alloc_size);
	}
	return 0;
}

static int ntbu_mw_clear(struct ntbu_dev *ud, u32 widx)
{
	if (widx >= NTBT_USER_MAX_MW)
		return -EINVAL;
	if (!ud->in[widx].alloc_va)
		return widx < ntbu_mw_count(ud) ? 0 : -EINVAL;
	/*
	 * Under ud->lock the count cannot go from 0 to 1: only our mmap
	 * handler (under ud->lock) adds a first mapping; vm_open copies one.
	 */
	if (atomic_read(&ud->in[widx].maps))
		return -EBUSY;
	ntbu_free_in(ud, widx);
	return 0;
}

/*
 * Undo what the session set up in the hardware. Caller holds ud->lock, and
 * the ntb_dev is still ours: not gone yet, or in ntbu_remove().
 */
static void ntbu_teardown(struct ntbu_dev *ud)
{
	u64 mask;
	u32 i;

	for (i = 0; i < NTBT_USER_MAX_MW; i++)
		ntbu_free_in(ud, i);
	ntb_link_disable(ud->ntb);
	spin_lock_irq(&ud->slock);
	mask = ud->db_mask;
	spin_unlock_irq(&ud->slock);
	if (mask)
		ntb_db_clear_mask(ud->ntb, mask);
}

/* Forget the mms that mapped the file; caller holds ud->lock or owns @l. */
static void ntbu_drop_mms(struct list_head *l)
{
	struct ntbu_mm *m, *t;

	list_for_each_entry_safe(m, t, l, node) {
		list_del(&m->node);
		mmdrop(m->mm);
		kfree(m);
	}
}

/* ------------------------------------------------------------------ */
/* ioctl                                                               */

/* The end of a WAIT: 0 not yet, 1 done, or an errno. */
static int ntbu_wait_done(struct ntbu_dev *ud, const struct ntbt_user_wait *w)
{
	int rc = 0;

	spin_lock_irq(&ud->slock);
	if (ud->gone)
		rc = -ENODEV;
	else if (ud->kick_seq != w->kick_seq)
		rc = -EINTR;
	else if (ud->db & w->db_bits & ~ud->db_mask)
		rc = 1;
	else if ((w->flags & NTBT_USER_WAIT_LINK) &&
		 ud->link_seq != w->link_seq)
		rc = 1;
	spin_unlock_irq(&ud->slock);
	return rc;
}

static int ntbu_wait(struct ntbu_dev *ud, const struct ntbt_user_wait *w)
{
	long ret;
	int rc = 0;

	if (w->pad || (w->flags & ~NTBT_USER_WAIT_LINK) ||
	    (w->db_bits & ~ud->db_valid))
		return -EINVAL;
	if (w->timeout_ns < 0)
		ret = wait_event_interruptible(ud->wq,
					       (rc = ntbu_wait_done(ud, w)));
	else
		ret = wait_event_interruptible_hrtimeout(ud->wq,
					(rc = ntbu_wait_done(ud, w)),
					ns_to_ktime(w->timeout_ns));
	if (ret == -ETIME)
		return -ETIMEDOUT;
	/* EINTR, not ERESTARTSYS: a restart would begin a new timeout */
	if (ret)
		return -EINTR;
	return rc < 0 ? rc : 0;
}

static int ntbu_kick(struct ntbu_dev *ud)
{
	int rc = 0;

	spin_lock_irq(&ud->slock);
	if (ud->gone) {
		rc = -ENODEV;
	} else {
		ud->kick_seq++;
		ntbu_publish(ud);
	}
	spin_unlock_irq(&ud->slock);
	/* after the update, as in ntbu_take_db() */
	wake_up_all(&ud->wq);
	return rc;
}

static int ntbu_info(struct ntbu_dev *ud, struct ntbt_user_info *info)
{
	struct ntb_dev *ntb = ud->ntb;

	memset(info, 0, sizeof(*info));
	info->abi = NTBT_USER_ABI;
	info->port = ntb_port_number(ntb);
	info->peer_port = ntb_peer_port_number(ntb, 0);
	info->peer_count = ntb_peer_port_count(ntb);
	info->mw_count = ntbu_mw_count(ud);
	info->peer_mw_count = ntbu_peer_mw_count(ud);
	info->spad_count = max(ntb_spad_count(ntb), 0);
	info->db_vectors = max(ntb_db_vector_count(ntb), 0);
	info->db_valid_mask = ud->db_valid;
	info->topo = ntb->topo;
	info->status_size = PAGE_SIZE;
	strscpy(info->name, ud->name, sizeof(info->name));
	strscpy(info->driver, ud->driver, sizeof(info->driver));
	return 0;
}

static int ntbu_spad_check(struct ntbu_dev *ud, const struct ntbt_user_spad *sp)
{
	return sp->idx < max(ntb_spad_count(ud->ntb), 0) ? 0 : -EINVAL;
}

static int ntbu_db_mask(struct ntbu_dev *ud, u64 bits, bool set)
{
	int rc;

	rc = set ? ntb_db_set_mask(ud->ntb, bits) :
		   ntb_db_clear_mask(ud->ntb, bits);
	if (rc)
		return rc;
	spin_lock_irq(&ud->slock);
	if (set)
		ud->db_mask |= bits;
	else
		ud->db_mask &= ~bits;
	ntbu_publish(ud);
	spin_unlock_irq(&ud->slock);
	if (!set) {
		/* pending bits now unmasked end waits */
		wake_up_all(&ud->wq);
		/* and bits the mask held back in the hardware come in */
		ntbu_take_db(ud, false);
	}
	return 0;
}

/* The ioctls that touch the hardware; caller holds ud->lock, not gone. */
static long ntbu_ioctl_locked(struct ntbu_dev *ud, unsigned int cmd,
			      void *arg)
{
	struct ntbt_user_spad *sp = arg;
	/* the doorbell ioctls' argument (@arg is a zeroed union) */
	u64 bits = *(u64 *)arg;

	switch (cmd) {
	case NTBT_USER_INFO:
		return ntbu_info(ud, arg);
	case NTBT_USER_MW_INFO:
		return ntbu_mw_info(ud, arg);
	case NTBT_USER_MW_SET:
		return ntbu_mw_set(ud, arg);
	case NTBT_USER_MW_CLEAR:
		return ntbu_mw_clear(ud, *(u32 *)arg);
	case NTBT_USER_SPAD_READ:
		if (ntbu_spad_check(ud, sp))
			return -EINVAL;
		sp->val = ntb_spad_read(ud->ntb, sp->idx);
		return 0;
	case NTBT_USER_SPAD_WRITE:
		if (ntbu_spad_check(ud, sp))
			return -EINVAL;
		return ntb_spad_write(ud->ntb, sp->idx, sp->val);
	case NTBT_USER_PEER_SPAD_READ:
		if (ntbu_spad_check(ud, sp))
			return -EINVAL;
		sp->val = ntb_peer_spad_read(ud->ntb, 0, sp->idx);
		return 0;
	case NTBT_USER_PEER_SPAD_WRITE:
		if (ntbu_spad_check(ud, sp))
			return -EINVAL;
		return ntb_peer_spad_write(ud->ntb, 0, sp->idx, sp->val);
	case NTBT_USER_DB_CLEAR:
		if (bits & ~ud->db_valid)
			return -EINVAL;
		/* the soft bits only: see "Doorbells" above */
		spin_lock_irq(&ud->slock);
		ud->db &= ~bits;
		ntbu_publish(ud);
		spin_unlock_irq(&ud->slock);
		return 0;
	case NTBT_USER_DB_SET_MASK:
	case NTBT_USER_DB_CLEAR_MASK:
		if (bits & ~ud->db_valid)
			return -EINVAL;
		return ntbu_db_mask(ud, bits, cmd == NTBT_USER_DB_SET_MASK);
	case NTBT_USER_PEER_DB_SET:
		if (bits & ~ud->db_valid)
			return -EINVAL;
		return ntb_peer_db_set(ud->ntb, bits);
	case NTBT_USER_LINK_ENABLE:
		return ntb_link_enable(ud->ntb, NTB_SPEED_AUTO, NTB_WIDTH_AUTO);
	case NTBT_USER_LINK_DISABLE:
		return ntb_link_disable(ud->ntb);
	}
	return -ENOTTY;
}

static long ntbu_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct ntbu_dev *ud = file->private_data;
	void __user *uarg = (void __user *)arg;
	union {
		struct ntbt_user_info info;
		struct ntbt_user_mw mw;
		struct ntbt_user_mw_set set;
		struct ntbt_user_spad spad;
		struct ntbt_user_wait wait;
		u64 bits;
		u32 widx;
	} u;
	unsigned int size = _IOC_SIZE(cmd);
	long rc;

	switch (cmd) {
	case NTBT_USER_INFO:
	case NTBT_USER_MW_INFO:
	case NTBT_USER_MW_SET:
	case NTBT_USER_MW_CLEAR:
	case NTBT_USER_SPAD_READ:
	case NTBT_USER_SPAD_WRITE:
	case NTBT_USER_PEER_SPAD_READ:
	case NTBT_USER_PEER_SPAD_WRITE:
	case NTBT_USER_DB_CLEAR:
	case NTBT_USER_DB_SET_MASK:
	case NTBT_USER_DB_CLEAR_MASK:
	case NTBT_USER_PEER_DB_SET:
	case NTBT_USER_LINK_ENABLE:
	case NTBT_USER_LINK_DISABLE:
	case NTBT_USER_WAIT:
	case NTBT_USER_KICK:
		break;
	default:
		return -ENOTTY;
	}
	BUILD_BUG_ON(sizeof(u) > 128);
	if (WARN_ON_ONCE(size > sizeof(u)))
		return -ENOTTY;
	memset(&u, 0, sizeof(u));
	/* user memory only outside ud->lock: a fault takes mmap_lock */
	if ((_IOC_DIR(cmd) & _IOC_WRITE) && copy_from_user(&u, uarg, size))
		return -EFAULT;

	if (cmd == NTBT_USER_WAIT)
		return ntbu_wait(ud, &u.wait);
	if (cmd == NTBT_USER_KICK)
		return ntbu_kick(ud);

	mutex_lock(&ud->lock);
	if (ud->gone)
		rc = -ENODEV;
	else
		rc = ntbu_ioctl_locked(ud, cmd, &u);
	mutex_unlock(&ud->lock);

	if (!rc && (_IOC_DIR(cmd) & _IOC_READ) && copy_to_user(uarg, &u, size))
		return -EFAULT;
	return rc;
}

/* ------------------------------------------------------------------ */
/* read, poll                                                          */

/* Fill @ev if an event is pending; caller holds slock. */
static bool ntbu_event(struct ntbu_dev *ud, struct ntbt_user_event *ev)
{
	u64 db = ud->db & ~ud->db_mask;

	if (!db && ud->link_seq == ud->read_link_seq)
		return false;
	if (ev) {
		ev->db = db;
		ev->link_up = ud->link_up;
		ev->link_seq = ud->link_seq;
	}
	return true;
}

static bool ntbu_readable(struct ntbu_dev *ud)
{
	bool ret;

	spin_lock_irq(&ud->slock);
	ret = ud->gone || ntbu_event(ud, NULL);
	spin_unlock_irq(&ud->slock);
	return ret;
}

static ssize_t ntbu_read(struct file *file, char __user *buf, size_t count,
			 loff_t *ppos)
{
	struct ntbu_dev *ud = file->private_data;
	struct ntbt_user_event ev;
	bool got;
	int rc;

	if (count < sizeof(ev))
		return -EINVAL;
	for (;;) {
		spin_lock_irq(&ud->slock);
		if (ud->gone) {
			spin_unlock_irq(&ud->slock);
			return -ENODEV;
		}
		got = ntbu_event(ud, &ev);
		if (got)
			ud->read_link_seq = ev.link_seq;
		spin_unlock_irq(&ud->slock);
		if (got)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		rc = wait_event_interruptible(ud->wq, ntbu_readable(ud));
		if (rc)
			return rc;
	}
	if (copy_to_user(buf, &ev, sizeof(ev)))
		return -EFAULT;
	return sizeof(ev);
}

static __poll_t ntbu_poll(struct file *file, poll_table *wait)
{
	struct ntbu_dev *ud = file->private_data;
	__poll_t mask = 0;

	poll_wait(file, &ud->wq, wait);
	spin_lock_irq(&ud->slock);
	if (ud->gone)
		mask = EPOLLERR | EPOLLHUP;
	else if (ntbu_event(ud, NULL))
		mask = EPOLLIN | EPOLLRDNORM;
	spin_unlock_irq(&ud->slock);
	return mask;
}

/* ------------------------------------------------------------------ */
/* mmap                                                                */

static unsigned long ntbu_vma_region(struct vm_area_struct *vma)
{
	return vma->vm_pgoff >> NTBU_RGN_PAGES_SHIFT;
}

/*
 * A copy of a mapping (fork, split); mmap_lock is held. The file (and so
 * ud) outlives every VMA of it. vm_private_data names the inbound buffer
 * a VMA maps (NULL for the status page and outbound windows), set once at
 * mmap: a split that moves vm_pgoff cannot make it count another buffer.
 */
static void ntbu_vm_open(struct vm_area_struct *vma)
{
	struct ntbu_inbuf *in = vma->vm_private_data;

	if (in)
		atomic_inc(&in->maps);
}

static void ntbu_vm_close(struct vm_area_struct *vma)
{
	struct ntbu_inbuf *in = vma->vm_private_data;

	if (in)
		atomic_dec(&in->maps);
}

/* No .fault: an access after removal zapped the PTEs gets SIGBUS. */
static const struct vm_operations_struct ntbu_vm_ops = {
	.open	= ntbu_vm_open,
	.close	= ntbu_vm_close,
};

/* Record @mm for removal's wait on in-flight mmaps; caller holds lock. */
static int ntbu_track_mm(struct ntbu_dev *ud, struct mm_struct *mm)
{
	struct ntbu_mm *m;

	list_for_each_entry(m, &ud->mms, node)
		if (m->mm == mm)
			return 0;
	m = kmalloc(sizeof(*m), GFP_KERNEL);
	if (!m)
		return -ENOMEM;
	mmgrab(mm);
	m->mm = mm;
	list_add(&m->node, &ud->mms);
	return 0;
}

/* Does [@pg, @pg + @n) fit in a region of @size bytes? */
static bool ntbu_fits(unsigned long pg, unsigned long n, u64 size)
{
	u64 pages = size >> PAGE_SHIFT;

	return n <= pages && pg <= pages - n;
}

static int ntbu_mmap_status(struct ntbu_dev *ud, struct vm_area_struct *vma,
			    unsigned long pg)
{
	if (pg || vma_pages(vma) != 1)
		return -EINVAL;
	if (vma->vm_flags & VM_WRITE)
		return -EACCES;
	/* read-only for good: mprotect() may not add PROT_WRITE */
	vma->vm_flags &= ~VM_MAYWRITE;
	return remap_vmalloc_range(vma, ud->st, 0);
}

static int ntbu_mmap_out(struct ntbu_dev *ud, struct vm_area_struct *vma,
			 u32 widx, unsigned long pg)
{
	resource_size_t size;
	phys_addr_t base;
	int rc;

	if (widx >= ntbu_peer_mw_count(ud))
		return -EINVAL;
	rc = ntb_peer_mw_get_addr(ud->ntb, widx, &base, &size);
	if (rc)
		return rc;
	if (!PAGE_ALIGNED(base))
		return -ENXIO;
	/* a partial last page would expose what lies beyond the window */
	if (!ntbu_fits(pg, vma_pages(vma), size))
		return -EINVAL;
	/* write-combined, as ntb_transport's ioremap_wc() */
	vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
	return io_remap_pfn_range(vma, vma->vm_start, PHYS_PFN(base) + pg,
				  vma->vm_end - vma->vm_start,
				  vma->vm_page_prot);
}

static int ntbu_mmap_in(struct ntbu_dev *ud, struct vm_area_struct *vma,
			u32 widx, unsigned long pg)
{
	struct ntbu_inbuf *in = &ud->in[widx];
	unsigned long pgoff = vma->vm_pgoff;
	int rc;

	if (!in->alloc_va)
		return -ENXIO;
	if (!ntbu_fits(pg, vma_pages(vma), PAGE_ALIGN(in->alloc_size)))
		return -EINVAL;
	/*
	 * dma_mmap_coherent() takes vm_pgoff as the page offset into the
	 * buffer; the file offset goes back before mmap_region() links the
	 * VMA, so splits and our region lookup keep working.
	 */
	vma->vm_pgoff = pg;
	rc = dma_mmap_coherent(in->dma_dev, vma, in->alloc_va, in->alloc_dma,
			       in->alloc_size);
	vma->vm_pgoff = pgoff;
	if (!rc) {
		vma->vm_private_data = in;
		atomic_inc(&in->maps);
	}
	return rc;
}

static int ntbu_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct ntbu_dev *ud = file->private_data;
	unsigned long r = ntbu_vma_region(vma);
	unsigned long pg = vma->vm_pgoff & (BIT(NTBU_RGN_PAGES_SHIFT) - 1);
	int rc;

	/* MAP_SHARED only: a private copy of a device page makes no sense */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	/* device and DMA memory: never executable */
	if (vma->vm_flags & VM_EXEC)
		return -EACCES;
	/* no region of ours is a valid offset for anything else */
	if (r != NTBU_RGN_STATUS &&
	    !(r >= NTBU_RGN_OUT && r < NTBU_RGN_OUT + NTBT_USER_MAX_MW) &&
	    !(r >= NTBU_RGN_IN && r < NTBU_RGN_IN + NTBT_USER_MAX_MW))
		return -EINVAL;
	/*
	 * Fixed size and never in a core dump: mremap() may not grow a
	 * mapping past the checks below (the IOMMU path of dma_mmap_coherent
	 * leaves VM_MIXEDMAP without VM_DONTEXPAND), nor mprotect() make it
	 * executable.
	 */
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
	vma->vm_flags &= ~VM_MAYEXEC;

	mutex_lock(&ud->lock);
	if (ud->gone) {
		rc = -ENODEV;
		goto out;
	}
	rc = ntbu_track_mm(ud, vma->vm_mm);
	if (rc)
		goto out;
	vma->vm_private_data = NULL;
	vma->vm_ops = &ntbu_vm_ops;
	if (r == NTBU_RGN_STATUS)
		rc = ntbu_mmap_status(ud, vma, pg);
	else if (r >= NTBU_RGN_OUT && r < NTBU_RGN_OUT + NTBT_USER_MAX_MW)
		rc = ntbu_mmap_out(ud, vma, r - NTBU_RGN_OUT, pg);
	else if (r >= NTBU_RGN_IN && r < NTBU_RGN_IN + NTBT_USER_MAX_MW)
		rc = ntbu_mmap_in(ud, vma, r - NTBU_RGN_IN, pg);
	else
		rc = -EINVAL;
out:
	mutex_unlock(&ud->lock);
	return rc;
}

/* ------------------------------------------------------------------ */
/* open, release                                                       */

static int ntbu_open(struct inode *inode, struct file *file)
{
	struct ntbu_dev *ud = container_of(inode->i_cdev, struct ntbu_dev,
					   cdev);
	int rc = 0;

	mutex_lock(&ud->lock);
	if (ud->gone) {
		rc = -ENODEV;
	} else if (ud->open) {
		rc = -EBUSY;
	} else {
		ud->open = true;
		ud->file = file;
		spin_lock_irq(&ud->slock);
		ntbu_read_link(ud);
		/* read() reports the link changes from now on */
		ud->read_link_seq = ud->link_seq;
		ntbu_publish(ud);
		spin_unlock_irq(&ud->slock);
	}
	mutex_unlock(&ud->lock);
	if (rc)
		return rc;
	/* the file's reference, dropped in ntbu_release() */
	get_device(&ud->dev);
	file->private_data = ud;
	return stream_open(inode, file);
}

/* The last reference to the file: no mapping of it is left. */
static int ntbu_release(struct inode *inode, struct file *file)
{
	struct ntbu_dev *ud = file->private_data;

	mutex_lock(&ud->lock);
	/*
	 * Not "gone": a release that runs while remove waits for the mmap
	 * locks (gone set, the ntb_dev still ours) must tear down itself,
	 * since remove then finds the file closed and skips it.
	 */
	if (!ud->ntb_released)
		ntbu_teardown(ud);
	ntbu_reset_soft(ud);
	ntbu_drop_mms(&ud->mms);
	ud->file = NULL;
	ud->open = false;
	mutex_unlock(&ud->lock);
	put_device(&ud->dev);
	return 0;
}

static const struct file_operations ntbu_fops = {
	.owner		= THIS_MODULE,
	.open		= ntbu_open,
	.release	= ntbu_release,
	.read		= ntbu_read,
	.poll		= ntbu_poll,
	.mmap		= ntbu_mmap,
	.unlocked_ioctl	= ntbu_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/* ------------------------------------------------------------------ */
/* The NTB client                                                      */

static ssize_t ntb_show(struct device *dev, struct device_attribute *attr,
			char *buf)
{
	struct ntbu_dev *ud = container_of(dev, struct ntbu_dev, dev);

	return sysfs_emit(buf, "%s\n", ud->name);
}
static DEVICE_ATTR_RO(ntb);

static struct attribute *ntbu_attrs[] = {
	&dev_attr_ntb.attr,
	NULL,
};
ATTRIBUTE_GROUPS(ntbu);

static void ntbu_dev_release(struct device *dev)
{
	struct ntbu_dev *ud = container_of(dev, struct ntbu_dev, dev);

	vfree(ud->st);
	ida_free(&ntbu_ida, ud->minor);
	mutex_destroy(&ud->lock);
	kfree(ud);
}

static int ntbu_probe(struct ntb_client *client, struct ntb_dev *ntb)
{
	struct device *hw = ntb->dev.parent;
	struct ntbu_dev *ud;
	int rc;

	ud = kzalloc(sizeof(*ud), GFP_KERNEL);
	if (!ud)
		return -ENOMEM;
	ud->st = vmalloc_user(PAGE_SIZE);
	if (!ud->st) {
		kfree(ud);
		return -ENOMEM;
	}
	rc = ida_alloc_max(&ntbu_ida, NTBU_MAX_DEVS - 1, GFP_KERNEL);
	if (rc < 0) {
		vfree(ud->st);
		kfree(ud);
		return rc;
	}
	ud->minor = rc;
	ud->ntb = ntb;
	ud->db_valid = ntb_db_valid_mask(ntb);
	strscpy(ud->name, dev_name(&ntb->dev), sizeof(ud->name));
	strscpy(ud->driver, hw && hw->driver ? hw->driver->name : "",
		sizeof(ud->driver));
	mutex_init(&ud->lock);
	INIT_LIST_HEAD(&ud->mms);
	spin_lock_init(&ud->slock);
	init_waitqueue_head(&ud->wq);

	/* from here on, put_device() frees everything (ntbu_dev_release) */
	device_initialize(&ud->dev);
	ud->dev.class = ntbu_class;
	ud->dev.parent = &ntb->dev;
	ud->dev.devt = MKDEV(MAJOR(ntbu_devt), ud->minor);
	ud->dev.groups = ntbu_groups;
	ud->dev.release = ntbu_dev_release;
	rc = dev_set_name(&ud->dev, "ntbt-user%d", ud->minor);
	if (rc)
		goto err_put;
	cdev_init(&ud->cdev, &ntbu_fops);
	ud->cdev.owner = THIS_MODULE;

	rc = ntb_set_ctx(ntb, ud, &ntbu_ctx_ops);
	if (rc)
		goto err_put;
	/* after set_ctx: a link event from now on updates it again */
	spin_lock_irq(&ud->slock);
	ntbu_read_link(ud);
	ntbu_publish(ud);
	spin_unlock_irq(&ud->slock);
	rc = cdev_device_add(&ud->cdev, &ud->dev);
	if (rc)
		goto err_ctx;
	dev_dbg(&ntb->dev, "%s\n", dev_name(&ud->dev));
	return 0;

err_ctx:
	ntb_clear_ctx(ntb);
err_put:
	put_device(&ud->dev);
	return rc;
}

static void ntbu_remove(struct ntb_client *client, struct ntb_dev *ntb)
{
	struct ntbu_dev *ud = ntb->ctx;
	struct file *file = NULL;
	struct ntbu_mm *m;
	LIST_HEAD(mms);

	/* no new opens; the open file stays usable until it fails below */
	cdev_device_del(&ud->cdev, &ud->dev);

	mutex_lock(&ud->lock);
	spin_lock_irq(&ud->slock);
	ud->gone = true;
	spin_unlock_irq(&ud->slock);
	/* a file whose count is 0 is in release (waiting for us): unmapped */
	if (ud->file && get_file_rcu(ud->file))
		file = ud->file;
	list_splice_init(&ud->mms, &mms);
	mutex_unlock(&ud->lock);

	/*
	 * mmap handlers that ran before gone was set have returned, but
	 * mmap_region() links their VMAs into the file's mapping only later,
	 * still under that mm's mmap_lock: wait for each such mm's lock, so
	 * that the zap below sees every VMA. Not under ud->lock, which
	 * nests inside mmap_lock.
	 */
	list_for_each_entry(m, &mms, node) {
		mmap_read_lock(m->mm);
		mmap_read_unlock(m->mm);
	}
	if (file) {
		unmap_mapping_range(file->f_mapping, 0, 0, 1);
		fput(file);
	}
	ntbu_drop_mms(&mms);

	/*
	 * WAIT, read and poll see gone now (their conditions take slock).
	 * Woken only after the zap: a waiter that returns ENODEV finds every
	 * old mapping already gone (a touch faults), never still there.
	 */
	wake_up_all(&ud->wq);

	/* let the ntb_dev go: no callback after clear_ctx returns */
	mutex_lock(&ud->lock);
	ntb_clear_ctx(ntb);
	if (ud->open)
		ntbu_teardown(ud);
	ud->ntb_released = true;
	mutex_unlock(&ud->lock);

	/* the probe's reference; an open file holds its own */
	put_device(&ud->dev);
}

static struct ntb_client ntbu_client = {
	.ops = {
		.probe = ntbu_probe,
		.remove = ntbu_remove,
	},
};

/* Linux 6.1 (Debian 12): the device is const from 6.2 */
static char *ntbu_devnode(struct device *dev, umode_t *mode)
{
	if (mode)
		*mode = 0600;
	return NULL;
}

static int __init ntbu_init(void)
{
	int rc;

	/* Linux 6.1: from 6.4 class_create() takes the name alone */
	ntbu_class = class_create(THIS_MODULE, NTBU_CLASS);
	if (IS_ERR(ntbu_class))
		return PTR_ERR(ntbu_class);
	ntbu_class->devnode = ntbu_devnode;
	rc = alloc_chrdev_region(&ntbu_devt, 0, NTBU_MAX_DEVS, NTBU_CLASS);
	if (rc)
		goto err_class;
	rc = ntb_register_client(&ntbu_client);
	if (rc)
		goto err_region;
	return 0;

err_region:
	unregister_chrdev_region(ntbu_devt, NTBU_MAX_DEVS);
err_class:
	class_destroy(ntbu_class);
	return rc;
}
module_init(ntbu_init);

static void __exit ntbu_exit(void)
{
	ntb_unregister_client(&ntbu_client);
	unregister_chrdev_region(ntbu_devt, NTBU_MAX_DEVS);
	class_destroy(ntbu_class);
	ida_destroy(&ntbu_ida);
}
module_exit(ntbu_exit);

MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("NTB devices for userspace: /dev/ntbt-userN (ntbt kdev)");
MODULE_AUTHOR("ntbt");
