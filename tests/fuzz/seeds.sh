#!/usr/bin/env bash
# Seed corpora for the fuzz targets: small valid images in the formats each target
# parses. Usage: seeds.sh TARGET DIR
set -euo pipefail
target=$1 dir=$2
command -v qemu-img >/dev/null || { echo "qemu-img missing: run scripts/install-deps.sh" >&2; exit 1; }
tmp=$(mktemp -d /var/tmp/arche-seeds-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
head -c 200000 /dev/urandom > "$tmp/data"

# Inputs of the file system targets (tests/fuzz/filesystem_fuzz.h): an 8-byte
# header (offset of part 2, length of part 1, u32 le) and the two parts of IMAGE.
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
two_part() {  # IMAGE LENGTH1 OFFSET2 LENGTH2
  printf "$(le32 "$3")$(le32 "$2")"
  dd if="$1" iflag=count_bytes count="$2" status=none
  dd if="$1" iflag=skip_bytes,count_bytes skip="$3" count="$4" status=none
}
single_part() {  # IMAGE without its trailing zeros as part 1
  perl -0777 -pe 's/\0+\z//' "$1" > "$1.trimmed"
  two_part "$1.trimmed" "$(stat -c %s "$1.trimmed")" 0 0
}

# IMAGE in two parts (the same 8-byte header) cut at its longest run of zeros (a
# run to the end keeps the last byte, so the file keeps its size), ROOM bytes at most.
cut_two_part() {  # IMAGE ROOM
  perl -0777 -ne '
    my ($best, $from, $to) = (0, length($_), length($_));
    while (/\0{512,}/g) { if ($+[0] - $-[0] > $best) { ($best, $from, $to) = ($+[0] - $-[0], $-[0], $+[0]) } }
    my ($p1, $at, $p2) = (substr($_, 0, $from), $to, substr($_, $to));
    ($at, $p2) = (length($_) - 1, "\0") if $to == length($_) && length($_);
    my $room = '"$2"' - 8;
    $p1 = substr($p1, 0, $room); $p2 = substr($p2, 0, $room - length $p1);
    print pack("VV", $at, length $p1), $p1, $p2;' "$1"
}

# Inputs of the image targets (tests/fuzz/fuzz_common.h): a selector byte (the
# expensive steps) and the image in two parts, 64 KiB in all. Every image becomes
# one seed per selector: 0 (open, map, reads), 1 (+ check), 6 (+ writes, repair),
# 8 (+ resize).
image_seed() {  # IMAGE [cut: as it is (VHDX, already cut) | one: all of it as part 1]
  case "${2:-}" in
  cut) cp "$1" "$1.cut" ;;
  one) two_part "$1" "$(stat -c %s "$1")" 0 0 > "$1.cut" ;;
  *) cut_two_part "$1" 65535 > "$1.cut" ;;
  esac
  for sel in 0 1 6 8; do
    { printf "\\x$(printf %02x "$sel")"; head -c 65535 "$1.cut"; } > "$dir/$(basename "$1").$sel"
  done
}
case "$target" in
qcow2_fuzz)
  i=0
  # Clusters of 4 KiB and less, so that whole images fit in an input.
  for opts in "compat=0.10" "compat=1.1" "cluster_size=512" "refcount_bits=1" \
              "compression_type=zstd" "lazy_refcounts=on" "refcount_bits=64,cluster_size=1024"; do
    f="$tmp/s$i.qcow2"
    qemu-img create -q -f qcow2 -o "cluster_size=4096,$opts" "$f" 1M
    qemu-io -c "write -P 0x11 0 8k" -c "write -z 128k 64k" -f qcow2 "$f" >/dev/null
    image_seed "$f"
    i=$((i+1))
  done
  head -c 8192 "$tmp/data" > "$tmp/c.raw"; truncate -s 1M "$tmp/c.raw"
  qemu-img convert -c -f raw -O qcow2 -o cluster_size=4096 "$tmp/c.raw" "$tmp/compressed.qcow2" && image_seed "$tmp/compressed.qcow2"
  qemu-img create -q -f qcow2 -o cluster_size=4096 "$tmp/c.qcow2" 1M
  qemu-img create -q -f qcow2 -o cluster_size=4096 -b "$tmp/c.qcow2" -F qcow2 "$tmp/overlay.qcow2" && image_seed "$tmp/overlay.qcow2"
  qemu-img create -q -f qcow2 -o cluster_size=4096 "$tmp/snap.qcow2" 1M
  qemu-io -c "write -P 0x11 0 4k" -f qcow2 "$tmp/snap.qcow2" >/dev/null
  qemu-img snapshot -c first "$tmp/snap.qcow2" && image_seed "$tmp/snap.qcow2"
  ;;
