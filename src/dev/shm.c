/* SPDX-License-Identifier: MIT */
/*
 * The "shm" device: an NTB emulated in one shared-memory file, as specified
 * by spec/shm-device.md (format 2).  Two processes (or two handles, or a
 * process and a QEMU guest that maps the file as an ivshmem BAR) each claim a
 * port; each port's inbound windows are the other's outbound ones.
 *
 * Liveness: a process owner of this host is judged by its pid (a pidfd); a
 * remote owner (owner_kind 2) cannot be seen as a process and never wakes a
 * futex, so it is judged by its heartbeat, and every wait that a remote peer
 * could end is bounded (link changes: heartbeat_ms; doorbells: 1 ms).  Every
 * handle beats its own port's heartbeat from a small thread, so that a
 * remote peer can tell when this process died.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ntbt/shm.h>

#include "../util/abi.h"
#include "../util/barrier.h"
#include "../util/clock.h"
#include "../util/futex.h"
#include "../util/hostile.h"
#include "../util/log.h"
#include "../util/parse.h"
#include "dev.h"
#include "shm_regs.h"

/* How often a waiter looks at the peer's process while it sleeps on link_seq:
 * a SIGKILLed peer never bumps link_seq, so this bounds its detection time. */
#define LINK_POLL_NS (20 * NS_PER_MS)
/* How long a doorbell sleep lasts at most while the peer is remote: a remote
 * owner rings without FUTEX_WAKE, so we must look (spec: within 1 ms). */
#define REMOTE_DB_POLL_NS NS_PER_MS

/* A validated, mapped device file.  Fields are our copies of the header,
 * taken once at open: the file is never trusted after validation. */
struct shm_map {
        int fd;
        uint8_t *base;
        size_t len;
        struct shm_hdr *hdr;
        struct shm_geom g; /* the header's, checked (shm_hdr_parse) */
};

struct shm_dev {
        struct shm_map map;
        int port;
        int nt;                   /* bulk window writes with non-temporal stores (nt=1) */
        uint32_t pid, generation; /* what we wrote when we claimed */
        struct shm_port *me, *peer;
        uint32_t kicks; /* db_wait_interrupt counter, local to this handle */
        /* Liveness cache of the peer's owner, per (owner_kind, pid,
         * generation): a pidfd for a process owner; for a remote one the
         * last heartbeat value seen and when (our clock) it last moved. */
        pthread_mutex_t peer_lock;
        int peer_pidfd;
        uint32_t peer_kind, peer_pid, peer_gen, peer_hb;
        int64_t peer_hb_at;
        /* The heartbeat thread: beats me->heartbeat every heartbeat_ms / 2. */
        pthread_t hb_thread;
        pthread_mutex_t hb_lock;
        pthread_cond_t hb_cond;
        int hb_stop;
};

static struct shm_dev *to_shm(struct ntbt_dev *dev)
{
        return dev->priv;
}

/* ---- names and validation ---- */

int ntbt_shm_path(const char *name, char *buf, size_t len)
{
        size_t n, i;

        if (!name || !buf)
                return -EINVAL;
        if (name[0] == '/') {
                if (strlen(name) >= len)
                        return -ENAMETOOLONG;
                strcpy(buf, name);
                return 0;
        }
        n = strlen(name);
        if (n < 1 || n > 64)
                return -EINVAL;
        for (i = 0; i < n; i++) {
                char c = name[i];

                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '-'))
                        return -EINVAL;
        }
        if ((size_t)snprintf(buf, len, "/dev/shm/ntbt-%s", name) >= len)
                return -ENAMETOOLONG;
        return 0;
}

static int is_pow2(uint64_t v)
{
        return v && !(v & (v - 1));
}

/* Check geometry against the spec's limits; *field names the first bad one. */
static int geom_check(uint32_t mw_count, uint32_t spad_count, uint64_t db_valid_mask,
                      uint64_t mw_size, uint64_t xlat_align, uint32_t heartbeat_ms,
                      uint32_t remote_timeout_ms, const char **field)
{
        int db_bits = __builtin_popcountll(db_valid_mask);

        if (mw_count < SHM_MW_COUNT_MIN || mw_count > SHM_MW_COUNT_MAX)
                return *field = "mw_count (must be 1-8)", -EINVAL;
        if (spad_count < SHM_SPAD_MIN || spad_count > SHM_SPAD_MAX)
                return *field = "spad_count (must be 6-64)", -EINVAL;
        /* Contiguous from bit 0: mask + 1 is a power of two (or 0 for all 64 bits). */
        if (db_bits < SHM_DB_BITS_MIN || (db_valid_mask & (db_valid_mask + 1)) != 0)
                return *field = "db_valid_mask (must be 2-64 contiguous bits from bit 0)", -EINVAL;
        if (!is_pow2(mw_size) || mw_size < SHM_MW_SIZE_MIN || mw_size > SHM_MW_SIZE_MAX)
                return *field = "mw_size (must be a power of two, 4 KiB - 1 GiB)", -EINVAL;
        if (!is_pow2(xlat_align) || xlat_align < SHM_XLAT_ALIGN_MIN || xlat_align > mw_size)
                return *field = "xlat_align (must be a power of two, 4 KiB - mw_size)", -EINVAL;
        if (heartbeat_ms < SHM_HEARTBEAT_MIN || heartbeat_ms > SHM_HEARTBEAT_MAX)
                return *field = "heartbeat_ms (must be 10-10000)", -EINVAL;
        if (remote_timeout_ms < 2 * heartbeat_ms || remote_timeout_ms > SHM_REMOTE_TMO_MAX)
                return *field = "remote_timeout_ms (must be 2 x heartbeat_ms - 60000)", -EINVAL;
        return 0;
}

/* The windows start at the first multiple of mw_size past the register
 * pages, so that each window's bus address in a BAR is mw_size-aligned. */
static uint64_t geom_window_offset(uint64_t mw_size)
{
        return (SHM_HEADER_BYTES + mw_size - 1) / mw_size * mw_size;
}

static uint64_t geom_windows_end(uint32_t mw_count, uint64_t mw_size)
{
        return geom_window_offset(mw_size) + 2ull * mw_count * mw_size;
}

/* A power of two, because QEMU maps the whole file as a PCI BAR. */
static uint64_t geom_file_bytes(uint32_t mw_count, uint64_t mw_size)
{
        uint64_t need = geom_windows_end(mw_count, mw_size), b = 1;

        while (b < need)
                b <<= 1;
        return b;
}

/* posix_fallocate a range, for the spec's "allocated at creation". */
static int alloc_range(int fd, uint64_t off, uint64_t len)
{
        int err = posix_fallocate(fd, (off_t)off, (off_t)len);

        return -err;
}

/* ---- create / remove ---- */

/* v, or d when v is zero (an option not given). */
#define OR_DEFAULT(v, d) ((v) ? (v) : (d))

