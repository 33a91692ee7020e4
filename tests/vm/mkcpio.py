#!/usr/bin/env python3
"""mkcpio.py DIR OUT: pack DIR as a gzip'd newc cpio archive (an initramfs).

Owners become root, times zero, so the same tree gives the same bytes; no
cpio(1) needed.
"""
import gzip
import os
import stat
import sys


def header(ino, mode, nlink, size, name):
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name) + 1, 0]
    return b"070701" + b"".join(b"%08X" % f for f in fields) + name + b"\0"


def pad(n):
    return b"\0" * (-n % 4)


def main():
    root, out = sys.argv[1], sys.argv[2]
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            entries.append(os.path.join(dirpath, name))
    with gzip.open(out + ".tmp", "wb", compresslevel=6) as f:
        for ino, path in enumerate(entries, start=1):
            rel = os.path.relpath(path, root).encode()
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                data = os.readlink(path).encode()
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as src:
                    data = src.read()
            elif stat.S_ISDIR(st.st_mode):
                data = b""
            else:
                sys.exit("mkcpio.py: %s: not a file, directory or link" % path)
            nlink = 2 if stat.S_ISDIR(st.st_mode) else 1
            h = header(ino, st.st_mode, nlink, len(data), rel)
            f.write(h + pad(len(h)) + data + pad(len(data)))
        h = header(0, 0, 1, 0, b"TRAILER!!!")
        f.write(h + pad(len(h)))
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
