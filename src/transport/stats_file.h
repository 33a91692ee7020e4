/* SPDX-License-Identifier: MIT */
/*
 * The live statistics file's layout (docs/stats.md) and its writer
 * (stats_file.c): a header, then one record per queue pair.  The writer is
 * handed each record whole; what goes in it is the queue pair's (qp.c).
 * The reader is stats.c (ntbt_stats_read).
 */
#ifndef NTBT_TRANSPORT_STATS_FILE_H
#define NTBT_TRANSPORT_STATS_FILE_H

#include <stdint.h>

#include <ntbt/dev.h>
#include <ntbt/stats.h>

#define STATS_MAGIC   "NTBTSTAT"
#define STATS_VERSION 1u

/* The file: a header, then qp_count records of rec_size bytes. */
struct stats_hdr {
        char magic[8];
        uint32_t version;
        uint32_t hdr_size;  /* bytes before record 0 */
        uint32_t rec_size;  /* bytes per record */
        uint32_t ncounters; /* u64 counters per record */
        uint32_t qp_count;
        uint32_t pid;
        uint32_t port;
        uint32_t transport_up;
        uint8_t reserved[24];
};

struct stats_rec {
        uint64_t seq; /* odd while the owner rewrites the record */
        uint32_t present, state, tx_mode, poll_mode;
        int64_t update_ns; /* CLOCK_MONOTONIC of the last write */
        uint64_t c[NTBT_STATS_COUNTERS];
};

_Static_assert(sizeof(struct stats_hdr) == 64, "stats header layout");
_Static_assert(sizeof(struct stats_rec) == 32 + 8 * NTBT_STATS_COUNTERS, "stats record layout");

struct stats_file;

/* Make the file for dev's transport; NULL (logged) if it cannot be made. */
struct stats_file *stats_file_open(struct ntbt_dev *dev, uint32_t qp_count);
/* Remove and unmap; NULL is a no-op. */
void stats_file_close(struct stats_file *f);
/* The header's transport_up word (the event thread's alone). */
void stats_file_transport_up(struct stats_file *f, int up);
/*
 * Rewrite record num with v (its seq ignored).  keep_state: leave the
 * record's state as it is (a sender publishing counters; only the owner
 * knows the state).  Never waits: returns 0 when another writer holds the
 * record, 1 when written.
 */
int stats_file_write(struct stats_file *f, unsigned num, const struct stats_rec *v, int keep_state);
/* Record num is free again (waits out a writer); the QP's number may be reused after. */
void stats_file_qp_gone(struct stats_file *f, unsigned num);

#endif
