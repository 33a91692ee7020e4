/* SPDX-License-Identifier: MIT */
/* ntbt: the Linux ntb_transport protocol (v4) in userspace. */
#ifndef NTBT_NTBT_H
#define NTBT_NTBT_H

#include <ntbt/log.h>
#include <ntbt/dev.h>
#include <ntbt/shm.h>
#include <ntbt/transport.h>
#include <ntbt/stats.h>

#endif
