#!/usr/bin/env bash
# `cmake --install` into a DESTDIR gives the expected tree: the binary, one man page
# per command group (generated at build time from the command tree, clean for groff),
# bash and zsh completion that complete commands and options, the documentation and
# the examples.  Usage: install_tree_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
root=$(mktemp -d /var/tmp/arche-install-test-XXXXXX)
trap 'rm -rf "$root"' EXIT
fail() { echo "install tree: $*" >&2; exit 1; }

DESTDIR="$root" cmake --install "$build" --prefix /usr/local >/dev/null
prefix="$root/usr/local"

# The binary runs from where it was installed.
[ -x "$prefix/bin/arche" ] || fail "bin/arche is missing"
version=$("$prefix/bin/arche" --version)
[[ $version =~ ^arche\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "arche --version says '$version'"

# One page per group the binary has, each clean for groff.
groups=$("$prefix/bin/arche" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && $1 != "" {print $1}')
[ -n "$groups" ] || fail "no command groups in arche --help"
pages=(arche)
for g in $groups; do pages+=("arche-$g"); done
for page in "${pages[@]}"; do
  file="$prefix/share/man/man1/$page.1"
  [ -s "$file" ] || fail "man page $page.1 is missing"
  warnings=$(groff -man -Tutf8 -ww -z "$file" 2>&1) || fail "groff failed on $page.1: $warnings"
  [ -z "$warnings" ] || fail "groff warns about $page.1: $warnings"
  head -1 "$file" | grep -q "^\.TH \"${page^^}\" 1" || fail "$page.1 has no .TH header"
done
grep -q '^\.SS "arche image convert"' "$prefix/share/man/man1/arche-image.1" || fail "arche-image.1 lacks image convert"
grep -q '\\-\\-output\\-format' "$prefix/share/man/man1/arche-image.1" || fail "arche-image.1 lacks --output-format"
grep -q 'EXIT STATUS' "$prefix/share/man/man1/arche.1" || fail "arche.1 lacks EXIT STATUS"

# bash: complete "arche im", "arche image in", "arche image info --ba".
bash_file="$prefix/share/bash-completion/completions/arche"
[ -s "$bash_file" ] || fail "bash completion is missing"
complete_bash() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _arche; echo "${COMPREPLY[*]}"' _ "$bash_file" "$@"
}
[ "$(complete_bash arche im)" = image ] || fail "bash: 'arche im' completes to '$(complete_bash arche im)'"
[ "$(complete_bash arche image in)" = "info" ] || fail "bash: 'arche image in' gives '$(complete_bash arche image in)'"
[ "$(complete_bash arche image info --ba)" = "--backing-chain" ] || fail "bash: options of image info"
[ "$(complete_bash arche -q image conv)" = "convert" ] || fail "bash: a global option before the group"
for g in $groups; do
  complete_bash arche "" | tr ' ' '\n' | grep -qx "$g" || fail "bash: group $g is not completed"
done

# zsh: the same through stand-ins for the completion system's _describe and _files.
zsh_file="$prefix/share/zsh/site-functions/_arche"
[ -s "$zsh_file" ] || fail "zsh completion is missing"
if command -v zsh >/dev/null; then
  zsh -n "$zsh_file" || fail "zsh completion does not parse"
  complete_zsh() {
    zsh -c '_describe() { print -rl -- "${(@P)4}"; }; _files() { print FILES; }
            source "$1" >/dev/null 2>&1; shift; words=("$@"); CURRENT=$#; PREFIX=${words[CURRENT]}; _arche' _ "$zsh_file" "$@"
  }
  complete_zsh arche image in | grep -q '^info:Show the format' || fail "zsh: 'arche image in': $(complete_zsh arche image in)"
  complete_zsh arche image info --ba | grep -q '^--backing-chain:' || fail "zsh: options of image info"
  [ "$(complete_zsh arche image info x)" = FILES ] || fail "zsh: arguments complete as files"
else
  fail "zsh is missing (scripts/install-deps.sh --test installs it)"
fi

# Documentation and examples.
doc="$prefix/share/doc/arche"
for f in README.md cli.md image.md examples/VM.toml examples/README.md; do
  [ -s "$doc/$f" ] || fail "doc/$f is missing"
done
echo "install tree: ${#pages[@]} man pages, bash and zsh completion, docs: all present and working"