/* Zero fields of a geometry get the spec's defaults. */
static void geom_defaults(struct ntbt_shm_geom *g)
{
        g->mw_count = OR_DEFAULT(g->mw_count, SHM_MW_COUNT_DEF);
        g->spad_count = OR_DEFAULT(g->spad_count, SHM_SPAD_DEF);
        g->db_bits = OR_DEFAULT(g->db_bits, SHM_DB_BITS_DEF);
        g->mw_size = OR_DEFAULT(g->mw_size, SHM_MW_SIZE_DEF);
        g->xlat_align = OR_DEFAULT(g->xlat_align, SHM_XLAT_ALIGN_DEF);
        g->heartbeat_ms = OR_DEFAULT(g->heartbeat_ms, SHM_HEARTBEAT_DEF);
        /* The spec's 1 s, or ten beats if they are slower. */
        g->remote_timeout_ms = OR_DEFAULT(
            g->remote_timeout_ms,
            g->heartbeat_ms > SHM_REMOTE_TMO_DEF / 10 ? g->heartbeat_ms * 10 : SHM_REMOTE_TMO_DEF);
}

/* A geometry within the spec's limits; *db_mask from its db_bits. */
static int geom_validate(const char *name, const struct ntbt_shm_geom *g, uint64_t *db_mask)
{
        const char *field = NULL;
        int ret;

        if (g->db_bits > SHM_DB_BITS_MAX) {
                log_err("%s: db_bits %u out of range 2-64", name, g->db_bits);
                return -EINVAL;
        }
        *db_mask = g->db_bits == 64 ? ~0ull : (1ull << g->db_bits) - 1;
        ret = geom_check(g->mw_count, g->spad_count, *db_mask, g->mw_size, g->xlat_align,
                         g->heartbeat_ms, g->remote_timeout_ms, &field);
        if (ret)
                log_err("%s: bad %s", name, field);
        return ret;
}

/* A new file of file_bytes at path, with room for the registers and windows:
 * the fd, or -errno (and no file). */
static int shm_file_create(const char *path, const struct ntbt_shm_geom *g, uint64_t file_bytes)
{
        int fd, ret;

        fd = util_open_hostile(path, &(struct hostile_open){.flags = O_RDWR | O_CREAT | O_EXCL});
        if (fd < 0)
                return fd;
        if (ftruncate(fd, (off_t)file_bytes) < 0) {
                ret = -errno;
                goto fail_unlink;
        }
        /* The register pages and the windows get their space now, so a full
         * file system is this error and never a SIGBUS at first touch; the
         * padding nobody touches may stay a hole. */
        ret = alloc_range(fd, 0, SHM_HEADER_BYTES);
        if (!ret)
                ret = alloc_range(fd, geom_window_offset(g->mw_size),
                                  2ull * g->mw_count * g->mw_size);
        if (ret) {
                log_err("%s: cannot allocate %llu bytes for the device: %s", path,
                        (unsigned long long)(SHM_HEADER_BYTES + 2ull * g->mw_count * g->mw_size),
                        strerror(-ret));
                goto fail_unlink;
        }
        return fd;

fail_unlink:
        unlink(path);
        close(fd);
        return ret;
}

/* The header, magic last: until then nobody opens the file. */
static int shm_hdr_write(int fd, const struct ntbt_shm_geom *g, uint64_t db_mask,
                         uint64_t file_bytes)
{
        struct shm_hdr *hdr;
        uint64_t magic;
        void *base;

        base = mmap(NULL, SHM_HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED)
                return -errno;
        hdr = base;
        /* Nobody can validate the file before the magic is there, so plain
         * relaxed stores are enough for the fields; the magic's release store
         * publishes them all. */
        store_relaxed(&hdr->format, SHM_FORMAT);
        store_relaxed(&hdr->header_bytes, SHM_HEADER_BYTES);
        store_relaxed(&hdr->mw_count, g->mw_count);
        store_relaxed(&hdr->spad_count, g->spad_count);
        store_relaxed(&hdr->db_valid_mask, db_mask);
        store_relaxed(&hdr->mw_size, g->mw_size);
        store_relaxed(&hdr->xlat_align, g->xlat_align);
        store_relaxed(&hdr->file_bytes, file_bytes);
        store_relaxed(&hdr->heartbeat_ms, g->heartbeat_ms);
        store_relaxed(&hdr->remote_timeout_ms, g->remote_timeout_ms);
        store_relaxed(&hdr->window_offset, geom_window_offset(g->mw_size));
        memcpy(&magic, SHM_MAGIC, 8);
        store_release((uint64_t *)(void *)hdr->magic, magic);
        munmap(base, SHM_HEADER_BYTES);
        return 0;
}

int ntbt_shm_create(const char *name, const struct ntbt_shm_geom *geom)
{
        struct ntbt_shm_geom g = {.size = sizeof(g)};
        uint64_t db_mask, file_bytes;
        char path[PATH_MAX];
        int fd, ret;

        ret = geom ? abi_in(&g, sizeof(g), geom, ABI_OPTS_VER0) : 0;
        if (ret)
                return ret;
        ret = ntbt_shm_path(name, path, sizeof(path));
        if (ret) {
                log_err("%s: bad device name (1-64 of [A-Za-z0-9_.-], or an absolute path)",
                        name ? name : "(null)");
                return ret;
        }
        geom_defaults(&g);
        ret = geom_validate(name, &g, &db_mask);
        if (ret)
                return ret;
        file_bytes = geom_file_bytes(g.mw_count, g.mw_size);
        fd = shm_file_create(path, &g, file_bytes);
        if (fd < 0)
                return fd;
        ret = shm_hdr_write(fd, &g, db_mask, file_bytes);
        if (ret)
                unlink(path);
        close(fd);
        return ret;
}

int ntbt_shm_remove(const char *name)
{
        char path[PATH_MAX], magic[8] = {0};
        struct hostile_open h = {.flags = O_RDONLY | O_NONBLOCK, .type = S_IFREG};
        int fd, ret = ntbt_shm_path(name, path, sizeof(path));
        ssize_t n;

        if (ret)
                return ret;
        /* Only what is an ntbt device: `ntbt dev rm /etc/passwd` must not
         * delete it.  No symlink (O_NOFOLLOW), no FIFO (O_NONBLOCK, then a
         * regular file), and the magic of format 2 or 1.  A file with no
         * magic yet (a creator that died) is ours only under /dev/shm. */
        fd = util_open_hostile(path, &h);
        if (fd < 0 && h.why == HOSTILE_OPEN) {
                if (fd == -ELOOP)
                        log_err("%s: is a symbolic link; not removing it", path);
                return fd;
        }
        if (fd < 0) {
                log_err("%s: not a regular file; not removing it", path);
                return -EINVAL;
        }
        n = pread(fd, magic, sizeof(magic), 0);
        close(fd);
        if (memcmp(magic, SHM_MAGIC, 8) && memcmp(magic, SHM_MAGIC_V1, 8) &&
            (name[0] == '/' || (n > 0 && memcmp(magic, "\0\0\0\0\0\0\0\0", (size_t)n)))) {
                log_err("%s: not an ntbt device (no NTBTSHM magic); not removing it", path);
                return -EINVAL;
        }
        return unlink(path) ? -errno : 0;
}

/* ---- open and validate ---- */

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
        return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/*
 * Every header field is checked against the spec's limits and the file's
 * real size, so that a malformed file never leads to an access outside the
 * mapping (shm_regs.h).
 */
static int hdr_check_magic(const char *path, const uint8_t *raw)
{
        if (memcmp(raw, SHM_MAGIC, 8) == 0)
                return 0;
        if (memcmp(raw, SHM_MAGIC_V1, 8) == 0) {
                log_err("%s: shm device format 1 (an older ntbt); this build reads format "
                        "2: remove it and create it again (ntbt dev rm, ntbt dev create)",
                        path);
                return -EPROTO;
        }
        if (memcmp(raw, "\0\0\0\0\0\0\0\0", 8) != 0) {
                log_err("%s: wrong magic (not an ntbt shm device)", path);
                return -EINVAL;
        }
        return -EAGAIN; /* not initialised yet: the creator writes the magic last */
}

