#!/usr/bin/env bash
# The offload benchmark (issue 4): ntbt perf over a copy-bound pcie link,
# inline copy against the per-QP copy thread, with client work per message
# comparable to the copy time.  Runs alternate between the modes; the
# figures are medians, the ratio is of the medians of this run.
#
#   bench/offload.sh [NTBT] [RUNS]      env: BW (link rate, default 1G bytes/s),
#                                        WORK (ns per KiB, default 1000), TIME (s, default 2)
set -euo pipefail
NTBT=${1:-build/ntbt}
RUNS=${2:-5}
BW=${BW:-1G}
WORK=${WORK:-1000}
TIME=${TIME:-2}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "# ntbt perf --loopback --dev pcie:offload,bw=$BW --size 65524 --time $TIME --work $WORK, $RUNS runs each"
echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
for _ in $(seq "$RUNS"); do
        for tx in inline thread; do
                "$NTBT" perf --loopback --dev "pcie:offload,bw=$BW" --size 65524 --time "$TIME" \
                        --work "$WORK" --tx "$tx" --json-lines | tee -a "$out"
        done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
med = {}
for tx in ("inline", "thread"):
    r = [x for x in rows if x["tx_mode"] == tx]
    assert all(x["errors"] == 0 for x in r), "errors in a run"
    med[tx] = (statistics.median(x["bytes_per_sec"] for x in r) / 1e9,
               statistics.median(x["msgs_per_sec"] for x in r), len(r))
print()
print("| copy mode | runs | median GB/s | median msg/s |")
print("| --- | --- | --- | --- |")
for tx in ("inline", "thread"):
    gb, mps, n = med[tx]
    print(f"| {tx} | {n} | {gb:.3f} | {mps:.0f} |")
print()
print(f"thread / inline = {med['thread'][0] / med['inline'][0]:.2f}x (ratio of medians)")
PY
