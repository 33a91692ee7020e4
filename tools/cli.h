/* SPDX-License-Identifier: MIT */
/* Helpers shared by the ntbt subcommands. */
#ifndef NTBT_TOOLS_CLI_H
#define NTBT_TOOLS_CLI_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* The project's version (CMake's project version, a compile definition). */
#ifndef NTBT_VERSION
#define NTBT_VERSION "unknown"
#endif

/* Print "ntbt: <ctx>: <message>" to stderr. */
void cli_err(const char *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Install a library log hook that prints errors and warnings to stderr. */
void cli_install_log(int verbose);
/*
 * Numeric options.  Messages name the option and give the valid range:
 * "--mtu: 'abc' is not a number (16-1G)", "--qp 40 is out of range (0-31)".
 * 0, or -1 after the message (a usage error: exit 2).
 */
struct option;
/* "--NAME" of the getopt_long option whose val is c (short or long form). */
const char *cli_optname(const struct option *opts, int c, char *buf, size_t len);
/* A whole number (decimal or 0x, K/M/G suffixes) in lo..hi. */
int cli_uint(const char *ctx, const char *opt, const char *arg, uint64_t lo, uint64_t hi,
             uint64_t *out);
/* Seconds: in lo..hi, and above lo when lo_open. */
int cli_seconds(const char *ctx, const char *opt, const char *arg, double lo, int lo_open,
                double hi, double *out);
/* Parse --tx inline|thread into an enum ntbt_tx_mode; -1 after a message on error. */
int cli_tx_mode(const char *ctx, const char *arg);
const char *cli_tx_mode_name(int mode);
/* Format bytes with a binary suffix ("4 MiB") into buf. */
const char *cli_fmt_bytes(uint64_t v, char *buf, int len);

struct ntbt_dev;
struct ntbt_transport;
struct ntbt_qp;
struct ntbt_qp_handlers;
/*
 * Open a device, creating an shm device with default geometry if it does not
 * exist; 0 or a negative errno (the library has said why).  The statistics
 * file the transport will publish is removed if a signal ends the process
 * before cli_close_dev.
 */
int cli_open_dev(const char *ctx, const char *spec, struct ntbt_dev **out);
void cli_close_dev(struct ntbt_dev *dev);
/* The exit status for a failed open: 2 for a bad device string (-EINVAL), else 1. */
int cli_dev_status(int err);

/* A device, a transport on it, and one QP whose link was requested. */
struct cli_endpoint {
        struct ntbt_dev *dev;
        struct ntbt_transport *t;
        struct ntbt_qp *qp;
};
/* 0, or the exit status (1, or 2 for a bad device string) after a message. */
int cli_endpoint_open(const char *ctx, const char *spec, int qp, uint32_t mtu, uint32_t max_qps,
                      uint32_t flags, int poll, int tx_mode, const struct ntbt_qp_handlers *h,
                      void *hctx, struct cli_endpoint *e);
void cli_endpoint_close(struct cli_endpoint *e);
/*
 * Wait up to timeout_ns (< 0: for ever) for e's queue pair to link.  After a
 * second, say once on stderr what we wait for, and name a peer that is there
 * but does not match (the transport's mismatch report).  0 when up,
 * -ETIMEDOUT (after saying so, naming --timeout), or the QP's error.
 */
int cli_wait_peer(const char *ctx, const char *dev, struct cli_endpoint *e, int qpn,
                  int64_t timeout_ns);

/*
 * --loopback: create a fresh private shm device named after DEV's NAME and
 * build the device string for it (DEV's type and options kept).
 */
int cli_private_device(const char *ctx, const char *dev, char *name, size_t nlen, char *spec,
                       size_t slen);

/*
 * Remove the shm device NAME and the statistics files a transport on either
 * port may have left (a killed one cannot remove its own): 0 or a negative
 * errno from removing the device.
 */
int cli_remove_device(const char *name);

/*
 * Leftovers: paths to remove if SIGINT, SIGTERM, SIGHUP or SIGPIPE ends the
 * process (a private --loopback device, statistics files).  The handler
 * unlinks them (async-signal-safe), sends SIGTERM to the --loopback server,
 * and re-raises the signal with its default action, so that the exit status
 * says "killed by signal".  A signal that was ignored when the process
 * started (nohup) stays ignored.  Add and remove from the main thread.
 */
void cli_cleanup_install(void);
/* Register path under owner (any pointer); 0, or -ENOSPC when full. */
int cli_cleanup_add(const void *owner, const char *path);
/* Forget every path registered under owner. */
void cli_cleanup_del(const void *owner);

/*
 * send and recv's progress: on a terminal (stderr) and without -q, one line
 * refreshed every 0.5 s: bytes, rate, elapsed; at the end one summary line,
 * also printed with -v when stderr is not a terminal.
 */
struct cli_progress {
        const char *ctx;
        const uint64_t *bytes; /* the count, updated with relaxed atomics */
        int live, summary;
        int64_t t0, t1; /* t0: atomic, 0 until the data starts */
        int stop, drawn;
        int has_thread;
        pthread_t thread;
};
void cli_progress_start(struct cli_progress *p, const char *ctx, const uint64_t *bytes, int quiet,
                        int verbose);
/* The data starts now (any thread). */
void cli_progress_begin(struct cli_progress *p);
/* Stop the live line and clear it (before printing anything else). */
void cli_progress_stop(struct cli_progress *p);
/* Stop, then the summary: "ctx: N bytes in S s, R/s" and extra. */
void cli_progress_end(struct cli_progress *p, const char *extra);

/* One side of a two-sided tool, run on the device string spec. */
typedef int (*cli_role_fn)(const char *ctx, const char *spec, void *opts);
/*
 * --loopback: a private device named after dev, the server in a forked
 * child (forked before any thread starts), the client here; the device is
 * removed afterwards.  Returns the client's exit code, or 1 if the server
 * failed.  server_ru (may be NULL) receives the server's resource use.
 */
struct rusage;
int cli_run_loopback(const char *ctx, const char *dev, cli_role_fn server, cli_role_fn client,
                     void *opts, struct rusage *server_ru);

/*
 * After option parsing in a two-sided tool (ping, perf): no stray argument,
 * --dev given, exactly one role; then the log hook, and the UNSAFE warning
 * for NTBT_TRANSPORT_UNSAFE_NO_FLUSH.  0, or 2 (a usage error) after a message.
 */
int cli_two_sided_opts(const char *ctx, int argc, char **argv, int optind_, const char *dev,
                       int nroles, int verbose, uint32_t transport_flags);

int cmd_dev(int argc, char **argv);
int cmd_perf(int argc, char **argv);
int cmd_tun(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_recv(int argc, char **argv);

#endif
