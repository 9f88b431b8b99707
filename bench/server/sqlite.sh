#!/usr/bin/env bash
# `make bench`, server part: authorize + commit pairs per second over HTTP on
# loopback against `tokenmeter serve` on SQLite with durable commits
# (WAL, synchronous=FULL), for many users and for one hot user.
#
# The catalog gives every plan a limit nobody reaches in a run, so every
# authorization is granted and the figures measure the ledger, not refusals.
#
# usage: bench/server/sqlite.sh [--native-dir build/native] [--seconds 10] [--connections 64]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
native_dir="$root/build/native"
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
tokenmeter="$native_dir/server/tokenmeter"
load_client="$native_dir/bench/server/tokenmeter_load_client"
for binary in "$tokenmeter" "$load_client"; do
    [[ -x "$binary" ]] || { echo "missing $binary: build the native preset first" >&2; exit 2; }
done

work="$root/build/bench/server-sqlite"
rm -rf "$work" && mkdir -p "$work"
service_key="bench-service-key-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$tokenmeter" keygen --out "$work/signing-key.json" >/dev/null
cat >"$work/catalog.json" <<'EOF'
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
EOF
cat >"$work/config.json" <<EOF
{
  "db": "sqlite:$work/ledger.db",
  "listen": "127.0.0.1:$port",
  "jwt_secret": "bench-jwt-secret-not-used-0123456789abcdef",
  "service_keys": "$service_key",
  "signing_key_file": "$work/signing-key.json",
  "catalog_file": "$work/catalog.json"
}
EOF

"$tokenmeter" serve --config "$work/config.json" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

run() {  # label users prefix
    local line
    line=$("$load_client" --port "$port" --key "$service_key" --connections "$connections" \
        --seconds "$seconds" --users "$2" --prefix "$3") || true  # errors are reported in the line
    echo "$line" >"$work/$3.json"
    python3 - "$1" "$line" <<'PY'
import json, sys
label, r = sys.argv[1], json.loads(sys.argv[2])
print(f"  {label:<22} {r['pairs_per_second']:>9,.0f} pairs/s   pair p50 {r['pair_p50_ms']:.2f} ms  "
      f"p99 {r['pair_p99_ms']:.2f} ms   request p99 {r['request_p99_ms']:.2f} ms   errors {r['errors']}")
PY
}

echo "server on SQLite (WAL, synchronous=FULL, group commit), $connections connections, ${seconds} s each:"
run "10,000 users" 10000 many
run "one hot user" 1 hot
