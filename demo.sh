#!/usr/bin/env bash
# make demo: the main job, in under a minute on 2 cores, needing only the
# build.  Two processes become the two hosts of an emulated NTB:
#   1. ntbt recv and ntbt send move 64 MiB of random data over a queue pair,
#      and the two checksums must agree;
#   2. ntbt perf --verify sweeps message sizes over a private shm device with
#      both copy modes (inline, and the per-QP copy thread);
#   3. the same over a copy-bound pcie link where the sender also produces its
#      data: there the copy thread should win;
#   4. a table of all of it.
set -euo pipefail
NTBT=${1:-build/ntbt}
NAME=demo-$$
dir=$(mktemp -d)
trap 'rm -rf "$dir"; "$NTBT" dev rm "$NAME" 2>/dev/null || true' EXIT

echo "== 1. send and receive 64 MiB between two processes"
echo "+ ntbt dev create $NAME"
"$NTBT" dev create "$NAME"
head -c 64M /dev/urandom > "$dir/in"
echo "+ ntbt recv --dev shm:$NAME > out &    # host B"
"$NTBT" recv --dev "shm:$NAME" > "$dir/out" &
recv=$!
echo "+ ntbt send --dev shm:$NAME < in       # host A"
"$NTBT" send --dev "shm:$NAME" < "$dir/in"
wait $recv
a=$(sha256sum < "$dir/in" | cut -c1-16)
b=$(sha256sum < "$dir/out" | cut -c1-16)
echo "sent     sha256 $a"
echo "received sha256 $b"
[ "$a" = "$b" ] || { echo "demo: checksums differ" >&2; exit 1; }
"$NTBT" dev rm "$NAME"

echo
echo "== 2. ntbt perf over shm: a size sweep, both copy modes, every message verified"
for tx in inline thread; do
        echo "+ ntbt perf --loopback --dev shm:$NAME --tx $tx --size 64,1024,16384,max --time 0.4 --verify"
        "$NTBT" perf --loopback --dev "shm:$NAME" --tx $tx --size 64,1024,16384,max --time 0.4 \
                --verify --json | tee -a "$dir/shm.json"
done

echo
echo "== 3. ntbt perf over a copy-bound pcie link (1 GB/s), the sender working 1 us per KiB"
for tx in inline thread; do
        echo "+ ntbt perf --loopback --dev pcie:$NAME,bw=1G --tx $tx --size max --time 1.5 --work 1000"
        "$NTBT" perf --loopback --dev "pcie:$NAME,bw=1G" --tx $tx --size max --time 1.5 \
                --work 1000 --json | tee -a "$dir/pcie.json"
done

# JSON field $2 of line $1, without needing a JSON tool.
field() { sed -E "s/.*\"$2\":\"?([^,\"}]*).*/\1/" <<< "$1"; }

echo
echo "== 4. results"
printf '| %-28s | %-6s | %8s | %9s | %8s | %8s | %6s |\n' device copy size "GB/s" "M msg/s" "enq ns" errors
printf '| %-28s | %-6s | %8s | %9s | %8s | %8s | %6s |\n' --- --- --- --- --- --- ---
bad=0
for f in shm pcie; do
        while read -r l; do
                dev="shm (emulated NTB)"
                [ $f = pcie ] && dev="pcie model, 1 GB/s, work"
                printf '| %-28s | %-6s | %8s | %9.3f | %8.3f | %8.0f | %6s |\n' "$dev" \
                        "$(field "$l" tx_mode)" "$(field "$l" size)" \
                        "$(awk -v b="$(field "$l" bytes_per_sec)" 'BEGIN { print b / 1e9 }')" \
                        "$(awk -v m="$(field "$l" msgs_per_sec)" 'BEGIN { print m / 1e6 }')" \
                        "$(field "$l" enqueue_ns_avg)" "$(field "$l" errors)"
                [ "$(field "$l" errors)" = 0 ] || bad=1
                [ "$(field "$l" failed)" = false ] || bad=1
        done < "$dir/$f.json"
done
inl=$(field "$(sed -n 1p "$dir/pcie.json")" bytes_per_sec)
thr=$(field "$(sed -n 2p "$dir/pcie.json")" bytes_per_sec)
awk -v i="$inl" -v t="$thr" 'BEGIN { printf "\ncopy-bound pcie link: the copy thread moves %.2fx what the inline copy does\n", t / i }'
[ $bad = 0 ] || { echo "demo: a run had errors" >&2; exit 1; }
echo "demo: ok"
