#!/usr/bin/env bash
# Remote store throughput: arche's SftpStore and S3Store against rclone 1.60 on the
# same servers in one run: an OpenSSH sshd and a one-node Ceph radosgw on 127.0.0.1,
# started and stopped by the bench binary (the test fixtures, tests/backup/*_fixture.h).
#
#   bench/store-remote.sh [MIB]      (default 1024)
#
# Rows, for each store: one object of MIB MiB put and got back (one writer / reader;
# rclone copyto of the file, there and back), then the same bytes as MIB/16 objects
# of 16 MiB (the repository's packs) with as many threads as the store's parallelism
# (8), against rclone copy of the directory with --transfers 8. Wall and CPU time
# (arche in-process, rclone as a child); the servers' CPU is not counted. Every byte
# is compared after each round trip. The data is random (nothing compresses) and read
# from the page cache. radosgw stores into a memstore OSD, so the cluster gets 6 GiB
# of RAM room here (deleted objects wait for the gateway's garbage collection).
# Environment: BENCH_DIR (work directory, default /var/tmp/arche-bench/store-remote),
# STORE_BENCH (the binary, default build/tests/backup/store_bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${STORE_BENCH:-$root/build/tests/backup/store_bench}
work=${BENCH_DIR:-/var/tmp/arche-bench/store-remote}
command -v rclone >/dev/null || { echo "bench/store-remote.sh: rclone missing (run scripts/install-deps.sh)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/store-remote.sh: /usr/bin/time missing (package time)" >&2; exit 1; }
[ -x "$bin" ] || { echo "bench/store-remote.sh: no $bin (cmake --build build --target store_bench)" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
rclone version | head -1
# rclone 1.60 refuses any AWS_CA_BUNDLE on its http transport ("unsupported transport");
# the gateway here is plain http, which needs no CA.
unset AWS_CA_BUNDLE
export ARCHE_RGW_MEMSTORE_BYTES=6442450944
export ARCHE_RGW_EXTRA_CONF="rgw gc obj min wait = 0
rgw gc processor period = 5"
exec "$bin" "$work" "${1:-1024}"
