/* SPDX-License-Identifier: MIT */
/*
 * The structs that cross the library's ABI with a leading uint32_t size
 * (options the caller gives, results the library fills), handled by the one
 * rule <ntbt/ntbt.h> states, the kernel's for extensible structs
 * (copy_struct_from_user):
 *
 *   size is the caller's sizeof, at least the struct's first version's
 *   (min below: 4 for an options struct, whose every field has a default;
 *   the whole first version for a result).  Given to us (abi_in), the
 *   bytes beyond our struct must be zero (-E2BIG: an option this build does
 *   not know), and the fields the caller's lacks keep our defaults.  Filled by us
 *   (abi_out), we write min(size, ours) bytes and set size to that count.
 *
 * Header-only: the util layer's files do not call each other
 * (tests/layers.py), and these are a few lines.
 */
#ifndef NTBT_UTIL_ABI_H
#define NTBT_UTIL_ABI_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* An options struct's least size: the size field alone (every option has a
 * default). */
#define ABI_OPTS_VER0 sizeof(uint32_t)
/* A result struct's least size: its first version, which ends at field
 * last (fields are only ever added after it). */
#define ABI_SIZE_TO(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

/* The size field of a caller's struct (its first 4 bytes). */
static inline uint32_t abi_size(const void *p)
{
        uint32_t n;

        memcpy(&n, p, sizeof(n));
        return n;
}

/*
 * The caller's options src into our struct dst of dst_size bytes, which
 * holds the defaults: the fields src lacks keep them.  0, -EINVAL when src's
 * size is under min (or 4), -E2BIG when it sets a byte beyond ours.  dst's
 * size field then says dst_size.
 */
static inline int abi_in(void *dst, size_t dst_size, const void *src, size_t min)
{
        const uint8_t *s = src;
        size_t n = abi_size(src), i, copy;
        uint32_t ours = (uint32_t)dst_size;

        if (n < sizeof(uint32_t) || n < min)
                return -EINVAL;
        for (i = dst_size; i < n; i++)
                if (s[i])
                        return -E2BIG;
        copy = n < dst_size ? n : dst_size;
        memcpy(dst, src, copy);
        memcpy(dst, &ours, sizeof(ours));
        return 0;
}

/* Whether the caller's result struct dst is one abi_out may fill: 0 or -EINVAL. */
static inline int abi_out_ok(const void *dst, size_t min)
{
        size_t n = abi_size(dst);

        return n < sizeof(uint32_t) || n < min ? -EINVAL : 0;
}

/*
 * Our result src of src_size bytes into the caller's struct dst: the first
 * min(its size, src_size) bytes, and its size set to that count.  0, or
 * -EINVAL (abi_out_ok) with dst untouched.
 */
static inline int abi_out(void *dst, const void *src, size_t src_size, size_t min)
{
        size_t n = abi_size(dst);
        uint32_t w;

        if (abi_out_ok(dst, min))
                return -EINVAL;
        w = (uint32_t)(n < src_size ? n : src_size);
        memcpy(dst, src, w);
        memcpy(dst, &w, sizeof(w));
        return 0;
}

#endif
