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
*) echo "seeds.sh: no seeds for $target" >&2 ;;
esac
