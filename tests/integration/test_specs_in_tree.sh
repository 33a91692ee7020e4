#!/usr/bin/env bash
# A clone is self-contained: the specifications the code follows are in
# docs/spec/, nothing in the tree points outside it for them (../shared/spec,
# where they were kept before), and every docs/spec/ file the tree names
# exists.  (.ci/run and tests/vm may still look for the GPL seed patch in
# ../shared/seed, which must never enter the tree.)
#   test_specs_in_tree.sh SOURCE_DIR
set -euo pipefail
SRC=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$SRC"
for f in ntb-transport-v4.md shm-device.md pcie-model.md geometry-vectors.csv; do
        [ -s "docs/spec/$f" ] || fail "docs/spec/$f is missing"
done
# The tree as committed when git can say, else every file but build outputs.
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
        files() { git ls-files -co --exclude-standard; }
else
        files() { find . -path './build*' -prune -o -path ./.git -prune -o -type f -print; }
fi
out=$(files | grep -v '^tests/integration/test_specs_in_tree\.sh$' |
        xargs -d '\n' grep -nIE 'shared/spec' -- 2> /dev/null || true)
[ -z "$out" ] || fail "outside the tree (use docs/spec/):
$out"
for f in $(files | xargs -d '\n' grep -ohIE 'docs/spec/[A-Za-z0-9_.-]+' -- 2> /dev/null |
        sed 's/[.]$//' | sort -u); do
        [ -e "$f" ] || fail "$f is named but missing"
done
# The CSV the geometry test reads is the spec's, not a copy that can drift.
grep -q '"/docs/spec/geometry-vectors.csv"' tests/unit/test_geometry_vectors.c ||
        fail "test_geometry_vectors.c does not read docs/spec/geometry-vectors.csv"
echo "specs_in_tree: ok"
