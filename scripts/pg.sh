#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for running and testing mqttd.
#   scripts/pg.sh start DATADIR PORT   - initdb if needed, start, create role and database, load the schema
#   scripts/pg.sh stop DATADIR
# The server listens on 127.0.0.1:PORT and on a unix socket in DATADIR. It has the role
# `root` with password `public` and the database `mqtt`, as the shipped config expects.
# The server refuses to run as root, so as root it runs as the `postgres` system user.
set -euo pipefail

bin=/usr/lib/postgresql/15/bin
here=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:?usage: pg.sh start DATADIR PORT | stop DATADIR}
data=${2:?data directory}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  port=${3:?port}
  mkdir -p "$data"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    chown postgres "$data"
    chmod 700 "$data"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale >"$data.initdb.log" 2>&1 \
      || { cat "$data.initdb.log" >&2; exit 1; }
  fi
  as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" start >/dev/null \
    || { cat "$data/server.log" >&2; exit 1; }
  psql=(psql -h "$data" -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt)
  if [ "$("${psql[@]}" -d postgres -c "select 1 from pg_roles where rolname='root'")" != 1 ]; then
    "${psql[@]}" -d postgres -c "create role root login superuser password 'public'"
  fi
  if [ "$("${psql[@]}" -d postgres -c "select 1 from pg_database where datname='mqtt'")" != 1 ]; then
    "${psql[@]}" -d postgres -c "create database mqtt owner root encoding 'UTF8' template template0"
    "${psql[@]}" -d mqtt -U root -f "$here/sql/emqx_backend_pgsql.sql"
  fi
  ;;
stop)
  [ -f "$data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  ;;
*)
  echo "usage: pg.sh start DATADIR PORT | stop DATADIR" >&2; exit 2 ;;
esac
