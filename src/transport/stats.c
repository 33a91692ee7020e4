/* SPDX-License-Identifier: MIT */
/*
 * Live per-QP statistics in a file beside the device file (docs/stats.md).
 *
 * Writers: each record has one writer, the QP's owner (the event thread,
 * or the thread calling ntbt_qp_poll), so records need no lock between
 * them.  The header's transport_up is written by the event thread alone.
 * Readers are other processes; a per-record sequence count (a seqlock) lets
 * them tell a torn copy from a whole one.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ntbt/shm.h>
#include <ntbt/stats.h>

#include "../util/barrier.h"
#include "../util/clock.h"
#include "../util/log.h"
#include "transport.h"

#define STATS_MAGIC   "NTBTSTAT"
#define STATS_VERSION 1u
#define PUBLISH_NS    (100 * NS_PER_MS)

/* The file: a header, then qp_count records of rec_size bytes. */
struct stats_hdr {
        char magic[8];
        uint32_t version;
        uint32_t hdr_size;  /* bytes before record 0 */
        uint32_t rec_size;  /* bytes per record */
        uint32_t ncounters; /* u64 counters per record */
        uint32_t qp_count;
        uint32_t pid;
        uint32_t port;
        uint32_t transport_up;
        uint8_t reserved[24];
};

struct stats_rec {
        uint64_t seq; /* odd while the owner rewrites the record */
        uint32_t present, state, tx_mode, poll_mode;
        int64_t update_ns; /* CLOCK_MONOTONIC of the last write */
        uint64_t c[NTBT_STATS_COUNTERS];
};

_Static_assert(sizeof(struct stats_hdr) == 64, "stats header layout");
_Static_assert(sizeof(struct stats_rec) == 32 + 8 * NTBT_STATS_COUNTERS, "stats record layout");
_Static_assert(sizeof(struct ntbt_qp_stats) == 8 + 8 * NTBT_STATS_COUNTERS, "ntbt_qp_stats layout");

#define COUNTER_NAME(name, source, description) #name,
static const char *const names[NTBT_STATS_COUNTERS] = {NTBT_QP_COUNTERS(COUNTER_NAME)};
#undef COUNTER_NAME

const char *ntbt_stats_counter_name(int i)
{
        return i >= 0 && i < NTBT_STATS_COUNTERS ? names[i] : NULL;
}

int ntbt_stats_path(const char *name, int port, char *buf, size_t len)
{
        char dev[4096];
        int ret = ntbt_shm_path(name, dev, sizeof(dev));

        if (ret)
                return ret;
        if (port < 0 || port > 1)
                return -EINVAL;
        if ((size_t)snprintf(buf, len, "%s.stats-%d", dev, port) >= len)
                return -ENAMETOOLONG;
        return 0;
}

/* The NAME of "TYPE:NAME[,options]". */
static int spec_name(const char *spec, char *name, size_t len)
{
        const char *colon = strchr(spec, ':');
        size_t n;

        if (!colon)
                return -EINVAL;
        n = strcspn(colon + 1, ",");
        if (n == 0 || n >= len)
                return -EINVAL;
        memcpy(name, colon + 1, n);
        name[n] = '\0';
        return 0;
}

void stats_open(struct ntbt_transport *t)
{
        char name[256], path[4200];
        struct stats_hdr *h;
        size_t size;
        void *p;
        int fd;

        if (spec_name(ntbt_dev_spec(t->dev), name, sizeof(name)) ||
            ntbt_stats_path(name, ntbt_dev_port(t->dev), path, sizeof(path)))
                return;
        size = sizeof(struct stats_hdr) + t->qp_count * sizeof(struct stats_rec);
        /* A new inode, never a truncated old one: a reader's pread of the old
         * file stays valid. */
        unlink(path);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
                log_info("%s: no live statistics: %s: %s", ntbt_dev_spec(t->dev), path,
                         strerror(errno));
                return;
        }
        if (ftruncate(fd, (off_t)size)) {
                close(fd);
                unlink(path);
                return;
        }
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED) {
                unlink(path);
                return;
        }
        h = p;
        h->version = STATS_VERSION;
        h->hdr_size = sizeof(*h);
        h->rec_size = sizeof(struct stats_rec);
        h->ncounters = NTBT_STATS_COUNTERS;
        h->qp_count = t->qp_count;
        h->pid = (uint32_t)getpid();
        h->port = (uint32_t)ntbt_dev_port(t->dev);
        /* Release: a reader that sees the magic sees the fields above. */
        smp_wmb();
        memcpy(h->magic, STATS_MAGIC, 8);
        t->stats = p;
        t->stats_size = size;
        snprintf(t->stats_path, sizeof(t->stats_path), "%s", path);
}

