#!/usr/bin/env bash
# Offsite benchmark (issue 12): backups of the bench image straight to SFTP and S3,
# arche against restic, and `arche backup copy` of a repository against `rclone copy`
# of the same repository directory, in one run on the same servers: an OpenSSH sshd
# and a one-node Ceph radosgw on 127.0.0.1 (the test fixtures, started and stopped by
# build/tests/backup/offsite_servers). Targets: backups <= 0.5 x restic's time,
# backup copy >= 0.9 x rclone's throughput.
#
#   bench/offsite.sh [ARCHE]
#
# Rows: first backup (disk.raw), second backup (the same path holding disk2.raw, ~5 %
# changed: both tools read it all again), each to SFTP and to S3; then the local
# repository after both backups copied to SFTP and to S3 by `backup copy` (into a
# replica made with --same-key-as) and by `rclone copy --transfers 8` of its directory.
# Wall and CPU (user+sys) time of the client; the servers' CPU is not counted.
# Environment: BENCH_DIR (/var/tmp/arche-bench/offsite), IMAGES (where disk.raw is
# kept, default /var/tmp/arche-bench), MKIMAGE (../shared/bench/mkimage.sh),
# OFFSITE_SERVERS (the servers binary), SIZE (of a new bench image, default 4G).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ARCHE=$(realpath "${1:-$root/build/cli/arche}")
servers=${OFFSITE_SERVERS:-$root/build/tests/backup/offsite_servers}
work=${BENCH_DIR:-/var/tmp/arche-bench/offsite}
images=${IMAGES:-/var/tmp/arche-bench}
need() { command -v "$1" >/dev/null || { echo "bench/offsite.sh: $1 missing (run scripts/install-deps.sh)" >&2; exit 1; }; }
need restic; need rclone
[ -x /usr/bin/time ] || { echo "bench/offsite.sh: /usr/bin/time missing (package time)" >&2; exit 1; }
[ -x "$ARCHE" ] || { echo "bench/offsite.sh: no arche binary at $ARCHE (make build)" >&2; exit 1; }
[ -x "$servers" ] || { echo "bench/offsite.sh: no $servers (cmake --build build --target offsite_servers)" >&2; exit 1; }
mkimage=${MKIMAGE:-}
for candidate in "$root/../shared/bench/mkimage.sh" "$root/../../shared/bench/mkimage.sh" /work/shared/bench/mkimage.sh; do
  [ -z "$mkimage" ] && [ -f "$candidate" ] && mkimage=$candidate
done
[ -n "$mkimage" ] || { echo "bench/offsite.sh: mkimage.sh not found; set MKIMAGE" >&2; exit 1; }
mkdir -p "$images" "$work"
if [ ! -f "$images/disk.raw" ]; then
  echo "making $images/disk.raw (a few minutes) ..."
  bash "$mkimage" base "$images/disk.raw"
