/* SPDX-License-Identifier: MIT */
/*
 * Administration of "shm" devices (spec/shm-device.md, format 1): create,
 * remove and inspect the shared-memory file.  Opening a port is
 * ntbt_dev_open("shm:NAME[,port=N]").
 *
 * NAME is 1-64 characters of [A-Za-z0-9_.-] (the object /dev/shm/ntbt-NAME)
 * or an absolute path to a file.
 */
#ifndef NTBT_SHM_H
#define NTBT_SHM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NTBT_SHM_FORMAT   1
#define NTBT_SHM_MAX_MW   8
#define NTBT_SHM_MAX_SPAD 64

/* Geometry of a new device.  A zero field takes the spec's default. */
struct ntbt_shm_geom {
        uint32_t size; /* sizeof(struct ntbt_shm_geom) */
        uint32_t mw_count;
        uint32_t spad_count;
        uint32_t db_bits;
        uint64_t mw_size;
        uint64_t xlat_align;
};

/* Create a device (-EEXIST if it exists, -EINVAL with a log line for bad geometry). */
int ntbt_shm_create(const char *name, const struct ntbt_shm_geom *geom);
/* Remove a device file (-ENOENT if there is none). */
int ntbt_shm_remove(const char *name);
/* The file path behind a name, written into buf. */
int ntbt_shm_path(const char *name, char *buf, size_t len);

struct ntbt_shm_port_info {
        uint32_t state, pid, generation, link_enabled;
        int alive; /* 1 if state is claimed and the owner process lives */
        uint64_t db, db_mask;
        uint32_t db_seq, db_sleepers;
        uint32_t spad[NTBT_SHM_MAX_SPAD];
        uint64_t xlat_size[NTBT_SHM_MAX_MW];
};

struct ntbt_shm_info {
        uint32_t size; /* set by the caller to sizeof(struct ntbt_shm_info) */
        uint32_t format, mw_count, spad_count;
        uint64_t db_valid_mask, mw_size, xlat_align, file_bytes;
        uint32_t link_seq;
        int link_up;
        struct ntbt_shm_port_info port[2];
};

/* Validate a device file and snapshot its registers without claiming a port. */
int ntbt_shm_inspect(const char *name, struct ntbt_shm_info *info);

#ifdef __cplusplus
}
#endif
#endif
