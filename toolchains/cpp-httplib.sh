#!/usr/bin/env bash
# Fetches cpp-httplib 0.18.7 from Debian 13's (trixie) source package, which
# carries the fixes for CVE-2025-46728, CVE-2025-52887 and CVE-2025-53629,
# applies Debian's patches in series order, and installs the single header
# under $1 (default build/deps/cpp-httplib). Debian 12 ships only 0.11.4,
# compiled with request decompression on and none of those fixes; a header-only
# copy lets the project build it with its own limits (cmake/dependencies.cmake).
#
# Only Debian's registry is used, through a private apt state so the system's
# sources are untouched. Both tarballs are pinned by SHA-256 (as the .dsc lists
# them); a mismatch stops the build. The result is cached: a finished install
# (marked by .complete holding the header's SHA-256) is reused.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-$top/build/deps/cpp-httplib}

version=0.18.7
debian_revision=1+deb13u1
orig_sha256=c88f6495da71e778c82c22995b547a92ceb41cc4016f9028df67106a24b9210d
debian_sha256=00ea33189a7421a434b6d9ccb431ef4debce086534d249e8efa89050e7593198
# The patched header itself, so that a change anywhere in the recipe shows.
header_sha256=deaefda5e2093ee8c4c651b304d33d4f2996ec6f3f47dded4ffb10cdc28ec90b

if [ -f "$prefix/.complete" ] && [ "$(cat "$prefix/.complete")" = "$header_sha256" ]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial"
uri=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
  uri=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
fi
uri=${uri:-http://deb.debian.org/debian}
echo "deb-src $uri trixie main" > "$work/sources.list"
apt=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/dev/null
     -o "Dir::State::Lists=$work/lists" -o APT::Sandbox::User=root)
apt-get "${apt[@]}" -qq update >/dev/null
(cd "$work" && apt-get "${apt[@]}" -qq source --download-only "cpp-httplib=$version-$debian_revision" >/dev/null)

check() {
  local file=$1 want=$2 got
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "cpp-httplib: $(basename "$file") has SHA-256 $got, expected $want" >&2
    exit 1
  fi
}
check "$work/cpp-httplib_$version.orig.tar.xz" "$orig_sha256"
check "$work/cpp-httplib_$version-$debian_revision.debian.tar.xz" "$debian_sha256"

mkdir -p "$work/src"
tar -xJf "$work/cpp-httplib_$version.orig.tar.xz" -C "$work/src" --strip-components=1
tar -xJf "$work/cpp-httplib_$version-$debian_revision.debian.tar.xz" -C "$work/src"
while read -r patch_name; do
  case "$patch_name" in ''|'#'*) continue;; esac
  patch -s -d "$work/src" -p1 < "$work/src/debian/patches/$patch_name"
done < "$work/src/debian/patches/series"
check "$work/src/httplib.h" "$header_sha256"

rm -rf "$prefix"
mkdir -p "$prefix/include"
cp "$work/src/httplib.h" "$prefix/include/httplib.h"
cp "$work/src/LICENSE" "$prefix/LICENSE"
echo "$header_sha256" > "$prefix/.complete"
echo "cpp-httplib $version-$debian_revision (Debian's patched source) installed in $prefix"
