#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check that the library's files only call downward (docs/design.md).

Usage: layers.py OBJDIR [--graph]

OBJDIR holds the library's object files (the build's
CMakeFiles/ntbt_obj.dir/src).  Every src/ file has a layer below; a function
defined in one file and called from another is allowed only when the caller's
layer is above the callee's.  Data references (a device's ops table named in
the registry) are not calls and are not checked.  Prints each violation and
exits 1 when there is one; with --graph prints every cross-file call edge.
"""
import os
import subprocess
import sys

# Lowest first.  Files of one layer may not call each other.
LAYERS = [
    ("util", ["util/log", "util/parse", "util/futex"]),
    ("device core", ["dev/dev"]),
    ("wrapper base", ["dev/wrap"]),
    ("devices", ["dev/shm", "dev/kdev", "dev/pcie"]),
    ("wire", ["transport/geometry"]),
    ("job queue", ["transport/copy_thread"]),
    ("stats file", ["transport/stats_file"]),
    ("rings", ["transport/tx", "transport/rx"]),
    ("zero copy", ["transport/zc"]),
    ("queue pair", ["transport/qp"]),
    ("transport", ["transport/link"]),
    ("stats", ["transport/stats"]),
]


def symbols(path, undefined):
    args = ["nm", "-u" if undefined else "--defined-only", path]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if undefined:
            yield parts[-1], "U"
        elif len(parts) == 3:
            yield parts[2], parts[1]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    objdir = sys.argv[1]
    layer_of = {}
    for rank, (_, files) in enumerate(LAYERS):
        for f in files:
            layer_of[f] = rank
    objs = {}
    for root, _, names in os.walk(objdir):
        for n in names:
            if n.endswith(".c.o"):
                rel = os.path.relpath(os.path.join(root, n), objdir)[: -len(".c.o")]
                objs[rel] = os.path.join(root, n)
    unknown = sorted(set(objs) - set(layer_of))
    if unknown:
        print("files with no layer (add them to tests/layers.py): " + " ".join(unknown))
        return 1
    funcs = {}
    for rel, path in objs.items():
        for sym, kind in symbols(path, False):
            if kind in "Tt":
                funcs[sym] = rel
    bad = 0
    for rel, path in sorted(objs.items()):
        for sym, _ in symbols(path, True):
            callee = funcs.get(sym)
            if callee is None or callee == rel:
                continue
            up = layer_of[callee] >= layer_of[rel]
            if "--graph" in sys.argv or up:
                print(f"{'UPWARD ' if up else ''}{rel} -> {callee}: {sym}")
            bad += up
    if bad:
        print(f"{bad} calls go up or sideways (layers: docs/design.md, tests/layers.py)")
        return 1
    print(f"layers: {len(objs)} files, every cross-file call goes down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
