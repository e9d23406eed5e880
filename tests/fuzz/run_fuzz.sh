#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded number of iterations from a seed corpus
# of valid images made here and now (qemu-img and arche), so the fuzzer starts from
# real structures. Usage: run_fuzz.sh BINARY NAME RUNS [SECONDS]: RUNS inputs, or
# SECONDS (default 120) of fuzzing, whichever ends first.
set -euo pipefail
bin=$1 name=$2 runs=$3 seconds=${4:-120}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=targets.sh
. "$here/targets.sh"
work=$(mktemp -d /var/tmp/arche-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
"$here/seeds.sh" "$name" "$work/corpus"
cd "$work"
fuzz_sanitizer_env "$name"
# -rss_limit_mb keeps a runaway allocation a finding, not an OOM of the CI machine.
"$bin" -runs="$runs" -max_len="$(fuzz_max_len "$name")" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
  -print_final_stats=1 corpus 2>&1 | tail -n 25
