#!/usr/bin/env bash
# Configures (once) and builds mqttd.
#   scripts/build.sh [BUILDDIR [meson options...]]   default: build/
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log" >&2; exit 1; }
fi
# Two jobs at most: one C++ job of this code base can take a gigabyte or more.
# MQTTD_TARGETS names what to build (default: everything).
# shellcheck disable=SC2086
ninja -C "$dir" -j "${MQTTD_JOBS:-2}" ${MQTTD_TARGETS:-} >"$dir/ninja.log" 2>&1 \
  || { grep -E -A12 'error|FAILED' "$dir/ninja.log" | head -80 >&2; exit 1; }
