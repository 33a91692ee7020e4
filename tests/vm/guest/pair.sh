# The guest side of tests/vm/test_vm_pair.sh (busybox sh, /guest.sh).
# Environment: NTBT_IP, NTBT_PEER, NTBT_LEAD (1 in one guest, 0 in the
# other; from the kernel command line), KPARAMS (ntb_transport parameters),
# NTBT_MIB (how much to send), NTBT_IPERF_S (iperf3 seconds, 0: none),
# NTBT_STACK (kernel, the default, or kdev).
#
# Both guests: load ntb, ntb_hw_ntbt, ntb_transport $KPARAMS, ntb_netdev (with
# NTBT_STACK=kdev instead: the ntb_user bridge, tun, and `ntbt tun` on
# kdev:/dev/ntbt-user0 as eth0); eth0 up; wait for the carrier; ping; send NTBT_MIB MiB of /dev/urandom to the
# peer with nc while receiving the peer's, both ways at once; print both
# sha256 ("VM-SHA sent|recv HASH") for the host to compare.  Then the
# follower runs iperf3 against the lead, and tells it "done"; the lead
# unloads every module (its link goes down) and powers off; the follower
# waits for its carrier to drop, unloads, powers off.
set -e
: "${NTBT_IP:?}" "${NTBT_PEER:?}" "${NTBT_LEAD:?}" "${NTBT_MIB:=64}" "${NTBT_IPERF_S:=0}"
: "${NTBT_STACK:=kernel}"
up() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }'; }

# On a failure, what the NTB debugfs files say (for the driver's author).
diag() {
        echo "VM-DIAG $*"
        find /sys/kernel/debug -path '*ntb*' -type f 2> /dev/null | while read -r f; do
                echo "== $f"
                head -n 40 "$f" 2>&1
        done
        vm_fail "$*"
}

vm_insmod ntb
vm_insmod ntb_hw_ntbt
if [ "$NTBT_STACK" = kdev ]; then
        vm_insmod ntb_user
        vm_insmod tun
        vm_wait 10 test -c /dev/ntbt-user0 || vm_fail "ntb_user made no /dev/ntbt-user0"
        echo "VM-STACK ntbt tun on $(ntbt dev show kdev:/dev/ntbt-user0 2>&1 | head -n 1)"
        ntbt tun --dev kdev:/dev/ntbt-user0 --name eth0 -v > /tmp/tun.log 2>&1 &
        tun=$!
        vm_wait 10 test -e /sys/class/net/eth0 || vm_fail "ntbt tun made no eth0: $(cat /tmp/tun.log)"
else
        # shellcheck disable=SC2086 # KPARAMS is a list of words
        vm_insmod ntb_transport ${KPARAMS:-}
        for kv in ${KPARAMS:-}; do
                echo "VM-PARAM ${kv%%=*}=$(cat "/sys/module/ntb_transport/parameters/${kv%%=*}")"
        done
        vm_insmod ntb_netdev
        vm_wait 10 test -e /sys/class/net/eth0 || vm_fail "ntb_netdev made no eth0"
        echo "VM-CHECK copy threads $(cat /proc/[0-9]*/comm | grep -c '^ntb-txcpy' || true)"
fi
# unload: the stack out again (the peer sees our link go down).
unload() {
        if [ "$NTBT_STACK" = kdev ]; then
                kill -TERM "$tun"
                wait "$tun" || vm_fail "ntbt tun exited $?: $(cat /tmp/tun.log)"
                rmmod ntb_user
                rmmod ntb_hw_ntbt
                rmmod ntb
                echo "VM-CHECK unloaded"
        else
                vm_unload_ntb
        fi
}
ip link set eth0 up
ip addr add "$NTBT_IP/24" dev eth0

# The data, while the peer boots.
t=$(up)
dd if=/dev/urandom of=/tmp/out bs=1M count="$NTBT_MIB" 2> /dev/null
sent=$(sha256sum /tmp/out | cut -d' ' -f1)
echo "VM-SHA sent $sent"
echo "VM-TIME data ${NTBT_MIB} MiB urandom+sha256 $(elapsed "$t") s"

# Listeners first: nc -l exits when its peer closes; its stdin must not
# reach EOF before that (busybox nc would half-close and the sender stop),
# hence a FIFO held open.
mkfifo /tmp/hold
exec 3<> /tmp/hold
nc -l -p 5001 < /tmp/hold > /tmp/in &
rx=$!
if [ "$NTBT_LEAD" = 1 ]; then
        nc -l -p 5002 < /tmp/hold > /tmp/done &
        donep=$!
        [ "$NTBT_IPERF_S" = 0 ] || iperf3 -s -p 5201 > /tmp/iperf-s.log 2>&1 &
fi

t=$(up)
vm_wait 120 vm_carrier eth0 || diag "no carrier on eth0 within 120 s"
echo "VM-TIME carrier $(elapsed "$t") s"
vm_wait 60 ping -c 1 -W 1 "$NTBT_PEER" || diag "$NTBT_PEER does not answer ping"
ping -c 3 "$NTBT_PEER" | tail -n 2

send() { vm_send "$NTBT_PEER" "$@"; } # PORT FILE
t=$(up)
# busybox nc returns once the receiver has closed, i.e. has everything.
send 5001 /tmp/out || vm_fail "could not send to $NTBT_PEER:5001"
echo "VM-TIME send ${NTBT_MIB} MiB $(elapsed "$t") s"
wait "$rx" || vm_fail "the receiving nc failed"
echo "VM-TIME send+recv ${NTBT_MIB} MiB $(elapsed "$t") s"
echo "VM-SHA recv $(sha256sum /tmp/in | cut -d' ' -f1) $(wc -c < /tmp/in) bytes"
rm -f /tmp/in

if [ "$NTBT_LEAD" = 1 ]; then
        vm_wait 300 sh -c "! kill -0 $donep" || vm_fail "the follower never said done"
        echo "VM-CHECK follower said $(cat /tmp/done)"
        unload
        exit 0
fi

if [ "$NTBT_IPERF_S" != 0 ]; then
        for dir in "" -R; do
                _n=0
                until iperf3 -c "$NTBT_PEER" -p 5201 -t "$NTBT_IPERF_S" -f m $dir > /tmp/iperf.log 2>&1; do
                        _n=$((_n + 1))
                        [ "$_n" -lt 20 ] || { cat /tmp/iperf.log; vm_fail "iperf3 $dir"; }
                        sleep 0.5
                done
                echo "VM-IPERF ${dir:-to-lead} $(grep receiver /tmp/iperf.log | tail -n 1)"
        done
fi
echo "done" > /tmp/done
send 5002 /tmp/done || vm_fail "could not tell the lead"
t=$(up)
# shellcheck disable=SC2016 # the inner sh expands it
vm_wait 60 sh -c '! [ "$(cat /sys/class/net/eth0/carrier 2> /dev/null)" = 1 ]' ||
        vm_fail "eth0 kept its carrier for 60 s after the lead unloaded"
echo "VM-CHECK carrier dropped $(elapsed "$t") s after done"
unload
