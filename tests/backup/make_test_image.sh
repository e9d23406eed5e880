#!/usr/bin/env bash
# A disk image like ../shared/bench/mkimage.sh makes (GPT, one ext4 partition holding
# binaries, headers, random data, text invoices and a file with customer data), but
# small enough for tests and made without root (mkfs.ext4 -d).
#   make_test_image.sh OUT [SIZE] [MARKER]
set -euo pipefail
out=${1:?usage: make_test_image.sh OUT [SIZE] [MARKER]}
size=${2:-96M}
marker=${3:-Kundendaten Mueller GmbH}
work=$(mktemp -d /var/tmp/arche-testimg-XXXXXX)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
mkdir -p "$stage/usr/bin" "$stage/usr/include" "$stage/home/kunde"
for b in bash ls cp tar gzip sed; do cp -a "$(command -v "$b")" "$stage/usr/bin/" 2>/dev/null || true; done
cp -a /usr/include/linux "$stage/usr/include/"
head -c 8M /dev/urandom > "$stage/random.bin"
for i in $(seq 1 40); do head -c 20K /dev/urandom | base64 > "$stage/home/kunde/rechnung_$i.txt"; done
printf '%s\n' "$marker" > "$stage/home/kunde/wichtig.txt"
rm -f "$out"
truncate -s "$size" "$out"
printf 'label: gpt\n,,L\n' | sfdisk -q "$out"
read -r start sectors < <(sfdisk -d "$out" | awk -F'[=,]' '/start=/{for(i=1;i<=NF;i++){if($i~/start/)s=$(i+1);if($i~/size/)z=$(i+1)}} END{print s+0, z+0}')
truncate -s $((sectors * 512)) "$work/part.img"
mkfs.ext4 -q -L root -d "$stage" "$work/part.img"
dd if="$work/part.img" of="$out" bs=1M seek=$((start * 512 / 1048576)) conv=notrunc,sparse status=none
