/* SPDX-License-Identifier: MIT */
/* The in-memory device, transport and queue pairs of fuzz.h. */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "transport/wire.h"

static struct fake_dev *fd_of(struct ntbt_dev *dev)
{
        return (struct fake_dev *)(void *)dev;
}

uint8_t fake_pattern(uint64_t off)
{
        return (uint8_t)(off * 131 + 7);
}

/* [off, off + len) lies in the peer's window widx: else the caller is wrong. */
static uint8_t *out_at(struct fake_dev *d, int widx, uint64_t off, uint64_t len)
{
        FUZZ_CHECK(widx >= 0 && (uint32_t)widx < d->mw_count);
        FUZZ_CHECK(off <= d->out_size[widx] && len <= d->out_size[widx] - off);
        return d->out[widx] + off;
}

static void check_widx(struct fake_dev *d, int widx)
{
        FUZZ_CHECK(widx >= 0 && (uint32_t)widx < d->mw_count);
}

static int f_link_is_up(struct ntbt_dev *dev)
{
        (void)dev;
        return 0;
}

static uint32_t f_link_events(struct ntbt_dev *dev)
{
        (void)dev;
        return 0;
}

static int f_mw_count(struct ntbt_dev *dev)
{
        return (int)fd_of(dev)->mw_count;
}

static int f_mw_get_align(struct ntbt_dev *dev, int widx, uint64_t *addr_align,
                          uint64_t *size_align, uint64_t *size_max)
{
        struct fake_dev *d = fd_of(dev);

        check_widx(d, widx);
        if (addr_align)
                *addr_align = d->align;
        if (size_align)
                *size_align = d->align;
        if (size_max)
                *size_max = d->in_size[widx];
        return 0;
}

static int f_mw_set_trans(struct ntbt_dev *dev, int widx, uint64_t size)
{
        struct fake_dev *d = fd_of(dev);

        check_widx(d, widx);
        /* The transport checked the peer's size against both limits first. */
        FUZZ_CHECK(size >= 1 && size <= d->in_size[widx] && size % d->align == 0);
        d->xlat[widx] = size;
        return 0;
}

static int f_mw_clear_trans(struct ntbt_dev *dev, int widx)
{
        struct fake_dev *d = fd_of(dev);

        check_widx(d, widx);
        d->xlat[widx] = 0;
        return 0;
}

static int f_peer_mw_size(struct ntbt_dev *dev, int widx, uint64_t *size)
{
        struct fake_dev *d = fd_of(dev);

        check_widx(d, widx);
        *size = d->out_size[widx];
        return 0;
}

static int f_mw_inbound(struct ntbt_dev *dev, int widx, void **base, uint64_t *size)
{
        struct fake_dev *d = fd_of(dev);

        check_widx(d, widx);
        *base = d->in[widx];
        *size = d->in_size[widx];
        return 0;
}

static int f_peer_mw_write(struct ntbt_dev *dev, int widx, uint64_t off, const void *src,
                           size_t len)
{
        memcpy(out_at(fd_of(dev), widx, off, len), src, len);
        return 0;
}

static int f_peer_mw_write32(struct ntbt_dev *dev, int widx, uint64_t off, uint32_t val)
{
        memcpy(out_at(fd_of(dev), widx, off, 4), &val, 4);
        return 0;
}

static int f_peer_mw_wmb(struct ntbt_dev *dev, int widx)
{
        check_widx(fd_of(dev), widx);
        return 0;
}

static int f_peer_mw_flush(struct ntbt_dev *dev, int widx, uint64_t off)
{
        (void)out_at(fd_of(dev), widx, off, 4);
        return 0;
}

static uint64_t f_db_valid_mask(struct ntbt_dev *dev)
{
        return fd_of(dev)->db_valid_mask;
}

static uint64_t f_db_read(struct ntbt_dev *dev)
{
        return fd_of(dev)->db;
}

static int f_db_clear(struct ntbt_dev *dev, uint64_t bits)
{
        fd_of(dev)->db &= ~bits;
        return 0;
}

static int f_peer_db_set(struct ntbt_dev *dev, uint64_t bits)
{
        struct fake_dev *d = fd_of(dev);

        /* A QP rings its own bit, which the doorbell count allowed. */
        FUZZ_CHECK(bits && !(bits & ~d->db_valid_mask));
        d->peer_db |= bits;
        return 0;
}

static int f_db_wait(struct ntbt_dev *dev, uint64_t bits, int64_t timeout_ns)
{
        (void)timeout_ns;
        return fd_of(dev)->db & bits ? 0 : -ETIMEDOUT;
}

static int f_db_wait_interrupt(struct ntbt_dev *dev)
{
        (void)dev;
        return 0;
}

static int f_spad_count(struct ntbt_dev *dev)
{
        return (int)fd_of(dev)->spad_count;
}

