/* SPDX-License-Identifier: MIT */
/*
 * The "kdev" device: any NTB that the Linux kernel drives, through the
 * ntb_user bridge (kernel/ntb_user, include/ntbt/ntb_user.h).
 *
 *   kdev:/dev/ntbt-user0     the bridge's character device
 *   kdev:NTBDEV              the bridge device bound to the NTB device
 *                            NTBDEV (a name under /sys/bus/ntb/devices/)
 *
 * Outbound windows are the bridge's write-combined mappings of the
 * hardware's windows: stores are posted writes, and the flush is the
 * seed's ordering fix for real (a store fence, then a read-back through the
 * same mapping).  Inbound windows are DMA buffers that the bridge allocates
 * and translates when the transport asks (mw_set_trans); the transport keeps
 * the address that mw_inbound gave it for its whole life, so each window
 * owns a fixed range of our address space: the buffer is mapped into it
 * while a translation is set, and anonymous zero pages otherwise (a ring
 * reader racing a link-down reads zeros, never a fault).
 *
 * Doorbells: the bridge keeps the pending bits in a read-only status page
 * that we map, so db_read is a load; clears, masks, rings and waits are
 * ioctls.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <ntbt/ntb_user.h>

#include "../util/barrier.h"
#include "../util/clock.h"
#include "../util/hostile.h"
#include "../util/log.h"
#include "dev.h"

/* Address space reserved per inbound window (the transport never asks for
 * more than this, whatever the hardware's size_max). */
#define KDEV_IN_MAX (1ull << 30)

struct kdev_win {
        uint8_t *out; /* write-combined mapping of outbound window w, or NULL */
        uint64_t out_size;
        uint8_t *in; /* reserved range of in_max bytes */
        uint64_t in_max;
        uint64_t in_set; /* bytes of the bridge's buffer mapped at in, 0 if none */
        uint64_t addr_align, size_align, size_max;
};

struct kdev_dev {
        int fd;
        const struct ntbt_user_status *st; /* read-only, written by the driver */
        struct ntbt_user_info info;
        uint32_t nwin; /* windows usable both ways: min(mw_count, peer_mw_count) */
        struct kdev_win win[NTBT_USER_MAX_MW];
        long page;
};

static struct kdev_dev *to_kdev(struct ntbt_dev *dev)
{
        return dev->priv;
}

/* An ioctl, as 0 or -errno. */
static int kio(struct kdev_dev *k, unsigned long req, void *arg)
{
        return ioctl(k->fd, req, arg) ? -errno : 0;
}

/* ---- finding and opening the bridge ---- */

/* Is /dev node st a ntb_user bridge?  Asked of sysfs, before any ioctl, so
 * that a path naming some other device is never sent our commands. */
static int is_bridge(const struct stat *st)
{
        char link[64], target[PATH_MAX];
        ssize_t n;

        if (!S_ISCHR(st->st_mode))
                return 0;
        snprintf(link, sizeof(link), "/sys/dev/char/%u:%u/subsystem", major(st->st_rdev),
                 minor(st->st_rdev));
        n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
                return 0;
        target[n] = '\0';
        n = (ssize_t)strlen(target);
        return n >= 10 && strcmp(target + n - 10, "/ntbt_user") == 0;
}

/* Read a one-line sysfs attribute into buf (newline dropped). */
static int read_attr(const char *path, char *buf, size_t len)
{
        int fd = util_open_hostile(path, &(struct hostile_open){.flags = O_RDONLY});
        ssize_t n;

        if (fd < 0)
                return fd;
        n = read(fd, buf, len - 1);
        close(fd);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return 0;
}