void stats_close(struct ntbt_transport *t)
{
        if (!t->stats)
                return;
        unlink(t->stats_path);
        munmap(t->stats, t->stats_size);
        t->stats = NULL;
}

void stats_transport_up(struct ntbt_transport *t, int up)
{
        struct stats_hdr *h = t->stats;

        if (h) /* a single word, read on its own: relaxed is enough */
                store_relaxed(&h->transport_up, (uint32_t)up);
}

static struct stats_rec *rec_of(struct ntbt_transport *t, unsigned num)
{
        if (!t->stats || num >= t->qp_count)
                return NULL;
        return (struct stats_rec *)(void *)((uint8_t *)t->stats + sizeof(struct stats_hdr) +
                                            num * sizeof(struct stats_rec));
}

/*
 * Rewrite one record.  Its writers are the QP's owner and, for the transmit
 * counters, whichever thread sends; they never wait for each other: a
 * writer that finds the record being written (odd seq, or the CAS lost)
 * gives up and says so (0), and the owner tries again at its next service.
 */
static int rec_write(struct stats_rec *r, const struct stats_rec *v)
{
        uint64_t seq = load_relaxed(&r->seq);
        int i;

        if ((seq & 1) || !cas_sc(&r->seq, &seq, seq + 1))
                return 0;
        /* Release fence: the odd count is visible before any field below
         * changes, so a reader that copied a changed field sees it odd or
         * moved on. */
        smp_wmb();
        store_relaxed(&r->present, v->present);
        store_relaxed(&r->state, v->state);
        store_relaxed(&r->tx_mode, v->tx_mode);
        store_relaxed(&r->poll_mode, v->poll_mode);
        store_relaxed(&r->update_ns, v->update_ns);
        for (i = 0; i < NTBT_STATS_COUNTERS; i++)
                store_relaxed(&r->c[i], v->c[i]);
        /* Release: the fields above before the even count that vouches for them. */
        store_release(&r->seq, seq + 2);
        return 1;
}

/* owner: called by the QP's owner, which alone knows its state; a sender
 * keeps the state the owner last published. */
int stats_publish(struct ntbt_qp *qp, int64_t now, int owner)
{
        struct stats_rec *r = rec_of(qp->t, qp->num);
        struct ntbt_qp_stats st = {.size = sizeof(st)};
        struct stats_rec v = {0};
        int i = 0;

        if (!r)
                return 0;
        store_relaxed(&qp->stats_next, now + PUBLISH_NS);
        if (ntbt_qp_stats(qp, &st))
                return 0;
        v.present = 1;
        v.state = owner ? (uint32_t)qp->state : load_relaxed(&r->state);
        v.tx_mode = (uint32_t)ntbt_qp_tx_mode(qp);
        v.poll_mode = (uint32_t)qp->poll_mode;
        v.update_ns = now;
        /* In the order of names[]. */
#define COUNTER_PUT(name, source, description) v.c[i++] = st.name;
        NTBT_QP_COUNTERS(COUNTER_PUT)
#undef COUNTER_PUT
        if (!rec_write(r, &v))
                return 0;
        if (owner)
                qp->stats_state = qp->state;
        return 1;
}

/* After every 64th frame sent (tx.c counts them under tx_lock): a sender
 * that never polls (a poll-mode QP that only transmits) still shows its
 * counters. */
void stats_tx_tick(struct ntbt_qp *qp)
{
        int64_t now;

        if (!qp->t->stats)
                return;
        now = now_coarse_ns(); /* a 100 ms cadence needs no finer clock */
        if (now >= load_relaxed(&qp->stats_next))
                stats_publish(qp, now, 0);
}

void stats_qp_gone(struct ntbt_transport *t, unsigned num)
{
        struct stats_rec *r = rec_of(t, num);
        struct stats_rec v = {0};

        if (!r)
                return;
        v.update_ns = now_ns();
        while (!rec_write(r, &v)) /* a sender's publish is short: wait it out */
                cpu_relax();
}

/* ---- reader (another process) ---- */