static void hdr_read_geom(const uint8_t *raw, struct shm_geom *g)
{
        g->mw_count = le32(raw + 0x10);
        g->spad_count = le32(raw + 0x14);
        g->db_valid_mask = le64(raw + 0x18);
        g->mw_size = le64(raw + 0x20);
        g->xlat_align = le64(raw + 0x28);
        g->file_bytes = le64(raw + 0x30);
        g->heartbeat_ms = le32(raw + 0x3C);
        g->remote_timeout_ms = le32(raw + 0x40);
        g->window_offset = le64(raw + 0x48);
}

/* The sizes the geometry implies against the header's and the file's. */
static int hdr_check_sizes(const char *path, const struct shm_geom *g, uint64_t file_size)
{
        if (g->file_bytes != geom_file_bytes(g->mw_count, g->mw_size)) {
                log_err("%s: file_bytes %llu, the geometry needs %llu", path,
                        (unsigned long long)g->file_bytes,
                        (unsigned long long)geom_file_bytes(g->mw_count, g->mw_size));
                return -EINVAL;
        }
        if (g->window_offset != geom_window_offset(g->mw_size)) {
                log_err("%s: window_offset 0x%llx, the geometry needs 0x%llx", path,
                        (unsigned long long)g->window_offset,
                        (unsigned long long)geom_window_offset(g->mw_size));
                return -EINVAL;
        }
        if (file_size != g->file_bytes) {
                log_err("%s: size mismatch: file is %llu bytes, header says %llu", path,
                        (unsigned long long)file_size, (unsigned long long)g->file_bytes);
                return -EINVAL;
        }
        return 0;
}

/*
 * Every header field is checked against the spec's limits and the file's
 * real size, so that a malformed file never leads to an access outside the
 * mapping (shm_regs.h).
 */
int shm_hdr_parse(const char *path, const uint8_t *raw, size_t n, uint64_t file_size,
                  struct shm_geom *g)
{
        const char *field = NULL;
        int ret;

        ret = hdr_check_magic(path, raw);
        if (ret)
                return ret;
        if (n < SHM_HDR_READ || file_size < SHM_HEADER_BYTES) {
                log_err("%s: truncated (%llu bytes, the header alone is 0x3000)", path,
                        (unsigned long long)file_size);
                return -EINVAL;
        }
        if (le32(raw + 0x08) != SHM_FORMAT) {
                log_err("%s: format %u, this build reads format %u", path, le32(raw + 0x08),
                        SHM_FORMAT);
                return -EPROTO;
        }
        if (le32(raw + 0x0C) != SHM_HEADER_BYTES) {
                log_err("%s: header_bytes 0x%x, must be 0x3000", path, le32(raw + 0x0C));
                return -EINVAL;
        }
        hdr_read_geom(raw, g);
        ret = geom_check(g->mw_count, g->spad_count, g->db_valid_mask, g->mw_size, g->xlat_align,
                         g->heartbeat_ms, g->remote_timeout_ms, &field);
        if (ret) {
                log_err("%s: bad %s", path, field);
                return ret;
        }
        return hdr_check_sizes(path, g, file_size);
}

/* Open flags of shm_map_open. */
#define SHM_OPEN_RW        0x1 /* read-write (a port will be claimed) */
#define SHM_OPEN_SHARED_OK 0x2 /* shared=1: accept another owner or group/other write */

/*
 * A file that someone else can write is a channel they can read and inject
 * on: whoever created /dev/shm/ntbt-NAME first owns the "link".  Refuse a
 * device file that is not ours or that group or others may write, unless
 * the device string says shared=1.
 */
static int check_owner(const char *path, const struct stat *st, int flags)
{
        if (!(flags & SHM_OPEN_RW) || (flags & SHM_OPEN_SHARED_OK))
                return 0;
        if (st->st_uid != geteuid()) {
                log_err("%s: owned by uid %u, not by us (uid %u): another user could read and "
                        "inject data; refusing it (add shared=1 to the device string to allow "
                        "it)",
                        path, (unsigned)st->st_uid, (unsigned)geteuid());
                return -EPERM;
        }
        if (st->st_mode & (S_IWGRP | S_IWOTH)) {
                log_err("%s: mode %04o lets %s write it: another user could read and inject "
                        "data; refusing it (chmod go-w, or add shared=1 to the device string)",
                        path, (unsigned)(st->st_mode & 07777),
                        st->st_mode & S_IWOTH ? "others" : "the group");
                return -EPERM;
        }
        return 0;
}

/* The checked header of an open device file into *g.  The creator writes the
 * magic last: wait up to a second for it. */
static int shm_wait_header(const char *path, int fd, int flags, struct shm_geom *g)
{
        int64_t deadline = now_ns() + NS_PER_SEC;
        uint8_t raw[SHM_HDR_READ];
        struct stat st;
        ssize_t n;
        int ret;

        for (;;) {
                /* Again each time: the size grows as the creator works. */
                if (fstat(fd, &st) < 0)
                        return -errno;
                ret = check_owner(path, &st, flags);
                if (ret)
                        return ret;
                memset(raw, 0, sizeof(raw));
                n = pread(fd, raw, sizeof(raw), 0);
                if (n < 0)
                        return -errno;
                ret = shm_hdr_parse(path, raw, (size_t)n, (uint64_t)st.st_size, g);
                if (ret != -EAGAIN)
                        return ret;
                if (now_ns() > deadline) {
                        log_err("%s: no magic after 1 s (file not initialised)", path);
                        return -EINVAL;
                }
                nanosleep(&(struct timespec){0, 10 * NS_PER_MS}, NULL);
        }
}

/* Open and map a device file: its header is checked (shm_hdr_parse) before
 * anything is mapped. */
