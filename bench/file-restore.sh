#!/usr/bin/env bash
# One file out of an image backup (issue 11, acceptance 3): arche reads it straight
# out of the encrypted chunks (backup restore-file: lazy snapshot device, volume
# sandbox, libext2fs); restic's way is a full restore of the image, a loop mount and
# a copy. Both repositories hold one backup of the 4 GiB bench image
# (../shared/bench/mkimage.sh base: GPT, ext4, ~1.3 GiB data); the file is the one
# in /usr/bin whose size is nearest 1 MiB. Same run, repositories in the page cache
# for both; wall and CPU seconds (user + sys), best of three.
#
#   bench/file-restore.sh [ARCHE]      (root: restic's way needs a loop mount)
#
# Printed: time, bytes read from the repository (arche counts them: `restore-file
# --json` repository-bytes-read; restic's full restore reads every pack of the
# image), and that share of the repository. Targets (TARGETS.md): <= 0.3 s and
# < 1 % of the repository read.
# Environment: BENCH_IMAGES (where disk.raw is made once and shared with the other
# benches, default /var/tmp/arche-bench), BENCH_DIR (repositories and restores,
# default BENCH_IMAGES/file-restore), MKIMAGE (path of mkimage.sh), KEEP=1 keeps
# the repositories for the next run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ARCHE=$(realpath "${1:-$root/build/cli/arche}")
images=${BENCH_IMAGES:-/var/tmp/arche-bench}
work=${BENCH_DIR:-$images/file-restore}
mkdir -p "$images" "$work"
images=$(cd "$images" && pwd)
work=$(cd "$work" && pwd)

need() { command -v "$1" >/dev/null || { echo "bench/file-restore.sh: $1 missing (run scripts/install-deps.sh)" >&2; exit 1; }; }
need restic; need sfdisk; need jq; need losetup
[ -x "$ARCHE" ] || { echo "bench/file-restore.sh: no arche binary at $ARCHE (make build)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench/file-restore.sh: restic's way needs a loop mount (root)" >&2; exit 1; }

mkimage=${MKIMAGE:-}
for candidate in "$root/../shared/bench/mkimage.sh" "$root/../../shared/bench/mkimage.sh" /work/shared/bench/mkimage.sh; do
  [ -z "$mkimage" ] && [ -f "$candidate" ] && mkimage=$candidate
done
if [ ! -f "$images/disk.raw" ]; then
  [ -n "$mkimage" ] || { echo "bench/file-restore.sh: mkimage.sh not found; set MKIMAGE" >&2; exit 1; }
  echo "making $images/disk.raw (a few minutes) ..."
  bash "$mkimage" base "$images/disk.raw"
fi
disk=$(realpath "$images/disk.raw")
cd "$work"

export ARCHE_PASSPHRASE=bench-passphrase RESTIC_PASSWORD=bench-passphrase RESTIC_CACHE_DIR="$work/restic-cache"
mnt=$work/mnt
loop=
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
  rm -rf "$work/out" "$work/restore-restic" "$mnt"
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work/arche-repo" "$work/restic-repo" "$RESTIC_CACHE_DIR"
}
trap cleanup EXIT

# Both backups, once (kept with KEEP=1).
if [ ! -f arche-repo/config ] || [ arche-repo/config -ot "$disk" ]; then
  rm -rf arche-repo restic-repo "$RESTIC_CACHE_DIR"
  echo "backing up disk.raw with arche and restic (once) ..."
  "$ARCHE" backup init arche-repo -q
  "$ARCHE" backup create arche-repo::nightly --image "$disk" -q
  restic init -r restic-repo > /dev/null
  (cd "$(dirname "$disk")" && restic -r "$work/restic-repo" backup -q disk.raw)
fi

# The file: the one in /usr/bin nearest 1 MiB (from arche's own listing).
file=$("$ARCHE" backup ls --json arche-repo::nightly disk.raw/p1/usr/bin |
  jq -r '[.entries[] | select(.type == "file")] | min_by((.size - 1048576) | fabs) | "\(.path) \(.size)"')
read -r path size <<<"$file"
echo "file: p1$path ($size bytes)"

