#!/usr/bin/env bash
# Fixture of every test: the tests create shm devices (format 2 allocates
# each one in full at creation: 32 MiB with the default geometry), up to
# about four at once with ctest -j2.  A small /dev/shm (Docker's default is
# 64 MiB) would fail them at random with ENOSPC; fail once, clearly, instead.
set -euo pipefail
need_mib=${NTBT_TEST_SHM_MIB:-512}
avail_kib=$(df --output=avail -k /dev/shm | tail -n 1 | tr -d ' ')
if [ "$avail_kib" -lt $((need_mib * 1024)) ]; then
        echo "FAIL: /dev/shm has $((avail_kib / 1024)) MiB free; the tests need $need_mib MiB" >&2
        echo "      (as root: mount -o remount,size=1G /dev/shm; in Docker: --shm-size=1g)" >&2
        exit 1
fi
echo "/dev/shm: $((avail_kib / 1024)) MiB free (the tests need $need_mib MiB)"