static int shm_map_open(const char *name, int flags, struct shm_map *m)
{
        int writable = flags & SHM_OPEN_RW;
        struct hostile_open h = {.flags = (writable ? O_RDWR : O_RDONLY) | O_NONBLOCK,
                                 .type = S_IFREG};
        char path[PATH_MAX];
        int fd, ret;

        memset(m, 0, sizeof(*m));
        m->fd = -1;
        ret = ntbt_shm_path(name, path, sizeof(path));
        if (ret) {
                log_err("%s: bad device name (1-64 of [A-Za-z0-9_.-], or an absolute path)", name);
                return ret;
        }
        /* O_NONBLOCK: a FIFO planted at the path must not block the open;
         * the type check then refuses anything but a regular file. */
        fd = util_open_hostile(path, &h);
        if (fd == -ELOOP && h.why == HOSTILE_OPEN)
                log_err("%s: is a symbolic link; refusing it", path);
        else if (fd < 0 && h.why == HOSTILE_OPEN)
                log_err("%s: cannot open: %s", path, strerror(-fd));
        else if (fd < 0 && h.why == HOSTILE_TYPE)
                log_err("%s: not a regular file", path);
        if (fd < 0)
                return fd;
        ret = shm_wait_header(path, fd, flags, &m->g);
        if (ret)
                goto fail;
        m->len = (size_t)m->g.file_bytes;
        m->base =
            mmap(NULL, m->len, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
        if (m->base == MAP_FAILED) {
                ret = -errno;
                log_err("%s: mmap: %s", path, strerror(-ret));
                goto fail;
        }
        m->fd = fd;
        m->hdr = (struct shm_hdr *)(void *)m->base;
        return 0;
fail:
        close(fd);
        return ret;
}

static void shm_map_close(struct shm_map *m)
{
        if (m->base)
                munmap(m->base, m->len);
        if (m->fd >= 0)
                close(m->fd);
        m->base = NULL;
        m->fd = -1;
}

static struct shm_port *map_port(struct shm_map *m, int p)
{
        return (struct shm_port *)(void *)(m->base + SHM_PORT_OFFSET(p));
}

/* Inbound window n of port p. */
static uint8_t *map_window(struct shm_map *m, int p, int n)
{
        return m->base + m->g.window_offset +
               ((uint64_t)p * m->g.mw_count + (uint64_t)n) * m->g.mw_size;
}

static void bump_link_seq(struct shm_map *m)
{
        /* Every change of state, pid or link_enabled is followed by this
         * increment (seq_cst, so it is ordered after that change), then a wake. */
        fetch_add_sc(&m->hdr->link_seq, 1);
        futex_wake_shared(&m->hdr->link_seq, INT_MAX);
}

/* ---- process liveness ---- */

static int pidfd_open_(pid_t pid)
{
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* 1 if the pidfd's process has exited (a zombie counts as dead). */
static int pidfd_exited(int pidfd)
{
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};

        return poll(&pfd, 1, 0) > 0;
}

static int pid_alive(uint32_t pid)
{
        int fd, dead;

        if (pid == 0 || pid > INT_MAX)
                return 0;
        fd = pidfd_open_((pid_t)pid);
        if (fd < 0)
                return errno == ESRCH ? 0 : (kill((pid_t)pid, 0) == 0 || errno == EPERM);
        dead = pidfd_exited(fd);
        close(fd);
        return !dead;
}

/* ---- claim / release ---- */

static void port_reset(struct shm_map *m, struct shm_port *pt)
{
        uint32_t i;

        /* Resets of a port we now own; seq_cst like every register access. */
        store_sc(&pt->db, 0);
        store_sc(&pt->db_mask, 0);
        for (i = 0; i < m->g.spad_count; i++)
                store_sc(&pt->spad[i], 0);
        for (i = 0; i < m->g.mw_count; i++)
                store_sc(&pt->xlat_size[i], 0);
        store_sc(&pt->link_enabled, 0);
}

/*
 * Has the owner of a claimed port gone, as of generation gen?  1 gone, 0
 * alive, -EAGAIN if the port changed hands meanwhile (look again).  A process
 * owner of this host is judged by its pid; any other by a heartbeat that
 * stands still for remote_timeout_ms by our clock, which this watches (a live
 * owner answers within about heartbeat_ms).
 */
static int owner_gone(struct shm_map *m, struct shm_port *pt, uint32_t gen)
{
        uint32_t kind = load_sc(&pt->owner_kind), pid = load_sc(&pt->pid);
        uint32_t hb = load_sc(&pt->heartbeat);
        int64_t deadline = now_ns() + m->g.remote_timeout_ms * NS_PER_MS;
        int64_t step = m->g.heartbeat_ms * NS_PER_MS / 4;

        if (kind == SHM_OWNER_PROCESS) {
                if (pid == (uint32_t)getpid())
                        return 0; /* another handle of ours */
                if (pid_alive(pid))
                        return 0;
                /* Dead, as far as this pid goes: but a claimant that takes
                 * no claim lock (a guest's driver, another program) may
                 * have swapped the generation and not yet written its own
                 * kind and pid.  It does so within a few instructions; a
                 * port that stays as it was for a quarter beat is the dead
                 * owner's. */
                sleep_ns(step);
                if (load_sc(&pt->generation) != gen || load_sc(&pt->state) != SHM_PORT_CLAIMED ||
                    load_sc(&pt->owner_kind) != kind || load_sc(&pt->pid) != pid ||
                    load_sc(&pt->heartbeat) != hb)
                        return -EAGAIN;
                return 1;
        }
        while (now_ns() < deadline) {
                if (load_sc(&pt->generation) != gen || load_sc(&pt->state) != SHM_PORT_CLAIMED)
                        return -EAGAIN;
                if (load_sc(&pt->heartbeat) != hb)
                        return 0;
                sleep_ns(step);
        }
        return 1;
}

/*
 * Claim port p: 0 on success, -EBUSY if a live owner holds it.  With
 * takeover, a port whose owner is gone is taken by compare-and-swap of its
 * generation, so that of two claimants exactly one wins.
 */
static int port_claim(struct shm_dev *s, int p, int takeover)
{
        struct shm_port *pt = map_port(&s->map, p);
        uint32_t me = (uint32_t)getpid();

        for (;;) {
                uint32_t state = SHM_PORT_FREE, gen;
                int gone;

                if (cas_sc(&pt->state, &state, SHM_PORT_CLAIMED)) {
                        store_sc(&pt->owner_kind, SHM_OWNER_PROCESS);
                        store_sc(&pt->pid, me);
                        s->generation = fetch_add_sc(&pt->generation, 1) + 1;
                        break;
                }
                if (!takeover)
                        return -EBUSY;
                gen = load_sc(&pt->generation);
                state = load_sc(&pt->state);
                if (state == SHM_PORT_FREE)
                        continue; /* released meanwhile: try the claim again */
                if (state != SHM_PORT_CLAIMED) {
                        /* Neither free nor claimed: no owner that follows the
                         * spec wrote it, and no claim can ever succeed on it
                         * (looking again would spin for ever). */
                        log_warn("port %d: state %u is neither free (0) nor claimed (1); "
                                 "leaving it alone",
                                 p, state);
                        return -EBUSY;
                }
                gone = owner_gone(&s->map, pt, gen);
                if (gone == 0)
                        return -EBUSY;
                if (gone < 0 || !cas_sc(&pt->generation, &gen, gen + 1))
                        continue; /* someone else moved first: start again */
                s->generation = gen + 1;
                store_sc(&pt->owner_kind, SHM_OWNER_PROCESS);
                store_sc(&pt->pid, me);
                break;
        }
        s->pid = me;
        /* A beat at once: an observer that started watching the dead owner's
         * heartbeat sees the port alive again. */
        fetch_add_sc(&pt->heartbeat, 1);
        port_reset(&s->map, pt);
        bump_link_seq(&s->map);
        return 0;
}

/*
 * The claim lock: an exclusive flock() on the device file, held by a process
 * of this host around its claim.  The spec's takeover has a window: the
 * winner moves `generation` on, then writes its `pid`; a second claimant
 * that reads the new generation and the old, dead pid in between judges the
 * port's owner gone and takes the port from the winner, and both believe
 * they own it.  Claimants on this host serialise on the lock, so the second
 * reads the winner's pid.  (A remote owner cannot take the lock; its
 * driver judges a port gone only after remote_timeout_ms without a beat,
 * far longer than the window.)  The file may be one other users can reach
 * (shared=1), so the lock is waited for with a bound: long enough for two
 * claims that each judge a remote owner (remote_timeout_ms), then -EBUSY.
 */
static uint32_t claim_lock_ms(const struct shm_map *m)
{
        return 2 * m->g.remote_timeout_ms + 1000;
}

static int claim_lock(struct shm_map *m)
{
        int64_t deadline = now_ns() + (int64_t)claim_lock_ms(m) * NS_PER_MS;

        while (flock(m->fd, LOCK_EX | LOCK_NB)) {
                if (errno == EINTR)
                        continue;
                if (errno != EWOULDBLOCK)
                        return -errno;
                if (now_ns() >= deadline)
                        return -EBUSY;
                sleep_ns(NS_PER_MS);
        }
        return 0;
}

static void claim_unlock(struct shm_map *m)
{
        flock(m->fd, LOCK_UN);
}

/* 1 while this handle still owns its port (nobody took it over). */
static int own_port(struct shm_dev *s)
{
        return load_sc(&s->me->state) == SHM_PORT_CLAIMED && load_sc(&s->me->pid) == s->pid &&
               load_sc(&s->me->generation) == s->generation;
}

/* ---- heartbeat ---- */

/* Beats our port's heartbeat every heartbeat_ms / 2 until told to stop:
 * remote peers judge this process alive by it. */
static void *hb_main(void *arg)
{
        struct shm_dev *s = arg;
        int64_t period = s->map.g.heartbeat_ms * NS_PER_MS / 2;
        struct timespec ts;

        pthread_mutex_lock(&s->hb_lock);
        while (!s->hb_stop) {
                int64_t t;

                /* Only while the port is ours: a port taken over from us
                 * beats for its new owner, not for us. */
                if (own_port(s))
                        fetch_add_sc(&s->me->heartbeat, 1);
                t = now_ns() + period;
                ts.tv_sec = t / NS_PER_SEC;
                ts.tv_nsec = t % NS_PER_SEC;
                pthread_cond_timedwait(&s->hb_cond, &s->hb_lock, &ts);
        }
        pthread_mutex_unlock(&s->hb_lock);
        return NULL;
}

static int hb_start(struct shm_dev *s)
{
        pthread_condattr_t ca;
        int err;

        pthread_mutex_init(&s->hb_lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* now_ns()'s clock */
        pthread_cond_init(&s->hb_cond, &ca);
        pthread_condattr_destroy(&ca);
        err = pthread_create(&s->hb_thread, NULL, hb_main, s);
        if (err) {
                pthread_cond_destroy(&s->hb_cond);
                pthread_mutex_destroy(&s->hb_lock);
        }
        return -err;
}

static void hb_stop(struct shm_dev *s)
{
        pthread_mutex_lock(&s->hb_lock);
        s->hb_stop = 1;
        pthread_cond_signal(&s->hb_cond);
        pthread_mutex_unlock(&s->hb_lock);
        pthread_join(s->hb_thread, NULL);
        pthread_cond_destroy(&s->hb_cond);
        pthread_mutex_destroy(&s->hb_lock);
}

static void port_release(struct shm_dev *s)
{
        if (own_port(s)) {
                store_sc(&s->me->link_enabled, 0);
                store_sc(&s->me->owner_kind, SHM_OWNER_NONE);
                store_sc(&s->me->state, SHM_PORT_FREE);
                bump_link_seq(&s->map);
        }
}

/* The parser (dev.c) checks the values. */
static const struct dev_opt shm_opts[] = {
    {"port", DEV_OPT_BOOL, 0, 1, "must be 0 or 1"},
    {"nt", DEV_OPT_BOOL, 0, 1, "0 or 1"},
    {"shared", DEV_OPT_BOOL, 0, 1, "0 or 1"},
    {NULL, DEV_OPT_BOOL, 0, 0, NULL},
};

/* Claim a port of first..last for s: a free one first; only then one whose
 * owner is gone (judging a remote owner gone takes remote_timeout_ms).  Under
 * the claim lock, so that of two processes of this host taking over one port
 * the second sees the first's pid, not the dead owner's. */
static int shm_claim_port(struct ntbt_dev *dev, struct shm_dev *s, int first, int last)
{
        int ret, p, pass;

        ret = claim_lock(&s->map);
        if (ret) {
                if (ret == -EBUSY)
                        log_err("%s: another process has been claiming a port for %u ms: "
                                "giving up",
                                dev->spec, claim_lock_ms(&s->map));
                else
                        log_err("%s: cannot take the claim lock: %s", dev->spec, strerror(-ret));
                return ret;
        }
        ret = -EBUSY;
        for (pass = 0; pass < 2 && ret; pass++)
                for (p = first; p <= last && ret; p++) {
                        ret = port_claim(s, p, pass);
                        if (!ret)
                                s->port = p;
                }
        claim_unlock(&s->map);
        if (ret)
                log_err("%s: %s busy (claimed by a live owner)", dev->spec,
                        first == last ? "port" : "both ports");
        return ret;
}

static int shm_open_dev(struct ntbt_dev *dev, const struct dev_args *args)
{
        uint64_t port, nt = 0, shared_ok = 0;
        struct shm_dev *s;
        int ret, first = 0, last = 1;

        if (dev_args_num(args, "port", &port))
                first = last = (int)port;
        dev_args_num(args, "nt", &nt);
        dev_args_num(args, "shared", &shared_ok);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->nt = (int)nt;
        ret = shm_map_open(args->name, SHM_OPEN_RW | (shared_ok ? SHM_OPEN_SHARED_OK : 0), &s->map);
        if (ret)
                goto fail_free;
        ret = shm_claim_port(dev, s, first, last);
        if (ret)
                goto fail_unmap;
        s->me = map_port(&s->map, s->port);
        s->peer = map_port(&s->map, 1 - s->port);
        s->peer_pidfd = -1;
        ret = hb_start(s);
        if (ret) {
                log_err("%s: cannot start the heartbeat thread: %s", dev->spec, strerror(-ret));
                port_release(s);
                goto fail_unmap;
        }
        pthread_mutex_init(&s->peer_lock, NULL);
        dev->priv = s;
        return 0;

fail_unmap:
        shm_map_close(&s->map);
fail_free:
        free(s);
        return ret;
}

static void shm_close(struct ntbt_dev *dev)
{
        struct shm_dev *s = to_shm(dev);

        hb_stop(s);
        port_release(s);
        if (s->peer_pidfd >= 0)
                close(s->peer_pidfd);
        pthread_mutex_destroy(&s->peer_lock);
        shm_map_close(&s->map);
        free(s);
}

static int shm_port(struct ntbt_dev *dev)
{
        return to_shm(dev)->port;
}

/* ---- link ---- */

/*
 * Is the peer port's owner alive?  A process owner by its pid (a pidfd cached
 * per pid and generation); a remote owner by its heartbeat, which must have
 * moved within remote_timeout_ms of our clock (a new generation or owner
 * starts the watch afresh).
 */
static int peer_alive(struct shm_dev *s, uint32_t kind, uint32_t pid, uint32_t gen)
{
        int alive;

        if (kind == SHM_OWNER_PROCESS && pid == s->pid)
                return 1; /* two handles in one process */
        if (kind != SHM_OWNER_PROCESS && kind != SHM_OWNER_REMOTE)
                return 0; /* mid-claim, or garbage */
        pthread_mutex_lock(&s->peer_lock);
        if (s->peer_kind != kind || s->peer_pid != pid || s->peer_gen != gen) {
                if (s->peer_pidfd >= 0)
                        close(s->peer_pidfd);
                s->peer_pidfd = kind == SHM_OWNER_PROCESS && pid && pid <= INT_MAX
                                    ? pidfd_open_((pid_t)pid)
                                    : -1;
                s->peer_kind = kind;
                s->peer_pid = pid;
                s->peer_gen = gen;
                s->peer_hb = load_sc(&s->peer->heartbeat);
                s->peer_hb_at = now_coarse_ns();
        }
        if (kind == SHM_OWNER_REMOTE) {
                uint32_t hb = load_sc(&s->peer->heartbeat);
                int64_t now = now_coarse_ns();

                if (hb != s->peer_hb) {
                        s->peer_hb = hb;
                        s->peer_hb_at = now;
                }
                alive = now - s->peer_hb_at < s->map.g.remote_timeout_ms * NS_PER_MS;
        } else {
                alive = s->peer_pidfd >= 0 ? !pidfd_exited(s->peer_pidfd) : pid_alive(pid);
        }
        pthread_mutex_unlock(&s->peer_lock);
        return alive;
}

static int shm_link_is_up(struct ntbt_dev *dev)
{
        struct shm_dev *s = to_shm(dev);
        uint32_t pgen, ppid, pkind;

        if (!own_port(s) || !load_sc(&s->me->link_enabled))
                return 0;
        /* Read generation before and after the owner so a restart in between is seen. */
        pgen = load_sc(&s->peer->generation);
        if (load_sc(&s->peer->state) != SHM_PORT_CLAIMED || !load_sc(&s->peer->link_enabled))
                return 0;
        pkind = load_sc(&s->peer->owner_kind);
        ppid = load_sc(&s->peer->pid);
        if (load_sc(&s->peer->generation) != pgen)
                return 0;
        return peer_alive(s, pkind, ppid, pgen);
}

static int set_link_enabled(struct ntbt_dev *dev, uint32_t v)
{
        struct shm_dev *s = to_shm(dev);

        if (!own_port(s))
                return -ENODEV;
        store_sc(&s->me->link_enabled, v);
        bump_link_seq(&s->map);
        return 0;
}

static int shm_link_enable(struct ntbt_dev *dev)
{
        return set_link_enabled(dev, 1);
}

static int shm_link_disable(struct ntbt_dev *dev)
{
        return set_link_enabled(dev, 0);
}

static int shm_link_wait(struct ntbt_dev *dev, int was_up, int64_t timeout_ns)
{
        struct shm_dev *s = to_shm(dev);
        int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;
        int64_t slice = s->map.g.heartbeat_ms * NS_PER_MS;

        /* A remote owner's changes wake nobody: look at least every
         * heartbeat_ms (and every LINK_POLL_NS for a killed process peer). */
        if (slice > LINK_POLL_NS)
                slice = LINK_POLL_NS;
        for (;;) {
                uint32_t seq = load_sc(&s->map.hdr->link_seq);
                int up = shm_link_is_up(dev);
                int64_t left = deadline - now_ns();

                if (up != !!was_up || left <= 0)
                        return up;
                /* link_seq wakes us for every clean change; the slice bounds
                 * how long a killed peer goes unnoticed. */
                futex_wait_shared(&s->map.hdr->link_seq, seq, left < slice ? left : slice);
        }
}

static uint32_t shm_link_events(struct ntbt_dev *dev)
{
        /* link_seq moves on every claim, release and link_enable/disable. */
        return load_sc(&to_shm(dev)->map.hdr->link_seq);
}

/* ---- windows ---- */

static int check_widx(struct shm_dev *s, int widx)
{
        return widx >= 0 && (uint32_t)widx < s->map.g.mw_count ? 0 : -EINVAL;
}

static int shm_mw_count(struct ntbt_dev *dev)
{
        return (int)to_shm(dev)->map.g.mw_count;
}

static int shm_mw_get_align(struct ntbt_dev *dev, int widx, uint64_t *addr_align,
                            uint64_t *size_align, uint64_t *size_max)
{
        struct shm_dev *s = to_shm(dev);

        if (check_widx(s, widx))
                return -EINVAL;
        if (addr_align)
                *addr_align = s->map.g.xlat_align;
        if (size_align)
                *size_align = s->map.g.xlat_align;
        if (size_max)
                *size_max = s->map.g.mw_size;
        return 0;
}

static int shm_mw_set_trans(struct ntbt_dev *dev, int widx, uint64_t size)
{
        struct shm_dev *s = to_shm(dev);

        if (check_widx(s, widx) || size == 0 || size > s->map.g.mw_size ||
            size % s->map.g.xlat_align)
                return -EINVAL;
        store_sc(&s->me->xlat_size[widx], size);
        return 0;
}

static int shm_mw_clear_trans(struct ntbt_dev *dev, int widx)
{
        struct shm_dev *s = to_shm(dev);

        if (check_widx(s, widx))
                return -EINVAL;
        store_sc(&s->me->xlat_size[widx], 0);
        return 0;
}

static int shm_peer_mw_size(struct ntbt_dev *dev, int widx, uint64_t *size)
{
        struct shm_dev *s = to_shm(dev);

        if (check_widx(s, widx))
                return -EINVAL;
        *size = s->map.g.mw_size;
        return 0;
}

static int shm_mw_inbound(struct ntbt_dev *dev, int widx, void **base, uint64_t *size)
{
        struct shm_dev *s = to_shm(dev);

        if (check_widx(s, widx))
                return -EINVAL;
        *base = map_window(&s->map, s->port, widx);
        *size = s->map.g.mw_size;
        return 0;
}

/* The outbound window widx, with [off, off+len) checked against it. */
static uint8_t *outbound(struct shm_dev *s, int widx, uint64_t off, uint64_t len)
{
        if (check_widx(s, widx) || off > s->map.g.mw_size || len > s->map.g.mw_size - off)
                return NULL;
        return map_window(&s->map, 1 - s->port, widx) + off;
}

#if defined(__x86_64__)
#include <emmintrin.h>
/*
 * Copy with non-temporal (streaming) stores: they bypass the cache and are
 * weakly ordered even on x86, so every later ordering point (wmb, flush)
 * issues an sfence when the handle uses them.
 */
static void copy_nt(uint8_t *dst, const uint8_t *src, size_t len)
{
        size_t head = (16 - ((uintptr_t)dst & 15)) & 15;

        if (head > len)
                head = len;
        memcpy(dst, src, head);
        dst += head, src += head, len -= head;
        for (; len >= 64; dst += 64, src += 64, len -= 64) {
                __m128i a = _mm_loadu_si128((const __m128i *)(const void *)src);
                __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(src + 16));
                __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(src + 32));
                __m128i d = _mm_loadu_si128((const __m128i *)(const void *)(src + 48));

                _mm_stream_si128((__m128i *)(void *)dst, a);
                _mm_stream_si128((__m128i *)(void *)(dst + 16), b);
                _mm_stream_si128((__m128i *)(void *)(dst + 32), c);
                _mm_stream_si128((__m128i *)(void *)(dst + 48), d);
        }
        memcpy(dst, src, len);
}
#define NT_MIN 1024
#endif

