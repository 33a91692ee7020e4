#!/usr/bin/env python3
"""Create an emulated NTB device file, format 2 (docs/spec/shm-device.md).

    mkdev.py PATH [--mw-count N] [--mw-size BYTES] [--spad-count N]
                  [--db-bits N] [--xlat-align BYTES] [--heartbeat-ms N]
                  [--remote-timeout-ms N]
    mkdev.py --show PATH    one line per port: its registers, as NAME=VALUE

Written from the spec alone, so that the VM harness needs neither the
library nor the ntbt command: the file is created O_EXCL with mode 0600 and
sized to a power of two (QEMU maps it whole as the BAR of an ivshmem-plain
device); the register pages and the windows are posix_fallocate'd; the header
is filled and the magic written last.  Prints the file's size in bytes.
"""
import argparse
import os
import struct
import sys

HEADER_BYTES = 0x3000


def size_arg(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("B").rstrip("I")
    if text and text[-1] in units:
        return int(text[:-1], 0) * units[text[-1]]
    return int(text, 0)


def is_pow2(v):
    return v > 0 and v & (v - 1) == 0


PORT_FIELDS = ("state", "pid", "generation", "link_enabled", "owner_kind", "heartbeat")


def show(path):
    with open(path, "rb") as f:
        hdr = f.read(0x3000)
    if hdr[:8] != b"NTBTSHM2":
        sys.exit("mkdev.py: %s: no format-2 magic" % path)
    print("link_seq=%d" % struct.unpack_from("<I", hdr, 0x38))
    for p in (0, 1):
        off = 0x1000 + p * 0x1000
        regs = struct.unpack_from("<6I", hdr, off)
        db, db_mask = struct.unpack_from("<QQ", hdr, off + 0x40)
        print("port%d " % p + " ".join("%s=%d" % kv for kv in zip(PORT_FIELDS, regs))
              + " db=%#x db_mask=%#x db_seq=%d" % (db, db_mask, struct.unpack_from("<I", hdr, off + 0x50)[0]))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--show":
        show(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--mw-count", type=int, default=2)
    ap.add_argument("--mw-size", type=size_arg, default=4 << 20)
    ap.add_argument("--spad-count", type=int, default=16)
    ap.add_argument("--db-bits", type=int, default=16)
    ap.add_argument("--xlat-align", type=size_arg, default=4096)
    ap.add_argument("--heartbeat-ms", type=int, default=100)
    ap.add_argument("--remote-timeout-ms", type=int, default=0,
                    help="default: 1000, or ten heartbeats if that is more")
    a = ap.parse_args()
    rto = a.remote_timeout_ms or max(1000, 10 * a.heartbeat_ms)
    checks = [
        ("mw_count 1-8", 1 <= a.mw_count <= 8),
        ("spad_count 6-64", 6 <= a.spad_count <= 64),
        ("db_bits 2-64", 2 <= a.db_bits <= 64),
        ("mw_size a power of two, 4 KiB - 1 GiB",
         is_pow2(a.mw_size) and 4096 <= a.mw_size <= 1 << 30),
        ("xlat_align a power of two, 4 KiB - mw_size",
         is_pow2(a.xlat_align) and 4096 <= a.xlat_align <= a.mw_size),
        ("heartbeat_ms 10-10000", 10 <= a.heartbeat_ms <= 10000),
        ("remote_timeout_ms 2 x heartbeat_ms - 60000",
         2 * a.heartbeat_ms <= rto <= 60000),
    ]
    for what, ok in checks:
        if not ok:
            sys.exit("mkdev.py: bad geometry: %s" % what)

    mw_size = a.mw_size
    window_offset = (HEADER_BYTES + mw_size - 1) // mw_size * mw_size
    need = window_offset + 2 * a.mw_count * mw_size
    file_bytes = 1
    while file_bytes < need:
        file_bytes <<= 1
    db_mask = (1 << a.db_bits) - 1

    fd = os.open(a.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, file_bytes)
        os.posix_fallocate(fd, 0, HEADER_BYTES)
        os.posix_fallocate(fd, window_offset, 2 * a.mw_count * mw_size)
        # Everything but the magic (0x00) and link_seq (0x38, stays 0).
        os.pwrite(fd, struct.pack("<IIII", 2, HEADER_BYTES, a.mw_count, a.spad_count), 0x08)
        os.pwrite(fd, struct.pack("<QQQQ", db_mask, mw_size, a.xlat_align, file_bytes), 0x18)
        os.pwrite(fd, struct.pack("<II", a.heartbeat_ms, rto), 0x3C)
        os.pwrite(fd, struct.pack("<Q", window_offset), 0x48)
        os.pwrite(fd, b"NTBTSHM2", 0x00)  # last: an opener waits for it
    except BaseException:
        os.unlink(a.path)
        raise
    finally:
        os.close(fd)
    print(file_bytes)


if __name__ == "__main__":
    main()
