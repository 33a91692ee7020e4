#!/usr/bin/env bash
# make demo: the main job, in under a minute on 2 cores, needing only the
# build (bash, coreutils and awk; no JSON tool).  Two processes become the two
# hosts of an emulated NTB:
#   1. ntbt recv and ntbt send move 64 MiB of random data over a queue pair,
#      and the two checksums must agree;
#   2. ntbt perf --verify sweeps message sizes over a private shm device with
#      both copy modes (inline, and the per-QP copy thread);
#   3. inline against the copy thread again, over a copy-bound pcie link
#      where the sender also produces its data, RUNS alternating runs each;
#   4. a table of what this run measured, and what it says about the copy
#      thread: only what these runs showed.
# Every command is printed, as run, on a line starting with '+'.  The tables
# are ntbt perf's own; the summary reads their GB/s column.
set -euo pipefail
NTBT=${1:-build/ntbt}
RUNS=${RUNS:-5}
NAME=demo-$$
dir=$(mktemp -d)
recv=
cleanup() {
        [ -z "$recv" ] || kill "$recv" 2> /dev/null || true
        rm -rf "$dir"
        "$NTBT" dev rm "$NAME" > /dev/null 2>&1 || true
}
trap cleanup EXIT

# Print a command as one would type it (quoted only where the shell needs
# it), then run it.
run() {
        local a line=+
        for a in "$@"; do
                if [[ $a =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
                        line+=" $a"
                else
                        line+=" '${a//\'/\'\\\'\'}'"
                fi
        done
        echo "$line"
        "$@"
}

# "size GB/s" for each row of an ntbt perf table (the column found by its
# header, so that a column added to the table does not shift it).
gbps_by_size() {
        awk '$1 == "size" { for (i = 1; i <= NF; i++) if ($i == "GB/s") col = i; next }
             col && $1 ~ /^[0-9]+$/ { print $1, $col }' "$1"
}

median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.3f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== 1. 64 MiB from one process to the other over a queue pair"
run "$NTBT" dev create "$NAME"
echo "+ head -c 64M /dev/urandom > $dir/in"
head -c 64M /dev/urandom > "$dir/in"
echo "+ $NTBT recv --dev shm:$NAME > $dir/out &    # host B"
"$NTBT" recv --dev "shm:$NAME" > "$dir/out" &
recv=$!
t0=$(date +%s%N)
echo "+ $NTBT send --dev shm:$NAME < $dir/in       # host A"
"$NTBT" send --dev "shm:$NAME" < "$dir/in"
wait $recv
recv=
t1=$(date +%s%N)
echo "+ sha256sum $dir/in $dir/out"
a=$(sha256sum < "$dir/in" | cut -c1-16)
b=$(sha256sum < "$dir/out" | cut -c1-16)
echo "sent     $a..."
echo "received $b..."
[ "$a" = "$b" ] || { echo "demo: checksums differ" >&2; exit 1; }
secs=$(awk -v n=$((t1 - t0)) 'BEGIN { printf "%.2f", n / 1e9 }')
run "$NTBT" dev rm "$NAME"

echo
echo "== 2. ntbt perf over shm: a size sweep, both copy modes, every message verified"
for tx in inline thread; do
        run "$NTBT" perf --loopback --dev "shm:$NAME" --tx $tx --size 64,1024,16384,max \
                --time 0.4 --verify | tee "$dir/shm-$tx"
done

echo
echo "== 3. the copy thread where the copy is slow: a pcie link draining 1 GB/s, the"
echo "      sender producing each message first (1 us per KiB); $RUNS runs each, alternating"
for r in $(seq "$RUNS"); do
        for tx in inline thread; do
                run "$NTBT" perf --loopback --dev "pcie:$NAME,bw=1G" --tx $tx --size max --time 1 \
                        --work 1000 | tee "$dir/pcie-$tx-$r"
                gbps_by_size "$dir/pcie-$tx-$r" | awk '{ print $2 }' >> "$dir/pcie-$tx"
        done
done

echo
echo "== 4. what this run measured"
echo "64 MiB send/recv: checksums equal, $secs s"
echo
fmt='%-34s %12s %12s %14s\n'
# shellcheck disable=SC2059 # the format is the table's
printf "$fmt" "GB/s, one-way" "inline" "thread" "thread/inline"
gbps_by_size "$dir/shm-inline" > "$dir/si"
gbps_by_size "$dir/shm-thread" > "$dir/st"
while read -r size i; do
        t=$(awk -v s="$size" '$1 == s { print $2 }' "$dir/st")
        # shellcheck disable=SC2059
        printf "$fmt" "shm, $size B, one run" "$i" "$t" \
                "$(awk -v i="$i" -v t="$t" 'BEGIN { printf "%.2fx", t / i }')"
done < "$dir/si"
pi=$(median < "$dir/pcie-inline")
pt=$(median < "$dir/pcie-thread")
ratio=$(awk -v i="$pi" -v t="$pt" 'BEGIN { printf "%.2f", t / i }')
# shellcheck disable=SC2059
printf "$fmt" "pcie 1 GB/s + work, median of $RUNS" "$pi" "$pt" "${ratio}x"
echo "  (each run's GB/s, inline: $(paste -sd' ' "$dir/pcie-inline"); thread: $(paste -sd' ' "$dir/pcie-thread"))"
echo
# What the copy thread did here, said from these runs only: a gain or a
# loss when every run of one mode beat every run of the other, otherwise
# none that this run can show.
verdict=$(awk -v r="$ratio" '
        FNR == 1 { f++ }
        f == 1 { if (imin == "" || $1 < imin) imin = $1; if ($1 > imax) imax = $1 }
        f == 2 { if (tmin == "" || $1 < tmin) tmin = $1; if ($1 > tmax) tmax = $1 }
        END {
                if (tmin > imax) print "faster in every run: " r "x the inline copy (medians)";
                else if (tmax < imin) print "slower in every run: " r "x the inline copy (medians)";
                else print "no clear difference: the runs overlap (medians " r "x)";
        }' "$dir/pcie-inline" "$dir/pcie-thread")
echo "Copy thread over the copy-bound pcie link, on $(nproc) cores: $verdict."
echo "bench/offload.sh measures the same with more runs; bench/README.md has its figures."
echo "demo: ok (every perf run verified, no errors)"