start=$(sfdisk -q -l -o Start "$disk" | awk 'NR == 2 { print $1 }')
sectors=$(sfdisk -q -l -o Sectors "$disk" | awk 'NR == 2 { print $1 }')
restic_way() {
  rm -rf "$work/restore-restic" "$work/out"; mkdir -p "$work/out" "$mnt"
  restic -r "$work/restic-repo" restore latest -q --target "$work/restore-restic"
  loop=$(losetup -f --show -r -o $((start * 512)) --sizelimit $((sectors * 512)) "$work/restore-restic/disk.raw")
  mount -o ro,noload "$loop" "$mnt"
  cp -a "$mnt$path" "$work/out/"
  umount "$mnt"; losetup -d "$loop"; loop=
}
# What every command pays before it looks at a snapshot: unlocking (argon2id), the
# lock, the snapshot list. Shown beside, so the share of the file's own work is clear.
arche_list() { "$ARCHE" backup list arche-repo > /dev/null; }
arche_way() {
  rm -rf "$work/out"
  "$ARCHE" backup restore-file --json arche-repo::nightly "disk.raw/p1$path" --to "$work/out" > "$work/arche.json"
}

# "wall cpu" of the best (by wall) of three runs of the shell function $1.
best() {
  local best_w="" best_c="" t w u s
  for _ in 1 2 3; do
    sync
    t=$( { TIMEFORMAT='%R %U %S'; time "$1" >/dev/null 2>&1; } 2>&1 )
    read -r w u s <<<"$t"
    if [ -z "$best_w" ] || [ "$(echo "$w < $best_w" | bc)" = 1 ]; then best_w=$w; best_c=$(echo "$u + $s" | bc); fi
  done
  echo "$best_w $best_c"
}
warm() { find "$@" -type f -exec cat {} + > /dev/null; }

warm arche-repo restic-repo
read -r a_wall a_cpu <<<"$(best arche_way)"
read -r l_wall l_cpu <<<"$(best arche_list)"
a_read=$(jq '."repository-bytes-read"' "$work/arche.json")
cmp -s <(debugfs -R "cat $path" "$disk?offset=$((start * 512))" 2>/dev/null) "$work/out/$(basename "$path")" \
  && a_ok=identical || a_ok=DIFFERENT
read -r r_wall r_cpu <<<"$(best restic_way)"
cmp -s "$work/out/$(basename "$path")" <(debugfs -R "cat $path" "$disk?offset=$((start * 512))" 2>/dev/null) \
  && r_ok=identical || r_ok=DIFFERENT

a_size=$(du -sb arche-repo | cut -f1)
r_size=$(du -sb restic-repo | cut -f1)
r_read=$(du -sb restic-repo/data | cut -f1)
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f %%", 100 * a / b }'; }
mib() { awk -v a="$1" 'BEGIN { printf "%.1f MiB", a / 1048576 }'; }
verdict() { awk -v a="$1" -v t="$2" 'BEGIN { print (a <= t) ? "met" : "NOT met" }'; }

printf '%-34s %16s %24s %10s %8s\n' "one ~1 MiB file, best of 3" "arche" "restic (restore+mount+cp)" "ratio" "target"
printf '%-34s %16s %24s %10s %8s\n' "wall seconds" "$a_wall" "$r_wall" \
  "$(awk -v a="$a_wall" -v b="$r_wall" 'BEGIN { printf "%.3fx", a / b }')" "<= 0.3 s: $(verdict "$a_wall" 0.3)"
printf '%-34s %16s %24s\n' "CPU seconds (user+sys)" "$a_cpu" "$r_cpu"
printf '%-34s %16s\n' "  of which unlock+lock (backup list)" "$l_wall wall, $l_cpu cpu"
printf '%-34s %16s %24s\n' "bytes read from the repository" "$(mib "$a_read")" "$(mib "$r_read") (all packs)"
printf '%-34s %16s %24s %10s %8s\n' "share of the repository" "$(pct "$a_read" "$a_size")" "$(pct "$r_read" "$r_size")" "" \
  "< 1 %: $(awk -v a="$a_read" -v b="$a_size" 'BEGIN { print (100 * a / b < 1) ? "met" : "NOT met" }')"
printf '%-34s %16s %24s\n' "repository size" "$(mib "$a_size")" "$(mib "$r_size")"
printf '%-34s %16s %24s\n' "file equals debugfs' copy" "$a_ok" "$r_ok"
