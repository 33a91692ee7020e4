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
echo "independent v4 peer: ok"
