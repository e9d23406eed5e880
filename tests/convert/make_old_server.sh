#!/usr/bin/env bash
# The "old server" of the P2V tests (docs/p2v.md, acceptance 1), made with the
# real tools at test time. Needs root (loop devices, mounts, FUSE for NTFS).
#
#   make_old_server.sh DIR [KERNEL]
#
#   DIR/sda.raw  MBR, boot code in the MBR and in the gap before p1 (as GRUB's core.img)
#                p1 FAT16 /boot: vmlinuz (KERNEL), initrd.img, grub/grub.cfg
#                p2 ext4 /: etc/fstab (by /dev/sda2), home/, a 20 MiB file
#                p3 swap
#   DIR/sdb.raw  GPT: p1 XFS /srv, p2 NTFS (Windows data), p3 LVM2 PV of VG altvg
#                with LV altvg/daten (ext4); the PV's free extents hold random bytes
#
# Every file system's free space holds deleted random data (written, synced,
# deleted), so a copy that is not used-blocks-only shows it in its size.
set -euo pipefail
export LVM_SUPPRESS_FD_WARNINGS=1
dir=${1:?usage: make_old_server.sh DIR [KERNEL]}
kernel=${2:-/var/cache/arche/vmlinuz-cloud-amd64}
work=$(mktemp -d /var/tmp/arche-p2vfix-XXXXXX)
loops=()
mnt=
cleanup() {
  if [ -n "$mnt" ] && mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" || true; fi
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

part() { sfdisk -q -l -o Start,Sectors "$1" | awk -v n="$2" 'NR > 1 && ++k == n { print $1, $2 }'; }
put() { dd if="$1" of="$2" bs=1M oflag=seek_bytes seek="$3" conv=notrunc,sparse status=none; }
random_file() { head -c "$2" /dev/urandom > "$1"; }

# Mounts FILE (ext4/xfs through a loop device, ntfs through ntfs-3g), fills its free
# space partly with random data that is then deleted, and copies STAGE in.
fill() {
  local file=$1 type=$2 deleted=$3 stage=$4
  mnt=$work/mnt
  mkdir -p "$mnt"
  if [ "$type" = ntfs ]; then ntfs-3g "$file" "$mnt"; else mount -o loop "$file" "$mnt"; fi
  random_file "$mnt/deleted.bin" "$deleted"
  sync
  rm "$mnt/deleted.bin"
  sync
  cp -a "$stage"/. "$mnt"/
  sync
  if [ "$type" = ntfs ]; then fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"; else umount "$mnt"; fi
  mnt=
}

stage() {
  local d=$1
  mkdir -p "$d/home/kunde" "$d/etc"
  random_file "$d/home/kunde/gross.bin" 20M
  printf 'Kundendaten Mueller GmbH\n' > "$d/home/kunde/wichtig.txt"
  printf '[app]\nport = 8080\n' > "$d/etc/app.ini"
}

mkdir -p "$dir"

# ---- sda: MBR, /boot FAT16, / ext4, swap --------------------------------------
sda=$dir/sda.raw
rm -f "$sda"
truncate -s 320M "$sda"
printf 'label: dos\nstart=2048, size=64M, type=6, bootable\nsize=200M, type=83\nsize=32M, type=82\n' | sfdisk -q "$sda"
# Boot code: the MBR's first 440 bytes and sectors 1-2047 (GRUB's core.img lives there).
random_file "$work/bootcode" 440
dd if="$work/bootcode" of="$sda" bs=440 count=1 conv=notrunc status=none
random_file "$work/core.img" $((2047 * 512))
dd if="$work/core.img" of="$sda" bs=512 seek=1 conv=notrunc status=none

read -r s1 z1 < <(part "$sda" 1)
read -r s2 z2 < <(part "$sda" 2)
read -r s3 z3 < <(part "$sda" 3)

truncate -s $((z1 * 512)) "$work/boot"
mkfs.vfat -F 16 -n BOOT "$work/boot" >/dev/null
mkdir -p "$work/bootdir/grub" "$work/initrd/bin"
cp "$kernel" "$work/bootdir/vmlinuz-6.1.0-cloud-amd64"
printf '#!/bin/sh\necho old server initramfs\n' > "$work/initrd/init"
chmod 755 "$work/initrd/init"
(cd "$work/initrd" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/bootdir/initrd.img-6.1.0-cloud-amd64"
printf 'linux /vmlinuz-6.1.0-cloud-amd64 root=/dev/sda2\ninitrd /initrd.img-6.1.0-cloud-amd64\n' > "$work/bootdir/grub/grub.cfg"
random_file "$work/deleted-fat.bin" 30M
MTOOLS_SKIP_CHECK=1 mcopy -Q -i "$work/boot" "$work/deleted-fat.bin" ::/
MTOOLS_SKIP_CHECK=1 mdel -i "$work/boot" ::/deleted-fat.bin
(cd "$work/bootdir" && MTOOLS_SKIP_CHECK=1 mcopy -s -Q -i "$work/boot" ./* ::/)
put "$work/boot" "$sda" $((s1 * 512))

stage "$work/root"
printf '/dev/sda2 / ext4 errors=remount-ro 0 1\n/dev/sda1 /boot vfat defaults 0 2\n/dev/sda3 none swap sw 0 0\n' \
  > "$work/root/etc/fstab"
truncate -s $((z2 * 512)) "$work/root.img"
mkfs.ext4 -q -L root "$work/root.img"
fill "$work/root.img" ext4 120M "$work/root"
put "$work/root.img" "$sda" $((s2 * 512))

random_file "$work/swap" $((z3 * 512))  # a used swap area holds old pages
mkswap -q -L swap "$work/swap" >/dev/null
put "$work/swap" "$sda" $((s3 * 512))

# ---- sdb: GPT, XFS, NTFS, LVM2 ---------------------------------------------------
sdb=$dir/sdb.raw
rm -f "$sdb"
truncate -s 560M "$sdb"
printf 'label: gpt\nsize=320M, type=L, name="srv"\nsize=64M, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="windows"\nsize=128M, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name="lvm"\n' | sfdisk -q "$sdb"
read -r t1 y1 < <(part "$sdb" 1)
read -r t2 y2 < <(part "$sdb" 2)
read -r t3 y3 < <(part "$sdb" 3)

truncate -s $((y1 * 512)) "$work/srv.img"
mkfs.xfs -q -f -L srv "$work/srv.img"
stage "$work/srv"
fill "$work/srv.img" xfs 150M "$work/srv"
put "$work/srv.img" "$sdb" $((t1 * 512))

truncate -s $((y2 * 512)) "$work/ntfs.img"
mkntfs -q -F -Q -L Windows -p "$t2" "$work/ntfs.img" >/dev/null 2>&1
stage "$work/win"
fill "$work/ntfs.img" ntfs 30M "$work/win"
put "$work/ntfs.img" "$sdb" $((t2 * 512))

# LVM2 on a loop device over p3 (no device-mapper: the LV is never activated; its
# file system is written where `lvs` says its extents are).
pv=$(losetup -f --show -o $((t3 * 512)) --sizelimit $((y3 * 512)) "$sdb")
loops+=("$pv")
lvm_run() {
  local cmd=$1
  shift
  "$cmd" --devicesfile "" --devices "$pv" \
    --config 'global { activation = 0 } backup { backup = 0 archive = 0 } devices { obtain_device_list_from_udev = 0 }' \
    "$@" 2> >(grep -v -e 'WARNING: Activation disabled' -e 'NOT backed up' -e 'not zeroed' >&2)
}
vg=altvg$$
lvm_run pvcreate -q "$pv" >/dev/null
lvm_run vgcreate -q -s 4M "$vg" "$pv" >/dev/null
lvm_run lvcreate -q --activate n --zero n -L 64M -n daten "$vg" >/dev/null 2>&1
pe_start=$(lvm_run pvs --noheadings --units b --nosuffix -o pe_start "$pv" | tr -d ' ')
first=$(lvm_run lvs --noheadings -o seg_pe_ranges "$vg/daten" | tr -d ' ' | sed 's/.*://; s/-.*//')
lv_off=$((pe_start + first * 4 * 1048576))
# Free extents after the LV: old random data, which a copy must leave out.
random_file "$work/free" 40M
dd if="$work/free" of="$pv" bs=1M seek=$(((lv_off + 64 * 1048576) / 1048576)) conv=notrunc status=none
truncate -s 64M "$work/daten.img"
mkfs.ext4 -q -L daten "$work/daten.img"
stage "$work/daten"
fill "$work/daten.img" ext4 30M "$work/daten"
dd if="$work/daten.img" of="$pv" bs=1M oflag=seek_bytes seek="$lv_off" conv=notrunc status=none
sync
# The VG name is per run (several runs at once); the tests read it from the tree.
echo "$vg" > "$dir/vg-name"
