/* SPDX-License-Identifier: MIT */
/* ntbt dev create|rm|show: administration of emulated (shm) devices. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

#include "util.h"
#include "cli.h"

static const char dev_usage[] =
    "usage: ntbt dev create NAME [--mw-count N] [--mw-size SIZE] [--spad-count N]\n"
    "                            [--db-bits N] [--xlat-align SIZE]\n"
    "                            [--heartbeat-ms MS] [--remote-timeout-ms MS]\n"
    "       ntbt dev rm NAME\n"
    "       ntbt dev rm --stale [NAME...]\n"
    "       ntbt dev list [--json]\n"
    "       ntbt dev show NAME [--json] [--watch [SECS]] [--count N]\n"
    "       ntbt dev show kdev:DEV [--json]\n"
    "       ntbt dev -h|--help\n"
    "\n"
    "Create, remove or inspect an emulated NTB device (docs/spec/shm-device.md,\n"
    "format 2).  NAME may be written shm:NAME.  Exit status 2: a usage error (a bad\n"
    "option, value or geometry); 1: the work failed.\n"
    "list shows every device in /dev/shm (its size, each port's owner and whether\n"
    "it lives, and whether the device is in use, idle or stale) and every statistics\n"
    "file, live or stale.  rm --stale removes the stale ones: a device that a killed\n"
    "owner left (a port claimed by an owner that is gone, or the private device of\n"
    "a --loopback run whose process is gone) that no live owner (a process, or a\n"
    "remote one such as a QEMU guest, judged by its heartbeat) holds and that no\n"
    "process has open or mapped; a statistics file whose device is gone, whose\n"
    "port no live owner holds, or whose writer exited.  An idle device (both ports\n"
    "free, as dev create leaves it) is kept: remove it by name.  With NAMEs, only\n"
    "those, and a NAME that is not stale is an error.\n"
    "show prints the device registers and, for each port where a transport runs,\n"
    "its queue pairs: link state, copy mode, and the kernel's debugfs counters\n"
    "(spec section 8) with ntbt's own, as the transport publishes them live\n"
    "(docs/stats.md).  --watch refreshes every SECS seconds (default 1) with the\n"
    "rates since the last look, until interrupted or --count N refreshes.\n"
    "NAME is 1-64 of [A-Za-z0-9_.-] (the object /dev/shm/ntbt-NAME) or an absolute\n"
    "path.\n"
    "Sizes take K, M and G suffixes.  Defaults: 2 windows of 4M, 16 scratchpads,\n"
    "16 doorbell bits, xlat-align 4K, heartbeat every 100 ms, a silent remote owner\n"
    "(a QEMU guest) gone after 1000 ms.  The file is a power of two in size so that\n"
    "QEMU can map it as the BAR of an ivshmem-plain device.\n"
    "show lists each port's owner (a process of this host, or remote) and how soon\n"
    "its heartbeat moved (it waits up to remote-timeout-ms for that).\n"
    "show kdev:/dev/ntbt-userN (or kdev:NTBDEV) shows an NTB that Linux drives,\n"
    "through the ntb_user bridge: the hardware, its windows, doorbells and\n"
    "scratchpads (docs/hardware.md).\n";

/* NAME, or shm:NAME as a device string says it. */
static const char *shm_name(const char *arg)
{
        return strncmp(arg, "shm:", 4) ? arg : arg + 4;
}

/* dev create's option c (named opt) into g: 0, 2 after a message, or -1
 * for one that is not a geometry option. */
static int geom_option(const char *ctx, const char *opt, int c, const char *arg,
                       struct ntbt_shm_geom *g)
{
        uint64_t v;

        switch (c) {
        case 'w':
        case 'p':
        case 'd':
        case 'b':
        case 't': {
                /* The spec's limits (docs/spec/shm-device.md); the library
                 * checks the rest (remote-timeout-ms at least twice
                 * heartbeat-ms). */
                uint32_t *field = c == 'w'   ? &g->mw_count
                                  : c == 'p' ? &g->spad_count
                                  : c == 'd' ? &g->db_bits
                                  : c == 'b' ? &g->heartbeat_ms
                                             : &g->remote_timeout_ms;
                uint64_t lo = c == 'w' ? 1 : c == 'p' ? 6 : c == 'd' ? 2 : c == 'b' ? 10 : 20;
                uint64_t hi = c == 'w'   ? NTBT_SHM_MAX_MW
                              : c == 'p' ? NTBT_SHM_MAX_SPAD
                              : c == 'd' ? 64
                              : c == 'b' ? 10000
                                         : 60000;

                if (cli_uint(ctx, opt, arg, lo, hi, &v))
                        return 2;
                *field = (uint32_t)v;
                return 0;
        }
        case 's':
        case 'a':
                if (cli_uint(ctx, opt, arg, 4096, 1u << 30, &v))
                        return 2;
                if (v & (v - 1)) {
                        cli_err(ctx, "%s %s is not a power of two (4K-1G)", opt, arg);
                        return 2;
                }
                if (c == 's')
                        g->mw_size = v;
                else
                        g->xlat_align = v;
                return 0;
        }
        return -1;
}

