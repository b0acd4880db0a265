#!/usr/bin/env bash
# Installs the Debian 12 packages mqttd needs that are not installed yet.
#   scripts/deps.sh build   - to build mqttd
#   scripts/deps.sh run     - to build and run it with a private PostgreSQL
#   scripts/deps.sh test    - to build and run every test
#   scripts/deps.sh fuzz    - to build the libFuzzer targets
set -euo pipefail

# libssl-dev (OpenSSL: SHA-512, PBKDF2) and libcrypt-dev (libxcrypt: bcrypt): password hashes.
build=(g++ pkg-config meson ninja-build libboost1.81-dev libboost-json1.81-dev libpq-dev libfmt-dev doctest-dev libpaho-mqtt-dev libjemalloc-dev libssl-dev libcrypt-dev)
server=(postgresql-15 postgresql-client-15)
# iproute2 (ip, tc, ss) and procps (pgrep): the fault-injection tests (tests/faults).
# mosquitto (its mosquitto_passwd) and apache2-utils (htpasswd -B): password files made
# by the real tools.
tests=(mosquitto-clients mosquitto apache2-utils python3 python3-paho-mqtt python3-pytest iproute2 procps)
fuzz=(clang libclang-rt-14-dev)

want=("${build[@]}")
case "${1:-build}" in
  build) ;;
  run) want+=("${server[@]}") ;;
  test) want+=("${server[@]}" "${tests[@]}") ;;
  fuzz) want+=("${fuzz[@]}") ;;
  *) echo "usage: $0 build|run|test|fuzz" >&2; exit 2 ;;
esac
# MQTT.js runs on Node; a machine that already has node (and npm) keeps its own.
if [ "${1:-}" = test ] && ! command -v npm >/dev/null 2>&1; then
  want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "installing: ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
