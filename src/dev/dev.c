/* SPDX-License-Identifier: MIT */
/* Device registry, device-string parsing, and the public wrappers over the ops table. */
#include "dev.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../util/log.h"

/* Shared stubs for optional ops (libfabric's fi_no_* pattern). */
static int no_link_op(struct ntbt_dev *dev)
{
        (void)dev;
        return -EOPNOTSUPP;
}
static int no_link_wait(struct ntbt_dev *dev, int was_up, int64_t timeout_ns)
{
        (void)dev, (void)was_up, (void)timeout_ns;
        return -EOPNOTSUPP;
}
static uint32_t no_link_events(struct ntbt_dev *dev)
{
        (void)dev;
        return 0;
}
static int no_mw_clear_trans(struct ntbt_dev *dev, int widx)
{
        (void)dev, (void)widx;
        return -EOPNOTSUPP;
}
static int no_describe(struct ntbt_dev *dev, char *buf, size_t len)
{
        (void)dev, (void)buf, (void)len;
        return -EOPNOTSUPP;
}
static uint64_t no_db_mask(struct ntbt_dev *dev)
{
        (void)dev;
        return 0;
}
static int no_db_bits_op(struct ntbt_dev *dev, uint64_t bits)
{
        (void)dev, (void)bits;
        return -EOPNOTSUPP;
}

#define MAX_TYPES 8
static struct ntbt_dev_ops types[MAX_TYPES];
static int ntypes;
static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;

int dev_register(const struct ntbt_dev_ops *ops)
{
        struct ntbt_dev_ops o = *ops;
        int i, ret = 0;

        /* As the kernel's ntb_dev_ops_is_valid: required ops must be there. */
        if (!o.type || !o.open || !o.close || !o.port || !o.link_is_up || !o.link_enable ||
            !o.mw_count || !o.mw_get_align || !o.mw_set_trans || !o.peer_mw_size || !o.mw_inbound ||
            !o.peer_mw_write || !o.peer_mw_write32 || !o.peer_mw_wmb || !o.peer_mw_flush ||
            !o.db_valid_mask || !o.db_read || !o.db_clear || !o.peer_db_set || !o.db_wait ||
            !o.db_wait_interrupt || !o.spad_count || !o.spad_read || !o.spad_write ||
            !o.peer_spad_read || !o.peer_spad_write)
                return -EINVAL;
        if (!o.link_disable)
                o.link_disable = no_link_op;
        if (!o.link_wait)
                o.link_wait = no_link_wait;
        if (!o.link_events)
                o.link_events = no_link_events;
        if (!o.mw_clear_trans)
                o.mw_clear_trans = no_mw_clear_trans;
        if (!o.describe)
                o.describe = no_describe;
        if (!o.db_mask)
                o.db_mask = no_db_mask;
        if (!o.db_set_mask)
                o.db_set_mask = no_db_bits_op;
        if (!o.db_clear_mask)
                o.db_clear_mask = no_db_bits_op;

        pthread_mutex_lock(&types_lock);
        for (i = 0; i < ntypes; i++)
                if (strcmp(types[i].type, o.type) == 0)
                        ret = -EINVAL;
        if (!ret && ntypes == MAX_TYPES)
                ret = -ENOSPC;
        if (!ret)
                types[ntypes++] = o;
        pthread_mutex_unlock(&types_lock);
        return ret;
}

static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static void register_builtins(void)
{
        /* A failure here is a programming error that every test would show. */
        if (dev_register(&shm_dev_ops) || dev_register(&pcie_dev_ops) ||
            dev_register(&kdev_dev_ops))
                abort();
}

static const struct ntbt_dev_ops *find_type(const char *type, size_t len)
{
        const struct ntbt_dev_ops *found = NULL;
        int i;

        pthread_mutex_lock(&types_lock);
        for (i = 0; i < ntypes; i++)
                if (strlen(types[i].type) == len && memcmp(types[i].type, type, len) == 0)
                        found = &types[i];
        pthread_mutex_unlock(&types_lock);
        return found;
}

