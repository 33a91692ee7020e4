# shellcheck shell=sh
# The guest side of tests/vm/test_vm_host.sh (busybox sh, /guest.sh): Linux's
# own ntb_transport + ntb_netdev on ntb_hw_ntbt, against `ntbt tun` on the
# host.  Environment (kernel command line): NTBT_PHASE, NTBT_IP, NTBT_PEER;
# KPARAMS (ntb_transport parameters).  Every step prints a "VM-..." line
# that the host waits for.
#
#   data    ping the host; receive the host's data on port 5001 while
#           sending NTBT_MIB MiB of /dev/urandom to the host's port 5002
#           (sha256 of both printed); an iperf3 server; then stream zeros to
#           the host's port 5003 until the host kills this guest's QEMU.
#   return  carrier and ping (the host kept running after the first guest
#           died); then wait for the carrier to drop (the host killed
#           `ntbt tun`) and to come back (the host restarted it); ping
#           again; when the host says "done" on port 5004, unload every
#           module.
set -e
: "${NTBT_PHASE:?}" "${NTBT_IP:?}" "${NTBT_PEER:?}" "${NTBT_MIB:=64}"
up() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }'; }
carrier() { cat /sys/class/net/eth0/carrier 2> /dev/null || echo 0; }

vm_insmod ntb
vm_insmod ntb_hw_ntbt
# shellcheck disable=SC2086 # KPARAMS is a list of words
vm_insmod ntb_transport ${KPARAMS:-}
vm_insmod ntb_netdev
vm_wait 10 test -e /sys/class/net/eth0 || vm_fail "ntb_netdev made no eth0"
ip link set eth0 up
ip addr add "$NTBT_IP/24" dev eth0
echo "VM-MTU $(cat /sys/class/net/eth0/mtu)"

t=$(up)
vm_wait 120 vm_carrier eth0 || vm_fail "no carrier on eth0 within 120 s"
echo "VM-TIME carrier $(elapsed "$t") s"
vm_wait 60 ping -c 1 -W 1 "$NTBT_PEER" || vm_fail "the host ($NTBT_PEER) does not answer ping"
ping -c 3 "$NTBT_PEER" | tail -n 2
echo "VM-PING ok"

send() { vm_send "$NTBT_PEER" "$@"; } # PORT FILE

if [ "$NTBT_PHASE" = data ]; then
        dd if=/dev/urandom of=/tmp/out bs=1M count="$NTBT_MIB" 2> /dev/null
        echo "VM-SHA sent $(sha256sum /tmp/out | cut -d' ' -f1)"
        # A listener's stdin must not reach EOF (busybox nc would half-close).
        mkfifo /tmp/hold
        exec 3<> /tmp/hold
        nc -l -p 5001 < /tmp/hold > /tmp/in &
        rx=$!
        iperf3 -s -p 5201 > /tmp/iperf-s.log 2>&1 &
        echo "VM-LISTENING"
        t=$(up)
        send 5002 /tmp/out || vm_fail "could not send to the host"
        wait "$rx" || vm_fail "the receiving nc failed"
        echo "VM-TIME both ways ${NTBT_MIB} MiB $(elapsed "$t") s"
        echo "VM-SHA recv $(sha256sum /tmp/in | cut -d' ' -f1) $(wc -c < /tmp/in) bytes"
        rm -f /tmp/in /tmp/out
        # The host runs iperf3 now, then listens on 5003 and kills us
        # mid-stream: this never returns.
        _n=0
        until [ -e /tmp/never ]; do
                nc "$NTBT_PEER" 5003 < /dev/zero 2> /dev/null || true
                _n=$((_n + 1))
                [ "$_n" -lt 600 ] || vm_fail "the host never took the stream"
                sleep 0.5
        done
fi

# return
echo "VM-UP"
t=$(up)
# shellcheck disable=SC2016 # the inner sh expands it
vm_wait 60 sh -c '[ "$(cat /sys/class/net/eth0/carrier 2> /dev/null)" != 1 ]' ||
        vm_fail "eth0 kept its carrier for 60 s"
echo "VM-LOST after $(elapsed "$t") s"
vm_wait 120 vm_carrier eth0 || vm_fail "the carrier did not come back within 120 s"
vm_wait 60 ping -c 1 -W 1 "$NTBT_PEER" || vm_fail "the restarted host does not answer ping"
echo "VM-BACK carrier $(carrier), ping ok"
# Stay up until the host has checked its side and says so on port 5004.
mkfifo /tmp/hold4
exec 4<> /tmp/hold4
nc -l -p 5004 < /tmp/hold4 > /tmp/done &
donep=$!
echo "VM-WAITING"
vm_wait 120 sh -c "! kill -0 $donep" || vm_fail "the host never said done"
echo "VM-CHECK host said $(cat /tmp/done)"
vm_unload_ntb
