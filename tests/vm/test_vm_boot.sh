#!/usr/bin/env bash
# tests/vm/test_vm_boot.sh [REPO [NTBT]]: the real Linux NTB stack boots
# under QEMU.  A guest loads ntb.ko and ntb_transport.ko, sees the ivshmem
# device 1af4:1110 that maps a format-2 device file, and unloads them; then,
# when kernel/ntb_hw_ntbt exists, a guest loads ntb_hw_ntbt.ko on that file:
# it claims port 0 as a remote owner whose heartbeat the host sees advance,
# registers an NTB device (ntb_transport and ntb_netdev then load), and
# releases the port when unloaded, ten load/unload cycles later too; and a
# guest with four hostile BARs (a format-1 file, mw_count 9, random bytes,
# ports in state 7)
# where the driver refuses each with its reason and writes nothing.  Skipped
# (77) when the harness cannot be installed (tests/vm/prepare says why).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

vm_prepare
# NTBT_VM_KEEP=DIR keeps the guests' logs and the device files there.
keep=${NTBT_VM_KEEP:-}
[ -z "$keep" ] || mkdir -p "$keep"
work=$(mktemp -d "${keep:-/tmp}/ntbt-vm-boot.XXXXXX")
trap '[ -n "$keep" ] || rm -rf "$work"' EXIT
fail() { vm_fail_logs "$work" "$@"; }
python3 "$VM_DIR/mkdev.py" "$work/dev" > /dev/null

# ---- the NTB core and transport, no hardware driver ----
cat > "$work/plain.sh" << 'EOF'
set -e
vm_insmod ntb
vm_insmod ntb_transport
grep -q '^ntb_transport ' /proc/modules || vm_fail "ntb_transport is not in /proc/modules"
# 6.1's ntb_netdev refuses to load (ENODEV) while no NTB device exists.
if vm_insmod ntb_netdev; then rmmod ntb_netdev; fi
dev=$(vm_ivshmem)
[ -n "$dev" ] || vm_fail "no ivshmem device 1af4:1110 in /sys/bus/pci/devices"
echo "VM-CHECK ivshmem $dev"
rmmod ntb_transport
rmmod ntb
echo "VM-CHECK unloaded"
EOF
"$VM_DIR/mkinitrd" "$work/plain.cpio.gz" "$work/plain.sh"
"$VM_DIR/boot" --name plain --initrd "$work/plain.cpio.gz" --shm "$work/dev" --timeout 90 \
        --log "$work/plain.log" || fail "the plain guest failed (exit $?)"
grep -q 'VM-CHECK ivshmem /sys/bus/pci/devices/' "$work/plain.log" || fail "no ivshmem check line"
grep -q 'VM-CHECK unloaded' "$work/plain.log" || fail "no unload line"
echo "plain guest: ntb and ntb_transport loaded and unloaded; ivshmem 1af4:1110 visible"

if [ -z "$NTBT_VM_HW_KO" ]; then
        echo "vm boot: ok (no kernel/ntb_hw_ntbt yet, so no driver check)"
        exit 0
fi

