#!/usr/bin/env python3
"""An independent NTB transport v4 peer, written only from
docs/spec/ntb-transport-v4.md and docs/spec/shm-device.md.  It shares no code with
ntbt and exists to show that ntbt speaks the specified protocol.

  v4_peer.py send DEVICE_FILE PORT INPUT  [--mtu N] [--qp Q] [--remote]
  v4_peer.py recv DEVICE_FILE PORT OUTPUT [--mtu N] [--qp Q] [--remote]

It claims PORT of an existing shm device, runs the transport and QP
handshakes, then sends the file INPUT (closing with a LINK_DOWN frame) or
writes what it receives to OUTPUT until the peer's LINK_DOWN frame.
Polling; the device (tests/spec/shmdev.py) beats the heartbeat from a thread.
With --remote it claims the port as a remote owner (owner_kind 2, pid 0, no
futex), as a QEMU guest's driver does.  x86-64.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shmdev  # noqa: E402

VERSION = 4
DONE, LINK_DOWN = 1, 2
HEADER = 12  # ver, len, flags at the end of each frame


def geometry(size, qp_count, mw_count, q, mtu):
    """spec section 3."""
    m = q % mw_count
    k = qp_count // mw_count + (1 if m < qp_count % mw_count else 0)
    region = (size & 0xFFFFFFFF) // k
    offset = region * (q // mw_count)
    ring = region - 4
    frame = min(mtu, ring // 2)
    return {"mw": m, "offset": offset, "ring": ring, "frame": frame,
            "entries": ring // frame, "payload": frame - HEADER}


class Transport:
    def __init__(self, dev, q, mtu):
        self.d, self.q, self.mtu = dev, q, mtu
        self.mw_count = min(dev.mw_count, (dev.spad_count - 4) // 2)
        qps = dev.db_valid.bit_length() - 1  # floor(log2(db_valid_mask))
        self.qp_count = min(qps, self.mw_count)  # max_qps = 0
        self.handshake()

    def handshake(self):
        d = self.d
        deadline = time.time() + 30
        while True:
            if d.link_up():
                for n in range(self.mw_count):
                    d.set_peer_spad(4 + 2 * n, d.mw_size >> 32)
                    d.set_peer_spad(5 + 2 * n, d.mw_size & 0xFFFFFFFF)
                d.set_peer_spad(3, self.mw_count)
                d.set_peer_spad(2, self.qp_count)
                d.set_peer_spad(0, VERSION)
                if (d.spad(0) == VERSION and d.spad(2) == self.qp_count
                        and d.spad(3) == self.mw_count):
                    break
            if time.time() > deadline:
                sys.exit("v4 peer: transport handshake timed out")
            time.sleep(0.01)
        self.rx_size = []
        for n in range(self.mw_count):
            size = d.spad(4 + 2 * n) << 32 | d.spad(5 + 2 * n)
            size = -(-size // d.xlat_align) * d.xlat_align
            if not 0 < size <= d.mw_size:
                sys.exit(f"v4 peer: peer advertised window {n} size {size}")
            d.set_trans(n, size)
            self.rx_size.append(size)
        q = self.q
        self.rx = geometry(self.rx_size[q % self.mw_count], self.qp_count, self.mw_count, q, self.mtu)
        self.tx = geometry(d.mw_size, self.qp_count, self.mw_count, q, self.mtu)
        self.rx_base = d.inbound(self.rx["mw"]) + self.rx["offset"]
        self.tx_base = d.outbound(self.tx["mw"]) + self.tx["offset"]
        for i in range(self.rx["entries"]):  # zero our inbound frame headers
            h = self.rx_base + (i + 1) * self.rx["frame"] - HEADER
            d.m[h:h + HEADER] = bytes(HEADER)
        # the sender-side copy of the peer's rx_info
        d.w32(self.rx_base + self.rx["ring"], self.tx["entries"] - 1)
        self.tx_index = self.tx_pkts = self.rx_index = self.rx_pkts = 0
        # QP level: write only our own request bit, wait for the peer's.
        while not (d.spad(1) >> q) & 1:
            d.set_peer_spad(1, d.peer_spad(1) | (1 << q))
            if time.time() > deadline or not d.link_up():
                sys.exit("v4 peer: QP handshake failed")
            time.sleep(0.01)
        d.set_peer_spad(1, d.peer_spad(1) | (1 << q))

    def free_slots(self):
        entry = self.d.r32(self.rx_base + self.rx["ring"])
        n = self.tx["entries"]
        if entry >= n:
            sys.exit(f"v4 peer: rx_info {entry} out of range")
        return entry - self.tx_index if entry >= self.tx_index else n + entry - self.tx_index

    def send(self, payload, flags=DONE):
        d, t = self.d, self.tx
        deadline = time.time() + 30
        while self.free_slots() == 0:
            if time.time() > deadline or not d.link_up():
                sys.exit("v4 peer: no free slot")
            time.sleep(0.0002)
        frame = self.tx_base + self.tx_index * t["frame"]
        hdr = frame + t["frame"] - HEADER
        self.tx_index = (self.tx_index + 1) % t["entries"]
        d.w32(hdr + 4, len(payload))
        d.w32(hdr + 0, self.tx_pkts)
        self.tx_pkts += 1
        d.m[frame:frame + len(payload)] = payload
        d.w32(hdr + 8, flags)
        d.r32(hdr + 8)  # read back before the doorbell
        d.ring(1 << self.q)

    def close(self):
        d = self.d
        d.set_peer_spad(1, d.peer_spad(1) & ~(1 << self.q))
        self.send(b"", DONE | LINK_DOWN)

    def wait_consumed(self):
        deadline = time.time() + 30
        while self.free_slots() != self.tx["entries"] - 1:
            if time.time() > deadline or not self.d.link_up():
                sys.exit("v4 peer: the peer did not consume every frame")
            time.sleep(0.0005)

    def recv(self):
        """The next payload, or None on LINK_DOWN."""
        d, r = self.d, self.rx
        while True:
            frame = self.rx_base + self.rx_index * r["frame"]
            hdr = frame + r["frame"] - HEADER
            flags = d.r32(hdr + 8)
            if flags & DONE:
                break
            if not d.link_up():
                # A frame written just before the link went down still counts.
                if d.r32(hdr + 8) & DONE:
                    continue
                sys.exit("v4 peer: link lost")
            time.sleep(0.0002)
        if flags & LINK_DOWN:
            d.w32(hdr + 8, 0)
            return None
        ver, length = d.r32(hdr), d.r32(hdr + 4)
        if ver != self.rx_pkts or length > r["payload"] or flags & ~3:
            sys.exit(f"v4 peer: bad frame: ver {ver} (want {self.rx_pkts}) len {length} flags {flags}")
        data = bytes(d.m[frame:frame + length])
        d.w32(hdr + 8, 0)
        # rx_info through our outbound window, at the end of the region
        d.w32(self.tx_base + self.tx["ring"], self.rx_index)
        self.rx_pkts += 1
        self.rx_index = (self.rx_index + 1) % r["entries"]
        return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["send", "recv"])
    ap.add_argument("device")
    ap.add_argument("port", type=int)
    ap.add_argument("file")
    ap.add_argument("--mtu", type=int, default=65536)
    ap.add_argument("--qp", type=int, default=0)
    ap.add_argument("--remote", action="store_true")
    a = ap.parse_args()
    try:
        dev = shmdev.Port(a.device, a.port, remote=a.remote)
    except (shmdev.SpecError, OSError) as e:
        sys.exit(f"v4 peer: {e}")
    t = Transport(dev, a.qp, a.mtu)
    n = 0
    if a.mode == "send":
        with open(a.file, "rb") as f:
            while True:
                chunk = f.read(t.tx["payload"])
                if not chunk:
                    break
                t.send(chunk)
                n += len(chunk)
        t.wait_consumed()
        t.close()
    else:
        with open(a.file, "wb") as f:
            while True:
                data = t.recv()
                if data is None:
                    break
                f.write(data)
                n += len(data)
    print(f"v4 peer: {a.mode} {n} bytes", file=sys.stderr)
    dev.release()


if __name__ == "__main__":
    main()
