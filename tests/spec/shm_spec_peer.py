#!/usr/bin/env python3
"""An independent reader/writer of the shm device, written only from
spec/shm-device.md (format 1), to prove that the file format is the spec's and
not the implementation's.  It shares no code with ntbt.

  shm_spec_peer.py check PATH MW_COUNT SPAD_COUNT DB_BITS MW_SIZE XLAT_ALIGN
      validate a file made by `ntbt dev create` against the spec
  shm_spec_peer.py create PATH MW_COUNT SPAD_COUNT DB_BITS MW_SIZE XLAT_ALIGN
      create a device file as the spec says (magic written last)
  shm_spec_peer.py claim PATH PORT SECONDS
      claim PORT, enable the link, write spad[0]=0x5eed0000+PORT in our own
      page, write b"spec-peer" at offset 0 of outbound window 0, then stay
      alive SECONDS and release cleanly
"""
import mmap
import os
import struct
import sys
import time

HDR = 0x3000


def port_off(p):
    return 0x1000 + p * 0x1000


def expect_header(buf, mw_count, spad_count, db_bits, mw_size, xlat_align):
    magic, fmt, hdr_bytes, mwc, spc, dbm, mws, xa, fb, link_seq = struct.unpack_from(
        "<8sIIIIQQQQI", buf, 0)
    want_mask = (1 << db_bits) - 1
    want_fb = HDR + 2 * mw_count * mw_size
    checks = [("magic", magic, b"NTBTSHM1"), ("format", fmt, 1), ("header_bytes", hdr_bytes, HDR),
              ("mw_count", mwc, mw_count), ("spad_count", spc, spad_count),
              ("db_valid_mask", dbm, want_mask), ("mw_size", mws, mw_size),
              ("xlat_align", xa, xlat_align), ("file_bytes", fb, want_fb)]
    for name, got, want in checks:
        if got != want:
            sys.exit(f"spec peer: {name} = {got!r}, spec wants {want!r}")
    if len(buf) != want_fb:
        sys.exit(f"spec peer: file is {len(buf)} bytes, spec wants {want_fb}")


def cmd_check(path, *g):
    g = [int(x, 0) for x in g]
    with open(path, "rb") as f:
        buf = f.read()
    expect_header(buf, *g)
    # Both port pages free and zero, reserved bytes zero.
    for p in (0, 1):
        page = buf[port_off(p):port_off(p) + 0x1000]
        if any(page):
            sys.exit(f"spec peer: port {p} page is not all zero on a new device")
    print("spec peer: header and layout match the spec")


def cmd_create(path, *g):
    mw_count, spad_count, db_bits, mw_size, xlat_align = [int(x, 0) for x in g]
    fb = HDR + 2 * mw_count * mw_size
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.ftruncate(fd, fb)
    with mmap.mmap(fd, HDR) as m:
        struct.pack_into("<IIIIQQQQI", m, 8, 1, HDR, mw_count, spad_count,
                         (1 << db_bits) - 1, mw_size, xlat_align, fb, 0)
        m[0:8] = b"NTBTSHM1"  # magic last
    os.close(fd)
    print("spec peer: created", path)


def cmd_claim(path, port, seconds):
    port, seconds = int(port), float(seconds)
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    size = os.fstat(fd).st_size
    m = mmap.mmap(fd, size)
    mw_count, spad_count = struct.unpack_from("<II", m, 0x10)
    mw_size, = struct.unpack_from("<Q", m, 0x20)
    po = port_off(port)
    state, = struct.unpack_from("<I", m, po)
    if state != 0:
        sys.exit(f"spec peer: port {port} is not free")
    # claim: state 1, pid, generation+1, reset registers, link_seq+1.
    # (Single writer in this test, so plain stores stand in for the CAS.)
    gen, = struct.unpack_from("<I", m, po + 8)
    struct.pack_into("<III", m, po, 1, os.getpid(), gen + 1)
    struct.pack_into("<QQ", m, po + 0x40, 0, 0)
    for i in range(spad_count):
        struct.pack_into("<I", m, po + 0x80 + 4 * i, 0)
    seq, = struct.unpack_from("<I", m, 0x38)
    struct.pack_into("<I", m, 0x38, seq + 1)
    # link_enable
    struct.pack_into("<I", m, po + 0x0C, 1)
    seq, = struct.unpack_from("<I", m, 0x38)
    struct.pack_into("<I", m, 0x38, seq + 1)
    struct.pack_into("<I", m, po + 0x80, 0x5eed0000 + port)
    # outbound window 0 = the peer's inbound window 0
    peer = 1 - port
    w = HDR + (peer * mw_count + 0) * mw_size
    m[w:w + 9] = b"spec-peer"
    print("spec peer: claimed port", port, flush=True)
    time.sleep(seconds)
    struct.pack_into("<I", m, po + 0x0C, 0)
    struct.pack_into("<I", m, po, 0)
    seq, = struct.unpack_from("<I", m, 0x38)
    struct.pack_into("<I", m, 0x38, seq + 1)
    m.close()
    os.close(fd)


if __name__ == "__main__":
    cmds = {"check": cmd_check, "create": cmd_create, "claim": cmd_claim}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])
