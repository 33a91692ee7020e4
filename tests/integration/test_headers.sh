#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Each public header compiles on its own, first in a file, as C11 and as
# C++ (extern "C"), with every warning an error: a header that leans on
# another include (size_t without <stddef.h>) fails here.
#   test_headers.sh INCLUDE_DIR CC
set -euo pipefail
inc=$1 cc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
cxx=$(command -v g++ || command -v clang++ || true)
for h in "$inc"/ntbt/*.h; do
        name=ntbt/$(basename "$h")
        printf '#include <%s>\n#include <%s>\n' "$name" "$name" > "$tmp/t.c"
        if ! "$cc" -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I "$inc" "$tmp/t.c" 2> "$tmp/err"; then
                echo "FAIL: $name does not compile alone (C11):"
                cat "$tmp/err"
                fail=1
        fi
        if [ -n "$cxx" ]; then
                cp "$tmp/t.c" "$tmp/t.cc"
                if ! "$cxx" -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I "$inc" "$tmp/t.cc" 2> "$tmp/err"; then
                        echo "FAIL: $name does not compile alone (C++17):"
                        cat "$tmp/err"
                        fail=1
                fi
        fi
        n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "FAIL: no headers in $inc/ntbt"; exit 1; }
[ "$fail" = 0 ] && echo "headers: $n public headers each compile alone${cxx:+ (C11 and C++17)}"
exit "$fail"
