#!/usr/bin/env bash
# ntbt(3)'s EXAMPLES program, built and run against the installed library:
#   - the page's EXAMPLES program is man/examples/ntbt-example.c, escaped by
#     man/examples/to-roff (make man-example), and renders back to it;
#   - `cmake --install` into a temporary prefix installs the library,
#     headers, ntbt.pc (naming that prefix) and the example's source;
#   - the installed source compiles with nothing but the installed ntbt.pc's
#     flags (pkg-config, or the same flags read from the file without it),
#     links the installed libntbt.so.1, and sends its ten messages, every
#     time, leaving no device behind;
#   - `make uninstall` removes every file the install put and nothing else.
#
#   test_install_example.sh SOURCE_DIR BUILD_DIR CC [SANITIZE]
set -euo pipefail
SRC=$1
BUILD=$(cd "$2" && pwd)
CC=$3
SANITIZE=${4:-}
EXAMPLE=$SRC/man/examples/ntbt-example.c
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The man page holds the example, byte for byte after roff escaping.
sed -n '/^\.\\" BEGIN ntbt-example\.c$/,/^\.\\" END ntbt-example\.c$/p' "$SRC/man/ntbt.3" |
        sed '1d;$d' > "$tmp/page.roff"
[ -s "$tmp/page.roff" ] || fail "ntbt(3) has no BEGIN/END ntbt-example.c markers"
"$SRC/man/examples/to-roff" "$EXAMPLE" > "$tmp/want.roff"
cmp -s "$tmp/want.roff" "$tmp/page.roff" ||
        fail "ntbt(3)'s EXAMPLES differ from man/examples/ntbt-example.c: run make man-example
$(diff "$tmp/want.roff" "$tmp/page.roff" | head -20)"
# ... and what a reader copies from the rendered page is the program.
if command -v man > /dev/null; then
        LC_ALL=C.UTF-8 MANWIDTH=100 man -l "$SRC/man/ntbt.3" 2> /dev/null |
                sed -n '/^ *\/\* SPDX-License-Identifier: MIT \*\/$/,$p' |
                awk -v n="$(wc -l < "$EXAMPLE")" 'NR <= n' | sed -E 's/^ {7}//' > "$tmp/rendered.c"
        cmp -s "$EXAMPLE" "$tmp/rendered.c" ||
                fail "man ntbt.3 renders the example differently:
$(diff "$EXAMPLE" "$tmp/rendered.c" | head -20)"
else
        echo "man is not installed: the rendered page is not compared"
fi

# 2. Install into a temporary prefix, beside files that are not ntbt's.
prefix=$tmp/prefix
mkdir -p "$prefix/lib" "$prefix/include"
echo keep > "$prefix/lib/other.so"
echo keep > "$prefix/include/other.h"
cmake --install "$BUILD" --prefix "$prefix" > "$tmp/install.log" ||
        fail "cmake --install: $(cat "$tmp/install.log")"
pc=$(find "$prefix" -name ntbt.pc)
[ -n "$pc" ] || fail "no ntbt.pc installed"
libdir=$(dirname "$(dirname "$pc")")
for f in "$libdir/libntbt.so.1" "$libdir/libntbt.a" "$prefix/include/ntbt/ntbt.h" \
        "$prefix/share/man/man3/ntbt.3" "$prefix/share/doc/ntbt/examples/ntbt-example.c"; do
        [ -e "$f" ] || fail "not installed: ${f#"$prefix"/}"
done
grep -qx "prefix=$prefix" "$pc" || fail "ntbt.pc names another prefix: $(grep '^prefix=' "$pc")"

# 3. Build the installed example with the installed ntbt.pc only.
if command -v pkg-config > /dev/null; then
        flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs ntbt)
else
        pcvar() { sed -n "s/^$1=//p" "$pc" | sed "s|\${prefix}|$prefix|"; }
        flags=$(sed -n 's/^Cflags: //p; s/^Libs: //p' "$pc" |
                sed "s|\${includedir}|$(pcvar includedir)|; s|\${libdir}|$(pcvar libdir)|")
        echo "pkg-config is not installed: ntbt.pc read directly: $flags"
fi
san=()
[ -z "$SANITIZE" ] || san=(-fsanitize="$SANITIZE" -fno-omit-frame-pointer)
# shellcheck disable=SC2086 # $flags is a list of words, as pkg-config meant
"$CC" -std=c11 -Wall -Wextra -Werror -pedantic "${san[@]}" -o "$tmp/ntbt-example" \
        "$prefix/share/doc/ntbt/examples/ntbt-example.c" $flags ||
        fail "the installed example does not build with: $flags"
export LD_LIBRARY_PATH=$libdir
deps=$(ldd "$tmp/ntbt-example")
grep -qF "libntbt.so.1 => $libdir/libntbt.so.1 " <<< "$deps" ||
        fail "the example does not load the installed library: $(grep ntbt <<< "$deps")"

# 4. Ten messages, in order, then the sender's close; every run.
{
        for i in $(seq 10); do echo "received: message $i of 10"; done
        echo "10 messages, then the sender closed"
} > "$tmp/want.out"
for run in 1 2 3 4 5; do
        rc=0
        timeout 60 "$tmp/ntbt-example" > "$tmp/out" 2> "$tmp/err" || rc=$?
        [ $rc = 0 ] || fail "run $run: exit $rc: $(cat "$tmp/err")"
        cmp -s "$tmp/want.out" "$tmp/out" || fail "run $run printed:
$(cat "$tmp/out" "$tmp/err")"
done
leftover=$(find /dev/shm -maxdepth 1 -name 'ntbt-example-*' -print -quit 2> /dev/null)
[ -z "$leftover" ] || fail "devices left behind: $leftover"

# 5. make uninstall: every installed file gone, ntbt's folders too, others kept.
make -s -C "$SRC" uninstall BUILD="$BUILD" > "$tmp/uninstall.log" ||
        fail "make uninstall: $(cat "$tmp/uninstall.log")"
left=$(find "$prefix" \( -type f -o -type l \) ! -name 'other.*')
[ -z "$left" ] || fail "make uninstall left: $left"
for d in include/ntbt share/doc/ntbt; do
        [ ! -e "$prefix/$d" ] || fail "make uninstall left the folder $d"
done
if [ ! -f "$prefix/lib/other.so" ] || [ ! -f "$prefix/include/other.h" ]; then
        fail "make uninstall removed files that were not ntbt's"
fi
echo "install_example: ok"
