# shellcheck shell=bash
# Shared by tests/vm/prepare, mkinitrd, boot and the vm tests: sourced, not run.
# The kernel code these scripts build is GPL-2.0 and never enters the
# repository: it is extracted and built at test time under $NTBT_VM_CACHE.

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_REPO=$(cd "$VM_DIR/../.." && pwd)
NTBT_VM_CACHE=${NTBT_VM_CACHE:-$VM_REPO/build-vm}
# Debian 12's kernel: the modules are built against its headers, so the guest
# must boot that very kernel (vermagic and MODVERSIONS CRCs).
VM_KSOURCE_TARBALL=${VM_KSOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
VM_KSOURCE_PKG=linux-source-6.1

vm_say() { echo "ntbt-vm: $*" >&2; }
vm_die() {
        echo "ntbt-vm: error: $*" >&2
        exit 1
}
# NTBT_VM_REQUIRED=1 (CI sets it) turns a skip into a failure, so that a
# green run proves the guests ran.
vm_skip() { # stderr: prepare --env's stdout is captured
        if [ "${NTBT_VM_REQUIRED:-0}" = 1 ]; then
                echo "ntbt-vm: error: NTBT_VM_REQUIRED=1 but the vm tests would skip: $*" >&2
                exit 1
        fi
        echo "skipped: $*" >&2
        exit 77
}
vm_now() { date +%s.%N; }
# vm_fail_logs DIR MESSAGE...: a test's failure: the tail of every DIR/*.log
# (the guests' consoles, the host tools' output), then the message; exit 1.
vm_fail_logs() {
        local dir=$1 f
        shift
        for f in "$dir"/*.log; do
                [ -e "$f" ] || continue
                echo "---- last 80 lines of $(basename "$f") ----" >&2
                tail -n 80 "$f" >&2
        done
        echo "FAIL: $*" >&2
        exit 1
}
# Seconds since $1 (a vm_now value), one decimal.
vm_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
vm_sha() { sha256sum | cut -c1-16; }

# The kernel release of the installed linux-headers-amd64 metapackage's
# dependency (6.1.0-57-amd64), or $KVER when the caller gives one.
vm_kver() {
        if [ -n "${KVER:-}" ]; then
                echo "$KVER"
                return
        fi
        dpkg-query -W -f='${Depends}' linux-headers-amd64 2> /dev/null |
                sed -n 's/.*linux-headers-\([0-9][^ ,]*-amd64\).*/\1/p'
}

# The kernel build directory for $1 (a kernel release), or nothing.
vm_kbuild() {
        local d
        for d in "/usr/src/linux-headers-$1" "/lib/modules/$1/build"; do
                [ -f "$d/Makefile" ] && [ -f "$d/Module.symvers" ] && {
                        echo "$d"
                        return
                }
        done
        return 0
}

# Make sure what the harness needs is installed.  As root, install what is
# missing (saying what); otherwise skip the caller (exit 77), naming the
# command that would install it.  $1: "source" when linux-source is needed.
vm_need() {
        local pkgs=() cmd kver
        local -A seen=()
        _vm_add() { [ -n "${seen[$1]:-}" ] || { seen[$1]=1; pkgs+=("$1"); }; }
        for cmd in qemu-system-x86_64:qemu-system-x86 iperf3:iperf3 python3:python3 \
                xz:xz-utils make:make patch:patch objcopy:binutils gcc-12:gcc-12 \
                dpkg-deb:dpkg flock:util-linux modinfo:kmod; do
                command -v "${cmd%%:*}" > /dev/null 2>&1 || _vm_add "${cmd#*:}"
        done
        # The guest's /bin/busybox must be the static one.
        if ! dpkg-query -W -f='${Status}' busybox-static 2> /dev/null | grep -q 'ok installed'; then
                _vm_add busybox-static
        fi
        kver=$(vm_kver)
        if [ -z "$kver" ] || [ -z "$(vm_kbuild "$kver")" ]; then
                _vm_add linux-headers-amd64
                # An installed metapackage whose dependency went missing.
                [ -n "$kver" ] && _vm_add "linux-headers-$kver"
        fi
        if [ "${1:-}" = source ] && [ ! -f "$VM_KSOURCE_TARBALL" ]; then
                _vm_add "$VM_KSOURCE_PKG"
        fi
        [ ${#pkgs[@]} = 0 ] && return 0
        local install=(apt-get install -y --no-install-recommends "${pkgs[@]}")
        if [ "$(id -u)" != 0 ]; then
                vm_skip "the VM harness needs packages that are missing: ${pkgs[*]}; as root: ${install[*]}"
        fi
        command -v apt-get > /dev/null || vm_skip "missing ${pkgs[*]} and no apt-get to install them"
        vm_say "installing: ${pkgs[*]}"
        # apt-get update only when the lists do not know a package.
        if ! DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2; then
                vm_say "apt-get install failed; apt-get update, then again"
                apt-get update >&2 || vm_die "apt-get update failed"
                DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2 || vm_die "could not install: ${pkgs[*]}"
        fi
}

# KVM only when it works: these machines' /dev/kvm is PVM (kvm_pvm), on which
# a stock kernel crawls or dies on cmpxchg16b.  NTBT_VM_ACCEL=kvm|tcg forces.
vm_accel() {
        case "${NTBT_VM_ACCEL:-auto}" in
        kvm | tcg) echo "$NTBT_VM_ACCEL" ;;
        *)
                if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] &&
                        { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
                        echo kvm
                else
                        echo tcg
                fi
                ;;
        esac
}

# Run tests/vm/prepare --env (with the caller's KSRC/KPATCH) and import its
# variables; exits 77 when prepare skipped, 1 when it failed.
vm_prepare() {
        local out rc=0
        out=$("$VM_DIR/prepare" --env) || rc=$?
        [ "$rc" = 77 ] && exit 77
        [ "$rc" = 0 ] || vm_die "tests/vm/prepare failed (exit $rc)"
        eval "$out"
}
