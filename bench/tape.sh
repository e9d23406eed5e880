#!/usr/bin/env bash
# Tape benchmark (issue 14, acceptance 8; TARGETS.md: >= 0.9x for both): in one run,
#   write:   `arche tape backup` of a repository to a vtape library, against a plain
#            sequential write of the same bytes (the repository's packs concatenated
#            into one file, then fsync);
#   restore: `arche tape restore` of the snapshot from the vtape into a new
#            repository, against reading the same bytes (the cartridges to
#            /dev/null) and against copying the packs into a new directory (read +
#            write + fsync, what a restore does besides checking records).
# Data: DATA_MB (default 1024) of incompressible random data in one file backup.
# Wall and CPU (user+sys) time side by side, best of RUNS (default 3).
# Environment: BENCH_DIR (default /var/tmp/arche-bench/tape).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ARCHE=$(realpath "${1:-$root/build/cli/arche}")
work=${BENCH_DIR:-/var/tmp/arche-bench/tape}
data_mb=${DATA_MB:-1024}
runs=${RUNS:-3}
[ -x "$ARCHE" ] || { echo "bench/tape.sh: no arche binary at $ARCHE (make build)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/tape.sh: /usr/bin/time missing (package time)" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work/src"
cd "$work"
export ARCHE_PASSPHRASE=bench-tape ARCHE_TAPE_CATALOG=$work/catalog

head -c $((data_mb * 1024 * 1024)) /dev/urandom > src/data.bin
"$ARCHE" -q backup init repo --kdf-memory 8M --kdf-ops 1
"$ARCHE" -q backup create repo::bench src
bytes=$(find repo/data -type f -printf '%s\n' | awk '{s += $1} END {print s}')

# best LABEL CMD...: runs CMD $runs times (each after `prepare_LABEL` when defined),
# prints "LABEL wall user+sys" of the fastest.
best() {
  local label=$1; shift
  local best_wall="" best_cpu=""
  for _ in $(seq "$runs"); do
    if declare -F "prepare_$label" >/dev/null; then "prepare_$label"; fi
    sync
    /usr/bin/time -f '%e %U %S' -o t.txt "$@" >/dev/null
    read -r wall user sys < t.txt
    cpu=$(echo "$user + $sys" | bc)
    if [ -z "$best_wall" ] || [ "$(echo "$wall < $best_wall" | bc)" = 1 ]; then best_wall=$wall best_cpu=$cpu; fi
  done
  echo "$label $best_wall $best_cpu"
}

prepare_tape_write() {
  rm -rf lib catalog
  "$ARCHE" -q tape label vtape:$work/lib --pool bench --label B1 --capacity 100G --early-warning 1G
}
prepare_plain_write() { rm -f plain.bin; }
plain_write() { find repo/data -type f -print0 | sort -z | xargs -0 cat > plain.bin && sync plain.bin; }
prepare_tape_restore() { rm -rf restored; }
prepare_plain_copy() { rm -rf copied; }
plain_copy() { cp -r repo/data copied && sync -f copied; }

export -f plain_write plain_copy
w_tape=$(best tape_write "$ARCHE" -q tape backup repo::bench --pool bench --device vtape:$work/lib --new-set)
w_plain=$(best plain_write bash -c plain_write)
r_tape=$(best tape_restore "$ARCHE" -q tape restore --snapshot bench --device vtape:$work/lib --to $work/restored)
r_read=$(best plain_read bash -c "cat lib/*.vtape > /dev/null")
r_copy=$(best plain_copy bash -c plain_copy)
"$ARCHE" -q backup check restored --read-data >/dev/null && check=ok || check=FAILED

mb=$(echo "scale=1; $bytes / 1048576" | bc)
row() {  # row LABEL WALL CPU [ANCHOR_WALL]
  local rate ratio=""
  rate=$(echo "scale=0; $bytes / 1048576 / $2" | bc)
  [ -n "${4:-}" ] && ratio=$(echo "scale=2; $4 / $2" | bc)x
  printf '%-34s %8s s %8s s %7s MiB/s %7s\n' "$1" "$2" "$3" "$rate" "$ratio"
}
echo "tape bench: $mb MiB of packs, best of $runs (ratio = anchor time / arche time; >= 0.9 is the target)"
printf '%-34s %10s %10s %13s %8s\n' "" wall cpu rate ratio
set -- $w_plain; row "plain sequential write + fsync" "$2" "$3"; pw=$2
set -- $w_tape; row "arche tape backup (vtape)" "$2" "$3" "$pw"
set -- $r_read; row "plain read of the cartridges" "$2" "$3"; pr=$2
set -- $r_copy; row "plain copy of the packs + fsync" "$2" "$3"; pc=$2
set -- $r_tape; row "arche tape restore (vs read)" "$2" "$3" "$pr"
row "arche tape restore (vs copy)" "$2" "$3" "$pc"
echo "restored repository check --read-data: $check"
