#!/usr/bin/env bash
# make demo: the main job.  Two processes become the two hosts of an
# emulated NTB: ntbt recv and ntbt send move 256 MiB of random data over a
# queue pair, and the two checksums must agree.
set -euo pipefail
NTBT=${1:-build/ntbt}
NAME=demo-$$
dir=$(mktemp -d)
trap 'rm -rf "$dir"; "$NTBT" dev rm "$NAME" 2>/dev/null || true' EXIT

echo "+ ntbt dev create $NAME"
"$NTBT" dev create "$NAME"
head -c 256M /dev/urandom > "$dir/in"
echo "+ ntbt recv --dev shm:$NAME > out &    # host B"
"$NTBT" recv --dev "shm:$NAME" > "$dir/out" &
recv=$!
echo "+ ntbt send --dev shm:$NAME < in       # host A, 256 MiB"
start=$(date +%s.%N)
"$NTBT" send --dev "shm:$NAME" < "$dir/in"
wait $recv
end=$(date +%s.%N)
a=$(sha256sum < "$dir/in" | cut -c1-16)
b=$(sha256sum < "$dir/out" | cut -c1-16)
echo "sent     sha256 $a"
echo "received sha256 $b"
[ "$a" = "$b" ] || { echo "demo: checksums differ" >&2; exit 1; }
awk -v s="$start" -v e="$end" 'BEGIN { printf "256 MiB in %.2f s (%.2f GB/s, both processes, file I/O included)\n", e - s, 268435456 / (e - s) / 1e9 }'
echo "+ ntbt dev show $NAME"
"$NTBT" dev show "$NAME"
"$NTBT" dev rm "$NAME"
trap 'rm -rf "$dir"' EXIT
echo "demo: ok"
