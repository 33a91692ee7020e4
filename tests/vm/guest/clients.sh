# shellcheck shell=sh
# The guest side of tests/vm/test_vm_clients.sh (busybox sh, /guest.sh): the
# kernel's own NTB test clients (ntb_tool, ntb_pingpong, ntb_perf) on
# ntb_hw_ntbt.  NTBT_PHASE (kernel command line) picks the part:
#
#   tool  one guest; the other port is a process on the host
#         (tests/vm/hostport.py).  Through ntb_tool's debugfs: link state,
#         scratchpads and doorbells both ways, doorbell mask, inbound window 0
#         (mw_trans0/mw0) and outbound window 0 (peer_mw_trans0/peer_mw0).
#         The host answers through scratchpad 15 of this port ("step N":
#         wait until it reads N) after it has checked what this guest did.
#   pair  two guests on one file.  ntb_pingpong (its count must reach
#         NTBT_PP_COUNT), then ntb_perf (use_dma=0, 2^NTBT_PERF_ORDER bytes
#         each way at once).  The host sequences both guests through a second
#         serial port (/dev/ttyS1, a FIFO on the host): a guest waits for the
#         host's word before every step that needs the peer in a known state.
#
# Every line the host waits for ("VM-...") goes to /dev/kmsg: one printk
# record is never cut by other console output.  Every wait is bounded; a
# failure prints the driver's and the client's debugfs state (VM-DIAG).
set -e
: "${NTBT_PHASE:?}" "${NTBT_PP_COUNT:=10}" "${NTBT_PP_DELAY_MS:=100}" "${NTBT_PERF_ORDER:=26}"
: "${NTBT_WAIT_S:=60}"
up() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "$*" > /dev/kmsg; }
hex() { printf '0x%x' "$1"; }
sha() { sha256sum "$@" | cut -d' ' -f1; }

pci=$(basename "$(vm_ivshmem | head -n 1)")
[ -n "$pci" ] || vm_fail "no ivshmem device"
D=/sys/kernel/debug
I=$D/ntb_hw_ntbt/$pci/info
info() { sed -n "s/^$1 //p" "$I"; }

diag() {
        echo "VM-DIAG $*"
        for f in "$I" "$D"/ntb_perf/*/info "$D"/ntb_pingpong/*/count; do
                [ -e "$f" ] || continue
                echo "== $f"
                cat "$f" 2>&1
        done
        if [ -d "$D/ntb_tool/$pci" ]; then
                for f in port db db_mask peer0/link spad15; do
                        echo "== ntb_tool/$f: $(cat "$D/ntb_tool/$pci/$f" 2>&1)"
                done
        fi
        vm_fail "$*"
}
expect() { # WHAT GOT WANT
        [ "$2" = "$3" ] || diag "$1: got '$2', expected '$3'"
}

vm_insmod ntb
vm_insmod ntb_hw_ntbt
[ -e "$I" ] || diag "ntb_hw_ntbt made no $I"

