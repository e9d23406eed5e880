#!/usr/bin/env bash
# The one list of Debian packages arche needs, each tagged with what it is for:
#   runtime  what an installed arche uses (shared libraries, programs it runs)
#   build    compilers, build tools and -dev packages
#   test     referees, fixtures and servers the test suite drives
#   bench    the anchors and tools of bench/
# Usage: install-deps.sh [--runtime] [--build] [--test] [--bench] [--list]
#   No category: all of them (so `make demo` and `make test` stay two commands).
#   --list prints the selected packages instead of installing them.
# Idempotent: installs only what is missing, after an apt-get update. Debian 12, as root.
set -euo pipefail

packages=(
  # ---- toolchain and build tools
  build:build-essential build:cmake build:ninja-build build:pkg-config build:git build:ccache
  build:clang build:libclang-rt-14-dev build:llvm-14    # libFuzzer targets (-fsanitize=fuzzer), clang-format
  build:dpkg-dev build:debhelper build:fakeroot         # make deb / debian/rules
  build:help2man
  # ---- libraries: -dev to build, the shared library at run time
  build:libcli11-dev build:nlohmann-json3-dev
  build:libfmt-dev runtime:libfmt9
  build:libzstd-dev runtime:libzstd1
  build:zlib1g-dev runtime:zlib1g
  build:libsodium-dev runtime:libsodium23
  build:librsync-dev runtime:librsync2
  build:libboost-filesystem-dev runtime:libboost-filesystem1.74.0
  build:libpugixml-dev runtime:libpugixml1v5          # OVF (XML)
  build:libtomlplusplus-dev runtime:libtomlplusplus3  # VM configurations (TOML)
  build:liblz4-dev runtime:liblz4-1                   # bzImage payloads decompressed on the host
  build:liblzma-dev runtime:liblzma5
  build:libgtest-dev build:googletest
  # the modules of the coming issues (volume, backup stores, mount, sandboxing, compression)
  build:libext2fs-dev runtime:libext2fs2
  build:ntfs-3g-dev runtime:libntfs-3g89
  build:libblkid-dev runtime:libblkid1
  build:libfuse3-dev runtime:libfuse3-3 runtime:fuse3  # fusermount3 for `backup mount`
  build:libssh-dev runtime:libssh-4                    # SFTP store
  build:libcurl4-openssl-dev runtime:libcurl4          # S3 store
  build:libs3-dev runtime:libs3-2
  build:libssl-dev runtime:libssl3
  build:libseccomp-dev runtime:libseccomp2
  build:libdeflate-dev runtime:libdeflate0
  build:libxxhash-dev runtime:libxxhash0
  # ---- test: referees and fixtures
  test:qemu-utils                                   # qemu-img, qemu-io, qemu-nbd: image formats and locks
  test:qemu-system-x86                              # the test guest under QEMU; a VM holding an image lock
  test:e2fsprogs test:fdisk test:util-linux         # mkfs.ext4 -d, sfdisk, losetup
  test:xfsprogs test:btrfs-progs test:dosfstools test:mtools test:ntfs-3g test:lvm2
  test:busybox-static test:cpio                     # initrd for the Linux boot test
  test:iproute2                                     # TAP devices in the virtio-net test
  test:attr                                         # getfattr/setfattr: xattr fixtures
  test:openssh-server                               # a real SFTP peer on 127.0.0.1
  test:ceph-mon test:ceph-osd test:radosgw test:ceph-common  # a one-node Ceph serving S3
  test:seabios                                      # a real BIOS for firmware boot
  test:chromium                                     # headless: looks at HTML reports
  test:stress-ng                                    # load while tests run
  test:zsh                                          # the generated zsh completion
  test:groff-base                                   # the generated man pages are checked with groff
  # ---- bench: anchors and measuring tools
  bench:borgbackup bench:restic bench:partclone bench:rclone
  bench:time bench:bc bench:coreutils bench:procps  # peak RSS (/usr/bin/time -v), arithmetic
  bench:linux-perf
)

want_runtime=0 want_build=0 want_test=0 want_bench=0 list_only=0
for arg in "$@"; do
  case "$arg" in
    --runtime) want_runtime=1 ;;
    --build) want_build=1 ;;
    --test) want_test=1 ;;
    --bench) want_bench=1 ;;
    --list) list_only=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps: unknown option '$arg' (see: $0 --help)" >&2; exit 64 ;;
  esac
done
if [ $((want_runtime + want_build + want_test + want_bench)) -eq 0 ]; then
  want_runtime=1 want_build=1 want_test=1 want_bench=1
fi

selected=()
for entry in "${packages[@]}"; do
  category=${entry%%:*} name=${entry#*:}
  case "$category" in
    runtime) [ "$want_runtime" -eq 1 ] || continue ;;
    build) [ "$want_build" -eq 1 ] || continue ;;
    test) [ "$want_test" -eq 1 ] || continue ;;
    bench) [ "$want_bench" -eq 1 ] || continue ;;
    *) echo "install-deps: package $name has no category" >&2; exit 70 ;;
  esac
  selected+=("$name")
done

if [ "$list_only" -eq 1 ]; then
  printf '%s\n' "${selected[@]}"
  exit 0
fi

missing=()
for p in "${selected[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

updated=0
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#selected[@]} packages present"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo $0 $*)" >&2
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
if [ "$want_test" -eq 1 ] && [ ! -s /var/cache/arche/vmlinuz-cloud-amd64 ] && [ "$(id -u)" -eq 0 ]; then
  [ "$updated" -eq 1 ] || apt-get update -qq
  "$(dirname "$0")/../tests/hv/fetch-cloud-kernel.sh" /var/cache/arche
fi
