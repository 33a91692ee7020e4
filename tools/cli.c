/* SPDX-License-Identifier: MIT */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "../src/util/parse.h"

void cli_err(const char *ctx, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "ntbt: %s: ", ctx);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static void log_to_stderr(void *ctx, int level, const char *msg)
{
        int verbose = *(int *)ctx;

        if (level <= NTBT_LOG_WARN || (verbose && level <= NTBT_LOG_INFO) || verbose > 1)
                fprintf(stderr, "ntbt: %s\n", msg);
}

void cli_install_log(int verbose)
{
        static int v;

        v = verbose;
        ntbt_set_log(log_to_stderr, &v);
}

int cli_size(const char *ctx, const char *opt, const char *arg, uint64_t *out)
{
        if (parse_size(arg, out)) {
                cli_err(ctx, "bad value for %s: '%s' (a number with optional K/M/G)", opt, arg);
                return -1;
        }
        return 0;
}

const char *cli_fmt_bytes(uint64_t v, char *buf, int len)
{
        static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        int u = 0;

        while (u < 4 && v >= 1024 && v % 1024 == 0) {
                v /= 1024;
                u++;
        }
        snprintf(buf, (size_t)len, "%llu %s", (unsigned long long)v, unit[u]);
        return buf;
}

int cli_open_dev(const char *ctx, const char *spec, struct ntbt_dev **out)
{
        char name[PATH_MAX], path[PATH_MAX];
        int ret;

        /* An shm device that does not exist yet is created with the spec's
         * defaults; a peer creating it at the same time makes ours -EEXIST,
         * and the open then waits for its magic. */
        if (!strncmp(spec, "shm:", 4)) {
                size_t n = strcspn(spec + 4, ",");

                if (n < sizeof(name)) {
                        memcpy(name, spec + 4, n);
                        name[n] = '\0';
                        if (!ntbt_shm_path(name, path, sizeof(path)) && access(path, F_OK) &&
                            errno == ENOENT) {
                                ret = ntbt_shm_create(name, NULL);
                                if (ret && ret != -EEXIST) {
                                        cli_err(ctx, "%s: create: %s", spec, strerror(-ret));
                                        return ret;
                                }
                        }
                }
        }
        ret = ntbt_dev_open(spec, out);
        if (ret)
                cli_err(ctx, "%s: %s", spec, strerror(-ret));
        return ret;
}