const char *dev_args_get(struct dev_args *args, const char *key)
{
        int i;

        for (i = 0; i < args->nkv; i++) {
                if (strcmp(args->kv[i].key, key) == 0) {
                        args->kv[i].used = 1;
                        return args->kv[i].val;
                }
        }
        return NULL;
}

/* Split "NAME,k=v,k=v" (in place) into args. */
static int parse_args(char *rest, struct dev_args *args, const char *spec)
{
        char *save = NULL, *tok;

        memset(args, 0, sizeof(*args));
        args->name = strtok_r(rest, ",", &save);
        if (!args->name || !*args->name) {
                log_err("%s: no device name after the type", spec);
                return -EINVAL;
        }
        while ((tok = strtok_r(NULL, ",", &save))) {
                char *eq = strchr(tok, '=');

                if (!eq || eq == tok) {
                        log_err("%s: option '%s' is not key=value", spec, tok);
                        return -EINVAL;
                }
                if (args->nkv == DEV_MAX_KV) {
                        log_err("%s: too many options", spec);
                        return -EINVAL;
                }
                *eq = '\0';
                args->kv[args->nkv].key = tok;
                args->kv[args->nkv].val = eq + 1;
                args->nkv++;
        }
        return 0;
}

int ntbt_dev_open(const char *spec, struct ntbt_dev **out)
{
        const struct ntbt_dev_ops *ops;
        struct ntbt_dev *dev;
        struct dev_args args;
        const char *colon;
        char *rest;
        int ret, i;

        pthread_once(&builtin_once, register_builtins);
        if (!spec || !out)
                return -EINVAL;
        colon = strchr(spec, ':');
        if (!colon || colon == spec) {
                log_err("%s: device string must be TYPE:NAME[,key=value...]", spec);
                return -EINVAL;
        }
        ops = find_type(spec, (size_t)(colon - spec));
        if (!ops) {
                log_err("%s: unknown device type '%.*s'", spec, (int)(colon - spec), spec);
                return -EINVAL;
        }
        dev = calloc(1, sizeof(*dev));
        if (!dev)
                return -ENOMEM;
        if (strlen(spec) >= sizeof(dev->spec)) {
                log_err("%.40s...: device string too long", spec);
                free(dev);
                return -EINVAL;
        }
        strcpy(dev->spec, spec);
        dev->ops = ops;
        rest = strdup(colon + 1);
        if (!rest) {
                free(dev);
                return -ENOMEM;
        }
        ret = parse_args(rest, &args, spec);
        if (!ret)
                ret = ops->open(dev, &args);
        if (!ret) {
                for (i = 0; i < args.nkv; i++) {
                        if (!args.kv[i].used) {
                                log_err("%s: unknown option '%s' for device type %s", spec,
                                        args.kv[i].key, ops->type);
                                ops->close(dev);
                                ret = -EINVAL;
                                break;
                        }
                }
        }
        free(rest);
        if (ret) {
                free(dev);
                return ret;
        }
        *out = dev;
        return 0;
}

void ntbt_dev_close(struct ntbt_dev *dev)
{
        if (!dev)
                return;
        dev->ops->close(dev);
        free(dev);
}

const char *ntbt_dev_spec(const struct ntbt_dev *dev)
{
        return dev->spec;
}

const char *ntbt_dev_type(const struct ntbt_dev *dev)
{
        return dev->ops->type;
}