static int dev_create(int argc, char **argv)
{
        static const struct option opts[] = {
            {"mw-count", required_argument, NULL, 'w'},
            {"mw-size", required_argument, NULL, 's'},
            {"spad-count", required_argument, NULL, 'p'},
            {"db-bits", required_argument, NULL, 'd'},
            {"xlat-align", required_argument, NULL, 'a'},
            {"heartbeat-ms", required_argument, NULL, 'b'},
            {"remote-timeout-ms", required_argument, NULL, 't'},
            {"help", no_argument, NULL, 'h'},
            {0, 0, 0, 0},
        };
        struct ntbt_shm_geom g = {.size = sizeof(g)};
        const char *ctx = "dev create", *name;
        int c, ret;
        char opt[32];

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                if (c == 'h') {
                        fputs(dev_usage, stdout);
                        return 0;
                }
                ret = geom_option(ctx, cli_optname(opts, c, opt, sizeof(opt)), c, optarg, &g);
                if (ret < 0) {
                        fputs(dev_usage, stderr);
                        return 2;
                }
                if (ret)
                        return ret;
        }
        if (optind != argc - 1) {
                cli_err(ctx, "expected one device NAME");
                return 2;
        }
        name = shm_name(argv[optind]);
        ret = ntbt_shm_create(name, &g);
        if (ret) {
                /* -EINVAL: a bad name, or geometry the library refused (it said why). */
                cli_err(ctx, "%s: %s", name, strerror(-ret));
                return ret == -EINVAL ? 2 : 1;
        }
        return 0;
}

/* ---- dev list, dev rm --stale ---- */

/* What sits in /dev/shm under the device prefix: a device or a statistics file. */
struct shm_entry {
        char name[72]; /* the device's NAME (a statistics file: its device's) */
        int port;      /* -1: the device; 0 or 1: that port's statistics file */
        char path[PATH_MAX + 256];
        int regular; /* a regular file, not a link, FIFO or directory */
        dev_t st_dev;
        ino_t st_ino;
        uint64_t bytes;
        pid_t holder; /* a process that has it open or mapped, or 0 */
        /* a device */
        int inspected, in_use, left, stale;
        struct ntbt_shm_info info;
        /* a statistics file */
        int has_stats;
        struct ntbt_stats stats;
        const char *why; /* why it is stale, or what it is */
};

struct shm_list {
        struct shm_entry *e;
        int n, cap;
};

static int entry_cmp(const void *a, const void *b)
{
        const struct shm_entry *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c ? c : x->port - y->port;
}

/* The directory and the file-name prefix of named devices: the library's
 * path of a device called "x", less the "x". */
static int shm_prefix(char *dir, size_t dlen, const char **prefix)
{
        static char path[PATH_MAX];
        char *slash;

        if (ntbt_shm_path("x", path, sizeof(path)))
                return -EINVAL;
        slash = strrchr(path, '/');
        if (!slash)
                return -EINVAL;
        *slash = '\0';
        snprintf(dir, dlen, "%s", path);
        slash[strlen(slash + 1)] = '\0'; /* "ntbt-x" less the "x" */
        *prefix = slash + 1;
        return 0;
}

static int list_add(struct shm_list *l, const char *name, int port, const char *path)
{
        struct shm_entry *e;
        struct stat st;

        if (l->n == l->cap) {
                int cap = l->cap ? 2 * l->cap : 16;
                struct shm_entry *ne = realloc(l->e, (size_t)cap * sizeof(*ne));

                if (!ne)
                        return -ENOMEM;
                l->e = ne;
                l->cap = cap;
        }
        e = &l->e[l->n];
        memset(e, 0, sizeof(*e));
        snprintf(e->name, sizeof(e->name), "%s", name);
        snprintf(e->path, sizeof(e->path), "%s", path);
        e->port = port;
        if (lstat(path, &st))
                return 0; /* gone since readdir */
        e->regular = S_ISREG(st.st_mode);
        e->st_dev = st.st_dev;
        e->st_ino = st.st_ino;
        e->bytes = (uint64_t)st.st_size;
        l->n++;
        return 0;
}

/* Every device and statistics file under the prefix (names the library
 * accepts only), sorted by name, the device before its statistics. */
static int list_scan(struct shm_list *l)
{
        char dir[PATH_MAX], path[PATH_MAX + 256];
        const char *prefix;
        struct dirent *de;
        size_t plen;
        DIR *d;
        int ret = 0;

        memset(l, 0, sizeof(*l));
        if (shm_prefix(dir, sizeof(dir), &prefix))
                return -EINVAL;
        plen = strlen(prefix);
        d = opendir(dir);
        if (!d)
                return -errno;
        while (!ret && (de = readdir(d))) {
                char name[72];
                const char *rest = de->d_name + plen;
                size_t n = strlen(rest);
                int port = -1;

                if (strncmp(de->d_name, prefix, plen) || n == 0)
                        continue;
                /* NAME.stats-0 and NAME.stats-1 are NAME's statistics files. */
                if (n > 8 && !strncmp(rest + n - 8, ".stats-", 7) &&
                    (rest[n - 1] == '0' || rest[n - 1] == '1')) {
                        port = rest[n - 1] - '0';
                        n -= 8;
                }
                if (n >= sizeof(name))
                        continue;
                memcpy(name, rest, n);
                name[n] = '\0';
                if (ntbt_shm_path(name, path, sizeof(path)))
                        continue; /* not a name ntbt gives */
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                ret = list_add(l, name, port, path);
        }
        closedir(d);
        if (l->n)
                qsort(l->e, (size_t)l->n, sizeof(*l->e), entry_cmp);
        return ret;
}

