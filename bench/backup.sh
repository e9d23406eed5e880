#!/usr/bin/env bash
# Backup benchmark: arche against borg 1.2 and restic on the bench images
# (../shared/bench/mkimage.sh: a 4 GiB raw disk with ~1.3 GiB of data, and a copy
# with ~5 % changed), all in one run on the same machine, printed side by side.
#
#   bench/backup.sh [ARCHE]        (root: 'mkimage.sh change' needs a loop device)
#
# Measured: first backup of disk.raw; second backup of disk2.raw (reading it all),
# and the same change as a qcow2 overlay on disk.raw (arche reads only the overlay);
# full restore of disk2.raw; repository size after both backups; peak RSS.
# Every run starts with the input in the page cache (read once before), so the
# tools compete on the same footing. Targets: docs/backup.md and TARGETS.md.
# Environment: BENCH_IMAGES (where disk.raw is made once and shared with
# bench/convert.sh, default /var/tmp/arche-bench), BENCH_DIR (work directory for
# disk2.raw, the overlay and the repositories, default BENCH_IMAGES/backup),
# MKIMAGE (path of mkimage.sh), KEEP=1 keeps the repositories.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ARCHE=$(realpath "${1:-$root/build/cli/arche}")
images=${BENCH_IMAGES:-/var/tmp/arche-bench}
work=${BENCH_DIR:-$images/backup}
mkdir -p "$images" "$work"
images=$(cd "$images" && pwd)
work=$(cd "$work" && pwd)

need() { command -v "$1" >/dev/null || { echo "bench/backup.sh: $1 missing (run scripts/install-deps.sh)" >&2; exit 1; }; }
need borg; need restic; need qemu-img; need sfdisk; need mkfs.ext4
[ -x /usr/bin/time ] || { echo "bench/backup.sh: /usr/bin/time missing (package time)" >&2; exit 1; }
[ -x "$ARCHE" ] || { echo "bench/backup.sh: no arche binary at $ARCHE (make build)" >&2; exit 1; }

mkimage=${MKIMAGE:-}
for candidate in "$root/../shared/bench/mkimage.sh" "$root/../../shared/bench/mkimage.sh" /work/shared/bench/mkimage.sh; do
  [ -z "$mkimage" ] && [ -f "$candidate" ] && mkimage=$candidate
done
[ -n "$mkimage" ] || { echo "bench/backup.sh: mkimage.sh not found; set MKIMAGE" >&2; exit 1; }

if [ ! -f "$images/disk.raw" ]; then
  echo "making $images/disk.raw (a few minutes) ..."
  bash "$mkimage" base "$images/disk.raw"
fi
# The real file, never a symbolic link: borg and restic would store the link itself.
disk=$(realpath "$images/disk.raw")
cd "$work"
if [ ! -f disk2.raw ] || [ disk2.raw -ot "$disk" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "bench/backup.sh: 'mkimage.sh change' needs root" >&2; exit 1; }
  rm -f overlay.qcow2
  bash "$mkimage" change "$disk" disk2.raw
fi
# The same change as a qcow2 overlay on disk.raw: qemu-img rebase copies into the
# overlay exactly the clusters in which disk2.raw differs from disk.raw.
if [ ! -f overlay.qcow2 ]; then
  qemu-img create -q -f qcow2 -b "$work/disk2.raw" -F raw overlay.qcow2
  qemu-img rebase -q -b "$disk" -F raw overlay.qcow2
fi
sleep 2  # arche trusts a backing file as unchanged only when its times are settled

export ARCHE_PASSPHRASE=bench-passphrase BORG_PASSPHRASE=bench-passphrase RESTIC_PASSWORD=bench-passphrase
export BORG_BASE_DIR="$work/borg-home" RESTIC_CACHE_DIR="$work/restic-cache"
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
rm -rf arche-repo arche-ov borg-repo restic-repo restore-* "$BORG_BASE_DIR" "$RESTIC_CACHE_DIR"

warm() { find "$@" -type f -exec cat {} + > /dev/null; }
# timed NAME CMD...: runs CMD, records wall seconds, peak RSS (KB) and CPU seconds
# (user + system) under NAME. CPU time is printed too because the machines this runs
# on are often shared: wall time then depends on the neighbours, CPU time much less.
declare -A secs rss cpu
timed() {
  local name=$1 user sys; shift
  /usr/bin/time -f "%e %M %U %S" -o "$work/time.$name" "$@" > "$work/log.$name" 2>&1 || {
    echo "bench/backup.sh: '$*' failed:" >&2; tail -5 "$work/log.$name" >&2; exit 1; }
  read -r secs[$name] rss[$name] user sys < "$work/time.$name"
  cpu[$name]=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
}
size_of() { du -sb "$1" | cut -f1; }