/* Orders non-temporal stores before what follows (a no-op without them). */
static void nt_fence(struct shm_dev *s)
{
#if defined(__x86_64__)
        if (s->nt)
                _mm_sfence();
#else
        (void)s;
#endif
}

static int shm_peer_mw_write(struct ntbt_dev *dev, int widx, uint64_t off, const void *src,
                             size_t len)
{
        uint8_t *dst = outbound(to_shm(dev), widx, off, len);

#if defined(__x86_64__)
        if (dst && to_shm(dev)->nt && len >= NT_MIN) {
                copy_nt(dst, src, len);
                return 0;
        }
#endif
        return dev_mw_copy(dst, src, len);
}

/* On x86 the release store is a plain mov. */
static int shm_peer_mw_write32(struct ntbt_dev *dev, int widx, uint64_t off, uint32_t val)
{
        return dev_mw_store32(outbound(to_shm(dev), widx, off, 4), val);
}

static int shm_peer_mw_wmb(struct ntbt_dev *dev, int widx)
{
        if (check_widx(to_shm(dev), widx))
                return -EINVAL;
        /* Earlier window stores before later ones (the kernel's wmb()); the
         * sfence is needed only after non-temporal stores. */
        nt_fence(to_shm(dev));
        smp_wmb();
        return 0;
}

