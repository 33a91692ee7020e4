/* SPDX-License-Identifier: MIT */
/* send and recv's progress line and summary (cli.h: struct cli_progress). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

static pthread_mutex_t progress_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progress_cond = PTHREAD_COND_INITIALIZER;

/* 1.5 GiB, 812.3 MiB: binary units, one decimal. */
static const char *fmt_human(double v, char *buf, size_t len)
{
        static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        int u = 0;

        while (u < 4 && v >= 1024) {
                v /= 1024;
                u++;
        }
        snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
        return buf;
}

/* bytes so far, the rate since the last line (as pv shows it), elapsed. */
static void progress_draw(struct cli_progress *p, int64_t now, uint64_t *last_b, int64_t *last_t)
{
        int64_t t0 = __atomic_load_n(&p->t0, __ATOMIC_ACQUIRE);
        uint64_t b = __atomic_load_n(p->bytes, __ATOMIC_RELAXED);
        int64_t from = *last_t > t0 ? *last_t : t0;
        double dt = (double)(now - from) / 1e9;
        char hb[32], hr[32];
        long s = (long)((now - t0) / 1000000000);

        fprintf(stderr, "\rntbt: %s: %s  %s/s  %ld:%02ld:%02ld\033[K", p->ctx,
                fmt_human((double)b, hb, sizeof(hb)),
                fmt_human(dt > 0 ? (double)(b - *last_b) / dt : 0, hr, sizeof(hr)), s / 3600,
                s / 60 % 60, s % 60);
        *last_b = b;
        *last_t = now;
        p->drawn = 1;
}

static void *progress_thread(void *arg)
{
        struct cli_progress *p = arg;
        uint64_t last_b = 0;
        int64_t last_t = 0;

        pthread_mutex_lock(&progress_lock);
        while (!p->stop) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 500 * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&progress_cond, &progress_lock, &ts);
                if (!p->stop && __atomic_load_n(&p->t0, __ATOMIC_ACQUIRE))
                        progress_draw(p, now_ns(), &last_b, &last_t);
        }
        pthread_mutex_unlock(&progress_lock);
        return NULL;
}

void cli_progress_start(struct cli_progress *p, const char *ctx, const uint64_t *bytes, int quiet,
                        int verbose)
{
        int tty = isatty(STDERR_FILENO);

        memset(p, 0, sizeof(*p));
        p->ctx = ctx;
        p->bytes = bytes;
        p->live = tty && !quiet;
        p->summary = (tty && !quiet) || verbose;
        if (p->live && pthread_create(&p->thread, NULL, progress_thread, p) == 0)
                p->has_thread = 1;
}

void cli_progress_begin(struct cli_progress *p)
{
        int64_t zero = 0;

        __atomic_compare_exchange_n(&p->t0, &zero, now_ns(), 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

void cli_progress_stop(struct cli_progress *p)
{
        if (!p->t1)
                p->t1 = now_ns();
        if (!p->has_thread)
                return;
        pthread_mutex_lock(&progress_lock);
        p->stop = 1;
        pthread_cond_signal(&progress_cond);
        pthread_mutex_unlock(&progress_lock);
        pthread_join(p->thread, NULL);
        p->has_thread = 0;
        if (p->drawn)
                fputs("\r\033[K", stderr);
        p->drawn = 0;
}

void cli_progress_end(struct cli_progress *p, const char *extra)
{
        int64_t t0 = __atomic_load_n(&p->t0, __ATOMIC_ACQUIRE);
        uint64_t b = __atomic_load_n(p->bytes, __ATOMIC_RELAXED);
        double secs;
        char hb[32], hr[32];

        cli_progress_stop(p);
        if (!p->summary)
                return;
        secs = t0 ? (double)(p->t1 - t0) / 1e9 : 0;
        fprintf(stderr, "ntbt: %s: %s (%llu bytes) in %.2f s, %s/s%s%s\n", p->ctx,
                fmt_human((double)b, hb, sizeof(hb)), (unsigned long long)b, secs,
                fmt_human(secs > 0 ? (double)b / secs : 0, hr, sizeof(hr)), extra ? ", " : "",
                extra ? extra : "");
}
