#!/usr/bin/env bash
# Image conversion, arche vs qemu-img, on the same data in one run (TARGETS.md):
#   raw -> qcow2 (anchor: qemu-img convert -m 8 -W), qcow2 -> raw, compressed raw -> qcow2,
#   raw -> vmdk streamOptimized, raw -> vmdk (monolithicSparse) and vmdk -> qcow2; wall and
#   CPU seconds (user + system) of each, and the ratios arche / qemu-img.
# Usage: bench/convert.sh [ARCHE_BINARY]
#   env: BENCH_DIR for the images (default /var/tmp/arche-bench); ROWS=compressed runs
#   only the two compressed conversions, ROWS=reflink only the reflink rows; RUNS=N
#   takes the best of N runs (default 3).
# As root, the reflink rows: the same conversions on a loop-mounted XFS made with
# reflink=1, where arche shares the source's extents (docs/image.md "Reflink") and
# qemu-img copies.
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

# Best wall-clock seconds of three runs of one command that writes OUT, with the CPU
# seconds (user + system) of that run: "WALL CPU". Dirty pages of the previous run are
# written back first (sync, untimed), so neither tool pays for the other's writeback;
# the page cache holds the source for both alike. CPU time is printed too because the
# machines this runs on are often shared: wall time then depends on the neighbours.
best() {
  local out=$1 best="" cpu="" w u s; shift
  for _ in $(seq "${RUNS:-3}"); do
    rm -f "$out"; sync
    /usr/bin/time -f "%e %U %S" -o time.out "$@" >/dev/null
    read -r w u s < time.out
    if [ -z "$best" ] || [ "$(echo "$w < $best" | bc)" = 1 ]; then best=$w; cpu=$(echo "$u + $s" | bc); fi
  done
  rm -f time.out
  echo "$best $cpu"
}
# row NAME "ARCHE_WALL ARCHE_CPU" "ANCHOR_WALL ANCHOR_CPU"
row() {
  local aw ac qw qc
  read -r aw ac <<<"$2"; read -r qw qc <<<"$3"
  printf '%-34s %8.2f %8.2f %8.2f %8.2f %7.2fx %7.2fx\n' "$1" "$aw" "$ac" "$qw" "$qc" \
    "$(echo "$aw / $qw" | bc -l)" "$(echo "$ac / $qc" | bc -l)"
}

cat disk.raw >/dev/null  # warm the cache once
equal=ok clean=ok
rm -f q.qcow2 a.qcow2 q.raw a.raw qc.qcow2 ac.qcow2 a.vmdk q.vmdk av.qcow2 qv.qcow2 as.vmdk qs.vmdk
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
printf '%-34s %8s %8s %8s %8s %8s %8s\n' "work (best of ${RUNS:-3}, seconds)" "arche" "CPU" "qemu-img" "CPU" "wall x" "CPU x"
rows=${ROWS:-all}  # ROWS=compressed: only the compressed conversions
checks=()
if [ "$rows" = all ]; then
  a=$(best a.qcow2 "$ARCHE" -q image convert -O qcow2 disk.raw a.qcow2)
  q=$(best q.qcow2 qemu-img convert -m 8 -W -O qcow2 disk.raw q.qcow2)
  row "raw -> qcow2 (qemu -m 8 -W)" "$a" "$q"
  q1=$(best q1.qcow2 qemu-img convert -O qcow2 disk.raw q1.qcow2)
  row "raw -> qcow2 (qemu default)" "$a" "$q1"
  a=$(best a.raw "$ARCHE" -q image convert -O raw a.qcow2 a.raw)
  q=$(best q.raw qemu-img convert -O raw q.qcow2 q.raw)
  row "qcow2 -> raw" "$a" "$q"
  checks+=(a.qcow2)
