/* SPDX-License-Identifier: MIT */
/*
 * Live per-QP statistics, readable from another process.
 *
 * A transport on a named device (shm:NAME, pcie:NAME) publishes its queue
 * pairs' counters in a file next to the device file: the device path with
 * ".stats-PORT" appended (/dev/shm/ntbt-NAME.stats-0).  Each QP's owner
 * (the event thread, or the thread calling ntbt_qp_poll) rewrites its
 * record at most every 100 ms and on every link change; the file goes when
 * the transport closes.  The layout is in docs/stats.md; the device file
 * itself (spec/shm-device.md, format 1) is not touched.
 */
#ifndef NTBT_STATS_H
#define NTBT_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <ntbt/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Counters per QP: NTBT_QP_COUNTERS (<ntbt/transport.h>) in that order,
 * spec section 8's names, then ntbt's own. */
#define NTBT_STATS_ONE_(name, source, description) +1
#define NTBT_STATS_COUNTERS                        (0 NTBT_QP_COUNTERS(NTBT_STATS_ONE_))
/* The counter names, NTBT_STATS_COUNTERS of them. */
const char *ntbt_stats_counter_name(int i);

/* QP link states as published. */
enum ntbt_stats_state {
        NTBT_STATS_DOWN = 0,
        NTBT_STATS_WAIT_PEER = 1, /* we sent LINK_DOWN; waiting for the peer to re-request */
        NTBT_STATS_HANDSHAKE = 2, /* our QP_LINKS bit is set; waiting for the peer's */
        NTBT_STATS_UP = 3,
};

struct ntbt_stats_qp {
        uint32_t qp_num;
        int present;    /* a QP object exists for this number */
        int state;      /* enum ntbt_stats_state */
        int tx_mode;    /* enum ntbt_tx_mode */
        int poll_mode;  /* 1: poll mode, 0: event mode */
        int64_t age_ns; /* since the owner last wrote the record */
        uint64_t c[NTBT_STATS_COUNTERS];
};

/*
 * A statistics snapshot.  size: the caller's sizeof(struct ntbt_stats), as
 * for every struct with a size field (<ntbt/ntbt.h>).  The field came with
 * soname libntbt.so.1; a program built against .so.0's struct, which had
 * none, must be rebuilt.
 */
struct ntbt_stats {
        uint32_t size;    /* the caller's sizeof(struct ntbt_stats): <ntbt/ntbt.h> */
        int pid;          /* the process running the transport */
        int alive;        /* 1 if that process still runs; 0: the file is stale */
        int port;         /* the device port the transport claimed */
        int transport_up; /* the transport-level handshake is done */
        uint32_t qp_count;
        struct ntbt_stats_qp qp[NTBT_MAX_QPS];
};

/* The statistics file of device NAME's port PORT. */
int ntbt_stats_path(const char *name, int port, char *buf, size_t len);

/*
 * Read the statistics of device NAME's port PORT.  0; -ENOENT when no
 * transport has published any; -EINVAL (and a message through the log hook)
 * when the file is malformed; -EAGAIN when the records kept changing under
 * the reader.
 */
int ntbt_stats_read(const char *name, int port, struct ntbt_stats *out);
/* Remove port's statistics file of device name, if it is one (-EINVAL, and
 * it stays, if the path holds anything else; -ENOENT if there is none). */
int ntbt_stats_remove(const char *name, int port);

#ifdef __cplusplus
}
#endif
#endif
