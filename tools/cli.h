/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the ntbt subcommands: cli.c (messages, numbers, the
 * shared options, devices and endpoints), cleanup.c (what a signal must not
 * leave behind, --loopback), progress.c (send and recv's progress line).
 */
#ifndef NTBT_TOOLS_CLI_H
#define NTBT_TOOLS_CLI_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <getopt.h>

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
/* A JSON string's contents on stdout: quotes, backslashes and control
 * characters escaped. */
void cli_json_str(const char *v);
/* Format bytes with a binary suffix ("4 MiB") into buf. */
const char *cli_fmt_bytes(uint64_t v, char *buf, int len);

/*
 * The options that the commands share, parsed once here (cli_parse).  A
 * command lists those it has in its getopt_long table, with the values
 * below (the CLI_O_* entries), and parses the rest itself.
 */
struct cli_common {
        const char *dev;              /* -d, --dev DEV */
        int qp;                       /* --qp N, 0-31 */
        uint32_t mtu;                 /* -m, --mtu BYTES (tun: the interface's MTU), 0: default */
        uint32_t max_qps;             /* --max-qps N, 0-32 */
        int tx_mode;                  /* --tx inline|thread: enum ntbt_tx_mode */
        double timeout;               /* --timeout SECS; 0: the command's default */
        int json;                     /* -j, --json */
        int verbose;                  /* -v, --verbose, repeated */
        int server, client, loopback; /* two-sided commands: the role */
        uint32_t flags;               /* --unsafe-no-flush: NTBT_TRANSPORT_UNSAFE_NO_FLUSH */
};

/* getopt_long values of the shared options without a short form;
 * commands' own options use letters or values from CLI_OPT_OWN. */
enum {
        CLI_OPT_QP = 0x100,
        CLI_OPT_MAX_QPS,
        CLI_OPT_TX,
        CLI_OPT_TIMEOUT,
        CLI_OPT_SERVER,
        CLI_OPT_CLIENT,
        CLI_OPT_LOOPBACK,
        CLI_OPT_UNSAFE_NO_FLUSH,
        CLI_OPT_OWN = 0x200,
};
/* clang-format off */
#define CLI_O_DEV      {"dev", required_argument, NULL, 'd'}
#define CLI_O_QP       {"qp", required_argument, NULL, CLI_OPT_QP}
#define CLI_O_MTU      {"mtu", required_argument, NULL, 'm'}
#define CLI_O_MAX_QPS  {"max-qps", required_argument, NULL, CLI_OPT_MAX_QPS}
#define CLI_O_TX       {"tx", required_argument, NULL, CLI_OPT_TX}
#define CLI_O_TIMEOUT  {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT}
#define CLI_O_JSON     {"json", no_argument, NULL, 'j'}
#define CLI_O_VERBOSE  {"verbose", no_argument, NULL, 'v'}
#define CLI_O_HELP     {"help", no_argument, NULL, 'h'}
#define CLI_O_SERVER   {"server", no_argument, NULL, CLI_OPT_SERVER}
#define CLI_O_CLIENT   {"client", no_argument, NULL, CLI_OPT_CLIENT}
#define CLI_O_LOOPBACK {"loopback", no_argument, NULL, CLI_OPT_LOOPBACK}
#define CLI_O_UNSAFE   {"unsafe-no-flush", no_argument, NULL, CLI_OPT_UNSAFE_NO_FLUSH}
#define CLI_O_END      {0, 0, 0, 0}
/* A two-sided command's roles (cli_cmd.two_sided: exactly one is given). */
#define CLI_O_ROLES    CLI_O_SERVER, CLI_O_CLIENT, CLI_O_LOOPBACK
/* clang-format on */

/* cli_parse's answer when the command is to run (else an exit status). */
#define CLI_RUN (-1)
/* A command's option handler's answer for an option it leaves to cli_parse. */
#define CLI_NOT_MINE (-2)

/* A command's options. */
struct cli_cmd {
        const char *ctx;           /* "send": messages read "ntbt send: ..." */
        const char *usage;         /* the --help text */
        const char *shortopts;     /* getopt's, "d:m:qvh" */
        const struct option *opts; /* the long options, in --help's order */
        uint32_t mtu_lo;           /* --mtu's least value; the most is 1G */
        int two_sided;             /* one of --server, --client, --loopback */
        /*
         * Offered every option but -h first (may be NULL): 0 when taken, 2
         * after a message, or CLI_NOT_MINE for a shared option (or an
         * unknown one).  own is what cli_parse was given.
         */
        int (*option)(const struct cli_cmd *cmd, int c, const char *arg, void *own);
        /* After the options, before the checks below (may be NULL):
         * CLI_RUN, or the exit status after a message. */
        int (*check)(const struct cli_cmd *cmd, void *own);
};

/*
 * Parse argv (argv[0] is the command's name) into c and, through
 * cmd->option, own; then refuse a stray argument, a missing --dev and, for
 * a two-sided command, anything but one role.  CLI_RUN; 0 after --help; 2
 * after a message (a usage error).  c keeps what it held for options not
 * given (the command's defaults).
 */
int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_common *c, void *own);
/* cli_uint for the option whose getopt value is c, named as cmd's table names it. */
int cli_opt_uint(const struct cli_cmd *cmd, int c, const char *arg, uint64_t lo, uint64_t hi,
                 uint64_t *out);
