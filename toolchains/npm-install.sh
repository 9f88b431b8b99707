#!/usr/bin/env bash
# Installs the npm packages of the repository root (test peers, generators)
# from the lockfile; skipped when node_modules is already current.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
install() {
  local dir=$1
  [ -f "$dir/package-lock.json" ] || return 0
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "npm: installing packages in ${dir#$top/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
install "$top"