echo "arche ..."
"$ARCHE" backup init arche-repo -q
warm "$disk";  timed arche_first  "$ARCHE" backup create arche-repo::one --image "$disk" -q
cp -a arche-repo arche-ov  # the overlay run starts from the state after the first backup
warm disk2.raw; timed arche_second "$ARCHE" backup create arche-repo::two --image disk2.raw -q
warm overlay.qcow2; timed arche_overlay "$ARCHE" backup create arche-ov::two --image overlay.qcow2 -q
arche_size=$(size_of arche-repo)
warm arche-repo; timed arche_restore "$ARCHE" backup restore arche-repo::two --image disk2.raw --to restore-arche.raw -q
cmp -s disk2.raw restore-arche.raw && arche_ok=identical || arche_ok=DIFFERENT
"$ARCHE" backup restore arche-ov::two --image overlay.qcow2 --to restore-arche-ov.raw -q
cmp -s disk2.raw restore-arche-ov.raw && arche_ov_ok=identical || arche_ov_ok=DIFFERENT
rm -f restore-arche.raw restore-arche-ov.raw

echo "borg ..."
borg init -e repokey-blake2 borg-repo > /dev/null 2>&1
warm "$disk";  timed borg_first  borg create --chunker-params fixed,4194304 -C zstd,3 borg-repo::one "$disk"
warm disk2.raw; timed borg_second borg create --chunker-params fixed,4194304 -C zstd,3 borg-repo::two disk2.raw
borg_size=$(size_of borg-repo)
mkdir -p restore-borg
warm borg-repo; timed borg_restore bash -c "cd '$work/restore-borg' && borg extract --sparse '$work/borg-repo::two'"
rm -rf restore-borg

echo "restic ..."
restic init -r restic-repo > /dev/null
warm "$disk";  timed restic_first  restic -r restic-repo backup "$disk"
warm disk2.raw; timed restic_second restic -r restic-repo backup disk2.raw
restic_size=$(size_of restic-repo)
warm restic-repo; timed restic_restore restic -r restic-repo restore latest --target restore-restic
rm -rf restore-restic

mb() { awk -v b="$1" 'BEGIN { printf "%.0f MB", b / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t ? "met" : "MISSED") }'; }
row() { printf "| %-36s | %10s | %10s | %10s | %6s | %-16s | %-6s |\n" "$@"; }

max_rss() { local m=0; for v in "$@"; do [ "$v" -gt "$m" ] && m=$v; done; echo "$m"; }
a_rss=$(max_rss "${rss[arche_first]}" "${rss[arche_second]}" "${rss[arche_overlay]}")
b_rss=$(max_rss "${rss[borg_first]}" "${rss[borg_second]}")
r_rss=$(max_rss "${rss[restic_first]}" "${rss[restic_second]}")

r1=$(ratio "${secs[arche_first]}" "${secs[borg_first]}")
r2=$(ratio "${secs[arche_second]}" "${secs[borg_second]}")
r3=$(ratio "${secs[arche_overlay]}" "${secs[borg_second]}")
r4=$(ratio "${secs[arche_restore]}" "${secs[restic_restore]}")
r5=$(ratio "$arche_size" "$borg_size")

echo
echo "Backup benchmark ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)); restores: arche $arche_ok, via overlay $arche_ov_ok"
row "work" "arche" "borg 1.2" "restic" "ratio" "target" "result"
row "------------------------------------" "----------" "----------" "----------" "------" "----------------" "------"
row "first backup of disk.raw (s)" "${secs[arche_first]}" "${secs[borg_first]}" "${secs[restic_first]}" "$r1" "<= 0.33 x borg" "$(verdict "$r1" 0.33)"
row "second backup, reading all (s)" "${secs[arche_second]}" "${secs[borg_second]}" "${secs[restic_second]}" "$r2" "<= 0.5 x borg" "$(verdict "$r2" 0.5)"
row "second backup via qcow2 overlay (s)" "${secs[arche_overlay]}" "-" "-" "$r3" "<= 0.2 x borg" "$(verdict "$r3" 0.2)"
row "full restore of disk2.raw (s)" "${secs[arche_restore]}" "${secs[borg_restore]}" "${secs[restic_restore]}" "$r4" "<= 0.33 x restic" "$(verdict "$r4" 0.33)"
row "repository size after both" "$(mb "$arche_size")" "$(mb "$borg_size")" "$(mb "$restic_size")" "$r5" "<= borg" "$(verdict "$r5" 1)"
row "peak RSS while backing up" "$((a_rss / 1024)) MB" "$((b_rss / 1024)) MB" "$((r_rss / 1024)) MB" "-" "<= 64 MB" "$(verdict "$a_rss" 65536)"
row "CPU s (user+sys), first backup" "${cpu[arche_first]}" "${cpu[borg_first]}" "${cpu[restic_first]}" "$(ratio "${cpu[arche_first]}" "${cpu[borg_first]}")" "(information)" ""
row "CPU s, second backup / via overlay" "${cpu[arche_second]} / ${cpu[arche_overlay]}" "${cpu[borg_second]}" "${cpu[restic_second]}" "" "(information)" ""
row "CPU s, full restore" "${cpu[arche_restore]}" "${cpu[borg_restore]}" "${cpu[restic_restore]}" "$(ratio "${cpu[arche_restore]}" "${cpu[restic_restore]}")" "(information)" ""
echo "(ratios: arche / borg; the restore ratio is arche / restic; the overlay row compares with borg's second backup)"

[ "${KEEP:-0}" = 1 ] || rm -rf arche-repo arche-ov borg-repo restic-repo "$BORG_BASE_DIR" "$RESTIC_CACHE_DIR" time.* log.*
