#!/usr/bin/env bash
# An independent v4 peer written only from the specs (tests/spec/v4_peer.py,
# Python, no shared code) interoperates with `ntbt send` and `ntbt recv`.
set -euo pipefail
NTBT=$1
PEER=$(dirname "$0")/v4_peer.py
command -v python3 >/dev/null || { echo "python3 not installed: skipping"; exit 77; }
name=t-v4-$$
dir=$(mktemp -d)
trap 'rm -rf "$dir"; "$NTBT" dev rm "$name" 2>/dev/null || true' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$NTBT" dev create "$name"
head -c 16M /dev/urandom > "$dir/a"

# ntbt send -> independent peer
python3 "$PEER" recv "/dev/shm/ntbt-$name" 1 "$dir/b" &
p=$!
"$NTBT" send --dev "shm:$name,port=0" < "$dir/a"
wait $p || fail "peer recv exited $?"
cmp "$dir/a" "$dir/b" || fail "ntbt send -> v4 peer: data differ"

# independent peer -> ntbt recv, ntbt started first
"$NTBT" recv --dev "shm:$name,port=0" > "$dir/c" &
r=$!
sleep 0.2
python3 "$PEER" send "/dev/shm/ntbt-$name" 1 "$dir/a"
wait $r || fail "ntbt recv exited $?"
cmp "$dir/a" "$dir/c" || fail "v4 peer -> ntbt recv: data differ"

# Small frames, QP 1, the peer started first.
head -c 1M "$dir/a" > "$dir/a1"
python3 "$PEER" send "/dev/shm/ntbt-$name" 1 "$dir/a1" --mtu 2048 --qp 1 &
p=$!
"$NTBT" recv --dev "shm:$name,port=0" --mtu 2048 --qp 1 > "$dir/d"
wait $p || fail "peer send exited $?"
cmp "$dir/a1" "$dir/d" || fail "--mtu 2048 --qp 1: data differ"

# The peer as a remote owner (owner_kind 2, no pid, no futex: what a QEMU
# guest's driver is): ntbt must poll its doorbells and judge it by heartbeat.
python3 "$PEER" recv "/dev/shm/ntbt-$name" 1 "$dir/e" --remote &
p=$!
"$NTBT" send --dev "shm:$name,port=0" < "$dir/a"
wait $p || fail "remote peer recv exited $?"
cmp "$dir/a" "$dir/e" || fail "ntbt send -> remote v4 peer: data differ"
"$NTBT" recv --dev "shm:$name,port=0" > "$dir/f" &
r=$!
python3 "$PEER" send "/dev/shm/ntbt-$name" 1 "$dir/a" --remote
wait $r || fail "ntbt recv from a remote peer exited $?"
cmp "$dir/a" "$dir/f" || fail "remote v4 peer -> ntbt recv: data differ"

# Link loss: the remote peer freezes mid-stream (its heartbeat stops); ntbt
# recv reports the loss (exit 1) within remote_timeout_ms (1 s) + 1 s.
"$NTBT" recv --dev "shm:$name,port=0" > "$dir/g" 2> "$dir/loss.err" &
r=$!
mkfifo "$dir/fifo"
python3 "$PEER" send "/dev/shm/ntbt-$name" 1 "$dir/fifo" --remote 2> /dev/null &
p=$!
exec 3> "$dir/fifo" # held open: the peer is mid-stream, waiting for more
head -c 4M /dev/zero >&3
for _ in $(seq 100); do [ "$(stat -c %s "$dir/g")" -ge 4000000 ] && break; sleep 0.05; done
[ "$(stat -c %s "$dir/g")" -ge 4000000 ] || fail "the stream before the freeze did not arrive"
kill -STOP $p
t0=$(date +%s%N)
rc=0
wait $r || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
kill -KILL $p
wait $p 2> /dev/null || true
exec 3>&-
[ "$rc" = 1 ] || fail "ntbt recv exited $rc after the remote peer froze, wanted 1"
[ "$ms" -le 2000 ] || fail "the frozen remote peer was seen after $ms ms (> 2000)"
grep -qi "link" "$dir/loss.err" || fail "ntbt recv did not say the link was lost: $(cat "$dir/loss.err")"
echo "remote peer frozen: ntbt recv saw it after $ms ms"
echo "independent v4 peer: ok"
