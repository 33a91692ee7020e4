/* SPDX-License-Identifier: MIT */
/* ntbt perf: the command, a sweep over the sizes (perf.h). */
#include <stdlib.h>
#include <sys/resource.h>

#include <ntbt/ntbt.h>

#include "perf.h"

/* ---- loopback ---- */

struct loop_arg {
        struct perf_opts *o;
        uint32_t size;
        struct perf_result res;
        int rc, ran;
};

static int role_server(const char *ctx, const char *spec, void *arg)
{
        struct perf_opts o = *((struct loop_arg *)arg)->o;

        o.c.dev = spec;
        return run_server(ctx, &o);
}

static int role_client(const char *ctx, const char *spec, void *arg)
{
        struct loop_arg *a = arg;
        struct perf_opts o = *a->o;

        o.c.dev = spec;
        a->ran = 1;
        a->rc = run_client(ctx, &o, a->size, 1, &a->res);
        return a->rc;
}

/* One size under --loopback: a private device and a server of its own.
 * The exit status; *ran is 0 when nothing ran (a bad device string, or no
 * device). */
static int loopback_one(const char *ctx, struct perf_opts *o, uint32_t size,
                        struct perf_result *res, int *ran)
{
        struct loop_arg a = {.o = o, .size = size};
        struct rusage ru = {0};
        int r;

        r = cli_run_loopback(ctx, o->c.dev, role_server, role_client, &a, &ru);
        *ran = a.ran;
        if (!a.ran)
                return r;
        *res = a.res;
        if (a.res.seconds > 0)
                res->cpu_server = ru_seconds(&ru) / a.res.seconds * 100;
        if (r && !a.rc)
                res->failed = 1; /* the server failed */
        return a.rc == 2 ? 2 : r;
}

/* ---- the sweep ---- */

/* Every size in turn, each row as it ends (without interval lines), the
 * table or the JSON document at the end: the exit status. */
static int sweep(const char *ctx, struct perf_opts *o, struct perf_result *res)
{
        int i, n = 0, rc = 0;

        for (i = 0; i < o->nsizes; i++) {
                int r, ran = 1;

                if (o->c.loopback)
                        r = loopback_one(ctx, o, o->sizes[i], &res[i], &ran);
                else
                        r = run_client(ctx, o, o->sizes[i], i == o->nsizes - 1, &res[i]);
                if (!ran || r == 2) { /* no run, or a usage error, said: no result */
                        rc = r;
                        break;
                }
                n = i + 1;
                if (o->output == PERF_OUT_JSON_LINES)
                        print_json_line(o, &res[i]);
                else if (o->output == PERF_OUT_TEXT && !o->interval && res[i].seconds > 0)
                        print_row(o, &res[i]);
                if (r)
                        rc = r;
        }
        if (o->output == PERF_OUT_JSON && n)
                print_json_doc(o, res, n, rc);
        if (o->output == PERF_OUT_TEXT && o->interval) {
                print_header(o);
                for (i = 0; i < o->nsizes; i++)
                        if (res[i].seconds > 0)
                                print_row(o, &res[i]);
        }
        return rc;
}

int cmd_perf(int argc, char **argv)
{
        struct perf_opts o = {.seconds = 1.0, .qps = 1, .interval = -1};
        const char *ctx = "perf";
        struct perf_result *res;
        int rc;

        rc = perf_parse(argc, argv, &o);
        if (rc != CLI_RUN)
                return rc;
        cli_start(ctx, &o.c);
        if (o.c.server)
                return run_server("perf server", &o);
        rc = perf_sizes(ctx, &o);
        if (rc)
                return rc;
        res = calloc((size_t)o.nsizes, sizeof(*res));
        if (!res)
                return 1;
        rc = sweep(ctx, &o, res);
        free(res);
        return rc;
}