backup_fuzz|s3_fuzz|sftp_fuzz|tape_fuzz|hv_fuzz|p2v_wire_fuzz) ;;  # write their own seeds into the empty corpus (LLVMFuzzerInitialize)
vmdk_fuzz)
  # Every subformat qemu-img writes (random data and a hole), arche's own
  # stream, a child with zeroed grains, descriptor files, and a small OVA.
  head -c 6000 /dev/urandom > "$tmp/raw"; truncate -s 1M "$tmp/raw"
  i=0
  for opts in "subformat=monolithicSparse" "subformat=streamOptimized" "subformat=monolithicSparse,zeroed_grain=on" \
              "subformat=monolithicFlat" "subformat=twoGbMaxExtentSparse"; do
    mkdir -p "$tmp/d$i"
    qemu-img convert -q -f raw -O vmdk -o "$opts" "$tmp/raw" "$tmp/d$i/disk.vmdk"
    cp "$tmp/d$i/disk.vmdk" "$tmp/seed$i" && image_seed "$tmp/seed$i"
    i=$((i+1))
  done
  qemu-img create -q -f vmdk "$tmp/base.vmdk" 1M
  qemu-img create -q -f vmdk -o zeroed_grain=on -b base.vmdk -F vmdk "$tmp/child.vmdk"
  qemu-io -f vmdk -c "write -P 0x33 0 4k" -c "write -z 128k 64k" "$tmp/child.vmdk" >/dev/null
  image_seed "$tmp/child.vmdk"
  if [ -n "${ARCHE:-}" ] && [ -x "$ARCHE" ]; then
    "$ARCHE" -q image convert -O vmdk -o subformat=streamOptimized "$tmp/raw" "$tmp/arche-stream.vmdk" && image_seed "$tmp/arche-stream.vmdk"
    "$ARCHE" -q image create -f vmdk -o subformat=streamOptimized "$tmp/empty-stream.vmdk" 1M && image_seed "$tmp/empty-stream.vmdk"
  fi
  cat > "$tmp/vm.ovf" <<'OVF'
<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="r">
 <References><File ovf:href="disk.vmdk" ovf:id="f1"/></References>
 <DiskSection><Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="d1" ovf:fileRef="f1"/></DiskSection>
 <VirtualSystem ovf:id="vm"><Name>vm</Name><VirtualHardwareSection>
  <Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
  <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>512</rasd:VirtualQuantity></Item>
  <Item><rasd:HostResource>ovf:/disk/d1</rasd:HostResource><rasd:ResourceType>17</rasd:ResourceType></Item>
  <Item><rasd:Address>52:54:00:12:34:56</rasd:Address><rasd:Connection>LAN</rasd:Connection><rasd:ResourceType>10</rasd:ResourceType></Item>
 </VirtualHardwareSection></VirtualSystem>
</Envelope>
OVF
  image_seed "$tmp/vm.ovf" one
  cp "$tmp/d1/disk.vmdk" "$tmp/disk.vmdk"
  tar -C "$tmp" -cf "$tmp/vm.ova" vm.ovf disk.vmdk && image_seed "$tmp/vm.ova" one
  ;;
vhd_fuzz)
  i=0
  for opts in "subformat=dynamic" "subformat=fixed" "subformat=dynamic,force_size=on"; do
    f="$tmp/s$i.vhd"
    qemu-img create -q -f vpc -o "$opts" "$f" 3M
    qemu-io -c "write -P 0x11 0 4k" -c "write -z 128k 64k" -f vpc "$f" >/dev/null
    image_seed "$f"
    i=$((i+1))
  done
  ;;
