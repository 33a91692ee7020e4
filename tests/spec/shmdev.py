"""The shm device, format 2, written only from docs/spec/shm-device.md: shared by
the spec peers (shm_spec_peer.py, v4_peer.py) and by the VM tests' helpers.
It shares no code with ntbt.

Every register access is one atomic access of the register's width, as the
spec demands: through libatomic's __atomic_* entry points (sequentially
consistent), so a reader never sees a half-written or zero-filled register.
x86-64 and little-endian only.
"""
import ctypes
import ctypes.util
import mmap
import os
import struct
import sys
import threading
import time
import types

MAGIC, MAGIC_V1, FORMAT, HEADER_BYTES = b"NTBTSHM2", b"NTBTSHM1", 2, 0x3000
OWNER_NONE, OWNER_PROCESS, OWNER_REMOTE = 0, 1, 2
SEQ_CST = 5
# Port register offsets.
STATE, PID, GENERATION, LINK_ENABLED, OWNER_KIND, HEARTBEAT = 0x0, 0x4, 0x8, 0xC, 0x10, 0x14
DB, DB_MASK, DB_SEQ, DB_SLEEPERS, SPAD, XLAT_SIZE = 0x40, 0x48, 0x50, 0x54, 0x80, 0x180
LINK_SEQ = 0x38


class SpecError(Exception):
    pass


def window_offset(mw_size):
    """The smallest multiple of mw_size that is at least 0x3000."""
    return -(-HEADER_BYTES // mw_size) * mw_size


def file_bytes(mw_count, mw_size):
    """The smallest power of two that holds the header and the windows."""
    need, b = window_offset(mw_size) + 2 * mw_count * mw_size, 1
    while b < need:
        b <<= 1
    return b


def _libatomic():
    name = ctypes.util.find_library("atomic") or "libatomic.so.1"
    lib = ctypes.CDLL(name)
    u32, u64, vp = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_void_p
    for fn, args, res in (("__atomic_load_4", [vp, ctypes.c_int], u32),
                          ("__atomic_load_8", [vp, ctypes.c_int], u64),
                          ("__atomic_store_4", [vp, u32, ctypes.c_int], None),
                          ("__atomic_store_8", [vp, u64, ctypes.c_int], None),
                          ("__atomic_fetch_add_4", [vp, u32, ctypes.c_int], u32),
                          ("__atomic_fetch_or_8", [vp, u64, ctypes.c_int], u64),
                          ("__atomic_fetch_and_8", [vp, u64, ctypes.c_int], u64),
                          ("__atomic_compare_exchange_4",
                           [vp, vp, u32, ctypes.c_bool, ctypes.c_int, ctypes.c_int], ctypes.c_bool)):
        f = getattr(lib, fn)
        f.argtypes, f.restype = args, res
    # Short names: inside a class, "__atomic_x" would be name-mangled.
    return types.SimpleNamespace(
        load4=lib.__atomic_load_4, load8=lib.__atomic_load_8, store4=lib.__atomic_store_4,
        store8=lib.__atomic_store_8, add4=lib.__atomic_fetch_add_4, or8=lib.__atomic_fetch_or_8,
        cas4=lib.__atomic_compare_exchange_4)


class Mapping:
    """A mapped device file with atomic register access."""

    def __init__(self, path, create=None):
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK
        self.fd = os.open(path, flags)
        st = os.fstat(self.fd)
        if not (st.st_mode & 0o170000) == 0o100000:
            raise SpecError(f"{path}: not a regular file")
        self.size = st.st_size
        if self.size < HEADER_BYTES:
            raise SpecError(f"{path}: truncated ({self.size} bytes)")
        self.m = mmap.mmap(self.fd, self.size)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.m))
        self.a = _libatomic()
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.validate(path)

    def validate(self, path):
        deadline = time.time() + 1
        while bytes(self.m[0:8]) == bytes(8) and time.time() < deadline:
            time.sleep(0.01)  # the creator writes the magic last
        magic = bytes(self.m[0:8])
        if magic == MAGIC_V1:
            raise SpecError(f"{path}: format 1: create the device again")
        if magic != MAGIC:
            raise SpecError(f"{path}: wrong magic {magic!r}")
        (fmt, hb, self.mw_count, self.spad_count, self.db_valid, self.mw_size, self.xlat_align,
         fb) = struct.unpack_from("<IIIIQQQQ", self.m, 8)
        self.heartbeat_ms, self.remote_timeout_ms = struct.unpack_from("<II", self.m, 0x3C)
        self.window_offset, = struct.unpack_from("<Q", self.m, 0x48)
        checks = [
            ("format", fmt == FORMAT), ("header_bytes", hb == HEADER_BYTES),
            ("mw_count", 1 <= self.mw_count <= 8), ("spad_count", 6 <= self.spad_count <= 64),
            ("db_valid_mask", self.db_valid & (self.db_valid + 1) == 0
             and bin(self.db_valid).count("1") >= 2),
            ("mw_size", 4096 <= self.mw_size <= 1 << 30 and self.mw_size & (self.mw_size - 1) == 0),
            ("xlat_align", 4096 <= self.xlat_align <= self.mw_size
             and self.xlat_align & (self.xlat_align - 1) == 0),
            ("heartbeat_ms", 10 <= self.heartbeat_ms <= 10000),
            ("remote_timeout_ms", 2 * self.heartbeat_ms <= self.remote_timeout_ms <= 60000),
            ("window_offset", self.window_offset == window_offset(self.mw_size)),
            ("file_bytes", fb == file_bytes(self.mw_count, self.mw_size) == self.size),
        ]
        for name, ok in checks:
            if not ok:
                raise SpecError(f"{path}: bad {name}")

    # Registers: one atomic access of their width, seq_cst.
    def r32(self, off):
        return self.a.load4(self.base + off, SEQ_CST)

    def w32(self, off, v):
        self.a.store4(self.base + off, v & 0xFFFFFFFF, SEQ_CST)

    def r64(self, off):
        return self.a.load8(self.base + off, SEQ_CST)

    def w64(self, off, v):
        self.a.store8(self.base + off, v & (2**64 - 1), SEQ_CST)

    def add32(self, off, v):
        return self.a.add4(self.base + off, v, SEQ_CST)

    def or64(self, off, v):
        return self.a.or8(self.base + off, v, SEQ_CST)

    def cas32(self, off, old, new):
        exp = ctypes.c_uint32(old)
        return self.a.cas4(self.base + off, ctypes.addressof(exp), new, False, SEQ_CST, SEQ_CST)

    def futex_wake(self, off):
        self.libc.syscall(202, ctypes.c_void_p(self.base + off), 1, 0x7FFFFFFF, None, None, 0)

    def close(self):
        self.m.close()
        os.close(self.fd)


