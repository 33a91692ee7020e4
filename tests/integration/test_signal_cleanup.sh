#!/usr/bin/env bash
# A signal or a closed pipe leaves nothing behind in /dev/shm:
#   - perf --loopback and ping --loopback ended by SIGINT, SIGTERM or SIGHUP
#     (to the process, or to its process group as a terminal's Ctrl-C does)
#     remove their private device and both statistics files, the forked
#     server goes too, and the exit status says "killed by that signal";
#   - perf --loopback killed outright (SIGKILL): its server still removes them;
#   - send and recv ended by a signal remove their statistics file;
#   - recv whose standard output closes (recv | head) closes the queue pair,
#     removes its statistics file and ends as SIGPIPE does; perf --loopback
#     writing into a closed pipe removes its private device;
#   - a signal ignored at the start (nohup) stays ignored.
set -euo pipefail
NTBT=$1
name=t-sig-$$
dir=$(mktemp -d)
cleanup() {
        jobs -p | xargs -r kill 2> /dev/null || true
        rm -rf "$dir"
        for f in /dev/shm/ntbt-"$name"*; do
                case $f in *.stats-*) rm -f "$f" ;; *) [ -e "$f" ] && "$NTBT" dev rm "$f" > /dev/null 2>&1 || true ;; esac
        done
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Job control: each background job is its own process group, and does not
# start with SIGINT ignored (as a non-interactive shell's jobs do).
set -m

leftovers() { ls /dev/shm | grep -F "ntbt-$1" || true; }
# Wait (5 s at most) until the file $1 exists.
wait_file() {
        for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.05; done
        fail "$1 did not appear"
}
# Wait (5 s at most) until no file of $1 is left and no process runs with $1
# in its arguments, or fail naming what is left.
wait_clean() {
        for _ in $(seq 100); do
                [ -z "$(leftovers "$1")" ] && ! pgrep -f -- "$1" > /dev/null && return 0
                sleep 0.05
        done
        fail "$2: left $(leftovers "$1" | tr '\n' ' ') processes: $(pgrep -f -- "$1" | tr '\n' ' ')"
}
signum() { kill -l "$1"; }

# --loopback, each signal, to the process and to the whole process group.
for cmd in perf ping; do
        for sig in INT TERM HUP; do
                for target in process group; do
                        dev=$name-$cmd-$sig-$target
                        if [ $cmd = perf ]; then
                                "$NTBT" perf --loopback --dev "shm:$dev" --size 64 --time 60 > /dev/null 2> "$dir/err" &
                        else
                                "$NTBT" ping --loopback --dev "shm:$dev" --count 100000000 > /dev/null 2> "$dir/err" &
                        fi
                        p=$!
                        # Both transports up: both statistics files are there.
                        wait_file "/dev/shm/ntbt-$dev-loop-$p.stats-0"
                        wait_file "/dev/shm/ntbt-$dev-loop-$p.stats-1"
                        if [ $target = process ]; then kill -$sig $p; else kill -$sig -- -$p; fi
                        rc=0
                        wait $p || rc=$?
                        [ $rc = $((128 + $(signum $sig))) ] ||
                                fail "$cmd --loopback, SIG$sig to the $target: exit $rc, not killed by SIG$sig: $(cat "$dir/err")"
                        wait_clean "$dev" "$cmd --loopback, SIG$sig to the $target"
                done
        done
done
echo "loopback: SIGINT, SIGTERM, SIGHUP leave nothing"

# SIGKILL: the client cannot clean up; its server (told by the kernel) does.
dev=$name-kill
"$NTBT" perf --loopback --dev "shm:$dev" --size 64 --time 60 > /dev/null 2>&1 &
p=$!
wait_file "/dev/shm/ntbt-$dev-loop-$p.stats-1"
kill -KILL $p
wait $p || true
wait_clean "$dev" "perf --loopback, SIGKILL"
echo "loopback: SIGKILL leaves nothing"

