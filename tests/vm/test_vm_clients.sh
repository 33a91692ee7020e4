#!/usr/bin/env bash
# tests/vm/test_vm_clients.sh [REPO [NTBT]]: ntb_hw_ntbt against the kernel's
# own NTB test clients (guest/clients.sh), every register the host can see
# cross-checked with `ntbt dev show --json`:
#   1. tool: ntb_tool in one guest (it takes port 1, where the driver's
#      dma_alloc hands ntb_tool window 0 first: on port 0 it hands out window
#      1 first, for ntb_perf, and mw_trans0 alone is refused); port 0 held by
#      a host process (hostport.py, tests/spec/shmdev.py: the spec).  Link up
#      only once both sides enable it; scratchpads both ways; doorbells both
#      ways, a masked doorbell held until unmasked (ntb_tool's db_event);
#      inbound window 0 (mw_trans0 sets the guest port's xlat_size[0]; host
#      data read in the guest, guest data read on the host) and outbound
#      window 0 (peer_mw0 lands in the host port's inbound window 0, read
#      from the file at window_offset + (0 * mw_count + 0) * mw_size); link
#      down and up from the host, then down from the guest; clean unload.
#   2. pingpong: two guests, ntb_pingpong; the count reaches
#      $NTBT_VM_CLIENTS_PP_COUNT (10) on both sides.
#   3. perf: the same guests, ntb_pingpong unloaded, ntb_perf use_dma=0; both
#      run 2^$NTBT_VM_CLIENTS_PERF_ORDER bytes (26: 64 MiB) at once; each
#      result file must report all bytes copied at a non-zero rate (printed;
#      TCG, so not asserted further).  Every module is unloaded.
# The host sequences the two guests through a second serial port each (a
# FIFO pair, QEMU -chardev pipe).  NTBT_VM_CLIENTS_SMP: vCPUs of each guest
# (default 1; boot makes TCG's atomics host atomics either way).
# The guests' boot fails on any WARNING/BUG/Oops/Call Trace in their logs.
# Skipped (77) while kernel/ntb_hw_ntbt does not exist, or when the harness
# cannot be installed.  NTBT_VM_CLIENTS_MKDEV: options of mkdev.py for the
# device files (e.g. "--remote-timeout-ms 5000"); NTBT_VM_CLIENTS_PHASES:
# "tool pair" (default) or one of them; NTBT_VM_KEEP=DIR keeps logs and files.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NTBT=${2:-$VM_REPO/build/ntbt}
hw_src=${NTBT_VM_HW_SRC:-$VM_REPO/kernel/ntb_hw_ntbt}
[ -f "$hw_src/ntb_hw_ntbt.c" ] || vm_skip "no $hw_src/ntb_hw_ntbt.c yet: the clients test needs the ntb_hw_ntbt driver"
[ -x "$NTBT" ] || vm_die "no ntbt command at $NTBT (make)"
phases=${NTBT_VM_CLIENTS_PHASES:-tool pair}
pp_count=${NTBT_VM_CLIENTS_PP_COUNT:-10}
perf_order=${NTBT_VM_CLIENTS_PERF_ORDER:-26}
timeout=${NTBT_VM_CLIENTS_TIMEOUT:-300}
smp=${NTBT_VM_CLIENTS_SMP:-1}
read -r -a mkdev_args <<< "${NTBT_VM_CLIENTS_MKDEV:-}"

vm_prepare
[ -n "$NTBT_VM_HW_KO" ] || vm_die "prepare built no ntb_hw_ntbt.ko"

