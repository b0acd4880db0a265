#!/usr/bin/env bash
# Configures (once) and builds mqttd.
#   scripts/build.sh [BUILDDIR [meson options...]]   default: build/
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$@" >/dev/null
fi
# Two jobs at most: one C++ job of this code base can take a gigabyte or more.
ninja -C "$dir" -j "${MQTTD_JOBS:-2}" >/dev/null