# recv waiting for its peer, then a signal: its statistics file goes (the
# device, which recv created for both sides, stays).
for sig in INT TERM HUP; do
        dev=$name-recv-$sig
        "$NTBT" recv --dev "shm:$dev" > /dev/null 2>&1 &
        r=$!
        wait_file "/dev/shm/ntbt-$dev.stats-0"
        kill -$sig $r
        rc=0
        wait $r || rc=$?
        [ $rc = $((128 + $(signum $sig))) ] || fail "recv, SIG$sig: exit $rc"
        [ -z "$(leftovers "$dev.stats")" ] || fail "recv, SIG$sig: left $(leftovers "$dev.stats")"
        [ -e "/dev/shm/ntbt-$dev" ] || fail "recv, SIG$sig: the device went too"
        "$NTBT" dev rm "$dev"
done
echo "recv: SIGINT, SIGTERM, SIGHUP leave no statistics file"

# send in the middle of a stream, then SIGTERM: its statistics file goes; so
# does the receiver's, which sees the link lost and exits 1.
dev=$name-send
"$NTBT" recv --dev "shm:$dev" > /dev/null 2> "$dir/recv.err" &
r=$!
"$NTBT" send --dev "shm:$dev" < /dev/zero 2> /dev/null &
s=$!
wait_file "/dev/shm/ntbt-$dev.stats-0"
wait_file "/dev/shm/ntbt-$dev.stats-1"
sleep 0.3
kill -TERM $s
rc=0
wait $s || rc=$?
[ $rc = $((128 + $(signum TERM))) ] || fail "send, SIGTERM: exit $rc"
rc=0
wait $r || rc=$?
[ $rc = 1 ] || fail "recv after its sender was killed: exit $rc: $(cat "$dir/recv.err")"
[ -z "$(leftovers "$dev.stats")" ] || fail "send, SIGTERM: left $(leftovers "$dev.stats")"
echo "send: SIGTERM leaves no statistics file"

# recv | head: a closed standard output.  recv closes the queue pair, leaves
# no statistics file and ends as SIGPIPE does; the sender sees the link go.
head -c 64M /dev/zero | "$NTBT" send --dev "shm:$dev" 2> /dev/null &
s=$!
set +e
"$NTBT" recv --dev "shm:$dev" 2> "$dir/pipe.err" | head -c 100000 > "$dir/head.out"
st=("${PIPESTATUS[@]}")
set -e
[ "${st[0]}" = $((128 + $(signum PIPE))) ] || fail "recv | head: recv exited ${st[0]}, not by SIGPIPE: $(cat "$dir/pipe.err")"
[ "$(stat -c %s "$dir/head.out")" = 100000 ] || fail "recv | head: head did not get its bytes"
[ ! -s "$dir/pipe.err" ] || fail "recv | head: recv said something: $(cat "$dir/pipe.err")"
wait $s || true
wait_clean "$dev.stats" "recv | head"
"$NTBT" dev rm "$dev"
echo "recv | head: ends by SIGPIPE, leaves no statistics file"

# perf --loopback | head: the private device goes with the broken pipe.
dev=$name-perfpipe
set +e
"$NTBT" perf --loopback --dev "shm:$dev" --size 64,64,64,64 --time 0.3 --json-lines 2> /dev/null | head -c 5 > /dev/null
st=("${PIPESTATUS[@]}")
set -e
[ "${st[0]}" = $((128 + $(signum PIPE))) ] || fail "perf | head: exit ${st[0]}, not by SIGPIPE"
wait_clean "$dev" "perf --loopback | head"
echo "perf --loopback | head: leaves nothing"

# nohup: SIGHUP ignored at the start stays ignored.
dev=$name-nohup
(trap '' HUP; exec "$NTBT" recv --dev "shm:$dev" > /dev/null 2>&1) &
r=$!
wait_file "/dev/shm/ntbt-$dev.stats-0"
kill -HUP $r
sleep 0.3
kill -0 $r 2> /dev/null || fail "recv under nohup died of SIGHUP"
kill -TERM $r
wait $r || true
[ -z "$(leftovers "$dev.stats")" ] || fail "nohup recv, SIGTERM: left $(leftovers "$dev.stats")"
"$NTBT" dev rm "$dev"
echo "signal cleanup: ok"
