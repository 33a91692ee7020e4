/* SPDX-License-Identifier: MIT */
#include "futex.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int futex_wait_shared(uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
        struct timespec ts, *tsp = NULL;

        if (timeout_ns >= 0) {
                ts.tv_sec = timeout_ns / 1000000000;
                ts.tv_nsec = timeout_ns % 1000000000;
                tsp = &ts;
        }
        /* FUTEX_WAIT takes a relative timeout. */
        if (syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0) == 0)
                return 0;
        return -errno;
}

int futex_wake_shared(uint32_t *word, int n)
{
        long r = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);

        return r < 0 ? -errno : (int)r;
}

int futex_wait_private(uint32_t *word, uint32_t expected)
{
        if (syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0) == 0)
                return 0;
        return -errno;
}

int futex_wake_private(uint32_t *word)
{
        long r = syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);

        return r < 0 ? -errno : (int)r;
}