/* "kdev:NTBDEV": the bridge device whose "ntb" attribute names NTBDEV. */
static int find_by_ntb(const char *name, char *path, size_t len)
{
        DIR *d = opendir("/sys/class/ntbt_user");
        struct dirent *e;
        int ret = -ENOENT;

        if (!d)
                return -ENOENT;
        while (ret && (e = readdir(d))) {
                char attr[PATH_MAX], val[128];

                if (e->d_name[0] == '.')
                        continue;
                snprintf(attr, sizeof(attr), "/sys/class/ntbt_user/%s/ntb", e->d_name);
                if (read_attr(attr, val, sizeof(val)) == 0 && strcmp(val, name) == 0) {
                        snprintf(path, len, "/dev/%s", e->d_name);
                        ret = 0;
                }
        }
        closedir(d);
        return ret;
}

static int kdev_open_fd(struct ntbt_dev *dev, const char *name)
{
        char path[PATH_MAX];
        struct stat st;
        struct hostile_open h = {.flags = O_RDWR | O_NONBLOCK, .type = S_IFCHR, .same = &st};
        int fd;

        if (name[0] == '/') {
                snprintf(path, sizeof(path), "%s", name);
        } else if (find_by_ntb(name, path, sizeof(path))) {
                log_err("%s: no ntb_user bridge is bound to an NTB device named '%s' (is "
                        "ntb_user loaded? see /sys/class/ntbt_user/*/ntb)",
                        dev->spec, name);
                return -ENODEV;
        }
        /* Ask sysfs before opening: opening some other character device
         * can have effects of its own (a tape rewinds, a modem hangs up). */
        if (lstat(path, &st)) {
                int err = errno;

                log_err("%s: %s: %s", dev->spec, path, strerror(err));
                return -err;
        }
        if (!is_bridge(&st)) {
                log_err("%s: %s is not an ntb_user bridge device", dev->spec, path);
                return -ENODEV;
        }
        /* The same node (not one swapped in since the lstat). */
        fd = util_open_hostile(path, &h);
        if (fd < 0 && h.why == HOSTILE_OPEN) {
                log_err("%s: %s: %s%s", dev->spec, path, strerror(-fd),
                        fd == -EBUSY ? " (another process has it open)" : "");
                return fd;
        }
        if (fd < 0) {
                log_err("%s: %s changed while it was opened", dev->spec, path);
                return -ENODEV;
        }
        return fd;
}

/* ---- open and close ---- */

static void unmap_all(struct kdev_dev *k)
{
        uint32_t w;

        for (w = 0; w < NTBT_USER_MAX_MW; w++) {
                if (k->win[w].out)
                        munmap(k->win[w].out, k->win[w].out_size);
                if (k->win[w].in)
                        munmap(k->win[w].in, k->win[w].in_max);
        }
        if (k->st)
                munmap((void *)k->st, (size_t)k->info.status_size);
}

