#!/bin/sh
# SPDX-License-Identifier: MIT
# check_case_lists.sh BINARY "CASE..." [BINARY "CASE..."]...: each test
# binary's --list must name the cases tests/CMakeLists.txt registers for it,
# in the same order, so that a case added to one is not missing from the other.
fail=0
while [ $# -ge 2 ]; do
	bin=$1 want=$(printf '%s\n' $2)
	shift 2
	got=$("$bin" --list) || { echo "$bin --list failed" >&2; fail=1; continue; }
	if [ "$got" != "$want" ]; then
		echo "$(basename "$bin"): --list and tests/CMakeLists.txt differ:" >&2
		echo "  CMake:  " $want >&2
		echo "  --list: " $got >&2
		fail=1
	fi
	n=$((n + 1))
done
[ $# -eq 0 ] || { echo "check_case_lists.sh: odd argument $1" >&2; exit 2; }
[ "$fail" = 0 ] && echo "case lists: ${n:-0} binaries agree with tests/CMakeLists.txt"
exit $fail
