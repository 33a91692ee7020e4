/* SPDX-License-Identifier: MIT */
/* Device registry, the device-string parser, and the public wrappers over the ops table. */
#include "dev.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/abi.h"
#include "../util/log.h"
#include "../util/parse.h"
#include "wrap.h"

/* Shared stubs for optional ops (libfabric's fi_no_* pattern). */
static uint32_t no_link_events(struct ntbt_dev *dev)
{
        (void)dev;
        return 0;
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
static int no_peer_mw_map(struct ntbt_dev *dev, int widx, void **base, uint64_t *size)
{
        (void)dev, (void)widx, (void)base, (void)size;
        return -EOPNOTSUPP;
}

#define MAX_TYPES 8
static struct ntbt_dev_ops types[MAX_TYPES];
static int ntypes;
static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;

static int type_name_ok(const char *t)
{
        size_t n = strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789_");

        return n > 0 && n < NTBT_DEV_TYPE_MAX && !t[n];
}

/* As the kernel's ntb_dev_ops_is_valid: required ops must be there (dev.h
 * labels each op Required or Optional). */
static int ops_required_present(const struct ntbt_dev_ops *o)
{
#define REQUIRE(op)                                                                                \
        do {                                                                                       \
                if (!o->op) {                                                                      \
                        log_err("device type %s: no " #op " op (required)", o->type);              \
                        return -EINVAL;                                                            \
                }                                                                                  \
        } while (0)
        REQUIRE(open);
        REQUIRE(close);
        REQUIRE(port);
        REQUIRE(link_is_up);
        REQUIRE(link_enable);
        REQUIRE(link_disable);
        REQUIRE(link_wait);
        REQUIRE(mw_count);
        REQUIRE(mw_get_align);
        REQUIRE(mw_set_trans);
        REQUIRE(mw_clear_trans);
        REQUIRE(peer_mw_size);
        REQUIRE(mw_inbound);
        REQUIRE(peer_mw_write);
        REQUIRE(peer_mw_write32);
        REQUIRE(peer_mw_wmb);
        REQUIRE(peer_mw_flush);
        REQUIRE(db_valid_mask);
        REQUIRE(db_read);
        REQUIRE(db_clear);
        REQUIRE(peer_db_set);
        REQUIRE(db_wait);
        REQUIRE(db_wait_interrupt);
        REQUIRE(spad_count);
        REQUIRE(spad_read);
        REQUIRE(spad_write);
        REQUIRE(peer_spad_read);
        REQUIRE(peer_spad_write);
#undef REQUIRE
        return 0;
}

/* The optional ops, each with its stub. */
static void ops_fill_optional(struct ntbt_dev_ops *o)
{
        if (!o->describe)
                o->describe = no_describe;
        if (!o->link_events)
                o->link_events = no_link_events;
        if (!o->db_mask)
                o->db_mask = no_db_mask;
        if (!o->db_set_mask)
                o->db_set_mask = no_db_bits_op;
        if (!o->db_clear_mask)
                o->db_clear_mask = no_db_bits_op;
        if (!o->peer_mw_map)
                o->peer_mw_map = no_peer_mw_map;
}

/* Add a checked table to the registry: -EINVAL for a type registered already. */
static int types_add(const struct ntbt_dev_ops *o)
{
        int i, ret = 0;

        pthread_mutex_lock(&types_lock);
        for (i = 0; i < ntypes; i++)
                if (strcmp(types[i].type, o->type) == 0)
                        ret = -EINVAL;
        if (!ret && ntypes == MAX_TYPES)
                ret = -ENOSPC;
        if (!ret)
                types[ntypes++] = *o;
        pthread_mutex_unlock(&types_lock);
        if (ret == -EINVAL)
                log_err("device type %s: registered already", o->type);
        return ret;
}

int dev_register(const struct ntbt_dev_ops *ops)
{
        struct ntbt_dev_ops o = *ops;
        int ret;

        if (!o.type || !type_name_ok(o.type)) {
                log_err("device type '%s': a bad name", o.type ? o.type : "(null)");
                return -EINVAL;
        }
        if (o.wraps) {
                /* The base's close frees the base's own open's state only. */
                if (!o.open != !o.close) {
                        log_err("device type %s: a wrapper defines open and close or neither",
                                o.type);
                        return -EINVAL;
                }
                dev_wrap_fill(&o);
        }
        ret = ops_required_present(&o);
        if (ret)
                return ret;
        ops_fill_optional(&o);
        return types_add(&o);
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

/* ---- device strings ---- */

static const struct dev_kv *find_kv(const struct dev_args *args, const char *key)
{
        int i;

        for (i = 0; i < args->nkv; i++)
                if (strcmp(args->kv[i].opt->key, key) == 0)
                        return &args->kv[i];
        return NULL;
}

/* A value's number as its option reads it: 0, or -EINVAL if it is not one. */
static int opt_value(const struct dev_opt *opt, const char *val, uint64_t *out)
{
        switch (opt->kind) {
        case DEV_OPT_BOOL:
                if (strcmp(val, "0") && strcmp(val, "1"))
                        return -EINVAL;
                *out = (uint64_t)(val[0] - '0');
                return 0;
        case DEV_OPT_SIZE:
                return parse_size(val, out);
        case DEV_OPT_RATE:
                return parse_rate(val, out);
        }
        return -EINVAL;
}

int dev_args_num(const struct dev_args *args, const char *key, uint64_t *out)
{
        const struct dev_kv *kv = find_kv(args, key);

        /* The parser checked the value: it reads again the same way. */
        return kv && !opt_value(kv->opt, kv->val, out);
}

static const struct dev_opt *find_opt(const struct ntbt_dev_ops *ops, const char *key)
{
        const struct dev_opt *o;

        for (o = ops->opts; o && o->key; o++)
                if (strcmp(o->key, key) == 0)
                        return o;
        return NULL;
}

/* A device string parsed: the public view, what the outermost type's open
 * gets, and the storage they point into. */
struct dev_parse {
        const struct ntbt_dev_ops *ops; /* the outermost type */
        struct ntbt_dev_parsed pub;
        struct dev_args args;
        char opts[NTBT_DEV_SPEC_MAX];  /* the options, split in place */
        char inner[NTBT_DEV_SPEC_MAX]; /* a wrapper's inner device string */
};

/* The chain of types a device string names, outermost first. */
struct spec_chain {
        const struct ntbt_dev_ops *ops[MAX_TYPES];
        int depth;
        size_t pos;         /* where NAME begins, once the chain is read */
        size_t seg_end;     /* where the options begin (the first ',') */
        size_t inner_pos;   /* where the inner device's string begins */
        int inner_implicit; /* it names no TYPE: (the wrapper's .wraps) */
};

static int spec_too_long(const char *spec)
{
        log_err("%.40s...: device string too long", spec);
        return -EINVAL;
}

/* The type of the segment at c->pos into *out; c->pos moves past its "TYPE:". */
static int chain_next_type(const char *spec, unsigned flags, struct spec_chain *c,
                           const struct ntbt_dev_ops **out, int *implicit)
{
        const char *seg = spec + c->pos;
        const char *colon = memchr(seg, ':', c->seg_end - c->pos);

        /* No "TYPE:" (a path may hold a ':'): the wrapper's inner type, or at
         * the top shm if the caller allows a bare NAME. */
        *implicit = (!colon || seg[0] == '/') && (c->depth > 0 || (flags & NTBT_DEV_PARSE_BARE));
        if (*implicit) {
                const char *t = c->depth ? c->ops[c->depth - 1]->wraps : "shm";

                *out = find_type(t, strlen(t));
                if (!*out) {
                        log_err("%s: unknown device type '%s'", spec, t);
                        return -EINVAL;
                }
                return 0;
        }
        if (!colon || colon == seg) {
                log_err("%s: device string must be TYPE:NAME[,key=value...]", spec);
                return -EINVAL;
        }
        *out = find_type(seg, (size_t)(colon - seg));
        if (!*out) {
                log_err("%s: unknown device type '%.*s'", spec, (int)(colon - seg), seg);
                return -EINVAL;
        }
        c->pos += (size_t)(colon - seg) + 1;
        return 0;
}

/* Read the types from the outermost to the first that wraps nothing. */
static int parse_chain(const char *spec, unsigned flags, struct spec_chain *c)
{
        const struct ntbt_dev_ops *ops;
        int implicit, i, ret;

        c->seg_end = strcspn(spec, ",");
        for (;;) {
                ret = chain_next_type(spec, flags, c, &ops, &implicit);
                if (ret)
                        return ret;
                for (i = 0; i < c->depth; i++) {
                        if (c->ops[i] == ops) {
                                log_err("%s: a %s device inside a %s device (each type at most "
                                        "once: the options are one list)",
                                        spec, ops->type, c->ops[i]->type);
                                return -EINVAL;
                        }
                }
                if (c->depth == 1) {
                        c->inner_implicit = implicit;
                        c->inner_pos = implicit ? c->pos : c->pos - strlen(ops->type) - 1;
                }
                c->ops[c->depth++] = ops;
                if (!ops->wraps)
                        return 0;
        }
}

/* NAME, the types, and a wrapper's inner device string (without options yet). */
static int parse_name(const char *spec, const struct spec_chain *c, struct dev_parse *P)
{
        size_t n = c->seg_end - c->pos;

        if (n == 0) {
                log_err("%s: no device name after the type", spec);
                return -EINVAL;
        }
        P->ops = c->ops[0];
        snprintf(P->pub.type, sizeof(P->pub.type), "%s", c->ops[0]->type);
        snprintf(P->pub.base_type, sizeof(P->pub.base_type), "%s", c->ops[c->depth - 1]->type);
        memcpy(P->pub.name, spec + c->pos, n);
        P->pub.name_off = c->pos;
        P->args.name = P->pub.name;
        if (c->depth > 1) {
                /* The inner device's string: its type, its NAME, then its options. */
                n = (size_t)snprintf(P->inner, sizeof(P->inner), "%s%s%.*s",
                                     c->inner_implicit ? c->ops[1]->type : "",
                                     c->inner_implicit ? ":" : "", (int)(c->seg_end - c->inner_pos),
                                     spec + c->inner_pos);
                if (n >= sizeof(P->inner))
                        return spec_too_long(spec);
                P->args.inner = P->inner;
        }
        return 0;
}

/* One checked option goes to the outermost type (level 0) or to the inner
 * device's string. */
static int option_place(const char *spec, struct dev_parse *P, int level, const struct dev_opt *opt,
                        const char *key, const char *val)
{
        size_t len;

        if (level == 0) {
                P->args.kv[P->args.nkv].opt = opt;
                P->args.kv[P->args.nkv].val = val;
                P->args.nkv++;
                return 0;
        }
        len = strlen(P->inner);
        if ((size_t)snprintf(P->inner + len, sizeof(P->inner) - len, ",%s=%s", key, val) >=
            sizeof(P->inner) - len)
                return spec_too_long(spec);
        return 0;
}

/* The ",key=value" list: each key once, to the outermost type that takes it. */
static int parse_options(const char *spec, const struct spec_chain *c, struct dev_parse *P)
{
        const char *seen[DEV_MAX_KV];
        char *save = NULL, *tok;
        int nopts = 0, i;

        strcpy(P->opts, spec + c->seg_end);
        while ((tok = strtok_r(save ? NULL : P->opts, ",", &save))) {
                const struct dev_opt *opt = NULL;
                char *eq = strchr(tok, '=');
                uint64_t v;
                int level;

                if (nopts == DEV_MAX_KV) {
                        log_err("%s: too many options", spec);
                        return -EINVAL;
                }
                if (!eq || eq == tok) {
                        log_err("%s: option '%s' is not key=value", spec, tok);
                        return -EINVAL;
                }
                *eq = '\0';
                for (level = 0; level < c->depth; level++)
                        if ((opt = find_opt(c->ops[level], tok)))
                                break;
                if (!opt) {
                        log_err("%s: unknown option '%s' for device type %s", spec, tok,
                                c->ops[0]->type);
                        return -EINVAL;
                }
                for (i = 0; i < nopts; i++) {
                        if (strcmp(seen[i], tok) == 0) {
                                log_err("%s: option '%s' given twice", spec, tok);
                                return -EINVAL;
                        }
                }
                if (opt_value(opt, eq + 1, &v) || v < opt->min || v > opt->max) {
                        log_err("%s: bad value %s=%s (%s)", spec, tok, eq + 1, opt->hint);
                        return -EINVAL;
                }
                seen[nopts++] = tok;
                if (option_place(spec, P, level, opt, tok, eq + 1))
                        return -EINVAL;
        }
        P->pub.nopts = nopts;
        return 0;
}

/*
 * The one parser of "TYPE:NAME[,key=value...]".  A wrapper's NAME is its
 * inner device's "[TYPE:]NAME" (TYPE: omitted: the wrapper's .wraps type);
 * the chain ends at a type that wraps nothing, and no type appears twice in
 * it (their options would be one list).  Each key belongs to the outermost
 * type in the chain that takes it; a wrapper's open gets the options of the
 * types inside it in args.inner, with their device string.
 */
static int parse_spec(const char *spec, unsigned flags, struct dev_parse *P)
{
        struct spec_chain c = {0};
        int ret;

        pthread_once(&builtin_once, register_builtins);
        memset(P, 0, sizeof(*P));
        if (strlen(spec) >= NTBT_DEV_SPEC_MAX)
                return spec_too_long(spec);
        ret = parse_chain(spec, flags, &c);
        if (!ret)
                ret = parse_name(spec, &c, P);
        if (!ret)
                ret = parse_options(spec, &c, P);
        return ret;
}

/* The first version of struct ntbt_dev_parsed ends at nopts (src/util/abi.h). */
#define DEV_PARSED_VER0 ABI_SIZE_TO(struct ntbt_dev_parsed, nopts)

int ntbt_dev_parse(const char *spec, unsigned flags, struct ntbt_dev_parsed *out)
{
        struct dev_parse P;
        int ret;

        if (!spec || !out || abi_out_ok(out, DEV_PARSED_VER0) || (flags & ~NTBT_DEV_PARSE_BARE))
                return -EINVAL;
        ret = parse_spec(spec, flags, &P);
        if (ret)
                return ret;
        P.pub.size = sizeof(P.pub);
        return abi_out(out, &P.pub, sizeof(P.pub), DEV_PARSED_VER0);
}

int ntbt_dev_display_name(const char *spec, char *buf, size_t len)
{
        struct dev_parse P;
        int ret;

        if (!spec || !buf)
                return -EINVAL;
        ret = parse_spec(spec, NTBT_DEV_PARSE_BARE, &P);
        if (ret)
                return ret;
        if (strlen(P.pub.name) >= len)
                return -ENAMETOOLONG;
        strcpy(buf, P.pub.name);
        return 0;
}

int ntbt_dev_open(const char *spec, struct ntbt_dev **out)
{
        struct ntbt_dev *dev;
        struct dev_parse P;
        int ret;

        if (!spec || !out)
                return -EINVAL;
        ret = parse_spec(spec, 0, &P);
        if (ret)
                return ret;
        dev = calloc(1, sizeof(*dev));
        if (!dev)
                return -ENOMEM;
        strcpy(dev->spec, spec);
        dev->ops = P.ops;
        ret = P.ops->open(dev, &P.args);
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
int ntbt_dev_peer_mw_map(struct ntbt_dev *d, int widx, void **base, uint64_t *size)
{
        if (!base || !size)
                return -EINVAL;
        return d->ops->peer_mw_map(d, widx, base, size);
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
