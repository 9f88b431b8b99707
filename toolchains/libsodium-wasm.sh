#!/usr/bin/env bash
# Builds libsodium 1.0.18 for wasm32-unknown-emscripten from Debian's source
# package and installs it under $1 (default build/deps/libsodium-wasm).
# libsodium for wasm is not packaged; the source package is (TOOLCHAIN.md).
# The result is cached: a finished install (marked by .complete) is reused.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-$top/build/deps/libsodium-wasm}
if [ -f "$prefix/.complete" ]; then
  exit 0
fi
export NODE_PATH=/usr/share/nodejs
work=$top/build/deps/libsodium-src
rm -rf "$work" "$prefix"
mkdir -p "$work"
cd "$work"
apt-get source --download-only libsodium >/dev/null
tarball=$(ls libsodium_*.orig.tar.gz | head -n 1)
tar xzf "$tarball"
src=$(find . -maxdepth 1 -mindepth 1 -type d -name 'libsodium*' | head -n 1)
cd "$src"
# The tarball is a git tag: generate configure, without touching the network.
./autogen.sh -s >/dev/null 2>&1 || ./autogen.sh >/dev/null
emconfigure ./configure --prefix="$prefix" --host=wasm32-unknown-emscripten \
  --disable-shared --enable-static --without-pthreads --disable-ssp --disable-asm \
  --enable-minimal CFLAGS="-Os" >/dev/null
emmake make -j"$(nproc)" >/dev/null
emmake make install >/dev/null
touch "$prefix/.complete"
rm -rf "$work"
echo "libsodium for wasm installed in $prefix"
