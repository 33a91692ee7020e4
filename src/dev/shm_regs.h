/* SPDX-License-Identifier: MIT */
/*
 * The "shm" device's register map, spec/shm-device.md format 2: every byte
 * another program sees.  Offsets are asserted so that the structs cannot
 * drift from the spec.
 */
#ifndef NTBT_DEV_SHM_REGS_H
#define NTBT_DEV_SHM_REGS_H

#include <stddef.h>
#include <stdint.h>

#define SHM_MAGIC          "NTBTSHM2"
#define SHM_MAGIC_V1       "NTBTSHM1" /* refused: the device must be created again */
#define SHM_FORMAT         2
#define SHM_HEADER_BYTES   0x3000u
#define SHM_PORT_OFFSET(p) (0x1000u + (uint32_t)(p)*0x1000u)
#define SHM_PORT_FREE      0
#define SHM_PORT_CLAIMED   1

/* owner_kind */
#define SHM_OWNER_NONE    0
#define SHM_OWNER_PROCESS 1 /* a process of the host that made the file: pid is valid */
#define SHM_OWNER_REMOTE  2 /* anything else (a guest): judged by its heartbeat */

/* Limits and defaults (spec table "Device header"). */
#define SHM_MW_COUNT_MIN   1
#define SHM_MW_COUNT_MAX   8
#define SHM_MW_COUNT_DEF   2
#define SHM_SPAD_MIN       6
#define SHM_SPAD_MAX       64
#define SHM_SPAD_DEF       16
#define SHM_DB_BITS_MIN    2
#define SHM_DB_BITS_MAX    64
#define SHM_DB_BITS_DEF    16
#define SHM_MW_SIZE_MIN    4096ull
#define SHM_MW_SIZE_MAX    (1ull << 30)
#define SHM_MW_SIZE_DEF    (4ull << 20)
#define SHM_XLAT_ALIGN_MIN 4096ull
#define SHM_XLAT_ALIGN_DEF 4096ull
#define SHM_HEARTBEAT_MIN  10u
#define SHM_HEARTBEAT_MAX  10000u
#define SHM_HEARTBEAT_DEF  100u
#define SHM_REMOTE_TMO_MAX 60000u
#define SHM_REMOTE_TMO_DEF 1000u

struct shm_hdr {
        char magic[8];
        uint32_t format;
        uint32_t header_bytes;
        uint32_t mw_count;
        uint32_t spad_count;
        uint64_t db_valid_mask;
        uint64_t mw_size;
        uint64_t xlat_align;
        uint64_t file_bytes;
        uint32_t link_seq;
        uint32_t heartbeat_ms;
        uint32_t remote_timeout_ms;
        uint32_t reserved0;
        uint64_t window_offset;
};

_Static_assert(offsetof(struct shm_hdr, format) == 0x08, "format");
_Static_assert(offsetof(struct shm_hdr, header_bytes) == 0x0C, "header_bytes");
_Static_assert(offsetof(struct shm_hdr, mw_count) == 0x10, "mw_count");
_Static_assert(offsetof(struct shm_hdr, spad_count) == 0x14, "spad_count");
_Static_assert(offsetof(struct shm_hdr, db_valid_mask) == 0x18, "db_valid_mask");
_Static_assert(offsetof(struct shm_hdr, mw_size) == 0x20, "mw_size");
_Static_assert(offsetof(struct shm_hdr, xlat_align) == 0x28, "xlat_align");
_Static_assert(offsetof(struct shm_hdr, file_bytes) == 0x30, "file_bytes");
_Static_assert(offsetof(struct shm_hdr, link_seq) == 0x38, "link_seq");
_Static_assert(offsetof(struct shm_hdr, heartbeat_ms) == 0x3C, "heartbeat_ms");
_Static_assert(offsetof(struct shm_hdr, remote_timeout_ms) == 0x40, "remote_timeout_ms");
_Static_assert(offsetof(struct shm_hdr, window_offset) == 0x48, "window_offset");

struct shm_port {
        uint32_t state;
        uint32_t pid;
        uint32_t generation;
        uint32_t link_enabled;
        uint32_t owner_kind;
        uint32_t heartbeat;
        uint8_t reserved0[0x28];
        uint64_t db;
        uint64_t db_mask;
        uint32_t db_seq;
        uint32_t db_sleepers;
        uint8_t reserved1[0x28];
        uint32_t spad[SHM_SPAD_MAX];
        uint64_t xlat_size[SHM_MW_COUNT_MAX];
};

_Static_assert(offsetof(struct shm_port, pid) == 0x004, "pid");
_Static_assert(offsetof(struct shm_port, generation) == 0x008, "generation");
_Static_assert(offsetof(struct shm_port, link_enabled) == 0x00C, "link_enabled");
_Static_assert(offsetof(struct shm_port, owner_kind) == 0x010, "owner_kind");
_Static_assert(offsetof(struct shm_port, heartbeat) == 0x014, "heartbeat");
_Static_assert(offsetof(struct shm_port, db) == 0x040, "db");
_Static_assert(offsetof(struct shm_port, db_mask) == 0x048, "db_mask");
_Static_assert(offsetof(struct shm_port, db_seq) == 0x050, "db_seq");
_Static_assert(offsetof(struct shm_port, db_sleepers) == 0x054, "db_sleepers");
_Static_assert(offsetof(struct shm_port, spad) == 0x080, "spad");
_Static_assert(offsetof(struct shm_port, xlat_size) == 0x180, "xlat_size");
_Static_assert(sizeof(struct shm_port) <= 0x1000, "port page");

/* The header bytes an opener reads and checks (up to window_offset). */
#define SHM_HDR_READ 0x50

/* A device header's geometry, checked. */
struct shm_geom {
        uint32_t mw_count, spad_count, heartbeat_ms, remote_timeout_ms;
        uint64_t db_valid_mask, mw_size, xlat_align, file_bytes, window_offset;
};

/*
 * Check a device file's header (shm.c; tests/fuzz calls it too): raw holds
 * the first SHM_HDR_READ bytes of the file, of which n were read (the rest
 * zero), and file_size is the file's size.  0 with *g filled in; -EAGAIN if
 * the magic is not written yet (all zero: the creator writes it last); or
 * -EINVAL or -EPROTO, with a log line that names path and the bad field.
 * An accepted geometry is within the spec's limits and matches file_size.
 */
int shm_hdr_parse(const char *path, const uint8_t *raw, size_t n, uint64_t file_size,
                  struct shm_geom *g);

#endif
