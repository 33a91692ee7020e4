/* SPDX-License-Identifier: MIT */
/*
 * The "pcie" device: spec/pcie-model.md.  A wrapper over an shm device that
 * models what a real outbound window does to stores: a write-combining
 * buffer that may reorder them and a posted-write queue drained by a link of
 * finite bandwidth and latency.  Doorbells and scratchpads bypass both, so a
 * doorbell can overtake the DONE write unless the transport flushes.
 *
 * It defines only the window ops it models (and mw_count, capped at the
 * windows it models); every other op goes straight to the device inside
 * through the forwarding base (wrap.h): doorbells bypass the WC buffer and
 * the posted queue and are visible at once, scratchpads are uncached and
 * visible at once, in program order.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../util/barrier.h"
#include "../util/clock.h"
#include "dev.h"
#include "pcie.h"
#include "wrap.h"

#define LINE    64u
#define MAX_WIN 8

struct line {
        uint64_t addr; /* line-aligned offset in the window */
        uint64_t mask; /* which bytes were written */
        int64_t visible_at;
        uint8_t data[LINE];
};

struct pcie_win {
        struct line *wc; /* the WC buffer: nwc lines in use */
        uint32_t nwc;
        struct line *pq; /* the posted queue, a ring of q lines */
        uint32_t head, count;
        int64_t link_busy_until; /* when the link finishes the last queued line */
};

struct pcie_dev {
        struct dev_wrap base; /* first: the device inside, for the forwarders */
        uint32_t wc, q;
        uint64_t bw; /* bytes per second, 0 = unlimited */
        int64_t lat, rd;
        uint64_t rng;
        int nwin;
        pthread_mutex_t lock; /* guards everything below */
        struct pcie_win win[MAX_WIN];
        /* The link drains the posted queues on its own: this thread applies
         * lines that fell due while no writer was there to do it. */
        pthread_t drainer;
        pthread_cond_t cond;
        int stop;
        /* The drainer sleeps with no line to wait for: a window op that
         * leaves lines queued wakes it (pcie_op_exit); otherwise it wakes
         * when its next line is due, and no op needs to signal (a futex
         * wake per op was most of the model's cost in a stream). */
        int drainer_idle;
        /* A trace of applied line addresses, for tests (pcie_trace). */
        uint64_t *trace;
        uint32_t ntrace, trace_cap;
};

static struct pcie_dev *to_pcie(struct ntbt_dev *dev)
{
        return dev->priv;
}

static uint64_t rng_next(struct pcie_dev *p)
{
        /* xorshift64*: every random choice of the model comes from the seed. */
        p->rng ^= p->rng >> 12;
        p->rng ^= p->rng << 25;
        p->rng ^= p->rng >> 27;
        return p->rng * 0x2545f4914f6cdd1dull;
}

/* Make a posted line visible in the peer's memory.  Called with the lock. */
static void apply_line(struct pcie_dev *p, int w, const struct line *l)
{
        uint32_t i = 0;

        if (p->trace && p->ntrace < p->trace_cap)
                p->trace[p->ntrace++] = (uint64_t)w << 56 | l->addr;
        if (l->mask == ~0ull) {
                /* A whole line: its stores after every earlier line's (the
                 * fence), as the link delivers them in order. */
                smp_wmb();
                ntbt_dev_peer_mw_write(p->base.inner, w, l->addr, l->data, LINE);
                return;
        }
        while (i < LINE) {
                uint32_t j;

                if (!(l->mask >> i & 1)) {
                        i++;
                        continue;
                }
                /* Whole aligned words go out as single 32-bit release stores
                 * (a DONE flag is one), the rest byte runs. */
                if (!(i & 3) && ((l->mask >> i) & 0xf) == 0xf) {
                        uint32_t v;

                        memcpy(&v, l->data + i, 4);
                        ntbt_dev_peer_mw_write32(p->base.inner, w, l->addr + i, v);
                        i += 4;
                        continue;
                }
                for (j = i; j < LINE && (l->mask >> j & 1) && ((j & 3) || j == i); j++)
                        ;
                smp_wmb();
                ntbt_dev_peer_mw_write(p->base.inner, w, l->addr + i, l->data + i, j - i);
                i = j;
        }
}

