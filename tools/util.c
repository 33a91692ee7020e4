/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t clock_ns(clockid_t id)
{
        struct timespec ts;

        clock_gettime(id, &ts);
        return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t now_ns(void)
{
        return clock_ns(CLOCK_MONOTONIC);
}

int64_t now_coarse_ns(void)
{
        return clock_ns(CLOCK_MONOTONIC_COARSE);
}

void sleep_ns(int64_t ns)
{
        struct timespec ts = {(time_t)(ns / NS_PER_SEC), (long)(ns % NS_PER_SEC)};

        nanosleep(&ts, NULL);
}

int util_parse_size(const char *s, uint64_t *out)
{
        static const char suffixes[] = "KMGT";
        const char *suffix;
        unsigned long long v;
        unsigned shift = 0;
        char *end;

        if (!s || !isdigit((unsigned char)s[0]))
                return -1;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno)
                return -1;
        /* One letter of "KMGT" (not the string's terminating NUL): 2^10 each. */
        suffix = *end ? strchr(suffixes, toupper((unsigned char)*end)) : NULL;
        if (suffix) {
                shift = 10 * (unsigned)(suffix - suffixes + 1);
                end++;
        }
        if (*end != '\0' || v > UINT64_MAX >> shift)
                return -1;
        *out = (uint64_t)v << shift;
        return 0;
}
