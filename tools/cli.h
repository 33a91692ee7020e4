/* SPDX-License-Identifier: MIT */
/* Helpers shared by the ntbt subcommands. */
#ifndef NTBT_TOOLS_CLI_H
#define NTBT_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>

/* Print "ntbt: <ctx>: <message>" to stderr. */
void cli_err(const char *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Install a library log hook that prints errors and warnings to stderr. */
void cli_install_log(int verbose);
/* Parse a size with K/M/G suffix or fail with a message naming the option. */
int cli_size(const char *ctx, const char *opt, const char *arg, uint64_t *out);
/* Parse --tx inline|thread into an enum ntbt_tx_mode; -1 after a message on error. */
int cli_tx_mode(const char *ctx, const char *arg);
const char *cli_tx_mode_name(int mode);
/* Format bytes with a binary suffix ("4 MiB") into buf. */
const char *cli_fmt_bytes(uint64_t v, char *buf, int len);

struct ntbt_dev;
struct ntbt_transport;
struct ntbt_qp;
struct ntbt_qp_handlers;
/* Open a device, creating an shm device with default geometry if it does not exist. */
int cli_open_dev(const char *ctx, const char *spec, struct ntbt_dev **out);

/* A device, a transport on it, and one QP whose link was requested. */
struct cli_endpoint {
        struct ntbt_dev *dev;
        struct ntbt_transport *t;
        struct ntbt_qp *qp;
};
int cli_endpoint_open(const char *ctx, const char *spec, int qp, uint32_t mtu, uint32_t max_qps,
                      uint32_t flags, int poll, int tx_mode, const struct ntbt_qp_handlers *h,
                      void *hctx, struct cli_endpoint *e);
void cli_endpoint_close(struct cli_endpoint *e);

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
