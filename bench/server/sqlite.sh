#!/usr/bin/env bash
# `make bench`, server part: authorize + commit pairs per second over HTTP on
# loopback against `tokenmeter serve` on SQLite with durable commits
# (WAL, synchronous=FULL), for many users and for one hot user, at one
# connection, and /healthz with the same client for the ratio.
#
# usage: bench/server/sqlite.sh [--native-dir build/native] [--seconds 10] [--connections 64]
set -euo pipefail
source "$(dirname "$0")/bench_server.sh"

work="$bench_root/build/bench/server-sqlite"
rm -rf "$work" && mkdir -p "$work"
trap stop_bench_server EXIT
start_bench_server "$work" "sqlite:$work/ledger.db"

echo "server on SQLite (WAL, synchronous=FULL, group commit), $connections connections, ${seconds} s each:"
ledger_figures "$work"
