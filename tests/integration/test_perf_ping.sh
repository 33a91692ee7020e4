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
                "$NTBT" perf --loopback --dev "$dev" --time 0.3 --tx $tx --size max --json-lines > "$dir/p.json" ||
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
                        --size 1,11,12,13,64,4096,65523,65524 --json-lines > "$dir/v.json" ||
                        fail "perf --verify $dev $tx exited $?"
                [ "$(wc -l < "$dir/v.json")" = 8 ] || fail "not one line per size"
        done
done
"$NTBT" perf --loopback --dev "shm:$name" --verify --size 512:2048 --time 0.1 --json-lines > "$dir/r.json" ||
        fail "perf --verify range"
python3 -c 'import json,sys; s=[json.loads(l)["size"] for l in open(sys.argv[1])]; assert s == [512, 1024, 2048], s' "$dir/r.json" ||
        fail "range sizes"
rc=0
"$NTBT" perf --loopback --dev "shm:$name" --verify --size 4096 --time 0.2 --debug-corrupt 50 \
        > /dev/null 2> "$dir/corrupt.err" || rc=$?
[ $rc -eq 1 ] || fail "a damaged message passed --verify (rc $rc)"
grep -q "VERIFY FAILED" "$dir/corrupt.err" || fail "no verify failure reported"

# Two shells: the server serves the client's whole sweep and exits after it.
"$NTBT" perf --server --dev "shm:$name" > "$dir/s.txt" &
s=$!
"$NTBT" perf --client --dev "shm:$name" --size 1000,max --time 0.3 --work 100 --verify > "$dir/c.txt" ||
        fail "perf client exited $?"
wait $s || fail "perf server exited $?"
cat "$dir/c.txt" "$dir/s.txt"
grep -Eq '^ +1000 +[0-9]+ ' "$dir/c.txt" || fail "perf table: $(cat "$dir/c.txt")"
grep -Eq '^ +65524 +[0-9]+ ' "$dir/c.txt" || fail "perf table: $(cat "$dir/c.txt")"
[ "$(grep -c 'verified' "$dir/s.txt")" = 2 ] || fail "server did not verify both runs"

# --qps 2 --bidir --verify: both directions move data, checked, in both copy modes.
for tx in inline thread; do
        "$NTBT" perf --loopback --dev "shm:$name" --qps 2 --bidir --verify --tx $tx --time 0.3 \
                --size 100,max --json-lines > "$dir/b.json" || fail "perf --bidir $tx exited $?"
        cat "$dir/b.json"
        python3 -c '
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    assert d["qps"] == 2 and d["bidir"] and not d["failed"], d
    assert d["msgs"] > 0 and d["rx_msgs"] > 0 and d["rx_bytes_per_sec"] > 0, d
    assert d["errors"] == 0 and d["verify_errors"] == 0, d
    assert d["cpu_client_pct"] > 0 and d["cpu_server_pct"] > 0, d
    assert d["enqueue_ns_avg"] > 0, d
' "$dir/b.json" || fail "bidir json"
done

# The default sweep (powers of two from 64, then the max) with interval lines.
"$NTBT" perf --loopback --dev "shm:$name" --time 0.2 --interval 0.1 --mtu 4096 > "$dir/sw.txt" ||
        fail "default sweep"
cat "$dir/sw.txt"
python3 -c '
import re, sys
rows = [int(l.split()[0]) for l in open(sys.argv[1]) if re.match(r"^ +[0-9]+ +[0-9]+ ", l)]
assert rows == [64, 128, 256, 512, 1024, 2048, 4084], rows
' "$dir/sw.txt" || fail "sweep sizes"
grep -Eq '^\[ +0\.0- +0\.[0-9] s\]' "$dir/sw.txt" || fail "no interval lines"

# Different --qps on the two sides: the client names the mismatch and fails fast.
"$NTBT" perf --server --dev "shm:$name" --qps 2 2> /dev/null &
s=$!
rc=0; timeout 20 "$NTBT" perf --client --dev "shm:$name" --size 64 --qps 3 2> "$dir/mm.err" > /dev/null || rc=$?
kill $s 2> /dev/null; wait $s 2> /dev/null || true
[ $rc -eq 1 ] || fail "a --qps mismatch: rc $rc"
grep -q "does not match: peer has 2 queue pairs, we have 3" "$dir/mm.err" || fail "mismatch: $(cat "$dir/mm.err")"

"$NTBT" ping --server --dev "shm:$name" &
s=$!
"$NTBT" ping --client --dev "shm:$name" --count 2000 --size 8 > "$dir/ping.txt" || fail "ping client"
wait $s || fail "ping server exited $?"
grep -q "8-byte messages, 2000 round trips after 1000 warm-up" "$dir/ping.txt" || fail "ping text: $(cat "$dir/ping.txt")"
grep -q "one-way, rtt/2" "$dir/ping.txt" || fail "ping: no one-way line"
for poll in "" --busy-poll; do
        "$NTBT" ping --loopback --dev "shm:$name" --count 1000 --warmup 50 --size 1 $poll --json | tee "$dir/pj.json"
        python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["count"] == 1000 and d["warmup"] == 50 and d["busy_poll"] == (sys.argv[1] != ""), d
p = [d["rtt_ns_" + k] for k in ("min", "p50", "p90", "p99", "p999", "max")]
assert 0 < p[0] and p == sorted(p), d
assert p[0] <= d["rtt_ns_mean"] <= p[-1] and d["rtt_ns_stdev"] >= 0, d
assert d["one_way_ns_p50"] * 2 == d["rtt_ns_p50"], d
assert sum(c for _, c in d["hist"]) == 1000, d
b = [u for u, _ in d["hist"]]
assert b == sorted(b) and b[-1] >= p[-1], d
' "$poll" < "$dir/pj.json" || fail "ping json $poll"
done

# Usage errors.
rc=0; "$NTBT" perf --dev "shm:$name" 2> /dev/null || rc=$?
[ $rc -eq 2 ] || fail "perf without a role: rc $rc"
rc=0; "$NTBT" ping --loopback --dev "shm:$name" --tx dma 2> /dev/null || rc=$?
[ $rc -eq 2 ] || fail "bad --tx: rc $rc"
# Every size is checked before the first run: 64K is one past the largest.
rc=0; "$NTBT" perf --loopback --dev "shm:$name" --size 64,64K > "$dir/big.out" 2> "$dir/big.err" || rc=$?
[ $rc -eq 2 ] || fail "perf --size 64,64K: rc $rc"
grep -q "largest payload, 65524" "$dir/big.err" || fail "perf --size 64K: $(cat "$dir/big.err")"
! grep -q "^ *64 " "$dir/big.out" || fail "perf --size 64,64K ran 64 B before refusing 64K"
# Into a file: grep -q quits at the first line, and a help text over one
# stdio buffer (4 KiB) would then die of SIGPIPE under pipefail.
"$NTBT" perf --help > "$dir/help" || fail "perf --help: rc $?"
grep -q "usage: ntbt perf" "$dir/help" || fail "perf --help"
"$NTBT" ping --help | grep -q "usage: ntbt ping" || fail "ping --help"
echo "perf/ping: ok"