static int shm_peer_mw_flush(struct ntbt_dev *dev, int widx, uint64_t off)
{
        uint8_t *p = outbound(to_shm(dev), widx, off, 4);

        if (!p)
                return -EINVAL;
        /* The patch's ordering fix: a full barrier orders every earlier window
         * store before the doorbell store that follows; the read-back is what
         * drains posted writes on real hardware (here coherent memory needs
         * only the barrier, but the read is kept so the sequence is the same). */
        nt_fence(to_shm(dev));
        smp_mb();
        (void)load_acquire_u32(p);
        return 0;
}

/* The peer's window is a plain mapping of the file, as our stores to it
 * are: a pointer into it is the same path as shm_peer_mw_write's memcpy
 * (the application's stores are plain ones: our wmb's sfence covers
 * non-temporal stores only when nt=1 made ours so). */
static int shm_peer_mw_map(struct ntbt_dev *dev, int widx, void **base, uint64_t *size)
{
        struct shm_dev *s = to_shm(dev);

        if (check_widx(s, widx))
                return -EINVAL;
        *base = map_window(&s->map, 1 - s->port, widx);
        *size = s->map.g.mw_size;
        return 0;
}

/* ---- doorbells ---- */

static uint64_t shm_db_valid_mask(struct ntbt_dev *dev)
{
        return to_shm(dev)->map.g.db_valid_mask;
}

