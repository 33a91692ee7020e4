#!/usr/bin/env bash
# send and recv on a terminal show their progress on stderr, one line
# redrawn with \r about every half second (bytes, rate, elapsed), and a
# one-line summary at the end; -q silences both; when stderr is not a
# terminal nothing is printed, except the summary with -v.
set -euo pipefail
NTBT=$1
name=t-pg-$$
dir=$(mktemp -d)
cleanup() {
        jobs -p | xargs -r kill 2> /dev/null || true
        wait 2> /dev/null || true
        rm -rf "$dir"
        "$NTBT" dev rm "$name" > /dev/null 2>&1 || true
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v script > /dev/null || { echo "no script(1): skipped"; exit 77; }

# 1 MiB, a pause of 1.2 s, 1 MiB: the live line shows the first MiB.
slow_input() { head -c 1M /dev/zero; sleep 1.2; head -c 1M /dev/zero; }

# on_tty CMD: run CMD (a shell command line) with a terminal for its stdin,
# stdout and stderr; what the terminal showed goes to stdout.
on_tty() { script -qfec "$1" /dev/null; }

# send on a terminal, recv not.
"$NTBT" recv --dev "shm:$name" > "$dir/out" 2> "$dir/recv.err" &
r=$!
slow_input > "$dir/in"
on_tty "(head -c 1M /dev/zero; sleep 1.2; head -c 1M /dev/zero) | '$NTBT' send --dev 'shm:$name'" > "$dir/send.tty" ||
        fail "send exited $?: $(cat "$dir/send.tty")"
wait $r || fail "recv exited $?"
cat -A "$dir/send.tty"
grep -q $'\rntbt: send: 1.0 MiB  [0-9.]* [KMG]*i*B/s  0:00:0[01]\e\[K' "$dir/send.tty" ||
        fail "send on a terminal: no progress line"
grep -q "ntbt: send: 2.0 MiB (2097152 bytes) in [0-9.]* s, .*/s, [0-9]* frames, inline copy" "$dir/send.tty" ||
        fail "send on a terminal: no summary"
[ "$(stat -c %s "$dir/out")" = 2097152 ] || fail "recv got $(stat -c %s "$dir/out") bytes"
! grep -q $'\r\|MiB' "$dir/recv.err" || fail "recv, stderr not a terminal, printed: $(cat -A "$dir/recv.err")"

# recv on a terminal (its stdout a file), send not; then send -v, not a terminal.
on_tty "'$NTBT' recv --dev 'shm:$name' > '$dir/out2'" > "$dir/recv.tty" &
r=$!
slow_input | "$NTBT" send -v --dev "shm:$name" 2> "$dir/send.err" || fail "send -v exited $?"
wait $r || fail "recv on a terminal exited $?: $(cat "$dir/recv.tty")"
cat -A "$dir/recv.tty" "$dir/send.err"
grep -q $'\rntbt: recv: 1.0 MiB  ' "$dir/recv.tty" || fail "recv on a terminal: no progress line"
grep -q "ntbt: recv: 2.0 MiB (2097152 bytes) in [0-9.]* s, " "$dir/recv.tty" || fail "recv on a terminal: no summary"
grep -q "^ntbt: send: 2.0 MiB (2097152 bytes) in " "$dir/send.err" || fail "send -v: no summary"
! grep -q $'\r' "$dir/send.err" || fail "send -v, not a terminal: a progress line"
cmp -s "$dir/out2" "$dir/in" || fail "recv on a terminal: the data differ"

# -q on a terminal: nothing.
"$NTBT" recv --dev "shm:$name" > /dev/null 2>&1 &
r=$!
on_tty "(head -c 1M /dev/zero; sleep 0.7) | '$NTBT' send -q --dev 'shm:$name'" > "$dir/quiet.tty" ||
        fail "send -q exited $?"
wait $r || fail "recv exited $?"
! grep -q "ntbt: send" "$dir/quiet.tty" || fail "send -q printed: $(cat -A "$dir/quiet.tty")"
echo "progress: ok"
