#!/usr/bin/env bash
# tests/vm/test_vm_pair.sh [REPO [NTBT]]: two QEMU guests on one format-2
# device file, each running Linux's own ntb_hw_ntbt + ntb_transport +
# ntb_netdev: eth0 10.99.0.1/24 and 10.99.0.2/24, ping both ways,
# $NTBT_VM_PAIR_MIB MiB (default 64) each way with nc, sha256 compared on
# the host; a short iperf3 each way; then the lead unloads its modules and the
# follower's carrier must drop.
#
# Variants (NTBT_VM_PAIR_VARIANTS, default "plain offload kdev"):
#   plain    the modules as KSRC/KPATCH give them, ntb_transport $KPARAMS
#   offload  the seed patch (NTBT_VM_SEED_PATCH, default
#            <repo>/../shared/seed/tx_memcpy_offload-linux-6.1.diff) as
#            KPATCH, ntb_transport tx_memcpy_offload=1 $KPARAMS; checks that
#            the parameter reads Y and the copy threads run
#   kdev     guest a runs ntbt instead of the kernel's transport: the
#            ntb_user bridge (kernel/ntb_user) and `ntbt tun` on kdev: as
#            its eth0, against b's ntb_transport + ntb_netdev
# Skipped (77) while kernel/ntb_hw_ntbt does not exist, or when the harness
# cannot be installed.  NTBT_VM_PAIR_IPERF seconds of iperf3 (default 3; 0: none);
# NTBT_VM_PAIR_MKDEV: options of mkdev.py for the device file (default: the
# spec's defaults, e.g. "--remote-timeout-ms 5000" for a loaded host).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

hw_src=${NTBT_VM_HW_SRC:-$VM_REPO/kernel/ntb_hw_ntbt}
[ -f "$hw_src/ntb_hw_ntbt.c" ] || vm_skip "no $hw_src/ntb_hw_ntbt.c yet: the pair test needs the ntb_hw_ntbt driver"
seed=${NTBT_VM_SEED_PATCH:-$VM_REPO/../shared/seed/tx_memcpy_offload-linux-6.1.diff}
variants=${NTBT_VM_PAIR_VARIANTS:-plain offload kdev}
NTBT=${2:-$VM_REPO/build/ntbt}
mib=${NTBT_VM_PAIR_MIB:-64}
iperf_s=${NTBT_VM_PAIR_IPERF:-3}
timeout=${NTBT_VM_PAIR_TIMEOUT:-300}
read -r -a mkdev_args <<< "${NTBT_VM_PAIR_MKDEV:-}"

# NTBT_VM_KEEP=DIR keeps the guests' logs and the device files there.
keep=${NTBT_VM_KEEP:-}
[ -z "$keep" ] || mkdir -p "$keep"
work=$(mktemp -d "${keep:-/tmp}/ntbt-vm-pair.XXXXXX")
bpids=()
cleanup() {
        local p
        for p in "${bpids[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
        for p in "${bpids[@]}"; do wait "$p" 2> /dev/null || true; done
        [ -n "$keep" ] || rm -rf "$work"
}
trap cleanup EXIT
fail() { vm_fail_logs "$work" "$@"; }
# The value after "KEY " on a guest's console, e.g. sha a "VM-SHA sent".
line() { grep -a -o "$2 .*" "$1" | head -n 1 | cut -d' ' -f3- | tr -d '\r'; }