/* Scratchpad idx of ours or of the peer's (in range: else the caller is wrong). */
static uint32_t *spad_at(struct ntbt_dev *dev, int peer, int idx)
{
        struct fake_dev *d = fd_of(dev);

        FUZZ_CHECK(idx >= 0 && (uint32_t)idx < d->spad_count);
        return peer ? &d->peer_spad[idx] : &d->spad[idx];
}

static int f_spad_read(struct ntbt_dev *dev, int idx, uint32_t *val)
{
        *val = *spad_at(dev, 0, idx);
        return 0;
}

static int f_spad_write(struct ntbt_dev *dev, int idx, uint32_t val)
{
        *spad_at(dev, 0, idx) = val;
        return 0;
}

static int f_peer_spad_read(struct ntbt_dev *dev, int idx, uint32_t *val)
{
        *val = *spad_at(dev, 1, idx);
        return 0;
}

static int f_peer_spad_write(struct ntbt_dev *dev, int idx, uint32_t val)
{
        *spad_at(dev, 1, idx) = val;
        return 0;
}

/* The ops the transport calls; the others (open, close, ...) it never does. */
static const struct ntbt_dev_ops fake_ops = {
    .type = "fuzz",
    .link_is_up = f_link_is_up,
    .link_events = f_link_events,
    .mw_count = f_mw_count,
    .mw_get_align = f_mw_get_align,
    .mw_set_trans = f_mw_set_trans,
    .mw_clear_trans = f_mw_clear_trans,
    .peer_mw_size = f_peer_mw_size,
    .mw_inbound = f_mw_inbound,
    .peer_mw_write = f_peer_mw_write,
    .peer_mw_write32 = f_peer_mw_write32,
    .peer_mw_wmb = f_peer_mw_wmb,
    .peer_mw_flush = f_peer_mw_flush,
    .db_valid_mask = f_db_valid_mask,
    .db_read = f_db_read,
    .db_clear = f_db_clear,
    .peer_db_set = f_peer_db_set,
    .db_wait = f_db_wait,
    .db_wait_interrupt = f_db_wait_interrupt,
    .spad_count = f_spad_count,
    .spad_read = f_spad_read,
    .spad_write = f_spad_write,
    .peer_spad_read = f_peer_spad_read,
    .peer_spad_write = f_peer_spad_write,
};

struct fake_dev *fake_dev_new(uint32_t mw_count, uint32_t spad_count, uint64_t db_valid_mask,
                              uint64_t align, const uint64_t *in_size, const uint64_t *out_size)
{
        struct fake_dev *d = calloc(1, sizeof(*d));
        uint32_t i;

        FUZZ_CHECK(d && mw_count <= NTBT_MAX_MWS && spad_count <= 64 && align);
        d->dev.ops = &fake_ops;
        snprintf(d->dev.spec, sizeof(d->dev.spec), "fuzz:dev");
        d->mw_count = mw_count;
        d->spad_count = spad_count;
        d->db_valid_mask = db_valid_mask;
        d->align = align;
        for (i = 0; i < mw_count; i++) {
                FUZZ_CHECK(in_size[i] && out_size[i]);
                d->in_size[i] = in_size[i];
                d->out_size[i] = out_size[i];
                d->in[i] = malloc(in_size[i]);
                d->out[i] = malloc(out_size[i]);
                FUZZ_CHECK(d->in[i] && d->out[i]);
                for (uint64_t o = 0; o < in_size[i]; o++)
                        d->in[i][o] = fake_pattern(o);
                memset(d->out[i], 0xA5, out_size[i]);
        }
        return d;
}

void fake_dev_free(struct fake_dev *d)
{
        uint32_t i;

        for (i = 0; i < d->mw_count; i++) {
                free(d->in[i]);
                free(d->out[i]);
        }
        free(d);
}

struct ntbt_transport *fake_transport_new(struct fake_dev *d, uint32_t max_qps, uint32_t mtu)
{
        struct ntbt_transport *t;
        struct ntbt_dev *dev = &d->dev;
        uint32_t i, q;

        if (mtu <= sizeof(struct ntb_payload_header) || d->spad_count < NTB_MIN_SPADS ||
            d->mw_count < 1)
                return NULL;
        t = calloc(1, sizeof(*t));
        FUZZ_CHECK(t);
        t->dev = dev;
        t->o.size = sizeof(t->o);
        t->o.transport_mtu = mtu;
        t->o.max_qps = max_qps;
        t->o.tx_mode = NTBT_TX_INLINE;
        geom_counts(ntbt_dev_db_valid_mask(dev), d->mw_count, d->spad_count, max_qps, &t->qp_count,
                    &t->mw_count);
        if (t->mw_count > NTBT_MAX_MWS)
                t->mw_count = NTBT_MAX_MWS;
        t->ext_spad = d->spad_count > 4 + 2 * t->mw_count ? (int)d->spad_count - 1 : -1;
        if (t->qp_count < 1 || t->qp_count > NTBT_MAX_QPS) {
                free(t);
                return NULL;
        }
        for (i = 0; i < t->mw_count; i++) {
                void *base;
                uint64_t in_size;

                FUZZ_CHECK(ntbt_dev_peer_mw_size(dev, (int)i, &t->out_size[i]) == 0);
                FUZZ_CHECK(
                    ntbt_dev_mw_get_align(dev, (int)i, NULL, &t->in_align[i], &t->in_max[i]) == 0);
                FUZZ_CHECK(ntbt_dev_mw_inbound(dev, (int)i, &base, &in_size) == 0);
                t->in_base[i] = base;
                if (t->in_max[i] > in_size)
                        t->in_max[i] = in_size;
        }
        for (q = 0; q < t->qp_count; q++) {
                struct qp_geom g;

                if (geom_qp(t->out_size[q % t->mw_count], t->qp_count, t->mw_count, q, mtu, &g)) {
                        free(t);
                        return NULL;
                }
        }
        pthread_mutex_init(&t->lock, NULL);
        pthread_mutex_init(&t->spad_lock, NULL);
        pthread_cond_init(&t->cond, NULL);
        return t;
}

