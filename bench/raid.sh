#!/usr/bin/env bash
# RAID-1 benchmark: arche's mirror against a single raw image on the same disk, in
# one run (TARGETS.md: sequential write >= 0.8x, 4 KiB random write >= 0.6x, resync
# proportional to the dirty regions).
#
#   bench/raid.sh [ARCHE [RAID_IO]]
#
# Measured, each until durable (a flush at the end; the random writes flush every
# 64 requests, as a guest's journal commits): sequential 1 MiB writes, 4 KiB random
# writes; the mirror with xxh3, crc32c and without checksums. Then the checksum
# speeds that chose the default, the rebuild time per GiB of data, and the bytes
# the resync reads after a writer is killed with SIGKILL, against the bound the
# dirty regions give. Best of 3 runs, wall and CPU (user+sys) time side by side.
# Environment: BENCH_DIR (default /var/tmp/arche-bench/raid), SEQ_MB (1024),
# RAND_COUNT (20000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ARCHE=$(realpath "${1:-$root/build/cli/arche}")
RAID_IO=$(realpath "${2:-$root/build/bench/raid_io}")
work=${BENCH_DIR:-/var/tmp/arche-bench/raid}
seq_mb=${SEQ_MB:-1024}
rand_count=${RAND_COUNT:-20000}
[ -x "$ARCHE" ] || { echo "bench/raid.sh: no arche binary at $ARCHE (make build)" >&2; exit 1; }
[ -x "$RAID_IO" ] || { echo "bench/raid.sh: no raid_io at $RAID_IO (make build)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/raid.sh: /usr/bin/time missing (package time)" >&2; exit 1; }
mkdir -p "$work"
cd "$work"
rm -f ./*.raw
size=$((seq_mb * 1024 * 1024))

# fresh KIND: a new target of $size bytes; prints the name raid_io opens.
fresh() {
  rm -f s.raw a.raw b.raw
  case "$1" in
    single) truncate -s "$size" s.raw; echo s.raw ;;
    *) "$ARCHE" -q raid create a.raw b.raw --size "$size" --checksum "$1"; echo "mirror:a.raw+b.raw" ;;
  esac
  sync
}

# best KIND MODE ARGS...: best of 3 fresh runs; prints "wall cpu".
best() {
  local kind=$1 best_wall="" best_cpu="" target out; shift
  for _ in 1 2 3; do
    target=$(fresh "$kind")
    out=$(/usr/bin/time -f "cpu=%U+%S" "$RAID_IO" "$1" "$target" "${@:2}" 2>&1)
    wall=$(sed -n 's/^seconds=//p' <<<"$out")
    cpu=$(sed -n 's/^cpu=//p' <<<"$out" | bc)
    if [ -z "$best_wall" ] || [ "$(echo "$wall < $best_wall" | bc)" = 1 ]; then best_wall=$wall best_cpu=$cpu; fi
  done
  echo "$best_wall $best_cpu"
}

row() {  # LABEL SINGLE_WALL SINGLE_CPU MIRROR_WALL MIRROR_CPU BYTES
  local mb=$(echo "$6 / 1048576" | bc -l)
  printf '%-34s %9.0f %9.0f %8.2fx   %6.2f %6.2f\n' "$1" "$(echo "$mb / $2" | bc -l)" "$(echo "$mb / $4" | bc -l)" \
    "$(echo "$2 / $4" | bc -l)" "$3" "$5"
}

echo "checksum speed on 4 KiB blocks (the default is the faster):"
"$RAID_IO" checksums | sed 's/ (.*//; s/^/  /'
echo
printf '%-34s %9s %9s %9s   %13s\n' "write, until durable (best of 3)" "single" "mirror" "ratio" "CPU s single/mirror"
printf '%-34s %9s %9s %9s\n' "" "MB/s" "MB/s" ""
read -r sw sc < <(best single seq "$size")
read -r rw rc < <(best single rand "$size" "$rand_count")
for kind in xxh3 crc32c none; do
  read -r mw mc < <(best "$kind" seq "$size")
  row "sequential 1 MiB, mirror $kind" "$sw" "$sc" "$mw" "$mc" "$size"
  read -r mw mc < <(best "$kind" rand "$size" "$rand_count")
  row "random 4 KiB, mirror $kind" "$rw" "$rc" "$mw" "$mc" "$((rand_count * 4096))"
done
echo

# Rebuild: a mirror with $seq_mb MiB of data, one leg failed and removed, a new one added.
fresh xxh3 >/dev/null
"$RAID_IO" seq "mirror:a.raw+b.raw" "$size" >/dev/null
"$ARCHE" -q raid fail a.raw b.raw
"$ARCHE" -q raid remove a.raw b.raw
rm -f c.raw
sync
out=$(/usr/bin/time -f "%e %U %S" "$ARCHE" -q raid add a.raw 1 c.raw 2>&1)
read -r wall user sys <<<"$(tail -n 1 <<<"$out")"
copied=$("$ARCHE" raid status --json a.raw | sed -n 's/.*"last-rebuild":{[^}]*"bytes-written":\([0-9]*\).*/\1/p')
printf 'rebuild: %s MiB of data copied in %.2f s wall, %.2f s CPU: %.2f s per GiB\n' "$((copied / 1048576))" "$wall" \
  "$(echo "$user + $sys" | bc)" "$(echo "$wall * 1073741824 / $copied" | bc -l)"
"$ARCHE" -q image compare "mirror:a.raw+c.raw" "mirror:c.raw" && echo "check: the rebuilt leg reads the same"

# Resync after SIGKILL: 4 KiB writes into 16 hot regions of 4 MiB in a 4 GiB mirror.
rm -f a.raw b.raw c.raw
"$ARCHE" -q raid create a.raw b.raw --size 4G --region-size 4M
"$RAID_IO" hot "mirror:a.raw+b.raw" $((4 << 20)) 16 > hot.out &
pid=$!
while ! grep -q writing hot.out 2>/dev/null; do sleep 0.1; done
sleep 3
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
json=$("$ARCHE" raid assemble --json a.raw b.raw)
regions=$(sed -n 's/.*"last-resync":{[^}]*"regions":\([0-9]*\).*/\1/p' <<<"$json")
read_bytes=$(sed -n 's/.*"last-resync":{[^}]*"bytes-read":\([0-9]*\).*/\1/p' <<<"$json")
printf 'resync after SIGKILL: %s regions, %s MiB read (bound: 16 hot regions x 4 MiB x 2 legs = 128 MiB; the disk is 4096 MiB)\n' \
  "$regions" "$((read_bytes / 1048576))"
rm -f a.raw b.raw c.raw s.raw hot.out
