#!/usr/bin/env bash
# tests/vm/test_vm_host.sh [REPO [NTBT]]: ntbt on the host against the Linux
# kernel in a QEMU guest, on one format-2 device file.  The host runs
# `ntbt tun` (ntbt's ntb_netdev) in a network namespace; the guest runs
# Linux's own ntb_hw_ntbt + ntb_transport + ntb_netdev (guest/host.sh):
#   1. the link comes up; ping both ways; $NTBT_VM_HOST_MIB MiB (default 64)
#      each way with nc, sha256 compared; iperf3 both ways (reported only:
#      TCG);
#   2. the guest's QEMU is killed mid-stream: the host's ntb0 loses its
#      carrier within remote_timeout_ms + 1 s;
#   3. a new guest boots on the same file with no host restart: the carrier
#      and ping return;
#   4. `ntbt tun` is killed (SIGKILL): the guest's eth0 loses its carrier;
#      `ntbt tun` starts again: the guest's carrier and ping return; the
#      guest unloads every module with a clean kernel log.
# Root only (network namespace, TUN); skipped (77) otherwise.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NTBT=${2:-$VM_REPO/build/ntbt}
[ "$(id -u)" = 0 ] || vm_skip "not root (the host side needs a network namespace and TUN)"
[ -c /dev/net/tun ] || vm_skip "no /dev/net/tun"
[ -x "$NTBT" ] || vm_die "no ntbt command at $NTBT"
hw_src=${NTBT_VM_HW_SRC:-$VM_REPO/kernel/ntb_hw_ntbt}
[ -f "$hw_src/ntb_hw_ntbt.c" ] || vm_skip "no $hw_src/ntb_hw_ntbt.c"
for t in ip ping iperf3; do command -v $t > /dev/null || vm_skip "$t is not installed"; done
[ -x /bin/busybox ] || vm_skip "no /bin/busybox (busybox-static) for nc on the host"
mib=${NTBT_VM_HOST_MIB:-64}
timeout=${NTBT_VM_HOST_TIMEOUT:-600}

vm_prepare
[ -n "$NTBT_VM_HW_KO" ] || vm_die "prepare built no ntb_hw_ntbt.ko"

