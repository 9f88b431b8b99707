#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and benchmarks (TOOLCHAIN.md): a
# cluster initialized into DIR, listening on a free loopback port, fsync on.
#
#   pg_cluster.sh start DIR             initdb DIR/data if missing, start, write DIR/url
#   pg_cluster.sh stop DIR [MODE]       pg_ctl stop -m MODE (fast; immediate = crash)
#   pg_cluster.sh destroy DIR           stop if running, remove DIR
#   pg_cluster.sh bin                   print the directory of the server binaries
#
# PostgreSQL refuses to run as root, so as root everything runs as the
# `postgres` user that Debian's postgresql package creates.
set -euo pipefail

# Debian keeps the server binaries per major version; the newest installed
# one unless TM_PG_BIN says otherwise.
bin=${TM_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$bin/initdb" ] || { echo "pg_cluster.sh: no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 2; }
command=${1:?usage: pg_cluster.sh start|stop|destroy DIR [MODE] | bin}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_is_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # In the configuration file rather than on the command line, so a test
    # can still change fsync with ALTER SYSTEM (command-line settings win).
    as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
max_connections = 300
CONF
  fi
  # A restart keeps its port, so clients can reconnect to the same URL.
  local port
  if [ -f "$dir/port" ]; then
    port=$(cat "$dir/port")
  else
    # Below Linux's ephemeral range (32768-60999): a port in it can be taken
    # by an outgoing connection while the server is stopped, and a restart
    # on the same port would then fail.
    for _ in $(seq 1 50); do
      port=$((20000 + RANDOM % 12000))
      if port_is_free "$port"; then break; fi
    done
  fi
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port" \
    start >/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  echo "postgres://postgres@127.0.0.1:$port/postgres" >"$dir/url"
  cat "$dir/url"
}

stop() {
  local mode=${1:-fast}
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null
  fi
}

if [ "$command" = bin ]; then echo "$bin"; exit 0; fi
dir=${2:?usage: pg_cluster.sh start|stop|destroy DIR [MODE]}

case "$command" in
  start) start ;;
  stop) stop "${3:-fast}" ;;
  destroy) stop immediate || true; rm -rf "$dir" ;;
  *) echo "pg_cluster.sh: unknown command $command" >&2; exit 2 ;;
esac
