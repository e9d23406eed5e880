#!/usr/bin/env bash
# Image conversion, arche vs qemu-img, on the same data in one run (TARGETS.md):
#   raw -> qcow2 (anchor: qemu-img convert -m 8 -W), qcow2 -> raw, compressed raw -> qcow2,
#   raw -> vmdk (monolithicSparse) and vmdk -> qcow2.
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

# Best wall-clock seconds of three runs of one command that writes OUT. Dirty pages
# of the previous run are written back first (sync, untimed), so neither tool pays
# for the other's writeback; the page cache holds the source for both alike.
best() {
  local out=$1 best="" t0 t1 t; shift
  for _ in 1 2 3; do
    rm -f "$out"; sync
    t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
    t=$(echo "$t1 - $t0" | bc)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
  done
  echo "$best"
}
row() { printf '%-34s %10.2f %10.2f %8.2fx\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"; }

cat disk.raw >/dev/null  # warm the cache once
rm -f q.qcow2 a.qcow2 q.raw a.raw qc.qcow2 ac.qcow2 a.vmdk q.vmdk av.qcow2 qv.qcow2
printf '%-34s %10s %10s %9s\n' "work (best of 3, seconds)" "arche" "qemu-img" "ratio"
a=$(best a.qcow2 "$ARCHE" -q image convert -O qcow2 disk.raw a.qcow2)
q=$(best q.qcow2 qemu-img convert -m 8 -W -O qcow2 disk.raw q.qcow2)
row "raw -> qcow2 (qemu -m 8 -W)" "$a" "$q"
q1=$(best q1.qcow2 qemu-img convert -O qcow2 disk.raw q1.qcow2)
row "raw -> qcow2 (qemu default)" "$a" "$q1"
a=$(best a.raw "$ARCHE" -q image convert -O raw a.qcow2 a.raw)
q=$(best q.raw qemu-img convert -O raw q.qcow2 q.raw)
row "qcow2 -> raw" "$a" "$q"
a=$(best ac.qcow2 "$ARCHE" -q image convert -c -O qcow2 disk.raw ac.qcow2)
q=$(best qc.qcow2 qemu-img convert -c -m 8 -W -O qcow2 disk.raw qc.qcow2)
row "raw -> qcow2 compressed (zlib)" "$a" "$q"
a=$(best a.vmdk "$ARCHE" -q image convert -O vmdk disk.raw a.vmdk)
q=$(best q.vmdk qemu-img convert -m 8 -W -O vmdk disk.raw q.vmdk)
row "raw -> vmdk (qemu -m 8 -W)" "$a" "$q"
a=$(best av.qcow2 "$ARCHE" -q image convert -O qcow2 a.vmdk av.qcow2)
q=$(best qv.qcow2 qemu-img convert -m 8 -W -O qcow2 q.vmdk qv.qcow2)
row "vmdk -> qcow2 (qemu -m 8 -W)" "$a" "$q"
printf '\nsizes: arche qcow2 %s, qemu qcow2 %s; compressed: arche %s, qemu %s\n' \
  "$(du -h a.qcow2 | cut -f1)" "$(du -h q.qcow2 | cut -f1)" "$(du -h ac.qcow2 | cut -f1)" "$(du -h qc.qcow2 | cut -f1)"
qemu-img compare -q disk.raw a.qcow2 && qemu-img compare -q disk.raw ac.qcow2 && cmp -s disk.raw a.raw \
  && qemu-img compare -q disk.raw a.vmdk && qemu-img compare -q disk.raw av.qcow2 \
  && echo "check: arche outputs equal the source (qemu-img compare, cmp)"
qemu-img check -q a.qcow2 && qemu-img check -q ac.qcow2 && qemu-img check -q a.vmdk && qemu-img check -q av.qcow2 && echo "check: qemu-img check clean on arche outputs"
rm -f q.qcow2 a.qcow2 q.raw a.raw qc.qcow2 ac.qcow2 q1.qcow2 a.vmdk q.vmdk av.qcow2 qv.qcow2
