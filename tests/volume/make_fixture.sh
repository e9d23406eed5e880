#!/usr/bin/env bash
# Fixtures of the volume tests, made at test time with the real tools (sfdisk,
# mkfs.ext4 -d, mkntfs + ntfs-3g, mkfs.vfat + mcopy, lvm2, mkfs.xfs):
#
#   make_fixture.sh stage DIR          the tree every fixture holds
#   make_fixture.sh gpt-ext4 OUT DIR   GPT: p1 ext4 (DIR), p2 swap
#   make_fixture.sh mbr OUT DIR        MBR: p1 NTFS (DIR, via ntfs-3g; root + FUSE),
#                                      p2 extended: p5 FAT32 (DIR), p6 ext2 (small)
#   make_fixture.sh lvm OUT DIR        GPT with two LVM2 PVs (root, loop devices):
#                                      vg/root linear ext4 (DIR), vg/stripe striped
#                                      over both PVs (ext4), vg/data XFS (DIR), and when
#                                      lvm2 can make them without activation a raid1
#                                      and a snapshot
#   make_fixture.sh lvm-two OUT1 OUT2  one VG over two whole-disk PVs (two images),
#                                      vg/wide linear across both (ext4, small tree)
#
# Everything is sparse; the stage tree holds a 105 MiB file.
set -euo pipefail
export LVM_SUPPRESS_FD_WARNINGS=1
mode=${1:?usage: make_fixture.sh MODE ...}
work=$(mktemp -d /var/tmp/arche-volfix-XXXXXX)
loops=()
cleanup() {
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  if [ -n "${mnt:-}" ] && mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The start and size (in sectors) of partition N of a disk image.
part() { sfdisk -q -l -o Start,Sectors "$1" | awk -v n="$2" 'NR > 1 && ++k == n { print $1, $2 }'; }

# Writes file FS into disk image OUT at byte offset OFF.
put() { dd if="$1" of="$2" bs=1M oflag=seek_bytes seek="$3" conv=notrunc,sparse status=none; }

stage() {
  local d=$1
  mkdir -p "$d/home/kunde/Dokumente/2026" "$d/etc/app" "$d/leer"
  head -c 105M /dev/urandom > "$d/home/kunde/gross.bin"
  printf 'Kundendaten Mueller GmbH\n' > "$d/home/kunde/wichtig.txt"
  printf '[app]\nport = 8080\n' > "$d/etc/app/config.ini"
  printf 'Inhaltsverzeichnis\n' > "$d/home/kunde/Dokumente/Bücher_Übersicht_ß.txt"
  head -c 70000 /dev/urandom > "$d/home/kunde/Dokumente/2026/Größe €.bin"
  : > "$d/leer/nichts.txt"
  truncate -s 20M "$d/home/kunde/sparse.img"
  printf 'mitten drin' | dd of="$d/home/kunde/sparse.img" bs=1 seek=$((10 * 1048576)) conv=notrunc status=none
  ln -s wichtig.txt "$d/home/kunde/link-zu-wichtig"
  ln -s /etc/app/config.ini "$d/etc/absolut"
  chmod 0640 "$d/home/kunde/wichtig.txt"
  chmod 0600 "$d/etc/app/config.ini"
  chmod 0750 "$d/home/kunde/Dokumente"
  chmod 4755 "$d/etc/app"
  chmod 0755 "$d/etc/app"
  if [ "$(id -u)" = 0 ]; then chown -R 1000:1000 "$d/home/kunde"; fi
  # Fixed times, one per entry, whole seconds (every file system here keeps those).
  local t=1700000000
  while IFS= read -r -d '' f; do
    touch -h -d "@$t" "$f"
    t=$((t + 3608))  # even: FAT keeps times in 2-second steps
  done < <(find "$d" -mindepth 1 -depth -print0 | sort -z)
}

gpt_ext4() {
  local out=$1 dir=$2
  rm -f "$out"
  truncate -s 320M "$out"
  printf 'label: gpt\nsize=240M, type=L, name="daten"\nsize=16M, type=S, name="swap"\n' | sfdisk -q "$out"
  read -r s1 z1 < <(part "$out" 1)
  read -r s2 z2 < <(part "$out" 2)
  truncate -s $((z1 * 512)) "$work/p1"
  mkfs.ext4 -q -L wurzel -U 5b3e2f5e-8d1f-4f6a-9a51-1c2b3d4e5f60 -d "$dir" "$work/p1"
  put "$work/p1" "$out" $((s1 * 512))
  truncate -s $((z2 * 512)) "$work/p2"
  mkswap -q -L tausch "$work/p2" >/dev/null
  put "$work/p2" "$out" $((s2 * 512))
}

mbr() {
  local out=$1 dir=$2
  rm -f "$out"
  truncate -s 480M "$out"
  printf 'label: dos\nsize=220M, type=7\ntype=5\nsize=170M, type=c\nsize=16M, type=83\n' | sfdisk -q "$out"
  read -r s1 z1 < <(part "$out" 1)
  read -r s5 z5 < <(part "$out" 3)
  read -r s6 z6 < <(part "$out" 4)
  truncate -s $((z1 * 512)) "$work/ntfs"
  mkntfs -q -F -Q -L Daten -p "$s1" "$work/ntfs" >/dev/null 2>&1
  if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ]; then
    mnt=$work/mnt
    mkdir -p "$mnt"
    ntfs-3g -o streams_interface=windows "$work/ntfs" "$mnt"
    cp -a "$dir"/. "$mnt"/
    # A named data stream, as Windows attaches to downloaded files.
    printf '[ZoneTransfer]\r\nZoneId=3\r\n' > "$mnt/home/kunde/wichtig.txt:Zone.Identifier"
    touch -d "@$(stat -c %Y "$dir/home/kunde/wichtig.txt")" "$mnt/home/kunde/wichtig.txt"
    fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"
    mnt=
  fi
  put "$work/ntfs" "$out" $((s1 * 512))
  truncate -s $((z5 * 512)) "$work/fat"
  mkfs.vfat -F 32 -n DATEN "$work/fat" >/dev/null
  # FAT has no symbolic links and mcopy would copy their targets: a copy of DIR
  # without them (its directories keep their times), as the tests expect.
  cp -a "$dir" "$work/fat-stage"
  while IFS= read -r -d '' l; do
    rm "$l"
    rel=$(dirname "${l#"$work/fat-stage/"}")
    touch -h -r "$dir/$rel" "$work/fat-stage/$rel"
  done < <(find "$work/fat-stage" -type l -print0)
  (cd "$work/fat-stage" && MTOOLS_SKIP_CHECK=1 mcopy -s -m -Q -i "$work/fat" home etc leer ::/)
  put "$work/fat" "$out" $((s5 * 512))
  truncate -s $((z6 * 512)) "$work/ext2"
  mkdir -p "$work/small/sub"
  printf 'logisch\n' > "$work/small/sub/datei.txt"
  mkfs.ext2 -q -L logisch -d "$work/small" "$work/ext2"
  put "$work/ext2" "$out" $((s6 * 512))
}