# ---- ntb_hw_ntbt on the device file, watched from the host ----
cat > "$work/hw.sh" << 'EOF'
set -e
vm_insmod ntb
vm_insmod ntb_hw_ntbt
ls /sys/bus/ntb/devices | grep -q . || vm_fail "no device on the ntb bus"
echo "VM-CHECK ntb devices: $(ls /sys/bus/ntb/devices | tr '\n' ' ')"
vm_insmod ntb_transport
# Now that an NTB device exists, ntb_netdev loads and makes eth0 (no peer:
# no carrier).
vm_insmod ntb_netdev
vm_wait 10 test -e /sys/class/net/eth0 || vm_fail "ntb_netdev made no eth0"
echo "VM-CHECK eth0 carrier=$(cat /sys/class/net/eth0/carrier 2> /dev/null || echo -)"
# The host watches the heartbeat meanwhile.
sleep 3
rmmod ntb_netdev
rmmod ntb_transport
rmmod ntb_hw_ntbt
# Leaks (Debian's kernel has no kmemleak): load and unload the driver with
# ntb_transport and ntb_netdev on top 10 times; afterwards the kernel's
# ioremap/memremap mappings must be exactly as many as before, and no
# ntb_hw_ntbt debugfs entry may be left; the unreclaimable slab is only
# reported (it moves a little by itself).
maps() { grep -c ioremap /proc/vmallocinfo; }
slab() { sed -n 's/^SUnreclaim: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
m0=$(maps) s0=$(slab)
i=0
while [ $i -lt 10 ]; do
        insmod /lib/modules/ntb_hw_ntbt.ko
        insmod /lib/modules/ntb_transport.ko
        insmod /lib/modules/ntb_netdev.ko
        rmmod ntb_netdev
        rmmod ntb_transport
        rmmod ntb_hw_ntbt
        i=$((i + 1))
done
m1=$(maps) s1=$(slab)
echo "VM-LEAK cycles 10 ioremap $m0 -> $m1 SUnreclaim $s0 -> $s1 kB"
[ "$m1" = "$m0" ] || vm_fail "ioremap mappings $m0 -> $m1 after 10 load/unload cycles"
[ ! -e /sys/kernel/debug/ntb_hw_ntbt ] || vm_fail "ntb_hw_ntbt's debugfs folder outlived the module"
rmmod ntb
echo "VM-CHECK unloaded"
EOF
"$VM_DIR/mkinitrd" "$work/hw.cpio.gz" "$work/hw.sh"
"$VM_DIR/boot" --name hw --initrd "$work/hw.cpio.gz" --shm "$work/dev" --timeout 90 \
        --log "$work/hw.log" --pidfile "$work/hw.pid" &
boot_pid=$!
# Port 0 claimed by a remote owner, its heartbeat advancing.
port0() { python3 "$VM_DIR/mkdev.py" --show "$work/dev" | sed -n 's/^port0 //p'; }
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p"; }
claimed=0
for _ in $(seq 600); do
        p=$(port0)
        if [ "$(field state <<< "$p")" = 1 ] && [ "$(field owner_kind <<< "$p")" = 2 ]; then
                claimed=1
                break
        fi
        kill -0 "$boot_pid" 2> /dev/null || break
        sleep 0.1
done
if [ "$claimed" = 1 ]; then
        h1=$(port0 | field heartbeat)
        sleep 0.6
        h2=$(port0 | field heartbeat)
        echo "host: port 0 claimed by a remote owner; heartbeat $h1 -> $h2 in 0.6 s"
fi
rc=0
wait "$boot_pid" || rc=$?
grep -a 'ntb_hw_ntbt' "$work/hw.log" | sed 's/^/  /'
[ "$rc" = 0 ] || fail "the ntb_hw_ntbt guest failed (exit $rc)"
[ "$claimed" = 1 ] || fail "the host never saw port 0 claimed by a remote owner"
[ "$h2" -gt "$h1" ] || fail "port 0's heartbeat did not advance ($h1 -> $h2)"
grep -q 'claimed port 0 as remote owner' "$work/hw.log" || fail "no 'claimed port 0' line from ntb_hw_ntbt"
grep -q 'VM-CHECK eth0' "$work/hw.log" || fail "no eth0 line"
grep -q 'VM-CHECK unloaded' "$work/hw.log" || fail "no unload line"
p=$(port0)
if [ "$(field state <<< "$p")" != 0 ] || [ "$(field owner_kind <<< "$p")" != 0 ]; then
        fail "port 0 not released after rmmod: $p"
fi
grep -a -o 'VM-LEAK.*' "$work/hw.log" | tr -d '\r'
echo "vm boot: ok (ntb_hw_ntbt claimed, beat and released port 0)"

# ---- hostile BARs: the driver refuses each with a dev_err and writes nothing ----
# Four ivshmem devices in one guest: a format-1 file (an older ntbt), a
# format-2 file with mw_count 9, a file of random bytes, and a good file
# whose two ports hold state 7 (neither free nor claimed: a takeover would
# keep it).
python3 "$VM_DIR/mkdev.py" "$work/f1" > /dev/null
python3 "$VM_DIR/mkdev.py" "$work/mw9" > /dev/null
python3 "$VM_DIR/mkdev.py" "$work/st7" > /dev/null
python3 - "$work/f1" "$work/mw9" "$work/st7" << 'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.write(b"NTBTSHM1")
with open(sys.argv[2], "r+b") as f:
    f.seek(0x10)
    f.write(struct.pack("<I", 9))
with open(sys.argv[3], "r+b") as f:
    for port in (0, 1):  # the state register of each port page
        f.seek(0x1000 + port * 0x1000)
        f.write(struct.pack("<I", 7))
PY
head -c 1M /dev/urandom > "$work/junk"
sums_before=$(cd "$work" && sha256sum f1 mw9 junk st7)
cat > "$work/bad.sh" << 'EOF2'
set -e
vm_insmod ntb
vm_insmod ntb_hw_ntbt
n=$(ls /sys/bus/ntb/devices | wc -l)
echo "VM-CHECK ntb devices $n"
[ "$n" = 0 ] || vm_fail "ntb_hw_ntbt registered a device on a bad BAR"
rmmod ntb_hw_ntbt
rmmod ntb
echo "VM-CHECK unloaded"
EOF2
"$VM_DIR/mkinitrd" "$work/bad.cpio.gz" "$work/bad.sh"
bad_args=()
for f in f1 mw9 junk st7; do
        bad_args+=(-object "memory-backend-file,id=m$f,mem-path=$work/$f,size=$(stat -c %s "$work/$f"),share=on"
                -device "ivshmem-plain,memdev=m$f")
done
"$VM_DIR/boot" --name bad --initrd "$work/bad.cpio.gz" --timeout 90 --log "$work/bad.log" \
        -- "${bad_args[@]}" || fail "the hostile-BAR guest failed (exit $?)"
grep -a 'ntb_hw_ntbt' "$work/bad.log" | grep -a -v insmod | sed 's/^/  /'
grep -aq 'ntbt device is format 1; create it again' "$work/bad.log" || fail "no format-1 refusal"
grep -aq 'bad header: mw_count 9' "$work/bad.log" || fail "no mw_count refusal"
grep -aq 'not an ntbt shm device' "$work/bad.log" || fail "no refusal of the random BAR"
grep -aq 'port 1: state 7 is neither free (0) nor claimed (1)' "$work/bad.log" &&
        grep -aq 'no port can be claimed' "$work/bad.log" || fail "no refusal of the ports in state 7"
[ "$(cd "$work" && sha256sum f1 mw9 junk st7)" = "$sums_before" ] || fail "the driver wrote into a BAR it refused"
echo "vm boot: ok (bad BARs refused, untouched)"
