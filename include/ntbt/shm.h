/* SPDX-License-Identifier: MIT */
/*
 * Administration of "shm" devices (spec/shm-device.md, format 2): create,
 * remove and inspect the shared-memory file.  Opening a port is
 * ntbt_dev_open("shm:NAME[,port=N]").
 *
 * NAME is 1-64 characters of [A-Za-z0-9_.-] (the object /dev/shm/ntbt-NAME)
 * or an absolute path to a file.
 */
#ifndef NTBT_SHM_H
#define NTBT_SHM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NTBT_SHM_FORMAT   2
#define NTBT_SHM_MAX_MW   8
#define NTBT_SHM_MAX_SPAD 64

/* Geometry of a new device.  A zero field takes the spec's default. */
struct ntbt_shm_geom {
        uint32_t size; /* sizeof(struct ntbt_shm_geom): <ntbt/ntbt.h>'s rule */
        uint32_t mw_count;
        uint32_t spad_count;
        uint32_t db_bits;
        uint64_t mw_size;
        uint64_t xlat_align;
        uint32_t heartbeat_ms;      /* how often owners beat (10-10000, default 100) */
        uint32_t remote_timeout_ms; /* a silent remote owner is gone after this (default 1000) */
};

/* Create a device, its header pages and windows allocated (-EEXIST if it
 * exists, -EINVAL with a log line for bad geometry, -ENOSPC with one when
 * the file system cannot hold it). */
int ntbt_shm_create(const char *name, const struct ntbt_shm_geom *geom);
/* Remove a device file (-ENOENT if there is none). */
int ntbt_shm_remove(const char *name);
/* The file path behind a name, written into buf. */
int ntbt_shm_path(const char *name, char *buf, size_t len);

/* owner_kind values */
#define NTBT_SHM_OWNER_NONE    0
#define NTBT_SHM_OWNER_PROCESS 1 /* a process of this host; pid is valid */
#define NTBT_SHM_OWNER_REMOTE  2 /* e.g. a QEMU guest's driver; judged by its heartbeat */

struct ntbt_shm_port_info {
        uint32_t state, pid, generation, link_enabled;
        uint32_t owner_kind, heartbeat;
        /* How long the inspection watched before heartbeat moved: an upper
         * bound on its age; -1 if it did not move within remote_timeout_ms
         * (or the port is free). */
        int32_t heartbeat_age_ms;
        int alive; /* claimed, and the owner lives (its pid, or its heartbeat if remote) */
        uint64_t db, db_mask;
        uint32_t db_seq, db_sleepers;
        uint32_t spad[NTBT_SHM_MAX_SPAD];
        uint64_t xlat_size[NTBT_SHM_MAX_MW];
};

struct ntbt_shm_info {
        uint32_t size; /* sizeof(struct ntbt_shm_info): <ntbt/ntbt.h>'s rule */
        uint32_t format, mw_count, spad_count;
        uint64_t db_valid_mask, mw_size, xlat_align, file_bytes, window_offset;
        uint32_t link_seq, heartbeat_ms, remote_timeout_ms;
        int link_up;
        struct ntbt_shm_port_info port[2];
};

/* Validate a device file and snapshot its registers without claiming a port.
 * Watches the claimed ports' heartbeats until each has moved, for at most
 * remote_timeout_ms (about heartbeat_ms when the owners are alive). */
int ntbt_shm_inspect(const char *name, struct ntbt_shm_info *info);

#ifdef __cplusplus
}
#endif
#endif
