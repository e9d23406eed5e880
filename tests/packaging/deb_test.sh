#!/usr/bin/env bash
# The Debian package, cheaply: debian/rules packages the tree the suite just built
# (ARCHE_PREBUILT, no second compilation), then the .deb is unpacked with dpkg -x
# into a scratch root and arche --version runs from it. `make deb` builds the same
# package from scratch (dpkg-buildpackage -us -uc -b).
# Usage: deb_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) src=$2
fail() { echo "deb: $*" >&2; exit 1; }
for tool in dh dpkg-deb dpkg-shlibdeps dpkg-parsechangelog; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/install-deps.sh --build"
done
work=$(mktemp -d /var/tmp/arche-deb-test-XXXXXX)
trap 'rm -rf "$work"' EXIT

# debian/rules works in a copy of debian/; its output lands beside that copy.
mkdir -p "$work/src"
cp -r "$src/debian" "$work/src/"
(cd "$work/src" && ARCHE_PREBUILT="$build" debian/rules binary >"$work/log" 2>&1) || { cat "$work/log" >&2; fail "debian/rules binary failed"; }
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
deb=$(ls "$work"/arche_"$version"_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no arche_${version}_*.deb (have: $(ls "$work"))"
if readelf -S "$build/cli/arche" | grep -q '\.debug_info'; then
  ls "$work"/arche-dbgsym_"$version"_*.*deb >/dev/null 2>&1 || fail "no arche-dbgsym package (have: $(ls "$work"))"
fi

# Depends: runtime shared libraries only (from ${shlibs:Depends}), never -dev packages.
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libsodium23 libzstd1 libstdc++6; do
  [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
[[ $depends != *-dev* ]] || fail "Depends names a -dev package: $depends"

dpkg -x "$deb" "$work/root"
got=$("$work/root/usr/bin/arche" --version)
[ "$got" = "arche $version" ] || fail "the packaged arche says '$got', debian/changelog says $version"
for f in usr/share/man/man1/arche.1.gz usr/share/man/man1/arche-image.1.gz usr/share/bash-completion/completions/arche \
         usr/share/zsh/vendor-completions/_arche usr/share/doc/arche/cli.md usr/share/doc/arche/examples/VM.toml; do
  # dh_compress gzips documentation above 4 KiB
  [ -e "$work/root/$f" ] || [ -e "$work/root/$f.gz" ] || fail "the package lacks /$f"
done
echo "deb: $(basename "$deb") (Depends: $depends) runs as '$got'"