if [ "$NTBT_PHASE" = tool ]; then
        vm_insmod ntb_tool
        T=$D/ntb_tool/$pci
        P=$T/peer0
        [ -d "$P" ] || diag "ntb_tool made no $P"
        is_step() { [ "$(cat "$T/spad15")" = "$1" ]; }
        step() { # N: the host has written N into our scratchpad 15
                vm_wait "$NTBT_WAIT_S" is_step "$(hex "$1")" || diag "no step $1 from the host within $NTBT_WAIT_S s"
        }
        is_link() { [ "$(cat "$P/link")" = "$1" ]; }
        # PID sleeps in write(2) (x86-64 syscall 1): the db_event writer
        # checked its condition and waits for a callback.
        in_write() { read -r _nr _ < "/proc/$1/syscall" && [ "$_nr" = 1 ]; }

        say "VM-PORT $(cat "$T/port") peer $(cat "$P/port") db_valid_mask $(cat "$T/db_valid_mask")"
        expect "link before our link_enable" "$(cat "$P/link")" N
        step 1
        t=$(up)
        echo Y > "$T/link"
        vm_wait "$NTBT_WAIT_S" is_link Y || diag "no link within $NTBT_WAIT_S s of link Y"
        say "VM-LINK up after $(elapsed "$t") s"

        # Scratchpads: ours -> the host's, then the host's -> ours.
        echo 0x11223344 > "$P/spad0"
        echo 0xdeadbeef > "$P/spad7"
        expect "peer0/spad0 read back" "$(cat "$P/spad0")" 0x11223344
        say "VM-SPAD out 0x11223344 0xdeadbeef"
        step 2
        say "VM-SPAD in $(cat "$T/spad3") $(cat "$T/spad12")"

        # Doorbells: ring the host; then one bit masked, one not.
        expect "db at start" "$(cat "$T/db")" 0x0
        echo 's 0x5' > "$T/peer_db"
        say "VM-DB out 0x5"
        echo 's 0x4' > "$T/db_mask"
        expect "db_mask" "$(cat "$T/db_mask")" 0x4
        # db_event returns only when ntb_tool's db_event callback finds db
        # equal to the value: the driver must not call it for a masked bit,
        # and must call it once the bit is unmasked.
        ev0=$(info db_events)
        rm -f /tmp/dbev
        (if echo 0x4 > "$T/db_event"; then echo ok; else echo fail; fi > /tmp/dbev) &
        vm_wait 30 in_write $! || diag "the db_event writer never blocked (db $(cat "$T/db"))"
        say "VM-DB armed mask 0x4"
        step 3
        vm_wait 10 sh -c "[ \"\$(cat $T/db)\" = 0x4 ]" || diag "the host's doorbell 0x4 never showed in db"
        sleep 1
        [ ! -s /tmp/dbev ] || diag "a masked doorbell (0x4) reached ntb_tool's db_event"
        expect "db_events while masked" "$(info db_events)" "$ev0"
        echo 'c 0x4' > "$T/db_mask"
        vm_wait 10 test -s /tmp/dbev || diag "unmasking 0x4 did not deliver the pending doorbell"
        expect "db_event write" "$(cat /tmp/dbev)" ok
        ev1=$(info db_events)
        rm -f /tmp/dbev
        (if echo 0x6 > "$T/db_event"; then echo ok; else echo fail; fi > /tmp/dbev) &
        vm_wait 30 in_write $! || diag "the db_event writer never blocked (db $(cat "$T/db"))"
        say "VM-DB armed 0x6 (events $ev0 -> $ev1 on unmask)"
        step 4
        vm_wait 10 test -s /tmp/dbev || diag "the host's doorbell 0x2 did not reach ntb_tool's db_event"
        expect "db_event write" "$(cat /tmp/dbev)" ok
        expect "db" "$(cat "$T/db")" 0x6
        echo 'c 0x6' > "$T/db"
        expect "db after clear" "$(cat "$T/db")" 0x0
        expect "db_mask at the end" "$(cat "$T/db_mask")" 0x0
        say "VM-DB in 0x6 cleared (events $ev1 -> $(info db_events))"

        # Memory windows: inbound 0 (the host writes, we read; we write, the
        # host reads) and outbound 0 (we write, the host reads its inbound 0).
        echo 16384 > "$P/mw_trans0" || diag "mw_trans0 16384 refused"
        [ -e "$P/mw0" ] || diag "no peer0/mw0 after mw_trans0"
        echo "0:16384" > "$P/peer_mw_trans0" || diag "peer_mw_trans0 refused"
        [ -e "$P/peer_mw0" ] || diag "no peer0/peer_mw0 after peer_mw_trans0"
        tr -d '\t' < "$P/mw_trans0" | grep -E '^(DMA Address|Window Size)'
        tr -d '\t' < "$P/peer_mw_trans0" | grep -E '^(Phys Address|Window Size)'
        say "VM-MW ready xlat_size0 $(info xlat_size0) windows_busy $(info windows_busy)"
        step 5
        say "VM-MW in $(head -c 16384 "$P/mw0" | sha)"
        dd if=/dev/urandom of=/tmp/out bs=16384 count=1 2> /dev/null
        dd if=/tmp/out of="$P/peer_mw0" bs=16384 count=1 conv=notrunc 2> /dev/null || diag "write to peer_mw0 failed"
        say "VM-MW out $(sha /tmp/out) readback $(head -c 16384 "$P/peer_mw0" | sha)"
        dd if=/dev/urandom of=/tmp/loc bs=4096 count=1 2> /dev/null
        dd if=/tmp/loc of="$P/mw0" bs=4096 count=1 conv=notrunc 2> /dev/null || diag "write to mw0 failed"
        say "VM-MW local $(sha /tmp/loc)"
        step 6
        echo 0 > "$P/mw_trans0"
        echo "0:0" > "$P/peer_mw_trans0"
        if [ -e "$P/mw0" ] || [ -e "$P/peer_mw0" ]; then diag "the windows' files outlived their teardown"; fi
        expect "xlat_size0 after mw_trans0 0" "$(info xlat_size0)" 0x0
        expect "windows_busy after mw_trans0 0" "$(info windows_busy)" 0x0
        say "VM-MW cleared"

        # Link: the host disables and enables its side; then we disable ours.
        step 7
        vm_wait 10 is_link N || diag "the link stayed up after the host's link_enabled 0"
        say "VM-LINK peer-down"
        step 8
        vm_wait 30 is_link Y || diag "the link did not come back after the host's link_enabled 1"
        say "VM-LINK back"
        step 9
        echo N > "$T/link"
        vm_wait 10 is_link N || diag "the link stayed up after our link N"
        say "VM-LINK local-down"
        step 10
        rmmod ntb_tool
