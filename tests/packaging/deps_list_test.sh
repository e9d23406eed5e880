#!/usr/bin/env bash
# scripts/install-deps.sh keeps the one list; debian/control must build with it:
# every library (-dev) the build needs is a Build-Depends of the package, and every
# entry of the list has a category.  Usage: deps_list_test.sh SOURCE_DIR
set -euo pipefail
src=$1
fail() { echo "deps list: $*" >&2; exit 1; }
build=$("$src/scripts/install-deps.sh" --build --list)
all=$("$src/scripts/install-deps.sh" --list)
[ -n "$build" ] || fail "no build packages listed"
for c in runtime test bench; do
  [ -n "$("$src/scripts/install-deps.sh" --$c --list)" ] || fail "no $c packages listed"
done
[ "$(echo "$all" | wc -l)" -eq "$(for c in runtime build test bench; do "$src/scripts/install-deps.sh" --$c --list; done | wc -l)" ] ||
  fail "the categories do not add up to the whole list"
control=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$src/debian/control")
for p in $build; do
  case "$p" in
    dpkg-dev) ;;  # the packaging tool itself
    lib*-dev|*-dev|cmake|ninja-build|pkg-config)
      case "$p" in libgtest-dev|libclang-rt-*) continue ;; esac  # tests and fuzzing only
      grep -Eq "(^|[ ,])$p([ ,(]|$)" <<<"$control" || fail "$p is a build package but not in debian/control Build-Depends"
      ;;
  esac
done
echo "deps list: $(echo "$all" | wc -l) packages, debian/control builds with the build ones"
