#!/usr/bin/env bash
# Zero-copy send against the copy path and UCX's one-sided put (README
# section 6): N interleaved rounds (default 5) of ntbt perf without and with
# --zc and ucx_perftest ucp_put_bw (UCX_TLS=posix,self), at 64 B and 64 KiB;
# one line per point with the 1-minute load.  Usage: bench/zc.sh [BUILD]
set -euo pipefail
build=${1:-build}
N=${N:-5}
ntbt() {
        timeout 60 "$build/ntbt" perf --loopback -d "shm:zcb-$$" $2 -s "$1" -t 1 --json-lines |
                python3 -c 'import json, sys; d = json.loads(sys.stdin.read())
print("%.3f GB/s %.3f Mmsg/s cpu %s/%s fail=%s" % (d["bytes_per_sec"] / 1e9,
      d["msgs_per_sec"] / 1e6, d["cpu_client_pct"], d["cpu_server_pct"], d["failed"]))'
}
ucx() {
        local port=$((20000 + RANDOM % 20000)) out
        out=$(mktemp)
        UCX_TLS=posix,self timeout 60 ucx_perftest -p "$port" > /dev/null 2>&1 &
        sleep 0.5
        UCX_TLS=posix,self timeout 60 ucx_perftest 127.0.0.1 -p "$port" -t ucp_put_bw -s "$1" \
                -n "$2" -w 10000 -f -v > "$out" 2>&1
        wait
        python3 -c 'import sys
lines = open(sys.argv[1]).read().splitlines()
i = max(i for i, l in enumerate(lines) if l.startswith("iterations,"))
d = dict(zip(lines[i].split(","), (float(x) for x in lines[i + 1].split(","))))
print("%.3f GB/s %.3f Mmsg/s" % (d["overall_bw"] * 1048576 / 1e9, d["overall_mr"] / 1e6))' "$out"
        rm -f "$out"
}
load() { cut -d' ' -f1 /proc/loadavg; }
for r in $(seq "$N"); do
        for s in 64 65524; do
                echo "r$r load=$(load) s=$s copy: $(ntbt $s '')"
                echo "r$r load=$(load) s=$s zc:   $(ntbt $s --zc)"
                if [ $s = 64 ]; then
                        echo "r$r load=$(load) s=64 ucx_put: $(ucx 64 20000000)"
                else
                        echo "r$r load=$(load) s=65536 ucx_put: $(ucx 65536 200000)"
                fi
        done
done
