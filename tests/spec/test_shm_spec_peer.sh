#!/usr/bin/env bash
# A program written only from docs/spec/shm-device.md opens a device made by
# `ntbt dev create`, and `ntbt dev show` reads one made by that program;
# a remote owner (heartbeat, no pid) is shown alive while it beats, gone
# when it stops, and its port is taken over.
set -euo pipefail
NTBT=$1
PEER=$(dirname "$0")/shm_spec_peer.py
command -v python3 >/dev/null || { echo "python3 not installed: skipping"; exit 77; }
name=t-spec-$$
dir=$(mktemp -d)
pids=()
trap 'kill -KILL "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"; "$NTBT" dev rm "$name" 2>/dev/null || true' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
wait_line() { for _ in $(seq 100); do grep -q "$1" "$2" && return 0; sleep 0.05; done; fail "no '$1' in $2"; }

# 1. ntbt creates; the spec peer validates the header and claims port 1.
"$NTBT" dev create "$name" --mw-count 3 --mw-size 64K --spad-count 12 --db-bits 8 --xlat-align 8K
python3 "$PEER" check "/dev/shm/ntbt-$name" 3 12 8 65536 8192
python3 "$PEER" claim "/dev/shm/ntbt-$name" 1 3 > "$dir/claim.log" &
peer=$!
wait_line claimed "$dir/claim.log"
"$NTBT" dev show "$name" --json > "$dir/show.json"
"$NTBT" dev show "$name"
python3 - "$dir/show.json" "$peer" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p1 = d["ports"][1]
assert d["mw_count"] == 3 and d["spad_count"] == 12 and d["db_valid_mask"] == 255, d
assert d["window_offset"] == 65536 and d["file_bytes"] == 1 << 19, d
assert p1["state"] == 1 and p1["alive"] and p1["pid"] == int(sys.argv[2]), p1
assert p1["owner_kind"] == "process" and p1["heartbeat_age_ms"] >= 0, p1
assert p1["link_enabled"] == 1 and p1["generation"] == 1, p1
assert p1["spad"][0] == 0x5eed0001, p1["spad"]
assert d["ports"][0]["state"] == 0
print("ntbt dev show reads the spec peer's port")
PY
# The spec peer's window write landed in port 0's inbound window 0, which
# starts at window_offset = mw_size = 64 KiB.
test "$(dd if="/dev/shm/ntbt-$name" bs=1 skip=$((0x10000)) count=9 status=none)" = spec-peer
wait "$peer"
"$NTBT" dev rm "$name"

# 2. The spec peer creates; ntbt dev show reads it.
python3 "$PEER" create "$dir/dev" 2 16 16 $((1 << 20)) 4096
"$NTBT" dev show "$dir/dev" --json > "$dir/show2.json"
python3 - "$dir/show2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["mw_count"] == 2 and d["mw_size"] == 1 << 20 and d["spad_count"] == 16, d
assert d["file_bytes"] == 8 << 20 and d["window_offset"] == 1 << 20 and not d["link_up"], d
print("ntbt reads the spec peer's device")
PY

# 3. A remote owner: alive by its heartbeat, gone when it stops beating, and
#    its port then taken over by ntbt (compare-and-swap of generation).
"$NTBT" dev create "$name"
python3 "$PEER" claim "/dev/shm/ntbt-$name" 1 60 --remote > "$dir/remote.log" &
peer=$!
pids=("$peer")
wait_line claimed "$dir/remote.log"
"$NTBT" dev show "$name" --json > "$dir/show3.json"
"$NTBT" dev show "$name" | grep -q "port 1: claimed, owner remote, pid 0" || fail "dev show text"
kill -STOP "$peer" # frozen: the heartbeat stands still
start=$(date +%s%N)
"$NTBT" dev show "$name" --json > "$dir/show4.json"
took=$((($(date +%s%N) - start) / 1000000))
python3 - "$dir/show3.json" "$dir/show4.json" "$took" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1]))["ports"][1], json.load(open(sys.argv[2]))["ports"][1]
assert a["owner_kind"] == "remote" and a["pid"] == 0 and a["alive"], a
assert 0 <= a["heartbeat_age_ms"] <= 200, a
assert b["state"] == 1 and not b["alive"] and b["heartbeat_age_ms"] == -1, b
assert int(sys.argv[3]) >= 1000, "a stale heartbeat is judged after remote_timeout_ms"
print("remote owner: alive while beating, gone when still")
PY
# ntbt takes the frozen remote owner's port over.
timeout 5 "$NTBT" recv --dev "shm:$name,port=1" > /dev/null 2> "$dir/recv.err" &
rp=$!
for _ in $(seq 100); do
        "$NTBT" dev show "$name" --json > "$dir/show5.json"
        grep -q '"owner_kind":"process"' <(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["ports"][1], separators=(",",":")))' "$dir/show5.json") && break
        sleep 0.1
done
python3 - "$dir/show5.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["ports"][1]
assert p["owner_kind"] == "process" and p["pid"] > 0 and p["generation"] == 2, p
print("ntbt took over the remote owner's port")
PY
kill "$rp" 2>/dev/null || true
wait "$rp" 2>/dev/null || true
kill -KILL "$peer"
"$NTBT" dev rm "$name"
echo "spec peer interoperability: ok"
