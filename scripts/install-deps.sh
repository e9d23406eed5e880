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
  # referees and fixtures used by tests and bench/
  qemu-utils                          # qemu-img: the referee for image formats
  e2fsprogs fdisk util-linux          # mkfs.ext4 -d, sfdisk, losetup (bench images)
  coreutils procps
  borgbackup restic time              # bench/backup.sh anchors and peak RSS (/usr/bin/time -v)
  attr                                # getfattr/setfattr: xattr fixtures of the backup tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo $0)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