vhdx_fuzz)
  # The target places 4 KiB parts of its input where qemu puts the structures
  # (vhdx_fuzz.cpp kLayout): cut real images the same way.
  i=0
  for opts in "subformat=dynamic,block_size=1M" "subformat=fixed,block_size=1M" "block_size=8M"; do
    f="$tmp/s$i.vhdx"
    qemu-img create -q -f vhdx -o "$opts" "$f" 8M
    qemu-io -c "write -P 0x11 0 64k" -c "write -z 2M 1M" -c "write -P 0x22 5M 4k" -f vhdx "$f" >/dev/null
    for part in 0 16 32 48 64 256 257 258 259 512 768 784 2048 2304; do
      dd if="$f" bs=4K count=1 skip=$part status=none
    done > "$tmp/seed$i.vhdx"
    image_seed "$tmp/seed$i.vhdx" cut
    i=$((i+1))
  done
  ;;
vdi_fuzz)
  i=0
  for opts in "static=off" "static=on"; do
    f="$tmp/s$i.vdi"
    qemu-img create -q -f vdi -o "$opts" "$f" 2M
    qemu-io -c "write -P 0x11 0 4k" -c "write -P 0x22 1536k 4k" -f vdi "$f" >/dev/null
    image_seed "$f"
    i=$((i+1))
  done
  ;;
partition_fuzz)
  # Small disks so that the fuzzer's inputs stay small: GPT (a backup at the end),
  # MBR with an extended partition and two logical ones, a protective-only MBR.
  truncate -s 128K "$dir/gpt"
  printf 'label: gpt\nfirst-lba: 34\nstart=40, size=40, type=L, name="eins"\nstart=80, size=100, type=S\n' | sfdisk -q "$dir/gpt"
  truncate -s 256K "$dir/mbr"
  printf 'label: dos\nstart=4, size=60, type=83\nstart=64, size=400, type=5\nstart=66, size=100, type=7\nstart=170, size=100, type=83\n' |
    sfdisk -q "$dir/mbr"
  head -c 512 "$dir/gpt" > "$dir/pmbr"
  ;;
lvm_fuzz)
  # Metadata text as lvm2 writes it (one linear LV, one striped over two PVs,
  # a thin one), and a PV made by pvcreate/vgcreate/lvcreate when root can.
  cat > "$dir/text" <<'VG'
vg0 {
id = "77JdMT-DrRk-dCSl-kw75-fZho-YK6o-sc3ORw"
seqno = 4
format = "lvm2"
status = ["RESIZEABLE", "READ", "WRITE"]
flags = []
extent_size = 8192
max_lv = 0
max_pv = 0
metadata_copies = 0
physical_volumes {
pv0 {
id = "N37ZH1-xdcf-hOGF-Z2tf-rjeV-ZlNf-MYmKCO"
device = "/dev/sda2"
status = ["ALLOCATABLE"]
flags = []
dev_size = 131072
pe_start = 2048
pe_count = 15
}
pv1 {
id = "A37ZH1-xdcf-hOGF-Z2tf-rjeV-ZlNf-MYmKCO"
device = "/dev/sdb"
status = ["ALLOCATABLE"]
flags = []
dev_size = 131072
pe_start = 2048
pe_count = 15
}
}
logical_volumes {
root {
id = "DkTNeM-UZ9W-3QsI-8A4F-AJYm-2M33-4hWOiw"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 2
segment1 {
start_extent = 0
extent_count = 2
type = "striped"
stripe_count = 1
stripes = [
"pv0", 0
]
}
segment2 {
start_extent = 2
extent_count = 4
type = "striped"
stripe_count = 2
stripe_size = 128
stripes = [
"pv0", 2,
"pv1", 0
]
}
}
thin {
id = "EkTNeM-UZ9W-3QsI-8A4F-AJYm-2M33-4hWOiw"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 2
type = "thin"
thin_pool = "pool"
transaction_id = 0
device_id = 1
}
}
}
}
contents = "Text Format Volume Group"
version = 1
VG
  if [ "$(id -u)" = 0 ] && command -v pvcreate >/dev/null; then
    truncate -s 8M "$tmp/pv"
    l=$(losetup -f --show "$tmp/pv")
    c='global { activation = 0 } backup { backup = 0 archive = 0 }'
    export LVM_SUPPRESS_FD_WARNINGS=1
    if pvcreate -q --devicesfile "" --devices "$l" --config "$c" --metadatasize 64k "$l" >/dev/null 2>&1 &&
       vgcreate -q --devicesfile "" --devices "$l" --config "$c" -s 1M "fuzz$$" "$l" >/dev/null 2>&1 &&
       lvcreate -q --devicesfile "" --devices "$l" --config "$c" --activate n --zero n -L 2M -n lv "fuzz$$" >/dev/null 2>&1; then
      head -c 256K "$tmp/pv" > "$dir/pv"
    fi
    losetup -d "$l"
  fi
  ;;
