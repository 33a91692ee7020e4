/* SPDX-License-Identifier: MIT */
/* ntbt: the Linux ntb_transport protocol (v4) in userspace. */

/*
 * Structs with a size field.  A struct the caller passes by pointer that
 * starts with "uint32_t size" (struct ntbt_transport_opts, ntbt_qp_opts,
 * ntbt_shm_geom: options we read; struct ntbt_dev_parsed, ntbt_qp_stats,
 * ntbt_shm_info, ntbt_stats: results we fill) can grow at its end from one
 * release to the next.  The caller sets size to its own sizeof, and one rule holds for
 * them all (the kernel's for extensible structs, copy_struct_from_user):
 *
 *  - size must be at least the struct's first version: 4 for options (the
 *    size field alone: every option has a default), the whole first
 *    version for a result.  Less is -EINVAL.
 *  - Options from an older caller (a smaller struct): the fields it lacks
 *    take their defaults (what a zero there means, except qp_num's
 *    NTBT_QP_ANY).  From a newer one (larger): the bytes beyond ours must be
 *    zero, else -E2BIG (it asks for an option this library does not have).
 *  - Results: we write as many bytes as both structs have, min(size, ours),
 *    and set size to that count; a newer caller's extra fields are left as
 *    they were.
 */
#ifndef NTBT_NTBT_H
#define NTBT_NTBT_H

#include <ntbt/log.h>
#include <ntbt/dev.h>
#include <ntbt/shm.h>
#include <ntbt/transport.h>
#include <ntbt/stats.h>

#endif