elif [ "$NTBT_PHASE" = pair ]; then
        # The host's words arrive on the second serial port.
        stty -F /dev/ttyS1 raw -echo
        exec 5< /dev/ttyS1
        ctl() { # WORD SECS
                _l=
                # shellcheck disable=SC3045 # busybox ash has read -t
                read -r -t "$2" _l <&5 || diag "no '$1' from the host within $2 s"
                _l=$(echo "$_l" | tr -d '\r')
                [ "$_l" = "$1" ] || diag "the host said '$_l', expected '$1'"
        }
        is_up() { [ "$(info link_up)" = 1 ]; }
        say "VM-PORT $(info port)"

        vm_insmod ntb_pingpong delay_ms="$NTBT_PP_DELAY_MS"
        C=$D/ntb_pingpong/$pci/count
        [ -e "$C" ] || diag "ntb_pingpong made no $C"
        t=$(up)
        vm_wait "$NTBT_WAIT_S" is_up || diag "pingpong: no link within $NTBT_WAIT_S s"
        say "VM-PP link after $(elapsed "$t") s"
        t=$(up)
        vm_wait "$NTBT_WAIT_S" sh -c "[ \$(cat $C) -ge $NTBT_PP_COUNT ]" ||
                diag "pingpong: count $(cat "$C") < $NTBT_PP_COUNT after $NTBT_WAIT_S s"
        c1=$(cat "$C")
        say "VM-PP count $c1 after $(elapsed "$t") s"
        ctl pp-stop 120
        c2=$(cat "$C")
        [ "$c2" -ge "$c1" ] || diag "pingpong: count went back from $c1 to $c2"
        rmmod ntb_pingpong
        say "VM-PP unloaded at count $c2"

        ctl perf 120
        vm_insmod ntb_perf use_dma=0 total_order="$NTBT_PERF_ORDER"
        F=$D/ntb_perf/$pci
        [ -e "$F/run" ] || diag "ntb_perf made no $F/run"
        # Ready: link up, our inbound buffer set up for the peer, and the
        # peer's translation received (init done).
        perf_ready() {
                tr -d '\t' < "$F/info" > /tmp/pinfo
                grep -q '^Link status: up' /tmp/pinfo && grep -q '^In buffer size' /tmp/pinfo &&
                        ! grep -q '^Out buffer xlat 0x0000000000000000' /tmp/pinfo
        }
        t=$(up)
        vm_wait "$NTBT_WAIT_S" perf_ready || diag "ntb_perf: not ready within $NTBT_WAIT_S s"
        grep -E 'Local port|Out buff phys|Out buffer size|In buffer size|In buffer xlat' /tmp/pinfo
        say "VM-PERF ready after $(elapsed "$t") s xlat_size0 $(info xlat_size0) xlat_size1 $(info xlat_size1)"
        ctl run 120
        t=$(up)
        rm -f /tmp/perf.done
        (if echo 0 > "$F/run"; then echo ok; else echo fail; fi > /tmp/perf.done) &
        runp=$!
        vm_wait 180 test -s /tmp/perf.done || {
                kill "$runp" 2> /dev/null || true
                diag "ntb_perf: run did not finish within 180 s"
        }
        expect "ntb_perf run" "$(cat /tmp/perf.done)" ok
        res=$(grep 'copied' "$F/run" | tr -d '\r') || diag "ntb_perf: no result in $F/run: $(cat "$F/run")"
        echo "$res"
        # "0: copied BYTES bytes in USECS usecs, MBPS MBytes/s"
        # shellcheck disable=SC2086 # split into words on purpose
        set -- $res
        expect "ntb_perf bytes copied" "$3" $((1 << NTBT_PERF_ORDER))
        [ "$8" -gt 0 ] 2> /dev/null || diag "ntb_perf: throughput '$8' MBytes/s"
        say "VM-PERF result $3 bytes in $6 usecs, $8 MBytes/s (run took $(elapsed "$t") s)"
        ctl unload 120
        rmmod ntb_perf
else
        vm_fail "NTBT_PHASE=$NTBT_PHASE: tool or pair"
fi
# For the record: how the link held up (a timeout is a peer judged gone).
say "VM-STATS $(for k in link_changes peer_restarts peer_timeouts bounces max_poll_gap_ms db_events \
        bad_peer_state refused_trans bad_dma_free; do printf '%s=%s ' "$k" "$(info "$k")"; done)"
rmmod ntb_hw_ntbt
rmmod ntb
say "VM-CHECK unloaded"
