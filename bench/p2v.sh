#!/usr/bin/env bash
# P2V imaging (acceptance 6): `arche p2v image` beside partclone.ext4 (used blocks
# of one file system, its own format) and `qemu-img convert` of the whole disk, on
# the same disk: MBR, one ext4 partition, free space full of deleted random data.
# Wall and CPU (user+sys) seconds and the output's size on disk, one run each,
# page cache dropped before each (as root).
# Usage: bench/p2v.sh [ARCHE_BINARY]   (env: BENCH_DIR (/var/tmp/arche-bench-p2v),
#        SIZE (4G), DELETED (1536M), DATA (1024M))
set -euo pipefail
ARCHE=$(realpath "${1:-build/cli/arche}")
dir=${BENCH_DIR:-/var/tmp/arche-bench-p2v}
size=${SIZE:-4G}
deleted=${DELETED:-1536M}
data=${DATA:-1024M}
mkdir -p "$dir"
cd "$dir"
mnt=$dir/mnt
loop=
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then
    for _ in 1 2 3 4 5; do umount "$mnt" 2>/dev/null && break; sleep 1; done
  fi
  [ -n "$loop" ] && losetup -d "$loop"
  rm -rf "$mnt" out.qcow2 out.pc whole.qcow2
}
trap cleanup EXIT

if [ ! -f disk.raw ] || [ "$(cat disk.params 2>/dev/null)" != "$size $deleted $data" ]; then
  echo "making the $size bench disk (once)..." >&2
  rm -f disk.raw
  truncate -s "$size" disk.raw
  printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q disk.raw
  start=$(sfdisk -q -l -o Start disk.raw | awk 'NR == 2 { print $1 }')
  sectors=$(sfdisk -q -l -o Sectors disk.raw | awk 'NR == 2 { print $1 }')
  loop=$(losetup -f --show -o $((start * 512)) --sizelimit $((sectors * 512)) disk.raw)
  mkfs.ext4 -q -L bench "$loop"
  mkdir -p "$mnt"
  mount "$loop" "$mnt"
  head -c "$deleted" /dev/urandom > "$mnt/deleted.bin"
  sync
  rm "$mnt/deleted.bin"
  sync
  mkdir -p "$mnt/data"
  # The data: files of 1 MiB to 64 MiB, half random, half text-like (compressible).
  left=$(numfmt --from=iec "$data") i=0
  while [ "$left" -gt 0 ]; do
    n=$(( (1 + (i * 37) % 64) * 1048576 )); [ "$n" -gt "$left" ] && n=$left
    if [ $((i % 2)) = 0 ]; then head -c "$n" /dev/urandom; else head -c "$n" < <(yes "Kundendaten Zeile $i"); fi > "$mnt/data/f$i"
    left=$((left - n)) i=$((i + 1))
  done
  sync
  for _ in 1 2 3 4 5 6 7 8 9 10; do umount "$mnt" 2>/dev/null && break; sleep 1; done
  losetup -d "$loop"
  loop=
  echo "$size $deleted $data" > disk.params
fi
start=$(sfdisk -q -l -o Start disk.raw | awk 'NR == 2 { print $1 }')
sectors=$(sfdisk -q -l -o Sectors disk.raw | awk 'NR == 2 { print $1 }')
loop=$(losetup -f --show -r -o $((start * 512)) --sizelimit $((sectors * 512)) disk.raw)
used=$(dumpe2fs -h "$loop" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Free blocks/ { f = $2 } /^Block size/ { b = $2 } END { print (c - f) * b }')

drop() { sync; [ "$(id -u)" = 0 ] && echo 3 > /proc/sys/vm/drop_caches || true; }
# run NAME OUTPUT CMD...: one row
run() {
  local name=$1 output=$2
  shift 2
  drop
  /usr/bin/time -f '%e %U %S' -o "$dir/time.txt" "$@" >/dev/null 2>&1
  read -r wall user sys < "$dir/time.txt"
  local bytes
  bytes=$(du -B1 "$output" | cut -f1)
  printf '%-28s %8.2f %8.2f %10.2f %8.2f\n' "$name" "$wall" "$(echo "$user + $sys" | bc)" \
    "$(echo "scale=2; $bytes / 1048576" | bc)" "$(echo "scale=3; $bytes / $used" | bc)"
}
echo "disk $size, ext4 used $(numfmt --to=iec "$used"), deleted data in free space $deleted"
printf '%-28s %8s %8s %10s %8s\n' "" "wall s" "CPU s" "out MiB" "/used"
run "arche p2v image (qcow2)" out.qcow2 "$ARCHE" -q p2v image disk.raw --to out.qcow2 --overwrite
run "partclone.ext4 -c" out.pc partclone.ext4 -c -q -s "$loop" -O out.pc -L "$dir/partclone.log"
run "qemu-img convert (qcow2)" whole.qcow2 qemu-img convert -O qcow2 disk.raw whole.qcow2