static uint64_t shm_db_read(struct ntbt_dev *dev)
{
        return load_sc(&to_shm(dev)->me->db);
}

static int shm_db_clear(struct ntbt_dev *dev, uint64_t bits)
{
        fetch_and_sc(&to_shm(dev)->me->db, ~bits);
        return 0;
}

static uint64_t shm_db_mask(struct ntbt_dev *dev)
{
        return load_sc(&to_shm(dev)->me->db_mask);
}

static int shm_db_set_mask(struct ntbt_dev *dev, uint64_t bits)
{
        struct shm_dev *s = to_shm(dev);

        fetch_or_sc(&s->me->db_mask, bits & s->map.g.db_valid_mask);
        return 0;
}

static void wake_own_waiters(struct shm_dev *s)
{
        /* Bump db_seq so a waiter between reading it and FUTEX_WAIT does not
         * sleep through this; then wake whoever already sleeps. */
        fetch_add_sc(&s->me->db_seq, 1);
        if (load_sc(&s->me->db_sleepers))
                futex_wake_shared(&s->me->db_seq, INT_MAX);
}

static int shm_db_clear_mask(struct ntbt_dev *dev, uint64_t bits)
{
        struct shm_dev *s = to_shm(dev);

        fetch_and_sc(&s->me->db_mask, ~bits);
        /* Unmasking a pending bit is an interrupt on real hardware. */
        if (load_sc(&s->me->db) & bits)
                wake_own_waiters(s);
        return 0;
}

static int shm_peer_db_set(struct ntbt_dev *dev, uint64_t bits)
{
        struct shm_dev *s = to_shm(dev);

        bits &= s->map.g.db_valid_mask;
        if (!bits)
                return 0;
        /*
         * The spec's order, all seq_cst: OR the bits, bump db_seq, and only
         * then look at db_sleepers.  A waiter increments db_sleepers before
         * re-checking db (shm_db_wait), so either it sees our bits or we see
         * it sleeping and wake it: no lost wake-up, and no system call while
         * the peer polls.
         */
        fetch_or_sc(&s->peer->db, bits);
        fetch_add_sc(&s->peer->db_seq, 1);
        if (load_sc(&s->peer->db_sleepers))
                futex_wake_shared(&s->peer->db_seq, INT_MAX);
        return 0;
}

static int db_pending(struct shm_dev *s, uint64_t bits)
{
        return (load_sc(&s->me->db) & ~load_sc(&s->me->db_mask) & bits) != 0;
}

static int shm_db_wait(struct ntbt_dev *dev, uint64_t bits, int64_t timeout_ns)
{
        struct shm_dev *s = to_shm(dev);
        uint32_t k0 = load_sc(&s->kicks);
        int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;

        for (;;) {
                uint32_t seq = load_sc(&s->me->db_seq);
                int64_t left, nap;

                if (load_sc(&s->kicks) != k0)
                        return -EINTR;
                if (db_pending(s, bits))
                        return 0;
                left = deadline - now_ns();
                if (left <= 0)
                        return -ETIMEDOUT;
                if (!bits) {
                        /* No doorbell can end this wait, so do not count as
                         * a doorbell sleeper: the peer would make a futex
                         * call on every doorbell to wake us for nothing (a
                         * poll-mode transport's event thread waits so, and
                         * its wake-ups stole the pollers' cores).  Only a
                         * kick ends it; a kick after our look at k0 changes
                         * the word, so FUTEX_WAIT returns at once. */
                        futex_wait_shared(&s->kicks, k0, timeout_ns < 0 ? -1 : left);
                        continue;
                }
                nap = timeout_ns < 0 ? -1 : left;
                /* A remote peer rings without FUTEX_WAKE: then sleep at most
                 * 1 ms and look again (spec: a process owner polls). */
                if (load_sc(&s->peer->owner_kind) == SHM_OWNER_REMOTE &&
                    (nap < 0 || nap > REMOTE_DB_POLL_NS))
                        nap = REMOTE_DB_POLL_NS;
                fetch_add_sc(&s->me->db_sleepers, 1);
                /* Re-check after announcing ourselves (see shm_peer_db_set). */
                if (!db_pending(s, bits) && load_sc(&s->kicks) == k0)
                        futex_wait_shared(&s->me->db_seq, seq, nap);
                fetch_sub_sc(&s->me->db_sleepers, 1);
        }
}

static int shm_db_wait_interrupt(struct ntbt_dev *dev)
{
        struct shm_dev *s = to_shm(dev);

        fetch_add_sc(&s->kicks, 1);
        wake_own_waiters(s);
        futex_wake_shared(&s->kicks, INT_MAX); /* waits for no doorbell sleep here */
        return 0;
}

/* ---- scratchpads ---- */

static int shm_spad_count(struct ntbt_dev *dev)
{
        return (int)to_shm(dev)->map.g.spad_count;
}

static uint32_t *spad_ptr(struct shm_dev *s, struct shm_port *pt, int idx)
{
        if (idx < 0 || (uint32_t)idx >= s->map.g.spad_count)
                return NULL;
        return &pt->spad[idx];
}

