#!/usr/bin/env bash
# Fetches the Debian cloud kernel (linux-image-cloud-amd64's current image package)
# from the Debian archive and extracts its bzImage to DIR/vmlinuz-cloud-amd64, for
# the Linux boot-protocol tests. Nothing is installed; safe to run again.
#   fetch-cloud-kernel.sh [DIR]   (default /var/cache/arche)
set -euo pipefail
dir=${1:-/var/cache/arche}
out=$dir/vmlinuz-cloud-amd64
[ -s "$out" ] && { echo "fetch-cloud-kernel: $out present"; exit 0; }
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$pkg" ] || { echo "fetch-cloud-kernel: cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2; exit 1; }
(cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1 || { chmod 777 "$work"; apt-get download -q "$pkg"; })
dpkg-deb --fsys-tarfile "$work"/*.deb | tar -x -C "$work" --wildcards './boot/vmlinuz-*'
cp "$work"/boot/vmlinuz-* "$out.tmp"
mv "$out.tmp" "$out"
echo "fetch-cloud-kernel: $out from $pkg"