fat_fuzz)
  # FAT12, FAT16 and FAT32 with 512-byte clusters (just enough of them for the
  # type), filled by mtools: long and short names, nested directories, a
  # directory over several clusters, a fragmented chain. FAT32's two FATs of
  # 256 KiB lie between its boot sector and its data: its seed is the first
  # entries of FAT 1 and the first clusters of data as two parts.
  export MTOOLS_SKIP_CHECK=1 LC_ALL=C.UTF-8 TZ=UTC
  printf 'hello\n' > "$tmp/a.txt"
  head -c 1500 "$tmp/data" > "$tmp/gap"
  head -c 6000 "$tmp/data" > "$tmp/frag"
  for spec in "12 128" "16 2200" "32 34000"; do
    set -- $spec
    f="$tmp/fat$1.img"
    mkfs.vfat -C -F "$1" -s 1 -n SEED "$f" "$2" >/dev/null 2>&1
    for d in sub sub/deeper many gaps; do mmd -i "$f" "::/$d"; done
    mcopy -i "$f" "$tmp/a.txt" ::/lower.txt
    mcopy -i "$f" "$tmp/gap" "::/A long name with spaces.bin"
    mcopy -i "$f" "$tmp/a.txt" "::/sub/deeper/Ärger.txt"
    for i in $(seq 20); do mcopy -i "$f" "$tmp/a.txt" "::/many/entry number $i.txt"; done
    for i in $(seq 6); do mcopy -i "$f" "$tmp/gap" "::/gaps/g$i"; done
    for i in 2 4 6; do mdel -i "$f" "::/gaps/g$i"; done
    mcopy -i "$f" "$tmp/frag" ::/frag.bin
    mattrib -i "$f" +r ::/lower.txt
    if [ "$1" = 32 ]; then
      reserved=$(od -An -tu2 -j14 -N2 "$f") fats=$(od -An -tu1 -j16 -N1 "$f") fat_sectors=$(od -An -tu4 -j36 -N4 "$f")
      two_part "$f" $((reserved * 512 + 4096)) $(((reserved + fats * fat_sectors) * 512)) 49152 > "$dir/fat$1"
    else
      single_part "$f" > "$dir/fat$1"
    fi
  done
  ;;
xfs_fuzz)
  # Small single-AG XFS v5 and v4 volumes with an external log (its blocks would
  # only be noise), 1 KiB blocks and 4 KiB directory blocks, so that the shapes
  # the reader parses fit in about 100 KiB: short form, block, leaf (data
  # blocks), and (v4) a directory of long names whose blocks interleave with file
  # data: more extents than the inode holds, a btree block map. (Node directories
  # differ from leaf ones only in the hash index, which the reader does not need.)
  export TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1  # mkfs.xfs: allow a volume below 300 MB
  printf 'hello\n' > "$tmp/a.txt"
  head -c 5000 "$tmp/data" > "$tmp/five"
  : > "$tmp/empty"
  for crc in 1 0; do
    {
      echo seed; echo 0 0; echo "d--755 0 0"
      echo "a.txt ---644 1 2 $tmp/a.txt"
      echo "five.bin ---600 0 0 $tmp/five"
      echo "Ärger.txt ---644 0 0 $tmp/a.txt"
      echo "short l--777 0 0 a.txt"
      # mkfs.xfs 6.1 writes a v5 remote symlink without its header: v4 only.
      [ $crc = 0 ] && echo "long l--777 0 0 $(printf 'long/%.0s' $(seq 150))target"
      echo "fifo p--644 0 0"
      echo "sf d--755 0 0"; for i in 1 2 3; do echo "s$i ---644 0 0 $tmp/a.txt"; done; echo '$'
      echo "block d--755 0 0"; for i in $(seq 20); do echo "block-entry-number-$i ---644 0 0 $tmp/empty"; done; echo '$'
      echo "leaf d--755 0 0"; for i in $(seq 50); do echo "leaf-entry-$i-$(printf 'y%.0s' $(seq 90)) ---644 0 0 $tmp/empty"; done; echo '$'
      if [ $crc = 0 ]; then
        echo "btree d--755 0 0"
        long=$(printf 'x%.0s' $(seq 184))
        for i in $(seq 190); do echo "btree-entry-$(printf %03d $i)-$long ---644 0 0 $tmp/$([ $((i % 15)) = 0 ] && echo a.txt || echo empty)"; done
        echo '$'
      fi
      echo '$'
    } > "$tmp/proto$crc"
    f="$tmp/xfs$crc.img"
    truncate -s 16M "$f"
    truncate -s 16M "$tmp/log$crc"
    mkfs.xfs -q -f -m crc=$crc -b size=1024 -d agcount=1 -l logdev="$tmp/log$crc" -L seed \
      -p "$tmp/proto$crc" "$f" 2>&1 | grep -v "V4 filesystems are deprecated" || true
    single_part "$f" > "$dir/xfs-v$((crc ? 5 : 4))"
  done
  ;;
