#!/usr/bin/env bash
# Replays the inputs of past findings (tests/fuzz/regressions/NAME/*.gz, gzipped so
# that they stay small) through one target, each once: a finding that comes back
# fails the test. Usage: run_regressions.sh BINARY NAME.
set -euo pipefail
bin=$1 name=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=targets.sh
. "$here/targets.sh"
work=$(mktemp -d /var/tmp/arche-fuzz-regressions-XXXXXX)
trap 'rm -rf "$work"' EXIT
inputs=()
for f in "$here/regressions/$name"/*.gz; do
  out=$work/$(basename "$f" .gz)
  gzip -dc "$f" >"$out"
  inputs+=("$out")
done
[ ${#inputs[@]} -gt 0 ] || { echo "run_regressions: no inputs for $name" >&2; exit 1; }
fuzz_sanitizer_env "$name"
cd "$work"
# With files as arguments libFuzzer runs each one once and fails on any finding.
"$bin" "${inputs[@]}" 2>&1 | tail -n 40
