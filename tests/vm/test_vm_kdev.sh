#!/usr/bin/env bash
# tests/vm/test_vm_kdev.sh [REPO [NTBT [NTB_USER_TEST]]]: ntbt on kdev: in a
# QEMU guest (ntb_hw_ntbt + the ntb_user bridge, kernel/ntb_user) against
# ntbt on shm: on the host, one format-2 device file between them.  The
# guest's steps are tests/vm/guest/kdev.sh; for each the host runs its side:
#   bridge  (guest alone) ntb_user_test; the NTB device removed under a
#           holder (unbind, rmmod ntb_hw_ntbt); bridge load/unload cycles
#           with the vmalloc and ioremap counts compared; ntbt dev show kdev:
#   events  host tests/vm/hostport.py rings the guest's ntb_user_test
#           (poll, read, a masked bit) and checks what it sends back
#   recv    host `ntbt send` of $NTBT_VM_KDEV_MIB MiB (default 64): sha256
#   send    host `ntbt recv` of the guest's as many MiB: sha256
#   perf    host `ntbt perf --client --verify --bidir`, inline copy, then
#           the copy thread; 0 errors
#   zc      host `ntbt perf --server --zc` against the guest's `--client
#           --zc --verify` (its zero-copy send through kdev's mapping of
#           the window): 3 sizes verified; then host `--client --zc
#           --verify` against the guest's `--server --zc` (in-place receive)
#   ping    host `ntbt ping --client`
#   tun     host `ntbt tun` in a network namespace: ping both ways, then the
#           host's tun stops and the guest's carrier must drop
#   lost    the host's `ntbt send` is SIGKILLed mid-stream: the guest's
#           `ntbt recv` exits 1 and says so
#   dies    the guest's QEMU is killed mid-transfer: the host's `ntbt recv`
#           exits 1 within remote_timeout_ms + 2 s
# and finally the guest's kernel log must hold no WARNING, BUG, Oops or
# Call Trace.  Root only (namespace, TUN); skipped (77) otherwise.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NTBT=${2:-$VM_REPO/build/ntbt}
UTEST=${3:-$(dirname "$NTBT")/tests/vm/ntb_user_test}
[ "$(id -u)" = 0 ] || vm_skip "not root (the host side needs a network namespace and TUN)"
[ -c /dev/net/tun ] || vm_skip "no /dev/net/tun"
[ -x "$NTBT" ] || vm_die "no ntbt command at $NTBT"
[ -x "$UTEST" ] || vm_die "no ntb_user_test at $UTEST"
for s in ntb_hw_ntbt/ntb_hw_ntbt.c ntb_user/ntb_user.c; do
        [ -f "$VM_REPO/kernel/$s" ] || vm_skip "no kernel/$s"
done
command -v ip > /dev/null || vm_skip "ip is not installed"
mib=${NTBT_VM_KDEV_MIB:-64}
timeout=${NTBT_VM_KDEV_TIMEOUT:-900}

vm_prepare
[ -n "$NTBT_VM_HW_KO" ] || vm_die "prepare built no ntb_hw_ntbt.ko"
[ -n "${NTBT_VM_USER_KO:-}" ] || vm_die "prepare built no ntb_user.ko"
[ -n "${NTBT_VM_TUN_KO:-}" ] || vm_die "prepare found no tun.ko for the guest"

