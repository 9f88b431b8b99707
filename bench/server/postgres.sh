#!/usr/bin/env bash
# `make bench`, server part on PostgreSQL: the load of bench/server/sqlite.sh
# (authorize + commit pairs over HTTP on loopback, many users and one hot
# user) against `tokenmeter serve --db postgres://…`, beside pgbench running
# the same guarded UPDATE and inserts as bare SQL (pgbench_pair.sql) with as
# many connections. Both on a throwaway PostgreSQL started here
# (tests/server/postgres/pg_cluster.sh: initdb into /tmp, loopback, fsync on).
#
# The catalog gives every plan a limit nobody reaches in a run, so every
# authorization is granted and the figures measure the ledger, not refusals.
#
# usage: bench/server/postgres.sh [--native-dir build/native] [--seconds 10] [--connections 64]
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
pg_bin=$(bash "$root/tests/server/postgres/pg_cluster.sh" bin)
pgbench="$pg_bin/pgbench"
for binary in "$tokenmeter" "$load_client" "$pgbench"; do
    [[ -x "$binary" ]] || { echo "missing $binary: build the native preset first (and make deps)" >&2; exit 2; }
done

work="$root/build/bench/server-postgres"
rm -rf "$work" && mkdir -p "$work"
# Outside the build tree: as root the cluster runs as `postgres`, who must reach it.
cluster=$(mktemp -d /tmp/tokenmeter-pgbench-XXXXXX)
server=""
cleanup() {
    if [[ -n "$server" ]]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
    bash "$root/tests/server/postgres/pg_cluster.sh" destroy "$cluster"
}
trap cleanup EXIT
admin_url=$(bash "$root/tests/server/postgres/pg_cluster.sh" start "$cluster")
psql() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$admin_url" -c "CREATE DATABASE tokenmeter" -c "CREATE DATABASE bare"
server_url="${admin_url%/*}/tokenmeter"
bare_url="${admin_url%/*}/bare"

service_key="bench-service-key-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$tokenmeter" keygen --out "$work/signing-key.json" >/dev/null
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
  "db": "$server_url",
  "listen": "127.0.0.1:$port",
  "jwt_secret": "bench-jwt-secret-not-used-0123456789abcdef",
  "service_keys": "$service_key",
  "signing_key_file": "$work/signing-key.json",
  "catalog_file": "$work/catalog.json"
}
JSON
"$tokenmeter" serve --config "$work/config.json" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

# The bare side: the same schema (tokenmeter migrate), usage_limits rows for
# every user with a limit nobody reaches.
"$tokenmeter" migrate --db "$bare_url" >/dev/null
psql "$bare_url" -c "INSERT INTO usage_limits SELECT 'u' || g, 0, 1, 'free', 9000000000000000, 0, 0, 5, 0, 0
                     FROM generate_series(1, 10000) g"

declare -A server_pairs bare_pairs
run_server() {  # label users prefix
    local line
    line=$("$load_client" --port "$port" --key "$service_key" --connections "$connections" \
        --seconds "$seconds" --users "$2" --prefix "$3") || true  # errors are reported in the line
    echo "$line" >"$work/server-$3.json"
    server_pairs[$3]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pairs_per_second"])' "$line")
    python3 - "$1" "$line" <<'PY'
import json, sys
label, r = sys.argv[1], json.loads(sys.argv[2])
print(f"  {label:<22} {r['pairs_per_second']:>9,.0f} pairs/s   pair p50 {r['pair_p50_ms']:.2f} ms  "
      f"p99 {r['pair_p99_ms']:.2f} ms   request p99 {r['request_p99_ms']:.2f} ms   errors {r['errors']}")
PY
}
run_bare() {  # label users prefix
    local log="$work/bare-$3"
    mkdir -p "$log"
    (cd "$log" && "$pgbench" -n -c "$connections" -j 4 -T "$seconds" -D users="$2" -f "$here/pgbench_pair.sql" \
        -l --log-prefix=pair "$bare_url" >summary.txt 2>&1) || { cat "$log/summary.txt" >&2; return 1; }
    bare_pairs[$3]=$(python3 - "$1" "$log" <<'PY'
import glob, re, sys
label, log = sys.argv[1], sys.argv[2]
summary = open(f"{log}/summary.txt").read()
tps = float(re.search(r"tps = ([0-9.]+)", summary).group(1))
failed = re.search(r"number of failed transactions: (\d+)", summary)
latencies = sorted(int(line.split()[2]) / 1000 for f in glob.glob(f"{log}/pair*") for line in open(f))
p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(f"  {label:<22} {tps:>9,.0f} pairs/s   pair p50 {p(0.5):.2f} ms  p99 {p(0.99):.2f} ms   "
      f"failed {failed.group(1) if failed else 0}", file=sys.stderr)
print(tps)
PY
)
}

echo "server on PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') (loopback, fsync on, synchronous_commit on, group commit), $connections connections, ${seconds} s each:"
run_server "10,000 users" 10000 many
run_server "one hot user" 1 hot
echo "bare pgbench, the same guarded UPDATE and inserts (pgbench_pair.sql, 2 transactions per pair), $connections connections:"
run_bare "10,000 users" 10000 many 2>&1
run_bare "one hot user" 1 hot 2>&1
python3 - "${server_pairs[many]}" "${bare_pairs[many]}" "${server_pairs[hot]}" "${bare_pairs[hot]}" <<'PY'
import sys
sm, bm, sh, bh = map(float, sys.argv[1:])
print(f"server / bare pgbench: 10,000 users {sm / bm:.2f}x, one hot user {sh / bh:.2f}x")
PY
