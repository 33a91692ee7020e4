# shellcheck shell=sh
# The guest side of tests/vm/test_vm_kdev.sh (busybox sh, /guest.sh): ntbt on
# kdev: (ntb_hw_ntbt + the ntb_user bridge) against ntbt on shm: on the host.
# Environment: NTBT_MIB, NTBT_IP, NTBT_PEER, NTBT_UNLOAD_CYCLES.  Every step
# prints a "VM-..." line; the host starts its side of each step when it sees
# the step's line, and both sides wait for each other through ntbt itself.
#
#   bridge  ntb_user_test: every ioctl with good and bad arguments, double
#           open, close while a wait sleeps, a killed holder; the NTB device
#           removed under a holder (sysfs unbind, then rmmod ntb_hw_ntbt);
#           load and unload cycles with the ioremap and vmalloc counts
#           compared
#   events  ntb_user_test ... events against the host's hostport.py: the
#           link event, rings by poll() and read(), a masked ring,
#           scratchpads and a doorbell to the host
#   recv    receive NTBT_MIB MiB from the host (sha256 printed)
#   send    send NTBT_MIB MiB of /dev/urandom to the host (sha256 printed)
#   perf    ntbt perf --server twice (the host's client runs --verify
#           --bidir, inline copy, then the copy thread)
#   zc      ntbt perf --client --zc --verify (zero-copy send into the
#           window kdev maps), then ntbt perf --server --zc (frames read
#           in place in the inbound window)
#   ping    ntbt ping --server (the host's client counts round trips)
#   tun     ntbt tun ntb0 NTBT_IP; ping the host's ntbt tun
#   lost    ntbt recv while the host's sender is SIGKILLed: must exit 1
#           with "link lost"
#   dies    ntbt send of zeros until the host kills this guest's QEMU
set -e
: "${NTBT_MIB:=64}" "${NTBT_IP:?}" "${NTBT_PEER:?}" "${NTBT_UNLOAD_CYCLES:=5}"
DEV=kdev:/dev/ntbt-user0
up() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }'; }
maps() { grep -c ioremap /proc/vmallocinfo; }
# The bridge's own vmalloc areas (its status pages; kernel threads come and
# go with their vmalloc'd stacks, so the total is no measure).
bridge_areas() { grep -c '\[ntb_user\]' /proc/vmallocinfo || true; }

vm_insmod ntb
vm_insmod ntb_hw_ntbt
m0=$(maps) v0=$(bridge_areas)
# Load and unload the bridge with its device bound: nothing may be left.
i=0
while [ "$i" -lt "$NTBT_UNLOAD_CYCLES" ]; do
        insmod /lib/modules/ntb_user.ko
        vm_wait 10 test -c /dev/ntbt-user0 || vm_fail "cycle $i: no /dev/ntbt-user0"
        rmmod ntb_user
        i=$((i + 1))
done
[ ! -e /dev/ntbt-user0 ] || vm_fail "/dev/ntbt-user0 outlived the module"
vc=$(bridge_areas)
echo "VM-CYCLES the bridge's vmalloc areas $v0 -> $vc across $NTBT_UNLOAD_CYCLES bridge load/unload cycles"
[ "$vc" = "$v0" ] || vm_fail "vmalloc areas $v0 -> $vc after $NTBT_UNLOAD_CYCLES bridge load/unload cycles"
vm_insmod ntb_user
vm_wait 10 test -c /dev/ntbt-user0 || vm_fail "ntb_user made no /dev/ntbt-user0"
NTBDEV=$(cat /sys/class/ntbt_user/ntbt-user0/ntb)
v0=$(bridge_areas) # now with the module and its device's status page
echo "VM-NODE $(ls -l /dev/ntbt-user0 | cut -c1-10) ntb=$NTBDEV"
[ "$(ls -l /dev/ntbt-user0 | cut -c1-10)" = crw------- ] || vm_fail "/dev/ntbt-user0 is not mode 0600"

# removal HOW: the NTB device goes away under a process that holds it open,
# mapped and asleep in a wait (ntb_user_test ... removal checks its side).
removal() {
        ntb_user_test /dev/ntbt-user0 removal > /tmp/rm.log 2>&1 &
        _p=$!
        vm_wait 30 grep -q HOLDING /tmp/rm.log || vm_fail "the holder did not start: $(cat /tmp/rm.log)"
        sleep 0.3
        case "$1" in
        unbind) echo "$NTBDEV" > /sys/bus/ntb/drivers/ntb_user/unbind ;;
        rmmod) rmmod ntb_hw_ntbt ;;
        esac
        _rc=0
        wait "$_p" || _rc=$?
        cat /tmp/rm.log
        [ "$_rc" = 0 ] || vm_fail "the holder's checks failed after $1"
        [ ! -e /dev/ntbt-user0 ] || vm_fail "/dev/ntbt-user0 outlived $1"
}
removal unbind
echo "$NTBDEV" > /sys/bus/ntb/drivers/ntb_user/bind
vm_wait 10 test -c /dev/ntbt-user0 || vm_fail "no /dev/ntbt-user0 after bind"
removal rmmod
vm_insmod ntb_hw_ntbt
vm_wait 10 test -c /dev/ntbt-user0 || vm_fail "no /dev/ntbt-user0 after ntb_hw_ntbt came back"
NTBDEV=$(cat /sys/class/ntbt_user/ntbt-user0/ntb)
echo "VM-REMOVAL ok (unbind, rmmod ntb_hw_ntbt)"

