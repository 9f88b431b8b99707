#!/usr/bin/env bash
# Builds `tokenmeter` as it was at an older commit, so a bench can measure it
# beside today's server in the same run, and prints the binary's path.
#
# usage: bench/server/baseline.sh [COMMIT]   (default f1d097e: the server
#        before the epoll edge, on Debian's compiled cpp-httplib 0.11.4 with
#        one thread per connection)
#
# The tree comes from `git archive` (no worktree to register or clean up) into
# build/baseline/<full hash>/, and only the server target is built. The result
# is cached: a finished build (marked by .complete) is reused. The old tree
# finds httplib through pkg-config (Debian's libcpp-httplib-dev) and reads the
# tiktoken package from this checkout's node_modules.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
commit=$(git -C "$top" rev-parse --verify "${1:-f1d097e}^{commit}")
root="$top/build/baseline/$commit"
binary="$root/build/server/tokenmeter"

if [[ -f "$root/.complete" && -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi
[[ -f "$top/node_modules/tiktoken/encoders/o200k_base.json" ]] || bash "$top/toolchains/npm-install.sh" >&2
pkg-config --exists cpp-httplib || { echo "baseline $commit needs Debian's libcpp-httplib-dev" >&2; exit 1; }

echo "building the baseline server at ${commit:0:12} in $root (once; cached)" >&2
rm -rf "$root"
mkdir -p "$root/src"
git -C "$top" archive "$commit" | tar -x -C "$root/src"
# Tests and benches off: only the server is compared. Warnings are not errors,
# since an old tree may warn under a newer compiler without being wrong.
cmake -S "$root/src" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTM_WERROR=OFF \
    -DTM_BUILD_TESTS=OFF -DTM_BUILD_BENCH=OFF -DTM_TIKTOKEN_DIR="$top/node_modules/tiktoken" >&2
nice -n 10 cmake --build "$root/build" --target tokenmeter -j2 >&2
touch "$root/.complete"
echo "$binary"
