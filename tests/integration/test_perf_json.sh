#!/usr/bin/env bash
# ntbt perf --json is one JSON document (iperf3's -J): the run's parameters,
# an array of per-size results, and under --qps > 1 each queue pair's share,
# which adds up to the whole; --json-lines is one object per size, per line.
# Interval lines never enter the JSON (they go to stderr).  --json and
# --json-lines together are a usage error.  --zc moves verified data at
# three sizes and says so; with --bidir it is a usage error.
set -euo pipefail
NTBT=$1
name=t-pj-$$
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
version=$("$NTBT" --version | cut -d' ' -f2)

"$NTBT" perf --loopback --dev "shm:$name" --qps 2 --bidir --verify --size 64,max --time 1 \
        --json --interval 0.1 > "$dir/doc.json" 2> "$dir/doc.err" || fail "perf --json exited $?: $(cat "$dir/doc.err")"
cat "$dir/doc.json"
python3 - "$dir/doc.json" "$version" "shm:$name" <<'PY' || fail "the --json document"
import json, sys
doc = json.load(open(sys.argv[1]))  # one document, nothing else on stdout
assert doc["version"] == sys.argv[2] and doc["command"] == "perf", doc
assert doc["dev"] == sys.argv[3] and doc["role"] == "loopback", doc
assert doc["qps"] == 2 and doc["bidir"] is True and doc["verify"] is True, doc
assert doc["tx_mode"] == "inline" and doc["mtu"] == 65536 and doc["work_ns_per_kib"] == 0, doc
assert doc["sizes"] == [64, "max"] and abs(doc["seconds_per_size"] - 1) < 1e-9, doc
assert doc["failed"] is False, doc
res = doc["results"]
assert [r["size"] for r in res] == [64, 65524], res
for r in res:
    assert not r["failed"] and r["errors"] == 0 and r["msgs"] > 0 and r["rx_msgs"] > 0, r
    q = r["per_qp"]
    assert [x["qp"] for x in q] == [0, 1], q
    for k in ("msgs", "rx_msgs", "tx_errors", "verify_errors", "resets"):
        assert sum(x[k] for x in q) == r[k], (k, r)
    assert sum(x["bytes"] for x in q) == r["bytes"], r
    assert all(x["msgs"] > 0 and x["rx_bytes"] > 0 and x["bytes_per_sec"] > 0 for x in q), q
PY
grep -Eq '^\[ +0\.0- +0\.[0-9] s\]' "$dir/doc.err" || fail "no interval lines on stderr: $(cat "$dir/doc.err")"

# One queue pair: no breakdown.
"$NTBT" perf --loopback --dev "shm:$name" --size 128 --time 0.1 -j > "$dir/one.json" ||
        fail "perf -j exited $?"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["qps"] == 1 and len(d["results"]) == 1 and "per_qp" not in d["results"][0], d
' "$dir/one.json" || fail "the --qps 1 document: $(cat "$dir/one.json")"

# --rx-threads: given in the parameters, resolved in each result (capped at
# the queue pairs); the default, 0, resolves to at least 1.
"$NTBT" perf --loopback --dev "shm:$name" --qps 2 --rx-threads 3 --size 64 --time 0.1 --verify -j \
        > "$dir/rxt.json" || fail "perf --rx-threads exited $?"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["rx_threads"] == 3 and d["results"][0]["rx_threads"] == 2, d
assert not d["failed"] and d["results"][0]["msgs"] > 0, d
e = json.load(open(sys.argv[2]))
assert e["rx_threads"] == 0 and e["results"][0]["rx_threads"] >= 1, e
' "$dir/rxt.json" "$dir/one.json" || fail "--rx-threads: $(cat "$dir/rxt.json")"

# --json-lines: one object per size, as before.
"$NTBT" perf --loopback --dev "shm:$name" --qps 2 --size 64,256,1024 --time 0.1 --json-lines > "$dir/lines" ||
        fail "perf --json-lines exited $?"
[ "$(wc -l < "$dir/lines")" = 3 ] || fail "--json-lines: not one line per size: $(cat "$dir/lines")"
python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["size"] for r in rows] == [64, 256, 1024], rows
assert all(r["qps"] == 2 and not r["failed"] and "per_qp" not in r for r in rows), rows
' "$dir/lines" || fail "--json-lines: $(cat "$dir/lines")"

# --zc: reserve/commit into the window, received in place, verified at
# three sizes; the JSON says zc.  A message damaged after its CRC fails.
"$NTBT" perf --loopback --dev "shm:$name" --zc --verify --size 64,1024,65524 --time 0.3 \
        --json-lines > "$dir/zc" || fail "perf --zc --verify exited $?"
python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["size"] for r in rows] == [64, 1024, 65524], rows
assert all(r["zc"] is True and not r["failed"] and r["msgs"] > 100 for r in rows), rows
assert all(r["verify_errors"] == 0 and r["errors"] == 0 for r in rows), rows
' "$dir/zc" || fail "--zc: $(cat "$dir/zc")"
python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["zc"] is False' "$dir/one.json" ||
        fail "a run without --zc says zc"
rc=0
"$NTBT" perf --loopback --dev "shm:$name" --zc --verify --debug-corrupt 50 --size 1024 --time 0.2 \
        > /dev/null 2>&1 || rc=$?
[ $rc = 1 ] || fail "--zc --verify: a damaged message went unnoticed (exit $rc)"
rc=0
"$NTBT" perf --loopback --dev "shm:$name" --zc --bidir > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "--zc --bidir: exit $rc"

rc=0
"$NTBT" perf --loopback --dev "shm:$name" --json --json-lines > /dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "--json --json-lines: exit $rc"
echo "perf json: ok"
