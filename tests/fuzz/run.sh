#!/usr/bin/env bash
# Runs every libFuzzer target of build/fuzz (the `fuzz` preset: clang 14,
# ASan, UBSan, and asserts on: no NDEBUG, so nlohmann's own checks run too)
# for FUZZ_SECONDS each (default 60) on a copy of its seed corpus, one after
# the other (the machine is shared), and prints one line per target:
# executions per second, corpus size at the end, and the crash file if any.
# Exits non-zero when a target crashed; the input is then under
# build/fuzz/run/<target>/ (turn it into a corpus entry and a fix).
#
#   FUZZ_SECONDS=600 bash tests/fuzz/run.sh [TARGET...]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-60}
bin="$top/build/fuzz/tests/fuzz"
run="$top/build/fuzz/run"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for dir in "$top"/tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

# A value of libFuzzer's -print_final_stats output ("stat::name: value").
stat_of() { sed -n "s/^stat::$2: *//p" "$1" | tail -n 1; }

crashed=0
printf '%-22s %10s %9s  %s\n' target "execs/s" corpus crashes
for target in "${targets[@]}"; do
  work="$run/$target"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/crashes"
  cp "$top/tests/fuzz/corpus/$target/"* "$work/corpus/"
  status=0
  # -timeout: a single input slower than this is a finding too (a quadratic
  # path, a loop without a bound); -rss_limit_mb covers the embedded encodings.
  "$bin/fuzz_$target" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$work/crashes/" "$work/corpus" >"$work/log" 2>&1 || status=$?
  crash=$(find "$work/crashes" -type f | head -n 1)
  if [ -n "$crash" ] || [ "$status" != 0 ]; then
    crashed=1
    [ -n "$crash" ] || crash="exit status $status (see $work/log)"
  else
    crash=0
  fi
  printf '%-22s %10s %9s  %s\n' "$target" "$(stat_of "$work/log" average_exec_per_sec)" \
    "$(find "$work/corpus" -type f | wc -l)" "$crash"
done
exit "$crashed"
