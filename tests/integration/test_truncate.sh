#!/usr/bin/env bash
# A device file truncated under running transports (anyone who can write it
# can do this, the peer included) ends each of them with status 1 and
# "device file truncated", never a silent death by SIGBUS or a hang:
#   - a sender and a receiver in the middle of a stream;
#   - a receiver still waiting for its peer (its heartbeat thread touches
#     the header within heartbeat_ms / 2).
set -euo pipefail
NTBT=$1
name=t-tr-$$
dir=$(mktemp -d)
cleanup() {
        jobs -p | xargs -r kill -KILL 2> /dev/null || true
        wait 2> /dev/null || true
        rm -rf "$dir"
        rm -f "/dev/shm/ntbt-$name" "/dev/shm/ntbt-$name".stats-*
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
file=/dev/shm/ntbt-$name

# ends PID ERRFILE WHO: PID exits 1 within 10 s, having said why.
ends() {
        local n=100 rc=0
        while kill -0 "$1" 2> /dev/null; do
                n=$((n - 1))
                [ "$n" -gt 0 ] || fail "$3 still runs 10 s after the truncation"
                sleep 0.1
        done
        wait "$1" || rc=$?
        [ "$rc" = 1 ] || fail "$3 exited $rc after the truncation (want 1): $(cat "$2")"
        grep -q "device file truncated" "$2" || fail "$3 did not say why: $(cat "$2")"
}

"$NTBT" dev create "$name"
"$NTBT" recv --dev "shm:$name" > /dev/null 2> "$dir/r.err" &
r=$!
"$NTBT" send --dev "shm:$name" < /dev/zero 2> "$dir/s.err" &
s=$!
sleep 1
kill -0 "$r" && kill -0 "$s" || fail "the stream did not start: $(cat "$dir/r.err" "$dir/s.err")"
truncate -s 0 "$file"
ends "$s" "$dir/s.err" "send"
ends "$r" "$dir/r.err" "recv"
rm -f "$file" "$file".stats-*

"$NTBT" dev create "$name"
"$NTBT" recv --dev "shm:$name" > /dev/null 2> "$dir/w.err" &
w=$!
sleep 0.5
kill -0 "$w" || fail "the waiting recv ended early: $(cat "$dir/w.err")"
truncate -s 0 "$file"
ends "$w" "$dir/w.err" "a recv waiting for its peer"
echo "truncate: ok"