/* For each entry, a process (other than us) that has it open or mapped:
 * the file descriptors and memory maps under /proc.  QEMU maps a device
 * before its guest claims a port; the heartbeat cannot tell that. */
static void find_holders(struct shm_list *l)
{
        struct dirent *pe;
        DIR *proc;
        pid_t self = getpid();

        proc = opendir("/proc");
        if (!proc)
                return;
        while ((pe = readdir(proc))) {
                char path[PATH_MAX], line[PATH_MAX + 128];
                struct dirent *fe;
                pid_t pid = (pid_t)atoi(pe->d_name);
                DIR *fds;
                FILE *maps;
                int i;

                if (pid <= 0 || pid == self)
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
                fds = opendir(path);
                while (fds && (fe = readdir(fds))) {
                        char fpath[PATH_MAX];
                        struct stat st;

                        if (fe->d_name[0] == '.')
                                continue;
                        snprintf(fpath, sizeof(fpath), "/proc/%d/fd/%s", (int)pid, fe->d_name);
                        if (stat(fpath, &st))
                                continue;
                        for (i = 0; i < l->n; i++)
                                if (!l->e[i].holder && l->e[i].st_ino == st.st_ino &&
                                    l->e[i].st_dev == st.st_dev)
                                        l->e[i].holder = pid;
                }
                if (fds)
                        closedir(fds);
                snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
                maps = fopen(path, "r");
                while (maps && fgets(line, sizeof(line), maps)) {
                        unsigned int maj, min;
                        unsigned long long ino;

                        if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &ino) != 3 || !ino)
                                continue;
                        for (i = 0; i < l->n; i++)
                                if (!l->e[i].holder && l->e[i].st_ino == (ino_t)ino &&
                                    l->e[i].st_dev == makedev(maj, min))
                                        l->e[i].holder = pid;
                }
                if (maps)
                        fclose(maps);
        }
        closedir(proc);
}

static int pid_gone(long pid)
{
        return pid > 0 && pid <= 0x3fffffff && kill((pid_t)pid, 0) && errno == ESRCH;
}

/* NAME-loop-PID: the private device of a --loopback run by PID. */
static int loopback_owner_gone(const char *name)
{
        const char *p = strstr(name, "-loop-");
        char *end;
        long pid;

        if (!p)
                return 0;
        while (strstr(p + 1, "-loop-"))
                p = strstr(p + 1, "-loop-");
        pid = strtol(p + 6, &end, 10);
        return p[6] && !*end && pid_gone(pid);
}

/* A port is held while its owner lives, or while its heartbeat moved during
 * the look (an owner whose pid means nothing here: another PID namespace). */
static int port_held(const struct ntbt_shm_port_info *p)
{
        return p->state == 1 && (p->alive || p->heartbeat_age_ms >= 0);
}

/* Whether the device e is in use, stale or idle. */
static void judge_device(struct shm_entry *e)
{
        if (!e->regular) {
                e->why = "not a regular file";
                return;
        }
        e->info.size = sizeof(e->info);
        if (ntbt_shm_inspect(e->name, &e->info)) {
                e->why = "not a readable ntbt device";
                return;
        }
        e->inspected = 1;
        e->in_use = port_held(&e->info.port[0]) || port_held(&e->info.port[1]);
        e->left = (e->info.port[0].state == 1 && !port_held(&e->info.port[0])) ||
                  (e->info.port[1].state == 1 && !port_held(&e->info.port[1])) ||
                  loopback_owner_gone(e->name);
        e->stale = !e->in_use && !e->holder && e->left;
        e->why = e->in_use   ? "in use"
                 : e->holder ? "open or mapped by a process"
                 : e->stale  ? "stale"
                             : "idle";
}

/* Whether the statistics file e is live or stale; dev is its device's
 * entry (judged already), or NULL. */
static void judge_stats(struct shm_entry *e, const struct shm_entry *dev)
{
        if (!e->regular) {
                e->why = "not a regular file";
                return;
        }
        e->stats.size = sizeof(e->stats);
        e->has_stats = ntbt_stats_read(e->name, e->port, &e->stats) == 0;
        if (!e->has_stats && e->bytes > 0) {
                /* Someone else's file, or a header being written:
                 * ntbt_stats_remove would refuse it anyway. */
                e->why = "not a statistics file (or one being written)";
                return;
        }
        if (dev && dev->inspected && port_held(&dev->info.port[e->port]) &&
            (!e->has_stats || e->stats.alive)) {
                e->why = e->has_stats ? "live" : "being created";
                return;
        }
        if (dev && !dev->inspected && !dev->stale) {
                e->why = "its device is not readable";
                return;
        }
        if (e->holder) {
                e->why = "mapped by a process";
                return;
        }
        e->stale = 1;
        e->why = !dev                                   ? "stale: its device is gone"
                 : !port_held(&dev->info.port[e->port]) ? "stale: its port is not held"
                                                        : "stale: its writer exited";
}

/* Judge every device, then every statistics file. */
static void list_judge(struct shm_list *l)
{
        int i, j;

        find_holders(l);
        for (i = 0; i < l->n; i++)
                if (l->e[i].port < 0)
                        judge_device(&l->e[i]);
        for (i = 0; i < l->n; i++) {
                const struct shm_entry *dev = NULL;

                if (l->e[i].port < 0)
                        continue;
                for (j = 0; j < l->n; j++)
                        if (l->e[j].port < 0 && !strcmp(l->e[j].name, l->e[i].name))
                                dev = &l->e[j];
                judge_stats(&l->e[i], dev);
        }
}