work=$(mktemp -d /tmp/ntbt-vm-host.XXXXXX)
ns=ntbtvm$$
name=vmhost-$$
dev=/dev/shm/ntbt-$name
bpid='' tpid='' lpids=()
cleanup() {
        local p
        [ -z "$bpid" ] || kill -TERM "$bpid" 2> /dev/null || true
        [ -z "$bpid" ] || wait "$bpid" 2> /dev/null || true
        [ -z "$tpid" ] || kill -TERM "$tpid" 2> /dev/null || true
        [ -z "$tpid" ] || wait "$tpid" 2> /dev/null || true
        for p in "${lpids[@]}"; do kill -KILL "$p" 2> /dev/null || true; done
        ip netns pids "$ns" 2> /dev/null | xargs -r kill -KILL 2> /dev/null || true
        ip netns del "$ns" 2> /dev/null || true
        "$NTBT" dev rm "$name" 2> /dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT
fail() { vm_fail_logs "$work" "$@"; }
# wait_for FILE PATTERN SECS: until the guest's console shows PATTERN.
wait_for() {
        local n=$(($3 * 10))
        while ! grep -aq -- "$2" "$1" 2> /dev/null; do
                n=$((n - 1))
                [ "$n" -gt 0 ] || fail "no '$2' on $(basename "$1") within $3 s"
                if [ -n "$bpid" ] && ! kill -0 "$bpid" 2> /dev/null; then
                        fail "the guest ended before '$2'"
                fi
                sleep 0.1
        done
}
# The rest of the first console line that starts with KEY (one or more words).
line() { grep -a -o "$2 .*" "$1" | head -n 1 | cut -c$((${#2} + 2))- | tr -d '\r'; }
carrier() { ip netns exec "$ns" cat /sys/class/net/ntb0/carrier 2> /dev/null || echo 0; }
# wait_carrier VALUE SECS: the host's ntb0 carrier reads VALUE; prints ms taken.
wait_carrier() {
        local t0 n=$(($2 * 100))
        t0=$(date +%s%N)
        until [ "$(carrier)" = "$1" ]; do
                n=$((n - 1))
                [ "$n" -gt 0 ] || fail "ntb0 carrier not $1 within $2 s"
                sleep 0.01
        done
        echo $((($(date +%s%N) - t0) / 1000000))
}
start_tun() {
        ip netns exec "$ns" "$NTBT" tun --dev "shm:$name" --name ntb0 -v > "$work/tun$1.log" 2>&1 &
        tpid=$!
        local n=100
        until ip netns exec "$ns" ip link show ntb0 > /dev/null 2>&1; do
                n=$((n - 1))
                [ "$n" -gt 0 ] || fail "ntbt tun made no ntb0"
                sleep 0.05
        done
        ip -n "$ns" addr add 10.78.0.1/24 dev ntb0 2> /dev/null || true
        ip -n "$ns" link set ntb0 up
}
boot() { # phase log
        "$VM_DIR/boot" --name "$1" --initrd "$work/guest.cpio.gz" --shm "$dev" --timeout "$timeout" \
                --log "$2" --pidfile "$work/$1.pid" \
                --append "NTBT_PHASE=$1 NTBT_IP=10.78.0.2 NTBT_PEER=10.78.0.1" &
        bpid=$!
}
# send PORT FILE: to the guest, connecting until its listener listens (30 s).
send() {
        local n=0
        until ip netns exec "$ns" /bin/busybox nc 10.78.0.2 "$1" < "$2" 2> "$work/nc.err"; do
                n=$((n + 1))
                [ "$n" -lt 60 ] || fail "nc to the guest's port $1 failed: $(cat "$work/nc.err")"
                sleep 0.5
        done
}
# listen PORT OUT: busybox nc in the namespace; its stdin held open.
listen() {
        mkfifo "$work/hold$1"
        ip netns exec "$ns" /bin/busybox nc -l -p "$1" < "$work/hold$1" > "$2" &
        lpids+=($!)
        # shellcheck disable=SC2034 # the descriptor is what matters
        exec {hold}<> "$work/hold$1"
}

"$NTBT" dev create "$name"
"$VM_DIR/mkinitrd" --env "KPARAMS=${KPARAMS:-}" --env "NTBT_MIB=$mib" \
        "$work/guest.cpio.gz" "$VM_DIR/guest/host.sh"
ip netns add "$ns"
ip -n "$ns" link set lo up
head -c "${mib}M" /dev/urandom > "$work/to-guest"
sent=$(sha256sum < "$work/to-guest" | cut -d' ' -f1)

echo "== 1. host ntbt tun <-> guest ntb_netdev"
start_tun 1
t0=$(vm_now)
boot data "$work/data.log"
listen 5002 "$work/from-guest"
wait_for "$work/data.log" "VM-PING ok" 180
echo "link up and guest ping ok $(vm_since "$t0") s after boot; MTU $(line "$work/data.log" VM-MTU)"
ip netns exec "$ns" ping -c 3 -W 2 10.78.0.2 | tail -n 2 || fail "the guest does not answer ping"
wait_for "$work/data.log" "VM-LISTENING" 120
t=$(vm_now)
# The guest starts its listener in the background: connect until it listens.
send 5001 "$work/to-guest"
wait_for "$work/data.log" "VM-SHA recv" 300
host_t=$(vm_since "$t")
got_guest=$(line "$work/data.log" "VM-SHA recv")
[ "${got_guest%% *}" = "$sent" ] || fail "host -> guest: sent $sent, the guest got $got_guest"
gsent=$(line "$work/data.log" "VM-SHA sent")
wait "${lpids[0]}" || true
got_host=$(sha256sum < "$work/from-guest" | cut -d' ' -f1)
if [ -z "$gsent" ] || [ "$got_host" != "$gsent" ]; then
        fail "guest -> host: the guest sent $gsent, the host got $got_host ($(stat -c %s "$work/from-guest") bytes)"
fi
echo "$mib MiB each way, sha256 equal (host->guest ${sent:0:16}..., guest->host ${gsent:0:16}...); $(line "$work/data.log" "VM-TIME both ways") (both at once; the host's side took $host_t s)"
for dir in "" -R; do
        # The server takes one client at a time and needs a moment between two.
        for try in 1 2 3 4 5; do
                ip netns exec "$ns" iperf3 -c 10.78.0.2 -p 5201 -t 3 -f m $dir > "$work/iperf.out" 2>&1 && break
                sleep 1
        done
        if grep -q receiver "$work/iperf.out"; then
                label="host->guest"
                [ -z "$dir" ] || label="guest->host (-R)"
                echo "iperf3 $label: $(grep receiver "$work/iperf.out" | tail -n 1)"
        else
                echo "iperf3 ${dir} failed after $try tries (reported, not asserted): $(tail -n 1 "$work/iperf.out")"
        fi
done

echo "== 2. the guest's QEMU killed mid-stream"
rx0=$(ip netns exec "$ns" cat /sys/class/net/ntb0/statistics/rx_bytes)
listen 5003 /dev/null
n=600
until [ "$(ip netns exec "$ns" cat /sys/class/net/ntb0/statistics/rx_bytes)" -gt $((rx0 + (8 << 20))) ]; do
        n=$((n - 1))
        [ "$n" -gt 0 ] || fail "the guest's stream did not arrive"
        sleep 0.1
done
echo "(killing the guest's QEMU: boot's complaint that QEMU ended is expected)"
kill -KILL "$(cat "$work/data.pid")"
ms=$(wait_carrier 0 10)
wait "$bpid" 2> /dev/null || true
bpid=''
tmo=$("$NTBT" dev show "$name" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["remote_timeout_ms"])')
echo "host ntb0 lost its carrier ${ms} ms after the guest died (remote_timeout_ms $tmo)"
[ "$ms" -le $((tmo + 1000)) ] || fail "carrier lost after $ms ms > remote_timeout_ms + 1 s"
kill -0 "$tpid" || fail "ntbt tun exited when the guest died"

echo "== 3. a new guest on the same file, no host restart"
t0=$(vm_now)
boot return "$work/return.log"
wait_for "$work/return.log" "VM-UP" 180
ms=$(wait_carrier 1 30)
ip netns exec "$ns" ping -c 3 -W 2 10.78.0.2 | tail -n 2 || fail "the new guest does not answer ping"
echo "carrier and ping back $(vm_since "$t0") s after the second boot"

echo "== 4. ntbt tun killed, then started again"
kill -KILL "$tpid"
wait "$tpid" 2> /dev/null || true
tpid=''
wait_for "$work/return.log" "VM-LOST" 60
echo "guest: eth0 carrier $(line "$work/return.log" "VM-LOST")"
start_tun 2
wait_for "$work/return.log" "VM-WAITING" 180
ms=$(wait_carrier 1 30)
ip netns exec "$ns" ping -c 3 -W 2 10.78.0.2 | tail -n 2 || fail "no ping after ntbt tun came back"
echo "guest: $(line "$work/return.log" "VM-BACK")"
echo "done" > "$work/done"
send 5004 "$work/done"
rc=0
wait "$bpid" || rc=$?
bpid=''
[ "$rc" = 0 ] || fail "the second guest failed (exit $rc)"
grep -aq "VM-CHECK unloaded" "$work/return.log" || fail "the guest did not unload its modules"
# The guest released its port cleanly: the host's carrier drops.
wait_carrier 0 5 > /dev/null
echo "host <-> guest kernel: ok"
