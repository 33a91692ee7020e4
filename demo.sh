#!/usr/bin/env bash
# make demo: the main job.  For now it shows the emulated device's life cycle:
# create a private shm device, show its registers, remove it.
set -euo pipefail
NTBT=${1:-build/ntbt}
NAME=demo-$$
trap '"$NTBT" dev rm "$NAME" 2>/dev/null || true' EXIT
echo "+ ntbt dev create $NAME --mw-count 2 --mw-size 1M"
"$NTBT" dev create "$NAME" --mw-count 2 --mw-size 1M
echo "+ ntbt dev show $NAME"
"$NTBT" dev show "$NAME"
echo "+ ntbt dev rm $NAME"
"$NTBT" dev rm "$NAME"
trap - EXIT
echo "demo: ok"
