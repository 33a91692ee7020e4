#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Report functions longer than LIMIT body lines (STYLE.md: a long function
says why).

Usage: func_length.py [ROOT] [--limit N]

Scans ROOT/src/**/*.c and ROOT/tools/**/*.c (ROOT: this file's repository).
A function's body is the lines between its column-0 '{' and '}' (kernel
style).  A body over the limit passes only when the comment right before the
definition contains 'long:' followed by the reason.  Prints each offender as
FILE:LINE: NAME: N lines and exits 1 when there is one.
"""
import os
import re
import sys

LIMIT = 60


def signature_start(lines, brace):
    """Index of the first line of the definition whose '{' is at brace."""
    i = brace - 1
    while i > 0:
        prev = lines[i - 1].rstrip()
        if not prev or prev.endswith(("*/", ";", "}")) or prev.startswith("#"):
            break
        i -= 1
    return i


def comment_before(lines, start):
    """The block comment ending on the line before start, or ''."""
    end = start - 1
    if end < 0 or not lines[end].rstrip().endswith("*/"):
        return ""
    i = end
    while i >= 0 and "/*" not in lines[i]:
        i -= 1
    return "\n".join(lines[max(i, 0) : end + 1])


def check_file(path, limit):
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    bad = []
    open_at = None
    for n, line in enumerate(lines):
        if line.startswith("{"):
            open_at = n
        elif line.startswith("}") and open_at is not None:
            body = n - open_at - 1
            start = signature_start(lines, open_at)
            sig = " ".join(lines[start:open_at])
            m = re.search(r"(\w+)\s*\(", sig)
            if m and body > limit and "long:" not in comment_before(lines, start):
                bad.append((start + 1, m.group(1), body))
            open_at = None
    return bad


def c_files(root):
    for top in ("src", "tools"):
        for d, _, names in sorted(os.walk(os.path.join(root, top))):
            yield from (os.path.join(d, n) for n in sorted(names) if n.endswith(".c"))


def main():
    args = sys.argv[1:]
    limit = LIMIT
    if "--limit" in args:
        i = args.index("--limit")
        limit = int(args[i + 1])
        del args[i : i + 2]
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    long_ones = [(os.path.relpath(path, root), hit) for path in c_files(root)
                 for hit in check_file(path, limit)]
    for rel, (line, func, body) in long_ones:
        print(f"{rel}:{line}: {func}: {body} lines (over {limit}; "
              "split it, or say why in a comment with 'long:' before it)")
    print(f"{len(long_ones)} functions over {limit} lines without a 'long:' comment" if long_ones
          else f"func_length: every function in src/ and tools/ is at most {limit} lines or says why")
    return 1 if long_ones else 0


if __name__ == "__main__":
    sys.exit(main())
