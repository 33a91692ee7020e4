#!/usr/bin/env bash
# What the command says of itself is true:
#   - ntbt --version and -V print "ntbt VERSION", CMake's project version;
#   - every short option that a command accepts (found by trying each letter)
#     is in that command's --help and in its part of ntbt(1);
#   - dev create, show and rm take shm:NAME as well as NAME.
set -euo pipefail
NTBT=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
name=t-cs-$$
trap '"$NTBT" dev rm "$name" > /dev/null 2>&1 || true' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

want=$(sed -nE 's/^project\(ntbt VERSION ([0-9.]+).*/\1/p' "$SRC/CMakeLists.txt")
[ -n "$want" ] || fail "no project version in CMakeLists.txt"
[ "$("$NTBT" --version)" = "ntbt $want" ] || fail "--version: $("$NTBT" --version)"
[ "$("$NTBT" -V)" = "ntbt $want" ] || fail "-V: $("$NTBT" -V)"

page=$(sed 's/\\-/-/g' "$SRC/man/ntbt.1")
# The man page's part for "ntbt CMD" (its .SS sections), or, for the command
# itself, the page up to the first command.
man_part() {
        if [ -z "$1" ]; then
                awk '/^\.SH COMMANDS/{exit} 1' <<< "$page"
        else
                awk -v c="ntbt $1" '/^\.SS /{on = index($0, c) > 0} /^\.SH /{on = 0} on' <<< "$page"
        fi
}
# -X as an option word: not part of --x-y or of a longer word.
has_short() { grep -Eq -- "(^|[^-[:alnum:]])-$1([^[:alnum:]-]|$)" <<< "$2"; }

checked=0
for cmd in "" dev "dev create" "dev show" "dev rm" "dev list" send recv ping perf tun; do
        # shellcheck disable=SC2086
        help=$("$NTBT" $cmd --help)
        part=$(man_part "${cmd%% *}")
        for l in {a..z} {A..Z}; do
                # Without --dev or a NAME nothing runs: an unknown letter is
                # refused by name, a known one fails later (or prints help).
                # shellcheck disable=SC2086
                err=$(timeout 10 "$NTBT" $cmd -$l < /dev/null 2>&1 > /dev/null || true)
                if grep -Eq "invalid option|unknown (sub)?command|unexpected argument" <<< "$err"; then
                        continue
                fi
                checked=$((checked + 1))
                has_short "$l" "$help" || fail "ntbt $cmd accepts -$l; its --help does not say so"
                has_short "$l" "$part" || fail "ntbt $cmd accepts -$l; ntbt(1) does not say so"
        done
done
[ $checked -ge 20 ] || fail "only $checked short options found: is the probe broken?"
echo "short options: $checked, each in --help and ntbt(1)"

# shm:NAME for dev create, show and rm.
"$NTBT" dev create "shm:$name" --mw-count 1
[ -e "/dev/shm/ntbt-$name" ] || fail "dev create shm:$name did not create /dev/shm/ntbt-$name"
"$NTBT" dev show "shm:$name" | grep -q "windows      1 x" || fail "dev show shm:$name"
"$NTBT" dev rm "shm:$name" || fail "dev rm shm:$name"
[ ! -e "/dev/shm/ntbt-$name" ] || fail "dev rm shm:$name left the device"
echo "cli surface: ok"
