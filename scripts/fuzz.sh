#!/usr/bin/env bash
# A fuzzing campaign (docs/testing.md): runs each libFuzzer target of tests/fuzz for
# MINUTES (default 5) on every core (-fork), keeps corpora and crash artifacts in a
# cache directory between runs, minimises new crashes and prints one summary line
# per target. Usage: scripts/fuzz.sh [TARGET|all] [MINUTES]
#   ARCHE_FUZZ_CACHE  corpora, artifacts, logs  (default /var/tmp/arche-fuzz)
#   ARCHE_FUZZ_BUILD  the clang fuzz build      (default build-fuzz)
#   ARCHE_FUZZ_JOBS   parallel fuzzing jobs     (default: the number of cores)
#   ARCHE             arche binary, for the seeds of vmdk_fuzz and mirror_fuzz
#                     (default build/cli/arche when it exists)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-all} minutes=${2:-5}
cache=${ARCHE_FUZZ_CACHE:-/var/tmp/arche-fuzz}
build=${ARCHE_FUZZ_BUILD:-$root/build-fuzz}
jobs=${ARCHE_FUZZ_JOBS:-$(nproc)}
[ -z "${ARCHE:-}" ] && [ -x "$root/build/cli/arche" ] && export ARCHE=$root/build/cli/arche
# shellcheck source=tests/fuzz/targets.sh
. "$root/tests/fuzz/targets.sh"

if [ "$target" = all ]; then targets=$fuzz_targets; else targets=$target; fi
for t in $targets; do
  fuzz_max_len "$t" >/dev/null || { echo "fuzz.sh: no target $t (known: $fuzz_targets)" >&2; exit 2; }
done

# The clang project of tests/fuzz/project, configured into its own directory.
if [ ! -f "$build/build.ninja" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  cmake -S "$root/tests/fuzz/project" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DARCHE_ROOT="$root" -DCMAKE_BUILD_TYPE=Debug "${launcher[@]}" >/dev/null
fi
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" --target $targets

summaries=()
for t in $targets; do
  dir=$cache/$t
  mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/logs"
  if [ -z "$(ls -A "$dir/corpus")" ]; then "$root/tests/fuzz/seeds.sh" "$t" "$dir/corpus"; fi
  before=$(ls "$dir/artifacts")
  log=$dir/logs/$(date -u +%Y%m%dT%H%M%SZ).log
  echo "== $t: $minutes min, $jobs jobs, log $log"
  fuzz_sanitizer_env "$t"
  # -fork keeps going after a finding (-ignore_crashes), each one saved as an
  # artifact; -rss_limit_mb turns a runaway allocation into a finding.
  (cd "$dir" && "$build/$t" -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
     -max_total_time=$((minutes * 60)) -max_len="$(fuzz_max_len "$t")" -rss_limit_mb=2048 -timeout=30 \
     -artifact_prefix="$dir/artifacts/" corpus) >"$log" 2>&1 || true
  # New findings, each minimised next to it (NAME.min).
  new=0
  for f in "$dir"/artifacts/*; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    case "$name" in *.min) continue ;; esac
    if ! grep -qxF "$name" <<<"$before"; then
      new=$((new + 1))
      case "$name" in
      crash-*) (cd "$dir" && "$build/$t" -minimize_crash=1 -runs=20000 -max_total_time=120 \
                  -exact_artifact_path="$f.min" "$f") >>"$log" 2>&1 || true ;;
      esac
    fi
  done
  findings=$(find "$dir/artifacts" -maxdepth 1 -type f ! -name '*.min' | wc -l)
  # The last status line of the fork mode: "#N: cov: C ft: F corp: K exec/s: E ...".
  status=$(grep -E '^#[0-9]+: cov:' "$log" | tail -n 1 || true)
  execs=$(sed -nE 's/^#([0-9]+):.*/\1/p' <<<"$status")
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$status")
  rate=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$status")
  corpus=$(find "$dir/corpus" -type f | wc -l)
  summaries+=("$(printf '%-16s execs %10s  exec/s %7s  corpus %6s  cov %6s edges  findings %s (new %s)' \
    "$t" "${execs:-?}" "${rate:-?}" "$corpus" "${cov:-?}" "$findings" "$new")")
  echo "${summaries[-1]}"
done
echo "== summary ($cache)"
printf '%s\n' "${summaries[@]}"
for t in $targets; do
  for f in "$cache/$t"/artifacts/*; do
    [ -f "$f" ] && case "$f" in *.min) ;; *) echo "finding: $f (reproduce: $build/$t $f)" ;; esac
  done
done
exit 0