static int map_window(struct ntbt_dev *dev, struct kdev_dev *k, uint32_t w)
{
        struct ntbt_user_mw mi = {.widx = w};
        struct kdev_win *kw = &k->win[w];
        void *p;
        int ret = kio(k, NTBT_USER_MW_INFO, &mi);

        if (ret) {
                log_err("%s: window %u: %s", dev->spec, w, strerror(-ret));
                return ret;
        }
        if (!mi.out_size || !mi.size_max || !mi.size_align || !mi.addr_align) {
                log_err("%s: window %u has no usable size (outbound %llu, inbound max %llu)",
                        dev->spec, w, (unsigned long long)mi.out_size,
                        (unsigned long long)mi.size_max);
                return -ENODEV;
        }
        kw->addr_align = mi.addr_align;
        kw->size_align = mi.size_align;
        kw->size_max = mi.size_max;
        kw->out_size = mi.out_size;
        /* Read and write: the flush reads back through this mapping. */
        p = mmap(NULL, mi.out_size, PROT_READ | PROT_WRITE, MAP_SHARED, k->fd,
                 (off_t)NTBT_USER_MMAP_OUT(w));
        if (p == MAP_FAILED) {
                ret = -errno;
                log_err("%s: map outbound window %u (%llu bytes): %s", dev->spec, w,
                        (unsigned long long)mi.out_size, strerror(-ret));
                return ret;
        }
        kw->out = p;
        kw->in_max = mi.size_max < KDEV_IN_MAX ? mi.size_max : KDEV_IN_MAX;
        kw->in_max -= kw->in_max % (uint64_t)k->page; /* whole pages */
        if (!kw->in_max) {
                log_err("%s: window %u: inbound max %llu is under a page", dev->spec, w,
                        (unsigned long long)mi.size_max);
                return -ENODEV;
        }
        p = mmap(NULL, kw->in_max, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return -errno;
        kw->in = p;
        return 0;
}

static int kdev_open(struct ntbt_dev *dev, const struct dev_args *args)
{
        struct kdev_dev *k = calloc(1, sizeof(*k));
        void *p;
        uint32_t w;
        int ret;

        if (!k)
                return -ENOMEM;
        k->page = sysconf(_SC_PAGESIZE);
        k->fd = kdev_open_fd(dev, args->name);
        if (k->fd < 0) {
                ret = k->fd;
                free(k);
                return ret;
        }
        ret = kio(k, NTBT_USER_INFO, &k->info);
        if (!ret && k->info.abi != NTBT_USER_ABI) {
                log_err("%s: the ntb_user module speaks ABI %u, this ntbt %u: load the "
                        "module that came with this ntbt",
                        dev->spec, k->info.abi, NTBT_USER_ABI);
                ret = -EPROTO;
        }
        if (ret)
                goto fail;
        k->info.name[sizeof(k->info.name) - 1] = '\0';
        k->info.driver[sizeof(k->info.driver) - 1] = '\0';
        if (k->info.status_size < sizeof(struct ntbt_user_status) ||
            k->info.status_size > (uint32_t)k->page) {
                log_err("%s: bad status page size %u", dev->spec, k->info.status_size);
                ret = -EPROTO;
                goto fail;
        }
        p = mmap(NULL, k->info.status_size, PROT_READ, MAP_SHARED, k->fd,
                 (off_t)NTBT_USER_MMAP_STATUS);
        if (p == MAP_FAILED) {
                ret = -errno;
                log_err("%s: map the status page: %s", dev->spec, strerror(-ret));
                goto fail;
        }
        k->st = p;
        k->nwin =
            k->info.mw_count < k->info.peer_mw_count ? k->info.mw_count : k->info.peer_mw_count;
        if (k->nwin > NTBT_USER_MAX_MW)
                k->nwin = NTBT_USER_MAX_MW;
        if (!k->nwin) {
                log_err("%s: %s has no memory window usable both ways (%u inbound, %u outbound)",
                        dev->spec, k->info.name, k->info.mw_count, k->info.peer_mw_count);
                ret = -ENODEV;
                goto fail;
        }
        for (w = 0; w < k->nwin && !ret; w++)
                ret = map_window(dev, k, w);
        if (ret)
                goto fail;
        dev->priv = k;
        return 0;
fail:
        unmap_all(k);
        close(k->fd);
        free(k);
        return ret;
}

static void kdev_close(struct ntbt_dev *dev)
{
        struct kdev_dev *k = to_kdev(dev);

        /* The bridge clears translations, frees buffers and disables the
         * link when the last reference (the fd and every mapping) goes. */
        unmap_all(k);
        close(k->fd);
        free(k);
}

static int kdev_port(struct ntbt_dev *dev)
{
        return (int)to_kdev(dev)->info.port;
}

/* ---- link ---- */

static int kdev_link_is_up(struct ntbt_dev *dev)
{
        /* Acquire: what the peer did before the link came up (its
         * scratchpads) is read after the level. */
        return load_acquire(&to_kdev(dev)->st->link_up) != 0;
}

static int kdev_link_enable(struct ntbt_dev *dev)
{
        int ret = kio(to_kdev(dev), NTBT_USER_LINK_ENABLE, NULL);

        /* Some sides cannot enable the link (AMD's secondary, an endpoint
         * whose host does it): the peer's enable brings it up.  The kernel's
         * ntb_transport ignores this result too. */
        if (ret && ret != -ENODEV) {
                log_info("%s: the hardware driver did not enable the link from this side (%s); "
                         "waiting for the peer's",
                         dev->spec, strerror(-ret));
                ret = 0;
        }
        return ret;
}

static int kdev_link_disable(struct ntbt_dev *dev)
{
        return kio(to_kdev(dev), NTBT_USER_LINK_DISABLE, NULL);
}

static uint32_t kdev_link_events(struct ntbt_dev *dev)
{
        return load_acquire(&to_kdev(dev)->st->link_seq);
}

/* One NTBT_USER_WAIT of at most left ns (< 0: no limit). */
static int kdev_wait(struct kdev_dev *k, uint64_t bits, int64_t left, uint32_t kick,
                     uint32_t link_seq, uint32_t flags)
{
        struct ntbt_user_wait wt = {.db_bits = bits,
                                    .timeout_ns = left,
                                    .kick_seq = kick,
                                    .link_seq = link_seq,
                                    .flags = flags};

        return kio(k, NTBT_USER_WAIT, &wt);
}

static int kdev_link_wait(struct ntbt_dev *dev, int was_up, int64_t timeout_ns)
{
        struct kdev_dev *k = to_kdev(dev);
        int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;

        for (;;) {
                /* The counter before the level: a change after this look
                 * moves it, and the wait returns at once. */
                uint32_t seq = load_acquire(&k->st->link_seq);
                uint32_t kick = load_acquire(&k->st->kick_seq);
                int up = kdev_link_is_up(dev);
                int64_t left = deadline - now_ns();
                int ret;

                if (up != !!was_up || left <= 0)
                        return up;
                ret = kdev_wait(k, 0, timeout_ns < 0 ? -1 : left, kick, seq, NTBT_USER_WAIT_LINK);
                if (ret == -ENODEV)
                        return 0;
        }
}

/* ---- windows ---- */

static struct kdev_win *win(struct kdev_dev *k, int widx)
{
        return widx >= 0 && (uint32_t)widx < k->nwin ? &k->win[widx] : NULL;
}

static int kdev_mw_count(struct ntbt_dev *dev)
{
        return (int)to_kdev(dev)->nwin;
}

static int kdev_mw_get_align(struct ntbt_dev *dev, int widx, uint64_t *addr_align,
                             uint64_t *size_align, uint64_t *size_max)
{
        struct kdev_win *w = win(to_kdev(dev), widx);

        if (!w)
                return -EINVAL;
        if (addr_align)
                *addr_align = w->addr_align;
        if (size_align)
                *size_align = w->size_align;
        if (size_max)
                *size_max = w->in_max;
        return 0;
}

/* Put anonymous zero pages back over the window's range. */
static int unmap_inbound(struct kdev_win *w)
{
        void *p = mmap(w->in, w->in_max, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

        if (p == MAP_FAILED)
                return -errno;
        w->in_set = 0;
        return 0;
}

static int kdev_mw_clear_trans(struct ntbt_dev *dev, int widx)
{
        struct kdev_dev *k = to_kdev(dev);
        struct kdev_win *w = win(k, widx);
        uint32_t idx = (uint32_t)widx;
        int ret;

        if (!w)
                return -EINVAL;
        if (!w->in_set)
                return 0;
        /* Our mapping first: the bridge refuses to free a mapped buffer. */
        ret = unmap_inbound(w);
        if (!ret)
                ret = kio(k, NTBT_USER_MW_CLEAR, &idx);
        return ret;
}

static int kdev_mw_set_trans(struct ntbt_dev *dev, int widx, uint64_t size)
{
        struct kdev_dev *k = to_kdev(dev);
        struct kdev_win *w = win(k, widx);
        struct ntbt_user_mw_set ms = {.widx = (uint32_t)widx, .size = size};
        struct ntbt_user_mw mi = {.widx = (uint32_t)widx};
        uint64_t len;
        void *p;
        int ret;

        if (!w || !size || size > w->in_max)
                return -EINVAL;
        ret = kdev_mw_clear_trans(dev, widx);
        if (!ret)
                ret = kio(k, NTBT_USER_MW_SET, &ms);
        if (!ret)
                ret = kio(k, NTBT_USER_MW_INFO, &mi);
        if (ret)
                return ret;
        /* The buffer from its first byte, whole pages, within our range. */
        len = (mi.in_size + (uint64_t)k->page - 1) / (uint64_t)k->page * (uint64_t)k->page;
        if (mi.in_size < size || mi.in_offset % (uint64_t)k->page || len > w->in_max ||
            mi.in_offset + len > mi.in_map_size) {
                uint32_t idx = (uint32_t)widx;

                kio(k, NTBT_USER_MW_CLEAR, &idx);
                return -EPROTO;
        }
        p = mmap(w->in, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, k->fd,
                 (off_t)(NTBT_USER_MMAP_IN((uint64_t)widx) + mi.in_offset));
        if (p == MAP_FAILED) {
                uint32_t idx = (uint32_t)widx;

                ret = -errno;
                /* MAP_FIXED failed: the old range may be gone; restore it. */
                unmap_inbound(w);
                kio(k, NTBT_USER_MW_CLEAR, &idx);
                return ret;
        }
        w->in_set = len;
        return 0;
}

static int kdev_peer_mw_size(struct ntbt_dev *dev, int widx, uint64_t *size)
{
        struct kdev_win *w = win(to_kdev(dev), widx);

        if (!w)
                return -EINVAL;
        *size = w->out_size;
        return 0;
}

static int kdev_mw_inbound(struct ntbt_dev *dev, int widx, void **base, uint64_t *size)
{
        struct kdev_win *w = win(to_kdev(dev), widx);

        if (!w)
                return -EINVAL;
        *base = w->in;
        *size = w->in_max;
        return 0;
}

static uint8_t *outbound(struct kdev_dev *k, int widx, uint64_t off, size_t len)
{
        struct kdev_win *w = win(k, widx);

        if (!w || off > w->out_size || len > w->out_size - off)
                return NULL;
        return w->out + off;
}

/* Posted writes into the write-combining buffers, as memcpy_toio; ordered by
 * the wmb or flush the transport issues before DONE. */
static int kdev_peer_mw_write(struct ntbt_dev *dev, int widx, uint64_t off, const void *src,
                              size_t len)
{
        return dev_mw_copy(outbound(to_kdev(dev), widx, off, len), src, len);
}

/* One 32-bit store (iowrite32); release orders the compiler's view of the
 * stores before it.  The hardware ordering comes from wmb/flush. */
static int kdev_peer_mw_write32(struct ntbt_dev *dev, int widx, uint64_t off, uint32_t val)
{
        return dev_mw_store32(outbound(to_kdev(dev), widx, off, 4), val);
}

/* A store fence that also drains write-combining buffers. */
static void wc_fence(void)
{
#if defined(__x86_64__) || defined(__i386__)
        /* sfence: WC stores are weakly ordered; this is the kernel's wmb(). */
        __asm__ __volatile__("sfence" ::: "memory");
#elif defined(__aarch64__)
        /* dmb oshst: the kernel's wmb() on arm64 (stores to Device/Normal-NC
         * memory, outer shareable). */
        __asm__ __volatile__("dmb oshst" ::: "memory");
#else
        smp_mb();
#endif
}

static int kdev_peer_mw_wmb(struct ntbt_dev *dev, int widx)
{
        if (!win(to_kdev(dev), widx))
                return -EINVAL;
        /* Earlier window stores leave before later ones (the frame before its
         * DONE flag, as the kernel's wmb() between them). */
        wc_fence();
        return 0;
}

/* The write-combined mapping itself: the application's stores through it
 * are posted writes as ours are, and the same wmb (an sfence, which drains
 * the WC buffers) and flush order them before DONE and the doorbell. */
static int kdev_peer_mw_map(struct ntbt_dev *dev, int widx, void **base, uint64_t *size)
{
        struct kdev_win *w = win(to_kdev(dev), widx);

        if (!w || !w->out)
                return -EINVAL;
        *base = w->out;
        *size = w->out_size;
        return 0;
}

static int kdev_peer_mw_flush(struct ntbt_dev *dev, int widx, uint64_t off)
{
        volatile uint32_t *p = (volatile uint32_t *)outbound(to_kdev(dev), widx, off & ~3ull, 4);

        if (!p)
                return -EINVAL;
        /* The seed's ordering fix on real hardware: the fence pushes every
         * WC line out as posted writes; the read is non-posted, and PCIe
         * returns its completion only after the posted writes ahead of it
         * on the path, so when it returns they have landed in the peer's
         * memory, before the doorbell write that follows. */
        wc_fence();
        smp_mb();
        (void)*p;
        return 0;
}

/* ---- doorbells ---- */

static uint64_t kdev_db_valid_mask(struct ntbt_dev *dev)
{
        return to_kdev(dev)->info.db_valid_mask;
}

static uint64_t kdev_db_read(struct ntbt_dev *dev)
{
        /* Acquire: the bridge sets a bit only after the hardware reported it,
         * so the ring contents the peer flushed before ringing are read
         * after this load. */
        return load_acquire(&to_kdev(dev)->st->db);
}

static int kdev_db_bits_ioctl(struct ntbt_dev *dev, unsigned long req, uint64_t bits)
{
        struct kdev_dev *k = to_kdev(dev);

        if (bits & ~k->info.db_valid_mask)
                return -EINVAL;
        return kio(k, req, &bits);
}

static int kdev_db_clear(struct ntbt_dev *dev, uint64_t bits)
{
        return kdev_db_bits_ioctl(dev, NTBT_USER_DB_CLEAR, bits);
}

static int kdev_peer_db_set(struct ntbt_dev *dev, uint64_t bits)
{
        return kdev_db_bits_ioctl(dev, NTBT_USER_PEER_DB_SET, bits);
}

static uint64_t kdev_db_mask(struct ntbt_dev *dev)
{
        return load_acquire(&to_kdev(dev)->st->db_mask);
}

static int kdev_db_set_mask(struct ntbt_dev *dev, uint64_t bits)
{
        return kdev_db_bits_ioctl(dev, NTBT_USER_DB_SET_MASK, bits);
}

static int kdev_db_clear_mask(struct ntbt_dev *dev, uint64_t bits)
{
        return kdev_db_bits_ioctl(dev, NTBT_USER_DB_CLEAR_MASK, bits);
}

static int kdev_db_wait(struct ntbt_dev *dev, uint64_t bits, int64_t timeout_ns)
{
        struct kdev_dev *k = to_kdev(dev);
        /* The kick count at the start: a kick from now on ends this wait. */
        uint32_t kick = load_acquire(&k->st->kick_seq);
        int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;

        for (;;) {
                int64_t left;
                int ret;

                if (load_acquire(&k->st->kick_seq) != kick)
                        return -EINTR;
                if (load_acquire(&k->st->db) & bits & ~load_acquire(&k->st->db_mask))
                        return 0;
                left = deadline - now_ns();
                if (left <= 0)
                        return -ETIMEDOUT;
                ret = kdev_wait(k, bits, timeout_ns < 0 ? -1 : left, kick, 0, 0);
                if (ret == -ENODEV || ret == -EINVAL)
                        return ret;
                /* 0, -ETIMEDOUT, -EINTR (a kick or a signal): look again. */
        }
}

static int kdev_db_wait_interrupt(struct ntbt_dev *dev)
{
        return kio(to_kdev(dev), NTBT_USER_KICK, NULL);
}

/* ---- scratchpads ---- */

static int kdev_spad_count(struct ntbt_dev *dev)
{
        return (int)to_kdev(dev)->info.spad_count;
}

static int spad_io(struct ntbt_dev *dev, unsigned long req, int idx, uint32_t *val)
{
        struct kdev_dev *k = to_kdev(dev);
        struct ntbt_user_spad sp = {.idx = (uint32_t)idx, .val = val ? *val : 0};
        int ret;

        if (idx < 0 || (uint32_t)idx >= k->info.spad_count)
                return -EINVAL;
        ret = kio(k, req, &sp);
        if (!ret && val)
                *val = sp.val;
        return ret;
}

static int kdev_spad_read(struct ntbt_dev *dev, int idx, uint32_t *val)
{
        return spad_io(dev, NTBT_USER_SPAD_READ, idx, val);
}

static int kdev_spad_write(struct ntbt_dev *dev, int idx, uint32_t val)
{
        return spad_io(dev, NTBT_USER_SPAD_WRITE, idx, &val);
}

static int kdev_peer_spad_read(struct ntbt_dev *dev, int idx, uint32_t *val)
{
        return spad_io(dev, NTBT_USER_PEER_SPAD_READ, idx, val);
}

static int kdev_peer_spad_write(struct ntbt_dev *dev, int idx, uint32_t val)
{
        return spad_io(dev, NTBT_USER_PEER_SPAD_WRITE, idx, &val);
}

static int kdev_describe(struct ntbt_dev *dev, char *buf, size_t len)
{
        struct kdev_dev *k = to_kdev(dev);

        snprintf(buf, len, "NTB %s (driver %s), port %u, peer port %u of %u", k->info.name,
                 k->info.driver, k->info.port, k->info.peer_port, k->info.peer_count);
        return 0;
}

const struct ntbt_dev_ops kdev_dev_ops = {
    .type = "kdev",
    .open = kdev_open,
    .close = kdev_close,
    .port = kdev_port,
    .describe = kdev_describe,
    .link_is_up = kdev_link_is_up,
    .link_enable = kdev_link_enable,
    .link_disable = kdev_link_disable,
    .link_wait = kdev_link_wait,
    .link_events = kdev_link_events,
    .mw_count = kdev_mw_count,
    .mw_get_align = kdev_mw_get_align,
    .mw_set_trans = kdev_mw_set_trans,
    .mw_clear_trans = kdev_mw_clear_trans,
    .peer_mw_size = kdev_peer_mw_size,
    .mw_inbound = kdev_mw_inbound,
    .peer_mw_write = kdev_peer_mw_write,
    .peer_mw_write32 = kdev_peer_mw_write32,
    .peer_mw_wmb = kdev_peer_mw_wmb,
    .peer_mw_flush = kdev_peer_mw_flush,
    .peer_mw_map = kdev_peer_mw_map,
    .db_valid_mask = kdev_db_valid_mask,
    .db_read = kdev_db_read,
    .db_clear = kdev_db_clear,
    .peer_db_set = kdev_peer_db_set,
    .db_mask = kdev_db_mask,
    .db_set_mask = kdev_db_set_mask,
    .db_clear_mask = kdev_db_clear_mask,
    .db_wait = kdev_db_wait,
    .db_wait_interrupt = kdev_db_wait_interrupt,
    .spad_count = kdev_spad_count,
    .spad_read = kdev_spad_read,
    .spad_write = kdev_spad_write,
    .peer_spad_read = kdev_peer_spad_read,
    .peer_spad_write = kdev_peer_spad_write,
};