/*
 * After cli_parse: the library's log hook (-v), the cleanup of leftovers on
 * signals (cli_cleanup_install), and the warning that --unsafe-no-flush is
 * on.
 */
void cli_start(const char *ctx, const struct cli_common *c);
/* --timeout in nanoseconds, or dflt (< 0: for ever) when not given. */
int64_t cli_timeout_ns(const struct cli_common *c, int64_t dflt);

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

/* How to open an endpoint. */
struct cli_endpoint_opts {
        const char *dev;              /* the device string */
        int qp;                       /* the queue pair */
        uint32_t mtu, max_qps, flags; /* the transport's options */
        int poll;                     /* the QP in poll mode (else event mode) */
        int tx_mode;                  /* enum ntbt_tx_mode */
        const struct ntbt_qp_handlers *handlers;
        void *handlers_ctx;
};
/* The endpoint options that the shared options give (all but poll and the handlers). */
struct cli_endpoint_opts cli_endpoint_opts(const struct cli_common *c);

/* A device, a transport on it, and one QP whose link was requested. */
struct cli_endpoint {
        struct ntbt_dev *dev;
        struct ntbt_transport *t;
        struct ntbt_qp *qp;
        const char *spec; /* the device string */
        int qpn;          /* the QP's number */
};
/* 0, or the exit status (1, or 2 for a bad device string) after a message. */
int cli_endpoint_open(const char *ctx, const struct cli_endpoint_opts *o, struct cli_endpoint *e);
void cli_endpoint_close(struct cli_endpoint *e);
/*
 * Wait up to timeout_ns (< 0: for ever) for e's queue pair to link.  After a
 * second, say once on stderr what we wait for, and name a peer that is there
 * but does not match (the transport's mismatch report).  0 when up,
 * -ETIMEDOUT (after saying so, naming --timeout), or the QP's error.
 */
int cli_wait_peer(const char *ctx, struct cli_endpoint *e, int64_t timeout_ns);
/* The messages of a wait for the peer, for a command that waits its own
 * way: each says its line once, at the call after a second of waiting. */
struct cli_waiting {
        int said, said_mismatch;
};
void cli_waiting_note(const char *ctx, const struct cli_endpoint *e, struct cli_waiting *w);
/* "ntbt: CTX: DEV: no peer on queue pair N within SECS s (--timeout)" */
void cli_no_peer(const char *ctx, const struct cli_endpoint *e, double secs);

/* ---- cleanup.c ---- */

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

/* ---- progress.c ---- */

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

/* ---- cleanup.c: --loopback ---- */

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

/* ---- the commands (cmd_*.c, perf/) ---- */

int cmd_dev(int argc, char **argv);
int cmd_perf(int argc, char **argv);
int cmd_tun(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_recv(int argc, char **argv);

#endif
