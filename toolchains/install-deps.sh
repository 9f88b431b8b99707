#!/usr/bin/env bash
# Installs what `make demo` and `make test` need on a fresh Debian bookworm
# machine: Debian packages (with a deb-src source list for libsodium's source),
# then npm packages. Idempotent: packages already present are not reinstalled.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi

packages=(
  build-essential cmake pkg-config git
  emscripten
  libsodium-dev nlohmann-json3-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsqlite3-dev sqlite3 zlib1g-dev
  libpq-dev postgresql libgoogle-perftools-dev
  clang libclang-rt-14-dev
  unicode-data
  autoconf automake libtool dpkg-dev patch xz-utils
  chromium wrk hyperfine
)
missing=()
# Node.js and npm may come from elsewhere (the machine image ships them); only
# install Debian's when there is none.
if ! command -v node >/dev/null; then packages+=(nodejs); fi
if ! command -v npm >/dev/null; then packages+=(npm); fi
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# libsodium for wasm is built from Debian's source package, which needs a
# deb-src twin of every deb source.
need_src=0
if ! grep -rqs "^Types:.*deb-src" /etc/apt/sources.list.d/ && ! grep -qs "^deb-src" /etc/apt/sources.list; then
  need_src=1
fi
if [ "$need_src" = 1 ]; then
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case "$f" in *-src.sources) continue;; esac
    sed 's/^Types: deb$/Types: deb-src/' "$f" | $sudo tee "${f%.sources}-src.sources" >/dev/null
  done
  if [ -f /etc/apt/sources.list ] && grep -q "^deb " /etc/apt/sources.list; then
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list | $sudo tee /etc/apt/sources.list.d/tokenmeter-src.list >/dev/null
  fi
fi
if ((${#missing[@]})) || [ "$need_src" = 1 ]; then
  echo "installing Debian packages: ${missing[*]:-(none; refreshing source lists)}"
  $sudo apt-get update -qq
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
