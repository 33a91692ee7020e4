/* SPDX-License-Identifier: MIT */
/*
 * Live per-QP statistics, the reader's side (docs/stats.md): another
 * process reads the file a transport writes (stats_file.c), through the
 * public calls of <ntbt/stats.h>.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ntbt/stats.h>

#include "../util/abi.h"
#include "../util/clock.h"
#include "../util/hostile.h"
#include "../util/log.h"
#include "stats_file.h"

_Static_assert(sizeof(struct ntbt_qp_stats) == 8 + 8 * NTBT_STATS_COUNTERS, "ntbt_qp_stats layout");

#define COUNTER_NAME(name, source, description) #name,
static const char *const names[NTBT_STATS_COUNTERS] = {NTBT_QP_COUNTERS(COUNTER_NAME)};
#undef COUNTER_NAME

const char *ntbt_stats_counter_name(int i)
{
        return i >= 0 && i < NTBT_STATS_COUNTERS ? names[i] : NULL;
}

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
        struct hostile_open h = {.flags = O_RDONLY | O_NONBLOCK, .type = S_IFREG};
        int fd, ret = ntbt_stats_path(name, port, path, sizeof(path));

        if (ret)
                return ret;
        /* Only an ntbt statistics file (regular, not a link, our magic, or
         * empty: a transport killed before it wrote the header). */
        fd = util_open_hostile(path, &h);
        if (fd < 0 && h.why == HOSTILE_OPEN)
                return fd;
        if (fd < 0 ||
            (h.st.st_size > 0 && (pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
                                  memcmp(magic, STATS_MAGIC, 8)))) {
                if (fd >= 0)
                        close(fd);
                log_err("%s: not an ntbt statistics file; not removing it", path);
                return -EINVAL;
        }
        close(fd);
        return unlink(path) ? -errno : 0;
}

/* The header of an open statistics file, each field checked against the
 * file's size and our limits (the file is anyone's to write). */
static int stats_hdr_read(const char *path, int fd, int port, struct stats_hdr *h)
{
        struct stat sb;

        if (fstat(fd, &sb) || pread(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h)) {
                log_err("%s: statistics file too short", path);
                return -EINVAL;
        }
        if (memcmp(h->magic, STATS_MAGIC, 8) || h->version != STATS_VERSION) {
                log_err("%s: not an ntbt statistics file (magic or version)", path);
                return -EINVAL;
        }
        if (h->hdr_size < sizeof(*h) || h->hdr_size > 4096 ||
            h->rec_size < sizeof(struct stats_rec) || h->rec_size > 65536 ||
            h->ncounters < NTBT_STATS_COUNTERS || h->qp_count > NTBT_MAX_QPS ||
            h->port != (uint32_t)port ||
            (uint64_t)sb.st_size < (uint64_t)h->hdr_size + (uint64_t)h->qp_count * h->rec_size) {
                log_err("%s: malformed statistics header (sizes, counts or port)", path);
                return -EINVAL;
        }
        return 0;
}

/* One QP's record as the caller sees it: out-of-range values made safe. */
static void stats_qp_fill(struct ntbt_stats_qp *q, uint32_t num, const struct stats_rec *r,
                          int64_t now)
{
        int k;

        q->qp_num = num;
        q->present = r->present == 1;
        q->state = r->state <= NTBT_STATS_UP ? (int)r->state : NTBT_STATS_DOWN;
        q->tx_mode = (int)(r->tx_mode & 3);
        q->poll_mode = r->poll_mode == 1;
        q->age_ns = r->update_ns > 0 && r->update_ns <= now ? now - r->update_ns : 0;
        for (k = 0; k < NTBT_STATS_COUNTERS; k++)
                q->c[k] = r->c[k];
}

static int stats_fill(int fd, const struct stats_hdr *h, struct ntbt_stats *out)
{
        int64_t now = now_ns();
        uint32_t i;
        int ret;

        out->pid = (int)h->pid;
        out->alive =
            h->pid > 0 && h->pid <= 0x3fffffff && (kill((pid_t)h->pid, 0) == 0 || errno == EPERM);
        out->port = (int)h->port;
        out->transport_up = h->transport_up == 1;
        out->qp_count = h->qp_count;
        for (i = 0; i < h->qp_count; i++) {
                struct stats_rec r;

                ret = read_rec(fd, (off_t)(h->hdr_size + (uint64_t)i * h->rec_size), &r);
                if (ret)
                        return ret;
                stats_qp_fill(&out->qp[i], i, &r, now);
        }
        return 0;
}

/* The first version of struct ntbt_stats (libntbt.so.1) ends at qp[]. */
#define STATS_VER0 ABI_SIZE_TO(struct ntbt_stats, qp)

int ntbt_stats_read(const char *name, int port, struct ntbt_stats *out)
{
        struct hostile_open ho = {.flags = O_RDONLY | O_NONBLOCK, .type = S_IFREG};
        char path[4200];
        struct stats_hdr h;
        struct ntbt_stats st;
        int fd, ret;

        if (!out || abi_out_ok(out, STATS_VER0))
                return -EINVAL;
        ret = ntbt_stats_path(name, port, path, sizeof(path));
        if (ret)
                return ret;
        /* Another user can plant anything at the path: no symlink
         * (O_NOFOLLOW), no hang on a FIFO (O_NONBLOCK), a regular file only. */
        fd = util_open_hostile(path, &ho);
        if (fd < 0 && ho.why == HOSTILE_OPEN) {
                if (fd == -ELOOP)
                        log_err("%s: is a symbolic link; not reading it", path);
                return fd;
        }
        memset(&st, 0, sizeof(st));
        st.size = sizeof(st);
        if (fd < 0) {
                /* A failed fstat read as a short file, as stats_hdr_read says. */
                log_err("%s: %s", path,
                        ho.why == HOSTILE_TYPE ? "not a regular file"
                                               : "statistics file too short");
                return -EINVAL;
        }
        ret = stats_hdr_read(path, fd, port, &h);
        if (!ret)
                ret = stats_fill(fd, &h, &st);
        close(fd);
        return ret ? ret : abi_out(out, &st, sizeof(st), STATS_VER0);
}