static const char *owner_text(const struct ntbt_shm_port_info *p, char *buf, size_t len)
{
        if (p->state == 0)
                snprintf(buf, len, "free");
        else if (p->owner_kind == NTBT_SHM_OWNER_REMOTE)
                snprintf(buf, len, "remote, %s", port_held(p) ? "alive" : "gone");
        else
                snprintf(buf, len, "pid %u, %s", p->pid, port_held(p) ? "alive" : "gone");
        return buf;
}

/* A JSON string, quoted. */
static void json_quoted(const char *v)
{
        putchar('"');
        cli_json_str(v);
        putchar('"');
}

/* dev list: a device's row. */
static void list_device_text(const struct shm_entry *e)
{
        char b0[48], b1[48], sz[32];

        printf("%-24s %9s  %-20s %-20s %s", e->name, cli_fmt_bytes(e->bytes, sz, sizeof(sz)),
               e->inspected ? owner_text(&e->info.port[0], b0, sizeof(b0)) : "-",
               e->inspected ? owner_text(&e->info.port[1], b1, sizeof(b1)) : "-", e->why);
        if (e->holder && !e->in_use)
                printf(" (pid %d)", (int)e->holder);
        printf("\n");
}

/* dev list --json: a device's object, after a comma unless first. */
static void list_device_json(const struct shm_entry *e, int first)
{
        printf("%s{\"name\":", first ? "" : ",");
        json_quoted(e->name);
        printf(",\"path\":");
        json_quoted(e->path);
        printf(",\"bytes\":%llu,\"state\":\"%s\",\"stale\":%s,\"holder_pid\":%d,\"ports\":[",
               (unsigned long long)e->bytes, e->why, e->stale ? "true" : "false", (int)e->holder);
        for (int p = 0; e->inspected && p < 2; p++) {
                const struct ntbt_shm_port_info *pi = &e->info.port[p];

                printf("%s{\"port\":%d,\"claimed\":%s,\"owner_kind\":\"%s\",\"pid\":%u,"
                       "\"alive\":%s}",
                       p ? "," : "", p, pi->state == 1 ? "true" : "false",
                       pi->owner_kind == NTBT_SHM_OWNER_REMOTE    ? "remote"
                       : pi->owner_kind == NTBT_SHM_OWNER_PROCESS ? "process"
                                                                  : "none",
                       pi->pid, port_held(pi) ? "true" : "false");
        }
        printf("]}");
}

/* dev list --json: a statistics file's object, after a comma unless first. */
static void list_stats_json(const struct shm_entry *e, int first)
{
        printf("%s{\"name\":", first ? "" : ",");
        json_quoted(e->name);
        printf(",\"port\":%d,\"path\":", e->port);
        json_quoted(e->path);
        printf(",\"pid\":%d,\"writer_alive\":%s,\"state\":\"%s\",\"stale\":%s}",
               e->has_stats ? e->stats.pid : 0, e->has_stats && e->stats.alive ? "true" : "false",
               e->why, e->stale ? "true" : "false");
}

static void list_print(const struct shm_list *l, int json)
{
        int i, first = 1, nstats = 0;

        if (json)
                printf("{\"devices\":[");
        else
                printf("%-24s %9s  %-20s %-20s %s\n", "DEVICE", "SIZE", "PORT 0", "PORT 1",
                       "STATE");
        for (i = 0; i < l->n; i++) {
                if (l->e[i].port >= 0)
                        nstats++;
                else if (json)
                        list_device_json(&l->e[i], first), first = 0;
                else
                        list_device_text(&l->e[i]);
        }
        if (json)
                printf("],\"stats\":[");
        else if (nstats)
                printf("\n%-44s %8s  %s\n", "STATISTICS FILE", "PID", "STATE");
        for (i = 0, first = 1; i < l->n; i++) {
                const struct shm_entry *e = &l->e[i];

                if (e->port < 0)
                        continue;
                if (json)
                        list_stats_json(e, first), first = 0;
                else
                        printf("%-44s %8d  %s\n", e->path, e->has_stats ? e->stats.pid : 0, e->why);
        }
        if (json)
                printf("]}\n");
}

static int dev_list(int argc, char **argv)
{
        struct shm_list l;
        int i, json = 0, ret;

        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--json")) {
                        json = 1;
                } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        fputs(dev_usage, stdout);
                        return 0;
                } else {
                        cli_err("dev list", "unexpected argument '%s'", argv[i]);
                        return 2;
                }
        }
        ret = list_scan(&l);
        if (ret) {
                cli_err("dev list", "%s", strerror(-ret));
                return 1;
        }
        list_judge(&l);
        list_print(&l, json);
        free(l.e);
        return 0;
}

/* Keep only the entries of the NAMEs given (if any); 0, or 1 after saying
 * that a NAME has none. */
