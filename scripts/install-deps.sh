#!/usr/bin/env bash
# The one list of Debian packages arche needs to build, test and benchmark.
# Idempotent: safe to run again; installs only what is missing. Run as root on Debian 12.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev            # libFuzzer targets (-fsanitize=fuzzer)
  # libraries (design card + ARCHITECTURE.md)
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libzstd-dev zlib1g-dev libsodium-dev librsync-dev
  libboost-filesystem-dev
  libgtest-dev googletest
  libpugixml-dev libtomlplusplus-dev  # OVF (XML) in; VM configurations (TOML) in and out
  # referees and fixtures used by tests and bench/
  qemu-utils                          # qemu-img: the referee for image formats
  e2fsprogs fdisk util-linux          # mkfs.ext4 -d, sfdisk, losetup (bench images)
  coreutils procps bc                 # bench/ arithmetic
  # hv: the VMM and its tests (docs/hv.md); libtomlplusplus-dev (VM.toml) is above
  liblz4-dev liblzma-dev              # bzImage payloads decompressed on the host
  qemu-system-x86                     # the test guest under QEMU; bench/boot.sh anchor
  busybox-static cpio                 # initrd for the Linux boot test
  iproute2                            # TAP devices in the virtio-net test
  borgbackup restic time              # bench/backup.sh anchors and peak RSS (/usr/bin/time -v)
  attr                                # getfattr/setfattr: xattr fixtures of the backup tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

updated=0
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo $0)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  updated=1
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: done"
fi

# Test fixture from the Debian archive (not installed): the cloud kernel's bzImage
# for the Linux boot-protocol tests (tests/hv/fetch-cloud-kernel.sh).
if [ ! -s /var/cache/arche/vmlinuz-cloud-amd64 ] && [ "$(id -u)" -eq 0 ]; then
  [ "$updated" -eq 1 ] || apt-get update -qq
  "$(dirname "$0")/../tests/hv/fetch-cloud-kernel.sh" /var/cache/arche
fi
