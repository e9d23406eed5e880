#!/usr/bin/env bash
# Line coverage of each fuzz target's parser files over its stored corpus
# (docs/testing.md): builds the targets with source-based coverage into their own
# directory, replays each corpus once and prints llvm-cov's report per target, so
# a harness that does not reach its parser shows. Usage:
#   scripts/fuzz-coverage.sh [TARGET...]      (default: every target)
#   ARCHE_FUZZ_CACHE           corpora (scripts/fuzz.sh; default /var/tmp/arche-fuzz);
#                              a target without one is replayed over its seeds
#   ARCHE_FUZZ_COVERAGE_BUILD  the coverage build (default build-fuzz-coverage)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ARCHE_FUZZ_CACHE:-/var/tmp/arche-fuzz}
build=${ARCHE_FUZZ_COVERAGE_BUILD:-$root/build-fuzz-coverage}
llvm_suffix=-14
[ -z "${ARCHE:-}" ] && [ -x "$root/build/cli/arche" ] && export ARCHE=$root/build/cli/arche
# shellcheck source=tests/fuzz/targets.sh
. "$root/tests/fuzz/targets.sh"
targets=${*:-$fuzz_targets}
for t in $targets; do fuzz_sources "$t" >/dev/null || { echo "fuzz-coverage.sh: no target $t" >&2; exit 2; }; done

if [ ! -f "$build/build.ninja" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  cmake -S "$root/tests/fuzz/project" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DARCHE_ROOT="$root" -DCMAKE_BUILD_TYPE=Debug -DARCHE_FUZZ_COVERAGE=ON "${launcher[@]}" >/dev/null
fi
# shellcheck disable=SC2086
cmake --build "$build" -j "$(nproc)" --target $targets

work=$(mktemp -d /var/tmp/arche-fuzz-coverage-XXXXXX)
trap 'rm -rf "$work"' EXIT
for t in $targets; do
  corpus=$cache/$t/corpus
  if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
    corpus=$work/$t-seeds && mkdir -p "$corpus" && "$root/tests/fuzz/seeds.sh" "$t" "$corpus"
  fi
  # -runs=0: every input of the corpus once, nothing new.
  (cd "$work" && LLVM_PROFILE_FILE="$work/$t-%p.profraw" "$build/$t" -runs=0 -max_len="$(fuzz_max_len "$t")" \
     -rss_limit_mb=2048 -timeout=30 "$corpus") >"$work/$t.log" 2>&1 || { echo "$t: replay failed:"; tail -n 5 "$work/$t.log"; }
  llvm-profdata$llvm_suffix merge -sparse "$work/$t"-*.profraw -o "$work/$t.profdata"
  files=()
  for s in $(fuzz_sources "$t"); do
    if [ -d "$root/$s" ]; then files+=("$root/$s"/*.cpp); else files+=("$root/$s"); fi
  done
  echo "== $t ($(find "$corpus" -type f | wc -l) inputs from $corpus)"
  # llvm-cov's columns: file, regions (3), functions (3), lines (total, missed, cover), branches (3).
  printf '  %-40s %7s %7s  %s\n' file lines missed covered
  llvm-cov$llvm_suffix report "$build/$t" -instr-profile="$work/$t.profdata" "${files[@]}" |
    awk -v root="$root/" '/^(Filename|-)/ || NF < 10 { next } { sub(root, "", $1); printf "  %-40s %7s %7s  %s\n", $1, $8, $9, $10 }'
done
