#!/usr/bin/env python3
"""An independent reader/writer of the shm device, written only from
docs/spec/shm-device.md (format 2, tests/spec/shmdev.py), to prove that the file
format is the spec's and not the implementation's.  It shares no code with
ntbt.

  shm_spec_peer.py check PATH MW_COUNT SPAD_COUNT DB_BITS MW_SIZE XLAT_ALIGN
      validate a file made by `ntbt dev create` against the spec
  shm_spec_peer.py create PATH MW_COUNT SPAD_COUNT DB_BITS MW_SIZE XLAT_ALIGN
      create a device file as the spec says (allocated, magic written last)
  shm_spec_peer.py claim PATH PORT SECONDS [--remote]
      claim PORT (as a remote owner with --remote), enable the link, write
      spad[0]=0x5eed0000+PORT in our own page, write b"spec-peer" at offset 0
      of outbound window 0, then stay alive SECONDS, beating the heartbeat,
      and release cleanly
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shmdev  # noqa: E402


def cmd_check(path, *g):
    mw_count, spad_count, db_bits, mw_size, xlat_align = [int(x, 0) for x in g]
    d = shmdev.Mapping(path)
    want = [("mw_count", d.mw_count, mw_count), ("spad_count", d.spad_count, spad_count),
            ("db_valid_mask", d.db_valid, (1 << db_bits) - 1), ("mw_size", d.mw_size, mw_size),
            ("xlat_align", d.xlat_align, xlat_align), ("heartbeat_ms", d.heartbeat_ms, 100),
            ("remote_timeout_ms", d.remote_timeout_ms, 1000),
            ("file_bytes", d.size, shmdev.file_bytes(mw_count, mw_size))]
    for name, got, exp in want:
        if got != exp:
            sys.exit(f"spec peer: {name} = {got!r}, spec wants {exp!r}")
    # Both port pages free and zero, reserved bytes zero.
    for p in (0, 1):
        off = 0x1000 + p * 0x1000
        if any(d.m[off:off + 0x1000]):
            sys.exit(f"spec peer: port {p} page is not all zero on a new device")
    if any(d.m[0x50:0x1000]):
        sys.exit("spec peer: reserved header bytes are not zero")
    # The header pages and the windows are allocated at creation.
    if os.fstat(d.fd).st_blocks * 512 < 0x3000 + 2 * mw_count * mw_size:
        sys.exit("spec peer: the windows are not allocated")
    print("spec peer: header and layout match the spec")


def cmd_create(path, *g):
    mw_count, spad_count, db_bits, mw_size, xlat_align = [int(x, 0) for x in g]
    shmdev.create(path, mw_count, spad_count, db_bits, mw_size, xlat_align)
    print("spec peer: created", path)


def cmd_claim(path, port, seconds, *flags):
    port, seconds = int(port), float(seconds)
    d = shmdev.Port(path, port, remote="--remote" in flags)
    d.set_spad(0, 0x5eed0000 + port)
    w = d.outbound(0)
    d.m[w:w + 9] = b"spec-peer"
    print("spec peer: claimed port", port, flush=True)
    time.sleep(seconds)
    d.release()
    d.close()


if __name__ == "__main__":
    cmds = {"check": cmd_check, "create": cmd_create, "claim": cmd_claim}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    try:
        cmds[sys.argv[1]](*sys.argv[2:])
    except (shmdev.SpecError, OSError) as e:
        sys.exit(f"spec peer: {e}")