work=$(mktemp -d /tmp/ntbt-vm-kdev.XXXXXX)
ns=ntbtkd$$
name=vmkdev-$$
log=$work/guest.log
bpid='' hpids=()
cleanup() {
        local p
        [ -z "$bpid" ] || kill -TERM "$bpid" 2> /dev/null || true
        [ -z "$bpid" ] || wait "$bpid" 2> /dev/null || true
        for p in "${hpids[@]}"; do kill -KILL "$p" 2> /dev/null || true; done
        ip netns pids "$ns" 2> /dev/null | xargs -r kill -KILL 2> /dev/null || true
        ip netns del "$ns" 2> /dev/null || true
        "$NTBT" dev rm "$name" 2> /dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT
fail() { vm_fail_logs "$work" "$@"; }
# wait_for PATTERN SECS: until the guest's console shows PATTERN.
wait_for() {
        local n=$(($2 * 10))
        while ! grep -aq -- "$1" "$log" 2> /dev/null; do
                n=$((n - 1))
                [ "$n" -gt 0 ] || fail "no '$1' on the guest's console within $2 s"
                if [ -n "$bpid" ] && ! kill -0 "$bpid" 2> /dev/null; then
                        fail "the guest ended before '$1'"
                fi
                sleep 0.1
        done
}
# The rest of the guest's first console line that starts with KEY.
line() { grep -a -o "$1 .*" "$log" | head -n 1 | cut -c$((${#1} + 2))- | tr -d '\r'; }
host() { # LOGNAME CMD...: a host-side ntbt step, its output kept
        local l=$1
        shift
        "$@" > "$work/$l.out" 2> "$work/$l.err" || {
                local rc=$?
                cat "$work/$l.out" "$work/$l.err" >&2
                fail "host: $* exited $rc"
        }
}
check_klog() {
        if grep -a -E 'WARNING:|BUG:|Oops|Call Trace|kmemleak|general protection' "$log"; then
                fail "the guest's kernel log has the lines above"
        fi
}

"$NTBT" dev create "$name"
tmo=$("$NTBT" dev show "$name" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["remote_timeout_ms"])')
"$VM_DIR/mkinitrd" --ko "$NTBT_VM_USER_KO" --ko "$NTBT_VM_TUN_KO" \
        --env "NTBT_MIB=$mib" "$work/guest.cpio.gz" "$VM_DIR/guest/kdev.sh" \
        "$NTBT:/usr/bin/ntbt" "$UTEST:/usr/bin/ntb_user_test"
head -c "${mib}M" /dev/urandom > "$work/to-guest"
sent=$(sha256sum < "$work/to-guest" | cut -d' ' -f1)
ip netns add "$ns"
ip -n "$ns" link set lo up

t0=$(vm_now)
"$VM_DIR/boot" --name kdev --initrd "$work/guest.cpio.gz" --shm "/dev/shm/ntbt-$name" \
        --timeout "$timeout" --log "$log" --pidfile "$work/guest.pid" \
        --append "NTBT_IP=10.79.0.2 NTBT_PEER=10.79.0.1" &
bpid=$!

echo "== bridge"
wait_for "VM-BRIDGE" 300
grep -a -E '^(info:|FAIL|ntb_user_test|VM-NODE|VM-CYCLES|VM-REMOVAL)' "$log" | sed 's/^/  guest: /'
echo "guest: $(line VM-BRIDGE) ($(vm_since "$t0") s after boot)"

echo "== events: doorbells from a host process to poll() and read()"
wait_for "VM-STEP events" 60
free=$("$NTBT" dev show "$name" --json | python3 -c '
import json, sys
print(next(p["port"] for p in json.load(sys.stdin)["ports"] if p["state"] == 0))')
mkfifo "$work/hp.in" "$work/hp.out"
exec {hpw}<> "$work/hp.in" {hpr}<> "$work/hp.out"
python3 "$VM_DIR/hostport.py" "/dev/shm/ntbt-$name" "$free" < "$work/hp.in" > "$work/hp.out" 2> "$work/hostport.err" &
hpid=$!
hpids+=("$hpid")
hp() { # CMD...: one command to hostport.py; prints the value of its "ok" answer
        local r
        echo "$*" >&"$hpw"
        read -r -t 30 -u "$hpr" r || fail "hostport.py: no answer to '$*': $(cat "$work/hostport.err")"
        [ "${r%% *}" = ok ] || fail "hostport.py: '$*': $r"
        r=${r#ok}
        echo "${r# }"
}
read -r -t 30 -u "$hpr" r || fail "hostport.py did not start: $(cat "$work/hostport.err")"
wait_for "EVENTS-READY" 60
hp set_peer_spad 3 0x1234 > /dev/null
hp ring 0x1 > /dev/null
wait_for "EVENTS-GOT 0x1" 30
hp ring 0x2 > /dev/null
wait_for "EVENTS-GOT 0x2" 30
wait_for "EVENTS-MASKED" 30
hp ring 0x4 > /dev/null
hp set_peer_spad 5 1 > /dev/null # "rung"
wait_for "EVENTS-GOT 0x4" 60
wait_for "EVENTS-SENT" 30
[ "$(hp spad 4)" = 0xbeef ] || fail "the guest's PEER_SPAD_WRITE did not reach the host's scratchpad 4"
db=$(hp db)
[ $((db & 8)) = 8 ] || fail "the guest's PEER_DB_SET 8 did not reach the host (db $db)"
hp set_peer_spad 6 0xacc > /dev/null # read: the guest may let its port go
wait_for "EVENTS-DONE" 60
hp quit > /dev/null || true
wait "$hpid" || fail "hostport.py failed: $(cat "$work/hostport.err")"
exec {hpw}>&- {hpr}<&-
echo "guest: $(line "ntb_user_test events:") (ring by poll, by read, masked then unmasked: $(line "EVENTS-GOT 0x4"))"

echo "== host -> guest, $mib MiB"
wait_for "VM-STEP recv" 60
t=$(vm_now)
host send "$NTBT" send --dev "shm:$name" < "$work/to-guest"
wait_for "VM-SHA recv" 300
got=$(line "VM-SHA recv")
[ "${got%% *}" = "$sent" ] || fail "host -> guest: sent $sent, the guest got $got"
echo "sha256 equal (${sent:0:16}...); $(vm_since "$t") s; guest: $(line "VM-TIME recv")"

echo "== guest -> host, $mib MiB"
wait_for "VM-STEP send" 120
t=$(vm_now)
"$NTBT" recv --dev "shm:$name" > "$work/from-guest" 2> "$work/recv.err" || fail "host recv: $(cat "$work/recv.err")"
gsent=$(line "VM-SHA sent")
got=$(sha256sum < "$work/from-guest" | cut -d' ' -f1)
[ -n "$gsent" ] && [ "$got" = "$gsent" ] ||
        fail "guest -> host: the guest sent $gsent, the host got $got ($(stat -c %s "$work/from-guest") bytes)"
echo "sha256 equal (${got:0:16}...); $(vm_since "$t") s"
rm -f "$work/from-guest" "$work/to-guest"

for tx in inline thread; do
        echo "== perf --verify --bidir, --tx $tx"
        wait_for "VM-STEP perf-$tx" 120
        host "perf-$tx" "$NTBT" perf --client --dev "shm:$name" --tx "$tx" --verify --bidir \
                --size 64,1500,65524 --time 1
        cat "$work/perf-$tx.out"
done

echo "== perf --zc --verify: the guest reserves slots in the window kdev maps"
wait_for "VM-STEP zc-send" 120
host zc-send "$NTBT" perf --server --dev "shm:$name" --zc
cat "$work/zc-send.out"
[ "$(grep -c ', verified' "$work/zc-send.out")" = 3 ] ||
        fail "the host's --zc server did not verify the guest's 3 sizes"
echo "== perf --zc --verify: the guest reads frames in place"
wait_for "VM-STEP zc-recv" 120
host zc-recv "$NTBT" perf --client --dev "shm:$name" --zc --verify --size 64,1500,65524 --time 1
cat "$work/zc-recv.out"

echo "== ping"
wait_for "VM-STEP ping" 120
host ping "$NTBT" ping --client --dev "shm:$name" --count 200 --warmup 20 --stall-timeout 10
cat "$work/ping.out"

echo "== tun"
wait_for "VM-STEP tun" 120
ip netns exec "$ns" "$NTBT" tun --dev "shm:$name" --name ntb0 -v > "$work/tun.log" 2>&1 &
tpid=$!
hpids+=("$tpid")
n=100
until ip netns exec "$ns" ip link show ntb0 > /dev/null 2>&1; do
        n=$((n - 1))
        [ "$n" -gt 0 ] || fail "ntbt tun made no ntb0: $(cat "$work/tun.log")"
        sleep 0.05
done
ip -n "$ns" addr add 10.79.0.1/24 dev ntb0
ip -n "$ns" link set ntb0 up
wait_for "VM-PING ok" 180
ip netns exec "$ns" ping -c 3 -W 2 10.79.0.2 | tail -n 2 || fail "the guest does not answer ping"
kill -TERM "$tpid"
wait "$tpid" || fail "host ntbt tun exited $?: $(cat "$work/tun.log")"
wait_for "VM-TUN done" 120
echo "ping both ways over ntbt tun (guest kdev: <-> host shm:); the guest saw the carrier drop"

echo "== lost: the host's sender killed mid-stream"
wait_for "VM-STEP lost" 60
"$NTBT" send --dev "shm:$name" < /dev/urandom 2> "$work/lost-send.err" &
spid=$!
hpids+=("$spid")
sleep 3
kill -0 "$spid" || fail "the host's sender ended by itself: $(cat "$work/lost-send.err")"
kill -KILL "$spid"
wait "$spid" 2> /dev/null || true
t=$(vm_now)
wait_for "VM-LOST" 60
echo "guest's recv ended $(vm_since "$t") s after the kill (remote_timeout_ms $tmo): $(grep -a -m1 '^ntbt: recv:.*lost' "$log" | tr -d '\r')"

echo "== dies: the guest's QEMU killed mid-transfer"
wait_for "VM-STEP dies" 60
"$NTBT" recv --dev "shm:$name" > "$work/dies.bin" 2> "$work/dies.err" &
rpid=$!
hpids+=("$rpid")
n=600
until [ "$(stat -c %s "$work/dies.bin")" -gt $((4 << 20)) ]; do
        n=$((n - 1))
        [ "$n" -gt 0 ] || fail "the guest's stream did not arrive: $(cat "$work/dies.err")"
        sleep 0.1
done
check_klog
echo "(killing the guest's QEMU: boot's complaint that QEMU ended is expected)"
kill -KILL "$(cat "$work/guest.pid")"
t=$(vm_now)
rc=0
wait "$rpid" || rc=$?
ms=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%d", (b - a) * 1000 }')
wait "$bpid" 2> /dev/null || true
bpid=''
cat "$work/dies.err"
[ "$rc" = 1 ] || fail "host recv exited $rc when the guest died (want 1)"
echo "host recv exited 1, $ms ms after the guest died (remote_timeout_ms $tmo)"
[ "$ms" -le $((tmo + 2000)) ] || fail "the host saw the guest gone after $ms ms > remote_timeout_ms + 2 s"
echo "guest kdev: <-> host shm: ok"
