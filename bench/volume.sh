#!/usr/bin/env bash
# Files out of a disk image: arche image extract (sandboxed parser, libext2fs)
# beside debugfs (e2fsprogs, same library, no sandbox) and, as root, the kernel's
# ext4 through a read-only loop mount + cp. Same image, same run, page cache warm
# for all; wall and CPU (user+sys, children included) seconds, best of three.
# Usage: bench/volume.sh [ARCHE_BINARY]   (env: BENCH_DIR, default /var/tmp/arche-bench)
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
start=$(sfdisk -q -l -o Start disk.raw | awk 'NR == 2 { print $1 }')
size=$(sfdisk -q -l -o Sectors disk.raw | awk 'NR == 2 { print $1 }')
offset=$((start * 512))
out=$dir/volume-bench-out
mnt=$dir/volume-bench-mnt
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  [ -n "${loop:-}" ] && losetup -d "$loop"
  rm -rf "$out" "$mnt"
}
trap cleanup EXIT

# "wall cpu" of the best (by wall) of three runs; OUT is emptied before each.
best() {
  local best_w="" best_c="" t
  for _ in 1 2 3; do
    rm -rf "$out"; mkdir -p "$out"; sync
    t=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>&1; } 2>&1 )
    read -r w u s <<<"$t"
    if [ -z "$best_w" ] || [ "$(echo "$w < $best_w" | bc)" = 1 ]; then best_w=$w; best_c=$(echo "$u + $s" | bc); fi
  done
  echo "$best_w $best_c"
}
row() {  # LABEL "wall cpu" ...
  local label=$1; shift
  printf '%-30s' "$label"
  for r in "$@"; do read -r w c <<<"$r"; printf ' %8.2f %8.2f' "$w" "$c"; done
  printf '\n'
}

cat disk.raw > /dev/null
img="disk.raw?offset=$offset"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$mnt"
  loop=$(losetup -f --show -r -o "$offset" --sizelimit $((size * 512)) disk.raw)
  mount -o ro,noload "$loop" "$mnt"
fi
printf '%-30s %17s %17s %17s\n' "best of 3 (wall, cpu seconds)" "arche extract" "debugfs" "mount + cp"
for what in "one small file:/home/kunde/wichtig.txt" "300 MiB file:/random.bin" "1.3 GiB tree:/"; do
  label=${what%%:*} path=${what#*:}
  a=$(best "$ARCHE" -q image extract disk.raw "p1$path" --to "$out")
  if [ "$path" = / ]; then
    d=$(best debugfs -R "rdump / $out" "$img")
    m=$([ -d "$mnt/home" ] && best cp -a "$mnt/." "$out/" || echo "0 0")
  else
    d=$(best debugfs -R "dump -p $path $out/$(basename "$path")" "$img")
    m=$([ -d "$mnt/home" ] && best cp -a "$mnt$path" "$out/" || echo "0 0")
  fi
  row "$label" "$a" "$d" "$m"
done
rm -rf "$out"; mkdir -p "$out"
"$ARCHE" -q image extract disk.raw p1/random.bin --to "$out"
debugfs -R "dump /random.bin $out/ref.bin" "$img" 2>/dev/null
cmp -s "$out/random.bin" "$out/ref.bin" && echo "check: arche's random.bin equals debugfs' dump"
