# Helpers for guest scripts (/lib/ntbt-vm.sh in the initramfs; busybox sh).
# /init sources this before /guest.sh.

# The sysfs folders of the ivshmem-plain devices (PCI 1af4:1110).
vm_ivshmem() {
        for d in /sys/bus/pci/devices/*; do
                [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1110 ] && echo "$d"
        done
        return 0
}

# Turn on memory decoding of every ivshmem device (for reading BAR 2 by hand).
vm_pci_enable() {
        for d in $(vm_ivshmem); do
                [ "$(cat "$d/enable")" = 1 ] || echo 1 > "$d/enable"
        done
}

vm_fail() {
        echo "vm: FAIL: $*"
        exit 1
}

# vm_insmod NAME [PARAM=VALUE...]: load /lib/modules/NAME.ko, say how it went.
vm_insmod() {
        _m=$1
        shift
        if insmod "/lib/modules/$_m.ko" "$@"; then
                echo "vm: insmod $_m $*: ok"
        else
                _rc=$?
                echo "vm: insmod $_m $*: failed ($_rc)"
                return $_rc
        fi
}

# vm_wait SECS CMD...: run CMD every 0.1 s until it succeeds; 1 once SECS
# of the guest's uptime have passed (a count of tries would stretch when the
# host is loaded).
vm_wait() {
        read -r _up _ < /proc/uptime
        _end=$((${_up%.*} + $1))
        shift
        while :; do
                "$@" > /dev/null 2>&1 && return 0
                read -r _up _ < /proc/uptime
                [ "${_up%.*}" -lt "$_end" ] || return 1
                sleep 0.1
        done
}

# vm_carrier IFACE: the interface has its carrier.
vm_carrier() { [ "$(cat "/sys/class/net/$1/carrier" 2> /dev/null)" = 1 ]; }

# vm_send HOST PORT FILE: send FILE to HOST:PORT with nc, connecting until the
# peer listens (up to 60 s); busybox nc returns once the receiver has closed,
# i.e. has everything.
vm_send() {
        _n=0
        until nc "$1" "$2" < "$3" 2> /tmp/nc.err; do
                _n=$((_n + 1))
                [ "$_n" -lt 120 ] || { cat /tmp/nc.err; return 1; }
                sleep 0.5
        done
}

# vm_unload_ntb: eth0 down, then ntb_netdev, ntb_transport, ntb_hw_ntbt and
# ntb out, in that order; says so on the console.
vm_unload_ntb() {
        ip link set eth0 down 2> /dev/null || true
        rmmod ntb_netdev
        rmmod ntb_transport
        rmmod ntb_hw_ntbt
        rmmod ntb
        echo "VM-CHECK unloaded"
}
