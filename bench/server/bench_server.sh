# Sourced by bench/server/sqlite.sh and postgres.sh: the arguments, a
# `tokenmeter serve` on a given database, and the load against it.
#
# The catalog gives every plan a limit nobody reaches in a run, so every
# authorization is granted and the figures measure the ledger, not refusals.
bench_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
native_dir="$bench_root/build/native"
seconds=10
connections=64
while [[ $# -gt 0 ]]; do
    case "$1" in
        --native-dir) native_dir="$(cd "$2" && pwd)"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ "$seconds" =~ ^[0-9]+([.][0-9]+)?$ && "$seconds" != 0 ]] || { echo "--seconds wants a positive number, not '$seconds'" >&2; exit 2; }
[[ "$connections" =~ ^[1-9][0-9]*$ ]] || { echo "--connections wants a positive whole number, not '$connections'" >&2; exit 2; }
tokenmeter="$native_dir/server/tokenmeter"
load_client="$native_dir/bench/server/tokenmeter_load_client"
for binary in "$tokenmeter" "$load_client"; do
    [[ -x "$binary" ]] || { echo "missing $binary: build the native preset first" >&2; exit 2; }
done

server=""
stop_bench_server() {
    if [[ -n "$server" ]]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
    server=""
}

# start_bench_server WORK_DIR DB_URL [BINARY] [SETTINGS]: sets port,
# service_key and server (pid). BINARY (default: this build's tokenmeter) lets
# a bench run an older server; SETTINGS are more config lines, each starting
# with a comma, e.g. ',"http_threads": 64'.
start_bench_server() {
    local work="$1" db="$2" binary="${3:-$tokenmeter}" settings="${4:-}"
    service_key="bench-service-key-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$binary" keygen --out "$work/signing-key.json" >/dev/null
    cat >"$work/catalog.json" <<'JSON'
{
  "version": "bench",
  "operations": [{"id": "chat"}, {"id": "embedding"}, {"id": "avatar", "tokens_flat": 10000, "avatars": 1}],
  "models": [
    {"id": "gpt-4o-mini", "multiplier": "1", "tokenizer": "o200k_base", "operations": ["chat"]},
    {"id": "gpt-4o", "multiplier": "3", "tokenizer": "o200k_base", "operations": ["chat"]}
  ],
  "plans": [
    {"id": "free", "tokens_per_period": 9000000000000000, "avatars_per_period": 5},
    {"id": "pro", "tokens_per_period": 9000000000000000, "avatars_per_period": 50}
  ]
}
JSON
    cat >"$work/config.json" <<JSON
{
  "db": "$db",
  "listen": "127.0.0.1:$port",
  "jwt_secret": "bench-jwt-secret-not-used-0123456789abcdef",
  "service_keys": "$service_key",
  "signing_key_file": "$work/signing-key.json",
  "catalog_file": "$work/catalog.json"$settings
}
JSON
    "$binary" serve --config "$work/config.json" >"$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$work/server.log" >&2
    exit 1
}

# run_load WORK_DIR LABEL USERS PREFIX [CONNECTIONS]: prints one line and
# keeps pairs/s in pairs_per_second[PREFIX]; the whole result in WORK_DIR/PREFIX.json.
declare -A pairs_per_second
run_load() {
    local work="$1" label="$2" users="$3" prefix="$4" conns="${5:-$connections}" line
    line=$("$load_client" --port "$port" --key "$service_key" --connections "$conns" \
        --seconds "$seconds" --users "$users" --prefix "$prefix") || true  # errors are reported in the line
    echo "$line" >"$work/$prefix.json"
    pairs_per_second[$prefix]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pairs_per_second"])' "$line")
    python3 - "$label" "$line" <<'PY'
import json, sys
label, r = sys.argv[1], json.loads(sys.argv[2])
print(f"  {label:<22} {r['pairs_per_second']:>9,.0f} pairs/s   request p50 {r['request_p50_ms']:.2f} ms  "
      f"p99 {r['request_p99_ms']:.2f} ms   pair p50 {r['pair_p50_ms']:.2f} ms  p99 {r['pair_p99_ms']:.2f} ms   "
      f"errors {r['errors']}")
PY
}

# run_healthz WORK_DIR: GET /healthz back to back over $connections keep-alive
# connections with the same client; keeps requests/s in healthz_per_second.
healthz_per_second=0
run_healthz() {
    local work="$1" line
    line=$("$load_client" --target healthz --port "$port" --connections "$connections" --seconds "$seconds") || true
    echo "$line" >"$work/healthz.json"
    healthz_per_second=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["requests_per_second"])' "$line")
    python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"  {'/healthz':<22} {r['requests_per_second']:>9,.0f} requests/s   request p50 {r['request_p50_ms']:.2f} ms  "
      f"p99 {r['request_p99_ms']:.2f} ms   errors {r['errors']}")
PY
}

# ledger_figures WORK_DIR STORE: the whole ledger bench on the running server:
# 10,000 users and one hot user at $connections, one connection, /healthz,
# and the ratios of pairs/s to /healthz requests/s.
ledger_figures() {
    local work="$1"
    run_load "$work" "10,000 users" 10000 many
    run_load "$work" "one hot user" 1 hot
    run_load "$work" "1 connection" 10000 single 1
    run_healthz "$work"
    python3 - "${pairs_per_second[many]}" "${pairs_per_second[hot]}" "$healthz_per_second" <<'PY'
import sys
many, hot, healthz = map(float, sys.argv[1:])
print(f"  pairs/s ÷ /healthz requests/s: 10,000 users {many / healthz:.3f}, one hot user {hot / healthz:.3f}")
PY
}
