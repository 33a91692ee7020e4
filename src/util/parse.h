/* SPDX-License-Identifier: MIT */
#ifndef NTBT_UTIL_PARSE_H
#define NTBT_UTIL_PARSE_H

#include <stdint.h>

/*
 * Parse an unsigned decimal or 0x-hex number with an optional binary suffix
 * K, M, G or T (case-insensitive; "4K" = 4096).  Rejects empty strings, signs,
 * trailing garbage and overflow with -EINVAL.
 */
int parse_size(const char *s, uint64_t *out);
/* The same with decimal suffixes (k = 1000...), for rates such as "2G" bytes/s. */
int parse_rate(const char *s, uint64_t *out);

#endif