static int rm_select(const char *ctx, struct shm_list *l, int argc, char **argv)
{
        int i, k, rc = 0;

        for (i = 0; argc && i < l->n; i++) {
                for (k = 0; k < argc && strcmp(shm_name(argv[k]), l->e[i].name); k++)
                        ;
                if (k == argc)
                        l->e[i--] = l->e[--l->n];
        }
        if (argc && l->n)
                qsort(l->e, (size_t)l->n, sizeof(*l->e), entry_cmp);
        for (k = 0; k < argc; k++) {
                for (i = 0; i < l->n && strcmp(shm_name(argv[k]), l->e[i].name); i++)
                        ;
                if (i == l->n) {
                        cli_err(ctx, "%s: no such device or statistics file", shm_name(argv[k]));
                        rc = 1;
                }
        }
        return rc;
}

/* Remove the stale device e; 0, or 1 after a message. */
static int rm_stale_device(const char *ctx, const struct shm_entry *e)
{
        /* Look again just before: an owner may have come since. */
        struct ntbt_shm_info in = {.size = sizeof(in)};
        int ret;

        if (ntbt_shm_inspect(e->name, &in) == 0 &&
            (port_held(&in.port[0]) || port_held(&in.port[1]))) {
                cli_err(ctx, "%s: an owner came; not removing it", e->name);
                return 1;
        }
        ret = ntbt_shm_remove(e->name);
        if (ret && ret != -ENOENT) {
                cli_err(ctx, "%s: %s", e->name, strerror(-ret));
                return 1;
        }
        printf("removed device %s (%s)\n", e->name, e->path);
        return 0;
}

/* e, if stale; a device named but not stale is an error.  0, or 1 after a
 * message. */
static int rm_entry(const char *ctx, const struct shm_entry *e, int named)
{
        char b0[48], b1[48], owners[128] = "";
        int ret;

        if (e->port < 0 && e->stale)
                return rm_stale_device(ctx, e);
        if (e->port >= 0 && e->stale) {
                ret = ntbt_stats_remove(e->name, e->port);
                if (ret && ret != -ENOENT) {
                        cli_err(ctx, "%s: %s", e->path, strerror(-ret));
                        return 1;
                }
                printf("removed statistics file %s (%s)\n", e->path, e->why + strlen("stale: "));
                return 0;
        }
        if (!named || e->port >= 0)
                return 0;
        if (e->inspected)
                snprintf(owners, sizeof(owners), " (port 0: %s; port 1: %s)",
                         owner_text(&e->info.port[0], b0, sizeof(b0)),
                         owner_text(&e->info.port[1], b1, sizeof(b1)));
        cli_err(ctx, "%s: %s%s, not stale; not removing it", e->name, e->why, owners);
        return 1;
}

/* dev rm --stale [NAME...] */
static int dev_rm_stale(int argc, char **argv)
{
        const char *ctx = "dev rm";
        struct shm_list l;
        int i, k, ret, rc;

        for (k = 0; k < argc; k++) {
                char path[PATH_MAX];

                if (argv[k][0] == '-' || ntbt_shm_path(shm_name(argv[k]), path, sizeof(path)) ||
                    shm_name(argv[k])[0] == '/') {
                        cli_err(ctx, "%s: not a device NAME (1-64 of [A-Za-z0-9_.-])", argv[k]);
                        return 2;
                }
        }
        ret = list_scan(&l);
        if (ret) {
                cli_err(ctx, "%s", strerror(-ret));
                return 1;
        }
        rc = rm_select(ctx, &l, argc, argv);
        list_judge(&l);
        for (i = 0; i < l.n; i++)
                rc |= rm_entry(ctx, &l.e[i], argc > 0);
        free(l.e);
        return rc;
}

static int dev_rm(int argc, char **argv)
{
        char path[PATH_MAX];
        const char *name;
        int ret;

        if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
                fputs(dev_usage, stdout);
                return 0;
        }
        if (argc >= 2 && !strcmp(argv[1], "--stale"))
                return dev_rm_stale(argc - 2, argv + 2);
        if (argc >= 2 && argv[1][0] == '-') {
                cli_err("dev rm", "unexpected argument '%s'", argv[1]);
                return 2;
        }
        if (argc != 2) {
                cli_err("dev rm", "expected one device NAME (or --stale [NAME...])");
                return 2;
        }
        name = shm_name(argv[1]);
        if (ntbt_shm_path(name, path, sizeof(path))) {
                cli_err("dev rm",
                        "%s: not a device NAME (1-64 of [A-Za-z0-9_.-], or an "
                        "absolute path)",
                        argv[1]);
                return 2;
        }
        ret = cli_remove_device(name); /* and statistics a killed transport left */
        if (ret) {
                cli_err("dev rm", "%s: %s", name, strerror(-ret));
                return 1;
        }
        return 0;
}

static const char *port_state(const struct ntbt_shm_port_info *p)
{
        if (p->state == 0)
                return "free";
        if (p->state == 1)
                return p->alive ? "claimed" : "claimed (owner gone)";
        return "invalid";
}

static const char *owner_kind_name(uint32_t kind)
{
        static const char *const names[] = {"none", "process", "remote"};

        return kind < 3 ? names[kind] : "invalid";
}

static void fmt_hb_age(const struct ntbt_shm_port_info *p, uint32_t timeout_ms, char *buf,
                       size_t len)
{
        if (p->heartbeat_age_ms >= 0)
                snprintf(buf, len, "moved within %d ms", p->heartbeat_age_ms);
        else if (p->state == 1)
                snprintf(buf, len, "still for %u ms", timeout_ms);
        else
                snprintf(buf, len, "-");
}

