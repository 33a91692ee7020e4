#!/usr/bin/env bash
# Live per-QP statistics: a running transport publishes them, ntbt dev show
# reads them from another process (--json, --watch), they move while data
# moves, they go when the transport closes, and a malformed or stale file is
# reported rather than trusted.
set -euo pipefail
NTBT=$1
name=t-st-$$
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2> /dev/null || true; rm -rf "$dir"; "$NTBT" dev rm "$name" 2> /dev/null || true' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
stats=/dev/shm/ntbt-$name.stats

"$NTBT" dev create "$name"
[ ! -e "$stats-0" ] || fail "statistics before any transport"
# send | recv, fed through a FIFO for as long as the checks take.
mkfifo "$dir/fifo"
"$NTBT" recv --dev "shm:$name" > /dev/null &
rcv=$!
"$NTBT" send --dev "shm:$name" < "$dir/fifo" &
snd=$!
exec 3> "$dir/fifo"
(while head -c 1M /dev/zero; do :; done) >&3 2> /dev/null &
feeder=$!
for _ in $(seq 100); do
        [ -e "$stats-0" ] && [ -e "$stats-1" ] && break
        sleep 0.05
done
[ -e "$stats-0" ] && [ -e "$stats-1" ] || fail "no statistics files"
flowing() {
        "$NTBT" dev show "$name" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if all(p["transport"] and p["transport"]["qps"][0]["tx_pkts"] + p["transport"]["qps"][0]["rx_pkts"] > 0 for p in d["ports"]) else 1)'
}
for _ in $(seq 100); do flowing && break; sleep 0.1; done
flowing || fail "no counters moved"
"$NTBT" dev show "$name" --json > "$dir/a.json"
sleep 0.5
"$NTBT" dev show "$name" --json > "$dir/b.json"
python3 - "$dir/a.json" "$dir/b.json" <<'PY' || fail "statistics json"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
names = ("rx_bytes rx_pkts rx_memcpy rx_async rx_ring_empty rx_err_no_buf rx_err_oflow "
         "rx_err_ver rx_index rx_max_entry tx_bytes tx_pkts tx_memcpy tx_async tx_ring_full "
         "tx_err_no_buf tx_index rri tx_max_entry free_tx link rx_err_flags tx_err_rri "
         "resets").split()
moved = {}
for pa, pb in zip(a["ports"], b["ports"]):
    ta, tb = pa["transport"], pb["transport"]
    assert ta and tb and ta["alive"] and tb["linked"], pb
    assert tb["pid"] == pb["pid"], pb
    q = tb["qps"][0]
    assert q["present"] and q["state"] == "up" and q["link"] == 1, q
    for n in names:
        assert n in q, n
    assert q["tx_max_entry"] > 0 and q["rx_max_entry"] > 0, q
    assert q["age_ns"] < 2e9, q
    moved[pb["port"]] = (ta["qps"][0]["tx_pkts"], q["tx_pkts"], ta["qps"][0]["rx_pkts"], q["rx_pkts"])
# One port sends and the other receives; both move between the two looks.
s = [p for p, m in moved.items() if m[1] > m[0]]
r = [p for p, m in moved.items() if m[3] > m[2]]
assert len(s) == 1 and len(r) == 1 and s != r, moved
PY
"$NTBT" dev show "$name" --watch 0.2 --count 3 > "$dir/w.txt"
[ "$(grep -c '^device ' "$dir/w.txt")" = 3 ] || fail "--watch --count 3"
grep -Eq 'qp 0: up, event mode, inline copy, updated [0-9]+ ms ago, rx [0-9.]+ GB/s' "$dir/w.txt" ||
        fail "watch text: $(head -40 "$dir/w.txt")"
grep -q "rx_err_oflow" "$dir/w.txt" || fail "counter names in the text"
kill $feeder
wait $feeder 2> /dev/null || true
exec 3>&-
wait $snd || fail "send"
wait $rcv || fail "recv"
[ ! -e "$stats-0" ] && [ ! -e "$stats-1" ] || fail "statistics left after close"
"$NTBT" dev show "$name" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert all(p["transport"] is None for p in d["ports"]), d' ||
        fail "transport not null after close"

# A stale file (its process gone) is shown as such.
"$NTBT" recv --dev "shm:$name" > /dev/null &
r=$!
for _ in $(seq 100); do [ -e "$stats-0" ] && break; sleep 0.05; done
kill -9 $r; wait $r 2> /dev/null || true
[ -e "$stats-0" ] || fail "no statistics from recv"
"$NTBT" dev show "$name" > "$dir/stale.txt"
grep -q "exited: stale" "$dir/stale.txt" || fail "stale: $(cat "$dir/stale.txt")"

# Malformed files: named, refused, no crash.
python3 - "$stats-0" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
d = bytearray(f.read())
d[24:28] = struct.pack("<I", 1000)  # qp_count
f.seek(0); f.write(d)
PY
rc=0; "$NTBT" dev show "$name" > /dev/null 2> "$dir/bad.err" || rc=$?
[ $rc -eq 0 ] || fail "dev show exited $rc on a bad statistics file"
grep -q "malformed statistics header" "$dir/bad.err" || fail "bad file: $(cat "$dir/bad.err")"
head -c 10 /dev/urandom > "$stats-0"
"$NTBT" dev show "$name" > /dev/null 2> "$dir/short.err"
grep -q "statistics file too short" "$dir/short.err" || fail "short file: $(cat "$dir/short.err")"
"$NTBT" dev rm "$name"
[ ! -e "$stats-0" ] || fail "dev rm left the statistics"
echo "dev stats: ok"