keep=${NTBT_VM_KEEP:-}
[ -z "$keep" ] || mkdir -p "$keep"
work=$(mktemp -d "${keep:-/tmp}/ntbt-vm-clients.XXXXXX")
bpids=() blogs=() hpid=''
cleanup() {
        local p
        for p in "${bpids[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
        for p in "${bpids[@]}"; do wait "$p" 2> /dev/null || true; done
        if [ -n "$hpid" ]; then
                kill -TERM "$hpid" 2> /dev/null || true
                wait "$hpid" 2> /dev/null || true
        fi
        [ -n "$keep" ] || rm -rf "$work"
}
trap cleanup EXIT
fail() { vm_fail_logs "$work" "$@"; }
# wait_for LOG PATTERN SECS: until a guest's console shows PATTERN; fails
# at once when any guest ended without success.
wait_for() {
        local n=$(($3 * 10)) i
        while ! grep -aq -- "$2" "$1" 2> /dev/null; do
                n=$((n - 1))
                [ "$n" -gt 0 ] || fail "no '$2' on $(basename "$1") within $3 s"
                for i in "${!bpids[@]}"; do
                        kill -0 "${bpids[$i]}" 2> /dev/null ||
                                grep -aq 'NTBT-VM-RESULT rc=0' "${blogs[$i]}" ||
                                fail "$(basename "${blogs[$i]}" .log) ended before '$2' on $(basename "$1")"
                done
                sleep 0.1
        done
}
# The rest of the first console line that has KEY (one or more words).
line() { grep -a -o -- "$2 .*" "$1" | head -n 1 | cut -c$((${#2} + 2))- | tr -d '\r'; }
boot() { # NAME LOG APPEND [QEMU-ARGS...]
        local name=$1 log=$2 append=$3
        shift 3
        "$VM_DIR/boot" --name "$name" --initrd "$work/guest.cpio.gz" --shm "$dev" --smp "$smp" \
                --timeout "$timeout" --log "$log" --append "$append" -- "$@" &
        bpids+=($!)
        blogs+=("$log")
}
# Wait for every guest; fail unless each exits 0.
wait_guests() {
        local p rc
        for p in "${bpids[@]}"; do
                rc=0
                wait "$p" || rc=$?
                [ "$rc" = 0 ] || fail "a guest failed (boot exit $rc); logs above"
        done
        bpids=() blogs=()
}
# show_check LABEL EXPR...: `ntbt dev show --json`; each EXPR, Python over d
# (the whole object), p0 and p1 (its ports), must be true.
show_check() {
        local label=$1
        shift
        "$NTBT" dev show "$dev" --json > "$work/show.json" || fail "$label: ntbt dev show failed"
        python3 - "$work/show.json" "$@" << 'EOF' || fail "$label: ntbt dev show disagrees (above)"
import json
import sys
d = json.load(open(sys.argv[1]))
p0, p1 = d["ports"]
bad = [e for e in sys.argv[2:] if not eval(e)]
for e in bad:
    print("  ntbt dev show: NOT", e, file=sys.stderr)
if bad:
    for p in (p0, p1):
        p.pop("transport", None)
        print("  port", p["port"], json.dumps(p), file=sys.stderr)
    sys.exit(1)
EOF
        echo "  ntbt dev show ($label): $# checks ok"
}

# hostport.py through two FIFOs, both held open read-write here: neither
# side's open blocks, and a dead hostport times the read out.
hp_start() {
        mkfifo "$work/hp.in" "$work/hp.out"
        exec {hpw}<> "$work/hp.in" {hpr}<> "$work/hp.out"
        python3 "$VM_DIR/hostport.py" "$dev" 0 < "$work/hp.in" > "$work/hp.out" 2> "$work/hostport.err" &
        hpid=$!
        local r
        read -r -t 30 -u "$hpr" r || fail "hostport.py did not start: $(cat "$work/hostport.err")"
        [ "${r%% *}" = ok ] || fail "hostport.py: $r"
        echo "host process (pid $hpid): $r"
}
# hp CMD...: one command to hostport.py; prints the value of its "ok" answer.
hp() {
        local r
        echo "$*" >&"$hpw"
        read -r -t 30 -u "$hpr" r || fail "hostport.py: no answer to '$*'"
        [ "${r%% *}" = ok ] || fail "hostport.py: '$*': $r"
        r=${r#ok}
        echo "${r# }"
}
hp_expect() { # WANT CMD...
        local want=$1 got
        shift
        got=$(hp "$@")
        [ "$got" = "$want" ] || fail "host port: '$*' gave '$got', expected '$want'"
}
# step N: the guest waits until its scratchpad 15 reads N.
step() { hp set_peer_spad 15 "$1" > /dev/null; }

"$VM_DIR/mkinitrd" --env "NTBT_PP_COUNT=$pp_count" --env "NTBT_PERF_ORDER=$perf_order" \
        "$work/guest.cpio.gz" "$VM_DIR/guest/clients.sh"

phase_tool() {
        local t0 log=$work/tool.log hin gin mws wo mwc sent got
        echo "== 1. ntb_tool in a guest, port 0 held by a host process"
        dev=$work/tool.dev
        python3 "$VM_DIR/mkdev.py" "${mkdev_args[@]}" "$dev" > /dev/null
        hp_start
        t0=$(vm_now)
        boot tool "$log" "NTBT_PHASE=tool"
        wait_for "$log" "VM-PORT" 120
        echo "guest: $(line "$log" VM-PORT)"
        case "$(line "$log" VM-PORT)" in "1 peer 0 "*) ;; *) fail "the guest should hold port 1, its peer port 0" ;; esac
        hp_expect 0x0 link
        show_check "guest's link not enabled" 'not d["link_up"]' 'p1["state"] == 1' 'p1["owner_kind"] == "remote"' \
                'p1["link_enabled"] == 0' 'p0["link_enabled"] == 1'
        step 1
        wait_for "$log" "VM-LINK up" 60
        echo "link: $(line "$log" "VM-LINK up")"
        hp_expect 0x1 link
        show_check link 'd["link_up"]' 'p0["owner_kind"] == "process"' 'p1["owner_kind"] == "remote"' \
                'p1["state"] == 1' 'p1["link_enabled"] == 1' 'p1["pid"] == 0' 'p0["link_enabled"] == 1'

        wait_for "$log" "VM-SPAD out" 60
        hp_expect 0x11223344 spad 0
        hp_expect 0xdeadbeef spad 7
        hp set_peer_spad 3 0xcafef00d > /dev/null
        hp set_peer_spad 12 0x5a5a0001 > /dev/null
        show_check spads 'p0["spad"][0] == 0x11223344' 'p0["spad"][7] == 0xdeadbeef' \
                'p1["spad"][3] == 0xcafef00d' 'p1["spad"][12] == 0x5a5a0001'
        step 2
        wait_for "$log" "VM-SPAD in" 60
        [ "$(line "$log" "VM-SPAD in")" = "0xcafef00d 0x5a5a0001" ] ||
                fail "the guest read its scratchpads 3, 12 as $(line "$log" "VM-SPAD in")"
        echo "scratchpads: guest -> host 0x11223344 0xdeadbeef, host -> guest 0xcafef00d 0x5a5a0001"

        wait_for "$log" "VM-DB out" 60
        hp_expect 0x5 db
        show_check "guest's doorbell" 'p0["db"] == 5' 'p0["db_seq"] >= 1'
        hp db_clear 0x5 > /dev/null
        hp_expect 0x0 db
        wait_for "$log" "VM-DB armed mask" 60
        show_check "guest's db_mask" 'p1["db_mask"] == 4' 'p1["db"] == 0'
        hp ring 0x4 > /dev/null
        show_check "masked doorbell" 'p1["db"] == 4' 'p1["db_seq"] >= 1'
        step 3
        wait_for "$log" "VM-DB armed 0x6" 60
        hp ring 0x2 > /dev/null
        step 4
        wait_for "$log" "VM-DB in" 60
        show_check "doorbells cleared" 'p1["db"] == 0' 'p1["db_mask"] == 0'
        echo "doorbells: guest -> host 0x5; host -> guest 0x4 held while masked, then 0x2: $(line "$log" "VM-DB in")"

        wait_for "$log" "VM-MW ready" 60
        echo "guest: $(line "$log" "VM-MW ready")"
        show_check "mw_trans0" 'p1["xlat_size"][0] == 16384' 'p1["xlat_size"][1] == 0'
        read -r wo mwc mws < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["window_offset"], d["mw_count"], d["mw_size"])' "$work/show.json")
        gin=$((wo + (1 * mwc + 0) * mws)) hin=$((wo + (0 * mwc + 0) * mws))
        [ "$(hp outbound 0)" = "$(printf 0x%x "$gin")" ] || fail "hostport and the spec disagree on port 1's window 0"
        [ "$(hp inbound 0)" = "$(printf 0x%x "$hin")" ] || fail "hostport and the spec disagree on port 0's window 0"
        head -c 16384 /dev/urandom > "$work/to-guest"
        sent=$(sha256sum < "$work/to-guest" | cut -d' ' -f1)
        hp wwrite "$gin" "$work/to-guest" > /dev/null
        hp trans 0 16384 > /dev/null
        show_check "host's mw_set_trans" 'p0["xlat_size"][0] == 16384'
        step 5
        wait_for "$log" "VM-MW in" 60
        got=$(line "$log" "VM-MW in")
        [ "$got" = "$sent" ] || fail "inbound window 0: the host wrote $sent at $gin, the guest's mw0 read $got"
        wait_for "$log" "VM-MW out" 60
        read -r sent _ got < <(line "$log" "VM-MW out")
        [ "$got" = "$sent" ] || fail "outbound window 0: the guest wrote $sent, read back $got through peer_mw0"
        got=$(dd if="$dev" bs=4096 skip=$((hin / 4096)) count=4 2> /dev/null | sha256sum | cut -d' ' -f1)
        [ "$got" = "$sent" ] || fail "outbound window 0: the guest wrote $sent, the file at $hin (port 0's inbound 0) holds $got"
        [ "$(hp wsha "$hin" 16384)" = "$sent" ] || fail "outbound window 0: hostport reads something else at $hin"
        wait_for "$log" "VM-MW local" 60
        sent=$(line "$log" "VM-MW local")
        got=$(dd if="$dev" bs=4096 skip=$((gin / 4096)) count=1 2> /dev/null | sha256sum | cut -d' ' -f1)
        [ "$got" = "$sent" ] || fail "inbound window 0: the guest wrote $sent to mw0, the file at $gin holds $got"
        echo "windows: host -> guest mw0 16 KiB, guest peer_mw0 -> host inbound 0 (file offset $hin) 16 KiB, guest mw0 -> file offset $gin 4 KiB: sha256 equal"
        step 6
        wait_for "$log" "VM-MW cleared" 60
        show_check "mw_trans0 0" 'p1["xlat_size"][0] == 0'

        hp link_enable 0 > /dev/null
        step 7
        wait_for "$log" "VM-LINK peer-down" 60
        hp_expect 0x0 link
        hp link_enable 1 > /dev/null
        step 8
        wait_for "$log" "VM-LINK back" 60
        hp_expect 0x1 link
        step 9
        wait_for "$log" "VM-LINK local-down" 60
        hp_expect 0x0 link
        show_check "guest's link N" 'not d["link_up"]' 'p1["link_enabled"] == 0' 'p0["link_enabled"] == 1'
        echo "link: down and up from the host, down from the guest"
        step 10
        wait_for "$log" "VM-CHECK unloaded" 60
        echo "guest driver: $(line "$log" VM-STATS)"
        wait_guests
        show_check "guest unloaded" 'p1["state"] == 0' 'p1["owner_kind"] == "none"' 'p0["state"] == 1'
        hp_expect released quit
        wait "$hpid" || fail "hostport.py failed"
        hpid=''
        show_check "host released" 'p0["state"] == 0'
        echo "tool: ok in $(vm_since "$t0") s"
}

phase_pair() {
        local t0 a=$work/pair-a.log b=$work/pair-b.log fa fb oa ob g
        echo "== 2. ntb_pingpong, 3. ntb_perf: two guests"
        dev=$work/pair.dev
        python3 "$VM_DIR/mkdev.py" "${mkdev_args[@]}" "$dev" > /dev/null
        for g in a b; do mkfifo "$work/ctl-$g.in" "$work/ctl-$g.out"; done
        exec {fa}<> "$work/ctl-a.in" {fb}<> "$work/ctl-b.in"
        # The guests' output side, held open too (they send nothing).
        # shellcheck disable=SC2034 # only held
        exec {oa}<> "$work/ctl-a.out" {ob}<> "$work/ctl-b.out"
        ctl() { echo "$1" >&"$fa"; echo "$1" >&"$fb"; }
        t0=$(vm_now)
        # shellcheck disable=SC2054 # the commas are QEMU's
        boot pair-a "$a" "NTBT_PHASE=pair" -chardev "pipe,id=ctl,path=$work/ctl-a" -device isa-serial,chardev=ctl
        # shellcheck disable=SC2054
        boot pair-b "$b" "NTBT_PHASE=pair" -chardev "pipe,id=ctl,path=$work/ctl-b" -device isa-serial,chardev=ctl
        wait_for "$a" "VM-PP count" 180
        wait_for "$b" "VM-PP count" 60
        echo "pingpong: a (port $(line "$a" VM-PORT)) $(line "$a" "VM-PP link"), count $(line "$a" "VM-PP count");" \
                "b (port $(line "$b" VM-PORT)) $(line "$b" "VM-PP link"), count $(line "$b" "VM-PP count")"
        show_check pingpong 'd["link_up"]' 'p0["owner_kind"] == p1["owner_kind"] == "remote"' \
                'p0["spad"][0] > 0' 'p1["spad"][0] > 0' 'p0["db_seq"] > 0' 'p1["db_seq"] > 0'
        ctl pp-stop
        wait_for "$a" "VM-PP unloaded" 60
        wait_for "$b" "VM-PP unloaded" 60
        echo "pingpong: a $(line "$a" "VM-PP unloaded"), b $(line "$b" "VM-PP unloaded")"
        ctl perf
        wait_for "$a" "VM-PERF ready" 120
        wait_for "$b" "VM-PERF ready" 60
        echo "perf: a $(line "$a" "VM-PERF ready"); b $(line "$b" "VM-PERF ready")"
        # ntb_perf translates inbound window <peer port>, whole (mw_size).
        show_check "perf buffers" 'd["link_up"]' 'p0["xlat_size"][1] == d["mw_size"]' \
                'p1["xlat_size"][0] == d["mw_size"]' 'p0["xlat_size"][0] == 0' 'p1["xlat_size"][1] == 0'
        ctl run
        wait_for "$a" "VM-PERF result" 240
        wait_for "$b" "VM-PERF result" 120
        echo "perf a -> b: $(line "$a" "VM-PERF result")"
        echo "perf b -> a: $(line "$b" "VM-PERF result")"
        ctl unload
        wait_for "$a" "VM-CHECK unloaded" 60
        wait_for "$b" "VM-CHECK unloaded" 60
        echo "a's driver: $(line "$a" VM-STATS)"
        echo "b's driver: $(line "$b" VM-STATS)"
        wait_guests
        show_check "both unloaded" 'p0["state"] == 0' 'p1["state"] == 0' 'not d["link_up"]'
        echo "pair: ok in $(vm_since "$t0") s"
}

for p in $phases; do
        case "$p" in
        tool) phase_tool ;;
        pair) phase_pair ;;
        *) fail "unknown phase $p (tool, pair)" ;;
        esac
done
echo "vm clients: ok"