run_pair() { # variant kpatch kparams
        local v=$1 kpatch=$2 kparams=$3 a b rc_a=0 rc_b=0 t stack_a=kernel
        local extra=()
        echo "== pair: $v (KPATCH=${kpatch:-none} KPARAMS=${kparams:-none})"
        KPATCH=$kpatch vm_prepare
        [ -n "$NTBT_VM_HW_KO" ] || fail "prepare built no ntb_hw_ntbt.ko"
        if [ "$v" = kdev ]; then
                [ -n "${NTBT_VM_USER_KO:-}" ] || fail "prepare built no ntb_user.ko"
                [ -n "${NTBT_VM_TUN_KO:-}" ] || fail "prepare found no tun.ko for the guest"
                stack_a=kdev
                extra=(--ko "$NTBT_VM_USER_KO" --ko "$NTBT_VM_TUN_KO")
        fi
        python3 "$VM_DIR/mkdev.py" "${mkdev_args[@]}" "$work/$v.dev" > /dev/null
        "$VM_DIR/mkinitrd" "${extra[@]}" --env "KPARAMS=$kparams" --env "NTBT_MIB=$mib" \
                --env "NTBT_IPERF_S=$iperf_s" "$work/$v.cpio.gz" "$VM_DIR/guest/pair.sh" "$NTBT:/usr/bin/ntbt"
        a=$work/$v-a.log b=$work/$v-b.log
        t=$(vm_now)
        "$VM_DIR/boot" --name "$v-a" --initrd "$work/$v.cpio.gz" --shm "$work/$v.dev" --timeout "$timeout" \
                --log "$a" --append "NTBT_IP=10.99.0.1 NTBT_PEER=10.99.0.2 NTBT_LEAD=1 NTBT_STACK=$stack_a" &
        bpids=($!)
        "$VM_DIR/boot" --name "$v-b" --initrd "$work/$v.cpio.gz" --shm "$work/$v.dev" --timeout "$timeout" \
                --log "$b" --append "NTBT_IP=10.99.0.2 NTBT_PEER=10.99.0.1 NTBT_LEAD=0" &
        bpids+=($!)
        # When one guest fails, its peer would only wait for it: stop both.
        local first rc=0
        wait -n -p first "${bpids[@]}" || rc=$?
        if [ "$first" = "${bpids[0]}" ]; then rc_a=$rc; else rc_b=$rc; fi
        if [ "$rc" != 0 ]; then
                echo "$v: guest $([ "$first" = "${bpids[0]}" ] && echo a || echo b) failed (exit $rc): stopping the other"
                kill -TERM "${bpids[@]}" 2> /dev/null || true
        fi
        if [ "$first" = "${bpids[0]}" ]; then wait "${bpids[1]}" || rc_b=$?; else wait "${bpids[0]}" || rc_a=$?; fi
        bpids=()
        grep -a -h -E '^VM-|ntb_hw_ntbt .*(claimed|link|released)|ntb_user|time=|round-trip' "$a" | sed "s/^/  $v-a: /"
        grep -a -h -E '^VM-|ntb_hw_ntbt .*(claimed|link|released)|time=|round-trip' "$b" | sed "s/^/  $v-b: /"
        [ "$rc_a" = 0 ] || fail "$v: guest a failed (exit $rc_a); log above"
        [ "$rc_b" = 0 ] || fail "$v: guest b failed (exit $rc_b); log above"
        local sa ra sb rb
        sa=$(line "$a" "VM-SHA sent") ra=$(line "$a" "VM-SHA recv")
        sb=$(line "$b" "VM-SHA sent") rb=$(line "$b" "VM-SHA recv")
        if [ -z "$sa" ] || [ "$sa" != "${rb%% *}" ]; then fail "$v: a sent $sa, b received $rb"; fi
        if [ -z "$sb" ] || [ "$sb" != "${ra%% *}" ]; then fail "$v: b sent $sb, a received $ra"; fi
        echo "$v: $mib MiB each way, sha256 equal (a->b ${sa:0:16}..., b->a ${sb:0:16}...)"
        if [ "$v" = offload ]; then
                grep -aq 'VM-PARAM tx_memcpy_offload=Y' "$a" || fail "$v: tx_memcpy_offload does not read Y"
                [ "$(line "$a" "VM-CHECK copy")" != "threads 0" ] || fail "$v: no ntb-txcpy copy thread in a"
        fi
        echo "$v: pair done in $(vm_since "$t") s: a $(line "$a" "VM-TIME send+recv"); b $(line "$b" "VM-TIME send+recv")"
}

for v in $variants; do
        case "$v" in
        plain) run_pair plain "${KPATCH:-}" "${KPARAMS:-}" ;;
        offload)
                [ -f "$seed" ] || {
                        echo "offload variant skipped: no seed patch $seed (NTBT_VM_SEED_PATCH=)"
                        continue
                }
                run_pair offload "$seed" "tx_memcpy_offload=1${KPARAMS:+ $KPARAMS}"
                ;;
        kdev)
                [ -f "$VM_REPO/kernel/ntb_user/ntb_user.c" ] || {
                        echo "kdev variant skipped: no kernel/ntb_user"
                        continue
                }
                run_pair kdev "${KPATCH:-}" "${KPARAMS:-}"
                ;;
        *) fail "unknown variant $v (plain, offload, kdev)" ;;
        esac
done
echo "vm pair: ok"
