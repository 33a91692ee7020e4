#!/usr/bin/env bash
# ntbt perf and ntbt ping (first forms) run end to end: loopback and two
# shells, both copy modes, shm and pcie; JSON fields present and sane.
set -euo pipefail
NTBT=$1
name=t-pp-$$
dir=$(mktemp -d)
trap 'rm -rf "$dir"; "$NTBT" dev rm "$name" 2>/dev/null || true' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }

for dev in "shm:$name" "pcie:$name,bw=2G"; do
        for tx in inline thread; do
                "$NTBT" perf --loopback --dev "$dev" --time 0.3 --tx $tx --json > "$dir/p.json" ||
                        fail "perf $dev $tx exited $?"
                cat "$dir/p.json"
                [ "$(field tx_mode < "$dir/p.json")" = $tx ] || fail "tx_mode"
                [ "$(field errors < "$dir/p.json")" = 0 ] || fail "errors"
                [ "$(field size < "$dir/p.json")" = 65524 ] || fail "size"
                python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["msgs"] > 0 and d["bytes"] == d["msgs"] * d["size"] and d["bytes_per_sec"] > 0, d' < "$dir/p.json" || fail "counts"
        done
done

# --verify over a sweep of sizes (the 12-byte header's edges, the max
# payload), both copy modes, shm and pcie; a damaged message must fail it.
for dev in "shm:$name" "pcie:$name,bw=4G"; do
        for tx in inline thread; do
                "$NTBT" perf --loopback --dev "$dev" --verify --tx $tx --time 0.1 \
                        --size 1,11,12,13,64,4096,65523,65524 --json > "$dir/v.json" ||
                        fail "perf --verify $dev $tx exited $?"
                [ "$(wc -l < "$dir/v.json")" = 8 ] || fail "not one line per size"
        done
done
"$NTBT" perf --loopback --dev "shm:$name" --verify --size 512:2048 --time 0.1 --json > "$dir/r.json" ||
        fail "perf --verify range"
python3 -c 'import json,sys; s=[json.loads(l)["size"] for l in open(sys.argv[1])]; assert s == [512, 1024, 2048], s' "$dir/r.json" ||
        fail "range sizes"
rc=0
"$NTBT" perf --loopback --dev "shm:$name" --verify --size 4096 --time 0.2 --debug-corrupt 50 \
        > /dev/null 2> "$dir/corrupt.err" || rc=$?
[ $rc -eq 1 ] || fail "a damaged message passed --verify (rc $rc)"
grep -q "VERIFY FAILED" "$dir/corrupt.err" || fail "no verify failure reported"
rc=0; "$NTBT" perf --client --dev "shm:$name" --size 64,128 2> /dev/null || rc=$?
[ $rc -eq 2 ] || fail "a size list without --loopback: rc $rc"

# Two shells: server and client as separate commands.
"$NTBT" perf --server --dev "shm:$name" &
s=$!
"$NTBT" perf --client --dev "shm:$name" --size 1000 --time 0.3 --work 100 > "$dir/c.txt" ||
        fail "perf client exited $?"
wait $s || fail "perf server exited $?"
grep -q "1000-byte messages, inline copy, work 100 ns/KiB" "$dir/c.txt" || fail "perf text: $(cat "$dir/c.txt")"

"$NTBT" ping --server --dev "shm:$name" &
s=$!
"$NTBT" ping --client --dev "shm:$name" --count 2000 --size 8 > "$dir/ping.txt" || fail "ping client"
wait $s || fail "ping server exited $?"
grep -q "8-byte messages, 2000 round trips" "$dir/ping.txt" || fail "ping text: $(cat "$dir/ping.txt")"
"$NTBT" ping --loopback --dev "shm:$name" --count 1000 --size 1 --json | tee "$dir/pj.json"
python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["count"] == 1000 and 0 < d["rtt_ns_min"] <= d["rtt_ns_p50"] <= d["rtt_ns_p99"] <= d["rtt_ns_max"], d' < "$dir/pj.json" || fail "ping json"

# Usage errors.
rc=0; "$NTBT" perf --dev "shm:$name" 2> /dev/null || rc=$?
[ $rc -eq 2 ] || fail "perf without a role: rc $rc"
rc=0; "$NTBT" ping --loopback --dev "shm:$name" --tx dma 2> /dev/null || rc=$?
[ $rc -eq 2 ] || fail "bad --tx: rc $rc"
"$NTBT" perf --help | grep -q "usage: ntbt perf" || fail "perf --help"
"$NTBT" ping --help | grep -q "usage: ntbt ping" || fail "ping --help"
echo "perf/ping: ok"
