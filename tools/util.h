/* SPDX-License-Identifier: MIT */
/*
 * The tools' own small helpers: a clock and number parsing.  The tools use
 * the library through its public headers only (<ntbt/...>); these are not
 * part of its API.
 */
#ifndef NTBT_TOOLS_UTIL_H
#define NTBT_TOOLS_UTIL_H

#include <stdint.h>

#define NS_PER_MS  1000000LL
#define NS_PER_SEC 1000000000LL

/* Monotonic time in nanoseconds. */
int64_t now_ns(void);
/* The same clock at tick resolution (a few ms), cheaper: for deadlines. */
int64_t now_coarse_ns(void);
/* Sleep about ns nanoseconds (a signal may end it early). */
void sleep_ns(int64_t ns);

/*
 * An unsigned decimal, 0x-hex or 0-octal number (as strtoull reads it with
 * base 0) with an optional binary suffix K, M, G or T (case-insensitive;
 * "4K" = 4096).  0, or -1 for an empty string, a sign or space in front,
 * anything after the suffix, or overflow.
 */
int util_parse_size(const char *s, uint64_t *out);

/* Tell the CPU we are spinning (saves power, yields to a sibling thread). */
static inline void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
