#!/usr/bin/env bash
# ntbt tun between two network namespaces over one device: ping across,
# iperf3 TCP both ways, kill one side (carrier drops), restart it (traffic
# resumes), a two-queue interface, teardown.  Needs root, /dev/net/tun, ip,
# ping and iperf3; otherwise it is skipped (exit 77) and says why.
# The addresses (10.77.0.0/24) exist only inside the test's own namespaces.
set -euo pipefail
NTBT=$1
skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "not root"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
for t in ip ping iperf3; do command -v $t > /dev/null || skip "$t not installed"; done

A=ntbtA$$ B=ntbtB$$ name=t-tun-$$
dir=$(mktemp -d)
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
        sleep 0.3
        ip netns del $A 2> /dev/null || true
        ip netns del $B 2> /dev/null || true
        "$NTBT" dev rm $name 2> /dev/null || true
        rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$dir"/*.log; do echo "== $f"; cat "$f"; done >&2; exit 1; }
wait_for() { # seconds, command...
        local n=$(($1 * 20)); shift
        for _ in $(seq $n); do "$@" > /dev/null 2>&1 && return 0; sleep 0.05; done
        return 1
}
carrier() { ip -n "$1" link show ntb0 | grep -q "LOWER_UP"; }
gone() { ! ip -n "$1" link show ntb0; }
exited() { ! [ -e /proc/$1 ] || grep -q '^State:.*Z' /proc/$1/status; }
# SIGTERM every running ntbt tun and wait until each has exited and both
# ntb0 are gone, so the next start cannot find (and address) the old one.
stop_all() {
        local p
        for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
        for p in "${pids[@]}"; do
                wait_for 5 exited "$p" || fail "ntbt tun $p ignored SIGTERM"
                wait "$p" 2> /dev/null || true
        done
        pids=()
        wait_for 5 gone $A || fail "ntb0 not torn down in $A"
        wait_for 5 gone $B || fail "ntb0 not torn down in $B"
}
no_carrier() { ip -n "$1" link show ntb0 | grep -q "NO-CARRIER"; }
start() { # ns log [args]
        local ns=$1 log=$2; shift 2
        ip netns exec "$ns" "$NTBT" tun --dev "shm:$name" --name ntb0 -v "$@" > "$dir/$log" 2>&1 &
        pids+=($!)
        wait_for 5 ip -n "$ns" link show ntb0 || fail "ntb0 did not appear in $ns"
}

ip netns add $A
ip netns add $B
"$NTBT" dev create $name
start $A a.log
start $B b.log
pid_b=${pids[1]}
ip -n $A addr add 10.77.0.1/24 dev ntb0
ip -n $B addr add 10.77.0.2/24 dev ntb0
wait_for 5 carrier $A || fail "no carrier in A"
wait_for 5 carrier $B || fail "no carrier in B"
ip -n $A link show ntb0 | grep -q "mtu 65510" || fail "MTU is not 65510"

ip netns exec $A ping -c 3 -W 2 10.77.0.2 || fail "ping A -> B"

iperf() { # from-ns to-addr [-R]
        local to_ns=$B; [ "$2" = 10.77.0.1 ] && to_ns=$A
        ip netns exec $to_ns iperf3 -s -1 > "$dir/iperf-s.log" 2>&1 &
        local s=$!
        wait_for 5 ip netns exec $to_ns sh -c "ss -ltn | grep -q 5201"
        ip netns exec "$1" iperf3 -c "$2" -t 2 -J ${3:-} > "$dir/iperf.json"  || fail "iperf3 $*"
        wait $s || true
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); b=d["end"]["sum_received"]["bytes"]; print("iperf3 %s: %.2f Gbit/s" % (sys.argv[2], d["end"]["sum_received"]["bits_per_second"]/1e9)); assert b > 1000000, b' "$dir/iperf.json" "$*" || fail "no bytes arrived: $*"
}
iperf $A 10.77.0.2
iperf $A 10.77.0.2 -R
iperf $B 10.77.0.1

# Kill B: A's carrier drops; restart B: carrier and traffic return.
kill -9 $pid_b
wait_for 5 no_carrier $A || fail "A kept its carrier after B died"
echo "carrier dropped in A"
# B's ntb0 went away with its process; a new ntbt tun takes its place.
wait_for 5 gone $B || fail "B's ntb0 outlived its process"
start $B b2.log
ip -n $B addr add 10.77.0.2/24 dev ntb0
wait_for 5 carrier $A || fail "no carrier in A after B came back"
wait_for 10 ip netns exec $A ping -c 1 -W 1 10.77.0.2 || fail "no traffic after restart"
iperf $A 10.77.0.2
echo "traffic resumed"
stop_all
grep -q "rx write errors 0" "$dir/a.log" || fail "A counted errors"

# Two queues, over a device with two windows (two QPs).
start $A a3.log --qps 2
start $B b3.log --qps 2
ip -n $A addr add 10.77.0.1/24 dev ntb0
ip -n $B addr add 10.77.0.2/24 dev ntb0
wait_for 5 carrier $A || fail "no carrier with 2 queues"
ip netns exec $B iperf3 -s -1 > /dev/null 2>&1 &
wait_for 5 ip netns exec $B sh -c "ss -ltn | grep -q 5201"
ip netns exec $A iperf3 -c 10.77.0.2 -t 2 -P 4 -J > "$dir/mq.json" || fail "iperf3 -P 4"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("iperf3 2 queues -P 4: %.2f Gbit/s" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' "$dir/mq.json"
stop_all
grep -E "queue [01]: tx" "$dir/a3.log" || true

# Offloads (checksum, TSO/GSO) on both sides.
start $A a4.log --offload
start $B b4.log --offload
ip -n $A addr add 10.77.0.1/24 dev ntb0
ip -n $B addr add 10.77.0.2/24 dev ntb0
wait_for 5 carrier $A || fail "no carrier with offloads"
grep -q "offloads on" "$dir/a4.log" || fail "offloads not on"
ip netns exec $A ping -c 2 -W 2 10.77.0.2 > /dev/null || fail "ping with offloads"
iperf $A 10.77.0.2
iperf $A 10.77.0.2 -R
echo "tun netns: ok"
