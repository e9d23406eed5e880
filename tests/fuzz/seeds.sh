#!/usr/bin/env bash
# Seed corpora for the fuzz targets: small valid images in the formats each target
# parses. Usage: seeds.sh TARGET DIR
set -euo pipefail
target=$1 dir=$2
command -v qemu-img >/dev/null || { echo "qemu-img missing: run scripts/install-deps.sh" >&2; exit 1; }
tmp=$(mktemp -d /var/tmp/arche-seeds-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
head -c 200000 /dev/urandom > "$tmp/data"
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
backup_fuzz) ;;  # writes its own seeds into the empty corpus (LLVMFuzzerInitialize)
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
