/* SPDX-License-Identifier: MIT */
/*
 * The live statistics file's writer (docs/stats.md; layout in stats_file.h).
 *
 * Writers: each record is rewritten whole under its sequence count, by the
 * QP's owner (the event thread, or the thread calling ntbt_qp_poll) and, for
 * the transmit counters, by whichever thread sends; they never wait for each
 * other.  The header's transport_up is written by the event thread alone.
 * Readers are other processes (stats.c); the per-record sequence count (a
 * seqlock) lets them tell a torn copy from a whole one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <ntbt/shm.h>

#include "../util/barrier.h"
#include "../util/clock.h"
#include "../util/hostile.h"
#include "../util/log.h"
#include "stats_file.h"

struct stats_file {
        void *map;
        size_t size;
        uint32_t qp_count;
        char path[4200];
};

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

struct stats_file *stats_file_open(struct ntbt_dev *dev, uint32_t qp_count)
{
        char name[256], path[4200];
        struct stats_file *f;
        struct stats_hdr *h;
        size_t size;
        void *p;
        int fd;

        if (spec_name(ntbt_dev_spec(dev), name, sizeof(name)) ||
            ntbt_stats_path(name, ntbt_dev_port(dev), path, sizeof(path)))
                return NULL;
        f = malloc(sizeof(*f));
        if (!f)
                return NULL;
        size = sizeof(struct stats_hdr) + qp_count * sizeof(struct stats_rec);
        /* A new inode, never a truncated old one: a reader's pread of the old
         * file stays valid. */
        unlink(path);
        fd = util_open_hostile(path, &(struct hostile_open){.flags = O_RDWR | O_CREAT | O_EXCL});
        if (fd < 0) {
                log_info("%s: no live statistics: %s: %s", ntbt_dev_spec(dev), path, strerror(-fd));
                free(f);
                return NULL;
        }
        if (ftruncate(fd, (off_t)size)) {
                close(fd);
                unlink(path);
                free(f);
                return NULL;
        }
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED) {
                unlink(path);
                free(f);
                return NULL;
        }
        h = p;
        h->version = STATS_VERSION;
        h->hdr_size = sizeof(*h);
        h->rec_size = sizeof(struct stats_rec);
        h->ncounters = NTBT_STATS_COUNTERS;
        h->qp_count = qp_count;
        h->pid = (uint32_t)getpid();
        h->port = (uint32_t)ntbt_dev_port(dev);
        /* Release: a reader that sees the magic sees the fields above. */
        smp_wmb();
        memcpy(h->magic, STATS_MAGIC, 8);
        f->map = p;
        f->size = size;
        f->qp_count = qp_count;
        snprintf(f->path, sizeof(f->path), "%s", path);
        return f;
}

void stats_file_close(struct stats_file *f)
{
        if (!f)
                return;
        unlink(f->path);
        munmap(f->map, f->size);
        free(f);
}

void stats_file_transport_up(struct stats_file *f, int up)
{
        struct stats_hdr *h = f ? f->map : NULL;

        if (h) /* a single word, read on its own: relaxed is enough */
                store_relaxed(&h->transport_up, (uint32_t)up);
}

static struct stats_rec *rec_of(struct stats_file *f, unsigned num)
{
        if (!f || num >= f->qp_count)
                return NULL;
        return (struct stats_rec *)(void *)((uint8_t *)f->map + sizeof(struct stats_hdr) +
                                            num * sizeof(struct stats_rec));
}

/*
 * Rewrite one record.  A writer that finds the record being written (odd
 * seq, or the CAS lost) gives up and says so (0); the owner tries again at
 * its next service.
 */
static int rec_write(struct stats_rec *r, const struct stats_rec *v, int keep_state)
{
        /* Relaxed: only a guess for the CAS below, which checks it (seq_cst,
         * and so ordered after the last writer's release of seq). */
        uint64_t seq = load_relaxed(&r->seq);
        uint32_t state = v->state;
        int i;

        if ((seq & 1) || !cas_sc(&r->seq, &seq, seq + 1))
                return 0;
        /* We hold the record now: the state it has is the owner's last,
         * and the CAS ordered us after that write. */
        if (keep_state)
                state = load_relaxed(&r->state);
        /* Release fence: the odd count is visible before any field below
         * changes, so a reader that copied a changed field sees it odd or
         * moved on.  The fields themselves are relaxed stores: the fence
         * before and the release of seq after order them. */
        smp_wmb();
        store_relaxed(&r->present, v->present);
        store_relaxed(&r->state, state);
        store_relaxed(&r->tx_mode, v->tx_mode);
        store_relaxed(&r->poll_mode, v->poll_mode);
        store_relaxed(&r->update_ns, v->update_ns);
        for (i = 0; i < NTBT_STATS_COUNTERS; i++)
                store_relaxed(&r->c[i], v->c[i]);
        /* Release: the fields above before the even count that vouches for them. */
        store_release(&r->seq, seq + 2);
        return 1;
}

int stats_file_write(struct stats_file *f, unsigned num, const struct stats_rec *v, int keep_state)
{
        struct stats_rec *r = rec_of(f, num);

        return r ? rec_write(r, v, keep_state) : 0;
}

void stats_file_qp_gone(struct stats_file *f, unsigned num)
{
        struct stats_rec *r = rec_of(f, num);
        struct stats_rec v = {0};

        if (!r)
                return;
        v.update_ns = now_ns();
        while (!rec_write(r, &v, 0)) /* a sender's publish is short: wait it out */
                cpu_relax();
}