void fake_transport_free(struct ntbt_transport *t)
{
        unsigned i;

        for (i = 0; i < NTBT_MAX_QPS; i++)
                if (t->qps[i])
                        ntbt_qp_free(t->qps[i]);
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->lock);
        pthread_mutex_destroy(&t->spad_lock);
        free(t);
}

int fake_handshake(struct ntbt_transport *t, const uint64_t *peer_size)
{
        struct fake_dev *d = fd_of(t->dev);
        uint32_t i;

        for (i = 0; i < t->mw_count; i++) {
                d->spad[NTB_SPAD_MW_SZ_HIGH(i)] = (uint32_t)(peer_size[i] >> 32);
                d->spad[NTB_SPAD_MW_SZ_LOW(i)] = (uint32_t)peer_size[i];
        }
        d->spad[NTB_SPAD_NUM_MWS] = t->mw_count;
        d->spad[NTB_SPAD_NUM_QPS] = t->qp_count;
        d->spad[NTB_SPAD_VERSION] = NTB_TRANSPORT_VERSION;
        transport_try_up(t);
        return transport_epoch_up(t->epoch);
}

struct ntbt_qp *fake_qp_up(struct ntbt_transport *t, unsigned num, const struct ntbt_qp_handlers *h,
                           void *ctx)
{
        struct ntbt_qp_opts o = {.size = sizeof(o), .qp_num = (int)num, .poll = 1};
        struct fake_dev *d = fd_of(t->dev);
        struct ntbt_qp *qp = NULL;

        FUZZ_CHECK(ntbt_qp_create(t, &o, h, ctx, &qp) == 0);
        FUZZ_CHECK(ntbt_qp_link_up(qp) == 0);
        /* The peer asks for the QP too (its bit in our QP_LINKS). */
        d->spad[NTB_SPAD_QP_LINKS] |= 1u << num;
        /* The first poll prepares the ring, the second sees the peer's bit. */
        FUZZ_CHECK(ntbt_qp_poll(qp, 0) == 0);
        FUZZ_CHECK(ntbt_qp_poll(qp, 0) == 0);
        if (!ntbt_qp_link_is_up(qp)) {
                ntbt_qp_free(qp);
                return NULL;
        }
        return qp;
}

int fake_ring_new(struct fz *f, struct fake_ring *r)
{
        uint8_t shape = fz_u8(f);
        uint32_t in16 = fz_u16(f), out16 = fz_u16(f), mtu = fz_u32(f), i;
        uint64_t in_sz[NTBT_MAX_MWS], out_sz[NTBT_MAX_MWS];
        struct ntbt_transport *t;

        for (i = 0; i < NTBT_MAX_MWS; i++) {
                in_sz[i] = 32 + in16;
                out_sz[i] = 32 + out16;
        }
        r->d = fake_dev_new(1 + (shape & 1), 16, 0xffff, 1, in_sz, out_sz);
        r->t = t =
            fake_transport_new(r->d, 1 + ((shape >> 1) & 3), mtu ? mtu : NTB_TRANSPORT_MTU_DEFAULT);
        if (!t || !fake_handshake(t, in_sz)) {
                if (t)
                        fake_transport_free(t);
                fake_dev_free(r->d);
                return -1;
        }
        r->q = (shape >> 4) % t->qp_count;
        FUZZ_CHECK(geom_qp(in_sz[r->q % t->mw_count], t->qp_count, t->mw_count, r->q,
                           t->o.transport_mtu, &r->rx) == 0);
        FUZZ_CHECK(geom_qp(out_sz[r->q % t->mw_count], t->qp_count, t->mw_count, r->q,
                           t->o.transport_mtu, &r->tx) == 0);
        FUZZ_CHECK(r->rx.offset + r->rx.region <= in_sz[r->rx.mw] &&
                   r->tx.offset + r->tx.region <= out_sz[r->tx.mw]);
        return 0;
}

void fake_ring_free(struct fake_ring *r)
{
        fake_transport_free(r->t);
        fake_dev_free(r->d);
}
