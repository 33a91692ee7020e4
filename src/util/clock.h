/* SPDX-License-Identifier: MIT */
#ifndef NTBT_UTIL_CLOCK_H
#define NTBT_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic time in nanoseconds (vDSO: no system call). */
static inline int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The same clock at tick resolution (a few ms), for deadlines and cadences
 * checked on hot paths: a vDSO read of a stored value, several times
 * cheaper than now_ns(). */
static inline int64_t now_coarse_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define NS_PER_MS  1000000LL
#define NS_PER_SEC 1000000000LL

/* Sleep about ns nanoseconds (a signal may end it early). */
static inline void sleep_ns(int64_t ns)
{
        struct timespec ts = {(time_t)(ns / NS_PER_SEC), (long)(ns % NS_PER_SEC)};

        nanosleep(&ts, NULL);
}

#endif
