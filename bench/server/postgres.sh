#!/usr/bin/env bash
# `make bench`, server part on PostgreSQL: the load of bench/server/sqlite.sh
# (authorize + commit pairs over HTTP on loopback, many users and one hot
# user) against `tokenmeter serve --db postgres://…`, beside pgbench running
# the same guarded UPDATE and inserts as bare SQL (pgbench_pair.sql) with as
# many connections. Both on a throwaway PostgreSQL started here
# (tests/server/postgres/pg_cluster.sh: initdb into /tmp, loopback, fsync on).
#
# usage: bench/server/postgres.sh [--native-dir build/native] [--seconds 10] [--connections 64]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/bench_server.sh"
root="$bench_root"
pg_bin=$(bash "$root/tests/server/postgres/pg_cluster.sh" bin)
pgbench="$pg_bin/pgbench"
[[ -x "$pgbench" ]] || { echo "missing $pgbench: run make deps" >&2; exit 2; }

work="$root/build/bench/server-postgres"
rm -rf "$work" && mkdir -p "$work"
# Outside the build tree: as root the cluster runs as `postgres`, who must reach it.
cluster=$(mktemp -d /tmp/tokenmeter-pgbench-XXXXXX)
cleanup() {
    stop_bench_server
    bash "$root/tests/server/postgres/pg_cluster.sh" destroy "$cluster"
}
trap cleanup EXIT
admin_url=$(bash "$root/tests/server/postgres/pg_cluster.sh" start "$cluster")
psql() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$admin_url" -c "CREATE DATABASE tokenmeter" -c "CREATE DATABASE bare"
server_url="${admin_url%/*}/tokenmeter"
bare_url="${admin_url%/*}/bare"

start_bench_server "$work" "$server_url"

# The bare side: the same schema (tokenmeter migrate), usage_limits rows for
# every user with a limit nobody reaches.
"$tokenmeter" migrate --db "$bare_url" >/dev/null
psql "$bare_url" -c "INSERT INTO usage_limits (user_id, period_start, period_end, plan, tokens_limit, tokens_used,
                       tokens_reserved, avatars_limit, avatars_used, avatars_reserved)
                     SELECT 'u' || g, 0, 1, 'free', 9000000000000000, 0, 0, 5, 0, 0 FROM generate_series(1, 10000) g"

declare -A bare_pairs
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
ledger_figures "$work"
sqlite_work="$root/build/bench/server-sqlite"
if [[ -f "$sqlite_work/many.json" && -f "$sqlite_work/hot.json" ]]; then
    python3 - "$sqlite_work" "${pairs_per_second[many]}" "${pairs_per_second[hot]}" <<'PY'
import json, sys
work, many, hot = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
s_many = json.load(open(f"{work}/many.json"))["pairs_per_second"]
s_hot = json.load(open(f"{work}/hot.json"))["pairs_per_second"]
print(f"  PostgreSQL ÷ SQLite (bench/server/sqlite.sh of this run): 10,000 users {many / s_many:.2f}x, one hot user {hot / s_hot:.2f}x")
PY
fi
echo "bare pgbench, the same guarded UPDATE and inserts (pgbench_pair.sql, 2 transactions per pair), $connections connections:"
run_bare "10,000 users" 10000 many 2>&1
run_bare "one hot user" 1 hot 2>&1
python3 - "${pairs_per_second[many]}" "${bare_pairs[many]}" "${pairs_per_second[hot]}" "${bare_pairs[hot]}" <<'PY'
import sys
sm, bm, sh, bh = map(float, sys.argv[1:])
print(f"server / bare pgbench: 10,000 users {sm / bm:.2f}x, one hot user {sh / bh:.2f}x")
PY