/* The public wrappers: one line each, so the ops table is the only indirection. */
int ntbt_dev_port(struct ntbt_dev *d)
{
        return d->ops->port(d);
}
int ntbt_dev_describe(struct ntbt_dev *d, char *buf, size_t len)
{
        return buf && len ? d->ops->describe(d, buf, len) : -EINVAL;
}
int ntbt_dev_link_is_up(struct ntbt_dev *d)
{
        return d->ops->link_is_up(d);
}
int ntbt_dev_link_enable(struct ntbt_dev *d)
{
        return d->ops->link_enable(d);
}
int ntbt_dev_link_disable(struct ntbt_dev *d)
{
        return d->ops->link_disable(d);
}
int ntbt_dev_link_wait(struct ntbt_dev *d, int was_up, int64_t timeout_ns)
{
        return d->ops->link_wait(d, was_up, timeout_ns);
}
uint32_t ntbt_dev_link_events(struct ntbt_dev *d)
{
        return d->ops->link_events(d);
}
int ntbt_dev_mw_count(struct ntbt_dev *d)
{
        return d->ops->mw_count(d);
}
int ntbt_dev_mw_get_align(struct ntbt_dev *d, int widx, uint64_t *addr_align, uint64_t *size_align,
                          uint64_t *size_max)
{
        return d->ops->mw_get_align(d, widx, addr_align, size_align, size_max);
}
int ntbt_dev_mw_set_trans(struct ntbt_dev *d, int widx, uint64_t size)
{
        return d->ops->mw_set_trans(d, widx, size);
}
int ntbt_dev_mw_clear_trans(struct ntbt_dev *d, int widx)
{
        return d->ops->mw_clear_trans(d, widx);
}
int ntbt_dev_peer_mw_size(struct ntbt_dev *d, int widx, uint64_t *size)
{
        return d->ops->peer_mw_size(d, widx, size);
}
int ntbt_dev_mw_inbound(struct ntbt_dev *d, int widx, void **base, uint64_t *size)
{
        return d->ops->mw_inbound(d, widx, base, size);
}
int ntbt_dev_peer_mw_write(struct ntbt_dev *d, int widx, uint64_t off, const void *src, size_t len)
{
        return d->ops->peer_mw_write(d, widx, off, src, len);
}
int ntbt_dev_peer_mw_write32(struct ntbt_dev *d, int widx, uint64_t off, uint32_t val)
{
        return d->ops->peer_mw_write32(d, widx, off, val);
}
int ntbt_dev_peer_mw_wmb(struct ntbt_dev *d, int widx)
{
        return d->ops->peer_mw_wmb(d, widx);
}
int ntbt_dev_peer_mw_flush(struct ntbt_dev *d, int widx, uint64_t off)
{
        return d->ops->peer_mw_flush(d, widx, off);
}
uint64_t ntbt_dev_db_valid_mask(struct ntbt_dev *d)
{
        return d->ops->db_valid_mask(d);
}
uint64_t ntbt_dev_db_read(struct ntbt_dev *d)
{
        return d->ops->db_read(d);
}
int ntbt_dev_db_clear(struct ntbt_dev *d, uint64_t bits)
{
        return d->ops->db_clear(d, bits);
}
int ntbt_dev_db_set_mask(struct ntbt_dev *d, uint64_t bits)
{
        return d->ops->db_set_mask(d, bits);
}
int ntbt_dev_db_clear_mask(struct ntbt_dev *d, uint64_t bits)
{
        return d->ops->db_clear_mask(d, bits);
}
uint64_t ntbt_dev_db_mask(struct ntbt_dev *d)
{
        return d->ops->db_mask(d);
}
int ntbt_dev_peer_db_set(struct ntbt_dev *d, uint64_t bits)
{
        return d->ops->peer_db_set(d, bits);
}
int ntbt_dev_db_wait(struct ntbt_dev *d, uint64_t bits, int64_t timeout_ns)
{
        return d->ops->db_wait(d, bits, timeout_ns);
}
int ntbt_dev_db_wait_interrupt(struct ntbt_dev *d)
{
        return d->ops->db_wait_interrupt(d);
}
int ntbt_dev_spad_count(struct ntbt_dev *d)
{
        return d->ops->spad_count(d);
}
int ntbt_dev_spad_read(struct ntbt_dev *d, int idx, uint32_t *val)
{
        return d->ops->spad_read(d, idx, val);
}
int ntbt_dev_spad_write(struct ntbt_dev *d, int idx, uint32_t val)
{
        return d->ops->spad_write(d, idx, val);
}
int ntbt_dev_peer_spad_read(struct ntbt_dev *d, int idx, uint32_t *val)
{
        return d->ops->peer_spad_read(d, idx, val);
}
int ntbt_dev_peer_spad_write(struct ntbt_dev *d, int idx, uint32_t val)
{
        return d->ops->peer_spad_write(d, idx, val);
}