fi
cd "$work"
rm -rf ./*
if [ ! -f "$images/disk2.raw" ] || [ "$images/disk2.raw" -ot "$images/disk.raw" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "bench/offsite.sh: 'mkimage.sh change' needs root" >&2; exit 1; }
  bash "$mkimage" change "$images/disk.raw" "$images/disk2.raw"
fi

# radosgw stores into a memstore OSD: room for the four repositories of the S3 rows.
export ARCHE_RGW_MEMSTORE_BYTES=${ARCHE_RGW_MEMSTORE_BYTES:-8589934592}
# The servers stay up while fd 4 is open; the trap closes it and waits for them.
mkfifo control
"$servers" "$work/servers.env" < control > servers.log 2>&1 &
servers_pid=$!
exec 4> control
stop_servers() { exec 4>&-; wait "$servers_pid" 2>/dev/null || true; }
trap stop_servers EXIT
for _ in $(seq 1 120); do [ -f servers.env ] && break; kill -0 "$servers_pid" 2>/dev/null || break; sleep 1; done
[ -f servers.env ] || { echo "bench/offsite.sh: the servers did not come up:" >&2; tail -5 servers.log >&2; exit 1; }
# shellcheck disable=SC1091
. ./servers.env
unset AWS_CA_BUNDLE  # plain http on loopback; rclone refuses a CA bundle there

export ARCHE_PASSPHRASE=bench-passphrase RESTIC_PASSWORD=bench-passphrase RESTIC_CACHE_DIR="$work/restic-cache"
warm() { cat "$@" > /dev/null; }
declare -A secs cpu
timed() {
  local name=$1 user sys; shift
  /usr/bin/time -f "%e %U %S" -o "$work/time.$name" "$@" > "$work/log.$name" 2>&1 || {
    echo "bench/offsite.sh: '$*' failed:" >&2; tail -5 "$work/log.$name" >&2; exit 1; }
  read -r secs[$name] user sys < "$work/time.$name"
  cpu[$name]=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
}

# Both tools back up the same path; between the runs it gets the changed image.
cp --sparse=always "$images/disk.raw" disk.raw
sftp_arche="${OFFSITE_SFTP_URL}arche"
s3_arche="s3+http://$OFFSITE_S3_ENDPOINT/arche-offsite/direct"
sftp_restic="sftp:$OFFSITE_SFTP_USER@127.0.0.1:$OFFSITE_SFTP_DIR/restic"
s3_restic="s3:http://$OFFSITE_S3_ENDPOINT/restic-offsite/direct"

echo "first backups ..."
"$ARCHE" backup init "$sftp_arche" -q
"$ARCHE" backup init "$s3_arche" -q
restic -o "sftp.command=$OFFSITE_RESTIC_SSH" init -r "$sftp_restic" > /dev/null
restic init -r "$s3_restic" > /dev/null
warm disk.raw; timed a_sftp_1 "$ARCHE" backup create "$sftp_arche::one" --image disk.raw -q
warm disk.raw; timed r_sftp_1 restic -o "sftp.command=$OFFSITE_RESTIC_SSH" -r "$sftp_restic" backup disk.raw
warm disk.raw; timed a_s3_1 "$ARCHE" backup create "$s3_arche::one" --image disk.raw -q
warm disk.raw; timed r_s3_1 restic -r "$s3_restic" backup disk.raw
echo "second backups ..."
cp --sparse=always "$images/disk2.raw" disk.raw
sleep 2
warm disk.raw; timed a_sftp_2 "$ARCHE" backup create "$sftp_arche::two" --image disk.raw -q
warm disk.raw; timed r_sftp_2 restic -o "sftp.command=$OFFSITE_RESTIC_SSH" -r "$sftp_restic" backup disk.raw
warm disk.raw; timed a_s3_2 "$ARCHE" backup create "$s3_arche::two" --image disk.raw -q
warm disk.raw; timed r_s3_2 restic -r "$s3_restic" backup disk.raw

echo "copies of one repository ..."
"$ARCHE" backup init local-repo -q
cp --sparse=always "$images/disk.raw" disk.raw
"$ARCHE" backup create local-repo::one --image disk.raw -q
cp --sparse=always "$images/disk2.raw" disk.raw
"$ARCHE" backup create local-repo::two --image disk.raw -q
repo_bytes=$(du -sb local-repo | cut -f1)
"$ARCHE" backup init "${OFFSITE_SFTP_URL}copy" --same-key-as local-repo -q
"$ARCHE" backup init "s3+http://$OFFSITE_S3_ENDPOINT/arche-offsite/copy" --same-key-as local-repo -q
warm local-repo/data/*/*
timed a_copy_sftp "$ARCHE" backup copy local-repo "${OFFSITE_SFTP_URL}copy" -q
timed r_copy_sftp rclone copy --transfers 8 local-repo "offsftp:$OFFSITE_SFTP_DIR/rclone"
timed a_copy_s3 "$ARCHE" backup copy local-repo "s3+http://$OFFSITE_S3_ENDPOINT/arche-offsite/copy" -q
timed r_copy_s3 rclone copy --transfers 8 local-repo "offs3:rclone-offsite/copy"
"$ARCHE" backup check "s3+http://$OFFSITE_S3_ENDPOINT/arche-offsite/copy" -q && copy_check=clean || copy_check=DAMAGED

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
verdict_le() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t ? "met" : "MISSED") }'; }
verdict_ge() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "met" : "MISSED") }'; }
mbps() { awk -v b="$repo_bytes" -v s="$1" 'BEGIN { if (s > 0) printf "%.1f", b / s / 1048576; else print "-" }'; }
row() { printf "| %-30s | %16s | %16s | %6s | %-18s | %-6s |\n" "$@"; }
both() { echo "${secs[$1]} s / ${cpu[$1]} cpu"; }

echo
echo "Offsite benchmark ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)); repository copied: $((repo_bytes / 1048576)) MiB, check of the S3 copy: $copy_check"
row "work (wall / CPU)" "arche" "restic / rclone" "ratio" "target" "result"
row "------------------------------" "----------------" "----------------" "------" "------------------" "------"
for store in sftp s3; do
  for n in 1 2; do
    r=$(ratio "${secs[a_${store}_$n]}" "${secs[r_${store}_$n]}")
    if [ "$n" = 1 ]; then label="first backup to $store"; else label="second backup to $store"; fi
    row "$label" "$(both a_${store}_$n)" "$(both r_${store}_$n)" "$r" "<= 0.5 x restic" "$(verdict_le "$r" 0.5)"
  done
done
for store in sftp s3; do
  a=$(mbps "${secs[a_copy_$store]}"); r=$(mbps "${secs[r_copy_$store]}")
  t=$(ratio "$a" "$r")
  row "copy to $store (MiB/s)" "$a ($(both a_copy_$store))" "$r ($(both r_copy_$store))" "$t" ">= 0.9 x rclone" "$(verdict_ge "$t" 0.9)"
done
echo "(backup ratios: arche time / restic time; copy ratio: arche throughput / rclone throughput)"
[ "${KEEP:-0}" = 1 ] || rm -rf local-repo restic-cache disk.raw time.* log.*
