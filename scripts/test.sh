#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the unit tests (also under
# AddressSanitizer and UBSan), the integration tests, which start the real mqttd
# against a private PostgreSQL on a free port and talk to it with real MQTT clients,
# and the fault-injection tests (tests/faults).
# Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/deps.sh test || exit 1
echo "building build/ (everything), build-asan/ and build-tsan/ (test programs) ..."
scripts/build.sh build || exit 1
# The sanitizer builds need only the test programs, not mqttd or the bench tools.
unit_targets=$(cd tests && sed -n "s/^\([a-z_]*\) = executable('\([a-z_]*\)'.*/tests\/\2/p" meson.build | tr '\n' ' ')
# Unoptimized: with sanitizers, -O2 triples the compile time of this Asio-heavy code.
MQTTD_TARGETS="$unit_targets" \
  scripts/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false -Doptimization=0 || exit 1
MQTTD_TARGETS="tests/broker_tests tests/broker_ds_tests tests/persistence_tests tests/backend_tests" \
  scripts/build.sh build-tsan -Db_sanitize=thread -Db_lundef=false -Doptimization=0 -Dcpp_args=-Wno-tsan || exit 1

pgdir=$(mktemp -d /tmp/mqttd-test-pg.XXXXXX)
chmod 755 "$pgdir"
pgport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { scripts/pg.sh stop "$pgdir/data" || true; rm -rf "$pgdir"; }
trap cleanup EXIT
echo "starting a private PostgreSQL on 127.0.0.1:$pgport ..."
scripts/pg.sh start "$pgdir/data" "$pgport" || exit 1

export MQTTD_BIN=$root/build/mqttd
export MQTTD_PG_PORT=$pgport
export MQTTD_PG_DSN="host=127.0.0.1 port=$pgport user=root password=public dbname=mqtt"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

passed=0; failed=0
count_meson() {  # adds meson test's "Ok:"/"Fail:" counts from its log
  local log=$1
  passed=$((passed + $(sed -n 's/^Ok:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -n1)))
  failed=$((failed + $(sed -n 's/^Fail:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -n1)))
  failed=$((failed + $(sed -n 's/^Timeout:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -n1)))
}

log=$(mktemp)
echo "== unit tests"
meson test -C build --suite unit --print-errorlogs | tee "$log"; count_meson "$log"
echo "== unit tests under AddressSanitizer + UBSan"
meson test -C build-asan --no-rebuild --suite unit --print-errorlogs | tee "$log"; count_meson "$log"
echo "== broker and persistence tests under ThreadSanitizer"
TSAN_OPTIONS=halt_on_error=1 meson test -C build-tsan --no-rebuild broker broker-ds persistence backend --print-errorlogs | tee "$log"
count_meson "$log"

count_pytest() {  # adds pytest's last "N passed, N failed, N errors" line; $2 names the block
  local log=$1 what=$2 last p f
  last=$(grep -E '(passed|failed|error)' "$log" | tail -n1)
  p=$(grep -Eo '[0-9]+ passed' <<<"$last" | grep -Eo '[0-9]+'); passed=$((passed + ${p:-0}))
  f=$(grep -Eo '[0-9]+ (failed|errors?)' <<<"$last" | awk '{s+=$1} END {print s+0}'); failed=$((failed + f))
  [ -n "$p" ] || { echo "$what did not run"; failed=$((failed + 1)); }
}

echo "== integration tests"
if [ -f tests/integration/package.json ] && [ ! -d tests/integration/node_modules ]; then
  (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error) || exit 1
fi
/usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider | tee "$log"
count_pytest "$log" "integration tests"

# Faults injected into mqttd and PostgreSQL under load (docs/reliability.md); needs
# root. MQTTD_FAULTS_SOAK=1 runs the long variant.
echo "== fault-injection tests"
MQTTD_LOAD_BIN=$root/build/bench/mqtt_load /usr/bin/python3 -m pytest tests/faults -q -p no:cacheprovider | tee "$log"
count_pytest "$log" "fault-injection tests"
rm -f "$log"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