fi
if [ "$rows" = reflink ]; then checks=(); fi
if [ "$rows" != reflink ]; then
a=$(best ac.qcow2 "$ARCHE" -q image convert -c -O qcow2 disk.raw ac.qcow2)
q=$(best qc.qcow2 qemu-img convert -c -m 8 -W -O qcow2 disk.raw qc.qcow2)
row "raw -> qcow2 compressed (zlib)" "$a" "$q"
a=$(best as.vmdk "$ARCHE" -q image convert -O vmdk -o subformat=streamOptimized disk.raw as.vmdk)
q=$(best qs.vmdk qemu-img convert -m 8 -W -O vmdk -o subformat=streamOptimized disk.raw qs.vmdk)
row "raw -> vmdk streamOptimized" "$a" "$q"
checks+=(ac.qcow2 as.vmdk)
if [ "$rows" = all ]; then
  a=$(best a.vmdk "$ARCHE" -q image convert -O vmdk disk.raw a.vmdk)
  q=$(best q.vmdk qemu-img convert -m 8 -W -O vmdk disk.raw q.vmdk)
  row "raw -> vmdk (qemu -m 8 -W)" "$a" "$q"
  a=$(best av.qcow2 "$ARCHE" -q image convert -O qcow2 a.vmdk av.qcow2)
  q=$(best qv.qcow2 qemu-img convert -m 8 -W -O qcow2 q.vmdk qv.qcow2)
  row "vmdk -> qcow2 (qemu -m 8 -W)" "$a" "$q"
  checks+=(a.vmdk av.qcow2)
  printf '\nsizes: arche qcow2 %s, qemu qcow2 %s\n' "$(du -h a.qcow2 | cut -f1)" "$(du -h q.qcow2 | cut -f1)"
fi
printf 'compressed sizes: qcow2 arche %s, qemu %s; streamOptimized arche %s, qemu %s\n' \
  "$(du -h ac.qcow2 | cut -f1)" "$(du -h qc.qcow2 | cut -f1)" "$(du -h as.vmdk | cut -f1)" "$(du -h qs.vmdk | cut -f1)"
fi
if { [ "$rows" = all ] || [ "$rows" = reflink ]; } && [ "$(id -u)" = 0 ] && command -v mkfs.xfs >/dev/null; then
  # The bench image copied (not shared) onto a fresh reflink XFS; arche and qemu-img
  # both convert there, until durable (arche --sync; qemu-img then sync(1) of its output).
  rm -f xfs.img; truncate -s 12G xfs.img
  mkfs.xfs -q -m reflink=1 xfs.img
  mkdir -p xfs; mount -o loop xfs.img xfs
  trap 'umount xfs 2>/dev/null || true' EXIT
  cp --sparse=always --reflink=never disk.raw xfs/disk.raw
  sync
  a=$(best xfs/a.qcow2 "$ARCHE" -q image convert --sync -O qcow2 xfs/disk.raw xfs/a.qcow2)
  q=$(best xfs/q.qcow2 bash -c "qemu-img convert -m 8 -W -O qcow2 xfs/disk.raw xfs/q.qcow2 && sync xfs/q.qcow2")
  row "raw -> qcow2 on XFS reflink (sync)" "$a" "$q"
  a=$(best xfs/a.raw "$ARCHE" -q image convert --sync -O raw xfs/a.qcow2 xfs/a.raw)
  q=$(best xfs/q.raw bash -c "qemu-img convert -m 8 -W -O raw xfs/q.qcow2 xfs/q.raw && sync xfs/q.raw")
  row "qcow2 -> raw on XFS reflink (sync)" "$a" "$q"
  qemu-img compare -q xfs/disk.raw xfs/a.qcow2 || equal="DIFFERS: xfs/a.qcow2"
  cmp -s xfs/disk.raw xfs/a.raw || equal="DIFFERS: xfs/a.raw"
  qemu-img check -q xfs/a.qcow2 || clean="NOT CLEAN: xfs/a.qcow2"
  umount xfs; rm -f xfs.img; trap - EXIT
fi
for f in "${checks[@]}"; do
  qemu-img compare -q disk.raw "$f" || { equal="DIFFERS: $f"; break; }
done
if [ "$rows" = all ] && ! cmp -s disk.raw a.raw; then equal="DIFFERS: a.raw"; fi
for f in "${checks[@]}"; do
  qemu-img check -q "$f" || { clean="NOT CLEAN: $f"; break; }
done
echo "check: arche outputs equal the source (qemu-img compare, cmp): $equal"
echo "check: qemu-img check on arche outputs: $clean"
rm -f q.qcow2 a.qcow2 q.raw a.raw qc.qcow2 ac.qcow2 q1.qcow2 a.vmdk q.vmdk av.qcow2 qv.qcow2 as.vmdk qs.vmdk
