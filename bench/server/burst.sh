#!/usr/bin/env bash
# `make bench`, server part: a crowd arriving at once. N clients (default 500)
# each open their own connection at the same moment and send one request, to
# /healthz and to POST /v1/usage/authorize (as the service key, one distinct
# user per client, accounts opened beforehand); the load client
# (tokenmeter_load_client --burst) reports the time until every client had
# its answer and the latency percentiles. The same runs against the server
# before the epoll edge (f1d097e: one thread per connection, 128 threads) so
# the table has before/after ratios. Both on SQLite with durable commits, one
# server at a time, each on a fresh database. Each case runs --rounds times
# (fresh connections each round); the time to answer all is the median round.
#
# usage: bench/server/burst.sh [--native-dir build/native] [--clients 500]
#                              [--rounds 3] [--timeout 30] [--no-baseline]
#   TM_BASELINE_BINARY=/path/to/tokenmeter  the "before" server to use;
#                                           otherwise bench/server/baseline.sh
#                                           builds TM_BASELINE_COMMIT (default
#                                           f1d097e) once into build/baseline/.
set -euo pipefail
clients=500
rounds=3
timeout=30
baseline=1
shared=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --clients) clients="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        --no-baseline) baseline=0; shift ;;
        --native-dir) shared+=("$1" "$2"); shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ "$clients" =~ ^[1-9][0-9]*$ ]] || { echo "--clients wants a positive whole number, not '$clients'" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds wants a positive whole number, not '$rounds'" >&2; exit 2; }
[[ "$timeout" =~ ^[0-9]+([.][0-9]+)?$ && ! "$timeout" =~ ^0+([.]0+)?$ ]] || { echo "--timeout wants a positive number of seconds, not '$timeout'" >&2; exit 2; }
set -- "${shared[@]}"
source "$(dirname "$0")/bench_server.sh"

before=""
before_label=""
if [[ $baseline == 1 ]]; then
    if [[ -n "${TM_BASELINE_BINARY:-}" ]]; then
        before="$TM_BASELINE_BINARY"
        before_label="before ($(basename "$before"))"
        [[ -x "$before" ]] || { echo "TM_BASELINE_BINARY=$before is not an executable" >&2; exit 2; }
    else
        commit="${TM_BASELINE_COMMIT:-f1d097e}"
        before=$(bash "$bench_root/bench/server/baseline.sh" "$commit")
        before_label="before ($commit)"
    fi
fi

# Each side holds a descriptor per client (the server, and this load client).
if (( $(ulimit -n) < 2 * clients + 256 )); then ulimit -n "$(ulimit -Hn)"; fi

work="$bench_root/build/bench/server-burst"
rm -rf "$work" && mkdir -p "$work"
trap stop_bench_server EXIT

# Rate limits would refuse part of a crowd from one address, and the figure is
# about the edge, not the limits: this server runs with all of them off. The
# old server has none (and refuses settings it does not know).
limits_off=',
  "rate_limit_user_per_second": 0,
  "rate_limit_service_per_second": 0,
  "rate_limit_address_per_second": 0'

# The cases: label, target, keep-alive. Both ways of ending a connection are
# honest and they load a server differently: keep-alive (1), as browsers and
# connection pools do, leaves every answered client's connection open until
# the whole round is answered, which holds a thread per connection where a
# server has one; "Connection: close" (0) frees it with the answer.
cases=("/healthz, keep-alive|healthz|1" "/healthz, Connection: close|healthz|0"
       "authorize, keep-alive|authorize|1" "authorize, Connection: close|authorize|0")

# run_side NAME LABEL BINARY SETTINGS: one server, every case, a JSON line each.
run_side() {
    local name="$1" label="$2" binary="$3" settings="$4" index=0 spec case_label target keep_alive
    mkdir -p "$work/$name"
    start_bench_server "$work/$name" "sqlite:$work/$name/ledger.db" "$binary" "$settings"
    for spec in "${cases[@]}"; do
        IFS='|' read -r case_label target keep_alive <<<"$spec"
        sleep 1  # the previous case's connections are closed and the server idle
        "$load_client" --burst "$clients" --port "$port" --key "$service_key" --target "$target" \
            --keep-alive "$keep_alive" --rounds "$rounds" --timeout "$timeout" --prefix "$name-$index" \
            >"$work/$name/case-$index.json" || true  # failures are reported in the line
        python3 - "$label" "$case_label" "$work/$name/case-$index.json" >>"$work/results.jsonl" <<'PY'
import json, sys
side, case, path = sys.argv[1:]
line = open(path).read().strip()
r = json.loads(line) if line else {"error": "the load client printed nothing"}
print(json.dumps({"side": side, "case": case, **r}))
PY
        index=$((index + 1))
    done
    stop_bench_server
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
run_side after "this server" "$tokenmeter" "$limits_off"
if [[ -n "$before" ]]; then run_side before "$before_label" "$before" ""; fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$work/results.jsonl" "$clients" "$rounds" "$timeout" "$(nproc)" "$load_start" "$load_end" <<'PY'
import json, sys
path, clients, rounds, timeout, cores, load_start, load_end = sys.argv[1:]
rows = [json.loads(line) for line in open(path)]
print(f"burst: {clients} clients at once, each on its own new connection, one request each, "
      f"{rounds} round(s), timeout {timeout} s; SQLite, synchronous=FULL")
print("  this server: rate limits off (rate_limit_{user,service,address}_per_second 0), so none of the burst "
      "is refused for rate; edge defaults (64 workers, queue 1,024)")
if any(r["side"] != "this server" for r in rows):
    print("  before: the old server has no rate limits; its default 128 threads, one per connection")
print("  authorize: as the service key, one distinct user per client (accounts opened before the burst), "
      "a distinct Idempotency-Key per request")
print(f"  machine: {cores} cores, load average (1, 5, 15 min) {load_start} at start, {load_end} at end")
print("  all answered: median round, from the release until the last client had its answer; "
      "p50/p99/max over every round's 200 answers, connect included")
print()
print(f"  {'case':<30} {'server':<20} {'all answered':>13} {'answered/s':>11} {'p50':>10} {'p99':>10} {'max':>10}  failed")
def ms(v):
    return f"{v:,.1f} ms" if v < 1000 else f"{v / 1000:,.2f} s"
by = {}
for r in rows:
    by[(r["case"], r["side"])] = r
    if "error" in r:
        print(f"  {r['case']:<30} {r['side']:<20} {r['error']}")
        continue
    r["per_second"] = r["answered"] / int(rounds) / (r["all_done_ms"] / 1000) if r["all_done_ms"] > 0 else 0
    failed = f"{r['failed']}" + (f" ({', '.join(f'{k}: {v}' for k, v in r['failures'].items())}"
                                 + (f"; {r['timed_out']} timed out" if r["timed_out"] else "") + ")" if r["failed"] else "")
    print(f"  {r['case']:<30} {r['side']:<20} {ms(r['all_done_ms']):>13} {r['per_second']:>11,.0f} "
          f"{ms(r['p50_ms']):>10} {ms(r['p99_ms']):>10} {ms(r['max_ms']):>10}  {failed}")
pairs = [(case, by[(case, "this server")], r) for (case, side), r in by.items() if side != "this server"
         and (case, "this server") in by]
if pairs:
    print()
    print("  after vs before: answered/s after ÷ before; times before ÷ after (higher is better for both)")
    for case, after, before in pairs:
        if "error" in after or "error" in before:
            continue
        def ratio(a, b):
            return f"{a / b:,.1f}×" if b > 0 else "n/a"
        print(f"  {case:<30} answered/s {ratio(after['per_second'], before['per_second']):>8}   "
              f"all answered {ratio(before['all_done_ms'], after['all_done_ms']):>8}   "
              f"p50 {ratio(before['p50_ms'], after['p50_ms']):>8}   p99 {ratio(before['p99_ms'], after['p99_ms']):>8}")
PY
