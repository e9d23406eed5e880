#!/usr/bin/env bash
# After the test suite: no test may have left a disk image (or an arche temporary
# file) in the source tree. Tests work in their own temporary directories; this
# catches one that does not. Build and output directories are not looked at.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "check-clean-tree: not a git checkout, nothing to compare with"
  exit 0
fi
left=$( { git ls-files --others --exclude-standard; git ls-files --others --ignored --exclude-standard; } |
  grep -Ev '^(build|build-[^/]*|demo-output|bench-output|obj-[^/]*)/' |
  grep -E '\.(qcow2|raw|img|vmdk|vhd|vhdx|vdi|iso|ova)$|\.arche-tmp-' | sort -u || true)
if [ -n "$left" ]; then
  echo "check-clean-tree: the test suite left files in the source tree:" >&2
  echo "$left" | sed 's/^/  /' >&2
  exit 1
fi
echo "check-clean-tree: no images or temporary files left in the source tree"
