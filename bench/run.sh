#!/usr/bin/env bash
# The benchmark in one command: builds mqttd and the load generator in a release build
# (build-bench/), starts a private PostgreSQL, runs the standard scenarios against mqttd,
# mqttd with the PostgreSQL backend (publish_ack after_commit and async) and mosquitto,
# and writes bench/results/REPORT.md, chart.svg and results.jsonl.
#   bench/run.sh            the standard run (well under 15 minutes)
#   bench/run.sh --quick    fewer clients, shorter, one repetition (well under 3 minutes)
#   bench/run.sh --reps N --only p2p-qos1,offline-drain
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
# mosquitto is the peer broker the results are compared with.
if ! [ -x /usr/sbin/mosquitto ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
fi
exec /usr/bin/python3 bench/runner.py "$@"
