#!/usr/bin/env python3
"""The host side of tests/vm/test_vm_clients.sh: one port of a format-2 device
file held by a process of this host, driven by commands on stdin.

    hostport.py DEVICE_FILE PORT [--remote]

It claims PORT with tests/spec/shmdev.py (written from the spec alone, no
ntbt code): owner_kind 1 (a process owner; --remote: 2), a heartbeat thread,
link_enable.  Then it reads one command a line and answers one line, "ok
[VALUE]" or "err WHY", until "quit" (or end of input), which releases the
port.  Numbers are read with int(x, 0) and printed in hex (0x..).

    link                  1 when the link is up as the spec defines it, else 0
    link_enable 0|1       our link_enabled register
    spad I | peer_spad I  our / the peer's scratchpad I
    set_spad I V | set_peer_spad I V
    db                    our doorbell register
    db_clear BITS         clear bits of our doorbell register
    ring BITS             peer_db_set: OR the bits into the peer's db, count db_seq
    trans N SIZE          mw_set_trans on our inbound window N
    inbound N | outbound N  the file offset of our inbound window N / of the
                          peer's inbound window N (our outbound window N)
    wwrite OFF PATH       copy the file PATH into the device file at OFF
    wsha OFF LEN          sha256 of LEN bytes of the device file at OFF
    quit
"""
import ctypes
import ctypes.util
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec"))
import shmdev  # noqa: E402


def main():
    if len(sys.argv) < 3 or sys.argv[3:] not in ([], ["--remote"]):
        sys.exit(__doc__)
    path, port = sys.argv[1], int(sys.argv[2])
    try:
        dev = shmdev.Port(path, port, remote="--remote" in sys.argv)
    except (shmdev.SpecError, OSError) as e:
        print(f"err {e}", flush=True)
        return 1
    me = dev.me_off
    print(f"ok port {port} generation {dev.generation}", flush=True)

    # shmdev has no atomic AND: libatomic's, as shmdev does for the others.
    lib = ctypes.CDLL(ctypes.util.find_library("atomic") or "libatomic.so.1")
    and8 = lib.__atomic_fetch_and_8
    and8.argtypes, and8.restype = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int], ctypes.c_uint64

    def link_enable(v):
        dev.w32(me + shmdev.LINK_ENABLED, int(v, 0))
        dev.bump_link_seq()

    def db_clear(bits):
        and8(dev.base + me + shmdev.DB, ~int(bits, 0) & (2**64 - 1), shmdev.SEQ_CST)

    def window(off, n):
        if not (0 <= off and off + n <= dev.size):
            raise ValueError(f"{off:#x}+{n:#x} is outside the file")
        return off

    cmds = {
        "link": lambda: int(dev.link_up()),
        "link_enable": link_enable,
        "spad": lambda i: dev.spad(int(i, 0)),
        "peer_spad": lambda i: dev.peer_spad(int(i, 0)),
        "set_spad": lambda i, v: dev.set_spad(int(i, 0), int(v, 0)),
        "set_peer_spad": lambda i, v: dev.set_peer_spad(int(i, 0), int(v, 0)),
        "db": lambda: dev.r64(me + shmdev.DB),
        "db_clear": db_clear,
        "ring": lambda b: dev.ring(int(b, 0)),
        "trans": lambda n, s: dev.set_trans(int(n, 0), int(s, 0)),
        "inbound": lambda n: dev.inbound(int(n, 0)),
        "outbound": lambda n: dev.outbound(int(n, 0)),
    }

    def wwrite(off, src):
        with open(src, "rb") as f:
            data = f.read()
        o = window(int(off, 0), len(data))
        dev.m[o:o + len(data)] = data
        return len(data)

    def wsha(off, n):
        o, n = int(off, 0), int(n, 0)
        window(o, n)
        return hashlib.sha256(dev.m[o:o + n]).hexdigest()

    cmds["wwrite"], cmds["wsha"] = wwrite, wsha
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        try:
            fn = cmds[words[0]]
            v = fn(*words[1:])
            if v is None:
                print("ok", flush=True)
            elif isinstance(v, int):
                print(f"ok {v:#x}", flush=True)
            else:
                print(f"ok {v}", flush=True)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            print(f"err {words[0]}: {e!r}", flush=True)
    dev.release()
    dev.close()
    print("ok released", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