static int spad_rd(struct shm_dev *s, struct shm_port *pt, int idx, uint32_t *val)
{
        uint32_t *p = spad_ptr(s, pt, idx);

        if (!p)
                return -EINVAL;
        *val = load_sc(p);
        return 0;
}

static int spad_wr(struct shm_dev *s, struct shm_port *pt, int idx, uint32_t val)
{
        uint32_t *p = spad_ptr(s, pt, idx);

        if (!p)
                return -EINVAL;
        store_sc(p, val);
        return 0;
}

static int shm_spad_read(struct ntbt_dev *dev, int idx, uint32_t *val)
{
        return spad_rd(to_shm(dev), to_shm(dev)->me, idx, val);
}

static int shm_spad_write(struct ntbt_dev *dev, int idx, uint32_t val)
{
        return spad_wr(to_shm(dev), to_shm(dev)->me, idx, val);
}

static int shm_peer_spad_read(struct ntbt_dev *dev, int idx, uint32_t *val)
{
        return spad_rd(to_shm(dev), to_shm(dev)->peer, idx, val);
}

static int shm_peer_spad_write(struct ntbt_dev *dev, int idx, uint32_t val)
{
        return spad_wr(to_shm(dev), to_shm(dev)->peer, idx, val);
}

/* ---- inspect ---- */

/*
 * Watch the claimed ports' heartbeats until each has moved, for at most
 * remote_timeout_ms: a live owner beats within heartbeat_ms.  A process owner
 * whose pid is gone is not waited for.
 */
static void watch_heartbeats(struct shm_map *m, struct ntbt_shm_info *info)
{
        int64_t t0 = now_ns(), deadline = t0 + m->g.remote_timeout_ms * NS_PER_MS;
        uint32_t hb0[2];
        int need[2], p;

        for (p = 0; p < 2; p++) {
                struct ntbt_shm_port_info *pi = &info->port[p];

                hb0[p] = pi->heartbeat;
                pi->heartbeat_age_ms = -1;
                need[p] = pi->state == SHM_PORT_CLAIMED &&
                          (pi->owner_kind != SHM_OWNER_PROCESS || pid_alive(pi->pid));
        }
        while ((need[0] || need[1]) && now_ns() < deadline) {
                sleep_ns(NS_PER_MS);
                for (p = 0; p < 2; p++) {
                        if (need[p] && load_sc(&map_port(m, p)->heartbeat) != hb0[p]) {
                                info->port[p].heartbeat_age_ms =
                                    (int32_t)((now_ns() - t0) / NS_PER_MS);
                                need[p] = 0;
                        }
                }
        }
}

/* The registers of the open device m, the heartbeats watched, into info. */
static void shm_info_fill(struct shm_map *m, struct ntbt_shm_info *info)
{
        int p;
        uint32_t i;

        memset(info, 0, sizeof(*info));
        info->size = sizeof(*info);
        info->format = SHM_FORMAT;
        info->mw_count = m->g.mw_count;
        info->spad_count = m->g.spad_count;
        info->db_valid_mask = m->g.db_valid_mask;
        info->mw_size = m->g.mw_size;
        info->xlat_align = m->g.xlat_align;
        info->file_bytes = m->g.file_bytes;
        info->window_offset = m->g.window_offset;
        info->heartbeat_ms = m->g.heartbeat_ms;
        info->remote_timeout_ms = m->g.remote_timeout_ms;
        info->link_seq = load_sc(&m->hdr->link_seq);
        for (p = 0; p < 2; p++) {
                struct shm_port *pt = map_port(m, p);
                struct ntbt_shm_port_info *pi = &info->port[p];

                pi->state = load_sc(&pt->state);
                pi->pid = load_sc(&pt->pid);
                pi->generation = load_sc(&pt->generation);
                pi->link_enabled = load_sc(&pt->link_enabled);
                pi->owner_kind = load_sc(&pt->owner_kind);
                pi->heartbeat = load_sc(&pt->heartbeat);
                pi->db = load_sc(&pt->db);
                pi->db_mask = load_sc(&pt->db_mask);
                pi->db_seq = load_sc(&pt->db_seq);
                pi->db_sleepers = load_sc(&pt->db_sleepers);
                for (i = 0; i < m->g.spad_count; i++)
                        pi->spad[i] = load_sc(&pt->spad[i]);
                for (i = 0; i < m->g.mw_count; i++)
                        pi->xlat_size[i] = load_sc(&pt->xlat_size[i]);
        }
        watch_heartbeats(m, info);
        for (p = 0; p < 2; p++) {
                struct ntbt_shm_port_info *pi = &info->port[p];

                if (pi->state != SHM_PORT_CLAIMED)
                        pi->alive = 0;
                else if (pi->owner_kind == SHM_OWNER_PROCESS)
                        pi->alive = pid_alive(pi->pid);
                else
                        pi->alive = pi->owner_kind == SHM_OWNER_REMOTE && pi->heartbeat_age_ms >= 0;
        }
        info->link_up = info->port[0].alive && info->port[1].alive &&
                        info->port[0].link_enabled == 1 && info->port[1].link_enabled == 1;
}

/* The first version of struct ntbt_shm_info ends at port[] (src/util/abi.h). */
#define SHM_INFO_VER0 ABI_SIZE_TO(struct ntbt_shm_info, port)

int ntbt_shm_inspect(const char *name, struct ntbt_shm_info *info)
{
        struct ntbt_shm_info r;
        struct shm_map m;
        int ret;

        if (!info || abi_out_ok(info, SHM_INFO_VER0))
                return -EINVAL;
        ret = shm_map_open(name, 0, &m);
        if (ret)
                return ret;
        shm_info_fill(&m, &r);
        shm_map_close(&m);
        return abi_out(info, &r, sizeof(r), SHM_INFO_VER0);
}

const struct ntbt_dev_ops shm_dev_ops = {
    .type = "shm",
    .opts = shm_opts,
    .open = shm_open_dev,
    .close = shm_close,
    .port = shm_port,
    .link_is_up = shm_link_is_up,
    .link_enable = shm_link_enable,
    .link_disable = shm_link_disable,
    .link_wait = shm_link_wait,
    .link_events = shm_link_events,
    .mw_count = shm_mw_count,
    .mw_get_align = shm_mw_get_align,
    .mw_set_trans = shm_mw_set_trans,
    .mw_clear_trans = shm_mw_clear_trans,
    .peer_mw_size = shm_peer_mw_size,
    .mw_inbound = shm_mw_inbound,
    .peer_mw_write = shm_peer_mw_write,
    .peer_mw_write32 = shm_peer_mw_write32,
    .peer_mw_wmb = shm_peer_mw_wmb,
    .peer_mw_flush = shm_peer_mw_flush,
    .peer_mw_map = shm_peer_mw_map,
    .db_valid_mask = shm_db_valid_mask,
    .db_read = shm_db_read,
    .db_clear = shm_db_clear,
    .peer_db_set = shm_peer_db_set,
    .db_mask = shm_db_mask,
    .db_set_mask = shm_db_set_mask,
    .db_clear_mask = shm_db_clear_mask,
    .db_wait = shm_db_wait,
    .db_wait_interrupt = shm_db_wait_interrupt,
    .spad_count = shm_spad_count,
    .spad_read = shm_spad_read,
    .spad_write = shm_spad_write,
    .peer_spad_read = shm_peer_spad_read,
    .peer_spad_write = shm_peer_spad_write,
};