static const char *const state_names[] = {"down", "waiting for the peer", "handshake", "up"};

/* The previous look, for --watch rates. */
static struct ntbt_stats prev_st[2];
static int have_prev[2];

static void show_stats_text(int port, const struct ntbt_stats *st, double dt)
{
        uint32_t i;
        int k;

        printf("    transport: pid %d%s, %s\n", st->pid, st->alive ? "" : " (exited: stale)",
               st->transport_up ? "linked" : "not linked (handshake pending)");
        for (i = 0; i < st->qp_count; i++) {
                const struct ntbt_stats_qp *q = &st->qp[i];

                if (!q->present) {
                        printf("    qp %u: not created\n", i);
                        continue;
                }
                printf("    qp %u: %s, %s mode, %s copy, updated %.0f ms ago", i,
                       state_names[q->state], q->poll_mode ? "poll" : "event",
                       cli_tx_mode_name(q->tx_mode), (double)q->age_ns / 1e6);
                if (dt > 0 && have_prev[port] && prev_st[port].qp[i].present) {
                        const struct ntbt_stats_qp *o = &prev_st[port].qp[i];

                        printf(", rx %.3f GB/s %.3f M pkt/s, tx %.3f GB/s %.3f M pkt/s",
                               (double)(q->c[0] - o->c[0]) / dt / 1e9,
                               (double)(q->c[1] - o->c[1]) / dt / 1e6,
                               (double)(q->c[10] - o->c[10]) / dt / 1e9,
                               (double)(q->c[11] - o->c[11]) / dt / 1e6);
                }
                printf("\n");
                for (k = 0; k < NTBT_STATS_COUNTERS; k++) {
                        int end = k % 4 == 3 || k == NTBT_STATS_COUNTERS - 1;

                        printf("%s%-14s %-*llu%s", k % 4 ? "" : "      ",
                               ntbt_stats_counter_name(k), end ? 1 : 14,
                               (unsigned long long)q->c[k], end ? "\n" : "");
                }
        }
}

static void show_text(const char *name, const struct ntbt_shm_info *in, const struct ntbt_stats *st,
                      const int *has_st, double dt)
{
        char b1[32], b2[32];
        uint32_t i;
        int p;

        printf("device %s: shm format %u, %llu bytes\n", name, in->format,
               (unsigned long long)in->file_bytes);
        printf("  windows      %u x %s (xlat_align %s)\n", in->mw_count,
               cli_fmt_bytes(in->mw_size, b1, sizeof(b1)),
               cli_fmt_bytes(in->xlat_align, b2, sizeof(b2)));
        printf("  scratchpads  %u\n", in->spad_count);
        printf("  doorbells    %d bits (valid mask 0x%llx)\n",
               __builtin_popcountll(in->db_valid_mask), (unsigned long long)in->db_valid_mask);
        printf("  liveness     heartbeat every %u ms, remote owner gone after %u ms\n",
               in->heartbeat_ms, in->remote_timeout_ms);
        printf("  link         %s (link_seq %u)\n", in->link_up ? "up" : "down", in->link_seq);
        for (p = 0; p < 2; p++) {
                const struct ntbt_shm_port_info *pi = &in->port[p];
                char age[48];

                fmt_hb_age(pi, in->remote_timeout_ms, age, sizeof(age));
                printf("  port %d: %s, owner %s, pid %u, generation %u, link_enabled %u\n", p,
                       port_state(pi), owner_kind_name(pi->owner_kind), pi->pid, pi->generation,
                       pi->link_enabled);
                printf("    heartbeat %u (%s)\n", pi->heartbeat, age);
                printf("    doorbell 0x%llx, mask 0x%llx, db_seq %u, sleepers %u\n",
                       (unsigned long long)pi->db, (unsigned long long)pi->db_mask, pi->db_seq,
                       pi->db_sleepers);
                for (i = 0; i < in->spad_count; i++)
                        if (pi->spad[i])
                                printf("    spad[%u] = 0x%08x (%u)\n", i, pi->spad[i], pi->spad[i]);
                for (i = 0; i < in->mw_count; i++)
                        if (pi->xlat_size[i])
                                printf("    mw%u translation %llu bytes\n", i,
                                       (unsigned long long)pi->xlat_size[i]);
                if (has_st[p])
                        show_stats_text(p, &st[p], dt);
        }
}

static void show_stats_json(const struct ntbt_stats *st)
{
        uint32_t i;
        int k;

        printf(",\"transport\":{\"pid\":%d,\"alive\":%s,\"linked\":%s,\"qps\":[", st->pid,
               st->alive ? "true" : "false", st->transport_up ? "true" : "false");
        for (i = 0; i < st->qp_count; i++) {
                const struct ntbt_stats_qp *q = &st->qp[i];
                static const char *const js[] = {"down", "wait_peer", "handshake", "up"};

                printf("%s{\"qp\":%u,\"present\":%s,\"state\":\"%s\",\"tx_mode\":\"%s\","
                       "\"poll_mode\":%s,\"age_ns\":%lld",
                       i ? "," : "", i, q->present ? "true" : "false", js[q->state],
                       cli_tx_mode_name(q->tx_mode), q->poll_mode ? "true" : "false",
                       (long long)q->age_ns);
                for (k = 0; k < NTBT_STATS_COUNTERS; k++)
                        printf(",\"%s\":%llu", ntbt_stats_counter_name(k),
                               (unsigned long long)q->c[k]);
                printf("}");
        }
        printf("]}");
}

