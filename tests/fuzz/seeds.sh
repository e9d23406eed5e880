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
case "$target" in
qcow2_fuzz)
  i=0
  for opts in "compat=0.10" "compat=1.1" "cluster_size=512" "cluster_size=4096,refcount_bits=1" \
              "compression_type=zstd" "lazy_refcounts=on" "refcount_bits=64,cluster_size=1024"; do
    f="$tmp/s$i.qcow2"
    qemu-img create -q -f qcow2 -o "$opts" "$f" 1M
    qemu-io -c "write -P 0x11 0 64k" -c "write -z 128k 64k" -f qcow2 "$f" >/dev/null
    cp "$f" "$dir/seed$i"
    i=$((i+1))
  done
  qemu-img create -q -f qcow2 -o cluster_size=4096 "$tmp/c.qcow2" 1M
  qemu-img convert -c -O qcow2 -o cluster_size=4096 "$tmp/c.qcow2" "$dir/compressed" 2>/dev/null || true
  qemu-img create -q -f qcow2 -b "$tmp/c.qcow2" -F qcow2 "$dir/overlay"
  qemu-img create -q -f qcow2 -o cluster_size=4096 "$tmp/snap.qcow2" 1M
  qemu-img snapshot -c first "$tmp/snap.qcow2" && cp "$tmp/snap.qcow2" "$dir/snapshot"
  ;;
backup_fuzz|s3_fuzz|sftp_fuzz) ;;  # write their own seeds into the empty corpus (LLVMFuzzerInitialize)
vmdk_fuzz)
  # Every subformat qemu-img writes (random data and a hole), arche's own
  # stream, a child with zeroed grains, descriptor files, and a small OVA.
  head -c 100000 /dev/urandom > "$tmp/raw"; truncate -s 1M "$tmp/raw"
  i=0
  for opts in "subformat=monolithicSparse" "subformat=streamOptimized" "subformat=monolithicSparse,zeroed_grain=on" \
              "subformat=monolithicFlat" "subformat=twoGbMaxExtentSparse"; do
    mkdir -p "$tmp/d$i"
    qemu-img convert -q -f raw -O vmdk -o "$opts" "$tmp/raw" "$tmp/d$i/disk.vmdk"
    cp "$tmp/d$i/disk.vmdk" "$dir/seed$i"
    i=$((i+1))
  done
  qemu-img create -q -f vmdk "$tmp/base.vmdk" 1M
  qemu-img create -q -f vmdk -o zeroed_grain=on -b base.vmdk -F vmdk "$tmp/child.vmdk"
  qemu-io -f vmdk -c "write -P 0x33 0 64k" -c "write -z 128k 64k" "$tmp/child.vmdk" >/dev/null
  cp "$tmp/child.vmdk" "$dir/child"
  if [ -n "${ARCHE:-}" ] && [ -x "$ARCHE" ]; then
    "$ARCHE" -q image convert -O vmdk -o subformat=streamOptimized "$tmp/raw" "$tmp/arche-stream.vmdk" && cp "$tmp/arche-stream.vmdk" "$dir/arche-stream"
    "$ARCHE" -q image create -f vmdk -o subformat=streamOptimized "$tmp/empty-stream.vmdk" 1M && cp "$tmp/empty-stream.vmdk" "$dir/empty-stream"
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
  cp "$tmp/vm.ovf" "$dir/ovf"
  cp "$tmp/d1/disk.vmdk" "$tmp/disk.vmdk"
  tar -C "$tmp" -cf "$dir/ova" vm.ovf disk.vmdk
  ;;
vhd_fuzz)
  i=0
  for opts in "subformat=dynamic" "subformat=fixed" "subformat=dynamic,force_size=on"; do
    f="$tmp/s$i.vhd"
    qemu-img create -q -f vpc -o "$opts" "$f" 3M
    qemu-io -c "write -P 0x11 0 64k" -c "write -z 128k 64k" -f vpc "$f" >/dev/null
    cp "$f" "$dir/seed$i"
    i=$((i+1))
  done
  ;;
vhdx_fuzz)
  # The target places four 256 KiB parts of its input at 0, 1, 2 and 3 MiB of a
  # file: cut real images the same way (qemu puts log, BAT and metadata there).
  i=0
  for opts in "subformat=dynamic,block_size=1M" "subformat=fixed,block_size=1M" "block_size=8M"; do
    f="$tmp/s$i.vhdx"
    qemu-img create -q -f vhdx -o "$opts" "$f" 8M
    qemu-io -c "write -P 0x11 0 64k" -c "write -z 2M 1M" -c "write -P 0x22 5M 4k" -f vhdx "$f" >/dev/null
    for part in 0 1 2 3; do dd if="$f" bs=256K count=1 skip=$((part * 4)) status=none; done > "$dir/seed$i"
    i=$((i+1))
  done
  ;;
vdi_fuzz)
  i=0
  for opts in "static=off" "static=on"; do
    f="$tmp/s$i.vdi"
    qemu-img create -q -f vdi -o "$opts" "$f" 2M
    qemu-io -c "write -P 0x11 0 64k" -c "write -P 0x22 1536k 4k" -f vdi "$f" >/dev/null
    cp "$f" "$dir/seed$i"
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
    cp "$tmp/a$i" "$dir/leg$i"
    i=$((i+1))
  done
  "$ARCHE" -q raid fail "$tmp/a0" "$tmp/b0"
  cp "$tmp/a0" "$dir/degraded"
  ;;
*) echo "seeds.sh: no seeds for $target" >&2 ;;
esac
