#!/usr/bin/env bash
# The manual matches the program: every option that a subcommand's --help
# names is in ntbt(1) and the other way round, every public function is in
# ntbt(3), and both pages are well-formed roff (man renders them without a
# warning when man is installed).
set -euo pipefail
NTBT=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
page1=$(sed 's/\\-/-/g' "$SRC/man/ntbt.1")
page3=$(sed 's/\\-/-/g' "$SRC/man/ntbt.3")

for cmd in dev send recv ping perf tun; do
        help=$("$NTBT" $cmd --help)
        # This subcommand's part of the page: from its .SS line to the next .SH.
        sect=$(awk -v c="ntbt $cmd" '/^\.SS /{on = index($0, c) > 0} /^\.SH /{on = 0} on' <<< "$page1")
        [ -n "$sect" ] || fail "ntbt(1) has no section for $cmd"
        for opt in $(grep -oE -- '--[a-z][a-z-]+' <<< "$help" | sort -u); do
                grep -q -- "$opt" <<< "$sect" || fail "ntbt $cmd --help names $opt; ntbt(1) does not"
        done
        for opt in $(grep -oE -- '--[a-z][a-z-]+' <<< "$sect" | sort -u); do
                grep -q -- "$opt" <<< "$help" || fail "ntbt(1) names $opt for $cmd; --help does not"
        done
done
for f in $(grep -ohE '\bntbt_[a-z0-9_]+\(' "$SRC"/include/ntbt/*.h | tr -d '(' | sort -u); do
        grep -q "$f" <<< "$page3" || fail "ntbt(3) does not describe $f"
done
if command -v man > /dev/null; then
        for p in ntbt.1 ntbt.3; do
                w=$(MANWIDTH=80 man --warnings -l "$SRC/man/$p" 2>&1 > /dev/null || true)
                [ -z "$w" ] || fail "man $p: $w"
        done
fi
echo "docs: ok"