static int read_rec(int fd, off_t off, struct stats_rec *out)
{
        int tries;

        for (tries = 0; tries < 100; tries++) {
                uint64_t s1, s2;

                /* seq, then the record, then seq again: each pread is a
                 * system call, which the copies cannot move across. */
                if (pread(fd, &s1, 8, off) != 8 ||
                    pread(fd, out, sizeof(*out), off) != (ssize_t)sizeof(*out) ||
                    pread(fd, &s2, 8, off) != 8)
                        return -EINVAL;
                if (s1 == s2 && !(s1 & 1) && out->seq == s1)
                        return 0;
                usleep(100);
        }
        return -EAGAIN;
}

int ntbt_stats_remove(const char *name, int port)
{
        char path[4200], magic[8] = {0};
        struct stat sb;
        int fd, ret = ntbt_stats_path(name, port, path, sizeof(path));

        if (ret)
                return ret;
        /* Only an ntbt statistics file (regular, not a link, our magic, or
         * empty: a transport killed before it wrote the header). */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) ||
            (sb.st_size > 0 && (pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
                                memcmp(magic, STATS_MAGIC, 8)))) {
                close(fd);
                log_err("%s: not an ntbt statistics file; not removing it", path);
                return -EINVAL;
        }
        close(fd);
        return unlink(path) ? -errno : 0;
}

int ntbt_stats_read(const char *name, int port, struct ntbt_stats *out)
{
        char path[4200];
        struct stats_hdr h;
        struct stat sb;
        int64_t now = now_ns();
        uint32_t i;
        int fd, ret;

        if (!out)
                return -EINVAL;
        ret = ntbt_stats_path(name, port, path, sizeof(path));
        if (ret)
                return ret;
        /* Another user can plant anything at the path: no symlink
         * (O_NOFOLLOW), no hang on a FIFO (O_NONBLOCK), a regular file only. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0) {
                ret = -errno;
                if (ret == -ELOOP)
                        log_err("%s: is a symbolic link; not reading it", path);
                return ret;
        }
        memset(out, 0, sizeof(*out));
        ret = -EINVAL;
        if (fstat(fd, &sb) == 0 && !S_ISREG(sb.st_mode)) {
                log_err("%s: not a regular file", path);
                goto out;
        }
        if (fstat(fd, &sb) || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
                log_err("%s: statistics file too short", path);
                goto out;
        }
        if (memcmp(h.magic, STATS_MAGIC, 8) || h.version != STATS_VERSION) {
                log_err("%s: not an ntbt statistics file (magic or version)", path);
                goto out;
        }
        if (h.hdr_size < sizeof(h) || h.hdr_size > 4096 || h.rec_size < sizeof(struct stats_rec) ||
            h.rec_size > 65536 || h.ncounters < NTBT_STATS_COUNTERS || h.qp_count > NTBT_MAX_QPS ||
            h.port != (uint32_t)port ||
            (uint64_t)sb.st_size < (uint64_t)h.hdr_size + (uint64_t)h.qp_count * h.rec_size) {
                log_err("%s: malformed statistics header (sizes, counts or port)", path);
                goto out;
        }
        out->pid = (int)h.pid;
        out->alive =
            h.pid > 0 && h.pid <= 0x3fffffff && (kill((pid_t)h.pid, 0) == 0 || errno == EPERM);
        out->port = (int)h.port;
        out->transport_up = h.transport_up == 1;
        out->qp_count = h.qp_count;
        for (i = 0; i < h.qp_count; i++) {
                struct stats_rec r;
                int k;

                ret = read_rec(fd, (off_t)(h.hdr_size + (uint64_t)i * h.rec_size), &r);
                if (ret)
                        goto out;
                out->qp[i].qp_num = i;
                out->qp[i].present = r.present == 1;
                out->qp[i].state = r.state <= NTBT_STATS_UP ? (int)r.state : NTBT_STATS_DOWN;
                out->qp[i].tx_mode = (int)(r.tx_mode & 3);
                out->qp[i].poll_mode = r.poll_mode == 1;
                out->qp[i].age_ns = r.update_ns > 0 && r.update_ns <= now ? now - r.update_ns : 0;
                for (k = 0; k < NTBT_STATS_COUNTERS; k++)
                        out->qp[i].c[k] = r.c[k];
        }
        ret = 0;
out:
        close(fd);
        return ret;
}
