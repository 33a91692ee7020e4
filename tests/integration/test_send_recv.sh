#!/usr/bin/env bash
# ntbt send / ntbt recv between two processes: 256 MiB of random data arrive
# identical whichever side starts first; an empty input; a sender killed
# mid-stream makes recv fail with a message and leaves an intact prefix;
# usage errors and --help.
set -euo pipefail
NTBT=$1
dir=$(mktemp -d)
name=t-sr-$$
cleanup() { rm -rf "$dir"; "$NTBT" dev rm "$name" 2>/dev/null || true; "$NTBT" dev rm "$name-k" 2>/dev/null || true; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

head -c 256M /dev/urandom > "$dir/a"

# recv first (it creates the device), then send.
"$NTBT" recv --dev "shm:$name" > "$dir/b" &
r=$!
"$NTBT" send --dev "shm:$name" < "$dir/a"
wait $r || fail "recv exited $?"
cmp "$dir/a" "$dir/b" || fail "256 MiB differ (recv first)"
"$NTBT" dev rm "$name"

# send first, on an explicit port and QP 1 of a 2-QP default device.
head -c 32M "$dir/a" > "$dir/a32"
"$NTBT" send --dev "shm:$name,port=1" --qp 1 < "$dir/a32" &
s=$!
sleep 0.3
"$NTBT" recv --dev "shm:$name" --qp 1 > "$dir/b32"
wait $s || fail "send exited $?"
cmp "$dir/a32" "$dir/b32" || fail "32 MiB differ (send first)"

# Non-temporal stores on the sending side (shm option nt=1), both copy modes.
for tx in inline thread; do
        "$NTBT" recv --dev "shm:$name" > "$dir/bnt" &
        r=$!
        "$NTBT" send --dev "shm:$name,nt=1" --tx $tx < "$dir/a32"
        wait $r || fail "recv (nt=1, $tx) exited $?"
        cmp "$dir/a32" "$dir/bnt" || fail "nt=1 $tx: data differ"
done

# Small frames: --mtu on both sides.
head -c 3M "$dir/a" > "$dir/a3"
"$NTBT" recv --dev "shm:$name" --mtu 1024 > "$dir/b3" &
r=$!
"$NTBT" send --dev "shm:$name" --mtu 1024 < "$dir/a3"
wait $r || fail "recv --mtu exited $?"
cmp "$dir/a3" "$dir/b3" || fail "--mtu 1024 differs"

# Empty input: nothing arrives, both succeed.
"$NTBT" recv --dev "shm:$name" > "$dir/e" &
r=$!
"$NTBT" send --dev "shm:$name" < /dev/null
wait $r || fail "recv of empty input exited $?"
test ! -s "$dir/e" || fail "empty input produced output"

# The sender dies mid-stream: recv says so and fails; what it wrote is a prefix.
mkfifo "$dir/fifo"
"$NTBT" recv --dev "shm:$name-k" > "$dir/bk" 2> "$dir/recv.err" &
r=$!
"$NTBT" send --dev "shm:$name-k" < "$dir/fifo" &
s=$!
exec 3> "$dir/fifo"
head -c 8M "$dir/a" >&3
for _ in $(seq 200); do [ "$(stat -c %s "$dir/bk")" -ge 8388608 ] && break; sleep 0.05; done
kill -9 $s
exec 3>&-
rc=0
wait $r || rc=$?
[ $rc -ne 0 ] || fail "recv exited 0 after the sender was killed"
grep -q "link lost" "$dir/recv.err" || fail "recv did not say the link was lost: $(cat "$dir/recv.err")"
n=$(stat -c %s "$dir/bk")
[ "$n" -eq 8388608 ] || fail "recv wrote $n bytes, expected the 8 MiB sent"
cmp -n "$n" "$dir/a" "$dir/bk" || fail "the prefix differs"

# Usage.
"$NTBT" send --help | grep -q "usage: ntbt send" || fail "send --help"
"$NTBT" recv --help | grep -q "usage: ntbt recv" || fail "recv --help"
"$NTBT" dev --help | grep -q "usage: ntbt dev" || fail "dev --help"
"$NTBT" --help | grep -q "recv" || fail "ntbt --help"
rc=0; "$NTBT" send < /dev/null 2> "$dir/err" || rc=$?
[ $rc -eq 2 ] && grep -q -- "--dev DEV is required" "$dir/err" || fail "missing --dev: rc $rc"
rc=0; "$NTBT" recv --dev "shm:$name" --bogus 2> /dev/null || rc=$?
[ $rc -eq 2 ] || fail "unknown option: rc $rc"
rc=0; "$NTBT" send --dev "nope:x" < /dev/null 2> "$dir/err" || rc=$?
[ $rc -eq 2 ] && grep -q "unknown device type" "$dir/err" || fail "bad device type (a usage error): rc $rc"
rc=0; "$NTBT" dev create "$name" 2> "$dir/err" || rc=$?
[ $rc -eq 1 ] && grep -q "ntbt: dev create: $name: File exists" "$dir/err" || fail "dev create twice"
echo "send/recv: ok"