/* Apply every line of window w that is due by now; returns the next due time. */
static int64_t drain_due(struct pcie_dev *p, int w, int64_t now)
{
        struct pcie_win *pw = &p->win[w];

        while (pw->count) {
                struct line *l = &pw->pq[pw->head];

                if (l->visible_at > now)
                        return l->visible_at;
                apply_line(p, w, l);
                pw->head = (pw->head + 1) % p->q;
                pw->count--;
        }
        return INT64_MAX;
}

static void spin_until(int64_t t)
{
        while (now_ns() < t)
                cpu_relax();
}

/*
 * Move a line into the posted queue; the writer stalls while it is full.
 * The stall waits, spinning without the lock, until the oldest eighth of
 * the queue has landed, then takes all of that room at once: the lines
 * still queued keep the link busy meanwhile, so the link's rate is what it
 * was, and the writer takes the lock once per eighth of the queue rather
 * than once per look (which made it and the drainer sleep on the lock in
 * turn, a cost of the model that a slow link does not have).  *now: the
 * time, read by the op that posts and again after each stall (a clock read
 * per line was a third of the model's own cost); between two reads the
 * writer only fills WC lines, so a line is timed at most that early, and
 * only on an idle link.
 */
static void post_line(struct pcie_dev *p, int w, const struct line *l, int64_t *now)
{
        struct pcie_win *pw = &p->win[w];
        int64_t start;
        struct line *slot;

        while (pw->count == p->q) {
                uint32_t batch = p->q / 8 ? p->q / 8 : 1;
                int64_t due = pw->pq[(pw->head + batch - 1) % p->q].visible_at;

                if (due > *now) {
                        /* The CPU cost of a slow link: the writer waits, spinning. */
                        pthread_mutex_unlock(&p->lock);
                        spin_until(due);
                        pthread_mutex_lock(&p->lock);
                        *now = now_ns();
                }
                drain_due(p, w, *now);
        }
        slot = &pw->pq[(pw->head + pw->count) % p->q];
        *slot = *l;
        start = *now > pw->link_busy_until ? *now : pw->link_busy_until;
        pw->link_busy_until = start + (p->bw ? (int64_t)(LINE * NS_PER_SEC / p->bw) : 0);
        slot->visible_at = pw->link_busy_until + p->lat;
        pw->count++;
}

