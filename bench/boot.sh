#!/usr/bin/env bash
# Boot benchmark: process start -> first serial line of the test guest, arche vs
# QEMU (-enable-kvm -kernel, PVH), the same ELF, one run each, both printed.
#   bench/boot.sh [ARCHE] [GUEST_ELF]
# Target (shared/TARGETS.md): arche <= 0.2x QEMU.
set -euo pipefail
arche=${1:-build/cli/arche}
guest=${2:-build/tests/hv/guest/guest.elf}
[ -x "$arche" ] || { echo "boot.sh: $arche not found (build first)" >&2; exit 1; }
[ -f "$guest" ] || { echo "boot.sh: $guest not found (build first)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "boot.sh: qemu-system-x86_64 missing (scripts/install-deps.sh)" >&2; exit 1; }
[ -w /dev/kvm ] || { echo "boot.sh: /dev/kvm is not usable" >&2; exit 1; }

marker="arche test guest: hello"

# Prints the milliseconds from starting "$@" until its output shows $marker.
first_line_ms() {
  local start now line
  start=$(date +%s%N)
  while IFS= read -r line; do
    if [[ $line == *"$marker"* ]]; then
      now=$(date +%s%N)
      echo $(( (now - start) / 1000000 ))
      break
    fi
  done < <("$@" 2>/dev/null)
  wait 2>/dev/null || true
}

arche_ms=$(first_line_ms "$arche" vm run --kernel "$guest" --memory 128M --cmdline "exit=0")
qemu_ms=$(first_line_ms qemu-system-x86_64 -enable-kvm -M pc -m 128M -nodefaults -display none -serial stdio \
  -device isa-debug-exit,iobase=0x501,iosize=1 -kernel "$guest" -append "exit=0")

[ -n "$arche_ms" ] && [ -n "$qemu_ms" ] || { echo "boot.sh: a VM printed no serial line" >&2; exit 1; }
ratio=$(awk -v a="$arche_ms" -v q="$qemu_ms" 'BEGIN { printf "%.3f", (q > 0 ? a / q : 0) }')
printf '%-44s %10s\n' "boot to first serial line (test guest)" "ms"
printf '%-44s %10s\n' "arche vm run" "$arche_ms"
printf '%-44s %10s\n' "qemu-system-x86_64 -enable-kvm -kernel" "$qemu_ms"
printf '%-44s %10s   (target <= 0.2)\n' "arche / qemu" "$ratio"
