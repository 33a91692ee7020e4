#!/usr/bin/env bash
# Usage errors name the option (not its value), give the valid range, and
# exit 2, in every subcommand:
#   - every numeric option, given a non-number and a value out of range, in
#     its long, --opt=value and short forms;
#   - a bad device string (unknown type, bad key, bad value, no colon) exits
#     2 in send, recv, ping, perf (also --loopback) and tun, in one line;
#     a missing device or a busy port stays a failure of the work (1);
#   - ntbt tun without privilege says it needs root or CAP_NET_ADMIN.
set -euo pipefail
NTBT=$1
name=t-ue-$$
dir=$(mktemp -d)
cleanup() {
        jobs -p | xargs -r kill 2> /dev/null || true
        wait 2> /dev/null || true
        rm -rf "$dir"
        "$NTBT" dev rm "$name" > /dev/null 2>&1 || true
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect RC PATTERN CMD...: CMD exits RC and its stderr matches PATTERN
# (grep -E); on a usage error, stdout is empty.
expect() {
        local want=$1 pat=$2 rc=0
        shift 2
        timeout 20 "$NTBT" "$@" < /dev/null > "$dir/out" 2> "$dir/err" || rc=$?
        [ "$rc" = "$want" ] || fail "ntbt $*: exit $rc (want $want): $(cat "$dir/err")"
        grep -Eq -- "$pat" "$dir/err" || fail "ntbt $*: stderr does not match '$pat': $(cat "$dir/err")"
        [ "$want" != 2 ] || [ ! -s "$dir/out" ] || fail "ntbt $*: printed on stdout: $(cat "$dir/out")"
}

# range CMD OPT BAD RANGE [ARGS...]: OPT abc is not a number, OPT BAD is out
# of range, both naming RANGE; also as OPT=BAD.
range() {
        local cmd=$1 opt=$2 bad=$3 r=$4
        shift 4
        # shellcheck disable=SC2086
        expect 2 "^ntbt: [a-z ]+: $opt: 'abc' is not a number \($r\)$" $cmd "$opt" abc "$@"
        # shellcheck disable=SC2086
        expect 2 "^ntbt: [a-z ]+: $opt $bad is out of range \($r\)$" $cmd "$opt" "$bad" "$@"
        # shellcheck disable=SC2086
        expect 2 "^ntbt: [a-z ]+: $opt $bad is out of range \($r\)$" $cmd "$opt=$bad" "$@"
}

d="--dev shm:$name"
for cmd in send recv; do
        range $cmd --qp 32 "0-31" $d
        range $cmd --mtu 15 "16-1G" $d
        range $cmd --max-qps 33 "0-32" $d
done
range ping --count 0 "1-100000000" $d --client
range ping --warmup 100000001 "0-100000000" $d --client
range ping --size 0 "1-1G" $d --client
range ping --qp 40 "0-31" $d --client
range ping --mtu 2G "16-1G" $d --client
range ping --stall-timeout 0 "seconds, more than 0, at most 3600" $d --client
range perf --time 3601 "seconds, more than 0, at most 3600" $d --client
range perf --interval -1 "0-3600 seconds" $d --client
range perf --qps 33 "1-32" $d --client
range perf --mtu 31 "32-1G" $d --client
range perf --work 2000000000 "0-1000000000" $d --client
range perf --size 0 "1-1G, or max" $d --client
expect 2 "^ntbt: perf: --size 2G is out of range \(1-1G, or max\)$" perf $d --client --size 64,2G
range tun --qps 9 "1-8" $d
range tun --mtu 67 "68-1G" $d
range tun --max-qps 33 "0-32" $d
range "dev create" --mw-count 9 "1-8" "$name"
range "dev create" --spad-count 5 "6-64" "$name"
range "dev create" --db-bits 65 "2-64" "$name"
range "dev create" --heartbeat-ms 9 "10-10000" "$name"
range "dev create" --remote-timeout-ms 60001 "20-60000" "$name"
range "dev create" --mw-size 2K "4K-1G" "$name"
range "dev create" --xlat-align 2G "4K-1G" "$name"
expect 2 "^ntbt: dev create: --mw-size 12K is not a power of two \(4K-1G\)$" dev create "$name" --mw-size 12K
[ ! -e "/dev/shm/ntbt-$name" ] || fail "a refused dev create left the device"
# Short forms name the long option.
expect 2 "^ntbt: send: --mtu: 'abc' is not a number \(16-1G\)$" send $d -m abc
expect 2 "^ntbt: ping: --count 0 is out of range \(1-100000000\)$" ping $d --client -c 0
expect 2 "^ntbt: perf: --qps 33 is out of range \(1-32\)$" perf $d --client -P33
expect 2 "^ntbt: perf: --time: 'x' is not a number \(seconds, more than 0, at most 3600\)$" perf $d --client -t x
# Not numbers, but values too.
expect 2 "^ntbt: ping: --tx: 'dma' is not a copy mode \(inline or thread\)$" ping $d --client --tx dma
expect 2 "^ntbt: tun: --name 'abcdefghijklmnopq' is not 1-15 characters$" tun $d --name abcdefghijklmnopq
expect 2 "choose one of --json \(one document\) and --json-lines" perf $d --client --json --json-lines
[ ! -e "/dev/shm/ntbt-$name" ] || fail "a usage error created the device"
echo "numeric options: ok"

# A bad device string: exit 2, one line, no device left behind.
for bad in "nope:$name" "shm:$name,prot=1" "shm:$name,port=2" "pcie:$name,wc=x" "shm$name"; do
        expect 2 . send --dev "$bad"
        [ "$(wc -l < "$dir/err")" = 1 ] || fail "send --dev $bad: not one line: $(cat "$dir/err")"
        expect 2 . recv --dev "$bad"
        expect 2 . ping --client --dev "$bad"
        expect 2 . perf --client --dev "$bad" --size 64
        expect 2 . ping --loopback --dev "$bad"
        [ "$(wc -l < "$dir/err")" = 1 ] || fail "ping --loopback --dev $bad: not one line: $(cat "$dir/err")"
        expect 2 . perf --loopback --dev "$bad" --size 64 --json
        [ ! -e "/dev/shm/ntbt-$name" ] || fail "--dev $bad left /dev/shm/ntbt-$name"
        [ -z "$(ls /dev/shm | grep -F "ntbt-$name-loop-")" ] || fail "--dev $bad left a private device"
done
# tun opens the TAP interface first: as root, in a network namespace of its own.
if [ "$(id -u)" = 0 ] && unshare -n true 2> /dev/null && [ -c /dev/net/tun ]; then
        rc=0
        unshare -n "$NTBT" tun --dev "shm:$name,prot=1" > /dev/null 2> "$dir/err" || rc=$?
        [ $rc = 2 ] || fail "tun --dev with a bad key: exit $rc: $(cat "$dir/err")"
        grep -q "unknown option 'prot'" "$dir/err" || fail "tun --dev bad key: $(cat "$dir/err")"
fi
# The work failing is not a usage error: no such device, a busy port.
expect 1 "kdev|ntbt-user|No such" recv --dev "kdev:/nonexistent/ntbt-user9"
"$NTBT" recv --dev "shm:$name,port=0" > /dev/null 2>&1 &
r=$!
for _ in $(seq 100); do [ -e "/dev/shm/ntbt-$name.stats-0" ] && break; sleep 0.05; done
expect 1 "busy" recv --dev "shm:$name,port=0"
kill $r
wait $r || true
echo "device strings: ok"

# ntbt tun without privilege.
run_unprivileged=()
if [ "$(id -u)" != 0 ]; then
        run_unprivileged=(env)
elif command -v setpriv > /dev/null &&
        setpriv --reuid=65534 --regid=65534 --clear-groups "$NTBT" --version > /dev/null 2>&1; then
        run_unprivileged=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
if [ ${#run_unprivileged[@]} -gt 0 ]; then
        rc=0
        (cd / && timeout 10 "${run_unprivileged[@]}" "$NTBT" tun --dev "shm:$name-tun") > /dev/null 2> "$dir/err" || rc=$?
        [ $rc = 1 ] || fail "unprivileged tun: exit $rc: $(cat "$dir/err")"
        grep -q "needs root or CAP_NET_ADMIN" "$dir/err" || fail "unprivileged tun: $(cat "$dir/err")"
        [ ! -e "/dev/shm/ntbt-$name-tun" ] || fail "unprivileged tun created the device"
        echo "tun without privilege: $(cat "$dir/err")"
else
        echo "cannot run ntbt as an unprivileged user here: the tun case is left out"
fi
echo "usage errors: ok"
