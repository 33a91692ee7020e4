#!/usr/bin/env bash
# Device administration never touches what is not an ntbt device, and a
# failed open leaves nothing behind:
#   - `dev rm` refuses an ordinary file, a symlink and a FIFO (each left in
#     place, with a reason), and removes a real device;
#   - a bad device string (unknown key, bad port) fails in one line and does
#     not leave the device it would have created;
#   - statistics files planted as a symlink or a FIFO are neither followed
#     nor waited on by dev show;
#   - a device file that the group may write is refused without shared=1.
set -euo pipefail
NTBT=$1
dir=$(mktemp -d)
name=t-adm-$$
trap 'rm -rf "$dir"; "$NTBT" dev rm "$name" 2> /dev/null || true' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo precious > "$dir/file"
ln -s "$dir/file" "$dir/link"
mkfifo "$dir/fifo"
for f in file link fifo; do
        rc=0
        timeout 10 "$NTBT" dev rm "$dir/$f" 2> "$dir/err" || rc=$?
        [ "$rc" = 1 ] || fail "dev rm $f exited $rc (want 1)"
        [ -e "$dir/$f" ] || [ -L "$dir/$f" ] || fail "dev rm removed the $f"
        grep -q "not an ntbt device\|symbolic link\|not a regular file" "$dir/err" ||
                fail "dev rm $f gave no reason: $(cat "$dir/err")"
done
grep -q precious "$dir/file" || fail "the file changed"

for bad in "shm:$name,prot=1" "shm:$name,port=2" "pcie:$name,wc=x"; do
        rc=0
        "$NTBT" recv --dev "$bad" > /dev/null 2> "$dir/err" || rc=$?
        [ "$rc" != 0 ] || fail "recv --dev $bad succeeded"
        [ "$(wc -l < "$dir/err")" = 1 ] || fail "recv --dev $bad: not one line: $(cat "$dir/err")"
        [ ! -e "/dev/shm/ntbt-$name" ] || fail "recv --dev $bad left /dev/shm/ntbt-$name"
done

"$NTBT" dev create "$name"
# Statistics files planted by someone else: a symlink to a secret and a FIFO.
# dev show neither follows the one nor hangs on the other.
echo secret > "$dir/secret"
ln -s "$dir/secret" "/dev/shm/ntbt-$name.stats-0"
mkfifo "/dev/shm/ntbt-$name.stats-1"
rc=0
timeout 10 "$NTBT" dev show "$name" > "$dir/show.out" 2> "$dir/show.err" || rc=$?
[ "$rc" = 0 ] || fail "dev show with planted statistics files exited $rc: $(cat "$dir/show.err")"
grep -q "symbolic link" "$dir/show.err" || fail "dev show did not refuse the symlinked statistics file"
grep -q "not a regular file" "$dir/show.err" || fail "dev show did not refuse the FIFO"
! grep -q secret "$dir/show.out" || fail "dev show read through the symlink"
rm -f "/dev/shm/ntbt-$name.stats-0" "/dev/shm/ntbt-$name.stats-1"
chmod g+w "/dev/shm/ntbt-$name"
rc=0
timeout 20 "$NTBT" ping --client --dev "shm:$name" --count 1 2> "$dir/err" || rc=$?
[ "$rc" != 0 ] && grep -q "shared=1" "$dir/err" || fail "a group-writable device was not refused: $(cat "$dir/err")"
chmod g-w "/dev/shm/ntbt-$name"
"$NTBT" dev rm "$name" || fail "dev rm of a real device failed"
[ ! -e "/dev/shm/ntbt-$name" ] || fail "dev rm left the device"
# A file system too small for the device (Docker's /dev/shm is 64 MiB): a
# clear ENOSPC at creation and no file left, never a SIGBUS later.
if [ "$(id -u)" = 0 ] && mkdir "$dir/small" && mount -t tmpfs -o size=8m tmpfs "$dir/small"; then
        rc=0
        "$NTBT" dev create "$dir/small/dev" 2> "$dir/err" || rc=$?
        umount_small() { umount "$dir/small" 2> /dev/null || true; }
        [ "$rc" = 1 ] || { umount_small; fail "dev create on a full file system exited $rc"; }
        grep -q "No space left" "$dir/err" || { umount_small; fail "no ENOSPC message: $(cat "$dir/err")"; }
        [ -z "$(ls -A "$dir/small")" ] || { umount_small; fail "a failed create left $(ls "$dir/small")"; }
        umount_small
else
        echo "not root (or no mount): the full file system case is left out"
fi
echo "dev admin: ok"