# lvm2 on loop devices, isolated from the host's and other tests' volumes.
lvm_run() {
  local cmd=$1
  shift
  "$cmd" --devicesfile "" --devices "$devices" 2> >(grep -v -e 'WARNING: Activation disabled' -e 'NOT backed up' -e 'not zeroed' >&2) \
    --config 'global { activation = 0 } backup { backup = 0 archive = 0 } devices { obtain_device_list_from_udev = 0 }' \
    "$@"
}

# Writes file IMG into logical volume VG/LV, following `lvs` segment by segment
# and stripe by stripe. OUTS maps loop devices to (image file, byte offset).
declare -A loop_file loop_off
write_lv() {
  local lv=$1 img=$2
  local extent
  extent=$(lvm_run vgs --noheadings --units b --nosuffix -o vg_extent_size "$vg" | tr -d ' ')
  declare -A pe_start
  while read -r pv start; do pe_start[$pv]=$start; done < <(lvm_run pvs --noheadings --units b --nosuffix -o pv_name,pe_start)
  while IFS=, read -r start_pe size_pe ranges stripes stripe_size; do
    start_pe=${start_pe// /}; size_pe=${size_pe// /}; stripes=${stripes// /}; stripe_size=${stripe_size// /}
    local -a devs=() firsts=()
    for r in $ranges; do devs+=("${r%%:*}"); local pe=${r#*:}; firsts+=("${pe%%-*}"); done
    local seg_bytes=$((size_pe * extent)) seg_off=$((start_pe * extent))
    if [ "$stripes" -le 1 ]; then
      local d=${devs[0]}
      dd if="$img" of="${loop_file[$d]}" bs=64K iflag=skip_bytes,count_bytes oflag=seek_bytes skip=$seg_off \
        count=$seg_bytes seek=$((loop_off[$d] + pe_start[$d] + firsts[0] * extent)) conv=notrunc,sparse status=none
    else
      local chunk=0 n=$((seg_bytes / stripe_size))
      while [ $chunk -lt $n ]; do
        local i=$((chunk % stripes)) row=$((chunk / stripes))
        local d=${devs[$i]}
        dd if="$img" of="${loop_file[$d]}" bs="$stripe_size" iflag=skip_bytes,count_bytes oflag=seek_bytes \
          skip=$((seg_off + chunk * stripe_size)) count="$stripe_size" \
          seek=$((loop_off[$d] + pe_start[$d] + firsts[$i] * extent + row * stripe_size)) conv=notrunc status=none
        chunk=$((chunk + 1))
      done
    fi
  done < <(lvm_run lvs --noheadings --separator , --units b --nosuffix \
             -o seg_start_pe,seg_size_pe,seg_pe_ranges,stripes,stripe_size "$vg/$lv")
}

attach() {  # attach FILE OFFSET SIZE: the loop device in $attached
  attached=$(losetup -f --show -o "$2" --sizelimit "$3" "$1")
  loops+=("$attached")
  loop_file[$attached]=$1
  loop_off[$attached]=$2
}

# lvcreate cannot make RAID, thin or snapshot volumes without device-mapper, but
# vgcfgrestore writes whatever metadata it accepts: LVM itself then stores a
# RAID1 volume, a thin pool with a thin volume and a snapshot of vg/stripe.
add_unreadable_lvs() {
  lvm_run vgcfgbackup -q -f "$work/vg.txt" "$vg" >/dev/null
  lvm_uuid() {
    local u
    u=$(tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 32)
    echo "${u:0:6}-${u:6:4}-${u:10:4}-${u:14:4}-${u:18:4}-${u:22:4}-${u:26:6}"
  }
  section() {  # NAME STATUS TYPE-AND-FIELDS...
    printf '%s {\nid = "%s"\nstatus = [%s]\nflags = []\nsegment_count = 1\nsegment1 {\nstart_extent = 0\n%s\n}\n}\n' \
      "$1" "$(lvm_uuid)" "$2" "$3"
  }
  linear() { printf 'extent_count = %s\ntype = "striped"\nstripe_count = 1\nstripes = ["pv1", %s]' "$1" "$2"; }
  {
    section schnapp '"READ", "WRITE"' "$(linear 2 10)"
    section snapshot0 '"READ"' 'extent_count = 4
type = "snapshot"
chunk_size = 8
origin = "stripe"
cow_store = "schnapp"'
    section spiegel '"READ", "WRITE", "VISIBLE"' 'extent_count = 2
type = "raid1"
device_count = 2
region_size = 1024
raids = ["spiegel_rmeta_0", "spiegel_rimage_0", "spiegel_rmeta_1", "spiegel_rimage_1"]'
    section spiegel_rmeta_0 '"READ", "WRITE"' "$(linear 1 12)"
    section spiegel_rimage_0 '"READ", "WRITE"' "$(linear 2 13)"
    section spiegel_rmeta_1 '"READ", "WRITE"' "$(linear 1 15)"
    section spiegel_rimage_1 '"READ", "WRITE"' "$(linear 2 16)"
    section pool '"READ", "WRITE", "VISIBLE"' 'extent_count = 2
type = "thin-pool"
metadata = "pool_tmeta"
pool = "pool_tdata"
transaction_id = 1
chunk_size = 128
discards = "passdown"
zero_new_blocks = 1'
    section pool_tmeta '"READ", "WRITE"' "$(linear 1 18)"
    section pool_tdata '"READ", "WRITE"' "$(linear 2 19)"
    section duenn '"READ", "WRITE", "VISIBLE"' 'extent_count = 2
type = "thin"
thin_pool = "pool"
transaction_id = 0
device_id = 1'
  } > "$work/extra.txt"
  # Into the logical_volumes section, before the (one-tab) brace that closes it.
  awk -v extra="$work/extra.txt" '
    /^\tlogical_volumes \{/ { in_lvs = 1 }
    in_lvs && $0 == "\t}" { while ((getline l < extra) > 0) print l; in_lvs = 0 }
    { print }' "$work/vg.txt" > "$work/vg2.txt"
  lvm_run vgcfgrestore -q --force -f "$work/vg2.txt" "$vg" >/dev/null 2>&1 ||
    { echo "make_fixture.sh: vgcfgrestore refused the crafted metadata" >&2; exit 1; }
}

lvm() {
  local out=$1 dir=$2
  rm -f "$out"
  truncate -s 900M "$out"
  printf 'label: gpt\nsize=560M, type=E6D6D379-F507-44C2-A23C-238F2A3DF928\nsize=300M, type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n' | sfdisk -q "$out"
  read -r s1 z1 < <(part "$out" 1)
  read -r s2 z2 < <(part "$out" 2)
  local l1 l2
  attach "$out" $((s1 * 512)) $((z1 * 512)); l1=$attached
  attach "$out" $((s2 * 512)) $((z2 * 512)); l2=$attached
  devices="$l1,$l2"
  vg=${VG_NAME:-arche$$}
  lvm_run pvcreate -q "$l1" "$l2" >/dev/null
  lvm_run vgcreate -q -s 4M "$vg" "$l1" "$l2" >/dev/null
  lvm_run lvcreate -q --activate n --zero n -L 200M -n root "$vg" "$l1" >/dev/null 2>&1
  lvm_run lvcreate -q --activate n --zero n -L 32M -i 2 -I 64k -n stripe "$vg" >/dev/null 2>&1
  lvm_run lvcreate -q --activate n --zero n -L 304M -n data "$vg" >/dev/null 2>&1
  add_unreadable_lvs
  truncate -s 200M "$work/root"
  mkfs.ext4 -q -L lvroot -d "$dir" "$work/root"
  write_lv root "$work/root"
  mkdir -p "$work/small/tief/tiefer"
  head -c 3M /dev/urandom > "$work/small/tief/tiefer/gestreift.bin"
  printf 'über zwei Platten\n' > "$work/small/tief/notiz.txt"
  truncate -s 32M "$work/stripe"
  mkfs.ext4 -q -L streifen -d "$work/small" "$work/stripe"
  write_lv stripe "$work/stripe"
  cp -a "$work/small" "$(dirname "$out")/stripe-tree"
  truncate -s 304M "$work/data"
  mkfs.xfs -q -L xfsdaten "$work/data"
  # Filled through the kernel's XFS (a loop mount; root is needed for LVM anyway).
  mnt=$work/mnt
  mkdir -p "$mnt"
  mount -t xfs -o loop "$work/data" "$mnt"
  cp -a "$dir/." "$mnt/"
  umount "$mnt"
  write_lv data "$work/data"
  echo "$vg"
}

lvm_two() {
  local out1=$1 out2=$2
  rm -f "$out1" "$out2"
  truncate -s 64M "$out1"
  truncate -s 64M "$out2"
  local l1 l2
  attach "$out1" 0 $((64 * 1048576)); l1=$attached
  attach "$out2" 0 $((64 * 1048576)); l2=$attached
  devices="$l1,$l2"
  vg=${VG_NAME:-arche$$}
  lvm_run pvcreate -q "$l1" "$l2" >/dev/null
  lvm_run vgcreate -q -s 4M "$vg" "$l1" "$l2" >/dev/null
  lvm_run lvcreate -q --activate n --zero n -L 100M -n wide "$vg" >/dev/null 2>&1
  mkdir -p "$work/small/a/b"
  head -c 70M /dev/urandom > "$work/small/a/b/gross.bin"
  truncate -s 100M "$work/wide"
  mkfs.ext4 -q -L breit -d "$work/small" "$work/wide"
  write_lv wide "$work/wide"
  cp -a "$work/small" "$(dirname "$out1")/wide-tree"
  echo "$vg"
}

case "$mode" in
stage) stage "$2" ;;
gpt-ext4) gpt_ext4 "$2" "$3" ;;
mbr) mbr "$2" "$3" ;;
lvm) lvm "$2" "$3" ;;
lvm-two) lvm_two "$2" "$3" ;;
*) echo "make_fixture.sh: unknown mode $mode" >&2; exit 64 ;;
esac
