#!/usr/bin/env bash
# The ordering hazard of the tx_memcpy_offload patch, reproduced on the pcie
# model, in both copy modes: with the flush before the doorbell turned off a
# ping-pong stalls; with it on, 10^5 round trips and a checksummed 1 GiB
# stream complete.
set -euo pipefail
NTBT=$1
dir=$(mktemp -d)
name=t-hz-$$
trap 'rm -rf "$dir"; "$NTBT" dev rm "$name" 2>/dev/null || true' EXIT
fail() {
        echo "FAIL: $*" >&2
        for f in "$dir"/*.err; do [ -s "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }; done
        exit 1
}

for tx in inline thread; do
        rc=0
        "$NTBT" ping --loopback --dev "pcie:$name,seed=1" --tx $tx --unsafe-no-flush --count 1000 \
                > "$dir/unsafe.out" 2> "$dir/unsafe.err" || rc=$?
        cat "$dir/unsafe.out"
        [ $rc -eq 1 ] || fail "$tx: ping without the flush exited $rc"
        grep -q "stalled" "$dir/unsafe.out" || fail "$tx: ping without the flush did not stall"
        grep -q "UNSAFE" "$dir/unsafe.err" || fail "$tx: the unsafe flag was not labelled"
        # The stalled run killed its server: the private device and both
        # ports' statistics files must still be gone.
        left=$(ls /dev/shm | grep "^ntbt-$name-loop-" || true)
        [ -z "$left" ] || fail "$tx: the stalled loopback left $left"

        "$NTBT" ping --loopback --dev "pcie:$name,seed=1" --tx $tx --count 100000 --json \
                > "$dir/safe.json" || fail "$tx: ping with the flush exited $?"
        cat "$dir/safe.json"
        grep -q '"count":100000,' "$dir/safe.json" && grep -q '"stalled":false' "$dir/safe.json" ||
                fail "$tx: not 10^5 round trips"

        # 1 GiB over the model, checksummed at both ends, no file on disk.
        "$NTBT" recv --dev "pcie:$name,seed=1" | sha256sum > "$dir/b.sum" &
        r=$!
        rm -f "$dir/a.sum"
        head -c 1G /dev/urandom | tee >(sha256sum > "$dir/a.sum") |
                "$NTBT" send --dev "pcie:$name,seed=1" --tx $tx
        wait $r || fail "$tx: recv exited $?"
        for _ in $(seq 100); do [ -s "$dir/a.sum" ] && break; sleep 0.1; done
        cat "$dir/a.sum" "$dir/b.sum"
        cmp "$dir/a.sum" "$dir/b.sum" || fail "$tx: 1 GiB over pcie: checksums differ"
        echo "pcie hazard, $tx copy: ok"
done