# ---- bridge ----
ntb_user_test /dev/ntbt-user0 || vm_fail "ntb_user_test failed"
ntbt dev show "$DEV" || vm_fail "ntbt dev show $DEV failed"
ntbt dev show "kdev:$NTBDEV" > /dev/null || vm_fail "ntbt dev show kdev:$NTBDEV failed"
m1=$(maps) v1=$(bridge_areas)
echo "VM-BRIDGE ok; ioremap $m0 -> $m1, the bridge's vmalloc areas $v0 -> $v1 across two removals and the tests"
[ "$m1" = "$m0" ] || vm_fail "ioremap mappings $m0 -> $m1"
[ "$v1" = "$v0" ] || vm_fail "vmalloc areas $v0 -> $v1 (a status page or mapping leaked)"

# ---- events: doorbells and the link from a live peer ----
echo "VM-STEP events"
ntb_user_test /dev/ntbt-user0 events || vm_fail "ntb_user_test events failed"

# ---- recv ----
echo "VM-STEP recv"
t=$(up)
ntbt recv --dev "$DEV" > /tmp/in || vm_fail "ntbt recv from the host failed"
echo "VM-TIME recv ${NTBT_MIB} MiB $(elapsed "$t") s"
echo "VM-SHA recv $(sha256sum < /tmp/in | cut -d' ' -f1) $(wc -c < /tmp/in) bytes"
rm -f /tmp/in

# ---- send ----
dd if=/dev/urandom of=/tmp/out bs=1M count="$NTBT_MIB" 2> /dev/null
echo "VM-SHA sent $(sha256sum < /tmp/out | cut -d' ' -f1)"
echo "VM-STEP send"
t=$(up)
ntbt send --dev "$DEV" < /tmp/out || vm_fail "ntbt send to the host failed"
echo "VM-TIME send ${NTBT_MIB} MiB $(elapsed "$t") s"
rm -f /tmp/out

# ---- perf ----
for tx in inline thread; do
        echo "VM-STEP perf-$tx"
        ntbt perf --server --dev "$DEV" --tx "$tx" || vm_fail "perf server ($tx) failed"
done

# ---- zero copy: this side's reserve/commit into the window kdev maps
# (peer_mw_map), then its in-place receive (rx_get/release) ----
echo "VM-STEP zc-send"
ntbt perf --client --dev "$DEV" --zc --verify --size 64,1500,65524 --time 1 --timeout 120 ||
        vm_fail "perf --zc client failed"
echo "VM-STEP zc-recv"
ntbt perf --server --dev "$DEV" --zc || vm_fail "perf --zc server failed"

# ---- ping ----
echo "VM-STEP ping"
ntbt ping --server --dev "$DEV" || vm_fail "ping server failed"

# ---- tun ----
vm_insmod tun
ntbt tun --dev "$DEV" --name ntb0 -v > /tmp/tun.log 2>&1 &
tun=$!
vm_wait 10 ip link show ntb0 || vm_fail "ntbt tun made no ntb0: $(cat /tmp/tun.log)"
ip addr add "$NTBT_IP/24" dev ntb0
ip link set ntb0 up
echo "VM-STEP tun"
vm_wait 120 vm_carrier ntb0 || vm_fail "no carrier on ntb0 within 120 s: $(cat /tmp/tun.log)"
vm_wait 60 ping -c 1 -W 1 "$NTBT_PEER" || vm_fail "the host ($NTBT_PEER) does not answer ping"
ping -c 3 "$NTBT_PEER" | tail -n 2
echo "VM-PING ok"
# The host pings us, then stops its tun: our carrier drops.
vm_wait 120 sh -c '[ "$(cat /sys/class/net/ntb0/carrier 2> /dev/null)" != 1 ]' ||
        vm_fail "ntb0 kept its carrier after the host's tun stopped"
kill -TERM "$tun"
wait "$tun" || vm_fail "ntbt tun exited $?: $(cat /tmp/tun.log)"
echo "VM-TUN done"

# ---- lost: the host's sender is killed mid-stream ----
echo "VM-STEP lost"
rc=0
ntbt recv --dev "$DEV" > /dev/null 2> /tmp/lost.err || rc=$?
cat /tmp/lost.err
[ "$rc" = 1 ] || vm_fail "ntbt recv exited $rc when the host's sender was killed (want 1)"
grep -q "link lost\|link down\|lost" /tmp/lost.err || vm_fail "ntbt recv did not say the link was lost"
echo "VM-LOST ok"

# ---- dies: the host kills this guest mid-transfer ----
echo "VM-STEP dies"
ntbt send --dev "$DEV" < /dev/zero || true
vm_fail "ntbt send of /dev/zero ended while the host was receiving"
