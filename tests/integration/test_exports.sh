#!/usr/bin/env bash
# The shared library exports exactly the public API, and the command needs
# nothing else:
#   - `nm -D --defined-only libntbt.so` lists the functions that
#     include/ntbt/*.h declare, no more (an internal symbol such as
#     ntbt_logf) and no fewer (a public function src/libntbt.map forgot);
#   - tools/ includes no private header of the library (src/);
#   - ntbt_dyn, the command linked against libntbt.so, defines none of the
#     library's functions itself, and runs: --version, and a ping over a
#     private loopback device.
#
#   test_exports.sh LIBNTBT_SO INCLUDE_DIR CC NM NTBT_DYN
set -euo pipefail
LIB=$1
INC=$2
CC=$3
NM=$4
DYN=$5
SRC=$(cd "$(dirname "$0")/../.." && pwd)
name=t-ex-$$
dir=$(mktemp -d)
trap 'rm -rf "$dir"; "$DYN" dev rm "$name" > /dev/null 2>&1 || true' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Declared: every ntbt_ name followed by '(' in the preprocessed headers
# (comments gone; a function pointer type is "(*ntbt_x)(", not "ntbt_x(").
for h in "$INC"/ntbt/*.h; do
        echo "#include <ntbt/$(basename "$h")>"
done > "$dir/all.c"
"$CC" -E -P -I "$INC" "$dir/all.c" > "$dir/all.i" || fail "the public headers do not preprocess"
grep -oE '\bntbt_[A-Za-z0-9_]+[[:space:]]*\(' "$dir/all.i" | tr -d '( \t' | sort -u > "$dir/declared"
[ "$(wc -l < "$dir/declared")" -ge 50 ] || fail "only $(wc -l < "$dir/declared") public functions found: is the probe broken?"

# Exported: every defined dynamic symbol but the version node (type A).
"$NM" -D --defined-only "$LIB" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u > "$dir/exported"

extra=$(comm -13 "$dir/declared" "$dir/exported")
missing=$(comm -23 "$dir/declared" "$dir/exported")
[ -z "$extra" ] || fail "libntbt.so exports what no public header declares (hide it, or declare it): $extra"
[ -z "$missing" ] || fail "libntbt.so does not export these public functions (src/libntbt.map): $missing"
echo "exports: $(wc -l < "$dir/exported") functions, exactly the public headers' ones"

# The tools include their own headers ("...", inside tools/) and the public
# ones (<ntbt/...>), nothing from src/.
private=
while IFS= read -r f; do
        for inc in $(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/p' "$f"); do
                case $(realpath -m "$(dirname "$f")/$inc") in
                "$SRC"/tools/*) ;;
                *) private="$private ${f#"$SRC"/}: $inc" ;;
                esac
        done
done < <(find "$SRC/tools" -name '*.[ch]')
[ -z "$private" ] || fail "the tools include private headers:$private"

# ntbt_dyn takes the library from libntbt.so.
own=$("$NM" --defined-only "$DYN" | awk '$3 ~ /^ntbt_/ { print $3 }')
[ -z "$own" ] || fail "ntbt_dyn defines library functions itself: $own"
"$NM" -D --undefined-only "$DYN" > "$dir/undefined"
grep -q ' ntbt_dev_open@' "$dir/undefined" || fail "ntbt_dyn does not take ntbt_dev_open from libntbt.so"
"$DYN" --version | grep -Eq '^ntbt [0-9]' || fail "ntbt_dyn --version: $("$DYN" --version 2>&1)"
timeout 60 "$DYN" ping --loopback --dev "shm:$name" --count 100 --warmup 10 > "$dir/ping" 2>&1 ||
        fail "ntbt_dyn ping --loopback: $(cat "$dir/ping")"
grep -q "round trip" "$dir/ping" || fail "ntbt_dyn ping: $(cat "$dir/ping")"
echo "ntbt_dyn (against libntbt.so): ok"
