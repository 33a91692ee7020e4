/* SPDX-License-Identifier: MIT */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

static int parse_suffixed(const char *s, uint64_t *out, uint64_t base)
{
        unsigned long long v;
        uint64_t mul = 1;
        char *end;

        if (!s || !isdigit((unsigned char)s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno)
                return -EINVAL;
        switch (toupper((unsigned char)*end)) {
        case 'T':
                mul *= base;
                /* fall through */
        case 'G':
                mul *= base;
                /* fall through */
        case 'M':
                mul *= base;
                /* fall through */
        case 'K':
                mul *= base;
                end++;
                break;
        default:
                break;
        }
        if (*end != '\0')
                return -EINVAL;
        if (v > UINT64_MAX / mul)
                return -EINVAL;
        *out = (uint64_t)v * mul;
        return 0;
}

int parse_size(const char *s, uint64_t *out)
{
        return parse_suffixed(s, out, 1024);
}

int parse_rate(const char *s, uint64_t *out)
{
        return parse_suffixed(s, out, 1000);
}
