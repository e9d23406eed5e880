#!/usr/bin/env bash
# Source hygiene that must not regress (issue 9, points 19-22): one hex codec
# (core/hex.h), the version defined once (core/version.h from CMake's project
# version), the qcow2 table arithmetic written once, the CLI's parsing and printing
# apart, the VMDK device split by concern, and a .clang-format with its checker.
# Usage: source_hygiene_test.sh SOURCE_DIR
set -euo pipefail
cd "$1"
fail() { echo "hygiene: $*" >&2; exit 1; }
sources=$(git ls-files '*.cpp' '*.h' 2>/dev/null || find . -name '*.cpp' -o -name '*.h' | grep -v '^./build')
product=$(echo "$sources" | grep -v '^tests/' || true)

# Hex: no hand-written digit tables or decoders outside core/hex.
hits=$(grep -ln '"0123456789abcdef"\|0123456789ABCDEF' $product || true)
[ -z "$hits" ] || fail "hand-written hex in: $hits (use core/hex.h)"

# The version: from core/version.h (generated from project(VERSION)), nowhere else.
hits=$(grep -ln 'ARCHE_VERSION' $sources CMakeLists.txt */CMakeLists.txt || true)
[ -z "$hits" ] || fail "ARCHE_VERSION defined or used in: $hits (use arche::kVersion from core/version.h)"
grep -q 'kVersion\[\] = "@PROJECT_VERSION@"' core/version.h.in || fail "core/version.h.in does not take the project version"

# qcow2: guest offset -> L1 slot / L2 index only through the helpers.
hits=$(grep -n 'cluster_bits_ + l2_bits_\|& ((1ull << l2_bits_) - 1)' image/qcow2/*.cpp || true)
[ -z "$hits" ] || fail "qcow2 index arithmetic outside l1_index()/l2_index(): $hits"

# Concerns apart: the image, volume, raid and tape commands parse and call the library;
# what they print is shaped in cli/<group>_output.cpp.
for g in image volume raid tape; do
  grep -q 'print_json\|std::printf\|std::puts\|std::fputs\|say(' cli/${g}_commands.cpp &&
    fail "cli/${g}_commands.cpp prints; printing belongs in cli/${g}_output.cpp"
done
for f in cli/image_commands.cpp cli/image_output.cpp image/vmdk/vmdk_device.cpp image/vmdk/vmdk_open.cpp; do
  [ "$(wc -l <"$f")" -le 660 ] || fail "$f has grown past ~600 lines: split it by concern"
done

# Formatting: the style file and its checker exist and agree on a file written to it.
[ -s .clang-format ] || fail ".clang-format is missing"
[ -x scripts/check-format.sh ] || fail "scripts/check-format.sh is missing"
if command -v clang-format-14 >/dev/null || command -v clang-format >/dev/null; then
  scripts/check-format.sh core/hex.cpp core/hex.h core/json.h cli/usage.h >/dev/null || fail "check-format.sh rejects files written to .clang-format"
fi
echo "hygiene: hex, version, qcow2 indexes, CLI and VMDK splits, formatting: all in place"
