/* SPDX-License-Identifier: MIT */
/*
 * Waiting for the other side of a ring, which may be a thread on another
 * core, a thread sharing ours, or a process that stalled.  Three phases:
 * spin on the CPU for up to a few microseconds (the other side, on a core
 * of its own, answers within that; how long adapts, struct spin_hint); then give the core away at
 * every look (sched_yield), so that when the machine is short of cores the other side runs at once
 * instead of after our time slice; then sleep in growing naps, so a stalled peer does not cost a
 * core.
 *
 * Measured (bench/README.md, section 1): a sender that slept after 200
 * spins fell from 7.7 M to 0.38 M 64-byte messages a second when another
 * process held a core, as its 50 us of timer slack let the 63-slot ring
 * run dry again and again.
 */
#ifndef NTBT_UTIL_SPIN_H
#define NTBT_UTIL_SPIN_H

#include <sched.h>
#include <stdint.h>
#include <unistd.h>

#include "barrier.h"
#include "clock.h"

#define SPIN_PURE_MAX (4 * 1000)   /* on the CPU, at most */
#define SPIN_PURE_MIN 250          /* ... and at least, so that it can grow back */
#define SPIN_YIELD_NS (200 * 1000) /* then yielding, up to this since the start */
#define SPIN_NAP_MIN  (20 * 1000)  /* then sleeping, doubling up to SPIN_NAP_MAX */
#define SPIN_NAP_MAX  (200 * 1000)

/*
 * The waiter's memory of how the last waits ended (its owner keeps one per
 * ring side; zero-initialised is right): how long to spin on the CPU.  A
 * wait that the pure spin ended doubles it, one that had to yield halves
 * it, so on a machine short of cores the spin shrinks to SPIN_PURE_MIN
 * and the core goes to the other side almost at once.
 */
struct spin_hint {
        int32_t pure_ns;
};

struct spin_wait {
        struct spin_hint *hint;
        int64_t start;
        int64_t pure; /* ns of pure spin for this wait */
        int64_t nap;
};

/* The online CPUs, read once (at least 1): whether a spin can run beside
 * the thread it waits for (here, the copy thread, the receive threads). */
static inline int online_cpus(void)
{
        static int cpus;
        /* Relaxed: a cache of a value every thread computes the same; it
         * orders nothing, and two first calls store the same number. */
        int n = load_relaxed(&cpus);

        if (!n) {
                long c = sysconf(_SC_NPROCESSORS_ONLN);

                n = c > 0 ? (int)c : 1;
                store_relaxed(&cpus, n);
        }
        return n;
}

static inline void spin_wait_init(struct spin_wait *w, struct spin_hint *hint)
{
        /* Relaxed: a heuristic several threads may update at once (the
         * last store wins); it orders nothing. */
        int32_t pure = load_relaxed(&hint->pure_ns);

        w->hint = hint;
        w->start = now_ns();
        w->pure = online_cpus() == 1 ? 0 : pure ? pure : SPIN_PURE_MAX;
        w->nap = SPIN_NAP_MIN;
}

/* One pause between two looks at what the caller waits for. */
static inline void spin_wait_pause(struct spin_wait *w)
{
        int64_t waited = now_ns() - w->start;

        if (waited < w->pure) {
                for (int i = 0; i < 16; i++)
                        cpu_relax();
        } else if (waited < SPIN_YIELD_NS) {
                sched_yield();
        } else {
                sleep_ns(w->nap);
                if (w->nap < SPIN_NAP_MAX)
                        w->nap *= 2;
        }
}

/* The wait ended (what it waited for came): learn from how long it took. */
static inline void spin_wait_done(struct spin_wait *w)
{
        int64_t waited = now_ns() - w->start, pure = w->pure;

        if (waited < pure)
                pure = pure * 2 > SPIN_PURE_MAX ? SPIN_PURE_MAX : pure * 2;
        else
                pure = pure / 2 < SPIN_PURE_MIN ? SPIN_PURE_MIN : pure / 2;
        store_relaxed(&w->hint->pure_ns, (int32_t)pure);
}

#endif