def create(path, mw_count=2, spad_count=16, db_bits=16, mw_size=4 << 20, xlat_align=4096,
           heartbeat_ms=100, remote_timeout_ms=1000):
    """Create a device file as the spec says: O_EXCL, 0600, allocated, magic last."""
    fb = file_bytes(mw_count, mw_size)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.ftruncate(fd, fb)
        os.posix_fallocate(fd, 0, HEADER_BYTES)
        os.posix_fallocate(fd, window_offset(mw_size), 2 * mw_count * mw_size)
        with mmap.mmap(fd, HEADER_BYTES) as m:
            struct.pack_into("<IIIIQQQQIII", m, 8, FORMAT, HEADER_BYTES, mw_count, spad_count,
                             (1 << db_bits) - 1, mw_size, xlat_align, fb, 0, heartbeat_ms,
                             remote_timeout_ms)
            struct.pack_into("<Q", m, 0x48, window_offset(mw_size))
            m[0:8] = MAGIC  # last: openers wait for it
    except BaseException:
        os.unlink(path)
        raise
    finally:
        os.close(fd)


class Port(Mapping):
    """One port of a device, claimed as a process owner or a remote owner."""

    def __init__(self, path, port, remote=False, link_enable=True):
        super().__init__(path)
        self.port, self.peer = port, 1 - port
        self.remote = remote
        self.me_off = 0x1000 + port * 0x1000
        self.peer_off = 0x1000 + self.peer * 0x1000
        self.peer_hb, self.peer_hb_at, self.peer_gen = None, 0.0, None
        self.claim()
        self.stop = threading.Event()
        self.beater = threading.Thread(target=self._beat, daemon=True)
        self.beater.start()
        if link_enable:
            self.w32(self.me_off + LINK_ENABLED, 1)
            self.bump_link_seq()

    def _beat(self):
        while not self.stop.wait(self.heartbeat_ms / 2000):
            self.add32(self.me_off + HEARTBEAT, 1)

    def bump_link_seq(self):
        self.add32(LINK_SEQ, 1)
        if not self.remote:  # a remote owner never wakes a futex
            self.futex_wake(LINK_SEQ)

    def claim(self):
        p = self.me_off
        if not self.cas32(p + STATE, 0, 1):
            raise SpecError(f"port {self.port} is taken")
        self.w32(p + OWNER_KIND, OWNER_REMOTE if self.remote else OWNER_PROCESS)
        self.w32(p + PID, 0 if self.remote else os.getpid())
        self.generation = self.add32(p + GENERATION, 1) + 1
        self.add32(p + HEARTBEAT, 1)
        self.w64(p + DB, 0)
        self.w64(p + DB_MASK, 0)
        for i in range(self.spad_count):
            self.w32(p + SPAD + 4 * i, 0)
        for n in range(self.mw_count):
            self.w64(p + XLAT_SIZE + 8 * n, 0)
        self.w32(p + LINK_ENABLED, 0)
        self.bump_link_seq()

    def release(self):
        self.stop.set()
        self.beater.join()
        if self.r32(self.me_off + GENERATION) == self.generation:
            self.w32(self.me_off + LINK_ENABLED, 0)
            self.w32(self.me_off + OWNER_KIND, OWNER_NONE)
            self.w32(self.me_off + STATE, 0)
            self.bump_link_seq()

    def peer_alive(self):
        pe = self.peer_off
        kind, gen = self.r32(pe + OWNER_KIND), self.r32(pe + GENERATION)
        if kind == OWNER_PROCESS and not self.remote:
            pid = self.r32(pe + PID)
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
            except OSError:
                return False
        if kind not in (OWNER_PROCESS, OWNER_REMOTE):
            return False
        hb, now = self.r32(pe + HEARTBEAT), time.monotonic()
        if gen != self.peer_gen or hb != self.peer_hb:
            self.peer_gen, self.peer_hb, self.peer_hb_at = gen, hb, now
        return now - self.peer_hb_at < self.remote_timeout_ms / 1000

    def link_up(self):
        me, pe = self.me_off, self.peer_off
        if not (self.r32(me + STATE) == 1 and self.r32(me + LINK_ENABLED) == 1):
            return False
        if not (self.r32(pe + STATE) == 1 and self.r32(pe + LINK_ENABLED) == 1):
            return False
        return self.peer_alive()

    # scratchpads
    def spad(self, i):
        return self.r32(self.me_off + SPAD + 4 * i)

    def set_spad(self, i, v):
        self.w32(self.me_off + SPAD + 4 * i, v)

    def peer_spad(self, i):
        return self.r32(self.peer_off + SPAD + 4 * i)

    def set_peer_spad(self, i, v):
        self.w32(self.peer_off + SPAD + 4 * i, v)

    # windows: absolute file offsets
    def inbound(self, n):
        return self.window_offset + (self.port * self.mw_count + n) * self.mw_size

    def outbound(self, n):
        return self.window_offset + (self.peer * self.mw_count + n) * self.mw_size

    def set_trans(self, n, size):
        self.w64(self.me_off + XLAT_SIZE + 8 * n, size)

    def ring(self, bits):
        pe = self.peer_off
        self.or64(pe + DB, bits & self.db_valid)
        self.add32(pe + DB_SEQ, 1)
        if not self.remote and self.r32(pe + DB_SLEEPERS):
            self.futex_wake(pe + DB_SEQ)


def die(msg):
    sys.exit(msg)
