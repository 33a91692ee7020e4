#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write valid seed inputs for the fuzz targets (README.md), each laid out
as its target's comment says: a good ring, a valid handshake, a good device
file, so that the fuzzer starts deep.  Usage: make_seeds.py OUTDIR; writes
OUTDIR/TARGET/seed-*.  The fuzzers then grow and merge the corpus."""
import os
import struct
import sys

DONE, LINK_DOWN = 1, 2


def u8(v):
    return struct.pack("<B", v & 0xFF)


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def rx_frame(shape, win, mtu, start_pkts, start, budget, mode, bufs, hdrs):
    b = u8(shape) + u16(win - 32) + u16(win - 32) + u32(mtu) + u32(start_pkts)
    b += u16(start) + u8(budget) + u8(mode) + u8(len(bufs))
    b += b"".join(u16(s) for s in bufs)
    return b + b"".join(u32(ver) + u32(ln) + u32(fl) for ver, ln, fl in hdrs)


def rx_frame_seeds():
    # 4096-byte window, mtu 1024: 3 slots of 1012-byte payloads.
    yield rx_frame(0, 4096, 1024, 0, 0, 64, 1, [1012, 1012],
                   [(0, 100, DONE), (1, 1012, DONE), (2, 0, DONE | LINK_DOWN)])
    # ver wraps from 2^32 - 1 to 0, starting in the last slot.
    yield rx_frame(0, 4096, 1024, 0xFFFFFFFF, 2, 64, 1, [500],
                   [(0xFFFFFFFF, 10, DONE), (0, 20, DONE), (1, 30, DONE)])
    # Too long for the buffer, then for the frame; then a wrong ver.
    yield rx_frame(0, 4096, 1024, 0, 0, 64, 0, [64, 1012, 1012],
                   [(0, 65, DONE), (1, 5000, DONE), (7, 1, DONE)])
    # Undefined flag bits; two windows, four QPs, QP 3.
    yield rx_frame(0x36, 8192, 512, 0, 0, 8, 1, [500, 500],
                   [(0, 1, DONE), (1, 2, DONE | 0x80)])
    # The default mtu in a 64 KiB window (2 slots), unaligned geometry.
    yield rx_frame(0, 65535, 0, 0, 0, 64, 1, [60000], [(0, 60000, DONE)])
    yield rx_frame(0x02, 4099, 100, 0, 0, 255, 1, [88, 88],
                   [(i, 88 - i, DONE) for i in range(40)])
    # The client closes the QP in the second frame's handler (mode 2 | 1 << 2).
    yield rx_frame(0, 4096, 512, 0, 0, 64, 7, [500],
                   [(0, 5, DONE), (1, 6, DONE), (2, 7, DONE)])
    # No buffer for the second frame.
    yield rx_frame(0, 4096, 256, 0, 0, 64, 0, [244], [(0, 244, DONE), (1, 1, DONE)])


def rx_info_seeds():
    head = u8(0) + u16(4096 - 32) + u16(4096 - 32) + u32(512)  # 7 slots of 500 bytes

    def burst(lens, more=False):
        return u8(2) + u8((len(lens) - 1) | (8 if more else 0)) + b"".join(u16(n) for n in lens)

    yield head + burst([100, 200, 300]) + u8(3) + u8(1) + u8(2) + u8(4) + burst(
        [500] * 8) + u8(3) + u8(5) + u8(3) + u8(6)
    yield head + burst([1] * 6, True) + u8(2) + u8(0) + u16(1) + u8(5) + u8(1) + u8(1) + u8(
        6) + burst([7]) + u8(4) + u8(6)
    yield head + u8(0) + u32(0xFFFFFFFF) + u8(3) + u8(4) + burst([10]) + u8(0) + u32(
        6) + burst([10, 20]) + u8(6)
    yield head + burst([501]) + burst([1, 501, 1]) + u8(0) + u32(3) + u8(4) + u8(6)


def handshake(mws, spads, db_bits, max_qps, align_shift, sizes, mtu, mode, words):
    b = u8(mws - 1) + u8(spads - 6) + u8(db_bits - 2) + u8(max_qps) + u8(align_shift)
    b += b"".join(u16(i - 1) + u16(o - 1) for i, o in sizes)
    b += u32(mtu) + u8(mode)
    return b + b"".join(u32(w) for w in words)


def handshake_seeds():
    # mode 1: zeros are what an honest ntbt peer writes.
    yield handshake(2, 16, 16, 0, 12, [(65536, 65536)] * 2, 0, 1, [0] * 16)
    yield handshake(1, 6, 2, 0, 0, [(4096, 4096)], 1500, 1, [0] * 6)
    yield handshake(4, 12, 33, 3, 2, [(8000, 9000), (4096, 4096), (300, 300), (65536, 1)], 9000,
                    1, [0] * 12)
    yield handshake(8, 64, 64, 32, 6, [(1024, 1024)] * 8, 64, 1, [0] * 64)
    # Raw (mode 0): a kernel peer (no ext word), and one of protocol version 3.
    yield handshake(1, 8, 4, 0, 0, [(4096, 4096)], 0, 0, [4, 0, 1, 1, 0, 4096, 0, 0])
    yield handshake(1, 8, 4, 0, 0, [(4096, 4096)], 0, 0, [3, 0, 1, 1, 0, 4096, 0, 0])
    # Our frames are 1500 bytes, the peer's 9000 (ext word).
    yield handshake(1, 8, 4, 0, 0, [(65536, 65536)], 1500, 0,
                    [4, 0, 1, 1, 0, 65536, 0, 0xB7000000 | 1 << 18 | 9000])


def shm_header(magic=b"NTBTSHM2", fmt=2, mw=1, spad=8, db=0xF, mw_size=4096, xlat=4096,
               hb=10, rt=20, file_bytes=None, woff=None):
    if woff is None:
        woff = (0x3000 + mw_size - 1) // mw_size * mw_size
    if file_bytes is None:
        need, file_bytes = woff + 2 * mw * mw_size, 1
        while file_bytes < need:
            file_bytes <<= 1
    h = bytearray(0x50)
    h[0:8] = magic
    struct.pack_into("<IIII", h, 0x08, fmt, 0x3000, mw, spad)
    struct.pack_into("<QQQQ", h, 0x18, db, mw_size, xlat, file_bytes)
    struct.pack_into("<III", h, 0x3C, hb, rt, 0)
    struct.pack_into("<Q", h, 0x48, woff)
    return bytes(h)


def shm_port(state=0, pid=0, gen=0, link=0, kind=0, hb=0, spads=()):
    p = bytearray(0x1C0)
    struct.pack_into("<IIIIII", p, 0, state, pid, gen, link, kind, hb)
    for i, v in enumerate(spads):
        struct.pack_into("<I", p, 0x80 + 4 * i, v)
    return bytes(p)


def shm_file_seeds():
    # size mode 0 (file_bytes), open: 1 inspect, 2 port 0, 4 port 1, 6 either.
    free = shm_port() + shm_port()
    yield shm_header() + u8(0) + u8(7) + u8(0) + free
    yield shm_header(mw=2, spad=16, db=0xFFFF, mw_size=8192, hb=10, rt=40) + u8(0) + u8(
        3) + u8(0) + free
    # A dead process owner on port 0 (taken over), a remote one on port 1.
    yield shm_header() + u8(0) + u8(7) + u8(0) + shm_port(1, 0x7FFFFFF0, 5, 1, 1, 9) + shm_port(
        1, 0, 3, 1, 2, 1, (4, 0, 1, 1))
    yield shm_header() + u8(0) + u8(5) + u8(0) + shm_port(1, 1, 1, 1, 1) + free[:0x1C0]
    # Defaults (slow timeouts: only what does not wait), a large sparse file.
    yield shm_header(mw=2, spad=16, db=0xFFFF, mw_size=4 << 20, hb=100, rt=1000) + u8(0) + u8(
        7) + u8(0) + free
    yield shm_header(mw=8, spad=64, db=(1 << 64) - 1, mw_size=1 << 30, xlat=1 << 20, hb=10000,
                     rt=60000) + u8(0) + u8(1) + u8(0) + free
    # Refusals: format 1, wrong size, truncated, zero magic.
    yield shm_header(magic=b"NTBTSHM1", fmt=1) + u8(0) + u8(7) + u8(0) + free
    yield shm_header() + u8(1) + u8(7) + u8(0xFF) + free
    yield shm_header() + u8(2) + u8(7) + u8(0)
    yield shm_header()[:0x20]
    yield shm_header(magic=bytes(8)) + u8(0) + u8(7) + u8(0) + free


def main():
    out = sys.argv[1]
    for name, seeds in (("rx_frame", rx_frame_seeds), ("rx_info", rx_info_seeds),
                        ("handshake", handshake_seeds), ("shm_file", shm_file_seeds)):
        os.makedirs(os.path.join(out, name), exist_ok=True)
        for i, s in enumerate(seeds()):
            with open(os.path.join(out, name, "seed-%02d" % i), "wb") as f:
                f.write(s)


if __name__ == "__main__":
    main()
