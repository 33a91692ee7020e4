#!/usr/bin/env bash
# Queue-pair scaling with receive threads (issue 14 goal 4), in one short
# run for a lent many-core machine (DEVELOPERS.md, "The 16-core machine"):
# builds with make, then ntbt perf --loopback over 1, 2, 4 and 8 queue pairs
# with as many receive threads (--rx-threads = QPs), and 8 QPs on one
# thread (the old event thread) for comparison, at 64 bytes with --mtu 128
# (message rate) and 65524 bytes (bandwidth); every point RUNS times,
# interleaved (run 1 of every point, then run 2, ...), one JSON document per
# point and run under $OUT, and a table: medians, and the median of the
# same-run ratios to 1 QP.
#
#   bench/scale.sh            env: RUNS (default 3), TIME (s per point,
#                                  default 2), QPS (default "1 2 4 8"),
#                                  EXTRA (default "8:1": QPS:RX_THREADS
#                                  points besides, empty for none),
#                                  OUT (default bench/results-scale),
#                                  BUILD (default build; NOBUILD=1 skips make)
#
# 16 cores, the defaults: about 2 minutes of runs (30 points of 2 s plus
# about 1 s of set-up each) after the build; the device budget is 15
# minutes in all.  Check here with RUNS=1 TIME=0.3 QPS="1 2" EXTRA=.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
TIME=${TIME:-2}
QPS=${QPS:-1 2 4 8}
EXTRA=${EXTRA-8:1}
OUT=${OUT:-bench/results-scale}
BUILD=${BUILD:-build}
NTBT=$BUILD/ntbt
dev=shm:rxt-scale-$$

[ "${NOBUILD:-0}" = 1 ] || make BUILD="$BUILD" > /dev/null
mkdir -p "$OUT"
{
        echo "date: $(date -u +%FT%TZ)"
        echo "commit: $(git rev-parse --short HEAD 2> /dev/null || echo unknown)"
        echo "cpus: $(nproc)"
        echo "uptime: $(uptime)"
        echo "RUNS=$RUNS TIME=$TIME QPS=$QPS EXTRA=$EXTRA"
} > "$OUT/env.txt"
cat "$OUT/env.txt"

points=()
for q in $QPS; do points+=("$q:$q"); done
for p in $EXTRA; do points+=("$p"); done

for run in $(seq 1 "$RUNS"); do
        for p in "${points[@]}"; do
                q=${p%%:*} r=${p##*:}
                for s in 64 65524; do
                        mtu=65536
                        [ "$s" = 64 ] && mtu=128
                        f="$OUT/q$q-r$r-s$s-run$run.json"
                        "$NTBT" perf --loopback -d "$dev" -P "$q" --rx-threads "$r" -s "$s" \
                                --mtu "$mtu" -t "$TIME" --json > "$f" ||
                                echo "perf -P $q --rx-threads $r -s $s (run $run): exit $?" >&2
                done
        done
        echo "run $run done, load $(cut -d' ' -f1 /proc/loadavg)" >&2
done
echo "uptime after: $(uptime)" >> "$OUT/env.txt"

python3 - "$OUT" <<'PY'
import glob, json, os, re, statistics, sys

out = sys.argv[1]
pts = {}  # (q, r, size) -> {run: (msgs_per_sec, bytes_per_sec)}
for f in glob.glob(os.path.join(out, "q*-r*-s*-run*.json")):
    m = re.search(r"q(\d+)-r(\d+)-s(\d+)-run(\d+)\.json$", f)
    try:
        d = json.load(open(f))
        res = d["results"][0]
    except (ValueError, KeyError, IndexError):
        continue
    if res.get("failed"):
        continue
    q, r, s, run = map(int, m.groups())
    pts.setdefault((q, r, s), {})[run] = (res["msgs_per_sec"], res["bytes_per_sec"])

rows = []
print("%4s %4s %6s %9s %8s %10s %5s" % ("QPs", "rxt", "size", "M msg/s", "GB/s", "x 1 QP", "runs"))
for (q, r, s) in sorted(pts, key=lambda k: (k[2], k[0], -k[1])):
    v = pts[(q, r, s)]
    base = pts.get((1, 1, s), {})
    ratios = [v[k][0] / base[k][0] for k in v if k in base and base[k][0] > 0]
    mps = statistics.median(x[0] for x in v.values())
    bps = statistics.median(x[1] for x in v.values())
    ratio = statistics.median(ratios) if ratios else float("nan")
    print("%4d %4d %6d %9.2f %8.2f %10.2f %5d" % (q, r, s, mps / 1e6, bps / 1e9, ratio, len(v)))
    rows.append({"qps": q, "rx_threads": r, "size": s, "msgs_per_sec": mps,
                 "bytes_per_sec": bps, "ratio_vs_1qp": ratio, "runs": len(v)})
json.dump(rows, open(os.path.join(out, "table.json"), "w"), indent=1)
PY