static int cmp_addr(const void *a, const void *b)
{
        const struct line *x = a, *y = b;

        return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* wmb: every WC line of window w into the posted queue, in address order. */
static void wc_flush_locked(struct pcie_dev *p, int w)
{
        struct pcie_win *pw = &p->win[w];
        int64_t now = now_ns();
        uint32_t i;

        qsort(pw->wc, pw->nwc, sizeof(*pw->wc), cmp_addr);
        for (i = 0; i < pw->nwc; i++)
                post_line(p, w, &pw->wc[i], &now);
        pw->nwc = 0;
}

/* One store into the WC buffer (it does not cross a line). */
static void wc_store_locked(struct pcie_dev *p, int w, uint64_t off, const uint8_t *src,
                            uint32_t len, int64_t *now)
{
        struct pcie_win *pw = &p->win[w];
        uint64_t addr = off & ~(uint64_t)(LINE - 1);
        uint32_t i, k = off - addr;
        struct line *l = NULL;

        /* An eviction may stall with the lock dropped, so look again after it. */
        while (!l) {
                for (i = 0; i < pw->nwc; i++) {
                        if (pw->wc[i].addr == addr) {
                                l = &pw->wc[i]; /* combines with earlier stores */
                                break;
                        }
                }
                if (l)
                        break;
                if (pw->nwc < p->wc) {
                        l = &pw->wc[pw->nwc++];
                        l->addr = addr;
                        l->mask = 0;
                        break;
                } else {
                        /* All lines taken: evict one chosen at random. */
                        uint32_t victim = (uint32_t)(rng_next(p) % p->wc);
                        struct line out = pw->wc[victim];

                        pw->wc[victim] = pw->wc[--pw->nwc];
                        post_line(p, w, &out, now);
                }
        }
        memcpy(l->data + k, src, len);
        l->mask |= (len == 64 ? ~0ull : ((1ull << len) - 1)) << k;
}

static void *drainer(void *arg)
{
        struct pcie_dev *p = arg;

        pthread_mutex_lock(&p->lock);
        while (!p->stop) {
                int64_t now = now_ns(), next = INT64_MAX;
                struct timespec ts;
                int w;

                for (w = 0; w < p->nwin; w++) {
                        int64_t t = drain_due(p, w, now);

                        if (t < next)
                                next = t;
                }
                /* Idle: a writer wakes us for what it leaves (pcie_op_exit).
                 * Otherwise we wake when the next line is due. */
                p->drainer_idle = next == INT64_MAX;
                if (next == INT64_MAX)
                        next = now + 100 * NS_PER_MS;
                /* Writers that flush drain their own lines; this thread only
                 * catches stragglers, so it need not wake more often. */
                if (next < now + 20000)
                        next = now + 20000;
                /* The CLOCK_MONOTONIC deadline of the next due line. */
                ts.tv_sec = (time_t)(next / NS_PER_SEC);
                ts.tv_nsec = (long)(next % NS_PER_SEC);
                pthread_cond_timedwait(&p->cond, &p->lock, &ts);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

/* The parser (dev.c) checks the values; port=, shared= and nt= go to the device inside. */
static const struct dev_opt pcie_opts[] = {
    {"wc", DEV_OPT_SIZE, 1, 65536, "a line count, 1-65536"},
    {"q", DEV_OPT_SIZE, 1, 65536, "a line count, 1-65536"},
    {"lat", DEV_OPT_RATE, 0, (uint64_t)10 * NS_PER_SEC, "nanoseconds, at most 10 s"},
    {"rd", DEV_OPT_RATE, 0, (uint64_t)10 * NS_PER_SEC, "nanoseconds, at most 10 s"},
    {"bw", DEV_OPT_RATE, 0, UINT64_MAX, "bytes per second, e.g. 2G"},
    {"seed", DEV_OPT_SIZE, 0, UINT64_MAX, "a number"},
    {NULL, DEV_OPT_BOOL, 0, 0, NULL},
};

static int pcie_open(struct ntbt_dev *dev, const struct dev_args *args)
{
        uint64_t v, seed = 1;
        struct pcie_dev *p;
        pthread_condattr_t ca;
        int ret = 0, w;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->wc = dev_args_num(args, "wc", &v) ? (uint32_t)v : 16;
        p->q = dev_args_num(args, "q", &v) ? (uint32_t)v : 64;
        p->lat = dev_args_num(args, "lat", &v) ? (int64_t)v : 500;
        p->rd = dev_args_num(args, "rd", &v) ? (int64_t)v : 1000;
        dev_args_num(args, "bw", &p->bw);
        dev_args_num(args, "seed", &seed);
        p->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
        ret = dev_wrap_open(&p->base, args);
        if (ret) {
                free(p);
                return ret;
        }
        p->nwin = ntbt_dev_mw_count(p->base.inner);
        if (p->nwin > MAX_WIN)
                p->nwin = MAX_WIN;
        for (w = 0; w < p->nwin; w++) {
                p->win[w].wc = calloc(p->wc, sizeof(struct line));
                p->win[w].pq = calloc(p->q, sizeof(struct line));
                if (!p->win[w].wc || !p->win[w].pq)
                        ret = -ENOMEM;
        }
        pthread_mutex_init(&p->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&p->cond, &ca);
        pthread_condattr_destroy(&ca);
        if (!ret)
                ret = -pthread_create(&p->drainer, NULL, drainer, p);
        if (ret) {
                for (w = 0; w < p->nwin; w++) {
                        free(p->win[w].wc);
                        free(p->win[w].pq);
                }
                dev_wrap_close(&p->base);
                pthread_cond_destroy(&p->cond);
                pthread_mutex_destroy(&p->lock);
                free(p);
                return ret;
        }
        dev->priv = p;
        return 0;
}

static void pcie_close(struct ntbt_dev *dev)
{
        struct pcie_dev *p = to_pcie(dev);
        int w;

        pthread_mutex_lock(&p->lock);
        p->stop = 1;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->drainer, NULL);
        for (w = 0; w < p->nwin; w++) {
                free(p->win[w].wc);
                free(p->win[w].pq);
        }
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        free(p->trace);
        dev_wrap_close(&p->base);
        free(p);
}

static int check_range(struct pcie_dev *p, int widx, uint64_t off, uint64_t len)
{
        uint64_t size;

        if (widx < 0 || widx >= p->nwin || ntbt_dev_peer_mw_size(p->base.inner, widx, &size))
                return -EINVAL;
        return off <= size && len <= size - off ? 0 : -EINVAL;
}

/* A window op ends, under the lock: an idle drainer is woken for the lines
 * it leaves queued (they land at their time with no writer there). */
static void pcie_op_exit(struct pcie_dev *p)
{
        int w, left = 0;

        for (w = 0; p->drainer_idle && w < p->nwin; w++)
                left |= p->win[w].count != 0;
        if (left) {
                p->drainer_idle = 0;
                pthread_cond_signal(&p->cond);
        }
        pthread_mutex_unlock(&p->lock);
}

static int pcie_peer_mw_write(struct ntbt_dev *dev, int widx, uint64_t off, const void *src,
                              size_t len)
{
        struct pcie_dev *p = to_pcie(dev);
        const uint8_t *s = src;
        int64_t now;

        if (check_range(p, widx, off, len))
                return -EINVAL;
        pthread_mutex_lock(&p->lock);
        now = now_ns();
        while (len) {
                uint32_t n = LINE - (uint32_t)(off & (LINE - 1));

                if (n > len)
                        n = (uint32_t)len;
                wc_store_locked(p, widx, off, s, n, &now);
                off += n;
                s += n;
                len -= n;
        }
        pcie_op_exit(p);
        return 0;
}

static int pcie_peer_mw_write32(struct ntbt_dev *dev, int widx, uint64_t off, uint32_t val)
{
        return pcie_peer_mw_write(dev, widx, off, &val, 4);
}

static int pcie_peer_mw_wmb(struct ntbt_dev *dev, int widx)
{
        struct pcie_dev *p = to_pcie(dev);

        if (widx < 0 || widx >= p->nwin)
                return -EINVAL;
        pthread_mutex_lock(&p->lock);
        wc_flush_locked(p, widx);
        pcie_op_exit(p);
        return 0;
}

static int pcie_peer_mw_flush(struct ntbt_dev *dev, int widx, uint64_t off)
{
        struct pcie_dev *p = to_pcie(dev);

        if (check_range(p, widx, off, 4))
                return -EINVAL;
        pthread_mutex_lock(&p->lock);
        wc_flush_locked(p, widx);
        /* The read-back returns only after every posted write landed. */
        while (p->win[widx].count) {
                int64_t next = drain_due(p, widx, now_ns());

                if (next != INT64_MAX) {
                        pthread_mutex_unlock(&p->lock);
                        spin_until(next);
                        pthread_mutex_lock(&p->lock);
                }
        }
        pcie_op_exit(p);
        spin_until(now_ns() + p->rd); /* the read's round trip */
        return ntbt_dev_peer_mw_flush(p->base.inner, widx, off);
}

int pcie_trace(struct ntbt_dev *dev, uint64_t *buf, uint32_t cap)
{
        struct pcie_dev *p;
        int n;

        if (strcmp(ntbt_dev_type(dev), "pcie"))
                return -EINVAL;
        p = to_pcie(dev);
        pthread_mutex_lock(&p->lock);
        if (!p->trace && cap) {
                /* First call: start recording. */
                p->trace = calloc(cap, sizeof(*p->trace));
                p->trace_cap = p->trace ? cap : 0;
                p->ntrace = 0;
                n = 0;
        } else {
                n = (int)(p->ntrace < cap ? p->ntrace : cap);
                memcpy(buf, p->trace, (size_t)n * sizeof(*buf));
        }
        pthread_mutex_unlock(&p->lock);
        return n;
}

static int pcie_mw_count(struct ntbt_dev *dev)
{
        return to_pcie(dev)->nwin;
}

const struct ntbt_dev_ops pcie_dev_ops = {
    .type = "pcie",
    .opts = pcie_opts,
    .wraps = "shm",
    .open = pcie_open,
    .close = pcie_close,
    .mw_count = pcie_mw_count,
    .peer_mw_write = pcie_peer_mw_write,
    .peer_mw_write32 = pcie_peer_mw_write32,
    .peer_mw_wmb = pcie_peer_mw_wmb,
    .peer_mw_flush = pcie_peer_mw_flush,
};
