#!/usr/bin/env bash
# Builds mqttd and runs it in the foreground with a config file
# (default etc/emqx_backend_pgsql.conf). When no PostgreSQL server answers at the
# address of the config's first pool and that address is on this machine, a private
# cluster is started under var/pg on that port (role root/public, database mqtt, schema
# loaded) and stopped again when mqttd exits.
set -euo pipefail
cd "$(dirname "$0")/.."
conf=${1:-etc/emqx_backend_pgsql.conf}
[ $# -gt 0 ] && shift

scripts/deps.sh run
echo "building mqttd ..."
scripts/build.sh build

server=$(sed -n 's/^[[:space:]]*backend\.pgsql\.[^.]*\.server[[:space:]]*=[[:space:]]*//p' "$conf" | head -n1)
started=""
if [ -n "$server" ]; then
  host=${server%:*}; port=${server##*:}
  [ "$host" = "$server" ] && port=5432
  if /usr/lib/postgresql/15/bin/pg_isready -q -h "$host" -p "$port" -t 2; then
    echo "PostgreSQL answers at $host:$port"
  elif [ "$host" = 127.0.0.1 ] || [ "$host" = localhost ]; then
    echo "no PostgreSQL at $host:$port: starting a private cluster in var/pg"
    scripts/pg.sh start "$PWD/var/pg" "$port"
    started=yes
  else
    echo "PostgreSQL at $host:$port does not answer; mqttd keeps retrying"
  fi
fi
if [ -n "$started" ]; then
  trap 'scripts/pg.sh stop "$PWD/var/pg"' EXIT
  build/mqttd -c "$conf" "$@"
else
  exec build/mqttd -c "$conf" "$@"
fi