static void show_json(const char *name, const struct ntbt_shm_info *in, const struct ntbt_stats *st,
                      const int *has_st)
{
        uint32_t i;
        int p;

        printf("{\"name\":\"");
        for (i = 0; name[i]; i++)
                if (name[i] == '"' || name[i] == '\\')
                        printf("\\%c", name[i]);
                else
                        putchar(name[i]);
        printf("\",\"format\":%u,\"file_bytes\":%llu,\"window_offset\":%llu,\"mw_count\":%u,"
               "\"mw_size\":%llu,\"xlat_align\":%llu,\"spad_count\":%u,\"db_valid_mask\":%llu,"
               "\"heartbeat_ms\":%u,\"remote_timeout_ms\":%u,\"link_seq\":%u,\"link_up\":%s,"
               "\"ports\":[",
               in->format, (unsigned long long)in->file_bytes,
               (unsigned long long)in->window_offset, in->mw_count, (unsigned long long)in->mw_size,
               (unsigned long long)in->xlat_align, in->spad_count,
               (unsigned long long)in->db_valid_mask, in->heartbeat_ms, in->remote_timeout_ms,
               in->link_seq, in->link_up ? "true" : "false");
        for (p = 0; p < 2; p++) {
                const struct ntbt_shm_port_info *pi = &in->port[p];

                printf("%s{\"port\":%d,\"state\":%u,\"alive\":%s,\"owner_kind\":\"%s\","
                       "\"pid\":%u,\"generation\":%u,\"heartbeat\":%u,\"heartbeat_age_ms\":%d,"
                       "\"link_enabled\":%u,\"db\":%llu,\"db_mask\":%llu,\"db_seq\":%u,"
                       "\"db_sleepers\":%u,\"spad\":[",
                       p ? "," : "", p, pi->state, pi->alive ? "true" : "false",
                       owner_kind_name(pi->owner_kind), pi->pid, pi->generation, pi->heartbeat,
                       pi->heartbeat_age_ms, pi->link_enabled, (unsigned long long)pi->db,
                       (unsigned long long)pi->db_mask, pi->db_seq, pi->db_sleepers);
                for (i = 0; i < in->spad_count; i++)
                        printf("%s%u", i ? "," : "", pi->spad[i]);
                printf("],\"xlat_size\":[");
                for (i = 0; i < in->mw_count; i++)
                        printf("%s%llu", i ? "," : "", (unsigned long long)pi->xlat_size[i]);
                printf("]");
                if (has_st[p])
                        show_stats_json(&st[p]);
                else
                        printf(",\"transport\":null");
                printf("}");
        }
        printf("]}\n");
}

/* dev show kdev: each window's sizes and alignment. */
static void kdev_windows(struct ntbt_dev *d, int json)
{
        int w, nmw = ntbt_dev_mw_count(d);

        for (w = 0; w < nmw; w++) {
                uint64_t out = 0, aa = 0, sa = 0, smax = 0;

                ntbt_dev_peer_mw_size(d, w, &out);
                ntbt_dev_mw_get_align(d, w, &aa, &sa, &smax);
                if (json)
                        printf("%s{\"outbound\":%llu,\"inbound_max\":%llu,\"addr_align\":%llu,"
                               "\"size_align\":%llu}",
                               w ? "," : "", (unsigned long long)out, (unsigned long long)smax,
                               (unsigned long long)aa, (unsigned long long)sa);
                else
                        printf("  window %d: outbound %llu bytes; inbound up to %llu, address "
                               "align %llu, size align %llu\n",
                               w, (unsigned long long)out, (unsigned long long)smax,
                               (unsigned long long)aa, (unsigned long long)sa);
        }
}

/* dev show kdev: the scratchpads, ours and the peer's. */
static void kdev_spads(struct ntbt_dev *d, int json)
{
        int i, nspad = ntbt_dev_spad_count(d);

        for (i = 0; i < nspad; i++) {
                uint32_t a = 0, b = 0;

                ntbt_dev_spad_read(d, i, &a);
                ntbt_dev_peer_spad_read(d, i, &b);
                if (json)
                        printf("%s[%u,%u]", i ? "," : "", a, b);
                else
                        printf("%s%x/%x", i % 8 ? " " : "\n    ", a, b);
        }
}

/* dev show kdev:...: the hardware's geometry and state, through the device
 * API (opening the bridge takes it: it fails while another process has it). */
static int show_kdev(const char *ctx, const char *spec, int json)
{
        struct ntbt_dev *d;
        char what[256] = "";
        uint64_t valid, db, mask;
        int ret, nspad;

        ret = ntbt_dev_open(spec, &d);
        if (ret) {
                cli_err(ctx, "%s: %s", spec, strerror(-ret));
                return 1;
        }
        ntbt_dev_describe(d, what, sizeof(what));
        nspad = ntbt_dev_spad_count(d);
        valid = ntbt_dev_db_valid_mask(d);
        db = ntbt_dev_db_read(d);
        mask = ntbt_dev_db_mask(d);
        if (json)
                printf("{\"device\":\"%s\",\"hardware\":\"%s\",\"port\":%d,\"link_up\":%s,"
                       "\"db_valid_mask\":%llu,\"db\":%llu,\"db_mask\":%llu,\"spad_count\":%d,"
                       "\"windows\":[",
                       spec, what, ntbt_dev_port(d), ntbt_dev_link_is_up(d) == 1 ? "true" : "false",
                       (unsigned long long)valid, (unsigned long long)db, (unsigned long long)mask,
                       nspad);
        else
                printf("%s: %s\n  link %s; doorbells 0x%llx (pending 0x%llx, masked 0x%llx); "
                       "%d scratchpads\n",
                       spec, what, ntbt_dev_link_is_up(d) == 1 ? "up" : "down",
                       (unsigned long long)valid, (unsigned long long)db, (unsigned long long)mask,
                       nspad);
        kdev_windows(d, json);
        if (json)
                printf("],\"spads\":[");
        else if (nspad)
                printf("  scratchpads (ours/peer's):");
        kdev_spads(d, json);
        printf(json ? "]}\n" : "\n");
        ntbt_dev_close(d);
        return 0;
}