mirror_fuzz)
  # Whole legs of small mirrors (64 KiB of data) with each checksum, one with data
  # and a bitmap region marked, one whose other leg failed.
  [ -x "${ARCHE:-}" ] || { echo "seeds.sh: set ARCHE to the arche binary" >&2; exit 1; }
  i=0
  for opts in "--checksum xxh3" "--checksum crc32c" "--checksum none" "--block-size 64K --region-size 64K"; do
    # shellcheck disable=SC2086
    "$ARCHE" -q raid create "$tmp/a$i" "$tmp/b$i" --size 64K $opts
    "$ARCHE" -q image write "mirror:$tmp/a$i+$tmp/b$i" 4096 --pattern 0x33 --length 20000
    cp "$tmp/a$i" "$tmp/leg$i" && image_seed "$tmp/leg$i"
    i=$((i+1))
  done
  "$ARCHE" -q raid fail "$tmp/a0" "$tmp/b0"
  cp "$tmp/a0" "$tmp/degraded" && image_seed "$tmp/degraded"
  ;;
ext_fuzz)
  # ext2, ext3 and ext4 with 1 KiB blocks, filled by mkfs -d: nested directories,
  # a directory of many entries, short and long symlinks, a file of many extents.
  mkdir -p "$tmp/tree/sub/deeper" "$tmp/tree/many"
  printf 'hello\n' > "$tmp/tree/a.txt"
  head -c 20000 "$tmp/data" > "$tmp/tree/sub/deeper/twenty.bin"
  for i in $(seq 40); do printf '%s\n' "$i" > "$tmp/tree/many/entry-number-$i.txt"; done
  ln -s a.txt "$tmp/tree/short"
  ln -s "$(printf 'long/%.0s' $(seq 40))target" "$tmp/tree/long"
  # (ext3's journal makes its seed longer than an input: the fuzzer gets its start.)
  for t in ext2 ext3 ext4; do
    truncate -s 2M "$tmp/$t.img"
    opts=(); [ "$t" = ext4 ] && opts=(-O ^has_journal)
    mkfs.ext4 -q -F -t "$t" "${opts[@]}" -b 1024 -N 128 -L seed -d "$tmp/tree" "$tmp/$t.img" >/dev/null
    cut_two_part "$tmp/$t.img" 262144 > "$dir/$t"
  done
  ;;
ntfs_fuzz)
  # An empty NTFS volume (mkntfs): the system files, the root index, the MFT and
  # its mirror (files would need a mount: FUSE is not there everywhere).
  for cs in 512 4096; do
    truncate -s 2M "$tmp/ntfs$cs.img"
    mkntfs -q -F -f -c "$cs" -L seed "$tmp/ntfs$cs.img" >/dev/null 2>&1
    cut_two_part "$tmp/ntfs$cs.img" 262144 > "$dir/ntfs$cs"
  done
  ;;
*) echo "seeds.sh: no seeds for $target" >&2 ;;
esac
