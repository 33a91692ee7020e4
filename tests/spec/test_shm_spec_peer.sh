#!/usr/bin/env bash
# A program written only from spec/shm-device.md opens a device made by
# `ntbt dev create`, and `ntbt dev show` reads one made by that program.
set -euo pipefail
NTBT=$1
PEER=$(dirname "$0")/shm_spec_peer.py
command -v python3 >/dev/null || { echo "python3 not installed: skipping"; exit 77; }
name=t-spec-$$
dir=$(mktemp -d)
trap 'rm -rf "$dir"; "$NTBT" dev rm "$name" 2>/dev/null || true' EXIT

# 1. ntbt creates; the spec peer validates the header and claims port 1.
"$NTBT" dev create "$name" --mw-count 3 --mw-size 64K --spad-count 12 --db-bits 8 --xlat-align 8K
python3 "$PEER" check "/dev/shm/ntbt-$name" 3 12 8 65536 8192
python3 "$PEER" claim "/dev/shm/ntbt-$name" 1 3 > "$dir/claim.log" &
peer=$!
for _ in $(seq 100); do grep -q claimed "$dir/claim.log" && break; sleep 0.05; done
"$NTBT" dev show "$name" --json > "$dir/show.json"
"$NTBT" dev show "$name"
python3 - "$dir/show.json" "$peer" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p1 = d["ports"][1]
assert d["mw_count"] == 3 and d["spad_count"] == 12 and d["db_valid_mask"] == 255, d
assert p1["state"] == 1 and p1["alive"] and p1["pid"] == int(sys.argv[2]), p1
assert p1["link_enabled"] == 1 and p1["generation"] == 1, p1
assert p1["spad"][0] == 0x5eed0001, p1["spad"]
assert d["ports"][0]["state"] == 0
print("ntbt dev show reads the spec peer's port")
PY
# The spec peer's window write landed in port 0's inbound window 0 (offset 0x3000).
test "$(dd if="/dev/shm/ntbt-$name" bs=1 skip=$((0x3000)) count=9 status=none)" = spec-peer
wait "$peer"
"$NTBT" dev rm "$name"

# 2. The spec peer creates; ntbt dev show reads it.
python3 "$PEER" create "$dir/dev" 2 16 16 $((1 << 20)) 4096
"$NTBT" dev show "$dir/dev" --json > "$dir/show2.json"
python3 - "$dir/show2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["mw_count"] == 2 and d["mw_size"] == 1 << 20 and d["spad_count"] == 16, d
assert d["file_bytes"] == 0x3000 + 2 * 2 * (1 << 20) and not d["link_up"], d
print("ntbt reads the spec peer's device")
PY
echo "spec peer interoperability: ok"