struct show_opts {
        const char *name;
        int json;
        double watch; /* seconds between looks; 0: one look */
        long count;   /* looks; 0: until interrupted */
};

/* dev show's arguments: CLI_RUN, or the exit status. */
static int show_parse(const char *ctx, int argc, char **argv, struct show_opts *so)
{
        char *end;

        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--json")) {
                        so->json = 1;
                } else if (!strcmp(argv[i], "--watch")) {
                        so->watch = 1;
                        if (i + 1 < argc && argv[i + 1][0] != '-' &&
                            strtod(argv[i + 1], &end) > 0 && !*end) {
                                so->watch = strtod(argv[++i], NULL);
                                if (so->watch < 0.01 || so->watch > 3600) {
                                        cli_err(ctx, "--watch %s is out of range", argv[i]);
                                        return 2;
                                }
                        }
                } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
                        so->count = strtol(argv[++i], &end, 10);
                        if (*end || so->count < 1) {
                                cli_err(ctx, "bad --count '%s'", argv[i]);
                                return 2;
                        }
                } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        fputs(dev_usage, stdout);
                        return 0;
                } else if (argv[i][0] == '-' || so->name) {
                        cli_err(ctx, "unexpected argument '%s'", argv[i]);
                        return 2;
                } else {
                        so->name = argv[i];
                }
        }
        if (!so->name) {
                cli_err(ctx, "expected one device NAME");
                return 2;
        }
        return CLI_RUN;
}

/* One look at the shm device NAME, dt seconds after the last (0: none):
 * 0, or 1 after a message. */
static int show_once(const char *ctx, const struct show_opts *so, const char *name, double dt)
{
        struct ntbt_shm_info info = {.size = sizeof(info)};
        static struct ntbt_stats st[2];
        int i, ret, has_st[2];

        ret = ntbt_shm_inspect(name, &info);
        if (ret) {
                cli_err(ctx, "%s: %s", name, strerror(-ret));
                return 1;
        }
        for (i = 0; i < 2; i++) {
                st[i].size = sizeof(st[i]);
                ret = ntbt_stats_read(name, i, &st[i]);
                has_st[i] = ret == 0;
                if (ret && ret != -ENOENT)
                        cli_err(ctx, "%s port %d statistics: %s", name, i, strerror(-ret));
        }
        if (so->watch && !so->json && isatty(STDOUT_FILENO))
                printf("\033[H\033[2J"); /* clear the terminal */
        if (so->json)
                show_json(name, &info, st, has_st);
        else
                show_text(name, &info, st, has_st, dt);
        fflush(stdout);
        for (i = 0; i < 2; i++) {
                prev_st[i] = st[i];
                have_prev[i] = has_st[i];
        }
        return 0;
}

static int dev_show(int argc, char **argv)
{
        const char *ctx = "dev show", *name;
        struct show_opts so = {0};
        int64_t last = 0;
        long n;
        int rc;

        rc = show_parse(ctx, argc, argv, &so);
        if (rc != CLI_RUN)
                return rc;
        name = so.name;
        if (!strncmp(name, "kdev:", 5)) {
                if (so.watch) {
                        cli_err(ctx, "--watch is for shm devices");
                        return 2;
                }
                return show_kdev(ctx, name, so.json);
        }
        if (!strncmp(name, "shm:", 4))
                name += 4;
        if (so.count && !so.watch)
                so.watch = 1;
        for (n = 0;; n++) {
                int64_t now = now_ns();

                if (show_once(ctx, &so, name, last ? (double)(now - last) / 1e9 : 0))
                        return 1;
                last = now;
                if (!so.watch || (so.count && n + 1 >= so.count))
                        break;
                sleep_ns((int64_t)(so.watch * 1e9));
        }
        return 0;
}

int cmd_dev(int argc, char **argv)
{
        cli_install_log(0);
        if (argc < 2) {
                fputs(dev_usage, stderr);
                return 2;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                fputs(dev_usage, stdout);
                return 0;
        }
        if (!strcmp(argv[1], "create"))
                return dev_create(argc - 1, argv + 1);
        if (!strcmp(argv[1], "rm"))
                return dev_rm(argc - 1, argv + 1);
        if (!strcmp(argv[1], "list"))
                return dev_list(argc - 1, argv + 1);
        if (!strcmp(argv[1], "show"))
                return dev_show(argc - 1, argv + 1);
        cli_err("dev", "unknown subcommand '%s'", argv[1]);
        fputs(dev_usage, stderr);
        return 2;
}
