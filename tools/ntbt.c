/* SPDX-License-Identifier: MIT */
/* The ntbt command: one binary, one subcommand per job. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *what;
} cmds[] = {
    {"dev", cmd_dev, "create, list, remove and inspect emulated NTB devices"},
    {"send", cmd_send, "send standard input over a queue pair"},
    {"recv", cmd_recv, "write what a queue pair receives to standard output"},
    {"ping", cmd_ping, "round-trip latency over a queue pair"},
    {"perf", cmd_perf, "throughput and message rate over queue pairs"},
    {"tun", cmd_tun, "a network interface (TAP) over queue pairs"},
};

static void usage(FILE *f)
{
        size_t i;

        fprintf(f, "usage: ntbt COMMAND [ARGS...]\n"
                   "       ntbt -V|--version\n"
                   "       ntbt -h|--help\n\n"
                   "The Linux ntb_transport protocol (v4) in userspace.\n\ncommands:\n");
        for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                fprintf(f, "  %-6s %s\n", cmds[i].name, cmds[i].what);
        fprintf(f, "\n'ntbt COMMAND --help' describes each.  Devices are named by strings\n"
                   "TYPE:NAME[,key=value...], e.g. shm:demo or shm:demo,port=1.\n"
                   "Exit status: 0 success, 1 the work failed, 2 a usage error.\n");
}

int main(int argc, char **argv)
{
        size_t i;

        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
                printf("ntbt %s\n", NTBT_VERSION);
                return 0;
        }
        for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                if (!strcmp(argv[1], cmds[i].name))
                        return cmds[i].fn(argc - 1, argv + 1);
        fprintf(stderr, "ntbt: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
}
