#!/usr/bin/env bash
# ntbt dev list shows what /dev/shm holds, and ntbt dev rm --stale removes
# only what a killed owner left:
#   - a device whose owner was killed (a port claimed by a dead pid) and its
#     statistics file: listed stale, removed;
#   - a device a live process holds: listed in use, kept (and named, an error);
#   - an idle device (dev create): kept;
#   - a statistics file whose device is gone: removed;
#   - a device held by a live remote owner (the spec peer beating its
#     heartbeat, as a QEMU guest does): kept; once that owner is killed and
#     its heartbeat stands still past remote_timeout_ms: removed;
#   - a stale device that a process still has open (QEMU maps the file
#     before its guest claims a port): kept until that process goes;
#   - the private device of a --loopback run whose process is gone: removed;
#   - as root, in a private /dev/shm (a mount namespace): the same without
#     NAMEs, and dev list --json names exactly what is there; a file at a
#     statistics path that is not one stays.
set -euo pipefail
NTBT=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PEER=$SRC/tests/spec/shm_spec_peer.py
name=t-ls-$$
dir=$(mktemp -d)
cleanup() {
        jobs -p | xargs -r kill -9 2> /dev/null || true
        wait 2> /dev/null || true
        rm -rf "$dir"
        rm -f /dev/shm/ntbt-"$name"*
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
wait_file() {
        for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.05; done
        fail "$1 did not appear"
}
# The state dev list --json gives device $1 (or statistics file $1.stats-$2).
state() {
        "$NTBT" dev list --json 2> /dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
name, port = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None
if port is None:
    m = [e["state"] for e in d["devices"] if e["name"] == name]
else:
    m = [e["state"] for e in d["stats"] if e["name"] == name and e["port"] == port]
print(m[0] if m else "absent")' "$@"
}

# A device whose owner was killed, with the statistics file it left.
"$NTBT" recv --dev "shm:$name-dead" > /dev/null 2>&1 &
p=$!
wait_file "/dev/shm/ntbt-$name-dead.stats-0"
kill -9 $p
wait $p || true
# A live owner.
"$NTBT" recv --dev "shm:$name-live" > /dev/null 2>&1 &
live=$!
wait_file "/dev/shm/ntbt-$name-live.stats-0"
# An idle device.
"$NTBT" dev create "$name-idle"
# A statistics file whose device is gone.
"$NTBT" recv --dev "shm:$name-orph" > /dev/null 2>&1 &
p=$!
wait_file "/dev/shm/ntbt-$name-orph.stats-0"
kill -9 $p
wait $p || true
rm -f "/dev/shm/ntbt-$name-orph"
# The private device of a --loopback run whose process is gone.
sh -c 'exit 0' &
gone=$!
wait $gone
"$NTBT" dev create "$name-x-loop-$gone"

"$NTBT" dev list > "$dir/list.txt"
cat "$dir/list.txt"
grep -Eq "^$name-dead .*gone .* stale$" "$dir/list.txt" || fail "dev list: $name-dead is not stale"
grep -Eq "^$name-live .*pid $live, alive .* in use$" "$dir/list.txt" || fail "dev list: $name-live is not in use"
grep -Eq "^$name-idle .*free +free +idle$" "$dir/list.txt" || fail "dev list: $name-idle is not idle"
grep -Eq "ntbt-$name-orph.stats-0 .* stale: its device is gone$" "$dir/list.txt" ||
        fail "dev list: the orphaned statistics file"
grep -Eq "ntbt-$name-live.stats-0 +$live +live$" "$dir/list.txt" || fail "dev list: the live statistics file"

rc=0
"$NTBT" dev rm --stale "$name-dead" "shm:$name-live" "$name-idle" "$name-orph" "$name-x-loop-$gone" \
        > "$dir/rm.out" 2> "$dir/rm.err" || rc=$?
cat "$dir/rm.out" "$dir/rm.err"
[ $rc = 1 ] || fail "dev rm --stale with live and idle NAMEs exited $rc (want 1)"
grep -q "$name-live: in use" "$dir/rm.err" || fail "no reason given for keeping $name-live"
grep -q "$name-idle: idle" "$dir/rm.err" || fail "no reason given for keeping $name-idle"
for f in "$name-dead" "$name-dead.stats-0" "$name-orph.stats-0" "$name-x-loop-$gone"; do
        [ ! -e "/dev/shm/ntbt-$f" ] || fail "dev rm --stale left $f"
done
for f in "$name-live" "$name-live.stats-0" "$name-idle"; do
        [ -e "/dev/shm/ntbt-$f" ] || fail "dev rm --stale removed $f"
done
kill $live
wait $live || true
"$NTBT" dev rm "$name-live"
"$NTBT" dev rm "$name-idle"

# A live remote owner (heartbeat, no pid) is kept; killed, it is stale.
if command -v python3 > /dev/null; then
        "$NTBT" dev create "$name-remote"
        python3 "$PEER" claim "/dev/shm/ntbt-$name-remote" 1 60 --remote > "$dir/peer.out" 2>&1 &
        peer=$!
        for _ in $(seq 100); do grep -q claimed "$dir/peer.out" && break; sleep 0.05; done
        grep -q claimed "$dir/peer.out" || fail "spec peer: $(cat "$dir/peer.out")"
        [ "$(state "$name-remote")" = "in use" ] || fail "a live remote owner: $(state "$name-remote")"
        rc=0
        "$NTBT" dev rm --stale "$name-remote" 2> "$dir/err" || rc=$?
        [ $rc = 1 ] && [ -e "/dev/shm/ntbt-$name-remote" ] || fail "dev rm --stale removed a device a live remote owner holds"
        grep -q "remote, alive" "$dir/err" || fail "dev rm --stale: $(cat "$dir/err")"
        kill -9 $peer
        wait $peer || true
        # The heartbeat now stands still; after remote_timeout_ms (1 s) the owner is gone.
        [ "$(state "$name-remote")" = stale ] || fail "a dead remote owner: $(state "$name-remote")"
        "$NTBT" dev rm --stale "$name-remote" > /dev/null || fail "dev rm --stale of a dead remote owner's device"
        [ ! -e "/dev/shm/ntbt-$name-remote" ] || fail "the dead remote owner's device is left"
fi

# A stale device that a process has open stays until that process goes.
"$NTBT" recv --dev "shm:$name-open" > /dev/null 2>&1 &
p=$!
wait_file "/dev/shm/ntbt-$name-open.stats-0"
kill -9 $p
wait $p || true
sleep 60 < "/dev/shm/ntbt-$name-open" &
holder=$!
[ "$(state "$name-open")" = "open or mapped by a process" ] || fail "a held device: $(state "$name-open")"
rc=0
"$NTBT" dev rm --stale "$name-open" > /dev/null 2> "$dir/err" || rc=$?
[ $rc = 1 ] && [ -e "/dev/shm/ntbt-$name-open" ] || fail "dev rm --stale removed a device a process has open"
kill $holder
wait $holder || true
"$NTBT" dev rm --stale "$name-open" > /dev/null || fail "dev rm --stale after the holder went"
[ ! -e "/dev/shm/ntbt-$name-open" ] && [ ! -e "/dev/shm/ntbt-$name-open.stats-0" ] ||
        fail "dev rm --stale left $name-open"

# Usage.
rc=0; "$NTBT" dev rm --stale "bad/name" 2> /dev/null || rc=$?
[ $rc = 2 ] || fail "dev rm --stale bad/name: exit $rc"
rc=0; "$NTBT" dev list --bogus 2> /dev/null || rc=$?
[ $rc = 2 ] || fail "dev list --bogus: exit $rc"
"$NTBT" dev rm --stale "$name-none" 2> "$dir/err" && fail "dev rm --stale of nothing succeeded"
grep -q "no such device" "$dir/err" || fail "dev rm --stale of nothing: $(cat "$dir/err")"

# Without NAMEs, everything stale: only in a /dev/shm of our own, so that
# nothing another run left is touched.
if [ "$(id -u)" = 0 ] && unshare -m --propagation private true 2> /dev/null; then
        unshare -m --propagation private bash -s "$NTBT" "$name" "$dir" > "$dir/ns.out" 2>&1 <<'NS' || fail "private /dev/shm: $(cat "$dir/ns.out")"
set -euo pipefail
NTBT=$1 name=$2
cd "$3"
fail() { echo "FAIL: $*" >&2; exit 1; }
mount -t tmpfs -o size=256m,mode=1777 tmpfs /dev/shm
"$NTBT" recv --dev "shm:$name-dead" > /dev/null 2>&1 &
p=$!
for _ in $(seq 100); do [ -e "/dev/shm/ntbt-$name-dead.stats-0" ] && break; sleep 0.05; done
kill -9 $p; wait $p || true
"$NTBT" recv --dev "shm:$name-live" > /dev/null 2>&1 &
live=$!
for _ in $(seq 100); do [ -e "/dev/shm/ntbt-$name-live.stats-0" ] && break; sleep 0.05; done
"$NTBT" dev create "$name-idle"
: > "/dev/shm/ntbt-$name-orph.stats-1"
# Not a statistics file, though at such a path: never touched.
echo junk > "/dev/shm/ntbt-$name-junk.stats-0"
"$NTBT" dev list --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
n = sys.argv[1]
devs = {e["name"]: e["state"] for e in d["devices"]}
stats = {(e["name"], e["port"]): e["stale"] for e in d["stats"]}
assert devs == {n + "-dead": "stale", n + "-live": "in use", n + "-idle": "idle"}, devs
assert stats == {(n + "-dead", 0): True, (n + "-live", 0): False, (n + "-orph", 1): True,
                 (n + "-junk", 0): False}, stats
' "$name" || fail "dev list --json"
"$NTBT" dev rm --stale > rm.out || fail "dev rm --stale exited $?"
cat rm.out
left=$(cd /dev/shm && ls | sort | tr '\n' ' ')
[ "$left" = "ntbt-$name-idle ntbt-$name-junk.stats-0 ntbt-$name-live ntbt-$name-live.stats-0 " ] ||
        fail "left: $left"
[ "$(grep -c '^removed' rm.out)" = 3 ] || fail "removed: $(cat rm.out)"
# Killed (its statistics file goes with it), the live owner leaves its port
# claimed: now that device is stale too, and then nothing is.
kill $live; wait $live || true
"$NTBT" dev rm --stale > rm2.out || fail "dev rm --stale exited $?"
[ "$(cat rm2.out)" = "removed device $name-live (/dev/shm/ntbt-$name-live)" ] || fail "removed: $(cat rm2.out)"
"$NTBT" dev rm --stale > rm3.out || fail "dev rm --stale (nothing stale) exited $?"
[ ! -s rm3.out ] || fail "nothing stale, yet: $(cat rm3.out)"
[ "$(ls /dev/shm | tr '\n' ' ')" = "ntbt-$name-idle ntbt-$name-junk.stats-0 " ] || fail "left: $(ls /dev/shm)"
echo "private /dev/shm: ok"
NS
        cat "$dir/ns.out"
else
        echo "not root, or no mount namespace: dev rm --stale without NAMEs is left out"
fi
echo "dev list / rm --stale: ok"
