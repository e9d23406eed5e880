#!/usr/bin/env bash
# arche's walk-through on built-in defaults (make demo): a raw base disk, a chain of
# qcow2 overlays, writes, commit, conversion and checks; an export for VMware; a VM
# (the test guest) booted on an overlay of the disk; an encrypted backup of the disk
# and some files, and one deleted file brought back.
# Usage: scripts/demo.sh [ARCHE_BINARY] [GUEST_ELF]
set -euo pipefail
ARCHE=${1:-build/cli/arche}
ARCHE=$(realpath "$ARCHE")
GUEST=${2:-$(dirname "$ARCHE")/../tests/hv/guest/guest.elf}
out=${DEMO_DIR:-$(pwd)/demo-output}
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd -P)  # absolute and physical: backups store paths as the kernel sees them
cd "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ arche %s\n' "$*"; "$ARCHE" "$@"; }

step "A 256 MiB raw base disk with a 'boot sector' and some data"
run image create -f raw base.raw 256M
printf 'ARCHE DEMO BOOT SECTOR' > boot.bin
run image write base.raw 0 --from boot.bin
run image write base.raw 64M --pattern 0x42 --length 8M

step "Two qcow2 overlays on top of it: the base stays untouched from now on"
run image create -f qcow2 -b base.raw -F raw monday.qcow2
run image create -f qcow2 -b monday.qcow2 -F qcow2 tuesday.qcow2
run image write monday.qcow2 1M --pattern 0x4d --length 2M
run image write tuesday.qcow2 2M --pattern 0x54 --length 1M
run image write tuesday.qcow2 66M --zeroes --length 64K
run image info --backing-chain tuesday.qcow2
step "Which layer holds what (depth 0 = tuesday, 1 = monday, 2 = base)"
run image map tuesday.qcow2

step "Commit tuesday's changes into monday; tuesday is empty afterwards"
run image commit tuesday.qcow2
run image check monday.qcow2

step "Convert the whole chain into one compressed, standalone qcow2 (zstd)"
run image convert -c -O qcow2 -o compression_type=zstd tuesday.qcow2 standalone.qcow2
run image compare tuesday.qcow2 standalone.qcow2
run image check standalone.qcow2
run image measure -O qcow2 tuesday.qcow2

if command -v qemu-img >/dev/null; then
  step "qemu-img agrees"
  printf '$ qemu-img check standalone.qcow2\n'; qemu-img check standalone.qcow2
  printf '$ qemu-img compare tuesday.qcow2 standalone.qcow2\n'; qemu-img compare tuesday.qcow2 standalone.qcow2
fi

step "Export for VMware: a streamOptimized VMDK (what ESXi and OVA packages use)"
run image convert -O vmdk -o subformat=streamOptimized standalone.qcow2 export.vmdk
run image info export.vmdk
run image compare standalone.qcow2 export.vmdk

step "Boot a VM on a new overlay: the test guest writes 64 sectors at 32 MiB and reads them back"
run image create -f qcow2 -b standalone.qcow2 -F qcow2 vm-disk.qcow2
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ -f "$GUEST" ]; then
  run vm run --kernel "$(realpath "$GUEST")" --memory 128M --disk vm-disk.qcow2 \
    --cmdline "write=65536,64,7 flush read=65536,64"
  step "The guest's writes landed in the overlay (depth 0); everything else still comes from below"
  printf '$ arche image map vm-disk.qcow2 | awk (depth 0 only)\n'
  "$ARCHE" image map vm-disk.qcow2 | awk 'NR == 1 || $4 == 0'
else
  echo "(skipped: needs read-write /dev/kvm and the test guest at $GUEST)"
fi

step "An encrypted, deduplicated backup of the VM's disk and the firm's files"
mkdir -p files/invoices
printf 'Invoice 2026-0042: 12 chairs, EUR 1,234.00\n' > files/invoices/2026-0042.txt
printf 'Invoice 2026-0043: 1 desk, EUR 480.00\n' > files/invoices/2026-0043.txt
# The passphrase comes from the environment (or a file or a command), never from
# the command line, where every user of the machine could read it.
export ARCHE_NEW_PASSPHRASE="demo only: use a real passphrase" ARCHE_PASSPHRASE="demo only: use a real passphrase"
run backup init repo
run backup create repo::monday --image vm-disk.qcow2 files
rm files/invoices/2026-0042.txt
run backup create repo::tuesday --image vm-disk.qcow2 files
run backup list repo
run backup diff repo::monday tuesday
run backup info repo

step "Someone deleted invoice 2026-0042 on Tuesday: bring back Monday's copy"
run backup restore repo::monday --to restored files/invoices/2026-0042.txt
cat "restored$out/files/invoices/2026-0042.txt"
run backup restore repo::tuesday --image vm-disk.qcow2 --to vm-disk-restored.qcow2 -O qcow2
run image compare vm-disk.qcow2 vm-disk-restored.qcow2
run backup check --read-data repo

step "Done. Files are in $out"
ls -ls "$out"
