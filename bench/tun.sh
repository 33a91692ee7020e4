#!/usr/bin/env bash
# iperf3 over ntbt tun against iperf3 over a veth pair between the same two
# network namespaces, in one run: 1 and 2 queues, medians of RUNS runs each
# (interleaved), and the ratios to veth.  Needs root, ip, iperf3, python3.
#   bench/tun.sh [NTBT] [RUNS] [SECONDS]
set -euo pipefail
NTBT=${1:-build/ntbt}
RUNS=${2:-5}
SECS=${3:-3}
A=benchA$$ B=benchB$$ name=bench-tun-$$
out=$(mktemp)
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
        sleep 0.3
        ip netns del $A 2> /dev/null || true
        ip netns del $B 2> /dev/null || true
        "$NTBT" dev rm $name 2> /dev/null || true
        rm -f "$out"
}
trap cleanup EXIT
wait_for() { for _ in $(seq 100); do "$@" > /dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }

ip netns add $A
ip netns add $B
# veth between the namespaces (10.78.0.0/24), ntb0 over ntbt (10.77.0.0/24):
# every address lives only inside these two namespaces.
ip link add vA netns $A type veth peer name vB netns $B
ip -n $A addr add 10.78.0.1/24 dev vA
ip -n $B addr add 10.78.0.2/24 dev vB
ip -n $A link set vA up
ip -n $B link set vB up
"$NTBT" dev create $name

tun_up() { # queues [--offload]
        for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
        pids=()
        for ns in $A $B; do wait_for sh -c "! ip -n $ns link show ntb0"; done
        for ns in $A $B; do
                ip netns exec $ns "$NTBT" tun --dev "shm:$name" --name ntb0 --qps "$1" ${2:-} 2> /dev/null &
                pids+=($!)
                wait_for ip -n $ns link show ntb0
        done
        ip -n $A addr add 10.77.0.1/24 dev ntb0
        ip -n $B addr add 10.77.0.2/24 dev ntb0
        wait_for sh -c "ip -n $A link show ntb0 | grep -q LOWER_UP"
        wait_for ip netns exec $A ping -c 1 -W 1 10.77.0.2
}

measure() { # label addr streams
        ip netns exec $B iperf3 -s -1 > /dev/null 2>&1 &
        local s=$!
        wait_for ip netns exec $B sh -c "ss -ltn | grep -q 5201"
        ip netns exec $A iperf3 -c "$2" -t "$SECS" -P "$3" -J |
                python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"case": sys.argv[1], "gbps": d["end"]["sum_received"]["bits_per_second"] / 1e9}))' "$1" |
                tee -a "$out"
        wait $s || true
}

echo "# iperf3 TCP, $SECS s a run, $RUNS runs each; $(nproc) cores, $(uname -r)"
for run in $(seq "$RUNS"); do
        measure "veth" 10.78.0.2 1
                tun_up 1
        measure "ntbt tun, 1 QP" 10.77.0.2 1
        tun_up 1 --offload
        measure "ntbt tun, 1 QP, offloads" 10.77.0.2 1
        tun_up 2
                measure "ntbt tun, 2 QPs (-P 4)" 10.77.0.2 4
        tun_up 2 --offload
        measure "ntbt tun, 2 QPs, offloads (-P 4)" 10.77.0.2 4
        measure "veth (-P 4)" 10.78.0.2 4
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cases = []
for r in rows:
    if r["case"] not in cases:
        cases.append(r["case"])
med = {c: statistics.median(r["gbps"] for r in rows if r["case"] == c) for c in cases}
print()
print("| path | median Gbit/s | runs | vs veth (same streams) |")
print("| --- | --- | --- | --- |")
for c in cases:
    base = med["veth (-P 4)"] if "-P 4" in c else med["veth"]
    n = sum(1 for r in rows if r["case"] == c)
    print(f"| {c} | {med[c]:.2f} | {n} | {med[c] / base:.2f}x |")
PY
