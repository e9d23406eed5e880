#!/usr/bin/env bash
# Image conversion, arche vs qemu-img, on the same data in one run (TARGETS.md):
#   raw -> qcow2 (anchor: qemu-img convert -m 8 -W), qcow2 -> raw, compressed raw -> qcow2.
# Usage: bench/convert.sh [ARCHE_BINARY]   (env: BENCH_DIR for the images, default /var/tmp/arche-bench)
set -euo pipefail
ARCHE=$(realpath "${1:-build/cli/arche}")
here=$(cd "$(dirname "$0")" && pwd)
mkimage=${MKIMAGE:-$here/../../shared/bench/mkimage.sh}
[ -x "$mkimage" ] || mkimage=$here/mkimage.sh
dir=${BENCH_DIR:-/var/tmp/arche-bench}
mkdir -p "$dir"
cd "$dir"
if [ ! -f disk.raw ]; then
  echo "making the 4 GiB bench image (once)..." >&2
  bash "$mkimage" base disk.raw
fi

# Seconds (wall clock) of one command; the page cache is warm for both tools alike.
seconds() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
row() { printf '%-34s %10.2f %10.2f %8.2fx\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"; }

cat disk.raw >/dev/null  # warm the cache once
rm -f q.qcow2 a.qcow2 q.raw a.raw qc.qcow2 ac.qcow2
printf '%-34s %10s %10s %9s\n' "work" "arche s" "qemu-img s" "ratio"
a=$(seconds "$ARCHE" -q image convert -O qcow2 disk.raw a.qcow2)
q=$(seconds qemu-img convert -m 8 -W -O qcow2 disk.raw q.qcow2)
row "raw -> qcow2 (qemu -m 8 -W)" "$a" "$q"
q1=$(seconds qemu-img convert -O qcow2 disk.raw q1.qcow2)
row "raw -> qcow2 (qemu default)" "$a" "$q1"
a=$(seconds "$ARCHE" -q image convert -O raw a.qcow2 a.raw)
q=$(seconds qemu-img convert -O raw q.qcow2 q.raw)
row "qcow2 -> raw" "$a" "$q"
a=$(seconds "$ARCHE" -q image convert -c -O qcow2 disk.raw ac.qcow2)
q=$(seconds qemu-img convert -c -m 8 -W -O qcow2 disk.raw qc.qcow2)
row "raw -> qcow2 compressed (zlib)" "$a" "$q"
printf '\nsizes: arche qcow2 %s, qemu qcow2 %s; compressed: arche %s, qemu %s\n' \
  "$(du -h a.qcow2 | cut -f1)" "$(du -h q.qcow2 | cut -f1)" "$(du -h ac.qcow2 | cut -f1)" "$(du -h qc.qcow2 | cut -f1)"
qemu-img compare -q disk.raw a.qcow2 && qemu-img compare -q disk.raw ac.qcow2 && cmp -s disk.raw a.raw \
  && echo "check: arche outputs equal the source (qemu-img compare, cmp)"
qemu-img check -q a.qcow2 && qemu-img check -q ac.qcow2 && echo "check: qemu-img check clean on arche outputs"
rm -f q.qcow2 a.qcow2 q.raw a.raw qc.qcow2 ac.qcow2 q1.qcow2
