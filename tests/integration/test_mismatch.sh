#!/usr/bin/env bash
# Two ntbt peers that cannot talk say why, on both sides, within about a
# second, instead of waiting in silence:
#   - different --mtu (the rings would be laid out with different frame
#     sizes): both name both frame sizes;
#   - different --qp (send on queue pair 0, recv on 1): both say which queue
#     pair the peer asked for;
#   - no peer at all: send, recv, ping and perf say what they wait for and,
#     with --timeout, give up with status 1 and say so.
# (That the advertisement behind the first is invisible to a Linux kernel
# peer is shown by the vm tests, which run ntbt against ntb_transport.)
set -euo pipefail
NTBT=$1
dir=$(mktemp -d)
name=t-mm-$$
trap 'rm -rf "$dir"; "$NTBT" dev rm "$name" 2> /dev/null || true; "$NTBT" dev rm "$name-none" 2> /dev/null || true' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# pair RECV-OPTS SEND-OPTS: both sides for 3 s; their stderr in r.err, s.err.
pair() {
        timeout 3 "$NTBT" recv --dev "shm:$name" $1 > /dev/null 2> "$dir/r.err" &
        local r=$!
        echo data | timeout 3 "$NTBT" send --dev "shm:$name" $2 2> "$dir/s.err" || true
        wait "$r" || true
}

pair "--mtu 1024" ""
grep -q "peer's frames are 65536 bytes (its --mtu), ours 1024" "$dir/r.err" ||
        fail "recv did not name the mtu mismatch: $(cat "$dir/r.err")"
grep -q "peer's frames are 1024 bytes (its --mtu), ours 65536" "$dir/s.err" ||
        fail "send did not name the mtu mismatch: $(cat "$dir/s.err")"

pair "--qp 1" ""
grep -q "asked for queue pair 0 but not 1: do both sides use the same --qp" "$dir/r.err" ||
        fail "recv did not name the --qp mismatch: $(cat "$dir/r.err")"
grep -q "asked for queue pair 1 but not 0: do both sides use the same --qp" "$dir/s.err" ||
        fail "send did not name the --qp mismatch: $(cat "$dir/s.err")"

# No peer at all: every waiting command says what it waits for, and with
# --timeout gives up, says so and exits 1.
for cmd in "recv" "send" "ping --client" "ping --server" "perf --client --size 64"; do
        rc=0
        t0=$(date +%s%N)
        # shellcheck disable=SC2086 # cmd is a command and its options
        "$NTBT" $cmd --dev "shm:$name-none" --timeout 1.5 < /dev/null > /dev/null 2> "$dir/t.err" || rc=$?
        ms=$((($(date +%s%N) - t0) / 1000000))
        [ "$rc" = 1 ] || fail "$cmd --timeout 1.5 with no peer exited $rc: $(cat "$dir/t.err")"
        grep -q "waiting for the" "$dir/t.err" || fail "$cmd did not say what it waits for: $(cat "$dir/t.err")"
        grep -q "within 1.5 s" "$dir/t.err" || fail "$cmd did not name its --timeout: $(cat "$dir/t.err")"
        [ "$ms" -lt 6000 ] || fail "$cmd --timeout 1.5 took $ms ms"
done
"$NTBT" dev rm "$name-none" 2> /dev/null || true

# The control: the same options on both sides move the data.
timeout 20 "$NTBT" recv --dev "shm:$name" --mtu 1024 > "$dir/got" 2> "$dir/r.err" &
r=$!
echo data | timeout 20 "$NTBT" send --dev "shm:$name" --mtu 1024 2> "$dir/s.err" || fail "send: $(cat "$dir/s.err")"
wait "$r" || fail "recv: $(cat "$dir/r.err")"
[ "$(cat "$dir/got")" = data ] || fail "the control run lost the data"
! grep -q "mtu\|--qp" "$dir/r.err" "$dir/s.err" || fail "a mismatch was reported where there is none"
echo "mismatch: ok"
