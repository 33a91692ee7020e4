/* SPDX-License-Identifier: MIT */
/*
 * Every byte the peer sees: spec/ntb-transport-v4.md sections 2-4.  All
 * fields are little-endian u32 (ntbt builds only for little-endian hosts,
 * as the kernel's NTB platforms are; see the assertion below).
 */
#ifndef NTBT_TRANSPORT_WIRE_H
#define NTBT_TRANSPORT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ntbt's wire structs are little-endian; add byte swapping for this host"
#endif

#define NTB_TRANSPORT_VERSION     4
#define NTB_MIN_SPADS             6
#define NTB_TRANSPORT_MTU_DEFAULT 65536u
#define NTB_HANDSHAKE_RETRY_NS    (10 * 1000 * 1000LL)

/* Scratchpad indices (spad[4 + 2n] high, spad[5 + 2n] low: window n's size). */
enum ntb_spad {
        NTB_SPAD_VERSION = 0,
        NTB_SPAD_QP_LINKS = 1,
        NTB_SPAD_NUM_QPS = 2,
        NTB_SPAD_NUM_MWS = 3,
        NTB_SPAD_MW0_SZ_HIGH = 4,
        NTB_SPAD_MW0_SZ_LOW = 5,
};
#define NTB_SPAD_MW_SZ_HIGH(n) (NTB_SPAD_MW0_SZ_HIGH + 2 * (n))
#define NTB_SPAD_MW_SZ_LOW(n)  (NTB_SPAD_MW0_SZ_LOW + 2 * (n))

/*
 * ntbt's own advertisement, outside protocol v4: when the device has a
 * scratchpad that v4 leaves unused (index >= 4 + 2 * windows), an ntbt peer
 * writes into our last one NTBT_EXT_TAG, its queue-pair count and its
 * transport_mtu, so that a frame-size mismatch (which v4 cannot see: each
 * side lays out the ring with its own frame size) is named on both sides.
 * A kernel peer never reads or writes that scratchpad (it zeroes its own on
 * link cleanup, and reads only the v4 ones): invisible to it.  0 = no
 * advertisement (a kernel peer, or an mtu that does not fit 18 bits).
 */
#define NTBT_EXT_TAG       0xB7u
#define NTBT_EXT(qps, mtu) (NTBT_EXT_TAG << 24 | ((qps)&0x3fu) << 18 | ((mtu)&0x3ffffu))
#define NTBT_EXT_TAG_OF(v) ((v) >> 24)
#define NTBT_EXT_MTU_OF(v) ((v)&0x3ffffu)
#define NTBT_EXT_MTU_MAX   0x3ffffu

/* The frame header: the last 12 bytes of every frame. */
struct ntb_payload_header {
        uint32_t ver;   /* sender's packet counter for this QP, mod 2^32 */
        uint32_t len;   /* payload length */
        uint32_t flags; /* NTB_DESC_DONE_FLAG | NTB_LINK_DOWN_FLAG */
};

#define NTB_DESC_DONE_FLAG (1u << 0)
#define NTB_LINK_DOWN_FLAG (1u << 1)
#define NTB_FLAGS_VALID    (NTB_DESC_DONE_FLAG | NTB_LINK_DOWN_FLAG)

_Static_assert(sizeof(struct ntb_payload_header) == 12, "frame header is 12 bytes");
_Static_assert(offsetof(struct ntb_payload_header, ver) == 0, "ver at +0");
_Static_assert(offsetof(struct ntb_payload_header, len) == 4, "len at +4");
_Static_assert(offsetof(struct ntb_payload_header, flags) == 8, "flags at +8");

#define NTB_HDR_VER_OFF   offsetof(struct ntb_payload_header, ver)
#define NTB_HDR_LEN_OFF   offsetof(struct ntb_payload_header, len)
#define NTB_HDR_FLAGS_OFF offsetof(struct ntb_payload_header, flags)

/* rx_info: the last 4 bytes of each QP region, written by the receiver. */
struct ntb_rx_info {
        uint32_t entry; /* the slot the receiver consumed most recently */
};

_Static_assert(sizeof(struct ntb_rx_info) == 4, "rx_info is 4 bytes");

#endif
